//! The duration parser of every `-d`/`--*-timeout`/`--phase` option on
//! arbitrary text: a positive duration of at most a year, or an error, never
//! a panic. `cargo xtask fuzz`.
#![no_main]

use aio_trace::duration::{MAX_DURATION, parse_duration};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = parse_duration(&text) {
        assert!(!d.is_zero() && d <= MAX_DURATION, "{text:?} gave {d:?}");
    }
});
