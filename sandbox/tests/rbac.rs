//! RBAC, identity and impersonation: real kubectl (`auth can-i`, `auth whoami`, `--as`,
//! `create role|rolebinding`, `port-forward`) and kube-rs against the sandbox, which must
//! answer as kube-apiserver 1.32 does. kubectl from PATH or `$KUBECTL`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::config::{KubeConfigOptions, Kubeconfig};
use rotate_sandbox::{Options, SandboxHandle};
use serde_json::{json, Value};

mod support;

use support::{ok, refused, run};

/// A sandbox with the demo fixtures and a user `alice` (in group `team-a`) with a
/// kubeconfig of her own.
fn with_alice() -> (SandboxHandle, PathBuf) {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    sb.add_user("alice", &["team-a"]);
    let kc = sb.kubeconfig_for_user("alice").unwrap();
    (sb, kc)
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// Send a request with extra headers; the status, content type and body text.
async fn send(
    c: &kube::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String, String) {
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Accept", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if body.is_some() {
        b = b.header("Content-Type", "application/json");
    }
    let bytes = body.map(|v| v.to_string().into_bytes()).unwrap_or_default();
    let resp = c
        .send(b.body(kube::client::Body::from(bytes)).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.into_body().collect_bytes().await.unwrap();
    (code, ct, String::from_utf8_lossy(&body).into_owned())
}

fn secret_reader(sb: &SandboxHandle) {
    sb.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: demo}
rules:
- {apiGroups: [\"\"], resources: [secrets], resourceNames: [pg-demo-auth], verbs: [get]}
",
    )
    .unwrap();
    sb.bind("alice", "Role", "secret-reader", Some("demo"))
        .unwrap();
}

#[test]
fn kubectl_auth_can_i_says_yes_or_no_with_exit_codes_zero_and_one() {
    let (sb, alice) = with_alice();
    let admin = sb.kubeconfig_path();
    assert_eq!(
        ok(admin, &["auth", "can-i", "delete", "secrets", "-A"]),
        "yes\n"
    );
    let (code, out, _) = run(
        admin,
        &[
            "--context",
            "sandbox-bob",
            "auth",
            "can-i",
            "get",
            "secrets",
        ],
    );
    assert_eq!((code, out.as_str()), (1, "no\n"), "bob is bound to nothing");
    assert_eq!(
        ok(
            admin,
            &[
                "--context",
                "sandbox-bob",
                "auth",
                "can-i",
                "create",
                "selfsubjectaccessreviews"
            ]
        ),
        "yes\n",
        "every authenticated user may review himself (system:basic-user)"
    );

    secret_reader(&sb);
    assert_eq!(
        ok(&alice, &["auth", "can-i", "get", "secret/pg-demo-auth"]),
        "yes\n"
    );
    let (code, out, _) = run(&alice, &["auth", "can-i", "get", "secret/md-demo-auth"]);
    assert_eq!((code, out.as_str()), (1, "no\n"));
    let (code, _, _) = run(&alice, &["auth", "can-i", "list", "secrets", "--quiet"]);
    assert_eq!(code, 1, "resourceNames never allow a list");
    // As the admin, for alice: impersonation reaches the review too.
    assert_eq!(
        ok(
            admin,
            &[
                "auth",
                "can-i",
                "get",
                "secret/pg-demo-auth",
                "--as",
                "alice",
                "-n",
                "demo"
            ]
        ),
        "yes\n"
    );

    let list = ok(&alice, &["auth", "can-i", "--list", "-n", "demo"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("secrets "))
        .unwrap_or_else(|| panic!("no secrets row:\n{list}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        vec!["secrets", "[]", "[pg-demo-auth]", "[get]"],
        "{list}"
    );
    assert!(
        list.lines().any(
            |l| l.starts_with("selfsubjectreviews.authentication.k8s.io")
                && l.ends_with("[create]")
        ),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["[/api/*]", "[]", "[get]"]),
        "discovery, from system:discovery:\n{list}"
    );
}

#[test]
fn kubectl_auth_whoami_shows_the_user_and_the_one_impersonated() {
    let (sb, alice) = with_alice();
    let admin = sb.kubeconfig_path();
    let who = |out: String| -> Vec<String> {
        out.lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        who(ok(admin, &["auth", "whoami"])),
        [
            "Username sandbox-admin",
            "Groups [system:masters system:authenticated]"
        ]
    );
    assert_eq!(
        who(ok(&alice, &["auth", "whoami"])),
        ["Username alice", "Groups [team-a system:authenticated]"]
    );
    assert_eq!(
        who(ok(
            admin,
            &["--as", "alice", "--as-group", "g", "auth", "whoami"]
        )),
        ["Username alice", "Groups [g system:authenticated]"],
        "the groups asked for, system:authenticated added"
    );
    assert_eq!(
        who(ok(
            admin,
            &["--as", "alice", "--as-uid", "u-1", "auth", "whoami"]
        )),
        ["Username alice", "UID u-1", "Groups [system:authenticated]"]
    );
    assert_eq!(
        who(ok(
            admin,
            &[
                "--as",
                "system:serviceaccount:demo:rotator",
                "auth",
                "whoami"
            ]
        )),
        [
            "Username system:serviceaccount:demo:rotator",
            "Groups [system:serviceaccounts system:serviceaccounts:demo system:authenticated]"
        ]
    );
    // bob may not impersonate: kubectl's discovery is refused first (it prints the 403 of
    // a discovery request as "unknown", as against a real server), then the review.
    sb.faults().reset_counts();
    let err = refused(
        admin,
        &[
            "--context",
            "sandbox-bob",
            "--as",
            "alice",
            "--as-group",
            "g",
            "auth",
            "whoami",
        ],
    );
    assert!(
        err.contains("Forbidden") || err.contains("selfsubjectreviews"),
        "{err}"
    );
    let log = sb.faults().requests();
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r.user.as_deref(), Some("bob"));
        assert_eq!(r.impersonation.user.as_deref(), Some("alice"));
        assert_eq!(r.impersonation.groups, ["g"]);
        assert!(!r.allowed && r.acting_as.is_none(), "{r:?}");
    }
}

