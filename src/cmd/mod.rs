//! One file per verb: check the arguments into a [`Plan`](crate::backend::Plan), hand it to
//! the backend, return data. Verbs never print.

pub mod auth;
pub mod history;
pub mod list;
pub mod prev;
pub mod rollback;
pub mod status;
pub mod verify;

use crate::backend::{self, NewCredential};
use crate::bulk::BulkPlan;
use crate::cli::{ChangeArgs, DryRun, SelectArgs};
use crate::context::Ctx;
use crate::engines::Backend;
use crate::error::{Error, Result};
use crate::rotation::{Action, Outcome, Progress};
use crate::target::Selection;

/// Checks the flags shared by auth and rollback (pure: before any API call). The namespace
/// is filled in once the kubeconfig is read.
pub fn plan(
    action: Action,
    select: &SelectArgs,
    change: &ChangeArgs,
    credential: NewCredential,
) -> Result<BulkPlan> {
    if change.wait && change.dry_run != DryRun::None {
        return Err(Error::Usage(
            "--wait cannot be combined with --dry-run: a dry run starts nothing to wait for".into(),
        ));
    }
    if change.timeout.as_ref().is_some_and(|t| t.is_zero()) {
        return Err(Error::Usage("--timeout must be more than 0".into()));
    }
    let selection = Selection::parse(select)?;
    Ok(BulkPlan {
        action,
        selection,
        namespace: String::new(),
        apply: change.apply,
        wait: change.wait,
        timeout: change.timeout.clone(),
        dry_run: change.dry_run,
        credential,
        parallel: usize::from(select.parallel),
        yes: select.yes,
        sweeping: select.all || select.all_namespaces,
    })
}

/// Runs a checked plan: one named target on the backend its engine row names, as it
/// always did; several, or a selection, through [`crate::bulk`].
pub async fn execute(ctx: &Ctx, plan: &BulkPlan, progress: &mut dyn Progress) -> Result<Outcome> {
    let Some(target) = plan.selection.single() else {
        return crate::bulk::run(ctx, plan, progress).await;
    };
    let plan = plan.plan_for(target.clone(), &plan.namespace)?;
    match plan.target.engine.backend {
        Backend::Arc => backend::arc::run(ctx, &plan, progress).await,
        Backend::KubeDb(_) => backend::kubedb::run(ctx, &plan, progress).await,
    }
}
