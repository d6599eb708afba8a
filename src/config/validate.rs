//! From raw YAML to a validated [`Config`].
//!
//! [`load`] decodes the text, parses it into the `raw` types, then checks and
//! converts every value, collecting every issue it finds rather than stopping
//! at the first. Values are resolved in three layers: built-in
//! [`defaults`](super::defaults), then the file's `defaults:` block, then
//! the target's own fields. `${ENV}` references are expanded in every string
//! value before it is parsed (`$$` is a literal `$`), relative `*_file` paths
//! resolve against the config file's directory, and regexes and JSONPath
//! queries are compiled once here. The prober blocks other than
//! `statuspage` are validated in the `probers` submodule.
//!
//! Messages say what is wrong and what to change, and never echo secrets:
//! header values and tokens are not shown, and URLs are shown with their
//! userinfo, query string and fragment replaced by `***`.

use std::borrow::{Borrow, Cow};
use std::collections::{HashMap, HashSet};
use std::env::VarError;
use std::fmt::Write as _;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::{
    Localizer, Location, RenderOptions, SnippetMode, Spanned, UserMessageFormatter,
};
use url::Url;

mod probers;

use super::raw::{
    PROBER_BLOCKS, RawBackoff, RawCommon, RawComponents, RawConfig, RawProber, RawStatuspage,
    RawTarget, RawTls, SpannedMap,
};
use super::secret::{MAX_SECRET_FILE, Wrap, basic_auth_value, is_header_value, read_bounded};
use super::{
    Backoff, ComponentFilter, Config, ConfigError, ConfigIssue, Matcher, ProberConfig, Secret,
    StatuspageConfig, TargetConfig, TlsConfig, defaults,
};

/// How environment variables are looked up (tests inject their own).
pub(super) type EnvLookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// Most retries a target may ask for.
const MAX_RETRIES: u64 = 10;

/// Label names the exporter sets itself; static labels may not use them.
/// `le` is the bucket bound of every target's duration histogram: a second
/// `le` on a bucket line makes Prometheus reject the whole scrape.
const RESERVED_LABELS: [&str; 13] = [
    "target",
    "component",
    "component_id",
    "group",
    "impact",
    "incident_id",
    "name",
    "status",
    "reason",
    "prober",
    "url",
    "field",
    "le",
];

/// Validate config text; `path` is used for messages and for resolving
/// relative `*_file` paths. Environment variables come from the process.
pub(super) fn load(text: &[u8], path: &Path) -> Result<Config, ConfigError> {
    load_with_env(text, path, &|name| std::env::var(name))
}

/// [`load`] with an explicit environment.
pub(super) fn load_with_env(
    text: &[u8],
    path: &Path,
    env: EnvLookup<'_>,
) -> Result<Config, ConfigError> {
    let text = decode(text).map_err(|issue| ConfigError::new(path, vec![issue]))?;
    let raw = parse_yaml(text).map_err(|issue| ConfigError::new(path, vec![issue]))?;
    let mut cx = Ctx {
        dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
        env,
        issues: Vec::new(),
        json_families: HashMap::new(),
        shared_tls: HashSet::new(),
        shared_agents: HashSet::new(),
    };
    let config = cx.config(&raw);
    match config {
        Some(config) if cx.issues.is_empty() => Ok(config),
        _ => {
            if cx.issues.is_empty() {
                cx.issues.push(ConfigIssue::new(
                    0,
                    0,
                    "invalid configuration (no details recorded; please report this as a bug)",
                ));
            }
            Err(ConfigError::new(path, cx.issues))
        }
    }
}

/// The copy of `value` in `set`, added if it is not there yet: targets with
/// equal settings share one (see [`TargetConfig::tls`]).
fn shared<T, V>(set: &mut HashSet<Arc<T>>, value: V) -> Arc<T>
where
    T: Hash + Eq + ?Sized,
    V: Borrow<T> + Into<Arc<T>>,
{
    if let Some(existing) = set.get(value.borrow()) {
        return existing.clone();
    }
    let new: Arc<T> = value.into();
    set.insert(new.clone());
    new
}

// ---------------------------------------------------------------------------
// Decoding and YAML parsing
// ---------------------------------------------------------------------------

/// UTF-8 text without its byte-order mark.
pub(crate) fn decode(bytes: &[u8]) -> Result<&str, ConfigIssue> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(ConfigIssue::new(
            1,
            1,
            "the file is UTF-16: save it as UTF-8",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
        let line = valid.matches('\n').count() as u64 + 1;
        let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
        ConfigIssue::new(
            line,
            column,
            "the file is not valid UTF-8 here: save it as UTF-8",
        )
    })
}

fn parse_yaml(text: &str) -> Result<RawConfig, ConfigIssue> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.emit_comments = false;
    // Room for 10,000+ targets with labels and headers; anchors/aliases
    // keep the default limits against alias bombs.
    if let Some(budget) = options.budget.as_mut() {
        budget.max_nodes = budget.max_nodes.max(8_000_000);
        budget.max_events = budget.max_events.max(32_000_000);
    }
    serde_saphyr::from_str_with_options::<RawConfig>(text, options).map_err(|e| yaml_issue(&e))
}

/// A localizer that leaves the position out of messages (we print it as
/// `path:line:column:` ourselves).
struct NoLocationSuffix;

impl Localizer for NoLocationSuffix {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }
}

/// A serde-saphyr error as one plain issue line.
pub(crate) fn yaml_issue(err: &serde_saphyr::Error) -> ConfigIssue {
    let formatter = UserMessageFormatter.with_localizer(&NoLocationSuffix);
    let mut options = RenderOptions::new(&formatter);
    options.snippets = SnippetMode::Off;
    let rendered = err.render_with_options(options);
    let message = friendly_yaml_message(&one_line(&rendered));
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    ConfigIssue::new(line, column, message)
}

/// Reword the parser's messages that are terse for a config file's reader.
fn friendly_yaml_message(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once('`')
    {
        let expected = expected.trim_start_matches(',').trim();
        let names: Vec<&str> = if let Some(list) = expected.strip_prefix("expected one of ") {
            list.split(", ").map(|n| n.trim_matches('`')).collect()
        } else if let Some(one) = expected.strip_prefix("expected ") {
            vec![one.trim_matches('`')]
        } else {
            Vec::new()
        };
        let mut out = format!("unknown key `{key}`");
        if names.is_empty() {
            out.push_str(": no keys are allowed here");
        } else {
            let _ = write!(out, ": expected one of {}", names.join(", "));
            if let Some(close) = closest(key, &names) {
                let _ = write!(out, " (did you mean `{close}`?)");
            }
        }
        return out;
    }
    if msg.starts_with("duplicate mapping key") {
        return format!("{msg}: the key is already given above in the same mapping; keep one");
    }
    match msg {
        "expected mapping start" => {
            "expected a mapping here (`key: value` lines, or `{ key: value }`)".to_owned()
        }
        "expected sequence start" => {
            "expected a list here (`- item` lines, or `[a, b]`)".to_owned()
        }
        "expected string scalar" => {
            "expected a single value here (text, number or boolean), not a list or mapping"
                .to_owned()
        }
        _ => msg.to_owned(),
    }
}

