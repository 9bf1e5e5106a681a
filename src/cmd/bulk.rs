//! Several targets in one command: names (`auth pg/a ms/b`), `-l`, `--all`, `-A`.
//!
//! The targets share one [`Session`]: kinds are resolved by one discovery, databases found
//! by one LIST per kind (per namespace, or across namespaces with `-A`), in-progress checks
//! read one LIST of ops requests per kind and scope, and `--wait` follows every request
//! through one watch per kind and scope. What is left per database is the write itself:
//! one POST (plus one for a Secret the plugin creates). Targets run `--parallel` at a
//! time; a failure stays in its row and makes the exit code non-zero.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};

use super::Ui;
use crate::api::discovery::Wanted;
use crate::api::read::list_all_rv;
use crate::api::session::Session;
use crate::backend;
use crate::context::Ctx;
use crate::engines::EngineSpec;
use crate::error::{Error, Result};
use crate::plan::ChangePlan;
use crate::report::{Action, BulkReport, Outcome, Progress, ProgressEvent, RequestRef, Rotation};
use crate::target::{Selection, Target};

/// One database to act on, found by name or by a selection.
struct Item {
    target: Target,
    namespace: String,
    /// The object, when a LIST already returned it.
    object: Option<DynamicObject>,
}

/// Runs a plan with several targets (or a selection) in namespace `ns` (or every
/// namespace, with `-A`) and reports each in a row.
pub async fn run(ctx: &Ctx, plan: &ChangePlan, ns: &str, ui: &mut dyn Ui) -> Result<Outcome> {
    // NB: refuse before any API call when nobody can confirm.
    if plan.needs_confirmation() && !ui.can_ask() {
        return Err(Error::Usage(format!(
            "refusing to {} every selected database without confirmation: pass --yes (or run \
             it from a terminal to be asked; --dry-run needs neither)",
            verb(plan.action)
        )));
    }
    let all_namespaces = matches!(
        plan.selection,
        Selection::Matching {
            all_namespaces: true,
            ..
        }
    );
    let session = Session::bulk(ctx, all_namespaces);
    let items = find_items(&session, plan, ns).await?;
    if items.is_empty() {
        let scope = if all_namespaces {
            "any namespace".to_string()
        } else {
            format!("namespace {ns:?}")
        };
        ui.warn(&format!("no databases found in {scope}; nothing to do"));
        return Ok(Outcome::Bulk(BulkReport::default()));
    }
    if plan.needs_confirmation() {
        let namespaces: BTreeSet<&str> = items.iter().map(|i| i.namespace.as_str()).collect();
        let question = format!(
            "{} {} database{} in {} namespace{}? [y/N] ",
            capitalized(verb(plan.action)),
            items.len(),
            plural(items.len()),
            namespaces.len(),
            plural(namespaces.len())
        );
        if !ui.ask(&question)? {
            return Err(Error::Refused("not confirmed; nothing was changed".into()));
        }
    }

    let progress: &mut dyn Progress = ui;
    let shared = Mutex::new(progress);
    let interrupted = AtomicBool::new(false);
    let results: Vec<(Item, Option<RequestRef>, Result<Outcome>)> = futures::stream::iter(items)
        .map(|item| {
            let (session, shared, interrupted) = (&session, &shared, &interrupted);
            async move {
                if interrupted.load(Ordering::SeqCst) {
                    let e = Error::Refused("not started: interrupted".into());
                    return (item, None, Err(e));
                }
                let mut progress = PhasesOnly {
                    shared,
                    submitted: None,
                };
                let r = run_one(session, plan, &item, &mut progress).await;
                if matches!(r, Err(Error::Interrupted { .. })) {
                    interrupted.store(true, Ordering::SeqCst);
                }
                (item, progress.submitted, r)
            }
        })
        .buffered(plan.parallel.max(1))
        .collect()
        .await;

    let mut report = BulkReport::default();
    for (item, submitted, r) in results {
        let mut row = Rotation::new(
            &item.namespace,
            item.target.engine,
            &item.target.name,
            plan.action,
        );
        row.dry_run = plan.dry_run;
        match r {
            Ok(Outcome::Done { rotation, .. }) => row = rotation,
            Ok(Outcome::Preview {
                documents,
                request,
                requests,
                ..
            }) => {
                row.phase = "Pending".into();
                row.request = request;
                report.documents.extend(documents);
                report.requests.extend(requests);
            }
            Ok(Outcome::Bulk(_)) => {}
            Err(e) => {
                row.phase = failure_phase(&e);
                // The request the target's backend had created before it failed, if any.
                row.request = submitted;
                row.message = Some(e.to_string());
                report.failed.push(e.exit_code());
            }
        }
        report.rows.push(row);
    }
    Ok(Outcome::Bulk(report))
}

