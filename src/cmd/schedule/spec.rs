//! Scheduled rotation (issue 14), as objects: how `--every`/`--at` become a CronJob
//! schedule, the four objects `schedule` makes (ServiceAccount, Role, RoleBinding,
//! CronJob), the Role's rules from what the rotation asks of the API server, and when a
//! cron schedule next fires. Pure: the verb (`super`) reads and writes them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::api::access::Need;
use crate::duration::OlderThan;

/// The label every object `schedule` makes carries, besides `app.kubernetes.io/managed-by`.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Its value.
pub const COMPONENT: &str = "rotation-schedule";
/// The annotations that say which database a schedule rotates, and how often.
pub const TARGET_KIND: &str = "rotate.kubectl.dev/target-kind";
/// The database's name.
pub const TARGET_NAME: &str = "rotate.kubectl.dev/target-name";
/// `--every` as given.
pub const EVERY: &str = "rotate.kubectl.dev/every";
/// `--at` (UTC).
pub const AT: &str = "rotate.kubectl.dev/at";

/// The image the job runs by default: the plugin's own, at its version.
pub fn default_image() -> String {
    format!(
        "ghcr.io/kubectl-rotate/kubectl-rotate:v{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// How often, as a cron schedule: `cron` fires the job; `older_than`, when set, is what the
/// job passes to `auth --older-than` (a period cron cannot count, such as 30 days, is a daily
/// job that rotates only once the credential is that old, less an hour for the job's own
/// start-up, so that the run on the day it falls due is not missed by minutes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// Five fields, in UTC.
    pub cron: String,
    /// The job's `--older-than`.
    pub older_than: Option<String>,
}

/// The cadence of `--every` (`at`: `--at HH:MM`, UTC), or why it cannot be one.
pub fn cadence(every: &OlderThan, at: Option<&str>) -> Result<Cadence, String> {
    let secs = every.get().as_secs();
    let (hour, minute) = match at {
        Some(at) => parse_at(at)?,
        None => (3, 0),
    };
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;
    if secs.is_multiple_of(DAY) {
        let days = secs / DAY;
        return Ok(Cadence {
            cron: format!("{minute} {hour} * * *"),
            older_than: (days > 1).then(|| format!("{}h", days * 24 - 1)),
        });
    }
    if secs.is_multiple_of(HOUR) && 24_u64.is_multiple_of(secs / HOUR) {
        if at.is_some() {
            return Err(format!(
                "--at is for schedules of whole days; --every {every} runs every {} hours",
                secs / HOUR
            ));
        }
        let hours = secs / HOUR;
        let field = if hours == 1 {
            "*".to_string()
        } else {
            format!("*/{hours}")
        };
        return Ok(Cadence {
            cron: format!("0 {field} * * *"),
            older_than: None,
        });
    }
    Err(format!(
        "--every {every} cannot be kept by a CronJob: use hours that divide a day (1h, 2h, 3h, \
         4h, 6h, 8h, 12h) or whole days or weeks (1d, 30d, 90d, 2w)"
    ))
}

/// `HH:MM` (24-hour, UTC).
fn parse_at(at: &str) -> Result<(u32, u32), String> {
    let bad = || format!("invalid --at {at:?}: want HH:MM in UTC, e.g. 03:00");
    let (h, m) = at.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || at.len() != 5 {
        return Err(bad());
    }
    Ok((h, m))
}

/// One field of a cron schedule: which values it allows.
fn field(text: &str, min: u32, max: u32) -> Option<Vec<bool>> {
    let mut allowed = vec![false; (max + 1) as usize];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let v = r.parse().ok()?;
                    (v, if step > 1 { max } else { v })
                }
            },
        };
        if lo < min || hi > max || lo > hi {
            return None;
        }
        for v in (lo..=hi).step_by(step as usize) {
            allowed[v as usize] = true;
        }
    }
    Some(allowed)
}

/// When a five-field cron schedule (minute hour day-of-month month day-of-week, UTC, as the
/// CronJob controller reads it) next fires after `after`; `None` if it cannot be read or
/// does not fire within a year.
pub fn next_run(cron: &str, after: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let f: Vec<&str> = cron.split_whitespace().collect();
    if f.len() != 5 {
        return None;
    }
    let (min, hour, dom, mon, dow) = (
        field(f[0], 0, 59)?,
        field(f[1], 0, 23)?,
        field(f[2], 1, 31)?,
        field(f[3], 1, 12)?,
        field(&f[4].replace('7', "0"), 0, 6)?,
    );
    // NB: as cron, when both day fields are restricted a day matching either one fires.
    let (dom_any, dow_any) = (f[2] == "*" || f[2].starts_with("*/"), f[4] == "*");
    let start = after.as_second() / 60 * 60 + 60;
    (0..366 * 24 * 60).find_map(|i| {
        let t = jiff::Timestamp::from_second(start + i * 60).ok()?;
        let d = t.to_zoned(jiff::tz::TimeZone::UTC);
        let day_ok = match (dom_any, dow_any) {
            (true, true) => true,
            (false, true) => dom[d.day() as usize],
            (true, false) => dow[d.weekday().to_sunday_zero_offset() as usize],
            (false, false) => {
                dom[d.day() as usize] || dow[d.weekday().to_sunday_zero_offset() as usize]
            }
        };
        (min[d.minute() as usize] && hour[d.hour() as usize] && mon[d.month() as usize] && day_ok)
            .then_some(t)
    })
}

