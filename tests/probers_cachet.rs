//! `probe::cachet` against the real Cachet v1 components body in
//! `tests/fixtures/cachet/` (a byte-for-byte copy of
//! `fixtures/real/cachet/yoti-v1-components-all-operational.json`), plus
//! HAND-BUILT bodies: no real multi-page, groups or incidents answer was
//! available, so the two-page split of the Yoti components, the component
//! groups and the incidents below are made by this test from the real body
//! and the documented Cachet 2.x v1 API shape (`meta.pagination` + `data`;
//! incident status 0 scheduled, 1 investigating, 2 identified, 3 watching,
//! 4 fixed). The served test runs the pagination through a real
//! `ProbeContext` against a local wiremock server.

mod probers_common;

use probers_common::{component, context, filter, fixture, fixture_json, status_of, unknown, url};
use proptest::prelude::*;
use serde_json::{Value, json};
use upstream_exporter::probe::cachet::{CachetConfig, parse, parse_page, probe};
use upstream_exporter::probe::{Impact, Reason, Severity};
use upstream_exporter::runner::HostLimits;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const YOTI: &str = "cachet/yoti-v1-components-all-operational.json";
/// 2021-01-01T00:00:00Z: "now" for the pure parses.
const NOW: f64 = 1_609_459_200.0;

