//! Fault hooks for tests: fail or delay the next requests to a path, make an ops request
//! end `Failed`, and count every request served (benchmarks report requests made).
//!
//! Reachable in-process through [`crate::SandboxHandle::faults`] and over HTTP (admin
//! token only) at `POST /sandbox/faults` with a JSON body such as
//! `{"failNext": {"method": "PATCH", "pathPrefix": "/apis/...", "count": 2, "code": 503}}`,
//! `{"delay": {"pathPrefix": "/api/v1", "count": 1, "millis": 500}}`,
//! `{"failOpsRequest": {"namespace": "demo", "name": "x", "reason": "..."}}`,
//! `{"skipRealDbChange": {"namespace": "demo", "name": "pg-demo"}}`,
//! `{"loseResponse": {"method": "POST", "pathPrefix": "/apis/ops.kubedb.com/", "count": 1}}`,
//! `{"hold": {"method": "PATCH", "pathPrefix": "/apis/...", "count": 1, "millis": 3000}}`,
//! `{"refuseConnections": {"millis": 5000}}`,
//! `{"silenceWatch": {"pathPrefix": "/apis/ops.kubedb.com/", "count": 1}}`;
//! `GET /sandbox/requests` returns the request counts, the timeline and the request log
//! (each request's user, impersonation headers and authorization attributes).
//!
//! The failures are a real API server's: a write it applies whose answer never reaches the
//! client (`loseResponse`), a write held and then applied although its client has gone
//! (`hold`; kube-apiserver finishes a request whose client disconnected), a restart that
//! drops every connection and refuses new ones for a while (`refuseConnections`), a watch
//! that is answered 200 and then says nothing, ever (`silenceWatch`: a proxy still holding
//! the connection of a server that has gone; changes meanwhile are in the history, for the
//! client that watches again from its resourceVersion). `delay`
//! is a slow network instead: a client that gives up takes the request with it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

/// What to do to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Serve it normally.
    Pass,
    /// Answer with this status code (a Status body with reason InternalError etc.).
    Fail(u16),
    /// Wait, then serve it; a client that gives up meanwhile takes the request with it.
    Delay(Duration),
    /// Serve it (the write is applied), then drop the connection without an answer.
    LoseResponse,
    /// Wait, then serve it even if the client has gone meanwhile.
    Hold(Duration),
    /// A watch: answer 200, then send nothing until the client leaves.
    Silence,
}

#[derive(Clone, Debug)]
struct Rule {
    method: Option<String>,
    path_prefix: String,
    remaining: u32,
    action: Action,
    /// Only watch requests match (a GET of the same path passes).
    watch_only: bool,
}

/// Every request served since the last reset, with its depth: 1 + the deepest request
/// that had finished when it began. A request that began only after another one finished
/// may have waited for it, so the deepest depth is the number of round trips one after
/// another, the critical path (with a latency model, requests that overlap in time are
/// told apart reliably).
#[derive(Default)]
struct Timeline {
    entries: Vec<(String, String, u32)>,
    finished_depth: u32,
}

/// A request in flight in the [`Timeline`].
pub struct Ticket {
    depth: u32,
}

/// One request as it arrived, in the request log ([`Faults::requests`]): who its
/// credentials say made it, the impersonation headers it carried, who it ran as and with
/// what authorization attributes, and whether it got past authentication, impersonation
/// and authorization (a `false` was answered 401, 403, or 500 for groups impersonated
/// without a user, and never served).
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The method, WATCH for a watch (as in the counts).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, "" when there was none.
    pub query: String,
    /// The authenticated user's name (`system:anonymous` without credentials); None when
    /// the token was refused (401).
    pub user: Option<String>,
    /// The authenticated user's groups.
    pub groups: Vec<String>,
    /// The `Impersonate-*` headers received.
    pub impersonation: crate::auth::Impersonation,
    /// The user the request was authorized as (the impersonated one, when impersonation
    /// was allowed); None when it never got that far.
    pub acting_as: Option<String>,
    /// The authorization attributes: verb, apiGroup, resource, subresource, namespace
    /// and name of a resource request, or the path of a non-resource one.
    pub attributes: crate::auth::RequestInfo,
    /// Let through to be served.
    pub allowed: bool,
}

