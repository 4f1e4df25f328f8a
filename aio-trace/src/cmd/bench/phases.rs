//! The bench's phases: each arm (an engine and a mode) at each segment count
//! for each round, run on one target with the tracer filtered to this
//! process; records are assigned to the phase running at their submit time.

use std::{
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use aio_trace::{
    clock::monotonic_ns,
    loader::{TraceConfig, Tracer},
    model::IocbView,
    reader::Record,
    session::{Session, Sink},
    workload::{
        self, Engine, Mode, Stop, WorkloadConfig, WorkloadResult,
        target::{self, OpenTarget},
    },
};
use aio_trace_common::{API_AIO, API_IO_URING, CTX_OP_CALLS, CtxCounters, CtxKey};
use anyhow::{Context as _, Result};
use hdrhistogram::Histogram;

/// One side of a comparison: the requests of an engine in a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm {
    pub engine: Engine,
    pub mode: Mode,
}

impl Arm {
    /// The `api` byte of the records this arm's requests make.
    pub fn api(self) -> u8 {
        match self.engine {
            Engine::Aio => API_AIO,
            Engine::IoUring => API_IO_URING,
        }
    }

    /// What one range of `segments` is in this arm: "8 PREAD/PWRITE iocbs
    /// (AIO)".
    pub fn describe(self, segments: u32) -> String {
        self.describe_as(&segments.to_string(), segments == 1)
    }

    /// The same for any segment count, for a sweep: "SEGS PREAD/PWRITE
    /// iocbs (AIO)".
    pub fn describe_sweep(self) -> String {
        self.describe_as("SEGS", false)
    }

    fn describe_as(self, segments: &str, one: bool) -> String {
        let (count, one) = match self.mode {
            Mode::Vectored => ("1", true),
            Mode::Scalar => (segments, one),
        };
        let ops = format!(
            "{}/{}",
            self.engine.op_name(self.mode, true),
            self.engine.op_name(self.mode, false)
        );
        let (unit, api) = match self.engine {
            Engine::Aio => ("iocb", "AIO"),
            Engine::IoUring => ("request", "io_uring"),
        };
        let plural = if one { "" } else { "s" };
        format!("{count} {ops} {unit}{plural} ({api})")
    }
}

pub struct BenchConfig {
    /// Shape and target; `engine`, `mode`, `segments` and `stop` are set per
    /// phase.
    pub base: WorkloadConfig,
    pub segments: Vec<u32>,
    /// The two sides compared: scalar and vectored on one engine, or one
    /// mode on both engines.
    pub arms: [Arm; 2],
    /// Time per arm and segment count, split over the rounds.
    pub per_mode: Duration,
    pub rounds: u32,
}

pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// What the tracer saw of one phase.
#[derive(Clone, Debug)]
pub struct Traced {
    /// Records of the phase's API: iocbs, or io_uring requests.
    pub iocbs: u64,
    pub bytes: u64,
    pub segs: u64,
    pub errors: u64,
    /// Records of the other API during the phase (there must be none: the
    /// bench's process makes no other I/O).
    pub foreign: u64,
    /// Filesystem dispatches and bios the iocbs caused.
    pub dispatches: u64,
    pub bios: u64,
    /// Kernel completion → handed to the application, per request.
    pub reap_lag: Histogram<u64>,
    /// The kernel's count of the phase's submitting and reaping calls;
    /// None where the bench cannot find it (an io_uring ring).
    pub calls: Option<TracedCalls>,
    pub latency: Histogram<u64>,
}

/// System calls the tracer counted: io_submit and io_getevents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracedCalls {
    pub submit: u64,
    pub reap: u64,
}

impl Default for Traced {
    fn default() -> Self {
        Self {
            iocbs: 0,
            bytes: 0,
            segs: 0,
            errors: 0,
            foreign: 0,
            dispatches: 0,
            bios: 0,
            reap_lag: new_histogram(),
            calls: Some(TracedCalls::default()),
            latency: new_histogram(),
        }
    }
}

