//! What the read verbs show of a KubeDB database: the auth Secret's current and previous
//! credentials (`prev`), the newest RotateAuth with its steps (`status`), every RotateAuth
//! with who asked for it (`history`), and a `list` row's credential state and in-flight
//! request. Requests are read with one paged LIST of the kind's ops requests.

use std::collections::{BTreeMap, HashMap};

use futures::future::BoxFuture;
use kube::api::ApiResource;

use super::KubeDb;

use crate::api::discovery::Installed;
use crate::api::read::{collection_url, list_pages};
use crate::audit::AuditRecord;
use crate::backend::{Activity, CredentialState, Credentials, Inspect, LoginPlace};
use crate::context::Ctx;
use crate::creds::pair;
use crate::engines::{EngineSpec, OpsSpec};
use crate::error::Result;
use crate::model::ops::{OpsItem, SecretUsed, ROTATE_AUTH};
use crate::model::secret::SecretSummary;
use crate::model::DbItem;
use crate::report::{HistoryReport, HistoryRequest, InFlight, PrevKept, RequestView, StatusReport};
use crate::target::Target;

/// When KubeDB last changed the credentials: set at creation and at each rotation.
fn last_update(db: &DbItem) -> Option<String> {
    db.status
        .auth_secret
        .as_ref()
        .and_then(|a| a.last_update_timestamp.clone())
}

/// Every RotateAuth for the target in the context's namespace, in the server's order.
async fn rotate_auths(
    ctx: &Ctx,
    target: &Target,
    ops: &OpsSpec,
    ops_ar: &ApiResource,
) -> Result<Vec<OpsItem>> {
    let ns = ctx.namespace.as_str();
    let mut items = Vec::new();
    list_pages::<OpsItem>(ctx, &collection_url(ops_ar, Some(ns)), None, None, |o| {
        if o.is_rotate_auth_for(ops, ns, &target.name) {
            items.push(o);
        }
    })
    .await?;
    Ok(items)
}

/// `status`: the newest RotateAuth for the target, if any ([`OpsItem::newest`], with the
/// request the database's Lease records as last written).
async fn newest_request(
    ctx: &Ctx,
    target: &Target,
    ops: &OpsSpec,
    ops_ar: &ApiResource,
) -> Result<Option<RequestView>> {
    let ns = ctx.namespace.as_str();
    // NB: at once: neither read depends on the other.
    let (record, all) = futures::try_join!(
        crate::api::lock::last_record(ctx, ns, target.engine.kind, &target.name),
        rotate_auths(ctx, target, ops, ops_ar)
    )?;
    let recorded = record.request;
    let newest = OpsItem::newest(all, recorded.as_deref());
    Ok(newest.map(|o| o.view(ops, jiff::Timestamp::now())))
}

/// `history`: every RotateAuth for the target, newest first, with who created it when the
/// plugin recorded an Event for it.
async fn requests(
    ctx: &Ctx,
    target: &Target,
    ops: &OpsSpec,
    ops_ar: &ApiResource,
    events: Vec<AuditRecord>,
) -> Result<Vec<HistoryRequest>> {
    let mut items = rotate_auths(ctx, target, ops, ops_ar).await?;
    let mut users: HashMap<String, String> = HashMap::new();
    let mut at: HashMap<String, jiff::Timestamp> = HashMap::new();
    for r in events {
        if let Some(req) = r.request {
            at.extend(r.at.map(|t| (req.clone(), t)));
            users.insert(req, r.entry.user);
        }
    }
    // NB: creation times have whole seconds; a rotation and the rollback right after it
    // often share one. The plugin's own Events order those precisely.
    items.sort_by_cached_key(|o| {
        let (created, name) = o.age_key();
        std::cmp::Reverse((created, at.get(&o.metadata.name).copied(), name))
    });
    let now = jiff::Timestamp::now();
    Ok(items
        .iter()
        .map(|o| HistoryRequest {
            request: o.view(ops, now),
            user: users.get(&o.metadata.name).cloned(),
        })
        .collect())
}

