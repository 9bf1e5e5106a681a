//! `rotate-sandbox`: a local Kubernetes API server for kubectl-rotate's tests and demo.
//!
//! It speaks the real Kubernetes REST protocol over HTTPS (generated CA, bearer-token auth)
//! well enough that unmodified `kubectl` and kube-rs work against it, and it runs simulated
//! KubeDB ops-manager and Azure Arc controllers so rotations really progress.
//!
//! Tests start it in-process on port 0:
//! ```no_run
//! let sb = rotate_sandbox::SandboxHandle::start(rotate_sandbox::Options::demo()).unwrap();
//! println!("{} {}", sb.url(), sb.kubeconfig_path().display());
//! ```
//!
//! Every request is authenticated, impersonated and authorized as kube-apiserver does it
//! ([`auth`]): bearer tokens (the kubeconfig's admin is in `system:masters`; `bob`, context
//! `sandbox-bob`, is bound to nothing), `Impersonate-*` headers, and RBAC over the Roles,
//! ClusterRoles and bindings in the store, with a real cluster's default policy. To run
//! kubectl or the plugin as another user:
//! ```no_run
//! # let sb = rotate_sandbox::SandboxHandle::start(rotate_sandbox::Options::demo()).unwrap();
//! let _token = sb.add_user("alice", &["team-a"]); // or add_service_account("demo", "ci")
//! let role = std::fs::read_to_string("rbac/kubectl-rotate-rotator.yaml").unwrap();
//! sb.apply_yaml(&role).unwrap(); // as the admin would kubectl apply it
//! sb.bind("alice", "ClusterRole", "kubectl-rotate-rotator", Some("demo")).unwrap();
//! let kubeconfig = sb.kubeconfig_for_user("alice").unwrap(); // --kubeconfig for alice
//! // A service account's real (bound, expiring) token, or a Pod's mount of one:
//! let sa_token = sb.service_account_token("demo", "ci", std::time::Duration::from_secs(600)).unwrap();
//! sb.service_account_mount("demo", "ci", std::path::Path::new("/tmp/sa")).unwrap();
//! // ... run the plugin, then see what it asked and what was refused:
//! for r in sb.faults().requests().iter().filter(|r| !r.allowed) {
//!     println!("{} {} {:?}", r.method, r.path, r.attributes);
//! }
//! ```

// NB: `ApiError` mirrors a Kubernetes `Status` body (code, reason, message, details) and only
// travels on the error path of a request; boxing it would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod auth;
pub mod controllers;
pub mod error;
pub mod faults;
pub mod fixtures;
pub mod http;
pub mod kubeconfig;
pub mod openapi;
pub mod portforward;
pub mod proto;
pub mod realdb;
pub mod registry;
pub mod selector;
pub mod spdy;
pub mod store;
pub mod tls;
pub mod workloads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::ApiError;
pub use faults::Faults;
pub use registry::{Registry, ResourceDef};
pub use store::Store;

/// The bearer token of the sandbox's admin user, `sandbox-admin` in `system:masters`
/// (written into the kubeconfig).
pub const ADMIN_TOKEN: &str = "sandbox-admin-token";
/// A second user, `bob`: authenticated and bound to nothing, so allowed only what every
/// authenticated user is (discovery, the self reviews); everything else is 403.
pub const FORBIDDEN_TOKEN: &str = "sandbox-bob-token";

/// Which objects the sandbox starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixtures {
    /// Only the `default` and `demo` namespaces.
    Empty,
    /// Namespace `demo` with MSSQLServer `mssql-demo`, Postgres `pg-demo`, MariaDB `md-demo`,
    /// Redis `rd-demo` (Ready, auth Secrets `<name>-auth`) and Arc SqlManagedInstance
    /// `sqlmi-demo` (Ready, login secret).
    Demo,
    /// Demo, and the workloads that consume its auth Secrets
    /// ([`fixtures::add_consumers`]): Deployment `pg-consumer`, StatefulSet `md-consumer`,
    /// CronJob `rd-consumer`.
    Consumers,
}

/// How to start a sandbox.
#[derive(Clone, Debug)]
pub struct Options {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write the kubeconfig; `None` writes into a fresh temp dir owned by the handle.
    pub kubeconfig: Option<PathBuf>,
    /// Objects to start with.
    pub fixtures: Fixtures,
    /// Delay between the simulated operators' steps.
    pub operator_delay: Duration,
    /// Run the simulated KubeDB and Arc controllers (off only to compare with transcripts
    /// recorded from a server without controllers).
    pub controllers: bool,
    /// API groups whose CRDs are not installed (e.g. `kubedb.com`, `ops.kubedb.com`): not
    /// discovered, not served, as on a cluster without that operator. Use with
    /// `Fixtures::Empty` when hiding KubeDB (the demo fixtures need it).
    pub uninstalled_groups: Vec<String>,
    /// The latency model: none by default.
    pub latency: Latency,
    /// kube-apiserver 1.35's feature gate AuthorizePodWebsocketUpgradeCreatePermission
    /// (beta and on from 1.35; 1.32, the version the sandbox serves as, has none, so off
    /// by default): a `pods/portforward` upgrade made with GET (a WebSocket) must also be
    /// allowed `create`, as one made with POST (SPDY) is.
    pub websocket_upgrade_needs_create: bool,
}

