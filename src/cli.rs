//! Command-line interface: kubectl's global flags, output flags, one subcommand per verb.
//!
//! Doc comments here are the help text (STYLE rule 7); `tests/cli_help.rs` snapshots it.
//! The global flags are `global = true` so they may follow the verb, which is where kubectl
//! users put them (kubectl refuses flags before a plugin's name).

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::GoDuration;

/// Exit codes, shown at the end of `kubectl rotate --help`. The mapping from errors is
/// `Error::exit_code` in error.rs; keep the two in step.
pub const AFTER_HELP: &str = "\
Exit codes:
  0    success
  1    error (API or kubeconfig problem, unexpected response); list --older-than: some are overdue
  2    usage: invalid arguments, unknown TYPE, invalid --secret
  3    conflict: changed concurrently, or a rotation is already in progress
  4    not found: the target, its Secret, the operator's CRD, or a schedule to delete
  5    the rotation Failed or was Skipped
  6    refused: the target is not Ready, nothing to roll back to or retry, a 2nd rollback,
       or a controller would revert it; schedule: an object of its name it did not make
  7    verify: a login result is wrong (current refused, or previous still accepted)
  8    verify: the database could not be reached
  9    verify: not supported for this engine (no login client for its protocol)
  10   forbidden: a permission the command needs is missing (checked before any write)
  11   --restart-consumers: a consumer's rollout failed or timed out (the change was made)
  124  timed out while waiting (the rotation goes on)
  130  interrupted: while waiting (the rotation goes on), or while writing (nothing landed)
With several targets: the failed rows' common code, else 1.
With several contexts: the first failing context's code, in the order given.
Environment:
  KUBECONFIG                    the kubeconfig files, when --kubeconfig is not given
  HTTPS_PROXY, NO_PROXY         the API server's proxy when the kubeconfig names none
  KUBECTL_ROTATE_WATCH_SILENCE  how long a watch may say nothing before it is reopened (60s)
  KUBERNETES_SERVICE_HOST/PORT  in a pod, with no kubeconfig: its service account is used";

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
    after_help = AFTER_HELP,
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
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config, then,
    /// in a pod, its service account).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// The name of the kubeconfig context to use. Several, separated by commas (a,b,c),
    /// run the command in each at once (list, status, history, prev, consumers, verify,
    /// auth, rollback, retry), with a CONTEXT column first.
    #[arg(long, global = true, value_name = "NAME[,NAME...]")]
    pub context: Option<String>,

    /// Run the command in every context of the kubeconfig at once, as --context with all
    /// their names (a CONTEXT column even when there is one).
    #[arg(long, global = true)]
    pub all_contexts: bool,

    /// The kubeconfig cluster to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,

    /// The kubeconfig user to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,

    /// The address and port of the Kubernetes API server (default: the kubeconfig
    /// cluster's); with it, no kubeconfig is needed.
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Bearer token for authentication to the API server; it replaces the kubeconfig
    /// user's token, exec plugin or auth provider.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<Token>,

    /// Username to impersonate for the operation (a user or a service account).
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,

    /// Group to impersonate for the operation; repeat it for several groups.
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,

    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", global = true, value_name = "UID")]
    pub as_uid: Option<String>,

    /// Path to a cert file for the certificate authority of the API server.
    #[arg(long, global = true, value_name = "PATH")]
    pub certificate_authority: Option<std::path::PathBuf>,

    /// Path to a client certificate file for TLS to the API server.
    #[arg(long, global = true, value_name = "PATH")]
    pub client_certificate: Option<std::path::PathBuf>,

    /// Path to a client key file for TLS to the API server.
    #[arg(long, global = true, value_name = "PATH")]
    pub client_key: Option<std::path::PathBuf>,

    /// Do not check the API server's certificate (insecure). The database's TLS has its
    /// own flag, --insecure-skip-db-tls-verify.
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,

    /// Server name to check the API server's certificate against (default: the server's
    /// host name).
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// The namespace of the target (default: the context's namespace, then "default").
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// How long to wait for a single API request (e.g. 10s, 1m); 0 waits forever.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0")]
    pub request_timeout: GoDuration,

    /// Ask for lists in pages of N objects, as kubectl's --chunk-size; 0 (the default
    /// here, where kubectl's is 500) asks for each list in one request: fewer round trips
    /// one after another (see README, "Request plan").
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub chunk_size: u32,

    /// Where to keep what discovery found, as kubectl's --cache-dir (default:
    /// $KUBECACHEDIR, then ~/.kube/cache); list starts its LISTs from it while discovery
    /// checks it.
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// Log level on stderr, as kubectl's -v: 6 API requests, 7 their headers, 8 bodies.
    ///
    /// 6 logs each API request (method, URL, status, milliseconds), as kubectl does; 7 also
    /// its headers (credentials masked); 8 also the response headers and both bodies (Secret
    /// values redacted, cut at 1024 chars; 10240 from 9 on). verify says what it tries where
    /// from 2 on, and each login request (password masked) from 4 on.
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        value_name = "N",
        default_value_t = 0
    )]
    pub verbosity: u8,
    // NB: -A/--all-namespaces and -l/--selector are per verb, not global: auth and
    // rollback take them in `SelectArgs`, list in `ListArgs`.
}

