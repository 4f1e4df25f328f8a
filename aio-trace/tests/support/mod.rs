//! Support shared by the terminal tests and the root tests: tools besides
//! aio-trace, and tmux (a real terminal).
#![allow(dead_code)]

pub mod tmux;
pub mod tool;
