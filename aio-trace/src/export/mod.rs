//! Recordings for analysis elsewhere: JSONL, CSV, Perfetto, Prometheus.
//! Each writer is a `session::Sink` over an `io::Write` (or, for Prometheus,
//! a registry); the binary owns files, signals and the tracer.
//!
//! Layer: views. Imports `model`, `reader`, `session` (the `Sink` trait) and
//! `output` (the exit summary); `report` reads what it writes.

pub mod csv;
pub mod file;
pub mod jsonl;
pub mod perfetto;
pub mod prometheus;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    model::{ContextSummary, DeviceSummary, LossCounts},
    session::Sink,
};

/// The version of the JSONL header this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The file format of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    /// Perfetto's native protobuf trace.
    Perfetto,
    /// The Chrome trace-event JSON, which Perfetto also opens.
    ChromeJson,
}

impl Format {
    /// By extension: .jsonl, .csv, .perfetto-trace or .pftrace, .json.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".jsonl") {
            Some(Self::Jsonl)
        } else if name.ends_with(".csv") {
            Some(Self::Csv)
        } else if name.ends_with(".perfetto-trace") || name.ends_with(".pftrace") {
            Some(Self::Perfetto)
        } else if name.ends_with(".json") {
            Some(Self::ChromeJson)
        } else {
            None
        }
    }
}

/// What was traced: the `filters` of the header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    pub pids: Vec<u32>,
    pub comm: Option<String>,
    /// The `--cgroup` paths, under the cgroup2 mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<String>,
}

/// The first line of a JSONL recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format_version: u32,
    pub tool_version: String,
    pub kernel: String,
    pub hostname: String,
    /// Wall-clock time (RFC 3339, UTC) when the probes were attached.
    pub start_realtime: String,
    /// CLOCK_MONOTONIC ns when the probes were attached: the `*_ns` fields count on it.
    pub start_monotonic_ns: u64,
    /// Always "monotonic": the clock of every `*_ns` timestamp.
    pub clock: String,
    pub filters: Filters,
}

impl Header {
    /// This machine's header, at `start_monotonic_ns`.
    pub fn here(filters: Filters, start_monotonic_ns: u64) -> Self {
        let uname = rustix_uname();
        Self {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            kernel: uname.0,
            hostname: uname.1,
            start_realtime: rfc3339_now(),
            start_monotonic_ns,
            clock: "monotonic".to_owned(),
            filters,
        }
    }
}

/// This machine's hostname, as a header names it.
pub fn hostname() -> String {
    rustix_uname().1
}

/// (kernel release, hostname) from uname(2).
fn rustix_uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname only writes the utsname it is given, a valid local.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::new(), String::new());
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&u.release), field(&u.nodename))
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_millis())
}

fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// The end of a trace: what every exporter is told once the session stops.
pub struct Closing<'a> {
    pub summaries: &'a [ContextSummary],
    pub devices: &'a [DeviceSummary],
    pub losses: &'a LossCounts,
}

/// A recording sink: records as they come, then the closing lines.
pub trait Exporter: Sink {
    /// Writes what comes after the records and flushes; the file is complete after it.
    fn finish(&mut self, closing: &Closing) -> std::io::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::from_path(Path::new("a.jsonl")), Some(Format::Jsonl));
        assert_eq!(Format::from_path(Path::new("/x/a.csv")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("a.json")),
            Some(Format::ChromeJson)
        );
        assert_eq!(
            Format::from_path(Path::new("a.pftrace")),
            Some(Format::Perfetto)
        );
        assert_eq!(
            Format::from_path(Path::new("a.perfetto-trace")),
            Some(Format::Perfetto)
        );
        assert_eq!(Format::from_path(Path::new("a.txt")), None);
    }

    #[test]
    fn formats_utc_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_210_096, 5), "2024-02-29T12:34:56.005Z");
    }
}
