//! A large response body rendered on every core, in order, and optionally
//! gzip-compressed in pieces the way `pigz` does it.
//!
//! `/metrics` at 10,000 targets is ~40 MB of text; one thread rendering it
//! and then compressing it took ~60 ms plus ~60 ms of CPU per scrape. The
//! body is instead cut into *units* (a few hundred lines of one family
//! each) that worker threads render, and compress, side by side; this
//! thread hands them to the sink in order. A unit's compressed bytes are a
//! deflate stream of its own, ended with a sync flush (byte-aligned, not
//! final), so the units' streams laid end to end are one valid deflate
//! stream; a final empty block and the gzip trailer (CRC-32 combined from
//! the units' CRCs, and the length) close it. Every gzip decoder reads the
//! result as one ordinary gzip member.
//!
//! Memory stays bounded: workers run at most [`WINDOW_PER_WORKER`] units
//! per worker ahead of the sink, so a slow client slows the rendering
//! instead of growing a buffer, and a client that hangs up stops it.
//!
//! A gzip body may also keep its units' compressed pieces for the next one
//! ([`PieceCache`]): a unit whose [`Source::cache_key`] is the same as last
//! time is neither rendered nor compressed again, since independent pieces
//! can be laid end to end in any body.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crc32fast::Hasher as Crc;
use flate2::{Compress, Compression, FlushCompress};

/// A body made of units of work, grouped: a group's preamble (a metric
/// family's descriptor lines) is written before its first unit that has
/// content, and not at all if none has.
pub trait Source: Sync {
    /// How many units, in output order.
    fn units(&self) -> usize;
    /// The group unit `unit` belongs to; units of a group are consecutive.
    fn group(&self, unit: usize) -> usize;
    /// Append group `group`'s preamble to `out`.
    fn preamble(&self, group: usize, out: &mut Vec<u8>);
    /// Append unit `unit`'s bytes to `out` (nothing is fine).
    fn render(&self, unit: usize, out: &mut Vec<u8>);
    /// Write to `key` everything unit `unit`'s bytes depend on and return
    /// true, if they may be kept between bodies: equal keys must mean equal
    /// bytes, whatever else has changed. By default no unit is kept.
    fn cache_key(&self, _unit: usize, _key: &mut Vec<u64>) -> bool {
        false
    }
    /// Whether unit `unit`, just rendered after its key was taken, still
    /// shows what the key stands for (anything it read as it rendered,
    /// rather than from what the key was made of, may have moved on
    /// meanwhile); if not, its piece is served but not kept.
    fn still_current(&self, _unit: usize) -> bool {
        true
    }
}

/// Compressed pieces of the last gzip body, by their units' keys, for the
/// next body to reuse (see [`Source::cache_key`]).
///
/// Only compressed pieces are kept: ~6 times smaller than the text (at
/// 10,000 targets × 20 components, 3.6 MB for the status families).
/// A body that runs to its end replaces the whole set with the pieces it
/// used, so what is kept never outgrows one body; a body abandoned half
/// way leaves the set as it was.
#[derive(Default)]
pub struct PieceCache {
    pieces: Mutex<Arc<Pieces>>,
}

type Pieces = HashMap<Box<[u64]>, Arc<Kept>>;

/// One unit's compressed piece, as kept.
struct Kept {
    bytes: Box<[u8]>,
    crc: Crc,
    len: u64,
}

impl std::fmt::Debug for PieceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (pieces, bytes) = self.size();
        f.debug_struct("PieceCache")
            .field("pieces", &pieces)
            .field("bytes", &bytes)
            .finish()
    }
}

impl PieceCache {
    fn lock(&self) -> MutexGuard<'_, Arc<Pieces>> {
        // Only ever replaced whole, so never left half-written.
        self.pieces.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> Arc<Pieces> {
        Arc::clone(&self.lock())
    }

    fn replace(&self, pieces: Pieces) {
        *self.lock() = Arc::new(pieces);
    }

