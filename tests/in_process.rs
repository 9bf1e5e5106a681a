//! The plugin run in process through `kubectl_rotate::run_to_exit_code`, with in-memory
//! stdout, stderr and stdin, against the sandbox: the same results as the binary, and what
//! only in-memory streams can drive cheaply (a terminal's answers, a piped password).

mod cli_support;

use cli_support::{Env, AUTH_PG_STDIN};

#[test]
fn read_verbs_print_in_process_exactly_what_the_binary_prints() {
    let env = Env::demo();
    for args in [
        &["prev", "pg/pg-demo", "-n", "demo"][..],
        &["prev", "sqlmi/sqlmi-demo", "-n", "demo", "-o", "json"],
        &["status", "pg/pg-demo", "-n", "demo", "-o", "yaml"],
        &["history", "sqlmi/sqlmi-demo", "-n", "demo"],
        &["list", "-A", "-o", "wide"],
        &["list", "-n", "demo", "--older-than", "1d"],
        &["status", "pg/nope", "-n", "demo"],
    ] {
        let binary = env.rotate(args);
        let inside = env.run(args, "", false);
        // NB: ages and durations may tick between the two runs; compare without digits.
        let strip = |s: &str| s.replace(|c: char| c.is_ascii_digit(), "");
        assert_eq!(inside.code, binary.code, "{args:?}\n{}", inside.stderr);
        assert_eq!(strip(&inside.stdout), strip(&binary.stdout), "{args:?}");
        assert_eq!(strip(&inside.stderr), strip(&binary.stderr), "{args:?}");
    }
    env.assert_no_password_printed();
}

#[test]
fn a_rotation_in_process_follows_every_step_and_changes_the_password() {
    let env = Env::demo();
    let before = env.db_password("pg", "pg-demo");
    let out = env.run(&["auth", "pg/pg-demo", "-n", "demo", "--wait"], "", false);
    out.expect(0);
    assert!(out.stdout.contains("Successful"), "{}", out.stdout);
    assert!(out.stderr.contains("UpdateCredential"), "{}", out.stderr);
    assert_ne!(env.db_password("pg", "pg-demo"), before);
    env.assert_no_password_printed();
}

#[test]
fn on_a_terminal_all_asks_on_stderr_and_only_a_yes_rotates() {
    let env = Env::demo();
    let out = env.run(&["auth", "--all", "-n", "demo"], "n\n", true);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Rotate 5 databases in 1 namespace? [y/N] "),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("[y/N]"),
        "the question is not a result"
    );
    assert!(out.stderr.contains("not confirmed; nothing was changed"));
    assert_eq!(env.ops_request_count(), 0, "a no changes nothing");
    assert_eq!(env.sqlmi_generation(), 0);

    let out = env.run(&["auth", "--all", "-n", "demo"], "y\n", true);
    out.expect(0);
    assert_eq!(
        env.ops_request_count(),
        4,
        "one ops request per KubeDB database"
    );
    assert_eq!(env.sqlmi_generation(), 1, "and the Arc instance rotated");
    env.assert_no_password_printed();
}

#[test]
fn off_a_terminal_all_needs_yes_and_nothing_is_asked_or_written() {
    let env = Env::demo();
    let out = env.run(&["auth", "--all", "-n", "demo"], "y\n", false);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert!(!out.stderr.contains("[y/N]"));
    assert_eq!(env.ops_request_count(), 0);
}

#[test]
fn a_piped_password_becomes_the_databases_and_a_terminal_is_refused() {
    let env = Env::demo();
    let args = AUTH_PG_STDIN;
    let out = env.run(args, "Piped0Password1\n", true);
    assert_eq!(out.code, 2, "a terminal would echo: {}", out.stderr);
    assert_eq!(
        env.ops_request_count(),
        0,
        "refused before anything is written"
    );

    let out = env.run(args, "Piped0Password1\n", false);
    out.expect(0);
    assert_eq!(env.db_password("pg", "pg-demo"), "Piped0Password1");
    env.assert_no_password_printed();
}

#[test]
fn bad_input_in_process_is_a_usage_error_and_changes_nothing() {
    let env = Env::demo();
    for args in [
        &["auth", "pg/", "-n", "demo"][..],
        &["auth", "nosuchtype/x", "-n", "demo"],
        &["rollback", "pg/pg-demo", "--wait", "--dry-run=client"],
    ] {
        let out = env.run(args, "", false);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    }
    // clap's own usage error: its message, then the usage line.
    let out = env.run(&["auth", "--bogus-flag"], "", false);
    assert_eq!(out.code, 2);
    assert!(out
        .stderr
        .starts_with("error: unexpected argument '--bogus-flag'"));
    assert_eq!(env.ops_request_count(), 0);
}

#[test]
fn a_server_dry_run_with_a_new_secret_passes_though_the_webhook_cannot_see_it() {
    let env = Env::demo();
    let before = env.db_password("pg", "pg-demo");
    let out = env.run(
        &[
            "auth",
            "pg/pg-demo",
            "-n",
            "demo",
            "--password-stdin",
            "--dry-run=server",
        ],
        "Piped0Password1\n",
        false,
    );
    out.expect(0);
    assert!(
        out.stderr.contains("could not see Secret"),
        "the webhook's refusal of the unsaved Secret is explained: {}",
        out.stderr
    );
    assert_eq!(env.ops_request_count(), 0, "a dry run saves nothing");
    assert_eq!(env.db_password("pg", "pg-demo"), before);
    env.assert_no_password_printed();
}

#[test]
fn verify_finds_an_arc_instance_where_arc_serves_it() {
    let env = Env::demo();
    // No database answers in the sandbox, so the login cannot succeed; what is checked is
    // where the Arc backend says to log in: its pod and its external Service's port.
    let out = env.run(
        &[
            "verify",
            "sqlmi/sqlmi-demo",
            "-n",
            "demo",
            "-v=2",
            "--login-timeout",
            "1s",
        ],
        "",
        false,
    );
    assert!(
        out.stderr
            .contains("verify: primary pod sqlmi-demo-0 (of the instance), port 1433"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.code, 8,
        "unreachable, not a wrong result: {}",
        out.stderr
    );
    env.assert_no_password_printed();
}
