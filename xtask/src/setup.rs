//! The eBPF toolchain: a rustc that can build `core` for bpfel-unknown-none
//! (nightly + rust-src, or stable + RUSTC_BOOTSTRAP=1 + rust-src) and a
//! bpf-linker built against that rustc's own libLLVM, installed in
//! `<workspace>/.tools` (ignored by git; aio-trace/build.rs puts it on PATH).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

const BPF_LINKER_VERSION: &str = "^0.13";

/// Environment the eBPF build needs, applied to every cargo call xtask makes.
pub struct BuildEnv {
    toolchain: String,
    /// Stable toolchains need RUSTC_BOOTSTRAP=1 for `-Z build-std`.
    bootstrap: bool,
}

impl BuildEnv {
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![("AIO_TRACE_EBPF_TOOLCHAIN", self.toolchain.clone())];
        if self.bootstrap {
            vars.push(("RUSTC_BOOTSTRAP", "1".into()));
        }
        vars
    }

    /// The rustup toolchain that builds (and lints) the eBPF crate.
    pub fn toolchain(&self) -> &str {
        &self.toolchain
    }

    pub fn apply(&self, cmd: &mut Command) {
        for (key, value) in self.vars() {
            cmd.env(key, value);
        }
    }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rustc_verbose(toolchain: &str) -> Option<String> {
    output(Command::new("rustup").args(["run", toolchain, "rustc", "-vV"]))
}

/// The LLVM major version in `rustc -vV` output.
fn llvm_major(verbose: &str) -> Option<u32> {
    let line = verbose
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))?;
    line.split('.').next()?.trim().parse().ok()
}

fn say(what: &str) {
    println!("xtask setup: {what}");
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    say(what);
    let status = cmd.status().with_context(|| format!("while {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Picks nightly if it is (or can be) installed, else stable with RUSTC_BOOTSTRAP.
fn choose_toolchain() -> Result<BuildEnv> {
    if output(Command::new("rustup").arg("--version")).is_none() {
        bail!(
            "rustup is not installed: install it from https://rustup.rs, then run `cargo xtask setup` again"
        );
    }
    if rustc_verbose("nightly").is_some() {
        return Ok(BuildEnv {
            toolchain: "nightly".into(),
            bootstrap: false,
        });
    }
    say("no nightly toolchain; installing one (minimal profile, rust-src)");
    let installed = Command::new("rustup")
        .args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if installed && rustc_verbose("nightly").is_some() {
        return Ok(BuildEnv {
            toolchain: "nightly".into(),
            bootstrap: false,
        });
    }
    say("nightly is unavailable; using stable with RUSTC_BOOTSTRAP=1");
    if rustc_verbose("stable").is_none() {
        bail!("neither a nightly nor a stable Rust toolchain is available through rustup");
    }
    Ok(BuildEnv {
        toolchain: "stable".into(),
        bootstrap: true,
    })
}

fn ensure_rust_src(toolchain: &str) -> Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        toolchain,
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    run(
        Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", toolchain]),
        &format!("installing rust-src for {toolchain} (eBPF builds core from source)"),
    )
}

/// The toolchain's own libLLVM (rustup ships `lib/libLLVM.so.<major>.<minor>-rust-<version>`).
fn toolchain_libllvm(toolchain: &str) -> Result<PathBuf> {
    let sysroot =
        output(Command::new("rustup").args(["run", toolchain, "rustc", "--print", "sysroot"]))
            .context("while asking rustc for its sysroot")?;
    let lib = Path::new(sysroot.trim()).join("lib");
    fs::read_dir(&lib)
        .with_context(|| format!("while reading {}", lib.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        })
        .with_context(|| {
            format!(
                "the {toolchain} toolchain ships no libLLVM.so in {}",
                lib.display()
            )
        })
}

fn ensure_bpf_linker(root: &Path, toolchain: &str, verbose: &str) -> Result<()> {
    let tools = root.join(".tools");
    let linker = tools.join("bin/bpf-linker");
    let major = llvm_major(verbose).context("rustc -vV did not name its LLVM version")?;
    // The stamp ties the linker to the exact rustc whose libLLVM it loads.
    let stamp_path = tools.join("bpf-linker.stamp");
    let stamp = format!("{toolchain}\n{verbose}");
    if linker.is_file() && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let libllvm = toolchain_libllvm(toolchain)?;
    let llvm_lib = tools.join("llvm/lib");
    fs::create_dir_all(&llvm_lib)
        .with_context(|| format!("while creating {}", llvm_lib.display()))?;
    for name in [
        "libLLVM.so".into(),
        libllvm.file_name().expect("file").to_owned(),
    ] {
        let link = llvm_lib.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&libllvm, &link)
            .with_context(|| format!("while linking {}", link.display()))?;
    }
    run(
        Command::new("rustup")
            .args([
                "run",
                toolchain,
                "cargo",
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args([
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
                "--force",
            ])
            .arg("--root")
            .arg(&tools)
            .env("LLVM_PREFIX", tools.join("llvm")),
        &format!("building bpf-linker against {toolchain}'s LLVM {major} (about 2 minutes)"),
    )?;
    fs::write(&stamp_path, stamp)
        .with_context(|| format!("while writing {}", stamp_path.display()))?;
    Ok(())
}

/// Installs the Debian packages providing the missing `(command, package)`s.
pub fn ensure_packages(needed: &[(&str, &str)]) -> Result<()> {
    let mut missing: Vec<&str> = needed
        .iter()
        .filter(|(command, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {command}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let sudo = !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    // The package lists of a fresh machine may be stale: refresh once, then install.
    let _ = apt(&["update", "-q"]).status();
    let mut install = apt(&["install", "-y", "-q"]);
    install.args(&missing);
    run(&mut install, &format!("installing {}", missing.join(" "))).with_context(|| {
        format!(
            "this task needs {}; install them by hand if apt-get cannot",
            missing.join(", ")
        )
    })
}

/// Idempotent: checks each piece, installs only what is missing.
pub fn ensure(root: &Path) -> Result<BuildEnv> {
    let env = choose_toolchain()?;
    ensure_rust_src(&env.toolchain)?;
    let verbose =
        rustc_verbose(&env.toolchain).context("the chosen toolchain's rustc does not run")?;
    ensure_bpf_linker(root, &env.toolchain, &verbose)?;
    say(&format!(
        "ready: {} toolchain{}, bpf-linker in {}",
        env.toolchain,
        if env.bootstrap {
            " with RUSTC_BOOTSTRAP=1"
        } else {
            ""
        },
        root.join(".tools/bin").display()
    ));
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_llvm_major() {
        let v = "rustc 1.97.0-nightly\nhost: x86_64-unknown-linux-gnu\nLLVM version: 22.1.4\n";
        assert_eq!(llvm_major(v), Some(22));
        assert_eq!(llvm_major("rustc 1.0\n"), None);
    }
}