impl Traced {
    pub(super) fn add(&mut self, other: &Traced) {
        self.iocbs += other.iocbs;
        self.bytes += other.bytes;
        self.segs += other.segs;
        self.errors += other.errors;
        self.foreign += other.foreign;
        self.dispatches += other.dispatches;
        self.bios += other.bios;
        let _ = self.reap_lag.add(&other.reap_lag);
        // Known for the sum only if known for every part.
        self.calls = self.calls.zip(other.calls).map(|(a, b)| TracedCalls {
            submit: a.submit + b.submit,
            reap: a.reap + b.reap,
        });
        let _ = self.latency.add(&other.latency);
    }
}

/// Assigns records to phases by submit time. The kernel reuses a destroyed
/// context's id, so the context alone does not tell phases apart; a phase's
/// start (and the `api` its records must have) is registered before its
/// first submit, so every record finds its phase already known.
#[derive(Default)]
pub struct PerPhase {
    pub starts: Arc<Mutex<Vec<(u64, u8)>>>,
    pub phases: Vec<Traced>,
}

impl Sink for PerPhase {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        if let Record::Iocb(r) = record {
            let phase = {
                let starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
                let index = starts.partition_point(|&(s, _)| s <= r.submit_ns);
                index.checked_sub(1).map(|i| (i, starts[i].1))
            };
            let Some((index, api)) = phase else {
                return Ok(());
            };
            if self.phases.len() <= index {
                self.phases.resize_with(index + 1, Traced::default);
            }
            let t = &mut self.phases[index];
            if r.api != api {
                t.foreign += 1;
                return Ok(());
            }
            t.iocbs += 1;
            t.bytes += r.requested_bytes().unwrap_or(0);
            t.segs += u64::from(r.segs);
            t.dispatches += u64::from(r.dispatches);
            t.bios += u64::from(r.bios);
            if let Some(ns) = r.reap_lag_ns() {
                let _ = t.reap_lag.record(ns.max(1));
            }
            if r.result().is_none_or(|res| res < 0) {
                t.errors += 1;
            }
            if let Some(ns) = r.latency_ns() {
                let _ = t.latency.record(ns.max(1));
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One phase: an arm at a segment count for one round.
pub struct Phase {
    pub segments: u32,
    /// Which of the config's two arms.
    pub arm: usize,
    pub result: WorkloadResult,
    /// The kernel's syscall counters of the phase's AIO context; None for
    /// io_uring, whose ring the tracer keys by a kernel address the
    /// workload does not know.
    pub syscalls: Option<CtxCounters>,
}

/// The phases in order, as (segment count, arm): for each segment count,
/// `rounds` alternations, the first arm switching every round so neither
/// always runs on a warm device.
pub fn schedule(segments: &[u32], rounds: u32) -> Vec<(u32, usize)> {
    let mut out = Vec::new();
    for &segs in segments {
        for round in 0..rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            out.extend(order.map(|arm| (segs, arm)));
        }
    }
    out
}

/// Runs every phase on one target with the tracer filtered to this process:
/// what the workload did per phase, and what the tracer saw of each.
pub async fn run(
    config: BenchConfig,
    cancel: Arc<AtomicBool>,
) -> Result<(Vec<Phase>, Vec<Traced>)> {
    for &segments in &config.segments {
        for arm in config.arms {
            WorkloadConfig {
                segments,
                engine: arm.engine,
                mode: arm.mode,
                ..config.base.clone()
            }
            .validate()?;
        }
    }
    let largest = config.segments.iter().copied().max().unwrap_or(1);
    let sizing = WorkloadConfig {
        segments: largest,
        ..config.base.clone()
    };
    let target: OpenTarget = target::open(&sizing)?;
    sizing.validate_for_target(target.block, target.size)?;

    let pid = std::process::id();
    let (tracer, ring) = Tracer::start(&TraceConfig {
        pids: vec![pid],
        ..TraceConfig::default()
    })?;
    let mut session = Session::new(tracer, ring, Duration::from_secs(30))
        .context("while watching the ring buffer")?;
    let phase_time = config.per_mode / config.rounds.max(1);
    let mut counters = session
        .tracer
        .counter_table()
        .context("while opening the counters map")?;
    let mut per_phase = PerPhase::default();
    let starts = per_phase.starts.clone();
    let plan = schedule(&config.segments, config.rounds.max(1));
    let arms = config.arms;
    let base = config.base.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_blocking(move || {
        let mut phases = Vec::new();
        let mut outcome = Ok(());
        for (segments, arm) in plan {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let phase = WorkloadConfig {
                segments,
                engine: arms[arm].engine,
                mode: arms[arm].mode,
                stop: Stop::After(phase_time),
                ..base.clone()
            };
            starts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((monotonic_ns(), arms[arm].api()));
            match workload::run(&phase, &target, &cancel) {
                Ok(result) => {
                    // A context or ring the tracer never saw has no
                    // counters: zeros, which the check then reports.
                    let syscalls = result.counters_key.map(|ctx| {
                        counters
                            .take(&CtxKey {
                                pid,
                                op: CTX_OP_CALLS,
                                ctx,
                            })
                            .unwrap_or_default()
                    });
                    phases.push(Phase {
                        segments,
                        arm,
                        result,
                        syscalls,
                    });
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let _ = done_tx.send(());
        (phases, outcome)
    });
    session
        .run(&mut per_phase, async {
            let _ = done_rx.await;
        })
        .await
        .context("while reading the trace")?;
    let (phases, outcome) = worker.await.context("the workload thread panicked")?;
    outcome?;
    let losses = session.losses();
    if losses.total() != 0 {
        eprintln!("aio-trace: the tracer lost events during the bench: {losses:?}");
    }
    Ok((phases, per_phase.phases))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_to_the_phase_running_at_their_submit_time() {
        let mut sink = PerPhase::default();
        sink.starts
            .lock()
            .unwrap()
            .extend([(100, API_AIO), (200, API_IO_URING)]);
        for (submit_ns, api) in [
            (50, API_AIO),
            (150, API_AIO),
            (199, API_AIO),
            (200, API_IO_URING),
            (250, API_IO_URING),
            (260, API_AIO),
        ] {
            let r = aio_trace_common::IocbRecord {
                api,
                submit_ns,
                reap_ns: submit_ns + 10,
                bytes: 4096,
                res: 4096,
                segs: 1,
                ..Default::default()
            };
            sink.record(&Record::Iocb(r)).unwrap();
        }
        assert_eq!(
            sink.phases
                .iter()
                .map(|t| (t.iocbs, t.foreign))
                .collect::<Vec<_>>(),
            [(2, 0), (2, 1)],
            "the record before any phase is not counted; an AIO record in \
             an io_uring phase is foreign, not one of its requests"
        );
    }

    #[test]
    fn alternates_the_first_arm_every_round() {
        assert_eq!(
            schedule(&[8], 3),
            [(8, 0), (8, 1), (8, 1), (8, 0), (8, 0), (8, 1)]
        );
        assert_eq!(schedule(&[1, 2], 1).len(), 4);
    }

    #[test]
    fn arms_say_what_a_range_is() {
        let aio_scalar = Arm {
            engine: Engine::Aio,
            mode: Mode::Scalar,
        };
        assert_eq!(aio_scalar.describe(8), "8 PREAD/PWRITE iocbs (AIO)");
        assert_eq!(aio_scalar.describe(1), "1 PREAD/PWRITE iocb (AIO)");
        assert_eq!(aio_scalar.describe_sweep(), "SEGS PREAD/PWRITE iocbs (AIO)");
        assert_eq!(aio_scalar.api(), API_AIO);
        let uring_vectored = Arm {
            engine: Engine::IoUring,
            mode: Mode::Vectored,
        };
        assert_eq!(
            uring_vectored.describe(8),
            "1 READV/WRITEV request (io_uring)"
        );
        assert_eq!(uring_vectored.api(), API_IO_URING);
    }
}
