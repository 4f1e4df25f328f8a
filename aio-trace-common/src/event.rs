//! Records the kernel half writes to the ring buffer, and the maps' key/value
//! types the user half reads.

/// First byte of every ring buffer record: what follows.
pub const RECORD_IOCB: u8 = 1;
pub const RECORD_CTX: u8 = 2;
/// `IocbRecord::opcode` of an iocb that could not be read from user memory
/// (the kernel refused it with -EFAULT): its opcode is not known.
pub const IOCB_OPCODE_UNKNOWN: u16 = u16::MAX;

/// A synchronous vectored syscall (readv, writev, preadv, pwritev, preadv2,
/// pwritev2), in an `IocbRecord` whose `opcode` is one of `SYSCALL_*`.
pub const RECORD_SYSCALL: u8 = 3;

/// `IocbRecord::opcode` of `RECORD_SYSCALL` records.
pub const SYSCALL_READV: u16 = 0x100;
pub const SYSCALL_WRITEV: u16 = 0x101;
pub const SYSCALL_PREADV: u16 = 0x102;
pub const SYSCALL_PWRITEV: u16 = 0x103;
pub const SYSCALL_PREADV2: u16 = 0x104;
pub const SYSCALL_PWRITEV2: u16 = 0x105;

/// `IocbRecord::api`: Linux AIO (io_submit / io_getevents).
pub const API_AIO: u8 = 0;
/// `IocbRecord::api`: io_uring. `ctx` is the ring (`struct io_ring_ctx`),
/// `iocb` the kernel's request (`struct io_kiocb`), `aio_data` the SQE's
/// `user_data`.
pub const API_IO_URING: u8 = 1;

/// `IocbRecord::flags`: io_submit did not accept the iocb; it has no reap time.
pub const IOCB_REJECTED: u16 = 1 << 0;
/// The kernel accepted earlier iocbs of the same call and dropped this one's
/// errno (io_submit returns the count instead), so `res` is unknown.
pub const IOCB_RES_UNKNOWN: u16 = 1 << 1;
/// The iovec array could not be read from user memory: `bytes` is unknown.
pub const IOCB_BYTES_UNKNOWN: u16 = 1 << 2;

/// One iocb from submission to reap (or rejection).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IocbRecord {
    pub kind: u8,
    /// The interface the request came through (`API_*`) for `RECORD_IOCB`
    /// records; `RECORD_SYSCALL` records are synchronous whatever it says.
    pub api: u8,
    /// `IOCB_CMD_*` for AIO, `IORING_OP_*` for io_uring, `SYSCALL_*` for a
    /// synchronous call.
    pub opcode: u16,
    pub flags: u16,
    pub _pad1: u16,
    /// Process (tgid) and thread that submitted the iocb.
    pub pid: u32,
    pub tid: u32,
    pub fd: u32,
    /// iovec count for PREADV/PWRITEV, 1 for PREAD/PWRITE, 0 otherwise.
    pub segs: u32,
    pub comm: [u8; 16],
    /// AIO context id (`aio_context_t`).
    pub ctx: u64,
    /// User address of the iocb (what `io_event.obj` carries back).
    pub iocb: u64,
    pub aio_data: u64,
    pub offset: i64,
    /// Bytes requested: `aio_nbytes`, or the sum of `iov_len` for the vectored opcodes.
    pub bytes: u64,
    /// `io_event.res`: bytes transferred or -errno.
    pub res: i64,
    /// Monotonic ns at io_submit entry.
    pub submit_ns: u64,
    /// Monotonic ns at the io_getevents exit that handed the event back (for
    /// a syscall: its return); 0 if never reaped.
    pub reap_ns: u64,
    /// Device (kernel `dev_t`: major << 20 | minor) and inode of the file the
    /// filesystem dispatched the I/O to; 0 without a dispatch.
    pub dev: u32,
    /// Filesystem direct-I/O dispatches (iomap_dio_rw_begin) the iocb caused.
    pub dispatches: u32,
    /// Bios queued for it, and how many of them the block layer split or merged.
    pub bios: u32,
    pub splits: u32,
    pub merges: u32,
    pub _pad2: u32,
    pub ino: u64,
    /// Monotonic ns of the first dispatch, the first bio queued, the last
    /// request completed and the kernel-side completion; 0 where not seen.
    pub dispatch_ts: u64,
    pub first_bio_ts: u64,
    pub last_rq_ts: u64,
    pub complete_ts: u64,
    /// The submitter's cgroup v2 id (the inode number of its directory on
    /// the cgroup2 mount), taken at submit; 0 where the kernel has none.
    pub cgroup: u64,
}
const _: () = assert!(core::mem::size_of::<IocbRecord>() == 176);

