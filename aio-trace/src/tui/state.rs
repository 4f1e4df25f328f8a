//! The state of `top`: the data store, the view over it, and what the header
//! says about the session. A plain struct: build it in a test, feed it
//! records, render it.
//!
//! Layer: joins `store` and `view` where an action changes both (a record
//! goes to a context the view expanded; expanding turns the store's
//! histograms on). It holds no kernel handle: the app feeds it.

use std::{collections::BTreeMap, time::Duration};

use aio_trace_common::IocbRecord;

use super::{
    store::{Aggregates, Snapshot, Store},
    view::View,
};
use crate::{
    blockdev::DevNames,
    cgroup::CgroupNames,
    model::{DevName, IocbView as _},
};

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

#[derive(Clone, Debug)]
pub struct State {
    pub host: String,
    pub kernel: String,
    /// Time since the probes were attached.
    pub uptime: Duration,
    /// What the tracer itself filters (-p, -c), for the header.
    pub trace_filter: String,
    /// One line for the header when something is off (BPF statistics).
    pub notice: Option<String>,
    /// Replaying a recording rather than tracing live.
    pub replay: Option<ReplayView>,
    pub store: Store,
    pub view: View,
    /// Names of the devices and cgroups the records name, resolved as they
    /// first appear: what the panels show beside maj:min and cgroup ids.
    pub names: Names,
    /// The tier switch (`t`), for a live trace started in the light tier.
    pub tier: Option<TierSwitch>,
}

/// `top`'s live tier switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierSwitch {
    /// The light tier's sampling (1/N of the time).
    pub every: u64,
    pub light: bool,
    /// A switch the session has not been told of yet.
    pub requested: Option<bool>,
}

impl TierSwitch {
    pub fn new(every: u64) -> Self {
        Self {
            every,
            light: true,
            requested: None,
        }
    }
}

/// Device names and cgroup paths, looked up once per device or cgroup.
#[derive(Clone, Debug)]
pub struct Names {
    devices: DevNames,
    cgroups: CgroupNames,
    pub device: BTreeMap<u32, String>,
    pub cgroup: BTreeMap<u64, String>,
}

impl Names {
    /// Names from `devices` and `cgroups` (a test's fakes or the system's).
    pub fn new(devices: DevNames, cgroups: CgroupNames) -> Self {
        Self {
            devices,
            cgroups,
            device: BTreeMap::new(),
            cgroup: BTreeMap::new(),
        }
    }

    fn learn(&mut self, r: &IocbRecord) {
        if let Some(dev) = r.device()
            && !self.device.contains_key(&dev.0)
        {
            let name = self.devices.name(dev.0);
            self.device.insert(
                dev.0,
                name.map_or_else(|| dev.to_string(), |n| n.to_string()),
            );
        }
        if r.cgroup != 0
            && !self.cgroup.contains_key(&r.cgroup)
            && let Some(path) = self.cgroups.path(r.cgroup)
        {
            let path = path.to_string();
            self.cgroup.insert(r.cgroup, path);
        }
    }

    /// The device's name (`vda`), its maj:min when it has none.
    pub fn device(&self, dev: u32) -> String {
        self.device
            .get(&dev)
            .cloned()
            .unwrap_or_else(|| DevName(dev).to_string())
    }

    /// The cgroup's path under the v2 mount, its id when not resolved; None for 0.
    pub fn cgroup(&self, id: u64) -> Option<String> {
        (id != 0).then(|| {
            self.cgroup
                .get(&id)
                .cloned()
                .unwrap_or_else(|| id.to_string())
        })
    }
}

