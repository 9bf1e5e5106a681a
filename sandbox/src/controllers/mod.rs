//! Simulated controllers: KubeDB ops-manager (RotateAuth), the Arc SQL MI controller and
//! kube-controller-manager's workload controllers (Deployments and kin, Jobs).
//!
//! Each is one tokio task that subscribes to the store's change broadcast, scans what
//! already exists once (fixtures), and spawns a short-lived worker per database / per SQL
//! MI that walks the operator's steps with `shared.operator_delay` between them. Workers
//! write status only through the `/status` part of the store, never hold a store lock
//! across an await, and re-read everything they need after each sleep.

use std::sync::Arc;

use crate::Shared;

pub mod arc;
pub mod kubedb;
pub mod workloads;

/// The annotation tests put on an ops request (or a SqlManagedInstance) to plan its
/// failure: the value is the reason reported.
pub const FAIL_ANNOTATION: &str = "sandbox.kubectl-rotate.dev/fail";

/// Start every simulated controller on the current tokio runtime.
pub fn spawn_all(shared: Arc<Shared>) {
    tokio::spawn(kubedb::run(shared.clone()));
    tokio::spawn(arc::run(shared.clone()));
    tokio::spawn(workloads::run(shared));
}

/// The planned failure of an object: the fault hook first, then the annotation.
pub(crate) fn planned_failure(
    shared: &Shared,
    ns: &str,
    obj: &serde_json::Value,
) -> Option<String> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    shared.faults.ops_failure(ns, name).or_else(|| {
        obj["metadata"]["annotations"][FAIL_ANNOTATION]
            .as_str()
            .map(|s| {
                if s.is_empty() {
                    "injected failure".to_string()
                } else {
                    s.to_string()
                }
            })
    })
}

/// Hands every stored object of `def` to `observe` with its namespace: what a controller
/// does after its watch lagged, to catch up on the changes it missed.
pub(crate) fn rescan_all(
    shared: &Arc<Shared>,
    def: &crate::ResourceDef,
    mut observe: impl FnMut(&str, &serde_json::Value),
) {
    let (items, _) = shared.store.list(def, None, None);
    for obj in items {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        observe(ns, &obj);
    }
}

