//! Backends: how a rotation is carried out and read back, one module per operator behind
//! one seam, the [`Backend`] trait. Azure Arc ([`arc`]) bumps a generation on the database
//! object itself; KubeDB ([`kubedb`]) creates ops requests. Verbs ask [`of`] for the backend
//! of a target's engine and never branch on which one they got.
//!
//! Adding a backend: a module here implementing [`Backend`], one line in [`of`], and its
//! engine rows in `engines.rs` (see ARCHITECTURE.md).

pub mod arc;
pub mod kubedb;

/// What `plan` will ask of the API server once it has written something: its backend's
/// [`Rotate::needs`], and with `--restart-consumers` what finding and restarting the
/// consumers takes: list every workload kind, then patch and get the ones it restarts.
/// (The database, its ops requests and its Secrets are read by the change already.)
pub fn needs(plan: &Plan) -> Vec<Need> {
    let mut needs = of(plan.target.engine).needs(plan);
    if plan.restart_consumers {
        let ns = plan.namespace.as_str();
        needs.extend(
            WORKLOAD_RESOURCES
                .iter()
                .map(|(_, group, plural)| Need::new("list", group, plural, ns)),
        );
        for plural in RESTARTABLE {
            needs.push(Need::new("patch", "apps", plural, ns));
            needs.push(Need::new("get", "apps", plural, ns));
        }
    }
    needs
}

/// What a backend's records say of one database, for `list` ([`Inspect::activity`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// The rotation still running, if any.
    pub in_flight: Option<InFlight>,
    /// The Secrets its rotations took a user-supplied credential from, newest first: names
    /// the database used before (a workload reading one of them holds an old password).
    pub used_secrets: Vec<String>,
}

use std::collections::{BTreeMap, HashMap};

use futures::future::BoxFuture;
use kube::api::{ApiResource, DynamicObject};

use crate::api::access::Need;
use crate::api::discovery::Installed;
use crate::api::session::Session;
use crate::audit::AuditRecord;
use crate::context::Ctx;
use crate::engines::{EngineSpec, Mechanism};
use crate::error::Result;
use crate::model::consumers::{RESTARTABLE, WORKLOAD_RESOURCES};
use crate::model::secret::SecretSummary;
use crate::model::DbItem;
use crate::plan::Plan;
use crate::report::{
    CredentialView, GenerationPair, HistoryReport, InFlight, Outcome, PrevKept, Progress,
    StatusReport,
};
use crate::target::Target;

/// The backend that rotates `engine`'s credentials: the one registration point.
pub fn of(engine: &EngineSpec) -> &'static dyn Backend {
    match engine.mechanism {
        Mechanism::Arc => &arc::Arc,
        Mechanism::KubeDb(_) => &kubedb::KubeDb,
    }
}

/// What every verb needs of a backend: the write side ([`Rotate`]) and the read side
/// ([`Inspect`]). Reads that all backends share (discovery, the target, its credential
/// Secret) are done by the verbs through `api/`; a backend gets what was read and adds
/// what only it knows.
pub trait Backend: Rotate + Inspect {}

impl<T: Rotate + Inspect> Backend for T {}

/// The write side of a backend: `auth` and `rollback`.
pub trait Rotate: Sync {
    /// Refuses, before any API call, what this backend cannot do with a plan (a credential
    /// it cannot use, a retry it has no way to make).
    fn check(&self, plan: &Plan) -> Result<()>;

    /// What a plan will ask of the API server once it has written something (its writes,
    /// and the reads that follow them): checked before the first write (pure).
    fn needs(&self, plan: &Plan) -> Vec<Need>;

    /// What a plan reads before its first write, of database `db` as it is now (pure):
    /// with [`Rotate::needs`], all a rotation asks of the API server beyond discovery and
    /// the self reviews every authenticated user may make. What a `schedule`d rotation's
    /// Role grants.
    fn reads(&self, plan: &Plan, db: &DbItem) -> Vec<Need>;

