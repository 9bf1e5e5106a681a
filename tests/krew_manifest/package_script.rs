//! krew/package.sh, run on a fake binary in a temp dir.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::archive::{entries, extract, sha256_of};
use crate::validator::{
    all_rules, archive_name, bin_name, expected_version, krew_rules, parse, read_manifest,
    PLATFORMS,
};
use crate::{committed_manifest_path, krew_bot, repo_root};

/// Runs krew/package.sh with `args`.
fn package(args: &[&str]) -> std::process::Output {
    package_with_env(args, &[])
}

fn package_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new("bash")
        .arg(repo_root().join("krew").join("package.sh"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("bash runs")
}

/// Packages `fake` for every platform into `out` and renders the manifest there.
fn package_all(fake: &Path, out: &Path, env: &[(&str, &str)]) {
    for (os, arch) in PLATFORMS {
        let run = package_with_env(
            &[
                "--os",
                os,
                "--arch",
                arch,
                "--out",
                out.to_str().unwrap(),
                fake.to_str().unwrap(),
            ],
            env,
        );
        assert!(
            run.status.success(),
            "package.sh {os}/{arch} failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
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
    let version = expected_version();
    package_all(&fake, &out, &[]);

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
        let name = archive_name(&version, os, arch);
        let archive = out.join(&name);
        let bin = bin_name(os);

        let mut want = vec!["LICENSE".to_owned(), bin.to_owned()];
        want.sort();
        assert_eq!(entries(&archive), want, "{name}");

        let unpacked = tmp.path().join(format!("unpacked-{os}-{arch}"));
        std::fs::create_dir(&unpacked).unwrap();
        extract(&archive, &unpacked);
        let bin_path = unpacked.join(bin);
        assert_eq!(
            std::fs::read(&bin_path).unwrap(),
            fake_bytes,
            "{name}: binary"
        );
        if os != "windows" {
            let mode = std::fs::metadata(&bin_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111, "{name}: binary is not executable");
        }
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
        assert_eq!(platform.bin, bin, "{name}: bin");
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

    // What krew-release-bot renders from the committed .krew.yaml for these archives is
    // byte for byte what package.sh rendered from them: the two paths cannot drift apart.
    let bot_template = std::fs::read_to_string(repo_root().join(".krew.yaml")).unwrap();
    let by_bot = krew_bot::render(&bot_template, &version, &|uri| {
        let file = uri.rsplit('/').next().unwrap();
        sha256_of(&out.join(file))
    });
    assert_eq!(
        by_bot, manifest_text,
        ".krew.yaml, rendered as krew-release-bot renders it, differs from package.sh's manifest"
    );
}

#[test]
fn committed_krew_bot_template_is_the_one_package_script_makes() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join(".krew.yaml");
    let run = package(&["--krew-bot-template", "--manifest", fresh.to_str().unwrap()]);
    assert!(run.status.success(), "{run:?}");
    let committed = std::fs::read_to_string(repo_root().join(".krew.yaml")).unwrap();
    assert_eq!(
        committed,
        std::fs::read_to_string(&fresh).unwrap(),
        ".krew.yaml has drifted from krew/rotate.yaml.tmpl: run krew/package.sh --krew-bot-template"
    );
    for (os, arch) in PLATFORMS {
        let name = archive_name("{{ .TagName }}", os, arch);
        assert!(
            committed.contains(&format!(
                "    {{{{ addURIAndSha \"https://github.com/kubectl-rotate/kubectl-rotate/releases/download/{{{{ .TagName }}}}/{name}\" .TagName }}}}\n"
            )),
            ".krew.yaml has no addURIAndSha for {name}"
        );
    }
    assert!(committed.contains("  version: {{ .TagName }}\n"));
    assert!(!committed.contains("sha256:"), "the bot adds every sha256");
}

#[test]
fn package_script_archives_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("kubectl-rotate");
    std::fs::write(&fake, b"fake binary").unwrap();
    let gnu_tar = Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU tar"));
    let version = expected_version();

    let mut runs = Vec::new();
    for (dir, epoch) in [
        ("a", "1700000000"),
        ("b", "1700000000"),
        ("c", "1800000000"),
    ] {
        let out = tmp.path().join(dir);
        package_all(&fake, &out, &[("SOURCE_DATE_EPOCH", epoch)]);
        runs.push(out);
    }
    for (os, arch) in PLATFORMS {
        if os != "windows" && !gnu_tar {
            continue; // bsdtar has no flags to fix order, owner and mtime
        }
        let name = archive_name(&version, os, arch);
        let [a, b, c] = [0, 1, 2].map(|i| std::fs::read(runs[i].join(&name)).unwrap());
        assert!(a == b, "{name}: two packagings of one binary differ");
        assert!(
            a != c,
            "{name}: SOURCE_DATE_EPOCH does not reach the archive"
        );
    }
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
        String::from_utf8_lossy(&strict.stderr)
            .contains("linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"),
        "{strict:?}"
    );
}
