//! The process the root integration tests trace (its own package, test support
//! only: `cargo build -p aio-trace-testee`, which `cargo xtask test` does).
//!
//! `aio-trace-testee SCENARIO DIR` creates its file under DIR, prints
//! `ready`, waits for a line on stdin (so the tracer can attach with its pid
//! first), performs the scenario's AIO or io_uring I/O and prints the ground
//! truth as JSON lines: one `{"type":"iocb"}` per request (tagged by aio_data
//! or user_data; io_uring's with `"api":"io_uring"`, see `uring.rs`) and one
//! `{"type":"calls"}` with the AIO syscalls it made (and, after io_uring, one
//! `{"type":"uring_calls"}`).

mod unmapped;
mod uring;

use std::{
    fs::OpenOptions,
    io::{self, BufRead, Write},
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::Path,
};

use aio_trace::{
    aio::{self, AioContext, AlignedBuf},
    workload::{self, Engine, Mode},
};
use aio_trace_common::{IoEvent, Iocb, Iovec};
use serde_json::json;

const BLOCK: usize = 4096;
const FILE_SIZE: usize = 8 << 20;

/// What the testee did, for the test to compare with the trace.
#[derive(Default)]
struct Truth {
    io_submit_calls: u64,
    iocbs_submitted: u64,
    io_getevents_calls: u64,
    empty_getevents: u64,
    events_reaped: u64,
    lines: Vec<serde_json::Value>,
    uring: Option<uring::UringCalls>,
}

/// One iocb the scenario will submit, with what the trace should say about it.
struct Planned {
    iocb: Box<Iocb>,
    op: &'static str,
    segs: u64,
    bytes: Option<u64>,
}

struct Driver {
    ctx: AioContext,
    truth: Truth,
    tag: u64,
}

impl Driver {
    fn next_tag(&mut self) -> u64 {
        self.tag += 1;
        self.tag
    }

    /// Submits `batch` in one io_submit and reaps it `reap_at_a_time` events per
    /// io_getevents; records the ground truth of each iocb.
    fn run(&mut self, mut batch: Vec<Planned>, reap_at_a_time: usize) -> io::Result<()> {
        let ptrs: Vec<*mut Iocb> = batch
            .iter_mut()
            .map(|p| &mut *p.iocb as *mut Iocb)
            .collect();
        self.truth.io_submit_calls += 1;
        let accepted = match self.ctx.submit(&ptrs) {
            Ok(n) => n,
            Err(e) => {
                // Rejected as a whole: the first iocb carries the errno.
                let p = &batch[0];
                self.truth.lines.push(json!({
                    "type": "iocb", "tag": p.iocb.aio_data, "op": p.op, "segs": p.segs,
                    "bytes": p.bytes, "res": -(e.raw_os_error().unwrap_or(0) as i64),
                    "ctx": self.ctx.id(), "reaped": false,
                }));
                return Ok(());
            }
        };
        assert_eq!(
            accepted,
            batch.len(),
            "scenario expects whole batches accepted"
        );
        self.truth.iocbs_submitted += accepted as u64;
        let mut remaining = accepted;
        let mut events = vec![IoEvent::default(); reap_at_a_time];
        while remaining > 0 {
            let want = remaining.min(reap_at_a_time);
            self.truth.io_getevents_calls += 1;
            let got = self.ctx.get_events(want, &mut events[..want], None)?;
            if got == 0 {
                self.truth.empty_getevents += 1;
            }
            self.truth.events_reaped += got as u64;
            for ev in &events[..got] {
                let p = batch
                    .iter()
                    .find(|p| p.iocb.aio_data == ev.data)
                    .expect("event of ours");
                self.truth.lines.push(json!({
                    "type": "iocb", "tag": ev.data, "op": p.op, "segs": p.segs, "bytes": p.bytes,
                    "res": ev.res, "ctx": self.ctx.id(), "reaped": true,
                }));
            }
            remaining -= got;
        }
        Ok(())
    }

    /// An io_getevents that finds nothing (zero timeout).
    fn empty_reap(&mut self) -> io::Result<()> {
        let mut events = [IoEvent::default(); 1];
        self.truth.io_getevents_calls += 1;
        let got = self
            .ctx
            .get_events(0, &mut events, Some(std::time::Duration::ZERO))?;
        assert_eq!(got, 0);
        self.truth.empty_getevents += 1;
        Ok(())
    }
}

