//! Per-target state shared by the runner (writer), `/metrics` and the web
//! pages (readers).
//!
//! A probe publishes one immutable [`ProbeRecord`] with an atomic pointer swap;
//! readers load the latest record without locks, so a scrape never waits on a
//! probe and never sees a half-written result. Counters and the duration
//! histogram are atomics that live as long as the target does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::config::TargetConfig;
use crate::exposition::TargetLabels;
use crate::http::ConditionalCache;
use crate::probe::{HttpSnapshot, JsonSnapshot, ProbeError, Reason, StatusSnapshot};

/// Upper bounds of `upstream_probe_duration_seconds` buckets.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `le` label of each bucket as the exposition writes it (the bounds
/// above formatted by `dtoa`, as `prometheus-client` does), then `+Inf`:
/// constants, so a scrape formats no bucket bound.
pub const DURATION_BUCKET_LABELS: [&str; DURATION_BUCKETS.len() + 1] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0",
    "+Inf",
];

/// Seconds since the Unix epoch, as Prometheus timestamps are.
pub fn unix_now() -> f64 {
    unix_seconds(SystemTime::now())
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The outcome of the latest probe, plus the last good status snapshot.
#[derive(Debug, Clone, Default)]
pub struct ProbeRecord {
    /// Unix seconds when the latest probe ended; None before the first.
    pub last_run: Option<f64>,
    /// Unix seconds of the latest success.
    pub last_success: Option<f64>,
    pub success: bool,
    /// Last HTTP status, 0 if none.
    pub http_status: u16,
    pub error: Option<ProbeError>,
    /// Wall time of the latest probe, retries included.
    pub duration: Duration,
    /// The last successfully parsed status (kept after failures until stale).
    pub status: Option<Arc<StatusSnapshot>>,
    /// `http` prober: the TLS expiry last seen, by a success or by a
    /// failure after the handshake ([`ProbeError::certificates`]).
    pub http: Option<HttpSnapshot>,
    /// Unix seconds when `http` was seen: its gauges stay while that is
    /// within `stale_after`, so an endpoint failing for days (a 401, a
    /// 404) keeps its certificate-expiry alert.
    pub http_seen: Option<f64>,
    /// `json` prober: the last success's samples (kept like `status`).
    pub json: Option<Arc<JsonSnapshot>>,
}

/// A fixed-bucket histogram made of atomics (no lock on the probe path).
#[derive(Debug, Default)]
pub struct DurationHistogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    count: AtomicU64,
    /// Sum in nanoseconds, so it can be an integer atomic.
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = DURATION_BUCKETS
            .iter()
            .position(|upper| secs <= *upper)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// (sum seconds, count, per-bucket (`le` label, count) with +Inf last).
    pub fn read(&self) -> (f64, u64, [(&'static str, u64); DURATION_BUCKETS.len() + 1]) {
        let mut out = DURATION_BUCKET_LABELS.map(|le| (le, 0u64));
        for (slot, bucket) in out.iter_mut().zip(&self.buckets) {
            slot.1 = bucket.load(Ordering::Relaxed);
        }
        let count = out.iter().map(|(_, n)| n).sum();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        // Pairs with the fence in `TargetState::publishing`: a reader that
        // saw a publish's change here sees its odd publish count when it
        // reads the count next (`metrics::Exposition::still_current`).
        std::sync::atomic::fence(Ordering::Acquire);
        (sum, count, out)
    }
}

/// Everything known about one configured target.
#[derive(Debug)]
pub struct TargetState {
    /// Unique for the life of the process: a reload that changes a target
    /// makes a new state, with a new id.
    pub id: u64,
    pub config: Arc<TargetConfig>,
    /// Publishes begun plus publishes ended ([`TargetState::publishing`]):
    /// odd while one runs, and the same even number for as long as nothing
    /// a probe publishes has changed, so a scrape may keep what it
    /// rendered of this target's probe families under that number.
    publishes: AtomicU64,
    /// Where in its interval the target's probe slots fall, in
    /// nanoseconds (0 until the runner schedules it): `/metrics` lists
    /// targets in this order, so the targets that probed between two
    /// scrapes sit side by side (see `metrics::scrape_order`).
    phase: AtomicU64,
    /// `upstream_target_info`'s url label (no credentials, no query).
    pub display_url: String,
    /// Whether `display_url` needs no escaping as a label value, worked out
    /// once here rather than on every scrape (it was ~3 % of a render).
    pub display_url_plain: bool,
    /// `target="<name>"` and the static labels, escaped once for `/metrics`.
    pub labels: TargetLabels,
    /// Changed only through [`Publishing::store_record`].
    record: ArcSwap<ProbeRecord>,
    /// Counters, histogram and unknown values change only while a publish
    /// runs ([`TargetState::publishing`]): gzip scrapes keep what they
    /// rendered of them until the publish count changes.
    pub probes_total: AtomicU64,
    pub failures: [AtomicU64; Reason::ALL.len()],
    pub duration: DurationHistogram,
    /// Cumulative `upstream_unknown_values_total` by field (a status
    /// prober's field name, or a `json` rule's metric name).
    pub unknown_values: Mutex<Vec<(String, u64)>>,
    /// Set once the first probe has finished (success, failure or timeout).
    pub first_done: AtomicBool,
    /// `max_components` warning is logged once per target.
    pub cap_warned: AtomicBool,
    /// `ETag` / `Last-Modified` validators and the answers they stand for;
    /// lives and dies with the target, so a changed URL starts afresh.
    pub conditional: Arc<ConditionalCache>,
    /// Recent results for `/api/v1/targets` (see [`ProbeHistory`]).
    history: Mutex<ProbeHistory>,
}

impl TargetState {
    pub fn new(config: Arc<TargetConfig>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let display_url = config.prober.display_url();
        TargetState {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            display_url_plain: !crate::exposition::label_needs_escaping(&display_url),
            display_url,
            labels: TargetLabels::new(&config.name, &config.labels),
            config,
            publishes: AtomicU64::new(0),
            phase: AtomicU64::new(0),
            record: ArcSwap::from_pointee(ProbeRecord::default()),
            probes_total: AtomicU64::new(0),
            failures: Default::default(),
            duration: DurationHistogram::default(),
            unknown_values: Mutex::new(Vec::new()),
            first_done: AtomicBool::new(false),
            cap_warned: AtomicBool::new(false),
            conditional: Arc::new(ConditionalCache::default()),
            history: Mutex::new(ProbeHistory::default()),
        }
    }

    /// Mark a publish as running until the guard drops: everything a
    /// probe changes (record, counters, histogram, unknown values) is
    /// changed while it lives.
    pub fn publishing(&self) -> Publishing<'_> {
        let before = self.publishes.fetch_add(1, Ordering::Relaxed);
        // One publish at a time per target (its one task publishes, without
        // awaiting in between): two at once would make the count even.
        debug_assert!(
            before.is_multiple_of(2),
            "publishes of one target overlapped"
        );
        // The odd count is visible to whoever sees any change after it.
        std::sync::atomic::fence(Ordering::Release);
        Publishing(self)
    }

    /// The publish count to read before what a probe publishes
    /// (seqlock-style; see [`TargetState::publishes_unchanged_since`]).
    pub fn publishes_before_reading(&self) -> u64 {
        self.publishes.load(Ordering::Acquire)
    }

    /// Whether what was read after `before` was
    /// [`TargetState::publishes_before_reading`] is one whole publish's
    /// state: no publish ran meanwhile, and none was half done.
    pub fn publishes_unchanged_since(&self, before: u64) -> bool {
        std::sync::atomic::fence(Ordering::Acquire);
        before.is_multiple_of(2) && self.publishes.load(Ordering::Relaxed) == before
    }

    /// The latest record.
    pub fn record(&self) -> arc_swap::Guard<Arc<ProbeRecord>> {
        self.record.load()
    }

    /// The latest record, as an `Arc` of its own.
    pub fn record_full(&self) -> Arc<ProbeRecord> {
        self.record.load_full()
    }

    /// Record where in its interval the target's slots fall.
    pub fn set_phase(&self, nanos: u64) {
        self.phase.store(nanos, Ordering::Relaxed);
    }

    pub fn phase(&self) -> u64 {
        self.phase.load(Ordering::Relaxed)
    }

    /// Append a just-published record to the target's history.
    pub fn record_history(&self, record: &ProbeRecord) {
        self.history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(record);
    }

    /// (failures, results) among the last [`ProbeHistory::RECENT`]
    /// results, without copying the history.
    pub fn recent_failure_count(&self) -> (usize, usize) {
        let history = self
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (history.recent_failures, history.recent.len())
    }

    /// The retained history, oldest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entries()
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Add one probe's unknown-value counts to the cumulative counters.
    pub fn add_unknown_values<S: AsRef<str>>(&self, seen: &[(S, u64)]) {
        if seen.is_empty() {
            return;
        }
        let mut total = self
            .unknown_values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (field, n) in seen {
            let field = field.as_ref();
            match total.iter_mut().find(|(f, _)| f == field) {
                Some((_, sum)) => *sum += n,
                None => total.push((field.to_owned(), *n)),
            }
        }
        total.sort();
    }

    pub fn unknown_values(&self) -> Vec<(String, u64)> {
        self.unknown_values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The status snapshot to export now: the last good one, unless it is
    /// older than `stale_after`.
    pub fn fresh_status(&self, record: &ProbeRecord, now: f64) -> Option<Arc<StatusSnapshot>> {
        self.is_fresh(record, now)
            .then(|| record.status.clone())
            .flatten()
    }

    /// Whether the record's last success is recent enough (within
    /// `stale_after`) for its outputs to be exported.
    pub fn is_fresh(&self, record: &ProbeRecord, now: f64) -> bool {
        self.within_stale_after(record.last_success, now)
    }

    /// Whether the TLS expiry of `record` is recent enough to show.
    pub fn tls_is_fresh(&self, record: &ProbeRecord, now: f64) -> bool {
        self.within_stale_after(record.http_seen, now)
    }

    fn within_stale_after(&self, seen: Option<f64>, now: f64) -> bool {
        seen.is_some_and(|t| now - t <= self.config.stale_after.as_secs_f64())
    }
}

/// A publish in progress (see [`TargetState::publishing`]).
pub struct Publishing<'t>(&'t TargetState);

impl Publishing<'_> {
    /// Replace the target's record: only while publishing, so that a
    /// scrape can tell a record it already rendered from a new one.
    pub fn store_record(&self, record: ProbeRecord) {
        self.0.record.store(Arc::new(record));
    }
}

