//! `probe::statusio` against the real status.io bodies in
//! `tests/fixtures/statusio/` (byte-for-byte copies of
//! `fixtures/real/statusio/`), hand-built edge cases, a probe served by a
//! local wiremock server through a real `ProbeContext`, and a property test
//! that no input panics the parser.

mod probers_common;

use probers_common::{component, context, count_with, filter, fixture, fixture_json, unknown, url};
use proptest::prelude::*;
use upstream_exporter::probe::statusio::{StatusioConfig, parse, probe};
use upstream_exporter::probe::{Impact, Reason, Severity, StatusSnapshot};
use upstream_exporter::runner::HostLimits;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DOCKER: &str = "statusio/docker-status-partial-disruption-400.json";
const GITLAB_MAINTENANCE: &str = "statusio/gitlab-status-planned-maintenance-200.json";
const GITLAB_SECURITY: &str = "statusio/gitlab-status-security-issue-600.json";

fn cfg() -> StatusioConfig {
    StatusioConfig {
        base_url: url("https://api.status.io"),
        page_id: "533c6539221ae15e3f000031".into(),
        components: filter(&[], &[]),
        max_components: 1000,
    }
}

fn parse_fixture(name: &str) -> StatusSnapshot {
    parse(&fixture(name), &cfg()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn code(c: i64) -> Severity {
    match c {
        100 => Severity::Operational,
        200 => Severity::Maintenance,
        300 => Severity::Degraded,
        400 => Severity::PartialOutage,
        500 | 600 => Severity::MajorOutage,
        _ => Severity::Unknown,
    }
}

/// Every container row of the body, computed without the parser:
/// (`<component id>/<container id>`, component name, container name, severity).
fn expected_rows(name: &str) -> Vec<(String, String, String, Severity)> {
    let body = fixture_json(name);
    let mut rows = Vec::new();
    for c in body["result"]["status"].as_array().into_iter().flatten() {
        for k in c["containers"].as_array().into_iter().flatten() {
            rows.push((
                format!(
                    "{}/{}",
                    c["id"].as_str().unwrap(),
                    k["id"].as_str().unwrap()
                ),
                c["name"].as_str().unwrap().to_owned(),
                k["name"].as_str().unwrap().to_owned(),
                code(k["status_code"].as_i64().unwrap()),
            ));
        }
    }
    rows
}

fn assert_matches_body(name: &str, snap: &StatusSnapshot) {
    let rows = expected_rows(name);
    assert_eq!(snap.components.len(), rows.len(), "{name}");
    for (id, comp, container, sev) in rows {
        let c = component(snap, &id);
        assert_eq!(
            (c.name(), c.group(), c.status),
            (comp.as_str(), container.as_str(), sev),
            "{name} {id}"
        );
    }
}

#[test]
fn docker_partial_disruption_400() {
    let snap = parse_fixture(DOCKER);
    assert_matches_body(DOCKER, &snap);
    assert_eq!(snap.page, Severity::PartialOutage);
    assert_eq!(snap.components.len(), 8);
    assert_eq!(count_with(&snap, Severity::Operational), 7);
    let builds = component(&snap, "5342bc9420974b775d000008/582c71876fb4f24615000489");
    assert_eq!(builds.name(), "Docker Hub Automated Builds");
    assert_eq!(builds.group(), "AWS");
    assert_eq!(builds.status, Severity::PartialOutage);
    assert_eq!(snap.incidents.len(), 1);
    let inc = &snap.incidents[0];
    assert_eq!(inc.id, "5f108cc06e9c9104c0553a46");
    assert_eq!(inc.name, "Docker Hub automated builds issue");
    assert_eq!(inc.impact, Impact::Major);
    assert_eq!(inc.status, "investigating");
    assert_eq!(inc.started, Some(1_594_920_128.325));
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
    assert!(snap.unknown_values.is_empty());
    assert_eq!(snap.components_capped, 0);
}

#[test]
fn gitlab_planned_maintenance_200_overall_wins() {
    let snap = parse_fixture(GITLAB_MAINTENANCE);
    assert_matches_body(GITLAB_MAINTENANCE, &snap);
    // The overall code (200) is the page status; 14 of the 15 containers
    // are operational and dashboards.gitlab.com is itself under maintenance.
    assert_eq!(snap.page, Severity::Maintenance);
    assert_eq!(snap.components.len(), 15);
    assert_eq!(count_with(&snap, Severity::Operational), 14);
    assert_eq!(
        component(&snap, "5f4e8819413cdd04b6882c94/5b36e11140e76c04b7220a31").status,
        Severity::Maintenance
    );
    assert_eq!(snap.maintenances_active, 1);
    assert_eq!(snap.next_maintenance_start, None);
    // The open incident is not a maintenance, and the maintenance is not an incident.
    assert_eq!(snap.incidents.len(), 1);
    let inc = &snap.incidents[0];
    assert_eq!(inc.id, "5f52b8074ef75804bc7d2c3e");
    assert_eq!(inc.impact, Impact::Major);
    assert_eq!(inc.status, "identified");
    assert_eq!(inc.started, Some(1_599_256_560.0));
}

#[test]
fn gitlab_security_issue_600_is_major_outage() {
    let snap = parse_fixture(GITLAB_SECURITY);
    assert_matches_body(GITLAB_SECURITY, &snap);
    assert_eq!(snap.page, Severity::MajorOutage);
    assert_eq!(snap.components.len(), 13);
    assert_eq!(count_with(&snap, Severity::MajorOutage), 5);
    assert_eq!(count_with(&snap, Severity::Operational), 8);
    for id in [
        "5b36dc6502d06804c0834a07", // Website
        "5b36e05f02d06804c0834a09", // API
        "5d2f74932676bc45e4927ead", // Git (ssh and https)
        "5b36e07afc1f0804be9d754d", // Registry
        "5b36e06c633e9004b3d624ad", // CI/CD
    ] {
        let c = component(&snap, &format!("{id}/5b36e11140e76c04b7220a31"));
        assert_eq!(c.status, Severity::MajorOutage, "{}", c.name());
    }
    assert_eq!(snap.incidents.len(), 1);
    assert_eq!(snap.incidents[0].impact, Impact::Critical);
    assert_eq!(snap.incidents[0].status, "identified");
    assert_eq!(snap.incidents[0].started, Some(1_581_090_685.249));
    assert_eq!(snap.maintenances_active, 0);
}

#[test]
fn one_series_per_component_and_container() {
    let body = br#"{"result":{
        "status_overall":{"status_code":300},
        "status":[
          {"id":"c1","name":"API","status_code":300,"containers":[
            {"id":"eu","name":"Europe","status_code":100},
            {"id":"us","name":"US","status_code":300}]},
          {"id":"c2","name":"API","status_code":100,"containers":[]},
          {"id":"c3","name":"Odd","status_code":"700","containers":null}],
        "incidents":null,
        "maintenance":{"active":[],"upcoming":[
          {"_id":"m1","datetime_planned_start":"2030-01-02T00:00:00Z"},
          {"_id":"m2","datetime_planned_start":"2030-01-01T00:00:00.000Z"}]}}}"#;
    let snap = parse(body, &cfg()).expect("parses");
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    assert_eq!(ids, ["c1/eu", "c1/us", "c2", "c3"]);
    assert_eq!(component(&snap, "c1/us").status, Severity::Degraded);
    assert_eq!(component(&snap, "c1/us").group(), "US");
    assert_eq!(component(&snap, "c2").status, Severity::Operational);
    assert_eq!(component(&snap, "c3").status, Severity::Unknown);
    assert_eq!(unknown(&snap, "component_status"), 1);
    assert_eq!(snap.page, Severity::Degraded);
    assert_eq!(snap.next_maintenance_start, Some(1_893_456_000.0));
    assert!(snap.incidents.is_empty());
}

