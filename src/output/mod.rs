//! The only code that writes results: tables, JSON, YAML, names; plus the stderr renderings
//! of progress, hints and errors. Everything takes a writer so tests print into a `Vec<u8>`.

/// The `Progress` methods of a type that reports through its `progress` field.
macro_rules! progress_through_field {
    () => {
        fn event(&mut self, event: &$crate::report::ProgressEvent) {
            self.progress.event(event);
        }
        fn warn(&mut self, message: &str) {
            self.progress.warn(message);
        }
        fn note(&mut self, line: &str) {
            self.progress.note(line);
        }
    };
}

pub mod contexts;
pub mod inspect;
pub mod jsonpath;
pub mod prefix;
pub mod schedule;
pub mod table;
pub mod template;
pub mod verify;
pub mod version;

use std::io::{BufRead, Write};

use crate::cli::{DryRun, Format};
use crate::cmd::Ui;
use crate::duration::human;
use crate::error::{Error, Result};
use crate::report::RestartRow;
use crate::report::{object_name, Outcome, Progress, ProgressEvent, Rotation};
use crate::verify::VerifyReport;

/// How results print: `-o`'s format, and whether tables keep their header line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// The format the verb prints in (JSON under a template format).
    pub format: Format,
    /// `--no-headers`.
    pub no_headers: bool,
}

impl From<Format> for Style {
    fn from(format: Format) -> Style {
        Style {
            format,
            no_headers: false,
        }
    }
}

impl Style {
    /// The style of the output flags.
    pub fn of(args: &crate::cli::OutputArgs) -> Style {
        Style {
            format: args.output.format(),
            no_headers: args.no_headers,
        }
    }

    /// Writes a kubectl table, without its header line under `--no-headers`.
    pub fn table(self, out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
        Ok(table::write_with(out, headers, rows, !self.no_headers)?)
    }

    /// Writes a [`Sheet`](table::Sheet) as [`Style::table`] does.
    pub fn sheet(self, out: &mut dyn Write, sheet: &table::Sheet) -> Result<()> {
        self.table(out, &sheet.headers, &sheet.rows)
    }
}

/// The `-o name` form of a rotation: the ops request if there is one, else the target.
pub fn rotation_name(r: &Rotation) -> String {
    match &r.request {
        Some(req) => object_name(&req.kind, &req.group, &req.name),
        None => r.subject.object_name(),
    }
}

/// Prints a verb's outcome to `out` (stdout) in the chosen format, and the notes that go
/// with it (follow hints, dry-run notes) to `err` (stderr).
pub fn print_outcome(
    outcome: &Outcome,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    notes_before(outcome, err)?;
    match (outcome, printed(outcome, style.format)) {
        (Outcome::Preview { name, .. }, _) if style.format == Format::Name => {
            writeln!(out, "{name}")?
        }
        (_, Printed::Rows([])) => {}
        (_, Printed::Rows(rows)) => print_rotations(rows, style, out)?,
        (_, Printed::Documents(documents)) => print_documents(documents, style.format, out)?,
    }
    notes_after(outcome, err)
}

/// What an outcome prints on stdout.
pub(crate) enum Printed<'a> {
    /// Rotations, a row (or document) each.
    Rows(&'a [Rotation]),
    /// What a client dry run would send (in bulk, under `-o json|yaml`).
    Documents(&'a [serde_json::Value]),
}

/// What `outcome` prints on stdout in `format`.
pub(crate) fn printed(outcome: &Outcome, format: Format) -> Printed<'_> {
    match outcome {
        Outcome::Done { rotation, .. } => Printed::Rows(std::slice::from_ref(rotation)),
        Outcome::Preview { documents, .. } => Printed::Documents(documents),
        Outcome::Bulk(report) => match format {
            Format::Json | Format::Yaml if !report.documents.is_empty() => {
                Printed::Documents(&report.documents)
            }
            _ => Printed::Rows(&report.rows),
        },
    }
}