/// A bearer token from the command line: never shown by `{:?}`.
#[derive(Clone, Default)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl std::str::FromStr for Token {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Token, String> {
        if s.is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Token(s.to_string()))
    }
}

/// Output format flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Output options")]
pub struct OutputArgs {
    /// Output format. The templates (kubectl's syntax) apply to what -o json prints.
    #[arg(
        short = 'o',
        long,
        global = true,
        value_parser = OutputParser,
        default_value = "table"
    )]
    pub output: Output,
    /// Print tables (-o table, wide, custom-columns) without their header line.
    #[arg(long, global = true)]
    pub no_headers: bool,
}

/// What `-o` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// One of the built-in formats.
    Format(Format),
    /// `jsonpath=TEMPLATE`: the template's text for the `-o json` document.
    JsonPath(String),
    /// `jsonpath-as-json=TEMPLATE`: the template's matches as a JSON list.
    JsonPathAsJson(String),
    /// `custom-columns=HEADER:PATH,...`: a table of those columns.
    CustomColumns(String),
}

impl Default for Output {
    fn default() -> Self {
        Output::Format(Format::Table)
    }
}

impl Output {
    /// The format the verb prints in: JSON under a template, which is applied to it.
    pub fn format(&self) -> Format {
        match self {
            Output::Format(f) => *f,
            _ => Format::Json,
        }
    }
}

/// The values `-o` takes, as kubectl names them.
const OUTPUT_FORMATS: &str = "custom-columns,json,jsonpath,jsonpath-as-json,name,table,wide,yaml";

/// `-o`'s parser: the built-in formats, and the template formats with their `=ARGUMENT`.
#[derive(Clone, Copy, Debug)]
pub struct OutputParser;

impl clap::builder::TypedValueParser for OutputParser {
    type Value = Output;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Output, clap::Error> {
        let fail = |why: String| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{why}\n")).with_cmd(cmd)
        };
        let v = value
            .to_str()
            .ok_or_else(|| fail("the output format is not UTF-8".into()))?;
        let (name, arg) = match v.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (v, None),
        };
        match (name, arg) {
            ("jsonpath" | "jsonpath-as-json" | "custom-columns", None | Some("")) => Err(fail(
                format!("{name} format specified but no {name} template given (-o {name}=...)"),
            )),
            ("jsonpath", Some(t)) => Ok(Output::JsonPath(t.into())),
            ("jsonpath-as-json", Some(t)) => Ok(Output::JsonPathAsJson(t.into())),
            ("custom-columns", Some(s)) => Ok(Output::CustomColumns(s.into())),
            (n, None) => Format::from_str(n, false)
                .map(Output::Format)
                .map_err(|_| unknown(v)),
            _ => Err(unknown(v)),
        }
        .map_err(|e| e.with_cmd(cmd))
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let named = Format::value_variants()
            .iter()
            .filter_map(ValueEnum::to_possible_value);
        let templates = [
            ("jsonpath=TEMPLATE", "kubectl's JSONPath template, as text"),
            (
                "jsonpath-as-json=TEMPLATE",
                "the template's matches, as a JSON list",
            ),
            ("custom-columns=SPEC", "HEADER:PATH,... as a table"),
        ]
        .map(|(v, h)| clap::builder::PossibleValue::new(v).help(h));
        Some(Box::new(named.chain(templates)))
    }
}

