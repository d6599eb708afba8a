//! The `http` prober against real local servers: status expectations (codes,
//! ranges, classes), body regexes, `max_latency`, redirects followed or not,
//! method/headers/body, and HTTPS with certificates made by rcgen: a private
//! CA trusted via `tls.ca_file`, an expired certificate, `server_name`,
//! `insecure_skip_verify`, mTLS against a server that requires a client
//! certificate, and the two expiry gauges equal to the certificates'
//! `not_after`, rendered on `/metrics`.

mod common;
mod tls_server;

use std::sync::Arc;
use std::time::Duration;

use common::{probe, target};
use tls_server::{Pki, https_server, https_server_renewable};
use upstream_exporter::config::TargetConfig;
use upstream_exporter::http::HttpClients;
use upstream_exporter::metrics::{ExporterStatus, Format, Metrics};
use upstream_exporter::probe::{HttpSnapshot, ProbeError, ProbeOutput, ProbeSuccess, Reason};
use upstream_exporter::runner::{HostLimits, run_probe};
use upstream_exporter::state::{SharedTargets, TargetSet, TargetState};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An `http` target: `block` lines go inside `http:` (indented 6 spaces),
/// `extra` lines are target fields (indented 4 spaces).
fn http_target(url: &str, block: &str, extra: &str) -> Arc<TargetConfig> {
    target(&format!(
        "defaults:\n  interval: 30s\n  timeout: 5s\n  retries: 0\n  backoff: {{ initial: 10ms, max: 20ms }}\n\
         targets:\n  - name: t\n{extra}    http:\n      url: \"{url}\"\n{block}"
    ))
}

fn ok(result: Result<ProbeSuccess, ProbeError>) -> (u16, HttpSnapshot) {
    match result {
        Ok(ProbeSuccess {
            http_status,
            output: ProbeOutput::Http(snap),
        }) => (http_status, snap),
        other => panic!("expected an http success, got {other:?}"),
    }
}

fn failed(result: Result<ProbeSuccess, ProbeError>) -> ProbeError {
    match result {
        Err(e) => e,
        Ok(s) => panic!("expected a failure, got {s:?}"),
    }
}

async fn serve(server: &MockServer, at: &str, response: ResponseTemplate) {
    Mock::given(path(at))
        .respond_with(response)
        .mount(server)
        .await;
}

#[tokio::test]
async fn status_expectations_codes_ranges_and_classes() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/ok",
        ResponseTemplate::new(200).set_body_string("ok"),
    )
    .await;
    serve(&server, "/empty", ResponseTemplate::new(204)).await;
    serve(&server, "/teapot", ResponseTemplate::new(418)).await;
    let url = |p: &str| format!("{}{p}", server.uri());

    // Default: any 2xx.
    assert_eq!(ok(probe(&http_target(&url("/ok"), "", "")).await).0, 200);
    assert_eq!(ok(probe(&http_target(&url("/empty"), "", "")).await).0, 204);
    let e = failed(probe(&http_target(&url("/teapot"), "", "")).await);
    assert_eq!(e.reason, Reason::Expectation);
    assert_eq!(e.http_status, Some(418), "the status is still exported");
    assert!(
        e.message.contains("HTTP 418, expected 2xx"),
        "{}",
        e.message
    );

    // A list of codes.
    let listed = "      expect: { status: [200, 204] }\n";
    assert_eq!(
        ok(probe(&http_target(&url("/empty"), listed, "")).await).0,
        204
    );
    let e = failed(probe(&http_target(&url("/teapot"), listed, "")).await);
    assert_eq!((e.reason, e.http_status), (Reason::Expectation, Some(418)));
    assert!(e.message.contains("one of 200, 204"), "{}", e.message);
    // One code only: a 200 is not enough.
    let only_204 = "      expect: { status: 204 }\n";
    let e = failed(probe(&http_target(&url("/ok"), only_204, "")).await);
    assert_eq!((e.reason, e.http_status), (Reason::Expectation, Some(200)));

    // Ranges and classes.
    for spec in ["[\"400-499\"]", "[\"4xx\"]", "[418]", "[200, \"410-420\"]"] {
        let block = format!("      expect: {{ status: {spec} }}\n");
        assert_eq!(
            ok(probe(&http_target(&url("/teapot"), &block, "")).await).0,
            418,
            "{spec}"
        );
    }
    let e = failed(
        probe(&http_target(
            &url("/ok"),
            "      expect: { status: [\"3xx\", \"400-404\"] }\n",
            "",
        ))
        .await,
    );
    assert_eq!(e.reason, Reason::Expectation);
}

