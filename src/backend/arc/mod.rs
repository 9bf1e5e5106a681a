//! Azure Arc SQL Managed Instance: rotation is `spec.update.managedCredentialsGeneration`
//! n -> n+1, rollback n -> n-1 (once).
//!
//! Nothing on the server guards concurrent rotations, so the write is a JSON patch whose
//! first op tests `metadata.resourceVersion` against the value read: if anyone wrote in
//! between, the server refuses the whole patch (422 Invalid for a failed `test`, see
//! transcript 23) and we report a conflict. We never retry such a refusal: re-computing
//! n+1 and writing again is exactly the double bump the guard exists to prevent.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::future::BoxFuture;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};

use crate::api::access::Need;
use crate::api::discovery::Wanted;
use crate::api::read::get_target;
use crate::api::session::Session;
use crate::api::watch::{bounded, follow};
use crate::api::{is_transient, retry};
use crate::backend::Rotate;
use crate::cli::{ApplyPolicy, DryRun};
use crate::error::{status_code, Error, Result};
use crate::model::annotations as ann;
use crate::model::arc::{ArcState, Change, NoRollback};
use crate::model::MANAGER;
use crate::plan::{NewCredential, Plan};
use crate::report::{
    object_name, Action, GenerationChange, Outcome, Progress, ProgressEvent, Rotation,
};

pub mod inspect;

/// The Arc backend (see [`crate::backend::Backend`]).
pub struct Arc;

impl Rotate for Arc {
    /// Arc generates its service-managed credentials itself: a given one has no place. And
    /// its controller tries again only on a new generation: there is nothing to re-run.
    fn check(&self, plan: &Plan) -> Result<()> {
        let target = &plan.target;
        if plan.retry {
            return Err(Error::Refused(format!(
                "{target} cannot be retried: the Arc controller tries again only on a new \
                 credentials generation; roll back (kubectl rotate rollback {target} -n {ns}) \
                 or rotate anew (kubectl rotate auth {target} -n {ns})",
                ns = plan.namespace
            )));
        }
        if plan.credential == NewCredential::Operator {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "--secret, --password-stdin and --generate do not apply to {}: it generates its \
             service-managed credentials itself",
            target.engine.kind
        )))
    }

    /// The guarded patch of the instance, the audit Event, and with `--wait` the
    /// instance's watch.
    fn needs(&self, plan: &Plan) -> Vec<Need> {
        let (ns, engine) = (plan.namespace.as_str(), plan.target.engine);
        let mut needs = vec![
            Need::new("patch", engine.group, engine.plural, ns).named(&plan.target.name),
            Need::new("create", "", "events", ns),
        ];
        if plan.wait {
            needs.push(Need::new("watch", engine.group, engine.plural, ns));
        }
        needs
    }

    /// The instance.
    fn reads(&self, plan: &Plan, _db: &crate::model::DbItem) -> Vec<Need> {
        let (ns, engine) = (plan.namespace.as_str(), plan.target.engine);
        vec![Need::new("get", engine.group, engine.plural, ns).named(&plan.target.name)]
    }

    fn change<'a>(
        &'a self,
        session: &'a Session,
        plan: &'a Plan,
        _found: Option<DynamicObject>,
        progress: &'a mut dyn Progress,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(run(session, plan, progress))
    }
}

