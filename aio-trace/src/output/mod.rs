//! Views of the trace: snoop lines (text or JSON) and the exit summary.
//!
//! Layer: views. Imports `model`, `reader` and `session` (the `Sink` trait).

mod fast_json;
mod json;
mod text;

pub use crate::model::IocbJson;
pub use json::{JsonSnoop, write_iocb_line, write_json_summary};
pub use text::{TextSnoop, write_text_summary};
