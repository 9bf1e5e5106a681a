//! What a request asks to do, in the terms authorization decides on: kube-apiserver's
//! RequestInfo (k8s.io/apiserver endpoints/request/requestinfo.go), read off the method,
//! the path and the query.
//!
//! A resource request is `/api/v1/...` or `/apis/<group>/<version>/...` with a resource:
//! its verb comes from the method (`get` without a name is `list`, or `watch` with
//! `?watch=true`; `delete` without one is `deletecollection`), the namespace from
//! `namespaces/<ns>` (a Namespace is in its own namespace), then resource, name and
//! subresource. A list or watch whose field selector names one `metadata.name` is for
//! that name, so `resourceNames` rules apply to it. Everything else (`/api`, `/apis`,
//! `/apis/<group>/<version>`, `/version`, `/openapi/v3`, `/healthz`) is a non-resource
//! request: verb the lower-case method, the path as it is.

use serde_json::{json, Value};

use crate::error::ApiError;

use super::UserInfo;

/// A request's authorization attributes, without the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// A request for a resource, not a non-resource path.
    pub resource_request: bool,
    /// The URL path.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`;
    /// for non-resource requests the lower-case HTTP method; `impersonate` and others for
    /// the checks the server makes itself.
    pub verb: String,
    /// API group ("" for core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Namespace ("" for cluster scope).
    pub namespace: String,
    /// Resource plural.
    pub resource: String,
    /// Subresource (`status`, `portforward`).
    pub subresource: String,
    /// Object name ("" for collections).
    pub name: String,
}

/// The user and what they ask: what the authorizer decides on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// What they ask.
    pub request: RequestInfo,
}

/// Namespace subresources: `/api/v1/namespaces/<ns>/status` is the namespace's status,
/// not a resource called `status` in it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    /// The attributes of an HTTP request.
    pub fn from_request(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
        let mut info = RequestInfo {
            path: path.to_string(),
            verb: method.to_ascii_lowercase(),
            ..RequestInfo::default()
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let parts: Vec<&str> = if path.trim_matches('/').is_empty() {
            vec![]
        } else {
            parts
        };
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return info;
        }
        let mut rest = &parts[1..];
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return info;
            }
            info.api_group = rest[0].to_string();
            rest = &rest[1..];
        }
        info.resource_request = true;
        info.api_version = rest[0].to_string();
        rest = &rest[1..];
        // NB: the deprecated `/watch/` and `/proxy/` verb prefixes.
        let mut verb_from_method = true;
        if matches!(rest[0], "watch" | "proxy") && rest.len() >= 2 {
            info.verb = rest[0].to_string();
            rest = &rest[1..];
            verb_from_method = false;
        } else {
            info.verb = match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_string();
        }
        if rest[0] == "namespaces" && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        info.resource = rest[0].to_string();
        if rest.len() >= 2 {
            info.name = rest[1].to_string();
        }
        if rest.len() >= 3 && info.verb != "proxy" {
            info.subresource = rest[2].to_string();
        }
        if verb_from_method && info.name.is_empty() && info.verb == "get" {
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(query.unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let watch = pairs
                .iter()
                .find(|(k, _)| k == "watch")
                .is_some_and(|(_, v)| !matches!(v.to_ascii_lowercase().as_str(), "false" | "0"));
            info.verb = if watch { "watch" } else { "list" }.to_string();
            if let Some(name) = pairs
                .iter()
                .find(|(k, _)| k == "fieldSelector")
                .and_then(|(_, v)| exact_name(v))
            {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".into();
        }
        info
    }

    /// The attributes of a SubjectAccessReview's `resourceAttributes` or
    /// `nonResourceAttributes` (authorization.k8s.io/v1).
    pub fn from_review(spec: &Value) -> RequestInfo {
        let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
        if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
            RequestInfo {
                resource_request: true,
                verb: s(ra, "verb"),
                api_group: s(ra, "group"),
                // NB: an empty version is every version (matchAllVersionIfEmpty).
                api_version: match s(ra, "version") {
                    v if v.is_empty() => "*".into(),
                    v => v,
                },
                namespace: s(ra, "namespace"),
                resource: s(ra, "resource"),
                subresource: s(ra, "subresource"),
                name: s(ra, "name"),
                path: String::new(),
            }
        } else {
            let nra = &spec["nonResourceAttributes"];
            RequestInfo {
                path: s(nra, "path"),
                verb: s(nra, "verb"),
                ..RequestInfo::default()
            }
        }
    }

    /// The resource as messages name it: `pods/portforward`.
    pub fn resource_and_subresource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// The JSON form the request log and `/sandbox/requests` show.
    pub fn to_json(&self) -> Value {
        if self.resource_request {
            json!({
                "verb": self.verb, "apiGroup": self.api_group, "resource": self.resource,
                "subresource": self.subresource, "namespace": self.namespace, "name": self.name,
            })
        } else {
            json!({"verb": self.verb, "path": self.path})
        }
    }
}

