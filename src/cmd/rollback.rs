//! `kubectl rotate rollback TYPE/NAME`: go back to the previous credentials.

use crate::backend::Plan;
use crate::cli::RollbackArgs;
use crate::error::Result;
use crate::rotation::Action;
use crate::target::Target;

/// Checks `rollback` arguments into a plan (pure: before any API call).
pub fn plan(args: &RollbackArgs) -> Result<Plan> {
    let target = Target::parse(&args.target)?;
    super::plan(Action::Rollback, target, &args.change, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn a_rollback_plan_has_no_secret_and_the_rollback_action() {
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
        assert!(p.secret.is_none());
        assert_eq!(p.target.name, "pg-demo");
    }
}
