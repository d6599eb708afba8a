//! `/metrics`: a scrape-time collector over the latest per-target snapshots.
//!
//! Nothing is copied into a registry when a probe ends: at scrape time the
//! collector walks the current target set, loads each target's latest
//! immutable record, and encodes it with `prometheus-client` (OpenMetrics
//! text). Removed targets are simply absent from the set, so their series
//! vanish at once. The Prometheus text format 0.0.4 is derived from the
//! OpenMetrics text by a single pass that renames counter and info
//! descriptors and drops OpenMetrics-only lines.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::ProberConfig;
use crate::exposition::{Kind, Sink, TargetLabels, Value, Writer};
use crate::probe::json::{JsonRule, MetricKind, RuleSamples};
use crate::probe::{HttpSnapshot, Impact, Reason};
use crate::shard::Shard;
use crate::state::{ProbeRecord, SharedTargets, TargetSet, TargetState, unix_now};

/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition formats `/metrics` can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the scraper's `Accept` asks for it, else text 0.0.4.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// The exporter's own state that appears in metrics.
#[derive(Debug)]
pub struct ExporterStatus {
    reload_successful: AtomicBool,
    /// f64 bits of the last successful reload's Unix time.
    reload_success_at: AtomicU64,
    /// Targets in the loaded config, before the shard filter.
    configured_targets: AtomicU64,
    /// Set by the daemon: `upstream_exporter_shard_info` and
    /// `upstream_exporter_config_targets` appear only with it.
    pub shard: Option<Shard>,
}

impl Default for ExporterStatus {
    fn default() -> Self {
        ExporterStatus {
            reload_successful: AtomicBool::new(false),
            reload_success_at: AtomicU64::new(0f64.to_bits()),
            configured_targets: AtomicU64::new(0),
            shard: None,
        }
    }
}

impl ExporterStatus {
    /// The daemon's status: with `shard`, so the shard families appear.
    pub fn for_shard(shard: Shard) -> Self {
        ExporterStatus {
            shard: Some(shard),
            ..ExporterStatus::default()
        }
    }

    /// Record a config (re)load attempt.
    pub fn record_reload(&self, ok: bool) {
        self.reload_successful.store(ok, Ordering::Relaxed);
        if ok {
            self.reload_success_at
                .store(unix_now().to_bits(), Ordering::Relaxed);
        }
    }

    pub fn reload_successful(&self) -> bool {
        self.reload_successful.load(Ordering::Relaxed)
    }

    /// Record how many targets the loaded config has, all shards together.
    pub fn record_configured_targets(&self, n: usize) {
        self.configured_targets.store(n as u64, Ordering::Relaxed);
    }

    pub fn configured_targets(&self) -> u64 {
        self.configured_targets.load(Ordering::Relaxed)
    }

    pub fn reload_success_at(&self) -> f64 {
        f64::from_bits(self.reload_success_at.load(Ordering::Relaxed))
    }
}

/// Build identity, fixed at compile time by `build.rs`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("UPSTREAM_EXPORTER_REVISION");
pub const RUSTC: &str = env!("UPSTREAM_EXPORTER_RUSTC");

/// Everything behind `/metrics`: the exporter's own families in a
/// `prometheus-client` registry, and the per-target families written
/// directly (see [`crate::exposition`]).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    targets: SharedTargets,
    /// Size of the last exposition, to allocate the next one once.
    last_size: AtomicUsize,
}

