//! Fault hooks: a test can make the next requests to a path fail or stall, over HTTP
//! (for tests that drive the sandbox from another process) or in-process.

use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use rotate_sandbox::{Options, SandboxHandle};

async fn admin(sb: &SandboxHandle) -> kube::Client {
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

async fn call(
    c: &kube::Client,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Accept", "application/json");
    if body.is_some() {
        b = b.header("Content-Type", "application/json");
    }
    let req = b
        .body(kube::client::Body::from(
            body.unwrap_or("").as_bytes().to_vec(),
        ))
        .unwrap();
    let resp = c.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_n_requests_to_a_path_fail_with_the_planned_code_then_pass() {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let c = admin(&sb).await;
    let path = "/api/v1/namespaces/demo/secrets/pg-demo-auth";
    let (code, _) = call(
        &c,
        "POST",
        "/sandbox/faults",
        Some(r#"{"failNext": {"method": "GET", "pathPrefix": "/api/v1/namespaces/demo/secrets/pg-demo-auth", "count": 2, "code": 500}}"#),
    )
    .await;
    assert_eq!(code, 200);
    for _ in 0..2 {
        let (code, body) = call(&c, "GET", path, None).await;
        assert_eq!(code, 500);
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["reason"], "InternalError");
    }
    assert_eq!(call(&c, "GET", path, None).await.0, 200);
    // Requests are counted for benchmarks.
    let count = |counts: &serde_json::Value| {
        counts["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == path)
            .unwrap()["count"]
            .as_u64()
    };
    let (_, counts) = call(&c, "GET", "/sandbox/requests", None).await;
    assert_eq!(count(&counts), Some(3));
    // NB: kube-rs retries 503s by itself, so two planned 503s cost three requests and the
    // caller sees success: what a client of a flaky real apiserver sees.
    sb.faults().fail_next(Some("GET"), path, 2, 503);
    assert_eq!(call(&c, "GET", path, None).await.0, 200);
    let (_, counts) = call(&c, "GET", "/sandbox/requests", None).await;
    assert_eq!(count(&counts), Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_delay_holds_the_request_back() {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let c = admin(&sb).await;
    sb.faults().delay_next(
        None,
        "/api/v1/namespaces/demo/secrets",
        1,
        Duration::from_millis(700),
    );
    let t = Instant::now();
    assert_eq!(
        call(&c, "GET", "/api/v1/namespaces/demo/secrets", None)
            .await
            .0,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(700));
    let t = Instant::now();
    assert_eq!(
        call(&c, "GET", "/api/v1/namespaces/demo/secrets", None)
            .await
            .0,
        200
    );
    assert!(t.elapsed() < Duration::from_millis(700));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_hooks_are_refused_to_other_users() {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(
        kc,
        &KubeConfigOptions {
            context: Some("sandbox-bob".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let bob = kube::Client::try_from(cfg).unwrap();
    let (code, _) = call(
        &bob,
        "POST",
        "/sandbox/faults",
        Some(r#"{"failNext": {"pathPrefix": "/", "count": 1}}"#),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        sb.faults().check("GET", "/api", false),
        rotate_sandbox::faults::Action::Pass
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latency_model_delays_each_request_and_the_timeline_counts_round_trips() {
    let sb = SandboxHandle::start(Options {
        latency: rotate_sandbox::Latency {
            round_trip: Duration::from_millis(60),
            per_kib: Duration::ZERO,
        },
        ..Options::demo()
    })
    .unwrap();
    let c = admin(&sb).await;
    sb.faults().reset_counts();
    // Three at once are one round trip deep; one after them is the second.
    let t = Instant::now();
    let paths = [
        "/api/v1/namespaces/demo/secrets",
        "/api/v1/namespaces/demo/pods",
        "/api/v1/namespaces",
    ];
    let codes = futures::future::join_all(paths.iter().map(|p| call(&c, "GET", p, None))).await;
    assert!(codes.iter().all(|(code, _)| *code == 200));
    assert!(
        t.elapsed() >= Duration::from_millis(60),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        sb.faults().critical_path(),
        1,
        "{:?}",
        sb.faults().timeline()
    );
    call(&c, "GET", "/api/v1/namespaces/demo/secrets", None).await;
    assert_eq!(
        sb.faults().critical_path(),
        2,
        "{:?}",
        sb.faults().timeline()
    );
    assert_eq!(sb.faults().timeline().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_objects_carry_managed_fields_of_their_manager() {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let c = admin(&sb).await;
    let (code, body) = call(
        &c,
        "POST",
        "/api/v1/namespaces/demo/configmaps",
        Some(r#"{"metadata": {"name": "m", "labels": {"a": "b"}}, "data": {"k": "v"}}"#),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let mf = &body["metadata"]["managedFields"][0];
    assert_eq!(mf["operation"], "Update");
    assert_eq!(mf["fieldsType"], "FieldsV1");
    assert_eq!(
        mf["fieldsV1"]["f:metadata"]["f:labels"]["f:a"],
        serde_json::json!({})
    );
    assert_eq!(mf["fieldsV1"]["f:data"]["f:k"], serde_json::json!({}));
    // This raw request sends no User-Agent, where kube-apiserver takes the manager from.
    assert_eq!(mf["manager"], "unknown", "{mf}");
}