#[tokio::test]
async fn a_5xx_outside_the_expectation_is_retried_then_fails_as_expectation() {
    let server = MockServer::start().await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let url = format!("{}/down", server.uri());
    let t = http_target(&url, "", "    retries: 2\n");
    let e = failed(probe(&t).await);
    assert_eq!((e.reason, e.http_status), (Reason::Expectation, Some(503)));
    server.verify().await;

    // Expected, a 503 is a success at the first attempt.
    let server = MockServer::start().await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}/down", server.uri());
    let t = http_target(
        &url,
        "      expect: { status: [503] }\n",
        "    retries: 2\n",
    );
    assert_eq!(ok(probe(&t).await).0, 503);
}

/// A gateway answering 502 slowly, with retries on: the probe still says
/// 502 (an unmet expectation, with the status), never a bare timeout with
/// status 0, whether no retry could finish in time or one was cut short.
#[tokio::test]
async fn a_slow_5xx_stays_the_answer_when_retries_run_out_of_time() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/slow",
        ResponseTemplate::new(502).set_delay(Duration::from_millis(700)),
    )
    .await;
    Mock::given(path("/then-hangs"))
        .respond_with(ResponseTemplate::new(502).set_delay(Duration::from_millis(50)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    serve(
        &server,
        "/then-hangs",
        ResponseTemplate::new(502).set_delay(Duration::from_secs(10)),
    )
    .await;
    for at in ["/slow", "/then-hangs"] {
        let t = target(&format!(
            "defaults:\n  interval: 30s\n  timeout: 1s\n  retries: 2\n  backoff: {{ initial: 10ms, max: 20ms }}\n\
             targets:\n  - name: t\n    http:\n      url: \"{}{at}\"\n",
            server.uri()
        ));
        let e = failed(probe(&t).await);
        assert_eq!(
            (e.reason, e.http_status),
            (Reason::Expectation, Some(502)),
            "{at}: {e:?}"
        );
    }
    let asked = server.received_requests().await.unwrap();
    let count = |at: &str| asked.iter().filter(|r| r.url.path() == at).count();
    // No retry after a 700 ms answer with 300 ms left; one after a quick one.
    assert_eq!((count("/slow"), count("/then-hangs")), (1, 2));
}

/// A 429 (or 503) with `Retry-After` that the probe could not wait out
/// fails as an unmet expectation but keeps the pause, so the runner moves
/// the target's next probe as it does for the status-page probers.
#[tokio::test]
async fn retry_after_survives_the_unmet_expectation() {
    let server = MockServer::start().await;
    for (at, status) in [("/busy", 429), ("/down", 503)] {
        serve(
            &server,
            at,
            ResponseTemplate::new(status).insert_header("Retry-After", "120"),
        )
        .await;
        let t = http_target(&format!("{}{at}", server.uri()), "", "    retries: 1\n");
        let e = failed(probe(&t).await);
        assert_eq!(
            (e.reason, e.http_status),
            (Reason::Expectation, Some(status))
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(120)), "{at}");
    }
}

#[tokio::test]
async fn body_regexes() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/health",
        ResponseTemplate::new(200).set_body_string(r#"{"status":"ok","db":"degraded"}"#),
    )
    .await;
    let url = format!("{}/health", server.uri());
    let check = |block: &str| {
        let t = http_target(&url, block, "");
        async move { probe(&t).await }
    };

    ok(check("      expect: { body_regex: '\"status\":\\s*\"ok\"' }\n").await);
    ok(check("      expect: { body_not_regex: '\"error\"' }\n").await);
    let e = failed(check("      expect: { body_regex: 'healthy' }\n").await);
    assert_eq!((e.reason, e.http_status), (Reason::Expectation, Some(200)));
    assert!(
        e.message.contains("does not match body_regex `healthy`"),
        "{}",
        e.message
    );
    let e = failed(check("      expect: { body_not_regex: 'degraded' }\n").await);
    assert_eq!(e.reason, Reason::Expectation);
    assert!(
        e.message.contains("matches body_not_regex"),
        "{}",
        e.message
    );
    // Both at once: the positive one holds, the negative one fails.
    let e =
        failed(check("      expect: { body_regex: '\"ok\"', body_not_regex: 'degraded' }\n").await);
    assert_eq!(e.reason, Reason::Expectation);
}

