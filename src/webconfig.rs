//! `--web.config.file`: the Prometheus exporter-toolkit web config (server
//! TLS, client certificates, bcrypt basic auth, extra response headers,
//! rate limit), so existing files and Helm values work unchanged.
//!
//! Two steps, like `exporter.yaml`: [`WebConfig::from_yaml`] parses and
//! validates the text and nothing else (no file reads, no clock, no
//! randomness), so a fuzzer can call it; [`WebSecurity::from_config`] then
//! reads the certificate files and builds what the server applies: a TLS
//! acceptor, the [`Authenticator`], the headers. [`LiveWeb`] holds the one in
//! force and is swapped whole on reload, so a bad new file changes nothing.
//!
//! The rules are exporter-toolkit's: unknown keys are errors, only its five
//! security headers may be set (two of them from fixed value lists), a
//! client CA needs a client auth type, `client_allowed_sans` needs a
//! mandatory client certificate, and every `basic_auth_users` value must be
//! a bcrypt hash. Where rustls cannot do what Go's TLS does, the difference
//! is handled as follows: `min_version` below TLS12 means TLS 1.2 (the
//! oldest rustls speaks), `max_version` below TLS12 is an error, and CBC
//! cipher suites and the P-521 curve are skipped (an error only when
//! nothing usable is left). `http2` is accepted and ignored: the exporter
//! serves HTTP/1.1.
//!
//! Messages never echo a password hash or an inline key.

mod auth;
mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{ConfigError, ConfigIssue, Secret, decode, parse_duration, yaml_issue};

pub use auth::{AuthOutcome, Authenticator};

/// A validated web config file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebConfig {
    /// `tls_server_config`; None serves plain HTTP.
    pub tls: Option<TlsServerConfig>,
    /// `http_server_config.headers`: added to every response.
    pub headers: Vec<(String, String)>,
    /// `basic_auth_users`: user name → bcrypt hash, sorted by name.
    pub users: Vec<(String, Secret)>,
    /// `auth_excluded_paths`: paths served without basic auth, besides
    /// `/-/healthy` and `/-/ready`.
    pub auth_excluded_paths: Vec<String>,
    /// `rate_limit`: requests allowed, all clients together.
    pub rate_limit: Option<RateLimit>,
}

/// `tls_server_config`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsServerConfig {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    pub client_ca: Option<Pem>,
    /// The client certificate must carry one of these SANs (DNS, e-mail,
    /// IP or URI, compared as text).
    pub client_allowed_sans: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites in preference order (IANA names); empty: rustls's
    /// defaults. TLS 1.3 suites are always all enabled, as in Go.
    pub cipher_suites: Vec<&'static str>,
    /// The server's suite order wins over the client's.
    pub prefer_server_cipher_suites: bool,
    /// Key exchange groups in preference order; empty: rustls's defaults.
    pub curve_preferences: Vec<Curve>,
}

/// Where a PEM block comes from, and where the file names it (for errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Pem {
    pub source: PemSource,
    /// The key that gave it (`cert_file`, `key`, ...).
    pub key: &'static str,
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PemSource {
    /// A path, resolved against the web config file's directory.
    File(PathBuf),
    /// The PEM text itself (`cert`, `key`, `client_ca`).
    Inline(Secret),
}

/// `client_auth_type` (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Ask for a certificate, accept any or none (not verified).
    RequestClientCert,
    /// Require a certificate, any (not verified).
    RequireAnyClientCert,
    /// Verify a certificate against the client CA if one is sent.
    VerifyClientCertIfGiven,
    /// Require a certificate signed by the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    const NAMES: &'static str = "NoClientCert, RequestClientCert, RequireAnyClientCert, \
                                 VerifyClientCertIfGiven, RequireAndVerifyClientCert";

    fn parse(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // "RequireClientCert" is exporter-toolkit's old spelling.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether a handshake without a client certificate fails.
    pub fn mandatory(self) -> bool {
        matches!(
            self,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    }

    /// Whether certificates are checked against the client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `curve_preferences` entries rustls (with ring) can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
}

/// `rate_limit: { burst, interval }`: one token per `interval`, at most
/// `burst` saved up (Go's `rate.Limiter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub interval: Duration,
}

