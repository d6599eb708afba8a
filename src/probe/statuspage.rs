//! Atlassian Statuspage v2 bodies (`summary.json`, `components.json`), and the
//! Statuspage-compatible API that incident.io serves, turned into a
//! [`StatusSnapshot`].
//!
//! [`parse`] is a pure function of the body bytes and the target's
//! `statuspage:` config; the daemon, the fuzzers and the benchmarks all call
//! it. It is on the hot path (thousands of bodies a second with many targets),
//! so the body is deserialised in one pass into lenient structs that borrow
//! their strings from the body wherever JSON escapes allow, and only the
//! exported values are copied into owned strings.
//!
//! What is tolerated (SPEC §3, "Rules learned"): a UTF-8 BOM, UTF-16 LE/BE
//! bodies (BOM or NUL-byte pattern), `null` where a list is expected, missing
//! keys inside items, numbers where strings are expected (and strings where
//! booleans are), timestamps with local offsets, items of a list that are not
//! objects (skipped), duplicate component ids (the first row wins).
//!
//! What fails the probe: a body that is not JSON (reason `decode`, with a
//! pointed message when the upstream answered HTML), and JSON of another
//! shape: not an object, no `page` object, no `components` key, or a
//! top-level field of the wrong type (reason `schema`). Unknown enum words
//! never fail the probe: they map to `unknown` / `none` and are counted in
//! [`StatusSnapshot::unknown_values`].
//!
//! "An empty component list on a page that had components is `schema`" needs
//! the previous answer, so the runner checks it, not this parser.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::body::{decode_text, is_one_of, json_error, lookup, schema_error as schema};
use super::{Component, Impact, Incident, ProbeError, Severity, StatusSnapshot};

/// Statuspage timestamps (RFC 3339 with `Z` or a local offset) are read by the
/// one timestamp parser every prober shares.
pub use super::body::parse_timestamp;
use crate::config::StatuspageConfig;

/// `unknown_values` field name for a component status word that is not mapped.
pub const FIELD_COMPONENT_STATUS: &str = "component_status";
/// `unknown_values` field name for a page `status.indicator` word that is not mapped.
pub const FIELD_PAGE_INDICATOR: &str = "page_indicator";
/// `unknown_values` field name for an incident `impact` word that is not mapped.
pub const FIELD_INCIDENT_IMPACT: &str = "incident_impact";
/// `unknown_values` field name for an incident `status` word that is neither
/// open nor closed in Statuspage's vocabulary (the incident stays open).
pub const FIELD_INCIDENT_STATUS: &str = "incident_status";
/// `unknown_values` field name for a maintenance `status` word outside
/// Statuspage's vocabulary (the maintenance is neither active nor next).
pub const FIELD_MAINTENANCE_STATUS: &str = "maintenance_status";

const COMPONENT_WORDS: [(&str, Severity); 5] = [
    ("operational", Severity::Operational),
    ("under_maintenance", Severity::Maintenance),
    ("degraded_performance", Severity::Degraded),
    ("partial_outage", Severity::PartialOutage),
    ("major_outage", Severity::MajorOutage),
];

const INDICATOR_WORDS: [(&str, Severity); 5] = [
    ("none", Severity::Operational),
    ("maintenance", Severity::Maintenance),
    ("minor", Severity::Degraded),
    ("major", Severity::PartialOutage),
    ("critical", Severity::MajorOutage),
];

const IMPACT_WORDS: [(&str, Impact); 5] = [
    ("none", Impact::None),
    ("minor", Impact::Minor),
    ("major", Impact::Major),
    ("critical", Impact::Critical),
    ("maintenance", Impact::Maintenance),
];

/// Incident statuses that mean "no longer open".
const CLOSED_INCIDENT_WORDS: [&str; 3] = ["resolved", "postmortem", "completed"];
/// Incident statuses of an open incident.
const OPEN_INCIDENT_WORDS: [&str; 3] = ["investigating", "identified", "monitoring"];
/// Maintenance statuses that are neither active nor upcoming.
const ENDED_MAINTENANCE_WORDS: [&str; 1] = ["completed"];
/// Maintenance statuses that mean "active now" (the provider's word, not the clock).
const ACTIVE_MAINTENANCE_WORDS: [&str; 2] = ["in_progress", "verifying"];
/// Maintenance status of an upcoming maintenance.
const SCHEDULED_MAINTENANCE_WORD: &str = "scheduled";

