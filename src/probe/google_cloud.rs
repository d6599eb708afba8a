//! Google Cloud Service Health (`GET <base>/incidents.json`, base
//! `https://status.cloud.google.com` by default) turned into a
//! [`StatusSnapshot`].
//!
//! The body is a JSON list of incidents, open and closed (the recent
//! history): `{"id", "number", "begin", "created", "end", "modified",
//! "external_desc", "status_impact", "severity": "low" | "medium" | "high",
//! "service_name", "affected_products": [{"title", "id"}],
//! "most_recent_update": {"status", …}, …}`.
//!
//! - Open = no `end` (missing, `null` or empty). Nothing else decides it:
//!   closed incidents keep `most_recent_update.status` SERVICE_DISRUPTION
//!   in real bodies.
//! - Components are products, `id` = `name` = the product title, group "".
//!   With `products:` configured, exactly those (matched by title,
//!   case-insensitively, or by Google's product id), so the series exist
//!   while all is well; their labels are the entries as configured (a
//!   quiet product's title is nowhere in the body), and an entry matching
//!   an incident's product by title and another by id both get it.
//!   Without it, every product the body names (its history included), so
//!   series stay stable as incidents open and close (and a quiet day does
//!   not look like "the page lost its components").
//! - A product's severity: operational without an open incident naming it,
//!   else the worst open incident's `severity`: low 3 (degraded), medium 4
//!   (partial outage), high 5 (major outage). Other words are `unknown` and
//!   counted (`incident_severity`).
//! - Page status: Google gives none; the worst exported product, and
//!   operational when no exported product has an open incident.
//! - Incidents: the open ones (naming a configured product, when
//!   `products:` is set). Impact low minor, medium major, high critical;
//!   status word `most_recent_update.status` (else `status_impact`)
//!   lowercased; started `begin` (else `created`); name the first line of
//!   `external_desc`.
//! - Google publishes no maintenances here.
//! - A list none of whose entries is an object with an `id` (an error
//!   object in a list, a list of something else) is not an incident
//!   history: reason `schema`, never a quiet page. An empty list is a
//!   quiet page.
//!
//! Note: the real `incidents.json` carries the whole recent history and can
//! be several MiB; raise `max_body_size` if the probe fails `too_large`.

use serde_json::{Map, Value};

use super::body::{
    decode_json_body, expect_list, finish_components, items, join_path, lookup, schema_error, text,
    timestamp,
};
use super::{
    Component, Impact, Incident, ProbeContext, ProbeError, ProbeSuccess, Severity, StatusSnapshot,
};
use crate::config::ComponentFilter;

/// The public API every `google_cloud:` block uses unless `url:` says otherwise.
pub const DEFAULT_BASE_URL: Option<&str> = Some("https://status.cloud.google.com");

/// `unknown_values` field of an incident `severity` outside low/medium/high.
pub const FIELD_INCIDENT_SEVERITY: &str = "incident_severity";

/// Validated `google_cloud:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleCloudConfig {
    /// Base URL of the API (default [`DEFAULT_BASE_URL`]).
    pub base_url: url::Url,
    /// Product titles (or ids) to export; empty = every product in the body.
    pub products: Vec<String>,
    pub components: ComponentFilter,
    pub max_components: usize,
}

impl GoogleCloudConfig {
    /// `<base>/incidents.json`.
    pub fn url(&self) -> url::Url {
        join_path(&self.base_url, &["incidents.json"])
    }
}

const SEVERITY_WORDS: [(&str, Severity); 3] = [
    ("low", Severity::Degraded),
    ("medium", Severity::PartialOutage),
    ("high", Severity::MajorOutage),
];

/// Fetch `incidents.json` and parse it.
pub async fn probe(
    ctx: &ProbeContext<'_>,
    cfg: &GoogleCloudConfig,
) -> Result<ProbeSuccess, ProbeError> {
    ctx.fetch_status(&cfg.url(), |body| parse(body, cfg)).await
}

/// An affected product: (title, Google's id).
fn products_of(incident: &Map<String, Value>) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = items(incident.get("affected_products"))
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|p| {
            let title = text(p.get("title"))?;
            Some((
                title.into_owned(),
                text(p.get("id")).map(|s| s.into_owned()),
            ))
        })
        .collect();
    if out.is_empty()
        && let Some(name) = text(incident.get("service_name"))
    {
        out.push((
            name.into_owned(),
            text(incident.get("service_key")).map(|s| s.into_owned()),
        ));
    }
    out
}

