//! Printing the inspection verbs: `prev`, `status`, `history`, `list`. Tables follow
//! kubectl (no borders, upper-case headers, `-o wide` adds columns); `status` reads like
//! `kubectl describe`. Passwords print as `********` in every format; `prev --reveal` is
//! the only way to their values, and it says so on stderr.

use std::io::Write;

use serde_json::{json, Value};

use super::table::{Sheet, NONE};
use super::{to_json, to_yaml, Style};
use crate::cli::Format;
use crate::cmd::list::{ListPlan, ListReport};
use crate::creds::{Password, REDACTED};
use crate::duration::human_secs;
use crate::engines::KUBEDB_OPS_GROUP;
use crate::error::{Error, Result};
use crate::model::ago;
use crate::report::{
    object_name, ConsumersReport, CredentialRow, HistoryReport, Meta, PrevKept, PrevReport,
    StatusReport, API_VERSION,
};

/// What stderr says before `--reveal` prints values.
pub const REVEAL_WARNING: &str =
    "Warning: --reveal prints credentials in clear text; they may end up in your terminal's scrollback and logs";

pub(super) fn or_none(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| NONE.into())
}

pub(super) fn emit(v: &Value, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Yaml => write!(out, "{}", to_yaml(v)?)?,
        _ => writeln!(out, "{}", to_json(v)?)?,
    }
    Ok(())
}

/// Each of `warnings` on stderr, as kubectl prints its own.
pub(super) fn warn(err: &mut dyn Write, warnings: &[String]) -> Result<()> {
    for w in warnings {
        writeln!(err, "Warning: {w}")?;
    }
    Ok(())
}

pub(super) fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Unexpected(e.to_string()))
}

/// `key:   value` lines with the values aligned, as `kubectl describe` prints them.
fn fields(out: &mut dyn Write, rows: &[(&str, String)]) -> Result<()> {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (k, v) in rows {
        let key = format!("{k}:");
        writeln!(out, "{}", format!("{key:<width$}   {v}").trim_end())?;
    }
    Ok(())
}

/// A password as printed: masked, or with `--reveal` the value.
fn shown(p: Option<&Password>, reveal: bool) -> String {
    match (p, reveal) {
        // NB: the one place a credential value reaches output, and only with --reveal.
        (Some(p), true) => p.expose().to_string(),
        (Some(_), false) => REDACTED.into(),
        (None, _) => NONE.into(),
    }
}

/// `prev`'s credentials as a table.
pub(super) fn prev_sheet(r: &PrevReport, reveal: bool) -> Sheet {
    let now = jiff::Timestamp::now();
    let rows = r
        .credentials
        .iter()
        .map(|c| {
            vec![
                c.role.as_str().to_string(),
                or_none(c.username.as_deref()),
                shown(c.password.as_ref(), reveal),
                c.secret.clone(),
                if c.keys.is_empty() {
                    NONE.into()
                } else {
                    c.keys.join(",")
                },
                or_none(c.last_rotated.as_deref()),
                match &c.last_rotated {
                    Some(t) => ago(Some(t), now),
                    None => NONE.into(),
                },
            ]
        })
        .collect();
    Sheet {
        headers: vec![
            "ROLE",
            "USERNAME",
            "PASSWORD",
            "SECRET",
            "KEYS",
            "LAST ROTATED",
            "AGE",
        ],
        rows,
    }
}

/// The line under `prev`'s table about Arc's service-managed credentials generation.
pub(super) fn generation_line(r: &PrevReport) -> Option<String> {
    let g = r.generation.as_ref()?;
    let previous = g
        .previous
        .map(|p| p.to_string())
        .unwrap_or_else(|| "none (no rollback allowed now)".into());
    let changed = g
        .changed_at
        .as_deref()
        .map(|t| format!("; changed {t}"))
        .unwrap_or_default();
    Some(format!(
        "Service-managed credentials generation: {} (previous: {previous}{changed})",
        g.current
    ))
}