#[test]
fn a_role_with_resource_names_lets_alice_get_one_secret_and_not_another() {
    let (sb, alice) = with_alice();
    let admin = sb.kubeconfig_path();
    assert_eq!(
        ok(
            admin,
            &[
                "create",
                "role",
                "secret-reader",
                "-n",
                "demo",
                "--verb=get",
                "--resource=secrets",
                "--resource-name=pg-demo-auth"
            ]
        ),
        "role.rbac.authorization.k8s.io/secret-reader created\n"
    );
    assert_eq!(
        ok(
            admin,
            &[
                "create",
                "rolebinding",
                "alice-reads",
                "-n",
                "demo",
                "--role=secret-reader",
                "--user=alice"
            ]
        ),
        "rolebinding.rbac.authorization.k8s.io/alice-reads created\n"
    );
    let table = ok(admin, &["get", "rolebinding", "alice-reads", "-n", "demo"]);
    assert!(
        table.starts_with("NAME") && table.contains("Role/secret-reader"),
        "{table}"
    );
    assert_eq!(
        ok(&alice, &["get", "secret", "pg-demo-auth", "-o", "name"]),
        "secret/pg-demo-auth\n"
    );
    let err = refused(&alice, &["get", "secret", "md-demo-auth"]);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): secrets \"md-demo-auth\" is forbidden: User \"alice\" cannot get resource \"secrets\" in API group \"\" in the namespace \"demo\""
    );
    let err = refused(&alice, &["get", "secrets"]);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"demo\""
    );
    let err = refused(&alice, &["delete", "secret", "pg-demo-auth"]);
    assert!(err.contains("cannot delete resource \"secrets\""), "{err}");

    // The roleRef of a binding cannot change; a binding to a missing role says so.
    let err = refused(
        admin,
        &[
            "patch",
            "rolebinding",
            "alice-reads",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            r#"{"roleRef":{"name":"other"}}"#,
        ],
    );
    assert!(
        err.contains("roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"),
        "{err}"
    );
    ok(
        admin,
        &[
            "create",
            "rolebinding",
            "dangling",
            "-n",
            "demo",
            "--role=missing",
            "--user=alice",
        ],
    );
    let err = refused(&alice, &["get", "secret", "md-demo-auth"]);
    assert!(
        err.trim().ends_with(
            "in the namespace \"demo\": RBAC: role.rbac.authorization.k8s.io \"missing\" not found"
        ),
        "{err}"
    );
}

