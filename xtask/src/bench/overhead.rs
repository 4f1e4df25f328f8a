//! What tracing costs a real workload: fio's IOPS alone, under aio-trace and
//! under an equivalent bpftrace script, alternating for several rounds; the
//! BPF run time per I/O of each tracer (kernel.bpf_stats_enabled); start-up
//! time and memory.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{fio, json_of, median};

/// Kernel BPF statistics of every loaded program: id → (name, run_time_ns).
fn prog_stats() -> Result<HashMap<u64, (String, u64)>> {
    let v = json_of(
        Command::new("bpftool").args(["-j", "prog", "show"]),
        "bpftool prog show",
    )?;
    Ok(v.as_array()
        .context("bpftool prog show did not list programs")?
        .iter()
        .filter_map(|p| {
            let id = p["id"].as_u64()?;
            let name = p["name"].as_str().unwrap_or("").to_owned();
            Some((id, (name, p["run_time_ns"].as_u64().unwrap_or(0))))
        })
        .collect())
}

/// Whether BPF run times are being counted although the sysctl is off: a
/// process holding a `BPF_ENABLE_STATS` descriptor (top, `doctor --overhead`,
/// bpftop) turns them on for everybody. Run times only grow while they are
/// on, so a program whose run time grows over a second gives it away.
fn stats_held_elsewhere() -> Result<bool> {
    let before = prog_stats()?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = prog_stats()?;
    Ok(after
        .iter()
        .any(|(id, (_, ns))| before.get(id).is_some_and(|(_, earlier)| ns > earlier)))
}

struct Stats;

impl Stats {
    fn enable() -> Result<Self> {
        std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1")
            .context("while enabling kernel.bpf_stats_enabled")?;
        Ok(Self)
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "0");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tracer {
    None,
    AioTrace,
    /// `record -p 1`: tracing a process that does no I/O, so what fio pays
    /// is what the hooks cost other processes' I/O.
    AioTraceOther,
    /// `serve --sample 64`: the light tier (every iocb counted, the I/O of
    /// 1/64 of the time traced in full), as `top` and `serve` run by default.
    AioTraceLight,
    /// `serve --sample 64 -p 1`: the light tier's hooks, paid by I/O it
    /// does not trace.
    AioTraceLightOther,
    Bpftrace,
}

impl Tracer {
    /// The filter of the rows that trace another process than fio: pid 1,
    /// which does no I/O.
    fn filter(self) -> &'static [&'static str] {
        match self {
            Self::AioTraceOther | Self::AioTraceLightOther => &["-p", "1"],
            _ => &[],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "fio alone",
            Self::AioTrace => "fio + aio-trace",
            Self::AioTraceOther => "aio-trace -p 1",
            Self::AioTraceLight => "fio + light 1/64",
            Self::AioTraceLightOther => "light -p 1",
            Self::Bpftrace => "fio + bpftrace",
        }
    }
}

struct Running {
    child: Child,
    /// Programs that were not loaded before this tracer started: its own.
    before: HashMap<u64, (String, u64)>,
    startup: Duration,
}

