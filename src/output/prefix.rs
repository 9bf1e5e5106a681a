//! The stderr lines of several contexts on one stream: each line is written whole, led by
//! its context's name in brackets (`[prod] pg-demo-rotate-auth-1a2b3: Progressing`), so the
//! lines of contexts that run at once stay readable where they interleave. Brackets, not a
//! colon: context names often hold colons themselves (EKS's are ARNs).

use std::io::{self, Write};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use super::table::printable;
use crate::context::LogSink;

/// What a context's lines start with: `[NAME] `.
pub fn tag(context: &str) -> String {
    format!("[{}] ", printable(context))
}

/// A writer that leads every line with `[context] ` and hands each line, whole, to the
/// writer under it. A line left unfinished is finished when the writer is dropped.
pub struct Prefixed<W: Write> {
    tag: Vec<u8>,
    inner: W,
    partial: Vec<u8>,
}

impl<W: Write> Prefixed<W> {
    /// The lines of `context`, into `inner`.
    pub fn new(context: &str, inner: W) -> Prefixed<W> {
        Prefixed {
            tag: tag(context).into_bytes(),
            inner,
            partial: Vec::new(),
        }
    }

    /// Writes the line held so far, led by the tag, in one write.
    fn emit(&mut self) -> io::Result<()> {
        let mut line = self.tag.clone();
        line.append(&mut self.partial);
        self.inner.write_all(&line)?;
        self.inner.flush()
    }
}

impl<W: Write> Write for Prefixed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..=i]);
            self.emit()?;
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    // NB: an unfinished line stays held: written now, another context's line could land in
    // its middle.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for Prefixed<W> {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.partial.push(b'\n');
            let _ = self.emit();
        }
    }
}

/// A writer behind a lock: each write holds it alone, so the whole line a [`Prefixed`]
/// hands it is never cut into.
pub struct Locked<M>(pub M);

impl<M, W> Write for Locked<M>
where
    M: Deref<Target = Mutex<W>>,
    W: Write + ?Sized,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// The command's stderr, shared by the contexts.
pub type Shared<'m, 'w> = Locked<&'m Mutex<&'w mut (dyn Write + Send)>>;

/// The `-v` sink of one context: its lines tagged, into the command's sink.
pub fn log_sink(context: &str, sink: &LogSink) -> LogSink {
    Arc::new(Mutex::new(Prefixed::new(context, Locked(sink.clone()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_tagged_whole_however_it_was_written() {
        let mut out = Vec::new();
        {
            let mut p = Prefixed::new("prod", &mut out);
            write!(p, "one\ntw").unwrap();
            p.write_all(b"o\n").unwrap();
            write!(p, "unfinished").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[prod] one\n[prod] two\n[prod] unfinished\n"
        );
    }

    #[test]
    fn lines_of_two_contexts_on_one_stream_do_not_cut_into_each_other() {
        let mut buf: Vec<u8> = Vec::new();
        {
            let w: &mut (dyn Write + Send) = &mut buf;
            let shared = Mutex::new(w);
            let mut a = Prefixed::new("a", Locked(&shared));
            let mut b = Prefixed::new("b\u{1b}", Locked(&shared));
            write!(a, "first ").unwrap();
            writeln!(b, "other").unwrap();
            writeln!(a, "half").unwrap();
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "[b\\u{1b}] other\n[a] first half\n"
        );
    }
}
