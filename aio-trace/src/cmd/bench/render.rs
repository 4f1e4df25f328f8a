//! The bench's output: a side-by-side table per segment count, a sweep table,
//! or one JSON object.

use std::fmt::Write as _;

use aio_trace::workload::result::LatencyUs;
use serde::Serialize;

use super::aggregate::{Comparison, ModeTotals, disagreements, ratio};

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
    // (name, the figure of one mode, digits): each row shows it for scalar
    // and vectored, and their ratio.
    type Figure = fn(&ModeTotals) -> f64;
    let rows: [(&str, Figure, usize); 13] = [
        ("MB/s", ModeTotals::mb_per_s, 1),
        ("iocbs/s", ModeTotals::iops, 0),
        ("iocbs (workload)", |m| m.iocbs as f64, 0),
        ("iocbs (traced)", |m| m.traced.iocbs as f64, 0),
        ("MB (workload)", |m| m.bytes as f64 / 1e6, 1),
        ("MB (traced)", |m| m.traced.bytes as f64 / 1e6, 1),
        (
            "segments per iocb (traced)",
            |m| ratio(m.traced.segs, m.traced.iocbs),
            2,
        ),
        (
            "io_submit calls per MB (traced)",
            |m| m.per_mb(m.traced.io_submit_calls),
            2,
        ),
        (
            "io_getevents calls per MB (traced)",
            |m| m.per_mb(m.traced.io_getevents_calls),
            2,
        ),
        (
            "events per io_getevents",
            ModeTotals::events_per_getevents,
            2,
        ),
        (
            "fs dispatches per MB (traced)",
            |m| m.per_mb(m.traced.dispatches),
            2,
        ),
        ("bios per MB (traced)", |m| m.per_mb(m.traced.bios), 2),
        (
            "bios per iocb (traced)",
            |m| ratio(m.traced.bios, m.traced.iocbs),
            2,
        ),
    ];
    for (name, figure, digits) in rows {
        row(&mut s, name, figure(sc), figure(ve), digits);
    }
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
