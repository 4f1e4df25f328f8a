//! Pure logic over decoded records: no kernel, no I/O, testable as is.

mod counters;
mod device;
mod inflight;
mod iocb;
mod log2;
mod loss;
mod overhead;
mod schema;

pub use counters::{ContextSummary, sum_counters};
pub use device::{DeviceSummary, log2_quantile_us, sum_devices};
pub use inflight::{Staleness, staleness};
pub use iocb::{DevName, IocbView, Op, comm_str, dev_name};
pub use log2::Log2Hist;
pub use loss::LossCounts;
pub use overhead::{ProgramCost, SelfOverhead, SelfSample, ns_per_iocb};
#[cfg(test)]
pub use schema::sample_record;
pub use schema::{IocbFields, IocbJson, IocbRow, field_names};
