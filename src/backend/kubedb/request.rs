//! The ops request model: its deterministic name, the object the plugin creates, whether
//! an existing one asks for the same thing, whether one is already in flight, and creating
//! it so that a retried create never starts a second rotation.

use std::collections::{BTreeMap, HashSet};

use kube::api::{ApiResource, DynamicObject, PostParams};
use serde_json::json;

use super::Apis;
use crate::api::retry;
use crate::cli::ApplyPolicy;
use crate::context::Ctx;
use crate::engines::{OpsSpec, KUBEDB_OPS_GROUP};
use crate::error::{Error, Result};
use crate::model::annotations as ann;
use crate::model::ops::{is_terminal, OpsItem, ROTATE_AUTH};
use crate::model::{own_labels, DbItem};
use crate::plan::Plan;
use crate::report::{Action, ProgressEvent};

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

/// The first RotateAuth for `ns/db` that is not finished yet, if any (pure).
pub fn active_rotation(
    items: &[DynamicObject],
    ops: &OpsSpec,
    ns: &str,
    db: &str,
) -> Option<OpsItem> {
    items
        .iter()
        .map(OpsItem::from_dynamic)
        .find(|o| o.is_rotate_auth_for(ops, ns, db) && o.in_flight())
}

/// The newest RotateAuth for `ns/db` ([`OpsItem::newest`]; `last` is the request the
/// Lease records as last written under the lock).
pub fn newest_rotate_auth(
    items: &[DynamicObject],
    ops: &OpsSpec,
    ns: &str,
    db: &str,
    last: Option<&str>,
) -> Option<OpsItem> {
    let mine: Vec<OpsItem> = items
        .iter()
        .map(OpsItem::from_dynamic)
        .filter(|o| o.is_rotate_auth_for(ops, ns, db))
        .collect();
    OpsItem::newest(mine, last)
}

/// The name of the newest RotateAuth for `ns/db`, when it is a successful rollback the
/// plugin made (the auth Secret's previous credential is then the one it replaced).
pub fn last_rollback(
    items: &[DynamicObject],
    ops: &OpsSpec,
    ns: &str,
    db: &str,
    last: Option<&str>,
) -> Option<String> {
    let newest = newest_rotate_auth(items, ops, ns, db, last)?;
    let rollback = newest
        .metadata
        .annotations
        .get(ann::LAST_ACTION)
        .map(String::as_str)
        == Some(Action::Rollback.as_str());
    (rollback && newest.phase() == "Successful").then_some(newest.metadata.name)
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
    obj.metadata.labels = Some(own_labels(&plan.target.name));
    obj.metadata.annotations = Some(BTreeMap::from([(
        ann::LAST_ACTION.to_string(),
        plan.action.as_str().to_string(),
    )]));
    obj
}

/// Whether an existing ops request asks for the same thing as `wanted`, ignoring what the
/// server defaults (`maxRetries`, `apply`).
pub fn same_request(existing: &DynamicObject, wanted: &DynamicObject, ops: &OpsSpec) -> bool {
    OpsItem::from_dynamic(existing).same_spec(&OpsItem::from_dynamic(wanted), ops)
}

/// Conditions not reported yet, as progress events, in the order the server lists them.
pub fn new_conditions(o: &OpsItem, seen: &mut HashSet<(String, String)>) -> Vec<ProgressEvent> {
    o.status
        .conditions
        .iter()
        .filter(|c| !c.type_.is_empty())
        .filter_map(|c| {
            let status = if c.status.is_empty() {
                "Unknown".to_string()
            } else {
                c.status.clone()
            };
            seen.insert((c.type_.clone(), status.clone()))
                .then(|| ProgressEvent::Condition {
                    request: o.metadata.name.clone(),
                    type_: c.type_.clone(),
                    status,
                    message: c.message.clone(),
                })
        })
        .collect()
}

