//! The AIO loop: keeps `iodepth` units in flight, submits `batch` units per
//! io_submit, reaps with io_getevents(min_nr = reap_min).

use std::{
    io,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use aio_trace_common::{IoEvent, Iocb, Iovec};
use hdrhistogram::Histogram;
use thiserror::Error;

use super::{
    config::{Mode, Stop, WorkloadConfig},
    pattern,
    plan::{Plan, Unit},
    result::WorkloadResult,
    target::{OpenTarget, PATTERN_SEED},
};
use crate::{
    aio::{self, AioContext, AlignedBuf},
    clock::monotonic_ns,
};

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
}

fn syscall(what: &'static str) -> impl FnOnce(io::Error) -> WorkloadError {
    move |source| WorkloadError::Syscall { what, source }
}

/// One unit's buffers and iocbs. Boxed slices: their addresses must not move
/// while the kernel holds them.
struct Slot {
    bufs: Vec<AlignedBuf>,
    iov: Box<[Iovec]>,
    iocbs: Box<[Iocb]>,
    unit: Unit,
    pending: u32,
    submitted_ns: u64,
}

fn slot_tag(slot: usize, iocb: usize) -> u64 {
    ((slot as u64) << 32) | iocb as u64
}

impl Slot {
    fn new(config: &WorkloadConfig, mem_align: usize) -> Self {
        let mut bufs: Vec<AlignedBuf> = (0..config.segments)
            .map(|_| AlignedBuf::zeroed(config.segment_size as usize, mem_align))
            .collect();
        let iov = bufs.iter_mut().map(|b| aio::iovec(b)).collect();
        let iocbs = vec![Iocb::default(); config.iocbs_per_unit() as usize].into_boxed_slice();
        Self {
            bufs,
            iov,
            iocbs,
            unit: Unit {
                offset: 0,
                read: true,
            },
            pending: 0,
            submitted_ns: 0,
        }
    }

    /// Points the slot's iocbs at `unit`: one vectored iocb, or one scalar
    /// iocb per segment over the same buffers and file ranges.
    fn prepare(
        &mut self,
        index: usize,
        unit: Unit,
        mode: Mode,
        fd: i32,
        segment_size: u64,
        verify: bool,
    ) {
        self.unit = unit;
        if verify && !unit.read {
            for (k, buf) in self.bufs.iter_mut().enumerate() {
                pattern::fill(buf, unit.offset + k as u64 * segment_size, PATTERN_SEED);
            }
        }
        let offset = unit.offset as i64;
        match mode {
            Mode::Vectored => {
                let tag = slot_tag(index, 0);
                self.iocbs[0] = if unit.read {
                    aio::preadv(fd, &self.iov, offset, tag)
                } else {
                    aio::pwritev(fd, &self.iov, offset, tag)
                };
            }
            Mode::Scalar => {
                for (k, buf) in self.bufs.iter_mut().enumerate() {
                    let tag = slot_tag(index, k);
                    let at = offset + (k as u64 * segment_size) as i64;
                    self.iocbs[k] = if unit.read {
                        aio::pread(fd, buf, at, tag)
                    } else {
                        aio::pwrite(fd, buf, at, tag)
                    };
                }
            }
        }
        self.pending = self.iocbs.len() as u32;
    }

