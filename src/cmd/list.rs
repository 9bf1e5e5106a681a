//! `kubectl rotate list [-A] [-l SELECTOR] [--older-than AGE]`: every database of every
//! installed kind with its credential's age, whether a previous one is kept, and what is in
//! flight.
//!
//! Requests: one aggregated discovery; then, all at once (a pool, not waves), one LIST per
//! installed kind, what each kind's backend reads for IN FLIGHT (KubeDB: one LIST of the
//! kind's ops requests), and one LIST of the Secrets (of the namespace, or with `-A` of the
//! cluster): none of them waits for another's answer, so the critical path is two round
//! trips (more only when `--chunk-size` pages a collection). Never a GET per database.
//! With `-o wide|json|yaml`, the same pool also lists the seven workload kinds, for
//! CONSUMERS. Pages are decoded into a few fields each (Secrets: key names and certificate
//! expiry, never values; workloads: the Secrets they read) and dropped, so memory stays
//! flat.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::api::concurrently;
use crate::api::discovery::{installed, remember, remembered, Installed};
use crate::api::read::{collection_url, list_pages};
use crate::backend::{self, Activity};
use crate::cli::Format;
use crate::cli::ListArgs;
use crate::context::Ctx;
use crate::duration::OlderThan;
use crate::engines::EngineSpec;
use crate::error::{Error, Result};
use crate::model::consumers::{is_top_level, secrets_read, watched_secrets};
use crate::model::secret::{earliest_expiry, SecretSummary};
use crate::model::{age_secs, DbItem};
use crate::report::{ConsumerCount, CredentialRow};

/// How many LISTs run at once: all that a cluster with every supported kind installed needs
/// (31 kinds, 30 ops-request kinds, the Secrets), so none waits for a slot.
const CONCURRENCY: usize = 64;

/// A checked `list` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPlan {
    /// `-A`.
    pub all_namespaces: bool,
    /// `-l`.
    pub selector: Option<String>,
    /// `--older-than`.
    pub older_than: Option<OlderThan>,
    /// Whether to read who consumes each credential (CONSUMERS) and the schedules (NEXT
    /// ROTATION): for the formats that show them, `-o wide|json|yaml` (and the templates,
    /// which reshape JSON).
    pub details: bool,
}

/// Checks `list` arguments (pure: before any API call); `format` is what it prints in.
pub fn plan(args: &ListArgs, format: Format) -> Result<ListPlan> {
    let selector = args.selector.clone();
    if let Some(s) = &selector {
        crate::target::check_selector(s)?;
    }
    Ok(ListPlan {
        all_namespaces: args.all_namespaces,
        selector,
        older_than: args.older_than.clone(),
        details: matches!(format, Format::Wide | Format::Json | Format::Yaml),
    })
}

/// What `list` found: the rows, and what could not be read (said on stderr).
#[derive(Debug, Default)]
pub struct ListReport {
    /// The databases, sorted by namespace, kind and name.
    pub rows: Vec<CredentialRow>,
    /// What could not be read: a workload kind the user may not list, say.
    pub warnings: Vec<String>,
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

/// What each backend's records say, by database (namespace, name).
type ActivityByDb = HashMap<(String, String), Activity>;

/// A workload that reads Secrets: all `list` keeps of it.
struct WorkloadUse {
    namespace: String,
    /// The Secrets it reads.
    secrets: Vec<String>,
}

/// One of the LISTs `list` sends, all at once.
#[derive(Clone)]
enum Read {
    /// The databases of one kind.
    Databases(Installed),
    /// What one kind's backend records.
    Activity(Installed),
    /// The Secrets of the scope.
    Secrets,
    /// The workloads of one kind (Deployment, ...) in the scope, at this URL.
    Workloads(&'static str, String),
    /// The CronJobs `kubectl rotate schedule` made in the scope.
    Schedules,
}

impl Read {
    /// What the read is of: two reads with the same key give the same answer.
    fn key(&self) -> String {
        match self {
            Read::Databases(k) => collection_url(&k.ar, None),
            Read::Activity(k) => format!(
                "activity: {} {}",
                k.engine.kind,
                k.ops_ar
                    .as_ref()
                    .map(|o| collection_url(o, None))
                    .unwrap_or_default()
            ),
            Read::Secrets => "secrets".into(),
            Read::Workloads(_, url) => url.clone(),
            Read::Schedules => "schedules".into(),
        }
    }

