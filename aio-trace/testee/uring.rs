//! The io_uring scenarios: requests whose records are fully known, each with
//! a user_data of its own, so a test matches record and truth by (pid,
//! user_data). Each prints one `{"type":"ring"}` line per ring it set up (or
//! was refused), one `{"type":"iocb","api":"io_uring"}` line per request,
//! from its CQE, and one `{"type":"uring_calls"}` line.

use std::{
    fs::{File, OpenOptions},
    io,
    os::{
        fd::{AsRawFd, RawFd},
        unix::fs::OpenOptionsExt,
    },
    path::Path,
};

use aio_trace::aio::{AlignedBuf, iovec_array};
use aio_trace_common::{IORING_OP_FSYNC, UIO_MAXIOV, uring_op_name};
use io_uring::{IoUring, opcode, squeue, types::Fd};
use serde_json::json;

use crate::{Arena, BLOCK, Truth};

/// The data file's size: every byte written before the scenario, so that an
/// O_DIRECT read of any of it reaches the device (an unwritten extent reads
/// as zeros with no bio).
const FILE_SIZE: usize = 8 << 20;

/// SQ ring size of each ring: the largest batch (16 READs) fits.
const RING_ENTRIES: u32 = 64;

/// What went through io_uring_enter, for the `uring_calls` line.
#[derive(Default)]
pub struct UringCalls {
    /// Every io_uring_enter the scenario made (each submits, waits or both).
    pub enter_calls: u64,
    pub sqes_submitted: u64,
    pub cqes_reaped: u64,
    /// Rings set up (SQPOLL's included).
    pub rings: u64,
}

/// The scenario's groups of requests, in the order `uring` runs them.
const GROUPS: [(&str, Group); 4] = [
    ("basic", basic),
    ("link", link),
    ("punt", punt),
    ("sqpoll", sqpoll),
];

type Group = fn(&mut Driver, &Files, &mut Arena) -> io::Result<()>;

/// `uring` runs every group; `uring_<group>` one.
pub fn scenario(name: &str, dir: &Path) -> Option<io::Result<Truth>> {
    let groups: Vec<Group> = match name {
        "uring" => GROUPS.iter().map(|(_, g)| *g).collect(),
        _ => {
            let group = name.strip_prefix("uring_")?;
            vec![GROUPS.iter().find(|(n, _)| *n == group)?.1]
        }
    };
    Some(run(dir, &groups))
}

fn run(dir: &Path, groups: &[Group]) -> io::Result<Truth> {
    let files = Files::new(dir)?;
    let mut d = Driver {
        ring: None,
        lines: Vec::new(),
        calls: UringCalls::default(),
        tag: 0,
    };
    let mut arena = Arena {
        bufs: Vec::new(),
        iovs: Vec::new(),
    };
    for group in groups {
        group(&mut d, &files, &mut arena)?;
    }
    // The rings go before the memory their requests used (every request is
    // reaped by now, so none is still writing into it).
    drop(d.ring.take());
    Ok(Truth {
        lines: d.lines,
        uring: Some(d.calls),
        ..Truth::default()
    })
}

/// The files the requests go to.
struct Files {
    /// O_DIRECT over `FILE_SIZE` written bytes.
    direct: File,
    /// The page cache: a buffered WRITE.
    buffered: File,
}

impl Files {
    fn new(dir: &Path) -> io::Result<Self> {
        // Written through O_DIRECT, not the page cache: an O_DIRECT write over
        // cached pages must invalidate them, which io_uring's first,
        // non-blocking attempt refuses (-EAGAIN after its dispatch), so the
        // write would be dispatched a second time from an io-wq worker.
        let direct = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(dir.join("uring.dat"))?;
        let mut chunk = AlignedBuf::zeroed(1 << 20, BLOCK);
        chunk.fill(0x5a);
        for at in (0..FILE_SIZE).step_by(chunk.len()) {
            std::os::unix::fs::FileExt::write_all_at(&direct, &chunk, at as u64)?;
        }
        direct.sync_all()?;
        let buffered = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("uring-buffered.dat"))?;
        buffered.set_len(1 << 20)?;
        Ok(Self { direct, buffered })
    }
}

