//! One command in several contexts (`--context a,b`, `--all-contexts`) against two
//! sandboxes, each its own cluster, as contexts `a` and `b` of one kubeconfig.

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::{in_process, Env, Out};
use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

/// Two sandboxes, and a kubeconfig holding both: context `a` (the first, current) and `b`,
/// each with its cluster and admin user, namespace `demo`.
struct Two {
    a: Env,
    b: Option<Env>,
    dir: tempfile::TempDir,
}

/// A kubeconfig of `clusters` (context name, sandbox kubeconfig): each sandbox's cluster
/// and admin user renamed after the context.
fn merged(dir: &Path, clusters: &[(&str, &Path)]) -> PathBuf {
    let (mut cs, mut us, mut xs) = (Vec::new(), Vec::new(), Vec::new());
    for (name, path) in clusters {
        let k: Yaml = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut cluster = k["clusters"][0].clone();
        cluster["name"] = Yaml::from(*name);
        cs.push(cluster);
        let mut user = k["users"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "sandbox-admin")
            .unwrap()
            .clone();
        user["name"] = Yaml::from(format!("{name}-admin"));
        us.push(user);
        let mut context = Mapping::new();
        context.insert("cluster".into(), Yaml::from(*name));
        context.insert("user".into(), Yaml::from(format!("{name}-admin")));
        context.insert("namespace".into(), "demo".into());
        let mut named = Mapping::new();
        named.insert("name".into(), Yaml::from(*name));
        named.insert("context".into(), Yaml::Mapping(context));
        xs.push(Yaml::Mapping(named));
    }
    let mut k = Mapping::new();
    k.insert("apiVersion".into(), "v1".into());
    k.insert("kind".into(), "Config".into());
    k.insert("clusters".into(), Yaml::Sequence(cs));
    k.insert("users".into(), Yaml::Sequence(us));
    k.insert("contexts".into(), Yaml::Sequence(xs));
    k.insert("current-context".into(), Yaml::from(clusters[0].0));
    let path = dir.join(format!("kubeconfig-{}", clusters.len()));
    std::fs::write(&path, serde_yaml::to_string(&Yaml::Mapping(k)).unwrap()).unwrap();
    path
}

impl Two {
    fn start() -> Two {
        let (a, b) = (Env::demo(), Env::demo());
        let dir = tempfile::tempdir().unwrap();
        merged(dir.path(), &[("a", a.kubeconfig()), ("b", b.kubeconfig())]);
        Two { a, b: Some(b), dir }
    }

    fn b(&self) -> &Env {
        self.b.as_ref().expect("b is running")
    }

    /// Stops sandbox `b`: its context then points at a port nobody answers on.
    fn stop_b(&mut self) {
        self.b = None;
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig-2")
    }

    /// Runs the plugin in process with the two-context kubeconfig; stdin not a terminal.
    fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, "", false)
    }

    fn run_with(&self, args: &[&str], stdin: &str, terminal: bool) -> Out {
        let kubeconfig = self.kubeconfig().to_string_lossy().into_owned();
        let cache = self.dir.path().join("cache").to_string_lossy().into_owned();
        let argv = args.iter().copied().chain([
            "--kubeconfig",
            kubeconfig.as_str(),
            "--cache-dir",
            cache.as_str(),
        ]);
        let out = in_process(argv, stdin, terminal);
        self.a.record(&out);
        if let Some(b) = &self.b {
            b.record(&out);
        }
        out
    }

    /// How many requests each running sandbox has answered so far.
    fn requests(&self) -> (usize, usize) {
        (
            self.a.sb.faults().requests().len(),
            self.b().sb.faults().requests().len(),
        )
    }
}

/// The context of each item of a JSON `List` (or `CredentialList`).
fn contexts(doc: &Value) -> Vec<String> {
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["context"].as_str().expect("a context").to_string())
        .collect()
}