#[test]
fn filter_and_cap() {
    let mut c = cfg();
    c.components = filter(&["^Docker Hub"], &["Registry"]);
    let snap = parse(&fixture(DOCKER), &c).expect("parses");
    let names: Vec<&str> = snap.components.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["Docker Hub Web", "Docker Hub Automated Builds"]);

    let mut c = cfg();
    c.components = filter(&["5342bc9420974b775d000008/582c71876fb4f24615000489"], &[]);
    let snap = parse(&fixture(DOCKER), &c).expect("parses");
    assert_eq!(snap.components.len(), 1);

    let mut c = cfg();
    c.max_components = 3;
    let snap = parse(&fixture(DOCKER), &c).expect("parses");
    assert_eq!(snap.components.len(), 3);
    assert_eq!(snap.components_capped, 5);
    assert_eq!(snap.page, Severity::PartialOutage);
}

#[test]
fn page_falls_back_to_worst_component_without_overall() {
    let body = br#"{"result":{"status":[{"id":"a","name":"A","containers":[
        {"id":"x","name":"X","status_code":500}]}]}}"#;
    let snap = parse(body, &cfg()).expect("parses");
    assert_eq!(snap.page, Severity::MajorOutage);
    let body = br#"{"result":{"status_overall":{"status_code":999},"status":[]}}"#;
    let snap = parse(body, &cfg()).expect("parses");
    assert_eq!(snap.page, Severity::Unknown);
    assert_eq!(unknown(&snap, "page_status"), 1);
}

