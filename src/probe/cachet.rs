//! Cachet 2.x API v1 (`<url>/api/v1/components`, `<url>/api/v1/components/groups`,
//! `<url>/api/v1/incidents`), every page followed, turned into a
//! [`StatusSnapshot`].
//!
//! Each endpoint answers `{"meta": {"pagination": {"current_page",
//! "total_pages", "links": {"next_page", …}, …}}, "data": [...]}`. Pages are
//! followed while `links.next_page` is set or `current_page < total_pages`,
//! at most [`MAX_PAGES`] per endpoint. The next page is requested by setting
//! `page=N` on our own URL; the upstream's `next_page` link is only read as
//! "there is more" and never fetched as given, so an upstream cannot send
//! the exporter to another host or scheme. Requests ask for `per_page=100`
//! (fewer round trips; Cachet ignores it where unsupported) and incidents
//! newest first (`sort=id&order=desc`).
//!
//! - Components: `status` 1 operational, 2 degraded (performance issues),
//!   3 partial outage, 4 major outage; anything else (0, 5, words) is
//!   `unknown` and counted. Cachet has no maintenance status for
//!   components. Rows with `enabled: false` are not exported. Identity is
//!   the numeric id: names repeat across groups (Yoti has "Yoti Doc Scan"
//!   twice) and stay separate series.
//! - Group label: the name of the component group `group_id` points at,
//!   from `/api/v1/components/groups` (all pages). A Cachet that answers 404
//!   there has no groups API: labels are "". Group id 0 or an unknown id → "".
//! - Page status: Cachet has no overall status; the worst exported component.
//! - Incidents: status 1 investigating, 2 identified, 3 watching are open;
//!   4 fixed is not. Impact follows the current status of the incident's
//!   `component_id` (degraded → minor, partial → major, major outage →
//!   critical, otherwise none). Started: `occurred_at`, else `created_at`.
//! - Maintenance: incidents with status 0 are scheduled maintenances (Cachet
//!   2.3). Cachet never marks them in progress, so none is counted active;
//!   the earliest `scheduled_at` after `now` is the next start (a 2.3
//!   schedule keeps status 0 after it passed, so past ones are skipped).
//!
//! Cachet's timestamps (`2020-02-27 13:22:51`) have no zone; UTC is assumed.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::body::{
    decode_json_body, expect_object, finish_components, flag, int, join_path, keep_earliest,
    list_field, object_field, schema_error, success, text, timestamp,
};
use super::{
    Component, Impact, Incident, ProbeContext, ProbeError, ProbeSuccess, Severity, StatusSnapshot,
};
use crate::config::ComponentFilter;

/// Cachet is self-hosted: `url:` is required.
pub const DEFAULT_BASE_URL: Option<&str> = None;

/// Pages followed per endpoint, at most.
pub const MAX_PAGES: usize = 100;

/// `unknown_values` field of a component `status` outside 1–4.
pub const FIELD_COMPONENT_STATUS: &str = "component_status";
/// `unknown_values` field of an incident `status` outside 0–4.
pub const FIELD_INCIDENT_STATUS: &str = "incident_status";

/// Validated `cachet:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct CachetConfig {
    /// The Cachet instance (`https://status.example.com`).
    pub base_url: url::Url,
    pub components: ComponentFilter,
    pub max_components: usize,
}

impl CachetConfig {
    /// `<url>/api/v1/components?per_page=100`.
    pub fn components_url(&self) -> url::Url {
        with_query(
            join_path(&self.base_url, &["api", "v1", "components"]),
            &[("per_page", "100")],
        )
    }

    /// `<url>/api/v1/components/groups?per_page=100`.
    pub fn groups_url(&self) -> url::Url {
        with_query(
            join_path(&self.base_url, &["api", "v1", "components", "groups"]),
            &[("per_page", "100")],
        )
    }

    /// `<url>/api/v1/incidents?per_page=100&sort=id&order=desc`.
    pub fn incidents_url(&self) -> url::Url {
        with_query(
            join_path(&self.base_url, &["api", "v1", "incidents"]),
            &[("per_page", "100"), ("sort", "id"), ("order", "desc")],
        )
    }
}

