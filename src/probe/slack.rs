//! Slack Status API v2.0.0 (`GET <base>/api/v2.0.0/current`, base
//! `https://slack-status.com` by default) turned into a [`StatusSnapshot`].
//!
//! Body: `{"status": "ok" | "active", "date_created", "date_updated",
//! "active_incidents": [{"id", "date_created", "date_updated", "title",
//! "type": "incident" | "outage" | "notice" | "maintenance", "status",
//! "url", "services": [...], "notes": [...]}]}`.
//!
//! - Components: one per Slack service of [`SERVICES`] (the fixed list
//!   Slack's status page shows), always exported so series are stable, plus
//!   any other service an active item names (appended in the order seen).
//!   `id` = the service name slugged (`Apps/Integrations/APIs` →
//!   `apps-integrations-apis`), name = the service name, group "".
//! - A service's severity is the worst over the in-progress items naming it:
//!   `outage` 5, `incident` 4, `notice` 3, `maintenance` 2; services no item
//!   names are operational. An item of an unknown type counts in
//!   `incident_type`; a service only such items name is `unknown` (0).
//! - Page status: Slack gives no overall severity (`status` only says
//!   ok/active), so the worst exported component; `ok` with no items is
//!   operational whatever the filter. Any other `status` word is counted
//!   (`page_status`) and makes the page `unknown` (0): the one word that
//!   says all is well is not there. A body with such a word and no
//!   `active_incidents` at all (`{"status": "error", "message": …}`) is
//!   not a status body: reason `schema`.
//! - Incidents: in-progress items of type outage (critical), incident
//!   (major), notice (minor) and of unknown type (none). Items of type
//!   `maintenance` are maintenances (SPEC: maintenances are not incidents):
//!   in progress they count in `maintenances_active`; Slack gives no start
//!   time for scheduled ones, so there is no next start.
//! - An item is in progress unless its `status` is scheduled, resolved,
//!   completed or closed.

use serde_json::{Map, Value};

use super::body::{
    decode_json_body, expect_object, finish_components, is_one_of, items, join_path, list_field,
    lookup, schema_error, slug, text, timestamp,
};
use super::{
    Component, Impact, Incident, ProbeContext, ProbeError, ProbeSuccess, Severity, StatusSnapshot,
};
use crate::config::ComponentFilter;

/// The public API every `slack:` block uses unless `url:` says otherwise.
pub const DEFAULT_BASE_URL: Option<&str> = Some("https://slack-status.com");

/// The services Slack's status page lists, in its order.
pub const SERVICES: [&str; 11] = [
    "Login/SSO",
    "Messaging",
    "Notifications",
    "Search",
    "Workspace/Org Administration",
    "Canvases",
    "Connectivity",
    "Files",
    "Huddles",
    "Apps/Integrations/APIs",
    "Workflows",
];

/// `unknown_values` field of an item `type` outside the table.
pub const FIELD_INCIDENT_TYPE: &str = "incident_type";
/// `unknown_values` field of a top-level `status` other than ok/active.
pub const FIELD_PAGE_STATUS: &str = "page_status";

/// Validated `slack:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackConfig {
    /// Base URL of the API (default [`DEFAULT_BASE_URL`]).
    pub base_url: url::Url,
    pub components: ComponentFilter,
    pub max_components: usize,
}

impl SlackConfig {
    /// `<base>/api/v2.0.0/current`.
    pub fn url(&self) -> url::Url {
        join_path(&self.base_url, &["api", "v2.0.0", "current"])
    }
}

const TYPE_SEVERITY: [(&str, Severity); 4] = [
    ("outage", Severity::MajorOutage),
    ("incident", Severity::PartialOutage),
    ("notice", Severity::Degraded),
    ("maintenance", Severity::Maintenance),
];

const NOT_IN_PROGRESS: [&str; 4] = ["scheduled", "resolved", "completed", "closed"];

/// Fetch `current` and parse it.
pub async fn probe(ctx: &ProbeContext<'_>, cfg: &SlackConfig) -> Result<ProbeSuccess, ProbeError> {
    ctx.fetch_status(&cfg.url(), |body| parse(body, cfg)).await
}

