//! ServiceAccounts and the tokens kube-apiserver issues for them.
//!
//! - kube-controller-manager's serviceaccounts controller: every namespace has a `default`
//!   ServiceAccount, made when the namespace appears and made again when it is deleted
//!   ([`run`], [`ensure_default`]).
//! - TokenRequest, `POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`
//!   (`kubectl create token`): kube-apiserver's TokenREST ([`token_request`]). The token is
//!   a bound service account JWT ([`Issuer::issue`]): `iss`, `sub`
//!   (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`, `iat`, `nbf`, `jti` and the
//!   `kubernetes.io` claim naming the namespace, the ServiceAccount (name, uid) and the
//!   Pod or Secret it is bound to, signed by the sandbox's key ([`super::jwt`]).
//! - Authenticating those tokens, as kube-apiserver's service account token authenticator
//!   and its bound-token validator do ([`authenticate`]): the issuer picks the
//!   authenticator, then the signature, the audiences, the times (with go-jose's minute of
//!   leeway) and that the ServiceAccount (and the bound Pod or Secret) still exists with
//!   the uid the token names. Refusals carry the validator's words, which TokenReview
//!   reports; an API request only sees 401.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::error::{ApiError, Cause, Gr};
use crate::registry::ResourceDef;
use crate::store::ChangeType;
use crate::Shared;

use super::jwt::{self, Signer};
use super::UserInfo;

/// The issuer of the sandbox's tokens, and the API server's audience: what kubeadm gives
/// kube-apiserver (`--service-account-issuer`; `--api-audiences` defaults to it).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The lifetime of a token when the request names none (TokenRequestSpec's default).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a TokenRequest may ask for (ValidateTokenRequest): 10 minutes.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// How long after `exp` (and before `nbf`) a token is still accepted: go-jose's
/// `jwt.DefaultLeeway`, which kube-apiserver's validator uses.
pub const LEEWAY_SECONDS: i64 = 60;
/// The ServiceAccount every namespace has.
pub const DEFAULT: &str = "default";
/// The extra key naming the credential a request was made with (`JTI=<jti>`).
pub const CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";
/// The authentication.k8s.io group.
const AUTHN_GROUP: &str = "authentication.k8s.io";

/// The sandbox's token issuer: its signing key and its clock.
#[derive(Debug)]
pub struct Issuer {
    signer: Signer,
    /// Seconds the issuer's clock runs ahead of the system's ([`Issuer::advance`]).
    offset: AtomicI64,
}

impl Default for Issuer {
    fn default() -> Self {
        Issuer {
            signer: Signer::generate(),
            offset: AtomicI64::new(0),
        }
    }
}

/// An object a token is bound to: a Pod or a Secret in the ServiceAccount's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// `Pod` or `Secret`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

/// A token as issued.
#[derive(Clone, Debug)]
pub struct Minted {
    /// The JWT.
    pub token: String,
    /// `iat`, seconds since the epoch on the issuer's clock.
    pub issued_at: i64,
    /// `exp`.
    pub expires_at: i64,
}

impl Issuer {
    /// Now on the issuer's clock, in seconds since the epoch.
    pub fn now(&self) -> i64 {
        jiff::Timestamp::now().as_second() + self.offset.load(Ordering::Relaxed)
    }

