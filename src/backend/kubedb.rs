//! KubeDB: a rotation is a `<Kind>OpsRequest` of type `RotateAuth`; a rollback is a
//! basic-auth Secret made from the auth Secret's previous credential plus a RotateAuth that
//! uses it. One generic backend driven by the engine table.
//!
//! The ops request's name is derived from what it acts on (database uid, the auth Secret's
//! last update, the source Secret, the action), so a retried create collides with the
//! first one (409 AlreadyExists) and is adopted instead of starting a second rotation.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{json, Value};

use super::session::Session;
use super::{
    annotations as ann, bounded, follow, get_target, retry, str_at, NewCredential, Plan, Wanted,
};
use crate::cli::{ApplyPolicy, DryRun};
use crate::context::Ctx;
use crate::creds::{self, Credential, Password, Previous, PASSWORD_KEY, USERNAME_KEY};
use crate::engines::{EngineSpec, OpsSpec, PrevLayout, KUBEDB_OPS_GROUP};
use crate::error::{status_code, Error, Result};
use crate::rotation::{Action, Outcome, Progress, ProgressEvent, RequestRef, Rotation};

/// The ops request type this plugin creates.
pub const ROTATE_AUTH: &str = "RotateAuth";
/// The type of a user-supplied credential Secret.
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
/// `app.kubernetes.io/managed-by` value on objects the plugin creates.
pub const MANAGED_BY: &str = "kubectl-rotate";

/// How many names to try when earlier attempts of the same rotation already finished.
const NAME_ATTEMPTS: u32 = 8;

/// FNV-1a, 64 bit: stable across Rust versions and platforms, unlike `DefaultHasher`.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The deterministic name of an ops request (and rollback Secret):
/// `<db>-rotate-auth-<5 hex>` or `<db>-rollback-auth-<5 hex>`, at most 63 characters.
pub fn request_name(db: &str, action: Action, inputs: &[&str], attempt: u32) -> String {
    let attempt = attempt.to_string();
    let mut parts = vec![db, action.as_str()];
    parts.extend_from_slice(inputs);
    parts.push(&attempt);
    let suffix = format!("-{}-auth-{:05x}", action.as_str(), fnv1a(&parts) & 0xfffff);
    let room = 63 - suffix.len();
    let prefix = if db.len() > room {
        db[..room].trim_end_matches(['-', '.'])
    } else {
        db
    };
    format!("{prefix}{suffix}")
}

/// Whether an ops request phase is final.
pub fn is_terminal(phase: &str) -> bool {
    matches!(phase, "Successful" | "Failed" | "Skipped" | "Denied")
}

/// The phase of an ops request; a missing phase is Pending (the operator has not seen it yet).
pub fn phase_of(obj: &DynamicObject) -> String {
    match str_at(&obj.data, &["status", "phase"]) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => "Pending".into(),
    }
}

/// Whether `obj` is a RotateAuth for database `ns/db` (pure).
pub fn is_rotate_auth_for(obj: &DynamicObject, ops: &OpsSpec, ns: &str, db: &str) -> bool {
    // NB: lists may span namespaces (-A); an object without a namespace is from a
    // namespaced list.
    obj.metadata.namespace.as_deref().is_none_or(|n| n == ns)
        && str_at(&obj.data, &["spec", "type"]) == Some(ROTATE_AUTH)
        && str_at(&obj.data, &["spec", ops.target_field.field(), "name"]) == Some(db)
}

/// The first RotateAuth for `ns/db` that is not finished yet, if any (pure).
pub fn active_rotation<'a>(
    items: &'a [DynamicObject],
    ops: &OpsSpec,
    ns: &str,
    db: &str,
) -> Option<&'a DynamicObject> {
    items
        .iter()
        .find(|o| is_rotate_auth_for(o, ops, ns, db) && !is_terminal(&phase_of(o)))
}

