//! io_uring: each request (`struct io_kiocb`) becomes a record of the same
//! contract as an AIO iocb, from its submission (or refusal) to the CQE the
//! kernel posts for it, and to the return of the io_uring_enter that handed
//! it back when the application waited for it.
//!
//! The request's `struct io_rw` sits at the start of the request, and its
//! `struct kiocb` is what the filesystem's dispatch reports: a dispatch finds
//! its request by address (`kiocb_req`), whichever thread issues it — the
//! submitter inline, the SQ polling thread, or an io-wq worker. Those are all
//! threads of the ring owner's process, so the in-flight key (pid, request)
//! is known wherever the request goes.

use core::{
    ffi::c_void,
    intrinsics::{AtomicOrdering, atomic_cxchg, atomic_xadd, atomic_xchg, atomic_xsub},
};

use aio_trace_common::{
    API_IO_URING, CQE_FLAGS, CQE_RES, CTX_URING_FD, INFLIGHT_SETS, IOCB_BYTES_UNKNOWN,
    IORING_CQE_F_MORE, IORING_ENTER_GETEVENTS, IORING_SETUP_SQPOLL, IocbRecord, LossCause,
    REAP_BATCH, RECORD_IOCB, SQE_ADDR, SQE_FD, SQE_LEN, SQE_OFF, SQE_OPCODE, SQE_USER_DATA,
    UringData, uring_data,
};
use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        generated::{bpf_get_current_task_btf, bpf_loop, bpf_task_pt_regs},
    },
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};

use crate::{
    filter::{current_cgroup, traced, traced_as},
    iovec::{IovecSum, sum_iovecs},
    kernel::{
        kiocb_pos, leader_comm, read, req_fd, req_kiocb, req_opcode, req_ring, req_rw,
        req_user_data, ring_flags, task_flags, uring_known,
    },
    light,
    maps::{
        INFLIGHT, REAP_BATCHES, RING_SETS, ReapBatch, RingHeld, THREAD_SETS, URING_HELD_MAX,
        URING_PID_SETS, URING_PIDS, URING_RINGS, URING_WAITERS, ZERO_RING_HELD, add, count_loss,
        counters, deliver, sampling, unmatched_is_loss, uring_key,
    },
    reap::{flush, unmatched_cause},
    syscall,
    table::{self, WhenFull},
};

/// `PF_IO_WORKER`: an io-wq worker or SQ polling thread. Its saved user
/// registers are those of the call that created it, not a call it is in.
const PF_IO_WORKER: u32 = 0x10;

/// `__NR_io_uring_enter` on x86-64.
const NR_IO_URING_ENTER: u64 = 426;

// Raw tracepoint arguments (TP_PROTO): io_uring_submit_req (struct io_kiocb *);
// io_uring_req_failed (const struct io_uring_sqe *, struct io_kiocb *, int);
// io_uring_complete (struct io_ring_ctx *, void *req, struct io_uring_cqe *).

#[raw_tracepoint(tracepoint = "io_uring_submit_req")]
pub fn io_uring_submit_req(ctx: RawTracePointContext) -> i32 {
    let _ = try_submit_req(&ctx);
    0
}

/// The record of a request as it is submitted, without its data fields.
#[inline(always)]
fn new_record(pid: u32, tid: u32, comm: [u8; 16], ring: u64, req: u64) -> IocbRecord {
    IocbRecord {
        kind: RECORD_IOCB,
        api: API_IO_URING,
        pid,
        tid,
        comm,
        cgroup: current_cgroup(),
        ctx: ring,
        iocb: req,
        // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
        submit_ns: unsafe { bpf_ktime_get_ns() },
        ..IocbRecord::default()
    }
}

