//! Heroku status API v4 (`GET <base>/api/v4/current-status`, base
//! `https://status.heroku.com` by default) turned into a [`StatusSnapshot`].
//!
//! Body: `{"status": [{"system": "Apps" | "Data" | "Tools", "status":
//! "green" | "blue" | "yellow" | "red"}], "incidents": [...], "scheduled":
//! [...]}`; incidents and scheduled entries are `{"id", "title",
//! "created_at", "resolved", "state"?, "upcoming"?, "status_dev"?,
//! "status_prod"?, "updates": [{"update_type", "status_dev", "status_prod",
//! "created_at", …}]}`.
//!
//! - Components: one per system, `id` = `name` = the system name, group "".
//!   green 1, blue 2 (maintenance), yellow 3, red 5; other words `unknown`.
//! - Page status: Heroku gives no overall value; the worst exported system.
//! - Incidents: entries of `incidents` not resolved (`resolved: true`, or a
//!   `state` of resolved/closed, closes one). Impact from the worst of
//!   `status_prod`/`status_dev` of its latest update, else of the entry
//!   (whose own colours can lag behind the updates): red critical, yellow
//!   minor, blue maintenance, green none. Status word:
//!   `state`, else the latest update's `update_type`. Started `created_at`.
//! - Maintenance: entries of `scheduled` not resolved; active when the
//!   provider no longer calls them `upcoming` (or its latest update is of
//!   type `maintenance`); upcoming ones give the next start from
//!   `scheduled_for`/`starts_at` when the API includes one.

use serde_json::{Map, Value};

use super::body::{
    decode_json_body, expect_object, finish_components, flag, is_one_of, items, join_path,
    keep_earliest, list_field, lookup, schema_error, text, timestamp,
};
use super::{
    Component, Impact, Incident, ProbeContext, ProbeError, ProbeSuccess, Severity, StatusSnapshot,
};
use crate::config::ComponentFilter;

/// The public API every `heroku:` block uses unless `url:` says otherwise.
pub const DEFAULT_BASE_URL: Option<&str> = Some("https://status.heroku.com");

/// `unknown_values` field of a system colour outside the table.
pub const FIELD_COMPONENT_STATUS: &str = "component_status";
/// `unknown_values` field of an incident colour outside the table.
pub const FIELD_INCIDENT_IMPACT: &str = "incident_impact";

/// Validated `heroku:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct HerokuConfig {
    /// Base URL of the API (default [`DEFAULT_BASE_URL`]).
    pub base_url: url::Url,
    pub components: ComponentFilter,
    pub max_components: usize,
}

impl HerokuConfig {
    /// `<base>/api/v4/current-status`.
    pub fn url(&self) -> url::Url {
        join_path(&self.base_url, &["api", "v4", "current-status"])
    }
}

const COLOURS: [(&str, Severity); 4] = [
    ("green", Severity::Operational),
    ("blue", Severity::Maintenance),
    ("yellow", Severity::Degraded),
    ("red", Severity::MajorOutage),
];

const CLOSED_WORDS: [&str; 3] = ["resolved", "closed", "completed"];

/// Severity of a Heroku colour; `None` for other words.
pub fn colour_severity(word: &str) -> Option<Severity> {
    lookup(&COLOURS, word)
}

/// Fetch `current-status` and parse it.
pub async fn probe(ctx: &ProbeContext<'_>, cfg: &HerokuConfig) -> Result<ProbeSuccess, ProbeError> {
    ctx.fetch_status(&cfg.url(), |body| parse(body, cfg)).await
}