/// The ops request we would create (pure).
pub fn build_request(
    ops_ar: &ApiResource,
    ops: &OpsSpec,
    plan: &Plan,
    name: &str,
    secret_ref: Option<&str>,
) -> DynamicObject {
    let mut spec = serde_json::Map::new();
    spec.insert("type".into(), json!(ROTATE_AUTH));
    spec.insert(
        ops.target_field.field().into(),
        json!({"name": plan.target.name}),
    );
    if let Some(s) = secret_ref {
        spec.insert("authentication".into(), json!({"secretRef": {"name": s}}));
    }
    if let Some(t) = &plan.timeout {
        spec.insert("timeout".into(), json!(t.as_str()));
    }
    spec.insert("apply".into(), json!(plan.apply.as_str()));
    let mut obj = DynamicObject::new(name, ops_ar)
        .within(&plan.namespace)
        .data(json!({"spec": spec}));
    obj.metadata.labels = Some(BTreeMap::from([
        (
            "app.kubernetes.io/instance".to_string(),
            plan.target.name.clone(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
    ]));
    obj.metadata.annotations = Some(BTreeMap::from([(
        ann::LAST_ACTION.to_string(),
        plan.action.as_str().to_string(),
    )]));
    obj
}

/// Whether an existing ops request asks for the same thing as `wanted`, ignoring what the
/// server defaults (`maxRetries`, `apply`).
pub fn same_request(existing: &DynamicObject, wanted: &DynamicObject, ops: &OpsSpec) -> bool {
    let field = ops.target_field.field();
    let pick = |o: &DynamicObject| {
        (
            str_at(&o.data, &["spec", "type"]).map(str::to_string),
            str_at(&o.data, &["spec", field, "name"]).map(str::to_string),
            str_at(&o.data, &["spec", "authentication", "secretRef", "name"]).map(str::to_string),
            str_at(&o.data, &["spec", "timeout"]).map(str::to_string),
            str_at(&o.data, &["spec", "apply"])
                .unwrap_or("IfReady")
                .to_string(),
        )
    };
    pick(existing) == pick(wanted)
}

/// Why a finished ops request did not succeed: the last condition with status False, else
/// the last condition, else a plain statement (pure).
pub fn failure_reason(obj: &DynamicObject) -> String {
    let conditions = obj
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text = |c: &Value| {
        let m = c.get("message").and_then(Value::as_str).unwrap_or_default();
        let t = c.get("type").and_then(Value::as_str).unwrap_or_default();
        if m.is_empty() {
            t.to_string()
        } else {
            format!("{t}: {m}")
        }
    };
    if let Some(c) = conditions
        .iter()
        .rev()
        .find(|c| c.get("status").and_then(Value::as_str) == Some("False"))
    {
        return text(c);
    }
    if phase_of(obj) == "Skipped" {
        if let Some(c) = conditions
            .iter()
            .rev()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Skipped"))
        {
            return text(c);
        }
        return "the operator skipped it: a newer RotateAuth for the same database superseded it"
            .into();
    }
    conditions
        .last()
        .map(text)
        .unwrap_or_else(|| "the operator gave no reason".into())
}

/// Conditions not reported yet, as progress events, in the order the server lists them.
pub fn new_conditions(
    obj: &DynamicObject,
    seen: &mut HashSet<(String, String)>,
) -> Vec<ProgressEvent> {
    let request = obj.metadata.name.clone().unwrap_or_default();
    let conditions = obj
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conditions
        .iter()
        .filter_map(|c| {
            let type_ = c.get("type")?.as_str()?.to_string();
            let status = c
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("Unknown")
                .to_string();
            seen.insert((type_.clone(), status.clone()))
                .then(|| ProgressEvent::Condition {
                    request: request.clone(),
                    type_,
                    status,
                    message: c
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
        })
        .collect()
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
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/instance".to_string(),
                    plan.target.name.clone(),
                ),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    MANAGED_BY.to_string(),
                ),
            ])),
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

/// The auth Secret's name: `spec.authSecret.name`, default `<db><engine's suffix>`
/// (`-auth`; DocumentDB `-admin-auth`).
fn auth_secret_name(db: &DynamicObject, plan: &Plan) -> String {
    str_at(&db.data, &["spec", "authSecret", "name"])
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}{}", plan.target.name, plan.target.engine.auth_suffix))
}

/// Reads a Secret; a 404 says what to do.
async fn get_secret(api: &Api<Secret>, plan: &Plan, name: &str, hint: &str) -> Result<Secret> {
    match retry(|| api.get_opt(name)).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(Error::NotFound {
            what: format!("secret {name:?} in namespace {:?}", plan.namespace),
            hint: Some(hint.to_string()),
        }),
        Err(e) => Err(Error::api(
            format!("get secret {}/{name}", plan.namespace),
            e,
        )),
    }
}

