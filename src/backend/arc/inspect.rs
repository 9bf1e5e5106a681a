//! What the read verbs show of an Arc instance: the admin login and the credentials
//! generation (`prev`), the generations and whether a rollback is allowed (`status`), the
//! changes the plugin recorded (`history`), and a `list` row's credential state.

use std::collections::{BTreeMap, HashMap};

use futures::future::BoxFuture;
use kube::api::ApiResource;

use super::{decide, Arc};
use crate::api::discovery::Installed;
use crate::audit::AuditRecord;
use crate::backend::{Activity, CredentialState, Credentials, Inspect, LoginPlace};
use crate::context::Ctx;
use crate::creds::pair;
use crate::engines::EngineSpec;
use crate::error::Result;
use crate::model::annotations as ann;
use crate::model::arc::{ArcState, Change};
use crate::model::secret::SecretSummary;
use crate::model::DbItem;
use crate::plan::Plan;
use crate::report::{
    Action, ArcView, GenerationEntry, GenerationPair, HistoryReport, InFlight, PrevKept,
    StatusReport,
};
use crate::target::Target;

/// Whether `kubectl rotate rollback` would go ahead on an instance in `state`: the
/// generation it would go back to, or why not. Asks the same rules a rollback obeys.
pub fn rollback_check(
    target: &Target,
    ns: &str,
    state: &ArcState,
) -> std::result::Result<i64, String> {
    let plan = Plan::plain(Action::Rollback, target.clone(), ns);
    let follow = format!(
        "kubectl get {} {} -n {ns} -w",
        target.engine.short(),
        target.name
    );
    decide(&plan, state, &follow)
        .map(|change| change.to)
        .map_err(|e| e.to_string())
}

impl Inspect for Arc {
    /// The admin login as it is (a generation bump rotates service-managed credentials,
    /// not the admin login, so the login has no rotation time of its own) and the
    /// generations.
    fn credentials(
        &self,
        target: &Target,
        ns: &str,
        db: &DbItem,
        secret: &str,
        data: &BTreeMap<String, String>,
    ) -> Credentials {
        let state = db.arc_state();
        Credentials {
            credentials: pair(target.engine, secret, data, None).0,
            generation: Some(GenerationPair {
                current: state.credentials_generation,
                previous: rollback_check(target, ns, &state).ok(),
                changed_at: db.metadata.annotations.get(ann::CHANGED_AT).cloned(),
            }),
            note: Some(
                "Arc rotates service-managed credentials, not the admin login: rolling back \
                 goes to the previous managedCredentialsGeneration"
                    .into(),
            ),
        }
    }

