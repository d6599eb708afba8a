//! `/api/v1/targets` and `/api/v1/targets/<name>`: every target's
//! configuration summary, last result and recent history as JSON, for
//! scripts and for `upstream-exporter probe --output json`.
//!
//! One function builds a target's object so the HTTP API and the CLI can
//! never drift apart. Nothing here may print a secret: URLs are the
//! redacted `display_url`, and only labels, never headers, tokens or
//! bodies, are shown.

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use serde_json::{Value, json};

use crate::probe::packed::ComponentRef;
use crate::probe::{Incident, Severity, StatusSnapshot};
use crate::state::{HistoryEntry, TargetSet, TargetState, unix_now};

/// Where the one-target route starts; the rest of the path is the name.
pub const TARGET_PATH_PREFIX: &str = "/api/v1/targets/";

/// The `{"targets": [...]}` document for a whole target set, serialized
/// straight from the targets' state (no intermediate `Value` tree: at
/// 10,000 targets that tree costs several times the writing). Compact:
/// it is for scripts, and indentation would add half again to its size.
pub fn targets_body(set: &TargetSet) -> Vec<u8> {
    #[derive(Serialize)]
    struct Document<'a> {
        targets: Vec<TargetView<'a>>,
    }
    let now = unix_now();
    let document = Document {
        targets: set
            .targets
            .iter()
            .map(|target| TargetView { target, now })
            .collect(),
    };
    serde_json::to_vec(&document).unwrap_or_default()
}

/// `/api/v1/targets/<name>`: the HTTP status and JSON body for the
/// percent-encoded `encoded_name` (404 with an `error` object when no
/// target has that name).
pub fn one_target_body(set: &TargetSet, encoded_name: &str) -> (u16, Vec<u8>) {
    let (status, body) = match percent_decode(encoded_name) {
        None => (
            404,
            json!({ "error": "the target name is not valid percent-encoded UTF-8" }),
        ),
        Some(name) => match set.get(&name) {
            Some(target) => (200, target_json(target, unix_now())),
            None => (404, json!({ "error": format!("no target named {name:?}") })),
        },
    };
    (status, serde_json::to_vec_pretty(&body).unwrap_or_default())
}

/// One target's object: configuration summary, latest result, what the
/// last fresh answer showed, and the retained history (oldest first).
pub fn target_json(target: &TargetState, now: f64) -> Value {
    serde_json::to_value(TargetView { target, now }).unwrap_or(Value::Null)
}

/// A target as the API shows it, computed while it is serialized.
struct TargetView<'a> {
    target: &'a TargetState,
    now: f64,
}

impl Serialize for TargetView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.target;
        let r = t.record();
        let status = t.fresh_status(&r, self.now);
        let status = status.as_deref();
        let fresh = t.is_fresh(&r, self.now);
        // As on /metrics: the TLS expiry while the time it was seen is fresh.
        let http = r.http.filter(|_| t.tls_is_fresh(&r, self.now));
        let json_samples = r
            .json
            .as_ref()
            .filter(|_| fresh)
            .map(|j| j.rules.iter().map(|rule| rule.samples.len()).sum::<usize>());
        let mut o = serializer.serialize_struct("Target", 29)?;
        o.serialize_field("name", t.name())?;
        o.serialize_field("prober", t.config.kind().as_str())?;
        o.serialize_field("url", &t.display_url)?;
        o.serialize_field("interval_seconds", &t.config.interval.as_secs_f64())?;
        o.serialize_field("timeout_seconds", &t.config.timeout.as_secs_f64())?;
        o.serialize_field("retries", &t.config.retries)?;
        o.serialize_field("stale_after_seconds", &t.config.stale_after.as_secs_f64())?;
        o.serialize_field("labels", &Labels(&t.config.labels))?;
        o.serialize_field("last_run", &r.last_run)?;
        o.serialize_field("last_success", &r.last_success)?;
        o.serialize_field("success", &r.last_run.map(|_| r.success))?;
        o.serialize_field("http_status", &non_zero(r.http_status))?;
        o.serialize_field("duration_seconds", &r.duration.as_secs_f64())?;
        o.serialize_field("reason", &r.error.as_ref().map(|e| e.reason.as_str()))?;
        o.serialize_field("error", &r.error.as_ref().map(|e| e.message.as_str()))?;
        o.serialize_field("page_status", &status.map(|s| s.page.as_str()))?;
        o.serialize_field("page_status_code", &status.map(|s| s.page.code()))?;
        o.serialize_field("components", &status.map(|s| s.component_count()))?;
        o.serialize_field(
            "components_not_operational",
            &status.map(|s| {
                not_operational(s)
                    .into_iter()
                    .map(ComponentView::from)
                    .collect::<Vec<_>>()
            }),
        )?;
        o.serialize_field("incidents_open", &status.map(|s| s.incidents.len()))?;
        o.serialize_field(
            "incidents",
            &status.map(|s| {
                s.incidents
                    .iter()
                    .map(IncidentView::from)
                    .collect::<Vec<_>>()
            }),
        )?;
        o.serialize_field(
            "maintenances_active",
            &status.map(|s| s.maintenances_active),
        )?;
        o.serialize_field(
            "next_maintenance",
            &status.and_then(|s| s.next_maintenance_start),
        )?;
        o.serialize_field("tls_not_after", &http.and_then(|h| h.tls_not_after))?;
        o.serialize_field(
            "tls_chain_earliest_not_after",
            &http.and_then(|h| h.tls_chain_earliest_not_after),
        )?;
        o.serialize_field("json_samples", &json_samples)?;
        let history = t.history();
        let history: Vec<HistoryView<'_>> = history.iter().map(HistoryView::from).collect();
        o.serialize_field("history", &history)?;
        o.end()
    }
}

