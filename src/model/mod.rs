//! The one typed model of the objects the plugin reads: KubeDB and Arc databases
//! ([`DbItem`]), KubeDB ops requests ([`ops::OpsItem`]), Arc's rotation state
//! ([`arc::ArcState`]) and Secrets without their values ([`secret::SecretSummary`]). Only the
//! fields the plugin uses are decoded, so a page of 500 databases or ops requests decodes
//! into a few hundred kilobytes and every other field (managedFields, last-applied
//! annotations, pod templates) is skipped unread. The write path and the read path both
//! decide from these types.

pub mod arc;
pub mod consumers;
pub mod ops;
pub mod secret;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::duration::human_secs;
use crate::engines::{EngineSpec, PrevLayout};

/// The plugin's name as a literal, for [`MANAGER`] and [`MANAGED_BY_SELECTOR`].
macro_rules! manager {
    () => {
        "kubectl-rotate"
    };
}

/// The name the plugin signs its writes with: the `app.kubernetes.io/managed-by` label of
/// the objects it creates, the field manager of its writes, its Events' source component.
pub const MANAGER: &str = manager!();

/// The label that says who manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The label selector of every object the plugin created.
pub const MANAGED_BY_SELECTOR: &str = concat!("app.kubernetes.io/managed-by=", manager!());

/// The labels of every object the plugin creates for database `db`: the database it is
/// for (`app.kubernetes.io/instance`, as KubeDB labels its own) and who manages it.
pub fn own_labels(db: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/instance".to_string(), db.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
    ])
}

/// Annotation keys the plugin writes on the objects it changes.
pub mod annotations {
    /// `rotate` or `rollback`: what the plugin last did to the object.
    pub const LAST_ACTION: &str = "rotate.kubectl.dev/last-action";
    /// The generation before the plugin's last change (Arc).
    pub const PREVIOUS_GENERATION: &str = "rotate.kubectl.dev/previous-generation";
    /// The generation the plugin's last change wrote (Arc).
    pub const GENERATION: &str = "rotate.kubectl.dev/generation";
    /// When the plugin's last change was made (RFC 3339).
    pub const CHANGED_AT: &str = "rotate.kubectl.dev/changed-at";
    /// A random id of the write, to tell after a lost response whether it landed.
    pub const REQUEST_ID: &str = "rotate.kubectl.dev/request-id";
    /// Who wrote it (the name the API server authenticated, else the kubeconfig
    /// context's user), on the ops requests the plugin creates.
    pub const USER: &str = "rotate.kubectl.dev/user";
    /// The plugin's last changes to an Arc instance, newest first (a bounded JSON list;
    /// see `model::arc::Change`).
    pub const HISTORY: &str = "rotate.kubectl.dev/history";
}

use annotations as ann;

/// Parses an RFC 3339 timestamp as the API writes them.
pub fn parse_ts(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Seconds from `ts` to `now` (never negative), if `ts` parses.
pub fn age_secs(ts: &str, now: jiff::Timestamp) -> Option<i64> {
    parse_ts(ts).map(|t| (now.as_second() - t.as_second()).max(0))
}

/// `{name: ...}` references.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct NameRef {
    /// The referenced object's name.
    pub name: String,
}

/// KubeDB `spec.authSecret`: the Secret, and the operator's own rotation hint.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct AuthSecretSpec {
    /// The Secret's name.
    pub name: String,
    /// `rotateAfter` (a Go duration, e.g. `720h`): KubeDB then recommends a rotation, which
    /// someone must approve.
    pub rotate_after: Option<String>,
}

/// The metadata we keep.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    /// The object's name.
    pub name: String,
    /// Its namespace (empty in a namespaced list's items on some servers).
    pub namespace: String,
    /// Its uid: owner references and request names use it.
    pub uid: Option<String>,
    /// creationTimestamp.
    pub creation_timestamp: Option<String>,
    /// metadata.generation.
    pub generation: Option<i64>,
    /// Only the plugin's own annotations (`rotate.kubectl.dev/...`).
    #[serde(deserialize_with = "own_annotations")]
    pub annotations: BTreeMap<String, String>,
}

