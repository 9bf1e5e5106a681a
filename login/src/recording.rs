//! Recorded login exchanges: what a live server and this crate's client said to each other,
//! byte for byte, and a stream that plays the server's side back.
//!
//! `login/tests/record.rs` records them from the live PostgreSQL, MariaDB and Redis the
//! tests start (accepted, wrong password, unknown user, TLS required) into
//! `login/recordings/`; each protocol module's unit tests replay those files, so a change
//! to a protocol client is checked against the real servers' bytes without starting one.
//!
//! The format is text: one chunk per line, `C <hex>` for what the client sent and
//! `S <hex>` for what the server answered; `#` lines are comments. An exchange that ends
//! with the server closing the connection simply ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Who sent a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client (this crate).
    Client,
    /// The server.
    Server,
}

/// One exchange, in the order it happened; adjacent chunks of one side are merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recording {
    /// The chunks.
    pub chunks: Vec<(Side, Vec<u8>)>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Recording {
    /// Adds what `side` sent, merged into the last chunk when that side sent it too.
    pub fn push(&mut self, side: Side, bytes: &[u8]) {
        match self.chunks.last_mut() {
            Some((s, b)) if *s == side => b.extend_from_slice(bytes),
            _ => self.chunks.push((side, bytes.to_vec())),
        }
    }

    /// The text form, after `comment` lines.
    pub fn to_text(&self, comment: &str) -> String {
        let mut out: String = comment.lines().map(|l| format!("# {l}\n")).collect();
        for (side, b) in &self.chunks {
            let tag = if *side == Side::Client { 'C' } else { 'S' };
            out.push_str(&format!("{tag} {}\n", hex(b)));
        }
        out
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Recording, String> {
        let mut r = Recording::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (tag, h) = line
                .split_once(' ')
                .ok_or_else(|| format!("line {}: no chunk", n + 1))?;
            let side = match tag {
                "C" => Side::Client,
                "S" => Side::Server,
                _ => return Err(format!("line {}: {tag:?} is neither C nor S", n + 1)),
            };
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(h.get(i..i + 2).unwrap_or("x"), 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| format!("line {}: not hex", n + 1))?;
            r.push(side, &bytes);
        }
        Ok(r)
    }

    /// The turns: which side spoke, in order (what a fresh recording of the same server
    /// must still show, whatever its random salts and nonces).
    pub fn turns(&self) -> Vec<Side> {
        self.chunks.iter().map(|(s, _)| *s).collect()
    }

    /// The SCRAM client nonce the client sent (`r=` of its client-first message), if any:
    /// a replay must reuse it, since the server's answers extend it.
    pub fn scram_nonce(&self) -> Option<String> {
        self.chunks
            .iter()
            .filter(|(s, _)| *s == Side::Client)
            .find_map(|(_, b)| {
                let text = String::from_utf8_lossy(b);
                let first = &text[text.find("n,,n=")?..];
                let r = &first[first.find(",r=")? + 3..];
                let end = r
                    .find(|c: char| c == ',' || !c.is_ascii_graphic())
                    .unwrap_or(r.len());
                Some(r[..end].to_string())
            })
    }
}

/// A stream that plays a [`Recording`]'s server side to a client: reads give the server's
/// chunks once the client has sent everything recorded before them, and a write that
/// differs from the recording fails with what differed. After the last chunk it reads as
/// closed.
pub struct Replay {
    chunks: Vec<(Side, Vec<u8>)>,
    at: usize,
    offset: usize,
}

impl Replay {
    /// Plays `r`.
    pub fn new(r: &Recording) -> Replay {
        Replay {
            chunks: r.chunks.clone(),
            at: 0,
            offset: 0,
        }
    }

    fn advance(&mut self, n: usize) {
        self.offset += n;
        if self.offset == self.chunks[self.at].1.len() {
            self.at += 1;
            self.offset = 0;
        }
    }
}

