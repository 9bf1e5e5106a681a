//! Login verification for `kubectl rotate verify`: one hand-written client per database
//! wire protocol, each doing just enough of the protocol to learn whether the server accepts
//! a user name and password, and nothing more (no query is ever sent).
//!
//! The clients are transport-agnostic: [`login`] runs over any byte stream, so the same code
//! works over a direct TCP connection ([`login_tcp`]) and over a kube-rs port-forward.
//!
//! An authentication failure is told apart from every other failure by the protocol's own
//! error code (SQLSTATE `28P01`, MySQL `1045`, TDS `18456`, MongoDB `18`, Redis `WRONGPASS`,
//! HTTP `401`), never by matching message text where a code exists.
//!
//! NB: the password is never part of any output: [`LoginRequest`]'s `Debug` masks it, and
//! every [`Outcome::detail`] is passed through [`sanitize`] before it leaves this crate, so
//! even a server that echoes the password back cannot leak it. The crate does no logging.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub mod bson;
pub mod elasticsearch;
pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod recording;
pub mod redis;
pub mod scram;
pub mod tds;
mod tls;

/// The wire protocol to speak; one module each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// PostgreSQL frontend/backend protocol v3 (also PgBouncer, Pgpool).
    Postgres,
    /// MySQL client/server protocol (MariaDB, Percona XtraDB, ProxySQL, SingleStore).
    Mysql,
    /// Microsoft SQL Server's TDS.
    Tds,
    /// MongoDB OP_MSG with SCRAM.
    Mongodb,
    /// Redis RESP `AUTH`.
    Redis,
    /// Elasticsearch REST API with HTTP Basic auth.
    Elasticsearch,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Postgres => "postgres",
            Protocol::Mysql => "mysql",
            Protocol::Tds => "tds",
            Protocol::Mongodb => "mongodb",
            Protocol::Redis => "redis",
            Protocol::Elasticsearch => "elasticsearch",
        })
    }
}

/// Whether and how to use TLS.
///
/// Protocols that negotiate TLS in-band (PostgreSQL's SSLRequest, MySQL's CLIENT_SSL, TDS
/// PRELOGIN) honour all four modes. Protocols where TLS starts with the first byte (Redis,
/// MongoDB, Elasticsearch) cannot "prefer": for them `Prefer` means plain text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tls {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it. The certificate is verified against `ca_pem` when
    /// one is given, and not verified otherwise (as libpq's `sslmode=prefer`: opportunistic
    /// encryption, no protection against an active attacker).
    #[default]
    Prefer,
    /// Require TLS and verify the server's certificate against `ca_pem` (which must be given)
    /// and its name against `server_name`.
    Require,
    /// Require TLS but accept any certificate (NB: encrypts, does not authenticate the
    /// server; for self-signed certificates whose CA is not at hand).
    RequireInsecure,
}

/// What to log in with. `Debug` masks the password.
#[derive(Clone, Copy)]
pub struct LoginRequest<'a> {
    /// User name (for Redis "" or "default" means the default user).
    pub username: &'a str,
    /// Password; never printed.
    pub password: &'a str,
    /// Database to open (PostgreSQL, MySQL, SQL Server) or authentication database
    /// (MongoDB, default `admin`). `None`: the protocol's default.
    pub database: Option<&'a str>,
    /// TLS mode.
    pub tls: Tls,
    /// Host name for TLS verification (SNI) and the HTTP `Host` header.
    pub server_name: &'a str,
    /// PEM CA certificate(s) to trust; when given, the only ones trusted.
    pub ca_pem: Option<&'a [u8]>,
}

impl<'a> LoginRequest<'a> {
    /// A request without TLS preferences: `Tls::Prefer`, server name `localhost`, no CA.
    pub fn new(username: &'a str, password: &'a str) -> Self {
        LoginRequest {
            username,
            password,
            database: None,
            tls: Tls::Prefer,
            server_name: "localhost",
            ca_pem: None,
        }
    }
}

impl fmt::Debug for LoginRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"********")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("server_name", &self.server_name)
            .field(
                "ca_pem",
                &self.ca_pem.map(|c| format!("<{} bytes>", c.len())),
            )
            .finish()
    }
}

/// The verdict on one login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginResult {
    /// The server accepted the credentials.
    Accepted,
    /// The server refused the credentials, with the protocol's own code for it (SQLSTATE
    /// `28P01`/`28000`, MySQL `1045`, TDS `18456`, MongoDB `18`, Redis `WRONGPASS`, HTTP `401`).
    Rejected {
        /// The protocol's error code.
        code: String,
    },
    /// No server answered: connection refused, reset or closed before it said anything,
    /// timed out before it said anything.
    Unreachable,
    /// The server answered but the attempt failed for another reason (TLS, unsupported
    /// authentication method, server-side error other than a refused login, protocol error).
    Error,
}

