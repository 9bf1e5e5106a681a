//! `auth` and `rollback` once planned: one target on its backend, several through
//! [`super::bulk`]; the result to the [`Ui`]; then, with `--verify`, the logins, and with
//! `--rollback-on-failure` an automatic rollback when the new credential is refused.

use crate::api::session::Session;
use crate::backend;
use crate::cli::DryRun;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::plan::{ChangePlan, NewCredential};
use crate::report::{Action, Outcome, Progress};
use crate::verify::reach;

use super::verify::AfterChange;
use super::Ui;

/// Runs a checked plan in namespace `ns` (`-n`, else the context's) and hands the result
/// to `ui`; with `after`, verifies the logins (see [`verify_after`]).
pub async fn run(
    ctx: &Ctx,
    plan: &ChangePlan,
    ns: &str,
    after: Option<&AfterChange>,
    ui: &mut dyn Ui,
) -> Result<()> {
    // What --verify will need is checked before anything is written.
    if let Some(after) = after.filter(|_| plan.dry_run == DryRun::None) {
        reach::preflight(ctx, ns, &after.plan).await?;
    }
    if let (Some(age), Some(target)) = (&plan.older_than, plan.selection.single()) {
        if let Some(why) = super::auth::not_due(ctx, target, ns, age).await? {
            ui.note(&why);
            return Ok(());
        }
    }
    let outcome = execute(ctx, plan, ns, ui).await?;
    ui.outcome(&outcome)?;
    // Several targets: the table is printed either way; any failed row fails the command.
    if let Outcome::Bulk(report) = &outcome {
        if let Some(e) = super::bulk::report_error(report) {
            // NB: the rows that succeeded did change their passwords, so their consumers
            // still need the restart; unless --verify was asked, which did not run.
            if plan.restart_consumers && after.is_none() {
                if let Err(restart) = restart_consumers(ctx, plan, ns, &outcome, ui).await {
                    ui.warn(&restart.to_string());
                }
            }
            return Err(e);
        }
    }
    if let Some(after) = after {
        verify_after(ctx, plan, ns, after, ui).await?;
    }
    if plan.restart_consumers {
        restart_consumers(ctx, plan, ns, &outcome, ui).await?;
    }
    Ok(())
}

/// `--restart-consumers`, once everything before it succeeded: the consumers of every
/// target whose change is done (the rows that did not fail).
async fn restart_consumers(
    ctx: &Ctx,
    plan: &ChangePlan,
    ns: &str,
    outcome: &Outcome,
    ui: &mut dyn Ui,
) -> Result<()> {
    let rotations = match outcome {
        Outcome::Done { rotation, .. } => vec![rotation.clone()],
        Outcome::Bulk(report) => report.rows.clone(),
        Outcome::Preview { .. } => return Ok(()),
    };
    let done = |phase: &str| matches!(phase, "Successful" | "Ready");
    let targets: Vec<(String, crate::target::Target)> = rotations
        .iter()
        .filter(|r| done(&r.phase))
        .filter_map(|r| {
            let engine = crate::engines::ENGINES
                .iter()
                .find(|e| e.kind == r.subject.target_kind)?;
            Some((
                r.subject.namespace.clone(),
                crate::target::Target {
                    engine,
                    name: r.subject.name.clone(),
                    typed: engine.short().to_string(),
                },
            ))
        })
        .collect();
    let timeout = plan
        .timeout
        .as_ref()
        .map(|t| t.get())
        .unwrap_or(super::restart::DEFAULT_TIMEOUT);
    let rows = super::restart::run(ctx, &targets, timeout, ui).await?;
    ui.restarts(&rows)?;
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failed)
        .map(|r| format!("{}/{}", r.kind.to_ascii_lowercase(), r.name))
        .collect();
    match failed.is_empty() {
        true => Ok(()),
        false => {
            Err(Error::RolloutFailed(format!(
            "the change was made, but the rollout of {} did not finish: see its row; follow it \
             with `kubectl rollout status {} -n {}`",
            failed.join(", "),
            failed[0],
            rows.iter().find(|r| r.failed).map_or(ns, |r| r.namespace.as_str())
        )))
        }
    }
}

