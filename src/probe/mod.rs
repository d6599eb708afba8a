//! Probers: one file per upstream kind behind one interface.
//!
//! A prober turns the configuration of one target into requests, and the
//! upstream's answer into an immutable [`ProbeOutput`]. Parsing is kept apart
//! from fetching (`parse_*` functions take bytes) so that fixtures, fuzzers
//! and benchmarks exercise exactly the code the daemon runs.

pub mod body;
pub mod cachet;
pub mod google_cloud;
pub mod heroku;
pub mod http_check;
pub mod instatus;
pub mod json;
pub mod packed;
pub mod salesforce;
pub mod slack;
pub mod statusio;
pub mod statuspage;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use http_check::HttpSnapshot;
pub use json::JsonSnapshot;

/// Every prober kind of SPEC §3; the names are the config block names and
/// the `prober` label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProberKind {
    Statuspage,
    Statusio,
    Instatus,
    Cachet,
    Slack,
    GoogleCloud,
    Heroku,
    Salesforce,
    Http,
    Json,
}

impl ProberKind {
    /// The config key and `prober` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProberKind::Statuspage => "statuspage",
            ProberKind::Statusio => "statusio",
            ProberKind::Instatus => "instatus",
            ProberKind::Cachet => "cachet",
            ProberKind::Slack => "slack",
            ProberKind::GoogleCloud => "google_cloud",
            ProberKind::Heroku => "heroku",
            ProberKind::Salesforce => "salesforce",
            ProberKind::Http => "http",
            ProberKind::Json => "json",
        }
    }

    /// Status-page probers export the page/component/incident families.
    pub fn is_status_page(self) -> bool {
        !matches!(self, ProberKind::Http | ProberKind::Json)
    }
}

impl fmt::Display for ProberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed: the closed `reason` label set of
/// `upstream_probe_failures_total` (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Timeout,
    Dns,
    Connect,
    Tls,
    HttpStatus,
    Redirect,
    TooLarge,
    Decode,
    Schema,
    RateLimited,
    Expectation,
    Other,
}

impl Reason {
    /// All reasons, in label order; indexes match [`Reason::index`].
    pub const ALL: [Reason; 12] = [
        Reason::Timeout,
        Reason::Dns,
        Reason::Connect,
        Reason::Tls,
        Reason::HttpStatus,
        Reason::Redirect,
        Reason::TooLarge,
        Reason::Decode,
        Reason::Schema,
        Reason::RateLimited,
        Reason::Expectation,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Dns => "dns",
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::HttpStatus => "http_status",
            Reason::Redirect => "redirect",
            Reason::TooLarge => "too_large",
            Reason::Decode => "decode",
            Reason::Schema => "schema",
            Reason::RateLimited => "rate_limited",
            Reason::Expectation => "expectation",
            Reason::Other => "other",
        }
    }

    /// Position in [`Reason::ALL`], for per-reason counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed probe: its classified reason and a message for logs and the
/// status board. Never contains secrets (URLs are redacted before they get here).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeError {
    pub reason: Reason,
    pub message: String,
    /// Last HTTP status seen, if any answer arrived.
    pub http_status: Option<u16>,
    /// Server-requested pause (`Retry-After` on 429/503).
    pub retry_after: Option<Duration>,
    /// `http` prober: the certificates' expiry, when the probe failed after
    /// the TLS handshake (an unmet expectation, a 5xx): the expiry gauges
    /// go on while the endpoint fails, as blackbox_exporter's do.
    pub certificates: Option<http_check::HttpSnapshot>,
}

impl ProbeError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ProbeError {
            reason,
            message: message.into(),
            http_status: None,
            retry_after: None,
            certificates: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for ProbeError {}

/// The severity scale shared by every status metric (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Severity {
    #[default]
    Unknown = 0,
    Operational = 1,
    Maintenance = 2,
    Degraded = 3,
    PartialOutage = 4,
    MajorOutage = 5,
}

impl Severity {
    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Operational => "operational",
            Severity::Maintenance => "maintenance",
            Severity::Degraded => "degraded",
            Severity::PartialOutage => "partial_outage",
            Severity::MajorOutage => "major_outage",
        }
    }

    /// Worst of the known severities; unknown (0) never raises a page status.
    pub fn worst<I: IntoIterator<Item = Severity>>(items: I) -> Severity {
        items
            .into_iter()
            .filter(|s| *s != Severity::Unknown)
            .max()
            .unwrap_or(Severity::Unknown)
    }
}

