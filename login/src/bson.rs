//! Just enough BSON for MongoDB's `hello`, `saslStart` and `saslContinue`: encode the types
//! we send, decode every type a server may put in a reply (the ones we do not use are kept
//! as raw bytes so a document still round-trips).

/// A BSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Bson {
    /// 0x01
    Double(f64),
    /// 0x02
    String(String),
    /// 0x03
    Document(Document),
    /// 0x04
    Array(Vec<Bson>),
    /// 0x05: subtype and bytes.
    Binary(u8, Vec<u8>),
    /// 0x08
    Bool(bool),
    /// 0x0A
    Null,
    /// 0x10
    Int32(i32),
    /// 0x12
    Int64(i64),
    /// Any other type: its type byte and raw value bytes (ObjectId, DateTime, Timestamp...).
    Other(u8, Vec<u8>),
}

impl Bson {
    /// The value as a number, if it is one (MongoDB sends `ok` as a double or an int).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Bson::Double(d) => Some(*d),
            Bson::Int32(i) => Some(f64::from(*i)),
            Bson::Int64(i) => Some(*i as f64),
            Bson::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Bson::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A BSON document: ordered keys (MongoDB reads the command name from the first one).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Document(pub Vec<(String, Bson)>);

/// A decoding failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed BSON: {}", self.0)
    }
}

fn err<T>(m: &str) -> Result<T, DecodeError> {
    Err(DecodeError(m.to_string()))
}

impl Document {
    /// An empty document.
    pub fn new() -> Self {
        Document(Vec::new())
    }
    /// Append a field (builder style).
    pub fn with(mut self, key: &str, value: Bson) -> Self {
        self.0.push((key.to_string(), value));
        self
    }
    /// The first field called `key`.
    pub fn get(&self, key: &str) -> Option<&Bson> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Encode as BSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0; 4];
        for (k, v) in &self.0 {
            encode_element(&mut out, k, v);
        }
        out.push(0);
        let len = (out.len() as i32).to_le_bytes();
        out[..4].copy_from_slice(&len);
        out
    }

    /// Decode one document that fills `b` exactly.
    pub fn decode(b: &[u8]) -> Result<Document, DecodeError> {
        let (d, used) = decode_document(b)?;
        if used != b.len() {
            return err("trailing bytes after the document");
        }
        Ok(d)
    }
}

fn cstring(out: &mut Vec<u8>, s: &str) {
    // NB: a key with a NUL would end early; our keys are constants.
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn encode_element(out: &mut Vec<u8>, key: &str, v: &Bson) {
    let ty = match v {
        Bson::Double(_) => 0x01,
        Bson::String(_) => 0x02,
        Bson::Document(_) => 0x03,
        Bson::Array(_) => 0x04,
        Bson::Binary(..) => 0x05,
        Bson::Bool(_) => 0x08,
        Bson::Null => 0x0A,
        Bson::Int32(_) => 0x10,
        Bson::Int64(_) => 0x12,
        Bson::Other(t, _) => *t,
    };
    out.push(ty);
    cstring(out, key);
    match v {
        Bson::Double(d) => out.extend_from_slice(&d.to_le_bytes()),
        Bson::String(s) => {
            out.extend_from_slice(&(s.len() as i32 + 1).to_le_bytes());
            cstring(out, s);
        }
        Bson::Document(d) => out.extend_from_slice(&d.encode()),
        Bson::Array(a) => {
            let d = Document(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v.clone()))
                    .collect(),
            );
            out.extend_from_slice(&d.encode());
        }
        Bson::Binary(sub, b) => {
            out.extend_from_slice(&(b.len() as i32).to_le_bytes());
            out.push(*sub);
            out.extend_from_slice(b);
        }
        Bson::Bool(b) => out.push(u8::from(*b)),
        Bson::Null => {}
        Bson::Int32(i) => out.extend_from_slice(&i.to_le_bytes()),
        Bson::Int64(i) => out.extend_from_slice(&i.to_le_bytes()),
        Bson::Other(_, raw) => out.extend_from_slice(raw),
    }
}

fn i32_at(b: &[u8], at: usize) -> Result<i32, DecodeError> {
    match b.get(at..at + 4) {
        Some(s) => Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        None => err("truncated"),
    }
}

fn cstr_at(b: &[u8], at: usize) -> Result<(String, usize), DecodeError> {
    let rest = b.get(at..).unwrap_or_default();
    let n = rest
        .iter()
        .position(|x| *x == 0)
        .ok_or_else(|| DecodeError("unterminated key".into()))?;
    Ok((String::from_utf8_lossy(&rest[..n]).into_owned(), at + n + 1))
}

