//! Every map of the kernel half. All are bounded; the loader may resize the
//! ring buffer before load.

use aio_trace_common::{
    CGROUP_FILTER_ENTRIES, COUNTER_ENTRIES, CTX_OP_CALLS, CounterSlot, CtxCounters, CtxKey,
    DEFAULT_RING_BYTES, DEV_STATS_ENTRIES, DevCounters, INFLIGHT_ENTRIES, INFLIGHT_SETS,
    InflightKey, IoEvent, IocbRecord, Iovec, LOSS_CAUSES, LossCause, OWNER_AIO, OWNER_SYSCALL,
    Owner, PID_FILTER_SETS, REAP_BATCH, SEGS_BUCKETS, SEQ_ORDER, SLOT_CALLS, SLOT_OPS, TABLE_WAYS,
    TIER_DEEP, TIER_LIGHT, TIER_SETTLING, TIER_WINDOW, UIO_MAXIOV,
};
use aya_ebpf::{
    bindings::{
        BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_NOEXIST, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP,
        BPF_RB_NO_WAKEUP,
    },
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};

use crate::{
    kernel::{disk_devt, disk_seq},
    table::{self, PerCpuTable, Table, WhenFull},
};

/// Finished records (`IocbRecord`, `CtxRecord`) for the user half.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// Iocbs submitted and not yet reaped, with everything known at submit time.
/// Mmapped by the user half, which reclaims entries of dead processes,
/// destroyed contexts and iocbs reaped from the ring (see `table`).
#[map]
pub static INFLIGHT: Table<InflightKey, IocbRecord> =
    Table::with_max_entries(INFLIGHT_ENTRIES, BPF_F_MMAPABLE);

/// Per (process, context) syscall counters, and per (process, context,
/// opcode) iocb counters in the light tier. Per-CPU: threads of one process
/// on different CPUs add without atomics or shared cache lines; the user half
/// sums the CPUs. Not preallocated: a CPU's copy costs memory only once
/// created, so the bound is entries in use × CPUs × 200 bytes, not the
/// whole table × CPUs. The user half removes a context's entries once it
/// has its last counts (io_destroy, process exit); a full table refuses
/// (`LossCause::CounterTableFull`).
#[map]
pub static COUNTERS: PerCpuHashMap<CtxKey, CtxCounters> =
    PerCpuHashMap::with_max_entries(COUNTER_ENTRIES, BPF_F_NO_PREALLOC);

/// Loss counters, indexed by `LossCause`.
#[map]
pub static LOSS: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOSS_CAUSES, 0);

/// Processes that submitted iocbs: their exit is reported so the user half
/// reclaims their in-flight entries at once. LRU: bounded without bookkeeping.
#[map]
pub static AIO_PIDS: LruHashMap<u32, u8> = LruHashMap::with_max_entries(16_384, 0);

/// When io_setup last handed out, or io_destroy gave back, each (process,
/// context id): the kernel reuses a destroyed context's id (see
/// `submit::born`). Read only when an iocb address is submitted again while
/// an earlier submission of it is in the table, or when an in-flight set is
/// full. LRU: bounded without bookkeeping.
#[map]
pub static CTX_BORN: LruHashMap<CtxKey, u64> = LruHashMap::with_max_entries(16_384, 0);

/// Pids to trace when `FILTER_PIDS` is set, written by the loader. A table,
/// not a hash: every syscall and dispatch program of every process checks
/// it, so filtering on one process made everybody else's I/O pay a hash
/// lookup (~45 ns) per program.
#[map]
pub static PID_FILTER: Table<u64, u64> = Table::with_max_entries(PID_FILTER_SETS * TABLE_WAYS, 0);

/// Cgroup v2 ids to trace when `FILTER_CGROUP_LEVELS` is set, written by the
/// loader. Looked up only when that filter is on, so a hash costs nobody else.
#[map]
pub static CGROUP_FILTER: HashMap<u64, u8> = HashMap::with_max_entries(CGROUP_FILTER_ENTRIES, 0);

