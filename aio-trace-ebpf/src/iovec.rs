//! Summing an iovec array read from user memory.

use core::ffi::c_void;

use aio_trace_common::{Iovec, LossCause, UIO_MAXIOV};
use aya_ebpf::helpers::{bpf_probe_read_user_buf, generated::bpf_loop};

use crate::maps::{IOV_SCRATCH, IovecScratch, count_loss};

struct IovSum {
    scratch: *const IovecScratch,
    bytes: u64,
}

/// Sum of `iov_len` over the `segs` iovecs at `addr`; None when `segs` is
/// beyond UIO_MAXIOV or the array is unreadable (counted as a loss).
pub fn sum_iovecs(addr: u64, segs: u64) -> Option<u64> {
    if segs > UIO_MAXIOV as u64 {
        return None;
    }
    if segs == 0 {
        return Some(0);
    }
    let scratch = IOV_SCRATCH.get_ptr_mut(0)?;
    let len = segs as usize * core::mem::size_of::<Iovec>();
    // SAFETY: the per-CPU scratch slot is valid for size_of::<IovecScratch>() bytes, of which
    // `len` (segs <= UIO_MAXIOV iovecs) is a prefix; nothing else on this CPU uses it while this
    // program runs.
    let dst = unsafe { core::slice::from_raw_parts_mut(scratch.cast::<u8>(), len) };
    // One read of the whole array: one helper call instead of one per segment.
    // SAFETY: bpf_probe_read_user_buf tolerates any source address (a fault is returned as an
    // error) and writes only within `dst`.
    if unsafe { bpf_probe_read_user_buf(addr as *const u8, dst) }.is_err() {
        count_loss(LossCause::UserRead);
        return None;
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
    Some(sum.bytes)
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
