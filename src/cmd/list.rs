//! `kubectl rotate list [-A] [-l SELECTOR] [--older-than AGE]`: every database of every
//! installed kind with its credential's age, whether a previous one is kept, and what is in
//! flight.
//!
//! Requests: one aggregated discovery; one paged LIST per installed kind, all at once; what
//! each kind's backend reads for IN FLIGHT (KubeDB: one paged LIST of the kind's ops
//! requests, when it has databases); then
//! the Secrets: one paged LIST per namespace that has databases, or a single cluster-wide
//! one when there are many such namespaces. Never a GET per database. Pages are decoded into
//! a few fields each (Secrets: key names only) and dropped, so memory stays flat.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::api::concurrently;
use crate::api::discovery::{installed, Installed};
use crate::api::read::{collection_url, list_pages};
use crate::backend;
use crate::cli::ListArgs;
use crate::context::Ctx;
use crate::duration::OlderThan;
use crate::engines::EngineSpec;
use crate::error::{Error, Result};
use crate::model::secret::{earliest_expiry, SecretSummary};
use crate::model::{age_secs, DbItem};
use crate::report::{CredentialRow, InFlight};

/// How many LISTs run at once.
const CONCURRENCY: usize = 16;
/// Above this many namespaces with databases, one cluster-wide LIST of Secrets beats one
/// per namespace.
const PER_NAMESPACE_SECRET_LISTS: usize = 32;

/// A checked `list` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPlan {
    /// `-A`.
    pub all_namespaces: bool,
    /// `-l`.
    pub selector: Option<String>,
    /// `--older-than`.
    pub older_than: Option<OlderThan>,
}

/// Checks `list` arguments (pure: before any API call).
pub fn plan(args: &ListArgs) -> Result<ListPlan> {
    let selector = args.selector.clone();
    if let Some(s) = &selector {
        crate::target::check_selector(s)?;
    }
    Ok(ListPlan {
        all_namespaces: args.all_namespaces,
        selector,
        older_than: args.older_than.clone(),
    })
}

/// With `--older-than`: an error (exit 1) when any database is past it.
pub fn verdict(rows: &[CredentialRow], plan: &ListPlan) -> Result<()> {
    match &plan.older_than {
        Some(age) if !rows.is_empty() => Err(Error::Stale {
            count: rows.len(),
            older_than: age.to_string(),
        }),
        _ => Ok(()),
    }
}

/// One kind's databases and its in-flight rotations, keyed by (namespace, name).
struct KindRows {
    kind: Installed,
    dbs: Vec<DbItem>,
    in_flight: HashMap<(String, String), InFlight>,
}

/// Lists every installed kind and the Secrets the databases reference; returns the rows
/// sorted by namespace, kind and name, filtered by `--older-than`.
pub async fn run(ctx: &Ctx, plan: &ListPlan) -> Result<Vec<CredentialRow>> {
    let scope = (!plan.all_namespaces).then_some(ctx.namespace.as_str());
    let kinds = installed(ctx).await?;
    let per_kind = concurrently(kinds, CONCURRENCY, |kind| list_kind(ctx, kind, scope, plan))
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;

    // Which Secrets to read, per namespace.
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for k in &per_kind {
        for db in &k.dbs {
            let names = wanted.entry(db.metadata.namespace.clone()).or_default();
            names.extend(db.credential_secret(k.kind.engine));
            names.extend(db.tls_secrets());
        }
    }
    let secrets = read_secrets(ctx, &wanted, plan.all_namespaces).await?;

    let now = jiff::Timestamp::now();
    let mut rows: Vec<CredentialRow> = per_kind
        .into_iter()
        .flat_map(|k| {
            let KindRows {
                kind,
                dbs,
                mut in_flight,
            } = k;
            let secrets = &secrets;
            dbs.into_iter().map(move |db| {
                let key = (db.metadata.namespace.clone(), db.metadata.name.clone());
                let flight = in_flight.remove(&key);
                row(kind.engine, db, flight, secrets, now)
            })
        })
        .collect();
    if let Some(age) = &plan.older_than {
        let limit = i64::try_from(age.get().as_secs()).unwrap_or(i64::MAX);
        // NB: a credential of unknown age counts as overdue: a CI gate must not pass by default.
        rows.retain(|r| r.password_age_seconds.is_none_or(|a| a > limit));
    }
    rows.sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));
    Ok(rows)
}

