//! MySQL 8 paths: a scripted server for caching_sha2_password (fast and full
//! authentication, over TLS) and the auth switch to mysql_native_password, and the
//! client's tests against it.

use rotate_login::{LoginRequest, LoginResult, Protocol, Tls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{plain, rejected, run, Io};

const CLIENT_SSL: u32 = 0x800;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;

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
    let mut rest = &rest[1 + n..];
    if caps & CLIENT_CONNECT_WITH_DB != 0 {
        rest = &rest[rest.iter().position(|b| *b == 0).unwrap() + 1..];
    }
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

/// A MySQL 8 server with user `app` / `password`; returns whether it accepted the login
/// (None: the client gave up first).
async fn fake_mysql8<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    s: S,
    password: &'static str,
    mode: Mysql8,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Option<bool> {
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
            Some(true)
        }
        Mysql8::FastAuth => {
            write_packet(&mut s, seq + 1, &err_1045()).await;
            Some(false)
        }
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
                return None; // the client gave up (no TLS)
            };
            let right = clear == [password.as_bytes(), b"\0"].concat();
            let reply = if right { OK.to_vec() } else { err_1045() };
            write_packet(&mut s, seq + 1, &reply).await;
            Some(right)
        }
        Mysql8::SwitchToNative => {
            let new_scramble = b"ABCDEFGHIJKLMNOPQRST";
            let mut sw = vec![0xfe];
            sw.extend_from_slice(b"mysql_native_password\0");
            sw.extend_from_slice(new_scramble);
            sw.push(0);
            write_packet(&mut s, seq + 1, &sw).await;
            let (seq, answer) = read_packet(&mut s).await;
            let right =
                answer == rotate_login::mysql::native_password(password.as_bytes(), new_scramble);
            let reply = if right { OK.to_vec() } else { err_1045() };
            write_packet(&mut s, seq + 1, &reply).await;
            Some(right)
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

/// The MariaDB client (Connector/C, whose caching_sha2_password plugin Debian ships in
/// libmariadb3) logs in to the script: fast authentication on plain TCP, and full
/// authentication (the password in clear) over TLS with the CA; accepted with the right
/// password, ERROR 1045 with a wrong one.
#[tokio::test]
async fn mysql8_script_is_vouched_for_by_the_mariadb_client() {
    let (acceptor, ca) = rotate_sandbox::tls::acceptor().unwrap();
    let dir = std::env::temp_dir().join(format!("rotate-login-my8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, &ca).unwrap();
    let ssl_ca = format!("--ssl-ca={}", ca_file.display());
    for mode in [Mysql8::FastAuth, Mysql8::FullAuth] {
        for (password, accepted) in [("My8-Secret-1", true), ("Wrong-Secret-2", false)] {
            let tls = (mode == Mysql8::FullAuth).then(|| acceptor.clone());
            let server =
                crate::vouch::serve(move |s| fake_mysql8(s, "My8-Secret-1", mode, tls.clone()))
                    .await;
            let port = server.port();
            let pass = format!("--password={password}");
            let mut args = vec![
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &port,
                "-u",
                "app",
                &pass,
            ];
            if mode == Mysql8::FullAuth {
                args.extend(["--ssl", &ssl_ca, "--ssl-verify-server-cert"]);
            } else {
                args.push("--skip-ssl");
            }
            let ran = crate::vouch::client("mariadb", &args, "", password).await;
            let seen = server.finish().await;
            assert_eq!(ran.ok(), accepted, "mariadb: {}", ran.out);
            if !accepted {
                assert!(
                    ran.out.contains("ERROR 1045 (28000)"),
                    "mariadb: {}",
                    ran.out
                );
            }
            assert_eq!(seen, [Some(accepted)], "one login, the script's verdict");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

pub fn handshake_packet() -> Vec<u8> {
    let h = handshake("mysql_native_password", false);
    let mut m = vec![h.len() as u8, 0, 0, 0];
    m.extend_from_slice(&h);
    m
}
