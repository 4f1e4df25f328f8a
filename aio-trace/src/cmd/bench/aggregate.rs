//! Phases grouped into comparisons (the two arms at one segment count), and
//! where the workload's own counts and the tracer's differ.

use aio_trace::workload::{Engine, WorkloadResult};
use hdrhistogram::Histogram;

use super::phases::{Arm, Phase, Traced, TracedCalls, new_histogram};

/// One arm at one segment count, summed over its rounds.
#[derive(Clone, Debug)]
pub struct ArmTotals {
    pub elapsed_s: f64,
    /// Requests: iocbs, or io_uring SQEs.
    pub iocbs: u64,
    pub bytes: u64,
    pub segs: u64,
    /// Submitting calls: io_submit, or io_uring_enter submitting.
    pub submit_calls: u64,
    /// Reaping calls: io_getevents, or io_uring_enter waiting.
    pub reap_calls: u64,
    /// Times completions were taken: io_getevents calls, or CQ reaps.
    pub reaps: u64,
    pub latency: Histogram<u64>,
    pub traced: Traced,
}

impl ArmTotals {
    pub(super) fn new() -> Self {
        Self {
            elapsed_s: 0.0,
            iocbs: 0,
            bytes: 0,
            segs: 0,
            submit_calls: 0,
            reap_calls: 0,
            reaps: 0,
            latency: new_histogram(),
            traced: Traced::default(),
        }
    }

    pub(super) fn add(&mut self, r: &WorkloadResult, traced: &Traced) {
        self.elapsed_s += r.elapsed_s;
        self.iocbs += r.iocbs;
        self.bytes += r.bytes;
        self.segs += r.segments_moved();
        self.submit_calls += r.submit_calls();
        self.reap_calls += r.reap_calls();
        self.reaps += r.reaps();
        if let Some(h) = &r.latency {
            let _ = self.latency.add(h);
        }
        self.traced.add(traced);
    }

    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed_s.max(1e-9)
    }
    pub fn iops(&self) -> f64 {
        self.iocbs as f64 / self.elapsed_s.max(1e-9)
    }
    pub fn completions_per_reap(&self) -> f64 {
        ratio(self.iocbs, self.reaps)
    }
    pub(super) fn per_mb(&self, n: u64) -> f64 {
        n as f64 / (self.bytes as f64 / 1e6).max(1e-12)
    }
}

pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The two arms at one segment count.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub segments: u32,
    pub segment_size: u64,
    pub arms: [Arm; 2],
    pub totals: [ArmTotals; 2],
}

impl Comparison {
    /// What tells the arms apart: their modes on one engine, else their
    /// engines.
    pub fn label(&self, arm: usize) -> &'static str {
        if self.arms[0].engine == self.arms[1].engine {
            self.arms[arm].mode.name()
        } else {
            self.arms[arm].engine.name()
        }
    }
}

/// Groups phases by segment count and arm, joining the tracer's view of each
/// phase (records by `traced[i]`, syscalls from the phase's counters).
pub fn aggregate(
    phases: &[Phase],
    traced: &[Traced],
    segment_size: u64,
    arms: [Arm; 2],
) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = Vec::new();
    for (i, phase) in phases.iter().enumerate() {
        let index = match out.iter().position(|c| c.segments == phase.segments) {
            Some(i) => i,
            None => {
                out.push(Comparison {
                    segments: phase.segments,
                    segment_size,
                    arms,
                    totals: [ArmTotals::new(), ArmTotals::new()],
                });
                out.len() - 1
            }
        };
        let mut seen = traced.get(i).cloned().unwrap_or_default();
        seen.calls = phase.syscalls.map(|c| TracedCalls {
            submit: c.io_submit_calls,
            reap: c.io_getevents_calls,
        });
        out[index].totals[phase.arm].add(&phase.result, &seen);
    }
    out
}

