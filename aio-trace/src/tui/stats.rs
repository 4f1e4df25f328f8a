//! Aggregates of a set of iocbs (a process, a context, or one half of a
//! vectored/scalar split): counts since the last clear, rates of the last
//! tick, windowed percentiles and a history for the time charts.

use std::collections::VecDeque;

use aio_trace_common::{
    IORING_OP_FSYNC, IORING_OP_READ, IORING_OP_READ_FIXED, IORING_OP_READV, IORING_OP_READV_FIXED,
    IORING_OP_WRITE, IORING_OP_WRITE_FIXED, IORING_OP_WRITEV, IORING_OP_WRITEV_FIXED, IocbRecord,
    SEGS_BUCKETS,
};
use hdrhistogram::Histogram;

use super::hist::{LatencyWindow, Log2Hist, latency_histogram};
use crate::model::{Api, IocbView as _, Op};

/// Ticks of the percentile window (10 s at the default 1 s interval).
pub const WINDOW_TICKS: usize = 10;
/// Ticks kept for the time charts (5 minutes at 1 s).
pub const HISTORY_TICKS: usize = 300;

/// The op mix columns. AIO's and io_uring's reads and writes apart (PREADV
/// is AIO's, READV io_uring's); syncs and the rest together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OpClass {
    #[default]
    Pread,
    Pwrite,
    Preadv,
    Pwritev,
    /// FSYNC, FDSYNC; io_uring's FSYNC.
    Sync,
    /// POLL, NOOP, unknown opcodes; io_uring's other ops; syscalls.
    Other,
    /// io_uring's READ and READ_FIXED.
    Read,
    /// io_uring's WRITE and WRITE_FIXED.
    Write,
    /// io_uring's READV and READV_FIXED.
    Readv,
    /// io_uring's WRITEV and WRITEV_FIXED.
    Writev,
}

impl OpClass {
    pub const ALL: [Self; 10] = [
        Self::Pread,
        Self::Pwrite,
        Self::Preadv,
        Self::Pwritev,
        Self::Sync,
        Self::Other,
        Self::Read,
        Self::Write,
        Self::Readv,
        Self::Writev,
    ];

    pub fn of(op: Op) -> Self {
        match op {
            Op::Pread => Self::Pread,
            Op::Pwrite => Self::Pwrite,
            Op::Preadv => Self::Preadv,
            Op::Pwritev => Self::Pwritev,
            Op::Fsync | Op::Fdsync => Self::Sync,
            Op::Uring(opcode) => match u8::try_from(opcode).unwrap_or(u8::MAX) {
                IORING_OP_READ | IORING_OP_READ_FIXED => Self::Read,
                IORING_OP_WRITE | IORING_OP_WRITE_FIXED => Self::Write,
                IORING_OP_READV | IORING_OP_READV_FIXED => Self::Readv,
                IORING_OP_WRITEV | IORING_OP_WRITEV_FIXED => Self::Writev,
                IORING_OP_FSYNC => Self::Sync,
                _ => Self::Other,
            },
            // Synchronous vectored syscalls are not iocbs; live, the TUI does
            // not collect them (a replay does), and the mapping stays total.
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
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Readv => "READV",
            Self::Writev => "WRITEV",
        }
    }

    /// Parses an op name as the filter accepts it (any case; FSYNC/FDSYNC
    /// mean SYNC, io_uring's _FIXED forms their class).
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.to_ascii_uppercase();
        match upper.as_str() {
            "FSYNC" | "FDSYNC" => Some(Self::Sync),
            name => {
                let name = name.strip_suffix("_FIXED").unwrap_or(name);
                Self::ALL.into_iter().find(|c| c.name() == name)
            }
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Reads and writes: the iocbs whose segment count means something.
    pub fn moves_data(self) -> bool {
        !matches!(self, Self::Sync | Self::Other)
    }
}

/// Where an iocb's time goes, in order; each `None` in a record where the
/// stage does not exist (buffered I/O has no dispatch and no bio).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// submit → filesystem dispatch
    Dispatch,
    /// dispatch → first bio queued
    Queue,
    /// first bio queued → last request completed
    Device,
    /// last request completed → kernel completion of the iocb
    EndIo,
    /// kernel completion → handed to the application by io_getevents
    ReapLag,
}

