//! kubectl's connection flags laid over the kubeconfig, as client-go's clientcmd overrides
//! do: `--server`, `--certificate-authority`, `--insecure-skip-tls-verify`,
//! `--tls-server-name` on the chosen cluster; `--token`, `--client-certificate`,
//! `--client-key`, `--as`, `--as-group`, `--as-uid` on the chosen user.

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

use crate::cli::KubeArgs;
use crate::error::{Error, Result};

/// The context made up when there is no kubeconfig and `--server` says where to go.
const FLAGS_CONTEXT: &str = "kubectl-rotate-flags";

/// The context made up for a pod's own service account.
const IN_CLUSTER_CONTEXT: &str = "in-cluster";

/// Where the kubelet mounts a pod's service account token, CA and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A kubeconfig holding only what the flags say (kubectl without a kubeconfig file).
pub fn empty() -> Kubeconfig {
    only(FLAGS_CONTEXT, Cluster::default(), AuthInfo::default(), None)
}

/// A kubeconfig of one context `name`: one cluster, one user, and a namespace.
fn only(name: &str, cluster: Cluster, user: AuthInfo, namespace: Option<String>) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.into(),
            cluster: Some(cluster),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.into(),
            auth_info: Some(user),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: name.into(),
            context: Some(Context {
                cluster: name.into(),
                user: Some(name.into()),
                namespace,
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(name.into()),
        ..Default::default()
    }
}

/// The pod's own service account, as client-go's in-cluster config reads it, when the
/// plugin runs in a pod: `KUBERNETES_SERVICE_HOST`/`_PORT` set and a token mounted. As a
/// kubeconfig, so that the flags lay over it as over any other: the token is read from its
/// file on each use (the kubelet renews it), the CA is the mounted one, and the namespace
/// the pod's.
pub fn in_cluster() -> Option<Kubeconfig> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST")
        .ok()
        .filter(|h| !h.is_empty())?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT")
        .ok()
        .filter(|p| !p.is_empty())?;
    let dir = std::path::Path::new(SERVICE_ACCOUNT_DIR);
    let token = dir.join("token");
    if !token.is_file() {
        return None;
    }
    // NB: an IPv6 address goes in brackets (net.JoinHostPort).
    let server = match host.contains(':') {
        true => format!("https://[{host}]:{port}"),
        false => format!("https://{host}:{port}"),
    };
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let cluster = Cluster {
        server: Some(server),
        certificate_authority: Some(dir.join("ca.crt").to_string_lossy().into_owned()),
        ..Default::default()
    };
    let user = AuthInfo {
        token_file: Some(token.to_string_lossy().into_owned()),
        ..Default::default()
    };
    Some(only(IN_CLUSTER_CONTEXT, cluster, user, namespace))
}

/// Checks the flags that cannot go together, before anything is read.
pub fn check(args: &KubeArgs) -> Result<()> {
    if args.insecure_skip_tls_verify && args.certificate_authority.is_some() {
        return Err(Error::Usage(
            "specifying a root certificates file with the insecure flag is not allowed: \
             drop --certificate-authority or --insecure-skip-tls-verify"
                .into(),
        ));
    }
    if args.as_user.is_none() && (!args.as_group.is_empty() || args.as_uid.is_some()) {
        return Err(Error::Usage(
            "--as-group and --as-uid need --as: say which user to impersonate".into(),
        ));
    }
    if let Some(s) = &args.server {
        let ok = s
            .parse::<http::Uri>()
            .is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()));
        if !ok {
            return Err(Error::Usage(format!(
                "invalid --server {s:?}: want a URL such as https://host:6443"
            )));
        }
    }
    Ok(())
}

/// Lays the flags over the cluster and user that `--context`/`--cluster`/`--user` (else
/// the current context) choose, creating those entries when the kubeconfig lacks them.
pub fn apply(kubeconfig: &mut Kubeconfig, args: &KubeArgs) -> Result<()> {
    let context_name = args
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone());
    let cluster_name = args
        .cluster
        .clone()
        .or_else(|| context.as_ref().map(|c| c.cluster.clone()))
        .unwrap_or_default();
    let user_name = args
        .user
        .clone()
        .or_else(|| context.as_ref().and_then(|c| c.user.clone()))
        .unwrap_or_default();

    let wants_cluster = args.server.is_some()
        || args.certificate_authority.is_some()
        || args.insecure_skip_tls_verify
        || args.tls_server_name.is_some();
    if wants_cluster {
        let cluster = cluster_entry(kubeconfig, &cluster_name);
        if let Some(s) = &args.server {
            cluster.server = Some(s.clone());
        }
        if let Some(ca) = &args.certificate_authority {
            cluster.certificate_authority = Some(ca.display().to_string());
            cluster.certificate_authority_data = None;
        }
        if args.insecure_skip_tls_verify {
            cluster.insecure_skip_tls_verify = Some(true);
            cluster.certificate_authority = None;
            cluster.certificate_authority_data = None;
        }
        if let Some(n) = &args.tls_server_name {
            cluster.tls_server_name = Some(n.clone());
        }
    }

    let wants_user = args.token.is_some()
        || args.client_certificate.is_some()
        || args.client_key.is_some()
        || args.as_user.is_some();
    if wants_user {
        let user = user_entry(kubeconfig, &user_name);
        if let Some(t) = &args.token {
            // NB: the flag's token is the credential: it replaces the user's other ways
            // of getting one, as kubectl's --token does.
            user.token = Some(t.0.clone().into());
            user.token_file = None;
            user.exec = None;
            user.auth_provider = None;
            user.username = None;
            user.password = None;
        }
        if let Some(c) = &args.client_certificate {
            user.client_certificate = Some(c.display().to_string());
            user.client_certificate_data = None;
        }
        if let Some(k) = &args.client_key {
            user.client_key = Some(k.display().to_string());
            user.client_key_data = None;
        }
        if let Some(a) = &args.as_user {
            user.impersonate = Some(a.clone());
            user.impersonate_groups = Some(args.as_group.clone()).filter(|g| !g.is_empty());
            user.impersonate_uid = args.as_uid.clone();
        }
    }
    // NB: a context named only by the flags (the kubeconfig has none yet) must exist for
    // kube to pick it.
    if context.is_none() && (wants_cluster || wants_user) && !context_name.is_empty() {
        kubeconfig.contexts.push(NamedContext {
            name: context_name,
            context: Some(Context {
                cluster: cluster_name,
                user: Some(user_name),
                ..Default::default()
            }),
            other: Default::default(),
        });
    }
    Ok(())
}