impl Attributes {
    /// The 403 kube-apiserver answers when these attributes are not allowed
    /// (responsewriters.Forbidden): `secrets "x" is forbidden: User "alice" cannot get
    /// resource "secrets" in API group "" in the namespace "demo"`, then `: <reason>` when
    /// the authorizer gave one; `details` name the object, its group and resource.
    pub fn forbidden(&self, reason: &str) -> ApiError {
        let r = &self.request;
        let user = &self.user.name;
        let mut msg = if !r.resource_request {
            format!("User \"{user}\" cannot {} path \"{}\"", r.verb, r.path)
        } else {
            let scope = if r.namespace.is_empty() {
                " at the cluster scope".to_string()
            } else {
                format!(" in the namespace \"{}\"", r.namespace)
            };
            format!(
                "User \"{user}\" cannot {} resource \"{}\" in API group \"{}\"{scope}",
                r.verb,
                r.resource_and_subresource(),
                r.api_group
            )
        };
        if !reason.is_empty() {
            msg = format!("{msg}: {reason}");
        }
        let (group, resource) = if r.resource_request {
            (r.api_group.as_str(), r.resource.as_str())
        } else {
            ("", "")
        };
        forbidden_error(group, resource, &r.name, &msg)
    }
}

/// apierrors.NewForbidden: `<resource>.<group> "name" is forbidden: <why>` (no name: no
/// quotes; no resource: `forbidden: <why>`).
pub fn forbidden_error(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = if qualified.is_empty() {
        format!("forbidden: {why}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} \"{name}\" is forbidden: {why}")
    };
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !resource.is_empty() {
        d.insert("kind".into(), json!(resource));
    }
    ApiError {
        code: 403,
        reason: "Forbidden".into(),
        message,
        details: Some(Value::Object(d)),
    }
}

