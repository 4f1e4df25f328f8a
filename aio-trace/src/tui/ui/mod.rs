//! Rendering of `top`: free functions of the state, one module per panel.
//! Nothing here changes the state or does I/O, so a TestBackend shows exactly
//! what a user sees.
//!
//! Layer: reads the state (its store and view) and the stats; never writes
//! them and never touches the kernel. This module lays out the screen and
//! hands each area to its panel.

mod detail;
mod field;
mod footer;
pub(crate) mod format;
mod header;
mod help;
mod histogram;
mod overhead;
mod recent;
mod stages;
mod table;
#[cfg(test)]
mod tests;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
};

pub use self::{
    format::fmt_ns,
    help::{KEYS, REPLAY_KEYS},
};
use super::{state::State, view::Screen};

pub fn render(frame: &mut Frame, state: &State) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::render_header(frame, header, state);
    match state.view.screen {
        Screen::Table => table::render_table(frame, body, state),
        Screen::Detail => detail::render_detail(frame, body, state),
    }
    footer::render_footer(frame, footer, state);
    if state.view.help {
        help::render_help(frame, frame.area(), state.replay.is_some());
    }
}

/// Two side-by-side halves of `area`.
fn halves(area: Rect) -> [Rect; 2] {
    Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area)
}