/// One request the scenario submits, and what it knows of it before the CQE.
struct Request {
    sqe: squeue::Entry,
    fd: RawFd,
    offset: u64,
    segs: u64,
    /// Bytes asked for; None where the kernel reads no iovec of the request
    /// (more than UIO_MAXIOV of them), which leaves the tracer none either.
    bytes: Option<u64>,
    /// IOSQE_* flags set on the SQE, by name.
    sqe_flags: &'static [&'static str],
    /// O_DIRECT: the filesystem dispatches it (iomap) and its bytes are bios.
    direct: bool,
}

impl Request {
    fn opcode(&self) -> u8 {
        self.sqe.get_opcode() as u8
    }

    /// An iomap direct-I/O dispatch is expected: an O_DIRECT read or write
    /// the kernel accepts (FSYNC moves no data; a rejected iovec array never
    /// reaches the filesystem).
    fn dispatch(&self) -> bool {
        self.direct && self.opcode() != IORING_OP_FSYNC && self.segs <= u64::from(UIO_MAXIOV)
    }
}

fn read(fd: RawFd, buf: &mut AlignedBuf, offset: u64, tag: u64, direct: bool) -> Request {
    Request {
        sqe: opcode::Read::new(Fd(fd), buf.as_mut_ptr(), buf.len() as u32)
            .offset(offset)
            .build()
            .user_data(tag),
        fd,
        offset,
        segs: 1,
        bytes: Some(buf.len() as u64),
        sqe_flags: &[],
        direct,
    }
}

fn write(fd: RawFd, buf: &AlignedBuf, offset: u64, tag: u64, direct: bool) -> Request {
    Request {
        sqe: opcode::Write::new(Fd(fd), buf.as_ptr(), buf.len() as u32)
            .offset(offset)
            .build()
            .user_data(tag),
        fd,
        offset,
        segs: 1,
        bytes: Some(buf.len() as u64),
        sqe_flags: &[],
        direct,
    }
}

/// A READV (or WRITEV) of `sizes` segments, O_DIRECT.
fn vectored(
    fd: RawFd,
    arena: &mut Arena,
    sizes: &[usize],
    offset: u64,
    tag: u64,
    write: bool,
) -> Request {
    let iov = arena.iov(sizes);
    let (ptr, segs) = (iovec_array(iov), iov.len() as u32);
    let sqe = if write {
        opcode::Writev::new(Fd(fd), ptr, segs)
            .offset(offset)
            .build()
    } else {
        opcode::Readv::new(Fd(fd), ptr, segs).offset(offset).build()
    };
    Request {
        sqe: sqe.user_data(tag),
        fd,
        offset,
        segs: u64::from(segs),
        bytes: (segs <= UIO_MAXIOV).then(|| iov.iter().map(|v| v.iov_len).sum()),
        sqe_flags: &[],
        direct: true,
    }
}

fn fsync(fd: RawFd, tag: u64) -> Request {
    Request {
        sqe: opcode::Fsync::new(Fd(fd)).build().user_data(tag),
        fd,
        offset: 0,
        segs: 0,
        bytes: Some(0),
        sqe_flags: &[],
        direct: true,
    }
}

/// The rings and what the scenario did through them.
struct Driver {
    /// The plain ring every group but `sqpoll` uses, set up at first use.
    ring: Option<IoUring>,
    lines: Vec<serde_json::Value>,
    calls: UringCalls,
    tag: u64,
}

impl Driver {
    fn next_tag(&mut self) -> u64 {
        self.tag += 1;
        self.tag
    }

    /// The plain ring: no setup flags.
    fn ring(&mut self) -> io::Result<IoUring> {
        match self.ring.take() {
            Some(ring) => Ok(ring),
            None => {
                let ring = IoUring::new(RING_ENTRIES)?;
                self.ring_line("plain", &ring);
                Ok(ring)
            }
        }
    }

    fn ring_line(&mut self, label: &str, ring: &IoUring) {
        self.calls.rings += 1;
        let params = ring.params();
        self.lines.push(json!({
            "type": "ring", "ring": label, "sqpoll": params.is_setup_sqpoll(),
            "sq_entries": params.sq_entries(), "cq_entries": params.cq_entries(),
        }));
    }

