//! Salesforce Trust API (`GET <base>/v1/instances/status/preview`, base
//! `https://api.status.salesforce.com` by default) turned into a
//! [`StatusSnapshot`].
//!
//! Body: a JSON list of instances `{"key": "NA137", "status":
//! "OK" | "INFORMATIONAL_*" | "MAINTENANCE_*" | "MINOR_INCIDENT_*" |
//! "MAJOR_INCIDENT_*", "isActive", "environment": "production" |
//! "sandbox", "Incidents": [...], "Maintenances": [...], …}` — 1,500+ of
//! them, so filter with `components: { include: [...] }` (exact instance
//! keys or name regexes) and mind `max_components`.
//!
//! - Components: one per instance, `id` = `name` = `key`, group =
//!   `environment` (or ""). Instances with `isActive: false` (retired
//!   pods) are not exported. OK and INFORMATIONAL_* 1, MAINTENANCE_* 2,
//!   MINOR_INCIDENT_* 3, MAJOR_INCIDENT_* 5; other words `unknown`.
//! - Page status: none given; the worst exported instance (capped ones
//!   included).
//! - Incidents: the `Incidents` of the instances the filter allows,
//!   deduplicated by `id`, but not one whose every `IncidentImpacts` entry
//!   has an `endTime` (it is over). Impact from the worst `IncidentImpacts[].severity`
//!   (minor, major, critical), else from the instance status (minor
//!   incident → minor, major incident → critical). Status `open`; started at the earliest impact `startTime`,
//!   else `createdAt`. Name: the first impact's `type` (Salesforce's
//!   incident messages are mostly null), else `externalId`, else the id.
//! - Maintenances: the `Maintenances` of the allowed instances,
//!   deduplicated by `id`. An allowed instance in a MAINTENANCE_* status
//!   (the provider's word) is in one of those it lists: the one planned
//!   first, which is active. Every other one's `plannedStartTime` competes
//!   for the next start (an instance under maintenance also lists the next
//!   one ahead).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::body::{
    decode_json_body, expect_list, finish_components, flag, items, join_path, keep_earliest,
    lookup, text, timestamp,
};
use super::{
    Component, Impact, Incident, ProbeContext, ProbeError, ProbeSuccess, Severity, StatusSnapshot,
};
use crate::config::ComponentFilter;

/// The public API every `salesforce:` block uses unless `url:` says otherwise.
pub const DEFAULT_BASE_URL: Option<&str> = Some("https://api.status.salesforce.com");

/// `unknown_values` field of an instance status outside the table.
pub const FIELD_COMPONENT_STATUS: &str = "component_status";
/// `unknown_values` field of an incident impact severity outside the table.
pub const FIELD_INCIDENT_IMPACT: &str = "incident_impact";

/// Validated `salesforce:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceConfig {
    /// Base URL of the API (default [`DEFAULT_BASE_URL`]).
    pub base_url: url::Url,
    pub components: ComponentFilter,
    pub max_components: usize,
}

impl SalesforceConfig {
    /// `<base>/v1/instances/status/preview`.
    pub fn url(&self) -> url::Url {
        join_path(&self.base_url, &["v1", "instances", "status", "preview"])
    }
}

/// Severity of an instance status word; `None` outside the table.
pub fn instance_severity(word: &str) -> Option<Severity> {
    let upper = word.trim().to_ascii_uppercase();
    let w = upper.as_str();
    if w == "OK" || w.starts_with("INFORMATIONAL_") || w == "INFORMATIONAL" {
        Some(Severity::Operational)
    } else if w.starts_with("MAINTENANCE_") || w == "MAINTENANCE" {
        Some(Severity::Maintenance)
    } else if w.starts_with("MINOR_INCIDENT_") || w == "MINOR_INCIDENT" {
        Some(Severity::Degraded)
    } else if w.starts_with("MAJOR_INCIDENT_") || w == "MAJOR_INCIDENT" {
        Some(Severity::MajorOutage)
    } else {
        None
    }
}

const IMPACT_WORDS: [(&str, Impact); 3] = [
    ("minor", Impact::Minor),
    ("major", Impact::Major),
    ("critical", Impact::Critical),
];

/// Fetch the instances preview and parse it.
pub async fn probe(
    ctx: &ProbeContext<'_>,
    cfg: &SalesforceConfig,
) -> Result<ProbeSuccess, ProbeError> {
    ctx.fetch_status(&cfg.url(), |body| parse(body, cfg)).await
}

