//! `probe::instatus` against HAND-BUILT bodies. No real recorded Instatus
//! answer exists in `fixtures/real/` (see its SOURCES.md, "Gaps"), so every
//! body below is written by hand from Instatus' documented public schema:
//! `summary.json` from instatus.com/help/api/public-data (page status
//! UP / HASISSUES / UNDERMAINTENANCE, `activeIncidents` with JavaScript-style
//! `started` dates, `activeMaintenances` NOTSTARTEDYET / INPROGRESS /
//! COMPLETED) and components from the components API reference (status
//! OPERATIONAL … MAJOROUTAGE, `group`), plus the nested `children` shape.
//! Replace them with recordings when one is available.

mod probers_common;

use probers_common::{component, context, filter, status_of, unknown, url};
use proptest::prelude::*;
use upstream_exporter::probe::instatus::{InstatusConfig, parse, probe};
use upstream_exporter::probe::{Impact, Reason, Severity};
use upstream_exporter::runner::HostLimits;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Hand-built, after the documented example (one incident, one maintenance
/// not started yet), plus an id-less resolved incident and an in-progress
/// maintenance with an ISO date.
const SUMMARY_HAS_ISSUES: &str = r#"{
  "page": {"name": "Instatus", "url": "https://instat.us", "status": "HASISSUES"},
  "activeIncidents": [
    {"name": "We're facing an issue with our API",
     "started": "Sat Jun 11 2022 18:55:50 GMT+0000 (Coordinated Universal Time)",
     "status": "INVESTIGATING", "impact": "MAJOROUTAGE",
     "url": "https://testing-widget.instatus.com/incident/cl4a8n3070721qtmzvts760c4"},
    {"id": "cl4old", "name": "Old one", "started": "2022-06-01T00:00:00.000Z",
     "status": "RESOLVED", "impact": "PARTIALOUTAGE"}
  ],
  "activeMaintenances": [
    {"name": "Database maintenance",
     "start": "Sat Jun 11 2022 18:55:54 GMT+0000 (Coordinated Universal Time)",
     "status": "NOTSTARTEDYET", "duration": "60",
     "url": "https://testing-widget.instatus.com/maintenance/cl4a8nlv50918qtmzdlw60ivu"},
    {"id": "cl4m2", "name": "Network work", "start": "2022-06-11T17:00:00.000Z",
     "status": "INPROGRESS", "duration": "120"}
  ]
}"#;

/// Hand-built components list in the shape of the components API reference.
const COMPONENTS_FLAT: &str = r#"[
  {"id": "ckf01fvnxywz60a35wdbn5gz5", "name": "App", "status": "OPERATIONAL",
   "description": "", "showUptime": true, "order": 0, "group": null},
  {"id": "ckf01fvnxywz50a35nh1qzssm", "name": "Website", "status": "MAJOROUTAGE",
   "description": "", "showUptime": true, "order": 1, "group": null},
  {"id": "ckgrp1", "name": "Europe", "status": "DEGRADEDPERFORMANCE", "isParent": true},
  {"id": "ckeu1", "name": "API", "status": "DEGRADEDPERFORMANCE", "group": {"id": "ckgrp1", "name": "Europe"}},
  {"id": "ckus1", "name": "API", "status": "UNDERMAINTENANCE", "group": "US"},
  {"id": "ckmin", "name": "Search", "status": "MINOROUTAGE", "parentId": null},
  {"id": "ckodd", "name": "Odd", "status": "EXPLODING"}
]"#;

/// Hand-built `{"components": [...]}` with nested children.
const COMPONENTS_NESTED: &str = r#"{"components": [
  {"id": "p1", "name": "Platform", "status": "PARTIALOUTAGE", "isParent": true, "children": [
     {"id": "c1", "name": "Build", "status": "PARTIALOUTAGE"},
     {"id": "c2", "name": "Deploy", "status": "OPERATIONAL"}]},
  {"id": "c3", "name": "Docs", "status": "OPERATIONAL", "parentId": "p2"},
  {"id": "p2", "name": "Content", "status": "OPERATIONAL"}
]}"#;

