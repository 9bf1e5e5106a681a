//! The simulated Azure Arc SQL MI controller.
//!
//! A SqlManagedInstance whose `metadata.generation` is ahead of `status.observedGeneration`
//! (a bump of `spec.update.managedCredentialsGeneration`, or any other spec change) goes,
//! one `operator_delay` apart, to `state: Updating` and then to `state: Ready` with
//! `observedGeneration` caught up. A bump during Updating is picked up before Ready.
//!
//! A planned failure (`Faults::fail_ops_request(ns, name, reason)`, used once, or the
//! annotation `sandbox.kubectl-rotate.dev/fail: "<reason>"`) ends the reconcile in
//! `state: Error` with the reason as `status.message`, `observedGeneration` unchanged; the
//! next generation bump reconciles again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::registry::ResourceDef;
use crate::store::ChangeType;
use crate::Shared;

type Key = (String, String);

#[derive(Default)]
struct State {
    /// Instances with a worker.
    running: HashSet<Key>,
    /// The generation at which an instance ended in Error (not retried until it changes).
    failed: HashMap<Key, i64>,
}

#[derive(Default)]
struct ArcState(Mutex<State>);

impl ArcState {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The controller's main loop.
pub async fn run(shared: Arc<Shared>) {
    let Some(def) = shared
        .registry
        .find_kind("sql.arcdata.microsoft.com", "SqlManagedInstance")
        .cloned()
    else {
        return;
    };
    let def = Arc::new(def);
    let state = Arc::new(ArcState::default());
    let mut rx = shared.store.subscribe();
    rescan(&shared, &def, &state);
    loop {
        match rx.recv().await {
            Ok(ch) => {
                if ch.ty != ChangeType::Deleted && ch.type_key == def.key() {
                    observe(&shared, &def, &ch.namespace, &ch.object, &state);
                }
            }
            Err(RecvError::Lagged(_)) => rescan(&shared, &def, &state),
            Err(RecvError::Closed) => return,
        }
    }
}

fn rescan(shared: &Arc<Shared>, def: &Arc<ResourceDef>, state: &Arc<ArcState>) {
    super::rescan_all(shared, def, |ns, obj| observe(shared, def, ns, obj, state));
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(1)
}

/// Behind: the spec changed since the controller last caught up, and not a generation
/// that already failed.
fn behind(obj: &Value, failed_at: Option<i64>) -> bool {
    let g = generation(obj);
    g > obj["status"]["observedGeneration"].as_i64().unwrap_or(0) && failed_at != Some(g)
}

fn observe(
    shared: &Arc<Shared>,
    def: &Arc<ResourceDef>,
    ns: &str,
    obj: &Value,
    state: &Arc<ArcState>,
) {
    let key: Key = (
        ns.to_string(),
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let mut st = state.lock();
    if behind(obj, st.failed.get(&key).copied()) && st.running.insert(key.clone()) {
        tokio::spawn(worker(shared.clone(), def.clone(), key, state.clone()));
    }
}

fn set_status(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    f: impl FnOnce(&mut Value),
) -> bool {
    super::write_status(shared, def, ns, name, |_, s| f(s)).is_ok()
}

async fn worker(shared: Arc<Shared>, def: Arc<ResourceDef>, key: Key, state: Arc<ArcState>) {
    let (ns, name) = (&key.0, &key.1);
    let d = shared.operator_delay;
    loop {
        tokio::time::sleep(d).await;
        {
            // NB: deciding to stop happens under the lock, so a bump observed after this
            // read finds either this worker or none.
            let mut st = state.lock();
            let failed_at = st.failed.get(&key).copied();
            match shared.store.get(&def, ns, name) {
                Ok(obj) if behind(&obj, failed_at) => {}
                _ => {
                    st.running.remove(&key);
                    return;
                }
            }
        }
        let rotating = shared
            .store
            .get(&def, ns, name)
            .is_ok_and(|o| o["spec"]["update"]["managedCredentialsGeneration"].is_number());
        let message = if rotating {
            "Rotating service managed credentials"
        } else {
            "Updating SQL managed instance"
        };
        if !set_status(&shared, &def, ns, name, |s| {
            s["state"] = json!("Updating");
            s["message"] = json!(message);
        }) {
            continue;
        }
        tokio::time::sleep(d).await;
        let Ok(obj) = shared.store.get(&def, ns, name) else {
            continue;
        };
        let g = generation(&obj);
        if let Some(reason) = super::planned_failure(&shared, ns, &obj) {
            shared.faults.clear_ops_failure(ns, name);
            state.lock().failed.insert(key.clone(), g);
            set_status(&shared, &def, ns, name, |s| {
                s["state"] = json!("Error");
                s["message"] = json!(reason);
            });
            continue;
        }
        set_status(&shared, &def, ns, name, |s| {
            s["state"] = json!("Ready");
            s["observedGeneration"] = json!(g);
            s["readyReplicas"] = json!("1/1");
            if let Some(m) = s.as_object_mut() {
                m.remove("message");
            }
        });
    }
}
