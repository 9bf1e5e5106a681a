//! Shell completion as kubectl 1.26+ asks a plugin for it: `kubectl __complete rotate ...`
//! runs the `kubectl_complete-rotate` helper on PATH (printed by `kubectl rotate completion
//! kubectl`), which runs `kubectl rotate __complete WORDS...`. The answer is Cobra's: one
//! candidate a line (`candidate<TAB>description`), then `:DIRECTIVE`.
//!
//! Verbs and flags come from the command line's own definition; TYPEs from the engine
//! table; `--context` values from the kubeconfig (after a comma too: `--context a,<TAB>`
//! offers `a,b`); names from the cluster (one LIST of the kind in the namespace the words name,
//! else the context's). A cluster that cannot be read completes nothing, silently: a
//! completion must never print an error into the user's command line.

use clap::CommandFactory;

use crate::api::discovery::{discover, Wanted};
use crate::api::read::{collection_url, list_pages};
use crate::cli::{Cli, CompletionShell, KubeArgs};
use crate::context::{discard, read_kubeconfig, Ctx};
use crate::engines::{find, ENGINES};
use crate::model::DbItem;

/// Cobra's directives: no file names; no space after the candidate (a TYPE/ goes on).
const NO_FILE: u32 = 4;
const NO_SPACE: u32 = 2;

/// The verbs that take TYPE/NAME.
const TARGETED: &[&str] = &[
    "auth",
    "rollback",
    "retry",
    "prev",
    "status",
    "history",
    "verify",
    "consumers",
    "schedule",
];

/// The kind whose names the last word is completing (`TYPE/...` after a verb that takes
/// one), if any: the one thing completion reads from the cluster.
pub fn kind_to_list(words: &[String]) -> Option<&'static str> {
    let (partial, before) = words.split_last()?;
    let verb = before.iter().find(|w| !w.starts_with('-'))?;
    let (typ, _) = partial.split_once('/')?;
    (TARGETED.contains(&verb.as_str()) && !partial.starts_with('-'))
        .then(|| find(typ).map(|e| e.kind))
        .flatten()
}

/// What to offer for `words` (the last is the word being typed), and the directive;
/// `names` are the databases of [`kind_to_list`]'s kind.
pub fn candidates(words: &[String], names: &[String]) -> (Vec<String>, u32) {
    let (partial, before) = match words.split_last() {
        Some((p, b)) => (p.as_str(), b),
        None => ("", &[][..]),
    };
    let cli = Cli::command();
    let verb = before.iter().find(|w| !w.starts_with('-'));
    let Some(verb) = verb else {
        let verbs = cli
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name().starts_with(partial))
            .map(|c| with_about(c.get_name(), c.get_about()))
            .collect();
        return (verbs, NO_FILE);
    };
    let Some(sub) = cli.find_subcommand(verb.as_str()) else {
        return (Vec::new(), NO_FILE);
    };
    if partial.starts_with('-') {
        let flags = sub
            .get_arguments()
            .chain(cli.get_arguments())
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| (format!("--{l}"), a.get_help())))
            .filter(|(f, _)| f.starts_with(partial))
            .map(|(f, help)| with_about(&f, help))
            .collect();
        return (flags, NO_FILE);
    }
    if !TARGETED.contains(&verb.as_str()) {
        return (Vec::new(), NO_FILE);
    }
    // `schedule` takes TYPE/NAME, or `list`, or `delete TYPE/NAME`.
    let positional: Vec<&str> = before
        .iter()
        .filter(|w| !w.starts_with('-'))
        .skip(1)
        .map(String::as_str)
        .collect();
    let mut actions = Vec::new();
    if verb == "schedule" {
        match positional.first() {
            Some(&"list") => return (Vec::new(), NO_FILE),
            None if !partial.contains('/') => actions.extend(
                sub.get_subcommands()
                    .filter(|c| c.get_name() != "help" && c.get_name().starts_with(partial))
                    .map(|c| with_about(c.get_name(), c.get_about())),
            ),
            _ => {}
        }
    }
    match partial.split_once('/') {
        Some((typ, prefix)) => {
            let found = names
                .iter()
                .filter(|n| n.starts_with(prefix))
                .map(|n| format!("{typ}/{n}"))
                .collect();
            (found, NO_FILE)
        }
        None => {
            let types = ENGINES
                .iter()
                .map(|e| e.short())
                .filter(|t| t.starts_with(partial))
                .map(|t| format!("{t}/"));
            let directive = match actions.is_empty() {
                true => NO_FILE | NO_SPACE,
                false => NO_FILE,
            };
            actions.extend(types);
            (actions, directive)
        }
    }
}