/// The stderr notes printed before an outcome: what a client dry run would send.
pub(crate) fn notes_before(outcome: &Outcome, err: &mut dyn Write) -> Result<()> {
    let requests = match outcome {
        Outcome::Preview { requests, .. } => requests,
        Outcome::Bulk(report) if !report.requests.is_empty() => &report.requests,
        _ => return Ok(()),
    };
    writeln!(err, "client dry run: nothing was sent; would send:")?;
    for r in requests {
        writeln!(err, "  {r}")?;
    }
    Ok(())
}

/// The stderr notes printed after an outcome: how to follow it, what a server dry run did.
pub(crate) fn notes_after(outcome: &Outcome, err: &mut dyn Write) -> Result<()> {
    match outcome {
        Outcome::Done { rotation, follow } => {
            if rotation.dry_run == DryRun::Server {
                writeln!(
                    err,
                    "server dry run: the API server accepted the change; nothing was saved"
                )?;
            } else if let Some(follow) = follow {
                writeln!(err, "follow it with: {follow}")?;
            }
        }
        Outcome::Preview { .. } => {}
        Outcome::Bulk(report) => {
            let server_dry_run = report.rows.iter().any(|r| r.dry_run == DryRun::Server);
            if server_dry_run && report.failed.len() < report.rows.len() {
                writeln!(
                    err,
                    "server dry run: the API server accepted the changes without a FAILED row; \
                     nothing was saved"
                )?;
            }
        }
    }
    Ok(())
}

/// Objects that would be sent: JSON (a `List` when several), else YAML documents.
fn print_documents(
    documents: &[serde_json::Value],
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    if format == Format::Json {
        let doc = match documents {
            [one] => one.clone(),
            many => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": many}),
        };
        writeln!(out, "{}", to_json(&doc)?)?;
    } else {
        for (i, d) in documents.iter().enumerate() {
            if i > 0 {
                writeln!(out, "---")?;
            }
            write!(out, "{}", to_yaml(d)?)?;
        }
    }
    Ok(())
}

/// Prints rotations as a table, JSON, YAML or names.
pub fn print_rotations(rows: &[Rotation], style: Style, out: &mut dyn Write) -> Result<()> {
    let format = style.format;
    match format {
        Format::Table | Format::Wide => {
            style.sheet(out, &rotations_sheet(rows, format == Format::Wide))?
        }
        Format::Json => {
            let v = match rows {
                [one] => serde_json::to_value(one),
                many => serde_json::to_value(many).map(
                    |items| serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}),
                ),
            }
            .map_err(|e| Error::Unexpected(e.to_string()))?;
            writeln!(out, "{}", to_json(&v)?)?;
        }
        Format::Yaml => {
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    writeln!(out, "---")?;
                }
                let v = serde_json::to_value(r).map_err(|e| Error::Unexpected(e.to_string()))?;
                write!(out, "{}", to_yaml(&v)?)?;
            }
        }
        Format::Name => {
            for r in rows {
                writeln!(out, "{}", rotation_name(r))?;
            }
        }
    }
    Ok(())
}

/// Rotations as a table: one layout for one target and for many, the summary of each.
pub(crate) fn rotations_sheet(rows: &[Rotation], wide: bool) -> table::Sheet {
    let mut headers = vec!["NAMESPACE", "KIND", "NAME"];
    if wide {
        headers.push("ACTION");
    }
    headers.push("REQUEST");
    if wide {
        headers.push("SECRET");
    }
    headers.extend(["PHASE", "DURATION", "MESSAGE"]);
    let none = || table::NONE.to_string();
    let rows = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.subject.namespace.clone(),
                r.subject.target_kind.clone(),
                r.subject.name.clone(),
            ];
            if wide {
                row.push(r.action.as_str().to_string());
            }
            row.push(request_cell(r));
            if wide {
                row.push(r.secret.clone().unwrap_or_else(none));
            }
            row.push(phase_cell(r));
            row.push(
                r.duration_seconds
                    .map(|s| human(std::time::Duration::from_secs_f64(s)))
                    .unwrap_or_else(none),
            );
            row.push(r.message.clone().unwrap_or_default());
            row
        })
        .collect();
    table::Sheet { headers, rows }
}

