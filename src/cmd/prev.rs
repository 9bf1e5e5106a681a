//! `kubectl rotate prev TYPE/NAME`: the current and the previous credential side by side,
//! read from the credential Secret per the engine's layout, and what the backend adds (Arc:
//! the service-managed credentials generation). Values stay masked unless `--reveal`.

use crate::api::read::{read_credential_secret, CredentialSecret};
use crate::backend;
use crate::cli::PrevArgs;
use crate::context::Ctx;
use crate::error::Result;
use crate::report::PrevReport;
use crate::target::Target;

/// Checks `prev` arguments (pure: before any API call).
pub fn plan(args: &PrevArgs) -> Result<Target> {
    Target::parse(&args.target)
}

/// Reads the target and its credential Secret.
pub async fn run(ctx: &Ctx, target: &Target) -> Result<PrevReport> {
    let engine = target.engine;
    let ns = ctx.namespace.as_str();
    let CredentialSecret { db, name, data } = read_credential_secret(ctx, ns, target).await?;
    let c = backend::of(engine).credentials(target, ns, &db, &name, &data);
    Ok(PrevReport {
        namespace: ns.to_string(),
        target_kind: engine.kind.to_string(),
        target_group: engine.group.to_string(),
        name: target.name.clone(),
        credentials: c.credentials,
        generation: c.generation,
        note: c.note,
    })
}
