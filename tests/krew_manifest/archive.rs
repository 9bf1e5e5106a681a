//! Release archives as krew reads them: their checksum, their entries, their files.
//! `.tar.gz` through tar, `.zip` through Python's zipfile (python3 is on every machine the
//! tests run on; scripts/ensure-kubectl.sh needs it too).

use std::path::Path;
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The sha256 of `path`, lower-case hex, as `sha256sum` (or macOS's `shasum`) prints it.
pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .or_else(|_| {
            Command::new("shasum")
                .args(["-a", "256"])
                .arg(path)
                .output()
        })
        .expect("sha256sum or shasum runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn is_zip(archive: &Path) -> bool {
    archive.extension().is_some_and(|e| e == "zip")
}

/// The names of the entries of `archive`, sorted.
pub fn entries(archive: &Path) -> Vec<String> {
    let out = if is_zip(archive) {
        run(Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
            ])
            .arg(archive))
    } else {
        run(Command::new("tar").arg("-tzf").arg(archive))
    };
    let mut names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Unpacks `archive` into the existing directory `into`.
pub fn extract(archive: &Path, into: &Path) {
    if is_zip(archive) {
        run(Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(archive)
            .arg(into));
    } else {
        run(Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(into));
    }
}
