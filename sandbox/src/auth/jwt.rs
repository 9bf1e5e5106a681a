//! Signed JSON Web Tokens in the compact form kube-apiserver's service account token
//! issuer writes (RFC 7515): `base64url(header).base64url(claims).base64url(signature)`,
//! no padding, header `{"alg":"ES256","kid":"..."}`.
//!
//! The sandbox signs with an ECDSA P-256 key generated at start (ES256), one of the two key
//! types kube-apiserver's `--service-account-signing-key-file` takes (RSA gives RS256); the
//! key id is kube-apiserver's: base64url of the SHA-256 of the DER public key.
//! [`Signer::verify`] checks the shape and the signature only; what the claims must say is
//! [`super::serviceaccounts`]'s business.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{json, Value};

/// What go-jose says of a signature that does not verify (the error a TokenReview reports).
pub const BAD_SIGNATURE: &str = "go-jose/go-jose: error in cryptographic primitive";

/// The DER SubjectPublicKeyInfo prefix of an uncompressed P-256 point (id-ecPublicKey,
/// prime256v1): with the 65-byte point after it, the PKIX form the key id is a hash of.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The service account token signing key of one sandbox.
pub struct Signer {
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish()
    }
}

impl Signer {
    /// A fresh P-256 key.
    ///
    /// # Panics
    /// When the system's random source fails (ring cannot make a key without one).
    pub fn generate() -> Signer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("the system random source works");
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .expect("a key ring just generated parses");
        let spki = [&P256_SPKI_PREFIX[..], key.public_key().as_ref()].concat();
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        Signer { key, kid, rng }
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A signed token carrying `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // NB: signing only fails when the random source does, as generating the key would.
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()))
            .unwrap_or_default();
        format!("{input}.{sig}")
    }

    /// The claims of a token: `None` when it is not a JWT at all (three base64url parts,
    /// JSON header and claims), so other authenticators may have it; `Err` when it is one
    /// but the signature is not this key's.
    pub fn verify(&self, token: &str) -> Option<Result<Value, &'static str>> {
        let claims = unverified_claims(token)?;
        let (input, sig) = token.rsplit_once('.')?;
        let alg_ok = parse_part(input.split('.').next()?)?["alg"] == "ES256";
        let sig = URL_SAFE_NO_PAD.decode(sig).ok();
        let public = UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        );
        let verified = alg_ok && sig.is_some_and(|s| public.verify(input.as_bytes(), &s).is_ok());
        Some(if verified {
            Ok(claims)
        } else {
            Err(BAD_SIGNATURE)
        })
    }
}

/// The claims of anything shaped as a JWT, signature unchecked (kube-apiserver reads the
/// issuer this way to pick the authenticator that checks it).
pub fn unverified_claims(token: &str) -> Option<Value> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, _sig] = parts.as_slice() else {
        return None;
    };
    parse_part(header)?;
    parse_part(claims).filter(Value::is_object)
}

fn parse_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let s = Signer::generate();
        let t = s.sign(&json!({"sub": "x"}));
        assert_eq!(t.split('.').count(), 3);
        assert_eq!(s.kid().len(), 43, "base64url of 32 bytes");
        assert_eq!(s.verify(&t), Some(Ok(json!({"sub": "x"}))));
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(json!({"sub": "y"}).to_string())
        );
        assert_eq!(s.verify(&forged), Some(Err(BAD_SIGNATURE)));
        let other = Signer::generate().sign(&json!({"sub": "x"}));
        assert_eq!(s.verify(&other), Some(Err(BAD_SIGNATURE)));
        assert_eq!(s.verify("sandbox-admin-token"), None);
        assert_eq!(s.verify("a.b.c"), None);
    }
}