/// The one `metadata.name` a field selector requires, if it requires exactly one
/// (`metadata.name=x` or `==`, possibly among other terms) and it is a valid path segment.
fn exact_name(selector: &str) -> Option<String> {
    let name = selector.split(',').find_map(|term| {
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        (k.trim() == "metadata.name").then(|| v.trim().to_string())
    })?;
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('%');
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
        RequestInfo::from_request(method, path, query)
    }

    #[test]
    fn resource_requests_get_the_verb_namespace_resource_name_and_subresource() {
        let r = info("GET", "/api/v1/namespaces/demo/secrets/pg-demo-auth", None);
        assert!(r.resource_request);
        assert_eq!(
            (
                r.verb.as_str(),
                r.api_group.as_str(),
                r.namespace.as_str(),
                r.resource.as_str(),
                r.name.as_str()
            ),
            ("get", "", "demo", "secrets", "pg-demo-auth")
        );
        let r = info(
            "GET",
            "/apis/kubedb.com/v1/namespaces/demo/postgreses",
            Some("limit=500"),
        );
        assert_eq!(
            (r.verb.as_str(), r.api_group.as_str()),
            ("list", "kubedb.com")
        );
        let r = info(
            "GET",
            "/apis/kubedb.com/v1/postgreses",
            Some("watch=true&resourceVersion=5"),
        );
        assert_eq!((r.verb.as_str(), r.namespace.as_str()), ("watch", ""));
        let r = info(
            "PATCH",
            "/apis/kubedb.com/v1/namespaces/demo/postgreses/pg/status",
            None,
        );
        assert_eq!(
            (
                r.verb.as_str(),
                r.subresource.as_str(),
                r.resource_and_subresource()
            ),
            ("patch", "status", "postgreses/status".to_string())
        );
        let r = info(
            "POST",
            "/api/v1/namespaces/demo/pods/pg-demo-0/portforward",
            Some("ports=5432"),
        );
        assert_eq!(r.verb, "create");
        assert_eq!(r.resource_and_subresource(), "pods/portforward");
        let r = info("DELETE", "/api/v1/namespaces/demo/secrets", None);
        assert_eq!(r.verb, "deletecollection");
        let r = info(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            None,
        );
        assert_eq!(
            (r.verb.as_str(), r.resource.as_str(), r.namespace.as_str()),
            ("create", "selfsubjectaccessreviews", "")
        );
    }

    #[test]
    fn a_namespace_is_in_its_own_namespace() {
        let r = info("GET", "/api/v1/namespaces/demo", None);
        assert_eq!(
            (r.namespace.as_str(), r.resource.as_str(), r.name.as_str()),
            ("demo", "namespaces", "demo")
        );
        let r = info("PUT", "/api/v1/namespaces/demo/status", None);
        assert_eq!(
            (r.resource.as_str(), r.name.as_str(), r.subresource.as_str()),
            ("namespaces", "demo", "status")
        );
        let r = info("GET", "/api/v1/namespaces", None);
        assert_eq!((r.verb.as_str(), r.namespace.as_str()), ("list", ""));
    }

    #[test]
    fn a_field_selector_on_one_name_names_the_object() {
        let r = info(
            "GET",
            "/api/v1/namespaces/demo/secrets",
            Some("fieldSelector=metadata.name%3Dpg-demo-auth&watch=true"),
        );
        assert_eq!(
            (r.verb.as_str(), r.name.as_str()),
            ("watch", "pg-demo-auth")
        );
        let r = info(
            "GET",
            "/api/v1/namespaces/demo/secrets",
            Some("fieldSelector=metadata.name!%3Dx"),
        );
        assert_eq!(r.name, "");
        let r = info(
            "GET",
            "/api/v1/namespaces/demo/secrets",
            Some("watch=false"),
        );
        assert_eq!(r.verb, "list");
    }

    #[test]
    fn discovery_and_health_are_non_resource_paths() {
        for p in [
            "/api",
            "/apis",
            "/apis/kubedb.com",
            "/apis/kubedb.com/v1",
            "/api/v1",
            "/version",
            "/openapi/v3",
            "/healthz",
        ] {
            let r = info("GET", p, None);
            assert!(!r.resource_request, "{p}");
            assert_eq!((r.verb.as_str(), r.path.as_str()), ("get", p));
        }
    }

    #[test]
    fn forbidden_messages_are_the_apiservers() {
        let attrs = |r: RequestInfo| Attributes {
            user: UserInfo::new("alice", &[]),
            request: r,
        };
        let e = attrs(info(
            "GET",
            "/api/v1/namespaces/demo/secrets/pg-demo-auth",
            None,
        ))
        .forbidden("");
        assert_eq!(e.message, "secrets \"pg-demo-auth\" is forbidden: User \"alice\" cannot get resource \"secrets\" in API group \"\" in the namespace \"demo\"");
        assert_eq!(
            e.details,
            Some(json!({"name": "pg-demo-auth", "kind": "secrets"}))
        );
        let e = attrs(info("GET", "/apis/kubedb.com/v1/postgreses", None)).forbidden("");
        assert_eq!(e.message, "postgreses.kubedb.com is forbidden: User \"alice\" cannot list resource \"postgreses\" in API group \"kubedb.com\" at the cluster scope");
        assert_eq!(
            e.details,
            Some(json!({"group": "kubedb.com", "kind": "postgreses"}))
        );
        let e = attrs(info("GET", "/apis", None)).forbidden("");
        assert_eq!(
            e.message,
            "forbidden: User \"alice\" cannot get path \"/apis\""
        );
        assert_eq!(e.details, Some(json!({})));
        let e = attrs(info("GET", "/api/v1/namespaces/demo/secrets/x", None))
            .forbidden("RBAC: role.rbac.authorization.k8s.io \"r\" not found");
        assert!(e.message.ends_with(
            "in the namespace \"demo\": RBAC: role.rbac.authorization.k8s.io \"r\" not found"
        ));
    }
}
