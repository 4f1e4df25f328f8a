//! Builds the eBPF object (aio-trace-ebpf) for bpfel-unknown-none with aya-build.
//!
//! `cargo xtask setup` installs the toolchain and bpf-linker this needs into
//! `<workspace>/.tools`; that folder is put first on PATH here so a plain
//! `cargo build -p aio-trace` finds them too.

use std::{env, path::PathBuf};

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.parent().context("workspace root")?;
    let tools_bin = workspace.join(".tools/bin");
    println!("cargo:rerun-if-changed={}", tools_bin.display());
    println!("cargo:rerun-if-env-changed=AIO_TRACE_EBPF_TOOLCHAIN");

    let path = env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![tools_bin.clone()];
    dirs.extend(env::split_paths(&path));
    let joined = env::join_paths(dirs).context("joining PATH")?;
    // SAFETY: build scripts are single-threaded here; aya-build's cargo child inherits PATH.
    unsafe { env::set_var("PATH", &joined) };

    let has_linker = env::split_paths(&joined).any(|d| d.join("bpf-linker").is_file());
    if !has_linker && env::var_os("AYA_BUILD_SKIP").is_none() {
        return Err(anyhow!(
            "bpf-linker was not found in {} or on PATH: run `cargo xtask setup` first",
            tools_bin.display()
        ));
    }

    let toolchain = env::var("AIO_TRACE_EBPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    let ebpf_dir = workspace.join("aio-trace-ebpf");
    let root_dir = ebpf_dir.to_str().context("non-UTF-8 workspace path")?;
    aya_build::build_ebpf(
        [Package {
            name: "aio-trace-ebpf",
            root_dir,
            ..Default::default()
        }],
        Toolchain::Custom(&toolchain),
    )
}
