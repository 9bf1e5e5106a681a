//! The simulated workload controllers (kube-controller-manager's Deployment, StatefulSet,
//! DaemonSet, ReplicaSet and Job controllers), with no pods behind them.
//!
//! A workload whose `metadata.generation` is ahead of `status.observedGeneration` (a
//! create, a `kubectl rollout restart`, any spec change) is rolled out in two steps, one
//! `operator_delay` apart: first `observedGeneration` catches up and the new revision is
//! named, with nothing updated yet (a Deployment: `Progressing` reason `ReplicaSetUpdated`,
//! `updatedReplicas` 0); then the updated, ready and available counts reach `spec.replicas`
//! (default 1; a DaemonSet runs on the one simulated node) with the conditions the real
//! controllers write (a Deployment: `Available` True `MinimumReplicasAvailable`,
//! `Progressing` True `NewReplicaSetAvailable`), so `kubectl rollout status` finishes. A Job
//! starts, then completes. CronJobs schedule nothing.
//!
//! A stalled rollout (`Faults::stall_rollouts_of(ns, name)`) stops after the first step:
//! the generation is observed, nothing becomes updated or ready; a Deployment's
//! `Progressing` turns False with reason `ProgressDeadlineExceeded` once
//! `spec.progressDeadlineSeconds` (default 600) have passed since the rollout began, and
//! `kubectl rollout status` fails. Resumed, the rollout completes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::registry::ResourceDef;
use crate::store::{now_rfc3339, ChangeType};
use crate::Shared;

type Key = (String, String, String);

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(1)
}

fn observed(obj: &Value) -> i64 {
    obj["status"]["observedGeneration"].as_i64().unwrap_or(0)
}

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// What the rollout ends at: `spec.replicas` (default 1), 1 for a DaemonSet.
fn desired(def: &ResourceDef, obj: &Value) -> i64 {
    if def.kind == "DaemonSet" {
        1
    } else {
        obj["spec"]["replicas"].as_i64().unwrap_or(1)
    }
}

/// The name of the current revision: a Deployment's ReplicaSet, a StatefulSet's
/// ControllerRevision (`<name>-<hash of the pod template>`).
pub fn revision(obj: &Value) -> String {
    format!(
        "{}-{}",
        obj["metadata"]["name"].as_str().unwrap_or(""),
        crate::workloads::template_hash(&obj["spec"]["template"])
    )
}

fn condition<'a>(status: &'a Value, ty: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// Whether the rollout of the current generation is complete.
fn rolled_out(def: &ResourceDef, obj: &Value) -> bool {
    let s = &obj["status"];
    if def.kind == "Job" {
        return condition(s, "Complete").is_some_and(|c| c["status"] == "True");
    }
    let n = desired(def, obj);
    if observed(obj) < generation(obj) {
        return false;
    }
    match def.kind.as_str() {
        "Deployment" => {
            count(&s["updatedReplicas"]) == n
                && count(&s["readyReplicas"]) == n
                && count(&s["availableReplicas"]) == n
                && count(&s["replicas"]) == n
                && condition(s, "Progressing")
                    .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable")
        }
        "StatefulSet" => {
            count(&s["updatedReplicas"]) == n
                && count(&s["readyReplicas"]) == n
                && count(&s["availableReplicas"]) == n
                && s["updateRevision"] == json!(revision(obj))
                && s["currentRevision"] == s["updateRevision"]
        }
        "DaemonSet" => {
            count(&s["desiredNumberScheduled"]) == n
                && count(&s["updatedNumberScheduled"]) == n
                && count(&s["numberReady"]) == n
                && count(&s["numberAvailable"]) == n
        }
        "ReplicaSet" => count(&s["readyReplicas"]) == n && count(&s["availableReplicas"]) == n,
        _ => true,
    }
}

/// Set a count as the Go types write it: omitted when 0 (`omitempty`).
fn set_count(status: &mut Value, key: &str, n: i64) {
    if n == 0 {
        if let Some(m) = status.as_object_mut() {
            m.remove(key);
        }
    } else {
        status[key] = json!(n);
    }
}