/// The name of a schedule's objects: `rotate-<type>-<db>`, cut to the 52 characters a
/// CronJob's name may have (its Jobs add 11), with a hash of the whole when cut.
pub fn object_name(short: &str, db: &str) -> String {
    let full = format!("rotate-{short}-{db}");
    if full.len() <= 52 {
        return full;
    }
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let keep = full[..43].trim_end_matches('-').to_string();
    format!("{keep}-{:08x}", hash as u32)
}

/// A schedule, as `schedule` makes it.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    /// The database's namespace.
    pub namespace: String,
    /// Its kind (`Postgres`), for the annotations.
    pub kind: &'static str,
    /// The type the job names it by (`postgres`).
    pub typed: String,
    /// Its name.
    pub name: String,
    /// `--every` as given.
    pub every: String,
    /// `--at`, when given.
    pub at: Option<String>,
    /// The cron schedule and the job's `--older-than`.
    pub cadence: Cadence,
    /// The flags the job passes on: `--verify`, `--rollback-on-failure`,
    /// `--restart-consumers`.
    pub flags: Vec<&'static str>,
    /// The image.
    pub image: String,
    /// What the rotation asks of the API server: the Role grants exactly this.
    pub needs: Vec<Need>,
}

impl ScheduleSpec {
    /// The objects' name.
    pub fn object_name(&self) -> String {
        object_name(&self.typed, &self.name)
    }

    /// The labels of every object: who made them and for which database.
    fn labels(&self) -> Value {
        json!({
            crate::model::MANAGED_BY_LABEL: crate::model::MANAGER,
            COMPONENT_LABEL: COMPONENT,
            "app.kubernetes.io/instance": self.name,
        })
    }

    fn annotations(&self) -> Value {
        let mut a = json!({TARGET_KIND: self.kind, TARGET_NAME: self.name, EVERY: self.every});
        if let Some(at) = &self.at {
            a[AT] = json!(at);
        }
        a
    }

    fn metadata(&self, annotations: bool) -> Value {
        let mut m = json!({"name": self.object_name(), "namespace": self.namespace,
                           "labels": self.labels()});
        if annotations {
            m["annotations"] = self.annotations();
        }
        m
    }

    /// What the job runs: `auth TYPE/NAME -n NS --wait --yes`, then the flags.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "auth".to_string(),
            format!("{}/{}", self.typed, self.name),
            "-n".into(),
            self.namespace.clone(),
            "--wait".into(),
            "--yes".into(),
        ]
        .into();
        if let Some(age) = &self.cadence.older_than {
            args.extend(["--older-than".into(), age.clone()]);
        }
        args.extend(self.flags.iter().map(|f| f.to_string()));
        args
    }

    /// The ServiceAccount, Role, RoleBinding and CronJob, in the order they are made.
    pub fn manifests(&self) -> Vec<Value> {
        let name = self.object_name();
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": self.metadata(true)});
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                          "metadata": self.metadata(true), "rules": role_rules(&self.needs)});
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": self.metadata(true),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": self.namespace}]});
        let pod = json!({
            "serviceAccountName": name,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "rotate",
                "image": self.image,
                "args": self.args(),
                // NB: the image has no shell and a read-only root; the discovery cache goes
                // to the emptyDir.
                "env": [{"name": "HOME", "value": "/tmp"}],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                              "limits": {"memory": "128Mi"}},
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        });
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": self.metadata(true),
        "spec": {
            "schedule": self.cadence.cron,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": self.labels()},
                "spec": {
                    "backoffLimit": 0,
                    // NB: past --wait's own default bound (30m), so the plugin says
                    // how far it got before the Job is stopped.
                    "activeDeadlineSeconds": 2400,
                    "template": {"metadata": {"labels": self.labels()}, "spec": pod},
                },
            },
        }});
        vec![sa, role, binding, cron]
    }
}

