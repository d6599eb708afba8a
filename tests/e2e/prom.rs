//! A small client for Prometheus' HTTP API (`/api/v1/query`, `/rules`,
//! `/alerts`, `/targets`, `/metadata`) and `eventually`, the bounded
//! polling loop every end-to-end assertion waits with.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One sample of an instant vector (or a scalar, with no labels).
#[derive(Clone, Debug)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// An alert as `/api/v1/alerts` reports it.
#[derive(Clone, Debug)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: String,
}

impl Alert {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

pub struct Prom {
    pub base: String,
    client: reqwest::Client,
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn sample_value(pair: &Value) -> f64 {
    let text = pair[1].as_str().unwrap_or("NaN");
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        t => t.parse().unwrap_or(f64::NAN),
    }
}

impl Prom {
    pub fn new(base: String, client: reqwest::Client) -> Prom {
        Prom { base, client }
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let url = url::Url::parse_with_params(&format!("{}{path}", self.base), query)
            .map_err(|e| format!("{path}: {e}"))?;
        let response = self
            .client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("GET {path}: body: {e}"))?;
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("GET {path}: JSON: {e}"))?;
        if body["status"] != "success" {
            return Err(format!(
                "{}: {}",
                body["errorType"].as_str().unwrap_or("error"),
                body["error"].as_str().unwrap_or("(no message)")
            ));
        }
        Ok(body["data"].clone())
    }

    /// Run an instant query; Err carries Prometheus' error (e.g. a parse
    /// error) so callers can report which expression broke.
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let data = self.get_json("/api/v1/query", &[("query", expr)]).await?;
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|r| Sample {
                            labels: string_map(&r["metric"]),
                            value: sample_value(&r["value"]),
                        })
                        .collect()
                })
                .unwrap_or_default()),
            Some("scalar") => Ok(vec![Sample {
                labels: BTreeMap::new(),
                value: sample_value(&data["result"]),
            }]),
            other => Err(format!("unexpected result type {other:?} for {expr}")),
        }
    }

    /// The query's samples, panicking on an API error.
    pub async fn vector(&self, expr: &str) -> Vec<Sample> {
        self.query(expr)
            .await
            .unwrap_or_else(|e| panic!("query {expr}: {e}"))
    }

    /// The single value of a one-sample query, None when it returned nothing.
    pub async fn value(&self, expr: &str) -> Option<f64> {
        let samples = self.vector(expr).await;
        assert!(
            samples.len() <= 1,
            "{expr} returned {} samples: {samples:?}",
            samples.len()
        );
        samples.first().map(|s| s.value)
    }

    pub async fn alerts(&self) -> Vec<Alert> {
        let data = self
            .get_json("/api/v1/alerts", &[])
            .await
            .unwrap_or_else(|e| panic!("alerts: {e}"));
        data["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|a| Alert {
                        labels: string_map(&a["labels"]),
                        annotations: string_map(&a["annotations"]),
                        state: a["state"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every alerting and recording rule loaded: (name, health, last error).
    pub async fn rules(&self) -> Vec<(String, String, String)> {
        let data = self
            .get_json("/api/v1/rules", &[])
            .await
            .unwrap_or_else(|e| panic!("rules: {e}"));
        let mut out = Vec::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                out.push((
                    rule["name"].as_str().unwrap_or_default().to_string(),
                    rule["health"].as_str().unwrap_or_default().to_string(),
                    rule["lastError"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        out
    }

    /// Active scrape targets: (job, health, last error).
    pub async fn targets(&self) -> Vec<(String, String, String)> {
        let data = self
            .get_json("/api/v1/targets", &[("state", "active")])
            .await
            .unwrap_or_else(|e| panic!("targets: {e}"));
        data["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["labels"]["job"].as_str().unwrap_or_default().to_string(),
                    t["health"].as_str().unwrap_or_default().to_string(),
                    t["lastError"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The metric type Prometheus recorded from the scrape (`info`,
    /// `gauge`, ...): the metadata API reports what the parser saw.
    pub async fn metadata_type(&self, metric: &str) -> Option<String> {
        let data = self
            .get_json("/api/v1/metadata", &[("metric", metric)])
            .await
            .unwrap_or_else(|e| panic!("metadata: {e}"));
        data[metric][0]["type"].as_str().map(str::to_string)
    }

    /// Label values of `label` on the series matching `selector`.
    pub async fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let data = self
            .get_json(
                &format!("/api/v1/label/{label}/values"),
                &[("match[]", selector)],
            )
            .await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }
}

/// Poll `check` every 200 ms until it returns Some, or panic after
/// `within` naming `what` and the last observation `check` left in `last`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {within:?} waiting for {what}; last seen: {last}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
