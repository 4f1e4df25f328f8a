//! `cargo xtask lint`'s pass over the eBPF crate: clippy for
//! bpfel-unknown-none with the toolchain that builds it, so the workspace
//! lints (every `unsafe` block documented) hold in the kernel half too.
//!
//! Layer: xtask (build tooling); imports only `setup` and std.

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::setup::BuildEnv;

/// `cargo clippy -D warnings` over aio-trace-ebpf as aya-build compiles it:
/// `core` built from source for the BPF target, `bpf_target_arch` set, in a
/// target directory of its own (its `core` differs from the host's).
pub fn ebpf(root: &Path, env: &BuildEnv) -> Result<()> {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(root)
        .args(["run", env.toolchain(), "cargo", "clippy"])
        .args(["-p", "aio-trace-ebpf", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(root.join("target/ebpf-lint"))
        .args(["--", "-D", "warnings"])
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!("--cfg=bpf_target_arch=\"{}\"", std::env::consts::ARCH),
        )
        // The host build's variables would point cargo at the wrong rustc.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO");
    env.apply(&mut cmd);
    let status = cmd
        .status()
        .context("while starting clippy for the eBPF crate (is rustup installed?)")?;
    if !status.success() {
        bail!(
            "clippy for the eBPF crate failed ({status}); its toolchain needs the clippy component: \
             rustup component add clippy --toolchain {}",
            env.toolchain()
        );
    }
    Ok(())
}
