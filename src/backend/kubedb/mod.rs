//! KubeDB: a rotation is a `<Kind>OpsRequest` of type `RotateAuth`; a rollback is a
//! basic-auth Secret made from the auth Secret's previous credential plus a RotateAuth that
//! uses it. One generic backend driven by the engine table: the request model
//! ([`request`]), where the credential comes from ([`credential`]), the read verbs'
//! views ([`inspect`]), and here the orchestration of one rotation.
//!
//! The ops request's name is derived from what it acts on (database uid, the auth Secret's
//! last update, the source Secret, the action), so a retried create collides with the
//! first one (409 AlreadyExists) and is adopted instead of starting a second rotation.

pub mod credential;
pub mod inspect;
pub mod request;

use std::collections::HashSet;
use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};

use self::credential::{
    create_credential_secret, credential_source, last_update_stamp, read_auth_secret, redacted,
    Source,
};
use self::request::{
    build_request, check_preconditions, create_request, follow_command, new_conditions,
    newest_rotate_auth, request_name, Origin,
};
use crate::api::access::Need;
use crate::api::discovery::Wanted;
use crate::api::lock;
use crate::api::read::{get_secret_opt, get_target};
use crate::api::retry;
use crate::api::session::Session;
use crate::api::watch::{bounded, follow};
use crate::backend::Rotate;
use crate::cli::DryRun;
use crate::context::Ctx;
use crate::engines::{OpsSpec, KUBEDB_OPS_GROUP};
use crate::error::{Error, Result};
use crate::model::ops::{is_terminal, OpsItem};
use crate::model::{DbItem, MANAGER};
use crate::plan::{NewCredential, Plan};
use crate::report::{object_name, Action, Outcome, Progress, ProgressEvent, RequestRef, Rotation};

/// The KubeDB backend (see [`crate::backend::Backend`]).
pub struct KubeDb;

/// The server-side objects one run works with.
pub struct Apis {
    pub db: Api<DynamicObject>,
    pub ops: Api<DynamicObject>,
    pub secrets: Api<Secret>,
    pub db_ar: ApiResource,
    pub ops_ar: ApiResource,
}

