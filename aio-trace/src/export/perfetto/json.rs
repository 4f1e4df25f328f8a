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
    collections::{HashMap, HashSet},
    fmt::Write as _,
    io::{self, Write},
};

use aio_trace_common::{CTX_DESTROY, CTX_EXIT, IocbRecord};

use super::{
    STAGES,
    counters::{Counters, Point},
    free_lane, slice_end, stages, write_slice_name,
};
use crate::export::{Closing, Exporter};
use crate::{
    cgroup::CgroupNames,
    model::{Api, IocbView, comm_str},
    output::write_iocb_line,
    reader::Record,
    session::Sink,
};

/// The most lanes one context gets. A context needs about as many as it has
/// iocbs in flight (the built-in workload's scalar phase keeps 256); past this, slices become async slices (`ph` "b"/"e", an
/// id each), which the viewer lays out itself, so that a context with
/// thousands in flight costs no more lanes.
const MAX_LANES: usize = 1024;

/// The first lane tid: above any pid the kernel hands out (pid_max is at most
/// 2^22), so that a lane never shares its tid with a traced process, which the
/// viewer would take for that process's thread.
const FIRST_TID: u32 = 1 << 24;

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

pub struct ChromeJsonWriter<W: Write> {
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
    counters: Counters,
    /// Contexts destroyed in the current batch; their lanes go at its end,
    /// after the iocbs reclaimed from them are written.
    destroyed: Vec<(u32, u64)>,
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

/// `fmt::Write` into the line buffer: names are formatted in place.
struct Utf8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl<W: Write> ChromeJsonWriter<W> {
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
            counters: Counters::default(),
            destroyed: Vec::new(),
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

    /// The lane for a slice from `start` to `end` of context `key`: a free
    /// one ([`free_lane`]), else a new lane, named in the line. `Err(tid of the first lane)` when the context
    /// has no lane left.
    fn lane(&mut self, key: CtxKey, start: u64, end: u64) -> io::Result<Result<u32, u32>> {
        let Self {
            lanes,
            line,
            next_tid,
            ..
        } = self;
        let lanes = lanes.entry(key).or_default();
        let best = free_lane(lanes.iter().map(|l| l.busy_until), start);
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
        let transferred = r.result().filter(|&res| res > 0).unwrap_or(0) as u64;
        let Self {
            counters,
            line,
            out,
            ..
        } = self;
        counters.iocb(r.pid, r.submit_ns, end, transferred, &mut |p| {
            point(line, out, p)
        })
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
            self.counters.held().0,
            self.counters.held().1,
            self.line.capacity(),
        )
    }
}

/// Writes a counter point, after the line so far once it is long (a long
/// run of counter changes released at once).
fn point<W: Write>(line: &mut Vec<u8>, out: &mut W, p: Point) -> io::Result<()> {
    if line.len() >= LINE_SPILL {
        out.write_all(line)?;
        line.clear();
    }
    match p {
        Point::InFlight { ts, pid, iocbs } => {
            counter(line, "in-flight iocbs", "iocbs", ts, pid, |b| num(b, iocbs))
        }
        Point::Rate { ts, pid, mbps } => counter(line, "MB/s", "MB/s", ts, pid, |b| {
            let _ = write!(Utf8(b), "{mbps}");
        }),
        Point::Idle { .. } => {}
    }
    Ok(())
}

impl<W: Write> Sink for ChromeJsonWriter<W> {
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
        let Self {
            counters,
            line,
            out,
            ..
        } = self;
        counters.close_idle(&mut |p| point(line, out, p))?;
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

impl<W: Write> Exporter for ChromeJsonWriter<W> {
    /// Writes the counters held back, the loss counters as a global instant
    /// (`args` the JSONL `lost` line) and the `]`.
    fn finish(&mut self, closing: &Closing) -> io::Result<()> {
        self.begin_line();
        let Self {
            counters,
            line,
            out,
            ..
        } = self;
        counters.finish(&mut |p| point(line, out, p))?;
        head(&mut self.line, "i", self.counters.newest(), 0, 0);
        self.line.extend_from_slice(b"lost\",\"s\":\"g\",\"args\":");
        serde_json::to_writer(&mut self.line, closing.losses)?;
        self.line.extend_from_slice(b"}\n]\n");
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests;