/// What `--restart-consumers` did, as a table.
pub(crate) fn restarts_sheet(rows: &[RestartRow]) -> table::Sheet {
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.namespace.clone(),
                r.kind.to_string(),
                r.name.clone(),
                r.action.clone(),
                r.result.clone(),
            ]
        })
        .collect();
    table::Sheet {
        headers: vec!["NAMESPACE", "KIND", "NAME", "RESTART", "ROLLOUT"],
        rows,
    }
}

/// What `--restart-consumers` did, as the document `-o json|yaml` prints.
pub(crate) fn restarts_document(rows: &[RestartRow]) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": crate::report::API_VERSION,
        "kind": "ConsumerRestartList",
        "items": rows,
    })
}

fn request_cell(r: &Rotation) -> String {
    match (&r.request, &r.generation) {
        (Some(req), _) => req.name.clone(),
        (None, Some(g)) => format!("generation {}->{}", g.from, g.to),
        (None, None) => table::NONE.into(),
    }
}

fn phase_cell(r: &Rotation) -> String {
    let phase = if r.phase.is_empty() {
        "Pending"
    } else {
        r.phase.as_str()
    };
    match (r.dry_run, r.adopted) {
        (DryRun::Server, _) => format!("{phase} (server dry run)"),
        (DryRun::Client, _) => format!("{phase} (dry run)"),
        (DryRun::None, true) => format!("{phase} (adopted)"),
        (DryRun::None, false) => phase.to_string(),
    }
}

fn to_json(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Unexpected(e.to_string()))
}

fn to_yaml(v: &serde_json::Value) -> Result<String> {
    serde_yaml::to_string(v).map_err(|e| Error::Unexpected(e.to_string()))
}

/// Prints an error the way kubectl does: `error: ...` on stderr, one line, with what came
/// from the cluster made printable.
pub fn print_error(err: &mut dyn Write, e: &Error) {
    let _ = writeln!(err, "error: {}", table::printable(&e.to_string()));
}

/// Live progress on a writer (stderr in the binary): each step once, as it happens.
pub struct WriterProgress<W: Write + Send> {
    w: W,
}

impl<W: Write + Send> WriterProgress<W> {
    /// Progress written to `w`.
    pub fn new(w: W) -> Self {
        WriterProgress { w }
    }
}

impl<W: Write + Send> Progress for WriterProgress<W> {
    fn event(&mut self, event: &ProgressEvent) {
        let line = match event {
            ProgressEvent::Condition {
                request,
                type_,
                status,
                message,
            } => {
                format!("{request}: {type_}  {status}  {message}")
            }
            ProgressEvent::Phase {
                object,
                phase,
                detail: Some(d),
            } => format!("{object}: {phase} ({d})"),
            ProgressEvent::Phase {
                object,
                phase,
                detail: None,
            } => format!("{object}: {phase}"),
            ProgressEvent::Submitted(_) => return,
        };
        let _ = writeln!(self.w, "{}", table::printable(line.trim_end()));
        let _ = self.w.flush();
    }

    fn warn(&mut self, message: &str) {
        let _ = writeln!(self.w, "Warning: {}", table::printable(message));
        let _ = self.w.flush();
    }

    fn note(&mut self, line: &str) {
        let _ = writeln!(self.w, "{line}");
        let _ = self.w.flush();
    }
}

/// The streams of one command: results to `out`, progress, notes and questions to `err`,
/// answers from `stdin` when it is a terminal. What a verb talks to (`cmd::Ui`).
pub struct Console<'a> {
    style: Style,
    out: &'a mut (dyn Write + Send),
    progress: WriterProgress<&'a mut (dyn Write + Send)>,
    stdin: Option<&'a mut (dyn BufRead + Send)>,
    /// How many results were printed: the second one is set apart from the first.
    printed: usize,
}

