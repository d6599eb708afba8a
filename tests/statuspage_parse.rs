//! Tests of `probe::statuspage::parse` against the real recorded Statuspage
//! bodies in `tests/fixtures/statuspage/` (copies of
//! `fixtures/real/atlassian-statuspage/`, see the README there), hand-built
//! edge cases (incident.io shape, error shapes, encodings, filters, cap), and
//! a property test that no input makes the parser panic.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;
use upstream_exporter::config::{ComponentFilter, Matcher, StatuspageConfig};
use upstream_exporter::probe::statuspage::parse;
use upstream_exporter::probe::{Impact, Reason, Severity, StatusSnapshot};

// ---------------------------------------------------------------------------
// Helpers

fn cfg_with(include: &[&str], exclude: &[&str], max_components: usize) -> StatuspageConfig {
    let matchers = |list: &[&str]| -> Vec<Matcher> {
        list.iter()
            .map(|s| Matcher {
                source: (*s).to_owned(),
                regex: regex::Regex::new(s).expect("test regex"),
            })
            .collect()
    };
    StatuspageConfig {
        url: url::Url::parse("https://status.example.com/api/v2/summary.json").expect("url"),
        components: ComponentFilter {
            include: matchers(include),
            exclude: matchers(exclude),
        },
        max_components,
    }
}

/// Empty filter, default cap.
fn cfg() -> StatuspageConfig {
    cfg_with(&[], &[], 1000)
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/statuspage")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_fixture(name: &str) -> StatusSnapshot {
    parse(&fixture(name), &cfg()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse_str(body: &str) -> Result<StatusSnapshot, upstream_exporter::probe::ProbeError> {
    parse(body.as_bytes(), &cfg())
}

/// Component severity words, written out independently of the parser.
fn expected_code(word: &str) -> i64 {
    match word {
        "operational" => 1,
        "under_maintenance" => 2,
        "degraded_performance" => 3,
        "partial_outage" => 4,
        "major_outage" => 5,
        _ => 0,
    }
}

fn count_codes(snap: &StatusSnapshot) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for c in &snap.components {
        *counts.entry(c.status.code()).or_insert(0) += 1;
    }
    counts
}

fn component<'a>(snap: &'a StatusSnapshot, id: &str) -> &'a upstream_exporter::probe::Component {
    snap.components
        .iter()
        .find(|c| c.id() == id)
        .unwrap_or_else(|| panic!("component {id} not exported"))
}

fn unknown(snap: &StatusSnapshot, field: &str) -> u64 {
    snap.unknown_values
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(0, |(_, n)| *n)
}

fn utf16le_with_bom(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).expect("fixture is UTF-8");
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected a timestamp near {expected}"));
    assert!(
        (actual - expected).abs() < 1e-3,
        "timestamp {actual} != {expected}"
    );
}

// ---------------------------------------------------------------------------
// Every real fixture

/// The non-group rows of a body, computed from the JSON independently of the
/// parser: a row is a group if `group` is true, its id is another row's
/// `group_id`, or it lists child ids in `components`.
struct Expected {
    /// (id, status word, group name) of each exported row, in body order.
    rows: Vec<(String, String, String)>,
    groups: usize,
}

fn expected_from_value(body: &Value) -> Expected {
    let comps = body["components"].as_array().cloned().unwrap_or_default();
    let group_ids: HashSet<&str> = comps
        .iter()
        .filter_map(|c| c["group_id"].as_str())
        .collect();
    let name_of: HashMap<&str, &str> = comps
        .iter()
        .filter_map(|c| Some((c["id"].as_str()?, c["name"].as_str()?)))
        .collect();
    let is_group = |c: &Value| {
        c["group"].as_bool() == Some(true)
            || c["id"].as_str().is_some_and(|id| group_ids.contains(id))
            || c["components"].as_array().is_some_and(|l| !l.is_empty())
    };
    let groups = comps.iter().filter(|c| is_group(c)).count();
    let rows = comps
        .iter()
        .filter(|c| !is_group(c))
        .map(|c| {
            let group = c["group_id"]
                .as_str()
                .and_then(|g| name_of.get(g))
                .copied()
                .unwrap_or("");
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
                group.to_owned(),
            )
        })
        .collect();
    Expected { rows, groups }
}