/// Rotates or rolls back a KubeDB database within a session (shared with other targets, or
/// of its own): resolve, take the database's lock, check, decide the credential's source,
/// create (or preview) the ops request, give the lock up, and optionally follow the request.
/// `db` is the database when the caller already listed it (bulk selections), saving a GET.
///
/// Round trips, one target: (1) discovery with the lock's Lease; (2) the database, the
/// claim on the lock (the first claim, which creates the Lease, waits for the database),
/// the ops requests and the auth Secret, at once; (3) the ops request's POST (a new
/// Secret's first); then the watch, while the lock is released and the audit Event
/// written.
async fn run_in(
    session: &Session,
    plan: &Plan,
    db: Option<DynamicObject>,
    progress: &mut dyn Progress,
) -> Result<Outcome> {
    let ctx = session.ctx();
    let engine = plan.target.engine;
    let ops = engine
        .ops()
        .ok_or_else(|| Error::Unexpected(format!("{} has no ops request", engine.kind)))?;
    let ns = plan.namespace.as_str();
    let (kind, name) = (engine.kind, plan.target.name.as_str());
    // NB: dry runs write nothing, so they take no lock.
    let locking = plan.dry_run == DryRun::None;
    let wanted = Wanted::engine_and_ops(engine);
    let needs = crate::backend::needs(plan);
    let (mut ars, peeked, ()) = futures::try_join!(
        session.resolve(&wanted),
        async {
            match locking {
                true => lock::peek(ctx, ns, kind, name).await.map(Some),
                false => Ok(None),
            }
        },
        async {
            // NB: a server-side dry run writes nothing, yet its request records who sent
            // it: who that is is asked now, not after the reads.
            match plan.dry_run {
                DryRun::None => session.authorize(&needs).await,
                DryRun::Server => {
                    crate::api::access::user(ctx).await;
                    Ok(())
                }
                DryRun::Client => Ok(()),
            }
        }
    )?;
    let (ops_ar, db_ar) = (ars.remove(1), ars.remove(0));
    let apis = Apis {
        db: Api::namespaced_with(ctx.client.clone(), ns, &db_ar),
        ops: Api::namespaced_with(ctx.client.clone(), ns, &ops_ar),
        secrets: Api::namespaced(ctx.client.clone(), ns),
        db_ar,
        ops_ar,
    };
    // The auth Secret by the engine's default name, read with the rest, when a rotation
    // uses it only to name its request (see `early_auth_read`); the database may name
    // another (then it is read again in `write`). A failed read here is no answer.
    let default_auth = format!("{name}{}", engine.auth_suffix);
    let read_early = early_auth_read(plan);
    let (db, claimed, snapshot, auth) = futures::join!(
        async {
            match db {
                Some(db) => Ok(db),
                None => get_target(&apis.db, &plan.target, ns).await,
            }
        },
        async {
            match &peeked {
                // NB: only an existing Lease is claimed before the database is known to
                // exist: a first claim creates one, and a typo must not leave it behind.
                Some(Some(lease)) => lock::claim(ctx, ns, kind, name, Some(lease.clone()))
                    .await
                    .map(Some),
                _ => Ok(None),
            }
        },
        session.ops_snapshot(&apis.ops_ar, ns),
        async {
            match read_early {
                true => get_secret_opt(&apis.secrets, ns, &default_auth).await,
                false => Ok(None),
            }
        },
    );
    let claimed = match (claimed?, &peeked, &db) {
        (None, Some(None), Ok(found)) => {
            // NB: a rotation a controller would revert is refused before the first claim
            // creates the Lease, so that nothing at all is written (when the Secret read
            // early is the database's; else `write` checks the one it names).
            let named = DbItem::from_dynamic(found).credential_secret(engine);
            if let (true, Ok(Some(secret))) = (read_early, &auth) {
                if secret.metadata.name.is_some() && secret.metadata.name == named {
                    credential::not_reverted(plan, secret)?;
                }
            }
            Some(lock::claim(ctx, ns, kind, name, None).await?)
        }
        (claimed, _, _) => claimed,
    };
    let lock = match claimed {
        None => None,
        Some(Ok(held)) => Some(held),
        Some(Err(busy)) => return Err(busy_error(plan, &busy)),
    };
    let checked = async {
        let (db, snapshot) = (db?, snapshot?);
        // NB: in a session of its own the ops requests were listed after the Lease was
        // read free, so they hold whatever the last holder wrote; a shared list may be
        // older, so the request the Lease records is read again.
        if let Some(held) = &lock {
            let fresh = (!session.shared_watch()).then_some(snapshot.items.as_slice());
            check_recorded(plan, ops, &apis, held, fresh).await?;
        }
        Ok::<_, Error>(db)
    }
    .await;
    let last = lock.as_ref().and_then(|l| l.previous.request.clone());
    let written = match checked {
        Ok(db) => {
            let found = Found {
                db: &db,
                last: last.as_deref(),
                auth: auth.ok().flatten(),
            };
            write(session, plan, ops, &apis, found, progress)
                .await
                .map(|w| (db, w))
        }
        Err(e) => Err(e),
    };
    let release = |request: Option<String>| async move {
        match lock {
            Some(l) => l.release(ctx, request.as_deref()).await.err().map(|e| {
                format!(
                    "{e}; the lock expires by itself within {}s",
                    lock::TTL_SECONDS
                )
            }),
            None => None,
        }
    };
    let (db, created, origin, mut rotation, started) = match written {
        Err(e) => {
            if let Some(w) = release(None).await {
                progress.warn(&w);
            }
            return Err(e);
        }
        Ok((_, Written::Done(outcome))) => {
            if let Some(w) = release(None).await {
                progress.warn(&w);
            }
            return Ok(outcome);
        }
        Ok((
            db,
            Written::Request {
                created,
                origin,
                rotation,
                started,
            },
        )) => (db, created, origin, rotation, started),
    };
    let request_name = created.metadata.name.clone().unwrap_or_default();
    if origin == Origin::Adopted {
        progress.warn(&format!(
            "{} {request_name} already existed with the same spec (an earlier attempt of this \
             command); following it instead of creating another",
            ops.kind
        ));
    }
    // The bookkeeping after the write: the lock given up (recording the request) and the
    // audit Event, at once, and while the wait begins. Their warnings come after.
    let bookkeeping = async {
        let audit = async {
            match origin {
                Origin::Adopted => None,
                _ => {
                    crate::audit::record(
                        ctx,
                        &db,
                        &apis.db_ar,
                        plan.action,
                        crate::audit::Detail::Request(request_name.clone()),
                    )
                    .await
                }
            }
        };
        let (released, audited) = futures::join!(release(Some(request_name.clone())), audit);
        [released, audited]
    };
    if !plan.wait {
        for w in bookkeeping.await.into_iter().flatten() {
            progress.warn(&w);
        }
        let follow = Some(follow_command(ops, &request_name, ns));
        return Ok(Outcome::Done { rotation, follow });
    }

    let (warnings, waited) = futures::join!(
        bookkeeping,
        wait_for(session, &apis, ops, plan, &created, progress)
    );
    for w in warnings.into_iter().flatten() {
        progress.warn(&w);
    }
    let finished = match waited {
        Ok(f) => f,
        Err(e @ (Error::Timeout { .. } | Error::Interrupted { .. })) => return Err(e),
        Err(e) => {
            return Err(Error::OutcomeUnknown {
                written: format!(
                    "{} {ns}/{request_name} was created",
                    ops.kind.to_ascii_lowercase()
                ),
                source: Box::new(e),
                follow: follow_command(ops, &request_name, ns),
            })
        }
    };
    rotation.duration_seconds = Some(started.elapsed().as_secs_f64());
    let finished = OpsItem::from_dynamic(&finished);
    rotation.phase = finished.phase();
    if rotation.phase != "Successful" {
        return Err(Error::RotationFailed {
            request: format!("{} {request_name}", ops.kind.to_ascii_lowercase()),
            phase: rotation.phase,
            reason: finished.failure_reason(),
        });
    }
    rotation.message = finished.last_message();
    Ok(Outcome::Done {
        rotation,
        follow: None,
    })
}

