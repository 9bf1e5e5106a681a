//! The protocol clients against real servers: PostgreSQL, MariaDB and Redis started on
//! loopback in temp dirs by the sandbox's `realdb::Server` (Debian's packages; no system
//! service). Each test starts its own server and stops it.

use std::process::{Command, Stdio};
use std::time::Duration;

use rotate_login::{login_tcp, LoginRequest, LoginResult, Outcome, Protocol, Tls};
use rotate_sandbox::realdb::Server;
use rotate_sandbox::tls::{TestCa, Validity};

const TIMEOUT: Duration = Duration::from_secs(10);

fn addr(s: &Server) -> String {
    format!("127.0.0.1:{}", s.url.port)
}

fn plain<'a>(user: &'a str, password: &'a str) -> LoginRequest<'a> {
    LoginRequest {
        tls: Tls::Disable,
        server_name: "127.0.0.1",
        ..LoginRequest::new(user, password)
    }
}

async fn attempt(p: Protocol, a: &str, req: &LoginRequest<'_>) -> Outcome {
    let out = login_tcp(p, a, req, TIMEOUT).await;
    let shown = format!("{out:?} {} {req:?}", out.detail);
    assert!(
        !shown.contains(req.password),
        "the password leaked into {shown}"
    );
    out
}

fn rejected(code: &str) -> LoginResult {
    LoginResult::Rejected { code: code.into() }
}

/// Run a server's own client with the password in the environment, SQL on stdin.
fn client(mut cmd: Command, stdin: &str) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("ERR") && !text.contains("ERROR"),
        "{text}"
    );
}

fn psql(s: &Server, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-p",
        ])
        .arg(s.url.port.to_string())
        .args(["-c", sql])
        .env("PGPASSWORD", &s.url.password)
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Write a file PostgreSQL (running as `postgres` when we are root) can read and trusts.
fn write_for_postgres(path: &std::path::Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if is_root() {
        assert!(Command::new("chown")
            .arg("postgres")
            .arg(path)
            .status()
            .unwrap()
            .success());
    }
}

