//! Logs: `tracing` with `--log.level` and `--log.format=logfmt|json`.
//!
//! logfmt is what Prometheus and its exporters print (`ts=… level=… msg=…
//! key=value`), so the exporter's lines sit naturally next to theirs. The
//! JSON lines carry the same keys (`{"ts":…,"level":"warn","msg":…,…}`, as
//! Prometheus' own JSON logs), so a log pipeline matches either format by
//! the same names.

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
    let result = builder.event_format(Lines(format)).try_init();
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

/// The event formatter of both `--log.format`s: the same keys and fields,
/// one line each, quoted as logfmt or as a JSON object.
#[derive(Debug, Clone, Copy)]
pub struct Lines(pub LogFormat);

impl<S, N> FormatEvent<S, N> for Lines
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
        let (ts, level, fields) = read_event(event);
        let json = self.0 == LogFormat::Json;
        if json {
            write!(writer, "{{\"ts\":\"{ts}\",\"level\":\"{level}\"")?;
        } else {
            write!(writer, "ts={ts} level={level}")?;
        }
        let message = fields.message.map(|m| ("msg", FieldValue::Text(m)));
        for (name, value) in message.iter().chain(&fields.pairs) {
            match (json, value) {
                (true, FieldValue::Text(text)) => {
                    write!(writer, ",{}:{}", json_string(name), json_string(text))?
                }
                (true, FieldValue::Literal(literal)) => {
                    write!(writer, ",{}:{literal}", json_string(name))?
                }
                (false, FieldValue::Text(text)) => write!(writer, " {name}={}", quote(text))?,
                (false, FieldValue::Literal(literal)) => write!(writer, " {name}={literal}")?,
            }
        }
        writeln!(writer, "{}", if json { "}" } else { "" })
    }
}

/// An event's time (RFC 3339, milliseconds, UTC), its level in lower case
/// (as Prometheus writes it) and its fields.
fn read_event(event: &Event<'_>) -> (String, String, Fields) {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let level = event.metadata().level().as_str().to_ascii_lowercase();
    let mut fields = Fields::default();
    event.record(&mut fields);
    (ts, level, fields)
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// One event's fields, in the order given, its `message` apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, FieldValue)>,
}

enum FieldValue {
    /// Quoted where the format needs it.
    Text(String),
    /// A number or a boolean, written bare in both formats.
    Literal(String),
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Text(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, FieldValue::Text(format!("{value:?}")));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::Literal(value.to_string()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::Literal(value.to_string()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Literal(value.to_string()));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinities: those go as text.
        let text = format!("{value:?}");
        self.push(
            field,
            if value.is_finite() {
                FieldValue::Literal(text)
            } else {
                FieldValue::Text(text)
            },
        );
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        match value {
            FieldValue::Text(text) if field.name() == "message" => self.message = Some(text),
            value => self.pairs.push((field.name(), value)),
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
            .event_format(super::Lines(super::LogFormat::Logfmt))
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

    /// JSON lines carry logfmt's keys (`ts`, `level` in lower case, `msg`)
    /// and the fields with their types; the same event in logfmt too.
    #[test]
    fn json_and_logfmt_lines_share_their_keys() {
        fn one_line(format: super::LogFormat) -> String {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .event_format(super::Lines(format))
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::warn!(
                    targets = 3u64,
                    name = "a \"b\"",
                    ok = true,
                    ratio = 0.5,
                    "reloaded {}",
                    "x"
                );
            });
            String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
        }
        let json = one_line(super::LogFormat::Json);
        let value: serde_json::Value = serde_json::from_str(&json).expect(&json);
        assert_eq!(value["level"], "warn", "{json}");
        assert_eq!(value["msg"], "reloaded x", "{json}");
        assert_eq!(value["targets"], 3, "{json}");
        assert_eq!(value["name"], "a \"b\"", "{json}");
        assert_eq!(value["ok"], true, "{json}");
        assert_eq!(value["ratio"], 0.5, "{json}");
        assert!(
            value["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
            "{json}"
        );
        assert!(json.starts_with("{\"ts\":"), "{json}");

        let logfmt = one_line(super::LogFormat::Logfmt);
        assert!(
            logfmt.contains(
                r#" level=warn msg="reloaded x" targets=3 name="a \"b\"" ok=true ratio=0.5"#
            ),
            "{logfmt}"
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
