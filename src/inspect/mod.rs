//! Inspection: what the `prev`, `status`, `history` and `list` verbs return, and what they
//! share: minimal list decoding, installed-kind discovery, ages, and the dispatch from the
//! command line. Nothing here writes to the server; nothing here holds a password except
//! [`CredentialView::password`], a [`Password`](crate::creds::Password) that prints masked.

pub mod objects;
pub mod secrets;

use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, ListParams};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backend::retry;
use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::creds::Password;
use crate::engines::{EngineSpec, ENGINES, KUBEDB_OPS_GROUP};
use crate::error::{Error, Result};
use crate::tls::Expiry;

/// `apiVersion` of everything the inspection verbs print as JSON or YAML.
pub const API_VERSION: &str = "rotate.kubectl.dev/v1alpha1";

/// Page size of every LIST: memory stays flat however big the cluster is.
pub const PAGE: u32 = 500;

/// Runs an inspection verb: check the arguments, connect, read, print.
pub async fn run(
    cli: &Cli,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<()> {
    use crate::cmd::{history, list, prev, status};
    use crate::output::inspect as print;
    let format = cli.output.output;
    match &cli.command {
        Command::Prev(a) => {
            let target = prev::plan(a)?;
            let ctx = Ctx::connect(&cli.kube).await?;
            let report = prev::run(&ctx, &target).await?;
            print::prev(&report, format, a.reveal, out, err)?;
        }
        Command::Status(a) => {
            let target = status::plan(a)?;
            let ctx = Ctx::connect(&cli.kube).await?;
            let report = status::run(&ctx, &target).await?;
            print::status(&report, format, out)?;
        }
        Command::History(a) => {
            let target = history::plan(a)?;
            let ctx = Ctx::connect(&cli.kube).await?;
            let report = history::run(&ctx, &target).await?;
            print::history(&report, format, out, err)?;
        }
        Command::List(a) => {
            let plan = list::plan(a)?;
            let ctx = Ctx::connect(&cli.kube).await?;
            let rows = list::run(&ctx, &plan).await?;
            print::list(&rows, &plan, format, out, err)?;
            out.flush()?;
            return list::verdict(&rows, &plan);
        }
        Command::Auth(_) | Command::Rollback(_) | Command::Verify(_) => {
            return Err(Error::Unexpected(
                "auth and rollback are not inspection verbs".into(),
            ))
        }
    }
    out.flush()?;
    Ok(())
}

/// `--older-than`: a Go duration (`36h`) or whole days or weeks (`90d`, `2w`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OlderThan {
    text: String,
    value: Duration,
}

impl OlderThan {
    /// The threshold.
    pub fn get(&self) -> Duration {
        self.value
    }
}

impl std::fmt::Display for OlderThan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for OlderThan {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let text = s.trim().to_string();
        let days = |n: &str, per: u64| {
            n.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| Duration::from_secs(n * per * 86_400))
        };
        let value = if let Some(n) = text.strip_suffix('d') {
            days(n, 1)
        } else if let Some(n) = text.strip_suffix('w') {
            days(n, 7)
        } else {
            text.parse::<crate::duration::GoDuration>()
                .ok()
                .map(|d| d.get())
                .filter(|d| !d.is_zero())
        };
        value
            .map(|value| OlderThan {
                text: text.clone(),
                value,
            })
            .ok_or_else(|| {
                format!("invalid age {s:?}: use days, weeks or a duration, e.g. 90d, 2w, 36h")
            })
    }
}

/// Parses an RFC 3339 timestamp as the API writes them.
pub fn parse_ts(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Seconds from `ts` to `now` (never negative), if `ts` parses.
pub fn age_secs(ts: &str, now: jiff::Timestamp) -> Option<i64> {
    parse_ts(ts).map(|t| (now.as_second() - t.as_second()).max(0))
}

/// Kubernetes' HumanDuration, as kubectl's AGE column prints it: `45s`, `3m12s`, `5h`,
/// `3d4h`, `90d`, `2y`.
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{d}d"),
            r => format!("{d}d{r}h"),
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

/// One LIST page, decoded into only the fields `T` keeps.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    #[serde(default)]
    metadata: PageMeta,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

/// LISTs `path` (a collection URL, e.g. `/apis/kubedb.com/v1/postgreses`) page by page
/// ([`PAGE`] items each), handing each item to `keep`. Each page is decoded into `T`, a
/// struct of the few fields we need, and dropped before the next one is asked for.
pub async fn list_pages<T: DeserializeOwned>(
    ctx: &Ctx,
    path: &str,
    selector: Option<&str>,
    fields: Option<&str>,
    mut keep: impl FnMut(T),
) -> Result<()> {
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page: Page<T> = retry(|| async {
            let req = kube::core::Request::new(path)
                .list(&lp)
                .map_err(kube::Error::BuildRequest)?;
            ctx.client.request::<Page<T>>(req).await
        })
        .await
        .map_err(|e| Error::api(format!("list {path}"), e))?;
        page.items.into_iter().for_each(&mut keep);
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(()),
        }
    }
}

