//! The protocol clients against scripted servers: SQL Server (TDS) and MongoDB cannot be
//! installed here, Elasticsearch is a JVM away, and some MySQL paths (caching_sha2_password,
//! auth switch, TLS) need a MySQL 8 that Debian does not ship. Each fake server runs
//! on an in-memory duplex stream (so these tests also prove the clients need nothing but a
//! byte stream, as over a port-forward), checks what the client sends as the protocol's
//! spec says, and answers with byte sequences built per that spec. The MongoDB fake
//! verifies the client's SCRAM proof, and the TDS fake decodes the obfuscated password.
//! The TDS, MongoDB, Elasticsearch and MySQL 8 scripts also serve TCP on 127.0.0.1, where
//! real clients from Debian's packages vouch for them (vouch.rs).
//!
//! This file holds what every protocol's tests share; each protocol's scripted server and
//! tests are in its own module, and the checks run against every protocol at once are in
//! every_protocol.rs.

use std::time::Duration;

use rotate_login::{login_within, LoginRequest, LoginResult, Outcome, Protocol, Tls};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};

mod elasticsearch;
mod every_protocol;
mod mongodb;
mod mysql;
mod postgres;
mod redis;
mod tds;
mod vouch;

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
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send,
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
