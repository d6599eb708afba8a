//! What every status-page prober shares: decoding an upstream body into JSON
//! leniently, reading loosely typed JSON values, parsing the many timestamp
//! spellings upstreams use, building request URLs from a base URL, and the
//! one component filter-and-cap step ([`finish_components`]).
//!
//! Decoding rules (SPEC §3, "Rules learned"): a UTF-8 BOM is stripped; UTF-16
//! LE/BE bodies (with a BOM, or recognised by the NUL byte next to the first
//! ASCII character) are transcoded; an empty body, an HTML body ("the page
//! moved and the old URL redirects to HTML") and anything that is not JSON are
//! reason `decode`. JSON of another shape is each prober's call, reported with
//! [`schema_error`] (reason `schema`).
//!
//! Nothing here panics on any input: every accessor returns an `Option` or an
//! empty slice when the value is missing or of another type.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use serde_json::Value;
use serde_json::error::Category;

use super::{Component, ProbeError, ProbeOutput, ProbeSuccess, Reason, Severity, StatusSnapshot};
use crate::config::ComponentFilter;

// ---------------------------------------------------------------------------
// Decoding

/// Strip a UTF-8 BOM, transcode UTF-16, and reject what is plainly not JSON
/// (empty, HTML). The result is UTF-8 bytes (not yet validated as UTF-8:
/// the JSON parser does that).
pub fn decode_text(body: &[u8]) -> Result<Cow<'_, [u8]>, ProbeError> {
    let text: Cow<'_, [u8]> = if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        Cow::Borrowed(rest)
    } else if let Some(rest) = body.strip_prefix(b"\xFF\xFE") {
        Cow::Owned(utf16_to_utf8(rest, false)?)
    } else if let Some(rest) = body.strip_prefix(b"\xFE\xFF") {
        Cow::Owned(utf16_to_utf8(rest, true)?)
    } else {
        // JSON starts with an ASCII character, so without a BOM UTF-16 shows
        // as a NUL byte before (BE) or after (LE) the first character.
        match body {
            [0, b, ..] if *b != 0 => Cow::Owned(utf16_to_utf8(body, true)?),
            [a, 0, ..] if *a != 0 => Cow::Owned(utf16_to_utf8(body, false)?),
            _ => Cow::Borrowed(body),
        }
    };
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(decode_error("not JSON: empty body")),
        Some(b'<') => Err(decode_error(
            "answered HTML instead of JSON — has the vendor moved its status page?",
        )),
        Some(_) => Ok(text),
    }
}

/// Decode a body ([`decode_text`]) and parse it as one JSON value. Syntax
/// errors are reason `decode`; the shape is checked by the caller.
pub fn decode_json_body(body: &[u8]) -> Result<Value, ProbeError> {
    let text = decode_text(body)?;
    serde_json::from_slice(&text).map_err(json_error)
}

fn utf16_to_utf8(bytes: &[u8], big_endian: bool) -> Result<Vec<u8>, ProbeError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(decode_error(
            "not JSON: UTF-16 body has an odd number of bytes",
        ));
    }
    let units = bytes.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let mut out = String::with_capacity(bytes.len() / 2);
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => out.push(c),
            Err(e) => return Err(decode_error(format!("not JSON: invalid UTF-16: {e}"))),
        }
    }
    Ok(out.into_bytes())
}

/// A `decode` failure (the body is not JSON).
pub fn decode_error(message: impl Into<String>) -> ProbeError {
    ProbeError::new(Reason::Decode, message)
}

/// A `schema` failure (JSON, but of another shape).
pub fn schema_error(message: impl Into<String>) -> ProbeError {
    ProbeError::new(Reason::Schema, message)
}

/// Syntax errors are `decode`; data errors are `schema`.
pub fn json_error(e: serde_json::Error) -> ProbeError {
    match e.classify() {
        Category::Data => schema_error(format!("unexpected JSON shape: {e}")),
        Category::Syntax | Category::Eof | Category::Io => decode_error(format!("not JSON: {e}")),
    }
}

