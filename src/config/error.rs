//! [`ConfigError`]: everything wrong with a config file, one issue per line.
//!
//! Every issue carries the line and column it refers to, so the rendered
//! error reads like a compiler diagnostic:
//!
//! ```text
//! exporter.yaml:12:14: timeout 60s must be shorter than interval 30s: lower `timeout` or raise `interval`
//! exporter.yaml:20:5: unknown key `intervall`: expected one of name, labels, ... (did you mean `interval`?)
//! ```
//!
//! Messages never contain secrets: header values and tokens are not echoed,
//! and URLs are shown with their userinfo replaced by `***`.

use std::fmt;
use std::path::{Path, PathBuf};

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
/// (or `<path>: <message>` for issues without a position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    path: PathBuf,
    issues: Vec<ConfigIssue>,
}

impl ConfigError {
    /// An error with the given issues. Issues are sorted by position (the
    /// order among issues at one position is kept) and exact duplicates are
    /// dropped, so a bad `defaults:` value shared by many targets is
    /// reported once.
    pub fn new(path: &Path, mut issues: Vec<ConfigIssue>) -> Self {
        issues.sort_by_key(|i| (i.line, i.column));
        let mut unique: Vec<ConfigIssue> = Vec::with_capacity(issues.len());
        for issue in issues {
            if !unique.contains(&issue) {
                unique.push(issue);
            }
        }
        ConfigError {
            path: path.to_path_buf(),
            issues: unique,
        }
    }

    /// The file could not be read.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        ConfigError::new(
            path,
            vec![ConfigIssue::new(0, 0, format!("cannot read: {err}"))],
        )
    }

    /// The file the issues are about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every issue, sorted by position.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        if self.issues.is_empty() {
            return write!(f, "{path}: invalid configuration");
        }
        for (n, issue) in self.issues.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            if issue.has_position() {
                write!(f, "{path}:{issue}")?;
            } else {
                write!(f, "{path}: {issue}")?;
            }
        }
        Ok(())
    }
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
}
