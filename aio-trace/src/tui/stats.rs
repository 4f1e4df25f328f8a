//! Aggregates of a set of iocbs (a process, a context, or one half of a
//! vectored/scalar split): counts since the last clear, rates of the last
//! tick, windowed percentiles and a history for the time charts.

use std::collections::VecDeque;

use aio_trace_common::IocbRecord;
use hdrhistogram::Histogram;

use super::hist::{LatencyWindow, Log2Hist, latency_histogram};
use crate::model::{IocbView, Op};

/// Ticks of the percentile window (10 s at the default 1 s interval).
pub const WINDOW_TICKS: usize = 10;
/// Ticks kept for the time charts (5 minutes at 1 s).
pub const HISTORY_TICKS: usize = 300;

/// The op mix columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpClass {
    Pread,
    Pwrite,
    Preadv,
    Pwritev,
    /// FSYNC, FDSYNC.
    Sync,
    /// POLL, NOOP, unknown opcodes.
    Other,
}

impl OpClass {
    pub const ALL: [Self; 6] = [
        Self::Pread,
        Self::Pwrite,
        Self::Preadv,
        Self::Pwritev,
        Self::Sync,
        Self::Other,
    ];

    pub fn of(op: Op) -> Self {
        match op {
            Op::Pread => Self::Pread,
            Op::Pwrite => Self::Pwrite,
            Op::Preadv => Self::Preadv,
            Op::Pwritev => Self::Pwritev,
            Op::Fsync | Op::Fdsync => Self::Sync,
            // Synchronous vectored syscalls are not iocbs; the TUI does not
            // collect them, but the mapping stays total.
            Op::Poll
            | Op::Noop
            | Op::Other(_)
            | Op::Readv
            | Op::Writev
            | Op::SyscallPreadv
            | Op::SyscallPwritev
            | Op::Preadv2
            | Op::Pwritev2 => Self::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pread => "PREAD",
            Self::Pwrite => "PWRITE",
            Self::Preadv => "PREADV",
            Self::Pwritev => "PWRITEV",
            Self::Sync => "SYNC",
            Self::Other => "OTHER",
        }
    }

    /// Parses an op name as the filter accepts it (any case; FSYNC/FDSYNC mean SYNC).
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.to_ascii_uppercase();
        match upper.as_str() {
            "FSYNC" | "FDSYNC" => Some(Self::Sync),
            _ => Self::ALL.into_iter().find(|c| c.name() == upper),
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Reads and writes: the iocbs whose segment count means something.
    pub fn moves_data(self) -> bool {
        matches!(
            self,
            Self::Pread | Self::Pwrite | Self::Preadv | Self::Pwritev
        )
    }
}

/// One tick's point of the time charts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub iocbs_per_s: f64,
    pub bytes_per_s: f64,
    pub p99_ns: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Stats {
    /// Since the last clear.
    pub iocbs: u64,
    /// Bytes transferred (positive results).
    pub bytes: u64,
    pub ops: [u64; 6],
    /// Reads and writes, and their segments, for the average.
    pub data_iocbs: u64,
    pub segments_sum: u64,
    /// Negative results and iocbs io_submit refused.
    pub errors: u64,
    pub latency_log2: Log2Hist,
    pub latency: Histogram<u64>,
    /// Segments per read/write iocb.
    pub segments: Log2Hist,
    // Bios per iocb: the record has no `bios` field yet; when it does, a
    // Log2Hist here and `bios_per_iocb` computing from it are all that is needed.
    window: LatencyWindow,
    tick_iocbs: u64,
    tick_bytes: u64,
    /// Rates of the last closed tick, and the window's percentiles.
    pub last: Sample,
    pub p50_ns: Option<u64>,
    pub history: VecDeque<Sample>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            iocbs: 0,
            bytes: 0,
            ops: [0; 6],
            data_iocbs: 0,
            segments_sum: 0,
            errors: 0,
            latency_log2: Log2Hist::default(),
            latency: latency_histogram(),
            segments: Log2Hist::default(),
            window: LatencyWindow::new(WINDOW_TICKS),
            tick_iocbs: 0,
            tick_bytes: 0,
            last: Sample::default(),
            p50_ns: None,
            history: VecDeque::with_capacity(HISTORY_TICKS),
        }
    }
}

impl Stats {
    pub fn record(&mut self, r: &IocbRecord) {
        let class = OpClass::of(r.op());
        self.iocbs += 1;
        self.tick_iocbs += 1;
        self.ops[class.index()] += 1;
        if class.moves_data() {
            self.data_iocbs += 1;
            self.segments_sum += u64::from(r.segs);
            self.segments.record(u64::from(r.segs));
        }
        match r.result() {
            Some(res) if res > 0 => {
                self.bytes += res as u64;
                self.tick_bytes += res as u64;
            }
            Some(res) if res < 0 => self.errors += 1,
            None if r.rejected() => self.errors += 1,
            _ => {}
        }
        if let Some(latency) = r.latency_ns() {
            self.latency_log2.record(latency);
            let _ = self.latency.record(latency.max(1));
            self.window.record(latency);
        }
    }