/// A Role's rules granting exactly `needs`: one rule per resource and set of names, its
/// verbs sorted; a need on any object of a resource covers the same verb on named ones.
pub fn role_rules(needs: &[Need]) -> Vec<Value> {
    type Key = (&'static str, String, Option<String>);
    let mut by: BTreeMap<Key, Vec<&'static str>> = BTreeMap::new();
    let resource = |n: &Need| match n.subresource {
        Some(s) => format!("{}/{s}", n.resource),
        None => n.resource.to_string(),
    };
    for n in needs {
        let unnamed = by
            .get(&(n.group, resource(n), None))
            .is_some_and(|v| v.contains(&n.verb));
        if n.name.is_some() && unnamed {
            continue;
        }
        let verbs = by
            .entry((n.group, resource(n), n.name.clone()))
            .or_default();
        if !verbs.contains(&n.verb) {
            verbs.push(n.verb);
        }
    }
    // Names that share a resource and verbs are one rule.
    let mut rules: BTreeMap<(&str, String, Vec<&str>, bool), Vec<String>> = BTreeMap::new();
    for ((group, res, name), mut verbs) in by {
        verbs.sort_unstable();
        let named = name.is_some();
        let names = rules.entry((group, res, verbs, named)).or_default();
        names.extend(name);
    }
    rules
        .into_iter()
        .map(|((group, res, verbs, named), names)| {
            let mut r = json!({"apiGroups": [group], "resources": [res], "verbs": verbs});
            if named {
                r["resourceNames"] = json!(names);
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(s: &str) -> OlderThan {
        s.parse().unwrap()
    }

    #[test]
    fn every_becomes_a_cron_schedule_or_a_daily_job_with_a_guard() {
        let c = cadence(&every("1d"), Some("04:30")).unwrap();
        assert_eq!((c.cron.as_str(), c.older_than), ("30 4 * * *", None));
        let c = cadence(&every("30d"), None).unwrap();
        assert_eq!(c.cron, "0 3 * * *");
        assert_eq!(c.older_than.as_deref(), Some("719h"));
        assert_eq!(
            cadence(&every("2w"), None).unwrap().older_than.as_deref(),
            Some("335h")
        );
        assert_eq!(cadence(&every("6h"), None).unwrap().cron, "0 */6 * * *");
        assert_eq!(cadence(&every("1h"), None).unwrap().cron, "0 * * * *");
        assert!(cadence(&every("5h"), None).unwrap_err().contains("divide"));
        assert!(cadence(&every("36h"), None).is_err());
        assert!(cadence(&every("6h"), Some("03:00")).is_err());
        assert!(cadence(&every("1d"), Some("24:00")).is_err());
        assert!(cadence(&every("1d"), Some("3:00")).is_err());
    }

    #[test]
    fn the_next_run_is_when_cron_fires_next() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let at = t("2026-12-02T05:10:30Z");
        assert_eq!(next_run("0 3 * * *", at), Some(t("2026-12-03T03:00:00Z")));
        assert_eq!(next_run("30 5 * * *", at), Some(t("2026-12-02T05:30:00Z")));
        assert_eq!(next_run("0 */6 * * *", at), Some(t("2026-12-02T06:00:00Z")));
        // 2026-12-06 is a Sunday.
        assert_eq!(next_run("0 0 * * 0", at), Some(t("2026-12-06T00:00:00Z")));
        assert_eq!(next_run("0 0 1 1 *", at), Some(t("2027-01-01T00:00:00Z")));
        assert_eq!(next_run("0 0 30 2 *", at), None, "never fires");
        assert_eq!(next_run("nonsense", at), None);
    }

    #[test]
    fn long_names_are_cut_to_what_a_cron_job_may_have() {
        assert_eq!(object_name("pg", "pg-demo"), "rotate-pg-pg-demo");
        let long = object_name("postgres", &"a".repeat(60));
        assert!(long.len() <= 52, "{long}");
        assert_ne!(long, object_name("postgres", &"a".repeat(61)));
    }

    #[test]
    fn the_role_grants_each_need_once_named_where_it_names_one() {
        let needs = [
            Need::new("get", "kubedb.com", "postgreses", "demo").named("pg"),
            Need::new("create", "ops.kubedb.com", "postgresopsrequests", "demo"),
            Need::new("watch", "ops.kubedb.com", "postgresopsrequests", "demo"),
            Need::new("get", "", "secrets", "demo").named("pg-auth"),
            Need::new("get", "", "secrets", "demo").named("pg-ca"),
            Need::new("list", "", "pods", "demo"),
            Need::new("get", "", "pods", "demo").named("x"),
            Need::new("create", "", "pods", "demo").on_subresource("portforward"),
        ];
        let rules = role_rules(&needs);
        let find = |res: &str| {
            rules
                .iter()
                .filter(|r| r["resources"][0] == res)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            find("postgresopsrequests")[0]["verbs"],
            json!(["create", "watch"])
        );
        assert_eq!(
            find("secrets")[0]["resourceNames"],
            json!(["pg-auth", "pg-ca"])
        );
        assert_eq!(find("postgreses")[0]["resourceNames"], json!(["pg"]));
        assert_eq!(find("pods").len(), 2);
        assert_eq!(find("pods/portforward")[0]["verbs"], json!(["create"]));
    }
}
