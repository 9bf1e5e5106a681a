//! Printing `verify`: CREDENTIAL, USERNAME, RESULT, DETAIL, LATENCY (`-o wide` adds CODE,
//! EXPECTED, VIA and TLS); JSON and YAML print the whole report; `-o name` the database. No
//! password is in a report, so none can be printed.

use std::io::Write;
use std::time::Duration;

use super::table::{Sheet, NONE};
use super::{to_json, to_yaml, Style};
use crate::cli::Format;
use crate::error::{Error, Result};
use crate::verify::VerifyReport;

/// A latency as the LATENCY column shows it: `12ms`, `1.25s`.
pub fn latency(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if d < Duration::from_secs(1) {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Prints a verification report to `out` and its notes to `err`.
pub fn report(
    r: &VerifyReport,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let format = style.format;
    match format {
        Format::Table | Format::Wide => style.sheet(out, &sheet(r, format == Format::Wide))?,
        Format::Json => writeln!(out, "{}", to_json(&value(r)?)?)?,
        Format::Yaml => write!(out, "{}", to_yaml(&value(r)?)?)?,
        Format::Name => writeln!(out, "{}", r.subject.object_name())?,
    }
    notes(r, err)
}

/// The attempts as a table; `-o wide` adds CODE, EXPECTED, VIA and TLS (the mode the
/// logins ran under: `require` verified the server's certificate).
pub(super) fn sheet(r: &VerifyReport, wide: bool) -> Sheet {
    let mut headers = vec!["CREDENTIAL", "USERNAME", "RESULT", "DETAIL", "LATENCY"];
    if wide {
        headers.extend(["CODE", "EXPECTED", "VIA", "TLS"]);
    }
    let cell = |s: &str| {
        if s.is_empty() {
            NONE.to_string()
        } else {
            s.to_string()
        }
    };
    let rows = r
        .attempts
        .iter()
        .map(|a| {
            let mut row = vec![
                a.credential.as_str().to_string(),
                cell(&a.username),
                a.result.clone(),
                cell(&a.detail),
                latency(a.latency_ms),
            ];
            if wide {
                row.push(cell(a.code.as_deref().unwrap_or("")));
                row.push(a.expected.clone());
                row.push(r.via.clone());
                row.push(r.tls.clone());
            }
            row
        })
        .collect();
    Sheet { headers, rows }
}

/// The notes of a verification (why a credential was not tried), on stderr.
pub(super) fn notes(r: &VerifyReport, err: &mut dyn Write) -> Result<()> {
    for n in &r.notes {
        writeln!(err, "note: {n}")?;
    }
    Ok(())
}

/// The one-line verdict of a verification that passed, on stderr.
pub fn summary(r: &VerifyReport, err: &mut dyn Write) -> Result<()> {
    writeln!(err, "{}", r.summary())?;
    Ok(())
}

pub(super) fn value(r: &VerifyReport) -> Result<serde_json::Value> {
    serde_json::to_value(r).map_err(|e| Error::Unexpected(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;
    use crate::report::Role;
    use crate::verify::{self, Attempt, Tls};
    use rotate_login::{LoginResult, Outcome};

    fn sample() -> VerifyReport {
        let mut r = verify::report(
            "demo",
            find("pg").unwrap(),
            "pg-demo",
            rotate_login::Protocol::Postgres,
            "pod/pg-demo-0:5432".into(),
            Tls::Prefer,
        );
        let o = |result, detail: &str, ms| Outcome {
            result,
            detail: detail.into(),
            latency: Duration::from_millis(ms),
            password_in_clear: false,
        };
        r.attempts = vec![
            Attempt::new(
                Role::Current,
                "postgres",
                &o(LoginResult::Accepted, "authenticated", 12),
            ),
            Attempt::new(
                Role::Previous,
                "postgres",
                &o(
                    LoginResult::Rejected {
                        code: "28P01".into(),
                    },
                    "FATAL: password authentication failed for user \"postgres\"",
                    1500,
                ),
            ),
        ];
        r
    }

    fn printed(format: Format) -> String {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        report(&sample(), format.into(), &mut out, &mut err).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_table_has_kubectls_look_and_the_servers_own_message() {
        let header = format!(
            "CREDENTIAL   USERNAME   RESULT     {:<57}   LATENCY",
            "DETAIL"
        );
        let current = format!(
            "current      postgres   accepted   {:<57}   12ms",
            "authenticated"
        );
        let previous = "previous     postgres   rejected   FATAL: password authentication failed for user \"postgres\"   1.50s";
        assert_eq!(
            printed(Format::Table),
            format!("{header}\n{current}\n{previous}\n")
        );
        let wide = printed(Format::Wide);
        assert!(
            wide.lines()
                .next()
                .unwrap()
                .ends_with("LATENCY   CODE     EXPECTED   VIA                  TLS"),
            "{wide}"
        );
        assert!(
            wide.contains("28P01    rejected   pod/pg-demo-0:5432   prefer"),
            "{wide}"
        );
    }

    #[test]
    fn json_is_a_login_verification_document_and_name_the_database() {
        let v: serde_json::Value = serde_json::from_str(&printed(Format::Json)).unwrap();
        assert_eq!(v["kind"], "LoginVerification");
        assert_eq!(v["attempts"][1]["code"], "28P01");
        assert_eq!(v["attempts"][0]["latencyMs"], 12);
        assert_eq!(v["via"], "pod/pg-demo-0:5432");
        assert_eq!(printed(Format::Name), "postgres.kubedb.com/pg-demo\n");
    }
}