#[test]
fn a_cluster_role_bound_in_a_namespace_grants_it_in_that_namespace_only() {
    let (sb, alice) = with_alice();
    let admin = sb.kubeconfig_path();
    ok(
        admin,
        &[
            "create",
            "clusterrole",
            "pg-reader",
            "--verb=get,list",
            "--resource=postgreses.kubedb.com",
        ],
    );
    ok(
        admin,
        &[
            "create",
            "rolebinding",
            "pg-readers",
            "-n",
            "demo",
            "--clusterrole=pg-reader",
            "--group=team-a",
        ],
    );
    assert!(ok(&alice, &["get", "pg", "-n", "demo", "-o", "name"])
        .contains("postgres.kubedb.com/pg-demo"));
    let err = refused(&alice, &["get", "pg", "-n", "default"]);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): postgreses.kubedb.com is forbidden: User \"alice\" cannot list resource \"postgreses\" in API group \"kubedb.com\" in the namespace \"default\""
    );
    let err = refused(&alice, &["get", "pg", "-A"]);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): postgreses.kubedb.com is forbidden: User \"alice\" cannot list resource \"postgreses\" in API group \"kubedb.com\" at the cluster scope"
    );
    // A ClusterRoleBinding grants it everywhere.
    ok(
        admin,
        &[
            "create",
            "clusterrolebinding",
            "pg-readers",
            "--clusterrole=pg-reader",
            "--user=alice",
        ],
    );
    assert!(ok(&alice, &["get", "pg", "-A", "-o", "name"]).contains("pg-demo"));

    // The aggregated `view` role reads pods but not Secrets.
    sb.bind("alice", "ClusterRole", "view", Some("demo"))
        .unwrap();
    ok(&alice, &["get", "pods", "-n", "demo"]);
    assert!(refused(&alice, &["get", "secrets", "-n", "demo"])
        .contains("cannot list resource \"secrets\""));
}

/// A watch of every Postgres in `demo`.
const WATCH_ALL: &[&str] = &[
    "get",
    "pg",
    "-n",
    "demo",
    "--watch-only",
    "--request-timeout=5s",
];

#[test]
fn watch_is_a_verb_of_its_own() {
    let (sb, alice) = with_alice();
    let admin = sb.kubeconfig_path();
    ok(
        admin,
        &[
            "create",
            "role",
            "pg-lister",
            "-n",
            "demo",
            "--verb=get,list",
            "--resource=postgreses.kubedb.com",
        ],
    );
    ok(
        admin,
        &[
            "create",
            "rolebinding",
            "pg-lister",
            "-n",
            "demo",
            "--role=pg-lister",
            "--user=alice",
        ],
    );
    let err = refused(&alice, WATCH_ALL);
    assert!(
        err.contains("postgreses.kubedb.com is forbidden: User \"alice\" cannot watch resource \"postgreses\" in API group \"kubedb.com\" in the namespace \"demo\""),
        "{err}"
    );
    ok(
        admin,
        &[
            "create",
            "role",
            "pg-watcher",
            "-n",
            "demo",
            "--verb=watch",
            "--resource=postgreses.kubedb.com",
            "--resource-name=pg-demo",
        ],
    );
    ok(
        admin,
        &[
            "create",
            "rolebinding",
            "pg-watcher",
            "-n",
            "demo",
            "--role=pg-watcher",
            "--user=alice",
        ],
    );
    // A watch of one object selects it by name: resourceNames apply to it.
    let mut child = Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .args([
            "get", "pg", "pg-demo", "-n", "demo", "--watch", "-o", "name",
        ])
        .env("KUBECONFIG", &alice)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let still_watching = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        still_watching,
        "the watch was refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let watches: Vec<_> = sb
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.method == "WATCH" && r.acting_as.as_deref() == Some("alice"))
        .collect();
    assert!(
        watches
            .iter()
            .any(|r| r.allowed && r.attributes.verb == "watch" && r.attributes.name == "pg-demo"),
        "{watches:?}"
    );
    let err = refused(&alice, WATCH_ALL);
    assert!(
        err.contains("cannot watch resource \"postgreses\""),
        "a watch of all is not: {err}"
    );
}

/// A Running pod `demo/db-0` whose port 5432 forwards to a TCP listener.
fn pod_with_a_port(sb: &SandboxHandle) -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let pods = sb.shared().registry.find("", "v1", "pods").unwrap().clone();
    sb.store()
        .create(
            &pods,
            "demo",
            json!({
                "metadata": {"name": "db-0", "annotations": {"sandbox.kubectl-rotate.dev/forward": format!("5432={}", l.local_addr().unwrap())}},
                "spec": {"containers": [{"name": "db", "image": "postgres"}]},
                "status": {"phase": "Running", "podIP": "10.244.0.10"},
            }),
            false,
        )
        .unwrap();
    l
}

