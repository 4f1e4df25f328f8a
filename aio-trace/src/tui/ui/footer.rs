//! The footer: the filter being typed, or the keys in one line.
//!
//! Layer: reads the view (and whether this is a replay); draws this area.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style, Stylize},
    text::{Line, Span},
    widgets::Paragraph,
};

use crate::tui::state::State;

pub(super) fn render_footer(frame: &mut Frame, area: Rect, state: &State) {
    let line = match &state.view.filter_input {
        Some(text) => Line::from(vec![
            Span::styled("filter (pid, comm or op): ", Style::new().bold()),
            Span::raw(format!("{text}_")),
        ]),
        None => Line::from(if state.replay.is_some() {
            "?:help q:quit p:play/pause +/-:speed ↑↓:select Enter:detail e:expand s/S:sort f:filter v:split c:clear g:cgroup"
        } else {
            "?:help q:quit ↑↓:select Enter:detail e:expand s/S:sort f:filter v:split p:pause c:clear g:cgroup t:tier"
        })
        .style(Style::new().fg(Color::Black).bg(Color::Gray)),
    };
    frame.render_widget(Paragraph::new(line), area);
}
