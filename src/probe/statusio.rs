//! status.io public status API (`GET <base>/1.0/status/<page_id>`, base
//! `https://api.status.io` by default) turned into a [`StatusSnapshot`].
//!
//! Body shape: `{"result": {"status_overall": {...}, "status": [...],
//! "incidents": [...], "maintenance": {"active": [...], "upcoming": [...]}}}`.
//!
//! - Severity codes (overall, component, container): 100 operational,
//!   200 maintenance, 300 degraded, 400 partial outage, 500 major outage,
//!   600 security issue (→ major outage). Other codes are `unknown` and
//!   counted (`component_status` / `page_status`).
//! - status.io has no per-region component ids: one component per
//!   component × container, `id` = `<component id>/<container id>`, name =
//!   the component name, group = the container name. A component listed
//!   without containers is exported once with its own id and code.
//! - Page status: `status_overall.status_code` wins (even when every
//!   component is operational); without it, the worst exported component.
//! - Incidents: every entry of `result.incidents` (status.io lists open ones
//!   only). Status word from the latest message's `state` (100
//!   investigating, 200 identified, 300 monitoring), impact from its
//!   `status` code (100 none, 200 maintenance, 300 minor, 400 major,
//!   500/600 critical), start from `datetime_open`.
//! - Maintenance: `maintenance.active` is the active count (the provider
//!   says so, not the clock); the earliest `datetime_planned_start` of
//!   `maintenance.upcoming` is the next start.
//!
//! Fails with `decode` for non-JSON/HTML, `schema` when there is no `result`
//! object or neither `status_overall` nor `status` in it, or when one of
//! those has the wrong type.

use serde_json::{Map, Value};

use super::body::{
    decode_json_body, expect_object, finish_components, int, items, join_path, keep_earliest,
    list_field, object_field, schema_error, text, timestamp,
};
use super::{
    Component, Impact, Incident, ProbeContext, ProbeError, ProbeSuccess, Severity, StatusSnapshot,
};
use crate::config::ComponentFilter;

/// The public API every `statusio:` block uses unless `url:` says otherwise.
pub const DEFAULT_BASE_URL: Option<&str> = Some("https://api.status.io");

/// `unknown_values` field of a component or container code outside the table.
pub const FIELD_COMPONENT_STATUS: &str = "component_status";
/// `unknown_values` field of a `status_overall.status_code` outside the table.
pub const FIELD_PAGE_STATUS: &str = "page_status";
/// `unknown_values` field of an incident message `status` code outside the table.
pub const FIELD_INCIDENT_IMPACT: &str = "incident_impact";
/// `unknown_values` field of an incident message `state` code outside the
/// table (the incident's status label is then `unknown`).
pub const FIELD_INCIDENT_STATE: &str = "incident_state";

/// Validated `statusio:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusioConfig {
    /// Base URL of the API (default [`DEFAULT_BASE_URL`]).
    pub base_url: url::Url,
    /// The status page id (Docker: `533c6539221ae15e3f000031`).
    pub page_id: String,
    pub components: ComponentFilter,
    pub max_components: usize,
}

impl StatusioConfig {
    /// `<base>/1.0/status/<page_id>`.
    pub fn url(&self) -> url::Url {
        join_path(&self.base_url, &["1.0", "status", &self.page_id])
    }
}

/// Severity of a status.io status code (100 … 600); `None` for other codes.
pub fn code_severity(code: i64) -> Option<Severity> {
    match code {
        100 => Some(Severity::Operational),
        200 => Some(Severity::Maintenance),
        300 => Some(Severity::Degraded),
        400 => Some(Severity::PartialOutage),
        500 | 600 => Some(Severity::MajorOutage),
        _ => None,
    }
}

/// Fetch the page's status and parse it.
pub async fn probe(
    ctx: &ProbeContext<'_>,
    cfg: &StatusioConfig,
) -> Result<ProbeSuccess, ProbeError> {
    ctx.fetch_status(&cfg.url(), |body| parse(body, cfg)).await
}

/// Parse one status.io status body. Never panics, whatever the bytes.
pub fn parse(body: &[u8], cfg: &StatusioConfig) -> Result<StatusSnapshot, ProbeError> {
    let value = decode_json_body(body)?;
    let top = expect_object(&value, "a status.io status body")?;
    let result = object_field(top, "result")?
        .ok_or_else(|| schema_error("no `result` object: not a status.io status body"))?;
    let overall = object_field(result, "status_overall")?;
    if overall.is_none() && !result.contains_key("status") {
        return Err(schema_error(
            "neither `result.status_overall` nor `result.status`: not a status.io status body",
        ));
    }
    let rows = list_field(result, "status")?;
    let incidents = list_field(result, "incidents")?;
    let maintenance = object_field(result, "maintenance")?;

    let mut snap = StatusSnapshot::default();
    components(rows, &mut snap);
    let worst = finish_components(&mut snap, &cfg.components, cfg.max_components);
    snap.page = match overall
        .and_then(|o| o.get("status_code"))
        .filter(|v| !v.is_null())
    {
        None => worst,
        Some(v) => match int(Some(v)).and_then(code_severity) {
            Some(sev) => sev,
            None => {
                snap.count_unknown(FIELD_PAGE_STATUS);
                Severity::Unknown
            }
        },
    };
    open_incidents(incidents, &mut snap);
    if let Some(m) = maintenance {
        maintenances(m, &mut snap);
    }
    Ok(snap)
}

