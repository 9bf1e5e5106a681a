//! Printing one verb's results from several contexts (`--context a,b`, `--all-contexts`):
//! the tables each context's printer builds ([`Sheet`]s) merged into one, CONTEXT first
//! and the contexts in the order given; `-o json|yaml` one document whose items each carry
//! their `context` (a `CredentialList` for `list`, else a `List` of the documents one
//! context prints); each context's stderr lines led by `[NAME] `. `-o name` is refused:
//! a bare name cannot say which cluster it is in.

use std::io::Write;

use serde_json::{json, Value};

use super::inspect::{self, emit, to_value, warn};
use super::prefix::{tag, Prefixed};
use super::table::Sheet;
use super::{notes_after, notes_before, printed, Printed, Style, WriterProgress};
use crate::cli::Format;
use crate::cmd::list::{ListPlan, ListReport};
use crate::cmd::Ui;
use crate::error::{Error, Result};
use crate::report::{
    ConsumersReport, HistoryReport, Outcome, PrevReport, Progress, RestartRow, Rotation,
    StatusReport,
};
use crate::verify::VerifyReport;

/// The first column of every table printed for several contexts.
pub const CONTEXT: &str = "CONTEXT";

/// Why `-o name` is refused with several contexts.
pub const NO_NAMES: &str = "-o name prints bare names, which cannot say which context each \
     one is in: use -o json or -o yaml (each item has its context), a template such as -o \
     jsonpath, or one --context";

/// One context's result: its name, and what it returned.
pub type Part<'a, T> = (&'a str, &'a T);

/// `v` with its context: a `context` field at its top level.
pub fn tagged(mut v: Value, context: &str) -> Value {
    if let Some(fields) = v.as_object_mut() {
        fields.insert("context".into(), json!(context));
    }
    v
}

