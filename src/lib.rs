//! kubectl-rotate: rotate database credentials on Kubernetes (Azure Arc SQL Managed
//! Instance and KubeDB), as a kubectl plugin.
//!
//! `main.rs` parses the command line and calls [`run`]; everything else lives here so tests
//! can drive it directly. Only [`output`] writes results; progress goes to stderr through
//! the [`rotation::Progress`] trait.
//!
//! Exit codes are documented on [`error`] and decided by [`Error::exit_code`].

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod audit;
pub mod backend;
pub mod bulk;
pub mod cli;
pub mod cmd;
pub mod context;
pub mod creds;
pub mod duration;
pub mod engines;
pub mod error;
pub mod inspect;
pub mod output;
pub mod password;
pub mod rotation;
pub mod target;
pub mod tls;
pub mod verify;

use std::io::Write;

pub use error::{Error, Result};

use cli::{Cli, Command};
use context::Ctx;
use output::WriterProgress;

/// Runs a parsed command line: results to `out` (stdout), progress and notes to `err` (stderr).
pub async fn run(
    cli: Cli,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<()> {
    // Check the input first: bad input must not even read the kubeconfig.
    let mut plan = match &cli.command {
        Command::Auth(a) => cmd::auth::plan(a)?,
        Command::Rollback(a) => cmd::rollback::plan(a)?,
        // The inspection verbs only read: they have their own flow (src/inspect).
        Command::Prev(_) | Command::Status(_) | Command::History(_) | Command::List(_) => {
            return inspect::run(&cli, out, err).await;
        }
        // Reads too, then logs in to the database itself.
        Command::Verify(a) => return cmd::verify::run(&cli, a, out, err).await,
    };
    let after = cmd::verify::after_plan(&cli, &plan)?;
    let ctx = Ctx::connect(&cli.kube).await?;
    plan.namespace = ctx.namespace.clone();
    let outcome = {
        let mut progress = WriterProgress::new(&mut *err);
        cmd::execute(&ctx, &plan, &mut progress).await?
    };
    output::print_outcome(&outcome, cli.output.output, out, err)?;
    out.flush()?;
    // Several targets: the table is printed either way; any failed row fails the command.
    if let rotation::Outcome::Bulk(report) = &outcome {
        if let Some(e) = bulk::report_error(report) {
            return Err(e);
        }
    }
    // `--verify`: log in with the new credential (and roll back if asked and it fails).
    if let Some(after) = &after {
        cmd::verify::after_change(&ctx, &plan, after, cli.output.output, out, err).await?;
    }
    Ok(())
}

/// Runs a parsed command line on the process's stdout and stderr and returns the exit code.
pub async fn main(cli: Cli) -> u8 {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    match run(cli, &mut out, &mut err).await {
        Ok(()) => 0,
        Err(e) => {
            output::print_error(&mut err, &e);
            e.exit_code()
        }
    }
}
