//! `workload --size`/`--bs`'s size parser on arbitrary text: a size or an
//! error, never a panic; a plain number reads back as itself. `cargo xtask fuzz`.
#![no_main]

use aio_trace::workload::config::parse_size;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(n) = parse_size(&text) {
        assert_eq!(parse_size(&n.to_string()), Ok(n));
    }
});
