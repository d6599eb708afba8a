//! `/metrics`: a scrape-time collector over the latest per-target snapshots.
//!
//! Nothing is copied into a registry when a probe ends: at scrape time the
//! current target set is walked, each target's latest immutable record
//! loaded, and the per-target families written by [`crate::exposition`]
//! as units that [`crate::render`] spreads over every core. Removed
//! targets are simply absent from the set, so their series vanish at once.
//! The exporter's own few families go through a `prometheus-client`
//! registry, whose OpenMetrics text becomes 0.0.4 in one pass
//! ([`finish_exposition`]).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::ProberConfig;
use crate::exposition::{Kind, LabelArena, Labels, Value, Writer};
use crate::probe::json::{JsonRule, JsonSnapshot, MetricKind, RuleSamples};
use crate::probe::{HttpSnapshot, Impact, Reason, Severity, StatusSnapshot};
use crate::shard::Shard;
use crate::state::{DURATION_BUCKET_LABELS, ProbeRecord, SharedTargets, TargetState, unix_now};

/// A family's HELP text with SPEC's note that probes, not scrapes, refresh
/// its values: one wording for every such family.
macro_rules! refreshed {
    ($help:literal) => {
        concat!($help, " Refreshed every probe interval, not on scrape.")
    };
}

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
    /// (Which one a scrape gets: [`crate::negotiate::format`].)
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// A file a reload reads: each keeps its own verdict, so that a good load
/// of one does not hide that the other was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFile {
    /// `--config.file`.
    Exporter,
    /// `--web.config.file`.
    Web,
}

impl ConfigFile {
    fn bit(self) -> u8 {
        match self {
            ConfigFile::Exporter => 1,
            ConfigFile::Web => 2,
        }
    }
}

/// The exporter's own state that appears in metrics.
#[derive(Debug)]
pub struct ExporterStatus {
    /// [`ConfigFile::bit`]s of the files whose last load failed (or, for
    /// the exporter's config, has not happened yet).
    failing: AtomicU8,
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
            failing: AtomicU8::new(ConfigFile::Exporter.bit()),
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

    /// Record a (re)load attempt of `file`: the reload counts as successful
    /// only while every file's last load succeeded, and only such a success
    /// takes the time (a good web config reloaded beside a rejected
    /// exporter config moves neither).
    pub fn record_reload(&self, file: ConfigFile, ok: bool) {
        let bit = file.bit();
        if ok {
            let before = self.failing.fetch_and(!bit, Ordering::AcqRel);
            if before & !bit == 0 {
                self.reload_success_at
                    .store(unix_now().to_bits(), Ordering::Relaxed);
            }
        } else {
            self.failing.fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// Whether the last load of every config file succeeded.
    pub fn reload_successful(&self) -> bool {
        self.failing.load(Ordering::Acquire) == 0
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
    /// The status families' compressed pieces of the last gzip scrape
    /// (see [`Exposition::cache_key`]).
    pieces: crate::render::PieceCache,
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
            pieces: crate::render::PieceCache::default(),
        }
    }

    /// Compressed pieces kept for the next gzip scrape, and their bytes.
    pub fn kept_pieces(&self) -> (usize, usize) {
        self.pieces.size()
    }

    /// Render every family in `format` into one buffer.
    pub fn render_bytes(&self, format: Format) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_to(format, false, |chunk| {
            out.extend_from_slice(&chunk);
            true
        });
        out
    }

    /// Render every family in `format`, gzip-compressed if `gzip`, on
    /// every core (see [`crate::render`]), handing `sink` chunks as they
    /// are ready: the `/metrics` response streams them, so a scrape of
    /// 10,000 targets never holds its whole body. Stops early if `sink`
    /// returns false. `sink` is dropped as soon as the last chunk is out
    /// (a channel's sender ends the response then), before the scrape's
    /// per-target copies are freed.
    pub fn render_to(&self, format: Format, gzip: bool, sink: impl FnMut(Vec<u8>) -> bool) {
        self.render_on(format, gzip, None, sink);
    }

    /// [`Metrics::render_to`] on `workers` render threads (0: all on the
    /// calling thread), or one per core if `None`. One thread makes the
    /// work the same from run to run, which `bench/render-instructions`
    /// counts.
    pub fn render_on(
        &self,
        format: Format,
        gzip: bool,
        workers: Option<usize>,
        mut sink: impl FnMut(Vec<u8>) -> bool,
    ) {
        let mut own = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut own, &self.registry).is_err() {
            // Encoding into a String only fails on a formatting bug; serve what we have.
            tracing::error!("encoding /metrics failed");
        }
        let own = finish_exposition(&own, format);
        let head = own.strip_suffix("# EOF\n").unwrap_or(&own);
        let tail: &[u8] = match format {
            Format::OpenMetrics => b"# EOF\n",
            Format::Text => b"",
        };
        let set = self.targets.load();
        let targets = scrape_order(&set.targets);
        let arena = LabelArena::copy(targets.iter().map(|t| &t.labels));
        let loaded = load(&targets, &arena, unix_now());
        let exposition = Exposition::new(format, &loaded);
        let options = crate::render::Options {
            gzip,
            workers: workers.unwrap_or_else(|| crate::render::workers_for(exposition.units.len())),
            cache: Some(&self.pieces),
        };
        crate::render::render(&exposition, head.as_bytes(), tail, options, &mut sink);
        drop(sink);
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

/// One target with its record loaded once per scrape, and what most
/// families write copied out of it (see [`LabelArena`]): the families read
/// these side by side instead of going back to each target's state.
struct Loaded<'a> {
    target: &'a TargetState,
    /// [`TargetState::id`], for keys read without going back to the target.
    id: u64,
    /// The target's labels in the scrape's [`LabelArena`].
    labels: Labels<'a>,
    /// The record's scalars, copied.
    last: LastProbe,
    /// The last good answer while it is fresh, copied or shared.
    answer: Answer,
    /// `upstream_unknown_values_total`, read with the counters.
    unknown_values: Box<[(String, u64)]>,
    /// The target's counters as one consistent reading (see [`Counters`]).
    counters: Counters,
    /// The target's publish count if everything above that a probe
    /// publishes was read from one whole publish, else an odd number (see
    /// [`TargetState::publishes_unchanged_since`]). The probe families'
    /// bytes depend on nothing else, so they may be kept under it. The
    /// duration histogram is read later, as its family is written; a unit
    /// is kept only if the count is still this one after that read
    /// ([`Exposition::still_current`]).
    publishes: u64,
}

