//! The cluster connection: kubeconfig, context, namespace and timeouts, as kubectl picks them;
//! the client's HTTP stack, with kubectl's `-v` log in it ([`http_log`]).

pub mod http_log;
pub mod overrides;
pub mod proxy;

use std::time::Duration;

use kube::client::{ClientBuilder, ConfigExt};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::cli::KubeArgs;
use crate::error::{Error, Result};

pub use http_log::{discard, LogSink};

/// A client and the namespace commands act in.
#[derive(Clone)]
pub struct Ctx {
    /// The API client (HTTP/2 where the server offers it).
    pub client: Client,
    /// The client for connection upgrades (`pods/portforward`): HTTP/1.1.
    pub upgrades: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// `--request-timeout`, if not 0.
    pub request_timeout: Option<Duration>,
    /// The kubeconfig context's user name (`--user`, else the context's), if any: who
    /// wrote it, where the server cannot say (see `api::access::user`).
    pub user: Option<String>,
    /// The name the server authenticated this client as, once asked.
    pub identity: std::sync::Arc<tokio::sync::OnceCell<Option<String>>>,
    /// This command's id: recorded on what it writes (the lock's holder, the ops request),
    /// so a retry or a re-read recognises its own write.
    pub command_id: String,
    /// How long a watch may stay silent before it is reopened: `KUBECTL_ROTATE_WATCH_SILENCE`,
    /// else [`WATCH_SILENCE`].
    pub watch_silence: Duration,
    /// `--chunk-size`: objects per LIST page, 0 for one request per list.
    pub chunk_size: u32,
    /// The file that remembers what discovery found on this cluster
    /// (`<cache dir>/kubectl-rotate/<host>_<port>.json`), when a cache dir is known.
    pub discovery_cache: Option<std::path::PathBuf>,
}

/// The discovery cache file of the cluster at `url`, under `--cache-dir`, else
/// `$KUBECACHEDIR`, else `~/.kube/cache`, as kubectl keeps its own.
fn discovery_cache(args: &KubeArgs, url: &http::Uri) -> Option<std::path::PathBuf> {
    let dir = args
        .cache_dir
        .clone()
        .or_else(|| std::env::var_os("KUBECACHEDIR").map(Into::into))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".kube/cache"))
        })?;
    let host: String = format!("{}_{}", url.host()?, url.port_u16().unwrap_or(443))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(dir.join("kubectl-rotate").join(format!("{host}.json")))
}

/// The environment variable that bounds a silent watch.
pub const WATCH_SILENCE_ENV: &str = "KUBECTL_ROTATE_WATCH_SILENCE";

/// How long a watch may stay silent (no event, no bookmark, no end) by default before it
/// is taken for dead and opened again from the last resourceVersion: a stream that a proxy
/// keeps open after the server behind it has gone says nothing, forever.
pub const WATCH_SILENCE: Duration = Duration::from_secs(60);

/// The silence bound from `value` (the environment variable's), else `default`.
fn watch_silence(value: Option<&str>, default: Duration) -> Result<Duration> {
    let Some(v) = value else { return Ok(default) };
    match v.parse::<crate::duration::GoDuration>() {
        Ok(d) if !d.get().is_zero() => Ok(d.get()),
        _ => Err(Error::Usage(format!(
            "invalid {WATCH_SILENCE_ENV} {v:?}: want a positive duration such as 30s or 2m"
        ))),
    }
}

/// The user named by the chosen context (`--context`, else the current one).
fn context_user(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let name = context.or(kubeconfig.current_context.as_deref())?;
    kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)?
        .context
        .as_ref()?
        .user
        .clone()
        .filter(|u| !u.is_empty())
}

/// The kubeconfig as kubectl reads it: `--kubeconfig`, else `$KUBECONFIG` (its files
/// merged), else `~/.kube/config`; none at all with `--server` alone; in a pod without
/// any, one made of its service account. Nothing is sent.
pub fn read_kubeconfig(args: &KubeArgs) -> Result<Kubeconfig> {
    let read = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    };
    match read {
        Ok(k) => Ok(k),
        // NB: as kubectl, --server needs no kubeconfig file (only when none was named);
        // without either, in a pod, its service account is used (client-go's in-cluster
        // config).
        Err(_) if args.server.is_some() && args.kubeconfig.is_none() => Ok(overrides::empty()),
        Err(source) => overrides::in_cluster()
            .filter(|_| args.kubeconfig.is_none())
            .ok_or(Error::Kubeconfig { source }),
    }
}

