//! io_submit: every iocb is decoded at entry into the in-flight table; at exit
//! the iocbs the kernel did not accept are reported (rejected) or forgotten.

use core::{
    ffi::c_void,
    intrinsics::{AtomicOrdering, atomic_cxchg},
};

use aio_trace_common::{
    CTX_OP_CALLS, CtxKey, INFLIGHT_SETS, IOCB_BYTES_UNKNOWN, IOCB_CMD_PREAD, IOCB_CMD_PREADV,
    IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV, IOCB_OPCODE_UNKNOWN, IOCB_REJECTED, IOCB_RES_UNKNOWN,
    InflightKey, Iocb, IocbRecord, LossCause, MAX_IOCBS_PER_CALL, RECORD_IOCB, RECORD_ORDER,
    SEQ_URING,
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user,
        bpf_probe_read_user_buf, generated::bpf_loop,
    },
    macros::tracepoint,
    programs::TracePointContext,
};

use crate::{
    filter::{current_cgroup, traced},
    iovec::{IovecSum, sum_iovecs},
    light,
    maps::{
        CTX_BORN, CURRENT_NONE, EVENTS, INFLIGHT, SUBMITS, SubmitState, add, close_slot,
        count_loss, count_losses, counters, deliver, full_mode, inflight, open_slot, order_key,
        reap_deep, sampling, submitted_key, wakeup_flags,
    },
    reread::reread,
    syscall,
    table::{self, WhenFull},
};

/// Iocb pointers read from the caller's array per user read: a call of
/// several iocbs (the scalar side of the vectored-vs-scalar experiment
/// submits one per segment) pays ~100 ns per read, not per iocb.
pub const POINTER_CHUNK: usize = 16;

/// Who submitted an iocb, and when: what its record takes from the call.
#[repr(C)]
pub struct Submitter {
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; 16],
    pub ctx: u64,
    pub submit_ns: u64,
}

/// What the per-iocb callback needs, passed through `bpf_loop`.
#[repr(C)]
struct SubmitWalk {
    who: Submitter,
    iocbpp: u64,
    /// Iocbs the call walks (`nr`, capped).
    walked: u64,
    /// The chunk of the pointer array holding the current index, if read.
    pointers: [u64; POINTER_CHUNK],
    pointers_read: u64,
    /// `SubmitState::unreadable` and `unsummed`.
    unreadable: u64,
    unsummed: u64,
}

#[tracepoint]
pub fn sys_enter_io_submit(ctx: TracePointContext) -> u32 {
    let _ = try_enter_io_submit(&ctx);
    0
}