/// Decides the generation change for a plan, or refuses (pure: unit-tested).
pub fn decide(plan: &Plan, s: &ArcState, follow_cmd: &str) -> Result<GenerationChange> {
    let target = plan.target.to_string();
    let n = s.credentials_generation;
    let state = if s.state.is_empty() {
        "unknown"
    } else {
        s.state.as_str()
    };
    // NB: even with --apply Always: Always skips the Ready check, never the one-at-a-time
    // rule, or concurrent commands would stack bumps while the controller applies one.
    if s.busy() {
        return Err(Error::InProgress {
            target,
            request: format!("generation {} of the spec", s.generation),
            phase: format!(
                "being applied (state {state}, observed generation {})",
                s.observed.unwrap_or(0)
            ),
            follow: follow_cmd.to_string(),
        });
    }
    match plan.action {
        Action::Rotate => {
            if plan.apply == ApplyPolicy::IfReady && !s.is("Ready") {
                return Err(Error::Refused(format!(
                    "{target} is not Ready (state {state}); wait until it is, or use --apply Always"
                )));
            }
            Ok(GenerationChange { from: n, to: n + 1 })
        }
        Action::Rollback => {
            // NB: rollback is what you do after a failed rotation, so Error is allowed too.
            if plan.apply == ApplyPolicy::IfReady && !(s.is("Ready") || s.is("Error")) {
                return Err(Error::Refused(format!(
                    "{target} is neither Ready nor Error (state {state}); wait, or use --apply Always"
                )));
            }
            match s.rollback_to() {
                Ok(to) => Ok(GenerationChange { from: n, to }),
                Err(NoRollback::AlreadyRolledBack) => Err(Error::Refused(format!(
                    "{target} was already rolled back to generation {n}; only one step back is supported \
                     (rotate first to make a new generation: kubectl rotate auth {target} -n {})",
                    plan.namespace
                ))),
                Err(NoRollback::NoPrevious) => Err(Error::Refused(format!(
                    "{target} has no previous credentials generation to roll back to (managedCredentialsGeneration is {n})"
                ))),
            }
        }
    }
}

/// Escapes a JSON pointer segment (RFC 6901).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Builds the guarded JSON patch (pure: unit-tested) of the change `record` describes:
/// the generation, the last-change annotations, and `record` put in front of the history
/// annotation. `obj` is the object as read.
pub fn build_patch(obj: &DynamicObject, record: &Change) -> Value {
    let change = GenerationChange {
        from: record.from,
        to: record.to,
    };
    let rv = obj.metadata.resource_version.clone().unwrap_or_default();
    let mut ops = vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv})];
    match obj.data.get("spec") {
        Some(Value::Object(spec)) => match spec.get("update") {
            Some(Value::Object(_)) => ops.push(json!({
                "op": "add", "path": "/spec/update/managedCredentialsGeneration", "value": change.to
            })),
            _ => ops.push(json!({
                "op": "add", "path": "/spec/update", "value": {"managedCredentialsGeneration": change.to}
            })),
        },
        _ => ops.push(json!({
            "op": "add", "path": "/spec", "value": {"update": {"managedCredentialsGeneration": change.to}}
        })),
    }
    let history = obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ann::HISTORY))
        .map(String::as_str);
    let notes: BTreeMap<&str, String> = [
        (ann::LAST_ACTION, record.action.clone()),
        (ann::PREVIOUS_GENERATION, change.from.to_string()),
        (ann::GENERATION, change.to.to_string()),
        (ann::CHANGED_AT, record.at.clone()),
        (ann::REQUEST_ID, record.request_id.clone()),
        (
            ann::HISTORY,
            crate::model::arc::with_change(history, record.clone()),
        ),
    ]
    .into_iter()
    .collect();
    if obj.metadata.annotations.is_some() {
        for (k, v) in &notes {
            ops.push(json!({"op": "add", "path": format!("/metadata/annotations/{}", escape(k)), "value": v}));
        }
    } else {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": notes}));
    }
    Value::Array(ops)
}

/// Whether the instance finished applying generation `target_generation` of the spec:
/// `Ok(true)` when Ready and caught up, `Err` on an Error state that belongs to our change
/// (caught up, or reached after an `Updating` seen since our write).
// NB: an Error state left over from before our write is not our failure; and a controller
// may report Error without advancing observedGeneration, so seeing Updating counts too.
fn finished(
    plan: &Plan,
    s: &ArcState,
    target_generation: i64,
    seen_updating: bool,
) -> Result<bool> {
    let caught_up = s.observed.is_some_and(|o| o >= target_generation);
    if caught_up && s.is("Ready") {
        return Ok(true);
    }
    if (caught_up || seen_updating) && s.is("Error") {
        return Err(Error::RotationFailed {
            request: format!("{} generation {}", plan.target, target_generation),
            phase: "Error".into(),
            reason: s
                .message
                .clone()
                .unwrap_or_else(|| "the instance reports state Error without a message".into()),
        });
    }
    Ok(false)
}

