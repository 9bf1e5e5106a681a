//! kubectl-rotate: rotate database credentials on Kubernetes (Azure Arc SQL Managed
//! Instance and KubeDB), as a kubectl plugin.
//!
//! `main.rs` parses the command line and calls [`main`]; everything else lives here so
//! tests can drive it in process through [`run`] with in-memory streams. The layers, lowest
//! first (each imports only those before it; `tests/layering.rs` keeps it so):
//!
//! | layer | modules |
//! |---|---|
//! | base | [`duration`], [`error`] |
//! | arguments and domain rules | [`cli`], [`engines`], [`creds`], [`password`], [`tls`], [`target`], [`plan`] |
//! | what verbs return | [`report`] |
//! | the typed model of objects | [`model`] |
//! | the API server | [`context`], [`api`], [`audit`] |
//! | backends | [`backend`] (Arc, KubeDB), [`verify`] (logins) |
//! | verbs | [`cmd`] |
//! | printing | [`output`] |
//! | one command in several contexts | [`fanout`] |
//!
//! Exit codes are documented on [`error`] and decided by [`Error::exit_code`].

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub use rotate_duration as duration;

pub mod error;

pub mod cli;
pub mod creds;
pub mod engines;
pub mod password;
pub mod plan;
pub mod target;
pub mod tls;

pub mod report;

pub mod model;

pub mod api;
pub mod audit;
pub mod context;

pub mod backend;
pub mod verify;

pub mod cmd;

pub mod output;

pub mod fanout;

use std::io::{BufRead, Write};

pub use error::{Error, Result};

use cli::{Cli, Command};
use context::Ctx;
use output::{Console, WriterProgress};

/// The streams a command runs with: the process's in the binary, buffers in tests.
pub struct Io<'a> {
    /// Results (stdout).
    pub out: &'a mut (dyn Write + Send),
    /// Progress, notes, questions and errors (stderr).
    pub err: &'a mut (dyn Write + Send),
    /// `--password-stdin`'s password, and answers to questions.
    pub stdin: &'a mut (dyn BufRead + Send),
    /// Whether stdin is a terminal: then it may be asked, and never read a password from.
    pub stdin_is_terminal: bool,
    /// Where `-v`'s API request lines go (stderr): shared with the client's HTTP stack,
    /// which writes from its own tasks.
    pub log: context::LogSink,
}

/// Runs a parsed command line: every verb is planned (bad input stops here, before the
/// kubeconfig is read), run against the cluster, and printed by `output/`.
pub async fn run(cli: Cli, io: &mut Io<'_>) -> Result<()> {
    let style = output::Style::of(&cli.output);
    let Some(reshape) = output::template::Reshape::of(&cli.output.output)? else {
        return run_verb(&cli, style, io).await;
    };
    // NB: a template format reshapes what `-o json` prints; printed also when the verb
    // then fails (`list --older-than` exits 1 after its list).
    let mut json = Vec::new();
    let result = {
        let mut inner = Io {
            out: &mut json,
            err: &mut *io.err,
            stdin: &mut *io.stdin,
            stdin_is_terminal: io.stdin_is_terminal,
            log: io.log.clone(),
        };
        run_verb(&cli, style, &mut inner).await
    };
    reshape.print(&json, style.no_headers, io.out)?;
    io.out.flush()?;
    result
}