/// Buffers for vectored iocbs: kept alive (and unmoved) until the scenario ends.
struct Arena {
    bufs: Vec<AlignedBuf>,
    iovs: Vec<Box<[Iovec]>>,
}

impl Arena {
    fn iov(&mut self, sizes: &[usize]) -> &[Iovec] {
        let iov: Box<[Iovec]> = sizes
            .iter()
            .map(|&len| {
                let mut buf = AlignedBuf::zeroed(len, BLOCK);
                let v = aio::iovec(&mut buf);
                self.bufs.push(buf);
                v
            })
            .collect();
        self.iovs.push(iov);
        self.iovs.last().expect("just pushed")
    }
    fn buf(&mut self, len: usize) -> &mut AlignedBuf {
        self.bufs.push(AlignedBuf::zeroed(len, BLOCK));
        self.bufs.last_mut().expect("just pushed")
    }
}

/// PREAD/PWRITE/PREADV/PWRITEV over 1, 8, 9, 64 and 1024 segments, mixed
/// segment sizes, a batch of 16 reaped three at a time, FSYNC, a 1025-segment
/// PREADV the kernel rejects, and a short read at end of file.
fn basic(dir: &Path) -> io::Result<Truth> {
    let file = open_scratch(dir, "basic.dat")?;
    file.set_len(FILE_SIZE as u64)?;
    let fd = file.as_raw_fd();
    let mut d = Driver {
        ctx: AioContext::new(64)?,
        truth: Truth::default(),
        tag: 0,
    };
    let mut arena = Arena {
        bufs: Vec::new(),
        iovs: Vec::new(),
    };

    let t = d.next_tag();
    let buf = arena.buf(BLOCK);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::pread(fd, buf, 0, t)),
            op: "PREAD",
            segs: 1,
            bytes: Some(BLOCK as u64),
        }],
        1,
    )?;
    let t = d.next_tag();
    let buf = arena.buf(BLOCK);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::pwrite(fd, buf, BLOCK as i64, t)),
            op: "PWRITE",
            segs: 1,
            bytes: Some(BLOCK as u64),
        }],
        1,
    )?;

    for segs in [1usize, 8, 9, 64, 1024] {
        for write in [false, true] {
            let t = d.next_tag();
            let iov = arena.iov(&vec![BLOCK; segs]);
            let (iocb, op) = if write {
                (aio::pwritev(fd, iov, 0, t), "PWRITEV")
            } else {
                (aio::preadv(fd, iov, 0, t), "PREADV")
            };
            d.run(
                vec![Planned {
                    iocb: Box::new(iocb),
                    op,
                    segs: segs as u64,
                    bytes: Some((segs * BLOCK) as u64),
                }],
                1,
            )?;
        }
    }

    // Mixed segment sizes, each a multiple of the 512-byte logical block.
    let sizes = [512usize, 4096, 1536, 8192, 2048, 512];
    let t = d.next_tag();
    let iov = arena.iov(&sizes);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::preadv(fd, iov, 8192, t)),
            op: "PREADV",
            segs: sizes.len() as u64,
            bytes: Some(sizes.iter().sum::<usize>() as u64),
        }],
        1,
    )?;

    // 20 iocbs in one io_submit (the tracer reads their pointers 16 at a
    // time: one full chunk and part of another), reaped three at a time.
    let mut batch = Vec::new();
    for i in 0..20 {
        let t = d.next_tag();
        let buf = arena.buf(BLOCK);
        batch.push(Planned {
            iocb: Box::new(aio::pread(fd, buf, (i * BLOCK) as i64, t)),
            op: "PREAD",
            segs: 1,
            bytes: Some(BLOCK as u64),
        });
    }
    d.run(batch, 3)?;

    let t = d.next_tag();
    d.run(
        vec![Planned {
            iocb: Box::new(aio::fsync(fd, t)),
            op: "FSYNC",
            segs: 0,
            bytes: Some(0),
        }],
        1,
    )?;

    // UIO_MAXIOV + 1 segments: io_submit fails with -EINVAL; bytes unknown.
    let t = d.next_tag();
    let iov = arena.iov(&vec![512; 1025]);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::preadv(fd, iov, 0, t)),
            op: "PREADV",
            segs: 1025,
            bytes: None,
        }],
        1,
    )?;

    // Asks 8 KiB from the last 4 KiB of the file: res is 4096.
    let t = d.next_tag();
    let buf = arena.buf(2 * BLOCK);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::pread(fd, buf, (FILE_SIZE - BLOCK) as i64, t)),
            op: "PREAD",
            segs: 1,
            bytes: Some(2 * BLOCK as u64),
        }],
        1,
    )?;

    d.empty_reap()?;
    let ctx = d.ctx.id();
    let mut truth = std::mem::take(&mut d.truth);
    truth.lines.push(json!({"type": "ctx", "ctx": ctx}));
    Ok(truth)
}