/// Writes the status of `ns/name` as a controller does, through the `/status` part (the
/// spec and the generation never move): `f` gets the object as it is and its status, an
/// object (made empty when there was none), to edit.
pub(crate) fn write_status(
    shared: &Shared,
    def: &crate::registry::ResourceDef,
    ns: &str,
    name: &str,
    f: impl FnOnce(&serde_json::Value, &mut serde_json::Value),
) -> Result<serde_json::Value, crate::error::ApiError> {
    shared
        .store
        .modify(def, ns, name, crate::store::Part::Status, false, |cur| {
            let mut n = cur.clone();
            if !n["status"].is_object() {
                n["status"] = serde_json::json!({});
            }
            f(cur, &mut n["status"]);
            Ok(n)
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::kubedb::{encode_data, secret_data};
    use crate::fixtures::{self, Db, SqlMi};
    use crate::store::Part;
    use crate::{admission, Faults, Fixtures, Registry, ResourceDef, Shared, Store};

    /// A sandbox without HTTP: store, registry, faults, controllers running.
    fn start() -> std::sync::Arc<Shared> {
        start_with_delay(Duration::from_millis(2))
    }

    fn start_with_delay(operator_delay: Duration) -> std::sync::Arc<Shared> {
        let shared = std::sync::Arc::new(Shared {
            store: Store::new(),
            registry: Registry::builtin(),
            faults: Faults::default(),
            operator_delay,
            latency: Default::default(),
            users: Default::default(),
            websocket_upgrade_needs_create: false,
        });
        fixtures::load(&shared, Fixtures::Empty);
        super::spawn_all(shared.clone());
        shared
    }

    fn def<'a>(s: &'a Shared, group: &str, kind: &str) -> &'a ResourceDef {
        s.registry.find_kind(group, kind).expect("registered")
    }

    fn secrets(s: &Shared) -> &ResourceDef {
        def(s, "", "Secret")
    }

    /// Create an ops request as the API would (defaults, checks, then store).
    fn create_ops(s: &Shared, kind: &str, name: &str, spec: Value) -> Value {
        create_ops_with(s, kind, json!({"metadata": {"name": name}, "spec": spec}))
    }

    fn create_ops_with(s: &Shared, kind: &str, mut obj: Value) -> Value {
        let d = def(s, "ops.kubedb.com", kind);
        admission::mutate(s, d, &mut obj);
        admission::validate(s, d, "demo", &obj, None).expect("admitted");
        s.store.create(d, "demo", obj, false).expect("created")
    }

    async fn wait_for(
        s: &Shared,
        d: &ResourceDef,
        name: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..2000 {
            if let Ok(o) = s.store.get(d, "demo", name) {
                if pred(&o) {
                    return o;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "{name} never became {what}: {:#}",
            s.store.get(d, "demo", name).unwrap_or_default()
        );
    }

    async fn wait_phase(s: &Shared, kind: &str, name: &str, phase: &str) -> Value {
        let d = def(s, "ops.kubedb.com", kind).clone();
        wait_for(s, &d, name, phase, |o| o["status"]["phase"] == json!(phase)).await
    }

    fn condition_types(ops: &Value) -> Vec<String> {
        ops["status"]["conditions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["type"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn data(s: &Shared, name: &str) -> BTreeMap<String, String> {
        secret_data(
            &s.store
                .get(secrets(s), "demo", name)
                .expect("secret exists"),
        )
    }

    #[tokio::test]
    async fn rotate_auth_walks_the_documented_steps_per_pod_and_keeps_the_old_password_as_prev() {
        let s = start();
        Db::new("Postgres", "demo", "pg")
            .replicas(2)
            .password("0ldPassw0rdXyz")
            .insert(&s)
            .unwrap();
        let pg = def(&s, "kubedb.com", "Postgres").clone();
        let before = s.store.get(&pg, "demo", "pg").unwrap()["status"]["authSecret"]
            ["lastUpdateTimestamp"]
            .clone();
        let pod0_uid =
            s.store.get(def(&s, "", "Pod"), "demo", "pg-0").unwrap()["metadata"]["uid"].clone();
        create_ops(
            &s,
            "PostgresOpsRequest",
            "rot",
            json!({"type": "RotateAuth", "databaseRef": {"name": "pg"}}),
        );
        let done = wait_phase(&s, "PostgresOpsRequest", "rot", "Successful").await;
        let mut want = vec![
            "RotateAuth",
            "DatabasePauseSucceeded",
            "UpdateCredential",
            "UpdatePetSets",
            "RestartNodes",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        for pod in ["pg-0", "pg-1"] {
            for step in ["GetPod", "EvictPod", "CheckPodRunning"] {
                want.push(format!("{step}--{pod}"));
            }
        }
        want.push("Successful".into());
        assert_eq!(condition_types(&done), want);
        assert!(done["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == json!("True") && c["observedGeneration"] == json!(1)));
        assert_eq!(
            done["status"]["conditions"][0]["message"],
            json!("Postgres ops-request has started to rotate auth for postgres nodes")
        );
        assert_eq!(done["status"]["observedGeneration"], json!(1));

        let d = data(&s, "pg-auth");
        assert_eq!(d["username"], "postgres");
        assert_eq!(d["username.prev"], "postgres");
        assert_eq!(d["password.prev"], "0ldPassw0rdXyz");
        assert_ne!(d["password"], "0ldPassw0rdXyz");
        assert!(
            d["password"].len() >= 16 && d["password"].chars().all(|c| c.is_ascii_alphanumeric())
        );
        let db = s.store.get(&pg, "demo", "pg").unwrap();
        assert!(db["status"]["authSecret"]["lastUpdateTimestamp"].is_string());
        assert!(before.is_string());
        assert_eq!(db["status"]["phase"], json!("Ready"));
        let pod0 = s.store.get(def(&s, "", "Pod"), "demo", "pg-0").unwrap();
        assert_ne!(
            pod0["metadata"]["uid"], pod0_uid,
            "the pod was evicted and came back"
        );
        assert_eq!(pod0["status"]["phase"], json!("Running"));
    }

    #[tokio::test]
    async fn a_user_supplied_secret_becomes_the_auth_secret_and_keeps_the_old_credentials_as_prev()
    {
        let s = start();
        Db::new("MSSQLServer", "demo", "ms")
            .password("0ldMssqlPass1")
            .insert(&s)
            .unwrap();
        s.store
            .create(
                secrets(&s),
                "demo",
                json!({"metadata": {"name": "ms-user"}, "type": "kubernetes.io/basic-auth",
                       "data": encode_data(&[("username".into(), "sa".into()), ("password".into(), "Mssqlserver2".into())].into_iter().collect())}),
                false,
            )
            .unwrap();
        create_ops(
            &s,
            "MSSQLServerOpsRequest",
            "rot",
            json!({"type": "RotateAuth", "databaseRef": {"name": "ms"}, "authentication": {"secretRef": {"name": "ms-user"}}}),
        );
        let done = wait_phase(&s, "MSSQLServerOpsRequest", "rot", "Successful").await;
        assert_eq!(
            done["status"]["conditions"][2]["message"],
            json!("Successfully referenced the user provided authSecret")
        );
        let db = s
            .store
            .get(def(&s, "kubedb.com", "MSSQLServer"), "demo", "ms")
            .unwrap();
        assert_eq!(
            db["spec"]["authSecret"],
            json!({"apiGroup": "", "kind": "Secret", "name": "ms-user"})
        );
        let d = data(&s, "ms-user");
        assert_eq!(
            (d["username"].as_str(), d["password"].as_str()),
            ("sa", "Mssqlserver2")
        );
        assert_eq!(
            (d["username.prev"].as_str(), d["password.prev"].as_str()),
            ("sa", "0ldMssqlPass1")
        );
        assert_eq!(
            data(&s, "ms-auth")["password"],
            "0ldMssqlPass1",
            "the old secret is left alone"
        );
    }

    #[tokio::test]
    async fn superseded_pending_requests_are_skipped_and_the_newest_runs_after_the_current_one() {
        // NB: slow enough that b-second is seen Pending while a-first runs.
        let s = start_with_delay(Duration::from_millis(15));
        Db::new("Postgres", "demo", "pg").insert(&s).unwrap();
        let spec = json!({"type": "RotateAuth", "databaseRef": {"name": "pg"}});
        create_ops(&s, "PostgresOpsRequest", "a-first", spec.clone());
        wait_phase(&s, "PostgresOpsRequest", "a-first", "Progressing").await;
        create_ops(&s, "PostgresOpsRequest", "b-second", spec.clone());
        create_ops(&s, "PostgresOpsRequest", "c-third", spec);
        let b = wait_phase(&s, "PostgresOpsRequest", "b-second", "Pending").await;
        assert_eq!(b["status"]["observedGeneration"], json!(1));
        let skipped = wait_phase(&s, "PostgresOpsRequest", "b-second", "Skipped").await;
        assert_eq!(condition_types(&skipped), vec!["Skipped"]);
        assert!(skipped["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("c-third"));
        wait_phase(&s, "PostgresOpsRequest", "c-third", "Successful").await;
        let first = wait_phase(&s, "PostgresOpsRequest", "a-first", "Successful").await;
        assert_eq!(
            condition_types(&first).last().map(String::as_str),
            Some("Successful")
        );
    }

    #[tokio::test]
    async fn a_planned_failure_ends_failed_at_update_credential_and_leaves_the_password_alone() {
        let s = start();
        Db::new("MySQL", "demo", "my")
            .password("KeepMe123abc")
            .insert(&s)
            .unwrap();
        s.faults
            .fail_ops_request("demo", "rot", "connection refused by the database");
        create_ops(
            &s,
            "MySQLOpsRequest",
            "rot",
            json!({"type": "RotateAuth", "databaseRef": {"name": "my"}}),
        );
        let failed = wait_phase(&s, "MySQLOpsRequest", "rot", "Failed").await;
        let last = failed["status"]["conditions"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["type"], json!("UpdateCredential"));
        assert_eq!(last["status"], json!("False"));
        assert_eq!(last["message"], json!("connection refused by the database"));
        assert_eq!(data(&s, "my-auth")["password"], "KeepMe123abc");
        assert!(!data(&s, "my-auth").contains_key("password.prev"));
    }

    #[tokio::test]
    async fn the_fail_annotation_plans_a_failure_too() {
        let s = start();
        Db::new("Redis", "demo", "rd").insert(&s).unwrap();
        create_ops_with(
            &s,
            "RedisOpsRequest",
            json!({"metadata": {"name": "rot", "annotations": {super::FAIL_ANNOTATION: "disk full"}},
                   "spec": {"type": "RotateAuth", "databaseRef": {"name": "rd"}}}),
        );
        let failed = wait_phase(&s, "RedisOpsRequest", "rot", "Failed").await;
        assert_eq!(
            failed["status"]["conditions"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()["message"],
            json!("disk full")
        );
    }

    #[tokio::test]
    async fn if_ready_on_a_database_that_is_not_ready_fails_and_always_runs_anyway() {
        let s = start();
        Db::new("MongoDB", "demo", "mg")
            .phase("NotReady")
            .insert(&s)
            .unwrap();
        create_ops(
            &s,
            "MongoDBOpsRequest",
            "careful",
            json!({"type": "RotateAuth", "databaseRef": {"name": "mg"}}),
        );
        let failed = wait_phase(&s, "MongoDBOpsRequest", "careful", "Failed").await;
        assert_eq!(
            failed["status"]["conditions"][0]["reason"],
            json!("DatabaseNotReady")
        );
        create_ops(
            &s,
            "MongoDBOpsRequest",
            "forced",
            json!({"type": "RotateAuth", "apply": "Always", "databaseRef": {"name": "mg"}}),
        );
        wait_phase(&s, "MongoDBOpsRequest", "forced", "Successful").await;
    }

    #[tokio::test]
    async fn other_ops_types_take_their_turn_and_succeed() {
        let s = start();
        Db::new("Postgres", "demo", "pg").insert(&s).unwrap();
        create_ops(
            &s,
            "PostgresOpsRequest",
            "restart",
            json!({"type": "Restart", "databaseRef": {"name": "pg"}}),
        );
        create_ops(
            &s,
            "PostgresOpsRequest",
            "rot",
            json!({"type": "RotateAuth", "databaseRef": {"name": "pg"}}),
        );
        let r = wait_phase(&s, "PostgresOpsRequest", "restart", "Successful").await;
        assert_eq!(condition_types(&r), vec!["Restart", "Successful"]);
        wait_phase(&s, "PostgresOpsRequest", "rot", "Successful").await;
    }

    #[tokio::test]
    async fn every_rotate_auth_kind_rotates_with_its_own_secret_layout() {
        let s = start();
        let kinds: Vec<String> = s
            .registry
            .defs
            .iter()
            .filter(|d| {
                d.group == "ops.kubedb.com" && d.ops_types.iter().any(|t| t == "RotateAuth")
            })
            .map(|d| d.kind.trim_end_matches("OpsRequest").to_string())
            .collect();
        assert_eq!(kinds.len(), 30);
        for kind in &kinds {
            let db = kind.to_lowercase();
            Db::new(kind, "demo", &db)
                .password("FirstPassw0rd99")
                .insert(&s)
                .unwrap();
            let target = super::kubedb::target_field(&format!("{kind}OpsRequest"));
            create_ops(
                &s,
                &format!("{kind}OpsRequest"),
                &format!("{db}-rot"),
                json!({"type": "RotateAuth", target: {"name": db}}),
            );
        }
        for kind in &kinds {
            let db = kind.to_lowercase();
            wait_phase(
                &s,
                &format!("{kind}OpsRequest"),
                &format!("{db}-rot"),
                "Successful",
            )
            .await;
            let eng = super::kubedb::engine(kind);
            let d = data(&s, &format!("{db}{}", eng.auth_suffix));
            let (prev_key, prev) = match eng.layout {
                super::kubedb::SecretLayout::AuthData => (
                    "authData.prev",
                    format!("{}:FirstPassw0rd99", eng.admin_user),
                ),
                super::kubedb::SecretLayout::PrevSuffix => {
                    ("password-PREV", "FirstPassw0rd99".into())
                }
                super::kubedb::SecretLayout::ApiKeys => {
                    assert_ne!(d["api-key"], "FirstPassw0rd99", "{kind}");
                    assert!(
                        !d.keys().any(|k| k.to_lowercase().contains("prev")),
                        "{kind}: {d:?}"
                    );
                    continue;
                }
                _ => ("password.prev", "FirstPassw0rd99".into()),
            };
            assert_eq!(d.get(prev_key), Some(&prev), "{kind}: {d:?}");
        }
    }

    #[tokio::test]
    async fn a_credentials_generation_bump_goes_updating_then_ready_with_observed_generation() {
        let s = start();
        SqlMi::new("demo", "mi").insert(&s).unwrap();
        let mi = def(&s, "sql.arcdata.microsoft.com", "SqlManagedInstance").clone();
        let mut rx = s.store.subscribe();
        s.store
            .modify(&mi, "demo", "mi", Part::Main, false, |cur| {
                let mut n = cur.clone();
                n["spec"]["update"] = json!({"managedCredentialsGeneration": 1});
                Ok(n)
            })
            .unwrap();
        let ready = wait_for(&s, &mi, "mi", "caught up", |o| {
            o["status"]["observedGeneration"] == json!(2)
        })
        .await;
        assert_eq!(ready["status"]["state"], json!("Ready"));
        assert!(ready["status"].get("message").is_none());
        let mut states = Vec::new();
        while let Ok(ch) = rx.try_recv() {
            if ch.type_key == mi.key() {
                states.push(
                    ch.object["status"]["state"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
        assert!(
            states.windows(2).any(|w| w == ["Updating", "Ready"]),
            "{states:?}"
        );
    }

    #[tokio::test]
    async fn a_planned_arc_failure_ends_in_error_and_the_next_bump_recovers() {
        let s = start();
        SqlMi::new("demo", "mi").insert(&s).unwrap();
        let mi = def(&s, "sql.arcdata.microsoft.com", "SqlManagedInstance").clone();
        s.faults
            .fail_ops_request("demo", "mi", "agent certificate could not be issued");
        let bump = |g: i64| {
            s.store
                .modify(&mi, "demo", "mi", Part::Main, false, |cur| {
                    let mut n = cur.clone();
                    n["spec"]["update"] = json!({"managedCredentialsGeneration": g});
                    Ok(n)
                })
                .unwrap()
        };
        bump(1);
        let err = wait_for(&s, &mi, "mi", "Error", |o| {
            o["status"]["state"] == json!("Error")
        })
        .await;
        assert_eq!(
            err["status"]["message"],
            json!("agent certificate could not be issued")
        );
        assert_eq!(err["status"]["observedGeneration"], json!(1));
        bump(0);
        let ok = wait_for(&s, &mi, "mi", "Ready", |o| {
            o["status"]["state"] == json!("Ready") && o["status"]["observedGeneration"] == json!(3)
        })
        .await;
        assert_eq!(
            ok["spec"]["update"]["managedCredentialsGeneration"],
            json!(0)
        );
    }

    #[tokio::test]
    async fn the_demo_fixtures_are_ready_and_left_alone_by_the_controllers() {
        let s = std::sync::Arc::new(Shared {
            store: Store::new(),
            registry: Registry::builtin(),
            faults: Faults::default(),
            operator_delay: Duration::from_millis(1),
            latency: Default::default(),
            users: Default::default(),
            websocket_upgrade_needs_create: false,
        });
        fixtures::load(&s, Fixtures::Demo);
        let rv = s.store.resource_version();
        super::spawn_all(s.clone());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(s.store.resource_version(), rv, "nothing to reconcile");
        let ms = s
            .store
            .get(def(&s, "kubedb.com", "MSSQLServer"), "demo", "mssql-demo")
            .unwrap();
        assert_eq!(ms["apiVersion"], json!("kubedb.com/v1alpha2"));
        assert_eq!(ms["status"]["phase"], json!("Ready"));
        assert!(ms["spec"]["tls"].is_object());
        let pg = s
            .store
            .get(def(&s, "kubedb.com", "Postgres"), "demo", "pg-demo")
            .unwrap();
        assert_eq!(pg["apiVersion"], json!("kubedb.com/v1"));
        assert_eq!(
            data(&s, "pg-demo-auth")["password"],
            fixtures::PG_DEMO_PASSWORD
        );
        assert_eq!(data(&s, "mssql-demo-auth")["username"], "sa");
        let mi = s
            .store
            .get(
                def(&s, "sql.arcdata.microsoft.com", "SqlManagedInstance"),
                "demo",
                "sqlmi-demo",
            )
            .unwrap();
        assert_eq!(
            mi["spec"]["security"]["adminLoginSecret"],
            json!("sqlmi-demo-login-secret")
        );
        assert_eq!(
            (
                mi["status"]["state"].clone(),
                mi["status"]["observedGeneration"].clone()
            ),
            (json!("Ready"), mi["metadata"]["generation"].clone())
        );
        assert_eq!(
            data(&s, "sqlmi-demo-login-secret")["password"],
            fixtures::SQLMI_DEMO_PASSWORD
        );
        let pod = s
            .store
            .get(def(&s, "", "Pod"), "demo", "pg-demo-0")
            .unwrap();
        assert_eq!(
            pod["metadata"]["labels"]["kubedb.com/role"],
            json!("primary")
        );
        assert_eq!(
            pod["metadata"]["labels"]["app.kubernetes.io/name"],
            json!("postgreses.kubedb.com")
        );
        assert!(s
            .store
            .get(def(&s, "", "Service"), "demo", "pg-demo")
            .is_ok());
        assert_eq!(fixtures::demo_passwords().len(), 5);
    }
}
