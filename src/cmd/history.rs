//! `kubectl rotate history TYPE/NAME`: every RotateAuth request of a KubeDB database, newest
//! first, with who asked for it when the plugin recorded it; for Arc, the generation changes
//! the plugin recorded as Events.

use std::collections::HashMap;

use crate::audit;
use crate::backend::{discover, Wanted};
use crate::cli::HistoryArgs;
use crate::context::Ctx;
use crate::engines::Backend;
use crate::error::Result;
use crate::inspect::objects::OpsItem;
use crate::inspect::{
    collection_url, get_target, list_pages, HistoryReport, HistoryRequest, API_VERSION,
};
use crate::target::Target;

/// Checks `history` arguments (pure: before any API call).
pub fn plan(args: &HistoryArgs) -> Result<Target> {
    Target::parse(&args.target)
}

/// Reads the requests (KubeDB) and the plugin's Events on the target.
pub async fn run(ctx: &Ctx, target: &Target) -> Result<HistoryReport> {
    let engine = target.engine;
    let ns = ctx.namespace.as_str();
    let ars = discover(ctx, &Wanted::engine_and_ops(engine)).await?;
    // NB: read the target first, so a wrong name is a clear 404 rather than an empty history.
    get_target(ctx, target, &ars[0]).await?;
    let mut report = HistoryReport {
        api_version: API_VERSION,
        kind: "RotationHistory",
        namespace: ns.to_string(),
        target_kind: engine.kind.to_string(),
        name: target.name.clone(),
        requests: Vec::new(),
        generations: Vec::new(),
        warnings: Vec::new(),
    };
    let events = match audit::read(ctx, ns, engine.kind, &target.name).await {
        Ok(e) => e,
        Err(e) => {
            report
                .warnings
                .push(format!("the audit Events could not be read: {e}"));
            Vec::new()
        }
    };
    match (engine.backend, ars.get(1)) {
        (Backend::KubeDb(ops), Some(ops_ar)) => {
            let mut items = Vec::new();
            list_pages::<OpsItem>(ctx, &collection_url(ops_ar, Some(ns)), None, None, |o| {
                if o.is_rotate_auth_for(&ops, &target.name) {
                    items.push(o);
                }
            })
            .await?;
            let mut users: HashMap<String, String> = HashMap::new();
            let mut at: HashMap<String, jiff::Timestamp> = HashMap::new();
            for r in events {
                if let Some(req) = r.request {
                    at.extend(r.at.map(|t| (req.clone(), t)));
                    users.insert(req, r.entry.user);
                }
            }
            // NB: creation times have whole seconds; a rotation and the rollback right after
            // it often share one. The plugin's own Events order those precisely.
            items.sort_by_cached_key(|o| {
                let (created, name) = o.age_key();
                std::cmp::Reverse((created, at.get(&o.metadata.name).copied(), name))
            });
            let now = jiff::Timestamp::now();
            report.requests = items
                .iter()
                .map(|o| HistoryRequest {
                    request: o.view(&ops, now),
                    user: users.get(&o.metadata.name).cloned(),
                })
                .collect();
        }
        _ => report.generations = events.into_iter().map(|r| r.entry).collect(),
    }
    Ok(report)
}
