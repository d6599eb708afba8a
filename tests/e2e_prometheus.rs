//! The exporter in its ecosystem, for real: a fixture upstream serving
//! recorded status pages and switching scenario (operational, degraded,
//! major outage with incidents, upstream down), the real exporter binary
//! polling it every second, and a real Prometheus (Debian's `prometheus`)
//! started from `deploy/prometheus/prometheus.yml` with its own temporary
//! storage, scraping every second and evaluating `alerts.yaml`.
//!
//! Everything is asserted through Prometheus' HTTP API: the series users
//! rely on, the switch of scenario within a few scrapes, staleness, reload
//! gauges, every Grafana dashboard query (variables expanded) returning data
//! where its panel should show something, and the shipped alerts going
//! pending or firing in the scenarios they describe. `promtool check
//! metrics` lints a live text scrape; Debian's promtool 2.42 cannot parse
//! OpenMetrics, so the OpenMetrics scrape is validated by Prometheus itself
//! ingesting it (it negotiates OpenMetrics first) plus a structural check.
//!
//! A third target, `payments`, is an `http` health check of a local HTTPS
//! server whose certificate (from a private CA) expires in 10 days, so the
//! TLS expiry gauge, its panel and its alert are exercised for real.
//!
//! Static checks of the dashboard, provisioning, alert rules, the
//! PrometheusRule manifest and the Kubernetes config run without Prometheus.
//! Every process is killed on drop, also on failure; the live test is
//! bounded to 90 s. Under CI=true a missing `prometheus` fails the test.

mod common;
mod e2e;
mod tls_server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{free_port, http_client, require};
use e2e::dashboard::{self, Values};
use e2e::process::Daemon;
use e2e::prom::{Alert, Prom, Sample, eventually};
use e2e::upstream::{self, Scenario, Upstream};
use serde_json::Value;

const JOB: &str = "upstream-exporter";
/// Every wait for something Prometheus should see: a few 1 s probe and
/// scrape cycles plus slack for a loaded 2-core CI machine.
const SOON: Duration = Duration::from_secs(15);
const README_URL: &str =
    "https://github.com/upstream-exporter/upstream-exporter/blob/main/README.md";

const O: Scenario = Scenario::Operational;
const D: Scenario = Scenario::Degraded;
const M: Scenario = Scenario::MajorOutage;
const X: Scenario = Scenario::Down;

/// In which scenarios each dashboard panel must show data. Every panel of
/// the dashboard is listed, so a new panel needs a decision here; a panel
/// must parse in every scenario.
const PANEL_DATA: &[(&str, &[Scenario])] = &[
    ("Page status", &[O, D, M]),
    ("Probe success ratio", &[O, D, M, X]),
    ("Incident count", &[O, D, M]),
    ("Page status over time", &[O, D, M]),
    ("Components status", &[O, D, M]),
    ("Components not operational", &[D, M]),
    ("Open incidents", &[D, M]),
    ("Incidents by impact", &[D, M]),
    ("Next scheduled maintenance", &[M]),
    ("Maintenances in progress", &[O, D, M]),
    ("Probe latency", &[O, D, M, X]),
    ("Probe latency p50 / p95", &[O, D, M, X]),
    ("Probe failures by reason", &[X]),
    ("Data freshness", &[O, D, M, X]),
    ("Last HTTP status", &[O, D, M, X]),
    ("TLS certificate expires in", &[O, D, M, X]),
    ("Config reload", &[O, D, M, X]),
    ("Last successful reload", &[O, D, M, X]),
    ("Targets", &[O, D, M, X]),
    ("Exporters up", &[O, D, M, X]),
    ("Version", &[O, D, M, X]),
    ("CPU", &[O, D, M, X]),
    ("Memory", &[O, D, M, X]),
    ("Open file descriptors", &[O, D, M, X]),
];

