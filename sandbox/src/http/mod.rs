//! The HTTP side of the API server: TLS connections, admission of each request by
//! `crate::auth` (authentication, impersonation, authorization) and its entry in the
//! request log, fault injection, the `/sandbox/*` controls, the router, request parsing
//! and the response helpers every handler uses. What each
//! route answers lives in the submodules: `discovery` (version, API groups and resources,
//! OpenAPI), `crud` (get, create, update, patch, delete, status subresource), `list`
//! (selectors, paging, server-side Tables) and `watch` (event streams).

mod crud;
mod discovery;
mod list;
mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

use crate::auth;
use crate::error::ApiError;
use crate::faults::{Action, RequestRecord};
use crate::registry::{Registry, ResourceDef};
use crate::store::Part;
use crate::Shared;

/// The response body type: whole JSON documents or a stream of watch events.
pub type Body = BoxBody<Bytes, Infallible>;

/// What a route handler answers: a response, or an error that `handle` sends as a `Status`.
type Reply = Result<Response<Body>, ApiError>;

/// Accept connections until `stop` resolves; then drop every connection (watches too).
pub async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            // A restart: every open connection goes, watches included.
            _ = shared.faults.restarted.notified() => conns.abort_all(),
            acc = listener.accept() => {
                let Ok((tcp, _)) = acc else { continue };
                // NB: during a restart the connection is closed before TLS: the client
                // sees the connection fail, as against a server that is not there.
                if shared.faults.refusing() {
                    drop(tcp);
                    continue;
                }
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                conns.spawn(async move {
                    // The latency model: a new connection costs the TCP handshake's round
                    // trip and TLS 1.3's.
                    let setup = shared.latency.round_trip * 2;
                    if !setup.is_zero() {
                        tokio::time::sleep(setup).await;
                    }
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { handle(shared, req).await.ok_or(LostResponse) }
                    });
                    let io = TokioIo::new(tls);
                    let _ = if h2 {
                        http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, svc)
                            .await
                    } else {
                        http1::Builder::new()
                            .serve_connection(io, svc)
                            .with_upgrades()
                            .await
                    };
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    json_response_ct(code, body, "application/json")
}

fn json_response_ct(code: u16, body: &Value, ct: &str) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/json")),
    );
    r.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

/// A plain-text answer, as Go's http.Error writes one (kube-apiserver's InternalError).
fn text_response(code: u16, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))).boxed());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// Parsed query parameters.
#[derive(Default, Debug)]
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query {
            pairs: form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        }
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
    fn dry_run(&self) -> bool {
        self.pairs.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
}

/// A response the fault hooks keep from the client: hyper closes the connection instead.
#[derive(Debug)]
struct LostResponse;

impl std::fmt::Display for LostResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the response was lost (fault injected)")
    }
}

impl std::error::Error for LostResponse {}

/// Serves one request through the latency model ([`crate::Latency`]: half the round trip
/// before, half after, plus the cost of a LIST's bytes) and enters it in the request
/// timeline (its depth: see [`crate::faults::Faults::timeline`]); `None` when a fault says
/// its answer is lost (the connection closes).
async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Option<Response<Body>> {
    if req.uri().path().starts_with("/sandbox/") {
        return answer(shared, req).await;
    }
    let watching = is_watch(&req);
    let read = req.method() == Method::GET && !watching;
    let method = if watching {
        "WATCH"
    } else {
        req.method().as_str()
    }
    .to_string();
    let ticket = shared.faults.begin(&method, req.uri().path());
    let latency = shared.latency;
    let half = latency.round_trip / 2;
    if !half.is_zero() {
        tokio::time::sleep(half).await;
    }
    let resp = answer(shared.clone(), req).await;
    let mut after = half;
    if let Some(n) = resp
        .as_ref()
        .and_then(|r| hyper::body::Body::size_hint(r.body()).exact())
    {
        if read {
            after += latency.per_kib.mul_f64(n as f64 / 1024.0);
        }
    }
    if !after.is_zero() {
        tokio::time::sleep(after).await;
    }
    shared.faults.end(ticket);
    resp
}

