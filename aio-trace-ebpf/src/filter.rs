//! Which processes are traced: a pid set and a comm, both written by the loader.

use aio_trace_common::{CommFilter, PID_FILTER_SETS};
use aya_ebpf::helpers::bpf_get_current_comm;

use crate::{maps::PID_FILTER, table};

/// 1 when only pids in `PID_FILTER` are traced (set by the loader before load).
#[unsafe(no_mangle)]
static FILTER_PIDS: u8 = 0;

/// The comm to trace, if enabled (set by the loader before load).
#[unsafe(no_mangle)]
static FILTER_COMM: CommFilter = CommFilter {
    comm: [0; 16],
    enabled: 0,
    _pad: [0; 7],
};

/// Whether the current task passes the filters. `pid` is the tgid.
#[inline(always)]
pub fn traced(pid: u32) -> bool {
    traced_as(pid, None)
}

/// Whether work done for process `pid` under the name `comm` (the current
/// task's if None) passes the filters: a kernel thread working for a
/// process (io_uring's SQ polling thread) is filtered as that process.
#[inline(always)]
pub fn traced_as(pid: u32, comm: Option<&[u8; 16]>) -> bool {
    // Volatile: the loader rewrites these in .rodata, the compiler must not fold them.
    // SAFETY: a static, so valid and aligned; volatile only so the loader's value is not folded
    // away.
    let by_pid = unsafe { core::ptr::read_volatile(&FILTER_PIDS) };
    if by_pid != 0 && table::get_ptr(&PID_FILTER, PID_FILTER_SETS, &u64::from(pid)).is_none() {
        return false;
    }
    // SAFETY: a static, so valid and aligned; volatile only so the loader's value is not folded
    // away.
    let comm_filter = unsafe { core::ptr::read_volatile(&FILTER_COMM) };
    if comm_filter.enabled != 0 {
        if let Some(comm) = comm {
            return *comm == comm_filter.comm;
        }
        let Ok(comm) = bpf_get_current_comm() else {
            return false;
        };
        return comm == comm_filter.comm;
    }
    true
}
