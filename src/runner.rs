//! Scheduling: one lightweight task per target, limits, and reconcile.
//!
//! Each target's task sleeps until its next slot, runs one probe, publishes
//! the result and computes the next slot from a fixed origin (`origin + k ×
//! interval`), so lateness never accumulates into drift. The targets of
//! one interval started together each take an equal share of it, in config
//! order, and a random first slot within their share ([`Stratum`]), rounded
//! up to a 10 ms grid shared by all targets: 10,000 targets loaded at once
//! spread over the interval instead of firing together, and those due in
//! the same 10 ms start on one wake-up of the runtime instead of one each.
//! Intervals longer than [`FIRST_PROBE_SPREAD`] add one prompt first probe
//! within it, so a restart leaves no target without series for long. A probe holds a global
//! permit (`concurrency`) for its whole run and a per-host permit
//! (`per_host_concurrency`) during each request attempt only.
//!
//! Reconcile compares the new config with the running one by target name:
//! unchanged targets keep their task, state and counters; changed ones
//! restart; removed ones stop and leave the target set at once; new and
//! restarted ones are started together, as at start-up. Its cost is O(targets) with hash lookups.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, TargetConfig, ceil_to_millis, format_duration};
use crate::http::{ConditionalCache, HttpClients};
use crate::probe::{self, ProbeContext, ProbeError, ProbeOutput, ProbeSuccess, ProberKind, Reason};
use crate::state::{ProbeRecord, SharedTargets, TargetSet, TargetState, unix_now};

/// Per-`host:port` etiquette, shared by every target: at most
/// `per_host_concurrency` requests in flight, and optionally at least
/// `min_interval_per_host` between the starts of two requests.
#[derive(Debug)]
pub struct HostLimits {
    per_host: AtomicUsize,
    /// `min_interval_per_host` in nanoseconds; 0 is off.
    min_interval_nanos: AtomicU64,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

#[derive(Debug)]
struct Host {
    permits: Arc<Semaphore>,
    /// The earliest start of the next request to this host. Each request
    /// reserves its slot under the lock and sleeps outside it, so waiters
    /// are spaced out without holding a lock across an await.
    next_start: Mutex<Instant>,
}

impl HostLimits {
    pub fn new(per_host: usize) -> Self {
        HostLimits {
            per_host: AtomicUsize::new(per_host.max(1)),
            min_interval_nanos: AtomicU64::new(0),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Host>>> {
        self.hosts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wait for a permit to talk to `url`'s host, and for the host's next
    /// free slot when a minimum interval is set.
    ///
    /// A slot at or after `deadline` (the probe's) is not taken: the probe
    /// fails at once as a timeout instead. Taken, it would go unused, since
    /// the probe is cancelled before it comes, and every later request would
    /// queue behind it; a host asked for more requests than its spacing
    /// allows would end with a queue growing without bound and every probe
    /// of it timing out, instead of as many as the spacing allows succeeding.
    pub async fn acquire(
        &self,
        url: &url::Url,
        deadline: Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, ProbeError> {
        let key = crate::http::host_key(url);
        let host = self
            .lock()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Host {
                    permits: Arc::new(Semaphore::new(self.per_host.load(Ordering::Relaxed))),
                    next_start: Mutex::new(Instant::now()),
                })
            })
            .clone();
        let permit = host.permits.clone().acquire_owned().await.ok();
        let min_interval = Duration::from_nanos(self.min_interval_nanos.load(Ordering::Relaxed));
        if !min_interval.is_zero() {
            let start = {
                let mut next = host
                    .next_start
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = Instant::now();
                let start = (*next).max(now);
                if start >= deadline {
                    return Err(spaced_past_deadline(url, min_interval, start - now));
                }
                *next = later(start, min_interval);
                start
            };
            tokio::time::sleep_until(start).await;
        }
        Ok(permit)
    }

    /// Change the limit; hosts get fresh semaphores of the new size.
    pub fn set_limit(&self, per_host: usize) {
        let per_host = per_host.max(1);
        if self.per_host.swap(per_host, Ordering::Relaxed) != per_host {
            self.lock().clear();
        }
    }

    /// Space the starts of requests to one host at least this far apart
    /// (`min_interval_per_host`; zero turns it off).
    pub fn set_min_interval(&self, min_interval: Duration) {
        let nanos = u64::try_from(min_interval.as_nanos()).unwrap_or(u64::MAX);
        self.min_interval_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Forget hosts nobody is talking to and whose spacing has run out, so
    /// the map follows the config across reloads instead of only growing.
    fn prune_idle(&self) {
        let now = Instant::now();
        self.lock().retain(|_, host| {
            let next = *host
                .next_start
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::strong_count(host) > 1 || Arc::strong_count(&host.permits) > 1 || next > now
        });
    }

    /// Hosts currently tracked (the reload path prunes idle ones).
    pub fn tracked_hosts(&self) -> usize {
        self.lock().len()
    }
}

/// Called at the start of every probe, inside the probe's panic guard.
/// Not part of the product: the fault-injection tests use it to make a
/// probe panic for real and check that the panic is contained.
#[doc(hidden)]
pub type ProbeHook = Arc<dyn Fn(&TargetConfig) + Send + Sync>;

/// What every target task shares.
struct Shared {
    clients: HttpClients,
    hosts: HostLimits,
    global: Arc<Semaphore>,
    global_size: AtomicUsize,
    hook: Option<ProbeHook>,
    /// Every target's slots are on one grid of [`SLOT_QUANTUM`] from here.
    epoch: Instant,
}

impl Shared {
    fn set_concurrency(&self, size: usize) {
        let size = size.max(1);
        let old = self.global_size.swap(size, Ordering::Relaxed);
        if size > old {
            self.global.add_permits(size - old);
        } else if size < old {
            // Permits held now are forgotten as they come back.
            let global = self.global.clone();
            let mut to_forget = old - size;
            to_forget -= global.forget_permits(to_forget);
            if to_forget > 0 {
                tokio::spawn(async move {
                    if let Ok(permits) = global.acquire_many(to_forget as u32).await {
                        permits.forget();
                    }
                });
            }
        }
    }
}

struct RunningTarget {
    state: Arc<TargetState>,
    task: JoinHandle<()>,
}

/// Owns the target tasks and the shared target set.
pub struct Runner {
    targets: SharedTargets,
    shared: Arc<Shared>,
    running: Mutex<HashMap<String, RunningTarget>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").finish_non_exhaustive()
    }
}

/// What a reconcile changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileStats {
    pub kept: usize,
    pub started: usize,
    pub restarted: usize,
    pub stopped: usize,
}

impl Runner {
    pub fn new(clients: HttpClients, shutdown: CancellationToken) -> Self {
        Self::with_hook(clients, shutdown, None)
    }

