//! The workload kinds of `apps/v1` (Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! ControllerRevision) and `batch/v1` (Job, CronJob): their printer columns, the defaults
//! and checks kube-apiserver applies on write, the pod-template hash their controllers name
//! revisions by, the `autoscaling/v1` Scale of the `/scale` subresource, and the strategic
//! merge patch (`kubectl apply`, `kubectl rollout restart`) with the merge keys of the pod
//! template's lists.

use serde_json::{json, Value};

use crate::error::{ApiError, Cause};
use crate::registry::{Column, ResourceDef};

/// A Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob (not a
/// ControllerRevision: no spec, no status).
pub fn is_workload(def: &ResourceDef) -> bool {
    !def.custom
        && match def.group.as_str() {
            "apps" => def.kind != "ControllerRevision",
            "batch" => true,
            _ => false,
        }
}

fn col(name: &'static str, ty: &'static str, path: &'static str) -> Column {
    Column { name, ty, path }
}

/// The server-side Table columns after Name, as `kubectl get` shows them on a real cluster
/// (Age last, added by the Table code).
pub fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Deployment" => vec![
            col("Ready", "string", "status.readyReplicas/spec.replicas"),
            col("Up-to-date", "integer", "status.updatedReplicas"),
            col("Available", "integer", "status.availableReplicas"),
        ],
        "StatefulSet" => vec![col("Ready", "string", "status.readyReplicas/spec.replicas")],
        "ReplicaSet" => vec![
            col("Desired", "integer", "spec.replicas"),
            col("Current", "integer", "status.replicas"),
            col("Ready", "integer", "status.readyReplicas"),
        ],
        "DaemonSet" => vec![
            col("Desired", "integer", "status.desiredNumberScheduled"),
            col("Current", "integer", "status.currentNumberScheduled"),
            col("Ready", "integer", "status.numberReady"),
            col("Up-to-date", "integer", "status.updatedNumberScheduled"),
            col("Available", "integer", "status.numberAvailable"),
        ],
        "Job" => vec![col(
            "Completions",
            "string",
            "status.succeeded/spec.completions",
        )],
        "CronJob" => vec![
            col("Schedule", "string", "spec.schedule"),
            col("Suspend", "boolean", "spec.suspend"),
        ],
        _ => vec![],
    }
}

fn default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        if m.get(key).is_none_or(Value::is_null) {
            m.insert(key.to_string(), value);
        }
    }
}

/// The defaults of a pod template's spec (core/v1 PodSpec and Container defaulting).
/// `restart` is the restartPolicy defaulted (none for a Job's template: it must be set).
fn default_pod_spec(spec: &mut Value, restart: Option<&str>) {
    if !spec.is_object() {
        return;
    }
    if let Some(r) = restart {
        default(spec, "restartPolicy", json!(r));
    }
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec[list].as_array_mut() else {
            continue;
        };
        for c in cs.iter_mut().filter(|c| c.is_object()) {
            let image = c["image"].as_str().unwrap_or("").to_string();
            let tag = image.rsplit('/').next().unwrap_or("");
            let latest = !tag.contains(':') && !image.contains('@') || tag.ends_with(":latest");
            default(
                c,
                "imagePullPolicy",
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            default(c, "terminationMessagePath", json!("/dev/termination-log"));
            default(c, "terminationMessagePolicy", json!("File"));
            default(c, "resources", json!({}));
            if let Some(ports) = c["ports"].as_array_mut() {
                for p in ports.iter_mut() {
                    default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn default_template(spec: &mut Value, restart: Option<&str>) {
    if spec["template"].is_object() {
        default(&mut spec["template"], "metadata", json!({}));
        default_pod_spec(&mut spec["template"]["spec"], restart);
    }
}

/// The defaults kube-apiserver fills in on a workload's create and update.
pub fn mutate(def: &ResourceDef, obj: &mut Value) {
    if !is_workload(def) || !obj["spec"].is_object() {
        return;
    }
    let spec = &mut obj["spec"];
    match def.kind.as_str() {
        "Deployment" => {
            default(spec, "replicas", json!(1));
            default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default_template(spec, Some("Always"));
        }
        "StatefulSet" => {
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            default_template(spec, Some("Always"));
        }
        "DaemonSet" => {
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default_template(spec, Some("Always"));
        }
        "ReplicaSet" => {
            default(spec, "replicas", json!(1));
            default_template(spec, Some("Always"));
        }
        "Job" => {
            default(spec, "parallelism", json!(1));
            default(spec, "completions", json!(1));
            default(spec, "backoffLimit", json!(6));
            default(spec, "completionMode", json!("NonIndexed"));
            default(spec, "suspend", json!(false));
            default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            default_template(spec, None);
        }
        "CronJob" => {
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            if spec["jobTemplate"]["spec"].is_object() {
                default_template(&mut spec["jobTemplate"]["spec"], None);
            }
        }
        _ => {}
    }
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let ml_ok = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let me_ok = selector["matchExpressions"].as_array().is_none_or(|es| {
        es.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or("");
            let vals: Vec<&Value> = e["values"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let have = labels.get(key);
            match e["operator"].as_str().unwrap_or("") {
                "In" => have.is_some_and(|h| vals.contains(&h)),
                "NotIn" => have.is_none_or(|h| !vals.contains(&h)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            }
        })
    });
    ml_ok && me_ok
}

/// The checks of the apiserver's validation a client meets first: a selector (apps kinds)
/// that selects the template's labels, and a template with containers.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    if !is_workload(def) {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let mut causes = vec![];
    let mut cause = |field: &str, reason: &str, message: String| {
        causes.push(Cause {
            reason: reason.into(),
            message,
            field: field.into(),
        })
    };
    let (template, tpath) = match def.kind.as_str() {
        "CronJob" => (
            &obj["spec"]["jobTemplate"]["spec"]["template"],
            "spec.jobTemplate.spec.template",
        ),
        _ => (&obj["spec"]["template"], "spec.template"),
    };
    if def.group == "apps" {
        let sel = &obj["spec"]["selector"];
        if !sel.is_object() {
            cause(
                "spec.selector",
                "FieldValueRequired",
                "Required value".into(),
            );
        } else if !labels_match(sel, &template["metadata"]["labels"]) {
            cause(
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    serde_json::to_string(&template["metadata"]["labels"]).unwrap_or_default()
                ),
            );
        }
        if let Some(old) = old {
            if old["spec"]["selector"] != obj["spec"]["selector"] {
                cause(
                    "spec.selector",
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {}: field is immutable",
                        serde_json::to_string(sel).unwrap_or_default()
                    ),
                );
            }
        }
    }
    if def.kind == "CronJob" && !obj["spec"]["schedule"].is_string() {
        cause(
            "spec.schedule",
            "FieldValueRequired",
            "Required value".into(),
        );
    }
    if template["spec"]["containers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        cause(
            &format!("{tpath}.spec.containers"),
            "FieldValueRequired",
            "Required value".into(),
        );
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.group, &def.kind, name, causes))
    }
}

