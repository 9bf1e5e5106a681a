//! Where a KubeDB rotation's new credential comes from: the operator, a `--secret`
//! (validated), a password from stdin or generated here, or the previous credential
//! (rollback); and the basic-auth Secret the plugin creates for it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{json, Value};

use super::request::request_name;
use super::Apis;
use crate::api::read::get_secret;
use crate::api::retry;
use crate::creds::{self, Credential, Password, Previous, PASSWORD_KEY, USERNAME_KEY};
use crate::engines::{EngineSpec, PrevLayout};
use crate::error::{Error, Result};
use crate::model::annotations as ann;
use crate::model::{own_labels, DbItem, MANAGED_BY_LABEL, MANAGER};
use crate::plan::{NewCredential, Plan};
use crate::report::Action;

/// The type of a user-supplied credential Secret.
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";

/// Where the new credential comes from.
pub struct Source {
    /// The Secret the ops request references (`--secret`, or one the plugin creates).
    pub secret_ref: Option<String>,
    /// A Secret to create first (rollback, `--password-stdin`, `--generate`).
    pub new_secret: Option<Secret>,
    /// What the ops request's name is derived from, besides the database and its last
    /// credential change.
    pub name_input: String,
    /// What the created Secret's values are, for the client dry-run note.
    pub describe: &'static str,
}

/// Checks a user-supplied Secret for `engine` (pure). `current_username` is the username in
/// the database's auth Secret, needed for engines that refuse a username change.
pub fn check_user_secret(
    engine: &EngineSpec,
    secret: &Secret,
    current_username: Option<&str>,
) -> Result<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let invalid = |reason: String| Error::InvalidSecret {
        name: name.clone(),
        reason,
    };
    let typ = secret.type_.as_deref().unwrap_or("Opaque");
    if typ != BASIC_AUTH {
        return Err(invalid(format!(
            "its type is {typ}; it must be {BASIC_AUTH}"
        )));
    }
    let data = creds::decode_data(secret.data.as_ref());
    let password = data.get(PASSWORD_KEY).filter(|p| !p.is_empty());
    // NB: Qdrant's credential is an API key: the operator takes `password` as the new key
    // and needs no username.
    let username = data.get(USERNAME_KEY).cloned().unwrap_or_default();
    let (false, Some(password)) = (
        username.is_empty() && engine.prev != PrevLayout::None,
        password,
    ) else {
        return Err(invalid(
            "it needs non-empty `username` and `password` keys".into(),
        ));
    };
    if !username.is_empty() {
        creds::check_username(engine, &username, current_username).map_err(invalid)?;
    }
    creds::check_policy(
        engine.password_policy,
        &username,
        &Password::new(password.clone()),
    )
    .map_err(invalid)
}