    /// Move the issuer's clock (issuing and validating tokens alike) `secs` ahead, so
    /// tokens expire without a test waiting for them.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// A token for the ServiceAccount object `sa`, valid for `audiences` from now for
    /// `lifetime` seconds, bound to `bound` when given. No minimum lifetime here: that is
    /// the TokenRequest API's rule ([`token_request`]).
    pub fn issue(
        &self,
        sa: &Value,
        audiences: &[String],
        lifetime: i64,
        bound: Option<&Bound>,
    ) -> Minted {
        let ns = sa["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = sa["metadata"]["name"].as_str().unwrap_or_default();
        let now = self.now();
        // NB: go-jose writes claims with sorted keys, nested ones too.
        let mut k8s = serde_json::Map::new();
        k8s.insert("namespace".into(), json!(ns));
        if let Some(b) = bound {
            k8s.insert(b.kind.to_lowercase(), json!({"name": b.name, "uid": b.uid}));
        }
        k8s.insert(
            "serviceaccount".into(),
            json!({"name": name, "uid": sa["metadata"]["uid"]}),
        );
        let claims = json!({
            "aud": audiences,
            "exp": now + lifetime,
            "iat": now,
            "iss": ISSUER,
            "jti": crate::store::new_uid(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": super::service_account_user(ns, name),
        });
        Minted {
            token: self.signer.sign(&claims),
            issued_at: now,
            expires_at: now + lifetime,
        }
    }
}

fn service_accounts(shared: &Shared) -> Result<&ResourceDef, ApiError> {
    shared
        .registry
        .find("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::internal("serviceaccounts are not served"))
}

/// Create the `default` ServiceAccount of `namespace` unless it exists (or the namespace
/// does not), as the serviceaccounts controller does.
pub fn ensure_default(shared: &Shared, namespace: &str) {
    let Ok(def) = service_accounts(shared) else {
        return;
    };
    if shared.store.get(def, namespace, DEFAULT).is_ok() {
        return;
    }
    let sa = json!({"metadata": {"name": DEFAULT, "managedFields": [{"manager": "kube-controller-manager"}]}});
    // NB: 404 when the namespace went meanwhile, 409 when someone made it first: both fine.
    let _ = shared.store.create(def, namespace, sa, false);
}

/// [`ensure_default`] in every namespace.
pub fn ensure_all(shared: &Shared) {
    let Some(ns_def) = shared.registry.find("", "v1", "namespaces") else {
        return;
    };
    let (namespaces, _) = shared.store.list(ns_def, None, None);
    for ns in namespaces {
        ensure_default(shared, ns["metadata"]["name"].as_str().unwrap_or_default());
    }
}

/// The serviceaccounts controller: a `default` ServiceAccount in every namespace, made
/// when a namespace is added and when its `default` is deleted. One task, waking on the
/// store's changes and acting only on those two.
pub async fn run(shared: Arc<Shared>) {
    let mut rx = shared.store.subscribe();
    ensure_all(&shared);
    loop {
        match rx.recv().await {
            Ok(ch) => {
                let name = ch.object["metadata"]["name"].as_str().unwrap_or_default();
                match (ch.type_key.as_str(), ch.ty) {
                    ("namespaces", ChangeType::Added) => ensure_default(&shared, name),
                    ("serviceaccounts", ChangeType::Deleted) if name == DEFAULT => {
                        ensure_default(&shared, &ch.namespace)
                    }
                    _ => {}
                }
            }
            Err(RecvError::Lagged(_)) => ensure_all(&shared),
            Err(RecvError::Closed) => return,
        }
    }
}

/// `TokenRequest.authentication.k8s.io "<name>" is invalid: <field>: Invalid value: ...`
fn invalid(name: &str, field: &str, message: String) -> ApiError {
    ApiError::invalid(
        AUTHN_GROUP,
        "TokenRequest",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    )
}

/// Answer a TokenRequest for the ServiceAccount `ns/name` as kube-apiserver's TokenREST:
/// the body's name and namespace, when given, must be the URL's (422); the ServiceAccount
/// must exist (404); audiences default to the API server's, `expirationSeconds` to 3600,
/// and it must be 600 to 2^32 (422, in ValidateTokenRequest's words); a `boundObjectRef`
/// must name an existing Pod running as this ServiceAccount or a Secret, with the uid
/// given (400, 404, 409). Answers the TokenRequest with metadata (name, namespace,
/// creationTimestamp), spec as defaulted, and status (token, expirationTimestamp).
pub fn token_request(
    shared: &Shared,
    ns: &str,
    name: &str,
    req: &Value,
) -> Result<Value, ApiError> {
    let meta = &req["metadata"];
    for (field, want) in [("name", name), ("namespace", ns)] {
        if let Some(n) = meta[field].as_str().filter(|n| !n.is_empty() && *n != want) {
            return Err(invalid(
                name,
                &format!("metadata.{field}"),
                format!(
                    "Invalid value: {n:?}: must match the service account {field} if specified"
                ),
            ));
        }
    }
    let sa = shared.store.get(service_accounts(shared)?, ns, name)?;
    let spec = &req["spec"];
    let mut audiences = super::strings(&spec["audiences"]);
    if audiences.is_empty() {
        audiences = vec![ISSUER.to_string()];
    }
    let lifetime = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    let message = if lifetime < MIN_EXPIRATION_SECONDS {
        Some("may not specify a duration less than 10 minutes")
    } else if lifetime > 1 << 32 {
        Some("may not specify a duration larger than 2^32 seconds")
    } else {
        None
    };
    if let Some(m) = message {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            format!("Invalid value: {lifetime}: {m}"),
        ));
    }
    let bound_ref = spec["boundObjectRef"]
        .as_object()
        .map(|_| &spec["boundObjectRef"]);
    let bound = match bound_ref {
        Some(r) => Some(bound_object(shared, ns, name, r)?),
        None => None,
    };
    let created = crate::store::now_rfc3339();
    let minted = shared
        .users
        .issuer
        .issue(&sa, &audiences, lifetime, bound.as_ref());
    let mut metadata = meta.as_object().cloned().unwrap_or_default();
    metadata.insert("name".into(), json!(name));
    metadata.insert("namespace".into(), json!(ns));
    metadata.insert("creationTimestamp".into(), json!(created));
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": format!("{AUTHN_GROUP}/v1"),
        "metadata": metadata,
        "spec": {
            "audiences": audiences,
            "expirationSeconds": lifetime,
            "boundObjectRef": bound_ref.cloned().unwrap_or(Value::Null),
        },
        "status": {
            "token": minted.token,
            "expirationTimestamp": rfc3339(minted.expires_at),
        },
    }))
}

