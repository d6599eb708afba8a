//! One scrape is one moment per target: while probes keep ending, a scrape
//! never shows a target with more `upstream_probe_failures_total` than
//! `upstream_probes_total` (a failure ratio above 1). `/metrics` renders
//! its families in parallel, so reading each counter when its family is
//! written would break this; the scrape reads both once, up front.
//!
//! gzip scrapes keep the compressed pieces of targets that did not probe
//! since the last one; the same holds for them, and once probing stops a
//! gzip scrape says exactly what a plain one does.

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use upstream_exporter::metrics::{ExporterStatus, Format, Metrics};
use upstream_exporter::probe::{ProbeError, Reason};
use upstream_exporter::runner::publish;
use upstream_exporter::state::{SharedTargets, TargetSet, TargetState};

const TARGETS: usize = 300;
/// Publishing rounds over every target, and a time cap, whichever ends first.
const ROUNDS: usize = 400;
const TIME_CAP: Duration = Duration::from_secs(20);

fn targets_yaml(n: usize) -> String {
    let mut yaml = String::from("targets:\n");
    for i in 0..n {
        // Never contacted: the test publishes outcomes directly.
        yaml.push_str(&format!(
            "  - name: t{i}\n    http: {{ url: \"http://127.0.0.1:9/t{i}\" }}\n"
        ));
    }
    yaml
}

/// `target` label → value of every `metric{target="..",...} value` line.
fn sum_by_target(body: &str, metric: &str) -> HashMap<String, f64> {
    let prefix = format!("{metric}{{target=\"");
    let mut out = HashMap::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let (name, rest) = rest.split_once('"').expect("closing quote of target label");
        let value: f64 = rest
            .rsplit_once(' ')
            .expect("sample value")
            .1
            .parse()
            .expect("numeric sample value");
        *out.entry(name.to_owned()).or_insert(0.0) += value;
    }
    out
}

/// One `/metrics` body, gzip-compressed (then inflated here) or plain.
fn scrape(metrics: &Metrics, gzip: bool) -> String {
    let mut body = Vec::new();
    metrics.render_to(Format::Text, gzip, |chunk| {
        body.extend_from_slice(&chunk);
        true
    });
    if !gzip {
        return String::from_utf8(body).expect("UTF-8 text");
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut text)
        .expect("a gzip body");
    text
}

/// The per-target lines of a body (the exporter's own process figures
/// change from one scrape to the next).
fn target_lines(body: &str) -> Vec<&str> {
    body.lines().filter(|l| l.contains("target=\"")).collect()
}

#[test]
fn a_scrape_never_shows_more_failures_than_probes() {
    let config = common::config(&targets_yaml(TARGETS));
    let states: Vec<Arc<TargetState>> = config
        .targets
        .iter()
        .map(|t| Arc::new(TargetState::new(t.clone())))
        .collect();
    let targets = SharedTargets::default();
    targets.store(Arc::new(TargetSet {
        targets: states.clone(),
    }));
    let metrics = Metrics::new(targets, Arc::new(ExporterStatus::default()));

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut published = 0u64;
            for round in 0..ROUNDS {
                if started.elapsed() > TIME_CAP {
                    break;
                }
                // A third of the targets each round, so that between two
                // scrapes some probed and some did not.
                for state in states.iter().skip(round % 3).step_by(3) {
                    let failed = Err(ProbeError::new(Reason::Timeout, "test"));
                    publish(state, failed, Duration::from_millis(1));
                    published += 1;
                }
            }
            done.store(true, Ordering::Release);
            published
        })
    };

    let mut scrapes = 0;
    let mut mid_probe_scrapes = 0;
    while !done.load(Ordering::Acquire) || scrapes == 0 {
        let body = scrape(&metrics, scrapes % 2 == 1);
        let probes = sum_by_target(&body, "upstream_probes_total");
        let failures = sum_by_target(&body, "upstream_probe_failures_total");
        assert_eq!(probes.len(), TARGETS, "every target has a probes line");
        for (target, failed) in &failures {
            let ran = probes[target];
            assert!(
                *failed <= ran,
                "scrape {scrapes}: {target} shows {failed} failures but {ran} probes"
            );
        }
        // Every probe here fails, so a scrape taken while publishing is
        // still going on shows targets at different counts.
        let distinct: std::collections::BTreeSet<u64> =
            probes.values().map(|v| *v as u64).collect();
        if distinct.len() > 1 {
            mid_probe_scrapes += 1;
        }
        scrapes += 1;
    }
    let published = writer.join().expect("publishing thread");
    assert!(published > 0);
    let (gzip, plain) = (scrape(&metrics, true), scrape(&metrics, false));
    assert_eq!(
        target_lines(&gzip),
        target_lines(&plain),
        "once probing stopped, a gzip scrape (with pieces kept from scrapes taken while it ran) says what a plain one does"
    );
    assert!(
        mid_probe_scrapes > 0,
        "no scrape overlapped publishing ({scrapes} scrapes, {published} probes): the test proved nothing"
    );
}
