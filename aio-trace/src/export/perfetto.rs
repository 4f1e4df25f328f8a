//! Perfetto / Chrome trace-event JSON (`{"traceEvents":[…]}`).
//!
//! One track per (process, AIO context): pid is the process, tid a synthetic
//! id per context, named by `thread_name` metadata. Each iocb is a nestable
//! async slice (`ph` "b"/"e", `cat` "iocb", an id of its own) from submit to
//! reap (or kernel completion when nothing reaped it), with its stages as
//! nested slices sharing its id, and every record field in `args`. Counter
//! tracks per process: iocbs in flight, and MB/s completed per 10 ms.
//!
//! Iocbs arrive in reap order, so the writer keeps the records (their raw
//! 168-byte form) and writes the events sorted by time when the trace ends.

use std::{
    collections::{BTreeMap, HashMap},
    io::{self, Write},
};

use aio_trace_common::IocbRecord;
use serde::Serialize;
use serde_json::json;

use super::{Closing, Exporter};
use crate::{
    model::{IocbView, Op, comm_str},
    output::IocbJson,
    reader::Record,
    session::Sink,
};

/// Width of the MB/s counter's bins.
const RATE_BIN_NS: u64 = 10_000_000;

/// The stages nested in an iocb's slice, in time order.
const STAGES: [&str; 5] = ["dispatch", "queue", "device", "end_io", "reap lag"];

pub struct PerfettoWriter<W: Write> {
    out: W,
    records: Vec<IocbRecord>,
    /// (pid, ctx, syscall) → tid, in order of first appearance.
    tracks: HashMap<(u32, u64, bool), u32>,
}

#[derive(Clone, Copy)]
enum Kind {
    Begin,
    End,
    Instant,
    /// Bytes completed in the bin starting at the event's time.
    Rate(u64),
}

#[derive(Clone, Copy)]
struct Event {
    ts_ns: u64,
    kind: Kind,
    /// Index into `records` (the process, for a rate event).
    record: u32,
    /// None: the iocb's own slice; Some(i): STAGES[i].
    stage: Option<u8>,
}

#[derive(Serialize)]
struct TraceEvent<'a, A: Serialize> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    ph: &'static str,
    /// µs, fractions for the ns.
    ts: f64,
    pid: u32,
    tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<A>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// "4K", "1M", "512", "1.5K".
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => format!("{b}"),
    }
}

/// "PREADV 8×4K", "PREAD 4K", "FSYNC", "PREADV 3 segs 12K" (uneven segments).
pub fn slice_name(r: &IocbRecord) -> String {
    let op = r.op();
    let base = op.name();
    let Some(bytes) = r.requested_bytes() else {
        return format!("{base} {} segs", r.segs);
    };
    if bytes == 0 && r.segs == 0 {
        return base.to_owned();
    }
    if op.is_vectored() || matches!(op, Op::Readv | Op::Writev) || r.segs > 1 {
        if r.segs > 0 && bytes % u64::from(r.segs) == 0 {
            format!("{base} {}×{}", r.segs, size(bytes / u64::from(r.segs)))
        } else {
            format!("{base} {} segs {}", r.segs, size(bytes))
        }
    } else {
        format!("{base} {}", size(bytes))
    }
}