#[test]
fn every_real_fixture_exports_exactly_its_non_group_rows() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 26, "all atlassian-statuspage fixtures copied");

    for path in names {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let body = std::fs::read(&path).expect("read fixture");
        let value: Value = serde_json::from_slice(&body).expect("fixture is JSON");
        let expected = expected_from_value(&value);
        let snap = parse(&body, &cfg()).unwrap_or_else(|e| panic!("{name}: {e}"));

        assert_eq!(
            snap.components.len(),
            expected.rows.len(),
            "{name}: exported count (body has {} group rows)",
            expected.groups
        );
        assert_eq!(snap.components_capped, 0, "{name}");

        let ids: HashSet<&str> = snap.components.iter().map(|c| c.id()).collect();
        assert_eq!(ids.len(), snap.components.len(), "{name}: duplicate ids");

        for (c, (id, word, group)) in snap.components.iter().zip(&expected.rows) {
            assert_eq!(&c.id(), id, "{name}: body order");
            assert_eq!(
                c.status.code(),
                expected_code(word),
                "{name}: {id} is {word}"
            );
            assert_eq!(&c.group(), group, "{name}: group label of {id}");
        }
        assert!(
            snap.unknown_values.is_empty(),
            "{name}: {:?}",
            snap.unknown_values
        );

        // Page: the indicator when there is one, else the worst component.
        let page = match value["status"]["indicator"].as_str() {
            Some("none") => 1,
            Some("maintenance") => 2,
            Some("minor") => 3,
            Some("major") => 4,
            Some("critical") => 5,
            Some(other) => panic!("{name}: fixture indicator {other}"),
            None => expected
                .rows
                .iter()
                .map(|(_, w, _)| expected_code(w))
                .max()
                .unwrap_or(0),
        };
        assert_eq!(snap.page.code(), page, "{name}: page status");
    }
}

// ---------------------------------------------------------------------------
// Exact numbers of selected fixtures (verified with jq/python on the bodies)

#[test]
fn github_with_problem_actions_partial_outage() {
    let snap = parse_fixture("github-components-with-problem.json");
    assert_eq!(snap.components.len(), 10);
    let actions = component(&snap, "br0l2tvcx85d");
    assert_eq!(actions.name(), "GitHub Actions");
    assert_eq!(actions.status, Severity::PartialOutage);
    assert_eq!(actions.status.code(), 4);
    assert_eq!(actions.group(), "");
    // components.json has no indicator: page = worst component.
    assert_eq!(snap.page.code(), 4);
    assert!(snap.incidents.is_empty());
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
}

#[test]
fn coinbase_partial_outages_and_maintenance() {
    let snap = parse_fixture("coinbase-components.json");
    // 139 rows, 3 of them groups. The group "Digital Currencies" is itself
    // partial_outage (rolled up), but only its children are exported:
    // 2 partial_outage + 1 under_maintenance.
    assert_eq!(snap.components.len(), 136);
    let codes = count_codes(&snap);
    assert_eq!(codes.get(&4), Some(&2));
    assert_eq!(codes.get(&2), Some(&1));
    assert_eq!(codes.get(&1), Some(&133));
    assert!(snap.components.iter().all(|c| c.id() != "574f73dm7f5h"));
    assert_eq!(
        component(&snap, "t5cf13g9yx1h").group(),
        "Digital Currencies"
    );
    assert_eq!(snap.page.code(), 4);
}

#[test]
fn qualys_major_outage_and_maintenance() {
    let snap = parse_fixture("qualys-components.json");
    // 271 rows / 12 groups. Rows including groups: 2 major_outage and 7
    // under_maintenance; exported (children only): 1 and 4.
    assert_eq!(snap.components.len(), 259);
    let codes = count_codes(&snap);
    assert_eq!(codes.get(&5), Some(&1));
    assert_eq!(codes.get(&2), Some(&4));
    assert_eq!(codes.get(&1), Some(&254));
    assert_eq!(component(&snap, "2pz4b2l3ptdz").group(), "EU Platform 1");
    assert_eq!(snap.page, Severity::MajorOutage);
}

