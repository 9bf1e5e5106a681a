//! `kubectl rotate consumers TYPE/NAME` against the sandbox's workloads: who reads the
//! database's credential, how, whether a restart is needed, Reloader, stale references to
//! a Secret the database no longer uses, and who manages the Secrets.

mod cli_support;

use cli_support::{deployment_reading, Env};

/// Workloads in `demo`: a Deployment reading `pg-demo-auth` through env, a StatefulSet
/// mounting it (Reloader on), a CronJob taking all of `pg-new` through envFrom, a bare Pod
/// mounting it through a subPath, and a Pod owned by a ReplicaSet (not shown: its owner is).
const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: app
        image: app
        env:
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: pg-demo-auth, key: password}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: worker
  namespace: demo
  annotations: {reloader.stakater.com/auto: "true"}
spec:
  serviceName: worker
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
      - name: w
        image: w
        volumeMounts: [{name: creds, mountPath: /etc/creds}]
      volumes: [{name: creds, secret: {secretName: pg-demo-auth}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: demo}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: r
            image: r
            envFrom: [{secretRef: {name: pg-new}}]
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: demo}
spec:
  containers:
  - name: d
    image: d
    volumeMounts: [{name: p, mountPath: /etc/pgpass, subPath: pgpass}]
  volumes: [{name: p, projected: {sources: [{secret: {name: pg-new}}]}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api-owned
  namespace: demo
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: api-1, uid: "1", controller: true}]
spec:
  containers:
  - name: a
    image: a
    envFrom: [{secretRef: {name: pg-demo-auth}}]
"#;

fn apply(env: &Env, yaml: &str) {
    let dir = env.kubeconfig().parent().unwrap().join("apply.yaml");
    std::fs::write(&dir, yaml).unwrap();
    env.kubectl(&["apply", "-f", dir.to_str().unwrap()])
        .expect(0);
}

/// The CONSUMERS cell of database `name` in `list -o wide`.
fn consumers_cell(env: &Env, name: &str) -> String {
    let out = env.rotate(&["list", "-o", "wide"]);
    out.expect(0);
    let header = out.stdout.lines().next().unwrap();
    let at = header.find("CONSUMERS").expect("a CONSUMERS column");
    let end = header.find("NEXT ROTATION").expect("the column after it");
    let line = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no row for {name}: {}", out.stdout));
    line.get(at..end).unwrap_or_default().trim().to_string()
}

/// Labels pg-demo-auth as a Flux Kustomization's (`apps`), which writes it back.
fn flux_manages_the_auth_secret(env: &Env) {
    env.kubectl(&[
        "label",
        "secret",
        "pg-demo-auth",
        "-n",
        "demo",
        "kustomize.toolkit.fluxcd.io/name=apps",
    ])
    .expect(0);
}

fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn consumers_shows_who_reads_the_credential_how_and_what_is_stale() {
    let env = Env::demo();
    apply(&env, WORKLOADS);
    // Before: everything reading pg-demo-auth is current; pg-new is nobody's yet.
    let out = env.rotate(&["consumers", "pg/pg-demo"]);
    out.expect(0);
    let r = rows(&out.stdout);
    assert_eq!(
        out.stdout
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["KIND", "NAME", "SECRET", "READS", "PICKS", "UP", "RELOADER", "READY"]
    );
    assert_eq!(r.len(), 2, "{}", out.stdout);
    assert_eq!(
        r[0][..5],
        [
            "Deployment",
            "api",
            "pg-demo-auth",
            "DB_PASSWORD=password",
            "restart"
        ]
    );
    assert_eq!(
        r[1][..6],
        [
            "StatefulSet",
            "worker",
            "pg-demo-auth",
            "/etc/creds",
            "live",
            "yes"
        ]
    );

    assert_eq!(consumers_cell(&env, "pg-demo"), "2", "api and worker");

    // A rotation to a user-supplied Secret re-points the database at it: the workloads
    // still reading pg-demo-auth hold the old password, whatever is restarted.
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        "pg-new",
        "-n",
        "demo",
        "--type=kubernetes.io/basic-auth",
        "--from-literal=username=postgres",
        "--from-literal=password=Fresh-Passw0rd-123",
    ])
    .expect(0);
    env.rotate(&["auth", "pg/pg-demo", "--secret", "pg-new", "--wait"])
        .expect(0);
    let out = env.rotate(&["consumers", "pg/pg-demo"]);
    out.expect(0);
    let r = rows(&out.stdout);
    let find = |name: &str| r.iter().find(|row| row[1] == name).cloned();
    assert_eq!(
        find("api").unwrap()[2..4],
        ["pg-demo-auth", "(old)"],
        "{}",
        out.stdout
    );
    assert_eq!(
        find("report").unwrap()[..5],
        ["CronJob", "report", "pg-new", "envFrom", "restart"]
    );
    assert_eq!(
        find("debug").unwrap()[..6],
        [
            "Pod",
            "debug",
            "pg-new",
            "/etc/pgpass",
            "(subPath)",
            "restart"
        ]
    );
    assert!(
        find("api-owned").is_none(),
        "a Pod a ReplicaSet runs is its owner's: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("(old) read a Secret the database no longer uses"),
        "{}",
        out.stderr
    );

    // list: api and worker read the old Secret, report and debug the new one.
    assert_eq!(consumers_cell(&env, "pg-demo"), "4 (2 stale)");
    let list = env.rotate(&["list", "-o", "json"]).expect(0).json();
    let item = cli_support::item_named(&list, "pg-demo");
    assert_eq!(
        item["consumers"],
        serde_json::json!({"workloads": 4, "stale": 2})
    );
    let plain = env.rotate(&["list"]).expect(0).stdout.clone();
    assert!(!plain.contains("CONSUMERS"), "{plain}");

    let doc = env
        .rotate(&["consumers", "pg/pg-demo", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(doc["kind"], "Consumers");
    assert_eq!(doc["metadata"]["name"], "pg-demo");
    let stale: Vec<&str> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["stale"] == true)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(stale, ["api", "worker"]);
    let names = env
        .rotate(&["consumers", "pg/pg-demo", "-o", "name"])
        .expect(0)
        .stdout
        .clone();
    assert!(names.lines().any(|l| l == "deployment.apps/api"), "{names}");
    assert!(
        names.lines().any(|l| l == "cronjob.batch/report"),
        "{names}"
    );
    env.assert_no_password_printed();
}

