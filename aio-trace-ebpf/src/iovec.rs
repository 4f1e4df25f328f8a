//! Summing an iovec array read from user memory.

use core::ffi::c_void;

use aio_trace_common::{Iovec, UIO_MAXIOV};
use aya_ebpf::helpers::{bpf_probe_read_user_buf, generated::bpf_loop};

use crate::maps::{IOV_SCRATCH, IovecScratch};

struct IovSum {
    scratch: *const IovecScratch,
    bytes: u64,
}

/// What `sum_iovecs` found.
pub enum IovecSum {
    /// The sum of `iov_len`.
    Bytes(u64),
    /// More than UIO_MAXIOV segments: the kernel refuses the request without
    /// reading the array, and so do we.
    TooMany,
    /// The array could not be read: a bad pointer, or a page the process has
    /// not mapped (yet). The caller decides whether that is a loss.
    Unreadable,
}

/// Sum of `iov_len` over the `segs` iovecs at `addr`.
pub fn sum_iovecs(addr: u64, segs: u64) -> IovecSum {
    if segs > UIO_MAXIOV as u64 {
        return IovecSum::TooMany;
    }
    if segs == 0 {
        return IovecSum::Bytes(0);
    }
    let Some(scratch) = IOV_SCRATCH.get_ptr_mut(0) else {
        return IovecSum::Unreadable;
    };
    let len = segs as usize * core::mem::size_of::<Iovec>();
    // SAFETY: the per-CPU scratch slot is valid for size_of::<IovecScratch>() bytes, of which
    // `len` (segs <= UIO_MAXIOV iovecs) is a prefix; nothing else on this CPU uses it while this
    // program runs.
    let dst = unsafe { core::slice::from_raw_parts_mut(scratch.cast::<u8>(), len) };
    // One read of the whole array: one helper call instead of one per segment.
    // SAFETY: bpf_probe_read_user_buf tolerates any source address (a fault is returned as an
    // error) and writes only within `dst`.
    if unsafe { bpf_probe_read_user_buf(addr as *const u8, dst) }.is_err() {
        return IovecSum::Unreadable;
    }
    let mut sum = IovSum { scratch, bytes: 0 };
    // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
    // outlives the call; flags are 0.
    unsafe {
        bpf_loop(
            segs as u32,
            add_iov_len as *mut c_void,
            (&raw mut sum).cast(),
            0,
        )
    };
    IovecSum::Bytes(sum.bytes)
}

/// `bpf_loop` callback: add one iovec's length.
extern "C" fn add_iov_len(index: u64, sum: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `IovSum`, live and untouched by the
    // caller until the loop returns.
    let sum = unsafe { &mut *(sum as *mut IovSum) };
    if index >= UIO_MAXIOV as u64 {
        return 1;
    }
    // SAFETY: `scratch` points at the per-CPU scratch slot, filled above; `index` is
    // bounds-checked just before.
    sum.bytes += unsafe { (*sum.scratch).iov[index as usize].iov_len };
    0
}
