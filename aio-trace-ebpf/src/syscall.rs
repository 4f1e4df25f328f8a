//! Reading tracepoint records: any field, and the `syscalls:sys_enter_*` /
//! `sys_exit_*` arguments and return value.
//!
//! Both layouts start with the 8-byte common header and a 4-byte `__syscall_nr`
//! padded to 8; arguments follow as 8-byte slots, and `ret` sits at 16 on exit.

use aya_ebpf::programs::TracePointContext;

const FIRST_ARG: usize = 16;

/// The field at `offset` of any tracepoint record (offsets from its format file).
#[inline(always)]
pub fn field<T>(ctx: &TracePointContext, offset: usize) -> Result<T, i64> {
    unsafe { ctx.read_at::<T>(offset) }.map_err(|e| e as i64)
}

/// The syscall argument in slot `n` (0-based).
#[inline(always)]
pub fn arg(ctx: &TracePointContext, n: usize) -> Result<u64, i64> {
    field(ctx, FIRST_ARG + 8 * n)
}

/// The syscall's return value on `sys_exit_*`.
#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> Result<i64, i64> {
    field(ctx, FIRST_ARG)
}
