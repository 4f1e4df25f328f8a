//! Pure logic over decoded records: no kernel, no I/O, testable as is.

mod counters;
mod inflight;
mod iocb;
mod loss;

pub use counters::{ContextSummary, sum_counters};
pub use inflight::{Staleness, staleness};
pub use iocb::{IocbView, Op, comm_str};
pub use loss::LossCounts;
