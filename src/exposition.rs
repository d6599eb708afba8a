//! A direct writer of the Prometheus text format 0.0.4 and OpenMetrics 1.0
//! for the per-target families, which are nearly all of `/metrics`.
//!
//! At 10,000 targets with 20 components each a scrape is ~480,000 lines
//! (~40 MB). Encoding them through `prometheus-client`'s generic encoder
//! and then deriving the text format in a second pass cost several hundred
//! milliseconds per scrape; this writer appends straight into the response
//! buffer: metric names and label names are copied, label values are
//! escaped only when they contain a character that needs it, one-digit
//! integers are stored as they are and longer ones go through `itoa` (as
//! in `prometheus-client`), other numbers through
//! `zmij`: the shortest digits that read back as the same `f64`, about
//! three times as fast as `prometheus-client`'s `dtoa`, whose Grisu2 now
//! and then writes a longer, different last digit (`0.30000000000000007`
//! for `0.1 + 0.2`; both read back the same). A family's descriptor lines
//! are written when it opens and taken back if it ends without samples, so
//! an empty family leaves no bare `# TYPE` behind.
//!
//! The small families of the exporter itself stay on `prometheus-client`.
//!
//! A [`Writer`] also writes one piece of a family (some of its samples,
//! no descriptor: [`Writer::resume`]), which is how [`crate::render`]
//! spreads one scrape over every core.

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

/// The exposition being written, in one growing buffer.
pub struct Writer {
    out: Vec<u8>,
    format: Format,
    /// Where the open family's descriptor lines begin, and where its
    /// samples would begin; equal ends mean the family is still empty.
    family_start: usize,
    samples_start: usize,
    /// The open family's name.
    name: String,
    /// Its samples' name (`name` and, for counters and infos, their
    /// suffix), so that a sample line copies one string, not two.
    sample_name: String,
}

impl Writer {
    pub fn new(format: Format, capacity: usize) -> Writer {
        Writer::with_buffer(format, Vec::with_capacity(capacity))
    }

    /// A writer appending to `out` (what it holds is kept).
    pub fn with_buffer(format: Format, out: Vec<u8>) -> Writer {
        Writer {
            family_start: out.len(),
            samples_start: out.len(),
            out,
            format,
            name: String::new(),
            sample_name: String::new(),
        }
    }

    /// The descriptor lines (`# HELP`, `# TYPE`) of a family, alone.
    pub fn descriptor(format: Format, name: &str, help: &str, kind: Kind, out: &mut Vec<u8>) {
        let mut w = Writer::with_buffer(format, std::mem::take(out));
        w.family(name, help, kind);
        // Taken out before `finish` would drop the still-empty family.
        *out = w.out;
    }

    /// Go on with samples of a family whose descriptor is written
    /// elsewhere: nothing is written until the first sample.
    pub fn resume(&mut self, name: &str, kind: Kind) {
        self.close_family();
        self.name.clear();
        self.name.push_str(name);
        self.set_sample_name(kind);
    }

    /// The open family's samples' name, by its kind.
    fn set_sample_name(&mut self, kind: Kind) {
        self.sample_name.clear();
        self.sample_name.push_str(&self.name);
        self.sample_name.push_str(match kind {
            Kind::Counter => "_total",
            Kind::Info => "_info",
            Kind::Gauge | Kind::Histogram => "",
        });
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Open a family; the previous one is closed (and dropped if empty).
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.close_family();
        self.name.clear();
        self.name.push_str(name);
        self.open(help, kind);
    }

    fn open(&mut self, help: &str, kind: Kind) {
        self.set_sample_name(kind);
        self.family_start = self.out.len();
        let type_word = match (self.format, kind) {
            (_, Kind::Gauge) | (Format::Text, Kind::Info) => "gauge",
            (_, Kind::Counter) => "counter",
            (Format::OpenMetrics, Kind::Info) => "info",
            (_, Kind::Histogram) => "histogram",
        };
        self.out.extend_from_slice(b"# HELP ");
        self.push_descriptor_name();
        self.out.push(b' ');
        self.push_help(help);
        self.out.extend_from_slice(b"\n# TYPE ");
        self.push_descriptor_name();
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

    /// The name `# HELP` and `# TYPE` give: the samples' name in the text
    /// format (a counter's with `_total`, an info's with `_info`), the
    /// family's own in OpenMetrics.
    fn push_descriptor_name(&mut self) {
        let name = match self.format {
            Format::Text => &self.sample_name,
            Format::OpenMetrics => &self.name,
        };
        self.out.extend_from_slice(name.as_bytes());
    }

    /// One sample of the open family: the target's labels, then `labels`
    /// pairs in order, then the target's static labels. Counters get
    /// `_total`, infos `_info`.
    #[inline(always)]
    pub fn sample<'t>(
        &mut self,
        target: impl Into<Labels<'t>>,
        labels: &[(&str, &str)],
        value: Value,
    ) {
        self.sample_escaping(target.into(), labels, true, value);
    }

