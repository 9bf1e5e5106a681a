//! `kubectl rotate schedule`: the manifests it makes are accepted by the sandbox; the Role
//! is exactly enough (the ServiceAccount, with the sandbox enforcing RBAC, rotates that
//! database from inside a "pod" and is refused on another one); `schedule list` shows it;
//! `schedule delete` removes exactly what was made. Also `auth --older-than`.

mod cli_support;

use cli_support::{Env, BIN};
use serde_json::Value;

/// The documents of a `---` separated YAML stream.
fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).expect("a YAML document"))
        .collect()
}

/// The names of every ServiceAccount, Role, RoleBinding and CronJob in `demo`.
fn objects(env: &Env) -> Vec<String> {
    let out = env.kubectl(&[
        "get",
        "serviceaccounts,roles,rolebindings,cronjobs",
        "-n",
        "demo",
        "-o",
        "name",
    ]);
    let mut names: Vec<String> = out.expect(0).stdout.lines().map(str::to_string).collect();
    names.sort();
    names
}

#[test]
fn a_client_dry_run_prints_the_manifests_and_writes_nothing() {
    let env = Env::demo();
    env.sb.faults().reset_counts();
    let out = env.rotate(&[
        "schedule",
        "pg/pg-demo",
        "--every",
        "30d",
        "--at",
        "02:30",
        "--verify",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    out.expect(0);
    assert!(env.writes().is_empty(), "{:?}", env.writes());
    let docs = documents(&out.stdout);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "CronJob"]);
    let cron = &docs[3]["spec"];
    assert_eq!(cron["schedule"], "30 2 * * *");
    assert_eq!(cron["concurrencyPolicy"], "Forbid");
    assert_eq!(cron["jobTemplate"]["spec"]["backoffLimit"], 0);
    assert!(cron["startingDeadlineSeconds"].as_i64().unwrap() > 0);
    let pod = &cron["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rotate-pg-pg-demo");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "auth",
            "pg/pg-demo",
            "-n",
            "demo",
            "--wait",
            "--yes",
            "--older-than",
            "719h",
            "--verify"
        ]
    );
    assert!(pod["containers"][0]["image"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":v{}", env!("CARGO_PKG_VERSION"))));
    // --verify: the port-forward is granted, and Secrets only by name.
    let rules = docs[1]["rules"].as_array().unwrap();
    assert!(rules
        .iter()
        .any(|r| r["resources"][0] == "pods/portforward"));
    for r in rules.iter().filter(|r| r["resources"][0] == "secrets") {
        assert!(r["resourceNames"].is_array(), "{r}");
    }
    assert!(
        !rules.iter().any(|r| r["apiGroups"][0] == "apps"),
        "no workloads without --restart-consumers: {rules:?}"
    );
    // Bad input: one line, exit 2, before any request.
    let out = env.rotate(&["schedule", "pg/pg-demo", "--every", "36h"]);
    out.expect(2);
    assert!(
        out.stderr.contains("cannot be kept by a CronJob"),
        "{}",
        out.stderr
    );
    assert!(env.writes().is_empty());
}

