//! The protocol clients against scripted servers: SQL Server (TDS) and MongoDB cannot be
//! installed here, Elasticsearch is a JVM away, and some MySQL paths (caching_sha2_password,
//! auth switch, TLS) need a MySQL 8 that Debian does not ship. Each fake server below runs
//! on an in-memory duplex stream (so these tests also prove the clients need nothing but a
//! byte stream, as over a port-forward), checks what the client sends as the protocol's
//! spec says, and answers with byte sequences built per that spec. The MongoDB fake
//! verifies the client's SCRAM proof, and the TDS fake decodes the obfuscated password.

use std::sync::Arc;
use std::time::Duration;

use rotate_login::bson::{Bson, Document};
use rotate_login::{
    login, login_within, mongodb, scram, tds, LoginRequest, LoginResult, Outcome, Protocol, Tls,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
type Io = Box<dyn Stream>;

fn plain<'a>(user: &'a str, password: &'a str) -> LoginRequest<'a> {
    LoginRequest {
        tls: Tls::Disable,
        ..LoginRequest::new(user, password)
    }
}

fn rejected(code: &str) -> LoginResult {
    LoginResult::Rejected { code: code.into() }
}

/// A client/server pair of in-memory streams.
fn pair() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(256 * 1024)
}

/// Log in over a duplex stream whose other end `server` plays; checks nothing leaks.
async fn run<F, Fut>(p: Protocol, req: &LoginRequest<'_>, server: F) -> Outcome
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (c, s) = pair();
    let task = tokio::spawn(server(s));
    let out = login_within(p, c, req, Duration::from_secs(10)).await;
    // A panicking fake server (a failed check on what the client sent) fails the test.
    task.await.expect("the fake server's checks pass");
    let shown = format!("{out:?} {} {req:?}", out.detail);
    assert!(
        !shown.contains(req.password),
        "the password leaked into {shown}"
    );
    out
}

// ---------------------------------------------------------------- TDS (SQL Server)

/// What the fake SQL Server read from LOGIN7.
#[derive(Debug, Default, Clone)]
struct Login7 {
    tds_version: u32,
    user: String,
    password: String,
    app: String,
    database: String,
}

fn parse_login7(p: &[u8]) -> Login7 {
    assert_eq!(
        u32::from_le_bytes(p[..4].try_into().unwrap()) as usize,
        p.len(),
        "LOGIN7 Length"
    );
    let field = |i: usize| {
        let at = 36 + 4 * i;
        let off = usize::from(u16::from_le_bytes([p[at], p[at + 1]]));
        let len = usize::from(u16::from_le_bytes([p[at + 2], p[at + 3]]));
        assert!(
            off >= 94 && off + 2 * len <= p.len(),
            "field {i} out of range"
        );
        p[off..off + 2 * len].to_vec()
    };
    Login7 {
        tds_version: u32::from_le_bytes(p[4..8].try_into().unwrap()),
        user: tds::from_utf16le(&field(1)),
        password: tds::deobfuscate(&field(2)),
        app: tds::from_utf16le(&field(3)),
        database: tds::from_utf16le(&field(8)),
    }
}

/// The fake SQL Server's TLS: rustls without I/O, its handshake inside PRELOGIN packets.
struct ServerTls(rustls::ServerConnection);

impl ServerTls {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            self.0.read_tls(&mut data).unwrap();
            self.0.process_new_packets().expect("TLS from the client");
        }
    }
    fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.0.wants_write() {
            self.0.write_tls(&mut out).unwrap();
        }
        out
    }
    async fn handshake(cfg: Arc<rustls::ServerConfig>, s: &mut DuplexStream) -> ServerTls {
        let mut tls = ServerTls(rustls::ServerConnection::new(cfg).unwrap());
        while tls.0.is_handshaking() {
            let (kind, payload) = tds::read_message(s).await.unwrap().unwrap();
            assert_eq!(
                kind,
                tds::PRELOGIN,
                "handshake records travel in PRELOGIN packets"
            );
            tls.feed(&payload);
            let out = tls.drain();
            if !out.is_empty() {
                s.write_all(&tds::packet(tds::PRELOGIN, &out))
                    .await
                    .unwrap();
            }
        }
        tls
    }
    /// One TDS message sent as bare TLS records.
    async fn read(&mut self, s: &mut DuplexStream) -> Option<(u8, Vec<u8>)> {
        use std::io::Read;
        let mut plain = Vec::new();
        loop {
            if let Some(m) = tds::complete_message(&plain).unwrap() {
                return Some(m);
            }
            let mut buf = [0u8; 8192];
            match self.0.reader().read(&mut buf) {
                Ok(n) if n > 0 => plain.extend_from_slice(&buf[..n]),
                _ => {
                    let n = s.read(&mut buf).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    self.feed(&buf[..n]);
                }
            }
        }
    }
}

/// What the fake server saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    client_encryption: u8,
    login: Option<Login7>,
    login_was_encrypted: bool,
}

