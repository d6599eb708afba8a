//! Every real Statuspage body, served by a local server as `summary.json`,
//! goes through the daemon's whole path (HTTP client, parser, publish,
//! `/metrics` rendering) and the rendered series are checked against the
//! body itself. Plus an insta snapshot of `/metrics` for one fixture.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::{fixture, probe, statuspage_target_with};
use upstream_exporter::metrics::{ExporterStatus, Format, Metrics};
use upstream_exporter::state::{SharedTargets, TargetSet, TargetState};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Serve `body` as summary.json, probe it once, and render `/metrics`.
async fn render_after_probe(body: Vec<u8>, extra_config: &str, block: &str) -> String {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/summary.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .mount(&server)
        .await;
    let config = statuspage_target_with(&server.uri(), extra_config, block);
    let state = Arc::new(TargetState::new(config.clone()));
    let result = probe(&config).await;
    upstream_exporter::runner::publish(&state, result, Duration::from_millis(42));
    let targets = SharedTargets::default();
    targets.store(Arc::new(TargetSet {
        targets: vec![state],
    }));
    Metrics::new(targets, Arc::new(ExporterStatus::default())).render(Format::Text)
}

fn word_to_code(word: &str) -> i64 {
    match word {
        "operational" => 1,
        "under_maintenance" => 2,
        "degraded_performance" => 3,
        "partial_outage" => 4,
        "major_outage" => 5,
        _ => 0,
    }
}

/// Non-group components of a body, computed independently of the parser:
/// id → (name, code).
fn expected_components(body: &serde_json::Value) -> HashMap<String, (String, i64)> {
    let rows = body["components"].as_array().cloned().unwrap_or_default();
    let parents: HashSet<String> = rows
        .iter()
        .filter_map(|r| r["group_id"].as_str().map(str::to_string))
        .collect();
    rows.iter()
        .filter(|r| {
            let id = r["id"].as_str().unwrap_or_default();
            let is_group = r["group"].as_bool() == Some(true)
                || parents.contains(id)
                || r["components"].as_array().is_some_and(|c| !c.is_empty());
            !is_group
        })
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (
                    r["name"].as_str().unwrap_or_default().to_string(),
                    word_to_code(r["status"].as_str().unwrap_or_default()),
                ),
            )
        })
        .collect()
}

/// `upstream_component_status_code` samples: component_id → (line, value).
fn component_series(metrics: &str) -> Vec<(String, i64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("upstream_component_status_code{"))
        .map(|l| {
            let id_start = l.find("component_id=\"").unwrap() + "component_id=\"".len();
            let id_end = id_start + l[id_start..].find('"').unwrap();
            let value: i64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            (l[id_start..id_end].to_string(), value)
        })
        .collect()
}

#[tokio::test]
async fn every_real_statuspage_fixture_is_exported_exactly() {
    let dir = fixture("statuspage");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 26,
        "expected every shared fixture copied, found {}",
        files.len()
    );
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&file).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let expected = expected_components(&body);
        let metrics = render_after_probe(bytes, "", "max_components: 5000").await;
        assert!(
            metrics.contains("upstream_probe_success{target=\"t\"} 1"),
            "{name}: probe failed:\n{metrics}"
        );
        let series = component_series(&metrics);
        assert_eq!(
            series.len(),
            expected.len(),
            "{name}: component series count"
        );
        let mut seen = HashSet::new();
        for (id, code) in &series {
            assert!(
                seen.insert(id.clone()),
                "{name}: two series for component {id}"
            );
            let (_, want) = expected
                .get(id)
                .unwrap_or_else(|| panic!("{name}: exported unexpected {id}"));
            assert_eq!(code, want, "{name}: component {id}");
        }
    }
}

#[tokio::test]
async fn duo_exports_470_components_with_duplicate_names() {
    let bytes = common::fixture_bytes("statuspage/duo-components.json");
    let metrics = render_after_probe(bytes, "", "").await;
    let series = component_series(&metrics);
    assert_eq!(series.len(), 470);
    let names: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("upstream_component_status_code{"))
        .map(|l| {
            let s = l.find("component=\"").unwrap() + "component=\"".len();
            &l[s..s + l[s..].find('"').unwrap()]
        })
        .collect();
    let distinct: HashSet<&str> = names.iter().copied().collect();
    assert!(
        distinct.len() < names.len(),
        "Duo repeats names; all must be present"
    );
}

#[tokio::test]
async fn max_components_caps_series() {
    let bytes = common::fixture_bytes("statuspage/duo-components.json");
    let metrics = render_after_probe(bytes, "", "max_components: 100").await;
    assert_eq!(component_series(&metrics).len(), 100);
}

#[tokio::test]
async fn metrics_snapshot_github_with_problem() {
    let bytes = common::fixture_bytes("statuspage/github-components-with-problem.json");
    let metrics = render_after_probe(bytes, "    labels: { team: dev }\n", "").await;
    // Drop what varies between runs: timestamps, the local port in the url
    // label, process figures and build identity.
    let stable: String = metrics
        .lines()
        .filter(|l| {
            !l.starts_with("process_")
                && !l.contains("_timestamp_seconds")
                && !l.starts_with("upstream_exporter_build_info")
                && !l.starts_with("# HELP process_")
                && !l.starts_with("# TYPE process_")
        })
        .map(|l| {
            if l.starts_with("upstream_target_info") {
                let s = l.find("url=\"").unwrap();
                let e = s + l[s..].find("\",").unwrap_or(l[s..].find("\"}").unwrap());
                format!("{}url=\"<local>{}", &l[..s], &l[e..])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(stable);
}