#[test]
fn wide_says_who_manages_each_secret_and_warns_when_it_would_revert() {
    let env = Env::demo();
    apply(&env, WORKLOADS);
    flux_manages_the_auth_secret(&env);
    let out = env.rotate(&["consumers", "pg/pg-demo", "-o", "wide"]);
    out.expect(0);
    assert!(
        out.stdout.lines().next().unwrap().ends_with("MANAGED BY"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Flux Kustomization apps"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("Secret pg-demo-auth is managed by Flux Kustomization apps"),
        "{}",
        out.stderr
    );
}

#[test]
fn auth_refuses_a_secret_a_controller_would_write_back_unless_forced() {
    let env = Env::demo();
    flux_manages_the_auth_secret(&env);
    let out = env.rotate(&["auth", "pg/pg-demo"]);
    out.expect(6);
    assert!(
        out.stderr.contains("Flux Kustomization apps"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(env.ops_request_count(), 0, "nothing was written");
    env.rotate(&["auth", "pg/pg-demo", "--force", "--wait"])
        .expect(0);
    assert_eq!(env.ops_request_count(), 1);

    // A user-supplied Secret that External Secrets owns is checked the same way.
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        "from-eso",
        "-n",
        "demo",
        "--type=kubernetes.io/basic-auth",
        "--from-literal=username=root",
        "--from-literal=password=Other-Passw0rd-456",
    ])
    .expect(0);
    env.kubectl(&[
        "patch", "secret", "from-eso", "-n", "demo", "--type=merge", "-p",
        r#"{"metadata":{"ownerReferences":[{"apiVersion":"external-secrets.io/v1beta1","kind":"ExternalSecret","name":"db","uid":"u1"}]}}"#,
    ])
    .expect(0);
    let out = env.rotate(&["auth", "md/md-demo", "--secret", "from-eso"]);
    out.expect(6);
    assert!(
        out.stderr
            .contains("ExternalSecret demo/db (External Secrets Operator)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("external store"), "{}", out.stderr);
}

#[test]
fn restart_consumers_restarts_what_needs_it_once_and_waits_for_the_rollout() {
    let env = Env::demo();
    apply(&env, WORKLOADS);
    let generation =
        |kind: &str, name: &str| env.get(kind, name)["metadata"]["generation"].as_i64();
    let before = generation("deployment", "api");
    let out = env.rotate(&["auth", "pg/pg-demo", "--wait", "--restart-consumers"]);
    out.expect(0);
    let tables: Vec<&str> = out.stdout.split("\n\n").collect();
    assert_eq!(
        tables.len(),
        2,
        "the rotation's table, then the restarts': {}",
        out.stdout
    );
    let r = rows(tables[1]);
    let find = |name: &str| r.iter().find(|row| row[2] == name).cloned().unwrap();
    assert_eq!(
        find("api")[3..],
        ["restarted", "rolled", "out"],
        "{}",
        out.stdout
    );
    assert_eq!(
        find("worker")[3..6],
        ["left", "to", "Reloader"],
        "{}",
        out.stdout
    );
    assert!(
        generation("deployment", "api") > before,
        "the pod template changed"
    );
    let annotations = &env.get("deployment", "api")["spec"]["template"]["metadata"]["annotations"];
    let restarted: jiff::Timestamp = annotations["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .expect("restartedAt")
        .parse()
        .unwrap();
    // Only after the rotation was Successful (times are to the second).
    let ops = env.ops_requests("postgresopsrequests");
    let successful: jiff::Timestamp = ops[0]["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Successful")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .expect("a Successful condition")
        .parse()
        .unwrap();
    assert!(
        restarted >= successful - jiff::SignedDuration::from_secs(1),
        "restarted at {restarted}, Successful at {successful}"
    );
    assert_eq!(
        generation("statefulset", "worker"),
        Some(1),
        "Reloader's is left alone"
    );
    assert!(
        out.stderr
            .contains("deployment/api: successfully rolled out"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_stalled_rollout_stays_in_its_row_and_exits_11_after_the_change_is_made() {
    let env = Env::demo();
    apply(&env, WORKLOADS);
    env.sb.faults().stall_rollouts_of("demo", "api");
    let out = env.rotate(&[
        "auth",
        "pg/pg-demo",
        "--wait",
        "--restart-consumers",
        "--timeout",
        "3s",
    ]);
    out.expect(11);
    let tables: Vec<&str> = out.stdout.split("\n\n").collect();
    assert!(
        tables[0].contains("Successful"),
        "the rotation itself is done: {}",
        out.stdout
    );
    let api = rows(tables[1]).into_iter().find(|r| r[2] == "api").unwrap();
    assert_eq!(api[3], "restarted");
    assert_eq!(api[4..6], ["timed", "out:"], "{}", out.stdout);
    assert!(
        out.stderr
            .contains("kubectl rollout status deployment/api -n demo"),
        "{}",
        out.stderr
    );
}

#[test]
fn nothing_is_restarted_when_the_rotation_fails() {
    let env = Env::demo();
    apply(&env, WORKLOADS);
    let ops = env.ops_request_count();
    env.fail_next_rotation("pg/pg-demo", "injected failure");
    let before = env.get("deployment", "api")["metadata"]["generation"].as_i64();
    let out = env.rotate(&["auth", "pg/pg-demo", "--wait", "--restart-consumers"]);
    out.expect(5);
    assert!(env.ops_request_count() > ops);
    assert_eq!(
        env.get("deployment", "api")["metadata"]["generation"].as_i64(),
        before
    );
}

#[test]
fn an_auth_secret_external_secrets_owns_is_refused_with_nothing_written() {
    let env = Env::demo();
    env.kubectl(&[
        "patch", "secret", "pg-demo-auth", "-n", "demo", "--type=merge", "-p",
        r#"{"metadata":{"ownerReferences":[{"apiVersion":"external-secrets.io/v1","kind":"ExternalSecret","name":"pg","uid":"u1"}]}}"#,
    ])
    .expect(0);
    env.sb.faults().reset_counts();
    let out = env.rotate(&["auth", "pg/pg-demo", "-n", "demo", "--wait"]);
    out.expect(6);
    assert!(
        out.stderr
            .contains("ExternalSecret demo/pg (External Secrets Operator)"),
        "{}",
        out.stderr
    );
    let writes = env.writes();
    assert!(
        writes.is_empty(),
        "nothing written, not even the lock's Lease: {writes:?}"
    );
    assert_eq!(env.ops_request_count(), 0);
}

/// Rotates pg-demo and md-demo at once, restarting their consumers.
const BULK_RESTART: &[&str] = &[
    "auth",
    "pg/pg-demo",
    "md/md-demo",
    "--wait",
    "--restart-consumers",
    "--yes",
];

/// A Deployment reading both `pg-demo-auth` and `md-demo-auth`, and one reading the Arc
/// instance's admin login Secret.
fn shared() -> String {
    [
        deployment_reading(
            "both",
            &[
                ("PG_PASSWORD", "pg-demo-auth"),
                ("MD_PASSWORD", "md-demo-auth"),
            ],
        ),
        deployment_reading("reports", &[("SQL_PASSWORD", "sqlmi-demo-login-secret")]),
    ]
    .join("---\n")
}

#[test]
fn in_bulk_a_workload_reading_several_rotated_secrets_is_restarted_once() {
    let env = Env::demo();
    apply(&env, &shared());
    let generation = || env.get("deployment", "both")["metadata"]["generation"].as_i64();
    assert_eq!(generation(), Some(1));
    let out = env.rotate(BULK_RESTART);
    out.expect(0);
    let tables: Vec<&str> = out.stdout.split("\n\n").collect();
    let both: Vec<Vec<String>> = rows(tables[1])
        .into_iter()
        .filter(|r| r[2] == "both")
        .collect();
    assert_eq!(both.len(), 1, "one row: {}", out.stdout);
    assert_eq!(both[0][3], "restarted");
    assert_eq!(generation(), Some(2), "one restart, one new generation");
    let patches: Vec<_> = env
        .sb
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/both"))
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
}

#[test]
fn an_arc_instances_consumers_read_its_admin_login_secret() {
    let env = Env::demo();
    apply(&env, &shared());
    let out = env.rotate(&["consumers", "sqlmi/sqlmi-demo"]);
    out.expect(0);
    let r = rows(&out.stdout);
    assert_eq!(r.len(), 1, "{}", out.stdout);
    assert_eq!(
        r[0][..5],
        [
            "Deployment",
            "reports",
            "sqlmi-demo-login-secret",
            "SQL_PASSWORD=password",
            "restart"
        ]
    );
    assert_eq!(consumers_cell(&env, "sqlmi-demo"), "1");
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait", "--restart-consumers"]);
    out.expect(0);
    let annotations =
        &env.get("deployment", "reports")["spec"]["template"]["metadata"]["annotations"];
    assert!(
        annotations["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{}",
        out.stdout
    );
    assert_eq!(
        env.get("deployment", "both")["metadata"]["generation"].as_i64(),
        Some(1),
        "a workload that does not read the instance's Secret is left alone"
    );
}

#[test]
fn in_bulk_the_consumers_of_what_succeeded_are_restarted_when_another_failed() {
    let env = Env::demo();
    apply(&env, WORKLOADS);
    env.fail_next_rotation("md/md-demo", "injected failure");
    let out = env.rotate(BULK_RESTART);
    out.expect(5);
    let annotations = &env.get("deployment", "api")["spec"]["template"]["metadata"]["annotations"];
    assert!(
        annotations["kubectl.kubernetes.io/restartedAt"].is_string(),
        "pg-demo's password did change: its reader is restarted: {}",
        out.stdout
    );
}
