//! One command in several kubeconfig contexts: `--context a,b,c` and `--all-contexts`.
//!
//! In order, before any request: the flags ([`wanted`]: no empty or repeated name, not
//! both flags, a verb that runs in several contexts, no `-o name`, no flag that names one
//! cluster or user); the verb's own plan (a `--password-stdin` password is read here, once,
//! for every context); the contexts, each of which must be in the kubeconfig; and for a
//! write, `--yes` or a yes on a terminal. Then the verb runs in every context at once, on
//! the same runtime, each with its own connection and with every stderr line it writes led
//! by `[NAME] `. A failure stays in its context: said on stderr with the context named (a
//! change verb that names its targets also shows it as their rows) while the others go on,
//! and their results print together through `output::contexts`, CONTEXT first. The exit
//! code is then the first failing context's, in the order the contexts were given
//! ([`Error::Contexts`]).
//!
//! `--context NAME` with one name is not this module's: it runs as it always has.

use std::future::Future;
use std::io::Write;
use std::sync::Mutex;

use crate::cli::{Cli, Command, DryRun, Format, KubeArgs, Output};
use crate::cmd::{self, Ui};
use crate::context::{read_kubeconfig, Ctx, LogSink};
use crate::error::{Error, Result};
use crate::output::contexts::{self as print, Capture, Captured, Part, NO_NAMES};
use crate::output::prefix::{log_sink, Locked, Prefixed, Shared};
use crate::output::{Console, Style, WriterProgress};
use crate::plan::ChangePlan;
use crate::report::Rotation;
use crate::target::Selection;
use crate::verify::reach::VerifyPlan;
use crate::Io;

/// Which contexts a command line asks for, before the kubeconfig is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// `--context a,b,...`: these, in this order.
    Named(Vec<String>),
    /// `--all-contexts`: every context of the kubeconfig, in its order.
    All,
}

/// A context the command runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    /// The context's name.
    name: String,
    /// `-n`, else the context's namespace, else `default`: for the rows of a context that
    /// could not be reached.
    namespace: String,
}

/// What the command line asks of several contexts, if anything; its refusals are usage
/// errors (exit 2), found before the kubeconfig is read. One name is `None`: the command
/// runs in that context as it always has.
pub fn wanted(cli: &Cli) -> Result<Option<Wanted>> {
    let args = &cli.kube;
    let usage = |m: String| Err(Error::Usage(m));
    let wanted = match (&args.context, args.all_contexts) {
        (Some(_), true) => {
            return usage(
                "--all-contexts and --context cannot go together: name the contexts \
                 (--context a,b) or take them all"
                    .into(),
            )
        }
        (None, false) => return Ok(None),
        (None, true) => Wanted::All,
        (Some(list), false) => {
            let names: Vec<&str> = list.split(',').collect();
            if names.iter().any(|n| n.is_empty()) {
                return usage(format!(
                    "--context {list:?} holds an empty name: name each context, separated by \
                     commas (--context a,b)"
                ));
            }
            if let [_] = names[..] {
                return Ok(None);
            }
            let twice = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n));
            if let Some((_, n)) = twice {
                return usage(format!(
                    "context {n:?} is named twice in --context {list:?}"
                ));
            }
            Wanted::Named(names.into_iter().map(String::from).collect())
        }
    };
    if matches!(cli.command, Command::Schedule(_)) {
        return usage(
            "schedule makes and reads a cluster's own CronJobs: run it once per context, \
             with one --context"
                .into(),
        );
    }
    let verb = match &cli.command {
        Command::Version => Some("version"),
        Command::Completion(_) => Some("completion"),
        Command::Complete(_) => Some("__complete"),
        _ => None,
    };
    if let Some(verb) = verb {
        return usage(format!(
            "{verb} runs in no context: drop --all-contexts, or name one --context"
        ));
    }
    if cli.output.output == Output::Format(Format::Name) {
        return usage(NO_NAMES.into());
    }
    // NB: each names one cluster or one user, which several contexts do not share; -n,
    // impersonation and --insecure-skip-tls-verify apply to every context alike.
    let one = [
        ("--server", args.server.is_some()),
        ("--cluster", args.cluster.is_some()),
        ("--user", args.user.is_some()),
        ("--token", args.token.is_some()),
        (
            "--certificate-authority",
            args.certificate_authority.is_some(),
        ),
        ("--client-certificate", args.client_certificate.is_some()),
        ("--client-key", args.client_key.is_some()),
        ("--tls-server-name", args.tls_server_name.is_some()),
    ];
    if let Some((flag, _)) = one.iter().find(|(_, given)| *given) {
        return usage(format!(
            "{flag} is for one context's cluster or user: it cannot go with several contexts"
        ));
    }
    Ok(Some(wanted))
}

