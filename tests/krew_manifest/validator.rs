//! A port of krew's manifest validator, and the rules this project adds on top.
//!
//! `krew_rules` is a port of krew's own validator (kubernetes-sigs/krew,
//! internal/index/validation/validate.go, `ValidatePlugin`), which krew-index runs on every
//! submitted manifest. `project_rules` adds what krew leaves to reviewers or to install
//! time and what this project promises: a homepage and description, https URIs in our
//! release layout, known os/arch values, the binary name, sane `files`, a LICENSE in the
//! archive, the version in step with Cargo.toml, and exactly the five platforms we ship.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The platforms every release ships, in the order the manifest lists them.
pub const PLATFORMS: [(&str, &str); 5] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
];

/// The archive of `os/arch` for `version`, as the release uploads it: a `.zip` for
/// Windows (what Windows users and krew plugins there expect), `.tar.gz` elsewhere.
pub fn archive_name(version: &str, os: &str, arch: &str) -> String {
    let ext = if os == "windows" { "zip" } else { "tar.gz" };
    format!("kubectl-rotate_{version}_{os}_{arch}.{ext}")
}

/// The binary the archive of `os` holds and the manifest's `bin` names.
pub fn bin_name(os: &str) -> &'static str {
    if os == "windows" {
        "kubectl-rotate.exe"
    } else {
        "kubectl-rotate"
    }
}

/// The longest shortDescription we accept.
// NB: `kubectl krew search` cuts shortDescription to 50 characters ("..." included), so
// anything longer would show truncated there.
pub const SHORT_DESCRIPTION_MAX: usize = 50;

/// krew's `index.Plugin`, the fields this project uses.
// NB: krew decodes leniently (unknown fields are ignored, see indexscanner.decodeFile);
// `deny_unknown_fields` is stricter on purpose, so a misspelt key such as
// `shortDesription` fails here instead of silently vanishing in krew.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Plugin {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Spec,
}

/// `metadata`: krew reads the name only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
}

/// krew's `index.PluginSpec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub homepage: String,
    #[serde(default)]
    pub short_description: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub caveats: Option<String>,
    #[serde(default)]
    pub platforms: Vec<Platform>,
}

/// krew's `index.Platform`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub selector: Option<Selector>,
    /// `None` when the key is absent (krew then copies the whole archive); `Some(vec![])`
    /// for `files: []`, which krew rejects.
    #[serde(default)]
    pub files: Option<Vec<FileOperation>>,
    #[serde(default)]
    pub bin: String,
}

/// A label selector with `matchLabels` only.
// NB: krew also accepts `matchExpressions` on os/arch; this project does not use them,
// and `deny_unknown_fields` turns one into a parse error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// krew's `index.FileOperation`: copy `from` (a glob in the archive) to `to` (a path in
/// the install directory).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOperation {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

pub fn parse(yaml: &str) -> Plugin {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("manifest does not parse: {e}"))
}

pub fn read_manifest(path: &Path) -> Plugin {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(&text)
}

/// The plugin name krew derives from a manifest's file name (`rotate.yaml` -> `rotate`).
pub fn name_from_file(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("manifest file name is UTF-8")
        .to_owned()
}

/// `v` + this crate's version: the only `spec.version` the manifest may carry.
pub fn expected_version() -> String {
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
pub fn check_semver(version: &str) -> Result<(), String> {
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
pub fn krew_rules(name: &str, p: &Plugin) -> Vec<String> {
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
/// project promises about its own manifest, which lists exactly `platforms`.
fn project_rules(p: &Plugin, version: &str, platforms: &[(&str, &str)]) -> Vec<String> {
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
            "https://github.com/kubectl-rotate/kubectl-rotate/releases/download/{version}/{}",
            archive_name(version, os, arch)
        );
        if pl.uri != want_uri {
            errs.push(format!(
                "platform #{i}: uri {:?}, release layout says {want_uri:?}",
                pl.uri
            ));
        }

        let want_bin = bin_name(os);
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
    let mut want: Vec<(String, String)> = platforms
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
pub fn all_rules(name: &str, p: &Plugin) -> Vec<String> {
    rules_for_platforms(name, p, &PLATFORMS)
}

/// Every rule, krew's and ours, for a manifest of some of the platforms only (one
/// rendered from a partial build, `scripts/release.sh --only`).
pub fn rules_for_platforms(name: &str, p: &Plugin, platforms: &[(&str, &str)]) -> Vec<String> {
    let mut errs = krew_rules(name, p);
    errs.extend(project_rules(p, &expected_version(), platforms));
    errs
}