impl Drop for Publishing<'_> {
    fn drop(&mut self) {
        // Release: the changes are visible before the even count.
        self.0.publishes.fetch_add(1, Ordering::Release);
    }
}

/// One probe's outcome, as [`ProbeHistory::entries`] hands it out.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// Unix seconds when the probe ended.
    pub time: f64,
    /// Wall time of the probe, retries included.
    pub duration_seconds: f32,
    /// Last HTTP status seen; 0 if none.
    pub http_status: u16,
    /// None for a success.
    pub reason: Option<Reason>,
    /// Shared with the other entries of the same text.
    pub error: Option<Arc<str>>,
}

impl HistoryEntry {
    pub fn success(&self) -> bool {
        self.reason.is_none()
    }
}

/// One probe's outcome as the history stores it: 16 bytes, the error text
/// by its index in [`ProbeHistory::texts`]. At 10,000 targets × 20 results
/// this halves the history's memory (3 MB) against the 32-byte
/// [`HistoryEntry`].
#[derive(Debug, Clone, Copy)]
struct Slot {
    time: f64,
    duration_seconds: f32,
    http_status: u16,
    reason: Option<Reason>,
    /// 0 for none, else `texts[error - 1]`.
    error: u8,
}

impl Slot {
    fn success(&self) -> bool {
        self.reason.is_none()
    }
}

