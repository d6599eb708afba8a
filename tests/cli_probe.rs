//! `upstream-exporter probe` as people and scripts run it: the real binary
//! against real Statuspage bodies served on 127.0.0.1.
//!
//! Piped: a plain table (no escape sequences, exact columns), JSON that
//! parses into the `/api/v1/targets` objects, exit codes 0/1/2 for all good,
//! degraded, failed, maintenance only, bad config and unknown target, the
//! config's `concurrency` honoured. In a pseudo-terminal (`script` from
//! util-linux): colour and progress, and no colour with `NO_COLOR=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{config_file, fixture_bytes, free_port, require};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_upstream-exporter");
/// Bound on one run of the binary.
const RUN_LIMIT: Duration = Duration::from_secs(60);

const ALL_OPERATIONAL: &str = "statuspage/github-summary-all-operational-2026.json";
const DEGRADED: &str = "statuspage/instructure-summary.json";
const MAINTENANCE: &str = "statuspage/cloudamqp-summary-maintenance-in-progress.json";

/// Environment variables that would change the output; every run starts
/// without them.
const NEUTRAL_ENV: [&str; 9] = [
    "NO_COLOR",
    "COLUMNS",
    "TERM",
    "UPSTREAM_EXPORTER_CONFIG_FILE",
    "UPSTREAM_EXPORTER_LOG_LEVEL",
    "UPSTREAM_EXPORTER_LOG_FORMAT",
    "UPSTREAM_EXPORTER_PROBE_OUTPUT",
    "UPSTREAM_EXPORTER_PROBE_FAIL_ON",
    "UPSTREAM_EXPORTER_PROBE_COLOR",
];

/// The fixture upstream: `/<page>/api/v2/summary.json` for each page, and
/// `/broken/...` answering 500.
async fn upstream() -> MockServer {
    let server = MockServer::start().await;
    for (page, fixture) in [
        ("ok", ALL_OPERATIONAL),
        ("degraded", DEGRADED),
        ("maintenance", MAINTENANCE),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/{page}/api/v2/summary.json")))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(fixture_bytes(fixture), "application/json"),
            )
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/broken/api/v2/summary.json"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
        .mount(&server)
        .await;
    server
}

/// A config file with one statuspage target per `(name, page)` of the
/// fixture upstream (`page` `closed` is a port nobody listens on), plus
/// an `http` check named `health` when asked.
fn write_config(dir: &Path, base: &str, targets: &[(&str, &str)], extra: &str) -> PathBuf {
    let mut yaml = format!("{extra}defaults:\n  timeout: 5s\n  retries: 0\ntargets:\n");
    for (name, page) in targets {
        let url = match *page {
            "closed" => format!("http://127.0.0.1:{}/", free_port()),
            "health" => {
                yaml.push_str(&format!(
                    "  - name: {name}\n    http: {{ url: \"{base}/ok/api/v2/summary.json\" }}\n"
                ));
                continue;
            }
            page => format!("{base}/{page}"),
        };
        yaml.push_str(&format!(
            "  - name: {name}\n    statuspage: {{ url: \"{url}\" }}\n"
        ));
    }
    let file = dir.join("exporter.yaml");
    std::fs::write(&file, yaml).expect("write config");
    file
}

/// Run the binary with its output piped.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in NEUTRAL_ENV {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("probe did not finish in time")
        .expect("run binary")
}

