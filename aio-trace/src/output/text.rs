//! `snoop`: one line per iocb, biosnoop style, and a summary table at exit.

use std::io::{self, Write};

use aio_trace_common::IocbRecord;

use crate::{
    model::{Api, ContextSummary, DeviceSummary, IocbView, LossCounts, comm_str},
    reader::Record,
    session::Sink,
};

pub const HEADER: &str = "TIME(s)      COMM             PID     CTX            OP       FD  OFFSET        SEGS      BYTES        RES    LAT(us)  BIOS  DISP/DEV/LAG(us)";

pub struct TextSnoop<W: Write> {
    out: W,
    /// Monotonic ns the TIME column counts from.
    start_ns: u64,
}

impl<W: Write> TextSnoop<W> {
    pub fn new(mut out: W, start_ns: u64) -> io::Result<Self> {
        writeln!(out, "{HEADER}")?;
        Ok(Self { out, start_ns })
    }
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn us(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.1}", ns as f64 / 1e3))
}

/// One snoop line (without newline). Unknown values and stages that do not
/// exist show `-`; a synchronous vectored syscall shows `-` for CTX, an
/// io_uring request `ring:` and its ring.
pub fn format_line(out: &mut impl Write, r: &IocbRecord, start_ns: u64) -> io::Result<()> {
    // Where the latency ends (the reap, or an io_uring CQE), else the submit.
    let at = r
        .latency_ns()
        .map_or(r.submit_ns, |ns| r.submit_ns.saturating_add(ns))
        .saturating_sub(start_ns);
    let latency = r
        .latency_ns()
        .map_or_else(|| "-".to_owned(), |ns| format!("{:.1}", ns as f64 / 1e3));
    let ctx = match r.api() {
        Api::Aio => format!("{:x}", r.ctx),
        Api::Sync => "-".to_owned(),
        // A ring is a kernel address, 16 hex digits where the column has 14:
        // its low 36 bits tell rings apart unless they lie a multiple of
        // 64 GiB apart, and --json has all of it.
        Api::IoUring => format!("ring:{:09x}", r.ctx & 0xf_ffff_ffff),
    };
    write!(
        out,
        "{:<12.6} {:<16} {:<7} {:<14} {:<8} {:>3} {:<13} {:>4} {:>10} {:>10} {:>10} {:>5}  {}/{}/{}",
        at as f64 / 1e9,
        comm_str(&r.comm),
        r.pid,
        ctx,
        r.op().name(),
        r.fd,
        opt(r.file_offset()),
        r.segs,
        opt(r.requested_bytes()),
        opt(r.result()),
        latency,
        r.bios,
        us(r.dispatch_ns()),
        us(r.device_ns()),
        us(r.reap_lag_ns()),
    )
}

