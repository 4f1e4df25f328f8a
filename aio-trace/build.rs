//! Builds the eBPF object (aio-trace-ebpf) for bpfel-unknown-none with aya-build,
//! and sets `AIO_TRACE_GIT_REV` (the git revision `--version` shows).
//!
//! `cargo xtask setup` installs the toolchain and bpf-linker this needs into
//! `<workspace>/.tools`; that folder is put first on PATH here so a plain
//! `cargo build -p aio-trace` finds them too.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.parent().context("workspace root")?;
    println!(
        "cargo:rustc-env=AIO_TRACE_GIT_REV={}",
        git_revision(workspace)
    );
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

/// `git` in `dir`: its trimmed stdout, or None when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// The short hash of HEAD, with `-dirty` when the work tree has changes, or
/// `unknown` when the workspace is not a git checkout of its own (a source
/// tarball, or one unpacked inside some other repository).
fn git_revision(workspace: &Path) -> String {
    let own_checkout = git(workspace, &["rev-parse", "--show-toplevel"])
        .and_then(|top| Path::new(&top).canonicalize().ok())
        .is_some_and(|top| workspace.canonicalize().is_ok_and(|w| w == top));
    if !own_checkout {
        return "unknown".into();
    }
    // Rebuild when HEAD moves: HEAD itself (another branch checked out) and
    // the ref it names (a commit), loose or packed.
    rerun_if_git_path_changed(workspace, "HEAD", false);
    rerun_if_git_path_changed(workspace, "packed-refs", false);
    if let Some(head_ref) = git(workspace, &["symbolic-ref", "-q", "HEAD"]) {
        rerun_if_git_path_changed(workspace, &head_ref, true);
    }
    let Some(hash) = git(workspace, &["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    match git(workspace, &["status", "--porcelain"]) {
        Some(changes) if !changes.is_empty() => format!("{hash}-dirty"),
        _ => hash,
    }
}

/// `cargo:rerun-if-changed` for a file in the git directory (`git rev-parse
/// --git-path` resolves it, in a linked work tree too). A missing file is
/// skipped (cargo would rerun the script on every build), or with `or_folder`
/// (a packed ref) watched through the folder it would be created in.
fn rerun_if_git_path_changed(workspace: &Path, name: &str, or_folder: bool) {
    let Some(path) = git(workspace, &["rev-parse", "--git-path", name]) else {
        return;
    };
    let path = workspace.join(path);
    let watched = if path.exists() {
        Some(path.as_path())
    } else {
        path.parent().filter(|dir| or_folder && dir.is_dir())
    };
    if let Some(watched) = watched {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
}