    /// [`Writer::sample`] for label values the caller knows need no
    /// escaping (checked once when they were parsed, see
    /// [`label_needs_escaping`]), so the scrape does not look again.
    #[inline(always)]
    pub fn sample_plain<'t>(
        &mut self,
        target: impl Into<Labels<'t>>,
        labels: &[(&str, &str)],
        value: Value,
    ) {
        debug_assert!(labels.iter().all(|(_, v)| !label_needs_escaping(v)));
        self.sample_escaping(target.into(), labels, false, value);
    }

    #[inline(always)]
    fn sample_escaping(
        &mut self,
        target: Labels<'_>,
        labels: &[(&str, &str)],
        escape: bool,
        value: Value,
    ) {
        self.line(None, None, target, labels, escape, value);
    }

    /// A histogram's lines: `buckets` as (upper bound as written in `le`,
    /// count in that bucket alone; the last is `+Inf`), written cumulative,
    /// then sum and count.
    pub fn histogram<'t>(
        &mut self,
        target: impl Into<Labels<'t>>,
        labels: &[(&str, &str)],
        buckets: &[(&str, u64)],
        sum: f64,
        count: u64,
    ) {
        let target = target.into();
        let mut cumulative = 0u64;
        for (le, n) in buckets {
            cumulative = cumulative.saturating_add(*n);
            self.line(
                Some(b"_bucket"),
                Some(le),
                target,
                labels,
                true,
                Value::from(cumulative),
            );
        }
        self.line(Some(b"_sum"), None, target, labels, true, Value::Float(sum));
        self.line(
            Some(b"_count"),
            None,
            target,
            labels,
            true,
            Value::from(count),
        );
    }

    /// `<name><suffix>{le="…",target="…",<labels>,<static labels>} <value>`:
    /// `le` first, as prometheus-client writes it; the target's own labels
    /// come pre-escaped from [`TargetLabels`]. No `suffix`: the sample
    /// name of the family's kind.
    ///
    /// Inlined into every caller (with the `sample*` methods): there the
    /// label names are constants and the count of labels is known, so the
    /// copies of names become a few stores instead of calls to `memcpy`,
    /// and the loop over labels unrolls: most of the quarter fewer
    /// instructions a plain render at 10,000 targets executes since
    /// (callgrind, `bench/render-instructions`; ARCHITECTURE.md).
    #[inline(always)]
    fn line(
        &mut self,
        suffix: Option<&[u8]>,
        le: Option<&str>,
        target: Labels<'_>,
        labels: &[(&str, &str)],
        escape: bool,
        value: Value,
    ) {
        let out = &mut self.out;
        match suffix {
            Some(suffix) => {
                out.extend_from_slice(self.name.as_bytes());
                out.extend_from_slice(suffix);
            }
            None => out.extend_from_slice(self.sample_name.as_bytes()),
        }
        let mut open = false;
        if let Some(le) = le {
            out.extend_from_slice(b"{le=\"");
            out.extend_from_slice(le.as_bytes());
            out.push(b'"');
            open = true;
        }
        if !target.head.is_empty() {
            out.push(if open { b',' } else { b'{' });
            out.extend_from_slice(target.head);
            open = true;
        }
        for (name, value) in labels {
            out.push(if open { b',' } else { b'{' });
            open = true;
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"=\"");
            if escape {
                push_escaped(out, value, false);
            } else {
                out.extend_from_slice(value.as_bytes());
            }
            out.push(b'"');
        }
        if let Some((_comma, rest)) = target.tail.split_first() {
            // The tail starts with a comma, which a first label replaces.
            out.push(if open { b',' } else { b'{' });
            out.extend_from_slice(rest);
            open = true;
        }
        if open {
            out.push(b'}');
        }
        match value {
            // Most values are one digit (status codes, 0 and 1, counts of
            // open incidents): three bytes stored in place, no formatter.
            Value::Int(v @ 0..=9) => out.extend_from_slice(&[b' ', b'0' + v as u8, b'\n']),
            Value::Int(v) => {
                out.push(b' ');
                out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
                out.push(b'\n');
            }
            Value::Float(v) => {
                out.push(b' ');
                push_float(out, v);
                out.push(b'\n');
            }
        }
    }

    fn push_help(&mut self, help: &str) {
        // OpenMetrics escapes quotes in HELP too; the text format does not.
        push_escaped(&mut self.out, help, self.format == Format::Text);
    }

    /// What was written; a family left without samples leaves nothing.
    /// (OpenMetrics' closing `# EOF` is the caller's: a writer may hold
    /// only a piece of the exposition.)
    pub fn finish(mut self) -> Vec<u8> {
        self.close_family();
        self.out
    }
}