    /// Pieces kept, and their compressed bytes in all.
    pub fn size(&self) -> (usize, usize) {
        let pieces = self.current();
        (pieces.len(), pieces.values().map(|k| k.bytes.len()).sum())
    }
}

/// Bytes per chunk handed to the sink: large enough that per-chunk costs
/// (a wake-up of the writing thread, a syscall) vanish, small enough that
/// a scrape holds about a megabyte in flight. A unit's piece of at least
/// half this size goes as it is, without a copy.
pub const CHUNK: usize = 128 * 1024;

/// Units a worker may render ahead of the sink.
pub const WINDOW_PER_WORKER: usize = 2;

/// Worker threads at most, whatever the machine has.
const MAX_WORKERS: usize = 4;

/// gzip member header: magic, deflate, no flags, no mtime, no extra
/// flags, OS unknown (as `flate2::GzBuilder` writes it, minus the OS).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A final, empty, fixed-Huffman deflate block (after a sync flush the
/// stream is byte-aligned): BFINAL=1, BTYPE=01, end-of-block.
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// Workers for a body of `units` units on this machine (its cores as
/// `available_parallelism` says, which follows the process's CPU affinity
/// and a cgroup CPU quota).
pub fn workers_for(units: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    workers_for_cores(cores, units)
}

/// One worker per core, at most [`MAX_WORKERS`] and one per unit; but
/// never a single worker: the calling thread would only wait for each
/// unit it could have rendered itself, paying the hand-offs for no
/// parallelism. It renders on its own instead (0 workers). On one core
/// (a pod limited to a CPU, `taskset -c 0` here), 10,000 targets, 40
/// plain scrapes under the probe load, alternated ×3: p50 59.5-71.4
/// against 67.7-83.9 ms, p99 83.8-100.6 against 103.6-121.4 ms, and
/// 64-73 against 75-92 ms of CPU per scrape; gzip showed no difference.
fn workers_for_cores(cores: usize, units: usize) -> usize {
    let workers = cores.min(MAX_WORKERS).min(units);
    if workers <= 1 { 0 } else { workers }
}

/// How a body is made: gzip-compressed or not, on how many threads, and
/// with which kept pieces.
#[derive(Clone, Copy, Default)]
pub struct Options<'c> {
    pub gzip: bool,
    /// Worker threads (0: render on the calling thread).
    pub workers: usize,
    /// Pieces to reuse and to keep; used only when `gzip`.
    pub cache: Option<&'c PieceCache>,
}

/// Write `head`, every unit of `source` and `tail` to `sink` in chunks of
/// about [`CHUNK`] bytes, as `options` say. Stops as soon as `sink`
/// returns false. Returns the body's uncompressed length.
pub fn render(
    source: &dyn Source,
    head: &[u8],
    tail: &[u8],
    options: Options<'_>,
    sink: &mut dyn FnMut(Vec<u8>) -> bool,
) -> u64 {
    let Options {
        gzip,
        workers,
        cache,
    } = options;
    let cache = cache.filter(|_| gzip);
    let kept = cache.map(PieceCache::current);
    let mut next_kept = cache.map(|_| Pieces::new());
    let mut out = Output::new(gzip, sink);
    out.plain(head);
    let units = source.units();
    let queue = Queue::new(units, workers.max(1) * WINDOW_PER_WORKER);
    let mut taken = 0;
    std::thread::scope(|scope| {
        let spawned = (0..workers)
            .filter(|_| {
                let kept = kept.clone();
                std::thread::Builder::new()
                    .name("metrics-render".into())
                    .spawn_scoped(scope, || work(source, &queue, gzip, kept))
                    .is_ok()
            })
            .count();
        // No worker asked for, or no thread to be had: render here.
        let mut here = (spawned == 0).then(|| Renderer::new(gzip, kept.clone()));
        let mut group = None;
        for unit in 0..units {
            let piece = match &mut here {
                Some(renderer) => Some(renderer.piece(source, unit)),
                None => queue.take(unit),
            };
            let Some(mut piece) = piece else {
                break;
            };
            taken += 1;
            if let (Some(next), Some((key, kept))) = (&mut next_kept, piece.keep.take()) {
                next.insert(key, kept);
            }
            if piece.len == 0 {
                continue;
            }
            let this = source.group(unit);
            if group != Some(this) {
                group = Some(this);
                let mut preamble = Vec::new();
                source.preamble(this, &mut preamble);
                out.plain(&preamble);
            }
            out.piece(piece);
            if out.hung_up {
                break;
            }
        }
        // Whatever ended the loop, no worker waits on it any more.
        queue.cancel();
    });
    // Only a whole body says which pieces are still of use.
    if let (Some(cache), Some(next)) = (cache, next_kept)
        && taken == units
        && !out.hung_up
    {
        cache.replace(next);
    }
    out.plain(tail);
    out.finish()
}