/// The collection URL of a resource, in one namespace or (None) in all.
pub fn collection_url(ar: &ApiResource, namespace: Option<&str>) -> String {
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    }
}

/// An engine whose CRD the cluster serves, with its ops request resource if that is served too.
#[derive(Clone, Debug)]
pub struct Installed {
    /// The engine row.
    pub engine: &'static EngineSpec,
    /// The database resource at its preferred served version.
    pub ar: ApiResource,
    /// The ops request resource (KubeDB), if served.
    pub ops_ar: Option<ApiResource>,
}

/// Every engine the cluster serves, found with one aggregated discovery request (falling
/// back to per-group discovery on servers without it). Kinds whose CRD is absent are left out.
pub async fn installed(ctx: &Ctx) -> Result<Vec<Installed>> {
    let discovery = crate::backend::session::discover(ctx.client.clone()).await?;
    let find = |group: &str, plural: &str| -> Option<ApiResource> {
        let g = discovery.get(group)?;
        let mut versions: Vec<&str> = g.preferred_version().into_iter().collect();
        versions.extend(g.versions().filter(|v| Some(*v) != g.preferred_version()));
        versions.into_iter().find_map(|v| {
            g.versioned_resources(v)
                .into_iter()
                .find(|(ar, _)| ar.plural == plural)
                .map(|(ar, _)| ar)
        })
    };
    Ok(ENGINES
        .iter()
        .filter_map(|engine| {
            let ar = find(engine.group, engine.plural)?;
            let ops_ar = engine
                .ops()
                .and_then(|ops| find(KUBEDB_OPS_GROUP, ops.plural));
            Some(Installed { engine, ar, ops_ar })
        })
        .collect())
}

/// Runs `f` on every item, at most `limit` at a time, keeping the results in input order.
pub async fn concurrently<I, T, F, Fut>(items: Vec<I>, limit: usize, f: F) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    futures::stream::iter(items.into_iter().map(f))
        .buffered(limit)
        .collect()
        .await
}

/// Reads one target by name: the object itself (for the Arc backend's rules and for
/// Events) and its minimal view. A 404 says where we looked and how to list them.
pub async fn get_target(
    ctx: &Ctx,
    target: &crate::target::Target,
    ar: &ApiResource,
) -> Result<(kube::api::DynamicObject, objects::DbItem)> {
    let ns = ctx.namespace.as_str();
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(ctx.client.clone(), ns, ar);
    let name = target.name.as_str();
    let obj = match retry(|| api.get_opt(name)).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Err(Error::NotFound {
                what: format!("{} {name:?} in namespace {ns:?}", target.engine.singular()),
                hint: Some(format!(
                    "list them with `kubectl rotate list -n {ns}` or `kubectl get {} -n {ns}`",
                    target.engine.short()
                )),
            })
        }
        Err(e) => {
            return Err(Error::api(
                format!("get {} {ns}/{name}", target.engine.resource()),
                e,
            ))
        }
    };
    let item = serde_json::to_value(&obj)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::Unexpected(format!("{} {ns}/{name}: {e}", target.engine.kind)))?;
    Ok((obj, item))
}

/// Reads one Secret without its values (key names and certificate expiry only); `None`
/// when it does not exist.
pub async fn get_secret_summary(
    ctx: &Ctx,
    ns: &str,
    name: &str,
) -> Result<Option<secrets::SecretSummary>> {
    let url = format!("/api/v1/namespaces/{ns}/secrets");
    let got = retry(|| async {
        let req = kube::core::Request::new(&url)
            .get(name, &kube::api::GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        ctx.client.request::<secrets::SecretSummary>(req).await
    })
    .await;
    match got {
        Ok(s) => Ok(Some(s)),
        Err(e) if crate::error::status_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(Error::api(format!("get secret {ns}/{name}"), e)),
    }
}

/// The earliest certificate expiry among the named Secrets that exist and hold one.
pub fn earliest_expiry<'a>(
    names: &[String],
    lookup: impl Fn(&str) -> Option<&'a secrets::SecretSummary>,
    now: jiff::Timestamp,
) -> Option<Expiry> {
    names
        .iter()
        .filter_map(|n| Some((n, lookup(n)?.data.cert_not_after?)))
        .min_by_key(|(_, t)| *t)
        .map(|(n, t)| Expiry::at(n, t, now))
}

