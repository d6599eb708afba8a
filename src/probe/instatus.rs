//! Instatus public status pages: `<url>/summary.json` (page status, active
//! incidents and maintenances) and `<url>/components.json` (components),
//! turned into a [`StatusSnapshot`].
//!
//! Documented shapes (instatus.com/help/api/public-data and the components
//! API reference; no real recorded body was available):
//!
//! - `summary.json`: `{"page": {"name", "url", "status": "UP" | "HASISSUES" |
//!   "UNDERMAINTENANCE"}, "activeIncidents": [{"id"?, "name", "started",
//!   "status", "impact", "url"}], "activeMaintenances": [{"id"?, "name",
//!   "start", "status": "NOTSTARTEDYET" | "INPROGRESS" | "COMPLETED",
//!   "duration", "url"}]}`. Dates are ISO 8601 or JavaScript
//!   `Date.toString()` strings (`Sat Jun 11 2022 18:55:50 GMT+0000
//!   (Coordinated Universal Time)`); both are read.
//! - `components.json`: a list of components, or `{"components": [...]}`.
//!   A component is `{"id", "name", "status", "group"?, "isParent"?,
//!   "children"?, "parentId"?}`. Parent rows (flagged `isParent`, listing
//!   `children`, or referenced by another row's `parentId`/`group`) are
//!   exported only as the `group` label of their children; `group` may also
//!   be an object `{"id", "name"}` or a group name.
//!
//! Mapping: component OPERATIONAL 1, UNDERMAINTENANCE 2, DEGRADEDPERFORMANCE
//! 3, PARTIALOUTAGE 4, MINOROUTAGE 4 (documented by Instatus, not in the SPEC
//! table; it sits between partial and major), MAJOROUTAGE 5. Page: UP 1,
//! UNDERMAINTENANCE 2, HASISSUES = the worst of the exported components and
//! the active incidents' impacts, at least degraded (3) — Instatus says
//! "something is wrong" without saying how badly. Component words as a page
//! status are accepted too. Incident impact: DEGRADEDPERFORMANCE minor,
//! PARTIALOUTAGE/MINOROUTAGE major, MAJOROUTAGE critical, UNDERMAINTENANCE
//! maintenance, OPERATIONAL none. Incidents with status RESOLVED are not
//! open. Maintenances INPROGRESS are active; the earliest `start` of the
//! NOTSTARTEDYET ones is the next start. Without an `id`, an incident's id
//! is the last path segment of its `url` (`…/incident/<id>`).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::body::{
    decode_json_body, expect_object, finish_components, is_one_of, items, join_path, keep_earliest,
    list_field, lookup, object_field, schema_error, success, text, timestamp,
};
use super::{
    Component, Impact, Incident, ProbeContext, ProbeError, ProbeSuccess, Severity, StatusSnapshot,
};
use crate::config::ComponentFilter;

/// Instatus pages have no common API host: `url:` is required.
pub const DEFAULT_BASE_URL: Option<&str> = None;

/// `unknown_values` field of a component status word outside the table.
pub const FIELD_COMPONENT_STATUS: &str = "component_status";
/// `unknown_values` field of a `page.status` word outside the table.
pub const FIELD_PAGE_STATUS: &str = "page_status";
/// `unknown_values` field of an incident `impact` word outside the table.
pub const FIELD_INCIDENT_IMPACT: &str = "incident_impact";

/// Validated `instatus:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct InstatusConfig {
    /// The status page's own URL (`https://status.example.com`).
    pub base_url: url::Url,
    pub components: ComponentFilter,
    pub max_components: usize,
}

impl InstatusConfig {
    /// `<url>/summary.json`.
    pub fn summary_url(&self) -> url::Url {
        join_path(&self.base_url, &["summary.json"])
    }

    /// `<url>/components.json`.
    pub fn components_url(&self) -> url::Url {
        join_path(&self.base_url, &["components.json"])
    }
}

const COMPONENT_WORDS: [(&str, Severity); 6] = [
    ("OPERATIONAL", Severity::Operational),
    ("UNDERMAINTENANCE", Severity::Maintenance),
    ("DEGRADEDPERFORMANCE", Severity::Degraded),
    ("PARTIALOUTAGE", Severity::PartialOutage),
    ("MINOROUTAGE", Severity::PartialOutage),
    ("MAJOROUTAGE", Severity::MajorOutage),
];

const IMPACT_WORDS: [(&str, Impact); 6] = [
    ("OPERATIONAL", Impact::None),
    ("UNDERMAINTENANCE", Impact::Maintenance),
    ("DEGRADEDPERFORMANCE", Impact::Minor),
    ("PARTIALOUTAGE", Impact::Major),
    ("MINOROUTAGE", Impact::Major),
    ("MAJOROUTAGE", Impact::Critical),
];

