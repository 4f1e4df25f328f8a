//! aio-trace's kernel half: tracepoint programs on the AIO syscalls, raw
//! tracepoint programs on the iomap and block layers beneath them.
//!
//! One module per attach family; every entry point is a thin wrapper around a
//! `try_*` function returning `Result`.
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
mod maps;
mod reap;
mod submit;
mod sync;
mod syscall;
mod table;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
