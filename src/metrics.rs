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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, LabelSetEncoder, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::{JsonConfig, ProberConfig};
use crate::probe::json::{JsonRule, LabelSource, MetricKind, RuleSamples};
use crate::probe::{HttpSnapshot, Impact, JsonSnapshot, Reason};
use crate::shard::Shard;
use crate::state::{ProbeRecord, SharedTargets, TargetState, unix_now};

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

/// The registry behind `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(targets: SharedTargets, status: Arc<ExporterStatus>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ExporterCollector {
            status,
            targets: targets.clone(),
        }));
        registry.register_collector(Box::new(ProcessCollector));
        registry.register_collector(Box::new(TargetsCollector { targets }));
        Metrics { registry }
    }

    /// Render every family in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(64 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Encoding into a String only fails on a formatting bug; serve what we have.
            tracing::error!("encoding /metrics failed");
        }
        finish_exposition(&out, format)
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

/// Fixed labels followed by a target's static config labels, without allocating.
struct Labels<'a, const N: usize> {
    fixed: [(&'a str, &'a str); N],
    extra: &'a [(String, String)],
}

impl<const N: usize> EncodeLabelSet for Labels<'_, N> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        for label in &self.fixed {
            label.encode(encoder.encode_label())?;
        }
        for (k, v) in self.extra {
            (k.as_str(), v.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

fn labels<'a, const N: usize>(
    fixed: [(&'a str, &'a str); N],
    target: &'a TargetState,
) -> Labels<'a, N> {
    Labels {
        fixed,
        extra: &target.config.labels,
    }
}

const REFRESHED: &str = "Refreshed every probe interval, not on scrape.";

/// One target with its record loaded once per scrape.
struct Loaded {
    target: Arc<TargetState>,
    record: Arc<ProbeRecord>,
}

#[derive(Debug)]
struct TargetsCollector {
    targets: SharedTargets,
}

/// Open a family, then encode one sample per item that yields a value.
fn family<T>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    items: impl IntoIterator<Item = T>,
    mut sample: impl FnMut(&mut MetricEncoder, T) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for item in items {
        sample(&mut metric, item)?;
    }
    Ok(())
}

/// Encode a gauge; whole numbers are written as integers (`1`, not `1.0`).
fn gauge<S: EncodeLabelSet>(
    m: &mut MetricEncoder,
    labels: &S,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let mut family = m.encode_family(labels)?;
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        family.encode_gauge(&(v as i64))
    } else {
        family.encode_gauge(&v)
    }
}

fn counter<S: EncodeLabelSet>(
    m: &mut MetricEncoder,
    labels: &S,
    v: u64,
) -> Result<(), std::fmt::Error> {
    m.encode_family(labels)?
        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v, None)
}

