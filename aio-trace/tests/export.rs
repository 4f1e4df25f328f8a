//! Root tests of `record`, `report` and `serve` with real consumers: DuckDB,
//! promtool and a Prometheus server.

mod common;
mod support;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::unix::fs::MetadataExt,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{AIO_TRACE, TempDir, Testee, of_type, report_json};
use serde_json::Value;
use support::tool::ensure_python_module;

/// Starts an aio-trace command and waits for its banner (the tracer is attached).
fn start(args: &[&str], banner: &str) -> Child {
    let mut command = Command::new(AIO_TRACE);
    command.args(args).stdout(Stdio::piped());
    start_command(&mut command, banner)
}

/// Starts `command` with stderr piped and waits for its banner; the rest of
/// stderr is drained so the child never blocks on it.
fn start_command(command: &mut Command, banner: &str) -> Child {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with(banner), "banner {banner:?}, got {line:?}");
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn ensure_command(command: &str, package: &str) {
    let found = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found(command) {
        return;
    }
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok && found(command),
        "cannot install {package} with apt-get"
    );
}

/// Per "api op": (count, nearest-rank p99 of latency_ns), computed by DuckDB.
const DUCKDB_PER_OP: &str = r#"
import duckdb, json, sys
f = sys.argv[1]
rel = (f"read_csv('{f}', header=true)" if f.endswith('.csv')
       else f"read_json_auto('{f}', format='newline_delimited', sample_size=-1)")
rows = duckdb.sql(f"""
  SELECT api || ' ' || op, count(*)::BIGINT,
         list_sort(list(latency_ns) FILTER (WHERE latency_ns IS NOT NULL))
           [ceil(0.99 * count(latency_ns))::BIGINT]::BIGINT
  FROM {rel} WHERE type IN ('iocb', 'syscall') GROUP BY api, op""").fetchall()
print(json.dumps({op: [n, p99] for op, n, p99 in rows}))
"#;

fn duckdb_per_op(file: &str) -> BTreeMap<String, (u64, Option<u64>)> {
    let out = Command::new("python3")
        .args(["-c", DUCKDB_PER_OP, file])
        .output()
        .unwrap();
    assert!(out.status.success(), "duckdb on {file}: {out:?}");
    let v: BTreeMap<String, (u64, Option<u64>)> = serde_json::from_slice(&out.stdout).unwrap();
    v
}

/// `record` to JSONL and CSV while the testee runs the built-in workload:
/// `report` counts what the testee did and what the kernel's summary says;
/// DuckDB reads both files and finds the same count and p99 per op.
#[test]
fn record_report_and_duckdb_agree_with_the_live_counts() {
    ensure_python_module("duckdb", "duckdb");
    let dir = TempDir::new("export-record");
    let testee = Testee::spawn("workload-vectored");
    let pid = testee.pid().to_string();
    let jsonl = format!("{}/trace.jsonl", dir.path());
    let csv = format!("{}/trace.csv", dir.path());
    let perfetto = format!("{}/trace.json", dir.path());
    let recorders: Vec<Child> = [&jsonl, &csv, &perfetto]
        .iter()
        .map(|f| start(&["record", "-o", f, "-p", &pid], "Recording AIO"))
        .collect();
    let truth = testee.go();
    for r in recorders {
        signal(&r, libc::SIGINT);
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let calls = of_type(&truth, "calls").next().unwrap();
    let iocbs = calls["iocbs_submitted"].as_u64().unwrap();

    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines.last().unwrap()["type"], "lost");
    let summary = of_type(&lines, "summary").next().unwrap();

    let report = report_json(&jsonl, "op");
    assert_eq!(report["complete"], true);
    assert_eq!(report["records"], iocbs);
    assert_eq!(
        report["calls"]["iocbs_submitted"],
        summary["iocbs_submitted"]
    );
    assert_eq!(report["calls"]["io_submit_calls"], calls["io_submit_calls"]);
    assert_eq!(
        report["calls"]["io_getevents_calls"],
        calls["io_getevents_calls"]
    );
    assert_eq!(report["lost"]["ring_full"], 0);
    // Each recorder has its own tracer and timestamps: counts agree, times differ slightly.
    let csv_report = report_json(&csv, "op");
    assert_eq!(csv_report["records"], report["records"]);
    assert_eq!(
        csv_report["total"]["bytes_transferred"],
        report["total"]["bytes_transferred"]
    );

    for (file, report) in [(&jsonl, &report), (&csv, &csv_report)] {
        let duck = duckdb_per_op(file);
        let ops = report["ops"].as_array().unwrap();
        assert_eq!(duck.len(), ops.len(), "{file}: {duck:?}");
        for op in ops {
            let key = format!(
                "{} {}",
                op["api"].as_str().unwrap(),
                op["key"].as_str().unwrap()
            );
            let (n, p99) = duck[&key];
            assert_eq!(op["iocbs"].as_u64(), Some(n), "{file} {op}");
            // HdrHistogram (3 digits) reports the top of the p99 value's bucket.
            let ours = op["latency"]["p99_ns"].as_u64().unwrap();
            let exact = p99.unwrap();
            assert!(
                exact <= ours && ours <= exact + exact / 500 + 1,
                "{file}: p99 {ours} vs DuckDB {exact}"
            );
        }
    }

    let trace: Vec<Event> =
        serde_json::from_str(&std::fs::read_to_string(&perfetto).unwrap()).unwrap();
    assert_eq!(iocb_slices(&trace) as u64, iocbs);
}

