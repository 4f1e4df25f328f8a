//! A header field and the fitting of a line of them into a width: each field
//! shown whole (in its short form when the full one does not fit) or not at
//! all, the most important kept longest, in their order on the line.
//!
//! Layer: ratatui text only; the header and overhead panels build fields.

use ratatui::{
    style::Style,
    text::{Line, Span},
};

/// What separates two fields.
const GAP: &str = "  ";

/// One header field: shown whole, in its short form, or not at all.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Field {
    /// 0 is kept longest; fields of equal priority are kept left first.
    pub priority: u8,
    pub full: String,
    /// Some of the full form's words, for when the full form does not fit.
    pub short: Option<String>,
    pub style: Style,
}

impl Field {
    pub fn new(priority: u8, full: impl Into<String>) -> Self {
        Self {
            priority,
            full: full.into(),
            short: None,
            style: Style::new(),
        }
    }

    pub fn short(mut self, short: impl Into<String>) -> Self {
        self.short = Some(short.into());
        self
    }

    pub fn style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
}

/// The fields that fit in `width` columns, in their order on the line: by
/// priority, as many as fit in their short forms, then by priority again
/// each in its full form where the room left allows.
pub(super) fn fit(fields: &[Field], width: usize) -> Line<'static> {
    let cols = |s: &str| Span::raw(s).width();
    let mut chosen: Vec<Option<&str>> = vec![None; fields.len()];
    let mut order: Vec<usize> = (0..fields.len()).collect();
    order.sort_by_key(|&i| fields[i].priority);
    let mut used = 0;
    for &i in &order {
        let text = fields[i].short.as_deref().unwrap_or(&fields[i].full);
        let gap = if chosen.iter().any(Option::is_some) {
            GAP.len()
        } else {
            0
        };
        if used + gap + cols(text) <= width {
            used += gap + cols(text);
            chosen[i] = Some(text);
        }
    }
    for &i in &order {
        let Some(short) = chosen[i] else { continue };
        let full = fields[i].full.as_str();
        if used - cols(short) + cols(full) <= width {
            used = used - cols(short) + cols(full);
            chosen[i] = Some(full);
        }
    }
    let mut spans = Vec::new();
    for (field, text) in fields.iter().zip(chosen) {
        let Some(text) = text else { continue };
        if !spans.is_empty() {
            spans.push(Span::raw(GAP));
        }
        spans.push(Span::styled(text.to_owned(), field.style));
    }
    Line::from(spans)
}
