//! `http` prober: a plain health check of any URL.
//!
//! One request (`method`, `headers`, `body`) through the target's shared
//! client, then the expectations: the status is in `expect.status` (default
//! `2xx`), the body matches `expect.body_regex` and does not match
//! `expect.body_not_regex`, and the attempt took at most
//! `expect.max_latency` (from sending the request to the end of the body).
//! An unmet expectation fails the probe with reason `expectation`, and the
//! status code is still exported.
//!
//! Retries follow the rule every prober follows: transport failures
//! (timeouts, broken connections) and a `5xx`/`429` that `expect.status`
//! does not allow are tried again within the probe's deadline; when the
//! last attempt still answers such a status, the reason is `expectation`.
//! With `follow_redirects: false` the target gets a client that does not
//! follow redirects, so a `301` is the answer checked against
//! `expect.status`.
//!
//! For HTTPS answers the probe also yields the leaf certificate's
//! `not_after` and the earliest `not_after` of the chain the server
//! presented. The leaf comes from the response (`TlsInfo`); the chain is
//! only seen by the certificate verifier during the handshake, so every
//! client's verifier is wrapped in a [`ChainExpiryRecorder`], which records
//! the earliest `not_after` of each chain it accepted, keyed by the leaf, in
//! a small bounded map that the prober reads after the response. A pooled
//! connection keeps the leaf of its handshake, so the lookup also works
//! when no new handshake happened.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{self, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::time::Instant;

use super::{ProbeContext, ProbeError, ProbeOutput, ProbeSuccess, Reason};
use crate::config::Secret;

/// Validated `http:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheckConfig {
    /// The URL requested (credentials moved into an `Authorization` header).
    pub url: url::Url,
    pub method: reqwest::Method,
    /// Request body, sent as is (may hold credentials, so it is a secret).
    pub body: Option<Secret>,
    pub expect: Expectations,
    /// `false`: a redirect is the answer, not followed.
    pub follow_redirects: bool,
}

/// `expect:` of an `http` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectations {
    /// Allowed status codes; never empty (default `2xx`).
    pub status: Vec<StatusRange>,
    pub body_regex: Option<Pattern>,
    pub body_not_regex: Option<Pattern>,
    pub max_latency: Option<Duration>,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            status: vec![StatusRange::SUCCESS],
            body_regex: None,
            body_not_regex: None,
            max_latency: None,
        }
    }
}

impl Expectations {
    pub fn status_allowed(&self, status: u16) -> bool {
        self.status.iter().any(|r| r.contains(status))
    }
}

/// An inclusive range of status codes: `200`, `200-299` or `2xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub low: u16,
    pub high: u16,
}

impl StatusRange {
    /// `2xx`, the default expectation.
    pub const SUCCESS: StatusRange = StatusRange {
        low: 200,
        high: 299,
    };

    pub fn contains(self, status: u16) -> bool {
        (self.low..=self.high).contains(&status)
    }

    /// Parse `204`, `200-299` or `2xx` (codes 100–599).
    pub fn parse(text: &str) -> Result<StatusRange, String> {
        let text = text.trim();
        let code = |s: &str| -> Result<u16, String> {
            match s.trim().parse::<u16>() {
                Ok(n) if (100..=599).contains(&n) => Ok(n),
                _ => Err(format!(
                    "`{s}` is not an HTTP status code: write a code from 100 to 599, a range like \
                     `200-299`, or a class like `2xx`"
                )),
            }
        };
        let lower = text.to_ascii_lowercase();
        if let Some(class) = lower.strip_suffix("xx")
            && let [digit @ b'1'..=b'5'] = class.as_bytes()
        {
            let low = u16::from(digit - b'0') * 100;
            return Ok(StatusRange {
                low,
                high: low + 99,
            });
        }
        if let Some((low, high)) = text.split_once('-') {
            if [low, high]
                .iter()
                .any(|s| s.trim().to_ascii_lowercase().ends_with("xx"))
            {
                return Err(format!(
                    "`{text}` joins classes with `-`: a range joins two codes (like \
                     `200-399`); list classes one by one instead (like `[2xx, 3xx]`)"
                ));
            }
            let (low, high) = (code(low)?, code(high)?);
            if low > high {
                return Err(format!(
                    "range `{text}` is empty: write the lower code first, like `200-299`"
                ));
            }
            return Ok(StatusRange { low, high });
        }
        let n = code(text)?;
        Ok(StatusRange { low: n, high: n })
    }
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else if self.low.is_multiple_of(100) && self.high == self.low + 99 {
            write!(f, "{}xx", self.low / 100)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// A body regex compiled once at load; equal when the sources are.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::bytes::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// The request methods an `http` block may use.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Parse a `method:` value (case-insensitive).
pub fn parse_method(text: &str) -> Result<reqwest::Method, String> {
    let upper = text.trim().to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        return Err(format!(
            "`{}` is not a supported method: use one of {}",
            text.escape_debug(),
            METHODS.join(", ")
        ));
    }
    reqwest::Method::from_bytes(upper.as_bytes()).map_err(|e| e.to_string())
}

/// What a successful `http` probe yields: the TLS expiry of the answer's
/// connection (both `None` for plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HttpSnapshot {
    /// Unix seconds of the leaf certificate's `not_after`.
    pub tls_not_after: Option<f64>,
    /// Unix seconds of the earliest `not_after` in the presented chain.
    pub tls_chain_earliest_not_after: Option<f64>,
}