/// `CtxRecord::event`.
pub const CTX_SETUP: u8 = 1;
pub const CTX_DESTROY: u8 = 2;
/// The process exited (its last thread): every context of it is gone.
pub const CTX_EXIT: u8 = 3;

/// An AIO context created (io_setup) or destroyed (io_destroy), or a process
/// that used AIO exited (`CTX_EXIT`, ctx 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtxRecord {
    pub kind: u8,
    pub event: u8,
    pub _pad: [u8; 2],
    pub pid: u32,
    pub ctx: u64,
    /// io_setup's nr_events; 0 for destroy.
    pub nr_events: u64,
    pub ts_ns: u64,
}
const _: () = assert!(core::mem::size_of::<CtxRecord>() == 32);

/// Key of the in-flight table: an iocb is identified by its process, its
/// context and its user address (the `obj` its io_event will carry), and,
/// when the same address is submitted again while an earlier submission is
/// still in flight, by its place in the order of those submissions (`seq`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InflightKey {
    pub pid: u32,
    /// 0 for an address with one submission in flight; otherwise the
    /// submission's number in the address's order entry (`SEQ_ORDER`).
    pub seq: u32,
    pub ctx: u64,
    pub iocb: u64,
}

/// `InflightKey::seq` of an address's order entry: kept in the in-flight
/// table (so that it goes with its context and process) from the first time
/// the address is submitted again while in flight. Its value is an
/// `IocbRecord` of kind `RECORD_ORDER` whose `bytes` is the number the next
/// submission takes and `reap_ns` the number the next reaped event takes:
/// an io_event names only the address, so submissions of one address are
/// matched to its events in submission order.
pub const SEQ_ORDER: u32 = u32::MAX;

/// `InflightKey::seq` of an io_uring request: its key is (pid, `SEQ_URING`,
/// 0, request address). The request address alone identifies it while in
/// flight (the kernel reuses a request only after its completion), and it is
/// what the filesystem's kiocb points at (the `struct io_rw` at the start of
/// the request), so a dispatch finds its request without reading the ring.
pub const SEQ_URING: u32 = u32::MAX - 1;

/// `IocbRecord::kind` of an order entry (never in the ring buffer).
pub const RECORD_ORDER: u8 = 4;
const _: () = assert!(core::mem::size_of::<InflightKey>() == 24);

/// An entry of the in-flight table.
pub type InflightEntry = crate::TableEntry<InflightKey, IocbRecord>;
const _: () = assert!(core::mem::size_of::<InflightEntry>() == 208);

/// Key of the per-context counters: the context's syscall counters
/// (`op` = `CTX_OP_CALLS`), and one entry per iocb opcode submitted in it
/// (`op` = `ctx_op(opcode)`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CtxKey {
    pub pid: u32,
    pub op: u32,
    pub ctx: u64,
}

/// `CtxKey::op` of a context's syscall counters.
pub const CTX_OP_CALLS: u32 = 0;

/// `CtxKey::op` of the iocbs of `IOCB_CMD_*` opcode `opcode` (an iocb whose
/// opcode could not be read has none: it is never counted by opcode).
pub const fn ctx_op(opcode: u16) -> u32 {
    opcode as u32 + 1
}

/// The `IOCB_CMD_*` opcode of a per-opcode `CtxKey::op`; None for the calls.
pub const fn op_of_ctx(op: u32) -> Option<u16> {
    if op == CTX_OP_CALLS {
        None
    } else {
        Some((op - 1) as u16)
    }
}

/// Buckets of the per-opcode segments histogram (`CtxCounters::segs_log2`):
/// bucket 0 holds iocbs without segments (FSYNC), bucket b ≥ 1 holds
/// [2^(b-1), 2^b) segments, the last also everything above (UIO_MAXIOV,
/// 1,024 segments, is bucket 11).
pub const SEGS_BUCKETS: usize = 12;

