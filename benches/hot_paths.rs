//! Criterion micro-benchmarks of the exporter's two hot paths, through the
//! same public functions the daemon calls:
//!
//! - `statuspage_parse`: `probe::statuspage::parse` on the real Duo body
//!   (`tests/fixtures/statuspage/duo-components.json`: 331 KB, 539 rows of
//!   which 470 are exported components) and on a ~6.5 KB summary with 20
//!   components, the shape `bench/compare` serves (its per-probe parse).
//! - `metrics_render`: `Metrics::render` of `/metrics` for 10,000 statuspage
//!   targets × 20 components each, text 0.0.4 and OpenMetrics. The targets
//!   come from the real config loader and their records from the real
//!   parser and `runner::publish`, as after one probe round of the daemon.
//!   Timed as `/metrics` streams it (chunks dropped as they come): plain
//!   text, gzip, OpenMetrics.
//!   Body sizes (plain and gzip) are printed once.
//!
//! `cargo bench --bench hot_paths` (add `-- statuspage_parse` or
//! `-- metrics_render` to run one group).

mod common;

use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use common::{RENDER_TARGETS, metrics_of, render_fixture, summary_body};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use upstream_exporter::config::{ComponentFilter, StatuspageConfig};
use upstream_exporter::metrics::{Format, Metrics};
use upstream_exporter::probe::statuspage::parse;

fn unfiltered() -> StatuspageConfig {
    StatuspageConfig {
        url: url::Url::parse("https://status.example.com/api/v2/summary.json").expect("url"),
        components: ComponentFilter::default(),
        max_components: 1000,
    }
}

fn statuspage_parse(c: &mut Criterion) {
    let duo_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/statuspage/duo-components.json");
    let duo = std::fs::read(&duo_path).expect("the Duo fixture is in tests/fixtures");
    let summary = summary_body(3);
    let cfg = unfiltered();
    // Duo lists 539 rows, 69 of them groups: 470 exported components.
    for (name, body, components) in [("duo_539", &duo, 470), ("summary_20", &summary, 20)] {
        let snapshot = parse(body, &cfg).expect("the benchmark body parses");
        assert_eq!(snapshot.components.len(), components, "{name}");
    }

    let mut group = c.benchmark_group("statuspage_parse");
    for (name, body) in [("duo_539", &duo), ("summary_20", &summary)] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse(black_box(body), &cfg)));
    }
    group.finish();
}

fn gzip_len(text: &str) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(text.as_bytes())
        .expect("gzip into memory");
    encoder.finish().expect("gzip into memory").len()
}

fn metrics_render(c: &mut Criterion) {
    let targets = render_fixture();
    let metrics = metrics_of(&targets);
    for (name, format) in [("text", Format::Text), ("openmetrics", Format::OpenMetrics)] {
        let body = metrics.render(format);
        let series = body.lines().filter(|l| !l.starts_with('#')).count();
        let components = body
            .lines()
            .filter(|l| l.starts_with("upstream_component_status_code{"))
            .count();
        assert_eq!(components, RENDER_TARGETS * 20, "{name}: component series");
        println!(
            "metrics_render/{name}: {RENDER_TARGETS} targets, {series} samples, {} bytes plain, {} bytes gzip (default level)",
            body.len(),
            gzip_len(&body)
        );
    }

    let mut group = c.benchmark_group("metrics_render");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    // As `/metrics` serves it: streamed in chunks (here dropped as they
    // come, so what is timed is the rendering, on every core, and for gzip
    // the compression too). `text_gzip` reuses the status families' pieces
    // kept from the previous scrape, as a daemon whose pages did not change
    // does; `text_gzip_nothing_kept` starts each scrape without them.
    let render = |metrics: &Metrics, format, gzip| {
        let mut bytes = 0usize;
        metrics.render_to(black_box(format), gzip, |chunk| {
            bytes += chunk.len();
            true
        });
        bytes
    };
    for (name, format, gzip) in [
        ("text", Format::Text, false),
        ("text_gzip", Format::Text, true),
        ("openmetrics", Format::OpenMetrics, false),
    ] {
        group.bench_function(format!("{name}_10000_targets"), |b| {
            b.iter(|| render(&metrics, format, gzip))
        });
    }
    group.bench_function("text_gzip_nothing_kept_10000_targets", |b| {
        b.iter(|| render(&metrics_of(&targets), Format::Text, true))
    });
    group.finish();
}

criterion_group!(benches, statuspage_parse, metrics_render);
criterion_main!(benches);
