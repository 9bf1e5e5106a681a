//! What the targets of one command share, so that rotating many databases costs a few
//! requests per kind rather than per database: one discovery, one LIST of ops requests
//! per kind and namespace (or per kind across namespaces with `-A`), and one watch per
//! kind and namespace feeding every waiter.
//!
//! NB: a single target uses the same session with no hub: its wait is one watch on its
//! own ops request by name ([`super::follow`]), as before bulk rotation existed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::{Api, ApiResource, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::discovery::Discovery;
use tokio::sync::{watch, OnceCell};

use super::discovery::{discover_plugin_groups, resolve, Wanted};
use super::read::list_all_rv;
use super::watch::watch_resilient;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::MANAGED_BY_SELECTOR;

/// Ops requests of one kind in one scope, as listed once for every target there.
#[derive(Debug)]
pub struct OpsSnapshot {
    /// Every ops request of the kind in the scope (any type, any creator).
    pub items: Vec<DynamicObject>,
    /// The list's resourceVersion, where the shared watch starts.
    pub resource_version: String,
}

type OpsKey = (String, Option<String>);

/// State shared by the targets of one command.
pub struct Session {
    ctx: Ctx,
    discovery: OnceCell<Discovery>,
    ops_lists: Mutex<HashMap<OpsKey, Arc<OnceCell<Arc<OpsSnapshot>>>>>,
    all_namespaces: bool,
    hub: Option<Hub>,
    permissions: super::access::Permissions,
}

impl Session {
    /// A session for one target: no shared watch.
    pub fn single(ctx: &Ctx) -> Session {
        Session {
            ctx: ctx.clone(),
            discovery: OnceCell::new(),
            ops_lists: Mutex::new(HashMap::new()),
            all_namespaces: false,
            hub: None,
            permissions: Default::default(),
        }
    }

    /// A session for many targets: lists and watches per kind across all namespaces when
    /// `all_namespaces`, else per kind and namespace.
    pub fn bulk(ctx: &Ctx, all_namespaces: bool) -> Session {
        Session {
            all_namespaces,
            hub: Some(Hub::default()),
            ..Session::single(ctx)
        }
    }

    /// The connection the session's requests go through.
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Whether waits go through the shared watch.
    pub fn shared_watch(&self) -> bool {
        self.hub.is_some()
    }

    /// Discovery of the groups the plugin uses, run once (see [`discover`]).
    async fn discovery(&self) -> Result<&Discovery> {
        let client = self.ctx.client.clone();
        self.discovery
            .get_or_try_init(|| discover_plugin_groups(client))
            .await
    }

    /// Before the first write of a target: refuses what the server will not allow, and
    /// learns who the server says we are (for the records on what is written). Each
    /// permission is asked once per command.
    pub async fn authorize(&self, needs: &[super::access::Need]) -> Result<()> {
        let (allowed, _) = futures::join!(
            self.permissions.require(&self.ctx, needs),
            super::access::user(&self.ctx)
        );
        allowed
    }

    /// The served version of each wanted resource (the server's preferred one first).
    pub async fn resolve(&self, wanted: &[Wanted]) -> Result<Vec<ApiResource>> {
        let d = self.discovery().await?;
        wanted.iter().map(|w| resolve(d, w)).collect()
    }

    /// The ops requests of `ops_ar` in `ns` (or everywhere, in an all-namespaces session),
    /// listed once and shared.
    pub async fn ops_snapshot(&self, ops_ar: &ApiResource, ns: &str) -> Result<Arc<OpsSnapshot>> {
        let key = self.scope_key(ops_ar, ns);
        let cell = {
            let mut lists = self.ops_lists.lock().unwrap_or_else(|e| e.into_inner());
            lists.entry(key.clone()).or_default().clone()
        };
        let api = self.scoped_api(ops_ar, key.1.as_deref());
        cell.get_or_try_init(|| async {
            let (items, resource_version) =
                list_all_rv(&self.ctx, &api, &ListParams::default()).await?;
            Ok(Arc::new(OpsSnapshot {
                items,
                resource_version,
            }))
        })
        .await
        .cloned()
    }

    fn scope_key(&self, ar: &ApiResource, ns: &str) -> OpsKey {
        let scope = (!self.all_namespaces).then(|| ns.to_string());
        (format!("{}.{}", ar.plural, ar.group), scope)
    }

    fn scoped_api(&self, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
        match ns {
            Some(ns) => Api::namespaced_with(self.ctx.client.clone(), ns, ar),
            None => Api::all_with(self.ctx.client.clone(), ar),
        }
    }