    /// As [`Runner::new`], with a [`ProbeHook`] run at the start of every
    /// probe (tests only).
    #[doc(hidden)]
    pub fn with_hook(
        clients: HttpClients,
        shutdown: CancellationToken,
        hook: Option<ProbeHook>,
    ) -> Self {
        Runner {
            targets: SharedTargets::default(),
            shared: Arc::new(Shared {
                clients,
                hosts: HostLimits::new(crate::config::defaults::PER_HOST_CONCURRENCY),
                global: Arc::new(Semaphore::new(crate::config::defaults::CONCURRENCY)),
                global_size: AtomicUsize::new(crate::config::defaults::CONCURRENCY),
                hook,
                epoch: Instant::now(),
            }),
            running: Mutex::new(HashMap::new()),
            shutdown,
            tracker: TaskTracker::new(),
        }
    }

    /// The live target set, for `/metrics` and the web pages.
    pub fn targets(&self) -> SharedTargets {
        self.targets.clone()
    }

    /// Whether every target has finished its first probe.
    pub fn ready(&self) -> bool {
        self.targets
            .load()
            .targets
            .iter()
            .all(|t| t.first_done.load(Ordering::Acquire))
    }

    /// Bring the running targets in line with `config` (see module docs).
    pub fn apply(&self, config: &Config) -> ReconcileStats {
        self.shared.set_concurrency(config.concurrency);
        self.shared.hosts.set_limit(config.per_host_concurrency);
        self.shared
            .hosts
            .set_min_interval(config.min_interval_per_host);
        let mut stats = ReconcileStats::default();
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next: HashMap<String, RunningTarget> = HashMap::with_capacity(config.targets.len());
        let mut to_start = Vec::new();
        for target in &config.targets {
            match running.remove(&target.name) {
                Some(old) if *old.state.config == **target => {
                    stats.kept += 1;
                    next.insert(target.name.clone(), old);
                }
                Some(old) => {
                    old.task.abort();
                    stats.restarted += 1;
                    to_start.push(target);
                }
                None => {
                    stats.started += 1;
                    to_start.push(target);
                }
            }
        }
        let starts = starts(&to_start, config.min_interval_per_host);
        for (target, start) in to_start.iter().zip(starts) {
            next.insert(target.name.clone(), self.spawn(Arc::clone(target), start));
        }
        for (_, removed) in running.drain() {
            removed.task.abort();
            stats.stopped += 1;
        }
        let mut set: Vec<Arc<TargetState>> = next.values().map(|r| r.state.clone()).collect();
        set.sort_by(|a, b| a.name().cmp(b.name()));
        *running = next;
        self.targets.store(Arc::new(TargetSet { targets: set }));
        self.shared
            .clients
            .retain_profiles(config.targets.iter().map(|t| t.as_ref()));
        self.shared.hosts.prune_idle();
        stats
    }

    /// The per-host limits every target shares.
    pub fn hosts(&self) -> &HostLimits {
        &self.shared.hosts
    }

    fn spawn(&self, config: Arc<TargetConfig>, start: Start) -> RunningTarget {
        let state = Arc::new(TargetState::new(config));
        let task = self.tracker.spawn(target_loop(
            state.clone(),
            self.shared.clone(),
            self.shutdown.clone(),
            start,
        ));
        RunningTarget { state, task }
    }