/// What a thread's io_submit entry saw, for its exit and for attributing the
/// dispatches and bios the kernel issues while the call runs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SubmitState {
    pub ctx: u64,
    pub iocbpp: u64,
    /// io_submit's `nr` (0 if negative), for the counters at exit.
    pub requested: u64,
    /// Iocbs walked at entry (`nr` capped at `MAX_IOCBS_PER_CALL`).
    pub walked: u64,
    /// The kernel handles iocbs in order: the next one a dispatch can belong to.
    pub cursor: u64,
    /// The iocb being dispatched, and how it was found (`CURRENT_*`).
    pub current: InflightKey,
    pub current_by: u64,
    /// When the entry ran: the submit time of iocbs decoded later.
    pub submit_ns: u64,
    /// Bit i: iocb i (of the first 64) could not be read from user memory
    /// at entry, so it is not in the in-flight table yet. Read again after
    /// the kernel has (`reread`); the exit tells a loss (the kernel read it)
    /// from a refusal (the kernel could not either: `-EFAULT`).
    pub unreadable: u64,
    /// Bit i: iocb i is in the in-flight table, but its iovec array could
    /// not be read at entry (`IOCB_BYTES_UNKNOWN`); read again likewise.
    pub unsummed: u64,
}

/// `SubmitState::current_by`.
pub const CURRENT_NONE: u64 = 0;
/// By its filesystem dispatch (iomap): every bio until the next dispatch is its.
pub const CURRENT_BY_DISPATCH: u64 = 1;
/// By a bio's sector (raw block device, no filesystem dispatch).
pub const CURRENT_BY_SECTOR: u64 = 2;

/// Syscall state keyed by thread id, entry → exit, removed at exit: the
/// tables hold only threads inside the call. Tables, not hash maps: the
/// io_submit state is looked up again by every dispatch and bio the call
/// causes. A full set evicts (a thread that died inside the call never
/// reaches its exit).
#[map]
pub static SUBMITS: Table<u64, SubmitState> = Table::with_max_entries(THREAD_SETS * TABLE_WAYS, 0);
pub const THREAD_SETS: u32 = 4096;

/// Saved args: io_getevents', io_setup's and io_destroy's arguments, entry
/// → exit, when the exit cannot read them from the caller's registers (a
/// kernel without BTF; see `syscall::save_args` and `syscall::exit_args`).
#[map]
pub static SAVED_ARGS: Table<u64, [u64; 4]> = Table::with_max_entries(THREAD_SETS * TABLE_WAYS, 0);

/// Keeps the thread's state for its syscall; false if another writer held
/// the entry.
#[inline(always)]
pub fn open_slot<T: Copy + 'static>(map: &Table<u64, T>, tid: u32, state: &T) -> bool {
    table::put(map, THREAD_SETS, &u64::from(tid), state, WhenFull::Evict)
}

/// The thread's state while its syscall runs.
#[inline(always)]
pub fn active_slot<T: 'static>(map: &Table<u64, T>, tid: u32) -> Option<*mut T> {
    table::get_ptr(map, THREAD_SETS, &u64::from(tid))
}

/// At the syscall's exit: its state, removed.
#[inline(always)]
pub fn close_slot<T: Copy + 'static>(map: &Table<u64, T>, tid: u32) -> Option<T> {
    table::take(map, THREAD_SETS, &u64::from(tid))
}

/// Synchronous vectored syscalls in progress, by thread (see `SUBMITS`):
/// every dispatch and bio of a thread not in io_submit looks here.
#[map]
pub static SYNC_CALLS: Table<u64, IocbRecord> =
    Table::with_max_entries(THREAD_SETS * TABLE_WAYS, 0);

/// Direct I/Os dispatched and not completed, by `struct kiocb` address: who
/// caused them. In-flight kiocbs are at most a few thousand.
#[map]
pub static DIO_OWNER: Table<u64, Owner> = Table::with_max_entries(DIO_SETS * TABLE_WAYS, 0);
pub const DIO_SETS: u32 = 4096;

/// Bios queued and not completed, by `struct bio` address: who caused them,
/// for merges, splits and request completion. Keyed by address, not sector:
/// the block layer recycles a few hot bios, so their sets stay in cache,
/// where random sectors touched a cold set of this 3 MB table per bio
/// (block_bio_queue 480 → 330 ns when the table was shrunk to fit in cache).
#[map]
pub static BIO_OWNER: Table<u64, Owner> = Table::with_max_entries(BIO_SETS * TABLE_WAYS, 0);
pub const BIO_SETS: u32 = 16_384;

/// Request issue times by `struct request` address, for D2C latency.
/// Requests are preallocated per hardware queue tag and reused, so the keys
/// are few.
#[map]
pub static RQ_ISSUE: Table<u64, u64> = Table::with_max_entries(RQ_SETS * TABLE_WAYS, 0);
pub const RQ_SETS: u32 = 4096;

