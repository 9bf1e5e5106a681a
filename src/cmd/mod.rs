//! One file per verb: check the arguments into a [`Plan`](crate::backend::Plan), hand it to
//! the backend, return data. Verbs never print.

pub mod auth;
pub mod rollback;

use crate::backend::{self, Plan};
use crate::cli::{ChangeArgs, DryRun};
use crate::context::Ctx;
use crate::engines::Backend;
use crate::error::{Error, Result};
use crate::rotation::{Action, Outcome, Progress};
use crate::target::Target;

/// Checks the flags shared by auth and rollback (pure: before any API call). The namespace
/// is filled in once the kubeconfig is read.
pub fn plan(
    action: Action,
    target: Target,
    change: &ChangeArgs,
    secret: Option<String>,
) -> Result<Plan> {
    if change.wait && change.dry_run != DryRun::None {
        return Err(Error::Usage(
            "--wait cannot be combined with --dry-run: a dry run starts nothing to wait for".into(),
        ));
    }
    if change.timeout.as_ref().is_some_and(|t| t.is_zero()) {
        return Err(Error::Usage("--timeout must be more than 0".into()));
    }
    Ok(Plan {
        action,
        target,
        namespace: String::new(),
        apply: change.apply,
        wait: change.wait,
        timeout: change.timeout.clone(),
        dry_run: change.dry_run,
        secret,
    })
}

/// Runs a checked plan on the backend its engine row names.
pub async fn execute(ctx: &Ctx, plan: &Plan, progress: &mut dyn Progress) -> Result<Outcome> {
    match plan.target.engine.backend {
        Backend::Arc => backend::arc::run(ctx, plan, progress).await,
        Backend::KubeDb(_) => backend::kubedb::run(ctx, plan, progress).await,
    }
}
