//! The targets API (`/api/v1/targets`, `/api/v1/targets/<name>`) and the
//! status board's HTML, driven by real probes against local upstreams on
//! 127.0.0.1: the object's shape with components, incidents and
//! maintenance from a real Statuspage body; history after probes flipping
//! between OK and failing; the failure retention rule and its bound; the
//! one-target route and its 404; no secret anywhere; hostile upstream text
//! escaped; cards sorted worst first.

mod common;
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harness::{Exporter, Reply, Upstream, eventually};
use upstream_exporter::probe::{
    Component, HttpSnapshot, Impact, Incident, ProbeError, ProbeOutput, ProbeSuccess, Reason,
    Severity, StatusSnapshot,
};
use upstream_exporter::runner::publish;
use upstream_exporter::state::{ProbeHistory, TargetSet, TargetState, unix_now};

/// Probe `state`'s target once through the daemon's code path and publish.
async fn probe_and_publish(state: &TargetState) {
    let started = std::time::Instant::now();
    let result = common::probe(&state.config).await;
    publish(state, result, started.elapsed());
}

/// The defaults of most tests here: no retries, so that one probe is one
/// request, and a short timeout.
const DEFAULTS: &str = "defaults:\n  interval: 2s\n  timeout: 1s\n  retries: 0\n";

/// A config of several targets, each `(name, prober block)`, under
/// [`DEFAULTS`].
fn targets_yaml(targets: &[(&str, String)]) -> String {
    targets_yaml_with(DEFAULTS, targets)
}

/// [`targets_yaml`] under other `defaults` (a `defaults:` block).
fn targets_yaml_with(defaults: &str, targets: &[(&str, String)]) -> String {
    let mut yaml = format!("{defaults}targets:\n");
    for (name, block) in targets {
        yaml.push_str(&format!("  - name: {name}\n{block}"));
    }
    yaml
}

fn statuspage_block(url: &str) -> String {
    format!("    statuspage: {{ url: \"{url}\" }}\n")
}

/// Target states for a config, sorted by name as the runner keeps them.
fn states(yaml: &str) -> Vec<Arc<TargetState>> {
    let mut states: Vec<Arc<TargetState>> = common::config(yaml)
        .targets
        .iter()
        .map(|t| Arc::new(TargetState::new(t.clone())))
        .collect();
    states.sort_by(|a, b| a.name().cmp(b.name()));
    states
}

/// A Statuspage summary with one component of `component` status and the
/// page indicator `indicator`.
fn page(indicator: &str, component: &str) -> Vec<u8> {
    format!(
        r#"{{"page":{{"id":"p","name":"P"}},"status":{{"indicator":"{indicator}"}},"components":[{{"id":"c1","name":"Core","status":"{component}","group":false}}],"incidents":[],"scheduled_maintenances":[]}}"#
    )
    .into_bytes()
}

async fn serve_files() -> Upstream {
    let twilio = common::fixture_bytes(
        "statuspage/twilio-summary-incidents-and-scheduled-maintenances.json",
    );
    let hostile = common::fixture_bytes("board/statuspage-hostile-incident.json");
    Upstream::start(move |seen| match seen.path.as_str() {
        "/twilio.json" => Reply::json(twilio.clone()),
        "/hostile.json" => Reply::json(hostile.clone()),
        "/major.json" => Reply::json(page("critical", "major_outage")),
        "/degraded.json" => Reply::json(page("minor", "degraded_performance")),
        "/ok.json" => Reply::json(page("none", "operational")),
        "/maintenance.json" => Reply::json(page("maintenance", "under_maintenance")),
        "/health" => Reply::status(204),
        "/stats" => Reply::json(r#"{"queues":[{"name":"a","depth":3},{"name":"b","depth":5}]}"#),
        "/moved.json" => Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: b"<!doctype html><html><body>We moved!</body></html>".to_vec(),
        },
        _ => Reply::status(404),
    })
    .await
}

