//! Logs: `tracing` with `--log.level` and `--log.format=logfmt|json`.
//!
//! logfmt is what Prometheus and its exporters print (`ts=… level=… msg=…
//! key=value`), so the exporter's lines sit naturally next to theirs.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Install the global subscriber. Our crate logs at `level`; dependencies
/// only at warn and above so their chatter does not drown ours.
pub fn init(level: LogLevel, format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::new(format!("warn,upstream_exporter={}", level.as_filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .with_target(false)
            .with_current_span(false)
            .flatten_event(true)
            .try_init(),
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
    };
    // Already installed (tests, or a second call): keep the first one,
    // and its panic hook.
    if result.is_ok() {
        std::panic::set_hook(Box::new(log_panic));
    }
}

/// The text of a panic payload (`panic!` with a literal or a format string).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// The panic hook: a panic is logged as an event in the chosen format
/// instead of the default hook's bare lines on stderr, which a log
/// pipeline parsing logfmt or JSON would mangle or drop. Panics in probes
/// are caught and counted (`runner`); this is the line that says where.
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let message = panic_message(info.payload());
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("(unnamed)");
    // Only with RUST_BACKTRACE set; a field that is `None` is left out.
    let backtrace = std::backtrace::Backtrace::capture();
    let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
        .then(|| tracing::field::display(&backtrace));
    tracing::error!(panic = message, location, thread, backtrace, "panicked");
}

/// logfmt event formatter.
#[derive(Debug, Clone, Copy)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        write!(writer, "ts={ts} level={level}")?;
        let mut visitor = LogfmtVisitor {
            message: None,
            fields: String::new(),
        };
        event.record(&mut visitor);
        if let Some(msg) = visitor.message {
            write!(writer, " msg={}", quote(&msg))?;
        }
        writeln!(writer, "{}", visitor.fields)
    }
}

struct LogfmtVisitor {
    message: Option<String>,
    fields: String,
}

impl Visit for LogfmtVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl LogfmtVisitor {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            use fmt::Write as _;
            let _ = write!(self.fields, " {}={}", field.name(), quote(&value));
        }
    }
}

/// Quote a logfmt value when it needs it.
fn quote(value: &str) -> String {
    let needs = value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if needs {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// Log lines written by a subscriber, for reading back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panic_is_logged_as_one_logfmt_event_with_where_it_happened() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(super::Logfmt)
            .with_writer(move || writer.clone())
            .finish();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(super::log_panic));
        // The hook runs on the panicking thread, which this subscriber is
        // the default of.
        let caught = tracing::subscriber::with_default(subscriber, || {
            std::panic::catch_unwind(|| panic!("the {} went wrong", "probe"))
        });
        std::panic::set_hook(previous);
        assert!(caught.is_err());
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line_text = lines[0];
        assert!(line_text.starts_with("ts="), "{line_text}");
        assert!(
            line_text.contains(" level=error msg=panicked "),
            "{line_text}"
        );
        assert!(
            line_text.contains(r#"panic="the probe went wrong""#),
            "{line_text}"
        );
        assert!(
            line_text.contains(" location=src/logging.rs:"),
            "{line_text}"
        );
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(super::quote("abc"), "abc");
        assert_eq!(super::quote("a b"), "\"a b\"");
        assert_eq!(super::quote(""), "\"\"");
        assert_eq!(super::quote("x=\"y\""), "\"x=\\\"y\\\"\"");
    }
}
