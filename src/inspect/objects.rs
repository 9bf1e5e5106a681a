//! Minimal views of the objects the inspection verbs LIST: only the fields they show, so
//! a page of 500 databases or ops requests decodes into a few hundred kilobytes and every
//! other field (managedFields, last-applied annotations, pod templates) is skipped unread.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::{age_secs, RequestView, StepView};
use crate::backend::annotations as ann;
use crate::backend::kubedb::{is_terminal, ROTATE_AUTH};
use crate::engines::{EngineSpec, OpsSpec, PrevLayout};

/// `{name: ...}` references.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct NameRef {
    /// The name.
    pub name: String,
}

/// The metadata we keep.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
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
    pub auth_secret: Option<NameRef>,
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
    /// KubeDB phase.
    pub phase: Option<String>,
    /// KubeDB auth Secret status.
    pub auth_secret: Option<AuthStatus>,
    /// Arc state.
    pub state: Option<String>,
    /// Arc observedGeneration.
    pub observed_generation: Option<i64>,
    /// Arc message.
    pub message: Option<String>,
}

/// A database, KubeDB or Arc, as `list` needs it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DbItem {
    /// Metadata.
    pub metadata: Meta,
    /// Spec.
    pub spec: DbSpec,
    /// Status.
    pub status: DbStatus,
}

impl DbItem {
    /// The Secret holding the credentials: KubeDB `spec.authSecret.name` (default
    /// `<db>-auth`, DocumentDB `<db>-admin-auth`), Arc `spec.security.adminLoginSecret`.
    pub fn credential_secret(&self, engine: &EngineSpec) -> Option<String> {
        let name = &self.metadata.name;
        match engine.prev {
            PrevLayout::NotApplicable => self
                .spec
                .security
                .as_ref()
                .and_then(|s| s.admin_login_secret.clone()),
            layout => Some(
                self.spec
                    .auth_secret
                    .as_ref()
                    .map(|r| r.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| match layout {
                        PrevLayout::PasswordOnly => format!("{name}-admin-auth"),
                        _ => format!("{name}-auth"),
                    }),
            ),
        }
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

    /// Arc's state, in the form the Arc backend decides with.
    pub fn arc_state(&self) -> crate::backend::arc::ArcState {
        let a = &self.metadata.annotations;
        crate::backend::arc::ArcState {
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

/// One condition of an ops request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    /// Type.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False, Unknown.
    pub status: String,
    /// Message.
    pub message: String,
    /// When it last changed.
    pub last_transition_time: Option<String>,
}

/// `spec.authentication` of an ops request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Authentication {
    /// The user-supplied Secret.
    pub secret_ref: Option<NameRef>,
}

/// The spec of an ops request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct OpsSpecItem {
    /// `RotateAuth`, `Restart`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// The database (all kinds but ProxySQL).
    pub database_ref: Option<NameRef>,
    /// The database (ProxySQL).
    pub proxy_ref: Option<NameRef>,
    /// Where the new credential comes from.
    pub authentication: Option<Authentication>,
}

/// The status of an ops request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OpsStatus {
    /// Phase.
    pub phase: Option<String>,
    /// Conditions, in order.
    pub conditions: Vec<Condition>,
}

/// An ops request as the inspection verbs need it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OpsItem {
    /// Metadata.
    pub metadata: Meta,
    /// Spec.
    pub spec: OpsSpecItem,
    /// Status.
    pub status: OpsStatus,
}

impl OpsItem {
    /// The database it targets.
    pub fn target(&self) -> Option<&str> {
        self.spec
            .database_ref
            .as_ref()
            .or(self.spec.proxy_ref.as_ref())
            .map(|r| r.name.as_str())
    }

    /// Whether it is a RotateAuth for `db`.
    pub fn is_rotate_auth_for(&self, ops: &OpsSpec, db: &str) -> bool {
        let target = match ops.target_field {
            crate::engines::TargetField::DatabaseRef => self.spec.database_ref.as_ref(),
            crate::engines::TargetField::ProxyRef => self.spec.proxy_ref.as_ref(),
        };
        self.spec.type_ == ROTATE_AUTH && target.is_some_and(|t| t.name == db)
    }

