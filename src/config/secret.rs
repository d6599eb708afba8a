//! [`Secret`]: a string that must never be shown.
//!
//! Header values, bearer tokens and proxy URLs are kept in this wrapper so
//! that a stray `{:?}` in a log line, an error message or a test failure
//! prints `<secret>` instead of the credential. The only ways to the value
//! are [`Secret::expose`] and [`Secret::current`], which make every use
//! easy to find.
//!
//! A credential given as a file (`bearer_token_file`, `password_file`,
//! `headers_file`) is read again for every request ([`Secret::current`]),
//! as Prometheus reads its own: a Kubernetes projected service-account
//! token or a Vault agent's token rotates in place, and a value read once
//! at load would start failing with 401 until the next reload. A file is
//! read at most once every [`REREAD_EVERY`] (a target probed more often,
//! or many targets sharing a `defaults:` token, send the value read then).
//! Should a read fail (the file gone, empty while being rewritten, larger
//! than [`MAX_SECRET_FILE`], a line break inside), the last good value is
//! sent and the failure logged once.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// The most a `*_file` (a token, a password, a header value, a request
/// body) may hold. Read with this bound so a path such as `/dev/zero` or a
/// log file named by mistake is an error, not a process out of memory.
pub const MAX_SECRET_FILE: u64 = 1024 * 1024;

/// How often a file-backed secret is read again at most.
pub const REREAD_EVERY: Duration = Duration::from_secs(1);

/// Whether `value` can be sent as a header value: no control character but
/// tab. The one check for values at load and read again.
pub fn is_header_value(value: &str) -> bool {
    !value.chars().any(|c| c.is_control() && c != '\t')
}

/// The whole content of `path` if it holds at most `limit` bytes, `None`
/// if it holds more (only `limit + 1` bytes are ever read).
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut content = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut content)?;
    Ok((content.len() as u64 <= limit).then_some(content))
}

/// `Basic base64(user:password)`, from the joined `user:password` bytes.
pub fn basic_auth_value(credentials: &[u8]) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// How a file's content becomes a header value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Wrap {
    /// As it is (`headers_file`).
    Raw,
    /// `Bearer <content>` (`bearer_token_file`).
    Bearer,
    /// `Basic base64(<user>:<content>)` (`password_file`).
    Basic { user: String },
}

impl Wrap {
    fn apply(&self, content: &str) -> String {
        match self {
            Wrap::Raw => content.to_owned(),
            Wrap::Bearer => format!("Bearer {content}"),
            Wrap::Basic { user } => basic_auth_value(format!("{user}:{content}").as_bytes()),
        }
    }
}

/// A secret's file, read again for each use.
struct SecretFile {
    path: PathBuf,
    wrap: Wrap,
    /// The last good value (the one read at load, at first) and when the
    /// file was last read.
    last: Mutex<(String, Instant)>,
    /// Whether the last read failed (so a failure is logged once).
    failing: AtomicBool,
}

/// A credential-bearing string whose `Debug` and `Display` print `<secret>`.
#[derive(Clone, Default)]
pub struct Secret {
    /// The value when the config was loaded.
    value: String,
    file: Option<Arc<SecretFile>>,
}

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret {
            value: value.into(),
            file: None,
        }
    }

    /// A secret read from `path`, whose content at load was `content`; its
    /// value drops the trailing line break, as every later read does.
    pub fn from_file(path: PathBuf, content: &str) -> Self {
        let value = without_line_break(content).to_owned();
        Secret::new(value.clone()).with_file(path, Wrap::Raw, value)
    }

    /// This secret as the value `wrap` makes of it (a token as `Bearer …`,
    /// a password as `Basic …`), still read again from its file, if any.
    pub fn wrapped(&self, wrap: Wrap) -> Self {
        let value = wrap.apply(&self.value);
        match &self.file {
            Some(file) => Secret::new(value.clone()).with_file(file.path.clone(), wrap, value),
            None => Secret::new(value),
        }
    }

    fn with_file(mut self, path: PathBuf, wrap: Wrap, value: String) -> Self {
        self.file = Some(Arc::new(SecretFile {
            path,
            wrap,
            last: Mutex::new((value, Instant::now())),
            failing: AtomicBool::new(false),
        }));
        self
    }

    /// The value as loaded, for the places that use it as it was then (a
    /// proxy URL, a request body, checks at load). Never log the result.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The value to send now: a file-backed secret read again from its
    /// file (the last good value if that fails), others as loaded. Never
    /// log the result.
    pub fn current(&self) -> Cow<'_, str> {
        let Some(file) = &self.file else {
            return Cow::Borrowed(&self.value);
        };
        {
            let last = file.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.1.elapsed() < REREAD_EVERY {
                return Cow::Owned(last.0.clone());
            }
        }
        // Read without the lock: another request meanwhile sends the last
        // value instead of waiting on the file.
        let read = read_value(&file.path);
        let mut last = file.last.lock().unwrap_or_else(|p| p.into_inner());
        last.1 = Instant::now();
        match read {
            Ok(content) => {
                if file.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(path = %file.path.display(), "secret file readable again");
                }
                last.0 = file.wrap.apply(&content);
            }
            Err(why) => {
                if !file.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        path = %file.path.display(),
                        error = %why,
                        "cannot read a secret file again; sending its last good value"
                    );
                }
            }
        }
        Cow::Owned(last.0.clone())
    }
}

