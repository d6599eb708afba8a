//! Failure classification, each case against a real local server: what
//! reason a failure gets, which failures are retried, and that every probe
//! ends within its configured timeout.

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{fixture_bytes, probe, statuspage_target};
use tokio::io::AsyncReadExt;
use upstream_exporter::probe::Reason;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SUMMARY: &str = "/api/v2/summary.json";

fn github() -> Vec<u8> {
    fixture_bytes("statuspage/github-summary-all-operational-2026.json")
}

async fn server_with(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SUMMARY))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn not_found_is_http_status_and_not_retried() {
    let server = server_with(ResponseTemplate::new(404)).await;
    let err = probe(&statuspage_target(&server.uri(), ""))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::HttpStatus);
    assert_eq!(err.http_status, Some(404));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_500s_then_200_is_retried_to_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SUMMARY))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SUMMARY))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(github()))
        .with_priority(2)
        .mount(&server)
        .await;
    let ok = probe(&statuspage_target(&server.uri(), "")).await.unwrap();
    assert_eq!(ok.http_status, 200);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn persistent_500_fails_after_retries() {
    let server = server_with(ResponseTemplate::new(503)).await;
    let err = probe(&statuspage_target(&server.uri(), "    retries: 2\n"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::HttpStatus);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn rate_limited_waits_for_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SUMMARY))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SUMMARY))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(github()))
        .with_priority(2)
        .mount(&server)
        .await;
    let started = Instant::now();
    probe(&statuspage_target(&server.uri(), "")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_timeout_fails_fast_as_rate_limited() {
    let server = server_with(ResponseTemplate::new(429).insert_header("Retry-After", "120")).await;
    let started = Instant::now();
    let err = probe(&statuspage_target(&server.uri(), ""))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(120)));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn server_that_never_answers_times_out_within_bound() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            // Read the request, never answer.
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            held.push(stream);
        }
    });
    let target = statuspage_target(
        &format!("http://{addr}"),
        "    timeout: 1s\n    interval: 5s\n",
    );
    let started = Instant::now();
    let err = probe(&target).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.reason, Reason::Timeout);
    assert!(err.message.contains("1s"), "{}", err.message);
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    holder.abort();
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let port = common::free_port();
    let target = statuspage_target(&format!("http://127.0.0.1:{port}"), "    retries: 1\n");
    let err = probe(&target).await.unwrap_err();
    assert_eq!(err.reason, Reason::Connect, "{err}");
}

#[tokio::test]
async fn html_answer_is_decode() {
    let html =
        "<!DOCTYPE html><html><head><title>Status</title></head><body>We moved</body></html>";
    let server = server_with(ResponseTemplate::new(200).set_body_raw(html, "text/html")).await;
    let err = probe(&statuspage_target(&server.uri(), ""))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Decode);
    assert_eq!(err.http_status, Some(200));
}

#[tokio::test]
async fn json_of_another_shape_is_schema() {
    let server = server_with(
        ResponseTemplate::new(200)
            .set_body_raw(r#"{"status":"ok","checks":[]}"#, "application/json"),
    )
    .await;
    let err = probe(&statuspage_target(&server.uri(), ""))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Schema);
}

#[tokio::test]
async fn body_over_max_body_size_is_too_large() {
    let server = server_with(ResponseTemplate::new(200).set_body_bytes(github())).await;
    let err = probe(&statuspage_target(
        &server.uri(),
        "    max_body_size: 1KiB\n",
    ))
    .await
    .unwrap_err();
    assert_eq!(err.reason, Reason::TooLarge);
}