/// The kernel's `struct aio_ring` header, mapped at the address the context id is.
#[repr(C)]
struct AioRing {
    id: u32,
    nr: u32,
    head: u32,
    tail: u32,
    magic: u32,
    compat_features: u32,
    incompat_features: u32,
    header_length: u32,
}

fn open_scratch(dir: &Path, name: &str) -> io::Result<std::fs::File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.join(name))?;
    file.set_len(1 << 20)?;
    Ok(file)
}

/// Submits four PREADs and reaps them from the AIO ring in user memory, as
/// fio --userspace_reap does: no io_getevents at all. Then stays alive long
/// enough for the tracer to age the entries out.
fn ring_reap(dir: &Path, direct: bool) -> io::Result<Truth> {
    let file = if direct {
        open_scratch(dir, "ring.dat")?
    } else {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("ring-buffered.dat"))?;
        file.set_len(1 << 20)?;
        file
    };
    let ctx = AioContext::new(16)?;
    let mut bufs: Vec<AlignedBuf> = (0..4).map(|_| AlignedBuf::zeroed(BLOCK, BLOCK)).collect();
    let mut iocbs: Vec<Iocb> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| aio::pread(file.as_raw_fd(), b, (i * BLOCK) as i64, i as u64 + 1))
        .collect();
    let ptrs: Vec<*mut Iocb> = iocbs.iter_mut().map(|c| c as *mut Iocb).collect();
    assert_eq!(ctx.submit(&ptrs)?, 4);
    let ring = ctx.id() as *mut AioRing;
    // SAFETY: the context id is the address of the kernel-mapped ring header.
    unsafe {
        assert_eq!(
            std::ptr::read_volatile(&(*ring).magic),
            0xa10a10a1,
            "AIO ring magic"
        );
        let nr = std::ptr::read_volatile(&(*ring).nr);
        loop {
            let head = std::ptr::read_volatile(&(*ring).head);
            let tail = std::ptr::read_volatile(&(*ring).tail);
            if (tail + nr - head) % nr >= 4 {
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                std::ptr::write_volatile(&mut (*ring).head, tail);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(2500));
    Ok(Truth {
        io_submit_calls: 1,
        iocbs_submitted: 4,
        ..Truth::default()
    })
}

/// Submits four PREADs and destroys the context without reaping them.
fn destroy_inflight(dir: &Path) -> io::Result<Truth> {
    let file = open_scratch(dir, "destroy.dat")?;
    let ctx = AioContext::new(16)?;
    let mut bufs: Vec<AlignedBuf> = (0..4).map(|_| AlignedBuf::zeroed(BLOCK, BLOCK)).collect();
    let mut iocbs: Vec<Iocb> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| aio::pread(file.as_raw_fd(), b, (i * BLOCK) as i64, i as u64 + 1))
        .collect();
    let ptrs: Vec<*mut Iocb> = iocbs.iter_mut().map(|c| c as *mut Iocb).collect();
    assert_eq!(ctx.submit(&ptrs)?, 4);
    drop(ctx); // io_destroy waits for the four and discards their events.
    Ok(Truth {
        io_submit_calls: 1,
        iocbs_submitted: 4,
        ..Truth::default()
    })
}

/// libaio's harness case 18's shape: threads that each, again and again,
/// set up a context, submit one O_DIRECT read and destroy the context
/// without io_getevents (io_destroy waits for the read). The kernel hands
/// a destroyed context's id to the next io_setup, often another thread's,
/// and each thread's iocb is the same stack address every time.
fn destroy_churn(dir: &Path) -> io::Result<Truth> {
    const THREADS: usize = 8;
    const ROUNDS: usize = 250;
    let file = open_scratch(dir, "churn.dat")?;
    let fd = file.as_raw_fd();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || -> io::Result<()> {
                    let mut buf = AlignedBuf::zeroed(BLOCK, BLOCK);
                    for round in 0..ROUNDS {
                        let ctx = AioContext::new(1)?;
                        let tag = ((t as u64) << 32) | round as u64;
                        let mut iocb = aio::pread(fd, &mut buf, 0, tag);
                        let p = std::hint::black_box(&raw mut iocb);
                        assert_eq!(ctx.submit(&[p])?, 1);
                        drop(ctx);
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("churn thread")?;
        }
        Ok::<_, io::Error>(())
    })?;
    let n = (THREADS * ROUNDS) as u64;
    Ok(Truth {
        io_submit_calls: n,
        iocbs_submitted: n,
        ..Truth::default()
    })
}