/// The response headers exporter-toolkit lets a web config set, with the
/// values allowed (empty: any value).
const SETTABLE_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// TLS 1.2 suites rustls offers with ring, by IANA (and Go) name.
pub(crate) const TLS12_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Suites Go accepts that need no action here: TLS 1.3 ones (always on)
/// and CBC ones (rustls has none; skipped).
const ACCEPTED_UNUSED_SUITES: [&str; 7] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

// ---------------------------------------------------------------------------
// The file as written

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<Spanned<RawTls>>,
    http_server_config: Option<Spanned<RawHttp>>,
    basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
    auth_excluded_paths: Option<Vec<Spanned<String>>>,
    rate_limit: Option<Spanned<RawRateLimit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    client_ca: Option<Spanned<String>>,
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    client_auth_type: Option<Spanned<String>>,
    client_ca_file: Option<Spanned<String>>,
    cipher_suites: Option<Vec<Spanned<String>>>,
    curve_preferences: Option<Vec<Spanned<String>>>,
    min_version: Option<Spanned<String>>,
    max_version: Option<Spanned<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[allow(dead_code)] // accepted for compatibility; HTTP/1.1 is served
    http2: Option<bool>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    burst: Option<Spanned<u32>>,
    interval: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------
// Validation

impl WebConfig {
    /// Parse and validate web config text. `path` names the file in
    /// messages and resolves relative file paths; nothing is read.
    pub fn from_yaml(bytes: &[u8], path: &Path) -> Result<WebConfig, ConfigError> {
        let one = |issue: ConfigIssue| ConfigError::new(path, vec![issue]);
        let text = decode(bytes).map_err(one)?;
        let raw = parse_yaml(text).map_err(one)?;
        let mut check = Checker {
            dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
            issues: Vec::new(),
        };
        let config = check.config(raw);
        if check.issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::new(path, check.issues))
        }
    }

    /// Whether any request needs basic auth.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }
}

fn parse_yaml(text: &str) -> Result<RawWebConfig, ConfigIssue> {
    // An empty file (or only comments) configures nothing, as in Go.
    let blank = text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    });
    if blank {
        return Ok(RawWebConfig::default());
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<RawWebConfig>(text, options).map_err(|e| yaml_issue(&e))
}

struct Checker {
    dir: PathBuf,
    issues: Vec<ConfigIssue>,
}

