//! `aio-trace report`'s parser and aggregation on arbitrary bytes: an error
//! or a report, never a panic. `cargo +nightly fuzz run report_parser`.
#![no_main]

use aio_trace::report::{By, Stats, read};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for skip_bad in [false, true] {
        let mut stats = Stats::new(By::File);
        if let Ok(info) = read(data, "fuzz", skip_bad, &mut |row| stats.add(row)) {
            let report = stats.report("fuzz", info);
            let _ = aio_trace::report::render_text(&report);
        }
    }
});
