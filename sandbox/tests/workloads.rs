//! The workloads with real kubectl (issue 13): apps/v1 Deployments, StatefulSets, DaemonSets,
//! ReplicaSets and batch/v1 Jobs and CronJobs are served as kube-apiserver serves them
//! (discovery, generation, status and scale, strategic merge patches, RBAC), the simulated
//! workload controller rolls them out so `kubectl rollout status` finishes, and a stalled
//! rollout makes it fail.

use std::path::Path;
use std::time::Duration;

use rotate_sandbox::{Fixtures, Options, SandboxHandle};
use serde_json::Value;

mod support;

use support::{kubectl, ok};

#[track_caller]
/// `kubectl patch WHAT -n demo --type=merge -p BODY`, of `subresource` when not empty.
fn merge_patch(kc: &Path, what: &str, subresource: &str, body: &str) {
    let sub = format!("--subresource={subresource}");
    let mut args = vec!["patch", what, "-n", "demo", "--type=merge", "-p", body];
    if !subresource.is_empty() {
        args.push(&sub);
    }
    ok(kc, &args);
}

fn get_json(kc: &Path, what: &str) -> Value {
    serde_json::from_str(&ok(kc, &["get", what, "-n", "demo", "-o", "json"])).unwrap()
}

fn apply(kc: &Path, yaml: &str) -> String {
    let dir = std::env::temp_dir().join(format!("workloads-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("w.yaml");
    std::fs::write(&f, yaml).unwrap();
    let out = ok(kc, &["apply", "-f", f.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn rand_suffix() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// A StatefulSet of 3 mounting `md-demo-auth` and a DaemonSet, in `demo`.
const SET_AND_DAEMON: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: demo}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: mariadb:11}]
      volumes: [{name: auth, secret: {secretName: md-demo-auth}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: demo}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox}]
";

fn deployment(name: &str, image: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: demo
spec:
{extra_spec}  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
        env:
        - name: PGPASSWORD
          valueFrom:
            secretKeyRef: {{name: pg-demo-auth, key: password}}
"
    )
}

#[test]
fn discovery_lists_the_workloads_with_short_names_and_kubectl_reads_them() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let kc = sb.kubeconfig_path();
    let out = ok(kc, &["api-resources", "--api-group=apps", "-o", "wide"]);
    for (name, short) in [
        ("deployments", "deploy"),
        ("statefulsets", "sts"),
        ("daemonsets", "ds"),
        ("replicasets", "rs"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in {out}"));
        assert!(line.contains(short), "{line}");
        assert!(line.contains("all"), "category all: {line}");
    }
    let out = ok(kc, &["api-resources", "--api-group=batch"]);
    assert!(
        out.contains("cronjobs") && out.contains("cj") && out.contains("jobs"),
        "{out}"
    );
    // Short names resolve, and `get all` includes the workloads.
    ok(kc, &["get", "deploy,sts,ds,rs,cj,jobs", "-n", "demo"]);
    apply(kc, &deployment("web", "nginx:1.27", ""));
    let out = ok(kc, &["get", "all", "-n", "demo"]);
    assert!(out.contains("deployment.apps/web"), "{out}");
}

