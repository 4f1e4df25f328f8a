//! Iocbs io_submit's entry could not read whole, read again once the kernel
//! has read them.
//!
//! `bpf_probe_read_user` cannot take a page fault: it fails on a valid page
//! the process has not mapped (yet) — memory first touched after fork,
//! swapped out, of a file mapping not read yet — where the kernel's
//! `copy_from_user` faults the page in and goes on. So an iocb (or its
//! pointer) or iovec array the entry could not read is pending
//! (`SubmitState::unreadable`, `unsummed`), and read again where the kernel
//! has read it: at its filesystem dispatch (the kernel reads an iocb and
//! imports its iovec array before it dispatches it; the dispatch names the
//! iocb), at the first bio on a raw device (which has no dispatch: all
//! pending iocbs the kernel has reached by then), and at the call's exit
//! for the rest. An iocb decoded there has its entry's submit time; its
//! dispatch and bios find it as if the entry had decoded it.

use core::ffi::c_void;

use aio_trace_common::{InflightKey, IocbRecord};
use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, generated::bpf_loop};

use crate::{
    maps::{SubmitState, inflight, submitted_key},
    submit::{Submitter, decode_iocb, read_iocb_pointer},
};

/// The submitter of `state`'s call: the current thread.
#[inline(always)]
fn submitter(ctx: u64, submit_ns: u64) -> Submitter {
    let pid_tgid = bpf_get_current_pid_tgid();
    Submitter {
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        comm: bpf_get_current_comm().unwrap_or_default(),
        ctx,
        submit_ns,
    }
}

/// At the filesystem dispatch of the iocb at `iocb` (the kernel's
/// `aio_kiocb` names it) inside an io_submit with pending iocbs: its
/// in-flight entry, decoded or summed now if the entry could not. The
/// pending bitmaps are left to the exit, which finds the entry.
#[inline(always)]
pub fn dispatched(state: &SubmitState, iocb: u64) -> Option<(InflightKey, *mut IocbRecord)> {
    let who = submitter(state.ctx, state.submit_ns);
    let _ = decode_iocb::<true>(&who, iocb);
    let key = submitted_key(who.pid, who.ctx, iocb);
    let record = inflight(&key)?;
    // Not an earlier submission of the address (see `decode_iocb`).
    // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); a whole
    // aligned u64.
    let submitted = unsafe { core::ptr::read_volatile(&raw const (*record).submit_ns) };
    (submitted == who.submit_ns).then_some((key, record))
}

/// What the `bpf_loop` callback needs.
#[repr(C)]
struct Reread {
    who: Submitter,
    iocbpp: u64,
    unreadable: u64,
    unsummed: u64,
}

/// The pending iocbs among the first `upto` of `state`'s call read again;
/// those read now (or found decoded at their dispatch) leave its pending
/// bitmaps, the others stay: the kernel may not have reached them yet.
#[inline(always)]
pub fn reread(state: &mut SubmitState, upto: u64) {
    let pending = state.unreadable | state.unsummed;
    if pending == 0 {
        return;
    }
    let mut walk = Reread {
        who: submitter(state.ctx, state.submit_ns),
        iocbpp: state.iocbpp,
        unreadable: state.unreadable,
        unsummed: state.unsummed,
    };
    // Up to the last pending iocb: the bitmaps hold the first 64.
    let n = u64::from(64 - pending.leading_zeros()).min(upto);
    // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
    // outlives the call; flags are 0.
    unsafe {
        bpf_loop(
            n as u32,
            reread_one as *mut c_void,
            (&raw mut walk).cast(),
            0,
        )
    };
    state.unreadable = walk.unreadable;
    state.unsummed = walk.unsummed;
}

/// `bpf_loop` callback: read iocb `index` again if it is pending.
extern "C" fn reread_one(index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `Reread`, live and untouched by the
    // caller until the loop returns.
    let walk = unsafe { &mut *(walk as *mut Reread) };
    if index >= 64 {
        return 1;
    }
    let bit = 1u64 << index;
    if (walk.unreadable | walk.unsummed) & bit == 0 {
        return 0;
    }
    let Ok(iocb) = read_iocb_pointer(walk.iocbpp, index) else {
        return 0;
    };
    if let Ok(unsummed) = decode_iocb::<true>(&walk.who, iocb) {
        walk.unreadable &= !bit;
        walk.unsummed = (walk.unsummed & !bit) | (unsummed << index);
    }
    0
}