/// What a target's last good answer says, while it is fresh (not stale).
enum Answer {
    /// Stale, or no success yet.
    None,
    /// A status page: its scalars copied, the rest shared.
    Page(PageFacts, Arc<StatusSnapshot>),
    /// The `http` prober's TLS expiry (seen by a success or a failure,
    /// while that is fresh).
    Http(HttpSnapshot),
    /// The `json` prober's samples.
    Json(Arc<JsonSnapshot>),
}

impl Answer {
    /// `fresh`: the last success is; `tls_fresh`: the TLS expiry last seen is.
    fn of(record: &ProbeRecord, fresh: bool, tls_fresh: bool) -> Answer {
        match (&record.status, record.http, &record.json) {
            (Some(status), _, _) if fresh => {
                Answer::Page(PageFacts::of(status), Arc::clone(status))
            }
            (_, Some(http), _) if tls_fresh => Answer::Http(http),
            (_, _, Some(json)) if fresh => Answer::Json(Arc::clone(json)),
            _ => Answer::None,
        }
    }
}

/// `upstream_probes_total` and `upstream_probe_failures_total` of one
/// target, read once when the scrape starts. Families render in parallel
/// and a probe may end mid-scrape, so reading the live atomics family by
/// family could show a failure that `probes_total` does not count yet.
struct Counters {
    probes: u64,
    /// Failures by [`Reason::index`]; None while the target never failed,
    /// so the common case costs no allocation.
    failures: Option<Box<[u64; Reason::ALL.len()]>>,
}

impl Counters {
    /// Failures are read before probes, pairing with
    /// [`crate::runner::publish`], which counts the probe before its
    /// failure (Release): whatever failure is seen, its probe is too.
    fn read(target: &TargetState) -> Counters {
        let failures: [u64; Reason::ALL.len()] =
            std::array::from_fn(|i| target.failures[i].load(Ordering::Acquire));
        let probes = target.probes_total.load(Ordering::Acquire);
        Counters {
            probes,
            failures: failures.iter().any(|&n| n > 0).then(|| Box::new(failures)),
        }
    }
}

/// The scalars of a [`ProbeRecord`] that the per-target families write,
/// as they are written (a time that never happened is 0).
#[derive(Debug, Clone, Copy)]
struct LastProbe {
    /// False before the first probe ended: the families stay silent.
    ran: bool,
    success: bool,
    http_status: u16,
    run_at: f64,
    success_at: f64,
}

impl LastProbe {
    fn of(r: &ProbeRecord) -> LastProbe {
        LastProbe {
            ran: r.last_run.is_some(),
            success: r.success,
            http_status: r.http_status,
            run_at: r.last_run.unwrap_or(0.0),
            success_at: r.last_success.unwrap_or(0.0),
        }
    }
}

/// The scalars of a [`StatusSnapshot`] that the per-target families write.
#[derive(Debug, Clone, Copy)]
struct PageFacts {
    page: Severity,
    /// Open incidents by [`Impact::ALL`]'s order.
    open_incidents: [u32; Impact::ALL.len()],
    maintenances_active: u32,
    next_maintenance_start: Option<f64>,
    /// [`StatusSnapshot::published_id`], for keys read without going back
    /// to the snapshot.
    published_id: u64,
}

impl PageFacts {
    fn of(s: &StatusSnapshot) -> PageFacts {
        let mut open_incidents = [0u32; Impact::ALL.len()];
        for i in &s.incidents {
            if let Some(k) = Impact::ALL.iter().position(|&impact| impact == i.impact) {
                open_incidents[k] = open_incidents[k].saturating_add(1);
            }
        }
        PageFacts {
            page: s.page,
            open_incidents,
            maintenances_active: s.maintenances_active,
            next_maintenance_start: s.next_maintenance_start,
            published_id: s.published_id(),
        }
    }
}

impl<'a> Loaded<'a> {
    fn labels(&self) -> Labels<'a> {
        self.labels
    }

    /// The fresh status snapshot, with its copied scalars.
    fn page(&self) -> Option<(&PageFacts, &StatusSnapshot)> {
        match &self.answer {
            Answer::Page(facts, snapshot) => Some((facts, snapshot)),
            _ => None,
        }
    }

    fn ran(&self) -> bool {
        self.last.ran
    }
}

/// The order a scrape lists targets in: by interval, then by where in it
/// their probe slots fall, then as configured. The targets that probed
/// since the last scrape are then side by side in every family, so most
/// units of the probe families are the same as last time and a gzip
/// scrape reuses their kept pieces (see [`Exposition::cache_key`]). Any
/// order of a family's samples is valid exposition.
fn scrape_order(targets: &[Arc<TargetState>]) -> Vec<&TargetState> {
    let mut ordered: Vec<&TargetState> = targets.iter().map(|t| &**t).collect();
    // Each key read once: a phase set by the runner mid-sort must not make
    // the order inconsistent (the standard sorts may panic on that).
    // Stable: targets not scheduled yet (phase 0) keep the config's order.
    ordered.sort_by_cached_key(|t| (t.config.interval, t.phase()));
    ordered
}

