//! The light tier's count of io_submit: at the call's exit, the iocbs the
//! kernel accepted are read once each and added to the per-(process,
//! context, opcode) counters. No in-flight entry, no record: the depth of
//! the light tier comes from its sampling windows, in which the full
//! programs run beside this one (see `maps::TIER`).

use core::ffi::c_void;

use aio_trace_common::{
    CTX_SYNC, CtxCounters, CtxKey, IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE,
    IOCB_CMD_PWRITEV, IoEvent, LossCause, MAX_IOCBS_PER_CALL, REAP_BATCH, SEGS_BUCKETS, ctx_op,
    segs_bucket,
};
use aya_ebpf::{
    helpers::{bpf_probe_read_user, bpf_probe_read_user_buf, generated::bpf_loop},
    macros::map,
    maps::PerCpuArray,
};

use crate::{
    filter::traced,
    iovec::{IovecSum, sum_iovecs},
    maps::{REAP_EVENTS, add, count_loss, count_losses, counters, counters_for},
    submit::{POINTER_CHUNK, chunked_iocb_pointer},
    syscall,
};

/// The part of a `struct iocb` the counters need: opcode to size, at
/// offset 16 (one 24-byte read instead of the whole 64).
#[repr(C)]
#[derive(Clone, Copy)]
struct IocbHead {
    opcode: u16,
    _reqprio: i16,
    _fildes: u32,
    buf: u64,
    nbytes: u64,
}
const IOCB_HEAD_OFFSET: u64 = 16;

/// An iocb's segments and requested bytes, and whether its iovec array
/// could not be read (its bytes then 0). More than UIO_MAXIOV segments the
/// kernel refuses without reading them: 0 bytes, not a loss.
#[inline(always)]
fn extent(head: &IocbHead) -> (u32, u64, bool) {
    match head.opcode {
        IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => {
            let segs = head.nbytes.min(u64::from(u32::MAX)) as u32;
            match sum_iovecs(head.buf, head.nbytes) {
                IovecSum::Bytes(bytes) => (segs, bytes, false),
                IovecSum::TooMany => (segs, 0, false),
                IovecSum::Unreadable => (segs, 0, true),
            }
        }
        IOCB_CMD_PREAD | IOCB_CMD_PWRITE => (1, head.nbytes, false),
        _ => (0, 0, false),
    }
}

/// One opcode's tally within a call: an application submits runs of one
/// opcode, so the counters are looked up once per run, not per iocb.
#[repr(C)]
pub struct Tally {
    opcode: u64,
    iocbs: u64,
    bytes: u64,
    segments: u64,
    segs_log2: [u64; SEGS_BUCKETS],
}

/// What the per-iocb callback needs. In a per-CPU map slot, not on the
/// exit's stack: the verifier tracks stack values exactly, and walked the
/// callback once for every value the tally could take.
#[repr(C)]
pub struct CountWalk {
    pid: u32,
    _pad: u32,
    ctx: u64,
    iocbpp: u64,
    accepted: u64,
    pointers: [u64; POINTER_CHUNK],
    pointers_read: u64,
    unreadable: u64,
    /// 1 until the call's counters are added (with its first opcode).
    call_pending: u64,
    requested: u64,
    /// 1 if io_submit accepted fewer iocbs than asked.
    short: u64,
    tally: Tally,
}

