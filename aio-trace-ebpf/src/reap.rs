//! io_getevents / io_pgetevents: each returned io_event closes its iocb's
//! in-flight entry and becomes one record.

use core::ffi::c_void;

use aio_trace_common::{
    INFLIGHT_SETS, InflightKey, IoEvent, IocbRecord, LossCause, MAX_IOCBS_PER_CALL, REAP_BATCH,
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user_buf, generated::bpf_loop,
    },
    macros::tracepoint,
    programs::TracePointContext,
};

use crate::{
    filter::traced,
    light,
    maps::{
        EVENTS, INFLIGHT, REAP_BATCHES, REAP_EVENTS, ReapBatch, add, count_loss, count_losses,
        counters, inflight, order_key, reap_deep, unmatched_is_loss, wakeup_flags,
    },
    syscall, table,
};

// io_getevents and io_pgetevents share the argument layout the reader uses:
// ctx_id, min_nr, nr, events (io_pgetevents adds timeout and usig after).
// The exits read them from the caller's registers; the entry programs, which
// keep them for the exit instead, are attached only on a kernel without BTF
// (`syscall::exit_args`).

#[tracepoint]
pub fn sys_enter_io_getevents(ctx: TracePointContext) -> u32 {
    syscall::save_args::<4>(&ctx);
    0
}

#[tracepoint]
pub fn sys_enter_io_pgetevents(ctx: TracePointContext) -> u32 {
    syscall::save_args::<4>(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_io_getevents(ctx: TracePointContext) -> u32 {
    let _ = try_exit_reap(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_io_pgetevents(ctx: TracePointContext) -> u32 {
    let _ = try_exit_reap(&ctx);
    0
}

#[repr(C)]
struct ReapWalk {
    pid: u32,
    _pad: u32,
    ctx: u64,
    events: u64,
    reap_ns: u64,
    /// Events the call returned (at most `MAX_IOCBS_PER_CALL`).
    walked: u64,
}

fn try_exit_reap(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    if !traced(pid) {
        return Ok(());
    }
    let Some([aio_ctx, min_nr, nr, events]) = syscall::exit_args(pid_tgid as u32) else {
        return Ok(());
    };
    let ret = syscall::ret(ctx);
    let reaped = if ret > 0 { ret as u64 } else { 0 };
    let failed = if reaped == 0 {
        0
    } else if reap_deep() {
        reap_events(pid, aio_ctx, events, reaped)
    } else {
        light::count_failed(events, reaped)
    };
    // All of the call's counters after its events: one lookup per call.
    if let Some(c) = counters(pid, aio_ctx) {
        // SAFETY: a counters pointer from `counters` (see the crate doc's Safety); `add` is given
        // fields inside it.
        unsafe {
            add(&raw mut (*c).io_getevents_calls, 1);
            add(&raw mut (*c).min_nr_sum, (min_nr as i64).max(0) as u64);
            add(&raw mut (*c).nr_sum, (nr as i64).max(0) as u64);
            if reaped == 0 {
                add(&raw mut (*c).empty_getevents, 1);
            } else {
                add(&raw mut (*c).events_reaped, reaped);
                add(&raw mut (*c).events_failed, failed);
            }
        }
    }
    Ok(())
}

/// Matches the `reaped` io_events at `events` to their iocbs and sends
/// their records; the events that carried an errno, counted.
#[inline(always)]
fn reap_events(pid: u32, aio_ctx: u64, events: u64, reaped: u64) -> u64 {
    let mut walked = reaped;
    if walked > MAX_IOCBS_PER_CALL as u64 {
        count_loss(LossCause::BatchTruncated);
        walked = MAX_IOCBS_PER_CALL as u64;
    }
    let mut walk = ReapWalk {
        pid,
        _pad: 0,
        ctx: aio_ctx,
        events,
        // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
        reap_ns: unsafe { bpf_ktime_get_ns() },
        walked,
    };
    let Some(batch) = REAP_BATCHES.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's reap batch slot, a map value pointer (see the crate doc's Safety) that
    // only the reap programs on this CPU use.
    unsafe {
        (*batch).batched = 0;
        (*batch).chunk_read = 0;
        (*batch).failed = 0;
    }
    // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
    // outlives the call; flags are 0.
    unsafe {
        bpf_loop(
            walked as u32,
            reap_one as *mut c_void,
            (&raw mut walk).cast(),
            0,
        )
    };
    flush(batch);
    // SAFETY: as above.
    unsafe { (*batch).failed }
}

/// Sends the batched records as one ring buffer item.
#[inline(always)]
pub fn flush(batch: *mut ReapBatch) {
    // The slot is this CPU's alone while the program runs: syscall tracepoint
    // programs run with preemption off, and only these two use it.
    // SAFETY: this CPU's reap batch slot (see `reap_one`'s caller); the syscall tracepoint
    // programs run with preemption off.
    let n = unsafe { core::mem::replace(&mut (*batch).batched, 0) } as usize;
    if n == 0 || n > REAP_BATCH {
        return;
    }
    // SAFETY: as above; `n` is at most REAP_BATCH, the length of `records`.
    let records = unsafe { &(&(*batch).records)[..n] };
    if EVENTS.output::<[_]>(records, wakeup_flags()).is_err() {
        count_losses(LossCause::RingFull, n as u64);
    }
}

/// Reads the io_events from `index` on, up to a chunk, into this CPU's
/// `REAP_EVENTS` slot: one user read per chunk instead of one per event,
/// which cost ~100 ns each.
#[inline(always)]
fn read_chunk(walk: &ReapWalk, batch: *mut ReapBatch, index: u64) {
    // SAFETY: this CPU's reap batch slot, passed by `reap_one`.
    unsafe { (*batch).chunk_read = 0 };
    let Some(chunk) = REAP_EVENTS.get_ptr_mut(0) else {
        return;
    };
    let n = (walk.walked - index).min(REAP_BATCH as u64) as usize;
    if n == 0 || n > REAP_BATCH {
        return;
    }
    let bytes = n * size_of::<IoEvent>();
    // SAFETY: this CPU's io_event chunk slot, valid for REAP_BATCH events, of which `bytes` (n <=
    // REAP_BATCH) is a prefix.
    let dst = unsafe { core::slice::from_raw_parts_mut(chunk.cast::<u8>(), bytes) };
    let src = walk
        .events
        .wrapping_add(index * size_of::<IoEvent>() as u64) as *const u8;
    // SAFETY: bpf_probe_read_user_buf tolerates any source address (a fault is returned as an
    // error) and writes only within `dst`.
    if unsafe { bpf_probe_read_user_buf(src, dst) }.is_ok() {
        // SAFETY: this CPU's reap batch slot, passed by `reap_one`.
        unsafe { (*batch).chunk_read = 1 };
    } else {
        count_losses(LossCause::UserRead, n as u64);
    }
}

/// Submissions of an ordered address skipped over at most: numbers the
/// kernel refused at io_submit, or that the user half reclaimed, never come
/// back as events.
const ORDER_GAP: u64 = 4;

/// Takes the oldest submission still in flight of an ordered address (see
/// `SEQ_ORDER`) into `out`: its events carry nothing else to tell them
/// apart, so they are matched in submission order.
#[inline(always)]
fn take_oldest(order: *mut IocbRecord, mut key: InflightKey, out: *mut IocbRecord) -> bool {
    // SAFETY: a map value pointer to the order entry (see the crate doc's Safety); whole aligned
    // u64 counters.
    let (first, end) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*order).reap_ns),
            core::ptr::read_volatile(&raw const (*order).bytes),
        )
    };
    for skip in 0..ORDER_GAP {
        let seq = first + skip;
        if seq >= end {
            return false;
        }
        key.seq = seq as u32;
        if table::take_into(&INFLIGHT, INFLIGHT_SETS, &key, Some(out)) {
            // SAFETY: as above; a plain store: two reapers of one address at
            // once may both move it, each past the submission it took.
            unsafe { core::ptr::write_volatile(&raw mut (*order).reap_ns, seq + 1) };
            return true;
        }
    }
    false
}

