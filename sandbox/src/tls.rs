//! TLS material generated at start-up: a CA (written into kubeconfigs and service account
//! mounts) and a server certificate signed by it, for 127.0.0.1 and localhost and for the
//! names in-cluster clients reach a real kube-apiserver by ([`SERVER_NAMES`]).

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The server certificate's subject alternative names: the loopback ones the sandbox is
/// reached by, and the `kubernetes` Service's DNS names a real kube-apiserver's certificate
/// carries (kubeadm's apiserver certificate), for in-cluster clients such as kube-rs's
/// `Config::incluster_dns` (`https://kubernetes.default.svc`).
pub const SERVER_NAMES: [&str; 6] = [
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("TLS setup: {e}"))
}

/// A TLS acceptor for the server, and the CA certificate as PEM.
pub fn acceptor() -> std::io::Result<(tokio_rustls::TlsAcceptor, String)> {
    acceptor_with_versions(rustls::DEFAULT_VERSIONS)
}

/// [`acceptor`] speaking only `versions` (TLS 1.2 alone, as SQL Server inside TDS 7.x).
pub fn acceptor_with_versions(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<(tokio_rustls::TlsAcceptor, String)> {
    let ca_key = KeyPair::generate().map_err(io)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rotate-sandbox-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(io)?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let key = KeyPair::generate().map_err(io)?;
    let mut params = CertificateParams::new(SERVER_NAMES.map(String::from).to_vec()).map_err(io)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "rotate-sandbox");
    let cert = params.signed_by(&key, &issuer).map_err(io)?;

    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(io)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(io)?;
    // As kube-apiserver: HTTP/2 for clients that offer it (kubectl: every request on one
    // connection), HTTP/1.1 for the others and for upgrades (port-forward's WebSocket and
    // SPDY, which clients ask for on an HTTP/1.1-only connection).
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        ca_cert.pem(),
    ))
}