#[test]
fn wrong_shapes_fail_as_decode_or_schema() {
    let reason = |body: &[u8]| parse(body, &cfg()).map(|_| ()).map_err(|e| e.reason);
    assert_eq!(reason(b"<!DOCTYPE html><html></html>"), Err(Reason::Decode));
    assert_eq!(reason(b""), Err(Reason::Decode));
    assert_eq!(reason(b"{\"result\":"), Err(Reason::Decode));
    assert_eq!(reason(b"[]"), Err(Reason::Schema));
    assert_eq!(reason(b"{}"), Err(Reason::Schema));
    assert_eq!(reason(br#"{"result":{}}"#), Err(Reason::Schema));
    assert_eq!(reason(br#"{"result":[]}"#), Err(Reason::Schema));
    assert_eq!(reason(br#"{"result":{"status":{}}}"#), Err(Reason::Schema));
    assert_eq!(
        reason(br#"{"page":{},"components":[]}"#),
        Err(Reason::Schema),
        "a Statuspage body is not a status.io body"
    );
    // UTF-16 with a BOM is tolerated.
    let text = String::from_utf8(fixture(DOCKER)).expect("utf-8");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(parse(&utf16, &cfg()), parse(&fixture(DOCKER), &cfg()));
}

#[test]
fn url_is_built_from_base_and_page_id() {
    assert_eq!(
        cfg().url().as_str(),
        "https://api.status.io/1.0/status/533c6539221ae15e3f000031"
    );
    let mut c = cfg();
    c.base_url = url("http://127.0.0.1:9000/mirror/");
    assert_eq!(
        c.url().as_str(),
        "http://127.0.0.1:9000/mirror/1.0/status/533c6539221ae15e3f000031"
    );
    assert_eq!(
        upstream_exporter::probe::statusio::DEFAULT_BASE_URL,
        Some("https://api.status.io")
    );
}

#[tokio::test]
async fn served_by_a_local_server_through_a_real_context() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/1.0/status/533c6539221ae15e3f000031"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture(DOCKER), "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/status/moved"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>moved</html>", "text/html"))
        .mount(&server)
        .await;

    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg();
    c.base_url = url(&server.uri());

    let ok = probe(&ctx, &c).await.expect("probe succeeds");
    assert_eq!(ok.http_status, 200);
    let snap = probers_common::status_of(ok);
    assert_eq!(snap, parse_fixture(DOCKER));
    assert_eq!(snap.page, Severity::PartialOutage);

    c.page_id = "moved".into();
    let err = probe(&ctx, &c).await.expect_err("HTML fails");
    assert_eq!(err.reason, Reason::Decode);
    assert_eq!(err.http_status, Some(200));

    c.page_id = "nope".into();
    let err = probe(&ctx, &c).await.expect_err("404 fails");
    assert_eq!(err.reason, Reason::HttpStatus);
    assert_eq!(err.http_status, Some(404));
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, &cfg());
    }

    #[test]
    fn never_panics_on_mutated_fixture(cut in 0usize..4000, byte in any::<u8>()) {
        let mut body = fixture(DOCKER);
        let at = cut % body.len();
        body[at] = byte;
        let _ = parse(&body, &cfg());
        body.truncate(at);
        let _ = parse(&body, &cfg());
    }
}

/// A message `state` outside the table gives the status `unknown`, counted;
/// a known one its word.
#[test]
fn unknown_incident_state_is_counted() {
    let body = br#"{"result":{"status":[],"incidents":[
        {"_id":"a","name":"New state","messages":[{"state":999,"status":400}]},
        {"_id":"b","name":"Known","messages":[{"state":200,"status":300}]},
        {"_id":"c","name":"Silent","messages":[]}]}}"#;
    let snap = parse(body, &cfg()).expect("parses");
    let statuses: Vec<(&str, &str)> = (snap.incidents.iter())
        .map(|i| (i.id.as_str(), i.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [("a", "unknown"), ("b", "identified"), ("c", "unknown")]
    );
    assert_eq!(unknown(&snap, "incident_state"), 1);
}