/// Parse one instances preview body. Never panics, whatever the bytes.
pub fn parse(body: &[u8], cfg: &SalesforceConfig) -> Result<StatusSnapshot, ProbeError> {
    let value = decode_json_body(body)?;
    let list = expect_list(&value, "a Salesforce instances status preview body")?;

    let mut snap = StatusSnapshot::default();
    // Allowed instances (filter only, cap not applied) with their severity.
    let mut allowed: Vec<(&Map<String, Value>, Severity)> = Vec::new();
    let mut seen_keys: HashSet<&str> = HashSet::with_capacity(list.len());
    for row in list {
        let Value::Object(row) = row else { continue };
        if flag(row.get("isActive")) == Some(false) {
            continue;
        }
        let Some(key) = row.get("key").and_then(Value::as_str).map(str::trim) else {
            continue;
        };
        if key.is_empty() || !seen_keys.insert(key) {
            continue;
        }
        let status = match text(row.get("status")).and_then(|w| instance_severity(&w)) {
            Some(sev) => sev,
            None => {
                snap.count_unknown(FIELD_COMPONENT_STATUS);
                Severity::Unknown
            }
        };
        if cfg.components.allows(key, key) {
            allowed.push((row, status));
        }
        let environment = text(row.get("environment")).unwrap_or_default();
        snap.components
            .push(Component::new(key, key, &environment, status));
    }
    snap.page = finish_components(&mut snap, &cfg.components, cfg.max_components);

    for (row, status) in &allowed {
        for incident in items(row.get("Incidents")) {
            let Value::Object(incident) = incident else {
                continue;
            };
            push_incident(incident, *status, &mut snap);
        }
    }
    maintenances(&allowed, &mut snap);
    Ok(snap)
}

fn push_incident(incident: &Map<String, Value>, instance: Severity, snap: &mut StatusSnapshot) {
    let Some(id) = text(incident.get("id")) else {
        return;
    };
    if snap.incidents.iter().any(|known| known.id == id) {
        return;
    }
    let impacts: Vec<&Map<String, Value>> = items(incident.get("IncidentImpacts"))
        .iter()
        .filter_map(Value::as_object)
        .collect();
    // Every impact with an end: Salesforce says it is over.
    if !impacts.is_empty()
        && impacts
            .iter()
            .all(|i| timestamp(i.get("endTime")).is_some())
    {
        return;
    }
    let mut impact: Option<Impact> = None;
    for i in &impacts {
        let Some(word) = text(i.get("severity")) else {
            continue;
        };
        match lookup(&IMPACT_WORDS, &word) {
            Some(found) => impact = Some(impact.map_or(found, |cur| cur.max(found))),
            None => snap.count_unknown(FIELD_INCIDENT_IMPACT),
        }
    }
    let impact = impact.unwrap_or(match instance {
        Severity::Degraded => Impact::Minor,
        Severity::MajorOutage => Impact::Critical,
        _ => Impact::None,
    });
    let started = impacts
        .iter()
        .filter_map(|i| timestamp(i.get("startTime")))
        .reduce(f64::min)
        .or_else(|| timestamp(incident.get("createdAt")));
    let name = impacts
        .first()
        .and_then(|i| text(i.get("type")))
        .or_else(|| text(incident.get("externalId")))
        .unwrap_or_else(|| id.clone())
        .into_owned();
    snap.incidents.push(Incident {
        name,
        id: id.into_owned(),
        impact,
        status: "open".to_owned(),
        started,
    });
}

fn maintenances(allowed: &[(&Map<String, Value>, Severity)], snap: &mut StatusSnapshot) {
    // id → (active, planned start)
    let mut found: HashMap<String, (bool, Option<f64>)> = HashMap::new();
    for (row, status) in allowed {
        let listed: Vec<(String, Option<f64>)> = items(row.get("Maintenances"))
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|m| {
                let id = text(m.get("id"))?;
                Some((id.into_owned(), timestamp(m.get("plannedStartTime"))))
            })
            .collect();
        // An instance in maintenance is in one of them: the one planned
        // first (a later one, next month's patch, is still ahead). The
        // body's words decide, not the clock, so a snapshot kept for an
        // unchanged body stays right.
        let under_way = listed
            .iter()
            .filter(|_| *status == Severity::Maintenance)
            .min_by(|a, b| planned_order(a.1, b.1))
            .map(|(id, _)| id.as_str());
        for (id, start) in &listed {
            let entry = found.entry(id.clone()).or_insert((false, *start));
            entry.0 |= under_way == Some(id.as_str());
        }
    }
    for (active, start) in found.into_values() {
        if active {
            snap.maintenances_active = snap.maintenances_active.saturating_add(1);
        } else if let Some(start) = start {
            keep_earliest(&mut snap.next_maintenance_start, start);
        }
    }
}

/// Planned starts in order, a maintenance without one first (nothing says
/// it is still ahead).
fn planned_order(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}