/// A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca pem, cert pem,
/// key pem).
fn certificates() -> (String, String, String) {
    let ca = TestCa::new("live-test-ca").unwrap();
    let leaf = ca
        .issue(&["127.0.0.1", "localhost"], Validity::Current)
        .unwrap();
    (ca.pem, leaf.cert_pem, leaf.key_pem)
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

#[tokio::test]
async fn postgres_accepts_scram_md5_and_tls_logins_refuses_wrong_passwords_and_is_unreachable_once_stopped(
) {
    let pw = "Pg-Secret-7f3a";
    let mut s = Server::postgres(pw).expect("postgres starts");
    let a = addr(&s);
    let pg = Protocol::Postgres;

    let ok = attempt(pg, &a, &plain("postgres", pw)).await;
    assert_eq!(ok.result, LoginResult::Accepted, "{ok:?}");
    assert!(ok.detail.contains("scram-sha-256"), "{}", ok.detail);

    let bad = attempt(pg, &a, &plain("postgres", "not-the-password")).await;
    assert_eq!(bad.result, rejected("28P01"), "{bad:?}");
    assert!(
        bad.detail.contains("password authentication failed"),
        "{}",
        bad.detail
    );

    // Credentials are checked before the database is opened.
    let nodb = attempt(
        pg,
        &a,
        &LoginRequest {
            database: Some("nosuchdb"),
            ..plain("postgres", pw)
        },
    )
    .await;
    assert_eq!(nodb.result, LoginResult::Accepted, "{nodb:?}");
    assert!(nodb.detail.contains("3D000"), "{}", nodb.detail);

    // An MD5 role, with an md5 line in pg_hba.conf ahead of the scram one.
    psql(
        &s,
        "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'Md5-Pass-1'",
    );
    let hba = psql(&s, "SHOW hba_file");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all md5user 127.0.0.1/32 md5\n{old}")).unwrap();
    psql(&s, "SELECT pg_reload_conf()");
    let md5 = attempt(pg, &a, &plain("md5user", "Md5-Pass-1")).await;
    assert_eq!(md5.result, LoginResult::Accepted, "{md5:?}");
    assert!(md5.detail.contains("md5"), "{}", md5.detail);
    let md5_bad = attempt(pg, &a, &plain("md5user", "Md5-Pass-2")).await;
    assert_eq!(md5_bad.result, rejected("28P01"), "{md5_bad:?}");
    assert!(
        !ok.password_in_clear && !md5.password_in_clear,
        "{ok:?} {md5:?}"
    );

    // A `password` line in pg_hba.conf: the server asks for the password in clear, and
    // the outcome says it went out without TLS.
    psql(&s, "CREATE ROLE clearuser LOGIN PASSWORD 'Clear-Pass-1'");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all clearuser 127.0.0.1/32 password\n{old}"),
    )
    .unwrap();
    psql(&s, "SELECT pg_reload_conf()");
    let clear = attempt(pg, &a, &plain("clearuser", "Clear-Pass-1")).await;
    assert_eq!(clear.result, LoginResult::Accepted, "{clear:?}");
    assert!(clear.password_in_clear, "{clear:?}");

    // TLS: refused while the server has none, used once it has.
    let (ca, cert, key) = certificates();
    let require = |ca: Option<&'static [u8]>| LoginRequest {
        tls: Tls::Require,
        ca_pem: ca,
        ..plain("postgres", pw)
    };
    let ca: &'static [u8] = Box::leak(ca.into_bytes().into_boxed_slice());
    let none = attempt(pg, &a, &require(Some(ca))).await;
    assert_eq!(none.result, LoginResult::Error, "{none:?}");
    assert!(
        none.detail.contains("does not support TLS"),
        "{}",
        none.detail
    );
    let prefer = attempt(
        pg,
        &a,
        &LoginRequest {
            tls: Tls::Prefer,
            ..plain("postgres", pw)
        },
    )
    .await;
    assert_eq!(prefer.result, LoginResult::Accepted, "{prefer:?}");

    let data = psql(&s, "SHOW data_directory");
    write_for_postgres(&std::path::Path::new(&data).join("server.crt"), &cert);
    write_for_postgres(&std::path::Path::new(&data).join("server.key"), &key);
    psql(&s, "ALTER SYSTEM SET ssl = on");
    psql(&s, "SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(psql(&s, "SHOW ssl"), "on");
    let tls = attempt(pg, &a, &require(Some(ca))).await;
    assert_eq!(tls.result, LoginResult::Accepted, "{tls:?}");
    let clear_tls = attempt(
        pg,
        &a,
        &LoginRequest {
            username: "clearuser",
            password: "Clear-Pass-1",
            ..require(Some(ca))
        },
    )
    .await;
    assert_eq!(clear_tls.result, LoginResult::Accepted, "{clear_tls:?}");
    assert!(!clear_tls.password_in_clear, "inside TLS: {clear_tls:?}");
    let tls_bad = attempt(
        pg,
        &a,
        &LoginRequest {
            password: "wrong",
            ..require(Some(ca))
        },
    )
    .await;
    assert_eq!(tls_bad.result, rejected("28P01"), "{tls_bad:?}");
    let insecure = attempt(
        pg,
        &a,
        &LoginRequest {
            tls: Tls::RequireInsecure,
            ..plain("postgres", pw)
        },
    )
    .await;
    assert_eq!(insecure.result, LoginResult::Accepted, "{insecure:?}");
    let (other_ca, _, _) = certificates();
    let other_ca: &'static [u8] = Box::leak(other_ca.into_bytes().into_boxed_slice());
    let untrusted = attempt(pg, &a, &require(Some(other_ca))).await;
    assert_eq!(untrusted.result, LoginResult::Error, "{untrusted:?}");
    assert!(
        untrusted.detail.contains("TLS handshake failed"),
        "{}",
        untrusted.detail
    );
    let no_ca = attempt(pg, &a, &require(None)).await;
    assert_eq!(no_ca.result, LoginResult::Error, "{no_ca:?}");

    s.stop();
    let down = attempt(pg, &a, &plain("postgres", pw)).await;
    assert_eq!(down.result, LoginResult::Unreachable, "{down:?}");
}