#[test]
fn duo_big_page_groups_and_duplicate_names() {
    let body = fixture("duo-components.json");
    let value: Value = serde_json::from_slice(&body).expect("json");
    let rows = value["components"].as_array().map_or(0, Vec::len);
    assert_eq!(rows, 539);

    let snap = parse(&body, &cfg()).expect("duo parses");
    assert_eq!(
        snap.components.len(),
        470,
        "539 rows = 470 components + 69 groups"
    );
    assert_eq!(snap.page, Severity::Operational);

    // No group row is exported.
    let group_ids: HashSet<&str> = value["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["group"].as_bool() == Some(true))
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(group_ids.len(), 69);
    assert!(snap.components.iter().all(|c| !group_ids.contains(c.id())));

    // Duplicate names are all present, one series per id.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for c in &snap.components {
        *by_name.entry(c.name()).or_insert(0) += 1;
    }
    for name in [
        "Core Authentication Service",
        "Admin Panel",
        "Push Delivery",
        "Phone Call Delivery",
        "SMS Message Delivery",
        "Cloud PKI",
    ] {
        assert_eq!(by_name.get(name), Some(&68), "{name}");
    }
    assert_eq!(by_name.get("SSO"), Some(&59));

    // Child → group label via group_id (and the group row's `components` list).
    let child = component(&snap, "dlwh21dj4237");
    assert_eq!(child.name(), "Core Authentication Service");
    assert_eq!(child.group(), "DUO18");
    assert_eq!(component(&snap, "j39205r7wpc7").group(), "Duo Support");
}

#[test]
fn twilio_summary_incidents_and_scheduled_maintenances() {
    let snap = parse_fixture("twilio-summary-incidents-and-scheduled-maintenances.json");
    assert_eq!(snap.page, Severity::Degraded, "indicator minor");
    assert_eq!(snap.components.len(), 65, "73 rows, 8 groups");

    assert_eq!(snap.incidents.len(), 2);
    let first = &snap.incidents[0];
    assert_eq!(first.id, "4dtnnnnxnhn9");
    assert_eq!(first.name, "SMS Delivery Delays to Mozambique Movitel");
    assert_eq!(first.impact, Impact::Minor);
    assert_eq!(first.status, "investigating");
    // started_at 2020-06-16T13:27:41.521-07:00
    assert_close(first.started, 1_592_339_261.521);
    let second = &snap.incidents[1];
    assert_eq!(second.id, "r0f0vdz8vrgm");
    assert_eq!(
        second.name,
        "SMS Delivery Delays from Subset of Twilio Short Codes to US Sprint"
    );
    assert_eq!(second.impact, Impact::Minor);
    assert_eq!(second.status, "monitoring");
    // started_at 2020-06-16T06:41:44.672-07:00
    assert_close(second.started, 1_592_314_904.672);

    // 9 maintenances, all `scheduled`: none active; the earliest
    // scheduled_for is 2020-06-16T16:00:00.000-07:00 = 23:00Z.
    assert_eq!(snap.maintenances_active, 0);
    assert_close(snap.next_maintenance_start, 1_592_348_400.0);
}

#[test]
fn instructure_summary_active_minor_incident() {
    let snap = parse_fixture("instructure-summary.json");
    assert_eq!(snap.page.code(), 3, "indicator minor");
    assert_eq!(snap.components.len(), 21);
    assert_eq!(count_codes(&snap).get(&3), Some(&8));
    assert_eq!(snap.incidents.len(), 1);
    let inc = &snap.incidents[0];
    assert_eq!(inc.id, "g1zp3jpycgbz");
    assert_eq!(inc.impact, Impact::Minor);
    assert_eq!(inc.status, "identified");
    assert_close(inc.started, 1_638_893_203.172);
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);
}

#[test]
fn cloudamqp_maintenance_in_progress() {
    let snap = parse_fixture("cloudamqp-summary-maintenance-in-progress.json");
    assert_eq!(snap.page, Severity::Maintenance);
    assert_eq!(snap.page.code(), 2);
    assert_eq!(snap.components.len(), 23);
    assert_eq!(
        component(&snap, "m9jl6sdbs4vb").status,
        Severity::Maintenance
    );
    assert_eq!(snap.maintenances_active, 1);
    assert_eq!(
        snap.next_maintenance_start, None,
        "the only one is in progress"
    );
    assert!(snap.incidents.is_empty());
}

#[test]
fn github_summary_2026_all_operational() {
    let snap = parse_fixture("github-summary-all-operational-2026.json");
    assert_eq!(snap.page, Severity::Operational);
    assert_eq!(snap.components.len(), 12);
    assert!(snap.incidents.is_empty());
    assert_eq!(snap.maintenances_active, 0);
}

