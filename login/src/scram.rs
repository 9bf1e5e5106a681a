//! SCRAM client (RFC 5802, RFC 7677) for PostgreSQL and MongoDB, without channel binding.
//!
//! NB: the password is used as its UTF-8 bytes, without SASLprep; that is what SASLprep
//! yields for printable ASCII, which is what generated passwords are made of.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Largest iteration count accepted from a server (a hostile one could ask for billions).
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SCRAM-SHA-1 (MongoDB users created before 4.0).
    Sha1,
    /// SCRAM-SHA-256.
    Sha256,
}

impl Hash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha1 => "SCRAM-SHA-1",
            Hash::Sha256 => "SCRAM-SHA-256",
        }
    }
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("any key size");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key size");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }
    fn h(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// Keys derived from a password, salt and iteration count (what a server stores).
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    client_key: Vec<u8>,
}

impl Keys {
    /// Derive the keys (RFC 5802 section 3).
    pub fn derive(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Keys {
        let salted = hash.hi(password, salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        Keys {
            stored_key: hash.h(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
            client_key,
        }
    }
}

/// Errors in a SCRAM exchange; none of them contains secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The server's message is malformed or breaks the protocol.
    Protocol(String),
    /// The server ended the exchange with `e=...`.
    Server(String),
    /// The server's signature is wrong: it does not know the password (or is an impostor).
    BadServerSignature,
}

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramError::Protocol(m) => write!(f, "SCRAM protocol error: {m}"),
            ScramError::Server(m) => write!(f, "SCRAM error from the server: {m}"),
            ScramError::BadServerSignature => {
                f.write_str("the server's SCRAM signature is wrong (it does not know the password)")
            }
        }
    }
}