impl Metrics {
    pub fn new(targets: SharedTargets, status: Arc<ExporterStatus>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ExporterCollector {
            status,
            targets: targets.clone(),
        }));
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry,
            targets,
            last_size: AtomicUsize::new(0),
        }
    }

    /// Render every family in `format` into one buffer.
    pub fn render_bytes(&self, format: Format) -> Vec<u8> {
        // The last size plus a margin: one allocation, no regrowth.
        let estimate = self.last_size.load(Ordering::Relaxed);
        let mut w = Writer::new(format, estimate + estimate / 8 + 4096);
        self.write(&mut w);
        let out = w.finish();
        self.last_size.store(out.len(), Ordering::Relaxed);
        out
    }

    /// Render every family in `format`, handing `sink` chunks of about
    /// `chunk` bytes as they are ready (the `/metrics` response streams
    /// them, so a scrape of 10,000 targets never holds its whole body).
    /// Stops early if `sink` returns false.
    pub fn render_to(&self, format: Format, chunk: usize, sink: Sink<'_>) {
        let mut w = Writer::streaming(format, chunk, sink);
        self.write(&mut w);
        w.finish();
    }

    fn write(&self, w: &mut Writer<'_>) {
        let mut own = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut own, &self.registry).is_err() {
            // Encoding into a String only fails on a formatting bug; serve what we have.
            tracing::error!("encoding /metrics failed");
        }
        let own = finish_exposition(&own, w.format());
        w.raw(own.strip_suffix("# EOF\n").unwrap_or(&own).as_bytes());
        write_targets(w, &self.targets.load(), unix_now());
    }

    /// [`Metrics::render_bytes`] as a `String` (tests, tools).
    pub fn render(&self, format: Format) -> String {
        String::from_utf8(self.render_bytes(format))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Finish the OpenMetrics text for `format` in one pass: families without
/// samples lose their descriptor lines (a target without incidents has no
/// incident series, so no bare `# TYPE` either); for text 0.0.4, counter
/// descriptors take their `_total` sample name, info families become gauges
/// named `<name>_info`, and `# UNIT` / `# EOF` lines go.
pub fn finish_exposition(om: &str, format: Format) -> String {
    let mut out = String::with_capacity(om.len());
    // Descriptor lines of the current family, written once a sample shows up.
    let mut header = String::new();
    let mut pending_help: Option<(&str, &str)> = None;
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            header.clear();
            match format {
                Format::OpenMetrics => {
                    header.push_str(line);
                    header.push('\n');
                }
                Format::Text => {
                    pending_help = Some(rest.split_once(' ').unwrap_or((rest, "")));
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            match format {
                Format::OpenMetrics => {
                    header.push_str(line);
                    header.push('\n');
                }
                Format::Text => {
                    let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
                    let (suffix, kind) = match kind {
                        "counter" => ("_total", "counter"),
                        "info" => ("_info", "gauge"),
                        "unknown" => ("", "untyped"),
                        other => ("", other),
                    };
                    if let Some((help_name, help)) = pending_help.take()
                        && help_name == name
                    {
                        let _ = writeln!(header, "# HELP {name}{suffix} {help}");
                    }
                    let _ = writeln!(header, "# TYPE {name}{suffix} {kind}");
                }
            }
            continue;
        }
        if line.starts_with("# UNIT ") {
            if format == Format::OpenMetrics {
                header.push_str(line);
                header.push('\n');
            }
            continue;
        }
        if line == "# EOF" {
            if format == Format::OpenMetrics {
                out.push_str("# EOF\n");
            }
            continue;
        }
        if !header.is_empty() {
            out.push_str(&header);
            header.clear();
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One target with its record loaded once per scrape.
struct Loaded<'a> {
    target: &'a TargetState,
    record: Arc<ProbeRecord>,
    /// The status snapshot to export (fresh, not stale).
    status: Option<Arc<crate::probe::StatusSnapshot>>,
    fresh: bool,
}

impl Loaded<'_> {
    fn labels(&self) -> &TargetLabels {
        &self.target.labels
    }
}

/// Every per-target family, family by family (the formats require a
/// family's samples to be contiguous), straight into `w`.
fn write_targets(w: &mut Writer, set: &TargetSet, now: f64) {
    let loaded: Vec<Loaded<'_>> = set
        .targets
        .iter()
        .map(|t| {
            let record = t.record.load_full();
            let fresh = t.is_fresh(&record, now);
            let status = if fresh { record.status.clone() } else { None };
            Loaded {
                target: t,
                record,
                status,
                fresh,
            }
        })
        .collect();
    let ran = || loaded.iter().filter(|l| l.record.last_run.is_some());

    w.family(
        "upstream_target",
        "Static facts about a configured target.",
        Kind::Info,
    );
    for l in &loaded {
        let t = l.target;
        let labels = [
            ("prober", t.config.kind().as_str()),
            ("url", t.display_url.as_str()),
        ];
        w.sample(l.labels(), &labels, Value::Int(1));
    }
    w.family(
        "upstream_probe_success",
        "1 if the target's last probe succeeded. Refreshed every probe interval, not on scrape.",
        Kind::Gauge,
    );
    for l in ran() {
        w.sample(l.labels(), &[], Value::Int(i64::from(l.record.success)));
    }
    w.family(
        "upstream_probe_duration_seconds",
        "Wall time of each probe, retries included.",
        Kind::Histogram,
    );
    for l in &loaded {
        let (sum, count, buckets) = l.target.duration.read();
        w.histogram(l.labels(), &[], &buckets, sum, count);
    }
    w.family("upstream_probes", "Probes run.", Kind::Counter);
    for l in &loaded {
        let n = l.target.probes_total.load(Ordering::Relaxed);
        w.sample(l.labels(), &[], Value::from(n));
    }
    w.family(
        "upstream_probe_failures",
        "Failed probes by reason (timeout, dns, connect, tls, http_status, redirect, too_large, decode, schema, rate_limited, expectation, other); a reason appears once it has occurred.",
        Kind::Counter,
    );
    for l in &loaded {
        for reason in Reason::ALL {
            let n = l.target.failures[reason.index()].load(Ordering::Relaxed);
            if n > 0 {
                let labels = [("reason", reason.as_str())];
                w.sample(l.labels(), &labels, Value::from(n));
            }
        }
    }
    w.family(
        "upstream_probe_last_run_timestamp_seconds",
        "Unix time the last probe ended.",
        Kind::Gauge,
    );
    for l in ran() {
        let v = Value::number(l.record.last_run.unwrap_or(0.0));
        w.sample(l.labels(), &[], v);
    }
    w.family(
        "upstream_probe_last_success_timestamp_seconds",
        "Unix time of the last successful probe, 0 if none yet; the age of the status series.",
        Kind::Gauge,
    );
    for l in ran() {
        let v = Value::number(l.record.last_success.unwrap_or(0.0));
        w.sample(l.labels(), &[], v);
    }
    w.family(
        "upstream_http_status_code",
        "HTTP status of the last answer, 0 if none arrived.",
        Kind::Gauge,
    );
    for l in ran() {
        let v = Value::Int(i64::from(l.record.http_status));
        w.sample(l.labels(), &[], v);
    }
    write_status_families(w, &loaded);
    w.family(
        "upstream_unknown_values",
        "Values the exporter did not recognise (mapped to 0 unknown), by field.",
        Kind::Counter,
    );
    for l in &loaded {
        for (field, n) in l.target.unknown_values() {
            let labels = [("field", field.as_str())];
            w.sample(l.labels(), &labels, Value::from(n));
        }
    }
    write_tls_families(w, &loaded);
    write_json_families(w, &loaded);
}

/// Status-page families: only targets with a fresh (not stale) snapshot.
fn write_status_families(w: &mut Writer, loaded: &[Loaded<'_>]) {
    let fresh = || {
        loaded
            .iter()
            .filter_map(|l| l.status.as_deref().map(|s| (l, s)))
    };
    w.family("upstream_page_status_code", HELP_PAGE_STATUS, Kind::Gauge);
    for (l, s) in fresh() {
        w.sample(l.labels(), &[], Value::Int(s.page.code()));
    }
    w.family(
        "upstream_component_status_code",
        "Component status on the same scale as upstream_page_status_code.",
        Kind::Gauge,
    );
    for (l, s) in fresh() {
        for c in &s.components {
            let labels = [
                ("component_id", c.id()),
                ("component", c.name()),
                ("group", c.group()),
            ];
            let value = Value::Int(c.status.code());
            if c.is_plain() {
                w.sample_plain(l.labels(), &labels, value);
            } else {
                w.sample(l.labels(), &labels, value);
            }
        }
    }
    w.family(
        "upstream_incidents_open",
        "Open incidents by impact.",
        Kind::Gauge,
    );
    for (l, s) in fresh() {
        for impact in Impact::ALL {
            let n = s.incidents.iter().filter(|i| i.impact == impact).count();
            let labels = [("impact", impact.as_str())];
            w.sample(l.labels(), &labels, Value::from(n as u64));
        }
    }
    w.family(
        "upstream_incident",
        "One series per open incident; gone when it is resolved.",
        Kind::Info,
    );
    for (l, s) in fresh() {
        for i in &s.incidents {
            let labels = [
                ("incident_id", i.id.as_str()),
                ("name", i.name.as_str()),
                ("impact", i.impact.as_str()),
                ("status", i.status.as_str()),
            ];
            w.sample(l.labels(), &labels, Value::Int(1));
        }
    }
    w.family(
        "upstream_incident_started_timestamp_seconds",
        "Unix time an open incident started.",
        Kind::Gauge,
    );
    for (l, s) in fresh() {
        for i in &s.incidents {
            if let Some(started) = i.started {
                let labels = [("incident_id", i.id.as_str())];
                w.sample(l.labels(), &labels, Value::number(started));
            }
        }
    }
    w.family(
        "upstream_maintenances_active",
        "Maintenances the provider says are in progress.",
        Kind::Gauge,
    );
    for (l, s) in fresh() {
        let v = Value::Int(i64::from(s.maintenances_active));
        w.sample(l.labels(), &[], v);
    }
    w.family(
        "upstream_maintenance_next_start_timestamp_seconds",
        "Unix time the earliest scheduled maintenance starts; absent when none is scheduled.",
        Kind::Gauge,
    );
    for (l, s) in fresh() {
        if let Some(start) = s.next_maintenance_start {
            w.sample(l.labels(), &[], Value::number(start));
        }
    }
}

const HELP_PAGE_STATUS: &str = "Overall page status: 0 unknown, 1 operational, 2 maintenance, 3 degraded, 4 partial_outage, 5 major_outage. Refreshed every probe interval, not on scrape.";

/// `http` prober: TLS expiry of the last success, until stale.
fn write_tls_families(w: &mut Writer, loaded: &[Loaded<'_>]) {
    let tls = || {
        loaded
            .iter()
            .filter(|l| l.fresh)
            .filter_map(|l| l.record.http.map(|h| (l, h)))
    };
    type Expiry = fn(&HttpSnapshot) -> Option<f64>;
    let families: [(&'static str, &str, Expiry); 2] = [
        (
            "upstream_tls_cert_not_after_timestamp_seconds",
            "Unix time the server's leaf certificate expires (http prober, HTTPS).",
            |h| h.tls_not_after,
        ),
        (
            "upstream_tls_chain_earliest_not_after_timestamp_seconds",
            "Unix time the earliest-expiring certificate of the chain the server presented expires (http prober, HTTPS).",
            |h| h.tls_chain_earliest_not_after,
        ),
    ];
    for (name, help, field) in families {
        w.family(name, help, Kind::Gauge);
        for (l, h) in tls() {
            if let Some(t) = field(&h) {
                w.sample(l.labels(), &[], Value::number(t));
            }
        }
    }
}

/// One family of `json` rules: its first rule (name, help, type) and every
/// (target, rule, samples) writing to it.
type JsonFamily<'a> = (
    &'a JsonRule,
    Vec<(&'a Loaded<'a>, &'a JsonRule, &'a RuleSamples)>,
);

/// `json` prober: the user's metric families, across targets, sorted by
/// name; rules sharing a name (in one target or across targets) are one
/// family. Config validation guarantees one type per name.
fn write_json_families(w: &mut Writer, loaded: &[Loaded<'_>]) {
    let mut families: std::collections::BTreeMap<&str, JsonFamily<'_>> =
        std::collections::BTreeMap::new();
    for l in loaded.iter().filter(|l| l.fresh) {
        let (ProberConfig::Json(cfg), Some(snap)) = (&l.target.config.prober, &l.record.json)
        else {
            continue;
        };
        for (rule, samples) in cfg.rules.iter().zip(&snap.rules) {
            families
                .entry(rule.family())
                .or_insert_with(|| (rule, Vec::new()))
                .1
                .push((l, rule, samples));
        }
    }
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for (name, (first, members)) in families {
        let kind = match first.kind {
            MetricKind::Gauge => Kind::Gauge,
            MetricKind::Counter => Kind::Counter,
        };
        w.family_named(name, &first.help, kind);
        for (l, rule, samples) in members {
            for sample in &samples.samples {
                labels.clear();
                labels.extend(
                    rule.labels
                        .iter()
                        .zip(&sample.labels)
                        .map(|((name, _), value)| (name.as_str(), value.as_str())),
                );
                w.sample(l.labels(), &labels, Value::number(sample.value));
            }
        }
    }
}

#[derive(Debug)]
struct ExporterCollector {
    status: Arc<ExporterStatus>,
    targets: SharedTargets,
}

impl Collector for ExporterCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        enc.encode_descriptor(
            "upstream_exporter_build",
            "Build of the running exporter.",
            None,
            MetricType::Info,
        )?
        .encode_info(&[
            ("version", VERSION),
            ("revision", REVISION),
            ("rustc", RUSTC),
        ])?;
        enc.encode_descriptor(
            "upstream_exporter_config_last_reload_successful",
            "1 if the last config load or reload succeeded.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&i64::from(self.status.reload_successful()))?;
        enc.encode_descriptor(
            "upstream_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load or reload.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&self.status.reload_success_at())?;
        enc.encode_descriptor(
            "upstream_exporter_targets",
            "Targets this exporter probes.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&self.targets.load().targets.len())?;
        if let Some(shard) = self.status.shard {
            enc.encode_descriptor(
                "upstream_exporter_config_targets",
                "Targets in the loaded config, all shards together; upstream_exporter_targets counts this shard's.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.status.configured_targets())?;
            let (index, count) = (shard.index().to_string(), shard.count().to_string());
            enc.encode_descriptor(
                "upstream_exporter_shard",
                "Which shard this replica is (--shard.index of --shard.count).",
                None,
                MetricType::Info,
            )?
            .encode_info(&[
                ("shard_index", index.as_str()),
                ("shard_count", count.as_str()),
            ])?;
        }
        Ok(())
    }
}

/// Standard `process_*` metrics from `/proc/self` (Linux).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = crate::process::read() else {
            return Ok(());
        };
        enc.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&p.cpu_seconds, None)?;
        enc.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&p.resident_bytes)?;
        enc.encode_descriptor(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&p.virtual_bytes)?;
        enc.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&p.start_time_seconds)?;
        if let Some(fds) = p.open_fds {
            enc.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&fds)?;
        }
        if let Some(max) = p.max_fds {
            enc.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&max)?;
        }
        enc.encode_descriptor(
            "process_threads",
            "Number of OS threads in the process.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&p.threads)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_openmetrics_only_when_asked() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
    }

    #[test]
    fn converts_counters_and_info_for_text_format() {
        let om = "# HELP a_things Things.\n# TYPE a_things counter\na_things_total 3\n# HELP b Build.\n# TYPE b info\nb_info{v=\"1\"} 1\n# HELP e Empty.\n# TYPE e gauge\n# HELP g G.\n# TYPE g gauge\n# UNIT g seconds\ng 1.5\n# EOF\n";
        assert_eq!(
            finish_exposition(om, Format::OpenMetrics),
            om.replace("# HELP e Empty.\n# TYPE e gauge\n", "")
        );
        let text = finish_exposition(om, Format::Text);
        assert_eq!(
            text,
            "# HELP a_things_total Things.\n# TYPE a_things_total counter\na_things_total 3\n# HELP b_info Build.\n# TYPE b_info gauge\nb_info{v=\"1\"} 1\n# HELP g G.\n# TYPE g gauge\ng 1.5\n"
        );
    }
}