/// Refuses a change when the database is not Ready (unless `--apply Always`) or when a
/// RotateAuth for it is already pending or running (pure).
pub fn check_preconditions(
    plan: &Plan,
    ops: &OpsSpec,
    db: &DbItem,
    existing: &[DynamicObject],
    last: Option<&str>,
) -> Result<()> {
    let target = plan.target.to_string();
    let db_phase = db.phase();
    if plan.apply == ApplyPolicy::IfReady && db_phase != "Ready" {
        return Err(Error::Refused(format!(
            "{target} is not Ready (phase {db_phase}); wait until it is, or use --apply Always"
        )));
    }
    if plan.action == Action::Rollback && !plan.force {
        if let Some(last) = last_rollback(existing, ops, &plan.namespace, &plan.target.name, last) {
            return Err(Error::Refused(format!(
                "{target} was already rolled back by {} {last}; a second rollback would flip \
                 back to the credential that one replaced. Rotate instead (kubectl rotate auth \
                 {target} -n {ns}), or pass --force to flip back",
                ops.kind.to_ascii_lowercase(),
                ns = plan.namespace
            )));
        }
    }
    if let Some(busy) = active_rotation(existing, ops, &plan.namespace, &plan.target.name) {
        let name = busy.metadata.name.clone();
        return Err(Error::InProgress {
            target,
            request: format!("{} {name}", ops.kind.to_ascii_lowercase()),
            phase: busy.phase(),
            follow: follow_command(ops, &name, &plan.namespace),
        });
    }
    Ok(())
}

/// `kubectl get pgops NAME -n NS -w`.
pub fn follow_command(ops: &OpsSpec, name: &str, ns: &str) -> String {
    format!("kubectl get {} {name} -n {ns} -w", ops.short_name)
}

/// How an ops request came to be: this command created it, or it already existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// This command created it (also when a retried create found its own first one,
    /// whose response was lost: the request id on it is this command's).
    Created,
    /// An identical request from an earlier command, still running: followed, not doubled.
    Adopted,
}

