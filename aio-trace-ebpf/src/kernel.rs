//! Reading the kernel structs raw tracepoints hand us, at the member offsets
//! the loader resolved from the running kernel's BTF (see `KernelOffsets`).
//!
//! The device and sector readers mirror the `TP_fast_assign` of the block
//! tracepoints, so they report what `blktrace` and bpftrace users see.

use aio_trace_common::KernelOffsets;
use aya_ebpf::helpers::bpf_probe_read_kernel;

/// Set by the loader before load.
#[unsafe(no_mangle)]
static KERNEL_OFFSETS: KernelOffsets = KernelOffsets {
    request_q: 0,
    request_bio: 0,
    queue_disk: 0,
    disk_major: 0,
    disk_first_minor: 0,
    disk_seq: 0,
    bio_bdev: 0,
    bio_sector: 0,
    bio_size: 0,
    bio_next: 0,
    bio_private: 0,
    bio_status: 0,
    bdev_disk: 0,
    kiocb_filp: 0,
    kiocb_pos: 0,
    file_inode: 0,
    inode_sb: 0,
    inode_ino: 0,
    sb_dev: 0,
    aio_kiocb_obj: 0,
    uring: 0,
    req_ctx: 0,
    req_opcode: 0,
    req_user_data: 0,
    req_fd: 0,
    req_kiocb: 0,
    req_addr: 0,
    req_len: 0,
    ring_flags: 0,
    task_group_leader: 0,
    task_comm: 0,
    task_flags: 0,
    dio_iocb: 0,
};

/// One resolved offset; volatile so the compiler does not fold the zeros above.
macro_rules! offset {
    ($member:ident) => {
        // SAFETY: a static, so valid and aligned; volatile only so the
        // loader's value is not folded away.
        u64::from(unsafe { core::ptr::read_volatile(&raw const KERNEL_OFFSETS.$member) })
    };
}

/// The `T` at `base + offset` in kernel memory.
#[inline(always)]
pub fn read<T>(base: u64, offset: u64) -> Result<T, i64> {
    // SAFETY: bpf_probe_read_kernel tolerates any address: a fault is returned as an error, not
    // taken.
    unsafe { bpf_probe_read_kernel((base + offset) as *const T) }.map_err(i64::from)
}

/// `disk_devt(disk)`: the kernel's `dev_t` (major << 20 | minor), as the
/// block tracepoints report it.
#[inline(always)]
pub fn disk_devt(disk: u64) -> Result<u32, i64> {
    let major: i32 = read(disk, offset!(disk_major))?;
    let minor: i32 = read(disk, offset!(disk_first_minor))?;
    Ok(((major as u32) << 20) | minor as u32)
}

/// The `struct gendisk` a request is on (0 if none).
#[inline(always)]
pub fn request_disk(rq: u64) -> Result<u64, i64> {
    read(read::<u64>(rq, offset!(request_q))?, offset!(queue_disk))
}

/// The `struct gendisk` a bio is on, the whole disk (0 if none).
#[inline(always)]
pub fn bio_disk(bio: u64) -> Result<u64, i64> {
    let bdev: u64 = read(bio, offset!(bio_bdev))?;
    if bdev == 0 {
        return Ok(0);
    }
    read(bdev, offset!(bdev_disk))
}

/// A bio's first sector, remapped to the whole disk, as `block_bio_queue`
/// reports it: the space a raw device's iocbs are matched in.
#[inline(always)]
pub fn bio_sector(bio: u64) -> Result<u64, i64> {
    read(bio, offset!(bio_sector))
}

/// A disk's sequence number (`diskseq`): unlike its address or `dev_t`,
/// never given to another disk (or media) again before reboot.
#[inline(always)]
pub fn disk_seq(disk: u64) -> Result<u64, i64> {
    read(disk, offset!(disk_seq))
}

/// A bio's `blk_status_t` (0 for success).
#[inline(always)]
pub fn bio_status(bio: u64) -> Result<u8, i64> {
    read(bio, offset!(bio_status))
}

/// The bytes a bio has left to complete.
#[inline(always)]
pub fn bio_bytes(bio: u64) -> Result<u32, i64> {
    read(bio, offset!(bio_size))
}

/// The bio after `bio` in its request (0 at the end).
#[inline(always)]
pub fn bio_next(bio: u64) -> Result<u64, i64> {
    read(bio, offset!(bio_next))
}

