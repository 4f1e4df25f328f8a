//! The three header lines: who and what is traced (or where a replay
//! stands), the throughput and syscall rates, then losses, overhead, filter
//! and sort.
//!
//! Each line is a list of fields with a priority: the line shows as many as
//! its width allows, most important first, each whole (in its short form
//! when the full one does not fit), in their order on the line.
//!
//! Layer: reads the state; draws nothing but this area.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style, Stylize},
    widgets::Paragraph,
};

use super::{
    field::{Field, fit},
    format::{fmt_count, fmt_uptime, mb},
    overhead::overhead_fields,
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
    let width = usize::from(area.width);
    let lines = header_fields(state).map(|fields| fit(&fields, width));
    frame.render_widget(Paragraph::new(Vec::from(lines)), area);
}

/// The three lines' fields, before fitting them to a width.
pub(super) fn header_fields(state: &State) -> [Vec<Field>; 3] {
    let (line1, line2) = match &state.replay {
        Some(replay) => (replay_title(replay), replay_rates(state, replay)),
        None => (live_title(state), live_rates(state)),
    };
    [line1, line2, status_line(state)]
}

/// The program's name, then `what`, then a highlighted status (or none).
fn title(what: Vec<Field>, status: Option<Field>) -> Vec<Field> {
    let mut fields = vec![Field::new(1, "aio-trace top").style(Style::new().bold())];
    fields.extend(what);
    fields.extend(status);
    fields
}

fn paused() -> Field {
    Field::new(0, "PAUSED").style(Style::new().fg(Color::Yellow).bold())
}

/// iocbs and bytes per second over the last tick.
fn throughput(totals: &Stats) -> [Field; 2] {
    [
        Field::new(0, format!("iocbs/s {}", fmt_count(totals.last.iocbs_per_s))),
        Field::new(0, format!("MB/s {}", mb(totals.last.bytes_per_s))),
    ]
}

fn live_title(state: &State) -> Vec<Field> {
    let mut what = vec![
        Field::new(4, state.host.clone()),
        Field::new(3, format!("Linux {}", state.kernel)),
        Field::new(2, format!("up {}", fmt_uptime(state.uptime))),
        Field::new(1, format!("tracing {}", state.trace_filter)),
    ];
    if state.store.sample_every > 1 {
        // Counts are exact; latencies, stages and bios are this sample's.
        what.push(Field::new(
            1,
            format!("sampled 1/{}", state.store.sample_every),
        ));
    }
    title(what, state.view.paused.then(paused))
}

fn live_rates(state: &State) -> Vec<Field> {
    let shown = state.shown();
    let rates = &shown.rates;
    let epc = rates
        .events_per_getevents
        .map_or_else(|| "-".into(), |e| format!("{e:.2}"));
    let mut fields = Vec::from(throughput(&shown.totals));
    fields.extend([
        Field::new(
            1,
            format!("io_submit/s {}", fmt_count(rates.io_submit_per_s)),
        ),
        Field::new(
            1,
            format!("io_getevents/s {}", fmt_count(rates.io_getevents_per_s)),
        ),
        Field::new(2, format!("events/getevents {epc}")),
    ]);
    fields
}

/// Where a replay stands: file, speed, position, and whether it is paused
/// or over.
fn replay_title(replay: &ReplayView) -> Vec<Field> {
    let secs = |ns: u64| ns as f64 / 1e9;
    let position = format!(
        "{:.1} s / {:.1} s",
        secs(replay.position_ns),
        secs(replay.duration_ns)
    );
    let what = vec![
        Field::new(2, replay.file.clone()),
        Field::new(0, format!("replay {} {position}", fmt_speed(replay.speed))).short(position),
    ];
    let status = if replay.ended {
        Some(Field::new(0, "END of recording").style(Style::new().fg(Color::Green).bold()))
    } else {
        (!replay.playing).then(paused)
    };
    title(what, status)
}

/// A recording has no per-tick syscall counters: its totals show once the
/// replay reached the end.
fn replay_rates(state: &State, replay: &ReplayView) -> Vec<Field> {
    let syscalls = match (replay.ended, replay.syscalls) {
        (true, Some(t)) => [
            Field::new(1, format!("io_submit calls {}", t.io_submit_calls)),
            Field::new(
                1,
                format!("io_getevents calls {} (totals)", t.io_getevents_calls),
            )
            .short(format!("io_getevents calls {}", t.io_getevents_calls)),
        ],
        _ => [
            Field::new(1, "io_submit/s n/a"),
            Field::new(1, "io_getevents/s n/a"),
        ],
    };
    let mut fields = Vec::from(throughput(&state.shown().totals));
    fields.extend(syscalls);
    fields
}

/// Losses, the self-overhead panel, then the filter and sort in force.
fn status_line(state: &State) -> Vec<Field> {
    let view = &state.view;
    let filter = view
        .filter
        .as_ref()
        .map_or_else(|| "none".into(), |f| f.describe());
    let mut fields = vec![losses(&state.store.losses)];
    fields.extend(mid_flight(&state.store.losses));
    fields.extend(overhead_fields(state));
    fields.push(Field::new(1, format!("filter {filter}")));
    let sort = format!("sort {}", view.sort.name());
    fields.push(if view.reverse {
        Field::new(1, format!("{sort} (rev)")).short(sort)
    } else {
        Field::new(1, sort)
    });
    if view.split {
        fields.push(Field::new(2, "split v/s"));
    }
    if view.by_cgroup {
        fields.push(Field::new(2, "by cgroup"));
    }
    fields
}

/// Said when the trace began while iocbs were in flight: their completions
/// are not losses, but their records are missing, so the figures start late.
fn mid_flight(l: &LossCounts) -> Option<Field> {
    (l.inflight_at_start > 0).then(|| {
        Field::new(
            2,
            format!("began mid-flight ({} at start)", l.inflight_at_start),
        )
        .short("began mid-flight")
        .style(Style::new().fg(Color::Yellow))
    })
}

/// "lost 0", or in red every counter that lost something.
fn losses(l: &LossCounts) -> Field {
    if l.total() == 0 {
        return Field::new(0, "lost 0");
    }
    Field::new(
        0,
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
    )
    .short(format!("lost {}", l.total()))
    .style(Style::new().fg(Color::Red).bold())
}