/// A target's recent results, bounded: the last [`ProbeHistory::RECENT`]
/// results, plus older failures so that the last
/// [`ProbeHistory::FAILURES`] failures are always kept even when a run of
/// successes has pushed them out of the recent ring. At most
/// `RECENT + FAILURES` entries are ever held.
#[derive(Debug, Default)]
pub struct ProbeHistory {
    /// The last `RECENT` results, oldest first.
    recent: VecDeque<Slot>,
    /// Failures pushed out of `recent`, oldest first; only as many as are
    /// needed to make up the last `FAILURES` failures together with those
    /// still in `recent`.
    older_failures: VecDeque<Slot>,
    /// Failures currently in `recent`.
    recent_failures: usize,
    /// Error texts the slots point at; the last is the latest failure's,
    /// reused while the text stays the same, so a target failing the same
    /// way over and over allocates nothing. Texts no slot uses any more
    /// are dropped when the list grows past [`ProbeHistory::MAX_TEXTS`].
    texts: Vec<Arc<str>>,
}

impl ProbeHistory {
    /// Results kept whatever their outcome.
    pub const RECENT: usize = 20;
    /// Failures kept even when older than the last `RECENT` results.
    pub const FAILURES: usize = 10;
    /// Error texts held before unused ones are dropped (twice the most
    /// that can be in use, so dropping is rare).
    const MAX_TEXTS: usize = 2 * (Self::RECENT + Self::FAILURES);

