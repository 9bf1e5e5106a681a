//! `kubectl rotate schedule`: rotation on a schedule, run by the cluster. Makes (or
//! updates, by server-side apply) a ServiceAccount, a Role granting exactly what that one
//! rotation asks of the API server, a RoleBinding and a CronJob running the plugin's image
//! with `auth TYPE/NAME --wait --yes ...`; `schedule list` reads them back with their Jobs
//! and the Jobs' exit codes; `schedule delete` removes exactly those four objects.

pub mod spec;

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::Value;

use crate::api::discovery::{discover, Wanted};
use crate::api::read::get_target;
use crate::backend;
use crate::cli::{DryRun, ScheduleCreateArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::DbItem;
use crate::plan::Plan;
use crate::report::{Action, ScheduleRow};
use crate::target::Target;

use spec::{Cadence, ScheduleSpec};

/// A checked `schedule TYPE/NAME --every ...`.
#[derive(Clone, Debug)]
pub struct SchedulePlan {
    /// The database.
    pub target: Target,
    /// `--every` as given.
    pub every: String,
    /// `--at`.
    pub at: Option<String>,
    /// Its cron schedule and guard.
    pub cadence: Cadence,
    /// `--verify`, `--rollback-on-failure`, `--restart-consumers`.
    pub flags: Vec<&'static str>,
    /// `--image`, else the plugin's own.
    pub image: String,
    /// `--dry-run`.
    pub dry_run: DryRun,
}

/// Checks `schedule` arguments (pure: before any API call).
pub fn plan(args: &ScheduleCreateArgs) -> Result<SchedulePlan> {
    let target = Target::parse(&crate::cli::TargetArgs {
        target: args.target.clone().ok_or_else(|| {
            Error::Usage(
                "schedule needs a database (TYPE/NAME), or `list` or `delete`: kubectl rotate \
                 schedule pg/pg-demo --every 30d"
                    .into(),
            )
        })?,
        name: args.name.clone(),
    })?;
    let every = args
        .every
        .clone()
        .ok_or_else(|| Error::Usage("schedule needs --every DURATION, e.g. --every 30d".into()))?;
    let cadence = spec::cadence(&every, args.at.as_deref()).map_err(Error::Usage)?;
    if args.verify && crate::verify::route(target.engine).is_none() {
        return Err(crate::verify::unsupported(target.engine));
    }
    let mut flags = Vec::new();
    for (on, flag) in [
        (args.verify, "--verify"),
        (args.rollback_on_failure, "--rollback-on-failure"),
        (args.restart_consumers, "--restart-consumers"),
    ] {
        if on {
            flags.push(flag);
        }
    }
    Ok(SchedulePlan {
        target,
        every: every.to_string(),
        at: args.at.clone(),
        cadence,
        flags,
        image: args.image.clone().unwrap_or_else(spec::default_image),
        dry_run: args.dry.dry_run,
    })
}

/// The four kinds `schedule` makes, in the order it makes them.
fn resources() -> [ApiResource; 4] {
    let ar = |g: &str, k: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, "v1", k), plural)
    };
    [
        ar("", "ServiceAccount", "serviceaccounts"),
        ar("rbac.authorization.k8s.io", "Role", "roles"),
        ar("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
        ar("batch", "CronJob", "cronjobs"),
    ]
}

/// Whether `obj` is one `schedule` made for `kind`/`name`.
fn is_ours(obj: &DynamicObject, kind: &str, name: &str) -> bool {
    let labels = &obj.metadata.labels;
    let annotations = &obj.metadata.annotations;
    let label = |k: &str| labels.as_ref().and_then(|l| l.get(k)).map(String::as_str);
    let annotation = |k: &str| {
        annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .map(String::as_str)
    };
    label(crate::model::MANAGED_BY_LABEL) == Some(crate::model::MANAGER)
        && label(spec::COMPONENT_LABEL) == Some(spec::COMPONENT)
        && annotation(spec::TARGET_KIND) == Some(kind)
        && annotation(spec::TARGET_NAME) == Some(name)
}