impl Checker {
    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.issues.push(ConfigIssue::new(
            at.referenced.line(),
            at.referenced.column(),
            message,
        ));
    }

    fn config(&mut self, raw: RawWebConfig) -> WebConfig {
        let tls = raw.tls_server_config.as_ref().and_then(|t| self.tls(t));
        let headers = raw
            .http_server_config
            .as_ref()
            .and_then(|h| h.value.headers.as_ref())
            .map(|h| self.headers(h))
            .unwrap_or_default();
        let users = raw
            .basic_auth_users
            .map(|u| self.users(u))
            .unwrap_or_default();
        let mut auth_excluded_paths = Vec::new();
        for p in raw.auth_excluded_paths.unwrap_or_default() {
            if p.value.starts_with('/') {
                auth_excluded_paths.push(p.value.clone());
            } else {
                self.error(
                    &p,
                    format!(
                        "`auth_excluded_paths` entry `{}` is not a path: write it starting \
                         with `/`, like `/metrics`",
                        p.value.escape_debug()
                    ),
                );
            }
        }
        let rate_limit = raw.rate_limit.as_ref().and_then(|r| self.rate_limit(r));
        WebConfig {
            tls,
            headers,
            users,
            auth_excluded_paths,
            rate_limit,
        }
    }

    /// A PEM given as a file (`file_key`) or inline (`inline_key`), not both.
    fn pem(
        &mut self,
        file: Option<&Spanned<String>>,
        inline: Option<&Spanned<String>>,
        file_key: &'static str,
        inline_key: &'static str,
    ) -> Option<Pem> {
        // Go treats an empty string as not given.
        let file = file.filter(|s| !s.value.is_empty());
        let inline = inline.filter(|s| !s.value.is_empty());
        match (file, inline) {
            (Some(_), Some(i)) => {
                self.error(
                    i,
                    format!("`{file_key}` and `{inline_key}` are both given: keep one"),
                );
                None
            }
            (Some(f), None) => {
                let path = Path::new(&f.value);
                let path = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    self.dir.join(path)
                };
                Some(Pem {
                    source: PemSource::File(path),
                    key: file_key,
                    line: f.referenced.line(),
                    column: f.referenced.column(),
                })
            }
            (None, Some(i)) => Some(Pem {
                source: PemSource::Inline(Secret::new(i.value.clone())),
                key: inline_key,
                line: i.referenced.line(),
                column: i.referenced.column(),
            }),
            (None, None) => None,
        }
    }

    fn tls(&mut self, raw: &Spanned<RawTls>) -> Option<TlsServerConfig> {
        let r = &raw.value;
        let cert = self.pem(r.cert_file.as_ref(), r.cert.as_ref(), "cert_file", "cert");
        let key = self.pem(r.key_file.as_ref(), r.key.as_ref(), "key_file", "key");
        let client_ca = self.pem(
            r.client_ca_file.as_ref(),
            r.client_ca.as_ref(),
            "client_ca_file",
            "client_ca",
        );
        let auth_name = r.client_auth_type.as_ref().filter(|s| !s.value.is_empty());
        // Go's rule: any of these turns TLS on; otherwise plain HTTP.
        if cert.is_none() && key.is_none() && client_ca.is_none() && auth_name.is_none() {
            return None;
        }
        let client_auth = match auth_name {
            None => Some(ClientAuth::NoClientCert),
            Some(s) => {
                let parsed = ClientAuth::parse(&s.value);
                if parsed.is_none() {
                    self.error(
                        s,
                        format!(
                            "invalid `client_auth_type` `{}`: use one of {}",
                            s.value.escape_debug(),
                            ClientAuth::NAMES
                        ),
                    );
                }
                parsed
            }
        };
        if cert.is_none() {
            self.error(
                raw,
                "`tls_server_config` has no server certificate: set `cert_file` (or `cert` \
                 with the PEM text)",
            );
        }
        if key.is_none() {
            self.error(
                raw,
                "`tls_server_config` has no private key: set `key_file` (or `key` with the \
                 PEM text)",
            );
        }
        if let Some(auth) = client_auth {
            self.client_auth_rules(raw, auth, client_ca.as_ref());
        }
        let min_version = self.version(r.min_version.as_ref(), "min_version", TlsVersion::Tls12);
        let max_version = self.version(r.max_version.as_ref(), "max_version", TlsVersion::Tls13);
        if let (Some(min), Some(max), Some(at)) = (min_version, max_version, &r.min_version)
            && min > max
        {
            self.error(
                at,
                "`min_version` is above `max_version`: lower `min_version` or raise \
                 `max_version`",
            );
        }
        let cipher_suites = self.cipher_suites(r.cipher_suites.as_deref().unwrap_or(&[]));
        let curve_preferences = self.curves(r.curve_preferences.as_deref().unwrap_or(&[]));
        Some(TlsServerConfig {
            cert: cert?,
            key: key?,
            client_auth: client_auth?,
            client_ca,
            client_allowed_sans: r.client_allowed_sans.clone().unwrap_or_default(),
            min_version: min_version?,
            max_version: max_version?,
            cipher_suites: cipher_suites?,
            prefer_server_cipher_suites: r.prefer_server_cipher_suites.unwrap_or(true),
            curve_preferences: curve_preferences?,
        })
    }

    fn client_auth_rules(&mut self, raw: &Spanned<RawTls>, auth: ClientAuth, ca: Option<&Pem>) {
        let r = &raw.value;
        if ca.is_some() && auth == ClientAuth::NoClientCert {
            self.error(
                raw,
                "a client CA is configured without a client auth policy: set \
                 `client_auth_type: RequireAndVerifyClientCert` (or remove the client CA)",
            );
        }
        if ca.is_none() && auth.verifies() {
            self.error(
                raw,
                format!(
                    "`client_auth_type: {auth:?}` verifies client certificates but no client \
                     CA is given: set `client_ca_file` to the CA that signs them"
                ),
            );
        }
        if r.client_allowed_sans.is_some() && !auth.mandatory() {
            self.error(
                raw,
                "`client_allowed_sans` requires `client_auth_type` to be one of \
                 RequireAnyClientCert or RequireAndVerifyClientCert",
            );
        }
    }

    fn version(
        &mut self,
        s: Option<&Spanned<String>>,
        key: &str,
        default: TlsVersion,
    ) -> Option<TlsVersion> {
        let Some(s) = s.filter(|s| !s.value.is_empty()) else {
            return Some(default);
        };
        match (s.value.as_str(), key) {
            ("TLS13", _) => Some(TlsVersion::Tls13),
            ("TLS12", _) => Some(TlsVersion::Tls12),
            // rustls speaks nothing older; "at least 1.0" is still met.
            ("TLS10" | "TLS11", "min_version") => Some(TlsVersion::Tls12),
            ("TLS10" | "TLS11", _) => {
                self.error(
                    s,
                    format!(
                        "`{key}: {}` is not supported: the oldest TLS version served is \
                         TLS12",
                        s.value
                    ),
                );
                None
            }
            _ => {
                self.error(
                    s,
                    format!(
                        "unknown TLS version `{}` for `{key}`: use TLS12 or TLS13",
                        s.value.escape_debug()
                    ),
                );
                None
            }
        }
    }

    fn cipher_suites(&mut self, names: &[Spanned<String>]) -> Option<Vec<&'static str>> {
        let mut suites = Vec::new();
        let mut ok = true;
        for name in names {
            if let Some(known) = TLS12_SUITES.iter().find(|s| **s == name.value) {
                if !suites.contains(known) {
                    suites.push(*known);
                }
            } else if !ACCEPTED_UNUSED_SUITES.contains(&name.value.as_str()) {
                self.error(
                    name,
                    format!(
                        "unknown cipher suite `{}`: use Go's names for TLS 1.2 suites, like \
                         {}",
                        name.value.escape_debug(),
                        TLS12_SUITES.join(", ")
                    ),
                );
                ok = false;
            }
        }
        if ok
            && suites.is_empty()
            && let Some(first) = names.first()
        {
            self.error(
                first,
                format!(
                    "`cipher_suites` names no TLS 1.2 suite that can be served (rustls has no \
                     CBC suites): add one of {}",
                    TLS12_SUITES.join(", ")
                ),
            );
            ok = false;
        }
        ok.then_some(suites)
    }

    fn curves(&mut self, names: &[Spanned<String>]) -> Option<Vec<Curve>> {
        let mut curves = Vec::new();
        let mut ok = true;
        for name in names {
            let curve = match name.value.as_str() {
                "X25519" => Some(Curve::X25519),
                "CurveP256" => Some(Curve::P256),
                "CurveP384" => Some(Curve::P384),
                // Go has it, ring does not: skipped.
                "CurveP521" => None,
                _ => {
                    self.error(
                        name,
                        format!(
                            "unknown curve `{}`: use X25519, CurveP256, CurveP384 or CurveP521",
                            name.value.escape_debug()
                        ),
                    );
                    ok = false;
                    None
                }
            };
            if let Some(c) = curve
                && !curves.contains(&c)
            {
                curves.push(c);
            }
        }
        if ok
            && curves.is_empty()
            && let Some(first) = names.first()
        {
            self.error(
                first,
                "`curve_preferences` names no curve that can be served (CurveP521 is not \
                 supported): add X25519, CurveP256 or CurveP384",
            );
            ok = false;
        }
        ok.then_some(curves)
    }

    fn headers(&mut self, raw: &BTreeMap<String, Spanned<String>>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in raw {
            let Some((_, allowed)) = SETTABLE_HEADERS.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = SETTABLE_HEADERS.iter().map(|(n, _)| *n).collect();
                self.error(
                    value,
                    format!(
                        "HTTP header `{}` can not be configured: only {} can",
                        name.escape_debug(),
                        names.join(", ")
                    ),
                );
                continue;
            };
            if !allowed.is_empty() && !allowed.contains(&value.value.as_str()) {
                self.error(
                    value,
                    format!(
                        "invalid value `{}` for {name}: expected one of {}",
                        value.value.escape_debug(),
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            if HeaderValue::from_str(&value.value).is_err() {
                self.error(
                    value,
                    format!(
                        "the value of {name} is not a valid header value: remove control characters"
                    ),
                );
                continue;
            }
            // Blank means unset, as in exporter-toolkit.
            if !value.value.is_empty() {
                out.push((name.clone(), value.value.clone()));
            }
        }
        out
    }

    fn users(&mut self, raw: BTreeMap<String, Spanned<String>>) -> Vec<(String, Secret)> {
        let mut out = Vec::with_capacity(raw.len());
        for (user, hash) in raw {
            if user.contains(':') {
                self.error(
                    &hash,
                    format!(
                        "user name `{}` contains `:`, which basic auth cannot send: rename the \
                         user",
                        user.escape_debug()
                    ),
                );
                continue;
            }
            let cost = hash
                .value
                .parse::<bcrypt::HashParts>()
                .map(|h| h.get_cost());
            if !cost.is_ok_and(|c| (4..=31).contains(&c)) {
                // The value is not echoed: it may be a password by mistake.
                self.error(
                    &hash,
                    format!(
                        "the password of user `{}` is not a bcrypt hash: write its hash, \
                         not the password (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
                        user.escape_debug()
                    ),
                );
                continue;
            }
            out.push((user, Secret::new(hash.value)));
        }
        out
    }

    fn rate_limit(&mut self, raw: &Spanned<RawRateLimit>) -> Option<RateLimit> {
        let interval = match &raw.value.interval {
            None => Duration::ZERO,
            Some(s) => match parse_duration(&s.value) {
                Ok(d) => d,
                Err(why) => {
                    self.error(
                        s,
                        format!(
                            "invalid `rate_limit.interval` `{}`: {why}; write a duration like \
                             `1s`",
                            s.value.escape_debug()
                        ),
                    );
                    return None;
                }
            },
        };
        // Go's rule: no interval, no limit.
        if interval.is_zero() {
            return None;
        }
        let burst = raw.value.burst.as_ref().map_or(0, |b| b.value);
        if burst == 0 {
            self.error(
                raw,
                "`rate_limit.burst` is 0, which refuses every request: set it to at least 1",
            );
            return None;
        }
        Some(RateLimit { burst, interval })
    }
}

// ---------------------------------------------------------------------------
// What the server applies

/// A web config made ready to serve: the TLS acceptor, the authenticator,
/// the headers. Immutable; a reload builds a new one.
pub struct WebSecurity {
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: Option<Authenticator>,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth_excluded_paths: Vec<String>,
    rate_limit: Option<RateLimiter>,
    /// Files whose content is part of this config (certificates, keys,
    /// CAs): a change to one is a change to the config.
    files: Vec<PathBuf>,
    summary: String,
}

impl Default for WebSecurity {
    /// No web config: plain HTTP, no auth, no extra headers.
    fn default() -> Self {
        WebSecurity {
            tls: None,
            auth: None,
            headers: Vec::new(),
            auth_excluded_paths: Vec::new(),
            rate_limit: None,
            files: Vec::new(),
            summary: "tls=off basic_auth=off".to_owned(),
        }
    }
}

/// Paths that never need auth: they carry no data (SPEC §5).
const ALWAYS_OPEN: [&str; 2] = ["/-/healthy", "/-/ready"];

impl WebSecurity {
    /// Read, validate and build the web config at `path`.
    pub fn load(path: &Path) -> Result<WebSecurity, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError::io(path, &e))?;
        let config = WebConfig::from_yaml(&bytes, path)?;
        WebSecurity::from_config(&config, path)
    }

    /// Build from a validated config: reads and checks the certificate
    /// and key files. `path` names the web config in messages.
    pub fn from_config(config: &WebConfig, path: &Path) -> Result<WebSecurity, ConfigError> {
        let tls = match &config.tls {
            Some(t) => Some(tls::acceptor(t).map_err(|issue| ConfigError::new(path, vec![issue]))?),
            None => None,
        };
        let mut files = Vec::new();
        if let Some(t) = &config.tls {
            for pem in [Some(&t.cert), Some(&t.key), t.client_ca.as_ref()]
                .into_iter()
                .flatten()
            {
                if let PemSource::File(p) = &pem.source {
                    files.push(p.clone());
                }
            }
        }
        let headers = config
            .headers
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    HeaderName::from_bytes(n.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        let summary = format!(
            "tls={} client_auth={} basic_auth_users={}",
            if config.tls.is_some() { "on" } else { "off" },
            config
                .tls
                .as_ref()
                .map_or("NoClientCert".to_owned(), |t| format!(
                    "{:?}",
                    t.client_auth
                )),
            config.users.len()
        );
        Ok(WebSecurity {
            tls,
            auth: config
                .has_users()
                .then(|| Authenticator::new(&config.users)),
            headers,
            auth_excluded_paths: config.auth_excluded_paths.clone(),
            rate_limit: config.rate_limit.map(RateLimiter::new),
            files,
            summary,
        })
    }

    /// The TLS acceptor for new connections; None: plain HTTP.
    pub fn tls_acceptor(&self) -> Option<&tokio_rustls::TlsAcceptor> {
        self.tls.as_ref()
    }

    /// The basic-auth checker; None: no users configured.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.auth.as_ref()
    }

    /// Whether a request for `path` must carry valid credentials.
    pub fn requires_auth(&self, path: &str) -> bool {
        self.auth.is_some()
            && !ALWAYS_OPEN.contains(&path)
            && !self.auth_excluded_paths.iter().any(|p| p == path)
    }

    /// Headers added to every response.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// Take one request from the rate limit; false: refuse it.
    pub fn admit(&self) -> bool {
        self.rate_limit.as_ref().is_none_or(RateLimiter::admit)
    }

    /// The files this config was built from besides the web config itself.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// One line for logs: what is on.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

