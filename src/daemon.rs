//! The long-running exporter: load config, start the runner and the server,
//! reload on request, drain on SIGTERM/SIGINT.
//!
//! Reloads come from `POST /-/reload`, SIGHUP, and a poll of the config
//! file's content. Whatever the trigger, one complete read of the file is
//! validated whole and either applied (reconcile by diff) or rejected with
//! the running config left untouched. The web config (`--web.config.file`)
//! is reloaded by the same triggers, its poll also covering the
//! certificate, key and CA files it names, and is likewise swapped whole
//! or not at all. The poll acts only on content that
//! reads the same twice in a row a moment apart and is not empty, so a
//! writer that truncates and then writes is not caught half-way while it
//! is still writing (see [`FileWatch`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::http::HttpClients;
use crate::metrics::{ConfigFile, ExporterStatus, Metrics};
use crate::runner::{ProbeHook, ReconcileStats, Runner};
use crate::server::{self, AppState, ReloadRequest};
use crate::shard::Shard;
use crate::webconfig::LiveWeb;

/// How often the config file is checked for changed content.
pub const CONFIG_POLL_INTERVAL: Duration = Duration::from_secs(3);
/// Changed content is re-read after this to see whether a writer is done.
const SETTLE_DELAY: Duration = Duration::from_millis(500);
/// Re-reads per poll tick while the content keeps changing.
const SETTLE_ATTEMPTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    // The cause is the error's source: `main` prints the chain.
    #[error("cannot listen on {address}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// What the daemon needs from the command line.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config_file: PathBuf,
    pub listen_address: String,
    pub telemetry_path: String,
    pub shutdown_timeout: Duration,
    /// Which targets of the config this replica probes.
    pub shard: Shard,
    /// `--web.config.file`: TLS, basic auth, response headers.
    pub web_config_file: Option<PathBuf>,
}

/// Parts [`start`] builds itself, which in-process tests replace: a client
/// pool with a fake DNS resolver, a probe hook, a faster file poll, a
/// shorter header timeout, a web config handle whose counters they read.
pub struct Parts {
    pub clients: HttpClients,
    #[doc(hidden)]
    pub probe_hook: Option<ProbeHook>,
    pub config_poll_interval: Duration,
    pub header_read_timeout: Duration,
    /// How long a `/metrics` scraper may take nothing of its body
    /// ([`server::SCRAPE_STALL_TIMEOUT`] but for tests).
    pub scrape_stall_timeout: Duration,
    /// The web config, already loaded from `web_config_file` (and
    /// reloaded from it). None: [`start_with`] loads it itself.
    pub web: Option<Arc<LiveWeb>>,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            clients: HttpClients::new(),
            probe_hook: None,
            config_poll_interval: CONFIG_POLL_INTERVAL,
            header_read_timeout: server::HEADER_READ_TIMEOUT,
            scrape_stall_timeout: server::SCRAPE_STALL_TIMEOUT,
            web: None,
        }
    }
}

/// Listen on `address`. The unspecified IPv6 address (`[::]:PORT`, what
/// `:PORT` means) takes IPv4 too, whatever the host's `bindv6only`: on an
/// IPv6-first Kubernetes cluster the kubelet's probes and Prometheus come
/// to the pod's IPv6 address, elsewhere to its IPv4 one. A host without
/// IPv6 gets `0.0.0.0:PORT` instead, as Go's `:PORT` does.
pub async fn bind_listener(address: &str) -> std::io::Result<TcpListener> {
    let parsed: Option<std::net::SocketAddr> = address.parse().ok();
    let Some(any_v6) = parsed.filter(|a| a.is_ipv6() && a.ip().is_unspecified()) else {
        return TcpListener::bind(address).await;
    };
    match dual_stack(any_v6) {
        Ok(listener) => Ok(listener),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Err(error),
        Err(error) => {
            let v4 = std::net::SocketAddr::from(([0, 0, 0, 0], any_v6.port()));
            tracing::debug!(%error, fallback = %v4, "no IPv6 listener");
            TcpListener::bind(v4).await.map_err(|_| error)
        }
    }
}

