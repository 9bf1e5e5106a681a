//! `kubectl rotate consumers TYPE/NAME`: every workload in the database's namespace that
//! reads its credential, how, whether it needs a restart to pick a new one up, whether
//! Stakater Reloader covers it; the Secrets it used before (reading one of those is stale:
//! a restart does not help, the reference must change); and who manages each Secret.
//!
//! Requests: discovery, then the database, its ops requests and the seven workload LISTs
//! at once, then the Secrets' metadata (never their values).

use kube::api::{Api, DynamicObject};
use serde_json::Value;

use crate::api::discovery::{discover, Wanted};
use crate::api::read::{collection_url, get_target, list_pages};
use crate::cli::ConsumersArgs;
use crate::context::Ctx;
use crate::engines::EngineSpec;
use crate::error::{Error, Result};
use crate::model::consumers::{
    is_top_level, managers, reads, watched_secrets, WORKLOAD_KINDS, WORKLOAD_RESOURCES,
};
use crate::model::ops::{OpsItem, SecretUsed};
use crate::model::DbItem;
use crate::report::{ConsumerRow, ConsumersReport, SecretUse, Subject};
use crate::target::Target;

/// The collection URL of each workload kind, in namespace `scope` (else the cluster's).
pub fn workload_urls(scope: Option<&str>) -> impl Iterator<Item = (&'static str, String)> + '_ {
    WORKLOAD_RESOURCES.iter().map(move |(kind, group, plural)| {
        let gv = match *group {
            "" => "/api/v1".to_string(),
            g => format!("/apis/{g}/v1"),
        };
        let url = match scope {
            Some(ns) => format!("{gv}/namespaces/{ns}/{plural}"),
            None => format!("{gv}/{plural}"),
        };
        (*kind, url)
    })
}

/// The Secret a database of `engine` named `db` is created with, when the engine has one.
pub fn default_secret(engine: &EngineSpec, db: &str) -> Option<String> {
    (!engine.auth_suffix.is_empty()).then(|| format!("{db}{}", engine.auth_suffix))
}

/// Checks `consumers` arguments (pure: before any API call).
pub fn plan(args: &ConsumersArgs) -> Result<Target> {
    Target::parse(&args.target)
}

/// The READY cell: ready of wanted replicas (pods: containers), or `-` where it does not
/// apply (Jobs, CronJobs).
fn ready(kind: &str, obj: &Value) -> String {
    let num = |p: &str| obj.pointer(p).and_then(Value::as_i64);
    match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => format!(
            "{}/{}",
            num("/status/readyReplicas").unwrap_or(0),
            num("/spec/replicas").unwrap_or(1)
        ),
        "DaemonSet" => format!(
            "{}/{}",
            num("/status/numberReady").unwrap_or(0),
            num("/status/desiredNumberScheduled").unwrap_or(0)
        ),
        "Pod" => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ok = statuses.map_or(0, |s| {
                s.iter()
                    .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                    .count()
            });
            format!("{ok}/{total}")
        }
        _ => "-".into(),
    }
}

/// Reads the database, what it used before, the workloads and the Secrets' managers.
pub async fn run(ctx: &Ctx, target: &Target) -> Result<ConsumersReport> {
    let engine = target.engine;
    let ns = ctx.namespace.as_str();
    let ars = discover(ctx, &Wanted::engine_and_ops(engine)).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ars[0]);
    let ops_path = ars.get(1).map(|ar| collection_url(ar, Some(ns)));
    let workloads =
        futures::future::join_all(workload_urls(Some(ns)).map(|(kind, url)| async move {
            let mut items = Vec::new();
            let listed = list_pages::<Value>(ctx, &url, None, None, |v| items.push(v)).await;
            (kind, listed.map(|_| items))
        }));
    let used = async {
        let mut used = Vec::new();
        if let Some(path) = &ops_path {
            list_pages::<OpsItem>(ctx, path, None, None, |o| {
                if o.target() == Some(target.name.as_str()) {
                    used.extend(SecretUsed::of(&o));
                }
            })
            .await?;
        }
        Ok::<_, Error>(SecretUsed::newest_first(used))
    };
    let (db, used, workloads) = futures::join!(get_target(&api, target, ns), used, workloads);
    let db = DbItem::from_dynamic(&db?);
    let current = db.credential_secret(engine).unwrap_or_default();
    let names = watched_secrets(&current, &used?, default_secret(engine, &target.name));
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for (kind, listed) in workloads {
        let items = match listed {
            Ok(items) => items,
            // NB: a kind the user may not list is said, not fatal: the others still count.
            Err(e) => {
                warnings.push(format!("{kind}s could not be listed: {e}"));
                continue;
            }
        };
        let Some((kind, _)) = WORKLOAD_KINDS.iter().find(|(k, _)| *k == kind) else {
            continue;
        };
        for obj in items.iter().filter(|o| is_top_level(o)) {
            for c in reads(kind, obj, &wanted) {
                rows.push(ConsumerRow {
                    kind: c.kind,
                    stale: c.secret != current,
                    picks_up: if c.needs_restart() { "restart" } else { "live" },
                    reads: c.reads.iter().map(|r| r.describe()).collect(),
                    reloader: c.reloader,
                    ready: ready(kind, obj),
                    name: c.name,
                    secret: c.secret,
                });
            }
        }
    }
    let secrets_api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(ctx.client.clone(), ns);
    let metas = futures::future::join_all(names.iter().map(|n| {
        let api = secrets_api.clone();
        async move { (n.clone(), api.get_metadata_opt(n).await) }
    }))
    .await;
    let mut secrets = Vec::new();
    for (name, meta) in metas {
        let meta = match meta {
            Ok(Some(m)) => m,
            Ok(None) if name != current => continue,
            Ok(None) => {
                warnings.push(format!("the auth Secret {name} does not exist"));
                continue;
            }
            Err(e) => {
                warnings.push(format!("the Secret {name} could not be read: {e}"));
                continue;
            }
        };
        let v = serde_json::to_value(&meta).unwrap_or(Value::Null);
        secrets.push(SecretUse {
            current: name == current,
            managers: managers(&v).into_iter().map(|m| m.what).collect(),
            name,
        });
    }
    Ok(ConsumersReport {
        subject: Subject::new("Consumers", ns, engine, &target.name),
        secrets,
        items: rows,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_reads_as_kubectl_get_shows_it() {
        let d = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 2}});
        assert_eq!(ready("Deployment", &d), "2/3");
        assert_eq!(ready("StatefulSet", &json!({})), "0/1");
        let p = json!({"spec": {"containers": [{}, {}]}, "status": {"containerStatuses": [{"ready": true}, {"ready": false}]}});
        assert_eq!(ready("Pod", &p), "1/2");
        assert_eq!(ready("CronJob", &json!({})), "-");
    }
}