/// One unit's output: plain bytes, or a sync-flushed deflate stream with
/// the CRC-32 and length of the plain bytes it stands for; and, for a unit
/// with a key, the key and the piece as kept for the next body.
struct Piece {
    bytes: Vec<u8>,
    crc: Crc,
    len: u64,
    keep: Option<(Box<[u64]>, Arc<Kept>)>,
}

impl Piece {
    fn new(bytes: Vec<u8>, crc: Crc, len: u64) -> Piece {
        Piece {
            bytes,
            crc,
            len,
            keep: None,
        }
    }
}

/// Render units off the shared queue until none is left or the body is
/// abandoned.
fn work(source: &dyn Source, queue: &Queue, gzip: bool, kept: Option<Arc<Pieces>>) {
    /// A worker that panics (a bug) abandons the body, so the consumer
    /// waiting for its unit stops instead of waiting forever.
    struct CancelOnPanic<'q>(&'q Queue);
    impl Drop for CancelOnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.cancel();
            }
        }
    }
    let _guard = CancelOnPanic(queue);
    let mut renderer = Renderer::new(gzip, kept);
    while let Some(unit) = queue.next() {
        let piece = renderer.piece(source, unit);
        queue.put(unit, piece);
    }
}

/// What one thread needs to turn units into pieces.
struct Renderer {
    deflater: Option<Deflater>,
    plain: Vec<u8>,
    /// The last body's kept pieces ([`render`] passes them only with gzip).
    kept: Option<Arc<Pieces>>,
    key: Vec<u64>,
}

impl Renderer {
    fn new(gzip: bool, kept: Option<Arc<Pieces>>) -> Renderer {
        Renderer {
            deflater: gzip.then(Deflater::new),
            plain: Vec::new(),
            kept,
            key: Vec::new(),
        }
    }

    /// Unit `unit`'s piece: the kept one if its key is unchanged, else
    /// rendered (and kept for the next body if it has a key).
    fn piece(&mut self, source: &dyn Source, unit: usize) -> Piece {
        let Some(kept) = &self.kept else {
            return self.render(source, unit);
        };
        self.key.clear();
        if !source.cache_key(unit, &mut self.key) {
            return self.render(source, unit);
        }
        let key: Box<[u64]> = self.key.as_slice().into();
        if let Some(hit) = kept.get(&key) {
            let mut piece = Piece::new(hit.bytes.to_vec(), hit.crc.clone(), hit.len);
            piece.keep = Some((key, Arc::clone(hit)));
            return piece;
        }
        let mut piece = self.render(source, unit);
        if !source.still_current(unit) {
            return piece;
        }
        let kept = Kept {
            bytes: piece.bytes.as_slice().into(),
            crc: piece.crc.clone(),
            len: piece.len,
        };
        piece.keep = Some((key, Arc::new(kept)));
        piece
    }

    fn render(&mut self, source: &dyn Source, unit: usize) -> Piece {
        self.plain.clear();
        source.render(unit, &mut self.plain);
        match &mut self.deflater {
            Some(d) => d.piece(&self.plain),
            None => {
                let len = self.plain.len() as u64;
                // Hand the buffer over; the next starts at this one's size.
                let capacity = self.plain.capacity();
                let bytes = std::mem::replace(&mut self.plain, Vec::with_capacity(capacity));
                Piece::new(bytes, Crc::new(), len)
            }
        }
    }
}