// ---------------------------------------------------------------------------
// Failure classification

#[test]
fn html_body_is_decode() {
    let err = parse_str("<!DOCTYPE html>\n<html><head><title>Moved</title></head></html>")
        .expect_err("HTML must fail");
    assert_eq!(err.reason, Reason::Decode);
    assert!(err.message.contains("HTML"), "{}", err.message);
}

#[test]
fn non_json_bodies_are_decode() {
    for body in [
        "",
        "   \n",
        "not json",
        "{\"page\": {}, \"components\": [",
        "{} trailing",
    ] {
        let err = parse_str(body).expect_err(body);
        assert_eq!(err.reason, Reason::Decode, "{body:?}: {err}");
        assert!(
            err.message.starts_with("not JSON"),
            "{body:?}: {}",
            err.message
        );
    }
}

#[test]
fn other_json_shapes_are_schema() {
    for body in [
        r#"{"foo":1}"#,
        "[]",
        "null",
        "42",
        r#""summary""#,
        r#"{"components": []}"#,
        r#"{"page": null, "components": []}"#,
        r#"{"page": [], "components": []}"#,
        r#"{"page": "GitHub", "components": []}"#,
        r#"{"page": {}}"#,
        r#"{"page": {}, "components": {}}"#,
        r#"{"page": {}, "components": "none"}"#,
        r#"{"page": {}, "components": [], "status": "ok"}"#,
        r#"{"page": {}, "components": [], "incidents": {}}"#,
        r#"{"page": {}, "components": [], "scheduled_maintenances": 3}"#,
    ] {
        let err = parse_str(body).expect_err(body);
        assert_eq!(err.reason, Reason::Schema, "{body}: {err}");
    }
}