/// The contexts `wanted` names, each checked against the kubeconfig (nothing is sent).
fn places(args: &KubeArgs, wanted: &Wanted) -> Result<Vec<Place>> {
    let kubeconfig = read_kubeconfig(args)?;
    let find = |name: &str| kubeconfig.contexts.iter().find(|c| c.name == name);
    let names: Vec<String> = match wanted {
        Wanted::Named(names) => {
            if let Some(missing) = names.iter().find(|n| find(n).is_none()) {
                return Err(Error::Usage(format!(
                    "context {missing:?} is not in the kubeconfig (`kubectl config \
                     get-contexts` lists them)"
                )));
            }
            names.clone()
        }
        Wanted::All => {
            let mut all: Vec<String> = Vec::new();
            for c in &kubeconfig.contexts {
                if !all.contains(&c.name) {
                    all.push(c.name.clone());
                }
            }
            if all.is_empty() {
                return Err(Error::Usage(
                    "--all-contexts: the kubeconfig has no contexts".into(),
                ));
            }
            all
        }
    };
    Ok(names
        .into_iter()
        .map(|name| {
            let namespace = args
                .namespace
                .clone()
                .or_else(|| find(&name)?.context.as_ref()?.namespace.clone())
                .unwrap_or_else(|| "default".into());
            Place { name, namespace }
        })
        .collect())
}

/// The command's streams while its contexts run: stderr shared by them (a line at a time),
/// stdout kept for the end, when their results print as one.
struct Streams<'io> {
    out: &'io mut (dyn Write + Send),
    err: Mutex<&'io mut (dyn Write + Send)>,
    log: LogSink,
}

impl<'io> Streams<'io> {
    fn new(io: &'io mut Io<'_>) -> Streams<'io> {
        Streams {
            out: &mut *io.out,
            err: Mutex::new(&mut *io.err),
            log: io.log.clone(),
        }
    }

    /// stdout and stderr, once every context is done.
    fn finish(self) -> (&'io mut (dyn Write + Send), &'io mut (dyn Write + Send)) {
        let err = self.err.into_inner().unwrap_or_else(|e| e.into_inner());
        (self.out, err)
    }
}

/// Runs `work` in every place at once, each on its own connection, with its stderr and
/// `-v` lines led by its name; the results in the order of `places`.
async fn fan_out<'m, 'io, T, F, Fut>(
    places: &[Place],
    kube: &KubeArgs,
    streams: &'m Streams<'io>,
    work: F,
) -> Vec<Result<T>>
where
    F: Fn(Ctx, Prefixed<Shared<'m, 'io>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let work = &work;
    futures::future::join_all(places.iter().map(|place| {
        let mut args = kube.clone();
        args.context = Some(place.name.clone());
        args.all_contexts = false;
        let log = log_sink(&place.name, &streams.log);
        async move {
            let ctx = Ctx::connect(&args, &log).await?;
            work(ctx, Prefixed::new(&place.name, Locked(&streams.err))).await
        }
    }))
    .await
}

/// The contexts that answered, with what they returned.
fn answered<'a, T>(places: &'a [Place], results: &'a [Result<T>]) -> Vec<Part<'a, T>> {
    places
        .iter()
        .zip(results)
        .filter_map(|(p, r)| Some((p.name.as_str(), r.as_ref().ok()?)))
        .collect()
}

/// Says each failure on stderr, led by its context, and returns the command's error: the
/// first failing context's exit code, in the order given.
fn settle(places: &[Place], failures: Vec<Option<Error>>, err: &mut dyn Write) -> Result<()> {
    let mut failed = Vec::new();
    let mut code = None;
    for (place, failure) in places.iter().zip(failures) {
        if let Some(e) = failure {
            crate::output::print_error(&mut Prefixed::new(&place.name, &mut *err), &e);
            code.get_or_insert(e.exit_code());
            failed.push(place.name.clone());
        }
    }
    match code {
        None => Ok(()),
        Some(code) => Err(Error::Contexts {
            failed,
            total: places.len(),
            code,
        }),
    }
}

