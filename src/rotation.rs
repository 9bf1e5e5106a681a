//! What the verbs return: data for `output/` to print. Never holds secret values.

use serde::Serialize;

use crate::cli::DryRun;
use crate::engines::EngineSpec;

/// rotate or rollback.
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

/// The object the server works on for a rotation (KubeDB's ops request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRef {
    /// e.g. `PostgresOpsRequest`.
    pub kind: String,
    /// e.g. `ops.kubedb.com`.
    pub group: String,
    /// The ops request's name.
    pub name: String,
}

/// A change of Arc's `managedCredentialsGeneration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GenerationChange {
    /// Before.
    pub from: i64,
    /// After.
    pub to: i64,
}

/// The result of `auth` or `rollback`: printed as a table row, JSON, YAML or a name.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Always `rotate.kubectl.dev/v1alpha1`, so `-o json` output is self-describing.
    pub api_version: &'static str,
    /// Always `Rotation`.
    pub kind: &'static str,
    /// The target's namespace.
    pub namespace: String,
    /// The target's kind, e.g. `Postgres`.
    pub target_kind: String,
    /// The target's API group, e.g. `kubedb.com`.
    pub target_group: String,
    /// The target's name.
    pub name: String,
    /// rotate or rollback.
    pub action: Action,
    /// The ops request (KubeDB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestRef>,
    /// The generation change (Arc).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<GenerationChange>,
    /// The Secret the new credential comes from (`--secret`, or the rollback Secret); a name only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Pending, Progressing, Successful, Failed, Skipped (KubeDB); Submitted, Ready (Arc).
    pub phase: String,
    /// Whether an existing identical request was adopted instead of creating a new one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// Whether this was a dry run.
    #[serde(skip_serializing_if = "is_none_dry_run")]
    pub dry_run: DryRun,
    /// Seconds from the write to the end, with --wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// The last message from the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn is_none_dry_run(d: &DryRun) -> bool {
    *d == DryRun::None
}

impl Rotation {
    /// A rotation of the engine's `namespace/name`, phase to be filled in.
    pub fn new(namespace: &str, engine: &EngineSpec, name: &str, action: Action) -> Rotation {
        Rotation {
            api_version: "rotate.kubectl.dev/v1alpha1",
            kind: "Rotation",
            namespace: namespace.into(),
            target_kind: engine.kind.into(),
            target_group: engine.group.into(),
            name: name.into(),
            action,
            request: None,
            generation: None,
            secret: None,
            phase: String::new(),
            adopted: false,
            dry_run: DryRun::None,
            duration_seconds: None,
            message: None,
        }
    }
}

/// What a verb hands to `output/`.
// NB: one value per process run, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The change was made (or checked by the server, with --dry-run=server).
    Done {
        /// The result.
        rotation: Rotation,
        /// A command that follows the rotation (printed on stderr when not waiting).
        follow: Option<String>,
    },
    /// `--dry-run=client`: the objects or patches that would be sent, secret values redacted.
    Preview {
        /// What would be sent, in order.
        documents: Vec<serde_json::Value>,
        /// `kind.group/name` of the main object.
        name: String,
        /// One line per request, e.g. `PATCH sqlmanagedinstances.sql.arcdata.microsoft.com demo/x (json-patch)`.
        requests: Vec<String>,
    },
    /// Several targets (names, `-l`, `--all`, `-A`): a summary of each.
    Bulk(BulkReport),
}

/// The result of a command with several targets: one row each, failures included.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BulkReport {
    /// One row per target, in a stable order (namespace, kind, name). A failed target's
    /// row says why in `message`.
    pub rows: Vec<Rotation>,
    /// The exit code of each failed row, for the command's own exit code.
    pub failed: Vec<u8>,
    /// `--dry-run=client`: every document that would be sent, secret values redacted.
    pub documents: Vec<serde_json::Value>,
    /// `--dry-run=client`: one line per request that would be sent.
    pub requests: Vec<String>,
}

/// A step seen while following a rotation, for live progress on stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A new or changed condition on an ops request.
    Condition {
        /// The ops request's name.
        request: String,
        /// The condition type, e.g. `UpdateCredential`.
        type_: String,
        /// `True`, `False`, `Unknown`.
        status: String,
        /// Its message.
        message: String,
    },
    /// A new phase of an ops request, or state of an Arc instance.
    Phase {
        /// Whose.
        object: String,
        /// The phase or state.
        phase: String,
        /// Extra detail (e.g. generations).
        detail: Option<String>,
    },
}

/// Where verbs report progress; implemented in `output/` (stderr) and by tests.
pub trait Progress: Send {
    /// Reports one step.
    fn event(&mut self, event: &ProgressEvent);
    /// Reports a warning that does not stop the command.
    fn warn(&mut self, message: &str);
}

/// A progress sink that drops everything (for quiet callers and tests).
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: &ProgressEvent) {}
    fn warn(&mut self, _: &str) {}
}