/// Independent deflate pieces, at the fast level: scrapes are frequent and
/// higher levels save little on this repetitive text.
struct Deflater {
    compress: Compress,
}

impl Deflater {
    fn new() -> Deflater {
        Deflater {
            compress: Compress::new(Compression::fast(), false),
        }
    }

    /// `plain` as a deflate stream of its own, ended by a sync flush.
    fn piece(&mut self, plain: &[u8]) -> Piece {
        let mut crc = Crc::new();
        crc.update(plain);
        let mut bytes = Vec::new();
        if plain.is_empty() {
            return Piece::new(bytes, crc, 0);
        }
        self.compress.reset();
        let mut input = plain;
        loop {
            bytes.reserve(input.len() / 2 + 256);
            let before = self.compress.total_in();
            if self
                .compress
                .compress_vec(input, &mut bytes, FlushCompress::Sync)
                .is_err()
            {
                // Compressing into memory does not fail on any input; if it
                // ever did, a body that stops short is the honest answer.
                tracing::error!("compressing /metrics failed");
                return Piece::new(Vec::new(), Crc::new(), 0);
            }
            let used = usize::try_from(self.compress.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            // The flush is complete once all input is in and the output
            // did not fill up.
            if input.is_empty() && bytes.len() < bytes.capacity() {
                break;
            }
        }
        Piece::new(bytes, crc, plain.len() as u64)
    }
}

/// The body as it goes to the sink: chunked, and framed as gzip if asked.
struct Output<'s> {
    sink: &'s mut dyn FnMut(Vec<u8>) -> bool,
    pending: Vec<u8>,
    /// gzip: the consumer's own deflater (head, preambles, tail) and the
    /// running CRC-32 and length of everything so far.
    gzip: Option<(Deflater, Crc)>,
    len: u64,
    hung_up: bool,
}

impl<'s> Output<'s> {
    fn new(gzip: bool, sink: &'s mut dyn FnMut(Vec<u8>) -> bool) -> Output<'s> {
        let mut pending = Vec::with_capacity(CHUNK + CHUNK / 4);
        if gzip {
            pending.extend_from_slice(&GZIP_HEADER);
        }
        Output {
            sink,
            pending,
            gzip: gzip.then(|| (Deflater::new(), Crc::new())),
            len: 0,
            hung_up: false,
        }
    }

    /// Bytes written here, compressed on this thread if need be.
    fn plain(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let piece = match &mut self.gzip {
            Some((deflater, _)) => deflater.piece(bytes),
            None => Piece::new(bytes.to_vec(), Crc::new(), bytes.len() as u64),
        };
        self.piece(piece);
    }

    fn piece(&mut self, piece: Piece) {
        if self.hung_up {
            return;
        }
        self.len += piece.len;
        if let Some((_, crc)) = &mut self.gzip {
            crc.combine(&piece.crc);
        }
        if piece.bytes.len() >= CHUNK / 2 {
            // Large enough to go as it is, without a copy; what is pending
            // (preambles, small pieces) goes first, as a right-sized copy,
            // so the pending buffer stays for what follows.
            if !self.pending.is_empty() {
                let before = self.pending.as_slice().to_vec();
                self.pending.clear();
                self.send(before);
            }
            self.send(piece.bytes);
            return;
        }
        self.pending.extend_from_slice(&piece.bytes);
        if self.pending.len() >= CHUNK {
            let full = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK + CHUNK / 4));
            self.send(full);
        }
    }

    fn send(&mut self, chunk: Vec<u8>) {
        if !self.hung_up && !(self.sink)(chunk) {
            self.hung_up = true;
            self.pending = Vec::new();
        }
    }

    /// Close the gzip member and send what is left; the body's length.
    fn finish(mut self) -> u64 {
        if let Some((_, crc)) = &self.gzip {
            // The trailer: CRC-32, then the length modulo 2^32.
            let (sum, amount) = (crc.clone().finalize(), (self.len & 0xffff_ffff) as u32);
            self.pending.extend_from_slice(&FINAL_EMPTY_BLOCK);
            self.pending.extend_from_slice(&sum.to_le_bytes());
            self.pending.extend_from_slice(&amount.to_le_bytes());
        }
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.send(rest);
        }
        self.len
    }
}

