//! `kubectl rotate retry TYPE/NAME`: re-run the last rotation of a database when it Failed,
//! as it was (the seeds' Azure Stack `Start-SecretRotation -ReRun`). The backend finds
//! the failed request and what it asked for; the rest is a rotation like any other, under
//! the same lock, with the same records and exit codes.

use crate::cli::{RetryArgs, SelectArgs};
use crate::error::Result;
use crate::plan::{ChangePlan, NewCredential};
use crate::report::Action;

/// Checks `retry` arguments into a plan (pure: before any API call). The action is the
/// failed request's, known once it is read; `Rotate` stands for it until then.
pub fn plan(args: &RetryArgs) -> Result<ChangePlan> {
    let select = SelectArgs {
        targets: std::iter::once(args.target.target.clone())
            .chain(args.target.name.clone())
            .collect(),
        parallel: 1,
        ..SelectArgs::default()
    };
    let mut plan = super::change_plan(
        Action::Rotate,
        &select,
        &args.change,
        NewCredential::Operator,
        false,
    )?;
    plan.retry = true;
    // NB: one target, so only several contexts ask for confirmation.
    plan.yes = args.yes;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ChangePlan> {
        let cli =
            Cli::try_parse_from(std::iter::once("kubectl-rotate").chain(args.iter().copied()))
                .unwrap();
        let Command::Retry(a) = cli.command else {
            panic!()
        };
        plan(&a)
    }

    #[test]
    fn a_retry_plan_names_one_database_in_either_form() {
        for args in [&["retry", "pg/pg-demo"][..], &["retry", "pg", "pg-demo"]] {
            let p = parse(args).unwrap();
            assert!(p.retry);
            assert_eq!(p.selection.single().unwrap().name, "pg-demo");
            assert_eq!(p.credential, NewCredential::Operator);
        }
        assert_eq!(parse(&["retry", "pg/"]).unwrap_err().exit_code(), 2);
    }
}
