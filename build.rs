//! Build facts for `kubectl rotate version`: the git commit, its date (the build date of a
//! reproducible build: the same commit gives the same binary), and the target triple.
//! Without git (a source archive) they are "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = git(&["log", "-1", "--format=%cI"]).unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=ROTATE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=ROTATE_BUILD_DATE={date}");
    println!("cargo:rustc-env=ROTATE_TARGET={target}");
    // Run again when HEAD moves: HEAD itself (a checkout), the branch it names (a commit),
    // packed-refs. Their paths come from git: in a worktree `.git` is a file, and HEAD and
    // the refs live elsewhere, so fixed `.git/...` paths would watch nothing and a release
    // built there would report a stale commit.
    let mut refs = vec!["HEAD".to_string(), "packed-refs".to_string()];
    refs.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for r in refs {
        if let Some(path) = git(&["rev-parse", "--git-path", &r]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
