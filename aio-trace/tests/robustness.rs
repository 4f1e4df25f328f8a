//! Root robustness tests: killed processes, forced ring buffer overflow, two
//! tracers at once, and signals — the tool must count what it misses, reclaim
//! what it holds, and keep running.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use aio_trace::{
    loader::{TraceConfig, Tracer},
    reader::Record,
    session::Session,
};
use common::{AIO_TRACE, Collect, TempDir, Testee, of_type};
use serde_json::Value;

/// 1,000 processes SIGKILLed with iocbs submitted and never reaped: every
/// entry leaves the in-flight table (as a record, the kernel having completed
/// it while the process exited, or as abandoned), and the table ends empty.
#[test]
fn killed_processes_leave_no_inflight_entries() {
    const CYCLES: u64 = 1000;
    let testee = Testee::spawn_with_env(
        "fork_kill",
        &[("AIO_TRACE_TEST_CYCLES", CYCLES.to_string())],
    );
    let config = TraceConfig {
        comm: Some("aio-fork-kill".into()),
        ..TraceConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (records, losses, inflight) = runtime.block_on(async move {
        let (tracer, ring) = Tracer::start(&config).unwrap();
        let mut session = Session::new(tracer, ring, Duration::from_secs(30)).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let truth = testee.go();
            let _ = tx.send(truth);
        });
        let mut sink = Collect::default();
        session
            .run(&mut sink, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        (
            sink.0,
            session.losses(),
            session.tracer.inflight_len().unwrap(),
        )
    });
    let iocbs = records
        .iter()
        .filter(|r| matches!(r, Record::Iocb(_)))
        .count() as u64;
    let exits = records
        .iter()
        .filter(|r| matches!(r, Record::Ctx(c) if c.event == aio_trace_common::CTX_EXIT))
        .count() as u64;
    assert_eq!(exits, CYCLES, "one exit record per killed process");
    // Every iocb is a record (the exit waits for it; `abandoned` counts
    // those of them whose completion went unseen), or counted where its
    // decoding failed (`user_read`): never silently lost.
    assert_eq!(
        iocbs + losses.user_read,
        4 * CYCLES,
        "every iocb accounted for: {losses:?}"
    );
    assert_eq!(inflight, 0, "nothing left in the in-flight table");
    assert_eq!(losses.inflight_full + losses.aged_out, 0, "{losses:?}");
}

fn snoop(args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(AIO_TRACE)
        .arg("snoop")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut banner = String::new();
    stderr.read_line(&mut banner).unwrap();
    assert!(banner.starts_with("Tracing AIO"), "{banner:?}");
    (child, stderr)
}

fn stop(child: Child, signal: i32) -> (Option<i32>, Vec<Value>) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code(), lines)
}