/// One complete answer.
struct Answer {
    status: u16,
    body: bytes::Bytes,
    latency: Duration,
    /// The expiry of the peer's certificates, for HTTPS.
    certificates: Option<HttpSnapshot>,
}

/// Run the check once (with retries on transient failures).
pub async fn probe(
    ctx: &ProbeContext<'_>,
    cfg: &HttpCheckConfig,
) -> Result<ProbeSuccess, ProbeError> {
    let target = ctx.target;
    let answer = crate::retry::with_retries(
        target.retries,
        target.backoff,
        ctx.deadline,
        target.timeout,
        || attempt(ctx, cfg),
    )
    .await
    .map_err(|e| match e.http_status {
        // A 5xx/429 retried until the end: an unmet status expectation.
        Some(status) if matches!(e.reason, Reason::HttpStatus | Reason::RateLimited) => {
            let mut unmet = status_unmet(status, &cfg.expect);
            // The server's asked-for pause still moves the next probe.
            unmet.retry_after = e.retry_after;
            unmet.certificates = e.certificates;
            unmet
        }
        _ => e,
    })?;
    check(&answer, &cfg.expect).map_err(|mut e| {
        e.certificates = answer.certificates;
        e
    })?;
    Ok(ProbeSuccess {
        http_status: answer.status,
        output: ProbeOutput::Http(answer.certificates.unwrap_or_default()),
    })
}

/// The expiry gauges' values from the peer's leaf certificate (and the
/// chain the verifier saw with it); None over plain HTTP.
fn certificates(leaf: Option<&[u8]>) -> Option<HttpSnapshot> {
    leaf.map(|leaf| HttpSnapshot {
        tls_not_after: cert_not_after(leaf),
        tls_chain_earliest_not_after: chain_earliest_not_after(leaf),
    })
}

/// One request, holding a per-host permit. A `5xx`/`429` outside
/// `expect.status` is returned as a transient error so it is retried.
async fn attempt(ctx: &ProbeContext<'_>, cfg: &HttpCheckConfig) -> Result<Answer, ProbeError> {
    let _permit = ctx.hosts.acquire(&cfg.url, ctx.deadline).await?;
    let started = Instant::now();
    let mut request = ctx
        .client
        .request(cfg.method.clone(), cfg.url.clone())
        // `Accept: */*`: a health endpoint need not speak JSON.
        .headers(crate::http::target_headers(
            ctx.target,
            Some(HeaderValue::from_static("*/*")),
        ));
    if let Some(body) = &cfg.body {
        request = request.body(body.expose().to_owned());
    }
    let mut response = request.send().await.map_err(crate::http::classify)?;
    let status = response.status().as_u16();
    ctx.status_seen
        .store(status, std::sync::atomic::Ordering::Relaxed);
    let certificates = certificates(
        response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate()),
    );
    if !cfg.expect.status_allowed(status) && (status >= 500 || status == 429) {
        let reason = if status == 429 {
            Reason::RateLimited
        } else {
            Reason::HttpStatus
        };
        let mut err = ProbeError::new(reason, format!("HTTP {status}")).with_status(status);
        err.retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::http::parse_retry_after);
        err.certificates = certificates;
        return Err(err);
    }
    let body = crate::http::read_body(&mut response, ctx.target.max_body_size, status)
        .await
        .map_err(|mut e| {
            e.certificates = certificates;
            e
        })?;
    Ok(Answer {
        status,
        body,
        latency: started.elapsed(),
        certificates,
    })
}

fn status_unmet(status: u16, expect: &Expectations) -> ProbeError {
    let allowed: Vec<String> = expect.status.iter().map(ToString::to_string).collect();
    ProbeError::new(
        Reason::Expectation,
        format!(
            "HTTP {status}, expected {}",
            if allowed.len() == 1 {
                allowed.join("")
            } else {
                format!("one of {}", allowed.join(", "))
            }
        ),
    )
    .with_status(status)
}