fn try_enter_io_submit(ctx: &TracePointContext) -> Result<(), i64> {
    // A light tier's window closes here at once; the program's detach,
    // which waits out an RCU grace period, comes a few milliseconds later.
    if !sampling() {
        return Ok(());
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if !traced(pid) {
        return Ok(());
    }
    let aio_ctx = syscall::arg(ctx, 0);
    let nr = syscall::arg(ctx, 1) as i64;
    let iocbpp = syscall::arg(ctx, 2);
    let nr = if nr < 0 { 0 } else { nr as u64 };

    let mut walked = nr;
    if walked > MAX_IOCBS_PER_CALL as u64 {
        count_loss(LossCause::BatchTruncated);
        walked = MAX_IOCBS_PER_CALL as u64;
    }
    let mut walk = SubmitWalk {
        who: Submitter {
            pid,
            tid,
            comm: bpf_get_current_comm().unwrap_or_default(),
            ctx: aio_ctx,
            // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
            submit_ns: unsafe { bpf_ktime_get_ns() },
        },
        iocbpp,
        walked,
        pointers: [0; POINTER_CHUNK],
        pointers_read: 0,
        unreadable: 0,
        unsummed: 0,
    };
    // bpf_loop: the callback is verified once, whatever nr is.
    // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
    // outlives the call; flags are 0.
    unsafe {
        bpf_loop(
            walked as u32,
            submit_one as *mut c_void,
            (&raw mut walk).cast(),
            0,
        )
    };

    let state = SubmitState {
        ctx: aio_ctx,
        iocbpp,
        requested: nr,
        walked,
        cursor: 0,
        current: InflightKey::default(),
        current_by: CURRENT_NONE,
        submit_ns: walk.who.submit_ns,
        unreadable: walk.unreadable,
        unsummed: walk.unsummed,
    };
    if !open_slot(&SUBMITS, tid, &state) {
        count_loss(LossCause::SyscallStateFull);
    }
    Ok(())
}

/// `bpf_loop` callback: decode iocb number `index` into the in-flight table.
extern "C" fn submit_one(index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `SubmitWalk`, live and untouched by
    // the caller until the loop returns.
    let walk = unsafe { &mut *(walk as *mut SubmitWalk) };
    // Not read whole: the kernel's own read may fault in what ours could
    // not, so it is read again after the kernel's (`reread`), and is a loss
    // only if the kernel read it and we still cannot. Bitmaps of the first
    // 64 iocbs of a call; past them, a loss at once.
    match try_submit_one(index, walk) {
        Ok(unsummed) if index < 64 => walk.unsummed |= unsummed << index,
        Ok(unsummed) => count_losses(LossCause::UserRead, unsummed),
        Err(_) if index < 64 => walk.unreadable |= 1 << index,
        Err(_) => count_loss(LossCause::UserRead),
    }
    0
}

/// The address of iocb number `index`, from the chunk of the caller's
/// pointer array read when the walk reached it.
#[inline(always)]
fn iocb_pointer(walk: &mut SubmitWalk, index: u64) -> Result<u64, i64> {
    chunked_iocb_pointer(
        walk.iocbpp,
        walk.walked,
        index,
        &mut walk.pointers,
        &mut walk.pointers_read,
    )
}

/// The address of iocb number `index` of the `count` whose pointers are at
/// `iocbpp`, for a walk that goes through them in order: the pointers are
/// read `POINTER_CHUNK` at a time into `pointers` (`read`: 1 if that read
/// worked) as the walk reaches each chunk.
#[inline(always)]
pub fn chunked_iocb_pointer(
    iocbpp: u64,
    count: u64,
    index: u64,
    pointers: &mut [u64; POINTER_CHUNK],
    read: &mut u64,
) -> Result<u64, i64> {
    let at = (index % POINTER_CHUNK as u64) as usize;
    if at == 0 {
        *read = 0;
        let n = (count - index).min(POINTER_CHUNK as u64) as usize;
        if n == 0 || n > POINTER_CHUNK {
            return Err(-1);
        }
        let src = iocbpp.wrapping_add(index.wrapping_mul(8)) as *const u8;
        // SAFETY: `pointers` is the walk's own array and `n` is at most its length (checked
        // above).
        let dst =
            unsafe { core::slice::from_raw_parts_mut(pointers.as_mut_ptr().cast::<u8>(), n * 8) };
        // SAFETY: bpf_probe_read_user_buf tolerates any source address (a fault is returned as an
        // error) and writes only within `dst`.
        if unsafe { bpf_probe_read_user_buf(src, dst) }.is_ok() {
            *read = 1;
        }
    }
    // A chunk that ran into an unreadable page: one pointer at a time, as the
    // kernel reads them, so the readable ones before it are still decoded.
    if *read == 0 || at >= POINTER_CHUNK {
        return read_iocb_pointer(iocbpp, index);
    }
    Ok(pointers[at])
}

fn try_submit_one(index: u64, walk: &mut SubmitWalk) -> Result<u64, i64> {
    let iocb_addr = iocb_pointer(walk, index)?;
    decode_iocb::<false>(&walk.who, iocb_addr)
}

/// Decodes the iocb at `iocb_addr` into the in-flight table; Err if it could
/// not be read. Ok(1) if it is in the table but its iovec array could not
/// be read (its record says `IOCB_BYTES_UNKNOWN`), else Ok(0): a number the
/// callers shift into their bitmap, not a flag they branch on, which would
/// make the verifier walk the table code below once for each value.
///
/// `LATE`: decoded after the entry (`reread`). If this call's submission
/// of the iocb is in the table already (decoded without its iovec array),
/// its bytes are taken from this reading. Err also if an earlier submission
/// of the address is still in the table: telling the two apart takes the
/// upkeep of the address's order entry, which costs the verifier more than
/// all the rest of a dispatch or exit program that includes it.
pub fn decode_iocb<const LATE: bool>(who: &Submitter, iocb_addr: u64) -> Result<u64, i64> {
    // SAFETY: bpf_probe_read_user tolerates any address: a fault is returned as an error, not
    // taken.
    let iocb: Iocb = unsafe { bpf_probe_read_user(iocb_addr as *const Iocb) }.map_err(i64::from)?;

    let mut unsummed = 0;
    let mut record = IocbRecord {
        kind: RECORD_IOCB,
        opcode: iocb.aio_lio_opcode,
        pid: who.pid,
        tid: who.tid,
        fd: iocb.aio_fildes,
        comm: who.comm,
        // The submitter is the current task, at the entry and where an
        // iocb is read again alike.
        cgroup: current_cgroup(),
        ctx: who.ctx,
        iocb: iocb_addr,
        aio_data: iocb.aio_data,
        offset: iocb.aio_offset,
        submit_ns: who.submit_ns,
        ..IocbRecord::default()
    };
    match iocb.aio_lio_opcode {
        IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => {
            let segs = iocb.aio_nbytes;
            record.segs = if segs > u32::MAX as u64 {
                u32::MAX
            } else {
                segs as u32
            };
            match sum_iovecs(iocb.aio_buf, segs) {
                IovecSum::Bytes(bytes) => record.bytes = bytes,
                IovecSum::TooMany => record.flags |= IOCB_BYTES_UNKNOWN,
                IovecSum::Unreadable => {
                    record.flags |= IOCB_BYTES_UNKNOWN;
                    unsummed = 1;
                }
            }
        }
        IOCB_CMD_PREAD | IOCB_CMD_PWRITE => {
            record.segs = 1;
            record.bytes = iocb.aio_nbytes;
        }
        _ => {}
    }

    let mut key = InflightKey {
        pid: who.pid,
        seq: 0,
        ctx: who.ctx,
        iocb: iocb_addr,
    };
    let order = order_key(&key);
    if LATE {
        if let Some(known) = inflight(&submitted_key(who.pid, who.ctx, iocb_addr)) {
            // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety);
            // other CPUs may update other fields of it, plain integers, at the same time.
            unsafe {
                if (*known).submit_ns != who.submit_ns {
                    return Err(-1);
                }
                if (*known).flags & IOCB_BYTES_UNKNOWN == 0 {
                    return Ok(0);
                }
                (*known).bytes = record.bytes;
                (*known).flags =
                    ((*known).flags & !IOCB_BYTES_UNKNOWN) | (record.flags & IOCB_BYTES_UNKNOWN);
            }
            return Ok(unsummed);
        }
        if inflight(&order).is_some() {
            return Err(-1);
        }
    } else if let Some(o) = inflight(&order) {
        // Earlier submissions of this address are (or were) in flight at
        // once: this one takes the next number.
        // SAFETY: a map value pointer to the order entry (see the crate doc's Safety); a whole
        // aligned u64.
        let numbered_since = unsafe { core::ptr::read_volatile(&raw const (*o).submit_ns) };
        if numbered_since < born(who) {
            renew_order(o, who.submit_ns);
        }
        retire_ring_reaped(who, o, &key);
        let Some(seq) = take_number(o) else {
            count_loss(LossCause::InflightFull);
            return Ok(0);
        };
        key.seq = seq;
    } else if let Some(previous) = inflight(&key) {
        if ring_reaped(who, previous) || before_context(who, previous) {
            deliver(&key);
        } else {
            // Still in flight (its event not yet reaped): the two are told
            // apart by their order from now on. The record is the template
            // of the order entry, put back afterwards: a second 168-byte
            // record does not fit on the stack.
            let bytes = record.bytes;
            record.kind = RECORD_ORDER;
            record.bytes = 2;
            let ordered = put_inflight(&order, &record);
            record.kind = RECORD_IOCB;
            record.bytes = bytes;
            if !ordered {
                count_loss(LossCause::InflightFull);
                return Ok(0);
            }
            key.seq = 1;
        }
    }
    if !put_inflight(&key, &record) {
        count_loss(LossCause::InflightFull);
        return Ok(0);
    }
    Ok(unsummed)
}

/// Puts an iocb's entry in the in-flight table. A full set first gives up a
/// finished iocb of a destroyed context: io_destroy waited for it, no
/// io_getevents can return it, and the user half, which delivers such
/// iocbs once it reads the destroy, may not have yet — an application that
/// creates and destroys contexts by the thousand (libaio's harness, case 18)
/// keeps that many in the table meanwhile.
#[inline(always)]
fn put_inflight(key: &InflightKey, record: &IocbRecord) -> bool {
    if table::put(&INFLIGHT, INFLIGHT_SETS, key, record, WhenFull::Refuse) {
        return true;
    }
    // Taken straight into the ring buffer, as `deliver` does.
    let Some(mut slot) = EVENTS.reserve::<IocbRecord>(0) else {
        return false;
    };
    if !table::take_from_set(
        &INFLIGHT,
        INFLIGHT_SETS,
        key,
        of_destroyed_context,
        slot.as_mut_ptr(),
    ) {
        slot.discard(0);
        return false;
    }
    slot.submit(wakeup_flags());
    table::put(&INFLIGHT, INFLIGHT_SETS, key, record, WhenFull::Refuse)
}

/// Whether an in-flight entry is an iocb whose completion was seen and whose
/// context was destroyed since its submission (`CTX_BORN` holds the
/// destroy's time until io_setup hands the id out again).
#[inline(always)]
fn of_destroyed_context(key: &InflightKey, entry: *mut IocbRecord) -> bool {
    // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); whole
    // aligned fields, read once each.
    let (kind, completed, submitted) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*entry).kind),
            core::ptr::read_volatile(&raw const (*entry).complete_ts),
            core::ptr::read_volatile(&raw const (*entry).submit_ns),
        )
    };
    if kind != RECORD_IOCB || completed == 0 || key.seq == SEQ_URING {
        return false;
    }
    submitted < born_at(key.pid, key.ctx)
}