/// Every one of `targets` with its record, its labels in `arena` (copied
/// from the same `targets`, in the same order).
fn load<'a>(targets: &[&'a TargetState], arena: &'a LabelArena, now: f64) -> Vec<Loaded<'a>> {
    targets
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let before = t.publishes_before_reading();
            let record = t.record();
            let fresh = t.is_fresh(&record, now);
            let counters = Counters::read(t);
            let unknown_values = t.unknown_values().into();
            Loaded {
                target: t,
                id: t.id,
                labels: arena.get(i),
                last: LastProbe::of(&record),
                answer: Answer::of(&record, fresh, t.tls_is_fresh(&record, now)),
                unknown_values,
                counters,
                publishes: if t.publishes_unchanged_since(before) {
                    before
                } else {
                    1
                },
            }
        })
        .collect()
}

/// Lines per unit of rendering work (see [`crate::render`]): ~90 KB.
const UNIT_LINES: usize = 1024;

/// How one item (a target, or a `json` family's member) writes its
/// samples of a family.
type WriteItem<'a> = Box<dyn Fn(&mut Writer, usize) + Sync + 'a>;

/// One per-target metric family: its descriptor and its items.
struct FamilyJob<'a> {
    name: &'a str,
    help: &'a str,
    kind: Kind,
    items: usize,
    /// About how many lines an item writes, to size units of work.
    lines_per_item: usize,
    write: WriteItem<'a>,
    /// What an item's bytes depend on besides its target's labels, if a
    /// unit's compressed piece may be kept while that stays the same (see
    /// [`Exposition::cache_key`]).
    kept_by: KeptBy,
}

/// What a family's per-target bytes depend on, besides the target itself
/// (its labels and config, which a reload changes only by making a new
/// target with a new [`TargetState::id`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum KeptBy {
    /// Something else too (the clock: a `json` or TLS answer going
    /// stale): never kept.
    Nothing,
    /// Nothing else: `upstream_target_info`.
    Target,
    /// What the target's probes publish: record, counters, histogram,
    /// unknown values, as the scrape read them ([`Loaded::publishes`]).
    Probe,
    /// The target's fresh status snapshot ([`StatusSnapshot::published_id`]).
    Snapshot,
}

impl KeptBy {
    /// The version of what `l`'s bytes depend on, or None if they may not
    /// be kept (read mid-publish, or a snapshot without a number).
    fn version(self, l: &Loaded<'_>) -> Option<u64> {
        match self {
            KeptBy::Nothing => None,
            KeptBy::Target => Some(0),
            KeptBy::Probe => Some(l.publishes).filter(|n| n.is_multiple_of(2)),
            KeptBy::Snapshot => match l.page() {
                Some((facts, _)) => Some(facts.published_id).filter(|&id| id != 0),
                None => Some(0),
            },
        }
    }
}

/// A family with one item per target.
fn per_target<'a>(
    loaded: &'a [Loaded<'a>],
    (name, help, kind): (&'static str, &'static str, Kind),
    lines_per_item: usize,
    write: impl Fn(&mut Writer, &Loaded<'a>) + Sync + 'a,
) -> FamilyJob<'a> {
    FamilyJob {
        name,
        help,
        kind,
        items: loaded.len(),
        lines_per_item,
        write: Box::new(move |w, i| write(w, &loaded[i])),
        kept_by: KeptBy::Nothing,
    }
}

/// `job`, kept by `kept_by`.
fn kept_by(kept_by: KeptBy) -> impl Fn(FamilyJob<'_>) -> FamilyJob<'_> {
    move |job| FamilyJob { kept_by, ..job }
}

/// The per-target part of `/metrics`, family by family (the formats
/// require a family's samples to be contiguous), cut into units that
/// [`crate::render`] renders on every core.
struct Exposition<'a> {
    format: Format,
    loaded: &'a [Loaded<'a>],
    jobs: Vec<FamilyJob<'a>>,
    /// (job, first item, end item) of each unit, in output order.
    units: Vec<(u32, u32, u32)>,
}

impl<'a> Exposition<'a> {
    fn new(format: Format, loaded: &'a [Loaded<'a>]) -> Exposition<'a> {
        let mut jobs = target_families(loaded);
        jobs.extend(status_families(loaded));
        jobs.push(kept_by(KeptBy::Probe)(per_target(
            loaded,
            (
                "upstream_unknown_values",
                "Values the exporter did not recognise (mapped to 0 unknown), by field.",
                Kind::Counter,
            ),
            1,
            |w, l| {
                for (field, n) in l.unknown_values.iter() {
                    // Field names are a prober's words or a `json` rule's
                    // metric name: nothing to escape.
                    let labels = [("field", field.as_str())];
                    w.sample_plain(l.labels(), &labels, Value::from(*n));
                }
            },
        )));
        jobs.extend(tls_families(loaded));
        jobs.extend(json_families(loaded));
        let mut units = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            let per_unit = (UNIT_LINES / job.lines_per_item.max(1)).max(1);
            let mut start = 0;
            while start < job.items {
                let end = (start + per_unit).min(job.items);
                units.push((fit_u32(j), fit_u32(start), fit_u32(end)));
                start = end;
            }
        }
        Exposition {
            format,
            loaded,
            jobs,
            units,
        }
    }
}

