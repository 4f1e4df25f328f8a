//! The workload loop: keeps `iodepth` units in flight, submits `batch` units
//! per submitting call and waits for `reap_min` completions before handling
//! them. Both engines run this same loop over the same buffers and ranges;
//! they differ only in how requests reach the kernel and come back
//! ([`aio`]: io_submit/io_getevents, [`uring`]: io_uring).

mod aio;
mod uring;

use std::{
    io,
    os::fd::{AsRawFd as _, RawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use aio_trace_common::Iovec;
use hdrhistogram::Histogram;
use thiserror::Error;

use super::{
    config::{Engine, Mode, Stop, WorkloadConfig},
    pattern,
    plan::{Plan, Unit},
    result::WorkloadResult,
    target::{OpenTarget, PATTERN_SEED},
};
use crate::{aio::AlignedBuf, clock::monotonic_ns};

#[derive(Debug, Error)]
pub enum WorkloadError {
    // The cause is the error's source, which `{:#}` prints after this.
    #[error("while {what}")]
    Syscall {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the {op} of {len} bytes at offset {offset} returned {res}")]
    Io {
        op: &'static str,
        offset: u64,
        len: u64,
        res: i64,
    },
    #[error("verify failed: the byte at offset {0} is not what was written")]
    Mismatch(u64),
    #[error(
        "io_uring is refused here (sysctl kernel.io_uring_disabled, or a kernel without io_uring): use --engine aio"
    )]
    NoIoUring(#[source] io::Error),
}

fn syscall(what: &'static str) -> impl FnOnce(io::Error) -> WorkloadError {
    move |source| WorkloadError::Syscall { what, source }
}

/// One unit's buffers. Boxed slices: their addresses must not move while the
/// kernel holds them.
struct Slot {
    bufs: Vec<AlignedBuf>,
    iov: Box<[Iovec]>,
    unit: Unit,
    /// Requests of this unit not yet reaped.
    pending: u32,
    submitted_ns: u64,
}

/// A request's user data (AIO `aio_data`, io_uring `user_data`): its slot and
/// its segment within the slot.
fn slot_tag(slot: usize, request: usize) -> u64 {
    ((slot as u64) << 32) | request as u64
}

fn untag(tag: u64) -> (usize, usize) {
    ((tag >> 32) as usize, (tag & 0xffff_ffff) as usize)
}

impl Slot {
    fn new(config: &WorkloadConfig, mem_align: usize) -> Self {
        let mut bufs: Vec<AlignedBuf> = (0..config.segments)
            .map(|_| AlignedBuf::zeroed(config.segment_size as usize, mem_align))
            .collect();
        let iov = bufs.iter_mut().map(|b| crate::aio::iovec(b)).collect();
        Self {
            bufs,
            iov,
            unit: Unit {
                offset: 0,
                read: true,
            },
            pending: 0,
            submitted_ns: 0,
        }
    }

    /// Gives the slot its next unit (and, for a verified write, the bytes
    /// the file should hold there).
    fn prepare(&mut self, unit: Unit, config: &WorkloadConfig) {
        self.unit = unit;
        if config.verify && !unit.read {
            for (k, buf) in self.bufs.iter_mut().enumerate() {
                pattern::fill(
                    buf,
                    unit.offset + k as u64 * config.segment_size,
                    PATTERN_SEED,
                );
            }
        }
        self.pending = config.iocbs_per_unit();
    }

    /// Bytes each of this slot's requests asks for.
    fn request_bytes(&self, mode: Mode, segment_size: u64) -> u64 {
        match mode {
            Mode::Vectored => segment_size * self.bufs.len() as u64,
            Mode::Scalar => segment_size,
        }
    }

    /// The file offset of request `k` of this slot.
    fn request_offset(&self, mode: Mode, k: usize, segment_size: u64) -> u64 {
        match mode {
            Mode::Vectored => self.unit.offset,
            Mode::Scalar => self.unit.offset + k as u64 * segment_size,
        }
    }

    fn verify_read(&self, segment_size: u64) -> Result<(), WorkloadError> {
        for (k, buf) in self.bufs.iter().enumerate() {
            if let Some(at) = pattern::first_mismatch(
                buf,
                self.unit.offset + k as u64 * segment_size,
                PATTERN_SEED,
            ) {
                return Err(WorkloadError::Mismatch(at));
            }
        }
        Ok(())
    }
}

/// How requests reach the kernel and come back: one implementation per
/// engine.
trait Queue {
    /// What a failed reap was doing, for its error.
    const REAPING: &'static str;
    /// Whether dropping the queue waits for the requests still in flight
    /// (io_destroy does; closing an io_uring does not: its teardown runs
    /// later in a kernel worker).
    const DROP_WAITS: bool;

    /// Queues slot `index`'s requests over its buffers at its unit: one
    /// vectored request, or one per segment. They go to the kernel at the
    /// next `submit`.
    fn queue(&mut self, index: usize, slot: &mut Slot, mode: Mode, fd: RawFd, segment_size: u64);

    /// Hands the queued requests to the kernel, counting each call in
    /// `result`. Returns with some still queued only when the kernel is out
    /// of room and requests in flight will make some.
    fn submit(&mut self, result: &mut WorkloadResult) -> Result<(), WorkloadError>;

    /// Requests queued and not yet accepted by the kernel.
    fn has_backlog(&self) -> bool;

    /// Requests the kernel accepted and the loop has not reaped.
    fn inflight(&self) -> usize;

    /// Takes the completions there are as (user data, result), first
    /// waiting until there are at least `min_nr`; true when that took a
    /// system call. Taken completions leave the in-flight count at once.
    fn reap(&mut self, min_nr: usize, completions: &mut Vec<(u64, i64)>) -> io::Result<bool>;
}

/// A queue and the memory its requests point into, torn down in the only
/// safe order. The kernel writes read data into the buffers (and reads the
/// iovec arrays) until each request completes, and direct I/O on regular
/// files cannot be cancelled in practice: freeing a buffer first would let
/// the device DMA into freed heap. So `Drop` reaps every request still in
/// flight; if that fails, an AIO context's io_destroy (when `queue`, declared
/// first, drops) still waits for the rest before the slots are freed, and an
/// io_uring's slots are leaked instead, since closing its ring does not wait.
struct Running<Q: Queue> {
    queue: Q,
    slots: Vec<Slot>,
}

impl<Q: Queue> Drop for Running<Q> {
    fn drop(&mut self) {
        let mut completions = Vec::new();
        while self.queue.inflight() > 0 {
            completions.clear();
            match self.queue.reap(self.queue.inflight(), &mut completions) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    if !Q::DROP_WAITS {
                        std::mem::forget(std::mem::take(&mut self.slots));
                    }
                    break;
                }
            }
        }
    }
}