/// A 4 KiB ring buffer (about 20 records) against io_getevents calls that
/// reap at least 64 events each overflows: every dropped record is counted,
/// and records + ring_full add up to what the workload did.
#[test]
fn ring_buffer_overflow_is_counted_exactly() {
    let dir = TempDir::new("overflow");
    // Its own task name (a link's name becomes the comm), so the tests running
    // beside it do not feed this tracer.
    let tool = std::path::Path::new(dir.path()).join("aio-overflow");
    std::os::unix::fs::symlink(AIO_TRACE, &tool).unwrap();
    let (snoop, _stderr) = snoop(&["--json", "--ring-size", "4K", "-c", "aio-overflow"]);
    let out = Command::new(&tool)
        .args([
            "workload",
            "--mode",
            "scalar",
            "--segments",
            "1",
            "--ops",
            "50000",
            "--iodepth",
            "128",
        ])
        .args(["--reap-min", "64", "--size", "16M", "--json", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let workload: Value = serde_json::from_slice(&out.stdout).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (code, lines) = stop(snoop, libc::SIGINT);
    assert_eq!(code, Some(0), "the tracer kept running and exited cleanly");
    let records = of_type(&lines, "iocb").count() as u64;
    let lost = of_type(&lines, "lost").next().expect("a lost line");
    let ring_full = lost["ring_full"].as_u64().unwrap();
    assert!(ring_full > 0, "a 4 KiB ring must overflow: {lost}");
    // ring_full counts every dropped record: the iocbs, and maybe the
    // context's setup and destroy and the process's exit records.
    let iocbs = workload["iocbs"].as_u64().unwrap();
    let accounted = records + ring_full;
    assert!(
        (iocbs..=iocbs + 3).contains(&accounted),
        "{records} records + {ring_full} dropped for {iocbs} iocbs"
    );
}

/// Two tracers at once (no pinned paths or global names to collide on) both
/// see every iocb.
#[test]
fn two_instances_both_see_every_iocb() {
    let testee = Testee::spawn("basic");
    let pid = testee.pid().to_string();
    let (first, _e1) = snoop(&["--json", "-p", &pid]);
    let (second, _e2) = snoop(&["--json", "-p", &pid]);
    let truth = testee.go();
    let expected = of_type(&truth, "iocb").count();
    for (child, signal) in [(first, libc::SIGTERM), (second, libc::SIGHUP)] {
        let (code, lines) = stop(child, signal);
        assert_eq!(code, Some(0), "signal {signal} stops snoop cleanly");
        assert_eq!(of_type(&lines, "iocb").count(), expected);
        assert_eq!(
            lines.last().unwrap()["type"],
            "lost",
            "complete output after signal {signal}"
        );
    }
}

/// SIGTERM stops the workload early with its numbers so far, exit status 0.
#[test]
fn workload_stops_cleanly_on_sigterm() {
    let dir = TempDir::new("sigterm");
    let child = Command::new(AIO_TRACE)
        .args(["workload", "--size", "16M", "--json", "-d", "30", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(result["iocbs"].as_u64().unwrap() > 0 && result["elapsed_s"].as_f64().unwrap() < 20.0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the temporary file is removed"
    );
}

/// `record --force` onto a FIFO nobody reads refuses it at once, after the
/// tracer loaded, instead of blocking in open past --duration and signals.
#[test]
fn record_to_a_fifo_without_a_reader_is_refused_at_once() {
    let dir = TempDir::new("fifo");
    let fifo = format!("{}/out.jsonl", dir.path());
    let c_path = std::ffi::CString::new(fifo.clone()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut child = Command::new(AIO_TRACE)
        .args(["record", "--force", "-d", "1", "-o", &fifo])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("record to a FIFO without a reader still runs after 10 s (-d 1)");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "aio-trace: no process is reading the FIFO {fifo}: start its reader first\n"
        )),
        "{stderr}"
    );
}

/// The workload's temporary file has no name once it is created, so no way
/// out leaves it behind: not SIGKILL of `workload` or of `record --workload`
/// (whose file goes in $TMPDIR), nor `record` failing on a full disk.
#[test]
fn no_exit_leaves_a_temporary_file() {
    fn killed_after(mut child: Child, wait: Duration) {
        std::thread::sleep(wait);
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let dir = TempDir::new("kill-workload");
    let workload = Command::new(AIO_TRACE)
        .args(["workload", "--size", "64M", "-d", "30", "--dir", dir.path()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    killed_after(workload, Duration::from_millis(1500));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "workload, SIGKILL: {left:?}");

    let dir = TempDir::new("kill-record");
    let out = TempDir::new("kill-record-out");
    let mut record = Command::new(AIO_TRACE)
        .args([
            "record",
            "--format",
            "jsonl",
            "--workload",
            "-d",
            "30",
            "-o",
        ])
        .arg(format!("{}/t.jsonl", out.path()))
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(record.stderr.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.starts_with("Recording AIO"), "{banner:?}");
    killed_after(record, Duration::from_millis(500));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "record --workload, SIGKILL: {left:?}");

    let dir = TempDir::new("full-record");
    let out = Command::new(AIO_TRACE)
        .args(["record", "-o", "/dev/full", "--format", "jsonl", "--force"])
        .args(["--workload", "-d", "2"])
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "record --workload to /dev/full: {left:?}");
}

/// Attaching to a process already doing AIO: the iocbs it had in flight (or
/// submitted while the programs were being attached) come back unmatched.
/// They are counted as in flight at the start, not as lost, and nothing else
/// is lost.
#[test]
fn attaching_mid_flight_counts_the_iocbs_in_flight_at_start_not_as_lost() {
    let dir = TempDir::new("mid-flight");
    let mut workload = Command::new(AIO_TRACE)
        .args(["workload", "--iodepth", "4", "--size", "16M", "-d", "20"])
        .args(["--dir", dir.path()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Well into its loop: iocbs in flight all the time.
    std::thread::sleep(Duration::from_millis(1500));
    let out = Command::new(AIO_TRACE)
        .args([
            "snoop",
            "--json",
            "-d",
            "3",
            "-p",
            &workload.id().to_string(),
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let _ = workload.kill();
    let _ = workload.wait();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lost: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "lost")
        .expect("a lost line");
    let records = text
        .lines()
        .filter(|l| l.starts_with(r#"{"type":"iocb""#))
        .count();
    assert!(
        records > 1000,
        "{records} records: the workload ran under the trace"
    );
    assert!(
        lost["inflight_at_start"].as_u64().unwrap() > 0,
        "the workload had iocbs in flight when the trace began: {lost}"
    );
    for cause in [
        "unmatched",
        "user_read",
        "inflight_full",
        "ring_full",
        "aged_out",
    ] {
        assert_eq!(lost[cause], 0, "{cause}: {lost}");
    }
}
