//! `probe::heroku` against the real Heroku status API v4 bodies in
//! `tests/fixtures/heroku/` (byte-for-byte copies of
//! `fixtures/real/heroku/`), plus small hand-built bodies for the colour
//! table, maintenance states and error shapes.

mod probers_common;

use probers_common::{component, context, filter, fixture, status_of, unknown, url};
use proptest::prelude::*;
use upstream_exporter::probe::heroku::{HerokuConfig, parse, probe};
use upstream_exporter::probe::{Impact, Reason, Severity};
use upstream_exporter::runner::HostLimits;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OPEN_INCIDENT: &str = "heroku/current-status-open-incident.json";
const MAINTENANCE: &str = "heroku/current-status-maintenance.json";

fn cfg() -> HerokuConfig {
    HerokuConfig {
        base_url: url("https://status.heroku.com"),
        components: filter(&[], &[]),
        max_components: 1000,
    }
}

fn codes(snap: &upstream_exporter::probe::StatusSnapshot) -> Vec<(&str, Severity)> {
    snap.components.iter().map(|c| (c.id(), c.status)).collect()
}

#[test]
fn real_open_incident_all_yellow() {
    let snap = parse(&fixture(OPEN_INCIDENT), &cfg()).expect("parses");
    assert_eq!(
        codes(&snap),
        [
            ("Apps", Severity::Degraded),
            ("Data", Severity::Degraded),
            ("Tools", Severity::Degraded)
        ]
    );
    assert_eq!(component(&snap, "Data").name(), "Data");
    assert_eq!(component(&snap, "Data").group(), "");
    assert_eq!(snap.page, Severity::Degraded);
    assert_eq!(snap.incidents.len(), 1);
    let inc = &snap.incidents[0];
    assert_eq!(inc.id, "1918");
    assert_eq!(
        inc.name,
        "Connection timeouts to applications and Heroku Postgres"
    );
    assert_eq!(inc.impact, Impact::Minor);
    assert_eq!(inc.status, "open");
    assert_eq!(inc.started, Some(1_571_942_370.231));
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
    assert!(snap.unknown_values.is_empty());
}

#[test]
fn real_maintenance_data_blue_and_resolved_schedule() {
    let snap = parse(&fixture(MAINTENANCE), &cfg()).expect("parses");
    assert_eq!(
        codes(&snap),
        [
            ("Apps", Severity::Operational),
            ("Data", Severity::Maintenance),
            ("Tools", Severity::Operational)
        ]
    );
    assert_eq!(snap.page, Severity::Maintenance);
    assert!(snap.incidents.is_empty());
    // The only scheduled entry is resolved: not active, not upcoming.
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
}

