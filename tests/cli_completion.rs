//! `kubectl rotate completion bash|zsh|fish|powershell` in the real shells (bash, zsh and
//! fish from Debian's packages; scripts/ensure-test-packages.sh installs them): each script
//! completes `kubectl-rotate` run by its own name, verbs, flags, TYPEs and the sandbox's
//! names. PowerShell is not packaged by Debian, so its script is only checked for form.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::{Env, BIN};

/// A dir holding `kubectl-rotate` and the script for `shell`, and the PATH to use.
fn setup(shell: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(BIN, dir.path().join("kubectl-rotate")).unwrap();
    let out = Command::new(BIN)
        .args(["completion", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = dir.path().join(format!("completion.{shell}"));
    std::fs::write(&script, &out.stdout).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (dir, script, path)
}

/// Runs `shell -c program` with the sandbox's kubeconfig and returns stdout.
fn shell(env: &Env, shell: &str, args: &[&str], program: &str, path: &str) -> String {
    let o = Command::new(shell)
        .args(args)
        .arg(program)
        .env("PATH", path)
        .env("KUBECONFIG", env.kubeconfig())
        .env("KUBECACHEDIR", env.cache_dir())
        .env("HOME", env.kubeconfig().parent().unwrap())
        .output()
        .unwrap_or_else(|e| panic!("{shell} is needed (scripts/ensure-test-packages.sh): {e}"));
    assert!(
        o.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// bash: COMP_WORDS/COMP_CWORD set as readline would, the function called, COMPREPLY
/// printed.
fn bash_complete(env: &Env, script: &Path, path: &str, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=(kubectl-rotate {}); COMP_CWORD={}; \
         _kubectl_rotate; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.join(" "),
        line.len()
    );
    lines(&shell(env, "bash", &["-c"], &program, path))
}

#[test]
fn bash_completes_verbs_flags_types_and_names() {
    let env = Env::demo();
    let (_dir, script, path) = setup("bash");
    let c = |line: &[&str]| bash_complete(&env, &script, &path, line);
    assert_eq!(c(&["au"]), vec!["auth"]);
    assert!(c(&["auth", "--pass"]).contains(&"--password-stdin".to_string()));
    assert!(c(&["auth", "p"]).contains(&"pg/".to_string()));
    assert_eq!(c(&["auth", "ms/"]), vec!["ms/mssql-demo"]);
    assert_eq!(c(&["status", "-n", "demo", "pg/pg"]), vec!["pg/pg-demo"]);
    // Nothing offered where nothing fits (and no file names: the directive says so).
    assert_eq!(c(&["auth", "pg/zz"]), Vec::<String>::new());
}

#[test]
fn zsh_completes_verbs_flags_types_and_names() {
    let env = Env::demo();
    let (_dir, script, path) = setup("zsh");
    // NB: _describe and _files are compsys functions that need a live completion widget;
    // stand-ins print what the script hands them, so the test sees its candidates.
    let c = |line: &[&str]| {
        let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "_describe() {{ print -l -- \"${{(@)comps%%:*}}\"; }}; _files() {{ print FILES; }}; \
             compdef() {{ :; }}; source '{}'; words=(kubectl-rotate {}); CURRENT={}; \
             _kubectl_rotate",
            script.display(),
            words.join(" "),
            line.len() + 1
        );
        lines(&shell(&env, "zsh", &["-f", "-c"], &program, &path))
    };
    assert_eq!(c(&["au"]), vec!["auth"]);
    assert!(c(&["auth", "p"]).contains(&"pg/".to_string()));
    assert_eq!(c(&["auth", "ms/"]), vec!["ms/mssql-demo"]);
    assert!(c(&["auth", "--pass"]).contains(&"--password-stdin".to_string()));
}

#[test]
fn fish_completes_verbs_flags_types_and_names() {
    let env = Env::demo();
    let (_dir, script, path) = setup("fish");
    let c = |line: &str| {
        let program = format!("source '{}'; complete -C '{line}'", script.display());
        let out = shell(&env, "fish", &["--no-config", "-c"], &program, &path);
        out.lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert!(c("kubectl-rotate au").contains(&"auth".to_string()));
    assert!(c("kubectl-rotate auth p").contains(&"pg/".to_string()));
    assert_eq!(c("kubectl-rotate auth ms/"), vec!["ms/mssql-demo"]);
}

#[test]
fn the_powershell_script_registers_a_native_completer_that_asks_complete() {
    let out = Command::new(BIN)
        .args(["completion", "powershell"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("Register-ArgumentCompleter -Native -CommandName 'kubectl-rotate'"));
    assert!(s.contains("__complete"));
    // An unknown shell is a usage error that lists the shells.
    let bad = Command::new(BIN)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    for shell in ["kubectl", "bash", "zsh", "fish", "powershell"] {
        assert!(err.contains(shell), "{err}");
    }
}
