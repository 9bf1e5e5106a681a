//! A minimal OpenAPI v3 document per group version: enough for kubectl to find each
//! resource's operations and see that they accept `fieldValidation` (so `kubectl apply`
//! validates server-side, as against a real apiserver), and a schema per kind.

use serde_json::{json, Value};

use crate::registry::{Registry, ResourceDef};

/// `GET /openapi/v3`: the index of group-version documents.
pub fn index(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1?hash=SANDBOX"}),
    );
    for (g, vs) in reg.groups() {
        for v in vs {
            paths.insert(
                format!("apis/{g}/{v}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/{v}?hash=SANDBOX")}),
            );
        }
    }
    json!({"paths": paths})
}

fn schema_name(d: &ResourceDef, version: &str) -> String {
    if d.group.is_empty() {
        format!("io.k8s.api.core.v1.{}", d.kind)
    } else {
        let rev: Vec<&str> = d.group.split('.').rev().collect();
        format!("{}.{}.{}", rev.join("."), version, d.kind)
    }
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = reg.in_group_version(group, version).collect();
    if defs.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
    ]);
    for d in defs {
        let gvk = json!({"group": d.group, "version": version, "kind": d.kind});
        let sname = schema_name(d, version);
        let reference = json!({"$ref": format!("#/components/schemas/{sname}")});
        let op = |id: &str| {
            json!({
                "operationId": id,
                "parameters": params,
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
                "x-kubernetes-action": id,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        let coll = if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("{prefix}/{}", d.plural)
        };
        // NB: a review is create-only: one POST, no object paths.
        if d.review {
            paths.insert(coll.clone(), json!({"post": op("post")}));
        } else {
            paths.insert(coll.clone(), json!({"get": op("list"), "post": op("post")}));
            paths.insert(
                format!("{coll}/{{name}}"),
                json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
            );
        }
        if d.scale_subresource() {
            paths.insert(
                format!("{coll}/{{name}}/scale"),
                json!({"get": op("get"), "put": op("put"), "patch": op("patch")}),
            );
        }
        if d.status_subresource {
            paths.insert(
                format!("{coll}/{{name}}/status"),
                json!({"get": op("get"), "put": op("put"), "patch": op("patch")}),
            );
        }
        schemas.insert(
            sname,
            json!({
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                },
                "x-kubernetes-group-version-kind": [gvk],
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
