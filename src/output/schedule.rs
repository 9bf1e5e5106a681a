//! Printing `schedule`: what was made (`kind/name created`, as `kubectl apply` says it, or
//! the objects with `-o json|yaml`; `--dry-run=client -o yaml` is a manifest stream for a
//! GitOps repository), and `schedule list`'s table.

use std::io::Write;

use serde_json::{json, Value};

use super::inspect::or_none;
use super::{to_json, to_yaml, Style};
use crate::cli::{DryRun, Format};
use crate::cmd::schedule::spec::ScheduleSpec;
use crate::error::Result;
use crate::report::{ScheduleRow, API_VERSION};

/// `kind/name` of an object, as kubectl's `-o name` (group included when it has one).
fn name_of(obj: &Value) -> String {
    let kind = obj["kind"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .map(|(g, _)| format!(".{g}"))
        .unwrap_or_default();
    format!(
        "{kind}{group}/{}",
        obj["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Prints the objects of a schedule: `applied` (each with whether it existed), or with
/// `--dry-run=client` the manifests nothing was sent for; then, on stderr, when it runs.
pub fn made(
    spec: &ScheduleSpec,
    applied: &[(Value, bool)],
    dry_run: DryRun,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let objects: Vec<Value> = applied.iter().map(|(o, _)| o.clone()).collect();
    match style.format {
        Format::Yaml => {
            for o in &objects {
                write!(out, "---\n{}", to_yaml(o)?)?;
            }
        }
        Format::Json => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            writeln!(out, "{}", to_json(&list)?)?;
        }
        Format::Name => {
            for o in &objects {
                writeln!(out, "{}", name_of(o))?;
            }
        }
        Format::Table | Format::Wide => {
            let suffix = match dry_run {
                DryRun::None => "",
                DryRun::Client => " (dry run)",
                DryRun::Server => " (server dry run)",
            };
            for (o, existed) in applied {
                let verb = if *existed { "configured" } else { "created" };
                writeln!(out, "{} {verb}{suffix}", name_of(o))?;
            }
        }
    }
    let when = match &spec.cadence.older_than {
        Some(age) => format!(
            "every day at {} UTC, rotating once the credential is {age} old",
            spec.at.as_deref().unwrap_or("03:00")
        ),
        None => format!("on cron schedule {:?} (UTC)", spec.cadence.cron),
    };
    let next = crate::cmd::schedule::spec::next_run(&spec.cadence.cron, jiff::Timestamp::now())
        .map(|t| format!("; first run {t}"))
        .unwrap_or_default();
    writeln!(
        err,
        "{}/{} in {}: rotated every {} by CronJob {}, {when}{next}. Follow it with `kubectl rotate schedule list -n {}`.",
        spec.typed,
        spec.name,
        spec.namespace,
        spec.every,
        spec.object_name(),
        spec.namespace
    )?;
    Ok(())
}

/// Prints `schedule list`.
pub fn list(
    rows: &[ScheduleRow],
    all_namespaces: bool,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let item = |r: &ScheduleRow| -> Result<Value> {
        let mut v =
            serde_json::to_value(r).map_err(|e| crate::error::Error::Unexpected(e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("name");
            o.remove("namespace");
        }
        let mut item = json!({"apiVersion": API_VERSION, "kind": "Schedule",
                              "metadata": {"name": r.name, "namespace": r.namespace}});
        if let (Some(i), Some(f)) = (item.as_object_mut(), v.as_object()) {
            i.extend(f.clone());
        }
        Ok(item)
    };
    match style.format {
        Format::Json | Format::Yaml => {
            let items = rows.iter().map(item).collect::<Result<Vec<_>>>()?;
            let v = json!({"apiVersion": API_VERSION, "kind": "ScheduleList", "items": items});
            match style.format {
                Format::Yaml => write!(out, "{}", to_yaml(&v)?)?,
                _ => writeln!(out, "{}", to_json(&v)?)?,
            }
            return Ok(());
        }
        Format::Name => {
            for r in rows {
                writeln!(out, "cronjob.batch/{}", r.name)?;
            }
            return Ok(());
        }
        Format::Table | Format::Wide => {}
    }
    if rows.is_empty() {
        let msg = match all_namespaces {
            true => "No schedules found.",
            false => "No schedules found in this namespace.",
        };
        writeln!(err, "{msg}")?;
        return Ok(());
    }
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.extend([
        "DATABASE",
        "EVERY",
        "SCHEDULE",
        "NEXT RUN",
        "LAST RUN",
        "LAST RESULT",
    ]);
    if style.format == Format::Wide {
        headers.push("CRONJOB");
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = Vec::new();
            if all_namespaces {
                row.push(r.namespace.clone());
            }
            let every = match &r.at {
                Some(at) => format!("{} at {at}", r.every),
                None => r.every.clone(),
            };
            row.extend([
                format!("{}/{}", r.target_kind.to_ascii_lowercase(), r.target_name),
                every,
                r.schedule.clone(),
                match r.suspended {
                    true => "suspended".into(),
                    false => or_none(r.next_run.as_deref()),
                },
                or_none(r.last_run.as_deref()),
                or_none(r.last_result.as_deref()),
            ]);
            if style.format == Format::Wide {
                row.push(r.name.clone());
            }
            row
        })
        .collect();
    style.table(out, &headers, &body)
}
