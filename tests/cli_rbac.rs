//! The repo's ClusterRoles (rbac/) against the sandbox enforcing RBAC: a user bound only to
//! kubectl-rotate-rotator can rotate and roll back, one bound only to kubectl-rotate-viewer
//! can read, and a role one verb short is refused before anything is written, with the
//! missing permission named. Also: the identity recorded is the server's, and
//! `--as`/`--as-group`/`--as-uid` arrive as kubectl sends them.

mod cli_support;

use std::path::PathBuf;
use std::process::Command;

use cli_support::{deployment_reading, Env, Out, BIN};

const ROTATOR: &str = include_str!("../rbac/kubectl-rotate-rotator.yaml");
const VIEWER: &str = include_str!("../rbac/kubectl-rotate-viewer.yaml");

/// The plugin run with `kubeconfig` (a user's own), nothing else added.
fn rotate_as(env: &Env, kubeconfig: &PathBuf, args: &[&str]) -> Out {
    let out = Out::from(
        Command::new(BIN)
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", env.cache_dir())
            .output()
            .unwrap(),
    );
    env.record(&out);
    out
}

/// A user bound in `demo` to the ClusterRole in `yaml` (applied as the admin).
fn user_with(env: &Env, user: &str, yaml: &str) -> PathBuf {
    env.sb
        .apply_yaml(yaml)
        .expect("the ClusterRole is accepted");
    let role = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("name: "))
        .expect("a name")
        .trim()
        .to_string();
    env.sb.add_user(user, &[]);
    env.sb
        .bind(user, "ClusterRole", &role, Some("demo"))
        .expect("bound");
    env.sb.kubeconfig_for_user(user).unwrap()
}

/// The rotator role with `verb` taken out of the rule for `resource`, renamed.
fn rotator_without(verb: &str, resource: &str) -> String {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(ROTATOR).unwrap();
    doc["metadata"]["name"] = format!("rotator-without-{verb}-{resource}").into();
    let rules = doc["rules"].as_sequence_mut().unwrap();
    let mut found = false;
    for rule in rules.iter_mut() {
        let covers = rule["resources"]
            .as_sequence()
            .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(resource)));
        if covers {
            let verbs = rule["verbs"].as_sequence_mut().unwrap();
            let before = verbs.len();
            verbs.retain(|v| v.as_str() != Some(verb));
            found |= verbs.len() < before;
        }
    }
    // NB: a rule left with no verbs is invalid: it goes.
    rules.retain(|r| r["verbs"].as_sequence().is_some_and(|v| !v.is_empty()));
    assert!(found, "the rotator role grants {verb} {resource}");
    serde_yaml::to_string(&doc).unwrap()
}