/// `prev`'s `-o json|yaml` document.
pub(super) fn prev_document(r: &PrevReport, reveal: bool) -> Result<Value> {
    let creds: Vec<Value> = r
        .credentials
        .iter()
        .map(|c| {
            json!({
                "role": c.role,
                "username": c.username,
                "password": c.password.as_ref().map(|p| shown(Some(p), reveal)),
                "secret": c.secret,
                "keys": c.keys,
                "lastRotated": c.last_rotated,
            })
        })
        .collect();
    let mut v = json!({
        "apiVersion": API_VERSION,
        "kind": "PreviousCredentials",
        "metadata": Meta { name: &r.name, namespace: &r.namespace },
        "targetKind": r.target_kind,
        "targetGroup": r.target_group,
        "credentials": creds,
    });
    if let Some(g) = &r.generation {
        v["generation"] = to_value(g)?;
    }
    if let Some(n) = &r.note {
        v["note"] = json!(n);
    }
    Ok(v)
}

/// Prints `prev`.
pub fn prev(
    r: &PrevReport,
    style: Style,
    reveal: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let format = style.format;
    if reveal {
        writeln!(err, "{REVEAL_WARNING}")?;
    }
    match format {
        Format::Table | Format::Wide => {
            style.sheet(out, &prev_sheet(r, reveal))?;
            if let Some(line) = generation_line(r) {
                writeln!(out, "\n{line}")?;
            }
        }
        Format::Json | Format::Yaml => emit(&prev_document(r, reveal)?, format, out)?,
        Format::Name => {
            let mut secrets: Vec<&str> = r.credentials.iter().map(|c| c.secret.as_str()).collect();
            secrets.dedup();
            for s in secrets {
                writeln!(out, "secret/{s}")?;
            }
        }
    }
    if let (Some(note), Format::Table | Format::Wide) = (&r.note, format) {
        writeln!(err, "Note: {note}")?;
    }
    Ok(())
}

/// Prints `status`.
pub fn status(r: &StatusReport, style: Style, out: &mut dyn Write) -> Result<()> {
    let format = style.format;
    match format {
        Format::Json | Format::Yaml => emit(&to_value(r)?, format, out),
        Format::Name => {
            let name = match &r.request {
                Some(q) => object_name(&q.kind, KUBEDB_OPS_GROUP, &q.name),
                None => r.subject.object_name(),
            };
            writeln!(out, "{name}")?;
            Ok(())
        }
        Format::Table | Format::Wide => describe(r, style, None, out),
    }
}

