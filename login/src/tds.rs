//! Microsoft SQL Server's TDS 7.4 (SQL Server, Azure Arc SQL Managed Instance), as MS-TDS
//! describes it: PRELOGIN, then LOGIN7 with SQL Server authentication, then the token
//! stream: LOGINACK is Accepted, an ERROR token number `18456` (login failed) is Rejected,
//! any other ERROR an Error.
//!
//! TLS (TDS 7.x style): PRELOGIN announces ENCRYPT_NOT_SUP (`Disable`), ENCRYPT_OFF
//! (`Prefer`: the login packet is encrypted at least) or ENCRYPT_ON (`Require*`); when both
//! sides agree on encryption the TLS handshake travels inside PRELOGIN packets, then either
//! only LOGIN7 (both OFF) or everything after it is sent as bare TLS records. TDS 8's
//! TLS-first "strict" mode is not implemented.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use crate::{proto, tls, Conn, Exposure, Fail, LoginRequest, Tls, Verdict};

/// The ERROR number of a failed login.
pub const LOGIN_FAILED: i32 = 18456;

/// Packet types.
pub const PRELOGIN: u8 = 0x12;
/// LOGIN7 packet type.
pub const LOGIN7: u8 = 0x10;
/// Tabular result (every server reply).
pub const REPLY: u8 = 0x04;

/// Token types.
pub const TOKEN_LOGINACK: u8 = 0xAD;
/// ERROR token.
pub const TOKEN_ERROR: u8 = 0xAA;
/// INFO token.
pub const TOKEN_INFO: u8 = 0xAB;
/// ENVCHANGE token.
pub const TOKEN_ENVCHANGE: u8 = 0xE3;
/// DONE token.
pub const TOKEN_DONE: u8 = 0xFD;

/// PRELOGIN ENCRYPTION values.
pub const ENCRYPT_OFF: u8 = 0;
/// Encryption on.
pub const ENCRYPT_ON: u8 = 1;
/// Encryption not supported.
pub const ENCRYPT_NOT_SUP: u8 = 2;
/// Encryption required.
pub const ENCRYPT_REQ: u8 = 3;

/// TDS 7.4.
pub const TDS_VERSION: u32 = 0x7400_0004;
const PACKET_SIZE: usize = 4096;
const MAX_REPLY: usize = 1 << 20;

/// One TDS packet on the wire: 8-byte header + payload, status EOM.
pub fn packet(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(payload.len() + 8);
    let len = (payload.len() + 8) as u16;
    p.extend_from_slice(&[kind, 0x01]);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0, 1, 0]);
    p.extend_from_slice(payload);
    p
}

/// Read a whole message (packets up to the one with EOM); returns (type, payload).
pub async fn read_message<R: tokio::io::AsyncRead + Unpin + ?Sized>(
    r: &mut R,
) -> std::io::Result<Result<(u8, Vec<u8>), String>> {
    let mut payload = Vec::new();
    loop {
        let mut h = [0u8; 8];
        r.read_exact(&mut h).await?;
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if len < 8 || payload.len() + len > MAX_REPLY {
            return Ok(Err(format!(
                "not a SQL Server (packet type 0x{:02x}, length {len})",
                h[0]
            )));
        }
        let start = payload.len();
        payload.resize(start + len - 8, 0);
        r.read_exact(&mut payload[start..]).await?;
        if h[1] & 0x01 != 0 {
            return Ok(Ok((h[0], payload)));
        }
    }
}

/// The PRELOGIN options: (token, data).
pub fn prelogin_payload(options: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let table = options.len() * 5 + 1;
    let mut head = Vec::with_capacity(table);
    let mut data = Vec::new();
    for (token, value) in options {
        head.push(*token);
        head.extend_from_slice(&((table + data.len()) as u16).to_be_bytes());
        head.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
    }
    head.push(0xFF);
    head.extend_from_slice(&data);
    head
}

