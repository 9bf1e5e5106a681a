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
    // NB: git says where HEAD and the branch's ref live: in a worktree `.git` is a file and
    // they are under the main repository's .git, which a fixed `.git/HEAD` would miss
    // (the commit would stay that of the build before).
    let mut files = vec!["HEAD".to_string(), "packed-refs".to_string()];
    files.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for file in files {
        if let Some(path) = git(&["rev-parse", "--git-path", &file]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