/// Segments and bytes of an opcode's data at `addr`/`len`.
#[inline(always)]
fn set_data(record: &mut IocbRecord, addr: u64, len: u32) {
    match uring_data(record.opcode as u8) {
        UringData::Iovec => {
            record.segs = len;
            // Beyond UIO_MAXIOV the kernel refuses the request (-EINVAL)
            // without reading the array, and so do we.
            match sum_iovecs(addr, u64::from(len)) {
                IovecSum::Bytes(bytes) => record.bytes = bytes,
                IovecSum::TooMany => record.flags |= IOCB_BYTES_UNKNOWN,
                IovecSum::Unreadable => {
                    record.flags |= IOCB_BYTES_UNKNOWN;
                    count_loss(LossCause::UserRead);
                }
            }
        }
        UringData::Buffer => {
            record.segs = 1;
            record.bytes = u64::from(len);
        }
        UringData::None => {}
    }
}

/// Tracks `record` as request `req` of its process.
#[inline(always)]
fn track(record: &IocbRecord, req: u64) {
    let pid = u64::from(record.pid);
    if table::get_ptr(&URING_PIDS, URING_PID_SETS, &pid).is_none() {
        let _ = table::put(&URING_PIDS, URING_PID_SETS, &pid, &pid, WhenFull::Evict);
    }
    let key = uring_key(record.pid, req);
    // The kernel reuses a request only after its completion: one still here
    // completed and was held for an io_uring_enter's return that came before
    // its task work ran (on the way back to user space). The application
    // has its CQE by now.
    if table::get_ptr(&INFLIGHT, INFLIGHT_SETS, &key).is_some() {
        deliver(&key);
    }
    if !table::put(&INFLIGHT, INFLIGHT_SETS, &key, record, WhenFull::Refuse) {
        count_loss(LossCause::InflightFull);
    }
}