/// A split bio's parent: `bio_chain` points the split's `bi_private` at the
/// bio it was cut from before `block_split` fires.
#[inline(always)]
pub fn split_parent(split: u64) -> Result<u64, i64> {
    read(split, offset!(bio_private))
}

/// A request's first bio not yet completed (0 for a request without data).
#[inline(always)]
pub fn request_bio(rq: u64) -> Result<u64, i64> {
    read(rq, offset!(request_bio))
}

/// The (filesystem device, inode) of the file a kiocb targets.
#[inline(always)]
pub fn kiocb_file(kiocb: u64) -> Result<(u32, u64), i64> {
    let file: u64 = read(kiocb, offset!(kiocb_filp))?;
    let inode: u64 = read(file, offset!(file_inode))?;
    let sb: u64 = read(inode, offset!(inode_sb))?;
    Ok((read(sb, offset!(sb_dev))?, read(inode, offset!(inode_ino))?))
}

/// A kiocb's file position.
#[inline(always)]
pub fn kiocb_pos(kiocb: u64) -> Result<i64, i64> {
    read(kiocb, offset!(kiocb_pos))
}

/// The user iocb address of an AIO kiocb (`aio_kiocb.ki_res.obj`, set by
/// io_submit before it dispatches), or None if the kernel's layout is unknown.
/// Only meaningful for a kiocb io_submit handed down; the caller checks the
/// result against the in-flight table.
#[inline(always)]
pub fn aio_user_iocb(kiocb: u64) -> Option<u64> {
    let at = offset!(aio_kiocb_obj);
    if at == 0 {
        return None;
    }
    read(kiocb, at).ok()
}

/// Whether the io_uring offsets were resolved (`KernelOffsets::uring`).
#[inline(always)]
pub fn uring_known() -> bool {
    offset!(uring) != 0
}

/// An io_uring request's (`struct io_kiocb`) ring (`struct io_ring_ctx`).
#[inline(always)]
pub fn req_ring(req: u64) -> Result<u64, i64> {
    read(req, offset!(req_ctx))
}

/// An io_uring request's opcode (`IORING_OP_*`).
#[inline(always)]
pub fn req_opcode(req: u64) -> Result<u8, i64> {
    read(req, offset!(req_opcode))
}

/// An io_uring request's `user_data`.
#[inline(always)]
pub fn req_user_data(req: u64) -> Result<u64, i64> {
    read(req, offset!(req_user_data))
}

/// An io_uring request's file descriptor (the SQE's `fd`, a fixed-file
/// index for registered files).
#[inline(always)]
pub fn req_fd(req: u64) -> Result<i32, i64> {
    read(req, offset!(req_fd))
}

/// The read/write command of an io_uring request (`struct io_rw`): buffer
/// or iovec address and length (bytes or segments).
#[inline(always)]
pub fn req_rw(req: u64) -> Result<(u64, u32), i64> {
    Ok((read(req, offset!(req_addr))?, read(req, offset!(req_len))?))
}

/// The `struct kiocb` inside an io_uring read/write request: what the
/// filesystem's dispatch reports.
#[inline(always)]
pub fn req_kiocb(req: u64) -> u64 {
    req + offset!(req_kiocb)
}

/// The io_uring request holding a filesystem kiocb, if it is one.
#[inline(always)]
pub fn kiocb_req(kiocb: u64) -> u64 {
    kiocb.wrapping_sub(offset!(req_kiocb))
}

/// A ring's `IORING_SETUP_*` flags.
#[inline(always)]
pub fn ring_flags(ring: u64) -> Result<u32, i64> {
    read(ring, offset!(ring_flags))
}

/// A task's `PF_*` flags.
#[inline(always)]
pub fn task_flags(task: u64) -> Result<u32, i64> {
    read(task, offset!(task_flags))
}

/// The name of a task's thread-group leader (the process's comm).
#[inline(always)]
pub fn leader_comm(task: u64) -> Result<[u8; 16], i64> {
    read(
        read::<u64>(task, offset!(task_group_leader))?,
        offset!(task_comm),
    )
}

/// The kiocb a direct-I/O bio works for: `bi_private` is its
/// `struct iomap_dio`, whose `iocb` is the kiocb.
#[inline(always)]
pub fn dio_bio_kiocb(bio: u64) -> Result<u64, i64> {
    read(read::<u64>(bio, offset!(bio_private))?, offset!(dio_iocb))
}