/// What the write phase came to.
// NB: one value per target, moved once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Written {
    /// Nothing more to do: a preview, or a server dry run's result.
    Done(Outcome),
    /// The ops request the server holds now.
    Request {
        created: DynamicObject,
        origin: Origin,
        rotation: Rotation,
        started: Instant,
    },
}

/// Whether the auth Secret may be read before the lock is held. A read sent with the
/// claim can miss the last rotation's change to the Secret when that rotation ended just
/// then, so it serves only where a stale copy is harmless: an operator-generated rotation
/// uses it to name its request (a stale name collides with the finished request's and the
/// next name is taken). A rollback takes the previous credential from it, and a supplied
/// or generated one is compared with (or takes its user from) the current one: they read
/// it under the lock.
fn early_auth_read(plan: &Plan) -> bool {
    plan.action == Action::Rotate && plan.credential == NewCredential::Operator && !plan.retry
}

/// Another command holds the database's lock (exit 3).
fn busy_error(plan: &Plan, busy: &lock::Busy) -> Error {
    let (target, ns) = (&plan.target, plan.namespace.as_str());
    Error::InProgress {
        target: target.to_string(),
        request: "another kubectl rotate command".into(),
        phase: format!(
            "writing one now (started by {} at {})",
            busy.user.as_deref().unwrap_or("an unknown user"),
            busy.since.as_deref().unwrap_or("an unknown time")
        ),
        follow: format!("kubectl rotate status {target} -n {ns}"),
    }
}

