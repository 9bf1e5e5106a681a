//! Single-object verbs: get, create, update (PUT), patch (merge, JSON, strategic as merge,
//! and server-side apply approximated as create-or-merge), delete and deletecollection,
//! each on the object or on its status subresource, with the body checks the apiserver does.

use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};

use super::list::to_table;
use super::{at_version, json_response, parse_json, read_body, Call, Reply, Target};
use crate::admission;
use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::selector::LabelSelector;
use crate::store::Part;
use crate::Shared;

/// GET of one object: JSON at the URL's version, or a one-row Table when asked for.
pub(super) fn get(call: Call, name: &str, table: bool) -> Reply {
    let (shared, t, ns, query) = (call.shared, call.t, call.ns, call.query);
    let obj = shared.store.get(t.def, ns, name)?;
    if table {
        return Ok(json_response(
            200,
            &to_table(t.def, &[obj], query, shared.store.resource_version()),
        ));
    }
    Ok(json_response(200, &at_version(obj, t.def, &t.version)))
}

/// The field manager of a request, as kube-apiserver takes it: the User-Agent up to its
/// first `/` (`kubectl-client-side-apply`, `kubectl-rotate`), else `unknown`.
fn manager(req: &Request<Incoming>) -> String {
    req.headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

/// POST to a collection: decode, check, admit and store a new object (201).
pub(super) async fn create(call: Call<'_>, req: Request<Incoming>) -> Reply {
    let (shared, t, ns, query) = (call.shared, call.t, call.ns, call.query);
    let manager = manager(&req);
    let (ct, body) = read_body(req).await?;
    let mut obj = parse_object(ct.as_deref(), &body, t.def)?;
    if obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"]["managedFields"] = json!([{ "manager": manager }]);
    }
    check_body_identity(t, &obj, ns)?;
    admission::mutate(shared, t.def, &mut obj);
    admission::validate(shared, t.def, ns, &obj, None)?;
    let created = shared.store.create(t.def, ns, obj, query.dry_run())?;
    Ok(json_response(201, &at_version(created, t.def, &t.version)))
}

/// POST of a review (SelfSubjectAccessReview and kin): decoded and checked as any create,
/// answered by `crate::auth::reviews` for `user`, never stored (201).
pub(super) async fn review(call: Call<'_>, user: &UserInfo, req: Request<Incoming>) -> Reply {
    let (shared, t, ns) = (call.shared, call.t, call.ns);
    let (ct, body) = read_body(req).await?;
    let obj = parse_object(ct.as_deref(), &body, t.def)?;
    check_body_identity(t, &obj, ns)?;
    let answer = crate::auth::reviews::answer(shared, user, t.def, ns, obj)?;
    Ok(json_response(201, &answer))
}

/// POST of a TokenRequest to `serviceaccounts/<name>/token` in `ns`: decoded (JSON, YAML or
/// protobuf, as `kubectl create token` sends it) and answered by
/// `crate::auth::serviceaccounts::token_request` (201).
pub(super) async fn token_request(
    shared: &Shared,
    ns: &str,
    name: &str,
    req: Request<Incoming>,
) -> Reply {
    let (ct, body) = read_body(req).await?;
    let obj = decode(ct.as_deref(), &body, "TokenRequest")?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let answer = crate::auth::serviceaccounts::token_request(shared, ns, name, &obj)?;
    Ok(json_response(201, &answer))
}

/// PUT of one object or its status: a full replacement; custom resources require the
/// body's resourceVersion, as the apiserver does.
pub(super) async fn update(
    call: Call<'_>,
    name: &str,
    part: Part,
    req: Request<Incoming>,
) -> Reply {
    let (shared, t, ns, query) = (call.shared, call.t, call.ns, call.query);
    let (ct, body) = read_body(req).await?;
    let obj = parse_object(ct.as_deref(), &body, t.def)?;
    check_body_identity(t, &obj, ns)?;
    let rv_given = obj["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    if t.def.custom && !rv_given {
        return Err(ApiError::invalid(
            &t.def.group,
            &t.def.kind,
            name,
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
        .modify(def, ns, name, part, query.dry_run(), |cur| {
            let mut new = obj;
            admission::mutate(shared, def, &mut new);
            admission::validate(shared, def, ns, &new, Some(cur))?;
            Ok(new)
        })?;
    Ok(json_response(200, &at_version(updated, t.def, &t.version)))
}

/// PATCH of one object or its status, by the body's content type.
pub(super) async fn patch(call: Call<'_>, name: &str, part: Part, req: Request<Incoming>) -> Reply {
    let (shared, t, ns, query) = (call.shared, call.t, call.ns, call.query);
    let (ct, body) = read_body(req).await?;
    let ct = ct.unwrap_or_default();
    let ct = ct.split(';').next().unwrap_or("").trim().to_string();
    let def = t.def;
    let dry_run = query.dry_run();
    if ct == "application/apply-patch+yaml" {
        // Server-side apply, approximated as create-or-merge.
        let obj = parse_json(&body)?;
        if shared.store.get(def, ns, name).is_err() {
            let mut obj = obj;
            admission::mutate(shared, def, &mut obj);
            admission::validate(shared, def, ns, &obj, None)?;
            let created = shared.store.create(def, ns, obj, dry_run)?;
            return Ok(json_response(201, &at_version(created, def, &t.version)));
        }
        let updated = shared.store.modify(def, ns, name, part, dry_run, |cur| {
            let mut new = cur.clone();
            json_patch::merge(&mut new, &obj);
            admission::mutate(shared, def, &mut new);
            admission::validate(shared, def, ns, &new, Some(cur))?;
            Ok(new)
        })?;
        return Ok(json_response(200, &at_version(updated, def, &t.version)));
    }
    let patch_kind = match ct.as_str() {
        "application/merge-patch+json" => PatchKind::Merge,
        "application/json-patch+json" => PatchKind::Json,
        "application/strategic-merge-patch+json" if !def.custom => PatchKind::Strategic,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let patch = parse_json(&body)?;
    let updated = shared.store.modify(def, ns, name, part, dry_run, |cur| {
        let mut new = cur.clone();
        match patch_kind {
            PatchKind::Merge => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                }
                json_patch::merge(&mut new, &patch)
            }
            PatchKind::Strategic => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request(
                        "a strategic merge patch must be a JSON object",
                    ));
                }
                crate::workloads::strategic_merge(&mut new, &patch)
            }
            PatchKind::Json => {
                let p: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                    ApiError::bad_request(format!("the JSON patch is malformed: {e}"))
                })?;
                json_patch::patch(&mut new, &p).map_err(|e| match e.kind {
                    json_patch::PatchErrorKind::TestFailed => ApiError::patch_test_failed(),
                    _ => ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    ),
                })?;
            }
        }
        admission::mutate(shared, def, &mut new);
        admission::validate(shared, def, ns, &new, Some(cur))?;
        Ok(new)
    })?;
    Ok(json_response(200, &at_version(updated, def, &t.version)))
}