    /// Stop scheduling and wait up to `grace` for in-flight probes to end.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// First slots are rounded up to a multiple of this from the runner's
/// epoch. 1,000 probes a second at random instants woke the runtime's
/// thread ~1,000 times a second, and in a VM going to sleep and waking up
/// was the largest single cost in `perf` (`finish_task_switch`, 16 % at
/// 5,000 targets); on a 10 ms grid the targets due together start on one
/// wake-up. With intervals of whole multiples of 10 ms (all of the usual
/// ones) every later slot stays on the grid too.
const SLOT_QUANTUM: Duration = Duration::from_millis(10);

/// Targets started together have their first probe within this much of
/// the start, however long their interval (unless many share a host, see
/// [`PROMPT_GAP_PER_HOST`]): with `interval: 30m` a restart would otherwise
/// leave a target without series, and the replica unready (`/-/ready`
/// waits for every first probe), for up to half an hour.
pub const FIRST_PROBE_SPREAD: Duration = Duration::from_secs(10);

/// The prompt first probes of targets on one `host:port` are spread over
/// at least this much per target (and twice `min_interval_per_host`, if
/// larger): 2,000 health checks behind one ingress, on the default 4
/// requests in flight per host, must not all come due within 10 s and
/// time out queueing for the host. A host that needs longer than the
/// interval gets no prompt probes: its targets start on their grid, spread
/// over the interval.
pub const PROMPT_GAP_PER_HOST: Duration = Duration::from_millis(100);

/// Where a target sits among the targets of its interval that the runner
/// starts together: the `index`-th of `count`. Each gets its own
/// `1/count` share of a span, at a random point within it: as free of
/// herds as independent random offsets, and more even. The scrape lists
/// targets by the phase of their slots (`metrics::scrape_order`), so with
/// shares in config order it reads their states in the order they were
/// allocated, not scattered over the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stratum {
    index: usize,
    count: usize,
}

impl Stratum {
    /// The `index`-th of `count` (clamped into range).
    pub fn new(index: usize, count: usize) -> Stratum {
        let count = count.max(1);
        Stratum {
            index: index.min(count - 1),
            count,
        }
    }

    /// A random offset within this stratum's share of `span`.
    fn offset(self, span: Duration) -> Duration {
        let span = span.as_nanos();
        let share = |i: usize| span * i as u128 / self.count as u128;
        let (low, high) = (share(self.index), share(self.index + 1));
        let nanos = if high > low {
            rand::rng().random_range(low..high)
        } else {
            low
        };
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// How a target starts: its share of its interval for the grid, its share
/// of the prompt first probes' spread among the targets on its host, and
/// that spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Start {
    grid: Stratum,
    prompt: Stratum,
    prompt_spread: Duration,
}

/// A target's first slots: the grid its probes keep to (`origin + k ×
/// interval`), and, when the grid's first slot could be further than
/// [`FIRST_PROBE_SPREAD`] away, a `prompt` first probe before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FirstSlots {
    origin: Instant,
    prompt: Option<Instant>,
}

/// How each of `targets` (started together, in config order) starts: its
/// [`Stratum`] among those that share its interval, and among those that
/// share its host, whose count sets the prompt probes' spread.
fn starts(targets: &[&Arc<TargetConfig>], min_interval_per_host: Duration) -> Vec<Start> {
    let hosts: Vec<String> = targets
        .iter()
        .map(|t| crate::http::host_key(&t.prober.fetched_url()))
        .collect();
    let intervals: Vec<Duration> = targets.iter().map(|t| t.interval).collect();
    let grid = strata(&intervals);
    let prompt = strata(&hosts);
    let gap = PROMPT_GAP_PER_HOST.max(min_interval_per_host.saturating_mul(2));
    grid.into_iter()
        .zip(prompt)
        .map(|(grid, prompt)| Start {
            grid,
            prompt,
            prompt_spread: FIRST_PROBE_SPREAD
                .max(gap.saturating_mul(u32::try_from(prompt.count).unwrap_or(u32::MAX))),
        })
        .collect()
}

/// Each key's [`Stratum`] among the keys equal to it, in order.
fn strata<K: Eq + std::hash::Hash>(keys: &[K]) -> Vec<Stratum> {
    let mut counts: HashMap<&K, usize> = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    let mut taken: HashMap<&K, usize> = HashMap::with_capacity(counts.len());
    keys.iter()
        .map(|key| {
            let index = taken.entry(key).or_default();
            let stratum = Stratum::new(*index, counts.get(key).copied().unwrap_or(1));
            *index += 1;
            stratum
        })
        .collect()
}

/// The grid starts at an offset within one interval from `now`, and the
/// prompt probe (intervals longer than the spread) within the spread, each
/// in the target's [`Stratum`] of it and rounded up onto the runner's
/// [`SLOT_QUANTUM`] grid.
fn first_slots(epoch: Instant, now: Instant, interval: Duration, start: Start) -> FirstSlots {
    let on_grid = |offset: Duration| {
        let wanted = later(now, offset);
        let quantum = SLOT_QUANTUM.as_nanos();
        let since = wanted.saturating_duration_since(epoch).as_nanos();
        let rounded = since.div_ceil(quantum) * quantum;
        later(
            epoch,
            Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX)),
        )
    };
    let origin = on_grid(start.grid.offset(interval));
    // In the first half of its share: two neighbours on one host start at
    // least half a share (`PROMPT_GAP_PER_HOST`, or `min_interval_per_host`)
    // apart, wherever their random points fall.
    let early = Stratum::new(start.prompt.index * 2, start.prompt.count * 2);
    let prompt = (interval > start.prompt_spread)
        .then(|| on_grid(early.offset(start.prompt_spread)))
        // A grid that begins before the prompt would come first anyway.
        .filter(|&prompt| prompt < origin);
    FirstSlots { origin, prompt }
}

