//! `kubectl rotate verify TYPE/NAME`: log in with the current credential (it must be
//! accepted) and the previous one (it must be refused), against the real database.
//! The work is in [`crate::verify`]; this file checks the flags and runs it.

use std::io::Write;
use std::time::Duration;

use crate::backend::NewCredential;
use crate::bulk::BulkPlan;
use crate::cli::{Cli, Command, DryRun, Format, LoginArgs, VerifyArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::output::WriterProgress;
use crate::rotation::{Action, Outcome};
use crate::target::Target;
use crate::verify::reach::{self, VerifyPlan};
use crate::verify::{route, unsupported, VerifyReport};

/// Checks `verify` arguments (pure: before any API call). An engine without a login client
/// is refused here, before the kubeconfig is read (exit 9).
pub fn plan(args: &VerifyArgs) -> Result<VerifyPlan> {
    let target = Target::parse(&args.target)?;
    login_plan(target, &args.login)
}

/// Runs `verify`: check the flags, connect, log in, print the table, and turn the results
/// into the exit code (7 wrong result, 8 unreachable, 1 other failure).
pub async fn run(
    cli: &Cli,
    args: &VerifyArgs,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<()> {
    let plan = plan(args)?;
    let ctx = Ctx::connect(&cli.kube).await?;
    let report = crate::verify::reach::run(&ctx, &ctx.namespace, &plan, err).await?;
    crate::output::verify::report(&report, cli.output.output, out, err)?;
    out.flush()?;
    report.verdict()?;
    writeln!(err, "{}", report.summary())?;
    Ok(())
}

/// The login part of a plan, shared with `auth --verify` and `rollback --verify`.
pub fn login_plan(target: Target, login: &LoginArgs) -> Result<VerifyPlan> {
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
        insecure: login.insecure_skip_tls_verify,
        attempt_timeout: attempt_timeout.min(Duration::from_secs(3600)),
        verbose: login.verbose,
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
pub fn after_plan(cli: &Cli, plan: &BulkPlan) -> Result<Option<AfterChange>> {
    let (change, rollback_on_failure) = match &cli.command {
        Command::Auth(a) => (&a.change, a.rollback_on_failure),
        Command::Rollback(a) => (&a.change, false),
        _ => return Ok(None),
    };
    if !change.verify {
        let l = &change.login;
        if l.address.is_some() || l.insecure_skip_tls_verify || l.verbose > 0 {
            return Err(Error::Usage(
                "--address, --insecure-skip-tls-verify and -v go with --verify".into(),
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
        plan: login_plan(target.clone(), &change.login)?,
        rollback_on_failure,
    }))
}

/// After a successful `auth --wait` or `rollback --wait`: verify the logins, print the
/// table after the rotation's, and with `--rollback-on-failure` roll back by itself when
/// the new credential is not accepted (or the old one still is), then verify again.
pub async fn after_change(
    ctx: &Ctx,
    bulk: &BulkPlan,
    after: &AfterChange,
    format: Format,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<()> {
    let target = &after.plan.target;
    writeln!(err, "verifying logins to {target} ...")?;
    let first = reach::run(ctx, &bulk.namespace, &after.plan, err).await?;
    print_after(&first, format, out, err)?;
    let failure = match first.verdict() {
        Ok(()) => {
            writeln!(err, "{}", first.summary())?;
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
    writeln!(
        err,
        "the new credential failed verification; rolling back (--rollback-on-failure) ..."
    )?;
    let mut rb = bulk.clone();
    rb.action = Action::Rollback;
    rb.credential = NewCredential::Operator;
    rb.wait = true;
    rb.dry_run = DryRun::None;
    let rolled = {
        let mut progress = WriterProgress::new(&mut *err);
        super::execute(ctx, &rb, &mut progress).await
    };
    let rolled = match rolled {
        Ok(o) => o,
        Err(e) => {
            return Err(Error::LoginWrong(format!(
                "{failure}. The automatic rollback failed: {e}. State: the auth Secret holds \
                 the new credential, which the database does not accept; follow the rollback \
                 with `kubectl rotate status {target} -n {}` and fix it by hand",
                bulk.namespace
            )))
        }
    };
    if matches!(format, Format::Table | Format::Wide) {
        writeln!(out)?;
    }
    crate::output::print_outcome(&rolled, format, out, err)?;
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
    writeln!(err, "verifying logins to {target} after the rollback ...")?;
    let second = reach::run(ctx, &bulk.namespace, &after.plan, err).await?;
    print_after(&second, format, out, err)?;
    out.flush()?;
    let state = match second.verdict() {
        Ok(()) => "State: the database is back on the previous credential, which it accepts \
                   (verified), and the auth Secret holds it again; the rotation did not take \
                   effect"
            .to_string(),
        Err(e) => format!(
            "State: after the rollback verification still fails ({e}); check the database \
             and `kubectl rotate prev {target} -n {}`",
            bulk.namespace
        ),
    };
    Err(Error::LoginWrong(format!(
        "{failure}. Rolled back automatically (--rollback-on-failure): {what}. {state}"
    )))
}

/// The verification table after a rotation's: a blank line between tables, a YAML
/// document separator, or a second JSON document; nothing more with `-o name`.
fn print_after(
    report: &VerifyReport,
    format: Format,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<()> {
    match format {
        Format::Name => {}
        Format::Yaml => writeln!(out, "---")?,
        _ => writeln!(out)?,
    }
    if format != Format::Name {
        crate::output::verify::report(report, format, out, err)?;
    } else {
        for n in &report.notes {
            writeln!(err, "note: {n}")?;
        }
    }
    Ok(())
}

/// Appends what state things are in to a verification error, keeping its exit code.
fn with_state(e: Error, state: &str) -> Error {
    match e {
        Error::DbUnreachable(m) => Error::DbUnreachable(format!("{m}; {state}")),
        Error::LoginError(m) => Error::LoginError(format!("{m}; {state}")),
        other => other,
    }
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
        plan(&a)
    }

    #[test]
    fn a_verify_plan_defaults_to_port_forward_ten_second_attempts_and_no_insecure_tls() {
        let p = parse(&["verify", "pg/pg-demo"]).unwrap();
        assert_eq!(p.target.name, "pg-demo");
        assert_eq!(p.address, None);
        assert!(!p.insecure);
        assert_eq!(p.attempt_timeout, Duration::from_secs(10));
        assert_eq!(p.verbose, 0);
        let p = parse(&[
            "verify",
            "md",
            "md-demo",
            "--address",
            "127.0.0.1:3306",
            "--insecure-skip-tls-verify",
            "--login-timeout",
            "2s",
            "-vv",
        ])
        .unwrap();
        assert_eq!(p.address.as_deref(), Some("127.0.0.1:3306"));
        assert!(p.insecure);
        assert_eq!(p.attempt_timeout, Duration::from_secs(2));
        assert_eq!(p.verbose, 2);
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