/// Runs the workload on an opened target until its stop condition or `cancel`.
pub fn run(
    config: &WorkloadConfig,
    target: &OpenTarget,
    cancel: &AtomicBool,
) -> Result<WorkloadResult, WorkloadError> {
    let max_inflight = config.iodepth as usize * config.iocbs_per_unit() as usize;
    let result = match config.engine {
        Engine::Aio => {
            let queue = aio::AioQueue::new(config.iodepth as usize, max_inflight)
                .map_err(syscall("setting up the AIO context (io_setup)"))?;
            let ctx = queue.ctx_id();
            drive(config, target, cancel, queue, Some(ctx), Some(ctx))?
        }
        Engine::IoUring => {
            let queue = uring::UringQueue::new(max_inflight).map_err(uring_setup_error)?;
            let key = queue.counters_key();
            drive(config, target, cancel, queue, None, Some(key))?
        }
    };
    if config.verify {
        verify_target(target)?;
    }
    Ok(result)
}

/// io_uring_setup's refusals that say io_uring is off for this process
/// (EPERM: `kernel.io_uring_disabled` is 2, or 1 and the process is outside
/// `kernel.io_uring_group`; ENOSYS: no io_uring in the kernel), apart from
/// other failures.
fn uring_setup_error(e: io::Error) -> WorkloadError {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::ENOSYS) => WorkloadError::NoIoUring(e),
        _ => syscall("setting up the io_uring (io_uring_setup)")(e),
    }
}