/// Rotates or rolls back an Arc instance. `found` is the instance when a LIST already
/// returned it; it is read again anyway, since the patch is guarded by its resourceVersion.
async fn run(session: &Session, plan: &Plan, progress: &mut dyn Progress) -> Result<Outcome> {
    let ctx = session.ctx();
    let engine = plan.target.engine;
    let writing = plan.dry_run == DryRun::None;
    let needs = crate::backend::needs(plan);
    let wanted = [Wanted::engine(engine)];
    let (mut ars, ()) = futures::try_join!(session.resolve(&wanted), async {
        match writing {
            true => session.authorize(&needs).await,
            false => Ok(()),
        }
    })?;
    let ar = ars.remove(0);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &plan.namespace, &ar);
    let name = plan.target.name.as_str();
    let follow_cmd = format!(
        "kubectl get {} {} -n {} -w",
        engine.short(),
        name,
        plan.namespace
    );

    let obj = get_target(&api, &plan.target, &plan.namespace).await?;
    let state = ArcState::read(&obj);
    let change = decide(plan, &state, &follow_cmd)?;
    let record = Change {
        action: plan.action.as_str().to_string(),
        from: change.from,
        to: change.to,
        user: crate::api::access::user(ctx).await,
        at: crate::backend::now_rfc3339(),
        request_id: crate::context::random_id(),
    };
    let request_id = record.request_id.clone();
    let patch = build_patch(&obj, &record);
    let url = format!(
        "{} {}/{} ({}, application/json-patch+json)",
        engine.resource(),
        plan.namespace,
        name,
        ar.version
    );

    let mut rotation = Rotation::new(&plan.namespace, engine, name, plan.action);
    rotation.generation = Some(change);
    rotation.dry_run = plan.dry_run;

    if plan.dry_run == DryRun::Client {
        return Ok(Outcome::Preview {
            documents: vec![patch],
            name: object_name(engine.kind, engine.group, name),
            request: None,
            requests: vec![format!("PATCH {url}")],
        });
    }

    let started = Instant::now();
    let written = write(&api, plan, &obj, patch, &request_id).await?;
    if plan.dry_run == DryRun::Server {
        rotation.phase = "Submitted".into();
        return Ok(Outcome::Done {
            rotation,
            follow: None,
        });
    }
    let detail = crate::audit::Detail::Generation(change);
    let audit = crate::audit::record(ctx, &written, &ar, plan.action, detail);
    let target_generation = written.metadata.generation.unwrap_or(state.generation + 1);
    if !plan.wait {
        if let Some(w) = audit.await {
            progress.warn(&w);
        }
        rotation.phase = "Submitted".into();
        return Ok(Outcome::Done {
            rotation,
            follow: Some(follow_cmd),
        });
    }

    let label = plan.target.to_string();
    let mut last_seen: Option<(String, Option<i64>)> = None;
    let mut seen_updating = false;
    // NB: the audit Event is written while the watch begins; its warning comes after.
    let waiting = bounded(
        follow(ctx, &api, &written, |o| {
            let s = ArcState::read(o);
            seen_updating |= s.is("Updating");
            if last_seen.as_ref() != Some(&(s.state.clone(), s.observed)) {
                last_seen = Some((s.state.clone(), s.observed));
                progress.event(&ProgressEvent::Phase {
                    object: label.clone(),
                    phase: if s.state.is_empty() {
                        "Unknown".into()
                    } else {
                        s.state.clone()
                    },
                    detail: Some(format!(
                        "controller has observed generation {} of {target_generation}",
                        s.observed
                            .map(|o| o.to_string())
                            .unwrap_or_else(|| "none".into())
                    )),
                });
            }
            Ok(finished(plan, &s, target_generation, seen_updating)?.then_some(s))
        }),
        plan.wait_bound(),
        format!("{label} to apply credentials generation {}", change.to),
        follow_cmd.clone(),
    );
    let (audited, waited) = futures::join!(audit, waiting);
    if let Some(w) = audited {
        progress.warn(&w);
    }
    let waited = match waited {
        Ok(w) => w,
        Err(
            e @ (Error::Timeout { .. } | Error::Interrupted { .. } | Error::RotationFailed { .. }),
        ) => return Err(e),
        Err(e) => {
            return Err(Error::OutcomeUnknown {
                written: format!(
                    "{label} was patched to credentials generation {}",
                    change.to
                ),
                source: Box::new(e),
                follow: follow_cmd,
            })
        }
    };
    rotation.phase = waited.state.clone();
    rotation.message = waited.message;
    rotation.duration_seconds = Some(started.elapsed().as_secs_f64());
    Ok(Outcome::Done {
        rotation,
        follow: None,
    })
}