    /// Record the outcome held by a just-published `record`.
    pub fn push(&mut self, record: &ProbeRecord) {
        let error = match &record.error {
            Some(e) => self.text_index(&e.message),
            None => 0,
        };
        self.push_slot(Slot {
            time: record.last_run.unwrap_or(0.0),
            duration_seconds: record.duration.as_secs_f32(),
            http_status: record.http_status,
            reason: record.error.as_ref().map(|e| e.reason),
            error,
        });
    }

    fn push_slot(&mut self, slot: Slot) {
        if self.recent.capacity() == 0 {
            // One allocation of the final size instead of growing by doubling.
            self.recent.reserve_exact(Self::RECENT);
        }
        // Make room first, so the ring never grows past its capacity.
        if self.recent.len() >= Self::RECENT
            && let Some(out) = self.recent.pop_front()
            && !out.success()
        {
            self.recent_failures -= 1;
            self.older_failures.push_back(out);
        }
        if !slot.success() {
            self.recent_failures += 1;
        }
        self.recent.push_back(slot);
        let wanted = Self::FAILURES.saturating_sub(self.recent_failures);
        while self.older_failures.len() > wanted {
            self.older_failures.pop_front();
        }
    }

    /// The index (from 1) of `message` among the texts: the latest text's
    /// if it is the same, else a new one.
    fn text_index(&mut self, message: &str) -> u8 {
        if let Some(last) = self.texts.last()
            && **last == *message
        {
            return u8::try_from(self.texts.len()).unwrap_or(u8::MAX);
        }
        if self.texts.len() >= Self::MAX_TEXTS {
            self.drop_unused_texts();
        }
        self.texts.push(Arc::from(message));
        u8::try_from(self.texts.len()).unwrap_or(u8::MAX)
    }

    /// Keep only the texts some slot points at (in order), and renumber.
    fn drop_unused_texts(&mut self) {
        let mut used = vec![false; self.texts.len()];
        for slot in self.older_failures.iter().chain(&self.recent) {
            if let Some(i) = usize::from(slot.error).checked_sub(1) {
                used[i] = true;
            }
        }
        let mut renumbered = vec![0u8; self.texts.len()];
        let mut kept = Vec::with_capacity(Self::RECENT + Self::FAILURES);
        for (i, text) in self.texts.drain(..).enumerate() {
            if used[i] {
                kept.push(text);
                renumbered[i] = u8::try_from(kept.len()).unwrap_or(u8::MAX);
            }
        }
        self.texts = kept;
        for slot in self.older_failures.iter_mut().chain(self.recent.iter_mut()) {
            if let Some(i) = usize::from(slot.error).checked_sub(1) {
                slot.error = renumbered[i];
            }
        }
    }

    /// Every retained entry, oldest first.
    pub fn entries(&self) -> Vec<HistoryEntry> {
        self.older_failures
            .iter()
            .chain(self.recent.iter())
            .map(|slot| HistoryEntry {
                time: slot.time,
                duration_seconds: slot.duration_seconds,
                http_status: slot.http_status,
                reason: slot.reason,
                error: usize::from(slot.error)
                    .checked_sub(1)
                    .and_then(|i| self.texts.get(i).cloned()),
            })
            .collect()
    }
}

/// The live targets, sorted by name; replaced whole on reload.
#[derive(Debug, Default)]
pub struct TargetSet {
    pub targets: Vec<Arc<TargetState>>,
}

impl TargetSet {
    pub fn get(&self, name: &str) -> Option<&Arc<TargetState>> {
        self.targets
            .binary_search_by(|t| t.name().cmp(name))
            .ok()
            .and_then(|i| self.targets.get(i))
    }
}