fn is_open(incident: &Map<String, Value>) -> bool {
    match incident.get("end") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    }
}

/// Parse one `incidents.json` body. Never panics, whatever the bytes.
pub fn parse(body: &[u8], cfg: &GoogleCloudConfig) -> Result<StatusSnapshot, ProbeError> {
    let value = decode_json_body(body)?;
    let list = expect_list(&value, "a Google Cloud incidents.json body")?;
    let is_incident = |v: &Value| v.as_object().is_some_and(|o| text(o.get("id")).is_some());
    if !list.is_empty() && !list.iter().any(is_incident) {
        return Err(schema_error(format!(
            "none of the {} entries is an incident (an object with an `id`): not a Google Cloud incidents.json body",
            list.len()
        )));
    }
    let mut snap = StatusSnapshot::default();

    // The configured entries naming a product (by title or by id): every
    // one of them, since one product may be listed twice, once each way.
    let wanted = |title: &str, id: Option<&str>| -> Vec<usize> {
        (cfg.products.iter().enumerate())
            .filter(|(_, p)| {
                let p = p.trim();
                p.eq_ignore_ascii_case(title) || id.is_some_and(|id| id == p)
            })
            .map(|(i, _)| i)
            .collect()
    };
    // (title, severity) per product, in config or first-seen order.
    let mut products: Vec<(String, Severity)> = cfg
        .products
        .iter()
        .map(|p| (p.trim().to_owned(), Severity::Operational))
        .collect();

    for incident in list {
        let Value::Object(incident) = incident else {
            continue;
        };
        let affected = products_of(incident);
        let open = is_open(incident);
        let severity = if open {
            match text(incident.get("severity")).and_then(|w| lookup(&SEVERITY_WORDS, &w)) {
                Some(sev) => Some(sev),
                None => {
                    snap.count_unknown(FIELD_INCIDENT_SEVERITY);
                    Some(Severity::Unknown)
                }
            }
        } else {
            None
        };
        let mut relevant = cfg.products.is_empty();
        for (title, id) in &affected {
            let indices = if cfg.products.is_empty() {
                match products.iter().position(|(t, _)| t == title) {
                    Some(i) => vec![i],
                    None => {
                        products.push((title.clone(), Severity::Operational));
                        vec![products.len() - 1]
                    }
                }
            } else {
                wanted(title, id.as_deref())
            };
            for index in indices {
                relevant = true;
                if let (Some(sev), Some((_, current))) = (severity, products.get_mut(index)) {
                    *current = if *current == Severity::Operational {
                        sev
                    } else {
                        Severity::worst([*current, sev])
                    };
                }
            }
        }
        if open && relevant {
            push_incident(incident, &mut snap);
        }
    }

    snap.components = products
        .into_iter()
        .map(|(title, status)| Component::new(&title, &title, "", status))
        .collect();
    let worst = finish_components(&mut snap, &cfg.components, cfg.max_components);
    if cfg.products.is_empty() {
        // Products seen in the incident history, not a list the page keeps:
        // a history with none left is a quiet page, not a changed one.
        snap.listed = None;
    }
    snap.page = worst.max(Severity::Operational);
    Ok(snap)
}

fn push_incident(incident: &Map<String, Value>, snap: &mut StatusSnapshot) {
    let Some(id) = text(incident.get("id")).or_else(|| text(incident.get("number"))) else {
        return;
    };
    if snap.incidents.iter().any(|known| known.id == id) {
        return;
    }
    let impact = match text(incident.get("severity")).as_deref() {
        Some(w) if w.eq_ignore_ascii_case("low") => Impact::Minor,
        Some(w) if w.eq_ignore_ascii_case("medium") => Impact::Major,
        Some(w) if w.eq_ignore_ascii_case("high") => Impact::Critical,
        _ => Impact::None,
    };
    let status = incident
        .get("most_recent_update")
        .and_then(Value::as_object)
        .and_then(|u| text(u.get("status")))
        .or_else(|| text(incident.get("status_impact")))
        .map_or_else(|| "unknown".to_owned(), |s| s.to_lowercase());
    let name = text(incident.get("external_desc"))
        .and_then(|d| {
            d.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| id.to_string());
    snap.incidents.push(Incident {
        name,
        id: id.into_owned(),
        impact,
        status,
        started: timestamp(incident.get("begin")).or_else(|| timestamp(incident.get("created"))),
    });
}