/// The expected key closest to a misspelt one, if it is close enough.
pub(crate) fn closest<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).clamp(1, 3);
    names
        .iter()
        .map(|n| (edit_distance(key, n), *n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let v = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Text from the file as shown in a message: one line, control characters
/// escaped.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------
// Scalar parsers (pure; unit-tested below)
// ---------------------------------------------------------------------------

/// A humantime-style duration: one or more `<integer><unit>` parts,
/// optionally separated by spaces (`30s`, `1m 30s`, `1h30m`, `500ms`, `1d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut total_nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(format!(
                "expected a number at `{}`",
                shown(rest.split_whitespace().next().unwrap_or(rest))
            ));
        }
        let number: u128 = rest[..digits_end]
            .parse()
            .map_err(|_| "the number is too large".to_owned())?;
        rest = rest[digits_end..].trim_start();
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if unit.is_empty() {
            return Err(format!("`{number}` has no unit"));
        }
        let per_unit: u128 = match unit {
            "ns" | "nsec" | "nanos" => 1,
            "us" | "µs" | "usec" | "micros" => 1_000,
            "ms" | "msec" | "millis" => 1_000_000,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60 * 1_000_000_000,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * 1_000_000_000,
            "d" | "day" | "days" => 86_400 * 1_000_000_000,
            "w" | "week" | "weeks" => 7 * 86_400 * 1_000_000_000,
            other => return Err(format!("unknown unit `{}`", shown(other))),
        };
        total_nanos = number
            .checked_mul(per_unit)
            .and_then(|n| total_nanos.checked_add(n))
            .ok_or_else(|| "it is too large".to_owned())?;
        rest = rest[unit_end..].trim_start();
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| "it is too large")?;
    // The remainder is < 10^9, so it fits.
    let nanos = u32::try_from(total_nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// `d` rounded up to whole milliseconds: measured durations in messages,
/// never shown as less than they were.
pub fn ceil_to_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

/// A duration for messages, as people write them in config: `1m 30s`,
/// `500ms`, `2h`, `1s 500ms`. The one formatter: parsing its output gives
/// the same duration back.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let mut secs = d.as_secs();
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        if nanos.is_multiple_of(1_000_000) {
            parts.push(format!("{}ms", nanos / 1_000_000));
        } else if nanos.is_multiple_of(1_000) {
            parts.push(format!("{}us", nanos / 1_000));
        } else {
            parts.push(format!("{nanos}ns"));
        }
    }
    parts.join(" ")
}

/// A byte size: a plain integer, or an integer with a unit (`B`, `KB`,
/// `MB`, `GB`, `TB` in powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` in powers
/// of 1024; case-insensitive).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return Err("it does not start with a number".to_owned());
    }
    let number: u64 = text[..digits_end]
        .parse()
        .map_err(|_| "the number is too large".to_owned())?;
    let unit = text[digits_end..].trim();
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(format!("unknown unit `{}`", shown(unit))),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| "it is too large".to_owned())
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Why `${...}` expansion failed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ExpandError {
    Unset(String),
    NotUnicode(String),
    Unterminated,
    BadName(String),
}