/// Units handed out to workers in order and collected back in order, at
/// most `window` ahead of the consumer.
struct Queue {
    state: Mutex<QueueState>,
    /// A unit was finished (the consumer may be waiting for it).
    finished: Condvar,
    /// The consumer took a unit (a worker may be waiting for room).
    room: Condvar,
    units: usize,
    window: usize,
}

struct QueueState {
    /// The next unit to hand to a worker.
    next: usize,
    /// Units before this one have been taken by the consumer.
    taken: usize,
    /// Finished units from `taken` on, by `unit - taken`.
    done: std::collections::VecDeque<Option<Piece>>,
    cancelled: bool,
    /// The consumer is waiting for unit `taken`.
    consumer_waiting: bool,
    /// Workers waiting for room.
    workers_waiting: usize,
}

impl Queue {
    fn new(units: usize, window: usize) -> Queue {
        Queue {
            state: Mutex::new(QueueState {
                next: 0,
                taken: 0,
                done: std::collections::VecDeque::with_capacity(window),
                cancelled: false,
                consumer_waiting: false,
                workers_waiting: 0,
            }),
            finished: Condvar::new(),
            room: Condvar::new(),
            units,
            window: window.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A worker that panicked mid-unit leaves consistent state behind:
        // every field is updated under the lock in one step.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next unit for a worker, waiting for room; None when all are
    /// handed out or the body was abandoned.
    fn next(&self) -> Option<usize> {
        let mut s = self.lock();
        loop {
            if s.cancelled || s.next >= self.units {
                return None;
            }
            if s.next < s.taken + self.window {
                let unit = s.next;
                s.next += 1;
                return Some(unit);
            }
            s.workers_waiting += 1;
            s = self.room.wait(s).unwrap_or_else(|p| p.into_inner());
            s.workers_waiting -= 1;
        }
    }

    fn put(&self, unit: usize, piece: Piece) {
        let mut s = self.lock();
        let Some(slot) = unit.checked_sub(s.taken) else {
            return;
        };
        while s.done.len() <= slot {
            s.done.push_back(None);
        }
        s.done[slot] = Some(piece);
        // The consumer goes on only with the unit it waits for; waking it
        // for any other is a thread switch for nothing.
        let wake = s.consumer_waiting && slot == 0;
        drop(s);
        if wake {
            self.finished.notify_one();
        }
    }

    /// Unit `unit` (the next in order), waiting until it is finished; None
    /// if the body was abandoned or the unit can never come.
    fn take(&self, unit: usize) -> Option<Piece> {
        let mut s = self.lock();
        debug_assert_eq!(unit, s.taken);
        loop {
            if let Some(piece) = s.done.front_mut().and_then(Option::take) {
                s.done.pop_front();
                s.taken += 1;
                // Waiting workers are woken once half the window is free
                // rather than at each unit taken, so each wake-up renders
                // several units. Nothing stalls meanwhile: a waiting worker
                // has put its last unit, so the units ahead are all done or
                // being rendered by a worker that is not waiting.
                let ahead = s.next.saturating_sub(s.taken);
                let wake = s.workers_waiting > 0 && ahead <= self.window / 2;
                drop(s);
                if wake {
                    self.room.notify_all();
                }
                return Some(piece);
            }
            if s.cancelled {
                return None;
            }
            s.consumer_waiting = true;
            s = self.finished.wait(s).unwrap_or_else(|p| p.into_inner());
            s.consumer_waiting = false;
        }
    }

    fn cancel(&self) {
        self.lock().cancelled = true;
        self.room.notify_all();
        self.finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_worker_per_core_but_never_just_one() {
        let w = workers_for_cores;
        // (cores, units) -> workers
        assert_eq!(w(1, 100), 0);
        assert_eq!(w(2, 100), 2);
        assert_eq!(w(3, 100), 3);
        assert_eq!(w(64, 100), MAX_WORKERS);
        // Never more workers than units, and one unit is rendered here.
        assert_eq!(w(8, 3), 3);
        assert_eq!(w(8, 1), 0);
        assert_eq!(w(8, 0), 0);
    }

    /// Units of varied sizes, some empty, in groups with preambles.
    struct Lines {
        groups: Vec<Vec<usize>>,
    }

    impl Lines {
        fn flat(&self) -> Vec<(usize, usize)> {
            self.groups
                .iter()
                .enumerate()
                .flat_map(|(g, units)| units.iter().map(move |n| (g, *n)))
                .collect()
        }

        fn expected(&self, head: &str, tail: &str) -> String {
            let mut out = head.to_string();
            for (g, units) in self.groups.iter().enumerate() {
                if units.iter().any(|n| *n > 0) {
                    out.push_str(&format!("# group {g}\n"));
                }
                for (u, n) in units.iter().enumerate() {
                    for i in 0..*n {
                        out.push_str(&format!("g{g} u{u} line {i}\n"));
                    }
                }
            }
            out + tail
        }
    }

    impl Source for Lines {
        fn units(&self) -> usize {
            self.flat().len()
        }
        fn group(&self, unit: usize) -> usize {
            self.flat()[unit].0
        }
        fn preamble(&self, group: usize, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("# group {group}\n").as_bytes());
        }
        fn render(&self, unit: usize, out: &mut Vec<u8>) {
            let (g, n) = self.flat()[unit];
            let u = unit - self.flat().iter().take_while(|(gg, _)| *gg < g).count();
            for i in 0..n {
                out.extend_from_slice(format!("g{g} u{u} line {i}\n").as_bytes());
            }
        }
    }

    /// `source` between `# head` and `# EOF` as `options` say: the chunks
    /// and the returned length.
    fn collect(source: &dyn Source, options: Options<'_>) -> (Vec<Vec<u8>>, u64) {
        let mut chunks = Vec::new();
        let mut sink = |c: Vec<u8>| {
            chunks.push(c);
            true
        };
        let len = render(source, b"# head\n", b"# EOF\n", options, &mut sink);
        (chunks, len)
    }

    fn uncached(gzip: bool, workers: usize) -> Options<'static> {
        Options {
            gzip,
            workers,
            cache: None,
        }
    }

    fn sample() -> Lines {
        Lines {
            groups: vec![
                vec![3, 0, 5000],
                vec![0, 0],
                vec![1],
                vec![20_000, 7, 0, 9000],
                vec![],
                vec![0, 2],
            ],
        }
    }

    #[test]
    fn units_come_out_in_order_with_preambles_only_for_groups_with_content() {
        let source = sample();
        let expected = source.expected("# head\n", "# EOF\n");
        for workers in [0, 1, 2, 3, 8] {
            let (chunks, len) = collect(&source, uncached(false, workers));
            let body = String::from_utf8(chunks.concat()).unwrap();
            assert_eq!(body, expected, "{workers} workers");
            assert_eq!(len, expected.len() as u64);
            assert!(!body.contains("# group 1\n") && !body.contains("# group 4\n"));
            // Chunked, and a chunk under CHUNK / 2 is the last or goes
            // right before one that is not (it was pending when a unit's
            // large piece came).
            assert!(chunks.len() > 3);
            let small = |c: &Vec<u8>| c.len() < CHUNK / 2;
            assert!(chunks.windows(2).all(|w| !small(&w[0]) || !small(&w[1])));
        }
    }

    #[test]
    fn many_small_units_come_out_whole_on_any_number_of_workers() {
        // 2,000 units of 0-3 lines: workers finish out of order and run
        // into the window all the time, and the consumer waits often. The
        // wake-ups the queue leaves out (the consumer only for the unit it
        // waits for, workers only once half the window is free) must never
        // leave anyone waiting for good: a stall fails here, not hangs.
        let groups = (0..40)
            .map(|g| (0..50).map(|u| (g * 7 + u * 13) % 4).collect())
            .collect();
        let source = Lines { groups };
        let expected = source.expected("# head\n", "# EOF\n");
        let (done, results) = std::sync::mpsc::channel();
        let runs = [1, 2, 3, 4, 8];
        std::thread::spawn(move || {
            for workers in runs {
                for gzip in [false, true] {
                    let (chunks, _) = collect(&source, uncached(gzip, workers));
                    if done.send((workers, gzip, chunks.concat())).is_err() {
                        return;
                    }
                }
            }
        });
        for _ in 0..runs.len() * 2 {
            let (workers, gzip, body) = results
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("a render stalled");
            let text = if gzip {
                let mut plain = String::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_string(&mut plain)
                    .unwrap();
                plain
            } else {
                String::from_utf8(body).unwrap()
            };
            assert_eq!(text, expected, "{workers} workers, gzip {gzip}");
        }
    }

    #[test]
    fn gzip_pieces_make_one_valid_member() {
        let source = sample();
        let expected = source.expected("# head\n", "# EOF\n");
        for workers in [0, 1, 2, 4] {
            let (chunks, len) = collect(&source, uncached(true, workers));
            let gz = chunks.concat();
            assert_eq!(len, expected.len() as u64);
            assert!(gz.len() < expected.len() / 4, "compressed: {}", gz.len());
            // flate2's decoder checks the CRC-32 and length of the trailer.
            let mut plain = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut plain)
                .unwrap();
            assert_eq!(plain, expected);
            // One member: nothing follows the trailer.
            let mut decoder = flate2::bufread::GzDecoder::new(&gz[..]);
            std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
            assert!(decoder.into_inner().is_empty());
        }
    }

