//! Synchronous vectored syscalls (readv, writev, preadv, pwritev, preadv2,
//! pwritev2): one record each, with the same dispatch and bio attribution as
//! an iocb, so AIO can be compared with plain vectored I/O. In the light
//! tier every call is counted at its exit, and those of a window are records.

use aio_trace_common::{
    IOCB_BYTES_UNKNOWN, IocbRecord, LossCause, RECORD_SYSCALL, SYSCALL_PREADV, SYSCALL_PREADV2,
    SYSCALL_PWRITEV, SYSCALL_PWRITEV2, SYSCALL_READV, SYSCALL_WRITEV,
};
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};

use crate::{
    filter::{current_cgroup, traced},
    iovec::{IovecSum, sum_iovecs},
    light,
    maps::{
        EVENTS, SYNC_CALLS, close_slot, count_loss, full_mode, open_slot, reap_deep, sampling,
        wakeup_flags,
    },
    syscall,
};

/// fd @16, vec @24, vlen @32, then pos_l @40 for the positioned calls. On
/// 64-bit, pos_l carries the whole offset (pos_h is shifted out).
fn try_enter(ctx: &TracePointContext, opcode: u16, positioned: bool) -> Result<(), i64> {
    // As io_submit's entry: a light tier's window closes here at once.
    if !sampling() {
        return Ok(());
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if !traced(pid) {
        return Ok(());
    }
    let fd = syscall::arg(ctx, 0);
    let vec = syscall::arg(ctx, 1);
    let vlen = syscall::arg(ctx, 2);
    let offset = if positioned {
        syscall::arg(ctx, 3) as i64
    } else {
        -1
    };
    let mut record = IocbRecord {
        kind: RECORD_SYSCALL,
        opcode,
        pid,
        tid,
        fd: fd as u32,
        segs: if vlen > u32::MAX as u64 {
            u32::MAX
        } else {
            vlen as u32
        },
        comm: bpf_get_current_comm().unwrap_or_default(),
        cgroup: current_cgroup(),
        offset,
        ..IocbRecord::default()
    };
    match sum_iovecs(vec, vlen) {
        IovecSum::Bytes(bytes) => record.bytes = bytes,
        IovecSum::TooMany => record.flags |= IOCB_BYTES_UNKNOWN,
        IovecSum::Unreadable => {
            record.flags |= IOCB_BYTES_UNKNOWN;
            count_loss(LossCause::UserRead);
        }
    }
    // Stamped last: the record's latency is the syscall's, not our decoding.
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    record.submit_ns = unsafe { bpf_ktime_get_ns() };
    if !open_slot(&SYNC_CALLS, tid, &record) {
        count_loss(LossCause::SyscallStateFull);
    }
    Ok(())
}

fn try_exit(ctx: &TracePointContext, opcode: u16) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let ret = syscall::ret(ctx);
    // The light tier counts every call; its entry runs only in a window.
    if !full_mode() {
        light::count_sync(pid, tid, opcode, ret);
        if !reap_deep() {
            return Ok(());
        }
    }
    let Some(mut out) = close_slot(&SYNC_CALLS, tid) else {
        return Ok(());
    };
    out.res = ret;
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    out.reap_ns = unsafe { bpf_ktime_get_ns() };
    match EVENTS.reserve::<IocbRecord>(0) {
        Some(mut entry) => {
            entry.write(out);
            entry.submit(wakeup_flags());
        }
        None => count_loss(LossCause::RingFull),
    }
    Ok(())
}

macro_rules! vectored_syscall {
    ($enter:ident, $exit:ident, $opcode:expr, $positioned:expr) => {
        #[tracepoint]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            let _ = try_enter(&ctx, $opcode, $positioned);
            0
        }

        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            let _ = try_exit(&ctx, $opcode);
            0
        }
    };
}

vectored_syscall!(sys_enter_readv, sys_exit_readv, SYSCALL_READV, false);
vectored_syscall!(sys_enter_writev, sys_exit_writev, SYSCALL_WRITEV, false);
vectored_syscall!(sys_enter_preadv, sys_exit_preadv, SYSCALL_PREADV, true);
vectored_syscall!(sys_enter_pwritev, sys_exit_pwritev, SYSCALL_PWRITEV, true);
vectored_syscall!(sys_enter_preadv2, sys_exit_preadv2, SYSCALL_PREADV2, true);
vectored_syscall!(
    sys_enter_pwritev2,
    sys_exit_pwritev2,
    SYSCALL_PWRITEV2,
    true
);
