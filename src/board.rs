//! The status board served at `/`: a server-rendered HTML page with one
//! card per target, worst first, for the person at the keyboard.
//!
//! Every upstream string (component names, incident titles, error
//! messages) is untrusted and goes through [`Page::text`], which escapes
//! it. The page has no external assets and no script: inline CSS, a meta
//! refresh, and a Content-Security-Policy that forbids scripts, so it works
//! offline and behind auth and an escaping slip still could not run code.
//! It is written into one `String`; operational components are only
//! counted, and long lists are cut, so 10,000 targets stay cheap.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::api::not_operational;
use crate::probe::{Impact, Incident, Reason, Severity, StatusSnapshot};
use crate::state::{ProbeRecord, TargetSet, TargetState, unix_now};

/// Seconds between automatic reloads of the page.
const REFRESH_SECONDS: u32 = 30;
/// Non-operational components listed per card; the rest are counted.
const MAX_COMPONENTS_LISTED: usize = 12;
/// Open incidents listed per card; the rest are counted.
const MAX_INCIDENTS_LISTED: usize = 8;

/// Escape text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

/// Append `s` to `out`, escaped for element content and attribute values.
fn push_escaped(out: &mut String, s: &str) {
    let mut clean_from = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        // The special characters are ASCII, so `i` is a char boundary.
        out.push_str(&s[clean_from..i]);
        out.push_str(entity);
        clean_from = i + 1;
    }
    out.push_str(&s[clean_from..]);
}

/// What a failure reason means, in plain words, for people who do not know
/// the `reason` label set. The probe's own message follows it on the board.
pub fn reason_in_words(reason: Reason) -> &'static str {
    match reason {
        Reason::Timeout => "The upstream did not answer in time",
        Reason::Dns => "The host name did not resolve",
        Reason::Connect => "Could not connect, or the connection broke",
        Reason::Tls => "The TLS handshake or certificate failed",
        Reason::HttpStatus => "The upstream answered with an error status",
        Reason::Redirect => "Redirected too often or in a loop",
        Reason::TooLarge => "The answer is larger than max_body_size",
        Reason::Decode => "The answer is not the JSON expected",
        Reason::Schema => "The JSON is not shaped the way this prober expects",
        Reason::RateLimited => "Rate limited: the upstream asked us to slow down",
        Reason::Expectation => "The answer did not meet the check's expectations",
        Reason::Other => "Internal error in the exporter",
    }
}

/// A severity as people say it ("partial outage").
fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Unknown => "unknown",
        Severity::Operational => "operational",
        Severity::Maintenance => "maintenance",
        Severity::Degraded => "degraded",
        Severity::PartialOutage => "partial outage",
        Severity::MajorOutage => "major outage",
    }
}

/// The HTML being written, with the two ways of adding to it.
struct Page {
    out: String,
}

impl Page {
    /// Markup we wrote ourselves.
    fn raw(&mut self, s: &str) -> &mut Self {
        self.out.push_str(s);
        self
    }

    /// Text from anywhere else: escaped.
    fn text(&mut self, s: &str) -> &mut Self {
        push_escaped(&mut self.out, s);
        self
    }

    /// Formatted markup (numbers, our own labels); never upstream text.
    fn fmt(&mut self, args: std::fmt::Arguments<'_>) -> &mut Self {
        // Writing to a String cannot fail.
        let _ = self.out.write_fmt(args);
        self
    }
}

/// One target as the board sees it at render time.
struct Card<'a> {
    target: &'a TargetState,
    record: Arc<ProbeRecord>,
    status: Option<Arc<StatusSnapshot>>,
    /// The latest probe ran and failed.
    failing: bool,
    /// The severity the card is sorted and coloured by.
    severity: Severity,
}

impl<'a> Card<'a> {
    fn new(target: &'a TargetState, now: f64) -> Self {
        let record = target.record_full();
        let status = target.fresh_status(&record, now);
        let failing = record.last_run.is_some() && !record.success;
        let severity = match &status {
            Some(s) => s.page,
            // A passing http/json check counts as operational.
            None if record.success => Severity::Operational,
            None => Severity::Unknown,
        };
        Card {
            target,
            record,
            status,
            failing,
            severity,
        }
    }

    /// Worst first: failing probes, then by severity, then by name.
    fn sort_key(&self) -> (bool, std::cmp::Reverse<Severity>, &str) {
        (
            !self.failing,
            std::cmp::Reverse(self.severity),
            self.target.name(),
        )
    }
}