/// Length of a BSON string value (int32 length + bytes) starting at `at`.
fn string_len(b: &[u8], at: usize) -> Result<usize, DecodeError> {
    let n = i32_at(b, at)?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .map(|n| 4 + n)
        .ok_or_else(|| DecodeError("bad string length".into()))
}

fn decode_document(b: &[u8]) -> Result<(Document, usize), DecodeError> {
    let len = usize::try_from(i32_at(b, 0)?).map_err(|_| DecodeError("negative length".into()))?;
    if len < 5 || len > b.len() || b[len - 1] != 0 {
        return err("bad document length");
    }
    let b = &b[..len];
    let mut at = 4;
    let mut fields = Vec::new();
    while at < len - 1 {
        let ty = b[at];
        let (key, start) = cstr_at(b, at + 1)?;
        let size = match ty {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            0x02 | 0x0D | 0x0E => string_len(b, start)?,
            0x03 | 0x04 | 0x0F => usize::try_from(i32_at(b, start)?)
                .map_err(|_| DecodeError("negative length".into()))?,
            0x05 => {
                5 + usize::try_from(i32_at(b, start)?)
                    .map_err(|_| DecodeError("negative length".into()))?
            }
            0x06 | 0x0A | 0x7F | 0xFF => 0,
            0x07 => 12,
            0x08 => 1,
            0x0B => {
                let (_, e1) = cstr_at(b, start)?;
                let (_, e2) = cstr_at(b, e1)?;
                e2 - start
            }
            0x0C => string_len(b, start)? + 12,
            0x10 => 4,
            0x13 => 16,
            other => return err(&format!("unknown type 0x{other:02x}")),
        };
        let raw = b
            .get(start..start + size)
            .ok_or_else(|| DecodeError("value runs past the document".into()))?;
        let value = match ty {
            0x01 => Bson::Double(f64::from_le_bytes(raw.try_into().expect("8 bytes"))),
            0x02 => Bson::String(String::from_utf8_lossy(&raw[4..raw.len() - 1]).into_owned()),
            0x03 => Bson::Document(decode_document(raw)?.0),
            0x04 => Bson::Array(
                decode_document(raw)?
                    .0
                     .0
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            ),
            0x05 => Bson::Binary(raw[4], raw[5..].to_vec()),
            0x08 => Bson::Bool(raw[0] != 0),
            0x0A => Bson::Null,
            0x10 => Bson::Int32(i32::from_le_bytes(raw.try_into().expect("4 bytes"))),
            0x12 => Bson::Int64(i64::from_le_bytes(raw.try_into().expect("8 bytes"))),
            t => Bson::Other(t, raw.to_vec()),
        };
        fields.push((key, value));
        at = start + size;
    }
    Ok((Document(fields), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_round_trips() {
        let d = Document::new()
            .with("saslStart", Bson::Int32(1))
            .with("mechanism", Bson::String("SCRAM-SHA-256".into()))
            .with("payload", Bson::Binary(0, b"n,,n=u,r=abc".to_vec()))
            .with(
                "options",
                Bson::Document(Document::new().with("skipEmptyExchange", Bson::Bool(true))),
            )
            .with(
                "mechs",
                Bson::Array(vec![Bson::String("a".into()), Bson::Null]),
            )
            .with("ok", Bson::Double(1.0))
            .with("n", Bson::Int64(-5))
            .with("id", Bson::Other(0x07, vec![7; 12]))
            .with("$db", Bson::String("admin".into()));
        assert_eq!(Document::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn the_bson_spec_hello_world_example_decodes() {
        // From bsonspec.org: {"hello": "world"}.
        let b = b"\x16\x00\x00\x00\x02hello\x00\x06\x00\x00\x00world\x00\x00";
        let d = Document::decode(b).unwrap();
        assert_eq!(d.get("hello").and_then(Bson::as_str), Some("world"));
        assert_eq!(d.encode(), b);
    }

    #[test]
    fn truncated_or_lying_documents_are_refused() {
        let b = Document::new()
            .with("a", Bson::String("xyz".into()))
            .encode();
        assert!(Document::decode(&b[..b.len() - 1]).is_err());
        let mut lying = b.clone();
        lying[7] = 0x7f; // string length far past the end
        assert!(Document::decode(&lying).is_err());
        assert!(Document::decode(b"\x05\x00\x00\x00\x01").is_err());
    }
}
