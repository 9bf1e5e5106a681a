//! `TYPE/NAME` parsing and kind resolution against the engine table.

use std::fmt;

use crate::cli::{SelectArgs, TargetArgs};
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

/// What a rotation acts on: named objects, or every object a selection matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// One or more named objects in the namespace, in the order given, without repeats.
    Named(Vec<Target>),
    /// Every object of these kinds, in the namespace or in all of them, optionally only
    /// those matching a label selector.
    Matching {
        /// The kinds to look at (all the plugin knows, for `--all` without TYPE).
        engines: Vec<&'static EngineSpec>,
        /// `-l`.
        selector: Option<String>,
        /// `-A`.
        all_namespaces: bool,
    },
}

impl Selection {
    /// Checks the selection flags (pure: before any API call). Follows kubectl's rules:
    /// `TYPE/NAME ...` or `TYPE NAME ...`, names exclude `-l`, `--all` and `-A`.
    pub fn parse(args: &SelectArgs) -> Result<Selection> {
        let selecting = args.all || args.all_namespaces || args.selector.is_some();
        if let Some(sel) = &args.selector {
            check_selector(sel)?;
        }
        let (typ, names): (Option<&str>, Vec<&str>) = match args.targets.as_slice() {
            [] => (None, vec![]),
            [first, ..] if first.contains('/') => {
                (None, args.targets.iter().map(String::as_str).collect())
            }
            [first, rest @ ..] => (
                Some(first.as_str()),
                rest.iter().map(String::as_str).collect(),
            ),
        };
        if names.is_empty() {
            if !selecting {
                return Err(Error::Usage(match typ {
                    Some(t) => format!(
                        "name the {t} to act on ({t}/NAME), or select with --all, -l or -A"
                    ),
                    None => "name a database (TYPE/NAME, e.g. pg/pg-demo), or select with --all, -l or -A".into(),
                }));
            }
            let engines = match typ {
                Some(t) => vec![resolve_type(t)?],
                None => engines::ENGINES.iter().collect(),
            };
            return Ok(Selection::Matching {
                engines,
                selector: args.selector.clone(),
                all_namespaces: args.all_namespaces,
            });
        }
        if selecting {
            return Err(Error::Usage(if args.all_namespaces {
                "a database cannot be named across all namespaces: drop -A, or drop the names"
                    .into()
            } else {
                "give names or a selection (--all, -l), not both".into()
            }));
        }
        let mut targets: Vec<Target> = Vec::new();
        for n in names {
            let t = match typ {
                Some(_) if n.contains('/') => {
                    return Err(Error::Usage(format!(
                        "{n:?}: give either TYPE/NAME ... or TYPE NAME ..., not both"
                    )))
                }
                Some(typ) => Target::parse(&TargetArgs {
                    target: typ.into(),
                    name: Some(n.into()),
                })?,
                None => Target::parse(&TargetArgs {
                    target: n.into(),
                    name: None,
                })?,
            };
            if !targets
                .iter()
                .any(|x| x.engine == t.engine && x.name == t.name)
            {
                targets.push(t);
            }
        }
        Ok(Selection::Named(targets))
    }

    /// The one named target, if that is all there is.
    pub fn single(&self) -> Option<&Target> {
        match self {
            Selection::Named(t) if t.len() == 1 => t.first(),
            _ => None,
        }
    }
}

/// Checks a label selector against Kubernetes' grammar (apimachinery `labels.Parse`), so a
/// selector the API server would reject is a usage error before any request: comma-separated
/// requirements `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)`,
/// `key notin (a,b)`; keys `[prefix/]name` (prefix a DNS subdomain, name at most 63
/// characters of letters, digits, `-`, `_`, `.`, starting and ending alphanumeric); values
/// the same as names, or empty.
pub fn check_selector(selector: &str) -> Result<()> {
    let bad = |why: String| {
        Error::Usage(format!(
            "invalid label selector {selector:?}: {why} (e.g. team=payments,tier!=dev)"
        ))
    };
    if selector.trim().is_empty() {
        return Err(Error::Usage("-l/--selector is empty".into()));
    }
    let requirements = rotate_selector::parse(selector).map_err(|e| {
        bad(format!(
            "`{}` is not a requirement (key, !key, key=value, key!=value, key in (a,b), key notin (a,b))",
            e.requirement
        ))
    })?;
    for r in &requirements {
        rotate_selector::check_key(r.key()).map_err(bad)?;
        for v in r.values() {
            rotate_selector::check_value(v).map_err(bad)?;
        }
    }
    Ok(())
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

    fn select(args: &[&str]) -> Result<Selection> {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(
            ["kubectl-rotate", "auth"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap();
        let crate::cli::Command::Auth(a) = cli.command else {
            panic!()
        };
        Selection::parse(&a.targets)
    }

    #[test]
    fn several_targets_are_named_in_either_kubectl_form_without_repeats() {
        let Selection::Named(t) = select(&["pg/a", "ms/b", "postgres/a"]).unwrap() else {
            panic!()
        };
        let got: Vec<String> = t
            .iter()
            .map(|t| format!("{}/{}", t.engine.kind, t.name))
            .collect();
        assert_eq!(got, ["Postgres/a", "MSSQLServer/b"]);
        let Selection::Named(t) = select(&["pg", "a", "b"]).unwrap() else {
            panic!()
        };
        assert_eq!(t.len(), 2);
        assert!(select(&["pg/a"]).unwrap().single().is_some());
    }

    #[test]
    fn all_selects_every_kind_and_a_type_narrows_it() {
        let Selection::Matching {
            engines,
            all_namespaces,
            selector,
        } = select(&["--all"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(engines.len(), engines::ENGINES.len());
        assert!(!all_namespaces && selector.is_none());
        let Selection::Matching {
            engines, selector, ..
        } = select(&["pg", "-l", "team=a"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(engines.len(), 1);
        assert_eq!(selector.as_deref(), Some("team=a"));
        assert!(matches!(
            select(&["-A"]).unwrap(),
            Selection::Matching {
                all_namespaces: true,
                ..
            }
        ));
    }

    #[test]
    fn names_mixed_with_a_selection_or_missing_altogether_are_usage_errors() {
        for args in [
            &["pg"][..],
            &["pg/a", "--all"],
            &["pg/a", "-A"],
            &["pg", "a", "-l", "x=y"],
            &["pg", "ms/b"],
            &["pg/a", "-l", " "],
        ] {
            let e = select(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
        assert!(select(&["pg/a", "-A"])
            .unwrap_err()
            .to_string()
            .contains("across all namespaces"));
    }

    #[test]
    fn label_selectors_follow_the_kubernetes_grammar() {
        for good in [
            "team=payments",
            "team==payments,tier!=dev",
            "app.kubernetes.io/name=pg",
            "env in (prod, staging),!legacy",
            "tier notin (dev)",
            "team",
            "team=",
            "kubedb.com/role=primary",
        ] {
            assert!(check_selector(good).is_ok(), "{good}");
        }
        for bad in [
            "!!!",
            "team=pay ments",
            "-team=a",
            "team=a,",
            "Bad_Prefix!/x=y",
            "env in prod",
            "x=-y",
            &format!("k={}", "v".repeat(64)),
        ] {
            let e = check_selector(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("invalid label selector"), "{e}");
        }
    }
}