/// A SQL Server that knows `sa` / `password`, with `encryption` in its PRELOGIN answer and
/// a certificate when `tls` is given; reports what it saw on `seen`.
async fn fake_sql_server(
    mut s: DuplexStream,
    password: String,
    encryption: u8,
    tls: Option<Arc<rustls::ServerConfig>>,
    seen: oneshot::Sender<Seen>,
) {
    let mut saw = Seen::default();
    let (kind, pre) = tds::read_message(&mut s).await.unwrap().unwrap();
    assert_eq!(kind, tds::PRELOGIN);
    let opts = tds::parse_prelogin(&pre).unwrap();
    let enc = opts
        .iter()
        .find(|(t, _)| *t == 0x01)
        .expect("ENCRYPTION option");
    saw.client_encryption = enc.1[0];
    let reply = tds::prelogin_payload(&[
        (0x00, vec![16, 0, 0x10, 0x27, 0, 0]),
        (0x01, vec![encryption]),
        (0x04, vec![0]),
    ]);
    s.write_all(&tds::packet(tds::REPLY, &reply)).await.unwrap();
    // MS-TDS 2.2.6.5, as the server sees it.
    let (full, login_only) = match (saw.client_encryption, encryption) {
        (tds::ENCRYPT_NOT_SUP, tds::ENCRYPT_ON | tds::ENCRYPT_REQ)
        | (tds::ENCRYPT_ON, tds::ENCRYPT_NOT_SUP) => {
            let _ = seen.send(saw);
            return; // the server hangs up
        }
        (tds::ENCRYPT_NOT_SUP, _) | (_, tds::ENCRYPT_NOT_SUP) => (false, false),
        (tds::ENCRYPT_OFF, tds::ENCRYPT_OFF) => (false, true),
        _ => (true, false),
    };
    let mut tls = if full || login_only {
        Some(ServerTls::handshake(tls.expect("a certificate"), &mut s).await)
    } else {
        None
    };
    let login = match tls.as_mut() {
        Some(t) => t.read(&mut s).await,
        None => tds::read_message(&mut s).await.ok().and_then(Result::ok),
    };
    let Some((kind, login)) = login else {
        let _ = seen.send(saw);
        return;
    };
    assert_eq!(kind, tds::LOGIN7);
    let l = parse_login7(&login);
    let ok = l.user == "sa" && l.password == password;
    saw.login = Some(l);
    saw.login_was_encrypted = tls.is_some();
    let _ = seen.send(saw);
    let mut tokens = Vec::new();
    if ok {
        // ENVCHANGE database (type 1): new "master", old "".
        let mut env = vec![1, 6];
        env.extend("master".encode_utf16().flat_map(u16::to_le_bytes));
        env.push(0);
        tokens.push(tds::TOKEN_ENVCHANGE);
        tokens.extend((env.len() as u16).to_le_bytes());
        tokens.extend(env);
        tokens.extend(tds::error_token(
            tds::TOKEN_INFO,
            5701,
            2,
            0,
            "Changed database context to 'master'.",
            "mssql",
        ));
        tokens.extend(tds::login_ack_token(
            "Microsoft SQL Server",
            [16, 0, 0x10, 0x27],
        ));
        tokens.extend(tds::done_token(0));
    } else {
        tokens.extend(tds::error_token(
            tds::TOKEN_ERROR,
            18456,
            1,
            14,
            "Login failed for user 'sa'.",
            "mssql",
        ));
        tokens.extend(tds::done_token(2));
    }
    let reply = tds::packet(tds::REPLY, &tokens);
    match tls.as_mut() {
        Some(t) if full => {
            std::io::Write::write_all(&mut t.0.writer(), &reply).unwrap();
            let out = t.drain();
            s.write_all(&out).await.unwrap();
        }
        _ => s.write_all(&reply).await.unwrap(),
    }
}

/// The sandbox's certificate (127.0.0.1 / localhost), without TLS 1.3 session tickets
/// (which would arrive after the handshake; SQL Server speaks TLS 1.2 in TDS 7.x anyway).
fn sql_server_tls() -> (Arc<rustls::ServerConfig>, String) {
    let (acceptor, ca) = rotate_sandbox::tls::acceptor().unwrap();
    let mut cfg = (**acceptor.config()).clone();
    cfg.send_tls13_tickets = 0;
    cfg.alpn_protocols.clear();
    (Arc::new(cfg), ca)
}

