//! `/metrics` content negotiation: which format (`Accept`) and whether
//! gzip (`Accept-Encoding`), by q-value, as client_golang's handler does.
//!
//! Prometheus lists every format it takes, each with a q-value that follows
//! the scrape config's `scrape_protocols` order (`…openmetrics-text;
//! version=1.0.0;q=0.5,…,text/plain;version=0.0.4;q=0.3,*/*;q=0.2` by
//! default), so the order an operator chose is only kept by reading the
//! weights. Media types, codings and parameter names are case-insensitive
//! (RFC 9110 §8.3.1, §12.4.2); `q=0` refuses; a coding listed by name
//! wins over `*` (§12.5.3). Nothing acceptable at all still gets the text
//! format, uncompressed: an answer Prometheus can read beats a 406.

use crate::metrics::Format;

/// One element of an `Accept`-style list: its value (lowercased) and its
/// parameters other than `q`, with its weight.
struct Weighted<'a> {
    value: String,
    params: Vec<(String, &'a str)>,
    q: f32,
}

/// The elements of a comma-separated, `;`-parametrised header value.
/// A malformed `q` counts as 0: a client that cannot write one is not
/// asking for anything.
fn weighted(header: &str) -> impl Iterator<Item = Weighted<'_>> {
    header.split(',').filter_map(|element| {
        let mut parts = element.split(';');
        let value = parts.next()?.trim().to_ascii_lowercase();
        if value.is_empty() {
            return None;
        }
        let mut q = 1.0;
        let mut params = Vec::new();
        for param in parts {
            let (name, raw) = param.split_once('=').unwrap_or((param, ""));
            let name = name.trim().to_ascii_lowercase();
            let raw = raw.trim().trim_matches('"');
            if name == "q" {
                q = raw
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            } else {
                params.push((name, raw));
            }
        }
        Some(Weighted { value, params, q })
    })
}

/// The format `accept` weighs highest: OpenMetrics 1.0.0 (asked for with
/// no version or `version=1.0.0`), else the text format 0.0.4 (`text/plain`
/// of any version, `text/*`, `*/*`, or no header). On equal weights the
/// more specific range wins, then the earlier one.
pub fn format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut best: Option<(f32, u8, Format)> = None;
    for w in weighted(accept) {
        let offer = match w.value.as_str() {
            "application/openmetrics-text" => {
                let version = w.params.iter().find(|(n, _)| n == "version");
                match version {
                    None => Some((2, Format::OpenMetrics)),
                    Some((_, v)) if *v == "1.0.0" => Some((2, Format::OpenMetrics)),
                    Some(_) => None,
                }
            }
            "text/plain" => Some((2, Format::Text)),
            "text/*" => Some((1, Format::Text)),
            "*/*" => Some((0, Format::Text)),
            _ => None,
        };
        let Some((specificity, format)) = offer else {
            continue;
        };
        if w.q <= 0.0 {
            continue;
        }
        let better = best.is_none_or(|(q, s, _)| w.q > q || (w.q == q && specificity > s));
        if better {
            best = Some((w.q, specificity, format));
        }
    }
    best.map_or(Format::Text, |(_, _, format)| format)
}

/// Whether `accept_encoding` takes gzip: listed by name (or as `x-gzip`)
/// with a weight above 0, or not listed but covered by `*` above 0.
pub fn gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut named: Option<f32> = None;
    let mut any: Option<f32> = None;
    for w in weighted(header) {
        match w.value.as_str() {
            "gzip" | "x-gzip" => named = Some(named.map_or(w.q, |q: f32| q.max(w.q))),
            "*" => any = Some(w.q),
            _ => {}
        }
    }
    named.or(any).is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_by_weight_then_specificity() {
        let cases: [(Option<&str>, Format); 14] = [
            (None, Format::Text),
            (Some(""), Format::Text),
            (Some("text/plain"), Format::Text),
            (Some("*/*"), Format::Text),
            (Some("application/json"), Format::Text),
            // Prometheus 2.x's default.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                ),
                Format::OpenMetrics,
            ),
            // scrape_protocols with the text format first.
            (
                Some(
                    "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5",
                ),
                Format::Text,
            ),
            (
                Some("application/openmetrics-text;q=0, text/plain"),
                Format::Text,
            ),
            (
                Some("application/openmetrics-text; version=2.0.0, text/plain;q=0.1"),
                Format::Text,
            ),
            (
                Some("Application/OpenMetrics-Text;Version=1.0.0"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;version=\"1.0.0\";escaping=underscores"),
                Format::OpenMetrics,
            ),
            // Equal weights: the named type over the wildcard.
            (
                Some("*/*, application/openmetrics-text"),
                Format::OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=abc"), Format::Text),
            (
                Some(",;,application/openmetrics-text;;q=1"),
                Format::OpenMetrics,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(format(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn gzip_unless_refused() {
        for yes in [
            "gzip",
            "deflate, gzip;q=0.8",
            "GZIP",
            "x-gzip",
            "*",
            "br, *;q=0.5",
            "gzip;q=0, x-gzip;q=0.5",
        ] {
            assert!(gzip(Some(yes)), "{yes}");
        }
        for no in [
            "gzip;q=0",
            "gzip;Q=0",
            "gzip;q=0.0, *",
            "identity",
            "*;q=0",
            "br",
            "",
        ] {
            assert!(!gzip(Some(no)), "{no}");
        }
        assert!(!gzip(None));
    }
}