fn try_submit_req(ctx: &RawTracePointContext) -> Result<(), i64> {
    if !uring_known() {
        return Ok(());
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    let req: u64 = ctx.arg(0);
    let ring = req_ring(req)?;
    // The SQ polling thread submits for the ring's owner: the record is the
    // process's (its main thread's), not the kernel thread's, and so is the
    // name the filter sees.
    let sqpoll = ring_flags(ring)? & IORING_SETUP_SQPOLL != 0;
    let (tid, comm) = if sqpoll {
        // SAFETY: bpf_get_current_task takes no arguments and has no preconditions.
        (pid, leader_comm(unsafe { bpf_get_current_task() })?)
    } else {
        (pid_tgid as u32, bpf_get_current_comm().unwrap_or_default())
    };
    if !traced_as(pid, Some(&comm)) {
        return Ok(());
    }
    let mut record = new_record(pid, tid, comm, ring, req);
    record.opcode = u16::from(req_opcode(req)?);
    record.aio_data = req_user_data(req)?;
    record.fd = req_fd(req)? as u32;
    if uring_data(record.opcode as u8) != UringData::None {
        let (addr, len) = req_rw(req)?;
        set_data(&mut record, addr, len);
        record.offset = kiocb_pos(req_kiocb(req))?;
    }
    if !sampling() {
        light::count_request(pid, ring, record.opcode, record.segs, record.bytes);
        return Ok(());
    }
    track(&record, req);
    Ok(())
}

#[raw_tracepoint(tracepoint = "io_uring_req_failed")]
pub fn io_uring_req_failed(ctx: RawTracePointContext) -> i32 {
    let _ = try_req_failed(&ctx);
    0
}

/// A request the kernel refused while preparing it (a bad opcode, too many
/// segments…): it was never submitted, but its CQE carries the errno, so it
/// is a record. Its fields come from the SQE, as the application wrote them.
fn try_req_failed(ctx: &RawTracePointContext) -> Result<(), i64> {
    if !uring_known() {
        return Ok(());
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if !traced(pid) {
        return Ok(());
    }
    let sqe: u64 = ctx.arg(0);
    let req: u64 = ctx.arg(1);
    let comm = bpf_get_current_comm().unwrap_or_default();
    let mut record = new_record(pid, tid, comm, req_ring(req)?, req);
    record.opcode = u16::from(read::<u8>(sqe, SQE_OPCODE)?);
    record.fd = read::<i32>(sqe, SQE_FD)? as u32;
    record.offset = read(sqe, SQE_OFF)?;
    record.aio_data = read(sqe, SQE_USER_DATA)?;
    set_data(&mut record, read(sqe, SQE_ADDR)?, read(sqe, SQE_LEN)?);
    track(&record, req);
    Ok(())
}

#[raw_tracepoint(tracepoint = "io_uring_complete")]
pub fn io_uring_complete(ctx: RawTracePointContext) -> i32 {
    let _ = try_complete(&ctx);
    0
}

/// The kernel posted the request's CQE. If the thread posting it waits in
/// io_uring_enter for completions (the common case: completions run as task
/// work of the submitting thread), the record waits for that call's return;
/// otherwise the application reaps the CQ ring in user memory and the
/// record goes now, its latency ending at the CQE.
fn try_complete(ctx: &RawTracePointContext) -> Result<(), i64> {
    let req: u64 = ctx.arg(1);
    // CQEs without a request (auxiliary, overflow flushes) are not ours.
    if req == 0 {
        return Ok(());
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let key = uring_key(pid, req);
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(record) = table::get_ptr(&INFLIGHT, INFLIGHT_SETS, &key) else {
        if uring_known() && unmatched_is_loss() && traced(pid) {
            count_loss(unmatched_cause(now));
        }
        return Ok(());
    };
    let cqe: u64 = ctx.arg(2);
    let res: i32 = read(cqe, CQE_RES)?;
    let flags: u32 = read(cqe, CQE_FLAGS)?;
    // A multishot request goes on after this CQE.
    if flags & IORING_CQE_F_MORE != 0 {
        return Ok(());
    }
    // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other CPUs
    // may update other fields of it, plain integers, at the same time.
    unsafe {
        (*record).res = i64::from(res);
        (*record).complete_ts = now;
    }
    let ring: u64 = ctx.arg(0);
    if (ring_waited_on(ring) || (waiting_in_enter() && wait_on(tid, ring))) && hold(ring, req) {
        return Ok(());
    }
    deliver(&key);
    Ok(())
}

#[raw_tracepoint(tracepoint = "io_uring_cqring_wait")]
pub fn io_uring_cqring_wait(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if uring_known() && traced((pid_tgid >> 32) as u32) {
        let _ = wait_on(pid_tgid as u32, ctx.arg(0));
    }
    0
}

/// Registers the current thread as waiting on `ring` until its
/// io_uring_enter returns; false if the ring cannot hold completions.
#[inline(always)]
fn wait_on(tid: u32, ring: u64) -> bool {
    let thread = u64::from(tid);
    if table::get(&URING_WAITERS, THREAD_SETS, &thread) == Some(ring) {
        return true;
    }
    let held = match table::get_ptr(&URING_RINGS, RING_SETS, &ring) {
        Some(h) => h,
        None => {
            let _ = table::put(
                &URING_RINGS,
                RING_SETS,
                &ring,
                &ZERO_RING_HELD,
                WhenFull::Evict,
            );
            match table::get_ptr(&URING_RINGS, RING_SETS, &ring) {
                Some(h) => h,
                None => return false,
            }
        }
    };
    if !table::put(&URING_WAITERS, THREAD_SETS, &thread, &ring, WhenFull::Evict) {
        return false;
    }
    // SAFETY: the ring's entry, a map value pointer (see the crate doc's Safety); `waiters` is an
    // aligned u64 every side changes atomically.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(&raw mut (*held).waiters, 1) };
    true
}

/// Whether a thread waits on `ring` now.
#[inline(always)]
fn ring_waited_on(ring: u64) -> bool {
    match table::get_ptr(&URING_RINGS, RING_SETS, &ring) {
        // SAFETY: the ring's entry, a map value pointer (see the crate doc's Safety); a whole
        // aligned u64.
        Some(held) => (unsafe { core::ptr::read_volatile(&raw const (*held).waiters) }) != 0,
        None => false,
    }
}

/// Keeps `req` for the return of the io_uring_enter waiting on `ring`;
/// false if the ring holds as many as it can (the record goes now).
#[inline(always)]
fn hold(ring: u64, req: u64) -> bool {
    let Some(held) = table::get_ptr(&URING_RINGS, RING_SETS, &ring) else {
        return false;
    };
    // Threads of the ring's process complete its requests on several CPUs
    // at once: each takes a slot by compare-and-swap.
    for _ in 0..4 {
        // SAFETY: the ring's entry, a map value pointer (see the crate doc's Safety); `n` is an
        // aligned u64 only changed by compare-and-swap.
        let (n, won) = unsafe {
            let n = core::ptr::read_volatile(&raw const (*held).n);
            if n >= URING_HELD_MAX as u64 {
                return false;
            }
            atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(
                &raw mut (*held).n,
                n,
                n + 1,
            )
        };
        if won {
            let slot = (n as usize).min(URING_HELD_MAX - 1);
            // SAFETY: as above; `slot` is in bounds and this program's alone.
            unsafe { core::ptr::write_volatile(&raw mut (*held).reqs[slot], req) };
            return true;
        }
    }
    false
}

/// Whether the current thread is inside an io_uring_enter that waits for
/// completions (`IORING_ENTER_GETEVENTS`): then it hands every CQE posted
/// meanwhile to the application when it returns.
#[inline(always)]
fn waiting_in_enter() -> bool {
    // SAFETY: bpf_get_current_task takes no arguments and has no preconditions.
    let task = unsafe { bpf_get_current_task() };
    match task_flags(task) {
        Ok(flags) if flags & PF_IO_WORKER == 0 => {}
        _ => return false,
    }
    // SAFETY: bpf_get_current_task_btf returns the current task, always valid; bpf_task_pt_regs
    // its saved user registers.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const pt_regs;
    // SAFETY: a BTF-typed pointer: the verifier turns these loads into fault-safe reads.
    let (nr, flags) = unsafe { ((*regs).orig_rax, (*regs).r10) };
    nr == NR_IO_URING_ENTER && flags as u32 & IORING_ENTER_GETEVENTS != 0
}

#[tracepoint]
pub fn sys_exit_io_uring_enter(ctx: TracePointContext) -> u32 {
    let _ = try_exit_enter(&ctx);
    0
}

/// What the per-request callback of an io_uring_enter's return needs.
#[repr(C)]
struct EnterReap {
    pid: u32,
    _pad: u32,
    reap_ns: u64,
    held: *mut RingHeld,
    batch: *mut ReapBatch,
}

/// The call returns: the completions its ring held are handed to the
/// application now. Only threads that waited find an entry.
fn try_exit_enter(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let thread = pid_tgid & 0xFFFF_FFFF;
    count_enter(ctx, pid_tgid);
    let Some(ring) = table::take(&URING_WAITERS, THREAD_SETS, &thread) else {
        return Ok(());
    };
    let Some(held) = table::get_ptr(&URING_RINGS, RING_SETS, &ring) else {
        return Ok(());
    };
    // SAFETY: the ring's entry, a map value pointer (see the crate doc's Safety); `waiters` and
    // `n` are aligned u64s every side changes atomically.
    let n = unsafe {
        atomic_xsub::<u64, u64, { AtomicOrdering::SeqCst }>(&raw mut (*held).waiters, 1);
        atomic_xchg::<u64, { AtomicOrdering::SeqCst }>(&raw mut (*held).n, 0)
    }
    .min(URING_HELD_MAX as u64);
    if n == 0 {
        return Ok(());
    }
    let Some(batch) = REAP_BATCHES.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: this CPU's reap batch slot, a map value pointer (see the crate doc's Safety) that
    // only the syscall exit programs on this CPU use, with preemption off.
    unsafe { (*batch).batched = 0 };
    let mut walk = EnterReap {
        pid: (pid_tgid >> 32) as u32,
        _pad: 0,
        // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
        reap_ns: unsafe { bpf_ktime_get_ns() },
        held,
        batch,
    };
    // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
    // outlives the call; flags are 0.
    unsafe {
        bpf_loop(
            n as u32,
            reap_held as *mut c_void,
            (&raw mut walk).cast(),
            0,
        )
    };
    flush(batch);
    Ok(())
}

/// Counts the call against its ring's fd (`CTX_URING_FD`). Its arguments come
/// from the caller's registers; a kernel without BTF has none to give, and
/// io_uring_enter is not counted there.
#[inline(always)]
fn count_enter(ctx: &TracePointContext, pid_tgid: u64) {
    let pid = (pid_tgid >> 32) as u32;
    if !uring_known() || !traced(pid) {
        return;
    }
    let Some([fd, to_submit, min_complete, flags]) = syscall::exit_args(pid_tgid as u32) else {
        return;
    };
    let Some(c) = counters(pid, CTX_URING_FD | (fd & 0xFFFF_FFFF)) else {
        return;
    };
    let ret = syscall::ret(ctx);
    let to_submit = to_submit & 0xFFFF_FFFF;
    // SAFETY: a counters pointer from `counters` (see the crate doc's Safety); `add` is given
    // fields inside it.
    unsafe {
        if to_submit != 0 {
            add(&raw mut (*c).io_submit_calls, 1);
            add(&raw mut (*c).iocbs_requested, to_submit);
            let submitted = if ret > 0 { ret as u64 } else { 0 };
            add(&raw mut (*c).iocbs_submitted, submitted);
            if submitted < to_submit {
                add(&raw mut (*c).short_submits, 1);
            }
        }
        if flags as u32 & IORING_ENTER_GETEVENTS != 0 {
            add(&raw mut (*c).io_getevents_calls, 1);
            add(&raw mut (*c).min_nr_sum, min_complete & 0xFFFF_FFFF);
        }
    }
}

/// `bpf_loop` callback: the held request number `index` becomes a record.
extern "C" fn reap_held(index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `EnterReap`, live and untouched by
    // the caller until the loop returns.
    let walk = unsafe { &*(walk as *const EnterReap) };
    if index >= URING_HELD_MAX as u64 {
        return 1;
    }
    // SAFETY: the ring's entry (see `try_exit_enter`); `index` is bounds-checked above. A slot
    // is read and cleared whole.
    let req = unsafe {
        let slot = &raw mut (*walk.held).reqs[index as usize];
        let req = core::ptr::read_volatile(slot);
        core::ptr::write_volatile(slot, 0);
        req
    };
    let key = uring_key(walk.pid, req);
    // A slot taken but not yet written still holds an earlier request's
    // address, which a request in flight may have now: only a completed
    // request goes.
    match table::get(&INFLIGHT, INFLIGHT_SETS, &key) {
        Some(record) if record.complete_ts != 0 => {}
        _ => return 0,
    }
    let batch = walk.batch;
    // SAFETY: this CPU's reap batch slot (see `try_exit_enter`).
    let at = unsafe { (*batch).batched } as usize;
    if at >= REAP_BATCH {
        return 1;
    }
    // SAFETY: as above, and `at` < REAP_BATCH was checked just before.
    let out = unsafe { &raw mut (*batch).records[at] };
    if !table::take_into(&INFLIGHT, INFLIGHT_SETS, &key, Some(out)) {
        // The user half's sweep delivered it.
        return 0;
    }
    // SAFETY: `out` points into this CPU's reap batch slot, in bounds (see above).
    unsafe { (*out).reap_ns = walk.reap_ns };
    // SAFETY: this CPU's reap batch slot.
    unsafe { (*batch).batched += 1 };
    if at + 1 >= REAP_BATCH {
        flush(batch);
    }
    0
}
