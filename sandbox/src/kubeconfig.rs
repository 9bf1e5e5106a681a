//! The kubeconfig the sandbox writes: cluster `sandbox` with the CA embedded, user
//! `sandbox-admin` with a bearer token, context `sandbox` with namespace `demo`.

use std::path::Path;

use base64::Engine;

/// Write a kubeconfig for `url`.
pub fn write(path: &Path, url: &str, ca_pem: &str, token: &str) -> std::io::Result<()> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: sandbox-admin
  user:
    token: {token}
- name: bob
  user:
    token: {bob}
contexts:
- name: sandbox
  context:
    cluster: sandbox
    user: sandbox-admin
    namespace: demo
- name: sandbox-bob
  context:
    cluster: sandbox
    user: bob
    namespace: demo
current-context: sandbox
preferences: {{}}
",
        bob = crate::FORBIDDEN_TOKEN
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
