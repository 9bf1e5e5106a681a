//! `auth|rollback --restart-consumers`: after a rotation succeeded (and, with `--verify`,
//! its logins were proven), restart the workloads that need it to pick the new credential
//! up, as `kubectl rollout restart` does (the pod template's
//! `kubectl.kubernetes.io/restartedAt` annotation), each once however many of the rotated
//! Secrets it reads; then wait for each rollout as `kubectl rollout status` judges it.
//! Workloads Reloader restarts, ones that see the value live, bare Pods, Jobs and stale
//! references are reported, never touched.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{json, Value};

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::MANAGER;
use crate::report::{ConsumerRow, Progress, RestartRow};
use crate::target::Target;

/// How long each rollout may take without `--timeout`: kubectl's own default for
/// `rollout status` is to wait forever; a rotation that waits forever helps no one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What to do with one workload that reads a rotated Secret (pure).
fn decide(rows: &[&ConsumerRow]) -> Option<&'static str> {
    let restartable =
        |c: &ConsumerRow| matches!(c.kind, "Deployment" | "StatefulSet" | "DaemonSet");
    let needs = |c: &&&ConsumerRow| !c.stale && c.picks_up == "restart" && !c.reloader;
    if rows.iter().any(|c| restartable(c)) && rows.iter().any(|c| needs(&c)) {
        return None;
    }
    let first = rows.first()?;
    Some(if rows.iter().all(|c| c.stale) {
        "not restarted: it reads a Secret the database no longer uses; change its reference"
    } else if first.kind == "Pod" {
        "not restarted: a bare Pod (delete it to restart it)"
    } else if first.kind == "CronJob" {
        "not needed: its next run reads the new value"
    } else if first.kind == "Job" || first.kind == "ReplicaSet" {
        "not restarted: no rollout to restart it with"
    } else if rows.iter().any(|c| c.reloader) {
        "left to Reloader"
    } else {
        "not needed: it reads the Secret live"
    })
}

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind))
}

/// Whether a rollout is done as `kubectl rollout status` judges it: `Ok(Some(message))`
/// while it goes on, `Ok(None)` when done, `Err` when the controller gave up.
pub fn rollout_state(kind: &str, obj: &Value) -> std::result::Result<Option<String>, String> {
    let num = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let generation = num("/metadata/generation");
    if num("/status/observedGeneration") < generation {
        return Ok(Some(
            "waiting for the controller to observe the restart".into(),
        ));
    }
    match kind {
        "Deployment" => {
            let progressing = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Progressing"));
            if progressing.is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
                return Err("exceeded its progress deadline".into());
            }
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (updated, total, available) = (
                num("/status/updatedReplicas"),
                num("/status/replicas"),
                num("/status/availableReplicas"),
            );
            if updated < want {
                return Ok(Some(format!(
                    "{updated} of {want} new replicas have been updated"
                )));
            }
            if total > updated {
                return Ok(Some(format!(
                    "{} old replicas are pending termination",
                    total - updated
                )));
            }
            if available < updated {
                return Ok(Some(format!(
                    "{available} of {updated} updated replicas are available"
                )));
            }
            Ok(None)
        }
        "StatefulSet" => {
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (ready, updated) = (num("/status/readyReplicas"), num("/status/updatedReplicas"));
            if ready < want {
                return Ok(Some(format!("{ready} of {want} pods are ready")));
            }
            if updated < want {
                return Ok(Some(format!("{updated} of {want} pods have been updated")));
            }
            let rev = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
            if rev("/status/updateRevision") != rev("/status/currentRevision") {
                return Ok(Some("waiting for the update to finish".into()));
            }
            Ok(None)
        }
        _ => {
            let want = num("/status/desiredNumberScheduled");
            let (updated, available) = (
                num("/status/updatedNumberScheduled"),
                num("/status/numberAvailable"),
            );
            if updated < want {
                return Ok(Some(format!(
                    "{updated} of {want} updated pods are scheduled"
                )));
            }
            if available < want {
                return Ok(Some(format!(
                    "{available} of {want} updated pods are available"
                )));
            }
            Ok(None)
        }
    }
}

