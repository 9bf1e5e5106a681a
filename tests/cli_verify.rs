//! `kubectl rotate verify`, `auth --wait --verify` and `rollback --wait --verify` against
//! real PostgreSQL, MariaDB and Redis servers (throwaway instances on loopback, from
//! `rotate_sandbox::realdb`) bound to the sandbox's demo databases: the simulated operator
//! really changes the password on the server, so "new accepted, old rejected" is genuine.
//! Each flow runs through a port-forward to the primary pod and through `--address`.

mod cli_support;

use base64::Engine as _;
use cli_support::{Env, Out};
use rotate_sandbox::realdb::{self, Server};

/// The (CREDENTIAL, RESULT) pairs of every verification table in `stdout`, in order.
fn results(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("current ") || l.starts_with("previous "))
        .map(|l| {
            let cells: Vec<&str> = l
                .split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (cells[0].to_string(), cells[2].to_string())
        })
        .collect()
}

fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const HEALTHY: &[(&str, &str)] = &[("current", "accepted"), ("previous", "rejected")];

/// Runs the plugin, checks the exit code, and remembers every password the Secrets hold
/// now (rotations replace them, so the leak check must see each one while it exists).
#[track_caller]
fn run(env: &Env, args: &[&str], code: i32) -> Out {
    let out = env.rotate(args);
    env.remember_passwords();
    out.expect(code);
    out
}

/// A demo sandbox with `name` bound to `server`.
fn bound(name: &str, server: &Server) -> Env {
    let env = Env::demo();
    realdb::bind(env.sb.shared(), "demo", name, &server.url).expect("bind the real server");
    env.remember_passwords();
    env
}

