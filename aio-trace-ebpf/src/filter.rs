//! Which processes are traced: a pid set, a comm and a set of cgroups, all
//! written by the loader.

use aio_trace_common::{CGROUP_MAX_LEVEL, CommFilter, PID_FILTER_SETS};
use aya_ebpf::helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_comm};

use crate::{
    maps::{CGROUP_FILTER, PID_FILTER},
    table,
};

/// 1 when only pids in `PID_FILTER` are traced (set by the loader before load).
#[unsafe(no_mangle)]
static FILTER_PIDS: u8 = 0;

/// Bit n set: a cgroup of `CGROUP_FILTER` sits at level n of the v2
/// hierarchy (the root is level 0); 0 when cgroups are not filtered (set by
/// the loader before load).
#[unsafe(no_mangle)]
static FILTER_CGROUP_LEVELS: u64 = 0;

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
    let cgroup_levels = unsafe { core::ptr::read_volatile(&FILTER_CGROUP_LEVELS) };
    if cgroup_levels != 0 && !in_cgroups(cgroup_levels) {
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

/// Whether the current task's cgroup is one of `CGROUP_FILTER` or below one:
/// its ancestor at each level a filtered cgroup sits at is looked up, so a
/// container's processes match wherever under its cgroup they sit. An SQ
/// polling thread is in its ring owner's cgroup, so it needs no special case.
#[inline(always)]
fn in_cgroups(levels: u64) -> bool {
    for level in 0..=CGROUP_MAX_LEVEL {
        if levels >> level == 0 {
            return false;
        }
        if levels & (1 << level) == 0 {
            continue;
        }
        // SAFETY: the helper takes a level and reads the current task's cgroup; no pointers.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
        if id == 0 {
            // The task's cgroup is shallower than `level`, so than every level after it too.
            return false;
        }
        if CGROUP_FILTER.get_ptr(id).is_some() {
            return true;
        }
    }
    false
}

/// The current task's cgroup v2 id, for its records.
#[inline(always)]
pub fn current_cgroup() -> u64 {
    // SAFETY: the helper takes no arguments and reads the current task's cgroup.
    unsafe { aya_ebpf::helpers::bpf_get_current_cgroup_id() }
}
