//! The long-running exporter: load config, start the runner and the server,
//! reload on request, drain on SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::http::HttpClients;
use crate::metrics::{ExporterStatus, Metrics};
use crate::runner::Runner;
use crate::server::{self, AppState, ReloadRequest};

/// How often the config file is checked for changed content.
const CONFIG_POLL_INTERVAL: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address}: {source}")]
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
}

/// Run until SIGTERM/SIGINT. Returns Err only for start-up failures.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind(&opts.listen_address)
        .await
        .map_err(|source| DaemonError::Listen {
            address: opts.listen_address.clone(),
            source,
        })?;
    let config = Config::load(&opts.config_file)?;
    let started = start(opts, config, listener, shutdown.clone());
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
    let status = Arc::new(ExporterStatus::default());
    let runner = Arc::new(Runner::new(HttpClients::new(), shutdown.child_token()));
    let stats = runner.apply(&config);
    status.record_reload(true);
    tracing::info!(
        targets = stats.started,
        config = %opts.config_file.display(),
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        version = crate::metrics::VERSION,
        "upstream-exporter started"
    );
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let state = Arc::new(AppState {
        metrics: Metrics::new(runner.targets(), status.clone()),
        runner: runner.clone(),
        targets: runner.targets(),
        telemetry_path: opts.telemetry_path.clone(),
        reload: Some(reload_tx),
        config_loaded: true.into(),
    });
    let reloader = tokio::spawn(reload_loop(
        opts.config_file.clone(),
        runner.clone(),
        status,
        reload_rx,
        shutdown.clone(),
    ));
    server::serve(
        listener,
        state.clone(),
        shutdown.clone(),
        opts.shutdown_timeout,
    )
    .await;
    state.config_loaded.store(false, Ordering::Release);
    if !runner.drain(opts.shutdown_timeout).await {
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

/// Reloads from `POST /-/reload`, SIGHUP, and changed file content.
async fn reload_loop(
    path: PathBuf,
    runner: Arc<Runner>,
    status: Arc<ExporterStatus>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    shutdown: CancellationToken,
) {
    let mut last_checksum = checksum_of(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut poll = tokio::time::interval(CONFIG_POLL_INTERVAL);
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
                let result = reload(&path, &runner, &status, &mut last_checksum);
                let _ = reply.send(result);
            }
            _ = sighup => {
                tracing::info!("SIGHUP received, reloading config");
                let _ = reload(&path, &runner, &status, &mut last_checksum);
            }
            _ = poll.tick() => {
                let now = checksum_of(&path);
                if now.is_some() && now != last_checksum {
                    // A writer may still be writing: act only on content
                    // that is the same on two reads a moment apart.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if checksum_of(&path) == now {
                        tracing::info!("config file changed on disk, reloading");
                        let _ = reload(&path, &runner, &status, &mut last_checksum);
                    }
                }
            }
        }
    }
}

/// Load, validate and apply; a bad config is rejected whole.
fn reload(
    path: &Path,
    runner: &Runner,
    status: &ExporterStatus,
    last_checksum: &mut Option<u64>,
) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| {
        let msg = format!("{}: cannot read: {e}", path.display());
        status.record_reload(false);
        tracing::error!(error = %msg, "config reload failed; keeping the running config");
        msg
    })?;
    *last_checksum = Some(checksum(&bytes));
    match Config::from_bytes(&bytes, path) {
        Ok(config) => {
            let stats = runner.apply(&config);
            status.record_reload(true);
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
            status.record_reload(false);
            let msg = e.to_string();
            tracing::error!(error = %msg, "config reload failed; keeping the running config");
            Err(msg)
        }
    }
}

fn checksum_of(path: &Path) -> Option<u64> {
    std::fs::read(path).ok().map(|b| checksum(&b))
}

/// Content checksum (not security relevant: it only detects edits).
fn checksum(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}
