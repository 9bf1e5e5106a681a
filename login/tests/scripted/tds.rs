//! SQL Server (TDS): a scripted server that reads LOGIN7 (decoding the obfuscated
//! password), speaks TLS inside PRELOGIN packets, and the client's tests against it.

use std::sync::Arc;

use rotate_login::{tds, LoginRequest, LoginResult, Protocol, Tls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::{plain, rejected, run};

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
    async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        cfg: Arc<rustls::ServerConfig>,
        s: &mut S,
    ) -> ServerTls {
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
    async fn read<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Option<(u8, Vec<u8>)> {
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
async fn fake_sql_server<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
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

/// The sandbox's certificate (127.0.0.1 / localhost), TLS 1.2 only: SQL Server speaks
/// TLS 1.2 inside TDS 7.x PRELOGIN packets (TLS 1.3 only with TDS 8's TLS-first), and
/// FreeTDS's tsql, offered TLS 1.3 there, never finishes its login.
fn sql_server_tls() -> (Arc<rustls::ServerConfig>, String) {
    let (acceptor, ca) =
        rotate_sandbox::tls::acceptor_with_versions(&[&rustls::version::TLS12]).unwrap();
    let mut cfg = (**acceptor.config()).clone();
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
    assert!(out.password_in_clear, "LOGIN7 without encryption: {out:?}");
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
        assert!(!out.password_in_clear, "{mode:?}: {out:?}");
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
    assert!(!out.password_in_clear, "login-only encryption: {out:?}");
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

/// The script on a TCP listener, for real clients; each connection reports what it saw.
async fn tds_listener(
    password: &'static str,
    encryption: u8,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> crate::vouch::Served<Option<Seen>> {
    crate::vouch::serve(move |s| {
        let tls = tls.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            fake_sql_server(s, password.into(), encryption, tls, tx).await;
            rx.await.ok()
        }
    })
    .await
}

/// tsql (FreeTDS, Debian's freetds-bin) logs in to the script: without encryption, with
/// the login packet encrypted (both sides OFF) and with everything encrypted (the server
/// requires it); accepted with the right password, Msg 18456 with a wrong one.
#[tokio::test]
async fn tds_script_is_vouched_for_by_tsql() {
    let (cfg, _) = sql_server_tls();
    for encryption in [tds::ENCRYPT_NOT_SUP, tds::ENCRYPT_OFF, tds::ENCRYPT_REQ] {
        for (password, accepted) in [("Tds-Secret-1!", true), ("Wrong-Secret-2!", false)] {
            let server = tds_listener("Tds-Secret-1!", encryption, Some(cfg.clone())).await;
            let port = server.port();
            let ran = crate::vouch::client(
                "tsql",
                &["-H", "127.0.0.1", "-p", &port, "-U", "sa", "-P", password],
                "exit\n",
                password,
            )
            .await;
            let seen: Vec<_> = server.finish().await.into_iter().flatten().collect();
            assert_eq!(ran.ok(), accepted, "tsql: {}", ran.out);
            let answer = if accepted { "1> " } else { "Msg 18456" };
            assert!(ran.out.contains(answer), "tsql: {}", ran.out);
            assert_eq!(seen.len(), 1, "one connection");
            assert_eq!(
                seen[0].client_encryption,
                tds::ENCRYPT_OFF,
                "FreeTDS's default"
            );
            assert_eq!(
                seen[0].login_was_encrypted,
                encryption != tds::ENCRYPT_NOT_SUP
            );
            let logins: Vec<_> = seen.into_iter().filter_map(|s| s.login).collect();
            assert_eq!(logins.len(), 1, "one LOGIN7");
            assert_eq!(
                (logins[0].tds_version, logins[0].user.as_str()),
                (tds::TDS_VERSION, "sa")
            );
            assert_eq!(logins[0].password == "Tds-Secret-1!", accepted);
        }
    }
}
