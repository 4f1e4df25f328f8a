//! Pure logic over decoded records: matching, aggregation, histograms, the
//! arithmetic of overhead. No kernel, no I/O, testable as is.
//!
//! Layer: model. Imports only aio-trace-common; every layer above may import it.

mod counters;
mod device;
mod iocb;
mod log2;
mod loss;
mod overhead;
mod schema;
mod staleness;

pub use counters::{
    ContextSummary, OpCounts, add_slots, calls_by_context, slots_settled, sum_counters,
};
pub use device::{DeviceSummary, log2_quantile_us, sum_devices};
pub use iocb::{Api, DevName, IocbView, Op, comm_str, dev_name};
pub use log2::Log2Hist;
pub use loss::LossCounts;
pub use overhead::{Overhead, OverheadSample, ProgramCost, ns_per_iocb};
pub use schema::{IocbFields, IocbJson, IocbRow, field_names};
#[cfg(test)]
pub use schema::{sample_record, sample_uring_record};
pub use staleness::{Staleness, staleness};
