//! The request plan of each verb, counted on the sandbox: how many requests, and how many
//! round trips one after another (the critical path, from the sandbox's request
//! timeline). Counts, not times: a 100 ms round trip on every request only makes
//! requests that overlap in time tell apart reliably, and the tests run one at a time so
//! that a busy machine delays no request by as much.

mod cli_support;

use std::time::Duration;

use cli_support::Env;

/// One test at a time (see the module's note).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn remote() -> (std::sync::MutexGuard<'static, ()>, Env) {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::with(rotate_sandbox::Options {
        latency: rotate_sandbox::Latency {
            round_trip: Duration::from_millis(100),
            per_kib: Duration::ZERO,
        },
        ..rotate_sandbox::Options::demo()
    });
    (guard, env)
}

/// Runs a command after resetting the counts; returns (requests, critical path, the
/// depth at which the first watch began, if any) and prints the timeline.
fn measure(env: &Env, args: &[&str]) -> (usize, u32, Option<u32>) {
    env.sb.faults().reset_counts();
    let out = env.run(args, "", false);
    assert_eq!(out.code, 0, "{out:#?}");
    let timeline = env.sb.faults().timeline();
    for (m, p, d) in &timeline {
        eprintln!("{d:>2} {m} {p}");
    }
    let watch = timeline.iter().find(|e| e.0 == "WATCH").map(|e| e.2);
    (timeline.len(), env.sb.faults().depth_before_watch(), watch)
}

#[test]
fn list_all_namespaces_is_discovery_then_one_round_of_lists() {
    let (_one, env) = remote();
    let (n, depth, _) = measure(&env, &["list", "-A"]);
    let timeline = env.sb.faults().timeline();
    let gets = |p: &str| timeline.iter().filter(|e| e.1 == p).count();
    assert_eq!(gets("/apis"), 1, "one aggregated discovery");
    assert_eq!(gets("/api/v1/secrets"), 1, "one LIST of the Secrets");
    // Every other request is the LIST of a collection, each asked for once (no pages).
    let mut paths: Vec<&str> = timeline.iter().map(|e| e.1.as_str()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), n, "no collection listed twice: {timeline:?}");
    assert!(timeline.iter().all(|e| e.0 == "GET"), "{timeline:?}");
    // Discovery (with the Secrets), then everything else at once.
    assert_eq!(depth, 2, "{timeline:?}");
    // Once discovery is remembered, the LISTs go out with it: one round trip.
    let (again, depth, _) = measure(&env, &["list", "-A"]);
    assert_eq!((again, depth), (n, 1), "{:?}", env.sb.faults().timeline());
    // The kinds: every database kind the sandbox serves, and the ops requests of each.
    let kinds = timeline
        .iter()
        .filter(|e| e.1.starts_with("/apis/kubedb.com/"))
        .count();
    let ops = timeline
        .iter()
        .filter(|e| e.1.starts_with("/apis/ops.kubedb.com/"))
        .count();
    assert!(
        kinds >= 30 && ops == kinds,
        "{kinds} kinds, {ops} ops kinds"
    );
}

#[test]
fn a_stale_discovery_cache_costs_a_round_trip_and_loses_nothing() {
    let (_one, env) = remote();
    let want = env.run(&["list", "-A", "-o", "name"], "", false);
    assert_eq!(want.code, 0, "{want:#?}");
    // The cache says Postgres is served at a version the cluster does not serve, and
    // knows nothing of the other kinds.
    let file = std::fs::read_dir(env.cache_dir().join("kubectl-rotate"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let cached: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut pg = cached
        .into_iter()
        .find(|e| e["kind"] == "Postgres")
        .unwrap();
    pg["ar"]["version"] = "v9".into();
    pg["ar"]["api_version"] = "kubedb.com/v9".into();
    std::fs::write(&file, serde_json::to_string(&[pg]).unwrap()).unwrap();
    let (_, depth, _) = measure(&env, &["list", "-A", "-o", "name"]);
    assert_eq!(depth, 2, "the kinds the cache missed cost one round trip");
    let got = env.run(&["list", "-A", "-o", "name"], "", false);
    assert_eq!(got.stdout, want.stdout, "nothing lost");
}

#[test]
fn auth_wait_is_at_most_four_round_trips_before_the_watch_and_three_once_the_lease_exists() {
    let (_one, env) = remote();
    for (round, most) in [(1, 4), (2, 3)] {
        // NB: a request's name derives from the auth Secret's last update, in seconds; a
        // rotation in the same second as the last one's end collides with its name and
        // takes a second POST (recognised, not doubled), which is not what is counted here.
        std::thread::sleep(Duration::from_millis(1100));
        let (_, depth, watch) = measure(&env, &["auth", "pg/pg-demo", "--wait"]);
        assert!(watch.is_some(), "it watches");
        assert!(
            depth <= most,
            "rotation {round}: {depth} round trips before the watch"
        );
        let posts = env
            .sb
            .faults()
            .timeline()
            .iter()
            .filter(|e| e.0 == "POST" && e.1.contains("/apis/ops.kubedb.com/"))
            .count();
        assert_eq!(posts, 1);
    }
    let (_, depth, _) = measure(&env, &["auth", "sqlmi/sqlmi-demo", "--wait"]);
    assert!(depth <= 3, "Arc: {depth} round trips before the watch");
    // A rollback reads the auth Secret under the lock (its previous credential must be the
    // latest), then writes the rollback Secret, then the request: two more.
    std::thread::sleep(Duration::from_millis(1100));
    let (_, depth, _) = measure(&env, &["rollback", "pg/pg-demo", "--wait"]);
    eprintln!("rollback: {depth} round trips before the watch");
    assert!(depth <= 5, "rollback: {depth} round trips before the watch");
}

#[test]
fn prev_and_status_are_at_most_three_round_trips() {
    let (_one, env) = remote();
    for args in [
        &["prev", "pg/pg-demo"][..],
        &["status", "pg/pg-demo"],
        &["status", "sqlmi/sqlmi-demo"],
        &["prev", "sqlmi/sqlmi-demo"],
    ] {
        let (_, depth, _) = measure(&env, args);
        assert!(depth <= 3, "{args:?}: {depth} round trips");
    }
}

#[test]
fn a_server_dry_run_asks_who_we_are_with_discovery_not_after_it() {
    let (_one, env) = remote();
    let (_, depth, _) = measure(&env, &["auth", "pg/pg-demo", "--dry-run=server"]);
    let reviews = env
        .sb
        .faults()
        .timeline()
        .iter()
        .filter(|e| e.1.contains("selfsubjectreviews"))
        .map(|e| e.2)
        .collect::<Vec<_>>();
    assert_eq!(
        reviews,
        vec![1],
        "one SelfSubjectReview, in the first round trip"
    );
    assert!(depth <= 4, "--dry-run=server: {depth} round trips");
}