/// A stable 10-character hash of a pod template, from the alphabet of the controllers'
/// `pod-template-hash` and revision names.
pub fn template_hash(template: &Value) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in serde_json::to_string(template).unwrap_or_default().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHA[(h % ALPHA.len() as u64) as usize] as char;
            h /= ALPHA.len() as u64;
            c
        })
        .collect()
}

/// The `autoscaling/v1` Scale of a Deployment, ReplicaSet or StatefulSet.
pub fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|l| {
            let mut v: Vec<String> = l
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            v.sort();
            v.join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// The patch merge keys of the lists of built-in kinds (struct tags `patchMergeKey`):
/// lists not named here are replaced whole, as a merge patch does.
fn merge_key(list: &str) -> Option<&'static str> {
    Some(match list {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" | "volumeDevices" => "mountPath",
        "ports" => "containerPort",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        _ => return None,
    })
}

/// Apply a strategic merge patch (`application/strategic-merge-patch+json`) as the
/// apiserver does for built-in kinds: maps merge, `null` deletes, lists with a patch merge
/// key merge by it (`$patch: delete` removes an element), `$patch: replace|delete` on a map,
/// `$deleteFromPrimitiveList/<list>`; `$setElementOrder/<list>` and `$retainKeys` are
/// accepted and otherwise ignored (order and retained keys come out as the merge leaves them).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            *target = Value::Object(m);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().expect("an object");
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(cur), Some(gone)) =
                (t.get_mut(list).and_then(Value::as_array_mut), v.as_array())
            {
                cur.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), v) {
            (Some(key), Value::Array(items)) if items.iter().all(Value::is_object) => {
                let cur = t.entry(k.clone()).or_insert_with(|| json!([]));
                if !cur.is_array() {
                    *cur = json!([]);
                }
                let cur = cur.as_array_mut().expect("an array");
                for item in items {
                    let id = &item[key];
                    let pos = cur.iter().position(|c| &c[key] == id);
                    if item["$patch"] == "delete" {
                        if let Some(i) = pos {
                            cur.remove(i);
                        }
                        continue;
                    }
                    match pos {
                        Some(i) => strategic_merge(&mut cur[i], item),
                        None => {
                            let mut fresh = Value::Null;
                            strategic_merge(&mut fresh, item);
                            cur.push(fresh);
                        }
                    }
                }
            }
            (_, Value::Object(_)) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(slot, v);
                if slot.is_null() {
                    t.remove(k);
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strategic_patch_merges_containers_by_name_and_drops_directives() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "side", "image": "s:1"},
        ]}}}});
        let p = json!({"spec": {"template": {
            "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
            "spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                     "containers": [{"name": "app", "image": "a:2"}, {"name": "side", "$patch": "delete"}]}}}});
        strategic_merge(&mut d, &p);
        assert_eq!(
            d,
            json!({"spec": {"template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                "spec": {"containers": [{"name": "app", "image": "a:2", "env": [{"name": "X", "value": "1"}]}]}}}})
        );
    }

    #[test]
    fn template_hashes_are_stable_and_follow_the_template() {
        let a = template_hash(&json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(a.len(), 10);
        assert_eq!(
            a,
            template_hash(&json!({"spec": {"containers": [{"name": "a"}]}}))
        );
        assert_ne!(
            a,
            template_hash(&json!({"spec": {"containers": [{"name": "b"}]}}))
        );
    }
}