/// Parse PRELOGIN options.
pub fn parse_prelogin(p: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let token = *p.get(at).ok_or("PRELOGIN without a terminator")?;
        if token == 0xFF {
            return Ok(out);
        }
        let h = p.get(at + 1..at + 5).ok_or("truncated PRELOGIN option")?;
        let off = usize::from(u16::from_be_bytes([h[0], h[1]]));
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let value = p
            .get(off..off + len)
            .ok_or("PRELOGIN option out of range")?;
        out.push((token, value.to_vec()));
        at += 5;
    }
}

/// MS-TDS password obfuscation: each byte of the UTF-16LE password has its nibbles swapped
/// and is XORed with 0xA5. (Obfuscation, not encryption: hence TLS.)
pub fn obfuscate(password: &str) -> Vec<u8> {
    utf16le(password)
        .into_iter()
        .map(|b| b.rotate_left(4) ^ 0xA5)
        .collect()
}

/// The inverse of [`obfuscate`] (what a server does; for tests).
pub fn deobfuscate(bytes: &[u8]) -> String {
    let raw: Vec<u8> = bytes.iter().map(|b| (b ^ 0xA5).rotate_left(4)).collect();
    from_utf16le(&raw)
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Decode UTF-16LE (lossy).
pub fn from_utf16le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// The LOGIN7 payload for `req`.
pub fn login7(req: &LoginRequest<'_>) -> Vec<u8> {
    const FIXED: usize = 94;
    let fields: [Vec<u8>; 9] = [
        utf16le("kubectl-rotate"),           // HostName
        utf16le(req.username),               // UserName
        obfuscate(req.password),             // Password
        utf16le("kubectl-rotate-verify"),    // AppName
        utf16le(req.server_name),            // ServerName
        Vec::new(),                          // Unused / Extension
        utf16le("kubectl-rotate"),           // CltIntName (client library)
        Vec::new(),                          // Language
        utf16le(req.database.unwrap_or("")), // Database
    ];
    let mut fixed = Vec::with_capacity(FIXED);
    let total = FIXED + fields.iter().map(Vec::len).sum::<usize>();
    fixed.extend_from_slice(&(total as u32).to_le_bytes());
    fixed.extend_from_slice(&TDS_VERSION.to_le_bytes());
    fixed.extend_from_slice(&(PACKET_SIZE as u32).to_le_bytes());
    fixed.extend_from_slice(&0x0700_0000u32.to_le_bytes()); // ClientProgVer
    fixed.extend_from_slice(&std::process::id().to_le_bytes()); // ClientPID
    fixed.extend_from_slice(&0u32.to_le_bytes()); // ConnectionID
                                                  // OptionFlags1: USE_DB_ON | INIT_DB_FATAL | SET_LANG_ON; OptionFlags2: INIT_LANG_FATAL |
                                                  // ODBC_ON; TypeFlags; OptionFlags3.
    fixed.extend_from_slice(&[0xE0, 0x03, 0x00, 0x00]);
    fixed.extend_from_slice(&0i32.to_le_bytes()); // ClientTimeZone
    fixed.extend_from_slice(&0x0409u32.to_le_bytes()); // ClientLCID
    let mut data = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        fixed.extend_from_slice(&((FIXED + data.len()) as u16).to_le_bytes());
        // Lengths are in characters, except the unused/extension field (bytes).
        let len = if i == 5 { f.len() } else { f.len() / 2 };
        fixed.extend_from_slice(&(len as u16).to_le_bytes());
        data.extend_from_slice(f);
    }
    fixed.extend_from_slice(&[0; 6]); // ClientID
    let end = ((FIXED + data.len()) as u16).to_le_bytes();
    for _ in 0..3 {
        // SSPI, AtchDBFile, ChangePassword: empty.
        fixed.extend_from_slice(&end);
        fixed.extend_from_slice(&0u16.to_le_bytes());
    }
    fixed.extend_from_slice(&0u32.to_le_bytes()); // cbSSPILong
    debug_assert_eq!(fixed.len(), FIXED);
    fixed.extend_from_slice(&data);
    fixed
}