#[test]
fn duplicate_keys_are_schema_not_decode() {
    // Only a key repeated within one object can fail the lenient structs.
    let err =
        parse_str(r#"{"page":{},"components":[],"components":null}"#).expect_err("duplicate key");
    assert_eq!(err.reason, Reason::Schema, "{err}");
}

#[test]
fn schema_messages_say_what_is_wrong() {
    let msg = |body: &str| parse_str(body).expect_err(body).message;
    assert!(msg("[]").contains("an array"), "{}", msg("[]"));
    assert!(msg(r#"{"foo":1}"#).contains("`page`"));
    assert!(msg(r#"{"page":{}}"#).contains("`components`"));
    assert!(msg(r#"{"page":{},"components":"x"}"#).contains("a string"));
}

#[test]
fn components_null_is_an_empty_list() {
    let snap = parse_str(r#"{"page":{"id":"x"},"components":null}"#).expect("ok");
    assert!(snap.components.is_empty());
    assert_eq!(snap.page, Severity::Unknown, "no indicator, no components");

    let snap =
        parse_str(r#"{"page":{},"components":[],"status":{"indicator":"none"}}"#).expect("ok");
    assert!(snap.components.is_empty());
    assert_eq!(snap.page, Severity::Operational);
}

// ---------------------------------------------------------------------------
// Leniency

/// Hand-built (no real incident.io recording exists in the corpus): the shape
/// incident.io's Statuspage-compatible `summary.json` documents — no `group`
/// flags, `null` lists, `group_id: null`, an incident with a local offset.
#[test]
fn incident_io_style_body() {
    let body = r#"{
      "page": {"id": "01HXYZ", "name": "OpenAI", "url": "https://status.openai.com", "time_zone": null, "updated_at": "2024-06-04T10:01:02.345Z"},
      "status": {"indicator": "major", "description": "Partial System Outage"},
      "components": [
        {"id": "01A", "name": "API", "status": "partial_outage", "group_id": null, "position": 1, "description": null},
        {"id": "01B", "name": "ChatGPT", "status": "operational"},
        {"id": "01C", "name": "Sora", "status": "degraded_performance", "group_id": null}
      ],
      "incidents": [
        {"id": "01INC", "name": "Elevated errors on API", "status": "investigating", "impact": "major",
         "created_at": "2024-06-04T09:58:00.000+02:00", "started_at": null,
         "incident_updates": null, "components": null}
      ],
      "scheduled_maintenances": null
    }"#;
    let snap = parse_str(body).expect("incident.io body parses");
    assert_eq!(snap.page, Severity::PartialOutage);
    assert_eq!(snap.components.len(), 3);
    assert!(snap.components.iter().all(|c| c.group().is_empty()));
    assert_eq!(component(&snap, "01A").status, Severity::PartialOutage);
    assert_eq!(snap.incidents.len(), 1);
    assert_eq!(snap.incidents[0].impact, Impact::Major);
    // started_at null → created_at 09:58+02:00 = 07:58Z.
    assert_close(snap.incidents[0].started, 1_717_487_880.0);
    assert_eq!(snap.maintenances_active, 0);
    assert_eq!(snap.next_maintenance_start, None);

    // incident.io may also answer with no components at all.
    let snap = parse_str(
        r#"{"page":{"id":"x"},"status":{"indicator":"none"},"components":[],"incidents":null,"scheduled_maintenances":null}"#,
    )
    .expect("ok");
    assert!(snap.components.is_empty());
    assert_eq!(snap.page, Severity::Operational);
}

#[test]
fn utf16le_with_bom_parses_like_utf8() {
    for name in [
        "twilio-summary-incidents-and-scheduled-maintenances.json",
        "duo-components.json",
    ] {
        let utf8 = fixture(name);
        let expected = parse(&utf8, &cfg()).expect("utf-8");
        let utf16 = utf16le_with_bom(&utf8);
        assert_eq!(parse(&utf16, &cfg()).expect("utf-16le"), expected, "{name}");
    }
}

#[test]
fn utf16_without_bom_and_utf8_bom_parse() {
    let utf8 = fixture("github-components-with-problem.json");
    let expected = parse(&utf8, &cfg()).expect("utf-8");

    let text = std::str::from_utf8(&utf8).expect("utf-8");
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(parse(&be, &cfg()).expect("utf-16be"), expected);
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(parse(&le, &cfg()).expect("utf-16le"), expected);

    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&utf8);
    assert_eq!(parse(&bom, &cfg()).expect("utf-8 bom"), expected);

    let mut broken = vec![0xFF, 0xFE];
    broken.extend_from_slice(&[0x00, 0xD8, b'{', 0x00]); // lone surrogate
    assert_eq!(
        parse(&broken, &cfg()).expect_err("bad utf-16").reason,
        Reason::Decode
    );
}

#[test]
fn unknown_component_status_is_code_zero_and_counted() {
    let snap = parse_str(
        r#"{"page":{},"components":[
            {"id":"a","name":"A","status":"operational"},
            {"id":"b","name":"B","status":"on_fire"}
        ]}"#,
    )
    .expect("unknown words never fail the probe");
    assert_eq!(component(&snap, "b").status.code(), 0);
    assert_eq!(snap.unknown_values, vec![("component_status", 1)]);
    assert_eq!(
        snap.page,
        Severity::Operational,
        "unknown does not raise the page"
    );
}

#[test]
fn unknown_indicator_and_impact_are_counted() {
    let snap = parse_str(
        r#"{"page":{},"components":[{"id":"a","name":"A","status":"major_outage"}],
            "status":{"indicator":"apocalyptic"},
            "incidents":[{"id":"i","name":"I","status":"investigating","impact":"huge"}]}"#,
    )
    .expect("ok");
    assert_eq!(
        snap.page,
        Severity::Unknown,
        "the provider's indicator wins"
    );
    assert_eq!(unknown(&snap, "page_indicator"), 1);
    assert_eq!(snap.incidents[0].impact, Impact::None);
    assert_eq!(unknown(&snap, "incident_impact"), 1);
    assert_eq!(snap.incidents[0].started, None);
}

#[test]
fn indicator_wins_over_components() {
    let snap = parse_str(
        r#"{"page":{},"status":{"indicator":"none"},
            "components":[{"id":"a","name":"A","status":"major_outage"}]}"#,
    )
    .expect("ok");
    assert_eq!(snap.page, Severity::Operational);
}

#[test]
fn lenient_items_strings_numbers_duplicates() {
    let snap = parse_str(
        r#"{"page":{"id":1},"components":[
            {"id":"g","name":"Europe","status":"partial_outage","group":"true","position":"1","components":["c1","c2"]},
            {"id":"c1","name":"API","status":"partial_outage","position":"3"},
            {"id":"c2","name":"API","status":"OPERATIONAL","group_id":"g"},
            {"id":"c1","name":"API duplicate","status":"major_outage"},
            {"id":7,"name":"Numeric id","status":"operational"},
            {"name":"no id","status":"major_outage"},
            null, 3, "x", [],
            {"id":"lonely","status":null}
        ],
        "incidents":[
            {"id":"r","name":"done","status":"resolved","impact":"major"},
            {"id":"p","name":"post","status":"postmortem","impact":"major"},
            {"id":"o","name":"open","status":"Identified","impact":"maintenance","started_at":"garbage","created_at":"2021-12-10T19:52:52.123-05:00"},
            {"id":"o","name":"open again","status":"identified","impact":"minor"},
            null
        ],
        "scheduled_maintenances":[
            {"id":"m1","status":"in_progress","scheduled_for":"2030-01-01T00:00:00Z"},
            {"id":"m2","status":"verifying"},
            {"id":"m3","status":"scheduled","scheduled_for":"2030-01-02T00:00:00+01:00"},
            {"id":"m4","status":"scheduled","scheduled_for":"not a date"},
            {"id":"m5","status":"completed","scheduled_for":"2000-01-01T00:00:00Z"},
            {"id":"m3","status":"in_progress"}
        ]}"#,
    )
    .expect("lenient body parses");

    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    assert_eq!(
        ids,
        ["c1", "c2", "7", "lonely"],
        "group row, id-less and dup rows dropped"
    );
    assert_eq!(
        component(&snap, "c1").name(),
        "API",
        "first row of a duplicated id wins"
    );
    assert_eq!(
        component(&snap, "c1").group(),
        "Europe",
        "via the group's components list"
    );
    assert_eq!(component(&snap, "c2").group(), "Europe", "via group_id");
    assert_eq!(component(&snap, "c2").status, Severity::Operational);
    assert_eq!(component(&snap, "lonely").name(), "lonely");
    assert_eq!(component(&snap, "lonely").status, Severity::Unknown);
    assert_eq!(unknown(&snap, "component_status"), 1);
    assert_eq!(
        snap.page,
        Severity::PartialOutage,
        "worst exported component"
    );

    assert_eq!(snap.incidents.len(), 1);
    let inc = &snap.incidents[0];
    assert_eq!(
        (inc.name.as_str(), inc.status.as_str()),
        ("open", "identified")
    );
    assert_eq!(inc.impact, Impact::Maintenance);
    assert_close(inc.started, 1_639_183_972.123);

    assert_eq!(snap.maintenances_active, 2);
    assert_close(snap.next_maintenance_start, 1_893_538_800.0);
}

#[test]
fn group_without_flag_found_by_group_id() {
    let snap = parse_str(
        r#"{"page":{},"components":[
            {"id":"parent","name":"US","status":"degraded_performance"},
            {"id":"child","name":"Web","status":"degraded_performance","group_id":"parent"},
            {"id":"dangling","name":"Orphan","status":"operational","group_id":"nowhere"}
        ]}"#,
    )
    .expect("ok");
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id()).collect();
    assert_eq!(ids, ["child", "dangling"]);
    assert_eq!(component(&snap, "child").group(), "US");
    assert_eq!(component(&snap, "dangling").group(), "");
}

