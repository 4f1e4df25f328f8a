//! Perfetto timelines, written as the records arrive: the native protobuf
//! trace ([`TraceWriter`], `.perfetto-trace`) and the Chrome trace-event JSON
//! ([`ChromeJsonWriter`], `.json`). Both show each iocb or io_uring request
//! as a slice from submit to reap with its stages nested in it, on lanes of
//! its context, and hold lanes, never records.

mod counters;
mod json;
mod native;
mod protos;

use aio_trace_common::IocbRecord;

pub use json::ChromeJsonWriter;
pub use native::{Clocks, TraceWriter, looks_like_trace};

use crate::model::{IocbView, Op};

/// The stages nested in an iocb's slice, in time order.
const STAGES: [&str; 5] = ["dispatch", "queue", "device", "end_io", "reap lag"];

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

/// Of the lanes free by `start` (their last slice ended by then), the one
/// freed last, which leaves the lanes freed earlier to records that arrive
/// late with an earlier start.
fn free_lane(busy_until: impl Iterator<Item = u64>, start: u64) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, until) in busy_until.enumerate() {
        if until <= start && best.is_none_or(|(_, b)| b < until) {
            best = Some((i, until));
        }
    }
    best.map(|(i, _)| i)
}

/// 200,000 iocbs submitted 10 µs apart, each with a latency of 20 µs to
/// 1.3 ms (one in a thousand 300 ms), handed to `reap(end, i)` in the order
/// they end: what a busy application's reaps look like to a writer.
#[cfg(test)]
fn in_reap_order(mut reap: impl FnMut(u64, u64)) {
    use std::{cmp::Reverse, collections::BinaryHeap};

    let mut pending: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..200_000u64 {
        let submit = i * 10_000;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let latency = if seed.is_multiple_of(1000) {
            300_000_000
        } else {
            20_000 + seed % 1_280_000
        };
        pending.push(Reverse((submit + latency, i)));
        while let Some(&Reverse((end, j))) = pending.peek() {
            if end > submit {
                break;
            }
            pending.pop();
            reap(end, j);
        }
    }
    while let Some(Reverse((end, j))) = pending.pop() {
        reap(end, j);
    }
}