    /// Bytes each of this slot's iocbs asks for.
    fn iocb_bytes(&self, mode: Mode, segment_size: u64) -> u64 {
        match mode {
            Mode::Vectored => segment_size * self.bufs.len() as u64,
            Mode::Scalar => segment_size,
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

/// The AIO context and the memory its iocbs point into, torn down in the
/// only safe order. The kernel writes read data into the buffers (and reads
/// the iovec arrays) until each iocb completes, and direct I/O on regular
/// files cannot be cancelled in practice: freeing a buffer first would let
/// the device DMA into freed heap. So `Drop` reaps every iocb still in
/// flight, then `ctx` (declared first, so dropped first) is destroyed, which
/// also waits for anything left, and only then are the slots freed.
struct Ring {
    ctx: AioContext,
    /// Iocbs submitted and not yet reaped.
    inflight: usize,
    events: Vec<IoEvent>,
    slots: Vec<Slot>,
}

impl Ring {
    /// io_submit until the backlog is accepted or the ring is full (EAGAIN: reap first).
    fn submit(
        &mut self,
        backlog: &mut Vec<*mut Iocb>,
        result: &mut WorkloadResult,
    ) -> Result<(), WorkloadError> {
        while !backlog.is_empty() {
            result.io_submit_calls += 1;
            match self.ctx.submit(backlog) {
                Ok(n) => {
                    self.inflight += n;
                    backlog.drain(..n);
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && self.inflight > 0 => {
                    return Ok(());
                }
                Err(e) => return Err(syscall("submitting (io_submit)")(e)),
            }
        }
        Ok(())
    }

    /// io_getevents for at least `min_nr` completions; they leave the
    /// in-flight count at once, whatever their handling then returns.
    fn reap(&mut self, min_nr: usize) -> io::Result<usize> {
        let got = self.ctx.get_events(min_nr, &mut self.events, None)?;
        self.inflight -= got;
        Ok(got)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        while self.inflight > 0 {
            match self.reap(self.inflight) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // io_destroy, when `ctx` drops next, still waits for the rest.
                Err(_) => break,
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
    let fd = std::os::fd::AsRawFd::as_raw_fd(&target.file);
    let per_unit = config.iocbs_per_unit() as usize;
    let max_inflight = config.iodepth as usize * per_unit;
    let ctx = AioContext::new(max_inflight as u32)
        .map_err(syscall("setting up the AIO context (io_setup)"))?;
    // Page-aligned (as fio does): a 4 KiB segment is then one page, one bio
    // vector, instead of straddling two pages at the device's minimum alignment.
    let mem_align = target.mem_align.max(4096) as usize;
    let mut ring = Ring {
        ctx,
        inflight: 0,
        events: vec![IoEvent::default(); max_inflight],
        slots: (0..config.iodepth)
            .map(|_| Slot::new(config, mem_align))
            .collect(),
    };
    let mut free: Vec<usize> = (0..ring.slots.len()).rev().collect();
    let mut plan = Plan::new(
        config.rw,
        config.read_pct,
        config.unit_bytes(),
        target.size,
        config.seed,
    );
    let mut backlog: Vec<*mut Iocb> = Vec::with_capacity(max_inflight);
    let mut latency =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds");

    let mut result = WorkloadResult::new(config, ring.ctx.id());
    let (deadline, max_units) = match config.stop {
        Stop::After(d) => (Some(monotonic_ns() + d.as_nanos() as u64), u64::MAX),
        Stop::Units(n) => (None, n),
    };
    let started = monotonic_ns();

    loop {
        let issuing = !cancel.load(Ordering::Relaxed)
            && result.units < max_units
            && deadline.is_none_or(|d| monotonic_ns() < d);
        // Fill free slots, `batch` units per io_submit.
        while issuing && backlog.is_empty() && !free.is_empty() && result.units < max_units {
            let now = monotonic_ns();
            for _ in 0..config.batch {
                if result.units >= max_units {
                    break;
                }
                let Some(index) = free.pop() else { break };
                let slot = &mut ring.slots[index];
                slot.prepare(
                    index,
                    plan.next_unit(),
                    config.mode,
                    fd,
                    config.segment_size,
                    config.verify,
                );
                slot.submitted_ns = now;
                backlog.extend(slot.iocbs.iter_mut().map(|c| c as *mut Iocb));
                result.units += 1;
            }
            ring.submit(&mut backlog, &mut result)?;
        }
        if !backlog.is_empty() && ring.inflight == 0 {
            ring.submit(&mut backlog, &mut result)?;
        }
        if ring.inflight == 0 {
            if !issuing || result.units >= max_units {
                break;
            }
            continue;
        }
        let min_nr = (config.reap_min as usize).min(ring.inflight);
        result.io_getevents_calls += 1;
        let got = ring
            .reap(min_nr)
            .map_err(syscall("reaping (io_getevents)"))?;
        let now = monotonic_ns();
        for ev in &ring.events[..got] {
            let (index, k) = ((ev.data >> 32) as usize, (ev.data & 0xffff_ffff) as usize);
            let slot = &mut ring.slots[index];
            let len = slot.iocb_bytes(config.mode, config.segment_size);
            if ev.res != len as i64 {
                let offset = slot.unit.offset
                    + if config.mode == Mode::Scalar {
                        k as u64 * config.segment_size
                    } else {
                        0
                    };
                let op = match (config.mode, slot.unit.read) {
                    (Mode::Vectored, true) => "PREADV",
                    (Mode::Vectored, false) => "PWRITEV",
                    (Mode::Scalar, true) => "PREAD",
                    (Mode::Scalar, false) => "PWRITE",
                };
                return Err(WorkloadError::Io {
                    op,
                    offset,
                    len,
                    res: ev.res,
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
    drop(ring);
    if config.verify {
        verify_target(target)?;
    }
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