fn dual_stack(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As tokio's own bind: a restart may reuse the port at once.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Run until SIGTERM/SIGINT. Returns Err only for start-up failures.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    let shutdown = CancellationToken::new();
    let listener = bind_listener(&opts.listen_address)
        .await
        .map_err(|source| DaemonError::Listen {
            address: opts.listen_address.clone(),
            source,
        })?;
    let config = Config::load(&opts.config_file)?;
    let web = LiveWeb::load(opts.web_config_file.as_deref())?;
    let parts = Parts {
        web: Some(Arc::new(web)),
        ..Parts::default()
    };
    let started = start_with(opts, config, listener, shutdown.clone(), parts);
    tokio::spawn(watch_signals(shutdown));
    started.await;
    Ok(())
}

/// The running exporter around an already-bound listener (tests bind port 0).
pub async fn start(
    opts: DaemonOptions,
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    start_with(opts, config, listener, shutdown, Parts::default()).await;
}

/// [`start`] with some parts supplied by the caller. Returns once
/// `shutdown` is cancelled and the drain has finished or its grace period
/// (`shutdown_timeout`, shared by HTTP connections and probes) is over.
pub async fn start_with(
    opts: DaemonOptions,
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    parts: Parts,
) {
    let web = match parts.web {
        Some(web) => web,
        None => match LiveWeb::load(opts.web_config_file.as_deref()) {
            Ok(web) => Arc::new(web),
            Err(e) => {
                // Never serve without the TLS and auth the operator asked for.
                tracing::error!(error = %e, "invalid web config; not starting");
                return;
            }
        },
    };
    let status = Arc::new(ExporterStatus::for_shard(opts.shard));
    let runner = Arc::new(Runner::with_hook(
        parts.clients,
        shutdown.child_token(),
        parts.probe_hook,
    ));
    let stats = apply_config(config, opts.shard, &runner, &status);
    status.record_reload(ConfigFile::Exporter, true);
    tracing::info!(
        targets = stats.started,
        shard_index = opts.shard.index(),
        shard_count = opts.shard.count(),
        config = %opts.config_file.display(),
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        version = crate::metrics::VERSION,
        web = %web.current().summary(),
        "upstream-exporter started"
    );
    // Installed before anything can report ready: SIGHUP's default action
    // would terminate the process.
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e, "cannot install the SIGHUP handler"))
        .ok();
    #[cfg(not(unix))]
    let hangup = None;
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let state = Arc::new(AppState {
        metrics: Metrics::new(runner.targets(), status.clone()),
        runner: runner.clone(),
        targets: runner.targets(),
        telemetry_path: opts.telemetry_path.clone(),
        reload: Some(reload_tx),
        config_loaded: true.into(),
        web: web.clone(),
        limits: server::HeavyLimits::new(parts.scrape_stall_timeout),
        was_ready: false.into(),
    });
    let reloader = tokio::spawn(reload_loop(
        Reloader {
            path: opts.config_file.clone(),
            shard: opts.shard,
            runner: runner.clone(),
            status,
            web,
        },
        reload_rx,
        hangup,
        parts.config_poll_interval,
        shutdown.clone(),
    ));
    let grace = opts.shutdown_timeout;
    let serve = server::serve(
        listener,
        state.clone(),
        shutdown.clone(),
        grace,
        parts.header_read_timeout,
    );
    // Probes drain at the same time as HTTP connections, so the whole
    // shutdown fits in one grace period.
    let drain = async {
        shutdown.cancelled().await;
        state.config_loaded.store(false, Ordering::Release);
        runner.drain(grace).await
    };
    let ((), drained) = tokio::join!(serve, drain);
    if !drained {
        tracing::warn!("probes still running after the shutdown grace period; exiting anyway");
    }
    reloader.abort();
    tracing::info!("upstream-exporter stopped");
}

