//! kubectl's `-v` HTTP log: a tower layer on the client's HTTP service that logs each API
//! request to stderr as client-go's debugging round tripper does in kubectl 1.32.
//!
//! - 6: one line per request, once its response headers arrive (a watch too):
//!   `GET https://HOST/api/v1/namespaces/demo/secrets/pg-demo-auth 200 OK in 4 milliseconds`;
//!   a request that got no response (refused, timed out, given up) has no status:
//!   `GET https://... ␣ in 30 milliseconds`, as kubectl prints it.
//! - 7: instead, the request line and its headers before it is sent, then
//!   `Response Status: 200 OK in 4 milliseconds`. Credential headers are masked
//!   (`Authorization: Bearer <masked>`), at every level a password in the URL too.
//! - 8: also the response headers, and both bodies: JSON with every Secret value redacted
//!   ([`redact`]), cut at 1024 chars (10240 from 9 on) with `[truncated N chars]`; other
//!   bodies as `<N bytes, not shown>`; a watch or an upgraded connection (port-forward) is
//!   a stream and never read here.
//!
//! Each line has klog's header, `I1201 12:00:00.123456   12345 round_trippers.go:560] `
//! (local time, the process id, and the file and line kubectl 1.32 prints for the same
//! line), so what reads kubectl's `-v` output reads this too. The lines of one request's
//! step (its headers, its response) are written at once, so concurrent requests do not cut
//! into each other.
//!
//! The layer sits innermost, under kube's base-URI, auth and extra-headers layers, so it
//! logs what goes on the wire; see `context::client`.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::FutureExt as _;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use kube::client::Body;
use serde_json::Value;
use tower::{BoxError, Layer, Service};

/// Where `-v` lines go: stderr in the binary, a buffer in tests.
pub type LogSink = Arc<Mutex<dyn Write + Send>>;

/// A sink that drops every line: for connections whose `-v` lines nobody reads
/// (completion, benchmarks).
pub fn discard() -> LogSink {
    Arc::new(Mutex::new(std::io::sink()))
}

/// From this level on, one line per request (method, URL, status, milliseconds).
pub const URL_TIMING: u8 = 6;
/// From this level on, request headers and the response status instead.
pub const HEADERS: u8 = 7;
/// From this level on, response headers and bodies (Secret values redacted).
pub const BODIES: u8 = 8;

/// kubectl's body bounds: 1024 chars at 8, 10240 from 9 on.
fn body_limit(level: u8) -> usize {
    if level > BODIES {
        10240
    } else {
        1024
    }
}

/// What replaces each Secret value.
pub const REDACTED: &str = "REDACTED";

/// kubectl's annotation holding the whole object as last applied: a Secret's values too.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

// The klog source of each line: kubectl 1.32's.
const SRC_URL: &str = "round_trippers.go:470";
const SRC_REQUEST_HEADERS: &str = "round_trippers.go:476";
const SRC_REQUEST_HEADER: &str = "round_trippers.go:480";
const SRC_URL_TIMING: &str = "round_trippers.go:560";
const SRC_STATUS: &str = "round_trippers.go:581";
const SRC_RESPONSE_HEADERS: &str = "round_trippers.go:584";
const SRC_RESPONSE_HEADER: &str = "round_trippers.go:587";
const SRC_BODY: &str = "helper.go:105";

/// The `-v` level and where its lines go.
#[derive(Clone)]
pub struct HttpLog {
    level: u8,
    sink: LogSink,
}

impl HttpLog {
    /// Logs at `level` (below [`URL_TIMING`], nothing) to `sink`.
    pub fn new(level: u8, sink: LogSink) -> HttpLog {
        HttpLog { level, sink }
    }

    /// Writes `lines`, each with klog's header, at once.
    fn write(&self, lines: &[(&str, String)]) {
        if lines.is_empty() {
            return;
        }
        let now = jiff::Zoned::now();
        let stamp = format!(
            "I{:02}{:02} {:02}:{:02}:{:02}.{:06} {:>7}",
            now.month(),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.subsec_nanosecond() / 1000,
            std::process::id()
        );
        let mut text = String::new();
        for (src, line) in lines {
            text.push_str(&format!("{stamp} {src}] {line}\n"));
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        // NB: a log line that cannot be written must not fail the request.
        let _ = sink.write_all(text.as_bytes());
        let _ = sink.flush();
    }
}

/// The layer: see the module's doc.
#[derive(Clone)]
pub struct HttpLogLayer {
    log: HttpLog,
}

impl HttpLogLayer {
    /// A layer logging as `log` says.
    pub fn new(log: HttpLog) -> HttpLogLayer {
        HttpLogLayer { log }
    }
}

impl<S> Layer<S> for HttpLogLayer {
    type Service = HttpLogService<S>;

