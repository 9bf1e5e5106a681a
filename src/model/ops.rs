//! KubeDB ops requests as the plugin reads them: which database a RotateAuth is for, its
//! phase, whether it is finished, and why it failed, in one place for the write path
//! (preflight, follow) and the read path (status, history, list).

use serde::Deserialize;

use super::{parse_ts, Meta, NameRef};
use crate::engines::{OpsSpec, TargetField};
use crate::report::{RequestView, StepView};

/// The ops request type that rotates credentials.
pub const ROTATE_AUTH: &str = "RotateAuth";

/// Whether an ops request phase is final.
pub fn is_terminal(phase: &str) -> bool {
    matches!(phase, "Successful" | "Failed" | "Skipped" | "Denied")
}

/// One condition of an ops request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    /// The condition type, e.g. `UpdateCredential`, one per step.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False, Unknown.
    pub status: String,
    /// What the operator says of the step.
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
    /// The per-step timeout, a Go duration.
    pub timeout: Option<String>,
    /// `IfReady` (the server's default) or `Always`.
    pub apply: Option<String>,
}

/// The status of an ops request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OpsStatus {
    /// Pending, Progressing, Successful, Failed, Skipped, Denied (missing: not seen yet).
    pub phase: Option<String>,
    /// Conditions, in order.
    pub conditions: Vec<Condition>,
}

/// A user-supplied Secret one RotateAuth took its credential from, and when: all of a
/// request that is kept to tell which Secrets a database used before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretUsed {
    /// The request's [`OpsItem::age_key`].
    at: (String, String),
    /// The Secret.
    pub name: String,
}

impl SecretUsed {
    /// The Secret `o` takes its credential from, if any.
    pub fn of(o: &OpsItem) -> Option<SecretUsed> {
        Some(SecretUsed {
            at: o.age_key(),
            name: o.secret_ref()?.to_string(),
        })
    }

    /// The names, newest request first, each once.
    pub fn newest_first(mut used: Vec<SecretUsed>) -> Vec<String> {
        used.sort_by(|a, b| b.at.cmp(&a.at));
        let mut names: Vec<String> = Vec::new();
        for u in used {
            if !names.contains(&u.name) {
                names.push(u.name);
            }
        }
        names
    }
}

