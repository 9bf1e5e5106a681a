//! Real `kubectl port-forward` against the sandbox: SPDY/3.1, both tunnelled in a WebSocket
//! (kubectl's default since 1.31) and as a plain `Upgrade: SPDY/3.1`
//! (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`). kubectl from PATH or `$KUBECTL`
//! (scripts/test.sh provides one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rotate_sandbox::{Options, SandboxHandle};
use serde_json::json;

mod support;

use support::kubectl_bin;

/// A TCP server that answers every chunk with "echo:" + chunk.
fn echo_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut out = b"echo:".to_vec();
                            out.extend_from_slice(&buf[..n]);
                            if s.write_all(&out).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A sandbox with Running pod `demo/db-0` whose port 5432 forwards to `backend` (if any).
fn sandbox_with_pod(backend: Option<&str>) -> SandboxHandle {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let pods = sb.shared().registry.find("", "v1", "pods").unwrap().clone();
    let annotations = match backend {
        Some(b) => json!({"sandbox.kubectl-rotate.dev/forward": format!("5432={b}")}),
        None => json!({}),
    };
    sb.store()
        .create(
            &pods,
            "demo",
            json!({
                "metadata": {"name": "db-0", "annotations": annotations},
                "spec": {"containers": [{"name": "db", "image": "postgres", "ports": [{"containerPort": 5432}]}]},
                // kubectl refuses to forward to a pod that is not Running.
                "status": {"phase": "Running", "podIP": "10.244.0.10"},
            }),
            false,
        )
        .unwrap();
    sb
}