/// The `/scale` subresource of a Deployment, ReplicaSet or StatefulSet: GET answers its
/// `autoscaling/v1` Scale; PUT and PATCH (merge, strategic or JSON) of the Scale set
/// `spec.replicas` (a spec change: the generation moves).
pub(super) async fn scale(call: Call<'_>, name: &str, req: Request<Incoming>) -> Reply {
    let (shared, t, ns, query) = (call.shared, call.t, call.ns, call.query);
    let def = t.def;
    let method = req.method().clone();
    let cur = shared.store.get(def, ns, name)?;
    let mut scale = crate::workloads::scale_of(&cur);
    match method {
        hyper::Method::GET => return Ok(json_response(200, &scale)),
        hyper::Method::PUT | hyper::Method::PATCH => {}
        _ => return Err(ApiError::method_not_allowed()),
    }
    let (ct, body) = read_body(req).await?;
    let ct = ct.unwrap_or_default();
    let ct = ct.split(';').next().unwrap_or("").trim().to_string();
    let given = parse_json(&body)?;
    if method == hyper::Method::PUT {
        scale = given;
    } else {
        match ct.as_str() {
            "application/merge-patch+json" => json_patch::merge(&mut scale, &given),
            "application/strategic-merge-patch+json" => {
                crate::workloads::strategic_merge(&mut scale, &given)
            }
            "application/json-patch+json" => {
                let p: json_patch::Patch = serde_json::from_value(given).map_err(|e| {
                    ApiError::bad_request(format!("the JSON patch is malformed: {e}"))
                })?;
                json_patch::patch(&mut scale, &p).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
    }
    let Some(replicas) = scale["spec"]["replicas"].as_i64().filter(|r| *r >= 0) else {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![crate::error::Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: must be greater than or equal to 0".into(),
                field: "spec.replicas".into(),
            }],
        ));
    };
    let rv = scale["metadata"]["resourceVersion"].clone();
    let updated = shared
        .store
        .modify(def, ns, name, Part::Main, query.dry_run(), |cur| {
            let mut new = cur.clone();
            new["spec"]["replicas"] = json!(replicas);
            if rv.as_str().is_some_and(|s| !s.is_empty()) {
                new["metadata"]["resourceVersion"] = rv.clone();
            }
            Ok(new)
        })?;
    Ok(json_response(200, &crate::workloads::scale_of(&updated)))
}

/// DELETE of one object, honouring dryRun and a resourceVersion precondition in the
/// DeleteOptions body; answers with the object or a `Status`, as the real kind does.
pub(super) async fn delete(call: Call<'_>, name: &str, req: Request<Incoming>) -> Reply {
    let (shared, t, ns, query) = (call.shared, call.t, call.ns, call.query);
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
        .delete(t.def, ns, name, dry_run, pre.as_deref())?;
    if t.def.returns_deleted_object() {
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

/// DELETE of a collection: every object matching the label selector; answers with the
/// list of what was deleted.
pub(super) fn delete_collection(call: Call) -> Reply {
    let (shared, t, query) = (call.shared, call.t, call.query);
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

/// Decode a body of `kind`: JSON, YAML, or (built-in kinds, as kubectl sends them) protobuf.
fn decode(ct: Option<&str>, body: &[u8], kind: &str) -> Result<Value, ApiError> {
    if ct.is_some_and(|c| c.starts_with("application/vnd.kubernetes.protobuf")) {
        crate::proto::decode(body, kind)
    } else {
        parse_json(body)
    }
}

/// Decode a create/update body ([`decode`]), with the fields the kind's registry fills.
fn parse_object(ct: Option<&str>, body: &[u8], def: &ResourceDef) -> Result<Value, ApiError> {
    let mut obj = decode(ct, body, &def.kind)?;
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

#[derive(Clone, Copy)]
enum PatchKind {
    Merge,
    Strategic,
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
