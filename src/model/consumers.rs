//! Who reads a credential (issue 13): the workloads whose pods take a Secret's values, how
//! each takes them (env, envFrom, a volume, a projected volume), whether a restart is
//! needed to pick a new value up, whether Stakater Reloader restarts it anyway; and who
//! manages a Secret (a controller that would write the old value back). Pure: decided from
//! the objects as listed, so the verb that shows it and the rotation that restarts them
//! read alike.

use std::collections::BTreeSet;

use serde_json::Value;

/// Where each workload kind is listed: its API group ("" for core) and its plural, all at
/// version v1.
pub const WORKLOAD_RESOURCES: &[(&str, &str, &str)] = &[
    ("Deployment", "apps", "deployments"),
    ("StatefulSet", "apps", "statefulsets"),
    ("DaemonSet", "apps", "daemonsets"),
    ("ReplicaSet", "apps", "replicasets"),
    ("Job", "batch", "jobs"),
    ("CronJob", "batch", "cronjobs"),
    ("Pod", "", "pods"),
];

/// The kinds `--restart-consumers` restarts (of group apps): those with a rollout.
pub const RESTARTABLE: &[&str] = &["deployments", "statefulsets", "daemonsets"];

/// The workload kinds that run pods from a template, and where the template is.
pub const WORKLOAD_KINDS: &[(&str, &str)] = &[
    ("Deployment", "/spec/template/spec"),
    ("StatefulSet", "/spec/template/spec"),
    ("DaemonSet", "/spec/template/spec"),
    ("ReplicaSet", "/spec/template/spec"),
    ("Job", "/spec/template/spec"),
    ("CronJob", "/spec/jobTemplate/spec/template/spec"),
    ("Pod", "/spec"),
];

/// The Secrets whose readers are a database's consumers: `current`, its credential Secret,
/// first; then the ones it used before, newest first (`used`), and the name it was created
/// with (`default`, `<db><suffix>`, for a database re-pointed since); each once.
pub fn watched_secrets(current: &str, used: &[String], default: Option<String>) -> Vec<String> {
    let mut names = vec![current.to_string()];
    for n in used.iter().cloned().chain(default) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// How a container takes a Secret's values.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Read {
    /// `env[].valueFrom.secretKeyRef`: variable `var` from key `key`.
    Env { var: String, key: String },
    /// `envFrom[].secretRef`: every key, as variables (with a prefix, if any).
    EnvFrom { prefix: String },
    /// A `secret` or `projected` volume mounted at `path`; `sub_path` when mounted
    /// through a subPath (the kubelet never updates those).
    Volume { path: String, sub_path: bool },
}

impl Read {
    /// The READS cell: `VAR=key`, `envFrom`, or the mount path.
    pub fn describe(&self) -> String {
        match self {
            Read::Env { var, key } => format!("{var}={key}"),
            Read::EnvFrom { prefix } if prefix.is_empty() => "envFrom".into(),
            Read::EnvFrom { prefix } => format!("envFrom {prefix}*"),
            Read::Volume {
                path,
                sub_path: true,
            } => format!("{path} (subPath)"),
            Read::Volume { path, .. } => path.clone(),
        }
    }

    /// Whether a new value reaches the process only when its pods are restarted:
    /// environment variables are fixed at start, and subPath mounts are never updated;
    /// other volume mounts are, within the kubelet's sync period.
    pub fn needs_restart(&self) -> bool {
        !matches!(
            self,
            Read::Volume {
                sub_path: false,
                ..
            }
        )
    }
}

/// One workload that reads one Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Deployment, StatefulSet, ...
    pub kind: &'static str,
    /// The workload's name.
    pub name: String,
    /// The Secret it reads.
    pub secret: String,
    /// Every way it reads it, in order.
    pub reads: Vec<Read>,
    /// Whether Stakater Reloader's annotations make Reloader restart it on a change.
    pub reloader: bool,
}

