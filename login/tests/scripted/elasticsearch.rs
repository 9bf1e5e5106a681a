//! Elasticsearch: a scripted node answering `GET /_security/_authenticate` (plain,
//! chunked and over TLS), and the client's tests against it.

use rotate_login::{LoginRequest, LoginResult, Protocol, Tls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{plain, rejected, run};

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
/// Returns the request's head, and whether the credentials were right.
async fn fake_elasticsearch<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    password: &str,
    chunked: bool,
) -> (String, bool) {
    let r = read_http_request(&mut s).await;
    assert!(
        r.starts_with("GET /_security/_authenticate HTTP/1.1\r\n"),
        "{r}"
    );
    // HTTP/1.1 needs a Host header; Elasticsearch takes any (curl sends 127.0.0.1:PORT).
    assert!(r.to_ascii_lowercase().contains("\r\nhost: "), "{r}");
    let expected = rotate_login::elasticsearch::basic_credentials("elastic", password);
    let right = r.contains(&format!("\r\nAuthorization: Basic {expected}\r\n"));
    let resp = if right {
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
    (r, right)
}

#[tokio::test]
async fn elasticsearch_200_is_accepted_and_401_is_rejected_with_the_error_type() {
    for chunked in [false, true] {
        let out = run(
            Protocol::Elasticsearch,
            &plain("elastic", "Es-Secret-1"),
            move |s| async move {
                let (r, _) = fake_elasticsearch(s, "Es-Secret-1", chunked).await;
                assert!(r.contains("\r\nHost: localhost\r\n"), "{r}");
            },
        )
        .await;
        assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
        assert_eq!(out.detail, "authenticated as elastic (realm reserved)");
        assert!(out.password_in_clear, "Basic over plain HTTP: {out:?}");
    }
    let out = run(
        Protocol::Elasticsearch,
        &plain("elastic", "wrong"),
        |s| async move {
            fake_elasticsearch(s, "Es-Secret-1", false).await;
        },
    )
    .await;
    assert_eq!(out.result, rejected("401"), "{out:?}");
    assert_eq!(out.detail, "security_exception: unable to authenticate user [elastic] for REST request [/_security/_authenticate]");
}

/// The sandbox's certificate without its ALPN list: Elasticsearch speaks HTTP/1.1 only and
/// offers no ALPN, so a client that asks for h2 (curl does) gets HTTP/1.1.
fn es_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    let (acceptor, ca) = rotate_sandbox::tls::acceptor().unwrap();
    let mut cfg = (**acceptor.config()).clone();
    cfg.alpn_protocols.clear();
    (std::sync::Arc::new(cfg).into(), ca)
}

#[tokio::test]
async fn elasticsearch_over_tls_verifies_the_server_against_the_given_ca() {
    let (acceptor, ca) = es_acceptor();
    let req = LoginRequest {
        tls: Tls::Require,
        ca_pem: Some(ca.as_bytes()),
        ..plain("elastic", "Es-Secret-1")
    };
    let a = acceptor.clone();
    let out = run(Protocol::Elasticsearch, &req, |s| async move {
        let tls = a.accept(s).await.expect("TLS handshake");
        fake_elasticsearch(tls, "Es-Secret-1", false).await;
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert!(!out.password_in_clear, "inside TLS: {out:?}");

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

/// curl logs in to the script with HTTP Basic, over plain HTTP and over TLS with the CA:
/// 200 and the user with the right password, 401 with a wrong one.
#[tokio::test]
async fn elasticsearch_script_is_vouched_for_by_curl() {
    let (acceptor, ca) = es_acceptor();
    let dir = std::env::temp_dir().join(format!("rotate-login-es-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, &ca).unwrap();
    for tls in [false, true] {
        for (password, accepted) in [("Es-Secret-1", true), ("Wrong-Secret-2", false)] {
            let a = acceptor.clone();
            let server = crate::vouch::serve(move |s| {
                let a = a.clone();
                async move {
                    if tls {
                        let s = a.accept(s).await.expect("TLS handshake");
                        fake_elasticsearch(s, "Es-Secret-1", false).await
                    } else {
                        fake_elasticsearch(s, "Es-Secret-1", false).await
                    }
                }
            })
            .await;
            let scheme = if tls { "https" } else { "http" };
            let url = format!(
                "{scheme}://127.0.0.1:{}/_security/_authenticate",
                server.port()
            );
            let user = format!("elastic:{password}");
            let ran = crate::vouch::client(
                "curl",
                &[
                    "-sS",
                    "--cacert",
                    ca_file.to_str().unwrap(),
                    "-u",
                    &user,
                    "-w",
                    "\nstatus %{http_code}\n",
                    &url,
                ],
                "",
                password,
            )
            .await;
            let seen = server.finish().await;
            assert!(ran.ok(), "curl: {}", ran.out);
            let (status, body) = if accepted {
                ("status 200", r#""username":"elastic""#)
            } else {
                ("status 401", "security_exception")
            };
            assert!(
                ran.out.contains(status) && ran.out.contains(body),
                "curl: {}",
                ran.out
            );
            assert_eq!(seen.len(), 1, "one request");
            assert!(seen[0].0.contains("\r\nUser-Agent: curl/"), "{}", seen[0].0);
            assert_eq!(seen[0].1, accepted);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
