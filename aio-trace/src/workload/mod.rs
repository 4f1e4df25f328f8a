//! The built-in workload: raw AIO over identical bytes, one vectored iocb of N
//! segments per range or N scalar iocbs — the experiment of the patch that
//! introduced IOCB_CMD_PREADV/PWRITEV.
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

pub use config::{Mode, Rw, Stop, Target, WorkloadConfig};
pub use engine::{WorkloadError, run};
pub use result::WorkloadResult;
