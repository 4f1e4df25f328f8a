//! `cargo xtask demo`: aio-trace against a real client. `demo mariadb` runs a
//! private MariaDB under sysbench's OLTP load, traces it with `aio-trace
//! record -p`, and says whether the requests of the interface InnoDB chose
//! (io_uring or libaio) were recorded, and whether any were lost.

mod guard;
mod mariadb;
mod trace;
mod verdict;

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, anyhow, bail};

use self::{mariadb::Server, verdict::Tally};

/// The asynchronous I/O interface InnoDB is to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AioMode {
    #[value(name = "io_uring")]
    IoUring,
    Libaio,
}

impl AioMode {
    /// `kernel.io_uring_disabled` for the run. InnoDB asks for io_uring
    /// first and falls back to libaio when `io_uring_setup` is refused,
    /// which 2 does for every process.
    fn io_uring_disabled(self) -> &'static str {
        match self {
            Self::IoUring => "0",
            Self::Libaio => "2",
        }
    }

    /// The record's `api` of the requests InnoDB makes through it.
    pub fn api(self) -> &'static str {
        match self {
            Self::IoUring => "io_uring",
            Self::Libaio => "aio",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::IoUring => "io_uring",
            Self::Libaio => "libaio",
        }
    }
}

pub struct MariadbOptions {
    pub aio_mode: AioMode,
    /// How long sysbench runs, traced.
    pub seconds: u32,
}

/// sysbench's schema: 2 tables of 100,000 rows are about 50 MB, which a
/// 16 MiB buffer pool cannot hold, so InnoDB keeps reading and writing pages.
const SBTEST: [&str; 2] = ["--tables=2", "--table-size=100000"];
const THREADS: u32 = 4;

/// What the traced run saw, kept once the server and its files are gone.
struct Run {
    chosen: AioMode,
    sysbench: String,
    reads: u64,
    writes: u64,
    record_stderr: Vec<String>,
}

pub fn mariadb(root: &Path, binary: &Path, options: &MariadbOptions) -> Result<()> {
    guard::catch_interrupts();
    let recording = trace::recording_path(root, &format!("mariadb-{}", options.aio_mode.name()))?;
    let run = traced_run(binary, &recording, options)?;
    guard::check_interrupted()?;
    trace::report(binary, &recording)?;
    let text = std::fs::read_to_string(&recording)
        .with_context(|| format!("cannot read {}", recording.display()))?;
    let tally = Tally::from_jsonl(&text)
        .with_context(|| format!("while reading {}", recording.display()))?;
    print_summary(
        &run,
        &tally,
        recording.strip_prefix(root).unwrap_or(&recording),
    );
    match verdict::judge(run.chosen, run.reads + run.writes, &tally) {
        Ok(pass) => {
            println!("PASS: {pass}");
            Ok(())
        }
        Err(fail) => Err(anyhow!("FAIL: {fail}")),
    }
}

/// Everything that changes the machine happens here, under guards that undo
/// it on the way out, in reverse order: the recording stops, the server
/// shuts down, the sysctl is restored, the temporary directory goes.
fn traced_run(binary: &Path, recording: &Path, options: &MariadbOptions) -> Result<Run> {
    let dir = guard::TempDir::create("aio-trace-mariadb")?;
    let _sysctl = guard::Sysctl::set(
        "kernel.io_uring_disabled",
        options.aio_mode.io_uring_disabled(),
    )?;
    println!(
        "xtask demo: starting a private mariadbd in {}",
        dir.path().display()
    );
    let mut server = Server::start(dir.path())?;
    let log = server.error_log();
    let chosen = verdict::chosen_interface(&log)
        .context("mariadbd's error log does not say which I/O interface InnoDB uses")?;
    println!("xtask demo: InnoDB uses {}", chosen.name());
    if chosen != options.aio_mode {
        bail!(
            "InnoDB chose {} although {} was asked for; its error log ends:\n{}",
            chosen.name(),
            options.aio_mode.name(),
            guard::last_lines(&log, 10)
        );
    }
    server.sql("CREATE DATABASE sbtest")?;
    println!("xtask demo: sysbench oltp_read_write prepare (2 tables of 100,000 rows)");
    guard::run_logged(
        &mut sysbench(server.socket(), &[], "prepare"),
        &dir.path().join("prepare.log"),
        "sysbench prepare",
    )?;

    let before = server.data_io()?;
    let tracer = trace::Recording::start(binary, server.pid(), recording)?;
    println!(
        "xtask demo: sysbench oltp_read_write, {THREADS} threads, {} s, under aio-trace record -p {} -o {}",
        options.seconds,
        server.pid(),
        recording.display()
    );
    let sysbench_out = guard::run_logged(
        &mut sysbench(
            server.socket(),
            &[
                format!("--threads={THREADS}"),
                format!("--time={}", options.seconds),
            ],
            "run",
        ),
        &dir.path().join("run.log"),
        "sysbench run",
    )?;
    let after = server.data_io()?;
    let record_stderr = tracer.stop()?;
    server.shutdown()?;
    Ok(Run {
        chosen,
        sysbench: sysbench_out,
        reads: after.reads.saturating_sub(before.reads),
        writes: after.writes.saturating_sub(before.writes),
        record_stderr,
    })
}

fn sysbench(socket: &Path, extra: &[String], step: &str) -> Command {
    let mut cmd = Command::new("sysbench");
    cmd.args([
        "--db-driver=mysql",
        "--mysql-user=root",
        "--mysql-db=sbtest",
    ])
    .arg(format!("--mysql-socket={}", socket.display()))
    .args(SBTEST)
    .args(extra)
    .args(["oltp_read_write", step]);
    cmd
}

fn print_summary(run: &Run, tally: &Tally, recording: &Path) {
    println!("xtask demo: mariadb, {}", run.chosen.name());
    println!(
        "  InnoDB's interface (its error log): {}",
        run.chosen.name()
    );
    match verdict::transactions(&run.sysbench) {
        Some((count, rate)) => println!("  sysbench: {count} transactions ({rate:.1}/s)"),
        None => println!("  sysbench: no transaction count in its output"),
    }
    println!(
        "  InnoDB data file I/O while traced: {} reads, {} writes",
        run.reads, run.writes
    );
    println!(
        "  records of mariadbd by api and op ({}):",
        recording.display()
    );
    let lines = tally.lines();
    if lines.is_empty() {
        println!("    none");
    }
    for line in lines {
        println!("    {line}");
    }
    match verdict::losses(&run.record_stderr) {
        Some((_, line)) => println!("  {line}"),
        None => println!("  lost: unknown, record printed no loss line"),
    }
}