fn diverged(msg: String) -> std::io::Error {
    std::io::Error::other(format!("replay: {msg}"))
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        match me.chunks.get(me.at) {
            None => Poll::Ready(Ok(())),
            Some((Side::Client, b)) => Poll::Ready(Err(diverged(format!(
                "the client waits for the server, but the recording has it send {} more bytes \
                 (chunk {})",
                b.len() - me.offset,
                me.at
            )))),
            Some((Side::Server, b)) => {
                let n = buf.remaining().min(b.len() - me.offset);
                buf.put_slice(&b[me.offset..me.offset + n]);
                me.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let Some((Side::Client, want)) = me.chunks.get(me.at) else {
            return Poll::Ready(Err(diverged(format!(
                "the client sent {} where the recording has none (chunk {})",
                hex(&buf[..buf.len().min(32)]),
                me.at
            ))));
        };
        let want = &want[me.offset..];
        let n = buf.len().min(want.len());
        if let Some(d) = (0..n).find(|&i| buf[i] != want[i]) {
            let end = n.min(d + 16);
            return Poll::Ready(Err(diverged(format!(
                "the client sent {} where the recording has {} (chunk {}, byte {})",
                hex(&buf[d..end]),
                hex(&want[d..end]),
                me.at,
                me.offset + d
            ))));
        }
        me.advance(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Replays the recording `text` to the `protocol` client logging in with `req`, reusing
/// the recorded SCRAM nonce, and returns its verdict.
#[cfg(test)]
pub(crate) async fn replay(
    protocol: crate::Protocol,
    text: &str,
    req: &crate::LoginRequest<'_>,
) -> crate::Outcome {
    let r = Recording::parse(text).expect("a recording");
    crate::scram::FIXED_NONCE.with(|n| *n.borrow_mut() = r.scram_nonce());
    let out = crate::login(protocol, Replay::new(&r), req).await;
    crate::scram::FIXED_NONCE.with(|n| *n.borrow_mut() = None);
    out
}

/// A recording of `login/recordings/`, by name.
#[cfg(test)]
macro_rules! recorded {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/recordings/",
                $name,
                ".txt"
            )),
        )
    };
}
#[cfg(test)]
pub(crate) use recorded;

/// Replays each `(name, text)` recording with its user and password, and checks the
/// verdict is `want` and the one the recording was made with (its `# verdict:` line, the
/// server's own words included).
#[cfg(test)]
pub(crate) async fn assert_replays(
    protocol: crate::Protocol,
    cases: &[((&str, &str), &str, &str, crate::LoginResult)],
) {
    for ((name, text), user, password, want) in cases {
        let req = crate::LoginRequest {
            tls: crate::Tls::Disable,
            server_name: "127.0.0.1",
            ..crate::LoginRequest::new(user, password)
        };
        let out = replay(protocol, text, &req).await;
        assert_eq!(&out.result, want, "{name}: {out:?}");
        let recorded = text
            .lines()
            .find_map(|l| l.strip_prefix("# verdict: "))
            .unwrap_or_else(|| panic!("{name} has no verdict line"));
        assert_eq!(
            format!("{}: {}", out.result, out.detail),
            recorded,
            "{name}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips_and_finds_the_scram_nonce() {
        let mut r = Recording::default();
        r.push(Side::Client, b"p\0\0\0\x10SCRAM n,,n=,r=abc+/9");
        r.push(Side::Client, b"\x01");
        r.push(Side::Server, b"R\0");
        let text = r.to_text("a test\nof two lines");
        assert!(text.starts_with("# a test\n# of two lines\nC 70"), "{text}");
        assert_eq!(Recording::parse(&text).unwrap(), r);
        assert_eq!(r.turns(), [Side::Client, Side::Server]);
        assert_eq!(r.scram_nonce().as_deref(), Some("abc+/9"));
        assert!(Recording::parse("X 00").is_err());
        assert!(Recording::parse("C 0g").is_err());
    }

    #[tokio::test]
    async fn a_replay_answers_what_was_recorded_and_refuses_what_was_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let r = Recording::parse("C 6869\nS 6f6b\n").unwrap();
        let mut s = Replay::new(&r);
        s.write_all(b"hi").await.unwrap();
        let mut b = [0u8; 8];
        let n = s.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"ok");
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            0,
            "closed after the last chunk"
        );
        let mut s = Replay::new(&r);
        let e = s.write_all(b"ho").await.unwrap_err();
        assert!(
            e.to_string()
                .contains("6f where the recording has 69 (chunk 0, byte 1)"),
            "{e}"
        );
        let mut s = Replay::new(&r);
        assert!(s.read(&mut b).await.is_err(), "the client must speak first");
    }
}