impl ExpandError {
    fn message(&self) -> String {
        match self {
            ExpandError::Unset(name) => format!(
                "environment variable `{name}` is not set: set it before starting the exporter, \
                 or write `$${{{name}}}` for the literal text `${{{name}}}`"
            ),
            ExpandError::NotUnicode(name) => {
                format!("environment variable `{name}` is not valid UTF-8: give it a UTF-8 value")
            }
            ExpandError::Unterminated => {
                "`${` is not closed: write `${NAME}`, or `$$` for a literal `$`".to_owned()
            }
            ExpandError::BadName(name) => format!(
                "`${{{}}}` is not a valid environment variable reference: names are letters, \
                 digits and `_`, not starting with a digit (write `$$` for a literal `$`)",
                shown(name)
            ),
        }
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expand `${NAME}` from `env`; `$$` is a literal `$`, and any other `$` is
/// kept as is (so `^foo$` regexes need no escaping).
pub(super) fn expand_env(input: &str, env: EnvLookup<'_>) -> Result<String, ExpandError> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').ok_or(ExpandError::Unterminated)?;
            let name = &r[..end];
            if !is_env_name(name) {
                return Err(ExpandError::BadName(name.to_owned()));
            }
            match env(name) {
                Ok(value) => out.push_str(&value),
                Err(VarError::NotPresent) => return Err(ExpandError::Unset(name.to_owned())),
                Err(VarError::NotUnicode(_)) => {
                    return Err(ExpandError::NotUnicode(name.to_owned()));
                }
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A URL as it may be shown in a message: userinfo (which may hold a
/// password) replaced by `***`, and so are the query string and fragment
/// (which may hold a token). Works on text that does not parse.
pub(super) fn redact_url_text(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let authority_len = text[start..]
        .find(['/', '?', '#'])
        .unwrap_or(text.len() - start);
    let authority = &text[start..start + authority_len];
    let authority = match authority.rfind('@') {
        Some(at) => format!("***{}", &authority[at..]),
        None => authority.to_owned(),
    };
    let rest = &text[start + authority_len..];
    let rest = match rest.find(['?', '#']) {
        Some(i) => format!("{}{}***", &rest[..i], &rest[i..=i]),
        None => rest.to_owned(),
    };
    shown(&format!("{}{authority}{rest}", &text[..start]))
}

/// An absolute `http`/`https` URL with a host. `key` names the field in
/// messages.
pub(super) fn parse_http_url(text: &str, key: &str) -> Result<Url, String> {
    let display = redact_url_text(text);
    let example = "like `https://status.example.com`";
    match Url::parse(text) {
        Ok(url) => {
            if !matches!(url.scheme(), "http" | "https") {
                Err(format!(
                    "`{key}` `{display}` must start with `http://` or `https://` (scheme `{}` \
                     is not supported): write it {example}",
                    shown(url.scheme())
                ))
            } else if url.host_str().is_none_or(str::is_empty) {
                Err(format!(
                    "`{key}` `{display}` has no host: write it {example}"
                ))
            } else {
                Ok(url)
            }
        }
        Err(url::ParseError::RelativeUrlWithoutBase) => Err(format!(
            "`{key}` `{display}` is not an absolute URL: write it with `http://` or `https://` \
             and a host, {example}"
        )),
        Err(e) => Err(format!(
            "`{key}` `{display}` is not a valid URL ({e}): write it {example}"
        )),
    }
}

/// The URL a `statuspage` block fetches: `<base>/api/v2/summary.json`, or
/// the URL itself when its path already ends in `.json`.
pub(super) fn statuspage_summary_url(base: &Url) -> Url {
    if base.path().to_ascii_lowercase().ends_with(".json") {
        return base.clone();
    }
    let mut url = base.clone();
    let path = format!("{}/api/v2/summary.json", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// Move `user:password@` out of a URL into an `Authorization: Basic`
/// value, so the stored URL (printed by `Debug`, logs and labels) carries
/// no credentials. The request is the same: HTTP clients send URL userinfo
/// as basic auth.
pub(super) fn take_userinfo(url: &mut Url) -> Option<Secret> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let mut credentials = percent_decode(url.username());
    credentials.push(b':');
    credentials.extend(percent_decode(url.password().unwrap_or("")));
    // Cannot fail for the http(s) URLs that reach here.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(Secret::new(basic_auth_value(&credentials)))
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn is_target_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 9110 `token`.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// A header value must not contain control characters (CR/LF would split
/// the request). Tab is allowed.
/// The message for a regex that does not compile.
fn bad_regex(source: &str, key: &str, err: &regex::Error) -> String {
    format!(
        "invalid regex `{}` in `{key}`: {}; fix the pattern (escape special characters like \
         `(` or `[` with `\\`)",
        shown(source),
        regex_error_text(err)
    )
}

/// The first line of a regex error, without the pattern echo and caret art.
fn regex_error_text(err: &regex::Error) -> String {
    let text = err.to_string();
    let detail = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_owned);
    detail.unwrap_or_else(|| one_line(&text))
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: u64,
    column: u64,
}

impl From<Location> for Pos {
    fn from(loc: Location) -> Self {
        Pos {
            line: loc.line(),
            column: loc.column(),
        }
    }
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::from(s.referenced)
}

/// One overridable setting as written in one place.
#[derive(Debug, Clone, Default)]
enum Field<T> {
    /// Not given here.
    #[default]
    Unset,
    /// Given, but wrong (an issue was recorded).
    Invalid,
    Set(T, Pos),
}

/// The effective value of a setting for one target.
struct Eff<T> {
    value: T,
    /// Where it was set; `None` for a built-in default.
    pos: Option<Pos>,
    /// Set in the target itself (not inherited).
    own: bool,
}

/// The value for a target: its own, else `defaults:`, else built-in.
/// `None` when the deciding layer was invalid.
fn effective<T: Clone>(own: &Field<T>, inherited: &Field<T>, builtin: T) -> Option<Eff<T>> {
    match (own, inherited) {
        (Field::Set(v, p), _) => Some(Eff {
            value: v.clone(),
            pos: Some(*p),
            own: true,
        }),
        (Field::Invalid, _) | (Field::Unset, Field::Invalid) => None,
        (Field::Unset, Field::Set(v, p)) => Some(Eff {
            value: v.clone(),
            pos: Some(*p),
            own: false,
        }),
        (Field::Unset, Field::Unset) => Some(Eff {
            value: builtin,
            pos: None,
            own: false,
        }),
    }
}

/// An optional setting for a target: its own, else `defaults:`, else
/// none. `None` when the deciding layer was invalid.
fn optional<T: Clone>(own: &Field<T>, inherited: &Field<T>) -> Option<Option<T>> {
    match (own, inherited) {
        (Field::Set(v, _), _) | (Field::Unset, Field::Set(v, _)) => Some(Some(v.clone())),
        (Field::Invalid, _) | (Field::Unset, Field::Invalid) => None,
        (Field::Unset, Field::Unset) => Some(None),
    }
}

/// Where to report a problem between settings: one set in the target
/// itself first, else one set in `defaults:`, else the target.
fn blame(fallback: Pos, candidates: &[(Option<Pos>, bool)]) -> Pos {
    candidates
        .iter()
        .find(|(p, own)| *own && p.is_some())
        .or_else(|| candidates.iter().find(|(p, _)| p.is_some()))
        .and_then(|(p, _)| *p)
        .unwrap_or(fallback)
}

#[derive(Debug, Clone)]
struct Header {
    name: String,
    value: Secret,
    pos: Pos,
}

/// The common settings as written in `defaults:` or in one target.
#[derive(Debug, Clone, Default)]
struct Overrides {
    interval: Field<Duration>,
    timeout: Field<Duration>,
    retries: Field<u32>,
    backoff_initial: Field<Duration>,
    backoff_max: Field<Duration>,
    max_body_size: Field<u64>,
    user_agent: Field<String>,
    headers: Vec<Header>,
    ca_file: Field<PathBuf>,
    /// `cert_file` and `key_file`, which come as a pair.
    client_cert: Field<(PathBuf, PathBuf)>,
    server_name: Field<String>,
    insecure_skip_verify: Field<bool>,
    proxy_url: Field<Secret>,
    stale_after: Field<Duration>,
}

/// A validated prober block, plus what it adds to the target's requests.
struct ProberOut {
    config: ProberConfig,
    /// `Authorization` values the block gives (userinfo moved out of its
    /// URL, a `json` block's `auth:`): more than one is an error, reported
    /// with the target's own credentials.
    auth: Vec<Credentials>,
    /// The block's own `headers:` (`http`, `json`), which replace the
    /// target's by name.
    headers: Vec<Header>,
}

/// An `Authorization` header value given one way, for the "credentials
/// twice" check.
#[derive(Debug, Clone)]
struct Credentials {
    value: Secret,
    pos: Pos,
    /// How it was given, for messages: "a bearer token", ...
    how: &'static str,
}

impl ProberOut {
    fn new(config: ProberConfig) -> Self {
        ProberOut {
            config,
            auth: Vec::new(),
            headers: Vec::new(),
        }
    }
}

struct Ctx<'a> {
    /// The config file's directory, for relative paths.
    dir: PathBuf,
    env: EnvLookup<'a>,
    issues: Vec<ConfigIssue>,
    /// `json` metric families seen so far, across targets: one name has
    /// one type in the whole exposition.
    json_families: HashMap<String, probers::FamilySeen>,
    /// One shared copy of each distinct TLS block and user agent.
    shared_tls: HashSet<Arc<TlsConfig>>,
    shared_agents: HashSet<Arc<str>>,
}

impl Ctx<'_> {
    fn error(&mut self, at: Pos, message: impl Into<String>) {
        self.issues
            .push(ConfigIssue::new(at.line, at.column, message));
    }

    /// A string value with `${ENV}` expanded.
    fn text(&mut self, s: &Spanned<String>) -> Option<String> {
        match expand_env(&s.value, self.env) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(pos(s), e.message());
                None
            }
        }
    }

    fn config(&mut self, raw: &RawConfig) -> Option<Config> {
        let concurrency = self.count(
            raw.concurrency.as_deref(),
            "concurrency",
            defaults::CONCURRENCY as u64,
            1,
            u64::from(u32::MAX),
        );
        let per_host_concurrency = self.count(
            raw.per_host_concurrency.as_deref(),
            "per_host_concurrency",
            defaults::PER_HOST_CONCURRENCY as u64,
            1,
            u64::from(u32::MAX),
        );
        let min_interval_per_host = match &raw.min_interval_per_host {
            None => Some(Duration::ZERO),
            Some(s) => self.text(s).and_then(|text| match parse_duration(&text) {
                Ok(d) => Some(d),
                Err(why) => {
                    self.error(
                        pos(s),
                        format!(
                            "invalid duration `{}` for `min_interval_per_host`: {why}; write a \
                             number and a unit, like `1s` or `500ms` (`0s` for no spacing)",
                            shown(&text)
                        ),
                    );
                    None
                }
            }),
        };
        let inherited = match &raw.defaults {
            Some(d) => self.overrides(&d.value.common()),
            None => Overrides::default(),
        };
        let Some(targets) = &raw.targets else {
            self.error(
                Pos { line: 1, column: 1 },
                "`targets:` is missing: add a `targets:` list (`targets: []` for none)",
            );
            return None;
        };

        let mut names: HashMap<String, Pos> = HashMap::with_capacity(targets.value.len());
        let mut out = Vec::with_capacity(targets.value.len());
        let mut complete = true;
        for (index, target) in targets.value.iter().enumerate() {
            match self.target(target, index, &inherited, &mut names) {
                Some(t) => out.push(Arc::new(t)),
                None => complete = false,
            }
        }
        if !complete {
            return None;
        }
        Some(Config {
            concurrency: usize::try_from(concurrency?).ok()?,
            per_host_concurrency: usize::try_from(per_host_concurrency?).ok()?,
            min_interval_per_host: min_interval_per_host?,
            targets: out,
        })
    }

    /// An integer setting within `min..=max`, or its default when unset.
    fn count(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        match value {
            None => Some(default),
            Some(s) => match self.uint(s, key, min, max) {
                Field::Set(v, _) => Some(v),
                _ => None,
            },
        }
    }

    fn uint(&mut self, s: &Spanned<String>, key: &str, min: u64, max: u64) -> Field<u64> {
        let Some(text) = self.text(s) else {
            return Field::Invalid;
        };
        let Ok(n) = text.trim().parse::<u64>() else {
            self.error(
                pos(s),
                format!(
                    "`{key}` must be a whole number, got `{}`: write e.g. `{key}: {min}`",
                    shown(&text)
                ),
            );
            return Field::Invalid;
        };
        if n < min {
            self.error(
                pos(s),
                format!("`{key}` must be at least {min}, got {n}: raise `{key}`"),
            );
            return Field::Invalid;
        }
        if n > max {
            self.error(
                pos(s),
                format!("`{key}` must be at most {max}, got {n}: lower `{key}`"),
            );
            return Field::Invalid;
        }
        Field::Set(n, pos(s))
    }

    fn duration(&mut self, s: Option<&Spanned<String>>, key: &str) -> Field<Duration> {
        let Some(s) = s else {
            return Field::Unset;
        };
        let Some(text) = self.text(s) else {
            return Field::Invalid;
        };
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => {
                self.error(
                    pos(s),
                    format!("`{key}` must be greater than 0: write a duration like `30s`"),
                );
                Field::Invalid
            }
            Ok(d) => Field::Set(d, pos(s)),
            Err(why) => {
                self.error(
                    pos(s),
                    format!(
                        "invalid duration `{}` for `{key}`: {why}; write a number and a unit, \
                         like `30s`, `1m 30s`, `500ms`, `2h` or `1d`",
                        shown(&text)
                    ),
                );
                Field::Invalid
            }
        }
    }

