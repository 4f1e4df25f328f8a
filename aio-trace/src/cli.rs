//! Command-line definitions.

use std::{path::Path, time::Duration};

use aio_trace::blockdev::{Disk, SYSFS};
use aio_trace::cgroup::Cgroup;
use aio_trace::duration::parse_duration;
use aio_trace::workload::{
    Engine, Mode, Rw, Stop, Target, WorkloadConfig,
    config::{default_temp_dir, parse_nonzero_size, parse_size},
};
use clap::{Args, Parser, Subcommand};

/// `--version`: the package version and the git revision it was built from
/// (`-dirty` with uncommitted changes, `unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("AIO_TRACE_GIT_REV"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "aio-trace",
    version = VERSION,
    about = "Trace Linux AIO (io_submit/io_getevents) per iocb with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one line per completed iocb (biosnoop style), or JSON with --json.
    Snoop(SnoopArgs),
    /// Show what this machine allows and what aio-trace will use.
    Doctor(DoctorArgs),
    /// Run the built-in workload (vectored or scalar, AIO or io_uring) and print its numbers.
    Workload(WorkloadArgs),
    /// Scalar vs vectored (AIO or io_uring), or AIO vs io_uring, over identical bytes, alternating, checked by the tracer.
    Bench(BenchArgs),
    /// Live per-process AIO table (htop style); --workload shows the built-in workload.
    Top(TopArgs),
    /// Record every iocb to a file (JSONL, CSV, Perfetto or Chrome JSON) for analysis elsewhere.
    Record(RecordArgs),
    /// Analyse a recorded JSONL or CSV file: totals, tables, latency percentiles, histograms.
    Report(ReportArgs),
    /// Keep tracing and serve Prometheus metrics on /metrics.
    Serve(ServeArgs),
    /// Print the completion script for SHELL on stdout.
    #[command(hide = true)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write every page into --dir.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write aio-trace.1 and one aio-trace-COMMAND.1 per command into DIR.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Where the workload does its I/O.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// A file: created (O_EXCL, filled) when missing, never truncated.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["device", "dir"])]
    pub file: Option<std::path::PathBuf>,
    /// A block device (read-only unless --allow-device-writes).
    #[arg(long, value_name = "DEV", conflicts_with = "dir")]
    pub device: Option<std::path::PathBuf>,
    /// Directory for a temporary file (default $TMPDIR or /var/tmp), removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Keep the temporary file (it is otherwise unlinked as soon as it is created).
    #[arg(long)]
    pub keep: bool,
    /// Allow writes to --device (refused anyway when it is mounted).
    #[arg(long)]
    pub allow_device_writes: bool,
    /// Allow writes to an existing --file: a --rw that writes, or the --verify
    /// pattern (a file the workload creates needs no flag).
    #[arg(long)]
    pub allow_file_writes: bool,
    /// Bytes of the target to use (K/M/G suffixes); a new file gets 256M.
    #[arg(long, value_name = "BYTES", value_parser = parse_nonzero_size)]
    pub size: Option<u64>,
    /// Use the page cache instead of O_DIRECT.
    #[arg(long)]
    pub buffered: bool,
}

impl TargetArgs {
    pub fn target(&self) -> Target {
        match (&self.file, &self.device, &self.dir) {
            (Some(file), _, _) => Target::File(file.clone()),
            (None, Some(device), _) => Target::Device(device.clone()),
            (None, None, Some(dir)) => Target::TempIn(dir.clone()),
            (None, None, None) => Target::TempIn(default_temp_dir()),
        }
    }
}

