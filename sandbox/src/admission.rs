//! Schema defaults and validation (CRD-style), RBAC objects' (`crate::auth::objects`), and
//! KubeDB's admission webhook checks.
//!
//! Order as in a real apiserver: CRD defaults (`mutate`), CRD schema validation (required
//! fields, the ops `spec.type` enum: 422 Invalid, transcript 18), then KubeDB's validating
//! webhook for ops requests, whose denials carry the prefix
//! `admission webhook "<kind>opsrequestwebhook.validators.ops.kubedb.com" denied the request: `
//! (webhook names: kubedb/installer charts/kubedb-webhook-server/templates/ops-manager/
//! validating-webhook.yaml; prefix: kube-apiserver's webhook `ToStatusErr`).
//!
//! The webhook (kubedb/apimachinery pkg/webhooks/ops/v1alpha1/<kind>.go, run by
//! controller-runtime) answers in two shapes:
//! - a plain error (database not found, `spec` changed on update) becomes controller-runtime's
//!   `Denied`: 403 Forbidden, no details;
//! - RotateAuth secret problems are wrapped in `apierrors.NewInvalid` with group
//!   `<Kind>opsrequests.kubedb.com` and pass through as 422 Invalid with causes.

use serde_json::{json, Value};

use crate::controllers::kubedb::{
    auth_secret_name, engine, secret_data, target_field, username_of,
};
use crate::error::Cause;
use crate::{registry::ResourceDef, ApiError, Shared};

/// Apply defaults to an object being created or updated (CRD structural defaults; only
/// fills what is absent, never overwrites).
pub fn mutate(_shared: &Shared, def: &ResourceDef, obj: &mut Value) {
    if def.group == crate::auth::RBAC_GROUP {
        crate::auth::objects::default(def, obj);
        return;
    }
    crate::workloads::mutate(def, obj);
    if !obj["spec"].is_object() {
        return;
    }
    let spec = &mut obj["spec"];
    match def.group.as_str() {
        "kubedb.com" => {
            // transcript 10: what the CRD schema defaults on a Postgres create.
            if spec["authSecret"].is_object() {
                default(&mut spec["authSecret"], "apiGroup", json!(""));
                default(&mut spec["authSecret"], "kind", json!("Secret"));
            }
            default(&mut *spec, "healthChecker", json!({}));
            if spec["healthChecker"].is_object() {
                let hc = &mut spec["healthChecker"];
                default(&mut *hc, "failureThreshold", json!(1));
                default(&mut *hc, "periodSeconds", json!(10));
                default(&mut *hc, "timeoutSeconds", json!(10));
            }
            if def.kind == "Postgres" {
                default(&mut *spec, "allowedSchemas", json!({}));
                if spec["allowedSchemas"].is_object() {
                    default(&mut spec["allowedSchemas"], "namespaces", json!({}));
                    if spec["allowedSchemas"]["namespaces"].is_object() {
                        default(
                            &mut spec["allowedSchemas"]["namespaces"],
                            "from",
                            json!("Same"),
                        );
                    }
                }
            }
        }
        "ops.kubedb.com" => {
            // transcripts 15/16/19; NB: OracleOpsRequest has no maxRetries (REFERENCE.md).
            if def.kind != "OracleOpsRequest" {
                default(&mut *spec, "maxRetries", json!(1));
            }
            default(&mut *spec, "apply", json!("IfReady"));
        }
        _ => {}
    }
}

fn default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        if m.get(key).is_none_or(Value::is_null) {
            m.insert(key.to_string(), value);
        }
    }
}

/// Validate an object being created (old = None) or updated; runs on dry-run too.
///
/// NB: on update the HTTP layer calls this inside `Store::modify`, under the store's lock,
/// so with `old` set nothing here reads the store (KubeDB's webhook re-checks the database
/// on update too; the sandbox only enforces the immutable `spec` then).
pub fn validate(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    schema(def, new)?;
    crate::workloads::validate(def, new, old)?;
    if def.group == crate::auth::RBAC_GROUP {
        crate::auth::objects::validate(def, new, old)?;
    }
    if def.group == "ops.kubedb.com" {
        match old {
            Some(old) => ops_spec_unchanged(def, new, old)?,
            None => ops_webhook_create(shared, def, ns, new)?,
        }
    }
    Ok(())
}

