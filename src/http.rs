//! Outgoing HTTP: one shared client per TLS/proxy profile, bounded body reads,
//! and classification of transport failures into probe reasons.
//!
//! Targets whose TLS and proxy settings are equal share one `reqwest::Client`
//! and so one keep-alive connection pool; polling thousands of targets reuses
//! connections instead of handshaking every time. Bodies are read chunk by
//! chunk and the limit is checked before each chunk is kept, after gzip
//! inflation, so neither a huge body nor a gzip bomb is ever buffered whole.

use std::any::Any;
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
/// A client (with its pooled connections and TLS sessions) is replaced once
/// this old. A connection the server never closes would otherwise live as
/// long as the process: it would keep showing the certificate of its
/// handshake after the server renewed it (the expiry gauges, and alerts on
/// them, would not move), and keep going to the address DNS gave it.
const CLIENT_MAX_AGE: Duration = Duration::from_secs(300);
/// Idle keep-alive connections kept per host. A host normally sees at most
/// `per_host_concurrency` (default 4) probes at once; a burst (a stalled
/// scheduler catching up, many targets on one host with the limit lifted)
/// can open hundreds, and each idle one holds its buffers (~10-20 KB) for
/// `POOL_IDLE_TIMEOUT`. Past this many, a connection is closed when its
/// answer is read.
const POOL_MAX_IDLE_PER_HOST: usize = 32;

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
    tls: Arc<TlsConfig>,
    proxy: Option<String>,
    follow_redirects: bool,
}

/// The pool of shared clients, built lazily, one per profile, and each
/// replaced once [`CLIENT_MAX_AGE`] old.
pub struct HttpClients {
    clients: Mutex<HashMap<ClientKey, (reqwest::Client, std::time::Instant)>>,
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
    max_age: Duration,
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
            max_age: CLIENT_MAX_AGE,
        }
    }

    /// Replace clients once `max_age` old instead of [`CLIENT_MAX_AGE`]
    /// (tests).
    pub fn with_max_age(self, max_age: Duration) -> Self {
        HttpClients { max_age, ..self }
    }

    /// Use a custom DNS resolver for every client (tests simulate DNS
    /// failures with it, so no real query leaves the machine).
    pub fn with_resolver(resolver: Arc<dyn reqwest::dns::Resolve>) -> Self {
        HttpClients {
            resolver: Some(resolver),
            ..Self::new()
        }
    }

    /// The shared client for this target's profile (TLS, proxy, and whether
    /// redirects are followed: an `http` block may turn that off), built on
    /// first use and again once too old. Probes still running keep the old
    /// one until they end.
    pub fn client_for(&self, target: &TargetConfig) -> Result<reqwest::Client, ProbeError> {
        let key = ClientKey {
            tls: target.tls.clone(),
            proxy: target.proxy_url.as_ref().map(|p| p.expose().to_owned()),
            follow_redirects: target.prober.follow_redirects(),
        };
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((client, built)) = clients.get(&key)
            && built.elapsed() < self.max_age
        {
            return Ok(client.clone());
        }
        let client = self.build(&key)?;
        clients.insert(key, (client.clone(), std::time::Instant::now()));
        Ok(client)
    }

    /// After a reload: drop clients no longer used by any target, and those
    /// built from files (`ca_file`, `cert_file`, `key_file`), so that the
    /// next probe reads them again. A client certificate or CA rotated in
    /// place (cert-manager renewing a mounted Secret) keeps its path, and
    /// the config compares equal; a reload applies it now rather than when
    /// the client ages out.
    pub fn retain_profiles<'a>(&self, targets: impl Iterator<Item = &'a TargetConfig>) {
        let live: Vec<(Arc<TlsConfig>, Option<String>)> = targets
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
            !k.tls.reads_files()
                && live
                    .iter()
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
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .tcp_nodelay(true)
            .redirect(redirect)
            // A redirect would otherwise carry the URL it came from, query
            // string (which may hold a token) and all, to the next host.
            .referer(false)
            .tls_info(true)
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
    // Every verified chain's earliest expiry is recorded for the `http`
    // prober's TLS gauges; verification itself is unchanged.
    let verifier = crate::probe::http_check::ChainExpiryRecorder::wrap(verifier);
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
    /// The conditional-cache entry this answer is (or was replayed from),
    /// where a parser can leave what it made of the body; see [`Fetched::reused`].
    memo: Option<Arc<CachedAnswer>>,
}