/// Runs one verb, printing in `style`.
async fn run_verb(cli: &Cli, style: output::Style, io: &mut Io<'_>) -> Result<()> {
    if let Some(wanted) = fanout::wanted(cli)? {
        return fanout::run(cli, wanted, style, io).await;
    }
    match &cli.command {
        Command::Auth(a) => {
            let plan = cmd::auth::plan(a, &mut *io.stdin, io.stdin_is_terminal)?;
            let after = cmd::verify::after_plan(cli, &plan)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let mut ui = console(style, io);
            cmd::change::run(&ctx, &plan, &ctx.namespace, after.as_ref(), &mut ui).await
        }
        Command::Rollback(a) => {
            let plan = cmd::rollback::plan(a)?;
            let after = cmd::verify::after_plan(cli, &plan)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let mut ui = console(style, io);
            cmd::change::run(&ctx, &plan, &ctx.namespace, after.as_ref(), &mut ui).await
        }
        Command::Retry(a) => {
            let plan = cmd::retry::plan(a)?;
            let after = cmd::verify::after_plan(cli, &plan)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let mut ui = console(style, io);
            cmd::change::run(&ctx, &plan, &ctx.namespace, after.as_ref(), &mut ui).await
        }
        Command::Prev(a) => {
            let target = cmd::prev::plan(a)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let report = cmd::prev::run(&ctx, &target).await?;
            output::inspect::prev(&report, style, a.reveal, io.out, io.err)?;
            Ok(io.out.flush()?)
        }
        Command::Status(a) => {
            let target = cmd::status::plan(a)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let report = cmd::status::run(&ctx, &target).await?;
            output::inspect::status(&report, style, io.out)?;
            Ok(io.out.flush()?)
        }
        Command::Consumers(a) => {
            let target = cmd::consumers::plan(a)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let report = cmd::consumers::run(&ctx, &target).await?;
            output::inspect::consumers(&report, style, io.out, io.err)?;
            Ok(io.out.flush()?)
        }
        Command::History(a) => {
            let target = cmd::history::plan(a)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let report = cmd::history::run(&ctx, &target).await?;
            output::inspect::history(&report, style, io.out, io.err)?;
            Ok(io.out.flush()?)
        }
        Command::List(a) => {
            let plan = cmd::list::plan(a, style.format)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let report = cmd::list::run(&ctx, &plan).await?;
            output::inspect::list(&report, &plan, style, io.out, io.err)?;
            io.out.flush()?;
            cmd::list::verdict(&report.rows, &plan)
        }
        Command::Schedule(a) => run_schedule(cli, a, style, io).await,
        Command::Completion(a) => {
            write!(io.out, "{}", cmd::complete::script(a.shell))?;
            Ok(io.out.flush()?)
        }
        Command::Complete(a) => {
            cmd::complete::run(&a.words, &mut *io.out).await?;
            Ok(io.out.flush()?)
        }
        Command::Version => {
            output::version::print(style, io.out)?;
            Ok(io.out.flush()?)
        }
        Command::Verify(a) => {
            let plan = cmd::verify::plan(a, cli.kube.verbosity)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let report =
                cmd::verify::run(&ctx, &plan, &mut WriterProgress::new(&mut *io.err)).await?;
            output::verify::report(&report, style, io.out, io.err)?;
            io.out.flush()?;
            report.verdict()?;
            output::verify::summary(&report, io.err)
        }
    }
}

/// `schedule`: make or update one, or `list`/`delete`.
async fn run_schedule(
    cli: &Cli,
    a: &cli::ScheduleArgs,
    style: output::Style,
    io: &mut Io<'_>,
) -> Result<()> {
    use cli::ScheduleAction;
    match &a.action {
        Some(ScheduleAction::List(l)) => {
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let scope = (!l.all_namespaces).then_some(ctx.namespace.as_str());
            let rows = cmd::schedule::list(&ctx, scope).await?;
            output::schedule::list(&rows, l.all_namespaces, style, io.out, io.err)?;
        }
        Some(ScheduleAction::Delete(d)) => {
            let target = target::Target::parse(&d.target)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            for what in cmd::schedule::delete(&ctx, &target, &ctx.namespace).await? {
                writeln!(io.out, "{what} deleted")?;
            }
        }
        None => {
            let plan = cmd::schedule::plan(&a.create)?;
            let ctx = Ctx::connect(&cli.kube, &io.log).await?;
            let spec = cmd::schedule::spec_for(&ctx, &plan, &ctx.namespace).await?;
            let applied = match plan.dry_run {
                cli::DryRun::Client => spec.manifests().into_iter().map(|m| (m, false)).collect(),
                mode => cmd::schedule::apply(&ctx, &spec, mode).await?,
            };
            output::schedule::made(&spec, &applied, plan.dry_run, style, io.out, io.err)?;
        }
    }
    Ok(io.out.flush()?)
}

/// The console of a change verb: it may ask on stdin only when that is a terminal.
fn console<'a>(style: output::Style, io: &'a mut Io<'_>) -> Console<'a> {
    let stdin: Option<&'a mut (dyn BufRead + Send)> = match io.stdin_is_terminal {
        true => Some(&mut *io.stdin),
        false => None,
    };
    Console::new(style, &mut *io.out, &mut *io.err, stdin)
}

/// Runs a parsed command line and returns its exit code, an error printed the way kubectl
/// prints them (`error: ...` on stderr).
pub async fn run_to_exit_code(cli: Cli, io: &mut Io<'_>) -> u8 {
    match run(cli, io).await {
        Ok(()) => 0,
        // NB: the reader of stdout went away (`| head -1`): end quietly, as ripgrep does,
        // instead of an error about a pipe nobody reads.
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            output::print_error(io.err, &e);
            e.exit_code()
        }
    }
}

/// Runs a parsed command line on the process's streams and returns the exit code.
pub async fn main(cli: Cli) -> u8 {
    use std::io::IsTerminal;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let stdin_is_terminal = std::io::stdin().is_terminal();
    // NB: not `stdin().lock()`: the lock is not Send, and the command runs on tokio's pool.
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        stdin: &mut stdin,
        stdin_is_terminal,
        log: std::sync::Arc::new(std::sync::Mutex::new(std::io::stderr())),
    };
    run_to_exit_code(cli, &mut io).await
}
