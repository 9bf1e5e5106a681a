//! krew/package.sh, run on a fake binary in a temp dir.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::validator::{all_rules, expected_version, krew_rules, parse, read_manifest, PLATFORMS};
use crate::{committed_manifest_path, repo_root};

/// Runs krew/package.sh with `args`.
fn package(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo_root().join("krew").join("package.sh"))
        .args(args)
        .output()
        .expect("bash runs")
}

fn sha256_of(path: &Path) -> String {
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

/// The manifest as text with template comments dropped and sha256 values masked.
fn without_checksums(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.split_once("sha256: ") {
            Some((indent, _)) => format!("{indent}sha256: <sha256>"),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn package_script_puts_binary_and_license_at_archive_root_and_renders_their_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("fake-build-output");
    let fake_bytes = b"#!/bin/sh\necho kubectl-rotate fake\n";
    std::fs::write(&fake, fake_bytes).unwrap();
    let out = tmp.path().join("dist");
    let out_arg = out.to_str().unwrap();
    let version = expected_version();

    for (os, arch) in PLATFORMS {
        let run = package(&[
            "--os",
            os,
            "--arch",
            arch,
            "--out",
            out_arg,
            fake.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "package.sh {os}/{arch} failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }

    let manifest_path = out.join("rotate.yaml");
    let manifest_text = std::fs::read_to_string(&manifest_path).unwrap();
    let manifest = parse(&manifest_text);
    let errs = all_rules("rotate", &manifest);
    assert!(
        errs.is_empty(),
        "rendered manifest:\n  {}",
        errs.join("\n  ")
    );

    let license = std::fs::read(repo_root().join("LICENSE")).unwrap();
    for (os, arch) in PLATFORMS {
        let name = format!("kubectl-rotate_{version}_{os}_{arch}.tar.gz");
        let archive = out.join(&name);

        let list = Command::new("tar")
            .arg("-tzf")
            .arg(&archive)
            .output()
            .unwrap();
        assert!(list.status.success(), "{list:?}");
        let mut entries: Vec<String> = String::from_utf8(list.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        entries.sort();
        assert_eq!(entries, ["LICENSE", "kubectl-rotate"], "{name}");

        let unpacked = tmp.path().join(format!("unpacked-{os}-{arch}"));
        std::fs::create_dir(&unpacked).unwrap();
        let untar = Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked)
            .output()
            .unwrap();
        assert!(untar.status.success(), "{untar:?}");
        let bin = unpacked.join("kubectl-rotate");
        assert_eq!(std::fs::read(&bin).unwrap(), fake_bytes, "{name}: binary");
        let mode = std::fs::metadata(&bin).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{name}: binary is not executable");
        assert_eq!(
            std::fs::read(unpacked.join("LICENSE")).unwrap(),
            license,
            "{name}: LICENSE"
        );

        let sha = sha256_of(&archive);
        let platform = manifest
            .spec
            .platforms
            .iter()
            .find(|pl| pl.uri.ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("no platform in the rendered manifest for {name}"));
        assert_eq!(platform.sha256, sha, "{name}: manifest sha256");
        let sidecar = std::fs::read_to_string(out.join(format!("{name}.sha256"))).unwrap();
        assert_eq!(sidecar, format!("{sha}  {name}\n"), "{name}: .sha256 file");
    }

    // The committed manifest is this same template rendered; only checksums may differ.
    let committed = std::fs::read_to_string(committed_manifest_path()).unwrap();
    assert_eq!(
        without_checksums(&committed),
        without_checksums(&manifest_text),
        "plugin-manifest/rotate.yaml has drifted from krew/rotate.yaml.tmpl"
    );
}

#[test]
fn package_script_leaves_out_unbuilt_platforms_and_require_all_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("kubectl-rotate");
    std::fs::write(&fake, b"fake").unwrap();
    let out = tmp.path().join("dist");
    let out_arg = out.to_str().unwrap();

    let run = package(&[
        "--os",
        "linux",
        "--arch",
        "amd64",
        "--out",
        out_arg,
        fake.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{run:?}");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("warning: no archive"),
        "{run:?}"
    );
    let manifest = read_manifest(&out.join("rotate.yaml"));
    let errs = krew_rules("rotate", &manifest);
    assert!(errs.is_empty(), "{errs:#?}");
    assert_eq!(manifest.spec.platforms.len(), 1);

    let strict = package(&["--render-only", "--require-all", "--out", out_arg]);
    assert!(!strict.status.success(), "{strict:?}");
    assert!(
        String::from_utf8_lossy(&strict.stderr).contains("linux/arm64 darwin/amd64 darwin/arm64"),
        "{strict:?}"
    );
}