/// "an object", "a list", ... for schema messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The top-level JSON object of a body, or a `schema` error saying what
/// `what` (e.g. "a status.io status body") should have been.
pub fn expect_object<'a>(
    v: &'a Value,
    what: &str,
) -> Result<&'a serde_json::Map<String, Value>, ProbeError> {
    match v {
        Value::Object(map) => Ok(map),
        other => Err(schema_error(format!(
            "expected {what} (a JSON object), got {}",
            kind(other)
        ))),
    }
}

/// The top-level JSON list of a body, or a `schema` error.
pub fn expect_list<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], ProbeError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(schema_error(format!(
            "expected {what} (a JSON list), got {}",
            kind(other)
        ))),
    }
}

/// A list field of a top-level object: missing or `null` is empty; any
/// other non-list value is a `schema` error naming the key.
pub fn list_field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'a [Value], ProbeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(schema_error(format!(
            "`{key}` is {}, expected a list",
            kind(other)
        ))),
    }
}

/// An object field of a top-level object: `Ok(None)` when missing or `null`,
/// a `schema` error when it is something else than an object.
pub fn object_field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, ProbeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(schema_error(format!(
            "`{key}` is {}, expected an object",
            kind(other)
        ))),
    }
}

// ---------------------------------------------------------------------------
// Lenient accessors for nested values (never errors: wrong types read as absent)

/// The items of a list value; anything else (missing, `null`, an object)
/// reads as an empty list.
pub fn items(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// A string value trimmed, or a number/boolean as its JSON text. `None` for
/// missing, `null`, objects, lists and empty strings.
pub fn text(v: Option<&Value>) -> Option<Cow<'_, str>> {
    match v? {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then_some(Cow::Borrowed(t))
        }
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// An integer: a JSON integer, an integral float, or a string holding one.
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

/// A boolean: `true`/`false`, `"true"`/`"false"`, `1`/`0`, `"1"`/`"0"`.
/// `None` when missing, `null` or anything else.
pub fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("true") || s == "1" {
                Some(true)
            } else if s.eq_ignore_ascii_case("false") || s == "0" {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Look a word up in a `(word, value)` table, trimmed and case-insensitively.
pub fn lookup<T: Copy>(table: &[(&str, T)], word: &str) -> Option<T> {
    let word = word.trim();
    table
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map(|(_, v)| *v)
}

/// Whether `word` is one of `words` (trimmed, case-insensitive).
pub fn is_one_of(words: &[&str], word: &str) -> bool {
    let word = word.trim();
    words.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// Lowercase ASCII letters and digits, runs of anything else as one `-`,
/// no leading/trailing `-`: `"Apps/Integrations/APIs"` → `apps-integrations-apis`.
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            dash = true;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Timestamps

/// Unix seconds of a timestamp value: a string in any form
/// [`parse_timestamp`] reads, or a number of epoch seconds (milliseconds
/// when it is too large to be seconds).
pub fn timestamp(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::String(s) => parse_timestamp(s),
        Value::Number(n) => n.as_f64().and_then(epoch),
        _ => None,
    }
}

/// Unix seconds of a timestamp string. Accepted:
/// RFC 3339 (`2020-07-16T17:22:25.333Z`, `2020-07-30T15:12:34-07:00`),
/// ISO 8601 with a `+0000` offset, ISO without offset (`T` or space
/// separated; taken as UTC: Cachet's `2020-02-27 13:22:51`), RFC 2822,
/// JavaScript `Date.toString()` (`Sat Jun 11 2022 18:55:50 GMT+0000
/// (Coordinated Universal Time)`), and epoch seconds or milliseconds.
/// `None` when it does not parse.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(unix_seconds(&dt));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, format) {
            return Some(unix_seconds(&dt));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, format) {
            return Some(unix_seconds(&n.and_utc()));
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(unix_seconds(&dt));
    }
    if let Some(t) = parse_js_date(s) {
        return Some(t);
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.parse::<f64>().ok().and_then(epoch);
    }
    None
}

