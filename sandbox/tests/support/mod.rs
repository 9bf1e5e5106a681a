//! What the sandbox's kubectl tests share: which kubectl, and running it with a given
//! kubeconfig (kubectl >= 1.26 on PATH, or `$KUBECTL`; scripts/test.sh provides one).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `$KUBECTL`, else `kubectl` from PATH.
pub fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// Runs kubectl with kubeconfig `kc`, stdin closed.
pub fn kubectl(kc: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_bin())
        .args(args)
        .env("KUBECONFIG", kc)
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .stdin(Stdio::null())
        .output()
        .expect("kubectl >= 1.26 must be on PATH (scripts/test.sh installs one)")
}

/// kubectl's exit code, stdout and stderr.
pub fn run(kc: &Path, args: &[&str]) -> (i32, String, String) {
    let o = kubectl(kc, args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// kubectl's stdout for a command that must succeed.
#[track_caller]
pub fn ok(kc: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(kc, args);
    assert_eq!(code, 0, "kubectl {} failed: {out}{err}", args.join(" "));
    out
}

/// kubectl's stderr for a command that must fail.
#[track_caller]
pub fn refused(kc: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(kc, args);
    assert_ne!(code, 0, "kubectl {} succeeded: {out}", args.join(" "));
    err
}