/// Per block device counters (all devices, whatever the filters), a table
/// per CPU keyed by the disk's sequence number (`gendisk.diskseq`). Every bio and request of the machine looks its
/// device up here, so a table, not a per-CPU hash (~45 ns a lookup).
#[map]
pub static DEV_STATS: PerCpuTable<u64, DevCounters> =
    PerCpuTable::with_max_entries(DEV_STATS_ENTRIES, 0);
const DEV_SETS: u32 = DEV_STATS_ENTRIES / TABLE_WAYS;

/// The in-flight record of `key`, to read or update in place.
#[inline(always)]
pub fn inflight(key: &InflightKey) -> Option<*mut IocbRecord> {
    table::get_ptr(&INFLIGHT, INFLIGHT_SETS, key)
}

/// The in-flight iocb or request of `key` becomes a record now: taken from
/// the table straight into the ring buffer, so that whoever removes it (this,
/// an io_getevents, the user half's sweep) is the one who reports it.
#[inline(always)]
pub fn deliver(key: &InflightKey) {
    match EVENTS.reserve::<IocbRecord>(0) {
        Some(mut slot) => {
            if table::take_into(&INFLIGHT, INFLIGHT_SETS, key, Some(slot.as_mut_ptr())) {
                slot.submit(wakeup_flags());
            } else {
                // The user half's sweep took it first, and delivers it.
                slot.discard(0);
            }
        }
        None => {
            if table::take_into(&INFLIGHT, INFLIGHT_SETS, key, None) {
                count_loss(LossCause::RingFull);
            }
        }
    }
}

/// The order entry of `key`'s address (see `SEQ_ORDER`).
#[inline(always)]
pub fn order_key(key: &InflightKey) -> InflightKey {
    InflightKey {
        seq: SEQ_ORDER,
        ..*key
    }
}

/// The key of the latest submission of the iocb at `iocb`: seq 0, unless
/// the address has an order entry, then the number its latest submission
/// took. What dispatches, bios and io_submit's exit attribute to: they run
/// in the submitting thread, right after that submission.
#[inline(always)]
pub fn submitted_key(pid: u32, ctx: u64, iocb: u64) -> InflightKey {
    let mut key = InflightKey {
        pid,
        seq: 0,
        ctx,
        iocb,
    };
    if let Some(order) = inflight(&order_key(&key)) {
        // SAFETY: a map value pointer to an order entry (see the crate doc's Safety); its counters
        // are whole aligned u64s.
        key.seq =
            unsafe { core::ptr::read_volatile(&raw const (*order).bytes) }.wrapping_sub(1) as u32;
    }
    key
}

/// The record an owner points at, if it is still in flight.
#[inline(always)]
pub fn owner_record(owner: &Owner) -> Option<*mut IocbRecord> {
    match owner.kind {
        OWNER_AIO => inflight(&owner.iocb),
        OWNER_SYSCALL => active_slot(&SYNC_CALLS, owner.tid),
        _ => None,
    }
}

pub fn aio_owner(iocb: InflightKey) -> Owner {
    Owner {
        kind: OWNER_AIO,
        _pad: [0; 3],
        tid: 0,
        iocb,
    }
}

pub fn syscall_owner(tid: u32) -> Owner {
    Owner {
        kind: OWNER_SYSCALL,
        _pad: [0; 3],
        tid,
        iocb: InflightKey::default(),
    }
}

// Zeroed templates for creating counters, in global data: a 360-byte
// `default()` on the 512-byte stack left too little for the rest of a program.
// SAFETY: DevCounters is integers only: all zeros is a valid value.
static ZERO_DEV_COUNTERS: DevCounters = unsafe { core::mem::zeroed() };
// SAFETY: CtxCounters is integers only: all zeros is a valid value.
static ZERO_CTX_COUNTERS: CtxCounters = unsafe { core::mem::zeroed() };

/// This CPU's counters of the device `disk` (a `struct gendisk`), created on
/// first use (none for a bio without a disk). Keyed by the disk's sequence
/// number, which no later disk reuses (its address and `dev_t` may be); the
/// `dev_t` takes two more reads and is read once, when the entry is made.
#[inline(always)]
pub fn dev_stats(disk: u64) -> Option<*mut DevCounters> {
    if disk == 0 {
        return None;
    }
    let seq = disk_seq(disk).ok()?;
    if let Some(c) = table::get_ptr(&DEV_STATS, DEV_SETS, &seq) {
        return Some(c);
    }
    let dev = disk_devt(disk).ok()?;
    // A full set (4 devices of the 256 already in it) refuses: the device
    // goes uncounted, and says so, rather than taking another's counts.
    if !table::put(
        &DEV_STATS,
        DEV_SETS,
        &seq,
        &ZERO_DEV_COUNTERS,
        WhenFull::Refuse,
    ) {
        count_loss(LossCause::DeviceTableFull);
        return None;
    }
    let c = table::get_ptr(&DEV_STATS, DEV_SETS, &seq)?;
    // SAFETY: `c` is this CPU's copy of the device's counters, just found by `table::get_ptr` (see
    // the crate doc's Safety).
    unsafe { (*c).dev = dev };
    Some(c)
}

