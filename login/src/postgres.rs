//! PostgreSQL frontend/backend protocol v3 (also PgBouncer and Pgpool, which speak it).
//!
//! SSLRequest when TLS is wanted, StartupMessage, then one of the password methods:
//! cleartext, MD5, SCRAM-SHA-256. An ErrorResponse with SQLSTATE `28P01`
//! (invalid_password) or `28000` (invalid_authorization_specification) is Rejected; any
//! other one is an Error. Once the server has sent AuthenticationOk the credentials are
//! Accepted, even if the session then fails (e.g. `3D000`, the database does not exist:
//! PostgreSQL checks the password before it opens the database).

use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::scram::{self, Hash, ScramError};
use crate::{proto, tls, Conn, Exposure, Fail, LoginRequest, Tls, Verdict};

/// SQLSTATEs that mean "these credentials are refused".
pub const REJECTED_SQLSTATES: [&str; 2] = ["28P01", "28000"];

const SSL_REQUEST: i32 = 80_877_103;
const PROTOCOL_V3: i32 = 196_608;
const MAX_MESSAGE: usize = 1 << 20;
/// How long to wait after AuthenticationOk for the session to start (or fail).
const AFTER_OK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A backend message: type byte and body.
struct Message {
    kind: u8,
    body: Vec<u8>,
}

async fn read_message(conn: &mut Conn) -> Result<Message, Fail> {
    let kind = conn.read_u8().await?;
    let len = conn.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (4..=MAX_MESSAGE).contains(l))
        .ok_or_else(|| {
            Fail::Protocol(format!(
                "not a PostgreSQL server (message length {len} of type 0x{kind:02x})"
            ))
        })?;
    let mut body = vec![0; len - 4];
    conn.read_exact(&mut body).await?;
    Ok(Message { kind, body })
}

async fn send(conn: &mut Conn, kind: u8, body: &[u8]) -> Result<(), Fail> {
    let mut m = Vec::with_capacity(body.len() + 5);
    m.push(kind);
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    conn.write_all(&m).await?;
    conn.flush().await?;
    Ok(())
}

/// The fields of an ErrorResponse (or NoticeResponse), by their one-letter codes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    /// `S`/`V`: ERROR, FATAL, PANIC.
    pub severity: String,
    /// `C`: SQLSTATE.
    pub code: String,
    /// `M`: primary message.
    pub message: String,
    /// `D`: detail.
    pub detail: String,
}

impl ErrorFields {
    /// Parse the body of an ErrorResponse.
    pub fn parse(body: &[u8]) -> ErrorFields {
        let mut e = ErrorFields::default();
        for field in body.split(|b| *b == 0) {
            let Some((&tag, value)) = field.split_first() else {
                continue;
            };
            let value = String::from_utf8_lossy(value).into_owned();
            match tag {
                b'V' => e.severity = value,
                b'S' if e.severity.is_empty() => e.severity = value,
                b'C' => e.code = value,
                b'M' => e.message = value,
                b'D' => e.detail = value,
                _ => {}
            }
        }
        e
    }

