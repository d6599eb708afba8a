//! [`Secret`]: a string that must never be shown.
//!
//! Header values, bearer tokens and proxy URLs are kept in this wrapper so
//! that a stray `{:?}` in a log line, an error message or a test failure
//! prints `<secret>` instead of the credential. The only way to the value is
//! [`Secret::expose`], which makes every use easy to find.

use std::fmt;

/// A credential-bearing string whose `Debug` and `Display` print `<secret>`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send it (a request
    /// header, the proxy configuration). Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
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
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(format!("{s}"), "<secret>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<secret>)");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s, Secret::from("hunter2".to_string()));
    }
}