/// Metric names the dashboard and alerts may use (SPEC §4, plus `up`).
const KNOWN_METRICS: &[&str] = &[
    "up",
    "upstream_probe_success",
    "upstream_probe_duration_seconds_bucket",
    "upstream_probe_duration_seconds_count",
    "upstream_probe_duration_seconds_sum",
    "upstream_probes_total",
    "upstream_probe_failures_total",
    "upstream_probe_last_run_timestamp_seconds",
    "upstream_probe_last_success_timestamp_seconds",
    "upstream_http_status_code",
    "upstream_target_info",
    "upstream_page_status_code",
    "upstream_component_status_code",
    "upstream_incidents_open",
    "upstream_incident_info",
    "upstream_incident_started_timestamp_seconds",
    "upstream_maintenances_active",
    "upstream_maintenance_next_start_timestamp_seconds",
    "upstream_unknown_values_total",
    "upstream_tls_cert_not_after_timestamp_seconds",
    "upstream_tls_chain_earliest_not_after_timestamp_seconds",
    "upstream_exporter_build_info",
    "upstream_exporter_config_last_reload_successful",
    "upstream_exporter_config_last_reload_success_timestamp_seconds",
    "upstream_exporter_targets",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------
// The live end-to-end test
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_prometheus_dashboard_and_alerts_end_to_end() {
    if !require("prometheus") || !require("promtool") {
        return;
    }
    tokio::time::timeout(Duration::from_secs(90), live())
        .await
        .expect("the end-to-end suite took longer than 90 s");
}

/// The HTTPS health endpoint of the `payments` target.
struct Payments {
    url: String,
    ca_file: String,
    not_after: f64,
    _pki: tls_server::Pki,
}

/// A private CA and an HTTPS server whose leaf expires in about 10 days.
async fn payments_server() -> Payments {
    use chrono::Datelike as _;
    let pki = tls_server::Pki::new();
    // The leaf ends at midnight UTC of its last day, up to a day before
    // the instant it is computed from. From 10.5 days ahead it is 9.5 to
    // 10.5 days away, so the alert's "9d "/"10d " holds at any hour (from
    // exactly 10 days ahead, a run started seconds before midnight saw
    // "8d 23h 59m 55s").
    let day = (chrono::Utc::now() + chrono::Duration::hours(10 * 24 + 12)).date_naive();
    let (chain, key, not_after) = pki.leaf(
        (2020, 1, 1),
        (day.year(), day.month() as u8, day.day() as u8),
    );
    let addr = tls_server::https_server(chain, key, None).await;
    Payments {
        url: format!("https://127.0.0.1:{}/healthz", addr.port()),
        ca_file: pki.path("ca.pem"),
        not_after,
        _pki: pki,
    }
}

fn exporter_config(upstream: &Upstream, payments: &Payments, broken: bool) -> String {
    format!(
        "# upstream-exporter config written by tests/e2e_prometheus.rs\n\
         defaults:\n  interval: 1s\n  timeout: 800ms\n  retries: 1\n  \
         backoff: {{ initial: 20ms, max: 50ms }}\n  stale_after: 8s\n{}\
         targets:\n  - name: primary\n    labels: {{ team: e2e }}\n    \
         statuspage: {{ url: \"{base}/primary\" }}\n  - name: secondary\n    \
         statuspage: {{ url: \"{base}{secondary}\" }}\n  - name: payments\n    \
         tls: {{ ca_file: \"{ca}\" }}\n    http: {{ url: \"{https}\" }}\n",
        if broken { "  intervall: 1s\n" } else { "" },
        base = upstream.base,
        secondary = upstream::SECONDARY_PATH,
        ca = payments.ca_file,
        https = payments.url,
    )
}

/// Replace a file's content in one step, as a config management tool does,
/// so the exporter's change poller never reads half a file.
fn write_atomically(path: &Path, content: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// deploy/prometheus/prometheus.yml with 1 s intervals, the exporter's
/// address and an absolute rule file path: nothing else changes.
fn prometheus_config(exporter_addr: &str) -> String {
    let mut text = read("deploy/prometheus/prometheus.yml");
    let alerts = repo("deploy/prometheus/alerts.yaml");
    for (from, to) in [
        ("scrape_interval: 30s", "scrape_interval: 1s".to_string()),
        (
            "evaluation_interval: 30s",
            "evaluation_interval: 1s".to_string(),
        ),
        ("\"localhost:10138\"", format!("\"{exporter_addr}\"")),
        ("- alerts.yaml", format!("- {}", alerts.display())),
    ] {
        assert_eq!(
            text.matches(from).count(),
            1,
            "deploy/prometheus/prometheus.yml should contain `{from}` once"
        );
        text = text.replace(from, &to);
    }
    text
}

async fn wait_http_ok(client: &reqwest::Client, daemon: &mut Daemon, path: &str, within: Duration) {
    let url = format!("{}{path}", daemon.base);
    let deadline = std::time::Instant::now() + within;
    loop {
        daemon.assert_running();
        if let Ok(r) = client.get(&url).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} not answering 200 on {path} within {within:?}; log:\n{}",
            daemon.name,
            daemon.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until `expr` returns samples satisfying `ok`.
async fn wait_for(prom: &Prom, expr: &str, ok: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let ok = &ok;
    eventually(expr, SOON, move || async move {
        let samples = prom.query(expr).await?;
        if ok(&samples) {
            Ok(samples)
        } else {
            Err(format!("{samples:?}"))
        }
    })
    .await
}

/// Wait until `expr` returns exactly one sample equal to `value`.
async fn wait_value(prom: &Prom, expr: &str, value: f64) {
    wait_for(prom, expr, |s| s.len() == 1 && s[0].value == value).await;
}

/// Wait until `expr` returns nothing.
async fn wait_empty(prom: &Prom, expr: &str) {
    wait_for(prom, expr, |s| s.is_empty()).await;
}

/// Wait until the alerts satisfy `ok`; returns them.
async fn wait_alerts(prom: &Prom, what: &str, ok: impl Fn(&[Alert]) -> bool) -> Vec<Alert> {
    let ok = &ok;
    eventually(what, SOON, move || async move {
        let alerts = prom.alerts().await;
        if ok(&alerts) {
            Ok(alerts)
        } else {
            Err(format!("{alerts:#?}"))
        }
    })
    .await
}

fn named<'a>(alerts: &'a [Alert], name: &str) -> Vec<&'a Alert> {
    alerts
        .iter()
        .filter(|a| a.label("alertname") == name)
        .collect()
}

/// Components that are not groups, as the exporter exports them.
fn component_count(body: &Value) -> usize {
    body["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| c["group"] != true)
        .count()
}

fn open_incident_names(body: &Value) -> BTreeSet<String> {
    body["incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            !matches!(
                i["status"].as_str(),
                Some("resolved" | "postmortem" | "completed")
            )
        })
        .map(|i| i["name"].as_str().expect("incident name").to_string())
        .collect()
}

