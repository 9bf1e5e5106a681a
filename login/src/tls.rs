//! TLS client side shared by every protocol: rustls with the ring provider (as kube and the
//! sandbox), trusting only the CA given in the request.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{proto, Conn, Fail, LoginRequest, Tls};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `req`, or a protocol failure explaining why TLS cannot be
/// used as asked (no CA for `Require`, unreadable CA).
pub(crate) fn config(req: &LoginRequest<'_>) -> Result<ClientConfig, Fail> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Fail::Protocol(format!("TLS configuration: {e}")))?;
    let verify = match (req.tls, req.ca_pem) {
        (Tls::RequireInsecure, _) | (Tls::Prefer, None) => false,
        (Tls::Require, None) => {
            return proto(
                "TLS is required but no CA certificate was given to verify the server \
                 (RequireInsecure skips verification)",
            )
        }
        _ => true,
    };
    let cfg = if verify {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(req.ca_pem.unwrap_or_default()) {
            let cert = cert.map_err(|e| Fail::Protocol(format!("cannot read the CA: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Fail::Protocol(format!("cannot use the CA: {e}")))?;
        }
        if roots.is_empty() {
            return proto("the CA PEM holds no certificate");
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(cfg)
}

/// Run the TLS handshake over `stream` and return the encrypted stream.
pub(crate) async fn connect(stream: Conn, req: &LoginRequest<'_>) -> Result<Conn, Fail> {
    let cfg = config(req)?;
    let name = ServerName::try_from(req.server_name.to_string())
        .map_err(|_| Fail::Protocol(format!("invalid TLS server name {:?}", req.server_name)))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, stream)
        .await
        .map_err(|e| match e.kind() {
            // NB: rustls reports certificate and handshake problems as InvalidData; those are
            // errors of a server that answered, not an unreachable one.
            std::io::ErrorKind::InvalidData => Fail::Protocol(format!("TLS handshake failed: {e}")),
            _ => Fail::Io(e),
        })?;
    Ok(Box::new(tls))
}

/// `RequireInsecure` (and `Prefer` without a CA): any certificate is accepted, but the
/// handshake signature is still checked against it, so the session is encrypted to
/// whoever holds that certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
