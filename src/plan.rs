//! Checked plans: what a command line asks for, validated before any API call (bad input
//! changes nothing). [`ChangePlan`] is `auth`/`rollback` for every target it selects;
//! [`Plan`] is one target of it, as a backend carries it out.

use std::time::Duration;

use serde::Serialize;

use crate::cli::{ApplyPolicy, DryRun};
use crate::duration::GoDuration;
use crate::target::{Selection, Target};

/// What a change does: rotate to new credentials, or roll back to the previous ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// New credentials.
    Rotate,
    /// Back to the previous credentials.
    Rollback,
}

impl Action {
    /// `rotate` / `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Rotate => "rotate",
            Action::Rollback => "rollback",
        }
    }
}

/// The bound on `--wait` when `--timeout` is not given: Arc documents rollbacks of about 30 minutes.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30 * 60);

/// A checked request to rotate or roll back one target, in its namespace.
#[derive(Clone, Debug)]
pub struct Plan {
    /// rotate or rollback.
    pub action: Action,
    /// What to act on.
    pub target: Target,
    /// The target's namespace.
    pub namespace: String,
    /// `--apply`.
    pub apply: ApplyPolicy,
    /// `--wait`.
    pub wait: bool,
    /// `--timeout`.
    pub timeout: Option<GoDuration>,
    /// `--dry-run`.
    pub dry_run: DryRun,
    /// Where the new credential comes from (KubeDB rotate only; rollback uses the previous one).
    pub credential: NewCredential,
    /// `rollback --force`: roll back although the last change was a rollback (KubeDB);
    /// `auth --force`: rotate although a controller would write the Secret back.
    pub force: bool,
    /// `retry`: re-run the last rotation, which Failed, as it was (its action and source).
    pub retry: bool,
    /// `--restart-consumers`: afterwards, restart the workloads that read the credential.
    pub restart_consumers: bool,
}

/// Where a KubeDB rotation's new credential comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NewCredential {
    /// The operator generates a password (the default).
    #[default]
    Operator,
    /// `--secret NAME`: an existing basic-auth Secret, validated before use.
    Secret(String),
    /// `--password-stdin` (with `--username`): the plugin creates the Secret.
    Supplied {
        /// `--username`, else the engine's fixed or current user.
        username: Option<String>,
        /// The password read from stdin.
        password: crate::creds::Password,
    },
    /// `--generate` (with `--username`): the plugin generates the password and creates the Secret.
    Generate {
        /// `--username`, else the engine's fixed or current user.
        username: Option<String>,
    },
}

impl NewCredential {
    /// The `--username` given, if any.
    pub fn username(&self) -> Option<&str> {
        match self {
            NewCredential::Supplied { username, .. } | NewCredential::Generate { username } => {
                username.as_deref()
            }
            _ => None,
        }
    }
}

impl Plan {
    /// How long `--wait` may take.
    pub fn wait_bound(&self) -> Duration {
        self.timeout
            .as_ref()
            .map(GoDuration::get)
            .unwrap_or(DEFAULT_WAIT)
    }
}

/// A checked command line for `auth` or `rollback`. It names no namespace: `-n`, else the
/// kubeconfig context's, is known once the kubeconfig is read, and is passed to
/// [`ChangePlan::plan_for`] with each target.
#[derive(Clone, Debug)]
pub struct ChangePlan {
    /// rotate or rollback.
    pub action: Action,
    /// What to act on.
    pub selection: Selection,
    /// `--apply`.
    pub apply: ApplyPolicy,
    /// `--wait`.
    pub wait: bool,
    /// `--timeout`.
    pub timeout: Option<GoDuration>,
    /// `--dry-run`.
    pub dry_run: DryRun,
    /// Where new credentials come from.
    pub credential: NewCredential,
    /// `rollback --force`.
    pub force: bool,
    /// `retry`.
    pub retry: bool,
    /// `--parallel`.
    pub parallel: usize,
    /// `--yes`.
    pub yes: bool,
    /// `--all` or `-A` was given: writes need `--yes` or a confirmation.
    pub sweeping: bool,
    /// `--restart-consumers`: restart the workloads that need it once the change is done.
    pub restart_consumers: bool,
    /// `auth --older-than`: only when the credential is older than this.
    pub older_than: Option<crate::duration::OlderThan>,
}

impl ChangePlan {
    /// The plan for one target in `namespace`; its backend checks the credential
    /// (`backend::Rotate::check`).
    pub fn plan_for(&self, target: Target, namespace: &str) -> Plan {
        Plan {
            action: self.action,
            target,
            namespace: namespace.to_string(),
            apply: self.apply,
            wait: self.wait,
            timeout: self.timeout.clone(),
            dry_run: self.dry_run,
            credential: self.credential.clone(),
            force: self.force,
            retry: self.retry,
            restart_consumers: self.restart_consumers,
        }
    }

    /// Whether writing needs a yes first: `--all` or `-A` without `--yes`, not a dry run.
    pub fn needs_confirmation(&self) -> bool {
        self.sweeping && self.dry_run == DryRun::None && !self.yes
    }
}

impl Plan {
    /// The plainest plan for `target` in `ns`: apply only when Ready, no wait, no dry run,
    /// the operator's credential. What `status` asks the rules with, and tests start from.
    pub fn plain(action: Action, target: Target, ns: &str) -> Plan {
        Plan {
            action,
            target,
            namespace: ns.to_string(),
            apply: ApplyPolicy::IfReady,
            wait: false,
            timeout: None,
            dry_run: DryRun::None,
            credential: NewCredential::Operator,
            force: false,
            retry: false,
            restart_consumers: false,
        }
    }
}

#[cfg(test)]
impl Plan {
    /// A plan for tests: `target` (`TYPE/NAME`) in namespace `demo`, nothing but the action set.
    pub fn for_test(target: &str, action: Action) -> Plan {
        let target = Target::parse(&crate::cli::TargetArgs {
            target: target.into(),
            name: None,
        })
        .expect("a valid test target");
        Plan::plain(action, target, "demo")
    }
}