/// One kind: its databases, then what its backend has in flight for them.
async fn list_kind(
    ctx: &Ctx,
    kind: Installed,
    scope: Option<&str>,
    plan: &ListPlan,
) -> Result<KindRows> {
    let mut dbs = Vec::new();
    list_pages::<DbItem>(
        ctx,
        &collection_url(&kind.ar, scope),
        plan.selector.as_deref(),
        None,
        |d| dbs.push(d),
    )
    .await?;
    let in_flight = backend::of(kind.engine)
        .in_flight(ctx, &kind, scope, &dbs)
        .await?;
    Ok(KindRows {
        kind,
        dbs,
        in_flight,
    })
}

/// Reads the wanted Secrets (values skipped): one paged LIST per namespace, or one
/// cluster-wide LIST when there are many namespaces. Only the wanted ones are kept.
async fn read_secrets(
    ctx: &Ctx,
    wanted: &BTreeMap<String, BTreeSet<String>>,
    all_namespaces: bool,
) -> Result<HashMap<(String, String), SecretSummary>> {
    let is_wanted = |s: &SecretSummary| {
        wanted
            .get(&s.metadata.namespace)
            .is_some_and(|names| names.contains(&s.metadata.name))
    };
    let mut found = HashMap::new();
    if all_namespaces && wanted.len() > PER_NAMESPACE_SECRET_LISTS {
        list_pages::<SecretSummary>(ctx, "/api/v1/secrets", None, None, |s| {
            if is_wanted(&s) {
                found.insert((s.metadata.namespace.clone(), s.metadata.name.clone()), s);
            }
        })
        .await?;
        return Ok(found);
    }
    let namespaces: Vec<&String> = wanted.keys().collect();
    let pages = concurrently(namespaces, CONCURRENCY, |ns| async move {
        let mut keep = Vec::new();
        list_pages::<SecretSummary>(
            ctx,
            &format!("/api/v1/namespaces/{ns}/secrets"),
            None,
            None,
            |s| {
                if is_wanted(&s) {
                    keep.push(s);
                }
            },
        )
        .await
        .map(|_| keep)
    })
    .await;
    for page in pages {
        for s in page? {
            found.insert((s.metadata.namespace.clone(), s.metadata.name.clone()), s);
        }
    }
    Ok(found)
}