/// Parse one `current-status` body. Never panics, whatever the bytes.
pub fn parse(body: &[u8], cfg: &HerokuConfig) -> Result<StatusSnapshot, ProbeError> {
    let value = decode_json_body(body)?;
    let top = expect_object(&value, "a Heroku current-status body")?;
    if !top.contains_key("status") {
        return Err(schema_error(
            "no `status` list: not a Heroku current-status body",
        ));
    }
    let systems = list_field(top, "status")?;
    let incidents = list_field(top, "incidents")?;
    let scheduled = list_field(top, "scheduled")?;

    let mut snap = StatusSnapshot::default();
    for row in systems {
        let Value::Object(row) = row else { continue };
        let Some(name) = text(row.get("system")).or_else(|| text(row.get("name"))) else {
            continue;
        };
        let status = match text(row.get("status")).and_then(|w| colour_severity(&w)) {
            Some(sev) => sev,
            None => {
                snap.count_unknown(FIELD_COMPONENT_STATUS);
                Severity::Unknown
            }
        };
        snap.components
            .push(Component::new(&name, &name, "", status));
    }
    snap.page = finish_components(&mut snap, &cfg.components, cfg.max_components);

    for item in incidents {
        let Value::Object(item) = item else { continue };
        if !is_closed(item) {
            push_incident(item, &mut snap);
        }
    }
    let mut seen: Vec<String> = Vec::new();
    for item in scheduled {
        let Value::Object(item) = item else { continue };
        if is_closed(item) {
            continue;
        }
        if let Some(id) = text(item.get("id")) {
            if seen.iter().any(|s| *s == id) {
                continue;
            }
            seen.push(id.into_owned());
        }
        let latest_is_maintenance = latest_update(item)
            .and_then(|u| text(u.get("update_type")))
            .is_some_and(|t| t.eq_ignore_ascii_case("maintenance"));
        let active = match flag(item.get("upcoming")) {
            Some(upcoming) => !upcoming || latest_is_maintenance,
            // No flag (or not a boolean): only an update saying the work
            // is under way makes it active, not the announcement alone.
            None => latest_is_maintenance,
        };
        if active {
            snap.maintenances_active = snap.maintenances_active.saturating_add(1);
        } else if let Some(start) =
            timestamp(item.get("scheduled_for")).or_else(|| timestamp(item.get("starts_at")))
        {
            keep_earliest(&mut snap.next_maintenance_start, start);
        }
    }
    Ok(snap)
}

fn is_closed(item: &Map<String, Value>) -> bool {
    flag(item.get("resolved")) == Some(true)
        || text(item.get("state")).is_some_and(|s| is_one_of(&CLOSED_WORDS, &s))
}

/// The update with the latest `created_at` (body order breaks ties and
/// stands in for missing times).
fn latest_update(item: &Map<String, Value>) -> Option<&Map<String, Value>> {
    items(item.get("updates"))
        .iter()
        .filter_map(Value::as_object)
        .fold(None::<(&Map<String, Value>, f64)>, |best, u| {
            let t = timestamp(u.get("created_at")).unwrap_or(f64::MIN);
            match best {
                Some((_, bt)) if bt >= t => best,
                _ => Some((u, t)),
            }
        })
        .map(|(u, _)| u)
}

fn colours_severity(obj: &Map<String, Value>, snap: &mut StatusSnapshot) -> Option<Severity> {
    let mut found = None;
    for key in ["status_prod", "status_dev"] {
        if let Some(word) = text(obj.get(key)) {
            let sev = colour_severity(&word).unwrap_or_else(|| {
                snap.count_unknown(FIELD_INCIDENT_IMPACT);
                Severity::Unknown
            });
            found = Some(match found {
                Some(current) => Severity::worst([current, sev]),
                None => sev,
            });
        }
    }
    found
}

fn push_incident(item: &Map<String, Value>, snap: &mut StatusSnapshot) {
    let Some(id) = text(item.get("id")) else {
        return;
    };
    if snap.incidents.iter().any(|known| known.id == id) {
        return;
    }
    let latest = latest_update(item);
    // The latest update says how things stand now; the entry's own colours
    // can lag behind it (a resolved maintenance still reads `blue` at the
    // top), so they only stand in when no update has colours.
    let severity = match latest.and_then(|u| colours_severity(u, snap)) {
        Some(sev) => Some(sev),
        None => colours_severity(item, snap),
    };
    let impact = match severity {
        Some(Severity::MajorOutage | Severity::PartialOutage) => Impact::Critical,
        Some(Severity::Degraded) => Impact::Minor,
        Some(Severity::Maintenance) => Impact::Maintenance,
        _ => Impact::None,
    };
    let status = text(item.get("state"))
        .or_else(|| latest.and_then(|u| text(u.get("update_type"))))
        .map_or_else(|| "unknown".to_owned(), |s| s.to_lowercase());
    snap.incidents.push(Incident {
        name: text(item.get("title"))
            .unwrap_or_else(|| id.clone())
            .into_owned(),
        id: id.into_owned(),
        impact,
        status,
        started: timestamp(item.get("created_at")),
    });
}