/// An ERROR or INFO token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMessage {
    /// Error number (18456, ...).
    pub number: i32,
    /// State.
    pub state: u8,
    /// Severity class.
    pub class: u8,
    /// Text.
    pub text: String,
}

/// What a LOGIN7 reply said.
#[derive(Debug, Default)]
struct Reply {
    login_ack: Option<String>,
    errors: Vec<ServerMessage>,
}

fn parse_message(b: &[u8]) -> Option<ServerMessage> {
    let number = i32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    let state = *b.get(4)?;
    let class = *b.get(5)?;
    let n = usize::from(u16::from_le_bytes(b.get(6..8)?.try_into().ok()?));
    let text = from_utf16le(b.get(8..8 + 2 * n)?);
    Some(ServerMessage {
        number,
        state,
        class,
        text,
    })
}

fn parse_reply(p: &[u8]) -> Result<Reply, String> {
    let mut r = Reply::default();
    let mut at = 0;
    while at < p.len() {
        let token = p[at];
        let u16_at = |i: usize| {
            p.get(i..i + 2)
                .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
        };
        match token {
            TOKEN_LOGINACK | TOKEN_ERROR | TOKEN_INFO | TOKEN_ENVCHANGE => {
                let len = u16_at(at + 1).ok_or("truncated token")?;
                let body = p
                    .get(at + 3..at + 3 + len)
                    .ok_or("token runs past the reply")?;
                match token {
                    TOKEN_ERROR => r.errors.extend(parse_message(body)),
                    TOKEN_LOGINACK => {
                        // Interface (1), TDSVersion (4), ProgName B_VARCHAR, ProgVersion (4).
                        let n = usize::from(*body.get(5).unwrap_or(&0));
                        let name = from_utf16le(body.get(6..6 + 2 * n).unwrap_or_default());
                        let v = body.get(6 + 2 * n..10 + 2 * n).unwrap_or(&[0, 0, 0, 0]);
                        let build = u16::from_be_bytes([v[2], v[3]]);
                        r.login_ack = Some(format!("{name} {}.{}.{build}", v[0], v[1]));
                    }
                    _ => {}
                }
                at += 3 + len;
            }
            // DONE, DONEPROC, DONEINPROC end the login reply; FEATUREEXTACK or anything
            // else we did not ask for ends our reading too.
            _ => break,
        }
    }
    Ok(r)
}

/// How the rest of the exchange is protected, from both sides' PRELOGIN ENCRYPTION values
/// (MS-TDS 2.2.6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encryption {
    /// Nothing encrypted.
    None,
    /// Only the LOGIN7 packet (client OFF, server OFF), then plain text again.
    LoginOnly,
    /// Everything after PRELOGIN.
    Full,
}

fn encryption(client: u8, server: u8) -> Result<Encryption, &'static str> {
    match (client, server) {
        (ENCRYPT_NOT_SUP, ENCRYPT_ON | ENCRYPT_REQ) => {
            Err("the server requires encryption (TLS is disabled)")
        }
        (ENCRYPT_NOT_SUP, _) | (ENCRYPT_OFF, ENCRYPT_NOT_SUP) => Ok(Encryption::None),
        (ENCRYPT_ON, ENCRYPT_NOT_SUP) => Err("the server does not support TLS"),
        (ENCRYPT_OFF, ENCRYPT_OFF) => Ok(Encryption::LoginOnly),
        _ => Ok(Encryption::Full),
    }
}

/// Send what rustls has to send: inside PRELOGIN packets during the handshake, as bare TLS
/// records after it.
async fn send_tls(conn: &mut Conn, tls: &mut ClientConnection, wrap: bool) -> Result<(), Fail> {
    let mut out = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut out)?;
    }
    if !out.is_empty() {
        conn.write_all(&if wrap { packet(PRELOGIN, &out) } else { out })
            .await?;
        conn.flush().await?;
    }
    Ok(())
}

