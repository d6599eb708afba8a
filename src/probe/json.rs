//! `json` prober: user-defined metrics from any JSON API.
//!
//! One GET of `url` (retries, limits and conditional requests as for every
//! prober; a non-2xx answer is reason `http_status`), the body decoded like
//! a status API's (BOM, UTF-16, HTML → `decode`), then every rule of
//! `metrics:` applied to it:
//!
//! - `path` (RFC 9535 JSONPath, compiled once at config load) selects
//!   nodes of the body; each match is one sample.
//! - `value` (a JSONPath evaluated on the match, `$` being the match;
//!   default `$`) gives the sample value: a number; a string found in
//!   `value_map`; a numeric string; `true` 1 / `false` 0. A null or missing
//!   value, a string neither mapped nor numeric, a list or an object, or a
//!   negative counter value skips that sample and counts in
//!   `upstream_unknown_values_total{field="<metric name>"}`.
//! - `labels` maps label names to a JSONPath evaluated on the match, or to
//!   a static string (one not starting with `$`). The first node found is
//!   the value: strings as they are, numbers and booleans in their JSON
//!   spelling, null or missing as the empty string, lists and objects as
//!   compact JSON.
//! - Samples whose label values repeat those of an earlier sample of the
//!   same metric name (within this target) are dropped, the first kept, and
//!   counted like unknown values: one series cannot have two values.
//! - At most [`MAX_SAMPLES_PER_RULE`] samples per rule; the rest are
//!   dropped (counted in [`RuleSamples::capped`]).
//!
//! Metric naming: a `gauge` is exposed under its name; a `counter` named
//! `foo` or `foo_total` is exposed as `foo_total` in both formats (the
//! OpenMetrics family is `foo`). Config validation guarantees that names
//! and label names are valid, that a name has one type across the whole
//! config, and one label set within a target.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use serde_json_path::JsonPath;

use super::body::decode_json_body;
use super::{ProbeContext, ProbeError, ProbeOutput, ProbeSuccess};

/// A rule yields at most this many samples per probe.
pub const MAX_SAMPLES_PER_RULE: usize = 10_000;

/// Validated `json:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonConfig {
    /// The URL fetched (credentials moved into an `Authorization` header).
    pub url: url::Url,
    /// The `metrics:` rules, in file order.
    pub rules: Vec<JsonRule>,
}

/// `type:` of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Gauge,
    Counter,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

/// Where a label's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSource {
    Static(String),
    /// Evaluated on each match.
    Path(JsonPath),
}

/// One entry of `metrics:`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRule {
    /// The name as written.
    pub name: String,
    /// Sanitised: one line, no control characters or double quotes.
    pub help: String,
    pub kind: MetricKind,
    pub path: JsonPath,
    pub value: JsonPath,
    /// Sorted by label name.
    pub labels: Vec<(String, LabelSource)>,
    pub value_map: Vec<(String, f64)>,
}

impl JsonRule {
    /// The metric family name: the name, less a counter's `_total`.
    pub fn family(&self) -> &str {
        family_name(&self.name, self.kind)
    }
}

/// The family a rule named `name` of type `kind` belongs to.
pub fn family_name(name: &str, kind: MetricKind) -> &str {
    match kind {
        MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name),
        MetricKind::Gauge => name,
    }
}

/// HELP text as it can be exposed: control characters become spaces, runs
/// of spaces collapse and `"` becomes `'`. Backslashes stay as they are:
/// the exposition writer escapes them (escaping here too made one
/// backslash in the config read as two in Prometheus).
pub fn sanitize_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        match c {
            ' ' if out.is_empty() || out.ends_with(' ') => {}
            '"' => out.push('\''),
            c => out.push(c),
        }
    }
    out.trim_end().to_owned()
}

/// What a successful `json` probe yields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonSnapshot {
    /// One entry per rule of the config, in the same order.
    pub rules: Vec<RuleSamples>,
    /// Skipped samples by metric name (sorted).
    pub unknown_values: Vec<(String, u64)>,
}

/// The samples one rule produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSamples {
    pub samples: Vec<Sample>,
    /// Matches dropped past [`MAX_SAMPLES_PER_RULE`].
    pub capped: usize,
}

/// One sample: label values in the order of the rule's `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<String>,
    pub value: f64,
}

/// Fetch the URL and apply the rules.
pub async fn probe(ctx: &ProbeContext<'_>, cfg: &JsonConfig) -> Result<ProbeSuccess, ProbeError> {
    let fetched = ctx.get(&cfg.url).await?;
    let snapshot = parse(&fetched.body, cfg).map_err(|e| e.with_status(fetched.status))?;
    Ok(ProbeSuccess {
        http_status: fetched.status,
        output: ProbeOutput::Json(snapshot),
    })
}

/// Apply `cfg`'s rules to a body. Fails only when the body is not JSON;
/// never panics, whatever the bytes.
pub fn parse(body: &[u8], cfg: &JsonConfig) -> Result<JsonSnapshot, ProbeError> {
    let document = decode_json_body(body)?;
    let mut unknown: HashMap<&str, u64> = HashMap::new();
    // (family, label values) already exported: the first sample wins.
    let mut seen: HashSet<(&str, Vec<String>)> = HashSet::new();
    let mut rules = Vec::with_capacity(cfg.rules.len());
    for rule in &cfg.rules {
        let mut out = RuleSamples::default();
        for node in rule.path.query(&document).all() {
            if out.samples.len() >= MAX_SAMPLES_PER_RULE {
                out.capped += 1;
                continue;
            }
            let Some(value) = sample_value(rule, node) else {
                *unknown.entry(rule.name.as_str()).or_default() += 1;
                continue;
            };
            let labels: Vec<String> = rule
                .labels
                .iter()
                .map(|(_, source)| label_value(source, node))
                .collect();
            if !seen.insert((rule.family(), labels.clone())) {
                *unknown.entry(rule.name.as_str()).or_default() += 1;
                continue;
            }
            out.samples.push(Sample { labels, value });
        }
        rules.push(out);
    }
    let mut unknown_values: Vec<(String, u64)> = unknown
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect();
    unknown_values.sort();
    Ok(JsonSnapshot {
        rules,
        unknown_values,
    })
}

/// The sample value of one match, or `None` to skip it.
fn sample_value(rule: &JsonRule, node: &Value) -> Option<f64> {
    let value = match rule.value.query(node).first()? {
        Value::Number(n) => n.as_f64()?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => match rule.value_map.iter().find(|(word, _)| word == s) {
            Some((_, mapped)) => *mapped,
            None => s.trim().parse::<f64>().ok()?,
        },
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    let valid = value.is_finite() && (rule.kind == MetricKind::Gauge || value >= 0.0);
    valid.then_some(value)
}

fn label_value(source: &LabelSource, node: &Value) -> String {
    match source {
        LabelSource::Static(text) => text.clone(),
        LabelSource::Path(path) => match path.query(node).first() {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_one_clean_line() {
        assert_eq!(
            sanitize_help("  Queue\ndepth\t\"now\"  "),
            "Queue depth 'now'"
        );
        assert_eq!(sanitize_help("a\\b"), "a\\b");
        assert_eq!(sanitize_help("\u{0}\u{7f}x"), "x");
    }

    #[test]
    fn counter_family_drops_total() {
        assert_eq!(family_name("jobs_total", MetricKind::Counter), "jobs");
        assert_eq!(family_name("jobs", MetricKind::Counter), "jobs");
        assert_eq!(family_name("jobs_total", MetricKind::Gauge), "jobs_total");
    }
}
