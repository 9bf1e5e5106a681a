//! Credentials: a password type that never prints, engine password policies, and reading
//! current and previous credentials out of auth Secrets per the engine's key layout
//! ([`PrevLayout::current`], [`PrevLayout::previous`]).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;

use serde::Serialize;

use crate::engines::{EngineSpec, Keys, PasswordPolicy, PrevLayout};

/// What every redacted value prints as.
pub const REDACTED: &str = "********";

/// A password. Debug and Display print `********`; [`Password::expose`] is the only way to
/// the value, so every use of it is visible in review. Its memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Password {
        Password(value.into())
    }

    /// The value itself. Only for sending to the API server, never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A username and password pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The username (not secret).
    pub username: String,
    /// The password; prints as `********`.
    pub password: Password,
}

/// Secret data keys of a basic-auth Secret.
pub const USERNAME_KEY: &str = "username";
/// Secret data key of the password.
pub const PASSWORD_KEY: &str = "password";

/// A Secret's `data` as UTF-8 strings; keys whose value is not UTF-8 are left out.
pub fn decode_data(data: Option<&BTreeMap<String, ByteString>>) -> BTreeMap<String, String> {
    data.into_iter()
        .flatten()
        .filter_map(|(k, v)| String::from_utf8(v.0.clone()).ok().map(|s| (k.clone(), s)))
        .collect()
}

/// What every password given to the plugin must be, whatever the engine: not empty, no
/// control characters (NUL, line breaks, tabs: clients end or mangle strings at them), and
/// no longer than the engine takes ([`PasswordPolicy::max_len`]). Nothing is trimmed.
pub fn check_input(policy: PasswordPolicy, password: &Password) -> Result<(), String> {
    let p = password.expose();
    if p.is_empty() {
        return Err("the password is empty".into());
    }
    // NB: most clients end a string at NUL and mangle other control characters, so the
    // database could get another password than the Secret holds.
    if let Some(c) = p.chars().find(|c| c.is_control()) {
        let what = match c {
            '\0' => "a NUL byte".to_string(),
            '\n' | '\r' => "a line break".to_string(),
            '\t' => "a tab".to_string(),
            c => format!("the control character U+{:04X}", u32::from(c)),
        };
        return Err(format!(
            "the password holds {what}; use printable characters only"
        ));
    }
    let (len, max) = (p.chars().count(), policy.max_len());
    if len > max {
        return Err(format!(
            "the password has {len} characters; at most {max} are accepted"
        ));
    }
    Ok(())
}

/// Checks a password against an engine's policy; the error says what is missing, never the value.
pub fn check_policy(
    policy: PasswordPolicy,
    username: &str,
    password: &Password,
) -> Result<(), String> {
    check_input(policy, password)?;
    let p = password.expose();
    let upper = p.chars().any(|c| c.is_ascii_uppercase());
    let lower = p.chars().any(|c| c.is_ascii_lowercase());
    let digit = p.chars().any(|c| c.is_ascii_digit());
    let mixed = |who: &str| -> Result<(), String> {
        if upper && lower && digit {
            Ok(())
        } else {
            Err(format!(
                "{who} passwords need upper-case letters, lower-case letters and digits"
            ))
        }
    };
    match policy {
        PasswordPolicy::Any => Ok(()),
        PasswordPolicy::Mssql => mixed("SQL Server"),
        PasswordPolicy::Neo4j => {
            if p.chars().count() < 8 {
                Err("Neo4j passwords need at least 8 characters".into())
            } else if p == username {
                Err("Neo4j passwords must differ from the username".into())
            } else {
                Ok(())
            }
        }
        PasswordPolicy::HanaDb => {
            if !p.chars().all(|c| c.is_ascii_alphanumeric()) {
                Err("HanaDB passwords may hold ASCII letters and digits only".into())
            } else if p.len() < 8 {
                Err("HanaDB passwords need at least 8 characters".into())
            } else if !p.starts_with(|c: char| c.is_ascii_alphabetic()) {
                Err("HanaDB passwords must start with a letter".into())
            } else {
                mixed("HanaDB")
            }
        }
    }
}

/// The username an auth Secret holds now (Memcached: the user part of `authData`).
pub fn current_username(engine: &EngineSpec, data: &BTreeMap<String, String>) -> Option<String> {
    read(engine.prev.current(), data)
        .and_then(|(u, _)| u)
        .filter(|u| !u.is_empty())
}

