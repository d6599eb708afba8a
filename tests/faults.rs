//! Fault injection: one local misbehaving upstream serves every failure of
//! the issue's table at once while a healthy target is probed alongside.
//! For each case: the reason label, every probe ended within its timeout,
//! the healthy target kept succeeding on schedule, `/metrics` kept
//! answering. Plus: a panicking probe, staleness after failures, and
//! SIGTERM draining the real binary while a probe is in flight.
//!
//! Everything is on 127.0.0.1; DNS failure goes through the HTTP client's
//! resolver hook, so no query leaves the machine.

mod harness;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{Binary, Exporter, Reply, Scrape, Upstream, eventually, summary};
use upstream_exporter::daemon::Parts;
use upstream_exporter::http::HttpClients;

/// The body of a gzip bomb: 32 MiB of JSON whitespace, about 32 KiB on the wire.
fn gzip_bomb() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"{\"page\":{},\"components\":[").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..32 {
        gz.write_all(&spaces).unwrap();
    }
    gz.write_all(b"]}").unwrap();
    gz.finish().unwrap()
}

/// A resolver that knows no name at all: every lookup fails locally.
struct NoDns;

impl reqwest::dns::Resolve for NoDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            Err::<reqwest::dns::Addrs, _>(format!("{name}: no such host (test resolver)").into())
        })
    }
}

/// TLS material: a self-signed certificate nobody trusts, and an expired
/// one issued by a CA that the `expired` target does trust (so expiry,
/// not trust, is what fails).
struct Certs {
    untrusted: Arc<rustls::ServerConfig>,
    expired: Arc<rustls::ServerConfig>,
    ca_pem: String,
}

fn server_config(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: &rcgen::KeyPair,
) -> Arc<rustls::ServerConfig> {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Arc::new(config)
}

fn certs() -> Certs {
    let self_key = rcgen::KeyPair::generate().unwrap();
    let self_signed = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&self_key)
        .unwrap();

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    leaf_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    Certs {
        untrusted: server_config(vec![self_signed.der().clone()], &self_key),
        expired: server_config(vec![leaf.der().clone(), ca.der().clone()], &leaf_key),
        ca_pem: ca.pem(),
    }
}

/// One row of the table.
struct Case {
    target: &'static str,
    reason: &'static str,
    /// Extra target-level YAML.
    extra: &'static str,
}

const CASES: &[Case] = &[
    Case {
        target: "hang",
        reason: "timeout",
        extra: "",
    },
    Case {
        target: "drip",
        reason: "timeout",
        extra: "",
    },
    Case {
        target: "reset",
        reason: "connect",
        extra: "",
    },
    Case {
        target: "e500",
        reason: "http_status",
        extra: "",
    },
    Case {
        target: "e502",
        reason: "http_status",
        extra: "",
    },
    Case {
        target: "e503",
        reason: "http_status",
        extra: "",
    },
    Case {
        target: "throttled",
        reason: "rate_limited",
        extra: "    interval: 1s\n",
    },
    Case {
        target: "html",
        reason: "decode",
        extra: "",
    },
    Case {
        target: "shape",
        reason: "schema",
        extra: "",
    },
    Case {
        target: "huge",
        reason: "too_large",
        extra: "",
    },
    Case {
        target: "bomb",
        reason: "too_large",
        extra: "",
    },
    Case {
        target: "loop",
        reason: "redirect",
        extra: "",
    },
    Case {
        target: "untrusted",
        reason: "tls",
        extra: "",
    },
    Case {
        target: "expired",
        reason: "tls",
        extra: "",
    },
    Case {
        target: "nodns",
        reason: "dns",
        extra: "",
    },
    Case {
        target: "emptied",
        reason: "schema",
        extra: "    interval: 1s\n",
    },
];

/// Timeout of every target; every probe must end within it (plus slack).
const TIMEOUT: Duration = Duration::from_millis(800);