fn by_target(samples: &[Sample]) -> BTreeMap<String, f64> {
    samples
        .iter()
        .map(|s| (s.label("target").to_string(), s.value))
        .collect()
}

/// Both status-page targets have `value` (the `payments` target is not
/// one of them).
fn both(value: f64) -> impl Fn(&[Sample]) -> bool {
    move |s| {
        let m = by_target(s);
        m.get("primary") == Some(&value) && m.get("secondary") == Some(&value)
    }
}

async fn live() {
    let client = http_client();
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start(O).await;
    let payments = payments_server().await;

    // The exporter, polling its three targets every second.
    let config_path = dir.path().join("exporter.yaml");
    write_atomically(&config_path, &exporter_config(&upstream, &payments, false));
    let exporter_port = free_port();
    let exporter_addr = format!("127.0.0.1:{exporter_port}");
    let mut exporter = Daemon::spawn(
        "upstream-exporter",
        env!("CARGO_BIN_EXE_upstream-exporter"),
        &[
            format!("--config.file={}", config_path.display()),
            format!("--web.listen-address={exporter_addr}"),
        ],
        &dir.path().join("exporter.log"),
        format!("http://{exporter_addr}"),
    );
    wait_http_ok(&client, &mut exporter, "/-/ready", Duration::from_secs(15)).await;

    // Prometheus with its own storage, from the shipped config.
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(&prom_config, prometheus_config(&exporter_addr)).unwrap();
    let prom_port = free_port();
    let mut prometheus = Daemon::spawn(
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--log.level=warn".to_string(),
        ],
        &dir.path().join("prometheus.log"),
        format!("http://127.0.0.1:{prom_port}"),
    );
    wait_http_ok(
        &client,
        &mut prometheus,
        "/-/ready",
        Duration::from_secs(30),
    )
    .await;
    let prom = Prom::new(prometheus.base.clone(), client.clone());

    // ---- scrape health and formats -------------------------------------
    wait_value(&prom, &format!("up{{job=\"{JOB}\"}}"), 1.0).await;
    wait_for(
        &prom,
        &format!("scrape_samples_scraped{{job=\"{JOB}\"}}"),
        |s| s.len() == 1 && s[0].value > 100.0,
    )
    .await;
    let targets = prom.targets().await;
    assert_eq!(
        targets,
        vec![(JOB.to_string(), "up".to_string(), String::new())],
        "Prometheus' view of its scrape target"
    );
    check_scrape_formats(&client, &exporter.base, &prom).await;

    // ---- the rules load and evaluate -----------------------------------
    let rules = eventually("every rule evaluated healthy", SOON, || async {
        let rules = prom.rules().await;
        if !rules.is_empty() && rules.iter().all(|(_, health, _)| health == "ok") {
            Ok(rules)
        } else {
            Err(format!("{rules:?}"))
        }
    })
    .await;
    let alert_names: BTreeSet<String> = alert_rule_names();
    let loaded: BTreeSet<String> = rules.into_iter().map(|(name, _, _)| name).collect();
    assert_eq!(loaded, alert_names, "Prometheus loaded alerts.yaml");

    // ---- operational -----------------------------------------------------
    scenario_operational(&prom, &payments).await;
    check_dashboard(&prom, O).await;
    // All is operational; only the certificate expiring in 10 days alerts.
    let alerts = wait_alerts(&prom, "only the TLS alert while all is operational", |a| {
        let active: Vec<&Alert> = a
            .iter()
            .filter(|x| x.state == "firing" || x.state == "pending")
            .collect();
        active.len() == 1 && active[0].label("alertname") == "UpstreamTLSCertificateExpiringSoon"
    })
    .await;
    let tls = named(&alerts, "UpstreamTLSCertificateExpiringSoon")[0];
    assert_eq!(tls.label("target"), "payments");
    assert_eq!(tls.state, "pending", "for: 15m has not passed");
    assert!(
        tls.annotations["summary"].starts_with("TLS certificate of payments expires in 9d ")
            || tls.annotations["summary"]
                .starts_with("TLS certificate of payments expires in 10d "),
        "{tls:#?}"
    );

    // ---- degraded --------------------------------------------------------
    let switched = std::time::Instant::now();
    upstream.set(D);
    wait_for(&prom, "upstream_page_status_code", both(3.0)).await;
    eprintln!(
        "degraded visible in Prometheus after {:?}",
        switched.elapsed()
    );
    let degraded_incidents = open_incident_names(&upstream::fixture_json(D, true));
    assert_eq!(degraded_incidents.len(), 1);
    let incident = degraded_incidents.first().unwrap().clone();
    let info = wait_for(&prom, "upstream_incident_info", |s| s.len() == 1).await;
    assert_eq!(info[0].label("name"), incident);
    assert_eq!(info[0].label("target"), "primary");
    assert_eq!(info[0].label("impact"), "minor");
    assert_eq!(
        info[0].label("team"),
        "e2e",
        "static labels reach Prometheus"
    );
    let degraded_components = prom
        .vector("upstream_component_status_code{target=\"secondary\"} == 3")
        .await;
    let names: BTreeSet<&str> = degraded_components
        .iter()
        .map(|s| s.label("component"))
        .collect();
    // Box's degraded group "Box Web Application" is only a label.
    assert_eq!(
        names,
        BTreeSet::from(["Admin Console & Functionality"]),
        "Box's degraded components"
    );
    check_dashboard(&prom, D).await;
    let alerts = wait_alerts(
        &prom,
        "incident alert firing, component alert pending",
        |a| {
            named(a, "UpstreamIncidentOpened")
                .iter()
                .any(|x| x.state == "firing")
                && named(a, "UpstreamComponentDegraded")
                    .iter()
                    .any(|x| x.label("target") == "secondary")
        },
    )
    .await;
    let opened = named(&alerts, "UpstreamIncidentOpened");
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(
        opened[0].annotations["summary"],
        format!("primary opened an incident: {incident}"),
        "the incident's name reaches the alert"
    );
    assert_eq!(opened[0].label("severity"), "info");
    let degraded = named(&alerts, "UpstreamComponentDegraded");
    assert!(
        degraded.iter().all(|a| a.state == "pending"),
        "for: 15m has not passed: {degraded:#?}"
    );
    assert!(
        degraded.iter().any(|a| a.label("target") == "secondary"
            && a.label("component") == "Admin Console & Functionality"
            && a.annotations["summary"] == "secondary: Admin Console & Functionality is degraded"),
        "{degraded:#?}"
    );

    // ---- major outage, incidents elsewhere -------------------------------
    let switched = std::time::Instant::now();
    upstream.set(M);
    wait_for(
        &prom,
        "upstream_page_status_code{target=\"primary\"}",
        |s| s.len() == 1 && s[0].value == 5.0,
    )
    .await;
    eprintln!(
        "major outage visible in Prometheus after {:?}",
        switched.elapsed()
    );
    let twilio = upstream::fixture_json(M, false);
    let expected_incidents = open_incident_names(&twilio);
    let info = wait_for(&prom, "upstream_incident_info", |s| {
        s.len() == expected_incidents.len() && s.iter().all(|x| x.label("target") == "secondary")
    })
    .await;
    let got: BTreeSet<String> = info.iter().map(|s| s.label("name").to_string()).collect();
    assert_eq!(
        got, expected_incidents,
        "the resolved incident is gone, new ones are in"
    );
    let next = earliest_scheduled_maintenance(&twilio);
    let seen = prom
        .value("upstream_maintenance_next_start_timestamp_seconds{target=\"secondary\"}")
        .await
        .expect("next maintenance start");
    assert!(
        (seen - next).abs() < 1e-3,
        "next maintenance {seen} != {next}"
    );
    let majors = prom
        .vector("upstream_component_status_code{target=\"primary\"} == 5")
        .await;
    let qualys = upstream::fixture_json(M, true);
    let expected_majors = qualys["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["group"] != true && c["status"] == "major_outage")
        .count();
    assert!(expected_majors > 0);
    assert_eq!(
        majors.len(),
        expected_majors,
        "Qualys' major outages: {majors:?}"
    );
    check_dashboard(&prom, M).await;
    let alerts = wait_alerts(&prom, "major outage pending, two incident alerts", |a| {
        named(a, "UpstreamPageMajorOutage").len() == 1
            && named(a, "UpstreamIncidentOpened").len() == expected_incidents.len()
    })
    .await;
    let major = named(&alerts, "UpstreamPageMajorOutage")[0];
    assert_eq!(major.label("target"), "primary");
    assert_eq!(major.label("severity"), "critical");
    assert_eq!(major.state, "pending", "for: 2m has not passed");
    let summaries: BTreeSet<String> = named(&alerts, "UpstreamIncidentOpened")
        .iter()
        .map(|a| a.annotations["summary"].clone())
        .collect();
    let expected: BTreeSet<String> = expected_incidents
        .iter()
        .map(|n| format!("secondary opened an incident: {n}"))
        .collect();
    assert_eq!(summaries, expected);

    // ---- upstream down ---------------------------------------------------
    let switched = std::time::Instant::now();
    upstream.set(X);
    wait_for(&prom, "upstream_probe_success", both(0.0)).await;
    eprintln!(
        "upstream down visible in Prometheus after {:?}",
        switched.elapsed()
    );
    // The last good status is kept until stale_after (8 s) has passed...
    let kept = prom
        .value("upstream_page_status_code{target=\"primary\"}")
        .await;
    assert_eq!(kept, Some(5.0), "status kept right after the first failure");
    let reasons = wait_for(&prom, "upstream_probe_failures_total > 0", |s| {
        let targets: BTreeSet<&str> = s.iter().map(|x| x.label("target")).collect();
        targets.len() == 2
    })
    .await;
    let primary_reasons: BTreeSet<&str> = reasons
        .iter()
        .filter(|s| s.label("target") == "primary")
        .map(|s| s.label("reason"))
        .collect();
    assert_eq!(
        primary_reasons,
        BTreeSet::from(["http_status"]),
        "503 is http_status"
    );
    let secondary_reasons: BTreeSet<&str> = reasons
        .iter()
        .filter(|s| s.label("target") == "secondary")
        .map(|s| s.label("reason"))
        .collect();
    assert_eq!(
        secondary_reasons,
        BTreeSet::from(["connect"]),
        "a hang-up is connect"
    );
    wait_for(&prom, "upstream_http_status_code", |s| {
        let m = by_target(s);
        m.get("primary") == Some(&503.0) && m.get("secondary") == Some(&0.0)
    })
    .await;
    // ...then dropped, while the probe metrics stay.
    wait_empty(&prom, "upstream_page_status_code").await;
    wait_empty(&prom, "upstream_component_status_code").await;
    wait_empty(&prom, "upstream_incident_info").await;
    assert_eq!(prom.vector("upstream_probe_success").await.len(), 3);
    check_dashboard(&prom, X).await;
    let alerts = wait_alerts(&prom, "probe failing alerts pending", |a| {
        named(a, "UpstreamProbeFailing").len() == 2
    })
    .await;
    for alert in named(&alerts, "UpstreamProbeFailing") {
        assert_eq!(alert.state, "pending", "for: 10m has not passed");
        // The description asks Prometheus for the most frequent reason.
        let reason = match alert.label("target") {
            "primary" => "http_status",
            _ => "connect",
        };
        assert!(
            alert.annotations["description"]
                .ends_with(&format!("Most frequent failure reason: {reason}.")),
            "{alert:#?}"
        );
    }
    // Incident alerts resolve once the incident series are gone.
    let resolved = |a: &Alert| a.state != "firing" && a.state != "pending";
    wait_alerts(&prom, "incident alerts resolved", |a| {
        named(a, "UpstreamIncidentOpened").into_iter().all(resolved)
    })
    .await;

    // ---- recovery --------------------------------------------------------
    upstream.set(O);
    wait_for(&prom, "upstream_probe_success", both(1.0)).await;
    wait_for(&prom, "upstream_page_status_code", both(1.0)).await;

    // ---- config reload ---------------------------------------------------
    let reload_url = format!("{}/-/reload", exporter.base);
    write_atomically(&config_path, &exporter_config(&upstream, &payments, true));
    let r = client.post(&reload_url).send().await.unwrap();
    assert_eq!(r.status(), 400, "a broken config is rejected");
    let error = r.text().await.unwrap();
    assert!(
        error.contains("intervall"),
        "reload error names the key: {error}"
    );
    wait_value(
        &prom,
        "upstream_exporter_config_last_reload_successful",
        0.0,
    )
    .await;
    wait_value(&prom, "upstream_exporter_targets", 3.0).await;
    wait_alerts(&prom, "reload failing alert pending", |a| {
        named(a, "UpstreamExporterConfigReloadFailing").len() == 1
    })
    .await;
    write_atomically(&config_path, &exporter_config(&upstream, &payments, false));
    let r = client.post(&reload_url).send().await.unwrap();
    assert_eq!(r.status(), 200, "the fixed config reloads");
    wait_value(
        &prom,
        "upstream_exporter_config_last_reload_successful",
        1.0,
    )
    .await;
    wait_for(
        &prom,
        "time() - upstream_exporter_config_last_reload_success_timestamp_seconds",
        |s| s.len() == 1 && (0.0..10.0).contains(&s[0].value),
    )
    .await;

    // ---- the exporter goes away ------------------------------------------
    let status = exporter.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "exporter exit status {status:?}");
    wait_value(&prom, &format!("up{{job=\"{JOB}\"}}"), 0.0).await;
    wait_alerts(&prom, "exporter down alert pending", |a| {
        named(a, "UpstreamExporterDown")
            .iter()
            .any(|x| x.state == "pending")
    })
    .await;

    drop(prometheus);
    drop(upstream);
}

