//! Fidelity: replay every request recorded from a real kube-apiserver (v1.32, KubeDB's
//! published CRDs, Arc CRDs, no controllers) against the sandbox, through kube-rs's
//! client, and compare the answers: status code, content type, and the shape of the
//! body (its keys, recursively; `kind`, `apiVersion`, Status `reason`/`code`/`message`,
//! watch event types), ignoring values that differ on every run (uids,
//! resourceVersions, timestamps, managedFields, generated name suffixes, continue tokens).
//!
//! The transcripts live in ../shared/apiserver-transcripts (read-only, beside the
//! checkout, as on CI); a copy is kept in sandbox/tests/data/apiserver-transcripts so the test
//! also runs where shared/ is absent.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

fn transcripts_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../../shared/apiserver-transcripts");
    if shared.is_dir() {
        shared
    } else {
        root.join("tests/data/apiserver-transcripts")
    }
}

fn load(name_prefix: &str) -> Value {
    let dir = transcripts_dir();
    let entry = std::fs::read_dir(&dir)
        .expect("transcripts dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(name_prefix))
        .unwrap_or_else(|| panic!("no transcript {name_prefix} in {}", dir.display()));
    serde_json::from_slice(&std::fs::read(entry.path()).expect("read transcript"))
        .expect("transcript is JSON")
}

async fn client_for(
    kubeconfig: &std::path::Path,
    context: &str,
    token: Option<&str>,
) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(
        kc,
        &KubeConfigOptions {
            context: Some(context.into()),
            ..Default::default()
        },
    )
    .await
    .expect("config");
    if let Some(t) = token {
        cfg.auth_info.token = Some(t.to_string().into());
    }
    kube::Client::try_from(cfg).expect("client")
}

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

/// Send a transcript's request (optionally with the path rewritten) and read the answer.
/// A watch body is read as its list of events.
async fn send(client: &kube::Client, req: &Value, path: Option<&str>) -> Answer {
    let method = req["method"].as_str().unwrap();
    let path = path.unwrap_or_else(|| req["path"].as_str().unwrap());
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(h) = req["headers"].as_object() {
        for (k, v) in h {
            b = b.header(k.as_str(), v.as_str().unwrap());
        }
    }
    let body = match &req["body"] {
        Value::Null => Vec::new(),
        other => serde_json::to_vec(other).unwrap(),
    };
    let resp = client
        .send(b.body(kube::client::Body::from(body)).unwrap())
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    let body = if path.contains("watch=1") {
        let events: Vec<Value> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("watch event is JSON"))
            .collect();
        if events.len() == 1 && events[0]["type"] == "ERROR" {
            events.into_iter().next().unwrap()
        } else {
            Value::Array(events)
        }
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Answer {
        status,
        content_type,
        body,
    }
}

/// Keys whose values change on every run.
const VOLATILE: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "continue",
    "remainingItemCount",
    "lastTransitionTime",
    "serverAddress",
    "storageVersionHash",
];

/// Values compared exactly, wherever they appear.
const EXACT: &[&str] = &[
    "kind",
    "apiVersion",
    "reason",
    "code",
    "type",
    "namespace",
    "groupVersion",
];

/// Compare shapes; push a line per difference.
fn shape_diff(want: &Value, got: &Value, path: &str, diffs: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                if k == "managedFields" {
                    continue;
                }
                let p = format!("{path}.{k}");
                match g.get(k) {
                    None => diffs.push(format!("{p}: missing")),
                    Some(gv) => {
                        if VOLATILE.contains(&k.as_str()) {
                            continue;
                        }
                        if EXACT.contains(&k.as_str())
                            && (wv.is_string() || wv.is_number())
                            && wv != gv
                        {
                            diffs.push(format!("{p}: want {wv}, got {gv}"));
                            continue;
                        }
                        shape_diff(wv, gv, &p, diffs);
                    }
                }
            }
            for k in g.keys() {
                // NB: list order is by name, so a page may hold the generateName'd object
                // where the recording had the other one (its random suffix decides).
                if !w.contains_key(k) && k != "managedFields" && k != "generateName" {
                    diffs.push(format!("{path}.{k}: unexpected"));
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                diffs.push(format!("{path}: {} items, want {}", g.len(), w.len()));
            }
            for (i, (wv, gv)) in w.iter().zip(g.iter()).enumerate() {
                shape_diff(wv, gv, &format!("{path}[{i}]"), diffs);
            }
        }
        (w, g) => {
            let kind = |v: &Value| match v {
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            if kind(w) != kind(g) {
                diffs.push(format!("{path}: want a {}, got a {}", kind(w), kind(g)));
            }
        }
    }
}