/// Escape a user name for `n=` (RFC 5802: `=` as `=3D`, `,` as `=2C`).
pub fn escape_username(u: &str) -> String {
    u.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
thread_local! {
    /// The nonce a replayed exchange was recorded with ([`crate::recording`]).
    pub(crate) static FIXED_NONCE: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// A fresh client nonce: 18 random bytes from the OS, base64 (printable, no commas).
pub fn nonce() -> String {
    use rand::TryRng;
    #[cfg(test)]
    if let Some(n) = FIXED_NONCE.with(|n| n.borrow().clone()) {
        return n;
    }
    let mut b = [0u8; 18];
    // NB: if the OS cannot give randomness there is no safe nonce; a fixed fallback would
    // make the exchange replayable, so panic (it does not happen on supported systems).
    rand::rngs::SysRng
        .try_fill_bytes(&mut b)
        .expect("the OS random generator failed");
    B64.encode(b)
}

/// One SCRAM client conversation.
pub struct Client {
    hash: Hash,
    client_first_bare: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("scram::Client")
            .field("hash", &self.hash)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

/// GS2 header: no channel binding, no authzid.
const GS2: &str = "n,,";

impl Client {
    /// Start a conversation for `username` (already escaped if the protocol wants one;
    /// PostgreSQL sends an empty one) with `nonce`.
    pub fn new(hash: Hash, username: &str, nonce: String) -> Client {
        Client {
            hash,
            client_first_bare: format!("n={username},r={nonce}"),
            nonce,
            server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("{GS2}{}", self.client_first_bare)
    }

    /// Answer the server-first message with the client-final one (carrying the proof).
    pub fn client_final(
        &mut self,
        password: &[u8],
        server_first: &str,
    ) -> Result<String, ScramError> {
        let bad = |m: &str| ScramError::Protocol(m.to_string());
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(ScramError::Server(v.to_string())),
                // "m" is reserved for mandatory extensions we do not know.
                Some(("m", _)) => return Err(bad("the server requires an unknown extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| bad("server-first has no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(bad("the server's nonce does not extend ours"));
        }
        let salt = B64
            .decode(salt.ok_or_else(|| bad("server-first has no salt"))?)
            .map_err(|_| bad("the salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or_else(|| bad("server-first has no iteration count"))?
            .parse()
            .map_err(|_| bad("the iteration count is not a number"))?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(bad("the iteration count is out of range"));
        }
        let keys = Keys::derive(self.hash, password, &salt, iterations);
        let without_proof = format!("c={},r={nonce}", B64.encode(GS2));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        self.server_signature = Some(self.hash.hmac(&keys.server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Check the server-final message: the server proves it knows the password too.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), ScramError> {
        let expected = self
            .server_signature
            .as_ref()
            .ok_or_else(|| ScramError::Protocol("server-final before client-final".into()))?;
        for part in server_final.split(',') {
            match part.split_once('=') {
                Some(("e", v)) => return Err(ScramError::Server(v.to_string())),
                Some(("v", v)) => {
                    let got = B64.decode(v).map_err(|_| {
                        ScramError::Protocol("the server signature is not base64".into())
                    })?;
                    return if &got == expected {
                        Ok(())
                    } else {
                        Err(ScramError::BadServerSignature)
                    };
                }
                _ => {}
            }
        }
        Err(ScramError::Protocol("server-final has no signature".into()))
    }
}

/// The server side of one exchange, for tests of the protocol clients (the fake MongoDB
/// server verifies the client's proof with it).
#[doc(hidden)]
pub mod server {
    use super::*;

    /// Build server-first for a client-first message; returns (server-first, client nonce).
    pub fn first(client_first: &str, server_nonce: &str, salt: &[u8], i: u32) -> String {
        let bare = client_first.strip_prefix(GS2).unwrap_or(client_first);
        let cnonce = bare
            .split(',')
            .find_map(|p| p.strip_prefix("r="))
            .unwrap_or_default();
        format!("r={cnonce}{server_nonce},s={},i={i}", B64.encode(salt))
    }

    /// Verify client-final; `Ok(server-final)` when the proof is right.
    pub fn verify(
        hash: Hash,
        keys: &Keys,
        client_first: &str,
        server_first: &str,
        client_final: &str,
    ) -> Result<String, String> {
        let bare = client_first.strip_prefix(GS2).ok_or("bad gs2 header")?;
        let (without_proof, proof) = client_final.rsplit_once(",p=").ok_or("no proof")?;
        let proof = B64.decode(proof).map_err(|_| "proof not base64")?;
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let signature = hash.hmac(&keys.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if hash.h(&client_key) != keys.stored_key {
            return Err("invalid-proof".into());
        }
        let v = hash.hmac(&keys.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_sha_256_matches_the_rfc_7677_test_vector() {
        let mut c = Client::new(Hash::Sha256, "user", "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            c.client_final(b"pencil", server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(
            c.verify_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjRl4YE="),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn scram_sha_1_matches_the_rfc_5802_test_vector() {
        let mut c = Client::new(Hash::Sha1, "user", "fyko+d2lbbFgONRv9qkxdawL".into());
        let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        assert_eq!(
            c.client_final(b"pencil", server_first).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        c.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .unwrap();
    }

    #[test]
    fn a_server_nonce_that_does_not_extend_ours_is_refused() {
        let mut c = Client::new(Hash::Sha256, "", "abc".into());
        assert!(c
            .client_final(b"pw", "r=xyz123,s=QSXCR+Q6sek8bf92,i=4096")
            .is_err());
        assert!(c
            .client_final(b"pw", "r=abc,s=QSXCR+Q6sek8bf92,i=4096")
            .is_err());
        assert!(c
            .client_final(b"pw", "r=abcdef,s=QSXCR+Q6sek8bf92,i=999999999")
            .is_err());
    }

    #[test]
    fn the_test_server_accepts_the_right_proof_only() {
        let salt = b"0123456789abcdef";
        let keys = Keys::derive(Hash::Sha256, b"right", salt, 4096);
        for (pw, ok) in [(&b"right"[..], true), (&b"wrong"[..], false)] {
            let mut c = Client::new(Hash::Sha256, "u", nonce());
            let sf = server::first(&c.client_first(), "SRV", salt, 4096);
            let cf = c.client_final(pw, &sf).unwrap();
            let res = server::verify(Hash::Sha256, &keys, &c.client_first(), &sf, &cf);
            assert_eq!(res.is_ok(), ok);
            if let Ok(v) = res {
                c.verify_server_final(&v).unwrap();
            }
        }
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
    }
}
