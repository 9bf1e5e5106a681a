//! The audit trail: every `auth` and `rollback` the plugin performs records a core v1 Event
//! on its target (reason, request name or generation change, the kubeconfig context's
//! user), and `history` reads them back.
//!
//! An Event never carries a secret: it is built from names, generations and the user name
//! only. Recording one never fails the rotation: if it cannot be written (403, a broken
//! connection) a warning goes to stderr and the command carries on.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};

use crate::api::read::list_pages;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::MANAGER;
use crate::report::{Action, GenerationChange, GenerationEntry};

/// `source.component` of the plugin's Events: the plugin's manager name.
pub const COMPONENT: &str = MANAGER;
/// Reason of a rotation's Event.
pub const REASON_ROTATION: &str = "CredentialRotation";
/// Reason of a rollback's Event.
pub const REASON_ROLLBACK: &str = "CredentialRollback";

/// Annotations on the plugin's Events, so `history` need not parse messages.
pub mod annotations {
    /// `rotate` or `rollback`.
    pub const ACTION: &str = "rotate.kubectl.dev/action";
    /// The kubeconfig context's user.
    pub const USER: &str = "rotate.kubectl.dev/user";
    /// The ops request (KubeDB).
    pub const REQUEST: &str = "rotate.kubectl.dev/request";
    /// Generation before (Arc).
    pub const FROM: &str = "rotate.kubectl.dev/generation-from";
    /// Generation after (Arc).
    pub const TO: &str = "rotate.kubectl.dev/generation-to";
    /// When, to the nanosecond: Event timestamps have whole seconds, too coarse to order
    /// a rotation and the rollback right after it.
    pub const AT: &str = "rotate.kubectl.dev/at";
}

/// What the change was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// KubeDB: the ops request created.
    Request(String),
    /// Arc: the generation change written.
    Generation(GenerationChange),
}

/// The user name recorded when the context names none.
const UNKNOWN_USER: &str = "unknown";

/// The Event recording `action` on `target` (pure: unit-tested).
pub fn build_event(
    target: &DynamicObject,
    ar: &ApiResource,
    action: Action,
    detail: &Detail,
    user: Option<&str>,
    now: jiff::Timestamp,
) -> Event {
    let name = target.metadata.name.clone().unwrap_or_default();
    let user = user.unwrap_or(UNKNOWN_USER);
    let mut notes = BTreeMap::from([
        (annotations::ACTION.to_string(), action.as_str().to_string()),
        (annotations::USER.to_string(), user.to_string()),
        (annotations::AT.to_string(), now.to_string()),
    ]);
    let what = match detail {
        Detail::Request(r) => {
            notes.insert(annotations::REQUEST.to_string(), r.clone());
            format!("{}OpsRequest {r}", ar.kind)
        }
        Detail::Generation(g) => {
            notes.insert(annotations::FROM.to_string(), g.from.to_string());
            notes.insert(annotations::TO.to_string(), g.to.to_string());
            format!("managed credentials generation {} -> {}", g.from, g.to)
        }
    };
    let reason = match action {
        Action::Rotate => REASON_ROTATION,
        Action::Rollback => REASON_ROLLBACK,
    };
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: target.metadata.namespace.clone(),
            annotations: Some(notes),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(ar.api_version.clone()),
            kind: Some(ar.kind.clone()),
            name: Some(name),
            namespace: target.metadata.namespace.clone(),
            uid: target.metadata.uid.clone(),
            ..Default::default()
        },
        reason: Some(reason.to_string()),
        message: Some(format!("{} by {user}: {what}", action.as_str())),
        type_: Some("Normal".to_string()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_string()),
            host: None,
        }),
        first_timestamp: Some(Time(now.round(jiff::Unit::Second).unwrap_or(now))),
        last_timestamp: Some(Time(now.round(jiff::Unit::Second).unwrap_or(now))),
        count: Some(1),
        ..Default::default()
    }
}

/// Records `action` on `target` as an Event. Never fails: a write that does not land gives
/// the warning to print, and the rotation it describes goes on. (It returns the warning
/// rather than print it, so it can run while the caller's wait prints progress.)
pub async fn record(
    ctx: &Ctx,
    target: &DynamicObject,
    ar: &ApiResource,
    action: Action,
    detail: Detail,
) -> Option<String> {
    let user = crate::api::access::user(ctx).await;
    let ev = build_event(
        target,
        ar,
        action,
        &detail,
        user.as_deref(),
        jiff::Timestamp::now(),
    );
    let ns = target.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
    // NB: not retried: a create with generateName is not idempotent, and a lost audit
    // record is better than a duplicated one.
    let e = api.create(&PostParams::default(), &ev).await.err()?;
    Some(format!(
        "the audit Event for this {} could not be recorded: {}",
        action.as_str(),
        Error::api(format!("create event in {ns}"), e)
    ))
}

/// A core Event, decoded with only what `history` needs.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EventItem {
    metadata: EventMeta,
    reason: String,
    message: String,
    source: EventSourceItem,
    first_timestamp: Option<String>,
    event_time: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EventMeta {
    name: String,
    creation_timestamp: Option<String>,
    annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
struct EventSourceItem {
    component: String,
}

/// An audit record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The Event's name.
    pub event: String,
    /// Ordering key: the precise time annotation, else the Event's time.
    pub at: Option<jiff::Timestamp>,
    /// The generation entry (action, generations, user, time, message).
    pub entry: GenerationEntry,
    /// The ops request, for KubeDB.
    pub request: Option<String>,
}

