//! The Grafana dashboard as the tests see it: every panel query and
//! variable of `grafana/dashboards/upstream-exporter.json`, and the
//! expansion of Grafana's variables to concrete values the way Grafana
//! does before it sends a query to Prometheus.

use std::path::PathBuf;

use serde_json::Value;

pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards/upstream-exporter.json")
}

pub fn load() -> Value {
    let text = std::fs::read_to_string(path()).expect("dashboard JSON");
    serde_json::from_str(&text).expect("dashboard is valid JSON")
}

/// One query of one panel.
#[derive(Clone, Debug)]
pub struct PanelQuery {
    pub panel_id: i64,
    pub title: String,
    pub panel_type: String,
    pub ref_id: String,
    pub expr: String,
}

/// Every panel, rows' nested panels included (a collapsed row keeps its
/// panels inside itself).
pub fn panels(dashboard: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p.clone());
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner.clone());
        }
    }
    out
}

pub fn queries(dashboard: &Value) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(PanelQuery {
                panel_id: p["id"].as_i64().expect("panel id"),
                title: p["title"].as_str().expect("panel title").to_string(),
                panel_type: p["type"].as_str().expect("panel type").to_string(),
                ref_id: t["refId"].as_str().expect("refId").to_string(),
                expr: t["expr"].as_str().expect("expr").to_string(),
            });
        }
    }
    out
}

/// A templating variable by name.
pub fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("dashboard has no `{name}` variable"))
}

/// Concrete values for Grafana's variables.
pub struct Values {
    pub job: String,
    /// Already in the form Grafana interpolates a multi-value variable
    /// into a regex matcher: `(a|b)`, or `.*` for All.
    pub target: String,
    pub component: String,
}

/// Expand `$var` and `${var}` the way Grafana does before querying: the
/// datasource variable never appears in an expression; the interval
/// variables get fixed values fitting a 1 s scrape interval.
pub fn expand(expr: &str, values: &Values) -> String {
    let pairs: [(&str, &str); 6] = [
        ("__rate_interval", "10s"),
        ("__interval", "5s"),
        ("__range", "1m"),
        ("job", &values.job),
        ("target", &values.target),
        ("component", &values.component),
    ];
    let mut out = expr.to_string();
    for (name, value) in pairs {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    assert!(
        !out.contains('$'),
        "unexpanded variable left in {out:?} (from {expr:?})"
    );
    out
}

/// Grafana's regex escaping of a variable value used in `=~`.
pub fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
            // PromQL string literals need the backslash itself escaped.
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `label_values(<selector>, <label>)` split into its parts.
pub fn parse_label_values(definition: &str) -> (String, String) {
    let inner = definition
        .trim()
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values() query: {definition}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .unwrap_or_else(|| panic!("label_values() without a label: {definition}"));
    (selector.trim().to_string(), label.trim().to_string())
}
