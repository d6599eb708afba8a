//! `/metrics` plain render at 10,000 targets × 20 components, for an
//! instruction count that the machine's noise does not move: this
//! machine's wall-clock figures vary ~×1.5 within an hour, so an effect of
//! 10-20 % on the render is lost in them, while callgrind's count of
//! instructions executed is the same from run to run.
//!
//! `bench/render-instructions` builds this and runs it under callgrind
//! with 1 and with 3 renders after the fixture is built; the difference,
//! halved, is the instructions of one render, fixture excluded. Run
//! directly (`cargo bench --bench render_instructions`) it times the
//! renders too, which is only a rough figure.
//!
//! The render is [`Metrics::render_on`] with no render threads: what
//! `/metrics` does, on one thread, with the chunks dropped.

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{RENDER_TARGETS, metrics_of, render_fixture};
use upstream_exporter::metrics::Format;

fn main() {
    // `cargo bench` passes `--bench`; a number among the arguments is the
    // count of renders.
    let renders = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(3);
    let targets = render_fixture();
    let metrics = metrics_of(&targets);
    // Every target's every line, or the count means nothing. (The same
    // extra render in every run, so the difference of two runs drops it.)
    let components = metrics
        .render(Format::Text)
        .lines()
        .filter(|l| l.starts_with("upstream_component_status_code{"))
        .count();
    assert_eq!(components, RENDER_TARGETS * 20, "component series");
    let mut times = Vec::with_capacity(renders);
    let mut bytes = 0usize;
    for _ in 0..renders {
        let started = Instant::now();
        bytes = 0;
        // On this thread alone: with render threads, callgrind's
        // serialised threads make their waiting on each other vary the
        // count by ~20 % between runs.
        metrics.render_on(black_box(Format::Text), false, Some(0), |chunk| {
            bytes += chunk.len();
            true
        });
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    if let (Some(min), Some(max)) = (times.first(), times.last()) {
        println!(
            "render_instructions: {renders} plain renders of {bytes} bytes, min {min:.1} ms, max {max:.1} ms"
        );
    }
}
