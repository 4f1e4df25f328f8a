//! Perfetto / Chrome trace-event JSON, written as the records arrive.
//!
//! The file is the Trace Event Format's JSON array form: `[`, then one event
//! per line, each followed by a comma; the normal end adds a last event (the
//! loss counters) and the `]`. The format makes the `]` optional so that a
//! trace from a process that died can still be read, and Perfetto's trace
//! processor accepts the array cut short and the trailing comma, so after any
//! kill the file opens up to its last whole line. The viewer sorts events by
//! time itself: their order in the file is free, which is what lets each
//! record be written as it comes, in reap order.
//!
//! Tracks: pid is the process; each AIO context and each io_uring ring has
//! lanes, synthetic tids named by `thread_name` metadata ("aio ctx 0xa", then
//! "aio ctx 0xa #2"…; "io_uring ring 0xffff…"), and its vectored syscalls
//! lanes of their own. Each iocb or io_uring request is a complete slice (`ph`
//! "X") on one lane from submit to reap (or to the kernel completion when
//! nothing reaped it), its stages complete slices nested in it, and every
//! record field in its `args`. Iocbs of a context overlap, so a
//! lane takes a slice only when the slice starts after everything already on
//! the lane has ended: each lane is then properly nested whatever order the
//! records come in. Counter tracks per process: iocbs in flight, and MB/s
//! completed per 10 ms.
//!
//! The writer holds per-lane and per-process state and a bounded window of
//! counter changes, never the records.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
    fmt::Write as _,
    io::{self, Write},
};

use aio_trace_common::{CTX_DESTROY, CTX_EXIT, IocbRecord};

use super::{Closing, Exporter};
use crate::{
    cgroup::CgroupNames,
    model::{Api, IocbView, Op, comm_str},
    output::write_iocb_line,
    reader::Record,
    session::Sink,
};

/// Width of the MB/s counter's bins.
const RATE_BIN_NS: u64 = 10_000_000;

/// The stages nested in an iocb's slice, in time order.
const STAGES: [&str; 5] = ["dispatch", "queue", "device", "end_io", "reap lag"];

/// The most lanes one context gets. A context needs about as many as it has
/// iocbs in flight (the built-in workload's scalar phase keeps 256); past this, slices become async slices (`ph` "b"/"e", an
/// id each), which the viewer lays out itself, so that a context with
/// thousands in flight costs no more lanes.
const MAX_LANES: usize = 1024;

/// The first lane tid: above any pid the kernel hands out (pid_max is at most
/// 2^22), so that a lane never shares its tid with a traced process, which the
/// viewer would take for that process's thread.
const FIRST_TID: u32 = 1 << 24;

/// How far behind the newest slice end the counters are written. Counter
/// values are absolute, so a change can only be written once every earlier
/// one is known; records come in reap order, so an iocb is known only after
/// it ends, and its submit may be as far back as its latency. Iocbs slower
/// than this have their in-flight count begin late, at the counters' time.
const COUNTER_DELAY_NS: u64 = 100_000_000;

/// The most counter changes held back, whatever their times: past it the
/// oldest are written, so that the window stays bounded at any rate.
const MAX_PENDING: usize = 1 << 16;

/// The line buffer is written out once it holds this much, when a long run
/// of counter changes is released at once.
const LINE_SPILL: usize = 64 * 1024;

/// The most processes remembered as named: past it the set starts over, and a
/// process seen again is named again (a repeated name is harmless).
const MAX_NAMED: usize = 1 << 16;

/// One lane of a context: its tid, and when the last slice on it ends.
#[derive(Clone, Copy, Debug)]
struct Lane {
    tid: u32,
    busy_until: u64,
}

/// (pid, ctx, api): an AIO context and an io_uring ring are apart whatever
/// their numbers, and a process's syscalls (ctx 0) are apart from both.
type CtxKey = (u32, u64, Api);

/// A change of a process's counters, held until the counters' time reaches it.
/// Ordered by time; at one time an end before a begin, so that an iocb
/// submitted as another completes does not count both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    ts: u64,
    pid: u32,
    what: What,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    End,
    Begin,
    /// Bytes transferred by an iocb that ended at `ts`.
    Bytes(u64),
}

/// A process's counters: iocbs in flight, and the MB/s bin being summed.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    inflight: i64,
    bin: Option<u64>,
    bytes: u64,
}

