//! `probe::slack` against the real Slack Status API body in
//! `tests/fixtures/slack/` (a byte-for-byte copy of
//! `fixtures/real/slack/current-two-active-incidents.json`, PHP-style `\/`
//! escapes kept), plus HAND-BUILT bodies: no real `status: ok` recording
//! exists, so the all-ok body below is written from the documented schema
//! (api.slack.com/docs/slack-status sample), and the mixed-type bodies are
//! made up to exercise the type → severity table.

mod probers_common;

use probers_common::{component, context, count_with, filter, fixture, status_of, unknown, url};
use proptest::prelude::*;
use upstream_exporter::probe::slack::{SERVICES, SlackConfig, parse, probe};
use upstream_exporter::probe::{Impact, Reason, Severity};
use upstream_exporter::runner::HostLimits;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TWO_ACTIVE: &str = "slack/current-two-active-incidents.json";

/// Hand-built from the documented "ok" sample.
const ALL_OK: &str = r#"{"status":"ok","active_incidents":[],
    "date_created":"2018-09-07T18:34:15-07:00","date_updated":"2018-09-07T18:34:15-07:00"}"#;

fn cfg() -> SlackConfig {
    SlackConfig {
        base_url: url("https://slack-status.com"),
        components: filter(&[], &[]),
        max_components: 1000,
    }
}

#[test]
fn real_two_active_incidents() {
    let snap = parse(&fixture(TWO_ACTIVE), &cfg()).expect("parses");
    assert_eq!(snap.components.len(), 11);
    assert_eq!(snap.components.len(), SERVICES.len());
    assert_eq!(
        component(&snap, "notifications").status,
        Severity::PartialOutage
    );
    assert_eq!(component(&snap, "notifications").name(), "Notifications");
    let apis = component(&snap, "apps-integrations-apis");
    assert_eq!(apis.name(), "Apps/Integrations/APIs");
    assert_eq!(apis.status, Severity::PartialOutage);
    assert_eq!(count_with(&snap, Severity::Operational), 9);
    assert_eq!(count_with(&snap, Severity::PartialOutage), 2);
    assert_eq!(snap.page, Severity::PartialOutage);

    let incidents: Vec<(&str, Impact, &str, Option<f64>)> = snap
        .incidents
        .iter()
        .map(|i| (i.id.as_str(), i.impact, i.status.as_str(), i.started))
        .collect();
    assert_eq!(
        incidents,
        [
            ("878", Impact::Major, "active", Some(1_596_147_154.0)),
            ("879", Impact::Major, "active", Some(1_595_612_708.0)),
        ]
    );
    assert_eq!(
        snap.incidents[1].name,
        "We're looking into an issue with certain API calls"
    );
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
    assert!(snap.unknown_values.is_empty());
}

#[test]
fn hand_built_all_ok() {
    let snap = parse(ALL_OK.as_bytes(), &cfg()).expect("parses");
    assert_eq!(snap.page, Severity::Operational);
    assert_eq!(snap.components.len(), 11);
    assert_eq!(count_with(&snap, Severity::Operational), 11);
    assert!(snap.incidents.is_empty());
    assert_eq!(snap.maintenances_active, 0);
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    assert_eq!(
        ids,
        [
            "login-sso",
            "messaging",
            "notifications",
            "search",
            "workspace-org-administration",
            "canvases",
            "connectivity",
            "files",
            "huddles",
            "apps-integrations-apis",
            "workflows",
        ]
    );
    // `ok` is operational whatever the filter keeps.
    let mut c = cfg();
    c.components = filter(&["^Nothing$"], &[]);
    let snap = parse(ALL_OK.as_bytes(), &c).expect("parses");
    assert!(snap.components.is_empty());
    assert_eq!(snap.page, Severity::Operational);
}

