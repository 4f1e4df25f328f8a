//! `top --replay`'s loader: the report's reader, then the rows turned back
//! into records, sorted and paced. `cargo xtask fuzz`.
#![no_main]

use aio_trace::{
    report::read,
    tui::replay::{Recording, due},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rows = Vec::new();
    if read(data, "fuzz", false, &mut |row| rows.push(row)).is_err() {
        return;
    }
    let mut recording = Recording::from_rows(rows);
    let end = recording.duration_ns();
    let _ = due(&recording.offsets, end / 2);
    recording.retain(|r| r.pid % 2 == 0);
    let _ = recording.duration_ns();
});
