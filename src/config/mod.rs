//! `exporter.yaml`: the validated configuration the rest of the program uses.
//!
//! Loading is two steps: `raw` deserialises the YAML exactly as written (with
//! source positions kept for error messages, unknown keys rejected), and
//! `validate` turns it into the types below, applying `defaults`, expanding
//! `${ENV}`, reading `*_file` secrets and compiling regexes once. Everything
//! downstream sees only validated values.

mod error;
mod raw;
mod secret;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{Annotated, ConfigError, ConfigIssue};
pub use secret::Secret;
pub use validate::{ceil_to_millis, format_duration, parse_duration, parse_size};
pub(crate) use validate::{closest, decode, yaml_issue};

use crate::probe::ProberKind;
pub use crate::probe::cachet::CachetConfig;
pub use crate::probe::google_cloud::GoogleCloudConfig;
pub use crate::probe::heroku::HerokuConfig;
pub use crate::probe::http_check::HttpCheckConfig;
pub use crate::probe::instatus::InstatusConfig;
pub use crate::probe::json::JsonConfig;
pub use crate::probe::salesforce::SalesforceConfig;
pub use crate::probe::slack::SlackConfig;
pub use crate::probe::statusio::StatusioConfig;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Probes in flight at once, all targets together.
    pub concurrency: usize,
    /// Probes in flight against one `host:port`.
    pub per_host_concurrency: usize,
    /// Least time between the starts of two requests to one `host:port`;
    /// zero (the default) is no spacing.
    pub min_interval_per_host: Duration,
    /// Targets in file order; names are unique.
    pub targets: Vec<Arc<TargetConfig>>,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read(path).map_err(|e| ConfigError::io(path, &e))?;
        Config::from_bytes(&text, path)
    }

    /// Validate config text; `path` is used for messages and for resolving
    /// relative `*_file` paths.
    pub fn from_bytes(text: &[u8], path: &Path) -> Result<Config, ConfigError> {
        validate::load(text, path).map_err(|e| e.with_source(text))
    }
}

/// One target, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub name: String,
    /// Static labels from config, sorted by key.
    pub labels: Vec<(String, String)>,
    pub interval: Duration,
    /// Whole probe, retries included; always < interval.
    pub timeout: Duration,
    /// Extra attempts on transient errors.
    pub retries: u32,
    pub backoff: Backoff,
    pub max_body_size: u64,
    /// Shared by every target with the same value (see [`TargetConfig::tls`]).
    pub user_agent: Arc<str>,
    /// Extra request headers (values may be secrets).
    pub headers: Vec<(String, Secret)>,
    /// Shared by every target with equal settings: nearly all targets have
    /// the same (usually none), and a copy each was 104 bytes × 10,000
    /// targets of the same value.
    pub tls: Arc<TlsConfig>,
    /// Explicit proxy; None means the environment's HTTPS_PROXY/NO_PROXY.
    pub proxy_url: Option<Secret>,
    /// After the last success, status series are dropped.
    pub stale_after: Duration,
    pub prober: ProberConfig,
}

impl TargetConfig {
    pub fn kind(&self) -> ProberKind {
        self.prober.kind()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

/// Client TLS settings of one target. Targets with equal settings share one
/// HTTP client (and its connection pool).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    /// Whether a client built from this reads files (which may change on
    /// disk under the same path).
    pub fn reads_files(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }
}

/// The one prober block of a target. The status-page blocks other than
/// `statuspage`, and `http` and `json`, keep their validated settings in
/// their prober's module.
#[derive(Debug, Clone, PartialEq)]
pub enum ProberConfig {
    Statuspage(StatuspageConfig),
    Statusio(StatusioConfig),
    Instatus(InstatusConfig),
    Cachet(CachetConfig),
    Slack(SlackConfig),
    GoogleCloud(GoogleCloudConfig),
    Heroku(HerokuConfig),
    Salesforce(SalesforceConfig),
    /// Boxed: the largest block by far (248 bytes against 144-168), and
    /// inline it would size every target's config.
    Http(Box<HttpCheckConfig>),
    Json(JsonConfig),
}

impl ProberConfig {
    pub fn kind(&self) -> ProberKind {
        match self {
            ProberConfig::Statuspage(_) => ProberKind::Statuspage,
            ProberConfig::Statusio(_) => ProberKind::Statusio,
            ProberConfig::Instatus(_) => ProberKind::Instatus,
            ProberConfig::Cachet(_) => ProberKind::Cachet,
            ProberConfig::Slack(_) => ProberKind::Slack,
            ProberConfig::GoogleCloud(_) => ProberKind::GoogleCloud,
            ProberConfig::Heroku(_) => ProberKind::Heroku,
            ProberConfig::Salesforce(_) => ProberKind::Salesforce,
            ProberConfig::Http(_) => ProberKind::Http,
            ProberConfig::Json(_) => ProberKind::Json,
        }
    }

