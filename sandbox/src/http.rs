//! The HTTP side of the API server: TLS connections, bearer-token auth, discovery, and the
//! REST verbs (get, list, watch, create, update, patch, delete, status subresource) with
//! the query parameters kubectl and kube-rs send.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::error::{ApiError, Gr};
use crate::faults::Action;
use crate::registry::{Registry, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ChangeType, Part};
use crate::{admission, Shared};

/// The response body type: whole JSON documents or a stream of watch events.
pub type Body = BoxBody<Bytes, Infallible>;

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
            acc = listener.accept() => {
                let Ok((tcp, _)) = acc else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .with_upgrades()
                        .await;
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

/// Who is calling.
#[derive(Clone, Copy, PartialEq, Eq)]
enum User {
    Admin,
    Bob,
    Anonymous,
}

impl User {
    fn name(self) -> &'static str {
        match self {
            User::Admin => "sandbox-admin",
            User::Bob => "bob",
            User::Anonymous => "system:anonymous",
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // NB: watches are counted as method WATCH, so request budgets can leave them out.
    let watching = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    shared
        .faults
        .record(if watching { "WATCH" } else { method.as_str() }, &path);
    let user = match req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => match v.strip_prefix("Bearer ").map(str::trim) {
            Some(crate::ADMIN_TOKEN) => User::Admin,
            Some(crate::FORBIDDEN_TOKEN) => User::Bob,
            _ => return error_response(&ApiError::unauthorized()),
        },
        None => User::Anonymous,
    };
    let public = matches!(
        path.as_str(),
        "/version" | "/healthz" | "/readyz" | "/livez"
    );
    if user == User::Anonymous && !public {
        return error_response(&ApiError::new(
            403,
            "Forbidden",
            format!("forbidden: User \"system:anonymous\" cannot get path \"{path}\""),
        ));
    }
    if !path.starts_with("/sandbox/") {
        match shared.faults.check(method.as_str(), &path) {
            Action::Pass => {}
            Action::Delay(d) => tokio::time::sleep(d).await,
            Action::Fail(code) => {
                return error_response(&ApiError::new(
                    code,
                    reason_for(code),
                    format!("injected fault: {} {}", method, path),
                ))
            }
        }
    }
    match route(&shared, user, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
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

/// Decode a create/update body: JSON, YAML, or (core types, as kubectl sends them) protobuf.
fn parse_object(ct: Option<&str>, body: &[u8], def: &ResourceDef) -> Result<Value, ApiError> {
    let mut obj = if ct.is_some_and(|c| c.starts_with("application/vnd.kubernetes.protobuf")) {
        crate::proto::decode(body, &def.kind)?
    } else {
        parse_json(body)?
    };
    // NB: core v1 Events always carry these fields, empty, when written without them
    // (Go's struct has no omitempty on them; apiserver transcript 27).
    if def.kind == "Event" && obj.is_object() {
        for (k, v) in [
            ("eventTime", Value::Null),
            ("reportingComponent", json!("")),
            ("reportingInstance", json!("")),
        ] {
            if obj.get(k).is_none() {
                obj[k] = v;
            }
        }
    }
    // A Secret's stringData is folded into base64 data on write (transcript 09).
    if def.kind == "Secret" {
        if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
            use base64::Engine;
            if !obj.get("data").is_some_and(Value::is_object) {
                obj["data"] = json!({});
            }
            for (k, v) in sd {
                let enc =
                    base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or(""));
                obj["data"][k] = json!(enc);
            }
        }
        if obj.get("type").is_none() {
            obj["type"] = json!("Opaque");
        }
    }
    Ok(obj)
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

async fn route(
    shared: &Arc<Shared>,
    user: User,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = Query::parse(req.uri().query());
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let reg = &shared.registry;
    match segs.as_slice() {
        ["version"] => Ok(json_response(200, &version_json())),
        ["healthz"] | ["readyz"] | ["livez"] => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(r)
        }
        ["sandbox", "faults"] if user == User::Admin => {
            let (_, body) = read_body(req).await?;
            let cmd = parse_json(&body)?;
            shared
                .faults
                .apply_json(&cmd)
                .map_err(ApiError::bad_request)?;
            Ok(json_response(200, &json!({"ok": true})))
        }
        ["sandbox", "requests"] if user == User::Admin => {
            Ok(json_response(200, &shared.faults.counts_json()))
        }
        ["openapi", "v3"] => Ok(json_response(200, &crate::openapi::index(reg))),
        ["openapi", "v3", "api", "v1"] => crate::openapi::group_version(reg, "", "v1")
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::path_not_found),
        ["openapi", "v3", "apis", group, version] => {
            crate::openapi::group_version(reg, group, version)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::path_not_found)
        }
        ["api"] => {
            if accepts_aggregated(&req) {
                Ok(aggregated(reg, true))
            } else {
                Ok(json_response(
                    200,
                    &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
                ))
            }
        }
        ["apis"] => {
            if accepts_aggregated(&req) {
                Ok(aggregated(reg, false))
            } else {
                let groups: Vec<Value> = reg
                    .groups()
                    .iter()
                    .map(|(g, vs)| group_json(g, vs))
                    .collect();
                Ok(json_response(
                    200,
                    &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                ))
            }
        }
        ["api", "v1"] => Ok(json_response(200, &resource_list(reg, "", "v1"))),
        ["apis", group] => {
            let groups = reg.groups();
            let (g, vs) = groups
                .iter()
                .find(|(g, _)| g == group)
                .ok_or_else(ApiError::path_not_found)?;
            let mut body = group_json(g, vs);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            Ok(json_response(200, &body))
        }
        ["apis", group, version] => {
            if reg.in_group_version(group, version).next().is_none() {
                return Err(ApiError::path_not_found());
            }
            Ok(json_response(200, &resource_list(reg, group, version)))
        }
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

fn version_json() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-rotate-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{group}/{}", versions[0]), "version": versions[0]},
    })
}

