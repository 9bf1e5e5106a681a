//! The release archives scripts/release.sh builds, checked against the manifest it
//! rendered from them: each archive holds exactly what the manifest's `bin` and `files`
//! name, its sha256 is the manifest's, its binary is for its platform (and static on
//! linux), and the linux/amd64 binary runs here and says it is the musl build.
//!
//! They need real archives, which take minutes to build, so they are `#[ignore]`d; run
//!
//!   scripts/release.sh [--only linux/amd64 --profile release-check --out DIR]
//!   ROTATE_RELEASE_DIR=DIR ROTATE_RELEASE_PLATFORMS=linux/amd64 \
//!     cargo test --test release -- --ignored
//!
//! (.ci/run does, for linux/amd64). ROTATE_RELEASE_DIR defaults to target/krew (the
//! release command's default), ROTATE_RELEASE_PLATFORMS (comma-separated os/arch) to all
//! five: a platform expected and missing fails, it is never skipped.

use std::path::PathBuf;
use std::process::Command;

#[path = "../krew_manifest/archive.rs"]
mod archive;
mod binary;
#[allow(dead_code)] // shared with tests/krew_manifest, which uses all of it
#[path = "../krew_manifest/validator.rs"]
mod validator;

use archive::{entries, extract, sha256_of};
use validator::{
    archive_name, bin_name, expected_version, read_manifest, rules_for_platforms, Platform,
    PLATFORMS,
};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release command's output directory under test.
fn release_dir() -> PathBuf {
    match std::env::var_os("ROTATE_RELEASE_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target").join("krew"),
    }
}

/// The platforms whose archives must be in the release directory.
fn expected_platforms() -> Vec<(&'static str, &'static str)> {
    let Ok(list) = std::env::var("ROTATE_RELEASE_PLATFORMS") else {
        return PLATFORMS.to_vec();
    };
    if list == "all" {
        return PLATFORMS.to_vec();
    }
    let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
    for w in &wanted {
        assert!(
            PLATFORMS.iter().any(|(o, a)| format!("{o}/{a}") == *w),
            "ROTATE_RELEASE_PLATFORMS names {w:?}, not one of {PLATFORMS:?}"
        );
    }
    PLATFORMS
        .into_iter()
        .filter(|(o, a)| wanted.contains(&format!("{o}/{a}").as_str()))
        .collect()
}

/// One expected platform's archive, its manifest entry, and its unpacked files.
struct Unpacked {
    os: &'static str,
    arch: &'static str,
    name: String,
    platform: Platform,
    dir: tempfile::TempDir,
}

/// Every expected archive and its manifest entry, after the checks that need no more
/// than the manifest and the archive's bytes; panics at the first expected archive that
/// is missing.
fn unpack_expected() -> Vec<Unpacked> {
    let dir = release_dir();
    let manifest_path = dir.join("rotate.yaml");
    assert!(
        manifest_path.is_file(),
        "no {}: run scripts/release.sh first (see tests/release/main.rs)",
        manifest_path.display()
    );
    let manifest = read_manifest(&manifest_path);
    let expected = expected_platforms();
    let errs = rules_for_platforms("rotate", &manifest, &expected);
    assert!(
        errs.is_empty(),
        "{}:\n  {}",
        manifest_path.display(),
        errs.join("\n  ")
    );

    let version = expected_version();
    let mut all = Vec::new();
    for (os, arch) in expected {
        let name = archive_name(&version, os, arch);
        let path = dir.join(&name);
        assert!(
            path.is_file(),
            "{os}/{arch} is expected, and {} is missing",
            path.display()
        );
        let platform = manifest
            .spec
            .platforms
            .iter()
            .find(|pl| pl.uri.ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("the manifest has no platform for {name}"))
            .clone();
        let sha = sha256_of(&path);
        assert_eq!(platform.sha256, sha, "{name}: the manifest's sha256");
        let sidecar = std::fs::read_to_string(dir.join(format!("{name}.sha256")))
            .unwrap_or_else(|e| panic!("{name}.sha256: {e}"));
        assert_eq!(sidecar, format!("{sha}  {name}\n"), "{name}.sha256");

        let unpacked = tempfile::tempdir().unwrap();
        extract(&path, unpacked.path());
        all.push(Unpacked {
            os,
            arch,
            name,
            platform,
            dir: unpacked,
        });
    }
    all
}

#[test]
#[ignore = "needs the release archives: scripts/release.sh, then --ignored"]
fn each_archive_holds_what_the_manifest_names_and_matches_its_sha256() {
    let license = std::fs::read(repo_root().join("LICENSE")).unwrap();
    for u in unpack_expected() {
        let files = u.platform.files.as_deref().unwrap_or_default();
        // NB: our `from`s are plain names, not globs: the archive must hold exactly them,
        // and krew installs exactly them.
        let mut named: Vec<String> = files.iter().map(|f| f.from.clone()).collect();
        named.sort();
        named.dedup();
        let archive = release_dir().join(&u.name);
        assert_eq!(entries(&archive), named, "{}: entries vs files", u.name);
        assert_eq!(u.platform.bin, bin_name(u.os), "{}: bin", u.name);
        assert!(
            named.contains(&u.platform.bin),
            "{}: bin {} is not among the files",
            u.name,
            u.platform.bin
        );
        assert_eq!(
            std::fs::read(u.dir.path().join("LICENSE")).unwrap(),
            license,
            "{}: LICENSE",
            u.name
        );
    }
}

#[test]
#[ignore = "needs the release archives: scripts/release.sh, then --ignored"]
fn each_binary_is_built_for_its_platform_and_linux_ones_are_static() {
    for u in unpack_expected() {
        let bytes = std::fs::read(u.dir.path().join(bin_name(u.os))).unwrap();
        assert_eq!(
            binary::platform_of(&bytes),
            Ok(format!("{}/{}", u.os, u.arch)),
            "{}",
            u.name
        );
        if u.os == "linux" {
            let needs = binary::dynamic_needs(&bytes).unwrap();
            assert!(
                needs.is_empty(),
                "{}: not static, it needs {needs:?}",
                u.name
            );
        }
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
#[ignore = "needs the release archives: scripts/release.sh, then --ignored"]
fn linux_amd64_binary_runs_here_with_no_environment_and_is_the_musl_build() {
    let u = unpack_expected()
        .into_iter()
        .find(|u| (u.os, u.arch) == ("linux", "amd64"))
        .expect("ROTATE_RELEASE_PLATFORMS must include linux/amd64 for this test");
    let out = Command::new(u.dir.path().join("kubectl-rotate"))
        .args(["version", "-o", "json"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["target"], "x86_64-unknown-linux-musl", "{doc}");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"), "{doc}");
}
