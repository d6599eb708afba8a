//! [`ConfigError`]: everything wrong with a config file.
//!
//! Every issue carries the line and column it refers to. `Display` is the
//! compact form, one issue per line, which tools and tests parse:
//!
//! ```text
//! exporter.yaml:12:14: timeout 60s must be shorter than interval 30s: lower `timeout` or raise `interval`
//! exporter.yaml:20:5: unknown key `intervall`: expected one of name, labels, ... (did you mean `interval`?)
//! ```
//!
//! [`ConfigError::annotated`] is the form for people (start-up, reload,
//! `--config.check`, `probe`): each issue line is followed by the offending
//! line of the file with a caret under the column, like rustc:
//!
//! ```text
//! exporter.yaml:12:14: invalid duration `fast` for `interval`: ...
//!    |
//! 12 |     interval: fast
//!    |               ^^^^
//! ```
//!
//! Messages never contain secrets: header values and tokens are not echoed,
//! and URLs are shown with their userinfo replaced by `***`. The echoed
//! line is redacted too: a credential-bearing URL, a password or token
//! value, or a header value is shown as `<secret>`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One problem found in a config file. `line` and `column` are 1-based;
/// both are 0 when the problem has no position (an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigIssue {
    pub line: u64,
    pub column: u64,
    /// What is wrong and what to change.
    pub message: String,
}

impl ConfigIssue {
    pub fn new(line: u64, column: u64, message: impl Into<String>) -> Self {
        ConfigIssue {
            line,
            column,
            message: message.into(),
        }
    }

    /// Whether the issue points at a place in the file.
    pub fn has_position(&self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.has_position() {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// A config file that could not be read, parsed or validated. Holds every
/// issue found (validation does not stop at the first one).
///
/// `Display` prints one issue per line as `<path>:<line>:<column>: <message>`
/// (or `<path>: <message>` for issues without a position);
/// [`ConfigError::annotated`] adds the offending lines.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    path: PathBuf,
    issues: Vec<ConfigIssue>,
    /// The text the positions refer to, when known. It may hold
    /// credentials, so it is only ever shown line by line, redacted.
    text: Option<Arc<str>>,
}

impl ConfigError {
    /// An error with the given issues. Issues are sorted by position (the
    /// order among issues at one position is kept) and exact duplicates are
    /// dropped, so a bad `defaults:` value shared by many targets is
    /// reported once.
    pub fn new(path: &Path, mut issues: Vec<ConfigIssue>) -> Self {
        issues.sort_by_key(|i| (i.line, i.column));
        let mut seen = std::collections::HashSet::with_capacity(issues.len());
        let unique: Vec<ConfigIssue> = issues
            .into_iter()
            .filter(|issue| seen.insert(issue.clone()))
            .collect();
        ConfigError {
            path: path.to_path_buf(),
            issues: unique,
            text: None,
        }
    }

    /// The file could not be read.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        ConfigError::new(
            path,
            vec![ConfigIssue::new(0, 0, format!("cannot read: {err}"))],
        )
    }

    /// Keep the file's content (as read, a UTF-8 byte-order mark allowed)
    /// so [`ConfigError::annotated`] can show the offending lines.
    pub fn with_source(mut self, bytes: &[u8]) -> Self {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        self.text = Some(String::from_utf8_lossy(bytes).into());
        self
    }

    /// The file the issues are about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every issue, sorted by position.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }

    /// The error for people: each issue line as in `Display`, followed by
    /// the offending line of the file (redacted) with a caret under the
    /// column. Without the file's content it is the compact form.
    pub fn annotated(&self) -> Annotated<'_> {
        Annotated(self)
    }

    /// `path:line:col: message` (or `path: message`), the compact line of
    /// one issue.
    fn write_issue(&self, f: &mut fmt::Formatter<'_>, issue: &ConfigIssue) -> fmt::Result {
        let path = self.path.display();
        if issue.has_position() {
            write!(f, "{path}:{issue}")
        } else {
            write!(f, "{path}: {issue}")
        }
    }
}

/// The content is left out: it may hold credentials, and `{:?}` ends up in
/// logs and test failures.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigError")
            .field("path", &self.path)
            .field("issues", &self.issues)
            .field("text", &self.text.as_ref().map(|t| t.len()))
            .finish()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.issues.is_empty() {
            return write!(f, "{}: invalid configuration", self.path.display());
        }
        for (n, issue) in self.issues.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            self.write_issue(f, issue)?;
        }
        Ok(())
    }
}