/// One named target on its engine's backend; several, or a selection, through
/// [`super::bulk`].
async fn execute(ctx: &Ctx, plan: &ChangePlan, ns: &str, ui: &mut dyn Ui) -> Result<Outcome> {
    let Some(target) = plan.selection.single() else {
        return super::bulk::run(ctx, plan, ns, ui).await;
    };
    let plan = plan.plan_for(target.clone(), ns);
    let backend = backend::of(target.engine);
    backend.check(&plan)?;
    let progress: &mut dyn Progress = ui;
    backend
        .change(&Session::single(ctx), &plan, None, progress)
        .await
}

/// After a successful `auth --wait` or `rollback --wait`: verify the logins, and with
/// `--rollback-on-failure` roll back by itself when the new credential is not accepted (or
/// the old one still is), then verify again. The error says what state things are in.
async fn verify_after(
    ctx: &Ctx,
    plan: &ChangePlan,
    ns: &str,
    after: &AfterChange,
    ui: &mut dyn Ui,
) -> Result<()> {
    let target = &after.plan.target;
    ui.note(&format!("verifying logins to {target} ..."));
    let first = verify(ctx, ns, after, ui).await?;
    ui.verification(&first)?;
    let failure = match first.verdict() {
        Ok(()) => {
            ui.note(&first.summary());
            return Ok(());
        }
        Err(e) => e,
    };
    if !after.rollback_on_failure {
        return Err(failure);
    }
    if !matches!(failure, Error::LoginWrong(_)) {
        // NB: only a definite verdict triggers a rollback: an unreachable database says
        // nothing about the new credential.
        return Err(with_state(
            failure,
            "not rolled back: the new credential could not be tested; it is in the auth \
             Secret and the database is as the rotation left it",
        ));
    }
    ui.note("the new credential failed verification; rolling back (--rollback-on-failure) ...");
    let mut rb = plan.clone();
    rb.action = Action::Rollback;
    rb.credential = NewCredential::Operator;
    rb.wait = true;
    rb.dry_run = DryRun::None;
    let rolled = match execute(ctx, &rb, ns, ui).await {
        Ok(o) => o,
        Err(e) => {
            return Err(Error::LoginWrong(format!(
                "{failure}. The automatic rollback failed: {e}. State: the auth Secret holds \
                 the new credential, which the database does not accept; follow the rollback \
                 with `kubectl rotate status {target} -n {ns}` and fix it by hand"
            )))
        }
    };
    ui.outcome(&rolled)?;
    let what = match &rolled {
        Outcome::Done { rotation, .. } => match (&rotation.request, &rotation.generation) {
            (Some(r), _) => format!(
                "{} {} {}",
                r.kind.to_ascii_lowercase(),
                r.name,
                rotation.phase
            ),
            (None, Some(g)) => format!("generation {}->{} {}", g.from, g.to, rotation.phase),
            _ => rotation.phase.clone(),
        },
        _ => "done".into(),
    };
    ui.note(&format!(
        "verifying logins to {target} after the rollback ..."
    ));
    let second = verify(ctx, ns, after, ui).await?;
    ui.verification(&second)?;
    let state = match second.verdict() {
        Ok(()) => "State: the database is back on the previous credential, which it accepts \
                   (verified), and the auth Secret holds it again; the rotation did not take \
                   effect"
            .to_string(),
        Err(e) => format!(
            "State: after the rollback verification still fails ({e}); check the database \
             and `kubectl rotate prev {target} -n {ns}`"
        ),
    };
    Err(Error::LoginWrong(format!(
        "{failure}. Rolled back automatically (--rollback-on-failure): {what}. {state}"
    )))
}

/// One round of logins, its `-v` lines as progress notes.
async fn verify(
    ctx: &Ctx,
    ns: &str,
    after: &AfterChange,
    ui: &mut dyn Ui,
) -> Result<crate::verify::VerifyReport> {
    let progress: &mut dyn Progress = ui;
    reach::run(ctx, ns, &after.plan, progress).await
}

/// Appends what state things are in to a verification error, keeping its exit code.
fn with_state(e: Error, state: &str) -> Error {
    match e {
        Error::DbUnreachable(m) => Error::DbUnreachable(format!("{m}; {state}")),
        Error::LoginError(m) => Error::LoginError(format!("{m}; {state}")),
        other => other,
    }
}