/// What the Perfetto tests look at in an event; the rest is skipped unread,
/// which keeps parsing a 100 MB trace quick.
#[derive(serde::Deserialize)]
struct Event {
    ph: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cat: Option<String>,
    #[serde(default)]
    args: Option<serde::de::IgnoredAny>,
}

/// The iocbs' own slices: complete ones on a lane, or async ones past a
/// context's lanes; their stages carry no `args`.
fn iocb_slices(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            (e.ph == "X" || e.ph == "b") && e.cat.as_deref() == Some("iocb") && e.args.is_some()
        })
        .count()
}

/// The events of a Perfetto recording cut short: its whole lines, without
/// the trailing comma, closed with the `]` the format makes optional.
fn perfetto_prefix(file: &str) -> Vec<Event> {
    let bytes = std::fs::read(file).unwrap();
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&bytes[..whole]).unwrap().trim_end();
    assert!(text.starts_with('['), "{file}: {text:.80}");
    let closed = format!("{}]", text.trim_end_matches(','));
    serde_json::from_str(&closed).unwrap()
}

fn record_perfetto(file: &str, dir: &TempDir) -> Child {
    let mut command = Command::new(AIO_TRACE);
    command
        .args([
            "record",
            "--format",
            "chrome-json",
            "-o",
            file,
            // The workload thread's name, so that parallel tests do not feed this file.
            "-c",
            "aio-trace-workl",
            "--workload",
            "-d",
            "10",
        ])
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null());
    start_command(&mut command, "Recording AIO")
}

/// A Perfetto recording is written as it goes: SIGKILLed mid-run, its file
/// holds the iocbs so far as a JSON array missing only its `]`; stopped
/// normally, it is valid JSON as it is.
#[test]
fn a_perfetto_record_killed_mid_run_is_readable_up_to_the_kill() {
    let dir = TempDir::new("export-perfetto-kill");
    let killed = format!("{}/killed.json", dir.path());
    let record = record_perfetto(&killed, &dir);
    std::thread::sleep(Duration::from_secs(2));
    signal(&record, libc::SIGKILL);
    let out = record.wait_with_output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    let events = perfetto_prefix(&killed);
    assert!(iocb_slices(&events) >= 1, "{} events", events.len());

    let stopped = format!("{}/stopped.json", dir.path());
    let record = record_perfetto(&stopped, &dir);
    std::thread::sleep(Duration::from_secs(2));
    signal(&record, libc::SIGINT);
    let out = record.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let events: Vec<Event> =
        serde_json::from_str(&std::fs::read_to_string(&stopped).unwrap()).unwrap();
    assert!(iocb_slices(&events) >= 1, "{} events", events.len());
    assert_eq!(events.last().unwrap().name, "lost");
}

