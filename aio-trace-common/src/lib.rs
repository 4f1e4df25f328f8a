//! Types shared by the kernel half (`aio-trace-ebpf`) and the user half (`aio-trace`).
//!
//! Every type is `#[repr(C)]` with explicit padding and a size assertion, so a
//! layout change breaks the build instead of silently garbling the trace.
#![no_std]

pub mod abi;
pub mod config;
pub mod event;
pub mod names;
pub mod table;
pub mod uring;

pub use abi::*;
pub use config::*;
pub use event::*;
pub use names::*;
pub use table::*;
pub use uring::*;