fn resource_list(reg: &Registry, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = reg
        .in_group_version(group, version)
        .flat_map(Registry::api_resource_json)
        .collect();
    if group.is_empty() {
        // NB: the core group's list carries no apiVersion (apiserver transcript 07).
        return json!({"kind": "APIResourceList", "groupVersion": version, "resources": resources});
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/{version}"), "resources": resources})
}

fn aggregated(reg: &Registry, core: bool) -> Response<Body> {
    let items: Vec<Value> = if core {
        let resources: Vec<Value> = reg
            .in_group_version("", "v1")
            .map(|d| Registry::aggregated_resource_json(d, "v1"))
            .collect();
        vec![
            json!({"metadata": {"creationTimestamp": null}, "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]}),
        ]
    } else {
        reg.groups()
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> = reg
                            .in_group_version(g, v)
                            .map(|d| Registry::aggregated_resource_json(d, v))
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
    };
    json_response_ct(
        200,
        &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    )
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

fn verb_of(method: &Method, t: &Target, query: &Query) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", false) if query.flag("watch") => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "get",
    }
}

/// Set an object's apiVersion to the version it is read at (all served versions share
/// one schema here, so conversion is a relabel).
fn at_version(mut obj: Value, def: &ResourceDef, version: &str) -> Value {
    obj["apiVersion"] = json!(def.group_version(version));
    obj
}

async fn resource(
    shared: &Arc<Shared>,
    user: User,
    req: Request<Incoming>,
    query: Query,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    let reg = &shared.registry;
    let t = parse_target(reg, group, version, rest)?;
    let method = req.method().clone();
    let verb = verb_of(&method, &t, &query);
    if user == User::Bob {
        return Err(ApiError::forbidden(
            user.name(),
            verb,
            Gr {
                group: &t.def.group,
                plural: &t.def.plural,
            },
            t.namespace.as_deref(),
        ));
    }
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
    match (method.clone(), t.name.clone()) {
        (Method::GET, None) if query.flag("watch") => watch(shared, &t, &query, table).await,
        (Method::GET, None) => list(shared, &t, &query, table),
        (Method::GET, Some(name)) => {
            let obj = shared.store.get(t.def, &ns, &name)?;
            if table {
                return Ok(json_response(
                    200,
                    &to_table(t.def, &[obj], &query, shared.store.resource_version()),
                ));
            }
            Ok(json_response(200, &at_version(obj, t.def, &t.version)))
        }
        (Method::POST, None) => {
            let (ct, body) = read_body(req).await?;
            let mut obj = parse_object(ct.as_deref(), &body, t.def)?;
            check_body_identity(&t, &obj, &ns)?;
            admission::mutate(shared, t.def, &mut obj);
            admission::validate(shared, t.def, &ns, &obj, None)?;
            let created = shared.store.create(t.def, &ns, obj, query.dry_run())?;
            Ok(json_response(201, &at_version(created, t.def, &t.version)))
        }
        (Method::PUT, Some(name)) => {
            let (ct, body) = read_body(req).await?;
            let obj = parse_object(ct.as_deref(), &body, t.def)?;
            check_body_identity(&t, &obj, &ns)?;
            let rv_given = obj["metadata"]["resourceVersion"]
                .as_str()
                .is_some_and(|s| !s.is_empty());
            if t.def.custom && !rv_given {
                return Err(ApiError::invalid(
                    &t.def.group,
                    &t.def.kind,
                    &name,
                    vec![crate::error::Cause {
                        reason: "FieldValueInvalid".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                        field: "metadata.resourceVersion".into(),
                    }],
                ));
            }
            let def = t.def;
            let updated = shared
                .store
                .modify(def, &ns, &name, part, query.dry_run(), |cur| {
                    let mut new = obj;
                    admission::mutate(shared, def, &mut new);
                    admission::validate(shared, def, &ns, &new, Some(cur))?;
                    Ok(new)
                })?;
            Ok(json_response(200, &at_version(updated, t.def, &t.version)))
        }
        (Method::PATCH, Some(name)) => {
            let (ct, body) = read_body(req).await?;
            let ct = ct.unwrap_or_default();
            let ct = ct.split(';').next().unwrap_or("").trim().to_string();
            let def = t.def;
            let dry_run = query.dry_run();
            if ct == "application/apply-patch+yaml" {
                // Server-side apply, approximated as create-or-merge.
                let obj = parse_json(&body)?;
                if shared.store.get(def, &ns, &name).is_err() {
                    let mut obj = obj;
                    admission::mutate(shared, def, &mut obj);
                    admission::validate(shared, def, &ns, &obj, None)?;
                    let created = shared.store.create(def, &ns, obj, dry_run)?;
                    return Ok(json_response(201, &at_version(created, def, &t.version)));
                }
                let updated = shared.store.modify(def, &ns, &name, part, dry_run, |cur| {
                    let mut new = cur.clone();
                    json_patch::merge(&mut new, &obj);
                    admission::mutate(shared, def, &mut new);
                    admission::validate(shared, def, &ns, &new, Some(cur))?;
                    Ok(new)
                })?;
                return Ok(json_response(200, &at_version(updated, def, &t.version)));
            }
            let patch_kind = match ct.as_str() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" if !def.custom => PatchKind::Merge,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let patch = parse_json(&body)?;
            let updated = shared.store.modify(def, &ns, &name, part, dry_run, |cur| {
                let mut new = cur.clone();
                match patch_kind {
                    PatchKind::Merge => {
                        if !patch.is_object() {
                            return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                        }
                        json_patch::merge(&mut new, &patch)
                    }
                    PatchKind::Json => {
                        let p: json_patch::Patch = serde_json::from_value(patch.clone())
                            .map_err(|e| ApiError::bad_request(format!("the JSON patch is malformed: {e}")))?;
                        json_patch::patch(&mut new, &p).map_err(|e| match e.kind {
                            json_patch::PatchErrorKind::TestFailed => ApiError::patch_test_failed(),
                            _ => ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {e}")),
                        })?;
                    }
                }
                admission::mutate(shared, def, &mut new);
                admission::validate(shared, def, &ns, &new, Some(cur))?;
                Ok(new)
            })?;
            Ok(json_response(200, &at_version(updated, def, &t.version)))
        }
        (Method::DELETE, Some(name)) => {
            let (_, body) = read_body(req).await?;
            let opts = if body.is_empty() {
                Value::Null
            } else {
                parse_json(&body).unwrap_or(Value::Null)
            };
            let dry_run = query.dry_run()
                || opts["dryRun"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == "All"));
            let pre = opts["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            let gone = shared
                .store
                .delete(t.def, &ns, &name, dry_run, pre.as_deref())?;
            if t.def.custom || t.def.kind == "Pod" || t.def.kind == "Namespace" {
                Ok(json_response(200, &at_version(gone, t.def, &t.version)))
            } else {
                Ok(json_response(
                    200,
                    &json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": t.def.group, "kind": t.def.plural, "uid": gone["metadata"]["uid"]},
                    }),
                ))
            }
        }
        (Method::DELETE, None) => {
            let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
            let (items, _) = shared.store.list(t.def, t.namespace.as_deref(), None);
            let mut gone = vec![];
            for o in items.into_iter().filter(|o| labels.matches(o)) {
                let n = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                let ons = o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if let Ok(g) = shared.store.delete(t.def, &ons, &n, query.dry_run(), None) {
                    gone.push(at_version(g, t.def, &t.version));
                }
            }
            Ok(json_response(
                200,
                &json!({"kind": t.def.list_kind(), "apiVersion": t.def.group_version(&t.version), "metadata": {}, "items": gone}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[derive(Clone, Copy)]
enum PatchKind {
    Merge,
    Json,
}

/// The body's kind, apiVersion and namespace must agree with the URL, as the apiserver checks.
fn check_body_identity(t: &Target, obj: &Value, ns: &str) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str) {
        if kind != t.def.kind {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                obj.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                t.def.group_version(&t.version)
            )));
        }
    }
    if let Some(body_ns) = obj["metadata"].get("namespace").and_then(Value::as_str) {
        if t.def.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    if let Some(n) = &t.name {
        if let Some(bn) = obj["metadata"].get("name").and_then(Value::as_str) {
            if bn != n {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({bn}) does not match the name on the URL ({n})"
                )));
            }
        }
    }
    Ok(())
}

