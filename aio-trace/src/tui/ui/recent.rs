//! The most recent iocbs of the detail view's process or context, newest
//! first.
//!
//! Layer: reads a group's recent records; draws this area.

use aio_trace_common::IocbRecord;
use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    widgets::{Block, Borders, Row, Table},
};

use super::{format::fmt_ns, table::column_header};
use crate::{
    model::IocbView as _,
    tui::{stats::end_to_end_ns, store::Group},
};

pub(super) fn render_recent(frame: &mut Frame, area: Rect, group: &Group) {
    let header = column_header([
        "OP", "FD", "OFFSET", "SEGS", "BIOS", "BYTES", "RES", "LAT", "DEVICE",
    ]);
    let rows = group.recent.iter().rev().map(recent_row);
    let widths = [8, 4, 12, 5, 5, 9, 9, 7, 8].map(Constraint::Length);
    frame.render_widget(
        Table::new(rows, widths).header(header).block(
            Block::new()
                .borders(Borders::TOP)
                .title("most recent iocbs (LAT*: reaped from the ring, to kernel completion)"),
        ),
        area,
    );
}

/// "-" where the iocb has no such value (no block layer, not reaped).
fn recent_row(r: &IocbRecord) -> Row<'static> {
    let dash = || "-".to_string();
    let block = r.dispatches > 0 || r.bios > 0;
    Row::new([
        r.op().name().to_string(),
        r.fd.to_string(),
        r.offset.to_string(),
        r.segs.to_string(),
        if block { r.bios.to_string() } else { dash() },
        r.requested_bytes().map_or_else(dash, |b| b.to_string()),
        r.result().map_or_else(dash, |b| b.to_string()),
        match end_to_end_ns(r) {
            Some((ns, true)) => format!("{}*", fmt_ns(ns)),
            Some((ns, false)) => fmt_ns(ns),
            None => dash(),
        },
        r.device().map_or_else(dash, |d| d.to_string()),
    ])
}
