//! The data store of `top`: per process (and per context) aggregates fed from
//! iocb records, and the kernel's counters, losses and overhead fed from
//! ticks.
//!
//! Layer: reads records and snapshots (aio-trace-common, the model and
//! `stats`); knows nothing of what is shown — sort, filter, selection and
//! pause live in `view`, which reads this store, never the other way round.

use std::collections::{BTreeMap, VecDeque};

use aio_trace_common::{CtxCounters, CtxKey, IocbRecord};

use super::stats::{Counted, OpClass, Stats, end_to_end_ns};
use crate::model::{
    Api, IocbView as _, LossCounts, Op, OpCounts, Overhead, OverheadSample, comm_str,
};

/// Iocbs kept per process and context for the detail view.
pub const RECENT_IOCBS: usize = 32;

/// Which half of a vectored/scalar split (sync and other ops count as scalar).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Scalar = 0,
    Vectored = 1,
}

impl Kind {
    fn of(r: &IocbRecord) -> Self {
        if r.op().is_vectored() {
            Self::Vectored
        } else {
            Self::Scalar
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Vectored => "vectored",
        }
    }
}

/// One block device's part of a group's iocbs (those whose file the
/// filesystem dispatched to it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceShare {
    pub iocbs: u64,
    pub bios: u64,
    /// Bytes transferred (positive results).
    pub bytes: u64,
    pub latency_sum_ns: u64,
    /// Iocbs with a latency (not refused).
    pub latency_n: u64,
}

impl DeviceShare {
    fn record(&mut self, r: &IocbRecord) {
        self.iocbs += 1;
        self.bios += u64::from(r.bios);
        self.bytes += r.result().filter(|&res| res > 0).unwrap_or(0) as u64;
        if let Some((latency, _)) = end_to_end_ns(r) {
            self.latency_sum_ns += latency;
            self.latency_n += 1;
        }
    }

    pub fn avg_latency_ns(&self) -> Option<u64> {
        (self.latency_n > 0).then(|| self.latency_sum_ns / self.latency_n)
    }
}

/// A process's or a context's stats, whole and split by kind, and by device.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub total: Stats,
    pub split: [Stats; 2],
    pub recent: VecDeque<IocbRecord>,
    /// By device (`dev_t`), since the last clear.
    pub devices: BTreeMap<u32, DeviceShare>,
}

impl Group {
    fn record(&mut self, r: &IocbRecord, counted: bool) {
        if let Some(dev) = r.device() {
            self.devices.entry(dev.0).or_default().record(r);
        }
        let split = &mut self.split[Kind::of(r) as usize];
        if counted {
            self.total.record_sampled(r);
            split.record_sampled(r);
        } else {
            self.total.record(r);
            split.record(r);
        }
        if self.recent.len() == RECENT_IOCBS {
            self.recent.pop_front();
        }
        self.recent.push_back(*r);
    }

    /// Counts and rates only, until `set_detailed(true)`.
    fn counts_only() -> Self {
        Self {
            total: Stats::counts_only(),
            split: [Stats::counts_only(), Stats::counts_only()],
            recent: VecDeque::new(),
            devices: BTreeMap::new(),
        }
    }

    fn count(&mut self, kind: Kind, c: &Counted) {
        self.total.add_counted(c);
        self.split[kind as usize].add_counted(c);
    }

    fn set_detailed(&mut self, on: bool) {
        self.total.set_detailed(on);
        for s in &mut self.split {
            s.set_detailed(on);
        }
    }

    fn tick(&mut self, secs: f64) {
        self.total.tick(secs);
        for s in &mut self.split {
            s.tick(secs);
        }
    }

    pub fn stats(&self, kind: Option<Kind>) -> &Stats {
        match kind {
            None => &self.total,
            Some(k) => &self.split[k as usize],
        }
    }
}

