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
            std::io::ErrorKind::InvalidData => {
                let why = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .and_then(|r| certificate_problem(r, req.server_name))
                    .unwrap_or_else(|| e.to_string());
                Fail::Protocol(format!("TLS handshake failed: {why}"))
            }
            _ => Fail::Io(e),
        })?;
    Ok(Box::new(tls))
}

/// What is wrong with the server's certificate, in words a user can act on, when that is
/// why the handshake failed; None for any other failure (rustls's own text is kept).
fn certificate_problem(e: &rustls::Error, server_name: &str) -> Option<String> {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else {
        return None;
    };
    Some(match c {
        C::UnknownIssuer => "the server's certificate was not issued by the trusted CA".into(),
        C::NotValidForName => format!("the server's certificate is not valid for {server_name:?}"),
        C::NotValidForNameContext { presented, .. } => format!(
            "the server's certificate is not valid for {server_name:?} (it names {})",
            presented
                .iter()
                .map(|p| presented_name(p))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        C::Expired => "the server's certificate has expired".into(),
        C::ExpiredContext { time, not_after } => format!(
            "the server's certificate expired {} ago",
            ago(time.as_secs().saturating_sub(not_after.as_secs()))
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (is a clock wrong?)".into()
        }
        C::BadSignature => "the server's certificate has a bad signature".into(),
        _ => return None,
    })
}

/// `DnsName("db.ns.svc")` or `IpAddress(127.0.0.1)`, as rustls lists a certificate's
/// names, without the wrapper.
fn presented_name(p: &str) -> &str {
    p.split_once('(')
        .map_or(p, |(_, rest)| rest.trim_end_matches(')'))
        .trim_matches('"')
}

/// `3 days`, `5 hours`, `1 minute`, `12 seconds`.
fn ago(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "day"),
        s if s >= 3_600 => (s / 3_600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::UnixTime;
    use rustls::CertificateError as C;
    use std::time::Duration;

    fn said(c: C) -> Option<String> {
        certificate_problem(&rustls::Error::InvalidCertificate(c), "localhost")
    }

    #[test]
    fn certificate_problems_are_said_in_words_and_other_failures_keep_rustls_text() {
        assert_eq!(
            said(C::UnknownIssuer).unwrap(),
            "the server's certificate was not issued by the trusted CA"
        );
        let name = said(C::NotValidForNameContext {
            expected: ServerName::try_from("localhost").unwrap(),
            presented: vec![
                "DnsName(\"pg-demo.demo.svc\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        });
        assert_eq!(
            name.unwrap(),
            "the server's certificate is not valid for \"localhost\" (it names \
             pg-demo.demo.svc, 127.0.0.1)"
        );
        let at = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
        let expired = said(C::ExpiredContext {
            time: at(1_000_000 + 2 * 86_400 + 5),
            not_after: at(1_000_000),
        });
        assert_eq!(
            expired.unwrap(),
            "the server's certificate expired 2 days ago"
        );
        assert_eq!(ago(1), "1 second");
        assert_eq!(ago(7_300), "2 hours");
        assert_eq!(said(C::Revoked), None);
        assert_eq!(
            certificate_problem(&rustls::Error::DecryptError, "localhost"),
            None
        );
    }
}
