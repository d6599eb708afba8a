//! Upstream etiquette against real local servers: conditional requests
//! (`ETag` / `Last-Modified`, a `304` reusing the last snapshot),
//! `Retry-After` postponing only the target that got it, the per-host
//! in-flight limit across targets, and `min_interval_per_host` spacing.

mod harness;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{Exporter, Reply, Upstream, eventually, summary};
use upstream_exporter::config::{Config, TargetConfig};
use upstream_exporter::http::HttpClients;
use upstream_exporter::probe::{ProbeError, ProbeSuccess, Reason};
use upstream_exporter::runner::{HostLimits, run_probe};

/// A page whose content has a version: answers `304` to a request that
/// carries the current validator, the full page otherwise.
fn versioned(version: Arc<AtomicUsize>, use_etag: bool) -> impl Fn(&harness::Seen) -> Reply {
    move |req| {
        let v = version.load(Ordering::SeqCst);
        let etag = format!("\"v{v}\"");
        let last_modified = format!("Wed, 21 Oct 2026 07:2{v}:00 GMT");
        let fresh = if use_etag {
            req.header("if-none-match") == Some(etag.as_str())
        } else {
            req.header("if-modified-since") == Some(last_modified.as_str())
        };
        if fresh {
            return Reply::status(304);
        }
        let status = if v == 1 {
            "operational"
        } else {
            "degraded_performance"
        };
        let reply = Reply::json(summary(3, status)).with_header("Last-Modified", &last_modified);
        if use_etag {
            reply.with_header("ETag", &etag)
        } else {
            reply
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_requests_turn_unchanged_pages_into_304s_that_reuse_the_snapshot() {
    let version = Arc::new(AtomicUsize::new(1));
    let by_etag = Upstream::start(versioned(version.clone(), true)).await;
    let by_date = Upstream::start(versioned(version.clone(), false)).await;
    let yaml = format!(
        "defaults:\n  interval: 1s\n  timeout: 800ms\ntargets:\n  \
         - name: etag\n    statuspage: {{ url: \"{}\" }}\n  \
         - name: date\n    statuspage: {{ url: \"{}\" }}\n",
        by_etag.url("/summary.json"),
        by_date.url("/summary.json")
    );
    let exporter = Exporter::start(&yaml).await;
    let s = eventually(Duration::from_secs(5), "three probes of each", || async {
        let s = exporter.scrape().await;
        (s.of("upstream_probes_total", "etag") >= Some(3.0)
            && s.of("upstream_probes_total", "date") >= Some(3.0))
        .then_some(s)
    })
    .await;
    for (target, up) in [("etag", &by_etag), ("date", &by_date)] {
        // A 304 is a success that keeps exporting the last parsed page.
        assert_eq!(
            s.of("upstream_probe_success", target),
            Some(1.0),
            "{target}"
        );
        assert_eq!(
            s.get("upstream_probe_failures_total", &[("target", target)]),
            None
        );
        assert_eq!(
            s.of("upstream_http_status_code", target),
            Some(304.0),
            "{target}"
        );
        assert_eq!(
            s.samples("upstream_component_status_code")
                .iter()
                .filter(|(l, _)| l["target"] == target)
                .count(),
            3
        );
        assert_eq!(s.of("upstream_page_status_code", target), Some(1.0));
        let seen = up.seen();
        assert!(
            seen[0].header("if-none-match").is_none()
                && seen[0].header("if-modified-since").is_none()
        );
        for later in &seen[1..] {
            assert_eq!(
                later.header("if-modified-since"),
                Some("Wed, 21 Oct 2026 07:21:00 GMT")
            );
            if target == "etag" {
                assert_eq!(later.header("if-none-match"), Some("\"v1\""));
            } else {
                assert_eq!(later.header("if-none-match"), None);
            }
        }
    }

    // The page changes: the stale validator gets a full answer, whose new
    // snapshot and validator are used from then on.
    version.store(2, Ordering::SeqCst);
    let etag_before = by_etag.seen().len();
    let s = eventually(
        Duration::from_secs(4),
        "the change and a 304 after it",
        || async {
            let s = exporter.scrape().await;
            let after: Vec<_> = by_etag.seen().into_iter().skip(etag_before).collect();
            (s.get(
                "upstream_component_status_code",
                &[("target", "etag"), ("component_id", "c0")],
            ) == Some(3.0)
                && after
                    .iter()
                    .any(|r| r.header("if-none-match") == Some("\"v2\""))
                && s.of("upstream_http_status_code", "etag") == Some(304.0))
            .then_some(s)
        },
    )
    .await;
    assert_eq!(s.of("upstream_probe_success", "etag"), Some(1.0));
    assert_eq!(
        s.of("upstream_page_status_code", "etag"),
        Some(1.0),
        "indicator stays the provider's"
    );
    exporter.stop().await;
}

/// Probe every target at once, each on its own task; results in order.
async fn probes_side_by_side(
    targets: impl Iterator<Item = Arc<TargetConfig>>,
    clients: &Arc<HttpClients>,
    hosts: &Arc<HostLimits>,
) -> Vec<Result<ProbeSuccess, ProbeError>> {
    let probes: Vec<_> = targets
        .map(|t| {
            let (clients, hosts) = (clients.clone(), hosts.clone());
            tokio::spawn(async move { run_probe(&t, &clients, &hosts).await })
        })
        .collect();
    let mut results = Vec::new();
    for p in probes {
        results.push(p.await.unwrap());
    }
    results
}

fn target(yaml_target: &str) -> Arc<TargetConfig> {
    let yaml =
        format!("defaults:\n  interval: 10s\n  timeout: 3s\n  retries: 0\ntargets:\n{yaml_target}");
    match Config::from_bytes(yaml.as_bytes(), Path::new("test.yaml")) {
        Ok(c) => c.targets[0].clone(),
        Err(e) => panic!("{e}"),
    }
}

/// One-shot probes (the `probe` command) send no validators, so a 304 is
/// the upstream misbehaving, not a cache hit.
#[tokio::test]
async fn a_304_to_a_request_without_validators_is_an_error() {
    let up = Upstream::start(|_| Reply::status(304)).await;
    let t = target(&format!(
        "  - name: t\n    statuspage: {{ url: \"{}\" }}\n",
        up.url("/s.json")
    ));
    let err = run_probe(&t, &HttpClients::new(), &HostLimits::new(4))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::HttpStatus);
    assert_eq!(err.http_status, Some(304));
}

/// `503` with `Retry-After: 3`: reason `rate_limited`, that target is not
/// asked again for 3 s, and another target on the same host keeps its
/// one-second schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_postpones_only_the_target_that_got_it() {
    let up = Upstream::start(|req| match req.path.as_str() {
        "/limited.json" => Reply::status(503).with_header("Retry-After", "3"),
        _ => Reply::json(summary(1, "operational")),
    })
    .await;
    let yaml = format!(
        "defaults:\n  interval: 1s\n  timeout: 800ms\ntargets:\n  \
         - name: limited\n    statuspage: {{ url: \"{}\" }}\n  \
         - name: other\n    statuspage: {{ url: \"{}\" }}\n",
        up.url("/limited.json"),
        up.url("/other.json")
    );
    let exporter = Exporter::start(&yaml).await;
    let started = Instant::now();
    eventually(Duration::from_secs(9), "limited asked twice", || async {
        (up.seen_path("/limited.json").len() >= 2).then_some(())
    })
    .await;
    let s = exporter.scrape().await;
    assert!(
        s.get(
            "upstream_probe_failures_total",
            &[("target", "limited"), ("reason", "rate_limited")]
        ) >= Some(1.0)
    );
    assert!(
        s.get(
            "upstream_probe_failures_total",
            &[("target", "limited"), ("reason", "http_status")]
        )
        .is_none()
    );
    let limited = up.seen_path("/limited.json");
    for pair in limited.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_secs(3),
            "asked again after {:?}",
            pair[1].at - pair[0].at
        );
    }
    // No retry inside a probe either: the pause does not fit its timeout.
    let other = up.seen_path("/other.json");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        other.len() as f64 >= elapsed.floor() - 1.0,
        "other was probed {} times in {elapsed:.1}s",
        other.len()
    );
    assert_eq!(s.of("upstream_probe_success", "other"), Some(1.0));
    exporter.stop().await;
}