/// The errors of `results`, in order.
fn failures<T>(results: Vec<Result<T>>) -> Vec<Option<Error>> {
    results.into_iter().map(Result::err).collect()
}

/// A read verb on one TYPE/NAME (`cmd::$verb`'s `plan` and `run`) in every context, its
/// results printed by `$print`.
macro_rules! on_target {
    ($cli:expr, $wanted:expr, $io:expr, $verb:ident, $args:expr, $print:expr) => {{
        let target = &cmd::$verb::plan($args)?;
        read($cli, $wanted, $io, |ctx| async move {
            cmd::$verb::run(&ctx, target).await
        })
        .await?
        .print($print)
    }};
}

/// Runs the verb of `cli` in the contexts `wanted` names and prints their results as one.
pub async fn run(cli: &Cli, wanted: Wanted, style: Style, io: &mut Io<'_>) -> Result<()> {
    let kube = &cli.kube;
    match &cli.command {
        Command::Auth(a) => {
            let plan = cmd::auth::plan(a, &mut *io.stdin, io.stdin_is_terminal)?;
            let after = cmd::verify::after_plan(cli, &plan)?;
            change(cli, &wanted, style, io, plan, after, "rotate").await
        }
        Command::Rollback(a) => {
            let plan = cmd::rollback::plan(a)?;
            let after = cmd::verify::after_plan(cli, &plan)?;
            change(cli, &wanted, style, io, plan, after, "roll back").await
        }
        Command::Retry(a) => {
            let plan = cmd::retry::plan(a)?;
            let after = cmd::verify::after_plan(cli, &plan)?;
            change(cli, &wanted, style, io, plan, after, "retry").await
        }
        Command::List(a) => {
            let plan = &cmd::list::plan(a, style.format)?;
            let places = places(kube, &wanted)?;
            let streams = Streams::new(io);
            let results = fan_out(&places, kube, &streams, |ctx, _| async move {
                cmd::list::run(&ctx, plan).await
            })
            .await;
            let (out, err) = streams.finish();
            print::list(&answered(&places, &results), plan, style, out, err)?;
            out.flush()?;
            let rows: Vec<_> = results
                .iter()
                .flatten()
                .flat_map(|r| r.rows.iter().cloned())
                .collect();
            settle(&places, failures(results), err)?;
            cmd::list::verdict(&rows, plan)
        }
        Command::Status(a) => on_target!(cli, &wanted, io, status, a, |parts, out, _| {
            print::status(parts, style, out)
        }),
        Command::Prev(a) => on_target!(cli, &wanted, io, prev, a, |parts, out, err| {
            print::prev(parts, style, a.reveal, out, err)
        }),
        Command::History(a) => on_target!(cli, &wanted, io, history, a, |parts, out, err| {
            print::history(parts, style, out, err)
        }),
        Command::Consumers(a) => on_target!(cli, &wanted, io, consumers, a, |parts, out, err| {
            print::consumers(parts, style, out, err)
        }),
        Command::Verify(a) => {
            let plan = cmd::verify::plan(a, kube.verbosity)?;
            verify(cli, &wanted, style, io, &plan).await
        }
        // NB: refused by `wanted`, which the caller asked first.
        Command::Version | Command::Completion(_) | Command::Complete(_) | Command::Schedule(_) => {
            Err(Error::Usage("this verb runs in no context".into()))
        }
    }
}

/// What a read verb returned in every context, and the streams to print it on.
struct Read<'io, T> {
    places: Vec<Place>,
    results: Vec<Result<T>>,
    out: &'io mut (dyn Write + Send),
    err: &'io mut (dyn Write + Send),
}