/// Shared handle to the current target set.
pub type SharedTargets = Arc<ArcSwap<TargetSet>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// What a scrape reads between two looks at the publish count is one
    /// whole publish's state only if no publish ran or began meanwhile.
    #[test]
    fn publish_count_tells_a_whole_publish_from_one_under_way() {
        let config = crate::config::Config::from_bytes(
            b"targets:\n  - { name: t, http: { url: \"http://127.0.0.1:1/\" } }\n",
            std::path::Path::new("t.yaml"),
        )
        .expect("valid config");
        let state = TargetState::new(config.targets[0].clone());
        let before = state.publishes_before_reading();
        assert!(state.publishes_unchanged_since(before));
        {
            let publishing = state.publishing();
            // Begun before the reading started: not a whole publish.
            let during = state.publishes_before_reading();
            assert!(!state.publishes_unchanged_since(during));
            publishing.store_record(ProbeRecord::default());
        }
        // Ran while the reading went on: not the state it began with.
        assert!(!state.publishes_unchanged_since(before));
        let after = state.publishes_before_reading();
        assert_ne!(after, before);
        assert!(state.publishes_unchanged_since(after));
    }

    #[test]
    fn histogram_buckets_and_sum() {
        let h = DurationHistogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(300));
        h.observe(Duration::from_secs(60));
        let (sum, count, buckets) = h.read();
        assert_eq!(count, 3);
        assert!((sum - 60.303).abs() < 1e-6);
        assert_eq!(buckets[0], ("0.005", 1));
        assert_eq!(buckets[6], ("0.5", 1));
        assert_eq!(buckets[12], ("+Inf", 1));
    }

    #[test]
    fn bucket_labels_are_the_bounds_as_dtoa_writes_them() {
        let mut buf = dtoa::Buffer::new();
        for (bound, label) in DURATION_BUCKETS.iter().zip(DURATION_BUCKET_LABELS) {
            assert_eq!(buf.format(*bound), label);
        }
        assert_eq!(DURATION_BUCKET_LABELS.last(), Some(&"+Inf"));
    }

    fn record(i: u32, failed: bool, message: &str) -> ProbeRecord {
        ProbeRecord {
            last_run: Some(f64::from(i)),
            success: !failed,
            error: failed.then(|| ProbeError::new(Reason::Timeout, message)),
            ..ProbeRecord::default()
        }
    }

    fn times(history: &ProbeHistory) -> Vec<u32> {
        history.entries().iter().map(|e| e.time as u32).collect()
    }

    #[test]
    fn history_keeps_the_last_results_and_older_failures() {
        let mut h = ProbeHistory::default();
        // Failures at 0..12, then 30 successes (12..42).
        for i in 0..42 {
            h.push(&record(i, i < 12, "boom"));
        }
        // The ring holds 22..42; the last 10 failures (2..12) stay too.
        let expected: Vec<u32> = (2..12).chain(22..42).collect();
        assert_eq!(times(&h), expected);
        // New failures in the ring push the oldest kept failures out.
        for i in 42..45 {
            h.push(&record(i, true, "boom"));
        }
        let expected: Vec<u32> = (5..12).chain(25..45).collect();
        assert_eq!(times(&h), expected);
        let failures = h.entries().iter().filter(|e| !e.success()).count();
        assert_eq!(failures, ProbeHistory::FAILURES);
    }

    #[test]
    fn history_is_bounded_whatever_the_pattern() {
        let mut h = ProbeHistory::default();
        for i in 0..10_000 {
            h.push(&record(i, i % 7 < 3, "boom"));
            let len = h.entries().len();
            assert!(len <= ProbeHistory::RECENT + ProbeHistory::FAILURES);
        }
        // All failures: only the ring.
        for i in 10_000..10_100 {
            h.push(&record(i, true, "boom"));
        }
        assert_eq!(h.entries().len(), ProbeHistory::RECENT);
        assert_eq!(h.recent.capacity(), ProbeHistory::RECENT);
    }

    #[test]
    fn history_slots_stay_small() {
        assert!(std::mem::size_of::<Slot>() <= 16);
    }

    #[test]
    fn history_keeps_each_entry_its_own_text_however_many_there_were() {
        let mut h = ProbeHistory::default();
        // Every failure a new text, with successes between: texts no slot
        // uses any more are dropped, the rest keep their entries.
        for i in 0..1_000 {
            let failed = i % 3 != 0;
            h.push(&record(i, failed, &format!("error {i}")));
            assert!(h.texts.len() <= ProbeHistory::MAX_TEXTS);
        }
        for e in h.entries() {
            let expected = (!e.success()).then(|| format!("error {}", e.time as u32));
            assert_eq!(e.error.as_deref(), expected.as_deref());
        }
    }

    #[test]
    fn history_shares_an_unchanged_error_text() {
        let mut h = ProbeHistory::default();
        h.push(&record(0, true, "timed out after 1s"));
        h.push(&record(1, false, ""));
        h.push(&record(2, true, "timed out after 1s"));
        h.push(&record(3, true, "connection refused"));
        let e = h.entries();
        let text = |i: usize| e[i].error.clone().unwrap();
        assert!(
            Arc::ptr_eq(&text(0), &text(2)),
            "same text, same allocation"
        );
        assert!(!Arc::ptr_eq(&text(2), &text(3)));
        assert_eq!(&*text(3), "connection refused");
        assert_eq!(e[1].error, None);
    }
}
