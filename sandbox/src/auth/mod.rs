//! Who is calling and what they may do, decided as kube-apiserver decides it, in its
//! order: authentication ([`authn`]: bearer tokens, static or the service account tokens
//! [`serviceaccounts`] issues, else anonymous), impersonation
//! ([`impersonation`]: `Impersonate-*` headers), then authorization of the request's
//! attributes ([`attributes`]) by the RBAC authorizer ([`rbac`]) over the Roles,
//! ClusterRoles and bindings in the store ([`objects`] admits them, [`bootstrap`] loads the
//! defaults). The reviews ([`reviews`]) ask the same authorizer.
//!
//! [`admit`] runs the three for one request and says what the request log records of it.
//! `/sandbox/*` control endpoints are not authorized here: they take the admin's token.

pub mod attributes;
pub mod authn;
pub mod bootstrap;
pub mod impersonation;
pub mod jwt;
pub mod objects;
pub mod rbac;
pub mod reviews;
pub mod serviceaccounts;

pub use attributes::{Attributes, RequestInfo};
pub use authn::{UserInfo, Users};
pub use impersonation::Impersonation;

use crate::error::ApiError;
use crate::Shared;

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The group whose members may do anything, before RBAC is asked.
pub const MASTERS: &str = "system:masters";
/// The group every authenticated user is in.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of requests without credentials.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// The user name of [`crate::ADMIN_TOKEN`].
pub const ADMIN_USER: &str = "sandbox-admin";

/// `system:serviceaccount:<ns>:<name>`, a service account's user name.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A service account's groups: `system:serviceaccounts`, `system:serviceaccounts:<ns>`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
    ]
}

/// The strings of a JSON array (none for anything else).
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Why a request was refused before it was served.
#[derive(Debug)]
pub enum Refused {
    /// A `Status` answer: 401, or 403 from impersonation or authorization.
    Status(ApiError),
    /// kube-apiserver's plain-text 500 (impersonating groups without a user).
    Internal(String),
}

/// What authentication, impersonation and authorization made of one request.
#[derive(Debug)]
pub struct Admission {
    /// Who the credentials say (None: refused with 401).
    pub requester: Option<UserInfo>,
    /// The impersonation headers received.
    pub impersonation: Impersonation,
    /// Who the request runs as: the requester, or the user impersonated.
    pub user: Option<UserInfo>,
    /// The request's attributes.
    pub request: RequestInfo,
    /// Served, or refused and why.
    pub outcome: Result<(), Refused>,
}

/// Authenticate, impersonate and authorize one request. `request_uri` is the path with
/// its query, as the 500 of a refused impersonation quotes it.
pub fn admit(
    shared: &Shared,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &hyper::HeaderMap,
) -> Admission {
    let impersonation = Impersonation::from_headers(headers);
    let request = RequestInfo::from_request(method, path, query);
    let mut a = Admission {
        requester: None,
        impersonation,
        user: None,
        request,
        outcome: Ok(()),
    };
    let authorization = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let requester = match authn::authenticate(shared, authorization) {
        Ok(u) => u,
        Err(e) => {
            a.outcome = Err(Refused::Status(e));
            return a;
        }
    };
    a.requester = Some(requester.clone());
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let user = match a.impersonation.apply(shared, &requester, &uri) {
        Ok(Some(u)) => u,
        Ok(None) => requester,
        Err(impersonation::Refusal::Internal(text)) => {
            a.outcome = Err(Refused::Internal(text));
            return a;
        }
        Err(impersonation::Refusal::Forbidden(e)) => {
            a.outcome = Err(Refused::Status(e));
            return a;
        }
    };
    let attrs = Attributes {
        user,
        request: a.request.clone(),
    };
    let decision = rbac::authorize(shared, &attrs);
    if !decision.allowed {
        a.outcome = Err(Refused::Status(attrs.forbidden(&decision.reason)));
    } else if shared.websocket_upgrade_needs_create && is_pod_connect(&attrs.request) {
        if let Err(e) = authorize_connect_create(shared, &attrs.user, &attrs.request) {
            a.outcome = Err(Refused::Status(e));
        }
    }
    a.user = Some(attrs.user);
    a
}

/// A connect request to a pod: `pods/exec`, `pods/attach`, `pods/portforward`.
fn is_pod_connect(r: &RequestInfo) -> bool {
    r.resource_request
        && r.api_group.is_empty()
        && r.resource == "pods"
        && matches!(r.subresource.as_str(), "exec" | "attach" | "portforward")
}

/// kube-apiserver 1.35's check on a connect request made with GET (a WebSocket upgrade) to
/// `pods/portforward` (and exec, attach), behind its feature gate
/// AuthorizePodWebsocketUpgradeCreatePermission ([`crate::Options`]): once `get` is allowed,
/// the user must also be allowed `create`, as an SPDY upgrade (a POST) is. Refused:
/// `pods "x" is forbidden: <reason>`, the authorizer's reason alone (the pod registry's
/// ensureAuthorizedForVerb, which runs before the pod is looked up).
fn authorize_connect_create(
    shared: &Shared,
    user: &UserInfo,
    request: &RequestInfo,
) -> Result<(), ApiError> {
    if request.verb == "create" {
        return Ok(());
    }
    let attrs = Attributes {
        user: user.clone(),
        request: RequestInfo {
            verb: "create".into(),
            ..request.clone()
        },
    };
    let d = rbac::authorize(shared, &attrs);
    if d.allowed {
        return Ok(());
    }
    Err(attributes::forbidden_error(
        &request.api_group,
        &request.resource,
        &request.name,
        &d.reason,
    ))
}