#[tokio::test]
async fn tds_login_sends_an_obfuscated_password_and_loginack_is_accepted() {
    let (tx, rx) = oneshot::channel();
    let req = LoginRequest {
        database: Some("master"),
        ..plain("sa", "Tds-Secret-1!")
    };
    let out = run(Protocol::Tds, &req, |s| {
        fake_sql_server(s, "Tds-Secret-1!".into(), tds::ENCRYPT_NOT_SUP, None, tx)
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(
        out.detail,
        "authenticated to Microsoft SQL Server 16.0.4135"
    );
    let saw = rx.await.unwrap();
    assert_eq!(saw.client_encryption, tds::ENCRYPT_NOT_SUP);
    let l = saw.login.unwrap();
    assert_eq!(
        (l.tds_version, l.user.as_str(), l.password.as_str()),
        (tds::TDS_VERSION, "sa", "Tds-Secret-1!")
    );
    assert_eq!(
        (l.app.as_str(), l.database.as_str()),
        ("kubectl-rotate-verify", "master")
    );
}

#[tokio::test]
async fn tds_error_18456_is_rejected_with_the_servers_message() {
    let (tx, _rx) = oneshot::channel();
    let out = run(Protocol::Tds, &plain("sa", "wrong-one"), |s| {
        fake_sql_server(s, "Tds-Secret-1!".into(), tds::ENCRYPT_OFF, None, tx)
    })
    .await;
    assert_eq!(out.result, rejected("18456"), "{out:?}");
    assert_eq!(
        out.detail,
        "Login failed for user 'sa'. (error 18456, state 1, class 14)"
    );
}

#[tokio::test]
async fn tds_server_requiring_encryption_refuses_a_client_with_tls_disabled_before_login7() {
    let (tx, rx) = oneshot::channel();
    let out = run(Protocol::Tds, &plain("sa", "Tds-Secret-1!"), |s| {
        fake_sql_server(s, "Tds-Secret-1!".into(), tds::ENCRYPT_REQ, None, tx)
    })
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(out.detail.contains("requires encryption"), "{}", out.detail);
    assert!(rx.await.unwrap().login.is_none(), "no LOGIN7 was sent");
}

#[tokio::test]
async fn tds_login_inside_tls_is_accepted_when_the_server_requires_encryption() {
    let (cfg, ca) = sql_server_tls();
    for (mode, password, want) in [
        (Tls::Require, "Tds-Secret-1!", LoginResult::Accepted),
        (Tls::Prefer, "Tds-Secret-1!", LoginResult::Accepted),
        (Tls::RequireInsecure, "wrong", rejected("18456")),
    ] {
        let (tx, rx) = oneshot::channel();
        let req = LoginRequest {
            tls: mode,
            ca_pem: Some(ca.as_bytes()),
            ..plain("sa", password)
        };
        let cfg = cfg.clone();
        let out = run(Protocol::Tds, &req, |s| {
            fake_sql_server(s, "Tds-Secret-1!".into(), tds::ENCRYPT_REQ, Some(cfg), tx)
        })
        .await;
        assert_eq!(out.result, want, "{mode:?}: {out:?}");
        let saw = rx.await.unwrap();
        assert!(saw.login_was_encrypted);
        assert_eq!(saw.login.unwrap().password, password);
    }
}

#[tokio::test]
async fn tds_prefer_encrypts_the_login_packet_even_when_the_server_does_not_require_it() {
    let (cfg, _) = sql_server_tls();
    let (tx, rx) = oneshot::channel();
    let req = LoginRequest {
        tls: Tls::Prefer,
        ..plain("sa", "Tds-Secret-1!")
    };
    let out = run(Protocol::Tds, &req, |s| {
        fake_sql_server(s, "Tds-Secret-1!".into(), tds::ENCRYPT_OFF, Some(cfg), tx)
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    let saw = rx.await.unwrap();
    assert_eq!(saw.client_encryption, tds::ENCRYPT_OFF);
    assert!(saw.login_was_encrypted, "login-only encryption");
}

#[tokio::test]
async fn tds_require_against_a_server_without_tls_is_an_error() {
    let (tx, rx) = oneshot::channel();
    let req = LoginRequest {
        tls: Tls::RequireInsecure,
        ..plain("sa", "Tds-Secret-1!")
    };
    let out = run(Protocol::Tds, &req, |s| {
        fake_sql_server(s, "Tds-Secret-1!".into(), tds::ENCRYPT_NOT_SUP, None, tx)
    })
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(
        out.detail.contains("does not support TLS"),
        "{}",
        out.detail
    );
    assert!(rx.await.unwrap().login.is_none());
}

// ---------------------------------------------------------------- MongoDB

struct MongoUser {
    name: &'static str,
    password: &'static str,
    mechs: Vec<&'static str>,
    hello_known: bool,
}

/// A MongoDB that runs real SCRAM (its own salt and iteration count) against `user`.
async fn fake_mongod(s: DuplexStream, user: MongoUser) {
    let mut s: Io = Box::new(s);
    let salt = b"fake-mongod-salt";
    let iterations = 4096;
    let mut conversation: Option<(scram::Hash, String, String)> = None;
    while let Ok(msg) = mongodb::read_op_msg(&mut s).await {
        let (id, _, cmd) = msg.expect("a well-formed OP_MSG from the client");
        let name = cmd.0[0].0.clone();
        let reply = match name.as_str() {
            "hello" if !user.hello_known => Document::new()
                .with("ok", Bson::Double(0.0))
                .with("errmsg", Bson::String("no such command: 'hello'".into()))
                .with("code", Bson::Int32(59))
                .with("codeName", Bson::String("CommandNotFound".into())),
            "hello" | "isMaster" => {
                assert_eq!(cmd.get("$db"), Some(&Bson::String("admin".into())));
                let asked = cmd
                    .get("saslSupportedMechs")
                    .and_then(Bson::as_str)
                    .unwrap();
                let mut d = Document::new()
                    .with("helloOk", Bson::Bool(true))
                    .with("isWritablePrimary", Bson::Bool(true))
                    .with(
                        "topologyVersion",
                        Bson::Document(
                            Document::new()
                                .with("processId", Bson::Other(0x07, vec![1; 12]))
                                .with("counter", Bson::Int64(0)),
                        ),
                    )
                    .with(
                        "localTime",
                        Bson::Other(0x09, 1_700_000_000_000i64.to_le_bytes().to_vec()),
                    )
                    .with("maxWireVersion", Bson::Int32(21));
                if asked == format!("admin.{}", user.name) {
                    d = d.with(
                        "saslSupportedMechs",
                        Bson::Array(
                            user.mechs
                                .iter()
                                .map(|m| Bson::String(m.to_string()))
                                .collect(),
                        ),
                    );
                }
                d.with("ok", Bson::Double(1.0))
            }
            "saslStart" => {
                assert_eq!(cmd.get("$db"), Some(&Bson::String("admin".into())));
                let mech = cmd
                    .get("mechanism")
                    .and_then(Bson::as_str)
                    .unwrap()
                    .to_string();
                let Some(Bson::Binary(0, p)) = cmd.get("payload") else {
                    panic!("payload")
                };
                let client_first = String::from_utf8(p.clone()).unwrap();
                assert!(client_first.starts_with(&format!(
                    "n,,n={},r=",
                    scram::escape_username(cmd_user(&client_first))
                )));
                let hash = if mech == "SCRAM-SHA-1" {
                    scram::Hash::Sha1
                } else {
                    scram::Hash::Sha256
                };
                let server_first =
                    scram::server::first(&client_first, "SRVNONCE", salt, iterations);
                conversation = Some((hash, client_first, server_first.clone()));
                Document::new()
                    .with("conversationId", Bson::Int32(1))
                    .with("done", Bson::Bool(false))
                    .with("payload", Bson::Binary(0, server_first.into_bytes()))
                    .with("ok", Bson::Double(1.0))
            }
            "saslContinue" => {
                let (hash, client_first, server_first) =
                    conversation.take().expect("saslStart first");
                let Some(Bson::Binary(0, p)) = cmd.get("payload") else {
                    panic!("payload")
                };
                let password = match hash {
                    scram::Hash::Sha1 => mongodb::sha1_password(user.name, user.password),
                    scram::Hash::Sha256 => user.password.to_string(),
                };
                let keys = scram::Keys::derive(hash, password.as_bytes(), salt, iterations);
                let known =
                    cmd_user(&client_first) == user.name && user.mechs.contains(&hash.mechanism());
                match scram::server::verify(
                    hash,
                    &keys,
                    &client_first,
                    &server_first,
                    &String::from_utf8_lossy(p),
                ) {
                    Ok(server_final) if known => Document::new()
                        .with("conversationId", Bson::Int32(1))
                        .with("done", Bson::Bool(true))
                        .with("payload", Bson::Binary(0, server_final.into_bytes()))
                        .with("ok", Bson::Double(1.0)),
                    _ => Document::new()
                        .with("ok", Bson::Double(0.0))
                        .with("errmsg", Bson::String("Authentication failed.".into()))
                        .with("code", Bson::Int32(18))
                        .with("codeName", Bson::String("AuthenticationFailed".into())),
                }
            }
            other => panic!("unexpected command {other}"),
        };
        s.write_all(&mongodb::op_msg(100 + id, id, &reply))
            .await
            .unwrap();
    }
}

fn cmd_user(client_first: &str) -> &str {
    client_first
        .trim_start_matches("n,,")
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("n=")
}

fn mongo_user(mechs: Vec<&'static str>) -> MongoUser {
    MongoUser {
        name: "root",
        password: "Mongo-Secret-1",
        mechs,
        hello_known: true,
    }
}

#[tokio::test]
async fn mongodb_scram_sha_256_proof_is_verified_by_the_server_and_accepted() {
    let out = run(Protocol::Mongodb, &plain("root", "Mongo-Secret-1"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-1", "SCRAM-SHA-256"]))
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(out.detail, "authenticated (SCRAM-SHA-256) on admin");
}

#[tokio::test]
async fn mongodb_wrong_password_is_rejected_with_code_18() {
    let out = run(Protocol::Mongodb, &plain("root", "not-it"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-256"]))
    })
    .await;
    assert_eq!(out.result, rejected("18"), "{out:?}");
    assert_eq!(
        out.detail,
        "AuthenticationFailed: Authentication failed. (18)"
    );
    let out = run(Protocol::Mongodb, &plain("nobody", "Mongo-Secret-1"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-256"]))
    })
    .await;
    assert_eq!(out.result, rejected("18"), "{out:?}");
}

#[tokio::test]
async fn mongodb_user_with_only_scram_sha_1_logs_in_with_it() {
    let out = run(Protocol::Mongodb, &plain("root", "Mongo-Secret-1"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-1"]))
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(out.detail, "authenticated (SCRAM-SHA-1) on admin");
}

#[tokio::test]
async fn mongodb_before_hello_falls_back_to_is_master() {
    let user = MongoUser {
        hello_known: false,
        ..mongo_user(vec!["SCRAM-SHA-256"])
    };
    let out = run(Protocol::Mongodb, &plain("root", "Mongo-Secret-1"), |s| {
        fake_mongod(s, user)
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
}

// ---------------------------------------------------------------- Elasticsearch

async fn read_http_request<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        buf.push(b[0]);
    }
    String::from_utf8(buf).unwrap()
}

/// An Elasticsearch node with user `elastic` / `password`; `chunked` answers 200s chunked.
async fn fake_elasticsearch<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    password: &str,
    chunked: bool,
) {
    let r = read_http_request(&mut s).await;
    assert!(
        r.starts_with("GET /_security/_authenticate HTTP/1.1\r\n"),
        "{r}"
    );
    assert!(r.contains("\r\nHost: localhost\r\n"), "{r}");
    let expected = rotate_login::elasticsearch::basic_credentials("elastic", password);
    let resp = if r.contains(&format!("\r\nAuthorization: Basic {expected}\r\n")) {
        let body = r#"{"username":"elastic","roles":["superuser"],"authentication_realm":{"name":"reserved","type":"reserved"},"authentication_type":"realm"}"#;
        if chunked {
            let (a, b) = body.split_at(20);
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len())
        } else {
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        }
    } else {
        let body = r#"{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/_security/_authenticate]"}],"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/_security/_authenticate]","header":{"WWW-Authenticate":"Basic realm=\"security\" charset=\"UTF-8\""}},"status":401}"#;
        format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"security\" charset=\"UTF-8\"\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
    };
    s.write_all(resp.as_bytes()).await.unwrap();
    let _ = s.shutdown().await;
}

#[tokio::test]
async fn elasticsearch_200_is_accepted_and_401_is_rejected_with_the_error_type() {
    for chunked in [false, true] {
        let out = run(
            Protocol::Elasticsearch,
            &plain("elastic", "Es-Secret-1"),
            move |s| async move { fake_elasticsearch(s, "Es-Secret-1", chunked).await },
        )
        .await;
        assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
        assert_eq!(out.detail, "authenticated as elastic (realm reserved)");
    }
    let out = run(
        Protocol::Elasticsearch,
        &plain("elastic", "wrong"),
        |s| async move { fake_elasticsearch(s, "Es-Secret-1", false).await },
    )
    .await;
    assert_eq!(out.result, rejected("401"), "{out:?}");
    assert_eq!(out.detail, "security_exception: unable to authenticate user [elastic] for REST request [/_security/_authenticate]");
}

#[tokio::test]
async fn elasticsearch_over_tls_verifies_the_server_against_the_given_ca() {
    let (acceptor, ca) = rotate_sandbox::tls::acceptor().unwrap();
    let req = LoginRequest {
        tls: Tls::Require,
        ca_pem: Some(ca.as_bytes()),
        ..plain("elastic", "Es-Secret-1")
    };
    let a = acceptor.clone();
    let out = run(Protocol::Elasticsearch, &req, |s| async move {
        let tls = a.accept(s).await.expect("TLS handshake");
        fake_elasticsearch(tls, "Es-Secret-1", false).await
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");

    // Another CA: the handshake fails, which is an error of a server that answered.
    let (_, other_ca) = rotate_sandbox::tls::acceptor().unwrap();
    let req = LoginRequest {
        ca_pem: Some(other_ca.as_bytes()),
        ..req
    };
    let out = run(Protocol::Elasticsearch, &req, |s| async move {
        let _ = acceptor.accept(s).await;
    })
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(
        out.detail.starts_with("TLS handshake failed"),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn elasticsearch_with_security_disabled_is_an_error() {
    let out = run(Protocol::Elasticsearch, &plain("elastic", "Es-Secret-1"), |mut s| async move {
        read_http_request(&mut s).await;
        let body = r#"{"error":{"type":"security_exception","reason":"Security must be explicitly enabled when using a [basic] license."},"status":500}"#;
        let r = format!("HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        s.write_all(r.as_bytes()).await.unwrap();
    })
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(
        out.detail.contains("Security must be explicitly enabled"),
        "{}",
        out.detail
    );
}

// ---------------------------------------------------------------- MySQL 8 paths

const CLIENT_SSL: u32 = 0x800;

async fn read_packet<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> (u8, Vec<u8>) {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await.unwrap();
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let mut p = vec![0; len];
    s.read_exact(&mut p).await.unwrap();
    (h[3], p)
}

async fn write_packet<S: AsyncWrite + Unpin + ?Sized>(s: &mut S, seq: u8, p: &[u8]) {
    let len = p.len();
    let mut m = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
    m.extend_from_slice(p);
    s.write_all(&m).await.unwrap();
}

const SCRAMBLE: &[u8; 20] = b"0123456789abcdefghij";

fn handshake(plugin: &str, tls: bool) -> Vec<u8> {
    let caps: u32 =
        0x0008_0000 | 0x8000 | 0x0200 | 0x2000 | 0x0008 | 1 | if tls { CLIENT_SSL } else { 0 };
    let mut p = vec![10];
    p.extend_from_slice(b"8.0.36\0");
    p.extend_from_slice(&9u32.to_le_bytes());
    p.extend_from_slice(&SCRAMBLE[..8]);
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(255);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&SCRAMBLE[8..]);
    p.push(0);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p
}

/// HandshakeResponse41 → (capabilities, user, auth response, plugin).
fn parse_response(p: &[u8]) -> (u32, String, Vec<u8>, String) {
    let caps = u32::from_le_bytes(p[..4].try_into().unwrap());
    let rest = &p[32..];
    let nul = rest.iter().position(|b| *b == 0).unwrap();
    let user = String::from_utf8(rest[..nul].to_vec()).unwrap();
    let rest = &rest[nul + 1..];
    let n = usize::from(rest[0]);
    let auth = rest[1..1 + n].to_vec();
    let rest = &rest[1 + n..];
    let plugin =
        String::from_utf8(rest[..rest.iter().position(|b| *b == 0).unwrap()].to_vec()).unwrap();
    (caps, user, auth, plugin)
}

const OK: &[u8] = &[0, 0, 0, 2, 0, 0, 0];

fn err_1045() -> Vec<u8> {
    let mut e = vec![0xff];
    e.extend_from_slice(&1045u16.to_le_bytes());
    e.extend_from_slice(b"#28000Access denied for user 'app'@'10.0.0.1' (using password: YES)");
    e
}

#[derive(Clone, Copy, PartialEq)]
enum Mysql8 {
    /// caching_sha2_password with the password in the server's cache.
    FastAuth,
    /// caching_sha2_password, not cached: full authentication (TLS only).
    FullAuth,
    /// Server default caching_sha2_password, user on mysql_native_password.
    SwitchToNative,
}

async fn fake_mysql8(
    s: DuplexStream,
    password: &'static str,
    mode: Mysql8,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut s: Io = Box::new(s);
    write_packet(
        &mut s,
        0,
        &handshake("caching_sha2_password", tls.is_some()),
    )
    .await;
    let (mut seq, mut p) = read_packet(&mut s).await;
    if let Some(acceptor) = tls {
        assert_eq!(p.len(), 32, "SSLRequest");
        assert!(u32::from_le_bytes(p[..4].try_into().unwrap()) & CLIENT_SSL != 0);
        s = Box::new(acceptor.accept(s).await.expect("TLS handshake"));
        (seq, p) = read_packet(&mut s).await;
        assert_eq!(seq, 2);
    }
    let (caps, user, auth, plugin) = parse_response(&p);
    assert_eq!(
        caps & 0x8_8200,
        0x8_8200,
        "PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH"
    );
    assert_eq!(
        (user.as_str(), plugin.as_str()),
        ("app", "caching_sha2_password")
    );
    let right = rotate_login::mysql::caching_sha2_password(password.as_bytes(), SCRAMBLE);
    match mode {
        Mysql8::FastAuth if auth == right => {
            write_packet(&mut s, seq + 1, &[1, 3]).await;
            write_packet(&mut s, seq + 2, OK).await;
        }
        Mysql8::FastAuth => write_packet(&mut s, seq + 1, &err_1045()).await,
        Mysql8::FullAuth => {
            write_packet(&mut s, seq + 1, &[1, 4]).await;
            let Some((seq, clear)) = (async {
                let mut h = [0u8; 4];
                s.read_exact(&mut h).await.ok()?;
                let mut p = vec![0; usize::from(h[0])];
                s.read_exact(&mut p).await.ok()?;
                Some((h[3], p))
            })
            .await
            else {
                return; // the client gave up (no TLS)
            };
            let reply = if clear == [password.as_bytes(), b"\0"].concat() {
                OK.to_vec()
            } else {
                err_1045()
            };
            write_packet(&mut s, seq + 1, &reply).await;
        }
        Mysql8::SwitchToNative => {
            let new_scramble = b"ABCDEFGHIJKLMNOPQRST";
            let mut sw = vec![0xfe];
            sw.extend_from_slice(b"mysql_native_password\0");
            sw.extend_from_slice(new_scramble);
            sw.push(0);
            write_packet(&mut s, seq + 1, &sw).await;
            let (seq, answer) = read_packet(&mut s).await;
            let right = rotate_login::mysql::native_password(password.as_bytes(), new_scramble);
            let reply = if answer == right {
                OK.to_vec()
            } else {
                err_1045()
            };
            write_packet(&mut s, seq + 1, &reply).await;
        }
    }
}

#[tokio::test]
async fn mysql8_caching_sha2_fast_auth_is_accepted_and_a_wrong_password_rejected() {
    let out = run(Protocol::Mysql, &plain("app", "My8-Secret-1"), |s| {
        fake_mysql8(s, "My8-Secret-1", Mysql8::FastAuth, None)
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(
        out.detail,
        "authenticated (caching_sha2_password) to 8.0.36"
    );
    let out = run(Protocol::Mysql, &plain("app", "wrong"), |s| {
        fake_mysql8(s, "My8-Secret-1", Mysql8::FastAuth, None)
    })
    .await;
    assert_eq!(out.result, rejected("1045"), "{out:?}");
    assert!(
        out.detail.starts_with("ERROR 1045 (28000): Access denied"),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn mysql8_full_authentication_without_tls_is_an_error_and_sends_no_password() {
    let out = run(Protocol::Mysql, &plain("app", "My8-Secret-1"), |s| {
        fake_mysql8(s, "My8-Secret-1", Mysql8::FullAuth, None)
    })
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert_eq!(
        out.detail,
        "caching_sha2_password full authentication needs TLS"
    );
}

#[tokio::test]
async fn mysql8_full_authentication_over_tls_is_accepted() {
    let (acceptor, ca) = rotate_sandbox::tls::acceptor().unwrap();
    let req = LoginRequest {
        tls: Tls::Require,
        ca_pem: Some(ca.as_bytes()),
        ..plain("app", "My8-Secret-1")
    };
    let a = acceptor.clone();
    let out = run(Protocol::Mysql, &req, |s| {
        fake_mysql8(s, "My8-Secret-1", Mysql8::FullAuth, Some(a))
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    let req = LoginRequest {
        password: "wrong",
        ..req
    };
    let out = run(Protocol::Mysql, &req, |s| {
        fake_mysql8(s, "My8-Secret-1", Mysql8::FullAuth, Some(acceptor))
    })
    .await;
    assert_eq!(out.result, rejected("1045"), "{out:?}");
}

#[tokio::test]
async fn mysql_auth_switch_to_native_password_is_followed() {
    let out = run(Protocol::Mysql, &plain("app", "My8-Secret-1"), |s| {
        fake_mysql8(s, "My8-Secret-1", Mysql8::SwitchToNative, None)
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(
        out.detail,
        "authenticated (mysql_native_password) to 8.0.36"
    );
    let out = run(Protocol::Mysql, &plain("app", "wrong"), |s| {
        fake_mysql8(s, "My8-Secret-1", Mysql8::SwitchToNative, None)
    })
    .await;
    assert_eq!(out.result, rejected("1045"), "{out:?}");
}

// ---------------------------------------------------------------- every protocol

const ALL: [Protocol; 6] = [
    Protocol::Postgres,
    Protocol::Mysql,
    Protocol::Tds,
    Protocol::Mongodb,
    Protocol::Redis,
    Protocol::Elasticsearch,
];

/// What a hostile or careless server says first, with the password in it: a refusal and
/// another error, for each protocol (bytes as the protocol frames them).
fn echoes(p: Protocol, pw: &str) -> Vec<Vec<u8>> {
    let pg_err = |code: &str| {
        let body =
            format!("SFATAL\0VFATAL\0C{code}\0Mpassword \"{pw}\" is not right for user \"u\"\0\0");
        let mut m = vec![b'E'];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body.as_bytes());
        m
    };
    let my_err = |code: u16| {
        let mut e = vec![0xff];
        e.extend_from_slice(&code.to_le_bytes());
        e.extend_from_slice(format!("#28000Access denied, you sent {pw}").as_bytes());
        let mut m = handshake_packet();
        m.extend_from_slice(&[e.len() as u8, 0, 0, 2]);
        m.extend_from_slice(&e);
        m
    };
    let tds_err = |n: i32| {
        let mut m = tds::packet(
            tds::REPLY,
            &tds::prelogin_payload(&[(0x01, vec![tds::ENCRYPT_NOT_SUP])]),
        );
        let mut t = tds::error_token(
            tds::TOKEN_ERROR,
            n,
            1,
            14,
            &format!("Login failed: {pw}"),
            "mssql",
        );
        t.extend(tds::done_token(2));
        m.extend(tds::packet(tds::REPLY, &t));
        m
    };
    let mongo_err = |code: i32| {
        let hello = Document::new().with("ok", Bson::Double(1.0));
        let fail = Document::new()
            .with("ok", Bson::Double(0.0))
            .with("errmsg", Bson::String(format!("bad password {pw}")))
            .with("code", Bson::Int32(code))
            .with("codeName", Bson::String(pw.to_string()));
        [
            mongodb::op_msg(10, 1, &hello),
            mongodb::op_msg(11, 2, &fail),
        ]
        .concat()
    };
    let http = |status: &str| {
        let basic = rotate_login::elasticsearch::basic_credentials("u", pw);
        let body =
            format!(r#"{{"error":{{"type":"x","reason":"you sent {pw} as Basic {basic}"}}}}"#);
        format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    match p {
        Protocol::Postgres => vec![pg_err("28P01"), pg_err("53300")],
        Protocol::Mysql => vec![my_err(1045), my_err(1130)],
        Protocol::Tds => vec![tds_err(18456), tds_err(4060)],
        Protocol::Mongodb => vec![mongo_err(18), mongo_err(13)],
        Protocol::Redis => vec![
            format!("-WRONGPASS {pw}\r\n").into_bytes(),
            format!("-ERR {pw}\r\n").into_bytes(),
            format!("HTTP/1.1 {pw}\r\n").into_bytes(),
        ],
        Protocol::Elasticsearch => vec![http("401 Unauthorized"), http("500 Oops")],
    }
}

fn handshake_packet() -> Vec<u8> {
    let h = handshake("mysql_native_password", false);
    let mut m = vec![h.len() as u8, 0, 0, 0];
    m.extend_from_slice(&h);
    m
}

#[tokio::test]
async fn no_outcome_shows_the_password_even_when_the_server_echoes_it() {
    let pw = "Echo-Me-Not-42";
    for p in ALL {
        for reply in echoes(p, pw) {
            let req = plain("u", pw);
            // `run` asserts that neither the outcome, its detail nor the request's Debug
            // contains the password.
            let out = run(p, &req, |mut s| async move {
                s.write_all(&reply).await.unwrap();
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
            })
            .await;
            assert!(
                matches!(
                    out.result,
                    LoginResult::Rejected { .. } | LoginResult::Error
                ),
                "{p}: {out:?}"
            );
            assert!(out.detail.contains("********"), "{p}: {}", out.detail);
        }
    }
}

#[tokio::test]
async fn a_stream_closed_before_the_server_speaks_is_unreachable_for_every_protocol() {
    // As a port-forward to a pod whose database is down looks.
    for p in ALL {
        let (c, s) = pair();
        drop(s);
        let out = login(p, c, &plain("u", "pw-closed")).await;
        assert_eq!(out.result, LoginResult::Unreachable, "{p}: {out:?}");
    }
}

#[tokio::test]
async fn a_silent_server_is_unreachable_and_one_that_stalls_mid_exchange_is_an_error() {
    for p in ALL {
        let (c, _s) = pair();
        let out = login_within(p, c, &plain("u", "pw-silent"), Duration::from_millis(200)).await;
        assert_eq!(out.result, LoginResult::Unreachable, "{p}: {out:?}");
        assert!(out.latency >= Duration::from_millis(200));
    }
    let (c, mut s) = pair();
    s.write_all(&handshake_packet()[..10]).await.unwrap();
    let out = login_within(
        Protocol::Mysql,
        c,
        &plain("u", "pw-stall"),
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(out.detail.contains("stalled"), "{}", out.detail);
}

#[tokio::test]
async fn a_server_that_closes_mid_exchange_is_an_error() {
    let (c, mut s) = pair();
    s.write_all(&handshake_packet()[..10]).await.unwrap();
    drop(s);
    let out = login(Protocol::Mysql, c, &plain("u", "pw-closed")).await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
}

/// A PostgreSQL PasswordMessage / SASL response ('p') body.
async fn read_password_message(s: &mut DuplexStream) -> Vec<u8> {
    let mut h = [0u8; 5];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(h[0], b'p');
    let mut b = vec![0; i32::from_be_bytes(h[1..5].try_into().unwrap()) as usize - 4];
    s.read_exact(&mut b).await.unwrap();
    b
}

#[tokio::test]
async fn postgres_cleartext_and_a_wrong_server_signature_are_handled() {
    // Cleartext: the fake server reads the PasswordMessage and checks it.
    let out = run(
        Protocol::Postgres,
        &plain("u", "Pg-Clear-1"),
        |mut s| async move {
            let mut startup = vec![0u8; 4];
            s.read_exact(&mut startup).await.unwrap();
            let len = i32::from_be_bytes(startup[..4].try_into().unwrap()) as usize;
            startup.resize(len, 0);
            s.read_exact(&mut startup[4..]).await.unwrap();
            s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.unwrap();
            let mut h = [0u8; 5];
            s.read_exact(&mut h).await.unwrap();
            assert_eq!(h[0], b'p');
            let mut pw = vec![0; i32::from_be_bytes(h[1..5].try_into().unwrap()) as usize - 4];
            s.read_exact(&mut pw).await.unwrap();
            assert_eq!(pw, b"Pg-Clear-1\0");
            s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'])
                .await
                .unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
            assert_eq!(rest, [b'X', 0, 0, 0, 4], "Terminate");
        },
    )
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(out.detail, "authenticated (password)");

    // SCRAM with a server that does not know the password (an impostor): its final
    // signature is wrong, and the client says so instead of trusting AuthenticationOk.
    let out = run(
        Protocol::Postgres,
        &plain("u", "Pg-Scram-1"),
        |mut s| async move {
            let mut startup = vec![0u8; 4];
            s.read_exact(&mut startup).await.unwrap();
            let len = i32::from_be_bytes(startup[..4].try_into().unwrap()) as usize;
            startup.resize(len, 0);
            s.read_exact(&mut startup[4..]).await.unwrap();
            let msg = |kind: u8, body: &[u8]| {
                let mut m = vec![kind];
                m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
                m.extend_from_slice(body);
                m
            };
            s.write_all(&msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"))
                .await
                .unwrap();
            let init = read_password_message(&mut s).await;
            // "SCRAM-SHA-256\0", length, client-first
            let client_first = String::from_utf8(init[14 + 4..].to_vec()).unwrap();
            assert!(client_first.starts_with("n,,n=,r="), "{client_first}");
            let server_first = scram::server::first(&client_first, "SRV", b"salt-salt-salt", 4096);
            let mut body = 11i32.to_be_bytes().to_vec();
            body.extend_from_slice(server_first.as_bytes());
            s.write_all(&msg(b'R', &body)).await.unwrap();
            let _client_final = read_password_message(&mut s).await;
            let mut body = 12i32.to_be_bytes().to_vec();
            body.extend_from_slice(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
            s.write_all(&msg(b'R', &body)).await.unwrap();
            s.write_all(&msg(b'R', &[0, 0, 0, 0])).await.unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        },
    )
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(
        out.detail.contains("SCRAM signature is wrong"),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn redis_over_tls_is_accepted_with_the_right_ca() {
    let (acceptor, ca) = rotate_sandbox::tls::acceptor().unwrap();
    let req = LoginRequest {
        tls: Tls::Require,
        ca_pem: Some(ca.as_bytes()),
        ..plain("app", "Rd-Tls-1")
    };
    let out = run(Protocol::Redis, &req, |s| async move {
        let mut s = acceptor.accept(s).await.expect("TLS handshake");
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(
            &buf[..n],
            b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$8\r\nRd-Tls-1\r\n"
        );
        s.write_all(b"+OK\r\n").await.unwrap();
        let _ = s.read(&mut buf).await;
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
}
