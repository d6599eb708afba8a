//! `upstream-exporter` binary: parse flags, set up logs, run the daemon
//! (or the `probe` / `completions` subcommand).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap::error::ErrorKind;
use upstream_exporter::cli::{Cli, Command, normalize_listen_address};
use upstream_exporter::config::Config;
use upstream_exporter::daemon::{self, DaemonError, DaemonOptions};
use upstream_exporter::probe_cmd;
use upstream_exporter::shard::Shard;
use upstream_exporter::webconfig::WebSecurity;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    upstream_exporter::logging::init(cli.effective_log_level(), cli.log_format);
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let written = upstream_exporter::cli::write_completions(*shell, &mut std::io::stdout());
            return match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("upstream-exporter: cannot write the completion script: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            };
        }
        Some(Command::Probe(args)) => {
            return match probe_cmd::run(&cli.config_file, args) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(probe_cmd::EXIT_USAGE)
                }
            };
        }
        None => {}
    }
    // Each shard flag is checked alone by clap; the pair is checked here,
    // with clap's usage error (exit 2).
    let shard = Shard::new(cli.shard_index, cli.shard_count)
        .unwrap_or_else(|e| Cli::command().error(ErrorKind::ValueValidation, e).exit());
    if cli.config_check {
        return check(&cli, shard);
    }
    bound_malloc_arenas();
    if let Some((before, after)) = upstream_exporter::process::raise_open_files_limit() {
        tracing::debug!(
            before,
            after,
            "raised the soft limit on open files to the hard one"
        );
    }
    match run(cli, shard) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<DaemonError>() {
                // The config error with the offending lines shown.
                Some(DaemonError::Config(config)) => {
                    eprintln!("upstream-exporter: {}", config.annotated())
                }
                _ => eprintln!("upstream-exporter: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// `--config.check`: validate the config file and, when given, the web
/// config (with the certificate and key files it names).
fn check(cli: &Cli, shard: Shard) -> ExitCode {
    let mut ok = true;
    match Config::load(&cli.config_file) {
        Ok(config) => {
            let total = config.targets.len();
            let owned = match shard.count() {
                1 => String::new(),
                _ => format!("; {shard} owns {}", shard.retain(config).targets.len()),
            };
            println!(
                "OK: {total} targets in {}{owned}",
                cli.config_file.display()
            );
        }
        Err(e) => {
            eprintln!("{}", e.annotated());
            ok = false;
        }
    }
    if let Some(path) = &cli.web_config_file {
        match WebSecurity::load(path) {
            Ok(web) => println!("OK: web config {} ({})", path.display(), web.summary()),
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Heap arenas glibc may create (`MALLOC_ARENA_MAX`), unless the
/// environment already says.
const MALLOC_ARENAS: &str = "2";

/// Start the daemon again, in place (same PID, arguments and environment),
/// with `MALLOC_ARENA_MAX` set, if it is not set already.
///
/// glibc's malloc gives threads their own arenas, up to eight per core,
/// and what one arena frees is kept for that arena alone. Here the
/// `/metrics` render threads (started per scrape), the blocking pool and
/// the async worker each end up with one, and each keeps the high-water
/// mark of what it once held: at 10,000 targets the resident size after 60
/// scrapes varied from 59.5 to 67.1 MiB between runs by default, against
/// 57.7-59.4 MiB with two arenas (`MALLOC_ARENA_MAX=1` saved ~3 MiB more
/// but made scrapes slower). glibc reads the variable only at start-up, hence the
/// `exec`. Any value the operator sets is left alone (and stops this),
/// and if `exec` fails the daemon simply runs on as it is.
fn bound_malloc_arenas() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt as _;
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // Returns only if the exec failed.
    let error = command
        .args(args)
        .env("MALLOC_ARENA_MAX", MALLOC_ARENAS)
        .exec();
    tracing::debug!(%error, "could not restart with MALLOC_ARENA_MAX set; running on");
}

/// Async worker threads unless `TOKIO_WORKER_THREADS` says otherwise.
/// Probes are I/O: 10,000 targets every 5 s keep one worker ~25 % busy,
/// and every wake-up handed between two workers cost a cross-CPU
/// interrupt; at 5,000 targets one worker took 112-136 µs of CPU per
/// probe against 163-257 µs with one per core (back-to-back runs). What is
/// heavy runs off the async worker anyway: `/metrics` renders on every
/// core (`render`), bcrypt on the blocking pool.
const ASYNC_WORKERS: usize = 1;

fn run(cli: Cli, shard: Shard) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(ASYNC_WORKERS);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let opts = DaemonOptions {
        config_file: cli.config_file,
        listen_address: normalize_listen_address(&cli.listen_address),
        telemetry_path: cli.telemetry_path,
        shutdown_timeout: cli.shutdown_timeout,
        shard,
        web_config_file: cli.web_config_file,
    };
    let result = runtime.block_on(daemon::run(opts));
    // Dropping the runtime would wait for every blocking thread, and a
    // system DNS lookup (`getaddrinfo` on the blocking pool) cannot be
    // cancelled: one hung on an unanswering resolver would hold the exit
    // for as long as the resolver's own timeouts. The daemon has drained
    // by now; anything still blocking is abandoned with the process.
    runtime.shutdown_timeout(BLOCKING_THREADS_GRACE);
    result?;
    Ok(())
}

/// How long the exit waits for blocking threads after the daemon drained.
const BLOCKING_THREADS_GRACE: std::time::Duration = std::time::Duration::from_millis(500);
