//! The names under which the user half finds the kernel half's maps,
//! programs and globals: written once here, used by the loader (and by
//! `doctor` through its probe table).
//!
//! Layer: shared types, no dependencies. In the kernel half these names are
//! the Rust identifiers themselves (`#[map] static EVENTS`, the `#[tracepoint]`
//! functions, `#[unsafe(no_mangle)] static ARGS_FROM_REGS`), so they cannot
//! import them; a unit test of the user half (`loader::tests`) checks every
//! constant here against the symbols of the built eBPF object.

// Maps the user half opens.

/// The ring buffer of finished records.
pub const MAP_EVENTS: &str = "EVENTS";
/// The in-flight table, mmapped by the user half.
pub const MAP_INFLIGHT: &str = "INFLIGHT";
/// Per (process, context) syscall counters.
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Loss counters by cause.
pub const MAP_LOSS: &str = "LOSS";
/// Per block device counters.
pub const MAP_DEV_STATS: &str = "DEV_STATS";
/// Bios in flight and who caused them.
pub const MAP_BIO_OWNER: &str = "BIO_OWNER";
/// The pids to trace, written before load.
pub const MAP_PID_FILTER: &str = "PID_FILTER";
/// The cgroup v2 ids to trace (with their descendants), written before load.
pub const MAP_CGROUP_FILTER: &str = "CGROUP_FILTER";
/// Each CPU's counts not yet in `COUNTERS` (`CounterSlot`).
pub const MAP_COUNTER_SLOTS: &str = "COUNTER_SLOTS";
/// The tier and its sampling window (`TIER_LIGHT`, `TIER_DEEP`), written
/// while tracing.
pub const MAP_TIER: &str = "TIER";

/// Every map named above.
pub const MAPS: &[&str] = &[
    MAP_EVENTS,
    MAP_INFLIGHT,
    MAP_COUNTERS,
    MAP_COUNTER_SLOTS,
    MAP_LOSS,
    MAP_DEV_STATS,
    MAP_BIO_OWNER,
    MAP_PID_FILTER,
    MAP_CGROUP_FILTER,
    MAP_TIER,
];

// Globals the loader sets before load (`EbpfLoader::override_global`).

pub const GLOBAL_FILTER_PIDS: &str = "FILTER_PIDS";
pub const GLOBAL_FILTER_COMM: &str = "FILTER_COMM";
/// Bit n set: a traced cgroup sits at level n of the v2 hierarchy.
pub const GLOBAL_FILTER_CGROUP_LEVELS: &str = "FILTER_CGROUP_LEVELS";
pub const GLOBAL_WAKEUP_BYTES: &str = "WAKEUP_BYTES";
pub const GLOBAL_KERNEL_OFFSETS: &str = "KERNEL_OFFSETS";
/// 1: the syscall exits read their arguments from the caller's registers;
/// 0: the saved-args entry programs keep them in `SAVED_ARGS` for the exits.
pub const GLOBAL_ARGS_FROM_REGS: &str = "ARGS_FROM_REGS";
/// `MIDFLIGHT_UNTIL_NS`: until when an unmatched io_event is an iocb of the
/// trace's start (`LossCause::InflightAtStart`).
pub const GLOBAL_MIDFLIGHT_UNTIL_NS: &str = "MIDFLIGHT_UNTIL_NS";

/// Every global named above.
pub const GLOBALS: &[&str] = &[
    GLOBAL_FILTER_PIDS,
    GLOBAL_FILTER_COMM,
    GLOBAL_FILTER_CGROUP_LEVELS,
    GLOBAL_WAKEUP_BYTES,
    GLOBAL_KERNEL_OFFSETS,
    GLOBAL_ARGS_FROM_REGS,
    GLOBAL_MIDFLIGHT_UNTIL_NS,
];

// Programs, each named after the tracepoint it attaches to.