    fn string(&mut self, s: Option<&Spanned<String>>, key: &str) -> Field<String> {
        let Some(s) = s else {
            return Field::Unset;
        };
        let Some(text) = self.text(s) else {
            return Field::Invalid;
        };
        if text.trim().is_empty() {
            self.error(
                pos(s),
                format!("`{key}` is empty: give it a value or remove the key"),
            );
            return Field::Invalid;
        }
        if text.chars().any(char::is_control) {
            self.error(
                pos(s),
                format!("`{key}` contains a control character (such as a line break): remove it"),
            );
            return Field::Invalid;
        }
        Field::Set(text, pos(s))
    }

    /// A path, resolved against the config file's directory, that must exist.
    fn file(&mut self, s: Option<&Spanned<String>>, key: &str) -> Field<PathBuf> {
        let Field::Set(text, at) = self.string(s, key) else {
            return match s {
                None => Field::Unset,
                Some(_) => Field::Invalid,
            };
        };
        let path = self.resolve(&text);
        if let Err(e) = std::fs::metadata(&path) {
            self.error(
                at,
                format!(
                    "`{key}` `{}` cannot be read ({e}): fix the path (relative paths are \
                     relative to the config file's directory)",
                    shown(&path.display().to_string())
                ),
            );
            return Field::Invalid;
        }
        Field::Set(path, at)
    }