/// The schedule's objects for `plan` in `ns`: the database is read for its Secret's name
/// and to be sure it exists; the Role is what the rotation's backend says it reads and
/// writes, with what `--verify` and `--restart-consumers` add.
pub async fn spec_for(ctx: &Ctx, plan: &SchedulePlan, ns: &str) -> Result<ScheduleSpec> {
    let engine = plan.target.engine;
    let ar = discover(ctx, &[Wanted::engine(engine)]).await?.remove(0);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
    let db = DbItem::from_dynamic(&get_target(&api, &plan.target, ns).await?);
    let mut rotation = Plan::plain(Action::Rotate, plan.target.clone(), ns);
    rotation.wait = true;
    rotation.restart_consumers = plan.flags.contains(&"--restart-consumers");
    let mut needs = backend::needs(&rotation);
    needs.extend(backend::of(engine).reads(&rotation, &db));
    if plan.flags.contains(&"--verify") {
        // NB: the logins read the credential and the CA: those Secrets by name, never all.
        let secrets = crate::verify::reach::secrets_read(engine, &db);
        needs.extend(crate::verify::reach::needs(ns, None, &secrets));
    }
    Ok(ScheduleSpec {
        namespace: ns.to_string(),
        kind: engine.kind,
        typed: engine.short().to_string(),
        name: plan.target.name.clone(),
        every: plan.every.clone(),
        at: plan.at.clone(),
        cadence: plan.cadence.clone(),
        flags: plan.flags.clone(),
        image: plan.image.clone(),
        needs,
    })
}

/// Makes or updates the schedule (server-side apply, so that running it again with other
/// flags updates it, and a retried request does no harm); refuses, before writing, when an
/// object of that name exists that `schedule` did not make for this database. Returns what
/// was applied, each with whether it existed before.
pub async fn apply(ctx: &Ctx, spec: &ScheduleSpec, dry_run: DryRun) -> Result<Vec<(Value, bool)>> {
    let ns = spec.namespace.as_str();
    let name = spec.object_name();
    let manifests = spec.manifests();
    let apis: Vec<Api<DynamicObject>> = resources()
        .iter()
        .map(|ar| Api::namespaced_with(ctx.client.clone(), ns, ar))
        .collect();
    let found = futures::future::try_join_all(apis.iter().map(|api| async {
        crate::api::retry(|| api.get_opt(&name))
            .await
            .map_err(|e| Error::api(format!("get {name}"), e))
    }))
    .await?;
    for (obj, m) in found.iter().zip(&manifests) {
        if let Some(o) = obj.as_ref().filter(|o| !is_ours(o, spec.kind, &spec.name)) {
            return Err(Error::Refused(format!(
                "{} {ns}/{} exists and was not made by `kubectl rotate schedule` for {}/{}: \
                 nothing was changed; delete or rename it first",
                m["kind"].as_str().unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default(),
                spec.typed,
                spec.name
            )));
        }
    }
    let mut pp = PatchParams::apply(crate::model::MANAGER).force();
    pp.dry_run = dry_run == DryRun::Server;
    let mut applied = Vec::new();
    for ((api, m), existed) in apis
        .iter()
        .zip(manifests)
        .zip(found.iter().map(Option::is_some))
    {
        let kind = m["kind"].as_str().unwrap_or_default();
        // NB: an apply is idempotent: retrying one whose response was lost is safe.
        let patch = Patch::Apply(&m);
        let out = crate::api::retry(|| api.patch(&name, &pp, &patch))
            .await
            .map_err(|e| Error::api(format!("apply {kind} {ns}/{name}"), e))?;
        applied.push((serde_json::to_value(&out).unwrap_or_default(), existed));
    }
    Ok(applied)
}

/// Deletes the schedule of `target` in `ns`: each of the four objects that `schedule` made
/// for it (the CronJob's Jobs go with it, as the garbage collector deletes what a CronJob
/// owns), none that it did not make. Returns what was deleted, as `kind/name`.
pub async fn delete(ctx: &Ctx, target: &Target, ns: &str) -> Result<Vec<String>> {
    let name = spec::object_name(target.engine.short(), &target.name);
    let mut deleted = Vec::new();
    let mut foreign = Vec::new();
    // NB: the CronJob first, so that no job starts with its permissions half gone.
    for ar in resources().iter().rev() {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, ar);
        let what = format!("{}/{name}", ar.kind.to_ascii_lowercase());
        let Some(obj) = crate::api::retry(|| api.get_opt(&name))
            .await
            .map_err(|e| Error::api(format!("get {what}"), e))?
        else {
            continue;
        };
        if !is_ours(&obj, target.engine.kind, &target.name) {
            foreign.push(what);
            continue;
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: obj.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => deleted.push(what),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::api(format!("delete {what}"), e)),
        }
    }
    if deleted.is_empty() {
        return Err(Error::NotFound {
            what: format!("a schedule for {target} in namespace {ns:?}"),
            hint: Some(match foreign.is_empty() {
                true => "see `kubectl rotate schedule list -A`".into(),
                false => format!(
                    "{} exist but were not made by `kubectl rotate schedule`: left alone",
                    foreign.join(", ")
                ),
            }),
        });
    }
    Ok(deleted)
}