#[tokio::test]
async fn target_object_shows_components_incidents_and_maintenance() {
    let upstream = serve_files().await;
    let yaml = targets_yaml(&[
        ("twilio", statuspage_block(&upstream.url("/twilio.json"))),
        (
            "health",
            format!("    http: {{ url: \"{}\" }}\n", upstream.url("/health")),
        ),
        (
            "queues",
            format!(
                "    json:\n      url: \"{}\"\n      metrics:\n        - {{ name: queue_depth, path: \"$.queues[*]\", value: \"$.depth\", labels: {{ queue: \"$.name\" }} }}\n",
                upstream.url("/stats")
            ),
        ),
    ]);
    let states = states(&yaml);
    for state in &states {
        probe_and_publish(state).await;
    }
    let set = TargetSet { targets: states };
    let api: serde_json::Value =
        serde_json::from_slice(&upstream_exporter::api::targets_body(&set)).unwrap();
    let targets = api["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    let twilio = &targets.iter().find(|t| t["name"] == "twilio").unwrap();

    assert_eq!(twilio["prober"], "statuspage");
    assert_eq!(twilio["url"], upstream.url("/twilio.json"));
    assert_eq!(twilio["success"], true);
    assert_eq!(twilio["http_status"], 200);
    assert_eq!(twilio["reason"], serde_json::Value::Null);
    assert_eq!(twilio["page_status"], "degraded");
    assert_eq!(twilio["page_status_code"], 3);
    assert_eq!(twilio["interval_seconds"], 2.0);
    assert_eq!(twilio["timeout_seconds"], 1.0);
    // The body lists four degraded leaf components (two more are group rows).
    let troubled: Vec<(&str, &str)> = twilio["components_not_operational"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert!(
        troubled.contains(&("SMS Short Code, North America", "degraded")),
        "{troubled:?}"
    );
    assert!(troubled.contains(&("MMS", "degraded")), "{troubled:?}");
    assert!(troubled.iter().all(|(_, s)| *s == "degraded"));
    let incidents: Vec<(&str, &str)> = twilio["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["impact"].as_str().unwrap()))
        .collect();
    assert_eq!(
        incidents,
        [
            ("SMS Delivery Delays to Mozambique Movitel", "minor"),
            (
                "SMS Delivery Delays from Subset of Twilio Short Codes to US Sprint",
                "minor"
            ),
        ]
    );
    assert_eq!(twilio["incidents_open"], 2);
    // Earliest scheduled_for: 2020-06-16T16:00:00-07:00.
    assert_eq!(twilio["next_maintenance"], 1_592_348_400.0);
    assert_eq!(twilio["history"].as_array().unwrap().len(), 1);

    let health = targets.iter().find(|t| t["name"] == "health").unwrap();
    assert_eq!(health["success"], true);
    assert_eq!(health["http_status"], 204);
    assert_eq!(health["tls_not_after"], serde_json::Value::Null);
    assert_eq!(health["page_status"], serde_json::Value::Null);
    let queues = targets.iter().find(|t| t["name"] == "queues").unwrap();
    assert_eq!(queues["json_samples"], 2);
    assert_eq!(
        queues["components_not_operational"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn history_follows_probes_flipping_between_ok_and_failing() {
    // Every third request answers 500.
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let upstream = Upstream::start(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
            Reply::status(500)
        } else {
            Reply::json(page("none", "operational"))
        }
    })
    .await;
    let state = &states(&targets_yaml(&[(
        "flip",
        statuspage_block(&upstream.url("/s.json")),
    )]))[0];
    for _ in 0..25 {
        probe_and_publish(state).await;
    }
    assert_eq!(requests.load(Ordering::SeqCst), 25, "one request per probe");
    let object = upstream_exporter::api::target_json(state, unix_now());
    let history = object["history"].as_array().unwrap();
    // Failures were probes 2, 5, 8, ..., 23. The ring holds probes 5..25
    // (seven failures); probe 2's failure is kept too, to make ten... of
    // which only eight exist.
    let expected: Vec<usize> = std::iter::once(2).chain(5..25).collect();
    assert_eq!(history.len(), expected.len(), "{history:#?}");
    let mut previous_time = 0.0;
    for (entry, probe) in history.iter().zip(expected) {
        let failed = probe % 3 == 2;
        assert_eq!(entry["success"], !failed, "probe {probe}: {entry}");
        let time = entry["time"].as_f64().unwrap();
        assert!(time >= previous_time, "oldest first");
        previous_time = time;
        assert!(entry["duration_seconds"].as_f64().unwrap() > 0.0);
        if failed {
            assert_eq!(entry["reason"], "http_status", "{entry}");
            assert_eq!(entry["http_status"], 500);
            assert!(entry["error"].as_str().unwrap().contains("500"), "{entry}");
        } else {
            assert_eq!(entry["reason"], serde_json::Value::Null);
            assert_eq!(entry["error"], serde_json::Value::Null);
            assert_eq!(entry["http_status"], 200);
        }
    }
    // The last probe (24) succeeded; the top-level result says so.
    assert_eq!(object["success"], true);
    assert_eq!(object["last_run"].as_f64(), Some(previous_time));
}

#[tokio::test]
async fn failures_outlive_the_ring_but_the_history_stays_bounded() {
    // 12 failures, then 30 successes.
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let upstream = Upstream::start(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) < 12 {
            Reply::Full {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html".into())],
                body: b"<html>moved</html>".to_vec(),
            }
        } else {
            Reply::json(page("none", "operational"))
        }
    })
    .await;
    let state = &states(&targets_yaml(&[(
        "recovering",
        statuspage_block(&upstream.url("/s.json")),
    )]))[0];
    for _ in 0..42 {
        probe_and_publish(state).await;
    }
    let object = upstream_exporter::api::target_json(state, unix_now());
    let history = object["history"].as_array().unwrap();
    let failures: Vec<&serde_json::Value> =
        history.iter().filter(|e| e["success"] == false).collect();
    assert_eq!(
        history.len(),
        ProbeHistory::RECENT + ProbeHistory::FAILURES,
        "20 recent results and the last 10 failures"
    );
    assert_eq!(failures.len(), ProbeHistory::FAILURES);
    assert!(history[..10].iter().all(|e| e["success"] == false));
    assert!(history[10..].iter().all(|e| e["success"] == true));
    assert_eq!(failures[0]["reason"], "decode");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("has the vendor moved its status page?")
    );
    // A long run of failures keeps only the ring: the bound holds.
    let failing = Upstream::start(|_| Reply::status(503)).await;
    let state = &states(&targets_yaml(&[(
        "down",
        statuspage_block(&failing.url("/s.json")),
    )]))[0];
    for _ in 0..45 {
        probe_and_publish(state).await;
    }
    let object = upstream_exporter::api::target_json(state, unix_now());
    assert_eq!(
        object["history"].as_array().unwrap().len(),
        ProbeHistory::RECENT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_target_route_decodes_names_and_answers_404_in_json() {
    let upstream = serve_files().await;
    let exporter = Exporter::start(&targets_yaml(&[
        (
            "api.v1:eu-west",
            statuspage_block(&upstream.url("/ok.json")),
        ),
        ("other", statuspage_block(&upstream.url("/degraded.json"))),
    ]))
    .await;
    let client = &exporter.client;
    eventually(Duration::from_secs(10), "both first probes", || async {
        let r = client
            .get(format!("{}/-/ready", exporter.base))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let get = |path: &str| {
        let url = format!("{}{path}", exporter.base);
        async move {
            let r = client.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
            let body: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap())
                .expect("every answer of the API is JSON");
            (status, content_type, body)
        }
    };
    for path in [
        "/api/v1/targets/api.v1:eu-west",
        "/api/v1/targets/api.v1%3Aeu-west",
        "/api/v1/targets/api%2Ev1%3aeu%2Dwest",
    ] {
        let (status, content_type, body) = get(path).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "application/json"),
            "{path}"
        );
        assert_eq!(body["name"], "api.v1:eu-west", "{path}");
        assert_eq!(body["page_status"], "operational", "{path}");
        assert_eq!(body["history"].as_array().unwrap().len(), 1, "{path}");
    }
    let (status, _, body) = get("/api/v1/targets/other").await;
    assert_eq!(
        (status, body["page_status"].as_str()),
        (200, Some("degraded"))
    );
    for path in [
        "/api/v1/targets/nope",
        "/api/v1/targets/",
        "/api/v1/targets/bad%zz",
    ] {
        let (status, content_type, body) = get(path).await;
        assert_eq!(
            (status, content_type.as_str()),
            (404, "application/json"),
            "{path}"
        );
        assert!(body["error"].as_str().is_some(), "{path}: {body}");
    }
    let (_, _, body) = get("/api/v1/targets/nope").await;
    assert_eq!(body["error"], "no target named \"nope\"");
    // The list holds both, with the same object as the one-target route.
    let all = exporter.targets_api().await;
    let names: Vec<&str> = all["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api.v1:eu-west", "other"]);

    // The read-only routes take GET and HEAD only; an unknown path is 404
    // whatever the method.
    for path in [
        "/",
        "/metrics",
        "/-/healthy",
        "/-/ready",
        "/api/v1/targets",
        "/api/v1/targets/other",
    ] {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let r = client
                .request(method.clone(), format!("{}{path}", exporter.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(r.headers()["allow"], "GET, HEAD", "{method} {path}");
        }
        let head = client
            .head(format!("{}{path}", exporter.base))
            .send()
            .await
            .unwrap();
        assert!(head.status().is_success(), "HEAD {path}: {}", head.status());
    }
    // A HEAD of /metrics (which renders nothing) has a GET's head.
    for _ in 0..5 {
        let head = client
            .head(format!("{}/metrics", exporter.base))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert!(
            head.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
    }
    let r = client
        .post(format!("{}/nowhere", exporter.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_api_or_the_board() {
    let upstream = Upstream::start(|seen| match seen.header("authorization") {
        // The secrets were sent: the test would mean nothing otherwise.
        Some(_) => Reply::json(page("minor", "degraded_performance")),
        None => Reply::status(401),
    })
    .await;
    let base = upstream.url("");
    let with_userinfo = base.replace("http://", "http://monitor:userinfo-SECRET@");
    let yaml = [
        format!("{DEFAULTS}targets:\n"),
        "  - name: bearer\n    bearer_token: token-SECRET\n".to_owned(),
        "    headers: { X-Api-Key: header-SECRET }\n".to_owned(),
        format!("    statuspage: {{ url: \"{base}/a.json?key=query-SECRET\" }}\n"),
        format!("  - name: basic\n    statuspage: {{ url: \"{with_userinfo}/b.json\" }}\n"),
        format!("  - name: posting\n    http:\n      url: \"{base}/c\"\n      method: POST\n"),
        "      body: '{\"password\": \"body-SECRET\"}'\n".to_owned(),
        format!("  - name: json-basic\n    json:\n      url: \"{base}/d\"\n"),
        "      auth: { basic: { username: u, password: password-SECRET } }\n".to_owned(),
        "      metrics: [{ name: x, path: \"$.page\" }]\n".to_owned(),
    ]
    .concat();
    let exporter = Exporter::start(&yaml).await;
    let client = &exporter.client;
    eventually(Duration::from_secs(10), "every first probe", || async {
        let r = client
            .get(format!("{}/-/ready", exporter.base))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let api = exporter.targets_api().await;
    let bearer = api["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "bearer")
        .unwrap();
    assert_eq!(
        bearer["page_status"], "degraded",
        "the token was sent and the probe succeeded: {bearer}"
    );
    for path in [
        "/api/v1/targets",
        "/api/v1/targets/bearer",
        "/api/v1/targets/basic",
        "/api/v1/targets/posting",
        "/api/v1/targets/json-basic",
        "/",
    ] {
        let body = client
            .get(format!("{}{path}", exporter.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.len() > 100, "{path}: {body}");
        assert!(!body.contains("SECRET"), "{path} leaks a secret:\n{body}");
        assert!(!body.contains("monitor:"), "{path} leaks userinfo");
    }
    exporter.stop().await;
}

#[tokio::test]
async fn board_shows_hostile_upstream_text_as_text() {
    let upstream = serve_files().await;
    let states = states(&targets_yaml(&[(
        "hostile",
        statuspage_block(&upstream.url("/hostile.json")),
    )]));
    probe_and_publish(&states[0]).await;
    let html = upstream_exporter::board::landing_page(&TargetSet { targets: states }, "/metrics");
    assert!(
        html.contains(
            "Login failures &lt;script&gt;document.title=&#39;pwned&#39;;document.body.appendChild("
        ),
        "{html}"
    );
    assert!(html.contains(
        "API &lt;img src=x onerror=&quot;document.body.setAttribute(&#39;data-pwned&#39;"
    ));
    assert!(!html.contains("<script"), "no script element at all");
    assert!(!html.contains("<img"), "no markup from the upstream");
    // The page forbids scripts outright, as a second line of defence.
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    // The partial outage component is listed; the operational one counted.
    assert!(html.contains("partial outage"));
    assert!(html.contains("1 of 2 components operational"));
    assert!(!html.contains("Website &amp; &quot;Dashboard&quot;"));
}

#[tokio::test]
async fn board_lists_worst_first_then_by_name() {
    let upstream = serve_files().await;
    // Names chosen so that alphabetical order is not the expected order.
    // The order is what is tested, not timeouts: the first (cold) request
    // of a debug build on a loaded CI machine once took over the usual 1 s
    // and made "a-ok" a failing target.
    let yaml = targets_yaml_with(
        "defaults:\n  interval: 30s\n  timeout: 10s\n  retries: 0\n",
        &[
            ("a-ok", statuspage_block(&upstream.url("/ok.json"))),
            ("b-pending", statuspage_block(&upstream.url("/ok.json"))),
            (
                "c-degraded",
                statuspage_block(&upstream.url("/degraded.json")),
            ),
            ("d-major", statuspage_block(&upstream.url("/major.json"))),
            (
                "e-maintenance",
                statuspage_block(&upstream.url("/maintenance.json")),
            ),
            (
                "f-health",
                format!("    http: {{ url: \"{}\" }}\n", upstream.url("/health")),
            ),
            ("g-moved", statuspage_block(&upstream.url("/moved.json"))),
            (
                "h-degraded",
                statuspage_block(&upstream.url("/degraded.json")),
            ),
            ("i-gone", statuspage_block(&upstream.url("/missing.json"))),
        ],
    );
    let states = states(&yaml);
    for state in states.iter().filter(|s| s.name() != "b-pending") {
        probe_and_publish(state).await;
    }
    let html = upstream_exporter::board::landing_page(
        &TargetSet {
            targets: states.clone(),
        },
        "/metrics",
    );
    let mut order: Vec<(usize, &str)> = states
        .iter()
        .map(|s| {
            let anchor = format!("id=\"target-{}\"", s.name());
            let at = html
                .find(&anchor)
                .unwrap_or_else(|| panic!("no card for {}", s.name()));
            (at, s.name())
        })
        .collect();
    order.sort();
    let order: Vec<&str> = order.into_iter().map(|(_, name)| name).collect();
    assert_eq!(
        order,
        [
            "g-moved",
            "i-gone",
            "d-major",
            "c-degraded",
            "h-degraded",
            "e-maintenance",
            "a-ok",
            "f-health",
            "b-pending",
        ]
    );
    // Failing cards say why in plain words, then the probe's own message.
    assert!(html.contains("The answer is not the JSON expected"));
    assert!(html.contains("answered HTML instead of JSON — has the vendor moved its status page?"));
    assert!(html.contains("The upstream answered with an error status"));
    // Links to the other endpoints, the telemetry path as configured.
    for link in [
        "href=\"/metrics\"",
        "href=\"/api/v1/targets\"",
        "href=\"/-/ready\"",
    ] {
        assert!(html.contains(link), "{link}");
    }
    assert!(html.contains("2 failing"));
}

/// A status snapshot of `n` components, the first `troubled` degraded,
/// with two open incidents.
fn snapshot(n: usize, troubled: usize) -> StatusSnapshot {
    StatusSnapshot {
        page: if troubled > 0 {
            Severity::Degraded
        } else {
            Severity::Operational
        },
        components: (0..n)
            .map(|i| {
                let status = if i < troubled {
                    Severity::Degraded
                } else {
                    Severity::Operational
                };
                Component::new(&format!("c{i}"), &format!("Component {i}"), "Group", status)
            })
            .collect(),
        incidents: (0..2)
            .map(|i| Incident {
                id: format!("i{i}"),
                name: format!("Incident {i}"),
                impact: Impact::Minor,
                status: "investigating".into(),
                started: Some(unix_now() - 600.0),
            })
            .collect(),
        ..StatusSnapshot::default()
    }
}

fn success(output: ProbeOutput) -> Result<ProbeSuccess, ProbeError> {
    Ok(ProbeSuccess {
        http_status: 200,
        output,
    })
}

#[test]
fn board_shows_http_tls_expiry_json_samples_and_long_lists_cut() {
    let yaml = targets_yaml(&[
        (
            "tls",
            "    http: { url: \"https://127.0.0.1:9/\" }\n".to_owned(),
        ),
        ("big", statuspage_block("http://127.0.0.1:9/s.json")),
    ]);
    let states = states(&yaml);
    let now = unix_now();
    publish(
        &states[1],
        success(ProbeOutput::Http(HttpSnapshot {
            tls_not_after: Some(now + 42.0 * 86_400.0),
            tls_chain_earliest_not_after: Some(now + 10.0 * 86_400.0 + 30.0),
        })),
        Duration::from_millis(120),
    );
    publish(
        &states[0],
        success(ProbeOutput::Status(snapshot(500, 40).into())),
        Duration::from_millis(80),
    );
    let html = upstream_exporter::board::landing_page(
        &TargetSet {
            targets: states.clone(),
        },
        "/m",
    );
    let tls = &html[html.find("id=\"target-tls\"").unwrap()..];
    assert!(tls.contains("TLS certificate expires "), "{tls}");
    assert!(
        tls.contains("(in 42 d); the earliest in its chain "),
        "{tls}"
    );
    assert!(tls.contains("(in 10 d)"), "{tls}");
    assert!(tls.contains("HTTP 200") && tls.contains("120 ms"), "{tls}");
    let big =
        &html[html.find("id=\"target-big\"").unwrap()..html.find("id=\"target-tls\"").unwrap()];
    // 40 degraded: 12 listed, the rest counted; the 460 operational only counted.
    assert_eq!(big.matches(">degraded</span><span>").count(), 12, "{big}");
    assert!(big.contains("and 28 more"), "{big}");
    assert!(big.contains("460 of 500 components operational"), "{big}");
    assert!(!big.contains("Component 41<"));
    let api = upstream_exporter::api::target_json(&states[0], now);
    assert_eq!(
        api["components_not_operational"].as_array().unwrap().len(),
        40
    );
    let api = upstream_exporter::api::target_json(&states[1], now);
    assert_eq!(api["tls_not_after"], now + 42.0 * 86_400.0);
}

/// 10,000 targets of 50 components each render in one pass into one
/// String; the times of the board and of the API are printed (`--nocapture`) and bounded generously so a
/// quadratic slip fails while a busy machine does not.
#[test]
fn board_renders_ten_thousand_targets_cheaply() {
    let mut yaml = String::from("defaults:\n  interval: 1h\ntargets:\n");
    for i in 0..10_000 {
        yaml.push_str(&format!(
            "  - name: t{i:05}\n    statuspage: {{ url: \"http://127.0.0.1:9/{i}.json\" }}\n"
        ));
    }
    let states = states(&yaml);
    for (i, state) in states.iter().enumerate() {
        let result = if i % 10 == 0 {
            Err(ProbeError::new(Reason::Timeout, "timed out after 10s"))
        } else {
            success(ProbeOutput::Status(snapshot(50, i % 4).into()))
        };
        publish(state, result, Duration::from_millis(50));
    }
    let set = TargetSet { targets: states };
    let started = std::time::Instant::now();
    let html = upstream_exporter::board::landing_page(&set, "/metrics");
    let took = started.elapsed();
    println!(
        "board: 10,000 targets rendered in {took:?}, {} bytes ({} bytes per target)",
        html.len(),
        html.len() / 10_000
    );
    assert_eq!(html.matches("<article ").count(), 10_000);
    assert!(html.len() < 10_000 * 2_500, "{} bytes", html.len());
    assert!(took < Duration::from_secs(5), "rendering took {took:?}");
    let started = std::time::Instant::now();
    let api = upstream_exporter::api::targets_body(&set);
    let took = started.elapsed();
    println!(
        "api: 10,000 targets serialized in {took:?}, {} bytes",
        api.len()
    );
    let api: serde_json::Value = serde_json::from_slice(&api).unwrap();
    assert_eq!(api["targets"].as_array().unwrap().len(), 10_000);
    assert!(took < Duration::from_secs(5), "the API took {took:?}");
}