/// libaio's harness case 3's shape: io_submit calls the kernel refuses
/// because their pointers are bad. Each line is one call and what it
/// returned.
fn bad_pointers(dir: &Path) -> io::Result<Truth> {
    let file = open_scratch(dir, "bad.dat")?;
    let ctx = AioContext::new(4)?;
    let mut buf = AlignedBuf::zeroed(BLOCK, BLOCK);
    let mut good = aio::pread(file.as_raw_fd(), &mut buf, 0, 1);
    let good_ptr = &raw mut good;
    let kernel_ptr = 0xffff_ffff_8000_0000u64 as *mut Iocb;
    let null_then_good = [std::ptr::null_mut(), good_ptr];
    let kernel_then_good = [kernel_ptr, good_ptr];
    let calls: [(&str, u64, i64, *const *mut Iocb); 5] = [
        ("bad ctx", 0xdead_0000, 1, [good_ptr].as_ptr()),
        ("null array", ctx.id(), 1, std::ptr::null()),
        (
            "unmapped array",
            ctx.id(),
            1,
            usize::MAX as *const *mut Iocb,
        ),
        ("null iocb", ctx.id(), 2, null_then_good.as_ptr()),
        ("kernel iocb", ctx.id(), 2, kernel_then_good.as_ptr()),
    ];
    let mut lines = Vec::new();
    for (what, id, nr, array) in calls {
        // SAFETY: io_submit reads the pointers and copies the iocbs; bad
        // ones make it fail with EFAULT or EINVAL, which is the point.
        let ret = unsafe { libc::syscall(libc::SYS_io_submit, id, nr, array) };
        let res = if ret < 0 {
            -i64::from(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            ret
        };
        lines.push(json!({"type": "submit", "what": what, "nr": nr, "ret": res}));
    }
    std::hint::black_box(&good);
    Ok(Truth {
        lines,
        io_submit_calls: calls.len() as u64,
        ..Truth::default()
    })
}

/// Extents of a file, by FIEMAP (`fm_extent_count = 0` asks only for the count).
fn extent_count(file: &std::fs::File) -> io::Result<u32> {
    #[repr(C)]
    struct Fiemap {
        start: u64,
        length: u64,
        flags: u32,
        mapped_extents: u32,
        extent_count: u32,
        reserved: u32,
    }
    const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
    const FIEMAP_FLAG_SYNC: u32 = 1;
    let mut map = Fiemap {
        start: 0,
        length: u64::MAX,
        flags: FIEMAP_FLAG_SYNC,
        mapped_extents: 0,
        extent_count: 0,
        reserved: 0,
    };
    // SAFETY: FIEMAP with no extent array only writes the header.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP, &mut map) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(map.mapped_extents)
}

/// Known block-layer layout: a preallocated, written, single-extent file read
/// and written with O_DIRECT. Prints each iocb with its expected dispatches.
fn block(dir: &Path) -> io::Result<Truth> {
    let max_bytes: usize =
        std::env::var("AIO_TRACE_TEST_BIG").map_or(8 << 20, |v| v.parse().expect("size"));
    let size = 2 * max_bytes + (1 << 20);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.join("block.dat"))?;
    // SAFETY: plain syscall on our fd.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size as libc::off_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Written, so that reads reach the device (unwritten extents read as zeros without I/O).
    let mut chunk = AlignedBuf::zeroed(1 << 20, BLOCK);
    chunk.fill(0x5a);
    for at in (0..size).step_by(1 << 20) {
        std::os::unix::fs::FileExt::write_at(&file, &chunk, at as u64)?;
    }
    file.sync_all()?;
    let extents = extent_count(&file)?;
    let fd = file.as_raw_fd();
    let mut d = Driver {
        ctx: AioContext::new(64)?,
        truth: Truth::default(),
        tag: 0,
    };
    let mut arena = Arena {
        bufs: Vec::new(),
        iovs: Vec::new(),
    };

    let t = d.next_tag();
    let iov = arena.iov(&[BLOCK; 8]);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::preadv(fd, iov, 0, t)),
            op: "PREADV",
            segs: 8,
            bytes: Some(8 * BLOCK as u64),
        }],
        1,
    )?;

    let mut batch = Vec::new();
    for i in 0..8 {
        let t = d.next_tag();
        let buf = arena.buf(BLOCK);
        batch.push(Planned {
            iocb: Box::new(aio::pread(fd, buf, (i * BLOCK) as i64, t)),
            op: "PREAD",
            segs: 1,
            bytes: Some(BLOCK as u64),
        });
    }
    d.run(batch, 8)?;

    // More than the device's max I/O size, in 128 KiB segments.
    let t = d.next_tag();
    let segs = 2 * max_bytes / (128 << 10);
    let iov = arena.iov(&vec![128 << 10; segs]);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::preadv(fd, iov, (1 << 20) as i64, t)),
            op: "PREADV",
            segs: segs as u64,
            bytes: Some(2 * max_bytes as u64),
        }],
        1,
    )?;

    let t = d.next_tag();
    let iov = arena.iov(&[BLOCK; 8]);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::pwritev(fd, iov, (1 << 20) as i64, t)),
            op: "PWRITEV",
            segs: 8,
            bytes: Some(8 * BLOCK as u64),
        }],
        1,
    )?;

    // The synchronous vectored syscall over the same kind of range.
    let iov = arena.iov(&[BLOCK; 8]);
    // SAFETY: iov points at live, writable buffers.
    let got = unsafe { libc::preadv(fd, iov.as_ptr().cast(), 8, 65536) };
    let mut truth = std::mem::take(&mut d.truth);
    truth.lines.push(json!({"type": "syscall", "op": "PREADV", "segs": 8, "bytes": 8 * BLOCK, "res": got, "offset": 65536}));
    truth
        .lines
        .push(json!({"type": "layout", "extents": extents}));
    Ok(truth)
}