    /// Runs `batch` on the plain ring.
    fn run(&mut self, batch: Vec<Request>) -> io::Result<()> {
        let mut ring = self.ring()?;
        let outcome = self.run_on(&mut ring, "plain", batch);
        self.ring = Some(ring);
        outcome
    }

    /// Puts `batch` in `ring`'s SQ ring, submits it with one io_uring_enter
    /// that also waits for all of it (waiting again while CQEs are missing),
    /// and prints each request's truth with its CQE's result.
    fn run_on(&mut self, ring: &mut IoUring, label: &str, batch: Vec<Request>) -> io::Result<()> {
        {
            let mut sq = ring.submission();
            for request in &batch {
                // SAFETY: every buffer and iovec array an SQE points at is in
                // the scenario's arena (registered buffers included), which
                // outlives the rings; this call returns only once every CQE
                // of the batch is reaped.
                unsafe { sq.push(&request.sqe) }
                    .map_err(|_| io::Error::other("the SQ ring is full"))?;
            }
        }
        self.calls.sqes_submitted += batch.len() as u64;
        let pid = std::process::id();
        let mut left = batch.len();
        while left > 0 {
            // One io_uring_enter whatever the ring: `submit_and_wait` makes
            // the call whenever it waits (SQPOLL included).
            self.calls.enter_calls += 1;
            match ring.submit_and_wait(left) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for cqe in ring.completion() {
                let tag = cqe.user_data();
                let r = batch
                    .iter()
                    .find(|r| r.sqe.get_user_data() == tag)
                    .expect("a CQE of this batch");
                let res = i64::from(cqe.result());
                let dispatch = r.dispatch();
                // Bytes that moved under O_DIRECT moved as bios; FSYNC's
                // (a cache flush, a journal commit) depend on what was dirty.
                let bios = (r.opcode() != IORING_OP_FSYNC).then_some(dispatch && res > 0);
                self.lines.push(json!({
                    "type": "iocb", "api": "io_uring", "ring": label, "pid": pid,
                    "tag": tag, "user_data": tag,
                    "op": uring_op_name(u16::from(r.opcode())), "opcode": r.opcode(),
                    "fd": r.fd, "offset": r.offset, "segs": r.segs, "bytes": r.bytes,
                    "res": res, "reaped": true, "sqe_flags": r.sqe_flags,
                    "direct": r.direct, "dispatch": dispatch, "bios": bios,
                }));
                left -= 1;
                self.calls.cqes_reaped += 1;
            }
        }
        Ok(())
    }
}

/// READ, WRITE, READV and WRITEV of 1, 2, 7, 64 and 1024 segments, 16 READs
/// in one io_uring_enter, READ_FIXED and WRITE_FIXED, FSYNC, a
/// 1025-segment READV (-EINVAL) and a read across the end of the file.
fn basic(d: &mut Driver, files: &Files, arena: &mut Arena) -> io::Result<()> {
    let fd = files.direct.as_raw_fd();
    let t = d.next_tag();
    d.run(vec![read(fd, arena.buf(BLOCK), 0, t, true)])?;
    let t = d.next_tag();
    d.run(vec![write(fd, arena.buf(BLOCK), BLOCK as u64, t, true)])?;

    for segs in [1usize, 2, 7, 64, 1024] {
        for write in [false, true] {
            let t = d.next_tag();
            d.run(vec![vectored(fd, arena, &vec![BLOCK; segs], 0, t, write)])?;
        }
    }

    let mut batch = Vec::new();
    for i in 0..16 {
        let t = d.next_tag();
        batch.push(read(fd, arena.buf(BLOCK), (i * BLOCK) as u64, t, true));
    }
    d.run(batch)?;

    fixed(d, fd, arena)?;

    let t = d.next_tag();
    d.run(vec![fsync(fd, t)])?;

    // UIO_MAXIOV + 1 segments: the kernel fails the request, -EINVAL in its CQE.
    let t = d.next_tag();
    d.run(vec![vectored(fd, arena, &vec![BLOCK; 1025], 0, t, false)])?;

    // 8 KiB asked from the last 4 KiB of the file: a short read.
    let t = d.next_tag();
    d.run(vec![read(
        fd,
        arena.buf(2 * BLOCK),
        (FILE_SIZE - BLOCK) as u64,
        t,
        true,
    )])
}

