//! `kubectl rotate verify`, `auth --wait --verify` and `rollback --wait --verify` against
//! real PostgreSQL, MariaDB and Redis servers (throwaway instances on loopback, from
//! `rotate_sandbox::realdb`) bound to the sandbox's demo databases: the simulated operator
//! really changes the password on the server, so "new accepted, old rejected" is genuine.
//! Each flow runs through a port-forward to the primary pod and through `--address`.

mod cli_support;

use base64::Engine as _;
use cli_support::{Env, Out};
use rotate_sandbox::realdb::{self, Server};
use rotate_sandbox::tls::{Issued, TestCa, Validity};

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

/// Runs the plugin, which must exit 0 with current accepted and previous rejected.
#[track_caller]
fn healthy(env: &Env, args: &[&str]) -> Out {
    let o = run(env, args, 0);
    assert_eq!(
        results(&o.stdout),
        pairs(HEALTHY),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    o
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
    let o = healthy(&env, &["auth", t, "--wait", "--verify"]);
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
    healthy(&env, &["rollback", t, "--wait", "--verify"]);
    assert_eq!(
        env.db_password(typ, name),
        original,
        "rolled back to the original"
    );

    // Through --address.
    healthy(&env, &["auth", t, "--wait", "--verify", "--address", &addr]);
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
    healthy(
        &env,
        &["rollback", t, "--wait", "--verify", "--address", &addr],
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

/// Makes `env`'s `name` a database with `spec.tls`, and gives it the `<name>-client-cert`
/// Secret KubeDB would hold (`ca.crt`, and a client certificate issued by the same CA).
fn with_tls(env: &Env, typ: &str, name: &str, ca: &TestCa) {
    env.kubectl(&[
        "patch",
        typ_resource(typ),
        name,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"tls":{"issuerRef":{"apiGroup":"cert-manager.io","kind":"Issuer","name":"ca-issuer"}}}}"#,
    ])
    .expect(0);
    put_client_cert(env, name, ca);
}

/// Writes `<name>-client-cert` (type kubernetes.io/tls) with `ca`'s certificate as
/// `ca.crt`, replacing any there is.
fn put_client_cert(env: &Env, name: &str, ca: &TestCa) {
    let client = ca
        .issue(&["postgres"], Validity::Current)
        .expect("a client certificate");
    let dir = tempfile::tempdir().unwrap();
    let file = |f: &str, pem: &str| {
        let p = dir.path().join(f);
        std::fs::write(&p, pem).unwrap();
        format!("--from-file={f}={}", p.display())
    };
    let secret = format!("{name}-client-cert");
    env.kubectl(&["delete", "secret", &secret, "--ignore-not-found"])
        .expect(0);
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        &secret,
        "--type",
        "kubernetes.io/tls",
        &file("ca.crt", &ca.pem),
        &file("tls.crt", &client.cert_pem),
        &file("tls.key", &client.key_pem),
    ])
    .expect(0);
}

/// The resource kubectl patches for a plugin TYPE.
fn typ_resource(typ: &str) -> &'static str {
    match typ {
        "pg" => "postgreses.kubedb.com",
        "md" => "mariadbs.kubedb.com",
        "rd" => "redises.kubedb.com",
        other => panic!("no TLS server for {other}"),
    }
}