/// Severity of a component `status` word (`operational` … `major_outage`);
/// `None` for words outside the Statuspage vocabulary. Case-insensitive.
pub fn component_severity(word: &str) -> Option<Severity> {
    lookup(&COMPONENT_WORDS, word)
}

/// Severity of a page `status.indicator` word (`none`, `maintenance`,
/// `minor`, `major`, `critical`); `None` for other words. Case-insensitive.
pub fn indicator_severity(word: &str) -> Option<Severity> {
    lookup(&INDICATOR_WORDS, word)
}

/// Impact of an incident `impact` word; `None` for other words. Case-insensitive.
pub fn incident_impact(word: &str) -> Option<Impact> {
    lookup(&IMPACT_WORDS, word)
}

/// Parse one Statuspage v2 body (`summary.json` or `components.json` shape)
/// into a snapshot, applying the target's component filter and cap.
///
/// Never panics, whatever the bytes. Errors are reason `decode` (not JSON,
/// HTML, bad UTF-16) or `schema` (JSON of another shape).
pub fn parse(body: &[u8], cfg: &StatuspageConfig) -> Result<StatusSnapshot, ProbeError> {
    let text = decode_text(body)?;
    let top: Obj<RawSummary<'_>> = serde_json::from_slice(&text).map_err(json_error)?;
    let summary = match top {
        Obj::Object(s) => s,
        other => {
            return Err(schema(format!(
                "expected a JSON object with `page` and `components`, got {}",
                other.describe()
            )));
        }
    };
    check_shape(&summary)?;

    let mut snap = StatusSnapshot::default();
    let worst = components(&summary, cfg, &mut snap);
    snap.page = page_status(&summary.status, worst, &mut snap);
    incidents(&summary, &mut snap);
    maintenances(&summary, &mut snap);
    Ok(snap)
}

// ---------------------------------------------------------------------------
// Decoding