/// A raw block device (no filesystem, so no dispatch events): bios must be
/// matched to iocbs by sector.
fn raw(device: &Path) -> io::Result<Truth> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(device)?;
    let fd = file.as_raw_fd();
    let mut d = Driver {
        ctx: AioContext::new(64)?,
        truth: Truth::default(),
        tag: 0,
    };
    let mut arena = Arena {
        bufs: Vec::new(),
        iovs: Vec::new(),
    };
    let t = d.next_tag();
    let iov = arena.iov(&[BLOCK; 8]);
    d.run(
        vec![Planned {
            iocb: Box::new(aio::preadv(fd, iov, 65536, t)),
            op: "PREADV",
            segs: 8,
            bytes: Some(8 * BLOCK as u64),
        }],
        1,
    )?;
    let mut batch = Vec::new();
    for i in 0..4 {
        let t = d.next_tag();
        let buf = arena.buf(BLOCK);
        // Spread out so the block layer cannot merge them.
        batch.push(Planned {
            iocb: Box::new(aio::pread(fd, buf, ((i * 64 + 256) * BLOCK) as i64, t)),
            op: "PREAD",
            segs: 1,
            bytes: Some(BLOCK as u64),
        });
    }
    d.run(batch, 4)?;
    Ok(std::mem::take(&mut d.truth))
}

