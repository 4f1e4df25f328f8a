//! `cargo xtask`: set up the eBPF toolchain, build, run, test, demo and install aio-trace.

mod bench;
mod demo;
mod fuzz;
mod lint;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "aio-trace's build tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Make sure of a toolchain that builds the eBPF crate and of a matching bpf-linker.
    Setup,
    /// Set up, build (release) and run aio-trace as root with ARGS (default: `top --workload`).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then run the unit tests and the root integration tests.
    Test,
    /// cargo fmt --check and cargo clippy -D warnings over the workspace, the
    /// eBPF crate included (for its own target).
    Lint,
    /// Benchmarks: the workload generator against fio (alternating rounds), the
    /// scalar-vs-vectored sweep with --sweep, AIO against io_uring with --engines.
    Bench {
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// The engine of the generator-vs-fio rounds (fio's libaio or
        /// io_uring ioengine) and of --sweep.
        #[arg(long, value_enum, default_value = "aio")]
        engine: bench::Engine,
        #[arg(long)]
        sweep: bool,
        /// AIO PREADV against io_uring READV over the same ranges, traced
        /// (aio-trace bench --compare engines).
        #[arg(long)]
        engines: bool,
        /// fio alone vs under aio-trace vs under bpftrace (≥ 5 rounds), BPF time
        /// per I/O, start-up time and RSS.
        #[arg(long)]
        overhead: bool,
        /// Records per second aio-trace writes to a file, and loss above that.
        #[arg(long)]
        capacity: bool,
        /// Where the bench file lives: `disk` (the checkout's filesystem) or
        /// `memory` (ext4 on a loop device over /dev/shm: CPU-bound, without
        /// the host's noise).
        #[arg(long, value_enum, default_value = "disk")]
        rig: bench::Rig,
    },
    /// Fuzz every target of aio-trace/fuzz for SECONDS each (nightly; installs
    /// cargo-fuzz into .tools if missing). Not part of `test`.
    Fuzz {
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// aio-trace against a real client (root; installs the client if missing).
    Demo {
        #[command(subcommand)]
        demo: Demo,
    },
    /// Build the release binary and install it to PREFIX/bin (default /usr/local),
    /// with its bash, zsh and fish completions and its man pages under PREFIX/share.
    Install {
        #[arg(long, default_value = "/usr/local")]
        prefix: PathBuf,
    },
}

