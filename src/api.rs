//! `/api/v1/targets` and `/api/v1/targets/<name>`: every target's
//! configuration summary, last result and recent history as JSON, for
//! scripts and for `upstream-exporter probe --output json`.
//!
//! One function builds a target's object so the HTTP API and the CLI can
//! never drift apart. Nothing here may print a secret: URLs are the
//! redacted `display_url`, and only labels, never headers, tokens or
//! bodies, are shown.

use serde_json::{Value, json};

use crate::probe::{Component, Severity, StatusSnapshot};
use crate::state::{HistoryEntry, TargetSet, TargetState, unix_now};

/// Where the one-target route starts; the rest of the path is the name.
pub const TARGET_PATH_PREFIX: &str = "/api/v1/targets/";

/// The `{"targets": [...]}` document for a whole target set.
pub fn targets_json(set: &TargetSet) -> Value {
    let now = unix_now();
    let targets: Vec<Value> = set.targets.iter().map(|t| target_json(t, now)).collect();
    json!({ "targets": targets })
}

/// `/api/v1/targets/<name>`: the HTTP status and body for the
/// percent-encoded `encoded_name` (404 with an `error` object when no
/// target has that name).
pub fn one_target_json(set: &TargetSet, encoded_name: &str) -> (u16, Value) {
    let Some(name) = percent_decode(encoded_name) else {
        return (
            404,
            json!({ "error": "the target name is not valid percent-encoded UTF-8" }),
        );
    };
    match set.get(&name) {
        Some(target) => (200, target_json(target, unix_now())),
        None => (404, json!({ "error": format!("no target named {name:?}") })),
    }
}

/// One target's object: configuration summary, latest result, what the
/// last fresh answer showed, and the retained history (oldest first).
pub fn target_json(t: &TargetState, now: f64) -> Value {
    let r = t.record.load();
    let status = t.fresh_status(&r, now);
    let fresh = t.is_fresh(&r, now);
    let http = r.http.filter(|_| fresh);
    let json_samples = r
        .json
        .as_ref()
        .filter(|_| fresh)
        .map(|j| j.rules.iter().map(|rule| rule.samples.len()).sum::<usize>());
    let history: Vec<Value> = t.history().iter().map(history_json).collect();
    json!({
        "name": t.name(),
        "prober": t.config.kind().as_str(),
        "url": t.display_url,
        "interval_seconds": t.config.interval.as_secs_f64(),
        "timeout_seconds": t.config.timeout.as_secs_f64(),
        "retries": t.config.retries,
        "stale_after_seconds": t.config.stale_after.as_secs_f64(),
        "labels": t.config.labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "last_run": r.last_run,
        "last_success": r.last_success,
        "success": r.last_run.map(|_| r.success),
        "http_status": non_zero(r.http_status),
        "duration_seconds": r.duration.as_secs_f64(),
        "reason": r.error.as_ref().map(|e| e.reason.as_str()),
        "error": r.error.as_ref().map(|e| e.message.as_str()),
        "page_status": status.as_ref().map(|s| s.page.as_str()),
        "page_status_code": status.as_ref().map(|s| s.page.code()),
        "components": status.as_ref().map(|s| s.components.len()),
        "components_not_operational": status.as_ref().map(|s| {
            not_operational(s).into_iter().map(component_json).collect::<Vec<_>>()
        }),
        "incidents_open": status.as_ref().map(|s| s.incidents.len()),
        "incidents": status.as_ref().map(|s| s.incidents.iter().map(|i| json!({
            "id": i.id,
            "name": i.name,
            "impact": i.impact.as_str(),
            "status": i.status,
            "started": i.started,
        })).collect::<Vec<_>>()),
        "maintenances_active": status.as_ref().map(|s| s.maintenances_active),
        "next_maintenance": status.as_ref().and_then(|s| s.next_maintenance_start),
        "tls_not_after": http.and_then(|h| h.tls_not_after),
        "tls_chain_earliest_not_after": http.and_then(|h| h.tls_chain_earliest_not_after),
        "json_samples": json_samples,
        "history": history,
    })
}

/// The components of a snapshot that are not operational, worst first
/// (page order within one severity). Shared by the API and the board.
pub fn not_operational(snapshot: &StatusSnapshot) -> Vec<&Component> {
    let mut out: Vec<&Component> = snapshot
        .components
        .iter()
        .filter(|c| c.status != Severity::Operational)
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.status));
    out
}

fn component_json(c: &Component) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "group": (!c.group.is_empty()).then_some(c.group.as_str()),
        "status": c.status.as_str(),
        "status_code": c.status.code(),
    })
}

fn history_json(e: &HistoryEntry) -> Value {
    json!({
        "time": e.time,
        "success": e.success(),
        "reason": e.reason.map(|r| r.as_str()),
        "error": e.error.as_deref(),
        "duration_seconds": f64::from(e.duration_seconds),
        "http_status": non_zero(e.http_status),
    })
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
            let (hi, lo) = (hex_value(*bytes.get(i + 1)?)?, hex_value(*bytes.get(i + 2)?)?);
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