/// Refuses (exit 3), saying who started it and when, when the request the last holder of
/// the lock wrote is still running: looked up in `fresh` (ops requests listed after the
/// Lease was read), else read.
async fn check_recorded(
    plan: &Plan,
    ops: &OpsSpec,
    apis: &Apis,
    held: &lock::Held,
    fresh: Option<&[DynamicObject]>,
) -> Result<()> {
    let (target, ns) = (&plan.target, plan.namespace.as_str());
    let Some(last) = held.previous.request.clone() else {
        return Ok(());
    };
    let found = match fresh {
        Some(items) => items
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some(last.as_str()))
            .cloned(),
        None => retry(|| apis.ops.get_opt(&last))
            .await
            .map_err(|e| Error::api(format!("get {} {ns}/{last}", ops.plural), e))?,
    };
    let running = found
        .map(|o| OpsItem::from_dynamic(&o))
        .filter(OpsItem::in_flight);
    let Some(running) = running else {
        return Ok(());
    };
    let record = &held.previous;
    Err(Error::InProgress {
        target: target.to_string(),
        request: format!("{} {last}", ops.kind.to_ascii_lowercase()),
        phase: format!(
            "{} (started by {} at {})",
            running.phase(),
            record.user.as_deref().unwrap_or("an unknown user"),
            record.at.as_deref().unwrap_or("an unknown time")
        ),
        follow: follow_command(ops, &last, ns),
    })
}

/// What the reads before the write phase found: the database, the request the lock's
/// Lease records as the last one written under it, and the auth Secret if it was read by
/// the engine's default name.
struct Found<'a> {
    db: &'a DynamicObject,
    last: Option<&'a str>,
    auth: Option<Secret>,
}

/// The write phase, under the lock: check that nothing is in flight, decide where the
/// credential comes from, then create the Secret it needs and the ops request (or preview
/// them, or have the server check them in a dry run).
/// `last` is the request the plugin last wrote under the lock, as the Lease records it.
async fn write(
    session: &Session,
    plan: &Plan,
    ops: &OpsSpec,
    apis: &Apis,
    found: Found<'_>,
    progress: &mut dyn Progress,
) -> Result<Written> {
    let Found {
        db,
        last,
        auth: read_auth,
    } = found;
    let ctx = session.ctx();
    let engine = plan.target.engine;
    let ns = plan.namespace.as_str();
    let db_name = plan.target.name.as_str();
    // Everything is checked before the first write.
    let item = DbItem::from_dynamic(db);
    let existing = session.ops_snapshot(&apis.ops_ar, ns).await?;
    check_preconditions(plan, ops, &item, &existing.items, last)?;
    // NB: a KubeDB database always has an auth Secret name (spec or the engine's default).
    let auth_name = item.credential_secret(engine).unwrap_or_default();
    let auth = match read_auth {
        Some(s)
            if early_auth_read(plan) && s.metadata.name.as_deref() == Some(auth_name.as_str()) =>
        {
            s
        }
        _ => read_auth_secret(apis, plan, &auth_name).await?,
    };
    // What the request's name is derived from: these change whenever the credentials do.
    let stamp = last_update_stamp(&item, &auth);
    let uid = db.metadata.uid.clone().unwrap_or_default();
    // A retry takes its action and source from the failed request; anything else decides
    // where the new credential comes from.
    let retried;
    let (plan, source) = if plan.retry {
        let (action, source) = retry_source(plan, ops, apis, &existing.items, last).await?;
        retried = Plan {
            action,
            ..plan.clone()
        };
        (&retried, source)
    } else {
        let source = credential_source(plan, apis, db, &auth, &[&uid, &stamp]).await?;
        (plan, source)
    };
    let name_for = |attempt| {
        request_name(
            db_name,
            plan.action,
            &[&uid, &stamp, &source.name_input],
            attempt,
        )
    };

    if plan.dry_run == DryRun::Client {
        let outcome = preview(plan, ops, &apis.ops_ar, &name_for(0), &source)?;
        return Ok(Written::Done(outcome));
    }

    let mut rotation = Rotation::new(ns, engine, db_name, plan.action);
    rotation.secret = source.secret_ref.clone();
    rotation.dry_run = plan.dry_run;
    let pp = PostParams {
        dry_run: plan.dry_run == DryRun::Server,
        field_manager: Some(MANAGER.into()),
    };
    let started = Instant::now();
    let secret_ref = source.secret_ref.as_deref();
    let posts = async {
        if let Some(secret) = &source.new_secret {
            create_credential_secret(&apis.secrets, &pp, plan, secret).await?;
        }
        create_request(ctx, apis, &pp, ops, plan, &name_for, secret_ref).await
    };
    // NB: Ctrl-C between the Secret's POST and the request's must not leave a Secret that
    // holds a password and serves nothing: the writes stop, and what was written is undone
    // or reported.
    let made = tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c(), if plan.dry_run == DryRun::None => {
            return Err(interrupted_write(ctx, apis, ops, plan, &source).await);
        }
        made = posts => made,
    };
    let (created, origin) = match made {
        Ok(c) => c,
        // NB: in a server dry run the new Secret was not saved, so KubeDB's webhook,
        // which checks that the referenced Secret exists, refuses the ops request. All
        // else was checked; say so rather than fail.
        Err(Error::Api { source: e, .. })
            if plan.dry_run == DryRun::Server
                && source.new_secret.is_some()
                && refuses_the_secret_reference(&e) =>
        {
            progress.warn(&format!(
                "server dry run: the ops request's admission check could not see Secret {} \
                     (a dry run does not save it); the Secret itself was accepted",
                secret_ref.unwrap_or_default()
            ));
            rotation.request = Some(request_ref(ops, name_for(0)));
            rotation.phase = "Pending".into();
            return Ok(Written::Done(Outcome::Done {
                rotation,
                follow: None,
            }));
        }
        Err(e) => {
            // Leave nothing behind: the Secret made for this request is of no use without it.
            if let (Some(name), DryRun::None) = (
                source
                    .new_secret
                    .as_ref()
                    .and_then(|s| s.metadata.name.clone()),
                plan.dry_run,
            ) {
                let _ = apis.secrets.delete(&name, &Default::default()).await;
            }
            return Err(e);
        }
    };
    let request_name = created.metadata.name.clone().unwrap_or_default();
    rotation.request = Some(request_ref(ops, request_name.clone()));
    rotation.adopted = origin == Origin::Adopted;
    rotation.phase = OpsItem::from_dynamic(&created).phase();
    if plan.dry_run == DryRun::Server {
        return Ok(Written::Done(Outcome::Done {
            rotation,
            follow: None,
        }));
    }
    progress.event(&ProgressEvent::Submitted(request_ref(ops, request_name)));
    Ok(Written::Request {
        created,
        origin,
        rotation,
        started,
    })
}