/// The shape of the I/O, shared by `workload` and `bench`.
#[derive(Debug, Args, Clone)]
pub struct ShapeArgs {
    /// Size of each segment (K/M suffixes); a multiple of the logical block size.
    #[arg(long, value_name = "BYTES", default_value = "4K", value_parser = parse_size)]
    pub segment_size: u64,
    /// Ranges in flight (vectored: requests; scalar: groups of --segments requests).
    #[arg(long, default_value_t = 32)]
    pub iodepth: u32,
    /// Ranges per submitting call, io_submit or io_uring_enter (at most --iodepth).
    #[arg(long, default_value_t = 1)]
    pub batch: u32,
    /// Completions to wait for: io_getevents min_nr, io_uring_enter min_complete.
    #[arg(long, default_value_t = 1)]
    pub reap_min: u32,
    /// Percentage of reads for --rw rw/randrw.
    #[arg(long, default_value_t = 50)]
    pub read_pct: u8,
    /// Seed of the random offsets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct WorkloadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// aio: io_submit/io_getevents; io_uring: SQEs and the CQ ring.
    #[arg(long, value_enum, default_value = "aio")]
    pub engine: Engine,
    /// vectored: one PREADV/PWRITEV (io_uring: READV/WRITEV) of --segments
    /// iovecs; scalar: --segments PREAD/PWRITE (READ/WRITE) requests.
    #[arg(long, value_enum, default_value = "vectored")]
    pub mode: Mode,
    /// Segments per range (1..=1024).
    #[arg(long, default_value_t = 8)]
    pub segments: u32,
    #[arg(long, value_enum, default_value = "randread")]
    pub rw: Rw,
    /// Run for this long (30, 1.5s, 5m …).
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "ops")]
    pub duration: Option<Duration>,
    /// Stop after this many ranges (N vectored iocbs, or N × segments scalar iocbs).
    #[arg(long, value_name = "N")]
    pub ops: Option<u64>,
    /// Write a known pattern, read it back and check every byte (over an
    /// existing --file only with --allow-file-writes).
    #[arg(long)]
    pub verify: bool,
    /// One JSON object instead of the table.
    #[arg(short = 'j', long)]
    pub json: bool,
}

impl WorkloadArgs {
    pub fn config(&self) -> WorkloadConfig {
        let stop = match (self.ops, self.duration) {
            (Some(n), _) => Stop::Units(n),
            (None, Some(d)) => Stop::After(d),
            (None, None) => Stop::After(Duration::from_secs(10)),
        };
        WorkloadConfig {
            target: self.target.target(),
            keep: self.target.keep,
            allow_device_writes: self.target.allow_device_writes,
            allow_file_writes: self.target.allow_file_writes,
            engine: self.engine,
            mode: self.mode,
            segments: self.segments,
            segment_size: self.shape.segment_size,
            rw: self.rw,
            read_pct: self.shape.read_pct,
            iodepth: self.shape.iodepth,
            batch: self.shape.batch,
            reap_min: self.shape.reap_min,
            size: self.target.size,
            stop,
            seed: self.shape.seed,
            verify: self.verify,
            buffered: self.target.buffered,
        }
    }
}

/// What `bench` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchCompare {
    /// Scalar against vectored requests, on --engine.
    Modes,
    /// AIO against io_uring, both in --mode.
    Engines,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// modes: scalar against vectored, on --engine; engines: AIO against
    /// io_uring, both in --mode.
    #[arg(long, value_enum, default_value = "modes")]
    pub compare: BenchCompare,
    /// The engine of --compare modes [default: aio].
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// The mode of --compare engines [default: vectored].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Segment counts to compare; several (e.g. 1,2,4,8,16,64,256) sweep.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub segments: Vec<u32>,
    #[arg(long, value_enum, default_value = "read")]
    pub rw: Rw,
    /// Time per side and segment count, split over the rounds.
    #[arg(short = 'd', long, value_name = "DURATION", default_value = "10", value_parser = parse_duration)]
    pub duration: Duration,
    /// Alternations of the two sides (to cancel drift).
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also measure aio-trace's own overhead: BPF time per traced request while
    /// the built-in workload runs through AIO, then io_uring (needs root).
    #[arg(long, alias = "self")]
    pub overhead: bool,
    /// How long the --overhead measurement runs (seconds, or 500ms, 30s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "3", value_parser = parse_duration)]
    pub seconds: Duration,
    /// Measure --overhead without dispatch and block-layer attribution.
    #[arg(long)]
    pub no_block: bool,
}

/// Which processes to trace.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Trace only this process (repeatable).
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Trace only tasks with this exact name (at most 15 bytes).
    #[arg(short = 'c', long = "comm", value_name = "COMM", value_parser = parse_comm)]
    pub comm: Option<String>,
    /// Skip dispatch and block-layer attribution (no bios, device or stage
    /// times in the records): about 40 % of the BPF time per iocb.
    #[arg(long)]
    pub no_block: bool,
    /// Keep only the I/O to files on this disk (and its partitions, for a
    /// whole disk): a name (vda, nvme0n1p2), /dev/NAME or MAJ:MIN. I/O
    /// without a filesystem dispatch (buffered, fsync, raw devices) has no
    /// device and is dropped.
    #[arg(long, value_name = "DISK", value_parser = parse_disk, conflicts_with = "no_block")]
    pub disk: Option<Disk>,
    /// Trace only tasks in this cgroup v2 or below it (repeatable): a
    /// directory on the cgroup2 mount or a path under it, as
    /// /proc/PID/cgroup writes it (/system.slice/docker-ID.scope).
    #[arg(long = "cgroup", value_name = "PATH", value_parser = parse_cgroup)]
    pub cgroups: Vec<Cgroup>,
}