/// `kubectl port-forward pod/db-0 :5432`: Ok once it forwards, Err(stderr) when it exits.
fn kubectl_port_forward(kc: &Path) -> Result<(), String> {
    let mut child = Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .args([
            "port-forward",
            "pod/db-0",
            "-n",
            "demo",
            "--address",
            "127.0.0.1",
            ":5432",
        ])
        .env("KUBECONFIG", kc)
        .env_remove("KUBECTL_PORT_FORWARD_WEBSOCKETS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("Forwarding from") {
                let _ = tx.send(());
            }
        }
    });
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if rx.try_recv().is_ok() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        if child.try_wait().unwrap().is_some() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Err(err);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("kubectl port-forward neither forwarded nor exited");
}

#[test]
fn kubectl_port_forward_needs_create_on_pods_portforward() {
    let (sb, alice) = with_alice();
    let _listener = pod_with_a_port(&sb);
    sb.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: demo}
rules:
- {apiGroups: [\"\"], resources: [pods], verbs: [get]}
",
    )
    .unwrap();
    sb.bind("alice", "Role", "pod-reader", Some("demo"))
        .unwrap();
    // kubectl 1.32 tries a WebSocket (GET: verb get), then falls back to SPDY (POST: create).
    let err = kubectl_port_forward(&alice).unwrap_err();
    assert!(
        err.contains("pods \"db-0\" is forbidden: User \"alice\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"demo\""),
        "{err}"
    );
    sb.faults().reset_counts();
    sb.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: port-forwarder, namespace: demo}
rules:
- {apiGroups: [\"\"], resources: [pods/portforward], verbs: [create]}
",
    )
    .unwrap();
    sb.bind("alice", "Role", "port-forwarder", Some("demo"))
        .unwrap();
    kubectl_port_forward(&alice).expect("create on pods/portforward is enough for kubectl");
    let tries: Vec<(String, String, bool)> = sb
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .map(|r| (r.method, r.attributes.verb, r.allowed))
        .collect();
    assert_eq!(
        tries,
        [
            ("GET".into(), "get".into(), false),
            ("POST".into(), "create".into(), true)
        ],
        "the WebSocket refused, SPDY allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_port_forward_needs_get_and_from_1_35_create_too() {
    for needs_create in [false, true] {
        let sb = SandboxHandle::start(Options {
            websocket_upgrade_needs_create: needs_create,
            ..Options::empty()
        })
        .unwrap();
        sb.add_user("alice", &[]);
        let alice = client(&sb.kubeconfig_for_user("alice").unwrap()).await;
        let _listener = pod_with_a_port(&sb);
        let pods: kube::Api<Pod> = kube::Api::namespaced(alice, "demo");
        let role = |verbs: &str| {
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: pf, namespace: demo}}
rules:
- {{apiGroups: [\"\"], resources: [pods/portforward], verbs: [{verbs}]}}
"
            )
        };
        sb.apply_yaml(&role("create")).unwrap();
        sb.bind("alice", "Role", "pf", Some("demo")).unwrap();
        let e = pods.portforward("db-0", &[5432]).await.err();
        assert!(e.is_some(), "a WebSocket (GET) with create only");
        sb.apply_yaml(&role("get")).unwrap();
        let got = pods.portforward("db-0", &[5432]).await;
        assert_eq!(
            got.is_ok(),
            !needs_create,
            "get only (1.35 check on: {needs_create})"
        );
        sb.apply_yaml(&role("get, create")).unwrap();
        pods.portforward("db-0", &[5432])
            .await
            .expect("get and create work on every version");
        let allowed = sb
            .faults()
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/portforward") && r.allowed && r.attributes.verb == "get")
            .count();
        assert_eq!(allowed, if needs_create { 1 } else { 2 });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_is_authorized_for_each_header_and_recorded() {
    let (sb, alice_kc) = with_alice();
    let admin = client(sb.kubeconfig_path()).await;
    let alice = client(&alice_kc).await;
    let ssr = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let body =
        || Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}));

    // The admin may impersonate anyone, with a uid, groups and extras.
    let (code, _, text) = send(
        &admin,
        "POST",
        ssr,
        &[
            ("Impersonate-User", "carol"),
            ("Impersonate-Group", "g1"),
            ("Impersonate-Group", "g2"),
            ("Impersonate-Uid", "u-7"),
            ("Impersonate-Extra-Scopes", "view"),
        ],
        body(),
    )
    .await;
    assert_eq!(code, 201, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["status"]["userInfo"],
        json!({"username": "carol", "uid": "u-7", "groups": ["g1", "g2", "system:authenticated"], "extra": {"scopes": ["view"]}})
    );
    let logged = sb
        .faults()
        .requests()
        .into_iter()
        .find(|r| r.path == ssr)
        .unwrap();
    assert_eq!(logged.user.as_deref(), Some("sandbox-admin"));
    assert_eq!(logged.acting_as.as_deref(), Some("carol"));
    assert_eq!(logged.impersonation.user.as_deref(), Some("carol"));
    assert_eq!(logged.impersonation.groups, ["g1", "g2"]);
    assert_eq!(logged.impersonation.uid.as_deref(), Some("u-7"));
    assert_eq!(
        logged.impersonation.extra,
        [("scopes".to_string(), "view".to_string())]
    );

    // Groups without a user: the real filter's plain-text 500.
    let (code, ct, text) = send(
        &admin,
        "GET",
        "/api/v1/namespaces?limit=500",
        &[("Impersonate-Group", "g")],
        None,
    )
    .await;
    assert_eq!((code, ct.as_str()), (500, "text/plain; charset=utf-8"));
    assert_eq!(
        text,
        "Internal Server Error: \"/api/v1/namespaces?limit=500\": requested [{Group  g    }] without impersonating a user\n"
    );

    // alice may impersonate bob, and nobody else, nor a uid.
    sb.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-bob}