/// kubectl's refusal of an unknown `-o`.
fn unknown(v: &str) -> clap::Error {
    clap::Error::raw(
        clap::error::ErrorKind::InvalidValue,
        format!(
            "unable to match a printer suitable for the output format \"{v}\", allowed formats are: {OUTPUT_FORMATS}\n"
        ),
    )
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
    /// Rotate database credentials.
    ///
    /// Azure Arc SQL MI (sqlmi): bumps spec.update.managedCredentialsGeneration by one,
    /// guarded so a concurrent change makes it fail instead of rotating twice.
    ///
    /// KubeDB (all 30 kinds with RotateAuth: pg, ms, my, mg, es, rd, ...): creates a
    /// <Kind>OpsRequest of type RotateAuth. The operator generates the new password, unless
    /// --secret names a kubernetes.io/basic-auth Secret holding it, --password-stdin reads
    /// one, or --generate has the plugin generate it; the plugin then creates the Secret
    /// (owned by the database). The engine's fixed user and password rules are checked
    /// before anything is written, and a new password equal to the current one is refused.
    /// The previous credential is kept in the auth Secret. One rotation at a time per
    /// database: the checks and writes hold the database's Lease, and a second command
    /// exits 3 while a rotation is written or running.
    ///
    /// Several targets, -l, --all or -A rotate many databases, --parallel at a time, and
    /// print one summary table; each failure is reported in its row and makes the exit
    /// code non-zero.
    #[command(after_help = "Examples:
  kubectl rotate auth sqlmi/sqlmi-demo -n demo --wait
  kubectl rotate auth pg/pg-demo -n demo --wait --timeout 10m
  kubectl rotate auth pg/pg-demo -n demo --wait --verify --rollback-on-failure
  kubectl rotate auth ms mssql-demo -n demo --secret mssql-demo-new-auth
  printf '%s\\n' \"$NEW_PASSWORD\" | kubectl rotate auth ms/mssql-demo -n demo --password-stdin
  kubectl rotate auth pg/pg-demo ms/mssql-demo -n demo --generate --wait
  kubectl rotate auth --all -A --yes --wait --parallel 16
  kubectl rotate auth pg -l team=payments -n demo --wait
  kubectl rotate auth pg/pg-demo -n demo --context prod-eu,prod-us --wait --yes
  kubectl rotate auth pg/pg-demo -n demo --dry-run=client -o yaml")]
    Auth(AuthArgs),

    /// Roll back to the previous credentials.
    ///
    /// Azure Arc SQL MI: sets managedCredentialsGeneration to n-1; only one step back is
    /// supported, so a second rollback is refused.
    ///
    /// KubeDB: creates a basic-auth Secret from the auth Secret's previous credential
    /// (username.prev/password.prev; DocumentDB password.prev; Memcached authData.prev;
    /// Weaviate *-PREV) and a RotateAuth ops request that uses it. Qdrant keeps no previous
    /// API key, so it cannot be rolled back.
    #[command(after_help = "Examples:
  kubectl rotate rollback sqlmi/sqlmi-demo -n demo --wait
  kubectl rotate rollback pg/pg-demo -n demo --wait
  kubectl rotate rollback md/md-demo -n demo --wait --verify
  kubectl rotate rollback pg/pg-a my/my-b -n demo --wait")]
    Rollback(RollbackArgs),

    /// Re-run the last rotation when it Failed.
    ///
    /// KubeDB: creates a RotateAuth like the newest one for the database, which must have
    /// Failed: the same action (a rotation or a rollback) and the same credential source
    /// (the operator's, or the same Secret, which must still exist). Refused when the last
    /// rotation did not fail, or is still running.
    ///
    /// Azure Arc SQL MI: refused; the controller tries again only on a new generation, so
    /// roll back or rotate anew.
    #[command(after_help = "Examples:
  kubectl rotate retry pg/pg-demo -n demo --wait
  kubectl rotate retry ms/mssql-demo -n demo --wait --verify")]
    Retry(RetryArgs),

    /// Show the current and the previous credential side by side.
    ///
    /// KubeDB: reads the auth Secret and pairs the current keys with the previous ones
    /// (username.prev/password.prev; DocumentDB password.prev; Memcached authData.prev;
    /// Weaviate *-PREV); engines that keep none say so. Arc SQL MI: the admin login Secret
    /// and the current and previous service-managed credentials generation.
    ///
    /// Passwords print as ******** in every format unless --reveal is given.
    #[command(after_help = "Examples:
  kubectl rotate prev pg/pg-demo -n demo
  kubectl rotate prev sqlmi/sqlmi-demo -n demo -o yaml
  kubectl rotate prev ms/mssql-demo -n demo --reveal")]
    Prev(PrevArgs),

    /// Show the in-flight or last rotation of a database, step by step.
    ///
    /// KubeDB: the newest RotateAuth request with its steps (STEP, STATUS, SINCE, MESSAGE)
    /// and the database phase. Arc SQL MI: the credentials generation, generation and
    /// observed generation, state, message, and whether a rollback is still allowed. Both:
    /// the earliest expiry of the certificates spec.tls references (90 days or less is a
    /// warning, 30 or less critical).
    #[command(after_help = "Examples:
  kubectl rotate status pg/pg-demo -n demo
  kubectl rotate status sqlmi/sqlmi-demo -n demo -o json")]
    Status(StatusArgs),

    /// Show every workload that reads a database's credential, and who manages it.
    ///
    /// Deployments, StatefulSets, DaemonSets, ReplicaSets and Jobs of their own, CronJobs
    /// and bare Pods in the database's namespace that read its auth Secret, or a Secret
    /// its rotations used before (SECRET then says `(old)`: that workload keeps the old
    /// password until its reference changes). READS says how (env VAR=key, envFrom, or a
    /// volume's mount path); PICKS UP whether it needs a restart (env, subPath) or sees a
    /// new value live (other volume mounts, within the kubelet's sync period); RELOADER
    /// whether Stakater Reloader's annotations restart it. -o wide adds who manages the
    /// Secret (External Secrets, Sealed Secrets, Argo CD, Flux, Helm). No Secret value is
    /// read.
    #[command(after_help = "Examples:
  kubectl rotate consumers pg/pg-demo -n demo
  kubectl rotate consumers pg/pg-demo -n demo -o wide")]
    Consumers(ConsumersArgs),

    /// List every rotation of a database, newest first.
    ///
    /// KubeDB: every RotateAuth request (NAME, PHASE, SOURCE generated/secret, STARTED,
    /// DURATION; -o wide adds the user who asked, from the plugin's audit Events). Arc SQL
    /// MI: the generation changes the plugin recorded as Events.
    #[command(after_help = "Examples:
  kubectl rotate history pg/pg-demo -n demo
  kubectl rotate history sqlmi/sqlmi-demo -n demo -o wide")]
    History(HistoryArgs),

    /// List every database of every installed kind, with its credential's age.
    ///
    /// One LIST per installed kind and one per namespace's Secrets; kinds whose CRD is not
    /// installed are skipped. -o wide adds REQUEST, GENERATION, TLS EXPIRY and CONSUMERS
    /// (how many workloads read the credential, and how many of them a Secret it used
    /// before: "3 (1 stale)"), for which it also lists the workloads (-o json|yaml too),
    /// NEXT ROTATION (when its `schedule` next rotates it) and ROTATE AFTER (KubeDB's
    /// spec.authSecret.rotateAfter).
    /// With --older-than, only databases whose credential is older are shown, and the exit
    /// code is 1 when any remain (for CI or cron).
    #[command(after_help = "Examples:
  kubectl rotate list -n demo
  kubectl rotate list -A -o wide
  kubectl rotate list -A -l team=payments
  kubectl rotate list -A --all-contexts
  kubectl rotate list -A --older-than 90d || echo 'credentials need rotating'")]
    List(ListArgs),

    /// Check logins: the current credential must work, the previous one must not.
    ///
    /// Reads the auth Secret (current and previous credential, as prev shows them) and logs
    /// in with each over the database's own wire protocol, without running any query:
    /// PostgreSQL (also PgBouncer, Pgpool), MySQL (MariaDB, PerconaXtraDB, ProxySQL,
    /// Singlestore), SQL Server (also Arc SQL MI), MongoDB, Redis and Elasticsearch. By
    /// default each attempt goes through the API server over a fresh port-forward to the
    /// primary pod (labelled kubedb.com/role=primary), as kubectl port-forward does;
    /// --address connects directly instead. A database with spec.tls is reached over TLS
    /// verified against its CA.
    ///
    /// RESULT is accepted, rejected, unreachable or error; DETAIL is the server's own
    /// message, never the password.
    #[command(after_help = "Examples:
  kubectl rotate verify pg/pg-demo -n demo
  kubectl rotate verify md/md-demo -n demo --address 127.0.0.1:3306 -o wide
  kubectl rotate auth pg/pg-demo -n demo --wait --verify --rollback-on-failure")]
    Verify(VerifyArgs),

    /// Rotate a database on a schedule, in the cluster: a CronJob that runs this plugin.
    ///
    /// In the database's namespace, makes a ServiceAccount, a Role granting exactly what
    /// that one rotation needs (that database, its Secret, its ops requests, its Lease,
    /// Events; pods/portforward only with --verify, workloads only with
    /// --restart-consumers), a RoleBinding, and a CronJob (concurrencyPolicy Forbid,
    /// backoffLimit 0) whose job runs `auth TYPE/NAME --wait --yes` with the plugin's image:
    /// the same lock, records and exit codes as any rotation. Hours that divide a day are
    /// a cron schedule; whole days or weeks are a daily job at --at (UTC, default 03:00)
    /// that rotates once the credential is that old (`auth --older-than`). Running it
    /// again updates the schedule. --dry-run=client -o yaml prints the manifests (for a
    /// GitOps repository). `schedule list` shows every schedule, `schedule delete` removes
    /// what `schedule` made and nothing else.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:
  kubectl rotate schedule pg/pg-demo -n demo --every 30d --at 02:30
  kubectl rotate schedule pg/pg-demo -n demo --every 90d --verify --rollback-on-failure
  kubectl rotate schedule pg/pg-demo -n demo --every 30d --dry-run=client -o yaml > rotate-pg.yaml
  kubectl rotate schedule list -A
  kubectl rotate schedule delete pg/pg-demo -n demo"
    )]
    Schedule(ScheduleArgs),

    /// Print the plugin's version, git commit, build date (the commit's) and target.
    ///
    /// Needs no cluster. -o json|yaml prints a Version object.
    #[command(after_help = "Examples:
  kubectl rotate version
  kubectl rotate version -o json")]
    Version,

    /// Print shell completion: `kubectl` prints the kubectl_complete-rotate helper that
    /// kubectl 1.26+ runs to complete `kubectl rotate ...`; bash, zsh, fish and powershell
    /// print a script that completes `kubectl-rotate` run by its own name.
    ///
    /// Save the helper as an executable named kubectl_complete-rotate on PATH (next to
    /// kubectl-rotate). Each completes verbs, flags, TYPEs and the names of the databases
    /// of a TYPE, read from the cluster.
    #[command(after_help = "Examples:
  kubectl rotate completion kubectl > ~/.krew/bin/kubectl_complete-rotate
  chmod +x ~/.krew/bin/kubectl_complete-rotate
  source <(kubectl-rotate completion bash)
  kubectl-rotate completion zsh > \"${fpath[1]}/_kubectl-rotate\"
  kubectl-rotate completion fish > ~/.config/fish/completions/kubectl-rotate.fish
  kubectl-rotate completion powershell | Out-String | Invoke-Expression")]
    Completion(CompletionArgs),

    /// What kubectl_complete-rotate asks: candidates for WORDS, one a line, then Cobra's
    /// `:DIRECTIVE`.
    #[command(name = "__complete", hide = true)]
    Complete(CompleteArgs),
}