/// Kernel completion seen this long before the address was submitted again,
/// with the AIO ring empty: its event was taken from the ring in user memory.
/// An io_getevents empties the ring before its exit program runs, and the
/// event may have waited in the ring for a busy reaper before that, so the
/// age must be one no io_getevents user lags by: submissions whose event is
/// younger stay ordered, and the user half delivers those nobody reaps
/// (`REAP_GRACE`).
const RING_REAP_AGE_NS: u64 = 100_000_000;

/// Whether `previous`, an earlier submission of the address being submitted
/// again, was reaped from the AIO ring in user memory (fio --userspace_reap,
/// Seastar): its kernel completion was seen a while ago and the ring holds
/// no event, so no io_getevents will return it. Otherwise, completed or not,
/// its event may still come through io_getevents.
#[inline(always)]
fn ring_reaped(who: &Submitter, previous: *mut IocbRecord) -> bool {
    // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); a whole
    // aligned u64.
    let complete = unsafe { core::ptr::read_volatile(&raw const (*previous).complete_ts) };
    if complete == 0 || who.submit_ns.wrapping_sub(complete) as i64 <= RING_REAP_AGE_NS as i64 {
        return false;
    }
    // struct aio_ring at the context id: id, nr, head, tail.
    // SAFETY: bpf_probe_read_user tolerates any address: a fault is returned as an error, not
    // taken.
    match unsafe { bpf_probe_read_user((who.ctx + 8) as *const [u32; 2]) } {
        Ok([head, tail]) => head == tail,
        Err(_) => false,
    }
}