fn parse(e: EventItem) -> Option<AuditRecord> {
    if e.source.component != COMPONENT
        || !(e.reason == REASON_ROTATION || e.reason == REASON_ROLLBACK)
    {
        return None;
    }
    let a = &e.metadata.annotations;
    let num = |k: &str| a.get(k).and_then(|v| v.parse::<i64>().ok());
    let action = a.get(annotations::ACTION).cloned().unwrap_or_else(|| {
        if e.reason == REASON_ROLLBACK {
            "rollback".into()
        } else {
            "rotate".into()
        }
    });
    let time = e
        .first_timestamp
        .or(e.event_time)
        .or(e.metadata.creation_timestamp);
    Some(AuditRecord {
        event: e.metadata.name.clone(),
        at: a
            .get(annotations::AT)
            .and_then(|t| t.parse().ok())
            .or_else(|| time.as_deref().and_then(|t| t.parse().ok())),
        request: a.get(annotations::REQUEST).cloned(),
        entry: GenerationEntry {
            action,
            from: num(annotations::FROM),
            to: num(annotations::TO),
            user: a
                .get(annotations::USER)
                .cloned()
                .unwrap_or_else(|| UNKNOWN_USER.into()),
            time,
            message: e.message,
        },
    })
}

/// The plugin's Events on `kind` `ns/name`, newest first (one LIST with a field selector).
pub async fn read(ctx: &Ctx, ns: &str, kind: &str, name: &str) -> Result<Vec<AuditRecord>> {
    let fields = format!("involvedObject.name={name},involvedObject.kind={kind}");
    let mut out = Vec::new();
    list_pages::<EventItem>(
        ctx,
        &format!("/api/v1/namespaces/{ns}/events"),
        None,
        Some(&fields),
        |e| out.extend(parse(e)),
    )
    .await?;
    out.sort_by(|a, b| (b.at, &b.event).cmp(&(a.at, &a.event)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::GroupVersionKind;

    fn mi() -> (DynamicObject, ApiResource) {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("sql.arcdata.microsoft.com", "v2", "SqlManagedInstance"),
            "sqlmanagedinstances",
        );
        let mut o = DynamicObject::new("mi-1", &ar).within("demo");
        o.metadata.uid = Some("uid-1".into());
        (o, ar)
    }

    #[test]
    fn the_event_has_the_shape_a_real_apiserver_accepts() {
        let (o, ar) = mi();
        let ev = build_event(
            &o,
            &ar,
            Action::Rotate,
            &Detail::Generation(GenerationChange { from: 1, to: 2 }),
            Some("alice"),
            "2026-11-22T00:00:00Z".parse().unwrap(),
        );
        let v = serde_json::to_value(&ev).unwrap();
        // The fields of apiserver transcript 27.
        assert_eq!(v["metadata"]["generateName"], "mi-1.");
        assert_eq!(v["metadata"]["namespace"], "demo");
        assert_eq!(
            v["involvedObject"],
            serde_json::json!({"apiVersion": "sql.arcdata.microsoft.com/v2", "kind": "SqlManagedInstance",
                               "name": "mi-1", "namespace": "demo", "uid": "uid-1"})
        );
        assert_eq!(v["reason"], "CredentialRotation");
        assert_eq!(v["type"], "Normal");
        assert_eq!(v["source"]["component"], "kubectl-rotate");
        assert_eq!(v["count"], 1);
        assert_eq!(v["firstTimestamp"], "2026-11-22T00:00:00Z");
        assert_eq!(
            v["message"],
            "rotate by alice: managed credentials generation 1 -> 2"
        );
        assert_eq!(v["metadata"]["annotations"][annotations::USER], "alice");
    }

    #[test]
    fn a_kubedb_event_names_the_request_and_a_missing_user_is_unknown() {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kubedb.com", "v1", "Postgres"),
            "postgreses",
        );
        let o = DynamicObject::new("pg", &ar).within("demo");
        let ev = build_event(
            &o,
            &ar,
            Action::Rollback,
            &Detail::Request("pg-rollback-auth-12345".into()),
            None,
            jiff::Timestamp::now(),
        );
        assert_eq!(ev.reason.as_deref(), Some("CredentialRollback"));
        assert_eq!(
            ev.message.as_deref(),
            Some("rollback by unknown: PostgresOpsRequest pg-rollback-auth-12345")
        );
    }

    #[test]
    fn events_read_back_into_history_entries_and_others_are_ignored() {
        let (o, ar) = mi();
        let ev = build_event(
            &o,
            &ar,
            Action::Rollback,
            &Detail::Generation(GenerationChange { from: 2, to: 1 }),
            Some("bob"),
            "2026-11-22T00:00:00Z".parse().unwrap(),
        );
        let item: EventItem = serde_json::from_value(serde_json::to_value(&ev).unwrap()).unwrap();
        let r = parse(item).unwrap();
        assert_eq!(r.entry.action, "rollback");
        assert_eq!((r.entry.from, r.entry.to), (Some(2), Some(1)));
        assert_eq!(r.entry.user, "bob");
        assert_eq!(r.entry.time.as_deref(), Some("2026-11-22T00:00:00Z"));
        assert_eq!(r.at, Some("2026-11-22T00:00:00Z".parse().unwrap()));
        let other: EventItem = serde_json::from_value(serde_json::json!({
            "reason": "Scheduled", "source": {"component": "default-scheduler"}, "message": "x"}))
        .unwrap();
        assert!(parse(other).is_none());
    }
}