/// Continue tokens: base64 of `{"rv": N, "start": "ns/name"}` (opaque to clients).
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(
            &json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}")}),
        )
        .unwrap_or_default(),
    )
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid: illegal base64 data");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

fn list(
    shared: &Arc<Shared>,
    t: &Target,
    query: &Query,
    table: bool,
) -> Result<Response<Body>, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))?;
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(tok) => Some(decode_continue(tok)?),
        None => None,
    };
    let ns_filter = if t.def.namespaced {
        t.namespace.as_deref()
    } else {
        None
    };
    let mut items: Vec<Value> = Vec::new();
    let mut more = false;
    let mut remaining: u64 = 0;
    let rv = shared.store.scan(
        t.def,
        ns_filter,
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        |o| {
            if !labels.matches(o) || !fields.matches(o) {
                return true;
            }
            if items.len() < limit {
                items.push(o.clone());
            } else {
                more = true;
                remaining += 1;
            }
            true
        },
    );
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if more {
        let last = items.last().expect("a full page has items");
        meta["continue"] = json!(encode_continue(
            rv,
            last["metadata"]["namespace"].as_str().unwrap_or(""),
            last["metadata"]["name"].as_str().unwrap_or("")
        ));
        meta["remainingItemCount"] = json!(remaining);
    } else if t.def.custom {
        meta["continue"] = json!("");
    }
    if table {
        let mut tb = to_table(t.def, &items, query, rv);
        // NB: a Table names `continue` only when there is a next page (transcript 14).
        if !more {
            if let Some(m) = meta.as_object_mut() {
                m.remove("continue");
            }
        }
        tb["metadata"] = meta;
        return Ok(json_response(200, &tb));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|o| at_version(o, t.def, &t.version))
        .collect();
    Ok(json_response(
        200,
        &json!({"apiVersion": t.def.group_version(&t.version), "items": items, "kind": t.def.list_kind(), "metadata": meta}),
    ))
}

