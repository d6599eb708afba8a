//! Command line (SPEC §6): flags, each with an `UPSTREAM_EXPORTER_*`
//! environment fallback.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::logging::{LogFormat, LogLevel};

const EXAMPLES: &str = "\
Examples:
  upstream-exporter --config.file=exporter.yaml
  upstream-exporter --config.file=exporter.yaml --config.check
  UPSTREAM_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:9999 upstream-exporter --log.format=json
";

/// Prometheus exporter for the health of the services you depend on:
/// status pages, HTTP health endpoints and JSON APIs.
#[derive(Debug, Clone, Parser)]
#[command(name = "upstream-exporter", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Path of the configuration file.
    #[arg(
        long = "config.file",
        env = "UPSTREAM_EXPORTER_CONFIG_FILE",
        default_value = "exporter.yaml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Validate the configuration, print OK or the errors, and exit 0 or 1.
    #[arg(long = "config.check", env = "UPSTREAM_EXPORTER_CONFIG_CHECK")]
    pub config_check: bool,

    /// Address to listen on for HTTP (`:PORT` listens on every interface).
    #[arg(
        long = "web.listen-address",
        env = "UPSTREAM_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = ":10138"
    )]
    pub listen_address: String,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = "UPSTREAM_EXPORTER_WEB_TELEMETRY_PATH", default_value = "/metrics", value_parser = parse_telemetry_path)]
    pub telemetry_path: String,

    /// Exporter-toolkit web config file (TLS, basic auth).
    #[arg(long = "web.config.file", env = "UPSTREAM_EXPORTER_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,

    /// How long SIGTERM waits for in-flight probes and requests.
    #[arg(long = "web.shutdown-timeout", env = "UPSTREAM_EXPORTER_WEB_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration_arg)]
    pub shutdown_timeout: Duration,

    /// How many replicas split the targets between them (rendezvous hashing
    /// of target names; see README "Sharding").
    #[arg(long = "shard.count", env = "UPSTREAM_EXPORTER_SHARD_COUNT", default_value = "1", value_parser = crate::shard::parse_count)]
    pub shard_count: u32,

    /// Which replica this is, from 0 to --shard.count - 1; a StatefulSet pod
    /// name such as `upstream-exporter-2` counts as its ordinal.
    #[arg(long = "shard.index", env = "UPSTREAM_EXPORTER_SHARD_INDEX", default_value = "0", value_parser = crate::shard::parse_index)]
    pub shard_index: u32,

    /// Only log messages with at least this severity.
    #[arg(
        long = "log.level",
        env = "UPSTREAM_EXPORTER_LOG_LEVEL",
        value_enum,
        default_value = "info",
        global = true
    )]
    pub log_level: LogLevel,

    /// Log line format.
    #[arg(
        long = "log.format",
        env = "UPSTREAM_EXPORTER_LOG_FORMAT",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
}

fn parse_telemetry_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && s.len() > 1 {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} must be an absolute path such as /metrics"))
    }
}

/// `:10138` → `0.0.0.0:10138`; anything else is used as given.
pub fn normalize_listen_address(addr: &str) -> String {
    match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_address_forms() {
        assert_eq!(normalize_listen_address(":10138"), "0.0.0.0:10138");
        assert_eq!(normalize_listen_address("127.0.0.1:1"), "127.0.0.1:1");
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "upstream-exporter",
            "--config.file=x.yaml",
            "--web.shutdown-timeout=3s",
            "--log.format=json",
        ])
        .unwrap();
        assert_eq!(cli.config_file, PathBuf::from("x.yaml"));
        assert_eq!(cli.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn shard_flags_parse() {
        let cli = Cli::try_parse_from([
            "upstream-exporter",
            "--shard.count=3",
            "--shard.index=upstream-exporter-2",
        ])
        .unwrap();
        assert_eq!((cli.shard_index, cli.shard_count), (2, 3));
        for bad in ["--shard.count=0", "--shard.count=x", "--shard.index=-1"] {
            let err = Cli::try_parse_from(["upstream-exporter", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
    }
}