impl Stage {
    pub const ALL: [Self; 5] = [
        Self::Dispatch,
        Self::Queue,
        Self::Device,
        Self::EndIo,
        Self::ReapLag,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch",
            Self::Queue => "queue",
            Self::Device => "device",
            Self::EndIo => "end_io",
            Self::ReapLag => "reap lag",
        }
    }

    pub fn of(self, r: &IocbRecord) -> Option<u64> {
        match self {
            Self::Dispatch => r.dispatch_ns(),
            Self::Queue => r.queue_ns(),
            Self::Device => r.device_ns(),
            Self::EndIo => r.end_io_ns(),
            Self::ReapLag => r.reap_lag_ns(),
        }
    }
}

/// Submit → reap; for an iocb the application reaped from the AIO ring or
/// a request it took from the io_uring CQ ring in user memory (no
/// io_getevents or io_uring_enter, so no reap time) submit → kernel
/// completion, flagged true. None for refused iocbs.
pub fn end_to_end_ns(r: &IocbRecord) -> Option<(u64, bool)> {
    if let Some(latency) = r.latency_ns() {
        return Some((latency, r.reaped_ns().is_none()));
    }
    if r.rejected() {
        return None;
    }
    r.complete_ns()
        .map(|done| (done.saturating_sub(r.submit_ns), true))
}

/// AIO iocbs of one opcode class the kernel counted over a tick: in the
/// light tier, the exact counts that records (a sample) do not give.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub class: OpClass,
    pub iocbs: u64,
    /// Bytes requested (a record's count is bytes transferred).
    pub bytes: u64,
    pub segments: u64,
    pub segs_log2: [u64; SEGS_BUCKETS],
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
    pub ops: [u64; 10],
    /// Iocbs per interface, in `Api::ALL` order.
    pub apis: [u64; 3],
    /// Reads and writes, and their segments, for the average.
    pub data_iocbs: u64,
    pub segments_sum: u64,
    /// Negative results and iocbs io_submit refused.
    pub errors: u64,
    pub latency_log2: Log2Hist,
    pub latency: Histogram<u64>,
    /// Segments per read/write iocb.
    pub segments: Log2Hist,
    /// Iocbs that reached the block layer (a filesystem dispatch or a bio),
    /// and their bios, splits and merges.
    pub block_iocbs: u64,
    pub bios_sum: u64,
    pub splits: u64,
    pub merges: u64,
    /// Bios per iocb of `block_iocbs`.
    pub bios: Log2Hist,
    /// Iocbs reaped from the AIO ring (or io_uring's CQ ring) in user
    /// memory: their latency ends at the kernel completion (see
    /// `end_to_end_ns`).
    pub ring_reaped: u64,
    window: LatencyWindow,
    /// One window per `Stage`, in `Stage::ALL` order.
    stages: [LatencyWindow; 5],
    /// False for the header's totals and for the contexts of collapsed
    /// processes: counts and rates only. Histograms are most of top's CPU
    /// (each iocb lands in five `Stats`); this spares all but the two a
    /// process row shows.
    detailed: bool,
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
            ops: [0; 10],
            apis: [0; 3],
            data_iocbs: 0,
            segments_sum: 0,
            errors: 0,
            latency_log2: Log2Hist::default(),
            latency: latency_histogram(),
            segments: Log2Hist::default(),
            block_iocbs: 0,
            bios_sum: 0,
            splits: 0,
            merges: 0,
            bios: Log2Hist::default(),
            ring_reaped: 0,
            window: LatencyWindow::new(WINDOW_TICKS),
            stages: std::array::from_fn(|_| LatencyWindow::new(WINDOW_TICKS)),
            detailed: true,
            tick_iocbs: 0,
            tick_bytes: 0,
            last: Sample::default(),
            p50_ns: None,
            history: VecDeque::with_capacity(HISTORY_TICKS),
        }
    }
}