/// Go's `rate.Limiter`: a bucket of `burst` tokens, one added per
/// `interval`, starting full.
struct RateLimiter {
    limit: RateLimit,
    bucket: std::sync::Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            bucket: std::sync::Mutex::new((f64::from(limit.burst), Instant::now())),
        }
    }

    fn admit(&self) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else {
            return true;
        };
        let now = Instant::now();
        let refill = now.duration_since(bucket.1).as_secs_f64() / self.limit.interval.as_secs_f64();
        bucket.0 = (bucket.0 + refill).min(f64::from(self.limit.burst));
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The web config in force, swapped whole on reload: new connections get
/// the new TLS settings, every request the new users and headers.
pub struct LiveWeb {
    path: Option<PathBuf>,
    current: ArcSwap<WebSecurity>,
}

impl LiveWeb {
    /// No `--web.config.file`: plain HTTP, no auth, nothing to reload.
    pub fn open() -> LiveWeb {
        LiveWeb {
            path: None,
            current: ArcSwap::from_pointee(WebSecurity::default()),
        }
    }

    /// Load the web config at `path`, or `open()` without one.
    pub fn load(path: Option<&Path>) -> Result<LiveWeb, ConfigError> {
        let Some(path) = path else {
            return Ok(LiveWeb::open());
        };
        Ok(LiveWeb {
            path: Some(path.to_path_buf()),
            current: ArcSwap::from_pointee(WebSecurity::load(path)?),
        })
    }