impl Fetched {
    /// A plain answer with no conditional-cache entry behind it.
    pub fn new(status: u16, headers: HeaderMap, body: Bytes) -> Self {
        Fetched {
            status,
            headers,
            body,
            memo: None,
        }
    }

    /// What a parser made of exactly this body on an earlier probe, if it
    /// [`memoize`](Fetched::memoize)d it: after a `304`, or a `200` whose body
    /// is byte-for-byte the remembered one. Saves decoding and parsing an
    /// unchanged status page, which is most probes of most pages.
    ///
    /// After a `304` for a memoized answer the body is empty: a URL whose
    /// answers are memoized must only be read through `reused`/`memoize`
    /// (one target's URLs are always read by the same prober code).
    pub fn reused<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let memo = self.memo.as_ref()?;
        match &*memo.lock_kept() {
            Kept::Parsed(parsed) => parsed.clone().downcast::<T>().ok(),
            _ => None,
        }
    }

    /// Keep `parsed` as the meaning of this body: later answers with the same
    /// validators (`304`) or the same bytes reuse it instead of parsing, and
    /// the body itself need not be kept.
    pub fn memoize<T: Any + Send + Sync>(&self, parsed: Arc<T>) {
        if let Some(memo) = &self.memo {
            *memo.lock_kept() = Kept::Parsed(parsed);
        }
    }
}

/// The longest pause a `Retry-After` can impose. An upstream asking for a
/// day (or a buggy one sending a year) must not silence a target for good,
/// nor overflow the scheduler's clock arithmetic.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How many URLs one target's [`ConditionalCache`] remembers. Probers fetch a
/// handful of fixed URLs (a paginated API a few pages), so this only guards
/// against an unexpected fan-out.
const MAX_CACHED_URLS: usize = 32;

/// Conditional-request state of one target: per URL, the validators the
/// upstream sent (`ETag`, `Last-Modified`) and the answer they validate.
///
/// A `304 Not Modified` is answered from here, so the prober sees exactly
/// the last full answer and yields the same snapshot; this works for probers
/// that fetch several URLs (one may be unchanged while another changed)
/// without any prober knowing about it. What is kept per URL is the cheapest
/// thing that reproduces the answer: what the parser made of it when the
/// prober [memoizes](Fetched::memoize) (the single-URL status probers do),
/// else the body deflate-compressed (status JSON shrinks about tenfold, and a
/// process may hold one per target for thousands of targets).
#[derive(Debug, Default)]
pub struct ConditionalCache {
    /// A short list, not a map: a target has one URL, rarely a few.
    entries: Mutex<Vec<(Box<str>, Arc<CachedAnswer>)>>,
}

struct CachedAnswer {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    content_type: Option<HeaderValue>,
    body_len: usize,
    /// Identifies the body's bytes, so an upstream that ignores validators
    /// but serves the same body still gets the memoized parse.
    body_hash: u64,
    kept: Mutex<Kept>,
}

impl std::fmt::Debug for CachedAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedAnswer")
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .field("body_len", &self.body_len)
            .finish_non_exhaustive()
    }
}

/// How a remembered answer is kept.
#[derive(Clone)]
enum Kept {
    /// Just fetched; becomes `Deflated` when the probe ends unless a parser
    /// memoized it first.
    Raw(Bytes),
    Deflated(Arc<[u8]>),
    Parsed(Arc<dyn Any + Send + Sync>),
}

impl CachedAnswer {
    fn has_validators(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }

    fn lock_kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The remembered answer, as a `304`: the body it stands for (empty when
    /// only the parse is kept) and the entry for [`Fetched::reused`].
    fn replay(self: &Arc<Self>, limit: u64) -> Option<Fetched> {
        use std::io::Read as _;
        if self.body_len as u64 > limit {
            return None;
        }
        let body = match &*self.lock_kept() {
            Kept::Raw(body) => body.clone(),
            Kept::Parsed(_) => Bytes::new(),
            Kept::Deflated(deflated) => {
                let mut body = Vec::with_capacity(self.body_len);
                flate2::read::DeflateDecoder::new(&deflated[..])
                    .take(limit.saturating_add(1))
                    .read_to_end(&mut body)
                    .ok()?;
                if body.len() != self.body_len {
                    return None;
                }
                Bytes::from(body)
            }
        };
        let mut headers = HeaderMap::new();
        if let Some(content_type) = &self.content_type {
            headers.insert(header::CONTENT_TYPE, content_type.clone());
        }
        Some(Fetched {
            status: 304,
            headers,
            body,
            memo: Some(self.clone()),
        })
    }
}

impl ConditionalCache {
    /// URLs with validators remembered (for tests and debugging).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Box<str>, Arc<CachedAnswer>)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lookup(&self, url: &url::Url) -> Option<Arc<CachedAnswer>> {
        self.lock()
            .iter()
            .find(|(u, _)| **u == *url.as_str())
            .map(|(_, answer)| answer.clone())
    }