/// `retry`: the newest RotateAuth for the database, which must have Failed, and what it
/// asked for: its action (the plugin's annotation; a rotation when it has none) and its
/// Secret, which must still exist. The new request's name is derived from the failed one.
async fn retry_source(
    plan: &Plan,
    ops: &OpsSpec,
    apis: &Apis,
    existing: &[DynamicObject],
    recorded: Option<&str>,
) -> Result<(Action, Source)> {
    let (target, ns) = (&plan.target, plan.namespace.as_str());
    let Some(last) = newest_rotate_auth(existing, ops, ns, &target.name, recorded) else {
        return Err(Error::Refused(format!(
            "{target} has no RotateAuth to retry; rotate it with `kubectl rotate auth {target} -n {ns}`"
        )));
    };
    let name = last.metadata.name.clone();
    if last.phase() != "Failed" {
        return Err(Error::Refused(format!(
            "the last rotation of {target}, {} {name}, is {}: retry re-runs only a Failed one",
            ops.kind.to_ascii_lowercase(),
            last.phase()
        )));
    }
    let action = match last
        .metadata
        .annotations
        .get(crate::model::annotations::LAST_ACTION)
    {
        Some(a) if a == Action::Rollback.as_str() => Action::Rollback,
        _ => Action::Rotate,
    };
    let secret_ref = last.secret_ref().map(str::to_string);
    if let Some(s) = &secret_ref {
        crate::api::read::get_secret(
            &apis.secrets,
            ns,
            s,
            &format!("{name} used it; without it the rotation cannot be re-run as it was"),
        )
        .await?;
    }
    Ok((
        action,
        Source {
            secret_ref,
            new_secret: None,
            name_input: format!("retry of {name}"),
            describe: "",
        },
    ))
}