#[test]
fn worst_item_per_service_and_maintenance_is_not_an_incident() {
    // Hand-built: every item type, an extra service, a resolved item.
    let body = br#"{"status":"active","active_incidents":[
        {"id":1,"type":"notice","status":"active","title":"n","services":["Messaging"]},
        {"id":2,"type":"outage","status":"active","title":"o","services":["Messaging","Huddles"]},
        {"id":3,"type":"maintenance","status":"active","title":"m","services":["Files"]},
        {"id":4,"type":"maintenance","status":"scheduled","title":"later","services":["Search"]},
        {"id":5,"type":"incident","status":"resolved","title":"done","services":["Search"]},
        {"id":6,"type":"kaboom","status":"active","title":"?","services":["Calls"]},
        {"id":7,"type":"notice","title":"no status","services":["Canvases", 7, null]},
        "junk"]}"#;
    let snap = parse(body, &cfg()).expect("parses");
    assert_eq!(snap.components.len(), 12, "11 known services + Calls");
    assert_eq!(component(&snap, "messaging").status, Severity::MajorOutage);
    assert_eq!(component(&snap, "huddles").status, Severity::MajorOutage);
    assert_eq!(component(&snap, "files").status, Severity::Maintenance);
    assert_eq!(component(&snap, "search").status, Severity::Operational);
    assert_eq!(component(&snap, "canvases").status, Severity::Degraded);
    assert_eq!(component(&snap, "calls").status, Severity::Unknown);
    assert_eq!(component(&snap, "calls").name(), "Calls");
    assert_eq!(snap.page, Severity::MajorOutage);
    assert_eq!(unknown(&snap, "incident_type"), 1);
    assert_eq!(snap.maintenances_active, 1);
    let incidents: Vec<(&str, Impact)> = snap
        .incidents
        .iter()
        .map(|i| (i.id.as_str(), i.impact))
        .collect();
    assert_eq!(
        incidents,
        [
            ("1", Impact::Minor),
            ("2", Impact::Critical),
            ("6", Impact::None),
            ("7", Impact::Minor)
        ]
    );
}

#[test]
fn filter_and_cap() {
    let mut c = cfg();
    c.components = filter(&["notifications", "^Search$"], &[]);
    let snap = parse(&fixture(TWO_ACTIVE), &c).expect("parses");
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    assert_eq!(ids, ["notifications", "search"]);
    assert_eq!(snap.page, Severity::PartialOutage);

    let mut c = cfg();
    c.components = filter(&[], &["notifications", "apps-integrations-apis"]);
    let snap = parse(&fixture(TWO_ACTIVE), &c).expect("parses");
    assert_eq!(
        snap.page,
        Severity::Operational,
        "page = worst exported component"
    );

    let mut c = cfg();
    c.max_components = 4;
    let snap = parse(&fixture(TWO_ACTIVE), &c).expect("parses");
    assert_eq!(snap.components.len(), 4);
    assert_eq!(snap.components_capped, 7);
    assert_eq!(snap.page, Severity::PartialOutage);
}

#[test]
fn wrong_shapes_fail_as_decode_or_schema() {
    let reason = |body: &[u8]| parse(body, &cfg()).map(|_| ()).map_err(|e| e.reason);
    assert_eq!(
        reason(b"<html>Slack System Status</html>"),
        Err(Reason::Decode)
    );
    assert_eq!(reason(b"{\"status\""), Err(Reason::Decode));
    assert_eq!(reason(b"[]"), Err(Reason::Schema));
    assert_eq!(reason(b"{}"), Err(Reason::Schema));
    assert_eq!(
        reason(br#"{"status":"ok","active_incidents":{}}"#),
        Err(Reason::Schema)
    );
    assert!(reason(br#"{"status":"ok","active_incidents":null}"#).is_ok());
    // An unknown word with the list is a status body whose page is unknown;
    // without the list it is an error body, never a healthy Slack.
    let snap = parse(br#"{"status":"weird","active_incidents":[]}"#, &cfg()).expect("parses");
    assert_eq!(unknown(&snap, "page_status"), 1);
    assert_eq!(snap.page, Severity::Unknown);
    assert_eq!(snap.components.len(), SERVICES.len());
    assert_eq!(
        reason(br#"{"status":"error","message":"Service temporarily unavailable"}"#),
        Err(Reason::Schema)
    );
    assert_eq!(reason(br#"{"status":"weird"}"#), Err(Reason::Schema));
    let snap = parse(br#"{"status":"ok"}"#, &cfg()).expect("a missing list is tolerated");
    assert_eq!(snap.page, Severity::Operational);
}

#[tokio::test]
async fn served_by_a_local_server() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2.0.0/current"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture(TWO_ACTIVE), "application/json"),
        )
        .mount(&server)
        .await;
    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg();
    c.base_url = url(&server.uri());
    let snap = status_of(probe(&ctx, &c).await.expect("probe succeeds"));
    assert_eq!(snap, parse(&fixture(TWO_ACTIVE), &cfg()).expect("parses"));
    assert_eq!(
        cfg().url().as_str(),
        "https://slack-status.com/api/v2.0.0/current"
    );
    assert_eq!(
        upstream_exporter::probe::slack::DEFAULT_BASE_URL,
        Some("https://slack-status.com")
    );
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, &cfg());
    }

    #[test]
    fn never_panics_on_mutated_fixture(cut in 0usize..4000, byte in any::<u8>()) {
        let mut body = fixture(TWO_ACTIVE);
        let at = cut % body.len();
        body[at] = byte;
        let _ = parse(&body, &cfg());
        body.truncate(at);
        let _ = parse(&body, &cfg());
    }
}