#[test]
fn colours_states_and_maintenances() {
    let body = br#"{"status":[
        {"system":"Apps","status":"red"},{"system":"Data","status":"purple"},
        {"system":"Tools","status":"GREEN"},{"system":"Apps","status":"green"}, 5],
      "incidents":[
        {"id":1,"title":"a","resolved":false,"state":"open","status_prod":"red","status_dev":"green",
         "created_at":"2020-01-01T00:00:00Z"},
        {"id":2,"title":"b","resolved":"false","updates":[
            {"update_type":"update","status_prod":"green","created_at":"2020-01-01T01:00:00Z"},
            {"update_type":"issue","status_prod":"yellow","created_at":"2020-01-01T00:00:00Z"}]},
        {"id":5,"title":"e","resolved":false,"status_prod":"green","status_dev":"green","updates":[
            {"update_type":"issue","status_prod":"red","created_at":"2020-01-01T02:00:00Z"},
            {"update_type":"investigating","status_prod":"green","created_at":"2020-01-01T01:00:00Z"}]},
        {"id":3,"title":"c","resolved":true},
        {"id":4,"title":"d","state":"resolved"}],
      "scheduled":[
        {"id":10,"resolved":false,"upcoming":true,"scheduled_for":"2030-01-02T00:00:00Z"},
        {"id":11,"resolved":false,"upcoming":true,"scheduled_for":"2030-01-01T00:00:00Z"},
        {"id":12,"resolved":false,"upcoming":false},
        {"id":12,"resolved":false,"upcoming":false},
        {"id":13,"resolved":false,"upcoming":true,
         "updates":[{"update_type":"maintenance","created_at":"2030-01-01T00:00:00Z"}]},
        {"id":14,"resolved":false,"scheduled_for":"2029-06-01T00:00:00Z",
         "updates":[{"update_type":"scheduled","created_at":"2029-01-01T00:00:00Z"}]},
        {"id":15,"resolved":false,"upcoming":null,
         "updates":[{"update_type":"scheduled","created_at":"2029-01-01T00:00:00Z"},
                    {"update_type":"maintenance","created_at":"2029-07-01T00:00:00Z"}]}]}"#;
    let snap = parse(body, &cfg()).expect("parses");
    assert_eq!(
        codes(&snap),
        [
            ("Apps", Severity::MajorOutage),
            ("Data", Severity::Unknown),
            ("Tools", Severity::Operational)
        ]
    );
    assert_eq!(unknown(&snap, "component_status"), 1);
    assert_eq!(snap.page, Severity::MajorOutage);
    let incidents: Vec<(&str, Impact, &str)> = snap
        .incidents
        .iter()
        .map(|i| (i.id.as_str(), i.impact, i.status.as_str()))
        .collect();
    assert_eq!(
        incidents,
        [
            ("1", Impact::Critical, "open"),
            ("2", Impact::None, "update"),
            // The latest update's red, not the entry's stale green.
            ("5", Impact::Critical, "issue")
        ]
    );
    // 12 (not upcoming), 13 (upcoming, but its latest update says the work
    // began) and 15 (no flag; its latest update says so too); 14 has no
    // flag and is only announced: its start is the next one.
    assert_eq!(snap.maintenances_active, 3);
    assert_eq!(snap.next_maintenance_start, Some(1_874_966_400.0));
}

#[test]
fn filter_and_cap() {
    let mut c = cfg();
    c.components = filter(&[], &["^Data$"]);
    let snap = parse(&fixture(MAINTENANCE), &c).expect("parses");
    assert_eq!(snap.components.len(), 2);
    assert_eq!(snap.page, Severity::Operational);
    let mut c = cfg();
    c.max_components = 1;
    let snap = parse(&fixture(MAINTENANCE), &c).expect("parses");
    assert_eq!(snap.components.len(), 1);
    assert_eq!(snap.components_capped, 2);
    assert_eq!(snap.page, Severity::Maintenance);
}

#[test]
fn wrong_shapes_fail_as_decode_or_schema() {
    let reason = |body: &[u8]| parse(body, &cfg()).map(|_| ()).map_err(|e| e.reason);
    assert_eq!(reason(b"<html>Heroku Status</html>"), Err(Reason::Decode));
    assert_eq!(reason(b"{"), Err(Reason::Decode));
    assert_eq!(reason(b"[]"), Err(Reason::Schema));
    assert_eq!(reason(b"{}"), Err(Reason::Schema));
    assert_eq!(reason(br#"{"status":"green"}"#), Err(Reason::Schema));
    assert_eq!(
        reason(br#"{"status":[],"incidents":{}}"#),
        Err(Reason::Schema)
    );
    assert!(reason(br#"{"status":[],"incidents":null}"#).is_ok());
}

#[tokio::test]
async fn served_by_a_local_server() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/current-status"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture(OPEN_INCIDENT), "application/json"),
        )
        .mount(&server)
        .await;
    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg();
    c.base_url = url(&server.uri());
    let snap = status_of(probe(&ctx, &c).await.expect("probe succeeds"));
    assert_eq!(
        snap,
        parse(&fixture(OPEN_INCIDENT), &cfg()).expect("parses")
    );
    assert_eq!(
        cfg().url().as_str(),
        "https://status.heroku.com/api/v4/current-status"
    );
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, &cfg());
    }

    #[test]
    fn never_panics_on_mutated_fixture(cut in 0usize..8000, byte in any::<u8>()) {
        let mut body = fixture(MAINTENANCE);
        let at = cut % body.len();
        body[at] = byte;
        let _ = parse(&body, &cfg());
        body.truncate(at);
        let _ = parse(&body, &cfg());
    }
}
