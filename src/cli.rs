//! Command line (SPEC §6): flags, each with an `UPSTREAM_EXPORTER_*`
//! environment fallback, and the subcommands. With no subcommand the
//! exporter runs as a daemon; `probe` runs one round now and `completions`
//! prints a shell completion script. `--config.file` and `--log.*` are
//! global: they work before or after a subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::logging::{LogFormat, LogLevel};
use crate::probe_cmd::{ColorChoice, FailOn, OutputFormat};

/// The program's name, as completion scripts register it.
pub const BIN_NAME: &str = "upstream-exporter";

const EXAMPLES: &str = "\
Examples:
  upstream-exporter --config.file=exporter.yaml
  upstream-exporter --config.file=exporter.yaml --config.check
  upstream-exporter probe                        # every target once, as a table
  upstream-exporter probe github --output=json   # one target, JSON for scripts
  upstream-exporter completions bash > ~/.local/share/bash-completion/completions/upstream-exporter
  UPSTREAM_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:9999 upstream-exporter --log.format=json
";

const PROBE_EXAMPLES: &str = "\
Exit status:
  0  every target answered, and no page is at or past --fail-on
  1  a probe failed, or (with the default --fail-on=degraded) a page is degraded
     or worse; maintenance alone is not a failure unless --fail-on=maintenance
  2  the config is invalid, or a TARGET is not in it

Examples:
  upstream-exporter probe
  upstream-exporter probe github openai --config.file=/etc/upstream-exporter/exporter.yaml
  upstream-exporter probe --output=json | jq -r '.targets[] | select(.success != true) | .name'
  upstream-exporter probe --fail-on=failure || echo 'an upstream cannot be reached'
";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  upstream-exporter completions bash > ~/.local/share/bash-completion/completions/upstream-exporter
  upstream-exporter completions zsh > \"${fpath[1]}/_upstream-exporter\"
  upstream-exporter completions fish > ~/.config/fish/completions/upstream-exporter.fish
";

/// Prometheus exporter for the health of the services you depend on:
/// status pages, HTTP health endpoints and JSON APIs.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "upstream-exporter",
    version,
    about,
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Path of the configuration file.
    #[arg(
        long = "config.file",
        env = "UPSTREAM_EXPORTER_CONFIG_FILE",
        default_value = "exporter.yaml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Validate the configuration, print OK or the errors, and exit 0 or 1.
    /// Its variable takes `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`.
    #[arg(
        long = "config.check",
        env = "UPSTREAM_EXPORTER_CONFIG_CHECK",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub config_check: bool,

    /// Address to listen on for HTTP (`:PORT` listens on every interface,
    /// IPv4 and IPv6).
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

    /// Only log messages with at least this severity [default: info; warn
    /// for `probe`, whose stdout is its output]
    #[arg(
        long = "log.level",
        env = "UPSTREAM_EXPORTER_LOG_LEVEL",
        value_enum,
        global = true
    )]
    pub log_level: Option<LogLevel>,

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

/// The subcommands; without one the exporter runs as a daemon.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Probe the targets once now, print a table (or JSON) and exit 0, 1 or 2.
    ///
    /// Uses the daemon's config, HTTP clients, retries, timeouts and limits.
    /// Progress goes to stderr when it is a terminal; logs go to stderr at
    /// `warn` unless --log.level says otherwise.
    #[command(after_help = PROBE_EXAMPLES)]
    Probe(ProbeArgs),
    /// Print a completion script for a shell.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `upstream-exporter probe` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Targets to probe, by name [default: every target of the config]
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// `table` for people, `json` for scripts (the objects of /api/v1/targets).
    #[arg(
        long,
        short = 'o',
        value_enum,
        default_value_t = OutputFormat::Table,
        env = "UPSTREAM_EXPORTER_PROBE_OUTPUT"
    )]
    pub output: OutputFormat,

    /// What besides a failed probe makes the exit status 1.
    #[arg(
        long = "fail-on",
        value_enum,
        default_value_t = FailOn::Degraded,
        env = "UPSTREAM_EXPORTER_PROBE_FAIL_ON"
    )]
    pub fail_on: FailOn,

    /// Colour the table.
    #[arg(
        long,
        value_enum,
        default_value_t = ColorChoice::Auto,
        env = "UPSTREAM_EXPORTER_PROBE_COLOR"
    )]
    pub color: ColorChoice,
}

