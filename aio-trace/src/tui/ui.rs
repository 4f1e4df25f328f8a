//! Rendering: free functions of the state. Nothing here changes the state or
//! does I/O, so a TestBackend shows exactly what a user sees.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState},
};

use super::{
    hist::Log2Hist,
    replay::fmt_speed,
    state::{ReplayView, State},
    stats::{Stage, Stats, WINDOW_TICKS, end_to_end_ns},
    store::{Kind, RowKey},
    view::Screen,
};

/// Below this width the op mix shows only the dominant op.
const WIDE: u16 = 120;

pub fn render(frame: &mut Frame, state: &State) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(frame, header, state);
    match state.view.screen {
        Screen::Table => render_table(frame, body, state),
        Screen::Detail => render_detail(frame, body, state),
    }
    render_footer(frame, footer, state);
    if state.view.help {
        render_help(frame, frame.area(), state.replay.is_some());
    }
}

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

fn fmt_opt_ns(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".into(), fmt_ns)
}

/// A per-iocb average in 4 columns; "n/a" where no iocb had the thing.
fn fmt_ratio(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn fmt_count(n: f64) -> String {
    if n >= 10_000_000.0 {
        format!("{:.0}M", n / 1e6)
    } else if n >= 100_000.0 {
        format!("{:.0}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn mb(bytes: f64) -> String {
    format!("{:.1}", bytes / 1e6)
}

fn fmt_uptime(d: std::time::Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The first two header lines of a replay: where it stands, and the
/// recording's syscall totals once known.
fn replay_header<'a>(state: &State, replay: &ReplayView) -> (Line<'a>, Line<'a>) {
    let totals = &state.shown().totals;
    let secs = |ns: u64| ns as f64 / 1e9;
    let line1 = Line::from(vec![
        Span::styled("aio-trace top", Style::new().bold()),
        Span::raw(format!(
            "  {}  replay {} {:.1} s / {:.1} s",
            replay.file,
            fmt_speed(replay.speed),
            secs(replay.position_ns),
            secs(replay.duration_ns)
        )),
        if replay.ended {
            Span::styled("  END of recording", Style::new().fg(Color::Green).bold())
        } else if !replay.playing {
            Span::styled("  PAUSED", Style::new().fg(Color::Yellow).bold())
        } else {
            Span::raw("")
        },
    ]);
    let syscalls = match (replay.ended, replay.syscalls) {
        (true, Some(t)) => format!(
            "io_submit calls {}  io_getevents calls {} (totals)",
            t.io_submit_calls, t.io_getevents_calls
        ),
        _ => "io_submit/s n/a  io_getevents/s n/a".into(),
    };
    let line2 = Line::from(format!(
        "iocbs/s {}  MB/s {}  {syscalls}",
        fmt_count(totals.last.iocbs_per_s),
        mb(totals.last.bytes_per_s),
    ));
    (line1, line2)
}

fn render_header(frame: &mut Frame, area: Rect, state: &State) {
    let shown = state.shown();
    let (totals, rates) = (&shown.totals, &shown.rates);
    let epc = rates
        .events_per_getevents
        .map_or_else(|| "-".into(), |e| format!("{e:.2}"));
    let line1 = Line::from(vec![
        Span::styled("aio-trace top", Style::new().bold()),
        Span::raw(format!(
            "  {}  Linux {}  up {}  tracing {}",
            state.host,
            state.kernel,
            fmt_uptime(state.uptime),
            state.trace_filter
        )),
        if state.view.paused {
            Span::styled("  PAUSED", Style::new().fg(Color::Yellow).bold())
        } else {
            Span::raw("")
        },
    ]);
    let line2 = Line::from(format!(
        "iocbs/s {}  MB/s {}  io_submit/s {}  io_getevents/s {}  events/getevents {}",
        fmt_count(totals.last.iocbs_per_s),
        mb(totals.last.bytes_per_s),
        fmt_count(rates.io_submit_per_s),
        fmt_count(rates.io_getevents_per_s),
        epc
    ));
    let l = &state.store.losses;
    let lost_style = if l.total() > 0 {
        Style::new().fg(Color::Red).bold()
    } else {
        Style::new()
    };
    let filter = state
        .view
        .filter
        .as_ref()
        .map_or_else(|| "none".into(), |f| f.describe());
    let line3 = Line::from(vec![
        Span::styled(
            if l.total() == 0 {
                "lost 0".to_string()
            } else {
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
                )
            },
            lost_style,
        ),
        Span::styled(self_overhead(state), Style::new().fg(Color::Cyan)),
        Span::raw(format!(
            "  filter {filter}  sort {}{}{}",
            state.view.sort.name(),
            if state.view.reverse { " (rev)" } else { "" },
            if state.view.split { "  split v/s" } else { "" }
        )),
    ]);
    let (line1, line2) = match &state.replay {
        Some(replay) => replay_header(state, replay),
        None => (line1, line2),
    };
    frame.render_widget(Paragraph::new(vec![line1, line2, line3]), area);
}

/// The self-overhead panel: what tracing costs, live — BPF time per iocb and
/// as a share of one CPU, and this process's CPU and memory.
/// A notice (statistics off, probes not attached) follows it.
fn self_overhead(state: &State) -> String {
    let notice = state
        .notice
        .as_ref()
        .map_or_else(String::new, |n| format!("  {n}"));
    let Some(o) = &state.store.self_overhead else {
        return notice;
    };
    let bpf = match (o.bpf_ns_per_iocb, o.bpf_cpu_pct) {
        (Some(ns), Some(pct)) => format!("BPF {:.1} µs/iocb {pct:.1}%cpu", ns / 1_000.0),
        (None, Some(pct)) => format!("BPF {pct:.1}%cpu"),
        _ => "BPF n/a".into(),
    };
    format!(
        "  self {bpf}, top {:.1}%cpu {} MiB{notice}",
        o.user_cpu_pct,
        o.rss_bytes >> 20
    )
}

fn render_footer(frame: &mut Frame, area: Rect, state: &State) {
    let line = match &state.view.filter_input {
        Some(text) => Line::from(vec![
            Span::styled("filter (pid, comm or op): ", Style::new().bold()),
            Span::raw(format!("{text}_")),
        ]),
        None => Line::from(if state.replay.is_some() {
            "?:help q:quit p:play/pause +/-:speed ↑↓:select Enter:detail e:expand s/S:sort f:filter v:split c:clear"
        } else {
            "?:help q:quit ↑↓:select Enter:detail e:expand s/S:sort f:filter v:split p:pause c:clear"
        })
        .style(Style::new().fg(Color::Black).bg(Color::Gray)),
    };
    frame.render_widget(Paragraph::new(line), area);
}

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
        Some(ctx) => format!(" └{ctx:x}"),
    };
    match key.kind {
        Some(Kind::Vectored) => format!("{base} [vec]"),
        Some(Kind::Scalar) => format!("{base} [scl]"),
        None => base,
    }
}

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

