//! The report as text tables.

use std::{borrow::Cow, fmt::Write as _};

use super::stats::{Bucket, Latency, Line, Report};

fn us(ns: Option<u64>) -> String {
    ns.map_or("-".into(), |ns| format!("{:.1}", ns as f64 / 1e3))
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

const TABLE_HEAD: &str =
    "IOCBS     SHARE   MB        ERR     SEGS    BIOS    P50(us)    P90(us)    P99(us)    MAX(us)";

/// The first column's width: 24, or the longest row name up to 40 (an
/// io_uring ring's address is a kernel one, four digits longer than an AIO
/// context's), so that every table of the report lines up.
const KEY_WIDTH: usize = 24;
const MAX_KEY_WIDTH: usize = 40;

/// What names a row: an op with its interface ("aio PREADV", "io_uring
/// READV"), the rest by their key.
fn label(l: &Line) -> Cow<'_, str> {
    match l.api {
        Some(api) => Cow::Owned(format!("{api} {}", l.key)),
        None => Cow::Borrowed(&l.key),
    }
}

fn row(out: &mut String, width: usize, l: &Line) {
    let Latency {
        p50_ns,
        p90_ns,
        p99_ns,
        max_ns,
        ..
    } = l.latency;
    let _ = writeln!(
        out,
        "{:<width$} {:<9} {:<7} {:<9} {:<7} {:<7} {:<7} {:<10} {:<10} {:<10} {}",
        truncate(&label(l), width),
        l.iocbs,
        format!("{:.1}%", l.share * 100.0),
        mb(l.bytes_transferred),
        l.errors,
        opt(l.segs_per_iocb),
        opt(l.bios_per_iocb),
        us(p50_ns),
        us(p90_ns),
        us(p99_ns),
        us(max_ns),
    );
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn histogram(out: &mut String, title: &str, unit: &str, buckets: &[Bucket]) {
    if buckets.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}");
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    for b in buckets {
        let bar = "#".repeat(((b.count * 40).div_ceil(max)) as usize);
        let _ = writeln!(
            out,
            "  {:>10} .. {:<10} {unit} {:>10} {bar}",
            b.lo, b.hi, b.count
        );
    }
}

pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", r.file, r.format);
    if let Some(h) = &r.header {
        let _ = writeln!(
            out,
            "recorded {} on {} (Linux {}), aio-trace {}",
            h.start_realtime, h.hostname, h.kernel, h.tool_version
        );
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(out, "skipped {} bad lines", r.skipped.len());
    }
    let _ = writeln!(
        out,
        "records {}  iocbs {}  syscalls {}  processes {}  contexts {}  duration {}",
        r.records,
        r.iocbs,
        r.syscalls,
        r.processes,
        r.contexts,
        r.duration_s.map_or("-".into(), |d| format!("{d:.3} s"))
    );
    let c = &r.calls;
    if c.contexts > 0 {
        let _ = writeln!(
            out,
            "io_submit {}  iocbs/submit {}  io_getevents {}  events/getevents {}",
            c.io_submit_calls,
            opt(c.iocbs_per_submit),
            c.io_getevents_calls,
            opt(c.events_per_getevents)
        );
    }
    let by = match r.by {
        super::By::Pid => "PID COMM",
        super::By::Ctx => "PID CTX",
        super::By::Op => "OP",
        super::By::File => "FILE",
        super::By::Api => "API",
        super::By::Dev => "DEVICE",
        super::By::Cgroup => "CGROUP",
    };
    let width = r
        .groups
        .iter()
        .chain(&r.ops)
        .map(|l| label(l).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(KEY_WIDTH, MAX_KEY_WIDTH);
    let _ = writeln!(out, "\n{by:<width$} {TABLE_HEAD}");
    for g in &r.groups {
        row(&mut out, width, g);
    }
    row(&mut out, width, &r.total);
    let _ = writeln!(out, "\n{:<width$} {TABLE_HEAD}", "API OP");
    for o in &r.ops {
        row(&mut out, width, o);
    }
    if r.vectored.iocbs + r.scalar.iocbs > 0 {
        let _ = writeln!(out, "\n{:<width$} {TABLE_HEAD}", "VECTORED VS SCALAR");
        row(&mut out, width, &r.vectored);
        row(&mut out, width, &r.scalar);
    }
    for o in &r.ops {
        out.push('\n');
        histogram(
            &mut out,
            &format!("{} latency (log2)", label(o)),
            "us",
            &o.latency_log2_us,
        );
    }
    out.push('\n');
    histogram(
        &mut out,
        "segments per iocb (log2)",
        "segs",
        &r.segments_log2,
    );
    histogram(
        &mut out,
        "bios per dispatched iocb (log2)",
        "bios",
        &r.bios_log2,
    );
    if !r.errors.is_empty() {
        let _ = writeln!(out, "\nerrors");
        for e in &r.errors {
            let res = e.res.map_or("refused".into(), |r| r.to_string());
            let op = format!("{} {}", e.api, e.op);
            let _ = writeln!(out, "  {op:<20} {res:<10} {}", e.count);
        }
    }
    if let Some(lost) = &r.lost {
        let total: u64 = lost.values().sum();
        let causes: Vec<_> = lost.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "\nlost: {total} ({})", causes.join(", "));
    }
    out
}
