//! Linux AIO through raw syscalls (no libaio): what the built-in workload and
//! the integration tests drive.
//!
//! Layer: system access (a leaf). Imports only aio-trace-common.

use std::{io, os::fd::RawFd, time::Duration};

use aio_trace_common::{
    IOCB_CMD_FDSYNC, IOCB_CMD_FSYNC, IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE,
    IOCB_CMD_PWRITEV, IoEvent, Iocb, Iovec,
};

fn check(rc: libc::c_long) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// An AIO context (`aio_context_t`), destroyed on drop.
#[derive(Debug)]
pub struct AioContext {
    id: u64,
}

impl AioContext {
    /// io_setup: a context that holds up to `nr_events` iocbs in flight.
    pub fn new(nr_events: u32) -> io::Result<Self> {
        let mut id: u64 = 0;
        // SAFETY: io_setup writes the context id through the valid pointer.
        check(unsafe { libc::syscall(libc::SYS_io_setup, nr_events, &mut id as *mut u64) })?;
        Ok(Self { id })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// io_submit: returns how many iocbs the kernel accepted. The iocbs and the
    /// buffers they point to must stay alive and unmoved until reaped.
    pub fn submit(&self, iocbs: &[*mut Iocb]) -> io::Result<usize> {
        // SAFETY: the pointers are valid iocbs per the caller's contract.
        check(unsafe {
            libc::syscall(
                libc::SYS_io_submit,
                self.id,
                iocbs.len() as libc::c_long,
                iocbs.as_ptr(),
            )
        })
    }

    /// io_getevents: waits for at least `min_nr` events (up to `events.len()`).
    pub fn get_events(
        &self,
        min_nr: usize,
        events: &mut [IoEvent],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs() as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: events is a valid writable array of io_event; ts_ptr is null or valid.
        check(unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                self.id,
                min_nr as libc::c_long,
                events.len() as libc::c_long,
                events.as_mut_ptr(),
                ts_ptr,
            )
        })
    }
}

impl Drop for AioContext {
    fn drop(&mut self) {
        // SAFETY: destroying our own context; waits for in-flight iocbs.
        unsafe { libc::syscall(libc::SYS_io_destroy, self.id) };
    }
}

fn iocb(opcode: u16, fd: RawFd, buf: u64, nbytes: u64, offset: i64, tag: u64) -> Iocb {
    Iocb {
        aio_data: tag,
        aio_lio_opcode: opcode,
        aio_fildes: fd as u32,
        aio_buf: buf,
        aio_nbytes: nbytes,
        aio_offset: offset,
        ..Iocb::default()
    }
}

pub fn pread(fd: RawFd, buf: &mut [u8], offset: i64, tag: u64) -> Iocb {
    iocb(
        IOCB_CMD_PREAD,
        fd,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        offset,
        tag,
    )
}

pub fn pwrite(fd: RawFd, buf: &[u8], offset: i64, tag: u64) -> Iocb {
    iocb(
        IOCB_CMD_PWRITE,
        fd,
        buf.as_ptr() as u64,
        buf.len() as u64,
        offset,
        tag,
    )
}

/// A PREADV over `iov` (which must outlive the iocb's completion).
pub fn preadv(fd: RawFd, iov: &[Iovec], offset: i64, tag: u64) -> Iocb {
    iocb(
        IOCB_CMD_PREADV,
        fd,
        iov.as_ptr() as u64,
        iov.len() as u64,
        offset,
        tag,
    )
}

pub fn pwritev(fd: RawFd, iov: &[Iovec], offset: i64, tag: u64) -> Iocb {
    iocb(
        IOCB_CMD_PWRITEV,
        fd,
        iov.as_ptr() as u64,
        iov.len() as u64,
        offset,
        tag,
    )
}

pub fn fsync(fd: RawFd, tag: u64) -> Iocb {
    iocb(IOCB_CMD_FSYNC, fd, 0, 0, 0, tag)
}

pub fn fdsync(fd: RawFd, tag: u64) -> Iocb {
    iocb(IOCB_CMD_FDSYNC, fd, 0, 0, 0, tag)
}

/// An iovec over `buf`.
pub fn iovec(buf: &mut [u8]) -> Iovec {
    Iovec {
        iov_base: buf.as_mut_ptr() as u64,
        iov_len: buf.len() as u64,
    }
}

// `Iovec` (the AIO ABI's, 64-bit fields) is the kernel's `struct iovec` on
// the 64-bit targets AIO tracing supports, so one array serves both APIs.
const _: () = assert!(
    size_of::<Iovec>() == size_of::<libc::iovec>()
        && align_of::<Iovec>() == align_of::<libc::iovec>()
);

/// `iov` as the `struct iovec` array io_uring's READV/WRITEV point at.
pub fn iovec_array(iov: &[Iovec]) -> *const libc::iovec {
    iov.as_ptr().cast()
}

/// A heap buffer aligned for O_DIRECT.
pub struct AlignedBuf {
    ptr: *mut u8,
    len: usize,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    pub fn zeroed(len: usize, align: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(len.max(1), align)
            .expect("alignment is a power of two");
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Self { ptr, len, layout }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for len bytes for the buffer's lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_iocb_points_at_the_iovec_array() {
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 512];
        let iov = [iovec(&mut a), iovec(&mut b)];
        let cb = preadv(7, &iov, 8192, 1);
        assert!(cb.is_vectored());
        assert_eq!(cb.segments(), 2);
        assert_eq!(cb.aio_buf, iov.as_ptr() as u64);
        assert_eq!(cb.aio_fildes, 7);
        assert_eq!(cb.aio_offset, 8192);
    }

    #[test]
    fn scalar_and_sync_iocbs_count_segments() {
        let mut a = vec![0u8; 4096];
        assert_eq!(pread(3, &mut a, 0, 0).segments(), 1);
        assert_eq!(pwrite(3, &a, 0, 0).aio_nbytes, 4096);
        assert_eq!(fsync(3, 0).segments(), 0);
        assert_eq!(fdsync(3, 0).aio_lio_opcode, IOCB_CMD_FDSYNC);
    }

    #[test]
    fn aligned_buffer_is_aligned() {
        let buf = AlignedBuf::zeroed(8192, 4096);
        assert_eq!(buf.as_ptr() as usize % 4096, 0);
        assert!(buf.iter().all(|&b| b == 0));
    }
}