/// When the context id `who.ctx` was last handed out by io_setup or given
/// back by io_destroy (0 if before the trace). The kernel reuses a destroyed context's id, and an
/// application its iocb memory: an entry of the same address submitted
/// before that was the destroyed context's, which no io_getevents of this
/// one will return (the user half delivers it from the destroy).
#[inline(always)]
fn born(who: &Submitter) -> u64 {
    born_at(who.pid, who.ctx)
}

/// `CTX_BORN` of (pid, ctx): 0 when unknown.
#[inline(always)]
fn born_at(pid: u32, ctx: u64) -> u64 {
    let key = CtxKey {
        pid,
        op: CTX_OP_CALLS,
        ctx,
    };
    // SAFETY: HashMap::get is unsafe because another CPU may delete the entry under the returned
    // reference; the u64 is copied at once.
    unsafe { CTX_BORN.get(key) }.copied().unwrap_or(0)
}

/// Whether `previous`, an earlier submission of the address, belongs to an
/// earlier context of the same id: it is delivered now and its slot reused.
#[inline(always)]
fn before_context(who: &Submitter, previous: *mut IocbRecord) -> bool {
    // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); a whole
    // aligned u64.
    let submitted = unsafe { core::ptr::read_volatile(&raw const (*previous).submit_ns) };
    submitted < born(who)
}