fn with_about(name: &str, about: Option<&clap::builder::StyledStr>) -> String {
    match about {
        Some(a) => format!(
            "{name}\t{}",
            a.to_string().lines().next().unwrap_or_default()
        ),
        None => name.to_string(),
    }
}

/// What the last word is, when it is a `--context` value (`--context VALUE` or
/// `--context=VALUE`): the text before it on the word (`--context=`, and the names up to
/// the last comma) and the part of a name typed so far.
fn context_value(words: &[String]) -> Option<(String, &str)> {
    let (partial, before) = words.split_last()?;
    let (flag, value) = match partial.strip_prefix("--context=") {
        Some(v) => ("--context=", v),
        None if before.last().is_some_and(|w| w == "--context") => ("", partial.as_str()),
        None => return None,
    };
    let (names, typed) = match value.rsplit_once(',') {
        Some((names, typed)) => (format!("{names},"), typed),
        None => (String::new(), value),
    };
    Some((format!("{flag}{names}"), typed))
}

/// The `--context` values to offer: each context not named yet that starts as typed, after
/// what comes before it on the word.
fn context_candidates(lead: &str, typed: &str, contexts: &[String]) -> Vec<String> {
    let named: Vec<&str> = lead
        .trim_start_matches("--context=")
        .split(',')
        .filter(|n| !n.is_empty())
        .collect();
    contexts
        .iter()
        .filter(|c| c.starts_with(typed) && !named.contains(&c.as_str()))
        .map(|c| format!("{lead}{c}"))
        .collect()
}

/// The cluster flags among `words` (`--kubeconfig`, `--context`, `-n`), as the command
/// being completed would use them.
fn kube_args(words: &[String]) -> KubeArgs {
    let mut args = KubeArgs::default();
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (w.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.peek().map(|v| v.to_string()));
        match flag {
            "--kubeconfig" => args.kubeconfig = value().map(Into::into),
            // NB: of several contexts, names are completed from the first.
            "--context" => {
                args.context = value().map(|v| v.split(',').next().unwrap_or_default().into())
            }
            "--cluster" => args.cluster = value(),
            "--user" => args.user = value(),
            "-s" | "--server" => args.server = value(),
            "-n" | "--namespace" => args.namespace = value(),
            _ => {}
        }
    }
    args
}

/// The names of the databases of `kind` where the words say: one LIST, names only.
async fn names(words: &[String], kind: &str) -> Vec<String> {
    let Some(engine) = ENGINES.iter().find(|e| e.kind == kind) else {
        return Vec::new();
    };
    let Ok(ctx) = Ctx::connect(&kube_args(words), &discard()).await else {
        return Vec::new();
    };
    let Ok(ars) = discover(&ctx, &[Wanted::engine(engine)]).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let url = collection_url(&ars[0], Some(&ctx.namespace));
    let _ = list_pages::<DbItem>(&ctx, &url, None, None, |d| out.push(d.metadata.name)).await;
    out.sort();
    out
}