/// `bpf_loop` callback: match io_event number `index` to its iocb.
extern "C" fn reap_one(index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `ReapWalk`, live and untouched by
    // the caller until the loop returns.
    let walk = unsafe { &*(walk as *const ReapWalk) };
    let Some(batch) = REAP_BATCHES.get_ptr_mut(0) else {
        return 0;
    };
    let at = (index % REAP_BATCH as u64) as usize;
    if at == 0 {
        read_chunk(walk, batch, index);
    }
    // SAFETY: this CPU's reap batch slot, a map value pointer (see the crate doc's Safety).
    if unsafe { (*batch).chunk_read } == 0 {
        return 0;
    }
    let Some(chunk) = REAP_EVENTS.get_ptr(0) else {
        return 0;
    };
    // SAFETY: this CPU's io_event chunk slot; `at` < REAP_BATCH (the index within the chunk).
    let event = unsafe { &(*chunk).events[at] };
    if event.res < 0 {
        // SAFETY: this CPU's reap batch slot, a map value pointer (see the crate doc's Safety).
        unsafe { (*batch).failed += 1 };
    }
    let key = InflightKey {
        pid: walk.pid,
        seq: 0,
        ctx: walk.ctx,
        iocb: event.obj,
    };
    // `flush` below keeps the batch from filling.
    // SAFETY: this CPU's reap batch slot, a map value pointer (see the crate doc's Safety).
    let at = unsafe { (*batch).batched } as usize;
    if at >= REAP_BATCH {
        return 0;
    }
    // SAFETY: as above, and `at` < REAP_BATCH was checked just before.
    let out = unsafe { &raw mut (*batch).records[at] };
    // Straight into the batch: the record is too large to copy via the stack.
    let taken = match inflight(&order_key(&key)) {
        Some(order) => take_oldest(order, key, out),
        None => table::take_into(&INFLIGHT, INFLIGHT_SETS, &key, Some(out)),
    };
    if !taken {
        // Sampling leaves most iocbs out of the table: not a loss then.
        if unmatched_is_loss() {
            count_loss(unmatched_cause(walk.reap_ns));
        }
        return 0;
    }
    // SAFETY: `out` points into this CPU's reap batch slot, in bounds (see above).
    unsafe {
        (*out).res = event.res;
        (*out).reap_ns = walk.reap_ns;
    }
    // SAFETY: this CPU's reap batch slot, a map value pointer (see the crate doc's Safety).
    unsafe { (*batch).batched += 1 };
    if at + 1 >= REAP_BATCH {
        flush(batch);
    }
    0
}

/// Until when (monotonic ns) an io_event of an iocb never seen submitted is
/// one the application had in flight when the trace began — submitted before
/// the programs were attached — rather than a miss. Set by the loader before
/// load: its load time plus the in-flight timeout, past which such an iocb
/// would have aged out anyway.
#[unsafe(no_mangle)]
static MIDFLIGHT_UNTIL_NS: u64 = 0;

#[inline(always)]
pub fn unmatched_cause(reap_ns: u64) -> LossCause {
    // SAFETY: a plain read of a read-only global the loader set before load.
    if reap_ns < unsafe { core::ptr::read_volatile(&MIDFLIGHT_UNTIL_NS) } {
        LossCause::InflightAtStart
    } else {
        LossCause::Unmatched
    }
}
