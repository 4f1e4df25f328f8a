//! The detail view of one row: latency and size histograms, latency by
//! stage, vectored against scalar, time charts and the most recent iocbs.
//!
//! Layer: reads the view's selected row and the shown aggregates; lays out
//! its panels and draws them.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Style, Stylize},
    text::Line,
    widgets::{Block, Borders, Paragraph, Sparkline},
};

use super::{
    format::{fmt_count, fmt_ns, fmt_opt_ns, fmt_ratio, fmt_sample, fmt_segments, mb, plain},
    halves,
    histogram::histogram_lines,
    recent::render_recent,
    stages::render_stages,
};
use crate::{
    model::{Api, DevName},
    tui::{
        state::State,
        stats::{Sample, Stats},
        store::{Ctx, Group, Kind, RowKey},
    },
};

pub(super) fn render_detail(frame: &mut Frame, area: Rect, state: &State) {
    let Some(key) = state.view.selected_row() else {
        return;
    };
    let Some(group) = state.shown().group(&key) else {
        return;
    };
    let stats = group.stats(key.kind);
    let outer = Block::new()
        .borders(Borders::TOP)
        .title(title(state, &key).bold());
    let inner = outer.inner(area);
    frame.render_widget(outer, area);

    let [top, stages, kinds, devices, charts, recent] = layout(inner, group.devices.len());
    let [latency, sizes] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
    let sampled = state.store.sample_every > 1 && state.replay.is_none();
    render_latency(frame, latency, stats, sampled);
    render_sizes(frame, sizes, stats);
    render_stages(frame, stages, stats);
    render_kinds(frame, kinds, group, sampled);
    render_devices(frame, devices, state, group);
    render_charts(frame, charts, stats);
    render_recent(frame, recent, group);
}

/// pid, comm, and the context and kind when the row is one; the process's
/// cgroup when its records carry one. A cgroup's row: its path.
fn title(state: &State, key: &RowKey) -> String {
    let shown = state.shown();
    if let Some(cgroup) = key.cgroup {
        let path = state.names.cgroup(cgroup).unwrap_or_else(|| "-".into());
        let kind = key
            .kind
            .map_or_else(String::new, |k| format!(" ({})", k.name()));
        return format!(" cgroup {path}{kind} — Esc to go back ");
    }
    let cgroup = shown
        .processes
        .get(&key.pid)
        .and_then(|p| state.names.cgroup(p.cgroup))
        .map_or_else(String::new, |path| format!(" in {path}"));
    format!(
        " {} {}{}{}{cgroup} — Esc to go back ",
        key.pid,
        shown.comm(key.pid),
        key.ctx
            .map_or_else(String::new, |Ctx { api, id }| match api {
                Api::Aio => format!(" ctx {id:x}"),
                Api::IoUring => format!(" io_uring ring {id:x}"),
                Api::Sync => " syscalls".to_string(),
            }),
        key.kind
            .map_or_else(String::new, |k| format!(" ({})", k.name())),
    )
}

/// At 80×24 the histograms, the stages and vectored vs scalar fill the
/// screen; the devices (a row each, up to four), the charts and the recent
/// iocbs come with more rows.
fn layout(inner: Rect, devices: usize) -> [Rect; 6] {
    let height = inner.height;
    let tall = height >= 30;
    let device_rows = if devices == 0 || height < 25 {
        0
    } else {
        devices.min(4) as u16 + 3
    };
    Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(7),
        Constraint::Length(if tall { 7 } else { 6 }),
        Constraint::Length(device_rows),
        Constraint::Length(if height >= 25 { 4 } else { 0 }),
        if tall {
            Constraint::Percentage(25)
        } else {
            Constraint::Length(0)
        },
    ])
    .areas(inner)
}

