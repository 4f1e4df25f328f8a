//! Which iocb of the io_submit in progress a filesystem dispatch or a bio
//! belongs to. The kernel handles a call's iocbs in order, so the search runs
//! from the thread's cursor on, and a match moves the cursor past it.

use core::ffi::c_void;

use aio_trace_common::InflightKey;
use aya_ebpf::helpers::generated::bpf_loop;

use crate::{
    maps::{CURRENT_BY_DISPATCH, CURRENT_BY_SECTOR, SubmitState, inflight, submitted_key},
    submit::read_iocb_pointer,
};

/// What the next claimed iocb must match.
#[derive(Clone, Copy)]
pub enum Match {
    /// Not yet dispatched, starting at this file position (iomap dispatch).
    Dispatch { pos: i64 },
    /// Its byte range on a whole device holds this 512-byte sector (a bio on
    /// a raw block device, which has no dispatch event).
    Sector { sector: u64 },
}

/// Whether the 512-byte sector lies in [offset, offset + bytes) of a whole device.
pub fn holds(offset: i64, bytes: u64, sector: u64) -> bool {
    if offset < 0 {
        return false;
    }
    let at = sector.wrapping_mul(512);
    at >= offset as u64 && at < offset as u64 + bytes
}

/// What the `bpf_loop` callback needs.
#[repr(C)]
struct Scan {
    pid: u32,
    /// `CURRENT_BY_*` of the match.
    by: u32,
    ctx: u64,
    iocbpp: u64,
    start: u64,
    /// The position or sector to match.
    target: u64,
    found: u64,
    key: InflightKey,
}

/// The first iocb from the cursor on that `matching` describes: it becomes the
/// thread's current iocb and the cursor moves past it. None when no iocb
/// left in the call matches.
#[inline(always)]
pub fn claim_iocb(state: &mut SubmitState, pid: u32, matching: Match) -> Option<InflightKey> {
    if state.cursor >= state.walked {
        return None;
    }
    let (by, target) = match matching {
        Match::Dispatch { pos } => (CURRENT_BY_DISPATCH, pos as u64),
        Match::Sector { sector } => (CURRENT_BY_SECTOR, sector),
    };
    let mut scan = Scan {
        pid,
        by: by as u32,
        ctx: state.ctx,
        iocbpp: state.iocbpp,
        start: state.cursor,
        target,
        found: u64::MAX,
        key: InflightKey::default(),
    };
    // bpf_loop: the callback is verified once, whatever the batch size.
    // SAFETY: bpf_loop calls the extern "C" callback with the context pointer, a local that
    // outlives the call; flags are 0.
    unsafe {
        bpf_loop(
            (state.walked - state.cursor) as u32,
            match_iocb as *mut c_void,
            (&raw mut scan).cast(),
            0,
        )
    };
    if scan.found == u64::MAX {
        return None;
    }
    state.cursor = scan.found + 1;
    state.current = scan.key;
    state.current_by = by;
    Some(scan.key)
}

/// `bpf_loop` callback: does iocb `start + index` match? 1 stops the loop.
extern "C" fn match_iocb(index: u64, scan: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer to the caller's `Scan`, live and untouched by the
    // caller until the loop returns.
    let scan = unsafe { &mut *(scan as *mut Scan) };
    let at = scan.start + index;
    let Ok(iocb) = read_iocb_pointer(scan.iocbpp, at) else {
        return 1;
    };
    let key = submitted_key(scan.pid, scan.ctx, iocb);
    let Some(record) = inflight(&key) else {
        return 0;
    };
    // SAFETY: a map value pointer to an in-flight record (see the crate doc's Safety); other CPUs
    // may update other fields of it, plain integers, at the same time.
    let record = unsafe { &*record };
    // Either way an iocb the filesystem dispatched is not a candidate: its
    // offset is in the file, not on the device, and dispatches found straight
    // from the kiocb do not move the cursor past it.
    let hit = record.dispatches == 0
        && if u64::from(scan.by) == CURRENT_BY_DISPATCH {
            record.offset == scan.target as i64
        } else {
            holds(record.offset, record.bytes, scan.target)
        };
    if !hit {
        return 0;
    }
    scan.found = at;
    scan.key = key;
    1
}