/// `url` with each `(key, value)` set, replacing the key where present.
fn with_query(url: url::Url, set: &[(&str, &str)]) -> url::Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !set.iter().any(|(s, _)| k == s))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = url;
    url.set_query(None);
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        for (k, v) in set {
            pairs.append_pair(k, v);
        }
    }
    url
}

/// `url` asking for page `n`.
pub fn page_url(url: &url::Url, n: usize) -> url::Url {
    with_query(url.clone(), &[("page", &n.to_string())])
}

/// Severity of a Cachet component status code; `None` outside 1–4.
pub fn component_severity(code: i64) -> Option<Severity> {
    match code {
        1 => Some(Severity::Operational),
        2 => Some(Severity::Degraded),
        3 => Some(Severity::PartialOutage),
        4 => Some(Severity::MajorOutage),
        _ => None,
    }
}

/// One page of a paginated Cachet v1 answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The `data` rows.
    pub data: Vec<Value>,
    /// `meta.pagination.current_page`, if given.
    pub current_page: Option<usize>,
    /// Whether the upstream says there is a next page.
    pub has_next: bool,
}

/// Decode one page. `what` names the endpoint in schema messages.
pub fn parse_page(body: &[u8], what: &str) -> Result<Page, ProbeError> {
    let mut value = decode_json_body(body)?;
    let top = expect_object(&value, what)?;
    if !top.contains_key("data") {
        return Err(schema_error(format!("no `data` key: not {what}")));
    }
    list_field(top, "data")?;
    let pagination = object_field(top, "meta")?
        .and_then(|meta| meta.get("pagination"))
        .and_then(Value::as_object);
    let current_page = pagination
        .and_then(|p| int(p.get("current_page")))
        .and_then(|n| usize::try_from(n).ok());
    let total_pages = pagination
        .and_then(|p| int(p.get("total_pages")))
        .and_then(|n| usize::try_from(n).ok());
    let next_link = pagination
        .and_then(|p| p.get("links"))
        .and_then(Value::as_object)
        .and_then(|links| text(links.get("next_page")))
        .is_some();
    let has_next = next_link || matches!((current_page, total_pages), (Some(c), Some(t)) if c < t);
    let data = match value.as_object_mut().and_then(|m| m.remove("data")) {
        Some(Value::Array(rows)) => rows,
        _ => Vec::new(),
    };
    Ok(Page {
        data,
        current_page,
        has_next,
    })
}

/// Fetch `first` and every following page (at most [`MAX_PAGES`]).
/// Returns the pages and the last HTTP status.
pub async fn fetch_pages(
    ctx: &ProbeContext<'_>,
    first: &url::Url,
    what: &str,
) -> Result<(Vec<Page>, u16), ProbeError> {
    let mut pages: Vec<Page> = Vec::new();
    let mut url = first.clone();
    loop {
        let fetched = ctx.get(&url).await?;
        let status = fetched.status;
        let page = parse_page(&fetched.body, what).map_err(|e| e.with_status(status))?;
        // Always move forward, whatever `current_page` claims.
        let next = page.current_page.unwrap_or(0).max(pages.len() + 1) + 1;
        let has_next = page.has_next;
        pages.push(page);
        if !has_next || pages.len() >= MAX_PAGES {
            return Ok((pages, status));
        }
        url = page_url(first, next);
    }
}

/// Fetch every page of components, groups and incidents and build the snapshot.
pub async fn probe(ctx: &ProbeContext<'_>, cfg: &CachetConfig) -> Result<ProbeSuccess, ProbeError> {
    let (components, _) =
        fetch_pages(ctx, &cfg.components_url(), "a Cachet components body").await?;
    let groups = match fetch_pages(ctx, &cfg.groups_url(), "a Cachet component groups body").await {
        Ok((pages, _)) => pages,
        // No groups API on this Cachet: group labels stay "".
        Err(e) if e.http_status == Some(404) => Vec::new(),
        Err(e) => return Err(e),
    };
    let (incidents, status) =
        fetch_pages(ctx, &cfg.incidents_url(), "a Cachet incidents body").await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(success(
        status,
        build(&components, &groups, &incidents, cfg, now).shared(),
    ))
}

