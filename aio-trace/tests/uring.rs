//! Root integration tests of io_uring: requests a peer (fio) makes through
//! io_uring are traced exactly, checked against the peer's own counts and
//! latencies. Run by `cargo xtask test` (needs root).

mod common;
mod support;

use std::process::Command;

use aio_trace::model::{IocbView, LossCounts};
use aio_trace_common::{API_IO_URING, IocbRecord, uring_op_name};
use serde_json::Value;

/// fio's JSON report of one job, and the records of its requests.
struct FioRun {
    job: Value,
    records: Vec<IocbRecord>,
    losses: LossCounts,
}

/// Runs fio with io_uring on `file` under the tracer.
fn trace_fio(file: &str, args: &[&str]) -> FioRun {
    let mut fio = Command::new("fio");
    fio.args([
        "--name=uring",
        "--ioengine=io_uring",
        "--bs=4k",
        "--size=32M",
        "--output-format=json",
    ])
    .arg(format!("--filename={file}"))
    .args(args);
    let run = common::trace_command("fio", fio);
    let (records, losses, out) = (run.iocbs(), run.losses, run.out);
    let report: Value = serde_json::from_slice(&out.stdout).expect("fio's JSON report");
    FioRun {
        job: report["jobs"][0].clone(),
        records,
        losses,
    }
}

/// A 32 MiB file in `dir` that fio wrote: every extent allocated, so an
/// O_DIRECT read of it reaches the device.
fn fio_file(dir: &common::TempDir) -> String {
    let file = format!("{}/fio.dat", dir.path());
    let out = Command::new("fio")
        .args(["--name=lay", "--rw=write", "--bs=1M", "--size=32M"])
        .arg(format!("--filename={file}"))
        .output()
        .expect("fio (cargo xtask test installs it)");
    assert!(out.status.success(), "fio lays out the file: {out:?}");
    file
}

/// fio's count of I/Os in direction `ddir` ("read", "write", "sync").
fn fio_ios(job: &Value, ddir: &str) -> usize {
    job[ddir]["total_ios"].as_u64().unwrap_or(0) as usize
}

fn op(r: &IocbRecord) -> &'static str {
    uring_op_name(r.opcode).unwrap_or("?")
}

/// The median of the records' submit → reap (or CQE, when the application
/// reaped without waiting in the kernel) latency.
fn median_latency(records: &[IocbRecord]) -> u64 {
    let mut lat: Vec<u64> = records
        .iter()
        .map(|r| {
            let end = if r.reap_ns != 0 {
                r.reap_ns
            } else {
                r.complete_ts
            };
            end.saturating_sub(r.submit_ns)
        })
        .collect();
    lat.sort_unstable();
    lat[lat.len() / 2]
}

/// fio through io_uring in the shapes real applications use: every request
/// fio counts is exactly one record of the right opcode, size and result,
/// with its dispatch and bio for O_DIRECT, and nothing lost.
#[test]
fn fio_io_uring_requests_are_exact_records() {
    if !support::tool::available("fio", "fio") {
        return;
    }
    let dir = common::TempDir::new("uring-fio");
    let file = fio_file(&dir);

    // (what, fio's arguments, the opcode, whether O_DIRECT dispatches it)
    let shapes: &[(&str, &[&str], &str, bool)] = &[
        (
            "READ",
            &["--rw=randread", "--direct=1", "--iodepth=8"],
            "READ",
            true,
        ),
        (
            "READV",
            &[
                "--rw=randread",
                "--direct=1",
                "--iodepth=8",
                "--nonvectored=0",
            ],
            "READV",
            true,
        ),
        (
            "READ_FIXED",
            &[
                "--rw=randread",
                "--direct=1",
                "--iodepth=8",
                "--fixedbufs=1",
                "--registerfiles=1",
            ],
            "READ_FIXED",
            true,
        ),
        (
            "SQPOLL",
            &[
                "--rw=randread",
                "--direct=1",
                "--iodepth=8",
                "--sqthread_poll=1",
            ],
            "READ",
            true,
        ),
        (
            "WRITE",
            &["--rw=randwrite", "--direct=1", "--iodepth=8"],
            "WRITE",
            true,
        ),
        (
            "buffered WRITE",
            &["--rw=randwrite", "--direct=0", "--iodepth=8"],
            "WRITE",
            false,
        ),
    ];
    for (what, args, opcode, direct) in shapes {
        let mut args = args.to_vec();
        args.push("--number_ios=1000");
        let run = trace_fio(&file, &args);
        let expected = fio_ios(&run.job, "read") + fio_ios(&run.job, "write");
        assert_eq!(expected, 1000, "{what}: fio did its 1,000 I/Os");
        assert_eq!(
            run.records.len(),
            expected,
            "{what}: one record per fio I/O"
        );
        let odd: Vec<_> = run
            .records
            .iter()
            .filter(|r| {
                !(r.api == API_IO_URING
                    && op(r) == *opcode
                    && r.segs == 1
                    && r.bytes == 4096
                    && r.res == 4096
                    && r.complete_ts > r.submit_ns
                    // A nonblocking first issue that would block (-EAGAIN)
                    // is issued again: a second dispatch of the same request.
                    && (!*direct || (r.dispatches >= 1 && r.bios >= 1)))
            })
            .collect();
        assert!(odd.is_empty(), "{what}: {odd:#?}");
        assert_eq!(run.losses.total(), 0, "{what}: {:?}", run.losses);
    }
}