const CLOSED_INCIDENT_WORDS: [&str; 1] = ["RESOLVED"];
const ACTIVE_MAINTENANCE_WORDS: [&str; 1] = ["INPROGRESS"];
const UPCOMING_MAINTENANCE_WORDS: [&str; 1] = ["NOTSTARTEDYET"];

/// Severity of an Instatus component status word; `None` for other words.
pub fn component_severity(word: &str) -> Option<Severity> {
    lookup(&COMPONENT_WORDS, word)
}

/// Fetch `summary.json` and `components.json` and parse them.
pub async fn probe(
    ctx: &ProbeContext<'_>,
    cfg: &InstatusConfig,
) -> Result<ProbeSuccess, ProbeError> {
    let summary = ctx.get(&cfg.summary_url()).await?;
    let components = ctx.get(&cfg.components_url()).await?;
    let snapshot = parse(&summary.body, &components.body, cfg)
        .map_err(|e| e.with_status(components.status))?;
    Ok(success(components.status, snapshot.shared()))
}

/// Parse a `summary.json` body and a `components.json` body. Never panics.
pub fn parse(
    summary: &[u8],
    components: &[u8],
    cfg: &InstatusConfig,
) -> Result<StatusSnapshot, ProbeError> {
    let summary = decode_json_body(summary)?;
    let summary = expect_object(&summary, "an Instatus summary.json body")?;
    let page = object_field(summary, "page")?
        .ok_or_else(|| schema_error("no `page` object: not an Instatus summary.json body"))?;
    let incidents = list_field(summary, "activeIncidents")?;
    let maintenances = list_field(summary, "activeMaintenances")?;

    let components = decode_json_body(components)?;
    let rows: &[Value] = match &components {
        Value::Array(rows) => rows,
        Value::Object(map) if map.contains_key("components") => list_field(map, "components")?,
        other => {
            return Err(schema_error(format!(
                "expected an Instatus components.json body (a list, or an object with \
                 `components`), got {}",
                super::body::kind(other)
            )));
        }
    };

    let mut snap = StatusSnapshot::default();
    collect_components(rows, &mut snap);
    let worst = finish_components(&mut snap, &cfg.components, cfg.max_components);
    open_incidents(incidents, &mut snap);
    snap.page = page_status(page, worst, &mut snap);
    active_maintenances(maintenances, &mut snap);
    Ok(snap)
}

fn page_status(page: &Map<String, Value>, worst: Severity, snap: &mut StatusSnapshot) -> Severity {
    let Some(word) = text(page.get("status")) else {
        return worst;
    };
    if word.eq_ignore_ascii_case("UP") {
        return Severity::Operational;
    }
    if word.eq_ignore_ascii_case("HASISSUES") {
        let incidents = snap.incidents.iter().map(|i| impact_severity(i.impact));
        let observed = Severity::worst(incidents.chain([worst]));
        return observed.max(Severity::Degraded);
    }
    match component_severity(&word) {
        Some(sev) => sev,
        None => {
            snap.count_unknown(FIELD_PAGE_STATUS);
            Severity::Unknown
        }
    }
}

fn impact_severity(impact: Impact) -> Severity {
    match impact {
        Impact::None => Severity::Unknown,
        Impact::Maintenance => Severity::Maintenance,
        Impact::Minor => Severity::Degraded,
        Impact::Major => Severity::PartialOutage,
        Impact::Critical => Severity::MajorOutage,
    }
}

/// Id of a row: `id`, or `_id`.
fn row_id(row: &Map<String, Value>) -> Option<String> {
    text(row.get("id"))
        .or_else(|| text(row.get("_id")))
        .map(|s| s.into_owned())
}

/// The group a row names: `group` as an object (`{id, name}`) or a string
/// (a group id or name), or `parentId` / `groupId`.
enum GroupRef {
    None,
    Named { id: Option<String>, name: String },
    Id(String),
}

fn group_ref(row: &Map<String, Value>) -> GroupRef {
    match row.get("group") {
        Some(Value::Object(g)) => {
            let id = row_id(g);
            match text(g.get("name")) {
                Some(name) => GroupRef::Named {
                    id,
                    name: name.into_owned(),
                },
                None => id.map_or(GroupRef::None, GroupRef::Id),
            }
        }
        Some(v @ Value::String(_)) => {
            text(Some(v)).map_or(GroupRef::None, |s| GroupRef::Id(s.into_owned()))
        }
        _ => text(row.get("parentId"))
            .or_else(|| text(row.get("groupId")))
            .map_or(GroupRef::None, |s| GroupRef::Id(s.into_owned())),
    }
}