/// A `record` stopped by SIGTERM in the middle of a run leaves a complete file.
#[test]
fn a_record_killed_mid_run_leaves_a_file_report_reads() {
    let dir = TempDir::new("export-sigterm");
    let mut workload = Command::new(AIO_TRACE)
        .args(["workload", "--dir", dir.path(), "--size", "16M", "-d", "20"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let file = format!("{}/killed.jsonl", dir.path());
    let pid = workload.id().to_string();
    let record = start(&["record", "-o", &file, "-p", &pid], "Recording AIO");
    std::thread::sleep(Duration::from_millis(1500));
    signal(&record, libc::SIGTERM);
    let out = record.wait_with_output().unwrap();
    signal(&workload, libc::SIGTERM);
    let _ = workload.wait();
    assert!(out.status.success(), "{out:?}");
    let report = report_json(&file, "op");
    assert_eq!(report["complete"], true);
    assert!(report["records"].as_u64().unwrap() > 0, "{report}");
}

/// `record --workload` records the built-in workload's scalar and vectored
/// phases (and stops on --duration although the workload would go on).
#[test]
fn record_with_the_built_in_workload_has_both_modes() {
    let dir = TempDir::new("export-workload");
    let file = format!("{}/workload.jsonl", dir.path());
    // The workload thread's name, so that parallel tests do not feed this file.
    let out = Command::new(AIO_TRACE)
        .args([
            "record",
            "-o",
            &file,
            "-c",
            "aio-trace-workl",
            "--workload",
            "--phase",
            "0.5",
            "-d",
            "3",
        ])
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = report_json(&file, "op");
    let ops: Vec<&str> = report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["key"].as_str())
        .collect();
    assert!(
        ops.contains(&"PREAD") && ops.contains(&"PREADV"),
        "{report}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.0 GET: the body.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        return Err(std::io::Error::other(head.to_owned()));
    }
    Ok(body.to_owned())
}

/// `serve`'s /metrics passes `promtool check metrics`, and a real Prometheus
/// scrapes it and answers a query for the iocb counter.
#[test]
fn serve_passes_promtool_and_a_prometheus_scrapes_it() {
    ensure_command("promtool", "prometheus");
    ensure_command("prometheus", "prometheus");
    let dir = TempDir::new("export-serve");
    let testee = Testee::spawn("workload-vectored");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // Every iocb a record (`--full`): the per-record series are checked
    // against the truth, beside the kernel's counts.
    let mut serve = start(
        &[
            "serve",
            "--full",
            "--listen",
            &listen,
            "-p",
            &testee.pid().to_string(),
        ],
        "Serving AIO metrics",
    );
    let truth = testee.go();
    let iocbs = of_type(&truth, "calls").next().unwrap()["iocbs_submitted"]
        .as_u64()
        .unwrap();
    let metrics = http_get(port, "/metrics").unwrap();
    let counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("aio_trace_iocbs_total{comm=\"aio-trace-teste\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, iocbs, "{metrics}");
    let submitted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("aio_trace_submitted_iocbs_total{comm=\"aio-trace-teste\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(submitted, iocbs, "the kernel's count: {metrics}");
    assert!(metrics.contains("aio_trace_sample_every 1\n"), "{metrics}");
    // The testee's file is on the build's filesystem: its device's name is the
    // dev label, and device_info gives its maj:min.
    let dev = std::fs::metadata(dir.path()).unwrap().dev();
    let maj_min = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let name = std::fs::read_to_string(format!("/sys/dev/block/{maj_min}/uevent"))
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(str::to_owned))
        })
        .unwrap_or_else(|| maj_min.clone());
    assert!(
        metrics.contains(&format!("op=\"PREADV\",dev=\"{name}\"}}")),
        "no dev=\"{name}\" in {metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "aio_trace_device_info{{dev=\"{name}\",maj_min=\"{maj_min}\"}} 1"
        )),
        "no device_info for {name} in {metrics}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(checked.status.success(), "promtool: {checked:?}");

    let prom_port = free_port();
    let config = format!("{}/prometheus.yml", dir.path());
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: aio-trace\n    static_configs:\n      - targets: ['{listen}']\n"
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={config}"))
        .arg(format!("--storage.tsdb.path={}/tsdb", dir.path()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let body = http_get(prom_port, "/api/v1/query?query=sum(aio_trace_iocbs_total)");
        if let Ok(body) = body {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(value) = v["data"]["result"][0]["value"][1].as_str() {
                break value.to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had the counter"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    signal(&serve, libc::SIGTERM);
    assert!(serve.wait().unwrap().success());
    assert_eq!(answer, iocbs.to_string());
}

/// Threads sharing a context (one stack iocb reused in flight; distinct heap
/// iocbs with a reaper on a timeout; reap batches mixing the threads) and
/// the io_uring scenario, recorded to a file: the file holds one record per
/// request the tracer did not count lost, and `report` and `top --replay`
/// count each exactly once.
#[test]
fn threaded_and_io_uring_recordings_count_once_downstream() {
    for scenario in ["threads_reused_iocb", "threads_distinct_iocbs", "uring"] {
        let dir = TempDir::new("export-threads");
        let testee = Testee::spawn(scenario);
        let pid = testee.pid().to_string();
        let file = format!("{}/trace.jsonl", dir.path());
        let recorder = start(&["record", "-o", &file, "-p", &pid], "Recording AIO");
        let truth = testee.go();
        signal(&recorder, libc::SIGINT);
        let out = recorder.wait_with_output().unwrap();
        assert!(out.status.success(), "{scenario}: {out:?}");

        let lines: Vec<Value> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let recorded = of_type(&lines, "iocb").count() as u64;
        let lost = of_type(&lines, "lost").next().unwrap();
        // A request is a record or a counted loss (see the fidelity tests for
        // which losses each scenario may have); an `abandoned` one is a
        // record without a result.
        let missing = lost["user_read"].as_u64().unwrap();
        let requests = of_type(&truth, "iocb").count() as u64;
        assert_eq!(recorded + missing, requests, "{scenario}: {lost}");

        let report = report_json(&file, "op");
        assert_eq!(report["records"], recorded, "{scenario}: report");

        let replay = Command::new(AIO_TRACE)
            .args(["top", "--replay", &file, "--batch", "--interval", "100"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(replay.status.success(), "{scenario}: {replay:?}");
        let last: Value = String::from_utf8_lossy(&replay.stdout)
            .lines()
            .rfind(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .expect("top --batch printed a line");
        let replayed: u64 = last["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["iocbs"].as_u64().unwrap())
            .sum();
        assert_eq!(replayed, recorded, "{scenario}: top --replay {last}");
    }
}
