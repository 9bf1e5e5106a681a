//! Reaching a database and logging in: read the credentials (current and previous) from
//! the auth Secret, pick the TLS mode, find the primary pod and its port, then one login
//! per credential, each over a fresh port-forward through the API server (as `kubectl
//! port-forward` does) or, with `--address`, over a direct TCP connection.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use rotate_login::{LoginRequest, LoginResult, Outcome, Protocol, Tls};

use super::{
    ca_candidates, report, route, tls_mode, unsupported, Attempt, LoginRoute, VerifyReport,
};
use crate::api::access::{self, Need};
use crate::api::read::{get_secret_opt, read_credential_secret, CredentialSecret};
use crate::api::retry;
use crate::backend::{self, LoginPlace};
use crate::context::Ctx;
use crate::creds::{pair, Role};
use crate::error::{Error, Result};
use crate::report::Progress;
use crate::target::Target;

/// What to verify and how: checked from the command line before any API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyPlan {
    /// The database to log in to.
    pub target: Target,
    /// `--address HOST:PORT`: connect directly instead of port-forwarding.
    pub address: Option<String>,
    /// `--insecure-skip-db-tls-verify`: TLS without verifying the database's certificate.
    pub insecure: bool,
    /// `--require-tls`: TLS even without `spec.tls`.
    pub require_tls: bool,
    /// Bound on each attempt (port-forward set-up included).
    pub attempt_timeout: Duration,
    /// `-v` level: from [`SAY_WHERE`] on it says what is tried where, from [`SAY_LOGINS`]
    /// on each login request too (password masked).
    pub verbosity: u8,
}

/// The `-v` level from which `verify` says what it tries where.
pub const SAY_WHERE: u8 = 2;
/// The `-v` level from which `verify` shows each login request, its password masked.
pub const SAY_LOGINS: u8 = 4;

/// Where the logins go.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    /// A port of a pod, through the API server.
    Pod { name: String, port: u16 },
    /// `HOST:PORT`, over TCP.
    Direct(String),
}

impl Endpoint {
    fn via(&self) -> String {
        match self {
            Endpoint::Pod { name, port } => format!("pod/{name}:{port}"),
            Endpoint::Direct(a) => a.clone(),
        }
    }
}

/// Verbose lines on stderr. NB: only names, modes and sanitized server messages are ever
/// passed here, and the login request through its masking `Debug`.
struct Log<'a> {
    level: u8,
    progress: &'a mut dyn Progress,
}

impl Log<'_> {
    fn say(&mut self, level: u8, msg: impl FnOnce() -> String) {
        if self.level >= level {
            self.progress.note(&format!("verify: {}", msg()));
        }
    }
}

