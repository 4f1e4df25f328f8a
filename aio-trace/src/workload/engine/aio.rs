//! The AIO engine: iocbs through io_submit, completions through io_getevents.

use std::{io, os::fd::RawFd};

use aio_trace_common::{IoEvent, Iocb};

use super::{Queue, Slot, WorkloadError, slot_tag, syscall};
use crate::{
    aio::{self, AioContext},
    workload::{config::Mode, result::WorkloadResult},
};

pub(super) struct AioQueue {
    ctx: AioContext,
    /// Each slot's iocbs, at addresses that stay put: the kernel hands an
    /// iocb's address back in its io_event, and the tracer knows an iocb by
    /// it.
    iocbs: Vec<Box<[Iocb]>>,
    /// Queued iocbs, in submission order.
    backlog: Vec<*mut Iocb>,
    /// Iocbs submitted and not yet reaped.
    inflight: usize,
    events: Vec<IoEvent>,
}

impl AioQueue {
    pub(super) fn new(slots: usize, max_inflight: usize) -> io::Result<Self> {
        let per_slot = max_inflight / slots.max(1);
        Ok(Self {
            ctx: AioContext::new(max_inflight as u32)?,
            iocbs: (0..slots)
                .map(|_| vec![Iocb::default(); per_slot].into_boxed_slice())
                .collect(),
            backlog: Vec::with_capacity(max_inflight),
            inflight: 0,
            events: vec![IoEvent::default(); max_inflight],
        })
    }

    pub(super) fn ctx_id(&self) -> u64 {
        self.ctx.id()
    }
}

impl Queue for AioQueue {
    const REAPING: &'static str = "reaping (io_getevents)";
    // io_destroy waits for every iocb of the context.
    const DROP_WAITS: bool = true;

    fn queue(&mut self, index: usize, slot: &mut Slot, mode: Mode, fd: RawFd, segment_size: u64) {
        let iocbs = &mut self.iocbs[index];
        let offset = slot.unit.offset as i64;
        let read = slot.unit.read;
        match mode {
            Mode::Vectored => {
                let tag = slot_tag(index, 0);
                iocbs[0] = if read {
                    aio::preadv(fd, &slot.iov, offset, tag)
                } else {
                    aio::pwritev(fd, &slot.iov, offset, tag)
                };
            }
            Mode::Scalar => {
                for (k, buf) in slot.bufs.iter_mut().enumerate() {
                    let tag = slot_tag(index, k);
                    let at = offset + (k as u64 * segment_size) as i64;
                    iocbs[k] = if read {
                        aio::pread(fd, buf, at, tag)
                    } else {
                        aio::pwrite(fd, buf, at, tag)
                    };
                }
            }
        }
        let count = slot.pending as usize;
        self.backlog
            .extend(iocbs[..count].iter_mut().map(|c| c as *mut Iocb));
    }

    /// io_submit until the backlog is accepted or the context is full
    /// (EAGAIN: reap first).
    fn submit(&mut self, result: &mut WorkloadResult) -> Result<(), WorkloadError> {
        while !self.backlog.is_empty() {
            result.count_submit_call();
            match self.ctx.submit(&self.backlog) {
                Ok(n) => {
                    self.inflight += n;
                    self.backlog.drain(..n);
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && self.inflight > 0 => {
                    return Ok(());
                }
                Err(e) => return Err(syscall("submitting (io_submit)")(e)),
            }
        }
        Ok(())
    }

    fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    fn inflight(&self) -> usize {
        self.inflight
    }

    /// One io_getevents for at least `min_nr` events, up to every iocb in
    /// flight.
    fn reap(&mut self, min_nr: usize, completions: &mut Vec<(u64, i64)>) -> io::Result<bool> {
        let got = match self.ctx.get_events(min_nr, &mut self.events, None) {
            Ok(got) => got,
            // io_getevents is not restarted after a signal, and io_uring's
            // task work notifications count as one: a thread that used a
            // ring before (the bench's phases alternate engines) sees EINTR
            // when that ring's work lands. The loop comes back.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        self.inflight -= got;
        completions.extend(self.events[..got].iter().map(|ev| (ev.data, ev.res)));
        Ok(true)
    }
}