const SUMMARY_UP: &str = r#"{"page": {"name": "x", "url": "https://x", "status": "UP"},
  "activeIncidents": [], "activeMaintenances": []}"#;

fn cfg() -> InstatusConfig {
    InstatusConfig {
        base_url: url("https://instat.us"),
        components: filter(&[], &[]),
        max_components: 1000,
    }
}

#[test]
fn has_issues_page_with_incident_and_maintenances() {
    let snap = parse(
        SUMMARY_HAS_ISSUES.as_bytes(),
        COMPONENTS_FLAT.as_bytes(),
        &cfg(),
    )
    .expect("parses");
    let codes: Vec<(&str, i64, &str)> = snap
        .components
        .iter()
        .map(|c| (c.id(), c.status.code(), c.group()))
        .collect();
    assert_eq!(
        codes,
        [
            ("ckf01fvnxywz60a35wdbn5gz5", 1, ""),
            ("ckf01fvnxywz50a35nh1qzssm", 5, ""),
            ("ckeu1", 3, "Europe"),
            ("ckus1", 2, "US"),
            ("ckmin", 4, ""),
            ("ckodd", 0, ""),
        ]
    );
    assert_eq!(unknown(&snap, "component_status"), 1);
    // HASISSUES: the worst of components and incidents (major outage here).
    assert_eq!(snap.page, Severity::MajorOutage);
    assert_eq!(snap.incidents.len(), 1);
    let inc = &snap.incidents[0];
    assert_eq!(inc.id, "cl4a8n3070721qtmzvts760c4");
    assert_eq!(inc.impact, Impact::Critical);
    assert_eq!(inc.status, "investigating");
    assert_eq!(inc.started, Some(1_654_973_750.0));
    assert_eq!(snap.maintenances_active, 1);
    assert_eq!(snap.next_maintenance_start, Some(1_654_973_754.0));
}

#[test]
fn has_issues_is_at_least_degraded() {
    let summary = r#"{"page": {"status": "HASISSUES"}, "activeIncidents": null}"#;
    let comps = r#"[{"id": "a", "name": "A", "status": "OPERATIONAL"}]"#;
    let snap = parse(summary.as_bytes(), comps.as_bytes(), &cfg()).expect("parses");
    assert_eq!(snap.page, Severity::Degraded);
}

#[test]
fn up_and_under_maintenance_pages() {
    let snap = parse(SUMMARY_UP.as_bytes(), COMPONENTS_NESTED.as_bytes(), &cfg()).expect("parses");
    assert_eq!(
        snap.page,
        Severity::Operational,
        "UP wins over a partial outage component"
    );
    let rows: Vec<(&str, &str, &str, Severity)> = snap
        .components
        .iter()
        .map(|c| (c.id(), c.name(), c.group(), c.status))
        .collect();
    assert_eq!(
        rows,
        [
            ("c3", "Docs", "Content", Severity::Operational),
            ("c1", "Build", "Platform", Severity::PartialOutage),
            ("c2", "Deploy", "Platform", Severity::Operational),
        ]
    );
    assert!(snap.incidents.is_empty());
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);

    let summary = r#"{"page": {"status": "UNDERMAINTENANCE"}}"#;
    let snap = parse(summary.as_bytes(), b"[]", &cfg()).expect("parses");
    assert_eq!(snap.page, Severity::Maintenance);
    let summary = r#"{"page": {"status": "SOMETHING_NEW"}}"#;
    let snap = parse(summary.as_bytes(), b"[]", &cfg()).expect("parses");
    assert_eq!(snap.page, Severity::Unknown);
    assert_eq!(unknown(&snap, "page_status"), 1);
    let summary = r#"{"page": {}}"#;
    let snap = parse(summary.as_bytes(), COMPONENTS_FLAT.as_bytes(), &cfg()).expect("parses");
    assert_eq!(
        snap.page,
        Severity::MajorOutage,
        "no page status: worst component"
    );
}

