//! Kubernetes label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`), in one place for
//! the plugin, which refuses a selector the API server would reject before any request,
//! and the sandbox, which parses and matches them as the API server does.

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Eq(String, String),
    /// `key!=value`.
    Ne(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

impl Requirement {
    /// The label key it is about.
    pub fn key(&self) -> &str {
        match self {
            Requirement::Eq(k, _)
            | Requirement::Ne(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::NotExists(k) => k,
        }
    }

    /// The values it names.
    pub fn values(&self) -> Vec<&str> {
        match self {
            Requirement::Eq(_, v) | Requirement::Ne(_, v) => vec![v.as_str()],
            Requirement::In(_, vs) | Requirement::NotIn(_, vs) => {
                vs.iter().map(String::as_str).collect()
            }
            Requirement::Exists(_) | Requirement::NotExists(_) => vec![],
        }
    }

    /// Whether labels (`get` answers a key's value) satisfy it.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::Ne(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// A requirement that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The requirement, as written (trimmed).
    pub requirement: String,
}

fn split_top(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn set_values(rest: &str) -> Option<Vec<String>> {
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

/// Parses a selector into its requirements; an empty selector has none (selects all).
/// Keys and values are not checked here: see [`check_key`] and [`check_value`].
pub fn parse(s: &str) -> Result<Vec<Requirement>, SyntaxError> {
    let mut reqs = vec![];
    if s.trim().is_empty() {
        return Ok(reqs);
    }
    for part in split_top(s) {
        let p = part.trim();
        let bad = || SyntaxError {
            requirement: p.to_string(),
        };
        if let Some(k) = p.strip_prefix('!') {
            reqs.push(Requirement::NotExists(k.trim().into()));
        } else if let Some((k, v)) = p.split_once("!=") {
            reqs.push(Requirement::Ne(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once("==") {
            reqs.push(Requirement::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once('=') {
            reqs.push(Requirement::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            reqs.push(Requirement::NotIn(
                k.trim().into(),
                set_values(rest).ok_or_else(bad)?,
            ));
        } else if let Some((k, rest)) = p.split_once(" in ") {
            reqs.push(Requirement::In(
                k.trim().into(),
                set_values(rest).ok_or_else(bad)?,
            ));
        } else if !p.is_empty() && !p.contains(' ') && !p.contains('(') {
            reqs.push(Requirement::Exists(p.into()));
        } else {
            return Err(bad());
        }
    }
    Ok(reqs)
}

/// A label name or value: at most 63 characters of letters, digits, `-`, `_` and `.`,
/// beginning and ending with a letter or digit.
fn name_ok(s: &str) -> bool {
    s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks a label key: `[prefix/]name`, the prefix a DNS subdomain, the name as
/// [`check_value`] but not empty.
pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let dns = p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !dns {
            return Err(format!("the key prefix {p:?} is not a DNS subdomain"));
        }
    }
    if name.is_empty() || !name_ok(name) {
        return Err(format!("{key:?} is not a valid label key"));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of letters, digits, `-`, `_` and
/// `.`, beginning and ending with a letter or digit.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || name_ok(value) {
        Ok(())
    } else {
        Err(format!("{value:?} is not a valid label value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_in_the_servers_order_of_operators() {
        assert_eq!(
            parse("a=b,c!=d,e in (x, y),f notin (z),g,!h").unwrap(),
            vec![
                Requirement::Eq("a".into(), "b".into()),
                Requirement::Ne("c".into(), "d".into()),
                Requirement::In("e".into(), vec!["x".into(), "y".into()]),
                Requirement::NotIn("f".into(), vec!["z".into()]),
                Requirement::Exists("g".into()),
                Requirement::NotExists("h".into()),
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse("team in a").unwrap_err().requirement,
            "team in a".to_string()
        );
        assert!(parse("a=b,").is_err(), "an empty requirement");
    }

    #[test]
    fn keys_and_values_follow_the_label_rules() {
        assert!(check_key("app.kubernetes.io/name").is_ok());
        assert!(check_key("-team").is_err());
        assert!(check_key("Bad_Prefix!/x").is_err());
        assert!(check_value("").is_ok());
        assert!(check_value("pay ments").is_err());
        assert!(check_value(&"v".repeat(64)).is_err());
    }
}
