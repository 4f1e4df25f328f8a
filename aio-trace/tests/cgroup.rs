//! `--cgroup`: the test makes a cgroup of its own under the v2 mount, runs
//! the workload in it and the same workload outside it, and traces with
//! `--cgroup` of it: exactly the inside workload's iocbs are kept, each
//! carries the cgroup's id and path, `report --by cgroup` groups them under
//! the path, and `serve --labels cgroup` labels its series with it.

#![cfg(feature = "root-tests")]

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{AIO_TRACE, TempDir, assert_usage_error, report_json};
use serde_json::Value;

/// A cgroup of the test's own under the v2 mount, removed when dropped
/// (also when the test fails): what is still in it goes back to the root
/// first, as a non-empty cgroup cannot be removed.
struct TestCgroup {
    mount: PathBuf,
    dir: PathBuf,
    /// Its path under the mount, as records and `--cgroup` write it.
    path: String,
}

impl TestCgroup {
    fn new(name: &str) -> Option<Self> {
        let Ok(mount) = aio_trace::cgroup::v2_mount() else {
            eprintln!("skipping: no cgroup v2 mount in /proc/self/mountinfo");
            return None;
        };
        let path = format!("/aio-trace-test-{name}-{}", std::process::id());
        let dir = mount.join(path.trim_start_matches('/'));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Some(Self { mount, dir, path })
    }

    fn id(&self) -> u64 {
        std::fs::metadata(&self.dir).unwrap().ino()
    }

    /// `aio-trace workload ARGS` moved into this cgroup before it starts:
    /// the shell writes its own pid to cgroup.procs, then becomes the workload.
    fn spawn_inside(&self, args: &[&str]) -> Child {
        let procs = self.dir.join("cgroup.procs");
        Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(&procs)
            .arg(AIO_TRACE)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = std::fs::write(self.mount.join("cgroup.procs"), pid);
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

fn workload_args(dir: &str) -> Vec<&str> {
    vec![
        "workload",
        "--dir",
        dir,
        "--size",
        "8M",
        "--ops",
        "300",
        "--segments",
        "4",
        "--json",
    ]
}

fn outside(dir: &str) -> Child {
    Command::new(AIO_TRACE)
        .args(workload_args(dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn iocbs_of(child: Child) -> u64 {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "workload: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["iocbs"]
        .as_u64()
        .unwrap_or_else(|| panic!("no iocbs in {v}"))
}

/// Reads `child`'s stderr until a line starting with `banner`, then drains
/// the rest on a thread; returns the banner line.
fn wait_for_banner(child: &mut Child, banner: &str) -> String {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ended before {banner}"
        );
        if line.starts_with(banner) {
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            return line;
        }
    }
}

fn interrupt(mut child: Child) {
    // SAFETY: signalling our own child, which has not been reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn cgroup_keeps_only_its_tasks_and_names_them_in_records_and_report() {
    let Some(cgroup) = TestCgroup::new("record") else {
        return;
    };
    let work = TempDir::new("cgroup-work");
    let out = TempDir::new("cgroup-out");
    let file = format!("{}/trace.jsonl", out.path());
    let mut record = Command::new(AIO_TRACE)
        .args(["record", "-o", &file, "--cgroup", &cgroup.path])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_banner(&mut record, "Recording AIO");

    let inside = cgroup.spawn_inside(&workload_args(work.path()));
    let other = outside(work.path());
    let (inside_iocbs, outside_iocbs) = (iocbs_of(inside), iocbs_of(other));
    assert!(inside_iocbs > 0 && outside_iocbs > 0);
    interrupt(record);

    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["filters"]["cgroups"][0], cgroup.path.as_str());
    let iocbs: Vec<&Value> = lines.iter().filter(|l| l["type"] == "iocb").collect();
    assert_eq!(
        iocbs.len() as u64,
        inside_iocbs,
        "exactly the inside workload's iocbs"
    );
    let id = cgroup.id();
    for r in &iocbs {
        assert_eq!(r["cgroup"].as_u64(), Some(id), "{r}");
        assert_eq!(r["cgroup_path"], cgroup.path.as_str(), "{r}");
    }

    let report = report_json(&file, "cgroup");
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["key"], cgroup.path.as_str());
    assert_eq!(groups[0]["iocbs"].as_u64(), Some(inside_iocbs));
}

/// A child cgroup of the filtered one counts as inside it: a container's
/// processes often sit in cgroups below its own.
#[test]
fn cgroup_takes_in_the_cgroups_below_it() {
    let Some(cgroup) = TestCgroup::new("nested") else {
        return;
    };
    let child_dir = cgroup.dir.join("inner");
    std::fs::create_dir(&child_dir).unwrap();
    let inner = TestCgroup {
        mount: cgroup.mount.clone(),
        dir: child_dir,
        path: format!("{}/inner", cgroup.path),
    };
    let work = TempDir::new("cgroup-nested");
    let mut snoop = Command::new(AIO_TRACE)
        .args(["snoop", "--json", "--cgroup", &cgroup.path])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_banner(&mut snoop, "Tracing AIO");
    let inside = inner.spawn_inside(&workload_args(work.path()));
    let inside_iocbs = iocbs_of(inside);
    // SAFETY: signalling our own child, which has not been reaped.
    unsafe { libc::kill(snoop.id() as i32, libc::SIGINT) };
    let out = snoop.wait_with_output().unwrap();
    assert!(out.status.success());
    let iocbs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "iocb")
        .collect();
    assert_eq!(iocbs.len() as u64, inside_iocbs);
    assert!(
        iocbs
            .iter()
            .all(|r| r["cgroup_path"] == inner.path.as_str()),
        "{:?}",
        iocbs.first()
    );
    drop(inner);
}

#[test]
fn serve_labels_series_with_the_cgroup_when_asked() {
    let Some(cgroup) = TestCgroup::new("serve") else {
        return;
    };
    let work = TempDir::new("cgroup-serve");
    let mut serve = Command::new(AIO_TRACE)
        // Every iocb a record: the cgroup label is on the per-record series.
        .args([
            "serve",
            "--full",
            "--listen",
            "127.0.0.1:0",
            "--labels",
            "cgroup",
        ])
        .args(["--cgroup", &cgroup.path])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let banner = wait_for_banner(&mut serve, "Serving AIO metrics on http://");
    let addr = banner
        .trim_start_matches("Serving AIO metrics on http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let iocbs = iocbs_of(cgroup.spawn_inside(&workload_args(work.path())));

    let wanted = format!(
        r#"aio_trace_iocbs_total{{cgroup="{}",api="aio""#,
        cgroup.path
    );
    let mut metrics = String::new();
    // Records reach the metrics after the session's next drain.
    for _ in 0..50 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        metrics.clear();
        s.read_to_string(&mut metrics).unwrap();
        let total: u64 = metrics
            .lines()
            .filter(|l| l.starts_with(&wanted))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if total == iocbs {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    interrupt(serve);
    let total: u64 = metrics
        .lines()
        .filter(|l| l.starts_with(&wanted))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, iocbs, "{wanted} in\n{metrics}");
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("aio_trace_iocbs_total{comm=")),
        "no comm label unless asked:\n{metrics}"
    );
}

#[test]
fn a_bad_cgroup_is_one_sentence_and_status_2() {
    assert_usage_error(
        &["snoop", "--cgroup", "/no/such/cgroup"],
        "error: invalid value '/no/such/cgroup' for '--cgroup <PATH>': /no/such/cgroup is not a cgroup",
    );
}