/// SIGTERM or SIGINT cancel `shutdown`.
async fn watch_signals(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, draining"),
            _ = int.recv() => tracing::info!("SIGINT received, draining"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}

/// What a reload touches.
struct Reloader {
    path: PathBuf,
    shard: Shard,
    runner: Arc<Runner>,
    status: Arc<ExporterStatus>,
    web: Arc<LiveWeb>,
}

impl Reloader {
    /// An explicit reload (HTTP or SIGHUP): both files, now. The error
    /// text holds every failure (each file keeps running its old content).
    fn reload_now(&self, watch: &mut FileWatch, web_watch: &mut FileWatch) -> Result<(), String> {
        let config = self.reload_config_now(watch);
        // Each file keeps its own verdict: a good web config does not mark
        // a reload whose exporter config failed as successful.
        let web = self.apply_web();
        // Settled after the load: a new config may name other files.
        if let Some(content) = self.web.content() {
            web_watch.settled(&content);
        }
        match (config, web) {
            (Ok(()), Ok(())) => Ok(()),
            // Said, so a 400 is not taken for "nothing changed".
            (Ok(()), Err(e)) => Err(format!(
                "{e}\n{} was reloaded; only the web config was rejected",
                self.path.display()
            )),
            (Err(e), Ok(())) => Err(e),
            (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
        }
    }

    /// Re-read the web config and swap it in, or keep the running one.
    fn apply_web(&self) -> Result<(), String> {
        if self.web.path().is_none() {
            return Ok(());
        }
        match self.web.reload() {
            Ok(()) => {
                self.status.record_reload(ConfigFile::Web, true);
                tracing::info!(web = %self.web.current().summary(), "web config reloaded");
                Ok(())
            }
            Err(msg) => {
                self.status.record_reload(ConfigFile::Web, false);
                tracing::error!(error = %msg, "web config reload failed; keeping the running web config");
                Err(msg)
            }
        }
    }

    fn reload_config_now(&self, watch: &mut FileWatch) -> Result<(), String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                watch.settled(&bytes);
                self.apply_bytes(&bytes)
            }
            Err(e) => {
                let msg = format!("{}: cannot read: {e}", self.path.display());
                // Whatever comes back, the running content included, is
                // loaded by the poll: the reload gauge is 0 until it is.
                watch.forget();
                self.status.record_reload(ConfigFile::Exporter, false);
                tracing::error!(error = %msg, "config reload failed; keeping the running config");
                Err(msg)
            }
        }
    }

    /// Validate one complete read of the file and apply it, or reject it
    /// whole (the running config stays).
    fn apply_bytes(&self, bytes: &[u8]) -> Result<(), String> {
        apply_config_bytes(bytes, &self.path, self.shard, &self.runner, &self.status)
    }
}

/// Validate `bytes` as the config at `path` and reconcile the runner to
/// `shard`'s part of it, or reject it whole: a config that fails validation
/// touches nothing but the reload gauges. Returns the error text (every
/// issue with `file:line:column`).
pub fn apply_config_bytes(
    bytes: &[u8],
    path: &Path,
    shard: Shard,
    runner: &Runner,
    status: &ExporterStatus,
) -> Result<(), String> {
    match Config::from_bytes(bytes, path) {
        Ok(config) => {
            let stats = apply_config(config, shard, runner, status);
            status.record_reload(ConfigFile::Exporter, true);
            tracing::info!(
                kept = stats.kept,
                started = stats.started,
                restarted = stats.restarted,
                stopped = stats.stopped,
                "config reloaded"
            );
            Ok(())
        }
        Err(e) => {
            status.record_reload(ConfigFile::Exporter, false);
            let msg = e.annotated().to_string();
            tracing::error!(error = %msg, "config reload failed; keeping the running config");
            Err(msg)
        }
    }
}

/// Reconcile the runner to the targets of a validated `config` that `shard`
/// owns: the one place the shard filter is applied (start and every
/// reload).
fn apply_config(
    config: Config,
    shard: Shard,
    runner: &Runner,
    status: &ExporterStatus,
) -> ReconcileStats {
    let configured = config.targets.len();
    let config = shard.retain(config);
    status.record_configured_targets(configured);
    if config.targets.is_empty() && configured > 0 {
        tracing::info!(
            configured,
            shard_index = shard.index(),
            shard_count = shard.count(),
            "this shard owns none of the configured targets; the other shards probe them"
        );
    }
    runner.apply(&config)
}

#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = ();

/// Reloads from `POST /-/reload`, SIGHUP, and changed file content.
async fn reload_loop(
    reloader: Reloader,
    mut requests: mpsc::Receiver<ReloadRequest>,
    #[cfg_attr(not(unix), allow(unused_mut, unused_variables))] mut hangup: Option<Hangup>,
    poll_every: Duration,
    shutdown: CancellationToken,
) {
    let mut watch = FileWatch::new(std::fs::read(&reloader.path).ok().as_deref());
    let mut web_watch = FileWatch::new(reloader.web.content().as_deref());
    let mut poll = tokio::time::interval(poll_every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let sighup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let sighup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            request = requests.recv() => {
                let Some(reply) = request else { return };
                let result = reloader.reload_now(&mut watch, &mut web_watch);
                let _ = reply.send(result);
            }
            _ = sighup => {
                tracing::info!("SIGHUP received, reloading config");
                let _ = reloader.reload_now(&mut watch, &mut web_watch);
            }
            _ = poll.tick() => {
                poll_file(&reloader, &mut watch).await;
                poll_web_file(&reloader, &mut web_watch).await;
            }
        }
    }
}

