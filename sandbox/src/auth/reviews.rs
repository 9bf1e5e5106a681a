//! The reviews: objects one creates to be told something, never stored.
//!
//! - `authorization.k8s.io/v1` SelfSubjectAccessReview (`kubectl auth can-i`): may I do
//!   this? SubjectAccessReview and LocalSubjectAccessReview: may this user? The answer
//!   is the authorizer's: `status.allowed`, and `status.reason` as it gives one.
//! - SelfSubjectRulesReview (`kubectl auth can-i --list`): every rule that applies to me
//!   in `spec.namespace`.
//! - `authentication.k8s.io/v1` SelfSubjectReview (`kubectl auth whoami`): who am I (the
//!   impersonated user, when impersonating); TokenReview: who is this token.
//!
//! Each answers 201 with the object sent (metadata, spec) and its status filled in.

use serde_json::{json, Value};

use crate::error::{ApiError, Cause};
use crate::registry::ResourceDef;
use crate::Shared;

use super::{rbac, strings, Attributes, RequestInfo, UserInfo};

/// Answer a review of kind `def.kind` created by `user` in `ns` ("" unless namespaced).
pub fn answer(
    shared: &Shared,
    user: &UserInfo,
    def: &ResourceDef,
    ns: &str,
    mut obj: Value,
) -> Result<Value, ApiError> {
    obj["apiVersion"] = json!(def.api_version());
    obj["kind"] = json!(def.kind);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if obj["metadata"].get("creationTimestamp").is_none() {
        obj["metadata"]["creationTimestamp"] = Value::Null;
    }
    match def.kind.as_str() {
        "SelfSubjectAccessReview" => {
            check_one_attributes(def, &obj["spec"])?;
            let attrs = Attributes {
                user: user.clone(),
                request: RequestInfo::from_review(&obj["spec"]),
            };
            obj["status"] = status(&rbac::authorize(shared, &attrs));
            Ok(obj)
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let spec = &obj["spec"];
            check_one_attributes(def, spec)?;
            if def.kind == "LocalSubjectAccessReview" {
                let given = spec["resourceAttributes"]["namespace"]
                    .as_str()
                    .unwrap_or("");
                if spec["resourceAttributes"].is_object() && given.is_empty() {
                    obj["spec"]["resourceAttributes"]["namespace"] = json!(ns);
                } else if given != ns {
                    return Err(ApiError::bad_request(format!(
                        "spec.resourceAttributes.namespace must match namespace: {ns}"
                    )));
                }
            }
            let spec = &obj["spec"];
            let subject = subject_of(spec);
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(invalid(
                    def,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message:
                            "Invalid value: \"\": at least one of user or group must be specified"
                                .into(),
                        field: "spec.user".into(),
                    }],
                ));
            }
            let attrs = Attributes {
                user: subject,
                request: RequestInfo::from_review(spec),
            };
            obj["status"] = status(&rbac::authorize(shared, &attrs));
            Ok(obj)
        }
        "SelfSubjectRulesReview" => {
            let ns = obj["spec"]["namespace"].as_str().unwrap_or("").to_string();
            if ns.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            let (rules, err) = rbac::rules_for(shared, user, &ns);
            let resource: Vec<Value> = rules
                .iter()
                .filter(|r| !r.resources.is_empty())
                .map(|r| {
                    let mut v = json!({"verbs": r.verbs});
                    for (k, l) in [
                        ("apiGroups", &r.api_groups),
                        ("resources", &r.resources),
                        ("resourceNames", &r.resource_names),
                    ] {
                        if !l.is_empty() {
                            v[k] = json!(l);
                        }
                    }
                    v
                })
                .collect();
            let non_resource: Vec<Value> = rules
                .iter()
                .filter(|r| !r.non_resource_urls.is_empty())
                .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
                .collect();
            // NB: the real REST answers a fresh object: spec and metadata are not echoed.
            let mut status = json!({
                "resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false,
            });
            if let Some(e) = err {
                status["evaluationError"] = json!(e);
            }
            Ok(json!({
                "kind": def.kind, "apiVersion": def.api_version(),
                "metadata": {"creationTimestamp": null}, "spec": {}, "status": status,
            }))
        }
        "SelfSubjectReview" => Ok(json!({
            "kind": def.kind, "apiVersion": def.api_version(),
            "metadata": {"creationTimestamp": crate::store::now_rfc3339()},
            "status": {"userInfo": user.to_json()},
        })),
        "TokenReview" => {
            let token = obj["spec"]["token"].as_str().unwrap_or("");
            // NB: without audiences, the API server's own (TokenREST's apiAudiences).
            let mut audiences = strings(&obj["spec"]["audiences"]);
            if audiences.is_empty() {
                audiences = vec![super::serviceaccounts::ISSUER.to_string()];
            }
            obj["status"] = match super::authn::authenticate_token(shared, token, &audiences) {
                Ok((u, good_for)) => {
                    json!({"authenticated": true, "user": u.to_json(), "audiences": good_for})
                }
                Err(e) => json!({"user": {}, "error": e}),
            };
            Ok(obj)
        }
        other => Err(ApiError::internal(format!("{other} is not a review"))),
    }
}

/// SubjectAccessReviewStatus: `allowed`, and `reason` when there is one.
fn status(d: &rbac::Decision) -> Value {
    let mut s = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        s["reason"] = json!(d.reason);
    }
    s
}

fn invalid(def: &ResourceDef, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid(&def.group, &def.kind, "", causes)
}

/// Exactly one of resourceAttributes and nonResourceAttributes, as validation requires.
fn check_one_attributes(def: &ResourceDef, spec: &Value) -> Result<(), ApiError> {
    let ra = spec["resourceAttributes"].is_object();
    let nra = spec["nonResourceAttributes"].is_object();
    let cause = match (ra, nra) {
        (true, true) => Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {}: cannot be specified in combination with resourceAttributes",
                go_struct(&spec["nonResourceAttributes"])
            ),
            field: "spec.nonResourceAttributes".into(),
        },
        (false, false) => Cause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
            field: "spec.resourceAttributes".into(),
        },
        _ => return Ok(()),
    };
    Err(invalid(def, vec![cause]))
}

/// A NonResourceAttributes as field errors print it (Go's `%#v` of the struct).
fn go_struct(nra: &Value) -> String {
    format!(
        "authorization.NonResourceAttributes{{Path:\"{}\", Verb:\"{}\"}}",
        nra["path"].as_str().unwrap_or(""),
        nra["verb"].as_str().unwrap_or("")
    )
}

/// The user a SubjectAccessReview asks about: user, uid, groups and extra as given
/// (no `system:authenticated` added).
fn subject_of(spec: &Value) -> UserInfo {
    UserInfo {
        name: spec["user"].as_str().unwrap_or("").to_string(),
        uid: spec["uid"].as_str().unwrap_or("").to_string(),
        groups: strings(&spec["groups"]),
        extra: spec["extra"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
            .unwrap_or_default(),
    }
}