#[test]
fn list_in_two_contexts_shows_both_clusters_with_context_first() {
    let two = Two::start();
    // Tell the clusters apart: md-demo only in a.
    two.b().kubectl(&["delete", "mariadb", "md-demo"]).expect(0);
    let out = two.run(&["list", "--context", "a,b"]);
    out.expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("CONTEXT   KIND "), "{}", out.stdout);
    let rows = |ctx: &str, name: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("{ctx} ")) && l.contains(&format!(" {name} ")))
            .count()
    };
    assert_eq!(rows("a", "pg-demo"), 1, "{}", out.stdout);
    assert_eq!(rows("b", "pg-demo"), 1, "{}", out.stdout);
    assert_eq!(rows("a", "md-demo"), 1, "{}", out.stdout);
    assert_eq!(rows("b", "md-demo"), 0, "{}", out.stdout);
    // Every row's cells line up under the headers.
    let kind_at = lines[0].find("KIND").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[kind_at - 3..kind_at] == *"   " && !l[kind_at..].starts_with(' ')),
        "{}",
        out.stdout
    );

    let json = two.run(&["list", "--context", "a,b", "-o", "json"]);
    let doc = json.expect(0).json();
    assert_eq!(doc["kind"], "CredentialList");
    let ctxs = contexts(&doc);
    let (na, nb) = (
        ctxs.iter().filter(|c| *c == "a").count(),
        ctxs.iter().filter(|c| *c == "b").count(),
    );
    assert_eq!(na, nb + 1, "{ctxs:?}");
    assert!(ctxs.iter().position(|c| c == "b") > ctxs.iter().rposition(|c| c == "a"));
    two.a.assert_no_password_printed();
}

#[test]
fn a_stopped_cluster_fails_its_context_only_and_the_exit_code() {
    let mut two = Two::start();
    two.stop_b();
    let out = two.run(&["list", "--context", "a,b", "--request-timeout", "5s"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.starts_with("CONTEXT "), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("pg-demo")),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("b ")),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("[b] error: "), "{}", out.stderr);
    assert!(!out.stderr.contains("[a] error"), "{}", out.stderr);
    assert!(
        out.stderr.ends_with("error: 1 of 2 contexts failed: b\n"),
        "{}",
        out.stderr
    );

    // The exit code is the first failing context's, in the order given: a has no
    // pg-nope (4), b cannot be reached (1).
    let a_first = two.run(&["status", "pg/pg-nope", "--context", "a,b"]);
    assert_eq!(a_first.code, 4, "{a_first:?}");
    let b_first = two.run(&["status", "pg/pg-nope", "--context", "b,a"]);
    assert_eq!(b_first.code, 1, "{b_first:?}");
    assert!(
        b_first.stderr.contains("2 of 2 contexts failed: b, a"),
        "{}",
        b_first.stderr
    );

    // A change that cannot reach b shows it as b's row; a's rotation goes on.
    let auth = two.run(&["auth", "pg/pg-demo", "--context", "a,b", "--yes", "--wait"]);
    assert_eq!(auth.code, 1, "{auth:?}");
    let row = |ctx: &str| {
        auth.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{ctx} ")))
            .unwrap_or_else(|| panic!("a row for {ctx}:\n{}", auth.stdout))
            .to_string()
    };
    assert!(row("a").contains("Successful"), "{}", auth.stdout);
    assert!(row("b").contains(" Error "), "{}", auth.stdout);
    assert_eq!(two.a.ops_request_count(), 1);
}