#[test]
fn the_service_account_can_rotate_its_database_and_nothing_else() {
    let env = Env::demo();
    let before = objects(&env);
    let out = env.rotate(&["schedule", "pg/pg-demo", "--every", "1d"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("cronjob.batch/rotate-pg-pg-demo created"),
        "{}",
        out.stdout
    );
    let made = objects(&env);
    assert_eq!(made.len(), before.len() + 4, "{made:?}");

    // What the CronJob's container runs, in a "pod" of its ServiceAccount.
    let args = env.cron_job_args("rotate-pg-pg-demo");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.in_cluster("demo", "rotate-pg-pg-demo", BIN, &args);
    out.expect(0);
    assert!(
        out.stdout.contains("Successful"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let ops = env.ops_requests("postgresopsrequests");
    assert_eq!(
        ops[0]["metadata"]["annotations"]["rotate.kubectl.dev/user"],
        "system:serviceaccount:demo:rotate-pg-pg-demo"
    );
    // Another database in the same namespace: refused, nothing written.
    let writes = env.writes();
    let out = env.in_cluster(
        "demo",
        "rotate-pg-pg-demo",
        BIN,
        &["auth", "md/md-demo", "--wait", "--yes"],
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
    assert_eq!(env.writes(), writes);

    // schedule list shows it.
    let out = env.rotate(&["schedule", "list"]);
    out.expect(0);
    let row = out.stdout.lines().nth(1).unwrap_or_default().to_string();
    assert!(row.starts_with("postgres/pg-demo"), "{}", out.stdout);
    assert!(row.contains("0 3 * * *"), "{row}");
    let doc = env
        .rotate(&["schedule", "list", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(doc["items"][0]["targetName"], "pg-demo");
    assert!(doc["items"][0]["nextRun"]
        .as_str()
        .unwrap()
        .ends_with("T03:00:00Z"));

    // list -o wide: when it next rotates (daily at 03:00); KubeDB's own rotateAfter.
    env.kubectl(&[
        "patch",
        "pg",
        "pg-demo",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"authSecret":{"rotateAfter":"720h"}}}"#,
    ])
    .expect(0);
    let doc = env.rotate(&["list", "-o", "json"]).expect(0).json();
    let pg = cli_support::item_named(&doc, "pg-demo");
    assert!(
        pg["nextRotation"].as_str().unwrap().ends_with("T03:00:00Z"),
        "{pg}"
    );
    assert_eq!(pg["rotateAfter"], "720h");
    let md = cli_support::item_named(&doc, "md-demo");
    assert!(
        md.get("nextRotation").is_none(),
        "md-demo has no schedule: {md}"
    );
    let wide = env.rotate(&["list", "-o", "wide"]).expect(0).stdout.clone();
    assert!(
        wide.lines().next().unwrap().contains("NEXT ROTATION"),
        "{wide}"
    );

    // Running it again updates it; delete removes exactly what was made.
    let out = env.rotate(&["schedule", "pg/pg-demo", "--every", "12h"]);
    out.expect(0);
    assert!(out.stdout.contains("configured"), "{}", out.stdout);
    assert_eq!(
        env.get("cronjob", "rotate-pg-pg-demo")["spec"]["schedule"],
        "0 */12 * * *"
    );
    let out = env.rotate(&["schedule", "delete", "pg/pg-demo"]);
    out.expect(0);
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stdout);
    assert_eq!(objects(&env), before);
    env.rotate(&["schedule", "delete", "pg/pg-demo"]).expect(4);
}

#[test]
fn an_object_of_the_same_name_made_by_someone_else_is_left_alone() {
    let env = Env::demo();
    env.kubectl(&[
        "create",
        "serviceaccount",
        "rotate-pg-pg-demo",
        "-n",
        "demo",
    ])
    .expect(0);
    let before = objects(&env);
    env.sb.faults().reset_counts();
    let out = env.rotate(&["schedule", "pg/pg-demo", "--every", "1d"]);
    out.expect(6);
    assert!(out.stderr.contains("was not made by"), "{}", out.stderr);
    assert!(env.writes().is_empty(), "{:?}", env.writes());
    let out = env.rotate(&["schedule", "delete", "pg/pg-demo"]);
    out.expect(4);
    assert!(out.stderr.contains("left alone"), "{}", out.stderr);
    assert_eq!(objects(&env), before);
}

#[test]
fn auth_older_than_rotates_only_an_old_enough_credential() {
    let env = Env::demo();
    env.sb.faults().reset_counts();
    let out = env.rotate(&["auth", "pg/pg-demo", "--older-than", "90d", "--wait"]);
    out.expect(0);
    assert!(out.stderr.contains("not rotated"), "{}", out.stderr);
    assert!(env.writes().is_empty(), "{:?}", env.writes());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = env.rotate(&["auth", "pg/pg-demo", "--older-than", "1s", "--wait"]);
    out.expect(0);
    assert!(out.stdout.contains("Successful"), "{}", out.stdout);
    let out = env.rotate(&["auth", "pg/pg-demo", "md/md-demo", "--older-than", "1s"]);
    out.expect(2);
}

#[test]
fn gitops_manifests_apply_with_kubectl_and_list_reports_the_last_job_and_its_exit_code() {
    let env = Env::demo();
    let out = env.rotate(&[
        "schedule",
        "pg/pg-demo",
        "--every",
        "30d",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    out.expect(0);
    let file = env.kubeconfig().parent().unwrap().join("rotate-pg.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    env.kubectl(&["apply", "-f", file.to_str().unwrap()])
        .expect(0);
    // What kubectl applied is the plugin's own: running schedule again updates it.
    let again = env.rotate(&["schedule", "pg/pg-demo", "--every", "30d"]);
    again.expect(0);
    assert_eq!(
        again.stdout.matches("configured").count(),
        4,
        "{}",
        again.stdout
    );

    // A run, as the CronJob controller, the Job controller and the kubelet would record
    // one that failed with exit 5 (the rotation Failed).
    // NB: the Job as the CronJob controller makes it (its jobTemplate, owned by the
    // CronJob); `kubectl create job --from` sends protobuf, which the sandbox does not
    // decode for Jobs.
    let cron = env.get("cronjob", "rotate-pg-pg-demo");
    let made = serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "rotate-pg-pg-demo-1", "namespace": "demo",
            "labels": cron["spec"]["jobTemplate"]["metadata"]["labels"],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "rotate-pg-pg-demo",
                                 "uid": cron["metadata"]["uid"], "controller": true}]},
        "spec": cron["spec"]["jobTemplate"]["spec"],
    });
    // NB: the sandbox's Job controller would complete it; this one's pod fails instead.
    env.sb
        .faults()
        .stall_rollouts_of("demo", "rotate-pg-pg-demo-1");
    env.sb.apply_yaml(&made.to_string()).unwrap();
    let job = env.get("job", "rotate-pg-pg-demo-1");
    let status = r#"{"status":{"startTime":"2026-12-01T03:00:01Z","conditions":[{"type":"Failed","status":"True"}]}}"#;
    env.kubectl(&[
        "patch",
        "job",
        "rotate-pg-pg-demo-1",
        "-n",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ])
    .expect(0);
    let labels = &job["spec"]["template"]["metadata"]["labels"];
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "rotate-pg-pg-demo-1-x", "namespace": "demo", "labels": labels,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "rotate-pg-pg-demo-1",
                                 "uid": job["metadata"]["uid"], "controller": true}]},
        "spec": {"containers": [{"name": "rotate", "image": "x"}]},
    });
    env.sb.apply_yaml(&pod.to_string()).unwrap();
    let terminated = r#"{"status":{"phase":"Failed","containerStatuses":[{"name":"rotate","ready":false,"restartCount":0,"image":"x","imageID":"","state":{"terminated":{"exitCode":5}}}]}}"#;
    env.kubectl(&[
        "patch",
        "pod",
        "rotate-pg-pg-demo-1-x",
        "-n",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        terminated,
    ])
    .expect(0);
    let out = env.rotate(&["schedule", "list"]);
    out.expect(0);
    assert!(out.stdout.contains("Failed (exit 5)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("2026-12-01T03:00:01Z"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("30d"), "{}", out.stdout);
}

#[test]
fn with_restart_consumers_the_role_also_lets_the_job_restart_them() {
    let env = Env::demo();
    env.sb
        .apply_yaml(&cli_support::deployment_reading(
            "api",
            &[("PGPASSWORD", "pg-demo-auth")],
        ))
        .unwrap();
    env.rotate(&[
        "schedule",
        "pg/pg-demo",
        "--every",
        "6h",
        "--restart-consumers",
    ])
    .expect(0);
    let args = env.cron_job_args("rotate-pg-pg-demo");
    assert!(args.iter().any(|a| a == "--restart-consumers"), "{args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.in_cluster("demo", "rotate-pg-pg-demo", BIN, &args);
    out.expect(0);
    assert!(!out.stderr.contains("forbidden"), "{}", out.stderr);
    assert!(!out.stderr.contains("could not be"), "{}", out.stderr);
    let restarted = &env.get("deployment", "api")["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"];
    assert!(restarted.is_string(), "{}", out.stdout);
}