/// `kubectl rotate completion` arguments.
#[derive(Args, Debug, Clone)]
pub struct CompletionArgs {
    /// The shell: `kubectl` (the helper kubectl 1.26+ runs for plugins), or a shell for
    /// `kubectl-rotate` run by its own name.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Which completion to print.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionShell {
    /// The kubectl_complete-rotate helper.
    Kubectl,
    /// A bash script (`complete -F`).
    Bash,
    /// A zsh script (`compdef`).
    Zsh,
    /// A fish script (`complete -c`).
    Fish,
    /// A PowerShell script (`Register-ArgumentCompleter`).
    Powershell,
}

/// `kubectl rotate __complete` arguments: the words after `rotate`, as typed.
#[derive(Args, Debug, Clone)]
pub struct CompleteArgs {
    /// The words; the last is the one being completed (may be empty).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub words: Vec<String>,
}

/// `kubectl rotate verify` arguments.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,

    /// How to log in.
    #[command(flatten)]
    pub login: LoginArgs,
}

/// How `verify` (and `auth`/`rollback --verify`) log in to the database.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Login options")]
pub struct LoginArgs {
    /// Connect to the database at HOST:PORT directly instead of port-forwarding to its
    /// primary pod through the API server.
    #[arg(long, value_name = "HOST:PORT")]
    pub address: Option<String>,

