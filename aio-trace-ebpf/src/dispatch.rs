//! iomap direct-I/O dispatch and completion: which iocb (or vectored syscall)
//! the filesystem is working on, and when the kernel finished it.

use aio_trace_common::{InflightKey, IocbRecord, LossCause};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};

use crate::{
    claim::{Match, claim_iocb},
    kernel::{aio_user_iocb, kiocb_file, kiocb_pos, kiocb_req, uring_known},
    maps::{
        CURRENT_BY_DISPATCH, DIO_OWNER, DIO_SETS, SUBMITS, SYNC_CALLS, SubmitState, THREAD_SETS,
        URING_ISSUE, URING_PID_SETS, URING_PIDS, UringIssue, active_slot, aio_owner, count_loss,
        inflight, owner_record, submitted_key, syscall_owner, uring_key,
    },
    reread,
    table::{self, WhenFull},
};

// Raw tracepoint arguments (TP_PROTO): iomap_dio_rw_begin (struct kiocb *,
// struct iov_iter *, unsigned int dio_flags, size_t done_before);
// iomap_dio_complete (struct kiocb *, int error, ssize_t ret).

fn note_dispatch(record: *mut IocbRecord, dev: u32, ino: u64, now: u64) {
    // SAFETY: callers pass a map value pointer to an in-flight record (see the crate doc's
    // Safety).
    let r = unsafe { &mut *record };
    r.dispatches += 1;
    if r.dispatch_ts == 0 {
        r.dispatch_ts = now;
    }
    r.dev = dev;
    r.ino = ino;
}

#[raw_tracepoint(tracepoint = "iomap_dio_rw_begin")]
pub fn iomap_dio_rw_begin(ctx: RawTracePointContext) -> i32 {
    let _ = try_dio_begin(&ctx);
    0
}

/// Who the dispatching thread is tracing.
enum Caller {
    Sync(*mut IocbRecord),
    Submit(*mut SubmitState),
}

fn try_dio_begin(ctx: &RawTracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    // Most dispatches are other tasks' (every O_DIRECT user's): leave before
    // reading the kiocb. io_submit first: it is the common case here, and a
    // thread is in at most one of the two.
    let caller = if let Some(state) = active_slot(&SUBMITS, tid) {
        Caller::Submit(state)
    } else if let Some(record) = active_slot(&SYNC_CALLS, tid) {
        Caller::Sync(record)
    } else {
        return uring_dispatch(pid, tid, ctx.arg(0));
    };
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let kiocb: u64 = ctx.arg(0);
    let (dev, ino) = kiocb_file(kiocb)?;
    let pos = kiocb_pos(kiocb)?;
    // The kiocb is the I/O's identity until it completes (for AIO it lives in
    // the aio_kiocb; for a synchronous call, on the caller's stack).
    let dio = kiocb;

    let state = match caller {
        Caller::Sync(record) => {
            note_dispatch(record, dev, ino, now);
            let _ = table::put(
                &DIO_OWNER,
                DIO_SETS,
                &dio,
                &syscall_owner(tid),
                WhenFull::Evict,
            );
            return Ok(());
        }
        Caller::Submit(state) => state,
    };
    // SAFETY: the thread's io_submit state, a map value pointer (see the crate doc's Safety) that
    // only this thread's programs use.
    let state = unsafe { &mut *state };
    let done_before: u64 = ctx.arg(3);
    // A continuation (the filesystem fell back, then went on) is the same iocb.
    if done_before != 0 && state.current_by == CURRENT_BY_DISPATCH {
        if let Some(record) = inflight(&state.current) {
            note_dispatch(record, dev, ino, now);
            let _ = table::put(
                &DIO_OWNER,
                DIO_SETS,
                &dio,
                &aio_owner(state.current),
                WhenFull::Evict,
            );
        }
        return Ok(());
    }
    let Some((key, record)) = dispatched_iocb(state, pid, kiocb, pos) else {
        count_loss(LossCause::UnmatchedDispatch);
        return Ok(());
    };
    note_dispatch(record, dev, ino, now);
    let _ = table::put(&DIO_OWNER, DIO_SETS, &dio, &aio_owner(key), WhenFull::Evict);
    Ok(())
}

/// A dispatch outside io_submit and the vectored syscalls: an io_uring
/// request's, if its process has requests in flight and the kiocb is one of
/// them. The issuing thread then owns the bios it queues for that kiocb.
#[inline(always)]
fn uring_dispatch(pid: u32, tid: u32, kiocb: u64) -> Result<(), i64> {
    if !uring_known() || table::get_ptr(&URING_PIDS, URING_PID_SETS, &u64::from(pid)).is_none() {
        return Ok(());
    }
    let key = uring_key(pid, kiocb_req(kiocb));
    let Some(record) = inflight(&key) else {
        return Ok(());
    };
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let (dev, ino) = kiocb_file(kiocb)?;
    note_dispatch(record, dev, ino, now);
    let _ = table::put(
        &DIO_OWNER,
        DIO_SETS,
        &kiocb,
        &aio_owner(key),
        WhenFull::Evict,
    );
    let issue = UringIssue { key, kiocb };
    let _ = table::put(
        &URING_ISSUE,
        THREAD_SETS,
        &u64::from(tid),
        &issue,
        WhenFull::Evict,
    );
    Ok(())
}

/// The in-flight iocb io_submit is dispatching, which becomes the thread's
/// current one.
#[inline(always)]
fn dispatched_iocb(
    state: &mut SubmitState,
    pid: u32,
    kiocb: u64,
    pos: i64,
) -> Option<(InflightKey, *mut IocbRecord)> {
    // Straight from the kernel's aio_kiocb: one read and one lookup.
    if let Some(iocb) = aio_user_iocb(kiocb) {
        let found = if state.unreadable | state.unsummed != 0 {
            // The entry could not read some of the call's iocbs; the kernel
            // has just read this one.
            reread::dispatched(state, iocb)
        } else {
            let key = submitted_key(pid, state.ctx, iocb);
            inflight(&key).map(|record| (key, record))
        };
        if let Some((key, record)) = found
            // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety);
            // other CPUs may update other fields of it, plain integers, at the same time.
            && unsafe { (*record).offset } == pos
        {
            state.current = key;
            state.current_by = CURRENT_BY_DISPATCH;
            return Some((key, record));
        }
    }
    // Without the layout (or under a stacking filesystem, whose kiocb is
    // its own): the kernel dispatches iocbs in order, skipping those without
    // a dispatch (fsync, buffered I/O), so the first iocb from the cursor on
    // at this position.
    let key = claim_iocb(state, pid, Match::Dispatch { pos })?;
    Some((key, inflight(&key)?))
}

#[raw_tracepoint(tracepoint = "iomap_dio_complete")]
pub fn iomap_dio_complete(ctx: RawTracePointContext) -> i32 {
    let _ = try_dio_complete(&ctx);
    0
}

/// Runs where the I/O completes (interrupt or worker context): the task is not
/// the submitter, so the owner is found by the kiocb.
fn try_dio_complete(ctx: &RawTracePointContext) -> Result<(), i64> {
    let kiocb: u64 = ctx.arg(0);
    let Some(owner) = table::take(&DIO_OWNER, DIO_SETS, &kiocb) else {
        return Ok(());
    };
    if let Some(record) = owner_record(&owner) {
        let ret: i64 = ctx.arg(2);
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        unsafe {
            (*record).complete_ts = bpf_ktime_get_ns();
            // The kernel's result: what the io_event will say, and the
            // record's result if no io_getevents hands it back.
            (*record).res = ret;
        }
    }
    Ok(())
}