/// The object a TokenRequest's `boundObjectRef` names, checked as TokenREST checks it.
fn bound_object(shared: &Shared, ns: &str, sa: &str, r: &Value) -> Result<Bound, ApiError> {
    let kind = r["kind"].as_str().unwrap_or_default();
    let api_version = r["apiVersion"].as_str().unwrap_or_default();
    let name = r["name"].as_str().unwrap_or_default();
    let (group, version) = crate::registry::split_api_version(api_version);
    let plural = match (group, kind) {
        ("", "Pod") => "pods",
        ("", "Secret") => "secrets",
        // NB: 1.32 binds tokens to Nodes too (ServiceAccountTokenNodeBinding, beta); the
        // sandbox has no Nodes, so every one named is not found.
        ("", "Node") => {
            return Err(ApiError::not_found(
                Gr {
                    group: "",
                    plural: "nodes",
                },
                name,
            ))
        }
        _ => {
            // NB: schema.GroupVersionKind's String(): `group/version, Kind=kind`.
            let gvk = if group.is_empty() {
                format!("/{version}, Kind={kind}")
            } else {
                format!("{group}/{version}, Kind={kind}")
            };
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {gvk}"
            )));
        }
    };
    let def = shared
        .registry
        .find("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
    let obj = shared.store.get(def, ns, name)?;
    if kind == "Pod" {
        // NB: the ServiceAccount admission plugin sets an empty serviceAccountName to
        // `default` on a real server; the sandbox stores pods as given.
        let runs_as = obj["spec"]["serviceAccountName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT);
        if runs_as != sa {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {sa:?} to pod running with different serviceaccount name."
            )));
        }
    }
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let given = r["uid"].as_str().unwrap_or_default();
    if !given.is_empty() && given != uid {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {kind} {name:?}: the UID in the bound object reference ({given}) does not match the UID in record. The object might have been deleted and then recreated"),
        ));
    }
    Ok(Bound {
        kind: kind.into(),
        name: name.into(),
        uid,
    })
}

/// RFC 3339 at second precision of seconds since the epoch.
fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Authenticate a bearer token as a service account token for `audiences`: `None` when it
/// is not one (not a JWT, or another issuer's); otherwise the user (without
/// `system:authenticated`) and the audiences it is good for, or why it is refused, in
/// kube-apiserver's words.
pub fn authenticate(
    shared: &Shared,
    token: &str,
    audiences: &[String],
) -> Option<Result<(UserInfo, Vec<String>), String>> {
    let unverified = jwt::unverified_claims(token)?;
    if unverified["iss"] != ISSUER {
        return None;
    }
    Some(validate(shared, token, audiences))
}

