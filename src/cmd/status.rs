//! `kubectl rotate status TYPE/NAME`: the in-flight or last rotation with its steps, the
//! database phase and the earliest certificate expiry; for Arc the generations, the state,
//! and whether a rollback is still allowed.

use crate::backend::arc::{decide, ArcState};
use crate::backend::{discover, Plan, Wanted};
use crate::cli::{ApplyPolicy, DryRun, StatusArgs};
use crate::context::Ctx;
use crate::engines::Backend;
use crate::error::Result;
use crate::inspect::objects::{DbItem, OpsItem};
use crate::inspect::{
    collection_url, earliest_expiry, get_secret_summary, get_target, list_pages, ArcView,
    StatusReport, API_VERSION,
};
use crate::rotation::Action;
use crate::target::Target;

/// Checks `status` arguments (pure: before any API call).
pub fn plan(args: &StatusArgs) -> Result<Target> {
    Target::parse(&args.target)
}

/// Whether `kubectl rotate rollback` would go ahead on an Arc instance in `state`: the
/// generation it would go back to, or why not. Asks the Arc backend's own rules.
pub fn arc_rollback(target: &Target, ns: &str, state: &ArcState) -> Result<i64, String> {
    let plan = Plan {
        action: Action::Rollback,
        target: target.clone(),
        namespace: ns.to_string(),
        apply: ApplyPolicy::IfReady,
        wait: false,
        timeout: None,
        dry_run: DryRun::None,
        credential: Default::default(),
    };
    let follow = format!(
        "kubectl get {} {} -n {ns} -w",
        target.engine.short(),
        target.name
    );
    decide(&plan, state, &follow)
        .map(|change| change.to)
        .map_err(|e| e.to_string())
}

/// Reads the target, its newest RotateAuth (KubeDB) and its certificates.
pub async fn run(ctx: &Ctx, target: &Target) -> Result<StatusReport> {
    let engine = target.engine;
    let ns = ctx.namespace.as_str();
    let now = jiff::Timestamp::now();
    let ars = discover(ctx, &Wanted::engine_and_ops(engine)).await?;
    let (_, item) = get_target(ctx, target, &ars[0]).await?;
    let mut report = StatusReport {
        api_version: API_VERSION,
        kind: "RotationStatus",
        namespace: ns.to_string(),
        target_kind: engine.kind.to_string(),
        target_group: engine.group.to_string(),
        name: target.name.clone(),
        phase: item.phase(),
        request: None,
        arc: None,
        tls: tls_expiry(ctx, ns, &item, now).await?,
    };
    match (engine.backend, ars.get(1)) {
        (Backend::KubeDb(ops), Some(ops_ar)) => {
            let mut newest: Option<OpsItem> = None;
            list_pages::<OpsItem>(ctx, &collection_url(ops_ar, Some(ns)), None, None, |o| {
                if o.is_rotate_auth_for(&ops, &target.name)
                    && newest.as_ref().is_none_or(|n| o.age_key() > n.age_key())
                {
                    newest = Some(o);
                }
            })
            .await?;
            report.request = newest.map(|o| o.view(&ops, now));
        }
        _ => {
            let state = item.arc_state();
            let rollback = arc_rollback(target, ns, &state);
            let a = &item.metadata.annotations;
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
                changed_at: a.get(crate::backend::annotations::CHANGED_AT).cloned(),
            });
        }
    }
    Ok(report)
}

/// The earliest certificate expiry of the Secrets `spec.tls` references (one GET each,
/// values skipped).
async fn tls_expiry(
    ctx: &Ctx,
    ns: &str,
    item: &DbItem,
    now: jiff::Timestamp,
) -> Result<Option<crate::tls::Expiry>> {
    let names = item.tls_secrets();
    let mut found = Vec::new();
    for n in &names {
        if let Some(s) = get_secret_summary(ctx, ns, n).await? {
            found.push(s);
        }
    }
    Ok(earliest_expiry(
        &names,
        |n| found.iter().find(|s| s.metadata.name == n),
        now,
    ))
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
        ArcState {
            state: "Ready".into(),
            generation: 3,
            observed: Some(3),
            credentials_generation: n,
            last_action: last.map(|l| l.0.to_string()),
            annotated_generation: last.map(|l| l.1),
            message: None,
        }
    }

    #[test]
    fn a_rotated_instance_may_roll_back_one_generation() {
        assert_eq!(
            arc_rollback(&mi(), "demo", &state(2, Some(("rotate", 2)))),
            Ok(1)
        );
    }

    #[test]
    fn after_a_rollback_no_second_rollback_is_allowed() {
        let why = arc_rollback(&mi(), "demo", &state(1, Some(("rollback", 1)))).unwrap_err();
        assert!(why.contains("only one step back"), "{why}");
        assert!(arc_rollback(&mi(), "demo", &state(0, None)).is_err());
    }
}