/// What a remote, real API server costs per request, so benchmarks on the sandbox show it:
/// a network round trip on every request, and for reads the server's work in proportion to
/// the bytes it sends. kube-apiserver 1.32 reading from etcd served 500 Postgres objects of
/// 1.6 KB (managedFields included) in 0.08 s and 2,000 in 0.25 s: about 78 us per KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Added to every request, half before it is served and half after.
    pub round_trip: Duration,
    /// Added to a read (GET, LIST, a page; not a watch) per KiB of its answer.
    pub per_kib: Duration,
}

impl Latency {
    /// The per-KiB read cost measured on kube-apiserver 1.32 with etcd 3.4 (see above).
    pub const REAL_PER_KIB: Duration = Duration::from_micros(78);
}

impl Options {
    /// Demo fixtures, port 0, a short operator delay suited to tests.
    pub fn demo() -> Self {
        Options {
            port: 0,
            kubeconfig: None,
            fixtures: Fixtures::Demo,
            operator_delay: Duration::from_millis(50),
            controllers: true,
            uninstalled_groups: vec![],
            latency: Latency::default(),
            websocket_upgrade_needs_create: false,
        }
    }
    /// No fixtures beyond the namespaces `default` and `demo`.
    pub fn empty() -> Self {
        Options {
            fixtures: Fixtures::Empty,
            ..Self::demo()
        }
    }
}

/// Everything the running server shares between connections and controllers.
pub struct Shared {
    /// The object store.
    pub store: Store,
    /// The resource types served.
    pub registry: Registry,
    /// Test fault hooks.
    pub faults: Faults,
    /// Step delay of the simulated operators.
    pub operator_delay: Duration,
    /// The latency model.
    pub latency: Latency,
    /// The users and their tokens.
    pub users: auth::Users,
    /// See [`Options::websocket_upgrade_needs_create`].
    pub websocket_upgrade_needs_create: bool,
}