/// A `List` of documents, as kubectl prints several objects.
fn list_of(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// Prints one document per context as a `List`, each tagged with its context.
fn documents<T>(
    parts: &[Part<'_, T>],
    format: Format,
    out: &mut dyn Write,
    document: impl Fn(&T) -> Result<Value>,
) -> Result<()> {
    let items = parts
        .iter()
        .map(|(c, r)| Ok(tagged(document(r)?, c)))
        .collect::<Result<Vec<_>>>()?;
    emit(&list_of(items), format, out)
}

/// The tables of several contexts as one: CONTEXT first, then each context's rows, in the
/// order given. A context whose table has other columns (a history of generations among
/// histories of requests) starts a table of its own, set apart by a blank line.
pub fn merge(style: Style, out: &mut dyn Write, sheets: Vec<(&str, Sheet)>) -> Result<()> {
    let mut tables: Vec<Sheet> = Vec::new();
    for (context, sheet) in sheets {
        let rows = sheet.rows.into_iter().map(|row| {
            std::iter::once(context.to_string())
                .chain(row)
                .collect::<Vec<_>>()
        });
        match tables.last_mut() {
            Some(t) if t.headers[1..] == sheet.headers[..] => t.rows.extend(rows),
            _ => tables.push(Sheet {
                headers: std::iter::once(CONTEXT).chain(sheet.headers).collect(),
                rows: rows.collect(),
            }),
        }
    }
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        style.sheet(out, t)?;
    }
    Ok(())
}

/// Writes `line` on stderr as `context`'s.
fn say(err: &mut dyn Write, context: &str, line: &str) -> Result<()> {
    Ok(writeln!(Prefixed::new(context, err), "{line}")?)
}

/// `-o name`'s refusal, for the printers below (the command line was checked already).
fn no_names() -> Error {
    Error::Usage(NO_NAMES.into())
}

/// Prints `list` of several contexts.
pub fn list(
    parts: &[Part<'_, ListReport>],
    plan: &ListPlan,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    for (c, r) in parts {
        warn(&mut Prefixed::new(c, &mut *err), &r.warnings)?;
    }
    match style.format {
        Format::Json | Format::Yaml => {
            let mut items = Vec::new();
            for (c, r) in parts {
                for row in &r.rows {
                    items.push(tagged(inspect::list_item(row)?, c));
                }
            }
            emit(&inspect::credential_list(items), style.format, out)
        }
        Format::Name => Err(no_names()),
        Format::Table | Format::Wide => {
            let mut sheets = Vec::new();
            for (c, r) in parts {
                match r.rows.is_empty() {
                    true => say(err, c, &inspect::no_databases(plan))?,
                    false => sheets.push((
                        *c,
                        inspect::list_sheet(&r.rows, plan, style.format == Format::Wide),
                    )),
                }
            }
            merge(style, out, sheets)
        }
    }
}

/// Prints `status` of several contexts: one description each, led by `Context:`.
pub fn status(parts: &[Part<'_, StatusReport>], style: Style, out: &mut dyn Write) -> Result<()> {
    match style.format {
        Format::Json | Format::Yaml => documents(parts, style.format, out, to_value),
        Format::Name => Err(no_names()),
        Format::Table | Format::Wide => {
            for (i, (c, r)) in parts.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                inspect::describe(r, style, Some(c), out)?;
            }
            Ok(())
        }
    }
}

/// Prints `prev` of several contexts; the Arc generation lines follow the table, each led
/// by its context.
pub fn prev(
    parts: &[Part<'_, PrevReport>],
    style: Style,
    reveal: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    if reveal {
        writeln!(err, "{}", inspect::REVEAL_WARNING)?;
    }
    match style.format {
        Format::Json | Format::Yaml => {
            return documents(parts, style.format, out, |r| {
                inspect::prev_document(r, reveal)
            })
        }
        Format::Name => return Err(no_names()),
        Format::Table | Format::Wide => {}
    }
    let sheets = parts
        .iter()
        .map(|(c, r)| (*c, inspect::prev_sheet(r, reveal)))
        .collect();
    merge(style, out, sheets)?;
    let lines: Vec<String> = parts
        .iter()
        .filter_map(|(c, r)| Some(format!("{}{}", tag(c), inspect::generation_line(r)?)))
        .collect();
    if !lines.is_empty() {
        writeln!(out)?;
    }
    for line in lines {
        writeln!(out, "{line}")?;
    }
    for (c, r) in parts {
        if let Some(note) = &r.note {
            say(err, c, &format!("Note: {note}"))?;
        }
    }
    Ok(())
}

/// What `history` and `consumers` share: each context's warnings, then one `List`, or
/// one table of the contexts that have rows (`sheet`), the others saying on stderr that
/// they have none (`nothing`).
fn reads<T: serde::Serialize>(
    parts: &[Part<'_, T>],
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
    warnings: impl Fn(&T) -> &[String],
    sheet: impl Fn(&T, bool) -> Option<Sheet>,
    nothing: impl Fn(&T) -> String,
) -> Result<()> {
    for (c, r) in parts {
        warn(&mut Prefixed::new(c, &mut *err), warnings(r))?;
    }
    match style.format {
        Format::Json | Format::Yaml => documents(parts, style.format, out, to_value),
        Format::Name => Err(no_names()),
        Format::Table | Format::Wide => {
            let mut sheets = Vec::new();
            for (c, r) in parts {
                match sheet(r, style.format == Format::Wide) {
                    Some(s) => sheets.push((*c, s)),
                    None => say(err, c, &nothing(r))?,
                }
            }
            merge(style, out, sheets)
        }
    }
}

/// Prints `history` of several contexts.
pub fn history(
    parts: &[Part<'_, HistoryReport>],
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let (sheet, nothing) = (inspect::history_sheet, inspect::no_history);
    reads(parts, style, out, err, |r| &r.warnings, sheet, nothing)
}

/// Prints `consumers` of several contexts.
pub fn consumers(
    parts: &[Part<'_, ConsumersReport>],
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let (sheet, nothing) = (inspect::consumers_sheet, inspect::no_consumers);
    reads(
        parts,
        style,
        out,
        &mut *err,
        |r| &r.warnings,
        sheet,
        nothing,
    )?;
    if matches!(style.format, Format::Table | Format::Wide) {
        for (c, r) in parts {
            inspect::consumers_warnings(r, &mut Prefixed::new(c, &mut *err))?;
        }
    }
    Ok(())
}

/// Prints `verify` of several contexts; each one's notes on stderr.
pub fn verify(
    parts: &[Part<'_, VerifyReport>],
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    match style.format {
        Format::Json | Format::Yaml => documents(parts, style.format, out, super::verify::value)?,
        Format::Name => return Err(no_names()),
        Format::Table | Format::Wide => {
            let wide = style.format == Format::Wide;
            let sheets = parts
                .iter()
                .map(|(c, r)| (*c, super::verify::sheet(r, wide)))
                .collect();
            merge(style, out, sheets)?;
        }
    }
    for (c, r) in parts {
        super::verify::notes(r, &mut Prefixed::new(c, &mut *err))?;
    }
    Ok(())
}

/// What a change verb handed its [`Capture`] in one context.
#[derive(Debug, Default)]
pub struct Captured {
    /// Each rotation's or rollback's result, in order.
    pub outcomes: Vec<Outcome>,
    /// Each login verification.
    pub verifications: Vec<VerifyReport>,
    /// What `--restart-consumers` did.
    pub restarts: Vec<RestartRow>,
    /// Rows for targets that never got an outcome: the context failed before (it could
    /// not be reached, say), each row saying why.
    pub failed: Vec<Rotation>,
}

/// Prints what the change verbs did in several contexts: one table of rotations, then one
/// of verifications and one of restarts when there are any; `-o json|yaml` one `List` of
/// every document, each tagged with its context. A client dry run's objects print as YAML
/// under the table formats, as with one context.
pub fn changes(parts: &[Part<'_, Captured>], style: Style, out: &mut dyn Write) -> Result<()> {
    let format = style.format;
    let mut rotations = Vec::new();
    let mut previews = Vec::new();
    let (mut verifications, mut restarts) = (Vec::new(), Vec::new());
    for (c, got) in parts {
        let mut rows: Vec<&Rotation> = Vec::new();
        for o in &got.outcomes {
            match printed(o, format) {
                Printed::Rows(r) => rows.extend(r),
                Printed::Documents(d) => previews.extend(d.iter().map(|d| tagged(d.clone(), c))),
            }
        }
        rows.extend(&got.failed);
        if !rows.is_empty() {
            rotations.push((*c, rows));
        }
        verifications.extend(got.verifications.iter().map(|v| (*c, v)));
        if !got.restarts.is_empty() {
            restarts.push((*c, &got.restarts));
        }
    }
    match format {
        Format::Name => Err(no_names()),
        Format::Json | Format::Yaml => {
            let mut items = Vec::new();
            for (c, rows) in &rotations {
                for r in rows {
                    items.push(tagged(to_value(r)?, c));
                }
            }
            items.extend(previews);
            for (c, v) in &verifications {
                items.push(tagged(super::verify::value(v)?, c));
            }
            for (c, r) in &restarts {
                items.push(tagged(super::restarts_document(r), c));
            }
            emit(&list_of(items), format, out)
        }
        Format::Table | Format::Wide => {
            let wide = format == Format::Wide;
            let mut sections: Vec<Vec<(&str, Sheet)>> = Vec::new();
            sections.push(
                rotations
                    .iter()
                    .map(|(c, rows)| {
                        let rows: Vec<Rotation> = rows.iter().map(|r| (*r).clone()).collect();
                        (*c, super::rotations_sheet(&rows, wide))
                    })
                    .collect(),
            );
            sections.push(
                verifications
                    .iter()
                    .map(|(c, v)| (*c, super::verify::sheet(v, wide)))
                    .collect(),
            );
            sections.push(
                restarts
                    .iter()
                    .map(|(c, r)| (*c, super::restarts_sheet(r)))
                    .collect(),
            );
            let mut printed_any = false;
            for sheets in sections.into_iter().filter(|s| !s.is_empty()) {
                if printed_any {
                    writeln!(out)?;
                }
                merge(style, out, sheets)?;
                printed_any = true;
            }
            for (i, d) in previews.iter().enumerate() {
                if i > 0 || printed_any {
                    writeln!(out, "---")?;
                }
                write!(out, "{}", super::to_yaml(d)?)?;
            }
            Ok(())
        }
    }
}

/// The [`Ui`] of a change verb in one of several contexts: progress and notes go to its
/// stderr as they come (tagged by the writer it is given), results are kept for
/// [`changes`] to print with the other contexts'. It never asks: several contexts are
/// confirmed once, before any of them is reached.
pub struct Capture<W: Write + Send> {
    progress: WriterProgress<W>,
    /// What it was handed.
    pub captured: Captured,
}

impl<W: Write + Send> Capture<W> {
    /// A capture whose stderr is `err`.
    pub fn new(err: W) -> Capture<W> {
        Capture {
            progress: WriterProgress::new(err),
            captured: Captured::default(),
        }
    }
}

impl<W: Write + Send> Progress for Capture<W> {
    progress_through_field!();
}

impl<W: Write + Send> Ui for Capture<W> {
    fn outcome(&mut self, outcome: &Outcome) -> Result<()> {
        notes_before(outcome, &mut self.progress.w)?;
        notes_after(outcome, &mut self.progress.w)?;
        self.captured.outcomes.push(outcome.clone());
        Ok(())
    }

    fn verification(&mut self, report: &VerifyReport) -> Result<()> {
        super::verify::notes(report, &mut self.progress.w)?;
        self.captured.verifications.push(report.clone());
        Ok(())
    }

    fn restarts(&mut self, rows: &[RestartRow]) -> Result<()> {
        self.captured.restarts.extend_from_slice(rows);
        Ok(())
    }

    fn can_ask(&self) -> bool {
        false
    }

    fn ask(&mut self, _question: &str) -> Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(headers: &[&'static str], rows: &[&[&str]]) -> Sheet {
        Sheet {
            headers: headers.to_vec(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect(),
        }
    }

    #[test]
    fn the_tables_of_several_contexts_merge_with_context_first_and_aligned_columns() {
        let mut out = Vec::new();
        merge(
            Format::Table.into(),
            &mut out,
            vec![
                ("a", sheet(&["KIND", "NAME"], &[&["Postgres", "pg-demo"]])),
                (
                    "production",
                    sheet(&["KIND", "NAME"], &[&["MariaDB", "md"], &["Redis", "rd"]]),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CONTEXT      KIND       NAME\n\
             a            Postgres   pg-demo\n\
             production   MariaDB    md\n\
             production   Redis      rd\n"
        );
    }

    #[test]
    fn a_context_whose_table_has_other_columns_gets_a_table_of_its_own() {
        let mut out = Vec::new();
        merge(
            Format::Table.into(),
            &mut out,
            vec![
                ("a", sheet(&["NAME"], &[&["x"]])),
                ("b", sheet(&["ACTION"], &[&["rotate"]])),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CONTEXT   NAME\na         x\n\nCONTEXT   ACTION\nb         rotate\n"
        );
    }

    #[test]
    fn documents_of_several_contexts_are_a_list_whose_items_say_their_context() {
        let v = tagged(json!({"kind": "RotationStatus"}), "b");
        assert_eq!(v, json!({"kind": "RotationStatus", "context": "b"}));
        let mut out = Vec::new();
        let parts: Vec<Part<'_, Value>> = vec![("a", &v), ("b", &v)];
        documents(&parts, Format::Json, &mut out, |d| Ok(d.clone())).unwrap();
        let list: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][0]["context"], "a");
        assert_eq!(list["items"][1]["context"], "b");
    }
}