fn object_name(obj: &Value) -> &str {
    obj["metadata"]["name"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| obj["metadata"]["generateName"].as_str())
        .unwrap_or_default()
}

fn lookup<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(obj, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

/// CRD schema checks: required fields, the ops type enum.
fn schema(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let mut required: Vec<String> = def.required.clone();
    if def.group == "ops.kubedb.com" {
        // NB: the ops CRDs require the target reference too (`databaseRef`, or `proxyRef`
        // for ProxySQL: its Go field has no omitempty).
        required.push(format!("spec.{}", target_field(&def.kind)));
    }
    let mut causes: Vec<Cause> = required
        .iter()
        .filter(|p| lookup(obj, p).is_none())
        .map(|p| Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: p.clone(),
        })
        .collect();
    if !def.ops_types.is_empty() {
        if let Some(t) = lookup(obj, "spec.type") {
            if !t
                .as_str()
                .is_some_and(|t| def.ops_types.iter().any(|x| x == t))
            {
                let shown = match t.as_str() {
                    Some(s) => format!("{s:?}"),
                    None => t.to_string(),
                };
                let supported: Vec<String> =
                    def.ops_types.iter().map(|x| format!("{x:?}")).collect();
                causes.push(Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: {shown}: supported values: {}",
                        supported.join(", ")
                    ),
                    field: "spec.type".into(),
                });
            }
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        &def.group,
        &def.kind,
        object_name(obj),
        causes,
    ))
}

/// `postgresopsrequestwebhook.validators.ops.kubedb.com`
fn webhook_name(def: &ResourceDef) -> String {
    format!(
        "{}webhook.validators.ops.kubedb.com",
        def.kind.to_lowercase()
    )
}

/// A webhook's plain-error denial (controller-runtime `Denied`): 403 Forbidden.
fn denied(def: &ResourceDef, message: &str) -> ApiError {
    ApiError::new(
        403,
        "Forbidden",
        format!(
            "admission webhook {:?} denied the request: {message}",
            webhook_name(def)
        ),
    )
}

/// The webhook's `apierrors.NewInvalid` denial: 422 with causes, under KubeDB's group
/// spelling (`Postgresopsrequests.kubedb.com`; a few kinds spell it lower-case).
fn invalid(def: &ResourceDef, ops_name: &str, field: &str, detail: &str) -> ApiError {
    let db_kind = def.kind.trim_end_matches("OpsRequest");
    let group = match db_kind {
        "Kafka" | "Elasticsearch" | "Oracle" => {
            format!("{}opsrequests.kubedb.com", db_kind.to_lowercase())
        }
        _ => format!("{db_kind}opsrequests.kubedb.com"),
    };
    let cause = Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {ops_name:?}: {detail}"),
        field: field.into(),
    };
    let mut e = ApiError::invalid(&group, &def.kind, ops_name, vec![cause]);
    e.message = format!(
        "admission webhook {:?} denied the request: {}",
        webhook_name(def),
        e.message
    );
    e
}