    /// The reads for `kinds`, and the Secrets.
    fn all(kinds: &[Installed]) -> Vec<Read> {
        kinds
            .iter()
            .flat_map(|k| [Read::Databases(k.clone()), Read::Activity(k.clone())])
            .chain([Read::Secrets])
            .collect()
    }
}

/// What one [`Read`] gave.
enum Got {
    Databases(Vec<DbItem>),
    Activity(ActivityByDb),
    Secrets(HashMap<(String, String), SecretSummary>),
    Workloads(Vec<WorkloadUse>),
    Schedules(Vec<Value>),
}

/// Lists every installed kind, what is in flight, and the Secrets; returns the rows sorted
/// by namespace, kind and name, filtered by `--older-than`.
///
/// The reads of the kinds the last discovery on this cluster found start with discovery
/// itself: when discovery confirms them (the same resources at the same versions), their
/// answers count and the critical path is one round trip; a kind it finds anew is read
/// then, and a read it does not confirm is dropped.
pub async fn run(ctx: &Ctx, plan: &ListPlan) -> Result<ListReport> {
    let scope = (!plan.all_namespaces).then_some(ctx.namespace.as_str());
    let fetch = |read: Read| async move {
        let key = read.key();
        let got = match read {
            Read::Databases(kind) => {
                let mut dbs = Vec::new();
                list_pages::<DbItem>(
                    ctx,
                    &collection_url(&kind.ar, scope),
                    plan.selector.as_deref(),
                    None,
                    |d| dbs.push(d),
                )
                .await
                .map(|_| Got::Databases(dbs))
            }
            Read::Activity(kind) => backend::of(kind.engine)
                .activity(ctx, &kind, scope)
                .await
                .map(Got::Activity),
            Read::Secrets => read_secrets(ctx, scope).await.map(Got::Secrets),
            Read::Workloads(kind, url) => read_workloads(ctx, kind, &url).await.map(Got::Workloads),
            Read::Schedules => {
                let url = match scope {
                    Some(ns) => format!("/apis/batch/v1/namespaces/{ns}/cronjobs"),
                    None => "/apis/batch/v1/cronjobs".into(),
                };
                let (mut found, selector) = (Vec::new(), super::schedule::selector());
                list_pages::<Value>(ctx, &url, Some(&selector), None, |c| found.push(c))
                    .await
                    .map(|_| Got::Schedules(found))
            }
        };
        (key, got)
    };
    let workload_reads: Vec<Read> = match plan.details {
        true => super::consumers::workload_urls(scope)
            .map(|(kind, url)| Read::Workloads(kind, url))
            .collect(),
        false => Vec::new(),
    };
    let mut early = Read::all(&remembered(ctx));
    early.extend(workload_reads.iter().cloned());
    if plan.details {
        early.push(Read::Schedules);
    }
    let (kinds, early) = futures::join!(
        async {
            let kinds = installed(ctx).await?;
            remember(ctx, &kinds);
            Ok::<_, Error>(kinds)
        },
        concurrently(early, CONCURRENCY, fetch)
    );
    let kinds = kinds?;
    let mut done: HashMap<String, Result<Got>> = early.into_iter().collect();
    let late: Vec<Read> = Read::all(&kinds)
        .into_iter()
        .filter(|r| !done.contains_key(&r.key()))
        .collect();
    done.extend(concurrently(late, CONCURRENCY, fetch).await);

    let mut take = |read: Read| {
        done.remove(&read.key()).unwrap_or_else(|| {
            Err(Error::Unexpected(format!(
                "list: no answer for {}",
                read.key()
            )))
        })
    };
    let mut secrets = HashMap::new();
    if let Got::Secrets(s) = take(Read::Secrets)? {
        secrets = s;
    }
    let mut warnings = Vec::new();
    // NB: a workload kind that could not be listed is said, and leaves CONSUMERS unknown:
    // a count without it would be too low.
    let mut readers = plan.details.then(Readers::default);
    for read in workload_reads {
        let Read::Workloads(kind, _) = read else {
            continue;
        };
        match take(read.clone()) {
            Ok(Got::Workloads(w)) => {
                if let Some(r) = readers.as_mut() {
                    r.add(w);
                }
            }
            Ok(_) => {}
            Err(e) => {
                warnings.push(format!(
                    "{kind}s could not be listed, so CONSUMERS is unknown: {e}"
                ));
                readers = None;
            }
        }
    }
    let mut schedules = Vec::new();
    if plan.details {
        match take(Read::Schedules) {
            Ok(Got::Schedules(s)) => schedules = s,
            Ok(_) => {}
            Err(e) => warnings.push(format!(
                "the schedules could not be listed, so NEXT ROTATION is unknown: {e}"
            )),
        }
    }
    let mut per_kind: Vec<(Vec<DbItem>, ActivityByDb)> = Vec::new();
    for kind in &kinds {
        let dbs = match take(Read::Databases(kind.clone()))? {
            Got::Databases(d) => d,
            _ => Vec::new(),
        };
        let activity = match take(Read::Activity(kind.clone()))? {
            Got::Activity(f) => f,
            _ => HashMap::new(),
        };
        per_kind.push((dbs, activity));
    }
    let now = jiff::Timestamp::now();
    let mut rows: Vec<CredentialRow> = kinds
        .iter()
        .zip(per_kind)
        .flat_map(|(kind, (dbs, mut activity))| {
            let (secrets, readers, schedules) = (&secrets, readers.as_ref(), &schedules);
            dbs.into_iter().map(move |db| {
                let key = (db.metadata.namespace.clone(), db.metadata.name.clone());
                let activity = activity.remove(&key).unwrap_or_default();
                let schedule = schedules
                    .iter()
                    .find(|c| super::schedule::schedules(c, &key.0, kind.engine.kind, &key.1));
                let mut r = row(kind.engine, db, activity, secrets, readers, now);
                r.next_rotation = schedule.and_then(|c| {
                    super::schedule::next_rotation(c, r.last_rotated.as_deref(), now)
                });
                r
            })
        })
        .collect();
    if let Some(age) = &plan.older_than {
        let limit = i64::try_from(age.get().as_secs()).unwrap_or(i64::MAX);
        // NB: a credential of unknown age counts as overdue: a CI gate must not pass by default.
        rows.retain(|r| r.password_age_seconds.is_none_or(|a| a > limit));
    }
    rows.sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));
    Ok(ListReport { rows, warnings })
}

