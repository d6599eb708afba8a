//! The status page served at `/`: a server-rendered HTML view of every
//! target for the person at the keyboard. Every upstream string is escaped
//! (incident titles are untrusted input); no external assets.

use std::fmt::Write as _;

use crate::state::{TargetSet, unix_now};

/// Escape text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The landing page: one row per target and links to the other endpoints.
pub fn landing_page(set: &TargetSet, telemetry_path: &str) -> String {
    let now = unix_now();
    let mut rows = String::new();
    for t in &set.targets {
        let r = t.record.load();
        let status = t.fresh_status(&r, now);
        let result = match (r.last_run, &r.error) {
            (None, _) => "pending".to_string(),
            (Some(_), None) => "ok".to_string(),
            (Some(_), Some(e)) => format!("{}: {}", e.reason, e.message),
        };
        let page = status.map(|s| s.page.as_str()).unwrap_or("-");
        let age = r
            .last_run
            .map(|t| format!("{:.0}s ago", (now - t).max(0.0)))
            .unwrap_or_else(|| "-".into());
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} ms</td></tr>",
            escape_html(t.name()),
            t.config.kind(),
            escape_html(page),
            escape_html(&result),
            age,
            r.duration.as_secs_f64() * 1000.0
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>upstream-exporter</title><style>body{{font-family:system-ui,sans-serif;margin:1.5rem}}table{{border-collapse:collapse}}td,th{{padding:.3rem .6rem;border-bottom:1px solid #8884;text-align:left}}\
@media (prefers-color-scheme:dark){{body{{background:#111;color:#eee}}a{{color:#8cf}}}}</style></head><body>\
<h1>upstream-exporter</h1><p><a href=\"{}\">Metrics</a> · <a href=\"/api/v1/targets\">Targets API</a> · <a href=\"/-/ready\">Readiness</a> · <a href=\"/-/healthy\">Health</a></p>\
<table><thead><tr><th>Target</th><th>Prober</th><th>Page status</th><th>Last result</th><th>Last check</th><th>Latency</th></tr></thead><tbody>{rows}</tbody></table>\
<p><small>version {}</small></p></body></html>",
        escape_html(telemetry_path),
        crate::metrics::VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