/// KubeDB's `validateCreateOrUpdate` on create: the target database exists; for RotateAuth
/// with `authentication.secretRef`, the secret exists and (for engines with a fixed admin
/// user) keeps the username.
fn ops_webhook_create(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    ops: &Value,
) -> Result<(), ApiError> {
    let db_kind = def.kind.trim_end_matches("OpsRequest");
    let Some(db_def) = shared.registry.find_kind("kubedb.com", db_kind) else {
        return Ok(());
    };
    let ops_name = object_name(ops);
    let db_name = ops["spec"][target_field(&def.kind)]["name"]
        .as_str()
        .unwrap_or_default();
    let db = match shared.store.get(db_def, ns, db_name) {
        Ok(db) => db,
        Err(_) => {
            let detail = format!("spec.databaseRef {ns}/{db_name}, is invalid or not found");
            return Err(denied(
                def,
                &format!("spec.databaseRef: Invalid value: {ops_name:?}: {detail}"),
            ));
        }
    };
    if ops["spec"]["type"].as_str() != Some("RotateAuth") {
        return Ok(());
    }
    let Some(secret_ref) = ops["spec"]["authentication"]["secretRef"].as_object() else {
        return Ok(());
    };
    let bad = |detail: &str| invalid(def, ops_name, "spec.authentication", detail);
    let new_name = secret_ref
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if new_name.is_empty() {
        return Err(bad("spec.authentication.secretRef.name can not be empty"));
    }
    let Some(secrets) = shared.registry.find("", "v1", "secrets") else {
        return Ok(());
    };
    let new_secret = match shared.store.get(secrets, ns, new_name) {
        Ok(s) => s,
        Err(_) => {
            // NB: Postgres and MySQL wrap the client error (errors.Wrap); the others don't.
            let detail = if matches!(db_kind, "Postgres" | "MySQL") {
                format!(
                    "referenced secret {ns}/{new_name} not found: secrets {new_name:?} not found"
                )
            } else {
                format!("referenced secret {ns}/{new_name} not found")
            };
            return Err(bad(&detail));
        }
    };
    let eng = engine(db_kind);
    if !eng.username_fixed {
        return Ok(());
    }
    let old_name = auth_secret_name(&db, &eng);
    let old_secret = match shared.store.get(secrets, ns, &old_name) {
        Ok(s) => s,
        Err(_) => return Err(bad(&format!("secrets {old_name:?} not found"))),
    };
    let old_user = username_of(eng.layout, &secret_data(&old_secret)).unwrap_or_default();
    let new_user = secret_data(&new_secret)
        .get("username")
        .cloned()
        .unwrap_or_default();
    // NB: HanaDB accepts a secret without a username (keeps the current one).
    let allowed = old_user == new_user || (db_kind == "HanaDB" && new_user.is_empty());
    if !allowed {
        return Err(bad("database username cannot be changed"));
    }
    Ok(())
}

/// KubeDB's `validate<Kind>OpsRequest` on update: `spec` is immutable (a strategic-merge
/// precondition on `spec`, kmodules client-go meta.PreConditionSet).
fn ops_spec_unchanged(def: &ResourceDef, new: &Value, old: &Value) -> Result<(), ApiError> {
    if new.get("spec") == old.get("spec") {
        return Ok(());
    }
    let patch = json!({"spec": merge_diff(old.get("spec").unwrap_or(&Value::Null), new.get("spec").unwrap_or(&Value::Null))});
    Err(denied(
        def,
        &format!(
            "precondition failed for: {}.At least one of the following was changed:\n\tapiVersion\n\tkind\n\tname\n\tnamespace\n\tspec",
            go_fmt(&patch)
        ),
    ))
}