#[tokio::test]
async fn max_latency() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/slow",
        ResponseTemplate::new(200)
            .set_body_string("ok")
            .set_delay(Duration::from_millis(300)),
    )
    .await;
    let url = format!("{}/slow", server.uri());
    let e = failed(
        probe(&http_target(
            &url,
            "      expect: { max_latency: 100ms }\n",
            "",
        ))
        .await,
    );
    assert_eq!((e.reason, e.http_status), (Reason::Expectation, Some(200)));
    assert!(
        e.message.contains("more than max_latency 100ms"),
        "{}",
        e.message
    );
    ok(probe(&http_target(
        &url,
        "      expect: { max_latency: 3s }\n",
        "",
    ))
    .await);
}

#[tokio::test]
async fn redirects_followed_or_not() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/old",
        ResponseTemplate::new(301).insert_header("Location", "/new"),
    )
    .await;
    serve(
        &server,
        "/new",
        ResponseTemplate::new(200).set_body_string("new"),
    )
    .await;
    let url = format!("{}/old", server.uri());
    // One client pool for all three targets, as in the daemon: the
    // not-following target must get its own client.
    let clients = HttpClients::new();
    let hosts = HostLimits::new(4);

    let followed = http_target(&url, "", "");
    assert_eq!(ok(run_probe(&followed, &clients, &hosts).await).0, 200);

    let not_followed = http_target(&url, "      follow_redirects: false\n", "");
    let e = failed(run_probe(&not_followed, &clients, &hosts).await);
    assert_eq!((e.reason, e.http_status), (Reason::Expectation, Some(301)));

    let expects_301 = http_target(
        &url,
        "      follow_redirects: false\n      expect: { status: [301] }\n",
        "",
    );
    assert_eq!(ok(run_probe(&expects_301, &clients, &hosts).await).0, 301);
    // And the following client still follows.
    assert_eq!(ok(run_probe(&followed, &clients, &hosts).await).0, 200);

    // The redirected request names no page it came from: the query string
    // of the first URL may hold a token.
    let with_token = http_target(&format!("{url}?token=S3CRET"), "", "");
    assert_eq!(ok(run_probe(&with_token, &clients, &hosts).await).0, 200);
    let asked = server.received_requests().await.unwrap();
    let redirected: Vec<_> = asked.iter().filter(|r| r.url.path() == "/new").collect();
    assert!(!redirected.is_empty());
    for r in redirected {
        assert!(r.headers.get("referer").is_none(), "{:?}", r.headers);
    }
}

