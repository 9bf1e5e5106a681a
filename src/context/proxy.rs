//! The way to the API server through a proxy, as kubectl finds one: the kubeconfig
//! cluster's `proxy-url` (http or socks5), else `HTTPS_PROXY`/`HTTP_PROXY` less `NO_PROXY`
//! and loopback, as Go's `http.ProxyFromEnvironment`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{Error, Result};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the connections to the API server go first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to the server.
    Direct,
    /// An HTTP proxy, asked to open a tunnel with `CONNECT` (the proxy sees only the host
    /// and port; TLS to the API server runs inside the tunnel).
    Http(Uri),
    /// A SOCKS5 proxy; the server's host name is resolved by the proxy.
    Socks5(Uri),
}

/// The route for the cluster at `server`: `proxy_url` (from the kubeconfig) when given,
/// else the environment's, as kubectl.
pub fn route(server: &Uri, proxy_url: Option<&Uri>) -> Result<Route> {
    match proxy_url {
        Some(p) => explicit(p),
        None => from_env(server, |k| std::env::var(k).ok()),
    }
}

fn explicit(proxy: &Uri) -> Result<Route> {
    match proxy.scheme_str() {
        Some("http") => Ok(Route::Http(proxy.clone())),
        Some("socks5" | "socks5h") => Ok(Route::Socks5(proxy.clone())),
        _ => Err(Error::Usage(format!(
            "unsupported proxy-url {}: use an http:// or socks5:// proxy",
            redact(proxy)
        ))),
    }
}