impl RequestRecord {
    /// The JSON form `GET /sandbox/requests` lists.
    pub fn to_json(&self) -> Value {
        json!({
            "method": self.method, "path": self.path, "query": self.query,
            "user": self.user, "groups": self.groups,
            "impersonate": self.impersonation.to_json(),
            "actingAs": self.acting_as,
            "attributes": self.attributes.to_json(),
            "allowed": self.allowed,
        })
    }
}

/// The fault hooks of one sandbox.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    ops_failures: Mutex<HashMap<(String, String), String>>,
    counts: Mutex<HashMap<(String, String), u64>>,
    skip_real_db: Mutex<std::collections::HashSet<(String, String)>>,
    stalled_rollouts: Mutex<std::collections::HashSet<(String, String)>>,
    refuse_until: Mutex<Option<std::time::Instant>>,
    timeline: Mutex<Timeline>,
    log: Mutex<Vec<RequestRecord>>,
    /// Woken when a restart begins, so open connections (watches too) are dropped.
    pub restarted: tokio::sync::Notify,
}

impl Faults {
    /// Fail the next `count` requests whose path starts with `path_prefix` (and whose
    /// method matches, if given) with HTTP `code`.
    pub fn fail_next(&self, method: Option<&str>, path_prefix: &str, count: u32, code: u16) {
        self.push(method, path_prefix, count, Action::Fail(code));
    }

    /// Delay the next `count` requests whose path starts with `path_prefix`.
    pub fn delay_next(&self, method: Option<&str>, path_prefix: &str, count: u32, delay: Duration) {
        self.push(method, path_prefix, count, Action::Delay(delay));
    }

    /// Answer the next `count` watches under `path_prefix`, then leave them silent.
    pub fn silence_watch_next(&self, path_prefix: &str, count: u32) {
        self.push(Some("GET"), path_prefix, count, Action::Silence);
    }

