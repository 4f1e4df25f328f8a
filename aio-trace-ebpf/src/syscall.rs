//! Reading tracepoint records: any field, and the `syscalls:sys_enter_*` /
//! `sys_exit_*` arguments and return value.
//!
//! Both layouts start with the 8-byte common header and a 4-byte `__syscall_nr`
//! padded to 8; arguments follow as 8-byte slots, and `ret` sits at 16 on exit.
//!
//! The record is the program's context, which the verifier lets a tracepoint
//! program load from directly (past the 8-byte header, naturally aligned): no
//! `bpf_probe_read_kernel` call per field, which cost ~25 ns each.

use aio_trace_common::LossCause;
use aya_ebpf::{
    EbpfContext,
    bindings::pt_regs,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    },
    programs::TracePointContext,
};

use crate::{
    filter::traced,
    maps::{SAVED_ARGS, close_slot, count_loss, open_slot},
};

const FIRST_ARG: usize = 16;

/// The field at `offset` of any tracepoint record (offsets from its format
/// file; at least 8 and a multiple of `T`'s size). The kernel refuses to
/// attach a program that reads past the end of its tracepoint's record.
#[inline(always)]
pub fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: the tracepoint record is the program's context; the verifier checks every load from
    // it against the record's size (the kernel refuses to attach a program reading past it), and
    // the offsets, from the format files, are naturally aligned.
    unsafe { *ctx.as_ptr().cast::<u8>().add(offset).cast::<T>() }
}

/// The syscall argument in slot `n` (0-based).
#[inline(always)]
pub fn arg(ctx: &TracePointContext, n: usize) -> u64 {
    field(ctx, FIRST_ARG + 8 * n)
}

/// The syscall's return value on `sys_exit_*`.
#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> i64 {
    field(ctx, FIRST_ARG)
}

/// 1 when the exit programs read the syscall's arguments from the caller's
/// registers (`entry_args`), which needs the kernel's BTF; 0 for saved args:
/// the entry programs keep them in `SAVED_ARGS` for the exit (`save_args`). Set by the loader
/// before load: the verifier then never walks the other branch, so a kernel
/// without BTF does not see the BTF helpers at all.
#[unsafe(no_mangle)]
static ARGS_FROM_REGS: u8 = 0;

/// The first four arguments of the syscall the current task is in, from its
/// saved user registers. At `sys_exit_*` the record carries only `ret`, and
/// the x86-64 syscall ABI leaves rdi, rsi, rdx and r10 as the caller set
/// them (32-bit callers never reach the `syscalls:*` tracepoints). Reading
/// them at the exit spares an entry program whose only job was to keep them
/// for it: ~135 ns and a table entry per call, one call per I/O when the
/// caller reaps events one at a time, as fio does.
#[inline(always)]
fn entry_args() -> [u64; 4] {
    // SAFETY: bpf_get_current_task_btf returns the current task, always valid; bpf_task_pt_regs
    // its saved user registers.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const pt_regs;
    // A BTF-typed pointer: the verifier lets the loads through as
    // fault-safe reads, no helper call each.
    // SAFETY: a BTF-typed pointer: the verifier turns these loads into fault-safe reads.
    unsafe { [(*regs).rdi, (*regs).rsi, (*regs).rdx, (*regs).r10] }
}

/// At the entry of a syscall whose exit needs its first `N` arguments (at
/// most 4, and no more than the syscall has: the kernel refuses to attach a
/// program that reads past its record): saves them in `SAVED_ARGS` for a
/// traced process, unless the exit reads them from the registers. These
/// saved-args entry programs are attached only then.
#[inline(always)]
pub fn save_args<const N: usize>(ctx: &TracePointContext) {
    // SAFETY: a static, so valid and aligned; volatile only so the loader's value is not folded
    // away.
    if unsafe { core::ptr::read_volatile(&ARGS_FROM_REGS) } != 0 {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if !traced((pid_tgid >> 32) as u32) {
        return;
    }
    let tid = pid_tgid as u32;
    let mut args = [0u64; 4];
    for (n, arg_n) in args.iter_mut().enumerate().take(N) {
        *arg_n = arg(ctx, n);
    }
    if !open_slot(&SAVED_ARGS, tid, &args) {
        count_loss(LossCause::SyscallStateFull);
    }
}

/// At a syscall's exit: its first four arguments, from the caller's
/// registers or as its entry saved them (None if the entry was not seen).
#[inline(always)]
pub fn exit_args(tid: u32) -> Option<[u64; 4]> {
    // SAFETY: a static, so valid and aligned; volatile only so the loader's value is not folded
    // away.
    if unsafe { core::ptr::read_volatile(&ARGS_FROM_REGS) } != 0 {
        Some(entry_args())
    } else {
        close_slot(&SAVED_ARGS, tid)
    }
}