/// Runs one target on its backend.
async fn run_one(
    session: &Session,
    plan: &ChangePlan,
    item: &Item,
    progress: &mut dyn Progress,
) -> Result<Outcome> {
    let plan = plan.plan_for(item.target.clone(), &item.namespace);
    let backend = backend::of(item.target.engine);
    backend.check(&plan)?;
    backend
        .change(session, &plan, item.object.clone(), progress)
        .await
}

/// The databases a plan names or selects, sorted by namespace, kind and name.
async fn find_items(session: &Session, plan: &ChangePlan, ns: &str) -> Result<Vec<Item>> {
    let mut items = match &plan.selection {
        Selection::Named(targets) => targets
            .iter()
            .map(|t| Item {
                target: t.clone(),
                namespace: ns.to_string(),
                object: None,
            })
            .collect(),
        Selection::Matching {
            engines,
            selector,
            all_namespaces,
        } => {
            let mut items = Vec::new();
            for engine in engines {
                let ar = match session.resolve(&[Wanted::engine(engine)]).await {
                    Ok(mut ars) => ars.remove(0),
                    // NB: `--all` covers the kinds the cluster has; a TYPE it lacks is an error.
                    Err(Error::OperatorMissing { .. }) if engines.len() > 1 => continue,
                    Err(e) => return Err(e),
                };
                let api: Api<DynamicObject> = if *all_namespaces {
                    Api::all_with(session.ctx().client.clone(), &ar)
                } else {
                    Api::namespaced_with(session.ctx().client.clone(), ns, &ar)
                };
                let mut lp = ListParams::default();
                if let Some(s) = selector {
                    lp = lp.labels(s);
                }
                let (objects, _) = list_all_rv(session.ctx(), &api, &lp).await?;
                items.extend(objects.into_iter().map(|o| item_of(engine, o, ns)));
            }
            items
        }
    };
    items.sort_by(|a, b| {
        (&a.namespace, a.target.engine.kind, &a.target.name).cmp(&(
            &b.namespace,
            b.target.engine.kind,
            &b.target.name,
        ))
    });
    Ok(items)
}

fn item_of(engine: &'static EngineSpec, o: DynamicObject, default_ns: &str) -> Item {
    Item {
        target: Target {
            engine,
            name: o.metadata.name.clone().unwrap_or_default(),
            typed: engine.short().to_string(),
        },
        namespace: o
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| default_ns.to_string()),
        object: Some(o),
    }
}

/// The PHASE cell of a failed row.
pub fn failure_phase(e: &Error) -> String {
    match e {
        Error::RotationFailed { phase, .. } => phase.clone(),
        Error::Timeout { .. } => "TimedOut".into(),
        Error::Interrupted { .. } => "Interrupted".into(),
        Error::InProgress { .. } => "InProgress".into(),
        Error::Conflict { .. } => "Conflict".into(),
        Error::NotFound { .. } | Error::OperatorMissing { .. } => "NotFound".into(),
        Error::Usage(_) | Error::InvalidSecret { .. } => "Invalid".into(),
        Error::Refused(_) => "Refused".into(),
        _ => "Error".into(),
    }
}

/// Progress from many targets at once: phase changes, warnings and notes, one line each;
/// the per-step conditions of 200 requests would drown them. Keeps the request the
/// target's backend submitted, for its row.
struct PhasesOnly<'a, 'p> {
    shared: &'a Mutex<&'p mut dyn Progress>,
    submitted: Option<RequestRef>,
}

impl PhasesOnly<'_, '_> {
    fn with(&self, f: impl FnOnce(&mut dyn Progress)) {
        let mut p = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut **p);
    }
}

