//! The Perfetto writer's rules: nesting, lanes, counters, bounded state, and
//! a file readable when cut anywhere.

use std::collections::{HashMap, HashSet};

use aio_trace_common::{CtxRecord, IOCB_REJECTED, RECORD_CTX, RECORD_IOCB};
use serde_json::Value;

use super::*;
use crate::export::perfetto::{
    counters::{MAX_PENDING, RATE_BIN_NS},
    slice_name,
};
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

fn finish<W: Write>(w: &mut ChromeJsonWriter<W>) {
    w.finish(&Closing {
        summaries: &[],
        devices: &[],
        losses: &LossCounts::default(),
    })
    .unwrap();
}

fn trace(records: &[IocbRecord]) -> Vec<Value> {
    let mut w = ChromeJsonWriter::new(Vec::new());
    for r in records {
        w.record(&Record::Iocb(*r)).unwrap();
    }
    finish(&mut w);
    let v: Value = serde_json::from_slice(&w.into_inner()).expect("valid JSON");
    v.as_array().expect("an array of events").clone()
}

/// The events of a trace cut anywhere: up to its last whole line, the
/// trailing comma dropped and the `]` added.
fn prefix(bytes: &[u8]) -> Vec<Value> {
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&bytes[..whole]).unwrap().trim_end();
    if text.is_empty() {
        return Vec::new();
    }
    assert!(text.starts_with('['), "{text:.40}");
    let text = format!("{}]", text.trim_end_matches(']').trim_end_matches(','));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v.as_array().unwrap().clone()
}

fn ns(e: &Value, key: &str) -> u64 {
    (e[key].as_f64().unwrap() * 1e3).round() as u64
}

/// The trace-event rules: complete slices nest on their track (each one
/// either inside the slice open there or after it) and start in time
/// order per track; every async begin has its end (same id and name,
/// properly nested) and top-level ids are unique; counters go forward.
fn check_rules(events: &[Value]) {
    let mut last_ts: HashMap<(u64, u64), u64> = HashMap::new();
    let mut stacks: HashMap<(u64, u64), Vec<u64>> = HashMap::new();
    let mut counters: HashMap<(u64, String), u64> = HashMap::new();
    let mut open: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut ids: HashSet<(u64, u64)> = HashSet::new();
    for e in events {
        let ph = e["ph"].as_str().unwrap();
        if ph == "M" {
            continue;
        }
        let pid = e["pid"].as_u64().unwrap();
        let track = (pid, e["tid"].as_u64().unwrap());
        let ts = ns(e, "ts");
        let name = e["name"].as_str().unwrap().to_owned();
        match ph {
            "X" => {
                let last = last_ts.entry(track).or_default();
                assert!(ts >= *last, "ts goes back on {track:?}: {e}");
                *last = ts;
                let end = ts + ns(e, "dur");
                let stack = stacks.entry(track).or_default();
                while stack.last().is_some_and(|&open_end| open_end <= ts) {
                    stack.pop();
                }
                if let Some(&open_end) = stack.last() {
                    assert!(end <= open_end, "overlaps its parent on {track:?}: {e}");
                }
                stack.push(end);
            }
            "b" => {
                let id = e["id"].as_u64().unwrap();
                let stack = open.entry((pid, id)).or_default();
                if stack.is_empty() {
                    assert!(ids.insert((pid, id)), "id {id} reused");
                }
                stack.push(name);
            }
            "e" => {
                let id = e["id"].as_u64().unwrap();
                let stack = open.get_mut(&(pid, id)).expect("begun");
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "{e}");
            }
            "C" => {
                let last = counters.entry((pid, name)).or_default();
                assert!(ts >= *last, "counter goes back: {e}");
                *last = ts;
            }
            "i" => {}
            other => panic!("unexpected phase {other}"),
        }
    }
    assert!(open.values().all(Vec::is_empty), "unended slices: {open:?}");
}

fn staged() -> IocbRecord {
    let mut staged = iocb(1, 10, 1_000, 9_000, 1);
    staged.dispatches = 1;
    staged.dispatch_ts = 2_000;
    staged.first_bio_ts = 2_500;
    staged.last_rq_ts = 7_000;
    staged.complete_ts = 7_500;
    staged
}

/// Reap order, not submit order: the later-submitted iocb comes first.
fn out_of_order() -> [IocbRecord; 5] {
    let mut rejected = iocb(1, 10, 4_000, 0, 9);
    rejected.flags = IOCB_REJECTED;
    let mut unreaped = iocb(2, 20, 3_000, 0, 5);
    unreaped.complete_ts = 3_800;
    [
        iocb(1, 10, 5_000, 6_000, 2),
        staged(),
        iocb(1, 11, 1_500, 8_000, 3),
        rejected,
        unreaped,
    ]
}

