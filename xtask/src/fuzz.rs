//! `cargo xtask fuzz`: every target of the fuzz crate (aio-trace/fuzz) for a
//! bounded time, started from its committed seeds (`seeds/<target>/`).
//! libFuzzer adds what it finds to `corpus/<target>/` (ignored by git) and
//! leaves a crashing input in `artifacts/<target>/`, and the task fails.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

/// cargo-fuzz and libFuzzer's sanitizer flags need a nightly compiler.
const TOOLCHAIN: &str = "nightly";

fn say(what: &str) {
    println!("xtask fuzz: {what}");
}

/// cargo-fuzz in `<workspace>/.tools/bin`, installed there if missing.
fn ensure_cargo_fuzz(root: &Path) -> Result<std::path::PathBuf> {
    let tools = root.join(".tools");
    let bin = tools.join("bin/cargo-fuzz");
    if bin.is_file() {
        return Ok(bin);
    }
    say("installing cargo-fuzz into .tools (a few minutes)");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked", "--root"])
        .arg(&tools)
        // Its own temporary build directory, not the workspace's.
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("while starting cargo install cargo-fuzz")?;
    if !status.success() || !bin.is_file() {
        bail!("installing cargo-fuzz failed ({status})");
    }
    Ok(bin)
}

fn ensure_nightly() -> Result<()> {
    let ok = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "-V"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "fuzzing needs a nightly toolchain: rustup toolchain install nightly --profile minimal"
        );
    }
    Ok(())
}

/// The fuzz targets, as cargo-fuzz lists them.
fn targets(cargo_fuzz: &Path, fuzz_dir: &Path) -> Result<Vec<String>> {
    let out = Command::new(cargo_fuzz)
        .args(["fuzz", "list", "--fuzz-dir"])
        .arg(fuzz_dir)
        .env("RUSTUP_TOOLCHAIN", TOOLCHAIN)
        .output()
        .context("while running cargo fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Fuzzes each target for `seconds`; fails naming the targets that crashed.
pub fn run(root: &Path, env: &crate::setup::BuildEnv, seconds: u32) -> Result<()> {
    ensure_nightly()?;
    let cargo_fuzz = ensure_cargo_fuzz(root)?;
    let fuzz_dir = root.join("aio-trace/fuzz");
    let targets = targets(&cargo_fuzz, &fuzz_dir)?;
    let mut crashed = Vec::new();
    for target in &targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let seeds = fuzz_dir.join("seeds").join(target);
        fs::create_dir_all(&corpus)
            .with_context(|| format!("while creating {}", corpus.display()))?;
        say(&format!("{target} for {seconds} s"));
        let mut cmd = Command::new(&cargo_fuzz);
        cmd.args(["fuzz", "run", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg(target)
            // New inputs go to the first directory; the seeds are only read.
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1")
            .env("RUSTUP_TOOLCHAIN", TOOLCHAIN)
            // cargo-fuzz must reach rustup's cargo (which honours
            // RUSTUP_TOOLCHAIN), not the stable one running xtask.
            .env_remove("CARGO")
            // The fuzz crate keeps its own target directory (its flags differ).
            .env("CARGO_TARGET_DIR", fuzz_dir.join("target"));
        // aio-trace's build script embeds the eBPF object, fuzzed or not.
        env.apply(&mut cmd);
        let status = cmd
            .status()
            .with_context(|| format!("while starting cargo fuzz run {target}"))?;
        if !status.success() {
            say(&format!(
                "{target} failed ({status}); the input is in {}",
                fuzz_dir.join("artifacts").join(target).display()
            ));
            crashed.push(target.as_str());
        }
    }
    if !crashed.is_empty() {
        bail!("fuzzing found crashes in {}", crashed.join(", "));
    }
    say(&format!("{} targets, no crash", targets.len()));
    Ok(())
}
