//! The log2 histogram widget: one text line per bucket, `range│bar count`.
//!
//! Layer: reads a `Log2Hist`; returns lines for a panel to place.

use ratatui::text::Line;

use crate::tui::hist::Log2Hist;

/// One line per log2 bucket (range│bar count), fitting `width` columns; the
/// bar takes what the range and count labels leave, at most `max_bar`.
pub(super) fn histogram_lines(
    hist: &Log2Hist,
    fmt: fn(u64) -> String,
    width: u16,
    max_bar: usize,
) -> Vec<Line<'static>> {
    let span = hist.span();
    let max = span.iter().map(|&(_, c)| c).max().unwrap_or(0).max(1);
    let ranges: Vec<String> = span
        .iter()
        .map(|&(bucket, _)| range_label(bucket, fmt))
        .collect();
    let range_width = ranges.iter().map(String::len).max().unwrap_or(0);
    let count_width = max.to_string().len();
    let bar_width = (width as usize)
        .saturating_sub(range_width + count_width + 2)
        .clamp(1, max_bar);
    span.into_iter()
        .zip(ranges)
        .map(|((_, count), range)| {
            let bar = "█".repeat((count * bar_width as u64).div_ceil(max) as usize);
            Line::from(format!("{range:>range_width$}│{bar:<bar_width$} {count}"))
        })
        .collect()
}

/// A bucket's values, `lo-hi`, or one value where the bucket holds one.
fn range_label(bucket: usize, fmt: fn(u64) -> String) -> String {
    let (lo, next) = Log2Hist::bounds(bucket);
    let hi = next.saturating_sub(1).max(lo);
    if hi == lo {
        fmt(lo)
    } else {
        format!("{}-{}", fmt(lo), fmt(hi))
    }
}
