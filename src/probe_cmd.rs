//! `upstream-exporter probe [TARGET...]`: one round of probes now, through
//! the daemon's own code path, printed as a table (or JSON) with an exit
//! code for CI pipelines and cron (SPEC §6).
//!
//! The config is loaded with [`Config::load`], every selected target gets a
//! [`TargetState`], and each probe runs through [`run_probe`] and
//! [`publish`] exactly as the daemon's scheduler runs it, with the config's
//! `concurrency` and per-host limits. JSON output is
//! [`crate::api::target_json`], the objects of `/api/v1/targets`.
//!
//! Rendering, the colour decision, the table width and the exit code are
//! pure functions so they are unit-tested without a terminal.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::cli::ProbeArgs;
use crate::config::{Config, ConfigError, TargetConfig};
use crate::http::HttpClients;
use crate::probe::Severity;
use crate::runner::{HostLimits, publish, run_probe};
use crate::state::{TargetState, unix_now};

/// Exit status: every target is fine.
pub const EXIT_OK: u8 = 0;
/// Exit status: a target failed, or a page is at or past `--fail-on`.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the config is invalid or a TARGET is not in it.
pub const EXIT_USAGE: u8 = 2;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// `{"targets": [...]}` with the objects of `/api/v1/targets`.
    Json,
}

/// `--fail-on`: what besides a failed probe makes the exit status 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Only a probe that failed.
    Failure,
    /// Also a page that is degraded, in partial or in major outage.
    Degraded,
    /// Also a page in maintenance.
    Maintenance,
}

