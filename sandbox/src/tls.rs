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
    let ca = TestCa::new("rotate-sandbox-ca")?;
    let leaf = ca.issue(&SERVER_NAMES, Validity::Current)?;
    let chain = vec![CertificateDer::from(leaf.der)];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der));
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
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(cfg)), ca.pem))
}

/// A certificate authority made for one test run: the sandbox's own, and the ones tests
/// give the real database servers ([`crate::realdb::Server`]'s TLS).
pub struct TestCa {
    /// The CA certificate, PEM: what a client trusts (`ca.crt`).
    pub pem: String,
    params: CertificateParams,
    key: KeyPair,
}

/// When an issued certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday for a year (rcgen's default would start in 1975).
    Current,
    /// Ended yesterday: a server presenting it fails every verifying client.
    Expired,
}

/// A server certificate and its key, issued by a [`TestCa`].
pub struct Issued {
    /// The certificate, PEM (`tls.crt`).
    pub cert_pem: String,
    /// Its PKCS#8 private key, PEM (`tls.key`).
    pub key_pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The issuing CA's certificate, PEM (`ca.crt`).
    pub ca_pem: String,
}

impl TestCa {
    /// A self-signed CA named `common_name`.
    pub fn new(common_name: &str) -> std::io::Result<TestCa> {
        let key = KeyPair::generate().map_err(io)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).map_err(io)?.pem();
        Ok(TestCa { pem, params, key })
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn issue(&self, names: &[&str], validity: Validity) -> std::io::Result<Issued> {
        let key = KeyPair::generate().map_err(io)?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(io)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        let day = time::Duration::days(1);
        let now = time::OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (now - day, now + 365 * day),
            Validity::Expired => (now - 30 * day, now - day),
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(io)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            ca_pem: self.pem.clone(),
        })
    }
}
