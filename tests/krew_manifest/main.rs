//! The krew Plugin manifest (plugin-manifest/rotate.yaml), krew-release-bot's template of
//! it (.krew.yaml) and the packaging script that renders both (krew/package.sh).
//!
//! The validator the tests run, krew's `ValidatePlugin` ported plus this project's own
//! rules, is in validator.rs; the packaging script's tests are in package_script.rs; how
//! the bot renders .krew.yaml is in krew_bot.rs. The real release archives are checked by
//! tests/release/ (scripts/release.sh builds them).
//!
//! No cluster, no network, no release build: the packaging test feeds the script a tiny
//! fake binary in a temp dir. It needs bash, tar and sha256sum (or shasum), so it is unix
//! only.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[cfg(unix)]
mod archive;
mod image;
mod krew_bot;
#[cfg(unix)]
mod package_script;
mod validator;

use validator::{
    all_rules, check_semver, name_from_file, parse, read_manifest, Platform, Plugin,
    SHORT_DESCRIPTION_MAX,
};

/// The sha256 the committed manifest carries until release archives exist
/// (`krew/package.sh --placeholders`).
const PLACEHOLDER_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_manifest_path() -> PathBuf {
    repo_root().join("plugin-manifest").join("rotate.yaml")
}

#[test]
fn committed_manifest_passes_krew_and_project_rules() {
    let path = committed_manifest_path();
    let plugin = read_manifest(&path);
    let errs = all_rules(&name_from_file(&path), &plugin);
    assert!(
        errs.is_empty(),
        "{}:\n  {}",
        path.display(),
        errs.join("\n  ")
    );
}

#[test]
fn committed_manifest_says_what_the_plugin_does_and_needs() {
    let plugin = read_manifest(&committed_manifest_path());
    assert_eq!(plugin.metadata.name, "rotate");
    assert_eq!(
        plugin.spec.short_description,
        "Rotate KubeDB and Arc SQL MI database credentials"
    );
    // What it does today, in prose: krew's guide asks for no list of verbs, and nothing
    // that ships may be called planned.
    let description = &plugin.spec.description;
    for needle in [
        "Azure Arc SQL Managed",
        "KubeDB",
        "rolls back",
        "log in to the database",
        "history",
    ] {
        assert!(
            description.contains(needle),
            "description does not mention {needle:?}"
        );
    }
    for absent in ["kubectl rotate ", "planned", "Verbs:"] {
        assert!(
            !description.contains(absent),
            "description holds {absent:?}: {description}"
        );
    }
    // krew prints caveats after `kubectl krew install rotate`.
    let caveats = plugin.spec.caveats.as_deref().unwrap_or_default();
    for needle in ["KubeDB ops-manager", "Azure Arc data controller"] {
        assert!(
            caveats.contains(needle),
            "caveats do not mention {needle:?}"
        );
    }
}