    /// Use TLS to the database without verifying its certificate (encryption without
    /// authentication of the server). The API server's is --insecure-skip-tls-verify.
    #[arg(long)]
    pub insecure_skip_db_tls_verify: bool,

    /// Require TLS to the database even without spec.tls, its certificate verified
    /// against the CA in its Secrets: a server without TLS is an error, so no password
    /// crosses the connection in clear (without it, a password sent in clear over
    /// --address is warned about).
    #[arg(long)]
    pub require_tls: bool,

    /// Bound for each login attempt, port-forward set-up included.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub login_timeout: GoDuration,
}

/// `kubectl rotate prev` arguments.
#[derive(Args, Debug, Clone)]
pub struct PrevArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Print the credential values in clear text (a warning goes to stderr).
    #[arg(long)]
    pub reveal: bool,
}

/// `kubectl rotate status` arguments.
#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `kubectl rotate consumers` arguments.
#[derive(Args, Debug, Clone)]
pub struct ConsumersArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `kubectl rotate history` arguments.
#[derive(Args, Debug, Clone)]
pub struct HistoryArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `kubectl rotate list` arguments.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// List databases in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Only databases matching this label selector (e.g. team=payments,tier!=dev).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Only databases whose credential is older than AGE (e.g. 90d, 2w, 36h); exit 1 when
    /// any remain.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<crate::duration::OlderThan>,
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