#[tokio::test]
async fn mariadb_accepts_root_and_a_plain_user_refuses_wrong_passwords_and_is_unreachable_once_stopped(
) {
    let pw = "Md-Secret-9c1e";
    let mut s = Server::mariadb(pw).expect("mariadb starts");
    let a = addr(&s);
    let my = Protocol::Mysql;

    let ok = attempt(my, &a, &plain("root", pw)).await;
    assert_eq!(ok.result, LoginResult::Accepted, "{ok:?}");
    assert!(
        ok.detail.contains("mysql_native_password") && ok.detail.contains("MariaDB"),
        "{}",
        ok.detail
    );

    let bad = attempt(my, &a, &plain("root", "not-the-password")).await;
    assert_eq!(bad.result, rejected("1045"), "{bad:?}");
    assert!(bad.detail.contains("Access denied"), "{}", bad.detail);

    let nodb = attempt(
        my,
        &a,
        &LoginRequest {
            database: Some("nosuchdb"),
            ..plain("root", pw)
        },
    )
    .await;
    assert_eq!(nodb.result, LoginResult::Accepted, "{nodb:?}");
    assert!(nodb.detail.contains("1049"), "{}", nodb.detail);

    let mut c = Command::new("mariadb");
    c.args(["--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-P"])
        .arg(s.url.port.to_string())
        .env("MYSQL_PWD", pw);
    client(c, "CREATE USER 'app'@'%' IDENTIFIED BY 'App-Pass-1';\n");
    let app = attempt(my, &a, &plain("app", "App-Pass-1")).await;
    assert_eq!(app.result, LoginResult::Accepted, "{app:?}");
    let app_bad = attempt(my, &a, &plain("app", "App-Pass-2")).await;
    assert_eq!(app_bad.result, rejected("1045"), "{app_bad:?}");
    let nobody = attempt(my, &a, &plain("nobody", "App-Pass-1")).await;
    assert_eq!(nobody.result, rejected("1045"), "{nobody:?}");

    // This MariaDB has no certificate: Prefer goes on in plain text, Require refuses.
    let prefer = attempt(
        my,
        &a,
        &LoginRequest {
            tls: Tls::Prefer,
            ..plain("root", pw)
        },
    )
    .await;
    assert_eq!(prefer.result, LoginResult::Accepted, "{prefer:?}");
    let require = attempt(
        my,
        &a,
        &LoginRequest {
            tls: Tls::RequireInsecure,
            ..plain("root", pw)
        },
    )
    .await;
    assert_eq!(require.result, LoginResult::Error, "{require:?}");

    s.stop();
    let down = attempt(my, &a, &plain("root", pw)).await;
    assert_eq!(down.result, LoginResult::Unreachable, "{down:?}");
}

#[tokio::test]
async fn redis_accepts_the_default_and_an_acl_user_refuses_wrong_passwords_and_is_unreachable_once_stopped(
) {
    let pw = "Rd-Secret-4b2d";
    let mut s = Server::redis(pw).expect("redis starts");
    let a = addr(&s);
    let rd = Protocol::Redis;

    for user in ["", "default"] {
        let ok = attempt(rd, &a, &plain(user, pw)).await;
        assert_eq!(ok.result, LoginResult::Accepted, "{ok:?}");
        assert_eq!(ok.detail, "OK");
    }
    let bad = attempt(rd, &a, &plain("", "not-the-password")).await;
    assert_eq!(bad.result, rejected("WRONGPASS"), "{bad:?}");

    let cli = || {
        let mut c = Command::new("redis-cli");
        c.args(["-h", "127.0.0.1", "--no-auth-warning", "-p"])
            .arg(s.url.port.to_string())
            .env("REDISCLI_AUTH", pw);
        c
    };
    client(cli(), "ACL SETUSER app on >App-Pass-1 ~* +@all\n");
    let app = attempt(rd, &a, &plain("app", "App-Pass-1")).await;
    assert_eq!(app.result, LoginResult::Accepted, "{app:?}");
    let app_bad = attempt(rd, &a, &plain("app", "App-Pass-2")).await;
    assert_eq!(app_bad.result, rejected("WRONGPASS"), "{app_bad:?}");

    // A server without a password is not "accepted": that would hide a misconfiguration.
    client(cli(), "CONFIG SET requirepass \"\"\n");
    let open = attempt(rd, &a, &plain("", pw)).await;
    assert_eq!(open.result, LoginResult::Error, "{open:?}");
    assert!(
        open.detail.contains("no password configured"),
        "{}",
        open.detail
    );

    s.stop();
    let down = attempt(rd, &a, &plain("", pw)).await;
    assert_eq!(down.result, LoginResult::Unreachable, "{down:?}");
}

#[tokio::test]
async fn every_protocol_finds_a_closed_port_unreachable() {
    let a = closed_port();
    for p in [
        Protocol::Postgres,
        Protocol::Mysql,
        Protocol::Tds,
        Protocol::Mongodb,
        Protocol::Redis,
        Protocol::Elasticsearch,
    ] {
        let out = attempt(p, &a, &plain("u", "Closed-Port-Pw")).await;
        assert_eq!(out.result, LoginResult::Unreachable, "{p}: {out:?}");
        assert!(out.detail.contains("cannot connect"), "{}", out.detail);
    }
}