/// Refuses a change when the database is not Ready (unless `--apply Always`) or when a
/// RotateAuth for it is already pending or running (pure).
pub fn check_preconditions(
    plan: &Plan,
    ops: &OpsSpec,
    db: &DynamicObject,
    existing: &[DynamicObject],
) -> Result<()> {
    let target = plan.target.to_string();
    let db_phase = str_at(&db.data, &["status", "phase"]).unwrap_or("Unknown");
    if plan.apply == ApplyPolicy::IfReady && db_phase != "Ready" {
        return Err(Error::Refused(format!(
            "{target} is not Ready (phase {db_phase}); wait until it is, or use --apply Always"
        )));
    }
    if let Some(busy) = active_rotation(existing, ops, &plan.namespace, &plan.target.name) {
        let name = busy.metadata.name.clone().unwrap_or_default();
        return Err(Error::InProgress {
            target,
            request: format!("{} {name}", ops.kind.to_ascii_lowercase()),
            phase: phase_of(busy),
            follow: follow_command(ops, &name, &plan.namespace),
        });
    }
    Ok(())
}

/// `kubectl get pgops NAME -n NS -w`.
fn follow_command(ops: &OpsSpec, name: &str, ns: &str) -> String {
    format!("kubectl get {} {name} -n {ns} -w", ops.short_name)
}

/// Where the new credential comes from.
struct Source {
    /// The Secret the ops request references (`--secret`, or one the plugin creates).
    secret_ref: Option<String>,
    /// A Secret to create first (rollback, `--password-stdin`, `--generate`).
    new_secret: Option<Secret>,
    /// What the ops request's name is derived from, besides the database and its last
    /// credential change.
    name_input: String,
    /// What the created Secret's values are, for the client dry-run note.
    describe: &'static str,
}

/// The server-side objects one run works with.
struct Apis {
    db: Api<DynamicObject>,
    ops: Api<DynamicObject>,
    secrets: Api<Secret>,
    db_ar: ApiResource,
    ops_ar: ApiResource,
}

/// Rotates or rolls back one KubeDB database (a command with one target).
pub async fn run(ctx: &Ctx, plan: &Plan, progress: &mut dyn Progress) -> Result<Outcome> {
    run_in(&Session::single(ctx), plan, None, progress).await
}

