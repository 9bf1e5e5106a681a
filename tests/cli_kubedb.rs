//! `kubectl rotate auth|rollback` for KubeDB (MSSQLServer, Postgres) against the sandbox's
//! simulated ops-manager.

mod cli_support;

use std::time::Duration;

use cli_support::{name_of, Env};

/// Rotates `typ/db`, checks the ops request and the `.prev` keys, rolls back, checks the
/// old password is back. The whole issue-3 story for one engine.
fn rotate_then_roll_back(typ: &str, db: &str, ops_plural: &str, ops_kind: &str) {
    let env = Env::demo();
    let old = env.db_password(typ, db);
    let out = env.rotate(&["auth", &format!("{typ}/{db}"), "-n", "demo", "--wait"]);
    out.expect(0);
    assert!(out.stdout.contains("Successful"), "{}", out.stdout);
    assert!(
        out.stderr.contains("UpdateCredential  True"),
        "each step on stderr:\n{}",
        out.stderr
    );

    let ops = env.ops_requests(ops_plural);
    assert_eq!(ops.len(), 1, "{ops:#?}");
    assert_eq!(ops[0]["kind"], ops_kind);
    assert_eq!(ops[0]["spec"]["type"], "RotateAuth");
    assert_eq!(ops[0]["spec"]["databaseRef"]["name"], db);
    assert_eq!(ops[0]["status"]["phase"], "Successful");
    assert!(ops[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{db}-rotate-auth-")));

    let new = env.db_password(typ, db);
    assert_ne!(new, old, "the password changed");
    assert_eq!(
        env.secret_value(&format!("{db}-auth"), "password.prev")
            .as_deref(),
        Some(old.as_str())
    );

    let out = env.rotate(&[
        "rollback",
        &format!("{typ}/{db}"),
        "-n",
        "demo",
        "--wait",
        "-o",
        "wide",
    ]);
    out.expect(0);
    assert!(
        out.stdout.contains(&format!("{db}-rollback-auth-")),
        "{}",
        out.stdout
    );
    assert_eq!(
        env.db_password(typ, db),
        old,
        "rollback restores the old password"
    );
    let secret = env.get(typ, db)["spec"]["authSecret"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let s = env.get("secret", &secret);
    assert_eq!(s["type"], "kubernetes.io/basic-auth");
    assert_eq!(
        s["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-rotate"
    );
    assert_eq!(s["metadata"]["ownerReferences"][0]["name"], db);
    env.assert_no_password_printed();
}

#[test]
fn mssql_rotation_succeeds_keeps_the_old_password_as_prev_and_rollback_restores_it() {
    rotate_then_roll_back("ms", "mssql-demo", "msops", "MSSQLServerOpsRequest");
}

#[test]
fn postgres_rotation_succeeds_keeps_the_old_password_as_prev_and_rollback_restores_it() {
    rotate_then_roll_back("pg", "pg-demo", "pgops", "PostgresOpsRequest");
}

#[test]
fn rollback_without_a_previous_credential_is_refused_and_creates_nothing() {
    let env = Env::demo();
    let out = env.rotate(&["rollback", "pg/pg-demo"]);
    out.expect(6);
    assert!(
        out.stderr.contains("no previous credential"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("username.prev"), "{}", out.stderr);
    assert!(env.ops_requests("pgops").is_empty());
}

#[test]
fn json_output_of_a_rotation_parses_and_names_the_request() {
    let env = Env::demo();
    let v = env
        .rotate(&["auth", "pg/pg-demo", "--wait", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(v["kind"], "Rotation");
    assert_eq!(v["request"]["kind"], "PostgresOpsRequest");
    assert_eq!(v["phase"], "Successful");
    assert!(v["durationSeconds"].as_f64().unwrap() > 0.0);
    env.assert_no_password_printed();
}

#[test]
fn without_wait_the_request_is_printed_with_a_hint_to_follow_it() {
    let env = Env::slow(Duration::from_millis(500));
    let out = env.rotate(&["auth", "pg/pg-demo", "-o", "name"]);
    out.expect(0);
    assert!(
        out.stdout
            .starts_with("postgresopsrequest.ops.kubedb.com/pg-demo-rotate-auth-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!(
            "kubectl get pgops {} -n demo -w",
            name_of(&out.stdout)
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_pending_rotation_blocks_a_second_one_and_says_how_to_follow_it() {
    let env = Env::slow(Duration::from_secs(2));
    let first = env.rotate(&["auth", "pg/pg-demo", "-o", "name"]);
    first.expect(0);
    let second = env.rotate(&["auth", "pg/pg-demo"]);
    second.expect(3);
    let name = name_of(&first.stdout);
    assert!(
        second.stderr.contains(&name),
        "names the request: {}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains(&format!("kubectl get pgops {name} -n demo -w")),
        "{}",
        second.stderr
    );
    assert_eq!(
        env.ops_requests("pgops").len(),
        1,
        "nothing more was created"
    );
}

#[test]
fn the_client_dry_run_name_is_the_name_the_real_run_uses() {
    let env = Env::demo();
    let dry = env.rotate(&["auth", "ms/mssql-demo", "--dry-run=client", "-o", "name"]);
    dry.expect(0);
    assert!(
        env.ops_requests("msops").is_empty(),
        "a client dry run sends nothing"
    );
    let real = env.rotate(&["auth", "ms/mssql-demo", "-o", "name"]);
    assert_eq!(real.expect(0).stdout, dry.stdout);
}

#[test]
fn a_client_dry_run_prints_the_ops_request() {
    let env = Env::demo();
    let out = env.rotate(&[
        "auth",
        "pg/pg-demo",
        "--dry-run=client",
        "--timeout",
        "5m",
        "--apply",
        "Always",
        "-o",
        "json",
    ]);
    let v = out.expect(0).json();
    assert_eq!(v["apiVersion"], "ops.kubedb.com/v1alpha1");
    assert_eq!(v["kind"], "PostgresOpsRequest");
    assert_eq!(v["spec"]["type"], "RotateAuth");
    assert_eq!(v["spec"]["timeout"], "5m");
    assert_eq!(v["spec"]["apply"], "Always");
}

#[test]
fn a_server_dry_run_is_checked_by_the_server_and_creates_nothing() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "pg/pg-demo", "--dry-run=server"]);
    out.expect(0);
    assert!(out.stdout.contains("server dry run"), "{}", out.stdout);
    assert!(env.ops_requests("pgops").is_empty());
}

#[test]
fn a_server_dry_run_of_a_rollback_creates_neither_secret_nor_request() {
    let env = Env::demo();
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(0);
    let out = env.rotate(&["rollback", "pg/pg-demo", "--dry-run=server"]);
    out.expect(0);
    assert_eq!(env.ops_requests("pgops").len(), 1);
    let managed = env.kubectl(&[
        "get",
        "secrets",
        "-l",
        "app.kubernetes.io/managed-by=kubectl-rotate",
        "-o",
        "name",
    ]);
    assert_eq!(managed.expect(0).stdout, "");
    env.assert_no_password_printed();
}

#[test]
fn a_client_dry_run_of_a_rollback_shows_the_secret_redacted() {
    let env = Env::demo();
    env.rotate(&["auth", "ms/mssql-demo", "--wait"]).expect(0);
    let out = env.rotate(&[
        "rollback",
        "ms/mssql-demo",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    out.expect(0);
    assert!(
        out.stdout.contains("kind: Secret") && out.stdout.contains("kind: MSSQLServerOpsRequest"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("'********'"), "{}", out.stdout);
    env.assert_no_password_printed();
}

fn create_basic_auth(env: &Env, name: &str, username: &str, password: &str) {
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        name,
        "--type=kubernetes.io/basic-auth",
        &format!("--from-literal=username={username}"),
        &format!("--from-literal=password={password}"),
    ])
    .expect(0);
}

#[test]
fn a_user_secret_with_a_weak_mssql_password_is_refused_before_anything_is_written() {
    let env = Env::demo();
    create_basic_auth(&env, "ms-weak", "sa", "alllowercase");
    let out = env.rotate(&["auth", "ms/mssql-demo", "--secret", "ms-weak", "--wait"]);
    out.expect(2);
    assert!(
        out.stderr
            .contains("upper-case letters, lower-case letters and digits"),
        "{}",
        out.stderr
    );
    assert!(env.ops_requests("msops").is_empty());
    env.assert_no_password_printed();
}

#[test]
fn a_user_secret_that_changes_the_postgres_username_is_refused() {
    let env = Env::demo();
    create_basic_auth(&env, "pg-other", "admin", "Whatever123");
    let out = env.rotate(&["auth", "pg/pg-demo", "--secret", "pg-other"]);
    out.expect(2);
    assert!(out.stderr.contains("\"postgres\""), "{}", out.stderr);
    assert!(env.ops_requests("pgops").is_empty());
}

#[test]
fn a_missing_user_secret_is_not_found() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "ms/mssql-demo", "--secret", "nope"]);
    out.expect(4);
    assert!(out.stderr.contains("secret \"nope\""), "{}", out.stderr);
}

#[test]
fn a_valid_user_secret_becomes_the_new_password() {
    let env = Env::demo();
    create_basic_auth(&env, "ms-new", "sa", "NewPassw0rd42");
    let out = env.rotate(&[
        "auth",
        "ms/mssql-demo",
        "--secret",
        "ms-new",
        "--wait",
        "-o",
        "wide",
    ]);
    out.expect(0);
    assert!(
        out.stdout.contains("ms-new"),
        "the SECRET column names it: {}",
        out.stdout
    );
    assert_eq!(env.db_password("ms", "mssql-demo"), "NewPassw0rd42");
    let ops = env.ops_requests("msops");
    assert_eq!(
        ops[0]["spec"]["authentication"]["secretRef"]["name"],
        "ms-new"
    );
    env.assert_no_password_printed();
}

#[test]
fn a_failed_rotation_exits_five_with_the_failing_condition_and_a_retry_makes_a_new_request() {
    let env = Env::demo();
    let name = env.fail_next_rotation("pg/pg-demo", "the database refused the new password");
    let out = env.rotate(&["auth", "pg/pg-demo", "--wait"]);
    out.expect(5);
    assert!(out.stderr.contains("Failed"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the database refused the new password"),
        "{}",
        out.stderr
    );

    let retry = env.rotate(&["auth", "pg/pg-demo", "--wait", "-o", "name"]);
    retry.expect(0);
    assert_ne!(
        name_of(&retry.stdout),
        name,
        "a finished request is not adopted"
    );
    assert_eq!(env.ops_requests("pgops").len(), 2);
}

#[test]
fn a_wait_that_times_out_exits_124_and_leaves_the_rotation_running() {
    let env = Env::slow(Duration::from_secs(2));
    let out = env.rotate(&["auth", "pg/pg-demo", "--wait", "--timeout", "1s"]);
    out.expect(124);
    assert!(out.stderr.contains("timed out after 1s"), "{}", out.stderr);
    assert!(
        out.stderr.contains("continues on the server") && out.stderr.contains("kubectl get pgops"),
        "{}",
        out.stderr
    );
    let ops = env.ops_requests("pgops");
    assert_eq!(ops.len(), 1);
    assert_eq!(
        ops[0]["spec"]["timeout"], "1s",
        "--timeout is the per-step timeout too"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_exits_130_and_says_how_to_follow_the_rotation() {
    use std::io::BufRead;

    let env = Env::slow(Duration::from_secs(2));
    let mut child = env.spawn(&["auth", "pg/pg-demo", "--wait"]);
    // Read stderr on a thread; the first progress line means the plugin is waiting.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a progress line");
    assert!(first.contains("pg-demo-rotate-auth-"), "{first}");
    let status = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the plugin did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = child.wait().expect("wait").code();
    let stderr = reader.join().unwrap();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("kubectl get pgops"),
        "{stderr}"
    );
    let ops = env.ops_requests("pgops");
    assert_ne!(
        ops[0]["status"]["phase"], "Failed",
        "the rotation was left running"
    );
}

#[test]
fn a_database_that_is_not_ready_is_refused_unless_apply_always() {
    let env = Env::demo();
    env.kubectl(&[
        "patch",
        "pg",
        "pg-demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"NotReady"}}"#,
    ])
    .expect(0);
    let out = env.rotate(&["auth", "pg/pg-demo"]);
    out.expect(6);
    assert!(
        out.stderr.contains("is not Ready (phase NotReady)")
            && out.stderr.contains("--apply Always"),
        "{}",
        out.stderr
    );
    assert!(env.ops_requests("pgops").is_empty());
    let out = env.rotate(&[
        "auth",
        "pg/pg-demo",
        "--apply",
        "Always",
        "--dry-run=client",
        "-o",
        "json",
    ]);
    assert_eq!(out.expect(0).json()["spec"]["apply"], "Always");
}

#[test]
fn transient_server_errors_on_reads_are_retried() {
    let env = Env::demo();
    env.sb.faults().fail_next(
        Some("GET"),
        "/apis/kubedb.com/v1/namespaces/demo/postgreses/pg-demo",
        2,
        503,
    );
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(0);
}

#[test]
fn a_missing_database_exits_four_and_says_how_to_list_them() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "pg/nope"]);
    out.expect(4);
    assert!(
        out.stderr
            .contains("postgres \"nope\" in namespace \"demo\" not found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("kubectl get pg -n demo"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_user_without_rights_is_told_to_ask_for_rbac_access() {
    let env = Env::demo();
    let kc = std::fs::read_to_string(env.kubeconfig()).unwrap();
    assert!(kc.contains(rotate_sandbox::ADMIN_TOKEN));
    let dir = tempfile::tempdir().unwrap();
    let bob = dir.path().join("bob");
    std::fs::write(
        &bob,
        kc.replace(rotate_sandbox::ADMIN_TOKEN, rotate_sandbox::FORBIDDEN_TOKEN),
    )
    .unwrap();
    let o = std::process::Command::new(cli_support::BIN)
        .args(["auth", "pg/pg-demo", "--kubeconfig"])
        .arg(&bob)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("forbidden") && stderr.contains("RBAC"),
        "{stderr}"
    );

    let stranger = dir.path().join("stranger");
    std::fs::write(
        &stranger,
        kc.replace(rotate_sandbox::ADMIN_TOKEN, "not-a-token"),
    )
    .unwrap();
    let o = std::process::Command::new(cli_support::BIN)
        .args(["auth", "pg/pg-demo", "--kubeconfig"])
        .arg(&stranger)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("log in again"), "{stderr}");
}
