//! The server side of `tls_server_config`: a rustls `ServerConfig` with the
//! ring provider (as every client config in `http`), and the client
//! certificate verifiers Go's `tls.ClientAuthType` values stand for.
//!
//! Errors point at the key that named the file (`cert_file` at line 3, ...)
//! and never print an inline key.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, NamedGroup, SignatureScheme};

use super::{ClientAuth, Curve, Pem, PemSource, TlsServerConfig, TlsVersion};
use crate::config::ConfigIssue;

/// Build the acceptor: reads the certificate, key and client CA.
pub(super) fn acceptor(t: &TlsServerConfig) -> Result<tokio_rustls::TlsAcceptor, ConfigIssue> {
    let chain = certificates(&t.cert)?;
    let key = private_key(&t.key)?;
    let provider = Arc::new(provider_for(t));
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (t.min_version..=t.max_version).contains(v))
    .map(|(_, version)| version)
    .collect();
    let at_cert = |message: String| issue(&t.cert, message);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            at_cert(format!(
                "TLS versions and cipher suites do not fit together: {e}"
            ))
        })?;
    let builder = match client_verifier(t, &provider)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        at_cert(format!(
            "the certificate and the private key cannot be used together: {e}"
        ))
    })?;
    config.ignore_client_order = t.prefer_server_cipher_suites;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// ring's provider narrowed to the configured TLS 1.2 suites and curves,
/// in the configured order.
fn provider_for(t: &TlsServerConfig) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let (tls13, tls12): (Vec<_>, Vec<_>) = provider
            .cipher_suites
            .iter()
            .partition(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)));
        let mut suites = tls13;
        for name in &t.cipher_suites {
            suites.extend(tls12.iter().filter(|s| suite_name(s) == *name));
        }
        provider.cipher_suites = suites;
    }
    if !t.curve_preferences.is_empty() {
        let all = std::mem::take(&mut provider.kx_groups);
        for curve in &t.curve_preferences {
            let group = match curve {
                Curve::X25519 => NamedGroup::X25519,
                Curve::P256 => NamedGroup::secp256r1,
                Curve::P384 => NamedGroup::secp384r1,
            };
            provider
                .kx_groups
                .extend(all.iter().filter(|g| g.name() == group));
        }
    }
    provider
}

/// A suite's IANA name, which is also Go's.
pub(super) fn suite_name(suite: &rustls::SupportedCipherSuite) -> String {
    format!("{:?}", suite.suite())
}

fn client_verifier(
    t: &TlsServerConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, ConfigIssue> {
    let verifier: Arc<dyn ClientCertVerifier> = match t.client_auth {
        ClientAuth::NoClientCert => return Ok(None),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: t.client_auth.mandatory(),
                algorithms: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            // Validation guarantees a client CA for these two.
            let Some(ca) = &t.client_ca else {
                return Ok(None);
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| issue(ca, format!("is not a usable CA certificate: {e}")))?;
            }
            let mut builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            if !t.client_auth.mandatory() {
                builder = builder.allow_unauthenticated();
            }
            builder
                .build()
                .map_err(|e| issue(ca, format!("cannot verify clients with it: {e}")))?
        }
    };
    if t.client_allowed_sans.is_empty() {
        return Ok(Some(verifier));
    }
    Ok(Some(Arc::new(AllowedSans {
        inner: verifier,
        allowed: t.client_allowed_sans.clone(),
    })))
}

fn issue(pem: &Pem, message: String) -> ConfigIssue {
    let what = match &pem.source {
        PemSource::File(path) => format!("`{}` {}", pem.key, path.display()),
        PemSource::Inline(_) => format!("`{}`", pem.key),
    };
    ConfigIssue::new(pem.line, pem.column, format!("{what}: {message}"))
}

fn pem_bytes(pem: &Pem) -> Result<Vec<u8>, ConfigIssue> {
    match &pem.source {
        PemSource::File(path) => std::fs::read(path).map_err(|e| {
            issue(
                pem,
                format!(
                    "cannot be read ({e}): fix the path (relative paths are relative to the \
                     web config file's directory)"
                ),
            )
        }),
        PemSource::Inline(text) => Ok(text.expose().as_bytes().to_vec()),
    }
}

fn certificates(pem: &Pem) -> Result<Vec<CertificateDer<'static>>, ConfigIssue> {
    let bytes = pem_bytes(pem)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(issue(pem, "holds no PEM certificate".to_owned())),
        Err(e) => Err(issue(pem, format!("is not valid PEM: {e}"))),
    }
}

fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>, ConfigIssue> {
    let bytes = pem_bytes(pem)?;
    // The error is the parser's (no key bytes in it).
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| issue(pem, format!("holds no usable PEM private key ({e})")))
}

/// `RequestClientCert` / `RequireAnyClientCert`: a client certificate is
/// asked for (or required) but not checked against any CA; the handshake
/// still proves the client holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier accepts a certificate,
/// one of its SANs (DNS name, e-mail, IP or URI) must be in the list.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if subject_alt_names(end_entity)
            .iter()
            .any(|san| self.allowed.contains(san))
        {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate's SANs as Go's `crypto/x509` prints them.
fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some((*s).to_owned())
            }
            GeneralName::IPAddress(bytes) => ip_text(bytes),
            _ => None,
        })
        .collect()
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::IpAddr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::IpAddr::from(b).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_tls12_suite_name_is_one_ring_offers() {
        let offered: Vec<String> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(suite_name)
            .collect();
        for name in super::super::TLS12_SUITES {
            assert!(
                offered.iter().any(|o| o == name),
                "{name} not in {offered:?}"
            );
        }
    }

    #[test]
    fn ip_sans_print_like_go() {
        assert_eq!(ip_text(&[127, 0, 0, 1]).as_deref(), Some("127.0.0.1"));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_text(&v6).as_deref(), Some("::1"));
        assert_eq!(ip_text(&[1, 2, 3]), None);
    }
}