/// Reads one credential at `keys`: `(username, password)` when its password key is there.
/// The username is `None` where the layout keeps none for it.
pub fn read(keys: Keys, data: &BTreeMap<String, String>) -> Option<(Option<String>, String)> {
    match keys {
        Keys::Split { username, password } => {
            let p = data.get(password)?;
            Some((username.and_then(|u| data.get(u)).cloned(), p.clone()))
        }
        Keys::Joined(key) => {
            let joined = data.get(key)?;
            let (u, p) = joined.split_once(':').unwrap_or(("", joined.as_str()));
            Some((Some(u.to_string()).filter(|u| !u.is_empty()), p.to_string()))
        }
    }
}

/// Whether `engine` lets a new credential use `username`, given the database's current
/// user: a fixed admin user must be kept, and some engines refuse any change. The error
/// says why (names only, never a password).
pub fn check_username(
    engine: &EngineSpec,
    username: &str,
    current: Option<&str>,
) -> Result<(), String> {
    if let Some(admin) = engine.admin_user.filter(|a| username != *a) {
        return Err(format!(
            "{} requires the username {admin:?}, not {username:?}",
            engine.kind
        ));
    }
    if let Some(current) = current.filter(|c| engine.username_immutable && username != *c) {
        return Err(format!(
            "{} cannot change its username: the database uses {current:?}, the new credential has {username:?}",
            engine.kind
        ));
    }
    Ok(())
}

/// The previous credential kept in an auth Secret after a RotateAuth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Previous {
    /// A previous credential that can be rolled back to.
    Found(Credential),
    /// None kept (no rotation happened yet, or the keys are incomplete): names what is missing.
    Missing(String),
    /// The engine keeps it in a form a basic-auth Secret cannot carry back.
    Unsupported(String),
}

/// Reads the previous credential out of an auth Secret's data, per the engine's layout.
pub fn previous(engine: &EngineSpec, data: &BTreeMap<String, String>) -> Previous {
    if engine.prev == PrevLayout::NotApplicable {
        return Previous::Unsupported(format!("{} has no auth Secret", engine.kind));
    }
    let Some(keys) = engine.prev.previous() else {
        return Previous::Unsupported(format!(
            "{} keeps no previous credential (its API keys are replaced, not kept), so there is \
             nothing to roll back to; rotate again instead",
            engine.kind
        ));
    };
    // NB: a layout without a previous username (DocumentDB) keeps the current one: its
    // username cannot change.
    let found = read(keys, data).and_then(|(u, p)| {
        let u = u.or_else(|| match keys {
            Keys::Split { username: None, .. } => data.get(USERNAME_KEY).cloned(),
            _ => None,
        })?;
        (!u.is_empty() && !p.is_empty()).then(|| Credential {
            username: u,
            password: Password::new(p),
        })
    });
    match found {
        Some(c) => Previous::Found(c),
        None => Previous::Missing(keys.describe()),
    }
}

/// `current` or `previous`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// In use now.
    Current,
    /// Kept for rollback.
    Previous,
}

impl Role {
    /// `current` / `previous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Current => "current",
            Role::Previous => "previous",
        }
    }
}

/// One credential as `prev` and `verify` show it: never printed unmasked except with
/// `prev --reveal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialView {
    /// current or previous.
    pub role: Role,
    /// The username, if the layout has one.
    pub username: Option<String>,
    /// The password (or API key); prints as `********`.
    pub password: Option<Password>,
    /// The Secret it is kept in.
    pub secret: String,
    /// The Secret keys it is read from (those present).
    pub keys: Vec<String>,
    /// When it was last rotated: in (current) or out (previous), RFC 3339.
    pub last_rotated: Option<String>,
}