    fn describe(&self) -> String {
        let mut s = format!("{}: {} ({})", self.severity, self.message, self.code);
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    fn verdict(&self) -> Verdict {
        if REJECTED_SQLSTATES.contains(&self.code.as_str()) {
            Verdict::rejected(&self.code, self.describe())
        } else {
            Verdict::error(self.describe())
        }
    }
}

/// The StartupMessage for `req` (user, database, application name).
pub fn startup_message(req: &LoginRequest<'_>) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&PROTOCOL_V3.to_be_bytes());
    let mut param = |k: &str, v: &str| {
        m.extend_from_slice(k.as_bytes());
        m.push(0);
        m.extend_from_slice(v.as_bytes());
        m.push(0);
    };
    param("user", req.username);
    param("database", req.database.unwrap_or("postgres"));
    param("application_name", "kubectl-rotate-verify");
    m.push(0);
    let len = (m.len() as i32).to_be_bytes();
    m[..4].copy_from_slice(&len);
    m
}

/// The MD5 method's answer: `"md5" + md5(md5(password + user) + salt)` in hex.
pub fn md5_password(user: &str, password: &str, salt: &[u8; 4]) -> String {
    let inner = hex(&Md5::digest(format!("{password}{user}").as_bytes()));
    let mut h = Md5::new();
    h.update(inner.as_bytes());
    h.update(salt);
    format!("md5{}", hex(&h.finalize()))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn nul_terminated(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v.push(0);
    v
}

pub(crate) async fn login(
    mut conn: Conn,
    req: &LoginRequest<'_>,
    exposure: &mut Exposure,
) -> Result<Verdict, Fail> {
    let mut encrypted = false;
    if req.tls != Tls::Disable {
        let mut m = Vec::with_capacity(8);
        m.extend_from_slice(&8i32.to_be_bytes());
        m.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        conn.write_all(&m).await?;
        conn.flush().await?;
        match conn.read_u8().await? {
            b'S' => {
                conn = tls::connect(conn, req).await?;
                encrypted = true;
            }
            b'N' if req.tls == Tls::Prefer => {}
            b'N' => return Ok(Verdict::error("the server does not support TLS")),
            // NB: a server that sends an ErrorResponse here does not know SSLRequest
            // (pre-7.0, or not PostgreSQL); the message that follows is not worth parsing.
            other => return proto(format!("unexpected answer 0x{other:02x} to SSLRequest")),
        }
    }
    conn.write_all(&startup_message(req)).await?;
    conn.flush().await?;

    let mut scram: Option<scram::Client> = None;
    let mut method = "trust";
    loop {
        let msg = read_message(&mut conn).await?;
        match msg.kind {
            b'E' => return Ok(ErrorFields::parse(&msg.body).verdict()),
            // NoticeResponse, ParameterStatus, BackendKeyData may come any time; skip.
            b'N' | b'S' | b'K' => continue,
            b'R' => {}
            other => return proto(format!("unexpected message 0x{other:02x} during login")),
        }
        if msg.body.len() < 4 {
            return proto("short authentication message");
        }
        let code = i32::from_be_bytes([msg.body[0], msg.body[1], msg.body[2], msg.body[3]]);
        let data = &msg.body[4..];
        match code {
            // AuthenticationOk
            0 => return Ok(after_ok(&mut conn, method).await),
            // AuthenticationCleartextPassword
            3 => {
                method = "password";
                exposure.password_in_clear |= !encrypted;
                send(&mut conn, b'p', &nul_terminated(req.password.as_bytes())).await?;
            }
            // AuthenticationMD5Password
            5 => {
                method = "md5";
                let salt: [u8; 4] = data
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| Fail::Protocol("MD5 request without a salt".into()))?;
                let answer = md5_password(req.username, req.password, &salt);
                send(&mut conn, b'p', &nul_terminated(answer.as_bytes())).await?;
            }
            // AuthenticationSASL: a list of mechanisms.
            10 => {
                let mechanisms: Vec<String> = data
                    .split(|b| *b == 0)
                    .filter(|m| !m.is_empty())
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .collect();
                if !mechanisms.iter().any(|m| m == "SCRAM-SHA-256") {
                    return Ok(Verdict::error(format!(
                        "unsupported SASL mechanisms: {}",
                        mechanisms.join(", ")
                    )));
                }
                method = "scram-sha-256";
                // NB: PostgreSQL takes the user from the startup message and ignores n=.
                let c = scram::Client::new(Hash::Sha256, "", scram::nonce());
                let first = c.client_first();
                let mut body = nul_terminated(b"SCRAM-SHA-256");
                body.extend_from_slice(&(first.len() as i32).to_be_bytes());
                body.extend_from_slice(first.as_bytes());
                send(&mut conn, b'p', &body).await?;
                scram = Some(c);
            }
            // AuthenticationSASLContinue: server-first.
            11 => {
                let c = scram
                    .as_mut()
                    .ok_or_else(|| Fail::Protocol("SASLContinue before SASL".into()))?;
                let server_first = String::from_utf8_lossy(data);
                let fin = c
                    .client_final(req.password.as_bytes(), &server_first)
                    .map_err(|e| Fail::Protocol(e.to_string()))?;
                send(&mut conn, b'p', fin.as_bytes()).await?;
            }
            // AuthenticationSASLFinal: server-final; AuthenticationOk follows.
            12 => {
                let c = scram
                    .as_ref()
                    .ok_or_else(|| Fail::Protocol("SASLFinal before SASL".into()))?;
                match c.verify_server_final(&String::from_utf8_lossy(data)) {
                    Ok(()) => {}
                    Err(ScramError::BadServerSignature) => {
                        return Ok(Verdict::error(ScramError::BadServerSignature.to_string()))
                    }
                    Err(e) => return proto(e.to_string()),
                }
            }
            2 | 6 | 7 | 8 | 9 => {
                return Ok(Verdict::error(format!(
                    "unsupported authentication method (Kerberos/GSSAPI/SSPI, code {code})"
                )))
            }
            other => {
                return Ok(Verdict::error(format!(
                    "unsupported authentication request {other}"
                )))
            }
        }
    }
}

/// After AuthenticationOk: wait for ReadyForQuery (or an error opening the session), then
/// say goodbye with Terminate. The verdict is Accepted either way.
async fn after_ok(conn: &mut Conn, method: &str) -> Verdict {
    let mut detail = format!("authenticated ({method})");
    // NB: bounded on its own: the verdict is already known, and a slow session start must
    // not turn it into a timeout.
    let wait = async {
        loop {
            match read_message(conn).await {
                Ok(m) if m.kind == b'Z' => return None,
                Ok(m) if m.kind == b'E' => return Some(ErrorFields::parse(&m.body)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    if let Ok(Some(e)) = tokio::time::timeout(AFTER_OK_WAIT, wait).await {
        detail = format!("{detail}, then the session failed: {}", e.describe());
    }
    let _ = send(conn, b'X', &[]).await;
    let _ = conn.shutdown().await;
    Verdict::accepted(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_answer_matches_libpq() {
        // The inner hash is what pg_authid stores (after "md5") for postgres/secret;
        // the answer was computed independently (Python's hashlib) for salt 01 02 03 04.
        assert_eq!(
            hex(&Md5::digest(b"secretpostgres")),
            "53f48b7c4b76a86ce72276c5755f217d"
        );
        assert_eq!(
            md5_password("postgres", "secret", &[1, 2, 3, 4]),
            "md5bb41a296aab6baccb36ff243a562abff"
        );
    }

    #[test]
    fn error_fields_are_read_by_their_codes() {
        let body = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\0";
        let e = ErrorFields::parse(body);
        assert_eq!(e.code, "28P01");
        assert_eq!(e.severity, "FATAL");
        assert_eq!(
            e.verdict().result,
            crate::LoginResult::Rejected {
                code: "28P01".into()
            }
        );
        let e = ErrorFields::parse(b"SFATAL\0C53300\0Msorry, too many clients already\0\0");
        assert_eq!(e.verdict().result, crate::LoginResult::Error);
    }

    #[test]
    fn startup_message_carries_user_and_database() {
        let req = LoginRequest {
            database: Some("app"),
            ..LoginRequest::new("alice", "pw")
        };
        let m = startup_message(&req);
        assert_eq!(
            i32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        let text = String::from_utf8_lossy(&m);
        assert!(text.contains("user\0alice\0database\0app\0"));
        assert!(!text.contains("pw"));
    }

    /// PostgreSQL 15's own answers, recorded by login/tests/record.rs.
    #[tokio::test]
    async fn the_live_servers_recorded_logins_replay_to_the_same_verdicts() {
        use crate::recording::{assert_replays, recorded};
        use crate::LoginResult as R;
        let pw = "Pg-Record-3v8q";
        let rejected = |c: &str| R::Rejected { code: c.into() };
        assert_replays(
            crate::Protocol::Postgres,
            &[
                (recorded!("postgres-accepted"), "postgres", pw, R::Accepted),
                (
                    recorded!("postgres-wrong-password"),
                    "postgres",
                    "not-it",
                    rejected("28P01"),
                ),
                (
                    recorded!("postgres-unknown-user"),
                    "nobody",
                    pw,
                    rejected("28P01"),
                ),
                // NB: hostssl lines only; the refusal is pg_hba's, before any password.
                (
                    recorded!("postgres-tls-required"),
                    "postgres",
                    pw,
                    rejected("28000"),
                ),
            ],
        )
        .await;
    }
}