/// Kubernetes' HumanDuration, as the Age column shows it.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age_of(obj: &Value) -> Value {
    let Some(ts) = obj["metadata"]["creationTimestamp"].as_str() else {
        return json!("<unknown>");
    };
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => json!(human_duration(
            jiff::Timestamp::now().as_second() - t.as_second()
        )),
        Err(_) => json!("<unknown>"),
    }
}

fn dig<'a>(obj: &'a Value, path: &str) -> &'a Value {
    let mut cur = obj;
    for seg in path.split('.') {
        cur = match cur.get(seg) {
            Some(v) => v,
            None => return &Value::Null,
        };
    }
    cur
}

fn to_table(def: &ResourceDef, items: &[Value], query: &Query, rv: u64) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for c in &def.columns {
        cols.push(json!({"name": c.name, "type": c.ty, "format": "", "description": format!("Custom resource definition column (in JSONPath format): .{}", c.path), "priority": 0}));
    }
    cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp", "priority": 0}));
    let full = query.get("includeObject") == Some("Object");
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &def.columns {
                let v = dig(o, c.path);
                cells.push(if v.is_null() { json!(null) } else { v.clone() });
            }
            cells.push(age_of(o));
            let object = if full {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"].clone()})
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "columnDefinitions": cols, "rows": rows})
}

fn watch_line(ty: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": ty, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

async fn watch(
    shared: &Arc<Shared>,
    t: &Target<'_>,
    query: &Query,
    table: bool,
) -> Result<Response<Body>, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }
}
