//! One entry point per fuzz target: each takes arbitrary bytes and runs them
//! through exactly the parser the daemon uses. `fuzz/fuzz_targets/*.rs` call
//! these under libFuzzer (nightly, `cargo fuzz run <target>`), and
//! `tests/fuzz_corpus.rs` replays the committed corpus through the same
//! functions on stable, so the two cannot drift apart.
//!
//! Every function must return normally for any input: a parse error is a
//! normal outcome (`false`), a panic is a bug. A few cheap invariants of the
//! parsed result are asserted as well, so a violated one is a finding too.
//! Not part of the public API.

use std::path::Path;
use std::sync::OnceLock;

use crate::config::{
    CachetConfig, ComponentFilter, Config, GoogleCloudConfig, HerokuConfig, InstatusConfig,
    JsonConfig, Matcher, ProberConfig, SalesforceConfig, SlackConfig, StatusioConfig,
    StatuspageConfig,
};
use crate::probe::{self, ProbeError, StatusSnapshot};
use crate::webconfig::WebConfig;

/// One fuzz entry point: `true` when the input parsed, `false` when it was
/// rejected with a typed error; a panic is a bug.
pub type Target = fn(&[u8]) -> bool;

/// Every target, by the name of its fuzz target and corpus folder.
pub const TARGETS: [(&str, Target); 11] = [
    ("config", config),
    ("webconfig", webconfig),
    ("statuspage", statuspage),
    ("statusio", statusio),
    ("instatus", instatus),
    ("cachet", cachet),
    ("slack", slack),
    ("google_cloud", google_cloud),
    ("heroku", heroku),
    ("salesforce", salesforce),
    ("json", json),
];

/// Component cap of every prober config used here: small, so the cap is hit.
const MAX_COMPONENTS: usize = 50;

/// Cachet's "now" (2024-01-01T00:00:00Z), fixed so a run is reproducible.
const NOW: f64 = 1_704_067_200.0;

fn base_url() -> url::Url {
    url::Url::parse("https://status.example.com/").expect("constant URL")
}

/// A filter with one include-all regex and one exclude, so filtering runs
/// (compiled once: a case-insensitive regex costs more than a small parse).
fn filter() -> ComponentFilter {
    static FILTER: OnceLock<ComponentFilter> = OnceLock::new();
    FILTER
        .get_or_init(|| {
            let matcher = |source: &str| Matcher {
                source: source.to_owned(),
                regex: regex::Regex::new(source).expect("constant regex"),
            };
            ComponentFilter {
                include: vec![matcher(".")],
                exclude: vec![matcher("(?i)^visit ")],
            }
        })
        .clone()
}

/// Split `data` at NUL bytes into at most `n` parts (JSON text has no raw
/// NUL, so a seed that is one real body stays whole).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0).collect()
}

/// Invariants every status snapshot keeps, whatever the body.
fn check_snapshot(result: Result<StatusSnapshot, ProbeError>) -> bool {
    match result {
        Ok(snap) => {
            assert!(
                snap.components.len() <= MAX_COMPONENTS,
                "{} components exported, cap {MAX_COMPONENTS}",
                snap.components.len()
            );
            if let Some(start) = snap.next_maintenance_start {
                assert!(start.is_finite(), "maintenance start {start}");
            }
            true
        }
        Err(e) => {
            assert!(!e.message.is_empty(), "an error without a message");
            false
        }
    }
}

/// `exporter.yaml` through [`Config::from_bytes`], as the daemon loads it;
/// an error is rendered both ways (compact and annotated with the source).
/// Relative `*_file` paths resolve under a directory that does not exist.
pub fn config(data: &[u8]) -> bool {
    let path = Path::new("/nonexistent-fuzz-dir/exporter.yaml");
    match Config::from_bytes(data, path) {
        Ok(config) => {
            for target in &config.targets {
                assert!(target.timeout < target.interval, "{target:?}");
            }
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = e.annotated().to_string();
            false
        }
    }
}

/// `--web.config.file` through [`WebConfig::from_yaml`] (reads no files).
pub fn webconfig(data: &[u8]) -> bool {
    match WebConfig::from_yaml(data, Path::new("/nonexistent-fuzz-dir/web.yml")) {
        Ok(_) => true,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = e.annotated().to_string();
            false
        }
    }
}

