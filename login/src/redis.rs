//! Redis RESP `AUTH` (Redis, Valkey, KeyDB, and Redis Sentinel's own port).
//!
//! `AUTH password` for the default user, `AUTH username password` for an ACL user (Redis
//! 6+). `+OK` is Accepted. Redis errors start with an upper-case code word: `WRONGPASS`
//! (Redis 6+) is Rejected; before Redis 6 the only code was `ERR`, and `ERR invalid
//! password` is Rejected too (code `ERR`; the one place we must read the text, since that
//! server gives no better code). Everything else (a server with no password configured,
//! `DENIED` in protected mode, `NOPERM`) is an Error.
//!
//! TLS starts with the first byte: `Require` and `RequireInsecure` use it, `Disable` and
//! `Prefer` do not (there is nothing to negotiate).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{proto, tls, Conn, Exposure, Fail, LoginRequest, Tls, Verdict};

const MAX_LINE: usize = 64 * 1024;

/// The `AUTH` command as a RESP array (binary-safe: any byte may be in a password).
pub fn auth_command(username: &str, password: &str) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"AUTH"];
    if !username.is_empty() && username != "default" {
        args.push(username.as_bytes());
    }
    args.push(password.as_bytes());
    let mut m = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        m.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        m.extend_from_slice(a);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// Read one `\r\n`-terminated line (without the terminator).
async fn read_line(conn: &mut Conn) -> Result<Vec<u8>, Fail> {
    let mut line = Vec::new();
    loop {
        let b = conn.read_u8().await?;
        if b == b'\n' && line.last() == Some(&b'\r') {
            line.pop();
            return Ok(line);
        }
        line.push(b);
        if line.len() > MAX_LINE {
            return proto("not a Redis server (reply line too long)");
        }
    }
}

/// The verdict for one reply line to `AUTH`.
pub(crate) fn verdict(line: &[u8]) -> Result<Verdict, Fail> {
    let text = String::from_utf8_lossy(line.get(1..).unwrap_or_default()).into_owned();
    match line.first() {
        Some(b'+') => Ok(Verdict::accepted(text)),
        Some(b'-') => {
            let code = text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            let rest = text[code.len()..].trim_start();
            Ok(match code.as_str() {
                "WRONGPASS" => Verdict::rejected(code, text.clone()),
                "ERR" if rest.starts_with("invalid password") => {
                    Verdict::rejected(code, text.clone())
                }
                "ERR"
                    if rest.contains("no password is set")
                        || rest.contains("without any password configured") =>
                {
                    Verdict::error(format!("the server has no password configured: {text}"))
                }
                _ => Verdict::error(text.clone()),
            })
        }
        _ => proto(format!(
            "not a Redis server (unexpected reply {:?})",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        )),
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
    conn.write_all(&auth_command(req.username, req.password))
        .await?;
    conn.flush().await?;
    let line = read_line(&mut conn).await?;
    let v = verdict(&line)?;
    if v.result == crate::LoginResult::Accepted {
        let _ = conn.write_all(b"*1\r\n$4\r\nQUIT\r\n").await;
        let _ = conn.shutdown().await;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoginResult;

    #[test]
    fn auth_names_a_user_only_when_it_is_not_the_default_one() {
        assert_eq!(auth_command("", "pw"), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
        assert_eq!(auth_command("default", "pw"), auth_command("", "pw"));
        assert_eq!(
            auth_command("app", "p w"),
            b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$3\r\np w\r\n"
        );
    }

    #[test]
    fn replies_map_by_their_error_code() {
        let r = |l: &[u8]| verdict(l).unwrap().result;
        assert_eq!(r(b"+OK"), LoginResult::Accepted);
        assert_eq!(
            r(b"-WRONGPASS invalid username-password pair or user is disabled."),
            LoginResult::Rejected {
                code: "WRONGPASS".into()
            }
        );
        assert_eq!(
            r(b"-ERR invalid password"),
            LoginResult::Rejected { code: "ERR".into() }
        );
        let v = verdict(b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?").unwrap();
        assert_eq!(v.result, LoginResult::Error);
        assert!(v
            .detail
            .starts_with("the server has no password configured"));
        assert_eq!(
            r(b"-DENIED Redis is running in protected mode"),
            LoginResult::Error
        );
        assert!(verdict(b"HTTP/1.1 400 Bad Request").is_err());
    }

    /// Redis 7's own answers, recorded by login/tests/record.rs.
    #[tokio::test]
    async fn the_live_servers_recorded_logins_replay_to_the_same_verdicts() {
        use crate::recording::{assert_replays, recorded};
        let pw = "Rd-Record-7j4m";
        let wrongpass = || LoginResult::Rejected {
            code: "WRONGPASS".into(),
        };
        assert_replays(
            crate::Protocol::Redis,
            &[
                (recorded!("redis-accepted"), "", pw, LoginResult::Accepted),
                (recorded!("redis-wrong-password"), "", "not-it", wrongpass()),
                (recorded!("redis-unknown-user"), "nobody", pw, wrongpass()),
                // NB: the TLS port closes a connection whose first bytes are no
                // ClientHello, without a word.
                (
                    recorded!("redis-tls-required"),
                    "",
                    pw,
                    LoginResult::Unreachable,
                ),
            ],
        )
        .await;
    }
}
