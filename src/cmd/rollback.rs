//! `kubectl rotate rollback TYPE/NAME ...`: go back to the previous credentials.

use crate::cli::RollbackArgs;
use crate::error::Result;
use crate::plan::{ChangePlan, NewCredential};
use crate::report::Action;

/// Checks `rollback` arguments into a plan (pure: before any API call).
pub fn plan(args: &RollbackArgs) -> Result<ChangePlan> {
    super::change_plan(
        Action::Rollback,
        &args.targets,
        &args.change,
        NewCredential::Operator,
        args.force,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn a_rollback_plan_has_no_credential_flags_and_the_rollback_action() {
        let cli = Cli::try_parse_from([
            "kubectl-rotate",
            "rollback",
            "pg",
            "pg-demo",
            "--apply",
            "Always",
        ])
        .unwrap();
        let Command::Rollback(a) = cli.command else {
            panic!()
        };
        let p = plan(&a).unwrap();
        assert_eq!(p.action, Action::Rollback);
        assert_eq!(p.credential, NewCredential::Operator);
        assert_eq!(p.selection.single().unwrap().name, "pg-demo");
    }
}