/// Which objects a rotation acts on: one or more by name, or a selection.
#[derive(Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// TYPE/NAME ..., or TYPE NAME ...; TYPE is a kind, plural or short name: sqlmi, pg,
    /// postgres, ms, mssqlserver, my, mg, ... (optionally with its group:
    /// postgreses.kubedb.com). TYPE alone, with --all, -l or -A, selects that kind only.
    #[arg(value_name = "TYPE/NAME", required_unless_present_any = ["all", "all_namespaces", "selector"])]
    pub targets: Vec<String>,

    /// Act on every database matching this label selector (e.g. team=payments,tier!=dev).
    #[arg(
        short = 'l',
        long,
        value_name = "SELECTOR",
        help_heading = "Selection options"
    )]
    pub selector: Option<String>,

    /// Act on every supported database in the namespace (of TYPE, if given).
    #[arg(long, help_heading = "Selection options")]
    pub all: bool,

    /// Act on databases in every namespace (with --all, -l or TYPE).
    #[arg(short = 'A', long, help_heading = "Selection options")]
    pub all_namespaces: bool,

    /// How many databases to work on at once when there are several.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256), help_heading = "Selection options")]
    pub parallel: u16,

    /// Do not ask for confirmation before writing to --all or -A databases, or in several
    /// contexts.
    #[arg(long, help_heading = "Selection options")]
    pub yes: bool,
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

    /// --dry-run.
    #[command(flatten)]
    pub dry: DryRunArg,

    /// With --wait: then log in to the database, as `kubectl rotate verify` does; the
    /// current credential must be accepted and the previous one refused (exit 7 if not).
    #[arg(long, requires = "wait", help_heading = "Login options")]
    pub verify: bool,

    /// With --wait: once the change is Successful (and, with --verify, the logins
    /// proven), restart the workloads that read the credential and need a restart to pick
    /// it up, as `kubectl rollout restart` does, each once; then wait for each rollout as
    /// `kubectl rollout status` does (bounded by --timeout, else 5m; exit 11 when one
    /// fails or times out). Those Reloader covers, that read it live, bare Pods, Jobs and
    /// stale references are reported, not touched (see `kubectl rotate consumers`). In
    /// bulk, the consumers of the databases whose change succeeded are restarted even when
    /// others failed (not with --verify, which then does not run).
    #[arg(long, requires = "wait")]
    pub restart_consumers: bool,

    /// How --verify logs in.
    #[command(flatten)]
    pub login: LoginArgs,
}

