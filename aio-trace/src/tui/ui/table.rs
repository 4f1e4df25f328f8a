//! The table of processes (and expanded contexts, split kinds): one row per
//! key of the view, or a hint while there is none.
//!
//! Layer: reads the view's rows and the shown aggregates; draws this area.

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style, Stylize},
    text::Line,
    widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState},
};

use super::format::{fmt_count, fmt_opt_ns, fmt_ratio, fmt_segments, mb};
use crate::{
    cgroup::short_name,
    model::Api,
    tui::{
        state::State,
        stats::Stats,
        store::{Ctx, Kind, RowKey},
    },
};

/// Below this width the op mix shows only the dominant op.
const WIDE: u16 = 120;

pub(super) fn render_table(frame: &mut Frame, area: Rect, state: &State) {
    if state.view.rows.is_empty() {
        return render_empty(frame, area, state);
    }
    let wide = area.width >= WIDE;
    let (who, name) = if state.view.by_cgroup {
        ("PROCS", "CGROUP")
    } else {
        ("PID", "COMM")
    };
    let header = column_header([
        who, name, "IOCB/s", "MB/s", "OPS", "SEGS", "BIO", "INFL", "P50", "P99", "ERR",
    ]);
    let rows = state.view.rows.iter().map(|key| row(state, key, wide));
    let widths = [
        7,
        if wide { 24 } else { 12 },
        7,
        6,
        if wide { 34 } else { 8 },
        5,
        4,
        5,
        6,
        6,
        4,
    ]
    .map(Constraint::Length);
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().bg(Color::Blue).fg(Color::White));
    let mut table_state = TableState::default().with_selected(Some(state.view.selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}

/// A table's column names, in reverse video.
pub(super) fn column_header<const N: usize>(names: [&'static str; N]) -> Row<'static> {
    Row::new(names).style(Style::new().add_modifier(Modifier::REVERSED))
}

/// Nothing seen yet, or nothing the filter admits: say which, and what to do.
fn render_empty(frame: &mut Frame, area: Rect, state: &State) {
    let text = if state.shown().processes.is_empty() {
        vec![
            Line::from("No AIO or io_uring seen yet.").bold(),
            Line::from(""),
            Line::from(format!(
                "Waiting for AIO iocbs or io_uring requests from {}.",
                state.trace_filter
            )),
            Line::from("Try: aio-trace top --workload   (? for help, q to quit)"),
        ]
    } else {
        vec![Line::from(
            "No process matches the filter (f to change it).",
        )]
    };
    frame.render_widget(
        Paragraph::new(text).block(Block::new().borders(Borders::TOP)),
        area,
    );
}

fn row<'a>(state: &State, key: &RowKey, wide: bool) -> Row<'a> {
    let Some(stats) = state.shown().stats(key) else {
        return Row::new(Vec::<Cell>::new());
    };
    let errors = Cell::from(stats.errors.to_string()).style(if stats.errors > 0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    });
    let (who, label) = match key.cgroup {
        Some(cgroup) => (
            cgroup_processes(state, cgroup).to_string(),
            cgroup_label(state, cgroup, key.kind),
        ),
        None => (key.pid.to_string(), row_label(state, key)),
    };
    Row::new(vec![
        Cell::from(who),
        Cell::from(label),
        Cell::from(fmt_count(stats.last.iocbs_per_s)),
        Cell::from(mb(stats.last.bytes_per_s)),
        Cell::from(op_mix(stats, wide)),
        Cell::from(fmt_segments(stats.avg_segments())),
        Cell::from(fmt_ratio(stats.bios_per_iocb())),
        Cell::from(in_flight(state, key)),
        Cell::from(fmt_opt_ns(stats.p50_ns)),
        Cell::from(fmt_opt_ns(stats.last.p99_ns)),
        errors,
    ])
}

fn in_flight(state: &State, key: &RowKey) -> String {
    if !key.has_in_flight() {
        "-".to_string()
    } else if state.replay.is_some() {
        // The kernel's counters are not in a recording (only totals).
        "n/a".to_string()
    } else {
        state
            .store
            .in_flight(key.pid, key.ctx.map(|c| c.id))
            .to_string()
    }
}

/// How many of the shown processes last submitted from `cgroup`.
fn cgroup_processes(state: &State, cgroup: u64) -> usize {
    state
        .shown()
        .processes
        .values()
        .filter(|p| p.cgroup == cgroup)
        .count()
}

/// A cgroup by what identifies a container or service: the last component
/// of its path (`docker-3f2a….scope`, `mariadb.service`), its id while the
/// path is unknown, `-` for iocbs without one; with the kind of a split row.
fn cgroup_label(state: &State, cgroup: u64, kind: Option<Kind>) -> String {
    let base = state
        .names
        .cgroup(cgroup)
        .map_or_else(|| "-".to_string(), |path| short_name(&path).to_string());
    with_kind(base, kind)
}

fn with_kind(base: String, kind: Option<Kind>) -> String {
    match kind {
        Some(Kind::Vectored) => format!("{base} [vec]"),
        Some(Kind::Scalar) => format!("{base} [scl]"),
        None => base,
    }
}

/// `+comm`/`-comm` for a process (collapsed/expanded), ` └ctx` for an AIO
/// context, ` └ring ctx` for an io_uring ring, ` └sync` for a replayed
/// recording's syscalls, with the kind of a split row.
fn row_label(state: &State, key: &RowKey) -> String {
    let comm = state.shown().comm(key.pid);
    let base = match key.ctx {
        None => {
            let mark = if state.view.expanded.contains(&key.pid) {
                "-"
            } else {
                "+"
            };
            format!("{mark}{comm}")
        }
        Some(Ctx { api, id }) => match api {
            Api::Aio => format!(" └{id:x}"),
            Api::IoUring => format!(" └ring {id:x}"),
            Api::Sync => " └sync".to_string(),
        },
    };
    with_kind(base, key.kind)
}

/// Wide: every op with its share; narrow: the dominant op, starred when
/// others are mixed in.
fn op_mix(stats: &Stats, wide: bool) -> String {
    if wide {
        stats
            .mix()
            .iter()
            .map(|(op, share)| format!("{} {:.0}%", op.name(), share * 100.0))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        stats.dominant_op().map_or_else(String::new, |(op, share)| {
            if share < 0.995 {
                format!("{}*", op.name())
            } else {
                op.name().into()
            }
        })
    }
}