/// `t + d`, saturating at a far future instead of panicking: durations come
/// from config (and `Retry-After`), and a year-long one must not crash the
/// scheduler.
fn later(t: Instant, d: Duration) -> Instant {
    /// About 30 years, as tokio's own "far future".
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

/// The next slot after `now` on the grid `origin + k × interval` (k ≥ 0:
/// the grid's first slot, if `now` is before it).
pub fn next_slot(origin: Instant, interval: Duration, now: Instant) -> Instant {
    if now < origin {
        // After a prompt first probe the grid may not have begun yet.
        return origin;
    }
    let interval_nanos = interval.as_nanos().max(1);
    let elapsed = now.saturating_duration_since(origin).as_nanos();
    let k = elapsed / interval_nanos + 1;
    let offset = Duration::from_nanos(u64::try_from(k * interval_nanos).unwrap_or(u64::MAX));
    later(origin, offset)
}

async fn target_loop(
    state: Arc<TargetState>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    start: Start,
) {
    let interval = state.config.interval;
    let FirstSlots { origin, prompt } = first_slots(shared.epoch, Instant::now(), interval, start);
    let since_epoch = origin.saturating_duration_since(shared.epoch).as_nanos();
    let phase = since_epoch % interval.as_nanos().max(1);
    state.set_phase(u64::try_from(phase).unwrap_or(u64::MAX));
    let mut next = prompt.unwrap_or(origin);
    // After a prompt first probe, the grid's next slot at least half an
    // interval after it ends: the second probe does not follow the first at
    // once, and comes less than 1.5 intervals after it ended.
    let mut settle = prompt.map(|_| interval / 2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        // An in-flight probe is not interrupted by shutdown: draining lets it finish.
        // The global permit first, then the probe: a target waiting for a
        // permit (the runtime stalled, every slot due at once) holds only
        // this small future, not the probe's. Shutdown while waiting: no probe.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = shared.global.clone().acquire_owned() => permit.ok(),
        };
        // Boxed: the probe's future is large (HTTP client, retries, parsing),
        // and inline it would sit in every idle target's task between
        // probes: ~2.7 KB × 10,000 targets of memory used once per interval.
        let retry_after = Box::pin(probe_once(&state, &shared)).await;
        drop(permit);
        let now = Instant::now();
        // The upstream may ask us to wait (`Retry-After`): this target only
        // is postponed, to the first slot of its grid at or after that time.
        next = match retry_after.max(settle.take()) {
            Some(pause) => postponed(origin, interval, now, pause),
            None => next_slot(origin, interval, now),
        };
    }
}

/// The first slot on the grid `origin + k × interval` that is not before
/// `now + pause` (and after `now`). `pause` is bounded by
/// [`crate::http::MAX_RETRY_AFTER`]; the arithmetic saturates regardless.
pub fn postponed(origin: Instant, interval: Duration, now: Instant, pause: Duration) -> Instant {
    let not_before = later(now, pause);
    // next_slot gives the first slot strictly after its argument.
    let just_before = not_before
        .checked_sub(Duration::from_nanos(1))
        .unwrap_or(not_before);
    next_slot(origin, interval, just_before.max(now))
}

/// Run one probe (holding a global permit) and publish its result.
/// Returns the upstream's `Retry-After`, if it asked for one.
async fn probe_once(state: &TargetState, shared: &Shared) -> Option<Duration> {
    let started = Instant::now();
    // HTTP checks measure the real answer every time; everything else
    // parses content, which a `304` lets us reuse.
    let conditional = (state.config.kind() != ProberKind::Http).then(|| state.conditional.clone());
    let result = guarded_probe(
        &state.config,
        &shared.clients,
        &shared.hosts,
        conditional,
        shared.hook.as_ref(),
    )
    .await;
    publish(state, result, started.elapsed())
}

/// One whole probe of `config` as the daemon runs it: the shared client,
/// retries, the whole-probe timeout, and a panic caught and turned into
/// reason `other`. The `probe` command and tests call this too.
pub async fn run_probe(
    config: &TargetConfig,
    clients: &HttpClients,
    hosts: &HostLimits,
) -> Result<ProbeSuccess, ProbeError> {
    guarded_probe(config, clients, hosts, None, None).await
}

/// How long after a probe's deadline its backstop timeout fires.
const BACKSTOP_GRACE: Duration = Duration::from_millis(50);