/// Creates the ops request under its deterministic name, marked with this command's id and
/// user. On AlreadyExists: this command's own request (a retried create whose first
/// response was lost) is its result whatever its phase; an identical one of another
/// command is adopted while it runs; a finished one of another command (an earlier try with
/// the same inputs) moves on to the next attempt's name.
pub async fn create_request(
    ctx: &Ctx,
    apis: &Apis,
    pp: &PostParams,
    ops: &OpsSpec,
    plan: &Plan,
    name_for: &(dyn Fn(u32) -> String + Sync),
    secret_ref: Option<&str>,
) -> Result<(DynamicObject, Origin)> {
    let user = crate::api::access::user(ctx).await;
    for attempt in 0..NAME_ATTEMPTS {
        let name = name_for(attempt);
        let (api, ops_ar) = (&apis.ops, &apis.ops_ar);
        let mut wanted = build_request(ops_ar, ops, plan, &name, secret_ref);
        let a = wanted
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        a.insert(ann::REQUEST_ID.into(), ctx.command_id.clone());
        if let Some(u) = &user {
            a.insert(ann::USER.into(), u.clone());
        }
        a.insert(ann::CHANGED_AT.into(), crate::backend::now_rfc3339());
        let action = format!(
            "create {}.{} {}/{name}",
            ops.plural, KUBEDB_OPS_GROUP, plan.namespace
        );
        match retry(|| api.create(pp, &wanted)).await {
            Ok(created) => return Ok((created, Origin::Created)),
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => {
                let existing = retry(|| api.get(&name))
                    .await
                    .map_err(|e| Error::api(format!("get {name}"), e))?;
                let ours = existing
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ann::REQUEST_ID))
                    == Some(&ctx.command_id);
                if ours {
                    return Ok((existing, Origin::Created));
                }
                if !same_request(&existing, &wanted, ops) {
                    return Err(Error::Refused(format!(
                        "{} {name} already exists with a different spec; it was not created by this command. \
                         Inspect it with `kubectl get {} {name} -n {} -o yaml`",
                        ops.kind, ops.short_name, plan.namespace
                    )));
                }
                if !is_terminal(&OpsItem::from_dynamic(&existing).phase()) {
                    return Ok((existing, Origin::Adopted));
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
    use crate::duration::GoDuration;
    use crate::engines::find;
    use kube::api::GroupVersionKind;

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
        let mut p = Plan::for_test("pg/pg-demo", Action::Rotate);
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
        let p = Plan::for_test("proxysql/prx", Action::Rotate);
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

    fn db(phase: &str) -> DbItem {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kubedb.com", "v1", "Postgres"),
            "postgreses",
        );
        DbItem::from_dynamic(
            &DynamicObject::new("pg-demo", &ar)
                .within("demo")
                .data(json!({"status": {"phase": phase}})),
        )
    }

    #[test]
    fn a_database_that_is_not_ready_is_refused_unless_apply_always() {
        let ops = find("pg").unwrap().ops().unwrap();
        let mut p = Plan::for_test("pg/pg-demo", Action::Rotate);
        let e = check_preconditions(&p, ops, &db("Provisioning"), &[], None).unwrap_err();
        assert_eq!(e.exit_code(), 6);
        assert!(e.to_string().contains("phase Provisioning"), "{e}");
        p.apply = ApplyPolicy::Always;
        assert!(check_preconditions(&p, ops, &db("Provisioning"), &[], None).is_ok());
    }

    #[test]
    fn a_running_rotation_is_named_with_a_command_to_follow_it() {
        let ops = find("pg").unwrap().ops().unwrap();
        let p = Plan::for_test("pg/pg-demo", Action::Rollback);
        let busy = vec![
            Ops::rotate_auth("pg-demo-rotate-auth-12345", "pg-demo")
                .phase("Progressing")
                .0,
        ];
        let e = check_preconditions(&p, ops, &db("Ready"), &busy, None).unwrap_err();
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
            active_rotation(&items, ops, "demo", "pg-demo").map(|o| o.metadata.name),
            Some("fresh".to_string())
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
        let p = Plan::for_test("pg/pg-demo", Action::Rotate);
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
            OpsItem::from_dynamic(&o.0).failure_reason(),
            "UpdateCredential: cannot update credentials"
        );
        let skipped = Ops::rotate_auth("r", "pg-demo").phase("Skipped");
        assert!(OpsItem::from_dynamic(&skipped.0)
            .failure_reason()
            .contains("superseded"));
    }

    #[test]
    fn each_condition_is_reported_once_and_a_status_change_again() {
        let mut seen = HashSet::new();
        let o = Ops::rotate_auth("r", "pg-demo").condition("RotateAuth", "True", "started");
        assert_eq!(
            new_conditions(&OpsItem::from_dynamic(&o.0), &mut seen).len(),
            1
        );
        let o = o.condition("CheckPodRunning--pg-demo-0", "False", "waiting");
        let events = new_conditions(&OpsItem::from_dynamic(&o.0), &mut seen);
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], ProgressEvent::Condition { type_, status, .. } if type_ == "CheckPodRunning--pg-demo-0" && status == "False")
        );
        assert!(new_conditions(&OpsItem::from_dynamic(&o.0), &mut seen).is_empty());
    }

    #[test]
    fn a_second_rollback_is_refused_unless_forced() {
        let ops = find("pg").unwrap().ops().unwrap();
        let mut rolled = Ops::rotate_auth("pg-demo-rollback-auth-1", "pg-demo")
            .phase("Successful")
            .0;
        rolled.metadata.annotations = Some(std::collections::BTreeMap::from([(
            ann::LAST_ACTION.to_string(),
            "rollback".to_string(),
        )]));
        rolled.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-01-02T00:00:00Z".parse().unwrap(),
            ));
        let mut older = Ops::rotate_auth("pg-demo-rotate-auth-1", "pg-demo")
            .phase("Successful")
            .0;
        older.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-01-01T00:00:00Z".parse().unwrap(),
            ));
        let items = vec![older.clone(), rolled];
        let p = Plan::for_test("pg/pg-demo", Action::Rollback);
        let e = check_preconditions(&p, ops, &db("Ready"), &items, None).unwrap_err();
        assert_eq!(e.exit_code(), 6, "{e}");
        assert!(e.to_string().contains("already rolled back by"), "{e}");
        let forced = Plan {
            force: true,
            ..p.clone()
        };
        assert!(check_preconditions(&forced, ops, &db("Ready"), &items, None).is_ok());
        // After a rotation (the newest is not a rollback), a rollback goes ahead.
        assert!(check_preconditions(&p, ops, &db("Ready"), &[older], None).is_ok());
        // A rotation is never refused for it.
        let rotate = Plan::for_test("pg/pg-demo", Action::Rotate);
        assert!(check_preconditions(&rotate, ops, &db("Ready"), &items, None).is_ok());
    }
}