/// READ_FIXED into and WRITE_FIXED from buffers registered with the ring.
fn fixed(d: &mut Driver, fd: RawFd, arena: &mut Arena) -> io::Result<()> {
    const LEN: usize = 2 * BLOCK;
    let start = arena.bufs.len();
    let iov: Vec<libc::iovec> = (0..2)
        .map(|_| {
            let buf = arena.buf(LEN);
            libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            }
        })
        .collect();
    let ring = d.ring()?;
    // SAFETY: the two buffers are in the arena, which outlives the ring (and
    // so the registration).
    let registered = unsafe { ring.submitter().register_buffers(&iov) };
    d.ring = Some(ring);
    registered?;
    let mut request = |d: &mut Driver, index: u16, offset: u64, write: bool| {
        let tag = d.next_tag();
        let buf = &mut arena.bufs[start + usize::from(index)];
        let sqe = if write {
            opcode::WriteFixed::new(Fd(fd), buf.as_ptr(), LEN as u32, index)
                .offset(offset)
                .build()
        } else {
            opcode::ReadFixed::new(Fd(fd), buf.as_mut_ptr(), LEN as u32, index)
                .offset(offset)
                .build()
        };
        Request {
            sqe: sqe.user_data(tag),
            fd,
            offset,
            segs: 1,
            bytes: Some(LEN as u64),
            sqe_flags: &[],
            direct: true,
        }
    };
    let r = request(d, 0, 1 << 20, false);
    d.run(vec![r])?;
    let r = request(d, 1, 2 << 20, true);
    d.run(vec![r])
}

/// A chain in one submission: WRITE → READ → FSYNC, each linked to the next
/// (IOSQE_IO_LINK): the kernel issues each after the one before completes.
fn link(d: &mut Driver, files: &Files, arena: &mut Arena) -> io::Result<()> {
    let fd = files.direct.as_raw_fd();
    let at = 3 << 20;
    let t = d.next_tag();
    let mut w = write(fd, arena.buf(BLOCK), at, t, true);
    let t = d.next_tag();
    let mut r = read(fd, arena.buf(BLOCK), at, t, true);
    for request in [&mut w, &mut r] {
        request.sqe = request.sqe.clone().flags(squeue::Flags::IO_LINK);
        request.sqe_flags = &["IO_LINK"];
    }
    let t = d.next_tag();
    d.run(vec![w, r, fsync(fd, t)])
}

/// Requests the kernel finishes in an io-wq worker rather than in
/// io_uring_enter: a buffered WRITE, and an O_DIRECT READ forced there
/// with IOSQE_ASYNC. The worker is a thread of this process.
fn punt(d: &mut Driver, files: &Files, arena: &mut Arena) -> io::Result<()> {
    let t = d.next_tag();
    let buf = arena.buf(BLOCK);
    buf.fill(0xa5);
    d.run(vec![write(files.buffered.as_raw_fd(), buf, 0, t, false)])?;
    let t = d.next_tag();
    let mut r = read(files.direct.as_raw_fd(), arena.buf(BLOCK), 0, t, true);
    r.sqe = r.sqe.flags(squeue::Flags::ASYNC);
    r.sqe_flags = &["ASYNC"];
    d.run(vec![r])
}

/// A ring whose SQ is polled by a kernel thread (IORING_SETUP_SQPOLL), if
/// io_uring_setup allows it: that thread, of this process, submits a READV
/// of 2 segments and a WRITE. Its `ring` line says whether it was set up.
fn sqpoll(d: &mut Driver, files: &Files, arena: &mut Arena) -> io::Result<()> {
    let mut ring = match IoUring::builder().setup_sqpoll(1000).build(RING_ENTRIES) {
        Ok(ring) => ring,
        Err(e) => {
            d.lines.push(json!({
                "type": "ring", "ring": "sqpoll", "sqpoll": false, "error": e.to_string(),
            }));
            return Ok(());
        }
    };
    d.ring_line("sqpoll", &ring);
    let fd = files.direct.as_raw_fd();
    let t = d.next_tag();
    let readv = vectored(fd, arena, &[BLOCK; 2], 0, t, false);
    let t = d.next_tag();
    let w = write(fd, arena.buf(BLOCK), 5 << 20, t, true);
    d.run_on(&mut ring, "sqpoll", vec![readv, w])
}
