//! API errors as a real kube-apiserver returns them: a `Status` body with `reason`,
//! `code`, `message` and `details`.

use serde_json::{json, Value};

/// One field-level cause of a 422 Invalid.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// e.g. `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueInvalid`.
    pub reason: String,
    /// Human message, e.g. `Required value`.
    pub message: String,
    /// The field path, e.g. `spec.tls`.
    pub field: String,
}

/// An error answer of the API server.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Status `reason` (NotFound, AlreadyExists, Conflict, Invalid, ...).
    pub reason: String,
    /// Status `message`.
    pub message: String,
    /// `details` (name, group, kind, causes), already shaped; `None` omits it.
    pub details: Option<Value>,
}

/// How a resource is named in messages and `details`: `postgreses.kubedb.com`.
#[derive(Clone, Debug)]
pub struct Gr<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    /// Resource plural.
    pub plural: &'a str,
}

impl Gr<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    fn details(&self, name: &str) -> Value {
        let mut d = serde_json::Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if !self.group.is_empty() {
            d.insert("group".into(), json!(self.group));
        }
        d.insert("kind".into(), json!(self.plural));
        Value::Object(d)
    }
}

impl ApiError {
    /// A bare error.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }
    /// 404 `<plural>.<group> "name" not found`.
    pub fn not_found(gr: Gr<'_>, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound".into(),
            message: format!("{} \"{}\" not found", gr.qualified(), name),
            details: Some(gr.details(name)),
        }
    }
    /// 404 for an unknown path.
    pub fn path_not_found() -> Self {
        ApiError {
            code: 404,
            reason: "NotFound".into(),
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }
    /// 409 AlreadyExists.
    pub fn already_exists(gr: Gr<'_>, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!("{} \"{}\" already exists", gr.qualified(), name),
            details: Some(gr.details(name)),
        }
    }
    /// 409 Conflict (stale resourceVersion).
    pub fn conflict(gr: Gr<'_>, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict".into(),
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                gr.qualified(),
                name
            ),
            details: Some(gr.details(name)),
        }
    }
    /// 422 Invalid with causes; `kind` is the object's Kind, as real servers name it here.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = match summary.len() {
            0 => format!("{qualified} \"{name}\" is invalid"),
            1 => format!("{qualified} \"{name}\" is invalid: {}", summary[0]),
            _ => format!(
                "{qualified} \"{name}\" is invalid: [{}]",
                summary.join(", ")
            ),
        };
        let mut d = serde_json::Map::new();
        d.insert("name".into(), json!(name));
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            ),
        );
        ApiError {
            code: 422,
            reason: "Invalid".into(),
            message,
            details: Some(Value::Object(d)),
        }
    }
    /// 422 for a JSON patch whose `test` op failed, exactly as kube-apiserver answers it.
    pub fn patch_test_failed() -> Self {
        ApiError {
            code: 422,
            reason: "Invalid".into(),
            message: "the server rejected our request due to an error in our request".into(),
            details: Some(json!({})),
        }
    }
    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }
    /// 401.
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }
    /// 410 Expired, sent as a watch ERROR event.
    pub fn expired(rv: u64, oldest: u64) -> Self {
        ApiError::new(
            410,
            "Expired",
            format!("too old resource version: {rv} ({oldest})"),
        )
    }
    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }
    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(ct: &str) -> Self {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"))
    }
    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "InternalError", message)
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message));
        m.insert("reason".into(), json!(self.reason));
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }
}
