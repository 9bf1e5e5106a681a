//! Impersonation, as kube-apiserver's filter (k8s.io/apiserver endpoints/filters/
//! impersonation.go) handles the headers kubectl's `--as`, `--as-group` and `--as-uid`
//! send: `Impersonate-User`, `Impersonate-Group` (one header each), `Impersonate-Uid`
//! and `Impersonate-Extra-<key>`.
//!
//! Each thing asked for is authorized for the requester with verb `impersonate`: `users`
//! (or `serviceaccounts` in its namespace, for `system:serviceaccount:<ns>:<name>`) and
//! `groups` in group "", `uids` and `userextras/<key>` in `authentication.k8s.io`; the
//! first refused is a 403 (`users "bob" is forbidden: User "alice" cannot impersonate
//! resource "users" in API group "" at the cluster scope`). Groups, uid or extras without
//! a user are refused with a plain-text 500, as the real filter does. The request then
//! runs as the impersonated user, who is in `system:authenticated` unless a group given
//! says otherwise (a service account without groups given gets its own two).

use std::collections::BTreeMap;

use hyper::HeaderMap;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::Shared;

use super::{
    rbac, Attributes, RequestInfo, UserInfo, ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS,
};

/// The impersonation headers a request carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `Impersonate-User` (the first, as Go's Header.Get takes it).
    pub user: Option<String>,
    /// Every `Impersonate-Group`, in order.
    pub groups: Vec<String>,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
    /// Every `Impersonate-Extra-<key>: <value>`, the key lower-case and %-decoded, sorted
    /// by key.
    pub extra: Vec<(String, String)>,
}

/// Why impersonation was refused.
#[derive(Debug)]
pub enum Refusal {
    /// Asked without a user: kube-apiserver's InternalError, a plain-text 500.
    Internal(String),
    /// The requester may not impersonate what was asked.
    Forbidden(ApiError),
}

impl Impersonation {
    /// Read the headers.
    pub fn from_headers(headers: &HeaderMap) -> Impersonation {
        let text =
            |v: &hyper::header::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        let mut extra: Vec<(String, String)> = vec![];
        for (name, value) in headers {
            if let Some(key) = name.as_str().strip_prefix("impersonate-extra-") {
                let key = percent_decode(key);
                extra.push((key, text(value)));
            }
        }
        extra.sort_by(|a, b| a.0.cmp(&b.0));
        Impersonation {
            user: headers
                .get("impersonate-user")
                .map(text)
                .filter(|u| !u.is_empty()),
            groups: headers
                .get_all("impersonate-group")
                .iter()
                .map(text)
                .collect(),
            uid: headers
                .get("impersonate-uid")
                .map(text)
                .filter(|u| !u.is_empty()),
            extra,
        }
    }

    /// Whether any impersonation was asked for.
    pub fn asked(&self) -> bool {
        self.user.is_some()
            || !self.groups.is_empty()
            || self.uid.is_some()
            || !self.extra.is_empty()
    }

    /// The JSON form the request log shows.
    pub fn to_json(&self) -> Value {
        json!({
            "user": self.user, "groups": self.groups, "uid": self.uid,
            "extra": self.extra.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        })
    }

    /// The things asked for, as Go's `%v` of its ObjectReferences prints them in the 500's
    /// message: `[{Group  g    }]` (kind, namespace, name, uid, apiVersion,
    /// resourceVersion, fieldPath).
    fn requests_text(&self) -> String {
        let r = |kind: &str, ns: &str, name: &str, api: &str, field: &str| {
            format!("{{{kind} {ns} {name}  {api}  {field}}}")
        };
        let mut items = vec![];
        if let Some(u) = &self.user {
            items.push(match split_service_account(u) {
                Some((ns, name)) => r("ServiceAccount", ns, name, "", ""),
                None => r("User", "", u, "", ""),
            });
        }
        for g in &self.groups {
            items.push(r("Group", "", g, "", ""));
        }
        for (k, v) in &self.extra {
            items.push(r("UserExtra", "", v, "authentication.k8s.io/v1", k));
        }
        if let Some(uid) = &self.uid {
            items.push(r("UID", "", uid, "authentication.k8s.io/v1", ""));
        }
        format!("[{}]", items.join(" "))
    }

