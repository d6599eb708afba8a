//! `/metrics` with every prober kind active at once: one target of each of
//! the ten prober blocks, served locally (real recorded bodies for the
//! vendors that have them, the documented schema for Instatus, an HTTPS
//! server with an rcgen chain for `http`, a JSON API for `json`), probed
//! through the daemon's path, rendered in both formats, and checked by
//! `promtool check metrics` (required under CI=true).

mod common;
mod tls_server;

use std::sync::Arc;
use std::time::Duration;

use common::{fixture_bytes, require};
use upstream_exporter::config::Config;
use upstream_exporter::metrics::{ExporterStatus, Format, Metrics};
use upstream_exporter::probe::ProberKind;
use upstream_exporter::runner::run_probe;
use upstream_exporter::state::{SharedTargets, TargetSet, TargetState};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Instatus' documented `summary.json` / `components.json` shapes (no real
/// recorded body exists).
const INSTATUS_SUMMARY: &str = r#"{"page": {"name": "x", "url": "https://x", "status": "HASISSUES"},
  "activeIncidents": [{"id": "inc1", "name": "API errors", "started": "2022-06-11T18:55:50.000Z",
    "status": "INVESTIGATING", "impact": "PARTIALOUTAGE"}],
  "activeMaintenances": []}"#;
const INSTATUS_COMPONENTS: &str = r#"[
  {"id": "c1", "name": "API", "status": "PARTIALOUTAGE", "group": null},
  {"id": "c2", "name": "Website", "status": "OPERATIONAL", "group": null}]"#;
const CACHET_EMPTY_PAGE: &str = r#"{"meta": {"pagination": {"total": 0, "count": 0, "per_page": 100, "current_page": 1, "total_pages": 1, "links": {"next_page": null, "previous_page": null}}}, "data": []}"#;
const STATS: &str = r#"{"queues": [{"name": "orders", "depth": 4, "state": "ok"},
  {"name": "emails", "depth": 0, "state": "degraded"}], "processed": 1234}"#;

