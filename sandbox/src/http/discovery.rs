//! Discovery: `/version`, the legacy and aggregated (`APIGroupDiscoveryList`) forms of
//! `/api` and `/apis`, one group's versions, one group/version's resources, and the
//! OpenAPI v3 routes (whose documents `crate::openapi` builds).

use hyper::Response;
use serde_json::{json, Value};

use super::{json_response, json_response_ct, Body, Reply};
use crate::error::ApiError;
use crate::registry::Registry;

/// `/openapi/v3`: the index of OpenAPI v3 documents, one per served group/version.
pub(super) fn openapi_index(reg: &Registry) -> Response<Body> {
    json_response(200, &crate::openapi::index(reg))
}

/// `/openapi/v3/api/v1` and `/openapi/v3/apis/{group}/{version}`: one group/version's
/// OpenAPI v3 document, or 404 when the group/version is not served.
pub(super) fn openapi_document(reg: &Registry, group: &str, version: &str) -> Reply {
    crate::openapi::group_version(reg, group, version)
        .map(|d| json_response(200, &d))
        .ok_or_else(ApiError::path_not_found)
}

/// `/api`: the core group's versions, aggregated when the client asks for
/// `as=APIGroupDiscoveryList`.
pub(super) fn api_versions(reg: &Registry, aggregated_wanted: bool) -> Response<Body> {
    if aggregated_wanted {
        aggregated(reg, true)
    } else {
        json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        )
    }
}

/// `/apis`: every named group with its versions, aggregated when the client asks for
/// `as=APIGroupDiscoveryList`.
pub(super) fn api_groups(reg: &Registry, aggregated_wanted: bool) -> Response<Body> {
    if aggregated_wanted {
        aggregated(reg, false)
    } else {
        let groups: Vec<Value> = reg
            .groups()
            .iter()
            .map(|(g, vs)| group_json(g, vs))
            .collect();
        json_response(
            200,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
        )
    }
}

/// `/apis/{group}`: one group's versions as an `APIGroup`, or 404 for an unknown group.
pub(super) fn api_group(reg: &Registry, group: &str) -> Reply {
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

/// `/apis/{group}/{version}`: the resources served at one group/version, or 404 when
/// it serves none.
pub(super) fn api_group_version(reg: &Registry, group: &str, version: &str) -> Reply {
    if reg.in_group_version(group, version).next().is_none() {
        return Err(ApiError::path_not_found());
    }
    Ok(json_response(200, &resource_list(reg, group, version)))
}

/// `/version`: the Kubernetes version this server claims to be.
pub(super) fn version_json() -> Value {
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

/// The `APIResourceList` of one group/version (`/api/v1` or `/apis/{group}/{version}`).
pub(super) fn resource_list(reg: &Registry, group: &str, version: &str) -> Value {
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