    /// Remember a full 200 answer and return its entry. The same bytes as
    /// before keep what was kept for them (the parse, or the deflated
    /// body), so an upstream that sends the same page every time is parsed
    /// once even without validators. Validators, when the answer carries
    /// them, are sent with the next request; without them no conditional
    /// request is made and only a memoized parse outlives the probe (see
    /// [`ConditionalCache::settle`]).
    fn remember(
        &self,
        url: &url::Url,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Option<Arc<CachedAnswer>> {
        let etag = headers.get(header::ETAG).and_then(owned_header);
        let last_modified = headers.get(header::LAST_MODIFIED).and_then(owned_header);
        let body_hash = hash_body(body);
        let kept = self
            .lookup(url)
            .filter(|old| old.body_hash == body_hash && old.body_len == body.len())
            .map(|old| old.lock_kept().clone())
            .unwrap_or_else(|| Kept::Raw(body.clone()));
        let answer = Arc::new(CachedAnswer {
            etag,
            last_modified,
            content_type: headers.get(header::CONTENT_TYPE).and_then(owned_header),
            body_len: body.len(),
            body_hash,
            kept: Mutex::new(kept),
        });
        let mut entries = self.lock();
        let full = entries.len() >= MAX_CACHED_URLS;
        match entries.iter_mut().find(|(u, _)| **u == *url.as_str()) {
            Some((_, slot)) => *slot = answer.clone(),
            None if !full => entries.push((url.as_str().into(), answer.clone())),
            None => {}
        }
        Some(answer)
    }

    fn forget(&self, url: &url::Url) {
        self.lock().retain(|(u, _)| **u != *url.as_str());
    }

    /// At the end of a probe: compress bodies no parser memoized, so that
    /// what stays in memory between probes is small; an unmemoized body
    /// without validators can never be replayed (no `304` can come), so
    /// its entry goes.
    /// what stays in memory between probes is small.
    fn settle(&self) {
        let mut entries = self.lock();
        entries.retain(|(_, answer)| {
            let mut kept = answer.lock_kept();
            if matches!(&*kept, Kept::Parsed(_)) {
                return true;
            }
            if !answer.has_validators() {
                return false;
            }
            let Kept::Raw(body) = &*kept else {
                return true;
            };
            *kept = match deflate(body) {
                Some(deflated) => Kept::Deflated(deflated.into()),
                // Keeping it raw is still correct, only larger.
                None => Kept::Raw(body.clone()),
            };
            true
        });
    }
}

/// A header value in its own allocation. Values hyper parsed point into the
/// connection's read buffer; keeping one would keep that whole buffer alive
/// for as long as the cache entry lives.
fn owned_header(value: &HeaderValue) -> Option<HeaderValue> {
    HeaderValue::from_bytes(value.as_bytes()).ok()
}

/// A stable fingerprint of a body (SipHash with fixed keys). Only compared
/// with the same target's previous answer from the same URL, together with
/// the length; an upstream crafting a collision could only make its own page
/// look unchanged.
fn hash_body(body: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(body);
    hasher.finish()
}

fn deflate(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    // Fast level: this runs on every changed answer; the ratio of higher
    // levels on JSON is only slightly better.
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}

tokio::task_local! {
    /// The conditional cache of the target whose probe is running in this
    /// task. A task-local rather than a parameter so that every prober gets
    /// conditional requests through the one fetch path (`get_once`) without
    /// each carrying the cache around; see [`with_conditional`].
    static CONDITIONAL: Arc<ConditionalCache>;
}

/// Run `probe` with conditional requests on: every [`get_once`] inside it
/// sends the validators remembered in `cache` and answers a `304` from it.
/// Outside such a scope (one-shot probes, HTTP checks) requests are plain.
pub async fn with_conditional<F: std::future::Future>(
    cache: Arc<ConditionalCache>,
    probe: F,
) -> F::Output {
    let output = CONDITIONAL.scope(cache.clone(), probe).await;
    cache.settle();
    output
}

/// The headers every request of a target carries: `User-Agent`, then
/// `accept` if given (otherwise the client's `Accept: application/json`
/// applies), then the target's own `headers`, each replacing an earlier one
/// of its name (sent once, never twice) and marked sensitive, since they
/// may hold credentials. `User-Agent` is not allowed in `headers`
/// (`user_agent` sets it), so the target's own agent always wins.
pub fn target_headers(target: &TargetConfig, accept: Option<HeaderValue>) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(target.headers.len() + 2);
    if let Ok(agent) = HeaderValue::from_str(&target.user_agent) {
        headers.insert(header::USER_AGENT, agent);
    }
    if let Some(accept) = accept {
        headers.insert(header::ACCEPT, accept);
    }
    for (name, value) in &target.headers {
        // Names and values were validated at load.
        if let (Ok(name), Ok(mut value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            // A file-backed value is read again: rotated tokens are sent.
            HeaderValue::from_str(&value.current()),
        ) {
            value.set_sensitive(true);
            headers.insert(name, value);
        }
    }
    headers
}

/// One GET attempt (no retries here; see `retry`): send, check the status,
/// read the body within `max_body_size`. Inside [`with_conditional`], sends
/// `If-None-Match` / `If-Modified-Since` and turns a `304` into the
/// remembered answer (status 304, the cached body).
pub async fn get_once(
    client: &reqwest::Client,
    target: &TargetConfig,
    url: &url::Url,
    status_seen: &std::sync::atomic::AtomicU16,
) -> Result<Fetched, ProbeError> {
    let cache = CONDITIONAL.try_with(Arc::clone).ok();
    // Only an entry with validators makes the request conditional.
    let cached = cache
        .as_ref()
        .and_then(|c| c.lookup(url))
        .filter(|answer| answer.has_validators());
    let mut request = client
        .get(url.clone())
        .headers(target_headers(target, None));
    if let Some(answer) = &cached {
        if let Some(etag) = &answer.etag {
            request = request.header(header::IF_NONE_MATCH, etag.clone());
        }
        if let Some(date) = &answer.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, date.clone());
        }
    }
    let mut response = request.send().await.map_err(classify)?;
    let status = response.status().as_u16();
    status_seen.store(status, std::sync::atomic::Ordering::Relaxed);
    if status == 304 {
        let replayed = cached
            .as_ref()
            .and_then(|answer| answer.replay(target.max_body_size));
        return match (replayed, &cache) {
            (Some(fetched), _) => Ok(fetched),
            (None, Some(cache)) if cached.is_some() => {
                // Unusable cache entry (the limit shrank): ask in full next time.
                cache.forget(url);
                Err(ProbeError::new(
                    Reason::Other,
                    "HTTP 304 but the remembered answer could not be reused; \
                     the next probe asks without validators",
                )
                .with_status(status))
            }
            _ => Err(ProbeError::new(
                Reason::HttpStatus,
                "HTTP 304 Not Modified to a request that was not conditional",
            )
            .with_status(status)),
        };
    }
    if !(200..300).contains(&status) {
        return Err(status_error(status, response.headers()));
    }
    let body = read_body(&mut response, target.max_body_size, status).await?;
    let headers = std::mem::take(response.headers_mut());
    let memo = match &cache {
        Some(cache) if status == 200 => cache.remember(url, &headers, &body),
        _ => None,
    };
    Ok(Fetched {
        status,
        headers,
        body,
        memo,
    })
}