/// An ops request as the inspection verbs need it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OpsItem {
    /// Name, namespace and creation time.
    pub metadata: Meta,
    /// What it asks for.
    pub spec: OpsSpecItem,
    /// How far it got.
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

    /// The database it targets, read from the field `ops` names (`databaseRef`, ProxySQL's
    /// `proxyRef`).
    pub fn target_for(&self, ops: &OpsSpec) -> Option<&str> {
        match ops.target_field {
            TargetField::DatabaseRef => self.spec.database_ref.as_ref(),
            TargetField::ProxyRef => self.spec.proxy_ref.as_ref(),
        }
        .map(|r| r.name.as_str())
    }

    /// The Secret it takes the new credential from, if any.
    pub fn secret_ref(&self) -> Option<&str> {
        self.spec
            .authentication
            .as_ref()
            .and_then(|a| a.secret_ref.as_ref())
            .map(|r| r.name.as_str())
            .filter(|n| !n.is_empty())
    }

    /// Whether it is a RotateAuth for database `ns/db`.
    // NB: lists may span namespaces (-A); an object without a namespace is from a
    // namespaced list.
    pub fn is_rotate_auth_for(&self, ops: &OpsSpec, ns: &str, db: &str) -> bool {
        (self.metadata.namespace.is_empty() || self.metadata.namespace == ns)
            && self.spec.type_ == ROTATE_AUTH
            && self.target_for(ops) == Some(db)
    }

    /// Whether it asks for the same thing as `other`: type, target, source Secret, timeout
    /// and apply policy, a missing `apply` being the server's default `IfReady`.
    pub fn same_spec(&self, other: &OpsItem, ops: &OpsSpec) -> bool {
        let pick = |o: &OpsItem| {
            (
                o.spec.type_.clone(),
                o.target_for(ops).map(str::to_string),
                o.secret_ref().map(str::to_string),
                o.spec.timeout.clone(),
                o.spec.apply.clone().unwrap_or_else(|| "IfReady".into()),
            )
        };
        pick(self) == pick(other)
    }

    /// The message of its last condition, the operator's last word.
    pub fn last_message(&self) -> Option<String> {
        self.status.conditions.last().map(|c| c.message.clone())
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

    /// The newest of `items`: the one created last, except that `recorded` (the request the
    /// plugin last wrote under the database's lock) wins a tie.
    // NB: creation times have whole seconds; a request and its retry often share one, and
    // then their names would decide.
    pub fn newest(items: Vec<OpsItem>, recorded: Option<&str>) -> Option<OpsItem> {
        let last_created = items
            .iter()
            .map(|o| o.metadata.creation_timestamp.clone())
            .max()?;
        let (recorded, rest): (Vec<OpsItem>, Vec<OpsItem>) = items
            .into_iter()
            .partition(|o| Some(o.metadata.name.as_str()) == recorded);
        match recorded.into_iter().next() {
            Some(r) if r.metadata.creation_timestamp >= last_created => Some(r),
            r => rest.into_iter().chain(r).max_by_key(OpsItem::age_key),
        }
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
            .filter_map(parse_ts)
            .max();
        let end = if is_terminal(&phase) {
            last_step
        } else {
            Some(now)
        };
        let duration_seconds = match (started.as_deref().and_then(parse_ts), end) {
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
        match self.secret_ref() {
            Some(name) => format!("secret {name}"),
            None => "generated".into(),
        }
    }

    /// Why it did not succeed: the last condition with status False; for a Skipped request
    /// its Skipped condition, else that a newer RotateAuth superseded it; else the last
    /// condition; else a plain statement.
    pub fn failure_reason(&self) -> String {
        let c = &self.status.conditions;
        let text = |c: &Condition| {
            if c.message.is_empty() {
                c.type_.clone()
            } else {
                format!("{}: {}", c.type_, c.message)
            }
        };
        if let Some(f) = c.iter().rev().find(|c| c.status == "False") {
            return text(f);
        }
        if self.phase() == "Skipped" {
            return match c.iter().rev().find(|c| c.type_ == "Skipped") {
                Some(s) => text(s),
                None => "the operator skipped it: a newer RotateAuth for the same database \
                         superseded it"
                    .into(),
            };
        }
        c.last()
            .map(text)
            .unwrap_or_else(|| "the operator gave no reason".into())
    }

    /// The typed view of an object read through the dynamic API (the write path's reads).
    pub fn from_dynamic(obj: &kube::api::DynamicObject) -> OpsItem {
        super::from_dynamic(obj)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_secrets_a_database_used_are_named_newest_first_once() {
        let op = |name: &str, secret: Option<&str>, at: &str| -> OpsItem {
            let mut spec = serde_json::json!({"type": "RotateAuth", "databaseRef": {"name": "pg"}});
            if let Some(s) = secret {
                spec["authentication"] = serde_json::json!({"secretRef": {"name": s}});
            }
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "creationTimestamp": at}, "spec": spec}))
            .unwrap()
        };
        let used: Vec<SecretUsed> = [
            op("a", Some("old"), "2026-01-01T00:00:00Z"),
            op("b", None, "2026-01-02T00:00:00Z"),
            op("c", Some("newer"), "2026-01-03T00:00:00Z"),
            op("d", Some("old"), "2025-12-01T00:00:00Z"),
        ]
        .iter()
        .filter_map(SecretUsed::of)
        .collect();
        assert_eq!(SecretUsed::newest_first(used), vec!["newer", "old"]);
    }

    use super::*;
    use crate::engines::find;
    use serde_json::json;

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
        assert!(o.is_rotate_auth_for(ops, "demo", "pg"));
        assert!(!o.is_rotate_auth_for(ops, "demo", "other"));
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
        assert!(o.is_rotate_auth_for(find("proxysql").unwrap().ops().unwrap(), "demo", "p"));
        assert_eq!(o.source(), "generated");
    }

    #[test]
    fn the_recorded_request_wins_a_tie_on_creation_time_but_not_a_later_one() {
        let at = |name: &str, ts: &str| -> OpsItem {
            serde_json::from_value(json!({"metadata": {"name": name, "creationTimestamp": ts}}))
                .unwrap()
        };
        let same = vec![
            at("zzz-failed", "2026-01-01T00:00:05Z"),
            at("aaa-retry", "2026-01-01T00:00:05Z"),
        ];
        let newest = |items: Vec<OpsItem>, r| OpsItem::newest(items, r).map(|o| o.metadata.name);
        assert_eq!(
            newest(same.clone(), Some("aaa-retry")).as_deref(),
            Some("aaa-retry")
        );
        assert_eq!(
            newest(same, None).as_deref(),
            Some("zzz-failed"),
            "by name otherwise"
        );
        let later = vec![
            at("mine", "2026-01-01T00:00:05Z"),
            at("by-hand", "2026-01-01T00:00:09Z"),
        ];
        assert_eq!(newest(later, Some("mine")).as_deref(), Some("by-hand"));
        assert_eq!(newest(vec![], Some("x")), None);
    }
}