/// Scratch space for one iovec array: too large for the 512-byte stack.
#[repr(C)]
pub struct IovecScratch {
    pub iov: [Iovec; UIO_MAXIOV as usize],
}
#[map]
pub static IOV_SCRATCH: PerCpuArray<IovecScratch> = PerCpuArray::with_max_entries(1, 0);

/// The records one io_getevents call reaped, gathered for one ring buffer
/// write per `REAP_BATCH` (a reserve and submit per record cost ~40 % of the
/// reap path while the reader was draining on the other CPU).
#[repr(C)]
pub struct ReapBatch {
    /// Records gathered so far. Here rather than on the program's stack: the
    /// verifier tracks stack values exactly and walked the `bpf_loop`
    /// callback once per count (~190 ms to load).
    pub batched: u64,
    /// Whether this CPU's `REAP_EVENTS` slot holds the current chunk.
    pub chunk_read: u64,
    /// Events of the call with a negative `res` (`CtxCounters::events_failed`).
    pub failed: u64,
    pub records: [IocbRecord; REAP_BATCH],
}
#[map]
pub static REAP_BATCHES: PerCpuArray<ReapBatch> = PerCpuArray::with_max_entries(1, 0);

/// The io_events one io_getevents call returned, read a chunk at a time.
#[repr(C)]
pub struct ReapEvents {
    pub events: [IoEvent; REAP_BATCH],
}
#[map]
pub static REAP_EVENTS: PerCpuArray<ReapEvents> = PerCpuArray::with_max_entries(1, 0);

/// Pending bytes in the ring buffer past which a record wakes the reader
/// (set by the loader). Below it records are submitted without a wake-up — a
/// wake-up per record costs more than the record itself — and the reader
/// drains on a short timer.
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 0;