// ---------------------------------------------------------------------------------------
// What the verbs return.
// ---------------------------------------------------------------------------------------

/// `current` or `previous`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// In use now.
    Current,
    /// Kept for rollback.
    Previous,
}

impl Role {
    /// `current` / `previous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Current => "current",
            Role::Previous => "previous",
        }
    }
}

/// One credential of `prev`: never printed unmasked except with `--reveal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialView {
    /// current or previous.
    pub role: Role,
    /// The username, if the layout has one.
    pub username: Option<String>,
    /// The password (or API key); prints as `********`.
    pub password: Option<Password>,
    /// The Secret it is kept in.
    pub secret: String,
    /// The Secret keys it is read from.
    pub keys: Vec<String>,
    /// When it was last rotated: in (current) or out (previous), RFC 3339.
    pub last_rotated: Option<String>,
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
    /// Arc only.
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
    /// Its message.
    pub message: String,
}

/// The newest RotateAuth request of a KubeDB database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// e.g. `PostgresOpsRequest`.
    pub kind: String,
    /// Its name.
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
    /// Always [`API_VERSION`].
    pub api_version: &'static str,
    /// Always `RotationStatus`.
    pub kind: &'static str,
    /// The target's namespace.
    pub namespace: String,
    /// e.g. `Postgres`.
    pub target_kind: String,
    /// The API group.
    pub target_group: String,
    /// The target's name.
    pub name: String,
    /// KubeDB's `status.phase`, or Arc's `status.state`.
    pub phase: String,
    /// KubeDB: the newest RotateAuth, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView>,
    /// Arc.
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
    /// Generation before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Generation after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// Who (the kubeconfig context's user).
    pub user: String,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The Event's message.
    pub message: String,
}

/// What `history` returns: requests (KubeDB) or recorded generations (Arc), newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReport {
    /// Always [`API_VERSION`].
    pub api_version: &'static str,
    /// Always `RotationHistory`.
    pub kind: &'static str,
    /// The target's namespace.
    pub namespace: String,
    /// e.g. `Postgres`.
    pub target_kind: String,
    /// The target's name.
    pub name: String,
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
    /// The request.
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
    /// Namespace.
    pub namespace: String,
    /// e.g. `Postgres`.
    #[serde(rename = "targetKind")]
    pub kind: &'static str,
    /// The API group.
    #[serde(rename = "targetGroup")]
    pub group: &'static str,
    /// Name.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_than_takes_days_weeks_and_go_durations() {
        let d = |s: &str| s.parse::<OlderThan>().unwrap().get().as_secs();
        assert_eq!(d("90d"), 90 * 86_400);
        assert_eq!(d("2w"), 14 * 86_400);
        assert_eq!(d("36h"), 36 * 3600);
        assert_eq!("90d".parse::<OlderThan>().unwrap().to_string(), "90d");
        for bad in ["", "0d", "d", "-3d", "soon", "0"] {
            assert!(bad.parse::<OlderThan>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ages_read_like_kubectl_including_days_and_years() {
        assert_eq!(human_age(45), "45s");
        assert_eq!(human_age(192), "3m12s");
        assert_eq!(human_age(5 * 3600), "5h");
        assert_eq!(human_age(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(human_age(90 * 86_400), "90d");
        assert_eq!(human_age(800 * 86_400), "2y");
        assert_eq!(human_age(-5), "0s");
    }

    #[test]
    fn collection_urls_follow_the_api_layout() {
        let ar = ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("kubedb.com", "v1", "Postgres"),
            "postgreses",
        );
        assert_eq!(collection_url(&ar, None), "/apis/kubedb.com/v1/postgreses");
        assert_eq!(
            collection_url(&ar, Some("demo")),
            "/apis/kubedb.com/v1/namespaces/demo/postgreses"
        );
        let secrets = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
        assert_eq!(
            collection_url(&secrets, Some("demo")),
            "/api/v1/namespaces/demo/secrets"
        );
    }
}