#[derive(Subcommand)]
enum Demo {
    /// A private MariaDB under sysbench oltp_read_write, traced by `aio-trace
    /// record -p`: which interface InnoDB chose, the records per api and op,
    /// the losses; fails if InnoDB's requests were not recorded.
    Mariadb {
        /// The interface InnoDB is to use: libaio sets kernel.io_uring_disabled=2
        /// for the run.
        #[arg(long, value_enum, default_value = "io_uring")]
        aio_mode: demo::AioMode,
        /// How long sysbench runs under the tracer (sysbench takes 0 as "forever").
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        seconds: u32,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root();
    match cli.task {
        Task::Setup => setup::ensure(&root).map(drop),
        Task::Run { args } => {
            let env = setup::ensure(&root)?;
            cargo(&root, &env, &["build", "--release", "-p", "aio-trace"])?;
            let args = if args.is_empty() {
                vec!["top".to_owned(), "--workload".to_owned()]
            } else {
                args
            };
            let binary = root.join("target/release/aio-trace");
            let status = as_root(&binary, &args)
                .status()
                .with_context(|| format!("while starting {}", binary.display()))?;
            if !status.success() {
                bail!("aio-trace exited with {status}");
            }
            Ok(())
        }
        Task::Test => {
            let env = setup::ensure(&root)?;
            // What the root integration tests drive besides aio-trace itself.
            setup::ensure_packages(&[
                ("tmux", "tmux"),
                ("fio", "fio"),
                ("losetup", "util-linux"),
                ("mkfs.ext4", "e2fsprogs"),
                ("setpriv", "util-linux"),
                ("promtool", "prometheus"),
            ])?;
            println!("xtask: unit tests (no root needed)");
            cargo(&root, &env, &["test"])?;
            // The process the root tests trace: its own package, built into
            // the same profile as aio-trace, where the tests look for it.
            cargo(&root, &env, &["build", "-p", "aio-trace-testee"])?;
            println!("xtask: integration tests (root, real eBPF)");
            let mut args = vec![
                "test",
                "-p",
                "aio-trace",
                "--features",
                "root-tests",
                "--test",
                "*",
            ];
            if !is_root() {
                println!("xtask: not root, running them through sudo");
                args.insert(0, "cargo");
                let mut cmd = sudo_env(&root, &env, &args);
                check(&mut cmd, "the integration tests")?;
                return Ok(());
            }
            cargo(&root, &env, &args)
        }
        Task::Bench {
            rounds,
            seconds,
            engine,
            sweep,
            engines,
            overhead,
            capacity,
            rig,
        } => {
            let env = setup::ensure(&root)?;
            setup::ensure_packages(&[
                ("fio", "fio"),
                ("bpftrace", "bpftrace"),
                ("bpftool", "bpftool"),
                ("losetup", "util-linux"),
                ("mkfs.ext4", "e2fsprogs"),
            ])?;
            cargo(&root, &env, &["build", "--release", "-p", "aio-trace"])?;
            bench::run(
                &root,
                &bench::BenchOptions {
                    rounds,
                    seconds,
                    engine,
                    sweep,
                    engines,
                    overhead,
                    capacity,
                    rig,
                },
            )
        }
        Task::Lint => {
            let env = setup::ensure(&root)?;
            cargo(&root, &env, &["fmt", "--all", "--", "--check"])?;
            cargo(
                &root,
                &env,
                &[
                    "clippy",
                    "--all-targets",
                    "--features",
                    "aio-trace/root-tests",
                    "--",
                    "-D",
                    "warnings",
                ],
            )?;
            lint::ebpf(&root, &env)
        }
        Task::Fuzz { seconds } => {
            let env = setup::ensure(&root)?;
            fuzz::run(&root, &env, seconds)
        }
        Task::Demo {
            demo: Demo::Mariadb { aio_mode, seconds },
        } => {
            if !is_root() {
                bail!(
                    "cargo xtask demo mariadb needs root: it traces with eBPF, runs mariadbd as root and sets kernel.io_uring_disabled"
                );
            }
            let env = setup::ensure(&root)?;
            setup::ensure_packages(&[
                ("mariadbd", "mariadb-server"),
                ("mariadb-install-db", "mariadb-server"),
                ("mariadb", "mariadb-client"),
                ("sysbench", "sysbench"),
            ])?;
            cargo(&root, &env, &["build", "--release", "-p", "aio-trace"])?;
            demo::mariadb(
                &root,
                &root.join("target/release/aio-trace"),
                &demo::MariadbOptions { aio_mode, seconds },
            )
        }
        Task::Install { prefix } => {
            let env = setup::ensure(&root)?;
            cargo(&root, &env, &["build", "--release", "-p", "aio-trace"])?;
            install(&root, &prefix)
        }
    }
}

/// Generates the completions and man pages with the built binary's hidden
/// `completions` and `man` commands, then installs everything under `prefix`.
fn install(root: &Path, prefix: &Path) -> Result<()> {
    let binary = root.join("target/release/aio-trace");
    let staging = root.join("target/xtask-install");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot empty {}", staging.display()))?;
    }
    let man_dir = staging.join("man");
    std::fs::create_dir_all(&man_dir)
        .with_context(|| format!("cannot create {}", man_dir.display()))?;
    for (shell, file) in COMPLETIONS {
        let out = Command::new(&binary)
            .args(["completions", shell])
            .output()
            .with_context(|| format!("while starting {}", binary.display()))?;
        if !out.status.success() {
            bail!("aio-trace completions {shell} failed ({})", out.status);
        }
        let path = staging.join(file);
        std::fs::write(&path, out.stdout)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut man = Command::new(&binary);
    man.arg("man").arg("--dir").arg(&man_dir);
    check(&mut man, "aio-trace man")?;
    let mut man_pages = Vec::new();
    for entry in std::fs::read_dir(&man_dir)? {
        let name = entry?.file_name();
        man_pages.push(name.into_string().map_err(|n| anyhow::anyhow!("{n:?}"))?);
    }
    man_pages.sort();

    for item in install_plan(prefix, &binary, &staging, &man_pages) {
        let mut cmd = if is_root() {
            Command::new("install")
        } else {
            let mut c = Command::new("sudo");
            c.arg("install");
            c
        };
        cmd.args(["-D", "-m", item.mode])
            .arg(&item.source)
            .arg(&item.dest);
        check(&mut cmd, &format!("installing {}", item.dest.display()))?;
        println!("xtask: installed {}", item.dest.display());
    }
    Ok(())
}

/// The shells `install` generates completions for, and the staged file's name.
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "aio-trace.bash"),
    ("zsh", "_aio-trace"),
    ("fish", "aio-trace.fish"),
];

