//! `cargo xtask bench`: benchmarks of aio-trace itself (not `aio-trace bench`,
//! the patch's experiment): its workload generator against fio, alternating,
//! and runs of `aio-trace bench`: the scalar-vs-vectored sweep, AIO against
//! io_uring. Figures are ratios against a peer measured in the same run,
//! never absolute targets in a timed test.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

mod capacity;
mod overhead;
mod rig;

pub use rig::Rig;

/// The I/O interface of the generator-vs-fio rounds and of the sweep: the
/// names of `aio-trace workload --engine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    #[value(name = "aio")]
    Aio,
    #[value(name = "io_uring")]
    IoUring,
}

impl Engine {
    /// As `aio-trace workload --engine` and `bench --engine` take it.
    fn name(self) -> &'static str {
        match self {
            Self::Aio => "aio",
            Self::IoUring => "io_uring",
        }
    }

    /// fio's ioengine for the same interface.
    fn fio_ioengine(self) -> &'static str {
        match self {
            Self::Aio => "libaio",
            Self::IoUring => "io_uring",
        }
    }
}

pub struct BenchOptions {
    pub rounds: u32,
    pub seconds: u32,
    pub engine: Engine,
    pub sweep: bool,
    /// AIO PREADV against io_uring READV, traced.
    pub engines: bool,
    /// fio alone vs under aio-trace vs under bpftrace, and BPF time per I/O.
    pub overhead: bool,
    /// The highest record rate to a JSONL file, and what happens above it.
    pub capacity: bool,
    /// Where the bench file lives.
    pub rig: Rig,
}

pub fn json_of(cmd: &mut Command, what: &str) -> Result<Value> {
    let out = cmd
        .output()
        .with_context(|| format!("while starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("while parsing {what}'s JSON"))
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The fio job equivalent to `aio-trace workload --mode scalar --segments 1`.
pub fn fio(file: &Path, seconds: u32) -> Command {
    fio_with(file, seconds, Engine::Aio)
}

/// The same job through `engine`'s fio ioengine.
fn fio_with(file: &Path, seconds: u32, engine: Engine) -> Command {
    let mut cmd = Command::new("fio");
    cmd.args([
        "--name=randread",
        &format!("--ioengine={}", engine.fio_ioengine()),
        "--direct=1",
        "--rw=randread",
        "--bs=4k",
        "--iodepth=32",
    ])
    .arg(format!("--filename={}", file.display()))
    .arg(format!("--runtime={seconds}"))
    .args(["--time_based", "--output-format=json", "--randrepeat=0"]);
    cmd
}

fn workload(binary: &Path, file: &Path, seconds: u32, engine: Engine) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args([
        "workload",
        "--engine",
        engine.name(),
        "--mode",
        "scalar",
        "--segments",
        "1",
        "--segment-size",
        "4K",
        "--rw",
        "randread",
        "--iodepth",
        "32",
    ])
    .arg("--file")
    .arg(file)
    .args(["--duration", &seconds.to_string(), "--json"]);
    cmd
}

pub fn run(root: &Path, options: &BenchOptions) -> Result<()> {
    let binary = root.join("target/release/aio-trace");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    // Dropped at the end of the run: the rig is unmounted and freed.
    let memory_rig = match options.rig {
        Rig::Disk => None,
        Rig::Memory => {
            println!("xtask bench: the memory rig (ext4 on a loop device over /dev/shm)");
            Some(rig::MemoryRig::new(&dir)?)
        }
    };
    let file: PathBuf = memory_rig
        .as_ref()
        .map_or(dir.as_path(), |rig| rig.mount.as_path())
        .join("randread-1g.dat");
    if !file.exists() {
        println!(
            "xtask bench: creating and filling {} (1 GiB)",
            file.display()
        );
        json_of(
            Command::new(&binary)
                .args(["workload", "--size", "1G", "--ops", "1", "--json", "--file"])
                .arg(&file),
            "creating the bench file",
        )?;
    }

    println!(
        "xtask bench: aio-trace workload --engine {} (scalar, 4 KiB randread, iodepth 32, O_DIRECT) vs fio {}, {} rounds of {} s, alternating",
        options.engine.name(),
        options.engine.fio_ioengine(),
        options.rounds,
        options.seconds
    );
    let mut ratios = Vec::new();
    for round in 0..options.rounds {
        let ours_first = round % 2 == 0;
        let mut ours = 0.0;
        let mut theirs = 0.0;
        for ours_now in [ours_first, !ours_first] {
            if ours_now {
                let v = json_of(
                    &mut workload(&binary, &file, options.seconds, options.engine),
                    "aio-trace workload",
                )?;
                ours = v["iops"].as_f64().context("workload JSON has no iops")?;
            } else {
                let v = json_of(&mut fio_with(&file, options.seconds, options.engine), "fio")?;
                theirs = v["jobs"][0]["read"]["iops"]
                    .as_f64()
                    .context("fio JSON has no read iops")?;
            }
        }
        let ratio = ours / theirs.max(1e-9);
        println!(
            "  round {}: aio-trace {ours:>9.0} IOPS   fio {theirs:>9.0} IOPS   ratio {ratio:.3}",
            round + 1
        );
        ratios.push(ratio);
    }
    println!(
        "  median ratio aio-trace/fio: {:.3} (≥ 1.0: the workload generator is not the bottleneck)",
        median(&mut ratios)
    );

    if options.overhead {
        overhead::run(&binary, &file, root, options.rounds.max(5), options.seconds)?;
    }
    if options.capacity {
        capacity::run(&binary, &dir, options.seconds)?;
    }
    if options.sweep {
        println!(
            "xtask bench: scalar vs vectored sweep on {} (aio-trace bench, traced)",
            options.engine.name()
        );
        aio_trace_bench(
            &binary,
            &file,
            &[
                "--engine",
                options.engine.name(),
                "--segments",
                "1,2,4,8,16,64,256",
            ],
        )?;
    }
    if options.engines {
        println!(
            "xtask bench: AIO PREADV vs io_uring READV (aio-trace bench --compare engines, traced)"
        );
        aio_trace_bench(
            &binary,
            &file,
            &["--compare", "engines", "--segments", "1,8,64"],
        )?;
    }
    Ok(())
}

/// `aio-trace bench ARGS` over sequential reads of `file`, 2 rounds of 2 s
/// per side; its table goes to the terminal, a mismatch fails the task.
fn aio_trace_bench(binary: &Path, file: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new(binary)
        .arg("bench")
        .args(args)
        .args(["--rw", "read", "--duration", "4", "--rounds", "2", "--file"])
        .arg(file)
        .status()
        .context("while starting aio-trace bench")?;
    if !status.success() {
        bail!("aio-trace bench failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn the_engine_reaches_fio_and_the_workload() {
        let args = |cmd: &Command| -> Vec<String> {
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let uring = args(&fio_with(Path::new("f"), 5, Engine::IoUring));
        assert!(
            uring.contains(&"--ioengine=io_uring".to_owned()),
            "{uring:?}"
        );
        assert!(args(&fio(Path::new("f"), 5)).contains(&"--ioengine=libaio".to_owned()));
        let ours = args(&workload(
            Path::new("aio-trace"),
            Path::new("f"),
            5,
            Engine::IoUring,
        ));
        assert!(
            ours.windows(2).any(|w| w == ["--engine", "io_uring"]),
            "{ours:?}"
        );
    }
}
