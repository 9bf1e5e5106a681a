//! `kubectl rotate prev TYPE/NAME`: the current and the previous credential side by side,
//! read from the auth Secret per the engine's layout (Arc: the admin login and the
//! service-managed credentials generation). Values stay masked unless `--reveal`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::backend::{annotations as ann, discover, retry, Wanted};
use crate::cli::PrevArgs;
use crate::context::Ctx;
use crate::creds::{self, Password, PASSWORD_KEY, USERNAME_KEY};
use crate::engines::{EngineSpec, PrevLayout};
use crate::error::{Error, Result};
use crate::inspect::{get_target, CredentialView, GenerationPair, PrevReport, Role};
use crate::target::Target;

/// Checks `prev` arguments (pure: before any API call).
pub fn plan(args: &PrevArgs) -> Result<Target> {
    Target::parse(&args.target)
}

/// Reads the target and its credential Secret.
pub async fn run(ctx: &Ctx, target: &Target) -> Result<PrevReport> {
    let engine = target.engine;
    let ns = ctx.namespace.as_str();
    let ar = discover(ctx, &[Wanted::engine(engine)]).await?.remove(0);
    let (obj, item) = get_target(ctx, target, &ar).await?;
    let secret_name = item.credential_secret(engine).ok_or_else(|| {
        Error::Unexpected(format!(
            "{target} names no admin login Secret (spec.security.adminLoginSecret)"
        ))
    })?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = match retry(|| api.get_opt(&secret_name)).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Error::NotFound {
                what: format!("secret {secret_name:?} in namespace {ns:?}"),
                hint: Some(format!("{target} refers to it, but it does not exist")),
            })
        }
        Err(e) => return Err(Error::api(format!("get secret {ns}/{secret_name}"), e)),
    };
    let data = creds::decode_data(secret.data.as_ref());
    let mut report = PrevReport {
        namespace: ns.to_string(),
        target_kind: engine.kind.to_string(),
        target_group: engine.group.to_string(),
        name: target.name.clone(),
        credentials: Vec::new(),
        generation: None,
        note: None,
    };
    if engine.prev == PrevLayout::NotApplicable {
        let state = item.arc_state();
        let changed_at = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ann::CHANGED_AT))
            .cloned();
        // NB: a generation bump rotates service-managed credentials, not the admin login,
        // so the login row has no rotation time of its own.
        report.credentials = pair(engine, &secret_name, &data, None).0;
        report.generation = Some(GenerationPair {
            current: state.credentials_generation,
            previous: super::status::arc_rollback(target, ns, &state).ok(),
            changed_at,
        });
        report.note = Some(
            "Arc rotates service-managed credentials, not the admin login: rolling back goes \
             to the previous managedCredentialsGeneration"
                .into(),
        );
        return Ok(report);
    }
    let last = item
        .status
        .auth_secret
        .as_ref()
        .and_then(|a| a.last_update_timestamp.clone());
    let (credentials, note) = pair(engine, &secret_name, &data, last);
    report.credentials = credentials;
    report.note = note.map(|n| format!("{n} (rotate with: kubectl rotate auth {target} -n {ns})"));
    Ok(report)
}