/// `status` as `kubectl describe` reads, led by `Context:` when `context` is given.
pub(super) fn describe(
    r: &StatusReport,
    style: Style,
    context: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let now = jiff::Timestamp::now();
    let mut f: Vec<(&str, String)> = context
        .map(|c| ("Context", c.to_string()))
        .into_iter()
        .collect();
    f.extend([
        ("Name", r.subject.name.clone()),
        ("Namespace", r.subject.namespace.clone()),
        ("Kind", r.subject.target_kind.clone()),
    ]);
    let tls = r
        .tls
        .as_ref()
        .map(|e| format!("{} in secret {}", e.cell(), e.secret))
        .unwrap_or_else(|| NONE.into());
    if let Some(a) = &r.arc {
        f.push(("State", or_none(Some(&a.state))));
        f.push(("Message", or_none(a.message.as_deref())));
        f.push((
            "Credentials generation",
            a.credentials_generation.to_string(),
        ));
        f.push((
            "Generation",
            format!(
                "{} (observed {})",
                a.generation,
                a.observed_generation
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
        ));
        f.push((
            "In flight",
            if a.in_flight {
                format!(
                    "yes: the controller is applying generation {}",
                    a.generation
                )
            } else {
                "no".into()
            },
        ));
        f.push((
            "Rollback allowed",
            match &a.rollback_refused {
                None => format!("yes, to generation {}", a.credentials_generation - 1),
                Some(why) => format!("no: {why}"),
            },
        ));
        f.push((
            "Last change",
            match (&a.last_action, &a.changed_at) {
                (Some(act), Some(at)) => format!("{act} at {at} ({} ago)", ago(Some(at), now)),
                (Some(act), None) => act.clone(),
                _ => NONE.into(),
            },
        ));
        f.push(("TLS expiry", tls));
        return fields(out, &f);
    }
    f.push(("Phase", r.phase.clone()));
    f.push(("TLS expiry", tls));
    let Some(q) = &r.request else {
        f.push((
            "Request",
            "<none> (no RotateAuth for this database yet)".into(),
        ));
        return fields(out, &f);
    };
    f.push(("Request", format!("{} {}", q.kind, q.name)));
    f.push(("Request phase", q.phase.clone()));
    f.push(("Source", q.source.clone()));
    f.push((
        "Started",
        match &q.started {
            Some(t) => format!("{t} ({} ago)", ago(Some(t), now)),
            None => NONE.into(),
        },
    ));
    f.push((
        "Duration",
        q.duration_seconds
            .map(human_secs)
            .unwrap_or_else(|| NONE.into()),
    ));
    if let Some(why) = &q.reason {
        f.push(("Reason", why.clone()));
    }
    fields(out, &f)?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = q
        .steps
        .iter()
        .map(|s| {
            vec![
                s.step.clone(),
                s.status.clone(),
                ago(s.since.as_deref(), now),
                or_none(Some(&s.message)),
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(
            out,
            "No steps yet: the operator has not picked the request up."
        )?;
        return Ok(());
    }
    style.table(out, &["STEP", "STATUS", "SINCE", "MESSAGE"], &rows)?;
    Ok(())
}

/// Prints `history`.
pub fn history(
    r: &HistoryReport,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let format = style.format;
    warn(err, &r.warnings)?;
    match format {
        Format::Json | Format::Yaml => emit(&to_value(r)?, format, out),
        Format::Name => {
            for q in &r.requests {
                writeln!(
                    out,
                    "{}",
                    object_name(&q.request.kind, KUBEDB_OPS_GROUP, &q.request.name)
                )?;
            }
            Ok(())
        }
        Format::Table | Format::Wide => match history_sheet(r, format == Format::Wide) {
            Some(sheet) => style.sheet(out, &sheet),
            None => Ok(writeln!(err, "{}", no_history(r))?),
        },
    }
}

/// What stderr says when a database has no history.
pub(super) fn no_history(r: &HistoryReport) -> String {
    format!(
        "No rotations recorded for {} {:?} in namespace {}.",
        r.subject.target_kind, r.subject.name, r.subject.namespace
    )
}

/// `history` as a table: the ops requests (KubeDB), else the generation changes (Arc);
/// `None` when there is neither.
pub(super) fn history_sheet(r: &HistoryReport, wide: bool) -> Option<Sheet> {
    if !r.requests.is_empty() {
        let mut headers = vec!["NAME", "PHASE", "SOURCE", "STARTED", "DURATION"];
        if wide {
            headers.extend(["USER", "REASON"]);
        }
        let rows = r
            .requests
            .iter()
            .map(|h| {
                let q = &h.request;
                let mut row = vec![
                    q.name.clone(),
                    q.phase.clone(),
                    q.source.clone(),
                    or_none(q.started.as_deref()),
                    q.duration_seconds
                        .map(human_secs)
                        .unwrap_or_else(|| NONE.into()),
                ];
                if wide {
                    row.push(or_none(h.user.as_deref()));
                    row.push(or_none(q.reason.as_deref()));
                }
                row
            })
            .collect();
        return Some(Sheet { headers, rows });
    }
    if r.generations.is_empty() {
        return None;
    }
    let mut headers = vec!["ACTION", "GENERATION", "USER", "TIME"];
    if wide {
        headers.push("MESSAGE");
    }
    let gen = |g: Option<i64>| g.map(|g| g.to_string()).unwrap_or_else(|| "?".into());
    let rows = r
        .generations
        .iter()
        .map(|g| {
            let mut row = vec![
                g.action.clone(),
                format!("{}->{}", gen(g.from), gen(g.to)),
                g.user.clone(),
                or_none(g.time.as_deref()),
            ];
            if wide {
                row.push(g.message.clone());
            }
            row
        })
        .collect();
    Some(Sheet { headers, rows })
}

/// One `list` item as a Kubernetes-style object: apiVersion, kind `Credential`, metadata
/// with the database's name and namespace (moved there from the top level), the other
/// fields as they were, and `prevKept` a boolean (`null` when the Secret could not be read).
pub(super) fn list_item(r: &CredentialRow) -> Result<Value> {
    let mut v = to_value(r)?;
    let fields = v
        .as_object_mut()
        .ok_or_else(|| Error::Unexpected("a list row is not an object".into()))?;
    fields.remove("name");
    fields.remove("namespace");
    let prev_kept = match r.prev_kept {
        PrevKept::Yes => json!(true),
        PrevKept::No | PrevKept::NotKept => json!(false),
        PrevKept::Unknown => Value::Null,
    };
    fields.insert("prevKept".into(), prev_kept);
    let mut item = json!({
        "apiVersion": API_VERSION,
        "kind": "Credential",
        "metadata": Meta { name: &r.name, namespace: &r.namespace },
    });
    if let Some(obj) = item.as_object_mut() {
        obj.extend(std::mem::take(fields));
    }
    Ok(item)
}

/// Prints `list`.
pub fn list(
    report: &ListReport,
    plan: &ListPlan,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let (rows, format) = (&report.rows, style.format);
    warn(err, &report.warnings)?;
    match format {
        Format::Json | Format::Yaml => {
            let items = rows.iter().map(list_item).collect::<Result<Vec<_>>>()?;
            emit(&credential_list(items), format, out)
        }
        Format::Name => {
            for r in rows {
                writeln!(out, "{}", object_name(r.kind, r.group, &r.name))?;
            }
            Ok(())
        }
        Format::Table | Format::Wide if rows.is_empty() => {
            Ok(writeln!(err, "{}", no_databases(plan))?)
        }
        Format::Table | Format::Wide => {
            style.sheet(out, &list_sheet(rows, plan, format == Format::Wide))
        }
    }
}

/// `list -o json|yaml`: a `CredentialList` of `items`.
pub(super) fn credential_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "CredentialList", "items": items})
}