/// Set a condition, keeping its lastTransitionTime when its status does not change; a
/// Deployment's conditions also carry lastUpdateTime.
fn set_condition(
    status: &mut Value,
    deployment: bool,
    ty: &str,
    st: &str,
    reason: &str,
    msg: &str,
) {
    let now = now_rfc3339();
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conds = status["conditions"].as_array_mut().expect("an array");
    let old = conds.iter().position(|c| c["type"] == ty);
    let transition = old
        .map(|i| &conds[i])
        .filter(|c| c["status"] == st)
        .map(|c| c["lastTransitionTime"].clone())
        .unwrap_or_else(|| json!(now));
    let mut c = json!({"type": ty, "status": st, "reason": reason, "message": msg, "lastTransitionTime": transition});
    if deployment {
        c["lastUpdateTime"] = json!(now);
    }
    match old {
        Some(i) => conds[i] = c,
        None => conds.push(c),
    }
}

#[derive(Default)]
struct Running(Mutex<HashSet<Key>>);

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Key>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The controllers' main loop.
pub async fn run(shared: Arc<Shared>) {
    let defs: Vec<Arc<ResourceDef>> = shared
        .registry
        .defs
        .iter()
        .filter(|d| crate::workloads::is_workload(d) && d.kind != "CronJob")
        .cloned()
        .map(Arc::new)
        .collect();
    if defs.is_empty() {
        return;
    }
    let running = Arc::new(Running::default());
    let mut rx = shared.store.subscribe();
    rescan(&shared, &defs, &running);
    loop {
        match rx.recv().await {
            Ok(ch) => {
                if ch.ty == ChangeType::Deleted {
                    continue;
                }
                if let Some(def) = defs.iter().find(|d| d.key() == ch.type_key) {
                    observe(&shared, def, &ch.namespace, &ch.object, &running);
                }
            }
            Err(RecvError::Lagged(_)) => rescan(&shared, &defs, &running),
            Err(RecvError::Closed) => return,
        }
    }
}

fn rescan(shared: &Arc<Shared>, defs: &[Arc<ResourceDef>], running: &Arc<Running>) {
    for def in defs {
        super::rescan_all(shared, def, |ns, obj| {
            observe(shared, def, ns, obj, running)
        });
    }
}

