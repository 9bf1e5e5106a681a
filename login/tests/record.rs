//! Records the live servers' login exchanges (`login/recordings/`) that the protocol
//! modules' unit tests replay: PostgreSQL, MariaDB and Redis started on loopback, each
//! asked to accept a login, refuse a wrong password and an unknown user, and refuse a login
//! without TLS where TLS is required. The plugin's own client logs in through a recording
//! proxy.
//!
//! `UPDATE_RECORDINGS=1 cargo test -p rotate-login --test record` rewrites the files. Without
//! it, each fresh exchange must have the verdict and the turns (who spoke, in order) of the
//! file it would replace: salts and nonces differ from run to run, the conversation must not.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rotate_login::recording::{Recording, Side};
use rotate_login::{login_tcp, LoginRequest, Protocol, Tls};
use rotate_sandbox::realdb::Server;
use rotate_sandbox::tls::{Issued, TestCa, Validity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards one connection to `upstream`, recording both directions.
async fn recording_proxy(upstream: u16) -> (String, Arc<Mutex<Recording>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let rec = Arc::new(Mutex::new(Recording::default()));
    let r = rec.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let r2 = r.clone();
        let up = tokio::spawn(async move {
            let mut b = vec![0u8; 65536];
            while let Ok(n @ 1..) = cr.read(&mut b).await {
                r2.lock().unwrap().push(Side::Client, &b[..n]);
                if sw.write_all(&b[..n]).await.is_err() {
                    break;
                }
            }
            let _ = sw.shutdown().await;
        });
        let mut b = vec![0u8; 65536];
        while let Ok(n @ 1..) = sr.read(&mut b).await {
            r.lock().unwrap().push(Side::Server, &b[..n]);
            if cw.write_all(&b[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
        let _ = up.await;
    });
    (addr, rec)
}

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("recordings")
        .join(format!("{name}.txt"))
}

/// Logs in as `user`/`password` without TLS through the proxy, and writes or checks the
/// recording `name`.
async fn record(p: Protocol, server: &Server, name: &str, user: &str, password: &str) {
    let (addr, rec) = recording_proxy(server.url.port).await;
    let req = LoginRequest {
        tls: Tls::Disable,
        server_name: "127.0.0.1",
        ..LoginRequest::new(user, password)
    };
    let out = login_tcp(p, &addr, &req, Duration::from_secs(10)).await;
    // NB: the proxy may still be copying the server's last bytes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = rec.lock().unwrap().clone();
    let verdict = format!("{}", out.result);
    let path = file(name);
    if std::env::var("UPDATE_RECORDINGS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let comment = format!(
            "{p} login as {user:?} without TLS, recorded from the live server by \
             login/tests/record.rs\nverdict: {verdict}: {}",
            out.detail
        );
        std::fs::write(&path, fresh.to_text(&comment)).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_RECORDINGS=1 makes it)", path.display()));
    assert!(
        text.contains(&format!("\n# verdict: {verdict}: ")),
        "{name}: the live server now gives {verdict} ({}); the recording says otherwise",
        out.detail
    );
    let kept = Recording::parse(&text).unwrap();
    assert_eq!(
        fresh.turns(),
        kept.turns(),
        "{name}: the live server's conversation changed; UPDATE_RECORDINGS=1 re-records it"
    );
}

/// The four exchanges of one engine: `plain` and `tls` start its server without TLS and
/// with TLS only; `user` is its administrator, `engine` the files' prefix.
async fn record_engine(
    p: Protocol,
    engine: &str,
    user: &str,
    password: &str,
    plain: fn(&str) -> std::io::Result<Server>,
    tls: fn(&str, &Issued) -> std::io::Result<Server>,
) {
    let s = plain(password).expect("the server starts");
    let name = |case: &str| format!("{engine}-{case}");
    record(p, &s, &name("accepted"), user, password).await;
    record(p, &s, &name("wrong-password"), user, "not-it").await;
    record(p, &s, &name("unknown-user"), "nobody", password).await;
    let certificate = TestCa::new("record-ca")
        .unwrap()
        .issue(&["127.0.0.1"], Validity::Current)
        .unwrap();
    let t = tls(password, &certificate).expect("the TLS server starts");
    record(p, &t, &name("tls-required"), user, password).await;
}

#[tokio::test]
async fn postgres_logins_are_recorded() {
    record_engine(
        Protocol::Postgres,
        "postgres",
        "postgres",
        "Pg-Record-3v8q",
        Server::postgres,
        Server::postgres_tls,
    )
    .await;
}

#[tokio::test]
async fn mariadb_logins_are_recorded() {
    record_engine(
        Protocol::Mysql,
        "mariadb",
        "root",
        "Md-Record-5k2w",
        Server::mariadb,
        Server::mariadb_tls,
    )
    .await;
}

#[tokio::test]
async fn redis_logins_are_recorded() {
    record_engine(
        Protocol::Redis,
        "redis",
        "",
        "Rd-Record-7j4m",
        Server::redis,
        Server::redis_tls,
    )
    .await;
}

#[test]
fn every_recording_has_a_verdict_line() {
    let dir = file("x").parent().unwrap().to_path_buf();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(text.contains("\n# verdict: "), "{text}");
        n += 1;
    }
    assert_eq!(n, 12, "three servers, four exchanges each");
}