impl State {
    pub fn new(host: impl Into<String>, kernel: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            kernel: kernel.into(),
            uptime: Duration::ZERO,
            trace_filter: "all processes".into(),
            notice: None,
            replay: None,
            store: Store::new(),
            view: View::default(),
            names: Names::new(DevNames::system(), CgroupNames::system()),
            tier: None,
        }
    }

    /// `t`: the other tier. The store counts records submitted from now on
    /// as the new tier does.
    pub fn toggle_tier(&mut self) {
        let Some(tier) = self.tier.as_mut() else {
            return;
        };
        if tier.light {
            // Where `--budget` has taken N: back to it.
            tier.every = self.store.sample_every;
        }
        tier.light = !tier.light;
        tier.requested = Some(tier.light);
        let every = if tier.light { tier.every } else { 1 };
        self.store.set_tier(every, crate::clock::monotonic_ns());
    }

    /// A context's latencies are seen only under its expanded process:
    /// until then it keeps counts.
    pub fn record(&mut self, r: &IocbRecord) {
        self.names.learn(r);
        let expanded = self.view.expanded.contains(&r.pid);
        self.store.record(r, expanded);
    }

    /// Closes a tick of `secs` seconds with the kernel's counters and losses.
    pub fn tick(&mut self, secs: f64, uptime: Duration, snapshot: Snapshot) {
        self.uptime = uptime;
        self.store.tick(secs, snapshot);
        if !self.view.paused {
            self.view.refresh(&self.store);
        }
    }

    /// What the table and detail view show: live, or as it was when paused.
    pub fn shown(&self) -> &Aggregates {
        self.view.shown(&self.store)
    }

    /// Shows or hides the contexts of the selected process.
    /// Expanding turns the contexts' histograms on (their latency columns
    /// fill from the next tick); collapsing turns them off.
    pub fn toggle_expand(&mut self) {
        // A cgroup row has no contexts of its own to expand.
        if let Some(row) = self.view.selected_row().filter(|r| r.cgroup.is_none()) {
            let expanded = self.view.toggle_expanded(row.pid);
            self.store.set_contexts_detailed(row.pid, expanded);
        }
        self.view.refresh(&self.store);
    }

    /// Forgets every aggregate and goes back to the (empty) table.
    pub fn clear(&mut self) {
        self.store.clear();
        self.view.cleared(&self.store);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aio_trace_common::{
        CtxCounters, CtxKey, IOCB_CMD_FSYNC, IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE,
    };

    use super::*;
    use crate::{
        model::LossCounts,
        tui::stats::tests::{iocb, staged},
    };

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
        // Names from a fake sysfs, so the snapshots are the same on every machine.
        let sysfs = crate::blockdev::fake::FakeSysfs::new("top-state");
        sysfs.disk("sdb", "8:16");
        s.names = Names::new(DevNames::new(&sysfs.root), CgroupNames::new(None));
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

    /// The ring of `uring_state`'s process: a kernel address.
    pub(crate) const RING: u64 = 0xffff_8881_0615_3000;

    /// `sample_state` and a process that uses both interfaces: PREADV on an
    /// AIO context, and on an io_uring ring READV (waited for in
    /// io_uring_enter) and READ_FIXED (taken from the CQ ring, so no reap).
    /// `expanded`: its contexts shown from the start, latencies and all.
    pub(crate) fn uring_state(expanded: bool) -> State {
        use aio_trace_common::{API_IO_URING, IORING_OP_READ_FIXED, IORING_OP_READV};
        let mut s = sample_state();
        if expanded {
            s.view.toggle_expanded(300);
        }
        let uring = |opcode: u8, segs, latency| IocbRecord {
            api: API_IO_URING,
            ..iocb(300, RING, opcode.into(), segs, latency)
        };
        for _ in 0..4 {
            s.record(&named(iocb(300, 0xe, IOCB_CMD_PREADV, 4, 200_000), "db"));
        }
        for _ in 0..8 {
            let r = staged(
                uring(IORING_OP_READV, 4, 80_000),
                1,
                [2_000, 1_000, 70_000, 2_000],
            );
            s.record(&named(r, "db"));
        }
        for _ in 0..4 {
            let r = staged(
                uring(IORING_OP_READ_FIXED, 1, 50_000),
                1,
                [1_000, 1_000, 40_000, 1_000],
            );
            s.record(&named(IocbRecord { reap_ns: 0, ..r }, "db"));
        }
        s
    }

    pub(crate) fn counters(
        pid: u32,
        ctx: u64,
        submitted: u64,
        reaped: u64,
        calls: u64,
    ) -> (CtxKey, CtxCounters) {
        (
            CtxKey {
                pid,
                op: aio_trace_common::CTX_OP_CALLS,
                ctx,
            },
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
            ops: Vec::new(),
            losses: LossCounts::default(),
            sample_every: None,
            overhead_sample: None,
        };
        s.tick(1.0, Duration::from_secs(1), snapshot);
        s
    }
}