/// [`run_probe`] with the daemon's extras: the target's conditional cache
/// (`None` for plain requests) and the test-only hook.
async fn guarded_probe(
    config: &TargetConfig,
    clients: &HttpClients,
    hosts: &HostLimits,
    conditional: Option<Arc<ConditionalCache>>,
    hook: Option<&ProbeHook>,
) -> Result<ProbeSuccess, ProbeError> {
    let deadline = later(Instant::now(), config.timeout);
    let client = clients.client_for(config)?;
    let ctx = ProbeContext::new(config, client, hosts, deadline);
    let probe = async {
        if let Some(hook) = hook {
            hook(config);
        }
        match conditional {
            Some(cache) => crate::http::with_conditional(cache, probe::run(&ctx)).await,
            None => probe::run(&ctx).await,
        }
    };
    // The hook runs inside the guard so that its panic is caught like a prober's.
    let guarded = AssertUnwindSafe(probe).catch_unwind();
    // The retry loop ends at the deadline itself, with the answer before a
    // cut retry; this bound is the backstop for anything that does not, a
    // moment later so that the loop's own timer has fired first even when
    // several workers poll the timers.
    match tokio::time::timeout_at(later(deadline, BACKSTOP_GRACE), guarded).await {
        Err(_) => Err(ctx.with_status_seen(crate::retry::timed_out(config.timeout))),
        Ok(Err(panic)) => {
            let what = crate::logging::panic_message(panic.as_ref());
            tracing::error!(target = %config.name, panic = %what, "prober panicked; counted as reason=other");
            Err(ProbeError::new(
                Reason::Other,
                format!("internal error: the prober panicked: {what}"),
            ))
        }
        // Whichever prober or layer gave up on time, the status of an
        // answer whose head had come stays with the error.
        Ok(Ok(result)) => result.map_err(|e| ctx.with_status_seen(e)),
    }
}

/// The error of a request whose host's next free slot comes after the
/// probe's deadline: a timeout, as waiting for it would have been.
///
/// Not retried: the host's next free slot only moves later, so another
/// attempt would be refused too. `retry_after` says so to the retry loop
/// (a pause past the deadline ends it), and to the runner, which keeps the
/// target's next probe at or after that slot.
fn spaced_past_deadline(url: &url::Url, min_interval: Duration, wait: Duration) -> ProbeError {
    let mut err = ProbeError::new(
        Reason::Timeout,
        format!(
            "no request slot for {} before the timeout: min_interval_per_host spaces requests {} apart and the next free one is {} away",
            crate::http::host_key(url),
            format_duration(min_interval),
            format_duration(ceil_to_millis(wait)),
        ),
    );
    err.retry_after = Some(wait);
    err
}

/// Fold one probe's outcome into the target's state.
pub fn publish(
    state: &TargetState,
    result: Result<ProbeSuccess, ProbeError>,
    elapsed: Duration,
) -> Option<Duration> {
    let publishing = state.publishing();
    let previous = state.record();
    let now = unix_now();
    let result = result.and_then(|success| check_against_previous(success, &previous));
    // Counted before its failure, if any: a scrape reads the failures
    // first (metrics::Counters), so it never sees more failures than probes.
    state.probes_total.fetch_add(1, Ordering::Release);
    state.duration.observe(elapsed);
    let name = &state.config.name;
    let (record, retry_after) = match result {
        Ok(success) => {
            let (status, http, json) = match success.output {
                ProbeOutput::Status(snapshot) => {
                    state.add_unknown_values(&snapshot.unknown_values);
                    if snapshot.components_capped > 0
                        && !state.cap_warned.swap(true, Ordering::Relaxed)
                    {
                        // Capped means exactly max_components were kept.
                        tracing::warn!(
                            target = %name,
                            max_components = snapshot.component_count(),
                            dropped = snapshot.components_capped,
                            "component series capped by max_components; raise it or filter with components.include/exclude"
                        );
                    }
                    (Some(snapshot), None, None)
                }
                ProbeOutput::Http(snapshot) => (None, Some(snapshot), None),
                ProbeOutput::Json(snapshot) => {
                    state.add_unknown_values(&snapshot.unknown_values);
                    let capped: usize = snapshot.rules.iter().map(|r| r.capped).sum();
                    if capped > 0 && !state.cap_warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            target = %name,
                            max_per_rule = crate::probe::json::MAX_SAMPLES_PER_RULE,
                            dropped = capped,
                            "json samples capped per rule; narrow the rule's path"
                        );
                    }
                    (None, None, Some(Arc::new(snapshot)))
                }
            };
            tracing::debug!(target = %name, duration = ?elapsed, "probe succeeded");
            let record = ProbeRecord {
                last_run: Some(now),
                last_success: Some(now),
                success: true,
                http_status: success.http_status,
                error: None,
                duration: elapsed,
                status,
                http_seen: http.is_some().then_some(now),
                http,
                json,
            };
            (record, None)
        }
        Err(error) => {
            state.failures[error.reason.index()].fetch_add(1, Ordering::Release);
            tracing::warn!(target = %name, reason = %error.reason, error = %error.message, "probe failed");
            let retry_after = error.retry_after;
            // Certificates seen before the failure replace the kept ones.
            let (http, http_seen) = match error.certificates {
                Some(seen) => (Some(seen), Some(now)),
                None => (previous.http, previous.http_seen),
            };
            let record = ProbeRecord {
                last_run: Some(now),
                last_success: previous.last_success,
                success: false,
                http_status: error.http_status.unwrap_or(0),
                error: Some(error),
                duration: elapsed,
                status: previous.status.clone(),
                http,
                http_seen,
                json: previous.json.clone(),
            };
            (record, retry_after)
        }
    };
    state.record_history(&record);
    publishing.store_record(record);
    state.first_done.store(true, Ordering::Release);
    retry_after
}