/// Keeps only the plugin's annotations; a database's last-applied-configuration can be
/// kilobytes and is of no use here.
fn own_annotations<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let all: Option<BTreeMap<String, String>> = Option::deserialize(d)?;
    Ok(all
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("rotate.kubectl.dev/"))
        .collect())
}

/// One certificate of KubeDB's `spec.tls.certificates`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct CertRef {
    /// `server`, `client`, ...
    pub alias: String,
    /// The Secret, when not the default `<db>-<alias>-cert`.
    pub secret_name: Option<String>,
}

/// KubeDB's `spec.tls`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TlsSpec {
    /// The certificates, if listed.
    pub certificates: Vec<CertRef>,
}

/// Arc's `spec.security`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Security {
    /// The admin login Secret.
    pub admin_login_secret: Option<String>,
    /// A user-provided service certificate Secret.
    pub service_certificate_secret: Option<String>,
}

/// Arc's `spec.update`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Update {
    /// `managedCredentialsGeneration`.
    pub managed_credentials_generation: Option<i64>,
}

/// The spec fields of a database (KubeDB or Arc) we use.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct DbSpec {
    /// KubeDB `spec.authSecret`.
    pub auth_secret: Option<AuthSecretSpec>,
    /// KubeDB `spec.tls`.
    pub tls: Option<TlsSpec>,
    /// Arc `spec.security`.
    pub security: Option<Security>,
    /// Arc `spec.update`.
    pub update: Option<Update>,
}

/// KubeDB `status.authSecret`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct AuthStatus {
    /// Set at creation and at each rotation.
    pub last_update_timestamp: Option<String>,
}

/// The status fields of a database (KubeDB or Arc) we use.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct DbStatus {
    /// KubeDB `status.phase` (`Ready`, `Provisioning`, ...).
    pub phase: Option<String>,
    /// KubeDB auth Secret status.
    pub auth_secret: Option<AuthStatus>,
    /// Arc `status.state` (`Ready`, `Updating`, `Error`).
    pub state: Option<String>,
    /// Arc observedGeneration.
    pub observed_generation: Option<i64>,
    /// Arc `status.message`, the controller's explanation.
    pub message: Option<String>,
}

/// A database, KubeDB or Arc, as `list` needs it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DbItem {
    /// Name, namespace, uid, creation, generation and the plugin's annotations.
    pub metadata: Meta,
    /// Where the credentials and certificates are kept, and Arc's generation.
    pub spec: DbSpec,
    /// Phase or state, and when KubeDB last changed the credentials.
    pub status: DbStatus,
}

impl DbItem {
    /// The Secret holding the credentials: KubeDB `spec.authSecret.name` (default
    /// `<db><engine's auth suffix>`: `-auth`, DocumentDB `-admin-auth`), Arc
    /// `spec.security.adminLoginSecret`.
    pub fn credential_secret(&self, engine: &EngineSpec) -> Option<String> {
        if engine.prev == PrevLayout::NotApplicable {
            return self
                .spec
                .security
                .as_ref()
                .and_then(|s| s.admin_login_secret.clone());
        }
        Some(
            self.spec
                .auth_secret
                .as_ref()
                .map(|r| r.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("{}{}", self.metadata.name, engine.auth_suffix)),
        )
    }