/// JavaScript `Date.prototype.toString()`:
/// `Sat Jun 11 2022 18:55:50 GMT+0000 (Coordinated Universal Time)`.
fn parse_js_date(s: &str) -> Option<f64> {
    // The zone name in parentheses is free text; the numeric offset rules.
    let s = s.split_once(" (").map_or(s, |(head, _)| head).trim();
    let parsed: Option<DateTime<FixedOffset>> = if s.ends_with("GMT") || s.ends_with("UTC") {
        let head = s.get(..s.len().saturating_sub(3))?.trim();
        NaiveDateTime::parse_from_str(head, "%a %b %d %Y %H:%M:%S")
            .ok()
            .map(|n| n.and_utc().fixed_offset())
    } else {
        let normalised = s.replacen("GMT", "", 1).replacen("UTC", "", 1);
        DateTime::parse_from_str(normalised.trim(), "%a %b %d %Y %H:%M:%S %z").ok()
    };
    parsed.map(|dt| unix_seconds(&dt))
}

/// Epoch seconds, or milliseconds when the number is past year 5138 as seconds.
fn epoch(n: f64) -> Option<f64> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    Some(if n > 1e11 { n / 1000.0 } else { n })
}

fn unix_seconds<Tz: TimeZone>(dt: &DateTime<Tz>) -> f64 {
    dt.timestamp() as f64 + f64::from(dt.timestamp_subsec_nanos()) / 1e9
}

/// Keep the earliest of the times seen so far.
pub fn keep_earliest(slot: &mut Option<f64>, t: f64) {
    *slot = Some(match *slot {
        Some(current) => current.min(t),
        None => t,
    });
}

// ---------------------------------------------------------------------------
// URLs

/// `base` with `segments` appended to its path (each percent-encoded as one
/// segment, so a `/` inside a page id cannot climb the path). The base path
/// is kept (`https://mirror.example/statusio/` + `1.0/status/x` →
/// `/statusio/1.0/status/x`), and so is its query string.
pub fn join_path(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut url = base.clone();
    let joined = match url.path_segments_mut() {
        Ok(mut path) => {
            path.pop_if_empty().extend(segments);
            true
        }
        Err(()) => false,
    };
    if !joined {
        // A cannot-be-a-base URL (never an http(s) URL); best effort.
        let path = format!(
            "{}/{}",
            base.path().trim_end_matches('/'),
            segments.join("/")
        );
        url.set_path(&path);
    }
    url
}

// ---------------------------------------------------------------------------
// The shared last step of every status-page prober