/// Quantiles since the last clear, over the log2 latency histogram.
/// In the light tier they are a sample's, and say its size.
fn render_latency(frame: &mut Frame, area: Rect, stats: &Stats, sampled: bool) {
    let q = |q| fmt_opt_ns(stats.quantile(q));
    let mut lines = vec![Line::from(format!(
        "p50 {} p90 {} p99 {} p99.9 {} max {}{}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        fmt_opt_ns((!stats.latency.is_empty()).then(|| stats.latency.max())),
        fmt_sample(sampled, stats.latency.len()),
    ))];
    lines.extend(histogram_lines(
        &stats.latency_log2,
        fmt_ns,
        area.width.saturating_sub(2),
        20,
    ));
    let title = if stats.ring_reaped > 0 {
        format!(
            "latency submit→reap, {} ring-reaped →complete",
            stats.ring_reaped
        )
    } else {
        "latency (submit→reap)".into()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

/// Segments and bios per iocb side by side, with splits and merges.
fn render_sizes(frame: &mut Frame, area: Rect, stats: &Stats) {
    let block = Block::bordered().title("segments │ bios per iocb");
    let [seg_area, bio_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .spacing(1)
            .areas(block.inner(area));
    frame.render_widget(block, area);
    frame.render_widget(
        Paragraph::new(histogram_lines(&stats.segments, plain, seg_area.width, 12)),
        seg_area,
    );
    let mut bios = if stats.block_iocbs == 0 {
        vec![Line::from("n/a"), Line::from("(no dispatch)")]
    } else {
        histogram_lines(&stats.bios, plain, bio_area.width, 12)
    };
    bios.push(Line::from(format!("splits {}", stats.splits)));
    bios.push(Line::from(format!("merges {}", stats.merges)));
    frame.render_widget(Paragraph::new(bios), bio_area);
}

/// Vectored and scalar iocbs of the group side by side.
fn render_kinds(frame: &mut Frame, area: Rect, group: &Group, sampled: bool) {
    for (kind, area) in [Kind::Vectored, Kind::Scalar].into_iter().zip(halves(area)) {
        frame.render_widget(
            Paragraph::new(kind_lines(&group.split[kind as usize], sampled))
                .block(Block::bordered().title(kind.name())),
            area,
        );
    }
}

fn kind_lines(s: &Stats, sampled: bool) -> Vec<Line<'static>> {
    vec![
        Line::from(format!(
            "iocbs {}  {}/s  MB/s {}  err {}",
            s.iocbs,
            fmt_count(s.last.iocbs_per_s),
            mb(s.last.bytes_per_s),
            s.errors
        )),
        Line::from(format!(
            "segs/iocb {}  bios/iocb {}",
            fmt_segments(s.avg_segments()),
            fmt_ratio(s.bios_per_iocb()),
        )),
        Line::from(format!(
            "p50 {}  p99 {}  (window){}",
            fmt_opt_ns(s.p50_ns),
            fmt_opt_ns(s.last.p99_ns),
            fmt_sample(sampled, s.window_len()),
        )),
        Line::from(format!(
            "p50 {}  p99 {}  (all)",
            fmt_opt_ns(s.quantile(0.5)),
            fmt_opt_ns(s.quantile(0.99))
        )),
        Line::from(format!("splits {}  merges {}", s.splits, s.merges)),
    ]
}

/// The devices the group's iocbs went to: the name users know (`vda`)
/// beside maj:min, with iocbs, bios, bytes and mean latency, busiest first.
fn render_devices(frame: &mut Frame, area: Rect, state: &State, group: &Group) {
    if area.height == 0 {
        return;
    }
    let mut devices: Vec<_> = group.devices.iter().collect();
    devices.sort_by(|a, b| b.1.iocbs.cmp(&a.1.iocbs).then(a.0.cmp(b.0)));
    let mut lines = vec![
        Line::from(format!(
            "{:<12} {:>9} {:>8} {:>8} {:>10} {:>9}",
            "DEVICE", "MAJ:MIN", "IOCBS", "BIOS", "MB", "AVG LAT"
        ))
        .bold(),
    ];
    lines.extend(devices.iter().map(|&(&dev, share)| {
        Line::from(format!(
            "{:<12} {:>9} {:>8} {:>8} {:>10} {:>9}",
            state.names.device(dev),
            DevName(dev).to_string(),
            share.iocbs,
            share.bios,
            format!("{:.1}", share.bytes as f64 / 1e6),
            fmt_opt_ns(share.avg_latency_ns()),
        ))
    }));
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("devices")),
        area,
    );
}

/// Throughput and p99 over the last ticks, as many as the charts are wide.
fn render_charts(frame: &mut Frame, area: Rect, stats: &Stats) {
    let [tp_area, p99_area] = halves(area);
    let width = tp_area.width.saturating_sub(2) as usize;
    let tail = |f: fn(&Sample) -> u64| -> Vec<u64> {
        let skip = stats.history.len().saturating_sub(width);
        stats.history.iter().skip(skip).map(f).collect()
    };
    let throughput = format!("MB/s {}", mb(stats.last.bytes_per_s));
    let p99 = format!("p99 {}", fmt_opt_ns(stats.last.p99_ns));
    let tp_data = tail(|s| s.bytes_per_s as u64);
    let p99_data = tail(|s| s.p99_ns.unwrap_or(0));
    frame.render_widget(chart(throughput, &tp_data, Color::Green), tp_area);
    frame.render_widget(chart(p99, &p99_data, Color::Yellow), p99_area);
}

fn chart(title: String, data: &[u64], color: Color) -> Sparkline<'_> {
    Sparkline::default()
        .block(Block::bordered().title(title))
        .data(data)
        .style(Style::new().fg(color))
}