/// The committed manifest is the template rendered with placeholder checksums, byte for
/// byte: a manifest can only carry the checksums of published archives, and nothing is
/// published before a release. The release command renders the real one from the
/// archives (tests/release/ checks it). A committed manifest with checksums that look
/// real but match nothing fails here.
#[cfg(unix)]
#[test]
fn committed_manifest_is_the_template_rendered_with_placeholder_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("rotate.yaml");
    let run = std::process::Command::new("bash")
        .arg(repo_root().join("krew").join("package.sh"))
        .args(["--placeholders", "--manifest", fresh.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let fresh = std::fs::read_to_string(&fresh).unwrap();
    assert_eq!(
        std::fs::read_to_string(committed_manifest_path()).unwrap(),
        fresh,
        "plugin-manifest/rotate.yaml is not `krew/package.sh --placeholders`: run it"
    );
    let plugin = parse(&fresh);
    for pl in &plugin.spec.platforms {
        assert_eq!(pl.sha256, PLACEHOLDER_SHA256, "{}", pl.uri);
    }
    assert!(fresh.starts_with("# NB: every sha256 below is a placeholder"));
}

/// One way to break the committed manifest, and the complaint it must draw.
struct Breakage {
    what: &'static str,
    file_name: &'static str,
    breaks: fn(&mut Plugin),
    complaint: &'static str,
}

#[test]
fn validator_rejects_each_broken_rule() {
    fn first(p: &mut Plugin) -> &mut Platform {
        &mut p.spec.platforms[0]
    }
    fn labels(p: &mut Plugin) -> &mut BTreeMap<String, String> {
        first(p)
            .selector
            .as_mut()
            .unwrap()
            .match_labels
            .as_mut()
            .unwrap()
    }
    let cases = [
        Breakage {
            what: "old apiVersion",
            file_name: "rotate",
            breaks: |p| p.api_version = "krew.googlecontainertools.github.com/v1alpha1".into(),
            complaint: "apiVersion",
        },
        Breakage {
            what: "wrong kind",
            file_name: "rotate",
            breaks: |p| p.kind = "Plugins".into(),
            complaint: "kind=",
        },
        Breakage {
            what: "name differs from the file name",
            file_name: "rotate-db",
            breaks: |_| {},
            complaint: "plugin should be named",
        },
        Breakage {
            what: "unsafe name",
            file_name: "rotate.db",
            breaks: |p| p.metadata.name = "rotate.db".into(),
            complaint: "is not allowed",
        },
        Breakage {
            what: "Windows device name",
            file_name: "con",
            breaks: |p| p.metadata.name = "con".into(),
            complaint: "is not allowed",
        },
        Breakage {
            what: "no short description",
            file_name: "rotate",
            breaks: |p| p.spec.short_description.clear(),
            complaint: "should have a short description",
        },
        Breakage {
            what: "two-line short description",
            file_name: "rotate",
            breaks: |p| p.spec.short_description.push_str("\nand more"),
            complaint: "line breaks",
        },
        Breakage {
            what: "long short description",
            file_name: "rotate",
            breaks: |p| p.spec.short_description = "x".repeat(SHORT_DESCRIPTION_MAX + 1),
            complaint: "more than",
        },
        Breakage {
            what: "no description",
            file_name: "rotate",
            breaks: |p| p.spec.description = " \n".into(),
            complaint: "should have a description",
        },
        Breakage {
            what: "http homepage",
            file_name: "rotate",
            breaks: |p| p.spec.homepage = "http://example.com".into(),
            complaint: "homepage",
        },
        Breakage {
            what: "version without v",
            file_name: "rotate",
            breaks: |p| p.spec.version = env!("CARGO_PKG_VERSION").into(),
            complaint: "not starting with 'v'",
        },
        Breakage {
            what: "two-part version",
            file_name: "rotate",
            breaks: |p| p.spec.version = "v0.1".into(),
            complaint: "failed to parse plugin version",
        },
        Breakage {
            what: "leading zero in version",
            file_name: "rotate",
            breaks: |p| p.spec.version = "v0.01.0".into(),
            complaint: "failed to parse plugin version",
        },
        Breakage {
            what: "version not Cargo.toml's",
            file_name: "rotate",
            breaks: |p| p.spec.version = "v99.0.0".into(),
            complaint: "Cargo.toml says",
        },
        Breakage {
            what: "no platforms",
            file_name: "rotate",
            breaks: |p| p.spec.platforms.clear(),
            complaint: "should have a platform specified",
        },
        Breakage {
            what: "no selector",
            file_name: "rotate",
            breaks: |p| first(p).selector = None,
            complaint: "nil selector",
        },
        Breakage {
            what: "empty matchLabels",
            file_name: "rotate",
            breaks: |p| labels(p).clear(),
            complaint: "`matchLabels` specified but empty",
        },
        Breakage {
            what: "selector on another label",
            file_name: "rotate",
            breaks: |p| {
                labels(p).insert("distro".into(), "debian".into());
            },
            complaint: "selector key \"distro\" not supported",
        },
        Breakage {
            what: "unknown os",
            file_name: "rotate",
            breaks: |p| {
                labels(p).insert("os".into(), "macos".into());
            },
            complaint: "unknown os",
        },
        Breakage {
            what: "unknown arch",
            file_name: "rotate",
            breaks: |p| {
                labels(p).insert("arch".into(), "x86_64".into());
            },
            complaint: "unknown arch",
        },
        Breakage {
            what: "platform listed twice",
            file_name: "rotate",
            breaks: |p| {
                let dup = p.spec.platforms[0].clone();
                p.spec.platforms.push(dup);
            },
            complaint: "listed twice",
        },
        Breakage {
            what: "a shipped platform missing",
            file_name: "rotate",
            breaks: |p| {
                p.spec.platforms.pop();
            },
            complaint: "the release ships",
        },
        Breakage {
            what: "no uri",
            file_name: "rotate",
            breaks: |p| first(p).uri.clear(),
            complaint: "`uri` has to be set",
        },
        Breakage {
            what: "http uri",
            file_name: "rotate",
            breaks: |p| first(p).uri = first(p).uri.replacen("https", "http", 1),
            complaint: "is not https",
        },
        Breakage {
            what: "uri outside the release layout",
            file_name: "rotate",
            breaks: |p| first(p).uri = first(p).uri.replace("_linux_", "-linux-"),
            complaint: "release layout says",
        },
        Breakage {
            what: "no sha256",
            file_name: "rotate",
            breaks: |p| first(p).sha256.clear(),
            complaint: "`sha256` sum has to be set",
        },
        Breakage {
            what: "upper-case sha256",
            file_name: "rotate",
            breaks: |p| first(p).sha256 = "A".repeat(64),
            complaint: "^[a-f0-9]{64}$",
        },
        Breakage {
            what: "short sha256",
            file_name: "rotate",
            breaks: |p| first(p).sha256 = "a".repeat(63),
            complaint: "^[a-f0-9]{64}$",
        },
        Breakage {
            what: "no bin",
            file_name: "rotate",
            breaks: |p| first(p).bin.clear(),
            complaint: "`bin` has to be set",
        },
        Breakage {
            what: "another bin",
            file_name: "rotate",
            breaks: |p| first(p).bin = "rotate".into(),
            complaint: "must be \"kubectl-rotate\"",
        },
        Breakage {
            what: "Windows bin without .exe",
            file_name: "rotate",
            breaks: |p| {
                labels(p).insert("os".into(), "windows".into());
            },
            complaint: "must be \"kubectl-rotate.exe\"",
        },
        Breakage {
            what: "empty files",
            file_name: "rotate",
            breaks: |p| first(p).files = Some(Vec::new()),
            complaint: "`files` has to be unspecified or non-empty",
        },
        Breakage {
            what: "files entry without from",
            file_name: "rotate",
            breaks: |p| first(p).files.as_mut().unwrap()[0].from.clear(),
            complaint: "`from` field has to be set",
        },
        Breakage {
            what: "files entry without to",
            file_name: "rotate",
            breaks: |p| first(p).files.as_mut().unwrap()[0].to.clear(),
            complaint: "`to` field has to be set",
        },
        Breakage {
            what: "files entry climbing out",
            file_name: "rotate",
            breaks: |p| first(p).files.as_mut().unwrap()[1].to = "../..".into(),
            complaint: "leaves its directory",
        },
        Breakage {
            what: "files entry to an absolute path",
            file_name: "rotate",
            breaks: |p| first(p).files.as_mut().unwrap()[1].to = "/usr/local/bin".into(),
            complaint: "leaves its directory",
        },
        Breakage {
            what: "LICENSE not installed",
            file_name: "rotate",
            breaks: |p| {
                first(p)
                    .files
                    .as_mut()
                    .unwrap()
                    .retain(|f| f.from != "LICENSE")
            },
            complaint: "LICENSE is not in files",
        },
        Breakage {
            what: "binary not installed",
            file_name: "rotate",
            breaks: |p| {
                first(p)
                    .files
                    .as_mut()
                    .unwrap()
                    .retain(|f| f.from != "kubectl-rotate")
            },
            complaint: "no files entry copies the bin",
        },
    ];

    let good = read_manifest(&committed_manifest_path());
    assert!(
        all_rules("rotate", &good).is_empty(),
        "the baseline is valid"
    );
    for case in cases {
        let mut broken = good.clone();
        (case.breaks)(&mut broken);
        let errs = all_rules(case.file_name, &broken);
        assert!(
            errs.iter().any(|e| e.contains(case.complaint)),
            "{}: expected a complaint containing {:?}, got {errs:#?}",
            case.what,
            case.complaint
        );
    }
}

#[test]
fn misspelt_manifest_key_is_an_error_not_silently_dropped() {
    let text = std::fs::read_to_string(committed_manifest_path()).unwrap();
    let misspelt = text.replacen("shortDescription:", "shortDesription:", 1);
    assert_ne!(text, misspelt);
    let err = serde_yaml::from_str::<Plugin>(&misspelt).unwrap_err();
    assert!(err.to_string().contains("shortDesription"), "{err}");
}

#[test]
fn semver_accepts_what_krew_accepts() {
    for ok in [
        "v0.1.0",
        "v1.22.333",
        "v1.0.0-rc.1",
        "v1.0.0-0",
        "v1.0.0+build.5",
    ] {
        assert_eq!(check_semver(ok), Ok(()), "{ok}");
    }
    for bad in [
        "0.1.0",
        "v0.1",
        "v1.2.3.4",
        "v01.0.0",
        "v1.0.0-",
        "v1.0.0-01",
        "v1.0.0+",
        "vx.y.z",
        "v",
    ] {
        assert!(check_semver(bad).is_err(), "{bad}");
    }
}