/// The `impact` label of incidents (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
    Maintenance,
}

impl Impact {
    pub const ALL: [Impact; 5] = [
        Impact::None,
        Impact::Minor,
        Impact::Major,
        Impact::Critical,
        Impact::Maintenance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::None => "none",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
            Impact::Maintenance => "maintenance",
        }
    }
}

/// One exported component. Identity is `id`; names may repeat within a page.
///
/// `id`, `name` and `group` live back to back in one allocation: at 10,000
/// targets × 20 components, three `String`s per component were three heap
/// blocks and 72 bytes of headers each, the largest share of the
/// exporter's memory. Whether any of them needs escaping in the exposition
/// format is worked out once here, not on every scrape.
#[derive(Clone, PartialEq)]
pub struct Component {
    text: Box<str>,
    id_len: u32,
    name_len: u32,
    /// No `\\`, `"` or newline in any of the three (written as they are).
    plain: bool,
    pub status: Severity,
}

impl Component {
    pub fn new(id: &str, name: &str, group: &str, status: Severity) -> Component {
        let (id, name, group) = (fit_u32(id), fit_u32(name), fit_u32(group));
        let mut text = String::with_capacity(id.len() + name.len() + group.len());
        text.push_str(id);
        text.push_str(name);
        text.push_str(group);
        Component {
            plain: !crate::exposition::label_needs_escaping(&text),
            text: text.into_boxed_str(),
            id_len: u32::try_from(id.len()).unwrap_or(u32::MAX),
            name_len: u32::try_from(name.len()).unwrap_or(u32::MAX),
            status,
        }
    }

    pub fn id(&self) -> &str {
        self.text.get(..self.id_len as usize).unwrap_or_default()
    }

    /// Bytes of id, name and group together.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn name(&self) -> &str {
        let start = self.id_len as usize;
        self.text
            .get(start..start + self.name_len as usize)
            .unwrap_or_default()
    }

    /// Name of the group row that lists this component, or "".
    pub fn group(&self) -> &str {
        let start = self.id_len as usize + self.name_len as usize;
        self.text.get(start..).unwrap_or_default()
    }

    /// Whether none of id, name and group needs escaping as a label value.
    pub fn is_plain(&self) -> bool {
        self.plain
    }
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("group", &self.group())
            .field("status", &self.status)
            .finish()
    }
}

