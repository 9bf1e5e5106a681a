//! Redis: a scripted server behind TLS that checks the AUTH command, and the client's test
//! against it.

use rotate_login::{LoginRequest, LoginResult, Protocol, Tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{plain, run};

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
