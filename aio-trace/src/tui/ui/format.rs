//! Number formats shared by the panels: latencies, counts, rates, uptime.
//!
//! Layer: plain functions of numbers; no state, no widgets.

pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..10_000 => format!("{:.1}us", ns as f64 / 1e3),
        10_000..1_000_000 => format!("{}us", ns / 1_000),
        1_000_000..10_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        10_000_000..1_000_000_000 => format!("{}ms", ns / 1_000_000),
        _ => format!("{:.1}s", ns as f64 / 1e9),
    }
}

pub(crate) fn fmt_opt_ns(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".into(), fmt_ns)
}

/// A per-iocb average in 4 columns; "n/a" where no iocb had the thing.
pub(crate) fn fmt_ratio(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// Average segments per iocb; "-" before any iocb.
pub(crate) fn fmt_segments(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{s:.2}"))
}

pub(crate) fn fmt_count(n: f64) -> String {
    if n >= 10_000_000.0 {
        format!("{:.0}M", n / 1e6)
    } else if n >= 100_000.0 {
        format!("{:.0}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

pub(crate) fn mb(bytes: f64) -> String {
    format!("{:.1}", bytes / 1e6)
}

pub(crate) fn fmt_uptime(d: std::time::Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A count with thousands separators: 2,314.
pub(crate) fn fmt_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
#[test]
fn thousands_are_separated() {
    assert_eq!(fmt_thousands(0), "0");
    assert_eq!(fmt_thousands(999), "999");
    assert_eq!(fmt_thousands(2_314), "2,314");
    assert_eq!(fmt_thousands(1_234_567), "1,234,567");
}

/// A sampled figure's sample size, ` (n=2,314)`; nothing when every iocb is
/// traced.
pub(crate) fn fmt_sample(sampled: bool, n: u64) -> String {
    if sampled {
        format!(" (n={})", fmt_thousands(n))
    } else {
        String::new()
    }
}

pub(crate) fn plain(n: u64) -> String {
    n.to_string()
}
