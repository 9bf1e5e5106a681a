//! Bad input is refused with exit 2 and changes nothing: a new password equal to the
//! current one (it would lose the rollback point), NUL and other control characters, a
//! password too long for the engine, a second line on stdin, an age too large to count.
//! Run in process (the plugin's own checks; no kubectl needed).

mod cli_support;

use cli_support::Env;

/// Secrets in demo, by name.
fn secrets(env: &Env) -> String {
    env.kubectl(&["get", "secrets", "-o", "name"]).stdout
}

/// Runs `args` with `stdin` piped and checks: exit 2, one `error:` line saying `why`,
/// no ops request, no new Secret, the database's password as before.
#[track_caller]
fn refused(env: &Env, args: &[&str], stdin: &str, why: &str) {
    let (before, pw) = (secrets(env), env.db_password("ms", "mssql-demo"));
    let out = env.run(args, stdin, false);
    assert_eq!(out.code, 2, "{args:?}: {out:#?}");
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
    assert_eq!(env.ops_request_count(), 0, "nothing was created");
    assert_eq!(secrets(env), before, "no Secret was created");
    assert_eq!(env.db_password("ms", "mssql-demo"), pw);
}

#[test]
fn the_current_password_is_refused_from_stdin_and_in_a_secret() {
    let env = Env::demo();
    let current = env.db_password("ms", "mssql-demo");
    refused(
        &env,
        &["auth", "ms/mssql-demo", "-n", "demo", "--password-stdin"],
        &format!("{current}\n"),
        "is the one ms/mssql-demo uses now",
    );
    // The auth Secret itself, named as the new credential.
    refused(
        &env,
        &[
            "auth",
            "ms/mssql-demo",
            "-n",
            "demo",
            "--secret",
            "mssql-demo-auth",
        ],
        "",
        "is the one ms/mssql-demo uses now",
    );
    env.assert_no_password_printed();
}

#[test]
fn control_characters_and_overlong_passwords_are_refused_before_any_write() {
    let env = Env::demo();
    let args = ["auth", "ms/mssql-demo", "-n", "demo", "--password-stdin"];
    refused(&env, &args, "Abc\0Def123\n", "a NUL byte");
    refused(
        &env,
        &args,
        "Abc\u{1b}[31mDef123\n",
        "the control character U+001B",
    );
    refused(&env, &args, "Abc\tDef123\n", "a tab");
    let long = format!("Aa1{}", "x".repeat(126));
    refused(&env, &args, &format!("{long}\n"), "at most 128");
    // 128 characters are fine (checked without writing).
    let ok = format!("Aa1{}", "x".repeat(125));
    let out = env.run(
        &[&args[..], &["--dry-run=client"]].concat(),
        &format!("{ok}\n"),
        false,
    );
    assert_eq!(out.code, 0, "{out:#?}");
}

#[test]
fn stdin_is_one_line_and_a_second_one_is_an_error_not_dropped() {
    let env = Env::demo();
    let args = ["auth", "ms/mssql-demo", "-n", "demo", "--password-stdin"];
    refused(&env, &args, "Abc1Def23\nsecond\n", "reads one line");
    // A line ending, even Windows', is not part of the password; trailing blank lines are.
    let out = env.run(
        &[&args[..], &["--dry-run=client"]].concat(),
        "Abc1Def23\r\n\n",
        false,
    );
    assert_eq!(out.code, 0, "{out:#?}");
}

#[test]
fn a_secret_whose_password_holds_a_nul_is_refused() {
    let env = Env::demo();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, b"Abc\0Def123").unwrap();
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        "with-nul",
        "--type=kubernetes.io/basic-auth",
        "--from-literal=username=sa",
        &format!("--from-file=password={}", file.display()),
    ])
    .expect(0);
    refused(
        &env,
        &[
            "auth",
            "ms/mssql-demo",
            "-n",
            "demo",
            "--secret",
            "with-nul",
        ],
        "",
        "a NUL byte",
    );
}

#[test]
fn an_age_too_large_to_count_is_a_usage_error() {
    let env = Env::demo();
    let out = env.run(
        &["list", "-A", "--older-than", "200000000000000d"],
        "",
        false,
    );
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("invalid age"), "{}", out.stderr);
}

#[test]
fn a_timeout_under_a_second_is_refused_before_it_reaches_the_server() {
    let env = Env::demo();
    let out = env.run(
        &[
            "auth",
            "pg/pg-demo",
            "-n",
            "demo",
            "--wait",
            "--timeout",
            "1ms",
        ],
        "",
        false,
    );
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("at least 1s"), "{}", out.stderr);
    assert_eq!(env.ops_request_count(), 0);
}

#[test]
fn verify_needs_its_ca_and_a_missing_one_is_found_before_the_rotation() {
    let env = Env::demo();
    // TLS required (spec.tls), but no certificate Secret holds a CA.
    env.kubectl(&[
        "patch",
        "pg",
        "pg-demo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"tls":{"issuerRef":{"name":"ca","kind":"Issuer"}}}}"#,
    ])
    .expect(0);
    let out = env.run(
        &["auth", "pg/pg-demo", "-n", "demo", "--wait", "--verify"],
        "",
        false,
    );
    assert_eq!(out.code, 4, "{out:#?}");
    assert!(out.stderr.contains("the CA certificate"), "{}", out.stderr);
    assert_eq!(env.ops_request_count(), 0, "nothing was rotated");
}

#[test]
fn require_tls_needs_a_ca_even_without_spec_tls_and_says_where_it_looked() {
    let env = Env::demo();
    let out = env.run(
        &["verify", "pg/pg-demo", "-n", "demo", "--require-tls"],
        "",
        false,
    );
    assert_eq!(out.code, 4, "{out:#?}");
    assert!(out.stderr.contains("pg-demo-client-cert"), "{}", out.stderr);
    // And before a rotation writes anything.
    let out = env.run(
        &[
            "auth",
            "pg/pg-demo",
            "-n",
            "demo",
            "--wait",
            "--verify",
            "--require-tls",
        ],
        "",
        false,
    );
    assert_eq!(out.code, 4, "{out:#?}");
    assert_eq!(env.ops_request_count(), 0);
    // Without --verify it means nothing, and says so.
    let out = env.run(
        &["auth", "pg/pg-demo", "-n", "demo", "--require-tls"],
        "",
        false,
    );
    assert_eq!(out.code, 2, "{out:#?}");
}