#[test]
fn a_deployment_applies_defaults_counts_spec_changes_and_restarts() {
    let mut opts = Options::empty();
    opts.controllers = false;
    let sb = SandboxHandle::start(opts).unwrap();
    let kc = sb.kubeconfig_path();
    let out = apply(kc, &deployment("web", "nginx:1.27", ""));
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let d = get_json(kc, "deployment/web");
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePolicy"], "File");

    // A metadata-only change keeps the generation.
    ok(kc, &["label", "deployment/web", "-n", "demo", "tier=front"]);
    assert_eq!(get_json(kc, "deployment/web")["metadata"]["generation"], 1);

    // kubectl rollout restart: a strategic merge patch of the template's annotations.
    let out = ok(kc, &["rollout", "restart", "deployment/web", "-n", "demo"]);
    assert!(out.contains("restarted"), "{out}");
    let d = get_json(kc, "deployment/web");
    assert_eq!(d["metadata"]["generation"], 2);
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    // The env of the container survives the strategic merge.
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
        "PGPASSWORD"
    );

    // A re-apply with a new image: a strategic patch with $setElementOrder directives.
    let out = apply(kc, &deployment("web", "nginx:1.28", ""));
    assert!(out.contains("configured"), "{out}");
    let d = get_json(kc, "deployment/web");
    assert_eq!(d["metadata"]["generation"], 3);
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert_eq!(cs[0]["image"], "nginx:1.28");
    assert_eq!(
        cs[0]["env"][0]["valueFrom"]["secretKeyRef"]["name"],
        "pg-demo-auth"
    );
    assert!(
        cs[0]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with('$')),
        "{cs:?}"
    );

    // A merge patch of the spec, the scale subresource.
    merge_patch(
        kc,
        "deployment/web",
        "",
        r#"{"spec":{"minReadySeconds":1}}"#,
    );
    assert_eq!(get_json(kc, "deployment/web")["metadata"]["generation"], 4);
    let out = ok(
        kc,
        &["scale", "deployment/web", "-n", "demo", "--replicas=3"],
    );
    assert!(out.contains("scaled"), "{out}");
    let d = get_json(kc, "deployment/web");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 5);

    // Status is written only through /status, and does not move the generation.
    merge_patch(
        kc,
        "deployment/web",
        "status",
        r#"{"status":{"observedGeneration":5,"replicas":3}}"#,
    );
    let d = get_json(kc, "deployment/web");
    assert_eq!(d["status"]["observedGeneration"], 5);
    assert_eq!(d["metadata"]["generation"], 5);
    merge_patch(kc, "deployment/web", "", r#"{"status":{"replicas":9}}"#);
    assert_eq!(get_json(kc, "deployment/web")["status"]["replicas"], 3);

    // A selector that does not match the template is refused as the apiserver does.
    let bad = deployment("bad", "nginx", "")
        .replace("matchLabels: {app: bad}", "matchLabels: {app: other}");
    let dir = std::env::temp_dir().join(format!("workloads-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.yaml"), bad).unwrap();
    let out = kubectl(kc, &["apply", "-f", dir.join("bad.yaml").to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`selector` does not match template `labels`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = ok(kc, &["delete", "deployment/web", "-n", "demo"]);
    assert!(out.contains("deleted"), "{out}");
    assert!(!kubectl(kc, &["get", "deployment/web", "-n", "demo"])
        .status
        .success());
}

#[test]
fn every_workload_kind_is_created_with_generation_one_and_restarts() {
    let mut opts = Options::empty();
    opts.controllers = false;
    let sb = SandboxHandle::start(opts).unwrap();
    let kc = sb.kubeconfig_path();
    apply(
        kc,
        &format!(
            "{SET_AND_DAEMON}---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: rs1, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: rs1}}}}
  template:
    metadata: {{labels: {{app: rs1}}}}
    spec:
      containers: [{{name: c, image: busybox}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: backup, namespace: demo}}
spec:
  schedule: '*/5 * * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: backup
            image: redis:7
            envFrom: [{{secretRef: {{name: rd-demo-auth}}}}]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: once, namespace: demo}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: busybox}}]
"
        ),
    );
    for w in [
        "statefulset/db",
        "daemonset/agent",
        "replicaset/rs1",
        "cronjob/backup",
        "job/once",
    ] {
        let o = get_json(kc, w);
        assert_eq!(o["metadata"]["generation"], 1, "{w}");
    }
    for w in ["statefulset/db", "daemonset/agent"] {
        ok(kc, &["rollout", "restart", w, "-n", "demo"]);
        assert_eq!(get_json(kc, w)["metadata"]["generation"], 2, "{w}");
    }
    assert_eq!(
        get_json(kc, "statefulset/db")["spec"]["updateStrategy"]["type"],
        "RollingUpdate"
    );
    ok(
        kc,
        &["scale", "statefulset/db", "-n", "demo", "--replicas=2"],
    );
    assert_eq!(get_json(kc, "statefulset/db")["spec"]["replicas"], 2);
    let out = ok(kc, &["get", "cj", "-n", "demo"]);
    assert!(out.contains("*/5 * * * *"), "{out}");
}