/// Scrape `/metrics` in both formats: text through promtool, OpenMetrics
/// structurally here and through Prometheus, which negotiated it.
async fn check_scrape_formats(client: &reqwest::Client, base: &str, prom: &Prom) {
    let text = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(
        text.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = text.text().await.unwrap();
    common::promtool_check_metrics(&text);

    let om = client
        .get(format!("{base}/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        .send()
        .await
        .unwrap();
    let content_type = om.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let om = om.text().await.unwrap();
    assert!(om.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert_eq!(om.matches("# EOF").count(), 1);
    let mut declared = BTreeSet::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                declared.insert(name.to_string()),
                "family {name} declared twice"
            );
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                declared.iter().any(|f| name.starts_with(f.as_str())),
                "sample {name} before its # TYPE"
            );
        }
    }

    // Prometheus negotiates OpenMetrics first: its metadata shows the
    // OpenMetrics family (`info` type, name without `_info`); from the text
    // format it would be a gauge named upstream_exporter_build_info.
    let kind = eventually("metadata of upstream_exporter_build", SOON, || async {
        prom.metadata_type("upstream_exporter_build")
            .await
            .ok_or_else(|| "no metadata yet".to_string())
    })
    .await;
    assert_eq!(
        kind, "info",
        "Prometheus ingested the OpenMetrics exposition"
    );
}

