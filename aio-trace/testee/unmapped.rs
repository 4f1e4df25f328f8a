//! The `unmapped_iocbs` scenario: iocbs, iovec arrays and iocb pointer arrays
//! in memory that is valid but not mapped in the process when it calls
//! io_submit — as memory first touched after fork, swapped out, or of a file
//! mapping not yet read. The kernel's reads fault such pages in; a tracer's
//! non-faulting reads (`bpf_probe_read_user`) at io_submit entry fail on
//! them.
//!
//! The pages are shared anonymous memory whose page table entries are
//! dropped with `MADV_DONTNEED` right before each io_submit: the contents
//! stay (in shmem) and the next access maps them again, so each case is
//! the same every run. One `{"type":"iocb"}` line per iocb, from its
//! io_event, with `direct` set for O_DIRECT ones (they have a dispatch and
//! bios).

use std::{
    fs::OpenOptions,
    io,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::Path,
};

use aio_trace::aio::{self, AioContext, AlignedBuf};
use aio_trace_common::{IoEvent, Iocb, Iovec};
use serde_json::json;

use crate::{BLOCK, Truth};

const PAGE: usize = 4096;
/// Every byte written before the scenario, so O_DIRECT reads reach the device.
const FILE_BYTES: usize = 1 << 20;

/// A shared anonymous mapping the cases place their structs in.
struct Shared {
    base: *mut u8,
    len: usize,
}

impl Shared {
    fn new(pages: usize) -> io::Result<Self> {
        let len = pages * PAGE;
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            base: base.cast(),
            len,
        })
    }

    /// Copies `values` to byte `offset` of the mapping; their address there.
    fn place<T: Copy>(&self, offset: usize, values: &[T]) -> *mut T {
        assert!(offset + size_of_val(values) <= self.len);
        // SAFETY: inside the mapping (checked above), which is writable and
        // used by nothing else; unaligned writes, as the offsets are the
        // cases' choice.
        unsafe {
            let at = self.base.add(offset).cast::<T>();
            for (i, v) in values.iter().enumerate() {
                at.add(i).write_unaligned(*v);
            }
            at
        }
    }

    /// Drops this process's mapping of page `page`; its contents stay.
    fn unmap(&self, page: usize) -> io::Result<()> {
        assert!((page + 1) * PAGE <= self.len);
        // SAFETY: a page of our own mapping; MADV_DONTNEED on shared memory
        // only drops the page table entry.
        if unsafe { libc::madvise(self.base.add(page * PAGE).cast(), PAGE, libc::MADV_DONTNEED) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; the scenario reaped every iocb
        // placed in it before dropping it.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// What the trace should say about one iocb.
struct Expect {
    tag: u64,
    op: &'static str,
    segs: u64,
    bytes: u64,
    direct: bool,
}

/// Where a case puts an iovec array.
#[derive(Clone, Copy)]
enum At {
    /// The process's heap, mapped.
    Heap,
    /// Byte offset in the shared mapping.
    Shared(usize),
}

struct Run {
    ctx: AioContext,
    truth: Truth,
    shared: Shared,
    /// Data buffers and heap iovec arrays, alive until the scenario ends.
    bufs: Vec<AlignedBuf>,
    iovs: Vec<Vec<Iovec>>,
    tag: u64,
}

impl Run {
    /// A PREADV or PWRITEV of `segs` fresh 4 KiB buffers at block `block`,
    /// its iovec array `at`.
    fn vectored(
        &mut self,
        op: &'static str,
        fd: i32,
        segs: usize,
        at: At,
        block: usize,
        direct: bool,
    ) -> (Iocb, Expect) {
        let iov: Vec<Iovec> = (0..segs)
            .map(|_| {
                let mut buf = AlignedBuf::zeroed(BLOCK, BLOCK);
                let iov = aio::iovec(&mut buf);
                self.bufs.push(buf);
                iov
            })
            .collect();
        let array = match at {
            At::Heap => {
                self.iovs.push(iov);
                self.iovs.last().expect("just pushed").as_ptr()
            }
            At::Shared(offset) => self.shared.place(offset, &iov).cast_const(),
        };
        // SAFETY: the `segs` iovecs just placed, alive until the scenario ends.
        let iov = unsafe { std::slice::from_raw_parts(array, segs) };
        self.tag += 1;
        let offset = (block * BLOCK) as i64;
        let iocb = if op == "PREADV" {
            aio::preadv(fd, iov, offset, self.tag)
        } else {
            aio::pwritev(fd, iov, offset, self.tag)
        };
        let expect = Expect {
            tag: self.tag,
            op,
            segs: segs as u64,
            bytes: (segs * BLOCK) as u64,
            direct,
        };
        (iocb, expect)
    }

    /// Drops the mapping of `unmap`'s pages, submits the `expect.len()` iocbs
    /// at `ptrs` in one io_submit and reaps them all.
    fn submit(
        &mut self,
        case: &str,
        ptrs: *const *mut Iocb,
        expect: &[Expect],
        unmap: &[usize],
    ) -> io::Result<()> {
        for &page in unmap {
            self.shared.unmap(page)?;
        }
        self.truth.io_submit_calls += 1;
        // SAFETY: `ptrs` holds `expect.len()` pointers to iocbs, each with its
        // buffers, all alive until the scenario ends.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_io_submit,
                self.ctx.id(),
                expect.len() as libc::c_long,
                ptrs,
            )
        };
        if ret != expect.len() as i64 {
            return Err(io::Error::other(format!(
                "{case}: io_submit returned {ret} ({})",
                io::Error::last_os_error()
            )));
        }
        self.truth.iocbs_submitted += expect.len() as u64;
        let mut events = vec![IoEvent::default(); expect.len()];
        let mut remaining = expect.len();
        while remaining > 0 {
            self.truth.io_getevents_calls += 1;
            let got = self
                .ctx
                .get_events(remaining, &mut events[..remaining], None)?;
            self.truth.events_reaped += got as u64;
            for ev in &events[..got] {
                let e = expect
                    .iter()
                    .find(|e| e.tag == ev.data)
                    .expect("an event of this call");
                self.truth.lines.push(json!({
                    "type": "iocb", "tag": e.tag, "op": e.op, "segs": e.segs, "bytes": e.bytes,
                    "res": ev.res, "direct": e.direct, "case": case, "reaped": true,
                }));
            }
            remaining -= got;
        }
        Ok(())
    }
}