fn vm_rss_kib() -> u64 {
    harness::rss_kib(std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_at_once_beside_a_healthy_target() {
    let bomb = tokio::task::spawn_blocking(gzip_bomb).await.unwrap();
    assert!(
        bomb.len() < 100 * 1024,
        "the bomb should be small on the wire"
    );
    let emptied_calls = Arc::new(AtomicUsize::new(0));
    let calls = emptied_calls.clone();
    let upstream = Upstream::start(move |req| match req.path.as_str() {
        "/good.json" => Reply::json(summary(3, "operational")),
        "/hang.json" => Reply::Hang,
        "/drip.json" => Reply::Drip { len: 100 },
        "/reset.json" => Reply::ResetMidBody,
        "/e500.json" => Reply::status(500),
        "/e502.json" => Reply::status(502),
        "/e503.json" => Reply::status(503),
        "/throttled.json" => Reply::status(429).with_header("Retry-After", "2"),
        "/html.json" => Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: b"<!DOCTYPE html><html><body>We moved to a new vendor</body></html>".to_vec(),
        },
        "/shape.json" => Reply::json(r#"{"status":"ok","checks":[]}"#),
        "/huge.json" => Reply::Stream { total: 100 << 20 },
        "/bomb.json" => Reply::Full {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Content-Encoding".into(), "gzip".into()),
            ],
            body: bomb.clone(),
        },
        "/loop.json" => Reply::status(302).with_header("Location", "/loop.json"),
        "/emptied.json" => {
            // A good page first, then the same page listing no components.
            let n = if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                3
            } else {
                0
            };
            Reply::json(summary(n, "operational"))
        }
        _ => Reply::status(404),
    })
    .await;
    let certs = certs();
    let good = |_: &harness::Seen| Reply::json(summary(3, "operational"));
    let untrusted = Upstream::start_tls(good, certs.untrusted.clone()).await;
    let expired = Upstream::start_tls(good, certs.expired.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &certs.ca_pem).unwrap();
    let mut yaml = String::from(
        "per_host_concurrency: 64\ndefaults:\n  interval: 2s\n  timeout: 800ms\n  retries: 2\n  \
         backoff: { initial: 10ms, max: 50ms }\n  max_body_size: 1MiB\ntargets:\n",
    );
    yaml.push_str(&format!(
        "  - name: healthy\n    interval: 1s\n    timeout: 800ms\n    statuspage: {{ url: \"{}\" }}\n",
        upstream.url("/good.json")
    ));
    for case in CASES {
        let url = match case.target {
            "untrusted" => format!("https://{}/good.json", untrusted.addr),
            "expired" => format!("https://{}/good.json", expired.addr),
            "nodns" => format!(
                "http://status.nowhere.invalid:{}/good.json",
                upstream.addr.port()
            ),
            name => upstream.url(&format!("/{name}.json")),
        };
        let tls = if case.target == "expired" {
            format!("    tls: {{ ca_file: \"{}\" }}\n", ca_file.display())
        } else {
            String::new()
        };
        yaml.push_str(&format!(
            "  - name: {}\n{}{tls}    statuspage: {{ url: \"{url}\" }}\n",
            case.target, case.extra
        ));
    }

    // Symbolising a backtrace loads this binary's debug info (~170 MiB)
    // once per process; the panic test beside this one would do it in the
    // middle of the measurement when RUST_BACKTRACE is set. Do it first.
    let _ = std::backtrace::Backtrace::force_capture().to_string();
    let rss_before = vm_rss_kib();
    let parts = Parts {
        clients: HttpClients::with_resolver(Arc::new(NoDns)),
        ..Parts::default()
    };
    let exporter = Exporter::start_with(&yaml, parts).await;

    // Scrape every 200 ms for 6 s: every scrape must answer, quickly, and
    // once the healthy target has succeeded it must stay successful.
    let window = Duration::from_secs(6);
    let started = Instant::now();
    let mut worst_latency = Duration::ZERO;
    let mut scrapes = 0;
    let mut healthy_first_ok: Option<Instant> = None;
    let mut last = None;
    while started.elapsed() < window {
        let scrape = exporter.scrape_within(Duration::from_secs(1)).await;
        worst_latency = worst_latency.max(scrape.latency);
        scrapes += 1;
        match scrape.of("upstream_probe_success", "healthy") {
            Some(1.0) => {
                healthy_first_ok.get_or_insert_with(Instant::now);
            }
            other => assert!(
                healthy_first_ok.is_none(),
                "healthy target stopped succeeding ({other:?}) after {:?}",
                started.elapsed()
            ),
        }
        last = Some(scrape);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let last: Scrape = last.unwrap();
    let api = exporter.targets_api().await;

    // /metrics kept answering.
    assert!(scrapes >= 20, "only {scrapes} scrapes in {window:?}");
    assert!(
        worst_latency < Duration::from_millis(500),
        "worst scrape {worst_latency:?}"
    );

    // The healthy target kept its schedule: one probe a second.
    let first_ok = healthy_first_ok.expect("healthy target never succeeded");
    let healthy_probes = last.of("upstream_probes_total", "healthy").unwrap();
    let expected = (Instant::now() - first_ok).as_secs_f64().floor();
    assert!(
        healthy_probes >= expected,
        "healthy target probed {healthy_probes} times, expected at least {expected}"
    );
    assert_eq!(
        last.get("upstream_probe_failures_total", &[("target", "healthy")]),
        None,
        "the healthy target failed"
    );

    let mut problems = Vec::new();
    for case in CASES {
        let t = case.target;
        let failures = last
            .samples("upstream_probe_failures_total")
            .into_iter()
            .filter(|(l, _)| l.get("target").map(String::as_str) == Some(t))
            .map(|(l, v)| (l["reason"].clone(), v))
            .collect::<Vec<_>>();
        if failures.is_empty() || failures.iter().any(|(r, _)| r != case.reason) {
            problems.push(format!(
                "{t}: expected only reason {}, got {failures:?}",
                case.reason
            ));
        }
        if last.of("upstream_probe_success", t) != Some(0.0) {
            problems.push(format!("{t}: upstream_probe_success is not 0"));
        }
        // Every probe ended within its timeout: all observations are in
        // the le=1.0 bucket (timeout 0.8 s).
        let count = last
            .of("upstream_probe_duration_seconds_count", t)
            .unwrap_or(0.0);
        let within = last
            .samples("upstream_probe_duration_seconds_bucket")
            .into_iter()
            .find(|(l, _)| {
                l.get("target").map(String::as_str) == Some(t)
                    && l.get("le").and_then(|v| v.parse::<f64>().ok()) == Some(1.0)
            })
            .map(|(_, v)| v)
            .unwrap_or(-1.0);
        if count < 1.0 || within != count {
            problems.push(format!("{t}: {within} of {count} probes ended within 1 s"));
        }
        let entry = api["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == t)
            .unwrap();
        let took = entry["duration_seconds"].as_f64().unwrap();
        if took > TIMEOUT.as_secs_f64() + 0.2 {
            problems.push(format!("{t}: last probe took {took}s"));
        }
        // A timeout keeps the status of an answer whose head had come:
        // the dripping body's 200, nothing for the hanging server.
        let status_wanted = match t {
            "drip" => Some(Some(200.0)),
            "hang" => Some(Some(0.0)),
            _ => None,
        };
        if let Some(wanted) = status_wanted
            && last.of("upstream_http_status_code", t) != wanted
        {
            problems.push(format!(
                "{t}: upstream_http_status_code {:?}, expected {wanted:?}",
                last.of("upstream_http_status_code", t)
            ));
        }
        eprintln!("{t:>10}: {:?} error={}", failures, entry["error"]);
    }
    assert!(
        problems.is_empty(),
        "cases failed:\n{}",
        problems.join("\n")
    );

    // Case details the table alone does not show.
    let error_of = |name: &str| {
        api["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["error"].as_str().unwrap_or("").to_owned())
            .unwrap()
    };
    assert!(
        error_of("expired").to_lowercase().contains("expired"),
        "{}",
        error_of("expired")
    );
    // 5xx were retried: 1 + 2 retries per probe.
    for path in ["/e500.json", "/e502.json", "/e503.json"] {
        let n = upstream.seen_path(path).len();
        assert!(n >= 3, "{path}: {n} requests, expected retries");
    }
    // Retry-After: 2 postponed the target: never two requests within 2 s.
    let throttled = upstream.seen_path("/throttled.json");
    assert!(
        throttled.len() >= 2,
        "throttled target was not probed again"
    );
    for pair in throttled.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_secs(2), "asked again after {gap:?}");
    }
    // The 100 MB body was abandoned early, not read whole.
    let huge_requests = upstream.seen_path("/huge.json").len() as u64;
    let streamed = upstream.streamed.load(Ordering::SeqCst);
    assert!(huge_requests >= 1);
    assert!(
        streamed / huge_requests < 24 << 20,
        "{streamed} bytes streamed over {huge_requests} requests"
    );
    let rss_growth_mib = vm_rss_kib().saturating_sub(rss_before) / 1024;
    eprintln!(
        "RSS growth {rss_growth_mib} MiB; streamed {streamed} bytes over {huge_requests} requests"
    );
    assert!(
        rss_growth_mib < 64,
        "resident memory grew by {rss_growth_mib} MiB"
    );
    // The emptied page had components first, so the empty list is schema.
    assert!(emptied_calls.load(Ordering::SeqCst) >= 2);
    assert!(
        last.of("upstream_probe_last_success_timestamp_seconds", "emptied") > Some(0.0),
        "`emptied` should have succeeded once before its list went empty"
    );
    exporter.stop().await;
}

/// A panic inside one probe is caught, counted as `other`, logged with its
/// message, and the target keeps being scheduled; others are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_probe_is_contained_and_rescheduled() {
    let upstream = Upstream::start(|_| Reply::json(summary(2, "operational"))).await;
    let yaml = format!(
        "defaults:\n  interval: 1s\n  timeout: 800ms\ntargets:\n  \
         - name: boom\n    statuspage: {{ url: \"{0}\" }}\n  \
         - name: fine\n    statuspage: {{ url: \"{0}\" }}\n",
        upstream.url("/summary.json")
    );
    let parts = Parts {
        probe_hook: Some(Arc::new(
            |target: &upstream_exporter::config::TargetConfig| {
                if target.name == "boom" {
                    panic!("injected fault in {}", target.name);
                }
            },
        )),
        ..Parts::default()
    };
    let exporter = Exporter::start_with(&yaml, parts).await;
    let scrape = eventually(Duration::from_secs(5), "three panics of `boom`", || async {
        let s = exporter.scrape().await;
        (s.get(
            "upstream_probe_failures_total",
            &[("target", "boom"), ("reason", "other")],
        ) >= Some(3.0))
        .then_some(s)
    })
    .await;
    assert_eq!(scrape.of("upstream_probe_success", "boom"), Some(0.0));
    assert!(scrape.of("upstream_probes_total", "boom") >= Some(3.0));
    assert_eq!(scrape.of("upstream_probe_success", "fine"), Some(1.0));
    assert!(scrape.of("upstream_probes_total", "fine") >= Some(2.0));
    let api = exporter.targets_api().await;
    let boom = api["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "boom")
        .unwrap();
    assert_eq!(boom["reason"], "other");
    assert!(
        boom["error"]
            .as_str()
            .unwrap()
            .contains("injected fault in boom"),
        "{boom}"
    );
    exporter.stop().await;
}

/// After failures the last good status series stay (probe_success 0, the
/// last-success timestamp telling their age) until `stale_after` has
/// passed since that success; then they go while probe metrics remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_series_stay_until_stale_after_then_go() {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let upstream = Upstream::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply::status(500)
        } else {
            Reply::json(summary(2, "degraded_performance"))
        }
    })
    .await;
    let yaml = format!(
        "targets:\n  - name: s\n    interval: 1s\n    timeout: 500ms\n    retries: 0\n    \
         stale_after: 3s\n    statuspage: {{ url: \"{}\" }}\n",
        upstream.url("/summary.json")
    );
    let exporter = Exporter::start(&yaml).await;
    let status_families = [
        "upstream_page_status_code",
        "upstream_component_status_code",
        "upstream_incidents_open",
        "upstream_maintenances_active",
    ];
    eventually(Duration::from_secs(3), "a first success", || async {
        (exporter.scrape().await.of("upstream_probe_success", "s") == Some(1.0)).then_some(())
    })
    .await;
    failing.store(true, Ordering::SeqCst);
    let failed = eventually(Duration::from_secs(3), "a failure", || async {
        let s = exporter.scrape().await;
        (s.of("upstream_probe_success", "s") == Some(0.0)).then_some(s)
    })
    .await;
    let last_success = failed
        .of("upstream_probe_last_success_timestamp_seconds", "s")
        .unwrap();
    let last_run = failed
        .of("upstream_probe_last_run_timestamp_seconds", "s")
        .unwrap();
    assert!(
        last_run > last_success,
        "the last-success timestamp tells the data's age"
    );
    for family in status_families {
        assert!(
            failed.of(family, "s").is_some(),
            "{family} gone right after a failure"
        );
    }
    assert_eq!(
        failed.get(
            "upstream_component_status_code",
            &[("target", "s"), ("component_id", "c0")]
        ),
        Some(3.0),
        "the last good value is kept"
    );
    // Watch for the moment the status series go.
    let gone = eventually(
        Duration::from_secs(6),
        "status series to go stale",
        || async {
            let s = exporter.scrape().await;
            status_families
                .iter()
                .all(|f| s.of(f, "s").is_none())
                .then_some((s, upstream_exporter::state::unix_now()))
        },
    )
    .await;
    let (stale, at) = gone;
    let age = at - last_success;
    assert!(
        (3.0..4.5).contains(&age),
        "status series dropped {age:.2}s after the last success (stale_after 3s)"
    );
    // Probe metrics remain.
    assert_eq!(stale.of("upstream_probe_success", "s"), Some(0.0));
    assert!(stale.of("upstream_probes_total", "s").is_some());
    assert!(stale.of("upstream_target_info", "s").is_some());
    assert_eq!(
        stale.of("upstream_probe_last_success_timestamp_seconds", "s"),
        Some(last_success)
    );
    exporter.stop().await;
}