/// The `segs_log2` bucket of an iocb of `segs` segments.
pub const fn segs_bucket(segs: u32) -> usize {
    let b = (u32::BITS - segs.leading_zeros()) as usize;
    if b >= SEGS_BUCKETS {
        SEGS_BUCKETS - 1
    } else {
        b
    }
}
const _: () = assert!(core::mem::size_of::<CtxKey>() == 16);

/// `CtxKey::ctx` of an io_uring ring's counters: the ring's fd, as
/// io_uring_enter names it, with this bit set (an AIO context id, a user
/// address, never has it). For such a key `io_submit_calls` counts the
/// io_uring_enter calls that submitted (`iocbs_requested` their `to_submit`,
/// `iocbs_submitted` what they submitted), `io_getevents_calls` those that
/// waited (`IORING_ENTER_GETEVENTS`, `min_nr_sum` their `min_complete`);
/// CQEs are taken from the ring in user memory, so no event is counted.
pub const CTX_URING_FD: u64 = 1 << 63;

/// `CtxKey::ctx` of a process's synchronous vectored syscalls, counted by
/// opcode (`SYSCALL_*`) in the light tier: calls in `iocbs_submitted`,
/// requested bytes, segments, and calls that failed in `events_failed`.
/// Neither an AIO context id (a user address: bit 63 clear), an io_uring
/// ring's fd key (bit 62 clear) nor a ring's kernel address (aligned).
pub const CTX_SYNC: u64 = 0xC000_0000_0000_0001;

/// Per (process, context) syscall counters, kept in the kernel: no record is
/// needed per call, only these sums. An entry of the calls (`CTX_OP_CALLS`)
/// uses the call fields and `events_failed`; an entry of one opcode uses
/// `iocbs_submitted`, `bytes` and `segs_log2`, exact whether or not its
/// iocbs are sampled (counted at io_submit's exit in the light tier, see
/// `TIER_LIGHT`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtxCounters {
    pub io_submit_calls: u64,
    /// Sum of io_submit's `nr`.
    pub iocbs_requested: u64,
    /// Iocbs io_submit accepted (sum of positive returns).
    pub iocbs_submitted: u64,
    /// io_submit calls that accepted fewer iocbs than asked.
    pub short_submits: u64,
    pub io_getevents_calls: u64,
    /// io_getevents calls that returned no event.
    pub empty_getevents: u64,
    pub events_reaped: u64,
    /// Sums of io_getevents' `min_nr` and `nr`, for averages.
    pub min_nr_sum: u64,
    pub nr_sum: u64,
    pub io_cancel_calls: u64,
    /// Events io_getevents returned with a negative `res` (an errno).
    pub events_failed: u64,
    /// Bytes requested by the iocbs submitted (`IocbRecord::bytes`; 0 for
    /// an iocb whose iovec array could not be read, counted as `user_read`).
    pub bytes: u64,
    /// Segments of the iocbs submitted (`IocbRecord::segs`), for the average.
    pub segments: u64,
    /// Iocbs submitted by segments (`segs_bucket`).
    pub segs_log2: [u64; SEGS_BUCKETS],
}
const _: () = assert!(core::mem::size_of::<CtxCounters>() == 104 + 8 * SEGS_BUCKETS);

/// A CPU's counts for one key not yet added to the counter table: the
/// light tier adds to the slot while the CPU keeps counting the same key
/// (one process, one context, one opcode: no table lookup) and adds the
/// slot to the table when the key changes. `seq` is odd while the kernel
/// moves the slot into the table; the user half adds the slots to what it
/// reads from the table, and reads again if a `seq` moved meanwhile.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSlot {
    pub seq: u64,
    pub key: CtxKey,
    pub pending: CtxCounters,
}
const _: () = assert!(core::mem::size_of::<CounterSlot>() == 24 + 104 + 8 * SEGS_BUCKETS);

/// `COUNTER_SLOTS` indexes: a context's calls entry, and an opcode's entry.
pub const SLOT_CALLS: u32 = 0;
pub const SLOT_OPS: u32 = 1;
pub const COUNTER_SLOTS: u32 = 2;