/// `kubectl rotate auth` arguments.
#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// The targets.
    #[command(flatten)]
    pub targets: SelectArgs,

    /// KubeDB: use the password in this kubernetes.io/basic-auth Secret (same namespace)
    /// instead of one the operator generates. It is checked before anything is written.
    #[arg(long, value_name = "NAME", help_heading = "Credential options")]
    pub secret: Option<String>,

    /// KubeDB: read the new password from stdin (one line, its line ending dropped, no
    /// control characters; never echoed, never in argv); the plugin creates a basic-auth
    /// Secret for it, owned by the database.
    #[arg(long, conflicts_with_all = ["secret", "generate"], help_heading = "Credential options")]
    pub password_stdin: bool,

    /// KubeDB: have the plugin generate the new password (OS CSPRNG, 24 letters and
    /// digits, the engine's rules met) and create a basic-auth Secret for it.
    #[arg(long, conflicts_with = "secret", help_heading = "Credential options")]
    pub generate: bool,

    /// KubeDB, with --password-stdin or --generate: the username, for engines that allow
    /// choosing one (default: the current one). Engines with a fixed user refuse others.
    #[arg(long, value_name = "NAME", help_heading = "Credential options")]
    pub username: Option<String>,

    /// With --verify: when the new credential is not accepted (or the old one still is),
    /// roll back to the previous credential at once and verify again.
    #[arg(long, requires = "verify", help_heading = "Login options")]
    pub rollback_on_failure: bool,

    /// KubeDB: rotate although a controller manages the Secret the new password goes into
    /// (External Secrets, Sealed Secrets, Argo CD, Flux) and would write the old one back;
    /// without it such a rotation is refused (exit 6) before it starts.
    #[arg(long)]
    pub force: bool,

    /// Rotate only if the credential is older than AGE (90d, 2w, 36h; its age as `list`
    /// shows it); if not, say so on stderr and exit 0 with nothing written. One database.
    /// What a `schedule`d rotation runs with.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<crate::duration::OlderThan>,

    /// Flags shared with rollback.
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// `kubectl rotate rollback` arguments.
#[derive(Args, Debug, Clone)]
pub struct RollbackArgs {
    /// The targets.
    #[command(flatten)]
    pub targets: SelectArgs,

    /// KubeDB: roll back even when the last change was a rollback already; the auth
    /// Secret's previous credential is then the one that rollback replaced, so this flips
    /// back to it. Without it a second rollback is refused, as Arc refuses one.
    #[arg(long)]
    pub force: bool,

    /// Flags shared with auth.
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// `kubectl rotate retry` arguments.
#[derive(Args, Debug, Clone)]
pub struct RetryArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Do not ask for confirmation before retrying in several contexts.
    #[arg(long)]
    pub yes: bool,

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

/// `kubectl rotate schedule` arguments: make one, or list or delete them.
#[derive(Args, Debug, Clone)]
pub struct ScheduleArgs {
    /// `list` or `delete`, else make (or update) a schedule.
    #[command(subcommand)]
    pub action: Option<ScheduleAction>,

    /// Make or update one.
    #[command(flatten)]
    pub create: ScheduleCreateArgs,
}

/// What `schedule` does besides making one.
#[derive(Subcommand, Debug, Clone)]
pub enum ScheduleAction {
    /// List the schedules: DATABASE, EVERY, SCHEDULE, NEXT RUN, LAST RUN, LAST RESULT.
    ///
    /// From the CronJobs `schedule` made, their Jobs, and the exit code of each Job's pod
    /// (see `kubectl rotate --help` for what each code means).
    List(ScheduleListArgs),
    /// Delete a database's schedule: its CronJob (and with it its Jobs), RoleBinding, Role
    /// and ServiceAccount, each only if `schedule` made it for that database.
    Delete(ScheduleDeleteArgs),
}

/// `schedule TYPE/NAME --every ...` arguments.
#[derive(Args, Debug, Clone)]
pub struct ScheduleCreateArgs {
    /// TYPE/NAME, or TYPE NAME: the database (as for auth).
    // NB: optional here, checked by the verb: clap would ask for it before `list` too.
    #[arg(value_name = "TYPE/NAME")]
    pub target: Option<String>,