/// One poll: if the content changed, re-read it until it holds still (or
/// give up until the next tick), then load exactly the bytes that held.
async fn poll_file(reloader: &Reloader, watch: &mut FileWatch) {
    for attempt in 0..=SETTLE_ATTEMPTS {
        match watch.observe(std::fs::read(&reloader.path).ok()) {
            Seen::Unchanged => return,
            Seen::Settled(bytes) => {
                tracing::info!("config file changed on disk, reloading");
                watch.settled(&bytes);
                let _ = reloader.apply_bytes(&bytes);
                return;
            }
            Seen::Changing if attempt < SETTLE_ATTEMPTS => {
                tokio::time::sleep(SETTLE_DELAY).await;
            }
            Seen::Changing => return,
        }
    }
}

/// [`poll_file`] for the web config and the files it names.
async fn poll_web_file(reloader: &Reloader, watch: &mut FileWatch) {
    if reloader.web.path().is_none() {
        return;
    }
    for attempt in 0..=SETTLE_ATTEMPTS {
        match watch.observe(reloader.web.content()) {
            Seen::Unchanged => return,
            Seen::Settled(bytes) => {
                tracing::info!("web config changed on disk, reloading");
                watch.settled(&bytes);
                let _ = reloader.apply_web();
                // A new config may name other files: watch what it is made of now.
                if let Some(content) = reloader.web.content() {
                    watch.settled(&content);
                }
                return;
            }
            Seen::Changing if attempt < SETTLE_ATTEMPTS => {
                tokio::time::sleep(SETTLE_DELAY).await;
            }
            Seen::Changing => return,
        }
    }
}

/// What one read of the config file means for the poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Same content as last handled, or nothing readable: nothing to do.
    Unchanged,
    /// New content that has not yet read the same twice in a row (or an
    /// empty file, the middle of a truncate-then-write): wait.
    Changing,
    /// New content that read the same twice in a row: load these bytes.
    Settled(Vec<u8>),
}

/// The config-file poll's memory: which content was last handled (loaded
/// or rejected, so a bad file is reported once, not at every poll) and
/// which new content was seen on the previous read.
///
/// Pure (no I/O, no clock), so the debounce is unit-tested read by read.
#[derive(Debug, Clone, Default)]
pub struct FileWatch {
    handled: Option<u64>,
    candidate: Option<u64>,
}

impl FileWatch {
    /// Start from the content the running config was loaded from.
    pub fn new(loaded: Option<&[u8]>) -> Self {
        FileWatch {
            handled: loaded.map(checksum),
            candidate: None,
        }
    }

    /// Feed one read of the file (`None`: unreadable, e.g. mid-swap or
    /// deleted; the running config stays).
    pub fn observe(&mut self, read: Option<Vec<u8>>) -> Seen {
        let Some(bytes) = read else {
            return Seen::Unchanged;
        };
        if bytes.is_empty() {
            // Truncated and not yet written: never a config anyone meant.
            self.candidate = None;
            return Seen::Changing;
        }
        let sum = checksum(&bytes);
        if Some(sum) == self.handled {
            self.candidate = None;
            return Seen::Unchanged;
        }
        if Some(sum) == self.candidate {
            return Seen::Settled(bytes);
        }
        self.candidate = Some(sum);
        Seen::Changing
    }

    /// `bytes` were loaded or rejected: do not act on them again until the
    /// content changes.
    pub fn settled(&mut self, bytes: &[u8]) {
        self.handled = Some(checksum(bytes));
        self.candidate = None;
    }

    /// The file could not be read for a reload that was asked for: the
    /// next content read, even the one still running, is new.
    pub fn forget(&mut self) {
        self.handled = None;
        self.candidate = None;
    }
}