#[tokio::test]
async fn method_headers_and_body_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rpc"))
        .and(header("x-probe", "yes"))
        .and(header("content-type", "application/json"))
        .and(header("accept", "*/*"))
        .and(body_string(r#"{"ping":1}"#))
        .respond_with(ResponseTemplate::new(200).set_body_string("pong"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/head"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let block = "      method: post\n      headers: { X-Probe: \"yes\", Content-Type: application/json }\n      body: '{\"ping\":1}'\n      expect: { body_regex: pong }\n";
    ok(probe(&http_target(&format!("{}/rpc", server.uri()), block, "")).await);
    ok(probe(&http_target(
        &format!("{}/head", server.uri()),
        "      method: HEAD\n",
        "",
    ))
    .await);
    server.verify().await;
}

#[tokio::test]
async fn connection_refused_is_connect_not_expectation() {
    let port = common::free_port();
    let e = failed(probe(&http_target(&format!("http://127.0.0.1:{port}/"), "", "")).await);
    assert_eq!(e.reason, Reason::Connect);
    assert_eq!(e.http_status, None);
}

// ---------------------------------------------------------------------------
// HTTPS

fn tls_block(lines: &[(&str, &str)]) -> String {
    let mut out = String::from("    tls:\n");
    for (k, v) in lines {
        out.push_str(&format!("      {k}: \"{v}\"\n"));
    }
    out
}

/// Publish one probe result into a fresh target state and render `/metrics`.
fn render(config: Arc<TargetConfig>, result: Result<ProbeSuccess, ProbeError>) -> String {
    let state = Arc::new(TargetState::new(config));
    upstream_exporter::runner::publish(&state, result, Duration::from_millis(5));
    let targets = SharedTargets::default();
    targets.store(Arc::new(TargetSet {
        targets: vec![state],
    }));
    Metrics::new(targets, Arc::new(ExporterStatus::default())).render(Format::Text)
}

fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// An HTTPS server with a certificate of `pki`'s, valid until 2035-03-01:
/// its `/healthz` URL and the leaf's `not_after`.
async fn healthz_with_private_ca(pki: &Pki) -> (String, f64) {
    let (chain, key, leaf_not_after) = pki.leaf((2020, 1, 1), (2035, 3, 1));
    let addr = https_server(chain, key, None).await;
    (
        format!("https://localhost:{}/healthz", addr.port()),
        leaf_not_after,
    )
}

/// Both expiry gauges on `metrics`, with these values.
fn assert_expiry_gauges(metrics: &str, leaf_not_after: f64, chain_not_after: f64) {
    assert_eq!(
        sample(metrics, "upstream_tls_cert_not_after_timestamp_seconds"),
        Some(leaf_not_after),
        "{metrics}"
    );
    assert_eq!(
        sample(
            metrics,
            "upstream_tls_chain_earliest_not_after_timestamp_seconds"
        ),
        Some(chain_not_after),
        "{metrics}"
    );
}

#[tokio::test]
async fn https_with_private_ca_exports_both_expiry_gauges() {
    let pki = Pki::new();
    let (url, leaf_not_after) = healthz_with_private_ca(&pki).await;
    let t = http_target(&url, "", &tls_block(&[("ca_file", &pki.path("ca.pem"))]));
    let result = probe(&t).await;
    let (status, snap) = ok(result.clone());
    assert_eq!(status, 200);
    assert_eq!(snap.tls_not_after, Some(leaf_not_after));
    // The intermediate expires before the leaf: it is the chain's earliest.
    assert!(pki.intermediate_not_after < leaf_not_after);
    assert_eq!(
        snap.tls_chain_earliest_not_after,
        Some(pki.intermediate_not_after)
    );

    let metrics = render(t, result);
    assert_expiry_gauges(&metrics, leaf_not_after, pki.intermediate_not_after);
    assert_eq!(sample(&metrics, "upstream_http_status_code"), Some(200.0));
    assert_eq!(sample(&metrics, "upstream_probe_success"), Some(1.0));
}

/// An endpoint failing its expectation after the handshake (a 401, a 404,
/// a wrong body) keeps its certificate-expiry gauges: an alert on expiry
/// must not go quiet because the endpoint is also failing.
#[tokio::test]
async fn a_failed_expectation_keeps_the_expiry_gauges() {
    let pki = Pki::new();
    let (url, leaf_not_after) = healthz_with_private_ca(&pki).await;
    let t = http_target(
        &url,
        "      expect: { status: [204] }\n",
        &tls_block(&[("ca_file", &pki.path("ca.pem"))]),
    );
    let result = probe(&t).await;
    let e = failed(result.clone());
    assert_eq!((e.reason, e.http_status), (Reason::Expectation, Some(200)));
    let metrics = render(t, result);
    assert_eq!(sample(&metrics, "upstream_probe_success"), Some(0.0));
    assert_expiry_gauges(&metrics, leaf_not_after, pki.intermediate_not_after);
}

#[tokio::test]
async fn a_second_probe_on_a_pooled_connection_still_knows_the_chain() {
    let pki = Pki::new();
    let (chain, key, leaf_not_after) = pki.leaf((2020, 1, 1), (2036, 1, 1));
    let addr = https_server(chain, key, None).await;
    let url = format!("https://localhost:{}/", addr.port());
    let t = http_target(&url, "", &tls_block(&[("ca_file", &pki.path("ca.pem"))]));
    let clients = HttpClients::new();
    let hosts = HostLimits::new(4);
    for _ in 0..2 {
        let (_, snap) = ok(run_probe(&t, &clients, &hosts).await);
        assert_eq!(snap.tls_not_after, Some(leaf_not_after));
        assert_eq!(
            snap.tls_chain_earliest_not_after,
            Some(pki.intermediate_not_after)
        );
    }
}

#[tokio::test]
async fn untrusted_and_expired_certificates_are_reason_tls() {
    let pki = Pki::new();
    let (chain, key, _) = pki.leaf((2020, 1, 1), (2035, 1, 1));
    let addr = https_server(chain, key, None).await;
    // Not trusted: the CA is not in the system store.
    let untrusted = http_target(&format!("https://localhost:{}/", addr.port()), "", "");
    let e = failed(probe(&untrusted).await);
    assert_eq!(
        (e.reason, e.http_status),
        (Reason::Tls, None),
        "{}",
        e.message
    );

    // Trusted CA, but the leaf expired in 2021.
    let (chain, key, _) = pki.leaf((2020, 1, 1), (2021, 1, 1));
    let addr = https_server(chain, key, None).await;
    let expired = http_target(
        &format!("https://localhost:{}/", addr.port()),
        "",
        &tls_block(&[("ca_file", &pki.path("ca.pem"))]),
    );
    let e = failed(probe(&expired).await);
    assert_eq!(e.reason, Reason::Tls, "{}", e.message);
    assert!(
        e.message.to_lowercase().contains("expired"),
        "{}",
        e.message
    );
    // No expiry gauges from a failed handshake.
    let metrics = render(expired, Err(e));
    assert_eq!(
        sample(&metrics, "upstream_tls_cert_not_after_timestamp_seconds"),
        None
    );
    assert_eq!(sample(&metrics, "upstream_probe_success"), Some(0.0));
}

#[tokio::test]
async fn server_name_and_insecure_skip_verify() {
    let pki = Pki::new();
    let (chain, key, leaf_not_after) = pki.leaf((2020, 1, 1), (2033, 1, 1));
    let addr = https_server(chain, key, None).await;
    // Connect by IP, verify against another name the certificate carries.
    let named = http_target(
        &format!("https://127.0.0.1:{}/", addr.port()),
        "",
        &tls_block(&[
            ("ca_file", &pki.path("ca.pem")),
            ("server_name", "status.internal"),
        ]),
    );
    ok(probe(&named).await);
    // A name the certificate does not carry fails.
    let wrong = http_target(
        &format!("https://127.0.0.1:{}/", addr.port()),
        "",
        &tls_block(&[
            ("ca_file", &pki.path("ca.pem")),
            ("server_name", "other.internal"),
        ]),
    );
    assert_eq!(failed(probe(&wrong).await).reason, Reason::Tls);
    // insecure_skip_verify accepts the unknown CA and still reports expiry.
    let insecure = http_target(
        &format!("https://localhost:{}/", addr.port()),
        "",
        &tls_block(&[("insecure_skip_verify", "true")]),
    );
    let (_, snap) = ok(probe(&insecure).await);
    assert_eq!(snap.tls_not_after, Some(leaf_not_after));
    // This leaf (2033) expires before its intermediate (2034): it is the
    // chain's earliest too.
    assert!(leaf_not_after < pki.intermediate_not_after);
    assert_eq!(snap.tls_chain_earliest_not_after, Some(leaf_not_after));
}

/// A CA file replaced in place (same path, new content) is read again at
/// the next reload: until then the running client keeps the CA it loaded.
#[tokio::test]
async fn a_ca_file_replaced_in_place_is_read_again_at_reload() {
    let (old_ca, new_ca) = (Pki::new(), Pki::new());
    let (chain, key, _) = new_ca.leaf((2020, 1, 1), (2035, 1, 1));
    let addr = https_server(chain, key, None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::copy(old_ca.path("ca.pem"), &ca_path).unwrap();
    let t = http_target(
        &format!("https://localhost:{}/", addr.port()),
        "",
        &tls_block(&[("ca_file", &ca_path.display().to_string())]),
    );
    let (clients, hosts) = (HttpClients::new(), HostLimits::new(4));
    let e = failed(run_probe(&t, &clients, &hosts).await);
    assert_eq!(e.reason, Reason::Tls, "the server's CA is not trusted yet");
    std::fs::copy(new_ca.path("ca.pem"), &ca_path).unwrap();
    let e = failed(run_probe(&t, &clients, &hosts).await);
    assert_eq!(e.reason, Reason::Tls, "no reload yet: the loaded CA stays");
    // What a reload does with the (unchanged) config.
    clients.retain_profiles(std::iter::once(t.as_ref()));
    ok(run_probe(&t, &clients, &hosts).await);
}

/// A server that renews its certificate without closing connections: the
/// pooled connection keeps showing the old one, until the client is
/// replaced for its age and a new handshake shows the new one.
#[tokio::test]
async fn a_renewed_certificate_is_seen_once_the_client_ages_out() {
    let pki = Pki::new();
    let (chain, key, old_not_after) = pki.leaf((2020, 1, 1), (2031, 1, 1));
    let (addr, server) = https_server_renewable(chain, key).await;
    let t = http_target(
        &format!("https://localhost:{}/", addr.port()),
        "",
        &tls_block(&[("ca_file", &pki.path("ca.pem"))]),
    );
    let max_age = Duration::from_secs(3);
    let clients = HttpClients::new().with_max_age(max_age);
    let hosts = HostLimits::new(4);
    let started = std::time::Instant::now();
    let (_, first) = ok(run_probe(&t, &clients, &hosts).await);
    assert_eq!(first.tls_not_after, Some(old_not_after));
    let (chain, key, new_not_after) = pki.leaf((2020, 1, 1), (2032, 1, 1));
    server.renew(chain, key);
    let (_, pooled) = ok(run_probe(&t, &clients, &hosts).await);
    if started.elapsed() < max_age {
        assert_eq!(
            pooled.tls_not_after,
            Some(old_not_after),
            "the pooled connection's"
        );
    }
    tokio::time::sleep(max_age.saturating_sub(started.elapsed()) + Duration::from_millis(100))
        .await;
    let (_, renewed) = ok(run_probe(&t, &clients, &hosts).await);
    assert_eq!(renewed.tls_not_after, Some(new_not_after));
}

#[tokio::test]
async fn mtls_requires_the_client_certificate() {
    let pki = Pki::new();
    pki.client_files();
    let (chain, key, _) = pki.leaf((2020, 1, 1), (2035, 1, 1));
    let addr = https_server(chain, key, Some(pki.root_store())).await;
    let url = format!("https://localhost:{}/", addr.port());

    let without = http_target(&url, "", &tls_block(&[("ca_file", &pki.path("ca.pem"))]));
    let e = failed(probe(&without).await);
    assert_eq!(e.reason, Reason::Tls, "{}", e.message);

    let with = http_target(
        &url,
        "",
        &tls_block(&[
            ("ca_file", &pki.path("ca.pem")),
            ("cert_file", &pki.path("client.pem")),
            ("key_file", &pki.path("client-key.pem")),
        ]),
    );
    assert_eq!(ok(probe(&with).await).0, 200);
}

#[tokio::test]
async fn plain_http_has_no_tls_gauges() {
    let server = MockServer::start().await;
    serve(&server, "/", ResponseTemplate::new(200)).await;
    let t = http_target(&format!("{}/", server.uri()), "", "");
    let result = probe(&t).await;
    assert_eq!(ok(result.clone()).1, HttpSnapshot::default());
    let metrics = render(t, result);
    assert!(!metrics.contains("upstream_tls_"), "{metrics}");
    assert!(
        metrics.contains("upstream_target_info{target=\"t\",prober=\"http\",url=\""),
        "{metrics}"
    );
    // Certificate parsing never panics on garbage.
    assert_eq!(
        upstream_exporter::probe::http_check::cert_not_after(&[0x30, 0x82, 0xff]),
        None
    );
}