    fn resolve(&self, text: &str) -> PathBuf {
        let path = Path::new(text);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    /// The common settings of `defaults:` or of one target.
    fn overrides(&mut self, c: &RawCommon<'_>) -> Overrides {
        let mut o = Overrides {
            interval: self.duration(c.interval, "interval"),
            timeout: self.duration(c.timeout, "timeout"),
            ..Overrides::default()
        };
        if let Some(s) = c.retries {
            o.retries = match self.uint(s, "retries", 0, MAX_RETRIES) {
                Field::Set(n, p) => Field::Set(u32::try_from(n).unwrap_or(u32::MAX), p),
                _ => Field::Invalid,
            };
        }
        if let Some(b) = c.backoff {
            let RawBackoff { initial, max } = &b.value;
            o.backoff_initial = self.duration(initial.as_deref(), "backoff.initial");
            o.backoff_max = self.duration(max.as_deref(), "backoff.max");
        }
        if let Some(s) = c.max_body_size {
            o.max_body_size = self.size(s, "max_body_size");
        }
        o.user_agent = self.string(c.user_agent, "user_agent");
        o.headers = self.headers(c.headers, c.headers_file);
        if let Some(tls) = c.tls {
            self.tls(tls, &mut o);
        }
        o.proxy_url = self.proxy_url(c.proxy_url, c.proxy_url_file);
        o.stale_after = self.duration(c.stale_after, "stale_after");
        o
    }

    /// `proxy_url`, or `proxy_url_file` (a file holding it), not both.
    fn proxy_url(
        &mut self,
        literal: Option<&Spanned<String>>,
        file: Option<&Spanned<String>>,
    ) -> Field<Secret> {
        let (text, at, key) = match (literal, file) {
            (None, None) => return Field::Unset,
            (Some(_), Some(f)) => {
                self.error(
                    pos(f),
                    "both `proxy_url` and `proxy_url_file` are given: keep one",
                );
                return Field::Invalid;
            }
            (Some(s), None) => (self.text(s), pos(s), "proxy_url"),
            (None, Some(f)) => (
                self.secret_file(f, "proxy_url_file")
                    .map(|s| s.expose().to_owned()),
                pos(f),
                "proxy_url_file",
            ),
        };
        let Some(text) = text else {
            return Field::Invalid;
        };
        match parse_http_url(&text, key) {
            Ok(_) => Field::Set(Secret::new(text), at),
            Err(msg) => {
                self.error(at, msg);
                Field::Invalid
            }
        }
    }

    fn size(&mut self, s: &Spanned<String>, key: &str) -> Field<u64> {
        let Some(text) = self.text(s) else {
            return Field::Invalid;
        };
        match parse_size(&text) {
            Ok(0) => {
                self.error(
                    pos(s),
                    format!("`{key}` must be greater than 0: write a size like `4MiB`"),
                );
                Field::Invalid
            }
            Ok(n) => Field::Set(n, pos(s)),
            Err(why) => {
                self.error(
                    pos(s),
                    format!(
                        "invalid size `{}` for `{key}`: {why}; write bytes, or a number and a \
                         unit, like `4MiB`, `512KiB` or `1MB`",
                        shown(&text)
                    ),
                );
                Field::Invalid
            }
        }
    }

    /// `headers:` and `headers_file:` (name → a file holding the value)
    /// together: names valid and unique across both, values on one line.
    fn headers(
        &mut self,
        literal: Option<&Spanned<SpannedMap>>,
        files: Option<&Spanned<SpannedMap>>,
    ) -> Vec<Header> {
        let entries = literal
            .into_iter()
            .flat_map(|m| m.value.0.iter().map(|e| (e, false)))
            .chain(
                files
                    .into_iter()
                    .flat_map(|m| m.value.0.iter().map(|e| (e, true))),
            );
        let mut out: Vec<Header> = Vec::new();
        for ((key, value), from_file) in entries {
            let name = key.value.as_str();
            if !is_header_name(name) {
                self.error(
                    pos(key),
                    format!(
                        "`{}` is not a valid HTTP header name: use letters, digits and `-` \
                         (like `X-Api-Key`)",
                        shown(name)
                    ),
                );
                continue;
            }
            if name.eq_ignore_ascii_case("user-agent") {
                self.error(
                    pos(key),
                    "`User-Agent` is set with `user_agent:` (in the target or in `defaults`), \
                     not in `headers`: move it there",
                );
                continue;
            }
            if let Some(first) = out.iter().find(|h| h.name.eq_ignore_ascii_case(name)) {
                self.error(
                    pos(key),
                    format!(
                        "header `{name}` is given twice (also at line {}; header names are \
                         case-insensitive, and `headers` and `headers_file` share them): keep one",
                        first.pos.line
                    ),
                );
                continue;
            }
            let secret = if from_file {
                self.secret_file(value, &format!("headers_file.{name}"))
            } else {
                self.text(value).map(Secret::new)
            };
            let Some(secret) = secret else {
                continue;
            };
            if !is_header_value(secret.expose()) {
                let whose = if from_file {
                    format!("the file given for header `{name}`")
                } else {
                    format!("the value of header `{name}`")
                };
                self.error(
                    pos(value),
                    format!(
                        "{whose} contains a control character (such as a line break): \
                         remove it"
                    ),
                );
                continue;
            }
            out.push(Header {
                name: name.to_owned(),
                value: secret,
                pos: pos(key),
            });
        }
        out
    }

    fn tls(&mut self, tls: &Spanned<RawTls>, o: &mut Overrides) {
        let RawTls {
            ca_file,
            cert_file,
            key_file,
            server_name,
            insecure_skip_verify,
        } = &tls.value;
        o.ca_file = self.file(ca_file.as_deref(), "tls.ca_file");
        let cert = self.file(cert_file.as_deref(), "tls.cert_file");
        let key = self.file(key_file.as_deref(), "tls.key_file");
        o.client_cert = match (cert, key) {
            (Field::Unset, Field::Unset) => Field::Unset,
            (Field::Set(c, p), Field::Set(k, _)) => Field::Set((c, k), p),
            (Field::Set(_, p), Field::Unset) => {
                self.error(
                    p,
                    "`tls.cert_file` is given without `tls.key_file`: a client certificate \
                     needs its key, add `key_file` or remove `cert_file`",
                );
                Field::Invalid
            }
            (Field::Unset, Field::Set(_, p)) => {
                self.error(
                    p,
                    "`tls.key_file` is given without `tls.cert_file`: a client key needs its \
                     certificate, add `cert_file` or remove `key_file`",
                );
                Field::Invalid
            }
            _ => Field::Invalid,
        };
        o.server_name = self.string(server_name.as_deref(), "tls.server_name");
        if let Some(s) = insecure_skip_verify {
            o.insecure_skip_verify = match self.flag(s, "tls.insecure_skip_verify") {
                Some(b) => Field::Set(b, pos(s)),
                None => Field::Invalid,
            };
        }
    }

    /// A `true`/`false` value.
    fn flag(&mut self, s: &Spanned<String>, key: &str) -> Option<bool> {
        let text = self.text(s)?;
        let flag = parse_bool(&text);
        if flag.is_none() {
            self.error(
                pos(s),
                format!("`{key}` must be `true` or `false`, got `{}`", shown(&text)),
            );
        }
        flag
    }

    fn target(
        &mut self,
        target: &Spanned<RawTarget>,
        index: usize,
        inherited: &Overrides,
        names: &mut HashMap<String, Pos>,
    ) -> Option<TargetConfig> {
        let at = pos(target);
        let raw = &target.value;

        let name = self.target_name(raw, at, names);
        let label = match &name {
            Some(n) => format!("target `{n}`"),
            None => format!("target #{}", index + 1),
        };
        let labels = self.labels(raw);
        let own = self.overrides(&raw.common());
        let prober = self.prober(raw, at, &label);
        let bearer = self
            .bearer(
                raw.bearer_token.as_deref(),
                raw.bearer_token_file.as_deref(),
                "",
                &label,
            )
            .flatten();

        // Layering: own setting, else `defaults:`, else built-in.
        let interval = effective(&own.interval, &inherited.interval, defaults::INTERVAL);
        let timeout = effective(&own.timeout, &inherited.timeout, defaults::TIMEOUT);
        let retries = effective(&own.retries, &inherited.retries, defaults::RETRIES);
        let initial = effective(
            &own.backoff_initial,
            &inherited.backoff_initial,
            defaults::BACKOFF_INITIAL,
        );
        let max = effective(
            &own.backoff_max,
            &inherited.backoff_max,
            defaults::BACKOFF_MAX,
        );
        let max_body_size = effective(
            &own.max_body_size,
            &inherited.max_body_size,
            defaults::MAX_BODY_SIZE,
        );
        let user_agent = effective(
            &own.user_agent,
            &inherited.user_agent,
            defaults::user_agent(),
        );
        let ca_file = optional(&own.ca_file, &inherited.ca_file);
        let client_cert = optional(&own.client_cert, &inherited.client_cert);
        let server_name = optional(&own.server_name, &inherited.server_name);
        let insecure = effective(
            &own.insecure_skip_verify,
            &inherited.insecure_skip_verify,
            false,
        );
        let proxy_url = optional(&own.proxy_url, &inherited.proxy_url);

        if let (
            Some(t),
            Some(ProberOut {
                config: ProberConfig::Http(http),
                ..
            }),
        ) = (&timeout, &prober)
            && let Some(max) = http.expect.max_latency
            && max >= t.value
        {
            self.error(
                blame(at, &[(t.pos, t.own)]),
                format!(
                    "expect.max_latency {} can never fail: the probe times out first, at \
                     timeout {}; lower `max_latency` or raise `timeout`",
                    format_duration(max),
                    format_duration(t.value)
                ),
            );
        }
        if let (Some(t), Some(i)) = (&timeout, &interval)
            && t.value >= i.value
        {
            self.error(
                blame(at, &[(t.pos, t.own), (i.pos, i.own)]),
                format!(
                    "timeout {} must be shorter than interval {}: lower `timeout` or raise \
                     `interval`",
                    format_duration(t.value),
                    format_duration(i.value)
                ),
            );
        }
        if let (Some(lo), Some(hi)) = (&initial, &max)
            && lo.value > hi.value
        {
            self.error(
                blame(at, &[(lo.pos, lo.own), (hi.pos, hi.own)]),
                format!(
                    "backoff.initial {} must not exceed backoff.max {}: lower `initial` or \
                     raise `max`",
                    format_duration(lo.value),
                    format_duration(hi.value)
                ),
            );
        }
        let stale_after = match (&interval, &own.stale_after, &inherited.stale_after) {
            (_, Field::Invalid, _) | (_, Field::Unset, Field::Invalid) | (None, _, _) => None,
            (Some(i), Field::Unset, Field::Unset) => Some(
                i.value
                    .checked_mul(defaults::STALE_INTERVALS)
                    .unwrap_or(Duration::MAX),
            ),
            (Some(i), own_stale, inherited_stale) => {
                let (value, p, is_own) = match (own_stale, inherited_stale) {
                    (Field::Set(v, p), _) => (*v, *p, true),
                    (_, Field::Set(v, p)) => (*v, *p, false),
                    _ => (i.value, at, false),
                };
                // Probes end on the interval's grid plus their own
                // duration, so two successes are normally at most interval
                // + timeout apart: less would drop the status series between
                // two good probes whenever the second took longer.
                let t = timeout.as_ref();
                let least = i
                    .value
                    .saturating_add(t.map_or(Duration::ZERO, |t| t.value));
                if value < least {
                    self.error(
                        blame(
                            at,
                            &[
                                (Some(p), is_own),
                                (i.pos, i.own),
                                (t.and_then(|t| t.pos), t.is_some_and(|t| t.own)),
                            ],
                        ),
                        format!(
                            "stale_after {} must be at least interval + timeout ({}): two \
                             successful probes can end that far apart; raise `stale_after` \
                             (it defaults to {} × interval)",
                            format_duration(value),
                            format_duration(least),
                            defaults::STALE_INTERVALS
                        ),
                    );
                }
                Some(value)
            }
        };

        // Headers: `defaults:` ones, replaced by name by the target's own,
        // then by the prober block's own, then credentials (bearer token,
        // userinfo moved out of the URL, a block's `auth:`) as
        // `Authorization`, which the target may give only one way.
        let block_headers: &[Header] = prober.as_ref().map_or(&[], |p| &p.headers);
        let mut headers: Vec<(String, Secret)> = Vec::new();
        for h in inherited
            .headers
            .iter()
            .chain(own.headers.iter())
            .chain(block_headers)
        {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&h.name));
            headers.push((h.name.clone(), h.value.clone()));
        }
        let mut ways: Vec<Credentials> = Vec::new();
        for h in own.headers.iter().chain(block_headers) {
            if h.name.eq_ignore_ascii_case("authorization") {
                ways.push(Credentials {
                    value: h.value.clone(),
                    pos: h.pos,
                    how: "an `Authorization` header",
                });
            }
        }
        if let Some((token, p)) = bearer {
            ways.push(Credentials {
                value: token.wrapped(Wrap::Bearer),
                pos: p,
                how: "a bearer token",
            });
        }
        if let Some(p) = &prober {
            ways.extend(p.auth.iter().cloned());
        }
        ways.sort_by_key(|w| (w.pos.line, w.pos.column));
        if let [first, others @ ..] = ways.as_slice() {
            for other in others {
                self.error(
                    other.pos,
                    format!(
                        "{label} gives credentials twice, as {} (line {}) and as {}: keep one",
                        first.how, first.pos.line, other.how
                    ),
                );
            }
        }
        if let Some(auth) = ways.into_iter().next() {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
            headers.push(("Authorization".to_owned(), auth.value));
        }

        let (cert_file, key_file) = match client_cert {
            Some(Some((cert, key))) => (Some(cert), Some(key)),
            _ => (None, None),
        };
        let tls = TlsConfig {
            ca_file: ca_file.flatten(),
            cert_file,
            key_file,
            server_name: server_name.flatten(),
            insecure_skip_verify: insecure.is_some_and(|e| e.value),
        };
        // Built once per distinct block, as the probes will: a CA file that
        // is not PEM, a key that does not match its certificate or a bad
        // server name fails here (and in `--config.check`), not at every
        // probe.
        if tls != TlsConfig::default()
            && !self.shared_tls.contains(&tls)
            && let Err(e) = crate::http::rustls_config(&tls)
        {
            self.error(
                at,
                format!("{label}: its `tls` settings cannot be used: {e}"),
            );
        }
        let tls = shared(&mut self.shared_tls, tls);
        let user_agent = user_agent.map(|agent| shared(&mut self.shared_agents, agent.value));