#[test]
fn slices_nest_end_and_stay_monotonic_per_track_out_of_reap_order() {
    let events = trace(&out_of_order());
    check_rules(&events);
    let named = |n: &str| events.iter().filter(|e| e["name"] == n).count();
    assert_eq!(named("PREADV 8×4K"), 4, "4 slices");
    assert_eq!(named("dispatch"), 1);
    assert_eq!(named("device"), 1);
    assert_eq!(named("reap lag"), 1);
    assert_eq!(named("PREADV 8×4K (rejected)"), 1);
    // Lanes: (pid 1, ctx 10) twice, as its two iocbs overlap; (1, 11);
    // (2, 20). Each named.
    let threads: Vec<_> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        threads,
        [
            "aio ctx 0xa",
            "aio ctx 0xa #2",
            "aio ctx 0xb",
            "aio ctx 0x14"
        ]
    );
    // µs: the staged iocb begins at 1000 ns = 1 µs, with its fields as args.
    let slice = events
        .iter()
        .find(|e| e["ph"] == "X" && e["args"]["aio_data"] == 1)
        .unwrap();
    assert_eq!(slice["ts"], 1.0);
    assert_eq!(slice["dur"], 8.0);
    assert_eq!(slice["args"]["latency_ns"], 8_000);
    assert_eq!(slice["cat"], "iocb");
    // The unreaped iocb ends at its kernel completion.
    let unreaped = events
        .iter()
        .find(|e| e["ph"] == "X" && e["pid"] == 2)
        .unwrap();
    assert_eq!(ns(unreaped, "ts") + ns(unreaped, "dur"), 3_800);
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "C" && e["name"] == "in-flight iocbs")
    );
    assert!(events.iter().any(|e| e["ph"] == "C" && e["name"] == "MB/s"));
    let lost = events.last().unwrap();
    assert_eq!(lost["name"], "lost");
    assert_eq!(lost["args"]["type"], "lost");
}

/// The in-flight counter and the MB/s bins come out as if the records
/// had been sorted, whatever order they arrive in.
#[test]
fn counters_follow_time_not_arrival() {
    let events = trace(&out_of_order());
    let points: Vec<(u64, i64)> = events
        .iter()
        .filter(|e| e["name"] == "in-flight iocbs" && e["pid"] == 1)
        .map(|e| (ns(e, "ts"), e["args"]["iocbs"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        points,
        [
            (1_000, 1),
            (1_500, 2),
            (5_000, 3),
            (6_000, 2),
            (8_000, 1),
            (9_000, 0)
        ]
    );
    // pid 1's 3 × 32K transferred, all in the first 10 ms bin: 9.8304 MB/s.
    let rates: Vec<(u64, f64)> = events
        .iter()
        .filter(|e| e["name"] == "MB/s" && e["pid"] == 1)
        .map(|e| (ns(e, "ts"), e["args"]["MB/s"].as_f64().unwrap()))
        .collect();
    assert_eq!(rates.len(), 2, "{rates:?}");
    assert_eq!(rates[0].0, 0);
    assert!((rates[0].1 - 9.8304).abs() < 1e-9, "{rates:?}");
    assert_eq!(rates[1], (RATE_BIN_NS, 0.0));
}

/// Cut after any byte, the file reads as the events of its whole lines,
/// and what was flushed is all there before the end.
#[test]
fn a_trace_cut_anywhere_reads_up_to_its_last_whole_line() {
    let mut w = ChromeJsonWriter::new(Vec::new());
    for r in out_of_order() {
        w.record(&Record::Iocb(r)).unwrap();
    }
    w.flush().unwrap();
    let flushed = w.out.clone();
    let events = prefix(&flushed);
    check_rules(&events);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["ph"] == "X" && e["cat"] == "iocb" && e["args"].is_object())
            .count(),
        4,
        "every slice written before the end"
    );
    finish(&mut w);
    let all = w.into_inner();
    for cut in 0..=all.len() {
        check_rules(&prefix(&all[..cut]));
    }
}

#[test]
fn a_context_with_more_in_flight_than_lanes_goes_on_in_async_slices() {
    let n = MAX_LANES as u64 + 44;
    // All overlap: each needs a lane of its own.
    let records: Vec<_> = (0..n)
        .map(|i| iocb(1, 10, 1_000 + i, 1_000_000 - i, i))
        .collect();
    let events = trace(&records);
    check_rules(&events);
    let lanes = events.iter().filter(|e| e["name"] == "thread_name").count();
    assert_eq!(lanes, MAX_LANES);
    let with_args = |ph: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == ph && e["args"]["aio_data"].is_u64())
            .count()
    };
    assert_eq!(with_args("X"), MAX_LANES);
    assert_eq!(with_args("b"), 44);
}

/// A lane freed is used again: iocbs one after the other share one.
#[test]
fn iocbs_in_turn_share_a_lane() {
    let records: Vec<_> = (0..100u64)
        .map(|i| iocb(1, 10, i * 100, i * 100 + 90, i))
        .collect();
    let events = trace(&records);
    check_rules(&events);
    assert_eq!(
        events.iter().filter(|e| e["name"] == "thread_name").count(),
        1
    );
}