fn severity_of(row: &Map<String, Value>, snap: &mut StatusSnapshot) -> Severity {
    match int(row.get("status_code")).and_then(code_severity) {
        Some(sev) => sev,
        None => {
            snap.count_unknown(FIELD_COMPONENT_STATUS);
            Severity::Unknown
        }
    }
}

fn components(rows: &[Value], snap: &mut StatusSnapshot) {
    for row in rows {
        let Value::Object(row) = row else { continue };
        let Some(id) = text(row.get("id")).or_else(|| text(row.get("_id"))) else {
            continue;
        };
        let name = text(row.get("name")).unwrap_or_else(|| id.clone());
        let containers = items(row.get("containers"));
        let mut exported_one = false;
        for container in containers {
            let Value::Object(container) = container else {
                continue;
            };
            let Some(cid) = text(container.get("id")).or_else(|| text(container.get("_id"))) else {
                continue;
            };
            let status = severity_of(container, snap);
            let container_name = text(container.get("name")).unwrap_or_default();
            snap.components.push(Component::new(
                &format!("{id}/{cid}"),
                &name,
                &container_name,
                status,
            ));
            exported_one = true;
        }
        if !exported_one {
            let status = severity_of(row, snap);
            snap.components.push(Component::new(&id, &name, "", status));
        }
    }
}

/// Incident `state` codes of status.io messages; `None` for other codes.
fn state_word(code: i64) -> Option<&'static str> {
    match code {
        100 => Some("investigating"),
        200 => Some("identified"),
        300 => Some("monitoring"),
        _ => None,
    }
}

fn impact_of(code: i64) -> Option<Impact> {
    match code {
        100 => Some(Impact::None),
        200 => Some(Impact::Maintenance),
        300 => Some(Impact::Minor),
        400 => Some(Impact::Major),
        500 | 600 => Some(Impact::Critical),
        _ => None,
    }
}

fn open_incidents(list: &[Value], snap: &mut StatusSnapshot) {
    for item in list {
        let Value::Object(inc) = item else { continue };
        let Some(id) = text(inc.get("_id")).or_else(|| text(inc.get("id"))) else {
            continue;
        };
        if snap.incidents.iter().any(|known| known.id == id) {
            continue;
        }
        // The latest message (by its datetime; body order breaks ties).
        let latest = items(inc.get("messages"))
            .iter()
            .filter_map(Value::as_object)
            .fold(None::<(&Map<String, Value>, f64)>, |best, m| {
                let t = timestamp(m.get("datetime")).unwrap_or(f64::MIN);
                match best {
                    Some((_, bt)) if bt > t => best,
                    _ => Some((m, t)),
                }
            })
            .map(|(m, _)| m);
        let impact = match latest.map(|m| int(m.get("status"))) {
            None | Some(None) => Impact::None,
            Some(Some(code)) => impact_of(code).unwrap_or_else(|| {
                snap.count_unknown(FIELD_INCIDENT_IMPACT);
                Impact::None
            }),
        };
        let status = match latest.map(|m| int(m.get("state"))) {
            // No message, or one without a state: nothing to map.
            None | Some(None) => "unknown",
            Some(Some(code)) => state_word(code).unwrap_or_else(|| {
                snap.count_unknown(FIELD_INCIDENT_STATE);
                "unknown"
            }),
        }
        .to_owned();
        snap.incidents.push(Incident {
            name: text(inc.get("name"))
                .unwrap_or_else(|| id.clone())
                .into_owned(),
            id: id.into_owned(),
            impact,
            status,
            started: timestamp(inc.get("datetime_open")),
        });
    }
}

fn maintenances(m: &Map<String, Value>, snap: &mut StatusSnapshot) {
    let mut seen: Vec<String> = Vec::new();
    for item in items(m.get("active")) {
        let Value::Object(item) = item else { continue };
        if let Some(id) = text(item.get("_id")).or_else(|| text(item.get("id"))) {
            if seen.iter().any(|s| *s == id) {
                continue;
            }
            seen.push(id.into_owned());
        }
        snap.maintenances_active = snap.maintenances_active.saturating_add(1);
    }
    for item in items(m.get("upcoming")) {
        let Value::Object(item) = item else { continue };
        if let Some(start) = timestamp(item.get("datetime_planned_start")) {
            keep_earliest(&mut snap.next_maintenance_start, start);
        }
    }
}