fn feed_tls(tls: &mut ClientConnection, mut data: &[u8]) -> Result<(), Fail> {
    while !data.is_empty() {
        tls.read_tls(&mut data)?;
        tls.process_new_packets()
            .map_err(|e| Fail::Protocol(format!("TLS handshake failed: {e}")))?;
    }
    Ok(())
}

/// The TLS handshake, carried in PRELOGIN packets both ways (rustls without I/O: the
/// framing changes once the handshake is over, which a stream adapter would have to guess).
async fn tls_handshake(conn: &mut Conn, req: &LoginRequest<'_>) -> Result<ClientConnection, Fail> {
    let cfg = tls::config(req)?;
    let name = ServerName::try_from(req.server_name.to_string())
        .map_err(|_| Fail::Protocol(format!("invalid TLS server name {:?}", req.server_name)))?;
    let mut tls = ClientConnection::new(Arc::new(cfg), name)
        .map_err(|e| Fail::Protocol(format!("TLS: {e}")))?;
    loop {
        send_tls(conn, &mut tls, true).await?;
        if !tls.is_handshaking() {
            return Ok(tls);
        }
        match read_message(conn).await? {
            Ok((_, payload)) => feed_tls(&mut tls, &payload)?,
            Err(e) => return proto(e),
        }
    }
}

/// A complete message at the start of `buf` (packets up to EOM), if there is one:
/// (type, payload).
pub fn complete_message(buf: &[u8]) -> Result<Option<(u8, Vec<u8>)>, String> {
    let mut payload = Vec::new();
    let mut at = 0;
    loop {
        let Some(h) = buf.get(at..at + 8) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if len < 8 || payload.len() + len > MAX_REPLY {
            return Err(format!("bad TDS packet (length {len})"));
        }
        let Some(body) = buf.get(at + 8..at + len) else {
            return Ok(None);
        };
        payload.extend_from_slice(body);
        at += len;
        if h[1] & 0x01 != 0 {
            return Ok(Some((h[0], payload)));
        }
    }
}