/// A running sandbox, on a runtime of its own (so sync and async tests can both use it).
/// Dropping the handle stops the server.
pub struct SandboxHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    ca_pem: String,
    kubeconfig: PathBuf,
    _tmp: Option<TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SandboxHandle {
    /// Start a sandbox on a background thread with its own tokio runtime; returns once it
    /// accepts connections.
    pub fn start(opts: Options) -> std::io::Result<SandboxHandle> {
        let (tx_ready, rx_ready) = std::sync::mpsc::channel();
        let (tx_stop, rx_stop) = tokio::sync::oneshot::channel::<()>();
        let opts2 = opts.clone();
        let thread = std::thread::Builder::new()
            .name("rotate-sandbox".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx_ready.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Server::bind(opts2).await {
                        Ok(server) => {
                            let info = (
                                server.shared.clone(),
                                server.addr,
                                server.tls_ca_pem.clone(),
                            );
                            let _ = tx_ready.send(Ok(info));
                            server
                                .run_until(async {
                                    let _ = rx_stop.await;
                                })
                                .await;
                        }
                        Err(e) => {
                            let _ = tx_ready.send(Err(e));
                        }
                    }
                });
            })?;
        let (shared, addr, ca_pem) = rx_ready
            .recv()
            .map_err(|_| std::io::Error::other("sandbox thread died"))??;
        let url = format!("https://127.0.0.1:{}", addr.port());
        let (kubeconfig, tmp) = match &opts.kubeconfig {
            Some(p) => (p.clone(), None),
            None => {
                let tmp = TempDir::new()?;
                (tmp.path().join("kubeconfig"), Some(tmp))
            }
        };
        kubeconfig::write(&kubeconfig, &url, &ca_pem, ADMIN_TOKEN)?;
        Ok(SandboxHandle {
            shared,
            addr,
            url,
            ca_pem,
            kubeconfig,
            _tmp: tmp,
            shutdown: Some(tx_stop),
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// A kubeconfig (context `sandbox`, namespace `demo`, admin token) for this server.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }
    /// Direct access to the object store (tests read and seed objects through it).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }
    /// Fault hooks.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }
    /// Everything shared by the server.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Add a user `name` in `groups` (and `system:authenticated`, as every authenticated
    /// user) and return a bearer token for them. They may do nothing but what every
    /// authenticated user may (discovery, the self reviews) until bound to a role:
    /// [`SandboxHandle::bind`], [`SandboxHandle::apply_yaml`] or kubectl as the admin.
    pub fn add_user(&self, name: &str, groups: &[&str]) -> String {
        self.shared.users.add(auth::UserInfo::new(name, groups))
    }

    /// Add any user (uid, groups, extra) and return a bearer token for them.
    pub fn add_user_info(&self, user: auth::UserInfo) -> String {
        self.shared.users.add(user)
    }

    /// A bearer token for the service account `namespace/name`: the user
    /// `system:serviceaccount:<namespace>:<name>` in `system:serviceaccounts` and
    /// `system:serviceaccounts:<namespace>`, as its tokens authenticate it (a static
    /// token here; no ServiceAccount object or TokenRequest is needed, and deleting one
    /// changes nothing: for a real, bound token see
    /// [`SandboxHandle::service_account_token`]).
    pub fn add_service_account(&self, namespace: &str, name: &str) -> String {
        self.shared
            .users
            .add(auth::UserInfo::service_account(namespace, name))
    }

    /// A service account token for `namespace/name`, as a TokenRequest would answer it
    /// (audience the API server's, bound to the ServiceAccount's uid), valid for
    /// `lifetime` from now on the sandbox's token clock. The namespace and the
    /// ServiceAccount are created when missing, as the admin would. Unlike the REST API,
    /// any lifetime is allowed (the API refuses less than 10 minutes), so a test can make
    /// one that expires soon; note that the server, as kube-apiserver, still accepts a
    /// token for a minute past its expiry (see [`SandboxHandle::advance_token_clock`]).
    pub fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        lifetime: Duration,
    ) -> Result<String, ApiError> {
        fixtures::namespace(&self.shared, namespace)?;
        let def = self
            .shared
            .registry
            .find("", "v1", "serviceaccounts")
            .ok_or_else(|| ApiError::internal("serviceaccounts are not served"))?;
        let sa = match self.shared.store.get(def, namespace, name) {
            Ok(sa) => sa,
            Err(e) if e.code == 404 => fixtures::apply(
                &self.shared,
                serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": namespace}}),
            )?,
            Err(e) => return Err(e),
        };
        let audiences = [auth::serviceaccounts::ISSUER.to_string()];
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        Ok(self
            .shared
            .users
            .issuer
            .issue(&sa, &audiences, lifetime, None)
            .token)
    }

    /// Write into `dir` (created when missing) what the kubelet projects into a Pod running
    /// as the ServiceAccount `namespace/name` at `/var/run/secrets/kubernetes.io/serviceaccount`:
    /// `token` (a fresh token, [`SandboxHandle::service_account_token`], for the 3607
    /// seconds the kubelet asks for), `ca.crt` (the sandbox's CA, PEM) and `namespace`.
    /// With [`SandboxHandle::in_cluster_env`], what an in-cluster client reads.
    pub fn service_account_mount(
        &self,
        namespace: &str,
        name: &str,
        dir: &Path,
    ) -> std::io::Result<()> {
        let token = self
            .service_account_token(namespace, name, Duration::from_secs(3607))
            .map_err(std::io::Error::other)?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("token"), token)?;
        std::fs::write(dir.join("ca.crt"), &self.ca_pem)?;
        std::fs::write(dir.join("namespace"), namespace)
    }

    /// The environment the kubelet gives every container, as in-cluster clients read it:
    /// `KUBERNETES_SERVICE_HOST` (127.0.0.1) and `KUBERNETES_SERVICE_PORT` (the sandbox's).
    pub fn in_cluster_env(&self) -> Vec<(String, String)> {
        vec![
            ("KUBERNETES_SERVICE_HOST".into(), self.addr.ip().to_string()),
            (
                "KUBERNETES_SERVICE_PORT".into(),
                self.addr.port().to_string(),
            ),
        ]
    }

    /// Move the clock the sandbox issues and checks service account tokens by `by` ahead:
    /// tokens expire as if that time had passed (from then on, new tokens are issued on
    /// the moved clock). A token is refused once more than a minute past its expiry
    /// (go-jose's leeway, which kube-apiserver allows), so to see a 10-minute token
    /// refused, advance the clock by more than 11 minutes.
    pub fn advance_token_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
        self.shared.users.issuer.advance(secs);
    }

    /// The PEM of the sandbox's CA (in kubeconfigs and service account mounts as `ca.crt`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Write a kubeconfig for the user `name` (added with [`SandboxHandle::add_user`] or
    /// [`SandboxHandle::add_service_account`]: their first token), beside the admin's:
    /// cluster `sandbox`, context `sandbox-<name>` (current, namespace `demo`). Run kubectl
    /// or the plugin with `--kubeconfig` set to it to act as that user.
    pub fn kubeconfig_for_user(&self, name: &str) -> std::io::Result<PathBuf> {
        let token = self.shared.users.token_of(name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the sandbox has no user {name:?}"),
            )
        })?;
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = self.kubeconfig.parent().unwrap_or(Path::new("."));
        let path = dir.join(format!("kubeconfig-{file}"));
        kubeconfig::write_for_user(&path, &self.url, &self.ca_pem, name, &token)?;
        Ok(path)
    }

    /// Create or replace the objects of a (multi-document) YAML text as the admin would
    /// with `kubectl apply -f` (defaults and validation applied): Roles, bindings, the
    /// ClusterRoles in `rbac/`, or any other served kind.
    pub fn apply_yaml(&self, yaml: &str) -> Result<Vec<serde_json::Value>, ApiError> {
        fixtures::apply_yaml(&self.shared, yaml)
    }

    /// Bind the role `role_kind`/`role` (`Role` or `ClusterRole`) to the user `user`: a
    /// RoleBinding in `namespace`, or a ClusterRoleBinding when `namespace` is None. The
    /// binding is named `<role>-<user>`.
    pub fn bind(
        &self,
        user: &str,
        role_kind: &str,
        role: &str,
        namespace: Option<&str>,
    ) -> Result<serde_json::Value, ApiError> {
        let name: String = format!("{role}-{user}")
            .chars()
            .map(|c| if c == ':' { '-' } else { c })
            .collect();
        let kind = if namespace.is_some() {
            "RoleBinding"
        } else {
            "ClusterRoleBinding"
        };
        let mut binding = serde_json::json!({
            "apiVersion": format!("{}/v1", auth::RBAC_GROUP),
            "kind": kind,
            "metadata": {"name": name},
            "roleRef": {"apiGroup": auth::RBAC_GROUP, "kind": role_kind, "name": role},
            "subjects": [{"apiGroup": auth::RBAC_GROUP, "kind": "User", "name": user}],
        });
        if let Some(ns) = namespace {
            binding["metadata"]["namespace"] = serde_json::json!(ns);
        }
        fixtures::apply(&self.shared, binding)
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A bound, not yet running server (for the CLI and in-runtime use).
pub struct Server {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// PEM of the generated CA, for kubeconfigs.
    pub tls_ca_pem: String,
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Shared {
    /// The state of a server started with `opts`, before anything is stored: an empty
    /// store, the built-in types but for `opts.uninstalled_groups`, the two built-in users
    /// and a fresh service account token key.
    pub fn new(opts: &Options) -> Shared {
        let mut registry = Registry::builtin();
        registry
            .defs
            .retain(|d| !opts.uninstalled_groups.contains(&d.group));
        Shared {
            store: Store::new(),
            registry,
            faults: Faults::default(),
            operator_delay: opts.operator_delay,
            latency: opts.latency,
            users: auth::Users::new(),
            websocket_upgrade_needs_create: opts.websocket_upgrade_needs_create,
        }
    }
}

impl Server {
    /// Bind 127.0.0.1:port, generate TLS material, load fixtures, start controllers.
    pub async fn bind(opts: Options) -> std::io::Result<Server> {
        let shared = Arc::new(Shared::new(&opts));
        auth::bootstrap::load(&shared);
        fixtures::load(&shared, opts.fixtures);
        // NB: before the first request, so the namespaces the server starts with have
        // their `default` ServiceAccount from the start.
        auth::serviceaccounts::ensure_all(&shared);
        let (acceptor, ca_pem) = tls::acceptor()?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        if opts.controllers {
            controllers::spawn_all(shared.clone());
        }
        // NB: kube-controller-manager's, so they run with or without the simulated operators.
        tokio::spawn(auth::objects::run_aggregation(shared.clone()));
        tokio::spawn(auth::serviceaccounts::run(shared.clone()));
        Ok(Server {
            shared,
            addr,
            tls_ca_pem: ca_pem,
            listener,
            acceptor,
        })
    }

    /// Serve until `stop` resolves.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        http::serve(self.listener, self.acceptor, self.shared, stop).await
    }
}

/// A temp dir removed on drop (small, to avoid a dependency for one use).
struct TempDir(PathBuf);
impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let p = base.join(format!("rotate-sandbox-{:016x}", rand::random::<u64>()));
            if std::fs::create_dir(&p).is_ok() {
                return Ok(TempDir(p));
            }
        }
        Err(std::io::Error::other("cannot create a temp dir"))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