/// The workloads of one kind at `url` that read any Secret, each kept as the Secrets it
/// reads (those run by another workload are counted as their owner).
async fn read_workloads(ctx: &Ctx, kind: &'static str, url: &str) -> Result<Vec<WorkloadUse>> {
    let mut found = Vec::new();
    list_pages::<Value>(ctx, url, None, None, |w| {
        if !is_top_level(&w) {
            return;
        }
        let secrets = secrets_read(kind, &w);
        if !secrets.is_empty() {
            let namespace = w
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            found.push(WorkloadUse { namespace, secrets });
        }
    })
    .await?;
    Ok(found)
}

/// Which workloads read each Secret: (namespace, Secret) to the workloads' indexes.
#[derive(Default)]
struct Readers {
    count: usize,
    by_secret: HashMap<(String, String), Vec<usize>>,
}

impl Readers {
    fn add(&mut self, workloads: Vec<WorkloadUse>) {
        for w in workloads {
            for s in w.secrets {
                self.by_secret
                    .entry((w.namespace.clone(), s))
                    .or_default()
                    .push(self.count);
            }
            self.count += 1;
        }
    }

    /// How many workloads in `ns` read any of `watched` (its first the current Secret),
    /// and how many of them read one of the others.
    fn count(&self, ns: &str, watched: &[String]) -> ConsumerCount {
        let of = |names: &[String]| -> BTreeSet<usize> {
            names
                .iter()
                .filter_map(|n| self.by_secret.get(&(ns.to_string(), n.clone())))
                .flatten()
                .copied()
                .collect()
        };
        ConsumerCount {
            workloads: of(watched).len(),
            stale: of(watched.get(1..).unwrap_or_default()).len(),
        }
    }
}

/// The Secrets of the namespace, or with `-A` of the cluster, values skipped: one LIST,
/// sent with the databases' LISTs instead of after them (which Secrets the databases name
/// is not known yet; one LIST of them all costs the server less than one per namespace).
async fn read_secrets(
    ctx: &Ctx,
    scope: Option<&str>,
) -> Result<HashMap<(String, String), SecretSummary>> {
    let url = match scope {
        Some(ns) => format!("/api/v1/namespaces/{ns}/secrets"),
        None => "/api/v1/secrets".to_string(),
    };
    let mut found = HashMap::new();
    list_pages::<SecretSummary>(ctx, &url, None, None, |s| {
        found.insert((s.metadata.namespace.clone(), s.metadata.name.clone()), s);
    })
    .await?;
    Ok(found)
}

