//! `kubectl rotate prev|status|history` and the audit Events, against the sandbox: before,
//! during and after rotations, a Failed and a Skipped request, an Arc instance after
//! rotation and after rollback; and no password in any output without `--reveal`.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{name_of, Env, Out};
use rotate_sandbox::fixtures::{demo_passwords, Db, PG_DEMO_PASSWORD};
use serde_json::{json, Value};

/// Polls `check` until it holds (or panics after 20s).
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates a RotateAuth for `db` straight in the store (as another client would).
fn create_rotate_auth(env: &Env, name: &str, db: &str) {
    let shared = env.sb.shared();
    let def = shared
        .registry
        .find_kind("ops.kubedb.com", "PostgresOpsRequest")
        .unwrap();
    shared
        .store
        .create(
            def,
            "demo",
            json!({"metadata": {"name": name}, "spec": {"type": "RotateAuth", "databaseRef": {"name": db}}}),
            false,
        )
        .unwrap();
}

/// Each line with runs of spaces squeezed to one, so assertions need not know the padding.
fn squeeze(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn phase_of(env: &Env, name: &str) -> String {
    env.get("pgops", name)["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ----- prev ------------------------------------------------------------------------------

#[test]
fn prev_before_any_rotation_shows_only_the_current_credential_and_says_why() {
    let env = Env::demo();
    let out = env.rotate(&["prev", "pg/pg-demo"]);
    out.expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with("ROLE      USERNAME   PASSWORD"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("current   postgres   ********   pg-demo-auth   username,password"),
        "{}",
        lines[1]
    );
    assert!(
        out.stderr.contains("no previous credential kept yet"),
        "{}",
        out.stderr
    );
    env.assert_no_password_printed();
}

#[test]
fn prev_after_a_rotation_pairs_current_and_previous_masked_in_every_format() {
    let env = Env::demo();
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(0);
    let out = env.rotate(&["prev", "pg/pg-demo"]);
    out.expect(0);
    assert!(
        out.stdout.contains(
            "previous   postgres   ********   pg-demo-auth   username.prev,password.prev"
        ),
        "{}",
        out.stdout
    );
    let v = env
        .rotate(&["prev", "pg/pg-demo", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(v["kind"], "PreviousCredentials");
    assert_eq!(v["credentials"][0]["role"], "current");
    assert_eq!(v["credentials"][1]["role"], "previous");
    assert_eq!(v["credentials"][1]["password"], "********");
    assert_eq!(
        v["credentials"][1]["keys"],
        json!(["username.prev", "password.prev"])
    );
    assert!(v["credentials"][1]["lastRotated"].is_string());
    env.rotate(&["prev", "pg/pg-demo", "-o", "yaml"]).expect(0);
    let name = env.rotate(&["prev", "pg/pg-demo", "-o", "name"]);
    assert_eq!(name.expect(0).stdout, "secret/pg-demo-auth\n");
    env.assert_no_password_printed();
}

#[test]
fn prev_reveal_prints_the_old_password_with_a_warning_on_stderr() {
    let env = Env::demo();
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(0);
    let out = env.rotate(&["prev", "pg/pg-demo", "--reveal", "-o", "json"]);
    let v = out.expect(0).json();
    assert_eq!(v["credentials"][1]["password"], PG_DEMO_PASSWORD);
    assert_eq!(
        v["credentials"][0]["password"].as_str(),
        Some(env.db_password("pg", "pg-demo").as_str())
    );
    assert!(
        out.stderr
            .starts_with("Warning: --reveal prints credentials in clear text"),
        "{}",
        out.stderr
    );
}

#[test]
fn prev_of_an_engine_without_a_kept_previous_credential_says_so() {
    let env = Env::demo();
    Db::new("Qdrant", "demo", "qd")
        .insert(env.sb.shared())
        .unwrap();
    let out = env.rotate(&["prev", "qdrant/qd"]);
    out.expect(0);
    assert!(
        out.stderr.contains("Qdrant keeps no previous credential"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stdout.lines().count(),
        2,
        "only the current API key: {}",
        out.stdout
    );
    env.assert_no_password_printed();
}

#[test]
fn prev_of_an_arc_instance_shows_the_login_and_the_generations_after_rotation_and_rollback() {
    let env = Env::demo();
    env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    let out = env.rotate(&["prev", "sqlmi/sqlmi-demo"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("current   arcadmin   ********   sqlmi-demo-login-secret"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Service-managed credentials generation: 1 (previous: 0;"),
        "{}",
        out.stdout
    );
    env.rotate(&["rollback", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    let v = env
        .rotate(&["prev", "sqlmi/sqlmi-demo", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(v["generation"]["current"], 0);
    assert_eq!(
        v["generation"]["previous"],
        Value::Null,
        "no second rollback"
    );
    env.assert_no_password_printed();
}

// ----- status ----------------------------------------------------------------------------

#[test]
fn status_of_a_database_in_the_middle_of_a_rotation_shows_it_in_flight_step_by_step() {
    let env = Env::slow(Duration::from_millis(400));
    let name = name_of(
        &env.rotate(&["auth", "pg/pg-demo", "-o", "name"])
            .expect(0)
            .stdout,
    );
    eventually("the rotation is Progressing", || {
        phase_of(&env, &name) == "Progressing"
    });
    let out = env.rotate(&["status", "pg/pg-demo"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains(&format!("Request:         PostgresOpsRequest {name}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Request phase:   Progressing"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\nSTEP         "), "{}", out.stdout);
    assert!(out.stdout.contains("RotateAuth   "), "{}", out.stdout);
    let list = env.rotate(&["list", "-o", "wide"]);
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains("pg-demo"))
        .unwrap()
        .to_string();
    assert!(row.contains("Progressing") && row.contains(&name), "{row}");
    let v = env
        .rotate(&["status", "pg/pg-demo", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(v["request"]["phase"], "Progressing");
    assert_eq!(v["request"]["source"], "generated");
    env.assert_no_password_printed();
}

#[test]
fn status_of_a_failed_rotation_says_which_step_failed_and_why() {
    let env = Env::demo();
    env.fail_next_rotation("pg/pg-demo", "the database refused the new password");
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(5);
    let out = env.rotate(&["status", "pg/pg-demo"]);
    out.expect(0);
    assert!(
        out.stdout.contains("Request phase:   Failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Reason:")
            && out.stdout.contains("the database refused the new password"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|l| l.contains("False")),
        "a False step: {}",
        out.stdout
    );
}

#[test]
fn a_skipped_request_shows_in_history_with_the_reason_and_status_shows_the_newest() {
    // NB: steps slow enough that the first request is still running (about 4 s) when the
    // next two arrive 1.1 s later, however loaded the machine: otherwise `a` could start
    // at once instead of waiting, and never be skipped.
    let env = Env::slow(Duration::from_millis(400));
    let first = name_of(
        &env.rotate(&["auth", "pg/pg-demo", "-o", "name"])
            .expect(0)
            .stdout,
    );
    // Two more arrive while the first runs: KubeDB skips all but the newest pending one.
    // NB: creation times have whole seconds; let the next ones be visibly newer. Among
    // themselves, same-second creation times order by name (as KubeDB does), so b is newest.
    std::thread::sleep(Duration::from_millis(1100));
    create_rotate_auth(&env, "pg-demo-by-hand-a", "pg-demo");
    create_rotate_auth(&env, "pg-demo-by-hand-b", "pg-demo");
    eventually("the newest request finishes", || {
        phase_of(&env, "pg-demo-by-hand-b") == "Successful"
    });
    assert_eq!(phase_of(&env, "pg-demo-by-hand-a"), "Skipped");

    let v = env
        .rotate(&["history", "pg/pg-demo", "-o", "json"])
        .expect(0)
        .json();
    let names: Vec<&str> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["pg-demo-by-hand-b", "pg-demo-by-hand-a", first.as_str()],
        "newest first"
    );
    assert_eq!(v["requests"][1]["phase"], "Skipped");
    assert!(
        v["requests"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("Skipped"),
        "{v:#}"
    );
    let wide = env.rotate(&["history", "pg/pg-demo", "-o", "wide"]);
    let skipped = wide
        .stdout
        .lines()
        .find(|l| l.starts_with("pg-demo-by-hand-a"))
        .unwrap();
    assert!(
        skipped.contains("Skipped") && skipped.contains("a newer RotateAuth ops request"),
        "{skipped}"
    );
    let status = env.rotate(&["status", "pg/pg-demo"]);
    assert!(
        status
            .expect(0)
            .stdout
            .contains("PostgresOpsRequest pg-demo-by-hand-b"),
        "{}",
        status.stdout
    );
}

#[test]
fn status_of_a_database_never_rotated_says_there_is_no_request_yet() {
    let env = Env::demo();
    let out = env.rotate(&["status", "ms/mssql-demo"]);
    out.expect(0);
    let text = squeeze(&out.stdout);
    assert!(text.contains("Phase: Ready\n"), "{text}");
    assert!(
        text.contains("Request: <none> (no RotateAuth for this database yet)"),
        "{text}"
    );
}

#[test]
fn status_of_an_arc_instance_says_whether_a_rollback_is_still_allowed() {
    let env = Env::demo();
    env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    let out = env.rotate(&["status", "sqlmi/sqlmi-demo"]);
    out.expect(0);
    for want in [
        "State:                    Ready",
        "Credentials generation:   1",
        "Rollback allowed:         yes, to generation 0",
    ] {
        assert!(out.stdout.contains(want), "{want}:\n{}", out.stdout);
    }
    env.rotate(&["rollback", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    let v = env
        .rotate(&["status", "sqlmi/sqlmi-demo", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(v["arc"]["credentialsGeneration"], 0);
    assert_eq!(v["arc"]["rollbackAllowed"], false);
    assert!(v["arc"]["rollbackRefused"]
        .as_str()
        .unwrap()
        .contains("only one step back"));
    assert_eq!(v["arc"]["lastAction"], "rollback");
    assert_eq!(v["arc"]["generation"], v["arc"]["observedGeneration"]);
}

#[test]
fn status_of_a_missing_database_exits_four() {
    let env = Env::demo();
    let out = env.rotate(&["status", "pg/nope"]);
    out.expect(4);
    assert!(
        out.stderr
            .contains("postgres \"nope\" in namespace \"demo\" not found"),
        "{}",
        out.stderr
    );
}

// ----- history and the audit trail ------------------------------------------------------

#[test]
fn history_lists_every_rotate_auth_newest_first_with_its_source_and_user() {
    let env = Env::demo();
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(0);
    env.rotate(&["rollback", "pg/pg-demo", "--wait"]).expect(0);
    let v = env
        .rotate(&["history", "pg/pg-demo", "-o", "json"])
        .expect(0)
        .json();
    let reqs = v["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2);
    let rollback = reqs[0]["name"].as_str().unwrap();
    assert!(rollback.starts_with("pg-demo-rollback-auth-"), "{rollback}");
    assert_eq!(reqs[0]["source"], format!("secret {rollback}"));
    assert_eq!(reqs[1]["source"], "generated");
    assert_eq!(reqs[1]["phase"], "Successful");
    assert_eq!(reqs[0]["user"], "sandbox-admin");
    let table = env.rotate(&["history", "pg/pg-demo"]);
    assert!(
        table
            .expect(0)
            .stdout
            .starts_with("NAME                          PHASE        SOURCE"),
        "{}",
        table.stdout
    );
    env.assert_no_password_printed();
}

#[test]
fn history_of_an_arc_instance_reads_back_the_generations_the_plugin_recorded() {
    let env = Env::demo();
    env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    env.rotate(&["rollback", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    let out = env.rotate(&["history", "sqlmi/sqlmi-demo"]);
    out.expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "each change once: {}", out.stdout);
    assert_eq!(lines[0], "ACTION     GENERATION   USER            TIME");
    assert!(
        lines[1].starts_with("rollback   1->0         sandbox-admin"),
        "newest first: {}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("rotate     0->1         sandbox-admin"),
        "{}",
        out.stdout
    );
}

#[test]
fn arc_history_outlives_the_events_through_the_instances_own_record() {
    let env = Env::demo();
    env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    env.rotate(&["rollback", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    // As kube-apiserver does after --event-ttl: the Events are gone.
    env.kubectl(&["delete", "events", "--all", "-n", "demo"])
        .expect(0);
    let history = env.get("sqlmi", "sqlmi-demo")["metadata"]["annotations"]
        ["rotate.kubectl.dev/history"]
        .as_str()
        .map(str::to_string)
        .expect("the history annotation");
    let recorded: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(recorded.as_array().map(Vec::len), Some(2), "{recorded}");
    let out = env.rotate(&["history", "sqlmi/sqlmi-demo"]);
    out.expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[1].starts_with("rollback   1->0         sandbox-admin"),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("rotate     0->1         sandbox-admin"),
        "{}",
        out.stdout
    );
}

#[test]
fn every_auth_and_rollback_records_an_event_with_the_user_and_no_secret() {
    let env = Env::demo();
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(0);
    env.rotate(&["rollback", "pg/pg-demo", "--wait"]).expect(0);
    let events = env
        .kubectl(&["get", "events", "-o", "json"])
        .expect(0)
        .json();
    let ours: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"]["component"] == "kubectl-rotate")
        .collect();
    let reasons: Vec<&str> = ours.iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "{ours:#?}");
    assert!(reasons.contains(&"CredentialRotation") && reasons.contains(&"CredentialRollback"));
    for e in &ours {
        assert_eq!(e["involvedObject"]["kind"], "Postgres");
        assert_eq!(e["involvedObject"]["name"], "pg-demo");
        assert!(e["involvedObject"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()));
        assert_eq!(e["type"], "Normal");
        assert_eq!(
            e["metadata"]["annotations"]["rotate.kubectl.dev/user"],
            "sandbox-admin"
        );
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("by sandbox-admin: PostgresOpsRequest pg-demo-r"),
            "{e}"
        );
    }
    env.record(&Out {
        code: 0,
        stdout: events.to_string(),
        stderr: String::new(),
    });
    env.assert_no_password_printed();
}

#[test]
fn an_event_that_cannot_be_written_is_a_warning_and_the_rotation_still_succeeds() {
    let env = Env::demo();
    env.sb
        .faults()
        .fail_next(Some("POST"), "/api/v1/namespaces/demo/events", 1, 403);
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait"]);
    out.expect(0);
    assert!(
        out.stderr
            .contains("Warning: the audit Event for this rotate could not be recorded"),
        "{}",
        out.stderr
    );
    assert_eq!(env.sqlmi_generation(), 1);
}

// ----- no password anywhere --------------------------------------------------------------

#[test]
fn no_verb_in_any_format_prints_a_password_without_reveal() {
    let env = Env::demo();
    for t in ["pg/pg-demo", "ms/mssql-demo", "sqlmi/sqlmi-demo"] {
        env.rotate(&["auth", t, "--wait"]).expect(0);
    }
    env.rotate(&["rollback", "pg/pg-demo", "--wait"]).expect(0);
    let mut printed = String::new();
    for f in ["table", "wide", "json", "yaml", "name"] {
        for t in ["pg/pg-demo", "ms/mssql-demo", "sqlmi/sqlmi-demo"] {
            for verb in ["prev", "status", "history"] {
                let out = env.rotate(&[verb, t, "-o", f]);
                out.expect(0);
                printed += &out.stdout;
                printed += &out.stderr;
            }
        }
        for scope in [
            &["list"][..],
            &["list", "-A"],
            &["list", "-A", "--older-than", "1s"],
        ] {
            let mut args = scope.to_vec();
            args.extend(["-o", f]);
            let out = env.rotate(&args);
            printed += &out.stdout;
            printed += &out.stderr;
        }
    }
    for p in demo_passwords() {
        assert!(!printed.contains(p), "a fixture password was printed");
    }
    assert!(printed.contains("********"), "passwords show masked");
    env.assert_no_password_printed();
}