/// Apply the target's component filter and cap to `snap.components`, the
/// same way for every prober:
///
/// 0. how many rows the body listed goes to `snap.listed`;
/// 1. duplicate ids: the first row wins (names may repeat, ids may not);
/// 2. `filter.allows(id, name)` decides which components are exported;
/// 3. past `max` exported components the rest are dropped and counted in
///    `snap.components_capped`.
///
/// Returns the worst known severity of the components the filter allows,
/// capped ones included (the cap bounds series, not what the page status
/// considers); `Unknown` when there are none. Body order is kept.
pub fn finish_components(
    snap: &mut StatusSnapshot,
    filter: &ComponentFilter,
    max: usize,
) -> Severity {
    let all = std::mem::take(&mut snap.components);
    snap.set_listed(all.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(all.len());
    let mut kept: Vec<Component> = Vec::with_capacity(all.len().min(max));
    let mut worst = Severity::Unknown;
    for component in all {
        if seen.contains(component.id()) {
            continue;
        }
        seen.insert(component.id().to_owned());
        if !filter.allows(component.id(), component.name()) {
            continue;
        }
        worst = Severity::worst([worst, component.status]);
        if kept.len() >= max {
            snap.components_capped += 1;
            continue;
        }
        kept.push(component);
    }
    snap.components = kept;
    worst
}

/// A successful status probe.
pub fn success(http_status: u16, snapshot: Arc<StatusSnapshot>) -> ProbeSuccess {
    ProbeSuccess {
        http_status,
        output: ProbeOutput::Status(snapshot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_spelling() {
        let t = 1_654_973_750.0; // 2022-06-11T18:55:50Z
        assert_eq!(parse_timestamp("2022-06-11T18:55:50Z"), Some(t));
        assert_eq!(parse_timestamp("2022-06-11T11:55:50-07:00"), Some(t));
        assert_eq!(parse_timestamp("2022-06-11T18:55:50+0000"), Some(t));
        assert_eq!(parse_timestamp("2022-06-11T18:55:50"), Some(t));
        assert_eq!(parse_timestamp("2022-06-11 18:55:50"), Some(t));
        assert_eq!(parse_timestamp("Sat, 11 Jun 2022 18:55:50 GMT"), Some(t));
        assert_eq!(
            parse_timestamp("Sat Jun 11 2022 18:55:50 GMT+0000 (Coordinated Universal Time)"),
            Some(t)
        );
        assert_eq!(
            parse_timestamp("Sat Jun 11 2022 20:55:50 GMT+0200 (Central European Summer Time)"),
            Some(t)
        );
        assert_eq!(parse_timestamp("Sat Jun 11 2022 18:55:50 GMT"), Some(t));
        assert_eq!(parse_timestamp("1654973750"), Some(t));
        assert_eq!(parse_timestamp("1654973750000"), Some(t));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(parse_timestamp("Sat Jun 99 2022"), None);
    }

    #[test]
    fn lenient_values() {
        let v: Value =
            serde_json::from_str(r#"{"a":" x ","b":7,"c":"12","d":2.0,"e":"1","f":[1]}"#)
                .unwrap_or_default();
        assert_eq!(text(v.get("a")).as_deref(), Some("x"));
        assert_eq!(text(v.get("b")).as_deref(), Some("7"));
        assert_eq!(text(v.get("f")), None);
        assert_eq!(int(v.get("c")), Some(12));
        assert_eq!(int(v.get("d")), Some(2));
        assert_eq!(int(v.get("a")), None);
        assert_eq!(flag(v.get("e")), Some(true));
        assert_eq!(items(v.get("f")).len(), 1);
        assert!(items(v.get("a")).is_empty());
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Apps/Integrations/APIs"), "apps-integrations-apis");
        assert_eq!(slug("  Login/SSO "), "login-sso");
        assert_eq!(
            slug("Workspace/Org Administration"),
            "workspace-org-administration"
        );
        assert_eq!(slug("///"), "");
    }

    #[test]
    fn paths_are_joined_under_the_base() {
        let u = |s: &str| url::Url::parse(s).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            join_path(&u("https://api.status.io"), &["1.0", "status", "abc"]).as_str(),
            "https://api.status.io/1.0/status/abc"
        );
        assert_eq!(
            join_path(&u("https://m.example/mirror/?k=v"), &["summary.json"]).as_str(),
            "https://m.example/mirror/summary.json?k=v"
        );
        assert_eq!(
            join_path(&u("https://m.example/a"), &["x/../y"]).as_str(),
            "https://m.example/a/x%2F..%2Fy"
        );
        let climbed = join_path(&u("https://m.example/a/b"), &["..", "c"]);
        assert!(climbed.path().starts_with("/a/b/"), "{climbed}");
    }

    #[test]
    fn encodings() {
        let le: Vec<u8> = "{}".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = "{}".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert!(decode_json_body(&le).is_ok());
        assert!(decode_json_body(&be).is_ok());
        assert!(decode_json_body(b"\xEF\xBB\xBF[]").is_ok());
        let html = decode_json_body(b"  <!DOCTYPE html>").map(|_| ());
        assert_eq!(html.map_err(|e| e.reason), Err(Reason::Decode));
        let empty = decode_json_body(b" ").map(|_| ());
        assert_eq!(empty.map_err(|e| e.reason), Err(Reason::Decode));
        let bad = decode_json_body(b"{\"a\":").map(|_| ());
        assert_eq!(bad.map_err(|e| e.reason), Err(Reason::Decode));
    }
}