/// `kubectl rotate __complete WORDS...`: prints the candidates and the directive.
pub async fn run(words: &[String], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    if let Some((lead, typed)) = context_value(words) {
        let mut args = kube_args(&words[..words.len() - 1]);
        args.context = None;
        let contexts: Vec<String> = read_kubeconfig(&args)
            .map(|k| k.contexts.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        for c in context_candidates(&lead, typed, &contexts) {
            writeln!(out, "{c}")?;
        }
        return writeln!(out, ":{NO_FILE}");
    }
    let listed = match kind_to_list(words) {
        Some(kind) => names(words, kind).await,
        None => Vec::new(),
    };
    let (found, directive) = candidates(words, &listed);
    for c in found {
        writeln!(out, "{c}")?;
    }
    writeln!(out, ":{directive}")
}

/// `kubectl rotate completion kubectl`: the helper kubectl 1.26+ runs to complete the
/// plugin's words.
pub const KUBECTL_HELPER: &str = "#!/usr/bin/env sh
# kubectl's shell completion for the rotate plugin (kubectl 1.26+): save as an executable
# named kubectl_complete-rotate on PATH.
exec kubectl rotate __complete \"$@\"
";

/// `kubectl rotate completion SHELL`: the kubectl helper, or a script for `kubectl-rotate`
/// run by its own name. Every one of them asks `__complete`, so all complete alike.
pub fn script(shell: CompletionShell) -> &'static str {
    match shell {
        CompletionShell::Kubectl => KUBECTL_HELPER,
        CompletionShell::Bash => include_str!("complete/bash.sh"),
        CompletionShell::Zsh => include_str!("complete/zsh.zsh"),
        CompletionShell::Fish => include_str!("complete/fish.fish"),
        CompletionShell::Powershell => include_str!("complete/powershell.ps1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn verbs_flags_types_and_names_are_offered_for_what_is_typed() {
        let (c, d) = candidates(&words(&["au"]), &[]);
        assert_eq!(d, NO_FILE);
        assert!(c.len() == 1 && c[0].starts_with("auth\t"), "{c:?}");
        let (c, _) = candidates(&words(&["auth", "--pass"]), &[]);
        assert!(c.iter().any(|f| f.starts_with("--password-stdin")), "{c:?}");
        let (c, _) = candidates(&words(&["auth", "--kubec"]), &[]);
        assert!(
            c.iter().any(|f| f.starts_with("--kubeconfig")),
            "global flags too: {c:?}"
        );
        let (c, d) = candidates(&words(&["auth", "p"]), &[]);
        assert_eq!(d, NO_FILE | NO_SPACE, "a TYPE/ goes on");
        assert!(c.contains(&"pg/".to_string()), "{c:?}");
        let w = words(&["auth", "-n", "demo", "ms/m"]);
        assert_eq!(kind_to_list(&w), Some("MSSQLServer"));
        let (c, d) = candidates(&w, &["mssql-demo".into(), "other".into()]);
        assert_eq!((c, d), (vec!["ms/mssql-demo".to_string()], NO_FILE));
        assert_eq!(
            kind_to_list(&words(&["list", "ms/"])),
            None,
            "list takes no TYPE/NAME"
        );
        assert_eq!(kind_to_list(&words(&["auth", "pg"])), None, "no TYPE/ yet");
    }

    #[test]
    fn schedule_offers_its_actions_then_types_and_names() {
        let (c, _) = candidates(&words(&["schedule", "l"]), &[]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].starts_with("list\t"), "{c:?}");
        let (c, _) = candidates(&words(&["schedule", "delete", "p"]), &[]);
        assert!(c.contains(&"pg/".to_string()), "{c:?}");
        assert!(!c.iter().any(|x| x.starts_with("list")), "{c:?}");
        let (c, _) = candidates(&words(&["schedule", "list", ""]), &[]);
        assert!(c.is_empty(), "{c:?}");
        let names = ["pg-demo".to_string()];
        let (c, _) = candidates(&words(&["schedule", "pg/"]), &names);
        assert_eq!(c, ["pg/pg-demo"]);
    }

    #[test]
    fn context_values_are_completed_after_a_comma_too_without_repeating_a_name() {
        let contexts: Vec<String> = ["prod", "staging", "sandbox"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let offer = |w: &[&str]| {
            let w = words(w);
            let (lead, typed) = context_value(&w).expect("a --context value");
            context_candidates(&lead, typed, &contexts)
        };
        assert_eq!(offer(&["list", "--context", "s"]), ["staging", "sandbox"]);
        assert_eq!(
            offer(&["list", "--context", "staging,"]),
            ["staging,prod", "staging,sandbox"]
        );
        assert_eq!(
            offer(&["list", "--context=prod,sa"]),
            ["--context=prod,sandbox"]
        );
        assert_eq!(context_value(&words(&["list", "--context"])), None);
        assert_eq!(context_value(&words(&["list", "pg/"])), None);
    }

    #[test]
    fn the_cluster_flags_among_the_words_are_the_ones_used() {
        let a = kube_args(&words(&[
            "auth",
            "-n",
            "demo",
            "--context=c",
            "--kubeconfig",
            "k",
            "pg/",
        ]));
        assert_eq!(a.namespace.as_deref(), Some("demo"));
        assert_eq!(a.context.as_deref(), Some("c"));
        assert_eq!(a.kubeconfig.as_deref(), Some(std::path::Path::new("k")));
    }
}