fn cluster_entry<'a>(kubeconfig: &'a mut Kubeconfig, name: &str) -> &'a mut Cluster {
    let clusters = &mut kubeconfig.clusters;
    let i = index_of(
        clusters,
        |c| c.name == name,
        || NamedCluster {
            name: name.into(),
            cluster: None,
            other: Default::default(),
        },
    );
    clusters[i].cluster.get_or_insert_with(Cluster::default)
}

fn user_entry<'a>(kubeconfig: &'a mut Kubeconfig, name: &str) -> &'a mut AuthInfo {
    let users = &mut kubeconfig.auth_infos;
    let i = index_of(
        users,
        |u| u.name == name,
        || NamedAuthInfo {
            name: name.into(),
            auth_info: None,
            other: Default::default(),
        },
    );
    users[i].auth_info.get_or_insert_with(AuthInfo::default)
}

/// Where `is` finds an entry of `entries`, after adding `make()` when it finds none.
fn index_of<T>(entries: &mut Vec<T>, is: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> usize {
    match entries.iter().position(is) {
        Some(i) => i,
        None => {
            entries.push(make());
            entries.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn kubeconfig() -> Kubeconfig {
        serde_yaml::from_str(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters:\n- name: k\n  cluster:\n    server: https://a:6443\n    certificate-authority-data: Zm9v\n\
             users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: get-token\n\
             contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n",
        )
        .unwrap()
    }

    fn args(f: impl FnOnce(&mut KubeArgs)) -> KubeArgs {
        let mut a = KubeArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn server_token_and_impersonation_land_on_the_contexts_cluster_and_user() {
        let mut kc = kubeconfig();
        let a = args(|a| {
            a.server = Some("https://b:443".into());
            a.token = Some(crate::cli::Token("t0k".into()));
            a.as_user = Some("alice".into());
            a.as_group = vec!["g1".into(), "g2".into()];
            a.as_uid = Some("42".into());
        });
        check(&a).unwrap();
        apply(&mut kc, &a).unwrap();
        let c = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.server.as_deref(), Some("https://b:443"));
        assert_eq!(c.certificate_authority_data.as_deref(), Some("Zm9v"));
        let u = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(u.token.as_ref().unwrap().expose_secret(), "t0k");
        assert!(
            u.exec.is_none(),
            "the flag's token replaces the exec plugin"
        );
        assert_eq!(u.impersonate.as_deref(), Some("alice"));
        assert_eq!(
            u.impersonate_groups.as_deref(),
            Some(&["g1".to_string(), "g2".into()][..])
        );
        assert_eq!(u.impersonate_uid.as_deref(), Some("42"));
    }

    #[test]
    fn insecure_drops_the_ca_and_refuses_a_ca_file_with_it() {
        let mut kc = kubeconfig();
        let a = args(|a| a.insecure_skip_tls_verify = true);
        apply(&mut kc, &a).unwrap();
        let c = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.insecure_skip_tls_verify, Some(true));
        assert!(c.certificate_authority_data.is_none());
        let both = args(|a| {
            a.insecure_skip_tls_verify = true;
            a.certificate_authority = Some("/ca.crt".into());
        });
        assert!(check(&both).is_err());
    }

    #[test]
    fn groups_without_a_user_and_a_server_without_a_host_are_refused() {
        assert!(check(&args(|a| a.as_group = vec!["g".into()])).is_err());
        assert!(check(&args(|a| a.as_uid = Some("1".into()))).is_err());
        assert!(check(&args(|a| a.server = Some("not a url".into()))).is_err());
    }

    #[test]
    fn without_a_kubeconfig_the_flags_make_one() {
        let mut kc = empty();
        let a = args(|a| {
            a.server = Some("https://b:443".into());
            a.token = Some(crate::cli::Token("t".into()));
        });
        apply(&mut kc, &a).unwrap();
        assert_eq!(
            kc.clusters[0].cluster.as_ref().unwrap().server.as_deref(),
            Some("https://b:443")
        );
        assert_eq!(kc.current_context.as_deref(), Some(FLAGS_CONTEXT));
    }
}