/// `s` cut (at a character boundary) to at most `u32::MAX` bytes, so its
/// length fits [`Component`]'s offsets. No real page comes near it: the
/// body limit stops such a string long before.
fn fit_u32(s: &str) -> &str {
    let mut end = s.len().min(u32::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One open incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: String,
    pub name: String,
    pub impact: Impact,
    /// The provider's own status word (investigating, identified, ...).
    pub status: String,
    /// Unix seconds when it started, if the provider says.
    pub started: Option<f64>,
}

/// What a status-page prober extracted from one answer. Immutable once built.
/// Equal snapshots say the same, packed or not.
#[derive(Debug, Clone, Default)]
pub struct StatusSnapshot {
    pub page: Severity,
    /// The components as a parser builds them; [`StatusSnapshot::shared`]
    /// moves them into `packed`. Read them with
    /// [`StatusSnapshot::each_component`], which sees either.
    pub components: Vec<Component>,
    /// The components of a published snapshot (see [`packed`]).
    pub packed: packed::ComponentTable,
    pub incidents: Vec<Incident>,
    pub maintenances_active: u32,
    /// Unix seconds of the earliest scheduled maintenance start.
    pub next_maintenance_start: Option<f64>,
    /// Components dropped by `max_components` (0 when not capped).
    pub components_capped: usize,
    /// How many components the body itself listed, before the target's
    /// filter and cap; `None` where the components are not a list the page
    /// keeps (Google Cloud's products, gathered from its incident history).
    /// A page that listed some and now lists none has changed shape; a
    /// filter that matches nothing any more has not.
    pub listed: Option<u32>,
    /// Unknown enum values seen in this answer, by field name.
    pub unknown_values: Vec<(&'static str, u64)>,
    /// Which published snapshot this is (see [`StatusSnapshot::published_id`]);
    /// `Default` in a literal.
    pub published: PublishedId,
}

/// A number given to each snapshot [`StatusSnapshot::shared`] publishes,
/// unique for the life of the process: `/metrics` keeps a page's
/// compressed lines for as long as the same snapshot is published. 0 on a
/// snapshot not published that way, and on any copy (a copy may be changed
/// and then published under its own number).
#[derive(Debug, Default)]
pub struct PublishedId(u64);

impl Clone for PublishedId {
    fn clone(&self) -> PublishedId {
        PublishedId(0)
    }
}

impl PublishedId {
    fn next() -> PublishedId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        PublishedId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl StatusSnapshot {
    /// The finished snapshot, ready to publish: its components packed (see
    /// [`packed`]) and its lists trimmed to their length (parsers push into
    /// them, and a `Vec` grown by doubling holds 20 items in room for 32;
    /// the snapshot lives until the next change of the page, one per
    /// target), behind an `Arc`.
    pub fn shared(mut self) -> Arc<StatusSnapshot> {
        if !self.components.is_empty() {
            self.packed = packed::ComponentTable::pack(&self.components);
            self.components = Vec::new();
        }
        self.incidents.shrink_to_fit();
        self.unknown_values.shrink_to_fit();
        self.published = PublishedId::next();
        Arc::new(self)
    }

    /// This snapshot's number if [`StatusSnapshot::shared`] published it,
    /// else 0. Two published snapshots never share a number, so equal
    /// numbers mean the same contents.
    pub fn published_id(&self) -> u64 {
        self.published.0
    }

    /// Everything but how the components are stored.
    fn same_as(&self, other: &StatusSnapshot) -> bool {
        self.page == other.page
            && self.component_count() == other.component_count()
            && self.each_component().eq(other.each_component())
            && self.incidents == other.incidents
            && self.maintenances_active == other.maintenances_active
            && self.next_maintenance_start == other.next_maintenance_start
            && self.components_capped == other.components_capped
            && self.listed == other.listed
            && self.unknown_values == other.unknown_values
    }

    /// How many components, packed or not.
    pub fn component_count(&self) -> usize {
        self.components.len().max(self.packed.len())
    }

    /// Every component in page order, packed or not.
    pub fn each_component(&self) -> impl Iterator<Item = packed::ComponentRef<'_>> {
        let packed = self.components.is_empty();
        (0..self.component_count()).filter_map(move |i| {
            if packed {
                self.packed.get(i)
            } else {
                self.components.get(i).map(packed::ComponentRef::from)
            }
        })
    }

    /// Record how many components the body listed (see
    /// [`StatusSnapshot::listed`]).
    pub fn set_listed(&mut self, count: usize) {
        self.listed = Some(u32::try_from(count).unwrap_or(u32::MAX));
    }

    /// Record one unknown enum value of `field`.
    pub fn count_unknown(&mut self, field: &'static str) {
        match self.unknown_values.iter_mut().find(|(f, _)| *f == field) {
            Some((_, n)) => *n += 1,
            None => self.unknown_values.push((field, 1)),
        }
    }
}

impl PartialEq for StatusSnapshot {
    fn eq(&self, other: &StatusSnapshot) -> bool {
        self.same_as(other)
    }
}

/// What a successful probe yields.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutput {
    /// Every status-page prober.
    Status(Arc<StatusSnapshot>),
    /// `http`: TLS certificate expiry of the answer's connection.
    Http(HttpSnapshot),
    /// `json`: the samples of the user's rules.
    Json(JsonSnapshot),
}

/// What a prober needs to make requests for one probe: the shared client of
/// the target's profile, the per-host limits, and the probe's deadline.
pub struct ProbeContext<'a> {
    pub target: &'a crate::config::TargetConfig,
    pub client: reqwest::Client,
    pub hosts: &'a crate::runner::HostLimits,
    /// The whole probe (all attempts) must end by then.
    pub deadline: tokio::time::Instant,
    /// The status of the latest answer whose head arrived (0: none yet), so
    /// that a probe timing out while the body trickles in still reports it.
    pub status_seen: std::sync::atomic::AtomicU16,
}

