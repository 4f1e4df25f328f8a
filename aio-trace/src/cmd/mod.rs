//! One module per subcommand; `common` holds what the tracing ones share.
//!
//! Layer: commands, the top of the binary. A command may import `cli`,
//! `cmd::common` and the library (`aio_trace::*`); no command imports another,
//! and nothing in the library imports a command.

pub mod bench;
pub mod common;
pub mod completions;
pub mod doctor;
pub mod man;
pub mod record;
pub mod report;
pub mod serve;
pub mod snoop;
pub mod top;
pub mod workload;