impl Ctx {
    /// Connects as kubectl would: `--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`,
    /// else (in a pod) the pod's service account;
    /// `--context`, else the current context. `-v` lines (from 6 on) go to `log`.
    pub async fn connect(args: &KubeArgs, log: &LogSink) -> Result<Ctx> {
        overrides::check(args)?;
        let mut kubeconfig = read_kubeconfig(args)?;
        overrides::apply(&mut kubeconfig, args)?;
        let user = args
            .user
            .clone()
            .or_else(|| context_user(&kubeconfig, args.context.as_deref()));
        let options = KubeConfigOptions {
            context: args.context.clone(),
            cluster: args.cluster.clone(),
            user: args.user.clone(),
        };
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| Error::Kubeconfig { source })?;
        // NB: kube's built-in retry also retries POST and PATCH on 503/504, which could
        // replay a write that did land; we retry ourselves, only where it is safe.
        config.default_retry = false;
        let request_timeout = Some(args.request_timeout.get()).filter(|d| !d.is_zero());
        if let Some(t) = request_timeout {
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
            config.write_timeout = Some(t);
        }
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        crate::target::validate_name(&namespace)
            .map_err(|_| Error::Usage(format!("invalid namespace {namespace:?}")))?;
        let discovery_cache = discovery_cache(args, &config.cluster_url);
        let log = http_log::HttpLog::new(args.verbosity, log.clone());
        let route = proxy::route(&config.cluster_url, config.proxy_url.as_ref())?;
        let upgrades = client(config.clone(), &route, log.clone(), Transport::Upgrades)
            .map_err(|source| Error::Client { source })?;
        let client = client(config, &route, log, Transport::Requests)
            .map_err(|source| Error::Client { source })?;
        Ok(Ctx {
            client,
            upgrades,
            namespace,
            request_timeout,
            user,
            identity: Default::default(),
            command_id: random_id(),
            watch_silence: watch_silence(
                std::env::var(WATCH_SILENCE_ENV).ok().as_deref(),
                WATCH_SILENCE,
            )?,
            chunk_size: args.chunk_size,
            discovery_cache,
        })
    }

    /// How long one watch request may stay open: under the read timeout, so a quiet watch
    /// ends cleanly and is renewed instead of failing.
    pub fn watch_timeout_secs(&self) -> u32 {
        match self.request_timeout {
            Some(t) => (t.as_secs().saturating_sub(1)).clamp(1, 290) as u32,
            None => 290,
        }
    }
}

/// Which requests a client carries.
#[derive(Clone, Copy)]
enum Transport {
    /// API requests and watches: HTTP/2, else HTTP/1.1.
    Requests,
    /// Connection upgrades (port-forward's WebSocket): HTTP/1.1 only.
    Upgrades,
}

/// The client kube's `Client::try_from(config)` builds (`ClientBuilder`'s default stack:
/// base URI, auth, extra headers over hyper with rustls and the connect/read/write
/// timeouts), with the `-v` log innermost so that it sees each request as it is sent: its
/// full URL and the headers the auth layer adds. Left out of kube's stack: its tracing
/// spans (the plugin installs no subscriber) and the `valid_until` of exec-plugin
/// certificates (the plugin never reads it).
///
/// HTTP/2 when the server offers it, as kubectl: a command's requests, however many at once,
/// share one connection, so the ones sent together pay no TCP and TLS handshakes of their
/// own. Upgrades (port-forward) need HTTP/1.1, so they get a client of their own.
fn client(
    config: Config,
    route: &proxy::Route,
    log: http_log::HttpLog,
    transport: Transport,
) -> kube::Result<Client> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let http = proxy::Connector::new(route, http);
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    let tls = match &config.tls_server_name {
        Some(name) => tls.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(
            name.clone()
                .try_into()
                .map_err(kube::client::RustlsTlsError::InvalidServerName)
                .map_err(kube::Error::RustlsTls)?,
        )),
        None => tls,
    };
    let https = match transport {
        Transport::Requests => tls.enable_all_versions().wrap_connector(http),
        Transport::Upgrades => tls.enable_http1().wrap_connector(http),
    };
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let hyper = hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(http_log::HttpLogLayer::new(log))
        .service(hyper);
    Ok(ClientBuilder::new(service, config.default_namespace).build())
}

/// A short random hex id (OS CSPRNG).
pub fn random_id() -> String {
    use rand::TryRng;
    let mut bytes = [0u8; 8];
    // NB: if the OS RNG fails we still need an id, and it need not be secret: fall back to time.
    if rand::rngs::SysRng.try_fill_bytes(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_silence_bound_is_a_positive_duration_or_the_default() {
        let d = Duration::from_secs(60);
        assert_eq!(watch_silence(None, d).unwrap(), d);
        assert_eq!(
            watch_silence(Some("1m30s"), d).unwrap(),
            Duration::from_secs(90)
        );
        for bad in ["", "0s", "soon", "-5s"] {
            let e = watch_silence(Some(bad), d).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }
}