/// Ctrl-C during the write phase: if this command's ops request exists (its POST landed),
/// the rotation goes on and the error says how to follow it; else nothing was written but
/// perhaps the Secret made for it, which is deleted.
async fn interrupted_write(
    ctx: &Ctx,
    apis: &Apis,
    ops: &OpsSpec,
    plan: &Plan,
    source: &Source,
) -> Error {
    let ns = plan.namespace.as_str();
    let lp = kube::api::ListParams::default().labels(&format!(
        "app.kubernetes.io/instance={},{}",
        plan.target.name,
        crate::model::MANAGED_BY_SELECTOR
    ));
    let ours = retry(|| apis.ops.list(&lp)).await.map(|l| {
        l.items.into_iter().find(|o| {
            o.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::model::annotations::REQUEST_ID))
                == Some(&ctx.command_id)
        })
    });
    match ours {
        Ok(Some(o)) => Error::Interrupted {
            follow: follow_command(ops, &o.metadata.name.unwrap_or_default(), ns),
        },
        Ok(None) => {
            let removed = source
                .new_secret
                .as_ref()
                .and_then(|s| s.metadata.name.clone());
            if let Some(name) = &removed {
                let _ = apis.secrets.delete(name, &Default::default()).await;
            }
            Error::InterruptedBeforeWrite { removed }
        }
        // NB: the server cannot say whether the request landed: say that, and how to look.
        Err(e) => Error::OutcomeUnknown {
            written: format!("the rotation of {} was being written", plan.target),
            source: Box::new(Error::api("list the ops requests", e)),
            follow: format!("kubectl rotate status {} -n {ns}", plan.target),
        },
    }
}

/// Whether the server refused an ops request for its `spec.authentication` (the field that
/// references the credential Secret), as KubeDB's webhook does when that Secret is missing:
/// read from the Status's causes, not its message.
fn refuses_the_secret_reference(e: &kube::Error) -> bool {
    let kube::Error::Api(status) = e else {
        return false;
    };
    matches!(status.code, 400 | 403 | 404 | 422)
        && status.details.as_ref().is_some_and(|d| {
            d.causes
                .iter()
                .any(|c| c.field.starts_with("spec.authentication"))
        })
}

fn request_ref(ops: &OpsSpec, name: String) -> RequestRef {
    RequestRef {
        kind: ops.kind.into(),
        group: KUBEDB_OPS_GROUP.into(),
        name,
    }
}

/// `--dry-run=client`: what would be sent, Secret values redacted (pure).
fn preview(
    plan: &Plan,
    ops: &OpsSpec,
    ops_ar: &ApiResource,
    name: &str,
    source: &Source,
) -> Result<Outcome> {
    let ns = plan.namespace.as_str();
    let request = build_request(ops_ar, ops, plan, name, source.secret_ref.as_deref());
    let mut documents = Vec::new();
    let mut requests = Vec::new();
    if let Some(s) = &source.new_secret {
        documents.push(redacted(s));
        requests.push(format!(
            "POST secrets {ns}/{} (values shown as ********: {})",
            s.metadata.name.as_deref().unwrap_or_default(),
            source.describe
        ));
    }
    documents.push(serde_json::to_value(&request).map_err(|e| Error::Unexpected(e.to_string()))?);
    requests.push(format!(
        "POST {}.{KUBEDB_OPS_GROUP} {ns}/{name} ({})",
        ops.plural, ops_ar.version
    ));
    Ok(Outcome::Preview {
        documents,
        name: object_name(ops.kind, KUBEDB_OPS_GROUP, name),
        request: Some(request_ref(ops, name.to_string())),
        requests,
    })
}

/// Follows an ops request to a final phase, reporting each new condition and phase once:
/// through the session's shared watch with many targets, else with a watch of its own.
async fn wait_for(
    session: &Session,
    apis: &Apis,
    ops: &OpsSpec,
    plan: &Plan,
    created: &DynamicObject,
    progress: &mut dyn Progress,
) -> Result<DynamicObject> {
    let name = created.metadata.name.clone().unwrap_or_default();
    let mut seen = HashSet::new();
    let mut last_phase = String::new();
    let step = |o: &DynamicObject| {
        let item = OpsItem::from_dynamic(o);
        let phase = item.phase();
        for e in new_conditions(&item, &mut seen) {
            progress.event(&e);
        }
        if phase != last_phase {
            last_phase = phase.clone();
            progress.event(&ProgressEvent::Phase {
                object: name.clone(),
                phase: phase.clone(),
                detail: None,
            });
        }
        Ok(is_terminal(&phase).then(|| o.clone()))
    };
    let watching = async {
        if session.shared_watch() {
            session.follow_shared(&apis.ops_ar, created, step).await
        } else {
            follow(session.ctx(), &apis.ops, created, step).await
        }
    };
    bounded(
        watching,
        plan.wait_bound(),
        format!("{} {name}", ops.kind.to_ascii_lowercase()),
        follow_command(ops, &name, &plan.namespace),
    )
    .await
}