/// fio's own completion latency and the records' agree: the median within
/// 10 %, over enough I/Os that the median is stable. At iodepth 4: at 1,
/// fio's clat starts after its submitting call returns (the records' at the
/// submission inside it); deep queues on this 2-core VM keep fio busy, and
/// it reaps CQEs well after the kernel posted them.
#[test]
fn fio_io_uring_median_latency_matches_fio() {
    if !support::tool::available("fio", "fio") {
        return;
    }
    let dir = common::TempDir::new("uring-fio-lat");
    let file = fio_file(&dir);
    let run = trace_fio(
        &file,
        &[
            "--rw=randread",
            "--direct=1",
            "--iodepth=4",
            "--number_ios=4000",
        ],
    );
    assert_eq!(run.records.len(), fio_ios(&run.job, "read"));
    let fio_p50 = run.job["read"]["clat_ns"]["percentile"]["50.000000"]
        .as_u64()
        .expect("fio's clat p50");
    let ours = median_latency(&run.records);
    let ratio = ours as f64 / fio_p50 as f64;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "median latency {ours} ns against fio's clat p50 {fio_p50} ns"
    );
}

/// The testee's io_uring scenario: every opcode the issue names, 1 to 1,024
/// segments, a refused 1,025-segment READV, a short read, linked requests,
/// io-wq punts and an SQPOLL ring. Each request is one record matching what
/// the testee did and what its CQE said, and nothing is lost.
#[test]
fn every_io_uring_request_becomes_one_exact_record() {
    let testee = common::Testee::spawn("uring");
    let pid = testee.pid();
    let (truth, records, _, losses) = common::trace(testee);
    let expected: std::collections::BTreeMap<u64, &Value> = common::of_type(&truth, "iocb")
        .filter(|t| t["api"] == "io_uring")
        .map(|t| (t["user_data"].as_u64().unwrap(), t))
        .collect();
    assert!(expected.len() >= 30, "the scenario ran: {truth:#?}");
    assert_eq!(
        records.len(),
        expected.len(),
        "one record per request: {records:#?}"
    );
    for r in &records {
        let t = expected
            .get(&r.aio_data)
            .unwrap_or_else(|| panic!("record of an unknown request {r:?}"));
        let what = format!("user_data {} ({t})", r.aio_data);
        assert_eq!(r.api, API_IO_URING, "{what}");
        assert_eq!(r.pid, pid, "{what}");
        assert_eq!(r.op().name(), t["op"], "{what}");
        assert_eq!(i64::from(r.fd as i32), t["fd"].as_i64().unwrap(), "{what}");
        assert_eq!(u64::from(r.segs), t["segs"].as_u64().unwrap(), "{what}");
        assert_eq!(r.requested_bytes(), t["bytes"].as_u64(), "{what}");
        assert_eq!(r.result(), t["res"].as_i64(), "{what}");
        if t["segs"].as_u64() != Some(0) {
            assert_eq!(r.offset, t["offset"].as_i64().unwrap(), "{what}");
        }
        if t["dispatch"].as_bool().unwrap() && r.result().is_some_and(|res| res > 0) {
            assert!(r.dispatches >= 1, "{what}: {r:?}");
        } else if t["direct"] == false {
            assert_eq!(r.dispatches, 0, "{what}: {r:?}");
        }
        match t["bios"].as_bool() {
            Some(true) => assert!(r.bios >= 1, "{what}: {r:?}"),
            Some(false) => assert_eq!(r.bios, 0, "{what}: {r:?}"),
            None => {}
        }
        assert!(r.complete_ts > r.submit_ns, "{what}: {r:?}");
        assert!(r.latency_ns().is_some_and(|l| l > 0), "{what}: {r:?}");
    }
    // The shapes are really in the run, not just counted.
    common::assert_vectored_shapes(&records, "READV", "WRITEV", &[1, 2, 7, 64, 1024]);
    assert!(
        records
            .iter()
            .any(|r| r.op().name() == "READ" && r.bytes == 8192 && r.res == 4096),
        "short read"
    );
    for op in ["READ", "WRITE", "READ_FIXED", "WRITE_FIXED", "FSYNC"] {
        assert!(records.iter().any(|r| r.op().name() == op), "{op}");
    }
    if common::of_type(&truth, "ring").any(|r| r["sqpoll"] == true) {
        let sqpoll: Vec<_> = common::of_type(&truth, "iocb")
            .filter(|t| t["ring"] == "sqpoll")
            .collect();
        assert!(!sqpoll.is_empty());
        for t in sqpoll {
            let r = records
                .iter()
                .find(|r| r.aio_data == t["user_data"].as_u64().unwrap())
                .unwrap();
            assert_eq!(r.tid, pid, "an SQPOLL request is its process's: {r:?}");
        }
    } else {
        eprintln!("SQPOLL was refused here: its requests were not checked");
    }
    assert_eq!(losses.total(), 0, "{losses:?}");
    assert_eq!(losses.inflight_at_start, 0, "{losses:?}");
}

