//! The krew Plugin manifest (plugin-manifest/rotate.yaml) and the packaging script that
//! renders it (krew/package.sh).
//!
//! `krew_rules` is a port of krew's own validator (kubernetes-sigs/krew,
//! internal/index/validation/validate.go, `ValidatePlugin`), which krew-index runs on every
//! submitted manifest. `project_rules` adds what krew leaves to reviewers or to install
//! time and what this project promises: a homepage and description, https URIs in our
//! release layout, known os/arch values, the binary name, sane `files`, a LICENSE in the
//! archive, the version in step with Cargo.toml, and exactly the four platforms we ship.
//!
//! No cluster, no network, no release build: the packaging test feeds the script a tiny
//! fake binary in a temp dir. It needs bash, tar and sha256sum (or shasum), so it is unix
//! only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The platforms every release ships, in the order the manifest lists them.
const PLATFORMS: [(&str, &str); 4] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// The sha256 the committed manifest carries until release archives exist
/// (`krew/package.sh --placeholders`).
const PLACEHOLDER_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest shortDescription we accept.
// NB: `kubectl krew search` cuts shortDescription to 50 characters ("..." included), so
// anything longer would show truncated there.
const SHORT_DESCRIPTION_MAX: usize = 50;

/// krew's `index.Plugin`, the fields this project uses.
// NB: krew decodes leniently (unknown fields are ignored, see indexscanner.decodeFile);
// `deny_unknown_fields` is stricter on purpose, so a misspelt key such as
// `shortDesription` fails here instead of silently vanishing in krew.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Plugin {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
}

/// `metadata`: krew reads the name only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    #[serde(default)]
    name: String,
}

/// krew's `index.PluginSpec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    version: String,
    #[serde(default)]
    homepage: String,
    #[serde(default)]
    short_description: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    caveats: Option<String>,
    #[serde(default)]
    platforms: Vec<Platform>,
}

/// krew's `index.Platform`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    selector: Option<Selector>,
    /// `None` when the key is absent (krew then copies the whole archive); `Some(vec![])`
    /// for `files: []`, which krew rejects.
    #[serde(default)]
    files: Option<Vec<FileOperation>>,
    #[serde(default)]
    bin: String,
}

/// A label selector with `matchLabels` only.
// NB: krew also accepts `matchExpressions` on os/arch; this project does not use them,
// and `deny_unknown_fields` turns one into a parse error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
}

/// krew's `index.FileOperation`: copy `from` (a glob in the archive) to `to` (a path in
/// the install directory).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOperation {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_manifest_path() -> PathBuf {
    repo_root().join("plugin-manifest").join("rotate.yaml")
}

fn parse(yaml: &str) -> Plugin {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("manifest does not parse: {e}"))
}

fn read_manifest(path: &Path) -> Plugin {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(&text)
}

/// The plugin name krew derives from a manifest's file name (`rotate.yaml` -> `rotate`).
fn name_from_file(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("manifest file name is UTF-8")
        .to_owned()
}

/// `v` + this crate's version: the only `spec.version` the manifest may carry.
fn expected_version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// krew's `IsSafePluginName`: `^[\w-]+$` and not a reserved Windows device name.
fn is_safe_plugin_name(name: &str) -> bool {
    const WINDOWS_FORBIDDEN: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    // NB: Go's \w is ASCII-only: [0-9A-Za-z_].
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !WINDOWS_FORBIDDEN
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
}

/// krew's `semver.Parse`: a leading `v`, then a strict semantic version (as
/// k8s.io/apimachinery's `ParseSemantic`): MAJOR.MINOR.PATCH without leading zeros,
/// optional `-pre.release` and `+build.metadata`.
fn check_semver(version: &str) -> Result<(), String> {
    let rest = version
        .strip_prefix('v')
        .ok_or_else(|| format!("version string {version:?} not starting with 'v'"))?;
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = |s: &str| s == "0" || !s.starts_with('0');
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p) && no_leading_zero(p)) {
        return Err(format!(
            "version {version:?} is not vMAJOR.MINOR.PATCH without leading zeros"
        ));
    }
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(pre) = pre {
        if !pre
            .split('.')
            .all(|id| ident(id) && (!numeric(id) || no_leading_zero(id)))
        {
            return Err(format!("version {version:?} has a bad pre-release"));
        }
    }
    if let Some(build) = build {
        if !build.split('.').all(ident) {
            return Err(format!("version {version:?} has bad build metadata"));
        }
    }
    Ok(())
}

