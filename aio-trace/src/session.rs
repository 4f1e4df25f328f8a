//! A tracing session: drains the ring buffer into a sink until told to stop,
//! reclaims in-flight entries nothing will reap, then drains what is left.
//!
//! Layer: session, above the loader and the reader. Imports `clock`, `loader`,
//! `reader` and `model`; the views and commands import it, never the reverse.

use std::{
    collections::HashMap as StdHashMap,
    future::Future,
    io,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use aio_trace_common::{
    CTX_DESTROY, CTX_EXIT, CTX_OP_CALLS, CtxKey, IOCB_RES_UNKNOWN, IocbRecord, RECORD_ORDER,
    SEQ_URING,
};
use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::{
    blockdev::{DevNames, Disk},
    loader::Tracer,
    model::{ContextSummary, DeviceSummary, IocbView, LossCounts, Staleness, staleness},
    reader::{Record, records},
    sampler::{self, Sampler, Step},
};

/// Where records go: snoop lines, JSON, aggregates.
pub trait Sink {
    fn record(&mut self, record: &Record) -> io::Result<()>;
    /// Called after each batch (one ring buffer wake-up).
    fn flush(&mut self) -> io::Result<()>;
}

/// Passes on the records whose file is on `disk`, and context records. An
/// iocb without a dispatch (buffered I/O, fsync, a raw block device) has no
/// device, so it is dropped, as biosnoop's disk filter drops what it cannot
/// place.
pub struct OnDisk<'a, S> {
    pub inner: &'a mut S,
    pub disk: Disk,
}

