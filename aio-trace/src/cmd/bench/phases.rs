//! The bench's phases: each mode at each segment count for each round, run on
//! one target with the tracer filtered to this process; records are assigned
//! to the phase running at their submit time.

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
        self, Mode, Stop, WorkloadConfig, WorkloadResult,
        target::{self, OpenTarget},
    },
};
use aio_trace_common::{CtxCounters, CtxKey};
use anyhow::{Context as _, Result};
use hdrhistogram::Histogram;

pub struct BenchConfig {
    /// Shape and target; `mode`, `segments` and `stop` are set per phase.
    pub base: WorkloadConfig,
    pub segments: Vec<u32>,
    /// Time per mode and segment count, split over the rounds.
    pub per_mode: Duration,
    pub rounds: u32,
}

pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// What the tracer saw of one AIO context.
#[derive(Clone, Debug)]
pub struct Traced {
    pub iocbs: u64,
    pub bytes: u64,
    pub segs: u64,
    pub errors: u64,
    /// Filesystem dispatches and bios the iocbs caused.
    pub dispatches: u64,
    pub bios: u64,
    /// Kernel completion → io_getevents return, per iocb.
    pub reap_lag: Histogram<u64>,
    pub io_submit_calls: u64,
    pub io_getevents_calls: u64,
    pub latency: Histogram<u64>,
}

impl Default for Traced {
    fn default() -> Self {
        Self {
            iocbs: 0,
            bytes: 0,
            segs: 0,
            errors: 0,
            dispatches: 0,
            bios: 0,
            reap_lag: new_histogram(),
            io_submit_calls: 0,
            io_getevents_calls: 0,
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
        self.dispatches += other.dispatches;
        self.bios += other.bios;
        let _ = self.reap_lag.add(&other.reap_lag);
        self.io_submit_calls += other.io_submit_calls;
        self.io_getevents_calls += other.io_getevents_calls;
        let _ = self.latency.add(&other.latency);
    }
}

/// Assigns records to phases by submit time. The kernel reuses a destroyed
/// context's id, so the context alone does not tell phases apart; a phase's
/// start is registered before its first io_submit, so every record finds its
/// phase already known.
#[derive(Default)]
pub struct PerPhase {
    pub starts: Arc<Mutex<Vec<u64>>>,
    pub phases: Vec<Traced>,
}

impl Sink for PerPhase {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        if let Record::Iocb(r) = record {
            let index = {
                let starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
                starts.partition_point(|&s| s <= r.submit_ns).checked_sub(1)
            };
            let Some(index) = index else { return Ok(()) };
            if self.phases.len() <= index {
                self.phases.resize_with(index + 1, Traced::default);
            }
            let t = &mut self.phases[index];
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

/// One phase: a mode at a segment count for one round.
pub struct Phase {
    pub segments: u32,
    pub result: WorkloadResult,
    /// The kernel's syscall counters of the phase's context.
    pub syscalls: CtxCounters,
}

/// The phases in order: for each segment count, `rounds` alternations, the
/// first mode switching every round so neither always runs on a warm device.
pub fn schedule(segments: &[u32], rounds: u32) -> Vec<(u32, Mode)> {
    let mut out = Vec::new();
    for &segs in segments {
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [Mode::Scalar, Mode::Vectored]
            } else {
                [Mode::Vectored, Mode::Scalar]
            };
            out.extend(order.map(|m| (segs, m)));
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
        WorkloadConfig {
            segments,
            ..config.base.clone()
        }
        .validate()?;
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
    let base = config.base.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_blocking(move || {
        let mut phases = Vec::new();
        let mut outcome = Ok(());
        for (segments, mode) in plan {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let phase = WorkloadConfig {
                segments,
                mode,
                stop: Stop::After(phase_time),
                ..base.clone()
            };
            starts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(monotonic_ns());
            match workload::run(&phase, &target, &cancel) {
                Ok(result) => {
                    let syscalls = result
                        .ctx
                        .and_then(|ctx| counters.take(&CtxKey { pid, _pad: 0, ctx }))
                        .unwrap_or_default();
                    phases.push(Phase {
                        segments,
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
        sink.starts.lock().unwrap().extend([100, 200]);
        for submit_ns in [50, 150, 199, 200, 250] {
            let r = aio_trace_common::IocbRecord {
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
            sink.phases.iter().map(|t| t.iocbs).collect::<Vec<_>>(),
            [2, 2],
            "the record before any phase is not counted"
        );
    }

    #[test]
    fn alternates_the_first_mode_every_round() {
        assert_eq!(
            schedule(&[8], 3),
            [
                (8, Mode::Scalar),
                (8, Mode::Vectored),
                (8, Mode::Vectored),
                (8, Mode::Scalar),
                (8, Mode::Scalar),
                (8, Mode::Vectored)
            ]
        );
        assert_eq!(schedule(&[1, 2], 1).len(), 4);
    }
}
