//! The `json` prober: a table of rules against real-looking bodies (arrays
//! of objects, nested maps, numeric strings, `value_map` words, booleans,
//! nulls, filters, a top-level list), the probe through the daemon's path
//! against a local server (auth, status, decode), `/metrics` rendering
//! (counters with and without `_total`, families shared across targets,
//! label order, HELP), config errors for bad names and collisions, and a
//! property test: no JSON body, and no byte string, panics the parser.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{probe, target};
use proptest::prelude::*;
use upstream_exporter::config::{Config, JsonConfig, ProberConfig, TargetConfig};
use upstream_exporter::metrics::{ExporterStatus, Format, Metrics};
use upstream_exporter::probe::json::{self, MAX_SAMPLES_PER_RULE, Sample};
use upstream_exporter::probe::{ProbeOutput, Reason};
use upstream_exporter::state::{SharedTargets, TargetSet, TargetState};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A `json` target named `name`: `rules` are `metrics:` entries (each line
/// indented 8 spaces), `extra` target fields (indented 4 spaces).
fn json_yaml(name: &str, url: &str, rules: &str, extra: &str) -> String {
    format!("  - name: {name}\n{extra}    json:\n      url: \"{url}\"\n      metrics:\n{rules}")
}

fn json_target(url: &str, rules: &str, extra: &str) -> Arc<TargetConfig> {
    target(&format!(
        "defaults:\n  interval: 30s\n  timeout: 5s\n  retries: 0\ntargets:\n{}",
        json_yaml("q", url, rules, extra)
    ))
}

fn rules(rules: &str) -> JsonConfig {
    match &json_target("http://127.0.0.1:9/stats", rules, "").prober {
        ProberConfig::Json(c) => c.clone(),
        other => panic!("not a json target: {other:?}"),
    }
}

/// Samples of one rule as (label values, value).
fn samples(s: &[Sample]) -> Vec<(Vec<&str>, f64)> {
    s.iter()
        .map(|x| (x.labels.iter().map(String::as_str).collect(), x.value))
        .collect()
}

const QUEUES: &str = r#"{
  "queues": [
    {"name": "orders", "vhost": "/", "messages": 12, "state": "running", "consumers": 3, "durable": true, "partition": 0},
    {"name": "emails", "vhost": "/", "messages": "7", "state": "idle", "consumers": 0, "durable": false, "partition": 1},
    {"name": "dead", "vhost": "/", "messages": null, "state": "crashed", "consumers": null, "durable": true, "partition": 2},
    {"name": "new", "vhost": "/", "state": "weird"}
  ],
  "cluster": {
    "name": "rabbit@a",
    "nodes": {
      "a": {"running": true, "mem_used": 123456789, "uptime_ms": "98765"},
      "b": {"running": false, "mem_used": 1.5e9, "uptime_ms": "1e3"}
    }
  },
  "totals": {"published": 1024, "delivered": 1000, "redelivered": -1}
}"#;

type Expected<'a> = Vec<(Vec<&'a str>, f64)>;