#[tokio::test]
async fn gzip_that_inflates_past_the_limit_is_too_large() {
    // 8 MiB of spaces inside a JSON document compresses to a few KiB.
    let mut inflated = b"{\"page\":{},\"components\":[]".to_vec();
    inflated.extend(std::iter::repeat_n(b' ', 8 * 1024 * 1024));
    inflated.push(b'}');
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&inflated).unwrap();
    let compressed = gz.finish().unwrap();
    assert!(
        compressed.len() < 64 * 1024,
        "test body should be small on the wire"
    );
    let server = server_with(
        ResponseTemplate::new(200)
            .insert_header("Content-Encoding", "gzip")
            .set_body_raw(compressed, "application/json"),
    )
    .await;
    let err = probe(&statuspage_target(
        &server.uri(),
        "    max_body_size: 1MiB\n",
    ))
    .await
    .unwrap_err();
    assert_eq!(err.reason, Reason::TooLarge, "{err}");
}

#[tokio::test]
async fn gzip_within_the_limit_is_inflated_and_parsed() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&github()).unwrap();
    let server = server_with(
        ResponseTemplate::new(200)
            .insert_header("Content-Encoding", "gzip")
            .set_body_raw(gz.finish().unwrap(), "application/json"),
    )
    .await;
    let ok = probe(&statuspage_target(&server.uri(), "")).await.unwrap();
    let upstream_exporter::probe::ProbeOutput::Status(s) = ok.output else {
        panic!("a statuspage probe yields a status snapshot");
    };
    assert_eq!(s.component_count(), 12);
    let req = &server.received_requests().await.unwrap()[0];
    assert!(
        req.headers
            .get("accept-encoding")
            .is_some_and(|v| v.to_str().unwrap().contains("gzip"))
    );
    assert_eq!(req.headers.get("accept").unwrap(), "application/json");
    assert!(
        req.headers
            .get("user-agent")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("upstream-exporter/")
    );
}

#[tokio::test]
async fn redirect_loop_is_redirect() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/api/v2/summary.json"))
        .mount(&server)
        .await;
    let err = probe(&statuspage_target(&server.uri(), ""))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Redirect, "{err}");
}

/// The page as it is probed twice, through the daemon's publish: the
/// record after the second answer.
async fn record_after(
    first: Vec<u8>,
    second: Vec<u8>,
    block: &str,
) -> upstream_exporter::state::ProbeRecord {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SUMMARY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(first, "application/json"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SUMMARY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(second, "application/json"))
        .mount(&server)
        .await;
    let config = common::statuspage_target_with(&server.uri(), "", block);
    let state = upstream_exporter::state::TargetState::new(config.clone());
    for _ in 0..2 {
        let result = probe(&config).await;
        upstream_exporter::runner::publish(&state, result, Duration::from_millis(5));
    }
    upstream_exporter::state::ProbeRecord::clone(&state.record())
}

/// GitHub's page with its `Webhooks` component renamed and a critical
/// indicator, as a vendor renaming a component mid-incident sends it.
fn github_renamed_and_critical() -> Vec<u8> {
    let mut page: serde_json::Value = serde_json::from_slice(&github()).unwrap();
    for row in page["components"].as_array_mut().unwrap() {
        if row["name"] == "Webhooks" {
            row["name"] = "Webhooks v2".into();
        }
    }
    page["status"]["indicator"] = "critical".into();
    serde_json::to_vec(&page).unwrap()
}

/// A filter that matches nothing any more (the one component it names
/// was renamed) leaves a page that still lists its components: the probe
/// succeeds and the page's status goes on being exported. Only a page
/// that itself lists none has changed shape (`schema`).
#[tokio::test]
async fn a_filter_that_stops_matching_is_not_a_page_that_lost_its_components() {
    let include = r#"components: { include: ["^Webhooks$"] }"#;
    let record = record_after(github(), github_renamed_and_critical(), include).await;
    assert!(record.success, "{:?}", record.error);
    let snapshot = record.status.expect("a snapshot");
    assert_eq!(snapshot.component_count(), 0);
    assert_eq!(snapshot.page.code(), 5);

    let mut emptied: serde_json::Value = serde_json::from_slice(&github()).unwrap();
    emptied["components"] = serde_json::json!([]);
    let emptied = serde_json::to_vec(&emptied).unwrap();
    let record = record_after(github(), emptied, include).await;
    assert!(!record.success);
    let error = record.error.expect("an error");
    assert_eq!(error.reason, Reason::Schema, "{error}");
}