/// Pairs the current and previous credentials of an auth Secret per the engine's layout
/// (pure). The note says why there is no previous one, when there is none.
pub fn pair(
    engine: &EngineSpec,
    secret: &str,
    data: &BTreeMap<String, String>,
    last_rotated: Option<String>,
) -> (Vec<CredentialView>, Option<String>) {
    let view = |role, keys: Keys| {
        let (username, password) = read(keys, data)?;
        // NB: DocumentDB keeps no previous username: the current one is it.
        let username = username.or_else(|| match keys {
            Keys::Split { username: None, .. } if engine.prev != PrevLayout::None => {
                data.get(USERNAME_KEY).cloned()
            }
            _ => None,
        });
        Some(CredentialView {
            role,
            username,
            password: Some(Password::new(password)),
            secret: secret.to_string(),
            keys: keys
                .all()
                .into_iter()
                .filter(|k| data.contains_key(*k))
                .map(str::to_string)
                .collect(),
            last_rotated: last_rotated.clone(),
        })
    };
    let current = view(Role::Current, engine.prev.current());
    let (previous, note) = match engine.prev.previous() {
        Some(keys) => (
            view(Role::Previous, keys),
            format!(
                "no previous credential kept yet: {secret} has no {}; they appear after a rotation",
                keys.describe()
            ),
        ),
        None => (
            None,
            format!(
                "{} keeps no previous credential: its API keys are replaced in place",
                engine.kind
            ),
        ),
    };
    let note = previous.is_none().then_some(note);
    (current.into_iter().chain(previous).collect(), note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;

    fn pw(s: &str) -> Password {
        Password::new(s)
    }

    #[test]
    fn a_password_never_prints_its_value() {
        let p = pw("Sup3rSecret");
        assert_eq!(format!("{p}"), REDACTED);
        assert_eq!(format!("{p:?}"), REDACTED);
        let c = Credential {
            username: "sa".into(),
            password: p,
        };
        assert!(!format!("{c:?}").contains("Sup3rSecret"));
    }

    #[test]
    fn mssql_passwords_need_upper_lower_and_digits() {
        assert!(check_policy(PasswordPolicy::Mssql, "sa", &pw("Abcdef12")).is_ok());
        let e = check_policy(PasswordPolicy::Mssql, "sa", &pw("abcdef12")).unwrap_err();
        assert!(e.contains("upper-case"), "{e}");
        assert!(!e.contains("abcdef12"));
    }

    #[test]
    fn neo4j_passwords_need_eight_characters_and_differ_from_the_user() {
        assert!(check_policy(PasswordPolicy::Neo4j, "neo4j", &pw("short")).is_err());
        assert!(check_policy(PasswordPolicy::Neo4j, "neo4jneo4j", &pw("neo4jneo4j")).is_err());
        assert!(check_policy(PasswordPolicy::Neo4j, "neo4j", &pw("longenough")).is_ok());
    }

    #[test]
    fn hanadb_passwords_are_alphanumeric_start_with_a_letter_and_mix_cases_and_digits() {
        assert!(check_policy(PasswordPolicy::HanaDb, "SYSTEM", &pw("Abcdefg1")).is_ok());
        assert!(check_policy(PasswordPolicy::HanaDb, "SYSTEM", &pw("1Abcdefg")).is_err());
        assert!(check_policy(PasswordPolicy::HanaDb, "SYSTEM", &pw("Abc-efg1")).is_err());
        assert!(check_policy(PasswordPolicy::HanaDb, "SYSTEM", &pw("Abcde1")).is_err());
        assert!(check_policy(PasswordPolicy::HanaDb, "SYSTEM", &pw("abcdefg1")).is_err());
    }

    #[test]
    fn empty_passwords_fail_every_policy() {
        assert!(check_policy(PasswordPolicy::Any, "u", &pw("")).is_err());
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn previous_credentials_are_read_per_engine_layout() {
        let pg = find("pg").unwrap();
        let d = data(&[
            ("username", "postgres"),
            ("password", "new"),
            ("username.prev", "postgres"),
            ("password.prev", "old"),
        ]);
        assert_eq!(
            previous(pg, &d),
            Previous::Found(Credential {
                username: "postgres".into(),
                password: pw("old")
            })
        );
        assert!(matches!(
            previous(pg, &data(&[("username", "postgres")])),
            Previous::Missing(_)
        ));
        let docdb = find("docdb").unwrap();
        let d = data(&[("username", "admin"), ("password.prev", "old")]);
        assert!(matches!(previous(docdb, &d), Previous::Found(c) if c.username == "admin"));
        assert!(matches!(
            previous(find("memcached").unwrap(), &d),
            Previous::Missing(_)
        ));
        let mc = data(&[
            ("authData", "admin:new"),
            ("authData.prev", "admin:old:with:colons"),
        ]);
        assert_eq!(
            previous(find("memcached").unwrap(), &mc),
            Previous::Found(Credential {
                username: "admin".into(),
                password: pw("old:with:colons")
            })
        );
        let wv = data(&[
            ("username", "admin"),
            ("username-PREV", "admin"),
            ("password-PREV", "old"),
        ]);
        assert!(
            matches!(previous(find("weaviate").unwrap(), &wv), Previous::Found(c) if c.password == pw("old"))
        );
        let qd = data(&[("api-key", "k"), ("read-only-api-key", "r")]);
        assert!(matches!(
            previous(find("qdrant").unwrap(), &qd),
            Previous::Unsupported(why) if why.contains("nothing to roll back to")
        ));
    }

    #[test]
    fn secret_data_that_is_not_utf8_is_left_out() {
        let mut m = BTreeMap::new();
        m.insert("username".to_string(), ByteString(b"sa".to_vec()));
        m.insert("bin".to_string(), ByteString(vec![0xff, 0xfe]));
        let d = decode_data(Some(&m));
        assert_eq!(d.len(), 1);
        assert_eq!(d["username"], "sa");
    }

    #[test]
    fn fixed_and_immutable_usernames_are_enforced_by_name_only() {
        let pg = find("pg").unwrap();
        assert!(check_username(pg, "postgres", Some("postgres")).is_ok());
        assert!(check_username(pg, "alice", None)
            .unwrap_err()
            .contains("\"postgres\""));
        let docdb = find("docdb").unwrap();
        assert!(check_username(docdb, "bob", Some("alice"))
            .unwrap_err()
            .contains("cannot change"));
        assert!(check_username(find("kafka").unwrap(), "anyone", Some("admin")).is_ok());
        let mc = data(&[("authData", "admin:pw")]);
        assert_eq!(
            current_username(find("mc").unwrap(), &mc).as_deref(),
            Some("admin")
        );
    }

    #[test]
    fn postgres_pairs_current_with_its_dot_prev_keys() {
        let d = data(&[
            ("username", "postgres"),
            ("password", "New1"),
            ("username.prev", "postgres"),
            ("password.prev", "Old1"),
        ]);
        let (rows, note) = pair(find("pg").unwrap(), "pg-auth", &d, Some("t".into()));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].role, Role::Current);
        assert_eq!(rows[0].password.as_ref().unwrap().expose(), "New1");
        assert_eq!(rows[1].role, Role::Previous);
        assert_eq!(rows[1].keys, vec!["username.prev", "password.prev"]);
        assert_eq!(rows[1].password.as_ref().unwrap().expose(), "Old1");
        assert!(note.is_none());
        assert!(!format!("{rows:?}").contains("Old1"), "Debug stays masked");
    }

    #[test]
    fn a_never_rotated_database_has_only_a_current_row_and_a_note() {
        let d = data(&[("username", "sa"), ("password", "P")]);
        let (rows, note) = pair(find("ms").unwrap(), "ms-auth", &d, None);
        assert_eq!(rows.len(), 1);
        assert!(note.unwrap().contains("no previous credential kept yet"));
    }

    #[test]
    fn memcached_splits_auth_data_into_user_and_password() {
        let d = data(&[("authData", "admin:New"), ("authData.prev", "admin:Old")]);
        let (rows, _) = pair(find("memcached").unwrap(), "mc-auth", &d, None);
        assert_eq!(rows[1].username.as_deref(), Some("admin"));
        assert_eq!(rows[1].password.as_ref().unwrap().expose(), "Old");
        assert_eq!(rows[1].keys, vec!["authData.prev"]);
    }

    #[test]
    fn documentdb_reuses_the_current_username_for_its_previous_password() {
        let d = data(&[
            ("username", "docdb"),
            ("password", "N"),
            ("password.prev", "O"),
        ]);
        let (rows, _) = pair(find("docdb").unwrap(), "d-admin-auth", &d, None);
        assert_eq!(rows[1].username.as_deref(), Some("docdb"));
        assert_eq!(rows[1].keys, vec!["password.prev"]);
    }

    #[test]
    fn qdrant_says_it_keeps_no_previous_credential() {
        let d = data(&[("api-key", "k"), ("read-only-api-key", "r")]);
        let (rows, note) = pair(find("qdrant").unwrap(), "q-auth", &d, None);
        assert_eq!(rows.len(), 1);
        assert!(note.unwrap().contains("keeps no previous credential"));
    }
}
