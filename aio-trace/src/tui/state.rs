//! The state of `top`: per process (and per context) aggregates updated from
//! records and ticks, and what the user chose to see. A plain struct: build it
//! in a test, feed it records, render it.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::Duration,
};

use aio_trace_common::{CtxCounters, CtxKey, IocbRecord};

use super::stats::{OpClass, Stats, end_to_end_ns};
use crate::model::{LossCounts, SelfOverhead, SelfSample, comm_str};

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
        if crate::model::Op::from_opcode(r.opcode).is_vectored() {
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

/// A process's or a context's stats, whole and split by kind.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub total: Stats,
    pub split: [Stats; 2],
    pub recent: VecDeque<IocbRecord>,
}

impl Group {
    fn record(&mut self, r: &IocbRecord) {
        self.total.record(r);
        self.split[Kind::of(r) as usize].record(r);
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
        }
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

#[derive(Clone, Debug, Default)]
pub struct Process {
    pub comm: String,
    pub group: Group,
    pub contexts: BTreeMap<u64, Group>,
}

/// What a table row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub pid: u32,
    /// A context row under an expanded process.
    pub ctx: Option<u64>,
    /// One half of a split row (`v`).
    pub kind: Option<Kind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Iocbs,
    Bytes,
    Segments,
    InFlight,
    P50,
    P99,
    Errors,
    Pid,
    Comm,
}

impl SortBy {
    const CYCLE: [Self; 9] = [
        Self::Iocbs,
        Self::Bytes,
        Self::Segments,
        Self::InFlight,
        Self::P50,
        Self::P99,
        Self::Errors,
        Self::Pid,
        Self::Comm,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Self::Iocbs => "IOCB/s",
            Self::Bytes => "MB/s",
            Self::Segments => "SEGS",
            Self::InFlight => "INFL",
            Self::P50 => "P50",
            Self::P99 => "P99",
            Self::Errors => "ERR",
            Self::Pid => "PID",
            Self::Comm => "COMM",
        }
    }
    fn next(self) -> Self {
        let i = Self::CYCLE.iter().position(|&s| s == self).unwrap_or(0);
        Self::CYCLE[(i + 1) % Self::CYCLE.len()]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Pid(u32),
    Op(OpClass),
    /// Substring of the task name.
    Comm(String),
}

