//! pods/portforward: kube-rs's port-forward reaches the address a pod's forward annotation
//! names, and an unmapped port answers on the error channel, as a kubelet does.

use k8s_openapi::api::core::v1::Pod;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Api;
use rotate_sandbox::{Options, SandboxHandle};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn admin(sb: &SandboxHandle) -> kube::Client {
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// A TCP server that answers every chunk with "echo:" + chunk.
async fn echo_server() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut out = b"echo:".to_vec();
                    out.extend_from_slice(&buf[..n]);
                    if s.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_forward_reaches_the_address_the_pod_is_mapped_to() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let backend = echo_server().await;
    let pods = sb.shared().registry.find("", "v1", "pods").unwrap().clone();
    sb.store()
        .create(
            &pods,
            "demo",
            json!({"metadata": {"name": "db-0", "annotations": {"sandbox.kubectl-rotate.dev/forward": format!("5432={backend}")}}}),
            false,
        )
        .unwrap();
    let api: Api<Pod> = Api::namespaced(admin(&sb).await, "demo");
    let mut pf = api
        .portforward("db-0", &[5432])
        .await
        .expect("port-forward upgrade");
    let mut stream = pf.take_stream(5432).unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut got = vec![0u8; 9];
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_exact(&mut got),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&got, b"echo:ping");
    drop(stream);
    tokio::time::timeout(std::time::Duration::from_secs(5), pf.join())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_port_reports_on_the_error_channel() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let pods = sb.shared().registry.find("", "v1", "pods").unwrap().clone();
    sb.store()
        .create(&pods, "demo", json!({"metadata": {"name": "db-0"}}), false)
        .unwrap();
    let api: Api<Pod> = Api::namespaced(admin(&sb).await, "demo");
    let mut pf = api
        .portforward("db-0", &[6379])
        .await
        .expect("port-forward upgrade");
    let err = pf.take_error(6379).unwrap();
    let msg = tokio::time::timeout(std::time::Duration::from_secs(5), err)
        .await
        .unwrap()
        .unwrap();
    assert!(
        msg.contains("error forwarding port 6379 to pod db-0"),
        "{msg}"
    );
    assert!(msg.contains("connection refused"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_forward_to_a_missing_pod_is_not_found() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let api: Api<Pod> = Api::namespaced(admin(&sb).await, "demo");
    let err = api
        .portforward("nope", &[5432])
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("404") || err.to_string().contains("not found"),
        "{err}"
    );
}