fn assert_same(
    name: &str,
    want: &Value,
    got: &Answer,
    check_body: impl FnOnce(&Value, &Value, &mut Vec<String>),
) {
    let mut diffs = vec![];
    let wresp = &want["response"];
    if wresp["status"].as_u64() != Some(u64::from(got.status)) {
        diffs.push(format!(
            "status: want {}, got {}",
            wresp["status"], got.status
        ));
    }
    let wct = wresp["content_type"].as_str().unwrap_or("");
    if !got.content_type.starts_with(wct) {
        diffs.push(format!(
            "content type: want {wct}, got {}",
            got.content_type
        ));
    }
    check_body(&wresp["body"], &got.body, &mut diffs);
    let body = got.body.to_string();
    let body = &body[..body.len().min(1500)];
    assert!(
        diffs.is_empty(),
        "{name} differs from the real apiserver:\n  {}\nbody: {body}",
        diffs.join("\n  ")
    );
}

fn full_shape(want: &Value, got: &Value, diffs: &mut Vec<String>) {
    shape_diff(want, got, "", diffs)
}

/// Status bodies: shape, and the message word for word.
fn status_shape(want: &Value, got: &Value, diffs: &mut Vec<String>) {
    shape_diff(want, got, "", diffs);
    if want["message"] != got["message"] {
        diffs.push(format!(
            "message: want {}, got {}",
            want["message"], got["message"]
        ));
    }
}

/// The API groups whose discovery is compared whole: KubeDB's and Arc's, and the built-in
/// ones the sandbox serves (identity, access, leases).
const COMPARED_GROUPS: &[&str] = &[
    "kubedb.com",
    "ops.kubedb.com",
    "sql.arcdata.microsoft.com",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "rbac.authorization.k8s.io",
    "apps",
    "batch",
    "coordination.k8s.io",
];