/// At io_submit's exit in the light tier: counts the call and the iocbs it
/// accepted. Arguments come from the caller's registers (the light tier
/// needs them: see the loader).
#[inline(always)]
pub fn count_submit(pid: u32, tid: u32, ret: i64) {
    if !traced(pid) {
        return;
    }
    let Some([ctx, nr, iocbpp, _]) = syscall::exit_args(tid) else {
        return;
    };
    let requested = (nr as i64).max(0) as u64;
    let accepted = if ret > 0 { ret as u64 } else { 0 };
    let short = u64::from(accepted < requested);
    if accepted == 0 {
        count_call(pid, ctx, 1, requested, short, 0);
        return;
    }
    if accepted == 1 {
        count_single(pid, ctx, iocbpp, requested, short);
        return;
    }
    let mut walked = accepted;
    if walked > MAX_IOCBS_PER_CALL as u64 {
        count_loss(LossCause::BatchTruncated);
        walked = MAX_IOCBS_PER_CALL as u64;
    }
    let Some(walk) = COUNT_WALKS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's walk slot, a map value pointer (see the crate doc's Safety) that only
    // io_submit's exit on this CPU uses, and not re-entered: syscall tracepoint programs run
    // with preemption off.
    let walk = unsafe { &mut *walk };
    walk.pid = pid;
    walk.ctx = ctx;
    walk.iocbpp = iocbpp;
    walk.accepted = walked;
    walk.pointers_read = 0;
    walk.unreadable = 0;
    walk.call_pending = 1;
    walk.requested = requested;
    walk.short = short;
    walk.tally.opcode = u64::MAX;
    walk.tally.clear();
    {
        // The callback finds the slot itself: bpf_loop passes only a stack
        // pointer (or null) through.
        // SAFETY: bpf_loop calls the extern "C" callback with a null context, which it ignores;
        // flags are 0.
        unsafe {
            bpf_loop(
                walked as u32,
                count_one as *mut c_void,
                core::ptr::null_mut(),
                0,
            )
        };
    }
    flush(walk);
    if walk.unreadable != 0 {
        count_losses(LossCause::UserRead, walk.unreadable);
    }
    // Accepted, but not counted by opcode: still the context's.
    if walk.call_pending != 0 || walk.unreadable != 0 {
        count_call(
            pid,
            ctx,
            walk.call_pending,
            walk.requested * walk.call_pending,
            walk.short * walk.call_pending,
            walk.unreadable,
        );
    }
}

/// A call that accepted one iocb (fio's, and most databases' reads): the
/// iocb and the call counted straight into its opcode's counters, without
/// the walk's tally.
#[inline(always)]
fn count_single(pid: u32, ctx: u64, iocbpp: u64, requested: u64, short: u64) {
    // SAFETY: bpf_probe_read_user tolerates any address: a fault is returned as an error.
    let head = unsafe { bpf_probe_read_user(iocbpp as *const u64) }.and_then(|iocb| {
        // SAFETY: as above.
        unsafe { bpf_probe_read_user(iocb.wrapping_add(IOCB_HEAD_OFFSET) as *const IocbHead) }
    });
    let Ok(head) = head else {
        count_loss(LossCause::UserRead);
        count_call(pid, ctx, 1, requested, short, 1);
        return;
    };
    let (segs, bytes, unsummed) = extent(&head);
    if unsummed {
        count_loss(LossCause::UserRead);
    }
    let key = CtxKey {
        pid,
        op: ctx_op(head.opcode),
        ctx,
    };
    let Some(c) = counters_for(key) else {
        return;
    };
    // SAFETY: a counters pointer from `counters_for` (see the crate doc's Safety); `add` is given
    // fields inside it.
    unsafe {
        add(&raw mut (*c).io_submit_calls, 1);
        add(&raw mut (*c).iocbs_requested, requested);
        add(&raw mut (*c).short_submits, short);
    }
    add_one(c, segs, bytes);
}

/// Adds one iocb (request, call) of `segs` segments and `bytes` bytes to
/// the counters `c` (from `counters_for`).
#[inline(always)]
fn add_one(c: *mut CtxCounters, segs: u32, bytes: u64) {
    let bucket = segs_bucket(segs);
    // SAFETY: a counters pointer from `counters_for` (see the crate doc's Safety); `add` is given
    // fields inside it, the bucket bounds-checked.
    unsafe {
        add(&raw mut (*c).iocbs_submitted, 1);
        add(&raw mut (*c).bytes, bytes);
        add(&raw mut (*c).segments, u64::from(segs));
        if bucket < SEGS_BUCKETS {
            add(&raw mut (*c).segs_log2[bucket], 1);
        }
    }
}

/// An io_submit call counted in the context's calls entry: one that
/// accepted no iocb (or none the walk could read), and iocbs accepted but
/// unreadable. The others are counted with the call's first opcode
/// (`flush`).
#[inline(always)]
fn count_call(pid: u32, ctx: u64, calls: u64, requested: u64, short: u64, iocbs: u64) {
    if let Some(c) = counters(pid, ctx) {
        // SAFETY: a counters pointer from `counters` (see the crate doc's Safety); `add` is given
        // fields inside it.
        unsafe {
            add(&raw mut (*c).io_submit_calls, calls);
            add(&raw mut (*c).iocbs_requested, requested);
            add(&raw mut (*c).short_submits, short);
            add(&raw mut (*c).iocbs_submitted, iocbs);
        }
    }
}