impl Collector for TargetsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let set = self.targets.load();
        let now = unix_now();
        let loaded: Vec<Loaded> = set
            .targets
            .iter()
            .map(|t| Loaded {
                target: t.clone(),
                record: t.record.load_full(),
            })
            .collect();
        let all = || loaded.iter();
        let ran = || loaded.iter().filter(|l| l.record.last_run.is_some());

        family(
            &mut enc,
            "upstream_target",
            "Static facts about a configured target.",
            MetricType::Info,
            all(),
            |m, l| {
                let t = &*l.target;
                m.encode_info(&labels(
                    [
                        ("target", t.name()),
                        ("prober", t.config.kind().as_str()),
                        ("url", &t.display_url),
                    ],
                    t,
                ))
            },
        )?;
        family(
            &mut enc,
            "upstream_probe_success",
            "1 if the target's last probe succeeded. Refreshed every probe interval, not on scrape.",
            MetricType::Gauge,
            ran(),
            |m, l| {
                gauge(
                    m,
                    &labels([("target", l.target.name())], &l.target),
                    if l.record.success { 1.0 } else { 0.0 },
                )
            },
        )?;
        family(
            &mut enc,
            "upstream_probe_duration_seconds",
            "Wall time of each probe, retries included.",
            MetricType::Histogram,
            all(),
            |m, l| {
                let (sum, count, buckets) = l.target.duration.read();
                m.encode_family(&labels([("target", l.target.name())], &l.target))?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        sum, count, &buckets, None,
                    )
            },
        )?;
        family(
            &mut enc,
            "upstream_probes",
            "Probes run.",
            MetricType::Counter,
            all(),
            |m, l| {
                counter(
                    m,
                    &labels([("target", l.target.name())], &l.target),
                    l.target.probes_total.load(Ordering::Relaxed),
                )
            },
        )?;
        family(
            &mut enc,
            "upstream_probe_failures",
            "Failed probes by reason (timeout, dns, connect, tls, http_status, redirect, too_large, decode, schema, rate_limited, expectation, other); a reason appears once it has occurred.",
            MetricType::Counter,
            all(),
            |m, l| {
                for reason in Reason::ALL {
                    let n = l.target.failures[reason.index()].load(Ordering::Relaxed);
                    if n > 0 {
                        counter(
                            m,
                            &labels(
                                [("target", l.target.name()), ("reason", reason.as_str())],
                                &l.target,
                            ),
                            n,
                        )?;
                    }
                }
                Ok(())
            },
        )?;
        family(
            &mut enc,
            "upstream_probe_last_run_timestamp_seconds",
            "Unix time the last probe ended.",
            MetricType::Gauge,
            ran(),
            |m, l| {
                gauge(
                    m,
                    &labels([("target", l.target.name())], &l.target),
                    l.record.last_run.unwrap_or(0.0),
                )
            },
        )?;
        family(
            &mut enc,
            "upstream_probe_last_success_timestamp_seconds",
            "Unix time of the last successful probe, 0 if none yet; the age of the status series.",
            MetricType::Gauge,
            ran(),
            |m, l| {
                gauge(
                    m,
                    &labels([("target", l.target.name())], &l.target),
                    l.record.last_success.unwrap_or(0.0),
                )
            },
        )?;
        family(
            &mut enc,
            "upstream_http_status_code",
            "HTTP status of the last answer, 0 if none arrived.",
            MetricType::Gauge,
            ran(),
            |m, l| {
                gauge(
                    m,
                    &labels([("target", l.target.name())], &l.target),
                    f64::from(l.record.http_status),
                )
            },
        )?;

        // Status-page families: only targets with a fresh (not stale) snapshot.
        let fresh: Vec<(&Loaded, Arc<crate::probe::StatusSnapshot>)> = loaded
            .iter()
            .filter_map(|l| l.target.fresh_status(&l.record, now).map(|s| (l, s)))
            .collect();
        let help_page = format!(
            "Overall page status: 0 unknown, 1 operational, 2 maintenance, 3 degraded, 4 partial_outage, 5 major_outage. {REFRESHED}"
        );
        family(
            &mut enc,
            "upstream_page_status_code",
            &help_page,
            MetricType::Gauge,
            fresh.iter(),
            |m, (l, s)| {
                gauge(
                    m,
                    &labels([("target", l.target.name())], &l.target),
                    s.page.code() as f64,
                )
            },
        )?;
        family(
            &mut enc,
            "upstream_component_status_code",
            "Component status on the same scale as upstream_page_status_code.",
            MetricType::Gauge,
            fresh.iter(),
            |m, (l, s)| {
                for c in &s.components {
                    gauge(
                        m,
                        &labels(
                            [
                                ("target", l.target.name()),
                                ("component_id", &c.id),
                                ("component", &c.name),
                                ("group", &c.group),
                            ],
                            &l.target,
                        ),
                        c.status.code() as f64,
                    )?;
                }
                Ok(())
            },
        )?;
        family(
            &mut enc,
            "upstream_incidents_open",
            "Open incidents by impact.",
            MetricType::Gauge,
            fresh.iter(),
            |m, (l, s)| {
                for impact in Impact::ALL {
                    let n = s.incidents.iter().filter(|i| i.impact == impact).count();
                    gauge(
                        m,
                        &labels(
                            [("target", l.target.name()), ("impact", impact.as_str())],
                            &l.target,
                        ),
                        n as f64,
                    )?;
                }
                Ok(())
            },
        )?;
        family(
            &mut enc,
            "upstream_incident",
            "One series per open incident; gone when it is resolved.",
            MetricType::Info,
            fresh.iter(),
            |m, (l, s)| {
                for i in &s.incidents {
                    m.encode_info(&labels(
                        [
                            ("target", l.target.name()),
                            ("incident_id", &i.id),
                            ("name", &i.name),
                            ("impact", i.impact.as_str()),
                            ("status", &i.status),
                        ],
                        &l.target,
                    ))?;
                }
                Ok(())
            },
        )?;
        family(
            &mut enc,
            "upstream_incident_started_timestamp_seconds",
            "Unix time an open incident started.",
            MetricType::Gauge,
            fresh.iter(),
            |m, (l, s)| {
                for i in &s.incidents {
                    if let Some(started) = i.started {
                        gauge(
                            m,
                            &labels(
                                [("target", l.target.name()), ("incident_id", &i.id)],
                                &l.target,
                            ),
                            started,
                        )?;
                    }
                }
                Ok(())
            },
        )?;
        family(
            &mut enc,
            "upstream_maintenances_active",
            "Maintenances the provider says are in progress.",
            MetricType::Gauge,
            fresh.iter(),
            |m, (l, s)| {
                gauge(
                    m,
                    &labels([("target", l.target.name())], &l.target),
                    f64::from(s.maintenances_active),
                )
            },
        )?;
        family(
            &mut enc,
            "upstream_maintenance_next_start_timestamp_seconds",
            "Unix time the earliest scheduled maintenance starts; absent when none is scheduled.",
            MetricType::Gauge,
            fresh.iter(),
            |m, (l, s)| match s.next_maintenance_start {
                Some(start) => gauge(m, &labels([("target", l.target.name())], &l.target), start),
                None => Ok(()),
            },
        )?;
        family(
            &mut enc,
            "upstream_unknown_values",
            "Values the exporter did not recognise (mapped to 0 unknown), by field.",
            MetricType::Counter,
            all(),
            |m, l| {
                for (field, n) in l.target.unknown_values() {
                    counter(
                        m,
                        &labels(
                            [("target", l.target.name()), ("field", field.as_str())],
                            &l.target,
                        ),
                        n,
                    )?;
                }
                Ok(())
            },
        )?;

        // `http` prober: TLS expiry of the last success, until stale.
        let tls: Vec<(&Loaded, HttpSnapshot)> = loaded
            .iter()
            .filter(|l| l.target.is_fresh(&l.record, now))
            .filter_map(|l| l.record.http.map(|h| (l, h)))
            .collect();
        family(
            &mut enc,
            "upstream_tls_cert_not_after_timestamp_seconds",
            "Unix time the server's leaf certificate expires (http prober, HTTPS).",
            MetricType::Gauge,
            tls.iter(),
            |m, (l, h)| match h.tls_not_after {
                Some(t) => gauge(m, &labels([("target", l.target.name())], &l.target), t),
                None => Ok(()),
            },
        )?;
        family(
            &mut enc,
            "upstream_tls_chain_earliest_not_after_timestamp_seconds",
            "Unix time the earliest-expiring certificate of the chain the server presented expires (http prober, HTTPS).",
            MetricType::Gauge,
            tls.iter(),
            |m, (l, h)| match h.tls_chain_earliest_not_after {
                Some(t) => gauge(m, &labels([("target", l.target.name())], &l.target), t),
                None => Ok(()),
            },
        )?;

        // `json` prober: the user's metric families, across targets.
        let json: Vec<(&Loaded, &JsonConfig, Arc<JsonSnapshot>)> = loaded
            .iter()
            .filter(|l| l.target.is_fresh(&l.record, now))
            .filter_map(|l| match (&l.target.config.prober, &l.record.json) {
                (ProberConfig::Json(cfg), Some(snap)) => Some((l, cfg, snap.clone())),
                _ => None,
            })
            .collect();
        json_families(&mut enc, &json)
    }
}