/// Flags of the daemon, which mean nothing to a subcommand.
const DAEMON_ONLY: [&str; 5] = [
    "config_check",
    "listen_address",
    "telemetry_path",
    "web_config_file",
    "shutdown_timeout",
];

impl Cli {
    /// Parse the process's arguments; print the error or help and exit on
    /// a bad command line (status 2).
    pub fn parse_args() -> Cli {
        Cli::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parse `args` (the first is the program name). Besides clap's own
    /// checks, a daemon flag given on the command line together with a
    /// subcommand is an error rather than silently ignored (its environment
    /// variable is ignored: a deployment's settings must not stop `probe`).
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::FromArgMatches as _;
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let Some((subcommand, _)) = matches.subcommand() else {
            return Ok(cli);
        };
        let given = DAEMON_ONLY
            .iter()
            .find(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine));
        if let Some(id) = given {
            let flag = command
                .get_arguments()
                .find(|a| a.get_id() == *id)
                .and_then(|a| a.get_long())
                .unwrap_or(id);
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("--{flag} is a flag of the exporter daemon; it cannot be used with `{subcommand}`"),
            ));
        }
        Ok(cli)
    }

    /// `--log.level` as given, else `info` for the daemon and `warn` for
    /// `probe` (so logs stay out of the way of its table).
    pub fn effective_log_level(&self) -> LogLevel {
        match (&self.log_level, &self.command) {
            (Some(level), _) => *level,
            (None, Some(Command::Probe(_))) => LogLevel::Warn,
            (None, _) => LogLevel::Info,
        }
    }
}

/// Write the completion script for `shell` (every subcommand and flag).
pub fn write_completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    if shell == clap_complete::Shell::Bash {
        script = fix_bash_subcommand_states(&script);
    }
    out.write_all(&script)
}

/// clap_complete's bash script spells the state of a subcommand of a
/// hyphenated program two ways (`upstream__exporter__subcmd__probe` in the
/// loop that reads the words, `upstream__subcmd__exporter__subcmd__probe`
/// in the arms that complete), so nothing after a subcommand would ever
/// complete (clap-rs/clap#6421). Spell the arms the loop's way; once
/// clap_complete is fixed this replaces nothing.
fn fix_bash_subcommand_states(script: &[u8]) -> Vec<u8> {
    let loop_spelling = BIN_NAME.replace('-', "__");
    let arm_spelling = loop_spelling.replace("__", "__subcmd__");
    String::from_utf8_lossy(script)
        .replace(&arm_spelling, &loop_spelling)
        .into_bytes()
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
}

/// The exporter's own routes, which the telemetry path may not take over
/// (`/-/healthy` and `/-/ready` are also served without credentials).
const OWN_ROUTES: [&str; 5] = [
    "/",
    "/-/healthy",
    "/-/ready",
    "/-/reload",
    "/api/v1/targets",
];

fn parse_telemetry_path(s: &str) -> Result<String, String> {
    // `/` itself is the status board's: the own-routes check says so.
    if !s.starts_with('/') {
        return Err(format!("{s:?} must be an absolute path such as /metrics"));
    }
    // What a request's path can be: no query, fragment, space or control.
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '?' | '#' | ' ') || c.is_control() || !c.is_ascii())
    {
        return Err(format!(
            "{s:?} contains {c:?}, which no request path can: use a plain path such as /metrics"
        ));
    }
    if OWN_ROUTES.contains(&s) || s.starts_with(crate::api::TARGET_PATH_PREFIX) {
        return Err(format!(
            "{s:?} is one of the exporter's own routes ({}, {}<name>): choose another path",
            OWN_ROUTES.join(", "),
            crate::api::TARGET_PATH_PREFIX
        ));
    }
    Ok(s.to_string())
}