/// Starts a tracer and waits until it says its probes are attached.
fn start(tracer: Tracer, binary: &Path, root: &Path) -> Result<Option<Running>> {
    let before = prog_stats()?;
    let started = Instant::now();
    let mut child = match tracer {
        Tracer::None => return Ok(None),
        Tracer::AioTrace | Tracer::AioTraceOther => Command::new(binary)
            .args(["record", "--force", "-o"])
            .arg(root.join("target/bench/overhead.jsonl"))
            .args(tracer.filter())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("while starting aio-trace")?,
        Tracer::AioTraceLight | Tracer::AioTraceLightOther => Command::new(binary)
            .args(["serve", "--sample", "64", "--listen", "127.0.0.1:0"])
            .args(tracer.filter())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("while starting aio-trace serve")?,
        Tracer::Bpftrace => Command::new("bpftrace")
            .arg(root.join("xtask/scripts/aio-latency.bt"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("while starting bpftrace")?,
    };
    // aio-trace says "Recording AIO..." on stderr, bpftrace "Attaching N probes..." on stdout.
    let banner: Box<dyn std::io::Read + Send> = match tracer {
        Tracer::AioTrace
        | Tracer::AioTraceOther
        | Tracer::AioTraceLight
        | Tracer::AioTraceLightOther => Box::new(child.stderr.take().expect("piped")),
        _ => Box::new(child.stdout.take().expect("piped")),
    };
    let mut lines = BufReader::new(banner).lines();
    let ready = lines.next().transpose()?.unwrap_or_default();
    if !["Recording AIO", "Serving AIO metrics", "Attaching"]
        .iter()
        .any(|banner| ready.starts_with(banner))
    {
        bail!("{} did not start: {ready}", tracer.name());
    }
    let startup = started.elapsed();
    // Keep draining the pipe so the tracer never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Ok(Some(Running {
        child,
        before,
        startup,
    }))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().to_owned())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Round {
    iops: f64,
    ios: u64,
    bpf_ns: u64,
    startup: Duration,
    rss_kib: u64,
}

fn measure(tracer: Tracer, binary: &Path, root: &Path, file: &Path, seconds: u32) -> Result<Round> {
    let running = start(tracer, binary, root)?;
    let v = json_of(&mut fio(file, seconds), "fio")?;
    let iops = v["jobs"][0]["read"]["iops"]
        .as_f64()
        .context("fio JSON has no read iops")?;
    let ios = v["jobs"][0]["read"]["total_ios"].as_u64().unwrap_or(0);
    let Some(mut running) = running else {
        return Ok(Round {
            iops,
            ios,
            bpf_ns: 0,
            startup: Duration::ZERO,
            rss_kib: 0,
        });
    };
    let after = prog_stats()?;
    let bpf_ns = after
        .iter()
        .filter(|(id, _)| !running.before.contains_key(id))
        .map(|(_, (_, ns))| ns)
        .sum();
    let rss_kib = rss_kib(running.child.id());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(running.child.id() as i32, libc::SIGINT) };
    running.child.wait()?;
    Ok(Round {
        iops,
        ios,
        bpf_ns,
        startup: running.startup,
        rss_kib,
    })
}