fn fit_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl crate::render::Source for Exposition<'_> {
    fn units(&self) -> usize {
        self.units.len()
    }

    fn group(&self, unit: usize) -> usize {
        self.units[unit].0 as usize
    }

    fn preamble(&self, group: usize, out: &mut Vec<u8>) {
        let job = &self.jobs[group];
        Writer::descriptor(self.format, job.name, job.help, job.kind, out);
    }

    fn render(&self, unit: usize, out: &mut Vec<u8>) {
        let (j, start, end) = self.units[unit];
        let job = &self.jobs[j as usize];
        let mut w = Writer::with_buffer(self.format, std::mem::take(out));
        w.resume(job.name, job.kind);
        for item in start as usize..end as usize {
            (job.write)(&mut w, item);
        }
        *out = w.finish();
    }

    /// A unit of a family kept by something ([`KeptBy`]) is written from
    /// its targets and that something alone: the family, the format and,
    /// per target, the target's id (a changed target is a new one) and the
    /// version of what the family shows of it (its fresh snapshot's number,
    /// or its publish count) say all there is to say about its bytes.
    /// Those pairs (16 bytes a target, ~2.6 MB for the sixteen families at
    /// 10,000 targets if kept as they are) go into the key as two 64-bit
    /// digests, after the unit's range. Each digest starts from a SipHash
    /// of the family's name and the format, with its own seed, and takes
    /// in each value through [`mix`]; SipHash for every value cost ~40 % of
    /// a gzip scrape whose pieces were all kept. The values are the
    /// process's own counters, not chosen by anyone, so a chance agreement
    /// of two units is what is left: about 1 in 2^128.
    fn cache_key(&self, unit: usize, key: &mut Vec<u64>) -> bool {
        use std::hash::Hasher as _;
        let (j, start, end) = self.units[unit];
        let job = &self.jobs[j as usize];
        if job.kept_by == KeptBy::Nothing {
            return false;
        }
        let digests = [0u64, 1].map(|seed| {
            let mut h = std::hash::DefaultHasher::new();
            h.write_u64(seed);
            h.write(job.name.as_bytes());
            h.write_u8(self.format as u8);
            h
        });
        let mut digests = digests.map(|h| h.finish());
        for l in &self.loaded[start as usize..end as usize] {
            let Some(version) = job.kept_by.version(l) else {
                return false;
            };
            for d in &mut digests {
                *d = mix(mix(*d ^ l.id) ^ version);
            }
        }
        key.extend([u64::from(start), u64::from(end)]);
        key.extend(digests);
        true
    }

    /// The duration histogram is read as its family is written, after the
    /// key was taken from the scrape's rows: if one of the unit's targets
    /// began a publish meanwhile, what was read may be part of it (a
    /// bucket counted, the sum not yet), so the piece is not kept. The
    /// other probe families write only from the rows, but the check is
    /// the same for all of them.
    fn still_current(&self, unit: usize) -> bool {
        let (j, start, end) = self.units[unit];
        if self.jobs[j as usize].kept_by != KeptBy::Probe {
            return true;
        }
        self.loaded[start as usize..end as usize]
            .iter()
            .all(|l| l.target.publishes_unchanged_since(l.publishes))
    }
}

/// MurmurHash3's 64-bit finaliser: a bijection in which every bit of the
/// input changes each bit of the output with probability about 1/2.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// What every target has: facts, probe outcome, counters, timings.
fn target_families<'a>(loaded: &'a [Loaded<'a>]) -> Vec<FamilyJob<'a>> {
    let last = |get: fn(&LastProbe) -> Value| {
        move |w: &mut Writer, l: &Loaded<'_>| {
            if l.ran() {
                w.sample(l.labels(), &[], get(&l.last));
            }
        }
    };
    // The target's facts change only with the target; the rest with
    // each probe it publishes.
    let info = kept_by(KeptBy::Target)(per_target(
        loaded,
        (
            "upstream_target",
            "Static facts about a configured target.",
            Kind::Info,
        ),
        1,
        |w, l| {
            let t = l.target;
            let labels = [
                ("prober", t.config.kind().as_str()),
                ("url", t.display_url.as_str()),
            ];
            if t.display_url_plain {
                w.sample_plain(l.labels(), &labels, Value::Int(1));
            } else {
                w.sample(l.labels(), &labels, Value::Int(1));
            }
        },
    ));
    let probe_families = vec![
        per_target(
            loaded,
            (
                "upstream_probe_success",
                refreshed!("1 if the target's last probe succeeded."),
                Kind::Gauge,
            ),
            1,
            last(|r| Value::Int(i64::from(r.success))),
        ),
        per_target(
            loaded,
            (
                "upstream_probe_duration_seconds",
                "Wall time of each probe, retries included.",
                Kind::Histogram,
            ),
            DURATION_BUCKET_LABELS.len() + 2,
            |w, l| {
                let (sum, count, buckets) = l.target.duration.read();
                w.histogram(l.labels(), &[], &buckets, sum, count);
            },
        ),
        per_target(
            loaded,
            ("upstream_probes", "Probes run.", Kind::Counter),
            1,
            |w, l| {
                w.sample(l.labels(), &[], Value::from(l.counters.probes));
            },
        ),
        per_target(
            loaded,
            (
                "upstream_probe_failures",
                "Failed probes by reason (timeout, dns, connect, tls, http_status, redirect, too_large, decode, schema, rate_limited, expectation, other); a reason appears once it has occurred.",
                Kind::Counter,
            ),
            1,
            |w, l| {
                let Some(failures) = &l.counters.failures else {
                    return;
                };
                for reason in Reason::ALL {
                    let n = failures[reason.index()];
                    if n > 0 {
                        let labels = [("reason", reason.as_str())];
                        w.sample_plain(l.labels(), &labels, Value::from(n));
                    }
                }
            },
        ),
        per_target(
            loaded,
            (
                "upstream_probe_last_run_timestamp_seconds",
                "Unix time the last probe ended.",
                Kind::Gauge,
            ),
            1,
            last(|r| Value::number(r.run_at)),
        ),
        per_target(
            loaded,
            (
                "upstream_probe_last_success_timestamp_seconds",
                "Unix time of the last successful probe, 0 if none yet; the age of the status series.",
                Kind::Gauge,
            ),
            1,
            last(|r| Value::number(r.success_at)),
        ),
        per_target(
            loaded,
            (
                "upstream_http_status_code",
                refreshed!("HTTP status of the last answer, 0 if none arrived."),
                Kind::Gauge,
            ),
            1,
            last(|r| Value::Int(i64::from(r.http_status))),
        ),
    ];
    std::iter::once(info)
        .chain(probe_families.into_iter().map(kept_by(KeptBy::Probe)))
        .collect()
}

