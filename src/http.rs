//! Outgoing HTTP: one shared client per TLS/proxy profile, bounded body reads,
//! and classification of transport failures into probe reasons.
//!
//! Targets whose TLS and proxy settings are equal share one `reqwest::Client`
//! and so one keep-alive connection pool; polling thousands of targets reuses
//! connections instead of handshaking every time. Bodies are read chunk by
//! chunk and the limit is checked before each chunk is kept, after gzip
//! inflation, so neither a huge body nor a gzip bomb is ever buffered whole.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{TargetConfig, TlsConfig};
use crate::probe::{ProbeError, Reason};

/// Redirects followed at most, per request.
pub const MAX_REDIRECTS: usize = 5;
/// Connection establishment bound (the whole-probe timeout still applies).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle keep-alive connections are closed after this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A URL for labels and logs: scheme, host, port and path only. Userinfo
/// and query string are dropped, since either may carry credentials.
pub fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// `host:port` of a URL: the key of per-host limits.
pub fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// What distinguishes one client from another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    tls: TlsConfig,
    proxy: Option<String>,
    follow_redirects: bool,
}

/// The pool of shared clients, built lazily, one per profile.
pub struct HttpClients {
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
}

impl std::fmt::Debug for HttpClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClients").finish_non_exhaustive()
    }
}

impl Default for HttpClients {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClients {
    pub fn new() -> Self {
        HttpClients {
            clients: Mutex::new(HashMap::new()),
            resolver: None,
        }
    }

    /// Use a custom DNS resolver for every client (tests simulate DNS
    /// failures with it, so no real query leaves the machine).
    pub fn with_resolver(resolver: Arc<dyn reqwest::dns::Resolve>) -> Self {
        HttpClients {
            clients: Mutex::new(HashMap::new()),
            resolver: Some(resolver),
        }
    }

    /// The shared client for this target's profile, built on first use.
    pub fn client_for(&self, target: &TargetConfig) -> Result<reqwest::Client, ProbeError> {
        let key = ClientKey {
            tls: target.tls.clone(),
            proxy: target.proxy_url.as_ref().map(|p| p.expose().to_owned()),
            follow_redirects: true,
        };
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = self.build(&key)?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Drop clients no longer used by any target (after a reload).
    pub fn retain_profiles<'a>(&self, targets: impl Iterator<Item = &'a TargetConfig>) {
        let live: Vec<(TlsConfig, Option<String>)> = targets
            .map(|t| {
                (
                    t.tls.clone(),
                    t.proxy_url.as_ref().map(|p| p.expose().to_owned()),
                )
            })
            .collect();
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients.retain(|k, _| {
            live.iter()
                .any(|(tls, proxy)| *tls == k.tls && *proxy == k.proxy)
        });
    }

    fn build(&self, key: &ClientKey) -> Result<reqwest::Client, ProbeError> {
        let tls = rustls_config(&key.tls).map_err(|m| ProbeError::new(Reason::Tls, m))?;
        let mut default_headers = HeaderMap::new();
        default_headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let redirect = if key.follow_redirects {
            reqwest::redirect::Policy::limited(MAX_REDIRECTS)
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .gzip(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .redirect(redirect)
            .default_headers(default_headers);
        if let Some(proxy) = &key.proxy {
            let proxy = reqwest::Proxy::all(proxy.as_str())
                .map_err(|_| ProbeError::new(Reason::Other, "invalid proxy_url"))?;
            builder = builder.proxy(proxy);
        }
        if let Some(resolver) = &self.resolver {
            builder = builder.dns_resolver(resolver.clone());
        }
        builder
            .build()
            .map_err(|e| ProbeError::new(Reason::Other, format!("building HTTP client: {e}")))
    }
}

/// The crypto provider: ring, chosen explicitly so no process-wide default is needed.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system trust store, loaded once (honours `SSL_CERT_FILE` / `SSL_CERT_DIR`).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for err in &loaded.errors {
            tracing::debug!(error = %err, "loading system CA certificates");
        }
        loaded.certs
    })
}