fn is_watch(req: &Request<Incoming>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// Serves one request; `None` when a fault says its answer is lost (the connection closes).
async fn answer(shared: Arc<Shared>, req: Request<Incoming>) -> Option<Response<Body>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // NB: watches are counted as method WATCH, so request budgets can leave them out.
    let watching = is_watch(&req);
    shared
        .faults
        .record(if watching { "WATCH" } else { method.as_str() }, &path);
    if path.starts_with("/sandbox/") {
        return Some(match sandbox_control(&shared, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        });
    }
    let admission = auth::admit(
        &shared,
        method.as_str(),
        &path,
        req.uri().query(),
        req.headers(),
    );
    shared.faults.log_request(RequestRecord {
        method: if watching { "WATCH" } else { method.as_str() }.to_string(),
        path: path.clone(),
        query: req.uri().query().unwrap_or("").to_string(),
        user: admission.requester.as_ref().map(|u| u.name.clone()),
        groups: admission
            .requester
            .as_ref()
            .map(|u| u.groups.clone())
            .unwrap_or_default(),
        impersonation: admission.impersonation.clone(),
        acting_as: admission.user.as_ref().map(|u| u.name.clone()),
        attributes: admission.request.clone(),
        allowed: admission.outcome.is_ok(),
    });
    let user = match (admission.outcome, admission.user) {
        (Ok(()), Some(user)) => user,
        (Err(auth::Refused::Internal(text)), _) => return Some(text_response(500, &text)),
        (Err(auth::Refused::Status(e)), _) => return Some(error_response(&e)),
        (Ok(()), None) => return Some(error_response(&ApiError::internal("no user"))),
    };
    let action = shared.faults.check(method.as_str(), &path, watching);
    let served = move |shared: Arc<Shared>, req| async move {
        match route(&shared, &user, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    };
    match action {
        Action::Pass => Some(served(shared, req).await),
        Action::Delay(d) => {
            tokio::time::sleep(d).await;
            Some(served(shared, req).await)
        }
        Action::Fail(code) => Some(error_response(&ApiError::new(
            code,
            reason_for(code),
            format!("injected fault: {} {}", method, path),
        ))),
        Action::LoseResponse => {
            let _ = served(shared, req).await;
            None
        }
        Action::Silence => Some(watch::silent()),
        // NB: in a task of its own, so the write happens even when the client has gone and
        // hyper drops this future.
        Action::Hold(d) => {
            let held = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                served(shared, req).await
            });
            held.await.ok()
        }
    }
}

fn accepts_aggregated(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=APIGroupDiscoveryList"))
}

fn accepts_table(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

async fn read_body(req: Request<Incoming>) -> Result<(Option<String>, Bytes), ApiError> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    Ok((ct, body))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    // kubectl and others may send YAML (e.g. server-side apply).
    serde_yaml::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

/// The `/sandbox/*` controls, for the admin's token only (anyone else is told there is no
/// such path; anonymous, that it may not): `POST /sandbox/faults` (see `crate::faults`),
/// `GET /sandbox/requests` (counts, timeline, request log), `POST /sandbox/users` with
/// `{"name": "alice", "groups": ["team-a"], "uid": "..."}` (answers `{"token": ...}`).
async fn sandbox_control(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let requester = auth::authn::authenticate(shared, authorization)?;
    let path = req.uri().path().trim_end_matches('/').to_string();
    if !requester.is_master() {
        if requester.name == auth::ANONYMOUS {
            let info = auth::RequestInfo::from_request(req.method().as_str(), &path, None);
            return Err(auth::Attributes {
                user: requester,
                request: info,
            }
            .forbidden(""));
        }
        return Err(ApiError::path_not_found());
    }
    match (req.method().clone(), path.as_str()) {
        (Method::POST, "/sandbox/faults") => {
            let (_, body) = read_body(req).await?;
            let cmd = parse_json(&body)?;
            shared
                .faults
                .apply_json(&cmd)
                .map_err(ApiError::bad_request)?;
            Ok(json_response(200, &json!({"ok": true})))
        }
        (Method::GET, "/sandbox/requests") => Ok(json_response(200, &shared.faults.counts_json())),
        (Method::POST, "/sandbox/users") => {
            let (_, body) = read_body(req).await?;
            let spec = parse_json(&body)?;
            let name = spec["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::bad_request("name is required"))?;
            let user = auth::UserInfo {
                name: name.to_string(),
                uid: spec["uid"].as_str().unwrap_or("").to_string(),
                groups: auth::strings(&spec["groups"]),
                ..Default::default()
            };
            let token = shared.users.add(user);
            Ok(json_response(201, &json!({"name": name, "token": token})))
        }
        _ => Err(ApiError::path_not_found()),
    }
}

/// Route an admitted request by its path: health, discovery, or a resource under
/// `/api/v1` or `/apis/{group}/{version}`.
async fn route(shared: &Arc<Shared>, user: &auth::UserInfo, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = Query::parse(req.uri().query());
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let reg = &shared.registry;
    match segs.as_slice() {
        ["version"] => Ok(json_response(200, &discovery::version_json())),
        ["healthz"] | ["readyz"] | ["livez"] => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(r)
        }
        ["openapi", "v3"] => Ok(discovery::openapi_index(reg)),
        ["openapi", "v3", "api", "v1"] => discovery::openapi_document(reg, "", "v1"),
        ["openapi", "v3", "apis", group, version] => {
            discovery::openapi_document(reg, group, version)
        }
        ["api"] => Ok(discovery::api_versions(reg, accepts_aggregated(&req))),
        ["apis"] => Ok(discovery::api_groups(reg, accepts_aggregated(&req))),
        ["api", "v1"] => Ok(json_response(200, &discovery::resource_list(reg, "", "v1"))),
        ["apis", group] => discovery::api_group(reg, group),
        ["apis", group, version] => discovery::api_group_version(reg, group, version),
        ["api", "v1", rest @ ..] => resource(shared, user, req, query, "", "v1", rest).await,
        ["apis", group, version, rest @ ..] => {
            let (g, v) = (group.to_string(), version.to_string());
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            resource(shared, user, req, query, &g, &v, &rest).await
        }
        _ => Err(ApiError::path_not_found()),
    }
}

/// A request for a resource, after the group/version prefix.
struct Target<'a> {
    def: &'a ResourceDef,
    version: String,
    /// None = all namespaces (collection) or cluster-scoped.
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target<'a>(
    reg: &'a Registry,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target<'a>, ApiError> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if reg
                .find(group, version, plural)
                .is_some_and(|d| d.namespaced) =>
        {
            let mut r = vec![*plural];
            r.extend_from_slice(tail);
            (Some(ns.to_string()), r)
        }
        _ => (None, rest.to_vec()),
    };
    let plural = rest.first().ok_or_else(ApiError::path_not_found)?;
    let def = reg
        .find(group, version, plural)
        .ok_or_else(ApiError::path_not_found)?;
    if rest.len() > 3 {
        return Err(ApiError::path_not_found());
    }
    Ok(Target {
        def,
        version: version.to_string(),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    })
}

