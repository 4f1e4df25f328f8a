//! The built-in workload: identical bytes moved as one vectored request of N
//! segments per range or as N scalar requests — the experiment of the patch
//! that introduced IOCB_CMD_PREADV/PWRITEV — through Linux AIO (raw
//! syscalls) or io_uring (the `io-uring` crate).
//!
//! Layer: workload, beside the tracer rather than above it. Imports only
//! `aio` and `clock`.

pub mod background;
pub mod config;
pub mod engine;
pub mod pattern;
pub mod plan;
pub mod result;
pub mod target;

pub use config::{Engine, Mode, Rw, Stop, Target, WorkloadConfig};
pub use engine::{WorkloadError, run};
pub use result::WorkloadResult;