#[test]
fn writes_in_two_contexts_need_yes_and_are_checked_before_any_request() {
    let two = Two::start();
    let before = two.requests();
    let out = two.run(&["auth", "pg/pg-demo", "--context", "a,b", "--wait"]);
    out.expect(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("refusing to rotate in 2 contexts (a, b)"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(two.requests(), before, "nothing was sent to either cluster");

    // On a terminal it asks once; anything but yes changes nothing.
    let no = two.run_with(&["rollback", "pg/pg-demo", "--context", "a,b"], "n\n", true);
    no.expect(6);
    assert!(
        no.stderr
            .starts_with("Roll back pg/pg-demo in 2 contexts (a, b)? [y/N] "),
        "{}",
        no.stderr
    );
    assert_eq!(two.requests(), before);

    // Bad input is refused the same way, before any request.
    for bad in [
        &["list", "--context", "a,nope"][..],
        &["list", "--context", "a,,b"],
        &["list", "--context", "a", "--all-contexts"],
        &["list", "--context", "a,b", "-o", "name"],
        &[
            "auth",
            "pg/pg-demo",
            "--context",
            "a,b",
            "--yes",
            "--server",
            "https://x:1",
        ],
    ] {
        let out = two.run(bad);
        out.expect(2);
        assert_eq!(out.stderr.lines().count(), 1, "{bad:?}: {}", out.stderr);
    }
    assert_eq!(two.requests(), before);

    let (pa, pb) = (
        two.a.db_password("pg", "pg-demo"),
        two.b().db_password("pg", "pg-demo"),
    );
    let yes = two.run(&["auth", "pg/pg-demo", "--context", "a,b", "--wait", "--yes"]);
    yes.expect(0);
    let lines: Vec<&str> = yes.stdout.lines().collect();
    assert!(
        lines[0].starts_with("CONTEXT   NAMESPACE   KIND"),
        "{}",
        yes.stdout
    );
    for ctx in ["a", "b"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{ctx} ")) && l.contains("Successful")),
            "{}",
            yes.stdout
        );
        // Each context's progress lines are led by its name.
        assert!(
            yes.stderr
                .lines()
                .any(|l| l.starts_with(&format!("[{ctx}] pg-demo-rotate-auth-"))),
            "{}",
            yes.stderr
        );
    }
    assert_ne!(two.a.db_password("pg", "pg-demo"), pa);
    assert_ne!(two.b().db_password("pg", "pg-demo"), pb);
    assert_eq!(
        (two.a.ops_request_count(), two.b().ops_request_count()),
        (1, 1)
    );
    two.a.assert_no_password_printed();
    two.b().assert_no_password_printed();
}

#[test]
fn a_password_from_stdin_is_read_once_and_set_in_every_context() {
    let two = Two::start();
    let out = two.run_with(
        &[
            "auth",
            "pg/pg-demo",
            "--context",
            "a,b",
            "--password-stdin",
            "--yes",
            "--wait",
        ],
        "Multi-ctx-Passw0rd\n",
        false,
    );
    out.expect(0);
    assert_eq!(two.a.db_password("pg", "pg-demo"), "Multi-ctx-Passw0rd");
    assert_eq!(two.b().db_password("pg", "pg-demo"), "Multi-ctx-Passw0rd");
    assert!(!out.stdout.contains("Multi-ctx") && !out.stderr.contains("Multi-ctx"));
}

#[test]
fn all_contexts_covers_every_context_even_one() {
    let two = Two::start();
    let doc = two
        .run(&["list", "--all-contexts", "-o", "json"])
        .expect(0)
        .json();
    let mut ctxs = contexts(&doc);
    ctxs.dedup();
    assert_eq!(ctxs, ["a", "b"]);

    // A kubeconfig of one context: asked for, the CONTEXT column is there.
    let one = merged(two.dir.path(), &[("solo", two.a.kubeconfig())]);
    let one = one.to_string_lossy().into_owned();
    let cache = two.dir.path().join("cache").to_string_lossy().into_owned();
    let out = in_process(
        [
            "list",
            "--all-contexts",
            "--kubeconfig",
            one.as_str(),
            "--cache-dir",
            cache.as_str(),
        ],
        "",
        false,
    );
    out.expect(0);
    assert!(out.stdout.starts_with("CONTEXT   KIND"), "{}", out.stdout);
    assert!(
        out.stdout.lines().nth(1).unwrap().starts_with("solo "),
        "{}",
        out.stdout
    );
}

#[test]
fn single_document_verbs_print_one_block_or_item_per_context() {
    let two = Two::start();
    let status = two.run(&["status", "pg/pg-demo", "--context", "b,a"]);
    status.expect(0);
    let blocks: Vec<&str> = status.stdout.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{}", status.stdout);
    assert!(blocks[0].starts_with("Context:"), "{}", status.stdout);
    assert!(
        blocks[0].lines().next().unwrap().ends_with(" b"),
        "{}",
        status.stdout
    );
    assert!(
        blocks[1].lines().next().unwrap().ends_with(" a"),
        "{}",
        status.stdout
    );

    let doc = two.run(&["status", "pg/pg-demo", "--context", "a,b", "-o", "json"]);
    let doc = doc.expect(0).json();
    assert_eq!(doc["kind"], "List");
    assert_eq!(contexts(&doc), ["a", "b"]);
    assert!(doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["kind"] == "RotationStatus"));

    let prev = two.run(&["prev", "pg/pg-demo", "--context", "a,b", "-o", "yaml"]);
    let prev: Value = serde_yaml::from_str(&prev.expect(0).stdout).unwrap();
    assert_eq!(contexts(&prev), ["a", "b"]);
    assert_eq!(prev["items"][1]["kind"], "PreviousCredentials");

    // A template reads the merged document.
    let names = two.run(&[
        "status",
        "pg/pg-demo",
        "--context",
        "a,b",
        "-o",
        "jsonpath={.items[*].context}",
    ]);
    assert_eq!(names.expect(0).stdout, "a b");

    // verify: the sandbox runs no database, so each context's logins are unreachable
    // (exit 8), in one table.
    let verify = two.run(&[
        "verify",
        "pg/pg-demo",
        "--context",
        "a,b",
        "--login-timeout",
        "2s",
    ]);
    verify.expect(8);
    for ctx in ["a", "b"] {
        assert!(
            verify
                .stdout
                .lines()
                .any(|l| l.starts_with(&format!("{ctx} ")) && l.contains("unreachable")),
            "{}",
            verify.stdout
        );
        assert!(
            verify.stderr.contains(&format!("[{ctx}] error: ")),
            "{}",
            verify.stderr
        );
    }
    two.a.assert_no_password_printed();
}

