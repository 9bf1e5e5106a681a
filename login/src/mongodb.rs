//! MongoDB wire protocol (OP_MSG, MongoDB 3.6+): `hello` (asking which SCRAM mechanisms
//! the user has), then SCRAM-SHA-256 (or SCRAM-SHA-1 for users that only have it) through
//! `saslStart` / `saslContinue` on the authentication database (default `admin`).
//!
//! A reply `{ok: 0, code: 18}` (AuthenticationFailed) is Rejected; other failures are
//! Errors. The server's final SCRAM signature is verified before Accepted.
//!
//! TLS starts with the first byte: `Require` and `RequireInsecure` use it, `Disable` and
//! `Prefer` do not.

use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bson::{Bson, Document};
use crate::scram::{self, Hash, ScramError};
use crate::{proto, tls, Conn, Fail, LoginRequest, Tls, Verdict};

/// AuthenticationFailed.
pub const AUTHENTICATION_FAILED: i32 = 18;
/// CommandNotFound (a server before 4.4.2 does not know `hello`).
const COMMAND_NOT_FOUND: i32 = 59;
/// OP_MSG.
pub const OP_MSG: i32 = 2013;
const MAX_MESSAGE: usize = 48 * 1024 * 1024;

/// Encode an OP_MSG with one body section.
pub fn op_msg(request_id: i32, response_to: i32, body: &Document) -> Vec<u8> {
    let doc = body.encode();
    let mut m = Vec::with_capacity(doc.len() + 21);
    m.extend_from_slice(&((doc.len() + 21) as i32).to_le_bytes());
    m.extend_from_slice(&request_id.to_le_bytes());
    m.extend_from_slice(&response_to.to_le_bytes());
    m.extend_from_slice(&OP_MSG.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.push(0);
    m.extend_from_slice(&doc);
    m
}

/// Read one OP_MSG; returns (request id, response to, body document).
pub async fn read_op_msg<R: tokio::io::AsyncRead + Unpin + ?Sized>(
    r: &mut R,
) -> std::io::Result<Result<(i32, i32, Document), String>> {
    let mut h = [0u8; 16];
    r.read_exact(&mut h).await?;
    let word = |i: usize| i32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (len, request_id, response_to, op) = (word(0), word(4), word(8), word(12));
    let Some(len) = usize::try_from(len)
        .ok()
        .filter(|l| (21..=MAX_MESSAGE).contains(l))
    else {
        return Ok(Err(format!("not a MongoDB server (message length {len})")));
    };
    let mut rest = vec![0; len - 16];
    r.read_exact(&mut rest).await?;
    if op != OP_MSG {
        return Ok(Err(format!("unexpected MongoDB opcode {op}")));
    }
    let flags = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    // checksumPresent: a CRC-32C trails the sections.
    let end = if flags & 1 != 0 {
        rest.len().saturating_sub(4)
    } else {
        rest.len()
    };
    let mut at = 4;
    while at < end {
        let kind = rest[at];
        let size = rest
            .get(at + 1..at + 5)
            .map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .and_then(|s| usize::try_from(s).ok())
            .unwrap_or(0);
        let sect = rest.get(at + 1..at + 1 + size);
        match (kind, sect) {
            (0, Some(doc)) => {
                return Ok(Document::decode(doc)
                    .map(|d| (request_id, response_to, d))
                    .map_err(|e| e.to_string()))
            }
            (1, Some(_)) => at += 1 + size,
            _ => break,
        }
    }
    Ok(Err("OP_MSG without a body section".into()))
}

struct Session {
    conn: Conn,
    next_id: i32,
}

impl Session {
    async fn command(&mut self, cmd: Document) -> Result<Document, Fail> {
        self.next_id += 1;
        let id = self.next_id;
        self.conn.write_all(&op_msg(id, 0, &cmd)).await?;
        self.conn.flush().await?;
        match read_op_msg(&mut self.conn).await? {
            Ok((_, to, d)) if to == id => Ok(d),
            Ok(_) => proto("reply to another request"),
            Err(e) => proto(e),
        }
    }
}

fn ok(d: &Document) -> bool {
    d.get("ok").and_then(Bson::as_f64) == Some(1.0)
}

fn code(d: &Document) -> Option<i32> {
    d.get("code").and_then(Bson::as_f64).map(|c| c as i32)
}

fn describe_error(d: &Document) -> String {
    let name = d.get("codeName").and_then(Bson::as_str).unwrap_or("Error");
    let msg = d.get("errmsg").and_then(Bson::as_str).unwrap_or("");
    match code(d) {
        Some(c) => format!("{name}: {msg} ({c})"),
        None => format!("{name}: {msg}"),
    }
}

fn failure(d: &Document) -> Verdict {
    match code(d) {
        Some(AUTHENTICATION_FAILED) => {
            Verdict::rejected(AUTHENTICATION_FAILED.to_string(), describe_error(d))
        }
        _ => Verdict::error(describe_error(d)),
    }
}

fn payload(d: &Document) -> Result<String, Fail> {
    match d.get("payload") {
        Some(Bson::Binary(_, b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => proto("SASL reply without a payload"),
    }
}

/// The SCRAM-SHA-1 password MongoDB expects: `hex(md5("user:mongo:password"))`.
pub fn sha1_password(username: &str, password: &str) -> String {
    crate::postgres::hex(&Md5::digest(
        format!("{username}:mongo:{password}").as_bytes(),
    ))
}

pub(crate) async fn login(mut conn: Conn, req: &LoginRequest<'_>) -> Result<Verdict, Fail> {
    if matches!(req.tls, Tls::Require | Tls::RequireInsecure) {
        conn = tls::connect(conn, req).await?;
    }
    let db = req.database.unwrap_or("admin");
    let mut s = Session { conn, next_id: 0 };

    let hello = |name: &str| {
        Document::new()
            .with(name, Bson::Int32(1))
            .with(
                "saslSupportedMechs",
                Bson::String(format!("{db}.{}", req.username)),
            )
            .with("$db", Bson::String("admin".into()))
    };
    let mut reply = s.command(hello("hello")).await?;
    if !ok(&reply) && code(&reply) == Some(COMMAND_NOT_FOUND) {
        reply = s.command(hello("isMaster")).await?;
    }
    if !ok(&reply) {
        return Ok(Verdict::error(describe_error(&reply)));
    }
    let mechs: Vec<&str> = match reply.get("saslSupportedMechs") {
        Some(Bson::Array(a)) => a.iter().filter_map(Bson::as_str).collect(),
        _ => Vec::new(),
    };
    // NB: an unknown user gets no list; SCRAM-SHA-256 then fails with code 18 as it should.
    let hash = if !mechs.contains(&"SCRAM-SHA-256") && mechs.contains(&"SCRAM-SHA-1") {
        Hash::Sha1
    } else {
        Hash::Sha256
    };
    let password = match hash {
        Hash::Sha1 => sha1_password(req.username, req.password),
        Hash::Sha256 => req.password.to_string(),
    };

    let mut c = scram::Client::new(hash, &scram::escape_username(req.username), scram::nonce());
    let start = Document::new()
        .with("saslStart", Bson::Int32(1))
        .with("mechanism", Bson::String(hash.mechanism().into()))
        .with("payload", Bson::Binary(0, c.client_first().into_bytes()))
        .with("autoAuthorize", Bson::Int32(1))
        .with(
            "options",
            Bson::Document(Document::new().with("skipEmptyExchange", Bson::Bool(true))),
        )
        .with("$db", Bson::String(db.into()));
    let reply = s.command(start).await?;
    if !ok(&reply) {
        return Ok(failure(&reply));
    }
    let conversation = reply
        .get("conversationId")
        .cloned()
        .unwrap_or(Bson::Int32(1));
    let fin = c
        .client_final(password.as_bytes(), &payload(&reply)?)
        .map_err(|e| Fail::Protocol(e.to_string()))?;
    let mut next = fin.into_bytes();
    let mut verified = false;
    for _ in 0..3 {
        let cont = Document::new()
            .with("saslContinue", Bson::Int32(1))
            .with("conversationId", conversation.clone())
            .with("payload", Bson::Binary(0, std::mem::take(&mut next)))
            .with("$db", Bson::String(db.into()));
        let reply = s.command(cont).await?;
        if !ok(&reply) {
            return Ok(failure(&reply));
        }
        if !verified {
            match c.verify_server_final(&payload(&reply)?) {
                Ok(()) => verified = true,
                Err(ScramError::BadServerSignature) => {
                    return Ok(Verdict::error(ScramError::BadServerSignature.to_string()))
                }
                Err(e) => return proto(e.to_string()),
            }
        }
        if reply.get("done") == Some(&Bson::Bool(true)) {
            let _ = s.conn.shutdown().await;
            return Ok(Verdict::accepted(format!(
                "authenticated ({}) on {db}",
                hash.mechanism()
            )));
        }
    }
    proto("the SASL conversation does not end")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_password_is_the_mongo_cr_digest() {
        // Computed independently (Python hashlib) for user "user", password "pencil".
        assert_eq!(sha1_password("user", "pencil"), MONGO_REF);
    }

    const MONGO_REF: &str = "1c33006ec1ffd90f9cadcbcc0e118200";

    #[tokio::test]
    async fn op_msg_round_trips() {
        let d = Document::new().with("hello", Bson::Int32(1));
        let m = op_msg(7, 3, &d);
        let (id, to, back) = read_op_msg(&mut &m[..]).await.unwrap().unwrap();
        assert_eq!((id, to, back), (7, 3, d));
    }
}
