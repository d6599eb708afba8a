//! A direct writer of the Prometheus text format 0.0.4 and OpenMetrics 1.0
//! for the per-target families, which are nearly all of `/metrics`.
//!
//! At 10,000 targets with 20 components each a scrape is ~480,000 lines
//! (~40 MB). Encoding them through `prometheus-client`'s generic encoder
//! and then deriving the text format in a second pass cost several hundred
//! milliseconds per scrape; this writer appends straight into the response
//! buffer: metric names and label names are copied, label values are
//! escaped only when they contain a character that needs it, numbers go
//! through `itoa`/`dtoa` (the formatters `prometheus-client` uses, so the
//! numbers read the same). A family's descriptor lines are written when it
//! opens and taken back if it ends without samples, so an empty family
//! leaves no bare `# TYPE` behind.
//!
//! The small families of the exporter itself stay on `prometheus-client`.
//!
//! A [`Writer`] can stream: given a chunk size and a sink, it hands the
//! sink each full chunk (cut where no family's descriptor is left waiting
//! for a first sample), so a scrape's memory is a few chunks, not the whole
//! 40 MB body.

use crate::metrics::Format;

/// What a family is, as far as the formats differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Samples are `<name>_total`.
    Counter,
    /// Samples are `<name>_info 1`; a gauge in the text format.
    Info,
    /// Samples are `<name>_bucket`, `<name>_sum`, `<name>_count`.
    Histogram,
}

/// A sample value: integers print without a decimal point.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(i64),
    Float(f64),
}

impl Value {
    /// Whole numbers as integers (`1`, not `1.0`), as the exporter always has.
    pub fn number(v: f64) -> Value {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Value::Int(v as i64)
        } else {
            Value::Float(v)
        }
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        i64::try_from(v).map_or(Value::Float(v as f64), Value::Int)
    }
}

/// Where a streaming [`Writer`] sends full chunks; `false` means the
/// receiver is gone (the client hung up) and writing stops.
pub type Sink<'a> = &'a mut dyn FnMut(Vec<u8>) -> bool;

/// The exposition being written, in one growing buffer (or streamed in
/// chunks to a [`Sink`]).
pub struct Writer<'a> {
    out: Vec<u8>,
    /// Streaming: chunk size and where chunks go.
    stream: Option<(usize, Sink<'a>)>,
    /// The sink refused a chunk: everything else is skipped.
    aborted: bool,
    format: Format,
    /// Where the open family's descriptor lines begin, and where its
    /// samples would begin; equal ends mean the family is still empty.
    family_start: usize,
    samples_start: usize,
    name: &'static str,
    /// The open family's name when it is not `'static` (json rules).
    owned_name: String,
    kind: Kind,
}