/// Read a response body of at most `limit` bytes (after gzip inflation),
/// chunk by chunk, so that neither a huge body nor a gzip bomb is ever
/// buffered whole. `status` is attached to errors.
pub async fn read_body(
    response: &mut reqwest::Response,
    limit: u64,
    status: u16,
) -> Result<Bytes, ProbeError> {
    if let Some(len) = response.content_length()
        && len > limit
    {
        return Err(too_large(limit).with_status(status));
    }
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
    Ok(Bytes::from(body))
}

fn too_large(limit: u64) -> ProbeError {
    ProbeError::new(
        Reason::TooLarge,
        format!("body exceeds max_body_size ({limit} bytes)"),
    )
}

/// A non-2xx answer: 429, and 503 with a `Retry-After`, are `rate_limited`
/// (the upstream said when to come back); everything else `http_status`.
fn status_error(status: u16, headers: &HeaderMap) -> ProbeError {
    let retry_after = if status == 429 || status == 503 {
        headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
    } else {
        None
    };
    let reason = if status == 429 || retry_after.is_some() {
        Reason::RateLimited
    } else {
        Reason::HttpStatus
    };
    let message = match retry_after {
        Some(pause) => format!(
            "HTTP {status}, Retry-After {}",
            crate::config::format_duration(pause)
        ),
        None => format!("HTTP {status}"),
    };
    let mut err = ProbeError::new(reason, message).with_status(status);
    err.retry_after = retry_after;
    err
}