    #[test]
    fn an_empty_body_is_still_valid_gzip() {
        let source = Lines { groups: vec![] };
        let mut chunks = Vec::new();
        let mut sink = |c: Vec<u8>| {
            chunks.push(c);
            true
        };
        let options = Options {
            gzip: true,
            workers: 2,
            cache: None,
        };
        assert_eq!(render(&source, b"", b"", options, &mut sink), 0);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&chunks.concat()[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert!(plain.is_empty());
    }

    #[test]
    fn a_sink_that_hangs_up_stops_the_work() {
        let source = Lines {
            groups: vec![vec![2000; 500]],
        };
        for gzip in [false, true] {
            for workers in [0, 2] {
                let mut calls = 0;
                let mut sink = |_: Vec<u8>| {
                    calls += 1;
                    false
                };
                let cache = PieceCache::default();
                let options = Options {
                    gzip,
                    workers,
                    cache: Some(&cache),
                };
                render(&source, b"", b"", options, &mut sink);
                assert_eq!(calls, 1, "gzip {gzip}, {workers} workers");
                // An abandoned body keeps nothing.
                assert_eq!(cache.size(), (0, 0));
            }
        }
    }

    /// One group of units, each with its text and, if kept, its key; counts
    /// the units it renders.
    struct Keyed {
        units: Vec<(Option<u64>, String)>,
        renders: std::sync::atomic::AtomicUsize,
        /// Units whose source moves on while they render.
        moving: Vec<usize>,
    }

    impl Keyed {
        fn new(units: Vec<(Option<u64>, String)>) -> Keyed {
            Keyed {
                units,
                renders: Default::default(),
                moving: Vec::new(),
            }
        }

        fn renders(&self) -> usize {
            self.renders.swap(0, std::sync::atomic::Ordering::Relaxed)
        }

        fn expected(&self) -> String {
            let body: String = self.units.iter().map(|(_, text)| text.as_str()).collect();
            format!("# head\n# group\n{body}# EOF\n")
        }
    }

    impl Source for Keyed {
        fn units(&self) -> usize {
            self.units.len()
        }
        fn group(&self, _unit: usize) -> usize {
            0
        }
        fn preamble(&self, _group: usize, out: &mut Vec<u8>) {
            out.extend_from_slice(b"# group\n");
        }
        fn render(&self, unit: usize, out: &mut Vec<u8>) {
            self.renders
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.extend_from_slice(self.units[unit].1.as_bytes());
        }
        fn cache_key(&self, unit: usize, key: &mut Vec<u64>) -> bool {
            let Some(k) = self.units[unit].0 else {
                return false;
            };
            key.push(k);
            true
        }
        fn still_current(&self, unit: usize) -> bool {
            !self.moving.contains(&unit)
        }
    }

    fn gunzip(chunks: &[Vec<u8>]) -> String {
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&chunks.concat()[..])
            .read_to_string(&mut plain)
            .unwrap();
        plain
    }

