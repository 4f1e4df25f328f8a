//! Views of the trace: snoop lines (text or JSON) and the exit summary.

mod json;
mod text;

pub use json::{IocbJson, JsonSnoop, write_json_summary};
pub use text::{TextSnoop, write_text_summary};