/// The names of an engine's submitting and reaping calls.
fn call_names(engine: Engine) -> (&'static str, &'static str) {
    match engine {
        Engine::Aio => ("io_submit calls", "io_getevents calls"),
        Engine::IoUring => (
            "io_uring_enter calls that submitted",
            "io_uring_enter calls that waited",
        ),
    }
}

/// Where the workload's own counts and the tracer's differ (they must not).
pub fn disagreements(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (arm, m)) in c.arms.iter().zip(&c.totals).enumerate() {
        let name = c.label(i);
        let request = match arm.engine {
            Engine::Aio => "iocbs",
            Engine::IoUring => "io_uring requests",
        };
        let mut pairs = vec![
            (request, m.iocbs, m.traced.iocbs),
            ("bytes", m.bytes, m.traced.bytes),
            ("segments", m.segs, m.traced.segs),
        ];
        if let Some(calls) = m.traced.calls {
            let (submit, reap) = call_names(arm.engine);
            pairs.extend([
                (submit, m.submit_calls, calls.submit),
                (reap, m.reap_calls, calls.reap),
            ]);
        }
        for (what, workload, traced) in pairs {
            if workload != traced {
                out.push(format!(
                    "{} segments, {name}: the workload counted {workload} {what}, the tracer {traced}",
                    c.segments
                ));
            }
        }
        if arm.engine == Engine::IoUring && m.iocbs != 0 && m.traced.iocbs == 0 {
            out.push(format!(
                "{} segments, {name}: the tracer saw no io_uring request at all: \
                 this build or kernel does not trace io_uring (aio-trace doctor says which)",
                c.segments
            ));
        }
        if m.traced.errors != 0 {
            out.push(format!(
                "{} segments, {name}: the tracer saw {} failed {request}",
                c.segments, m.traced.errors
            ));
        }
        if m.traced.foreign != 0 {
            out.push(format!(
                "{} segments, {name}: the tracer saw {} records of the other API during its phases",
                c.segments, m.traced.foreign
            ));
        }
    }
    out
}

