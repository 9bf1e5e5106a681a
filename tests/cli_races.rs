//! Races and lost answers: at most one rotation in flight per database whatever the
//! credential source, one write per command when a response is lost or a write is held,
//! and a truthful report of what landed.

mod cli_support;

use std::time::Duration;

use cli_support::{Env, Out};

/// The RotateAuth requests for pg-demo in demo.
fn pg_requests(env: &Env) -> Vec<serde_json::Value> {
    env.ops_requests("postgresopsrequests")
}

/// Exactly one command won; every other one exited 3 and said why.
#[track_caller]
fn one_winner(outs: &[Out], what: &str) {
    let ok: Vec<&Out> = outs.iter().filter(|o| o.code == 0).collect();
    assert_eq!(ok.len(), 1, "{what}: {outs:#?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        assert_eq!(o.code, 3, "{what}: {o:#?}");
        assert!(
            o.stderr.contains("already has a rotation in progress"),
            "{what}: {o:#?}"
        );
    }
}

#[test]
fn twenty_concurrent_rotations_of_one_database_start_exactly_one_whatever_the_source() {
    let sources: [(&str, &[&str], Option<&str>); 5] = [
        ("operator-generated", &[], None),
        ("--generate", &["--generate"], None),
        (
            "--password-stdin",
            &["--password-stdin"],
            Some("Concurrent{i}Pass0word\n"),
        ),
        ("--secret", &["--secret", "mine-{i}"], None),
        ("--apply Always", &["--apply", "Always"], None),
    ];
    for (what, extra, stdin) in sources {
        // Operators that take their time: every command runs while the first is in flight.
        let env = Env::slow(Duration::from_millis(1500));
        let before = env.db_password("pg", "pg-demo");
        let outs = if extra.contains(&"mine-{i}") {
            // Twenty user-supplied Secrets, one per command.
            for i in 0..20 {
                env.kubectl(&[
                    "create",
                    "secret",
                    "generic",
                    &format!("mine-{i}"),
                    "--type=kubernetes.io/basic-auth",
                    "--from-literal=username=postgres",
                    &format!("--from-literal=password=Secret{i}Pass0word"),
                ])
                .expect(0);
            }
            let children: Vec<_> = (0..20)
                .map(|i| env.spawn(&["auth", "pg/pg-demo", "--secret", &format!("mine-{i}")]))
                .collect();
            children
                .into_iter()
                .map(|c| env.finish(c))
                .collect::<Vec<_>>()
        } else {
            let mut args = vec!["auth", "pg/pg-demo"];
            args.extend_from_slice(extra);
            env.concurrently(20, &args, stdin)
        };
        one_winner(&outs, what);
        assert_eq!(pg_requests(&env).len(), 1, "{what}: one ops request");
        let secrets = env.kubectl(&["get", "secrets", "-o", "name"]).stdout;
        let made = secrets
            .lines()
            .filter(|l| l.contains("pg-demo-rotate-auth-"))
            .count();
        assert!(
            made <= 1,
            "{what}: no Secret of a losing command is left: {secrets}"
        );
        // The previous credential is still the one from before the race.
        let prev = env.secret_value("pg-demo-auth", "password.prev");
        assert!(
            prev.is_none() || prev.as_deref() == Some(before.as_str()),
            "{what}: password.prev is the password from before"
        );
        env.assert_no_password_printed();
    }
}

#[test]
fn a_second_rotation_after_the_first_is_written_is_refused_while_the_first_runs() {
    let env = Env::slow(Duration::from_millis(800));
    env.rotate(&["auth", "pg/pg-demo"]).expect(0);
    let out = env.rotate(&["auth", "pg/pg-demo", "--generate"]);
    assert_eq!(out.code, 3, "{out:#?}");
    assert!(
        out.stderr.contains("started by"),
        "it says who started the running one: {}",
        out.stderr
    );
    assert_eq!(pg_requests(&env).len(), 1);
}

/// The sandbox path prefix of Postgres ops requests.
const PG_OPS: &str = "/apis/ops.kubedb.com/";
/// The sandbox path prefix of the Arc instance.
const SQLMI: &str = "/apis/sql.arcdata.microsoft.com/";

#[test]
fn a_lost_answer_to_the_ops_request_post_is_recognised_and_not_doubled() {
    // Operators fast enough that the first request has finished when the retry goes out.
    let env = Env::with(rotate_sandbox::Options {
        operator_delay: Duration::from_millis(10),
        ..rotate_sandbox::Options::demo()
    });
    env.sb.faults().lose_response_next(Some("POST"), PG_OPS, 1);
    let out = env.rotate(&["auth", "pg/pg-demo", "--generate", "--wait"]);
    out.expect(0);
    assert!(out.stdout.contains("Successful"), "{}", out.stdout);
    assert_eq!(pg_requests(&env).len(), 1, "one write, reported: {out:#?}");
    env.assert_no_password_printed();
}

#[test]
fn a_held_ops_request_post_applied_after_the_client_gave_up_is_not_doubled() {
    let env = Env::demo();
    env.sb
        .faults()
        .hold_next(Some("POST"), PG_OPS, 1, Duration::from_millis(2500));
    let out = env.rotate(&["auth", "pg/pg-demo", "--wait", "--request-timeout", "1s"]);
    out.expect(0);
    // Let the held write land too: it must find the request already there.
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(pg_requests(&env).len(), 1, "{out:#?}");
}

#[test]
fn an_arc_patch_whose_answer_is_lost_is_reported_done_and_not_sent_twice() {
    let env = Env::demo();
    env.sb.faults().lose_response_next(Some("PATCH"), SQLMI, 1);
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait"]);
    out.expect(0);
    assert_eq!(env.sqlmi_generation(), 1, "{out:#?}");
}

#[test]
fn an_arc_patch_that_lands_after_the_re_read_is_recognised_by_its_id() {
    // The first PATCH is held past the client's timeout; the re-read sees nothing yet; the
    // resend is slowed so that it arrives after the held one landed, and fails its `test`.
    let env = Env::demo();
    let faults = env.sb.faults();
    faults.hold_next(Some("PATCH"), SQLMI, 1, Duration::from_millis(1500));
    faults.delay_next(Some("PATCH"), SQLMI, 1, Duration::from_millis(700));
    let out = env.rotate(&[
        "auth",
        "sqlmi/sqlmi-demo",
        "--wait",
        "--request-timeout",
        "1s",
    ]);
    out.expect(0);
    assert_eq!(env.sqlmi_generation(), 1, "bumped once: {out:#?}");
    assert!(
        !out.stderr.contains("re-run"),
        "no advice to run it again: {}",
        out.stderr
    );
}

#[test]
fn an_api_server_restart_during_wait_is_waited_out_and_the_rotation_completes() {
    let env = Env::slow(Duration::from_millis(400));
    let child = env.spawn(&["auth", "pg/pg-demo", "--wait", "--request-timeout", "2s"]);
    // Once the request is written, the server goes away for five seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pg_requests(&env).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    env.sb
        .faults()
        .refuse_connections_for(Duration::from_secs(5));
    let out = env.finish(child);
    if out.code == 0 {
        assert!(out.stdout.contains("Successful"), "{out:#?}");
    } else {
        assert!(
            out.stderr.contains("its outcome is unknown") && out.stderr.contains("kubectl get"),
            "the known state and how to follow it: {out:#?}"
        );
    }
    assert_eq!(pg_requests(&env).len(), 1);
}

/// Watches of Postgres ops requests served so far.
fn ops_watches(env: &Env) -> u64 {
    env.sb
        .faults()
        .request_counts()
        .into_iter()
        .filter(|(m, p, _)| m == "WATCH" && p.ends_with("/postgresopsrequests"))
        .map(|(_, _, n)| n)
        .sum()
}

#[test]
fn a_watch_that_goes_silent_is_reopened_and_the_wait_completes() {
    let env = Env::slow(Duration::from_millis(400));
    // The first watch of the ops request is answered and then says nothing, ever (a proxy
    // holding the connection of a server that has gone).
    env.sb
        .faults()
        .silence_watch_next("/apis/ops.kubedb.com/", 1);
    let started = std::time::Instant::now();
    let out = Out::from(
        env.rotate_command(&["auth", "pg/pg-demo", "--wait", "--timeout", "60s"])
            .env("KUBECTL_ROTATE_WATCH_SILENCE", "1s")
            .output()
            .expect("run"),
    );
    env.record(&out);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("Successful"), "{out:#?}");
    assert!(ops_watches(&env) >= 2, "reopened: {}", ops_watches(&env));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "not held until --timeout"
    );
    assert_eq!(pg_requests(&env).len(), 1);

    // Without a bound that short, the same silence holds the wait until --timeout.
    env.sb
        .faults()
        .silence_watch_next("/apis/ops.kubedb.com/", 1);
    let out = Out::from(
        env.rotate_command(&["auth", "pg/pg-demo", "--wait", "--timeout", "3s"])
            .env("KUBECTL_ROTATE_WATCH_SILENCE", "10m")
            .output()
            .expect("run"),
    );
    env.record(&out);
    assert_eq!(out.code, 124, "{out:#?}");

    // A bound that is not a duration is a usage error, before anything is written.
    let before = pg_requests(&env).len();
    let out = Out::from(
        env.rotate_command(&["auth", "pg/pg-demo"])
            .env("KUBECTL_ROTATE_WATCH_SILENCE", "soon")
            .output()
            .expect("run"),
    );
    env.record(&out);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("KUBECTL_ROTATE_WATCH_SILENCE"),
        "{}",
        out.stderr
    );
    assert_eq!(pg_requests(&env).len(), before, "nothing written");
}