/// `bpf_loop` callback: count iocb number `index` of the call.
extern "C" fn count_one(index: u64, _: *mut c_void) -> i64 {
    let Some(walk) = COUNT_WALKS.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's walk slot (see `count_submit`), filled before the loop.
    count_iocb(unsafe { &mut *walk }, index);
    0
}

/// Counts iocb number `index` of the call into the walk's tally.
#[inline(always)]
fn count_iocb(walk: &mut CountWalk, index: u64) {
    let Ok(iocb) = iocb_pointer(walk, index) else {
        walk.unreadable += 1;
        return;
    };
    // SAFETY: bpf_probe_read_user tolerates any address: a fault is returned as an error, not
    // taken.
    let head =
        unsafe { bpf_probe_read_user(iocb.wrapping_add(IOCB_HEAD_OFFSET) as *const IocbHead) };
    let Ok(head) = head else {
        walk.unreadable += 1;
        return;
    };
    let (segs, bytes, unsummed) = extent(&head);
    walk.unreadable += u64::from(unsummed);
    if walk.tally.opcode != u64::from(head.opcode) {
        flush(walk);
        walk.tally.opcode = u64::from(head.opcode);
    }
    let bucket = segs_bucket(segs);
    if bucket < SEGS_BUCKETS {
        walk.tally.segs_log2[bucket] += 1;
    }
    walk.tally.iocbs += 1;
    walk.tally.bytes += bytes;
    walk.tally.segments += u64::from(segs);
}

/// The address of iocb number `index` of the call.
#[inline(always)]
fn iocb_pointer(walk: &mut CountWalk, index: u64) -> Result<u64, i64> {
    chunked_iocb_pointer(
        walk.iocbpp,
        walk.accepted,
        index,
        &mut walk.pointers,
        &mut walk.pointers_read,
    )
}

/// Adds the current run's tally to its opcode's counters and clears it.
#[inline(always)]
fn flush(walk: &mut CountWalk) {
    let t = &mut walk.tally;
    if t.iocbs == 0 {
        return;
    }
    let key = CtxKey {
        pid: walk.pid,
        op: ctx_op(t.opcode as u16),
        ctx: walk.ctx,
    };
    if let Some(c) = counters_for(key) {
        // SAFETY: a counters pointer from `counters_of` (see the crate doc's Safety); `add` is
        // given fields inside it.
        unsafe {
            add(&raw mut (*c).iocbs_submitted, t.iocbs);
            // The call itself, with its first opcode: one lookup per call.
            add(&raw mut (*c).io_submit_calls, walk.call_pending);
            add(
                &raw mut (*c).iocbs_requested,
                walk.requested * walk.call_pending,
            );
            add(&raw mut (*c).short_submits, walk.short * walk.call_pending);
            add(&raw mut (*c).bytes, t.bytes);
            add(&raw mut (*c).segments, t.segments);
            for b in 0..SEGS_BUCKETS {
                add(&raw mut (*c).segs_log2[b], t.segs_log2[b]);
            }
        }
    }
    walk.call_pending = 0;
    t.clear();
}

impl Tally {
    #[inline(always)]
    fn clear(&mut self) {
        self.iocbs = 0;
        self.bytes = 0;
        self.segments = 0;
        self.segs_log2 = [0; SEGS_BUCKETS];
    }
}

#[map]
static COUNT_WALKS: PerCpuArray<CountWalk> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
struct FailedWalk {
    events: u64,
    reaped: u64,
    failed: u64,
}

/// An io_uring request submitted outside a sampling window in the light
/// tier: counted against its ring (`ring`, the ring's address, as its
/// records have it) and opcode, one at a time (the tracepoint fires per
/// request).
#[inline(always)]
pub fn count_request(pid: u32, ring: u64, opcode: u16, segs: u32, bytes: u64) {
    let key = CtxKey {
        pid,
        op: ctx_op(opcode),
        ctx: ring,
    };
    if let Some(c) = counters_for(key) {
        add_one(c, segs, bytes);
    }
}

