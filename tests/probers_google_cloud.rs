//! `probe::google_cloud` against the real Google Cloud `incidents.json` in
//! `tests/fixtures/gcp/` (a byte-for-byte copy of
//! `fixtures/real/gcp/incidents-history-2022-07.json`: 157 incidents, all
//! closed, two of them with `most_recent_update.status` still
//! SERVICE_DISRUPTION). Open incidents are made by this test from copies of
//! the real body with `end` removed / nulled (HAND-MODIFIED in memory; the
//! fixture file is never changed).

mod probers_common;

use probers_common::{
    component, context, count_with, filter, fixture, fixture_json, status_of, unknown, url,
};
use proptest::prelude::*;
use serde_json::Value;
use upstream_exporter::probe::google_cloud::{GoogleCloudConfig, parse, probe};
use upstream_exporter::probe::{Impact, Reason, Severity};
use upstream_exporter::runner::HostLimits;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HISTORY: &str = "gcp/incidents-history-2022-07.json";
/// Closed, medium, Google Cloud Networking, most_recent_update SERVICE_DISRUPTION.
const NETWORKING_DISRUPTION: &str = "NJJp8jkNzFStMyiJZWWD";
/// Closed, high, Hybrid Connectivity + VPC + Google Cloud Networking + Cloud NAT.
const HIGH_NETWORKING: &str = "iAgVMxJUfE1J9et7j9KB";

fn cfg(products: &[&str]) -> GoogleCloudConfig {
    GoogleCloudConfig {
        base_url: url("https://status.cloud.google.com"),
        products: products.iter().map(|p| (*p).to_owned()).collect(),
        components: filter(&[], &[]),
        max_components: 1000,
    }
}

/// The real history with the incidents of `ids` reopened: `end` removed
/// from the first, set to `null` on the second, `""` on the rest.
fn reopened(ids: &[&str]) -> Vec<u8> {
    let mut body = fixture_json(HISTORY);
    let mut n = 0;
    for inc in body.as_array_mut().expect("list") {
        let id = inc["id"].as_str().unwrap_or_default().to_owned();
        if !ids.contains(&id.as_str()) {
            continue;
        }
        let obj = inc.as_object_mut().expect("object");
        match n {
            0 => {
                obj.remove("end");
            }
            1 => {
                obj.insert("end".into(), Value::Null);
            }
            _ => {
                obj.insert("end".into(), Value::String(String::new()));
            }
        }
        n += 1;
    }
    assert_eq!(n, ids.len());
    serde_json::to_vec(&body).expect("json")
}

#[test]
fn real_history_has_no_open_incident() {
    let snap = parse(&fixture(HISTORY), &cfg(&[])).expect("parses");
    // Every product the history names, each operational.
    let body = fixture_json(HISTORY);
    let mut titles: Vec<&str> = Vec::new();
    for inc in body.as_array().expect("list") {
        for p in inc["affected_products"].as_array().expect("products") {
            let t = p["title"].as_str().expect("title");
            if !titles.contains(&t) {
                titles.push(t);
            }
        }
    }
    assert_eq!(titles.len(), 60);
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    assert_eq!(ids, titles);
    assert_eq!(count_with(&snap, Severity::Operational), 60);
    assert_eq!(snap.page, Severity::Operational);
    // The two closed incidents still saying SERVICE_DISRUPTION are not open.
    assert!(snap.incidents.is_empty());
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
    assert!(snap.unknown_values.is_empty());
}

#[test]
fn configured_products_are_exported_even_when_quiet() {
    let snap = parse(
        &fixture(HISTORY),
        &cfg(&["Cloud Run", "Google BigQuery", "Not A Product"]),
    )
    .expect("parses");
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    assert_eq!(ids, ["Cloud Run", "Google BigQuery", "Not A Product"]);
    assert_eq!(count_with(&snap, Severity::Operational), 3);
    assert_eq!(snap.page, Severity::Operational);
    assert!(snap.incidents.is_empty());
}

