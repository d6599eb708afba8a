//! `upstream-exporter` binary: parse flags, set up logs, run the daemon.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use upstream_exporter::cli::{Cli, normalize_listen_address};
use upstream_exporter::config::Config;
use upstream_exporter::daemon::{self, DaemonOptions};
use upstream_exporter::webconfig::WebSecurity;

fn main() -> ExitCode {
    let cli = Cli::parse();
    upstream_exporter::logging::init(cli.log_level, cli.log_format);
    if cli.config_check {
        return check(&cli);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upstream-exporter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--config.check`: validate the config file and, when given, the web
/// config (with the certificate and key files it names).
fn check(cli: &Cli) -> ExitCode {
    let mut ok = true;
    match Config::load(&cli.config_file) {
        Ok(config) => println!(
            "OK: {} targets in {}",
            config.targets.len(),
            cli.config_file.display()
        ),
        Err(e) => {
            eprintln!("{e}");
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

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let opts = DaemonOptions {
        config_file: cli.config_file,
        listen_address: normalize_listen_address(&cli.listen_address),
        telemetry_path: cli.telemetry_path,
        shutdown_timeout: cli.shutdown_timeout,
        web_config_file: cli.web_config_file,
    };
    runtime.block_on(daemon::run(opts))?;
    Ok(())
}