/// A running `kubectl port-forward`, killed on drop; stderr is collected for assertions.
struct PortForward {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl PortForward {
    /// `kubectl port-forward pod/db-0 -n demo :REMOTE` (kubectl picks the local port),
    /// once it has printed "Forwarding from".
    fn start(sb: &SandboxHandle, remote: u16, websockets: bool) -> PortForward {
        let mut cmd = Command::new(kubectl_bin());
        cmd.args([
            "port-forward",
            "pod/db-0",
            "-n",
            "demo",
            "--address",
            "127.0.0.1",
            &format!(":{remote}"),
        ])
        .env("KUBECONFIG", sb.kubeconfig_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if !websockets {
            cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
        } else {
            cmd.env_remove("KUBECTL_PORT_FORWARD_WEBSOCKETS");
        }
        let mut child = cmd
            .spawn()
            .expect("kubectl >= 1.26 must be on PATH (scripts/test.sh installs one)");
        let (port_tx, port_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "Forwarding from 127.0.0.1:41234 -> 5432"
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                    if let Some(p) = rest.split_whitespace().next().and_then(|p| p.parse().ok()) {
                        let _ = port_tx.send(p);
                    }
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            let _ = err_tx.send(s);
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let err = err_rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                panic!("kubectl port-forward did not start: {err}");
            }
        };
        PortForward {
            child,
            port,
            stderr: err_rx,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Wait for kubectl to exit on its own; its exit success and stderr.
    fn wait_exit(mut self, timeout: Duration) -> (bool, String) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let err = self
                    .stderr
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                return (st.success(), err);
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self
                    .stderr
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                panic!("kubectl port-forward did not exit within {timeout:?}: {err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `msg`, half-close, and read everything back until the far end closes.
fn round_trip(mut s: TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = vec![];
    s.read_to_end(&mut got)
        .expect("the forwarded connection ends");
    got
}

fn exercise(pf: &PortForward) {
    // Sequential connections: each is a new pair of streams on the same SPDY session.
    for i in 0..3 {
        let mut s = pf.connect();
        let msg = format!("ping {i}");
        s.write_all(msg.as_bytes()).unwrap();
        let mut got = vec![0u8; msg.len() + 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, format!("echo:{msg}").as_bytes());
    }
    // Two at once, interleaved.
    let (mut a, mut b) = (pf.connect(), pf.connect());
    a.write_all(b"from a").unwrap();
    b.write_all(b"from b").unwrap();
    let (mut ga, mut gb) = (vec![0u8; 11], vec![0u8; 11]);
    b.read_exact(&mut gb).unwrap();
    a.read_exact(&mut ga).unwrap();
    assert_eq!(&ga, b"echo:from a");
    assert_eq!(&gb, b"echo:from b");
    // Half-close: the pod side sees EOF, answers what it had, and the connection ends.
    assert_eq!(round_trip(a, b" again"), b"echo: again");
    drop(b);
    // More than the SPDY default window (64 KiB) in one connection, both ways at once.
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let s = pf.connect();
    let mut reader = s.try_clone().unwrap();
    let reading = std::thread::spawn(move || {
        let mut got = vec![];
        reader.read_to_end(&mut got).unwrap();
        got
    });
    let mut w = s;
    w.write_all(&big).unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    let got = reading.join().unwrap();
    let text_free: Vec<u8> = {
        // Strip "echo:" prefixes without assuming UTF-8.
        let mut out = vec![];
        let mut rest = &got[..];
        while let Some(pos) = find(rest, b"echo:") {
            out.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 5..];
        }
        out.extend_from_slice(rest);
        out
    };
    assert_eq!(text_free.len(), big.len());
    assert!(text_free == big, "the large transfer came back intact");
}

/// Which methods reached the pod's portforward subresource: GET is the WebSocket tunnel,
/// POST the plain SPDY upgrade (kubectl falls back to it when the tunnel is refused).
fn portforward_methods(sb: &SandboxHandle) -> Vec<String> {
    sb.faults()
        .request_counts()
        .into_iter()
        .filter(|(_, path, _)| path == "/api/v1/namespaces/demo/pods/db-0/portforward")
        .map(|(m, _, _)| m)
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn kubectl_port_forward_over_the_websocket_tunnel_reaches_the_mapped_address() {
    let backend = echo_server();
    let sb = sandbox_with_pod(Some(&backend));
    let pf = PortForward::start(&sb, 5432, true);
    exercise(&pf);
    assert_eq!(
        portforward_methods(&sb),
        ["GET"],
        "no fallback to plain SPDY"
    );
}

#[test]
fn kubectl_port_forward_over_plain_spdy_reaches_the_mapped_address() {
    let backend = echo_server();
    let sb = sandbox_with_pod(Some(&backend));
    let pf = PortForward::start(&sb, 5432, false);
    exercise(&pf);
    assert_eq!(portforward_methods(&sb), ["POST"]);
}

#[test]
fn an_unmapped_port_makes_kubectl_report_the_forwarding_error() {
    for websockets in [true, false] {
        let sb = sandbox_with_pod(None);
        let pf = PortForward::start(&sb, 6379, websockets);
        // The pod side refuses: the local connection ends without data ...
        let mut s = pf.connect();
        let mut got = vec![];
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "{got:?}");
        // ... and kubectl reports the kubelet-style message, then gives up on the pod.
        let (ok, err) = pf.wait_exit(Duration::from_secs(20));
        assert!(!ok, "kubectl exits non-zero: {err}");
        // NB: kubectl 1.32 says "an error occurred forwarding", newer ones (structured
        // logging) "An error occurred forwarding".
        assert!(
            err.to_lowercase().contains("an error occurred forwarding"),
            "websockets={websockets}: {err}"
        );
        assert!(
            err.contains("error forwarding port 6379 to pod db-0"),
            "websockets={websockets}: {err}"
        );
        assert!(err.contains("connection refused"), "{err}");
    }
}

#[test]
fn psql_logs_in_through_kubectl_port_forward() {
    let db = rotate_sandbox::realdb::Server::postgres("Fwd-pg-Pass1")
        .expect("PostgreSQL (apt-get install postgresql)");
    let sb = sandbox_with_pod(Some(&format!("127.0.0.1:{}", db.url.port)));
    for websockets in [true, false] {
        let pf = PortForward::start(&sb, 5432, websockets);
        let port = pf.port.to_string();
        for _ in 0..2 {
            let out = Command::new("psql")
                .args([
                    "-X",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-tAc",
                    "select 40 + 2",
                ])
                .env("PGPASSWORD", "Fwd-pg-Pass1")
                .env("PGCONNECT_TIMEOUT", "10")
                .output()
                .expect("psql");
            assert!(
                out.status.success(),
                "psql through port-forward (websockets={websockets}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
        }
    }
}