#[test]
fn rbac_applies_to_the_workloads() {
    let mut opts = Options::empty();
    opts.controllers = false;
    let sb = SandboxHandle::start(opts).unwrap();
    let admin = sb.kubeconfig_path();
    apply(admin, &deployment("web", "nginx:1.27", ""));
    sb.add_user("vera", &[]);
    sb.bind("vera", "ClusterRole", "view", Some("demo"))
        .unwrap();
    let kc = sb.kubeconfig_for_user("vera").unwrap();
    ok(&kc, &["get", "deployment/web", "-n", "demo"]);
    let out = kubectl(&kc, &["rollout", "restart", "deployment/web", "-n", "demo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("forbidden") && err.contains("deployments"),
        "{err}"
    );
    let out = kubectl(
        &kc,
        &["scale", "deployment/web", "-n", "demo", "--replicas=2"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("deployments/scale"));
    assert_eq!(
        get_json(admin, "deployment/web")["metadata"]["generation"],
        1
    );
}

#[test]
fn kubectl_rollout_status_finishes_for_each_kind_after_a_restart() {
    let mut opts = Options::empty();
    // NB: two steps of 2 s between the Deployment's restart and its rollout's end leave
    // room for the one kubectl call in between on a loaded machine, so rollout status
    // still sees it progress.
    opts.operator_delay = Duration::from_millis(2000);
    let sb = SandboxHandle::start(opts).unwrap();
    let kc = sb.kubeconfig_path();
    apply(kc, &deployment("web", "nginx:1.27", "  replicas: 2\n"));
    apply(kc, SET_AND_DAEMON);
    for w in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        let out = ok(kc, &["rollout", "status", w, "-n", "demo", "--timeout=20s"]);
        // NB: a StatefulSet with the default partition (0) reports a "partitioned roll out",
        // as on a real cluster.
        assert!(
            out.contains("successfully rolled out") || out.contains("roll out complete"),
            "{w}: {out}"
        );
    }
    let d = get_json(kc, "deployment/web");
    let s = &d["status"];
    assert_eq!(s["observedGeneration"], 1);
    for k in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        assert_eq!(s[k], 2, "{k}: {s}");
    }
    assert_eq!(progressing(&d)["reason"], "NewReplicaSetAvailable");

    // A restart: the generation moves, the controller observes it a step later, and
    // rollout status waits for the new revision before it reports success.
    for w in ["statefulset/db", "daemonset/agent", "deployment/web"] {
        ok(kc, &["rollout", "restart", w, "-n", "demo"]);
    }
    // NB: not asserted here that the controller has not observed it yet: that depends on
    // how long the three kubectl calls took (CI caught it on a loaded machine).
    let d = get_json(kc, "deployment/web");
    assert_eq!(d["metadata"]["generation"], 2);
    let out = ok(
        kc,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "demo",
            "--timeout=20s",
        ],
    );
    assert!(
        out.contains("Waiting for deployment"),
        "rollout status watched it progress: {out}"
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    for w in ["statefulset/db", "daemonset/agent"] {
        let out = ok(kc, &["rollout", "status", w, "-n", "demo", "--timeout=20s"]);
        assert!(
            out.contains("complete") || out.contains("successfully rolled out"),
            "{w}: {out}"
        );
    }
    let s = get_json(kc, "statefulset/db")["status"].clone();
    assert_eq!(s["observedGeneration"], 2);
    assert_eq!(s["currentRevision"], s["updateRevision"]);
    assert_eq!(s["readyReplicas"], 3);
    let s = get_json(kc, "daemonset/agent")["status"].clone();
    assert_eq!(s["observedGeneration"], 2);
    assert_eq!(s["numberAvailable"], 1);
}

#[test]
fn a_job_runs_to_completion() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let kc = sb.kubeconfig_path();
    apply(
        kc,
        "apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: demo}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
",
    );
    ok(
        kc,
        &[
            "wait",
            "--for=condition=Complete",
            "job/once",
            "-n",
            "demo",
            "--timeout=20s",
        ],
    );
    assert_eq!(get_json(kc, "job/once")["status"]["succeeded"], 1);
}

