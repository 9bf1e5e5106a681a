//! `kubectl rotate history TYPE/NAME`: every rotation of a database, newest first, with who
//! asked for it when the plugin recorded it (KubeDB: its RotateAuth requests; Arc: the
//! generation changes the plugin recorded as Events).

use kube::api::{Api, DynamicObject};

use crate::api::discovery::{discover, Wanted};
use crate::api::read::get_target;
use crate::audit;
use crate::backend;
use crate::cli::HistoryArgs;
use crate::context::Ctx;
use crate::error::Result;
use crate::report::{HistoryReport, Subject};
use crate::target::Target;

/// Checks `history` arguments (pure: before any API call).
pub fn plan(args: &HistoryArgs) -> Result<Target> {
    Target::parse(&args.target)
}

/// Reads the plugin's Events on the target and what its backend keeps of each rotation.
pub async fn run(ctx: &Ctx, target: &Target) -> Result<HistoryReport> {
    let engine = target.engine;
    let ns = ctx.namespace.as_str();
    let ars = discover(ctx, &Wanted::engine_and_ops(engine)).await?;
    // NB: read the target first, so a wrong name is a clear 404 rather than an empty history.
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ars[0]);
    let db = crate::model::DbItem::from_dynamic(&get_target(&api, target, ns).await?);
    let mut report = HistoryReport {
        subject: Subject::new("RotationHistory", ns, engine, &target.name),
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
    backend::of(engine)
        .history(ctx, target, &db, ars.get(1), events, &mut report)
        .await?;
    Ok(report)
}