        Some(TargetConfig {
            name: name?,
            labels: labels?,
            interval: interval?.value,
            timeout: timeout?.value,
            retries: retries?.value,
            backoff: Backoff {
                initial: initial?.value,
                max: max?.value,
            },
            max_body_size: max_body_size?.value,
            user_agent: user_agent?,
            headers,
            tls,
            proxy_url: proxy_url?,
            stale_after: stale_after?,
            prober: prober?.config,
        })
    }

    fn target_name(
        &mut self,
        raw: &RawTarget,
        at: Pos,
        names: &mut HashMap<String, Pos>,
    ) -> Option<String> {
        let Some(s) = &raw.name else {
            self.error(
                at,
                "target has no `name`: add `name: <unique name>` (it becomes the `target` label)",
            );
            return None;
        };
        let name = self.text(s)?;
        if name.is_empty() {
            self.error(
                pos(s),
                "target `name` is empty: give the target a unique name",
            );
            return None;
        }
        if !is_target_name(&name) {
            self.error(
                pos(s),
                format!(
                    "target name `{}` is not allowed: use letters, digits, `_`, `.`, `:` and \
                     `-`, starting with a letter or digit",
                    shown(&name)
                ),
            );
            return None;
        }
        if let Some(first) = names.get(&name) {
            self.error(
                pos(s),
                format!(
                    "duplicate target name `{name}`: the target at line {} already uses it; \
                     names must be unique, rename one",
                    first.line
                ),
            );
            return None;
        }
        names.insert(name.clone(), pos(s));
        Some(name)
    }

    /// Static labels, sorted by key.
    fn labels(&mut self, raw: &RawTarget) -> Option<Vec<(String, String)>> {
        let Some(map) = &raw.labels else {
            return Some(Vec::new());
        };
        let mut out = Vec::with_capacity(map.value.0.len());
        let mut ok = true;
        for (key, value) in &map.value.0 {
            let name = key.value.as_str();
            if !is_label_name(name) {
                self.error(
                    pos(key),
                    format!(
                        "`{}` is not a valid Prometheus label name: use letters, digits and \
                         `_`, not starting with a digit",
                        shown(name)
                    ),
                );
                ok = false;
                continue;
            }
            if name.starts_with("__") {
                self.error(
                    pos(key),
                    format!(
                        "label name `{name}` is reserved (names starting with `__` are for \
                         Prometheus internals): rename it"
                    ),
                );
                ok = false;
                continue;
            }
            if RESERVED_LABELS.contains(&name) {
                self.error(
                    pos(key),
                    format!(
                        "label name `{name}` is reserved: the exporter sets it on its own \
                         series; rename it (reserved: {})",
                        RESERVED_LABELS.join(", ")
                    ),
                );
                ok = false;
                continue;
            }
            match self.text(value) {
                Some(v) => out.push((name.to_owned(), v)),
                None => ok = false,
            }
        }
        out.sort();
        ok.then_some(out)
    }

    /// The bearer token, from `bearer_token` or `bearer_token_file`
    /// (`prefix` names where they are, like `auth.`, in messages).
    /// `None`: invalid; `Some(None)`: not set.
    fn bearer(
        &mut self,
        token: Option<&Spanned<String>>,
        file: Option<&Spanned<String>>,
        prefix: &str,
        label: &str,
    ) -> Option<Option<(Secret, Pos)>> {
        match (token, file) {
            (None, None) => Some(None),
            (Some(_), Some(file)) => {
                self.error(
                    pos(file),
                    format!(
                        "{label} sets both `{prefix}bearer_token` and `{prefix}bearer_token_file`: \
                         keep one"
                    ),
                );
                None
            }
            (Some(token), None) => {
                let key = format!("{prefix}bearer_token");
                let text = self.text(token)?;
                self.check_token(&text, pos(token), &key)?;
                Some(Some((Secret::new(text), pos(token))))
            }
            (None, Some(file)) => {
                let key = format!("{prefix}bearer_token_file");
                let token = self.secret_file(file, &key)?;
                self.check_token(token.expose(), pos(file), &key)?;
                Some(Some((token, pos(file))))
            }
        }
    }

    /// A `*_file` secret: its content without its trailing line break, read
    /// again from the file for each request (see [`Secret::current`]).
    fn secret_file(&mut self, file: &Spanned<String>, key: &str) -> Option<Secret> {
        let (path, content) = self.read_secret_file(file, key)?;
        Some(Secret::from_file(path, &content))
    }

    /// `http.body_file`: the request body, exactly as the file holds it.
    fn body_file(&mut self, file: &Spanned<String>) -> Option<String> {
        self.read_secret_file(file, "body_file")
            .map(|(_, body)| body)
    }

    /// The resolved path of a `*_file` and its content.
    fn read_secret_file(&mut self, file: &Spanned<String>, key: &str) -> Option<(PathBuf, String)> {
        let text = self.text(file)?;
        let path = self.resolve(&text);
        let content = match read_bounded(&path, MAX_SECRET_FILE) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.error(
                    pos(file),
                    format!(
                        "`{key}` `{}` is larger than {} KiB: point it at the file that \
                         holds just the value",
                        shown(&path.display().to_string()),
                        MAX_SECRET_FILE / 1024
                    ),
                );
                return None;
            }
            Err(e) => {
                self.error(
                    pos(file),
                    format!(
                        "`{key}` `{}` cannot be read ({e}): fix the path (relative paths are \
                         relative to the config file's directory)",
                        shown(&path.display().to_string())
                    ),
                );
                return None;
            }
        };
        let Ok(content) = String::from_utf8(content) else {
            self.error(
                pos(file),
                format!(
                    "`{key}` `{}` is not UTF-8 text: write the secret as text",
                    shown(&path.display().to_string())
                ),
            );
            return None;
        };
        Some((path, content))
    }

    fn check_token(&mut self, token: &str, at: Pos, key: &str) -> Option<()> {
        if token.is_empty() {
            self.error(
                at,
                format!("`{key}` gives an empty token: provide the token"),
            );
            return None;
        }
        if !is_header_value(token) {
            self.error(
                at,
                format!(
                    "`{key}` gives a token with a control character (such as a line break \
                     inside it): it must be a single line"
                ),
            );
            return None;
        }
        Some(())
    }

    fn prober(&mut self, raw: &RawTarget, at: Pos, label: &str) -> Option<ProberOut> {
        let blocks = raw.probers();
        let static_labels: Vec<&str> = raw
            .labels
            .as_ref()
            .map(|m| m.value.0.iter().map(|(k, _)| k.value.as_str()).collect())
            .unwrap_or_default();
        match blocks.as_slice() {
            [] => {
                let names: Vec<&str> = PROBER_BLOCKS.iter().map(|k| k.as_str()).collect();
                self.error(
                    at,
                    format!(
                        "{label} has no prober block: add one of {}",
                        names.join(", ")
                    ),
                );
                None
            }
            [only] => self.prober_block(only, label, &static_labels),
            [first, second, rest @ ..] => {
                let message = if rest.is_empty() {
                    format!(
                        "{label} has two prober blocks: `{}` and `{}`; keep one",
                        first.kind(),
                        second.kind()
                    )
                } else {
                    let listed: Vec<String> =
                        blocks.iter().map(|b| format!("`{}`", b.kind())).collect();
                    format!(
                        "{label} has {} prober blocks: {}; keep one",
                        blocks.len(),
                        listed.join(", ")
                    )
                };
                self.error(Pos::from(second.location()), message);
                // Still check every block, to report everything at once.
                for block in &blocks {
                    let _ = self.prober_block(block, label, &static_labels);
                }
                None
            }
        }
    }

    fn prober_block(
        &mut self,
        block: &RawProber<'_>,
        label: &str,
        static_labels: &[&str],
    ) -> Option<ProberOut> {
        match block {
            RawProber::Statuspage(b) => {
                self.statuspage(b, label)
                    .map(|(config, basic_auth)| ProberOut {
                        config: ProberConfig::Statuspage(config),
                        auth: basic_auth
                            .map(|(value, pos)| Credentials {
                                value,
                                pos,
                                how: "a user and password in the URL",
                            })
                            .into_iter()
                            .collect(),
                        headers: Vec::new(),
                    })
            }
            RawProber::Statusio(b) => self.statusio(b, label),
            RawProber::Vendor(kind, b) => self.vendor(*kind, b, label),
            RawProber::GoogleCloud(b) => self.google_cloud(b, label),
            RawProber::Http(b) => self.http(b, label),
            RawProber::Json(b) => self.json(b, label, static_labels),
        }
    }

    fn statuspage(
        &mut self,
        block: &Spanned<Option<Box<RawStatuspage>>>,
        label: &str,
    ) -> Option<(StatuspageConfig, Option<(Secret, Pos)>)> {
        let Some(raw) = &block.value else {
            self.error(
                pos(block),
                format!(
                    "{label}: `statuspage` needs a `url`: write `statuspage: {{ url: \
                     https://status.example.com }}`"
                ),
            );
            return None;
        };
        let mut basic_auth = None;
        let url = match &raw.url {
            None => {
                self.error(
                    pos(block),
                    format!(
                        "{label}: `statuspage` needs a `url`, the page's base URL (like \
                         `https://www.githubstatus.com`)"
                    ),
                );
                None
            }
            Some(s) => {
                let text = self.text(s);
                match text.map(|t| parse_http_url(&t, "url")) {
                    None => None,
                    Some(Ok(mut base)) => {
                        basic_auth = take_userinfo(&mut base).map(|b| (b, pos(s)));
                        Some(statuspage_summary_url(&base))
                    }
                    Some(Err(msg)) => {
                        self.error(pos(s), msg);
                        None
                    }
                }
            }
        };
        let components = match &raw.components {
            None => Some(ComponentFilter::default()),
            Some(c) => self.components(&c.value),
        };
        let max_components = self.count(
            raw.max_components.as_deref(),
            "max_components",
            defaults::MAX_COMPONENTS as u64,
            1,
            u64::from(u32::MAX),
        );
        let config = StatuspageConfig {
            url: url?,
            components: components?,
            max_components: usize::try_from(max_components?).ok()?,
        };
        Some((config, basic_auth))
    }

    fn components(&mut self, raw: &RawComponents) -> Option<ComponentFilter> {
        let include = self.matchers(raw.include.as_deref(), "include");
        let exclude = self.matchers(raw.exclude.as_deref(), "exclude");
        Some(ComponentFilter {
            include: include?,
            exclude: exclude?,
        })
    }

    fn matchers(&mut self, list: Option<&[Spanned<String>]>, key: &str) -> Option<Vec<Matcher>> {
        let list = list.unwrap_or_default();
        let mut out = Vec::with_capacity(list.len());
        let mut ok = true;
        for s in list {
            let Some(source) = self.text(s) else {
                ok = false;
                continue;
            };
            match regex::Regex::new(&source) {
                Ok(regex) => out.push(Matcher { source, regex }),
                Err(e) => {
                    self.error(pos(s), bad_regex(&source, &format!("components.{key}"), &e));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_parse_like_humantime() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 1 min "), Ok(Duration::from_secs(60)));
        assert_eq!(
            parse_duration("1h 2m 3s 4ms"),
            Ok(Duration::new(3723, 4_000_000))
        );
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(parse_duration("30").unwrap_err(), "`30` has no unit");
        assert_eq!(parse_duration("30x").unwrap_err(), "unknown unit `x`");
        assert_eq!(parse_duration("").unwrap_err(), "it is empty");
        assert_eq!(parse_duration("s").unwrap_err(), "expected a number at `s`");
        assert_eq!(parse_duration("1.5s").unwrap_err(), "unknown unit `.`");
        assert!(parse_duration("-1s").is_err());
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999w").unwrap_err(),
            "the number is too large"
        );
        assert_eq!(
            parse_duration("9999999999999999999999w").unwrap_err(),
            "it is too large"
        );
    }

    #[test]
    fn durations_format_for_messages() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(format_duration(ms(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_nanos(1500)), "1500ns");
        assert_eq!(format_duration(ms(1500)), "1s 500ms");
    }

    proptest::proptest! {
        /// Whatever a message says, a user can paste back into the config.
        #[test]
        fn formatted_durations_parse_back(secs in 0u64..100_000_000, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4MiB"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100KB"), Ok(100_000));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1 mib"), Ok(1 << 20));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("4XB").unwrap_err(), "unknown unit `XB`");
        assert_eq!(
            parse_size("MiB").unwrap_err(),
            "it does not start with a number"
        );
        assert_eq!(parse_size("").unwrap_err(), "it is empty");
        assert_eq!(parse_size("99999999TiB").unwrap_err(), "it is too large");
    }

    #[test]
    fn statuspage_url_appends_summary_path() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            statuspage_summary_url(&u("https://www.githubstatus.com")).as_str(),
            "https://www.githubstatus.com/api/v2/summary.json"
        );
        assert_eq!(
            statuspage_summary_url(&u("https://www.githubstatus.com/")).as_str(),
            "https://www.githubstatus.com/api/v2/summary.json"
        );
        assert_eq!(
            statuspage_summary_url(&u("https://example.com/status/")).as_str(),
            "https://example.com/status/api/v2/summary.json"
        );
        assert_eq!(
            statuspage_summary_url(&u("http://127.0.0.1:8080/fixtures/github.json")).as_str(),
            "http://127.0.0.1:8080/fixtures/github.json"
        );
        assert_eq!(
            statuspage_summary_url(&u("https://x.example/?page=1")).as_str(),
            "https://x.example/api/v2/summary.json?page=1"
        );
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        assert!(parse_http_url("https://status.example.com", "url").is_ok());
        assert!(parse_http_url("http://10.0.0.1:8080/x", "url").is_ok());
        let e = parse_http_url("status.example.com", "url").unwrap_err();
        assert!(e.contains("is not an absolute URL"), "{e}");
        let e = parse_http_url("ftp://example.com/", "url").unwrap_err();
        assert!(e.contains("scheme `ftp`"), "{e}");
        let e = parse_http_url("https://user:hunter2@exa mple.com/", "url").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("https://***@exa mple.com/"), "{e}");
    }

    #[test]
    fn url_text_redaction() {
        assert_eq!(redact_url_text("https://a:b@h/p?q"), "https://***@h/p?***");
        assert_eq!(
            redact_url_text("https://h:99999/?token=t#f"),
            "https://h:99999/?***"
        );
        assert_eq!(redact_url_text("https://h/#token"), "https://h/#***");
        assert_eq!(redact_url_text("a:b@h/p"), "***@h/p");
        assert_eq!(redact_url_text("https://h/p@x"), "https://h/p@x");
        assert_eq!(redact_url_text("https://u:p@w@h"), "https://***@h");
        assert_eq!(redact_url_text("https://h\n"), "https://h\\n");
    }

    #[test]
    fn env_expansion() {
        let env = |name: &str| match name {
            "TOKEN" => Ok("s3cret".to_owned()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        };
        assert_eq!(
            expand_env("a ${TOKEN} b", &env),
            Ok("a s3cret b".to_owned())
        );
        assert_eq!(
            expand_env("${TOKEN}${EMPTY}", &env),
            Ok("s3cret".to_owned())
        );
        assert_eq!(
            expand_env("$$HOME $${TOKEN}", &env),
            Ok("$HOME ${TOKEN}".to_owned())
        );
        assert_eq!(expand_env("^Visit$", &env), Ok("^Visit$".to_owned()));
        assert_eq!(expand_env("costs $5", &env), Ok("costs $5".to_owned()));
        assert_eq!(
            expand_env("${NOPE}", &env),
            Err(ExpandError::Unset("NOPE".to_owned()))
        );
        assert_eq!(expand_env("${TOKEN", &env), Err(ExpandError::Unterminated));
        assert_eq!(
            expand_env("${1X}", &env),
            Err(ExpandError::BadName("1X".to_owned()))
        );
        // Expanded values are not expanded again.
        let env2 = |_: &str| Ok("${TOKEN}".to_owned());
        assert_eq!(expand_env("${A}", &env2), Ok("${TOKEN}".to_owned()));
    }

    #[test]
    fn secret_files_are_read_with_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_SECRET_FILE as usize + 1]).unwrap();
        let exact = dir.path().join("exact");
        std::fs::write(&exact, vec![b'a'; MAX_SECRET_FILE as usize]).unwrap();
        assert!(read_bounded(&big, MAX_SECRET_FILE).unwrap().is_none());
        assert_eq!(
            read_bounded(&exact, MAX_SECRET_FILE)
                .unwrap()
                .map(|c| c.len()),
            Some(MAX_SECRET_FILE as usize)
        );
        // An endless file ends the read at the bound, with a clear error.
        for path in [big.to_str().unwrap(), "/dev/zero"] {
            let yaml = format!(
                "targets:\n  - name: a\n    bearer_token_file: {path}\n    statuspage: {{url: https://a.example}}\n"
            );
            let err = load(yaml.as_bytes(), &dir.path().join("x.yaml")).unwrap_err();
            assert_eq!((err.issues()[0].line, err.issues()[0].column), (3, 24));
            assert!(err.to_string().contains("is larger than 1024 KiB"), "{err}");
        }
    }

    #[test]
    fn load_expands_env_with_injected_lookup() {
        let yaml = b"targets:\n  - name: ${NAME}\n    interval: ${EVERY}\n    labels: {team: \"$$${TEAM}\"}\n    statuspage: {url: \"https://${HOST}\"}\n";
        let env = |name: &str| match name {
            "NAME" => Ok("gh".to_owned()),
            "EVERY" => Ok("2m".to_owned()),
            "TEAM" => Ok("dev".to_owned()),
            "HOST" => Ok("www.githubstatus.com".to_owned()),
            _ => Err(VarError::NotPresent),
        };
        let cfg = load_with_env(yaml, Path::new("x.yaml"), &env).unwrap();
        let t = &cfg.targets[0];
        assert_eq!(t.name, "gh");
        assert_eq!(t.interval, Duration::from_secs(120));
        assert_eq!(t.stale_after, Duration::from_secs(600));
        assert_eq!(t.labels, vec![("team".to_owned(), "$dev".to_owned())]);
        let ProberConfig::Statuspage(sp) = &t.prober else {
            panic!("not a statuspage target");
        };
        assert_eq!(
            sp.url.as_str(),
            "https://www.githubstatus.com/api/v2/summary.json"
        );

        let err = load_with_env(
            b"targets:\n  - name: a\n    user_agent: \"x ${MISSING}\"\n    statuspage: {url: https://a.example}\n",
            Path::new("x.yaml"),
            &env,
        )
        .unwrap_err();
        assert_eq!(err.issues().len(), 1);
        assert_eq!((err.issues()[0].line, err.issues()[0].column), (3, 17));
        assert!(err.to_string().contains("`MISSING` is not set"), "{err}");
    }

    /// Header values and the proxy URL, like tokens and passwords, can come
    /// from files (relative to the config file) so they stay out of it.
    #[test]
    fn headers_file_and_proxy_url_file_read_their_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "k3y\n").unwrap();
        std::fs::write(
            dir.path().join("proxy"),
            "http://u:p4ss@proxy.internal:3128\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("two-lines"), "a\nb\n").unwrap();
        std::fs::write(dir.path().join("body"), "{\"ping\": 1}\n").unwrap();
        let path = dir.path().join("exporter.yaml");
        let load =
            |yaml: &str| load_with_env(yaml.as_bytes(), &path, &|_| Err(VarError::NotPresent));
        let cfg = load(
            "defaults:\n  headers_file: { X-Default: key }\ntargets:\n  - name: a\n    \
             headers: { X-Plain: v }\n    headers_file: { X-Api-Key: key }\n    \
             proxy_url_file: proxy\n    http:\n      url: https://a.example/\n      \
             headers_file: { X-Block: key }\n      body_file: body\n",
        )
        .unwrap();
        let t = &cfg.targets[0];
        let header = |name: &str| {
            t.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.expose().to_owned())
        };
        assert_eq!(header("X-Plain").as_deref(), Some("v"));
        assert_eq!(header("X-Api-Key").as_deref(), Some("k3y"));
        assert_eq!(header("X-Block").as_deref(), Some("k3y"));
        // Merged with `defaults:` by name, as `headers` are.
        assert_eq!(header("X-Default").as_deref(), Some("k3y"));
        assert_eq!(
            t.proxy_url.as_ref().map(Secret::expose),
            Some("http://u:p4ss@proxy.internal:3128")
        );
        let ProberConfig::Http(http) = &t.prober else {
            panic!("an http target");
        };
        // A body is sent exactly as the file holds it.
        assert_eq!(
            http.body.as_ref().map(Secret::expose),
            Some("{\"ping\": 1}\n")
        );

        let err = load(
            "targets:\n  - name: a\n    headers: { X-Api-Key: v }\n    headers_file: { x-api-key: key, \
             X-Two: two-lines, X-Gone: nope }\n    proxy_url: http://p:1\n    proxy_url_file: proxy\n    \
             statuspage: { url: https://a.example }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(":4:21: header `x-api-key` is given twice"),
            "{err}"
        );
        assert!(
            err.contains("the file given for header `X-Two` contains a control character"),
            "{err}"
        );
        assert!(err.contains("`headers_file.X-Gone`"), "{err}");
        assert!(
            err.contains(":6:21: both `proxy_url` and `proxy_url_file` are given"),
            "{err}"
        );
        assert!(!err.contains("p4ss") && !err.contains("k3y"), "{err}");
    }

    #[test]
    fn userinfo_becomes_basic_auth() {
        let mut u = Url::parse("https://Aladdin:open%20sesame@example.com/x").unwrap();
        let auth = take_userinfo(&mut u).unwrap();
        assert_eq!(auth.expose(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(u.as_str(), "https://example.com/x");
        let mut plain = Url::parse("https://example.com/").unwrap();
        assert!(take_userinfo(&mut plain).is_none());
        assert_eq!(percent_decode("a%2Fb%zz%"), b"a/b%zz%".to_vec());
    }

    #[test]
    fn names_and_labels() {
        assert!(is_target_name("github"));
        assert!(is_target_name("a.b:c-d_e"));
        assert!(is_target_name("0day"));
        assert!(!is_target_name("-x"));
        assert!(!is_target_name("a b"));
        assert!(!is_target_name(""));
        assert!(is_label_name("team"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("1x"));
        assert!(!is_label_name("a-b"));
        assert!(is_header_name("X-Api-Key"));
        assert!(!is_header_name("X Api"));
        assert!(!is_header_name(""));
    }

    #[test]
    fn yaml_messages_are_plain_and_suggest_keys() {
        let err = load(
            b"targets:\n  - name: a\n    intervall: 30s\n",
            Path::new("c.yaml"),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("c.yaml:3:5: unknown key `intervall`: expected one of "),
            "{msg}"
        );
        assert!(msg.ends_with("(did you mean `interval`?)"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn utf8_bom_and_invalid_bytes() {
        let ok = load(b"\xEF\xBB\xBFtargets: []\n", Path::new("bom.yaml")).unwrap();
        assert!(ok.targets.is_empty());
        let err = load(b"targets: []\n# caf\xE9\n", Path::new("latin1.yaml")).unwrap_err();
        assert_eq!((err.issues()[0].line, err.issues()[0].column), (2, 6));
        assert!(err.to_string().contains("not valid UTF-8"));
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("interval", "intervall"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("timout", &["timeout", "interval"]), Some("timeout"));
        assert_eq!(closest("zzz", &["timeout", "interval"]), None);
    }
}