/// Sends the guarded patch. A refused `test` (422) or a 409 is a conflict. A transient
/// failure leaves us unsure whether the write landed: we re-read and look for our request id.
async fn write(
    api: &Api<DynamicObject>,
    plan: &Plan,
    read: &DynamicObject,
    patch: Value,
    request_id: &str,
) -> Result<DynamicObject> {
    let name = plan.target.name.as_str();
    let action = format!(
        "patch {} {}/{}",
        plan.target.engine.resource(),
        plan.namespace,
        name
    );
    let conflict = || Error::Conflict {
        target: plan.target.to_string(),
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|e| Error::Unexpected(e.to_string()))?;
    let mut pp = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    pp.dry_run = plan.dry_run == DryRun::Server;
    let read_rv = read.metadata.resource_version.clone();
    let ours = |o: &DynamicObject| {
        o.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ann::REQUEST_ID))
            .map(String::as_str)
            == Some(request_id)
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        match api
            .patch(name, &pp, &Patch::Json::<()>(patch.clone()))
            .await
        {
            Ok(obj) => return Ok(obj),
            Err(e) if status_code(&e) == Some(409) => return Err(conflict()),
            Err(e) if status_code(&e) == Some(422) => {
                // A failed `test` is 422 Invalid: the object moved on since we read it. It
                // may have moved on by our own write, when this is a resend whose first
                // attempt landed late: the request id on the object tells.
                let now = retry(|| api.get(name))
                    .await
                    .map_err(|e| Error::api(format!("get {name}"), e))?;
                return if ours(&now) {
                    Ok(now)
                } else if now.metadata.resource_version != read_rv {
                    Err(conflict())
                } else {
                    Err(Error::api(action, e))
                };
            }
            Err(e) if is_transient(&e) && !pp.dry_run && attempts < 4 => {
                let now = retry(|| api.get(name))
                    .await
                    .map_err(|e| Error::api(format!("get {name}"), e))?;
                if ours(&now) {
                    return Ok(now);
                }
                if now.metadata.resource_version != read_rv {
                    return Err(conflict());
                }
                // Unchanged: our write did not land, and the guard still holds. Send it again.
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempts)).await;
            }
            Err(e) => return Err(Error::api(action, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chainable SqlManagedInstance fixture.
    struct Mi(DynamicObject);

    impl Mi {
        fn new() -> Mi {
            let ar = kube::api::ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk(
                    "sql.arcdata.microsoft.com",
                    "v2",
                    "SqlManagedInstance",
                ),
                "sqlmanagedinstances",
            );
            let mut o = DynamicObject::new("sqlmi-demo", &ar).within("demo");
            o.metadata.resource_version = Some("42".into());
            o.metadata.generation = Some(3);
            o.data = json!({"spec": {"security": {"adminLoginSecret": "sqlmi-demo-login-secret"}},
                            "status": {"state": "Ready", "observedGeneration": 3}});
            Mi(o)
        }
        fn credentials_generation(mut self, n: i64) -> Mi {
            self.0.data["spec"]["update"] = json!({"managedCredentialsGeneration": n});
            self
        }
        fn state(mut self, s: &str, observed: i64) -> Mi {
            self.0.data["status"] = json!({"state": s, "observedGeneration": observed});
            self
        }
        fn annotated(mut self, action: &str, generation: i64) -> Mi {
            let mut a = BTreeMap::new();
            a.insert(ann::LAST_ACTION.to_string(), action.to_string());
            a.insert(ann::GENERATION.to_string(), generation.to_string());
            self.0.metadata.annotations = Some(a);
            self
        }
    }

    fn record(from: i64, to: i64, action: &str, id: &str) -> Change {
        Change {
            action: action.into(),
            from,
            to,
            user: Some("alice".into()),
            at: "2025-01-01T00:00:00Z".into(),
            request_id: id.into(),
        }
    }

    fn plan(action: Action, apply: ApplyPolicy) -> Plan {
        Plan {
            apply,
            ..Plan::for_test("sqlmi/sqlmi-demo", action)
        }
    }

    fn decide_on(action: Action, mi: Mi) -> Result<GenerationChange> {
        decide(
            &plan(action, ApplyPolicy::IfReady),
            &ArcState::read(&mi.0),
            "kubectl get sqlmi sqlmi-demo -n demo -w",
        )
    }

    #[test]
    fn a_missing_generation_counts_as_zero_and_rotates_to_one() {
        assert_eq!(
            decide_on(Action::Rotate, Mi::new()).unwrap(),
            GenerationChange { from: 0, to: 1 }
        );
        assert_eq!(
            decide_on(Action::Rotate, Mi::new().credentials_generation(4)).unwrap(),
            GenerationChange { from: 4, to: 5 }
        );
    }

    #[test]
    fn rollback_goes_one_step_back() {
        let mi = Mi::new().credentials_generation(1).annotated("rotate", 1);
        assert_eq!(
            decide_on(Action::Rollback, mi).unwrap(),
            GenerationChange { from: 1, to: 0 }
        );
    }

    #[test]
    fn a_second_rollback_is_refused() {
        let mi = Mi::new().credentials_generation(0).annotated("rollback", 0);
        let e = decide_on(Action::Rollback, mi).unwrap_err();
        assert_eq!(e.exit_code(), 6);
        let mi = Mi::new().credentials_generation(1).annotated("rollback", 1);
        let e = decide_on(Action::Rollback, mi).unwrap_err();
        assert!(e.to_string().contains("only one step back"), "{e}");
    }

    #[test]
    fn rollback_after_an_outside_change_is_allowed() {
        // We rolled back to 1, then someone bumped to 2 by hand: going back to 1 is one step.
        let mi = Mi::new().credentials_generation(2).annotated("rollback", 1);
        assert_eq!(
            decide_on(Action::Rollback, mi).unwrap(),
            GenerationChange { from: 2, to: 1 }
        );
    }

    #[test]
    fn rollback_from_generation_zero_is_refused() {
        assert!(decide_on(Action::Rollback, Mi::new())
            .unwrap_err()
            .to_string()
            .contains("no previous"));
    }

    #[test]
    fn an_instance_still_applying_a_change_is_in_progress() {
        let e = decide_on(Action::Rotate, Mi::new().state("Updating", 2)).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.to_string()
                .contains("kubectl get sqlmi sqlmi-demo -n demo -w"),
            "{e}"
        );
    }

    #[test]
    fn rotation_needs_ready_unless_apply_always() {
        let mi = Mi::new().state("Error", 3);
        assert_eq!(
            decide_on(Action::Rotate, Mi(mi.0.clone()))
                .unwrap_err()
                .exit_code(),
            6
        );
        let p = plan(Action::Rotate, ApplyPolicy::Always);
        assert!(decide(&p, &ArcState::read(&mi.0), "").is_ok());
    }

    #[test]
    fn apply_always_never_stacks_a_bump_on_one_being_applied() {
        let p = plan(Action::Rotate, ApplyPolicy::Always);
        let busy = Mi::new().credentials_generation(1).state("Updating", 2);
        let e = decide(&p, &ArcState::read(&busy.0), "").unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
    }

    #[test]
    fn rollback_is_allowed_from_the_error_state() {
        let mi = Mi::new().credentials_generation(2).state("Error", 3);
        assert_eq!(
            decide_on(Action::Rollback, mi).unwrap(),
            GenerationChange { from: 2, to: 1 }
        );
    }

    #[test]
    fn the_patch_tests_the_resource_version_before_anything_else() {
        let p = build_patch(&Mi::new().0, &record(0, 1, "rotate", "id1"));
        assert_eq!(
            p[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "42"})
        );
        assert_eq!(
            p[1],
            json!({"op": "add", "path": "/spec/update", "value": {"managedCredentialsGeneration": 1}})
        );
        assert_eq!(p[2]["path"], "/metadata/annotations");
        assert_eq!(p[2]["value"][ann::LAST_ACTION], "rotate");
        assert_eq!(p[2]["value"][ann::PREVIOUS_GENERATION], "0");
        assert_eq!(p[2]["value"][ann::REQUEST_ID], "id1");
        let history = crate::model::arc::changes(p[2]["value"][ann::HISTORY].as_str());
        assert_eq!(history, vec![record(0, 1, "rotate", "id1")]);
        assert_eq!(p.as_array().unwrap().len(), 3);
    }

    #[test]
    fn the_patch_sets_the_field_and_annotations_in_place_when_they_exist() {
        let mi = Mi::new().credentials_generation(1).annotated("rotate", 1);
        let p = build_patch(&mi.0, &record(1, 0, "rollback", "id"));
        assert_eq!(
            p[1],
            json!({"op": "add", "path": "/spec/update/managedCredentialsGeneration", "value": 0})
        );
        let paths: Vec<&str> = p.as_array().unwrap()[2..]
            .iter()
            .map(|o| o["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.contains(&"/metadata/annotations/rotate.kubectl.dev~1last-action"),
            "{paths:?}"
        );
        assert_eq!(paths.len(), 6);
    }

    #[test]
    fn the_patch_applies_locally_and_a_stale_version_fails_its_test() {
        let mi = Mi::new();
        let patch: json_patch::Patch =
            serde_json::from_value(build_patch(&mi.0, &record(0, 1, "rotate", "id"))).unwrap();
        let mut doc = serde_json::to_value(&mi.0).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(doc["spec"]["update"]["managedCredentialsGeneration"], 1);
        assert_eq!(
            doc["spec"]["security"]["adminLoginSecret"],
            "sqlmi-demo-login-secret"
        );
        let mut moved = serde_json::to_value(&mi.0).unwrap();
        moved["metadata"]["resourceVersion"] = json!("43");
        assert!(json_patch::patch(&mut moved, &patch).is_err());
    }

    #[test]
    fn done_means_ready_and_caught_up_with_the_written_generation() {
        let p = plan(Action::Rotate, ApplyPolicy::IfReady);
        let s = |state: &str, obs: i64| ArcState::read(&Mi::new().state(state, obs).0);
        assert!(
            !finished(&p, &s("Ready", 3), 4, false).unwrap(),
            "stale Ready is not done"
        );
        assert!(!finished(&p, &s("Updating", 4), 4, true).unwrap());
        assert!(finished(&p, &s("Ready", 4), 4, true).unwrap());
        assert_eq!(
            finished(&p, &s("Error", 4), 4, false)
                .unwrap_err()
                .exit_code(),
            5
        );
    }

    #[test]
    fn an_old_error_state_is_not_our_failure_but_one_after_updating_is() {
        let p = plan(Action::Rollback, ApplyPolicy::IfReady);
        let error = ArcState::read(&Mi::new().state("Error", 3).0);
        assert!(!finished(&p, &error, 4, false).unwrap());
        assert_eq!(finished(&p, &error, 4, true).unwrap_err().exit_code(), 5);
    }

    #[test]
    fn arc_refuses_a_given_credential_before_any_api_call() {
        let mi = Plan::for_test("sqlmi/mi", Action::Rotate);
        assert!(Arc.check(&mi).is_ok());
        let retry = Plan {
            retry: true,
            ..mi.clone()
        };
        assert_eq!(Arc.check(&retry).unwrap_err().exit_code(), 6);
        for credential in [
            NewCredential::Secret("mine".into()),
            NewCredential::Generate { username: None },
        ] {
            let given = Plan {
                credential,
                ..mi.clone()
            };
            let e = Arc.check(&given).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(
                e.to_string().contains("do not apply to SqlManagedInstance"),
                "{e}"
            );
        }
    }
}