/// Verifies the logins of `plan.target` in namespace `ns`; `progress` gets `-v` lines.
pub async fn run(
    ctx: &Ctx,
    ns: &str,
    plan: &VerifyPlan,
    progress: &mut dyn Progress,
) -> Result<VerifyReport> {
    let mut log = Log {
        level: plan.verbosity,
        progress,
    };
    let engine = plan.target.engine;
    let LoginRoute {
        protocol,
        default_port,
    } = route(engine).ok_or_else(|| unsupported(engine))?;
    let CredentialSecret {
        db: item,
        name: secret_name,
        data,
    } = read_credential_secret(ctx, ns, &plan.target).await?;
    let name = plan.target.name.as_str();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    // The credentials, as `prev` pairs them.
    let (credentials, note) = pair(engine, &secret_name, &data, None);

    // TLS: required and verified for KubeDB's spec.tls and with --require-tls, unless told
    // not to verify.
    let mode = tls_mode(item.spec.tls.is_some() || plan.require_tls, plan.insecure);
    let (ca_secret, ca_pem) = match mode {
        Tls::Require => {
            let (c, ca) = trusted_ca(&secrets, ns, plan, &item).await?;
            let why = if item.spec.tls.is_some() {
                "spec.tls"
            } else {
                "--require-tls"
            };
            log.say(SAY_WHERE, || {
                format!("TLS required ({why}): trusting ca.crt of secret {c}")
            });
            (Some(c), Some(ca))
        }
        _ => (None, None),
    };

    let (endpoint, server_name) = match &plan.address {
        Some(a) => {
            let host = a.rsplit_once(':').map(|(h, _)| h).unwrap_or(a);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (Endpoint::Direct(a.clone()), host.to_string())
        }
        None => {
            let place = backend::of(engine).login_place(name, ns);
            let (pod, port, how) = primary_pod(ctx, ns, name, &place, default_port).await?;
            log.say(SAY_WHERE, || {
                format!("primary pod {pod} ({how}), port {port}")
            });
            (Endpoint::Pod { name: pod, port }, place.server_name)
        }
    };
    log.say(SAY_WHERE, || {
        format!(
            "{} login to {} via {}, TLS {}",
            protocol,
            plan.target,
            endpoint.via(),
            super::tls_name(mode)
        )
    });

    let mut rep = report(ns, engine, name, protocol, endpoint.via(), mode);
    rep.typed = plan.target.to_string();
    rep.ca_secret = ca_secret;
    if let Some(n) = note {
        rep.notes
            .push(format!("only the current credential was checked: {n}"));
    }
    let current_password = credentials
        .iter()
        .find(|c| c.role == Role::Current)
        .and_then(|c| c.password.clone());
    for cred in &credentials {
        let Some(password) = &cred.password else {
            rep.notes.push(format!(
                "the {} credential has no password in secret {secret_name}: not checked",
                cred.role.as_str()
            ));
            continue;
        };
        if cred.role == Role::Previous && Some(password) == current_password.as_ref() {
            rep.notes.push(
                "the previous password is the current one: nothing to check it refused".into(),
            );
            continue;
        }
        let username = cred.username.clone().unwrap_or_default();
        let req = LoginRequest {
            tls: mode,
            server_name: &server_name,
            ca_pem: ca_pem.as_deref(),
            ..LoginRequest::new(&username, password.expose())
        };
        log.say(SAY_LOGINS, || {
            format!("{} credential: {req:?}", cred.role.as_str())
        });
        let outcome = attempt(
            ctx,
            ns,
            &endpoint,
            protocol,
            &req,
            plan.attempt_timeout,
            &mut log,
        )
        .await;
        log.say(SAY_WHERE, || {
            format!(
                "{} credential (user {username:?}): {} in {}ms: {}",
                cred.role.as_str(),
                outcome.result,
                outcome.latency.as_millis(),
                outcome.detail
            )
        });
        if outcome.password_in_clear {
            clear_text(&mut log, &endpoint, protocol, cred.role, &username);
        }
        rep.attempts
            .push(Attempt::new(cred.role, &username, &outcome));
    }
    if rep.attempt(Role::Current).is_none() {
        return Err(Error::NotFound {
            what: format!("a current password in secret {secret_name:?}"),
            hint: Some(format!("{} has nothing to log in with", plan.target)),
        });
    }
    Ok(rep)
}

/// Says that a password went to the server outside TLS. Over `--address` that crossed the
/// network readable by anyone on the path: a warning. Through a port-forward it travelled
/// inside the API server's TLS connection and reached the pod on its own loopback, so it
/// is only said at `-v=2`.
fn clear_text(log: &mut Log<'_>, endpoint: &Endpoint, protocol: Protocol, role: Role, user: &str) {
    let what = match protocol {
        Protocol::Postgres => "the server asked for a cleartext password",
        Protocol::Tds => "TDS's LOGIN7 only scrambles it",
        Protocol::Redis => "Redis AUTH carries it as is",
        Protocol::Elasticsearch => "HTTP Basic carries it as is",
        Protocol::Mysql | Protocol::Mongodb => "the protocol sent it",
    };
    match endpoint {
        Endpoint::Direct(addr) => log.progress.warn(&format!(
            "the {} password of user {user:?} went to {addr} without TLS ({what}); \
             pass --require-tls to refuse that",
            role.as_str()
        )),
        Endpoint::Pod { .. } => log.say(SAY_WHERE, || {
            format!(
                "the {} password went without TLS ({what}), inside the port-forward tunnel",
                role.as_str()
            )
        }),
    }
}

