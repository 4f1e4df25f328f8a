//! Empty library target: lets aio-trace list this crate as a build-dependency
//! (so cargo rebuilds the eBPF object when it changes); the programs live in
//! the `aio-trace` binary target (src/main.rs).
#![no_std]