impl Run {
    fn new() -> io::Result<Self> {
        Ok(Self {
            ctx: AioContext::new(16)?,
            truth: Truth::default(),
            shared: Shared::new(16)?,
            bufs: Vec::new(),
            iovs: Vec::new(),
            tag: 0,
        })
    }
}

pub fn scenario(dir: &Path) -> io::Result<Truth> {
    let path = dir.join("unmapped.dat");
    std::fs::write(&path, vec![0x5au8; FILE_BYTES])?;
    let direct = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)?;
    let buffered = OpenOptions::new().read(true).write(true).open(&path)?;
    let (dfd, bfd) = (direct.as_raw_fd(), buffered.as_raw_fd());
    let mut run = Run::new()?;

    // An iovec array that starts on a mapped page and ends on an unmapped
    // one; then arrays wholly on an unmapped page, read and written.
    for (case, op, segs, offset, page, block) in [
        ("iovec straddling", "PREADV", 4, PAGE - 32, 1, 0),
        ("iovec unmapped", "PREADV", 8, 2 * PAGE, 2, 8),
        ("iovec unmapped", "PWRITEV", 8, 2 * PAGE, 2, 16),
    ] {
        let (mut iocb, expect) = run.vectored(op, dfd, segs, At::Shared(offset), block, true);
        run.submit(case, [&raw mut iocb].as_ptr(), &[expect], &[page])?;
    }

    // An iocb on an unmapped page, and one straddling into one.
    for (case, offset, page) in [
        ("iocb unmapped", 3 * PAGE, 3),
        ("iocb straddling", 5 * PAGE - 32, 5),
    ] {
        let (iocb, expect) = run.vectored("PREADV", dfd, 3, At::Heap, 32, true);
        let iocb = run.shared.place(offset, &[iocb]);
        run.submit(case, [iocb].as_ptr(), &[expect], &[page])?;
    }

    // A pointer array on an unmapped page, its iocbs and iovecs mapped.
    let (mut iocbs, mut expect) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let (iocb, e) = run.vectored("PREADV", dfd, 2, At::Heap, 40 + 2 * i, true);
        iocbs.push(Box::new(iocb));
        expect.push(e);
    }
    let ptrs: Vec<*mut Iocb> = iocbs.iter_mut().map(|c| &mut **c as *mut Iocb).collect();
    let ptrs = run.shared.place(6 * PAGE, &ptrs);
    run.submit("pointers unmapped", ptrs, &expect, &[6])?;

    // Pointers, iocbs and iovec arrays unmapped in one call, with iocbs the
    // filesystem dispatches no direct I/O for: an O_DIRECT PREADV, a
    // buffered PREADV, a buffered PREAD and an FSYNC.
    let (mut iocbs, mut expect) = (Vec::new(), Vec::new());
    for (fd, block, page, direct) in [(dfd, 48, 9, true), (bfd, 52, 10, false)] {
        let (iocb, e) = run.vectored("PREADV", fd, 2, At::Shared(page * PAGE), block, direct);
        iocbs.push(iocb);
        expect.push(e);
    }
    run.tag += 1;
    run.bufs.push(AlignedBuf::zeroed(BLOCK, BLOCK));
    let buf = run.bufs.last_mut().expect("just pushed");
    iocbs.push(aio::pread(bfd, buf, (56 * BLOCK) as i64, run.tag));
    expect.push(Expect {
        tag: run.tag,
        op: "PREAD",
        segs: 1,
        bytes: BLOCK as u64,
        direct: false,
    });
    run.tag += 1;
    iocbs.push(aio::fsync(bfd, run.tag));
    expect.push(Expect {
        tag: run.tag,
        op: "FSYNC",
        segs: 0,
        bytes: 0,
        direct: false,
    });
    let placed = run.shared.place(8 * PAGE, &iocbs);
    let ptrs: Vec<*mut Iocb> = (0..iocbs.len())
        // SAFETY: within the iocbs just placed there.
        .map(|i| unsafe { placed.add(i) })
        .collect();
    let ptrs = run.shared.place(7 * PAGE, &ptrs);
    run.submit("all unmapped", ptrs, &expect, &[7, 8, 9, 10])?;

    // An iocb on an unmapped page that the kernel reads and refuses (a bad
    // fd): a record with its errno, decoded as the others.
    run.tag += 1;
    run.bufs.push(AlignedBuf::zeroed(BLOCK, BLOCK));
    let buf = run.bufs.last_mut().expect("just pushed");
    let iocb = run
        .shared
        .place(11 * PAGE, &[aio::pread(-1, buf, 0, run.tag)]);
    run.shared.unmap(11)?;
    run.truth.io_submit_calls += 1;
    // SAFETY: one pointer to an iocb placed above; the kernel refuses it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_submit,
            run.ctx.id(),
            1 as libc::c_long,
            [iocb].as_ptr(),
        )
    };
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if ret != -1 || errno != libc::EBADF {
        return Err(io::Error::other(format!(
            "refused: io_submit returned {ret} ({errno})"
        )));
    }
    run.truth.lines.push(json!({
        "type": "iocb", "tag": run.tag, "op": "PREAD", "segs": 1, "bytes": BLOCK,
        "res": -libc::EBADF, "direct": false, "case": "refused, iocb unmapped", "reaped": false,
    }));

    Ok(std::mem::take(&mut run.truth))
}