fn observe(
    shared: &Arc<Shared>,
    def: &Arc<ResourceDef>,
    ns: &str,
    obj: &Value,
    running: &Arc<Running>,
) {
    if rolled_out(def, obj) {
        return;
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let key: Key = (def.key(), ns.to_string(), name.to_string());
    if running.lock().insert(key.clone()) {
        tokio::spawn(worker(shared.clone(), def.clone(), key, running.clone()));
    }
}

fn set_status(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    f: impl FnOnce(&Value, &mut Value),
) -> bool {
    super::write_status(shared, def, ns, name, f).is_ok()
}

async fn worker(shared: Arc<Shared>, def: Arc<ResourceDef>, key: Key, running: Arc<Running>) {
    let (ns, name) = (&key.1, &key.2);
    // When the current generation's rollout began (or this worker found it stalled).
    let mut since = std::time::Instant::now();
    loop {
        tokio::time::sleep(shared.operator_delay).await;
        let obj = {
            // NB: deciding to stop happens under the lock, so a change observed after this
            // read finds either this worker or none.
            let mut r = running.lock();
            match shared.store.get(&def, ns, name) {
                Ok(obj) if !rolled_out(&def, &obj) => obj,
                _ => {
                    r.remove(&key);
                    return;
                }
            }
        };
        let started = if def.kind == "Job" {
            obj["status"]["startTime"].is_string()
        } else {
            observed(&obj) >= generation(&obj)
        };
        if !started {
            set_status(&shared, &def, ns, name, |cur, s| begin(&def, cur, s));
            since = std::time::Instant::now();
            continue;
        }
        if shared.faults.rollout_stalled(ns, name) {
            let deadline = obj["spec"]["progressDeadlineSeconds"]
                .as_u64()
                .unwrap_or(600);
            let exceeded = condition(&obj["status"], "Progressing")
                .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded");
            if def.kind == "Deployment"
                && !exceeded
                && since.elapsed() >= std::time::Duration::from_secs(deadline)
            {
                let msg = format!(
                    "ReplicaSet \"{}\" has timed out progressing.",
                    revision(&obj)
                );
                set_status(&shared, &def, ns, name, |_, s| {
                    set_condition(
                        s,
                        true,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &msg,
                    )
                });
            }
            continue;
        }
        set_status(&shared, &def, ns, name, |cur, s| finish(&def, cur, s));
    }
}

/// The first step: the new generation observed, its revision named, nothing updated yet.
fn begin(def: &ResourceDef, obj: &Value, s: &mut Value) {
    if def.kind == "Job" {
        s["startTime"] = json!(now_rfc3339());
        s["active"] = json!(desired(def, obj).max(1));
        s["ready"] = json!(0);
        s["terminating"] = json!(0);
        s["uncountedTerminatedPods"] = json!({});
        return;
    }
    s["observedGeneration"] = json!(generation(obj));
    let rev = revision(obj);
    match def.kind.as_str() {
        "Deployment" => {
            let first = condition(s, "Progressing").is_none();
            set_count(s, "updatedReplicas", 0);
            if condition(s, "Available").is_none() {
                set_condition(
                    s,
                    true,
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                );
            }
            let (reason, msg) = if first {
                (
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{rev}\""),
                )
            } else {
                (
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{rev}\" is progressing."),
                )
            };
            set_condition(s, true, "Progressing", "True", reason, &msg);
        }
        "StatefulSet" => {
            if !s["currentRevision"].is_string() {
                s["currentRevision"] = json!(rev);
            }
            s["updateRevision"] = json!(rev);
            s["collisionCount"] = json!(0);
            let same = s["currentRevision"] == s["updateRevision"];
            let ready = count(&s["readyReplicas"]);
            set_count(s, "updatedReplicas", if same { ready } else { 0 });
            s["replicas"] = json!(count(&s["replicas"]));
            s["availableReplicas"] = json!(count(&s["availableReplicas"]));
        }
        "DaemonSet" => {
            s["desiredNumberScheduled"] = json!(1);
            s["currentNumberScheduled"] = json!(1);
            s["numberMisscheduled"] = json!(0);
            s["numberReady"] = json!(count(&s["numberReady"]));
            set_count(s, "updatedNumberScheduled", 0);
            set_count(s, "numberAvailable", count(&s["numberAvailable"]));
            set_count(s, "numberUnavailable", 1 - count(&s["numberAvailable"]));
        }
        _ => {
            s["replicas"] = json!(count(&s["replicas"]));
        }
    }
}

/// The second step: everything updated, ready and available.
fn finish(def: &ResourceDef, obj: &Value, s: &mut Value) {
    let n = desired(def, obj);
    let rev = revision(obj);
    match def.kind.as_str() {
        "Job" => {
            let now = now_rfc3339();
            if let Some(m) = s.as_object_mut() {
                m.remove("active");
            }
            s["succeeded"] = json!(obj["spec"]["completions"].as_i64().unwrap_or(1));
            s["ready"] = json!(0);
            s["completionTime"] = json!(now);
            set_condition(
                s,
                false,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            set_condition(
                s,
                false,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
        }
        "Deployment" => {
            for k in [
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            ] {
                set_count(s, k, n);
            }
            if let Some(m) = s.as_object_mut() {
                m.remove("unavailableReplicas");
            }
            set_condition(
                s,
                true,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            );
            set_condition(
                s,
                true,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{rev}\" has successfully progressed."),
            );
        }
        "StatefulSet" => {
            s["replicas"] = json!(n);
            s["availableReplicas"] = json!(n);
            for k in ["readyReplicas", "currentReplicas", "updatedReplicas"] {
                set_count(s, k, n);
            }
            s["updateRevision"] = json!(rev);
            s["currentRevision"] = json!(rev);
        }
        "DaemonSet" => {
            for k in [
                "desiredNumberScheduled",
                "currentNumberScheduled",
                "numberReady",
            ] {
                s[k] = json!(n);
            }
            set_count(s, "updatedNumberScheduled", n);
            set_count(s, "numberAvailable", n);
            if let Some(m) = s.as_object_mut() {
                m.remove("numberUnavailable");
            }
        }
        _ => {
            s["replicas"] = json!(n);
            for k in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
                set_count(s, k, n);
            }
        }
    }
}
