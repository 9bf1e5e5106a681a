//! `kubectl rotate auth|rollback sqlmi/...` against the sandbox's simulated Arc controller.

mod cli_support;

use cli_support::Env;

#[test]
fn rotating_sqlmi_with_wait_exits_zero_and_the_generation_reads_one() {
    let env = Env::demo();
    assert_eq!(env.sqlmi_generation(), 0);
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "-n", "demo", "--wait"]);
    out.expect(0);
    assert_eq!(env.sqlmi_generation(), 1);
    assert!(
        out.stdout.starts_with("NAMESPACE "),
        "a table on stdout:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("generation 0->1") && out.stdout.contains("Ready"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("sqlmi/sqlmi-demo: Updating"),
        "live progress on stderr:\n{}",
        out.stderr
    );
    let mi = env.get("sqlmi", "sqlmi-demo");
    assert_eq!(mi["status"]["state"], "Ready");
    assert_eq!(
        mi["metadata"]["annotations"]["rotate.kubectl.dev/last-action"],
        "rotate"
    );
    env.assert_no_password_printed();
}

#[test]
fn rollback_after_a_rotation_returns_the_generation_to_zero_and_a_second_rollback_is_refused() {
    let env = Env::demo();
    env.rotate(&["auth", "sqlmi/sqlmi-demo", "-n", "demo", "--wait"])
        .expect(0);
    let out = env.rotate(&["rollback", "sqlmi/sqlmi-demo", "-n", "demo", "--wait"]);
    out.expect(0);
    assert!(out.stdout.contains("generation 1->0"), "{}", out.stdout);
    assert_eq!(env.sqlmi_generation(), 0);

    let again = env.rotate(&["rollback", "sqlmi/sqlmi-demo", "-n", "demo", "--wait"]);
    assert_ne!(again.code, 0);
    assert_eq!(again.code, 6, "refused: {}", again.stderr);
    assert!(
        again.stderr.contains("already rolled back") && again.stderr.contains("only one step back"),
        "{}",
        again.stderr
    );
    assert_eq!(
        env.sqlmi_generation(),
        0,
        "a refused rollback changes nothing"
    );
    env.assert_no_password_printed();
}

#[test]
fn a_rollback_with_nothing_to_roll_back_to_is_refused() {
    let env = Env::demo();
    let out = env.rotate(&["rollback", "sqlmi/sqlmi-demo", "--wait"]);
    out.expect(6);
    assert!(
        out.stderr.contains("no previous credentials generation"),
        "{}",
        out.stderr
    );
    assert_eq!(env.sqlmi_generation(), 0);
}

#[test]
fn ten_concurrent_rotations_raise_the_generation_by_exactly_the_number_that_reported_success() {
    let env = Env::demo();
    let outs = env.concurrently(10, &["auth", "sqlmi/sqlmi-demo", "-n", "demo"], None);
    let ok = outs.iter().filter(|o| o.code == 0).count() as i64;
    assert!(ok >= 1, "at least one wins: {outs:#?}");
    assert_eq!(env.sqlmi_generation(), ok, "{outs:#?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        assert_eq!(o.code, 3, "{o:#?}");
        assert!(
            o.stderr.contains("changed by someone else")
                || o.stderr.contains("already has a rotation in progress"),
            "a conflict message: {o:#?}"
        );
    }
    env.assert_no_password_printed();
}

#[test]
fn twenty_concurrent_rotations_with_or_without_apply_always_bump_exactly_once() {
    for extra in [&[][..], &["--apply", "Always"]] {
        // A controller that takes its time, as a real one does: all twenty run while the
        // first bump is still being applied.
        let env = Env::slow(std::time::Duration::from_millis(1500));
        let mut args = vec!["auth", "sqlmi/sqlmi-demo"];
        args.extend_from_slice(extra);
        let outs = env.concurrently(20, &args, None);
        let ok = outs.iter().filter(|o| o.code == 0).count();
        assert_eq!(ok, 1, "{extra:?}: {outs:#?}");
        assert_eq!(env.sqlmi_generation(), 1, "{extra:?}: {outs:#?}");
        for o in outs.iter().filter(|o| o.code != 0) {
            assert_eq!(o.code, 3, "{o:#?}");
            assert!(
                o.stderr
                    .contains("was changed by someone else since it was read")
                    || o.stderr.contains("already has a rotation in progress"),
                "{o:#?}"
            );
        }
    }
}

#[test]
fn a_dropped_patch_answer_is_checked_and_sent_once_more_without_double_bumping() {
    let env = Env::demo();
    env.sb
        .faults()
        .fail_next(Some("PATCH"), "/apis/sql.arcdata.microsoft.com/", 1, 503);
    env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait"])
        .expect(0);
    assert_eq!(env.sqlmi_generation(), 1);
}

#[test]
fn json_output_parses_and_name_output_names_the_instance() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait", "-o", "json"]);
    let v = out.expect(0).json();
    assert_eq!(v["kind"], "Rotation");
    assert_eq!(v["generation"], serde_json::json!({"from": 0, "to": 1}));
    assert_eq!(v["phase"], "Ready");
    let out = env.rotate(&["rollback", "sqlmi/sqlmi-demo", "--wait", "-o", "name"]);
    assert_eq!(
        out.expect(0).stdout,
        "sqlmanagedinstance.sql.arcdata.microsoft.com/sqlmi-demo\n"
    );
}

#[test]
fn a_client_dry_run_prints_the_guarded_patch_and_changes_nothing() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "--dry-run=client", "-o", "json"]);
    let patch = out.expect(0).json();
    assert_eq!(patch[0]["op"], "test");
    assert_eq!(patch[0]["path"], "/metadata/resourceVersion");
    assert_eq!(patch[1]["value"]["managedCredentialsGeneration"], 1);
    assert!(out.stderr.contains("nothing was sent"), "{}", out.stderr);
    assert_eq!(env.sqlmi_generation(), 0);
}

#[test]
fn a_server_dry_run_changes_nothing() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "--dry-run=server"]);
    out.expect(0);
    assert!(out.stdout.contains("server dry run"), "{}", out.stdout);
    assert_eq!(env.sqlmi_generation(), 0);
    assert!(env.get("sqlmi", "sqlmi-demo")["metadata"]["annotations"]
        ["rotate.kubectl.dev/last-action"]
        .is_null());
}

#[test]
fn a_failed_rotation_exits_five_with_the_reason_and_rollback_recovers_from_the_error_state() {
    let env = Env::demo();
    env.sb
        .faults()
        .fail_ops_request("demo", "sqlmi-demo", "agent certificate generation failed");
    let out = env.rotate(&["auth", "sqlmi/sqlmi-demo", "--wait", "--timeout", "30s"]);
    out.expect(5);
    assert!(
        out.stderr.contains("agent certificate generation failed"),
        "{}",
        out.stderr
    );
    assert_eq!(env.get("sqlmi", "sqlmi-demo")["status"]["state"], "Error");
    env.rotate(&["rollback", "sqlmi/sqlmi-demo", "--wait", "--timeout", "30s"])
        .expect(0);
    assert_eq!(env.sqlmi_generation(), 0);
    assert_eq!(env.get("sqlmi", "sqlmi-demo")["status"]["state"], "Ready");
}

#[test]
fn rotating_an_instance_that_does_not_exist_exits_four() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "sqlmi/nope"]);
    out.expect(4);
    assert!(
        out.stderr
            .contains("sqlmanagedinstance \"nope\" in namespace \"demo\" not found"),
        "{}",
        out.stderr
    );
}
