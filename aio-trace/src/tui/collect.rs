//! Collection: the session runs on its own thread (with its own runtime) and
//! forwards each ring buffer wake-up as one batch, so drawing never delays
//! draining the ring buffer.

use std::{io, sync::Arc, thread::JoinHandle};

use aio_trace_common::IocbRecord;
use tokio::sync::{mpsc, oneshot};

use super::store::Snapshot;
use crate::{
    loader::{CounterTable, LossTable, ProgramTable, Tracer},
    reader::Record,
    session::{Session, Sink, UserLosses},
};

/// Collects the iocb records of one batch; `flush` sends them on.
pub struct BatchSink {
    batch: Vec<IocbRecord>,
    tx: mpsc::UnboundedSender<Vec<IocbRecord>>,
}

impl Sink for BatchSink {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        if let Record::Iocb(iocb) = record {
            self.batch.push(*iocb);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(256));
            // The UI gone means we are stopping: nothing to report.
            let _ = self.tx.send(batch);
        }
        Ok(())
    }
}

/// What the UI loop reads each tick, without touching the session.
pub struct Probes {
    counters: Option<CounterTable>,
    kernel_losses: Option<LossTable>,
    user_losses: Arc<UserLosses>,
    /// The light tier's sampling as it adapts (`--budget`).
    sample_every: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Our programs, for their run time (None: BPF statistics are off).
    pub programs: Option<ProgramTable>,
    /// The built-in workload thread's CPU-time clock, to tell its CPU time
    /// from the tracer's.
    pub workload_clock: Option<libc::clockid_t>,
}

impl Probes {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counters: self
                .counters
                .as_ref()
                .map(CounterTable::snapshot)
                .unwrap_or_default(),
            ops: self
                .counters
                .as_ref()
                .map(CounterTable::op_snapshot)
                .unwrap_or_default(),
            losses: self.user_losses.add_to(
                self.kernel_losses
                    .as_ref()
                    .map(LossTable::snapshot)
                    .unwrap_or_default(),
            ),
            sample_every: self
                .sample_every
                .as_ref()
                .map(|n| n.load(std::sync::atomic::Ordering::Relaxed)),
            overhead_sample: Some(crate::usage::sample(
                self.programs
                    .as_ref()
                    .map(|p| p.costs().iter().map(|c| c.run_ns).sum()),
                self.workload_clock,
            )),
        }
    }
}

/// The running session thread.
pub struct Collector {
    pub batches: mpsc::UnboundedReceiver<Vec<IocbRecord>>,
    pub probes: Probes,
    /// Tier switches for the session: true for the light tier.
    pub tier: mpsc::UnboundedSender<bool>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Collector {
    pub fn start(
        tracer: Tracer,
        ring: aya::maps::RingBuf<aya::maps::MapData>,
        inflight_timeout: std::time::Duration,
    ) -> io::Result<Self> {
        let counters = tracer.counter_table().ok();
        let kernel_losses = tracer.loss_table().ok();
        let programs = Some(tracer.program_table());
        let (tx, batches) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (tier, tier_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("aio-trace-session".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let mut session = match Session::new(tracer, ring, inflight_timeout) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    };
                    session.listen_for_tier(tier_rx);
                    let _ = ready_tx.send(Ok((session.user_losses(), session.sample_every())));
                    let mut sink = BatchSink {
                        batch: Vec::with_capacity(256),
                        tx,
                    };
                    session
                        .run(&mut sink, async {
                            let _ = stop_rx.await;
                        })
                        .await
                })
            })?;
        let (user_losses, sample_every) = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the session thread died while starting"))??;
        Ok(Self {
            batches,
            probes: Probes {
                counters,
                kernel_losses,
                user_losses,
                sample_every,
                programs,
                workload_clock: None,
            },
            tier,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Detaches the probes and waits for the session thread.
    pub fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the session thread panicked")),
            None => Ok(()),
        }
    }
}
