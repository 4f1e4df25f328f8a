//! `aio-trace top`: collection (a session thread forwarding record batches),
//! state (a plain struct: the data store and the view over it), rendering
//! (functions of the state) and the terminal guard, each in its own module.

pub mod app;
pub mod collect;
pub mod hist;
pub mod replay;
pub mod state;
pub mod stats;
pub mod store;
pub mod terminal;
pub mod ui;
pub mod view;