impl<'a> Console<'a> {
    /// A console in `format`; `stdin` only when it is a terminal someone can answer on.
    pub fn new(
        style: Style,
        out: &'a mut (dyn Write + Send),
        err: &'a mut (dyn Write + Send),
        stdin: Option<&'a mut (dyn BufRead + Send)>,
    ) -> Console<'a> {
        Console {
            style,
            out,
            progress: WriterProgress::new(err),
            stdin,
            printed: 0,
        }
    }

    /// Sets a result apart from the one before it: a blank line between tables, a YAML
    /// document separator, a second JSON document; nothing with `-o name`.
    fn separate(&mut self) -> Result<()> {
        if self.printed > 0 {
            match self.style.format {
                Format::Name => {}
                Format::Yaml => writeln!(self.out, "---")?,
                _ => writeln!(self.out)?,
            }
        }
        self.printed += 1;
        Ok(())
    }
}

impl Progress for Console<'_> {
    progress_through_field!();
}

impl Ui for Console<'_> {
    fn outcome(&mut self, outcome: &Outcome) -> Result<()> {
        // NB: a rollback after a verification is set apart as a table, not as a document.
        if self.printed > 0 && matches!(self.style.format, Format::Table | Format::Wide) {
            writeln!(self.out)?;
        }
        self.printed += 1;
        print_outcome(outcome, self.style, self.out, &mut self.progress.w)?;
        self.out.flush()?;
        Ok(())
    }

    fn verification(&mut self, report: &VerifyReport) -> Result<()> {
        self.separate()?;
        if self.style.format == Format::Name {
            verify::notes(report, &mut self.progress.w)?;
        } else {
            verify::report(report, self.style, self.out, &mut self.progress.w)?;
        }
        self.out.flush()?;
        Ok(())
    }

    fn restarts(&mut self, rows: &[RestartRow]) -> Result<()> {
        self.separate()?;
        match self.style.format {
            Format::Json | Format::Yaml => {
                let v = restarts_document(rows);
                match self.style.format {
                    Format::Yaml => write!(self.out, "{}", to_yaml(&v)?)?,
                    _ => writeln!(self.out, "{}", to_json(&v)?)?,
                }
            }
            Format::Name => {
                for r in rows.iter().filter(|r| r.action == "restarted") {
                    writeln!(self.out, "{}.apps/{}", r.kind.to_ascii_lowercase(), r.name)?;
                }
            }
            _ => self.style.sheet(self.out, &restarts_sheet(rows))?,
        }
        self.out.flush()?;
        Ok(())
    }

    fn can_ask(&self) -> bool {
        self.stdin.is_some()
    }

    fn ask(&mut self, question: &str) -> Result<bool> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Ok(false);
        };
        write!(self.progress.w, "{question}")?;
        self.progress.w.flush()?;
        let mut answer = String::new();
        stdin.read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;
    use crate::report::{Action, GenerationChange, RequestRef};

    fn pg_rotation() -> Rotation {
        let mut r = Rotation::new("demo", find("pg").unwrap(), "pg-demo", Action::Rotate);
        r.request = Some(RequestRef {
            kind: "PostgresOpsRequest".into(),
            group: "ops.kubedb.com".into(),
            name: "pg-demo-rotate-auth-1a2b3".into(),
        });
        r.phase = "Successful".into();
        r.duration_seconds = Some(75.0);
        r.message = Some("Successfully completed postgres auth rotate".into());
        r
    }

    fn arc_rotation() -> Rotation {
        let mut r = Rotation::new(
            "demo",
            find("sqlmi").unwrap(),
            "sqlmi-demo",
            Action::Rollback,
        );
        r.generation = Some(GenerationChange { from: 1, to: 0 });
        r.phase = "Ready".into();
        r
    }

    fn render(rows: &[Rotation], f: Format) -> String {
        let mut out = Vec::new();
        print_rotations(rows, f.into(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tables_look_like_kubectl_with_upper_headers_and_three_space_padding() {
        assert_eq!(
            render(&[pg_rotation(), arc_rotation()], Format::Table),
            "NAMESPACE   KIND                 NAME         REQUEST                     PHASE        DURATION   MESSAGE\n\
             demo        Postgres             pg-demo      pg-demo-rotate-auth-1a2b3   Successful   75s        Successfully completed postgres auth rotate\n\
             demo        SqlManagedInstance   sqlmi-demo   generation 1->0             Ready        <none>\n"
        );
    }

    #[test]
    fn wide_tables_add_action_and_secret_columns() {
        let s = render(&[pg_rotation()], Format::Wide);
        let header = s.lines().next().unwrap();
        assert_eq!(
            header,
            "NAMESPACE   KIND       NAME      ACTION   REQUEST                     SECRET   PHASE        DURATION   MESSAGE"
        );
        assert!(
            s.lines()
                .nth(1)
                .unwrap()
                .contains("rotate   pg-demo-rotate-auth-1a2b3   <none>   Successful"),
            "{s}"
        );
    }

    #[test]
    fn json_output_parses_and_describes_the_rotation() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&[pg_rotation()], Format::Json)).unwrap();
        assert_eq!(v["kind"], "Rotation");
        assert_eq!(v["action"], "rotate");
        assert_eq!(v["request"]["name"], "pg-demo-rotate-auth-1a2b3");
        assert_eq!(v["phase"], "Successful");
        assert!(v.get("dryRun").is_none());
        let v: serde_json::Value =
            serde_json::from_str(&render(&[arc_rotation()], Format::Json)).unwrap();
        assert_eq!(v["generation"], serde_json::json!({"from": 1, "to": 0}));
    }

    #[test]
    fn yaml_output_parses_too() {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&render(&[arc_rotation()], Format::Yaml)).unwrap();
        assert_eq!(v["targetKind"], "SqlManagedInstance");
    }

    #[test]
    fn name_output_is_kind_dot_group_slash_name() {
        assert_eq!(
            render(&[pg_rotation()], Format::Name),
            "postgresopsrequest.ops.kubedb.com/pg-demo-rotate-auth-1a2b3\n"
        );
        assert_eq!(
            render(&[arc_rotation()], Format::Name),
            "sqlmanagedinstance.sql.arcdata.microsoft.com/sqlmi-demo\n"
        );
    }

    #[test]
    fn progress_prints_each_step_on_one_line() {
        let mut buf = Vec::new();
        {
            let mut p = WriterProgress::new(&mut buf);
            p.event(&ProgressEvent::Condition {
                request: "pg-demo-rotate-auth-1a2b3".into(),
                type_: "UpdateCredential".into(),
                status: "True".into(),
                message: "Successfully generated new credentials".into(),
            });
            p.event(&ProgressEvent::Phase {
                object: "sqlmi/x".into(),
                phase: "Updating".into(),
                detail: None,
            });
            p.warn("careful");
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "pg-demo-rotate-auth-1a2b3: UpdateCredential  True  Successfully generated new credentials\n\
             sqlmi/x: Updating\nWarning: careful\n"
        );
    }

    #[test]
    fn a_client_dry_run_prints_the_documents_and_notes_on_stderr() {
        let outcome = Outcome::Preview {
            documents: vec![
                serde_json::json!({"kind": "PostgresOpsRequest", "metadata": {"name": "x"}}),
            ],
            name: "postgresopsrequest.ops.kubedb.com/x".into(),
            request: None,
            requests: vec!["POST postgresopsrequests.ops.kubedb.com demo/x".into()],
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_outcome(&outcome, Format::Json.into(), &mut out, &mut err).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["kind"], "PostgresOpsRequest");
        assert!(String::from_utf8(err).unwrap().contains("nothing was sent"));
    }
}
