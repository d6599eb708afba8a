//! The real binary against a local fixture upstream: start on a free port,
//! wait for `/-/ready`, scrape `/metrics` over HTTP in both formats, check
//! the body with `promtool check metrics`, and stop cleanly on SIGTERM.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{config_file, fixture_bytes, free_port, http_client, require};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Kills the exporter if a test fails before stopping it.
struct Exporter {
    child: Child,
    base: String,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_exporter(config_path: &std::path::Path) -> Exporter {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn exporter");
    Exporter {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "exporter not ready within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_correct_metrics_and_exits_cleanly() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/summary.json"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture_bytes(
            "statuspage/twilio-summary-incidents-and-scheduled-maintenances.json",
        )))
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("exporter.yaml");
    std::fs::write(
        &config_path,
        format!(
            "defaults:\n  interval: 2s\n  timeout: 1s\ntargets:\n  - name: twilio\n    labels: {{ team: comms }}\n    statuspage: {{ url: \"{}\" }}\n",
            upstream.uri()
        ),
    )
    .unwrap();

    let mut exporter = start_exporter(&config_path);
    let client = http_client();
    wait_ready(&client, &exporter.base, Duration::from_secs(10)).await;

    let healthy = client
        .get(format!("{}/-/healthy", exporter.base))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);

    let response = client
        .get(format!("{}/metrics", exporter.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    for expected in [
        "upstream_probe_success{target=\"twilio\",team=\"comms\"} 1",
        "upstream_page_status_code{target=\"twilio\",team=\"comms\"} 3",
        "upstream_incidents_open{target=\"twilio\",impact=\"minor\",team=\"comms\"}",
        "# TYPE upstream_probes_total counter",
        "# TYPE upstream_target_info gauge",
        "upstream_exporter_config_last_reload_successful 1",
        "upstream_exporter_targets 1",
        "process_resident_memory_bytes ",
        "upstream_probe_duration_seconds_bucket{le=\"+Inf\",target=\"twilio\",team=\"comms\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    let om = client
        .get(format!("{}/metrics", exporter.base))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let om = om.text().await.unwrap();
    assert!(om.trim_end().ends_with("# EOF"));

    // A client that does not inflate for us, to see the wire format.
    let raw_client = reqwest::Client::builder()
        .tls_backend_preconfigured(
            upstream_exporter::http::rustls_config(&Default::default()).unwrap(),
        )
        .no_gzip()
        .build()
        .unwrap();
    let gz = raw_client
        .get(format!("{}/metrics", exporter.base))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let compressed = gz.bytes().await.unwrap();
    assert_eq!(&compressed[..2], &[0x1f, 0x8b], "gzip magic");

    if require("promtool") {
        common::promtool_check_metrics(&text);
    }

    // SIGTERM drains and exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &exporter.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(code) = exporter.child.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "exporter did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
}

/// With `interval: 1h`, the first probes still come within
/// `runner::FIRST_PROBE_SPREAD` of the start (and the replica is ready),
/// not at a random point of the hour; the second waits for the grid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_intervals_probe_first_within_the_spread_and_then_keep_to_their_grid() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/summary.json"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture_bytes(
            "statuspage/github-summary-all-operational-2026.json",
        )))
        .mount(&upstream)
        .await;
    let targets: String = (0..5)
        .map(|i| {
            format!(
                "  - name: hourly{i}\n    statuspage: {{ url: \"{}\" }}\n",
                upstream.uri()
            )
        })
        .collect();
    let (_dir, config_path) = config_file(&format!(
        "defaults:\n  interval: 1h\n  timeout: 2s\ntargets:\n{targets}"
    ));

    let started = Instant::now();
    let exporter = start_exporter(&config_path);
    let client = http_client();
    // The spread (10 s), a probe's timeout and the process's start.
    wait_ready(&client, &exporter.base, Duration::from_secs(14)).await;
    eprintln!("ready after {:?}", started.elapsed());
    let probes = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("upstream_probes_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let text = client
        .get(format!("{}/metrics", exporter.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(probes(&text), ["1"; 5], "{text}");
    // No second probe right after the prompt one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(upstream.received_requests().await.unwrap().len(), 5);
}

#[test]
fn config_check_prints_ok_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "targets:\n  - name: a\n    statuspage: { url: \"https://status.example.com\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
        .args([
            "--config.check",
            &format!("--config.file={}", good.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "targets:\n  - name: a\n    intervall: 10s\n    statuspage: { url: \"https://status.example.com\" }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
        .args([
            "--config.check",
            &format!("--config.file={}", bad.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:3:"), "{stderr}");
    assert!(stderr.contains("intervall"), "{stderr}");
}

#[test]
fn bad_config_at_start_exits_1_naming_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("exporter.yaml");
    std::fs::write(&bad, "targets:\n  - name: a\n    timeout: 90s\n    interval: 30s\n    statuspage: { url: \"https://status.example.com\" }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
        .arg(format!("--config.file={}", bad.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exporter.yaml:"), "{stderr}");
    assert!(stderr.contains("timeout"), "{stderr}");
}