/// A port on 127.0.0.1 nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// verify, auth --wait --verify, verify, rollback --wait --verify, through port-forward,
/// then the same through --address; the server's own message shows for the refused login.
fn full_cycle(typ: &str, name: &str, server: &Server, refusal: &str) {
    let env = bound(name, server);
    let target = format!("{typ}/{name}");
    let t = target.as_str();
    let addr = format!("127.0.0.1:{}", server.url.port);
    let original = server.url.password.clone();

    // Never rotated: only the current credential is checked.
    let o = run(&env, &["verify", t], 0);
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", "accepted")]),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.starts_with("CREDENTIAL   USERNAME   RESULT"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("only the current credential was checked"),
        "{}",
        o.stderr
    );

    // Through port-forward.
    let o = run(&env, &["auth", t, "--wait", "--verify"], 0);
    assert_eq!(
        results(&o.stdout),
        pairs(HEALTHY),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    assert!(
        o.stdout.contains(refusal),
        "the server's own refusal: {}",
        o.stdout
    );
    assert!(
        o.stderr.contains("current accepted, previous rejected"),
        "{}",
        o.stderr
    );
    assert_ne!(env.db_password(typ, name), original, "rotated");
    let o = run(&env, &["verify", t, "-o", "wide"], 0);
    assert_eq!(results(&o.stdout), pairs(HEALTHY), "{}", o.stdout);
    assert!(
        !o.stderr.contains("warning"),
        "not over a port-forward: {}",
        o.stderr
    );
    assert!(
        o.stdout.contains(&format!("pod/{name}-0:")),
        "via the pod: {}",
        o.stdout
    );
    let o = run(&env, &["verify", t, "--address", &addr, "-o", "wide"], 0);
    assert_eq!(results(&o.stdout), pairs(HEALTHY), "{}", o.stdout);
    assert!(o.stdout.contains(&addr), "via the address: {}", o.stdout);
    let o = run(&env, &["rollback", t, "--wait", "--verify"], 0);
    assert_eq!(
        results(&o.stdout),
        pairs(HEALTHY),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    assert_eq!(
        env.db_password(typ, name),
        original,
        "rolled back to the original"
    );

    // Through --address.
    let o = run(
        &env,
        &["auth", t, "--wait", "--verify", "--address", &addr],
        0,
    );
    assert_eq!(
        results(&o.stdout),
        pairs(HEALTHY),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    let o = run(&env, &["verify", t, "--address", &addr], 0);
    assert_eq!(results(&o.stdout), pairs(HEALTHY), "{}", o.stdout);
    // Redis AUTH carries the password as is: over --address without TLS that is a
    // warning. SCRAM (PostgreSQL) and mysql_native_password (MariaDB) never send it.
    assert_eq!(
        o.stderr
            .contains("without TLS (Redis AUTH carries it as is)"),
        typ == "rd",
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("pass --require-tls") == (typ == "rd"));
    // Requiring TLS of a server without it: no password is sent. PostgreSQL and MariaDB
    // say in-band that they have no TLS (an error); Redis reads the ClientHello as a
    // command and stays silent (unreachable).
    let (code, result) = if typ == "rd" {
        (8, "unreachable")
    } else {
        (1, "error")
    };
    let o = run(
        &env,
        &[
            "verify",
            t,
            "--address",
            &addr,
            "--require-tls",
            "--insecure-skip-db-tls-verify",
            "--login-timeout",
            "2s",
        ],
        code,
    );
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", result), ("previous", result)]),
        "{}",
        o.stdout
    );
    assert!(!o.stderr.contains("without TLS"), "{}", o.stderr);
    let o = run(
        &env,
        &["rollback", t, "--wait", "--verify", "--address", &addr],
        0,
    );
    assert_eq!(
        results(&o.stdout),
        pairs(HEALTHY),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    assert_eq!(env.db_password(typ, name), original);

    // JSON, and the verbose levels: -v=2 says where, -v=4 shows the login requests with
    // their passwords masked, -v=8 adds every API request with its bodies (the auth
    // Secret's read and the new Secret's create included), Secret values redacted.
    let o = run(&env, &["verify", t, "-o", "json"], 0);
    let v = o.json();
    assert_eq!(v["kind"], "LoginVerification");
    assert_eq!(v["attempts"][0]["result"], "accepted");
    assert_eq!(v["attempts"][1]["result"], "rejected");
    let o = run(&env, &["verify", t, "-v=2"], 0);
    assert!(o.stderr.contains("verify: primary pod"), "{}", o.stderr);
    assert!(!o.stderr.contains("LoginRequest"), "{}", o.stderr);
    let o = run(&env, &["verify", t, "-v=4"], 0);
    assert!(o.stderr.contains("password: \"********\""), "{}", o.stderr);
    assert!(o.stderr.contains("verify: primary pod"), "{}", o.stderr);
    assert!(!o.stderr.contains("round_trippers.go"), "{}", o.stderr);
    let o = run(&env, &["verify", t, "-v=8"], 0);
    assert!(o.stderr.contains("password: \"********\""), "{}", o.stderr);
    assert!(o.stderr.contains("/portforward?"), "{}", o.stderr);
    assert!(o.stderr.contains("101 Switching Protocols"), "{}", o.stderr);
    assert!(o.stderr.contains("REDACTED"), "{}", o.stderr);
    let o = run(
        &env,
        &["auth", t, "--wait", "--verify", "--generate", "-v=8"],
        0,
    );
    assert_eq!(results(&o.stdout), pairs(HEALTHY));
    assert!(o.stderr.contains("password: \"********\""), "{}", o.stderr);
    assert!(o.stderr.contains("POST https://"), "{}", o.stderr);
    assert!(
        !o.stderr.contains(rotate_sandbox::ADMIN_TOKEN),
        "{}",
        o.stderr
    );
    env.assert_no_password_printed();
}

#[test]
fn postgres_auth_verify_and_rollback_give_new_accepted_old_rejected_both_ways() {
    let server =
        Server::postgres("PgReal5Hs8Vd2Kq").expect("PostgreSQL (apt-get install postgresql)");
    full_cycle("pg", "pg-demo", &server, "password authentication failed");
}

#[test]
fn mariadb_auth_verify_and_rollback_give_new_accepted_old_rejected_both_ways() {
    let server =
        Server::mariadb("MdReal3Tn6Wb9Lx").expect("MariaDB (apt-get install mariadb-server)");
    full_cycle("md", "md-demo", &server, "Access denied");
}

#[test]
fn redis_auth_verify_and_rollback_give_new_accepted_old_rejected_both_ways() {
    let server = Server::redis("RdReal8Jc4Mz7Pf").expect("Redis (apt-get install redis-server)");
    full_cycle("rd", "rd-demo", &server, "WRONGPASS");
}

#[test]
fn a_wrong_password_a_closed_port_a_tls_failure_and_a_stopped_server_each_say_so() {
    let mut server = Server::postgres("PgFail2Rw7Nc5Hy").expect("PostgreSQL");
    let env = bound("pg-demo", &server);

    // A closed port: unreachable, exit 8.
    let closed = format!("127.0.0.1:{}", closed_port());
    let o = run(&env, &["verify", "pg/pg-demo", "--address", &closed], 8);
    assert_eq!(results(&o.stdout), pairs(&[("current", "unreachable")]));
    assert!(o.stdout.contains("Connection refused"), "{}", o.stdout);
    assert!(
        o.stderr.contains("cannot reach the database"),
        "{}",
        o.stderr
    );

    // TLS demanded of a server without it: error, exit 1.
    let o = run(
        &env,
        &["verify", "pg/pg-demo", "--insecure-skip-db-tls-verify"],
        1,
    );
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", "error")]),
        "{}",
        o.stdout
    );

    // A wrong password in the Secret: rejected, exit 7, the server's SQLSTATE in -o wide.
    let wrong = base64::engine::general_purpose::STANDARD.encode("NotThePassw0rd");
    env.kubectl(&[
        "patch",
        "secret",
        "pg-demo-auth",
        "--type",
        "merge",
        "-p",
        &format!("{{\"data\":{{\"password\":\"{wrong}\"}}}}"),
    ])
    .expect(0);
    let o = run(&env, &["verify", "pg/pg-demo", "-o", "wide"], 7);
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", "rejected")]),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("28P01"), "{}", o.stdout);
    assert!(
        o.stderr
            .contains("does not accept the password its auth Secret holds"),
        "{}",
        o.stderr
    );

    // A stopped server: unreachable through the port-forward and directly, exit 8.
    let addr = format!("127.0.0.1:{}", server.url.port);
    server.stop();
    let o = run(&env, &["verify", "pg/pg-demo"], 8);
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", "unreachable")]),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.to_lowercase().contains("connection refused"),
        "the kubelet's reason: {}",
        o.stdout
    );
    let o = run(&env, &["verify", "pg/pg-demo", "--address", &addr], 8);
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", "unreachable")]),
        "{}",
        o.stdout
    );
    env.assert_no_password_printed();
}

