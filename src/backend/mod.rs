//! Backends: how a rotation is carried out for Azure Arc ([`arc`]) and KubeDB ([`kubedb`]),
//! plus what both share: discovery, safe retries, following an object with a watch, and
//! bounding a wait by `--timeout` and Ctrl-C.
//!
//! NB: dispatch is a `match` on the engine row's [`Backend`](crate::engines::Backend) rather
//! than a trait object: there are two backends, their plans differ, and async trait objects
//! would add boxing for no gain.

pub mod arc;
pub mod kubedb;
pub mod session;

use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::discovery::Discovery;

use crate::cli::{ApplyPolicy, DryRun};
use crate::context::Ctx;
use crate::duration::GoDuration;
use crate::engines::EngineSpec;
use crate::error::{status_code, Error, Result};
use crate::rotation::Action;
use crate::target::Target;

/// The bound on `--wait` when `--timeout` is not given: Arc documents rollbacks of about 30 minutes.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30 * 60);

/// A checked request to rotate or roll back one target (STYLE rule 3: built before any API call).
#[derive(Clone, Debug)]
pub struct Plan {
    /// rotate or rollback.
    pub action: Action,
    /// What to act on.
    pub target: Target,
    /// The namespace.
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
    /// The name given with `--secret`, if any.
    pub fn secret_name(&self) -> Option<&str> {
        match self {
            NewCredential::Secret(s) => Some(s),
            _ => None,
        }
    }

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

/// Annotation keys the plugin writes.
pub mod annotations {
    /// `rotate` or `rollback`: what the plugin last did to the object.
    pub const LAST_ACTION: &str = "rotate.kubectl.dev/last-action";
    /// The generation before the plugin's last change (Arc).
    pub const PREVIOUS_GENERATION: &str = "rotate.kubectl.dev/previous-generation";
    /// The generation the plugin's last change wrote (Arc).
    pub const GENERATION: &str = "rotate.kubectl.dev/generation";
    /// When the plugin's last change was made (RFC 3339).
    pub const CHANGED_AT: &str = "rotate.kubectl.dev/changed-at";
    /// A random id of the write, to tell after a lost response whether it landed.
    pub const REQUEST_ID: &str = "rotate.kubectl.dev/request-id";
}

/// Whether a failed request is worth repeating: throttling, server errors, broken connections.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || (s.code >= 500 && s.code != 501),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs an idempotent request, retrying transient failures a few times with backoff.
/// Only for requests that are safe to repeat: reads, and creates with a deterministic name.
pub async fn retry<T, F, Fut>(mut f: F) -> std::result::Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, kube::Error>>,
{
    const ATTEMPTS: u32 = 4;
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Finds the served version of `engine`'s resource (and of `extra` resources in other groups)
/// by discovery, so clusters serving other versions work. Returns them in argument order.
pub async fn discover(ctx: &Ctx, wanted: &[Wanted]) -> Result<Vec<ApiResource>> {
    let mut groups: Vec<&str> = wanted.iter().map(|w| w.group).collect();
    groups.dedup();
    let discovery = retry(|| Discovery::new(ctx.client.clone()).filter(&groups).run())
        .await
        .map_err(|e| Error::api("discover the cluster's API groups", e))?;
    wanted.iter().map(|w| resolve(&discovery, w)).collect()
}

/// The served version of a wanted resource in a discovery result: the group's preferred
/// version if it serves the resource, else the first other version that does.
pub fn resolve(discovery: &Discovery, w: &Wanted) -> Result<ApiResource> {
    let missing = || Error::OperatorMissing {
        operator: w.operator,
        group: w.group,
        resource: format!("{}.{}", w.plural, w.group),
    };
    let group = discovery.get(w.group).ok_or_else(missing)?;
    // Preferred version first, then the others in the server's order.
    let mut versions: Vec<&str> = group.preferred_version().into_iter().collect();
    versions.extend(
        group
            .versions()
            .filter(|v| Some(*v) != group.preferred_version()),
    );
    versions
        .into_iter()
        .find_map(|v| {
            group
                .versioned_resources(v)
                .into_iter()
                .find(|(ar, _)| ar.plural == w.plural)
        })
        .map(|(ar, _)| ar)
        .ok_or_else(missing)
}

/// A resource to find by discovery.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// Its API group.
    pub group: &'static str,
    /// Its plural.
    pub plural: &'static str,
    /// Who installs it, for the "not installed" message.
    pub operator: &'static str,
}

impl Wanted {
    /// The engine's own resource.
    pub fn engine(e: &EngineSpec) -> Wanted {
        Wanted {
            group: e.group,
            plural: e.plural,
            operator: e.operator(),
        }
    }