/// `Retry-After`: delay-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let pause = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(pause.min(MAX_RETRY_AFTER))
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
        // A vendor asking for a year gets an hour: the target is not silenced.
        assert_eq!(parse_retry_after("31536000"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999"),
            None,
            "not a number of seconds nor a date"
        );
    }

    #[test]
    fn retry_after_makes_429_and_503_rate_limited() {
        let mut asked = HeaderMap::new();
        asked.insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        let none = HeaderMap::new();
        let e = status_error(503, &asked);
        assert_eq!(
            (e.reason, e.retry_after),
            (Reason::RateLimited, Some(Duration::from_secs(30)))
        );
        assert_eq!(e.message, "HTTP 503, Retry-After 30s");
        assert_eq!(status_error(503, &none).reason, Reason::HttpStatus);
        assert_eq!(status_error(429, &none).reason, Reason::RateLimited);
        // Only 429 and 503 carry a meaningful Retry-After.
        let e = status_error(500, &asked);
        assert_eq!((e.reason, e.retry_after), (Reason::HttpStatus, None));
    }

    #[test]
    fn conditional_cache_replays_the_remembered_body() {
        let cache = ConditionalCache::default();
        let url = url::Url::parse("http://127.0.0.1/a.json").unwrap();
        let body = Bytes::from(br#"{"page":{},"components":[]}"#.repeat(100));
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"x\""));
        cache.remember(&url, &headers, &body).unwrap();
        cache.settle();
        let answer = cache.lookup(&url).unwrap();
        assert!(matches!(&*answer.lock_kept(), Kept::Deflated(d) if d.len() < body.len() / 4));
        let replayed = answer.replay(1 << 20).unwrap();
        assert_eq!((replayed.status, &replayed.body[..]), (304, &body[..]));
        // Over a lowered max_body_size it is not replayed.
        assert!(answer.replay(10).is_none());
        // An answer without validators that no parser memoized is not kept.
        assert!(cache.remember(&url, &HeaderMap::new(), &body).is_some());
        cache.settle();
        assert!(cache.is_empty());
    }

    #[test]
    fn memoized_parse_is_reused_for_304_and_for_the_same_bytes() {
        let cache = ConditionalCache::default();
        let url = url::Url::parse("http://127.0.0.1/a.json").unwrap();
        let body = Bytes::from_static(b"{\"v\":1}");
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"1\""));
        let memo = cache.remember(&url, &headers, &body);
        let first = Fetched {
            memo,
            ..Fetched::new(200, headers.clone(), body.clone())
        };
        assert!(first.reused::<String>().is_none());
        first.memoize(Arc::new("parsed".to_string()));
        cache.settle();
        // 304: the parse comes back, no body is kept.
        let replayed = cache.lookup(&url).unwrap().replay(1 << 20).unwrap();
        assert_eq!(
            replayed.reused::<String>().as_deref().map(String::as_str),
            Some("parsed")
        );
        assert!(replayed.body.is_empty());
        assert!(
            replayed.reused::<u32>().is_none(),
            "a different type is not reused"
        );
        // 200 with new validators but the same bytes: still reused.
        headers.insert(header::ETAG, HeaderValue::from_static("\"2\""));
        let memo = cache.remember(&url, &headers, &body);
        let same = Fetched {
            memo,
            ..Fetched::new(200, headers.clone(), body.clone())
        };
        assert!(same.reused::<String>().is_some());
        // Different bytes: parsed afresh.
        let changed = Bytes::from_static(b"{\"v\":2}");
        let memo = cache.remember(&url, &headers, &changed);
        let other = Fetched {
            memo,
            ..Fetched::new(200, headers, changed)
        };
        assert!(other.reused::<String>().is_none());
    }

    #[test]
    fn cached_headers_do_not_share_the_read_buffer() {
        let buffer = Bytes::from_static(b"\"etag-value\" and the rest of a big read buffer");
        let value = HeaderValue::from_maybe_shared(buffer.slice(0..12)).unwrap();
        let owned = owned_header(&value).unwrap();
        assert_eq!(owned, value);
        assert_ne!(owned.as_bytes().as_ptr(), value.as_bytes().as_ptr());
    }

    #[test]
    fn host_key_has_default_port() {
        let url = url::Url::parse("https://example.com/x").unwrap();
        assert_eq!(host_key(&url), "example.com:443");
    }
}