/// Every expectation, in the order status, body, latency.
fn check(answer: &Answer, expect: &Expectations) -> Result<(), ProbeError> {
    let fail = |message: String| {
        Err(ProbeError::new(Reason::Expectation, message).with_status(answer.status))
    };
    if !expect.status_allowed(answer.status) {
        return Err(status_unmet(answer.status, expect));
    }
    if let Some(Pattern(re)) = &expect.body_regex
        && !re.is_match(&answer.body)
    {
        return fail(format!("body does not match body_regex `{}`", re.as_str()));
    }
    if let Some(Pattern(re)) = &expect.body_not_regex
        && re.is_match(&answer.body)
    {
        return fail(format!("body matches body_not_regex `{}`", re.as_str()));
    }
    if let Some(max) = expect.max_latency
        && answer.latency > max
    {
        // Measured, so shown to the millisecond, rounded up: never the
        // same figure as a limit it exceeded.
        return fail(format!(
            "answered in {}, more than max_latency {}",
            crate::config::format_duration(crate::config::ceil_to_millis(answer.latency)),
            crate::config::format_duration(max)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Certificate expiry

/// Unix seconds of a DER certificate's `not_after`; `None` if it does not parse.
pub fn cert_not_after(der: &[u8]) -> Option<f64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp() as f64)
}

/// Chains remembered at most; the oldest entry goes first. Well above the
/// 10,000 targets one process is built for, each with a certificate of its
/// own: an entry evicted while its connection is still pooled loses the
/// chain gauge until the next handshake. ~3 MB when full (map and queue).
const MAX_CHAINS: usize = 65_536;

/// Earliest `not_after` of verified chains, by a keyed hash of the leaf.
struct ChainMap {
    hasher: std::collections::hash_map::RandomState,
    earliest: HashMap<u64, f64>,
    order: VecDeque<u64>,
}

fn chains() -> &'static Mutex<ChainMap> {
    static CHAINS: OnceLock<Mutex<ChainMap>> = OnceLock::new();
    CHAINS.get_or_init(|| {
        Mutex::new(ChainMap {
            hasher: std::collections::hash_map::RandomState::new(),
            earliest: HashMap::new(),
            order: VecDeque::new(),
        })
    })
}

fn record_chain(leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) {
    let earliest = std::iter::once(leaf)
        .chain(intermediates)
        .filter_map(|c| cert_not_after(c))
        .reduce(f64::min);
    let Some(earliest) = earliest else {
        return;
    };
    let mut map = chains()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = map.hasher.hash_one(leaf.as_ref());
    if map.earliest.insert(key, earliest).is_none() {
        map.order.push_back(key);
        while map.order.len() > MAX_CHAINS {
            if let Some(old) = map.order.pop_front() {
                map.earliest.remove(&old);
            }
        }
    }
}

/// The earliest `not_after` of the last verified chain whose leaf is `leaf`.
pub fn chain_earliest_not_after(leaf: &[u8]) -> Option<f64> {
    let map = chains()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = map.hasher.hash_one(leaf);
    map.earliest.get(&key).copied()
}

/// A certificate verifier that records the earliest `not_after` of every
/// chain its inner verifier accepts (see the module doc). Verification
/// itself is the inner verifier's, unchanged.
#[derive(Debug)]
pub struct ChainExpiryRecorder {
    inner: Arc<dyn ServerCertVerifier>,
}

impl ChainExpiryRecorder {
    pub fn wrap(inner: Arc<dyn ServerCertVerifier>) -> Arc<dyn ServerCertVerifier> {
        Arc::new(ChainExpiryRecorder { inner })
    }
}

impl ServerCertVerifier for ChainExpiryRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        record_chain(end_entity, intermediates);
        Ok(verified)
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

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_parse() {
        let r = |s: &str| StatusRange::parse(s).unwrap();
        assert_eq!(
            r("204"),
            StatusRange {
                low: 204,
                high: 204
            }
        );
        assert_eq!(
            r("200-299"),
            StatusRange {
                low: 200,
                high: 299
            }
        );
        assert_eq!(
            r(" 3XX "),
            StatusRange {
                low: 300,
                high: 399
            }
        );
        assert_eq!(r("5xx").to_string(), "5xx");
        assert_eq!(r("200-204").to_string(), "200-204");
        assert_eq!(r("418").to_string(), "418");
        for bad in ["", "abc", "99", "600", "6xx", "2x", "299-200", "200-", "x"] {
            assert!(StatusRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn methods_parse_case_insensitively() {
        assert_eq!(parse_method("head").unwrap(), reqwest::Method::HEAD);
        assert_eq!(parse_method("POST").unwrap(), reqwest::Method::POST);
        assert!(parse_method("CONNECT").unwrap_err().contains("GET, HEAD"));
        assert!(parse_method("G ET").is_err());
    }

    #[test]
    fn default_expectation_is_2xx() {
        let e = Expectations::default();
        assert!(e.status_allowed(200) && e.status_allowed(299));
        assert!(!e.status_allowed(301) && !e.status_allowed(199));
    }

    #[test]
    fn not_after_of_garbage_is_none() {
        assert_eq!(cert_not_after(b""), None);
        assert_eq!(cert_not_after(b"\x30\x03\x02\x01\x01"), None);
        assert_eq!(chain_earliest_not_after(b"never recorded"), None);
    }
}