impl<'a> Writer<'a> {
    pub fn new(format: Format, capacity: usize) -> Writer<'a> {
        Writer {
            out: Vec::with_capacity(capacity),
            stream: None,
            aborted: false,
            format,
            family_start: 0,
            samples_start: 0,
            name: "",
            owned_name: String::new(),
            kind: Kind::Gauge,
        }
    }

    /// A writer that hands `sink` chunks of about `chunk` bytes.
    pub fn streaming(format: Format, chunk: usize, sink: Sink<'a>) -> Writer<'a> {
        let mut w = Writer::new(format, chunk + chunk / 4);
        w.stream = Some((chunk.max(1), sink));
        w
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the sink hung up (nothing more will be written).
    pub fn aborted(&self) -> bool {
        self.aborted
    }

    /// Streaming: send what is ready once a chunk's worth has accumulated.
    /// A family still waiting for its first sample keeps its descriptor
    /// lines back (they may yet be dropped).
    fn maybe_flush(&mut self) {
        let Some((chunk, _)) = &self.stream else {
            return;
        };
        if self.out.len() < *chunk {
            return;
        }
        let cut = if self.out.len() > self.samples_start {
            self.out.len()
        } else {
            self.family_start
        };
        self.send_upto(cut);
    }

    fn send_upto(&mut self, cut: usize) {
        if cut == 0 || self.aborted {
            return;
        }
        let Some((chunk, sink)) = &mut self.stream else {
            return;
        };
        let mut rest = Vec::with_capacity(*chunk + *chunk / 4);
        rest.extend_from_slice(&self.out[cut..]);
        let ready = std::mem::replace(&mut self.out, rest);
        let mut ready = ready;
        ready.truncate(cut);
        if !sink(ready) {
            self.aborted = true;
            self.out.clear();
        }
        self.family_start = self.family_start.saturating_sub(cut);
        self.samples_start = self.samples_start.saturating_sub(cut);
    }

    /// Append bytes written by another encoder (already in this format).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.close_family();
        self.out.extend_from_slice(bytes);
        self.family_start = self.out.len();
        self.samples_start = self.out.len();
    }

    /// Open a family; the previous one is closed (and dropped if empty).
    pub fn family(&mut self, name: &'static str, help: &str, kind: Kind) {
        self.close_family();
        self.name = name;
        self.owned_name.clear();
        self.open(help, kind);
    }

    /// [`Writer::family`] for a name known only at run time.
    pub fn family_named(&mut self, name: &str, help: &str, kind: Kind) {
        self.close_family();
        self.name = "";
        self.owned_name.clear();
        self.owned_name.push_str(name);
        self.open(help, kind);
    }

    fn open(&mut self, help: &str, kind: Kind) {
        self.kind = kind;
        self.family_start = self.out.len();
        let suffix = match (self.format, kind) {
            (Format::Text, Kind::Counter) => "_total",
            (Format::Text, Kind::Info) => "_info",
            _ => "",
        };
        let type_word = match (self.format, kind) {
            (_, Kind::Gauge) | (Format::Text, Kind::Info) => "gauge",
            (_, Kind::Counter) => "counter",
            (Format::OpenMetrics, Kind::Info) => "info",
            (_, Kind::Histogram) => "histogram",
        };
        self.out.extend_from_slice(b"# HELP ");
        self.push_name();
        self.out.extend_from_slice(suffix.as_bytes());
        self.out.push(b' ');
        self.push_help(help);
        self.out.extend_from_slice(b"\n# TYPE ");
        self.push_name();
        self.out.extend_from_slice(suffix.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(type_word.as_bytes());
        self.out.push(b'\n');
        self.samples_start = self.out.len();
    }

    fn close_family(&mut self) {
        if self.out.len() == self.samples_start {
            self.out.truncate(self.family_start);
        }
        self.family_start = self.out.len();
        self.samples_start = self.out.len();
    }

    fn push_name(&mut self) {
        let name = if self.name.is_empty() {
            self.owned_name.as_bytes()
        } else {
            self.name.as_bytes()
        };
        self.out.extend_from_slice(name);
    }

    /// One sample of the open family: `labels` pairs in order, then `extra`
    /// (a target's static labels). Counters get `_total`, infos `_info`.
    pub fn sample(&mut self, labels: &[(&str, &str)], extra: &[(String, String)], value: Value) {
        if self.aborted {
            return;
        }
        let suffix: &[u8] = match self.kind {
            Kind::Counter => b"_total",
            Kind::Info => b"_info",
            Kind::Gauge | Kind::Histogram => b"",
        };
        self.line(suffix, labels, extra, None, value);
        self.maybe_flush();
    }

    /// A histogram's lines: cumulative `buckets` (upper bound, count; the
    /// last is +Inf), sum and count.
    pub fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        extra: &[(String, String)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        if self.aborted {
            return;
        }
        let mut cumulative = 0u64;
        let mut bound = dtoa::Buffer::new();
        for (upper, n) in buckets {
            cumulative = cumulative.saturating_add(*n);
            let le = if upper.is_infinite() {
                "+Inf"
            } else {
                bound.format(*upper)
            };
            self.line(b"_bucket", labels, extra, Some(le), Value::from(cumulative));
        }
        self.line(b"_sum", labels, extra, None, Value::Float(sum));
        self.line(b"_count", labels, extra, None, Value::from(count));
        self.maybe_flush();
    }

    fn line(
        &mut self,
        suffix: &[u8],
        labels: &[(&str, &str)],
        extra: &[(String, String)],
        le: Option<&str>,
        value: Value,
    ) {
        self.push_name();
        self.out.extend_from_slice(suffix);
        let mut first = true;
        // `le` first, as prometheus-client writes it.
        let pairs = le
            .map(|le| ("le", le))
            .into_iter()
            .chain(labels.iter().copied())
            .chain(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for (name, value) in pairs {
            self.out.push(if first { b'{' } else { b',' });
            first = false;
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b"=\"");
            push_escaped(&mut self.out, value, false);
            self.out.push(b'"');
        }
        if !first {
            self.out.push(b'}');
        }
        self.out.push(b' ');
        match value {
            Value::Int(v) => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
            Value::Float(v) => push_float(&mut self.out, v),
        }
        self.out.push(b'\n');
    }

    fn push_help(&mut self, help: &str) {
        // OpenMetrics escapes quotes in HELP too; the text format does not.
        push_escaped(&mut self.out, help, self.format == Format::Text);
    }

    /// The finished exposition (`# EOF` added for OpenMetrics); when
    /// streaming, the last chunk is sent and the result is empty.
    pub fn finish(mut self) -> Vec<u8> {
        self.close_family();
        if self.format == Format::OpenMetrics && !self.aborted {
            self.out.extend_from_slice(b"# EOF\n");
        }
        if self.stream.is_some() {
            let all = self.out.len();
            self.send_upto(all);
            return Vec::new();
        }
        self.out
    }
}

/// Append `value` escaped for a label value (`\\`, `\"`, `\n`), or for HELP
/// text in the 0.0.4 format (`help_text`: quotes stay as they are).
fn push_escaped(out: &mut Vec<u8>, value: &str, help_text: bool) {
    // memchr scans a word at a time; almost no value needs escaping.
    let bytes = value.as_bytes();
    let clean = if help_text {
        memchr::memchr2(b'\\', b'\n', bytes).is_none()
    } else {
        memchr::memchr3(b'\\', b'\n', b'"', bytes).is_none()
    };
    if clean {
        out.extend_from_slice(bytes);
        return;
    }
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if !help_text => out.extend_from_slice(b"\\\""),
            b => out.push(b),
        }
    }
}