#[derive(Debug, Args)]
pub struct SnoopArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Stop after DURATION (seconds, or 500ms, 30s, 5m, 1h, 2d).
    #[arg(short = 'd', long = "duration", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// One JSON object per line: iocb records, then summary and lost lines at exit.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Ring buffer size (a power of two, at least one page; K/M suffixes).
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = parse_size)]
    pub ring_size: u64,
    /// Give up on an iocb not reaped after DURATION (counted as aged_out).
    #[arg(long, value_name = "DURATION", default_value = "30", value_parser = parse_duration)]
    pub inflight_timeout: Duration,
}

/// The tracing tier of `top` and `serve`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The light tier: count every iocb, its bytes and segments exactly in
    /// the kernel, and trace the I/O of 1/N of the time in full (latency,
    /// stages, bios, devices). 1 traces every iocb.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SAMPLE, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "full")]
    pub sample: u64,
    /// Trace every iocb in full: the same as --sample 1.
    #[arg(long)]
    pub full: bool,
    /// Adapt --sample (from N, by halving and doubling) to keep the
    /// tracer's BPF time under this share of one CPU (1%, 0.5%, 2.5%).
    #[arg(long, value_name = "PERCENT", value_parser = parse_budget, conflicts_with = "full")]
    pub budget: Option<f64>,
}

/// `--budget`: a percentage of one CPU, above 0 and at most 100 (`1%` or `1`),
/// as a fraction.
fn parse_budget(s: &str) -> Result<f64, String> {
    let number = s.strip_suffix('%').unwrap_or(s).trim();
    match number.parse::<f64>() {
        Ok(pct) if pct > 0.0 && pct <= 100.0 => Ok(pct / 100.0),
        _ => Err(format!(
            "{s:?} is not a share of one CPU: give a percentage above 0 and at most 100, as 1%"
        )),
    }
}

/// The light tier's default sample of `top` and `serve`.
pub const DEFAULT_SAMPLE: u64 = 64;