#[test]
fn rules_against_real_looking_bodies() {
    #[allow(clippy::type_complexity)]
    let table: Vec<(&str, &str, &str, Expected<'_>, Vec<(&str, u64)>)> = vec![
        (
            "array of objects; numeric string; null and missing values skipped and counted",
            QUEUES,
            r#"        - { name: queue_messages, path: "$.queues[*]", value: "$.messages", labels: { queue: "$.name" } }"#,
            vec![(vec!["orders"], 12.0), (vec!["emails"], 7.0)],
            vec![("queue_messages", 2)],
        ),
        (
            "strings through value_map; an unmapped word is counted",
            QUEUES,
            r#"        - { name: queue_state, path: "$.queues[*]", value: "$.state", labels: { queue: "$.name" }, value_map: { running: 1, idle: 0.5, crashed: 0 } }"#,
            vec![
                (vec!["orders"], 1.0),
                (vec!["emails"], 0.5),
                (vec!["dead"], 0.0),
            ],
            vec![("queue_state", 1)],
        ),
        (
            "booleans are 1 and 0",
            QUEUES,
            r#"        - { name: queue_durable, path: "$.queues[*]", value: "$.durable", labels: { queue: "$.name" } }"#,
            vec![
                (vec!["orders"], 1.0),
                (vec!["emails"], 0.0),
                (vec!["dead"], 1.0),
            ],
            vec![("queue_durable", 1)],
        ),
        (
            "number and boolean label values are stringified; labels sorted by name; static labels",
            QUEUES,
            r#"        - { name: queue_consumers, path: "$.queues[0:2]", value: "$.consumers", labels: { partition: "$.partition", durable: "$.durable", broker: rabbitmq } }"#,
            vec![
                (vec!["rabbitmq", "true", "0"], 3.0),
                (vec!["rabbitmq", "false", "1"], 0.0),
            ],
            vec![],
        ),
        (
            "nested maps: one rule per key with a static label",
            QUEUES,
            "        - { name: node_running, path: \"$.cluster.nodes.a\", value: \"$.running\", labels: { node: a } }\n        - { name: node_running, path: \"$.cluster.nodes.b\", value: \"$.running\", labels: { node: b } }",
            vec![(vec!["a"], 1.0), (vec!["b"], 0.0)],
            vec![],
        ),
        (
            "a scalar path without `value` samples the match itself; exponent strings",
            QUEUES,
            r#"        - { name: node_uptime_ms, path: "$.cluster.nodes.b.uptime_ms" }"#,
            vec![(vec![], 1000.0)],
            vec![],
        ),
        (
            "two matches with the same labels: the first wins, the second is counted",
            QUEUES,
            r#"        - { name: node_mem_used_bytes, path: "$..mem_used" }"#,
            vec![(vec![], 123_456_789.0)],
            vec![("node_mem_used_bytes", 1)],
        ),
        (
            "counters: a negative value is skipped and counted",
            QUEUES,
            "        - { name: published_total, type: counter, path: \"$.totals.published\" }\n        - { name: redelivered, type: counter, path: \"$.totals.redelivered\" }",
            vec![(vec![], 1024.0)],
            vec![("redelivered", 1)],
        ),
        (
            "RFC 9535 filter: only numbers compare",
            QUEUES,
            r#"        - { name: busy_queue_messages, path: "$.queues[?@.messages > 10]", value: "$.messages", labels: { queue: "$.name" } }"#,
            vec![(vec!["orders"], 12.0)],
            vec![],
        ),
        (
            "a list and an object as value are skipped; as label, compact JSON",
            r#"{"items": [{"v": [1], "k": {"a": 1}}, {"v": {"x": 1}, "k": [1, 2]}, {"v": 2, "k": [1, 2]}]}"#,
            r#"        - { name: item_v, path: "$.items[*]", value: "$.v", labels: { k: "$.k" } }"#,
            vec![(vec!["[1,2]"], 2.0)],
            vec![("item_v", 2)],
        ),
        (
            "top-level list; no match gives no sample and counts nothing",
            r#"[{"id": "a", "up": true}, {"id": "b", "up": false}]"#,
            "        - { name: svc_up, path: \"$[*]\", value: \"$.up\", labels: { svc: \"$.id\" } }\n        - { name: svc_latency, path: \"$[*].latency\" }",
            vec![(vec!["a"], 1.0), (vec!["b"], 0.0)],
            vec![],
        ),
        (
            "numeric strings with spaces; non-numeric strings counted; NaN and inf are not numbers",
            r#"{"a": " 4.5 ", "b": "n/a", "c": "NaN", "d": "inf", "e": "-3"}"#,
            r#"        - { name: v, path: "$.*" }"#,
            vec![(vec![], 4.5)],
            vec![("v", 4)],
        ),
    ];
    for (what, body, rule_yaml, want, want_unknown) in table {
        let cfg = rules(rule_yaml);
        let snap = json::parse(body.as_bytes(), &cfg).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(snap.rules.len(), cfg.rules.len(), "{what}");
        let got: Vec<(Vec<&str>, f64)> = snap
            .rules
            .iter()
            .flat_map(|r| samples(&r.samples))
            .collect();
        assert_eq!(got, want, "{what}");
        let unknown: Vec<(&str, u64)> = snap
            .unknown_values
            .iter()
            .map(|(f, n)| (f.as_str(), *n))
            .collect();
        assert_eq!(unknown, want_unknown, "{what}");
    }
}

