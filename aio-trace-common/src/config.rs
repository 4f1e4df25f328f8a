//! Settings the loader writes into the kernel half before load (the
//! globals' names are in `names`).

/// The most iocbs one io_submit (or events one io_getevents) the kernel half
/// walks. Larger calls are truncated and counted as `LossCause::BatchTruncated`.
pub const MAX_IOCBS_PER_CALL: u32 = 4096;

/// The most iocb records io_getevents sends to the ring buffer as one item:
/// one ring operation per batch instead of per record, read back as
/// consecutive `IocbRecord`s.
pub const REAP_BATCH: usize = 32;

/// Default ring buffer size in bytes (a power of two, a multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 16 << 20;

/// The most cgroups one trace filters on (`--cgroup`).
pub const CGROUP_FILTER_ENTRIES: u32 = 64;

/// Entries of the kernel's counter table (`COUNTERS`): one per (process, AIO
/// context or io_uring ring) for the calls, and in the light tier one per
/// opcode it submits.
pub const COUNTER_ENTRIES: u32 = 16_384;

/// `TIER` bit: the light tier. io_submit's exit counts iocbs by opcode
/// (`CtxKey::op`), and an io_event or dispatch of an iocb missing from the
/// in-flight table is one submitted outside a sampling window, not a loss.
pub const TIER_LIGHT: u64 = 1;
/// `TIER` bit: a light tier's sampling window is open or its iocbs may
/// still be in flight: io_getevents matches its events to in-flight iocbs.
pub const TIER_DEEP: u64 = 2;
/// `TIER` bit: a light tier's sampling window is open: io_uring requests
/// submitted now are traced in full (an AIO iocb is when io_submit's entry
/// program, attached only in windows, sees it).
pub const TIER_WINDOW: u64 = 4;
/// `TIER` bit: the full tier has just taken over from the light tier (`top`'s
/// `t`): an io_event or CQE of an iocb submitted before is not a loss.
pub const TIER_SETTLING: u64 = 8;
/// The deepest level of the cgroup v2 hierarchy a `--cgroup` may sit at (the
/// root is level 0): the levels are bits of a u64 global.
pub const CGROUP_MAX_LEVEL: u32 = 63;

/// The comm filter: a NUL-padded task name, matched exactly when `enabled` is 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommFilter {
    pub comm: [u8; 16],
    pub enabled: u8,
    pub _pad: [u8; 7],
}
const _: () = assert!(core::mem::size_of::<CommFilter>() == 24);

// SAFETY: repr(C) bytes only, the gap an explicit `_pad` (size asserted: 24):
// no padding bytes, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for CommFilter {}

/// Byte offsets of the kernel struct members the raw tracepoint programs read,
/// resolved from the running kernel's BTF by the loader (aya-ebpf has no CO-RE).
///
/// The block and iomap programs are raw tracepoints, not tracepoints, because
/// the kernel's recursion guard for tracepoint programs is per CPU and shared by
/// every program: a completion interrupt arriving while any tracepoint program
/// runs on that CPU is silently skipped. A raw tracepoint's guard is per program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `struct request`: `q`, `bio`.
    pub request_q: u32,
    pub request_bio: u32,
    /// `struct request_queue`: `disk`.
    pub queue_disk: u32,
    /// `struct gendisk`: `major`, `first_minor`, `diskseq`.
    pub disk_major: u32,
    pub disk_first_minor: u32,
    pub disk_seq: u32,
    /// `struct bio`: `bi_bdev`, `bi_iter.bi_sector`, `bi_iter.bi_size`,
    /// `bi_next`, `bi_private`, `bi_status`.
    pub bio_bdev: u32,
    pub bio_sector: u32,
    pub bio_size: u32,
    pub bio_next: u32,
    pub bio_private: u32,
    pub bio_status: u32,
    /// `struct block_device`: `bd_disk`.
    pub bdev_disk: u32,
    /// `struct kiocb`: `ki_filp`, `ki_pos`.
    pub kiocb_filp: u32,
    pub kiocb_pos: u32,
    /// `struct file`: `f_inode`.
    pub file_inode: u32,
    /// `struct inode`: `i_sb`, `i_ino`.
    pub inode_sb: u32,
    pub inode_ino: u32,
    /// `struct super_block`: `s_dev`.
    pub sb_dev: u32,
    /// From a `struct kiocb` inside a `struct aio_kiocb` to its
    /// `ki_res.obj` (the user iocb address); 0 if the kernel has none.
    pub aio_kiocb_obj: u32,
    /// 1 when every io_uring offset below was resolved; 0 leaves the
    /// io_uring programs idle (a kernel without io_uring or its BTF).
    pub uring: u32,
    /// `struct io_kiocb`: `ctx`, `opcode`, `cqe.user_data`, `cqe.fd`, and
    /// the `struct io_rw` in its command area: `kiocb`, `addr`, `len`.
    pub req_ctx: u32,
    pub req_opcode: u32,
    pub req_user_data: u32,
    pub req_fd: u32,
    pub req_kiocb: u32,
    pub req_addr: u32,
    pub req_len: u32,
    /// `struct io_ring_ctx`: `flags` (`IORING_SETUP_*`).
    pub ring_flags: u32,
    /// `struct task_struct`: `group_leader`, `comm`, `flags`.
    pub task_group_leader: u32,
    pub task_comm: u32,
    pub task_flags: u32,
    /// `struct iomap_dio`: `iocb`, the kiocb a direct-I/O bio
    /// (`bi_private`) works for.
    pub dio_iocb: u32,
}
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 132);

// SAFETY: repr(C) of u32s only (size asserted: 132): no padding bytes, every
// bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for KernelOffsets {}