impl ProbeContext<'_> {
    /// A context for `target`, ending at `deadline`.
    pub fn new<'a>(
        target: &'a crate::config::TargetConfig,
        client: reqwest::Client,
        hosts: &'a crate::runner::HostLimits,
        deadline: tokio::time::Instant,
    ) -> ProbeContext<'a> {
        ProbeContext {
            target,
            client,
            hosts,
            deadline,
            status_seen: std::sync::atomic::AtomicU16::new(0),
        }
    }

    /// A timeout that came after an answer's head keeps that answer's
    /// status (`upstream_http_status_code` shows it, not 0); the runner
    /// applies it to every probe's error.
    pub fn with_status_seen(&self, mut e: ProbeError) -> ProbeError {
        let seen = self.status_seen.load(std::sync::atomic::Ordering::Relaxed);
        if e.reason == Reason::Timeout && e.http_status.is_none() && seen != 0 {
            e.http_status = Some(seen);
            e.message = format!(
                "{} while the body of an HTTP {seen} answer came in",
                e.message
            );
        }
        e
    }

    /// GET `url` with retries on transient failures, holding a per-host
    /// permit during each attempt only (not during backoff sleeps).
    pub async fn get(&self, url: &url::Url) -> Result<crate::http::Fetched, ProbeError> {
        crate::retry::with_retries(
            self.target.retries,
            self.target.backoff,
            self.deadline,
            self.target.timeout,
            || async {
                let _permit = self.hosts.acquire(url, self.deadline).await?;
                crate::http::get_once(&self.client, self.target, url, &self.status_seen).await
            },
        )
        .await
    }

    /// GET one status-page body and parse it: the whole probe of every
    /// single-URL status prober. A parse failure keeps the HTTP status.
    pub async fn fetch_status(
        &self,
        url: &url::Url,
        parse: impl FnOnce(&[u8]) -> Result<StatusSnapshot, ProbeError>,
    ) -> Result<ProbeSuccess, ProbeError> {
        let fetched = self.get(url).await?;
        // An unchanged answer (304, or the same bytes) means the same snapshot.
        if let Some(snapshot) = fetched.reused::<StatusSnapshot>() {
            return Ok(body::success(fetched.status, snapshot));
        }
        let snapshot = parse(&fetched.body)
            .map_err(|e| e.with_status(fetched.status))?
            .shared();
        fetched.memoize(snapshot.clone());
        Ok(body::success(fetched.status, snapshot))
    }
}

/// A successful probe: what it found and the last HTTP status it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSuccess {
    pub http_status: u16,
    pub output: ProbeOutput,
}

/// Run the target's prober once.
pub async fn run(ctx: &ProbeContext<'_>) -> Result<ProbeSuccess, ProbeError> {
    use crate::config::ProberConfig;
    match &ctx.target.prober {
        ProberConfig::Statuspage(cfg) => {
            ctx.fetch_status(&cfg.url, |body| statuspage::parse(body, cfg))
                .await
        }
        ProberConfig::Statusio(cfg) => statusio::probe(ctx, cfg).await,
        ProberConfig::Instatus(cfg) => instatus::probe(ctx, cfg).await,
        ProberConfig::Cachet(cfg) => cachet::probe(ctx, cfg).await,
        ProberConfig::Slack(cfg) => slack::probe(ctx, cfg).await,
        ProberConfig::GoogleCloud(cfg) => google_cloud::probe(ctx, cfg).await,
        ProberConfig::Heroku(cfg) => heroku::probe(ctx, cfg).await,
        ProberConfig::Salesforce(cfg) => salesforce::probe(ctx, cfg).await,
        ProberConfig::Http(cfg) => http_check::probe(ctx, cfg).await,
        ProberConfig::Json(cfg) => json::probe(ctx, cfg).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_keeps_its_three_strings_apart() {
        let c = Component::new("id1", "Name ü", "Group", Severity::Degraded);
        assert_eq!((c.id(), c.name(), c.group()), ("id1", "Name ü", "Group"));
        assert!(c.is_plain());
        let empty = Component::new("", "", "", Severity::Unknown);
        assert_eq!((empty.id(), empty.name(), empty.group()), ("", "", ""));
        // Same concatenation, different boundaries: different components.
        assert_ne!(
            Component::new("ab", "c", "", Severity::Operational),
            Component::new("a", "bc", "", Severity::Operational)
        );
        assert!(format!("{c:?}").contains("name: \"Name ü\""));
    }

    #[test]
    fn component_knows_when_a_label_needs_escaping() {
        for (id, name, group) in [("a\"b", "n", "g"), ("a", "n\\", "g"), ("a", "n", "g\nh")] {
            assert!(!Component::new(id, name, group, Severity::Operational).is_plain());
        }
    }
}
