//! `aio-trace bench`: scalar vs vectored AIO over identical bytes, alternating
//! for several rounds, with the tracer attached to this process so every
//! number the workload reports is checked against what the kernel saw.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use aio_trace_common::{CtxCounters, CtxKey};
use anyhow::{Context as _, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{
    loader::{TraceConfig, Tracer},
    model::IocbView,
    reader::Record,
    session::{Session, Sink, monotonic_ns},
    workload::{
        self, Mode, Stop, WorkloadConfig, WorkloadResult,
        result::LatencyUs,
        target::{self, OpenTarget},
    },
};

pub struct BenchConfig {
    /// Shape and target; `mode`, `segments` and `stop` are set per phase.
    pub base: WorkloadConfig,
    pub segments: Vec<u32>,
    /// Time per mode and segment count, split over the rounds.
    pub per_mode: Duration,
    pub rounds: u32,
}

fn new_histogram() -> Histogram<u64> {
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
    fn add(&mut self, other: &Traced) {
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
    fn new() -> Self {
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

    fn add(&mut self, r: &WorkloadResult, traced: Option<&Traced>) {
        self.elapsed_s += r.elapsed_s;
        self.iocbs += r.iocbs;
        self.bytes += r.bytes;
        self.io_submit_calls += r.io_submit_calls;
        self.io_getevents_calls += r.io_getevents_calls;
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
    fn per_mb(&self, n: u64) -> f64 {
        n as f64 / (self.bytes as f64 / 1e6).max(1e-12)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
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

/// One phase: a mode at a segment count for one round.
pub struct Phase {
    pub segments: u32,
    pub result: WorkloadResult,
    /// The kernel's syscall counters of the phase's context.
    pub syscalls: CtxCounters,
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

fn cmp_ratio(vectored: f64, scalar: f64) -> String {
    if scalar == 0.0 {
        "-".into()
    } else {
        format!("{:.2}×", vectored / scalar)
    }
}

/// The side-by-side table of one segment count.
pub fn render_comparison(c: &Comparison) -> String {
    let mut s = String::new();
    let (sc, ve) = (&c.scalar, &c.vectored);
    let _ = writeln!(
        s,
        "{} × {} B per range: scalar = {} PREAD/PWRITE iocbs, vectored = 1 PREADV/PWRITEV iocb",
        c.segments, c.segment_size, c.segments
    );
    let _ = writeln!(
        s,
        "{:<34} {:>14} {:>14} {:>10}",
        "", "scalar", "vectored", "ratio"
    );
    fn row(s: &mut String, name: &str, a: f64, b: f64, digits: usize) {
        let _ = writeln!(
            s,
            "{name:<34} {a:>14.digits$} {b:>14.digits$} {:>10}",
            cmp_ratio(b, a)
        );
    }
    row(&mut s, "MB/s", sc.mb_per_s(), ve.mb_per_s(), 1);
    row(&mut s, "iocbs/s", sc.iops(), ve.iops(), 0);
    row(
        &mut s,
        "iocbs (workload)",
        sc.iocbs as f64,
        ve.iocbs as f64,
        0,
    );
    row(
        &mut s,
        "iocbs (traced)",
        sc.traced.iocbs as f64,
        ve.traced.iocbs as f64,
        0,
    );
    row(
        &mut s,
        "MB (workload)",
        sc.bytes as f64 / 1e6,
        ve.bytes as f64 / 1e6,
        1,
    );
    row(
        &mut s,
        "MB (traced)",
        sc.traced.bytes as f64 / 1e6,
        ve.traced.bytes as f64 / 1e6,
        1,
    );
    row(
        &mut s,
        "segments per iocb (traced)",
        ratio(sc.traced.segs, sc.traced.iocbs),
        ratio(ve.traced.segs, ve.traced.iocbs),
        2,
    );
    row(
        &mut s,
        "io_submit calls per MB (traced)",
        sc.per_mb(sc.traced.io_submit_calls),
        ve.per_mb(ve.traced.io_submit_calls),
        2,
    );
    row(
        &mut s,
        "io_getevents calls per MB (traced)",
        sc.per_mb(sc.traced.io_getevents_calls),
        ve.per_mb(ve.traced.io_getevents_calls),
        2,
    );
    row(
        &mut s,
        "events per io_getevents",
        sc.events_per_getevents(),
        ve.events_per_getevents(),
        2,
    );
    row(
        &mut s,
        "fs dispatches per MB (traced)",
        sc.per_mb(sc.traced.dispatches),
        ve.per_mb(ve.traced.dispatches),
        2,
    );
    row(
        &mut s,
        "bios per MB (traced)",
        sc.per_mb(sc.traced.bios),
        ve.per_mb(ve.traced.bios),
        2,
    );
    row(
        &mut s,
        "bios per iocb (traced)",
        ratio(sc.traced.bios, sc.traced.iocbs),
        ratio(ve.traced.bios, ve.traced.iocbs),
        2,
    );
    let (ls, lv) = (
        LatencyUs::from_histogram(&sc.latency),
        LatencyUs::from_histogram(&ve.latency),
    );
    let (ts, tv) = (
        LatencyUs::from_histogram(&sc.traced.latency),
        LatencyUs::from_histogram(&ve.traced.latency),
    );
    for (name, a, b) in [
        ("latency p50 µs (workload)", ls.p50, lv.p50),
        ("latency p99 µs (workload)", ls.p99, lv.p99),
        ("latency p99.9 µs (workload)", ls.p999, lv.p999),
        ("latency max µs (workload)", ls.max, lv.max),
        ("latency p50 µs (traced)", ts.p50, tv.p50),
        ("latency p99 µs (traced)", ts.p99, tv.p99),
        (
            "reap lag p50 µs (traced)",
            LatencyUs::from_histogram(&sc.traced.reap_lag).p50,
            LatencyUs::from_histogram(&ve.traced.reap_lag).p50,
        ),
        (
            "reap lag p99 µs (traced)",
            LatencyUs::from_histogram(&sc.traced.reap_lag).p99,
            LatencyUs::from_histogram(&ve.traced.reap_lag).p99,
        ),
    ] {
        row(&mut s, name, a, b, 1);
    }
    s
}

/// One row per segment count, for sweeps.
pub fn render_sweep(cs: &[Comparison]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>5} {:>11} {:>11} {:>7} {:>11} {:>11} {:>11} {:>11} {:>10} {:>10} {:>9} {:>9}",
        "SEGS",
        "SCALAR MB/s",
        "VECTOR MB/s",
        "RATIO",
        "S submit/MB",
        "V submit/MB",
        "S getev/MB",
        "V getev/MB",
        "S bios/MB",
        "V bios/MB",
        "S p99 µs",
        "V p99 µs"
    );
    for c in cs {
        let (sc, ve) = (&c.scalar, &c.vectored);
        let _ = writeln!(
            s,
            "{:>5} {:>11.1} {:>11.1} {:>7} {:>11.2} {:>11.2} {:>11.2} {:>11.2} {:>10.2} {:>10.2} {:>9.0} {:>9.0}",
            c.segments,
            sc.mb_per_s(),
            ve.mb_per_s(),
            cmp_ratio(ve.mb_per_s(), sc.mb_per_s()),
            sc.per_mb(sc.traced.io_submit_calls),
            ve.per_mb(ve.traced.io_submit_calls),
            sc.per_mb(sc.traced.io_getevents_calls),
            ve.per_mb(ve.traced.io_getevents_calls),
            sc.per_mb(sc.traced.bios),
            ve.per_mb(ve.traced.bios),
            LatencyUs::from_histogram(&sc.latency).p99,
            LatencyUs::from_histogram(&ve.latency).p99,
        );
    }
    s
}

#[derive(Serialize)]
struct ModeJson {
    mb_per_s: f64,
    iocbs_per_s: f64,
    iocbs: u64,
    bytes: u64,
    io_submit_calls: u64,
    io_getevents_calls: u64,
    events_per_getevents: f64,
    latency_us: LatencyUs,
    traced: TracedJson,
}

#[derive(Serialize)]
struct TracedJson {
    iocbs: u64,
    bytes: u64,
    segs: u64,
    io_submit_calls: u64,
    io_getevents_calls: u64,
    latency_us: LatencyUs,
    dispatches: u64,
    bios: u64,
    reap_lag_us: LatencyUs,
}

impl ModeJson {
    fn new(m: &ModeTotals) -> Self {
        Self {
            mb_per_s: m.mb_per_s(),
            iocbs_per_s: m.iops(),
            iocbs: m.iocbs,
            bytes: m.bytes,
            io_submit_calls: m.io_submit_calls,
            io_getevents_calls: m.io_getevents_calls,
            events_per_getevents: m.events_per_getevents(),
            latency_us: LatencyUs::from_histogram(&m.latency),
            traced: TracedJson {
                iocbs: m.traced.iocbs,
                bytes: m.traced.bytes,
                segs: m.traced.segs,
                io_submit_calls: m.traced.io_submit_calls,
                io_getevents_calls: m.traced.io_getevents_calls,
                latency_us: LatencyUs::from_histogram(&m.traced.latency),
                dispatches: m.traced.dispatches,
                bios: m.traced.bios,
                reap_lag_us: LatencyUs::from_histogram(&m.traced.reap_lag),
            },
        }
    }
}

#[derive(Serialize)]
struct ComparisonJson {
    segments: u32,
    segment_size: u64,
    scalar: ModeJson,
    vectored: ModeJson,
    vectored_over_scalar_mb_per_s: f64,
    disagreements: Vec<String>,
}

pub fn to_json(cs: &[Comparison]) -> serde_json::Value {
    let rows: Vec<_> = cs
        .iter()
        .map(|c| ComparisonJson {
            segments: c.segments,
            segment_size: c.segment_size,
            scalar: ModeJson::new(&c.scalar),
            vectored: ModeJson::new(&c.vectored),
            vectored_over_scalar_mb_per_s: c.vectored.mb_per_s() / c.scalar.mb_per_s().max(1e-12),
            disagreements: disagreements(c),
        })
        .collect();
    serde_json::json!({ "type": "bench", "comparisons": rows })
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

/// Runs every phase on one target with the tracer filtered to this process.
pub async fn run(config: BenchConfig, cancel: Arc<AtomicBool>) -> Result<Vec<Comparison>> {
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
                    let key = CtxKey {
                        pid,
                        _pad: 0,
                        ctx: result.ctx,
                    };
                    let syscalls = counters.take(&key).unwrap_or_default();
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
    Ok(aggregate(
        &phases,
        &per_phase.phases,
        config.base.segment_size,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(mode: Mode, ctx: u64, iocbs: u64, bytes: u64) -> WorkloadResult {
        let config = WorkloadConfig {
            mode,
            ..WorkloadConfig::default()
        };
        let mut r = WorkloadResult::new(&config, ctx);
        r.iocbs = iocbs;
        r.bytes = bytes;
        r.io_submit_calls = iocbs;
        r.io_getevents_calls = iocbs / 2;
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