/// A database's credential state and its age in seconds, as `list` shows it (pure): since
/// the last rotation, else since the database was created. `secret` is its auth Secret.
pub fn credential_age(
    engine: &'static EngineSpec,
    db: &DbItem,
    secret: Option<&SecretSummary>,
    in_flight: Option<crate::report::InFlight>,
    now: jiff::Timestamp,
) -> (backend::CredentialState, Option<i64>) {
    let state = backend::of(engine).credential_state(engine, db, secret, in_flight);
    let age = state
        .last_rotated
        .as_deref()
        .or(db.metadata.creation_timestamp.as_deref())
        .and_then(|t| age_secs(t, now));
    (state, age)
}

/// One row (pure): the database, what is in flight for it, and the Secrets read.
fn row(
    engine: &'static EngineSpec,
    db: DbItem,
    activity: Activity,
    secrets: &HashMap<(String, String), SecretSummary>,
    readers: Option<&Readers>,
    now: jiff::Timestamp,
) -> CredentialRow {
    let ns = db.metadata.namespace.clone();
    let lookup = |name: &str| secrets.get(&(ns.clone(), name.to_string()));
    let secret_name = db.credential_secret(engine);
    let secret = secret_name.as_deref().and_then(lookup);
    let tls_expiry = earliest_expiry(&db.tls_secrets(), lookup, now);
    let (state, password_age_seconds) =
        credential_age(engine, &db, secret, activity.in_flight, now);
    let consumers = readers.zip(secret_name.as_deref()).map(|(r, current)| {
        let default = super::consumers::default_secret(engine, &db.metadata.name);
        r.count(
            &ns,
            &watched_secrets(current, &activity.used_secrets, default),
        )
    });
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
        consumers,
        next_rotation: None,
        rotate_after: db
            .spec
            .auth_secret
            .as_ref()
            .and_then(|a| a.rotate_after.clone()),
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

    /// The row of `db` with nothing else read.
    fn bare_row(engine: &'static EngineSpec, db: DbItem) -> CredentialRow {
        row(
            engine,
            db,
            Activity::default(),
            &HashMap::new(),
            None,
            now(),
        )
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
        let r = row(
            find("pg").unwrap(),
            db,
            Activity::default(),
            &s,
            None,
            now(),
        );
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
        let r = bare_row(find("pg").unwrap(), db);
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
        let r = bare_row(sqlmi, mi(1, "rotate"));
        assert_eq!(r.prev_kept, PrevKept::Yes);
        assert_eq!(r.credentials_generation, Some(1));
        assert_eq!(r.password_age_seconds, Some(86_400));
        assert!(r.in_flight.is_none());
        let r = bare_row(sqlmi, mi(0, "rollback"));
        assert_eq!(r.prev_kept, PrevKept::No);
    }

    #[test]
    fn consumers_count_each_workload_once_and_stale_ones_apart() {
        let w = |ns: &str, secrets: &[&str]| WorkloadUse {
            namespace: ns.into(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        };
        let mut r = Readers::default();
        r.add(vec![
            w("demo", &["pg-new", "pg-auth"]),
            w("demo", &["pg-auth"]),
            w("demo", &["other"]),
        ]);
        r.add(vec![w("prod", &["pg-new"])]);
        let watched = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = r.count("demo", &watched(&["pg-new", "pg-auth"]));
        assert_eq!(
            c,
            ConsumerCount {
                workloads: 2,
                stale: 2
            }
        );
        assert_eq!(c.cell(), "2 (2 stale)");
        let c = r.count("demo", &watched(&["pg-new"]));
        assert_eq!(
            c,
            ConsumerCount {
                workloads: 1,
                stale: 0
            }
        );
        assert_eq!(c.cell(), "1");
        assert_eq!(r.count("elsewhere", &watched(&["pg-new"])).workloads, 0);
    }

    #[test]
    fn the_verdict_fails_only_when_stale_rows_remain_under_older_than() {
        let plan = ListPlan {
            all_namespaces: true,
            selector: None,
            older_than: Some("90d".parse().unwrap()),
            details: false,
        };
        assert!(verdict(&[], &plan).is_ok());
        let db: DbItem = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        let r = bare_row(find("pg").unwrap(), db);
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
