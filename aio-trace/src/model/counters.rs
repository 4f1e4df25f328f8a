//! Per (process, context) counters the kernel keeps per CPU.

use std::collections::BTreeMap;

use aio_trace_common::{
    CTX_OP_CALLS, CTX_SYNC, CTX_URING_FD, CounterSlot, CtxCounters, CtxKey, SEGS_BUCKETS, op_of_ctx,
};

use super::Api;
use serde::Serialize;

/// Sums one context's per-CPU copies. Wrapping: a copy goes below zero
/// where an iocb counted at submit on one CPU is taken back on another.
pub fn sum_counters<'a>(per_cpu: impl IntoIterator<Item = &'a CtxCounters>) -> CtxCounters {
    per_cpu
        .into_iter()
        .fold(CtxCounters::default(), |mut acc, c| {
            acc.io_submit_calls = acc.io_submit_calls.wrapping_add(c.io_submit_calls);
            acc.iocbs_requested = acc.iocbs_requested.wrapping_add(c.iocbs_requested);
            acc.iocbs_submitted = acc.iocbs_submitted.wrapping_add(c.iocbs_submitted);
            acc.short_submits = acc.short_submits.wrapping_add(c.short_submits);
            acc.io_getevents_calls = acc.io_getevents_calls.wrapping_add(c.io_getevents_calls);
            acc.empty_getevents = acc.empty_getevents.wrapping_add(c.empty_getevents);
            acc.events_reaped = acc.events_reaped.wrapping_add(c.events_reaped);
            acc.min_nr_sum = acc.min_nr_sum.wrapping_add(c.min_nr_sum);
            acc.nr_sum = acc.nr_sum.wrapping_add(c.nr_sum);
            acc.io_cancel_calls = acc.io_cancel_calls.wrapping_add(c.io_cancel_calls);
            acc.events_failed = acc.events_failed.wrapping_add(c.events_failed);
            acc.bytes = acc.bytes.wrapping_add(c.bytes);
            acc.segments = acc.segments.wrapping_add(c.segments);
            for (sum, n) in acc.segs_log2.iter_mut().zip(c.segs_log2) {
                *sum = sum.wrapping_add(n);
            }
            acc
        })
}

/// One opcode's iocbs in one (pid, ctx), exact whatever the sampling: in the
/// light tier the kernel counts every iocb io_submit accepted, every
/// io_uring request and every synchronous vectored syscall.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub pid: u32,
    /// The AIO context, the io_uring ring (its kernel address, as its
    /// records have it), or 0 for synchronous vectored syscalls.
    pub ctx: u64,
    pub api: Api,
    /// `IOCB_CMD_*`, io_uring's opcode or `SYSCALL_*`, by `api`.
    pub opcode: u16,
    pub iocbs: u64,
    pub bytes: u64,
    /// Their segments, for the average.
    pub segments: u64,
    /// Iocbs by segments, in `Log2Hist` buckets (bucket 0: no segments,
    /// b ≥ 1: [2^(b-1), 2^b); the last also holds everything above).
    pub segs_log2: [u64; SEGS_BUCKETS],
    /// Synchronous calls that failed (AIO's failed events are the
    /// context's, in its calls entry).
    pub failed: u64,
}

impl OpCounts {
    /// The per-opcode entry `key` of the kernel's counters; None for a
    /// context's call counters.
    pub fn new(key: &CtxKey, c: &CtxCounters) -> Option<Self> {
        let (api, ctx) = match key.ctx {
            CTX_SYNC => (Api::Sync, 0),
            ctx if ctx & CTX_URING_FD != 0 => (Api::IoUring, ctx),
            ctx => (Api::Aio, ctx),
        };
        Some(Self {
            pid: key.pid,
            ctx,
            api,
            opcode: op_of_ctx(key.op)?,
            iocbs: c.iocbs_submitted,
            bytes: c.bytes,
            segments: c.segments,
            segs_log2: c.segs_log2,
            failed: c.events_failed,
        })
    }
}

