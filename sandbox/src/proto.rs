//! Decoding of Kubernetes protobuf request bodies for the built-in types kubectl sends that
//! way (`kubectl create secret|configmap|namespace|serviceaccount|token|role|rolebinding|
//! clusterrole|clusterrolebinding` and `kubectl auth can-i|whoami` use
//! `application/vnd.kubernetes.protobuf`).
//!
//! The wire form is the magic `k8s\0` followed by a `runtime.Unknown` message whose `raw`
//! field holds the typed object. Only the fields of the types the sandbox serves are
//! described here (from k8s.io/api/core/v1/generated.proto and apimachinery's meta/v1);
//! unknown fields are skipped, as protobuf allows.

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::ApiError;

#[derive(Clone, Copy)]
enum F {
    Str,
    Bytes,
    Int,
    Bool,
    Time,
    Msg(&'static [(u32, &'static str, F)]),
    RepStr,
    RepMsg(&'static [(u32, &'static str, F)]),
    MapStrStr,
    MapStrBytes,
}

type Schema = &'static [(u32, &'static str, F)];

const OWNER_REF: Schema = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];

const OBJECT_META: Schema = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "generation", F::Int),
    (8, "creationTimestamp", F::Time),
    (11, "labels", F::MapStrStr),
    (12, "annotations", F::MapStrStr),
    (13, "ownerReferences", F::RepMsg(OWNER_REF)),
    (14, "finalizers", F::RepStr),
];

const SECRET: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStrBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStrStr),
    (5, "immutable", F::Bool),
];

const CONFIG_MAP: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStrStr),
    (3, "binaryData", F::MapStrBytes),
    (4, "immutable", F::Bool),
];

const OBJECT_REFERENCE: Schema = &[
    (1, "kind", F::Str),
    (2, "namespace", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "fieldPath", F::Str),
];
const SERVICE_ACCOUNT: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "secrets", F::RepMsg(OBJECT_REFERENCE)),
    (3, "imagePullSecrets", F::RepMsg(&[(1, "name", F::Str)])),
    (4, "automountServiceAccountToken", F::Bool),
];

const NAMESPACE_SPEC: Schema = &[(1, "finalizers", F::RepStr)];
const NAMESPACE: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(NAMESPACE_SPEC)),
];

// rbac.authorization.k8s.io/v1 (k8s.io/api/rbac/v1/generated.proto).
const POLICY_RULE: Schema = &[
    (1, "verbs", F::RepStr),
    (2, "apiGroups", F::RepStr),
    (3, "resources", F::RepStr),
    (4, "resourceNames", F::RepStr),
    (5, "nonResourceURLs", F::RepStr),
];
const LABEL_SELECTOR_REQUIREMENT: Schema = &[
    (1, "key", F::Str),
    (2, "operator", F::Str),
    (3, "values", F::RepStr),
];
const LABEL_SELECTOR: Schema = &[
    (1, "matchLabels", F::MapStrStr),
    (2, "matchExpressions", F::RepMsg(LABEL_SELECTOR_REQUIREMENT)),
];
const AGGREGATION_RULE: Schema = &[(1, "clusterRoleSelectors", F::RepMsg(LABEL_SELECTOR))];
const ROLE: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "rules", F::RepMsg(POLICY_RULE)),
];
const CLUSTER_ROLE: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "rules", F::RepMsg(POLICY_RULE)),
    (3, "aggregationRule", F::Msg(AGGREGATION_RULE)),
];
const SUBJECT: Schema = &[
    (1, "kind", F::Str),
    (2, "apiGroup", F::Str),
    (3, "name", F::Str),
    (4, "namespace", F::Str),
];
const ROLE_REF: Schema = &[
    (1, "apiGroup", F::Str),
    (2, "kind", F::Str),
    (3, "name", F::Str),
];
const BINDING: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "subjects", F::RepMsg(SUBJECT)),
    (3, "roleRef", F::Msg(ROLE_REF)),
];

// authorization.k8s.io/v1 and authentication.k8s.io/v1: the reviews kubectl auth sends.
const RESOURCE_ATTRIBUTES: Schema = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];
const NON_RESOURCE_ATTRIBUTES: Schema = &[(1, "path", F::Str), (2, "verb", F::Str)];
const SELF_ACCESS_SPEC: Schema = &[
    (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", F::Msg(NON_RESOURCE_ATTRIBUTES)),
];
const ACCESS_SPEC: Schema = &[
    (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", F::Msg(NON_RESOURCE_ATTRIBUTES)),
    (3, "user", F::Str),
    (4, "groups", F::RepStr),
    (6, "uid", F::Str),
];
const SELF_ACCESS_REVIEW: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(SELF_ACCESS_SPEC)),
];
const ACCESS_REVIEW: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(ACCESS_SPEC)),
];
const RULES_REVIEW: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(&[(1, "namespace", F::Str)])),
];
const SELF_SUBJECT_REVIEW: Schema = &[(1, "metadata", F::Msg(OBJECT_META))];
const TOKEN_REVIEW: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[(1, "token", F::Str), (2, "audiences", F::RepStr)]),
    ),
];

// `kubectl create token`: authentication.k8s.io/v1 TokenRequest (field 4 is
// expirationSeconds, 3 boundObjectRef, as generated.proto numbers them).
const BOUND_OBJECT_REFERENCE: Schema = &[
    (1, "kind", F::Str),
    (2, "apiVersion", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
];
const TOKEN_REQUEST: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "audiences", F::RepStr),
            (4, "expirationSeconds", F::Int),
            (3, "boundObjectRef", F::Msg(BOUND_OBJECT_REFERENCE)),
        ]),
    ),
];