impl Stats {
    /// Counts and rates only: the header's totals.
    pub fn counts_only() -> Self {
        Self {
            detailed: false,
            ..Self::default()
        }
    }

    /// Turns histograms on or off; turned on, they start empty.
    pub fn set_detailed(&mut self, on: bool) {
        self.detailed = on;
    }

    pub fn record(&mut self, r: &IocbRecord) {
        self.count_record(r);
        self.record_sampled(r);
    }

    /// Adds one record of a sample whose counts the kernel keeps
    /// (`add_counted`): to the latencies, stages and bios only.
    pub fn record_sampled(&mut self, r: &IocbRecord) {
        if self.detailed {
            self.record_depth(r);
        }
    }

    /// Adds iocbs the kernel counted (the light tier's exact counts).
    pub fn add_counted(&mut self, c: &Counted) {
        self.iocbs += c.iocbs;
        self.tick_iocbs += c.iocbs;
        self.ops[c.class.index()] += c.iocbs;
        self.apis[Api::Aio as usize] += c.iocbs;
        if c.class.moves_data() {
            self.data_iocbs += c.iocbs;
            self.segments_sum += c.segments;
            self.segments.add_buckets(&c.segs_log2);
        }
        self.bytes += c.bytes;
        self.tick_bytes += c.bytes;
    }

    /// Adds errors the kernel counted: failed events and refused iocbs.
    pub fn count_errors(&mut self, n: u64) {
        self.errors += n;
    }

    fn count_record(&mut self, r: &IocbRecord) {
        let class = OpClass::of(r.op());
        self.iocbs += 1;
        self.tick_iocbs += 1;
        self.ops[class.index()] += 1;
        self.apis[r.api() as usize] += 1;
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
    }

    fn record_depth(&mut self, r: &IocbRecord) {
        if let Some((latency, ring_reaped)) = end_to_end_ns(r) {
            self.ring_reaped += u64::from(ring_reaped);
            self.latency_log2.record(latency);
            let _ = self.latency.record(latency.max(1));
            self.window.record(latency);
        }
        if r.dispatches > 0 || r.bios > 0 {
            self.block_iocbs += 1;
            self.bios_sum += u64::from(r.bios);
            self.splits += u64::from(r.splits);
            self.merges += u64::from(r.merges);
            self.bios.record(u64::from(r.bios));
        }
        for (stage, window) in Stage::ALL.into_iter().zip(&mut self.stages) {
            if let Some(ns) = stage.of(r) {
                window.record(ns);
            }
        }
    }

