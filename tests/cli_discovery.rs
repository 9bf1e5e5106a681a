//! Input checks that happen before any API call, and discovery of clusters where an operator
//! is missing (served by a tiny fake API server: the sandbox always has every CRD).

mod cli_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

use cli_support::BIN;

fn run(args: &[&str]) -> cli_support::Out {
    let o = Command::new(BIN)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run");
    cli_support::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn an_unknown_type_is_a_usage_error_found_before_reading_any_kubeconfig() {
    let out = run(&["auth", "pods/x", "--kubeconfig", "/nonexistent/kubeconfig"]);
    out.expect(2);
    assert!(
        out.stderr.contains("unknown TYPE \"pods\""),
        "{}",
        out.stderr
    );
}

#[test]
fn an_invalid_name_is_a_usage_error() {
    let out = run(&[
        "auth",
        "pg/Not_Valid",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    out.expect(2);
    assert!(out.stderr.contains("invalid name"), "{}", out.stderr);
}

#[test]
fn a_missing_kubeconfig_is_an_error_that_names_it() {
    let out = run(&[
        "auth",
        "pg/pg-demo",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    out.expect(1);
    assert!(
        out.stderr.contains("cannot load kubeconfig"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_context_is_an_error() {
    let env = cli_support::Env::demo();
    let out = env.rotate(&["auth", "pg/pg-demo", "--context", "nope"]);
    out.expect(1);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
}

/// A fake API server on plain HTTP answering discovery from `routes` (path -> JSON) and 404
/// otherwise. Returns a kubeconfig path for it (kept alive by the returned temp dir).
fn fake_api(
    routes: Vec<(&'static str, serde_json::Value)>,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap()
                .to_string();
            let (code, body) = match routes.iter().find(|(p, _)| *p == path) {
                Some((_, v)) => ("200 OK", v.to_string()),
                None => (
                    "404 Not Found",
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}).to_string(),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: demo\n\
             current-context: fake\nusers:\n- name: fake\n  user:\n    token: x\n"
        ),
    )
    .unwrap();
    (dir, path)
}

fn group(name: &str, version: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "versions": [{"groupVersion": format!("{name}/{version}"), "version": version}],
                       "preferredVersion": {"groupVersion": format!("{name}/{version}"), "version": version}})
}

#[test]
fn a_cluster_without_kubedb_says_the_kubedb_operator_is_not_installed() {
    let (_dir, kc) = fake_api(vec![(
        "/apis",
        serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
    )]);
    let out = run(&["auth", "pg/pg-demo", "--kubeconfig", kc.to_str().unwrap()]);
    out.expect(4);
    assert!(
        out.stderr.contains(
            "the KubeDB operator (kubedb.com) is not installed: no CRD for postgreses.kubedb.com"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_cluster_without_arc_says_the_arc_data_controller_is_not_installed() {
    let (_dir, kc) = fake_api(vec![(
        "/apis",
        serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
    )]);
    let out = run(&["auth", "sqlmi/x", "--kubeconfig", kc.to_str().unwrap()]);
    out.expect(4);
    assert!(
        out.stderr.contains(
            "the Azure Arc data controller (sql.arcdata.microsoft.com) is not installed: no CRD for sqlmanagedinstances.sql.arcdata.microsoft.com"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_cluster_with_kubedb_but_without_the_ops_manager_names_the_missing_ops_crd() {
    let (_dir, kc) = fake_api(vec![
        (
            "/apis",
            serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("kubedb.com", "v1")]}),
        ),
        (
            "/apis/kubedb.com/v1",
            serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "kubedb.com/v1", "resources": [
                {"name": "postgreses", "singularName": "postgres", "namespaced": true, "kind": "Postgres",
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"], "shortNames": ["pg"]}]}),
        ),
    ]);
    let out = run(&["auth", "pg/pg-demo", "--kubeconfig", kc.to_str().unwrap()]);
    out.expect(4);
    assert!(
        out.stderr
            .contains("no CRD for postgresopsrequests.ops.kubedb.com"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_cluster_with_kubedb_but_no_mssql_crd_names_the_missing_crd() {
    let (_dir, kc) = fake_api(vec![
        (
            "/apis",
            serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("kubedb.com", "v1")]}),
        ),
        (
            "/apis/kubedb.com/v1",
            serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "kubedb.com/v1", "resources": []}),
        ),
    ]);
    let out = run(&[
        "auth",
        "ms/mssql-demo",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    out.expect(4);
    assert!(
        out.stderr.contains("no CRD for mssqlservers.kubedb.com"),
        "{}",
        out.stderr
    );
}