    /// Rotates or rolls back one target: resolve, preflight, write (or preview), and with
    /// `--wait` follow it to the end. `found` is the target when a LIST already returned it.
    fn change<'a>(
        &'a self,
        session: &'a Session,
        plan: &'a Plan,
        found: Option<DynamicObject>,
        progress: &'a mut dyn Progress,
    ) -> BoxFuture<'a, Result<Outcome>>;
}

/// The read side of a backend: `prev`, `status`, `history`, `list` and where `verify`
/// logs in.
pub trait Inspect: Sync {
    /// `prev`: the current and previous credentials in the credential Secret `secret`
    /// (its decoded `data`), and what else tells the previous credential (pure).
    fn credentials(
        &self,
        target: &Target,
        ns: &str,
        db: &DbItem,
        secret: &str,
        data: &BTreeMap<String, String>,
    ) -> Credentials;

    /// `status`: fills in what is in flight or last happened (KubeDB's newest request,
    /// Arc's generations and whether a rollback is allowed).
    fn status<'a>(
        &'a self,
        ctx: &'a Ctx,
        target: &'a Target,
        db: &'a DbItem,
        ops_ar: Option<&'a ApiResource>,
        report: &'a mut StatusReport,
    ) -> BoxFuture<'a, Result<()>>;

    /// `history`: fills in every rotation, newest first, from what the plugin recorded on
    /// the objects (`db` as read) and what its audit Events add while they last (who, and
    /// when to the second).
    fn history<'a>(
        &'a self,
        ctx: &'a Ctx,
        target: &'a Target,
        db: &'a DbItem,
        ops_ar: Option<&'a ApiResource>,
        events: Vec<AuditRecord>,
        report: &'a mut HistoryReport,
    ) -> BoxFuture<'a, Result<()>>;

    /// `list`: what the backend's own records say of databases of one kind in `scope`, by
    /// (namespace, name): the rotation still running, the Secrets rotations took their
    /// credential from. The backend reads what it needs (one LIST at most), without waiting
    /// for the databases' LIST, so both are in flight at once.
    fn activity<'a>(
        &'a self,
        ctx: &'a Ctx,
        kind: &'a Installed,
        scope: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HashMap<(String, String), Activity>>>;

    /// `list`: a database's credential as a row shows it (pure): when it last changed,
    /// whether a previous one is kept, what is in flight.
    fn credential_state(
        &self,
        engine: &EngineSpec,
        db: &DbItem,
        secret: Option<&SecretSummary>,
        in_flight: Option<InFlight>,
    ) -> CredentialState;

    /// `verify`: where the logins of database `ns/db` are checked (pure).
    fn login_place(&self, db: &str, ns: &str) -> LoginPlace;
}

/// Where a database's logins are checked: how to find the pod that answers, the Service
/// whose port leads to it, and the name its server certificate carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginPlace {
    /// Pod label selectors to try in order, each with what a match means (for `-v`).
    pub pod_selectors: Vec<(String, &'static str)>,
    /// The pod to try by name when no selector matches.
    pub fallback_pod: String,
    /// The Service whose port (`primary`, else its first) leads to the database.
    pub service: String,
    /// The DNS name the server's certificate is checked against.
    pub server_name: String,
}

/// What `prev` shows of a database's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Current first, then previous.
    pub credentials: Vec<CredentialView>,
    /// Arc: the credentials generation, current and previous.
    pub generation: Option<GenerationPair>,
    /// Why there is no previous credential, or what the rows mean.
    pub note: Option<String>,
}

/// What `list` shows of a database's credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialState {
    /// When the credentials last changed, RFC 3339.
    pub last_rotated: Option<String>,
    /// Whether a previous credential is kept.
    pub prev_kept: PrevKept,
    /// The rotation still running, if any.
    pub in_flight: Option<InFlight>,
    /// Arc: managedCredentialsGeneration.
    pub credentials_generation: Option<i64>,
}

/// The current time, RFC 3339, for annotations.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
