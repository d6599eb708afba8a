//! `probe::salesforce` against the real Salesforce Trust instances preview
//! in `tests/fixtures/salesforce/` (a byte-for-byte copy of
//! `fixtures/real/salesforce/instances-status-preview.json`: 1,528
//! instances, 65 of them `isActive: false`, one MINOR_INCIDENT_CORE), plus
//! small hand-built bodies for the status table and maintenances.

mod probers_common;

use probers_common::{
    component, context, count_with, filter, fixture, fixture_json, status_of, unknown, url,
};
use proptest::prelude::*;
use upstream_exporter::probe::salesforce::{SalesforceConfig, parse, probe};
use upstream_exporter::probe::{Impact, Reason, Severity};
use upstream_exporter::runner::HostLimits;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PREVIEW: &str = "salesforce/instances-status-preview.json";

fn cfg(max_components: usize) -> SalesforceConfig {
    SalesforceConfig {
        base_url: url("https://api.status.salesforce.com"),
        components: filter(&[], &[]),
        max_components,
    }
}

#[test]
fn real_preview_counts() {
    let body = fixture_json(PREVIEW);
    let all = body.as_array().expect("list");
    assert_eq!(all.len(), 1528);
    let active = all.iter().filter(|i| i["isActive"] != false).count();
    assert_eq!(active, 1463);

    // Default cap: 1,000 series, 463 capped; the page still sees NA137.
    let snap = parse(&fixture(PREVIEW), &cfg(1000)).expect("parses");
    assert_eq!(snap.components.len(), 1000);
    assert_eq!(snap.components_capped, 463);
    assert_eq!(snap.page, Severity::Degraded);

    let snap = parse(&fixture(PREVIEW), &cfg(5000)).expect("parses");
    assert_eq!(snap.components.len(), 1463);
    assert_eq!(snap.components_capped, 0);
    assert_eq!(count_with(&snap, Severity::Operational), 1462);
    assert_eq!(count_with(&snap, Severity::Degraded), 1);
    let na137 = component(&snap, "NA137");
    assert_eq!((na137.name(), na137.group()), ("NA137", "production"));
    assert_eq!(na137.status, Severity::Degraded);
    assert_eq!(
        snap.components
            .iter()
            .filter(|c| c.group() == "sandbox")
            .count(),
        132
    );
    assert_eq!(
        snap.components
            .iter()
            .filter(|c| c.group() == "production")
            .count(),
        1331
    );
    assert!(
        snap.components.iter().all(|c| c.id() != "POD5"),
        "inactive instances are skipped"
    );
    assert_eq!(snap.page, Severity::Degraded);

    assert_eq!(snap.incidents.len(), 1);
    let inc = &snap.incidents[0];
    assert_eq!(inc.id, "5968");
    assert_eq!(inc.impact, Impact::Minor);
    assert_eq!(inc.status, "open");
    assert_eq!(
        inc.name,
        "performanceDegradationAsynchronousProcessingSubset"
    );
    assert_eq!(inc.started, Some(1_596_038_880.0));
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
    assert!(snap.unknown_values.is_empty());
}

#[test]
fn filter_by_instance_key() {
    let mut c = cfg(1000);
    c.components = filter(&["NA137", "CS1"], &[]);
    let snap = parse(&fixture(PREVIEW), &c).expect("parses");
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    // Exact keys; as name regexes "CS1" also matches CS10…, so compute it.
    let body = fixture_json(PREVIEW);
    let mut expected: Vec<&str> = body
        .as_array()
        .expect("list")
        .iter()
        .filter(|i| i["isActive"] != false)
        .filter_map(|i| i["key"].as_str())
        .filter(|k| *k == "NA137" || k.contains("CS1"))
        .collect();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(snap.page, Severity::Degraded);
    assert_eq!(snap.incidents.len(), 1);

    // Incidents of instances the filter drops are not exported.
    let mut c = cfg(1000);
    c.components = filter(&["^AP"], &[]);
    let snap = parse(&fixture(PREVIEW), &c).expect("parses");
    assert!(!snap.components.is_empty());
    assert!(snap.components.iter().all(|c| c.id().starts_with("AP")));
    assert_eq!(snap.page, Severity::Operational);
    assert!(snap.incidents.is_empty());
}