/// The schedules in `scope` (a namespace, else every one), sorted by namespace and name.
pub async fn list(ctx: &Ctx, scope: Option<&str>) -> Result<Vec<ScheduleRow>> {
    let lp = ListParams::default().labels(&selector());
    let api = |ar: &ApiResource| -> Api<DynamicObject> {
        match scope {
            Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, ar),
            None => Api::all_with(ctx.client.clone(), ar),
        }
    };
    let jobs_ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("batch", "v1", "Job"), "jobs");
    let pods_ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods");
    let (crons, jobs, pods) = futures::try_join!(
        async {
            api(&resources()[3])
                .list(&lp)
                .await
                .map_err(|e| Error::api("list cronjobs", e))
        },
        async {
            api(&jobs_ar)
                .list(&lp)
                .await
                .map_err(|e| Error::api("list jobs", e))
        },
        async {
            api(&pods_ar)
                .list(&lp)
                .await
                .map_err(|e| Error::api("list pods", e))
        },
    )?;
    let now = jiff::Timestamp::now();
    let pods: Vec<Value> = pods
        .items
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect();
    let jobs: Vec<Value> = jobs
        .items
        .iter()
        .filter_map(|j| serde_json::to_value(j).ok())
        .collect();
    let mut rows: Vec<ScheduleRow> = crons
        .items
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .map(|c| row(&c, &jobs, &pods, now))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(rows)
}

/// The label selector of the CronJobs (and their Jobs and pods) `schedule` makes.
pub fn selector() -> String {
    format!(
        "{}={},{}={}",
        crate::model::MANAGED_BY_LABEL,
        crate::model::MANAGER,
        spec::COMPONENT_LABEL,
        spec::COMPONENT
    )
}

/// Whether `cron` (a CronJob as JSON) is the schedule of database `ns`/`name` of `kind`.
pub fn schedules(cron: &Value, ns: &str, kind: &str, name: &str) -> bool {
    let a = |k: &str| {
        cron.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
    };
    cron.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
        && a(spec::TARGET_KIND) == Some(kind)
        && a(spec::TARGET_NAME) == Some(name)
}

/// When the schedule `cron` (a CronJob `schedule` made, as JSON) next rotates a credential
/// last rotated at `last_rotated` (pure): its next run, or with the `--older-than` its
/// job passes, its first run once the credential is that old. `None` when suspended.
pub fn next_rotation(
    cron: &Value,
    last_rotated: Option<&str>,
    now: jiff::Timestamp,
) -> Option<String> {
    if cron.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let schedule = cron.pointer("/spec/schedule").and_then(Value::as_str)?;
    let args: Vec<&str> = cron
        .pointer("/spec/jobTemplate/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let guard = args
        .iter()
        .position(|a| *a == "--older-than")
        .and_then(|i| args.get(i + 1))
        .and_then(|g| g.parse::<crate::duration::OlderThan>().ok());
    let due = guard
        .zip(last_rotated.and_then(|t| t.parse::<jiff::Timestamp>().ok()))
        .and_then(|(g, t)| {
            t.checked_add(jiff::SignedDuration::try_from(g.get()).ok()?)
                .ok()
        });
    let from = due.filter(|d| *d > now).unwrap_or(now);
    let from = from
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap_or(from);
    spec::next_run(schedule, from).map(|t| t.to_string())
}

/// One schedule (pure): its CronJob, and the newest of its Jobs with its pod's exit code.
fn row(cron: &Value, jobs: &[Value], pods: &[Value], now: jiff::Timestamp) -> ScheduleRow {
    let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let ns = s(cron, "/metadata/namespace").unwrap_or_default();
    let name = s(cron, "/metadata/name").unwrap_or_default();
    let annotation = |k: &str| {
        cron.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let owned_by = |v: &Value, kind: &str, owner: &str| {
        v.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|r| r["kind"] == kind && r["name"] == owner))
    };
    let newest = jobs
        .iter()
        .filter(|j| {
            s(j, "/metadata/namespace").as_deref() == Some(ns.as_str())
                && owned_by(j, "CronJob", &name)
        })
        .max_by_key(|j| s(j, "/metadata/creationTimestamp"));
    let schedule = s(cron, "/spec/schedule").unwrap_or_default();
    let suspended = cron.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let last_run = newest
        .and_then(|j| s(j, "/status/startTime").or_else(|| s(j, "/metadata/creationTimestamp")))
        .or_else(|| s(cron, "/status/lastScheduleTime"));
    let last_result = newest.map(|j| {
        let job = s(j, "/metadata/name").unwrap_or_default();
        let exit = pods
            .iter()
            .rev()
            .filter(|p| owned_by(p, "Job", &job))
            .filter_map(|p| {
                p.pointer("/status/containerStatuses/0/state/terminated/exitCode")
                    .and_then(Value::as_i64)
            })
            .next();
        job_result(j, exit)
    });
    ScheduleRow {
        namespace: ns,
        name,
        target_kind: annotation(spec::TARGET_KIND).unwrap_or_default(),
        target_name: annotation(spec::TARGET_NAME).unwrap_or_default(),
        every: annotation(spec::EVERY).unwrap_or_default(),
        at: annotation(spec::AT),
        next_run: match suspended {
            true => None,
            false => spec::next_run(&schedule, now).map(|t| t.to_string()),
        },
        schedule,
        suspended,
        last_run,
        last_result,
    }
}