rules:
- {apiGroups: [\"\"], resources: [users], resourceNames: [bob], verbs: [impersonate]}
",
    )
    .unwrap();
    sb.bind("alice", "ClusterRole", "impersonate-bob", None)
        .unwrap();
    let (code, _, text) = send(&alice, "POST", ssr, &[("Impersonate-User", "bob")], body()).await;
    assert_eq!(code, 201, "{text}");
    assert!(text.contains("\"username\":\"bob\""), "{text}");
    let refusal = |headers: &'static [(&'static str, &'static str)]| {
        let alice = alice.clone();
        async move {
            let (code, _, text) = send(&alice, "POST", ssr, headers, body()).await;
            assert_eq!(code, 403, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            (
                v["message"].as_str().unwrap_or("").to_string(),
                v["details"].clone(),
            )
        }
    };
    assert_eq!(
        refusal(&[("Impersonate-User", "carol")]).await,
        (
            "users \"carol\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope".into(),
            json!({"name": "carol", "kind": "users"})
        )
    );
    assert_eq!(
        refusal(&[("Impersonate-User", "bob"), ("Impersonate-Uid", "u-1")]).await,
        (
            "uids.authentication.k8s.io \"u-1\" is forbidden: User \"alice\" cannot impersonate resource \"uids\" in API group \"authentication.k8s.io\" at the cluster scope".into(),
            json!({"name": "u-1", "group": "authentication.k8s.io", "kind": "uids"})
        )
    );
    assert_eq!(
        refusal(&[("Impersonate-User", "system:serviceaccount:demo:sa")]).await.0,
        "serviceaccounts \"sa\" is forbidden: User \"alice\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"demo\""
    );
    // The HTTP form of the log.
    let (code, _, text) = send(&admin, "GET", "/sandbox/requests", &[], None).await;
    assert_eq!(code, 200);
    let log: Value = serde_json::from_str(&text).unwrap();
    assert!(
        log["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["user"] == "alice"
                && r["impersonate"]["user"] == "carol"
                && r["allowed"] == false),
        "{}",
        log["log"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reviews_give_the_authorizers_reason() {
    let (sb, alice_kc) = with_alice();
    secret_reader(&sb);
    let alice = client(&alice_kc).await;
    let admin = client(sb.kubeconfig_path()).await;
    let ssar = |name: &str| {
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "demo", "verb": "get", "resource": "secrets", "name": name}}}),
        )
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (code, _, text) = send(&alice, "POST", path, &[], ssar("pg-demo-auth")).await;
    assert_eq!(code, 201, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"secret-reader-alice/demo\" of Role \"secret-reader\" to User \"alice\""})
    );
    assert_eq!(v["metadata"], json!({"creationTimestamp": null}));
    let (_, _, text) = send(&alice, "POST", path, &[], ssar("md-demo-auth")).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], json!({"allowed": false}));
    // The admin is allowed before RBAC is asked: no reason.
    let (_, _, text) = send(&admin, "POST", path, &[], ssar("md-demo-auth")).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], json!({"allowed": true}));
    // Neither attributes: 422.
    let (code, _, text) = send(&alice, "POST", path, &[], Some(json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "spec": {}}))).await;
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        ),
        "{text}"
    );
    // A SubjectAccessReview asks about someone else, for whoever may create one.
    let sar = Some(
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "resourceAttributes": {"namespace": "demo", "verb": "get", "resource": "secrets", "name": "pg-demo-auth"}}}),
    );
    let sar_path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let (code, _, text) = send(&admin, "POST", sar_path, &[], sar.clone()).await;
    assert_eq!(code, 201, "{text}");
    assert!(text.contains("\"allowed\":true"), "{text}");
    let (code, _, text) = send(&alice, "POST", sar_path, &[], sar).await;
    assert_eq!(code, 403, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_see_only_the_public_paths() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    cfg.auth_info = Default::default();
    let anonymous = kube::Client::try_from(cfg).unwrap();
    for path in ["/version", "/healthz", "/readyz", "/livez"] {
        assert_eq!(
            send(&anonymous, "GET", path, &[], None).await.0,
            200,
            "{path}"
        );
    }
    let (code, _, text) = send(&anonymous, "GET", "/api", &[], None).await;
    assert_eq!(code, 403);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/api\""
    );
    assert_eq!(v["details"], json!({}));
    let (code, _, text) = send(
        &anonymous,
        "GET",
        "/api/v1/namespaces/demo/secrets",
        &[],
        None,
    )
    .await;
    assert_eq!(code, 403);
    assert!(
        text.contains("User \\\"system:anonymous\\\" cannot list resource \\\"secrets\\\""),
        "{text}"
    );
}

