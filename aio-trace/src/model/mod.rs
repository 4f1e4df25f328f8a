//! Pure logic over decoded records: no kernel, no I/O, testable as is.

mod counters;
mod device;
mod iocb;
mod loss;
mod overhead;
mod staleness;

pub use counters::{ContextSummary, sum_counters};
pub use device::{DeviceSummary, log2_quantile_us, sum_devices};
pub use iocb::{DevName, IocbView, Op, comm_str, dev_name};
pub use loss::LossCounts;
pub use overhead::{ProgramCost, SelfOverhead, SelfSample, ns_per_iocb};
pub use staleness::{Staleness, staleness};