/// A file's content as a secret's value: without its trailing line break
/// (editors and `echo` add one).
fn without_line_break(content: &str) -> &str {
    content.trim_end_matches(['\n', '\r'])
}

/// A secret file's value: its content without trailing line breaks, which
/// must be one line of text.
fn read_value(path: &Path) -> Result<String, String> {
    let bytes = read_bounded(path, MAX_SECRET_FILE)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("larger than {} KiB", MAX_SECRET_FILE / 1024))?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let value = without_line_break(&text);
    if value.is_empty() {
        // Most likely caught between truncation and write.
        return Err("empty".to_owned());
    }
    if !is_header_value(value) {
        return Err("holds a control character (such as a line break) inside".to_owned());
    }
    Ok(value.to_owned())
}

/// Equal when they come from the same place: two file-backed secrets from
/// the same file, made into a value the same way (whatever the file held
/// when each was loaded, so a reload does not take a rotated token for a
/// changed target), or two others with the same value.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        match (&self.file, &other.file) {
            (Some(a), Some(b)) => a.path == b.path && a.wrap == b.wrap,
            (None, None) => self.value == other.value,
            _ => false,
        }
    }
}

impl Eq for Secret {}

impl Hash for Secret {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.file {
            Some(file) => {
                file.path.hash(state);
                file.wrap.hash(state);
            }
            None => self.value.hash(state),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Make the next [`Secret::current`] read the file again.
    fn due(secret: &Secret) {
        if let Some(file) = &secret.file {
            let mut last = file.last.lock().unwrap();
            last.1 = Instant::now().checked_sub(REREAD_EVERY).unwrap_or(last.1);
        }
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(format!("{s}"), "<secret>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<secret>)");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s, Secret::from("hunter2".to_string()));
    }

    #[test]
    fn a_file_backed_secret_is_read_again_and_keeps_its_last_good_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one\n").unwrap();
        let token = Secret::from_file(path.clone(), "one\n");
        let bearer = token.wrapped(Wrap::Bearer);
        let basic = token.wrapped(Wrap::Basic {
            user: "monitor".into(),
        });
        assert_eq!(bearer.expose(), "Bearer one");
        assert_eq!(bearer.current(), "Bearer one");

        std::fs::write(&path, "two\r\n").unwrap();
        // Read at most once a second: not yet.
        assert_eq!(bearer.current(), "Bearer one");
        for s in [&token, &bearer, &basic] {
            due(s);
        }
        assert_eq!(token.current(), "two");
        assert_eq!(bearer.current(), "Bearer two");
        // base64("monitor:two")
        assert_eq!(basic.current(), "Basic bW9uaXRvcjp0d28=");
        assert_eq!(bearer.expose(), "Bearer one", "the loaded value stays");

        // Not one line, empty (mid-rewrite), gone: the last good value.
        for bad in [Some("three\nfour"), Some(""), Some("\n"), None] {
            match bad {
                Some(content) => std::fs::write(&path, content).unwrap(),
                None => std::fs::remove_file(&path).unwrap(),
            }
            due(&bearer);
            assert_eq!(bearer.current(), "Bearer two", "{bad:?}");
        }
        std::fs::write(&path, "five\tsix").unwrap();
        due(&bearer);
        assert_eq!(
            bearer.current(),
            "Bearer five\tsix",
            "a tab is allowed, as at load"
        );
    }

    #[test]
    fn file_backed_secrets_are_equal_by_their_source() {
        let a = Secret::from_file("/run/token".into(), "old");
        let b = Secret::from_file("/run/token".into(), "rotated");
        assert_eq!(a, b, "a rotated token is not a changed config");
        assert_ne!(a.wrapped(Wrap::Bearer), b);
        assert_eq!(a.wrapped(Wrap::Bearer), b.wrapped(Wrap::Bearer));
        assert_ne!(a, Secret::from_file("/run/other".into(), "old"));
        assert_ne!(a, Secret::new("old"));
        use std::hash::BuildHasher as _;
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(state.hash_one(&a), state.hash_one(&b));
    }
}