const TYPE_META: Schema = &[(1, "apiVersion", F::Str), (2, "kind", F::Str)];

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf body of the request is malformed")
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(malformed)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed())
    }
    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let n = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(malformed)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn skip(&mut self, wire: u64) -> Result<(), ApiError> {
        match wire {
            0 => {
                self.varint()?;
            }
            1 => self.pos += 8,
            2 => {
                self.bytes()?;
            }
            5 => self.pos += 4,
            _ => return Err(malformed()),
        }
        if self.pos > self.buf.len() {
            return Err(malformed());
        }
        Ok(())
    }
    /// Next (field number, wire type), or None at the end.
    fn tag(&mut self) -> Result<Option<(u32, u64)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let t = self.varint()?;
        Ok(Some(((t >> 3) as u32, t & 7)))
    }
}

fn utf8(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed())
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), json!(""));
    while let Some((f, w)) = r.tag()? {
        match (f, w) {
            (1, 2) => k = utf8(r.bytes()?)?,
            (2, 2) => {
                let raw = r.bytes()?;
                v = if bytes_value {
                    json!(base64::engine::general_purpose::STANDARD.encode(raw))
                } else {
                    json!(utf8(raw)?)
                };
            }
            _ => r.skip(w)?,
        }
    }
    Ok((k, v))
}

fn decode_msg(b: &[u8], schema: Schema) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut out = Map::new();
    while let Some((field, wire)) = r.tag()? {
        let Some((_, name, ty)) = schema.iter().find(|(n, _, _)| *n == field) else {
            r.skip(wire)?;
            continue;
        };
        let name = name.to_string();
        match (*ty, wire) {
            (F::Str, 2) => {
                // NB: proto2 sends empty strings explicitly; JSON omits them (omitempty).
                let v = utf8(r.bytes()?)?;
                if !v.is_empty() {
                    out.insert(name, json!(v));
                }
            }
            (F::Bytes, 2) => {
                out.insert(
                    name,
                    json!(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
                );
            }
            (F::Int, 0) => {
                let v = r.varint()? as i64;
                if v != 0 {
                    out.insert(name, json!(v));
                }
            }
            (F::Bool, 0) => {
                out.insert(name, json!(r.varint()? != 0));
            }
            (F::Time, 2) => {
                let t = decode_msg(r.bytes()?, &[(1, "seconds", F::Int), (2, "nanos", F::Int)])?;
                let secs = t["seconds"].as_i64().unwrap_or(0);
                if secs == 0 {
                    continue;
                }
                if let Ok(ts) = jiff::Timestamp::from_second(secs) {
                    out.insert(name, json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                }
            }
            (F::Msg(s), 2) => {
                out.insert(name, decode_msg(r.bytes()?, s)?);
            }
            (F::RepStr, 2) => {
                let v = utf8(r.bytes()?)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .ok_or_else(malformed)?
                    .push(json!(v));
            }
            (F::RepMsg(s), 2) => {
                let v = decode_msg(r.bytes()?, s)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .ok_or_else(malformed)?
                    .push(v);
            }
            (F::MapStrStr, 2) | (F::MapStrBytes, 2) => {
                let (k, v) = map_entry(r.bytes()?, matches!(ty, F::MapStrBytes))?;
                out.entry(name)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .ok_or_else(malformed)?
                    .insert(k, v);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(Value::Object(out))
}

/// Decode a `k8s\0`-framed protobuf body of the given built-in kind into its JSON form.
pub fn decode(body: &[u8], kind: &str) -> Result<Value, ApiError> {
    let schema = match kind {
        "Secret" => SECRET,
        "ConfigMap" => CONFIG_MAP,
        "Namespace" => NAMESPACE,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "TokenRequest" => TOKEN_REQUEST,
        "Role" => ROLE,
        "ClusterRole" => CLUSTER_ROLE,
        "RoleBinding" | "ClusterRoleBinding" => BINDING,
        "SelfSubjectAccessReview" => SELF_ACCESS_REVIEW,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => ACCESS_REVIEW,
        "SelfSubjectRulesReview" => RULES_REVIEW,
        "SelfSubjectReview" => SELF_SUBJECT_REVIEW,
        "TokenReview" => TOKEN_REVIEW,
        other => {
            return Err(ApiError::unsupported_media_type(&format!(
                "application/vnd.kubernetes.protobuf for {other}: send JSON"
            )))
        }
    };
    let inner = body.strip_prefix(b"k8s\0").ok_or_else(malformed)?;
    let unknown = decode_msg(
        inner,
        &[(1, "typeMeta", F::Msg(TYPE_META)), (2, "raw", F::Bytes)],
    )?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(unknown["raw"].as_str().unwrap_or(""))
        .map_err(|_| malformed())?;
    let mut obj = decode_msg(&raw, schema)?;
    obj["apiVersion"] = unknown["typeMeta"]["apiVersion"].clone();
    obj["kind"] = unknown["typeMeta"]["kind"].clone();
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((n << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn a_secret_framed_as_kubectl_sends_it_decodes_to_its_json_form() {
        let meta = [field(1, b"s1"), field(3, b"demo")].concat();
        let entry = [field(1, b"password"), field(2, b"pw")].concat();
        let secret = [
            field(1, &meta),
            field(2, &entry),
            field(3, b"kubernetes.io/basic-auth"),
        ]
        .concat();
        let tm = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &tm), field(2, &secret)].concat();
        let v = decode(&body, "Secret").unwrap();
        assert_eq!(v["metadata"]["name"], "s1");
        assert_eq!(v["metadata"]["namespace"], "demo");
        assert_eq!(v["data"]["password"], "cHc=");
        assert_eq!(v["type"], "kubernetes.io/basic-auth");
        assert_eq!(v["kind"], "Secret");
    }
}