    /// The engine's resource and, for KubeDB, its ops-request resource after it.
    pub fn engine_and_ops(e: &EngineSpec) -> Vec<Wanted> {
        let mut wanted = vec![Wanted::engine(e)];
        if let Some(ops) = e.ops() {
            wanted.push(Wanted {
                group: crate::engines::KUBEDB_OPS_GROUP,
                plural: ops.plural,
                operator: "the KubeDB ops-manager",
            });
        }
        wanted
    }
}

/// Reads the target; a 404 becomes a [`Error::NotFound`] that says where we looked.
pub async fn get_target(api: &Api<DynamicObject>, plan: &Plan) -> Result<DynamicObject> {
    let name = &plan.target.name;
    match retry(|| api.get_opt(name)).await {
        Ok(Some(obj)) => Ok(obj),
        Ok(None) => Err(Error::NotFound {
            what: format!(
                "{} {:?} in namespace {:?}",
                plan.target.engine.singular(),
                name,
                plan.namespace
            ),
            hint: Some(format!(
                "list them with `kubectl get {} -n {}`",
                plan.target.engine.short(),
                plan.namespace
            )),
        }),
        Err(e) => Err(Error::api(
            format!(
                "get {} {}/{}",
                plan.target.engine.resource(),
                plan.namespace,
                name
            ),
            e,
        )),
    }
}

/// Lists every object of a resource in the namespace, page by page.
pub async fn list_all(api: &Api<DynamicObject>, what: &str) -> Result<Vec<DynamicObject>> {
    Ok(list_all_rv(api, &ListParams::default(), what).await?.0)
}

/// Lists every object matching `lp`, page by page, with the list's resourceVersion (where
/// a watch that must miss nothing starts).
pub async fn list_all_rv(
    api: &Api<DynamicObject>,
    lp: &ListParams,
    what: &str,
) -> Result<(Vec<DynamicObject>, String)> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = lp.clone().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = retry(|| api.list(&lp))
            .await
            .map_err(|e| Error::api(format!("list {what}"), e))?;
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok((items, page.metadata.resource_version.unwrap_or_default())),
        }
    }
}

/// Watches `api` from `rv` until `on_event` returns `Some`, surviving what a long watch
/// meets: server-side timeouts (renewed), bookmarks (move `rv` on), 410 Gone and up to five
/// broken connections in a row (`relist` gives a fresh `(objects, rv)`, fed to `on_event`
/// as MODIFIED). `what` names the watch in errors. Shared by single waits and bulk feeds.
pub async fn watch_resilient<T, Relist, Fut>(
    api: &Api<DynamicObject>,
    params: impl Fn() -> WatchParams,
    mut rv: String,
    what: &str,
    mut on_event: impl FnMut(WatchEvent<DynamicObject>) -> Result<Option<T>>,
    mut relist: Relist,
) -> Result<T>
where
    // NB: a plain closure returning a future, not an async closure: the bulk feed runs this
    // in a spawned task, and async closures' futures are not provably Send there yet.
    Relist: FnMut() -> Fut,
    Fut: Future<Output = Result<(Vec<DynamicObject>, String)>>,
{
    let mut failures = 0u32;
    loop {
        let mut must_relist = false;
        match api.watch(&params(), &rv).await {
            Ok(stream) => {
                let mut stream = stream.boxed();
                loop {
                    match stream.try_next().await {
                        Ok(Some(WatchEvent::Bookmark(b))) => rv = b.metadata.resource_version,
                        Ok(Some(WatchEvent::Error(status))) if status.code == 410 => {
                            must_relist = true;
                            break;
                        }
                        Ok(Some(WatchEvent::Error(status))) => {
                            return Err(Error::api(
                                format!("watch {what}"),
                                kube::Error::Api(status),
                            ));
                        }
                        Ok(Some(ev)) => {
                            let obj = match &ev {
                                WatchEvent::Added(o)
                                | WatchEvent::Modified(o)
                                | WatchEvent::Deleted(o) => o,
                                _ => continue,
                            };
                            if !matches!(ev, WatchEvent::Deleted(_)) {
                                failures = 0;
                            }
                            if let Some(v) = &obj.metadata.resource_version {
                                rv = v.clone();
                            }
                            if let Some(done) = on_event(ev)? {
                                return Ok(done);
                            }
                        }
                        // The server closed the watch (timeoutSeconds): renew it.
                        Ok(None) => break,
                        Err(e) if is_transient(&e) && failures < 5 => {
                            failures += 1;
                            must_relist = true;
                            break;
                        }
                        Err(e) => return Err(Error::api(format!("watch {what}"), e)),
                    }
                }
            }
            Err(e) if status_code(&e) == Some(410) => must_relist = true,
            Err(e) if is_transient(&e) && failures < 5 => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(250 * u64::from(failures))).await;
                must_relist = true;
            }
            Err(e) => return Err(Error::api(format!("watch {what}"), e)),
        }
        if must_relist {
            // Our resourceVersion is too old or the stream broke: read afresh.
            let (items, new_rv) = relist().await?;
            rv = new_rv;
            for obj in items {
                if let Some(done) = on_event(WatchEvent::Modified(obj))? {
                    return Ok(done);
                }
            }
        }
    }
}