// ---------------------------------------------------------------------------
// Filters and cap

#[test]
fn exclude_by_name_regex_drops_github_pseudo_component() {
    let body = fixture("github-components.json");
    let snap = parse(&body, &cfg_with(&[], &["^Visit "], 1000)).expect("ok");
    assert_eq!(snap.components.len(), 9);
    assert!(
        snap.components
            .iter()
            .all(|c| !c.name().starts_with("Visit "))
    );
    assert!(snap.components.iter().all(|c| c.id() != "0l2p9nhqnxpd"));
}

#[test]
fn include_and_exclude_by_exact_id() {
    let body = fixture("github-components-with-problem.json");
    let only = parse(&body, &cfg_with(&["br0l2tvcx85d"], &[], 1000)).expect("ok");
    let ids: Vec<&str> = only.components.iter().map(|c| c.id()).collect();
    assert_eq!(ids, ["br0l2tvcx85d"]);
    assert_eq!(only.page, Severity::PartialOutage);

    let without = parse(&body, &cfg_with(&[], &["br0l2tvcx85d"], 1000)).expect("ok");
    assert_eq!(without.components.len(), 9);
    assert_eq!(
        without.page,
        Severity::Operational,
        "page of a components.json body = worst exported component"
    );
}

#[test]
fn include_by_name_regex() {
    let body = fixture("duo-components.json");
    let snap = parse(&body, &cfg_with(&["^Admin Panel$"], &[], 1000)).expect("ok");
    assert_eq!(snap.components.len(), 68);
    assert!(snap.components.iter().all(|c| c.name() == "Admin Panel"));
}

