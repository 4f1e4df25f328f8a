//! `aio-trace report`'s reader (JSONL, CSV, and the sniffing that refuses
//! compressed, binary and Perfetto files) and its aggregation on arbitrary
//! bytes: an error or a report, never a panic. `cargo xtask fuzz`.
#![no_main]

use aio_trace::report::{By, Stats, read};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (skip_bad, by) in [(false, By::File), (true, By::Op)] {
        let mut stats = Stats::new(by);
        if let Ok(info) = read(data, "fuzz", skip_bad, &mut |row| stats.add(row)) {
            let report = stats.report("fuzz", info);
            let _ = aio_trace::report::render_text(&report);
            let _ = serde_json::to_string(&report);
        }
    }
});
