//! The real-database harness: throwaway PostgreSQL, MariaDB and Redis servers on loopback,
//! and the password change the simulated operator makes on them (checked with each
//! server's own client: the new password logs in, the old one is refused).

use std::io::Write;
use std::process::{Command, Stdio};

use rotate_sandbox::realdb::{change_password, Engine, Server};

/// Log in with the server's own client; true when the login is accepted.
fn logs_in(s: &Server, user: &str, password: &str) -> bool {
    let port = s.url.port.to_string();
    let (mut cmd, input) = match s.url.engine {
        Engine::Postgres => {
            let mut c = Command::new("psql");
            c.args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                user,
                "-d",
                "postgres",
                "-c",
                "select 1",
            ])
            .env("PGPASSWORD", password);
            (c, "")
        }
        Engine::Mysql => {
            let mut c = Command::new("mariadb");
            c.args([
                "--protocol=TCP",
                "-h",
                "127.0.0.1",
                "-P",
                &port,
                "-u",
                user,
                "-e",
                "select 1",
            ])
            .env("MYSQL_PWD", password);
            (c, "")
        }
        Engine::Redis => {
            let mut c = Command::new("redis-cli");
            c.args(["-h", "127.0.0.1", "-p", &port, "--no-auth-warning"])
                .env("REDISCLI_AUTH", password);
            (c, "PING\n")
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    out.status.success()
        && !stdout.contains("NOAUTH")
        && !stdout.contains("WRONGPASS")
        && !stdout.contains("ERR")
}

fn rotate_and_check(s: Server, user: &str) {
    let old = s.url.password.clone();
    assert!(logs_in(&s, user, &old), "the initial password logs in");
    assert!(
        !logs_in(&s, user, "not-the-password"),
        "a wrong password is refused"
    );
    change_password(&s.url, user, &old, "N3w-pass_word").unwrap();
    assert!(
        logs_in(&s, user, "N3w-pass_word"),
        "the new password logs in"
    );
    assert!(!logs_in(&s, user, &old), "the old password is refused");
    let err = change_password(&s.url, user, &old, "x").unwrap_err();
    assert!(!err.contains(&old), "no password in the error: {err}");
}

#[test]
fn a_postgres_password_change_takes_effect_on_the_real_server() {
    rotate_and_check(
        Server::postgres("Old-pg-Pass1").expect("PostgreSQL (apt-get install postgresql)"),
        "postgres",
    );
}

#[test]
fn a_mariadb_password_change_takes_effect_on_the_real_server() {
    rotate_and_check(
        Server::mariadb("Old-md-Pass1").expect("MariaDB (apt-get install mariadb-server)"),
        "root",
    );
}

#[test]
fn a_redis_password_change_takes_effect_on_the_real_server() {
    rotate_and_check(
        Server::redis("Old-rd-Pass1").expect("Redis (apt-get install redis-server)"),
        "default",
    );
}

/// Poll until `f` holds (or panic after 30 s).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(30) {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn rotate_bound_postgres(skip_real_change: bool) -> (Server, String, String) {
    use rotate_sandbox::{fixtures, Options, SandboxHandle};
    let server = Server::postgres("Bound-Old-Pw1").expect("PostgreSQL");
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let shared = sb.shared();
    fixtures::Db::new("Postgres", "demo", "pg-real")
        .insert(shared)
        .unwrap();
    rotate_sandbox::realdb::bind(shared, "demo", "pg-real", &server.url).unwrap();
    if skip_real_change {
        sb.faults().skip_real_db_change("demo", "pg-real");
    }
    let pods = shared.registry.find("", "v1", "pods").unwrap();
    let pod = sb.store().get(pods, "demo", "pg-real-0").unwrap();
    assert_eq!(
        pod["metadata"]["annotations"]["sandbox.kubectl-rotate.dev/forward"],
        serde_json::json!(format!("5432=127.0.0.1:{}", server.url.port)),
        "the pod forwards to the real server"
    );
    let ops = shared
        .registry
        .find("ops.kubedb.com", "v1alpha1", "postgresopsrequests")
        .unwrap();
    sb.store()
        .create(
            ops,
            "demo",
            serde_json::json!({"metadata": {"name": "rot"}, "spec": {"type": "RotateAuth", "databaseRef": {"name": "pg-real"}}}),
            false,
        )
        .unwrap();
    wait_for("Successful", || {
        sb.store().get(ops, "demo", "rot").unwrap()["status"]["phase"] == "Successful"
    });
    let secrets = shared.registry.find("", "v1", "secrets").unwrap();
    let sec = sb.store().get(secrets, "demo", "pg-real-auth").unwrap();
    use base64::Engine as _;
    let field = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(sec["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    (server, field("password"), field("password.prev"))
}

#[test]
fn rotating_a_database_bound_to_a_real_server_changes_the_password_there() {
    let (server, new, prev) = rotate_bound_postgres(false);
    assert_eq!(prev, "Bound-Old-Pw1");
    assert!(
        logs_in(&server, "postgres", &new),
        "the Secret's new password logs in"
    );
    assert!(
        !logs_in(&server, "postgres", &prev),
        "the previous one is refused"
    );
}

#[test]
fn a_skipped_real_change_leaves_the_server_on_the_old_password() {
    let (server, new, prev) = rotate_bound_postgres(true);
    assert!(
        !logs_in(&server, "postgres", &new),
        "the new password did not take effect"
    );
    assert!(
        logs_in(&server, "postgres", &prev),
        "the old one still works"
    );
}
