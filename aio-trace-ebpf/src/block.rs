//! Block layer: each bio is counted against the iocb (or vectored syscall)
//! that caused it, and requests are timed per device.

use core::ffi::c_void;

use aio_trace_common::{D2C_BUCKETS, InflightKey, LossCause, Owner};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, generated::bpf_loop},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};

use crate::{
    claim::{Match, claim_iocb, holds},
    kernel::{
        bio_bytes, bio_disk, bio_next, bio_sector, bio_status, dio_bio_kiocb, request_bio,
        request_disk, split_parent,
    },
    maps::{
        BIO_OWNER, BIO_SETS, CURRENT_BY_DISPATCH, CURRENT_BY_SECTOR, RQ_ISSUE, RQ_SETS, SUBMITS,
        SYNC_CALLS, SubmitState, THREAD_SETS, URING_ISSUE, active_slot, aio_owner, count_loss,
        dev_stats, inflight, owner_record, syscall_owner,
    },
    reread::reread,
    table::{self, WhenFull},
};

// Raw tracepoint arguments (TP_PROTO): block_bio_* (struct bio *), except
// block_bio_complete (struct request_queue *, struct bio *),
// block_split (struct bio *, unsigned int new_sector), block_rq_issue
// (struct request *), block_rq_complete (struct request *, blk_status_t,
// unsigned int nr_bytes).

/// The most bios one request completion walks (each a table lookup). A
/// request's bios are about as many as its segments at most, which the
/// queue caps (`max_segments`: 254 for this VM's virtio disk, 127 for
/// NVMe); the walk stops at the request's last bio, so the bound costs
/// nothing until a request is that large. A bio past it keeps its owner
/// entry until the next bio queued at its address or a full set removes it.
const MAX_BIOS_PER_REQUEST: u32 = 4096;

/// The bio a `block_bio_*` or `block_split` raw tracepoint is about.
fn bio_arg(ctx: &RawTracePointContext) -> u64 {
    ctx.arg(0)
}

#[raw_tracepoint(tracepoint = "block_bio_queue")]
pub fn block_bio_queue(ctx: RawTracePointContext) -> i32 {
    let _ = try_bio_queue(&ctx);
    0
}

fn try_bio_queue(ctx: &RawTracePointContext) -> Result<(), i64> {
    let bio_ptr = bio_arg(ctx);
    if let Some(stats) = dev_stats(bio_disk(bio_ptr)?) {
        // SAFETY: this CPU's copy of a per-CPU map value (see the crate doc's Safety): only a
        // program nested on this CPU could touch it meanwhile, and at worst loses a count.
        unsafe { (*stats).bios += 1 };
    }
    let Some(owner) = queuing_owner(bio_ptr) else {
        // Not ours. An entry at this address is stale (its bio ended unseen,
        // e.g. past the walk's bound): it must not give this bio's
        // completion to an iocb.
        let _ = table::take_into(&BIO_OWNER, BIO_SETS, &bio_ptr, None);
        return Ok(());
    };
    if let Some(record) = owner_record(&owner) {
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        let r = unsafe { &mut *record };
        r.bios += 1;
        if r.first_bio_ts == 0 {
            // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
            r.first_bio_ts = unsafe { bpf_ktime_get_ns() };
        }
    }
    let _ = table::put(&BIO_OWNER, BIO_SETS, &bio_ptr, &owner, WhenFull::Evict);
    Ok(())
}

/// Who the current thread queues `bio` for: the iocb it belongs to inside
/// io_submit, the call inside a vectored syscall; None outside both
/// (writeback, journal, readahead…) or when no iocb matches.
#[inline(always)]
fn queuing_owner(bio: u64) -> Option<Owner> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    // io_submit first, as at dispatch: a thread is in at most one of the two.
    if let Some(state) = active_slot(&SUBMITS, tid) {
        // SAFETY: the thread's io_submit state, a map value pointer (see the crate doc's Safety)
        // that only this thread's programs use.
        let key = current_iocb(unsafe { &mut *state }, (pid_tgid >> 32) as u32, bio);
        if key.is_none() {
            count_loss(LossCause::UnattributedBio);
        }
        return key.map(aio_owner);
    }
    if active_slot(&SYNC_CALLS, tid).is_some() {
        return Some(syscall_owner(tid));
    }
    uring_owner(tid, bio)
}

