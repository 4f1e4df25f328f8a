//! aio-trace's kernel half: tracepoint programs on the AIO syscalls, raw
//! tracepoint programs on the iomap and block layers beneath them.
//!
//! One module per attach family; every entry point is a thin wrapper around a
//! `try_*` function returning `Result`.
//!
//! # Safety
//!
//! Every `unsafe` block says why it is sound in a `SAFETY` comment (enforced by
//! `cargo xtask lint`). Most rest on a few facts of the BPF runtime:
//!
//! - **Map value pointers** (`get_ptr_mut`, `table::get_ptr`, `maps::inflight`,
//!   `maps::counters`, `maps::active_slot`) are non-null when returned, point
//!   inside the map's value (the verifier checks every access against the
//!   value's size), and stay valid while the program runs (maps outlive
//!   programs; array map values are never freed). Another CPU may store to the
//!   same value meanwhile, as through any map lookup: the values are plain
//!   integers, so a race can lose an update but never form an invalid value.
//! - **Per-CPU values** (`PerCpuArray`, `PerCpuHashMap`, the scratch and batch
//!   slots) are this CPU's alone: programs run with migration off, and the
//!   syscall tracepoint programs with preemption off.
//! - **`bpf_probe_read_*`** take any address: a fault is returned as an error.
//! - **`bpf_loop`** calls its callback with the context pointer it was given,
//!   synchronously; the callbacks cast it back to the caller's local.
//! - **Helpers without pointer arguments** (`bpf_ktime_get_ns`) have no
//!   preconditions; aya-ebpf marks every helper `unsafe`.
//! - **Globals the loader sets** are statics read with `read_volatile` so the
//!   compiler does not fold their zero initialisers.
//! - **The set-associative tables** follow the seqlock of `table`.
#![no_std]
#![no_main]
// `atomic_cxchg`: the bpfel target has no compare-and-swap in core::sync::atomic.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod block;
mod claim;
mod context;
mod dispatch;
mod filter;
mod iovec;
mod kernel;
mod light;
mod maps;
mod reap;
mod reread;
mod submit;
mod sync;
mod syscall;
mod table;
mod uring;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