    /// The generations, the state, and whether a rollback is still allowed; all on the
    /// object itself.
    fn status<'a>(
        &'a self,
        _ctx: &'a Ctx,
        target: &'a Target,
        db: &'a DbItem,
        _ops_ar: Option<&'a ApiResource>,
        report: &'a mut StatusReport,
    ) -> BoxFuture<'a, Result<()>> {
        let state = db.arc_state();
        let rollback = rollback_check(target, &report.subject.namespace, &state);
        report.arc = Some(ArcView {
            credentials_generation: state.credentials_generation,
            generation: state.generation,
            observed_generation: state.observed,
            state: state.state.clone(),
            message: state.message.clone(),
            in_flight: state.busy(),
            rollback_allowed: rollback.is_ok(),
            rollback_refused: rollback.err(),
            last_action: state.last_action.clone(),
            changed_at: db.metadata.annotations.get(ann::CHANGED_AT).cloned(),
        });
        Box::pin(async { Ok(()) })
    }

    /// The plugin's Events are Arc's only record of its generation changes.
    fn history<'a>(
        &'a self,
        _ctx: &'a Ctx,
        _target: &'a Target,
        db: &'a DbItem,
        _ops_ar: Option<&'a ApiResource>,
        events: Vec<AuditRecord>,
        report: &'a mut HistoryReport,
    ) -> BoxFuture<'a, Result<()>> {
        let recorded = crate::model::arc::changes(
            db.metadata
                .annotations
                .get(ann::HISTORY)
                .map(String::as_str),
        );
        report.generations = merge(recorded, events);
        Box::pin(async { Ok(()) })
    }

    /// Nothing to read: Arc's change in flight is on the object (see `credential_state`),
    /// and its login Secret keeps its name.
    fn activity<'a>(
        &'a self,
        _ctx: &'a Ctx,
        _kind: &'a Installed,
        _scope: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HashMap<(String, String), Activity>>> {
        Box::pin(async { Ok(HashMap::new()) })
    }

    /// The plugin's own record of its last change; the generation tells the rest.
    fn credential_state(
        &self,
        _engine: &EngineSpec,
        db: &DbItem,
        _secret: Option<&SecretSummary>,
        _in_flight: Option<InFlight>,
    ) -> CredentialState {
        let s = db.arc_state();
        let prev_kept = if s.rollback_to().is_ok() {
            PrevKept::Yes
        } else {
            PrevKept::No
        };
        let in_flight = s.busy().then(|| InFlight {
            name: format!("generation {}", s.generation),
            phase: if s.state.is_empty() {
                "Unknown".into()
            } else {
                s.state.clone()
            },
        });
        CredentialState {
            last_rotated: db.metadata.annotations.get(ann::CHANGED_AT).cloned(),
            prev_kept,
            in_flight,
            credentials_generation: Some(s.credentials_generation),
        }
    }

    /// Arc serves SQL through `<name>-external-svc` (its `status.primaryEndpoint`), and its
    /// pods carry only the instance label.
    fn login_place(&self, db: &str, ns: &str) -> LoginPlace {
        let service = format!("{db}-external-svc");
        LoginPlace {
            pod_selectors: vec![(
                format!("app.kubernetes.io/instance={db}"),
                "of the instance",
            )],
            fallback_pod: format!("{db}-0"),
            server_name: format!("{service}.{ns}.svc"),
            service,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::TargetArgs;

    fn mi() -> Target {
        Target::parse(&TargetArgs {
            target: "sqlmi/mi".into(),
            name: None,
        })
        .unwrap()
    }

    fn state(n: i64, last: Option<(&str, i64)>) -> ArcState {
        ArcState::ready_for_test(n, last)
    }

    #[test]
    fn a_rotated_instance_may_roll_back_one_generation() {
        assert_eq!(
            rollback_check(&mi(), "demo", &state(2, Some(("rotate", 2)))),
            Ok(1)
        );
    }

    #[test]
    fn after_a_rollback_no_second_rollback_is_allowed() {
        let why = rollback_check(&mi(), "demo", &state(1, Some(("rollback", 1)))).unwrap_err();
        assert!(why.contains("only one step back"), "{why}");
        assert!(rollback_check(&mi(), "demo", &state(0, None)).is_err());
    }
}

/// The history of an instance, newest first: the changes its history annotation keeps
/// (which outlive Events), then the audit Events' entries for changes older than those
/// (a change both record is shown once, from the annotation, with the Event's message).
fn merge(recorded: Vec<Change>, events: Vec<AuditRecord>) -> Vec<GenerationEntry> {
    let oldest: Option<jiff::Timestamp> = recorded.last().and_then(|c| c.at.parse().ok());
    let mut out: Vec<GenerationEntry> = recorded
        .iter()
        .map(|c| {
            let same = |e: &&AuditRecord| {
                e.request.as_deref() == Some(c.request_id.as_str())
                    || (e.entry.from == Some(c.from)
                        && e.entry.to == Some(c.to)
                        && e.entry.action == c.action
                        && close(e.at, c.at.parse().ok()))
            };
            let message = events.iter().find(same).map(|e| e.entry.message.clone());
            GenerationEntry {
                action: c.action.clone(),
                from: Some(c.from),
                to: Some(c.to),
                user: c.user.clone().unwrap_or_else(|| "unknown".into()),
                time: Some(c.at.clone()),
                message: message.unwrap_or_else(|| {
                    format!(
                        "{} by {}: managed credentials generation {} -> {}",
                        c.action,
                        c.user.as_deref().unwrap_or("unknown"),
                        c.from,
                        c.to
                    )
                }),
            }
        })
        .collect();
    // NB: an Event is written a moment after its change; one from before the oldest
    // recorded change (with a second's slack) is a change the annotation no longer keeps.
    let older = |e: &AuditRecord| match (oldest, e.at) {
        (None, _) => true,
        (Some(o), Some(at)) => at < o - jiff::SignedDuration::from_secs(2),
        (Some(_), None) => false,
    };
    out.extend(events.into_iter().filter(older).map(|r| r.entry));
    out
}

/// Whether an Event's time and a recorded change's are the same change's (within 5 s).
fn close(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.duration_since(b).abs() < jiff::SignedDuration::from_secs(5),
        _ => false,
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn change(from: i64, to: i64, at: &str) -> Change {
        Change {
            action: "rotate".into(),
            from,
            to,
            user: Some("alice".into()),
            at: at.into(),
            request_id: format!("id{to}"),
        }
    }

    fn event(from: i64, to: i64, at: &str) -> AuditRecord {
        AuditRecord {
            event: format!("e{to}"),
            at: at.parse().ok(),
            entry: GenerationEntry {
                action: "rotate".into(),
                from: Some(from),
                to: Some(to),
                user: "kubeconfig-user".into(),
                time: Some(at.into()),
                message: format!("rotate by alice: managed credentials generation {from} -> {to}"),
            },
            request: None,
        }
    }

    #[test]
    fn the_annotation_outlives_the_events_and_older_events_add_what_it_dropped() {
        // Events gone (past --event-ttl): the annotation alone tells the history.
        let recorded = vec![
            change(2, 3, "2026-12-02T10:00:00Z"),
            change(1, 2, "2026-12-02T09:00:00Z"),
        ];
        let h = merge(recorded.clone(), vec![]);
        assert_eq!(
            h.iter().map(|e| e.to).collect::<Vec<_>>(),
            vec![Some(3), Some(2)]
        );
        assert_eq!(h[0].user, "alice");
        // Events still there: each change once; an Event older than the annotation's
        // oldest change is added after it.
        let events = vec![
            event(2, 3, "2026-12-02T10:00:01Z"),
            event(1, 2, "2026-12-02T09:00:00Z"),
            event(0, 1, "2026-12-02T08:00:00Z"),
        ];
        let h = merge(recorded, events);
        assert_eq!(
            h.iter().map(|e| e.to).collect::<Vec<_>>(),
            vec![Some(3), Some(2), Some(1)]
        );
        assert_eq!(h[2].user, "kubeconfig-user");
        // No annotation (an instance the plugin changed before it kept one): the Events.
        assert_eq!(
            merge(vec![], vec![event(0, 1, "2026-12-02T08:00:00Z")]).len(),
            1
        );
    }
}
