//! `pods/<name>/portforward` over WebSocket, the protocol kube-rs speaks (and kubectl's
//! websocket mode, channel subprotocol `v4.channel.k8s.io` / `portforward.k8s.io`).
//!
//! Each requested port `i` has two channels: `2i` carries data both ways, `2i+1` carries
//! error text from the server. Every binary message starts with its channel byte; the
//! first message the server sends on each channel is the port number (little-endian u16).
//!
//! A pod forwards to whatever its annotation `sandbox.kubectl-rotate.dev/forward` names,
//! e.g. `5432=127.0.0.1:54321,6379=127.0.0.1:6380` (set by `serve --real-db`); a port with
//! no mapping answers on its error channel as a kubelet does when nothing listens.
//!
//! kubectl's own port-forward speaks SPDY/3.1 instead (plain `Upgrade: SPDY/3.1`, or SPDY
//! tunnelled in a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io`): see spdy.rs,
//! which [`upgrade`] hands those requests to.

use std::collections::HashMap;

use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::error::ApiError;

/// The pod annotation that maps its ports to local addresses.
pub const FORWARD_ANNOTATION: &str = "sandbox.kubectl-rotate.dev/forward";

/// Subprotocols accepted, in order of preference.
const PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "portforward.k8s.io"];

/// Parse the annotation into port -> address.
pub fn forward_map(pod: &Value) -> HashMap<u16, String> {
    let raw = pod["metadata"]["annotations"][FORWARD_ANNOTATION]
        .as_str()
        .unwrap_or("");
    raw.split(',')
        .filter_map(|pair| {
            let (port, addr) = pair.trim().split_once('=')?;
            Some((port.trim().parse().ok()?, addr.trim().to_string()))
        })
        .collect()
}

/// The `ports` query parameter(s): `ports=5432` or `ports=80,443` or repeated.
pub fn requested_ports(query: Option<&str>) -> Result<Vec<u16>, ApiError> {
    let mut ports = vec![];
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "ports" {
            for p in v.split(',').filter(|p| !p.is_empty()) {
                ports.push(p.trim().parse::<u16>().map_err(|_| {
                    ApiError::bad_request(format!("invalid port {p:?}: must be an integer 1-65535"))
                })?);
            }
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request("at least one port must be specified"));
    }
    Ok(ports)
}

/// Connect to a pod port's mapped address; no mapping is "connection refused", as when
/// nothing listens in the pod.
pub(crate) async fn connect(addr: Option<&str>) -> Result<tokio::net::TcpStream, String> {
    match addr {
        Some(a) => tokio::net::TcpStream::connect(a)
            .await
            .map_err(|e| e.to_string()),
        None => Err("connect: connection refused".to_string()),
    }
}

/// The kubelet's message for a failed forward (sent on the error channel or stream).
pub(crate) fn forward_error(port: u16, pod: &str, uid: &str, e: &str) -> String {
    format!(
        "error forwarding port {port} to pod {pod}, uid {uid}: failed to connect to localhost:{port} inside namespace: {e}"
    )
}

/// Answer a port-forward request: a WebSocket upgrade bridged to the pod's mapped ports
/// (channel protocols), or SPDY (spdy.rs): a plain `Upgrade: SPDY/3.1`, or SPDY tunnelled
/// in a WebSocket. Anything else is refused with 400.
pub fn upgrade(
    req: Request<Incoming>,
    pod: &Value,
) -> Result<Response<crate::http::Body>, ApiError> {
    if crate::spdy::is_spdy_upgrade(&req) {
        return crate::spdy::upgrade(req, pod);
    }
    let headers = req.headers();
    let is_ws = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let key = headers
        .get("sec-websocket-key")
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?
        .as_bytes()
        .to_vec();
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .collect();
    let tunnel = crate::spdy::TUNNEL_PROTOCOL;
    let Some(protocol) = PROTOCOLS
        .iter()
        .chain([&tunnel])
        .find(|p| offered.iter().any(|o| o == *p))
    else {
        return Err(ApiError::bad_request(format!(
            "unsupported port-forward subprotocol(s) {offered:?}: the sandbox speaks {PROTOCOLS:?} and {tunnel:?}"
        )));
    };
    if *protocol == tunnel {
        // kubectl: SPDY in WebSocket binary messages; ports are named per stream.
        let target = crate::spdy::PodTarget::of(pod);
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            crate::spdy::serve_tunnel(ws, target).await;
        });
    } else {
        let ports = requested_ports(req.uri().query())?;
        let map = forward_map(pod);
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let targets: Vec<(u16, Option<String>)> =
            ports.iter().map(|p| (*p, map.get(p).cloned())).collect();

        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            bridge(ws, targets, &pod_name, &uid).await;
        });
    }

    let mut resp = Response::new(http_body_util::BodyExt::boxed(http_body_util::Empty::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    h.insert(
        "Sec-WebSocket-Accept",
        HeaderValue::from_str(&accept).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    Ok(resp)
}

fn framed(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

async fn bridge<S>(
    ws: WebSocketStream<S>,
    targets: Vec<(u16, Option<String>)>,
    pod: &str,
    uid: &str,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let mut writers: Vec<Option<tokio::net::tcp::OwnedWriteHalf>> = vec![];
    let mut open = 0usize;
    for (i, (port, addr)) in targets.iter().enumerate() {
        let (data_ch, err_ch) = (2 * i as u8, 2 * i as u8 + 1);
        let lead = port.to_le_bytes();
        if sink.send(framed(data_ch, &lead)).await.is_err()
            || sink.send(framed(err_ch, &lead)).await.is_err()
        {
            return;
        }
        match connect(addr.as_deref()).await {
            Ok(tcp) => {
                let (mut r, w) = tcp.into_split();
                writers.push(Some(w));
                open += 1;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx.send(framed(data_ch, &buf[..n])).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    // The backend closed: tell the writer loop this port is done.
                    let _ = tx.send(Message::Ping(vec![data_ch].into())).await;
                });
            }
            Err(e) => {
                writers.push(None);
                let msg = forward_error(*port, pod, uid, &e);
                let _ = sink.send(framed(err_ch, msg.as_bytes())).await;
            }
        }
    }
    drop(tx);
    if open == 0 {
        let _ = sink.close().await;
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                // NB: a Ping carrying a channel byte is our internal "backend closed" marker;
                // it is never sent to the client.
                Some(Message::Ping(ch)) => {
                    let i = usize::from(ch.first().copied().unwrap_or(0) / 2);
                    if let Some(w) = writers.get_mut(i) { *w = None; }
                    open = open.saturating_sub(1);
                    if open == 0 {
                        break;
                    }
                }
                Some(m) => if sink.send(m).await.is_err() { break },
                None => break,
            },
            inc = stream.next() => match inc {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    let ch = b[0];
                    let i = usize::from(ch / 2);
                    if ch % 2 == 0 && b.len() > 1 {
                        if let Some(Some(w)) = writers.get_mut(i) {
                            if w.write_all(&b[1..]).await.is_err() {
                                writers[i] = None;
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    for w in writers.iter_mut().flatten() {
        let _ = w.shutdown().await;
    }
    // NB: close the WebSocket properly (close frame, then TLS close_notify): clients treat
    // an abrupt end as an error.
    let _ = sink.close().await;
}
