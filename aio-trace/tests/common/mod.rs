//! Helpers shared by the root integration tests.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use aio_trace::{
    loader::{TraceConfig, Tracer},
    model::{ContextSummary, LossCounts},
    reader::Record,
    session::{Session, Sink},
};
use aio_trace_common::{DevCounters, IocbRecord};
use serde_json::Value;

pub const AIO_TRACE: &str = env!("CARGO_BIN_EXE_aio-trace");

/// The testee binary: `$AIO_TRACE_TESTEE`, or beside aio-trace's own binary in
/// the same target profile (where `cargo xtask test` builds it first).
pub fn testee_binary() -> std::path::PathBuf {
    let path = std::env::var_os("AIO_TRACE_TESTEE").map_or_else(
        || std::path::Path::new(AIO_TRACE).with_file_name("aio-trace-testee"),
        std::path::PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p aio-trace-testee` (cargo xtask test does)",
        path.display()
    );
    path
}

/// A testee waiting for "go"; its temp dir lives as long as it does.
pub struct Testee {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _dir: TempDir,
}

pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }

    pub fn new(name: &str) -> Self {
        // Under the target dir: on the same (O_DIRECT-capable) filesystem as the build.
        let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Tests run on parallel threads of one process, some with the same
        // scenario: a counter keeps their directories apart.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = base.join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Testee {
    pub fn spawn(scenario: &str) -> Self {
        Self::spawn_with_env(scenario, &[])
    }

    pub fn spawn_with_env(scenario: &str, env: &[(&str, String)]) -> Self {
        let dir = TempDir::new(scenario);
        let mut child = Command::new(testee_binary())
            .args([scenario, dir.0.to_str().unwrap()])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn aio-trace-testee");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Self {
            child,
            stdin,
            stdout,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the testee run and returns its ground truth lines.
    pub fn go(mut self) -> Vec<Value> {
        self.stdin.write_all(b"go\n").unwrap();
        self.stdin.flush().unwrap();
        let lines: Vec<Value> = self
            .stdout
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        assert!(self.child.wait().unwrap().success(), "testee failed");
        lines
    }
}

#[derive(Default)]
pub struct Collect(pub Vec<Record>);

impl Sink for Collect {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        self.0.push(*record);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a traced run produced: the child's ground truth, the iocb records,
/// the exit summaries and the loss counters.
pub type Traced = (Vec<Value>, Vec<IocbRecord>, Vec<ContextSummary>, LossCounts);

/// Traces `testee` (filtered on its pid) while it runs.
pub fn trace(testee: Testee) -> Traced {
    trace_with_timeout(testee, Duration::from_secs(30))
}

pub fn trace_with_timeout(testee: Testee, inflight_timeout: Duration) -> Traced {
    trace_with(testee, inflight_timeout, TraceConfig::default())
}

/// Like `trace_with_timeout`, with `config` (its pids replaced by the testee's).
pub fn trace_with(testee: Testee, inflight_timeout: Duration, config: TraceConfig) -> Traced {
    let (truth, records, summaries, losses) = trace_records_with(testee, inflight_timeout, config);
    let iocbs = records
        .into_iter()
        .filter_map(|r| match r {
            Record::Iocb(r) => Some(r),
            Record::Ctx(_) | Record::Syscall(_) => None,
        })
        .collect();
    (truth, iocbs, summaries, losses)
}

/// Like `trace_with_timeout`, with every record the tracer delivered.
pub fn trace_records(
    testee: Testee,
    inflight_timeout: Duration,
) -> (Vec<Value>, Vec<Record>, Vec<ContextSummary>, LossCounts) {
    trace_records_with(testee, inflight_timeout, TraceConfig::default())
}

/// Like `trace_records`, with `config` (its pids replaced by the testee's).
pub fn trace_records_with(
    testee: Testee,
    inflight_timeout: Duration,
    config: TraceConfig,
) -> (Vec<Value>, Vec<Record>, Vec<ContextSummary>, LossCounts) {
    let t = trace_run(testee, inflight_timeout, config);
    (t.truth, t.records, t.contexts, t.losses)
}

/// Everything one traced run of a testee left: its ground truth, the records,
/// and the tracer's counters at the end.
pub struct TracedRun {
    pub truth: Vec<Value>,
    pub records: Vec<Record>,
    pub contexts: Vec<ContextSummary>,
    /// Per (pid, ctx, opcode) iocb counts the kernel kept.
    pub ops: Vec<aio_trace::model::OpCounts>,
    /// Per block device counters (every device, whatever the pid filter).
    pub devices: Vec<(u32, DevCounters)>,
    /// Bio owner entries left at the end (bios whose completion was missed).
    pub bio_owners: usize,
    pub losses: LossCounts,
}

/// Traces `testee` (only its pid) until it is done, with `config`.
pub fn trace_run(testee: Testee, inflight_timeout: Duration, config: TraceConfig) -> TracedRun {
    let config = TraceConfig {
        pids: vec![testee.pid()],
        ..config
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (tracer, ring) = Tracer::start(&config).expect("load and attach the tracer");
        assert_only_absent_skipped(&tracer);
        let mut session = Session::new(tracer, ring, inflight_timeout).unwrap();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (truth_tx, truth_rx) = mpsc::channel();
        std::thread::spawn(move || {
            truth_tx.send(testee.go()).unwrap();
            let _ = done_tx.send(());
        });
        let mut sink = Collect::default();
        session
            .run(&mut sink, async {
                let _ = done_rx.await;
            })
            .await
            .unwrap();
        TracedRun {
            truth: truth_rx.recv().unwrap(),
            records: sink.0,
            contexts: session
                .tracer
                .counters()
                .iter()
                .map(|(k, c)| ContextSummary::new(k, c))
                .collect(),
            ops: session.tracer.op_counts(),
            devices: session.tracer.devices(),
            bio_owners: session.tracer.bio_owners(),
            losses: session.losses(),
        }
    })
}

pub fn of_type<'a>(lines: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> {
    lines.iter().filter(move |l| l["type"] == kind)
}

/// Held while a loop device is attached: tests run in parallel, and two
/// `losetup --find` at once can pick the same free device.
static LOSETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A loop device over a file in /dev/shm, detached (and unmounted) on drop.
pub struct LoopDevice {
    pub device: String,
    backing: std::path::PathBuf,
    mountpoint: Option<TempDir>,
}

impl LoopDevice {
    pub fn new(name: &str) -> Self {
        let backing =
            std::path::PathBuf::from(format!("/dev/shm/aio-trace-{name}-{}", std::process::id()));
        std::fs::File::create(&backing)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let out = {
            let _one_at_a_time = LOSETUP.lock().unwrap_or_else(|e| e.into_inner());
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&backing)
                .output()
                .unwrap()
        };
        assert!(out.status.success(), "losetup: {out:?}");
        let device = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Self {
            device,
            backing,
            mountpoint: None,
        }
    }

    /// Caps the size of a request (`queue/max_sectors_kb`), so that larger
    /// bios are split on their way to the device.
    pub fn limit_requests(&self, kib: u32) {
        let name = self.device.trim_start_matches("/dev/");
        let path = format!("/sys/block/{name}/queue/max_sectors_kb");
        std::fs::write(&path, kib.to_string()).unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    pub fn mount(&mut self) {
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        ok(Command::new("mkfs.ext4").args(["-q", "-F", &self.device]));
        let dir = TempDir::new("mnt");
        ok(Command::new("mount").args([&self.device, dir.path()]));
        self.mountpoint = Some(dir);
    }

    /// Where `mount` put its filesystem.
    pub fn mountpoint(&self) -> Option<&str> {
        self.mountpoint.as_ref().map(TempDir::path)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Some(dir) = &self.mountpoint {
            let _ = Command::new("umount").arg(dir.path()).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
        let _ = std::fs::remove_file(&self.backing);
    }
}

/// Every program loads and attaches unless its tracepoint is absent on this
/// kernel: a verifier rejection of an optional program must fail the tests,
/// not silently turn attribution off.
pub fn assert_only_absent_skipped(tracer: &Tracer) {
    for (probe, reason) in &tracer.skipped {
        assert!(
            !aio_trace::tracefs::tracepoint_exists(probe.group, probe.program),
            "{}:{} was skipped although the kernel has it: {reason}",
            probe.group,
            probe.program
        );
    }
}

/// A zram device of its own (`/sys/class/zram-control/hot_add`), 64 MiB,
/// removed on drop: a bio-based device, whose bios never become requests.
pub struct ZramDevice {
    pub device: String,
    id: String,
}

impl ZramDevice {
    /// None (with the reason printed) when the kernel has no zram.
    pub fn new() -> Option<Self> {
        let control = "/sys/class/zram-control/hot_add";
        let Ok(id) = std::fs::read_to_string(control) else {
            eprintln!("skipping: {control} is absent (kernel without zram)");
            return None;
        };
        let id = id.trim().to_owned();
        std::fs::write(format!("/sys/block/zram{id}/disksize"), "64M").unwrap();
        Some(Self {
            device: format!("/dev/zram{id}"),
            id,
        })
    }
}

impl Drop for ZramDevice {
    fn drop(&mut self) {
        let _ = std::fs::write(format!("/sys/block/zram{}/reset", self.id), "1");
        let _ = std::fs::write("/sys/class/zram-control/hot_remove", &self.id);
    }
}

/// Whether `records` hold a request of `op` with `segs` segments and result
/// `res`.
pub fn has_request(records: &[IocbRecord], op: &str, segs: u64, res: i64) -> bool {
    use aio_trace::model::IocbView;
    records
        .iter()
        .any(|r| r.op().name() == op && u64::from(r.segs) == segs && r.result() == Some(res))
}

/// The vectored shapes a fidelity scenario must really contain, not just
/// count: `read` and `write` of 4 KiB segments at each of `segs`, whole,
/// and a 1,025-segment `read` the kernel refused with -EINVAL.
pub fn assert_vectored_shapes(records: &[IocbRecord], read: &str, write: &str, segs: &[u64]) {
    for &n in segs {
        let bytes = (n * 4096) as i64;
        assert!(has_request(records, read, n, bytes), "{read} {n}");
        assert!(has_request(records, write, n, bytes), "{write} {n}");
    }
    assert!(
        has_request(records, read, 1025, -22),
        "1025-segment {read} refused with -EINVAL"
    );
}

/// Held while a test traces a command by its name (tests of one binary run
/// on parallel threads): one tracer and one traced command at a time.
pub fn trace_lock() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// What tracing a command by its name left: the records, the losses, the
/// AIO contexts' counters, and the command's output.
pub struct CommandTrace {
    pub records: Vec<Record>,
    pub losses: LossCounts,
    pub contexts: Vec<(aio_trace_common::CtxKey, aio_trace_common::CtxCounters)>,
    pub out: std::process::Output,
}

impl CommandTrace {
    pub fn iocbs(&self) -> Vec<IocbRecord> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Iocb(r) => Some(*r),
                _ => None,
            })
            .collect()
    }
}

/// Runs `command` under the tracer, filtered on the name `comm` (so one at
/// a time: `trace_lock`), until it exits; it must succeed.
pub fn trace_command(comm: &str, mut command: Command) -> CommandTrace {
    let _one = trace_lock();
    let config = TraceConfig {
        comm: Some(comm.into()),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let trace = runtime.block_on(async {
        let (tracer, ring) = Tracer::start(&config).expect("load and attach the tracer");
        assert_only_absent_skipped(&tracer);
        let mut session = Session::new(tracer, ring, Duration::from_secs(30)).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let run = std::thread::spawn(move || {
            let out = command.output().expect("the traced command runs");
            let _ = tx.send(());
            out
        });
        let mut sink = Collect::default();
        session
            .run(&mut sink, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        CommandTrace {
            records: sink.0,
            losses: session.losses(),
            contexts: session.tracer.counters(),
            out: run.join().unwrap(),
        }
    });
    assert!(
        trace.out.status.success(),
        "the traced command failed: {}",
        String::from_utf8_lossy(&trace.out.stderr)
    );
    trace
}

/// max_sectors_kb of the device holding the test directory, in bytes.
pub fn max_io_bytes() -> usize {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .dev();
    let sys = format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev));
    let queue = ["queue/max_sectors_kb", "../queue/max_sectors_kb"]
        .iter()
        .find_map(|q| std::fs::read_to_string(format!("{sys}/{q}")).ok())
        .expect("max_sectors_kb of the test filesystem's device");
    queue.trim().parse::<usize>().unwrap() * 1024
}

/// Runs aio-trace with `args` and checks that it fails as a usage error
/// (status 2) whose message starts with `message`.
pub fn assert_usage_error(args: &[&str], message: &str) {
    let out = Command::new(AIO_TRACE).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(message), "{stderr}");
}

/// `aio-trace report FILE --by BY --json`, parsed.
pub fn report_json(file: &str, by: &str) -> serde_json::Value {
    let out = Command::new(AIO_TRACE)
        .args(["report", "--json", "--by", by, file])
        .output()
        .unwrap();
    assert!(out.status.success(), "report {file}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}