impl Progress for PhasesOnly<'_, '_> {
    fn event(&mut self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Submitted(r) => self.submitted = Some(r.clone()),
            ProgressEvent::Phase { .. } => self.with(|p| p.event(event)),
            ProgressEvent::Condition { .. } => {}
        }
    }
    fn warn(&mut self, message: &str) {
        self.with(|p| p.warn(message));
    }
    fn note(&mut self, line: &str) {
        self.with(|p| p.note(line));
    }
}

/// The action as a verb: `rotate`, `roll back`.
pub fn verb(action: Action) -> &'static str {
    match action {
        Action::Rotate => "rotate",
        Action::Rollback => "roll back",
    }
}

/// `s` with its first letter upper-case.
pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// `s` unless `n` is 1.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The command's error when some rows failed: their common exit code, or 1 when they differ.
pub fn report_error(report: &BulkReport) -> Option<Error> {
    let first = *report.failed.first()?;
    let code = if report.failed.iter().all(|c| *c == first) {
        first
    } else {
        1
    };
    Some(Error::Partial {
        failed: report.failed.len(),
        total: report.rows.len(),
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan(args: &[&str]) -> ChangePlan {
        let cli = Cli::try_parse_from(["kubectl-rotate"].into_iter().chain(args.iter().copied()))
            .unwrap();
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        crate::cmd::auth::plan(&a, &mut std::io::empty(), false).unwrap()
    }

    #[test]
    fn all_and_all_namespaces_writes_need_a_yes_but_dry_runs_and_names_do_not() {
        assert!(plan(&["auth", "--all"]).needs_confirmation());
        assert!(plan(&["auth", "pg", "--all"]).needs_confirmation());
        assert!(plan(&["auth", "-A"]).needs_confirmation());
        assert!(plan(&["auth", "pg", "-l", "a=b", "-A"]).needs_confirmation());
        assert!(!plan(&["auth", "--all", "--yes"]).needs_confirmation());
        assert!(!plan(&["auth", "--all", "-A", "--dry-run"]).needs_confirmation());
        assert!(!plan(&["auth", "pg/a", "ms/b"]).needs_confirmation());
        assert!(!plan(&["auth", "pg", "-l", "a=b"]).needs_confirmation());
        assert!(plan(&["auth", "-l", "a=b", "--all"]).needs_confirmation());
    }

    #[test]
    fn the_exit_code_of_a_partial_failure_is_the_common_one_else_one() {
        let pg = crate::engines::find("pg").unwrap();
        let mut r = BulkReport {
            rows: vec![Rotation::new("ns", pg, "a", Action::Rotate); 3],
            ..Default::default()
        };
        assert!(report_error(&r).is_none());
        r.failed = vec![6, 6];
        let e = report_error(&r).unwrap();
        assert_eq!(e.exit_code(), 6);
        assert_eq!(e.to_string(), "2 of 3 databases failed; their rows say why");
        r.failed = vec![6, 5];
        assert_eq!(report_error(&r).unwrap().exit_code(), 1);
    }

    #[test]
    fn a_failed_row_keeps_the_request_its_backend_had_submitted() {
        let r = RequestRef {
            kind: "PostgresOpsRequest".into(),
            group: "ops.kubedb.com".into(),
            name: "pg-a-rotate-auth-12345".into(),
        };
        let mut sink = crate::report::tests::Recorder::default();
        {
            let shared: Mutex<&mut dyn Progress> = Mutex::new(&mut sink);
            let mut p = PhasesOnly {
                shared: &shared,
                submitted: None,
            };
            p.event(&ProgressEvent::Submitted(r.clone()));
            p.event(&ProgressEvent::Condition {
                request: r.name.clone(),
                type_: "UpdateCredential".into(),
                status: "True".into(),
                message: String::new(),
            });
            assert_eq!(p.submitted, Some(r));
        }
        assert!(
            sink.events.is_empty(),
            "neither the submission nor a step is printed"
        );
        let failed = Error::RotationFailed {
            request: "postgresopsrequest pg-a-rotate-auth-12345".into(),
            phase: "Failed".into(),
            reason: "x".into(),
        };
        assert_eq!(failure_phase(&failed), "Failed");
    }
}