    fn layer(&self, inner: S) -> HttpLogService<S> {
        HttpLogService {
            inner,
            log: self.log.clone(),
        }
    }
}

/// The service [`HttpLogLayer`] makes.
#[derive(Clone)]
pub struct HttpLogService<S> {
    inner: S,
    log: HttpLog,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<Body>> for HttpLogService<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<LoggedBody<B>>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let log = self.log.clone();
        if log.level < URL_TIMING {
            let sent = self.inner.call(req);
            return Box::pin(async move {
                let res = sent.await.map_err(Into::into)?;
                Ok(res.map(LoggedBody::Stream))
            });
        }
        let method = req.method().to_string();
        let url = shown_url(req.uri());
        let watch = is_watch(req.uri());
        let secrets = is_secrets_path(req.uri().path());
        if log.level >= HEADERS {
            let mut lines = Vec::new();
            if log.level >= BODIES {
                match request_body(req.body()) {
                    RequestBody::Empty => {}
                    RequestBody::Stream => lines.push((
                        SRC_BODY,
                        "\"Request Body\" body=<stream, not shown>".to_string(),
                    )),
                    RequestBody::Bytes(body) => {
                        lines.push((SRC_BODY, body_line("Request Body", &body, secrets, &log)))
                    }
                }
            }
            lines.push((SRC_URL, format!("{method} {url}")));
            lines.push((SRC_REQUEST_HEADERS, "Request Headers:".to_string()));
            header_lines(req.headers(), SRC_REQUEST_HEADER, &mut lines);
            log.write(&lines);
        }
        let mut pending = Pending {
            log: log.clone(),
            method,
            url,
            start: Instant::now(),
            done: false,
        };
        let sent = self.inner.call(req);
        Box::pin(async move {
            let res = match sent.await {
                Ok(res) => res,
                Err(e) => {
                    pending.finish::<()>(None);
                    return Err(e.into());
                }
            };
            pending.finish(Some(&res));
            if log.level < BODIES {
                return Ok(res.map(LoggedBody::Stream));
            }
            let stream = if watch {
                Some("watch stream")
            } else if res.status() == StatusCode::SWITCHING_PROTOCOLS {
                Some("upgraded connection")
            } else {
                None
            };
            if let Some(what) = stream {
                let line = format!("\"Response Body\" body=<{what}, not shown>");
                log.write(&[(SRC_BODY, line)]);
                return Ok(res.map(LoggedBody::Stream));
            }
            let (parts, body) = res.into_parts();
            let (data, error) = read_all(body).await;
            log.write(&[(SRC_BODY, body_line("Response Body", &data, secrets, &log))]);
            Ok(Response::from_parts(
                parts,
                LoggedBody::Read {
                    data: Some(data).filter(|d| !d.is_empty()),
                    error,
                },
            ))
        })
    }
}

/// A request on its way: its line is logged when the response headers arrive, or when it
/// ends without a response (an error, or its caller gave it up).
struct Pending {
    log: HttpLog,
    method: String,
    url: String,
    start: Instant,
    done: bool,
}

impl Pending {
    /// Logs the response's status (and headers from [`BODIES`] on); `None`: no response.
    fn finish<B>(&mut self, res: Option<&Response<B>>) {
        self.done = true;
        let ms = self.start.elapsed().as_millis();
        let status = res.map(|r| status_text(r.status())).unwrap_or_default();
        let mut lines = Vec::new();
        if self.log.level >= HEADERS {
            lines.push((
                SRC_STATUS,
                format!("Response Status: {status} in {ms} milliseconds"),
            ));
        } else {
            lines.push((
                SRC_URL_TIMING,
                format!("{} {} {status} in {ms} milliseconds", self.method, self.url),
            ));
        }
        if let Some(res) = res.filter(|_| self.log.level >= BODIES) {
            lines.push((SRC_RESPONSE_HEADERS, "Response Headers:".to_string()));
            header_lines(res.headers(), SRC_RESPONSE_HEADER, &mut lines);
        }
        self.log.write(&lines);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.finish::<()>(None);
        }
    }
}