#[test]
fn open_incidents_come_from_end_only() {
    let body = reopened(&[NETWORKING_DISRUPTION, HIGH_NETWORKING]);
    let snap = parse(&body, &cfg(&[])).expect("parses");
    assert_eq!(snap.components.len(), 60);
    assert_eq!(
        component(&snap, "Google Cloud Networking").status,
        Severity::MajorOutage
    );
    assert_eq!(
        component(&snap, "Hybrid Connectivity").status,
        Severity::MajorOutage
    );
    assert_eq!(
        component(&snap, "Virtual Private Cloud (VPC)").status,
        Severity::MajorOutage
    );
    assert_eq!(component(&snap, "Cloud NAT").status, Severity::MajorOutage);
    assert_eq!(count_with(&snap, Severity::Operational), 56);
    assert_eq!(snap.page, Severity::MajorOutage);
    let open: Vec<(&str, Impact, &str, Option<f64>)> = snap
        .incidents
        .iter()
        .map(|i| (i.id.as_str(), i.impact, i.status.as_str(), i.started))
        .collect();
    // Body order: the 2022 one comes first (newest first).
    assert_eq!(
        open,
        [
            (
                HIGH_NETWORKING,
                Impact::Critical,
                "available",
                Some(1_655_367_060.0)
            ),
            (
                NETWORKING_DISRUPTION,
                Impact::Major,
                "service_disruption",
                Some(1_629_774_840.0)
            ),
        ]
    );
    assert!(
        snap.incidents[1]
            .name
            .starts_with("The issue with Cloud Networking has been resolved")
    );
}

#[test]
fn one_open_medium_incident_with_a_products_filter() {
    let body = reopened(&[NETWORKING_DISRUPTION]);
    let snap = parse(&body, &cfg(&["google cloud networking", "Cloud Run"])).expect("parses");
    let codes: Vec<(&str, Severity)> = snap.components.iter().map(|c| (c.id(), c.status)).collect();
    assert_eq!(
        codes,
        [
            ("google cloud networking", Severity::PartialOutage),
            ("Cloud Run", Severity::Operational)
        ]
    );
    assert_eq!(snap.page, Severity::PartialOutage);
    assert_eq!(snap.incidents.len(), 1);
    assert_eq!(snap.incidents[0].impact, Impact::Major);

    // An open incident of a product not configured is not exported at all.
    let snap = parse(&body, &cfg(&["Cloud Run"])).expect("parses");
    assert_eq!(snap.page, Severity::Operational);
    assert!(snap.incidents.is_empty());

    // Google's product id works as a products entry too.
    let snap = parse(&body, &cfg(&["VNJxzcH58QmTt5H6pnT6"])).map(|s| s.components.len());
    assert_eq!(snap, Ok(1));

    // The same product listed twice, once by title and once by id: both
    // entries show its incident, under the labels as configured.
    let both = cfg(&["Google Cloud Networking", "VNJxzcH58QmTt5H6pnT6"]);
    let snap = parse(&body, &both).expect("parses");
    let codes: Vec<(&str, Severity)> = snap.components.iter().map(|c| (c.id(), c.status)).collect();
    assert_eq!(
        codes,
        [
            ("Google Cloud Networking", Severity::PartialOutage),
            ("VNJxzcH58QmTt5H6pnT6", Severity::PartialOutage)
        ]
    );
    assert_eq!(snap.incidents.len(), 1);
}

/// Without `products:` the products come from the incident history, which
/// may empty out: that is a quiet page, not a page that lost its
/// components (`listed` is what the daemon compares with the last answer).
#[test]
fn products_from_the_history_are_not_a_listing() {
    let body = reopened(&[NETWORKING_DISRUPTION]);
    let snap = parse(&body, &cfg(&[])).expect("parses");
    assert!(snap.components.len() > 1);
    assert_eq!(snap.listed, None);
    let quiet = parse(b"[]", &cfg(&[])).expect("parses");
    assert_eq!((quiet.components.len(), quiet.listed), (0, None));
    // Configured products are a listing of their own.
    let snap = parse(b"[]", &cfg(&["Cloud Run"])).expect("parses");
    assert_eq!(snap.listed, Some(1));
}