/// An order entry of the destroyed context of the same id starts over for
/// this one: its numbers go on (the old context's submissions keep theirs
/// until the user half delivers them from the destroy), its events start at
/// the next number, and its time is this submission's, so the destroy's
/// reclaim leaves it.
#[inline(always)]
fn renew_order(order: *mut IocbRecord, now: u64) {
    // SAFETY: a map value pointer to the order entry (see the crate doc's Safety); whole aligned
    // u64 fields, the counter read and stored whole.
    unsafe {
        let next = core::ptr::read_volatile(&raw const (*order).bytes);
        core::ptr::write_volatile(&raw mut (*order).reap_ns, next);
        core::ptr::write_volatile(&raw mut (*order).submit_ns, now);
    }
}

/// The next submission number of an order entry, taken by a compare-and-swap
/// (the bpfel target's fetch-and-add returns no value): one try per thread
/// submitting the same address at once, which applications hardly do.
#[inline(always)]
fn take_number(order: *mut IocbRecord) -> Option<u32> {
    for _ in 0..4 {
        // SAFETY: a map value pointer to the order entry (see the crate doc's Safety); `bytes`, its
        // submission counter, is an aligned u64 only changed by this compare-and-swap.
        let (seen, won) = unsafe {
            let seen = core::ptr::read_volatile(&raw const (*order).bytes);
            atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(
                &raw mut (*order).bytes,
                seen,
                seen + 1,
            )
        };
        if won {
            return Some(seen as u32);
        }
    }
    None
}

/// In an ordered address, the oldest submission still in flight, if it was
/// reaped from the ring in user memory, becomes its record now: an
/// application that reaps from the ring and reuses its iocbs would otherwise
/// fill the table until the user half's sweep.
#[inline(always)]
fn retire_ring_reaped(who: &Submitter, order: *mut IocbRecord, base: &InflightKey) {
    // SAFETY: a map value pointer to the order entry (see the crate doc's Safety); whole aligned
    // u64 counters.
    let (next_reap, next_submit) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*order).reap_ns),
            core::ptr::read_volatile(&raw const (*order).bytes),
        )
    };
    if next_reap >= next_submit {
        return;
    }
    let oldest = InflightKey {
        seq: next_reap as u32,
        ..*base
    };
    let Some(entry) = inflight(&oldest) else {
        return;
    };
    if !ring_reaped(who, entry) {
        return;
    }
    // SAFETY: as above; the counter is claimed by a compare-and-swap so that a reap racing for the
    // same submission and this retirement advance it once.
    let (_, won) = unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(
            &raw mut (*order).reap_ns,
            next_reap,
            next_reap + 1,
        )
    };
    if !won {
        return;
    }
    deliver(&oldest);
}

#[inline(always)]
pub fn read_iocb_pointer(iocbpp: u64, index: u64) -> Result<u64, i64> {
    let slot = iocbpp.wrapping_add(index.wrapping_mul(8)) as *const u64;
    // SAFETY: bpf_probe_read_user tolerates any address: a fault is returned as an error, not
    // taken.
    unsafe { bpf_probe_read_user(slot) }.map_err(i64::from)
}

#[tracepoint]
pub fn sys_exit_io_submit(ctx: TracePointContext) -> u32 {
    let _ = try_exit_io_submit(&ctx);
    0
}

/// What the callbacks at io_submit exit need.
#[repr(C)]
struct ExitWalk {
    pid: u32,
    _pad: u32,
    ctx: u64,
    iocbpp: u64,
    /// First index the callback handles.
    start: u64,
}