/// Eight probes of eight targets on one host start at once; with
/// `per_host_concurrency` 2 the upstream never sees more than two at a
/// time, while a probe of another host is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_host_limit_holds_across_targets() {
    let slow = Upstream::start(|_| {
        Reply::Slow(
            Duration::from_millis(300),
            Box::new(Reply::json(summary(1, "operational"))),
        )
    })
    .await;
    let fast = Upstream::start(|_| Reply::json(summary(1, "operational"))).await;
    let hosts = Arc::new(HostLimits::new(2));
    let clients = Arc::new(HttpClients::new());
    let started = Instant::now();
    let mut probes = Vec::new();
    for i in 0..8 {
        let t = target(&format!(
            "  - name: t{i}\n    statuspage: {{ url: \"{}\" }}\n",
            slow.url(&format!("/t{i}.json"))
        ));
        let (hosts, clients) = (hosts.clone(), clients.clone());
        probes.push(tokio::spawn(async move {
            run_probe(&t, &clients, &hosts).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let other = target(&format!(
        "  - name: other\n    statuspage: {{ url: \"{}\" }}\n",
        fast.url("/o.json")
    ));
    let other_started = Instant::now();
    run_probe(&other, &clients, &hosts).await.unwrap();
    assert!(
        other_started.elapsed() < Duration::from_millis(250),
        "another host waited"
    );
    for p in probes {
        p.await.unwrap().unwrap();
    }
    assert_eq!(slow.max_in_flight(), 2);
    assert_eq!(slow.seen().len(), 8);
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "8 × 300 ms over 2 slots"
    );
}

/// `min_interval_per_host`: request starts to one host are spaced out,
/// whoever makes them; set through the config in the daemon too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn min_interval_per_host_spaces_request_starts() {
    let up = Upstream::start(|_| Reply::json(summary(1, "operational"))).await;
    let hosts = Arc::new(HostLimits::new(8));
    hosts.set_min_interval(Duration::from_millis(250));
    let clients = Arc::new(HttpClients::new());
    let targets = (0..5).map(|i| {
        target(&format!(
            "  - name: t{i}\n    statuspage: {{ url: \"{}\" }}\n",
            up.url(&format!("/t{i}.json"))
        ))
    });
    for result in probes_side_by_side(targets, &clients, &hosts).await {
        result.unwrap();
    }
    let mut at: Vec<Instant> = up.seen().iter().map(|s| s.at).collect();
    at.sort();
    assert_eq!(at.len(), 5);
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(200),
            "requests {:?} apart",
            pair[1] - pair[0]
        );
    }

    // Through the config, in the running daemon.
    let daemon_up = Upstream::start(|_| Reply::json(summary(1, "operational"))).await;
    let mut yaml = String::from(
        "min_interval_per_host: 300ms\ndefaults:\n  interval: 2s\n  timeout: 1500ms\ntargets:\n",
    );
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - name: d{i}\n    statuspage: {{ url: \"{}\" }}\n",
            daemon_up.url(&format!("/d{i}.json"))
        ));
    }
    let exporter = Exporter::start(&yaml).await;
    eventually(Duration::from_secs(6), "eight requests", || async {
        (daemon_up.seen().len() >= 8).then_some(())
    })
    .await;
    let mut at: Vec<Instant> = daemon_up.seen().iter().map(|s| s.at).collect();
    at.sort();
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(250),
            "requests {:?} apart",
            pair[1] - pair[0]
        );
    }
    let s = exporter.scrape().await;
    for i in 0..4 {
        assert_eq!(s.of("upstream_probe_success", &format!("d{i}")), Some(1.0));
    }
    exporter.stop().await;
}

