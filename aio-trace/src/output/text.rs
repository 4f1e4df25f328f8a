//! `snoop`: one line per iocb, biosnoop style, and a summary table at exit.

use std::io::{self, Write};

use aio_trace_common::IocbRecord;

use crate::{
    model::{ContextSummary, IocbView, LossCounts, comm_str},
    reader::Record,
    session::Sink,
};

pub const HEADER: &str = "TIME(s)      COMM             PID     CTX            OP       FD  OFFSET        SEGS      BYTES        RES    LAT(us)";

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

/// One snoop line (without newline). A rejected iocb shows `-` for latency.
pub fn format_line(out: &mut impl Write, r: &IocbRecord, start_ns: u64) -> io::Result<()> {
    let at = r
        .reaped_ns()
        .unwrap_or(r.submit_ns)
        .saturating_sub(start_ns);
    let latency = r
        .latency_ns()
        .map_or_else(|| "-".to_owned(), |ns| format!("{:.1}", ns as f64 / 1e3));
    write!(
        out,
        "{:<12.6} {:<16} {:<7} {:<14x} {:<8} {:>3} {:<13} {:>4} {:>10} {:>10} {:>10}",
        at as f64 / 1e9,
        comm_str(&r.comm),
        r.pid,
        r.ctx,
        r.op().name(),
        r.fd,
        r.offset,
        r.segs,
        opt(r.requested_bytes()),
        opt(r.result()),
        latency,
    )
}

impl<W: Write> Sink for TextSnoop<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        if let Record::Iocb(r) = record {
            format_line(&mut self.out, r, self.start_ns)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The exit table: per (pid, ctx) syscall counts, then the loss counters.
pub fn write_text_summary(
    out: &mut impl Write,
    summaries: &[ContextSummary],
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
    writeln!(
        out,
        "lost: {} (ring_full {}, inflight_full {}, user_read {}, unmatched {}, batch_truncated {}, syscall_state_full {}, aged_out {}, abandoned {})",
        losses.total(),
        losses.ring_full,
        losses.inflight_full,
        losses.user_read,
        losses.unmatched,
        losses.batch_truncated,
        losses.syscall_state_full,
        losses.aged_out,
        losses.abandoned
    )?;
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
            ..Default::default()
        };
        let mut out = Vec::new();
        format_line(&mut out, &r, 1_000_000_000).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "1.000123     fio              4242    7f1234567000   PREADV     5 65536            8      32768      32768      123.4"
        );
        assert_eq!(line.len(), HEADER.len());
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
                .ends_with("-22          -")
        );
    }
}