/// The checks of krew's `ValidatePlugin(name, plugin)`, in its order; every failure, not
/// only the first.
fn krew_rules(name: &str, p: &Plugin) -> Vec<String> {
    let mut errs = Vec::new();
    if p.api_version != "krew.googlecontainertools.github.com/v1alpha2" {
        errs.push(format!(
            "plugin manifest has apiVersion={:?}, not supported",
            p.api_version
        ));
    }
    if p.kind != "Plugin" {
        errs.push(format!(
            "plugin manifest has kind={:?}, but only \"Plugin\" is supported",
            p.kind
        ));
    }
    if !is_safe_plugin_name(name) {
        errs.push(format!("the plugin name {name:?} is not allowed"));
    }
    if p.metadata.name != name {
        errs.push(format!(
            "plugin should be named {name:?}, not {:?}",
            p.metadata.name
        ));
    }
    if p.spec.short_description.is_empty() {
        errs.push("should have a short description".into());
    }
    if p.spec.short_description.contains(['\r', '\n']) {
        errs.push("should not have line breaks in short description".into());
    }
    if p.spec.platforms.is_empty() {
        errs.push("should have a platform specified".into());
    }
    if p.spec.version.is_empty() {
        errs.push("should have a version specified".into());
    } else if let Err(e) = check_semver(&p.spec.version) {
        errs.push(format!("failed to parse plugin version: {e}"));
    }
    for (i, pl) in p.spec.platforms.iter().enumerate() {
        for e in krew_platform_rules(pl) {
            errs.push(format!("platform #{i} is badly constructed: {e}"));
        }
    }
    errs
}

/// krew's `validatePlatform`, `validateFiles` and `validateSelector`.
fn krew_platform_rules(pl: &Platform) -> Vec<String> {
    let mut errs = Vec::new();
    if pl.uri.is_empty() {
        errs.push("`uri` has to be set".into());
    }
    if pl.sha256.is_empty() {
        errs.push("`sha256` sum has to be set".into());
    } else if !is_sha256_hex(&pl.sha256) {
        errs.push(format!(
            "`sha256` value {} is not valid, must match pattern ^[a-f0-9]{{64}}$",
            pl.sha256
        ));
    }
    if pl.bin.is_empty() {
        errs.push("`bin` has to be set".into());
    }
    if let Some(files) = &pl.files {
        if files.is_empty() {
            errs.push("`files` has to be unspecified or non-empty".into());
        }
        for op in files {
            if op.from.is_empty() {
                errs.push("`files`: `from` field has to be set".into());
            } else if op.to.is_empty() {
                errs.push("`files`: `to` field has to be set".into());
            }
        }
    }
    match &pl.selector {
        None => errs.push("nil selector is not supported".into()),
        Some(Selector { match_labels: None }) => {
            errs.push("empty selector is not supported".into())
        }
        Some(Selector {
            match_labels: Some(labels),
        }) => {
            for key in labels.keys() {
                if key != "os" && key != "arch" {
                    errs.push(format!("selector key {key:?} not supported"));
                }
            }
            if labels.is_empty() {
                errs.push("`matchLabels` specified but empty".into());
            }
        }
    }
    errs
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A path inside the archive or the install dir: relative and never climbing out.
fn is_contained_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.starts_with('\\')
        && !p.contains(':')
        && !p.split(['/', '\\']).any(|c| c == "..")
}