    fn body(source: &Keyed, gzip: bool, workers: usize, cache: &PieceCache) -> String {
        let options = Options {
            cache: Some(cache),
            ..uncached(gzip, workers)
        };
        let (chunks, _) = collect(source, options);
        if gzip {
            gunzip(&chunks)
        } else {
            String::from_utf8(chunks.concat()).unwrap()
        }
    }

    fn unit_text(name: &str, lines: usize) -> String {
        (0..lines).map(|i| format!("{name} line {i}\n")).collect()
    }

    #[test]
    fn kept_pieces_are_reused_while_their_keys_stay_the_same() {
        for workers in [0, 2] {
            let cache = PieceCache::default();
            let mut source = Keyed::new(vec![
                (Some(1), unit_text("a", 3000)),
                (None, unit_text("b", 10)),
                (Some(2), String::new()),
                (Some(3), unit_text("c", 500)),
            ]);
            // The first gzip body renders everything and keeps the keyed
            // units' pieces, the empty one too.
            assert_eq!(body(&source, true, workers, &cache), source.expected());
            assert_eq!(source.renders(), 4);
            assert_eq!(cache.size().0, 3);
            // The next renders only the unit without a key.
            assert_eq!(body(&source, true, workers, &cache), source.expected());
            assert_eq!(source.renders(), 1, "{workers} workers");
            // A unit whose key changed is rendered again, its new text
            // served; a key gone from the body is dropped from the cache.
            source.units[0] = (Some(4), unit_text("A", 2000));
            source.units[3].0 = None;
            assert_eq!(body(&source, true, workers, &cache), source.expected());
            assert_eq!(source.renders(), 3);
            assert_eq!(cache.size().0, 2);
            // Plain bodies neither use nor change what is kept.
            let kept = cache.size();
            assert_eq!(body(&source, false, workers, &cache), source.expected());
            assert_eq!(source.renders(), 4);
            assert_eq!(cache.size(), kept);
        }
    }

