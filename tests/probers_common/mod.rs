//! Helpers shared by the `probers_<name>` integration tests: fixture bytes,
//! component filters, a target config and a real [`ProbeContext`] for
//! probes served by a local wiremock server, and snapshot lookups.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use upstream_exporter::config::{ComponentFilter, Config, Matcher, TargetConfig};
use upstream_exporter::http::HttpClients;
use upstream_exporter::probe::packed::ComponentRef;
use upstream_exporter::probe::{ProbeContext, ProbeOutput, ProbeSuccess, Severity, StatusSnapshot};
use upstream_exporter::runner::HostLimits;

/// Bytes of `tests/fixtures/<relative>`.
pub fn fixture(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture as JSON, for computing expectations independently of the parsers.
pub fn fixture_json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A filter from include/exclude entries (exact ids or name regexes).
pub fn filter(include: &[&str], exclude: &[&str]) -> ComponentFilter {
    let matchers = |list: &[&str]| -> Vec<Matcher> {
        list.iter()
            .map(|s| Matcher {
                source: (*s).to_owned(),
                regex: regex::Regex::new(s).expect("test regex"),
            })
            .collect()
    };
    ComponentFilter {
        include: matchers(include),
        exclude: matchers(exclude),
    }
}

pub fn url(s: &str) -> url::Url {
    url::Url::parse(s).expect("test url")
}

/// A target through the real config loader, with fast retries. Its prober
/// block is irrelevant here: `probe()` functions take their own config;
/// the context only uses the target's HTTP settings.
pub fn target(base: &str) -> TargetConfig {
    let yaml = format!(
        "targets:\n  - name: t\n    interval: 30s\n    timeout: 5s\n    retries: 1\n    \
         backoff: {{ initial: 10ms, max: 50ms }}\n    statuspage: {{ url: \"{base}\" }}\n"
    );
    match Config::from_bytes(yaml.as_bytes(), Path::new("test.yaml")) {
        Ok(c) => (*c.targets[0]).clone(),
        Err(e) => panic!("test config invalid:\n{e}"),
    }
}

/// A real probe context for `target`, deadline 5 s from now.
pub fn context<'a>(target: &'a TargetConfig, hosts: &'a HostLimits) -> ProbeContext<'a> {
    let client = HttpClients::new().client_for(target).expect("http client");
    ProbeContext::new(
        target,
        client,
        hosts,
        tokio::time::Instant::now() + Duration::from_secs(5),
    )
}

/// The component with this id (panics with the ids present otherwise).
pub fn component<'a>(snap: &'a StatusSnapshot, id: &str) -> ComponentRef<'a> {
    snap.each_component()
        .find(|c| c.id() == id)
        .unwrap_or_else(|| {
            let ids: Vec<&str> = snap.each_component().map(|c| c.id()).collect();
            panic!("no component {id:?}; have {ids:?}")
        })
}

/// How many exported components have this severity.
pub fn count_with(snap: &StatusSnapshot, severity: Severity) -> usize {
    snap.each_component()
        .filter(|c| c.status == severity)
        .count()
}

/// Unknown-value count of `field`.
pub fn unknown(snap: &StatusSnapshot, field: &str) -> u64 {
    snap.unknown_values
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(0, |(_, n)| *n)
}

/// Every component id is unique.
pub fn assert_unique_ids(snap: &StatusSnapshot) {
    let mut ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "duplicate component ids");
}

/// The status snapshot of a successful probe.
pub fn status_of(success: ProbeSuccess) -> StatusSnapshot {
    #[allow(irrefutable_let_patterns, unreachable_patterns)]
    match success.output {
        ProbeOutput::Status(snap) => std::sync::Arc::unwrap_or_clone(snap),
        _ => panic!("not a status-page output"),
    }
}