/// A Statuspage `summary.json` / `components.json` body.
pub fn statuspage(data: &[u8]) -> bool {
    let cfg = StatuspageConfig {
        url: base_url(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    check_snapshot(probe::statuspage::parse(data, &cfg))
}

/// A Status.io `1.0/status/<page>` body.
pub fn statusio(data: &[u8]) -> bool {
    let cfg = StatusioConfig {
        base_url: base_url(),
        page_id: "fuzz".to_owned(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    check_snapshot(probe::statusio::parse(data, &cfg))
}

/// Instatus: `summary.json`, a NUL byte, `components.json` (one part
/// without a NUL serves as both bodies).
pub fn instatus(data: &[u8]) -> bool {
    let cfg = InstatusConfig {
        base_url: base_url(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    let bodies = parts(data, 2);
    let (summary, components) = (bodies[0], *bodies.get(1).unwrap_or(&bodies[0]));
    check_snapshot(probe::instatus::parse(summary, components, &cfg))
}

/// Cachet: components, groups and incidents pages separated by NUL bytes
/// (one part serves as all three).
pub fn cachet(data: &[u8]) -> bool {
    let cfg = CachetConfig {
        base_url: base_url(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    let bodies = parts(data, 3);
    let at = |i: usize| *bodies.get(i).unwrap_or(&bodies[0]);
    check_snapshot(probe::cachet::parse(
        &[at(0)],
        &[at(1)],
        &[at(2)],
        &cfg,
        NOW,
    ))
}

/// A Slack `api/v2.0.0/current` body.
pub fn slack(data: &[u8]) -> bool {
    let cfg = SlackConfig {
        base_url: base_url(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    check_snapshot(probe::slack::parse(data, &cfg))
}

/// A Google Cloud `incidents.json` body, with and without a product list.
pub fn google_cloud(data: &[u8]) -> bool {
    let mut cfg = GoogleCloudConfig {
        base_url: base_url(),
        products: Vec::new(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    let all = check_snapshot(probe::google_cloud::parse(data, &cfg));
    cfg.products = vec!["Google Compute Engine".to_owned(), "x".to_owned()];
    let some = check_snapshot(probe::google_cloud::parse(data, &cfg));
    assert_eq!(
        all, some,
        "the product list changed whether the body parses"
    );
    all
}

/// A Heroku `api/v4/current-status` body.
pub fn heroku(data: &[u8]) -> bool {
    let cfg = HerokuConfig {
        base_url: base_url(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    check_snapshot(probe::heroku::parse(data, &cfg))
}

/// A Salesforce `v1/instances/status/preview` body.
pub fn salesforce(data: &[u8]) -> bool {
    let cfg = SalesforceConfig {
        base_url: base_url(),
        components: filter(),
        max_components: MAX_COMPONENTS,
    };
    check_snapshot(probe::salesforce::parse(data, &cfg))
}

/// Rules covering the JSONPath features the engine uses: descendants,
/// wildcards, filters, slices, value maps, static and path labels.
const DEFAULT_RULES: &str = concat!(
    "        - { name: a, path: \"$..*\", labels: { n: \"$.name\" }, value_map: { up: 1, down: 0 } }\n",
    "        - { name: b, type: counter, path: \"$.items[*]\", value: \"$.value\", labels: { k: \"$.name\", s: fixed } }\n",
    "        - { name: c, path: \"$[?@.value > 1]\", value: \"$.value\" }\n",
    "        - { name: d, path: \"$\", value: \"$.items[-1:]\" }\n",
    "        - { name: e, path: \"$..status\", labels: { i: \"$\" }, value_map: { operational: 1, major_outage: 0 } }\n",
);

/// A `json` target with these rules, through the real config loader (so
/// the paths are compiled exactly as at load). None when the loader
/// rejects them.
fn json_config(rules: &str) -> Option<JsonConfig> {
    let yaml = format!(
        "targets:\n  - name: fuzz\n    json:\n      url: https://api.example.com/stats\n      metrics:\n{rules}"
    );
    let config = Config::from_bytes(yaml.as_bytes(), Path::new("/nonexistent-fuzz-dir/x.yaml"));
    match &config.ok()?.targets.first()?.prober {
        ProberConfig::Json(json) => Some(json.clone()),
        _ => None,
    }
}

/// The `json` prober's rule engine. Without a NUL byte the input is a body
/// run through fixed rules; with one, the part before it holds JSONPath
/// expressions (one per line: `path`, or `path<TAB>value`), compiled through
/// the config loader, and the part after it is the body.
pub fn json(data: &[u8]) -> bool {
    static DEFAULT: OnceLock<JsonConfig> = OnceLock::new();
    let bodies = parts(data, 2);
    let compiled;
    let (cfg, body) = match bodies.as_slice() {
        [paths, body] => {
            let mut rules = String::new();
            for (i, line) in String::from_utf8_lossy(paths).lines().take(8).enumerate() {
                let (path, value) = line.split_once('\t').unwrap_or((line, "$"));
                // JSON strings are YAML double-quoted scalars.
                let quote = |s: &str| serde_json::to_string(s).expect("a string serialises");
                rules.push_str(&format!(
                    "        - {{ name: r{i}, path: {}, value: {}, labels: {{ l: {} }} }}\n",
                    quote(path),
                    quote(value),
                    quote(value)
                ));
            }
            compiled = match json_config(&rules) {
                Some(cfg) => cfg,
                None => return false,
            };
            (&compiled, *body)
        }
        _ => (
            DEFAULT.get_or_init(|| json_config(DEFAULT_RULES).expect("the default rules load")),
            data,
        ),
    };
    match probe::json::parse(body, cfg) {
        Ok(snap) => {
            assert_eq!(snap.rules.len(), cfg.rules.len());
            for (rule, got) in cfg.rules.iter().zip(&snap.rules) {
                assert!(got.samples.len() <= probe::json::MAX_SAMPLES_PER_RULE);
                for sample in &got.samples {
                    assert!(sample.value.is_finite(), "{sample:?}");
                    assert_eq!(sample.labels.len(), rule.labels.len());
                    if rule.kind == probe::json::MetricKind::Counter {
                        assert!(sample.value >= 0.0, "{sample:?}");
                    }
                }
            }
            true
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            false
        }
    }
}