/// Append `value` escaped for a label value (`\\`, `\"`, `\n`), or for HELP
/// text in the 0.0.4 format (`help_text`: quotes stay as they are).
fn push_escaped(out: &mut Vec<u8>, value: &str, help_text: bool) {
    let bytes = value.as_bytes();
    if !needs_escaping(bytes, !help_text) {
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

/// Whether `value` needs escaping as a label value (holds `\\`, `"` or a
/// newline).
pub fn label_needs_escaping(value: &str) -> bool {
    needs_escaping(value.as_bytes(), true)
}

/// Whether `bytes` holds a backslash, a newline or (with `quotes`) a double
/// quote. Label values are short (ids, names): a branch-free pass over
/// them, which the compiler vectorises, beats `memchr`'s set-up per call;
/// long values (HELP text, incident titles) go to `memchr`.
fn needs_escaping(bytes: &[u8], quotes: bool) -> bool {
    if bytes.len() > 64 {
        return if quotes {
            memchr::memchr3(b'\\', b'\n', b'"', bytes).is_some()
        } else {
            memchr::memchr2(b'\\', b'\n', bytes).is_some()
        };
    }
    bytes.iter().fold(false, |hit, &b| {
        hit | (b == b'\\') | (b == b'\n') | (quotes & (b == b'"'))
    })
}

/// A target's own labels, escaped once when the target is configured
/// instead of on each of its ~50 lines of every scrape: `head` is
/// `target="<name>"`, `tail` is `,<key>="<value>"` for each static label.
#[derive(Debug, Clone, Default)]
pub struct TargetLabels {
    head: Box<[u8]>,
    tail: Box<[u8]>,
}

impl TargetLabels {
    pub fn new(name: &str, static_labels: &[(String, String)]) -> TargetLabels {
        let mut head = Vec::with_capacity(name.len() + 9);
        head.extend_from_slice(b"target=\"");
        push_escaped(&mut head, name, false);
        head.push(b'"');
        let mut tail = Vec::new();
        for (key, value) in static_labels {
            tail.push(b',');
            tail.extend_from_slice(key.as_bytes());
            tail.extend_from_slice(b"=\"");
            push_escaped(&mut tail, value, false);
            tail.push(b'"');
        }
        TargetLabels {
            head: head.into(),
            tail: tail.into(),
        }
    }

    /// No target: samples carry only the labels given with them.
    pub fn none() -> TargetLabels {
        TargetLabels::default()
    }
}

/// A target's escaped labels, borrowed: from its [`TargetLabels`], or from
/// the copy a scrape makes of every target's ([`LabelArena`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl<'a> From<&'a TargetLabels> for Labels<'a> {
    fn from(labels: &'a TargetLabels) -> Labels<'a> {
        Labels {
            head: &labels.head,
            tail: &labels.tail,
        }
    }
}

/// Many targets' labels copied back to back, once per scrape.
///
/// Every per-target family writes each target's labels again, ~15 times
/// per scrape at 20 components. Read from the targets themselves, that is
/// two dependent loads from memory per target and family (the target's
/// state, then its label bytes), each likely a cache miss at 10,000
/// targets; `perf` put half of [`Writer::line`]'s time on the first of
/// them. Read from here, the families walk one buffer in order, which the
/// processor prefetches.
#[derive(Debug, Default)]
pub struct LabelArena {
    bytes: Vec<u8>,
    /// Where each copy's head ends and where its tail ends.
    ends: Vec<(usize, usize)>,
}

impl LabelArena {
    pub fn copy<'a>(labels: impl ExactSizeIterator<Item = &'a TargetLabels>) -> LabelArena {
        let mut arena = LabelArena {
            bytes: Vec::new(),
            ends: Vec::with_capacity(labels.len()),
        };
        for l in labels {
            arena.bytes.extend_from_slice(&l.head);
            let head_end = arena.bytes.len();
            arena.bytes.extend_from_slice(&l.tail);
            arena.ends.push((head_end, arena.bytes.len()));
        }
        arena
    }

    /// The `i`-th copy (empty labels past the end).
    pub fn get(&self, i: usize) -> Labels<'_> {
        let Some(&(head_end, end)) = self.ends.get(i) else {
            return Labels::default();
        };
        let start = match i.checked_sub(1) {
            Some(previous) => self.ends[previous].1,
            None => 0,
        };
        Labels {
            head: &self.bytes[start..head_end],
            tail: &self.bytes[head_end..end],
        }
    }
}

