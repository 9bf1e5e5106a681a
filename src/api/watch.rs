//! Following objects with watches that survive what long watches meet (server timeouts,
//! bookmarks, 410 Gone, broken connections), and bounding a wait by `--timeout` and Ctrl-C.

use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};

use super::{is_transient, retry};
use crate::context::Ctx;
use crate::error::{status_code, Error, Result};

/// The longest pause between attempts after transient failures (a server restarting).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Watches `api` from `rv` until `on_event` returns `Some`, surviving what a long watch
/// meets: server-side timeouts (renewed), bookmarks (move `rv` on), 410 Gone (`relist`
/// gives a fresh `(objects, rv)`, fed to `on_event` as MODIFIED), a stream silent for
/// `silence` (reopened from `rv`), and transient failures of the server (connections refused or
/// broken, 5xx), retried with a backoff up to [`MAX_BACKOFF`] for as long as the caller
/// waits (callers bound the wait: [`bounded`]). `what` names the watch in errors. Shared by
/// single waits and bulk feeds.
pub async fn watch_resilient<T, Relist, Fut>(
    api: &Api<DynamicObject>,
    silence: Duration,
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
    let mut backoff = Duration::ZERO;
    let pause = |backoff: &mut Duration| {
        *backoff = (*backoff * 2).clamp(Duration::from_millis(250), MAX_BACKOFF);
        tokio::time::sleep(*backoff)
    };
    loop {
        let mut must_relist = false;
        match api.watch(&params(), &rv).await {
            Ok(stream) => {
                let mut stream = stream.boxed();
                loop {
                    let next = match tokio::time::timeout(silence, stream.try_next()).await {
                        Ok(next) => next,
                        // Silent too long: reopen from where we are (no relist needed).
                        Err(_) => break,
                    };
                    match next {
                        Ok(Some(WatchEvent::Bookmark(b))) => {
                            backoff = Duration::ZERO;
                            rv = b.metadata.resource_version;
                        }
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
                            backoff = Duration::ZERO;
                            if let Some(v) = &obj.metadata.resource_version {
                                rv = v.clone();
                            }
                            if let Some(done) = on_event(ev)? {
                                return Ok(done);
                            }
                        }
                        // The server closed the watch (timeoutSeconds): renew it.
                        Ok(None) => break,
                        Err(e) if is_transient(&e) => {
                            must_relist = true;
                            break;
                        }
                        Err(e) => return Err(Error::api(format!("watch {what}"), e)),
                    }
                }
            }
            Err(e) if status_code(&e) == Some(410) => must_relist = true,
            Err(e) if is_transient(&e) => {
                pause(&mut backoff).await;
                must_relist = true;
            }
            Err(e) => return Err(Error::api(format!("watch {what}"), e)),
        }
        if must_relist {
            // Our resourceVersion is too old or the stream broke: read afresh; while the
            // server is away, keep trying.
            let (items, new_rv) = loop {
                match relist().await {
                    Ok(listed) => break listed,
                    Err(Error::Api { source, .. }) if is_transient(&source) => {
                        pause(&mut backoff).await
                    }
                    Err(e) => return Err(e),
                }
            };
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
    watch_resilient(api, ctx.watch_silence, params, rv, &what, on_event, relist).await
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