/// What stderr says when `list` finds nothing.
pub(super) fn no_databases(plan: &ListPlan) -> String {
    match (&plan.older_than, plan.all_namespaces) {
        (Some(age), _) => format!("No databases with credentials older than {age}."),
        (None, true) => "No resources found".into(),
        (None, false) => "No resources found in this namespace.".into(),
    }
}

/// `list` as a table: NAMESPACE first with `-A`; `-o wide` adds columns.
pub(super) fn list_sheet(rows: &[CredentialRow], plan: &ListPlan, wide: bool) -> Sheet {
    let mut headers = Vec::new();
    if plan.all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.extend([
        "KIND",
        "NAME",
        "PHASE",
        "SECRET",
        "LAST ROTATED",
        "PASSWORD AGE",
        "PREV KEPT",
        "IN FLIGHT",
    ]);
    if wide {
        headers.extend([
            "REQUEST",
            "GENERATION",
            "TLS EXPIRY",
            "CONSUMERS",
            "NEXT ROTATION",
            "ROTATE AFTER",
        ]);
    }
    let rows = rows
        .iter()
        .map(|r| {
            let mut row = Vec::new();
            if plan.all_namespaces {
                row.push(r.namespace.clone());
            }
            row.extend([
                r.kind.to_string(),
                r.name.clone(),
                r.phase.clone(),
                or_none(r.secret.as_deref()),
                or_none(r.last_rotated.as_deref()),
                r.password_age_seconds
                    .map(human_secs)
                    .unwrap_or_else(|| "<unknown>".into()),
                r.prev_kept.as_str().to_string(),
                or_none(r.in_flight.as_ref().map(|f| f.phase.as_str())),
            ]);
            if wide {
                row.push(or_none(r.in_flight.as_ref().map(|f| f.name.as_str())));
                row.push(
                    r.credentials_generation
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| NONE.into()),
                );
                row.push(
                    r.tls_expiry
                        .as_ref()
                        .map(|e| e.cell())
                        .unwrap_or_else(|| NONE.into()),
                );
                row.push(
                    r.consumers
                        .map(|c| c.cell())
                        .unwrap_or_else(|| "<unknown>".into()),
                );
                row.push(or_none(r.next_rotation.as_deref()));
                row.push(or_none(r.rotate_after.as_deref()));
            }
            row
        })
        .collect();
    Sheet { headers, rows }
}