/// Indexes of the per-CPU loss counters: every event the tracer missed is
/// counted under one cause.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// The ring buffer was full: a finished record was dropped.
    RingFull = 0,
    /// The in-flight table was full: a submitted iocb was not tracked.
    InflightFull = 1,
    /// User memory (iocb pointer, iocb, iovec or io_event array) was not readable.
    UserRead = 2,
    /// An io_event whose iocb was never seen submitted (e.g. submitted before the trace began).
    Unmatched = 3,
    /// An io_submit/io_getevents call larger than `MAX_IOCBS_PER_CALL` was truncated.
    BatchTruncated = 4,
    /// The per-thread syscall state table was full.
    SyscallStateFull = 5,
    /// A bio queued by a traced task inside an AIO or vectored syscall that no
    /// iocb could be found for.
    UnattributedBio = 6,
    /// A filesystem dispatch inside io_submit that matched none of its iocbs.
    UnmatchedDispatch = 7,
    /// A bio or request of a device the per-device table had no room for
    /// (its set full): missing from the device counters.
    DeviceTableFull = 8,
    /// Not a loss: an io_event of an iocb submitted before the trace began (or
    /// while its programs were being attached), seen while the trace is
    /// younger than the in-flight timeout. Later such events are `Unmatched`.
    InflightAtStart = 9,
    /// The kernel's counter table had no room for a (process, context,
    /// opcode): its counts are missing.
    CounterTableFull = 10,
}
pub const LOSS_CAUSES: u32 = 11;

/// Who caused a dispatch or a bio: an in-flight iocb or a thread's syscall.
pub const OWNER_AIO: u8 = 1;
pub const OWNER_SYSCALL: u8 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub kind: u8,
    pub _pad: [u8; 3],
    /// The thread, for `OWNER_SYSCALL`.
    pub tid: u32,
    /// The iocb, for `OWNER_AIO`.
    pub iocb: InflightKey,
}
const _: () = assert!(core::mem::size_of::<Owner>() == 32);

/// log2 buckets of request D2C latency in ns (bucket i: [2^i, 2^(i+1))).
pub const D2C_BUCKETS: usize = 40;

/// Per block device counters, kept in the kernel for the exit summary.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevCounters {
    /// The device's `dev_t` (major << 20 | minor).
    pub dev: u32,
    pub _pad: u32,
    pub bios: u64,
    pub requests: u64,
    pub merges: u64,
    pub splits: u64,
    pub d2c_ns_sum: u64,
    pub d2c_log2: [u64; D2C_BUCKETS],
}
const _: () = assert!(core::mem::size_of::<DevCounters>() == 48 + 8 * D2C_BUCKETS);

impl Default for DevCounters {
    fn default() -> Self {
        Self {
            dev: 0,
            _pad: 0,
            bios: 0,
            requests: 0,
            merges: 0,
            splits: 0,
            d2c_ns_sum: 0,
            d2c_log2: [0; D2C_BUCKETS],
        }
    }
}

/// `aya::Pod`: a type the user half may copy out of a map or the ring buffer
/// as bytes. Each is `#[repr(C)]` of integers and integer arrays only, with
/// every gap an explicit `_pad` field (the size assertions above pin the
/// layouts): no padding bytes, and every bit pattern is a valid value.
#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: repr(C) integers with explicit padding (size asserted: 176).
    unsafe impl aya::Pod for IocbRecord {}
    // SAFETY: repr(C) integers with explicit padding (size asserted: 32).
    unsafe impl aya::Pod for CtxRecord {}
    // SAFETY: repr(C) integers with explicit padding (size asserted: 24).
    unsafe impl aya::Pod for InflightKey {}
    // SAFETY: repr(C) integers with explicit padding (size asserted: 16).
    unsafe impl aya::Pod for CtxKey {}
    // SAFETY: repr(C) u64 counters only (size asserted: 200).
    unsafe impl aya::Pod for CtxCounters {}
    // SAFETY: repr(C) of a u64, a CtxKey and a CtxCounters, no padding (size asserted: 224).
    unsafe impl aya::Pod for CounterSlot {}
    // SAFETY: repr(C) integers with explicit padding (size asserted).
    unsafe impl aya::Pod for DevCounters {}
    // SAFETY: repr(C) u64, u64 and an 8-aligned Pod value: no gap between them.
    unsafe impl aya::Pod for crate::TableEntry<u64, DevCounters> {}
    // SAFETY: repr(C) integers with explicit padding (size asserted: 32).
    unsafe impl aya::Pod for Owner {}
    // SAFETY: repr(C) u64, u64 and an 8-aligned Pod value: no gap between them.
    unsafe impl aya::Pod for crate::TableEntry<u64, Owner> {}
    // SAFETY: repr(C) of three u64s.
    unsafe impl aya::Pod for crate::TableEntry<u64, u64> {}
}