/// Follows one object by name with a watch, from `start` (already evaluated by the caller
/// or not), calling `step` on every new version until it returns `Some`. Survives watch
/// timeouts, 410 Gone (re-read and re-watch) and a few broken connections.
pub async fn follow<T>(
    ctx: &Ctx,
    api: &Api<DynamicObject>,
    start: &DynamicObject,
    mut step: impl FnMut(&DynamicObject) -> Result<Option<T>>,
) -> Result<T> {
    let name = start.metadata.name.clone().unwrap_or_default();
    let what = format!("{}/{}", api.resource_url(), name);
    if let Some(done) = step(start)? {
        return Ok(done);
    }
    let rv = start.metadata.resource_version.clone().unwrap_or_default();
    let params = || {
        WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(ctx.watch_timeout_secs())
    };
    let on_event = |ev: WatchEvent<DynamicObject>| match ev {
        // NB: filter by name here too, in case the server ignores fieldSelector.
        WatchEvent::Added(obj) | WatchEvent::Modified(obj)
            if obj.metadata.name.as_deref() == Some(name.as_str()) =>
        {
            step(&obj)
        }
        WatchEvent::Deleted(obj) if obj.metadata.name.as_deref() == Some(name.as_str()) => Err(
            Error::Unexpected(format!("{what} was deleted while waiting for it")),
        ),
        _ => Ok(None),
    };
    let (name_ref, what_ref) = (name.as_str(), what.as_str());
    let relist = || async move {
        let obj = retry(|| api.get(name_ref))
            .await
            .map_err(|e| Error::api(format!("get {what_ref}"), e))?;
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        Ok((vec![obj], rv))
    };
    watch_resilient(api, params, rv, &what, on_event, relist).await
}

/// Bounds a wait by `limit` and Ctrl-C. On either, the rotation goes on on the server and the
/// error says how to follow it.
pub async fn bounded<T>(
    fut: impl Future<Output = Result<T>>,
    limit: Duration,
    waiting_for: String,
    follow_cmd: String,
) -> Result<T> {
    // NB: `biased` polls the Ctrl-C branch first, so the handler is installed before the
    // first progress line tells anyone we are waiting.
    tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted { follow: follow_cmd }),
        r = tokio::time::timeout(limit, fut) => match r {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout { after: limit, waiting_for, follow: follow_cmd }),
        },
    }
}

/// A string field at a JSON path, e.g. `str_at(&obj.data, &["status", "phase"])`.
pub fn str_at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// An integer field at a JSON path.
pub fn i64_at(v: &serde_json::Value, path: &[&str]) -> Option<i64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_i64()
}

/// The current time, RFC 3339, for annotations.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A short random hex id (OS CSPRNG).
pub fn random_id() -> String {
    use rand::TryRng;
    let mut bytes = [0u8; 8];
    // NB: if the OS RNG fails we still need an id, and it need not be secret: fall back to time.
    if rand::rngs::SysRng.try_fill_bytes(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