fn cfg() -> CachetConfig {
    CachetConfig {
        base_url: url("https://status.yoti.com"),
        components: filter(&[], &[]),
        max_components: 1000,
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

/// A Cachet v1 page: `data` plus `meta.pagination` (hand-built).
fn page(data: &[Value], current: u64, total_pages: u64, total: u64, next: Option<&str>) -> Value {
    json!({
        "meta": {"pagination": {
            "total": total, "count": data.len(), "per_page": 4,
            "current_page": current, "total_pages": total_pages,
            "links": {"next_page": next, "previous_page": null}
        }},
        "data": data
    })
}

/// The real Yoti components split into two pages of 4 and 3 (hand-made
/// from the real body). The `next_page` link points at another host on
/// purpose: the prober must not follow it as given.
fn yoti_pages() -> (Vec<u8>, Vec<u8>) {
    let real = fixture_json(YOTI);
    let rows = real["data"].as_array().expect("data").clone();
    assert_eq!(rows.len(), 7);
    let first = page(
        &rows[..4],
        1,
        2,
        7,
        Some("http://elsewhere.invalid/api/v1/components?page=2"),
    );
    let second = page(&rows[4..], 2, 2, 7, None);
    (bytes(&first), bytes(&second))
}

/// Hand-built `/api/v1/components/groups` page: Yoti's group ids 1 and 2.
fn groups_page() -> Vec<u8> {
    bytes(&page(
        &[
            json!({"id": 1, "name": "Global", "order": 0, "collapsed": 0}),
            json!({"id": 2, "name": "Canada", "order": 1, "collapsed": 0}),
        ],
        1,
        1,
        2,
        None,
    ))
}

/// Hand-built `/api/v1/incidents` page: one open (identified, on component
/// 9), one watching on an unknown component, one fixed, one scheduled
/// maintenance ahead, one scheduled in the past, one with a status code
/// Cachet does not have.
fn incidents_page() -> Vec<u8> {
    bytes(&page(
        &[
            json!({"id": 40, "component_id": 9, "name": "Doc Scan delays in Canada", "status": 2,
                   "visible": 1, "occurred_at": "2020-10-12 12:30:00", "created_at": "2020-10-12 12:31:00",
                   "scheduled_at": null, "deleted_at": null}),
            json!({"id": 41, "component_id": 0, "name": "Email notifications slow", "status": "3",
                   "created_at": "2020-10-13 08:00:00"}),
            json!({"id": 39, "component_id": 1, "name": "Website down", "status": 4,
                   "created_at": "2020-10-01 10:00:00"}),
            json!({"id": 42, "component_id": 0, "name": "Database upgrade", "status": 0,
                   "scheduled_at": "2021-02-01 06:00:00"}),
            json!({"id": 30, "component_id": 0, "name": "Old upgrade", "status": 0,
                   "scheduled_at": "2020-06-01 06:00:00"}),
            json!({"id": 43, "component_id": 0, "name": "Mystery", "status": 7}),
        ],
        1,
        1,
        6,
        None,
    ))
}

#[test]
fn real_yoti_components_all_operational() {
    let body = fixture(YOTI);
    let snap = parse(&[&body], &[], &[], &cfg(), NOW).expect("parses");
    assert_eq!(snap.page, Severity::Operational);
    assert_eq!(snap.components.len(), 7);
    assert!(
        snap.components
            .iter()
            .all(|c| c.status == Severity::Operational)
    );
    // Two components named "Yoti Doc Scan", in two groups: two series.
    let doc_scan: Vec<&str> = snap
        .components
        .iter()
        .filter(|c| c.name() == "Yoti Doc Scan")
        .map(|c| c.id())
        .collect();
    assert_eq!(doc_scan, ["9", "6"]);
    // No groups body: group labels are empty.
    assert!(snap.components.iter().all(|c| c.group().is_empty()));
    assert!(snap.incidents.is_empty());
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
    assert!(snap.unknown_values.is_empty());

    let p = parse_page(&body, "components").expect("page");
    assert_eq!(
        (p.current_page, p.has_next, p.data.len()),
        (Some(1), false, 7)
    );
}

#[test]
fn pages_groups_and_incidents() {
    let (first, second) = yoti_pages();
    let groups = groups_page();
    let incidents = incidents_page();
    let snap = parse(&[&first, &second], &[&groups], &[&incidents], &cfg(), NOW).expect("parses");
    assert_eq!(snap.components.len(), 7);
    let whole = parse(&[&fixture(YOTI)], &[&groups], &[&incidents], &cfg(), NOW).expect("parses");
    assert_eq!(snap, whole, "two pages = the one real page");
    assert_eq!(component(&snap, "9").group(), "Canada");
    assert_eq!(component(&snap, "6").group(), "Global");
    assert_eq!(component(&snap, "1").name(), "Yoti Website");

    let open: Vec<(&str, Impact, &str)> = snap
        .incidents
        .iter()
        .map(|i| (i.id.as_str(), i.impact, i.status.as_str()))
        .collect();
    // Component 9 is operational, so its incident has no impact word to borrow.
    assert_eq!(
        open,
        [
            ("40", Impact::None, "identified"),
            ("41", Impact::None, "watching")
        ]
    );
    assert_eq!(snap.incidents[0].started, Some(1_602_505_800.0));
    assert_eq!(snap.incidents[1].started, Some(1_602_576_000.0));
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, Some(1_612_159_200.0));
    assert_eq!(unknown(&snap, "incident_status"), 1);
}

#[test]
fn component_codes_and_incident_impacts() {
    let comps = bytes(&page(
        &[
            json!({"id": 1, "name": "A", "status": 1, "group_id": 0}),
            json!({"id": 2, "name": "B", "status": 2}),
            json!({"id": 3, "name": "C", "status": "3"}),
            json!({"id": 4, "name": "D", "status": 4}),
            json!({"id": 5, "name": "E", "status": 0}),
            json!({"id": 6, "name": "F", "status": 5}),
            json!({"id": 7, "name": "G", "status": 4, "enabled": false}),
            json!({"id": 2, "name": "B again", "status": 1}),
            json!("not an object"),
        ],
        1,
        1,
        8,
        None,
    ));
    let incidents = bytes(&page(
        &[
            json!({"id": 1, "component_id": 2, "name": "slow", "status": 1}),
            json!({"id": 2, "component_id": 3, "name": "partly down", "status": 1}),
            json!({"id": 3, "component_id": 4, "name": "down", "status": 1}),
            json!({"id": 4, "component_id": 7, "name": "disabled one", "status": 1, "deleted_at": "2020-01-01 00:00:00"}),
        ],
        1,
        1,
        4,
        None,
    ));
    let snap = parse(&[&comps], &[], &[&incidents], &cfg(), NOW).expect("parses");
    let codes: Vec<(&str, i64)> = snap
        .components
        .iter()
        .map(|c| (c.id(), c.status.code()))
        .collect();
    assert_eq!(
        codes,
        [("1", 1), ("2", 3), ("3", 4), ("4", 5), ("5", 0), ("6", 0)]
    );
    assert_eq!(component(&snap, "2").name(), "B", "first row of an id wins");
    assert_eq!(unknown(&snap, "component_status"), 2);
    assert_eq!(snap.page, Severity::MajorOutage);
    let impacts: Vec<Impact> = snap.incidents.iter().map(|i| i.impact).collect();
    assert_eq!(impacts, [Impact::Minor, Impact::Major, Impact::Critical]);

    let mut c = cfg();
    c.components = filter(&["^[A-C]$"], &[]);
    c.max_components = 2;
    let snap = parse(&[&comps], &[], &[], &c, NOW).expect("parses");
    assert_eq!(snap.components.len(), 2);
    assert_eq!(snap.components_capped, 1);
    assert_eq!(snap.page, Severity::PartialOutage);
}

#[test]
fn wrong_shapes_fail_as_decode_or_schema() {
    let reason = |body: &[u8]| {
        parse(&[body], &[], &[], &cfg(), NOW)
            .map(|_| ())
            .map_err(|e| e.reason)
    };
    assert_eq!(
        reason(b"<html><body>Cachet</body></html>"),
        Err(Reason::Decode)
    );
    assert_eq!(reason(b"nope"), Err(Reason::Decode));
    assert_eq!(reason(b"[]"), Err(Reason::Schema));
    assert_eq!(reason(b"{}"), Err(Reason::Schema));
    assert_eq!(reason(br#"{"data":{}}"#), Err(Reason::Schema));
    assert_eq!(reason(br#"{"data":[],"meta":[]}"#), Err(Reason::Schema));
    assert!(reason(br#"{"data":null}"#).is_ok());
}

#[test]
fn urls() {
    let mut c = cfg();
    assert_eq!(
        c.components_url().as_str(),
        "https://status.yoti.com/api/v1/components?per_page=100"
    );
    assert_eq!(
        c.groups_url().as_str(),
        "https://status.yoti.com/api/v1/components/groups?per_page=100"
    );
    assert_eq!(
        c.incidents_url().as_str(),
        "https://status.yoti.com/api/v1/incidents?per_page=100&sort=id&order=desc"
    );
    c.base_url = url("https://example.com/status/?token=x");
    assert_eq!(
        c.components_url().as_str(),
        "https://example.com/status/api/v1/components?token=x&per_page=100"
    );
    assert_eq!(
        upstream_exporter::probe::cachet::page_url(&c.components_url(), 3).as_str(),
        "https://example.com/status/api/v1/components?token=x&per_page=100&page=3"
    );
    assert_eq!(upstream_exporter::probe::cachet::DEFAULT_BASE_URL, None);
}

async fn mount(server: &MockServer, p: &str, page_no: Option<&str>, body: Vec<u8>) {
    let builder = Mock::given(method("GET")).and(path(p));
    let builder = match page_no {
        Some(n) => builder.and(query_param("page", n)),
        None => builder.and(query_param_is_missing("page")),
    };
    builder
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn every_page_is_followed_through_a_real_context() {
    let server = MockServer::start().await;
    let (first, second) = yoti_pages();
    mount(&server, "/api/v1/components", None, first).await;
    mount(&server, "/api/v1/components", Some("2"), second).await;
    mount(&server, "/api/v1/components/groups", None, groups_page()).await;
    mount(&server, "/api/v1/incidents", None, incidents_page()).await;

    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg();
    c.base_url = url(&server.uri());
    let ok = probe(&ctx, &c).await.expect("probe succeeds");
    assert_eq!(ok.http_status, 200);
    let snap = status_of(ok);
    assert_eq!(snap.component_count(), 7);
    assert_eq!(snap.page, Severity::Operational);
    assert_eq!(component(&snap, "9").group(), "Canada");
    assert_eq!(component(&snap, "6").group(), "Global");
    assert_eq!(snap.incidents.len(), 2);
    // Each mock expects exactly one request (checked when the server drops):
    // page 2 was fetched once from our own host, the foreign link never.
}

#[tokio::test]
async fn no_groups_api_means_empty_group_labels_but_other_errors_fail() {
    let server = MockServer::start().await;
    mount(&server, "/api/v1/components", None, fixture(YOTI)).await;
    mount(&server, "/api/v1/incidents", None, incidents_page()).await;
    // /api/v1/components/groups is not mounted: wiremock answers 404.
    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg();
    c.base_url = url(&server.uri());
    let snap = status_of(probe(&ctx, &c).await.expect("probe succeeds"));
    assert_eq!(snap.component_count(), 7);
    assert!(snap.each_component().all(|c| c.group().is_empty()));

    // Incidents answering 404 is a failure.
    let server = MockServer::start().await;
    mount(&server, "/api/v1/components", None, fixture(YOTI)).await;
    let target = probers_common::target(&server.uri());
    let ctx = context(&target, &hosts);
    c.base_url = url(&server.uri());
    let err = probe(&ctx, &c).await.expect_err("incidents 404");
    assert_eq!(err.reason, Reason::HttpStatus);
    assert_eq!(err.http_status, Some(404));
}

#[tokio::test]
async fn pagination_is_bounded_even_when_the_upstream_never_stops() {
    let server = MockServer::start().await;
    // Every page claims to be page 1 of 1000, with a next link.
    let endless = bytes(&page(
        &[json!({"id": 1, "name": "A", "status": 1})],
        1,
        1000,
        1000,
        Some("x"),
    ));
    Mock::given(method("GET"))
        .and(path("/api/v1/components"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(endless, "application/json"))
        .expect(upstream_exporter::probe::cachet::MAX_PAGES as u64)
        .mount(&server)
        .await;
    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let first = url(&format!("{}/api/v1/components", server.uri()));
    let (pages, status) = upstream_exporter::probe::cachet::fetch_pages(&ctx, &first, "components")
        .await
        .expect("pages");
    assert_eq!(status, 200);
    assert_eq!(pages.len(), upstream_exporter::probe::cachet::MAX_PAGES);
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&[&body], &[&body], &[&body], &cfg(), NOW);
    }

    #[test]
    fn never_panics_on_mutated_fixture(cut in 0usize..4000, byte in any::<u8>()) {
        let mut body = fixture(YOTI);
        let at = cut % body.len();
        body[at] = byte;
        let _ = parse(&[&body], &[], &[&body], &cfg(), NOW);
        body.truncate(at);
        let _ = parse(&[&body], &[], &[], &cfg(), NOW);
    }
}