fn render_table(frame: &mut Frame, area: Rect, state: &State) {
    if state.view.rows.is_empty() {
        let text = if state.shown().processes.is_empty() {
            vec![
                Line::from("No AIO seen yet.").bold(),
                Line::from(""),
                Line::from(format!(
                    "Waiting for io_submit/io_getevents from {}.",
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
        return;
    }
    let wide = area.width >= WIDE;
    let header = Row::new([
        "PID", "COMM", "IOCB/s", "MB/s", "OPS", "SEGS", "BIO", "INFL", "P50", "P99", "ERR",
    ])
    .style(Style::new().add_modifier(Modifier::REVERSED));
    let rows = state.view.rows.iter().map(|key| {
        let Some(stats) = state.shown().stats(key) else {
            return Row::new(Vec::<Cell>::new());
        };
        let in_flight = if key.kind.is_some() {
            "-".to_string()
        } else if state.replay.is_some() {
            // The kernel's counters are not in a recording (only totals).
            "n/a".to_string()
        } else {
            state.store.in_flight(key.pid, key.ctx).to_string()
        };
        let errors = Cell::from(stats.errors.to_string()).style(if stats.errors > 0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        });
        Row::new(vec![
            Cell::from(key.pid.to_string()),
            Cell::from(row_label(state, key)),
            Cell::from(fmt_count(stats.last.iocbs_per_s)),
            Cell::from(mb(stats.last.bytes_per_s)),
            Cell::from(op_mix(stats, wide)),
            Cell::from(
                stats
                    .avg_segments()
                    .map_or_else(|| "-".into(), |s| format!("{s:.2}")),
            ),
            Cell::from(fmt_ratio(stats.bios_per_iocb())),
            Cell::from(in_flight),
            Cell::from(fmt_opt_ns(stats.p50_ns)),
            Cell::from(fmt_opt_ns(stats.last.p99_ns)),
            errors,
        ])
    });
    let widths = [
        Constraint::Length(7),
        Constraint::Length(if wide { 24 } else { 12 }),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(if wide { 34 } else { 8 }),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(4),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().bg(Color::Blue).fg(Color::White));
    let mut table_state = TableState::default().with_selected(Some(state.view.selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}

/// One line per log2 bucket (range│bar count), fitting `width` columns; the
/// bar takes what the range and count labels leave, at most `max_bar`.
fn histogram_lines(
    hist: &Log2Hist,
    fmt: fn(u64) -> String,
    width: u16,
    max_bar: usize,
) -> Vec<Line<'static>> {
    let span = hist.span();
    let max = span.iter().map(|&(_, c)| c).max().unwrap_or(0).max(1);
    let ranges: Vec<String> = span
        .iter()
        .map(|&(bucket, _)| {
            let (lo, next) = Log2Hist::bounds(bucket);
            let hi = next.saturating_sub(1).max(lo);
            if hi == lo {
                fmt(lo)
            } else {
                format!("{}-{}", fmt(lo), fmt(hi))
            }
        })
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

/// The stages of the window: p50 and p99 each, their share of the mean
/// latency, and that share as one stacked bar.
fn stage_lines(stats: &Stats, width: u16) -> Vec<Line<'static>> {
    const LABEL: usize = 6;
    const COL: usize = 10;
    let quantiles = Stage::ALL.map(|stage| stats.stage_quantiles(stage));
    let shares = stats.stage_shares();
    let means = stats.stage_means();
    let row = |label: &str, cell: &dyn Fn(usize) -> String| {
        let mut text = format!("{label:<LABEL$}");
        for i in 0..Stage::ALL.len() {
            text.push_str(&format!("{:>COL$}", cell(i)));
        }
        Line::from(text)
    };
    let quantile = |i: usize, q: usize| quantiles[i].map_or_else(|| "n/a".into(), |v| fmt_ns(v[q]));
    let mut share_row = vec![Span::raw(format!("{:<LABEL$}", "share"))];
    for (i, stage) in Stage::ALL.into_iter().enumerate() {
        let (glyph, color) = stage_style(stage);
        let pct = shares[i].map_or_else(|| "-".into(), |s| format!("{:.0}%", s * 100.0));
        share_row.push(Span::raw(" ".repeat(COL - 1 - pct.len())));
        share_row.push(Span::styled(glyph, Style::new().fg(color)));
        share_row.push(Span::raw(pct));
    }
    let mean: f64 = means.iter().flatten().sum();
    let mut bar_row = vec![Span::raw(format!(
        "mean {:<8}",
        if mean > 0.0 {
            fmt_ns(mean as u64)
        } else {
            "n/a".into()
        }
    ))];
    let bar_width = (width as usize)
        .saturating_sub(LABEL + 8)
        .min(LABEL + COL * 5 - 13);
    for (stage, cells) in Stage::ALL.into_iter().zip(bar_cells(&shares, bar_width)) {
        let (glyph, color) = stage_style(stage);
        bar_row.push(Span::styled(glyph.repeat(cells), Style::new().fg(color)));
    }
    vec![
        row("", &|i| Stage::ALL[i].name().to_string()),
        row("p50", &|i| quantile(i, 0)),
        row("p99", &|i| quantile(i, 1)),
        Line::from(share_row),
        Line::from(bar_row),
    ]
}

fn plain(n: u64) -> String {
    n.to_string()
}

fn render_detail(frame: &mut Frame, area: Rect, state: &State) {
    let Some(key) = state.view.selected_row() else {
        return;
    };
    let Some(group) = state.shown().group(&key) else {
        return;
    };
    let stats = group.stats(key.kind);
    let title = format!(
        " {} {}{}{} — Esc to go back ",
        key.pid,
        state.shown().comm(key.pid),
        key.ctx.map_or_else(String::new, |c| format!(" ctx {c:x}")),
        key.kind
            .map_or_else(String::new, |k| format!(" ({})", k.name())),
    );
    let outer = Block::new().borders(Borders::TOP).title(title.bold());
    let inner = outer.inner(area);
    frame.render_widget(outer, area);

    // At 80×24 the histograms, the stages and vectored vs scalar fill the
    // screen; the charts and the recent iocbs come with more rows.
    let height = inner.height;
    let tall = height >= 30;
    let [top, stages_area, middle, charts, recent] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(7),
        Constraint::Length(if tall { 7 } else { 6 }),
        Constraint::Length(if height >= 25 { 4 } else { 0 }),
        if tall {
            Constraint::Percentage(25)
        } else {
            Constraint::Length(0)
        },
    ])
    .areas(inner);
    let [lat_area, hist_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);

    let q = |q| fmt_opt_ns(stats.quantile(q));
    let mut lat = vec![Line::from(format!(
        "p50 {} p90 {} p99 {} p99.9 {} max {}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        fmt_opt_ns((!stats.latency.is_empty()).then(|| stats.latency.max()))
    ))];
    lat.extend(histogram_lines(
        &stats.latency_log2,
        fmt_ns,
        lat_area.width.saturating_sub(2),
        20,
    ));
    let lat_title = if stats.ring_reaped > 0 {
        format!(
            "latency submit→reap, {} ring-reaped →complete",
            stats.ring_reaped
        )
    } else {
        "latency (submit→reap)".into()
    };
    frame.render_widget(
        Paragraph::new(lat).block(Block::bordered().title(lat_title)),
        lat_area,
    );

    let hist_block = Block::bordered().title("segments │ bios per iocb");
    let [seg_area, bio_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .spacing(1)
            .areas(hist_block.inner(hist_area));
    frame.render_widget(hist_block, hist_area);
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

    frame.render_widget(
        Paragraph::new(stage_lines(stats, stages_area.width.saturating_sub(2))).block(
            Block::bordered().title(format!(
                "latency by stage, last {WINDOW_TICKS} intervals (n/a: no iocb had it)"
            )),
        ),
        stages_area,
    );

    let [vec_area, scl_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    for (kind, area) in [(Kind::Vectored, vec_area), (Kind::Scalar, scl_area)] {
        let s = &group.split[kind as usize];
        let text = vec![
            Line::from(format!(
                "iocbs {}  {}/s  MB/s {}  err {}",
                s.iocbs,
                fmt_count(s.last.iocbs_per_s),
                mb(s.last.bytes_per_s),
                s.errors
            )),
            Line::from(format!(
                "segs/iocb {}  bios/iocb {}",
                s.avg_segments()
                    .map_or_else(|| "-".into(), |v| format!("{v:.2}")),
                fmt_ratio(s.bios_per_iocb()),
            )),
            Line::from(format!(
                "p50 {}  p99 {}  (window)",
                fmt_opt_ns(s.p50_ns),
                fmt_opt_ns(s.last.p99_ns)
            )),
            Line::from(format!(
                "p50 {}  p99 {}  (all)",
                fmt_opt_ns(s.quantile(0.5)),
                fmt_opt_ns(s.quantile(0.99))
            )),
            Line::from(format!("splits {}  merges {}", s.splits, s.merges)),
        ];
        frame.render_widget(
            Paragraph::new(text).block(Block::bordered().title(kind.name())),
            area,
        );
    }

    let [tp_area, p99_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let width = tp_area.width.saturating_sub(2) as usize;
    let tail = |f: fn(&super::stats::Sample) -> u64| -> Vec<u64> {
        let skip = stats.history.len().saturating_sub(width);
        stats.history.iter().skip(skip).map(f).collect()
    };
    let throughput = tail(|s| s.bytes_per_s as u64);
    let p99 = tail(|s| s.p99_ns.unwrap_or(0));
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(format!("MB/s {}", mb(stats.last.bytes_per_s))))
            .data(&throughput)
            .style(Style::new().fg(Color::Green)),
        tp_area,
    );
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(format!("p99 {}", fmt_opt_ns(stats.last.p99_ns))))
            .data(&p99)
            .style(Style::new().fg(Color::Yellow)),
        p99_area,
    );

    let header = Row::new([
        "OP", "FD", "OFFSET", "SEGS", "BIOS", "BYTES", "RES", "LAT", "DEVICE",
    ])
    .style(Style::new().add_modifier(Modifier::REVERSED));
    let rows = group.recent.iter().rev().map(|r| {
        use crate::model::IocbView as _;
        let block = r.dispatches > 0 || r.bios > 0;
        Row::new([
            r.op().name().to_string(),
            r.fd.to_string(),
            r.offset.to_string(),
            r.segs.to_string(),
            if block {
                r.bios.to_string()
            } else {
                "-".into()
            },
            r.requested_bytes()
                .map_or_else(|| "-".into(), |b| b.to_string()),
            r.result().map_or_else(|| "-".into(), |b| b.to_string()),
            match end_to_end_ns(r) {
                Some((ns, true)) => format!("{}*", fmt_ns(ns)),
                Some((ns, false)) => fmt_ns(ns),
                None => "-".into(),
            },
            r.device().map_or_else(|| "-".into(), |d| d.to_string()),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(12),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(8),
    ];
    frame.render_widget(
        Table::new(rows, widths).header(header).block(
            Block::new()
                .borders(Borders::TOP)
                .title("most recent iocbs (LAT*: reaped from the ring, to kernel completion)"),
        ),
        recent,
    );
}

pub const KEYS: [(&str, &str); 14] = [
    ("↑/↓ j/k", "select a row"),
    ("Enter", "detail of the selected row"),
    ("Esc", "back to the table / close help"),
    ("e →/←", "expand/collapse a process's AIO contexts"),
    ("s", "cycle the sort column"),
    ("S", "reverse the sort"),
    ("f /", "filter: a pid, an op (preadv…) or part of a comm"),
    ("", "(Enter applies, empty clears, Esc cancels)"),
    ("v", "split rows: vectored / scalar"),
    ("p space", "pause the display (the trace keeps counting)"),
    ("c", "clear the statistics"),
    ("?", "this help"),
    ("q Ctrl-C", "quit"),
    ("", "BIO, stages: n/a where no iocb reached the block layer"),
];

/// The keys of `top --replay` that differ from live.
pub const REPLAY_KEYS: [(&str, &str); 2] = [
    ("p space", "play/pause the replay"),
    ("+/- >/<", "double/halve the replay speed"),
];

fn render_help(frame: &mut Frame, area: Rect, replay: bool) {
    let keys: Vec<(&str, &str)> = KEYS
        .iter()
        .flat_map(|&(key, what)| match (replay, key) {
            (true, "p space") => REPLAY_KEYS.to_vec(),
            _ => vec![(key, what)],
        })
        .collect();
    let width = 64.min(area.width);
    let height = (keys.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = keys
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:>9}  "), Style::new().bold()),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::tui::state::tests::{sample_state, ticked};

    fn draw(state: &State, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, state)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..height {
            for x in 0..width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn fixed(mut s: State) -> State {
        s.uptime = std::time::Duration::from_secs(75);
        s
    }

    /// A process that reaps from the AIO ring in user memory (no reap time,
    /// so no reap lag) and also does buffered reads (no stage at all).
    fn ring_and_buffered() -> State {
        use aio_trace_common::{IOCB_CMD_PREAD, IocbRecord};

        use crate::tui::stats::tests::{iocb, staged};
        let mut s = State::new("testhost", "6.18.0");
        for _ in 0..6 {
            let r = staged(
                iocb(300, 0xd, IOCB_CMD_PREAD, 1, 80_000),
                1,
                [2_000, 1_000, 70_000, 2_000],
            );
            s.record(&IocbRecord { reap_ns: 0, ..r });
        }
        for _ in 0..4 {
            s.record(&iocb(300, 0xd, IOCB_CMD_PREAD, 1, 9_000));
        }
        s
    }

    #[test]
    fn replay_snapshots() {
        let mut playing = fixed(ticked(sample_state()));
        playing.replay = Some(ReplayView {
            file: "fio.jsonl".into(),
            speed: 2.0,
            position_ns: 12_300_000_000,
            duration_ns: 40_000_000_000,
            playing: true,
            ended: false,
            syscalls: Some(crate::tui::replay::SyscallTotals {
                io_submit_calls: 1200,
                io_getevents_calls: 800,
                iocbs_submitted: 4000,
                events_reaped: 4000,
            }),
        });
        let mut ended = playing.clone();
        if let Some(r) = &mut ended.replay {
            r.position_ns = r.duration_ns;
            r.ended = true;
        }
        let mut help = playing.clone();
        help.view.help = true;
        for (name, state) in [
            ("replay", &playing),
            ("replay_end", &ended),
            ("replay_help", &help),
        ] {
            insta::assert_snapshot!(format!("{name}_80x24"), draw(state, 80, 24));
        }
    }

    #[test]
    fn the_header_shows_what_tracing_costs() {
        let mut s = fixed(ticked(sample_state()));
        s.store.self_overhead = Some(crate::model::SelfOverhead {
            bpf_ns_per_iocb: Some(3_700.0),
            bpf_cpu_pct: Some(4.04),
            user_cpu_pct: 2.26,
            rss_bytes: 41 << 20,
        });
        let screen = draw(&s, 160, 48);
        assert!(
            screen
                .contains("lost 0  self BPF 3.7 µs/iocb 4.0%cpu, top 2.3%cpu 41 MiB  filter none"),
            "{screen}"
        );
        // A notice follows the figures rather than hiding them: a probe not
        // attached does not make the cost unknown.
        s.notice = Some("not attached (snoop says why): iomap_dio_complete".into());
        assert!(
            draw(&s, 160, 48)
                .contains("top 2.3%cpu 41 MiB  not attached (snoop says why): iomap_dio_complete")
        );
        s.store.self_overhead = None;
        s.notice = Some("self-overhead off: no BPF statistics".into());
        assert!(draw(&s, 160, 48).contains("lost 0  self-overhead off: no BPF statistics"));
    }

    #[test]
    fn formats_latencies() {
        assert_eq!(fmt_ns(850), "850ns");
        assert_eq!(fmt_ns(1_500), "1.5us");
        assert_eq!(fmt_ns(120_000), "120us");
        assert_eq!(fmt_ns(2_500_000), "2.5ms");
        assert_eq!(fmt_ns(3_000_000_000), "3.0s");
    }

    #[test]
    fn snapshots() {
        let table = fixed(ticked(sample_state()));
        let mut split = table.clone();
        split.view.toggle_split(&split.store);
        let mut detail = table.clone();
        detail.view.enter();
        let mut help = table.clone();
        help.view.help = true;
        let empty = fixed(ticked(State::new("testhost", "6.18.0")));
        let ring = fixed(ticked(ring_and_buffered()));
        let mut ring_detail = ring.clone();
        ring_detail.view.enter();
        for (name, state) in [
            ("table", &table),
            ("split", &split),
            ("detail", &detail),
            ("help", &help),
            ("empty", &empty),
            ("ring_detail", &ring_detail),
        ] {
            for (w, h) in [(80, 24), (160, 48)] {
                insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(state, w, h));
            }
        }
    }
}