/// Whether the kernel moved no slot into the table between two reads of the
/// slots (`CounterSlot::seq` unchanged and even): the table read between
/// them and the later slots then add up.
pub fn slots_settled(before: &[CounterSlot], after: &[CounterSlot]) -> bool {
    before.len() == after.len()
        && before
            .iter()
            .zip(after)
            .all(|(b, a)| b.seq == a.seq && a.seq % 2 == 0)
}

/// Adds each slot's counts to its key's entry (made if the table has none
/// yet). A slot of pid 0 has never been used.
pub fn add_slots(table: &mut BTreeMap<CtxKey, CtxCounters>, slots: &[CounterSlot]) {
    for slot in slots.iter().filter(|s| s.key.pid != 0) {
        let at = table.entry(slot.key).or_default();
        *at = sum_counters([&*at, &slot.pending]);
    }
}

/// Each context's call counters from the kernel's entries (summed over
/// CPUs): its calls entry (`CTX_OP_CALLS`) plus the call fields the light
/// tier adds to the per-opcode entry of a call's first iocb (one counter
/// lookup per io_submit instead of two). An opcode entry's iocbs are that
/// opcode's accepted iocbs, so they add to the context's too. In key order.
pub fn calls_by_context(
    entries: impl IntoIterator<Item = (CtxKey, CtxCounters)>,
) -> Vec<(CtxKey, CtxCounters)> {
    let mut calls: BTreeMap<CtxKey, CtxCounters> = BTreeMap::new();
    for (key, c) in entries {
        let at = calls
            .entry(CtxKey {
                op: CTX_OP_CALLS,
                ..key
            })
            .or_default();
        if key.op == CTX_OP_CALLS {
            *at = sum_counters([&*at, &c]);
        } else {
            at.io_submit_calls = at.io_submit_calls.wrapping_add(c.io_submit_calls);
            at.iocbs_requested = at.iocbs_requested.wrapping_add(c.iocbs_requested);
            at.iocbs_submitted = at.iocbs_submitted.wrapping_add(c.iocbs_submitted);
            at.short_submits = at.short_submits.wrapping_add(c.short_submits);
        }
    }
    calls.into_iter().collect()
}