pub struct PerfettoWriter<W: Write> {
    out: W,
    /// The events of one record, encoded here and written at once.
    line: Vec<u8>,
    /// `[` written.
    started: bool,
    lanes: HashMap<CtxKey, Vec<Lane>>,
    next_tid: u32,
    /// The next async slice id, for slices past a context's lanes.
    next_id: u64,
    /// Processes whose `process_name` is written.
    named: HashSet<u32>,
    /// Names the records' cgroups in their `args`.
    cgroups: CgroupNames,
    /// Counter changes not yet written, earliest first.
    pending: BinaryHeap<Reverse<Change>>,
    /// The counters' time: every change before it is written.
    released: u64,
    /// The latest slice end seen.
    newest: u64,
    counters: HashMap<u32, Counters>,
    /// Contexts destroyed in the current batch; their lanes go at its end,
    /// after the iocbs reclaimed from them are written.
    destroyed: Vec<(u32, u64)>,
    /// Scratch for the processes whose counters go idle.
    idle: Vec<u32>,
}

/// Appends an integer.
fn num(buf: &mut Vec<u8>, v: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends ns as µs, exactly: the integer part and up to three decimals.
fn micros(buf: &mut Vec<u8>, ns: u64) {
    num(buf, ns / 1000);
    let frac = ns % 1000;
    if frac != 0 {
        let digits = [
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let len = if frac.is_multiple_of(100) {
            2
        } else if frac.is_multiple_of(10) {
            3
        } else {
            4
        };
        buf.extend_from_slice(&digits[..len]);
    }
}

/// `{"ph":…,"ts":…,"pid":…,"tid":…,"name":"`: the name follows, then its `"`.
fn head(buf: &mut Vec<u8>, ph: &str, ts: u64, pid: u32, tid: u32) {
    buf.extend_from_slice(b"{\"ph\":\"");
    buf.extend_from_slice(ph.as_bytes());
    buf.extend_from_slice(b"\",\"ts\":");
    micros(buf, ts);
    buf.extend_from_slice(b",\"pid\":");
    num(buf, pid);
    buf.extend_from_slice(b",\"tid\":");
    num(buf, tid);
    buf.extend_from_slice(b",\"name\":\"");
}

/// A metadata event naming a process or thread; `name` is escaped.
fn metadata(buf: &mut Vec<u8>, which: &str, pid: u32, tid: u32, name: &str) -> io::Result<()> {
    head(buf, "M", 0, pid, tid);
    buf.extend_from_slice(which.as_bytes());
    buf.extend_from_slice(b"\",\"args\":{\"name\":");
    serde_json::to_writer(&mut *buf, name)?;
    buf.extend_from_slice(b"}},\n");
    Ok(())
}

/// A counter point: `{"name":…,"ph":"C",…,"args":{key: value}}`.
fn counter(
    buf: &mut Vec<u8>,
    name: &str,
    key: &str,
    ts: u64,
    pid: u32,
    value: impl FnOnce(&mut Vec<u8>),
) {
    head(buf, "C", ts, pid, 0);
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\",\"args\":{\"");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\":");
    value(buf);
    buf.extend_from_slice(b"}},\n");
}

/// The MB/s of `bytes` over one bin.
fn mbps(bytes: u64) -> f64 {
    bytes as f64 / 1e6 / (RATE_BIN_NS as f64 / 1e9)
}

/// "4K", "1M", "512", "1.5K".
fn size(out: &mut impl std::fmt::Write, bytes: u64) -> std::fmt::Result {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => write!(out, "{}M", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => write!(out, "{}K", b >> 10),
        b => write!(out, "{b}"),
    }
}

/// "PREADV 8×4K", "PREAD 4K", "FSYNC", "PREADV 3 segs 12K" (uneven segments).
pub fn slice_name(r: &IocbRecord) -> String {
    let mut name = String::new();
    // Writing into a String does not fail.
    let _ = write_slice_name(&mut name, r);
    name
}

fn write_slice_name(out: &mut impl std::fmt::Write, r: &IocbRecord) -> std::fmt::Result {
    let op = r.op();
    out.write_str(op.name())?;
    let Some(bytes) = r.requested_bytes() else {
        return write!(out, " {} segs", r.segs);
    };
    if bytes == 0 && r.segs == 0 {
        return Ok(());
    }
    if op.is_vectored() || matches!(op, Op::Readv | Op::Writev) || r.segs > 1 {
        if r.segs > 0 && bytes % u64::from(r.segs) == 0 {
            write!(out, " {}×", r.segs)?;
            size(out, bytes / u64::from(r.segs))
        } else {
            write!(out, " {} segs ", r.segs)?;
            size(out, bytes)
        }
    } else {
        out.write_char(' ')?;
        size(out, bytes)
    }
}