    /// Closes a tick that lasted `secs`.
    pub fn tick(&mut self, secs: f64) {
        self.window.tick();
        let secs = if secs > 0.0 { secs } else { 1.0 };
        let quantiles = self.window.quantiles(&[0.5, 0.99]);
        self.p50_ns = quantiles.as_ref().map(|q| q[0]);
        self.last = Sample {
            iocbs_per_s: self.tick_iocbs as f64 / secs,
            bytes_per_s: self.tick_bytes as f64 / secs,
            p99_ns: quantiles.map(|q| q[1]),
        };
        self.tick_iocbs = 0;
        self.tick_bytes = 0;
        if self.history.len() == HISTORY_TICKS {
            self.history.pop_front();
        }
        self.history.push_back(self.last);
    }

    pub fn count(&self, class: OpClass) -> u64 {
        self.ops[class.index()]
    }

    pub fn avg_segments(&self) -> Option<f64> {
        (self.data_iocbs > 0).then(|| self.segments_sum as f64 / self.data_iocbs as f64)
    }

    /// Not in the record yet (see the field comment): None renders as "n/a".
    pub fn bios_per_iocb(&self) -> Option<f64> {
        None
    }

    /// The most frequent op and its share of all iocbs.
    pub fn dominant_op(&self) -> Option<(OpClass, f64)> {
        let (class, count) = OpClass::ALL
            .into_iter()
            .map(|c| (c, self.count(c)))
            .max_by_key(|&(c, n)| (n, std::cmp::Reverse(c.index())))?;
        (count > 0).then(|| (class, count as f64 / self.iocbs as f64))
    }

    /// Every op seen, with its share, most frequent first.
    pub fn mix(&self) -> Vec<(OpClass, f64)> {
        let mut mix: Vec<_> = OpClass::ALL
            .into_iter()
            .filter(|&c| self.count(c) > 0)
            .map(|c| (c, self.count(c) as f64 / self.iocbs as f64))
            .collect();
        mix.sort_by(|a, b| b.1.total_cmp(&a.1));
        mix
    }

    pub fn quantile(&self, q: f64) -> Option<u64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q))
    }
}

#[cfg(test)]
pub mod tests {
    use aio_trace_common::{IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_REJECTED};

    use super::*;

    pub fn iocb(pid: u32, ctx: u64, opcode: u16, segs: u32, latency_ns: u64) -> IocbRecord {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"fio\0");
        IocbRecord {
            pid,
            tid: pid,
            ctx,
            opcode,
            segs,
            comm,
            bytes: u64::from(segs) * 4096,
            res: i64::from(segs) * 4096,
            submit_ns: 1_000,
            reap_ns: 1_000 + latency_ns,
            ..Default::default()
        }
    }

    #[test]
    fn counts_bytes_segments_errors_and_latency() {
        let mut s = Stats::default();
        s.record(&iocb(1, 1, IOCB_CMD_PREADV, 8, 100_000));
        s.record(&iocb(1, 1, IOCB_CMD_PREAD, 1, 50_000));
        let rejected = IocbRecord {
            flags: IOCB_REJECTED,
            res: -22,
            reap_ns: 0,
            ..iocb(1, 1, IOCB_CMD_PREADV, 1025, 0)
        };
        s.record(&rejected);
        assert_eq!(s.iocbs, 3);
        assert_eq!(s.bytes, 9 * 4096);
        assert_eq!(s.errors, 1);
        assert_eq!(s.count(OpClass::Preadv), 2);
        assert_eq!(s.avg_segments(), Some((8.0 + 1.0 + 1025.0) / 3.0));
        assert_eq!(s.latency_log2.total(), 2);
        assert_eq!(s.bios_per_iocb(), None);
        assert_eq!(s.dominant_op().unwrap().0, OpClass::Preadv);
        s.tick(0.5);
        assert_eq!(s.last.iocbs_per_s, 6.0);
        assert_eq!(s.last.bytes_per_s, 9.0 * 4096.0 * 2.0);
        assert!(s.last.p99_ns.unwrap() >= 99_000);
        s.tick(1.0);
        assert_eq!(s.last.iocbs_per_s, 0.0);
        assert_eq!(s.history.len(), 2);
    }

    #[test]
    fn op_names_parse() {
        assert_eq!(OpClass::parse("preadv"), Some(OpClass::Preadv));
        assert_eq!(OpClass::parse("FDSYNC"), Some(OpClass::Sync));
        assert_eq!(OpClass::parse("fio"), None);
    }
}