/// The merge patch that turns `old` into `new` (what the webhook's strategic patch holds
/// for plain fields).
fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = serde_json::Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) => {
                        out.insert(k.clone(), merge_diff(ov, nv));
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

/// Go's `%v` of a decoded JSON value: `map[a:1 b:[x y]]`, keys sorted, null as `<nil>`.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_fmt(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::kubedb;
    use crate::fixtures::{self, Db};
    use crate::{Faults, Registry, Store};
    use std::time::Duration;

    fn shared() -> Shared {
        let s = Shared {
            store: Store::new(),
            registry: Registry::builtin(),
            faults: Faults::default(),
            operator_delay: Duration::from_millis(1),
            latency: Default::default(),
            users: Default::default(),
            websocket_upgrade_needs_create: false,
        };
        fixtures::load(&s, crate::Fixtures::Empty);
        s
    }

    fn def<'a>(s: &'a Shared, group: &str, kind: &str) -> &'a ResourceDef {
        s.registry.find_kind(group, kind).unwrap()
    }

    fn pg_ops(name: &str, db: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"type": "RotateAuth", "databaseRef": {"name": db}}})
    }

    fn create_ops(s: &Shared, kind: &str, mut obj: Value) -> Result<(), ApiError> {
        let d = def(s, "ops.kubedb.com", kind);
        mutate(s, d, &mut obj);
        validate(s, d, "demo", &obj, None)
    }

    fn secret(s: &Shared, name: &str, user: &str, password: &str) {
        let sec = s.registry.find("", "v1", "secrets").unwrap();
        let data = kubedb::encode_data(
            &[
                ("username".to_string(), user.to_string()),
                ("password".to_string(), password.to_string()),
            ]
            .into_iter()
            .collect(),
        );
        s.store
            .create(sec, "demo", json!({"metadata": {"name": name}, "type": "kubernetes.io/basic-auth", "data": data}), false)
            .unwrap();
    }

    #[test]
    fn a_postgres_create_gets_the_crd_defaults_of_transcript_10() {
        let s = shared();
        let mut obj = json!({"metadata": {"name": "pg-1"}, "spec": {"version": "16.1", "authSecret": {"name": "pg-1-auth"}}});
        mutate(&s, def(&s, "kubedb.com", "Postgres"), &mut obj);
        assert_eq!(
            obj["spec"],
            json!({
                "allowedSchemas": {"namespaces": {"from": "Same"}},
                "authSecret": {"apiGroup": "", "kind": "Secret", "name": "pg-1-auth"},
                "healthChecker": {"failureThreshold": 1, "periodSeconds": 10, "timeoutSeconds": 10},
                "version": "16.1",
            })
        );
    }

    #[test]
    fn ops_requests_default_max_retries_and_apply_but_never_overwrite_them() {
        let s = shared();
        let mut obj = json!({"spec": {"type": "RotateAuth", "apply": "Always"}});
        mutate(
            &s,
            def(&s, "ops.kubedb.com", "PostgresOpsRequest"),
            &mut obj,
        );
        assert_eq!(obj["spec"]["maxRetries"], json!(1));
        assert_eq!(obj["spec"]["apply"], json!("Always"));
        let mut ora = json!({"spec": {"type": "RotateAuth"}});
        mutate(&s, def(&s, "ops.kubedb.com", "OracleOpsRequest"), &mut ora);
        assert!(ora["spec"].get("maxRetries").is_none());
        assert_eq!(ora["spec"]["apply"], json!("IfReady"));
    }

    #[test]
    fn an_mssqlserver_without_tls_is_invalid_with_a_required_value_cause() {
        let s = shared();
        let obj = json!({"metadata": {"name": "ms"}, "spec": {"version": "2022-cu12"}});
        let e = validate(&s, def(&s, "kubedb.com", "MSSQLServer"), "demo", &obj, None).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "MSSQLServer.kubedb.com \"ms\" is invalid: spec.tls: Required value"
        );
        assert_eq!(
            e.details.unwrap()["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.tls"})
        );
    }

    #[test]
    fn an_unknown_ops_type_is_refused_exactly_like_transcript_18() {
        let s = shared();
        let obj = json!({"metadata": {"name": "bad"}, "spec": {"type": "RotateEverything", "databaseRef": {"name": "pg-1"}}});
        let e = validate(
            &s,
            def(&s, "ops.kubedb.com", "PostgresOpsRequest"),
            "demo",
            &obj,
            None,
        )
        .unwrap_err();
        let want = "PostgresOpsRequest.ops.kubedb.com \"bad\" is invalid: spec.type: Unsupported value: \"RotateEverything\": supported values: \"UpdateVersion\", \"HorizontalScaling\", \"VerticalScaling\", \"VolumeExpansion\", \"Restart\", \"Reconfigure\", \"ReconfigureTLS\", \"RotateAuth\", \"ReconnectStandby\", \"ForceFailOver\", \"SetRaftKeyPair\", \"StorageMigration\"";
        assert_eq!(
            (e.code, e.reason.as_str(), e.message.as_str()),
            (422, "Invalid", want)
        );
        assert_eq!(
            e.details.unwrap()["causes"][0]["reason"],
            json!("FieldValueNotSupported")
        );
    }

    #[test]
    fn an_ops_request_without_its_target_reference_is_invalid() {
        let s = shared();
        let e = create_ops(
            &s,
            "ProxySQLOpsRequest",
            json!({"metadata": {"name": "x"}, "spec": {"type": "RotateAuth"}}),
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message.ends_with("spec.proxyRef: Required value"),
            "{}",
            e.message
        );
    }

    #[test]
    fn rotate_auth_for_a_missing_database_is_denied_by_the_webhook() {
        let s = shared();
        let e = create_ops(&s, "PostgresOpsRequest", pg_ops("rot", "nope")).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "admission webhook \"postgresopsrequestwebhook.validators.ops.kubedb.com\" denied the request: spec.databaseRef: Invalid value: \"rot\": spec.databaseRef demo/nope, is invalid or not found"
        );
    }

    #[test]
    fn rotate_auth_naming_a_missing_secret_is_invalid() {
        let s = shared();
        Db::new("MSSQLServer", "demo", "ms")
            .password("Secr3tPassw0rd")
            .insert(&s)
            .unwrap();
        let mut ops = pg_ops("rot", "ms");
        ops["spec"]["authentication"] = json!({"secretRef": {"name": "gone"}});
        let e = create_ops(&s, "MSSQLServerOpsRequest", ops).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
        assert_eq!(
            e.message,
            "admission webhook \"mssqlserveropsrequestwebhook.validators.ops.kubedb.com\" denied the request: MSSQLServerOpsRequest.MSSQLServeropsrequests.kubedb.com \"rot\" is invalid: spec.authentication: Invalid value: \"rot\": referenced secret demo/gone not found"
        );
        let d = e.details.unwrap();
        assert_eq!(d["group"], json!("MSSQLServeropsrequests.kubedb.com"));
        assert_eq!(d["causes"][0]["field"], json!("spec.authentication"));
    }

    #[test]
    fn rotate_auth_that_changes_the_postgres_username_is_refused() {
        let s = shared();
        Db::new("Postgres", "demo", "pg")
            .password("Secr3tPassw0rd")
            .insert(&s)
            .unwrap();
        secret(&s, "mine", "alice", "N3wPassword123");
        let mut ops = pg_ops("rot", "pg");
        ops["spec"]["authentication"] = json!({"secretRef": {"name": "mine"}});
        let e = create_ops(&s, "PostgresOpsRequest", ops.clone()).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message
                .ends_with("Invalid value: \"rot\": database username cannot be changed"),
            "{}",
            e.message
        );
        secret(&s, "same-user", "postgres", "N3wPassword123");
        ops["spec"]["authentication"]["secretRef"]["name"] = json!("same-user");
        create_ops(&s, "PostgresOpsRequest", ops).unwrap();
    }

    #[test]
    fn engines_without_a_fixed_user_accept_another_username() {
        let s = shared();
        Db::new("MongoDB", "demo", "mg").insert(&s).unwrap();
        secret(&s, "mine", "alice", "N3wPassword123");
        let mut ops = pg_ops("rot", "mg");
        ops["spec"]["authentication"] = json!({"secretRef": {"name": "mine"}});
        create_ops(&s, "MongoDBOpsRequest", ops).unwrap();
    }

    #[test]
    fn changing_the_spec_of_an_ops_request_is_forbidden_but_labels_are_not() {
        let s = shared();
        let d = def(&s, "ops.kubedb.com", "PostgresOpsRequest");
        let mut old = pg_ops("rot", "pg");
        mutate(&s, d, &mut old);
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        validate(&s, d, "demo", &relabelled, Some(&old)).unwrap();
        let mut changed = old.clone();
        changed["spec"]["databaseRef"]["name"] = json!("pg-2");
        let e = validate(&s, d, "demo", &changed, Some(&old)).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "admission webhook \"postgresopsrequestwebhook.validators.ops.kubedb.com\" denied the request: precondition failed for: map[spec:map[databaseRef:map[name:pg-2]]].At least one of the following was changed:\n\tapiVersion\n\tkind\n\tname\n\tnamespace\n\tspec"
        );
    }
}
