//! The bench's output: a side-by-side table per segment count, a sweep table,
//! or one JSON object.

use std::fmt::Write as _;

use aio_trace::workload::{Engine, result::LatencyUs};
use serde::Serialize;

use super::aggregate::{ArmTotals, Comparison, disagreements, ratio};

fn cmp_ratio(b: f64, a: f64) -> String {
    if a == 0.0 {
        "-".into()
    } else {
        format!("{:.2}×", b / a)
    }
}

/// What "submit calls", "reap calls" and "a reap" are for the engines
/// compared.
fn legend(c: &Comparison) -> String {
    let mut engines: Vec<Engine> = c.arms.iter().map(|a| a.engine).collect();
    engines.dedup();
    let part = |aio: &str, uring: &str| {
        engines
            .iter()
            .map(|e| match e {
                Engine::Aio => aio,
                Engine::IoUring => uring,
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    format!(
        "submit calls: {}; reap calls: {}; a reap takes completions: {}",
        part("io_submit", "io_uring_enter submitting"),
        part("io_getevents", "io_uring_enter waiting"),
        part("io_getevents", "from the CQ ring, after a wait or not"),
    )
}

/// The side-by-side table of one segment count.
pub fn render_comparison(c: &Comparison) -> String {
    let mut s = String::new();
    let (a, b) = (&c.totals[0], &c.totals[1]);
    let _ = writeln!(
        s,
        "{} × {} B per range: {} = {}, {} = {}",
        c.segments,
        c.segment_size,
        c.label(0),
        c.arms[0].describe(c.segments),
        c.label(1),
        c.arms[1].describe(c.segments)
    );
    let _ = writeln!(s, "{}", legend(c));
    let _ = writeln!(
        s,
        "{:<34} {:>14} {:>14} {:>10}",
        "",
        c.label(0),
        c.label(1),
        "ratio"
    );
    fn row(s: &mut String, name: &str, a: Option<f64>, b: Option<f64>, digits: usize) {
        let cell = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"));
        let ratio = match (a, b) {
            (Some(a), Some(b)) => cmp_ratio(b, a),
            _ => "-".into(),
        };
        let _ = writeln!(s, "{name:<34} {:>14} {:>14} {ratio:>10}", cell(a), cell(b));
    }
    // (name, the figure of one arm, digits): each row shows it for both arms
    // and their ratio; None where the figure does not exist ("-").
    type Figure = fn(&ArmTotals) -> Option<f64>;
    let rows: [(&str, Figure, usize); 15] = [
        ("MB/s", |m| Some(m.mb_per_s()), 1),
        ("requests/s", |m| Some(m.iops()), 0),
        ("requests (workload)", |m| Some(m.iocbs as f64), 0),
        ("requests (traced)", |m| Some(m.traced.iocbs as f64), 0),
        ("MB (workload)", |m| Some(m.bytes as f64 / 1e6), 1),
        ("MB (traced)", |m| Some(m.traced.bytes as f64 / 1e6), 1),
        (
            "segments per request (traced)",
            |m| Some(ratio(m.traced.segs, m.traced.iocbs)),
            2,
        ),
        (
            "submit calls per MB (workload)",
            |m| Some(m.per_mb(m.submit_calls)),
            2,
        ),
        (
            "submit calls per MB (traced)",
            |m| m.traced.calls.map(|c| m.per_mb(c.submit)),
            2,
        ),
        (
            "reap calls per MB (workload)",
            |m| Some(m.per_mb(m.reap_calls)),
            2,
        ),
        (
            "reap calls per MB (traced)",
            |m| m.traced.calls.map(|c| m.per_mb(c.reap)),
            2,
        ),
        (
            "completions per reap",
            |m| Some(m.completions_per_reap()),
            2,
        ),
        (
            "fs dispatches per MB (traced)",
            |m| Some(m.per_mb(m.traced.dispatches)),
            2,
        ),
        ("bios per MB (traced)", |m| Some(m.per_mb(m.traced.bios)), 2),
        (
            "bios per request (traced)",
            |m| Some(ratio(m.traced.bios, m.traced.iocbs)),
            2,
        ),
    ];
    for (name, figure, digits) in rows {
        row(&mut s, name, figure(a), figure(b), digits);
    }
    let us = |h| LatencyUs::from_histogram(h);
    let (la, lb) = (us(&a.latency), us(&b.latency));
    let (ta, tb) = (us(&a.traced.latency), us(&b.traced.latency));
    let (ra, rb) = (us(&a.traced.reap_lag), us(&b.traced.reap_lag));
    for (name, x, y) in [
        ("latency p50 µs (workload)", la.p50, lb.p50),
        ("latency p99 µs (workload)", la.p99, lb.p99),
        ("latency p99.9 µs (workload)", la.p999, lb.p999),
        ("latency max µs (workload)", la.max, lb.max),
        ("latency p50 µs (traced)", ta.p50, tb.p50),
        ("latency p99 µs (traced)", ta.p99, tb.p99),
        ("reap lag p50 µs (traced)", ra.p50, rb.p50),
        ("reap lag p99 µs (traced)", ra.p99, rb.p99),
    ] {
        row(&mut s, name, Some(x), Some(y), 1);
    }
    s
}

/// A column heading for an arm: its label, upper case ("SCALAR", "IO_URING").
fn heading(c: &Comparison, arm: usize) -> String {
    c.label(arm).to_uppercase()
}

/// One row per segment count, for sweeps. The calls per MB are the
/// tracer's; where it keeps none (io_uring) they are the workload's, and
/// their heading says so with a `*`.
pub fn render_sweep(cs: &[Comparison]) -> String {
    let mut s = String::new();
    let Some(first) = cs.first() else {
        return s;
    };
    let (ha, hb) = (heading(first, 0), heading(first, 1));
    let initial = [&ha[..1], &hb[..1]];
    let untraced = [0, 1].map(|i| cs.iter().any(|c| c.totals[i].traced.calls.is_none()));
    let calls = |i: usize, what: &str| {
        let star = if untraced[i] { "*" } else { "" };
        format!("{} {what}/MB{star}", initial[i])
    };
    let _ = writeln!(
        s,
        "{}, {}: {}",
        initial[0],
        initial[1],
        [0, 1]
            .map(|i| format!("{} = {}", first.label(i), first.arms[i].describe_sweep()))
            .join(", ")
    );
    let _ = writeln!(s, "{}", legend(first));
    if untraced.contains(&true) {
        let _ = writeln!(
            s,
            "* the workload's count: the tracer's io_uring_enter counts are not checked"
        );
    }
    let _ = writeln!(
        s,
        "{:>5} {:>13} {:>13} {:>7} {:>12} {:>12} {:>11} {:>11} {:>10} {:>10} {:>9} {:>9}",
        "SEGS",
        format!("{ha} MB/s"),
        format!("{hb} MB/s"),
        "RATIO",
        calls(0, "submit"),
        calls(1, "submit"),
        calls(0, "reap"),
        calls(1, "reap"),
        format!("{} bios/MB", initial[0]),
        format!("{} bios/MB", initial[1]),
        format!("{} p99 µs", initial[0]),
        format!("{} p99 µs", initial[1]),
    );
    for c in cs {
        let (a, b) = (&c.totals[0], &c.totals[1]);
        let submit = |m: &ArmTotals| m.per_mb(m.traced.calls.map_or(m.submit_calls, |c| c.submit));
        let reap = |m: &ArmTotals| m.per_mb(m.traced.calls.map_or(m.reap_calls, |c| c.reap));
        let _ = writeln!(
            s,
            "{:>5} {:>13.1} {:>13.1} {:>7} {:>12.2} {:>12.2} {:>11.2} {:>11.2} {:>10.2} {:>10.2} {:>9.0} {:>9.0}",
            c.segments,
            a.mb_per_s(),
            b.mb_per_s(),
            cmp_ratio(b.mb_per_s(), a.mb_per_s()),
            submit(a),
            submit(b),
            reap(a),
            reap(b),
            a.per_mb(a.traced.bios),
            b.per_mb(b.traced.bios),
            LatencyUs::from_histogram(&a.latency).p99,
            LatencyUs::from_histogram(&b.latency).p99,
        );
    }
    s
}

#[derive(Serialize)]
struct ArmJson {
    engine: Engine,
    mode: aio_trace::workload::Mode,
    mb_per_s: f64,
    iocbs_per_s: f64,
    iocbs: u64,
    bytes: u64,
    segs: u64,
    /// io_submit, or io_uring_enter submitting.
    submit_calls: u64,
    /// io_getevents, or io_uring_enter waiting.
    reap_calls: u64,
    completions_per_reap: f64,
    // AIO's own names for its calls, as this JSON has always had them.
    #[serde(skip_serializing_if = "Option::is_none")]
    io_submit_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    io_getevents_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events_per_getevents: Option<f64>,
    latency_us: LatencyUs,
    traced: TracedJson,
}

#[derive(Serialize)]
struct TracedJson {
    iocbs: u64,
    bytes: u64,
    segs: u64,
    /// The tracer's count of the calls; null where it keeps none the bench
    /// can find (io_uring).
    io_submit_calls: Option<u64>,
    io_getevents_calls: Option<u64>,
    latency_us: LatencyUs,
    dispatches: u64,
    bios: u64,
    reap_lag_us: LatencyUs,
    foreign: u64,
}

impl ArmJson {
    fn new(c: &Comparison, arm: usize) -> Self {
        let m = &c.totals[arm];
        let engine = c.arms[arm].engine;
        let aio = |v| (engine == Engine::Aio).then_some(v);
        Self {
            engine,
            mode: c.arms[arm].mode,
            mb_per_s: m.mb_per_s(),
            iocbs_per_s: m.iops(),
            iocbs: m.iocbs,
            bytes: m.bytes,
            segs: m.segs,
            submit_calls: m.submit_calls,
            reap_calls: m.reap_calls,
            completions_per_reap: m.completions_per_reap(),
            io_submit_calls: aio(m.submit_calls),
            io_getevents_calls: aio(m.reap_calls),
            events_per_getevents: (engine == Engine::Aio).then(|| m.completions_per_reap()),
            latency_us: LatencyUs::from_histogram(&m.latency),
            traced: TracedJson {
                iocbs: m.traced.iocbs,
                bytes: m.traced.bytes,
                segs: m.traced.segs,
                io_submit_calls: m.traced.calls.map(|c| c.submit),
                io_getevents_calls: m.traced.calls.map(|c| c.reap),
                latency_us: LatencyUs::from_histogram(&m.traced.latency),
                dispatches: m.traced.dispatches,
                bios: m.traced.bios,
                reap_lag_us: LatencyUs::from_histogram(&m.traced.reap_lag),
                foreign: m.traced.foreign,
            },
        }
    }
}

/// One object per segment count, each arm under its label ("scalar" and
/// "vectored", or "aio" and "io_uring") and their MB/s ratio under
/// "<second>_over_<first>_mb_per_s".
pub fn to_json(cs: &[Comparison]) -> serde_json::Value {
    let rows: Vec<_> = cs
        .iter()
        .map(|c| {
            let (a, b) = (c.label(0), c.label(1));
            let mut row = serde_json::json!({
                "segments": c.segments,
                "segment_size": c.segment_size,
                "compare": if c.arms[0].engine == c.arms[1].engine { "modes" } else { "engines" },
                "disagreements": disagreements(c),
            });
            row[a] = serde_json::json!(ArmJson::new(c, 0));
            row[b] = serde_json::json!(ArmJson::new(c, 1));
            row[format!("{b}_over_{a}_mb_per_s")] =
                serde_json::json!(c.totals[1].mb_per_s() / c.totals[0].mb_per_s().max(1e-12));
            row
        })
        .collect();
    serde_json::json!({ "type": "bench", "comparisons": rows })
}