impl<T> Read<'_, T> {
    /// Prints what the contexts that answered returned, then says the failures.
    fn print(
        self,
        print: impl FnOnce(&[Part<'_, T>], &mut dyn Write, &mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        print(&answered(&self.places, &self.results), self.out, self.err)?;
        self.out.flush()?;
        settle(&self.places, failures(self.results), self.err)
    }
}

/// Runs a read verb's `work` in every context; the contexts are checked first.
async fn read<'io, T, F, Fut>(
    cli: &Cli,
    wanted: &Wanted,
    io: &'io mut Io<'_>,
    work: F,
) -> Result<Read<'io, T>>
where
    F: Fn(Ctx) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let places = places(&cli.kube, wanted)?;
    let streams = Streams::new(io);
    let results = fan_out(&places, &cli.kube, &streams, |ctx, _| work(ctx)).await;
    let (out, err) = streams.finish();
    Ok(Read {
        places,
        results,
        out,
        err,
    })
}

/// `verify` in every context: the reports of those that answered in one table, then each
/// one's verdict (a wrong or unreachable login fails that context).
async fn verify(
    cli: &Cli,
    wanted: &Wanted,
    style: Style,
    io: &mut Io<'_>,
    plan: &VerifyPlan,
) -> Result<()> {
    let places = places(&cli.kube, wanted)?;
    let streams = Streams::new(io);
    let results = fan_out(&places, &cli.kube, &streams, |ctx, err| async move {
        cmd::verify::run(&ctx, plan, &mut WriterProgress::new(err)).await
    })
    .await;
    let (out, err) = streams.finish();
    print::verify(&answered(&places, &results), style, out, err)?;
    out.flush()?;
    let mut verdicts = Vec::new();
    for (place, result) in places.iter().zip(results) {
        verdicts.push(match result.and_then(|r| r.verdict().map(|()| r)) {
            Ok(r) => {
                crate::output::verify::summary(&r, &mut Prefixed::new(&place.name, &mut *err))?;
                None
            }
            Err(e) => Some(e),
        });
    }
    settle(&places, verdicts, err)
}

/// A change verb (`verb`: how its question and refusal say it) in every context, once
/// confirmed: one table of every context's rows.
async fn change(
    cli: &Cli,
    wanted: &Wanted,
    style: Style,
    io: &mut Io<'_>,
    mut plan: ChangePlan,
    after: Option<cmd::verify::AfterChange>,
    verb: &str,
) -> Result<()> {
    let places = places(&cli.kube, wanted)?;
    confirm(&mut plan, verb, &places, style, io)?;
    let (plan, after) = (&plan, after.as_ref());
    let streams = Streams::new(io);
    let results = fan_out(&places, &cli.kube, &streams, |ctx, err| async move {
        let mut ui = Capture::new(err);
        let result = cmd::change::run(&ctx, plan, &ctx.namespace, after, &mut ui).await;
        Ok((ui.captured, result))
    })
    .await;
    let (out, err) = streams.finish();
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    for (place, result) in places.iter().zip(results) {
        let (mut captured, result) = result.unwrap_or_else(|e| (Captured::default(), Err(e)));
        if let Err(e) = &result {
            if captured.outcomes.is_empty() {
                captured.failed = failed_rows(plan, &place.namespace, e);
            }
        }
        parts.push((place.name.as_str(), captured));
        errors.push(result.err());
    }
    let parts: Vec<Part<'_, Captured>> = parts.iter().map(|(c, got)| (*c, got)).collect();
    print::changes(&parts, style, out)?;
    out.flush()?;
    settle(&places, errors, err)
}

/// The rows of a context that failed before any outcome: each named target, failed for
/// `e` (a selection's targets are not known then).
fn failed_rows(plan: &ChangePlan, namespace: &str, e: &Error) -> Vec<Rotation> {
    let Selection::Named(targets) = &plan.selection else {
        return Vec::new();
    };
    targets
        .iter()
        .map(|t| {
            let mut row = Rotation::new(namespace, t.engine, &t.name, plan.action);
            row.phase = cmd::bulk::failure_phase(e);
            row.dry_run = plan.dry_run;
            row.message = Some(e.to_string());
            row
        })
        .collect()
}