impl fmt::Display for LoginResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoginResult::Accepted => "accepted",
            LoginResult::Rejected { .. } => "rejected",
            LoginResult::Unreachable => "unreachable",
            LoginResult::Error => "error",
        })
    }
}

/// The outcome of one login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub result: LoginResult,
    /// The server's own message (or ours when it said nothing), sanitized: never contains
    /// the password, no control characters, at most [`MAX_DETAIL`] bytes.
    pub detail: String,
    /// Time taken by the whole attempt (for [`login_tcp`], including the connect).
    pub latency: Duration,
    /// The password, or something as good as it (TDS's LOGIN7 only scrambles it), went to
    /// the server outside TLS: a PostgreSQL server that asked for a cleartext password,
    /// Redis `AUTH`, Elasticsearch's Basic header, TDS without encryption. Readable by
    /// anyone on the path. MySQL and MongoDB clients here never send it so.
    pub password_in_clear: bool,
}

/// Longest [`Outcome::detail`], in bytes.
pub const MAX_DETAIL: usize = 400;

/// Any stream a protocol runs on; boxed so that a TLS upgrade can replace it in place.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
pub(crate) type Conn = Box<dyn Stream>;

/// A protocol's verdict before latency and sanitizing are added.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) result: LoginResult,
    pub(crate) detail: String,
}

impl Verdict {
    pub(crate) fn accepted(detail: impl Into<String>) -> Self {
        Verdict {
            result: LoginResult::Accepted,
            detail: detail.into(),
        }
    }
    pub(crate) fn rejected(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Verdict {
            result: LoginResult::Rejected { code: code.into() },
            detail: detail.into(),
        }
    }
    pub(crate) fn error(detail: impl Into<String>) -> Self {
        Verdict {
            result: LoginResult::Error,
            detail: detail.into(),
        }
    }
}

/// What an exchange revealed on the wire, set by the protocol modules as it happens (so it
/// holds even when the exchange fails after the password went out).
#[derive(Debug, Default)]
pub(crate) struct Exposure {
    pub(crate) password_in_clear: bool,
}

/// Why an exchange stopped before a verdict.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Transport failure; Unreachable when the server had not said anything yet.
    Io(io::Error),
    /// The server said something we cannot accept (bad framing, unsupported method, TLS).
    Protocol(String),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

pub(crate) fn proto<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Protocol(msg.into()))
}

/// A stream wrapper that remembers whether the server has sent any byte, so that a
/// connection closed before the server spoke (a stopped server behind a port-forward looks
/// like that) counts as Unreachable, and one closed mid-exchange as Error.
struct Heard<S> {
    inner: S,
    heard: Arc<AtomicBool>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Heard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Heard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn is_connection_failure(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | UnexpectedEof
            | NotConnected
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
            | AddrNotAvailable
    )
}

/// Log in over `stream` (a fresh connection to the server) and report the verdict.
///
/// No timeout of its own: see [`login_within`]. The stream is consumed and closed.
pub async fn login<S>(protocol: Protocol, stream: S, req: &LoginRequest<'_>) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    run(protocol, stream, req, None).await
}

/// [`login`] bounded by `timeout` for the whole exchange (TLS handshake included): a server
/// silent until then is Unreachable, one that stalls mid-exchange is an Error.
// NB: not in the lead's API sketch; added because a port-forward stream has no connect
// step of its own to time out, and a caller wrapping `login` in `tokio::time::timeout`
// would lose the Outcome (and the Unreachable/Error distinction).
pub async fn login_within<S>(
    protocol: Protocol,
    stream: S,
    req: &LoginRequest<'_>,
    timeout: Duration,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    run(protocol, stream, req, Some(timeout)).await
}

/// Connect to `addr` (`host:port`) over TCP, then [`login`]; `timeout` bounds the connect
/// and the exchange together. Connection refused and timeouts are Unreachable.
pub async fn login_tcp(
    protocol: Protocol,
    addr: &str,
    req: &LoginRequest<'_>,
    timeout: Duration,
) -> Outcome {
    let start = Instant::now();
    let unreachable = |detail: String| Outcome {
        result: LoginResult::Unreachable,
        detail: sanitize(&detail, req),
        latency: start.elapsed(),
        password_in_clear: false,
    };
    let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => {
            return unreachable(format!(
                "cannot connect to {addr}: timed out after {timeout:?}"
            ))
        }
        Ok(Err(e)) => return unreachable(format!("cannot connect to {addr}: {e}")),
        Ok(Ok(tcp)) => tcp,
    };
    // Login messages are small request/response pairs: Nagle would only add latency.
    let _ = tcp.set_nodelay(true);
    let left = timeout.saturating_sub(start.elapsed());
    let mut out = run(protocol, tcp, req, Some(left)).await;
    out.latency = start.elapsed();
    out
}