async fn serve(server: &MockServer, at: &str, status: u16, body: Vec<u8>) {
    Mock::given(path(at))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
        .mount(server)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_with_every_prober_active_pass_promtool() {
    let s = MockServer::start().await;
    serve(
        &s,
        "/statuspage/api/v2/summary.json",
        200,
        fixture_bytes("statuspage/twilio-summary-incidents-and-scheduled-maintenances.json"),
    )
    .await;
    serve(
        &s,
        "/1.0/status/533c6539221ae15e3f000031",
        200,
        fixture_bytes("statusio/docker-status-partial-disruption-400.json"),
    )
    .await;
    serve(&s, "/instatus/summary.json", 200, INSTATUS_SUMMARY.into()).await;
    serve(
        &s,
        "/instatus/components.json",
        200,
        INSTATUS_COMPONENTS.into(),
    )
    .await;
    serve(
        &s,
        "/cachet/api/v1/components",
        200,
        fixture_bytes("cachet/yoti-v1-components-all-operational.json"),
    )
    .await;
    serve(&s, "/cachet/api/v1/components/groups", 404, Vec::new()).await;
    serve(
        &s,
        "/cachet/api/v1/incidents",
        200,
        CACHET_EMPTY_PAGE.into(),
    )
    .await;
    serve(
        &s,
        "/api/v2.0.0/current",
        200,
        fixture_bytes("slack/current-two-active-incidents.json"),
    )
    .await;
    serve(
        &s,
        "/incidents.json",
        200,
        fixture_bytes("gcp/incidents-history-2022-07.json"),
    )
    .await;
    serve(
        &s,
        "/api/v4/current-status",
        200,
        fixture_bytes("heroku/current-status-open-incident.json"),
    )
    .await;
    serve(
        &s,
        "/v1/instances/status/preview",
        200,
        fixture_bytes("salesforce/instances-status-preview.json"),
    )
    .await;
    serve(&s, "/stats", 200, STATS.into()).await;

    let pki = tls_server::Pki::new();
    let (chain, key, _) = pki.leaf((2020, 1, 1), (2035, 1, 1));
    let https = tls_server::https_server(chain, key, None).await;

    let base = s.uri();
    let yaml = format!(
        r#"defaults:
  interval: 60s
  timeout: 10s
  retries: 0
targets:
  - name: statuspage
    labels: {{ team: dev }}
    statuspage: {{ url: "{base}/statuspage" }}
  - name: statusio
    statusio: {{ url: "{base}", page_id: 533c6539221ae15e3f000031 }}
  - name: instatus
    instatus: {{ url: "{base}/instatus" }}
  - name: cachet
    cachet: {{ url: "{base}/cachet" }}
  - name: slack
    slack: {{ url: "{base}" }}
  - name: gcp
    google_cloud: {{ url: "{base}", products: ["Google BigQuery", "Cloud Run"] }}
  - name: heroku
    heroku: {{ url: "{base}" }}
  - name: salesforce
    salesforce: {{ url: "{base}", components: {{ include: [POD5, AP18] }} }}
  - name: health
    labels: {{ team: payments }}
    tls: {{ ca_file: "{ca}" }}
    http:
      url: "https://localhost:{port}/healthz"
      expect: {{ status: [200], body_regex: ok, max_latency: 5s }}
  - name: queue
    labels: {{ team: core }}
    json:
      url: "{base}/stats"
      metrics:
        - name: queue_depth
          help: Messages waiting per queue
          path: "$.queues[*]"
          value: "$.depth"
          labels: {{ queue: "$.name" }}
        - name: queue_healthy
          path: "$.queues[*]"
          value: "$.state"
          labels: {{ queue: "$.name" }}
          value_map: {{ ok: 1, degraded: 0.5 }}
        - name: jobs_processed
          type: counter
          path: "$.processed"
"#,
        ca = pki.path("ca.pem"),
        port = https.port(),
    );
    let config = Config::from_bytes(yaml.as_bytes(), std::path::Path::new("every.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<ProberKind> = config.targets.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds.len(), 10);

    let clients = upstream_exporter::http::HttpClients::new();
    let hosts = upstream_exporter::runner::HostLimits::new(4);
    let mut states = Vec::new();
    for t in &config.targets {
        let state = Arc::new(TargetState::new(t.clone()));
        let result = run_probe(t, &clients, &hosts).await;
        assert!(result.is_ok(), "{}: {result:?}", t.name);
        upstream_exporter::runner::publish(&state, result, Duration::from_millis(20));
        states.push(state);
    }
    states.sort_by(|a, b| a.name().cmp(b.name()));
    let targets = SharedTargets::default();
    targets.store(Arc::new(TargetSet { targets: states }));
    let metrics = Metrics::new(targets, Arc::new(ExporterStatus::default()));
    let text = metrics.render(Format::Text);
    let om = metrics.render(Format::OpenMetrics);

    for kind in &kinds {
        assert!(
            text.contains(&format!("prober=\"{kind}\"")),
            "no target_info for {kind}"
        );
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("upstream_probe_success{") && l.ends_with(" 1"))
            .count(),
        10,
        "{text}"
    );
    for family in [
        "upstream_page_status_code{target=\"statusio\"}",
        "upstream_tls_cert_not_after_timestamp_seconds{target=\"health\",team=\"payments\"}",
        "upstream_tls_chain_earliest_not_after_timestamp_seconds{target=\"health\",team=\"payments\"}",
        "queue_depth{target=\"queue\",queue=\"orders\",team=\"core\"} 4",
        "queue_healthy{target=\"queue\",queue=\"emails\",team=\"core\"} 0.5",
        "jobs_processed_total{target=\"queue\",team=\"core\"} 1234",
    ] {
        assert!(text.contains(family), "missing {family}:\n{text}");
    }
    assert!(om.contains("# TYPE jobs_processed counter\n"), "{om}");
    assert!(om.ends_with("# EOF\n"));

    if require("promtool") {
        common::promtool_check_metrics(&text);
    }
}