/// Parse one `current` body. Never panics, whatever the bytes.
pub fn parse(body: &[u8], cfg: &SlackConfig) -> Result<StatusSnapshot, ProbeError> {
    let value = decode_json_body(body)?;
    let top = expect_object(&value, "a Slack status body")?;
    let Some(status) = text(top.get("status")) else {
        return Err(schema_error(
            "no `status` string: not a Slack status API body",
        ));
    };
    let active = list_field(top, "active_incidents")?;
    let all_ok = status.eq_ignore_ascii_case("ok");
    let known_word = all_ok || status.eq_ignore_ascii_case("active");
    if !known_word && !top.contains_key("active_incidents") {
        return Err(schema_error(format!(
            "`status` is {status:?} and there is no `active_incidents`: not a Slack status API body"
        )));
    }

    let mut snap = StatusSnapshot::default();
    if !known_word {
        snap.count_unknown(FIELD_PAGE_STATUS);
    }

    // (id, service name, worst severity of the items naming it)
    let mut services: Vec<(String, String, Option<Severity>)> = SERVICES
        .iter()
        .map(|s| (slug(s), (*s).to_owned(), None))
        .collect();
    let mut any_item = false;
    for item in active {
        let Value::Object(item) = item else { continue };
        let word = text(item.get("status"));
        if word
            .as_deref()
            .is_some_and(|w| is_one_of(&NOT_IN_PROGRESS, w))
        {
            continue;
        }
        any_item = true;
        let kind = text(item.get("type"));
        let severity = match kind.as_deref().and_then(|k| lookup(&TYPE_SEVERITY, k)) {
            Some(sev) => sev,
            None => {
                snap.count_unknown(FIELD_INCIDENT_TYPE);
                Severity::Unknown
            }
        };
        for name in items(item.get("services")) {
            // Service names are strings; anything else is not a service.
            let Some(name) = name.as_str().map(str::trim).filter(|n| !n.is_empty()) else {
                continue;
            };
            let key = slug(name);
            if key.is_empty() {
                continue;
            }
            let index = match services.iter().position(|(k, _, _)| *k == key) {
                Some(i) => i,
                None => {
                    services.push((key, name.to_owned(), None));
                    services.len() - 1
                }
            };
            if let Some((_, _, worst)) = services.get_mut(index) {
                *worst = Some(match *worst {
                    Some(current) => Severity::worst([current, severity]),
                    None => severity,
                });
            }
        }
        if severity == Severity::Maintenance {
            snap.maintenances_active = snap.maintenances_active.saturating_add(1);
        } else {
            push_incident(item, severity, word.as_deref(), &mut snap);
        }
    }

    snap.components = services
        .into_iter()
        .map(|(id, name, severity)| {
            Component::new(&id, &name, "", severity.unwrap_or(Severity::Operational))
        })
        .collect();
    let worst = finish_components(&mut snap, &cfg.components, cfg.max_components);
    snap.page = if !known_word {
        Severity::Unknown
    } else if all_ok && !any_item {
        Severity::Operational
    } else {
        worst
    };
    Ok(snap)
}

fn push_incident(
    item: &Map<String, Value>,
    severity: Severity,
    status: Option<&str>,
    snap: &mut StatusSnapshot,
) {
    let Some(id) = text(item.get("id")).or_else(|| text(item.get("url"))) else {
        return;
    };
    if snap.incidents.iter().any(|known| known.id == id) {
        return;
    }
    let impact = match severity {
        Severity::MajorOutage => Impact::Critical,
        Severity::PartialOutage => Impact::Major,
        Severity::Degraded => Impact::Minor,
        Severity::Maintenance => Impact::Maintenance,
        _ => Impact::None,
    };
    snap.incidents.push(Incident {
        name: text(item.get("title"))
            .unwrap_or_else(|| id.clone())
            .into_owned(),
        id: id.into_owned(),
        impact,
        status: status.map_or_else(|| "active".to_owned(), str::to_lowercase),
        started: timestamp(item.get("date_created")),
    });
}