/// A host asked for more requests than `min_interval_per_host` lets start
/// within a probe's timeout: the probes that fit succeed, the others fail
/// as timeouts without taking a slot, so a later probe is not queued
/// behind slots nobody will use (which, before, starved the host for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversubscribed_host_serves_what_its_spacing_allows() {
    let up = Upstream::start(|_| Reply::json(summary(1, "operational"))).await;
    let hosts = Arc::new(HostLimits::new(8));
    hosts.set_min_interval(Duration::from_millis(400));
    let clients = Arc::new(HttpClients::new());
    let target_at = |i: usize| {
        target(&format!(
            "  - name: o{i}\n    timeout: 1s\n    retries: 2\n    \
             backoff: {{ initial: 10ms, max: 20ms }}\n    statuspage: {{ url: \"{}\" }}\n",
            up.url(&format!("/o{i}.json"))
        ))
    };
    let refused: Vec<_> = probes_side_by_side((0..6).map(target_at), &clients, &hosts)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    // Slots at 0, 400 and 800 ms start before the 1 s timeout; the refused
    // three are not retried (the host would refuse them again).
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert_eq!(up.seen().len(), 3);
    for e in &refused {
        assert_eq!(e.reason, Reason::Timeout);
        assert!(e.message.contains("min_interval_per_host"), "{}", e.message);
    }
    // The next slot is 1.2 s, well inside this probe's 1 s from ~0.8 s;
    // had the refused three kept theirs, it would be 2.4 s.
    let late = run_probe(&target_at(6), &clients, &hosts).await;
    assert!(late.is_ok(), "{late:?}");
}
