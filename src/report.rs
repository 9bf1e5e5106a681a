//! What the verbs return: data for `output/` to print. Nothing here holds a secret value
//! except [`CredentialView::password`], a [`Password`](crate::creds::Password) that prints
//! masked.

use serde::Serialize;

use crate::cli::DryRun;
pub use crate::creds::{CredentialView, Role};
use crate::engines::EngineSpec;
pub use crate::plan::Action;
use crate::tls::Expiry;

/// `apiVersion` of everything the plugin prints as JSON or YAML.
pub const API_VERSION: &str = "rotate.kubectl.dev/v1alpha1";

/// `kind.group/name`, as `kubectl get -o name` prints it.
pub fn object_name(kind: &str, group: &str, name: &str) -> String {
    if group.is_empty() {
        format!("{}/{}", kind.to_ascii_lowercase(), name)
    } else {
        format!("{}.{}/{}", kind.to_ascii_lowercase(), group, name)
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
    /// The generation before the change.
    pub from: i64,
    /// The generation the change writes.
    pub to: i64,
}

/// What a document the plugin prints is about: its own kind, and the database it concerns.
/// Flattened into each document, so JSON and YAML output starts as a Kubernetes object
/// does: `apiVersion`, `kind`, `metadata` (the database's `name` and `namespace`), then
/// `targetKind` and `targetGroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// Always [`API_VERSION`], so JSON and YAML output is self-describing.
    pub api_version: &'static str,
    /// The document's kind: `Rotation`, `RotationStatus`, `LoginVerification`.
    pub kind: &'static str,
    /// The database's namespace.
    pub namespace: String,
    /// The database's kind, e.g. `Postgres`.
    pub target_kind: String,
    /// The database's API group, e.g. `kubedb.com`.
    pub target_group: String,
    /// The database's name.
    pub name: String,
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: Meta<'a>,
            target_kind: &'a str,
            target_group: &'a str,
        }
        Wire {
            api_version: self.api_version,
            kind: self.kind,
            metadata: Meta {
                name: &self.name,
                namespace: &self.namespace,
            },
            target_kind: &self.target_kind,
            target_group: &self.target_group,
        }
        .serialize(s)
    }
}

/// `metadata` of a document: the database's name and namespace.
#[derive(Serialize)]
pub struct Meta<'a> {
    /// The database's name.
    pub name: &'a str,
    /// The database's namespace.
    pub namespace: &'a str,
}

impl Subject {
    /// A document of `kind` about the engine's database `namespace/name`.
    pub fn new(kind: &'static str, namespace: &str, engine: &EngineSpec, name: &str) -> Subject {
        Subject {
            api_version: API_VERSION,
            kind,
            namespace: namespace.into(),
            target_kind: engine.kind.into(),
            target_group: engine.group.into(),
            name: name.into(),
        }
    }

    /// The database as `kubectl get -o name` prints it: `kind.group/name`.
    pub fn object_name(&self) -> String {
        object_name(&self.target_kind, &self.target_group, &self.name)
    }
}

/// The result of `auth` or `rollback`: printed as a table row, JSON, YAML or a name.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// What the document is (`Rotation`) and which database it is about.
    #[serde(flatten)]
    pub subject: Subject,
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
            subject: Subject::new("Rotation", namespace, engine, name),
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
        /// What was done, as a row of the summary table.
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
        /// The ops request that would be created, if the backend creates one.
        request: Option<RequestRef>,
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

/// A step seen while carrying out or following a rotation, for live progress on stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The server holds the ops request now: created, or an identical one adopted. Not
    /// printed; it tells a caller which request a target's rotation is, even when the
    /// rotation then fails or the wait is cut short.
    Submitted(RequestRef),
    /// A new or changed condition on an ops request.
    Condition {
        /// The ops request's name.
        request: String,
        /// The condition type, e.g. `UpdateCredential`.
        type_: String,
        /// `True`, `False`, `Unknown`.
        status: String,
        /// The condition's message, as the operator wrote it.
        message: String,
    },
    /// A new phase of an ops request, or state of an Arc instance.
    Phase {
        /// The ops request's name, or the Arc target as `sqlmi/NAME`.
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
    /// Reports a plain line: what the command is doing now.
    fn note(&mut self, line: &str);
}

/// Arc's service-managed credentials generation, current and previous.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationPair {
    /// `spec.update.managedCredentialsGeneration` (missing = 0).
    pub current: i64,
    /// The generation a rollback would go back to, if one is allowed.
    pub previous: Option<i64>,
    /// When the plugin last changed it (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
}

