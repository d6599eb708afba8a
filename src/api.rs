//! `/api/v1/targets`: every target's configuration summary and last result
//! as JSON, for scripts and for `upstream-exporter probe --output json`.
//!
//! One function builds a target's object so the HTTP API and the CLI can
//! never drift apart. Nothing here may print a secret: URLs are the
//! redacted `display_url`, and only labels, never headers, are shown.

use crate::state::{TargetSet, TargetState, unix_now};

/// The `{"targets": [...]}` document for a whole target set.
pub fn targets_json(set: &TargetSet) -> serde_json::Value {
    let now = unix_now();
    let targets: Vec<serde_json::Value> = set.targets.iter().map(|t| target_json(t, now)).collect();
    serde_json::json!({ "targets": targets })
}

/// One target's object: configuration summary plus its latest result.
pub fn target_json(t: &TargetState, now: f64) -> serde_json::Value {
    let r = t.record.load();
    let status = t.fresh_status(&r, now);
    serde_json::json!({
        "name": t.name(),
        "prober": t.config.kind().as_str(),
        "url": t.display_url,
        "interval_seconds": t.config.interval.as_secs_f64(),
        "timeout_seconds": t.config.timeout.as_secs_f64(),
        "labels": t.config.labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "last_run": r.last_run,
        "last_success": r.last_success,
        "success": r.last_run.map(|_| r.success),
        "http_status": r.http_status,
        "duration_seconds": r.duration.as_secs_f64(),
        "reason": r.error.as_ref().map(|e| e.reason.as_str()),
        "error": r.error.as_ref().map(|e| e.message.clone()),
        "page_status": status.as_ref().map(|s| s.page.as_str()),
        "components": status.as_ref().map(|s| s.components.len()),
        "incidents_open": status.as_ref().map(|s| s.incidents.len()),
    })
}