async fn scenario_operational(prom: &Prom, payments: &Payments) {
    wait_for(prom, "upstream_page_status_code", both(1.0)).await;
    wait_for(prom, "upstream_probe_success", |s| {
        s.len() == 3 && s.iter().all(|x| x.value == 1.0)
    })
    .await;
    let not_after = prom
        .value("upstream_tls_cert_not_after_timestamp_seconds{target=\"payments\"}")
        .await
        .expect("leaf expiry of the https target");
    assert_eq!(not_after, payments.not_after, "leaf not_after");
    assert_eq!(
        prom.value("upstream_http_status_code{target=\"payments\"}")
            .await,
        Some(200.0)
    );
    let counts = by_target(
        &prom
            .vector("count by (target) (upstream_component_status_code)")
            .await,
    );
    assert_eq!(
        counts.get("primary").copied(),
        Some(component_count(&upstream::fixture_json(O, true)) as f64)
    );
    assert_eq!(
        counts.get("secondary").copied(),
        Some(component_count(&upstream::fixture_json(O, false)) as f64)
    );
    assert!(
        prom.vector("upstream_component_status_code != 1")
            .await
            .is_empty()
    );
    assert_eq!(
        prom.value("sum(upstream_incidents_open)").await,
        Some(0.0),
        "no open incident"
    );
    assert_eq!(
        prom.value("absent(upstream_incident_info)").await,
        Some(1.0)
    );
    let probers: BTreeMap<String, String> = prom
        .vector("upstream_target_info")
        .await
        .iter()
        .map(|s| (s.label("target").to_string(), s.label("prober").to_string()))
        .collect();
    assert_eq!(
        probers,
        BTreeMap::from([
            ("payments".to_string(), "http".to_string()),
            ("primary".to_string(), "statuspage".to_string()),
            ("secondary".to_string(), "statuspage".to_string()),
        ])
    );

    // Histogram: every bucket arrives, +Inf equals the count.
    let buckets = prom
        .vector("upstream_probe_duration_seconds_bucket{target=\"primary\"}")
        .await;
    assert!(buckets.len() >= 5, "buckets: {buckets:?}");
    let inf = prom
        .value("upstream_probe_duration_seconds_bucket{target=\"primary\",le=\"+Inf\"}")
        .await
        .expect("+Inf bucket");
    let count = prom
        .value("upstream_probe_duration_seconds_count{target=\"primary\"}")
        .await
        .expect("count");
    assert!(
        inf >= 1.0 && (inf - count).abs() <= 1.0,
        "+Inf {inf} vs count {count}"
    );
    wait_for(
        prom,
        "histogram_quantile(0.5, rate(upstream_probe_duration_seconds_bucket{target=\"primary\"}[10s]))",
        |s| s.len() == 1 && s[0].value.is_finite() && s[0].value > 0.0,
    )
    .await;
    wait_for(prom, "increase(upstream_probes_total[10s])", |s| {
        s.len() == 3 && s.iter().all(|x| x.value >= 2.0)
    })
    .await;

    // The exporter itself.
    assert_eq!(
        prom.value("upstream_exporter_config_last_reload_successful")
            .await,
        Some(1.0)
    );
    let age = prom
        .value("time() - upstream_exporter_config_last_reload_success_timestamp_seconds")
        .await
        .expect("reload timestamp");
    assert!((0.0..120.0).contains(&age), "config loaded {age} s ago");
    assert_eq!(prom.value("upstream_exporter_targets").await, Some(3.0));
    let build = prom.vector("upstream_exporter_build_info").await;
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].label("version"), env!("CARGO_PKG_VERSION"));
    assert!(
        prom.value("process_resident_memory_bytes")
            .await
            .is_some_and(|v| v > 1e6)
    );
    assert!(
        prom.value("process_open_fds")
            .await
            .is_some_and(|v| v > 0.0)
    );
    assert!(prom.value("process_cpu_seconds_total").await.is_some());
}