fn push_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        out.extend_from_slice(dtoa::Buffer::new().format(v).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: Format, f: impl FnOnce(&mut Writer)) -> String {
        let mut w = Writer::new(format, 0);
        f(&mut w);
        String::from_utf8(w.finish()).unwrap()
    }

    #[test]
    fn counters_and_infos_differ_by_format() {
        let write = |w: &mut Writer| {
            w.family("up_probes", "Probes run.", Kind::Counter);
            w.sample(&[("target", "a")], &[], Value::Int(3));
            w.family("up_target", "Facts.", Kind::Info);
            w.sample(
                &[("target", "a")],
                &[("team".into(), "x".into())],
                Value::Int(1),
            );
        };
        assert_eq!(
            render(Format::Text, write),
            "# HELP up_probes_total Probes run.\n# TYPE up_probes_total counter\nup_probes_total{target=\"a\"} 3\n\
             # HELP up_target_info Facts.\n# TYPE up_target_info gauge\nup_target_info{target=\"a\",team=\"x\"} 1\n"
        );
        assert_eq!(
            render(Format::OpenMetrics, write),
            "# HELP up_probes Probes run.\n# TYPE up_probes counter\nup_probes_total{target=\"a\"} 3\n\
             # HELP up_target Facts.\n# TYPE up_target info\nup_target_info{target=\"a\",team=\"x\"} 1\n# EOF\n"
        );
    }

    #[test]
    fn empty_families_leave_nothing() {
        let out = render(Format::Text, |w| {
            w.family("a", "A.", Kind::Gauge);
            w.family("b", "B.", Kind::Gauge);
            w.sample(&[], &[], Value::Float(0.5));
            w.family("c", "C.", Kind::Gauge);
        });
        assert_eq!(out, "# HELP b B.\n# TYPE b gauge\nb 0.5\n");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let out = render(Format::Text, |w| {
            w.family("m", "say \"hi\" \\ bye\nnow", Kind::Gauge);
            w.sample(&[("l", "a\"b\\c\nd")], &[], Value::number(2.0));
        });
        assert_eq!(
            out,
            "# HELP m say \"hi\" \\\\ bye\\nnow\n# TYPE m gauge\nm{l=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
        let om = render(Format::OpenMetrics, |w| {
            w.family("m", "say \"hi\"", Kind::Gauge);
            w.sample(&[], &[], Value::Int(1));
        });
        assert!(om.starts_with("# HELP m say \\\"hi\\\"\n"));
    }

    #[test]
    fn histogram_is_cumulative_with_inf_bucket() {
        let out = render(Format::Text, |w| {
            w.family("d", "D.", Kind::Histogram);
            w.histogram(
                &[("target", "a")],
                &[],
                &[(0.5, 1), (1.0, 2), (f64::INFINITY, 1)],
                3.25,
                4,
            );
        });
        assert_eq!(
            out,
            "# HELP d D.\n# TYPE d histogram\n\
             d_bucket{le=\"0.5\",target=\"a\"} 1\nd_bucket{le=\"1.0\",target=\"a\"} 3\n\
             d_bucket{le=\"+Inf\",target=\"a\"} 4\nd_sum{target=\"a\"} 3.25\nd_count{target=\"a\"} 4\n"
        );
    }

    #[test]
    fn streaming_gives_the_same_bytes_and_never_splits_off_an_empty_family() {
        let write = |w: &mut Writer| {
            for f in 0..50 {
                let name: &'static str = ["fa", "fb", "fc"][f % 3];
                w.family(name, "Help.", Kind::Gauge);
                // Every third family stays empty and must vanish.
                for i in 0..(f % 3) * 7 {
                    w.sample(&[("target", &format!("t{i}"))], &[], Value::Int(i as i64));
                }
            }
        };
        for format in [Format::Text, Format::OpenMetrics] {
            let whole = render(format, write);
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            let mut sink = |c: Vec<u8>| {
                chunks.push(c);
                true
            };
            let mut w = Writer::streaming(format, 64, &mut sink);
            write(&mut w);
            assert!(w.finish().is_empty());
            assert!(chunks.len() > 10);
            assert_eq!(String::from_utf8(chunks.concat()).unwrap(), whole);
            assert!(!whole.contains("# TYPE fa gauge"), "empty family left");
        }
    }

    #[test]
    fn streaming_stops_when_the_sink_hangs_up() {
        let mut calls = 0;
        let mut sink = |_: Vec<u8>| {
            calls += 1;
            false
        };
        let mut w = Writer::streaming(Format::Text, 16, &mut sink);
        w.family("m", "M.", Kind::Gauge);
        for i in 0..1000 {
            w.sample(&[("i", &i.to_string())], &[], Value::Int(i));
        }
        assert!(w.aborted());
        w.finish();
        assert_eq!(calls, 1);
    }

    #[test]
    fn numbers() {
        let out = render(Format::Text, |w| {
            w.family("n", "N.", Kind::Gauge);
            for v in [1763822345.25, 0.0, -3.0, 1e300, f64::NAN] {
                w.sample(&[], &[], Value::number(v));
            }
        });
        assert_eq!(
            out,
            "# HELP n N.\n# TYPE n gauge\nn 1763822345.25\nn 0\nn -3\nn 1e300\nn NaN\n"
        );
    }
}
