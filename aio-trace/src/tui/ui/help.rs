//! The help popup: the keys, centred over whatever is on screen.
//!
//! Layer: static text; knows only whether this is a replay.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph},
};

pub const KEYS: [(&str, &str); 16] = [
    ("↑/↓ j/k", "select a row"),
    ("Enter", "detail of the selected row"),
    ("Esc", "back to the table / close help"),
    ("e →/←", "expand/collapse a process's contexts and rings"),
    ("s", "cycle the sort column"),
    ("S", "reverse the sort"),
    ("f /", "filter: pid, op (preadv…), api (io_uring) or comm"),
    ("", "(Enter applies, empty clears, Esc cancels)"),
    ("v", "split rows: vectored / scalar"),
    ("g", "group rows by cgroup (container, service)"),
    ("t", "light / full tier (a trace started light)"),
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

/// The keys of this mode: a replay's play/pause and speed replace pause.
fn keys(replay: bool) -> Vec<(&'static str, &'static str)> {
    KEYS.iter()
        .flat_map(|&(key, what)| match (replay, key) {
            (true, "p space") => REPLAY_KEYS.to_vec(),
            _ => vec![(key, what)],
        })
        .collect()
}

/// A `width` × `height` rectangle in the middle of `area` (clipped to it).
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

pub(super) fn render_help(frame: &mut Frame, area: Rect, replay: bool) {
    let keys = keys(replay);
    let popup = centred(area, 64, keys.len() as u16 + 2);
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