/// Parse raw page bodies of the three endpoints (each in page order) and
/// build the snapshot; `now` (Unix seconds) decides which scheduled
/// maintenances are still ahead. Pure; never panics.
pub fn parse(
    components: &[&[u8]],
    groups: &[&[u8]],
    incidents: &[&[u8]],
    cfg: &CachetConfig,
    now: f64,
) -> Result<StatusSnapshot, ProbeError> {
    let pages = |bodies: &[&[u8]], what: &str| -> Result<Vec<Page>, ProbeError> {
        bodies.iter().map(|b| parse_page(b, what)).collect()
    };
    let components = pages(components, "a Cachet components body")?;
    let groups = pages(groups, "a Cachet component groups body")?;
    let incidents = pages(incidents, "a Cachet incidents body")?;
    Ok(build(&components, &groups, &incidents, cfg, now))
}

/// Build the snapshot from decoded pages.
pub fn build(
    components: &[Page],
    groups: &[Page],
    incidents: &[Page],
    cfg: &CachetConfig,
    now: f64,
) -> StatusSnapshot {
    let mut group_names: HashMap<String, String> = HashMap::new();
    for row in groups.iter().flat_map(|p| &p.data) {
        let Value::Object(row) = row else { continue };
        if let (Some(id), Some(name)) = (text(row.get("id")), text(row.get("name"))) {
            group_names
                .entry(id.into_owned())
                .or_insert_with(|| name.into_owned());
        }
    }

    let mut snap = StatusSnapshot::default();
    for row in components.iter().flat_map(|p| &p.data) {
        let Value::Object(row) = row else { continue };
        if flag(row.get("enabled")) == Some(false) {
            continue;
        }
        let Some(id) = text(row.get("id")) else {
            continue;
        };
        let status = match int(row.get("status")).and_then(component_severity) {
            Some(sev) => sev,
            None => {
                snap.count_unknown(FIELD_COMPONENT_STATUS);
                Severity::Unknown
            }
        };
        let group = text(row.get("group_id"))
            .and_then(|g| group_names.get(g.as_ref()))
            .cloned()
            .unwrap_or_default();
        let name = text(row.get("name")).unwrap_or_else(|| id.clone());
        snap.components
            .push(Component::new(&id, &name, &group, status));
    }
    // Every component's status (before filtering; first row of an id wins)
    // for incident impacts.
    let mut status_by_id: HashMap<String, Severity> = HashMap::with_capacity(snap.components.len());
    for c in &snap.components {
        status_by_id.entry(c.id().to_owned()).or_insert(c.status);
    }
    let worst = finish_components(&mut snap, &cfg.components, cfg.max_components);
    snap.page = worst;

    for row in incidents.iter().flat_map(|p| &p.data) {
        let Value::Object(row) = row else { continue };
        incident(row, &status_by_id, now, &mut snap);
    }
    snap
}

fn incident(
    row: &Map<String, Value>,
    status_by_id: &HashMap<String, Severity>,
    now: f64,
    snap: &mut StatusSnapshot,
) {
    let Some(id) = text(row.get("id")) else {
        return;
    };
    if text(row.get("deleted_at")).is_some() {
        return;
    }
    let word = match int(row.get("status")) {
        Some(0) => {
            if let Some(start) = timestamp(row.get("scheduled_at")).filter(|t| *t > now) {
                keep_earliest(&mut snap.next_maintenance_start, start);
            }
            return;
        }
        Some(1) => "investigating",
        Some(2) => "identified",
        Some(3) => "watching",
        Some(4) => return,
        _ => {
            snap.count_unknown(FIELD_INCIDENT_STATUS);
            return;
        }
    };
    if snap.incidents.iter().any(|known| known.id == id) {
        return;
    }
    let impact = match text(row.get("component_id")).and_then(|c| status_by_id.get(c.as_ref())) {
        Some(Severity::Degraded) => Impact::Minor,
        Some(Severity::PartialOutage) => Impact::Major,
        Some(Severity::MajorOutage) => Impact::Critical,
        _ => Impact::None,
    };
    snap.incidents.push(Incident {
        name: text(row.get("name"))
            .unwrap_or_else(|| id.clone())
            .into_owned(),
        id: id.into_owned(),
        impact,
        status: word.to_owned(),
        started: timestamp(row.get("occurred_at")).or_else(|| timestamp(row.get("created_at"))),
    });
}