/// What `prev` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrevReport {
    /// The target's namespace.
    pub namespace: String,
    /// e.g. `Postgres`.
    pub target_kind: String,
    /// The API group.
    pub target_group: String,
    /// The target's name.
    pub name: String,
    /// Current first, then previous.
    pub credentials: Vec<CredentialView>,
    /// Arc: the credentials generation, current and previous (KubeDB: none).
    pub generation: Option<GenerationPair>,
    /// Why there is no previous credential, when there is none.
    pub note: Option<String>,
}

/// One step of a rotation (a condition of the ops request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// The condition type, e.g. `UpdateCredential`.
    pub step: String,
    /// True, False, Unknown.
    pub status: String,
    /// Its lastTransitionTime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The condition's message.
    pub message: String,
}

/// The newest RotateAuth request of a KubeDB database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// e.g. `PostgresOpsRequest`.
    pub kind: String,
    /// The ops request's name.
    pub name: String,
    /// Its phase (a missing phase is Pending).
    pub phase: String,
    /// `generated`, or `secret <name>`.
    pub source: String,
    /// creationTimestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Seconds from creation to the last step (finished requests) or to now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its steps, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepView>,
}

/// An Arc instance's state as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArcView {
    /// `spec.update.managedCredentialsGeneration` (missing = 0).
    pub credentials_generation: i64,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `status.state`.
    pub state: String,
    /// `status.message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the controller is still applying a change.
    pub in_flight: bool,
    /// Whether `kubectl rotate rollback` would go ahead now.
    pub rollback_allowed: bool,
    /// Why not, when it would not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_refused: Option<String>,
    /// What the plugin last did (`rotate`/`rollback`) and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_action: Option<String>,
    /// When the plugin last changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
}

/// What `status` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// What the document is (`RotationStatus`) and which database it is about.
    #[serde(flatten)]
    pub subject: Subject,
    /// KubeDB's `status.phase`, or Arc's `status.state`.
    pub phase: String,
    /// KubeDB: the newest RotateAuth, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView>,
    /// Arc: the generations, the state, and whether a rollback is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arc: Option<ArcView>,
    /// The earliest expiry of the certificates in `spec.tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Expiry>,
}

/// One recorded change of an Arc instance, read back from the plugin's Events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationEntry {
    /// `rotate` or `rollback`.
    pub action: String,
    /// The credentials generation before the change, if recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// The credentials generation after the change, if recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// Who (the kubeconfig context's user).
    pub user: String,
    /// When the Event was recorded, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The Event's message.
    pub message: String,
}

/// What `history` returns: requests (KubeDB) or recorded generations (Arc), newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReport {
    /// `RotationHistory`, and which database.
    #[serde(flatten)]
    pub subject: Subject,
    /// KubeDB: every RotateAuth for the database, newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<HistoryRequest>,
    /// Arc: every change the plugin recorded, newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generations: Vec<GenerationEntry>,
    /// Problems that did not stop the command (printed on stderr).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One RotateAuth of `history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRequest {
    /// The ops request as `status` shows it.
    #[serde(flatten)]
    pub request: RequestView,
    /// Who created it, when the plugin recorded an Event for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Whether a database keeps a previous credential to roll back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PrevKept {
    /// Yes: a rollback has something to go back to.
    Yes,
    /// Not now (never rotated, or already rolled back).
    No,
    /// The engine keeps none (Qdrant).
    NotKept,
    /// The auth Secret could not be read.
    Unknown,
}

impl PrevKept {
    /// The table cell.
    pub fn as_str(self) -> &'static str {
        match self {
            PrevKept::Yes => "yes",
            PrevKept::No => "no",
            PrevKept::NotKept => "n/a",
            PrevKept::Unknown => "unknown",
        }
    }
}

/// A rotation still running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    /// The ops request (KubeDB) or `generation N` (Arc).
    pub name: String,
    /// Its phase or state.
    pub phase: String,
}

