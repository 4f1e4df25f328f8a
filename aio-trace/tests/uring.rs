//! Root integration tests of io_uring: requests a peer (fio) makes through
//! io_uring are traced exactly, checked against the peer's own counts and
//! latencies. Run by `cargo xtask test` (needs root).

mod common;
mod support;

use std::{process::Command, time::Duration};

use aio_trace::{loader::TraceConfig, model::LossCounts, reader::Record};
use aio_trace_common::{API_IO_URING, IocbRecord, uring_op_name};
use serde_json::Value;

/// fio's JSON report of one job, and the records of its requests.
struct FioRun {
    job: Value,
    records: Vec<IocbRecord>,
    losses: LossCounts,
}

/// Runs fio with io_uring on `file` under the tracer (filtered on fio's
/// name, so one fio at a time).
fn trace_fio(file: &str, args: &[&str]) -> FioRun {
    // The tests of this binary run on parallel threads: one fio at a time.
    static FIO: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = FIO.lock().unwrap_or_else(|e| e.into_inner());
    let fio = {
        let file = file.to_owned();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        move || {
            Command::new("fio")
                .args([
                    "--name=uring",
                    "--ioengine=io_uring",
                    "--bs=4k",
                    "--size=32M",
                    "--output-format=json",
                ])
                .arg(format!("--filename={file}"))
                .args(&args)
                .output()
                .expect("fio (cargo xtask test installs it)")
        }
    };
    let config = TraceConfig {
        comm: Some("fio".into()),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (records, losses, out) = runtime.block_on(async {
        let (tracer, ring) = aio_trace::loader::Tracer::start(&config).unwrap();
        common::assert_only_absent_skipped(&tracer);
        let mut session =
            aio_trace::session::Session::new(tracer, ring, Duration::from_secs(30)).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let run = std::thread::spawn(move || {
            let out = fio();
            let _ = tx.send(());
            out
        });
        let mut sink = common::Collect::default();
        session
            .run(&mut sink, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        (sink.0, session.losses(), run.join().unwrap())
    });
    assert!(
        out.status.success(),
        "fio failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("fio's JSON report");
    let records = records
        .iter()
        .filter_map(|r| match r {
            Record::Iocb(r) => Some(*r),
            _ => None,
        })
        .collect();
    FioRun {
        job: report["jobs"][0].clone(),
        records,
        losses,
    }
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
    let file = format!("{}/fio.dat", dir.path());
    let status = Command::new("fio")
        .args(["--name=lay", "--rw=write", "--bs=1M", "--size=32M"])
        .arg(format!("--filename={file}"))
        .output()
        .expect("fio lays out the file");
    assert!(status.status.success());

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
/// 10 %, over enough I/Os that the median is stable.
#[test]
fn fio_io_uring_median_latency_matches_fio() {
    if !support::tool::available("fio", "fio") {
        return;
    }
    let dir = common::TempDir::new("uring-fio-lat");
    let file = format!("{}/fio.dat", dir.path());
    let status = Command::new("fio")
        .args(["--name=lay", "--rw=write", "--bs=1M", "--size=32M"])
        .arg(format!("--filename={file}"))
        .output()
        .expect("fio lays out the file");
    assert!(status.status.success());
    let run = trace_fio(
        &file,
        &[
            "--rw=randread",
            "--direct=1",
            "--iodepth=8",
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
