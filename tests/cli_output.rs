//! kubectl's output conventions against the sandbox: `--no-headers`, `-o jsonpath=`,
//! `-o custom-columns=`, and what a bad `-o` does (exit 2, no request made).

mod cli_support;

use cli_support::{Env, Out};

/// `kubectl rotate list -n demo ARGS`.
fn list_demo(env: &Env, args: &[&str]) -> Out {
    let argv: Vec<&str> = ["list", "-n", "demo"].iter().chain(args).copied().collect();
    rotate(env, &argv)
}

/// `kubectl rotate VERB pg/pg-demo -n demo -o OUTPUT`.
fn pg_demo(env: &Env, verb: &str, output: &str) -> Out {
    rotate(env, &[verb, "pg/pg-demo", "-n", "demo", "-o", output])
}

/// Runs the plugin in this process, stdin empty and not a terminal.
fn rotate(env: &Env, args: &[&str]) -> Out {
    env.run(args, "", false)
}

/// The demo namespace's databases, in `list`'s order.
const DEMO: [&str; 5] = ["mssql-demo", "md-demo", "pg-demo", "rd-demo", "sqlmi-demo"];

#[test]
fn no_headers_drops_the_header_line_of_every_table() {
    let env = Env::demo();
    let with = rotate(&env, &["list", "-n", "demo"]);
    let without = list_demo(&env, &["--no-headers"]);
    with.expect(0);
    without.expect(0);
    assert!(with.stdout.starts_with("KIND "), "{}", with.stdout);
    let lines: Vec<&str> = without.stdout.lines().collect();
    assert_eq!(lines.len(), DEMO.len(), "{}", without.stdout);
    assert!(!without.stdout.contains("KIND"), "{}", without.stdout);
    let cells: Vec<&str> = lines[0].split_whitespace().take(3).collect();
    assert_eq!(
        cells,
        ["MSSQLServer", "mssql-demo", "Ready"],
        "{}",
        lines[0]
    );
    let wide = list_demo(&env, &["-o", "wide", "--no-headers"]);
    assert!(
        !wide.expect(0).stdout.contains("REQUEST"),
        "{}",
        wide.stdout
    );
    let prev = rotate(&env, &["prev", "pg/pg-demo", "-n", "demo", "--no-headers"]);
    assert!(
        prev.expect(0).stdout.starts_with("current "),
        "{}",
        prev.stdout
    );
    env.assert_no_password_printed();
}

#[test]
fn jsonpath_prints_the_matches_space_separated() {
    let env = Env::demo();
    let out = list_demo(&env, &["-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(out.expect(0).stdout, DEMO.join(" "));
    let out = list_demo(
        &env,
        &[
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.prevKept}{"\n"}{end}"#,
        ],
    );
    let lines: Vec<&str> = out.expect(0).stdout.lines().collect();
    assert_eq!(lines.len(), DEMO.len(), "{}", out.stdout);
    assert_eq!(lines[2], "pg-demo\tfalse");
    let first = list_demo(&env, &["-o", "jsonpath={.items[0].metadata.name}"]);
    assert_eq!(first.expect(0).stdout, "mssql-demo");
    env.assert_no_password_printed();
}

#[test]
fn jsonpath_on_prev_and_status_reads_their_json_documents() {
    let env = Env::demo();
    let prev = pg_demo(&env, "prev", "jsonpath={.kind} {.credentials[*].role}");
    assert_eq!(prev.expect(0).stdout, "PreviousCredentials current");
    let json = pg_demo(&env, "status", "json");
    let kind = json.expect(0).json()["kind"].as_str().unwrap().to_string();
    let status = pg_demo(&env, "status", "jsonpath={.kind}{.nope}");
    assert_eq!(status.expect(0).stdout, kind);
    // The passwords are masked under a template as in -o json.
    let pw = pg_demo(&env, "prev", "jsonpath={.credentials[*].password}");
    assert!(pw.expect(0).stdout.contains("********"), "{}", pw.stdout);
    env.assert_no_password_printed();
}

#[test]
fn custom_columns_print_a_table_of_the_items() {
    let env = Env::demo();
    let out = list_demo(&env, &["-o", "custom-columns=NAME:.metadata.name"]);
    let expected: Vec<&str> = std::iter::once("NAME").chain(DEMO).collect();
    assert_eq!(out.expect(0).stdout.lines().collect::<Vec<_>>(), expected);
    let out = list_demo(
        &env,
        &[
            "--no-headers",
            "-o",
            "custom-columns=NAME:.metadata.name,MISSING:.x.y",
        ],
    );
    let lines: Vec<&str> = out.expect(0).stdout.lines().collect();
    assert_eq!(lines.len(), DEMO.len(), "{}", out.stdout);
    assert_eq!(lines[2], "pg-demo      <none>");
    env.assert_no_password_printed();
}

#[test]
fn a_bad_output_exits_2_before_any_request() {
    let env = Env::demo();
    let before = env.sb.faults().total_requests();
    for (args, says) in [
        (
            vec!["list", "-o", "jsonpath={.items["],
            "error parsing jsonpath",
        ),
        (
            vec!["auth", "pg/pg-demo", "-o", "jsonpath={range .x}"],
            "error parsing jsonpath",
        ),
        (
            vec!["list", "-o", "custom-columns=NAME"],
            "expected <header>:<json-path-expr>",
        ),
        (vec!["list", "-o", "jsonpath"], "no jsonpath template given"),
        (
            vec!["list", "-o", "go-template={{.x}}"],
            "unable to match a printer",
        ),
        (vec!["list", "-o", "tabel"], "allowed formats are:"),
    ] {
        let out = rotate(&env, &args);
        out.expect(2);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(
        env.sb.faults().total_requests(),
        before,
        "no request was made"
    );
    assert_eq!(env.ops_request_count(), 0);
}

#[test]
fn the_builtin_formats_still_parse() {
    let env = Env::demo();
    for f in ["table", "wide", "json", "yaml", "name"] {
        list_demo(&env, &["-o", f]).expect(0);
    }
}

#[test]
fn version_says_what_was_built_needs_no_cluster_and_prints_every_format() {
    // A kubeconfig that does not exist: version must not read it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-rotate"))
        .args([
            "version",
            "-o",
            "json",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "Version");
    assert_eq!(v["metadata"]["name"], "kubectl-rotate");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(head) = head {
        assert_eq!(
            v["gitCommit"],
            head.as_str(),
            "the commit it was built from"
        );
    }
    assert!(v["target"].as_str().is_some_and(|t| t.contains('-')), "{v}");
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-rotate"))
        .args(["version"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with(&format!("Version: {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let path = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-rotate"))
        .args(["version", "-o", "jsonpath={.version}"])
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&path.stdout),
        env!("CARGO_PKG_VERSION")
    );
}