fn earliest_scheduled_maintenance(body: &Value) -> f64 {
    body["scheduled_maintenances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["status"] == "scheduled")
        .map(|m| {
            chrono::DateTime::parse_from_rfc3339(m["scheduled_for"].as_str().unwrap())
                .unwrap()
                .timestamp_millis() as f64
                / 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

/// A component value for `$component` the way a user would pick one: a
/// troubled component when there is one, else any; All when none exist.
async fn pick_component(prom: &Prom) -> String {
    for expr in [
        "upstream_component_status_code != 1",
        "upstream_component_status_code",
    ] {
        if let Some(s) = prom.vector(expr).await.first() {
            return dashboard::regex_escape(s.label("component"));
        }
    }
    ".*".to_string()
}

/// Run every dashboard query, variables expanded, in this scenario.
async fn check_dashboard(prom: &Prom, scenario: Scenario) {
    let dash = dashboard::load();
    let values = Values {
        job: JOB.to_string(),
        target: "(primary|secondary|payments)".to_string(),
        component: pick_component(prom).await,
    };

    // The variable queries themselves, as Grafana runs label_values().
    for (name, must_contain) in [("target", "payments"), ("component", "")] {
        let var = dashboard::variable(&dash, name);
        let (selector, label) =
            dashboard::parse_label_values(var["definition"].as_str().expect("definition"));
        let selector = dashboard::expand(&selector, &values);
        let found = prom
            .label_values(&label, &selector)
            .await
            .unwrap_or_else(|e| panic!("variable {name}: {selector}: {e}"));
        if scenario != X {
            assert!(
                !found.is_empty(),
                "variable {name} lists nothing in {scenario:?}"
            );
        }
        assert!(
            must_contain.is_empty() || found.iter().any(|v| v == must_contain),
            "variable {name}: {found:?}"
        );
    }

    let mut problems = Vec::new();
    for q in dashboard::queries(&dash) {
        let expr = dashboard::expand(&q.expr, &values);
        let wanted = PANEL_DATA
            .iter()
            .filter(|(title, _)| *title == q.title)
            .any(|(_, scenarios)| scenarios.contains(&scenario));
        match prom.query(&expr).await {
            Err(e) => problems.push(format!(
                "panel {} {:?} query {}: {e}\n    {expr}",
                q.panel_id, q.title, q.ref_id
            )),
            Ok(samples) if wanted && samples.is_empty() => problems.push(format!(
                "panel {} {:?} query {} returned no data in {scenario:?}\n    {expr}",
                q.panel_id, q.title, q.ref_id
            )),
            Ok(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard queries in {scenario:?}:\n  {}",
        problems.join("\n  ")
    );
}

fn alert_rule_names() -> BTreeSet<String> {
    alert_rules(&yaml("deploy/prometheus/alerts.yaml"))
        .iter()
        .map(|r| r["alert"].as_str().expect("alert name").to_string())
        .collect()
}

fn alert_rules(file: &Value) -> Vec<Value> {
    file["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

// ---------------------------------------------------------------------------
// Static checks (no Prometheus needed)
// ---------------------------------------------------------------------------

/// Metric names an expression refers to (identifiers followed by `{`,
/// `[`, `)` or whitespace that look like metric names).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == '"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if !in_string && (c.is_ascii_alphabetic() || c == '_') {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            if word == "up" || word.starts_with("upstream_") || word.starts_with("process_") {
                out.insert(word);
            }
            continue;
        }
        i += 1;
    }
    out
}

#[test]
fn dashboard_is_well_formed_and_selects_the_job_in_one_place() {
    let dash = dashboard::load();
    assert!(
        dash["schemaVersion"].as_i64().unwrap() >= 39,
        "current schema"
    );
    assert_eq!(dash["uid"], "upstream-exporter");
    assert!(dash["id"].is_null(), "no instance-specific id");

    let ds = dashboard::variable(&dash, "datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let job = dashboard::variable(&dash, "job");
    assert!(matches!(job["type"].as_str(), Some("custom" | "constant")));
    assert_eq!(job["query"], JOB, "the job is set in the job variable");
    for name in ["target", "component"] {
        let v = dashboard::variable(&dash, name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        assert_eq!(v["definition"], v["query"]["query"], "{name}");
        assert!(v["definition"].as_str().unwrap().contains("job=\"$job\""));
        assert_eq!(
            v["allValue"], ".*",
            "{name}: All must not expand to a huge regex"
        );
    }

    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for p in dashboard::panels(&dash) {
        let id = p["id"].as_i64().expect("id");
        assert!(ids.insert(id), "panel id {id} used twice");
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_i64().unwrap(),
            g["y"].as_i64().unwrap(),
            g["w"].as_i64().unwrap(),
            g["h"].as_i64().unwrap(),
        );
        assert!(
            x >= 0 && w > 0 && h > 0 && x + w <= 24,
            "panel {id} gridPos {g}"
        );
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "panel {id} overlaps another at {cx},{cy}"
                );
            }
        }
        if p["type"] == "row" {
            continue;
        }
        titles.insert(p["title"].as_str().unwrap().to_string());
        assert!(
            !p["description"].as_str().unwrap_or("").is_empty(),
            "panel {id} has a description"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {id}");
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {id}");
        }
    }

    let known: BTreeSet<&str> = KNOWN_METRICS.iter().copied().collect();
    for q in dashboard::queries(&dash) {
        assert!(
            q.expr.contains("job=\"$job\""),
            "panel {:?} does not select job=\"$job\": {}",
            q.title,
            q.expr
        );
        assert!(
            !q.expr.contains(JOB),
            "panel {:?} hard-codes the job",
            q.title
        );
        for m in metric_names(&q.expr) {
            assert!(
                known.contains(m.as_str()),
                "panel {:?}: unknown metric {m}",
                q.title
            );
        }
    }

    let listed: BTreeSet<String> = PANEL_DATA.iter().map(|(t, _)| t.to_string()).collect();
    assert_eq!(
        titles, listed,
        "PANEL_DATA lists exactly the dashboard's panels"
    );

    // The severity scale: values 0..5 mapped with colours green -> red.
    let page = dashboard::panels(&dash)
        .into_iter()
        .find(|p| p["title"] == "Page status")
        .unwrap();
    let options = &page["fieldConfig"]["defaults"]["mappings"][0]["options"];
    let colours: Vec<&str> = (0..=5)
        .map(|v| options[v.to_string()]["color"].as_str().expect("mapped"))
        .collect();
    assert_eq!(
        colours,
        ["text", "green", "blue", "yellow", "orange", "red"]
    );

    // The panel kinds the issue asks for.
    let kinds: BTreeSet<(String, String)> = dashboard::queries(&dash)
        .into_iter()
        .map(|q| (q.panel_type, q.expr))
        .collect();
    let has = |kind: &str, needle: &str| kinds.iter().any(|(k, e)| k == kind && e.contains(needle));
    assert!(has("stat", "upstream_page_status_code"));
    assert!(has("state-timeline", "upstream_component_status_code"));
    assert!(has("table", "upstream_incident_info"));
    assert!(has(
        "stat",
        "upstream_maintenance_next_start_timestamp_seconds"
    ));
    assert!(has("heatmap", "upstream_probe_duration_seconds_bucket"));
    assert!(has("timeseries", "histogram_quantile(0.95"));
    assert!(has("timeseries", "upstream_probe_failures_total"));
    assert!(has(
        "timeseries",
        "upstream_probe_last_success_timestamp_seconds"
    ));
    assert!(has(
        "stat",
        "upstream_exporter_config_last_reload_successful"
    ));
    assert!(has("timeseries", "process_resident_memory_bytes"));
}

#[test]
fn grafana_provisioning_points_at_the_dashboard() {
    let ds = yaml("grafana/provisioning/datasources/prometheus.yaml");
    assert_eq!(ds["apiVersion"], 1);
    let sources = ds["datasources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["type"], "prometheus");
    assert_eq!(sources[0]["url"], "http://localhost:9090");

    let providers = yaml("grafana/provisioning/dashboards/upstream-exporter.yaml");
    assert_eq!(providers["apiVersion"], 1);
    let p = &providers["providers"][0];
    assert_eq!(p["type"], "file");
    let path = p["options"]["path"].as_str().unwrap();
    assert!(
        path.ends_with("/dashboards"),
        "provider path {path} is where grafana/dashboards/ is mounted"
    );
}

#[test]
fn alert_rules_are_complete_and_link_the_readme_runbook() {
    let rules = alert_rules(&yaml("deploy/prometheus/alerts.yaml"));
    let readme = read("README.md");
    let runbook = readme
        .split("\n## Runbook\n")
        .nth(1)
        .expect("README has a ## Runbook section");
    let runbook = runbook.split("\n## ").next().unwrap();
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().to_lowercase())
        .collect();
    let tests = yaml("deploy/prometheus/alerts_test.yaml");
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for t in tests["tests"].as_array().unwrap() {
        for case in t["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap().to_string();
            if case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()) {
                fires.insert(name);
            } else {
                quiet.insert(name);
            }
        }
    }

    let mut names = BTreeSet::new();
    for r in &rules {
        let name = r["alert"].as_str().expect("only alerting rules");
        names.insert(name.to_lowercase());
        let severity = r["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                !r["annotations"][key]
                    .as_str()
                    .unwrap_or("")
                    .trim()
                    .is_empty(),
                "{name}: annotation {key}"
            );
        }
        assert_eq!(
            r["annotations"]["runbook_url"],
            format!("{README_URL}#{}", name.to_lowercase()),
            "{name}: runbook_url"
        );
        assert!(
            anchors.contains(&name.to_lowercase()),
            "README's Runbook has no `### {name}` section"
        );
        assert!(
            r["expr"]
                .as_str()
                .unwrap()
                .contains("job=\"upstream-exporter\""),
            "{name} selects the exporter's job"
        );
        assert!(
            fires.contains(name),
            "alerts_test.yaml never shows {name} firing"
        );
        assert!(
            quiet.contains(name),
            "alerts_test.yaml never shows {name} not firing"
        );
    }
    assert_eq!(anchors, names, "one runbook section per alert, no more");
    for required in [
        "upstream_page_status_code",
        "upstream_component_status_code",
        "upstream_probe_success",
        "upstream_probe_last_success_timestamp_seconds",
        "upstream_incident_info",
        "upstream_tls_cert_not_after_timestamp_seconds",
        "upstream_exporter_config_last_reload_successful",
        "absent(up{",
        "up{job",
    ] {
        assert!(
            rules
                .iter()
                .any(|r| r["expr"].as_str().unwrap().contains(required)),
            "no alert on {required}"
        );
    }
    let known: BTreeSet<&str> = KNOWN_METRICS.iter().copied().collect();
    for r in &rules {
        for m in metric_names(r["expr"].as_str().unwrap()) {
            assert!(
                known.contains(m.as_str()),
                "{}: unknown metric {m}",
                r["alert"]
            );
        }
    }
}

#[test]
fn prometheus_rule_manifest_carries_the_same_rules() {
    let alerts = yaml("deploy/prometheus/alerts.yaml");
    let manifest = yaml("deploy/kubernetes/base/prometheusrule.yaml");
    assert_eq!(manifest["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(manifest["kind"], "PrometheusRule");
    assert_eq!(
        manifest["spec"]["groups"], alerts["groups"],
        "regenerate it: bash deploy/prometheus/generate-prometheusrule.sh > deploy/kubernetes/base/prometheusrule.yaml"
    );
}

#[test]
fn kubernetes_config_passes_config_check() {
    {
        let config = "deploy/kubernetes/base/exporter.yaml";
        let out = Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
            .arg("--config.check")
            .arg(format!("--config.file={}", repo(config).display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{config}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK"));
    }
}