fn write_config(dir: &std::path::Path, yaml: &str) -> std::path::PathBuf {
    let path = dir.join("exporter.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// SIGTERM while a probe is in flight against a slow upstream: the binary
/// lets it finish, then exits 0, within `--web.shutdown-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_probe_and_exits_zero() {
    let upstream = Upstream::start(|_| {
        Reply::Slow(
            Duration::from_millis(1500),
            Box::new(Reply::json(summary(1, "operational"))),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "targets:\n  - name: slow\n    interval: 3s\n    timeout: 2500ms\n    \
             statuspage: {{ url: \"{}\" }}\n",
            upstream.url("/summary.json")
        ),
    );
    let mut binary = Binary::start(&config, &["--web.shutdown-timeout=5s", "--log.level=debug"]);
    let client = harness::client();
    binary.wait_healthy(&client).await;
    eventually(
        Duration::from_secs(5),
        "the probe to reach the upstream",
        || async { (!upstream.seen().is_empty()).then_some(()) },
    )
    .await;
    let asked_at = upstream.seen()[0].at;
    harness::signal(binary.pid(), "TERM");
    let (status, _) = tokio::task::block_in_place(|| binary.wait_exit(Duration::from_secs(8)));
    let exited_after_request = asked_at.elapsed();
    let status = status.expect("the exporter did not exit");
    assert_eq!(status.code(), Some(0), "exit status");
    assert!(
        exited_after_request >= Duration::from_millis(1400),
        "exited {exited_after_request:?} after the request: it did not wait for the probe"
    );
    assert!(
        exited_after_request < Duration::from_secs(5),
        "{exited_after_request:?}"
    );
    let log = binary.log_text();
    assert!(
        log.contains("probe succeeded"),
        "the in-flight probe did not finish:\n{log}"
    );
    assert!(log.contains("upstream-exporter stopped"), "{log}");
    assert!(!log.contains("exiting anyway"), "{log}");
}

/// A probe that would outlive the grace period does not hold the process:
/// exit 0 at about `--web.shutdown-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_at_the_grace_period_when_a_probe_hangs() {
    let upstream = Upstream::start(|_| Reply::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "targets:\n  - name: hang\n    interval: 4s\n    timeout: 3500ms\n    \
             statuspage: {{ url: \"{}\" }}\n",
            upstream.url("/summary.json")
        ),
    );
    let mut binary = Binary::start(&config, &["--web.shutdown-timeout=1s"]);
    let client = harness::client();
    binary.wait_healthy(&client).await;
    eventually(
        Duration::from_secs(6),
        "the probe to reach the upstream",
        || async { (!upstream.seen().is_empty()).then_some(()) },
    )
    .await;
    harness::signal(binary.pid(), "TERM");
    let (status, took) = tokio::task::block_in_place(|| binary.wait_exit(Duration::from_secs(5)));
    let status = status.expect("the exporter did not exit");
    assert_eq!(status.code(), Some(0));
    // The probe itself would only end at its 3.5 s timeout.
    assert!(
        took < Duration::from_millis(2200),
        "took {took:?} with a 1 s grace period"
    );
    assert!(binary.log_text().contains("exiting anyway"));
}