fn try_exit_io_submit(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let ret = syscall::ret(ctx);
    // The light tier counts every call here, sampled (its entry ran in a
    // window) or not; the full tier counts from the entry's state below.
    let full = full_mode();
    if !full {
        light::count_submit(pid, tid, ret);
        // Between windows no entry ran: no state to look for.
        if !reap_deep() {
            return Ok(());
        }
    }
    let Some(mut state) = close_slot(&SUBMITS, tid) else {
        return Ok(());
    };

    let accepted = if ret > 0 { ret as u64 } else { 0 };
    // The kernel has read every iocb it accepted, and the one it refused if
    // it could: what the entry could not read of them is readable now.
    reread(&mut state, accepted + 1);
    // All of the call's counters here: one lookup per call, not two.
    if let Some(c) = full.then(|| counters(pid, state.ctx)).flatten() {
        // SAFETY: a counters pointer from `counters` (see the crate doc's Safety); `add` is given
        // fields inside it.
        unsafe {
            add(&raw mut (*c).io_submit_calls, 1);
            add(&raw mut (*c).iocbs_requested, state.requested);
            add(&raw mut (*c).iocbs_submitted, accepted);
            if accepted < state.walked {
                add(&raw mut (*c).short_submits, 1);
            }
        }
    }
    // Iocbs (or iovec arrays) the kernel accepted but we could not read even
    // after the kernel had: lost.
    let read_by_kernel = if accepted >= 64 {
        u64::MAX
    } else {
        (1u64 << accepted) - 1
    };
    let lost = (state.unreadable & read_by_kernel).count_ones()
        + (state.unsummed & read_by_kernel).count_ones();
    if lost != 0 {
        count_losses(LossCause::UserRead, u64::from(lost));
    }
    if accepted >= state.walked {
        return Ok(());
    }

    // The kernel stops at the first iocb it refuses: that one is rejected, the
    // rest were never looked at and leave the in-flight table unreported.
    let walk = ExitWalk {
        pid,
        _pad: 0,
        ctx: state.ctx,
        iocbpp: state.iocbpp,
        start: accepted,
    };
    let unreadable = accepted < 64 && state.unreadable & (1 << accepted) != 0;
    reject(&walk, ret, tid, unreadable);
    let mut rest = ExitWalk {
        start: accepted + 1,
        ..walk
    };
    let unattempted = state.walked - accepted - 1;
    if unattempted > 0 {
        // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
        // outlives the call; flags are 0.
        unsafe {
            bpf_loop(
                unattempted as u32,
                forget_one as *mut c_void,
                (&raw mut rest).cast(),
                0,
            )
        };
    }
    Ok(())
}

fn inflight_key(walk: &ExitWalk, index: u64) -> Result<InflightKey, i64> {
    Ok(submitted_key(
        walk.pid,
        walk.ctx,
        read_iocb_pointer(walk.iocbpp, index)?,
    ))
}

/// Reports the iocb io_submit refused. Its errno is known only when it was the
/// first of the call (io_submit returns it); otherwise io_submit returned the
/// count of accepted iocbs and the errno is lost. An iocb the entry could not
/// read (`unreadable`: a bad pointer, which the kernel refuses with -EFAULT)
/// is still a record, with what is known: the call, and the iocb's address
/// if the pointer array was readable. Not inlined: its record on the stack
/// beside the exit's own locals is more than the 512 bytes a frame may have.
#[inline(never)]
fn reject(walk: &ExitWalk, ret: i64, tid: u32, unreadable: bool) {
    let pointer = read_iocb_pointer(walk.iocbpp, walk.start);
    let mut out = if unreadable {
        IocbRecord {
            kind: RECORD_IOCB,
            opcode: IOCB_OPCODE_UNKNOWN,
            flags: IOCB_BYTES_UNKNOWN,
            pid: walk.pid,
            tid,
            comm: bpf_get_current_comm().unwrap_or_default(),
            cgroup: current_cgroup(),
            ctx: walk.ctx,
            iocb: pointer.unwrap_or(0),
            offset: -1,
            // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
            submit_ns: unsafe { bpf_ktime_get_ns() },
            ..IocbRecord::default()
        }
    } else {
        let Ok(iocb) = pointer else {
            count_loss(LossCause::UserRead);
            return;
        };
        let key = submitted_key(walk.pid, walk.ctx, iocb);
        let Some(record) = inflight(&key) else {
            return;
        };
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        let out = unsafe { *record };
        let _ = table::take_into(&INFLIGHT, INFLIGHT_SETS, &key, None);
        out
    };
    out.flags |= IOCB_REJECTED;
    if ret < 0 {
        out.res = ret;
    } else {
        out.flags |= IOCB_RES_UNKNOWN;
    }
    if EVENTS.output::<IocbRecord>(&out, wakeup_flags()).is_err() {
        count_loss(LossCause::RingFull);
    }
}

/// `bpf_loop` callback: drop an iocb io_submit never attempted.
extern "C" fn forget_one(index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `ExitWalk`, live and untouched by
    // the caller until the loop returns.
    let walk = unsafe { &*(walk as *const ExitWalk) };
    // Unreadable now, it was at entry too: never in the table.
    if let Ok(key) = inflight_key(walk, walk.start + index) {
        let _ = table::take_into(&INFLIGHT, INFLIGHT_SETS, &key, None);
    }
    0
}