/// Prints `consumers`.
pub fn consumers(
    r: &ConsumersReport,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let format = style.format;
    warn(err, &r.warnings)?;
    match format {
        Format::Json | Format::Yaml => return emit(&to_value(r)?, format, out),
        Format::Name => {
            for c in &r.items {
                let group = match c.kind {
                    "Job" | "CronJob" => ".batch",
                    "Pod" => "",
                    _ => ".apps",
                };
                writeln!(out, "{}{group}/{}", c.kind.to_ascii_lowercase(), c.name)?;
            }
            return Ok(());
        }
        Format::Table | Format::Wide => {}
    }
    match consumers_sheet(r, format == Format::Wide) {
        Some(sheet) => style.sheet(out, &sheet)?,
        None => writeln!(err, "{}", no_consumers(r))?,
    }
    consumers_warnings(r, err)
}

/// What stderr says when no workload reads the credential.
pub(super) fn no_consumers(r: &ConsumersReport) -> String {
    format!(
        "No workloads in namespace {} read {}.",
        r.subject.namespace,
        r.secrets
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    )
}

/// `consumers` as a table; `None` when no workload reads the credential.
pub(super) fn consumers_sheet(r: &ConsumersReport, wide: bool) -> Option<Sheet> {
    if r.items.is_empty() {
        return None;
    }
    let mut headers = vec![
        "KIND", "NAME", "SECRET", "READS", "PICKS UP", "RELOADER", "READY",
    ];
    if wide {
        headers.push("MANAGED BY");
    }
    let rows = r
        .items
        .iter()
        .map(|c| {
            let mut row = vec![
                c.kind.to_string(),
                c.name.clone(),
                if c.stale {
                    format!("{} (old)", c.secret)
                } else {
                    c.secret.clone()
                },
                c.reads.join(","),
                c.picks_up.to_string(),
                if c.reloader { "yes" } else { "no" }.to_string(),
                c.ready.clone(),
            ];
            if wide {
                let managers = r
                    .secrets
                    .iter()
                    .find(|s| s.name == c.secret)
                    .map(|s| s.managers.join(", "))
                    .unwrap_or_default();
                row.push(or_none(
                    Some(&managers)
                        .filter(|m| !m.is_empty())
                        .map(|m| m.as_str()),
                ));
            }
            row
        })
        .collect();
    Some(Sheet { headers, rows })
}