/// A synchronous vectored syscall at its exit in the light tier: counted by
/// opcode against the process (`CTX_SYNC`), its bytes as requested (the
/// iovec array, from the caller's registers, as AIO's are counted).
#[inline(always)]
pub fn count_sync(pid: u32, tid: u32, opcode: u16, ret: i64) {
    if !traced(pid) {
        return;
    }
    let Some([_, vec, vlen, _]) = syscall::exit_args(tid) else {
        return;
    };
    let segs = vlen.min(u64::from(u32::MAX)) as u32;
    let bytes = match sum_iovecs(vec, vlen) {
        IovecSum::Bytes(bytes) => bytes,
        IovecSum::TooMany => 0,
        IovecSum::Unreadable => {
            count_loss(LossCause::UserRead);
            0
        }
    };
    let key = CtxKey {
        pid,
        op: ctx_op(opcode),
        ctx: CTX_SYNC,
    };
    let Some(c) = counters_for(key) else {
        return;
    };
    add_one(c, segs, bytes);
    // SAFETY: as in `add_one`.
    unsafe { add(&raw mut (*c).events_failed, u64::from(ret < 0)) };
}

/// At io_getevents' exit in the light tier, outside a sampling window: how
/// many of the `reaped` io_events at `events` carry an errno. Only their
/// `res` is looked at, a chunk of the array per user read; no in-flight
/// lookup, since no iocb of the call can be in the table.
#[inline(always)]
pub fn count_failed(events: u64, reaped: u64) -> u64 {
    // One event (fio, and any reaper that takes them one at a time): its
    // `res` alone, no loop.
    if reaped == 1 {
        let res = events.wrapping_add(core::mem::offset_of!(IoEvent, res) as u64);
        // SAFETY: bpf_probe_read_user tolerates any address: a fault is returned as an error.
        return match unsafe { bpf_probe_read_user(res as *const i64) } {
            Ok(res) => u64::from(res < 0),
            Err(_) => {
                count_loss(LossCause::UserRead);
                0
            }
        };
    }
    let reaped = reaped.min(MAX_IOCBS_PER_CALL as u64);
    let mut walk = FailedWalk {
        events,
        reaped,
        failed: 0,
    };
    let chunks = reaped.div_ceil(REAP_BATCH as u64);
    // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
    // outlives the call; flags are 0.
    unsafe {
        bpf_loop(
            chunks as u32,
            count_failed_chunk as *mut c_void,
            (&raw mut walk).cast(),
            0,
        )
    };
    walk.failed
}

/// `bpf_loop` callback: count the failed events of chunk `chunk`.
extern "C" fn count_failed_chunk(chunk: u64, walk: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `FailedWalk`, live and untouched by
    // the caller until the loop returns.
    let walk = unsafe { &mut *(walk as *mut FailedWalk) };
    let Some(slot) = REAP_EVENTS.get_ptr_mut(0) else {
        return 1;
    };
    let first = chunk * REAP_BATCH as u64;
    let n = (walk.reaped.saturating_sub(first)).min(REAP_BATCH as u64) as usize;
    if n == 0 || n > REAP_BATCH {
        return 1;
    }
    // SAFETY: this CPU's io_event chunk slot, valid for REAP_BATCH events, of which `n` is a
    // prefix; only this CPU's reap programs use it, and not while this one runs.
    let dst =
        unsafe { core::slice::from_raw_parts_mut(slot.cast::<u8>(), n * size_of::<IoEvent>()) };
    let src = walk
        .events
        .wrapping_add(first * size_of::<IoEvent>() as u64) as *const u8;
    // SAFETY: bpf_probe_read_user_buf tolerates any source address (a fault is returned as an
    // error) and writes only within `dst`.
    if unsafe { bpf_probe_read_user_buf(src, dst) }.is_err() {
        count_losses(LossCause::UserRead, n as u64);
        return 0;
    }
    for i in 0..REAP_BATCH {
        if i >= n {
            break;
        }
        // SAFETY: as above; `i` < n <= REAP_BATCH.
        if unsafe { (*slot).events[i].res } < 0 {
            walk.failed += 1;
        }
    }
    0
}