/// Both logins of `verify` failed on the server's certificate: `error` rows whose detail
/// says `why`, exit 1, and the error names the CA Secret and what to do.
#[track_caller]
fn refused_certificate(env: &Env, name: &str, args: &[&str], why: &str) {
    let o = run(env, args, 1);
    assert_eq!(
        results(&o.stdout),
        pairs(&[("current", "error"), ("previous", "error")]),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    assert!(
        o.stdout
            .contains("TLS handshake failed: the server's certificate")
            && o.stdout.contains(why),
        "{why}: {}",
        o.stdout
    );
    assert!(
        o.stderr.contains(&format!(
            "(checked against ca.crt of secret {name}-client-cert: renew"
        )),
        "{}",
        o.stderr
    );
}

/// TLS end to end: a real server started with a certificate from the test's own CA, for
/// the names the plugin reaches it by (`<db>.demo.svc` through the port-forward,
/// 127.0.0.1 through --address), and the CA in `<db>-client-cert`. verify and
/// auth --wait --verify succeed both ways; a wrong CA, a name the certificate lacks and an
/// expired certificate each fail with exit 1.
fn tls_cycle(
    typ: &str,
    name: &str,
    password: &str,
    start: fn(&str, &Issued) -> std::io::Result<Server>,
) {
    let ca = TestCa::new("test-db-ca").unwrap();
    let service = format!("{name}.demo.svc");
    let good = ca
        .issue(&[&service, "127.0.0.1"], Validity::Current)
        .unwrap();
    let server = start(password, &good).expect("the TLS server starts");
    let env = bound(name, &server);
    with_tls(&env, typ, name, &ca);
    let target = format!("{typ}/{name}");
    let t = target.as_str();
    let addr = format!("127.0.0.1:{}", server.url.port);

    // Through the port-forward, then --address: the rotation itself (the operator's
    // ALTER over TLS) and both logins.
    let o = run(&env, &["verify", t, "-o", "wide", "-v=2"], 0);
    assert_eq!(results(&o.stdout), pairs(&[("current", "accepted")]));
    assert!(
        o.stderr
            .contains(&format!("trusting ca.crt of secret {name}-client-cert")),
        "{}",
        o.stderr
    );
    assert!(
        o.stdout.lines().nth(1).unwrap().ends_with("   require"),
        "TLS shown: {}",
        o.stdout
    );
    healthy(&env, &["auth", t, "--wait", "--verify"]);
    let o = healthy(&env, &["auth", t, "--wait", "--verify", "--address", &addr]);
    assert!(!o.stderr.contains("without TLS"), "{}", o.stderr);

    // The certificate names 127.0.0.1, not localhost.
    refused_certificate(
        &env,
        name,
        &[
            "verify",
            t,
            "--address",
            &format!("localhost:{}", server.url.port),
        ],
        &format!("is not valid for \"localhost\" (it names {service}, 127.0.0.1)"),
    );
    // Another CA in ca.crt.
    put_client_cert(&env, name, &TestCa::new("another-ca").unwrap());
    let issuer = "was not issued by the trusted CA";
    refused_certificate(&env, name, &["verify", t], issuer);
    refused_certificate(&env, name, &["verify", t, "--address", &addr], issuer);
    put_client_cert(&env, name, &ca);
    run(&env, &["verify", t], 0);

    // The same names and CA, but expired.
    let stale = ca
        .issue(&[&service, "127.0.0.1"], Validity::Expired)
        .unwrap();
    let expired = start(&env.db_password(typ, name), &stale).expect("the TLS server starts");
    realdb::bind(env.sb.shared(), "demo", name, &expired.url).expect("rebind");
    env.remember_passwords();
    refused_certificate(&env, name, &["verify", t], "expired 1 day ago");
    refused_certificate(
        &env,
        name,
        &[
            "verify",
            t,
            "--address",
            &format!("127.0.0.1:{}", expired.url.port),
        ],
        "expired 1 day ago",
    );
    env.assert_no_password_printed();
}

#[test]
fn postgres_with_ssl_on_is_verified_over_tls_and_a_wrong_ca_name_or_expired_certificate_fails() {
    tls_cycle("pg", "pg-demo", "PgTls5Wq8Zr3Kd", Server::postgres_tls);
}

#[test]
fn mariadb_requiring_secure_transport_is_verified_over_tls_and_a_wrong_ca_name_or_expired_certificate_fails(
) {
    tls_cycle("md", "md-demo", "MdTls7Hx2Pv9Lc", Server::mariadb_tls);
}

#[test]
fn redis_on_its_tls_port_is_verified_over_tls_and_a_wrong_ca_name_or_expired_certificate_fails() {
    tls_cycle("rd", "rd-demo", "RdTls4Nm6Bt8Qy", Server::redis_tls);
}