/// [`ConfigError::annotated`]: issue lines with source snippets.
#[derive(Debug, Clone, Copy)]
pub struct Annotated<'a>(&'a ConfigError);

impl fmt::Display for Annotated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = self.0;
        let Some(text) = err.text.as_deref() else {
            return fmt::Display::fmt(err, f);
        };
        if err.issues.is_empty() {
            return fmt::Display::fmt(err, f);
        }
        let lines: Vec<&str> = text.lines().collect();
        for (n, issue) in err.issues.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            err.write_issue(f, issue)?;
            if let Some(snippet) = snippet(&lines, issue.line, issue.column) {
                f.write_str("\n")?;
                f.write_str(&snippet)?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Snippets
// ---------------------------------------------------------------------------

/// Longest line shown whole; longer ones are cut to a window around the
/// caret so one minified line does not flood a terminal.
const MAX_SHOWN_CHARS: usize = 120;
/// What a redacted value is shown as.
const SECRET: &str = "<secret>";

/// The gutter, the (redacted) line `line` of `lines` and a caret line under
/// `column`; `None` when the line is not in the file.
fn snippet(lines: &[&str], line: u64, column: u64) -> Option<String> {
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    if index >= lines.len() {
        return None;
    }
    let shown = ShownLine::new(lines, index);
    let caret = usize::try_from(column)
        .ok()
        .and_then(|c| c.checked_sub(1))
        .map(|c| shown.caret(c));
    let (text, caret) = window(&shown.text, caret);
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let mut out = format!("{pad} |\n{number} | {text}").trim_end().to_owned();
    if let Some((start, width)) = caret {
        out.push_str(&format!(
            "\n{pad} | {}{}",
            " ".repeat(start),
            "^".repeat(width)
        ));
    }
    Some(out)
}

/// One line as it is shown: secrets replaced by `<secret>`, control
/// characters by one visible character each, with the map from the
/// original character positions to the shown ones.
struct ShownLine {
    original: Vec<char>,
    text: Vec<char>,
    /// Original ranges replaced by `<secret>`, sorted, not overlapping.
    secrets: Vec<Range<usize>>,
    /// `shown_at[i]`: where original character `i` starts in `text`
    /// (one entry past the end, for a caret after the last character).
    shown_at: Vec<usize>,
}

impl ShownLine {
    fn new(lines: &[&str], index: usize) -> Self {
        let original: Vec<char> = lines.get(index).copied().unwrap_or("").chars().collect();
        let secrets = secret_ranges(lines, index, &original);
        let mut text = Vec::with_capacity(original.len());
        let mut shown_at = Vec::with_capacity(original.len() + 1);
        let mut i = 0;
        while i < original.len() {
            if let Some(secret) = secrets.iter().find(|r| r.start == i) {
                for _ in secret.clone() {
                    shown_at.push(text.len());
                }
                text.extend(SECRET.chars());
                i = secret.end;
                continue;
            }
            shown_at.push(text.len());
            text.push(printable(original[i]));
            i += 1;
        }
        shown_at.push(text.len());
        ShownLine {
            original,
            text,
            secrets,
            shown_at,
        }
    }

    /// Start and width, in shown characters, of the caret for the 0-based
    /// original column `column`: under the whole token there (inside a
    /// redacted value: under `<secret>`), at least one character wide.
    fn caret(&self, column: usize) -> (usize, usize) {
        let column = column.min(self.original.len());
        if let Some(secret) = self.secrets.iter().find(|r| r.contains(&column)) {
            return (self.shown_at[secret.start], SECRET.chars().count());
        }
        // A token holding a secret (a quoted URL) is measured as shown.
        let end = token_end(&self.original, column).min(self.original.len());
        let start = self.shown_at[column];
        let width = self.shown_at[end.max(column)] - start;
        (start, width.max(1))
    }
}

/// A character as shown: tabs as a space, other control characters as
/// `�`, so every original character stays one column wide.
fn printable(c: char) -> char {
    match c {
        '\t' => ' ',
        c if c.is_control() => '\u{FFFD}',
        c => c,
    }
}

/// The shown text, cut to [`MAX_SHOWN_CHARS`] around the caret when longer
/// (with `…` where it was cut), and the caret moved with it.
fn window(text: &[char], caret: Option<(usize, usize)>) -> (String, Option<(usize, usize)>) {
    if text.len() <= MAX_SHOWN_CHARS {
        return (text.iter().collect(), caret);
    }
    let anchor = caret.map_or(0, |(start, _)| start);
    let start = anchor
        .saturating_sub(MAX_SHOWN_CHARS / 3)
        .min(text.len() - MAX_SHOWN_CHARS);
    let end = start + MAX_SHOWN_CHARS;
    let mut shown = String::new();
    let lead = usize::from(start > 0);
    if start > 0 {
        shown.push('…');
    }
    shown.extend(&text[start..end]);
    if end < text.len() {
        shown.push('…');
    }
    let caret = caret.map(|(at, width)| {
        let at = at.clamp(start, end);
        (at - start + lead, width.min(end - at).max(1))
    });
    (shown, caret)
}

/// End (exclusive) of the YAML token starting at `i`: a quoted string with
/// its quotes, a bracketed flow collection, or a plain scalar or key.
fn token_end(chars: &[char], i: usize) -> usize {
    let Some(&c) = chars.get(i) else {
        return i + 1;
    };
    match c {
        '"' | '\'' => quoted_end(chars, i),
        '{' | '[' => bracket_end(chars, i),
        c if c.is_whitespace() => i + 1,
        _ => {
            let in_flow = chars[..i].iter().any(|c| matches!(c, '{' | '['));
            let end = plain_end(chars, i, in_flow);
            let trimmed = trim_back(chars, i, end);
            if trimmed == i { i + 1 } else { trimmed }
        }
    }
}

/// Index after the closing quote of the string opening at `i` (or the end
/// of the line when it is not closed there).
fn quoted_end(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' if quote == '"' => j += 2,
            '\'' if quote == '\'' && chars.get(j + 1) == Some(&'\'') => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

/// Index after the bracket closing the one at `i` (or the end of the line).
fn bracket_end(chars: &[char], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' => {
                j = quoted_end(chars, j);
                continue;
            }
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    chars.len()
}

/// Where a plain scalar (or key) starting at `i` ends: before `: `, a
/// comment, or (inside a flow collection) `,`, `]` or `}`.
fn plain_end(chars: &[char], i: usize, in_flow: bool) -> usize {
    let mut j = i;
    while j < chars.len() {
        let c = chars[j];
        if c == ':' && is_key_colon(chars, j, in_flow) {
            break;
        }
        if c == '#' && j > i && chars[j - 1].is_whitespace() {
            break;
        }
        if in_flow && matches!(c, ',' | ']' | '}') {
            break;
        }
        j += 1;
    }
    j
}

/// Whether the `:` at `j` ends a key (followed by a space, the end of the
/// line, or in flow context a flow indicator).
fn is_key_colon(chars: &[char], j: usize, in_flow: bool) -> bool {
    match chars.get(j + 1) {
        None => true,
        Some(c) if c.is_whitespace() => true,
        Some(c) => in_flow && matches!(c, ',' | ']' | '}'),
    }
}

/// `end` moved back over trailing whitespace, not before `start`.
fn trim_back(chars: &[char], start: usize, mut end: usize) -> usize {
    while end > start && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    end
}

// ---------------------------------------------------------------------------
// Redaction of echoed lines
// ---------------------------------------------------------------------------

/// One piece of a YAML line, as far as redaction needs to know.
#[derive(Debug, PartialEq)]
enum Piece {
    Key(String),
    /// A scalar value: its characters (quotes excluded) and their text.
    Value(Range<usize>, String),
    Open,
    Close,
    /// `,` in a flow collection or `- ` of a block sequence: the next value
    /// has no key yet.
    Separator,
}

/// Ranges of `chars` (line `index` of `lines`) that must not be shown:
/// values of secret keys (passwords, tokens, `Authorization`), every header
/// value, and credential-bearing URLs — anywhere on the line, comments too.
fn secret_ranges(lines: &[&str], index: usize, chars: &[char]) -> Vec<Range<usize>> {
    let enclosing = enclosing_keys(lines, index);
    let mut ranges = Vec::new();
    // Keys of the open flow collections on this line, innermost last.
    let mut owners: Vec<Option<String>> = Vec::new();
    let mut key: Option<String> = None;
    for piece in pieces(chars) {
        match piece {
            Piece::Key(k) => key = Some(k),
            Piece::Open => owners.push(key.take()),
            Piece::Close => {
                owners.pop();
                key = None;
            }
            Piece::Separator => key = None,
            Piece::Value(range, text) => {
                let context: Vec<&str> = key
                    .iter()
                    .chain(owners.iter().rev().flatten())
                    .map(String::as_str)
                    .chain(enclosing.iter().map(String::as_str))
                    .collect();
                let nearest = context.first().copied().unwrap_or("");
                let secret = is_secret_key(nearest)
                    || context.iter().any(|k| k.eq_ignore_ascii_case("headers"))
                    || has_credentials(&text);
                if secret && !range.is_empty() {
                    ranges.push(range);
                }
                key = None;
            }
        }
    }
    ranges.extend(url_userinfo_ranges(chars));
    merge(ranges)
}

/// Keys whose values are credentials (`password`, `bearer_token`,
/// `Authorization`, ...); their `*_file` forms hold paths, which are shown.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_file") {
        return false;
    }
    [
        "password",
        "passwd",
        "token",
        "secret",
        "authorization",
        "api_key",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// Whether a value is a URL (or `user:password@host`) carrying credentials.
fn has_credentials(value: &str) -> bool {
    let (has_scheme, rest) = match value.find("://") {
        Some(at) => (true, &value[at + 3..]),
        None => (false, value),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rfind('@') {
        Some(at) => has_scheme || authority[..at].contains(':'),
        None => false,
    }
}

/// The userinfo of every `scheme://user:pass@host` on the line, wherever
/// it is (a comment, a value the piece reader misread).
fn url_userinfo_ranges(chars: &[char]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i + 3 <= chars.len() {
        if chars[i..i + 3] != [':', '/', '/'] {
            i += 1;
            continue;
        }
        let start = i + 3;
        let end = chars[start..]
            .iter()
            .position(|c| {
                c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | ',' | '}' | ']')
            })
            .map_or(chars.len(), |n| start + n);
        if let Some(at) = chars[start..end].iter().rposition(|c| *c == '@') {
            ranges.push(start..start + at);
        }
        i = end.max(start);
    }
    ranges
}

/// Sorted, overlapping ranges joined.
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Split one line into keys, values and flow punctuation (enough YAML to
/// know which key a value belongs to; not a parser).
fn pieces(chars: &[char]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next_is_space = chars.get(i + 1).is_none_or(|c| c.is_whitespace());
        match c {
            c if c.is_whitespace() => i += 1,
            '#' if i == 0 || chars[i - 1].is_whitespace() => break,
            '-' if depth == 0 && next_is_space => {
                out.push(Piece::Separator);
                i += 1;
            }
            '{' | '[' => {
                depth += 1;
                out.push(Piece::Open);
                i += 1;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                out.push(Piece::Close);
                i += 1;
            }
            ',' if depth > 0 => {
                out.push(Piece::Separator);
                i += 1;
            }
            '"' | '\'' => {
                let end = quoted_end(chars, i);
                let closed = end <= chars.len() && end > i + 1 && chars[end - 1] == c;
                let content = i + 1..if closed { end - 1 } else { end };
                let text: String = chars[content.clone()].iter().collect();
                let after = (end..chars.len())
                    .find(|&j| !chars[j].is_whitespace())
                    .unwrap_or(chars.len());
                if chars.get(after) == Some(&':') && is_key_colon(chars, after, depth > 0) {
                    out.push(Piece::Key(text));
                    i = after + 1;
                } else {
                    out.push(Piece::Value(content, text));
                    i = end;
                }
            }
            _ => {
                let end = plain_end(chars, i, depth > 0);
                let trimmed = trim_back(chars, i, end);
                let text: String = chars[i..trimmed].iter().collect();
                if chars.get(end) == Some(&':') {
                    out.push(Piece::Key(text));
                    i = end + 1;
                } else {
                    out.push(Piece::Value(i..trimmed, text));
                    i = end.max(i + 1);
                }
            }
        }
    }
    out
}

/// Keys of the block-mapping lines that enclose line `index`, nearest
/// first, up to the enclosing list item: for a line under a target's
/// `headers:`, `["headers", "name"]`. A line is enclosed by the nearest
/// line above it that is indented less.
fn enclosing_keys(lines: &[&str], index: usize) -> Vec<String> {
    let mut indent = lines.get(index).map_or(0, |l| indentation(l));
    let mut keys = Vec::new();
    for line in lines[..index.min(lines.len())].iter().rev() {
        let trimmed = line.trim_start();
        if indent == 0 {
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let own = indentation(line);
        if own < indent {
            let chars: Vec<char> = line.chars().collect();
            let last_key = pieces(&chars).into_iter().rev().find_map(|p| match p {
                Piece::Key(k) => Some(k),
                _ => None,
            });
            keys.extend(last_key);
            indent = own;
            // Credentials never enclose a list item (one target's block),
            // so the walk stops there: rendering every issue of a file
            // with 10,000 targets stays linear.
            if trimmed == "-" || trimmed.starts_with("- ") {
                break;
            }
        }
    }
    keys
}

/// Leading spaces of a line.
fn indentation(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_issue_per_line_sorted_and_deduplicated() {
        let err = ConfigError::new(
            Path::new("x.yaml"),
            vec![
                ConfigIssue::new(3, 5, "second"),
                ConfigIssue::new(1, 2, "first"),
                ConfigIssue::new(3, 5, "second"),
            ],
        );
        assert_eq!(err.to_string(), "x.yaml:1:2: first\nx.yaml:3:5: second");
        assert_eq!(err.issues().len(), 2);
    }

    #[test]
    fn io_error_has_no_position() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let err = ConfigError::io(Path::new("/etc/x.yaml"), &io);
        assert_eq!(err.to_string(), "/etc/x.yaml: cannot read: No such file");
    }

    /// The annotated form of a one-issue error over `yaml`.
    fn annotated(yaml: &str, line: u64, column: u64) -> String {
        ConfigError::new(
            Path::new("exporter.yaml"),
            vec![ConfigIssue::new(line, column, "msg")],
        )
        .with_source(yaml.as_bytes())
        .annotated()
        .to_string()
    }

    #[test]
    fn caret_sits_under_the_value_like_rustc() {
        let yaml = "targets:\n  - name: a\n    interval: fast\n";
        assert_eq!(
            annotated(yaml, 3, 15),
            "exporter.yaml:3:15: msg\n  |\n3 |     interval: fast\n  |               ^^^^"
        );
        // The gutter grows with the line number.
        let yaml = format!("{}    interval: fast\n", "#\n".repeat(11));
        assert_eq!(
            annotated(&yaml, 12, 15),
            "exporter.yaml:12:15: msg\n   |\n12 |     interval: fast\n   |               ^^^^"
        );
    }

    #[test]
    fn caret_covers_quoted_strings_keys_and_flow_collections() {
        let yaml = "a: { url: \"x y\", b: 1 }\nintervall: 3\nauth: {}\n";
        assert!(annotated(yaml, 1, 11).ends_with("\n  |           ^^^^^"));
        assert!(annotated(yaml, 2, 1).ends_with("\n  | ^^^^^^^^^"));
        assert!(annotated(yaml, 3, 7).ends_with("\n  |       ^^"));
    }

    #[test]
    fn compact_form_and_debug_stay_as_they_were() {
        let err = ConfigError::new(Path::new("x.yaml"), vec![ConfigIssue::new(1, 8, "m")])
            .with_source(b"token: T0ken-S3cret\n");
        assert_eq!(err.to_string(), "x.yaml:1:8: m");
        assert!(!format!("{err:?}").contains("S3cret"));
        // Without the content the annotated form is the compact one.
        let bare = ConfigError::new(Path::new("x.yaml"), vec![ConfigIssue::new(1, 8, "m")]);
        assert_eq!(bare.annotated().to_string(), "x.yaml:1:8: m");
    }

    #[test]
    fn positions_outside_the_file_show_no_snippet_and_never_panic() {
        let yaml = "a: 1\n";
        assert_eq!(annotated(yaml, 7, 1), "exporter.yaml:7:1: msg");
        assert!(annotated(yaml, 1, 99).ends_with("\n1 | a: 1\n  |     ^"));
        assert_eq!(
            annotated(yaml, 1, 0),
            "exporter.yaml:1:0: msg\n  |\n1 | a: 1"
        );
        assert_eq!(annotated("", 1, 1), "exporter.yaml:1:1: msg");
        assert!(annotated("x: \"open\n", 1, 4).contains("1 | x: \"open"));
    }

    /// The line as the snippet shows it.
    fn shown(yaml: &str, line: u64) -> String {
        let text = annotated(yaml, line, 1);
        let prefix = format!("{line} | ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn secrets_on_the_echoed_line_are_replaced() {
        let yaml = "\
targets:
  - name: a
    bearer_token: T0ken-S3cret
    headers: { X-Api-Key: \"Hdr-S3cret\", Accept: text/plain }
    headers:
      Authorization: Basic Zm9vOmJhcg==
    statuspage: { url: \"https://user:Pw-S3cret@status.example.com/x\" }
    json:
      auth: { basic: { username: monitor, password: Pw2-S3cret } }
      password: |
        Block-S3cret
    proxy_url: http://u:Px-S3cret@proxy:3128  # was http://o:Old-S3cret@p
    bearer_token_file: /run/secrets/token
    url: u:Bare-S3cret@example.com
";
        let want = [
            (3, "    bearer_token: <secret>"),
            (
                4,
                "    headers: { X-Api-Key: \"<secret>\", Accept: <secret> }",
            ),
            (6, "      Authorization: <secret>"),
            (7, "    statuspage: { url: \"<secret>\" }"),
            (
                9,
                "      auth: { basic: { username: monitor, password: <secret> } }",
            ),
            (11, "        <secret>"),
            (12, "    proxy_url: <secret>  # was http://<secret>@p"),
            (13, "    bearer_token_file: /run/secrets/token"),
            (14, "    url: <secret>"),
            (2, "  - name: a"),
        ];
        for (line, expected) in want {
            assert_eq!(shown(yaml, line), expected, "line {line}");
        }
        let all: String = (1..=14).map(|l| annotated(yaml, l, 20)).collect();
        assert!(!all.contains("S3cret"), "{all}");
        assert!(!all.contains("Zm9vOmJhcg"), "{all}");
    }

    #[test]
    fn caret_under_a_secret_covers_the_placeholder() {
        let yaml = "a:\n  password: hunter2-long-secret, x\n";
        let text = annotated(yaml, 2, 13);
        assert!(
            text.ends_with("2 |   password: <secret>\n  |             ^^^^^^^^"),
            "{text}"
        );
        // A quoted secret is underlined with its quotes.
        let yaml = "s: { url: \"https://u:p4ss@example.com\" }\n";
        let text = annotated(yaml, 1, 11);
        assert!(
            text.ends_with("1 | s: { url: \"<secret>\" }\n  |           ^^^^^^^^^^"),
            "{text}"
        );
        // A caret after a redacted value moves with the shorter text.
        let yaml = "h: { token: abcdefghijklmnop, intervall: 1 }\n";
        let text = annotated(yaml, 1, 31);
        assert!(
            text.ends_with(
                "1 | h: { token: <secret>, intervall: 1 }\n  |                       ^^^^^^^^^"
            ),
            "{text}"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let yaml = format!("k: [{}bad, {}]\n", "a, ".repeat(100), "b, ".repeat(100));
        let column = 5 + 300;
        let text = annotated(&yaml, 1, column);
        let shown_line = text.lines().nth(2).unwrap();
        let caret_line = text.lines().nth(3).unwrap();
        assert!(
            shown_line.starts_with("1 | …") && shown_line.ends_with('…'),
            "{text}"
        );
        assert!(shown_line.chars().count() <= MAX_SHOWN_CHARS + 6, "{text}");
        let at = caret_line.find('^').unwrap();
        let under: String = shown_line.chars().skip(at).take(3).collect();
        assert_eq!(under, "bad", "{text}");
        assert_eq!(caret_line.matches('^').count(), 3, "{text}");
    }

    #[test]
    fn many_issues_in_a_big_file_render_quickly() {
        let mut yaml = String::from("targets:\n");
        for n in 0..10_000 {
            yaml.push_str(&format!(
                "  - name: t{n}\n    headers:\n      X-Key: s3cret{n}\n    interval: fast\n"
            ));
        }
        let issues = (0..10_000)
            .flat_map(|n| {
                [
                    ConfigIssue::new(4 + 4 * n, 7, "h"),
                    ConfigIssue::new(5 + 4 * n, 15, "i"),
                ]
            })
            .collect();
        let err = ConfigError::new(Path::new("big.yaml"), issues).with_source(yaml.as_bytes());
        let started = std::time::Instant::now();
        let text = err.annotated().to_string();
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        assert_eq!(text.matches("X-Key: <secret>").count(), 10_000);
        assert!(!text.contains("s3cret"));
    }

    #[test]
    fn tabs_and_control_characters_keep_the_caret_aligned() {
        let yaml = "a:\t\"x\u{7}y\"\n";
        let text = annotated(yaml, 1, 4);
        assert!(
            text.ends_with("1 | a: \"x\u{FFFD}y\"\n  |    ^^^^^"),
            "{text}"
        );
    }
}