/// Forks children that each set up a context, submit four PREADs and are
/// killed with SIGKILL before reaping them; `AIO_TRACE_TEST_CYCLES` times.
fn fork_kill(dir: &Path) -> io::Result<Truth> {
    let cycles: u64 =
        std::env::var("AIO_TRACE_TEST_CYCLES").map_or(1000, |v| v.parse().expect("cycles"));
    let file = open_scratch(dir, "killed.dat")?;
    let fd = file.as_raw_fd();
    // Everything the child touches is prepared here: after fork it only makes syscalls.
    let mut bufs: Vec<AlignedBuf> = (0..4).map(|_| AlignedBuf::zeroed(BLOCK, BLOCK)).collect();
    let mut iocbs: Vec<Iocb> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| aio::pread(fd, b, (i * BLOCK) as i64, i as u64))
        .collect();
    let ptrs: Vec<*mut Iocb> = iocbs.iter_mut().map(|c| c as *mut Iocb).collect();
    for _ in 0..cycles {
        let mut ready = [0i32; 2];
        // SAFETY: plain syscalls; the child below only calls async-signal-safe ones.
        unsafe {
            if libc::pipe(ready.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let child = libc::fork();
            if child == 0 {
                // A name of its own, for the tracer's comm filter: tests run in parallel.
                libc::prctl(libc::PR_SET_NAME, c"aio-fork-kill".as_ptr());
                let mut ctx: u64 = 0;
                libc::syscall(libc::SYS_io_setup, 8, &mut ctx as *mut u64);
                libc::syscall(libc::SYS_io_submit, ctx, 4 as libc::c_long, ptrs.as_ptr());
                libc::write(ready[1], b"x".as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
            let mut byte = 0u8;
            libc::read(ready[0], (&raw mut byte).cast(), 1);
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
            libc::close(ready[0]);
            libc::close(ready[1]);
        }
    }
    Ok(Truth {
        iocbs_submitted: 4 * cycles,
        ..Truth::default()
    })
}

/// How the threaded scenarios' submitters place their iocbs.
#[derive(Clone, Copy)]
enum IocbMemory {
    /// One `struct iocb` (and its iovec array) on the submitter's stack,
    /// rewritten and submitted again while the previous submission is still
    /// in flight: the kernel copied it at submit, so this is legal, and the
    /// completions are told apart by nothing (same address, same aio_data).
    ReusedStack,
    /// Each submitter's own calloc'd array of iocbs and of iovecs, every
    /// entry written just before its submit (the pages are faulted in by
    /// those writes, one at a time).
    DistinctHeap,
}

/// Submitters per threaded scenario, their segment counts, and iocbs each.
const THREAD_SEGS: [usize; 4] = [1, 4, 7, 10];
const THREAD_IOCBS: usize = 2000;

/// Four threads share one context, each submitting `THREAD_IOCBS` PREADVs
/// (1, 4, 7 and 10 segments of 4 KiB, O_DIRECT) one at a time, one every
/// ~20 µs, while a fifth thread reaps them all with io_getevents (min 1,
/// max 64; with a 5 ms timeout when `timeout`, so some calls return
/// nothing). Each reaped event is one truth line; reap batches mix threads.
fn threads(dir: &Path, memory: IocbMemory, timeout: bool) -> io::Result<Truth> {
    const SPAN: usize = 10 * BLOCK;
    const FILE_BYTES: usize = 16 << 20;
    let path = dir.join("threads.dat");
    std::fs::write(&path, vec![0x5au8; FILE_BYTES])?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)?;
    let fd = file.as_raw_fd();
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack
    // (inherited by the threads spawned below), so the ~20 µs pauses are ~20 µs.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    let ctx = AioContext::new(4096)?;
    let total = THREAD_SEGS.len() * THREAD_IOCBS;
    let ctx = &ctx;
    // Read into by every submission of a thread; they outlive the reaper.
    let mut bufs: Vec<Vec<AlignedBuf>> = THREAD_SEGS
        .iter()
        .map(|&segs| {
            (0..segs)
                .map(|_| AlignedBuf::zeroed(BLOCK, BLOCK))
                .collect()
        })
        .collect();
    let iov_templates: Vec<Vec<Iovec>> = bufs
        .iter_mut()
        .map(|b| b.iter_mut().map(|b| aio::iovec(b)).collect())
        .collect();
    let iov_templates = &iov_templates;
    std::thread::scope(|scope| {
        let reaper = {
            scope.spawn(move || -> io::Result<Truth> {
                let mut truth = Truth::default();
                let mut events = vec![IoEvent::default(); 64];
                let wait = timeout.then(|| std::time::Duration::from_millis(5));
                while truth.events_reaped < total as u64 {
                    truth.io_getevents_calls += 1;
                    let got = ctx.get_events(1, &mut events, wait)?;
                    if got == 0 {
                        truth.empty_getevents += 1;
                    }
                    truth.events_reaped += got as u64;
                    for ev in &events[..got] {
                        let segs = THREAD_SEGS[(ev.data >> 32) as usize - 1] as u64;
                        truth.lines.push(json!({
                            "type": "iocb", "tag": ev.data, "iocb": ev.obj, "op": "PREADV",
                            "segs": segs, "bytes": segs * BLOCK as u64, "res": ev.res,
                            "reaped": true,
                        }));
                    }
                }
                Ok(truth)
            })
        };
        let submitters: Vec<_> = THREAD_SEGS
            .iter()
            .enumerate()
            .map(|(t, &segs)| {
                scope.spawn(move || -> io::Result<()> {
                    let iov_template = iov_templates[t].as_slice();
                    let thread_tag = (t as u64 + 1) << 32;
                    let offset =
                        |i: usize| (((t * THREAD_IOCBS + i) * SPAN) % (FILE_BYTES - SPAN)) as i64;
                    match memory {
                        IocbMemory::ReusedStack => {
                            let mut iov = [Iovec::default(); 10];
                            let mut iocb = Iocb::default();
                            for i in 0..THREAD_IOCBS {
                                iov[..segs].copy_from_slice(iov_template);
                                iocb = aio::preadv(fd, &iov[..segs], offset(i), thread_tag);
                                let p = std::hint::black_box(&raw mut iocb);
                                assert_eq!(ctx.submit(&[p])?, 1);
                                std::thread::sleep(std::time::Duration::from_micros(20));
                            }
                            std::hint::black_box(&iocb);
                        }
                        IocbMemory::DistinctHeap => {
                            // SAFETY: calloc of plain-integer structs (zero is a valid
                            // Iocb and Iovec); freed below, after every submit.
                            let (iocbs, iovs) = unsafe {
                                (
                                    libc::calloc(THREAD_IOCBS, size_of::<Iocb>()).cast::<Iocb>(),
                                    libc::calloc(THREAD_IOCBS * segs, size_of::<Iovec>())
                                        .cast::<Iovec>(),
                                )
                            };
                            assert!(!iocbs.is_null() && !iovs.is_null());
                            for i in 0..THREAD_IOCBS {
                                // SAFETY: entries i of arrays of THREAD_IOCBS iocbs and
                                // THREAD_IOCBS * segs iovecs; nothing else uses them.
                                let (iocb, iov) = unsafe {
                                    let iov =
                                        std::slice::from_raw_parts_mut(iovs.add(i * segs), segs);
                                    iov.copy_from_slice(iov_template);
                                    let iocb = iocbs.add(i);
                                    *iocb = aio::preadv(fd, iov, offset(i), thread_tag | i as u64);
                                    (iocb, iov)
                                };
                                let _ = iov;
                                assert_eq!(ctx.submit(&[iocb])?, 1);
                                std::thread::sleep(std::time::Duration::from_micros(20));
                            }
                            // The arrays are leaked, like a database's
                            // long-lived ones: the reaper may not have every
                            // event yet.
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for s in submitters {
            s.join().expect("submitter")?;
        }
        let mut truth = reaper.join().expect("reaper")?;
        truth.io_submit_calls = total as u64;
        truth.iocbs_submitted = total as u64;
        truth.lines.push(json!({"type": "ctx", "ctx": ctx.id()}));
        Ok(truth)
    })
}

/// The built-in workload, randrw with --verify, as `aio-trace workload`
/// runs it on `engine`.
fn workload(dir: &Path, engine: Engine, mode: Mode) -> io::Result<Truth> {
    workload_of(dir, engine, mode, 100, 4)
}

/// A steady workload for latency comparisons: 3 s of 4 KiB random O_DIRECT
/// reads at iodepth 4 on a 64 MiB file.
fn steady(dir: &Path) -> io::Result<Truth> {
    let config = workload::WorkloadConfig {
        target: workload::Target::TempIn(dir.to_owned()),
        engine: Engine::Aio,
        mode: Mode::Scalar,
        segments: 1,
        segment_size: 4096,
        rw: workload::Rw::RandRead,
        iodepth: 4,
        size: Some(64 << 20),
        stop: workload::Stop::After(std::time::Duration::from_secs(3)),
        seed: 7,
        ..workload::WorkloadConfig::default()
    };
    run_workload(&config).map(|(_, truth)| truth)
}

/// Runs the built-in workload: its result, and its line of the truth.
fn run_workload(
    config: &workload::WorkloadConfig,
) -> io::Result<(workload::result::WorkloadResult, Truth)> {
    config.validate().map_err(io::Error::other)?;
    let target = workload::target::open(config).map_err(io::Error::other)?;
    let result = workload::run(config, &target, &std::sync::atomic::AtomicBool::new(false))
        .map_err(io::Error::other)?;
    let mut line = serde_json::to_value(&result)?;
    line["type"] = json!("workload");
    let truth = Truth {
        lines: vec![line],
        ..Truth::default()
    };
    Ok((result, truth))
}

/// The built-in workload of `units` (8 × 4 KiB each) at `iodepth`.
fn workload_of(
    dir: &Path,
    engine: Engine,
    mode: Mode,
    units: u64,
    iodepth: u32,
) -> io::Result<Truth> {
    let config = workload::WorkloadConfig {
        target: workload::Target::TempIn(dir.to_owned()),
        engine,
        mode,
        segments: 8,
        segment_size: 4096,
        rw: workload::Rw::RandRw,
        iodepth,
        size: Some(4 << 20),
        stop: workload::Stop::Units(units),
        seed: 7,
        verify: true,
        ..workload::WorkloadConfig::default()
    };
    let (result, truth) = run_workload(&config)?;
    Ok(match result.calls {
        workload::result::Calls::Aio {
            io_submit_calls,
            io_getevents_calls,
            ..
        } => Truth {
            io_submit_calls,
            iocbs_submitted: result.iocbs,
            io_getevents_calls,
            events_reaped: result.iocbs,
            ..truth
        },
        workload::result::Calls::IoUring {
            io_uring_enter_calls,
            ..
        } => Truth {
            uring: Some(uring::UringCalls {
                enter_calls: io_uring_enter_calls,
                sqes_submitted: result.iocbs,
                cqes_reaped: result.iocbs,
                rings: 1,
            }),
            ..truth
        },
    })
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, scenario, dir] = args.as_slice() else {
        eprintln!("usage: aio-trace-testee SCENARIO DIR");
        std::process::exit(2);
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;

    let truth = match scenario.as_str() {
        "basic" => basic(Path::new(dir))?,
        "ring_reap" => ring_reap(Path::new(dir), true)?,
        "ring_reap_buffered" => ring_reap(Path::new(dir), false)?,
        "block" => block(Path::new(dir))?,
        "fork_kill" => fork_kill(Path::new(dir))?,
        "raw" => raw(Path::new(
            &std::env::var("AIO_TRACE_TEST_DEVICE").expect("AIO_TRACE_TEST_DEVICE"),
        ))?,
        "destroy_inflight" => destroy_inflight(Path::new(dir))?,
        "destroy_churn" => destroy_churn(Path::new(dir))?,
        "bad_pointers" => bad_pointers(Path::new(dir))?,
        "unmapped_iocbs" => unmapped::scenario(Path::new(dir))?,
        "unmapped_iocbs_raw" => unmapped::raw_scenario(Path::new(
            &std::env::var("AIO_TRACE_TEST_DEVICE").expect("AIO_TRACE_TEST_DEVICE"),
        ))?,
        "threads_reused_iocb" => threads(Path::new(dir), IocbMemory::ReusedStack, false)?,
        "threads_distinct_iocbs" => threads(Path::new(dir), IocbMemory::DistinctHeap, true)?,
        "workload-vectored" => workload(Path::new(dir), Engine::Aio, Mode::Vectored)?,
        "workload-scalar" => workload(Path::new(dir), Engine::Aio, Mode::Scalar)?,
        // 16,384 iocbs: enough for a 1-in-64 sample of a few hundred.
        "workload-scalar-long" => workload_of(Path::new(dir), Engine::Aio, Mode::Scalar, 2048, 32)?,
        "workload-steady" => steady(Path::new(dir))?,
        "workload-uring-vectored" => workload(Path::new(dir), Engine::IoUring, Mode::Vectored)?,
        "workload-uring-scalar" => workload(Path::new(dir), Engine::IoUring, Mode::Scalar)?,
        other => match uring::scenario(other, Path::new(dir)) {
            Some(truth) => truth?,
            None => {
                eprintln!("unknown scenario {other}");
                std::process::exit(2);
            }
        },
    };
    for l in &truth.lines {
        writeln!(out, "{l}")?;
    }
    writeln!(
        out,
        "{}",
        json!({
            "type": "calls",
            "io_submit_calls": truth.io_submit_calls,
            "iocbs_submitted": truth.iocbs_submitted,
            "io_getevents_calls": truth.io_getevents_calls,
            "empty_getevents": truth.empty_getevents,
            "events_reaped": truth.events_reaped,
        })
    )?;
    if let Some(calls) = &truth.uring {
        writeln!(
            out,
            "{}",
            json!({
                "type": "uring_calls",
                "io_uring_enter_calls": calls.enter_calls,
                "sqes_submitted": calls.sqes_submitted,
                "cqes_reaped": calls.cqes_reaped,
                "rings": calls.rings,
            })
        )?;
    }
    out.flush()
}