/// Content checksum (not security relevant: it only detects edits).
fn checksum(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[::]:PORT` (what `:PORT` means) takes IPv4 connections too; a port
    /// already taken is an error, not a quiet fall-back to IPv4 alone.
    #[tokio::test]
    async fn every_interface_takes_ipv4_and_a_taken_port_is_an_error() {
        let listener = bind_listener("[::]:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("an IPv4 client is accepted");
        accepted.await.unwrap().expect("accepted");

        let held = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let error = bind_listener(&format!("[::]:{port}")).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    }

    const OLD: &str = "targets:\n  - name: a\n    statuspage: { url: \"http://127.0.0.1:9/\" }\n";
    const NEW: &str = "targets:\n  - name: a\n    statuspage: { url: \"http://127.0.0.1:9/\" }\n  - name: b\n    statuspage: { url: \"http://127.0.0.1:9/b\" }\n";

    /// Replays a writer that truncates the file and writes it in pieces,
    /// with the poll reading between the steps.
    #[test]
    fn truncate_then_write_is_loaded_only_when_whole_and_still() {
        let mut watch = FileWatch::new(Some(OLD.as_bytes()));
        assert_eq!(watch.observe(Some(OLD.into())), Seen::Unchanged);
        // Truncated: an empty file is never loaded, however long it stays.
        assert_eq!(watch.observe(Some(Vec::new())), Seen::Changing);
        assert_eq!(watch.observe(Some(Vec::new())), Seen::Changing);
        // The writer made progress between every two reads: never settled.
        let half = &NEW.as_bytes()[..NEW.len() / 2];
        let most = &NEW.as_bytes()[..NEW.len() - 10];
        assert_eq!(watch.observe(Some(half.into())), Seen::Changing);
        assert_eq!(watch.observe(Some(most.into())), Seen::Changing);
        assert_eq!(watch.observe(Some(NEW.into())), Seen::Changing);
        // Done writing: the same complete content twice.
        assert_eq!(
            watch.observe(Some(NEW.into())),
            Seen::Settled(NEW.as_bytes().to_vec())
        );
        watch.settled(NEW.as_bytes());
        assert_eq!(watch.observe(Some(NEW.into())), Seen::Unchanged);
        // Unreadable (mid-swap, deleted) keeps what runs.
        assert_eq!(watch.observe(None), Seen::Unchanged);
    }

    /// A handled (even rejected) content is not acted on again.
    #[test]
    fn handled_content_is_not_reloaded_at_every_poll() {
        let mut watch = FileWatch::new(Some(OLD.as_bytes()));
        let bad = b"targets: [\n".to_vec();
        assert_eq!(watch.observe(Some(bad.clone())), Seen::Changing);
        assert_eq!(watch.observe(Some(bad.clone())), Seen::Settled(bad.clone()));
        watch.settled(&bad);
        for _ in 0..3 {
            assert_eq!(watch.observe(Some(bad.clone())), Seen::Unchanged);
        }
        // Going back to the old content is a change again.
        assert_eq!(watch.observe(Some(OLD.into())), Seen::Changing);
    }

    /// A half-written file that held still long enough to be read twice
    /// is still validated whole: cut inside a target it is rejected and
    /// the runner keeps every running target untouched.
    #[tokio::test]
    async fn settled_half_file_is_rejected_whole() {
        let runner = Runner::new(HttpClients::new(), CancellationToken::new());
        let status = ExporterStatus::default();
        let path = Path::new("exporter.yaml");
        apply_config_bytes(NEW.as_bytes(), path, Shard::default(), &runner, &status).unwrap();
        let before: Vec<_> = runner.targets().load().targets.clone();
        assert_eq!(before.len(), 2);

        let cut = NEW.find("  - name: b").unwrap() + "  - name: b\n".len();
        let half = &NEW.as_bytes()[..cut];
        let mut watch = FileWatch::new(Some(NEW.as_bytes()));
        assert_eq!(watch.observe(Some(half.into())), Seen::Changing);
        let Seen::Settled(bytes) = watch.observe(Some(half.into())) else {
            panic!("a half file that held still is handed to validation");
        };
        let err = apply_config_bytes(&bytes, path, Shard::default(), &runner, &status).unwrap_err();
        assert!(err.contains("exporter.yaml:"), "{err}");
        assert!(!status.reload_successful());
        let after = runner.targets().load().targets.clone();
        assert_eq!(after.len(), 2);
        for (a, b) in before.iter().zip(&after) {
            assert!(Arc::ptr_eq(a, b), "running targets were touched");
        }
        runner.drain(Duration::from_secs(1)).await;
    }
}