impl<W: Write> Sink for TextSnoop<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        if let Record::Iocb(r) | Record::Syscall(r) = record {
            format_line(&mut self.out, r, self.start_ns)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The exit tables: per (pid, ctx) syscall counts, per device requests and
/// D2C latency, then the loss counters.
pub fn write_text_summary(
    out: &mut impl Write,
    summaries: &[ContextSummary],
    devices: &[DeviceSummary],
    losses: &LossCounts,
) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{:<7} {:<14} {:>10} {:>8} {:>10} {:>10} {:>8} {:>8} {:>11}",
        "PID",
        "CTX",
        "IO_SUBMIT",
        "IOCBS",
        "IOCBS/CALL",
        "GETEVENTS",
        "EMPTY",
        "EVENTS",
        "EVENTS/CALL"
    )?;
    for s in summaries {
        writeln!(
            out,
            "{:<7} {:<14x} {:>10} {:>8} {:>10.2} {:>10} {:>8} {:>8} {:>11.2}",
            s.pid,
            s.ctx,
            s.io_submit_calls,
            s.iocbs_submitted,
            s.iocbs_per_submit,
            s.io_getevents_calls,
            s.empty_getevents,
            s.events_reaped,
            s.events_per_getevents
        )?;
    }
    if !devices.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<16} {:>10} {:>10} {:>8} {:>8} {:>12} {:>12} {:>12} {:>12}",
            "DEVICE",
            "BIOS",
            "REQUESTS",
            "MERGES",
            "SPLITS",
            "D2C avg µs",
            "D2C p50 µs",
            "D2C p90 µs",
            "D2C p99 µs"
        )?;
        for d in devices {
            writeln!(
                out,
                "{:<16} {:>10} {:>10} {:>8} {:>8} {:>12} {:>12} {:>12} {:>12}",
                match &d.name {
                    Some(name) => format!("{name} {}", d.dev),
                    None => d.dev.clone(),
                },
                d.bios,
                d.requests,
                d.merges,
                d.splits,
                opt(d.d2c_avg_us.map(|v| format!("{v:.1}"))),
                opt(d.d2c_p50_us.map(|v| format!("{v:.1}"))),
                opt(d.d2c_p90_us.map(|v| format!("{v:.1}"))),
                opt(d.d2c_p99_us.map(|v| format!("{v:.1}"))),
            )?;
        }
    }
    writeln!(out, "{losses}")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use aio_trace_common::{IOCB_REJECTED, RECORD_IOCB};

    use super::*;

    #[test]
    fn line_columns_line_up_with_the_header() {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"fio");
        let r = IocbRecord {
            kind: RECORD_IOCB,
            opcode: 7,
            pid: 4242,
            fd: 5,
            segs: 8,
            comm,
            ctx: 0x7f12_3456_7000,
            offset: 65536,
            bytes: 32768,
            res: 32768,
            submit_ns: 2_000_000_000,
            reap_ns: 2_000_123_400,
            bios: 1,
            dispatch_ts: 2_000_002_000,
            first_bio_ts: 2_000_003_000,
            last_rq_ts: 2_000_113_000,
            complete_ts: 2_000_114_000,
            ..Default::default()
        };
        let mut out = Vec::new();
        format_line(&mut out, &r, 1_000_000_000).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "1.000123     fio              4242    7f1234567000   PREADV     5 65536            8      32768      32768      123.4     1  2.0/110.0/9.4"
        );
        // Right-aligned numbers end where their header does.
        let end_of = |hay: &str, needle: &str| hay.find(needle).unwrap() + needle.len();
        assert_eq!(end_of(&line, "123.4"), end_of(HEADER, "LAT(us)"));
        assert_eq!(end_of(&line, "123.4     1"), end_of(HEADER, "BIOS"));
    }

    /// An io_uring request taken from the CQ ring: its ring marked as one,
    /// its op by io_uring's name, its time and latency at the CQE, no lag;
    /// its columns where an AIO line has them.
    #[test]
    fn an_io_uring_line_names_its_ring_and_lines_up() {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"fio");
        let r = IocbRecord {
            kind: RECORD_IOCB,
            api: aio_trace_common::API_IO_URING,
            opcode: aio_trace_common::IORING_OP_READV.into(),
            pid: 4242,
            fd: 5,
            segs: 8,
            comm,
            ctx: 0xffff_8881_0615_3000,
            offset: 65536,
            bytes: 32768,
            res: 32768,
            submit_ns: 2_000_000_000,
            bios: 1,
            dispatch_ts: 2_000_002_000,
            first_bio_ts: 2_000_003_000,
            last_rq_ts: 2_000_113_000,
            complete_ts: 2_000_114_000,
            ..Default::default()
        };
        let mut out = Vec::new();
        format_line(&mut out, &r, 1_000_000_000).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "1.000114     fio              4242    ring:106153000 READV      5 65536            8      32768      32768      114.0     1  2.0/110.0/-"
        );
        let end_of = |hay: &str, needle: &str| hay.find(needle).unwrap() + needle.len();
        assert_eq!(end_of(&line, "114.0"), end_of(HEADER, "LAT(us)"));
    }

    #[test]
    fn rejected_line_shows_dash_latency() {
        let r = IocbRecord {
            kind: RECORD_IOCB,
            opcode: 7,
            flags: IOCB_REJECTED,
            segs: 1025,
            res: -22,
            ..Default::default()
        };
        let mut out = Vec::new();
        format_line(&mut out, &r, 0).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .trim_end()
                .ends_with("-22          -     0  -/-/-")
        );
    }
}
