//! The kubeconfigs the sandbox writes: cluster `sandbox` with the CA embedded and, in the
//! main one, user `sandbox-admin` (context `sandbox`, the current one) and `bob` (context
//! `sandbox-bob`), both with namespace `demo`, and `serve --user`'s users (context
//! `sandbox-<user>`); [`write_for_user`] writes one for any user the sandbox knows.

use std::path::Path;

use base64::Engine;

/// Write the main kubeconfig for `url`.
pub fn write(path: &Path, url: &str, ca_pem: &str, token: &str) -> std::io::Result<()> {
    write_with_users(path, url, ca_pem, token, &[])
}

/// Write the main kubeconfig with a context `sandbox-<user>` for each (user, token) more.
pub fn write_with_users(
    path: &Path,
    url: &str,
    ca_pem: &str,
    token: &str,
    users: &[(String, String)],
) -> std::io::Result<()> {
    let contexts: Vec<String> = users.iter().map(|(u, _)| format!("sandbox-{u}")).collect();
    let mut all = vec![
        ("sandbox-admin", "sandbox", token),
        ("bob", "sandbox-bob", crate::FORBIDDEN_TOKEN),
    ];
    for ((user, token), context) in users.iter().zip(&contexts) {
        all.push((user.as_str(), context.as_str(), token.as_str()));
    }
    write_users(path, url, ca_pem, &all)
}

/// Write a kubeconfig whose one user is `user` with `token`, in context `sandbox-<user>`
/// (current, namespace `demo`).
pub fn write_for_user(
    path: &Path,
    url: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
) -> std::io::Result<()> {
    write_users(
        path,
        url,
        ca_pem,
        &[(user, &format!("sandbox-{user}"), token)],
    )
}

/// A YAML double-quoted string (user names may hold `:`).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Write a kubeconfig with one context per (user, context, token); the first is current.
fn write_users(
    path: &Path,
    url: &str,
    ca_pem: &str,
    users: &[(&str, &str, &str)],
) -> std::io::Result<()> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut user_part = String::new();
    let mut context_part = String::new();
    for (user, context, token) in users {
        let (user, context) = (quoted(user), quoted(context));
        user_part.push_str(&format!(
            "- name: {user}\n  user:\n    token: {}\n",
            quoted(token)
        ));
        context_part.push_str(&format!(
            "- name: {context}\n  context:\n    cluster: sandbox\n    user: {user}\n    namespace: demo\n"
        ));
    }
    let current = quoted(users.first().map_or("sandbox", |u| u.1));
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
{user_part}contexts:
{context_part}current-context: {current}
preferences: {{}}
"
    );
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