/// The CA a TLS login trusts: `ca.crt` of the first of the database's certificate Secrets
/// that holds one, with that Secret's name; none is an error that says where it looked.
async fn trusted_ca(
    secrets: &Api<Secret>,
    ns: &str,
    plan: &VerifyPlan,
    item: &crate::model::DbItem,
) -> Result<(String, Vec<u8>)> {
    let candidates = ca_candidates(&plan.target.name, &item.tls_secrets());
    for c in &candidates {
        if let Some(ca) = get_secret_opt(secrets, ns, c)
            .await?
            .and_then(|s| s.data?.get("ca.crt").map(|b| b.0.clone()))
        {
            return Ok((c.clone(), ca));
        }
    }
    Err(Error::NotFound {
        what: format!(
            "the CA certificate (ca.crt) of {}'s TLS: none in secrets {}",
            plan.target,
            candidates.join(", ")
        ),
        hint: Some(
            "pass --insecure-skip-db-tls-verify to encrypt without verifying the database's \
             certificate"
                .into(),
        ),
    })
}

/// Checks, before a rotation with `--verify` writes anything, what the verification will
/// need that a rotation cannot give it: the credential Secret, the CA when TLS is
/// required, and the permissions ([`needs`]). A missing CA found only after the rotation
/// would leave a rotated database and exit 4.
pub async fn preflight(ctx: &Ctx, ns: &str, plan: &VerifyPlan) -> Result<()> {
    // NB: the Secrets are checked by name once the database says which (a Role may grant
    // only those); the namespace's rules, fetched with the first check, serve the second.
    let permissions = access::Permissions::default();
    let first = needs(ns, plan.address.as_deref(), &[]);
    let (CredentialSecret { db, name, .. }, ()) = futures::try_join!(
        read_credential_secret(ctx, ns, &plan.target),
        permissions.require(ctx, &first)
    )?;
    let tls = tls_mode(db.spec.tls.is_some() || plan.require_tls, plan.insecure) == Tls::Require;
    let mut secrets = vec![name];
    if tls {
        secrets.extend(ca_candidates(&plan.target.name, &db.tls_secrets()));
    }
    permissions
        .require(ctx, &secret_needs(ns, &secrets))
        .await?;
    if tls {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        trusted_ca(&secrets, ns, plan, &db).await?;
    }
    Ok(())
}

/// Get each of `secrets` in `ns`.
fn secret_needs(ns: &str, secrets: &[String]) -> Vec<Need> {
    secrets
        .iter()
        .map(|s| Need::new("get", "", "secrets", ns).named(s))
        .collect()
}

/// The Secrets the logins to `db` may read: its credential Secret, and the Secrets its CA
/// may be in (when TLS is required).
pub fn secrets_read(engine: &crate::engines::EngineSpec, db: &crate::model::DbItem) -> Vec<String> {
    let mut out: Vec<String> = db.credential_secret(engine).into_iter().collect();
    out.extend(ca_candidates(&db.metadata.name, &db.tls_secrets()));
    out
}

/// What the logins will ask of the API server after the rotation: `secrets` (the
/// credential, the CA) by name, and unless `--address` is given the pods, the Service and
/// the port-forward to the primary.
pub fn needs(ns: &str, address: Option<&str>, secrets: &[String]) -> Vec<Need> {
    let mut needs = secret_needs(ns, secrets);
    if address.is_none() {
        needs.extend([
            Need::new("list", "", "pods", ns),
            Need::new("get", "", "services", ns),
            // NB: a port-forward over a WebSocket (a GET) is authorized as `get`
            // before 1.35 and as both from 1.35; over SPDY (a POST) as `create`.
            Need::new("get", "", "pods", ns).on_subresource("portforward"),
            Need::new("create", "", "pods", ns).on_subresource("portforward"),
        ]);
    }
    needs
}

