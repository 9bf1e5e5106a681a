//! The container image a scheduled rotation runs (Dockerfile), and the release workflow
//! that builds it: what one puts where, the other must take from there.

use super::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Dockerfile's instructions, comments and blank lines dropped.
fn instructions() -> Vec<String> {
    read("Dockerfile")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_image_is_the_static_binary_alone_run_as_no_root() {
    let ins = instructions();
    assert_eq!(ins[0], "FROM scratch", "{ins:?}");
    assert_eq!(
        ins.iter().filter(|i| i.starts_with("FROM ")).count(),
        1,
        "one stage"
    );
    let copy = ins.iter().find(|i| i.starts_with("COPY ")).expect("a COPY");
    assert!(
        copy.ends_with("image/linux_${TARGETARCH}/kubectl-rotate /kubectl-rotate"),
        "{copy}"
    );
    assert_eq!(
        ins.last().unwrap(),
        r#"ENTRYPOINT ["/kubectl-rotate"]"#,
        "exec form: no shell in the image"
    );
    let user = ins
        .iter()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("a USER");
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    // The CronJob `schedule` makes runs as the same user (runAsNonRoot needs a number).
    let spec = read("src/cmd/schedule/spec.rs");
    assert!(
        spec.contains(&format!("\"runAsUser\": {uid}")),
        "runAsUser {uid}"
    );
    assert!(
        spec.contains(&format!("\"runAsGroup\": {gid}")),
        "runAsGroup {gid}"
    );
    assert_ne!(uid, "0");
}

#[test]
fn the_release_workflow_builds_the_image_from_the_archives_under_the_default_name() {
    let wf = read(".github/workflows/release.yml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&wf).unwrap();
    let image = &doc["jobs"]["image"];
    assert_eq!(image["needs"], "publish", "after the archives are checked");
    let steps = image["steps"].as_sequence().unwrap();
    let unpack = steps
        .iter()
        .find_map(|s| s["run"].as_str().filter(|r| r.contains("tar -xzf")))
        .expect("a step unpacking the archives");
    assert!(unpack.contains("image/linux_$arch"), "{unpack}");
    assert!(unpack.contains("for arch in amd64 arm64"), "{unpack}");
    let build = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action"))
        })
        .expect("a build-push step");
    assert_eq!(build["with"]["platforms"], "linux/amd64,linux/arm64");
    assert_eq!(
        build["with"]["tags"],
        "ghcr.io/${{ github.repository }}:${{ github.ref_name }}"
    );
    // The plugin's default --image is that name for this repository and version.
    let krew = read(".krew.yaml");
    let repo = krew
        .lines()
        .find_map(|l| l.trim().strip_prefix("homepage: https://github.com/"))
        .expect("the homepage");
    let spec = read("src/cmd/schedule/spec.rs");
    assert!(
        spec.contains(&format!("\"ghcr.io/{repo}:v{{}}\"")),
        "default image ghcr.io/{repo}:v<version>"
    );
}
