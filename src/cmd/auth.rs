//! `kubectl rotate auth TYPE/NAME`: rotate credentials.

use crate::backend::Plan;
use crate::cli::AuthArgs;
use crate::engines::Backend;
use crate::error::{Error, Result};
use crate::rotation::Action;
use crate::target::{validate_name, Target};

/// Checks `auth` arguments into a plan (pure: before any API call).
pub fn plan(args: &AuthArgs) -> Result<Plan> {
    let target = Target::parse(&args.target)?;
    if let Some(secret) = &args.secret {
        if target.engine.backend == Backend::Arc {
            return Err(Error::Usage(format!(
                "--secret does not apply to {}: Arc generates its service-managed credentials itself",
                target.engine.kind
            )));
        }
        validate_name(secret)
            .map_err(|_| Error::Usage(format!("--secret {secret:?} is not a valid Secret name")))?;
    }
    super::plan(Action::Rotate, target, &args.change, args.secret.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan_of(args: &[&str]) -> Result<Plan> {
        let cli =
            Cli::try_parse_from(std::iter::once("kubectl-rotate").chain(args.iter().copied()))
                .unwrap();
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        plan(&a)
    }

    #[test]
    fn a_secret_for_an_arc_instance_is_a_usage_error() {
        assert_eq!(
            plan_of(&["auth", "sqlmi/x", "--secret", "s"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn waiting_on_a_dry_run_is_a_usage_error() {
        assert_eq!(
            plan_of(&["auth", "pg/x", "--wait", "--dry-run=server"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn a_valid_request_becomes_a_plan() {
        let p = plan_of(&[
            "auth",
            "ms/mssql-demo",
            "--secret",
            "new-auth",
            "--timeout",
            "2m",
            "--wait",
        ])
        .unwrap();
        assert_eq!(p.target.engine.kind, "MSSQLServer");
        assert_eq!(p.secret.as_deref(), Some("new-auth"));
        assert_eq!(p.wait_bound(), std::time::Duration::from_secs(120));
        assert_eq!(p.action, Action::Rotate);
    }
}