fn read_pem_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("reading {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

/// Build the rustls client config of one TLS profile.
pub fn rustls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (_, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(ca_file) = &tls.ca_file {
        for cert in read_pem_certs(ca_file)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca_file.display()))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let webpki =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build();
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCert)
    } else {
        let webpki = webpki.map_err(|e| format!("CA certificates: {e}"))?;
        match &tls.server_name {
            Some(name) => Arc::new(FixedNameVerifier {
                inner: webpki,
                name: ServerName::try_from(name.clone())
                    .map_err(|e| format!("tls.server_name {name:?}: {e}"))?,
            }),
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            use rustls::pki_types::pem::PemObject;
            let chain = read_pem_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("reading {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `tls.server_name`: verify the certificate against this name instead of
/// the URL's host (the URL may name an IP or an internal alias).
#[derive(Debug)]
struct FixedNameVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for FixedNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
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

/// `tls.insecure_skip_verify: true`: accept any certificate (signatures are
/// still checked so the handshake itself is sound).
#[derive(Debug)]
struct AcceptAnyCert;

impl ServerCertVerifier for AcceptAnyCert {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A complete answer: status, headers and the whole (bounded) body.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One GET attempt (no retries here; see `retry`): send, check the status,
/// read the body within `max_body_size`.
pub async fn get_once(
    client: &reqwest::Client,
    target: &TargetConfig,
    url: &url::Url,
    extra_headers: &HeaderMap,
) -> Result<Fetched, ProbeError> {
    let mut request = client
        .get(url.clone())
        .header(header::USER_AGENT, target.user_agent.as_str());
    for (name, value) in &target.headers {
        request = request.header(name.as_str(), value.expose());
    }
    for (name, value) in extra_headers {
        request = request.header(name, value);
    }
    let mut response = request.send().await.map_err(classify)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) && status != 304 {
        return Err(status_error(status, response.headers()));
    }
    let limit = target.max_body_size;
    if let Some(len) = response.content_length()
        && len > limit
    {
        return Err(too_large(limit).with_status(status));
    }
    let headers = std::mem::take(response.headers_mut());
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify(e).with_status(status))?
    {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit).with_status(status));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status,
        headers,
        body: Bytes::from(body),
    })
}

fn too_large(limit: u64) -> ProbeError {
    ProbeError::new(
        Reason::TooLarge,
        format!("body exceeds max_body_size ({limit} bytes)"),
    )
}

/// A non-2xx answer: 429 is `rate_limited`, everything else `http_status`.
/// `Retry-After` is kept for 429 and 503.
fn status_error(status: u16, headers: &HeaderMap) -> ProbeError {
    let reason = if status == 429 {
        Reason::RateLimited
    } else {
        Reason::HttpStatus
    };
    let mut err = ProbeError::new(reason, format!("HTTP {status}")).with_status(status);
    if status == 429 || status == 503 {
        err.retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
    }
    err
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Map a reqwest error onto the SPEC reason set by walking its source chain.
pub fn classify(err: reqwest::Error) -> ProbeError {
    let err = err.without_url();
    let chain = error_chain(&err);
    let reason = if err.is_timeout() {
        Reason::Timeout
    } else if err.is_redirect() {
        Reason::Redirect
    } else if chain_has::<rustls::Error>(&err) || chain.contains("certificate") {
        Reason::Tls
    } else if chain.contains("dns error") || chain.contains("failed to lookup address") {
        Reason::Dns
    } else if err.is_decode() && !is_io_break(&err) {
        Reason::Decode
    } else if err.is_connect() || err.is_body() || err.is_request() || is_io_break(&err) {
        Reason::Connect
    } else {
        Reason::Other
    };
    let message = match reason {
        Reason::Redirect => format!("more than {MAX_REDIRECTS} redirects, or a redirect loop"),
        _ => chain,
    };
    ProbeError::new(reason, message)
}

/// The error and its sources, joined, without the URL (which may hold secrets).
fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn chain_has<E: std::error::Error + 'static>(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(s) = source {
        if s.is::<E>() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<E>())
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The connection broke (reset, closed early, incomplete message).
fn is_io_break(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset
                    | ConnectionAborted
                    | ConnectionRefused
                    | BrokenPipe
                    | UnexpectedEof
            ) {
                return true;
            }
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed() || h.is_canceled())
        {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_userinfo_and_query() {
        let url = url::Url::parse("https://user:pw@example.com:8443/a/b?token=x#f").unwrap();
        assert_eq!(redact_url(&url), "https://example.com:8443/a/b");
    }

    #[test]
    fn retry_after_seconds_and_date() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn host_key_has_default_port() {
        let url = url::Url::parse("https://example.com/x").unwrap();
        assert_eq!(host_key(&url), "example.com:443");
    }
}