/// Status-page families: only targets with a fresh (not stale) snapshot.
fn status_families<'a>(loaded: &'a [Loaded<'a>]) -> Vec<FamilyJob<'a>> {
    // Scalars come from the facts copied at load (see `Loaded`), lists from
    // the shared snapshot.
    let fresh = |write: fn(&mut Writer, Labels<'_>, &PageFacts, &StatusSnapshot)| {
        move |w: &mut Writer, l: &Loaded<'_>| {
            if let Some((facts, s)) = l.page() {
                write(w, l.labels(), facts, s);
            }
        }
    };
    // Lines per target of the lists, on average, to size units.
    let with_status = loaded.iter().filter(|l| l.page().is_some()).count().max(1);
    let average = |count: fn(&StatusSnapshot) -> usize| {
        let total: usize = loaded
            .iter()
            .filter_map(|l| l.page().map(|(_, s)| count(s)))
            .sum();
        total.div_ceil(with_status).max(1)
    };
    let jobs = vec![
        per_target(
            loaded,
            ("upstream_page_status_code", HELP_PAGE_STATUS, Kind::Gauge),
            1,
            fresh(|w, t, p, _| w.sample(t, &[], Value::Int(p.page.code()))),
        ),
        per_target(
            loaded,
            (
                "upstream_component_status_code",
                refreshed!("Component status on the same scale as upstream_page_status_code."),
                Kind::Gauge,
            ),
            average(|s| s.component_count()),
            fresh(|w, t, _, s| {
                for c in s.each_component() {
                    let labels = [
                        ("component_id", c.id()),
                        ("component", c.name()),
                        ("group", c.group()),
                    ];
                    let value = Value::Int(c.status.code());
                    if c.is_plain() {
                        w.sample_plain(t, &labels, value);
                    } else {
                        w.sample(t, &labels, value);
                    }
                }
            }),
        ),
        per_target(
            loaded,
            (
                "upstream_incidents_open",
                refreshed!("Open incidents by impact."),
                Kind::Gauge,
            ),
            Impact::ALL.len(),
            fresh(|w, t, p, _| {
                for (impact, n) in Impact::ALL.iter().zip(p.open_incidents) {
                    let labels = [("impact", impact.as_str())];
                    w.sample_plain(t, &labels, Value::from(u64::from(n)));
                }
            }),
        ),
        per_target(
            loaded,
            (
                "upstream_incident",
                refreshed!("One series per open incident; gone when it is resolved."),
                Kind::Info,
            ),
            average(|s| s.incidents.len()),
            fresh(|w, t, _, s| {
                for i in &s.incidents {
                    let labels = [
                        ("incident_id", i.id.as_str()),
                        ("name", i.name.as_str()),
                        ("impact", i.impact.as_str()),
                        ("status", i.status.as_str()),
                    ];
                    w.sample(t, &labels, Value::Int(1));
                }
            }),
        ),
        per_target(
            loaded,
            (
                "upstream_incident_started_timestamp_seconds",
                refreshed!("Unix time an open incident started."),
                Kind::Gauge,
            ),
            average(|s| s.incidents.len()),
            fresh(|w, t, _, s| {
                for i in &s.incidents {
                    if let Some(started) = i.started {
                        let labels = [("incident_id", i.id.as_str())];
                        w.sample(t, &labels, Value::number(started));
                    }
                }
            }),
        ),
        per_target(
            loaded,
            (
                "upstream_maintenances_active",
                refreshed!("Maintenances the provider says are in progress."),
                Kind::Gauge,
            ),
            1,
            fresh(|w, t, p, _| w.sample(t, &[], Value::Int(i64::from(p.maintenances_active)))),
        ),
        per_target(
            loaded,
            (
                "upstream_maintenance_next_start_timestamp_seconds",
                refreshed!(
                    "Unix time the earliest scheduled maintenance starts; absent when none is scheduled."
                ),
                Kind::Gauge,
            ),
            1,
            fresh(|w, t, p, _| {
                if let Some(start) = p.next_maintenance_start {
                    w.sample(t, &[], Value::number(start));
                }
            }),
        ),
    ];
    jobs.into_iter()
        .map(|job| FamilyJob {
            kept_by: KeptBy::Snapshot,
            ..job
        })
        .collect()
}

const HELP_PAGE_STATUS: &str = refreshed!(
    "Overall page status: 0 unknown, 1 operational, 2 maintenance, 3 degraded, 4 partial_outage, 5 major_outage."
);