/// The plugin's own Secrets for pg-demo's rotations.
fn rotation_secrets(env: &Env) -> Vec<String> {
    env.kubectl(&["get", "secrets", "-o", "name"])
        .stdout
        .lines()
        .filter(|l| l.contains("pg-demo-rotate-auth-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn ctrl_c_between_the_generated_secret_and_the_ops_request_leaves_nothing_behind() {
    let env = Env::demo();
    // The ops request's POST is held (and applied later even without its client), so the
    // Secret exists and the request does not when Ctrl-C comes.
    env.sb
        .faults()
        .hold_next(Some("POST"), PG_OPS, 1, Duration::from_millis(2500));
    let mut child = env.spawn(&["auth", "pg/pg-demo", "--generate", "--wait"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rotation_secrets(&env).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rotation_secrets(&env).len(), 1, "the Secret was made first");
    std::thread::sleep(Duration::from_millis(200));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait");
    let out = env.finish(child);
    assert_eq!(status.code(), Some(130), "{out:#?}");
    assert!(
        out.stderr
            .contains("interrupted before the rotation was written; nothing was changed"),
        "{out:#?}"
    );
    // The held POST lands now, without its Secret: the webhook refuses it.
    std::thread::sleep(Duration::from_millis(3000));
    assert!(rotation_secrets(&env).is_empty(), "no orphan Secret");
    assert!(pg_requests(&env).is_empty(), "and no request");
    env.assert_no_password_printed();
}

#[test]
fn retry_re_runs_a_failed_rotation_once_and_only_a_failed_one() {
    let env = Env::with(rotate_sandbox::Options {
        operator_delay: Duration::from_millis(10),
        ..rotate_sandbox::Options::demo()
    });
    let out = env.run(&["retry", "pg/pg-demo", "-n", "demo"], "", false);
    assert_eq!(out.code, 6, "nothing to retry yet: {out:#?}");
    // The request `auth` will create is named from its inputs: make that one fail.
    let preview = env.run(
        &[
            "auth",
            "pg/pg-demo",
            "-n",
            "demo",
            "--dry-run=client",
            "-o",
            "name",
        ],
        "",
        false,
    );
    let first = cli_support::name_of(&preview.stdout);
    env.sb
        .faults()
        .fail_ops_request("demo", &first, "disk full");
    let out = env.run(&["auth", "pg/pg-demo", "-n", "demo", "--wait"], "", false);
    assert_eq!(out.code, 5, "{out:#?}");

    let out = env.run(&["retry", "pg/pg-demo", "-n", "demo", "--wait"], "", false);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("Successful"), "{}", out.stdout);
    let requests = pg_requests(&env);
    assert_eq!(requests.len(), 2, "the failed one and its retry");
    assert!(requests
        .iter()
        .all(|r| r["spec"]["authentication"].is_null()));

    let out = env.run(&["retry", "pg/pg-demo", "-n", "demo"], "", false);
    assert_eq!(out.code, 6, "the last one succeeded: {out:#?}");
    assert!(out.stderr.contains("is Successful"), "{}", out.stderr);
}

#[test]
fn retry_keeps_the_failed_rotations_own_secret() {
    let env = Env::with(rotate_sandbox::Options {
        operator_delay: Duration::from_millis(10),
        ..rotate_sandbox::Options::demo()
    });
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        "mine",
        "--type=kubernetes.io/basic-auth",
        "--from-literal=username=postgres",
        "--from-literal=password=Mine0Password1",
    ])
    .expect(0);
    let args = ["auth", "pg/pg-demo", "-n", "demo", "--secret", "mine"];
    let preview = env.run(
        &[&args[..], &["--dry-run=client", "-o", "name"]].concat(),
        "",
        false,
    );
    env.sb
        .faults()
        .fail_ops_request("demo", &cli_support::name_of(&preview.stdout), "x");
    assert_eq!(
        env.run(&[&args[..], &["--wait"]].concat(), "", false).code,
        5
    );
    env.run(
        &["retry", "pg", "pg-demo", "-n", "demo", "--wait"],
        "",
        false,
    )
    .expect(0);
    assert_eq!(env.db_password("pg", "pg-demo"), "Mine0Password1");
    let requests = pg_requests(&env);
    assert!(
        requests
            .iter()
            .all(|r| r["spec"]["authentication"]["secretRef"]["name"] == "mine"),
        "{requests:#?}"
    );
}

#[test]
fn an_arc_instance_cannot_be_retried_and_nothing_is_written() {
    let env = Env::demo();
    let out = env.run(&["retry", "sqlmi/sqlmi-demo", "-n", "demo"], "", false);
    assert_eq!(out.code, 6, "{out:#?}");
    assert!(out.stderr.contains("only on a new credentials generation"));
    assert_eq!(env.sqlmi_generation(), 0);
}
