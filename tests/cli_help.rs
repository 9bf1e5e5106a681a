//! Help and usage text, snapshot-tested (STYLE rule 7): it must read `kubectl rotate ...`.
//!
//! Snapshots live in tests/snapshots/. To accept a change, run with `UPDATE_SNAPSHOTS=1`;
//! a missing snapshot is written on first run, except on CI where it fails.

mod cli_support;

use std::path::PathBuf;
use std::process::Command;

fn run(args: &[&str]) -> cli_support::Out {
    let o = Command::new(cli_support::BIN)
        .args(args)
        // NB: fixed width, so the snapshots do not depend on the terminal.
        .env("COLUMNS", "100")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run");
    cli_support::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[track_caller]
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(expected) if !update => {
            assert!(
                expected == actual,
                "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}"
            );
        }
        Err(_) if std::env::var_os("CI").is_some() && !update => {
            panic!("snapshot {} is missing", path.display())
        }
        _ => {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
        }
    }
}

#[test]
fn top_level_help_reads_kubectl_rotate_and_lists_exit_codes() {
    let out = run(&["--help"]);
    out.expect(0);
    assert!(out.stdout.contains("Usage: kubectl rotate"));
    assert!(out.stdout.contains("124  timed out"));
    snapshot("help", &out.stdout);
}

#[test]
fn auth_help_is_stable() {
    let out = run(&["auth", "--help"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("Usage: kubectl rotate auth [OPTIONS] [TYPE/NAME]..."),
        "{}",
        out.stdout
    );
    snapshot("help-auth", &out.stdout);
}

#[test]
fn rollback_help_is_stable() {
    let out = run(&["rollback", "--help"]);
    out.expect(0);
    snapshot("help-rollback", &out.stdout);
}

#[test]
fn retry_help_is_stable() {
    let out = run(&["retry", "--help"]);
    out.expect(0);
    assert!(
        out.stdout.contains("Usage: kubectl rotate retry"),
        "{}",
        out.stdout
    );
    snapshot("help-retry", &out.stdout);
}

#[test]
fn the_inspection_verbs_help_is_stable() {
    for verb in ["prev", "status", "history", "list"] {
        let out = run(&[verb, "--help"]);
        out.expect(0);
        assert!(
            out.stdout
                .contains(&format!("Usage: kubectl rotate {verb} [OPTIONS]")),
            "{}",
            out.stdout
        );
        snapshot(&format!("help-{verb}"), &out.stdout);
    }
}

#[test]
fn verify_help_is_stable_and_lists_the_login_options() {
    let out = run(&["verify", "--help"]);
    out.expect(0);
    for want in [
        "Usage: kubectl rotate verify [OPTIONS] <TYPE/NAME> [NAME]",
        "Login options:",
        "--address <HOST:PORT>",
        "--insecure-skip-db-tls-verify",
        "--login-timeout <DURATION>",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    snapshot("help-verify", &out.stdout);
}

#[test]
fn short_help_is_stable() {
    let out = run(&["-h"]);
    out.expect(0);
    snapshot("help-short", &out.stdout);
}

#[test]
fn a_missing_target_prints_usage_on_stderr_and_exits_two() {
    let out = run(&["auth"]);
    out.expect(2);
    assert_eq!(out.stdout, "");
    snapshot("usage-auth-missing-target", &out.stderr);
}

#[test]
fn an_unknown_flag_value_prints_usage_and_exits_two() {
    let out = run(&["auth", "pg/x", "-o", "xml"]);
    out.expect(2);
    snapshot("usage-bad-output", &out.stderr);
}

#[test]
fn version_reads_kubectl_rotate() {
    let out = run(&["--version"]);
    out.expect(0);
    assert_eq!(
        out.stdout,
        format!("kubectl rotate {}\n", env!("CARGO_PKG_VERSION"))
    );
}
