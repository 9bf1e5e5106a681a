//! One file per verb, each in the same shape: `plan` turns the arguments into a checked
//! plan (no I/O; bad input changes nothing), `run` makes the API calls through a backend and
//! returns data, and `output/` prints it. The change verbs (`auth`, `rollback`) share
//! [`change`], which hands its results to a [`Ui`] as they become available, since a
//! verification or an automatic rollback follows the rotation's table.

pub mod auth;
pub mod bulk;
pub mod change;
pub mod complete;
pub mod consumers;
pub mod history;
pub mod list;
pub mod prev;
pub mod restart;
pub mod retry;
pub mod rollback;
pub mod schedule;
pub mod status;
pub mod verify;

use crate::cli::{ChangeArgs, DryRun, SelectArgs};
use crate::error::{Error, Result};
use crate::plan::{ChangePlan, NewCredential};
use crate::report::{Action, Outcome, Progress, RestartRow};
use crate::target::Selection;
use crate::verify::VerifyReport;

/// What a verb talks to while it runs: progress on stderr, its results as they become
/// available (printed by `output/`), and the user, for a confirmation. Implemented by
/// `output::Console` over the process's streams, or over buffers in tests.
pub trait Ui: Progress {
    /// A rotation's or a rollback's result.
    fn outcome(&mut self, outcome: &Outcome) -> Result<()>;
    /// A login verification's result, printed after the rotation's.
    fn verification(&mut self, report: &VerifyReport) -> Result<()>;
    /// What `--restart-consumers` did, printed after the rotation's (and verification's).
    fn restarts(&mut self, rows: &[RestartRow]) -> Result<()>;
    /// Whether someone can answer a question (stdin is a terminal).
    fn can_ask(&self) -> bool;
    /// Asks a yes/no question; anything but yes is no.
    fn ask(&mut self, question: &str) -> Result<bool>;
}

/// Checks the flags shared by auth and rollback (pure: before any API call). The namespace
/// is the one the kubeconfig names, given once it has been read ([`ChangePlan::namespace`]).
pub fn change_plan(
    action: Action,
    select: &SelectArgs,
    change: &ChangeArgs,
    credential: NewCredential,
    force: bool,
) -> Result<ChangePlan> {
    if change.wait && change.dry.dry_run != DryRun::None {
        return Err(Error::Usage(
            "--wait cannot be combined with --dry-run: a dry run starts nothing to wait for".into(),
        ));
    }
    // NB: KubeDB takes --timeout as each step's timeout on the server: under a second,
    // every step would time out at once.
    if change
        .timeout
        .as_ref()
        .is_some_and(|t| t.get() < std::time::Duration::from_secs(1))
    {
        return Err(Error::Usage(
            "--timeout must be at least 1s (KubeDB also bounds each step of the rotation by it)"
                .into(),
        ));
    }
    let selection = Selection::parse(select)?;
    Ok(ChangePlan {
        action,
        selection,
        apply: change.apply,
        wait: change.wait,
        timeout: change.timeout.clone(),
        dry_run: change.dry.dry_run,
        credential,
        force,
        retry: false,
        parallel: usize::from(select.parallel),
        yes: select.yes,
        sweeping: select.all || select.all_namespaces,
        restart_consumers: change.restart_consumers,
        older_than: None,
    })
}