fn collect_components(rows: &[Value], snap: &mut StatusSnapshot) {
    // Flatten nested `children` one level at a time (bounded depth), noting
    // the parent's name for each child.
    let mut flat: Vec<(&Map<String, Value>, Option<String>)> = Vec::new();
    let mut level: Vec<(&Map<String, Value>, Option<String>)> = rows
        .iter()
        .filter_map(Value::as_object)
        .map(|row| (row, None))
        .collect();
    for _depth in 0..4 {
        let mut next = Vec::new();
        for (row, parent) in level {
            let children = items(row.get("children"));
            if !children.is_empty() {
                let name = text(row.get("name")).map(|s| s.into_owned());
                next.extend(
                    children
                        .iter()
                        .filter_map(Value::as_object)
                        .map(|c| (c, name.clone())),
                );
            }
            flat.push((row, parent));
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }

    // Rows that are groups: flagged, listing children, or referenced by id.
    let referenced: HashSet<String> = flat
        .iter()
        .filter_map(|(row, _)| match group_ref(row) {
            GroupRef::Id(id) => Some(id),
            GroupRef::Named { id, .. } => id,
            GroupRef::None => None,
        })
        .collect();
    let mut names: HashMap<String, String> = HashMap::with_capacity(flat.len());
    for (row, _) in &flat {
        if let (Some(id), Some(name)) = (row_id(row), text(row.get("name"))) {
            names.entry(id).or_insert_with(|| name.into_owned());
        }
    }

    for (row, parent) in &flat {
        let Some(id) = row_id(row) else { continue };
        let is_group = super::body::flag(row.get("isParent")) == Some(true)
            || !items(row.get("children")).is_empty()
            || referenced.contains(&id);
        if is_group {
            continue;
        }
        let group = match (parent, group_ref(row)) {
            (Some(parent), _) => parent.clone(),
            (None, GroupRef::Named { name, .. }) => name,
            // A string that is another row's id names that row; else it is
            // the group's name itself.
            (None, GroupRef::Id(g)) => names.get(&g).cloned().unwrap_or(g),
            (None, GroupRef::None) => String::new(),
        };
        let status = match text(row.get("status")).and_then(|w| component_severity(&w)) {
            Some(sev) => sev,
            None => {
                snap.count_unknown(FIELD_COMPONENT_STATUS);
                Severity::Unknown
            }
        };
        let name = text(row.get("name"));
        let name = name.as_deref().unwrap_or(&id);
        snap.components
            .push(Component::new(&id, name, &group, status));
    }
}

/// Last non-empty path segment of a URL string.
fn id_from_url(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').find(|s| !s.is_empty()).map(str::to_owned)
}

fn open_incidents(list: &[Value], snap: &mut StatusSnapshot) {
    for item in list {
        let Value::Object(inc) = item else { continue };
        let status = text(inc.get("status"));
        if status
            .as_deref()
            .is_some_and(|s| is_one_of(&CLOSED_INCIDENT_WORDS, s))
        {
            continue;
        }
        let Some(id) = row_id(inc)
            .or_else(|| text(inc.get("url")).and_then(|u| id_from_url(&u)))
            .or_else(|| text(inc.get("name")).map(|s| s.into_owned()))
        else {
            continue;
        };
        if snap.incidents.iter().any(|known| known.id == id) {
            continue;
        }
        let impact = match text(inc.get("impact")) {
            None => Impact::None,
            Some(word) => lookup(&IMPACT_WORDS, &word).unwrap_or_else(|| {
                snap.count_unknown(FIELD_INCIDENT_IMPACT);
                Impact::None
            }),
        };
        snap.incidents.push(Incident {
            name: text(inc.get("name")).map_or_else(|| id.clone(), |s| s.into_owned()),
            id,
            impact,
            status: status.map_or_else(|| "unknown".to_owned(), |s| s.to_lowercase()),
            started: timestamp(inc.get("started")),
        });
    }
}

fn active_maintenances(list: &[Value], snap: &mut StatusSnapshot) {
    let mut seen: Vec<String> = Vec::new();
    for item in list {
        let Value::Object(m) = item else { continue };
        if let Some(id) = row_id(m).or_else(|| text(m.get("url")).and_then(|u| id_from_url(&u))) {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
        }
        let Some(status) = text(m.get("status")) else {
            continue;
        };
        if is_one_of(&ACTIVE_MAINTENANCE_WORDS, &status) {
            snap.maintenances_active = snap.maintenances_active.saturating_add(1);
        } else if is_one_of(&UPCOMING_MAINTENANCE_WORDS, &status)
            && let Some(start) = timestamp(m.get("start"))
        {
            keep_earliest(&mut snap.next_maintenance_start, start);
        }
    }
}