fn validate(
    shared: &Shared,
    token: &str,
    audiences: &[String],
) -> Result<(UserInfo, Vec<String>), String> {
    let issuer = &shared.users.issuer;
    let claims = match issuer.signer.verify(token) {
        Some(Ok(c)) => c,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err(jwt::BAD_SIGNATURE.to_string()),
    };
    // The audiences: a token with none is good for the API server's (implicit) ones.
    let mut token_auds = match &claims["aud"] {
        Value::String(s) => vec![s.clone()],
        other => super::strings(other),
    };
    if token_auds.is_empty() {
        token_auds = vec![ISSUER.to_string()];
    }
    let good_for: Vec<String> = token_auds
        .iter()
        .filter(|a| audiences.contains(a))
        .cloned()
        .collect();
    if good_for.is_empty() {
        return Err(format!(
            "token audiences {} is invalid for the target audiences {}",
            go_quoted(&token_auds),
            go_quoted(audiences)
        ));
    }
    let now = issuer.now();
    let at = |k: &str| claims[k].as_i64();
    if at("nbf").is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
        return Err("service account token is not valid yet".into());
    }
    if at("exp").is_some_and(|exp| now - LEEWAY_SECONDS > exp) {
        return Err("service account token has expired".into());
    }
    if at("iat").is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
        return Err(
            "service account token claims could not be validated due to unexpected validation error"
                .into(),
        );
    }
    let k8s = &claims["kubernetes.io"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (ns, name, uid) = (
        s(&k8s["namespace"]),
        s(&k8s["serviceaccount"]["name"]),
        s(&k8s["serviceaccount"]["uid"]),
    );
    if ns.is_empty() || name.is_empty() {
        return Err(
            "service account token claims could not be validated due to unexpected private claim"
                .into(),
        );
    }
    let sa_def = service_accounts(shared).map_err(|e| e.message)?;
    let sa = shared
        .store
        .get(sa_def, &ns, &name)
        .map_err(|e| e.message)?;
    let sa_uid = sa["metadata"]["uid"].as_str().unwrap_or_default();
    if sa_uid != uid {
        return Err(format!(
            "service account UID ({sa_uid}) does not match claim ({uid})"
        ));
    }
    let mut user = UserInfo::service_account(&ns, &name);
    user.uid = uid;
    if let Some(jti) = claims["jti"].as_str().filter(|j| !j.is_empty()) {
        user.extra
            .insert(CREDENTIAL_ID.into(), vec![format!("JTI={jti}")]);
    }
    for (kind, plural) in [("secret", "secrets"), ("pod", "pods")] {
        let Some(r) = k8s.get(kind).filter(|r| r.is_object()) else {
            continue;
        };
        let (bound_name, bound_uid) = (s(&r["name"]), s(&r["uid"]));
        let def = shared
            .registry
            .find("", "v1", plural)
            .ok_or_else(|| format!("{plural} are not served"))?;
        let obj = shared
            .store
            .get(def, &ns, &bound_name)
            .map_err(|_| "service account token has been invalidated".to_string())?;
        let obj_uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
        if obj_uid != bound_uid {
            return Err(format!(
                "{} UID ({obj_uid}) does not match service account {kind} ref claim ({bound_uid})",
                if kind == "pod" { "pod" } else { "secret" }
            ));
        }
        if kind == "pod" {
            let extra = &mut user.extra;
            extra.insert(
                "authentication.kubernetes.io/pod-name".into(),
                vec![bound_name],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".into(),
                vec![bound_uid],
            );
        }
    }
    Ok((user, good_for))
}

