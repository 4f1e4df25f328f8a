//! Phases grouped into comparisons (scalar and vectored at one segment count),
//! and where the workload's own counts and the tracer's differ.

use aio_trace::workload::{Mode, WorkloadResult};
use hdrhistogram::Histogram;

use super::phases::{Phase, Traced, new_histogram};

/// One mode at one segment count, summed over its rounds.
#[derive(Clone, Debug)]
pub struct ModeTotals {
    pub elapsed_s: f64,
    pub iocbs: u64,
    pub bytes: u64,
    pub io_submit_calls: u64,
    pub io_getevents_calls: u64,
    pub latency: Histogram<u64>,
    pub traced: Traced,
}

impl ModeTotals {
    pub(super) fn new() -> Self {
        Self {
            elapsed_s: 0.0,
            iocbs: 0,
            bytes: 0,
            io_submit_calls: 0,
            io_getevents_calls: 0,
            latency: new_histogram(),
            traced: Traced::default(),
        }
    }

    pub(super) fn add(&mut self, r: &WorkloadResult, traced: Option<&Traced>) {
        self.elapsed_s += r.elapsed_s;
        self.iocbs += r.iocbs;
        self.bytes += r.bytes;
        self.io_submit_calls += r.submit_calls();
        self.io_getevents_calls += r.reap_calls();
        if let Some(h) = &r.latency {
            let _ = self.latency.add(h);
        }
        if let Some(t) = traced {
            self.traced.add(t);
        }
    }

    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed_s.max(1e-9)
    }
    pub fn iops(&self) -> f64 {
        self.iocbs as f64 / self.elapsed_s.max(1e-9)
    }
    pub fn events_per_getevents(&self) -> f64 {
        ratio(self.iocbs, self.io_getevents_calls)
    }
    pub(super) fn per_mb(&self, n: u64) -> f64 {
        n as f64 / (self.bytes as f64 / 1e6).max(1e-12)
    }
}

pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Scalar and vectored at one segment count.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub segments: u32,
    pub segment_size: u64,
    pub scalar: ModeTotals,
    pub vectored: ModeTotals,
}

/// Groups phases by segment count and mode, joining the tracer's view of each
/// phase (records by `traced[i]`, syscalls from the phase's counters).
pub fn aggregate(phases: &[Phase], traced: &[Traced], segment_size: u64) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = Vec::new();
    for (i, phase) in phases.iter().enumerate() {
        let index = match out.iter().position(|c| c.segments == phase.segments) {
            Some(i) => i,
            None => {
                out.push(Comparison {
                    segments: phase.segments,
                    segment_size,
                    scalar: ModeTotals::new(),
                    vectored: ModeTotals::new(),
                });
                out.len() - 1
            }
        };
        let totals = match phase.result.mode {
            Mode::Scalar => &mut out[index].scalar,
            Mode::Vectored => &mut out[index].vectored,
        };
        let mut seen = traced.get(i).cloned().unwrap_or_default();
        seen.io_submit_calls = phase.syscalls.io_submit_calls;
        seen.io_getevents_calls = phase.syscalls.io_getevents_calls;
        totals.add(&phase.result, Some(&seen));
    }
    out
}

/// Where the workload's own counts and the tracer's differ (they must not).
pub fn disagreements(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for (name, m) in [("scalar", &c.scalar), ("vectored", &c.vectored)] {
        let pairs = [
            ("iocbs", m.iocbs, m.traced.iocbs),
            ("bytes", m.bytes, m.traced.bytes),
            (
                "io_submit calls",
                m.io_submit_calls,
                m.traced.io_submit_calls,
            ),
            (
                "io_getevents calls",
                m.io_getevents_calls,
                m.traced.io_getevents_calls,
            ),
        ];
        for (what, workload, traced) in pairs {
            if workload != traced {
                out.push(format!("{} segments, {name}: the workload counted {workload} {what}, the tracer {traced}", c.segments));
            }
        }
        if m.traced.errors != 0 {
            out.push(format!(
                "{} segments, {name}: the tracer saw {} failed iocbs",
                c.segments, m.traced.errors
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aio_trace::workload::WorkloadConfig;
    use aio_trace_common::CtxCounters;

    use super::*;
    use crate::cmd::bench::render::render_comparison;

    fn result(mode: Mode, ctx: u64, iocbs: u64, bytes: u64) -> WorkloadResult {
        let config = WorkloadConfig {
            mode,
            ..WorkloadConfig::default()
        };
        let mut r = WorkloadResult::new(&config, Some(ctx));
        r.iocbs = iocbs;
        r.bytes = bytes;
        r.calls = aio_trace::workload::result::Calls::Aio {
            io_submit_calls: iocbs,
            io_getevents_calls: iocbs / 2,
            events_per_getevents: 0.0,
        };
        let mut h = new_histogram();
        h.record(100_000).unwrap();
        r.finish(Duration::from_secs(1), &h);
        r
    }

    fn traced(iocbs: u64, bytes: u64) -> Traced {
        Traced {
            iocbs,
            bytes,
            segs: iocbs,
            ..Traced::default()
        }
    }

    fn calls(io_submit_calls: u64, io_getevents_calls: u64) -> CtxCounters {
        CtxCounters {
            io_submit_calls,
            io_getevents_calls,
            ..CtxCounters::default()
        }
    }

    #[test]
    fn aggregates_rounds_and_joins_the_trace_by_phase() {
        let phases = [
            Phase {
                segments: 8,
                result: result(Mode::Scalar, 1, 800, 800 * 4096),
                syscalls: calls(800, 400),
            },
            Phase {
                segments: 8,
                result: result(Mode::Vectored, 1, 200, 1600 * 4096),
                syscalls: calls(200, 100),
            },
            Phase {
                segments: 8,
                result: result(Mode::Scalar, 1, 800, 800 * 4096),
                syscalls: calls(800, 400),
            },
        ];
        let traced = [
            traced(800, 800 * 4096),
            traced(200, 1600 * 4096),
            traced(800, 800 * 4096),
        ];
        let cs = aggregate(&phases, &traced, 4096);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].scalar.iocbs, 1600);
        assert_eq!(cs[0].scalar.traced.iocbs, 1600);
        assert_eq!(cs[0].scalar.elapsed_s, 2.0);
        assert_eq!(cs[0].vectored.iocbs, 200);
        assert!(
            disagreements(&cs[0]).is_empty(),
            "{:?}",
            disagreements(&cs[0])
        );
        let table = render_comparison(&cs[0]);
        assert!(table.contains("MB/s"), "{table}");
        assert!(
            table.contains("2.00×"),
            "vectored moved 2× the bytes per second: {table}"
        );
    }

    #[test]
    fn a_missing_iocb_is_a_disagreement() {
        let phases = [Phase {
            segments: 8,
            result: result(Mode::Vectored, 9, 100, 100 * 32768),
            syscalls: calls(100, 50),
        }];
        let cs = aggregate(&phases, &[traced(99, 99 * 32768)], 4096);
        let d = disagreements(&cs[0]);
        assert!(
            d.iter().any(|m| m.contains("100 iocbs, the tracer 99")),
            "{d:?}"
        );
        assert!(d.iter().any(|m| m.contains("bytes")), "{d:?}");
    }
}