fn check_shape(s: &RawSummary<'_>) -> Result<(), ProbeError> {
    match &s.page {
        Obj::Object(_) => {}
        Obj::Missing => {
            return Err(schema(
                "no `page` object: not a Statuspage v2 summary/components body",
            ));
        }
        other => {
            return Err(schema(format!(
                "`page` is {}, expected an object",
                other.describe()
            )));
        }
    }
    if !s.components.present {
        return Err(schema(
            "no `components` key: not a Statuspage v2 summary/components body",
        ));
    }
    if let Some(kind) = s.components.wrong {
        return Err(schema(format!("`components` is {kind}, expected a list")));
    }
    if let Obj::Other(kind) = s.status {
        return Err(schema(format!("`status` is {kind}, expected an object")));
    }
    if let Some(kind) = s.incidents.wrong {
        return Err(schema(format!("`incidents` is {kind}, expected a list")));
    }
    if let Some(kind) = s.scheduled_maintenances.wrong {
        return Err(schema(format!(
            "`scheduled_maintenances` is {kind}, expected a list"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Building the snapshot

/// Fill `snap.components` and return the worst severity of the components
/// that pass the filter (capped ones included: the cap bounds series, not
/// what the page status considers).
fn components(s: &RawSummary<'_>, cfg: &StatuspageConfig, snap: &mut StatusSnapshot) -> Severity {
    let items = &s.components.items;

    // Rows with an id, first occurrence of each id only, in body order.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    let mut rows: Vec<(&str, &RawComponent<'_>)> = Vec::with_capacity(items.len());
    for item in items {
        let Obj::Object(row) = item else { continue };
        let Some(id) = row.id.as_str().filter(|id| !id.is_empty()) else {
            continue;
        };
        if let Entry::Vacant(slot) = index.entry(id) {
            slot.insert(rows.len());
            rows.push((id, row));
        }
    }

    // Group rows: flagged, referenced by another row's `group_id`, or listing
    // children. `group_of[i]` is the group row of row `i`.
    let mut is_group = vec![false; rows.len()];
    let mut group_of: Vec<Option<usize>> = vec![None; rows.len()];
    for (i, (_, row)) in rows.iter().enumerate() {
        if row.group.0 || row.child_ids().next().is_some() {
            is_group[i] = true;
        }
        if let Some(g) = row.group_id.as_str().and_then(|g| index.get(g)).copied()
            && g != i
        {
            is_group[g] = true;
            group_of[i] = Some(g);
        }
    }
    for (g, (_, row)) in rows.iter().enumerate() {
        for child in row.child_ids() {
            if let Some(c) = index.get(child).copied()
                && c != g
                && group_of[c].is_none()
            {
                group_of[c] = Some(g);
            }
        }
    }

    snap.set_listed(is_group.iter().filter(|group| !**group).count());
    let mut worst = Severity::Unknown;
    for (i, (id, row)) in rows.iter().enumerate() {
        if is_group[i] {
            continue;
        }
        let name = row.name.as_str().unwrap_or(id);
        if !cfg.components.allows(id, name) {
            continue;
        }
        let status = match row.status.word().and_then(component_severity) {
            Some(sev) => sev,
            None => {
                snap.count_unknown(FIELD_COMPONENT_STATUS);
                Severity::Unknown
            }
        };
        worst = Severity::worst([worst, status]);
        if snap.components.len() >= cfg.max_components {
            snap.components_capped += 1;
            continue;
        }
        let group = group_of[i]
            .and_then(|g| rows.get(g))
            .map(|(gid, grow)| grow.name.as_str().unwrap_or(gid))
            .unwrap_or("");
        snap.components
            .push(Component::new(id, name, group, status));
    }
    worst
}

/// The provider's indicator wins; without one, the worst exported component.
fn page_status(
    status: &Obj<RawStatus<'_>>,
    worst: Severity,
    snap: &mut StatusSnapshot,
) -> Severity {
    let Obj::Object(status) = status else {
        return worst;
    };
    let Some(word) = status.indicator.word() else {
        return worst;
    };
    match indicator_severity(word) {
        Some(sev) => sev,
        None => {
            snap.count_unknown(FIELD_PAGE_INDICATOR);
            Severity::Unknown
        }
    }
}

fn incidents(s: &RawSummary<'_>, snap: &mut StatusSnapshot) {
    for item in &s.incidents.items {
        let Obj::Object(inc) = item else { continue };
        let Some(id) = inc.id.as_str().filter(|id| !id.is_empty()) else {
            continue;
        };
        let status = inc.status.word();
        if status.is_some_and(|w| is_one_of(&CLOSED_INCIDENT_WORDS, w)) {
            continue;
        }
        if snap.incidents.iter().any(|known| known.id == id) {
            continue;
        }
        // A word of neither kind: listed among the unresolved incidents, so
        // open, but counted (a vendor's new vocabulary shows).
        if !status.is_some_and(|w| is_one_of(&OPEN_INCIDENT_WORDS, w)) {
            snap.count_unknown(FIELD_INCIDENT_STATUS);
        }
        let impact = match inc.impact.word().and_then(incident_impact) {
            Some(impact) => impact,
            None => {
                snap.count_unknown(FIELD_INCIDENT_IMPACT);
                Impact::None
            }
        };
        let started = inc
            .started_at
            .as_str()
            .and_then(parse_timestamp)
            .or_else(|| inc.created_at.as_str().and_then(parse_timestamp));
        snap.incidents.push(Incident {
            id: id.to_owned(),
            name: inc.name.as_str().unwrap_or(id).to_owned(),
            impact,
            status: status.map_or_else(|| "unknown".to_owned(), str::to_lowercase),
            started,
        });
    }
}

fn maintenances(s: &RawSummary<'_>, snap: &mut StatusSnapshot) {
    let mut seen: Vec<&str> = Vec::new();
    for item in &s.scheduled_maintenances.items {
        let Obj::Object(m) = item else { continue };
        if let Some(id) = m.id.as_str().filter(|id| !id.is_empty()) {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
        }
        let Some(status) = m.status.word() else {
            snap.count_unknown(FIELD_MAINTENANCE_STATUS);
            continue;
        };
        let active = is_one_of(&ACTIVE_MAINTENANCE_WORDS, status);
        let scheduled = status.eq_ignore_ascii_case(SCHEDULED_MAINTENANCE_WORD);
        if !(active || scheduled || is_one_of(&ENDED_MAINTENANCE_WORDS, status)) {
            snap.count_unknown(FIELD_MAINTENANCE_STATUS);
        }
        if active {
            snap.maintenances_active = snap.maintenances_active.saturating_add(1);
        } else if scheduled && let Some(start) = m.scheduled_for.as_str().and_then(parse_timestamp)
        {
            snap.next_maintenance_start = Some(match snap.next_maintenance_start {
                Some(next) => next.min(start),
                None => start,
            });
        }
    }
}

// ---------------------------------------------------------------------------
// Lenient serde structs. Every field type accepts any JSON value, so the only
// data error left is a duplicate key within one object.

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSummary<'a> {
    page: Obj<IgnoredObject>,
    #[serde(borrow)]
    components: List<Obj<RawComponent<'a>>>,
    #[serde(borrow)]
    status: Obj<RawStatus<'a>>,
    #[serde(borrow)]
    incidents: List<Obj<RawIncident<'a>>>,
    #[serde(borrow)]
    scheduled_maintenances: List<Obj<RawMaintenance<'a>>>,
}

/// An object whose content is not needed (`page`).
#[derive(Deserialize, Default)]
struct IgnoredObject {}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawComponent<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    status: Text<'a>,
    group: Flag,
    #[serde(borrow)]
    group_id: Text<'a>,
    /// Child component ids of a group row.
    #[serde(borrow)]
    components: List<Text<'a>>,
}

impl RawComponent<'_> {
    fn child_ids(&self) -> impl Iterator<Item = &str> {
        self.components
            .items
            .iter()
            .filter_map(Text::as_str)
            .filter(|id| !id.is_empty())
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawStatus<'a> {
    #[serde(borrow)]
    indicator: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawIncident<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    status: Text<'a>,
    #[serde(borrow)]
    impact: Text<'a>,
    #[serde(borrow)]
    started_at: Text<'a>,
    #[serde(borrow)]
    created_at: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMaintenance<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    status: Text<'a>,
    #[serde(borrow)]
    scheduled_for: Text<'a>,
}

/// A string, borrowed from the body when it has no escapes. Numbers and
/// booleans are kept as their JSON text; `null`, objects and arrays are absent.
#[derive(Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl Text<'_> {
    fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The value as an enum word: trimmed, absent when empty.
    fn word(&self) -> Option<&str> {
        self.as_str().map(str::trim).filter(|w| !w.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor(PhantomData))
    }
}

struct TextVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(if v { "true" } else { "false" }))))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(Text(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(Text(None))
    }
}

