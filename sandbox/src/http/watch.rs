//! Watch streams: newline-delimited JSON events (ADDED, MODIFIED, DELETED, BOOKMARK,
//! ERROR) from a resourceVersion or with synthetic initial events, until the timeout, the
//! client leaves, or the watcher falls too far behind.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde_json::{json, Value};

use super::list::to_table;
use super::{at_version, Body, Query, Reply, Target};
use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::ChangeType;
use crate::Shared;

fn watch_line(ty: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": ty, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// A collection GET with `watch=true`: a 200 whose body streams the events.
pub(super) async fn watch(
    shared: &Arc<Shared>,
    t: &Target<'_>,
    query: &Query,
    table: bool,
) -> Reply {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))?;
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let bookmarks = query.flag("allowWatchBookmarks");
    let initial = query.flag("sendInitialEvents");
    let rv_param = query.get("resourceVersion").unwrap_or("");
    let def = t.def.clone();
    let version = t.version.clone();
    let ns_filter = if def.namespaced {
        t.namespace.clone()
    } else {
        None
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let type_key = def.key();
    let to_wire = {
        let def = def.clone();
        let version = version.clone();
        move |o: &Value| -> Value {
            if table {
                to_table(&def, std::slice::from_ref(o), &Query::default(), 0)
            } else {
                at_version(o.clone(), &def, &version)
            }
        }
    };
    let matches = {
        let ns_filter = ns_filter.clone();
        move |ns: &str, o: &Value| -> bool {
            ns_filter.as_deref().is_none_or(|want| want == ns)
                && labels.matches(o)
                && fields.matches(o)
        }
    };
    // Initial state: "" or "0" (or sendInitialEvents) starts with synthetic ADDED events.
    let synthetic = rv_param.is_empty() || rv_param == "0" || initial;
    let from_rv: u64 = if synthetic {
        shared.store.resource_version()
    } else {
        match rv_param.parse::<u64>() {
            Ok(v) => v,
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid resource version: {rv_param}"
                )))
            }
        }
    };
    let mut first: Vec<Bytes> = vec![];
    let (backlog, mut live) = match shared.store.watch_from(from_rv) {
        Ok(x) => x,
        Err(e) => {
            // A too-old resourceVersion is an ERROR event inside a 200 stream.
            let body = watch_line("ERROR", &e.to_status());
            return Ok(stream_response(vec![body], None));
        }
    };
    if synthetic {
        let (items, _) = shared.store.list(&def, ns_filter.as_deref(), None);
        for o in items
            .iter()
            .filter(|o| matches(o["metadata"]["namespace"].as_str().unwrap_or(""), o))
        {
            first.push(watch_line("ADDED", &to_wire(o)));
        }
        if initial {
            first.push(watch_line(
                "BOOKMARK",
                &json!({"kind": def.kind, "apiVersion": def.group_version(&version), "metadata": {"resourceVersion": from_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}),
            ));
        }
    }
    let mut last_rv = from_rv;
    for c in backlog.iter().filter(|c| c.type_key == type_key) {
        last_rv = c.rv;
        if matches(&c.namespace, &c.object) {
            first.push(watch_line(c.ty.as_str(), &to_wire(&c.object)));
        }
    }
    let kind = def.kind.clone();
    let gv = def.group_version(&version);
    tokio::spawn(async move {
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let deadline = timeout.map(|d| tokio::time::Instant::now() + d);
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep_until(sleep_until) => {
                    if deadline.is_some() { break; }
                }
                _ = tick.tick() => {
                    if bookmarks {
                        let b = watch_line("BOOKMARK", &json!({"kind": kind, "apiVersion": gv, "metadata": {"resourceVersion": last_rv.to_string()}}));
                        if tx.send(b).await.is_err() { return; }
                    } else if tx.is_closed() {
                        return;
                    }
                }
                ev = live.recv() => {
                    match ev {
                        Ok(c) => {
                            if c.rv <= last_rv || c.type_key != type_key { continue; }
                            last_rv = c.rv;
                            if !matches(&c.namespace, &c.object) { continue; }
                            let ty = match c.ty { ChangeType::Added => "ADDED", ChangeType::Modified => "MODIFIED", ChangeType::Deleted => "DELETED" };
                            if tx.send(watch_line(ty, &to_wire(&c.object))).await.is_err() { return; }
                        }
                        // A watcher too slow to keep up is closed; the client re-watches.
                        Err(_) => break,
                    }
                }
            }
        }
    });
    Ok(stream_response(vec![], Some(rx)))
}

/// A watch answered 200 that then says nothing, ever: what a client sees through a proxy
/// that still holds the connection of a server that has gone.
pub(super) fn silent() -> Response<Body> {
    let mut r = stream_response(vec![], None);
    let never = futures::stream::pending::<Result<Frame<Bytes>, Infallible>>();
    *r.body_mut() = BodyExt::boxed(StreamBody::new(never));
    r
}

fn stream_response(
    first: Vec<Bytes>,
    rx: Option<tokio::sync::mpsc::Receiver<Bytes>>,
) -> Response<Body> {
    let head = futures::stream::iter(
        first
            .into_iter()
            .map(|b| Ok::<_, Infallible>(Frame::data(b))),
    );
    let tail = futures::stream::unfold(rx, |rx| async move {
        let mut rx = rx?;
        let b = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(b)), Some(rx)))
    });
    use futures::StreamExt;
    let body = StreamBody::new(head.chain(tail));
    let mut r = Response::new(BodyExt::boxed(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}