/// Restarts what needs it among the consumers of `targets` (namespace, database) and waits
/// for each rollout up to `timeout`; one row per workload, in order.
pub async fn run(
    ctx: &Ctx,
    targets: &[(String, Target)],
    timeout: Duration,
    progress: &mut dyn Progress,
) -> Result<Vec<RestartRow>> {
    let mut found: BTreeMap<(String, &'static str, String), Vec<ConsumerRow>> = BTreeMap::new();
    for (ns, target) in targets {
        let ctx = Ctx {
            namespace: ns.clone(),
            ..ctx.clone()
        };
        let report = super::consumers::run(&ctx, target).await?;
        for w in &report.warnings {
            progress.warn(w);
        }
        for c in report.items {
            found
                .entry((ns.clone(), c.kind, c.name.clone()))
                .or_default()
                .push(c);
        }
    }
    let at = crate::backend::now_rfc3339();
    let mut rows = Vec::new();
    let mut started = Vec::new();
    for ((ns, kind, name), reads) in &found {
        let refs: Vec<&ConsumerRow> = reads.iter().collect();
        let mut row = RestartRow {
            namespace: ns.clone(),
            kind,
            name: name.clone(),
            action: String::new(),
            result: "-".into(),
            failed: false,
        };
        match decide(&refs) {
            Some(why) => row.action = why.into(),
            None => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(ctx.client.clone(), ns, &resource(kind));
                let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": at}}}}});
                let pp = PatchParams {
                    field_manager: Some(MANAGER.into()),
                    ..Default::default()
                };
                // NB: not retried: a second identical patch is harmless (the same
                // restartedAt), but a lost response is better said than guessed.
                match api.patch(name, &pp, &Patch::Strategic(patch)).await {
                    Ok(_) => {
                        row.action = "restarted".into();
                        progress.note(&format!("{}/{name}: restarted", kind.to_ascii_lowercase()));
                        started.push(rows.len());
                    }
                    Err(e) => {
                        row.action = "not restarted".into();
                        row.result = Error::api(format!("patch {kind} {ns}/{name}"), e).to_string();
                        row.failed = true;
                    }
                }
            }
        }
        rows.push(row);
    }
    let deadline = Instant::now() + timeout;
    let mut last: BTreeMap<usize, String> = BTreeMap::new();
    let mut open = started;
    while !open.is_empty() {
        let mut still = Vec::new();
        for i in open {
            let (ns, kind, name) = (
                rows[i].namespace.clone(),
                rows[i].kind,
                rows[i].name.clone(),
            );
            let api: Api<DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), &ns, &resource(kind));
            let obj = match crate::api::retry(|| api.get(&name)).await {
                Ok(o) => serde_json::to_value(&o).unwrap_or(Value::Null),
                Err(e) => {
                    rows[i].result = Error::api(format!("get {kind} {ns}/{name}"), e).to_string();
                    rows[i].failed = true;
                    continue;
                }
            };
            match rollout_state(kind, &obj) {
                Ok(None) => {
                    rows[i].result = "rolled out".into();
                    progress.note(&format!(
                        "{}/{name}: successfully rolled out",
                        kind.to_ascii_lowercase()
                    ));
                }
                Ok(Some(msg)) => {
                    if last.get(&i) != Some(&msg) {
                        progress.note(&format!("{}/{name}: {msg}", kind.to_ascii_lowercase()));
                        last.insert(i, msg.clone());
                    }
                    rows[i].result = msg;
                    still.push(i);
                }
                Err(why) => {
                    rows[i].result = format!("failed: {why}");
                    rows[i].failed = true;
                }
            }
        }
        if !still.is_empty() && Instant::now() >= deadline {
            for i in &still {
                rows[*i].result = format!("timed out: {}", rows[*i].result);
                rows[*i].failed = true;
            }
            break;
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &'static str, stale: bool, picks_up: &'static str, reloader: bool) -> ConsumerRow {
        ConsumerRow {
            kind,
            name: "w".into(),
            secret: "s".into(),
            stale,
            reads: vec![],
            picks_up,
            reloader,
            ready: "1/1".into(),
        }
    }

    #[test]
    fn only_what_needs_a_restart_and_can_have_one_is_restarted() {
        assert_eq!(decide(&[&row("Deployment", false, "restart", false)]), None);
        assert!(decide(&[&row("Deployment", false, "live", false)])
            .unwrap()
            .contains("live"));
        assert!(decide(&[&row("Deployment", false, "restart", true)])
            .unwrap()
            .contains("Reloader"));
        assert!(decide(&[&row("Deployment", true, "restart", false)])
            .unwrap()
            .contains("reference"));
        assert!(decide(&[&row("Pod", false, "restart", false)])
            .unwrap()
            .contains("bare Pod"));
        assert!(decide(&[&row("CronJob", false, "restart", false)])
            .unwrap()
            .contains("next run"));
        // Read twice, once stale and once current through env: restarted (once).
        let two = [
            &row("StatefulSet", true, "restart", false),
            &row("StatefulSet", false, "restart", false),
        ];
        assert_eq!(decide(&two), None);
    }

    #[test]
    fn rollouts_are_judged_as_kubectl_rollout_status_judges_them() {
        let d = |gen: i64, observed: i64, updated: i64, total: i64, available: i64| {
            json!({"metadata": {"generation": gen}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": observed, "updatedReplicas": updated,
                              "replicas": total, "availableReplicas": available}})
        };
        assert!(rollout_state("Deployment", &d(2, 1, 2, 2, 2))
            .unwrap()
            .is_some());
        assert!(rollout_state("Deployment", &d(2, 2, 1, 2, 2))
            .unwrap()
            .unwrap()
            .contains("1 of 2"));
        assert!(rollout_state("Deployment", &d(2, 2, 2, 3, 2))
            .unwrap()
            .unwrap()
            .contains("old replicas"));
        assert_eq!(rollout_state("Deployment", &d(2, 2, 2, 2, 2)), Ok(None));
        let mut stuck = d(2, 2, 0, 2, 0);
        stuck["status"]["conditions"] =
            json!([{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]);
        assert!(rollout_state("Deployment", &stuck).is_err());
        let ds = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
            "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}});
        assert!(rollout_state("DaemonSet", &ds).unwrap().is_some());
    }
}