/// `list`: for each database of one kind, the newest RotateAuth still in flight and the
/// Secrets its RotateAuths took a credential from, from one paged LIST of the kind's ops
/// requests (none when nothing was listed). Each request is kept only as those few fields.
async fn activity(
    ctx: &Ctx,
    kind: &Installed,
    scope: Option<&str>,
) -> Result<HashMap<(String, String), Activity>> {
    let Some(ops_ar) = kind.ops_ar.as_ref() else {
        return Ok(HashMap::new());
    };
    let mut newest: HashMap<(String, String), OpsItem> = HashMap::new();
    let mut used: HashMap<(String, String), Vec<SecretUsed>> = HashMap::new();
    list_pages::<OpsItem>(ctx, &collection_url(ops_ar, scope), None, None, |o| {
        let Some(db) = o.target() else { return };
        let key = (o.metadata.namespace.clone(), db.to_string());
        if o.spec.type_ != ROTATE_AUTH {
            return;
        }
        if let Some(s) = SecretUsed::of(&o) {
            used.entry(key.clone()).or_default().push(s);
        }
        if o.in_flight() && newest.get(&key).is_none_or(|n| o.age_key() > n.age_key()) {
            newest.insert(key, o);
        }
    })
    .await?;
    let mut out: HashMap<(String, String), Activity> = used
        .into_iter()
        .map(|(k, u)| {
            let a = Activity {
                used_secrets: SecretUsed::newest_first(u),
                ..Default::default()
            };
            (k, a)
        })
        .collect();
    for (k, o) in newest {
        out.entry(k).or_default().in_flight = Some(InFlight {
            phase: o.phase(),
            name: o.metadata.name,
        });
    }
    Ok(out)
}

impl Inspect for KubeDb {
    /// The auth Secret's pair, rotated in at `status.authSecret.lastUpdateTimestamp`.
    fn credentials(
        &self,
        target: &Target,
        ns: &str,
        db: &DbItem,
        secret: &str,
        data: &BTreeMap<String, String>,
    ) -> Credentials {
        let (credentials, note) = pair(target.engine, secret, data, last_update(db));
        Credentials {
            credentials,
            generation: None,
            note: note.map(|n| format!("{n} (rotate with: kubectl rotate auth {target} -n {ns})")),
        }
    }

    /// The newest RotateAuth for the database, with its steps.
    fn status<'a>(
        &'a self,
        ctx: &'a Ctx,
        target: &'a Target,
        _db: &'a DbItem,
        ops_ar: Option<&'a ApiResource>,
        report: &'a mut StatusReport,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if let (Some(ops), Some(ops_ar)) = (target.engine.ops(), ops_ar) {
                report.request = newest_request(ctx, target, ops, ops_ar).await?;
            }
            Ok(())
        })
    }

    /// Every RotateAuth for the database, newest first, with who asked for it.
    fn history<'a>(
        &'a self,
        ctx: &'a Ctx,
        target: &'a Target,
        _db: &'a DbItem,
        ops_ar: Option<&'a ApiResource>,
        events: Vec<AuditRecord>,
        report: &'a mut HistoryReport,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if let (Some(ops), Some(ops_ar)) = (target.engine.ops(), ops_ar) {
                report.requests = requests(ctx, target, ops, ops_ar, events).await?;
            }
            Ok(())
        })
    }

    fn activity<'a>(
        &'a self,
        ctx: &'a Ctx,
        kind: &'a Installed,
        scope: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HashMap<(String, String), Activity>>> {
        Box::pin(activity(ctx, kind, scope))
    }

    /// The last update (else the auth Secret's creation), and whether the auth Secret
    /// keeps a previous credential, from its key names.
    fn credential_state(
        &self,
        engine: &EngineSpec,
        db: &DbItem,
        secret: Option<&SecretSummary>,
        in_flight: Option<InFlight>,
    ) -> CredentialState {
        let prev_kept = match secret {
            None => PrevKept::Unknown,
            Some(s) => match s.keeps_previous(engine.prev) {
                Some(true) => PrevKept::Yes,
                Some(false) => PrevKept::No,
                None => PrevKept::NotKept,
            },
        };
        CredentialState {
            last_rotated: last_update(db)
                .or_else(|| secret.and_then(|s| s.metadata.creation_timestamp.clone())),
            prev_kept,
            in_flight,
            credentials_generation: None,
        }
    }

    /// KubeDB's primary Service is named after the database, its primary pod is labelled
    /// `kubedb.com/role=primary`, and its server certificates name that Service.
    fn login_place(&self, db: &str, ns: &str) -> LoginPlace {
        let instance = format!("app.kubernetes.io/instance={db}");
        LoginPlace {
            pod_selectors: vec![
                (
                    format!("{instance},kubedb.com/role=primary"),
                    "labelled kubedb.com/role=primary",
                ),
                (instance, "of the instance; none is labelled primary"),
            ],
            fallback_pod: format!("{db}-0"),
            service: db.to_string(),
            server_name: format!("{db}.{ns}.svc"),
        }
    }
}