#[test]
fn the_rotator_role_is_enough_to_rotate_and_roll_back() {
    let env = Env::demo();
    env.sb
        .apply_yaml(&deployment_reading(
            "api",
            &[("PGPASSWORD", "pg-demo-auth")],
        ))
        .unwrap();
    let alice = user_with(&env, "alice", ROTATOR);
    for args in [
        &["auth", "pg/pg-demo", "--wait", "--restart-consumers"][..],
        &["rollback", "pg/pg-demo", "--wait"],
        &["auth", "md/md-demo", "--generate", "--wait"],
        &["auth", "sqlmi/sqlmi-demo", "--wait"],
    ] {
        let out = rotate_as(&env, &alice, args);
        out.expect(0);
        assert!(
            !out.stderr.contains("forbidden"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let restarted = &env.get("deployment", "api")["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"];
    assert!(restarted.is_string(), "the consumer was restarted");
    // Who is recorded is who the server authenticated.
    let ops = env.ops_requests("postgresopsrequests");
    assert!(
        ops.iter()
            .all(|o| o["metadata"]["annotations"]["rotate.kubectl.dev/user"] == "alice"),
        "{ops:#?}"
    );
    env.assert_no_password_printed();
}

#[test]
fn the_viewer_role_is_enough_to_read_and_not_to_rotate() {
    let env = Env::demo();
    env.sb
        .apply_yaml(&deployment_reading(
            "api",
            &[("PGPASSWORD", "pg-demo-auth")],
        ))
        .unwrap();
    let vic = user_with(&env, "vic", VIEWER);
    for args in [
        &["list", "-n", "demo"][..],
        &["list", "-n", "demo", "-o", "wide"],
        &["status", "pg/pg-demo"],
        &["history", "pg/pg-demo"],
        &["prev", "pg/pg-demo"],
        &["consumers", "pg/pg-demo"],
    ] {
        let out = rotate_as(&env, &vic, args);
        out.expect(0);
        assert!(
            !out.stderr.contains("could not be"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let before = env.writes().len();
    let out = rotate_as(&env, &vic, &["auth", "pg/pg-demo", "--wait"]);
    out.expect(10);
    assert!(
        out.stderr.contains("not allowed to create"),
        "{}",
        out.stderr
    );
    assert_eq!(env.writes().len(), before, "{:?}", env.writes());
}

#[test]
fn a_role_one_verb_short_is_refused_before_any_write_naming_the_permission() {
    let env = Env::demo();
    for (i, (verb, resource, named)) in [
        (
            "create",
            "postgresopsrequests",
            "create postgresopsrequests.ops.kubedb.com",
        ),
        ("update", "leases", "update leases.coordination.k8s.io"),
        ("create", "events", "create events in namespace"),
        (
            "watch",
            "postgresopsrequests",
            "watch postgresopsrequests.ops.kubedb.com",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let user = format!("short{i}");
        let kubeconfig = user_with(&env, &user, &rotator_without(verb, resource));
        let before = env.writes();
        let out = rotate_as(&env, &kubeconfig, &["auth", "pg/pg-demo", "--wait"]);
        out.expect(10);
        assert!(out.stderr.contains(named), "{named}: {}", out.stderr);
        assert!(out.stderr.contains("kubectl auth can-i"), "{}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert_eq!(
            env.writes(),
            before,
            "nothing written without {verb} {resource}"
        );
    }
    // Arc: without patch on the instance.
    let kubeconfig = user_with(
        &env,
        "short-arc",
        &rotator_without("patch", "sqlmanagedinstances"),
    );
    let before = env.writes();
    let out = rotate_as(&env, &kubeconfig, &["auth", "sqlmi/sqlmi-demo"]);
    out.expect(10);
    assert!(
        out.stderr
            .contains("patch sqlmanagedinstances.sql.arcdata.microsoft.com \"sqlmi-demo\""),
        "{}",
        out.stderr
    );
    assert_eq!(env.writes(), before);
    // --restart-consumers: without patch on Deployments, refused before the rotation.
    let kubeconfig = user_with(
        &env,
        "short-restart",
        &rotator_without("patch", "deployments"),
    );
    let before = env.writes();
    let out = rotate_as(
        &env,
        &kubeconfig,
        &["auth", "pg/pg-demo", "--wait", "--restart-consumers"],
    );
    out.expect(10);
    assert!(
        out.stderr.contains("patch deployments.apps"),
        "{}",
        out.stderr
    );
    assert_eq!(env.writes(), before);
}

#[test]
fn impersonation_flags_arrive_as_kubectl_sends_them_and_are_recorded() {
    let env = Env::demo();
    env.sb.apply_yaml(ROTATOR).unwrap();
    env.sb.add_user("carol", &[]);
    env.sb
        .bind(
            "carol",
            "ClusterRole",
            "kubectl-rotate-rotator",
            Some("demo"),
        )
        .unwrap();
    env.sb.faults().reset_counts();
    let out = env.rotate(&[
        "auth",
        "pg/pg-demo",
        "--as",
        "carol",
        "--as-group",
        "g1",
        "--as-group",
        "g2",
        "--as-uid",
        "u-42",
    ]);
    out.expect(0);
    let seen: Vec<_> = env
        .sb
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.impersonation.user.is_some())
        .collect();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(r.impersonation.user.as_deref(), Some("carol"), "{r:?}");
        assert_eq!(r.impersonation.groups, vec!["g1", "g2"], "{r:?}");
        assert_eq!(r.impersonation.uid.as_deref(), Some("u-42"), "{r:?}");
        assert_eq!(r.acting_as.as_deref(), Some("carol"), "{r:?}");
    }
    let ops = env.ops_requests("postgresopsrequests");
    assert_eq!(
        ops[0]["metadata"]["annotations"]["rotate.kubectl.dev/user"],
        "carol"
    );
    // A user who may not impersonate is refused by the server.
    let bob = env.sb.kubeconfig_path().to_path_buf();
    let out = rotate_as(
        &env,
        &bob,
        &[
            "list",
            "-n",
            "demo",
            "--context",
            "sandbox-bob",
            "--as",
            "carol",
        ],
    );
    out.expect(1);
    assert!(out.stderr.contains("impersonate"), "{}", out.stderr);
}
