//! Per (process, context) counters the kernel keeps per CPU.

use aio_trace_common::{CtxCounters, CtxKey};
use serde::Serialize;

/// Sums one context's per-CPU copies.
pub fn sum_counters<'a>(per_cpu: impl IntoIterator<Item = &'a CtxCounters>) -> CtxCounters {
    per_cpu
        .into_iter()
        .fold(CtxCounters::default(), |mut acc, c| {
            acc.io_submit_calls += c.io_submit_calls;
            acc.iocbs_requested += c.iocbs_requested;
            acc.iocbs_submitted += c.iocbs_submitted;
            acc.short_submits += c.short_submits;
            acc.io_getevents_calls += c.io_getevents_calls;
            acc.empty_getevents += c.empty_getevents;
            acc.events_reaped += c.events_reaped;
            acc.min_nr_sum += c.min_nr_sum;
            acc.nr_sum += c.nr_sum;
            acc.io_cancel_calls += c.io_cancel_calls;
            acc
        })
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
            avg_min_nr: ratio(c.min_nr_sum, c.io_getevents_calls),
            avg_nr: ratio(c.nr_sum, c.io_getevents_calls),
            io_cancel_calls: c.io_cancel_calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                _pad: 0,
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
}