/// The built-in workload on io_uring, the experiment's both sides: it takes
/// completions from the CQ ring and waits in io_uring_enter only when the
/// ring runs dry, so completions run as task work in and around its calls.
/// Every request it counts is one record of its size, and nothing is lost.
#[test]
fn the_workload_on_io_uring_is_traced_request_for_request() {
    let dir = common::TempDir::new("uring-workload");
    for (mode, segments, ops) in [
        ("scalar", "1", ["READ", "WRITE"]),
        ("vectored", "8", ["READV", "WRITEV"]),
    ] {
        let mut workload = Command::new(common::AIO_TRACE);
        workload.args([
            "workload",
            "--engine",
            "io_uring",
            "--mode",
            mode,
            "--segments",
            segments,
            "--rw",
            "randrw",
            "--iodepth",
            "32",
            "--size",
            "64M",
            "--ops",
            "20000",
            "--json",
            "--dir",
            dir.path(),
        ]);
        // The tracer runs in this test's process; the workload is the only
        // process named aio-trace.
        let run = common::trace_command("aio-trace", workload);
        let (records, losses, out) = (run.iocbs(), run.losses, run.out);
        let result: Value = serde_json::from_slice(&out.stdout).expect("the workload's JSON");
        let segs: u32 = segments.parse().unwrap();
        assert_eq!(
            records.len() as u64,
            result["iocbs"].as_u64().unwrap(),
            "{mode}: one record per request"
        );
        assert_eq!(
            records.iter().map(|r| r.bytes).sum::<u64>(),
            result["bytes"].as_u64().unwrap(),
            "{mode}"
        );
        let odd: Vec<_> = records
            .iter()
            .filter(|r| {
                !(r.api == API_IO_URING
                    && ops.contains(&r.op().name())
                    && r.segs == segs
                    && r.res == (segs * 4096) as i64
                    && r.latency_ns().is_some())
            })
            .collect();
        assert!(odd.is_empty(), "{mode}: {odd:#?}");
        assert_eq!(losses.total(), 0, "{mode}: {losses:?}");
    }
}

/// The experiment on io_uring, and AIO against io_uring, under the tracer:
/// `bench` fails unless every request, byte, segment and io_uring_enter call
/// the workload counted is what the tracer counted.
#[test]
fn bench_checks_every_io_uring_count_against_the_tracer() {
    let _one = common::trace_lock();
    for compare in [
        ["--engine", "io_uring"].as_slice(),
        ["--compare", "engines"].as_slice(),
    ] {
        let out = Command::new(common::AIO_TRACE)
            .arg("bench")
            .args(compare)
            .args(["-d", "1", "--rounds", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{compare:?}: {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("every request, byte, segment and system call accounted for"),
            "{compare:?}: {stderr}"
        );
    }
}