fn push_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
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
            w.sample(&TargetLabels::new("a", &[]), &[], Value::Int(3));
            w.family("up_target", "Facts.", Kind::Info);
            w.sample(
                &TargetLabels::new("a", &[("team".into(), "x".into())]),
                &[],
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
             # HELP up_target Facts.\n# TYPE up_target info\nup_target_info{target=\"a\",team=\"x\"} 1\n"
        );
    }

    #[test]
    fn empty_families_leave_nothing() {
        let out = render(Format::Text, |w| {
            w.family("a", "A.", Kind::Gauge);
            w.family("b", "B.", Kind::Gauge);
            w.sample(&TargetLabels::none(), &[], Value::Float(0.5));
            w.family("c", "C.", Kind::Gauge);
        });
        assert_eq!(out, "# HELP b B.\n# TYPE b gauge\nb 0.5\n");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let out = render(Format::Text, |w| {
            w.family("m", "say \"hi\" \\ bye\nnow", Kind::Gauge);
            w.sample(
                &TargetLabels::none(),
                &[("l", "a\"b\\c\nd")],
                Value::number(2.0),
            );
        });
        assert_eq!(
            out,
            "# HELP m say \"hi\" \\\\ bye\\nnow\n# TYPE m gauge\nm{l=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
        let om = render(Format::OpenMetrics, |w| {
            w.family("m", "say \"hi\"", Kind::Gauge);
            w.sample(&TargetLabels::none(), &[], Value::Int(1));
        });
        assert!(om.starts_with("# HELP m say \\\"hi\\\"\n"));
    }

    #[test]
    fn target_labels_are_escaped_once_and_placed_around_the_others() {
        let target = TargetLabels::new(
            "t\"1",
            &[
                ("team".into(), "a\\b".into()),
                ("env".into(), "x\ny".into()),
            ],
        );
        let out = render(Format::Text, |w| {
            w.family("m", "M.", Kind::Gauge);
            w.sample(&target, &[], Value::Int(1));
            w.sample(&target, &[("k", "v\"")], Value::Int(2));
            w.sample_plain(&target, &[("k", "v")], Value::Int(3));
            w.sample(
                &TargetLabels::new("", &[("only".into(), "static".into())]),
                &[],
                Value::Int(4),
            );
            w.sample(&TargetLabels::none(), &[("only", "static")], Value::Int(5));
        });
        assert_eq!(
            out,
            "# HELP m M.\n# TYPE m gauge\n\
             m{target=\"t\\\"1\",team=\"a\\\\b\",env=\"x\\ny\"} 1\n\
             m{target=\"t\\\"1\",k=\"v\\\"\",team=\"a\\\\b\",env=\"x\\ny\"} 2\n\
             m{target=\"t\\\"1\",k=\"v\",team=\"a\\\\b\",env=\"x\\ny\"} 3\n\
             m{target=\"\",only=\"static\"} 4\n\
             m{only=\"static\"} 5\n"
        );
    }

    #[test]
    fn escaping_check_agrees_with_a_plain_search_at_every_length() {
        for len in [0usize, 1, 7, 31, 64, 65, 200] {
            for bad in ['\\', '"', '\n'] {
                for at in [0, len / 2, len.saturating_sub(1)] {
                    let mut s: Vec<char> = std::iter::repeat_n('a', len).collect();
                    if len > 0 {
                        s[at] = bad;
                    }
                    let s: String = s.into_iter().collect();
                    let expected = s.contains(['\\', '"', '\n']);
                    assert_eq!(label_needs_escaping(&s), expected, "{s:?}");
                    let help = s.contains(['\\', '\n']);
                    assert_eq!(needs_escaping(s.as_bytes(), false), help, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn histogram_is_cumulative_with_inf_bucket() {
        let out = render(Format::Text, |w| {
            w.family("d", "D.", Kind::Histogram);
            w.histogram(
                &TargetLabels::new("a", &[]),
                &[],
                &[("0.5", 1), ("1.0", 2), ("+Inf", 1)],
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
    fn a_family_written_in_pieces_reads_as_one() {
        let target = TargetLabels::new("a", &[]);
        let whole = render(Format::Text, |w| {
            w.family("m", "M.", Kind::Counter);
            for i in 0..4 {
                w.sample(&target, &[], Value::Int(i));
            }
        });
        let mut pieces = Vec::new();
        Writer::descriptor(Format::Text, "m", "M.", Kind::Counter, &mut pieces);
        for part in [0..2, 2..2, 2..4] {
            let mut w = Writer::with_buffer(Format::Text, std::mem::take(&mut pieces));
            w.resume("m", Kind::Counter);
            for i in part {
                w.sample(&target, &[], Value::Int(i));
            }
            pieces = w.finish();
        }
        assert_eq!(String::from_utf8(pieces).unwrap(), whole);
        // A piece without samples is empty, descriptor and all.
        let mut w = Writer::new(Format::Text, 0);
        w.resume("m", Kind::Counter);
        assert!(w.finish().is_empty());
    }

    #[test]
    fn numbers() {
        let out = render(Format::Text, |w| {
            w.family("n", "N.", Kind::Gauge);
            for v in [
                1763822345.25,
                0.0,
                -3.0,
                1e300,
                1.5e-7,
                0.1 + 0.2,
                1796317693.2922587,
                f64::NAN,
                f64::NEG_INFINITY,
            ] {
                w.sample(&TargetLabels::none(), &[], Value::number(v));
            }
        });
        // The shortest digits that read back the same: `dtoa` wrote
        // 0.30000000000000007 and 1796317693.2922588 for the two before NaN.
        assert_eq!(
            out,
            "# HELP n N.\n# TYPE n gauge\nn 1763822345.25\nn 0\nn -3\nn 1e+300\nn 1.5e-7\n\
             n 0.30000000000000004\nn 1796317693.2922587\nn NaN\nn -Inf\n"
        );
    }

    proptest::proptest! {
        /// Whatever the value, the text reads back as the same `f64` (as
        /// Prometheus parses it: Rust's parser and Go's agree on these).
        #[test]
        fn floats_read_back_as_the_same_value(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            let mut out = Vec::new();
            push_float(&mut out, v);
            let text = String::from_utf8(out).unwrap();
            let read = match text.as_str() {
                "+Inf" => f64::INFINITY,
                other => other.parse::<f64>().unwrap(),
            };
            proptest::prop_assert!(
                read.to_bits() == v.to_bits() || (v.is_nan() && read.is_nan()),
                "{v:e} written as {text}"
            );
        }
    }

    #[test]
    fn labels_copied_into_an_arena_write_what_the_originals_do() {
        let targets = [
            TargetLabels::new("a", &[]),
            TargetLabels::new("b\"q\\", &[("team".into(), "x\ny".into())]),
            TargetLabels::none(),
            TargetLabels::new(
                "",
                &[("only".into(), "static".into()), ("k".into(), "v".into())],
            ),
            TargetLabels::new("last", &[]),
        ];
        let arena = LabelArena::copy(targets.iter());
        fn write<'a>(count: usize, labels: impl Fn(usize) -> Labels<'a>) -> String {
            render(Format::Text, |w| {
                w.family("m", "M.", Kind::Gauge);
                for i in 0..count {
                    w.sample(labels(i), &[("k2", "v2")], Value::Int(i as i64));
                    w.sample(labels(i), &[], Value::Int(0));
                }
            })
        }
        let copied = write(targets.len(), |i| arena.get(i));
        assert_eq!(copied, write(targets.len(), |i| Labels::from(&targets[i])));
        assert!(
            copied.contains("m{target=\"b\\\"q\\\\\",k2=\"v2\",team=\"x\\ny\"} 1\n"),
            "{copied}"
        );
        assert!(copied.contains("\nm 0\n"), "{copied}");
        // Past the end: no labels rather than a panic.
        let past = arena.get(targets.len());
        assert!(past.head.is_empty() && past.tail.is_empty());
        assert!(LabelArena::copy([].iter()).get(0).head.is_empty());
    }
}