/// The same on a raw block device (`unmapped_iocbs_raw`), which has no
/// filesystem dispatch: in one call, a PREADV whose iovec array straddles
/// into an unmapped page, a PREADV on an unmapped page and a PREAD, their
/// pointers on an unmapped page too. Far apart, so no two bios merge.
pub fn raw_scenario(device: &Path) -> io::Result<Truth> {
    let raw = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(device)?;
    let fd = raw.as_raw_fd();
    let mut run = Run::new()?;
    let (mut iocbs, mut expect) = (Vec::new(), Vec::new());
    let (iocb, e) = run.vectored("PREADV", fd, 4, At::Shared(PAGE - 32), 256, true);
    iocbs.push(Box::new(iocb));
    expect.push(e);
    let (iocb, e) = run.vectored("PREADV", fd, 2, At::Heap, 320, true);
    let iocb = run.shared.place(3 * PAGE, &[iocb]);
    expect.push(e);
    run.tag += 1;
    run.bufs.push(AlignedBuf::zeroed(BLOCK, BLOCK));
    let buf = run.bufs.last_mut().expect("just pushed");
    iocbs.push(Box::new(aio::pread(fd, buf, (384 * BLOCK) as i64, run.tag)));
    expect.push(Expect {
        tag: run.tag,
        op: "PREAD",
        segs: 1,
        bytes: BLOCK as u64,
        direct: true,
    });
    let ptrs = [
        &mut *iocbs[0] as *mut Iocb,
        iocb,
        &mut *iocbs[1] as *mut Iocb,
    ];
    let ptrs = run.shared.place(6 * PAGE, &ptrs);
    run.submit("raw device, all unmapped", ptrs, &expect, &[1, 3, 6])?;
    Ok(std::mem::take(&mut run.truth))
}