/// One database of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialRow {
    /// The database's namespace.
    pub namespace: String,
    /// e.g. `Postgres`.
    #[serde(rename = "targetKind")]
    pub kind: &'static str,
    /// The API group.
    #[serde(rename = "targetGroup")]
    pub group: &'static str,
    /// The database's name.
    pub name: String,
    /// KubeDB `status.phase`, Arc `status.state`.
    pub phase: String,
    /// The auth (KubeDB) or admin login (Arc) Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When the credentials last changed, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rotated: Option<String>,
    /// Seconds since then (since creation when never rotated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_age_seconds: Option<i64>,
    /// Whether a previous credential is kept.
    pub prev_kept: PrevKept,
    /// The rotation still running, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
    /// Arc: managedCredentialsGeneration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_generation: Option<i64>,
    /// The earliest certificate expiry of `spec.tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_expiry: Option<Expiry>,
    /// The workloads that read the credential (`-o wide|json|yaml`; absent when they were
    /// not read, or could not be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumers: Option<ConsumerCount>,
    /// When a `kubectl rotate schedule` next rotates it (RFC 3339; `-o wide|json|yaml`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<String>,
    /// KubeDB `spec.authSecret.rotateAfter`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_after: Option<String>,
}

/// One schedule of `schedule list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRow {
    /// The namespace.
    pub namespace: String,
    /// The CronJob.
    pub name: String,
    /// The database's kind, e.g. `Postgres`.
    pub target_kind: String,
    /// The database.
    pub target_name: String,
    /// `--every` as given.
    pub every: String,
    /// `--at` (UTC), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The CronJob's schedule.
    pub schedule: String,
    /// Whether the CronJob is suspended.
    pub suspended: bool,
    /// When it next runs (RFC 3339, UTC); none when suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// When its newest Job started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// How that Job ended: Succeeded, Failed (exit N), Running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
}

/// How many workloads read a database's credential (`list`'s CONSUMERS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ConsumerCount {
    /// Workloads that read its current Secret or one it used before.
    pub workloads: usize,
    /// Of those, the ones that read a Secret it used before (they hold an old password).
    pub stale: usize,
}

impl ConsumerCount {
    /// The CONSUMERS cell: `2`, or `2 (1 stale)`.
    pub fn cell(&self) -> String {
        match self.stale {
            0 => self.workloads.to_string(),
            n => format!("{} ({n} stale)", self.workloads),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A progress sink that keeps what it is told, for tests.
    #[derive(Default)]
    pub struct Recorder {
        /// Every event, in order.
        pub events: Vec<ProgressEvent>,
        /// Every warning.
        pub warnings: Vec<String>,
        /// Every note.
        pub notes: Vec<String>,
    }

    impl Progress for Recorder {
        fn event(&mut self, event: &ProgressEvent) {
            self.events.push(event.clone());
        }
        fn warn(&mut self, message: &str) {
            self.warnings.push(message.to_string());
        }
        fn note(&mut self, line: &str) {
            self.notes.push(line.to_string());
        }
    }
}

/// What `consumers` returns: the database's Secrets (current and before) with their
/// managers, and every workload that reads one of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumersReport {
    /// `Consumers`, and which database.
    #[serde(flatten)]
    pub subject: Subject,
    /// The auth Secret first, then the ones its rotations used before.
    pub secrets: Vec<SecretUse>,
    /// One per workload and Secret it reads.
    pub items: Vec<ConsumerRow>,
    /// Problems that did not stop the command (printed on stderr).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A Secret of `consumers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretUse {
    /// Its name.
    pub name: String,
    /// Whether it is the database's auth Secret now (else it held an older credential).
    pub current: bool,
    /// Who manages it (a controller that would write it back), if anyone.
    pub managers: Vec<String>,
}

/// One workload reading one Secret, as `consumers` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerRow {
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod.
    pub kind: &'static str,
    /// The workload's name.
    pub name: String,
    /// The Secret it reads.
    pub secret: String,
    /// Whether that Secret is not the current one: the workload holds an old password
    /// whatever is restarted, until its reference changes.
    pub stale: bool,
    /// How it reads it: `VAR=key`, `envFrom`, or a mount path.
    pub reads: Vec<String>,
    /// `restart` (env, subPath) or `live` (other volume mounts, within the kubelet's sync).
    pub picks_up: &'static str,
    /// Whether Stakater Reloader restarts it on a change.
    pub reloader: bool,
    /// Ready of wanted, `-` for Jobs and CronJobs.
    pub ready: String,
}

/// One workload of `--restart-consumers`: what was done with it and how its rollout went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartRow {
    /// Its namespace.
    pub namespace: String,
    /// Deployment, StatefulSet, DaemonSet, ...
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// `restarted`, or why not.
    pub action: String,
    /// `rolled out`, `failed: ...`, `timed out: ...`, or `-`.
    pub result: String,
    /// Whether its rollout failed or timed out (exit 11).
    pub failed: bool,
}