/// What a process submits through: an AIO context, an io_uring ring (the
/// kernel address of its `io_ring_ctx`), or, in a replayed recording, its
/// synchronous syscalls (id 0). The api keeps an AIO context and a ring
/// apart whatever their numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ctx {
    pub api: Api,
    pub id: u64,
}

impl Ctx {
    pub fn of(r: &IocbRecord) -> Self {
        Self {
            api: r.api(),
            id: r.ctx,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Process {
    pub comm: String,
    /// The cgroup v2 id of its latest iocb (0: none recorded).
    pub cgroup: u64,
    pub group: Group,
    pub contexts: BTreeMap<Ctx, Group>,
}

/// The address of one set of stats: a process or one of its contexts, whole
/// or one kind. Each table row stands for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub pid: u32,
    /// A context row under an expanded process.
    pub ctx: Option<Ctx>,
    /// One half of a split row (`v`).
    pub kind: Option<Kind>,
    /// A cgroup's row while `top` groups by cgroup (`g`): every process of
    /// the cgroup together; `pid` is then 0.
    pub cgroup: Option<u64>,
}

impl RowKey {
    /// The kernel counts in flight per process and AIO context: not per
    /// kind, and not for an io_uring ring.
    pub fn has_in_flight(&self) -> bool {
        self.kind.is_none() && self.ctx.is_none_or(|c| c.api == Api::Aio) && self.cgroup.is_none()
    }
}

/// Syscall rates from the kernel's counters over the last tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SyscallRates {
    pub io_submit_per_s: f64,
    pub io_getevents_per_s: f64,
    /// Events per io_getevents call over the last tick; None without calls.
    pub events_per_getevents: Option<f64>,
}

/// A counters snapshot, with what the tracer lost so far.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub counters: Vec<(CtxKey, CtxCounters)>,
    /// The kernel's per-opcode iocb counts (cumulative).
    pub ops: Vec<OpCounts>,
    pub losses: LossCounts,
    /// The light tier's sampling now (None in the full tier or replaying).
    pub sample_every: Option<u64>,
    /// What tracing costs so far (None when replaying).
    pub overhead_sample: Option<OverheadSample>,
}

/// What the table and the detail view draw from: the processes, the totals
/// and the syscall rates. A pause keeps a copy of it.
#[derive(Clone, Debug)]
pub struct Aggregates {
    pub processes: BTreeMap<u32, Process>,
    /// Every iocb again by the cgroup v2 id it was submitted from (0: none
    /// recorded), for the rows grouped by cgroup.
    pub cgroups: BTreeMap<u64, Group>,
    pub totals: Stats,
    pub rates: SyscallRates,
}

impl Aggregates {
    fn new() -> Self {
        Self {
            processes: BTreeMap::new(),
            cgroups: BTreeMap::new(),
            totals: Stats::counts_only(),
            rates: SyscallRates::default(),
        }
    }

    pub fn group(&self, key: &RowKey) -> Option<&Group> {
        if let Some(cgroup) = key.cgroup {
            return self.cgroups.get(&cgroup);
        }
        let process = self.processes.get(&key.pid)?;
        match key.ctx {
            None => Some(&process.group),
            Some(ctx) => process.contexts.get(&ctx),
        }
    }

    pub fn stats(&self, key: &RowKey) -> Option<&Stats> {
        self.group(key).map(|g| g.stats(key.kind))
    }