/// A list as Go's `%q` prints a `[]string`: `["a" "b"]`.
fn go_quoted(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn shared() -> Shared {
        let s = Shared::new(&crate::Options::empty());
        fixtures::load(&s, crate::Fixtures::Empty);
        ensure_all(&s);
        s
    }

    fn sa(s: &Shared, ns: &str, name: &str) -> Value {
        s.store.get(service_accounts(s).unwrap(), ns, name).unwrap()
    }

    fn api() -> Vec<String> {
        vec![ISSUER.to_string()]
    }

    #[test]
    fn every_namespace_gets_a_default_service_account() {
        let s = shared();
        for ns in ["default", "demo"] {
            let d = sa(&s, ns, DEFAULT);
            assert_eq!(d["kind"], "ServiceAccount");
            assert_eq!(
                d["metadata"]["managedFields"][0]["manager"],
                "kube-controller-manager"
            );
        }
    }

    #[test]
    fn a_token_request_is_defaulted_and_answers_a_token_for_the_service_account() {
        let s = shared();
        let answer = token_request(&s, "demo", DEFAULT, &json!({"spec": {}})).unwrap();
        assert_eq!(answer["spec"]["audiences"], json!([ISSUER]));
        assert_eq!(answer["spec"]["expirationSeconds"], 3600);
        assert_eq!(answer["spec"]["boundObjectRef"], Value::Null);
        assert_eq!(answer["metadata"]["name"], DEFAULT);
        assert_eq!(answer["metadata"]["namespace"], "demo");
        let token = answer["status"]["token"].as_str().unwrap();
        let claims = jwt::unverified_claims(token).unwrap();
        assert_eq!(claims["sub"], "system:serviceaccount:demo:default");
        assert_eq!(
            claims["kubernetes.io"]["serviceaccount"]["uid"],
            sa(&s, "demo", DEFAULT)["metadata"]["uid"]
        );
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
        let (user, auds) = authenticate(&s, token, &api()).unwrap().unwrap();
        assert_eq!(user.name, "system:serviceaccount:demo:default");
        assert_eq!(
            user.extra[CREDENTIAL_ID],
            vec![format!("JTI={}", claims["jti"].as_str().unwrap())]
        );
        assert_eq!(auds, api());
    }

    #[test]
    fn token_requests_are_refused_in_the_apiservers_words() {
        let s = shared();
        let e = token_request(&s, "demo", "nope", &json!({"spec": {}})).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, "serviceaccounts \"nope\" not found")
        );
        let e = token_request(
            &s,
            "demo",
            DEFAULT,
            &json!({"spec": {"expirationSeconds": 599}}),
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.message, "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes");
        let bound = |kind: &str, name: &str| json!({"spec": {"boundObjectRef": {"kind": kind, "apiVersion": "v1", "name": name}}});
        let e = token_request(&s, "demo", DEFAULT, &bound("ConfigMap", "x")).unwrap_err();
        assert_eq!(
            e.message,
            "cannot bind token to object of type /v1, Kind=ConfigMap"
        );
        let e = token_request(&s, "demo", DEFAULT, &bound("Secret", "x")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, "secrets \"x\" not found")
        );
    }

    #[test]
    fn a_token_stops_working_when_it_expires_or_its_service_account_is_replaced() {
        let s = shared();
        let account = sa(&s, "demo", DEFAULT);
        let t = s.users.issuer.issue(&account, &api(), 600, None).token;
        assert!(authenticate(&s, &t, &api()).unwrap().is_ok());
        let e = authenticate(&s, &t, &["other".to_string()])
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e,
            format!(
                "token audiences [\"{ISSUER}\"] is invalid for the target audiences [\"other\"]"
            )
        );
        // NB: a few seconds' margin: the real clock moves on while the test runs.
        s.users.issuer.advance(600 + LEEWAY_SECONDS - 5);
        assert!(
            authenticate(&s, &t, &api()).unwrap().is_ok(),
            "within the leeway"
        );
        s.users.issuer.advance(6);
        assert_eq!(
            authenticate(&s, &t, &api()).unwrap().unwrap_err(),
            "service account token has expired"
        );
        let t = s.users.issuer.issue(&account, &api(), 600, None).token;
        let def = service_accounts(&s).unwrap();
        s.store.delete(def, "demo", DEFAULT, false, None).unwrap();
        assert_eq!(
            authenticate(&s, &t, &api()).unwrap().unwrap_err(),
            "serviceaccounts \"default\" not found"
        );
        ensure_default(&s, "demo");
        let e = authenticate(&s, &t, &api()).unwrap().unwrap_err();
        assert!(e.starts_with("service account UID ("), "{e}");
        assert!(authenticate(&s, "not-a-jwt", &api()).is_none());
    }
}