    /// NAME, when TYPE and NAME are given separately.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// How often: hours that divide a day (1h, 6h, 12h) or whole days or weeks (30d, 90d, 2w).
    #[arg(long, value_name = "DURATION")]
    pub every: Option<crate::duration::OlderThan>,

    /// For days or weeks: the time of day the job runs, HH:MM in UTC (default 03:00).
    #[arg(long, value_name = "HH:MM")]
    pub at: Option<String>,

    /// Each run also logs in to prove the new password works (auth --verify); the Role
    /// then also grants the pods, the Service and pods/portforward.
    #[arg(long)]
    pub verify: bool,

    /// With --verify: each run rolls back when the new password is refused.
    #[arg(long, requires = "verify")]
    pub rollback_on_failure: bool,

    /// Each run restarts the workloads that read the credential (auth
    /// --restart-consumers); the Role then also grants listing and restarting them.
    #[arg(long)]
    pub restart_consumers: bool,

    /// The image the job runs (default: the plugin's own, at this version).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// --dry-run: with `client`, only the manifests are printed.
    #[command(flatten)]
    pub dry: DryRunArg,
}

/// `schedule list` arguments.
#[derive(Args, Debug, Clone)]
pub struct ScheduleListArgs {
    /// List schedules in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// `schedule delete` arguments.
#[derive(Args, Debug, Clone)]
pub struct ScheduleDeleteArgs {
    /// The database.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `--dry-run[=client|server]`, as kubectl takes it (`--dry-run` alone is `client`).
#[derive(Args, Debug, Clone)]
pub struct DryRunArg {
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
        assert_eq!(cli.output.output, Output::Format(Format::Json));
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.targets.targets, ["pg/pg-demo"]);
        assert_eq!(a.targets.parallel, 4);
        assert_eq!(a.change.apply, ApplyPolicy::IfReady);
        assert_eq!(a.change.dry.dry_run, DryRun::None);
    }

    #[test]
    fn the_log_level_is_kubectl_s_v_spelt_every_way_after_every_verb() {
        let verbs: [&[&str]; 8] = [
            &["auth", "pg/x"],
            &["rollback", "pg/x"],
            &["retry", "pg/x"],
            &["prev", "pg/x"],
            &["status", "pg/x"],
            &["history", "pg/x"],
            &["list"],
            &["verify", "pg/x"],
        ];
        for verb in verbs {
            assert_eq!(parse(verb).unwrap().kube.verbosity, 0, "{verb:?}");
            for flag in [
                &["-v=6"][..],
                &["--v=6"],
                &["-v", "6"],
                &["--v", "6"],
                &["-v6"],
            ] {
                let args: Vec<&str> = verb.iter().chain(flag).copied().collect();
                assert_eq!(parse(&args).unwrap().kube.verbosity, 6, "{args:?}");
            }
            // As kubectl's, -v takes a number: neither a count nor a word.
            for bad in [&["-v=x"][..], &["-v"], &["-vv"], &["--v=-1"]] {
                let args: Vec<&str> = verb.iter().chain(bad).copied().collect();
                assert_eq!(parse(&args).unwrap_err().exit_code(), 2, "{args:?}");
            }
        }
    }

    #[test]
    fn a_bare_dry_run_means_client_like_kubectl() {
        let cli = parse(&["auth", "pg/x", "--dry-run"]).unwrap();
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.change.dry.dry_run, DryRun::Client);
        let cli = parse(&["rollback", "pg/x", "--dry-run=server"]).unwrap();
        let Command::Rollback(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.change.dry.dry_run, DryRun::Server);
    }

    #[test]
    fn type_and_name_may_be_given_apart() {
        let cli = parse(&["auth", "pg", "pg-demo"]).unwrap();
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.targets.targets, ["pg", "pg-demo"]);
    }

    #[test]
    fn bad_flag_values_are_usage_errors() {
        for args in [
            &["auth", "pg/x", "--apply", "Sometimes"][..],
            &["auth", "pg/x", "-o", "xml"],
            &["auth", "pg/x", "--timeout", "soon"],
            &["auth", "pg/x", "--dry-run=maybe"],
            &["auth", "pg/x", "--parallel", "0"],
            &["auth"],
            &["auth", "pg/x", "--secret", "s", "--password-stdin"],
            &["auth", "pg/x", "--secret", "s", "--generate"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