    /// Follows ops request `ns/name` through the shared watch of its kind and scope,
    /// calling `step` on each new version until it returns `Some`.
    pub async fn follow_shared<T>(
        &self,
        ops_ar: &ApiResource,
        created: &DynamicObject,
        mut step: impl FnMut(&DynamicObject) -> Result<Option<T>>,
    ) -> Result<T> {
        let ns = created.metadata.namespace.clone().unwrap_or_default();
        let name = created.metadata.name.clone().unwrap_or_default();
        if let Some(done) = step(created)? {
            return Ok(done);
        }
        let Some(hub) = &self.hub else {
            return Err(Error::Unexpected("no shared watch in this session".into()));
        };
        let snapshot = self.ops_snapshot(ops_ar, &ns).await?;
        let key = self.scope_key(ops_ar, &ns);
        let api = self.scoped_api(ops_ar, key.1.as_deref());
        let feed = hub.feed(key, || {
            Feed::start(self.ctx.clone(), api, snapshot.resource_version.clone())
        });
        let mut rx = feed.subscribe(&ns, &name);
        loop {
            let seen = rx.borrow_and_update().clone();
            match seen {
                Some(Ok(obj)) => {
                    if let Some(done) = step(&obj)? {
                        return Ok(done);
                    }
                }
                Some(Err(message)) => {
                    return Err(Error::Unexpected(format!(
                        "the watch on {} stopped: {message}",
                        ops_ar.plural
                    )))
                }
                None => {}
            }
            if rx.changed().await.is_err() {
                return Err(Error::Unexpected(format!(
                    "the watch on {} ended",
                    ops_ar.plural
                )));
            }
        }
    }
}

/// The shared watches, one per ops kind and scope; they stop when the session ends.
#[derive(Default)]
struct Hub {
    feeds: Mutex<HashMap<OpsKey, Arc<Feed>>>,
}

impl Hub {
    fn feed(&self, key: OpsKey, start: impl FnOnce() -> Arc<Feed>) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.entry(key).or_insert_with(start).clone()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        for f in feeds.values() {
            f.task.abort();
        }
    }
}

/// The latest version of an object, or why the watch gave up.
type Latest = Option<std::result::Result<DynamicObject, String>>;

/// One watch, fanned out to waiters by `(namespace, name)`.
struct Feed {
    latest: Arc<Mutex<FeedState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct FeedState {
    objects: HashMap<(String, String), watch::Sender<Latest>>,
    failed: Option<String>,
}

impl FeedState {
    fn publish(&mut self, obj: DynamicObject) {
        let key = (
            obj.metadata.namespace.clone().unwrap_or_default(),
            obj.metadata.name.clone().unwrap_or_default(),
        );
        match self.objects.get(&key) {
            Some(tx) => {
                tx.send_replace(Some(Ok(obj)));
            }
            None => {
                self.objects.insert(key, watch::Sender::new(Some(Ok(obj))));
            }
        }
    }

    fn fail(&mut self, message: String) {
        for tx in self.objects.values() {
            tx.send_replace(Some(Err(message.clone())));
        }
        self.failed = Some(message);
    }
}

impl Feed {
    fn start(ctx: Ctx, api: Api<DynamicObject>, rv: String) -> Arc<Feed> {
        let latest = Arc::new(Mutex::new(FeedState::default()));
        let state = latest.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = watch_loop(&ctx, &api, rv, &state).await {
                state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .fail(e.to_string());
            }
        });
        Arc::new(Feed { latest, task })
    }

    fn subscribe(&self, ns: &str, name: &str) -> watch::Receiver<Latest> {
        let mut st = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = st.failed.clone() {
            let (_, rx) = watch::channel(Some(Err(why)));
            return rx;
        }
        st.objects
            .entry((ns.to_string(), name.to_string()))
            .or_insert_with(|| watch::Sender::new(None))
            .subscribe()
    }
}

/// Watches the plugin's ops requests of one kind from `rv`, publishing every version;
/// renews on timeouts, relists on 410 Gone and a few broken connections.
async fn watch_loop(
    ctx: &Ctx,
    api: &Api<DynamicObject>,
    rv: String,
    state: &Mutex<FeedState>,
) -> Result<()> {
    let timeout_secs = ctx.watch_timeout_secs();
    let what = api.resource_url().to_string();
    let params = || {
        WatchParams::default()
            .labels(MANAGED_BY_SELECTOR)
            .timeout(timeout_secs)
    };
    let on_event = |ev: WatchEvent<DynamicObject>| {
        if let WatchEvent::Added(obj) | WatchEvent::Modified(obj) = ev {
            state.lock().unwrap_or_else(|e| e.into_inner()).publish(obj);
        }
        Ok(None::<std::convert::Infallible>)
    };
    let relist = || async move {
        let lp = ListParams::default().labels(MANAGED_BY_SELECTOR);
        list_all_rv(ctx, api, &lp).await
    };
    match watch_resilient(api, ctx.watch_silence, params, rv, &what, on_event, relist).await? {}
}