/// `:10138` → `[::]:10138`, every interface, IPv4 and IPv6 alike (the
/// daemon binds it dual-stack, or `0.0.0.0` where the host has no IPv6,
/// as Go's `:PORT` does); anything else is used as given.
pub fn normalize_listen_address(addr: &str) -> String {
    match addr.strip_prefix(':') {
        Some(port) => format!("[::]:{port}"),
        None => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn telemetry_path_is_a_plain_path_of_its_own() {
        for good in ["/metrics", "/probe/metrics", "/-/metrics"] {
            assert_eq!(parse_telemetry_path(good).as_deref(), Ok(good));
        }
        for bad in [
            "metrics",
            "/",
            "/-/ready",
            "/-/healthy",
            "/-/reload",
            "/api/v1/targets",
            "/api/v1/targets/x",
            "/metrics?x",
            "/a b",
            "/m\u{e9}trics",
        ] {
            assert!(parse_telemetry_path(bad).is_err(), "{bad} accepted");
        }
        for own in ["/", "/-/ready"] {
            assert!(
                parse_telemetry_path(own)
                    .unwrap_err()
                    .contains("exporter's own routes"),
                "{own}"
            );
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_args(std::iter::once("upstream-exporter").chain(args.iter().copied()))
    }

    #[test]
    fn global_flags_work_before_and_after_the_subcommand() {
        for args in [
            &["--config.file=x.yaml", "--log.level=debug", "probe", "a"][..],
            &["probe", "a", "--config.file=x.yaml", "--log.level=debug"][..],
        ] {
            let cli = parse(args).unwrap();
            assert_eq!(cli.config_file, PathBuf::from("x.yaml"), "{args:?}");
            assert_eq!(cli.effective_log_level(), LogLevel::Debug);
            let Some(Command::Probe(probe)) = cli.command else {
                panic!("{args:?}: not probe");
            };
            assert_eq!(probe.targets, ["a"]);
            assert_eq!(probe.output, OutputFormat::Table);
            assert_eq!(probe.fail_on, FailOn::Degraded);
        }
    }

    #[test]
    fn probe_logs_at_warn_unless_told() {
        assert_eq!(
            parse(&["probe"]).unwrap().effective_log_level(),
            LogLevel::Warn
        );
        assert_eq!(parse(&[]).unwrap().effective_log_level(), LogLevel::Info);
    }

    #[test]
    fn daemon_flags_do_not_mix_with_subcommands() {
        for args in [
            &["--config.check", "probe"][..],
            &["--web.listen-address=:1", "completions", "bash"][..],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{err}"
            );
            assert!(
                err.to_string().contains("is a flag of the exporter daemon"),
                "{err}"
            );
        }
        // Without a subcommand they are the daemon's, as always.
        assert!(parse(&["--config.check"]).unwrap().config_check);
    }

    #[test]
    fn probe_flags_parse() {
        let cli = parse(&[
            "probe",
            "-o",
            "json",
            "--fail-on=maintenance",
            "--color=never",
        ])
        .unwrap();
        let Some(Command::Probe(probe)) = cli.command else {
            panic!("not probe");
        };
        assert_eq!(probe.output, OutputFormat::Json);
        assert_eq!(probe.fail_on, FailOn::Maintenance);
        assert_eq!(probe.color, ColorChoice::Never);
        assert!(parse(&["probe", "--fail-on=sometimes"]).is_err());
    }

    #[test]
    fn listen_address_forms() {
        assert_eq!(normalize_listen_address(":10138"), "[::]:10138");
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