/// The basic-auth Secret the plugin creates for a new credential (a rollback's previous
/// one, `--password-stdin`'s or `--generate`'s), owned by the database (pure). An empty
/// username (Qdrant's API key) is left out.
pub fn credential_secret(
    name: &str,
    plan: &Plan,
    db: &DynamicObject,
    db_ar: &ApiResource,
    cred: &Credential,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(own_labels(&plan.target.name)),
            annotations: Some(BTreeMap::from([(
                ann::LAST_ACTION.to_string(),
                plan.action.as_str().to_string(),
            )])),
            // NB: owned by the database, so it goes away with it; not a controller reference,
            // which belongs to KubeDB.
            owner_references: Some(vec![OwnerReference {
                api_version: db_ar.api_version.clone(),
                kind: db_ar.kind.clone(),
                name: plan.target.name.clone(),
                uid: db.metadata.uid.clone().unwrap_or_default(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        type_: Some(BASIC_AUTH.to_string()),
        data: Some(
            [
                (USERNAME_KEY, cred.username.as_bytes()),
                (PASSWORD_KEY, cred.password.expose().as_bytes()),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
            .collect(),
        ),
        ..Default::default()
    }
}

/// A Secret as JSON with its values redacted, for `--dry-run=client` output.
pub fn redacted(secret: &Secret) -> Value {
    let mut v = serde_json::to_value(secret).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("apiVersion".into(), json!("v1"));
        obj.insert("kind".into(), json!("Secret"));
        let keys: BTreeMap<String, &str> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, _)| (k.clone(), creds::REDACTED))
            .collect();
        obj.insert("data".into(), json!(keys));
    }
    v
}

/// Decides where the new credential comes from, checking it: nothing (the operator
/// generates one), the `--secret` (validated), a password from stdin or generated here
/// (checked, put in a new Secret), or the previous credential (rollback).
/// Refuses (exit 6) a rotation written into `secret` when a controller manages it and
/// would write the old value back on its next sync (External Secrets, Sealed Secrets,
/// GitOps), unless `--force`: the place to rotate is where that controller reads from.
pub fn not_reverted(plan: &Plan, secret: &Secret) -> Result<()> {
    if plan.force {
        return Ok(());
    }
    let meta = serde_json::json!({"metadata": &secret.metadata});
    let revert: Vec<_> = crate::model::consumers::managers(&meta)
        .into_iter()
        .filter(|m| m.reverts)
        .collect();
    let Some(first) = revert.first() else {
        return Ok(());
    };
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    Err(Error::Refused(format!(
        "secret {name} is managed by {}, which would write the old password back: {}, \
         or pass --force to rotate it here anyway; nothing was changed",
        revert
            .iter()
            .map(|m| m.what.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        first.advice
    )))
}

pub async fn credential_source(
    plan: &Plan,
    apis: &Apis,
    db: &DynamicObject,
    auth: &Secret,
    name_inputs: &[&str],
) -> Result<Source> {
    let engine = plan.target.engine;
    let (ns, target) = (plan.namespace.as_str(), plan.target.to_string());
    let auth_name = auth.metadata.name.as_deref().unwrap_or_default();
    let auth_data = creds::decode_data(auth.data.as_ref());
    let current_user = creds::current_username(engine, &auth_data);
    let current_password = creds::read(engine.prev.current(), &auth_data).map(|(_, p)| p);
    // NB: rotating to the password in use would make `.prev` the same password, and the
    // previous credential, the rollback point, would be gone.
    let unchanged = |new: &str, from: &str| {
        (current_password.as_deref() == Some(new))
            .then(|| {
                Error::Usage(format!(
                    "the new password ({from}) is the one {target} uses now: rotating to it \
                     would replace the previous credential kept for rollback; choose another"
                ))
            })
            .map_or(Ok(()), Err)
    };
    let new_secret = |cred: &Credential, name_input: String, describe| {
        let mut inputs = name_inputs.to_vec();
        inputs.push(&name_input);
        let name = request_name(&plan.target.name, plan.action, &inputs, 0);
        let secret = credential_secret(&name, plan, db, &apis.db_ar, cred);
        Source {
            secret_ref: Some(name),
            new_secret: Some(secret),
            name_input,
            describe,
        }
    };
    match (plan.action, &plan.credential) {
        (Action::Rotate, NewCredential::Operator) => {
            // NB: the operator writes the new password into the auth Secret itself.
            not_reverted(plan, auth)?;
            Ok(Source {
                secret_ref: None,
                new_secret: None,
                name_input: String::new(),
                describe: "",
            })
        }
        (Action::Rotate, NewCredential::Secret(s)) => {
            let hint = format!(
                "create it with `kubectl create secret generic {s} -n {ns} --type={BASIC_AUTH} \
                 --from-literal=username=... --from-literal=password=...`, or use --password-stdin"
            );
            let user_secret = get_secret(&apis.secrets, ns, s, &hint).await?;
            let current = current_user
                .as_deref()
                .filter(|_| engine.username_immutable);
            check_user_secret(engine, &user_secret, current)?;
            not_reverted(plan, &user_secret)?;
            let given = creds::decode_data(user_secret.data.as_ref());
            if let Some(p) = given.get(creds::PASSWORD_KEY) {
                unchanged(p, &format!("in secret {s}"))?;
            }
            Ok(Source {
                secret_ref: Some(s.clone()),
                new_secret: None,
                name_input: s.clone(),
                describe: "",
            })
        }
        (Action::Rotate, NewCredential::Supplied { username, .. })
        | (Action::Rotate, NewCredential::Generate { username }) => {
            // The username: the engine's fixed one, else the one asked for (if the engine
            // lets it change), else the current one. Qdrant's API key has none.
            let username = match (engine.admin_user, username) {
                _ if engine.prev == PrevLayout::None => String::new(),
                (Some(admin), _) => admin.to_string(),
                (None, Some(u)) if !engine.username_immutable => u.clone(),
                (None, _) => current_user.clone().ok_or_else(|| Error::NotFound {
                    what: format!("a username in secret {ns}/{auth_name}"),
                    hint: Some("name one with --username".into()),
                })?,
            };
            if let Some(asked) = plan.credential.username() {
                creds::check_username(engine, asked, Some(&username)).map_err(Error::Usage)?;
            }
            let password = match &plan.credential {
                NewCredential::Supplied { password, .. } => {
                    creds::check_policy(engine.password_policy, &username, password).map_err(
                        |why| {
                            Error::Usage(format!("the password from stdin cannot be used: {why}"))
                        },
                    )?;
                    unchanged(password.expose(), "from stdin")?;
                    password.clone()
                }
                _ => crate::password::generate(engine.password_policy, &username),
            };
            let cred = Credential { username, password };
            // NB: a fresh nonce per run: a Secret holds one password, so a re-run must not
            // collide with (or adopt) an earlier run's Secret.
            let describe = if matches!(plan.credential, NewCredential::Generate { .. }) {
                "a password generated by the plugin"
            } else {
                "the password read from stdin"
            };
            Ok(new_secret(&cred, crate::context::random_id(), describe))
        }
        (Action::Rollback, _) => {
            let cred = match creds::previous(engine, &auth_data) {
                Previous::Found(c) => c,
                Previous::Missing(keys) => {
                    return Err(Error::Refused(format!(
                        "{target} has no previous credential to roll back to: secret \
                         {ns}/{auth_name} has no {keys} (they appear after a rotation: \
                         kubectl rotate auth {target} -n {ns})"
                    )));
                }
                Previous::Unsupported(why) => {
                    return Err(Error::Refused(format!(
                        "{target} cannot be rolled back: {why}"
                    )));
                }
            };
            // NB: a rollback's Secret is named from the same inputs as its request, so the
            // two share one name and a retried rollback adopts both.
            Ok(new_secret(
                &cred,
                String::new(),
                "the previous credential in the auth Secret",
            ))
        }
    }
}

/// What changes each time the credentials change: the database's
/// `status.authSecret.lastUpdateTimestamp`, else the auth Secret's resourceVersion (pure).
pub fn last_update_stamp(db: &DbItem, auth: &Secret) -> String {
    db.status
        .auth_secret
        .as_ref()
        .and_then(|a| a.last_update_timestamp.clone())
        .or_else(|| auth.metadata.resource_version.clone())
        .unwrap_or_default()
}

/// Reads the database's auth Secret, which must exist before anything is written, whatever
/// the credential's source: a rotation would fail without it, and it holds what a new
/// credential is compared with.
pub async fn read_auth_secret(apis: &Apis, plan: &Plan, auth_name: &str) -> Result<Secret> {
    get_secret(
        &apis.secrets,
        &plan.namespace,
        auth_name,
        "the database's auth Secret is missing; KubeDB creates it with the database",
    )
    .await
}

/// Creates the Secret for a new credential; adopts an identical one left by an earlier
/// attempt.
pub async fn create_credential_secret(
    secrets: &Api<Secret>,
    pp: &PostParams,
    plan: &Plan,
    secret: &Secret,
) -> Result<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    match retry(|| secrets.create(pp, secret)).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(&e, kube::Error::Api(s) if s.reason == "AlreadyExists") => {
            let existing = get_secret(secrets, &plan.namespace, &name, "").await?;
            let ours = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .map(String::as_str)
                == Some(MANAGER);
            if ours && existing.data == secret.data && existing.type_ == secret.type_ {
                Ok(())
            } else {
                Err(Error::Refused(format!(
                    "secret {}/{name} already exists and is not the one this rollback would create; delete it or rename it",
                    plan.namespace
                )))
            }
        }
        Err(e) => Err(Error::api(
            format!("create secret {}/{name}", plan.namespace),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;
    use kube::api::GroupVersionKind;

    fn secret(name: &str, typ: &str, pairs: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            type_: Some(typ.into()),
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn a_user_secret_must_be_basic_auth_with_both_keys() {
        let ms = find("ms").unwrap();
        let e = check_user_secret(
            ms,
            &secret(
                "s",
                "Opaque",
                &[("username", "sa"), ("password", "Abcdef12")],
            ),
            Some("sa"),
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("kubernetes.io/basic-auth"));
        let e = check_user_secret(
            ms,
            &secret("s", BASIC_AUTH, &[("username", "sa")]),
            Some("sa"),
        );
        assert_eq!(e.unwrap_err().exit_code(), 2);
        assert!(check_user_secret(
            ms,
            &secret(
                "s",
                BASIC_AUTH,
                &[("username", "sa"), ("password", "Abcdef12")]
            ),
            Some("sa")
        )
        .is_ok());
    }

    #[test]
    fn a_user_secret_must_keep_the_fixed_admin_user_and_policy_without_echoing_the_password() {
        let ms = find("ms").unwrap();
        let e = check_user_secret(
            ms,
            &secret(
                "s",
                BASIC_AUTH,
                &[("username", "bob"), ("password", "Abcdef12")],
            ),
            Some("sa"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"sa\""), "{e}");
        let e = check_user_secret(
            ms,
            &secret(
                "s",
                BASIC_AUTH,
                &[("username", "sa"), ("password", "weakpassword")],
            ),
            Some("sa"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("upper-case"), "{e}");
        assert!(!e.to_string().contains("weakpassword"), "{e}");
    }

    #[test]
    fn a_qdrant_secret_needs_only_the_api_key_in_password() {
        let qd = find("qdrant").unwrap();
        assert!(
            check_user_secret(qd, &secret("s", BASIC_AUTH, &[("password", "k3y")]), None).is_ok()
        );
        assert!(check_user_secret(
            find("kafka").unwrap(),
            &secret("s", BASIC_AUTH, &[("password", "k3y")]),
            None
        )
        .is_err());
    }

    #[test]
    fn engines_that_forbid_a_username_change_compare_with_the_current_user() {
        // MySQL's admin is fixed to root anyway; Postgres too. Use a made-up current user to
        // show the current-user check fires independently of the admin check.
        let pg = find("pg").unwrap();
        let s = secret(
            "s",
            BASIC_AUTH,
            &[("username", "postgres"), ("password", "x")],
        );
        let e = check_user_secret(pg, &s, Some("pgadmin")).unwrap_err();
        assert!(e.to_string().contains("cannot change its username"), "{e}");
        // Kafka has no fixed admin and allows a username change.
        let kf = find("kafka").unwrap();
        assert!(check_user_secret(
            kf,
            &secret("s", BASIC_AUTH, &[("username", "any"), ("password", "x")]),
            Some("admin")
        )
        .is_ok());
    }

    #[test]
    fn the_rollback_secret_is_basic_auth_owned_by_the_database_and_prints_redacted() {
        let p = Plan::for_test("pg/pg-demo", Action::Rollback);
        let db_ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kubedb.com", "v1", "Postgres"),
            "postgreses",
        );
        let mut db = DynamicObject::new("pg-demo", &db_ar).within("demo");
        db.metadata.uid = Some("uid-1".into());
        let cred = Credential {
            username: "postgres".into(),
            password: Password::new("OldPassw0rd"),
        };
        let s = credential_secret("pg-demo-rollback-auth-abcde", &p, &db, &db_ar, &cred);
        assert_eq!(s.type_.as_deref(), Some(BASIC_AUTH));
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.uid.as_str(),
                owner.api_version.as_str()
            ),
            ("Postgres", "uid-1", "kubedb.com/v1")
        );
        assert_eq!(
            s.metadata.labels.as_ref().unwrap()[MANAGED_BY_LABEL],
            MANAGER
        );
        assert_eq!(s.data.as_ref().unwrap()["password"].0, b"OldPassw0rd");
        let shown = redacted(&s).to_string();
        assert!(
            !shown.contains("OldPassw0rd") && !shown.contains("T2xkUGFzc3cwcmQ"),
            "{shown}"
        );
        assert!(shown.contains("********"));
    }
}
