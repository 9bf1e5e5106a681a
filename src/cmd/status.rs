//! `kubectl rotate status TYPE/NAME`: the database phase and the earliest certificate
//! expiry, and what the backend knows of the rotation in flight or last done (KubeDB: the
//! newest RotateAuth with its steps; Arc: the generations, the state, and whether a
//! rollback is still allowed).

use kube::api::{Api, DynamicObject};

use crate::api::discovery::{discover, Wanted};
use crate::api::read::{get_secret_summary, get_target};
use crate::backend;
use crate::cli::StatusArgs;
use crate::context::Ctx;
use crate::error::Result;
use crate::model::secret::earliest_expiry;
use crate::model::DbItem;
use crate::report::{StatusReport, Subject};
use crate::target::Target;

/// Checks `status` arguments (pure: before any API call).
pub fn plan(args: &StatusArgs) -> Result<Target> {
    Target::parse(&args.target)
}

/// Reads the target, its certificates, and what its backend adds.
pub async fn run(ctx: &Ctx, target: &Target) -> Result<StatusReport> {
    let engine = target.engine;
    let ns = ctx.namespace.as_str();
    let now = jiff::Timestamp::now();
    let ars = discover(ctx, &Wanted::engine_and_ops(engine)).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ars[0]);
    let db = DbItem::from_dynamic(&get_target(&api, target, ns).await?);
    let mut report = StatusReport {
        subject: Subject::new("RotationStatus", ns, engine, &target.name),
        phase: db.phase(),
        request: None,
        arc: None,
        tls: None,
    };
    // NB: the certificates and the backend's reads at once: neither needs the other.
    let (tls, ()) = futures::try_join!(
        tls_expiry(ctx, ns, &db, now),
        backend::of(engine).status(ctx, target, &db, ars.get(1), &mut report)
    )?;
    report.tls = tls;
    Ok(report)
}

/// The earliest certificate expiry of the Secrets `spec.tls` references (one GET each, all
/// at once, values skipped).
async fn tls_expiry(
    ctx: &Ctx,
    ns: &str,
    db: &DbItem,
    now: jiff::Timestamp,
) -> Result<Option<crate::tls::Expiry>> {
    let names = db.tls_secrets();
    let found: Vec<_> =
        futures::future::try_join_all(names.iter().map(|n| get_secret_summary(ctx, ns, n)))
            .await?
            .into_iter()
            .flatten()
            .collect();
    Ok(earliest_expiry(
        &names,
        |n| found.iter().find(|s| s.metadata.name == n),
        now,
    ))
}