#[test]
fn unknown_severity_and_lenient_shapes() {
    let body = br#"[
        {"id":"a","severity":"catastrophic","begin":"2022-01-01T00:00:00+00:00",
         "affected_products":[{"title":"X","id":"x"}],"external_desc":"\n  first line \nsecond"},
        {"id":"b","severity":"low","end":null,"service_name":"Y"},
        {"id":"c","severity":"high","end":"2022-01-02T00:00:00+00:00","affected_products":[{"title":"Z"}]},
        "junk", 3, null]"#;
    let snap = parse(body, &cfg(&[])).expect("parses");
    let codes: Vec<(&str, Severity)> = snap.components.iter().map(|c| (c.id(), c.status)).collect();
    assert_eq!(
        codes,
        [
            ("X", Severity::Unknown),
            ("Y", Severity::Degraded),
            ("Z", Severity::Operational)
        ]
    );
    assert_eq!(unknown(&snap, "incident_severity"), 1);
    assert_eq!(snap.page, Severity::Degraded);
    assert_eq!(snap.incidents.len(), 2);
    assert_eq!(snap.incidents[0].name, "first line");
    assert_eq!(snap.incidents[0].impact, Impact::None);
    assert_eq!(snap.incidents[1].impact, Impact::Minor);
}

#[test]
fn filter_and_cap() {
    let mut c = cfg(&[]);
    c.components = filter(&["^Cloud "], &[]);
    c.max_components = 5;
    let snap = parse(&fixture(HISTORY), &c).expect("parses");
    assert_eq!(snap.components.len(), 5);
    assert!(
        snap.components
            .iter()
            .all(|c| c.name().starts_with("Cloud "))
    );
    let body = fixture_json(HISTORY);
    let mut cloud: Vec<&str> = Vec::new();
    for inc in body.as_array().expect("list") {
        for p in inc["affected_products"].as_array().expect("products") {
            let t = p["title"].as_str().expect("title");
            if t.starts_with("Cloud ") && !cloud.contains(&t) {
                cloud.push(t);
            }
        }
    }
    assert_eq!(snap.components_capped, cloud.len() - 5);
}

#[test]
fn wrong_shapes_fail_as_decode_or_schema() {
    let reason = |body: &[u8]| parse(body, &cfg(&[])).map(|_| ()).map_err(|e| e.reason);
    assert_eq!(
        reason(b"<!doctype html><title>Google Cloud Status</title>"),
        Err(Reason::Decode)
    );
    assert_eq!(reason(b"[{"), Err(Reason::Decode));
    assert_eq!(reason(b"{}"), Err(Reason::Schema));
    assert_eq!(reason(b"\"incidents\""), Err(Reason::Schema));
    assert!(reason(b"[]").is_ok());
    // A list of something else is not a quiet page, with or without products.
    for body in [
        &br#"[{"error":"quota exceeded"}]"#[..],
        b"[1, 2]",
        b"[\"a\"]",
    ] {
        assert_eq!(reason(body), Err(Reason::Schema));
        let configured = parse(body, &cfg(&["Google Compute Engine"])).map_err(|e| e.reason);
        assert_eq!(configured.err(), Some(Reason::Schema));
    }
}

#[tokio::test]
async fn served_by_a_local_server() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/incidents.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture(HISTORY), "application/json"))
        .mount(&server)
        .await;
    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg(&["Cloud Run"]);
    c.base_url = url(&server.uri());
    let snap = status_of(probe(&ctx, &c).await.expect("probe succeeds"));
    assert_eq!(snap.component_count(), 1);
    assert_eq!(snap.page, Severity::Operational);
    assert_eq!(
        cfg(&[]).url().as_str(),
        "https://status.cloud.google.com/incidents.json"
    );
}

proptest! {
    // The fixture is 1.3 MB: fewer cases keep the debug-build run short.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, &cfg(&[]));
        let _ = parse(&body, &cfg(&["X"]));
    }

    #[test]
    fn never_panics_on_truncated_fixture(cut in 0usize..200_000, byte in any::<u8>()) {
        let mut body = fixture(HISTORY);
        let at = cut % body.len();
        body[at] = byte;
        let _ = parse(&body, &cfg(&[]));
        body.truncate(at);
        let _ = parse(&body, &cfg(&[]));
    }
}