/// Go's rules: `HTTPS_PROXY` for https servers and `HTTP_PROXY` for http ones (upper case
/// first), never for localhost or a loopback address, never for a host `NO_PROXY` names.
fn from_env(server: &Uri, var: impl Fn(&str) -> Option<String>) -> Result<Route> {
    let get = |name: &str| {
        var(name)
            .or_else(|| var(&name.to_ascii_lowercase()))
            .filter(|v| !v.is_empty())
    };
    let Some(host) = server.host() else {
        return Ok(Route::Direct);
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let proxy = match server.scheme_str() {
        Some("https") => get("HTTPS_PROXY"),
        _ => get("HTTP_PROXY"),
    };
    let Some(proxy) = proxy.filter(|_| !loopback) else {
        return Ok(Route::Direct);
    };
    let no_proxy = get("NO_PROXY").unwrap_or_default();
    let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
        .all(proxy.clone())
        .no(no_proxy)
        .build();
    if matcher.intercept(server).is_none() {
        return Ok(Route::Direct);
    }
    // NB: Go takes a proxy without a scheme for an http one.
    let with_scheme = if proxy.contains("://") {
        proxy
    } else {
        format!("http://{proxy}")
    };
    let uri: Uri = with_scheme.parse().map_err(|_| {
        Error::Usage(
            "invalid proxy in HTTPS_PROXY/HTTP_PROXY: want a URL such as http://host:3128".into(),
        )
    })?;
    explicit(&uri)
}

/// The proxy's URL without its user information, for messages.
fn redact(proxy: &Uri) -> String {
    let host = proxy.host().unwrap_or("");
    match (proxy.scheme_str(), proxy.port_u16()) {
        (Some(s), Some(p)) => format!("{s}://{host}:{p}"),
        (Some(s), None) => format!("{s}://{host}"),
        _ => host.to_string(),
    }
}

/// The `user:password` of a proxy URL, percent-decoded.
fn userinfo(proxy: &Uri) -> Option<(String, String)> {
    let authority = proxy.authority()?.as_str();
    let (info, _) = authority.rsplit_once('@')?;
    let (user, pass) = info.split_once(':').unwrap_or((info, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(user), decode(pass)))
}

/// A connector that opens TCP connections along a [`Route`].
#[derive(Clone)]
pub enum Connector {
    Direct(HttpConnector),
    Http(Tunnel<HttpConnector>),
    Socks5(SocksV5<HttpConnector>),
}

impl Connector {
    pub fn new(route: &Route, http: HttpConnector) -> Connector {
        match route {
            Route::Direct => Connector::Direct(http),
            Route::Http(p) => {
                let tunnel = Tunnel::new(p.clone(), http);
                match userinfo(p) {
                    Some((user, pass)) => {
                        use base64::Engine;
                        let basic = base64::engine::general_purpose::STANDARD
                            .encode(format!("{user}:{pass}"));
                        match HeaderValue::from_str(&format!("Basic {basic}")) {
                            Ok(v) => Connector::Http(tunnel.with_auth(v)),
                            Err(_) => Connector::Http(tunnel),
                        }
                    }
                    None => Connector::Http(tunnel),
                }
            }
            Route::Socks5(p) => {
                let socks = SocksV5::new(p.clone(), http).local_dns(false);
                Connector::Socks5(match userinfo(p) {
                    Some((user, pass)) => socks.with_auth(user, pass),
                    None => socks,
                })
            }
        }
    }
}

/// A failure on the way through a proxy: says which, and keeps the cause as its source.
#[derive(Debug)]
struct ProxyError {
    what: &'static str,
    source: BoxError,
}

impl ProxyError {
    fn boxed(what: &'static str, e: impl Into<BoxError>) -> BoxError {
        Box::new(ProxyError {
            what,
            source: e.into(),
        })
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "through the {}", self.what)
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

type Connecting =
    Pin<Box<dyn Future<Output = std::result::Result<TokioIo<TcpStream>, BoxError>> + Send>>;

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        match self {
            Connector::Direct(c) => c.poll_ready(cx).map_err(Into::into),
            Connector::Http(c) => c.poll_ready(cx).map_err(Into::into),
            Connector::Socks5(c) => c.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        match self {
            Connector::Direct(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            Connector::Http(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(|e| ProxyError::boxed("HTTP proxy", e)) })
            }
            Connector::Socks5(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(|e| ProxyError::boxed("SOCKS5 proxy", e)) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_kubeconfig_proxy_is_taken_as_it_is_even_for_loopback() {
        let p: Uri = "socks5://127.0.0.1:1080".parse().unwrap();
        assert_eq!(explicit(&p).unwrap(), Route::Socks5(p.clone()));
        let h: Uri = "http://u:p@127.0.0.1:3128".parse().unwrap();
        assert_eq!(explicit(&h).unwrap(), Route::Http(h.clone()));
        let err = explicit(&"ftp://u:secret@x:21".parse().unwrap()).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn the_environment_proxy_follows_gos_rules() {
        let remote: Uri = "https://api.example.com:6443".parse().unwrap();
        let vars = [("HTTPS_PROXY", "proxy.corp:3128")];
        assert_eq!(
            from_env(&remote, env(&vars)).unwrap(),
            Route::Http("http://proxy.corp:3128".parse().unwrap())
        );
        let lower = [("https_proxy", "socks5://p:1080")];
        assert!(matches!(
            from_env(&remote, env(&lower)).unwrap(),
            Route::Socks5(_)
        ));
        // HTTP_PROXY is for http servers only.
        let http_only = [("HTTP_PROXY", "http://p:3128")];
        assert_eq!(from_env(&remote, env(&http_only)).unwrap(), Route::Direct);
        let excluded = [
            ("HTTPS_PROXY", "http://p:3128"),
            ("NO_PROXY", ".example.com"),
        ];
        assert_eq!(from_env(&remote, env(&excluded)).unwrap(), Route::Direct);
        for local in [
            "https://127.0.0.1:6443",
            "https://localhost:6443",
            "https://[::1]:6443",
        ] {
            assert_eq!(
                from_env(&local.parse().unwrap(), env(&vars)).unwrap(),
                Route::Direct,
                "{local}"
            );
        }
    }

    #[test]
    fn proxy_credentials_are_percent_decoded() {
        let p: Uri = "http://me:pa%40ss@p:3128".parse().unwrap();
        assert_eq!(userinfo(&p), Some(("me".into(), "pa@ss".into())));
        assert_eq!(userinfo(&"http://p:3128".parse().unwrap()), None);
    }
}
