//! The latency-by-stage panel: per stage its p50 and p99 over the window,
//! its share of the mean latency, and those shares as one stacked bar.
//!
//! Layer: reads one `Stats`; draws this area.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::{Block, Paragraph},
};

use super::format::fmt_ns;
use crate::tui::stats::{Stage, Stats, WINDOW_TICKS};

/// Width of the row labels.
const LABEL: usize = 6;
/// Width of a stage's column.
const COL: usize = 10;

pub(super) fn render_stages(frame: &mut Frame, area: Rect, stats: &Stats) {
    frame.render_widget(
        Paragraph::new(stage_lines(stats, area.width.saturating_sub(2))).block(
            Block::bordered().title(format!(
                "latency by stage, last {WINDOW_TICKS} intervals (n/a: no iocb had it)"
            )),
        ),
        area,
    );
}

/// Each stage's glyph and colour in the stacked breakdown.
fn stage_style(stage: Stage) -> (&'static str, Color) {
    match stage {
        Stage::Dispatch => ("░", Color::Cyan),
        Stage::Queue => ("▒", Color::Blue),
        Stage::Device => ("█", Color::Green),
        Stage::EndIo => ("▓", Color::Magenta),
        Stage::ReapLag => ("▚", Color::Yellow),
    }
}

/// Cells of a `width`-cell bar per share: every present stage gets at least
/// one, the largest absorbs the rounding.
fn bar_cells(shares: &[Option<f64>; 5], width: usize) -> [usize; 5] {
    let mut cells = shares.map(|s| s.map_or(0, |s| ((s * width as f64) as usize).max(1)));
    let total: usize = cells.iter().sum();
    if let Some(largest) = (0..5).max_by_key(|&i| cells[i])
        && total > 0
    {
        cells[largest] = (cells[largest] + width).saturating_sub(total);
    }
    cells
}

fn stage_lines(stats: &Stats, width: u16) -> Vec<Line<'static>> {
    let quantiles = Stage::ALL.map(|stage| stats.stage_quantiles(stage));
    let quantile = |q: usize| quantiles.map(|v| v.map_or_else(|| "n/a".into(), |v| fmt_ns(v[q])));
    let shares = stats.stage_shares();
    vec![
        column_row("", Stage::ALL.map(|s| s.name().to_string())),
        column_row("p50", quantile(0)),
        column_row("p99", quantile(1)),
        share_row(&shares),
        bar_row(stats, &shares, width),
    ]
}

/// A label, then one right-aligned column per stage.
fn column_row(label: &str, cells: [String; 5]) -> Line<'static> {
    let mut text = format!("{label:<LABEL$}");
    for cell in cells {
        text.push_str(&format!("{cell:>COL$}"));
    }
    Line::from(text)
}

/// Each stage's share of the mean latency, behind its glyph.
fn share_row(shares: &[Option<f64>; 5]) -> Line<'static> {
    let mut spans = vec![Span::raw(format!("{:<LABEL$}", "share"))];
    for (stage, share) in Stage::ALL.into_iter().zip(shares) {
        let (glyph, color) = stage_style(stage);
        let pct = share.map_or_else(|| "-".into(), |s| format!("{:.0}%", s * 100.0));
        spans.push(Span::raw(" ".repeat(COL - 1 - pct.len())));
        spans.push(Span::styled(glyph, Style::new().fg(color)));
        spans.push(Span::raw(pct));
    }
    Line::from(spans)
}

/// The mean latency, then the shares as one bar of glyphs.
fn bar_row(stats: &Stats, shares: &[Option<f64>; 5], width: u16) -> Line<'static> {
    let mean: f64 = stats.stage_means().iter().flatten().sum();
    let mean = if mean > 0.0 {
        fmt_ns(mean as u64)
    } else {
        "n/a".into()
    };
    let mut spans = vec![Span::raw(format!("mean {mean:<8}"))];
    let bar_width = (width as usize)
        .saturating_sub(LABEL + 8)
        .min(LABEL + COL * 5 - 13);
    for (stage, cells) in Stage::ALL.into_iter().zip(bar_cells(shares, bar_width)) {
        let (glyph, color) = stage_style(stage);
        spans.push(Span::styled(glyph.repeat(cells), Style::new().fg(color)));
    }
    Line::from(spans)
}