/// The board: a summary line, then one card per target, worst first.
pub fn landing_page(set: &TargetSet, telemetry_path: &str) -> String {
    let now = unix_now();
    let mut cards: Vec<Card<'_>> = set.targets.iter().map(|t| Card::new(t, now)).collect();
    cards.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut page = Page {
        out: String::with_capacity(4096 + cards.len() * 900),
    };
    head(&mut page, telemetry_path);
    summary(&mut page, &cards);
    page.raw("<main class=\"grid\">");
    for card in &cards {
        render_card(&mut page, card, now);
    }
    if cards.is_empty() {
        page.raw("<p class=\"empty\">No targets are configured.</p>");
    }
    page.raw("</main><footer>upstream-exporter ")
        .text(crate::metrics::VERSION)
        .fmt(format_args!(
            " · this page reloads every {REFRESH_SECONDS} s</footer></body></html>"
        ));
    page.out
}

const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f5f6f8;--card:#fff;--fg:#1d2330;--muted:#5d6573;--line:#dde1e7;--link:#1858c4;\
--s0:#8a919c;--s1:#1e8e4e;--s2:#2f6fdb;--s3:#c99a06;--s4:#e06b14;--s5:#d42828;--fail:#a3123a}\
@media (prefers-color-scheme:dark){:root{--bg:#101318;--card:#1a1f27;--fg:#e6e9ee;--muted:#9aa3b0;--line:#2c333e;--link:#7fb0ff;\
--s0:#6f7783;--s1:#2fb869;--s2:#5b8ff0;--s3:#e0b324;--s4:#f08a3c;--s5:#f05050;--fail:#e0406a}}\
*{box-sizing:border-box}body{margin:0;padding:1rem;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
a{color:var(--link)}h1{font-size:1.35rem;margin:0}h2{font-size:1.05rem;margin:0;overflow-wrap:anywhere}\
body>header{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;align-items:baseline;margin-bottom:.6rem}nav a{margin-right:.9rem}\
.summary{display:flex;flex-wrap:wrap;gap:.4rem;margin:0 0 1rem;padding:0;list-style:none}\
.grid{display:grid;gap:.9rem;align-items:start;grid-template-columns:repeat(auto-fill,minmax(min(100%,23rem),1fr))}\
.card{background:var(--card);border:1px solid var(--line);border-left:.35rem solid var(--c,var(--s0));border-radius:.5rem;padding:.75rem .9rem;min-width:0}\
.card>header{display:flex;gap:.5rem;align-items:flex-start;justify-content:space-between}.badges{display:flex;flex-wrap:wrap;gap:.3rem;justify-content:flex-end}\
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.78rem;font-weight:600;white-space:nowrap;color:#fff;background:var(--c,var(--s0))}\
.s0{--c:var(--s0)}.s1{--c:var(--s1)}.s2{--c:var(--s2)}.s3{--c:var(--s3)}.s4{--c:var(--s4)}.s5{--c:var(--s5)}.fail{--c:var(--fail)}\
.s3.badge{color:#1d1600}.stale{opacity:.7}.meta{color:var(--muted);font-size:.85rem;margin:.25rem 0 .4rem}\
.err{margin:.45rem 0;padding:.45rem .6rem;border-radius:.35rem;background:color-mix(in srgb,var(--fail) 12%,transparent)}\
.err b{display:block}.err code{font-size:.82rem;overflow-wrap:anywhere;white-space:pre-wrap}\
.card ul{margin:.35rem 0;padding:0;list-style:none}.card li{display:flex;gap:.45rem;align-items:baseline;padding:.12rem 0;overflow-wrap:anywhere}\
.card li .badge{flex:none}.card h3{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:.55rem 0 .1rem}\
.muted{color:var(--muted)}.more{color:var(--muted);font-size:.85rem}footer{color:var(--muted);font-size:.8rem;margin-top:1.2rem}";

fn head(page: &mut Page, telemetry_path: &str) {
    page.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">")
        .fmt(format_args!(
            "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">"
        ))
        .raw("<title>upstream-exporter status</title><style>")
        .raw(STYLE)
        .raw("</style></head><body><header><h1>upstream-exporter</h1><nav><a href=\"")
        .text(telemetry_path)
        .raw("\">Metrics</a><a href=\"/api/v1/targets\">Targets API</a><a href=\"/-/ready\">Readiness</a><a href=\"/-/healthy\">Health</a></nav></header>");
}

/// Counts per state, worst first, as coloured chips.
fn summary(page: &mut Page, cards: &[Card<'_>]) {
    let failing = cards.iter().filter(|c| c.failing).count();
    page.raw("<ul class=\"summary\">").fmt(format_args!(
        "<li class=\"badge s0\">{} targets</li>",
        cards.len()
    ));
    if failing > 0 {
        page.fmt(format_args!(
            "<li class=\"badge fail\">{failing} failing</li>"
        ));
    }
    for severity in [
        Severity::MajorOutage,
        Severity::PartialOutage,
        Severity::Degraded,
        Severity::Maintenance,
        Severity::Operational,
    ] {
        let n = cards.iter().filter(|c| c.severity == severity).count();
        if n > 0 {
            page.fmt(format_args!(
                "<li class=\"badge s{}\">{n} {}</li>",
                severity.code(),
                severity_label(severity)
            ));
        }
    }
    page.raw("</ul>");
}

fn render_card(page: &mut Page, card: &Card<'_>, now: f64) {
    let t = card.target;
    let r = &card.record;
    if card.failing {
        page.raw("<article class=\"card fail");
    } else {
        page.fmt(format_args!(
            "<article class=\"card s{}",
            card.severity.code()
        ));
    }
    page.raw("\" id=\"target-")
        .text(t.name())
        .raw("\"><header><h2>")
        .text(t.name())
        .raw("</h2><span class=\"badges\">");
    badges(page, card);
    page.raw("</span></header><p class=\"meta\">")
        .raw(t.config.kind().as_str());
    match r.last_run {
        None => {
            page.raw(" · not checked yet");
        }
        Some(ran) => {
            page.raw(" · checked ")
                .raw(&ago(now - ran))
                .raw(" · ")
                .raw(&latency(r.duration.as_secs_f64()));
            if r.http_status != 0 {
                page.fmt(format_args!(" · HTTP {}", r.http_status));
            }
        }
    }
    let (failed, results) = t.recent_failure_count();
    if failed > 0 {
        page.fmt(format_args!(
            " · {failed} of the last {results} probes failed"
        ));
    }
    page.raw("</p>");
    if let (true, Some(error)) = (card.failing, &r.error) {
        page.raw("<div class=\"err\"><b>")
            .raw(reason_in_words(error.reason))
            .raw("</b><code>")
            .text(&error.message)
            .raw("</code></div>");
        if let (None, Some(success)) = (&card.status, r.last_success) {
            page.raw("<p class=\"muted\">Last success ")
                .raw(&ago(now - success))
                .raw(".</p>");
        }
    }
    if let Some(status) = &card.status {
        status_details(page, status, now);
    }
    if t.is_fresh(r, now) {
        prober_details(page, r, now);
    }
    page.raw("</article>");
}

/// The card's badges: a failing probe, then the page status.
fn badges(page: &mut Page, card: &Card<'_>) {
    if card.failing {
        page.raw("<span class=\"badge fail\">probe failing</span>");
    }
    if card.record.last_run.is_none() {
        page.raw("<span class=\"badge s0\">pending</span>");
        return;
    }
    match &card.status {
        Some(status) => {
            // After a failure the status shown is the last good one.
            let stale = if card.failing { " stale" } else { "" };
            page.fmt(format_args!(
                "<span class=\"badge s{}{stale}\" title=\"page status {}\">{}</span>",
                status.page.code(),
                status.page.code(),
                severity_label(status.page)
            ));
        }
        None if !card.failing => {
            page.raw("<span class=\"badge s1\">up</span>");
        }
        None => {}
    }
}

/// Components not operational (worst first), the operational count, open
/// incidents and maintenance.
fn status_details(page: &mut Page, status: &StatusSnapshot, now: f64) {
    let troubled = not_operational(status);
    let operational = status.component_count() - troubled.len();
    if !troubled.is_empty() {
        page.raw("<h3>Components not operational</h3><ul>");
        for c in troubled.iter().take(MAX_COMPONENTS_LISTED) {
            page.fmt(format_args!(
                "<li><span class=\"badge s{}\">{}</span><span>",
                c.status.code(),
                severity_label(c.status)
            ));
            if !c.group().is_empty() {
                page.raw("<span class=\"muted\">")
                    .text(c.group())
                    .raw(" › </span>");
            }
            page.text(c.name()).raw("</span></li>");
        }
        if troubled.len() > MAX_COMPONENTS_LISTED {
            page.fmt(format_args!(
                "<li class=\"more\">and {} more (see the targets API)</li>",
                troubled.len() - MAX_COMPONENTS_LISTED
            ));
        }
        page.raw("</ul>");
    }
    if status.component_count() > 0 {
        page.fmt(format_args!(
            "<p class=\"more\">{operational} of {} components operational</p>",
            status.component_count()
        ));
    }
    if !status.incidents.is_empty() {
        page.raw("<h3>Open incidents</h3><ul>");
        for incident in status.incidents.iter().take(MAX_INCIDENTS_LISTED) {
            incident_row(page, incident, now);
        }
        if status.incidents.len() > MAX_INCIDENTS_LISTED {
            page.fmt(format_args!(
                "<li class=\"more\">and {} more</li>",
                status.incidents.len() - MAX_INCIDENTS_LISTED
            ));
        }
        page.raw("</ul>");
    }
    if status.maintenances_active > 0 {
        page.fmt(format_args!(
            "<p><span class=\"badge s2\">maintenance</span> {} in progress</p>",
            status.maintenances_active
        ));
    }
    if let Some(start) = status.next_maintenance_start {
        page.raw("<p class=\"muted\">Next maintenance: ")
            .raw(&when(start, now))
            .raw("</p>");
    }
}

fn incident_row(page: &mut Page, incident: &Incident, now: f64) {
    let severity = match incident.impact {
        Impact::Critical => Severity::MajorOutage,
        Impact::Major => Severity::PartialOutage,
        Impact::Minor => Severity::Degraded,
        Impact::Maintenance => Severity::Maintenance,
        Impact::None => Severity::Unknown,
    };
    page.fmt(format_args!(
        "<li><span class=\"badge s{}\">{}</span><span>",
        severity.code(),
        incident.impact.as_str()
    ))
    .text(&incident.name);
    if !incident.status.is_empty() {
        page.raw(" <span class=\"muted\">(").text(&incident.status);
        if let Some(started) = incident.started {
            page.raw(", since ").raw(&ago(now - started));
        }
        page.raw(")</span>");
    }
    page.raw("</span></li>");
}

/// What an `http` or `json` probe adds: TLS expiry, sample counts.
fn prober_details(page: &mut Page, r: &ProbeRecord, now: f64) {
    if let Some(http) = &r.http {
        if let Some(leaf) = http.tls_not_after {
            page.raw("<p class=\"muted\">TLS certificate expires ")
                .raw(&when(leaf, now));
            if let Some(chain) = http
                .tls_chain_earliest_not_after
                .filter(|chain| *chain < leaf)
            {
                page.raw("; the earliest in its chain ")
                    .raw(&when(chain, now));
            }
            page.raw("</p>");
        } else {
            page.raw("<p class=\"muted\">Plain HTTP (no TLS)</p>");
        }
    }
    if let Some(json) = &r.json {
        let samples: usize = json.rules.iter().map(|rule| rule.samples.len()).sum();
        let capped: usize = json.rules.iter().map(|rule| rule.capped).sum();
        page.fmt(format_args!(
            "<p class=\"muted\">{samples} sample{} from {} rule{}",
            plural(samples),
            json.rules.len(),
            plural(json.rules.len())
        ));
        if capped > 0 {
            page.fmt(format_args!(" ({capped} dropped by the per-rule cap)"));
        }
        page.raw("</p>");
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
fn ago(seconds: f64) -> String {
    format!("{} ago", span(seconds.max(0.0)))
}

/// A point in time as its UTC date and relative to now:
/// `2026-05-01 14:00 UTC (in 3 h)` or `... (2 d ago)`.
fn when(at: f64, now: f64) -> String {
    let relative = if at >= now {
        format!("in {}", span(at - now))
    } else {
        ago(now - at)
    };
    match chrono::DateTime::from_timestamp(at as i64, 0) {
        Some(date) => format!("{} ({relative})", date.format("%Y-%m-%d %H:%M UTC")),
        None => relative,
    }
}

/// A length of time in its largest sensible unit.
fn span(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7_199 => format!("{} min", s / 60),
        7_200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// `142 ms` below ten seconds' worth of milliseconds, else `12.3 s`.
fn latency(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape_html("café › ok"), "café › ok");
        assert_eq!(escape_html("é<é"), "é&lt;é");
    }

    #[test]
    fn every_reason_has_its_own_words() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert!(seen.insert(reason_in_words(reason)), "{reason}");
        }
    }

    #[test]
    fn times_read_naturally() {
        assert_eq!(ago(4.4), "4 s ago");
        assert_eq!(ago(-3.0), "0 s ago");
        assert_eq!(span(600.0), "10 min");
        assert_eq!(span(3.0 * 3600.0), "3 h");
        assert_eq!(span(90.0 * 86_400.0), "90 d");
        assert_eq!(latency(0.1423), "142 ms");
        assert_eq!(latency(12.34), "12.3 s");
        assert_eq!(
            when(1_592_348_400.0, 1_592_348_400.0 - 7_200.0),
            "2020-06-16 23:00 UTC (in 2 h)"
        );
    }
}
