//! aio-trace: an eBPF tracer for Linux asynchronous I/O.
//!
//! Data flows one way, and so do imports (a module imports only the layers
//! listed before it):
//!
//! 1. Leaves and system access: [`clock`], [`duration`], [`tracefs`], [`btf`],
//!    [`blockdev`] (device names from sysfs), [`cgroup`] (cgroup v2 paths and ids),
//!    [`privileges`], [`aio`] (the AIO syscalls).
//! 2. [`model`]: pure logic over decoded records — matching, aggregation,
//!    histograms, the record schema. No kernel, no I/O. Beside it,
//!    [`workload`]: the built-in workload (AIO or io_uring), which imports
//!    only the leaves and the io-uring crate.
//! 3. [`usage`] samples this process's costs into the model's types;
//!    [`loader`] loads and attaches the kernel programs (aio-trace-ebpf) and
//!    owns the handles to their maps, the kernel's in-flight table among them.
//! 4. [`reader`] decodes the ring buffer into records; [`session`] drains it
//!    into a sink and reclaims what nothing will reap; [`sampler`] schedules
//!    the light tier's sampling windows for it.
//! 5. Views over records: [`output`] (snoop lines), [`export`] (JSONL, CSV,
//!    Perfetto, Prometheus), [`report`] (recordings read back), [`tui`] (`top`).
//!
//! The subcommands themselves live in the binary (`src/cmd/`), above all of
//! these.

pub mod aio;
pub mod blockdev;
pub mod btf;
pub mod cgroup;
pub mod clock;
pub mod duration;
pub mod export;
pub mod loader;
pub mod model;
pub mod output;
pub mod privileges;
pub mod reader;
pub mod report;
pub mod sampler;
pub mod session;
pub mod tracefs;
pub mod tui;
pub mod usage;
pub mod workload;