fn config_arg(file: &Path) -> String {
    format!("--config.file={}", file.display())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// SGR (colour) escape sequences.
fn colour_escapes() -> regex::Regex {
    regex::Regex::new("\x1b\\[[0-9;]*m").expect("regex")
}

const COLUMNS: [&str; 6] = [
    "TARGET",
    "STATUS",
    "NOT OPERATIONAL",
    "INCIDENTS",
    "LATENCY",
    "ERROR",
];

/// Cut a plain table into cells at the header's column starts, checking
/// that no cell runs into the next column.
fn cells(table: &str) -> Vec<Vec<String>> {
    let lines: Vec<Vec<char>> = table.lines().map(|l| l.chars().collect()).collect();
    let header: String = lines[0].iter().collect();
    let starts: Vec<usize> = COLUMNS
        .iter()
        .map(|c| {
            header
                .find(c)
                .unwrap_or_else(|| panic!("no {c} in {header:?}"))
        })
        .collect();
    lines[1..]
        .iter()
        .map(|line| {
            (0..COLUMNS.len())
                .map(|i| {
                    let start = starts[i].min(line.len());
                    let end = starts
                        .get(i + 1)
                        .map_or(line.len(), |e| (*e).min(line.len()));
                    if i > 0 && start < line.len() {
                        assert_eq!(line[start - 1], ' ', "column {i} spills: {table}");
                    }
                    line[start..end]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_owned()
                })
                .collect()
        })
        .collect()
}

fn assert_latency(cell: &str) {
    let ok = regex::Regex::new(r"^(<1ms|\d{1,3}ms|\d+\.\d\ds)$").expect("regex");
    assert!(ok.is_match(cell), "latency {cell:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_good_is_exit_0_with_a_plain_table() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &server.uri(),
        &[("github", "ok"), ("health", "health")],
        "",
    );
    let out = run(&["probe", &config_arg(&file)], &[]).await;
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{table}{}", stderr(&out));
    assert!(
        !table.contains('\x1b'),
        "escape sequences when piped: {table:?}"
    );
    assert_eq!(
        table.lines().next(),
        Some("TARGET  STATUS       NOT OPERATIONAL  INCIDENTS  LATENCY  ERROR")
    );
    let rows = cells(&table);
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(rows[0][..4], ["github", "operational", "0/12", "0"]);
    assert_eq!(rows[1][..4], ["health", "up", "-", "-"]);
    for row in &rows {
        assert_latency(&row[4]);
        assert_eq!(row[5], "");
    }
    assert!(
        table.lines().all(|l| l == l.trim_end()),
        "trailing spaces: {table:?}"
    );
    // Progress is for terminals only; no probe failed, so none is logged.
    let log = stderr(&out);
    assert!(
        !log.contains("probing") && !log.contains("probe failed"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_page_fails_by_default_but_not_with_fail_on_failure() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &server.uri(),
        &[("github", "ok"), ("instructure", "degraded")],
        "",
    );
    let out = run(&["probe", &config_arg(&file)], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let rows = cells(&stdout(&out));
    // 21 components (groups not counted), 8 not operational, 1 open incident.
    assert_eq!(rows[1][..4], ["instructure", "degraded", "8/21", "1"]);
    let out = run(&["probe", "--fail-on=failure", &config_arg(&file)], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_alone_fails_only_with_fail_on_maintenance() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &server.uri(),
        &[("cloudamqp", "maintenance")],
        "",
    );
    let out = run(&["probe", &config_arg(&file)], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        cells(&stdout(&out))[0][..4],
        ["cloudamqp", "maintenance", "1/23", "0"]
    );
    let out = run(
        &["probe", "--fail-on", "maintenance", &config_arg(&file)],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_target_is_exit_1_with_its_whole_error_when_piped() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &server.uri(),
        &[("github", "ok"), ("broken", "broken"), ("gone", "closed")],
        "",
    );
    // COLUMNS is ignored when stdout is not a terminal: nothing is cut.
    let out = run(
        &["probe", "--fail-on=failure", &config_arg(&file)],
        &[("COLUMNS", "30")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let table = stdout(&out);
    let rows = cells(&table);
    assert_eq!(rows[1][..4], ["broken", "failed", "-", "-"]);
    assert!(rows[1][5].starts_with("http_status: "), "{table}");
    assert!(rows[1][5].contains("500"), "{table}");
    assert_eq!(rows[2][..2], ["gone", "failed"]);
    assert!(rows[2][5].starts_with("connect: "), "{table}");
    assert!(!table.contains('…'), "cut when piped: {table}");
    // The failures are logged at warn on stderr, never on stdout.
    let log = stderr(&out);
    assert!(
        log.contains("level=warn") && log.contains("target=broken"),
        "{log}"
    );
    assert!(!table.contains("level="), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_exit_2_with_the_line_and_a_caret() {
    let (_dir, file) = config_file(
        "targets:\n  - name: a\n    interval: fast\n    statuspage: { url: \"https://s.example.com\" }\n",
    );
    let out = run(&["probe", &config_arg(&file)], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let first = format!(
        "{}:3:15: invalid duration `fast` for `interval`",
        file.display()
    );
    assert!(err.starts_with(&first), "{err}");
    assert!(
        err.contains("\n  |\n3 |     interval: fast\n  |               ^^^^\n"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_target_is_exit_2_with_a_suggestion() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &server.uri(),
        &[("github", "ok"), ("openai", "ok")],
        "",
    );
    let out = run(&["probe", "githb", &config_arg(&file)], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "unknown target `githb` (did you mean `github`?)\nconfigured targets: github, openai\n"
    );
    // Nothing was probed.
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_has_the_api_objects_and_the_same_exit_code() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &server.uri(),
        &[
            ("github", "ok"),
            ("instructure", "degraded"),
            ("broken", "broken"),
        ],
        "",
    );
    // Only two of the three, named out of order: config order is kept.
    let out = run(
        &[
            "probe",
            "instructure",
            "github",
            "--output=json",
            &config_arg(&file),
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let targets = doc["targets"].as_array().expect("targets array");
    let names: Vec<&str> = targets.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["github", "instructure"]);
    let github = &targets[0];
    assert_eq!(github["prober"], "statuspage");
    assert_eq!(github["success"], true);
    assert_eq!(github["http_status"], 200);
    assert_eq!(github["page_status"], "operational");
    assert_eq!(github["components"], 12);
    assert_eq!(github["incidents_open"], 0);
    assert_eq!(github["error"], serde_json::Value::Null);
    assert_eq!(
        github["url"],
        format!("{}/ok/api/v2/summary.json", server.uri())
    );
    assert!(github["duration_seconds"].as_f64().is_some_and(|d| d > 0.0));
    assert_eq!(targets[1]["page_status"], "degraded");
    assert_eq!(targets[1]["incidents_open"], 1);

    let out = run(&["probe", "broken", "-o", "json", &config_arg(&file)], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let broken = &doc["targets"][0];
    assert_eq!(broken["success"], false);
    assert_eq!(broken["reason"], "http_status");
    assert_eq!(broken["http_status"], 500);
    assert_eq!(broken["page_status"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_flags_work_before_and_after_probe() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), &server.uri(), &[("github", "ok")], "");
    let config = config_arg(&file);
    for args in [
        ["--log.level=debug", config.as_str(), "probe"],
        ["probe", config.as_str(), "--log.level=debug"],
    ] {
        let out = run(&args, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).starts_with("TARGET"), "{args:?}");
        // Debug was asked for, so the success is logged (on stderr).
        assert!(
            stderr(&out).contains("probe succeeded"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // The environment fallback of --config.file works too.
    let path = file.display().to_string();
    let out = run(&["probe"], &[("UPSTREAM_EXPORTER_CONFIG_FILE", &path)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Daemon flags make no sense with probe: a usage error, exit 2.
    let out = run(&["--web.listen-address=:1", "probe", &config], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--web.listen-address is a flag of the exporter daemon"));
}

/// Answers after `delay`, recording when each request arrived.
struct SlowRecorder {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    delay: Duration,
}

impl Respond for SlowRecorder {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200)
            .set_body_raw(fixture_bytes(ALL_OPERATIONAL), "application/json")
            .set_delay(self.delay)
    }
}

/// Arrival times of three slow probes run with `concurrency`.
async fn arrivals_with_concurrency(concurrency: usize) -> Vec<Instant> {
    let server = MockServer::start().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .respond_with(SlowRecorder {
            arrivals: arrivals.clone(),
            delay: Duration::from_millis(800),
        })
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let targets = [("a", "a"), ("b", "b"), ("c", "c")];
    let extra = format!("concurrency: {concurrency}\nper_host_concurrency: 8\n");
    let file = write_config(dir.path(), &server.uri(), &targets, &extra);
    let out = run(&["probe", &config_arg(&file)], &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let mut times = arrivals.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), 3);
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_run_concurrently_within_the_configured_concurrency() {
    // One at a time: each request waits for the previous 800 ms answer.
    let serial = arrivals_with_concurrency(1).await;
    for pair in serial.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(750),
            "{serial:?}"
        );
    }
    // Three at a time: all three are asked before the first answer.
    let parallel = arrivals_with_concurrency(3).await;
    assert!(
        parallel[2] - parallel[0] < Duration::from_millis(750),
        "{parallel:?}"
    );
}

/// Quote for `sh -c` (single quotes; the paths here have none).
fn sh_quote(arg: &str) -> String {
    assert!(!arg.contains('\''), "cannot quote {arg}");
    format!("'{arg}'")
}

/// Run the binary in a pseudo-terminal with `script -qfec`; returns its
/// exit code and what the terminal showed (stdout and stderr together,
/// `\r\n` turned back into `\n`).
async fn run_in_pty(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = tokio::process::Command::new("script");
    command
        .args(["-qfec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in NEUTRAL_ENV {
        command.env_remove(name);
    }
    command.env("TERM", "xterm-256color");
    command.envs(env.iter().copied());
    let out = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("script did not finish in time")
        .expect("run script");
    let screen = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    (out.status.code(), screen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_the_table_is_coloured_and_progress_is_shown() {
    if !require("script") {
        return;
    }
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &server.uri(),
        &[("github", "ok"), ("instructure", "degraded")],
        "",
    );
    let (code, screen) = run_in_pty(&["probe", &config_arg(&file)], &[]).await;
    assert_eq!(code, Some(1), "{screen:?}");
    assert!(screen.contains("probing 2/2…"), "no progress: {screen:?}");
    assert!(
        screen.contains("\x1b[1mTARGET"),
        "header not bold: {screen:?}"
    );
    assert!(screen.contains("\x1b[32moperational\x1b[0m"), "{screen:?}");
    assert!(screen.contains("\x1b[33mdegraded\x1b[0m"), "{screen:?}");
    // Without the escapes the same columns as when piped.
    let plain = colour_escapes().replace_all(&screen, "");
    let table = &plain[plain.find("TARGET").expect("table shown")..];
    let rows = cells(table);
    assert_eq!(rows[1][..4], ["instructure", "degraded", "8/21", "1"]);

    // --color=always colours a pipe too.
    let out = run(&["probe", "--color=always", &config_arg(&file)], &[]).await;
    assert!(colour_escapes().is_match(&stdout(&out)), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_no_color_and_color_never_turn_colour_off() {
    if !require("script") {
        return;
    }
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), &server.uri(), &[("github", "ok")], "");
    let config = config_arg(&file);
    for (args, env) in [
        (vec!["probe", config.as_str()], vec![("NO_COLOR", "1")]),
        (vec!["probe", "--color=never", config.as_str()], vec![]),
    ] {
        let (code, screen) = run_in_pty(&args, &env).await;
        assert_eq!(code, Some(0), "{screen:?}");
        assert!(screen.contains("TARGET"), "{screen:?}");
        assert!(screen.contains("operational"), "{screen:?}");
        assert!(
            !colour_escapes().is_match(&screen),
            "colour despite {env:?} {args:?}: {screen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_long_errors_are_cut_to_its_width() {
    if !require("script") {
        return;
    }
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), &server.uri(), &[("gone", "closed")], "");
    let (code, screen) = run_in_pty(
        &["probe", "--color=never", &config_arg(&file)],
        &[("COLUMNS", "80")],
    )
    .await;
    assert_eq!(code, Some(1), "{screen:?}");
    let row = screen
        .lines()
        .map(|l| l.rsplit('\r').next().unwrap_or(l))
        .find(|l| l.starts_with("gone"))
        .unwrap_or_else(|| panic!("no row: {screen:?}"));
    assert_eq!(row.chars().count(), 80, "{row:?}");
    assert!(row.ends_with('…') && row.contains("connect: "), "{row:?}");
}