/// The io_uring request a bio belongs to: the one whose direct I/O the
/// thread dispatched last, if the bio's dio works for the same kiocb.
#[inline(always)]
fn uring_owner(tid: u32, bio: u64) -> Option<Owner> {
    let issue = table::get(&URING_ISSUE, THREAD_SETS, &u64::from(tid))?;
    (dio_bio_kiocb(bio).ok()? == issue.kiocb).then(|| aio_owner(issue.key))
}

/// The iocb a bio queued inside io_submit belongs to: the one the filesystem
/// dispatched last, or, on a raw block device (no dispatch event), the iocb
/// whose byte range holds the bio's first sector.
fn current_iocb(state: &mut SubmitState, pid: u32, bio: u64) -> Option<InflightKey> {
    if state.current_by == CURRENT_BY_DISPATCH {
        return Some(state.current);
    }
    let sector = bio_sector(bio).ok()?;
    if state.current_by == CURRENT_BY_SECTOR
        && let Some(record) = inflight(&state.current)
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        && unsafe { holds((*record).offset, (*record).bytes, sector) }
    {
        return Some(state.current);
    }
    // A raw device has no dispatch: its first bio of an iocb is past the
    // kernel's reads of it and of every iocb before it.
    reread(state, u64::MAX);
    claim_iocb(state, pid, Match::Sector { sector })
}

/// Who caused the bio at `bio`, if it was attributed.
fn bio_owner(bio: u64) -> Option<Owner> {
    table::get(&BIO_OWNER, BIO_SETS, &bio)
}

#[raw_tracepoint(tracepoint = "block_split")]
pub fn block_split(ctx: RawTracePointContext) -> i32 {
    let _ = try_split(&ctx);
    0
}

/// The bio handed over is the new front piece; the bio it was cut from goes
/// on as the remainder, keeping its address and its owner.
fn try_split(ctx: &RawTracePointContext) -> Result<(), i64> {
    let split = bio_arg(ctx);
    if let Some(stats) = dev_stats(bio_disk(split)?) {
        // SAFETY: this CPU's copy of a per-CPU map value (see the crate doc's Safety): only a
        // program nested on this CPU could touch it meanwhile, and at worst loses a count.
        unsafe { (*stats).splits += 1 };
    }
    let Some(owner) = bio_owner(split_parent(split)?) else {
        return Ok(());
    };
    if let Some(record) = owner_record(&owner) {
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        unsafe { (*record).splits += 1 };
    }
    let _ = table::put(&BIO_OWNER, BIO_SETS, &split, &owner, WhenFull::Evict);
    Ok(())
}

#[raw_tracepoint(tracepoint = "block_bio_backmerge")]
pub fn block_bio_backmerge(ctx: RawTracePointContext) -> i32 {
    let _ = try_merge(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "block_bio_frontmerge")]
pub fn block_bio_frontmerge(ctx: RawTracePointContext) -> i32 {
    let _ = try_merge(&ctx);
    0
}

fn try_merge(ctx: &RawTracePointContext) -> Result<(), i64> {
    let bio = bio_arg(ctx);
    if let Some(stats) = dev_stats(bio_disk(bio)?) {
        // SAFETY: this CPU's copy of a per-CPU map value (see the crate doc's Safety): only a
        // program nested on this CPU could touch it meanwhile, and at worst loses a count.
        unsafe { (*stats).merges += 1 };
    }
    if let Some(owner) = bio_owner(bio)
        && let Some(record) = owner_record(&owner)
    {
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        unsafe { (*record).merges += 1 };
    }
    Ok(())
}

#[raw_tracepoint(tracepoint = "block_rq_issue")]
pub fn block_rq_issue(ctx: RawTracePointContext) -> i32 {
    let rq: u64 = ctx.arg(0);
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let _ = table::put(&RQ_ISSUE, RQ_SETS, &rq, &now, WhenFull::Evict);
    0
}

#[raw_tracepoint(tracepoint = "block_rq_complete")]
pub fn block_rq_complete(ctx: RawTracePointContext) -> i32 {
    let _ = try_rq_complete(&ctx);
    0
}

