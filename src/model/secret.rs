//! A Secret as `list` sees it: name, type, creation time, the NAMES of its keys, and the
//! earliest certificate expiry in `tls.crt` / `ca.crt`. Values are skipped while decoding,
//! never copied: a LIST of Secrets never leaves a password in this process's memory.

use std::fmt;

use base64::Engine as _;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::Meta;
use crate::engines::PrevLayout;
use crate::tls::Expiry;

/// The keys of a Secret's `data` (values dropped), and the earliest certificate expiry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeysOnly {
    /// Key names, in the server's order.
    pub keys: Vec<String>,
    /// Earliest `notAfter` of the certificates in `tls.crt` and `ca.crt`, if any.
    pub cert_not_after: Option<jiff::Timestamp>,
}

impl<'de> Deserialize<'de> for KeysOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeysOnly;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Secret's data map")
            }
            fn visit_unit<E>(self) -> Result<KeysOnly, E> {
                Ok(KeysOnly::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeysOnly, A::Error> {
                let mut out = KeysOnly::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "tls.crt" || key == "ca.crt" {
                        // Certificates are public: decode them for their expiry.
                        let b64: String = map.next_value()?;
                        let pem = base64::engine::general_purpose::STANDARD
                            .decode(b64.trim())
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok());
                        if let Some(t) = pem.as_deref().and_then(crate::tls::earliest_not_after) {
                            out.cert_not_after = Some(out.cert_not_after.map_or(t, |o| o.min(t)));
                        }
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                    out.keys.push(key);
                }
                Ok(out)
            }
        }
        d.deserialize_option(OptionMap(V))
    }
}

/// Accepts `null` as well as a map (a Secret without data).
struct OptionMap<V>(V);

impl<'de, V: Visitor<'de, Value = KeysOnly>> Visitor<'de> for OptionMap<V> {
    type Value = KeysOnly;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }
    fn visit_none<E>(self) -> Result<KeysOnly, E> {
        Ok(KeysOnly::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<KeysOnly, D::Error> {
        d.deserialize_map(self.0)
    }
}

/// A Secret without its values.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SecretSummary {
    /// Name, namespace, creation time.
    pub metadata: Meta,
    /// `kubernetes.io/basic-auth`, `kubernetes.io/tls`, `Opaque`, ...
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Key names and certificate expiry.
    pub data: KeysOnly,
}

impl SecretSummary {
    /// Whether it holds `key`.
    pub fn has(&self, key: &str) -> bool {
        self.data.keys.iter().any(|k| k == key)
    }

    /// Whether it keeps a previous credential, per the engine's layout (key names only):
    /// whether the previous password's key is there. `None` when the layout keeps none.
    pub fn keeps_previous(&self, layout: PrevLayout) -> Option<bool> {
        if layout == PrevLayout::NotApplicable {
            return None;
        }
        layout.previous().map(|keys| self.has(keys.password_key()))
    }
}

/// The earliest certificate expiry among the named Secrets that exist and hold one.
pub fn earliest_expiry<'a>(
    names: &[String],
    lookup: impl Fn(&str) -> Option<&'a SecretSummary>,
    now: jiff::Timestamp,
) -> Option<Expiry> {
    names
        .iter()
        .filter_map(|n| Some((n, lookup(n)?.data.cert_not_after?)))
        .min_by_key(|(_, t)| *t)
        .map(|(n, t)| Expiry::at(n, t, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(v: serde_json::Value) -> SecretSummary {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn values_are_dropped_and_only_key_names_kept() {
        let s = summary(json!({
            "metadata": {"name": "pg-auth", "namespace": "demo"},
            "type": "kubernetes.io/basic-auth",
            "data": {"username": "cG9zdGdyZXM=", "password": "c2VjcmV0", "password.prev": "b2xk", "username.prev": "cG9zdGdyZXM="}
        }));
        assert_eq!(
            s.data.keys,
            vec!["username", "password", "password.prev", "username.prev"]
        );
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
        assert_eq!(s.keeps_previous(PrevLayout::UserPass), Some(true));
        assert_eq!(s.keeps_previous(PrevLayout::MemcachedAuthData), Some(false));
        assert_eq!(s.keeps_previous(PrevLayout::None), None);
    }

    #[test]
    fn a_secret_without_data_has_no_keys() {
        assert!(summary(json!({"metadata": {"name": "x"}}))
            .data
            .keys
            .is_empty());
        assert!(summary(json!({"metadata": {"name": "x"}, "data": null}))
            .data
            .keys
            .is_empty());
    }

    #[test]
    fn a_weaviate_secret_keeps_its_previous_keys_under_prev_suffixes() {
        let s = summary(json!({"data": {"username": "", "password": "", "password-PREV": ""}}));
        assert_eq!(s.keeps_previous(PrevLayout::PrevSuffix), Some(true));
    }
}
