//! Real kubectl against the sandbox: the commands a user runs on a real cluster behave the
//! same here (kubectl >= 1.26 on PATH, or `$KUBECTL`; scripts/test.sh provides one).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rotate_sandbox::{Options, SandboxHandle};

mod support;

use support::{kubectl, kubectl_bin, ok};

fn jsonpath(kc: &Path, args: &[&str], path: &str) -> String {
    let jp = format!("jsonpath={path}");
    let mut a = args.to_vec();
    a.extend(["-o", &jp]);
    ok(kc, &a)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn kubectl_reads_the_demo_fixtures_as_on_a_real_cluster() {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let kc = sb.kubeconfig_path();
    let out = ok(kc, &["get", "sqlmi,mssqlservers,postgreses", "-n", "demo"]);
    for name in ["sqlmi-demo", "mssql-demo", "pg-demo"] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(
        out.contains("Ready"),
        "phases shown through the CRD printer columns:\n{out}"
    );
    let yaml = ok(kc, &["get", "ms", "mssql-demo", "-n", "demo", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: MSSQLServer") && yaml.contains("apiVersion: kubedb.com/v1alpha2"),
        "{yaml}"
    );
    assert!(
        yaml.contains("tls:"),
        "an MSSQLServer a real server accepts has spec.tls:\n{yaml}"
    );
    let res = ok(kc, &["api-resources"]);
    for line in [
        "sqlmanagedinstances",
        "sqlmi",
        "postgresopsrequests",
        "pgops",
        "mssqlservers",
    ] {
        assert!(res.contains(line), "api-resources lacks {line}:\n{res}");
    }
    let names = ok(
        kc,
        &["api-resources", "--api-group=kubedb.com", "-o", "name"],
    );
    assert_eq!(names.lines().count(), 32, "{names}");
}

#[test]
fn kubectl_creates_applies_patches_watches_and_deletes() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let kc = sb.kubeconfig_path();
    ok(kc, &["create", "namespace", "kt"]);
    ok(
        kc,
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "-n",
            "kt",
            "--type=kubernetes.io/basic-auth",
            "--from-literal=username=sa",
            "--from-literal=password=Xx1xxxxxx",
        ],
    );
    assert_eq!(
        jsonpath(kc, &["get", "secret", "s1", "-n", "kt"], "{.data.password}"),
        "WHgxeHh4eHh4"
    );
    assert_eq!(
        jsonpath(kc, &["get", "secret", "s1", "-n", "kt"], "{.type}"),
        "kubernetes.io/basic-auth"
    );

    // Every minimal object a real server accepted is accepted here.
    let yaml = include_str!("../data/kubedb-minimal-objects.yaml")
        .replace("namespace: NS", "namespace: kt");
    let dir = std::env::temp_dir().join(format!("sandbox-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("objects.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let out = ok(kc, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(
        out.lines().filter(|l| l.ends_with(" created")).count(),
        30,
        "{out}"
    );
    let again = ok(kc, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(
        again.lines().filter(|l| l.ends_with(" unchanged")).count(),
        30,
        "{again}"
    );

    // An MSSQLServer without spec.tls is refused, as KubeDB's schema requires it.
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: kubedb.com/v1alpha2\nkind: MSSQLServer\nmetadata: {name: ms-1, namespace: kt}\nspec: {version: \"1\"}\n",
    )
    .unwrap();
    let out = kubectl(kc, &["apply", "-f", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.tls"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    ok(
        kc,
        &[
            "patch",
            "pg",
            "postgres-1",
            "-n",
            "kt",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"team":"a"}}}"#,
        ],
    );
    assert!(
        ok(kc, &["get", "pg", "-n", "kt", "-l", "team=a", "-o", "name"]).contains("postgres-1")
    );
    assert!(
        ok(kc, &["get", "pg", "-n", "kt", "-l", "team=b", "-o", "name"])
            .trim()
            .is_empty()
    );
    ok(
        kc,
        &[
            "patch",
            "pg",
            "postgres-1",
            "-n",
            "kt",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"Ready"}}"#,
        ],
    );
    assert_eq!(
        jsonpath(
            kc,
            &["get", "pg", "postgres-1", "-n", "kt"],
            "{.status.phase}"
        ),
        "Ready"
    );
    // Status written through the main resource is ignored, as with a status subresource.
    ok(
        kc,
        &[
            "patch",
            "pg",
            "postgres-1",
            "-n",
            "kt",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"Halted"}}"#,
        ],
    );
    assert_eq!(
        jsonpath(
            kc,
            &["get", "pg", "postgres-1", "-n", "kt"],
            "{.status.phase}"
        ),
        "Ready"
    );

    // A watch sees a change made meanwhile.
    let mut watch = Command::new(kubectl_bin())
        .args([
            "get",
            "pg",
            "postgres-1",
            "-n",
            "kt",
            "--watch",
            "-o",
            "jsonpath={.status.phase}{\"\\n\"}",
        ])
        .env("KUBECONFIG", kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    ok(
        kc,
        &[
            "patch",
            "pg",
            "postgres-1",
            "-n",
            "kt",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"NotReady"}}"#,
        ],
    );
    std::thread::sleep(Duration::from_millis(1000));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.lines().any(|l| l == "NotReady"),
        "the watch did not see the change: {seen:?}"
    );

    ok(kc, &["delete", "pg", "postgres-1", "-n", "kt"]);
    let gone = kubectl(kc, &["get", "pg", "postgres-1", "-n", "kt"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
    ok(kc, &["delete", "secret", "s1", "-n", "kt"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_rotate_auth_ops_request_made_with_kubectl_reaches_successful_and_rotates_the_secret() {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let kc = sb.kubeconfig_path();
    let before = jsonpath(
        kc,
        &["get", "secret", "pg-demo-auth", "-n", "demo"],
        "{.data.password}",
    );
    let dir = std::env::temp_dir().join(format!("sandbox-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ops.yaml");
    std::fs::write(
        &file,
        "apiVersion: ops.kubedb.com/v1alpha1\nkind: PostgresOpsRequest\nmetadata: {name: pg-rotate, namespace: demo}\nspec: {type: RotateAuth, databaseRef: {name: pg-demo}}\n",
    )
    .unwrap();
    ok(kc, &["create", "-f", file.to_str().unwrap()]);
    wait_for(
        "the ops request to succeed",
        Duration::from_secs(30),
        || {
            jsonpath(
                kc,
                &["get", "pgops", "pg-rotate", "-n", "demo"],
                "{.status.phase}",
            ) == "Successful"
        },
    );
    let types = jsonpath(
        kc,
        &["get", "pgops", "pg-rotate", "-n", "demo"],
        "{.status.conditions[*].type}",
    );
    let types: Vec<&str> = types.split_whitespace().collect();
    assert_eq!(
        &types[..5],
        &[
            "RotateAuth",
            "DatabasePauseSucceeded",
            "UpdateCredential",
            "UpdatePetSets",
            "RestartNodes"
        ],
        "conditions in documented order: {types:?}"
    );
    assert!(types.contains(&"CheckPodRunning--pg-demo-0"), "{types:?}");
    let prev = jsonpath(
        kc,
        &["get", "secret", "pg-demo-auth", "-n", "demo"],
        "{.data.password\\.prev}",
    );
    let now = jsonpath(
        kc,
        &["get", "secret", "pg-demo-auth", "-n", "demo"],
        "{.data.password}",
    );
    assert_eq!(prev, before, "the old password is kept as password.prev");
    assert_ne!(now, before, "a new password was generated");
    assert!(!jsonpath(
        kc,
        &["get", "pg", "pg-demo", "-n", "demo"],
        "{.status.authSecret.lastUpdateTimestamp}"
    )
    .is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bumping_the_arc_generation_with_kubectl_patch_goes_updating_then_ready() {
    let sb = SandboxHandle::start(Options {
        operator_delay: Duration::from_millis(800),
        ..Options::demo()
    })
    .unwrap();
    let kc = sb.kubeconfig_path();
    let gen0: i64 = jsonpath(
        kc,
        &["get", "sqlmi", "sqlmi-demo", "-n", "demo"],
        "{.metadata.generation}",
    )
    .parse()
    .unwrap();
    ok(
        kc,
        &[
            "patch",
            "sqlmi",
            "sqlmi-demo",
            "-n",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"update":{"managedCredentialsGeneration":1}}}"#,
        ],
    );
    let mut saw_updating = false;
    wait_for(
        "Ready with observedGeneration caught up",
        Duration::from_secs(30),
        || {
            // NB: one kubectl call for both fields, so a loaded machine still polls often
            // enough to see the one operator_delay the instance spends Updating.
            let got = jsonpath(
                kc,
                &["get", "sqlmi", "sqlmi-demo", "-n", "demo"],
                "{.status.state} {.status.observedGeneration}",
            );
            let (state, observed) = got.split_once(' ').unwrap_or((got.as_str(), ""));
            saw_updating |= state == "Updating";
            let observed: i64 = observed.parse().unwrap_or(0);
            state == "Ready" && observed == gen0 + 1
        },
    );
    assert!(saw_updating, "the instance went through Updating");
}