/// (start, end) of each stage that exists, clamped into the slice.
fn stages(r: &IocbRecord, end: u64) -> [Option<(u64, u64)>; 5] {
    let reap = r.reaped_ns().unwrap_or(0);
    let points = [
        (r.submit_ns, r.dispatch_ts),
        (r.dispatch_ts, r.first_bio_ts),
        (r.first_bio_ts, r.last_rq_ts),
        (r.last_rq_ts, r.complete_ts),
        (r.complete_ts, reap),
    ];
    points.map(|(from, to)| {
        (from != 0 && to != 0 && from >= r.submit_ns && to >= from)
            .then(|| (from.min(end), to.min(end)))
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
            records: Vec::new(),
            tracks: HashMap::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn track(&self, r: &IocbRecord) -> u32 {
        self.tracks[&(r.pid, r.ctx, r.is_syscall_record())]
    }

    fn events(&self) -> Vec<Event> {
        let mut events = Vec::with_capacity(self.records.len() * 4);
        let mut rates: BTreeMap<(u32, u64), (u32, u64)> = BTreeMap::new();
        for (i, r) in self.records.iter().enumerate() {
            let record = i as u32;
            let Some(end) = slice_end(r) else {
                events.push(Event {
                    ts_ns: r.submit_ns,
                    kind: Kind::Instant,
                    record,
                    stage: None,
                });
                continue;
            };
            let mut push = |ts_ns, kind, stage| {
                events.push(Event {
                    ts_ns,
                    kind,
                    record,
                    stage,
                })
            };
            push(r.submit_ns, Kind::Begin, None);
            for (s, span) in stages(r, end).into_iter().enumerate() {
                if let Some((from, to)) = span {
                    push(from, Kind::Begin, Some(s as u8));
                    push(to, Kind::End, Some(s as u8));
                }
            }
            push(end, Kind::End, None);
            let transferred = r.result().filter(|&res| res > 0).unwrap_or(0) as u64;
            let bin = end / RATE_BIN_NS;
            let slot = rates.entry((r.pid, bin)).or_insert((record, 0));
            slot.1 += transferred;
        }
        // Each bin with bytes, and a zero after it when the next bin has none.
        let mut zeros = Vec::new();
        for (&(pid, bin), &(record, _)) in &rates {
            if !rates.contains_key(&(pid, bin + 1)) {
                zeros.push(((pid, bin + 1), (record, 0)));
            }
        }
        rates.extend(zeros);
        for ((_, bin), (record, bytes)) in rates {
            events.push(Event {
                ts_ns: bin * RATE_BIN_NS,
                kind: Kind::Rate(bytes),
                record,
                stage: None,
            });
        }
        // Stable: an iocb's own events keep their nesting order at equal times.
        events.sort_by_key(|e| e.ts_ns);
        events
    }

    fn write_event<A: Serialize>(
        &mut self,
        event: &TraceEvent<A>,
        first: &mut bool,
    ) -> io::Result<()> {
        if !*first {
            self.out.write_all(b",\n")?;
        }
        *first = false;
        serde_json::to_writer(&mut self.out, event)?;
        Ok(())
    }

    fn write_all(&mut self, closing: &Closing) -> io::Result<()> {
        self.out.write_all(b"{\"traceEvents\":[\n")?;
        let mut first = true;
        // Metadata: process names, then one named track per context.
        let mut tracks: Vec<_> = self.tracks.iter().map(|(&k, &v)| (v, k)).collect();
        tracks.sort_unstable();
        let mut named = std::collections::HashSet::new();
        for &(tid, (pid, ctx, syscall)) in &tracks {
            if named.insert(pid) {
                let comm = self
                    .records
                    .iter()
                    .find(|r| r.pid == pid)
                    .map(|r| comm_str(&r.comm).into_owned())
                    .unwrap_or_default();
                let name = format!("{comm} ({pid})");
                self.write_event(
                    &TraceEvent {
                        name: "process_name",
                        cat: None,
                        ph: "M",
                        ts: 0.0,
                        pid,
                        tid,
                        id: None,
                        s: None,
                        args: Some(json!({ "name": name })),
                    },
                    &mut first,
                )?;
            }
            let name = if syscall {
                "vectored syscalls".to_owned()
            } else {
                format!("ctx {ctx:x}")
            };
            self.write_event(
                &TraceEvent {
                    name: "thread_name",
                    cat: None,
                    ph: "M",
                    ts: 0.0,
                    pid,
                    tid,
                    id: None,
                    s: None,
                    args: Some(json!({ "name": name })),
                },
                &mut first,
            )?;
        }
        let mut inflight: HashMap<u32, i64> = HashMap::new();
        for event in self.events() {
            let r = self.records[event.record as usize];
            let tid = self.track(&r);
            let id = Some(u64::from(event.record) + 1);
            let ts = us(event.ts_ns);
            match (event.kind, event.stage) {
                (Kind::Rate(bytes), _) => {
                    let mbps = bytes as f64 / 1e6 / (RATE_BIN_NS as f64 / 1e9);
                    self.write_event(
                        &TraceEvent {
                            name: "MB/s",
                            cat: None,
                            ph: "C",
                            ts,
                            pid: r.pid,
                            tid: 0,
                            id: None,
                            s: None,
                            args: Some(json!({ "MB/s": mbps })),
                        },
                        &mut first,
                    )?;
                }
                (Kind::Instant, _) => {
                    let name = format!("{} (rejected)", slice_name(&r));
                    self.write_event(
                        &TraceEvent {
                            name: &name,
                            cat: Some("iocb"),
                            ph: "i",
                            ts,
                            pid: r.pid,
                            tid,
                            id: None,
                            s: Some("t"),
                            args: Some(IocbJson::new(&r)),
                        },
                        &mut first,
                    )?;
                }
                (kind, stage) => {
                    let begin = matches!(kind, Kind::Begin);
                    let name = match stage {
                        Some(s) => STAGES[s as usize].to_owned(),
                        None => slice_name(&r),
                    };
                    self.write_event(
                        &TraceEvent {
                            name: &name,
                            cat: Some("iocb"),
                            ph: if begin { "b" } else { "e" },
                            ts,
                            pid: r.pid,
                            tid,
                            id,
                            s: None,
                            args: (begin && stage.is_none()).then(|| IocbJson::new(&r)),
                        },
                        &mut first,
                    )?;
                    if stage.is_none() {
                        let n = inflight.entry(r.pid).or_default();
                        *n += if begin { 1 } else { -1 };
                        let value = *n;
                        self.write_event(
                            &TraceEvent {
                                name: "in-flight iocbs",
                                cat: None,
                                ph: "C",
                                ts,
                                pid: r.pid,
                                tid: 0,
                                id: None,
                                s: None,
                                args: Some(json!({ "iocbs": value })),
                            },
                            &mut first,
                        )?;
                    }
                }
            }
        }
        self.out
            .write_all(b"\n],\"displayTimeUnit\":\"ns\",\"metadata\":{\"lost\":")?;
        serde_json::to_writer(&mut self.out, closing.losses)?;
        self.out.write_all(b"}}\n")?;
        self.out.flush()
    }
}

impl<W: Write> Sink for PerfettoWriter<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        if let Record::Iocb(r) | Record::Syscall(r) = record {
            let next = self.tracks.len() as u32 + 1;
            self.tracks
                .entry((r.pid, r.ctx, r.is_syscall_record()))
                .or_insert(next);
            self.records.push(*r);
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Exporter for PerfettoWriter<W> {
    /// Writes the whole trace; the loss counters go into its `metadata`.
    fn finish(&mut self, closing: &Closing) -> io::Result<()> {
        self.write_all(closing)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use aio_trace_common::{IOCB_REJECTED, RECORD_IOCB};
    use serde_json::Value;

    use super::*;
    use crate::model::LossCounts;

    fn iocb(pid: u32, ctx: u64, submit: u64, reap: u64, tag: u64) -> IocbRecord {
        IocbRecord {
            kind: RECORD_IOCB,
            opcode: 7,
            pid,
            ctx,
            segs: 8,
            bytes: 8 * 4096,
            res: 8 * 4096,
            aio_data: tag,
            submit_ns: submit,
            reap_ns: reap,
            ..Default::default()
        }
    }

    fn trace(records: &[IocbRecord]) -> Value {
        let mut w = PerfettoWriter::new(Vec::new());
        for r in records {
            w.record(&Record::Iocb(*r)).unwrap();
        }
        w.finish(&Closing {
            summaries: &[],
            devices: &[],
            losses: &LossCounts::default(),
        })
        .unwrap();
        serde_json::from_slice(&w.into_inner()).expect("valid JSON")
    }

    /// The trace-event rules: every async begin has its end (same id, name,
    /// properly nested), top-level ids unique per track, ts monotonic per track.
    fn check_rules(v: &Value) {
        let events = v["traceEvents"].as_array().unwrap();
        let mut last_ts: HashMap<(u64, u64), f64> = HashMap::new();
        let mut open: HashMap<(u64, u64, u64), Vec<String>> = HashMap::new();
        let mut ids: HashMap<(u64, u64), HashSet<u64>> = HashMap::new();
        for e in events {
            let ph = e["ph"].as_str().unwrap();
            if ph == "M" {
                continue;
            }
            let track = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
            let ts = e["ts"].as_f64().unwrap();
            let last = last_ts.entry(track).or_insert(f64::MIN);
            assert!(ts >= *last, "ts goes back on {track:?}: {e}");
            *last = ts;
            let name = e["name"].as_str().unwrap().to_owned();
            match ph {
                "b" => {
                    let id = e["id"].as_u64().unwrap();
                    let stack = open.entry((track.0, track.1, id)).or_default();
                    if stack.is_empty() {
                        assert!(ids.entry(track).or_default().insert(id), "id {id} reused");
                    }
                    stack.push(name);
                }
                "e" => {
                    let id = e["id"].as_u64().unwrap();
                    let stack = open.get_mut(&(track.0, track.1, id)).expect("begun");
                    assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "{e}");
                }
                "C" | "i" => {}
                other => panic!("unexpected phase {other}"),
            }
        }
        assert!(open.values().all(Vec::is_empty), "unended slices: {open:?}");
    }

    #[test]
    fn slices_nest_end_and_stay_monotonic_per_track_out_of_reap_order() {
        let mut staged = iocb(1, 10, 1_000, 9_000, 1);
        staged.dispatches = 1;
        staged.dispatch_ts = 2_000;
        staged.first_bio_ts = 2_500;
        staged.last_rq_ts = 7_000;
        staged.complete_ts = 7_500;
        let mut rejected = iocb(1, 10, 4_000, 0, 9);
        rejected.flags = IOCB_REJECTED;
        let mut unreaped = iocb(2, 20, 3_000, 0, 5);
        unreaped.complete_ts = 3_800;
        // Reap order, not submit order: the later-submitted iocb comes first.
        let records = [
            iocb(1, 10, 5_000, 6_000, 2),
            staged,
            iocb(1, 11, 1_500, 8_000, 3),
            rejected,
            unreaped,
        ];
        let v = trace(&records);
        check_rules(&v);
        let events = v["traceEvents"].as_array().unwrap();
        let named = |n: &str| events.iter().filter(|e| e["name"] == n).count();
        assert_eq!(named("PREADV 8×4K"), 8, "4 slices, begin and end");
        assert_eq!(named("dispatch"), 2);
        assert_eq!(named("device"), 2);
        assert_eq!(named("reap lag"), 2);
        assert_eq!(named("PREADV 8×4K (rejected)"), 1);
        // Tracks: (pid 1, ctx 10), (1, 11), (2, 20), each named.
        let threads: Vec<_> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(threads, ["ctx a", "ctx b", "ctx 14"]);
        // µs: the staged iocb begins at 1000 ns = 1 µs, with its fields as args.
        let begin = events
            .iter()
            .find(|e| e["ph"] == "b" && e["args"]["aio_data"] == 1)
            .unwrap();
        assert_eq!(begin["ts"], 1.0);
        assert_eq!(begin["args"]["latency_ns"], 8_000);
        assert_eq!(begin["cat"], "iocb");
        // The unreaped iocb ends at its kernel completion.
        let end = events
            .iter()
            .rfind(|e| e["ph"] == "e" && e["pid"] == 2)
            .unwrap();
        assert_eq!(end["ts"], 3.8);
        assert!(
            events
                .iter()
                .any(|e| e["ph"] == "C" && e["name"] == "in-flight iocbs")
        );
        assert!(events.iter().any(|e| e["ph"] == "C" && e["name"] == "MB/s"));
        assert_eq!(v["metadata"]["lost"]["type"], "lost");
    }

    #[test]
    fn names_say_op_and_size() {
        let mut r = iocb(1, 1, 0, 1, 0);
        assert_eq!(slice_name(&r), "PREADV 8×4K");
        r.opcode = 0;
        r.segs = 1;
        r.bytes = 1 << 20;
        assert_eq!(slice_name(&r), "PREAD 1M");
        r.opcode = 2;
        r.segs = 0;
        r.bytes = 0;
        assert_eq!(slice_name(&r), "FSYNC");
    }

    #[test]
    fn an_empty_trace_is_valid_json() {
        let v = trace(&[]);
        assert_eq!(v["traceEvents"].as_array().unwrap().len(), 0);
    }
}