    /// The certificate Secrets the database references: KubeDB's `spec.tls.certificates`
    /// (default names `<db>-<alias>-cert`; `server` and `client` when none is listed), Arc's
    /// `spec.security.serviceCertificateSecret`.
    pub fn tls_secrets(&self) -> Vec<String> {
        let name = &self.metadata.name;
        let mut out = Vec::new();
        if let Some(tls) = &self.spec.tls {
            if tls.certificates.is_empty() {
                // NB: KubeDB names certificates it issues `<db>-<alias>-cert` (apimachinery
                // GetCertSecretName); server and client exist for every engine with TLS.
                out.extend(["server", "client"].map(|a| format!("{name}-{a}-cert")));
            }
            for c in &tls.certificates {
                out.push(
                    c.secret_name
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| format!("{name}-{}-cert", c.alias)),
                );
            }
        }
        if let Some(s) = self
            .spec
            .security
            .as_ref()
            .and_then(|s| s.service_certificate_secret.clone())
        {
            out.push(s);
        }
        out
    }

    /// KubeDB `status.phase`, else Arc `status.state`, else `Unknown`.
    pub fn phase(&self) -> String {
        self.status
            .phase
            .clone()
            .or_else(|| self.status.state.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "Unknown".into())
    }

    /// Arc's state, in the form the Arc rules decide with.
    pub fn arc_state(&self) -> arc::ArcState {
        let a = &self.metadata.annotations;
        arc::ArcState {
            state: self.status.state.clone().unwrap_or_default(),
            generation: self.metadata.generation.unwrap_or(0),
            observed: self.status.observed_generation,
            credentials_generation: self
                .spec
                .update
                .as_ref()
                .and_then(|u| u.managed_credentials_generation)
                .unwrap_or(0),
            last_action: a.get(ann::LAST_ACTION).cloned(),
            annotated_generation: a.get(ann::GENERATION).and_then(|g| g.parse().ok()),
            message: self.status.message.clone(),
        }
    }
}

/// Decodes an object read through the dynamic API into one of the typed views; a field of
/// an unexpected shape leaves the view's default, as a LIST page would.
fn from_dynamic<T: serde::de::DeserializeOwned + Default>(obj: &kube::api::DynamicObject) -> T {
    serde_json::to_value(obj)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

impl DbItem {
    /// The typed view of a database read through the dynamic API.
    pub fn from_dynamic(obj: &kube::api::DynamicObject) -> DbItem {
        from_dynamic(obj)
    }
}

/// How long ago `ts` was, as kubectl prints ages; `<unknown>` when it does not parse.
pub fn ago(ts: Option<&str>, now: jiff::Timestamp) -> String {
    ts.and_then(|t| age_secs(t, now))
        .map(human_secs)
        .unwrap_or_else(|| "<unknown>".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;
    use serde_json::json;

    fn db(v: serde_json::Value) -> DbItem {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_the_plugins_own_annotations_are_kept() {
        let d = db(json!({"metadata": {"name": "x", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{...big...}",
            "rotate.kubectl.dev/last-action": "rotate"}}}));
        assert_eq!(d.metadata.annotations.len(), 1);
        assert_eq!(d.metadata.annotations[ann::LAST_ACTION], "rotate");
    }

    #[test]
    fn the_credential_secret_follows_spec_then_the_engine_default() {
        let pg = find("pg").unwrap();
        assert_eq!(
            db(json!({"metadata": {"name": "a"}})).credential_secret(pg),
            Some("a-auth".into())
        );
        assert_eq!(
            db(json!({"metadata": {"name": "a"}, "spec": {"authSecret": {"name": "custom"}}}))
                .credential_secret(pg),
            Some("custom".into())
        );
        assert_eq!(
            db(json!({"metadata": {"name": "d"}})).credential_secret(find("docdb").unwrap()),
            Some("d-admin-auth".into())
        );
        let mi = db(
            json!({"metadata": {"name": "m"}, "spec": {"security": {"adminLoginSecret": "m-login-secret"}}}),
        );
        assert_eq!(
            mi.credential_secret(find("sqlmi").unwrap()),
            Some("m-login-secret".into())
        );
    }

    #[test]
    fn tls_secrets_are_named_or_defaulted_per_alias() {
        let d = db(
            json!({"metadata": {"name": "pg"}, "spec": {"tls": {"issuerRef": {"name": "ca"},
            "certificates": [{"alias": "server", "secretName": "pg-tls"}, {"alias": "client"}]}}}),
        );
        assert_eq!(d.tls_secrets(), vec!["pg-tls", "pg-client-cert"]);
        let d =
            db(json!({"metadata": {"name": "ms"}, "spec": {"tls": {"issuerRef": {"name": "ca"}}}}));
        assert_eq!(d.tls_secrets(), vec!["ms-server-cert", "ms-client-cert"]);
        assert!(db(json!({"metadata": {"name": "x"}}))
            .tls_secrets()
            .is_empty());
    }
}