/// The submit flags for a record: wake the reader only once enough is pending.
#[inline(always)]
pub fn wakeup_flags() -> u64 {
    // SAFETY: a static, so valid and aligned; volatile only so the loader's value is not folded
    // away.
    let threshold = unsafe { core::ptr::read_volatile(&WAKEUP_BYTES) };
    if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
pub fn count_loss(cause: LossCause) {
    count_losses(cause, 1);
}

#[inline(always)]
pub fn count_losses(cause: LossCause, n: u64) {
    if let Some(slot) = LOSS.get_ptr_mut(cause as u32) {
        // SAFETY: this CPU's slot of a per-CPU array (see the crate doc's
        // Safety): no other CPU writes it, and a tracepoint program is not
        // preempted by itself on the same CPU.
        unsafe { *slot += n };
    }
}

/// The call counters of (pid, ctx) to add to (see `counters_for`).
#[inline(always)]
pub fn counters(pid: u32, ctx: u64) -> Option<*mut CtxCounters> {
    counters_for(CtxKey {
        pid,
        op: CTX_OP_CALLS,
        ctx,
    })
}

/// The counters of `key` to add to: its table entry in the full tier, this
/// CPU's slot in the light tier, where one table lookup (~80 ns here) per
/// call was the largest part of its cost. None only if the table is full.
#[inline(always)]
pub fn counters_for(key: CtxKey) -> Option<*mut CtxCounters> {
    if full_mode() {
        counters_of(key)
    } else {
        slot_counters(key)
    }
}

/// Each CPU's counts not yet in `COUNTERS`, one slot for calls entries and
/// one for opcode entries (see `CounterSlot`). Only task-context programs
/// (syscall tracepoints, io_uring submission) use them, and one program
/// cannot interrupt another on a CPU there.
#[map]
pub static COUNTER_SLOTS: PerCpuArray<CounterSlot> =
    PerCpuArray::with_max_entries(aio_trace_common::COUNTER_SLOTS, 0);

/// This CPU's slot's counts of `key`: the slot's earlier key's counts are
/// added to the table first, and `key`'s table entry made, so that its
/// process's exit is reported (`counters_of`).
#[inline(always)]
fn slot_counters(key: CtxKey) -> Option<*mut CtxCounters> {
    let index = if key.op == CTX_OP_CALLS {
        SLOT_CALLS
    } else {
        SLOT_OPS
    };
    let slot = COUNTER_SLOTS.get_ptr_mut(index)?;
    // SAFETY: this CPU's slot, a map value pointer (see the crate doc's Safety); only
    // task-context programs use it, which do not interrupt one another on a CPU.
    unsafe {
        if (*slot).key == key {
            return Some(&raw mut (*slot).pending);
        }
        move_slot(slot, key)
    }
}

/// Adds the slot's counts to its key's table entry and gives the slot to
/// `key`. Not inlined: once per change of key, not per call.
#[inline(never)]
fn move_slot(slot: *mut CounterSlot, key: CtxKey) -> Option<*mut CtxCounters> {
    // SAFETY: as in `slot_counters`; `seq` is odd while the slot is moved, for the user half.
    unsafe {
        core::ptr::write_volatile(&raw mut (*slot).seq, (*slot).seq + 1);
        let old = (*slot).key;
        if old.pid != 0
            && let Some(c) = counters_of(old)
        {
            add_all(c, &raw const (*slot).pending);
        }
        let made = counters_of(key).is_some();
        (*slot).pending = ZERO_CTX_COUNTERS;
        (*slot).key = key;
        core::ptr::write_volatile(&raw mut (*slot).seq, (*slot).seq + 1);
        made.then_some(&raw mut (*slot).pending)
    }
}

/// Adds every counter of `from` to `to`.
#[inline(always)]
fn add_all(to: *mut CtxCounters, from: *const CtxCounters) {
    // SAFETY: `to` is a counters pointer from `counters_of`, `from` a slot's pending counts
    // (see the crate doc's Safety); both plain integers.
    unsafe {
        let (to, from) = (&mut *to, &*from);
        to.io_submit_calls = to.io_submit_calls.wrapping_add(from.io_submit_calls);
        to.iocbs_requested = to.iocbs_requested.wrapping_add(from.iocbs_requested);
        to.iocbs_submitted = to.iocbs_submitted.wrapping_add(from.iocbs_submitted);
        to.short_submits = to.short_submits.wrapping_add(from.short_submits);
        to.io_getevents_calls = to.io_getevents_calls.wrapping_add(from.io_getevents_calls);
        to.empty_getevents = to.empty_getevents.wrapping_add(from.empty_getevents);
        to.events_reaped = to.events_reaped.wrapping_add(from.events_reaped);
        to.min_nr_sum = to.min_nr_sum.wrapping_add(from.min_nr_sum);
        to.nr_sum = to.nr_sum.wrapping_add(from.nr_sum);
        to.io_cancel_calls = to.io_cancel_calls.wrapping_add(from.io_cancel_calls);
        to.events_failed = to.events_failed.wrapping_add(from.events_failed);
        to.bytes = to.bytes.wrapping_add(from.bytes);
        to.segments = to.segments.wrapping_add(from.segments);
        for b in 0..SEGS_BUCKETS {
            to.segs_log2[b] = to.segs_log2[b].wrapping_add(from.segs_log2[b]);
        }
    }
}

/// The counters of `key`, created on first use (see `counters`).
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "aya-ebpf's map methods take `impl Borrow<K>`: borrows pass keys and the zero template in place instead of copying them onto the 512-byte stack"
)]
pub fn counters_of(key: CtxKey) -> Option<*mut CtxCounters> {
    let pid = key.pid;
    if let Some(c) = COUNTERS.get_ptr_mut(&key) {
        return Some(c);
    }
    // Another CPU may race us to create it: NOEXIST keeps the first.
    // Creating a per-CPU entry zeroes every CPU's copy.
    let _ = COUNTERS.insert(&key, &ZERO_CTX_COUNTERS, BPF_NOEXIST as u64);
    // A process's first AIO call in a context: from now on its exit matters.
    // Registered here, once per context, rather than on every io_submit.
    let _ = AIO_PIDS.insert(&pid, &1, 0);
    let c = COUNTERS.get_ptr_mut(&key);
    if c.is_none() {
        count_loss(LossCause::CounterTableFull);
    }
    c
}

/// The tier the user half runs the kernel half in (`TIER_*` bits), written
/// by it while tracing: `top` switches tier live, and the light tier's
/// sampling windows come and go. An array of one: the verifier turns the
/// lookup into a load.
#[map]
pub static TIER: Array<u64> = Array::with_max_entries(1, 0);

