//! `kubectl rotate verify TYPE/NAME`: log in with the current credential (it must be
//! accepted) and the previous one (it must be refused), against the real database.
//! The work is in [`crate::verify`]; this file checks the flags (also `auth --verify`'s)
//! and runs it.

use std::time::Duration;

use crate::cli::{Cli, Command, LoginArgs, VerifyArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::plan::ChangePlan;
use crate::report::Progress;
use crate::target::Target;
use crate::verify::reach::{self, VerifyPlan};
use crate::verify::{route, unsupported, VerifyReport};

/// Checks `verify` arguments (pure: before any API call). An engine without a login client
/// is refused here, before the kubeconfig is read (exit 9).
/// `verbosity` is `-v`'s level.
pub fn plan(args: &VerifyArgs, verbosity: u8) -> Result<VerifyPlan> {
    let target = Target::parse(&args.target)?;
    login_plan(target, &args.login, verbosity)
}

/// Logs in to the target in the context's namespace; `-v=2` and `-v=4` lines go to
/// `progress`. The
/// report's [`VerifyReport::verdict`] turns the results into the exit code (7 wrong
/// result, 8 unreachable, 1 other failure).
pub async fn run(
    ctx: &Ctx,
    plan: &VerifyPlan,
    progress: &mut dyn Progress,
) -> Result<VerifyReport> {
    reach::run(ctx, &ctx.namespace, plan, progress).await
}

/// The login part of a plan, shared with `auth --verify` and `rollback --verify`.
pub fn login_plan(target: Target, login: &LoginArgs, verbosity: u8) -> Result<VerifyPlan> {
    if route(target.engine).is_none() {
        return Err(unsupported(target.engine));
    }
    let address = login.address.as_deref().map(check_address).transpose()?;
    let attempt_timeout = login.login_timeout.get();
    if attempt_timeout.is_zero() {
        return Err(Error::Usage("--login-timeout must be more than 0".into()));
    }
    Ok(VerifyPlan {
        target,
        address,
        insecure: login.insecure_skip_db_tls_verify,
        require_tls: login.require_tls,
        attempt_timeout: attempt_timeout.min(Duration::from_secs(3600)),
        verbosity,
    })
}

/// What `auth --verify` / `rollback --verify` do once the change is done.
#[derive(Clone, Debug)]
pub struct AfterChange {
    /// How to log in.
    pub plan: VerifyPlan,
    /// `--rollback-on-failure`.
    pub rollback_on_failure: bool,
}

/// Checks `--verify` and its login flags on `auth` and `rollback` (pure: before any API
/// call, so an engine without a login client is refused before anything is written).
pub fn after_plan(cli: &Cli, plan: &ChangePlan) -> Result<Option<AfterChange>> {
    let (change, rollback_on_failure) = match &cli.command {
        Command::Auth(a) => (&a.change, a.rollback_on_failure),
        Command::Rollback(a) => (&a.change, false),
        Command::Retry(a) => (&a.change, false),
        _ => return Ok(None),
    };
    if !change.verify {
        let l = &change.login;
        if l.address.is_some() || l.insecure_skip_db_tls_verify || l.require_tls {
            return Err(Error::Usage(
                "--address, --insecure-skip-db-tls-verify and --require-tls go with --verify"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let Some(target) = plan.selection.single() else {
        return Err(Error::Usage(
            "--verify checks one database: name exactly one TYPE/NAME (then run `kubectl \
             rotate verify` for others)"
                .into(),
        ));
    };
    Ok(Some(AfterChange {
        plan: login_plan(target.clone(), &change.login, cli.kube.verbosity)?,
        rollback_on_failure,
    }))
}

/// `HOST:PORT` (IPv6 as `[::1]:5432`), with a port in 1..=65535.
fn check_address(a: &str) -> Result<String> {
    let bad = || {
        Error::Usage(format!(
            "invalid --address {a:?}: use HOST:PORT, e.g. 127.0.0.1:5432 or [::1]:5432"
        ))
    };
    let (host, port) = a.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || (host.contains(':') && !host.starts_with('[')) {
        return Err(bad());
    }
    Ok(a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<VerifyPlan> {
        let cli =
            Cli::try_parse_from(std::iter::once("kubectl-rotate").chain(args.iter().copied()))
                .unwrap();
        let Command::Verify(a) = cli.command else {
            panic!()
        };
        plan(&a, cli.kube.verbosity)
    }

    #[test]
    fn a_verify_plan_defaults_to_port_forward_ten_second_attempts_and_no_insecure_tls() {
        let p = parse(&["verify", "pg/pg-demo"]).unwrap();
        assert_eq!(p.target.name, "pg-demo");
        assert_eq!(p.address, None);
        assert!(!p.insecure);
        assert_eq!(p.attempt_timeout, Duration::from_secs(10));
        assert_eq!(p.verbosity, 0);
        let p = parse(&[
            "verify",
            "md",
            "md-demo",
            "--address",
            "127.0.0.1:3306",
            "--insecure-skip-db-tls-verify",
            "--login-timeout",
            "2s",
            "-v=4",
        ])
        .unwrap();
        assert_eq!(p.address.as_deref(), Some("127.0.0.1:3306"));
        assert!(p.insecure);
        assert_eq!(p.attempt_timeout, Duration::from_secs(2));
        assert_eq!(p.verbosity, 4);
    }

    #[test]
    fn bad_addresses_and_timeouts_are_usage_errors() {
        for a in ["localhost", "host:", ":5432", "h:0", "h:99999", "::1:5432"] {
            let e = parse(&["verify", "pg/x", "--address", a]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{a}");
        }
        assert!(parse(&["verify", "pg/x", "--address", "[::1]:5432"]).is_ok());
        let e = parse(&["verify", "pg/x", "--login-timeout", "0"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn an_engine_without_a_login_client_is_refused_with_exit_9_before_any_api_call() {
        let e = parse(&["verify", "cassandra/c"]).unwrap_err();
        assert_eq!(e.exit_code(), 9);
        assert_eq!(
            e.to_string(),
            "verification not supported for Cassandra: no login client for its wire protocol \
             (supported: PostgreSQL, MySQL/MariaDB, SQL Server, MongoDB, Redis, Elasticsearch)"
        );
    }
}