/// Rotates or rolls back a KubeDB database within a session shared with other targets:
/// resolve, check, decide the credential's source, then create (or preview) and
/// optionally follow the ops request. `db` is the database when the caller already
/// listed it (bulk selections), saving a GET.
pub async fn run_in(
    session: &Session,
    plan: &Plan,
    db: Option<DynamicObject>,
    progress: &mut dyn Progress,
) -> Result<Outcome> {
    let ctx = session.ctx();
    let engine = plan.target.engine;
    let ops = engine
        .ops()
        .ok_or_else(|| Error::Unexpected(format!("{} has no ops request", engine.kind)))?;
    let mut ars = session.resolve(&Wanted::engine_and_ops(engine)).await?;
    let ns = plan.namespace.as_str();
    let (ops_ar, db_ar) = (ars.remove(1), ars.remove(0));
    let apis = Apis {
        db: Api::namespaced_with(ctx.client.clone(), ns, &db_ar),
        ops: Api::namespaced_with(ctx.client.clone(), ns, &ops_ar),
        secrets: Api::namespaced(ctx.client.clone(), ns),
        db_ar,
        ops_ar,
    };
    let db_name = plan.target.name.as_str();

    // Everything is checked before the first write.
    let db = match db {
        Some(db) => db,
        None => get_target(&apis.db, plan).await?,
    };
    let existing = session.ops_snapshot(&apis.ops_ar, ns).await?;
    check_preconditions(plan, ops, &db, &existing.items)?;
    let auth_name = auth_secret_name(&db, plan);
    // What the request's name is derived from: these change whenever the credentials do.
    let stamp = last_update_stamp(&db, &apis.secrets, &auth_name).await?;
    let uid = db.metadata.uid.clone().unwrap_or_default();
    let source = credential_source(plan, &apis, &db, &auth_name, &[&uid, &stamp]).await?;
    let name_for = |attempt| {
        request_name(
            db_name,
            plan.action,
            &[&uid, &stamp, &source.name_input],
            attempt,
        )
    };

    if plan.dry_run == DryRun::Client {
        return preview(plan, ops, &apis.ops_ar, &name_for(0), &source);
    }

    let mut rotation = Rotation::new(ns, engine, db_name, plan.action);
    rotation.secret = source.secret_ref.clone();
    rotation.dry_run = plan.dry_run;
    let pp = PostParams {
        dry_run: plan.dry_run == DryRun::Server,
        field_manager: Some("kubectl-rotate".into()),
    };
    if let Some(secret) = &source.new_secret {
        create_credential_secret(&apis.secrets, &pp, plan, secret).await?;
    }
    let started = Instant::now();
    let secret_ref = source.secret_ref.as_deref();
    let (created, adopted) = match create_request(
        &apis.ops,
        &pp,
        &apis.ops_ar,
        ops,
        plan,
        &name_for,
        secret_ref,
    )
    .await
    {
        Ok(c) => c,
        // NB: in a server dry run the new Secret was not saved, so KubeDB's webhook,
        // which checks that the referenced Secret exists, refuses the ops request. All
        // else was checked; say so rather than fail.
        Err(Error::Api { source: e, .. })
            if plan.dry_run == DryRun::Server
                && source.new_secret.is_some()
                && matches!(status_code(&e), Some(400 | 403 | 404 | 422))
                && e.to_string().contains(secret_ref.unwrap_or("\u{0}")) =>
        {
            progress.warn(&format!(
                "server dry run: the ops request's admission check could not see Secret {} \
                     (a dry run does not save it); the Secret itself was accepted",
                secret_ref.unwrap_or_default()
            ));
            rotation.request = Some(request_ref(ops, name_for(0)));
            rotation.phase = "Pending".into();
            return Ok(Outcome::Done {
                rotation,
                follow: None,
            });
        }
        Err(e) => {
            // Leave nothing behind: the Secret made for this request is of no use without it.
            if let (Some(name), DryRun::None) = (
                source
                    .new_secret
                    .as_ref()
                    .and_then(|s| s.metadata.name.clone()),
                plan.dry_run,
            ) {
                let _ = apis.secrets.delete(&name, &Default::default()).await;
            }
            return Err(e);
        }
    };
    let request_name = created.metadata.name.clone().unwrap_or_default();
    rotation.request = Some(request_ref(ops, request_name.clone()));
    rotation.adopted = adopted;
    rotation.phase = phase_of(&created);
    if adopted {
        progress.warn(&format!(
            "{} {request_name} already existed with the same spec (an earlier attempt of this \
             command); following it instead of creating another",
            ops.kind
        ));
    }
    if plan.dry_run == DryRun::Server {
        return Ok(Outcome::Done {
            rotation,
            follow: None,
        });
    }
    if !adopted {
        crate::audit::record(
            ctx,
            &db,
            &apis.db_ar,
            plan.action,
            crate::audit::Detail::Request(request_name.clone()),
            progress,
        )
        .await;
    }
    if !plan.wait {
        let follow = Some(follow_command(ops, &request_name, ns));
        return Ok(Outcome::Done { rotation, follow });
    }

    let finished = wait_for(session, &apis, ops, plan, &created, progress).await?;
    rotation.duration_seconds = Some(started.elapsed().as_secs_f64());
    rotation.phase = phase_of(&finished);
    if rotation.phase != "Successful" {
        return Err(Error::RotationFailed {
            request: format!("{} {request_name}", ops.kind.to_ascii_lowercase()),
            phase: rotation.phase,
            reason: failure_reason(&finished),
        });
    }
    rotation.message = finished
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Outcome::Done {
        rotation,
        follow: None,
    })
}

fn request_ref(ops: &OpsSpec, name: String) -> RequestRef {
    RequestRef {
        kind: ops.kind.into(),
        group: KUBEDB_OPS_GROUP.into(),
        name,
    }
}