/// Read one message through TLS.
async fn read_message_tls(
    conn: &mut Conn,
    tls: &mut ClientConnection,
) -> Result<(u8, Vec<u8>), Fail> {
    use std::io::Read;
    let mut plain = Vec::new();
    loop {
        if let Some(m) = complete_message(&plain).map_err(Fail::Protocol)? {
            return Ok(m);
        }
        let mut buf = [0u8; 8192];
        match tls.reader().read(&mut buf) {
            Ok(0) => return Err(Fail::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => plain.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut raw = vec![0u8; 16 * 1024];
                let n = conn.read(&mut raw).await?;
                if n == 0 {
                    return Err(Fail::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                feed_tls(tls, &raw[..n])?;
            }
            Err(e) => return Err(Fail::Io(e)),
        }
    }
}

pub(crate) async fn login(
    mut conn: Conn,
    req: &LoginRequest<'_>,
    exposure: &mut Exposure,
) -> Result<Verdict, Fail> {
    // NB: Prefer says OFF ("I can encrypt"): against a server that is OFF too, that still
    // encrypts the LOGIN7 packet, so the password never crosses in (merely obfuscated) clear.
    let ours = match req.tls {
        Tls::Disable => ENCRYPT_NOT_SUP,
        Tls::Prefer => ENCRYPT_OFF,
        Tls::Require | Tls::RequireInsecure => ENCRYPT_ON,
    };
    let pre = prelogin_payload(&[
        (0x00, vec![0x10, 0, 0, 0, 0, 0]),                 // VERSION
        (0x01, vec![ours]),                                // ENCRYPTION
        (0x02, vec![0]),                                   // INSTOPT: default instance
        (0x03, std::process::id().to_be_bytes().to_vec()), // THREADID
        (0x04, vec![0]),                                   // MARS off
    ]);
    conn.write_all(&packet(PRELOGIN, &pre)).await?;
    conn.flush().await?;
    let (kind, reply) = match read_message(&mut conn).await? {
        Ok(m) => m,
        Err(e) => return proto(e),
    };
    if kind != REPLY {
        return proto(format!("not a SQL Server (reply type 0x{kind:02x})"));
    }
    let options = parse_prelogin(&reply).map_err(Fail::Protocol)?;
    let theirs = options
        .iter()
        .find(|(t, _)| *t == 0x01)
        .and_then(|(_, v)| v.first().copied())
        .unwrap_or(ENCRYPT_NOT_SUP);
    let mode = match encryption(ours, theirs) {
        Ok(m) => m,
        Err(e) => return Ok(Verdict::error(e)),
    };
    let login = packet(LOGIN7, &login7(req));
    let (kind, reply) = if mode == Encryption::None {
        exposure.password_in_clear = true;
        conn.write_all(&login).await?;
        conn.flush().await?;
        match read_message(&mut conn).await? {
            Ok(m) => m,
            Err(e) => return proto(e),
        }
    } else {
        let mut tls = tls_handshake(&mut conn, req).await?;
        std::io::Write::write_all(&mut tls.writer(), &login)?;
        send_tls(&mut conn, &mut tls, false).await?;
        if mode == Encryption::Full {
            read_message_tls(&mut conn, &mut tls).await?
        } else {
            // Login-only encryption: the server answers in plain text; TLS is dropped
            // without close_notify, as MS-TDS has it.
            match read_message(&mut conn).await? {
                Ok(m) => m,
                Err(e) => return proto(e),
            }
        }
    };
    if kind != REPLY {
        return proto(format!("unexpected reply type 0x{kind:02x} to LOGIN7"));
    }
    let r = parse_reply(&reply).map_err(Fail::Protocol)?;
    let _ = conn.shutdown().await;
    if let Some(server) = r.login_ack {
        return Ok(Verdict::accepted(format!("authenticated to {server}")));
    }
    let describe = |e: &ServerMessage| {
        format!(
            "{} (error {}, state {}, class {})",
            e.text, e.number, e.state, e.class
        )
    };
    if let Some(e) = r.errors.iter().find(|e| e.number == LOGIN_FAILED) {
        return Ok(Verdict::rejected(LOGIN_FAILED.to_string(), describe(e)));
    }
    match r.errors.first() {
        Some(e) => Ok(Verdict::error(describe(e))),
        None => proto("the login reply has neither LOGINACK nor ERROR"),
    }
}

/// Build a token (for tests and the fake servers): ERROR/INFO.
#[doc(hidden)]
pub fn error_token(
    token: u8,
    number: i32,
    state: u8,
    class: u8,
    text: &str,
    server: &str,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&number.to_le_bytes());
    b.extend_from_slice(&[state, class]);
    b.extend_from_slice(&(text.encode_utf16().count() as u16).to_le_bytes());
    b.extend_from_slice(&utf16le(text));
    b.push(server.encode_utf16().count() as u8);
    b.extend_from_slice(&utf16le(server));
    b.push(0); // ProcName
    b.extend_from_slice(&1i32.to_le_bytes()); // LineNumber
    let mut t = vec![token];
    t.extend_from_slice(&(b.len() as u16).to_le_bytes());
    t.extend_from_slice(&b);
    t
}

/// Build a LOGINACK token (for tests and the fake servers).
#[doc(hidden)]
pub fn login_ack_token(prog: &str, version: [u8; 4]) -> Vec<u8> {
    let mut b = vec![0x01];
    b.extend_from_slice(&TDS_VERSION.to_be_bytes());
    b.push(prog.encode_utf16().count() as u8);
    b.extend_from_slice(&utf16le(prog));
    b.extend_from_slice(&version);
    let mut t = vec![TOKEN_LOGINACK];
    t.extend_from_slice(&(b.len() as u16).to_le_bytes());
    t.extend_from_slice(&b);
    t
}

/// Build a DONE token (for tests and the fake servers); status 0x02 = error.
#[doc(hidden)]
pub fn done_token(status: u16) -> Vec<u8> {
    let mut t = vec![TOKEN_DONE];
    t.extend_from_slice(&status.to_le_bytes());
    t.extend_from_slice(&0u16.to_le_bytes());
    t.extend_from_slice(&0u64.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_obfuscation_matches_ms_tds() {
        // 'a' is 0x61 0x00 in UTF-16LE: nibbles swapped 0x16 0x00, XOR 0xA5: 0xB3 0xA5.
        assert_eq!(obfuscate("a"), vec![0xB3, 0xA5]);
        assert_eq!(deobfuscate(&obfuscate("Pässw0rd!")), "Pässw0rd!");
    }

    #[test]
    fn login7_fields_point_at_their_data() {
        let req = LoginRequest {
            database: Some("master"),
            ..LoginRequest::new("sa", "Secret1!")
        };
        let p = login7(&req);
        assert_eq!(
            u32::from_le_bytes(p[..4].try_into().unwrap()) as usize,
            p.len()
        );
        let field = |i: usize| {
            let at = 36 + 4 * i;
            let off = usize::from(u16::from_le_bytes([p[at], p[at + 1]]));
            let len = usize::from(u16::from_le_bytes([p[at + 2], p[at + 3]]));
            p[off..off + 2 * len].to_vec()
        };
        assert_eq!(from_utf16le(&field(1)), "sa");
        assert_eq!(deobfuscate(&field(2)), "Secret1!");
        assert_eq!(from_utf16le(&field(8)), "master");
        assert!(!String::from_utf8_lossy(&p).contains("Secret1!"));
    }

    #[test]
    fn a_reply_with_error_18456_is_read() {
        let mut reply = error_token(
            TOKEN_ERROR,
            18456,
            1,
            14,
            "Login failed for user 'sa'.",
            "mssql",
        );
        reply.extend(done_token(2));
        let r = parse_reply(&reply).unwrap();
        assert!(r.login_ack.is_none());
        assert_eq!(r.errors[0].number, 18456);
        assert_eq!(r.errors[0].text, "Login failed for user 'sa'.");
    }

    #[test]
    fn encryption_follows_the_ms_tds_matrix() {
        use Encryption::*;
        assert_eq!(encryption(ENCRYPT_NOT_SUP, ENCRYPT_OFF), Ok(None));
        assert_eq!(encryption(ENCRYPT_NOT_SUP, ENCRYPT_NOT_SUP), Ok(None));
        assert!(encryption(ENCRYPT_NOT_SUP, ENCRYPT_REQ).is_err());
        assert!(encryption(ENCRYPT_NOT_SUP, ENCRYPT_ON).is_err());
        assert_eq!(encryption(ENCRYPT_OFF, ENCRYPT_OFF), Ok(LoginOnly));
        assert_eq!(encryption(ENCRYPT_OFF, ENCRYPT_ON), Ok(Full));
        assert_eq!(encryption(ENCRYPT_OFF, ENCRYPT_REQ), Ok(Full));
        assert_eq!(encryption(ENCRYPT_OFF, ENCRYPT_NOT_SUP), Ok(None));
        assert_eq!(encryption(ENCRYPT_ON, ENCRYPT_OFF), Ok(Full));
        assert!(encryption(ENCRYPT_ON, ENCRYPT_NOT_SUP).is_err());
    }

    #[test]
    fn prelogin_options_round_trip() {
        let opts = vec![(0x00, vec![16, 0, 0, 0, 0, 0]), (0x01, vec![ENCRYPT_OFF])];
        assert_eq!(parse_prelogin(&prelogin_payload(&opts)).unwrap(), opts);
    }
}