#[test]
fn bodies_that_are_not_json_are_decode_errors() {
    let cfg = rules(r#"        - { name: up, path: "$.up" }"#);
    for body in [
        &b""[..],
        b"<!DOCTYPE html><html></html>",
        b"{\"up\": ",
        b"\xff\xfe\x00",
    ] {
        let e = json::parse(body, &cfg).unwrap_err();
        assert_eq!(e.reason, Reason::Decode, "{body:?}");
    }
    // A BOM and UTF-16 are fine.
    let utf16: Vec<u8> = "\u{feff}{\"up\": 1}"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for body in [b"\xEF\xBB\xBF{\"up\": 1}".to_vec(), utf16] {
        let snap = json::parse(&body, &cfg).expect("decodes");
        assert_eq!(samples(&snap.rules[0].samples), vec![(vec![], 1.0)]);
    }
}

#[test]
fn samples_per_rule_are_capped() {
    let cfg = rules(r#"        - { name: item, path: "$[*]", labels: { i: "$" } }"#);
    let body = serde_json::to_vec(&(0..MAX_SAMPLES_PER_RULE + 5).collect::<Vec<_>>()).unwrap();
    let snap = json::parse(&body, &cfg).unwrap();
    assert_eq!(snap.rules[0].samples.len(), MAX_SAMPLES_PER_RULE);
    assert_eq!(snap.rules[0].capped, 5);
}

#[tokio::test]
async fn probe_through_the_daemon_path_with_auth() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stats"))
        // base64("monitor:s3cret")
        .and(header("authorization", "Basic bW9uaXRvcjpzM2NyZXQ="))
        .and(header("x-api-version", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(QUEUES, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/missing"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(path("/html"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>moved</html>", "text/html"))
        .mount(&server)
        .await;
    let rule = r#"        - { name: queue_messages, path: "$.queues[*]", value: "$.messages", labels: { queue: "$.name" } }"#;
    let auth = format!(
        "      auth: {{ basic: {{ username: monitor, password_file: \"{}\" }} }}\n      headers: {{ X-Api-Version: \"2\", Accept: application/vnd.api+json }}\n",
        secret.display()
    );
    let t = target(&format!(
        "targets:\n  - name: q\n    user_agent: queue-watch\n    json:\n      url: \"{}/stats\"\n{auth}      metrics:\n{rule}\n",
        server.uri()
    ));
    let ok = probe(&t).await.expect("probe succeeds");
    assert_eq!(ok.http_status, 200);
    let ProbeOutput::Json(snap) = &ok.output else {
        panic!("json output");
    };
    assert_eq!(snap.rules[0].samples.len(), 2);
    server.verify().await;
    // Each header once: the target's own Accept replaces the client's, and
    // its user agent is the only one.
    let requests = server.received_requests().await.expect("recorded");
    let sent = |name: &str| -> Vec<String> {
        requests[0]
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(sent("user-agent"), ["queue-watch"]);
    assert_eq!(sent("accept"), ["application/vnd.api+json"]);

    let e = probe(&json_target(&format!("{}/missing", server.uri()), rule, ""))
        .await
        .unwrap_err();
    assert_eq!((e.reason, e.http_status), (Reason::HttpStatus, Some(404)));
    let e = probe(&json_target(&format!("{}/html", server.uri()), rule, ""))
        .await
        .unwrap_err();
    assert_eq!((e.reason, e.http_status), (Reason::Decode, Some(200)));
}

/// Probe every target of `yaml` against `server` and render `/metrics`.
async fn render_all(yaml: &str, format: Format) -> String {
    let config = Config::from_bytes(yaml.as_bytes(), std::path::Path::new("t.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut states = Vec::new();
    for t in &config.targets {
        let state = Arc::new(TargetState::new(t.clone()));
        let result = probe(t).await;
        assert!(result.is_ok(), "{}: {result:?}", t.name);
        upstream_exporter::runner::publish(&state, result, Duration::from_millis(3));
        states.push(state);
    }
    states.sort_by(|a, b| a.name().cmp(b.name()));
    let targets = SharedTargets::default();
    targets.store(Arc::new(TargetSet { targets: states }));
    Metrics::new(targets, Arc::new(ExporterStatus::default())).render(format)
}

#[tokio::test]
async fn metrics_rendering() {
    let server = MockServer::start().await;
    Mock::given(path("/stats"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(QUEUES, "application/json"))
        .mount(&server)
        .await;
    let url = format!("{}/stats", server.uri());
    let a_rules = "        - { name: queue_messages, help: \"Messages\\nwaiting \\\"now\\\" C:\\\\q\", path: \"$.queues[0:2]\", value: \"$.messages\", labels: { queue: \"$.name\" } }\n        - { name: published_total, type: counter, path: \"$.totals.published\" }\n        - { name: delivered, type: counter, path: \"$.totals.delivered\" }\n        - { name: queue_state, path: \"$.queues[?@.name == 'new']\", value: \"$.state\" }\n";
    let b_rules = "        - { name: queue_messages, path: \"$.queues[0]\", value: \"$.messages\", labels: { queue: \"$.name\" } }\n";
    let yaml = format!(
        "targets:\n{}{}",
        json_yaml("a", &url, a_rules, "    labels: { team: core }\n"),
        json_yaml("b", &url, b_rules, "")
    );

    let text = render_all(&yaml, Format::Text).await;
    let family_lines = |name: &str| -> Vec<&str> {
        text.lines()
            .filter(|l| l.starts_with(name) || l.contains(&format!(" {name} ")))
            .collect()
    };
    // One family for both targets, target + rule labels + static labels.
    assert_eq!(
        family_lines("queue_messages"),
        vec![
            // One backslash in the config, escaped once on the wire.
            "# HELP queue_messages Messages waiting 'now' C:\\\\q",
            "# TYPE queue_messages gauge",
            "queue_messages{target=\"a\",queue=\"orders\",team=\"core\"} 12",
            "queue_messages{target=\"a\",queue=\"emails\",team=\"core\"} 7",
            "queue_messages{target=\"b\",queue=\"orders\"} 12",
        ],
        "{text}"
    );
    // A counter named with or without `_total` is exposed as `<name>_total`.
    assert!(
        text.contains(
            "# TYPE published_total counter\npublished_total{target=\"a\",team=\"core\"} 1024\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "# TYPE delivered_total counter\ndelivered_total{target=\"a\",team=\"core\"} 1000\n"
        ),
        "{text}"
    );
    assert!(!text.contains("_total_total"), "{text}");
    // An unknown word leaves no sample, counts under the metric's name.
    assert!(!text.contains("queue_state{"), "{text}");
    assert!(
        text.contains(
            "upstream_unknown_values_total{target=\"a\",field=\"queue_state\",team=\"core\"} 1"
        ),
        "{text}"
    );

    let om = render_all(&yaml, Format::OpenMetrics).await;
    assert!(
        om.contains("# TYPE published counter\npublished_total{target=\"a\",team=\"core\"} 1024\n"),
        "{om}"
    );
    assert!(
        om.contains("# TYPE delivered counter\ndelivered_total{"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"));
}

#[test]
fn config_errors_for_names_and_collisions() {
    let url = "http://127.0.0.1:9/stats";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "invalid metric name",
            json_yaml(
                "q",
                url,
                "        - { name: queue-depth, path: \"$.a\" }\n",
                "",
            ),
            "`queue-depth` is not a valid Prometheus metric name",
        ),
        (
            "reserved prefix",
            json_yaml(
                "q",
                url,
                "        - { name: upstream_probe_success, path: \"$.a\" }\n",
                "",
            ),
            "starts with `upstream_`, which is reserved",
        ),
        (
            "process_ prefix",
            json_yaml(
                "q",
                url,
                "        - { name: process_open_fds, path: \"$.a\" }\n",
                "",
            ),
            "starts with `process_`, which is reserved",
        ),
        (
            "gauge with _total",
            json_yaml(
                "q",
                url,
                "        - { name: jobs_total, path: \"$.a\" }\n",
                "",
            ),
            "gauge `jobs_total` ends in `_total`",
        ),
        (
            "invalid label name",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", labels: { \"bad-name\": x } }\n",
                "",
            ),
            "`bad-name` is not a valid Prometheus label name",
        ),
        (
            "label `target`",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", labels: { target: \"$.t\" } }\n",
                "",
            ),
            "label name `target` is reserved",
        ),
        (
            "label `__x`",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", labels: { __x: \"$.t\" } }\n",
                "",
            ),
            "label name `__x` is reserved",
        ),
        (
            "label also a static target label",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", labels: { team: \"$.t\" } }\n",
                "    labels: { team: core }\n",
            ),
            "label `team` is also one of the target's static `labels`",
        ),
        (
            "bad JSONPath",
            json_yaml("q", url, "        - { name: a, path: \"$.a[\" }\n", ""),
            "invalid JSONPath `$.a[` in `path`",
        ),
        (
            "bad JSONPath in a label",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", labels: { x: \"$$$\" } }\n",
                "",
            ),
            "in `labels.x`",
        ),
        (
            "one name, two types in one target",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\" }\n        - { name: a, type: counter, path: \"$.b\" }\n",
                "",
            ),
            "metric `a` is a counter here but a gauge at line",
        ),
        (
            "one name, two types across targets",
            format!(
                "{}{}",
                json_yaml("q", url, "        - { name: a, path: \"$.a\" }\n", ""),
                json_yaml(
                    "r",
                    url,
                    "        - { name: a, type: counter, path: \"$.a\" }\n",
                    ""
                )
            ),
            "metric `a` is a counter here but a gauge at line 6 (target `q`)",
        ),
        (
            "differing label sets",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", labels: { x: \"$.x\" } }\n        - { name: a, path: \"$.b\" }\n",
                "",
            ),
            "metric `a` has labels [] here but [x] at line",
        ),
        (
            "the same series twice",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", labels: { x: one } }\n        - { name: a, path: \"$.b\", labels: { x: one } }\n",
                "",
            ),
            "two rules would write the same series",
        ),
        (
            "counter spelled two ways",
            json_yaml(
                "q",
                url,
                "        - { name: a, type: counter, path: \"$.a\" }\n        - { name: a_total, type: counter, path: \"$.b\" }\n",
                "",
            ),
            "are both exposed as `a_total`",
        ),
        (
            "value_map not a number",
            json_yaml(
                "q",
                url,
                "        - { name: a, path: \"$.a\", value_map: { up: high } }\n",
                "",
            ),
            "`value_map` value for `up` must be a number, got `high`",
        ),
    ];
    for (what, targets, want) in cases {
        let yaml = format!("targets:\n{targets}");
        let err = Config::from_bytes(yaml.as_bytes(), std::path::Path::new("c.yaml"))
            .err()
            .unwrap_or_else(|| panic!("{what}: should fail\n{yaml}"));
        let text = err.to_string();
        assert!(
            text.contains(want),
            "{what}:\n  want: {want}\n  got:  {text}"
        );
        assert!(
            text.lines()
                .all(|l| l.starts_with("c.yaml:") && !l.starts_with("c.yaml:0:")),
            "{what}: every issue has a position: {text}"
        );
    }
    // Distinct static values, and one name in two targets with one type: fine.
    let fine = format!(
        "targets:\n{}{}",
        json_yaml(
            "q",
            url,
            "        - { name: a, path: \"$.a\", labels: { x: one } }\n        - { name: a, path: \"$.b\", labels: { x: two } }\n",
            ""
        ),
        json_yaml("r", url, "        - { name: a, path: \"$.a\" }\n", "")
    );
    Config::from_bytes(fine.as_bytes(), std::path::Path::new("c.yaml")).expect("valid");
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z0-9 .$@\"\\\\-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("up"),
            Just("down"),
            Just("42"),
            Just("-1"),
            Just("1e400")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("value".to_owned()),
                    Just("items".to_owned()),
                    "[a-z]{1,4}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn fuzz_config() -> JsonConfig {
    rules(concat!(
        "        - { name: a, path: \"$..*\", labels: { n: \"$.name\" }, value_map: { up: 1, down: 0 } }\n",
        "        - { name: b, type: counter, path: \"$.items[*]\", value: \"$.value\", labels: { k: \"$.name\", s: fixed } }\n",
        "        - { name: c, path: \"$[?@.value > 1]\", value: \"$.value\" }\n",
        "        - { name: d, path: \"$\", value: \"$.items[-1:]\" }\n",
        "        - { name: a, path: \"$.name\", labels: { n: \"$\" } }\n",
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_json_body_never_panics(value in any_json()) {
        let cfg = fuzz_config();
        let body = serde_json::to_vec(&value).unwrap();
        let snap = json::parse(&body, &cfg).expect("valid JSON always parses");
        prop_assert_eq!(snap.rules.len(), cfg.rules.len());
        for (rule, got) in cfg.rules.iter().zip(&snap.rules) {
            prop_assert!(got.samples.len() <= MAX_SAMPLES_PER_RULE);
            for s in &got.samples {
                prop_assert!(s.value.is_finite());
                prop_assert_eq!(s.labels.len(), rule.labels.len());
                if rule.kind == json::MetricKind::Counter {
                    prop_assert!(s.value >= 0.0);
                }
            }
        }
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = json::parse(&bytes, &fuzz_config());
    }
}
