//! Elasticsearch (and OpenSearch) REST API: `GET /_security/_authenticate` with HTTP Basic
//! auth over HTTP/1.1. `200` is Accepted, `401` is Rejected (code `401`, detail the
//! server's `error.type: error.reason`), anything else is an Error (e.g. security disabled).
//!
//! TLS starts with the first byte (https): `Require` and `RequireInsecure` use it,
//! `Disable` and `Prefer` speak plain http.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{proto, tls, Conn, Exposure, Fail, LoginRequest, Tls, Verdict};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1 << 20;

/// The Basic credentials `base64(user:password)` (masked in details like the password).
pub fn basic_credentials(username: &str, password: &str) -> String {
    B64.encode(format!("{username}:{password}"))
}

/// The request we send.
pub fn request(req: &LoginRequest<'_>) -> String {
    format!(
        "GET /_security/_authenticate HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {}\r\n\
         Accept: application/json\r\nUser-Agent: kubectl-rotate-verify\r\nConnection: close\r\n\r\n",
        req.server_name,
        basic_credentials(req.username, req.password)
    )
}

/// A response: status and body.
#[derive(Debug)]
struct Response {
    status: u16,
    reason: String,
    body: Vec<u8>,
}

async fn read_response(conn: &mut Conn) -> Result<Response, Fail> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return proto("not an HTTP server (header too long)");
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(Fail::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return proto("not an HTTP server");
    };
    if !version.starts_with("HTTP/1.") {
        return proto(format!(
            "not an HTTP server ({:?})",
            &status_line[..status_line.len().min(40)]
        ));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| Fail::Protocol("not an HTTP server (bad status)".into()))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    // Read what the framing says; NB: `Connection: close` makes EOF the end otherwise.
    let want = length.unwrap_or(MAX_BODY).min(MAX_BODY);
    while rest.len() < want && !(chunked && rest.ends_with(b"0\r\n\r\n")) {
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    rest.truncate(want);
    let body = if chunked { dechunk(&rest) } else { rest };
    Ok(Response {
        status,
        reason,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..i])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = i + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = b.get(end + 2..).unwrap_or_default();
    }
    out
}

/// `type: reason` of an Elasticsearch error body, or the start of the body.
fn error_text(body: &[u8]) -> String {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let err = json.as_ref().map(|j| &j["error"]);
    match err {
        Some(Value::Object(e)) => {
            let ty = e.get("type").and_then(Value::as_str).unwrap_or("error");
            match e.get("reason").and_then(Value::as_str) {
                Some(r) => format!("{ty}: {r}"),
                None => ty.to_string(),
            }
        }
        Some(Value::String(s)) => s.clone(),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

pub(crate) async fn login(
    mut conn: Conn,
    req: &LoginRequest<'_>,
    exposure: &mut Exposure,
) -> Result<Verdict, Fail> {
    if matches!(req.tls, Tls::Require | Tls::RequireInsecure) {
        conn = tls::connect(conn, req).await?;
    } else {
        exposure.password_in_clear = true;
    }
    conn.write_all(request(req).as_bytes()).await?;
    conn.flush().await?;
    let resp = read_response(&mut conn).await?;
    let _ = conn.shutdown().await;
    Ok(match resp.status {
        200 => {
            let json: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let user = json["username"].as_str().unwrap_or(req.username);
            match json["authentication_realm"]["name"].as_str() {
                Some(realm) => {
                    Verdict::accepted(format!("authenticated as {user} (realm {realm})"))
                }
                None => Verdict::accepted(format!("authenticated as {user}")),
            }
        }
        401 => Verdict::rejected("401", error_text(&resp.body)),
        s => Verdict::error(format!(
            "HTTP {s} {}: {}",
            resp.reason,
            error_text(&resp.body)
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_type_and_reason() {
        let body = br#"{"error":{"root_cause":[],"type":"security_exception","reason":"unable to authenticate user [elastic]"},"status":401}"#;
        assert_eq!(
            error_text(body),
            "security_exception: unable to authenticate user [elastic]"
        );
        assert_eq!(error_text(b"Unauthorized"), "Unauthorized");
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"),
            b"Wikipedia"
        );
    }

    #[test]
    fn basic_credentials_are_rfc_7617() {
        assert_eq!(
            basic_credentials("Aladdin", "open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