/// The loop itself, over either engine's queue.
fn drive<Q: Queue>(
    config: &WorkloadConfig,
    target: &OpenTarget,
    cancel: &AtomicBool,
    queue: Q,
    ctx: Option<u64>,
    counters_key: Option<u64>,
) -> Result<WorkloadResult, WorkloadError> {
    let fd = target.file.as_raw_fd();
    // Page-aligned (as fio does): a 4 KiB segment is then one page, one bio
    // vector, instead of straddling two pages at the device's minimum alignment.
    let mem_align = target.mem_align.max(4096) as usize;
    let mut running = Running {
        queue,
        slots: (0..config.iodepth)
            .map(|_| Slot::new(config, mem_align))
            .collect(),
    };
    let mut free: Vec<usize> = (0..running.slots.len()).rev().collect();
    let mut plan = Plan::new(
        config.rw,
        config.read_pct,
        config.unit_bytes(),
        target.size,
        config.seed,
    );
    let mut completions = Vec::new();
    let mut latency =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds");

    let mut result = WorkloadResult::new(config, ctx, counters_key);
    let (deadline, max_units) = match config.stop {
        Stop::After(d) => (Some(monotonic_ns() + d.as_nanos() as u64), u64::MAX),
        Stop::Units(n) => (None, n),
    };
    let started = monotonic_ns();

    loop {
        let issuing = !cancel.load(Ordering::Relaxed)
            && result.units < max_units
            && deadline.is_none_or(|d| monotonic_ns() < d);
        // Fill free slots, `batch` units per submitting call.
        while issuing
            && !running.queue.has_backlog()
            && !free.is_empty()
            && result.units < max_units
        {
            let now = monotonic_ns();
            for _ in 0..config.batch {
                if result.units >= max_units {
                    break;
                }
                let Some(index) = free.pop() else { break };
                let slot = &mut running.slots[index];
                slot.prepare(plan.next_unit(), config);
                slot.submitted_ns = now;
                running
                    .queue
                    .queue(index, slot, config.mode, fd, config.segment_size);
                result.units += 1;
            }
            running.queue.submit(&mut result)?;
        }
        if running.queue.has_backlog() && running.queue.inflight() == 0 {
            running.queue.submit(&mut result)?;
        }
        if running.queue.inflight() == 0 {
            if !issuing || result.units >= max_units {
                break;
            }
            continue;
        }
        let min_nr = (config.reap_min as usize).min(running.queue.inflight());
        completions.clear();
        let waited = running
            .queue
            .reap(min_nr, &mut completions)
            .map_err(syscall(Q::REAPING))?;
        result.count_reap(waited);
        let now = monotonic_ns();
        for &(tag, res) in &completions {
            let (index, k) = untag(tag);
            let slot = &mut running.slots[index];
            let len = slot.request_bytes(config.mode, config.segment_size);
            if res != len as i64 {
                return Err(WorkloadError::Io {
                    op: config.engine.op_name(config.mode, slot.unit.read),
                    offset: slot.request_offset(config.mode, k, config.segment_size),
                    len,
                    res,
                });
            }
            let _ = latency.record(now.saturating_sub(slot.submitted_ns).max(1));
            result.iocbs += 1;
            result.bytes += len;
            slot.pending -= 1;
            if slot.pending == 0 {
                if config.verify && slot.unit.read {
                    slot.verify_read(config.segment_size)?;
                }
                free.push(index);
            }
        }
    }
    result.finish(Duration::from_nanos(monotonic_ns() - started), &latency);
    Ok(result)
}