    fn push(&self, method: Option<&str>, path_prefix: &str, count: u32, action: Action) {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Rule {
                method: method.map(str::to_uppercase),
                path_prefix: path_prefix.into(),
                remaining: count,
                watch_only: action == Action::Silence,
                action,
            });
    }

    /// Apply the next `count` matching requests but never answer them: the connection
    /// closes after the write, as when an answer is lost on the way back.
    pub fn lose_response_next(&self, method: Option<&str>, path_prefix: &str, count: u32) {
        self.push(method, path_prefix, count, Action::LoseResponse);
    }

    /// Hold the next `count` matching requests for `delay`, then apply them whether or not
    /// their client is still waiting.
    pub fn hold_next(&self, method: Option<&str>, path_prefix: &str, count: u32, delay: Duration) {
        self.push(method, path_prefix, count, Action::Hold(delay));
    }

    /// Restart: drop every open connection now, and refuse new ones for `duration`.
    pub fn refuse_connections_for(&self, duration: Duration) {
        *self.refuse_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::time::Instant::now() + duration);
        self.restarted.notify_waiters();
    }

    /// Whether new connections are refused now (a restart is under way).
    pub fn refusing(&self) -> bool {
        self.refuse_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| std::time::Instant::now() < t)
    }

    /// Decide what happens to a request, a watch or not (consumes one use of the first
    /// matching rule).
    pub fn check(&self, method: &str, path: &str, watch: bool) -> Action {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let hit = rules.iter().position(|r| {
            r.remaining > 0
                && (watch || !r.watch_only)
                && path.starts_with(&r.path_prefix)
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        });
        let Some(i) = hit else { return Action::Pass };
        rules[i].remaining -= 1;
        let action = rules[i].action.clone();
        if rules[i].remaining == 0 {
            rules.remove(i);
        }
        action
    }

    /// Make the ops request `namespace/name` (once created) end `Failed` with `reason`.
    pub fn fail_ops_request(&self, namespace: &str, name: &str, reason: &str) {
        self.ops_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.into(), name.into()), reason.into());
    }

    /// The failure planned for an ops request, if any (the simulated operator asks).
    pub fn ops_failure(&self, namespace: &str, name: &str) -> Option<String> {
        self.ops_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Forget the failure planned for `namespace/name` (the Arc controller uses a planned
    /// failure once, so the next generation bump can succeed).
    pub fn clear_ops_failure(&self, namespace: &str, name: &str) {
        self.ops_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// Make rotations of the real-server-bound database `namespace/name` not take effect on
    /// the server (the Secret still moves on): a new password that does not work.
    pub fn skip_real_db_change(&self, namespace: &str, name: &str) {
        self.skip_real_db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.into(), name.into()));
    }

    /// Whether rotations of `namespace/name` skip the real server (the operator asks).
    pub fn skips_real_db_change(&self, namespace: &str, name: &str) -> bool {
        self.skip_real_db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(namespace.to_string(), name.to_string()))
    }

    /// Stall the rollouts of the workload `namespace/name` (Deployment, StatefulSet,
    /// DaemonSet, ReplicaSet or Job of that name): the controller still observes each new
    /// generation, but never brings the updated, ready and available replicas up; a
    /// Deployment's `Progressing` condition turns False, reason `ProgressDeadlineExceeded`,
    /// once `spec.progressDeadlineSeconds` have passed, as on a real cluster.
    pub fn stall_rollouts_of(&self, namespace: &str, name: &str) {
        self.stalled_rollouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.into(), name.into()));
    }

    /// Let the rollouts of `namespace/name` proceed again (a stalled one then completes).
    pub fn resume_rollouts_of(&self, namespace: &str, name: &str) {
        self.stalled_rollouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// Whether the rollouts of `namespace/name` are stalled (the workload controller asks).
    pub fn rollout_stalled(&self, namespace: &str, name: &str) -> bool {
        self.stalled_rollouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(namespace.to_string(), name.to_string()))
    }

    /// Count one served request.
    pub fn record(&self, method: &str, path: &str) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((method.to_string(), path.to_string()))
            .or_default() += 1;
    }

    /// Requests served so far, total.
    pub fn total_requests(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// Requests served so far, by method and path (without query).
    pub fn request_counts(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<_> = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((m, p), n)| (m.clone(), p.clone(), *n))
            .collect();
        v.sort();
        v
    }

    /// Forget the counts, the timeline and the request log.
    pub fn reset_counts(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self.timeline.lock().unwrap_or_else(|e| e.into_inner()) = Timeline::default();
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Enter a request in the request log.
    pub fn log_request(&self, record: RequestRecord) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// The request log since the last reset, in arrival order: every request but the
    /// `/sandbox/*` controls, with its user, impersonation and authorization.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A request begins (`method` is WATCH for a watch): enters it in the timeline.
    pub fn begin(&self, method: &str, path: &str) -> Ticket {
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        let depth = t.finished_depth + 1;
        t.entries
            .push((method.to_string(), path.to_string(), depth));
        Ticket { depth }
    }

    /// A request's answer has gone out (for a watch: its headers).
    pub fn end(&self, ticket: Ticket) {
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        t.finished_depth = t.finished_depth.max(ticket.depth);
    }

    /// The requests since the last reset, in the order they began: (method, path, depth).
    pub fn timeline(&self) -> Vec<(String, String, u32)> {
        self.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .clone()
    }

    /// The deepest request since the last reset: round trips one after another.
    pub fn critical_path(&self) -> u32 {
        self.timeline().iter().map(|e| e.2).max().unwrap_or(0)
    }

    /// The round trips one after another before the first watch began (all of them when
    /// there was no watch): what a client waited through before following a change.
    pub fn depth_before_watch(&self) -> u32 {
        let timeline = self.timeline();
        let watch = timeline.iter().find(|e| e.0 == "WATCH").map(|e| e.2);
        timeline
            .iter()
            .filter(|e| watch.is_none_or(|w| e.2 < w))
            .map(|e| e.2)
            .max()
            .unwrap_or(0)
    }

    /// Apply a JSON command (the HTTP form of these hooks).
    pub fn apply_json(&self, cmd: &Value) -> Result<(), String> {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
        // The hooks on the next requests to a path: one rule each, built from its fields.
        let millis = |f: &Value| Duration::from_millis(n(f, "millis").unwrap_or(1000));
        let action_of = |hook: &str, f: &Value| match hook {
            "failNext" => Action::Fail(n(f, "code").unwrap_or(500) as u16),
            "delay" => Action::Delay(millis(f)),
            "loseResponse" => Action::LoseResponse,
            _ => Action::Hold(millis(f)),
        };
        for hook in ["failNext", "delay", "loseResponse", "hold"] {
            if let Some(f) = cmd.get(hook) {
                let prefix = s(f, "pathPrefix").ok_or(format!("{hook}.pathPrefix is required"))?;
                self.push(
                    s(f, "method").as_deref(),
                    &prefix,
                    n(f, "count").unwrap_or(1) as u32,
                    action_of(hook, f),
                );
            }
        }
        if let Some(f) = cmd.get("silenceWatch") {
            let prefix = s(f, "pathPrefix").ok_or("silenceWatch.pathPrefix is required")?;
            self.silence_watch_next(&prefix, n(f, "count").unwrap_or(1) as u32);
        }
        if let Some(f) = cmd.get("refuseConnections") {
            self.refuse_connections_for(Duration::from_millis(n(f, "millis").unwrap_or(1000)));
        }
        if let Some(f) = cmd.get("failOpsRequest") {
            let ns = s(f, "namespace").ok_or("failOpsRequest.namespace is required")?;
            let name = s(f, "name").ok_or("failOpsRequest.name is required")?;
            self.fail_ops_request(
                &ns,
                &name,
                &s(f, "reason").unwrap_or_else(|| "injected failure".into()),
            );
        }
        if let Some(f) = cmd.get("skipRealDbChange") {
            let ns = s(f, "namespace").ok_or("skipRealDbChange.namespace is required")?;
            let name = s(f, "name").ok_or("skipRealDbChange.name is required")?;
            self.skip_real_db_change(&ns, &name);
        }
        for (hook, stall) in [("stallRollouts", true), ("resumeRollouts", false)] {
            if let Some(f) = cmd.get(hook) {
                let ns = s(f, "namespace").ok_or(format!("{hook}.namespace is required"))?;
                let name = s(f, "name").ok_or(format!("{hook}.name is required"))?;
                if stall {
                    self.stall_rollouts_of(&ns, &name);
                } else {
                    self.resume_rollouts_of(&ns, &name);
                }
            }
        }
        if cmd.get("resetCounts").is_some() {
            self.reset_counts();
        }
        Ok(())
    }

    /// The request counts as JSON.
    pub fn counts_json(&self) -> Value {
        json!({
            "total": self.total_requests(),
            "requests": self.request_counts().into_iter().map(|(m, p, n)| json!({"method": m, "path": p, "count": n})).collect::<Vec<_>>(),
            "criticalPath": self.critical_path(),
            "timeline": self.timeline().into_iter().map(|(m, p, d)| json!({"method": m, "path": p, "depth": d})).collect::<Vec<_>>(),
            "log": self.requests().iter().map(RequestRecord::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fail_rule_hits_exactly_count_matching_requests() {
        let f = Faults::default();
        f.fail_next(Some("patch"), "/apis/x", 2, 503);
        assert_eq!(f.check("GET", "/apis/x/y", false), Action::Pass);
        assert_eq!(f.check("PATCH", "/apis/x/y", false), Action::Fail(503));
        assert_eq!(f.check("PATCH", "/apis/x/z", false), Action::Fail(503));
        assert_eq!(f.check("PATCH", "/apis/x/z", false), Action::Pass);
    }

    #[test]
    fn a_silence_rule_takes_only_watches() {
        let f = Faults::default();
        f.apply_json(&json!({"silenceWatch": {"pathPrefix": "/apis/ops", "count": 1}}))
            .unwrap();
        assert_eq!(
            f.check("GET", "/apis/ops/x", false),
            Action::Pass,
            "a plain GET"
        );
        assert_eq!(f.check("GET", "/apis/ops/x", true), Action::Silence);
        assert_eq!(f.check("GET", "/apis/ops/x", true), Action::Pass, "once");
    }

    #[test]
    fn lost_answers_held_writes_and_restarts_are_rules_like_the_others() {
        let f = Faults::default();
        f.lose_response_next(Some("POST"), "/apis/ops", 1);
        f.hold_next(None, "/apis/sql", 1, Duration::from_millis(5));
        assert_eq!(f.check("GET", "/apis/ops/x", false), Action::Pass);
        assert_eq!(f.check("POST", "/apis/ops/x", false), Action::LoseResponse);
        assert_eq!(f.check("POST", "/apis/ops/x", false), Action::Pass, "once");
        assert_eq!(
            f.check("PATCH", "/apis/sql/y", false),
            Action::Hold(Duration::from_millis(5))
        );
        assert!(!f.refusing());
        f.refuse_connections_for(Duration::from_secs(60));
        assert!(f.refusing());
        f.apply_json(&json!({"refuseConnections": {"millis": 0}}))
            .unwrap();
        assert!(!f.refusing(), "a restart of 0 ms is over at once");
    }
}