#[test]
fn a_stalled_rollout_makes_kubectl_rollout_status_fail() {
    let mut opts = Options::empty();
    opts.operator_delay = Duration::from_millis(50);
    let sb = SandboxHandle::start(opts).unwrap();
    let kc = sb.kubeconfig_path();
    apply(
        kc,
        &deployment("web", "nginx:1.27", "  progressDeadlineSeconds: 3\n"),
    );
    apply(kc, SET_AND_DAEMON);
    for w in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        ok(kc, &["rollout", "status", w, "-n", "demo", "--timeout=20s"]);
    }
    sb.faults().stall_rollouts_of("demo", "web");
    sb.faults().stall_rollouts_of("demo", "db");
    // The other control: the /sandbox/faults endpoint, as the admin.
    let dir = std::env::temp_dir().join(format!("workloads-stall-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cmd = dir.join("stall.json");
    std::fs::write(
        &cmd,
        r#"{"stallRollouts": {"namespace": "demo", "name": "agent"}}"#,
    )
    .unwrap();
    ok(
        kc,
        &[
            "create",
            "--raw",
            "/sandbox/faults",
            "-f",
            cmd.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(sb.faults().rollout_stalled("demo", "agent"));

    for w in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        ok(kc, &["rollout", "restart", w, "-n", "demo"]);
    }
    // Within its deadline a stalled rollout times out on the client's --timeout...
    for w in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        let out = kubectl(kc, &["rollout", "status", w, "-n", "demo", "--timeout=1s"]);
        assert!(!out.status.success(), "{w} is stalled");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("timed out waiting for the condition"),
            "{w}: {err}"
        );
    }
    // ...though the controller observed the new generation.
    for w in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        let o = get_json(kc, w);
        assert_eq!(o["metadata"]["generation"], 2, "{w}");
        assert_eq!(o["status"]["observedGeneration"], 2, "{w}");
    }
    let d = get_json(kc, "deployment/web");
    assert!(d["status"]["updatedReplicas"].is_null(), "{}", d["status"]);
    // After progressDeadlineSeconds the Deployment reports ProgressDeadlineExceeded and
    // rollout status fails on it at once.
    let out = kubectl(
        kc,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "demo",
            "--timeout=20s",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    let d = get_json(kc, "deployment/web");
    let p = progressing(&d);
    assert_eq!(p["status"], "False");
    assert_eq!(p["reason"], "ProgressDeadlineExceeded");

    // Resumed, the stalled rollouts complete.
    for n in ["web", "db", "agent"] {
        sb.faults().resume_rollouts_of("demo", n);
    }
    for w in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        ok(kc, &["rollout", "status", w, "-n", "demo", "--timeout=20s"]);
    }
}

#[test]
fn the_consumer_fixtures_read_the_demo_secrets_and_roll_out() {
    let sb = SandboxHandle::start(Options {
        fixtures: Fixtures::Consumers,
        ..Options::demo()
    })
    .unwrap();
    let kc = sb.kubeconfig_path();
    for w in ["deployment/pg-consumer", "statefulset/md-consumer"] {
        ok(kc, &["rollout", "status", w, "-n", "demo", "--timeout=20s"]);
    }
    let d = get_json(kc, "deployment/pg-consumer");
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[1]["valueFrom"]["secretKeyRef"]["name"], "pg-demo-auth");
    let s = get_json(kc, "statefulset/md-consumer");
    assert_eq!(
        s["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "md-demo-auth"
    );
    let c = get_json(kc, "cronjob/rd-consumer");
    let from = &c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["envFrom"];
    assert_eq!(from[0]["secretRef"]["name"], "rd-demo-auth");
    // The Secrets they name exist.
    for secret in ["pg-demo-auth", "md-demo-auth", "rd-demo-auth"] {
        ok(kc, &["get", "secret", secret, "-n", "demo"]);
    }
    // Plain Demo has none of them.
    drop(sb);
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let out = ok(
        sb.kubeconfig_path(),
        &["get", "deploy,sts,cj", "-n", "demo", "-o", "name"],
    );
    assert!(out.trim().is_empty(), "{out}");
    rotate_sandbox::fixtures::add_consumers(sb.shared()).unwrap();
    let out = ok(
        sb.kubeconfig_path(),
        &["get", "deploy,sts,cj", "-n", "demo", "-o", "name"],
    );
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[track_caller]
fn progressing(obj: &Value) -> Value {
    obj["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone()
}