    /// The web config file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The config in force now.
    pub fn current(&self) -> Arc<WebSecurity> {
        self.current.load_full()
    }

    /// Re-read the file; on any error the running config stays and the
    /// error text (with `file:line:column`) is returned.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let next = WebSecurity::load(path).map_err(|e| e.to_string())?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// Everything the config is made of, as one byte string for the change
    /// poll: the file, then each certificate/key/CA file it names (an
    /// unreadable one reads as a marker, so its return is a change too).
    /// None when the web config file itself cannot be read.
    pub fn content(&self) -> Option<Vec<u8>> {
        let path = self.path.as_ref()?;
        let mut content = std::fs::read(path).ok()?;
        for file in self.current().files() {
            content.extend_from_slice(b"\0--\0");
            match std::fs::read(file) {
                Ok(bytes) => content.extend_from_slice(&bytes),
                Err(_) => content.extend_from_slice(b"\0unreadable\0"),
            }
        }
        Some(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap (cost 4) real hash.
    fn hash() -> String {
        bcrypt::hash("pw", 4).unwrap()
    }

    fn parse(yaml: &str) -> Result<WebConfig, String> {
        WebConfig::from_yaml(yaml.as_bytes(), Path::new("/etc/web.yml")).map_err(|e| e.to_string())
    }

    fn error(yaml: &str) -> String {
        match parse(yaml) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_file_configures_nothing() {
        for text in ["", "\n", "# nothing\n", "---\n"] {
            assert_eq!(parse(text).unwrap(), WebConfig::default(), "{text:?}");
        }
    }

    #[test]
    fn full_tls_config_parses_with_relative_paths_resolved() {
        let c = parse(
            &"tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
             min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, \
             TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n  curve_preferences: [CurveP521, X25519]\n  \
             client_allowed_sans: [client.example]\n\
             http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  alice: \"HASH\"\n\
             auth_excluded_paths: [/metrics]\n\
             rate_limit: { burst: 5, interval: 1s }\n"
                .replace("HASH", &hash()),
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(
            tls.cert.source,
            PemSource::File(PathBuf::from("/etc/server.crt"))
        );
        assert_eq!(
            tls.key.source,
            PemSource::File(PathBuf::from("/abs/server.key"))
        );
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.max_version, TlsVersion::Tls13);
        assert_eq!(
            tls.cipher_suites,
            vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
        assert_eq!(tls.curve_preferences, vec![Curve::X25519]);
        assert!(tls.prefer_server_cipher_suites);
        assert_eq!(c.headers, vec![("X-Frame-Options".into(), "deny".into())]);
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].0, "alice");
        assert_eq!(c.auth_excluded_paths, vec!["/metrics".to_owned()]);
        assert_eq!(
            c.rate_limit,
            Some(RateLimit {
                burst: 5,
                interval: Duration::from_secs(1)
            })
        );
    }

    #[test]
    fn tls_is_off_without_any_tls_key() {
        let c = parse("tls_server_config:\n  min_version: TLS13\n").unwrap();
        assert!(c.tls.is_none());
        let c = parse("tls_server_config:\n  cert_file: \"\"\n  key_file: \"\"\n").unwrap();
        assert!(c.tls.is_none());
    }

    #[test]
    fn errors_name_line_and_column_and_say_what_to_do() {
        let e = error("tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n");
        assert!(e.starts_with("/etc/web.yml:4:"), "{e}");
        assert!(e.contains("unknown key `certfile`"), "{e}");
        assert!(e.contains("did you mean `cert_file`?"), "{e}");

        let e =
            error("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n");
        assert_eq!(
            e,
            "/etc/web.yml:4:21: invalid `client_auth_type` `Maybe`: use one of NoClientCert, \
             RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, \
             RequireAndVerifyClientCert"
        );
    }

    #[test]
    fn tls_rules_mirror_exporter_toolkit() {
        let e = error("tls_server_config:\n  key_file: b\n");
        assert!(e.contains("no server certificate"), "{e}");
        let e = error("tls_server_config:\n  cert_file: a\n");
        assert!(e.contains("no private key"), "{e}");
        let e = error("tls_server_config:\n  cert_file: a\n  cert: b\n  key_file: k\n");
        assert!(e.contains("`cert_file` and `cert` are both given"), "{e}");
        let e = error("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n");
        assert!(e.contains("without a client auth policy"), "{e}");
        let e = error(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: \
             RequireAndVerifyClientCert\n",
        );
        assert!(e.contains("no client CA is given"), "{e}");
        let e = error(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: \
             RequestClientCert\n  client_allowed_sans: [x]\n",
        );
        assert!(e.contains("`client_allowed_sans` requires"), "{e}");
        let e = error("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS11\n");
        assert!(e.contains("oldest TLS version served is TLS12"), "{e}");
        let e = error(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  \
             max_version: TLS12\n",
        );
        assert!(e.contains("`min_version` is above `max_version`"), "{e}");
        let e = error(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_INVENTED]\n",
        );
        assert!(e.contains("unknown cipher suite `TLS_INVENTED`"), "{e}");
        let e = error(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: \
             [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n",
        );
        assert!(e.contains("no TLS 1.2 suite that can be served"), "{e}");
        let e = error(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [CurveP521]\n",
        );
        assert!(e.contains("no curve that can be served"), "{e}");
        // TLS10 as a minimum is met by TLS 1.2.
        let c = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n")
            .unwrap();
        assert_eq!(c.tls.unwrap().min_version, TlsVersion::Tls12);
        // The old spelling still works.
        let c = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireClientCert\n",
        )
        .unwrap();
        assert_eq!(c.tls.unwrap().client_auth, ClientAuth::RequireAnyClientCert);
    }

    #[test]
    fn only_exporter_toolkit_headers_may_be_set() {
        let e = error("http_server_config:\n  headers:\n    Server: nginx\n");
        assert!(
            e.contains("HTTP header `Server` can not be configured"),
            "{e}"
        );
        let e = error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
        assert!(
            e.contains(
                "invalid value `allow` for X-Frame-Options: expected one of deny, sameorigin"
            ),
            "{e}"
        );
        let e = error("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n");
        assert!(e.contains("expected one of nosniff"), "{e}");
        let c = parse(
            "http_server_config:\n  headers:\n    Content-Security-Policy: \"default-src 'self'\"\n    \
             X-XSS-Protection: \"\"\n",
        )
        .unwrap();
        assert_eq!(
            c.headers,
            vec![(
                "Content-Security-Policy".into(),
                "default-src 'self'".into()
            )]
        );
    }

    #[test]
    fn user_passwords_must_be_bcrypt_hashes_and_are_not_echoed() {
        let e = error("basic_auth_users:\n  alice: hunter2-plaintext\n");
        assert!(e.starts_with("/etc/web.yml:2:10:"), "{e}");
        assert!(e.contains("user `alice` is not a bcrypt hash"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = error(&format!("basic_auth_users:\n  \"a:b\": \"{}\"\n", hash()));
        assert!(e.contains("contains `:`"), "{e}");
        let costly = hash().replacen("$04$", "$99$", 1);
        let e = error(&format!("basic_auth_users:\n  bob: \"{costly}\"\n"));
        assert!(e.contains("user `bob` is not a bcrypt hash"), "{e}");
    }

    #[test]
    fn rate_limit_rules() {
        assert_eq!(
            parse("rate_limit: { burst: 3 }\n").unwrap().rate_limit,
            None
        );
        let e = error("rate_limit: { interval: 1s }\n");
        assert!(e.contains("refuses every request"), "{e}");
        let e = error("rate_limit: { burst: 1, interval: soon }\n");
        assert!(e.contains("invalid `rate_limit.interval` `soon`"), "{e}");
    }

    proptest::proptest! {
        /// Any bytes give a config or an error, never a panic (what a fuzz
        /// target of `from_yaml` checks, in small).
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = WebConfig::from_yaml(&bytes, Path::new("w.yml"));
        }

        #[test]
        fn yaml_shaped_input_never_panics(text in "(tls_server_config|basic_auth_users|http_server_config|headers|cert_file|client_auth_type|min_version|rate_limit|burst|interval|[ :\n\\-\\[\\]{}\"a-z0-9$])*") {
            let _ = WebConfig::from_yaml(text.as_bytes(), Path::new("w.yml"));
        }
    }

    #[test]
    fn security_paths_and_rate_limiter() {
        let config = parse(&format!(
            "basic_auth_users:\n  alice: \"{}\"\nauth_excluded_paths: [/open]\n\
             rate_limit: {{ burst: 2, interval: 1h }}\n",
            hash()
        ))
        .unwrap();
        let web = WebSecurity::from_config(&config, Path::new("w.yml")).unwrap();
        assert!(web.requires_auth("/metrics"));
        assert!(web.requires_auth("/"));
        assert!(!web.requires_auth("/-/healthy"));
        assert!(!web.requires_auth("/-/ready"));
        assert!(!web.requires_auth("/open"));
        assert!(web.admit() && web.admit());
        assert!(
            !web.admit(),
            "the burst is spent and an hour has not passed"
        );
        let open = WebSecurity::default();
        assert!(!open.requires_auth("/metrics"));
        assert!(open.admit());
    }
}