impl Filter {
    /// A number is a pid, an op name an op, anything else part of a comm.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Ok(pid) = text.parse() {
            return Some(Self::Pid(pid));
        }
        Some(match OpClass::parse(text) {
            Some(op) => Self::Op(op),
            None => Self::Comm(text.to_owned()),
        })
    }

    fn admits(&self, pid: u32, process: &Process) -> bool {
        match self {
            Self::Pid(p) => *p == pid,
            Self::Comm(c) => process.comm.contains(c.as_str()),
            Self::Op(op) => process.group.total.count(*op) > 0,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Pid(p) => format!("pid {p}"),
            Self::Op(op) => format!("op {}", op.name()),
            Self::Comm(c) => format!("comm ~{c}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Table,
    Detail,
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
    pub losses: LossCounts,
    /// What tracing costs so far (None when replaying).
    pub self_cost: Option<SelfSample>,
}

/// Where a replay (`top --replay`) stands, for the header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayView {
    /// The recording's name.
    pub file: String,
    pub speed: f64,
    pub position_ns: u64,
    pub duration_ns: u64,
    pub playing: bool,
    pub ended: bool,
    /// The recording's syscall counters (its `summary` lines), shown once
    /// the replay reached the end: they are totals, not rates.
    pub syscalls: Option<crate::tui::replay::SyscallTotals>,
}

/// Processes, totals and rates as they were when paused.
type Frozen = (BTreeMap<u32, Process>, Stats, SyscallRates);

#[derive(Clone, Debug)]
pub struct State {
    pub host: String,
    pub kernel: String,
    /// Time since the probes were attached.
    pub uptime: Duration,
    /// What the tracer itself filters (-p, -c), for the header.
    pub trace_filter: String,
    pub processes: BTreeMap<u32, Process>,
    pub totals: Stats,
    pub counters: BTreeMap<CtxKey, CtxCounters>,
    /// Iocbs per (pid, ctx) reaped from the AIO ring in user memory since the
    /// start (not cleared, like the counters): the kernel's `events_reaped`
    /// never sees them, so in flight subtracts them.
    ring_reaped: BTreeMap<(u32, u64), u64>,
    prev_counter_sums: Option<(u64, u64, u64)>,
    pub rates: SyscallRates,
    pub losses: LossCounts,
    /// aio-trace's own cost over the last tick, for the header.
    pub self_overhead: Option<SelfOverhead>,
    prev_self: Option<SelfSample>,
    /// One line for the header when something is off (BPF statistics).
    pub notice: Option<String>,
    pub sort: SortBy,
    pub reverse: bool,
    pub filter: Option<Filter>,
    /// Text being typed after `f` or `/`.
    pub filter_input: Option<String>,
    pub split: bool,
    pub expanded: BTreeSet<u32>,
    pub paused: bool,
    pub help: bool,
    pub screen: Screen,
    /// Rows as last refreshed (frozen while paused).
    pub rows: Vec<RowKey>,
    pub selected: usize,
    /// The processes and totals as they were when paused.
    frozen: Option<Box<Frozen>>,
    /// Replaying a recording rather than tracing live.
    pub replay: Option<ReplayView>,
}

impl State {
    pub fn new(host: impl Into<String>, kernel: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            kernel: kernel.into(),
            uptime: Duration::ZERO,
            trace_filter: "all processes".into(),
            processes: BTreeMap::new(),
            totals: Stats::counts_only(),
            counters: BTreeMap::new(),
            ring_reaped: BTreeMap::new(),
            prev_counter_sums: None,
            rates: SyscallRates::default(),
            losses: LossCounts::default(),
            self_overhead: None,
            prev_self: None,
            notice: None,
            sort: SortBy::Iocbs,
            reverse: false,
            filter: None,
            filter_input: None,
            split: false,
            expanded: BTreeSet::new(),
            paused: false,
            help: false,
            screen: Screen::Table,
            rows: Vec::new(),
            selected: 0,
            frozen: None,
            replay: None,
        }
    }

    pub fn record(&mut self, r: &IocbRecord) {
        if matches!(end_to_end_ns(r), Some((_, true))) {
            *self.ring_reaped.entry((r.pid, r.ctx)).or_default() += 1;
        }
        self.totals.record(r);
        let process = self.processes.entry(r.pid).or_insert_with(|| Process {
            comm: comm_str(&r.comm).into_owned(),
            ..Process::default()
        });
        process.group.record(r);
        // A context's latencies are seen only under its expanded process:
        // until then it keeps counts, which cost a fraction of histograms.
        let expanded = self.expanded.contains(&r.pid);
        process
            .contexts
            .entry(r.ctx)
            .or_insert_with(|| {
                if expanded {
                    Group::default()
                } else {
                    Group::counts_only()
                }
            })
            .record(r);
    }

    /// Closes a tick of `secs` seconds with the kernel's counters and losses.
    pub fn tick(&mut self, secs: f64, uptime: Duration, snapshot: Snapshot) {
        self.uptime = uptime;
        self.totals.tick(secs);
        for process in self.processes.values_mut() {
            process.group.tick(secs);
            for ctx in process.contexts.values_mut() {
                ctx.tick(secs);
            }
        }
        let sums = snapshot.counters.iter().fold((0, 0, 0), |acc, (_, c)| {
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
            self.rates = SyscallRates {
                io_submit_per_s: submits as f64 / secs,
                io_getevents_per_s: calls as f64 / secs,
                events_per_getevents: (calls > 0).then(|| events as f64 / calls as f64),
            };
        }
        self.prev_counter_sums = Some(sums);
        if let Some(now) = snapshot.self_cost {
            if let Some(prev) = &self.prev_self {
                let iocbs = (self.totals.last.iocbs_per_s * secs).round() as u64;
                self.self_overhead = Some(SelfOverhead::between(prev, &now, secs, iocbs));
            }
            self.prev_self = Some(now);
        }
        self.counters = snapshot.counters.into_iter().collect();
        self.losses = snapshot.losses;
        if !self.paused {
            self.refresh();
        }
    }

    /// What the table and detail view show: live, or as they were when paused.
    pub fn shown(&self) -> (&BTreeMap<u32, Process>, &Stats, &SyscallRates) {
        match &self.frozen {
            Some(f) => (&f.0, &f.1, &f.2),
            None => (&self.processes, &self.totals, &self.rates),
        }
    }

    /// Iocbs submitted and not yet reaped, from the kernel's counters (and
    /// the records of iocbs reaped from the ring, which they do not see).
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

    pub fn group(&self, key: &RowKey) -> Option<&Group> {
        let process = self.shown().0.get(&key.pid)?;
        match key.ctx {
            None => Some(&process.group),
            Some(ctx) => process.contexts.get(&ctx),
        }
    }

    pub fn stats(&self, key: &RowKey) -> Option<&Stats> {
        self.group(key).map(|g| g.stats(key.kind))
    }

    pub fn comm(&self, pid: u32) -> &str {
        self.shown().0.get(&pid).map_or("?", |p| p.comm.as_str())
    }

    /// Rebuilds the row list: filter, sort, expand, split; keeps the selection on its row.
    pub fn refresh(&mut self) {
        let selected = self.rows.get(self.selected).copied();
        let processes = self.shown().0;
        let kinds: &[Option<Kind>] = if self.split {
            &[Some(Kind::Vectored), Some(Kind::Scalar)]
        } else {
            &[None]
        };
        let mut pids: Vec<u32> = processes
            .iter()
            .filter(|(pid, p)| self.filter.as_ref().is_none_or(|f| f.admits(**pid, p)))
            .map(|(pid, _)| *pid)
            .collect();
        pids.sort_by(|a, b| {
            let order = self.compare(
                &RowKey {
                    pid: *a,
                    ctx: None,
                    kind: None,
                },
                &RowKey {
                    pid: *b,
                    ctx: None,
                    kind: None,
                },
            );
            if self.reverse { order.reverse() } else { order }
        });
        let mut rows = Vec::new();
        for pid in pids {
            let process = &processes[&pid];
            for &kind in kinds {
                let key = RowKey {
                    pid,
                    ctx: None,
                    kind,
                };
                if kind.is_none() || process.group.stats(kind).iocbs > 0 {
                    rows.push(key);
                }
            }
            if self.expanded.contains(&pid) {
                for (&ctx, group) in &process.contexts {
                    for &kind in kinds {
                        if kind.is_none() || group.stats(kind).iocbs > 0 {
                            rows.push(RowKey {
                                pid,
                                ctx: Some(ctx),
                                kind,
                            });
                        }
                    }
                }
            }
        }
        self.rows = rows;
        self.selected = selected
            .and_then(|s| self.rows.iter().position(|r| *r == s))
            .unwrap_or(self.selected)
            .min(self.rows.len().saturating_sub(1));
    }

    /// Descending by the sort column (ascending for PID and COMM), then by pid.
    fn compare(&self, a: &RowKey, b: &RowKey) -> Ordering {
        let (Some(sa), Some(sb)) = (self.stats(a), self.stats(b)) else {
            return Ordering::Equal;
        };
        let desc = |x: f64, y: f64| y.total_cmp(&x);
        let opt = |x: Option<u64>, y: Option<u64>| y.cmp(&x);
        let primary = match self.sort {
            SortBy::Iocbs => desc(sa.last.iocbs_per_s, sb.last.iocbs_per_s),
            SortBy::Bytes => desc(sa.last.bytes_per_s, sb.last.bytes_per_s),
            SortBy::Segments => desc(
                sa.avg_segments().unwrap_or(0.0),
                sb.avg_segments().unwrap_or(0.0),
            ),
            SortBy::InFlight => self
                .in_flight(b.pid, b.ctx)
                .cmp(&self.in_flight(a.pid, a.ctx)),
            SortBy::P50 => opt(sa.p50_ns, sb.p50_ns),
            SortBy::P99 => opt(sa.last.p99_ns, sb.last.p99_ns),
            SortBy::Errors => sb.errors.cmp(&sa.errors),
            SortBy::Pid => a.pid.cmp(&b.pid),
            SortBy::Comm => self.comm(a.pid).cmp(self.comm(b.pid)),
        };
        primary.then(a.pid.cmp(&b.pid))
    }

    pub fn selected_row(&self) -> Option<RowKey> {
        self.rows.get(self.selected).copied()
    }

    pub fn select_next(&mut self) {
        if self.selected + 1 < self.rows.len() {
            self.selected += 1;
        }
    }

    pub fn select_prev(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn cycle_sort(&mut self) {
        self.sort = self.sort.next();
        self.refresh();
    }

    pub fn reverse_sort(&mut self) {
        self.reverse = !self.reverse;
        self.refresh();
    }

    pub fn toggle_split(&mut self) {
        self.split = !self.split;
        self.refresh();
    }

    /// Shows or hides the contexts of the selected process.
    /// Expanding turns the contexts' histograms on (their latency columns
    /// fill from the next tick); collapsing turns them off.
    pub fn toggle_expand(&mut self) {
        if let Some(row) = self.selected_row() {
            let expanded = !self.expanded.remove(&row.pid);
            if expanded {
                self.expanded.insert(row.pid);
            }
            if let Some(process) = self.processes.get_mut(&row.pid) {
                for ctx in process.contexts.values_mut() {
                    ctx.set_detailed(expanded);
                }
            }
        }
        self.refresh();
    }

    /// The trace goes on counting; the table and detail view stop changing.
    pub fn toggle_pause(&mut self) {
        self.paused = !self.paused;
        self.frozen = self
            .paused
            .then(|| Box::new((self.processes.clone(), self.totals.clone(), self.rates)));
        self.refresh();
    }

    /// Forgets every aggregate (the kernel's counters stay: in flight is absolute).
    pub fn clear(&mut self) {
        self.processes.clear();
        self.totals = Stats::counts_only();
        if self.paused {
            self.frozen = Some(Box::new((
                BTreeMap::new(),
                Stats::counts_only(),
                self.rates,
            )));
        }
        self.screen = Screen::Table;
        self.refresh();
    }

    pub fn enter(&mut self) {
        if self.selected_row().is_some() {
            self.screen = Screen::Detail;
        }
    }

    pub fn back(&mut self) {
        if self.help {
            self.help = false;
        } else {
            self.screen = Screen::Table;
        }
    }

    pub fn begin_filter(&mut self) {
        self.filter_input = Some(String::new());
    }

    /// Applies the typed filter; an empty one removes it.
    pub fn commit_filter(&mut self) {
        if let Some(text) = self.filter_input.take() {
            self.filter = Filter::parse(&text);
            self.selected = 0;
            self.refresh();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aio_trace_common::{IOCB_CMD_FSYNC, IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE};

    use super::*;
    use crate::tui::stats::tests::{iocb, staged};

    fn named(mut r: IocbRecord, comm: &str) -> IocbRecord {
        r.comm = [0; 16];
        r.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        r
    }

    /// fio: PREADV 8 × 4 KiB (one bio each, a few split in two) and PREAD;
    /// postgres: PWRITE (merged), buffered FSYNC (no stages) and two PWRITEs
    /// it reaped from the AIO ring (no reap time).
    pub(crate) fn sample_state() -> State {
        let mut s = State::new("testhost", "6.18.0");
        for i in 0..30 {
            let bios = if i % 6 == 0 { 2 } else { 1 };
            s.record(&named(
                staged(
                    iocb(100, 0xa, IOCB_CMD_PREADV, 8, 120_000),
                    bios,
                    [3_000, 1_000, 100_000, 4_000],
                ),
                "fio",
            ));
        }
        for _ in 0..10 {
            s.record(&named(
                staged(
                    iocb(100, 0xb, IOCB_CMD_PREAD, 1, 60_000),
                    1,
                    [1_500, 500, 50_000, 3_000],
                ),
                "fio",
            ));
        }
        for _ in 0..5 {
            let mut r = staged(
                iocb(200, 0xc, IOCB_CMD_PWRITE, 1, 900_000),
                1,
                [5_000, 2_000, 850_000, 8_000],
            );
            r.merges = 1;
            s.record(&named(r, "postgres"));
        }
        for _ in 0..2 {
            let r = staged(
                iocb(200, 0xc, IOCB_CMD_PWRITE, 1, 900_000),
                1,
                [5_000, 2_000, 850_000, 8_000],
            );
            s.record(&named(IocbRecord { reap_ns: 0, ..r }, "postgres"));
        }
        s.record(&named(
            iocb(200, 0xc, IOCB_CMD_FSYNC, 0, 3_000_000),
            "postgres",
        ));
        s
    }

    fn counters(
        pid: u32,
        ctx: u64,
        submitted: u64,
        reaped: u64,
        calls: u64,
    ) -> (CtxKey, CtxCounters) {
        (
            CtxKey { pid, _pad: 0, ctx },
            CtxCounters {
                io_submit_calls: submitted,
                iocbs_submitted: submitted,
                io_getevents_calls: calls,
                events_reaped: reaped,
                ..Default::default()
            },
        )
    }

    pub(crate) fn ticked(mut s: State) -> State {
        let snapshot = Snapshot {
            counters: vec![counters(100, 0xa, 40, 36, 0), counters(200, 0xc, 8, 6, 0)],
            losses: LossCounts::default(),
            self_cost: None,
        };
        s.tick(1.0, Duration::from_secs(1), snapshot);
        s
    }

    #[test]
    fn syscall_rates_and_in_flight_come_from_counters() {
        let mut s = ticked(sample_state());
        assert_eq!(s.in_flight(100, None), 4);
        assert_eq!(s.in_flight(100, Some(0xb)), 0);
        assert_eq!(
            s.in_flight(200, None),
            0,
            "ring-reaped iocbs are not in flight"
        );
        let snapshot = Snapshot {
            counters: vec![
                counters(100, 0xa, 140, 136, 50),
                counters(200, 0xc, 8, 6, 0),
            ],
            losses: LossCounts::default(),
            self_cost: None,
        };
        s.tick(2.0, Duration::from_secs(3), snapshot);
        assert_eq!(s.rates.io_submit_per_s, 50.0);
        assert_eq!(s.rates.io_getevents_per_s, 25.0);
        assert_eq!(s.rates.events_per_getevents, Some(2.0));
        assert_eq!(s.uptime, Duration::from_secs(3));
    }

    #[test]
    fn self_overhead_is_per_tick_and_per_iocb() {
        let mut s = sample_state();
        let sample = |bpf_ms: u64, cpu_ms: u64| Snapshot {
            self_cost: Some(SelfSample {
                bpf_run_ns: Some(bpf_ms * 1_000_000),
                cpu_ns: cpu_ms * 1_000_000,
                rss_bytes: 40 << 20,
            }),
            ..Snapshot::default()
        };
        s.tick(1.0, Duration::from_secs(1), sample(10, 100));
        assert_eq!(s.self_overhead, None, "one sample is not an interval");
        for _ in 0..50 {
            s.record(&iocb(300, 0xd, IOCB_CMD_PREAD, 1, 60_000));
        }
        s.tick(1.0, Duration::from_secs(2), sample(30, 150));
        let o = s.self_overhead.unwrap();
        assert_eq!(o.bpf_ns_per_iocb, Some(20_000_000.0 / 50.0));
        assert_eq!(o.bpf_cpu_pct, Some(2.0));
        assert_eq!(o.user_cpu_pct, 5.0);
    }

    #[test]
    fn sort_cycles_and_reverses() {
        let mut s = ticked(sample_state());
        assert_eq!(s.sort, SortBy::Iocbs);
        s.cycle_sort(); // MB/s
        assert_eq!(s.rows[0].pid, 100);
        s.cycle_sort(); // SEGS
        s.cycle_sort(); // INFL
        s.cycle_sort(); // P50
        assert_eq!(s.sort, SortBy::P50);
        assert_eq!(s.rows[0].pid, 200, "slowest first");
        s.reverse_sort();
        assert_eq!(s.rows[0].pid, 100);
        for _ in 0..5 {
            s.cycle_sort();
        }
        assert_eq!(s.sort, SortBy::Iocbs, "wraps around");
    }

    #[test]
    fn filters_by_pid_comm_and_op() {
        let mut s = ticked(sample_state());
        for (text, pids) in [
            ("200", vec![200]),
            ("post", vec![200]),
            ("preadv", vec![100]),
            ("fsync", vec![200]),
            ("nothing", vec![]),
            ("", vec![100, 200]),
        ] {
            s.begin_filter();
            s.filter_input = Some(text.into());
            s.commit_filter();
            let shown: Vec<u32> = s.rows.iter().map(|r| r.pid).collect();
            assert_eq!(shown, pids, "filter {text:?}");
        }
        assert_eq!(Filter::parse("42"), Some(Filter::Pid(42)));
    }

    #[test]
    fn split_and_expand_add_rows() {
        let mut s = ticked(sample_state());
        s.toggle_split();
        let keys: Vec<_> = s.rows.iter().map(|r| (r.pid, r.kind)).collect();
        assert_eq!(
            keys,
            [
                (100, Some(Kind::Vectored)),
                (100, Some(Kind::Scalar)),
                (200, Some(Kind::Scalar))
            ]
        );
        assert_eq!(s.stats(&s.rows[0]).unwrap().avg_segments(), Some(8.0));
        assert_eq!(s.stats(&s.rows[1]).unwrap().avg_segments(), Some(1.0));
        s.toggle_split();
        s.toggle_expand();
        let ctxs: Vec<_> = s.rows.iter().map(|r| (r.pid, r.ctx)).collect();
        assert_eq!(
            ctxs,
            [(100, None), (100, Some(0xa)), (100, Some(0xb)), (200, None)]
        );
    }

    #[test]
    fn pause_freezes_the_view_but_not_the_counting() {
        let mut s = ticked(sample_state());
        s.toggle_pause();
        s.record(&iocb(300, 1, IOCB_CMD_PREAD, 1, 1000));
        s = ticked(s);
        assert_eq!(s.rows.len(), 2, "display frozen");
        assert_eq!(s.processes.len(), 3, "still counting");
        s.toggle_pause();
        assert_eq!(s.rows.len(), 3);
        s.clear();
        assert!(s.rows.is_empty());
        assert_eq!(s.totals.iocbs, 0);
    }

    #[test]
    fn selection_follows_its_row_and_stays_in_range() {
        let mut s = ticked(sample_state());
        s.select_next();
        s.select_next();
        assert_eq!(s.selected, 1);
        s.reverse_sort();
        assert_eq!(s.selected_row().unwrap().pid, 200);
        s.enter();
        assert_eq!(s.screen, Screen::Detail);
        s.back();
        assert_eq!(s.screen, Screen::Table);
    }

    #[test]
    fn aggregates_per_process_and_context() {
        let s = ticked(sample_state());
        let fio = &s.processes[&100];
        assert_eq!(fio.comm, "fio");
        assert_eq!(fio.group.total.iocbs, 40);
        assert_eq!(fio.contexts.len(), 2);
        assert_eq!(fio.contexts[&0xa].total.avg_segments(), Some(8.0));
        assert_eq!(fio.group.split[Kind::Scalar as usize].iocbs, 10);
        assert_eq!(fio.group.total.last.iocbs_per_s, 40.0);
        assert_eq!(s.totals.iocbs, 48);
        assert_eq!(s.processes[&200].group.total.ring_reaped, 2);
        assert_eq!(fio.group.total.bios_per_iocb(), Some(45.0 / 40.0));
        let postgres = &s.processes[&200].group.total;
        assert_eq!(postgres.bios_per_iocb(), Some(1.0), "fsync not counted");
        assert_eq!(postgres.merges, 5);
        assert_eq!(s.rows.len(), 2);
        // Busiest first.
        assert_eq!(s.rows[0].pid, 100);
    }
}
