//! The io_uring engine: SQEs through io_uring_enter, completions taken from
//! the CQ ring, with an io_uring_enter that waits only when the ring holds
//! fewer than the loop asks for.
//!
//! The ring is set up with no flags beyond its sizes: completions are posted
//! by task work as they come (no DEFER_TASKRUN, which would post them only
//! inside a waiting io_uring_enter), and submission is by the calling thread
//! (no SQPOLL), so each io_uring_enter is a call the loop chose to make, as
//! each io_submit is for AIO.

use std::{
    collections::VecDeque,
    io,
    os::fd::{AsRawFd, RawFd},
};

use aio_trace_common::IORING_ENTER_GETEVENTS;
use io_uring::{IoUring, opcode, squeue, types::Fd};

use super::{Queue, Slot, WorkloadError, slot_tag, syscall};
use crate::{
    aio::iovec_array,
    workload::{config::Mode, result::WorkloadResult},
};

/// The kernel's IORING_MAX_ENTRIES: the largest SQ ring io_uring_setup makes.
const MAX_SQ_ENTRIES: usize = 32768;

pub(super) struct UringQueue {
    ring: IoUring,
    /// Queued SQEs not yet in the SQ ring, in submission order.
    backlog: VecDeque<squeue::Entry>,
    /// SQEs in the SQ ring the kernel has not consumed (left by an EAGAIN).
    in_ring: usize,
    /// Requests the kernel consumed from the SQ ring and the loop has not
    /// reaped.
    inflight: usize,
}

impl UringQueue {
    /// The key the tracer counts this ring's io_uring_enter calls under.
    pub(super) fn counters_key(&self) -> u64 {
        aio_trace_common::CTX_URING_FD | self.ring.as_raw_fd() as u64
    }

    /// A ring whose CQ holds every request that can be in flight, so no
    /// completion ever waits in the kernel's overflow list.
    pub(super) fn new(max_inflight: usize) -> io::Result<Self> {
        let sq_entries = max_inflight.clamp(1, MAX_SQ_ENTRIES);
        let cq_entries = max_inflight.max(sq_entries).next_power_of_two();
        let ring = IoUring::builder()
            // Above the kernel's largest CQ, the ring is made at that size
            // rather than refused; a fuller CQ overflows into the kernel's
            // list, which the waiting io_uring_enter flushes.
            .setup_clamp()
            .setup_cqsize(cq_entries as u32)
            .build(sq_entries as u32)?;
        Ok(Self {
            ring,
            backlog: VecDeque::with_capacity(max_inflight),
            in_ring: 0,
            inflight: 0,
        })
    }
}

impl Queue for UringQueue {
    const REAPING: &'static str = "waiting for completions (io_uring_enter)";
    const DROP_WAITS: bool = false;

    fn queue(&mut self, index: usize, slot: &mut Slot, mode: Mode, fd: RawFd, segment_size: u64) {
        let offset = slot.unit.offset;
        let read = slot.unit.read;
        match mode {
            Mode::Vectored => {
                let iov = iovec_array(&slot.iov);
                let segments = slot.iov.len() as u32;
                let sqe = if read {
                    opcode::Readv::new(Fd(fd), iov, segments)
                        .offset(offset)
                        .build()
                } else {
                    opcode::Writev::new(Fd(fd), iov, segments)
                        .offset(offset)
                        .build()
                };
                self.backlog.push_back(sqe.user_data(slot_tag(index, 0)));
            }
            Mode::Scalar => {
                for (k, buf) in slot.bufs.iter_mut().enumerate() {
                    let at = offset + k as u64 * segment_size;
                    let len = buf.len() as u32;
                    let sqe = if read {
                        opcode::Read::new(Fd(fd), buf.as_mut_ptr(), len)
                            .offset(at)
                            .build()
                    } else {
                        opcode::Write::new(Fd(fd), buf.as_ptr(), len)
                            .offset(at)
                            .build()
                    };
                    self.backlog.push_back(sqe.user_data(slot_tag(index, k)));
                }
            }
        }
    }

    /// Moves the backlog into the SQ ring and submits it, one io_uring_enter
    /// per ring-full, until the kernel has consumed it all or is out of room
    /// (EAGAIN, EBUSY: reap first).
    fn submit(&mut self, result: &mut WorkloadResult) -> Result<(), WorkloadError> {
        while self.has_backlog() {
            {
                let mut sq = self.ring.submission();
                while !sq.is_full() {
                    let Some(sqe) = self.backlog.pop_front() else {
                        break;
                    };
                    // SAFETY: the SQE points into a slot's buffers and iovec
                    // array, which stay allocated and unmoved in
                    // `Running::slots` until every request of the slot is
                    // reaped (a slot is refilled only then, and `Running`'s
                    // Drop reaps what is left or leaks the slots).
                    unsafe { sq.push(&sqe) }.expect("the SQ ring has room");
                    self.in_ring += 1;
                }
            }
            result.count_submit_call();
            match self.ring.submit() {
                // The kernel consumed n SQEs; one it failed still completes,
                // with its error in its CQE.
                Ok(n) => {
                    self.in_ring -= n;
                    self.inflight += n;
                }
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY))
                        && self.inflight > 0 =>
                {
                    return Ok(());
                }
                Err(e) => return Err(syscall("submitting (io_uring_enter)")(e)),
            }
        }
        Ok(())
    }

    fn has_backlog(&self) -> bool {
        !self.backlog.is_empty() || self.in_ring > 0
    }

    fn inflight(&self) -> usize {
        self.inflight
    }

    /// Takes every completion in the CQ ring, after an io_uring_enter that
    /// waits for `min_nr` if the ring holds fewer.
    fn reap(&mut self, min_nr: usize, completions: &mut Vec<(u64, i64)>) -> io::Result<bool> {
        let waited = self.ring.completion().len() < min_nr;
        if waited {
            // Not `submit_and_wait`: that would also submit SQEs left in the
            // ring by an EAGAIN, making one call both kinds.
            //
            // SAFETY: no argument pointer; to_submit 0 and GETEVENTS only, so
            // the call reads no user memory.
            let wait = unsafe {
                self.ring.submitter().enter::<libc::sigset_t>(
                    0,
                    min_nr as u32,
                    IORING_ENTER_GETEVENTS,
                    None,
                )
            };
            match wait {
                Ok(_) => {}
                // A signal: the loop comes back with what there is.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let before = completions.len();
        completions.extend(
            self.ring
                .completion()
                .map(|cqe| (cqe.user_data(), i64::from(cqe.result()))),
        );
        self.inflight -= completions.len() - before;
        Ok(waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cq_ring_holds_everything_in_flight() {
        let Ok(q) = UringQueue::new(3 * 8) else {
            eprintln!("skipping: io_uring_setup is refused here");
            return;
        };
        let params = q.ring.params();
        assert_eq!(params.sq_entries(), 32);
        assert!(params.cq_entries() >= 24, "{}", params.cq_entries());
    }
}