impl<S: Sink> Sink for OnDisk<'_, S> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        let on_disk = |r: &IocbRecord| r.device().is_some_and(|d| self.disk.contains(d.0));
        match record {
            Record::Iocb(r) | Record::Syscall(r) if !on_disk(r) => Ok(()),
            _ => self.inner.record(record),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How often a window that cannot open is reported.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// After a switch into the full tier, how long an io_event of an iocb the
/// light tier submitted is expected rather than a loss.
const SETTLE: Duration = Duration::from_secs(2);
/// How often in-flight entries are checked, and when one is given up on.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The most records delivered per drain before the loop looks at its timers
/// and the stop signal again.
const MAX_BATCH: usize = 1 << 16;
/// How often the ring buffer is drained without a wake-up.
const POLL_EVERY: Duration = Duration::from_millis(50);
pub const DEFAULT_INFLIGHT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after its kernel completion an unreaped iocb is taken to have been
/// reaped from the user-space AIO ring.
pub const REAP_GRACE: Duration = Duration::from_secs(2);

/// The next tier switch asked for; never, without a channel or once its
/// sender is gone.
async fn next_request(
    requests: &mut Option<tokio::sync::mpsc::UnboundedReceiver<bool>>,
) -> Option<bool> {
    match requests {
        Some(rx) => match rx.recv().await {
            Some(light) => Some(light),
            None => {
                *requests = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// In-flight entries the user half gave up on (the kernel counts the rest).
#[derive(Debug, Default)]
pub struct UserLosses {
    pub aged_out: AtomicU64,
    pub abandoned: AtomicU64,
}

impl UserLosses {
    /// `kernel` with the user-side counts filled in.
    pub fn add_to(&self, kernel: LossCounts) -> LossCounts {
        LossCounts {
            aged_out: self.aged_out.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
            ..kernel
        }
    }
}

pub struct Session {
    pub tracer: Tracer,
    ring: AsyncFd<RingBuf<MapData>>,
    inflight_timeout_ns: u64,
    /// In-flight entries given up on by the user half.
    user_losses: Arc<UserLosses>,
    completed_unreaped: u64,
    /// Contexts destroyed in the current batch, with when, swept after it.
    destroyed: Vec<(CtxKey, u64)>,
    /// The light tier's windows (None in the full tier).
    sampler: Option<Sampler>,
    /// Tier switches asked for while running (`top`'s key): true for light.
    tier_requests: Option<tokio::sync::mpsc::UnboundedReceiver<bool>>,
    /// After a switch into the full tier: when an unmatched event becomes a
    /// loss again.
    settled_ns: Option<u64>,
    /// When a window that could not open was last reported.
    window_warned_ns: Option<u64>,
}

impl Session {
    pub fn new(
        tracer: Tracer,
        ring: RingBuf<MapData>,
        inflight_timeout: Duration,
    ) -> io::Result<Self> {
        Ok(Self {
            // SAFETY: the ring buffer owns its fd, and the AsyncFd owns the
            // ring buffer, so the fd stays open for as long as it is registered.
            ring: unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
                .map_err(io::Error::from)?,
            inflight_timeout_ns: inflight_timeout.as_nanos() as u64,
            user_losses: Arc::default(),
            completed_unreaped: 0,
            destroyed: Vec::new(),
            sampler: tracer.light().then(|| {
                Sampler::new(tracer.sample_every, crate::clock::monotonic_ns())
                    .with_budget(tracer.budget)
            }),
            tier_requests: None,
            settled_ns: None,
            window_warned_ns: None,
            tracer,
        })
    }

    /// Moves the light tier's window schedule on.
    fn step_sampler(&mut self) {
        let Some(sampler) = self.sampler.as_mut() else {
            return;
        };
        if !self.tracer.light() {
            if self
                .settled_ns
                .is_some_and(|at| crate::clock::monotonic_ns() >= at)
            {
                self.settled_ns = None;
                self.tracer.end_settling();
            }
            return;
        }
        let now = crate::clock::monotonic_ns();
        match sampler.step(now) {
            Some(Step::Arm) => {
                if sampler.budgeted() {
                    let run_ns = self.tracer.program_costs().iter().map(|c| c.run_ns).sum();
                    sampler.adapt(now, run_ns);
                }
                if let Err(reason) = self.tracer.arm_window()
                    && self
                        .window_warned_ns
                        .is_none_or(|at| now.saturating_sub(at) >= WARN_EVERY.as_nanos() as u64)
                {
                    self.window_warned_ns = Some(now);
                    eprintln!(
                        "aio-trace: a sampling window could not open ({reason}): the light \
                         tier counts on without depth (not reported again for a minute)"
                    );
                }
            }
            Some(Step::Open) => self.tracer.open_window(),
            Some(Step::Close) => self.tracer.close_window(),
            Some(Step::EndDepth) => self.tracer.end_window_depth(),
            Some(Step::EndReaps) => self.tracer.end_window_reaps(),
            None => {}
        }
    }

    /// Takes tier switches from `requests` while running (see `switch_tier`).
    pub fn listen_for_tier(&mut self, requests: tokio::sync::mpsc::UnboundedReceiver<bool>) {
        self.tier_requests = Some(requests);
    }

    /// 1 in how many units of time the light tier traces in full, as it
    /// changes (`--budget`); None in the full tier.
    pub fn sample_every(&self) -> Option<Arc<AtomicU64>> {
        self.sampler.as_ref().map(Sampler::every_handle)
    }

    /// Switches tier live (`top`'s key): into the full tier every probe is
    /// attached; back into the light tier, what is in flight is waited for
    /// as after a window. A trace started in the full tier has no window
    /// probes to detach, so it stays there (false).
    pub fn switch_tier(&mut self, light: bool) -> bool {
        let Some(sampler) = self.sampler.as_mut() else {
            return false;
        };
        for (probe, reason) in self.tracer.switch_tier(light) {
            eprintln!(
                "aio-trace: the full tier goes without {}: {}",
                probe.tracepoint(),
                reason
            );
        }
        let now = crate::clock::monotonic_ns();
        if light {
            sampler.resume(now);
            self.settled_ns = None;
        } else {
            self.settled_ns = Some(now + SETTLE.as_nanos() as u64);
        }
        true
    }

    /// The exit lines: per (pid, ctx) counters, and the block devices that saw I/O.
    pub fn exit_summaries(&self) -> (Vec<ContextSummary>, Vec<DeviceSummary>) {
        let contexts = self
            .tracer
            .counters()
            .iter()
            .map(|(key, counters)| ContextSummary::new(key, counters))
            .collect();
        let mut names = DevNames::system();
        let devices = self
            .tracer
            .devices()
            .iter()
            .filter(|(_, c)| c.bios != 0 || c.requests != 0)
            // The block layer counts per whole disk, so a partition's disk is kept.
            .filter(|(dev, _)| self.tracer.disk.as_ref().is_none_or(|d| d.whole == *dev))
            .map(|(dev, c)| DeviceSummary::new(*dev, names.name(*dev).map(|n| n.to_string()), c))
            .collect();
        (contexts, devices)
    }

    /// Every loss so far, kernel and user side.
    pub fn losses(&self) -> LossCounts {
        self.user_losses.add_to(self.tracer.losses())
    }

    /// The user-side loss counters, readable from another thread while `run` goes on.
    pub fn user_losses(&self) -> Arc<UserLosses> {
        self.user_losses.clone()
    }

    /// Delivers records to `sink` until `stop` resolves (or the sink fails),
    /// then detaches the probes and delivers what the ring buffer still holds.
    /// With a disk to keep, only the records whose file is on it.
    pub async fn run(
        &mut self,
        sink: &mut impl Sink,
        stop: impl Future<Output = ()>,
    ) -> io::Result<()> {
        match self.tracer.disk.clone() {
            Some(disk) => {
                let mut on_disk = OnDisk { inner: sink, disk };
                self.run_into(&mut on_disk, stop).await
            }
            None => self.run_into(sink, stop).await,
        }
    }

    async fn run_into(
        &mut self,
        sink: &mut impl Sink,
        stop: impl Future<Output = ()>,
    ) -> io::Result<()> {
        // Records below the kernel's wake-up threshold are picked up by this tick.
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut windows = tokio::time::interval(sampler::TICK);
        windows.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let sampling = self.sampler.is_some();
        let mut tier_requests = self.tier_requests.take();
        tokio::pin!(stop);
        let result = loop {
            tokio::select! {
                () = &mut stop => break Ok(()),
                ready = self.ring.readable_mut() => {
                    let mut guard = match ready {
                        Ok(guard) => guard,
                        Err(e) => break Err(e),
                    };
                    guard.clear_ready();
                    if let Err(e) = self.drain(sink, MAX_BATCH) {
                        break Err(e);
                    }
                }
                _ = poll.tick() => {
                    if let Err(e) = self.drain(sink, MAX_BATCH) {
                        break Err(e);
                    }
                }
                _ = sweep.tick() => {
                    if let Err(e) = self.sweep(sink) {
                        break Err(e);
                    }
                }
                _ = windows.tick(), if sampling => self.step_sampler(),
                Some(light) = next_request(&mut tier_requests) => {
                    self.switch_tier(light);
                }
            }
        };
        self.tracer.detach();
        // Detached: nothing more comes in, so this drain ends.
        let drained = self.drain(sink, usize::MAX);
        let posted = self.deliver_posted(sink);
        result.and(drained).and(posted)
    }

    /// At the end, io_uring requests whose CQE the kernel posted but whose
    /// record waited for an io_uring_enter's return that the trace did not
    /// see: the application has their CQEs, so they are records (without a
    /// reap time). AIO iocbs completed but not reaped stay out: their events
    /// wait for an io_getevents.
    fn deliver_posted(&mut self, sink: &mut impl Sink) -> io::Result<()> {
        let table = &self.tracer.inflight;
        let mut posted = Vec::new();
        table.scan(|&key, &record| {
            if key.seq == SEQ_URING && record.complete_ts != 0 {
                posted.push((key, record));
            }
        })?;
        for (key, record) in posted {
            if table.remove(&key, record.submit_ns)? {
                sink.record(&Record::Iocb(record))?;
                self.completed_unreaped += 1;
            }
        }
        sink.flush()
    }

    /// Delivers every record the ring buffer holds now.
    ///
    /// At most `limit` records: a producer faster than the sink would
    /// otherwise keep this loop from ever returning to the stop signal. What
    /// is left is picked up by the next poll tick.
    fn drain(&mut self, sink: &mut impl Sink, limit: usize) -> io::Result<()> {
        let ring = self.ring.get_mut();
        let mut taken = 0;
        while taken < limit
            && let Some(item) = ring.next()
        {
            for record in records(&item) {
                // Records, not ring items: an io_getevents item holds up to 32.
                taken += 1;
                match record {
                    Ok(record) => {
                        if let (Some(sampler), Record::Iocb(r)) = (self.sampler.as_mut(), &record) {
                            sampler.saw(r);
                        }
                        // ctx 0 (never a context id) stands for all of the process's.
                        if let Record::Ctx(ctx) = &record
                            && (ctx.event == CTX_DESTROY || ctx.event == CTX_EXIT)
                        {
                            let key = CtxKey {
                                pid: ctx.pid,
                                op: CTX_OP_CALLS,
                                ctx: ctx.ctx,
                            };
                            self.destroyed.push((key, ctx.ts_ns));
                        }
                        sink.record(&record)?;
                    }
                    // A layout mismatch between halves is a build bug; say so once per record.
                    Err(e) => eprintln!("aio-trace: skipping undecodable record: {e}"),
                }
            }
        }
        if !self.destroyed.is_empty() {
            self.reclaim_destroyed(sink)?;
        }
        sink.flush()
    }

    /// io_destroy discards the events of iocbs still in flight: drop their
    /// entries. Only those submitted before the destroy: the kernel hands the
    /// same context id to the next io_setup, whose iocbs may already be in
    /// flight by the time this record is read.
    /// Those the kernel completed were reaped from the ring: records.
    fn reclaim_destroyed(&mut self, sink: &mut impl Sink) -> io::Result<()> {
        let destroyed = &self.destroyed;
        let table = &self.tracer.inflight;
        let mut doomed = Vec::new();
        table.scan(|k, record| {
            if destroyed.iter().any(|(d, at)| {
                d.pid == k.pid && (d.ctx == 0 || d.ctx == k.ctx) && record.submit_ns < *at
            }) {
                doomed.push((*k, *record));
            }
        })?;
        for (key, record) in doomed {
            if table.remove(&key, record.submit_ns)? {
                if record.kind == RECORD_ORDER {
                    // An address's submission order: no iocb of its own.
                } else {
                    deliver_unreaped(
                        sink,
                        record,
                        &self.user_losses.abandoned,
                        &mut self.completed_unreaped,
                    )?;
                }
            }
        }
        self.destroyed.clear();
        Ok(())
    }

    /// Delivers iocbs the kernel completed but nobody reaped with io_getevents
    /// within `REAP_GRACE` (the application reads the AIO ring in user memory):
    /// records with `complete_ns` set and no reap time. Drops in-flight entries
    /// of dead processes and entries past the timeout.
    fn sweep(&mut self, sink: &mut impl Sink) -> io::Result<()> {
        let now = crate::clock::monotonic_ns();
        let mut alive: StdHashMap<u32, bool> = StdHashMap::new();
        let mut doomed = Vec::new();
        let mut completed = Vec::new();
        let table = &self.tracer.inflight;
        let mut orders = Vec::new();
        table.scan(|&key, &record| {
            let process_alive = *alive
                .entry(key.pid)
                .or_insert_with(|| Path::new(&format!("/proc/{}", key.pid)).exists());
            // An address's submission order lives as long as its process (or
            // until its context is destroyed, `reclaim_destroyed`).
            if record.kind == RECORD_ORDER {
                if !process_alive {
                    orders.push((key, record.submit_ns));
                }
                return;
            }
            // Completed in the kernel and either its process is gone or nobody
            // reaped it with io_getevents for a while: reaped from the ring.
            if record.complete_ts != 0
                && (!process_alive
                    || now.saturating_sub(record.complete_ts) > REAP_GRACE.as_nanos() as u64)
            {
                completed.push((key, record));
                return;
            }
            match staleness(
                record.submit_ns,
                now,
                self.inflight_timeout_ns,
                process_alive,
            ) {
                Staleness::Keep => {}
                verdict => doomed.push((key, record, verdict)),
            }
        })?;
        for (key, record) in completed {
            // Removed first: if io_getevents reaps it meanwhile, the kernel
            // half counts it unmatched rather than both emitting it.
            if table.remove(&key, record.submit_ns)? {
                sink.record(&Record::Iocb(record))?;
                self.completed_unreaped += 1;
            }
        }
        for (key, submit_ns) in orders {
            table.remove(&key, submit_ns)?;
        }
        for (key, record, verdict) in doomed {
            if table.remove(&key, record.submit_ns)? {
                match verdict {
                    Staleness::Abandoned => deliver_unreaped(
                        sink,
                        record,
                        &self.user_losses.abandoned,
                        &mut self.completed_unreaped,
                    )?,
                    _ => {
                        self.user_losses.aged_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        sink.flush()
    }

    /// Iocbs delivered by the sweep because the kernel completed them and no
    /// io_getevents reaped them.
    pub fn completed_unreaped(&self) -> u64 {
        self.completed_unreaped
    }
}

/// An iocb of a destroyed context or a dead process, never reaped:
/// io_destroy and the process's exit wait for every iocb of a context,
/// so it completed and is a record. If its completion went unseen (the
/// kernel skips a tracing program that an interrupt enters while it
/// runs on that CPU), the record has no result or completion time, and
/// it is counted `abandoned`.
fn deliver_unreaped(
    sink: &mut impl Sink,
    mut record: IocbRecord,
    abandoned: &AtomicU64,
    delivered: &mut u64,
) -> io::Result<()> {
    if record.complete_ts == 0 {
        record.flags |= IOCB_RES_UNKNOWN;
        abandoned.fetch_add(1, Ordering::Relaxed);
    }
    sink.record(&Record::Iocb(record))?;
    *delivered += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{blockdev::encode, model::sample_record};

    #[derive(Default)]
    struct Kept(Vec<Option<u32>>);

    impl Sink for Kept {
        fn record(&mut self, record: &Record) -> io::Result<()> {
            if let Record::Iocb(r) | Record::Syscall(r) = record {
                self.0.push(r.device().map(|d| d.0));
            }
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn on_disk_keeps_the_disk_and_its_partitions_and_drops_the_undispatched() {
        let disk = Disk {
            name: "vda".into(),
            dev: encode(254, 0),
            whole: encode(254, 0),
            devs: vec![encode(254, 0), encode(254, 1)],
        };
        let on = |dev: u32, dispatches: u32| IocbRecord {
            dev,
            dispatches,
            ..sample_record()
        };
        let mut kept = Kept::default();
        let mut sink = OnDisk {
            inner: &mut kept,
            disk,
        };
        for r in [
            on(encode(254, 0), 1),
            on(encode(254, 1), 1),
            on(encode(7, 3), 1),
            // Buffered I/O: no dispatch, so no device, even with a stale dev.
            on(encode(254, 0), 0),
        ] {
            sink.record(&Record::Iocb(r)).unwrap();
            sink.record(&Record::Syscall(r)).unwrap();
        }
        let want = [Some(encode(254, 0)), Some(encode(254, 1))];
        assert_eq!(kept.0, [want[0], want[0], want[1], want[1]]);
    }
}