/// Reads the whole target back (plain pread) and checks the pattern.
fn verify_target(target: &OpenTarget) -> Result<(), WorkloadError> {
    let mut buf = target.chunk_buffer();
    for (at, len) in target.chunks() {
        std::os::unix::fs::FileExt::read_exact_at(&target.file, &mut buf[..len], at)
            .map_err(syscall("reading back for --verify"))?;
        if let Some(mismatch) = pattern::first_mismatch(&buf[..len], at, PATTERN_SEED) {
            return Err(WorkloadError::Mismatch(mismatch));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_io_uring_says_so_and_what_to_use() {
        let e = uring_setup_error(io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(
            format!("{:#}", anyhow::Error::from(e)),
            "io_uring is refused here (sysctl kernel.io_uring_disabled, or a kernel without io_uring): \
             use --engine aio: Operation not permitted (os error 1)"
        );
        let e = uring_setup_error(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(matches!(e, WorkloadError::Syscall { .. }), "{e:?}");
    }

    /// Both engines, both modes, randrw with --verify on a small temporary
    /// file: every read checked against what the writes put there.
    #[test]
    fn both_engines_verify_what_they_write_in_both_modes() {
        use crate::workload::{Rw, Target, config::default_temp_dir, target};
        for engine in [Engine::Aio, Engine::IoUring] {
            for mode in [Mode::Vectored, Mode::Scalar] {
                let config = WorkloadConfig {
                    target: Target::TempIn(default_temp_dir()),
                    engine,
                    mode,
                    segments: 4,
                    rw: Rw::RandRw,
                    iodepth: 4,
                    size: Some(1 << 20),
                    stop: Stop::Units(64),
                    verify: true,
                    ..WorkloadConfig::default()
                };
                let Ok(file) = target::open(&config) else {
                    eprintln!(
                        "skipping: no O_DIRECT temporary file in {:?}",
                        default_temp_dir()
                    );
                    return;
                };
                let result = match run(&config, &file, &AtomicBool::new(false)) {
                    Err(WorkloadError::NoIoUring(e)) => {
                        eprintln!("skipping io_uring: {e}");
                        continue;
                    }
                    other => other.unwrap(),
                };
                let requests = 64 * u64::from(config.iocbs_per_unit());
                assert_eq!(
                    (result.units, result.iocbs, result.bytes),
                    (64, requests, 64 * 4 * 4096),
                    "{engine:?} {mode:?}"
                );
                assert_eq!(
                    result.submit_calls(),
                    64,
                    "{engine:?} {mode:?}: one submitting call per batch of one range"
                );
            }
        }
    }

    #[test]
    fn tags_name_the_slot_and_the_request() {
        assert_eq!(untag(slot_tag(31, 1023)), (31, 1023));
        assert_eq!(untag(slot_tag(0, 0)), (0, 0));
    }

    #[test]
    fn scalar_requests_cover_the_unit_segment_by_segment() {
        let config = WorkloadConfig {
            segments: 4,
            segment_size: 4096,
            mode: Mode::Scalar,
            ..WorkloadConfig::default()
        };
        let mut slot = Slot::new(&config, 4096);
        slot.prepare(
            Unit {
                offset: 1 << 20,
                read: true,
            },
            &config,
        );
        assert_eq!(slot.pending, 4);
        assert_eq!(slot.request_bytes(Mode::Scalar, 4096), 4096);
        assert_eq!(slot.request_bytes(Mode::Vectored, 4096), 16384);
        assert_eq!(
            slot.request_offset(Mode::Scalar, 3, 4096),
            (1 << 20) + 3 * 4096
        );
        assert_eq!(slot.request_offset(Mode::Vectored, 0, 4096), 1 << 20);
    }
}