/// The warnings under `consumers`' table: Secrets a controller would write back, and
/// workloads that read a Secret the database no longer uses.
pub(super) fn consumers_warnings(r: &ConsumersReport, err: &mut dyn Write) -> Result<()> {
    for s in r.secrets.iter().filter(|s| !s.managers.is_empty()) {
        writeln!(
            err,
            "Warning: Secret {} is managed by {}: a rotation written into it may be reverted",
            s.name,
            s.managers.join(", ")
        )?;
    }
    if r.items.iter().any(|c| c.stale) {
        writeln!(
            err,
            "Warning: workloads marked (old) read a Secret the database no longer uses: they keep the old password until they read {}",
            r.secrets.iter().find(|s| s.current).map_or("the auth Secret", |s| s.name.as_str())
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CredentialView, InFlight, Role};

    fn prev_report() -> PrevReport {
        let c = |role, pw: &str, keys: &[&str]| CredentialView {
            role,
            username: Some("postgres".into()),
            password: Some(Password::new(pw)),
            secret: "pg-auth".into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            last_rotated: None,
        };
        PrevReport {
            namespace: "demo".into(),
            target_kind: "Postgres".into(),
            target_group: "kubedb.com".into(),
            name: "pg".into(),
            credentials: vec![
                c(Role::Current, "NewPassw0rd", &["username", "password"]),
                c(
                    Role::Previous,
                    "OldPassw0rd",
                    &["username.prev", "password.prev"],
                ),
            ],
            generation: None,
            note: None,
        }
    }

    fn render_prev(format: Format, reveal: bool) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        prev(&prev_report(), format.into(), reveal, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn prev_masks_passwords_in_every_format_without_reveal() {
        for f in [
            Format::Table,
            Format::Wide,
            Format::Json,
            Format::Yaml,
            Format::Name,
        ] {
            let (out, err) = render_prev(f, false);
            assert!(
                !out.contains("Passw0rd") && !err.contains("Passw0rd"),
                "{f:?}: {out}"
            );
            assert!(err.is_empty(), "no warning without --reveal");
        }
        let (out, _) = render_prev(Format::Table, false);
        assert_eq!(
            out,
            "ROLE       USERNAME   PASSWORD   SECRET    KEYS                          LAST ROTATED   AGE\n\
             current    postgres   ********   pg-auth   username,password             <none>         <none>\n\
             previous   postgres   ********   pg-auth   username.prev,password.prev   <none>         <none>\n"
        );
    }

    #[test]
    fn reveal_shows_the_values_and_warns_on_stderr() {
        let (out, err) = render_prev(Format::Json, true);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["credentials"][1]["password"], "OldPassw0rd");
        assert!(err.starts_with("Warning: --reveal"), "{err}");
    }

    #[test]
    fn list_shows_the_namespace_only_across_namespaces_and_wide_adds_columns() {
        let row = CredentialRow {
            namespace: "demo".into(),
            kind: "Postgres",
            group: "kubedb.com",
            name: "pg".into(),
            phase: "Ready".into(),
            secret: Some("pg-auth".into()),
            last_rotated: Some("2026-11-12T00:00:00Z".into()),
            password_age_seconds: Some(10 * 86_400),
            prev_kept: PrevKept::Yes,
            in_flight: Some(InFlight {
                name: "pg-rotate-auth-1".into(),
                phase: "Progressing".into(),
            }),
            credentials_generation: None,
            tls_expiry: None,
            consumers: Some(crate::report::ConsumerCount {
                workloads: 3,
                stale: 1,
            }),
            next_rotation: Some("2026-12-03T03:00:00Z".into()),
            rotate_after: None,
        };
        let plan = |all| ListPlan {
            all_namespaces: all,
            selector: None,
            older_than: None,
            details: true,
        };
        let report = ListReport {
            rows: vec![row],
            warnings: vec![],
        };
        let render = |all, f: Format| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            list(&report, &plan(all), f.into(), &mut out, &mut err).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            render(false, Format::Table),
            "KIND       NAME   PHASE   SECRET    LAST ROTATED           PASSWORD AGE   PREV KEPT   IN FLIGHT\n\
             Postgres   pg     Ready   pg-auth   2026-11-12T00:00:00Z   10d            yes         Progressing\n"
        );
        let wide = render(true, Format::Wide);
        assert!(wide.starts_with("NAMESPACE   KIND"), "{wide}");
        assert!(
            wide.lines()
                .next()
                .unwrap()
                .ends_with("TLS EXPIRY   CONSUMERS     NEXT ROTATION          ROTATE AFTER"),
            "{wide}"
        );
        assert!(
            wide.lines()
                .nth(1)
                .unwrap()
                .ends_with("3 (1 stale)   2026-12-03T03:00:00Z   <none>"),
            "{wide}"
        );
        assert_eq!(render(true, Format::Name), "postgres.kubedb.com/pg\n");
    }
}