/// Static labels (sorted by key) as a JSON object.
struct Labels<'a>(&'a [(String, String)]);

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[derive(Serialize)]
struct ComponentView<'a> {
    id: &'a str,
    name: &'a str,
    /// None for a component outside any group.
    group: Option<&'a str>,
    status: &'static str,
    status_code: i64,
}

impl<'a> From<ComponentRef<'a>> for ComponentView<'a> {
    fn from(c: ComponentRef<'a>) -> Self {
        ComponentView {
            id: c.id(),
            name: c.name(),
            group: Some(c.group()).filter(|g| !g.is_empty()),
            status: c.status.as_str(),
            status_code: c.status.code(),
        }
    }
}

#[derive(Serialize)]
struct IncidentView<'a> {
    id: &'a str,
    name: &'a str,
    impact: &'static str,
    status: &'a str,
    started: Option<f64>,
}

impl<'a> From<&'a Incident> for IncidentView<'a> {
    fn from(i: &'a Incident) -> Self {
        IncidentView {
            id: &i.id,
            name: &i.name,
            impact: i.impact.as_str(),
            status: &i.status,
            started: i.started,
        }
    }
}

#[derive(Serialize)]
struct HistoryView<'a> {
    time: f64,
    success: bool,
    reason: Option<&'static str>,
    error: Option<&'a str>,
    duration_seconds: f64,
    http_status: Option<u16>,
}

impl<'a> From<&'a HistoryEntry> for HistoryView<'a> {
    fn from(e: &'a HistoryEntry) -> Self {
        HistoryView {
            time: e.time,
            success: e.success(),
            reason: e.reason.map(|r| r.as_str()),
            error: e.error.as_deref(),
            duration_seconds: f64::from(e.duration_seconds),
            http_status: non_zero(e.http_status),
        }
    }
}

/// The components of a snapshot that are not operational, worst first
/// (page order within one severity). Shared by the API and the board.
pub fn not_operational(snapshot: &StatusSnapshot) -> Vec<ComponentRef<'_>> {
    let mut out: Vec<ComponentRef<'_>> = snapshot
        .each_component()
        .filter(|c| c.status != Severity::Operational)
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.status));
    out
}

/// HTTP status 0 means "no answer"; JSON says that with null.
fn non_zero(status: u16) -> Option<u16> {
    (status != 0).then_some(status)
}

/// Decode `%XX` escapes of a URL path segment; None when an escape is
/// malformed or the result is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let (hi, lo) = (
                hex_value(*bytes.get(i + 1)?)?,
                hex_value(*bytes.get(i + 2)?)?,
            );
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("api.v1").as_deref(), Some("api.v1"));
        assert_eq!(percent_decode("a%3Ab%2d").as_deref(), Some("a:b-"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(percent_decode("%+1"), None);
    }
}