#[test]
fn the_plugins_cluster_roles_are_accepted_and_grant_what_their_comments_say() {
    let (sb, alice) = with_alice();
    let admin = sb.kubeconfig_path();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rbac");
    let dir = dir.to_str().unwrap();
    let out = ok(admin, &["apply", "-f", dir]);
    assert_eq!(
        out,
        "clusterrole.rbac.authorization.k8s.io/kubectl-rotate-rotator created\nclusterrole.rbac.authorization.k8s.io/kubectl-rotate-viewer created\n"
    );
    assert!(ok(admin, &["apply", "-f", dir])
        .lines()
        .all(|l| l.ends_with(" unchanged")));
    ok(
        admin,
        &[
            "create",
            "rolebinding",
            "alice-rotates",
            "-n",
            "demo",
            "--clusterrole=kubectl-rotate-rotator",
            "--user=alice",
        ],
    );
    for (args, want) in [
        (&["create", "postgresopsrequests.ops.kubedb.com"][..], "yes"),
        (&["watch", "postgresopsrequests.ops.kubedb.com"][..], "yes"),
        (
            &["patch", "sqlmanagedinstances.sql.arcdata.microsoft.com"][..],
            "yes",
        ),
        (&["update", "leases.coordination.k8s.io"][..], "yes"),
        (&["create", "secrets"][..], "yes"),
        (&["delete", "secrets"][..], "no"),
        (&["patch", "postgreses.kubedb.com"][..], "no"),
        (&["list", "secrets"][..], "no"),
    ] {
        let mut a = vec!["auth", "can-i"];
        a.extend_from_slice(args);
        let (_, out, _) = run(&alice, &a);
        assert_eq!(out.trim(), want, "can-i {}", args.join(" "));
    }
    ok(
        admin,
        &[
            "create",
            "rolebinding",
            "alice-views",
            "-n",
            "demo",
            "--clusterrole=kubectl-rotate-viewer",
            "--user=alice",
        ],
    );
    assert_eq!(
        ok(
            &alice,
            &[
                "auth",
                "can-i",
                "create",
                "pods",
                "--subresource=portforward"
            ]
        )
        .trim(),
        "yes"
    );
    assert_eq!(
        ok(&alice, &["auth", "can-i", "list", "secrets"]).trim(),
        "yes"
    );
    let (_, out, _) = run(&alice, &["auth", "can-i", "list", "secrets", "-A"]);
    assert_eq!(out.trim(), "no", "bound in demo only");
}