#[test]
fn status_table_and_maintenances() {
    let body = br#"[
      {"key":"A","status":"OK","environment":"production"},
      {"key":"B","status":"INFORMATIONAL_NONCORE"},
      {"key":"C","status":"MAINTENANCE_CORE","Maintenances":[{"id":7,"plannedStartTime":"2020-01-01T00:00:00Z"}]},
      {"key":"D","status":"MINOR_INCIDENT_NONCORE"},
      {"key":"E","status":"MAJOR_INCIDENT_CORE","Incidents":[{"id":1,"createdAt":"2020-01-01T00:00:00Z"}]},
      {"key":"F","status":"ON_FIRE"},
      {"key":"G","status":"OK","isActive":"false"},
      {"key":"H","status":"OK","Maintenances":[{"id":8,"plannedStartTime":"2030-01-02T00:00:00Z"},
                                             {"id":9,"plannedStartTime":"2030-01-01T00:00:00Z"}],
       "Incidents":[{"id":1},{"id":2,"IncidentImpacts":[{"severity":"major"},{"severity":"weird"}]}]},
      {"key":"A","status":"MAJOR_INCIDENT_CORE"},
      {"status":"OK"}, "junk"]"#;
    let snap = parse(body, &cfg(1000)).expect("parses");
    let codes: Vec<(&str, i64)> = snap
        .components
        .iter()
        .map(|c| (c.id(), c.status.code()))
        .collect();
    assert_eq!(
        codes,
        [
            ("A", 1),
            ("B", 1),
            ("C", 2),
            ("D", 3),
            ("E", 5),
            ("F", 0),
            ("H", 1)
        ]
    );
    assert_eq!(component(&snap, "A").group(), "production");
    assert_eq!(component(&snap, "B").group(), "");
    assert_eq!(unknown(&snap, "component_status"), 1);
    assert_eq!(snap.page, Severity::MajorOutage);
    let incidents: Vec<(&str, Impact)> = snap
        .incidents
        .iter()
        .map(|i| (i.id.as_str(), i.impact))
        .collect();
    assert_eq!(incidents, [("1", Impact::Critical), ("2", Impact::Major)]);
    assert_eq!(snap.incidents[0].started, Some(1_577_836_800.0));
    assert_eq!(unknown(&snap, "incident_impact"), 1);
    assert_eq!(snap.maintenances_active, 1);
    assert_eq!(snap.next_maintenance_start, Some(1_893_456_000.0));
}

#[test]
fn an_instance_in_maintenance_is_in_its_first_one_and_ended_incidents_are_over() {
    // NA136 is under maintenance and also lists next month's; NA137's
    // incident has ended (every impact has an end), NA138's has not.
    let body = br#"[
      {"key":"NA136","status":"MAINTENANCE_CORE","Maintenances":[
        {"id":102,"plannedStartTime":"2030-08-20T03:00:00Z"},
        {"id":101,"plannedStartTime":"2020-07-29T18:00:00Z"}]},
      {"key":"NA137","status":"OK","Incidents":[{"id":5,"IncidentImpacts":[
        {"severity":"minor","startTime":"2020-07-29T16:00:00Z","endTime":"2020-07-29T20:00:00Z"}]}]},
      {"key":"NA138","status":"MINOR_INCIDENT_CORE","Incidents":[{"id":6,"IncidentImpacts":[
        {"severity":"minor","startTime":"2020-07-29T16:00:00Z","endTime":"2020-07-29T20:00:00Z"},
        {"severity":"major","startTime":"2020-07-29T17:00:00Z","endTime":null}]}]}]"#;
    let snap = parse(body, &cfg(1000)).expect("parses");
    assert_eq!(snap.maintenances_active, 1);
    assert_eq!(snap.next_maintenance_start, Some(1_913_425_200.0));
    let ids: Vec<&str> = snap.incidents.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["6"]);
    assert_eq!(snap.incidents[0].impact, Impact::Major);
}

#[test]
fn wrong_shapes_fail_as_decode_or_schema() {
    let reason = |body: &[u8]| parse(body, &cfg(1000)).map(|_| ()).map_err(|e| e.reason);
    assert_eq!(reason(b"<html>Trust</html>"), Err(Reason::Decode));
    assert_eq!(reason(b"[{"), Err(Reason::Decode));
    assert_eq!(reason(b"{}"), Err(Reason::Schema));
    assert_eq!(reason(br#"{"instances":[]}"#), Err(Reason::Schema));
    assert!(reason(b"[]").is_ok());
}

#[tokio::test]
async fn served_by_a_local_server() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/instances/status/preview"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture(PREVIEW), "application/json"))
        .mount(&server)
        .await;
    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg(1000);
    c.base_url = url(&server.uri());
    c.components = filter(&["NA137"], &[]);
    let snap = status_of(probe(&ctx, &c).await.expect("probe succeeds"));
    assert_eq!(snap.component_count(), 1);
    assert_eq!(snap.page, Severity::Degraded);
    assert_eq!(
        cfg(1).url().as_str(),
        "https://api.status.salesforce.com/v1/instances/status/preview"
    );
}

proptest! {
    // The fixture is 1.5 MB: fewer cases keep the debug-build run short.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, &cfg(10));
    }

    #[test]
    fn never_panics_on_mutated_fixture(cut in 0usize..2_000_000, byte in any::<u8>()) {
        let mut body = fixture(PREVIEW);
        let at = cut % body.len();
        body[at] = byte;
        let _ = parse(&body, &cfg(10));
        body.truncate(at);
        let _ = parse(&body, &cfg(10));
    }
}
