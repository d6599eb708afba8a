//! `upstream-exporter` binary: parse flags, set up logs, run the daemon.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use upstream_exporter::cli::{Cli, normalize_listen_address};
use upstream_exporter::config::Config;
use upstream_exporter::daemon::{self, DaemonOptions};

fn main() -> ExitCode {
    let cli = Cli::parse();
    upstream_exporter::logging::init(cli.log_level, cli.log_format);
    if cli.config_check {
        return match Config::load(&cli.config_file) {
            Ok(config) => {
                println!(
                    "OK: {} targets in {}",
                    config.targets.len(),
                    cli.config_file.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upstream-exporter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.web_config_file.is_some() {
        anyhow::bail!("--web.config.file is not supported by this version yet");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let opts = DaemonOptions {
        config_file: cli.config_file,
        listen_address: normalize_listen_address(&cli.listen_address),
        telemetry_path: cli.telemetry_path,
        shutdown_timeout: cli.shutdown_timeout,
    };
    runtime.block_on(daemon::run(opts))?;
    Ok(())
}