#[test]
fn filter_and_cap() {
    let mut c = cfg();
    c.components = filter(&["^API$"], &["ckus1"]);
    let snap = parse(SUMMARY_UP.as_bytes(), COMPONENTS_FLAT.as_bytes(), &c).expect("parses");
    assert_eq!(snap.components.len(), 1);
    assert_eq!(component(&snap, "ckeu1").group(), "Europe");
    let mut c = cfg();
    c.max_components = 2;
    let snap = parse(SUMMARY_UP.as_bytes(), COMPONENTS_FLAT.as_bytes(), &c).expect("parses");
    assert_eq!(snap.components.len(), 2);
    assert_eq!(snap.components_capped, 4);
}

#[test]
fn wrong_shapes_fail_as_decode_or_schema() {
    let reason = |summary: &str, comps: &str| {
        parse(summary.as_bytes(), comps.as_bytes(), &cfg())
            .map(|_| ())
            .map_err(|e| e.reason)
    };
    assert_eq!(reason("<!DOCTYPE html>", "[]"), Err(Reason::Decode));
    assert_eq!(reason(SUMMARY_UP, "<html></html>"), Err(Reason::Decode));
    assert_eq!(reason("[]", "[]"), Err(Reason::Schema));
    assert_eq!(reason("{}", "[]"), Err(Reason::Schema));
    assert_eq!(reason(r#"{"page": "UP"}"#, "[]"), Err(Reason::Schema));
    assert_eq!(
        reason(r#"{"page": {}, "activeIncidents": 3}"#, "[]"),
        Err(Reason::Schema)
    );
    assert_eq!(reason(SUMMARY_UP, "{}"), Err(Reason::Schema));
    assert_eq!(
        reason(SUMMARY_UP, r#"{"components": "x"}"#),
        Err(Reason::Schema)
    );
    assert!(reason(SUMMARY_UP, r#"{"components": null}"#).is_ok());
}

#[tokio::test]
async fn served_by_a_local_server() {
    let server = MockServer::start().await;
    for (p, body) in [
        ("/summary.json", SUMMARY_HAS_ISSUES),
        ("/components.json", COMPONENTS_FLAT),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .mount(&server)
            .await;
    }
    let target = probers_common::target(&server.uri());
    let hosts = HostLimits::new(4);
    let ctx = context(&target, &hosts);
    let mut c = cfg();
    c.base_url = url(&server.uri());
    let snap = status_of(probe(&ctx, &c).await.expect("probe succeeds"));
    assert_eq!(
        snap,
        parse(
            SUMMARY_HAS_ISSUES.as_bytes(),
            COMPONENTS_FLAT.as_bytes(),
            &cfg()
        )
        .expect("parses")
    );
    assert_eq!(
        cfg().summary_url().as_str(),
        "https://instat.us/summary.json"
    );
    assert_eq!(
        cfg().components_url().as_str(),
        "https://instat.us/components.json"
    );
    assert_eq!(upstream_exporter::probe::instatus::DEFAULT_BASE_URL, None);
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(a in proptest::collection::vec(any::<u8>(), 0..512),
                                 b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&a, &b, &cfg());
        let _ = parse(SUMMARY_HAS_ISSUES.as_bytes(), &b, &cfg());
        let _ = parse(&a, COMPONENTS_FLAT.as_bytes(), &cfg());
    }

    #[test]
    fn never_panics_on_mutated_bodies(cut in 0usize..4000, byte in any::<u8>()) {
        let mut s = SUMMARY_HAS_ISSUES.as_bytes().to_vec();
        let mut c = COMPONENTS_NESTED.as_bytes().to_vec();
        let (i, j) = (cut % s.len(), cut % c.len());
        s[i] = byte;
        c[j] = byte;
        let _ = parse(&s, &c, &cfg());
        s.truncate(i);
        c.truncate(j);
        let _ = parse(&s, &c, &cfg());
    }
}