/// A boolean that also accepts `"true"`, `"1"` and non-zero numbers.
#[derive(Default)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FlagVisitor)
    }
}

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = Flag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Flag, E> {
        Ok(Flag(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Flag, E> {
        let v = v.trim();
        Ok(Flag(v.eq_ignore_ascii_case("true") || v == "1"))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Flag, E> {
        Ok(Flag(v != 0))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Flag, E> {
        Ok(Flag(v != 0))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Flag, E> {
        Ok(Flag(v != 0.0))
    }
    fn visit_unit<E>(self) -> Result<Flag, E> {
        Ok(Flag(false))
    }
    fn visit_none<E>(self) -> Result<Flag, E> {
        Ok(Flag(false))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Flag, A::Error> {
        drain_map(map)?;
        Ok(Flag(false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Flag, A::Error> {
        drain_seq(seq)?;
        Ok(Flag(false))
    }
}

/// A list field: `null` is an empty list; any other non-list value is
/// recorded in `wrong` (for a schema error) instead of failing the parse.
struct List<T> {
    items: Vec<T>,
    /// The key was in the object (even as `null`).
    present: bool,
    /// What the value was when it was not a list or `null`.
    wrong: Option<&'static str>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            items: Vec::new(),
            present: false,
            wrong: None,
        }
    }
}

impl<T> List<T> {
    fn present() -> Self {
        List {
            present: true,
            ..List::default()
        }
    }

    fn wrong(kind: &'static str) -> Self {
        List {
            wrong: Some(kind),
            ..List::present()
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
        let mut list = List::present();
        list.items.reserve(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            list.items.push(item);
        }
        Ok(list)
    }
    fn visit_unit<E>(self) -> Result<List<T>, E> {
        Ok(List::present())
    }
    fn visit_none<E>(self) -> Result<List<T>, E> {
        Ok(List::present())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
        drain_map(map)?;
        Ok(List::wrong(KIND_OBJECT))
    }
    fn visit_bool<E>(self, _: bool) -> Result<List<T>, E> {
        Ok(List::wrong(KIND_BOOL))
    }
    fn visit_i64<E>(self, _: i64) -> Result<List<T>, E> {
        Ok(List::wrong(KIND_NUMBER))
    }
    fn visit_u64<E>(self, _: u64) -> Result<List<T>, E> {
        Ok(List::wrong(KIND_NUMBER))
    }
    fn visit_f64<E>(self, _: f64) -> Result<List<T>, E> {
        Ok(List::wrong(KIND_NUMBER))
    }
    fn visit_str<E>(self, _: &str) -> Result<List<T>, E> {
        Ok(List::wrong(KIND_STRING))
    }
}

/// An object field: the object deserialised as `T`, or what was there instead.
#[derive(Default)]
enum Obj<T> {
    #[default]
    Missing,
    Null,
    Object(T),
    Other(&'static str),
}

impl<T> Obj<T> {
    fn describe(&self) -> &'static str {
        match self {
            Obj::Missing => "nothing",
            Obj::Null => "null",
            Obj::Object(_) => KIND_OBJECT,
            Obj::Other(kind) => kind,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Obj::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
        drain_seq(seq)?;
        Ok(Obj::Other(KIND_ARRAY))
    }
    fn visit_unit<E>(self) -> Result<Obj<T>, E> {
        Ok(Obj::Null)
    }
    fn visit_none<E>(self) -> Result<Obj<T>, E> {
        Ok(Obj::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Obj<T>, E> {
        Ok(Obj::Other(KIND_BOOL))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Obj<T>, E> {
        Ok(Obj::Other(KIND_NUMBER))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Obj<T>, E> {
        Ok(Obj::Other(KIND_NUMBER))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Obj<T>, E> {
        Ok(Obj::Other(KIND_NUMBER))
    }
    fn visit_str<E>(self, _: &str) -> Result<Obj<T>, E> {
        Ok(Obj::Other(KIND_STRING))
    }
}

const KIND_OBJECT: &str = "an object";
const KIND_ARRAY: &str = "an array";
const KIND_STRING: &str = "a string";
const KIND_NUMBER: &str = "a number";
const KIND_BOOL: &str = "a boolean";

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_offsets_and_z() {
        assert_eq!(
            parse_timestamp("2020-06-16T23:00:00Z"),
            Some(1_592_348_400.0)
        );
        assert_eq!(
            parse_timestamp("2020-06-16T16:00:00.000-07:00"),
            Some(1_592_348_400.0)
        );
        let t = parse_timestamp("2021-12-10T19:52:52.123-05:00").unwrap_or_default();
        assert!((t - 1_639_183_972.123).abs() < 1e-3, "{t}");
        assert_eq!(
            parse_timestamp("2020-06-16T23:00:00"),
            Some(1_592_348_400.0)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp(""), None);
    }

    #[test]
    fn word_tables_are_case_insensitive() {
        assert_eq!(
            component_severity(" Major_Outage "),
            Some(Severity::MajorOutage)
        );
        assert_eq!(indicator_severity("NONE"), Some(Severity::Operational));
        assert_eq!(incident_impact("Critical"), Some(Impact::Critical));
        assert_eq!(component_severity("down"), None);
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let body = br#"{"id":"abc","name":"caf\u00e9","status":3,"group":"true"}"#;
        let row: RawComponent<'_> = serde_json::from_slice(body).unwrap_or_default();
        assert!(matches!(row.id.0, Some(Cow::Borrowed("abc"))));
        assert!(matches!(row.name.0.as_deref(), Some("café")));
        assert!(matches!(row.name.0, Some(Cow::Owned(_))));
        assert_eq!(row.status.as_str(), Some("3"));
        assert!(row.group.0);
    }
}