impl Consumer {
    /// Whether a new value needs a restart to reach it (PICKS UP: restart, else live).
    pub fn needs_restart(&self) -> bool {
        self.reads.iter().any(Read::needs_restart)
    }
}

/// Whether `obj` is a workload of its own: not run by another workload (a ReplicaSet of a
/// Deployment, a Job of a CronJob, a Pod of any of them), whose owner is the one to show.
pub fn is_top_level(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_none_or(|owners| {
            !owners
                .iter()
                .any(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// How the pods of workload `obj` (of `kind`) read each of `secrets`: one [`Consumer`]
/// for each Secret it reads at all.
pub fn reads(kind: &'static str, obj: &Value, secrets: &[&str]) -> Vec<Consumer> {
    let Some((_, at)) = WORKLOAD_KINDS.iter().find(|(k, _)| *k == kind) else {
        return Vec::new();
    };
    let Some(pod) = obj.pointer(at) else {
        return Vec::new();
    };
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let annotations = obj.pointer("/metadata/annotations");
    secrets
        .iter()
        .filter_map(|secret| {
            let found = pod_reads(pod, secret);
            (!found.is_empty()).then(|| Consumer {
                kind,
                name: name.clone(),
                secret: secret.to_string(),
                reads: found,
                reloader: reloader_covers(annotations, secret),
            })
        })
        .collect()
}

/// Every Secret the pods of workload `obj` (of `kind`) read, each as [`reads`] counts
/// reading (a volume only when mounted), sorted: what `list -o wide` indexes workloads by,
/// so that each database's consumers are found without walking every workload again.
pub fn secrets_read(kind: &str, obj: &Value) -> Vec<String> {
    let Some(pod) = WORKLOAD_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .and_then(|(_, at)| obj.pointer(at))
    else {
        return Vec::new();
    };
    let mut named = BTreeSet::new();
    for c in containers(pod) {
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            named.extend(str_at(e, "/valueFrom/secretKeyRef/name"));
        }
        for e in c
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            named.extend(str_at(e, "/secretRef/name"));
        }
    }
    for v in pod
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        named.extend(str_at(v, "/secret/secretName"));
        for src in v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            named.extend(str_at(src, "/secret/name"));
        }
    }
    named
        .into_iter()
        .filter(|s| !pod_reads(pod, s).is_empty())
        .map(str::to_string)
        .collect()
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(|k| pod.get(k).and_then(Value::as_array))
        .flatten()
}

fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