/// The primary pod and the database port on it: the pod labelled `kubedb.com/role=primary`
/// (else any pod of the instance, else `<db>-0`), and the primary Service's target port
/// (else the engine's usual port). Returns how the pod was found, for `-v`.
async fn primary_pod(
    ctx: &Ctx,
    ns: &str,
    db: &str,
    place: &LoginPlace,
    default_port: u16,
) -> Result<(String, u16, &'static str)> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let mut found = None;
    for (selector, how) in &place.pod_selectors {
        let lp = ListParams::default().labels(selector);
        let list = retry(|| pods.list(&lp))
            .await
            .map_err(|e| Error::api(format!("list pods in {ns} with {selector}"), e))?;
        let mut items = list.items;
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        // Running pods first: a terminating or pending one cannot answer.
        items
            .sort_by_key(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running"));
        if let Some(p) = items.into_iter().next() {
            found = Some((p, *how));
            break;
        }
    }
    let (pod, how) = match found {
        Some(f) => f,
        None => {
            let fallback = &place.fallback_pod;
            match retry(|| pods.get_opt(fallback)).await {
                Ok(Some(p)) => (p, "by name; no pod carries the instance label"),
                Ok(None) => {
                    return Err(Error::NotFound {
                        what: format!("a pod of {db} in namespace {ns:?}"),
                        hint: Some(format!(
                            "no pod is labelled {} and there is no {fallback}; is the \
                             database running? (or connect directly with --address HOST:PORT)",
                            place
                                .pod_selectors
                                .last()
                                .map(|(s, _)| s.as_str())
                                .unwrap_or_default()
                        )),
                    })
                }
                Err(e) => return Err(Error::api(format!("get pod {ns}/{fallback}"), e)),
            }
        }
    };
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    let service = retry(|| services.get_opt(&place.service))
        .await
        .map_err(|e| Error::api(format!("get service {ns}/{}", place.service), e))?;
    Ok((
        pod_name,
        target_port(service.as_ref(), &pod, default_port),
        how,
    ))
}

/// The container port the primary Service's `primary` port (else its first) sends to,
/// resolving a named target port against the pod's containers.
fn target_port(service: Option<&Service>, pod: &Pod, default_port: u16) -> u16 {
    let ports = service
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let Some(p) = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("primary"))
        .or(ports.first())
    else {
        return default_port;
    };
    let by_name = |name: &str| {
        pod.spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|cp| cp.name.as_deref() == Some(name))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
    };
    match &p.target_port {
        Some(IntOrString::Int(n)) => u16::try_from(*n).unwrap_or(default_port),
        Some(IntOrString::String(name)) => by_name(name).unwrap_or(default_port),
        None => u16::try_from(p.port).unwrap_or(default_port),
    }
}

/// One login, bounded by `timeout` as a whole.
async fn attempt(
    ctx: &Ctx,
    ns: &str,
    endpoint: &Endpoint,
    protocol: rotate_login::Protocol,
    req: &LoginRequest<'_>,
    timeout: Duration,
    log: &mut Log<'_>,
) -> Outcome {
    let (pod, port) = match endpoint {
        Endpoint::Direct(addr) => {
            return rotate_login::login_tcp(protocol, addr, req, timeout).await
        }
        Endpoint::Pod { name, port } => (name.as_str(), *port),
    };
    let start = Instant::now();
    let unreachable = |detail: String| Outcome {
        result: LoginResult::Unreachable,
        detail: rotate_login::sanitize(&detail, req),
        latency: start.elapsed(),
        password_in_clear: false,
    };
    // NB: an upgrade, so over the HTTP/1.1 client.
    let pods: Api<Pod> = Api::namespaced(ctx.upgrades.clone(), ns);
    // NB: a fresh port-forward per attempt, as `kubectl port-forward` opens a stream per
    // connection: one login's close cannot disturb the next.
    let mut pf = match tokio::time::timeout(timeout, pods.portforward(pod, &[port])).await {
        Err(_) => {
            return unreachable(format!(
                "port-forward to pod/{pod}:{port} not set up within {}",
                crate::duration::human(timeout)
            ))
        }
        Ok(Err(e)) => return unreachable(format!("cannot port-forward to pod/{pod}:{port}: {e}")),
        Ok(Ok(pf)) => pf,
    };
    let (Some(stream), errors) = (pf.take_stream(port), pf.take_error(port)) else {
        return unreachable(format!("port-forward to pod/{pod}:{port} gave no stream"));
    };
    let left = timeout.saturating_sub(start.elapsed());
    let mut outcome = rotate_login::login_within(protocol, stream, req, left).await;
    if outcome.result == LoginResult::Unreachable {
        // The kubelet says why on the error channel ("... connection refused"): more use
        // than "closed before the server said anything".
        if let Some(errors) = errors {
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), errors).await {
                log.say(SAY_LOGINS, || {
                    format!(
                        "port-forward error channel: {}",
                        rotate_login::sanitize(&msg, req)
                    )
                });
                outcome.detail = rotate_login::sanitize(&msg, req);
            }
        }
    }
    // The forwarder ends once the server closes; do not wait long for it.
    if tokio::time::timeout(Duration::from_secs(2), pf.join())
        .await
        .is_err()
    {
        log.say(SAY_LOGINS, || {
            "port-forward did not close within 2s; left to finish".into()
        });
    }
    outcome.latency = start.elapsed();
    outcome
}