#[test]
fn rollback_on_failure_rolls_back_when_the_new_password_does_not_take_effect() {
    let server = Server::postgres("PgRof4Gk9Tm2Wd").expect("PostgreSQL");
    let original = server.url.password.clone();
    let env = bound("pg-demo", &server);
    env.sb.faults().skip_real_db_change("demo", "pg-demo");

    // Without --rollback-on-failure: the wrong results, exit 7, nothing undone.
    let o = run(&env, &["auth", "pg/pg-demo", "--wait", "--verify"], 7);
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", "rejected"), ("previous", "accepted")]),
        "{}",
        o.stdout
    );
    assert_ne!(env.db_password("pg", "pg-demo"), original, "left as it is");
    run(&env, &["rollback", "pg/pg-demo", "--wait", "--verify"], 0);
    assert_eq!(env.db_password("pg", "pg-demo"), original);

    // With it: rolled back by itself, verified again, and the state said plainly.
    let o = run(
        &env,
        &[
            "auth",
            "pg/pg-demo",
            "--wait",
            "--verify",
            "--rollback-on-failure",
        ],
        7,
    );
    assert_eq!(
        results(&o.stdout),
        pairs(&[
            ("current", "rejected"),
            ("previous", "accepted"),
            ("current", "accepted"),
            ("previous", "rejected"),
        ]),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    assert!(
        o.stderr.contains("rolling back (--rollback-on-failure)"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("Rolled back automatically"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("the database is back on the previous credential, which it accepts"),
        "{}",
        o.stderr
    );
    assert!(
        o.stdout.contains("rollback") || o.stdout.contains("Successful"),
        "{}",
        o.stdout
    );
    assert_eq!(
        env.db_password("pg", "pg-demo"),
        original,
        "the old password is current again"
    );
    let o = run(&env, &["verify", "pg/pg-demo"], 0);
    assert_eq!(
        results(&o.stdout),
        pairs(HEALTHY),
        "the old password works: {}",
        o.stdout
    );
    env.assert_no_password_printed();
}

#[test]
fn a_failed_verification_restarts_nothing_even_after_it_rolled_back() {
    let server = Server::postgres("PgRcf7Hn3Qx8Lp").expect("PostgreSQL");
    let env = bound("pg-demo", &server);
    env.sb.faults().skip_real_db_change("demo", "pg-demo");
    env.sb
        .apply_yaml(&cli_support::deployment_reading(
            "api",
            &[("PGPASSWORD", "pg-demo-auth")],
        ))
        .expect("the Deployment is accepted");
    let generation = || env.get("deployment", "api")["metadata"]["generation"].as_i64();
    let before = generation();
    let o = run(
        &env,
        &[
            "auth",
            "pg/pg-demo",
            "--wait",
            "--verify",
            "--rollback-on-failure",
            "--restart-consumers",
        ],
        7,
    );
    assert!(
        o.stderr.contains("Rolled back automatically"),
        "{}",
        o.stderr
    );
    assert_eq!(
        generation(),
        before,
        "the consumers never saw a new password: nothing to restart"
    );
    assert!(
        !o.stdout.contains("RESTART"),
        "no restart table: {}",
        o.stdout
    );
}

#[test]
fn an_engine_without_a_login_client_is_not_supported_with_exit_9_and_nothing_is_written() {
    let env = Env::demo();
    let o = run(&env, &["verify", "cassandra/c-demo"], 9);
    assert!(
        o.stderr
            .contains("verification not supported for Cassandra"),
        "{}",
        o.stderr
    );
    let before = env.sb.faults().total_requests();
    let o = env.rotate(&["auth", "cas/c-demo", "--wait", "--verify"]);
    o.expect(9);
    assert!(o
        .stderr
        .contains("verification not supported for Cassandra"));
    assert_eq!(
        env.sb.faults().total_requests(),
        before,
        "no API request at all"
    );
}

#[test]
fn verify_flags_are_checked_before_anything_is_written() {
    let env = Env::demo();
    let o = run(&env, &["auth", "pg/pg-demo", "--verify"], 2);
    assert!(o.stderr.contains("--wait"), "{}", o.stderr);
    let o = run(
        &env,
        &["auth", "pg/pg-demo", "--wait", "--address", "127.0.0.1:1"],
        2,
    );
    assert!(o.stderr.contains("go with --verify"), "{}", o.stderr);
    let o = run(
        &env,
        &["auth", "pg/pg-demo", "ms/mssql-demo", "--wait", "--verify"],
        2,
    );
    assert!(o.stderr.contains("one database"), "{}", o.stderr);
    let o = run(
        &env,
        &[
            "rollback",
            "pg/pg-demo",
            "--wait",
            "--verify",
            "--rollback-on-failure",
        ],
        2,
    );
    assert!(o.stderr.contains("--rollback-on-failure"), "{}", o.stderr);
    assert!(env.ops_requests("pgops").is_empty(), "nothing was created");
}

#[test]
fn a_scheduled_rotation_with_verify_logs_in_with_only_its_roles_permissions() {
    let server = Server::postgres("PgSch3Rv9Qk2Wm").expect("PostgreSQL");
    let env = bound("pg-demo", &server);
    env.rotate(&["schedule", "pg/pg-demo", "--every", "1d", "--verify"])
        .expect(0);
    let args = env.cron_job_args("rotate-pg-pg-demo");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.in_cluster("demo", "rotate-pg-pg-demo", cli_support::BIN, &args);
    env.remember_passwords();
    out.expect(0);
    assert_eq!(
        results(&out.stdout),
        pairs(HEALTHY),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    env.assert_no_password_printed();
}