impl Rotate for KubeDb {
    /// Every credential source is KubeDB's: the operator's, a Secret, or one the plugin
    /// makes; a retry is a new RotateAuth like the failed one.
    fn check(&self, _plan: &Plan) -> Result<()> {
        Ok(())
    }

    /// The lock's Lease (created the first time, updated after), the ops request, the
    /// audit Event; the Secret a rollback, `--password-stdin` or `--generate` makes; with
    /// `--wait`, the ops request's watch.
    fn needs(&self, plan: &Plan) -> Vec<Need> {
        let ns = plan.namespace.as_str();
        let engine = plan.target.engine;
        let lease = lock::lease_name(engine.kind, &plan.target.name);
        let mut needs = vec![
            Need::new("create", lock::GROUP, "leases", ns),
            Need::new("update", lock::GROUP, "leases", ns).named(&lease),
            Need::new("create", "", "events", ns),
        ];
        if let Some(ops) = engine.ops() {
            needs.push(Need::new("create", KUBEDB_OPS_GROUP, ops.plural, ns));
            if plan.wait {
                needs.push(Need::new("watch", KUBEDB_OPS_GROUP, ops.plural, ns));
            }
        }
        let makes_secret = !plan.retry
            && (plan.action == Action::Rollback
                || matches!(
                    plan.credential,
                    NewCredential::Supplied { .. } | NewCredential::Generate { .. }
                ));
        // NB: deleting the Secret again, when its request cannot be made, is best effort
        // (a Secret left over is said so), so it is not required.
        if makes_secret {
            needs.push(Need::new("create", "", "secrets", ns));
        }
        needs
    }

    /// The database, its auth Secret, its lock's Lease, and its kind's ops requests (the
    /// one in flight, the last one).
    fn reads(&self, plan: &Plan, db: &DbItem) -> Vec<Need> {
        let (ns, engine) = (plan.namespace.as_str(), plan.target.engine);
        let name = plan.target.name.as_str();
        let mut reads = vec![
            Need::new("get", engine.group, engine.plural, ns).named(name),
            Need::new("get", lock::GROUP, "leases", ns).named(&lock::lease_name(engine.kind, name)),
        ];
        if let Some(secret) = db.credential_secret(engine) {
            reads.push(Need::new("get", "", "secrets", ns).named(&secret));
        }
        if let Some(ops) = engine.ops() {
            reads.push(Need::new("list", KUBEDB_OPS_GROUP, ops.plural, ns));
            reads.push(Need::new("get", KUBEDB_OPS_GROUP, ops.plural, ns));
        }
        reads
    }

    fn change<'a>(
        &'a self,
        session: &'a Session,
        plan: &'a Plan,
        found: Option<DynamicObject>,
        progress: &'a mut dyn Progress,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(run_in(session, plan, found, progress))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: u16, field: &str) -> kube::Error {
        let details = serde_json::from_value(serde_json::json!({
            "causes": [{"field": field, "message": "referenced secret demo/x not found"}]
        }))
        .expect("StatusDetails");
        kube::Error::Api(
            kube::core::Status::failure("denied", "Invalid")
                .with_code(code)
                .with_details(details)
                .boxed(),
        )
    }

    #[test]
    fn a_refusal_of_the_secret_reference_is_told_by_its_cause_field_not_its_text() {
        assert!(refuses_the_secret_reference(&refusal(
            422,
            "spec.authentication"
        )));
        assert!(refuses_the_secret_reference(&refusal(
            400,
            "spec.authentication.secretRef.name"
        )));
        assert!(!refuses_the_secret_reference(&refusal(
            422,
            "spec.databaseRef"
        )));
        assert!(!refuses_the_secret_reference(&refusal(
            500,
            "spec.authentication"
        )));
    }
}