/// Decides where the new credential comes from, checking it: nothing (the operator
/// generates one), the `--secret` (validated), a password from stdin or generated here
/// (checked, put in a new Secret), or the previous credential (rollback).
async fn credential_source(
    plan: &Plan,
    apis: &Apis,
    db: &DynamicObject,
    auth_name: &str,
    name_inputs: &[&str],
) -> Result<Source> {
    let engine = plan.target.engine;
    let (ns, target) = (plan.namespace.as_str(), plan.target.to_string());
    let missing_auth = "the database's auth Secret is missing";
    let current_user = || async {
        let auth = get_secret(&apis.secrets, plan, auth_name, missing_auth).await?;
        Ok::<_, Error>(creds::current_username(
            engine,
            &creds::decode_data(auth.data.as_ref()),
        ))
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
        (Action::Rotate, NewCredential::Operator) => Ok(Source {
            secret_ref: None,
            new_secret: None,
            name_input: String::new(),
            describe: "",
        }),
        (Action::Rotate, NewCredential::Secret(s)) => {
            let hint = format!(
                "create it with `kubectl create secret generic {s} -n {ns} --type={BASIC_AUTH} \
                 --from-literal=username=... --from-literal=password=...`, or use --password-stdin"
            );
            let user_secret = get_secret(&apis.secrets, plan, s, &hint).await?;
            let current = if engine.username_immutable {
                current_user().await?
            } else {
                None
            };
            check_user_secret(engine, &user_secret, current.as_deref())?;
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
                (None, _) => current_user().await?.ok_or_else(|| Error::NotFound {
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
            Ok(new_secret(&cred, super::random_id(), describe))
        }
        (Action::Rollback, _) => {
            let auth = get_secret(&apis.secrets, plan, auth_name, missing_auth).await?;
            let cred = match creds::previous(engine, &creds::decode_data(auth.data.as_ref())) {
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

/// `--dry-run=client`: what would be sent, Secret values redacted (pure).
fn preview(
    plan: &Plan,
    ops: &OpsSpec,
    ops_ar: &ApiResource,
    name: &str,
    source: &Source,
) -> Result<Outcome> {
    let ns = plan.namespace.as_str();
    let request = build_request(ops_ar, ops, plan, name, source.secret_ref.as_deref());
    let mut documents = Vec::new();
    let mut requests = Vec::new();
    if let Some(s) = &source.new_secret {
        documents.push(redacted(s));
        requests.push(format!(
            "POST secrets {ns}/{} (values shown as ********: {})",
            s.metadata.name.as_deref().unwrap_or_default(),
            source.describe
        ));
    }
    documents.push(serde_json::to_value(&request).map_err(|e| Error::Unexpected(e.to_string()))?);
    requests.push(format!(
        "POST {}.{KUBEDB_OPS_GROUP} {ns}/{name} ({})",
        ops.plural, ops_ar.version
    ));
    let name = crate::output::object_name(ops.kind, KUBEDB_OPS_GROUP, name);
    Ok(Outcome::Preview {
        documents,
        name,
        requests,
    })
}

/// Follows an ops request to a final phase, reporting each new condition and phase once:
/// through the session's shared watch with many targets, else with a watch of its own.
async fn wait_for(
    session: &Session,
    apis: &Apis,
    ops: &OpsSpec,
    plan: &Plan,
    created: &DynamicObject,
    progress: &mut dyn Progress,
) -> Result<DynamicObject> {
    let name = created.metadata.name.clone().unwrap_or_default();
    let mut seen = HashSet::new();
    let mut last_phase = String::new();
    let step = |o: &DynamicObject| {
        let phase = phase_of(o);
        for e in new_conditions(o, &mut seen) {
            progress.event(&e);
        }
        if phase != last_phase {
            last_phase = phase.clone();
            progress.event(&ProgressEvent::Phase {
                object: name.clone(),
                phase: phase.clone(),
                detail: None,
            });
        }
        Ok(is_terminal(&phase).then(|| o.clone()))
    };
    let watching = async {
        if session.shared_watch() {
            session.follow_shared(&apis.ops_ar, created, step).await
        } else {
            follow(session.ctx(), &apis.ops, created, step).await
        }
    };
    bounded(
        watching,
        plan.wait_bound(),
        format!("{} {name}", ops.kind.to_ascii_lowercase()),
        follow_command(ops, &name, &plan.namespace),
    )
    .await
}

/// What changes each time the credentials change: the database's
/// `status.authSecret.lastUpdateTimestamp`, else the auth Secret's resourceVersion.
async fn last_update_stamp(
    db: &DynamicObject,
    secrets: &Api<Secret>,
    auth_name: &str,
) -> Result<String> {
    if let Some(t) = str_at(&db.data, &["status", "authSecret", "lastUpdateTimestamp"]) {
        return Ok(t.to_string());
    }
    // Metadata only: no need to fetch the Secret's data for this.
    match retry(|| secrets.get_metadata_opt(auth_name)).await {
        Ok(Some(m)) => Ok(m.metadata.resource_version.unwrap_or_default()),
        Ok(None) => Ok(String::new()),
        Err(e) => Err(Error::api(format!("get secret {auth_name}"), e)),
    }
}

/// Creates the Secret for a new credential; adopts an identical one left by an earlier
/// attempt.
async fn create_credential_secret(
    secrets: &Api<Secret>,
    pp: &PostParams,
    plan: &Plan,
    secret: &Secret,
) -> Result<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    match retry(|| secrets.create(pp, secret)).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(&e, kube::Error::Api(s) if s.reason == "AlreadyExists") => {
            let existing = get_secret(secrets, plan, &name, "").await?;
            let ours = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/managed-by"))
                .map(String::as_str)
                == Some(MANAGED_BY);
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

/// Creates the ops request under its deterministic name. On AlreadyExists: adopts it when
/// it asks for the same thing and is still running; moves on to the next attempt's name
/// when it already finished (a retry after a failure).
async fn create_request(
    api: &Api<DynamicObject>,
    pp: &PostParams,
    ops_ar: &ApiResource,
    ops: &OpsSpec,
    plan: &Plan,
    name_for: &dyn Fn(u32) -> String,
    secret_ref: Option<&str>,
) -> Result<(DynamicObject, bool)> {
    for attempt in 0..NAME_ATTEMPTS {
        let name = name_for(attempt);
        let wanted = build_request(ops_ar, ops, plan, &name, secret_ref);
        let action = format!(
            "create {}.{} {}/{name}",
            ops.plural, KUBEDB_OPS_GROUP, plan.namespace
        );
        match retry(|| api.create(pp, &wanted)).await {
            Ok(created) => return Ok((created, false)),
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => {
                let existing = retry(|| api.get(&name))
                    .await
                    .map_err(|e| Error::api(format!("get {name}"), e))?;
                if !same_request(&existing, &wanted, ops) {
                    return Err(Error::Refused(format!(
                        "{} {name} already exists with a different spec; it was not created by this command. \
                         Inspect it with `kubectl get {} {name} -n {} -o yaml`",
                        ops.kind, ops.short_name, plan.namespace
                    )));
                }
                if !is_terminal(&phase_of(&existing)) {
                    return Ok((existing, true));
                }
            }
            Err(e) => return Err(Error::api(action, e)),
        }
    }
    Err(Error::Refused(format!(
        "{NAME_ATTEMPTS} earlier RotateAuth requests for {} already finished without a credential change; \
         look at them with `kubectl get {} -n {}`",
        plan.target, ops.short_name, plan.namespace
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::TargetArgs;
    use crate::duration::GoDuration;
    use crate::engines::find;
    use crate::target::Target;
    use kube::api::GroupVersionKind;

    fn plan(target: &str, action: Action) -> Plan {
        Plan {
            action,
            target: Target::parse(&TargetArgs {
                target: target.into(),
                name: None,
            })
            .unwrap(),
            namespace: "demo".into(),
            apply: ApplyPolicy::IfReady,
            wait: false,
            timeout: None,
            dry_run: DryRun::None,
            credential: Default::default(),
        }
    }

    fn ops_ar(kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(KUBEDB_OPS_GROUP, "v1alpha1", kind),
            plural,
        )
    }

    /// A chainable ops request fixture.
    struct Ops(DynamicObject);

    impl Ops {
        fn rotate_auth(name: &str, db: &str) -> Ops {
            let o = DynamicObject::new(name, &ops_ar("PostgresOpsRequest", "postgresopsrequests"))
                .within("demo")
                .data(json!({"spec": {"type": "RotateAuth", "databaseRef": {"name": db}, "apply": "IfReady", "maxRetries": 1}}));
            Ops(o)
        }
        fn typ(mut self, t: &str) -> Ops {
            self.0.data["spec"]["type"] = json!(t);
            self
        }
        fn phase(mut self, p: &str) -> Ops {
            self.0.data["status"]["phase"] = json!(p);
            self
        }
        fn condition(mut self, t: &str, status: &str, message: &str) -> Ops {
            if self.0.data["status"]["conditions"].is_null() {
                self.0.data["status"]["conditions"] = json!([]);
            }
            self.0.data["status"]["conditions"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": t, "status": status, "message": message}));
            self
        }
    }

    #[test]
    fn request_names_are_deterministic_and_differ_per_input() {
        let a = request_name(
            "pg-demo",
            Action::Rotate,
            &["uid-1", "2025-01-01T00:00:00Z", ""],
            0,
        );
        assert_eq!(
            a,
            request_name(
                "pg-demo",
                Action::Rotate,
                &["uid-1", "2025-01-01T00:00:00Z", ""],
                0
            )
        );
        assert!(
            a.starts_with("pg-demo-rotate-auth-") && a.len() == "pg-demo-rotate-auth-".len() + 5,
            "{a}"
        );
        assert_ne!(
            a,
            request_name(
                "pg-demo",
                Action::Rotate,
                &["uid-1", "2025-01-02T00:00:00Z", ""],
                0
            )
        );
        assert_ne!(
            a,
            request_name(
                "pg-demo",
                Action::Rotate,
                &["uid-1", "2025-01-01T00:00:00Z", "s"],
                0
            )
        );
        assert_ne!(
            a,
            request_name(
                "pg-demo",
                Action::Rotate,
                &["uid-1", "2025-01-01T00:00:00Z", ""],
                1
            )
        );
        assert!(request_name("pg-demo", Action::Rollback, &["u"], 0)
            .starts_with("pg-demo-rollback-auth-"));
    }

    #[test]
    fn request_names_of_long_databases_are_cut_to_a_valid_63_character_name() {
        let db = format!("{}-x", "a".repeat(60));
        let n = request_name(&db, Action::Rollback, &["u"], 0);
        assert!(n.len() <= 63, "{n}");
        crate::target::validate_name(&n).unwrap();
        let db = format!("{}-{}", "a".repeat(41), "b".repeat(30));
        let n = request_name(&db, Action::Rotate, &["u"], 0);
        assert!(!n.contains("--"), "{n}");
    }

    #[test]
    fn the_request_is_a_rotate_auth_on_the_database_with_the_flags_passed_through() {
        let mut p = plan("pg/pg-demo", Action::Rotate);
        p.timeout = Some("5m".parse::<GoDuration>().unwrap());
        p.apply = ApplyPolicy::Always;
        let ops = find("pg").unwrap().ops().unwrap();
        let r = build_request(
            &ops_ar("PostgresOpsRequest", "postgresopsrequests"),
            ops,
            &p,
            "n",
            Some("pg-new"),
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["apiVersion"], "ops.kubedb.com/v1alpha1");
        assert_eq!(v["kind"], "PostgresOpsRequest");
        assert_eq!(v["metadata"]["namespace"], "demo");
        assert_eq!(
            v["spec"],
            json!({"type": "RotateAuth", "databaseRef": {"name": "pg-demo"}, "authentication": {"secretRef": {"name": "pg-new"}},
                   "timeout": "5m", "apply": "Always"})
        );
    }

    #[test]
    fn proxysql_requests_name_their_target_in_proxy_ref() {
        let p = plan("proxysql/prx", Action::Rotate);
        let ops = find("proxysql").unwrap().ops().unwrap();
        let r = build_request(
            &ops_ar("ProxySQLOpsRequest", "proxysqlopsrequests"),
            ops,
            &p,
            "n",
            None,
        );
        assert_eq!(r.data["spec"]["proxyRef"], json!({"name": "prx"}));
        assert!(r.data["spec"].get("databaseRef").is_none());
        assert!(
            r.data["spec"].get("authentication").is_none(),
            "operator-generated by default"
        );
    }

    fn db(phase: &str) -> DynamicObject {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kubedb.com", "v1", "Postgres"),
            "postgreses",
        );
        DynamicObject::new("pg-demo", &ar)
            .within("demo")
            .data(json!({"status": {"phase": phase}}))
    }

    #[test]
    fn a_database_that_is_not_ready_is_refused_unless_apply_always() {
        let ops = find("pg").unwrap().ops().unwrap();
        let mut p = plan("pg/pg-demo", Action::Rotate);
        let e = check_preconditions(&p, ops, &db("Provisioning"), &[]).unwrap_err();
        assert_eq!(e.exit_code(), 6);
        assert!(e.to_string().contains("phase Provisioning"), "{e}");
        p.apply = ApplyPolicy::Always;
        assert!(check_preconditions(&p, ops, &db("Provisioning"), &[]).is_ok());
    }

    #[test]
    fn a_running_rotation_is_named_with_a_command_to_follow_it() {
        let ops = find("pg").unwrap().ops().unwrap();
        let p = plan("pg/pg-demo", Action::Rollback);
        let busy = vec![
            Ops::rotate_auth("pg-demo-rotate-auth-12345", "pg-demo")
                .phase("Progressing")
                .0,
        ];
        let e = check_preconditions(&p, ops, &db("Ready"), &busy).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let s = e.to_string();
        assert!(
            s.contains("postgresopsrequest pg-demo-rotate-auth-12345 is Progressing"),
            "{s}"
        );
        assert!(
            s.contains("kubectl get pgops pg-demo-rotate-auth-12345 -n demo -w"),
            "{s}"
        );
    }

    #[test]
    fn a_pending_or_progressing_rotate_auth_for_the_same_database_is_found() {
        let ops = find("pg").unwrap().ops().unwrap();
        let items = vec![
            Ops::rotate_auth("old", "pg-demo").phase("Successful").0,
            Ops::rotate_auth("restart", "pg-demo").typ("Restart").0,
            Ops::rotate_auth("other-db", "pg-other").0,
            Ops::rotate_auth("fresh", "pg-demo").0,
        ];
        assert_eq!(
            active_rotation(&items, ops, "demo", "pg-demo")
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("fresh")
        );
        let items = vec![
            Ops::rotate_auth("running", "pg-demo")
                .phase("Progressing")
                .0,
        ];
        assert!(active_rotation(&items, ops, "demo", "pg-demo").is_some());
        let items = vec![Ops::rotate_auth("done", "pg-demo").phase("Failed").0];
        assert!(active_rotation(&items, ops, "demo", "pg-demo").is_none());
    }

    #[test]
    fn a_rotation_of_a_namesake_in_another_namespace_does_not_block_this_one() {
        // NB: with -A, one LIST of ops requests spans every namespace.
        let ops = find("pg").unwrap().ops().unwrap();
        let items = vec![Ops::rotate_auth("busy", "pg-demo").phase("Progressing").0];
        assert!(active_rotation(&items, ops, "demo", "pg-demo").is_some());
        assert!(active_rotation(&items, ops, "team-a", "pg-demo").is_none());
    }

    #[test]
    fn an_existing_request_with_server_defaults_still_matches_ours() {
        let ops = find("pg").unwrap().ops().unwrap();
        let p = plan("pg/pg-demo", Action::Rotate);
        let ours = build_request(
            &ops_ar("PostgresOpsRequest", "postgresopsrequests"),
            ops,
            &p,
            "n",
            None,
        );
        let theirs = Ops::rotate_auth("n", "pg-demo").phase("Progressing").0;
        assert!(same_request(&theirs, &ours, ops));
        let with_secret = build_request(
            &ops_ar("PostgresOpsRequest", "postgresopsrequests"),
            ops,
            &p,
            "n",
            Some("s"),
        );
        assert!(!same_request(&theirs, &with_secret, ops));
    }

    #[test]
    fn a_failure_is_explained_by_the_last_false_condition() {
        let o = Ops::rotate_auth("r", "pg-demo")
            .phase("Failed")
            .condition("RotateAuth", "True", "started")
            .condition("UpdateCredential", "False", "cannot update credentials")
            .condition("Failed", "True", "failed");
        assert_eq!(
            failure_reason(&o.0),
            "UpdateCredential: cannot update credentials"
        );
        let skipped = Ops::rotate_auth("r", "pg-demo").phase("Skipped");
        assert!(failure_reason(&skipped.0).contains("superseded"));
    }

    #[test]
    fn each_condition_is_reported_once_and_a_status_change_again() {
        let mut seen = HashSet::new();
        let o = Ops::rotate_auth("r", "pg-demo").condition("RotateAuth", "True", "started");
        assert_eq!(new_conditions(&o.0, &mut seen).len(), 1);
        let o = o.condition("CheckPodRunning--pg-demo-0", "False", "waiting");
        let events = new_conditions(&o.0, &mut seen);
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], ProgressEvent::Condition { type_, status, .. } if type_ == "CheckPodRunning--pg-demo-0" && status == "False")
        );
        assert!(new_conditions(&o.0, &mut seen).is_empty());
    }

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
        let p = plan("pg/pg-demo", Action::Rollback);
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
            s.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
            MANAGED_BY
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