/// Discovery lists: every resource the sandbox serves in a recorded group version looks
/// as the real one does; for KubeDB and Arc groups, the sandbox serves all of them.
fn discovery_resources(want: &Value, got: &Value, diffs: &mut Vec<String>, all_required: bool) {
    for k in ["kind", "apiVersion", "groupVersion"] {
        if want[k] != got[k] {
            diffs.push(format!("{k}: want {}, got {}", want[k], got[k]));
        }
    }
    let empty = vec![];
    let w = want["resources"].as_array().unwrap_or(&empty);
    let g = got["resources"].as_array().unwrap_or(&empty);
    for gr in g {
        let name = gr["name"].as_str().unwrap_or("");
        match w.iter().find(|x| x["name"] == gr["name"]) {
            None => diffs.push(format!("resource {name}: not served by the real server")),
            Some(wr) => {
                let mut wr = wr.clone();
                let mut gr = gr.clone();
                // Verb order is not significant.
                for v in [&mut wr, &mut gr] {
                    if let Some(a) = v["verbs"].as_array_mut() {
                        a.sort_by_key(|x| x.to_string());
                    }
                }
                shape_diff(&wr, &gr, name, diffs);
                for k in [
                    "kind",
                    "namespaced",
                    "shortNames",
                    "verbs",
                    "singularName",
                    "categories",
                ] {
                    if wr[k] != gr[k] {
                        diffs.push(format!("{name}.{k}: want {}, got {}", wr[k], gr[k]));
                    }
                }
            }
        }
    }
    if all_required {
        for wr in w {
            if !g.iter().any(|x| x["name"] == wr["name"]) {
                diffs.push(format!("resource {}: missing", wr["name"]));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_apiserver_answer_is_reproduced_by_the_sandbox() {
    let mut opts = rotate_sandbox::Options::empty();
    opts.controllers = false;
    let sb = rotate_sandbox::SandboxHandle::start(opts).expect("sandbox");
    // The recordings were made in namespace `transcripts`.
    let ns = sb
        .shared()
        .registry
        .find("", "v1", "namespaces")
        .unwrap()
        .clone();
    sb.store()
        .create(
            &ns,
            "",
            serde_json::json!({"metadata": {"name": "transcripts"}}),
            false,
        )
        .unwrap();
    let kc = sb.kubeconfig_path();
    let admin = client_for(kc, "sandbox", None).await;

    // Discovery.
    let t = load("01-");
    let a = send(&admin, &t["request"], None).await;
    assert_same("01-discovery-core", &t, &a, full_shape);

    let t = load("02-");
    let a = send(&admin, &t["request"], None).await;
    assert_same("02-discovery-groups", &t, &a, |w, g, d| {
        let empty = vec![];
        for &group in COMPARED_GROUPS {
            let find = |v: &Value| {
                v["groups"]
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .find(|x| x["name"] == group)
                    .cloned()
            };
            match (find(w), find(g)) {
                (Some(wg), Some(gg)) if wg != gg => {
                    d.push(format!("group {group}: want {wg}, got {gg}"))
                }
                (Some(_), None) => d.push(format!("group {group}: missing")),
                _ => {}
            }
        }
        if w["kind"] != g["kind"] {
            d.push("kind differs".into());
        }
    });

    let t = load("03-");
    let a = send(&admin, &t["request"], None).await;
    assert_same("03-discovery-aggregated", &t, &a, |w, g, d| {
        let empty = vec![];
        for &group in COMPARED_GROUPS {
            let find = |v: &Value| {
                v["items"]
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .find(|x| x["metadata"]["name"] == group)
                    .cloned()
            };
            let (Some(wg), Some(gg)) = (find(w), find(g)) else {
                d.push(format!("group {group}: missing"));
                continue;
            };
            let wv: Vec<&Value> = wg["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| &v["version"])
                .collect();
            let gv: Vec<&Value> = gg["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| &v["version"])
                .collect();
            if wv != gv {
                d.push(format!("group {group} versions: want {wv:?}, got {gv:?}"));
            }
            for (wver, gver) in wg["versions"]
                .as_array()
                .unwrap()
                .iter()
                .zip(gg["versions"].as_array().unwrap())
            {
                for wr in wver["resources"].as_array().unwrap() {
                    match gver["resources"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|x| x["resource"] == wr["resource"])
                    {
                        None => d.push(format!(
                            "{group}/{}: {} missing",
                            wver["version"], wr["resource"]
                        )),
                        Some(gr) => {
                            let mut wr = wr.clone();
                            let mut gr = gr.clone();
                            for v in [&mut wr, &mut gr] {
                                if let Some(a) = v["verbs"].as_array_mut() {
                                    a.sort_by_key(|x| x.to_string());
                                }
                            }
                            if wr != gr {
                                d.push(format!("{group}/{}: want {wr}, got {gr}", wver["version"]));
                            }
                        }
                    }
                }
            }
        }
        if w["kind"] != g["kind"] || w["apiVersion"] != g["apiVersion"] {
            d.push("kind/apiVersion differ".into());
        }
    });

    for (prefix, all) in [("04-", true), ("05-", true), ("07-", false)] {
        let t = load(prefix);
        let a = send(&admin, &t["request"], None).await;
        assert_same(t["name"].as_str().unwrap(), &t, &a, |w, g, d| {
            discovery_resources(w, g, d, all)
        });
    }
    let t = load("06-");
    let a = send(&admin, &t["request"], None).await;
    assert_same("06-discovery-arc-group", &t, &a, full_shape);

    // Objects, in the recorded order: each step depends on the ones before.
    for prefix in [
        "08-", "09-", "10-", "11-", "12-", "13-", "14-", "15-", "16-", "17-", "18-", "19-", "20-",
    ] {
        let t = load(prefix);
        let a = send(&admin, &t["request"], None).await;
        let name = t["name"].as_str().unwrap().to_string();
        if t["response"]["body"]["kind"] == "Status" {
            assert_same(&name, &t, &a, status_shape);
        } else if prefix == "14-" {
            // Server-side Table: same columns; cells but for the Age.
            assert_same(&name, &t, &a, |w, g, d| {
                shape_diff(w, g, "", d);
                let names = |v: &Value| -> Vec<Value> {
                    v["columnDefinitions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["name"].clone())
                        .collect()
                };
                if names(w) != names(g) {
                    d.push(format!("columns: want {:?}, got {:?}", names(w), names(g)));
                }
                let cells = |v: &Value| -> Vec<Value> {
                    let c = v["rows"][0]["cells"].as_array().unwrap().clone();
                    c[..c.len() - 1].to_vec()
                };
                if cells(w) != cells(g) {
                    d.push(format!("cells: want {:?}, got {:?}", cells(w), cells(g)));
                }
            });
        } else {
            assert_same(&name, &t, &a, full_shape);
        }
        if prefix == "19-" {
            let n = a.body["metadata"]["name"].as_str().unwrap();
            assert!(
                n.starts_with("pg-1-rotate-auth-") && n.len() == "pg-1-rotate-auth-".len() + 5,
                "generated name {n}"
            );
        }
    }

    // Arc: create, the seed's merge patch, a JSON patch whose test fails (422), one whose
    // test passes, a PUT with a stale resourceVersion (409), a read at another version.
    for prefix in ["21-", "22-", "23-", "24-", "25-", "26-", "27-"] {
        let t = load(prefix);
        let a = send(&admin, &t["request"], None).await;
        let name = t["name"].as_str().unwrap().to_string();
        if t["response"]["body"]["kind"] == "Status" {
            assert_same(&name, &t, &a, status_shape);
        } else {
            assert_same(&name, &t, &a, full_shape);
        }
        if prefix == "22-" || prefix == "24-" {
            assert_eq!(
                a.body["metadata"]["generation"], t["response"]["body"]["metadata"]["generation"],
                "{name}: generation"
            );
        }
    }

    // Watch from a list's resourceVersion: a status change made meanwhile arrives as
    // MODIFIED (bookmarks are optional), then the server closes at timeoutSeconds.
    let t = load("28-");
    let list = send(
        &admin,
        &serde_json::json!({"method": "GET", "path": "/apis/ops.kubedb.com/v1alpha1/namespaces/transcripts/postgresopsrequests", "headers": {"Accept": "application/json"}, "body": null}),
        None,
    )
    .await;
    let rv = list.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!(
        "/apis/ops.kubedb.com/v1alpha1/namespaces/transcripts/postgresopsrequests?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=3"
    );
    let watcher = {
        let admin = admin.clone();
        let req = t["request"].clone();
        tokio::spawn(async move { send(&admin, &req, Some(&path)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let patch = serde_json::json!({
        "method": "PATCH",
        "path": "/apis/ops.kubedb.com/v1alpha1/namespaces/transcripts/postgresopsrequests/pg-1-rotate-auth-abc12/status",
        "headers": {"Accept": "application/json", "Content-Type": "application/merge-patch+json"},
        "body": {"status": t["response"]["body"][0]["object"]["status"].clone()},
    });
    assert_eq!(send(&admin, &patch, None).await.status, 200);
    let started = std::time::Instant::now();
    let a = watcher.await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "the watch ends at timeoutSeconds"
    );
    let events: Vec<&Value> = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "BOOKMARK")
        .collect();
    assert_eq!(events.len(), 1, "one MODIFIED event: {}", a.body);
    let mut d = vec![];
    shape_diff(&t["response"]["body"][0], events[0], "", &mut d);
    assert!(d.is_empty(), "28-ops-watch: {d:?}");

    // A watch from a compacted resourceVersion: 200 with one ERROR event, 410 Expired.
    sb.store().compact();
    let t = load("29-");
    let a = send(&admin, &t["request"], None).await;
    assert_same("29-watch-too-old", &t, &a, |w, g, d| {
        shape_diff(w, g, "", d);
        if !g["object"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("too old resource version: 1 (")
        {
            d.push(format!("message: {}", g["object"]["message"]));
        }
    });

    let t = load("30-");
    let a = send(&admin, &t["request"], None).await;
    assert_same("30-portforward-get", &t, &a, status_shape);

    // 403 for an authenticated user without grants, 401 for an unknown token.
    let bob = client_for(kc, "sandbox-bob", None).await;
    let t = load("31-");
    let a = send(&bob, &t["request"], None).await;
    assert_same("31-forbidden", &t, &a, status_shape);
    let stranger = client_for(kc, "sandbox", Some("not-a-token")).await;
    let t = load("32-");
    let a = send(&stranger, &t["request"], None).await;
    assert_same("32-unauthorized", &t, &a, status_shape);
}
