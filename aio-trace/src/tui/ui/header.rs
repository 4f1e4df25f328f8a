//! The three header lines: who and what is traced (or where a replay
//! stands), the throughput and syscall rates, then losses, overhead, filter
//! and sort.
//!
//! Layer: reads the state; draws nothing but this area.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style, Stylize},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    format::{fmt_count, fmt_uptime, mb},
    overhead::overhead_summary,
};
use crate::{
    model::LossCounts,
    tui::{
        replay::fmt_speed,
        state::{ReplayView, State},
        stats::Stats,
    },
};

pub(super) fn render_header(frame: &mut Frame, area: Rect, state: &State) {
    let (line1, line2) = match &state.replay {
        Some(replay) => (replay_title(replay), replay_rates(state, replay)),
        None => (live_title(state), live_rates(state)),
    };
    frame.render_widget(Paragraph::new(vec![line1, line2, status_line(state)]), area);
}

/// The program's name, then `what`, then a highlighted status (or none).
fn title(what: String, status: Option<Span<'static>>) -> Line<'static> {
    Line::from(vec![
        Span::styled("aio-trace top", Style::new().bold()),
        Span::raw(what),
        status.unwrap_or_else(|| Span::raw("")),
    ])
}

fn paused() -> Span<'static> {
    Span::styled("  PAUSED", Style::new().fg(Color::Yellow).bold())
}

/// iocbs and bytes per second over the last tick.
fn throughput(totals: &Stats) -> String {
    format!(
        "iocbs/s {}  MB/s {}",
        fmt_count(totals.last.iocbs_per_s),
        mb(totals.last.bytes_per_s)
    )
}

fn live_title(state: &State) -> Line<'static> {
    let what = format!(
        "  {}  Linux {}  up {}  tracing {}",
        state.host,
        state.kernel,
        fmt_uptime(state.uptime),
        state.trace_filter
    );
    title(what, state.view.paused.then(paused))
}

fn live_rates(state: &State) -> Line<'static> {
    let shown = state.shown();
    let rates = &shown.rates;
    let epc = rates
        .events_per_getevents
        .map_or_else(|| "-".into(), |e| format!("{e:.2}"));
    Line::from(format!(
        "{}  io_submit/s {}  io_getevents/s {}  events/getevents {}",
        throughput(&shown.totals),
        fmt_count(rates.io_submit_per_s),
        fmt_count(rates.io_getevents_per_s),
        epc
    ))
}

/// Where a replay stands: file, speed, position, and whether it is paused
/// or over.
fn replay_title(replay: &ReplayView) -> Line<'static> {
    let secs = |ns: u64| ns as f64 / 1e9;
    let what = format!(
        "  {}  replay {} {:.1} s / {:.1} s",
        replay.file,
        fmt_speed(replay.speed),
        secs(replay.position_ns),
        secs(replay.duration_ns)
    );
    let status = if replay.ended {
        Some(Span::styled(
            "  END of recording",
            Style::new().fg(Color::Green).bold(),
        ))
    } else {
        (!replay.playing).then(paused)
    };
    title(what, status)
}

/// A recording has no per-tick syscall counters: its totals show once the
/// replay reached the end.
fn replay_rates(state: &State, replay: &ReplayView) -> Line<'static> {
    let syscalls = match (replay.ended, replay.syscalls) {
        (true, Some(t)) => format!(
            "io_submit calls {}  io_getevents calls {} (totals)",
            t.io_submit_calls, t.io_getevents_calls
        ),
        _ => "io_submit/s n/a  io_getevents/s n/a".into(),
    };
    Line::from(format!("{}  {syscalls}", throughput(&state.shown().totals)))
}

/// Losses, the self-overhead panel, then the filter and sort in force.
fn status_line(state: &State) -> Line<'static> {
    let view = &state.view;
    let filter = view
        .filter
        .as_ref()
        .map_or_else(|| "none".into(), |f| f.describe());
    let mut spans = vec![losses(&state.store.losses)];
    spans.extend(mid_flight(&state.store.losses));
    spans.extend([
        Span::styled(overhead_summary(state), Style::new().fg(Color::Cyan)),
        Span::raw(format!(
            "  filter {filter}  sort {}{}{}",
            view.sort.name(),
            if view.reverse { " (rev)" } else { "" },
            if view.split { "  split v/s" } else { "" }
        )),
    ]);
    Line::from(spans)
}

/// Said when the trace began while iocbs were in flight: their completions
/// are not losses, but their records are missing, so the figures start late.
fn mid_flight(l: &LossCounts) -> Option<Span<'static>> {
    (l.inflight_at_start > 0).then(|| {
        Span::styled(
            format!("  began mid-flight ({} at start)", l.inflight_at_start),
            Style::new().fg(Color::Yellow),
        )
    })
}

/// "lost 0", or in red every counter that lost something.
fn losses(l: &LossCounts) -> Span<'static> {
    if l.total() == 0 {
        return Span::raw("lost 0");
    }
    Span::styled(
        format!(
            "lost {} (ring {} inflight {} read {} unmatched {} trunc {} state {} aged {} abandoned {})",
            l.total(),
            l.ring_full,
            l.inflight_full,
            l.user_read,
            l.unmatched,
            l.batch_truncated,
            l.syscall_state_full,
            l.aged_out,
            l.abandoned
        ),
        Style::new().fg(Color::Red).bold(),
    )
}