/// Go's `resp.Status`: `200 OK`.
fn status_text(s: StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

/// Whether the request is a watch: its body is an endless stream.
fn is_watch(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// Whether a path names Secrets (`.../secrets`, `.../secrets/NAME`): what goes there and
/// comes back is redacted as a Secret whatever its shape (a patch has no kind). A namespace
/// or another group's resource called `secrets` is redacted too, which costs nothing.
pub fn is_secrets_path(path: &str) -> bool {
    path.split('/').any(|s| s == "secrets")
}

/// What a request carries.
enum RequestBody {
    /// Nothing.
    Empty,
    /// A body built in memory: every body kube sends.
    Bytes(Bytes),
    /// A stream, which the log never reads (it would take it from the request).
    Stream,
}

/// The request body, read from a copy when it is in memory.
fn request_body(body: &Body) -> RequestBody {
    let Some(copy) = body.try_clone() else {
        return RequestBody::Stream;
    };
    // NB: an in-memory body is ready at once.
    match copy.collect_bytes().now_or_never() {
        Some(Ok(b)) if b.is_empty() => RequestBody::Empty,
        Some(Ok(b)) => RequestBody::Bytes(b),
        _ => RequestBody::Stream,
    }
}

/// The URL as logged: a password in its user info (`https://user:pass@host`) is masked.
fn shown_url(uri: &Uri) -> String {
    let text = uri.to_string();
    match uri.authority().map(|a| a.as_str()) {
        Some(a) if a.contains('@') => {
            let host = a.rsplit_once('@').map_or(a, |(_, h)| h);
            text.replacen(a, &format!("<masked>@{host}"), 1)
        }
        _ => text,
    }
}

/// `"Request Body" body="..."`, kubectl's structured form.
fn body_line(what: &str, body: &[u8], secrets: bool, log: &HttpLog) -> String {
    format!(
        "\"{what}\" body={}",
        describe_body(body, secrets, body_limit(log.level))
    )
}

/// A body as the log shows it: JSON redacted ([`redact`]) and cut at `limit` chars, quoted;
/// anything else as `<N bytes, not shown>`.
pub fn describe_body(body: &[u8], secrets: bool, limit: usize) -> String {
    if body.is_empty() {
        return "\"\"".to_string();
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return format!("<{} bytes, not shown>", body.len());
    };
    let text = if redact(&mut v, secrets) {
        v.to_string()
    } else {
        // NB: unchanged, so printed as it was sent (key order, spacing), as kubectl does.
        String::from_utf8_lossy(body).into_owned()
    };
    quote(&truncate(&text, limit))
}

/// Replaces every Secret value in `v` with [`REDACTED`], and says whether it changed
/// anything. A Secret is an object of kind Secret, an item of a SecretList, or anything
/// sent to or read from a Secrets URL (`secrets`): a patch too. In one, the values (not
/// the keys) of `data` and `stringData`, the last-applied annotation, and a JSON patch's
/// `value` for any path but `/metadata/...` (annotations excepted) are replaced.
pub fn redact(v: &mut Value, secrets: bool) -> bool {
    match v {
        Value::Object(o) => {
            let kind = o.get("kind").and_then(Value::as_str);
            let secret = secrets || matches!(kind, Some("Secret" | "SecretList"));
            let mut changed = false;
            if secret {
                for key in ["data", "stringData"] {
                    if let Some(d) = o.get_mut(key) {
                        changed |= blank(d);
                    }
                }
                if let Some(a) = o
                    .get_mut("metadata")
                    .and_then(|m| m.get_mut("annotations"))
                    .and_then(|a| a.get_mut(LAST_APPLIED))
                {
                    changed |= blank(a);
                }
                let patch_path = o.get("op").and(o.get("path")).and_then(Value::as_str);
                if let Some(path) = patch_path {
                    let meta = path.starts_with("/metadata/")
                        && !path.starts_with("/metadata/annotations");
                    if !meta {
                        if let Some(value) = o.get_mut("value") {
                            changed |= blank(value);
                        }
                    }
                }
            }
            for (key, child) in o.iter_mut() {
                if !(secret && (key == "data" || key == "stringData")) {
                    changed |= redact(child, secret);
                }
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| redact(item, secrets) | changed),
        _ => false,
    }
}

/// A Secret value redacted: an object's values each (its keys stay), else the value.
fn blank(v: &mut Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(o) => {
            let mut changed = false;
            for value in o.values_mut() {
                if !value.is_null() && *value != REDACTED {
                    *value = Value::from(REDACTED);
                    changed = true;
                }
            }
            changed
        }
        other => {
            let was = std::mem::replace(other, Value::from(REDACTED));
            was != REDACTED
        }
    }
}

/// kubectl's truncation: the first `limit` bytes (at a char boundary), then
/// ` [truncated N chars]`.
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let left = text[cut..].chars().count();
    format!("{} [truncated {left} chars]", &text[..cut])
}

/// A quoted string, as Go's `%q` quotes it: control characters escaped, so a body cannot
/// drive the terminal.
fn quote(s: &str) -> String {
    Value::from(s)
        .to_string()
        .chars()
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// `    Name: value` lines, credentials masked.
fn header_lines(headers: &HeaderMap, src: &'static str, lines: &mut Vec<(&str, String)>) {
    for (name, value) in headers {
        let line = format!("    {}: {}", canonical(name), masked(name, value));
        lines.push((src, line));
    }
}

/// `content-type` as Go prints it: `Content-Type`.
fn canonical(name: &HeaderName) -> String {
    name.as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A header's value with any credential masked: kubectl's `maskValue` for `Authorization`
/// (a known scheme stays: `Bearer <masked>`), and `<masked>` for every other header that
/// may carry one (cookies, tokens, keys, passwords).
pub fn masked(name: &HeaderName, value: &HeaderValue) -> String {
    let n = name.as_str();
    let Ok(text) = value.to_str() else {
        return format!("<{} bytes, not shown>", value.len());
    };
    if n == "authorization" || n == "proxy-authorization" {
        let scheme = text.split(' ').next().unwrap_or_default();
        let known =
            ["bearer", "basic", "negotiate"].contains(&scheme.to_ascii_lowercase().as_str());
        return match (known, text.len() > scheme.len() + 1) {
            (false, _) => "<masked>".to_string(),
            (true, true) => format!("{scheme} <masked>"),
            (true, false) => scheme.to_string(),
        };
    }
    // NB: Sec-WebSocket-Key is a nonce, not a credential.
    let credential = n == "cookie"
        || n == "set-cookie"
        || (n != "sec-websocket-key"
            && ["auth", "token", "secret", "password", "key", "credential"]
                .iter()
                .any(|w| n.contains(w)));
    match credential {
        true => "<masked>".to_string(),
        false => text.to_string(),
    }
}

/// Reads a whole body: its data, and the error that ended it early, if one did.
async fn read_all<B>(mut body: B) -> (Bytes, Option<BoxError>)
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut data = Vec::new();
    loop {
        match futures::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => return (data.into(), None),
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    data.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => return (data.into(), Some(e.into())),
        }
    }
}

/// A response body: passed through, or read (at [`BODIES`]) and given back as it came,
/// its error included.
pub enum LoggedBody<B> {
    /// Not read here.
    Stream(B),
    /// Read here: the data, then the error that ended it, if any.
    Read {
        /// The data, until given out.
        data: Option<Bytes>,
        /// The error, until given out.
        error: Option<BoxError>,
    },
}

impl<B> HttpBody for LoggedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            LoggedBody::Stream(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            LoggedBody::Read { data, error } => Poll::Ready(match (data.take(), error.take()) {
                (Some(d), e) => {
                    *error = e;
                    Some(Ok(Frame::data(d)))
                }
                (None, Some(e)) => Some(Err(e)),
                (None, None) => None,
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            LoggedBody::Stream(b) => b.is_end_stream(),
            LoggedBody::Read { data, error } => data.is_none() && error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            LoggedBody::Stream(b) => b.size_hint(),
            LoggedBody::Read { data, error: None } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            LoggedBody::Read { .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(body: Value, secrets: bool) -> String {
        describe_body(body.to_string().as_bytes(), secrets, 100_000)
    }

    #[test]
    fn a_secret_s_values_are_redacted_its_keys_and_metadata_kept() {
        let secret = json!({
            "kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "pg-demo-auth", "annotations": {
                LAST_APPLIED: "{\"data\":{\"password\":\"c2VjcmV0\"}}", "team": "payments"}},
            "type": "kubernetes.io/basic-auth",
            "data": {"username": "cG9zdGdyZXM=", "password": "c2VjcmV0"},
            "stringData": {"password": "secret"},
        });
        let out = shown(secret.clone(), false);
        for gone in ["c2VjcmV0", "cG9zdGdyZXM=", "\\\"secret\\\""] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        for kept in [
            "pg-demo-auth",
            "payments",
            "\\\"password\\\":\\\"REDACTED\\\"",
            "username",
        ] {
            assert!(out.contains(kept), "{kept} not in {out}");
        }
        // The same object without its kind (a create's answer, an item) is a Secret when
        // it comes from a Secrets URL, and not otherwise.
        let mut bare = secret;
        bare.as_object_mut().unwrap().remove("kind");
        assert!(!shown(bare.clone(), true).contains("c2VjcmV0"));
        assert!(shown(bare, false).contains("c2VjcmV0"));
    }

    #[test]
    fn the_items_of_a_secret_list_and_secrets_in_watch_events_and_lists_are_redacted() {
        // List items carry no kind: the SecretList says what they are.
        let list = json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {},
            "items": [{"metadata": {"name": "a"}, "data": {"password": "QUFBQQ=="}},
                      {"metadata": {"name": "b"}, "data": {"token": "QkJCQg=="}}]});
        let out = shown(list, false);
        assert!(
            !out.contains("QUFBQQ==") && !out.contains("QkJCQg=="),
            "{out}"
        );
        assert!(out.contains("token"), "{out}");
        // A Secret anywhere else: a watch event, a generic List.
        let event = json!({"type": "MODIFIED", "object": {"kind": "Secret",
            "metadata": {"name": "a"}, "data": {"password": "Q0NDQw=="}}});
        assert!(!shown(event, false).contains("Q0NDQw=="));
        let other = json!({"kind": "List", "items": [{"kind": "Secret", "data": {"k": "RERERA=="}},
            {"kind": "ConfigMap", "data": {"k": "visible"}}]});
        let out = shown(other, false);
        assert!(
            !out.contains("RERERA==") && out.contains("visible"),
            "{out}"
        );
    }

    #[test]
    fn patches_to_a_secrets_url_are_redacted_whatever_their_shape() {
        assert!(is_secrets_path(
            "/api/v1/namespaces/demo/secrets/pg-demo-auth"
        ));
        assert!(is_secrets_path("/api/v1/namespaces/demo/secrets"));
        assert!(is_secrets_path("/api/v1/secrets"));
        assert!(!is_secrets_path(
            "/api/v1/namespaces/demo/configmaps/secretsish"
        ));
        // A merge patch (no kind).
        let merge = json!({"data": {"password": "RUVFRQ=="}, "metadata": {"labels": {"a": "b"}}});
        let out = shown(merge.clone(), true);
        assert!(!out.contains("RUVFRQ==") && out.contains("labels"), "{out}");
        assert!(
            shown(merge, false).contains("RUVFRQ=="),
            "not a Secret: shown"
        );
        // A JSON patch: values under data, stringData, annotations or the root are
        // redacted; a test on the resourceVersion is not a secret.
        let json_patch = json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
            {"op": "replace", "path": "/data/password", "value": "RkZGRg=="},
            {"op": "add", "path": "/stringData", "value": {"password": "plain-GGGG"}},
            {"op": "add", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
             "value": "{\"data\":{\"password\":\"SEhISA==\"}}"},
            {"op": "replace", "path": "", "value": {"data": {"password": "SUlJSQ=="}}},
        ]);
        let out = shown(json_patch, true);
        for gone in ["RkZGRg==", "plain-GGGG", "SEhISA==", "SUlJSQ=="] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        assert!(out.contains("\\\"42\\\""), "{out}");
    }

    #[test]
    fn the_last_applied_annotation_of_a_secret_is_redacted_and_others_kept() {
        let s = json!({"kind": "Secret", "metadata": {"annotations": {
            LAST_APPLIED: "{\"stringData\":{\"password\":\"JJJJ-secret\"}}", "note": "kept"}}});
        let out = shown(s, false);
        assert!(
            !out.contains("JJJJ-secret") && out.contains("kept"),
            "{out}"
        );
        // Not a Secret: a ConfigMap's last-applied annotation holds no secret.
        let cm =
            json!({"kind": "ConfigMap", "metadata": {"annotations": {LAST_APPLIED: "x-visible"}}});
        assert!(shown(cm, false).contains("x-visible"));
    }

    #[test]
    fn non_json_bodies_are_described_not_shown() {
        // Protobuf starts with the magic "k8s\0"; SPDY frames and anything else alike.
        let proto = b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x08password";
        let expected = format!("<{} bytes, not shown>", proto.len());
        assert_eq!(describe_body(proto, true, 1024), expected);
        assert_eq!(
            describe_body(b"not json", false, 1024),
            "<8 bytes, not shown>"
        );
        assert_eq!(describe_body(b"", false, 1024), "\"\"");
    }

    #[test]
    fn long_bodies_are_truncated_as_kubectl_does_and_control_characters_escaped() {
        let long = json!({"kind": "ConfigMap", "data": {"k": "x".repeat(2000)}});
        let text = long.to_string();
        let out = describe_body(text.as_bytes(), false, 1024);
        let left = text.len() - 1024;
        assert!(
            out.ends_with(&format!(" [truncated {left} chars]\"")),
            "{out}"
        );
        assert!(out.len() < 1100, "{}", out.len());
        // A multi-byte char at the bound is not cut in half.
        assert_eq!(truncate("ééé", 3), "é [truncated 2 chars]");
        // Nothing from the server can drive the terminal.
        let sneaky = json!({"message": "a\u{1b}[2Jb\u{9b}c\n"});
        let out = shown(sneaky, false);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert!(out.contains("\\u{9b}"), "{out}");
    }

    #[test]
    fn credential_headers_are_masked_as_kubectl_masks_them() {
        let m = |n: &str, v: &str| {
            masked(
                &HeaderName::from_bytes(n.as_bytes()).unwrap(),
                &HeaderValue::from_str(v).unwrap(),
            )
        };
        assert_eq!(
            m("authorization", "Bearer sandbox-admin-token"),
            "Bearer <masked>"
        );
        assert_eq!(m("authorization", "Basic dXNlcjpwYXNz"), "Basic <masked>");
        assert_eq!(m("authorization", "Bearer"), "Bearer");
        assert_eq!(m("authorization", "weird-token"), "<masked>");
        assert_eq!(
            m("proxy-authorization", "Basic dXNlcjpwYXNz"),
            "Basic <masked>"
        );
        for n in [
            "cookie",
            "set-cookie",
            "x-auth-token",
            "x-api-key",
            "x-password",
        ] {
            assert_eq!(m(n, "s3cr3t"), "<masked>", "{n}");
        }
        assert_eq!(m("accept", "application/json"), "application/json");
        assert_eq!(m("impersonate-user", "bob"), "bob");
        assert_eq!(
            canonical(&HeaderName::from_static("content-type")),
            "Content-Type"
        );
    }

    #[test]
    fn a_password_in_the_url_is_masked_and_a_streamed_request_body_not_read() {
        let u = |s: &str| shown_url(&s.parse::<Uri>().unwrap());
        assert_eq!(
            u("https://admin:s3cr3t@10.0.0.1:6443/api?x=1"),
            "https://<masked>@10.0.0.1:6443/api?x=1"
        );
        assert_eq!(
            u("https://10.0.0.1:6443/api/v1/secrets"),
            "https://10.0.0.1:6443/api/v1/secrets"
        );
        assert!(matches!(request_body(&Body::empty()), RequestBody::Empty));
        let b = request_body(&Body::from(b"{}".to_vec()));
        assert!(matches!(b, RequestBody::Bytes(b) if &b[..] == b"{}"));
    }

    #[test]
    fn a_watch_is_told_from_its_query() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert!(is_watch(&u(
            "https://h/api/v1/namespaces/demo/secrets?watch=true&resourceVersion=1"
        )));
        assert!(is_watch(&u("https://h/apis/x/v1/ys?&watch=1")));
        assert!(!is_watch(&u("https://h/api/v1/secrets?watchful=true")));
        assert!(!is_watch(&u("https://h/api/v1/secrets")));
    }
}