// syscalls: the AIO calls.
pub const PROG_SYS_ENTER_IO_SUBMIT: &str = "sys_enter_io_submit";
pub const PROG_SYS_EXIT_IO_SUBMIT: &str = "sys_exit_io_submit";
pub const PROG_SYS_ENTER_IO_GETEVENTS: &str = "sys_enter_io_getevents";
pub const PROG_SYS_EXIT_IO_GETEVENTS: &str = "sys_exit_io_getevents";
pub const PROG_SYS_ENTER_IO_PGETEVENTS: &str = "sys_enter_io_pgetevents";
pub const PROG_SYS_EXIT_IO_PGETEVENTS: &str = "sys_exit_io_pgetevents";
pub const PROG_SYS_ENTER_IO_SETUP: &str = "sys_enter_io_setup";
pub const PROG_SYS_EXIT_IO_SETUP: &str = "sys_exit_io_setup";
pub const PROG_SYS_ENTER_IO_DESTROY: &str = "sys_enter_io_destroy";
pub const PROG_SYS_EXIT_IO_DESTROY: &str = "sys_exit_io_destroy";
pub const PROG_SYS_ENTER_IO_CANCEL: &str = "sys_enter_io_cancel";

// syscalls: the synchronous vectored calls.
pub const PROG_SYS_ENTER_READV: &str = "sys_enter_readv";
pub const PROG_SYS_EXIT_READV: &str = "sys_exit_readv";
pub const PROG_SYS_ENTER_WRITEV: &str = "sys_enter_writev";
pub const PROG_SYS_EXIT_WRITEV: &str = "sys_exit_writev";
pub const PROG_SYS_ENTER_PREADV: &str = "sys_enter_preadv";
pub const PROG_SYS_EXIT_PREADV: &str = "sys_exit_preadv";
pub const PROG_SYS_ENTER_PWRITEV: &str = "sys_enter_pwritev";
pub const PROG_SYS_EXIT_PWRITEV: &str = "sys_exit_pwritev";
pub const PROG_SYS_ENTER_PREADV2: &str = "sys_enter_preadv2";
pub const PROG_SYS_EXIT_PREADV2: &str = "sys_exit_preadv2";
pub const PROG_SYS_ENTER_PWRITEV2: &str = "sys_enter_pwritev2";
pub const PROG_SYS_EXIT_PWRITEV2: &str = "sys_exit_pwritev2";

// sched
pub const PROG_SCHED_PROCESS_EXIT: &str = "sched_process_exit";

// iomap (raw tracepoints)
pub const PROG_IOMAP_DIO_RW_BEGIN: &str = "iomap_dio_rw_begin";
pub const PROG_IOMAP_DIO_COMPLETE: &str = "iomap_dio_complete";

// block (raw tracepoints)
pub const PROG_BLOCK_BIO_QUEUE: &str = "block_bio_queue";
pub const PROG_BLOCK_SPLIT: &str = "block_split";
pub const PROG_BLOCK_BIO_BACKMERGE: &str = "block_bio_backmerge";
pub const PROG_BLOCK_BIO_FRONTMERGE: &str = "block_bio_frontmerge";
pub const PROG_BLOCK_RQ_ISSUE: &str = "block_rq_issue";
pub const PROG_BLOCK_RQ_COMPLETE: &str = "block_rq_complete";
pub const PROG_BLOCK_BIO_COMPLETE: &str = "block_bio_complete";

// io_uring (raw tracepoints), and the return of io_uring_enter.
pub const PROG_IO_URING_SUBMIT_REQ: &str = "io_uring_submit_req";
pub const PROG_IO_URING_REQ_FAILED: &str = "io_uring_req_failed";
pub const PROG_IO_URING_COMPLETE: &str = "io_uring_complete";
pub const PROG_IO_URING_CQRING_WAIT: &str = "io_uring_cqring_wait";
pub const PROG_SYS_EXIT_IO_URING_ENTER: &str = "sys_exit_io_uring_enter";