/// One row (pure): the database, what is in flight for it, and the Secrets read.
fn row(
    engine: &'static EngineSpec,
    db: DbItem,
    in_flight: Option<InFlight>,
    secrets: &HashMap<(String, String), SecretSummary>,
    now: jiff::Timestamp,
) -> CredentialRow {
    let ns = db.metadata.namespace.clone();
    let lookup = |name: &str| secrets.get(&(ns.clone(), name.to_string()));
    let secret_name = db.credential_secret(engine);
    let secret = secret_name.as_deref().and_then(lookup);
    let tls_expiry = earliest_expiry(&db.tls_secrets(), lookup, now);
    let state = backend::of(engine).credential_state(engine, &db, secret, in_flight);
    // Since the last rotation, else since the database was created.
    let password_age_seconds = state
        .last_rotated
        .as_deref()
        .or(db.metadata.creation_timestamp.as_deref())
        .and_then(|t| age_secs(t, now));
    CredentialRow {
        phase: db.phase(),
        namespace: ns.clone(),
        kind: engine.kind,
        group: engine.group,
        name: db.metadata.name,
        secret: secret_name,
        last_rotated: state.last_rotated,
        password_age_seconds,
        prev_kept: state.prev_kept,
        in_flight: state.in_flight,
        credentials_generation: state.credentials_generation,
        tls_expiry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;
    use crate::report::PrevKept;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2026-11-22T00:00:00Z".parse().unwrap()
    }

    fn secrets(v: Vec<serde_json::Value>) -> HashMap<(String, String), SecretSummary> {
        v.into_iter()
            .map(|s| serde_json::from_value::<SecretSummary>(s).unwrap())
            .map(|s| ((s.metadata.namespace.clone(), s.metadata.name.clone()), s))
            .collect()
    }

    #[test]
    fn a_kubedb_row_ages_from_the_last_update_and_reads_prev_from_key_names() {
        let db: DbItem = serde_json::from_value(json!({
            "metadata": {"name": "pg", "namespace": "demo", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"authSecret": {"name": "pg-auth"}},
            "status": {"phase": "Ready", "authSecret": {"lastUpdateTimestamp": "2026-11-12T00:00:00Z"}}
        }))
        .unwrap();
        let s = secrets(vec![
            json!({"metadata": {"name": "pg-auth", "namespace": "demo"},
            "data": {"username": "", "password": "", "username.prev": "", "password.prev": ""}}),
        ]);
        let r = row(find("pg").unwrap(), db, None, &s, now());
        assert_eq!(r.password_age_seconds, Some(10 * 86_400));
        assert_eq!(r.prev_kept, PrevKept::Yes);
        assert_eq!(r.secret.as_deref(), Some("pg-auth"));
        assert_eq!(r.phase, "Ready");
    }

    #[test]
    fn a_missing_auth_secret_makes_prev_unknown_and_age_falls_back_to_creation() {
        let db: DbItem = serde_json::from_value(json!({
            "metadata": {"name": "pg", "namespace": "demo", "creationTimestamp": "2026-11-21T00:00:00Z"}
        }))
        .unwrap();
        let r = row(find("pg").unwrap(), db, None, &HashMap::new(), now());
        assert_eq!(r.prev_kept, PrevKept::Unknown);
        assert_eq!(r.password_age_seconds, Some(86_400));
        assert_eq!(r.phase, "Unknown");
    }

    #[test]
    fn an_arc_row_keeps_a_previous_generation_until_it_is_rolled_back_to() {
        let mi = |n: i64, action: &str| -> DbItem {
            serde_json::from_value(json!({
                "metadata": {"name": "mi", "namespace": "demo", "generation": 2,
                    "annotations": {"rotate.kubectl.dev/last-action": action, "rotate.kubectl.dev/generation": n.to_string(),
                                    "rotate.kubectl.dev/changed-at": "2026-11-21T00:00:00Z"}},
                "spec": {"security": {"adminLoginSecret": "mi-login-secret"}, "update": {"managedCredentialsGeneration": n}},
                "status": {"state": "Ready", "observedGeneration": 2}
            }))
            .unwrap()
        };
        let sqlmi = find("sqlmi").unwrap();
        let r = row(sqlmi, mi(1, "rotate"), None, &HashMap::new(), now());
        assert_eq!(r.prev_kept, PrevKept::Yes);
        assert_eq!(r.credentials_generation, Some(1));
        assert_eq!(r.password_age_seconds, Some(86_400));
        assert!(r.in_flight.is_none());
        let r = row(sqlmi, mi(0, "rollback"), None, &HashMap::new(), now());
        assert_eq!(r.prev_kept, PrevKept::No);
    }

    #[test]
    fn the_verdict_fails_only_when_stale_rows_remain_under_older_than() {
        let plan = ListPlan {
            all_namespaces: true,
            selector: None,
            older_than: Some("90d".parse().unwrap()),
        };
        assert!(verdict(&[], &plan).is_ok());
        let db: DbItem = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        let r = row(find("pg").unwrap(), db, None, &HashMap::new(), now());
        assert_eq!(
            verdict(std::slice::from_ref(&r), &plan)
                .unwrap_err()
                .exit_code(),
            1
        );
        let plain = ListPlan {
            older_than: None,
            ..plan
        };
        assert!(verdict(&[r], &plain).is_ok());
    }
}
