//! `aio-trace report`: offline analysis of a JSONL or CSV recording.
//! `parse` turns lines into rows (or a clear error naming the line),
//! `stats` aggregates them, `render` prints the tables.
//!
//! Layer: views. Imports `blockdev` (device names), `model`, `reader` and `export` (the header and
//! format version it checks); needs neither root nor the kernel.

mod parse;
mod render;
mod stats;

pub use parse::{
    BadLine, IocbRow, LossRow, MAX_LINE, ReadInfo, ReportError, Row, SummaryRow, read, read_file,
};
pub use render::render_text;
pub use stats::{By, Report, Stats};

#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;