/// A Job's result as LAST RESULT says it: `Succeeded`, `Failed (exit N)`, `Running`.
fn job_result(job: &Value, exit: Option<i64>) -> String {
    let condition = |t: &str| {
        job.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    if condition("Complete") {
        "Succeeded".into()
    } else if condition("Failed") {
        match exit {
            Some(code) => format!("Failed (exit {code})"),
            None => "Failed".into(),
        }
    } else {
        "Running".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_shows_the_newest_job_and_its_exit_code() {
        let cron = json!({"metadata": {"name": "rotate-pg-pg", "namespace": "demo",
            "annotations": {spec::TARGET_KIND: "Postgres", spec::TARGET_NAME: "pg", spec::EVERY: "30d"}},
            "spec": {"schedule": "0 3 * * *"}});
        let owner = json!([{"kind": "CronJob", "name": "rotate-pg-pg"}]);
        let jobs = [
            json!({"metadata": {"name": "j1", "namespace": "demo", "creationTimestamp": "2026-12-01T03:00:00Z", "ownerReferences": owner},
                   "status": {"startTime": "2026-12-01T03:00:01Z", "conditions": [{"type": "Complete", "status": "True"}]}}),
            json!({"metadata": {"name": "j2", "namespace": "demo", "creationTimestamp": "2026-12-02T03:00:00Z", "ownerReferences": owner},
                   "status": {"startTime": "2026-12-02T03:00:01Z", "conditions": [{"type": "Failed", "status": "True"}]}}),
        ];
        let pods = [
            json!({"metadata": {"ownerReferences": [{"kind": "Job", "name": "j2"}]},
            "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 5}}}]}}),
        ];
        let now = "2026-12-02T05:00:00Z".parse().unwrap();
        let r = row(&cron, &jobs, &pods, now);
        assert_eq!(r.last_result.as_deref(), Some("Failed (exit 5)"));
        assert_eq!(r.last_run.as_deref(), Some("2026-12-02T03:00:01Z"));
        assert_eq!(r.next_run.as_deref(), Some("2026-12-03T03:00:00Z"));
        assert_eq!(
            (r.target_kind.as_str(), r.every.as_str()),
            ("Postgres", "30d")
        );
        let r = row(&cron, &jobs[..1], &[], now);
        assert_eq!(r.last_result.as_deref(), Some("Succeeded"));
        let r = row(&cron, &[], &[], now);
        assert_eq!((r.last_run, r.last_result), (None, None));
    }

    #[test]
    fn the_next_rotation_waits_for_the_credential_to_be_old_enough() {
        let cron = |args: Value| {
            json!({"spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"args": args}]}}}}}})
        };
        let now = "2026-12-02T05:00:00Z".parse().unwrap();
        let daily = cron(json!(["auth", "pg/pg", "--wait", "--yes"]));
        assert_eq!(
            next_rotation(&daily, Some("2026-12-02T04:00:00Z"), now).as_deref(),
            Some("2026-12-03T03:00:00Z")
        );
        let monthly = cron(json!(["auth", "pg/pg", "--older-than", "719h"]));
        // Rotated Dec 1 at 03:00: due 719h later, Dec 31 02:00; the next run is at 03:00.
        assert_eq!(
            next_rotation(&monthly, Some("2026-12-01T03:00:00Z"), now).as_deref(),
            Some("2026-12-31T03:00:00Z")
        );
        // Overdue: the next run.
        assert_eq!(
            next_rotation(&monthly, Some("2026-10-01T03:00:00Z"), now).as_deref(),
            Some("2026-12-03T03:00:00Z")
        );
        let mut suspended = daily.clone();
        suspended["spec"]["suspend"] = json!(true);
        assert_eq!(next_rotation(&suspended, None, now), None);
    }
}
