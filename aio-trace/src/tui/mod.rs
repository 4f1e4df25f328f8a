//! `aio-trace top`: collection (a session thread forwarding record batches),
//! state (a plain struct: the data store and the view over it), rendering
//! (functions of the state) and the terminal guard, each in its own module.
//!
//! Layer: views, the top of the library. Imports `model`, `reader`, `session`,
//! `loader` (live mode), `report` (replay reads recordings), `workload`
//! (`--workload`), `usage` and `clock`. Nothing in the library imports it.

pub mod app;
pub mod batch;
pub mod collect;
pub mod hist;
pub mod replay;
pub mod state;
pub mod stats;
pub mod store;
pub mod terminal;
pub mod ui;
pub mod view;
