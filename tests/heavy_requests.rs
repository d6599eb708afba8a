//! The requests that walk every target, against the in-process daemon and
//! a real upstream on 127.0.0.1: stalled `/metrics` scrapers are bounded,
//! per client address and in all (the next one gets 503 with
//! `Retry-After`; the stalled clients connect from other loopback
//! addresses, 127.0.0.2 and up), and dropped after the stall timeout, their
//! bodies ending without the final chunk so that none looks whole; and
//! `/-/ready`, once 200, stays 200 across a reload that adds a target whose
//! first probe is minutes away.

mod harness;

use std::time::Duration;

use harness::{Exporter, Reply, Upstream, eventually, summary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use upstream_exporter::daemon::Parts;
use upstream_exporter::server::{MAX_SCRAPES_IN_FLIGHT, MAX_SCRAPES_PER_CLIENT};

/// `count` targets of `components` components each: ~100 bytes a line.
fn big_config(upstream: &Upstream, count: usize) -> String {
    let mut yaml = String::from("defaults:\n  interval: 5s\n  timeout: 4s\ntargets:\n");
    for i in 0..count {
        yaml.push_str(&format!(
            "  - name: t{i}\n    statuspage: {{ url: \"{}\", max_components: 5000 }}\n",
            upstream.url(&format!("/{i}"))
        ));
    }
    yaml
}

/// A scraper from `from` (a loopback address) that asks for `/metrics` and
/// reads nothing, with a receive buffer too small to take the body.
async fn stalled_scraper(base: &str, from: [u8; 4]) -> TcpStream {
    let addr = base.trim_start_matches("http://").parse().expect("addr");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket
        .bind(std::net::SocketAddr::from((from, 0)))
        .expect("bind a loopback source address");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n")
        .await
        .expect("request");
    stream
}

/// `GET /metrics` from the test's own client (None if no answer came).
async fn get_metrics(exporter: &Exporter) -> Option<reqwest::Response> {
    exporter
        .client
        .get(format!("{}/metrics", exporter.base))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_scrapers_are_bounded_then_dropped_with_a_body_that_is_not_whole() {
    let upstream = Upstream::start(|_| Reply::json(summary(2000, "operational"))).await;
    let targets = 60;
    let exporter = Exporter::start_with(
        &big_config(&upstream, targets),
        Parts {
            scrape_stall_timeout: Duration::from_secs(5),
            ..Parts::default()
        },
    )
    .await;
    let body = eventually(Duration::from_secs(30), "every target probed", || async {
        let s = exporter.scrape_within(Duration::from_secs(20)).await;
        let probed = s.text.matches("upstream_probe_success{").count();
        (probed == targets).then_some(s.text)
    })
    .await;
    // Larger than what the kernel and the exporter's queues hold for a
    // scraper that reads nothing (a 4 MB send buffer at most on loopback).
    assert!(body.len() > 10_000_000, "body of {} bytes", body.len());

    let refused = || async {
        let r = get_metrics(&exporter).await?;
        if r.status() != 503 {
            return None;
        }
        assert_eq!(r.headers()["retry-after"], "1");
        Some(())
    };
    // One client (127.0.0.1, the test's own) with its share stalled.
    let mut stalled = Vec::new();
    for _ in 0..MAX_SCRAPES_PER_CLIENT {
        stalled.push(stalled_scraper(&exporter.base, [127, 0, 0, 1]).await);
    }
    eventually(
        Duration::from_secs(20),
        "a client over its share refused",
        refused,
    )
    .await;
    drop(stalled);
    // Other clients taking every slot.
    let mut stalled = Vec::new();
    for i in 0..MAX_SCRAPES_IN_FLIGHT {
        stalled.push(stalled_scraper(&exporter.base, [127, 0, 0, 2 + i as u8]).await);
    }
    eventually(
        Duration::from_secs(20),
        "a scrape refused when all slots are taken",
        refused,
    )
    .await;

    // The stall timeout frees the slots while the stalled clients still
    // hold their connections.
    eventually(Duration::from_secs(20), "a scrape served again", || async {
        let r = get_metrics(&exporter).await?;
        (r.status() == 200).then_some(())
    })
    .await;

    // One slot free does not mean every stalled scrape has been dropped:
    // each is cut a stall timeout after its socket filled, and under load
    // the eight fill seconds apart. Reading one still running would let
    // its body go on to the end.
    tokio::time::sleep(Duration::from_secs(8)).await;

    // What a stalled scraper gets when it reads at last: part of the body,
    // then the connection closed without the chunked body's last chunk.
    let mut received = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(20),
        stalled[0].read_to_end(&mut received),
    )
    .await
    .expect("the connection is closed");
    // A reset is as good as a close here.
    let _ = read;
    assert!(received.starts_with(b"HTTP/1.1 200 OK"));
    assert!(received.len() > 100_000, "got {} bytes", received.len());
    assert!(
        !received.ends_with(b"0\r\n\r\n"),
        "a body cut short must not end like a whole one: {} bytes of a {}-byte body, ending {:?}",
        received.len(),
        body.len(),
        String::from_utf8_lossy(&received[received.len().saturating_sub(200)..])
    );
    assert!(received.len() < body.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_stays_ready_when_a_reload_adds_a_target() {
    let upstream = Upstream::start(|_| Reply::json(summary(2, "operational"))).await;
    let target = |name: &str, interval: &str| {
        format!(
            "  - name: {name}\n    interval: {interval}\n    timeout: 500ms\n    statuspage: {{ url: \"{}\" }}\n",
            upstream.url("/s")
        )
    };
    let exporter = Exporter::start(&format!("targets:\n{}", target("a", "1s"))).await;
    let ready = || async {
        exporter
            .client
            .get(format!("{}/-/ready", exporter.base))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    eventually(Duration::from_secs(10), "ready", || async {
        (ready().await == 200).then_some(())
    })
    .await;
    // The new target's first probe comes at a random point of its 10 minutes.
    exporter.write_config(&format!(
        "targets:\n{}{}",
        target("a", "1s"),
        target("b", "10m")
    ));
    assert_eq!(exporter.reload().await.0, 200);
    for _ in 0..10 {
        assert_eq!(ready().await, 200, "a reload made the replica unready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