#[test]
fn one_context_behaves_as_before_without_a_context_column() {
    let two = Two::start();
    let alone = two.a.run(&["list"], "", false);
    let named = two.run(&["list", "--context", "a"]);
    named.expect(0);
    assert_eq!(
        named.stdout.lines().next(),
        alone.expect(0).stdout.lines().next()
    );
    assert!(named.stdout.starts_with("KIND "), "{}", named.stdout);
    let doc = two.run(&["status", "pg/pg-demo", "--context", "b", "-o", "json"]);
    let doc = doc.expect(0).json();
    assert_eq!(doc["kind"], "RotationStatus");
    assert!(doc.get("context").is_none(), "{doc}");
}

#[test]
fn context_names_complete_after_a_comma() {
    let two = Two::start();
    let kubeconfig = two.kubeconfig().to_string_lossy().into_owned();
    let out = in_process(
        [
            "__complete",
            "list",
            "--kubeconfig",
            kubeconfig.as_str(),
            "--context",
            "a,",
        ],
        "",
        false,
    );
    out.expect(0);
    assert_eq!(out.stdout, "a,b\n:4\n");
}

#[test]
fn schedule_refuses_several_contexts_before_any_request() {
    let two = Two::start();
    let before = two.requests();
    let out = two.run(&[
        "schedule",
        "pg/pg-demo",
        "--every",
        "30d",
        "--context",
        "a,b",
    ]);
    out.expect(2);
    assert!(out.stderr.contains("once per context"), "{}", out.stderr);
    assert_eq!(two.requests(), before);
}