/// What krew checks only at install time or leaves to krew-index reviewers, and what this
/// project promises about its own manifest.
fn project_rules(p: &Plugin, version: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if p.spec.version != version {
        errs.push(format!(
            "spec.version is {:?}, Cargo.toml says {version:?}",
            p.spec.version
        ));
    }
    if !p.spec.homepage.starts_with("https://") {
        errs.push(format!(
            "homepage {:?} is not an https URL",
            p.spec.homepage
        ));
    }
    let short = &p.spec.short_description;
    if short.trim() != short {
        errs.push("shortDescription has leading or trailing blanks".into());
    }
    if short.chars().count() > SHORT_DESCRIPTION_MAX {
        errs.push(format!(
            "shortDescription is {} characters, more than {SHORT_DESCRIPTION_MAX}",
            short.chars().count()
        ));
    }
    if p.spec.description.trim().is_empty() {
        errs.push("should have a description".into());
    }

    let mut seen = Vec::new();
    for (i, pl) in p.spec.platforms.iter().enumerate() {
        let labels = pl
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        let (Some(os), Some(arch)) = (labels.get("os"), labels.get("arch")) else {
            errs.push(format!(
                "platform #{i}: selector must name both os and arch"
            ));
            continue;
        };
        // Values Go's runtime.GOOS / GOARCH take, which is what krew matches against.
        const KNOWN_OS: [&str; 7] = [
            "linux", "darwin", "windows", "freebsd", "openbsd", "netbsd", "solaris",
        ];
        const KNOWN_ARCH: [&str; 9] = [
            "amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64", "mips64le", "loong64",
        ];
        if !KNOWN_OS.contains(&os.as_str()) {
            errs.push(format!("platform #{i}: unknown os {os:?}"));
        }
        if !KNOWN_ARCH.contains(&arch.as_str()) {
            errs.push(format!("platform #{i}: unknown arch {arch:?}"));
        }
        if seen.contains(&(os.clone(), arch.clone())) {
            errs.push(format!("platform #{i}: {os}/{arch} listed twice"));
        }
        seen.push((os.clone(), arch.clone()));

        if !pl.uri.starts_with("https://") {
            errs.push(format!("platform #{i}: uri {:?} is not https", pl.uri));
        }
        let want_uri = format!(
            "https://github.com/kubectl-rotate/kubectl-rotate/releases/download/\
             {version}/kubectl-rotate_{version}_{os}_{arch}.tar.gz"
        );
        if pl.uri != want_uri {
            errs.push(format!(
                "platform #{i}: uri {:?}, release layout says {want_uri:?}",
                pl.uri
            ));
        }

        let want_bin = if os == "windows" {
            "kubectl-rotate.exe"
        } else {
            "kubectl-rotate"
        };
        if pl.bin != want_bin {
            errs.push(format!(
                "platform #{i}: bin is {:?}, must be {want_bin:?}",
                pl.bin
            ));
        }

        // NB: without `files` krew copies the whole archive; we list files so the install
        // is exactly the binary and its licence.
        let files = pl.files.as_deref().unwrap_or_default();
        if files.is_empty() {
            errs.push(format!("platform #{i}: files must be listed"));
        }
        for op in files {
            if !is_contained_path(&op.from) || !is_contained_path(&op.to) {
                errs.push(format!(
                    "platform #{i}: files entry {} -> {} leaves its directory",
                    op.from, op.to
                ));
            }
        }
        if !files.iter().any(|op| op.from == pl.bin && op.to == ".") {
            errs.push(format!(
                "platform #{i}: no files entry copies the bin {:?} to \".\"",
                pl.bin
            ));
        }
        if !files.iter().any(|op| op.from == "LICENSE") {
            errs.push(format!("platform #{i}: LICENSE is not in files"));
        }
    }
    let mut want: Vec<(String, String)> = PLATFORMS
        .iter()
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .collect();
    let mut got = seen;
    want.sort();
    got.sort();
    if got != want {
        errs.push(format!("platforms are {got:?}, the release ships {want:?}"));
    }
    errs
}

/// Every rule, krew's and ours.
fn all_rules(name: &str, p: &Plugin) -> Vec<String> {
    let mut errs = krew_rules(name, p);
    errs.extend(project_rules(p, &expected_version()));
    errs
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
    let description = &plugin.spec.description;
    for needle in [
        "kubectl rotate auth",
        "kubectl rotate rollback",
        "status",
        "verify",
        "ops-manager",
        "data controller",
    ] {
        assert!(
            description.contains(needle),
            "description does not mention {needle:?}"
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

/// Run with `cargo test --test krew_manifest -- --ignored` when cutting a release: the
/// committed manifest must carry the real archives' checksums by then.
#[test]
#[ignore = "release gate: passes only once the sha256 placeholders are replaced"]
fn committed_manifest_carries_no_placeholder_checksums() {
    let plugin = read_manifest(&committed_manifest_path());
    for pl in &plugin.spec.platforms {
        assert_ne!(
            pl.sha256, PLACEHOLDER_SHA256,
            "{} still has the placeholder sha256",
            pl.uri
        );
    }
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

/// krew/package.sh, run on a fake binary in a temp dir.
#[cfg(unix)]
mod package_script {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

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
            String::from_utf8_lossy(&strict.stderr)
                .contains("linux/arm64 darwin/amd64 darwin/arm64"),
            "{strict:?}"
        );
    }
}
