//! aio-trace: an eBPF tracer for Linux asynchronous I/O.
//!
//! Data flows one way: kernel programs (aio-trace-ebpf) → ring buffer and maps
//! → [`reader`] decodes → [`model`] aggregates → [`output`] renders.

pub mod aio;
pub mod bench;
pub mod btf;
pub mod doctor;
pub mod export;
pub mod loader;
pub mod model;
pub mod output;
pub mod privileges;
pub mod reader;
pub mod report;
pub mod selfcost;
pub mod session;
pub mod tracefs;
pub mod tui;
pub mod workload;