/// Rules that need history: a page that listed components and now lists
/// none has changed shape (a migrated or broken page), not become healthy.
/// What the page lists counts, not what the target's filter keeps of it: a
/// vendor renaming the one component an `include` names leaves a page that
/// still answers, and its status must go on being exported.
fn check_against_previous(
    success: ProbeSuccess,
    previous: &ProbeRecord,
) -> Result<ProbeSuccess, ProbeError> {
    let ProbeOutput::Status(snapshot) = &success.output else {
        return Ok(success);
    };
    let listed_before = previous.status.as_ref().and_then(|s| s.listed).unwrap_or(0);
    if listed_before > 0 && snapshot.listed == Some(0) {
        return Err(ProbeError::new(
            Reason::Schema,
            "the page listed components before and now lists none",
        )
        .with_status(success.http_status));
    }
    Ok(success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_slot_stays_on_grid() {
        let origin = Instant::now();
        let i = Duration::from_secs(10);
        assert_eq!(next_slot(origin, i, origin), origin + i);
        assert_eq!(
            next_slot(origin, i, origin + Duration::from_millis(10_300)),
            origin + Duration::from_secs(20)
        );
        // A probe that overran several intervals skips the missed slots.
        assert_eq!(
            next_slot(origin, i, origin + Duration::from_secs(35)),
            origin + Duration::from_secs(40)
        );
    }

    #[test]
    fn retry_after_postpones_to_the_first_slot_after_the_pause() {
        let origin = Instant::now();
        let i = Duration::from_secs(1);
        let now = origin + Duration::from_millis(300);
        // Without a pause (or a short one) the next slot stays.
        assert_eq!(postponed(origin, i, now, Duration::ZERO), origin + i);
        assert_eq!(
            postponed(origin, i, now, Duration::from_millis(700)),
            origin + i
        );
        // A longer one moves to the first slot at or after now + pause.
        assert_eq!(
            postponed(origin, i, now, Duration::from_secs(2)),
            origin + Duration::from_secs(3)
        );
        assert_eq!(
            postponed(origin, i, now, Duration::from_millis(1700)),
            origin + Duration::from_secs(2)
        );
        // Absurd pauses saturate instead of panicking.
        assert!(postponed(origin, i, now, Duration::MAX) > now);
    }

    /// Reloading 10,000 targets where one changed restarts that one only:
    /// every other target keeps its state (same allocation, so counters and
    /// last result) and its task.
    #[tokio::test]
    async fn reconcile_touches_only_what_changed() {
        let yaml = |changed: &str| {
            let mut y = String::from("defaults:\n  interval: 1h\ntargets:\n");
            for i in 0..10_000 {
                let path = if i == 4242 { changed } else { "s" };
                y.push_str(&format!(
                    "  - name: t{i}\n    statuspage: {{ url: \"http://127.0.0.1:9/{path}{i}.json\" }}\n"
                ));
            }
            Config::from_bytes(y.as_bytes(), std::path::Path::new("x.yaml")).unwrap()
        };
        let (before, after) = (yaml("s"), yaml("changed"));
        let runner = Runner::new(HttpClients::new(), CancellationToken::new());
        let first = runner.apply(&before);
        assert_eq!(first.started, 10_000);
        let old = runner.targets().load_full();
        old.get("t1")
            .unwrap()
            .probes_total
            .store(7, Ordering::Relaxed);
        let stats = runner.apply(&after);
        assert_eq!(
            stats,
            ReconcileStats {
                kept: 9_999,
                started: 0,
                restarted: 1,
                stopped: 0
            }
        );
        let new = runner.targets().load_full();
        for (a, b) in old.targets.iter().zip(&new.targets) {
            assert_eq!(Arc::ptr_eq(a, b), a.name() != "t4242", "{}", a.name());
        }
        assert_eq!(
            new.get("t1").unwrap().probes_total.load(Ordering::Relaxed),
            7
        );
        // The same config again changes nothing.
        assert_eq!(runner.apply(&after).kept, 10_000);
        assert!(runner.drain(Duration::from_secs(1)).await);
    }

    /// Hosts no longer talked to are forgotten at reconcile; a host in use,
    /// or still inside its spacing, is kept.
    #[tokio::test]
    async fn idle_hosts_are_pruned() {
        let hosts = HostLimits::new(2);
        let a = url::Url::parse("http://a.example/x").unwrap();
        let b = url::Url::parse("http://b.example/x").unwrap();
        let whenever = later(Instant::now(), Duration::from_secs(3600));
        let held = hosts.acquire(&a, whenever).await;
        drop(hosts.acquire(&b, whenever).await);
        assert_eq!(hosts.tracked_hosts(), 2);
        hosts.prune_idle();
        assert_eq!(hosts.tracked_hosts(), 1, "b is idle, a holds a permit");
        drop(held);
        hosts.set_min_interval(Duration::from_secs(60));
        drop(hosts.acquire(&a, whenever).await);
        hosts.prune_idle();
        assert_eq!(hosts.tracked_hosts(), 1, "a's next slot is still ahead");
        hosts.set_min_interval(Duration::ZERO);
    }

    /// Limits with requests to one host spaced 1 s apart, and a URL there.
    fn spaced_a_second() -> (HostLimits, url::Url) {
        let hosts = HostLimits::new(64);
        hosts.set_min_interval(Duration::from_secs(1));
        (hosts, url::Url::parse("http://status.example/api").unwrap())
    }

    /// More requests than the spacing fits before their deadline: those
    /// that fit wait for their slots, the others fail at once as timeouts
    /// and leave no slot behind them for later requests to queue after.
    #[tokio::test(start_paused = true)]
    async fn spacing_takes_no_slot_past_the_probes_deadline() {
        let (hosts, url) = spaced_a_second();
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(2500);
        let results =
            futures_util::future::join_all((0..5).map(|_| hosts.acquire(&url, deadline))).await;
        let refused: Vec<ProbeError> = results.into_iter().filter_map(Result::err).collect();
        assert_eq!(refused.len(), 2, "slots at 0, 1 and 2 s fit before 2.5 s");
        for e in &refused {
            assert_eq!(e.reason, Reason::Timeout);
            assert!(
                e.message.contains("status.example:80")
                    && e.message.contains("spaces requests 1s apart"),
                "{}",
                e.message
            );
        }
        // The next request gets the slot after the last one taken (3 s),
        // not after the two refused ones (5 s).
        let whenever = t0 + Duration::from_secs(3600);
        hosts.acquire(&url, whenever).await.unwrap();
        assert_eq!(Instant::now() - t0, Duration::from_secs(3));
    }

    /// A refused slot ends the probe's retries at once: the next free slot
    /// only moves later, so another attempt would be refused too.
    #[tokio::test(start_paused = true)]
    async fn a_refused_slot_is_not_retried() {
        let (hosts, url) = spaced_a_second();
        let t0 = Instant::now();
        hosts
            .acquire(&url, t0 + Duration::from_secs(60))
            .await
            .unwrap();
        let deadline = t0 + Duration::from_millis(500);
        let backoff = crate::config::Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
        };
        let mut attempts = 0;
        let result =
            crate::retry::with_retries(3, backoff, deadline, Duration::from_secs(1), || {
                attempts += 1;
                hosts.acquire(&url, deadline)
            })
            .await;
        assert_eq!(result.unwrap_err().reason, Reason::Timeout);
        assert_eq!(attempts, 1);
        assert_eq!(Instant::now(), t0, "no backoff slept");
    }

    fn on_grid(epoch: Instant, slot: Instant) -> bool {
        (slot - epoch)
            .as_nanos()
            .is_multiple_of(SLOT_QUANTUM.as_nanos())
    }

    /// The `index`-th of `count` targets, alone on its host.
    fn start(index: usize, count: usize) -> Start {
        Start {
            grid: Stratum::new(index, count),
            prompt: Stratum::new(index, count),
            prompt_spread: FIRST_PROBE_SPREAD,
        }
    }

    #[test]
    fn first_slots_are_on_the_grid_within_their_share_and_a_quantum() {
        let epoch = Instant::now();
        let interval = Duration::from_secs(5);
        let count = 200;
        for index in 0..count {
            let now = epoch + Duration::from_micros(index as u64 * 7_919);
            let slots = first_slots(epoch, now, interval, start(index, count));
            assert_eq!(slots.prompt, None, "the interval is within the spread");
            let share = interval / count as u32;
            let low = now + share * index as u32;
            assert!(
                slots.origin >= low && slots.origin <= low + share + SLOT_QUANTUM,
                "{index}: {:?} after now",
                slots.origin - now
            );
            assert!(on_grid(epoch, slots.origin));
            // Later slots of a whole-quantum interval stay on the grid.
            let next = next_slot(
                slots.origin,
                interval,
                slots.origin + Duration::from_millis(1),
            );
            assert!(on_grid(epoch, next));
        }
    }

    #[test]
    fn a_long_interval_gets_a_prompt_first_probe_and_keeps_its_grid_over_the_interval() {
        let epoch = Instant::now();
        let now = epoch + Duration::from_millis(1_234);
        let interval = Duration::from_secs(3_600);
        let count = 100;
        let mut origins = Vec::new();
        for index in 0..count {
            let slots = first_slots(epoch, now, interval, start(index, count));
            // The first grid share (36 s) may begin within the first
            // prompt's 50 ms: then the grid comes first and no prompt is due.
            let Some(prompt) = slots.prompt else {
                assert_eq!(index, 0);
                assert!(slots.origin <= now + FIRST_PROBE_SPREAD / count as u32);
                continue;
            };
            assert!(prompt < slots.origin);
            // In the first half of its share of the spread.
            let share = FIRST_PROBE_SPREAD / count as u32;
            let low = now + share * index as u32;
            assert!(prompt >= low && prompt <= low + share / 2 + SLOT_QUANTUM);
            assert!(on_grid(epoch, prompt));
            assert!(slots.origin >= now + interval / count as u32 * index as u32);
            assert!(slots.origin <= now + interval + SLOT_QUANTUM);
            origins.push(slots.origin);
        }
        // The grids still spread over the whole hour, in config order.
        assert!(origins.windows(2).all(|w| w[0] <= w[1]));
        assert!(origins[origins.len() - 1] - origins[0] > interval / 2);
        // A spread as long as the interval: no prompt probe.
        let crowded = Start {
            prompt_spread: interval,
            ..start(0, 1)
        };
        assert_eq!(first_slots(epoch, now, interval, crowded).prompt, None);
    }

    #[test]
    fn no_prompt_probe_after_a_grid_that_begins_first() {
        let epoch = Instant::now();
        let interval = Duration::from_secs(20);
        let early_grid = Start {
            grid: Stratum::new(0, 1_000),
            prompt: Stratum::new(999, 1_000),
            prompt_spread: FIRST_PROBE_SPREAD,
        };
        let slots = first_slots(epoch, epoch, interval, early_grid);
        assert!(slots.origin <= epoch + Duration::from_millis(30));
        assert_eq!(slots.prompt, None);
    }

    #[test]
    fn after_a_prompt_probe_the_grid_comes_between_half_and_one_and_a_half_intervals_on() {
        let epoch = Instant::now();
        let interval = Duration::from_secs(3_600);
        let count = 500;
        for index in 0..count {
            let slots = first_slots(epoch, epoch, interval, start(index, count));
            let Some(prompt) = slots.prompt else { continue };
            // The prompt probe took a second.
            let ended = prompt + Duration::from_secs(1);
            let next = postponed(slots.origin, interval, ended, interval / 2);
            let gap = next - ended;
            assert!(
                gap >= interval / 2 && gap < interval * 3 / 2,
                "{index}: {gap:?}"
            );
            assert_eq!(
                (next - slots.origin).as_nanos() % interval.as_nanos(),
                0,
                "on the grid"
            );
        }
        // A grid that has not begun: its first slot, not the one after.
        let origin = epoch + Duration::from_secs(3_000);
        assert_eq!(next_slot(origin, interval, epoch), origin);
        assert_eq!(postponed(origin, interval, epoch, interval / 2), origin);
        assert_eq!(
            postponed(
                origin,
                interval,
                epoch + Duration::from_secs(2_900),
                interval / 2
            ),
            origin + interval
        );
    }

    fn config(targets: &[(&str, u64, &str)], min_interval_per_host: &str) -> Config {
        let yaml = targets
            .iter()
            .map(|(name, secs, url)| {
                format!(
                    "  - name: {name}\n    interval: {secs}s\n    timeout: 1s\n    http: {{ url: \"{url}\" }}\n"
                )
            })
            .collect::<String>();
        Config::from_bytes(
            format!("min_interval_per_host: {min_interval_per_host}\ntargets:\n{yaml}").as_bytes(),
            std::path::Path::new("x.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn grid_shares_go_by_interval_and_prompt_shares_by_host_in_config_order() {
        let (a, b) = ("http://127.0.0.1:9/a", "http://localhost:9/b");
        let config = config(
            &[("a", 5, a), ("b", 60, b), ("c", 5, a), ("d", 60, a)],
            "0s",
        );
        let refs: Vec<&Arc<TargetConfig>> = config.targets.iter().collect();
        let starts = starts(&refs, config.min_interval_per_host);
        let grid: Vec<Stratum> = starts.iter().map(|s| s.grid).collect();
        let prompt: Vec<Stratum> = starts.iter().map(|s| s.prompt).collect();
        let (s, n) = (Stratum::new, 2);
        assert_eq!(grid, [s(0, n), s(0, n), s(1, n), s(1, n)]);
        assert_eq!(prompt, [s(0, 3), s(0, 1), s(1, 3), s(2, 3)]);
        // A few targets a host: the plain 10 s.
        assert!(starts.iter().all(|s| s.prompt_spread == FIRST_PROBE_SPREAD));
        assert_eq!(Stratum::new(5, 3), Stratum::new(2, 3), "clamped");
        assert_eq!(Stratum::new(0, 0), Stratum::new(0, 1));
    }

    #[test]
    fn many_targets_on_one_host_spread_their_prompt_probes_further() {
        let url = "http://127.0.0.1:9/health";
        let many: Vec<(String, u64, &str)> =
            (0..300).map(|i| (format!("t{i}"), 3_600, url)).collect();
        let many: Vec<(&str, u64, &str)> =
            many.iter().map(|(n, s, u)| (n.as_str(), *s, *u)).collect();
        for (spacing, spread) in [("0s", 30), ("1s", 600)] {
            let config = config(&many, spacing);
            let refs: Vec<&Arc<TargetConfig>> = config.targets.iter().collect();
            let starts = starts(&refs, config.min_interval_per_host);
            // 300 × 100 ms; with 1 s spacing, 300 × 2 s.
            assert!(
                starts
                    .iter()
                    .all(|s| s.prompt_spread == Duration::from_secs(spread)),
                "{spacing}: {:?}",
                starts[0]
            );
        }
    }

    #[test]
    fn a_stratum_offset_stays_within_its_share_of_the_span() {
        let span = Duration::from_secs(60);
        for index in 0..7 {
            let stratum = Stratum::new(index, 7);
            for _ in 0..200 {
                let offset = stratum.offset(span);
                assert!(
                    offset >= span * index as u32 / 7 && offset < span * (index as u32 + 1) / 7
                );
            }
        }
        // A span too short to share gives the share's start.
        assert_eq!(
            Stratum::new(3, 7).offset(Duration::from_nanos(2)),
            Duration::ZERO
        );
    }
}