    /// The phase; a missing one is Pending (the operator has not seen it yet).
    pub fn phase(&self) -> String {
        self.status
            .phase
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "Pending".into())
    }

    /// Whether it is still to run or running.
    pub fn in_flight(&self) -> bool {
        !is_terminal(&self.phase())
    }

    /// Ordering key: newest is greatest (creation time, then name).
    pub fn age_key(&self) -> (String, String) {
        (
            self.metadata.creation_timestamp.clone().unwrap_or_default(),
            self.metadata.name.clone(),
        )
    }

    /// What `status` and `history` show of it, seen at `now`.
    pub fn view(&self, ops: &OpsSpec, now: jiff::Timestamp) -> RequestView {
        let phase = self.phase();
        let started = self.metadata.creation_timestamp.clone();
        let last_step = self
            .status
            .conditions
            .iter()
            .filter_map(|c| c.last_transition_time.as_deref())
            .filter_map(super::parse_ts)
            .max();
        let end = if is_terminal(&phase) {
            last_step
        } else {
            Some(now)
        };
        let duration_seconds = match (started.as_deref().and_then(super::parse_ts), end) {
            (Some(s), Some(e)) => Some((e.as_second() - s.as_second()).max(0)),
            _ => None,
        };
        let reason = match phase.as_str() {
            "Failed" | "Skipped" | "Denied" => Some(self.failure_reason()),
            _ => None,
        };
        RequestView {
            kind: ops.kind.to_string(),
            name: self.metadata.name.clone(),
            phase,
            source: self.source(),
            started,
            duration_seconds,
            reason,
            steps: self
                .status
                .conditions
                .iter()
                .map(|c| StepView {
                    step: c.type_.clone(),
                    status: c.status.clone(),
                    since: c.last_transition_time.clone(),
                    message: c.message.clone(),
                })
                .collect(),
        }
    }

    /// `generated`, or `secret <name>` when a Secret supplies the new credential.
    pub fn source(&self) -> String {
        match self
            .spec
            .authentication
            .as_ref()
            .and_then(|a| a.secret_ref.as_ref())
            .filter(|r| !r.name.is_empty())
        {
            Some(r) => format!("secret {}", r.name),
            None => "generated".into(),
        }
    }

    /// Why it did not succeed: the last False condition, else the last one.
    fn failure_reason(&self) -> String {
        let c = &self.status.conditions;
        c.iter()
            .rev()
            .find(|c| c.status == "False")
            .or_else(|| c.iter().rev().find(|c| c.type_ == "Skipped"))
            .or(c.last())
            .map(|c| {
                if c.message.is_empty() {
                    c.type_.clone()
                } else {
                    format!("{}: {}", c.type_, c.message)
                }
            })
            .unwrap_or_else(|| "the operator gave no reason".into())
    }
}

/// How long ago `ts` was, as kubectl prints ages; `<unknown>` when it does not parse.
pub fn ago(ts: Option<&str>, now: jiff::Timestamp) -> String {
    ts.and_then(|t| age_secs(t, now))
        .map(super::human_age)
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

    #[test]
    fn a_request_view_has_steps_source_duration_and_why_it_failed() {
        let o: OpsItem = serde_json::from_value(json!({
            "metadata": {"name": "r", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"type": "RotateAuth", "databaseRef": {"name": "pg"}, "authentication": {"secretRef": {"name": "s"}}},
            "status": {"phase": "Failed", "conditions": [
                {"type": "RotateAuth", "status": "True", "message": "started", "lastTransitionTime": "2026-01-01T00:00:05Z"},
                {"type": "UpdateCredential", "status": "False", "message": "cannot update", "lastTransitionTime": "2026-01-01T00:01:10Z"}]}
        }))
        .unwrap();
        let ops = find("pg").unwrap().ops().unwrap();
        assert!(o.is_rotate_auth_for(ops, "pg"));
        assert!(!o.is_rotate_auth_for(ops, "other"));
        let v = o.view(ops, "2030-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(v.source, "secret s");
        assert_eq!(v.duration_seconds, Some(70), "creation to the last step");
        assert_eq!(v.reason.as_deref(), Some("UpdateCredential: cannot update"));
        assert_eq!(v.steps.len(), 2);
        assert!(!o.in_flight());
    }

    #[test]
    fn a_request_without_a_phase_is_pending_and_in_flight() {
        let o: OpsItem = serde_json::from_value(
            json!({"metadata": {"name": "r"}, "spec": {"type": "RotateAuth", "proxyRef": {"name": "p"}}}),
        )
        .unwrap();
        assert_eq!(o.phase(), "Pending");
        assert!(o.in_flight());
        assert_eq!(o.target(), Some("p"));
        assert!(o.is_rotate_auth_for(find("proxysql").unwrap().ops().unwrap(), "p"));
        assert_eq!(o.source(), "generated");
    }
}