impl SampleArgs {
    /// 1 in how many AIO iocbs gets a record.
    pub fn every(&self) -> u64 {
        if self.full { 1 } else { self.sample }
    }
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Refresh interval in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..))]
    pub interval: u64,
    /// Also run the built-in workload (randread, 8 × 4K, iodepth 32, 64M temp file),
    /// alternating scalar and vectored phases.
    #[arg(long)]
    pub workload: bool,
    /// Length of each workload phase (seconds, or 500ms, 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "3", value_parser = parse_duration, requires = "workload")]
    pub phase: Duration,
    /// Replay a recording (`record` JSONL or CSV, `snoop --json`) instead of
    /// tracing live; needs no privileges. Keys: p/space play/pause, +/- speed.
    #[arg(long, value_name = "FILE", conflicts_with = "workload")]
    pub replay: Option<std::path::PathBuf>,
    /// Print what the table shows once per interval on stdout instead of
    /// drawing it: no terminal needed (for scripts, CI, watch).
    #[arg(long)]
    pub batch: bool,
    /// With --batch: stop after N intervals (default: until Ctrl-C, or the
    /// end of a --replay).
    #[arg(long, value_name = "N", requires = "batch", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// With --batch: one JSON object per line, or a plain text table.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "json",
        requires = "batch"
    )]
    pub format: BatchFormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BatchFormatArg {
    Json,
    Text,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RecordFormat {
    Jsonl,
    Csv,
    /// Perfetto's native protobuf trace.
    Perfetto,
    /// Chrome trace-event JSON (Perfetto and chrome://tracing open it).
    ChromeJson,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The file to write (refused if it exists, unless --force).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: std::path::PathBuf,
    /// The format; by default from the extension (.jsonl, .csv,
    /// .perfetto-trace or .pftrace for perfetto, .json for chrome-json).
    #[arg(long, value_enum)]
    pub format: Option<RecordFormat>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Stop after DURATION (seconds, or 500ms, 30s, 5m, 1h, 2d).
    #[arg(short = 'd', long = "duration", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many iocb and syscall records.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_records: Option<u64>,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Give up on an iocb not reaped after DURATION (counted as aged_out).
    #[arg(long, value_name = "DURATION", default_value = "30", value_parser = parse_duration)]
    pub inflight_timeout: Duration,
    /// Also run the built-in workload while recording (randread, 8 × 4K,
    /// iodepth 32, 64M temp file, alternating scalar and vectored phases).
    #[arg(long)]
    pub workload: bool,
    /// Length of each workload phase (seconds, or 500ms, 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "3", value_parser = parse_duration, requires = "workload")]
    pub phase: Duration,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportBy {
    Pid,
    Ctx,
    Op,
    File,
    /// The interface: aio, io_uring, sync.
    Api,
    /// The device of the file: its name and MAJ:MIN.
    Dev,
    /// The submitter's cgroup v2 path (a container's cgroup and what is under it apart).
    Cgroup,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A recording: JSONL (record, or snoop --json) or CSV (record).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// What the group table is keyed by.
    #[arg(long, value_enum, default_value = "pid")]
    pub by: ReportBy,
    /// One JSON object instead of the tables.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Report bad lines on stderr and go on, instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve /metrics on (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9466")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Give up on an iocb not reaped after this long (counted as aged_out).
    #[arg(long, value_name = "DURATION", default_value = "30", value_parser = parse_duration)]
    pub inflight_timeout: Duration,
    /// Close a connection that has not sent a whole request head this long
    /// after connecting or after its last response.
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = parse_http_timeout)]
    pub header_timeout: Duration,
    /// Close a connection open longer than this, once its
    /// current response is sent (or --header-timeout later at the latest).
    #[arg(long, value_name = "DURATION", default_value = "60", value_parser = parse_http_timeout)]
    pub connection_timeout: Duration,
    /// Labels of the per-op series beside api, op and dev (comma-separated):
    /// comm, cgroup (the submitter's cgroup v2 path), or none. Each
    /// multiplies the series by the task names or cgroups doing I/O.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "LABELS",
        default_value = "comm"
    )]
    pub labels: Vec<SeriesLabel>,
}

/// An optional label of `serve`'s per-op series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeriesLabel {
    /// The task name.
    Comm,
    /// The submitter's cgroup v2 path.
    Cgroup,
    /// Neither.
    None,
}

/// A positive duration up to a day: the HTTP server adds it to the
/// current time, which a vast value would overflow.
pub fn parse_http_timeout(s: &str) -> Result<Duration, String> {
    let timeout = parse_duration(s)?;
    if timeout > Duration::from_secs(86_400) {
        return Err(format!(
            "the timeout must be at most a day (86400s, 1d), not {s}"
        ));
    }
    Ok(timeout)
}

/// The kernel keeps a task's name in 16 bytes, the last one a NUL.
const TASK_COMM_LEN: usize = 15;

/// A `--cgroup` argument, resolved against this machine's cgroup v2 mount.
pub fn parse_cgroup(s: &str) -> Result<Cgroup, String> {
    Cgroup::resolve_here(s).map_err(|e| e.to_string())
}

/// A `--disk` argument, resolved against this machine's sysfs.
pub fn parse_disk(s: &str) -> Result<Disk, String> {
    Disk::resolve(s, Path::new(SYSFS)).map_err(|e| e.to_string())
}