/// What the check could not compare: calls the tracer keeps no count of
/// the bench can find.
pub fn unchecked(cs: &[Comparison]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for c in cs {
        for (arm, m) in c.arms.iter().zip(&c.totals) {
            if m.traced.calls.is_none() && arm.engine == Engine::IoUring {
                let what =
                    "io_uring_enter calls (the workload named no ring for the tracer's counters)";
                if !out.contains(&what) {
                    out.push(what);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aio_trace::workload::{Mode, WorkloadConfig, result::Calls};
    use aio_trace_common::CtxCounters;

    use super::*;
    use crate::cmd::bench::render::{render_comparison, render_sweep, to_json};

    const SCALAR_VS_VECTORED: [Arm; 2] = [
        Arm {
            engine: Engine::Aio,
            mode: Mode::Scalar,
        },
        Arm {
            engine: Engine::Aio,
            mode: Mode::Vectored,
        },
    ];
    const AIO_VS_URING: [Arm; 2] = [
        Arm {
            engine: Engine::Aio,
            mode: Mode::Vectored,
        },
        Arm {
            engine: Engine::IoUring,
            mode: Mode::Vectored,
        },
    ];

    fn result(arm: Arm, iocbs: u64, bytes: u64) -> WorkloadResult {
        let config = WorkloadConfig {
            engine: arm.engine,
            mode: arm.mode,
            segments: 8,
            ..WorkloadConfig::default()
        };
        let ctx = (arm.engine == Engine::Aio).then_some(1);
        let mut r = WorkloadResult::new(&config, ctx, ctx);
        r.iocbs = iocbs;
        r.bytes = bytes;
        r.calls = match arm.engine {
            Engine::Aio => Calls::Aio {
                io_submit_calls: iocbs,
                io_getevents_calls: iocbs / 2,
                events_per_getevents: 0.0,
            },
            Engine::IoUring => Calls::IoUring {
                io_uring_enter_calls: iocbs + iocbs / 4,
                enter_submit_calls: iocbs,
                enter_wait_calls: iocbs / 4,
                cq_reaps: iocbs / 2,
                completions_per_reap: 0.0,
            },
        };
        let mut h = new_histogram();
        h.record(100_000).unwrap();
        r.finish(Duration::from_secs(1), &h);
        r
    }

    /// What a tracer that saw everything reports of `r`.
    fn traced(r: &WorkloadResult) -> Traced {
        Traced {
            iocbs: r.iocbs,
            bytes: r.bytes,
            segs: r.segments_moved(),
            ..Traced::default()
        }
    }

    fn phase(segments: u32, arms: [Arm; 2], arm: usize, iocbs: u64, bytes: u64) -> Phase {
        let result = result(arms[arm], iocbs, bytes);
        let syscalls = result.ctx.map(|_| CtxCounters {
            io_submit_calls: result.submit_calls(),
            io_getevents_calls: result.reap_calls(),
            ..CtxCounters::default()
        });
        Phase {
            segments,
            arm,
            result,
            syscalls,
        }
    }

    #[test]
    fn aggregates_rounds_and_joins_the_trace_by_phase() {
        let arms = SCALAR_VS_VECTORED;
        let phases = [
            phase(8, arms, 0, 800, 800 * 4096),
            phase(8, arms, 1, 200, 1600 * 4096),
            phase(8, arms, 0, 800, 800 * 4096),
        ];
        let seen: Vec<Traced> = phases.iter().map(|p| traced(&p.result)).collect();
        let cs = aggregate(&phases, &seen, 4096, arms);
        assert_eq!(cs.len(), 1);
        let [scalar, vectored] = &cs[0].totals;
        assert_eq!(scalar.iocbs, 1600);
        assert_eq!(scalar.traced.iocbs, 1600);
        assert_eq!(scalar.elapsed_s, 2.0);
        assert_eq!(vectored.iocbs, 200);
        assert_eq!(vectored.segs, 1600, "8 segments per PREADV");
        assert_eq!(
            vectored.traced.calls,
            Some(TracedCalls {
                submit: 200,
                reap: 100
            })
        );
        assert_eq!((cs[0].label(0), cs[0].label(1)), ("scalar", "vectored"));
        assert!(
            disagreements(&cs[0]).is_empty(),
            "{:?}",
            disagreements(&cs[0])
        );
        assert!(unchecked(&cs).is_empty());
        let table = render_comparison(&cs[0]);
        assert!(table.contains("MB/s"), "{table}");
        assert!(
            table.contains("2.00×"),
            "vectored moved 2× the bytes per second: {table}"
        );
    }

    #[test]
    fn a_missing_iocb_is_a_disagreement() {
        let phases = [phase(8, SCALAR_VS_VECTORED, 1, 100, 100 * 32768)];
        let mut seen = traced(&phases[0].result);
        seen.iocbs -= 1;
        seen.bytes -= 32768;
        seen.segs -= 8;
        let cs = aggregate(&phases, &[seen], 4096, SCALAR_VS_VECTORED);
        let d = disagreements(&cs[0]);
        assert!(
            d.iter().any(|m| m.contains("100 iocbs, the tracer 99")),
            "{d:?}"
        );
        assert!(d.iter().any(|m| m.contains("bytes")), "{d:?}");
        assert!(
            d.iter().any(|m| m.contains("800 segments, the tracer 792")),
            "{d:?}"
        );
    }

    #[test]
    fn engines_are_compared_on_requests_bytes_and_segments() {
        let arms = AIO_VS_URING;
        let phases = [
            phase(8, arms, 0, 100, 100 * 32768),
            phase(8, arms, 1, 100, 100 * 32768),
        ];
        let seen: Vec<Traced> = phases.iter().map(|p| traced(&p.result)).collect();
        let cs = aggregate(&phases, &seen, 4096, arms);
        assert_eq!((cs[0].label(0), cs[0].label(1)), ("aio", "io_uring"));
        assert!(
            disagreements(&cs[0]).is_empty(),
            "{:?}",
            disagreements(&cs[0])
        );
        assert_eq!(cs[0].totals[1].traced.calls, None);
        assert_eq!(cs[0].totals[1].submit_calls, 100);
        assert_eq!(cs[0].totals[1].reap_calls, 25);
        assert_eq!(cs[0].totals[1].completions_per_reap(), 2.0);
        assert_eq!(
            unchecked(&cs).len(),
            1,
            "io_uring_enter calls are not traced"
        );
    }

    #[test]
    fn the_json_and_the_sweep_name_each_side() {
        let arms = AIO_VS_URING;
        let phases = [
            phase(1, arms, 0, 100, 100 * 4096),
            phase(1, arms, 1, 100, 200 * 4096),
            phase(8, arms, 0, 100, 100 * 32768),
            phase(8, arms, 1, 100, 100 * 32768),
        ];
        let seen: Vec<Traced> = phases.iter().map(|p| traced(&p.result)).collect();
        let cs = aggregate(&phases, &seen, 4096, arms);
        let json = to_json(&cs);
        let first = &json["comparisons"][0];
        assert_eq!(first["compare"], "engines");
        assert_eq!(first["io_uring_over_aio_mb_per_s"], 2.0);
        assert_eq!(first["aio"]["io_submit_calls"], 100);
        assert_eq!(first["aio"]["traced"]["io_submit_calls"], 100);
        assert_eq!(first["io_uring"]["submit_calls"], 100);
        assert!(
            first["io_uring"].get("io_submit_calls").is_none(),
            "{first}"
        );
        assert!(first["io_uring"]["traced"]["io_submit_calls"].is_null());
        assert_eq!(first["disagreements"], serde_json::json!([]));
        let sweep = render_sweep(&cs);
        assert!(
            sweep.starts_with(
                "A, I: aio = 1 PREADV/PWRITEV iocb (AIO), io_uring = 1 READV/WRITEV request (io_uring)\n"
            ),
            "{sweep}"
        );
        assert!(sweep.contains("IO_URING MB/s"), "{sweep}");
        assert!(
            sweep.contains(" A submit/MB I submit/MB*"),
            "io_uring's calls are the workload's: {sweep}"
        );
        assert_eq!(sweep.lines().count(), 6, "{sweep}");
        let table = render_comparison(&cs[1]);
        assert!(
            table.contains(
                "submit calls per MB (traced)                30.52              -          -"
            ),
            "{table}"
        );
    }

    #[test]
    fn an_untraced_io_uring_phase_fails_loudly() {
        let arms = AIO_VS_URING;
        let phases = [
            phase(8, arms, 0, 100, 100 * 32768),
            phase(8, arms, 1, 100, 100 * 32768),
        ];
        let seen = [
            traced(&phases[0].result),
            Traced {
                foreign: 3,
                ..Traced::default()
            },
        ];
        let d = disagreements(&aggregate(&phases, &seen, 4096, arms)[0]);
        assert!(
            d.iter().any(|m| m
                .contains("io_uring: the workload counted 100 io_uring requests, the tracer 0")),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|m| m.contains("the tracer saw no io_uring request at all")),
            "{d:?}"
        );
        assert!(
            d.iter().any(|m| m.contains("3 records of the other API")),
            "{d:?}"
        );
    }

    #[test]
    fn an_aio_syscall_count_that_differs_is_a_disagreement() {
        let mut phases = [phase(8, SCALAR_VS_VECTORED, 0, 800, 800 * 4096)];
        let seen = [traced(&phases[0].result)];
        phases[0].syscalls = Some(CtxCounters {
            io_submit_calls: 799,
            io_getevents_calls: 400,
            ..CtxCounters::default()
        });
        let d = disagreements(&aggregate(&phases, &seen, 4096, SCALAR_VS_VECTORED)[0]);
        assert_eq!(
            d,
            ["8 segments, scalar: the workload counted 800 io_submit calls, the tracer 799"]
        );
    }
}