/// What the object verbs in `crud` are called with: the server state, the parsed target,
/// the namespace acted in ("" for cluster-scoped kinds) and the query parameters.
struct Call<'a> {
    shared: &'a Arc<Shared>,
    t: &'a Target<'a>,
    ns: &'a str,
    query: &'a Query,
}

/// Set an object's apiVersion to the version it is read at (all served versions share
/// one schema here, so conversion is a relabel).
fn at_version(mut obj: Value, def: &ResourceDef, version: &str) -> Value {
    obj["apiVersion"] = json!(def.group_version(version));
    obj
}

/// A resource request (already authorized): parse the target, hand `pods/portforward` off,
/// `serviceaccounts/token` and reviews to `crud`, and dispatch the verb to `list`, `watch`
/// or `crud`.
async fn resource(
    shared: &Arc<Shared>,
    user: &auth::UserInfo,
    req: Request<Incoming>,
    query: Query,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Reply {
    let reg = &shared.registry;
    let t = parse_target(reg, group, version, rest)?;
    let method = req.method().clone();
    let ns = if t.def.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    if t.def.namespaced && t.name.is_some() && t.namespace.is_none() {
        return Err(ApiError::path_not_found());
    }
    match (t.sub.as_deref(), &method) {
        (None | Some("status"), _) => {}
        (Some("scale"), _) if t.def.scale_subresource() && t.name.is_some() => {
            let name = t.name.clone().unwrap_or_default();
            let call = Call {
                shared,
                t: &t,
                ns: &ns,
                query: &query,
            };
            return crud::scale(call, &name, req).await;
        }
        (Some("token"), _) if t.def.token_subresource() && t.name.is_some() => {
            if method != Method::POST {
                return Err(ApiError::method_not_allowed());
            }
            let name = t.name.clone().unwrap_or_default();
            return crud::token_request(shared, &ns, &name, req).await;
        }
        (Some("portforward"), _) if t.def.kind == "Pod" => {
            let name = t.name.clone().unwrap_or_default();
            let pod = shared.store.get(t.def, &ns, &name)?;
            return crate::portforward::upgrade(req, &pod);
        }
        _ => return Err(ApiError::path_not_found()),
    }
    let part = if t.sub.as_deref() == Some("status") {
        Part::Status
    } else {
        Part::Main
    };
    if part == Part::Status && !t.def.status_subresource {
        return Err(ApiError::path_not_found());
    }
    let table = accepts_table(&req);
    let call = Call {
        shared,
        t: &t,
        ns: &ns,
        query: &query,
    };
    if t.def.review {
        return match (&method, &t.name) {
            (&Method::POST, None) => crud::review(call, user, req).await,
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    match (method.clone(), t.name.clone()) {
        (Method::GET, None) if query.flag("watch") => watch::watch(shared, &t, &query, table).await,
        (Method::GET, None) => list::list(shared, &t, &query, table),
        (Method::GET, Some(name)) => crud::get(call, &name, table),
        (Method::POST, None) => crud::create(call, req).await,
        (Method::PUT, Some(name)) => crud::update(call, &name, part, req).await,
        (Method::PATCH, Some(name)) => crud::patch(call, &name, part, req).await,
        (Method::DELETE, Some(name)) => crud::delete(call, &name, req).await,
        (Method::DELETE, None) => crud::delete_collection(call),
        _ => Err(ApiError::method_not_allowed()),
    }
}