pub fn run(binary: &Path, file: &Path, root: &Path, rounds: u32, seconds: u32) -> Result<()> {
    for tool in ["bpftrace", "bpftool"] {
        if Command::new(tool).arg("--version").output().is_err() {
            bail!("{tool} is needed for the overhead benchmark: apt-get install {tool}");
        }
    }
    let stats_on = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .context("while reading kernel.bpf_stats_enabled")?;
    if stats_on.trim() != "0" {
        bail!(
            "kernel.bpf_stats_enabled is already on: the IOPS rounds need it off (sysctl -w kernel.bpf_stats_enabled=0)"
        );
    }
    if stats_held_elsewhere()? {
        bail!(
            "another process keeps the kernel's BPF statistics on (a running `aio-trace top` or `doctor --overhead`, or bpftop): the IOPS rounds need them off, so stop it first"
        );
    }
    println!(
        "xtask bench: overhead on fio (libaio, 4 KiB randread, iodepth 32, O_DIRECT), {rounds} rounds of {seconds} s, order rotating"
    );
    // IOPS with BPF statistics off: they add two clock reads to every program
    // run, which would charge the tracer with more programs more.
    let configs = [
        Tracer::None,
        Tracer::AioTrace,
        Tracer::Bpftrace,
        Tracer::AioTraceOther,
        Tracer::AioTraceLight,
        Tracer::AioTraceLightOther,
    ];
    let mut results: HashMap<&'static str, Vec<Round>> = HashMap::new();
    for round in 0..rounds {
        for k in 0..configs.len() {
            let tracer = configs[(round as usize + k) % configs.len()];
            let r = measure(tracer, binary, root, file, seconds)?;
            println!(
                "  round {}: {:<16} {:>9.0} IOPS",
                round + 1,
                tracer.name(),
                r.iops
            );
            results.entry(tracer.name()).or_default().push(r);
        }
    }
    // BPF run time per I/O in rounds of their own, statistics on.
    let stat_rounds = rounds.div_ceil(2).max(2);
    let mut bpf: HashMap<&'static str, Vec<f64>> = HashMap::new();
    {
        let _stats = Stats::enable()?;
        for round in 0..stat_rounds {
            let tracers = [Tracer::AioTrace, Tracer::Bpftrace, Tracer::AioTraceLight];
            for k in 0..tracers.len() {
                let tracer = tracers[(round as usize + k) % tracers.len()];
                let r = measure(tracer, binary, root, file, seconds)?;
                let ns = r.bpf_ns as f64 / r.ios.max(1) as f64;
                println!(
                    "  BPF statistics on, round {}: {:<16} {:>5.0} ns/I/O",
                    round + 1,
                    tracer.name(),
                    ns
                );
                bpf.entry(tracer.name()).or_default().push(ns);
            }
        }
    }
    let med = |name: &str, f: &dyn Fn(&Round) -> f64| {
        median(&mut results[name].iter().map(f).collect::<Vec<_>>())
    };
    let alone = med(Tracer::None.name(), &|r| r.iops);
    let ours = med(Tracer::AioTrace.name(), &|r| r.iops);
    let theirs = med(Tracer::Bpftrace.name(), &|r| r.iops);
    let (ours_cost, theirs_cost) = (1.0 - ours / alone, 1.0 - theirs / alone);
    println!(
        "  median IOPS: alone {alone:.0}, aio-trace {ours:.0} ({:+.1} %), bpftrace {theirs:.0} ({:+.1} %)",
        -100.0 * ours_cost,
        -100.0 * theirs_cost
    );
    let light = med(Tracer::AioTraceLight.name(), &|r| r.iops);
    println!(
        "  light tier (serve --sample 64): {light:.0} ({:+.1} %), {:.2}× what bpftrace costs",
        -100.0 * (1.0 - light / alone),
        if theirs_cost > 0.0 {
            (1.0 - light / alone).max(0.0) / theirs_cost
        } else {
            f64::NAN
        }
    );
    let light_other = med(Tracer::AioTraceLightOther.name(), &|r| r.iops);
    println!(
        "  fio under the light tier tracing another process (-p 1): {light_other:.0} ({:+.1} %)",
        -100.0 * (1.0 - light_other / alone)
    );
    let other = med(Tracer::AioTraceOther.name(), &|r| r.iops);
    println!(
        "  fio under aio-trace tracing another process (-p 1): {other:.0} ({:+.1} %): what the hooks cost I/O that is not traced",
        -100.0 * (1.0 - other / alone)
    );
    if theirs_cost > 0.0 {
        println!(
            "  aio-trace costs {:.2}× what bpftrace costs (target ≤ 0.20×, and ≤ 3 % of IOPS)",
            ours_cost.max(0.0) / theirs_cost
        );
    }
    let ns = |name: &str| median(&mut bpf[name].clone());
    let (light_ns, bpftrace_ns) = (
        ns(Tracer::AioTraceLight.name()),
        ns(Tracer::Bpftrace.name()),
    );
    println!(
        "  median BPF time per I/O: aio-trace {:.0} ns (full record with block attribution), light 1/64 {light_ns:.0} ns ({:.2}× bpftrace's), bpftrace {bpftrace_ns:.0} ns",
        ns(Tracer::AioTrace.name()),
        light_ns / bpftrace_ns
    );
    let startup = med(Tracer::AioTrace.name(), &|r| r.startup.as_secs_f64() * 1e3);
    let rss = med(Tracer::AioTrace.name(), &|r| r.rss_kib as f64 / 1024.0);
    println!(
        "  aio-trace record: {startup:.0} ms from command to all probes attached, RSS {rss:.1} MiB at steady state"
    );
    Ok(())
}