/// How the containers of pod spec `pod` read Secret `secret`.
fn pod_reads(pod: &Value, secret: &str) -> Vec<Read> {
    let mut out = BTreeSet::new();
    for c in containers(pod) {
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            if str_at(e, "/valueFrom/secretKeyRef/name") == Some(secret) {
                out.insert(Read::Env {
                    var: str_at(e, "/name").unwrap_or_default().into(),
                    key: str_at(e, "/valueFrom/secretKeyRef/key")
                        .unwrap_or_default()
                        .into(),
                });
            }
        }
        for e in c
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if str_at(e, "/secretRef/name") == Some(secret) {
                out.insert(Read::EnvFrom {
                    prefix: str_at(e, "/prefix").unwrap_or_default().into(),
                });
            }
        }
    }
    let volumes: Vec<&str> = pod
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| volume_reads(v, secret))
        .filter_map(|v| str_at(v, "/name"))
        .collect();
    for c in containers(pod) {
        for m in c
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if str_at(m, "/name").is_some_and(|n| volumes.contains(&n)) {
                out.insert(Read::Volume {
                    path: str_at(m, "/mountPath").unwrap_or_default().into(),
                    sub_path: str_at(m, "/subPath").is_some_and(|s| !s.is_empty())
                        || str_at(m, "/subPathExpr").is_some_and(|s| !s.is_empty()),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// Whether volume `v` holds Secret `secret`: a `secret` volume, or a `projected` one
/// with it among its sources.
fn volume_reads(v: &Value, secret: &str) -> bool {
    str_at(v, "/secret/secretName") == Some(secret)
        || v.pointer("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|src| str_at(src, "/secret/name") == Some(secret))
            })
}

/// Whether Stakater Reloader restarts a workload with `annotations` when `secret`
/// changes: `reloader.stakater.com/auto: "true"`, or `secret.reloader.stakater.com/reload`
/// naming it (a comma-separated list).
pub fn reloader_covers(annotations: Option<&Value>, secret: &str) -> bool {
    let Some(a) = annotations else { return false };
    let get = |k: &str| a.get(k).and_then(Value::as_str);
    get("reloader.stakater.com/auto") == Some("true")
        || get("secret.reloader.stakater.com/reload")
            .is_some_and(|l| l.split(',').any(|s| s.trim() == secret))
}

/// Who manages a Secret: a controller that writes it from somewhere else, so that a
/// rotation written into it is reverted on its next sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manager {
    /// What it is, e.g. `ExternalSecret payments/db (External Secrets Operator)`.
    pub what: String,
    /// Whether it writes the Secret back (a rotation there is undone), rather than only
    /// having installed it once.
    pub reverts: bool,
    /// Where to rotate instead.
    pub advice: &'static str,
}

/// The managers a Secret's ownerReferences, labels and annotations name.
pub fn managers(secret: &Value) -> Vec<Manager> {
    let ns = str_at(secret, "/metadata/namespace").unwrap_or_default();
    let label = |k: &str| {
        secret
            .pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    let annotation = |k: &str| {
        secret
            .pointer("/metadata/annotations")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    let mut out = Vec::new();
    for o in secret
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (kind, api) = (
            str_at(o, "/kind").unwrap_or_default(),
            str_at(o, "/apiVersion").unwrap_or_default(),
        );
        let name = str_at(o, "/name").unwrap_or_default();
        if kind == "ExternalSecret" && api.starts_with("external-secrets.io/") {
            out.push(Manager {
                what: format!("ExternalSecret {ns}/{name} (External Secrets Operator)"),
                reverts: true,
                advice: "rotate it in the external store the ExternalSecret reads",
            });
        }
        if kind == "SealedSecret" && api.starts_with("bitnami.com/") {
            out.push(Manager {
                what: format!("SealedSecret {ns}/{name} (Sealed Secrets)"),
                reverts: true,
                advice: "seal the new password with kubeseal and commit the SealedSecret",
            });
        }
    }
    if annotation("argocd.argoproj.io/tracking-id").is_some()
        || label("argocd.argoproj.io/instance").is_some()
    {
        out.push(Manager {
            what: "Argo CD application (tracking annotation or label)".into(),
            reverts: true,
            advice: "change the password where the Argo CD application's manifests live",
        });
    }
    if let Some(name) = label("kustomize.toolkit.fluxcd.io/name") {
        out.push(Manager {
            what: format!("Flux Kustomization {name}"),
            reverts: true,
            advice: "change the password in the repository Flux applies",
        });
    }
    if let Some(name) = label("helm.toolkit.fluxcd.io/name") {
        out.push(Manager {
            what: format!("Flux HelmRelease {name}"),
            reverts: true,
            advice: "change the password in the HelmRelease's values",
        });
    }
    if label("app.kubernetes.io/managed-by") == Some("Helm") {
        let release = annotation("meta.helm.sh/release-name").unwrap_or("unknown");
        out.push(Manager {
            what: format!("Helm release {release}"),
            // NB: Helm writes the Secret again only on the next upgrade, not by itself.
            reverts: false,
            advice: "set the new password in the release's values before its next upgrade",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "api", "namespace": "demo"},
            "spec": {"template": {"spec": {
                "containers": [{
                    "name": "app",
                    "env": [
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "pg-auth", "key": "password"}}},
                        {"name": "OTHER", "valueFrom": {"secretKeyRef": {"name": "other", "key": "x"}}}
                    ],
                    "envFrom": [{"secretRef": {"name": "pg-auth"}, "prefix": "PG_"}],
                    "volumeMounts": [
                        {"name": "creds", "mountPath": "/etc/creds"},
                        {"name": "proj", "mountPath": "/etc/pgpass", "subPath": "pgpass"}
                    ]
                }],
                "volumes": [
                    {"name": "creds", "secret": {"secretName": "pg-auth"}},
                    {"name": "proj", "projected": {"sources": [{"secret": {"name": "pg-auth-old"}}]}}
                ]
            }}}
        })
    }

    #[test]
    fn every_way_a_pod_template_reads_a_secret_is_found() {
        let c = reads(
            "Deployment",
            &deployment(),
            &["pg-auth", "pg-auth-old", "none"],
        );
        assert_eq!(c.len(), 2, "{c:#?}");
        assert_eq!(c[0].secret, "pg-auth");
        let cells: Vec<String> = c[0].reads.iter().map(Read::describe).collect();
        assert_eq!(
            cells,
            vec!["DB_PASSWORD=password", "envFrom PG_*", "/etc/creds"]
        );
        assert!(c[0].needs_restart(), "env is fixed at start");
        assert_eq!(c[1].secret, "pg-auth-old");
        assert_eq!(
            c[1].reads,
            vec![Read::Volume {
                path: "/etc/pgpass".into(),
                sub_path: true
            }]
        );
        assert!(c[1].needs_restart(), "a subPath mount is never updated");
    }

    #[test]
    fn the_secrets_a_workload_reads_are_those_reads_finds() {
        let mut d = deployment();
        assert_eq!(
            secrets_read("Deployment", &d),
            vec!["other", "pg-auth", "pg-auth-old"]
        );
        // A volume no container mounts is not read.
        d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = json!([]);
        assert_eq!(secrets_read("Deployment", &d), vec!["other", "pg-auth"]);
        assert!(secrets_read("Unknown", &d).is_empty());
    }

    #[test]
    fn a_plain_volume_mount_is_picked_up_live() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["env"] = json!([]);
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"] = json!([]);
        let c = reads("Deployment", &d, &["pg-auth"]);
        assert!(!c[0].needs_restart());
    }

    #[test]
    fn cron_jobs_and_bare_pods_are_read_where_their_pod_spec_is() {
        let pod = json!({"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]});
        let cron = json!({"metadata": {"name": "nightly"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}});
        assert_eq!(reads("CronJob", &cron, &["s"]).len(), 1);
        let bare = json!({"metadata": {"name": "p"}, "spec": pod});
        assert_eq!(reads("Pod", &bare, &["s"]).len(), 1);
        assert!(is_top_level(&bare));
        let owned =
            json!({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "controller": true}]}});
        assert!(!is_top_level(&owned));
    }

    #[test]
    fn reloader_annotations_are_read_as_reloader_reads_them() {
        assert!(reloader_covers(
            Some(&json!({"reloader.stakater.com/auto": "true"})),
            "s"
        ));
        let named = json!({"secret.reloader.stakater.com/reload": "a, s"});
        assert!(reloader_covers(Some(&named), "s"));
        assert!(!reloader_covers(Some(&named), "b"));
        assert!(!reloader_covers(None, "s"));
    }

    #[test]
    fn managers_are_told_by_owners_labels_and_annotations() {
        let eso = json!({"metadata": {"namespace": "p", "ownerReferences": [
            {"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret", "name": "db"}]}});
        let m = managers(&eso);
        assert_eq!(m.len(), 1);
        assert!(m[0].reverts && m[0].what.contains("ExternalSecret p/db"));
        let sealed = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": "db"}]}});
        assert!(managers(&sealed)[0].what.contains("SealedSecret"));
        let helm = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "pay"}}});
        let m = managers(&helm);
        assert!(!m[0].reverts && m[0].what == "Helm release pay");
        let argo = json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "app:/Secret:p/db"}}});
        assert!(managers(&argo)[0].reverts);
        let flux = json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}});
        assert_eq!(managers(&flux)[0].what, "Flux Kustomization apps");
        assert!(managers(&json!({"metadata": {}})).is_empty());
    }
}