/// Encode a counter of any non-negative value; whole numbers are written
/// as integers, like [`gauge`].
fn float_counter<S: EncodeLabelSet>(
    m: &mut MetricEncoder,
    labels: &S,
    v: f64,
) -> Result<(), std::fmt::Error> {
    if v.fract() == 0.0 && (0.0..9.0e15).contains(&v) {
        counter(m, labels, v as u64)
    } else {
        m.encode_family(labels)?
            .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(&v, None)
    }
}

/// A `json` rule's series: `target`, the rule's labels, then the target's
/// static labels.
struct RuleLabels<'a> {
    target: &'a str,
    rule: &'a [(String, LabelSource)],
    values: &'a [String],
    extra: &'a [(String, String)],
}

impl EncodeLabelSet for RuleLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("target", self.target).encode(encoder.encode_label())?;
        for ((name, _), value) in self.rule.iter().zip(self.values) {
            (name.as_str(), value.as_str()).encode(encoder.encode_label())?;
        }
        for (k, v) in self.extra {
            (k.as_str(), v.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// One family of `json` rules: its first rule (name, help, type) and every
/// (target, rule, samples) writing to it.
type JsonFamily<'a> = (
    &'a JsonRule,
    Vec<(&'a Loaded, &'a JsonRule, &'a RuleSamples)>,
);

/// Every `json` family, sorted by name; rules sharing a name (in one target
/// or across targets) are one family. Config validation guarantees one
/// type per name.
fn json_families(
    enc: &mut DescriptorEncoder,
    targets: &[(&Loaded, &JsonConfig, Arc<JsonSnapshot>)],
) -> Result<(), std::fmt::Error> {
    let mut families: std::collections::BTreeMap<&str, JsonFamily<'_>> =
        std::collections::BTreeMap::new();
    for (l, cfg, snap) in targets {
        for (rule, samples) in cfg.rules.iter().zip(&snap.rules) {
            families
                .entry(rule.family())
                .or_insert_with(|| (rule, Vec::new()))
                .1
                .push((*l, rule, samples));
        }
    }
    for (name, (first, members)) in families {
        let kind = match first.kind {
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Counter => MetricType::Counter,
        };
        family(
            enc,
            name,
            &first.help,
            kind,
            members,
            |m, (l, rule, samples)| {
                for sample in &samples.samples {
                    let labels = RuleLabels {
                        target: l.target.name(),
                        rule: &rule.labels,
                        values: &sample.labels,
                        extra: &l.target.config.labels,
                    };
                    match rule.kind {
                        MetricKind::Gauge => gauge(m, &labels, sample.value)?,
                        MetricKind::Counter => float_counter(m, &labels, sample.value)?,
                    }
                }
                Ok(())
            },
        )?;
    }
    Ok(())
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
