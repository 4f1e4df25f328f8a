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
    let dst = unsafe { core::slice::from_raw_parts_mut(scratch.cast::<u8>(), len) };
    // One read of the whole array: one helper call instead of one per segment.
    if unsafe { bpf_probe_read_user_buf(addr as *const u8, dst) }.is_err() {
        count_loss(LossCause::UserRead);
        return None;
    }
    let mut sum = IovSum { scratch, bytes: 0 };
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
    let sum = unsafe { &mut *(sum as *mut IovSum) };
    if index >= UIO_MAXIOV as u64 {
        return 1;
    }
    sum.bytes += unsafe { (*sum.scratch).iov[index as usize].iov_len };
    0
}