#[test]
fn max_components_caps_in_body_order() {
    let body = fixture("duo-components.json");
    let full = parse(&body, &cfg()).expect("ok");
    let capped = parse(&body, &cfg_with(&[], &[], 100)).expect("ok");
    assert_eq!(capped.components.len(), 100);
    assert_eq!(capped.components_capped, 370);
    assert_eq!(capped.components[..], full.components[..100]);

    let exact = parse(&body, &cfg_with(&[], &[], 470)).expect("ok");
    assert_eq!(exact.components_capped, 0);
}

// ---------------------------------------------------------------------------
// Never panic

fn json_ish() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "page",
        "components",
        "status",
        "indicator",
        "incidents",
        "scheduled_maintenances",
        "id",
        "name",
        "group",
        "group_id",
        "impact",
        "started_at",
        "created_at",
        "scheduled_for",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            "operational",
            "major_outage",
            "minor",
            "resolved",
            "in_progress",
            "scheduled",
            "2021-12-10T19:52:52.123-05:00",
            "a",
            "b",
            "",
        ])
        .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    });
    prop_oneof![
        value.clone().prop_map(|v| v.to_string()),
        value.prop_map(|v| {
            // Mostly valid bodies, so the deep paths get exercised.
            serde_json::json!({"page": {}, "components": v.clone(), "incidents": v.clone(),
                               "scheduled_maintenances": v.clone(), "status": v})
            .to_string()
        }),
        "[\\[\\]{}\":,0-9a-z_ .\\-]{0,128}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, &cfg());
    }

    #[test]
    fn json_ish_strings_never_panic(body in json_ish()) {
        let _ = parse(body.as_bytes(), &cfg_with(&[], &["a"], 2));
        let utf16: Vec<u8> = body.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let _ = parse(&utf16, &cfg());
    }

    #[test]
    fn mutated_real_body_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = fixture("twilio-summary-incidents-and-scheduled-maintenances.json");
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let _ = parse(&body, &cfg());
        let end = cut.index(body.len());
        let _ = parse(&body[..end], &cfg());
    }
}

/// Incident and maintenance status words outside Statuspage's vocabulary
/// are counted; such an incident stays open (it is listed among the
/// unresolved ones), such a maintenance is neither active nor next.
#[test]
fn unknown_incident_and_maintenance_statuses_are_counted() {
    let body = r#"{"page":{"id":"p"},"status":{"indicator":"minor"},"components":[],
        "incidents":[
          {"id":"i1","name":"New word","status":"weird","impact":"minor"},
          {"id":"i2","name":"No word","impact":"minor"},
          {"id":"i3","name":"Known","status":"monitoring","impact":"major"},
          {"id":"i4","name":"Over","status":"resolved","impact":"major"}],
        "scheduled_maintenances":[
          {"id":"m1","status":"unknownword","scheduled_for":"2030-01-01T00:00:00Z"},
          {"id":"m2","status":"completed","scheduled_for":"2020-01-01T00:00:00Z"},
          {"id":"m3","status":"scheduled","scheduled_for":"2031-01-01T00:00:00Z"},
          {"id":"m4","scheduled_for":"2029-01-01T00:00:00Z"}]}"#;
    let snap = parse_str(body).expect("parses");
    let open: Vec<(&str, &str)> = (snap.incidents.iter())
        .map(|i| (i.id.as_str(), i.status.as_str()))
        .collect();
    assert_eq!(
        open,
        [("i1", "weird"), ("i2", "unknown"), ("i3", "monitoring")]
    );
    assert_eq!(unknown(&snap, "incident_status"), 2);
    assert_eq!(unknown(&snap, "maintenance_status"), 2);
    assert_eq!(snap.maintenances_active, 0);
    assert_close(snap.next_maintenance_start, 1_924_992_000.0);
}