    /// The URL the prober fetches (for Instatus, which fetches two, its
    /// `summary.json`; for Cachet, the first page of its components), as
    /// shown in `upstream_target_info` and logs: no userinfo, no query.
    pub fn display_url(&self) -> String {
        crate::http::redact_url(&self.fetched_url())
    }

    /// The URL the prober fetches (see [`ProberConfig::display_url`]), as
    /// configured: its host is the one the per-host limits apply to.
    pub fn fetched_url(&self) -> url::Url {
        match self {
            ProberConfig::Statuspage(c) => c.url.clone(),
            ProberConfig::Statusio(c) => c.url(),
            ProberConfig::Instatus(c) => c.summary_url(),
            ProberConfig::Cachet(c) => c.components_url(),
            ProberConfig::Slack(c) => c.url(),
            ProberConfig::GoogleCloud(c) => c.url(),
            ProberConfig::Heroku(c) => c.url(),
            ProberConfig::Salesforce(c) => c.url(),
            ProberConfig::Http(c) => c.url.clone(),
            ProberConfig::Json(c) => c.url.clone(),
        }
    }

    /// Whether the target's client follows redirects: always, except for an
    /// `http` block with `follow_redirects: false`.
    pub fn follow_redirects(&self) -> bool {
        match self {
            ProberConfig::Http(c) => c.follow_redirects,
            _ => true,
        }
    }
}

/// `statuspage:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct StatuspageConfig {
    /// The full URL fetched (`<base>/api/v2/summary.json`, or the given `.json` URL).
    pub url: url::Url,
    pub components: ComponentFilter,
    pub max_components: usize,
}

/// `components: { include, exclude }`: each entry matches a component whose
/// id equals it exactly, or whose name matches it as a regex.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ComponentFilter {
    pub include: Vec<Matcher>,
    pub exclude: Vec<Matcher>,
}

impl ComponentFilter {
    /// Whether a component with this id and name is exported.
    pub fn allows(&self, id: &str, name: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|m| m.matches(id, name));
        included && !self.exclude.iter().any(|m| m.matches(id, name))
    }
}

/// One include/exclude entry, compiled once at load.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub source: String,
    pub regex: regex::Regex,
}

impl Matcher {
    pub fn matches(&self, id: &str, name: &str) -> bool {
        id == self.source || self.regex.is_match(name)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Built-in defaults (SPEC §2).
pub mod defaults {
    use std::time::Duration;

    pub const INTERVAL: Duration = Duration::from_secs(60);
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    pub const RETRIES: u32 = 2;
    pub const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
    pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
    pub const MAX_BODY_SIZE: u64 = 4 * 1024 * 1024;
    pub const CONCURRENCY: usize = 64;
    pub const PER_HOST_CONCURRENCY: usize = 4;
    pub const MAX_COMPONENTS: usize = 1000;
    /// `stale_after` defaults to this many intervals.
    pub const STALE_INTERVALS: u32 = 5;

    pub fn user_agent() -> String {
        format!("upstream-exporter/{}", env!("CARGO_PKG_VERSION"))
    }
}