/// A write in several contexts needs `--yes`, or a yes on a terminal, asked once for all
/// of them before any is reached (as `--all` does; a dry run needs neither). A yes also
/// answers each context's own question (`--all`'s), which nobody could answer there.
fn confirm(
    plan: &mut ChangePlan,
    verb: &str,
    places: &[Place],
    style: Style,
    io: &mut Io<'_>,
) -> Result<()> {
    if plan.dry_run != DryRun::None || plan.yes {
        return Ok(());
    }
    let names: Vec<&str> = places.iter().map(|p| p.name.as_str()).collect();
    let scope = format!(
        "{} context{} ({})",
        names.len(),
        cmd::bulk::plural(names.len()),
        names.join(", ")
    );
    if !io.stdin_is_terminal {
        return Err(Error::Usage(format!(
            "refusing to {verb} in {scope} without confirmation: pass --yes (or run it from a \
             terminal to be asked; --dry-run needs neither)"
        )));
    }
    let what = match &plan.selection {
        Selection::Named(targets) => targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        Selection::Matching { .. } => "the selected databases".into(),
    };
    let question = format!("{} {what} in {scope}? [y/N] ", cmd::bulk::capitalized(verb));
    let mut console = Console::new(style, &mut *io.out, &mut *io.err, Some(&mut *io.stdin));
    if !console.ask(&question)? {
        return Err(Error::Refused("not confirmed; nothing was changed".into()));
    }
    plan.yes = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn wanted_of(args: &[&str]) -> Result<Option<Wanted>> {
        let cli =
            Cli::try_parse_from(std::iter::once("kubectl-rotate").chain(args.iter().copied()))
                .unwrap();
        wanted(&cli)
    }

    #[test]
    fn one_context_is_not_a_fan_out_and_several_are_in_their_order() {
        assert_eq!(wanted_of(&["list"]).unwrap(), None);
        assert_eq!(wanted_of(&["list", "--context", "a"]).unwrap(), None);
        assert_eq!(
            wanted_of(&["list", "--context", "b,a"]).unwrap(),
            Some(Wanted::Named(vec!["b".into(), "a".into()]))
        );
        assert_eq!(
            wanted_of(&["status", "pg/x", "--all-contexts"]).unwrap(),
            Some(Wanted::All)
        );
    }

    #[test]
    fn bad_context_lists_are_one_line_usage_errors() {
        for args in [
            &["list", "--context", ""][..],
            &["list", "--context", "a,,b"],
            &["list", "--context", "a,"],
            &["list", "--context", "a,b,a"],
            &["list", "--context", "a", "--all-contexts"],
            &["list", "--all-contexts", "-o", "name"],
            &["list", "--context", "a,b", "--server", "https://h:6443"],
            &["list", "--context", "a,b", "--token", "t"],
            &["version", "--all-contexts"],
        ] {
            let e = wanted_of(args).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        // What applies to every context alike is taken.
        assert!(wanted_of(&["list", "--context", "a,b", "-n", "demo", "--as", "x"]).is_ok());
    }

    #[test]
    fn a_context_that_fails_before_its_outcome_shows_as_its_targets_rows() {
        let plan = cmd::rollback::plan(&match Cli::try_parse_from([
            "kubectl-rotate",
            "rollback",
            "pg/a",
            "my/b",
        ])
        .unwrap()
        .command
        {
            Command::Rollback(a) => a,
            _ => unreachable!(),
        })
        .unwrap();
        let e = Error::NotFound {
            what: "x".into(),
            hint: None,
        };
        let rows = failed_rows(&plan, "demo", &e);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].subject.name, "b");
        assert_eq!(rows[1].phase, "NotFound");
        assert_eq!(rows[0].subject.namespace, "demo");
    }

    #[test]
    fn the_first_failing_context_gives_the_exit_code_and_each_failure_is_said_with_it() {
        let places: Vec<Place> = ["a", "b", "c"]
            .iter()
            .map(|n| Place {
                name: n.to_string(),
                namespace: "demo".into(),
            })
            .collect();
        let mut err = Vec::new();
        let e = settle(
            &places,
            vec![
                None,
                Some(Error::Refused("not ready".into())),
                Some(Error::Unexpected("x".into())),
            ],
            &mut err,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 6);
        assert_eq!(e.to_string(), "2 of 3 contexts failed: b, c");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "[b] error: not ready\n[c] error: unexpected response: x\n"
        );
        assert!(settle(&places, vec![None, None, None], &mut Vec::new()).is_ok());
    }
}