    pub fn comm(&self, pid: u32) -> &str {
        self.processes.get(&pid).map_or("?", |p| p.comm.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub live: Aggregates,
    pub counters: BTreeMap<CtxKey, CtxCounters>,
    /// Iocbs per (pid, ctx) reaped from the AIO ring in user memory since the
    /// start (not cleared, like the counters): the kernel's `events_reaped`
    /// never sees them, so in flight subtracts them.
    ring_reaped: BTreeMap<(u32, u64), u64>,
    prev_counter_sums: Option<(u64, u64, u64)>,
    /// The light tier above 1 (the I/O of 1/N of the time is a record), where
    /// counts, bytes, ops, segments and errors come from the kernel's
    /// counters and records add only their depth (latency, stages, bios).
    pub sample_every: u64,
    /// When the tier last switched (`set_tier`, monotonic ns), and the
    /// sampling before: a record submitted before is counted as then.
    tier_since_ns: u64,
    every_before: u64,
    /// What each tier cost when it last ran: light, full.
    pub tier_costs: [Option<Overhead>; 2],
    /// The kernel's counts at the last tick: (iocbs, bytes, segments,
    /// segments histogram) by (pid, ctx, opcode), and (failed events, short
    /// submits) by context.
    prev_ops: BTreeMap<(u32, u64, u16), OpCounts>,
    prev_errors: BTreeMap<CtxKey, u64>,
    pub losses: LossCounts,
    /// aio-trace's own cost over the last tick, for the header.
    pub overhead: Option<Overhead>,
    prev_overhead_sample: Option<OverheadSample>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Self {
            live: Aggregates::new(),
            counters: BTreeMap::new(),
            ring_reaped: BTreeMap::new(),
            prev_counter_sums: None,
            sample_every: 1,
            tier_since_ns: 0,
            every_before: 1,
            tier_costs: [None, None],
            prev_ops: BTreeMap::new(),
            prev_errors: BTreeMap::new(),
            losses: LossCounts::default(),
            overhead: None,
            prev_overhead_sample: None,
        }
    }

    /// Adds one iocb. `detailed_contexts`: a new context of this process
    /// keeps latencies too, not just counts (they cost a fraction of the
    /// histograms, and only a shown context needs them).
    pub fn record(&mut self, r: &IocbRecord, detailed_contexts: bool) {
        // The kernel's counters that this corrects count AIO iocbs only.
        if r.api() == Api::Aio && matches!(end_to_end_ns(r), Some((_, true))) {
            *self.ring_reaped.entry((r.pid, r.ctx)).or_default() += 1;
        }
        // Counted by the kernel if the tier at its submission was light.
        let every = if r.submit_ns < self.tier_since_ns {
            self.every_before
        } else {
            self.sample_every
        };
        let counted = every > 1;
        if counted {
            self.live.totals.record_sampled(r);
        } else {
            self.live.totals.record(r);
        }
        let process = self.live.processes.entry(r.pid).or_default();
        if process.comm.is_empty() {
            process.comm = comm_str(&r.comm).into_owned();
        }
        process.cgroup = r.cgroup;
        process.group.record(r, counted);
        self.live
            .cgroups
            .entry(r.cgroup)
            .or_default()
            .record(r, counted);
        process
            .contexts
            .entry(Ctx::of(r))
            .or_insert_with(|| {
                if detailed_contexts {
                    Group::default()
                } else {
                    Group::counts_only()
                }
            })
            .record(r, counted);
    }

    /// The light tier: what the kernel counted since the last tick, into
    /// the totals, each process and each of its AIO contexts. A process
    /// none of whose iocbs was sampled yet has no name until one is.
    fn count_kernel(&mut self, snapshot: &Snapshot) {
        for now in &snapshot.ops {
            let key = (now.pid, now.ctx, now.opcode);
            let then = self.prev_ops.get(&key).cloned().unwrap_or_default();
            let api = now.api;
            let c = Counted {
                class: OpClass::of(Op::new(api, now.opcode)),
                iocbs: now.iocbs.wrapping_sub(then.iocbs),
                bytes: now.bytes.wrapping_sub(then.bytes),
                segments: now.segments.wrapping_sub(then.segments),
                segs_log2: std::array::from_fn(|b| {
                    now.segs_log2[b].wrapping_sub(then.segs_log2[b])
                }),
            };
            self.prev_ops.insert(key, now.clone());
            if c.iocbs == 0 {
                continue;
            }
            let kind = if matches!(c.class, OpClass::Preadv | OpClass::Pwritev) {
                Kind::Vectored
            } else {
                Kind::Scalar
            };
            self.live.totals.add_counted(&c);
            let process = self.live.processes.entry(now.pid).or_default();
            process.group.count(kind, &c);
            // The kernel's counts carry no cgroup: the process's, as its
            // sampled records last gave it.
            if process.cgroup != 0 {
                self.live
                    .cgroups
                    .entry(process.cgroup)
                    .or_default()
                    .count(kind, &c);
            }
            let ctx = process
                .contexts
                .entry(Ctx { api, id: now.ctx })
                .or_insert_with(Group::counts_only);
            ctx.count(kind, &c);
            // Synchronous calls that failed (AIO's failed events are the
            // context's, below).
            let failed = now.failed.wrapping_sub(then.failed);
            if failed != 0 {
                ctx.total.count_errors(failed);
                process.group.total.count_errors(failed);
                self.live.totals.count_errors(failed);
            }
        }
        for (key, c) in &snapshot.counters {
            let now = c.events_failed.wrapping_add(c.short_submits);
            let then = self.prev_errors.insert(*key, now).unwrap_or(0);
            let errors = now.wrapping_sub(then);
            if errors == 0 {
                continue;
            }
            self.live.totals.count_errors(errors);
            let process = self.live.processes.entry(key.pid).or_default();
            process.group.total.count_errors(errors);
            process
                .contexts
                .entry(Ctx {
                    api: Api::Aio,
                    id: key.ctx,
                })
                .or_insert_with(Group::counts_only)
                .total
                .count_errors(errors);
        }
    }

    /// Turns the histograms of a process's contexts on (they fill from the
    /// next tick) or off.
    pub fn set_contexts_detailed(&mut self, pid: u32, on: bool) {
        if let Some(process) = self.live.processes.get_mut(&pid) {
            for ctx in process.contexts.values_mut() {
                ctx.set_detailed(on);
            }
        }
    }

    /// The tier switched at `now_ns` to 1 in `every` (1: the full tier).
    /// The overhead interval restarts: a tick straddling the switch is
    /// neither tier's cost.
    pub fn set_tier(&mut self, every: u64, now_ns: u64) {
        self.every_before = self.sample_every;
        self.sample_every = every;
        self.tier_since_ns = now_ns;
        self.prev_overhead_sample = None;
    }

    /// Closes a tick of `secs` seconds with the kernel's counters and losses.
    pub fn tick(&mut self, secs: f64, snapshot: Snapshot) {
        // `--budget` moves N; the full tier (`t`) stays at 1.
        if let Some(every) = snapshot.sample_every
            && self.sample_every > 1
        {
            self.sample_every = every;
        }
        if self.sample_every > 1 {
            self.count_kernel(&snapshot);
        }
        self.live.totals.tick(secs);
        for group in self.live.cgroups.values_mut() {
            group.tick(secs);
        }
        for process in self.live.processes.values_mut() {
            process.group.tick(secs);
            for ctx in process.contexts.values_mut() {
                ctx.tick(secs);
            }
        }
        self.update_rates(secs, &snapshot.counters);
        if let Some(now) = snapshot.overhead_sample {
            if let Some(prev) = &self.prev_overhead_sample {
                let iocbs = (self.live.totals.last.iocbs_per_s * secs).round() as u64;
                let overhead = Overhead::between(prev, &now, secs, iocbs);
                self.tier_costs[usize::from(self.sample_every <= 1)] = Some(overhead);
                self.overhead = Some(overhead);
            }
            self.prev_overhead_sample = Some(now);
        }
        self.counters = snapshot.counters.into_iter().collect();
        self.losses = snapshot.losses;
    }

    /// Syscall rates from the change in the counters' sums since the last tick.
    fn update_rates(&mut self, secs: f64, counters: &[(CtxKey, CtxCounters)]) {
        let sums = counters.iter().fold((0, 0, 0), |acc, (_, c)| {
            (
                acc.0 + c.io_submit_calls,
                acc.1 + c.io_getevents_calls,
                acc.2 + c.events_reaped,
            )
        });
        if let Some(prev) = self.prev_counter_sums {
            let secs = if secs > 0.0 { secs } else { 1.0 };
            // Counters of destroyed contexts may vanish: never go negative.
            let submits = sums.0.saturating_sub(prev.0);
            let calls = sums.1.saturating_sub(prev.1);
            let events = sums.2.saturating_sub(prev.2);
            self.live.rates = SyscallRates {
                io_submit_per_s: submits as f64 / secs,
                io_getevents_per_s: calls as f64 / secs,
                events_per_getevents: (calls > 0).then(|| events as f64 / calls as f64),
            };
        }
        self.prev_counter_sums = Some(sums);
    }

    /// Iocbs submitted and not yet reaped, from the kernel's counters (and
    /// the records of iocbs reaped from the ring, which they do not see):
    /// of a process, or of one of its AIO contexts.
    pub fn in_flight(&self, pid: u32, ctx: Option<u64>) -> u64 {
        self.counters
            .iter()
            .filter(|(k, _)| k.pid == pid && ctx.is_none_or(|c| c == k.ctx))
            .map(|(k, c)| {
                let ring = self.ring_reaped.get(&(k.pid, k.ctx)).copied();
                c.iocbs_submitted
                    .saturating_sub(c.events_reaped)
                    .saturating_sub(ring.unwrap_or(0))
            })
            .sum()
    }

    /// Forgets every aggregate (the kernel's counters stay: in flight is
    /// absolute; the rates stay: they are the last tick's).
    pub fn clear(&mut self) {
        self.live.processes.clear();
        self.live.cgroups.clear();
        self.live.totals = Stats::counts_only();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aio_trace_common::{IOCB_CMD_PREAD, IOCB_CMD_PREADV};

    use super::*;
    use crate::tui::{
        state::tests::{counters, sample_state, ticked},
        stats::tests::iocb,
    };

    #[test]
    fn syscall_rates_and_in_flight_come_from_counters() {
        let mut s = ticked(sample_state());
        assert_eq!(s.store.in_flight(100, None), 4);
        assert_eq!(s.store.in_flight(100, Some(0xb)), 0);
        assert_eq!(
            s.store.in_flight(200, None),
            0,
            "ring-reaped iocbs are not in flight"
        );
        let snapshot = Snapshot {
            counters: vec![
                counters(100, 0xa, 140, 136, 50),
                counters(200, 0xc, 8, 6, 0),
            ],
            ops: Vec::new(),
            losses: LossCounts::default(),
            sample_every: None,
            overhead_sample: None,
        };
        s.tick(2.0, Duration::from_secs(3), snapshot);
        let rates = s.store.live.rates;
        assert_eq!(rates.io_submit_per_s, 50.0);
        assert_eq!(rates.io_getevents_per_s, 25.0);
        assert_eq!(rates.events_per_getevents, Some(2.0));
        assert_eq!(s.uptime, Duration::from_secs(3));
    }

    /// The light tier at 1/64: the kernel's counts make the rates, op mix, segments and
    /// errors; the one sampled record, the latencies.
    #[test]
    fn light_tier_counts_from_the_kernel_and_latencies_from_the_sample() {
        let mut store = Store::new();
        store.sample_every = 64;
        store.record(&iocb(100, 0xa, IOCB_CMD_PREADV, 8, 50_000), true);
        let preadv = OpCounts {
            pid: 100,
            ctx: 0xa,
            opcode: IOCB_CMD_PREADV,
            iocbs: 128,
            bytes: 128 * 32768,
            segments: 128 * 8,
            segs_log2: std::array::from_fn(|b| if b == 4 { 128 } else { 0 }),
            ..OpCounts::default()
        };
        let mut failed = counters(100, 0xa, 2, 128, 0);
        failed.1.events_failed = 3;
        let snapshot = |ops: Vec<OpCounts>, calls| Snapshot {
            counters: vec![calls],
            ops,
            ..Snapshot::default()
        };
        store.tick(1.0, snapshot(vec![preadv.clone()], failed));
        let totals = &store.live.totals;
        assert_eq!(totals.iocbs, 128, "the kernel's count, not the sample's");
        assert_eq!(totals.bytes, 128 * 32768);
        assert_eq!(totals.last.iocbs_per_s, 128.0);
        assert_eq!(totals.avg_segments(), Some(8.0));
        assert_eq!(totals.segments.buckets[4], 128);
        assert_eq!(totals.errors, 3);
        let process = &store.live.processes[&100];
        assert_eq!(process.comm, "fio");
        assert_eq!(process.group.split[Kind::Vectored as usize].iocbs, 128);
        assert_eq!(process.group.total.latency.len(), 1, "the sample's");
        // The next tick adds what grew since.
        let grown = OpCounts {
            iocbs: 192,
            bytes: 192 * 32768,
            segments: 192 * 8,
            segs_log2: std::array::from_fn(|b| if b == 4 { 192 } else { 0 }),
            ..preadv
        };
        store.tick(1.0, snapshot(vec![grown], failed));
        assert_eq!(store.live.totals.iocbs, 192);
        assert_eq!(store.live.totals.last.iocbs_per_s, 64.0);
        assert_eq!(store.live.totals.errors, 3);
    }

    #[test]
    fn overhead_is_per_tick_and_per_iocb() {
        let mut s = sample_state();
        let sample = |bpf_ms: u64, cpu_ms: u64| Snapshot {
            overhead_sample: Some(OverheadSample {
                bpf_run_ns: Some(bpf_ms * 1_000_000),
                cpu_ns: cpu_ms * 1_000_000,
                workload_cpu_ns: None,
                rss_bytes: 40 << 20,
            }),
            ..Snapshot::default()
        };
        s.tick(1.0, Duration::from_secs(1), sample(10, 100));
        assert_eq!(s.store.overhead, None, "one sample is not an interval");
        for _ in 0..50 {
            s.record(&iocb(300, 0xd, IOCB_CMD_PREAD, 1, 60_000));
        }
        s.tick(1.0, Duration::from_secs(2), sample(30, 150));
        let o = s.store.overhead.unwrap();
        assert_eq!(o.bpf_ns_per_iocb, Some(20_000_000.0 / 50.0));
        assert_eq!(o.bpf_cpu_pct, Some(2.0));
        assert_eq!(o.user_cpu_pct, 5.0);
    }

    #[test]
    fn aggregates_per_process_and_context() {
        let s = ticked(sample_state());
        let live = &s.store.live;
        let fio = &live.processes[&100];
        assert_eq!(fio.comm, "fio");
        assert_eq!(fio.group.total.iocbs, 40);
        assert_eq!(fio.contexts.len(), 2);
        let aio = |id| Ctx { api: Api::Aio, id };
        assert_eq!(fio.contexts[&aio(0xa)].total.avg_segments(), Some(8.0));
        assert_eq!(fio.group.split[Kind::Scalar as usize].iocbs, 10);
        assert_eq!(fio.group.total.last.iocbs_per_s, 40.0);
        assert_eq!(live.totals.iocbs, 48);
        assert_eq!(live.processes[&200].group.total.ring_reaped, 2);
        assert_eq!(fio.group.total.bios_per_iocb(), Some(45.0 / 40.0));
        let postgres = &live.processes[&200].group.total;
        assert_eq!(postgres.bios_per_iocb(), Some(1.0), "fsync not counted");
        assert_eq!(postgres.merges, 5);
        assert_eq!(s.view.rows.len(), 2);
        // Busiest first.
        assert_eq!(s.view.rows[0].pid, 100);
    }
}