/// `fmt::Write` into the line buffer: names are formatted in place.
struct Utf8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// (start, end) of each stage that exists, clamped into the slice and each
/// after the one before, so that the stages never overlap one another.
fn stages(r: &IocbRecord, end: u64) -> [Option<(u64, u64)>; 5] {
    let reap = r.reaped_ns().unwrap_or(0);
    let points = [
        (r.submit_ns, r.dispatch_ts),
        (r.dispatch_ts, r.first_bio_ts),
        (r.first_bio_ts, r.last_rq_ts),
        (r.last_rq_ts, r.complete_ts),
        (r.complete_ts, reap),
    ];
    let mut floor = r.submit_ns;
    points.map(|(from, to)| {
        let span = (from != 0 && to != 0 && from >= floor && to >= from)
            .then(|| (from.min(end), to.min(end)));
        if let Some((_, to)) = span {
            floor = to;
        }
        span
    })
}

/// When the iocb's slice ends: the reap, else the kernel completion.
fn slice_end(r: &IocbRecord) -> Option<u64> {
    r.reaped_ns()
        .or(r.complete_ns())
        .filter(|&end| end >= r.submit_ns)
}

impl<W: Write> PerfettoWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::with_capacity(4096),
            started: false,
            lanes: HashMap::new(),
            next_tid: FIRST_TID,
            next_id: 1,
            named: HashSet::new(),
            cgroups: CgroupNames::system(),
            pending: BinaryHeap::new(),
            released: 0,
            newest: 0,
            counters: HashMap::new(),
            destroyed: Vec::new(),
            idle: Vec::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Starts the line buffer, with the array's `[` before the first event.
    fn begin_line(&mut self) {
        self.line.clear();
        if !self.started {
            self.line.extend_from_slice(b"[\n");
            self.started = true;
        }
    }

    /// The lane for a slice from `start` to `end` of context `key`: of the
    /// lanes free by `start`, the one freed last, which leaves the lanes freed
    /// earlier to records that arrive late with an earlier start; else a new
    /// lane, named in the line. `Err(tid of the first lane)` when the context
    /// has no lane left.
    fn lane(&mut self, key: CtxKey, start: u64, end: u64) -> io::Result<Result<u32, u32>> {
        let Self {
            lanes,
            line,
            next_tid,
            ..
        } = self;
        let lanes = lanes.entry(key).or_default();
        let mut best: Option<usize> = None;
        for (i, lane) in lanes.iter().enumerate() {
            if lane.busy_until <= start
                && best.is_none_or(|b| lanes[b].busy_until < lane.busy_until)
            {
                best = Some(i);
            }
        }
        if let Some(i) = best {
            lanes[i].busy_until = end;
            return Ok(Ok(lanes[i].tid));
        }
        if lanes.len() >= MAX_LANES {
            return Ok(Err(lanes[0].tid));
        }
        let tid = *next_tid;
        *next_tid = next_tid.checked_add(1).unwrap_or(FIRST_TID);
        lanes.reserve_exact(if lanes.is_empty() { 4 } else { lanes.len() });
        lanes.push(Lane {
            tid,
            busy_until: end,
        });
        let (pid, ctx, api) = key;
        let mut name = match api {
            Api::Aio => format!("aio ctx {ctx:#x}"),
            Api::IoUring => format!("io_uring ring {ctx:#x}"),
            Api::Sync => "vectored syscalls".to_owned(),
        };
        if lanes.len() > 1 {
            name += &format!(" #{}", lanes.len());
        }
        metadata(line, "thread_name", pid, tid, &name)?;
        Ok(Ok(tid))
    }

    fn iocb(&mut self, r: &IocbRecord) -> io::Result<()> {
        if self.named.insert(r.pid) {
            if self.named.len() > MAX_NAMED {
                self.named.clear();
                self.named.insert(r.pid);
            }
            let name = format!("{} ({})", comm_str(&r.comm), r.pid);
            metadata(&mut self.line, "process_name", r.pid, 0, &name)?;
        }
        let Some(end) = slice_end(r) else {
            // Rejected by io_submit: no time span, so no lane; an instant on
            // the process's own track.
            let line = &mut self.line;
            head(line, "i", r.submit_ns, r.pid, 0);
            let _ = write_slice_name(&mut Utf8(line), r);
            line.extend_from_slice(b" (rejected)\",\"cat\":\"iocb\",\"s\":\"p\",\"args\":");
            write_iocb_line(r, &mut self.cgroups, line)?;
            line.extend_from_slice(b"},\n");
            return Ok(());
        };
        let key = (r.pid, r.ctx, r.api());
        match self.lane(key, r.submit_ns, end)? {
            Ok(tid) => self.complete_slices(r, end, tid)?,
            Err(tid) => self.async_slices(r, end, tid)?,
        }
        let released = self.released;
        if end >= released {
            // An iocb submitted before the counters' time begins at it.
            self.pending.push(Reverse(Change {
                ts: r.submit_ns.max(released),
                pid: r.pid,
                what: What::Begin,
            }));
            self.pending.push(Reverse(Change {
                ts: end,
                pid: r.pid,
                what: What::End,
            }));
        }
        let transferred = r.result().filter(|&res| res > 0).unwrap_or(0) as u64;
        self.pending.push(Reverse(Change {
            ts: end.max(released),
            pid: r.pid,
            what: What::Bytes(transferred),
        }));
        self.newest = self.newest.max(end);
        self.release(self.newest.saturating_sub(COUNTER_DELAY_NS))
    }

    /// The iocb and its stages as complete slices on lane `tid`.
    fn complete_slices(&mut self, r: &IocbRecord, end: u64, tid: u32) -> io::Result<()> {
        let line = &mut self.line;
        head(line, "X", r.submit_ns, r.pid, tid);
        let _ = write_slice_name(&mut Utf8(line), r);
        line.extend_from_slice(b"\",\"cat\":\"iocb\",\"dur\":");
        micros(line, end - r.submit_ns);
        line.extend_from_slice(b",\"args\":");
        write_iocb_line(r, &mut self.cgroups, line)?;
        line.extend_from_slice(b"},\n");
        for (stage, span) in STAGES.iter().zip(stages(r, end)) {
            if let Some((from, to)) = span {
                head(line, "X", from, r.pid, tid);
                line.extend_from_slice(stage.as_bytes());
                line.extend_from_slice(b"\",\"cat\":\"iocb\",\"dur\":");
                micros(line, to - from);
                line.extend_from_slice(b"},\n");
            }
        }
        Ok(())
    }

    /// The iocb and its stages as async slices sharing an id of their own,
    /// for a context out of lanes.
    fn async_slices(&mut self, r: &IocbRecord, end: u64, tid: u32) -> io::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let line = &mut self.line;
        let ids = |line: &mut Vec<u8>| {
            line.extend_from_slice(b"\",\"cat\":\"iocb\",\"id\":");
            num(line, id);
        };
        head(line, "b", r.submit_ns, r.pid, tid);
        let _ = write_slice_name(&mut Utf8(line), r);
        ids(line);
        line.extend_from_slice(b",\"args\":");
        write_iocb_line(r, &mut self.cgroups, line)?;
        line.extend_from_slice(b"},\n");
        for (stage, span) in STAGES.iter().zip(stages(r, end)) {
            if let Some((from, to)) = span {
                for (ph, ts) in [("b", from), ("e", to)] {
                    head(line, ph, ts, r.pid, tid);
                    line.extend_from_slice(stage.as_bytes());
                    ids(line);
                    line.extend_from_slice(b"},\n");
                }
            }
        }
        head(line, "e", end, r.pid, tid);
        let _ = write_slice_name(&mut Utf8(line), r);
        ids(line);
        line.extend_from_slice(b"},\n");
        Ok(())
    }

    /// Writes the counter changes before `until`, and the oldest past
    /// `MAX_PENDING` whatever their time.
    fn release(&mut self, until: u64) -> io::Result<()> {
        while let Some(&Reverse(change)) = self.pending.peek() {
            if change.ts >= until && self.pending.len() <= MAX_PENDING {
                break;
            }
            if self.line.len() >= LINE_SPILL {
                self.out.write_all(&self.line)?;
                self.line.clear();
            }
            self.pending.pop();
            self.released = change.ts;
            let line = &mut self.line;
            let (ts, pid) = (change.ts, change.pid);
            let c = self.counters.entry(pid).or_default();
            match change.what {
                What::Begin | What::End => {
                    c.inflight += if change.what == What::Begin { 1 } else { -1 };
                    let n = c.inflight;
                    counter(line, "in-flight iocbs", "iocbs", ts, pid, |b| num(b, n));
                }
                What::Bytes(bytes) => {
                    let bin = ts / RATE_BIN_NS;
                    match c.bin {
                        Some(b) if b == bin => c.bytes += bytes,
                        Some(b) => {
                            rate_points(line, pid, b, c.bytes, bin > b + 1);
                            c.bin = Some(bin);
                            c.bytes = bytes;
                        }
                        None => {
                            c.bin = Some(bin);
                            c.bytes = bytes;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the MB/s bins of processes with nothing in flight and nothing
    /// since, so that a process gone quiet holds no state.
    fn close_idle(&mut self) {
        let released = self.released;
        self.idle.clear();
        self.idle
            .extend(self.counters.iter().filter_map(|(&pid, c)| {
                (c.inflight == 0 && c.bin.is_none_or(|b| (b + 2) * RATE_BIN_NS <= released))
                    .then_some(pid)
            }));
        // A stable order, so that the same records give the same file.
        self.idle.sort_unstable();
        for &pid in &self.idle {
            if let Some(c) = self.counters.remove(&pid)
                && let Some(bin) = c.bin
            {
                rate_points(&mut self.line, pid, bin, c.bytes, true);
            }
        }
    }

    /// Drops the lanes of the contexts destroyed in this batch.
    fn drop_destroyed(&mut self) {
        for (pid, ctx) in self.destroyed.drain(..) {
            if ctx == 0 {
                // The process exited: all of its contexts, and its name,
                // which the next process with this pid gets anew.
                self.lanes.retain(|k, _| k.0 != pid);
                self.named.remove(&pid);
            } else {
                // io_destroy: an AIO context's.
                self.lanes.remove(&(pid, ctx, Api::Aio));
            }
        }
    }

    /// What the writer holds: lanes, counter changes held back, processes
    /// with counters, and the line buffer's capacity.
    #[cfg(test)]
    fn retained(&self) -> (usize, usize, usize, usize) {
        (
            self.lanes.values().map(Vec::len).sum(),
            self.pending.len(),
            self.counters.len(),
            self.line.capacity(),
        )
    }
}

/// The MB/s point of `bin`, and a zero after it when the next bin has none.
fn rate_points(line: &mut Vec<u8>, pid: u32, bin: u64, bytes: u64, zero_after: bool) {
    let value = mbps(bytes);
    counter(line, "MB/s", "MB/s", bin * RATE_BIN_NS, pid, |b| {
        let _ = write!(Utf8(b), "{value}");
    });
    if zero_after {
        counter(line, "MB/s", "MB/s", (bin + 1) * RATE_BIN_NS, pid, |b| {
            b.push(b'0')
        });
    }
}

impl<W: Write> Sink for PerfettoWriter<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        self.begin_line();
        match record {
            Record::Iocb(r) | Record::Syscall(r) => self.iocb(r)?,
            Record::Ctx(c) if c.event == CTX_DESTROY || c.event == CTX_EXIT => {
                self.destroyed.push((c.pid, c.ctx))
            }
            Record::Ctx(_) => {}
        }
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.begin_line();
        self.drop_destroyed();
        self.close_idle();
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

impl<W: Write> Exporter for PerfettoWriter<W> {
    /// Writes the counters held back, the loss counters as a global instant
    /// (`args` the JSONL `lost` line) and the `]`.
    fn finish(&mut self, closing: &Closing) -> io::Result<()> {
        self.begin_line();
        self.release(u64::MAX)?;
        self.idle.clear();
        self.idle.extend(self.counters.keys());
        self.idle.sort_unstable();
        for &pid in &self.idle {
            if let Some(bin) = self.counters[&pid].bin {
                rate_points(&mut self.line, pid, bin, self.counters[&pid].bytes, true);
            }
        }
        self.counters.clear();
        head(&mut self.line, "i", self.newest, 0, 0);
        self.line.extend_from_slice(b"lost\",\"s\":\"g\",\"args\":");
        serde_json::to_writer(&mut self.line, closing.losses)?;
        self.line.extend_from_slice(b"}\n]\n");
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests;