    /// A unit that moved on while it rendered is served as rendered but
    /// not kept, so the next body renders it again.
    #[test]
    fn a_unit_that_moved_on_while_rendering_is_served_but_not_kept() {
        for workers in [0, 2] {
            let cache = PieceCache::default();
            let mut source = Keyed::new(vec![
                (Some(1), unit_text("a", 300)),
                (Some(2), unit_text("b", 300)),
            ]);
            source.moving = vec![1];
            assert_eq!(body(&source, true, workers, &cache), source.expected());
            assert_eq!(source.renders(), 2);
            assert_eq!(cache.size().0, 1);
            source.moving.clear();
            assert_eq!(body(&source, true, workers, &cache), source.expected());
            assert_eq!(source.renders(), 1, "{workers} workers");
            assert_eq!(cache.size().0, 2);
        }
    }

    #[test]
    fn an_abandoned_body_leaves_the_kept_pieces_as_they_were() {
        let cache = PieceCache::default();
        let mut source = Keyed::new((0..40).map(|k| (Some(k), unit_text("x", 2000))).collect());
        body(&source, true, 2, &cache);
        let kept = cache.size();
        assert_eq!(kept.0, 40);
        source.units[0].0 = Some(100);
        let mut sink = |_: Vec<u8>| false;
        let options = Options {
            gzip: true,
            workers: 2,
            cache: Some(&cache),
        };
        render(&source, b"", b"", options, &mut sink);
        assert_eq!(cache.size(), kept);
    }
}