    /// Closes a tick that lasted `secs`.
    pub fn tick(&mut self, secs: f64) {
        self.window.tick();
        for window in &mut self.stages {
            window.tick();
        }
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

    /// Average bios of the iocbs that reached the block layer; None when none
    /// did (buffered I/O, fsync), which the views show as "n/a".
    pub fn bios_per_iocb(&self) -> Option<f64> {
        (self.block_iocbs > 0).then(|| self.bios_sum as f64 / self.block_iocbs as f64)
    }

    /// p50 and p99 of a stage over the window; None when no iocb of the
    /// window had that stage. Merged on demand: only the detail view asks.
    pub fn stage_quantiles(&self, stage: Stage) -> Option<[u64; 2]> {
        self.stages[stage as usize]
            .quantiles(&[0.5, 0.99])
            .map(|q| [q[0], q[1]])
    }

    /// Each stage's mean over the window (over the iocbs that had it).
    pub fn stage_means(&self) -> [Option<f64>; 5] {
        std::array::from_fn(|i| self.stages[i].mean())
    }

    /// Each stage's share of the sum of the stage means: where the mean
    /// latency of an iocb that went through every stage goes.
    pub fn stage_shares(&self) -> [Option<f64>; 5] {
        let means = self.stage_means();
        let total: f64 = means.iter().flatten().sum();
        means.map(|m| m.filter(|_| total > 0.0).map(|m| m / total))
    }

    pub fn count_api(&self, api: Api) -> u64 {
        self.apis[api as usize]
    }

    /// Every interface seen, with its share of the iocbs, in `Api::ALL` order.
    pub fn api_mix(&self) -> Vec<(Api, f64)> {
        Api::ALL
            .into_iter()
            .filter(|&a| self.count_api(a) > 0)
            .map(|a| (a, self.count_api(a) as f64 / self.iocbs as f64))
            .collect()
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

    /// Iocbs with a latency in the percentile window: the sample size of
    /// `p50_ns` and `last.p99_ns`.
    pub fn window_len(&self) -> u64 {
        self.window.len()
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

    /// A direct-I/O iocb that went through every stage: `stages` are the
    /// dispatch, queue, device and end_io times; the reap lag is the rest.
    pub fn staged(mut r: IocbRecord, bios: u32, stages: [u64; 4]) -> IocbRecord {
        let mut ts = r.submit_ns;
        let mut at = |ns| {
            ts += ns;
            ts
        };
        r.dispatch_ts = at(stages[0]);
        r.first_bio_ts = at(stages[1]);
        r.last_rq_ts = at(stages[2]);
        r.complete_ts = at(stages[3]);
        assert!(r.complete_ts <= r.reap_ns, "stages exceed the latency");
        r.dev = (8 << 20) | 16;
        r.ino = 12;
        r.dispatches = 1;
        r.bios = bios;
        r.splits = bios.saturating_sub(1);
        r
    }

    #[test]
    fn counts_bios_and_windows_stages() {
        let mut s = Stats::default();
        for _ in 0..3 {
            s.record(&staged(
                iocb(1, 1, IOCB_CMD_PREADV, 8, 100_000),
                2,
                [2_000, 1_000, 90_000, 3_000],
            ));
        }
        s.record(&staged(
            iocb(1, 1, IOCB_CMD_PREAD, 1, 100_000),
            1,
            [2_000, 1_000, 90_000, 3_000],
        ));
        // Buffered: counts as an iocb, not in the bios average nor the stages.
        s.record(&iocb(1, 1, IOCB_CMD_PREAD, 1, 10_000));
        assert_eq!(s.block_iocbs, 4);
        assert_eq!(s.bios_per_iocb(), Some(7.0 / 4.0));
        assert_eq!((s.splits, s.merges), (3, 0));
        assert_eq!(s.bios.buckets[1..3], [1, 3]);
        assert_eq!(s.stage_quantiles(Stage::Device), None, "tick not closed");
        s.tick(1.0);
        let [p50, p99] = s.stage_quantiles(Stage::Device).unwrap();
        assert!((89_000..=91_000).contains(&p50) && p99 >= p50);
        let shares = s.stage_shares();
        assert_eq!(shares.iter().flatten().count(), 5);
        assert!((shares[Stage::Device as usize].unwrap() - 0.9).abs() < 1e-9);
        assert!((shares.iter().flatten().sum::<f64>() - 1.0).abs() < 1e-9);
        for _ in 0..WINDOW_TICKS {
            s.tick(1.0);
        }
        assert_eq!(s.stage_quantiles(Stage::Device), None, "out of the window");
        assert_eq!(s.stage_shares(), [None; 5]);
    }

    #[test]
    fn ring_reaped_iocbs_count_with_latency_to_completion() {
        let mut s = Stats::default();
        let r = IocbRecord {
            reap_ns: 0,
            ..staged(
                iocb(1, 1, IOCB_CMD_PREAD, 1, 100_000),
                1,
                [1_000, 1_000, 50_000, 1_000],
            )
        };
        assert_eq!(end_to_end_ns(&r), Some((53_000, true)));
        s.record(&r);
        assert_eq!((s.iocbs, s.ring_reaped, s.latency.len()), (1, 1, 1));
        assert_eq!(Stage::ReapLag.of(&r), None);
        s.tick(1.0);
        assert_eq!(s.stage_quantiles(Stage::ReapLag), None);
        assert!(s.stage_quantiles(Stage::EndIo).is_some());
        let rejected = IocbRecord {
            flags: IOCB_REJECTED,
            ..r
        };
        assert_eq!(end_to_end_ns(&rejected), None);
    }

    #[test]
    fn op_names_parse() {
        assert_eq!(OpClass::parse("preadv"), Some(OpClass::Preadv));
        assert_eq!(OpClass::parse("FDSYNC"), Some(OpClass::Sync));
        assert_eq!(OpClass::parse("readv"), Some(OpClass::Readv));
        assert_eq!(OpClass::parse("write_fixed"), Some(OpClass::Write));
        assert_eq!(OpClass::parse("fio"), None);
        let names: std::collections::HashSet<_> = OpClass::ALL.map(OpClass::name).into();
        assert_eq!(names.len(), OpClass::ALL.len(), "one name per column");
    }

    /// io_uring's reads and writes have columns of their own, named apart
    /// from AIO's; its fsync is a sync; its CQ-ring-reaped requests count
    /// as ring-reaped, their latency ending at the CQE.
    #[test]
    fn io_uring_requests_are_classed_and_counted_under_their_api() {
        use aio_trace_common::{
            API_IO_URING, IORING_OP_FSYNC, IORING_OP_NOP, IORING_OP_READ_FIXED, IORING_OP_READV,
            IORING_OP_WRITEV_FIXED,
        };
        let class = |o: u8| OpClass::of(Op::new(Api::IoUring, o.into()));
        assert_eq!(class(IORING_OP_READV), OpClass::Readv);
        assert_eq!(class(IORING_OP_WRITEV_FIXED), OpClass::Writev);
        assert_eq!(class(IORING_OP_READ_FIXED), OpClass::Read);
        assert_eq!(class(IORING_OP_FSYNC), OpClass::Sync);
        assert_eq!(class(IORING_OP_NOP), OpClass::Other);
        assert_eq!(OpClass::of(Op::new(Api::Aio, 1)), OpClass::Pwrite);
        assert!(OpClass::Readv.moves_data() && !OpClass::Other.moves_data());

        let uring = |opcode: u8, reap| IocbRecord {
            api: API_IO_URING,
            complete_ts: 1_000 + 40_000,
            reap_ns: reap,
            ..iocb(1, 0xffff_8881_0000_0000, opcode.into(), 4, 50_000)
        };
        let mut s = Stats::default();
        s.record(&uring(IORING_OP_READV, 1_000 + 50_000));
        s.record(&uring(IORING_OP_READV, 0));
        s.record(&iocb(1, 1, IOCB_CMD_PREADV, 8, 100_000));
        assert_eq!((s.count(OpClass::Readv), s.count(OpClass::Preadv)), (2, 1));
        assert_eq!(s.count_api(Api::IoUring), 2);
        assert_eq!(
            s.api_mix(),
            [(Api::Aio, 1.0 / 3.0), (Api::IoUring, 2.0 / 3.0)]
        );
        assert_eq!(
            end_to_end_ns(&uring(IORING_OP_READV, 0)),
            Some((40_000, true))
        );
        assert_eq!(
            end_to_end_ns(&uring(IORING_OP_READV, 51_000)),
            Some((50_000, false))
        );
        assert_eq!((s.ring_reaped, s.latency.len()), (1, 3));
    }
}