#[inline(always)]
fn tier() -> u64 {
    TIER.get(0).copied().unwrap_or(0)
}

/// Whether every iocb the entry programs can see is traced in full: off in
/// the light tier, where an io_event or dispatch of an iocb not in the
/// in-flight table is one submitted outside a sampling window, not a loss.
#[inline(always)]
pub fn full_mode() -> bool {
    tier() & TIER_LIGHT == 0
}

/// Whether an io_event or CQE whose iocb is not in the in-flight table is a
/// loss: not in the light tier (an iocb of no window), nor while the full
/// tier takes over from it (one submitted before).
#[inline(always)]
pub fn unmatched_is_loss() -> bool {
    tier() & (TIER_LIGHT | TIER_SETTLING) == 0
}

/// Whether a request submitted now is traced in full: always in the full
/// tier, and in the light tier while a sampling window is open.
#[inline(always)]
pub fn sampling() -> bool {
    let tier = tier();
    tier & TIER_LIGHT == 0 || tier & TIER_WINDOW != 0
}

/// Whether io_getevents matches its events to in-flight iocbs: always in the
/// full tier, and in the light tier while a window's iocbs may be in flight.
#[inline(always)]
pub fn reap_deep() -> bool {
    let tier = tier();
    tier & TIER_LIGHT == 0 || tier & TIER_DEEP != 0
}

/// Adds to this CPU's copy of a counter (see `COUNTERS`).
#[inline(always)]
pub fn add(counter: *mut u64, n: u64) {
    // SAFETY: callers pass a field of a `counters` value, this CPU's copy (see the crate doc's
    // Safety).
    unsafe { *counter += n };
}

/// The io_uring request a thread is issuing to the filesystem, from its
/// dispatch on: the bios the thread queues for the same kiocb are its.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UringIssue {
    pub key: InflightKey,
    pub kiocb: u64,
}

/// By thread: the request whose direct I/O it dispatched last (the
/// submitting thread, the SQ polling thread or an io-wq worker). A bio
/// belongs to it only if the bio's own dio points at the same kiocb, so a
/// stale entry attributes nothing; a full set evicts.
#[map]
pub static URING_ISSUE: Table<u64, UringIssue> =
    Table::with_max_entries(THREAD_SETS * TABLE_WAYS, 0);

/// Completions a ring holds back for the return of the io_uring_enter that
/// waits for them.
pub const URING_HELD_MAX: usize = 64;

/// A ring's waiters and the requests completed while one waits: the
/// application sees them when a waiting io_uring_enter returns, which is
/// their reap time. The thread that posts a CQE (the submitter, as task
/// work) is often not the one waiting for it (a database's reaper thread).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RingHeld {
    /// Threads inside an io_uring_enter waiting on this ring.
    pub waiters: u64,
    /// Requests held (slots taken; a slot is written right after it is taken).
    pub n: u64,
    pub reqs: [u64; URING_HELD_MAX],
}

/// By ring (`struct io_ring_ctx` address). A full set evicts: an evicted
/// ring's completions go out at once, without a reap time.
#[map]
pub static URING_RINGS: Table<u64, RingHeld> = Table::with_max_entries(RING_SETS * TABLE_WAYS, 0);
pub const RING_SETS: u32 = 256;

// SAFETY: RingHeld is integers only: all zeros is a valid value.
pub static ZERO_RING_HELD: RingHeld = unsafe { core::mem::zeroed() };

/// By thread: the ring its current io_uring_enter waits on.
#[map]
pub static URING_WAITERS: Table<u64, u64> = Table::with_max_entries(THREAD_SETS * TABLE_WAYS, 0);

/// Processes with io_uring requests submitted under trace: a filesystem
/// dispatch of any other process skips the in-flight lookup. A set-associative
/// table (small, hot) rather than a hash: every dispatch of the machine
/// checks it. A full set evicts: an evicted process's dispatches go
/// unattributed until its next submission puts it back.
#[map]
pub static URING_PIDS: Table<u64, u64> = Table::with_max_entries(URING_PID_SETS * TABLE_WAYS, 0);
pub const URING_PID_SETS: u32 = 256;

/// The in-flight key of io_uring request `req` of process `pid`.
#[inline(always)]
pub fn uring_key(pid: u32, req: u64) -> InflightKey {
    InflightKey {
        pid,
        seq: aio_trace_common::SEQ_URING,
        ctx: 0,
        iocb: req,
    }
}