impl FailOn {
    /// The least page status that counts as a failure, if any does.
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Failure => None,
            FailOn::Degraded => Some(Severity::Degraded),
            FailOn::Maintenance => Some(Severity::Maintenance),
        }
    }
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`.
    Auto,
    Always,
    Never,
}

/// Why `probe` could not run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ProbeCmdError {
    #[error("{}", .0.annotated())]
    Config(ConfigError),
    #[error("{0}")]
    UnknownTargets(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// Run the command: probe, print, and return the exit status.
pub fn run(config_file: &Path, args: &ProbeArgs) -> Result<u8, ProbeCmdError> {
    let config = Config::load(config_file).map_err(ProbeCmdError::Config)?;
    let targets = select_targets(&config, &args.targets)?;
    if targets.is_empty() {
        eprintln!("{}: no targets configured", config_file.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ProbeCmdError::Runtime)?;
    let mut progress = Progress::new(std::io::stderr().is_terminal(), targets.len());
    let states = runtime.block_on(probe_all(&config, &targets, |done| progress.update(done)));
    progress.finish();

    let now = unix_now();
    let rows: Vec<Row> = states.iter().map(|s| Row::from_state(s, now)).collect();
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let output = match args.output {
        OutputFormat::Json => json_document(&states, now),
        OutputFormat::Table => {
            let env = |name: &str| std::env::var_os(name);
            let colour = use_color(
                args.color,
                stdout_is_terminal,
                env("NO_COLOR").as_deref(),
                env("TERM").as_deref(),
            );
            let measured = terminal_size::terminal_size().map(|(w, _)| usize::from(w.0));
            let width = table_width(stdout_is_terminal, env("COLUMNS").as_deref(), measured);
            render_table(&rows, colour, width)
        }
    };
    match std::io::stdout().lock().write_all(output.as_bytes()) {
        // A reader that stopped early (`| head`) is not our failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(ProbeCmdError::Output(e));
        }
        _ => {}
    }
    Ok(exit_code(&rows, args.fail_on))
}

/// The targets named on the command line, in config order (all of them
/// when none is named). Every unknown name is reported, with the closest
/// configured name when one is close.
pub fn select_targets(
    config: &Config,
    names: &[String],
) -> Result<Vec<Arc<TargetConfig>>, ProbeCmdError> {
    if names.is_empty() {
        return Ok(config.targets.clone());
    }
    let known: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    let mut problems = Vec::new();
    for name in names {
        if known.contains(&name.as_str()) {
            continue;
        }
        let mut line = format!("unknown target `{name}`");
        if let Some(close) = crate::config::closest(name, &known) {
            let _ = write!(line, " (did you mean `{close}`?)");
        }
        problems.push(line);
    }
    if !problems.is_empty() {
        problems.push(configured_list(&known));
        return Err(ProbeCmdError::UnknownTargets(problems.join("\n")));
    }
    Ok(config
        .targets
        .iter()
        .filter(|t| names.contains(&t.name))
        .cloned()
        .collect())
}

/// `configured targets: a, b, c` (the first 20).
fn configured_list(known: &[&str]) -> String {
    const SHOWN: usize = 20;
    if known.is_empty() {
        return "the config has no targets".to_owned();
    }
    let mut list = known
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if known.len() > SHOWN {
        let _ = write!(list, " and {} more", known.len() - SHOWN);
    }
    format!("configured targets: {list}")
}

/// Probe every target once, at most `concurrency` at a time, through the
/// daemon's path ([`run_probe`], then [`publish`]). `on_done` is called
/// with the number finished so far after each one.
pub async fn probe_all(
    config: &Config,
    targets: &[Arc<TargetConfig>],
    mut on_done: impl FnMut(usize),
) -> Vec<Arc<TargetState>> {
    let clients = HttpClients::new();
    let hosts = HostLimits::new(config.per_host_concurrency);
    hosts.set_min_interval(config.min_interval_per_host);
    let states: Vec<Arc<TargetState>> = targets
        .iter()
        .map(|t| Arc::new(TargetState::new(t.clone())))
        .collect();
    let (clients, hosts) = (&clients, &hosts);
    {
        let mut finished = futures_util::stream::iter(states.iter().cloned())
            .map(|state| async move {
                let started = tokio::time::Instant::now();
                let result = run_probe(&state.config, clients, hosts).await;
                publish(&state, result, started.elapsed());
            })
            .buffer_unordered(config.concurrency.max(1));
        let mut done = 0;
        on_done(done);
        while finished.next().await.is_some() {
            done += 1;
            on_done(done);
        }
    }
    states
}

/// `{"targets": [...]}`, pretty-printed, with a final newline.
pub fn json_document(states: &[Arc<TargetState>], now: f64) -> String {
    let targets: Vec<serde_json::Value> = states
        .iter()
        .map(|s| crate::api::target_json(s, now))
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "targets": targets }))
        .unwrap_or_else(|_| "{\"targets\": []}".to_owned());
    text.push('\n');
    text
}

/// "probing 3/12…" on stderr, rewritten in place; nothing when stderr is
/// not a terminal. Plain carriage returns, no escape sequences.
struct Progress {
    enabled: bool,
    total: usize,
    shown_chars: usize,
}

impl Progress {
    fn new(enabled: bool, total: usize) -> Self {
        Progress {
            enabled: enabled && total > 0,
            total,
            shown_chars: 0,
        }
    }

    fn update(&mut self, done: usize) {
        if !self.enabled {
            return;
        }
        let line = progress_line(done, self.total);
        self.shown_chars = self.shown_chars.max(line.chars().count());
        // The carriage return after the text lets a log line overwrite it.
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line:<width$}\r", width = self.shown_chars);
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.enabled && self.shown_chars > 0 {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(self.shown_chars));
        }
    }
}

/// The progress text after `done` of `total` probes.
pub fn progress_line(done: usize, total: usize) -> String {
    format!("probing {done}/{total}…")
}

/// One target's line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub target: String,
    pub status: RowStatus,
    /// Components not operational, and all components (status pages).
    pub components: Option<(usize, usize)>,
    /// Open incidents (status pages).
    pub incidents: Option<usize>,
    pub latency: Duration,
    /// `reason: message` of a failed probe.
    pub error: Option<String>,
}

/// A target's outcome in the table and for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    /// The probe failed.
    Failed,
    /// A status page answered with this overall status.
    Page(Severity),
    /// An `http` or `json` probe succeeded.
    Up,
}

impl RowStatus {
    pub fn word(self) -> &'static str {
        match self {
            RowStatus::Failed => "failed",
            RowStatus::Page(severity) => severity.as_str(),
            RowStatus::Up => "up",
        }
    }

    /// SGR colour of the word.
    fn colour(self) -> &'static str {
        match self {
            RowStatus::Failed => "1;31",
            RowStatus::Up | RowStatus::Page(Severity::Operational) => "32",
            RowStatus::Page(Severity::Maintenance) => "34",
            RowStatus::Page(Severity::Degraded) => "33",
            RowStatus::Page(Severity::PartialOutage) => "1;33",
            RowStatus::Page(Severity::MajorOutage) => "31",
            RowStatus::Page(Severity::Unknown) => "2",
        }
    }
}

impl Row {
    /// The row for a target's latest record.
    pub fn from_state(state: &TargetState, now: f64) -> Row {
        let record = state.record();
        let snapshot = state.fresh_status(&record, now);
        let status = if !record.success {
            RowStatus::Failed
        } else if let Some(s) = &snapshot {
            RowStatus::Page(s.page)
        } else {
            RowStatus::Up
        };
        Row {
            target: state.name().to_owned(),
            status,
            components: snapshot.as_ref().map(|s| {
                let down = s
                    .each_component()
                    .filter(|c| c.status != Severity::Operational)
                    .count();
                (down, s.component_count())
            }),
            incidents: snapshot.as_ref().map(|s| s.incidents.len()),
            latency: record.duration,
            error: record.error.as_ref().map(|e| e.to_string()),
        }
    }
}

/// 0 when every row is fine, 1 when a probe failed or a page's status is
/// at or past the `--fail-on` threshold. Unknown page statuses never fail.
pub fn exit_code(rows: &[Row], fail_on: FailOn) -> u8 {
    let failing = rows.iter().any(|row| match row.status {
        RowStatus::Failed => true,
        RowStatus::Page(severity) => fail_on.threshold().is_some_and(|t| severity >= t),
        RowStatus::Up => false,
    });
    if failing { EXIT_FAILED } else { EXIT_OK }
}

/// Whether the table is coloured: `always`/`never` as asked; `auto` when
/// stdout is a terminal, `NO_COLOR` is unset or empty (no-color.org) and
/// `TERM` is not `dumb`.
pub fn use_color(
    choice: ColorChoice,
    stdout_is_terminal: bool,
    no_color: Option<&OsStr>,
    term: Option<&OsStr>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            stdout_is_terminal
                && no_color.is_none_or(OsStr::is_empty)
                && term != Some(OsStr::new("dumb"))
        }
    }
}

/// Width to fit the table in: none when stdout is not a terminal (a pipe
/// gets whole lines); else `COLUMNS` when it is a number, else the
/// terminal's measured width, else 80.
pub fn table_width(
    stdout_is_terminal: bool,
    columns: Option<&OsStr>,
    measured: Option<usize>,
) -> Option<usize> {
    const FALLBACK: usize = 80;
    if !stdout_is_terminal {
        return None;
    }
    let from_env = columns
        .and_then(OsStr::to_str)
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0);
    Some(from_env.or(measured.filter(|m| *m > 0)).unwrap_or(FALLBACK))
}

const HEADERS: [&str; 6] = [
    "TARGET",
    "STATUS",
    "NOT OPERATIONAL",
    "INCIDENTS",
    "LATENCY",
    "ERROR",
];
const GAP: &str = "  ";
/// The error column keeps at least this much room, even if lines wrap.
const MIN_ERROR_WIDTH: usize = 20;

/// The table: a header and one line per row, columns two spaces apart, no
/// trailing spaces. With `width`, error texts are cut (ending in `…`) so
/// lines fit; with `colour`, the header is bold and status words and
/// errors are coloured (padding is computed on the plain text).
pub fn render_table(rows: &[Row], colour: bool, width: Option<usize>) -> String {
    let cells: Vec<[String; 6]> = rows.iter().map(row_cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let fixed: usize = widths[..5].iter().sum::<usize>() + GAP.len() * 5;
    let error_width = width.map(|w| w.saturating_sub(fixed).max(MIN_ERROR_WIDTH));

    let paint = |text: &str, sgr: &str| {
        if colour && !text.is_empty() {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    let header: Vec<String> = HEADERS
        .iter()
        .zip(widths)
        .map(|(h, w)| format!("{h:<w$}"))
        .collect();
    out.push_str(&paint(header.join(GAP).trim_end(), "1"));
    out.push('\n');
    for (row, cells) in rows.iter().zip(&cells) {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate().take(5) {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let shown = if i == 1 {
                paint(cell, row.status.colour())
            } else {
                cell.clone()
            };
            let _ = write!(line, "{shown}{pad}{GAP}");
        }
        let error = match error_width {
            Some(w) => truncate(&cells[5], w),
            None => cells[5].clone(),
        };
        line.push_str(&paint(&error, "31"));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A row's cells as plain text.
fn row_cells(row: &Row) -> [String; 6] {
    let dash = || "-".to_owned();
    [
        row.target.clone(),
        row.status.word().to_owned(),
        row.components
            .map_or_else(dash, |(down, all)| format!("{down}/{all}")),
        row.incidents.map_or_else(dash, |n| n.to_string()),
        format_latency(row.latency),
        row.error
            .as_deref()
            .map(|e| {
                e.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect()
            })
            .unwrap_or_default(),
    ]
}

/// `text` cut to `max` characters, the last one `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A probe's wall time: `<1ms`, `42ms`, `1.25s`.
pub fn format_latency(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        "<1ms".to_owned()
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{
        Component, Impact, Incident, ProbeError, ProbeOutput, ProbeSuccess, Reason, StatusSnapshot,
    };

    fn row(target: &str, status: RowStatus) -> Row {
        Row {
            target: target.to_owned(),
            status,
            components: None,
            incidents: None,
            latency: Duration::from_millis(12),
            error: None,
        }
    }

    #[test]
    fn exit_code_follows_fail_on() {
        use FailOn::*;
        use RowStatus::*;
        let cases: [(RowStatus, [u8; 3]); 8] = [
            // status, exit for [failure, degraded, maintenance]
            (Up, [0, 0, 0]),
            (Page(Severity::Operational), [0, 0, 0]),
            (Page(Severity::Unknown), [0, 0, 0]),
            (Page(Severity::Maintenance), [0, 0, 1]),
            (Page(Severity::Degraded), [0, 1, 1]),
            (Page(Severity::PartialOutage), [0, 1, 1]),
            (Page(Severity::MajorOutage), [0, 1, 1]),
            (Failed, [1, 1, 1]),
        ];
        for (status, want) in cases {
            for (fail_on, want) in [Failure, Degraded, Maintenance].into_iter().zip(want) {
                let rows = [row("ok", Up), row("x", status)];
                assert_eq!(exit_code(&rows, fail_on), want, "{status:?} {fail_on:?}");
            }
        }
        assert_eq!(exit_code(&[], Degraded), EXIT_OK);
    }

    #[test]
    fn colour_decision() {
        let some = |s: &'static str| Some(OsStr::new(s));
        use ColorChoice::*;
        assert!(use_color(Auto, true, None, some("xterm")));
        assert!(use_color(Auto, true, None, None));
        assert!(!use_color(Auto, false, None, some("xterm")));
        assert!(!use_color(Auto, true, some("1"), some("xterm")));
        // no-color.org: an empty NO_COLOR does not count.
        assert!(use_color(Auto, true, some(""), some("xterm")));
        assert!(!use_color(Auto, true, None, some("dumb")));
        assert!(use_color(Always, false, some("1"), some("dumb")));
        assert!(!use_color(Never, true, None, some("xterm")));
    }

    #[test]
    fn width_only_for_terminals() {
        let cols = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(table_width(false, cols("50"), Some(100)), None);
        assert_eq!(table_width(true, cols("50"), Some(100)), Some(50));
        assert_eq!(table_width(true, cols("wide"), Some(100)), Some(100));
        assert_eq!(table_width(true, cols("0"), None), Some(80));
        assert_eq!(table_width(true, None, Some(0)), Some(80));
    }

    fn sample_rows() -> Vec<Row> {
        vec![
            Row {
                components: Some((0, 12)),
                incidents: Some(0),
                ..row("github", RowStatus::Page(Severity::Operational))
            },
            Row {
                components: Some((3, 24)),
                incidents: Some(1),
                latency: Duration::from_millis(1250),
                ..row("instructure", RowStatus::Page(Severity::Degraded))
            },
            Row {
                error: Some("connect: connection refused (127.0.0.1:9)".to_owned()),
                latency: Duration::from_micros(300),
                ..row("down", RowStatus::Failed)
            },
            row("api-health", RowStatus::Up),
        ]
    }

    #[test]
    fn plain_table_has_aligned_columns_and_no_trailing_spaces() {
        let table = render_table(&sample_rows(), false, None);
        assert_eq!(
            table,
            "\
TARGET       STATUS       NOT OPERATIONAL  INCIDENTS  LATENCY  ERROR
github       operational  0/12             0          12ms
instructure  degraded     3/24             1          1.25s
down         failed       -                -          <1ms     connect: connection refused (127.0.0.1:9)
api-health   up           -                -          12ms
"
        );
    }

    #[test]
    fn coloured_table_paints_header_status_and_error_only() {
        let table = render_table(&sample_rows(), true, None);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("\x1b[1mTARGET"), "{table}");
        assert!(
            lines[1].contains("\x1b[32moperational\x1b[0m  0/12"),
            "{table}"
        );
        assert!(
            lines[2].contains("\x1b[33mdegraded\x1b[0m     3/24"),
            "{table}"
        );
        assert!(lines[3].contains("\x1b[1;31mfailed\x1b[0m"), "{table}");
        assert!(lines[3].ends_with("\x1b[31mconnect: connection refused (127.0.0.1:9)\x1b[0m"));
        // Without the escapes it is the plain table.
        let stripped = regex::Regex::new("\x1b\\[[0-9;]*m")
            .unwrap()
            .replace_all(&table, "");
        assert_eq!(stripped, render_table(&sample_rows(), false, None));
    }

    #[test]
    fn errors_are_cut_to_the_terminal_width() {
        let table = render_table(&sample_rows(), false, Some(90));
        let down = table.lines().find(|l| l.starts_with("down")).unwrap();
        assert_eq!(down.chars().count(), 90, "{table}");
        assert!(down.ends_with("connect: connection refuse…"), "{table}");
        // A narrow terminal still shows some of the error.
        let narrow = render_table(&sample_rows(), false, Some(40));
        let down = narrow.lines().find(|l| l.starts_with("down")).unwrap();
        assert!(down.ends_with("connect: connection…"), "{narrow}");
        // Wide enough: nothing cut.
        let wide = render_table(&sample_rows(), false, Some(200));
        assert_eq!(wide, render_table(&sample_rows(), false, None));
    }

    #[test]
    fn latency_and_truncation_formats() {
        assert_eq!(format_latency(Duration::from_micros(999)), "<1ms");
        assert_eq!(format_latency(Duration::from_millis(999)), "999ms");
        assert_eq!(format_latency(Duration::from_millis(2500)), "2.50s");
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 0), "…");
        assert_eq!(progress_line(3, 12), "probing 3/12…");
    }

    fn config(yaml: &str) -> Config {
        Config::from_bytes(yaml.as_bytes(), Path::new("t.yaml")).unwrap()
    }

    const THREE: &str = "targets:\n  - name: github\n    statuspage: { url: \"http://127.0.0.1:9\" }\n  - name: openai\n    statuspage: { url: \"http://127.0.0.1:9\" }\n  - name: api\n    http: { url: \"http://127.0.0.1:9\" }\n";

    #[test]
    fn targets_are_selected_in_config_order_or_suggested() {
        let config = config(THREE);
        let names =
            |v: Vec<Arc<TargetConfig>>| v.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(select_targets(&config, &[]).unwrap()),
            ["github", "openai", "api"]
        );
        let picked = select_targets(&config, &["api".into(), "github".into(), "api".into()]);
        assert_eq!(names(picked.unwrap()), ["github", "api"]);
        let err = select_targets(&config, &["githb".into(), "zzzzzz".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown target `githb` (did you mean `github`?)\nunknown target `zzzzzz`\nconfigured targets: github, openai, api"
        );
    }

    #[test]
    fn rows_come_from_published_records() {
        let config = config(THREE);
        let states: Vec<TargetState> = config
            .targets
            .iter()
            .map(|t| TargetState::new(t.clone()))
            .collect();
        let component = |status| Component::new("c", "c", "", status);
        let snapshot = StatusSnapshot {
            page: Severity::Degraded,
            components: vec![
                component(Severity::Operational),
                component(Severity::Degraded),
                component(Severity::Unknown),
            ],
            incidents: vec![Incident {
                id: "i".into(),
                name: "i".into(),
                impact: Impact::Minor,
                status: "investigating".into(),
                started: None,
            }],
            ..Default::default()
        };
        let ok = |output| {
            Ok(ProbeSuccess {
                http_status: 200,
                output,
            })
        };
        publish(
            &states[0],
            ok(ProbeOutput::Status(snapshot.into())),
            Duration::from_millis(5),
        );
        let refused = ProbeError::new(Reason::Connect, "connection refused");
        publish(&states[1], Err(refused), Duration::from_millis(7));
        let now = unix_now();
        let github = Row::from_state(&states[0], now);
        assert_eq!(github.status, RowStatus::Page(Severity::Degraded));
        assert_eq!(github.components, Some((2, 3)));
        assert_eq!(github.incidents, Some(1));
        assert_eq!(github.latency, Duration::from_millis(5));
        let openai = Row::from_state(&states[1], now);
        assert_eq!(openai.status, RowStatus::Failed);
        assert_eq!(openai.error.as_deref(), Some("connect: connection refused"));
        assert_eq!((openai.components, openai.incidents), (None, None));
        // Never probed counts as failed: the exit code must not say "all good".
        assert_eq!(Row::from_state(&states[2], now).status, RowStatus::Failed);
    }
}