/// The `{"type":"summary",…}` line of one (pid, ctx).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContextSummary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub pid: u32,
    pub ctx: u64,
    pub io_submit_calls: u64,
    pub iocbs_requested: u64,
    pub iocbs_submitted: u64,
    pub short_submits: u64,
    pub iocbs_per_submit: f64,
    pub io_getevents_calls: u64,
    pub empty_getevents: u64,
    pub events_reaped: u64,
    pub events_per_getevents: f64,
    /// Events with a negative `res` (an errno).
    pub events_failed: u64,
    pub avg_min_nr: f64,
    pub avg_nr: f64,
    pub io_cancel_calls: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl ContextSummary {
    pub fn new(key: &CtxKey, c: &CtxCounters) -> Self {
        Self {
            kind: "summary",
            pid: key.pid,
            ctx: key.ctx,
            io_submit_calls: c.io_submit_calls,
            iocbs_requested: c.iocbs_requested,
            iocbs_submitted: c.iocbs_submitted,
            short_submits: c.short_submits,
            iocbs_per_submit: ratio(c.iocbs_submitted, c.io_submit_calls),
            io_getevents_calls: c.io_getevents_calls,
            empty_getevents: c.empty_getevents,
            events_reaped: c.events_reaped,
            events_per_getevents: ratio(c.events_reaped, c.io_getevents_calls),
            events_failed: c.events_failed,
            avg_min_nr: ratio(c.min_nr_sum, c.io_getevents_calls),
            avg_nr: ratio(c.nr_sum, c.io_getevents_calls),
            io_cancel_calls: c.io_cancel_calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aio_trace_common::CTX_OP_CALLS;

    #[test]
    fn sums_cpus_and_derives_averages() {
        let cpu0 = CtxCounters {
            io_submit_calls: 2,
            iocbs_submitted: 10,
            io_getevents_calls: 3,
            events_reaped: 6,
            min_nr_sum: 3,
            nr_sum: 30,
            ..Default::default()
        };
        let cpu1 = CtxCounters {
            io_submit_calls: 3,
            iocbs_submitted: 5,
            io_getevents_calls: 1,
            empty_getevents: 1,
            min_nr_sum: 1,
            nr_sum: 10,
            ..Default::default()
        };
        let total = sum_counters([&cpu0, &cpu1]);
        assert_eq!(total.io_submit_calls, 5);
        assert_eq!(total.iocbs_submitted, 15);
        assert_eq!(total.empty_getevents, 1);
        let s = ContextSummary::new(
            &CtxKey {
                pid: 7,
                op: CTX_OP_CALLS,
                ctx: 9,
            },
            &total,
        );
        assert_eq!(s.iocbs_per_submit, 3.0);
        assert_eq!(s.events_per_getevents, 1.5);
        assert_eq!(s.avg_nr, 10.0);
        assert_eq!(s.avg_min_nr, 1.0);
    }

    #[test]
    fn no_calls_means_zero_averages_not_nan() {
        let s = ContextSummary::new(&CtxKey::default(), &CtxCounters::default());
        assert_eq!(s.iocbs_per_submit, 0.0);
        assert_eq!(s.events_per_getevents, 0.0);
    }

    #[test]
    fn a_light_tier_call_counted_with_its_first_opcode_is_the_contexts() {
        let calls = CtxKey {
            pid: 7,
            op: CTX_OP_CALLS,
            ctx: 0x1000,
        };
        let preadv = CtxKey {
            op: aio_trace_common::ctx_op(aio_trace_common::IOCB_CMD_PREADV),
            ..calls
        };
        let got = calls_by_context([
            (
                calls,
                CtxCounters {
                    io_getevents_calls: 3,
                    events_reaped: 5,
                    ..CtxCounters::default()
                },
            ),
            (
                preadv,
                CtxCounters {
                    io_submit_calls: 2,
                    iocbs_requested: 6,
                    iocbs_submitted: 5,
                    short_submits: 1,
                    bytes: 1 << 20,
                    ..CtxCounters::default()
                },
            ),
        ]);
        assert_eq!(got.len(), 1);
        let (key, c) = got[0];
        assert_eq!(key, calls);
        assert_eq!(
            (
                c.io_submit_calls,
                c.iocbs_requested,
                c.iocbs_submitted,
                c.short_submits
            ),
            (2, 6, 5, 1)
        );
        assert_eq!((c.io_getevents_calls, c.events_reaped, c.bytes), (3, 5, 0));
    }

    #[test]
    fn slots_add_to_their_keys_and_settle_only_when_unmoved() {
        let key = CtxKey {
            pid: 7,
            op: CTX_OP_CALLS,
            ctx: 0x1000,
        };
        let mut table = BTreeMap::from([(
            key,
            CtxCounters {
                events_reaped: 10,
                ..CtxCounters::default()
            },
        )]);
        let slot = |seq, key, reaped| CounterSlot {
            seq,
            key,
            pending: CtxCounters {
                events_reaped: reaped,
                ..CtxCounters::default()
            },
        };
        let other = CtxKey { pid: 8, ..key };
        let slots = [
            slot(2, key, 3),
            slot(4, other, 1),
            slot(0, CtxKey::default(), 0),
        ];
        add_slots(&mut table, &slots);
        assert_eq!(table[&key].events_reaped, 13);
        assert_eq!(table[&other].events_reaped, 1);
        assert_eq!(table.len(), 2, "an unused slot adds nothing");
        assert!(slots_settled(&slots, &slots));
        assert!(!slots_settled(
            &slots,
            &[slot(3, key, 3), slots[1], slots[2]]
        ));
        assert!(!slots_settled(&[slot(3, key, 0)], &[slot(3, key, 0)]));
    }
}