async fn run<S>(
    protocol: Protocol,
    stream: S,
    req: &LoginRequest<'_>,
    timeout: Option<Duration>,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let start = Instant::now();
    let heard = Arc::new(AtomicBool::new(false));
    let conn: Conn = Box::new(Heard {
        inner: stream,
        heard: heard.clone(),
    });
    let mut exposure = Exposure::default();
    let exp = &mut exposure;
    let exchange = async move {
        match protocol {
            Protocol::Postgres => postgres::login(conn, req, exp).await,
            Protocol::Mysql => mysql::login(conn, req).await,
            Protocol::Tds => tds::login(conn, req, exp).await,
            Protocol::Mongodb => mongodb::login(conn, req).await,
            Protocol::Redis => redis::login(conn, req, exp).await,
            Protocol::Elasticsearch => elasticsearch::login(conn, req, exp).await,
        }
    };
    let res = match timeout {
        None => exchange.await,
        Some(t) => match tokio::time::timeout(t, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Fail::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {t:?}"),
            ))),
        },
    };
    let heard = heard.load(Ordering::Relaxed);
    let verdict = match res {
        Ok(v) => v,
        Err(Fail::Protocol(msg)) => Verdict::error(msg),
        Err(Fail::Io(e)) if !heard && is_connection_failure(&e) => Verdict {
            result: LoginResult::Unreachable,
            detail: match e.kind() {
                io::ErrorKind::UnexpectedEof => {
                    "connection closed before the server said anything".to_string()
                }
                _ => e.to_string(),
            },
        },
        Err(Fail::Io(e)) => Verdict::error(match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                "connection closed by the server during the login exchange".to_string()
            }
            io::ErrorKind::TimedOut => format!("{e} (the server stalled mid-exchange)"),
            _ => e.to_string(),
        }),
    };
    Outcome {
        result: verdict.result,
        detail: sanitize(&verdict.detail, req),
        latency: start.elapsed(),
        password_in_clear: exposure.password_in_clear,
    }
}

/// Make a server message safe to show: control characters become spaces, the password
/// (and the HTTP Basic credentials derived from it) are masked, and the text is cut to
/// [`MAX_DETAIL`] bytes.
///
/// NB: masking happens after every other change so none of them can re-create the
/// password; a password that survives masking (one that overlaps the mask) withholds the
/// whole message rather than risk showing it.
pub fn sanitize(detail: &str, req: &LoginRequest<'_>) -> String {
    let mut s: String = detail
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > MAX_DETAIL {
        s.truncate(floor_char_boundary(&s, MAX_DETAIL - 3));
        s.push_str("...");
    }
    if !req.password.is_empty() {
        s = mask(s, req);
        // Masking can lengthen the text; cutting again only removes characters, so it
        // cannot re-create the password (the "..." above could, hence masking after it).
        s.truncate(floor_char_boundary(&s, MAX_DETAIL));
    }
    s
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mask(mut s: String, req: &LoginRequest<'_>) -> String {
    const MASK: &str = "********";
    let basic = elasticsearch::basic_credentials(req.username, req.password);
    let secrets = [req.password, basic.as_str()];
    for _ in 0..4 {
        if !secrets.iter().any(|p| s.contains(p)) {
            return s;
        }
        for p in secrets {
            s = s.replace(p, MASK);
        }
    }
    "(the server's message is withheld: it contained the password)".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_request_masks_the_password() {
        let req = LoginRequest {
            ca_pem: Some(b"-----BEGIN"),
            ..LoginRequest::new("alice", "Sup3rS3cret")
        };
        let d = format!("{req:?} {req:#?}");
        assert!(!d.contains("Sup3rS3cret"), "{d}");
        assert!(d.contains("alice") && d.contains("********") && d.contains("<10 bytes>"));
    }

    #[test]
    fn sanitize_masks_the_password_and_cuts_long_messages() {
        let req = LoginRequest::new("u", "hunter2");
        assert_eq!(
            sanitize("bad password \"hunter2\"\n", &req),
            "bad password \"********\""
        );
        let long = "x".repeat(1000);
        assert_eq!(sanitize(&long, &req).len(), MAX_DETAIL);
        // A control character between halves of the password cannot smuggle it out.
        assert!(
            !sanitize("hun\nter2 hunter2", &LoginRequest::new("u", "hun ter2"))
                .contains("hun ter2")
        );
    }

    #[test]
    fn sanitize_withholds_a_message_it_cannot_mask() {
        // The mask itself contains the password: masking cannot converge.
        let req = LoginRequest::new("u", "**");
        let s = sanitize("a ** b", &req);
        assert!(!s.contains("**"), "{s}");
    }

    #[test]
    fn sanitize_masks_basic_auth_credentials() {
        let req = LoginRequest::new("elastic", "changeme");
        let b = elasticsearch::basic_credentials("elastic", "changeme");
        assert!(!sanitize(&format!("header was Basic {b}"), &req).contains(&b));
    }
}