/// Pairs current and previous credentials per the engine's layout (pure). The note says
/// why there is no previous one, when there is none.
pub fn pair(
    engine: &EngineSpec,
    secret: &str,
    data: &BTreeMap<String, String>,
    last_rotated: Option<String>,
) -> (Vec<CredentialView>, Option<String>) {
    let view = |role, username: Option<&String>, password: Option<&String>, keys: &[&str]| {
        CredentialView {
            role,
            username: username.cloned(),
            password: password.map(|p| Password::new(p.clone())),
            secret: secret.to_string(),
            keys: keys
                .iter()
                .filter(|k| data.contains_key(**k))
                .map(|k| k.to_string())
                .collect(),
            last_rotated: last_rotated.clone(),
        }
    };
    let user_pass = |u: &str, p: &str, role| {
        (data.contains_key(u) || data.contains_key(p))
            .then(|| view(role, data.get(u), data.get(p), &[u, p]))
    };
    let split = |key: &str, role| {
        data.get(key).map(|a| {
            let (u, p) = a.split_once(':').unwrap_or(("", a.as_str()));
            let mut v = view(role, None, None, &[key]);
            v.username = Some(u.to_string()).filter(|u| !u.is_empty());
            v.password = Some(Password::new(p));
            v
        })
    };
    let missing = |keys: &str| {
        Some(format!(
            "no previous credential kept yet: {secret} has no {keys}; they appear after a rotation"
        ))
    };
    let (current, previous, note) = match engine.prev {
        PrevLayout::UserPass | PrevLayout::NotApplicable => (
            user_pass(USERNAME_KEY, PASSWORD_KEY, Role::Current),
            user_pass("username.prev", "password.prev", Role::Previous),
            missing("username.prev and password.prev"),
        ),
        // NB: DocumentDB keeps only password.prev; its username cannot change.
        PrevLayout::PasswordOnly => (
            user_pass(USERNAME_KEY, PASSWORD_KEY, Role::Current),
            data.get("password.prev").map(|p| {
                view(
                    Role::Previous,
                    data.get(USERNAME_KEY),
                    Some(p),
                    &["password.prev"],
                )
            }),
            missing("password.prev"),
        ),
        PrevLayout::MemcachedAuthData => (
            split("authData", Role::Current),
            split("authData.prev", Role::Previous),
            missing("authData.prev"),
        ),
        PrevLayout::PrevSuffix => (
            user_pass(USERNAME_KEY, PASSWORD_KEY, Role::Current),
            user_pass("username-PREV", "password-PREV", Role::Previous),
            missing("username-PREV and password-PREV"),
        ),
        PrevLayout::None => (
            data.get("api-key")
                .map(|k| view(Role::Current, None, Some(k), &["api-key"])),
            None,
            Some(format!(
                "{} keeps no previous credential: its API keys are replaced in place",
                engine.kind
            )),
        ),
    };
    let note = if previous.is_some() { None } else { note };
    (current.into_iter().chain(previous).collect(), note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn postgres_pairs_current_with_its_dot_prev_keys() {
        let d = data(&[
            ("username", "postgres"),
            ("password", "New1"),
            ("username.prev", "postgres"),
            ("password.prev", "Old1"),
        ]);
        let (rows, note) = pair(find("pg").unwrap(), "pg-auth", &d, Some("t".into()));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].role, Role::Current);
        assert_eq!(rows[0].password.as_ref().unwrap().expose(), "New1");
        assert_eq!(rows[1].role, Role::Previous);
        assert_eq!(rows[1].keys, vec!["username.prev", "password.prev"]);
        assert_eq!(rows[1].password.as_ref().unwrap().expose(), "Old1");
        assert!(note.is_none());
        assert!(!format!("{rows:?}").contains("Old1"), "Debug stays masked");
    }

    #[test]
    fn a_never_rotated_database_has_only_a_current_row_and_a_note() {
        let d = data(&[("username", "sa"), ("password", "P")]);
        let (rows, note) = pair(find("ms").unwrap(), "ms-auth", &d, None);
        assert_eq!(rows.len(), 1);
        assert!(note.unwrap().contains("no previous credential kept yet"));
    }

    #[test]
    fn memcached_splits_auth_data_into_user_and_password() {
        let d = data(&[("authData", "admin:New"), ("authData.prev", "admin:Old")]);
        let (rows, _) = pair(find("memcached").unwrap(), "mc-auth", &d, None);
        assert_eq!(rows[1].username.as_deref(), Some("admin"));
        assert_eq!(rows[1].password.as_ref().unwrap().expose(), "Old");
        assert_eq!(rows[1].keys, vec!["authData.prev"]);
    }

    #[test]
    fn documentdb_reuses_the_current_username_for_its_previous_password() {
        let d = data(&[
            ("username", "docdb"),
            ("password", "N"),
            ("password.prev", "O"),
        ]);
        let (rows, _) = pair(find("docdb").unwrap(), "d-admin-auth", &d, None);
        assert_eq!(rows[1].username.as_deref(), Some("docdb"));
        assert_eq!(rows[1].keys, vec!["password.prev"]);
    }

    #[test]
    fn qdrant_says_it_keeps_no_previous_credential() {
        let d = data(&[("api-key", "k"), ("read-only-api-key", "r")]);
        let (rows, note) = pair(find("qdrant").unwrap(), "q-auth", &d, None);
        assert_eq!(rows.len(), 1);
        assert!(note.unwrap().contains("keeps no previous credential"));
    }
}
