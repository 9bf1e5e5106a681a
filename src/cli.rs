//! Command-line interface: kubectl's global flags, output flags, one subcommand per verb.
//!
//! Doc comments here are the help text (STYLE rule 7); `tests/cli_help.rs` snapshots it.
//! The global flags are `global = true` so they may follow the verb, which is where kubectl
//! users put them (kubectl refuses flags before a plugin's name).

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::GoDuration;

/// Exit codes, shown at the end of `kubectl rotate --help`. The mapping from errors is
/// `Error::exit_code` in error.rs; keep the two in step.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    error (API or kubeconfig problem, unexpected response)
  2    usage: invalid arguments, unknown TYPE, invalid --secret
  3    conflict: changed concurrently, or a rotation is already in progress
  4    not found: the target, its Secret, or the operator's CRD
  5    the rotation Failed or was Skipped
  6    refused: the target is not Ready, or there is nothing to roll back to
  124  timed out while waiting (the rotation goes on)
  130  interrupted while waiting (the rotation goes on)";

/// Rotate database credentials on Kubernetes: Azure Arc SQL Managed Instance and KubeDB.
///
/// Rotation is safe to re-run: a concurrent change makes it fail rather than rotate twice,
/// and no password is ever printed.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "kubectl rotate",
    bin_name = "kubectl rotate",
    version,
    propagate_version = true,
    after_help = EXIT_CODES_HELP,
    max_term_width = 100
)]
pub struct Cli {
    /// Cluster connection flags.
    #[command(flatten)]
    pub kube: KubeArgs,

    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,

    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's connection flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Cluster options")]
pub struct KubeArgs {
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// The name of the kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// The namespace of the target (default: the context's namespace, then "default").
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// How long to wait for a single API request (e.g. 10s, 1m); 0 waits forever.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0")]
    pub request_timeout: GoDuration,
    // NB: -A/--all-namespaces and -l/--selector belong on the verbs that list (status,
    // list), next to `TargetArgs`; a rotation names exactly one object.
}

/// Output format flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Output options")]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `-o` values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A table (the default).
    #[default]
    Table,
    /// A table with more columns.
    Wide,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// resource/name only.
    Name,
}

/// The verbs.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Rotate a database's credentials.
    ///
    /// Azure Arc SQL MI (sqlmi): bumps spec.update.managedCredentialsGeneration by one,
    /// guarded so a concurrent change makes it fail instead of rotating twice.
    ///
    /// KubeDB (pg, ms, my, mg, ...): creates a <Kind>OpsRequest of type RotateAuth. The
    /// operator generates the new password unless --secret names a kubernetes.io/basic-auth
    /// Secret holding it. The previous credential is kept in the auth Secret (*.prev).
    #[command(after_help = "Examples:
  kubectl rotate auth sqlmi/sqlmi-demo -n demo --wait
  kubectl rotate auth pg/pg-demo -n demo --wait --timeout 10m
  kubectl rotate auth ms mssql-demo -n demo --secret mssql-demo-new-auth
  kubectl rotate auth pg/pg-demo -n demo --dry-run=client -o yaml")]
    Auth(AuthArgs),

    /// Roll back to the previous credentials.
    ///
    /// Azure Arc SQL MI: sets managedCredentialsGeneration to n-1; only one step back is
    /// supported, so a second rollback is refused.
    ///
    /// KubeDB: creates a basic-auth Secret from the auth Secret's previous credential
    /// (username.prev, password.prev) and a RotateAuth ops request that uses it.
    #[command(after_help = "Examples:
  kubectl rotate rollback sqlmi/sqlmi-demo -n demo --wait
  kubectl rotate rollback pg/pg-demo -n demo --wait")]
    Rollback(RollbackArgs),
}

/// Which object to act on.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// TYPE/NAME, or TYPE NAME. TYPE is a kind, plural or short name: sqlmi, pg, postgres,
    /// ms, mssqlserver, my, mg, ... (optionally with its group: postgreses.kubedb.com).
    #[arg(value_name = "TYPE/NAME")]
    pub target: String,

    /// NAME, when TYPE and NAME are given separately.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

/// Flags shared by the verbs that change something.
#[derive(Args, Debug, Clone)]
pub struct ChangeArgs {
    /// IfReady refuses unless the target is Ready; Always goes ahead regardless.
    #[arg(long, value_enum, default_value_t = ApplyPolicy::IfReady)]
    pub apply: ApplyPolicy,

    /// Follow the rotation to the end, printing each step on stderr.
    #[arg(long)]
    pub wait: bool,

    /// Bound for --wait (default 30m); for KubeDB also each step's timeout on the server.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<GoDuration>,

    /// Only show what would be sent (client), or have the server check it without saving
    /// it (server).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value_t = DryRun::None,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "client"
    )]
    pub dry_run: DryRun,
}

/// `kubectl rotate auth` arguments.
#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,

    /// KubeDB: use the password in this kubernetes.io/basic-auth Secret (same namespace)
    /// instead of one the operator generates. It is checked before anything is written.
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,

    /// Flags shared with rollback.
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// `kubectl rotate rollback` arguments.
#[derive(Args, Debug, Clone)]
pub struct RollbackArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Flags shared with auth.
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// `--apply` values (KubeDB's `spec.apply`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyPolicy {
    /// Only when the target is Ready.
    #[value(name = "IfReady")]
    IfReady,
    /// Even when it is not.
    #[value(name = "Always")]
    Always,
}

impl ApplyPolicy {
    /// The value KubeDB expects in `spec.apply`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyPolicy::IfReady => "IfReady",
            ApplyPolicy::Always => "Always",
        }
    }
}

/// `--dry-run` values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    /// Send it for real.
    None,
    /// Print what would be sent; send nothing.
    Client,
    /// Send with dryRun=All: the server runs its checks and saves nothing.
    Server,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-rotate").chain(args.iter().copied()))
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_may_follow_the_verb_as_kubectl_users_write_them() {
        let cli = parse(&[
            "auth",
            "pg/pg-demo",
            "-n",
            "demo",
            "--context",
            "c",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.kube.namespace.as_deref(), Some("demo"));
        assert_eq!(cli.kube.context.as_deref(), Some("c"));
        assert_eq!(cli.output.output, Format::Json);
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.target.target, "pg/pg-demo");
        assert_eq!(a.change.apply, ApplyPolicy::IfReady);
        assert_eq!(a.change.dry_run, DryRun::None);
    }

    #[test]
    fn a_bare_dry_run_means_client_like_kubectl() {
        let cli = parse(&["auth", "pg/x", "--dry-run"]).unwrap();
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.change.dry_run, DryRun::Client);
        let cli = parse(&["rollback", "pg/x", "--dry-run=server"]).unwrap();
        let Command::Rollback(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.change.dry_run, DryRun::Server);
    }

    #[test]
    fn type_and_name_may_be_given_apart() {
        let cli = parse(&["auth", "pg", "pg-demo"]).unwrap();
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.target.name.as_deref(), Some("pg-demo"));
    }

    #[test]
    fn bad_flag_values_are_usage_errors() {
        for args in [
            &["auth", "pg/x", "--apply", "Sometimes"][..],
            &["auth", "pg/x", "-o", "xml"],
            &["auth", "pg/x", "--timeout", "soon"],
            &["auth", "pg/x", "--dry-run=maybe"],
            &["auth"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