fn try_rq_complete(ctx: &RawTracePointContext) -> Result<(), i64> {
    let rq_ptr: u64 = ctx.arg(0);
    let disk = request_disk(rq_ptr)?;
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // A partial completion takes the issue time: the rest is timed by nothing.
    let issued = table::take(&RQ_ISSUE, RQ_SETS, &rq_ptr).unwrap_or(0);
    if issued != 0
        && let Some(stats) = dev_stats(disk)
    {
        let d2c = now.saturating_sub(issued);
        // SAFETY: this CPU's copy of a per-CPU map value (see the crate doc's Safety): only a
        // program nested on this CPU could touch it meanwhile, and at worst loses a count.
        let stats = unsafe { &mut *stats };
        stats.requests += 1;
        stats.d2c_ns_sum += d2c;
        let bucket = (63 - (d2c | 1).leading_zeros()) as usize;
        if bucket < D2C_BUCKETS {
            stats.d2c_log2[bucket] += 1;
        }
    }
    // The bios this completion ends, from the request's first: whole bios
    // while the completed bytes last (a partial completion ends the rest later).
    let mut walk = RequestWalk {
        bio: request_bio(rq_ptr)?,
        bytes: u64::from(ctx.arg::<u32>(2)),
        now,
    };
    // Most requests carry one bio: only merged ones pay for the loop.
    if complete_bio(0, (&raw mut walk).cast()) == 0 && walk.bio != 0 {
        // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
        // outlives the call; flags are 0.
        unsafe {
            bpf_loop(
                MAX_BIOS_PER_REQUEST - 1,
                complete_bio as *mut c_void,
                (&raw mut walk).cast(),
                0,
            )
        };
    }
    Ok(())
}

#[repr(C)]
struct RequestWalk {
    /// The next bio of the request, 0 after the last.
    bio: u64,
    /// Completed bytes not yet matched to a bio.
    bytes: u64,
    now: u64,
}

/// `bpf_loop` callback: the bio at `walk.bio` completed with its request.
extern "C" fn complete_bio(_index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: `try_rq_complete` passes a pointer to its `RequestWalk`, directly or through
    // bpf_loop; the local is live, and untouched by it, until the call returns.
    let walk = unsafe { &mut *(walk as *mut RequestWalk) };
    if walk.bio == 0 {
        return 1;
    }
    let Ok(size) = bio_bytes(walk.bio) else {
        return 1;
    };
    let size = u64::from(size);
    if size > walk.bytes {
        return 1;
    }
    walk.bytes -= size;
    // Another task's bio (or one queued before we attached) has no owner.
    if let Some(owner) = table::take(&BIO_OWNER, BIO_SETS, &walk.bio)
        && let Some(record) = owner_record(&owner)
    {
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        let r = unsafe { &mut *record };
        if walk.now > r.last_rq_ts {
            r.last_rq_ts = walk.now;
        }
    }
    match bio_next(walk.bio) {
        Ok(next) => {
            walk.bio = next;
            0
        }
        Err(_) => 1,
    }
}

#[raw_tracepoint(tracepoint = "block_bio_complete")]
pub fn block_bio_complete(ctx: RawTracePointContext) -> i32 {
    let _ = try_bio_complete(&ctx);
    0
}

/// A bio that ends without a request: on a bio-based device (zram, dm, md),
/// or failed before it reached one. (A request's bios are ended by
/// `block_rq_complete`; the block layer clears their trace flag first, so
/// this does not fire for them.) On a bio-based device the bio's end is the
/// device's, so it stands in for the request completion.
fn try_bio_complete(ctx: &RawTracePointContext) -> Result<(), i64> {
    let bio: u64 = ctx.arg(1);
    // A failed bio (e.g. -EAGAIN for RWF_NOWAIT without a free tag) never
    // reached a device: its entry goes, but it gives no device time.
    if let Some(owner) = table::take(&BIO_OWNER, BIO_SETS, &bio)
        && bio_status(bio)? == 0
        && let Some(record) = owner_record(&owner)
    {
        // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other
        // CPUs may update other fields of it, plain integers, at the same time.
        let r = unsafe { &mut *record };
        if now > r.last_rq_ts {
            r.last_rq_ts = now;
        }
    }
    Ok(())
}
