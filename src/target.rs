//! `TYPE/NAME` parsing and kind resolution against the engine table.

use std::fmt;

use crate::cli::TargetArgs;
use crate::engines::{self, EngineSpec};
use crate::error::{Error, Result};

/// A checked target: a known engine and a valid object name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The engine row.
    pub engine: &'static EngineSpec,
    /// The object's name.
    pub name: String,
    /// The TYPE as the user typed it (kept for messages and hints: `pg/pg-demo`).
    pub typed: String,
}

impl fmt::Display for Target {
    /// `pg/pg-demo`, in the user's own words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.typed, self.name)
    }
}

impl Target {
    /// Parses `TYPE/NAME` or `TYPE NAME` and resolves TYPE in the engine table.
    pub fn parse(args: &TargetArgs) -> Result<Target> {
        let (typ, name) = match (args.target.split_once('/'), &args.name) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage(format!(
                    "give either TYPE/NAME or TYPE NAME, not both: {:?} {:?}",
                    args.target,
                    args.name.as_deref().unwrap_or_default()
                )));
            }
            (Some((t, n)), None) => (t, n),
            (None, Some(n)) => (args.target.as_str(), n.as_str()),
            (None, None) => {
                return Err(Error::Usage(format!(
                    "{:?} is not TYPE/NAME: name the object, e.g. pg/pg-demo or sqlmi/sqlmi-demo",
                    args.target
                )));
            }
        };
        let engine = resolve_type(typ)?;
        validate_name(name)?;
        Ok(Target {
            engine,
            name: name.to_string(),
            typed: typ.to_string(),
        })
    }
}

/// Finds the engine for a TYPE: kind, plural, singular or short name, any case, optionally
/// qualified by its group (`postgreses.kubedb.com`, `sqlmi.sql.arcdata.microsoft.com`).
pub fn resolve_type(typ: &str) -> Result<&'static EngineSpec> {
    if typ.is_empty() {
        return Err(Error::Usage("TYPE is empty: use e.g. pg/pg-demo".into()));
    }
    let found = match typ.split_once('.') {
        Some((word, group)) => engines::find(word).filter(|e| e.group.eq_ignore_ascii_case(group)),
        None => engines::find(typ),
    };
    found.ok_or_else(|| {
        Error::Usage(format!(
            "unknown TYPE {typ:?}: use one of sqlmi, pg, ms, my, md, mg, es, rd, ... (kind, plural or \
             short name; see `kubectl rotate auth --help`)"
        ))
    })
}

/// Checks a Kubernetes object name (DNS-1123 subdomain), so bad input never reaches the server.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid name {name:?}: a Kubernetes name is lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(t: &str, n: Option<&str>) -> TargetArgs {
        TargetArgs {
            target: t.into(),
            name: n.map(Into::into),
        }
    }

    #[test]
    fn type_slash_name_resolves_short_names_and_kinds() {
        let t = Target::parse(&args("sqlmi/sqlmi-demo", None)).unwrap();
        assert_eq!(t.engine.kind, "SqlManagedInstance");
        assert_eq!(t.name, "sqlmi-demo");
        assert_eq!(t.to_string(), "sqlmi/sqlmi-demo");
        assert_eq!(
            Target::parse(&args("MSSQLServer/mssql-demo", None))
                .unwrap()
                .engine
                .kind,
            "MSSQLServer"
        );
        assert_eq!(
            Target::parse(&args("pg", Some("pg-demo")))
                .unwrap()
                .engine
                .kind,
            "Postgres"
        );
    }

    #[test]
    fn a_group_qualified_type_must_match_the_group() {
        assert_eq!(
            resolve_type("postgreses.kubedb.com").unwrap().kind,
            "Postgres"
        );
        assert_eq!(
            resolve_type("sqlmi.sql.arcdata.microsoft.com")
                .unwrap()
                .kind,
            "SqlManagedInstance"
        );
        assert!(resolve_type("postgreses.example.com").is_err());
    }

    #[test]
    fn bad_targets_are_usage_errors() {
        for (t, n) in [
            ("pg", None),
            ("pg/", None),
            ("/pg-demo", None),
            ("pods/x", None),
            ("pg/PG_Demo", None),
            ("pg/x", Some("y")),
            ("pg/-x", None),
        ] {
            let e = Target::parse(&args(t, n)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{t} {n:?}: {e}");
        }
    }
}