/// 200k records at 32 in flight per context, out of submit order, with
/// slow outliers: the writer's state stays that of the lanes, not of the
/// records.
#[test]
fn memory_stays_bounded_over_200k_records() {
    let mut w = ChromeJsonWriter::new(io::sink());
    let mut most = (0, 0, 0, 0);
    let mut deliver = |w: &mut ChromeJsonWriter<io::Sink>, end: u64, i: u64| {
        let submit = i * 10_000;
        w.record(&Record::Iocb(iocb(
            1000 + (i % 4) as u32,
            i % 4,
            submit,
            end,
            i,
        )))
        .unwrap();
        if i.is_multiple_of(64) {
            w.flush().unwrap();
        }
        let (lanes, pending, counters, line) = w.retained();
        most = (
            most.0.max(lanes),
            most.1.max(pending),
            most.2.max(counters),
            most.3.max(line),
        );
    };
    crate::export::perfetto::in_reap_order(|end, i| deliver(&mut w, end, i));
    finish(&mut w);
    let (lanes, pending, counters, line) = most;
    // 4 contexts at about 33 in flight each, plus the outliers.
    assert!(lanes <= 4 * 64, "{lanes} lanes");
    assert!(pending <= MAX_PENDING, "{pending} counter changes held");
    assert!(counters <= 4, "{counters} processes with counters");
    assert!(line <= 2 * LINE_SPILL, "a {line}-byte line buffer");
}

#[test]
fn destroyed_contexts_give_their_lanes_back() {
    let mut w = ChromeJsonWriter::new(io::sink());
    w.record(&Record::Iocb(iocb(1, 10, 0, 10, 1))).unwrap();
    w.record(&Record::Iocb(iocb(1, 11, 0, 10, 1))).unwrap();
    w.record(&Record::Iocb(iocb(2, 12, 0, 10, 1))).unwrap();
    w.record(&Record::Ctx(CtxRecord {
        kind: RECORD_CTX,
        event: CTX_DESTROY,
        pid: 1,
        ctx: 10,
        ..Default::default()
    }))
    .unwrap();
    w.flush().unwrap();
    assert_eq!(w.retained().0, 2);
    w.record(&Record::Ctx(CtxRecord {
        kind: RECORD_CTX,
        event: CTX_EXIT,
        pid: 2,
        ..Default::default()
    }))
    .unwrap();
    w.flush().unwrap();
    assert_eq!(w.retained().0, 1);
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

/// io_uring requests beside a process's AIO iocbs: a ring's lanes are its
/// own even when its number is an AIO context's, named for io_uring; a
/// request taken from the CQ ring ends at its CQE; the args say the api.
#[test]
fn io_uring_requests_have_their_rings_lanes_beside_aio_contexts() {
    use aio_trace_common::{API_IO_URING, IORING_OP_READ_FIXED, IORING_OP_READV};
    let uring = |ctx, submit, complete, reap, opcode: u8| IocbRecord {
        api: API_IO_URING,
        opcode: opcode.into(),
        complete_ts: complete,
        ..iocb(1, ctx, submit, reap, 9)
    };
    let events = trace(&[
        iocb(1, 0xa, 1_000, 9_000, 1),
        uring(0xa, 2_000, 7_000, 8_000, IORING_OP_READV),
        IocbRecord {
            segs: 1,
            ..uring(0xffff_8881_0615_3000, 3_000, 6_000, 0, IORING_OP_READ_FIXED)
        },
    ]);
    check_rules(&events);
    let threads: Vec<_> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        threads,
        [
            "aio ctx 0xa",
            "io_uring ring 0xa",
            "io_uring ring 0xffff888106153000"
        ]
    );
    let slice = |name: &str| {
        events
            .iter()
            .find(|e| e["ph"] == "X" && e["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {events:?}"))
    };
    let readv = slice("READV 8×4K");
    assert_eq!(
        (readv["dur"].as_f64(), readv["args"]["api"].as_str()),
        (Some(6.0), Some("io_uring"))
    );
    // Taken from the CQ ring: no reap, the slice ends at the CQE.
    let fixed = slice("READ_FIXED 32K");
    assert_eq!(fixed["dur"], 3.0);
    assert!(fixed["args"]["reap_ns"].is_null());
    assert_eq!(fixed["args"]["latency_ns"], 3_000);
    assert_eq!(slice("PREADV 8×4K")["args"]["api"], "aio");
}

#[test]
fn micros_are_exact() {
    let s = |ns| {
        let mut b = Vec::new();
        micros(&mut b, ns);
        String::from_utf8(b).unwrap()
    };
    assert_eq!(s(0), "0");
    assert_eq!(s(1_000), "1");
    assert_eq!(s(3_800), "3.8");
    assert_eq!(s(1_234_567), "1234.567");
    assert_eq!(s(1_000_050), "1000.05");
}

#[test]
fn an_empty_trace_is_valid_json() {
    let events = trace(&[]);
    assert_eq!(events.len(), 1, "the loss counters only: {events:?}");
}
