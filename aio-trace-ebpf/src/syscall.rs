//! Reading tracepoint records: any field, and the `syscalls:sys_enter_*` /
//! `sys_exit_*` arguments and return value.
//!
//! Both layouts start with the 8-byte common header and a 4-byte `__syscall_nr`
//! padded to 8; arguments follow as 8-byte slots, and `ret` sits at 16 on exit.
//!
//! The record is the program's context, which the verifier lets a tracepoint
//! program load from directly (past the 8-byte header, naturally aligned): no
//! `bpf_probe_read_kernel` call per field, which cost ~25 ns each.

use aya_ebpf::{EbpfContext, programs::TracePointContext};

const FIRST_ARG: usize = 16;

/// The field at `offset` of any tracepoint record (offsets from its format
/// file; at least 8 and a multiple of `T`'s size). The kernel refuses to
/// attach a program that reads past the end of its tracepoint's record.
#[inline(always)]
pub fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
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