/// A task name to filter on: not empty (it would match no task) and at most
/// the 15 bytes the kernel keeps (a longer one would never match either).
pub fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(
            "the task name is empty, and no task has an empty name: give one, as in ps -o comm"
                .into(),
        );
    }
    if s.len() > TASK_COMM_LEN {
        let mut end = TASK_COMM_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        return Err(format!(
            "{s:?} is {} bytes, but the kernel keeps only the first {TASK_COMM_LEN} of a task's name: give -c {:?}",
            s.len(),
            &s[..end]
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_timeouts_are_positive_and_at_most_a_day() {
        assert_eq!(parse_http_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_http_timeout("0").is_err());
        assert!(parse_http_timeout("86401").is_err());
        assert!(parse_http_timeout("25h").is_err());
        assert!(parse_http_timeout("1e30").is_err());
    }

    #[test]
    fn a_budget_is_a_share_of_one_cpu() {
        assert_eq!(parse_budget("1%"), Ok(0.01));
        assert_eq!(parse_budget("2.5"), Ok(0.025));
        for bad in ["0", "0%", "-1%", "150%", "lots", "nan", ""] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
        assert_refused_value(&["serve", "--budget", "0"]);
        let e = Cli::try_parse_from(["aio-trace", "top", "--full", "--budget", "1%"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    /// The command line is refused for one of its values.
    fn assert_refused_value(args: &[&str]) {
        let e = Cli::try_parse_from(std::iter::once("aio-trace").chain(args.iter().copied()))
            .unwrap_err();
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::ValueValidation,
            "{args:?}"
        );
    }

    #[test]
    fn huge_durations_are_refused_by_every_option() {
        for args in [
            &["snoop", "-d", "1e20"][..],
            &["snoop", "--inflight-timeout", "1e300"],
            &["record", "-o", "x.jsonl", "--workload", "--phase", "1e300"],
            &["top", "--workload", "--phase", "1e300"],
            &["doctor", "--seconds", "inf"],
        ] {
            assert_refused_value(args);
        }
    }

    #[test]
    fn an_empty_comm_is_refused() {
        let e = Cli::try_parse_from(["aio-trace", "snoop", "-c", ""]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("no task has an empty name"), "{e}");
        for args in [
            &["record", "-o", "x.jsonl", "-c", ""][..],
            &["top", "-c", ""],
            &["serve", "-c", ""],
        ] {
            assert_refused_value(args);
        }
    }

    #[test]
    fn a_comm_longer_than_the_kernel_keeps_is_refused_with_the_name_to_give() {
        assert_eq!(parse_comm("fifteen-bytes-x"), Ok("fifteen-bytes-x".into()));
        let e = parse_comm("a-very-long-task-name").unwrap_err();
        assert!(e.contains("give -c \"a-very-long-tas\""), "{e}");
        // Cut on a character boundary: 14 ASCII bytes then a 2-byte é.
        let e = parse_comm("abcdefghijklmné").unwrap_err();
        assert!(e.contains("give -c \"abcdefghijklmn\""), "{e}");
    }

    #[test]
    fn the_version_names_the_package_version_and_the_git_revision() {
        use clap::CommandFactory as _;
        let version = Cli::command().render_version();
        let prefix = format!("aio-trace {} (", env!("CARGO_PKG_VERSION"));
        let rev = version
            .trim_end()
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{version:?}"));
        let hash = rev.strip_suffix("-dirty").unwrap_or(rev);
        assert!(
            rev == "unknown" || (hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit())),
            "{version:?}"
        );
    }

    #[test]
    fn every_json_option_has_the_short_form_j() {
        use clap::CommandFactory as _;
        let cli = Cli::command();
        let mut with_json = Vec::new();
        for sub in cli.get_subcommands() {
            let Some(json) = sub.get_arguments().find(|a| a.get_long() == Some("json")) else {
                continue;
            };
            assert_eq!(json.get_short(), Some('j'), "{}", sub.get_name());
            with_json.push(sub.get_name());
        }
        assert_eq!(with_json, ["snoop", "workload", "bench", "report"]);
        let cli = Cli::try_parse_from(["aio-trace", "report", "-j", "x.jsonl"]).unwrap();
        let Command::Report(args) = cli.command else {
            panic!("not report")
        };
        assert!(args.json);
    }

    #[test]
    fn the_workload_engine_is_aio_unless_told() {
        let parse = |extra: &[&str]| {
            let cli = Cli::try_parse_from(["aio-trace", "workload"].iter().chain(extra)).unwrap();
            let Command::Workload(args) = cli.command else {
                panic!("not workload")
            };
            args.config().engine
        };
        assert_eq!(parse(&[]), Engine::Aio);
        assert_eq!(parse(&["--engine", "io_uring"]), Engine::IoUring);
        assert_eq!(parse(&["--engine", "aio"]), Engine::Aio);
        assert!(Cli::try_parse_from(["aio-trace", "workload", "--engine", "uring"]).is_err());
    }

    #[test]
    fn snoop_takes_repeated_pids() {
        let cli = Cli::try_parse_from([
            "aio-trace",
            "snoop",
            "-p",
            "1",
            "-p",
            "2",
            "-c",
            "fio",
            "--json",
        ])
        .unwrap();
        let Command::Snoop(args) = cli.command else {
            panic!("not snoop")
        };
        assert_eq!(args.filter.pids, [1, 2]);
        assert_eq!(args.filter.comm.as_deref(), Some("fio"));
        assert!(args.json);
    }
}