    /// The user the request runs as: `None` when nothing was asked, the impersonated user
    /// when `requester` may impersonate everything asked.
    pub fn apply(
        &self,
        shared: &Shared,
        requester: &UserInfo,
        request_uri: &str,
    ) -> Result<Option<UserInfo>, Refusal> {
        if !self.asked() {
            return Ok(None);
        }
        let Some(user) = &self.user else {
            // NB: responsewriters.InternalError; `<`, `>` and `&` are HTML-escaped in it.
            let text = format!(
                "Internal Server Error: \"{request_uri}\": requested {} without impersonating a user",
                self.requests_text()
            )
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
            return Err(Refusal::Internal(text));
        };
        let check = |group: &str, resource: &str, subresource: &str, ns: &str, name: &str| {
            let attrs = Attributes {
                user: requester.clone(),
                request: RequestInfo {
                    resource_request: true,
                    verb: "impersonate".into(),
                    api_group: group.into(),
                    api_version: if group.is_empty() { "" } else { "v1" }.into(),
                    resource: resource.into(),
                    subresource: subresource.into(),
                    namespace: ns.into(),
                    name: name.into(),
                    path: String::new(),
                },
            };
            let d = rbac::authorize(shared, &attrs);
            if d.allowed {
                Ok(())
            } else {
                Err(Refusal::Forbidden(attrs.forbidden(&d.reason)))
            }
        };
        let groups_given = !self.groups.is_empty();
        let mut groups: Vec<String> = vec![];
        match split_service_account(user) {
            Some((ns, name)) => {
                check("", "serviceaccounts", "", ns, name)?;
                if !groups_given {
                    groups = super::service_account_groups(ns);
                }
            }
            None => check("", "users", "", "", user)?,
        }
        for g in &self.groups {
            check("", "groups", "", "", g)?;
            groups.push(g.clone());
        }
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &self.extra {
            check("authentication.k8s.io", "userextras", k, "", v)?;
            extra.entry(k.clone()).or_default().push(v.clone());
        }
        if let Some(uid) = &self.uid {
            check("authentication.k8s.io", "uids", "", "", uid)?;
        }
        if user != ANONYMOUS {
            if !groups
                .iter()
                .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
            {
                groups.push(ALL_AUTHENTICATED.into());
            }
        } else if !groups.iter().any(|g| g == ALL_UNAUTHENTICATED) {
            groups.push(ALL_UNAUTHENTICATED.into());
        }
        Ok(Some(UserInfo {
            name: user.clone(),
            uid: self.uid.clone().unwrap_or_default(),
            groups,
            extra,
        }))
    }
}

/// `system:serviceaccount:<ns>:<name>` with a valid namespace and name (SplitUsername).
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    (label(ns) && crate::store::valid_name(name)).then_some((ns, name))
}

/// %-decoding of an extra key (url.PathUnescape; a malformed one is kept as it is).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => return s.to_string(),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_are_read_as_kubectl_sends_them() {
        let i = Impersonation::from_headers(&headers(&[
            ("Impersonate-User", "alice"),
            ("Impersonate-Group", "g1"),
            ("Impersonate-Group", "g2"),
            ("Impersonate-Uid", "1234"),
            ("Impersonate-Extra-Scopes%2Fx", "view"),
        ]));
        assert_eq!(i.user.as_deref(), Some("alice"));
        assert_eq!(i.groups, vec!["g1", "g2"]);
        assert_eq!(i.uid.as_deref(), Some("1234"));
        assert_eq!(i.extra, vec![("scopes/x".to_string(), "view".to_string())]);
        assert!(!Impersonation::default().asked());
    }

    #[test]
    fn groups_without_a_user_are_printed_as_go_prints_the_references() {
        let i = Impersonation {
            groups: vec!["g".into()],
            uid: Some("1".into()),
            ..Impersonation::default()
        };
        assert_eq!(
            i.requests_text(),
            "[{Group  g    } {UID  1  authentication.k8s.io/v1  }]"
        );
    }

    #[test]
    fn service_account_user_names_are_split_when_valid() {
        assert_eq!(
            split_service_account("system:serviceaccount:demo:rotator"),
            Some(("demo", "rotator"))
        );
        assert_eq!(split_service_account("system:serviceaccount:Demo:x"), None);
        assert_eq!(split_service_account("alice"), None);
    }
}
