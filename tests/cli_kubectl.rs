//! The plugin as kubectl runs it: discovered on PATH, invoked as `kubectl rotate ...`.

mod cli_support;

use std::path::PathBuf;
use std::process::Command;

use cli_support::{kubectl_path, Env, BIN};

/// A PATH whose first entry holds only `kubectl-rotate` (cargo's target dir also holds a
/// `kubectl-rotate.d` directory that `kubectl plugin list` would warn about).
fn plugin_path() -> (tempfile::TempDir, std::ffi::OsString) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("kubectl-rotate");
    std::fs::copy(BIN, &bin).unwrap();
    let mut paths: Vec<PathBuf> = vec![dir.path().to_path_buf()];
    if let Some(parent) = kubectl_path().parent() {
        paths.push(parent.to_path_buf());
    }
    paths.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    let path = std::env::join_paths(paths).unwrap();
    (dir, path)
}

fn kubectl(path: &std::ffi::OsStr, args: &[&str]) -> cli_support::Out {
    let o = Command::new(kubectl_path())
        .args(args)
        .env("PATH", path)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl");
    cli_support::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn kubectl_plugin_list_shows_kubectl_rotate() {
    let (dir, path) = plugin_path();
    let out = kubectl(&path, &["plugin", "list"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains(&dir.path().join("kubectl-rotate").display().to_string()),
        "{}",
        out.stdout
    );
}

#[test]
fn kubectl_rotate_auth_and_rollback_work_through_kubectl() {
    let env = Env::demo();
    let (_dir, path) = plugin_path();
    let kc = env.kubeconfig().to_str().unwrap().to_string();
    let out = kubectl(
        &path,
        &[
            "rotate",
            "auth",
            "sqlmi/sqlmi-demo",
            "-n",
            "demo",
            "--kubeconfig",
            &kc,
            "--wait",
        ],
    );
    env.record(&out);
    out.expect(0);
    assert_eq!(env.sqlmi_generation(), 1);
    let out = kubectl(
        &path,
        &[
            "rotate",
            "rollback",
            "sqlmi/sqlmi-demo",
            "-n",
            "demo",
            "--kubeconfig",
            &kc,
            "--wait",
        ],
    );
    env.record(&out);
    out.expect(0);
    assert_eq!(env.sqlmi_generation(), 0);
    let out = kubectl(
        &path,
        &[
            "rotate",
            "auth",
            "pg/pg-demo",
            "-n",
            "demo",
            "--kubeconfig",
            &kc,
            "--wait",
            "-o",
            "json",
        ],
    );
    env.record(&out);
    assert_eq!(out.expect(0).json()["phase"], "Successful");
    env.assert_no_password_printed();
}

#[test]
fn kubectl_passes_kubeconfig_from_the_environment_to_the_plugin() {
    let env = Env::demo();
    let (_dir, path) = plugin_path();
    let o = Command::new(kubectl_path())
        .args(["rotate", "auth", "sqlmi/sqlmi-demo", "--dry-run=server"])
        .env("PATH", &path)
        .env("KUBECONFIG", env.kubeconfig())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn help_through_kubectl_reads_kubectl_rotate() {
    let (_dir, path) = plugin_path();
    let out = kubectl(&path, &["rotate", "--help"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("Usage: kubectl rotate [OPTIONS] <COMMAND>"),
        "{}",
        out.stdout
    );
    let out = kubectl(&path, &["rotate", "auth"]);
    out.expect(2);
    assert!(
        out.stderr.contains("Usage: kubectl rotate auth"),
        "{}",
        out.stderr
    );
}

#[test]
fn kubectl_completes_verbs_flags_types_and_the_clusters_names_through_the_helper() {
    let env = Env::demo();
    let (dir, path) = plugin_path();
    // The helper, as `kubectl rotate completion kubectl` prints it, next to the plugin.
    let helper = kubectl(&path, &["rotate", "completion", "kubectl"]);
    helper.expect(0);
    let file = dir.path().join("kubectl_complete-rotate");
    std::fs::write(&file, &helper.stdout).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    let complete = |args: &[&str]| {
        let o = Command::new(kubectl_path())
            .arg("__complete")
            .arg("rotate")
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", env.kubeconfig())
            .env("KUBECACHEDIR", env.cache_dir())
            .output()
            .expect("kubectl __complete");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let verbs = complete(&["au"]);
    assert!(verbs.lines().any(|l| l.starts_with("auth")), "{verbs}");
    assert!(
        verbs.lines().last().is_some_and(|l| l.starts_with(':')),
        "{verbs}"
    );
    let names = complete(&["auth", "ms/"]);
    assert!(
        names.lines().any(|l| l == "ms/mssql-demo"),
        "the sandbox's MSSQLServer: {names}"
    );
    let types = complete(&["status", "p"]);
    assert!(types.lines().any(|l| l == "pg/"), "{types}");
    let flags = complete(&["auth", "--dry"]);
    assert!(flags.lines().any(|l| l.starts_with("--dry-run")), "{flags}");
}