/// `http` prober: TLS expiry last seen (by a success, or a failure after
/// the handshake), until stale.
fn tls_families<'a>(loaded: &'a [Loaded<'a>]) -> Vec<FamilyJob<'a>> {
    type Expiry = fn(&HttpSnapshot) -> Option<f64>;
    let families: [(&'static str, &'static str, Expiry); 2] = [
        (
            "upstream_tls_cert_not_after_timestamp_seconds",
            refreshed!("Unix time the server's leaf certificate expires (http prober, HTTPS)."),
            |h| h.tls_not_after,
        ),
        (
            "upstream_tls_chain_earliest_not_after_timestamp_seconds",
            refreshed!(
                "Unix time the earliest-expiring certificate of the chain the server presented expires (http prober, HTTPS)."
            ),
            |h| h.tls_chain_earliest_not_after,
        ),
    ];
    families
        .into_iter()
        .map(|(name, help, field)| {
            per_target(loaded, (name, help, Kind::Gauge), 1, move |w, l| {
                let Answer::Http(http) = &l.answer else {
                    return;
                };
                let expiry = field(http);
                if let Some(t) = expiry {
                    w.sample(l.labels(), &[], Value::number(t));
                }
            })
        })
        .collect()
}

/// One member of a `json` family: a target, one of its rules writing to
/// the family, and that rule's samples.
type JsonMember<'a> = (&'a Loaded<'a>, &'a JsonRule, &'a RuleSamples);

/// `json` prober: the user's metric families, across targets, sorted by
/// name; rules sharing a name (in one target or across targets) are one
/// family, whose items are its members. Config validation guarantees one
/// type per name.
fn json_families<'a>(loaded: &'a [Loaded<'a>]) -> Vec<FamilyJob<'a>> {
    let mut families: std::collections::BTreeMap<&str, (&JsonRule, Vec<JsonMember<'a>>)> =
        std::collections::BTreeMap::new();
    for l in loaded {
        let Answer::Json(snap) = &l.answer else {
            continue;
        };
        let ProberConfig::Json(cfg) = &l.target.config.prober else {
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
    families
        .into_iter()
        .map(|(name, (first, members))| {
            let kind = match first.kind {
                MetricKind::Gauge => Kind::Gauge,
                MetricKind::Counter => Kind::Counter,
            };
            let samples: usize = members.iter().map(|(_, _, s)| s.samples.len()).sum();
            FamilyJob {
                name,
                help: &first.help,
                kind,
                items: members.len(),
                lines_per_item: samples.div_ceil(members.len().max(1)).max(1),
                write: Box::new(move |w, i| {
                    let (l, rule, samples) = members[i];
                    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(rule.labels.len());
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
                }),
                kept_by: KeptBy::Nothing,
            }
        })
        .collect()
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
            "1 if the last load or reload of the config file and of the web config file (if any) both succeeded.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&i64::from(self.status.reload_successful()))?;
        enc.encode_descriptor(
            "upstream_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last load or reload after which the config file and the web config file were both loaded.",
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
    fn only_a_reload_of_every_file_without_failure_takes_the_time() {
        let status = ExporterStatus::default();
        status.record_reload(ConfigFile::Exporter, true);
        let first = status.reload_success_at();
        assert!(first > 0.0 && status.reload_successful());
        std::thread::sleep(std::time::Duration::from_millis(5));
        // The exporter config rejected, the web config reloaded beside it.
        status.record_reload(ConfigFile::Exporter, false);
        status.record_reload(ConfigFile::Web, true);
        assert!(!status.reload_successful());
        assert_eq!(status.reload_success_at(), first);
        status.record_reload(ConfigFile::Exporter, true);
        assert!(status.reload_successful());
        assert!(status.reload_success_at() > first);
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

    /// The families read what `load` copied out of each target (labels,
    /// record and page scalars, TLS expiry, unknown values): every one of
    /// them must still say what the target's own state says.
    #[test]
    fn families_written_from_the_scrape_copies_match_each_target() {
        use crate::probe::{Incident, ProbeOutput, ProbeSuccess, Severity, StatusSnapshot};
        let yaml = "targets:\n\
            \x20 - name: page\n    labels: { team: \"a\\\"b\" }\n    statuspage: { url: \"http://127.0.0.1:1/s.json\" }\n\
            \x20 - name: health\n    http: { url: \"http://127.0.0.1:1/health\" }\n\
            \x20 - name: never\n    statuspage: { url: \"http://127.0.0.1:1/n.json\" }\n";
        let config =
            crate::config::Config::from_bytes(yaml.as_bytes(), std::path::Path::new("t.yaml"))
                .expect("valid config");
        let states: Vec<Arc<TargetState>> = config
            .targets
            .iter()
            .map(|t| Arc::new(TargetState::new(t.clone())))
            .collect();
        let incident = |impact| Incident {
            id: "i".into(),
            name: "n".into(),
            impact,
            status: "investigating".into(),
            started: None,
        };
        let page = StatusSnapshot {
            page: Severity::PartialOutage,
            incidents: vec![
                incident(Impact::Minor),
                incident(Impact::Critical),
                incident(Impact::Minor),
                incident(Impact::Maintenance),
            ],
            maintenances_active: 2,
            next_maintenance_start: Some(1_800_000_000.0),
            unknown_values: vec![("status", 3)],
            ..StatusSnapshot::default()
        };
        let ok = |output| {
            Ok(ProbeSuccess {
                http_status: 200,
                output,
            })
        };
        let took = std::time::Duration::from_millis(5);
        crate::runner::publish(&states[0], ok(ProbeOutput::Status(page.shared())), took);
        let tls = HttpSnapshot {
            tls_not_after: Some(1_900_000_000.0),
            tls_chain_earliest_not_after: Some(1_850_000_000.5),
        };
        crate::runner::publish(&states[1], ok(ProbeOutput::Http(tls)), took);
        let targets = SharedTargets::default();
        targets.store(Arc::new(crate::state::TargetSet { targets: states }));
        let text = Metrics::new(targets, Arc::new(ExporterStatus::default())).render(Format::Text);

        let page = "target=\"page\"";
        let team = "team=\"a\\\"b\"";
        for expected in [
            format!("upstream_page_status_code{{{page},{team}}} 4\n"),
            format!("upstream_incidents_open{{{page},impact=\"none\",{team}}} 0\n"),
            format!("upstream_incidents_open{{{page},impact=\"minor\",{team}}} 2\n"),
            format!("upstream_incidents_open{{{page},impact=\"major\",{team}}} 0\n"),
            format!("upstream_incidents_open{{{page},impact=\"critical\",{team}}} 1\n"),
            format!("upstream_incidents_open{{{page},impact=\"maintenance\",{team}}} 1\n"),
            format!("upstream_maintenances_active{{{page},{team}}} 2\n"),
            format!("upstream_maintenance_next_start_timestamp_seconds{{{page},{team}}} 1800000000\n"),
            format!("upstream_unknown_values_total{{{page},field=\"status\",{team}}} 3\n"),
            format!("upstream_probe_success{{{page},{team}}} 1\n"),
            format!("upstream_http_status_code{{{page},{team}}} 200\n"),
            "upstream_probe_success{target=\"health\"} 1\n".to_owned(),
            "upstream_tls_cert_not_after_timestamp_seconds{target=\"health\"} 1900000000\n".to_owned(),
            "upstream_tls_chain_earliest_not_after_timestamp_seconds{target=\"health\"} 1850000000.5\n"
                .to_owned(),
            "upstream_target_info{target=\"never\",prober=\"statuspage\",url=\"http://127.0.0.1:1/n.json\"} 1\n"
                .to_owned(),
        ] {
            assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
        }
        for line in text.lines().filter(|l| l.contains("target=\"page\"")) {
            assert!(line.contains(team), "static label lost: {line}");
        }
        let last_run = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("upstream_probe_last_run_timestamp_seconds{target=\"health\"} ")
            })
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a last run time for health");
        assert!(
            (last_run - crate::state::unix_now()).abs() < 60.0,
            "{last_run}"
        );
        // The target that never ran has facts, not outcomes.
        assert!(!text.contains("upstream_probe_success{target=\"never\"}"));
        assert!(!text.contains("upstream_probe_last_run_timestamp_seconds{target=\"never\"}"));
        assert!(!text.contains("upstream_page_status_code{target=\"never\"}"));
        assert!(!text.contains("upstream_tls_cert_not_after_timestamp_seconds{target=\"page\""));
    }

    fn gunzip(body: &[u8]) -> String {
        use std::io::Read as _;
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .expect("a gzip body");
        text
    }

    /// Lines of `text` that are not the exporter's own (process CPU and
    /// memory change from one scrape to the next).
    fn target_lines(text: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with("process_") && !l.starts_with("# "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// One scrape's body, inflated if `gzip`.
    fn scrape(metrics: &Metrics, gzip: bool) -> String {
        let mut body = Vec::new();
        metrics.render_to(Format::Text, gzip, |chunk| {
            body.extend_from_slice(&chunk);
            true
        });
        if gzip {
            gunzip(&body)
        } else {
            String::from_utf8(body).expect("text")
        }
    }

    /// A gzip scrape, then a plain one, whose per-target lines must be the
    /// same, line for line; the gzip scrape's text.
    fn gzip_says_what_plain_says(metrics: &Metrics, why: &str) -> String {
        let (gzip, plain) = (scrape(metrics, true), scrape(metrics, false));
        let (gzip_lines, plain_lines) = (target_lines(&gzip), target_lines(&plain));
        if let Some((g, p)) = gzip_lines
            .lines()
            .zip(plain_lines.lines())
            .find(|(g, p)| g != p)
        {
            panic!("{why}: gzip has {g:?} where plain has {p:?}");
        }
        assert_eq!(gzip_lines.len(), plain_lines.len(), "{why}");
        gzip
    }

    /// A fresh state for each target of config `yaml`.
    fn states_of(yaml: &str) -> Vec<Arc<TargetState>> {
        let config =
            crate::config::Config::from_bytes(yaml.as_bytes(), std::path::Path::new("t.yaml"))
                .expect("valid config");
        config
            .targets
            .iter()
            .map(|t| Arc::new(TargetState::new(t.clone())))
            .collect()
    }

    /// `count` never-contacted `http` targets, each with one failed probe
    /// published, and their metrics.
    #[test]
    fn rendering_on_any_number_of_threads_writes_the_same_body() {
        let (_, metrics) = failed_http_targets(3_000);
        let on = |workers: Option<usize>| {
            let mut body = Vec::new();
            metrics.render_on(Format::Text, false, workers, |chunk| {
                body.extend_from_slice(&chunk);
                true
            });
            target_lines(&String::from_utf8(body).unwrap())
        };
        let this_thread = on(Some(0));
        assert!(this_thread.matches("upstream_probe_success{").count() == 3_000);
        for workers in [Some(1), Some(3), None] {
            assert_eq!(on(workers), this_thread, "{workers:?}");
        }
    }

    fn failed_http_targets(count: usize) -> (Vec<Arc<TargetState>>, Metrics) {
        let mut yaml = String::from("targets:\n");
        for i in 0..count {
            yaml.push_str(&format!(
                "  - name: t{i:03}\n    http: {{ url: \"http://127.0.0.1:1/{i}\" }}\n"
            ));
        }
        let states = states_of(&yaml);
        for state in &states {
            fail(state);
        }
        let targets = SharedTargets::default();
        targets.store(Arc::new(crate::state::TargetSet {
            targets: states.clone(),
        }));
        (
            states,
            Metrics::new(targets, Arc::new(ExporterStatus::default())),
        )
    }

    fn fail(state: &TargetState) {
        let error = crate::probe::ProbeError::new(crate::probe::Reason::Connect, "refused");
        crate::runner::publish(state, Err(error), std::time::Duration::from_millis(2));
    }

    /// The probe families' pieces are kept while their targets publish
    /// nothing new, never while one of their targets is mid-publish, and
    /// never served once one has published since.
    #[test]
    fn gzip_scrapes_reuse_probe_pieces_only_until_their_targets_publish() {
        let (states, metrics) = failed_http_targets(300);
        gzip_says_what_plain_says(&metrics, "first scrape");
        let (pieces, _) = metrics.kept_pieces();
        // Eight probe families and the target facts, 300 targets each.
        assert!(pieces >= 9, "{pieces} pieces kept");
        gzip_says_what_plain_says(&metrics, "nothing changed");
        assert_eq!(metrics.kept_pieces().0, pieces);

        fail(&states[150]);
        let text = gzip_says_what_plain_says(&metrics, "one target probed");
        assert!(text.contains("upstream_probes_total{target=\"t150\"} 2\n"));
        assert!(
            text.contains("upstream_probe_failures_total{target=\"t150\",reason=\"connect\"} 2\n")
        );
        assert!(text.contains("upstream_probe_duration_seconds_count{target=\"t150\"} 2\n"));
        assert!(text.contains("upstream_probes_total{target=\"t151\"} 1\n"));

        // While a publish runs, the units showing its target are rendered
        // but not kept: the eight probe families' units of t010.
        {
            let _publishing = states[10].publishing();
            gzip_says_what_plain_says(&metrics, "a publish under way");
            assert_eq!(metrics.kept_pieces().0, pieces - 8);
        }
        fail(&states[10]);
        let text = gzip_says_what_plain_says(&metrics, "that publish done, another after it");
        assert!(text.contains("upstream_probes_total{target=\"t010\"} 2\n"));
        assert_eq!(metrics.kept_pieces().0, pieces);
    }

    /// Targets are listed by interval, then by where in it their slots
    /// fall, then in the config's order.
    #[test]
    fn targets_are_listed_by_interval_then_slot_phase() {
        let yaml = "targets:
  - { name: a, interval: 60s, http: { url: \"http://127.0.0.1:1/a\" } }
  - { name: b, interval: 30s, http: { url: \"http://127.0.0.1:1/b\" } }
  - { name: c, interval: 60s, http: { url: \"http://127.0.0.1:1/c\" } }
  - { name: d, interval: 60s, http: { url: \"http://127.0.0.1:1/d\" } }
  - { name: e, interval: 60s, http: { url: \"http://127.0.0.1:1/e\" } }
";
        let states = states_of(yaml);
        // a and e share a phase; d was never scheduled (phase 0).
        for (state, phase) in states.iter().zip([5_000u64, 9_000, 2_000, 0, 5_000]) {
            state.set_phase(phase);
        }
        let targets = SharedTargets::default();
        targets.store(Arc::new(crate::state::TargetSet { targets: states }));
        let text = Metrics::new(targets, Arc::new(ExporterStatus::default())).render(Format::Text);
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("upstream_target_info{target=\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(order, ["b", "d", "c", "a", "e"]);
    }

    /// A gzip scrape reuses the status families' compressed pieces of the
    /// last one while each target's snapshot stays the same, and never
    /// serves one that no longer says what the target's state says: a new
    /// snapshot, a snapshot gone stale, a target reconfigured.
    #[test]
    fn gzip_scrapes_reuse_status_pieces_only_while_nothing_they_show_changed() {
        use crate::probe::{Component, ProbeOutput, ProbeSuccess, Severity, StatusSnapshot};
        use crate::state::{ProbeRecord, TargetSet};
        let config = |team: &str| {
            let mut yaml = String::from("targets:\n");
            for i in 0..300 {
                yaml.push_str(&format!(
                    "  - name: t{i:03}\n    labels: {{ team: {team} }}\n    statuspage: {{ url: \"http://127.0.0.1:1/{i}.json\" }}\n"
                ));
            }
            crate::config::Config::from_bytes(yaml.as_bytes(), std::path::Path::new("t.yaml"))
                .expect("valid config")
        };
        let page = |component: Severity| {
            let components = (0..20)
                .map(|k| {
                    let status = if k == 7 {
                        component
                    } else {
                        Severity::Operational
                    };
                    Component::new(&format!("id{k}"), &format!("Component {k}"), "", status)
                })
                .collect();
            StatusSnapshot {
                page: component,
                components,
                ..StatusSnapshot::default()
            }
            .shared()
        };
        let publish = |state: &TargetState, snapshot| {
            let ok = Ok(ProbeSuccess {
                http_status: 200,
                output: ProbeOutput::Status(snapshot),
            });
            crate::runner::publish(state, ok, std::time::Duration::from_millis(2));
        };
        // Targets of `team`, each publishing `snapshot(i)`.
        let states = |team: &str, snapshot: &dyn Fn(usize) -> Arc<StatusSnapshot>| {
            config(team)
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let state = Arc::new(TargetState::new(t.clone()));
                    publish(&state, snapshot(i));
                    state
                })
                .collect::<Vec<_>>()
        };
        let targets = SharedTargets::default();
        targets.store(Arc::new(TargetSet {
            targets: states("a", &|_| page(Severity::Operational)),
        }));
        let metrics = Metrics::new(targets.clone(), Arc::new(ExporterStatus::default()));
        let same_as_plain = |why: &str| gzip_says_what_plain_says(&metrics, why);

        assert_eq!(metrics.kept_pieces().0, 0);
        same_as_plain("first scrape");
        let (pieces, bytes) = metrics.kept_pieces();
        assert!(pieces >= 7 && bytes > 0, "{pieces} pieces, {bytes} bytes");
        same_as_plain("nothing changed");
        assert_eq!(metrics.kept_pieces(), (pieces, bytes));

        // A new snapshot of one target.
        let set = targets.load_full();
        publish(&set.targets[150], page(Severity::MajorOutage));
        let text = same_as_plain("one page changed");
        assert!(text.contains(
            "upstream_component_status_code{target=\"t150\",component_id=\"id7\",component=\"Component 7\",group=\"\",team=\"a\"} 5\n"
        ));
        assert!(text.contains("upstream_page_status_code{target=\"t150\",team=\"a\"} 5\n"));

        // One target's snapshot gone stale: its status series go.
        let stale = ProbeRecord {
            last_success: Some(crate::state::unix_now() - 1e6),
            ..(**set.targets[20].record()).clone()
        };
        set.targets[20].publishing().store_record(stale);
        let text = same_as_plain("one page stale");
        assert!(!text.contains("upstream_page_status_code{target=\"t020\""));
        assert!(text.contains("upstream_page_status_code{target=\"t021\",team=\"a\"} 1\n"));

        // Every target reconfigured (a new static label), each publishing
        // the very snapshot it had.
        let published: Vec<_> = set
            .targets
            .iter()
            .map(|t| t.record().status.clone().expect("a snapshot"))
            .collect();
        targets.store(Arc::new(TargetSet {
            targets: states("b", &|i| Arc::clone(&published[i])),
        }));
        let text = same_as_plain("targets reconfigured");
        assert!(!text.contains("team=\"a\""));
        assert!(text.contains("upstream_page_status_code{target=\"t150\",team=\"b\"} 5\n"));
    }
}