/// One file `install` copies.
#[derive(Debug, PartialEq, Eq)]
struct InstallItem {
    source: PathBuf,
    dest: PathBuf,
    mode: &'static str,
}

/// Where every installed file goes under `prefix`: the binary, the completions
/// where bash-completion, zsh and fish look for them, and the man pages
/// (`man_pages`: file names in `staging/man`).
fn install_plan(
    prefix: &Path,
    binary: &Path,
    staging: &Path,
    man_pages: &[String],
) -> Vec<InstallItem> {
    let share = prefix.join("share");
    let item = |source: PathBuf, dest: PathBuf, mode| InstallItem { source, dest, mode };
    let mut plan = vec![item(
        binary.to_path_buf(),
        prefix.join("bin/aio-trace"),
        "0755",
    )];
    let completion_dirs = [
        "bash-completion/completions/aio-trace",
        "zsh/site-functions/_aio-trace",
        "fish/vendor_completions.d/aio-trace.fish",
    ];
    for ((_, file), dest) in COMPLETIONS.iter().zip(completion_dirs) {
        plan.push(item(staging.join(file), share.join(dest), "0644"));
    }
    for page in man_pages {
        plan.push(item(
            staging.join("man").join(page),
            share.join("man/man1").join(page),
            "0644",
        ));
    }
    plan
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `cargo ARGS` in the workspace with the eBPF build environment.
fn cargo(root: &Path, env: &setup::BuildEnv, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args(args);
    env.apply(&mut cmd);
    check(&mut cmd, &format!("cargo {}", args.join(" ")))
}

/// The command as root: directly when we are, else through `sudo -E`.
fn as_root(binary: &Path, args: &[String]) -> Command {
    if is_root() {
        let mut cmd = Command::new(binary);
        cmd.args(args);
        cmd
    } else {
        let mut cmd = Command::new("sudo");
        cmd.arg("-E").arg(binary).args(args);
        cmd
    }
}

fn sudo_env(root: &Path, env: &setup::BuildEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new("sudo");
    cmd.current_dir(root).arg("-E").arg("env");
    cmd.arg(format!(
        "PATH={}",
        std::env::var("PATH").unwrap_or_default()
    ));
    for (key, value) in env.vars() {
        cmd.arg(format!("{key}={value}"));
    }
    cmd.args(args);
    cmd
}

fn check(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("while starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_puts_completions_and_man_pages_where_shells_and_man_look() {
        let pages = ["aio-trace-snoop.1".to_owned(), "aio-trace.1".to_owned()];
        let plan = install_plan(
            Path::new("/opt/x"),
            Path::new("/w/target/release/aio-trace"),
            Path::new("/w/target/xtask-install"),
            &pages,
        );
        let dests: Vec<(&str, &str, &str)> = plan
            .iter()
            .map(|i| (i.source.to_str().unwrap(), i.dest.to_str().unwrap(), i.mode))
            .collect();
        assert_eq!(
            dests,
            [
                (
                    "/w/target/release/aio-trace",
                    "/opt/x/bin/aio-trace",
                    "0755"
                ),
                (
                    "/w/target/xtask-install/aio-trace.bash",
                    "/opt/x/share/bash-completion/completions/aio-trace",
                    "0644"
                ),
                (
                    "/w/target/xtask-install/_aio-trace",
                    "/opt/x/share/zsh/site-functions/_aio-trace",
                    "0644"
                ),
                (
                    "/w/target/xtask-install/aio-trace.fish",
                    "/opt/x/share/fish/vendor_completions.d/aio-trace.fish",
                    "0644"
                ),
                (
                    "/w/target/xtask-install/man/aio-trace-snoop.1",
                    "/opt/x/share/man/man1/aio-trace-snoop.1",
                    "0644"
                ),
                (
                    "/w/target/xtask-install/man/aio-trace.1",
                    "/opt/x/share/man/man1/aio-trace.1",
                    "0644"
                ),
            ]
        );
    }
}
