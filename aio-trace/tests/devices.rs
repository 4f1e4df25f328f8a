//! `--disk`: the same workload on a loop device of the test's own and on the
//! filesystem of the build, traced with `--disk` of the loop device; only its
//! records are kept, and `report --by dev` names it.

#![cfg(feature = "root-tests")]

mod common;

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::MetadataExt,
    process::{Command, Stdio},
};

use common::{AIO_TRACE, LoopDevice, TempDir, assert_usage_error, report_json};
use serde_json::Value;

/// "maj:min" of the filesystem holding `path`.
fn fs_device(path: &str) -> String {
    let dev = std::fs::metadata(path).unwrap().dev();
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// Starts `aio-trace workload` on a file in `dir` (the task is named aio-trace).
fn workload(dir: &str) -> std::process::Child {
    Command::new(AIO_TRACE)
        .args(["workload", "--dir", dir, "--size", "8M", "--ops", "400"])
        .args(["--mode", "scalar", "--segments", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn iocbs_of(child: std::process::Child) -> u64 {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "workload: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["iocbs"]
        .as_u64()
        .unwrap_or_else(|| panic!("no iocbs in {v}"))
}

#[test]
fn disk_keeps_only_that_devices_records_and_report_names_it() {
    let mut device = LoopDevice::new("disk");
    device.mount();
    let on_loop = device.mountpoint().unwrap().to_owned();
    let on_root = TempDir::new("disk-root");
    let (loop_dev, root_dev) = (fs_device(&on_loop), fs_device(on_root.path()));
    assert_ne!(loop_dev, root_dev);
    let name = device.device.trim_start_matches("/dev/").to_owned();
    let out = TempDir::new("disk-out");
    let file = format!("{}/trace.jsonl", out.path());

    // By name with /dev/, as a user copies it from lsblk or mount.
    let mut record = Command::new(AIO_TRACE)
        .args([
            "record",
            "-o",
            &file,
            "-c",
            "aio-trace",
            "--disk",
            &device.device,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(record.stderr.take().unwrap());
    let mut banner = String::new();
    stderr.read_line(&mut banner).unwrap();
    assert!(banner.starts_with("Recording AIO"), "{banner}");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let (a, b) = (workload(&on_loop), workload(on_root.path()));
    let (loop_iocbs, root_iocbs) = (iocbs_of(a), iocbs_of(b));
    assert!(loop_iocbs > 0 && root_iocbs > 0);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(record.id() as i32, libc::SIGINT) };
    assert!(record.wait().unwrap().success());

    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let iocbs: Vec<&Value> = lines.iter().filter(|l| l["type"] == "iocb").collect();
    assert_eq!(
        iocbs.len() as u64,
        loop_iocbs,
        "only the loop device's iocbs"
    );
    assert!(
        iocbs.iter().all(|r| r["dev"] == loop_dev.as_str()),
        "a record not on {loop_dev}"
    );
    let devices: Vec<&Value> = lines.iter().filter(|l| l["type"] == "device").collect();
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["dev"], loop_dev.as_str());
    assert_eq!(devices[0]["name"], name.as_str());

    let report = report_json(&file, "dev");
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["key"], format!("{name} {loop_dev}").as_str());
    assert_eq!(groups[0]["iocbs"].as_u64(), Some(loop_iocbs));
}

#[test]
fn an_unknown_disk_is_one_sentence_and_status_2() {
    assert_usage_error(
        &["snoop", "--disk", "nosuchdisk0"],
        "error: invalid value 'nosuchdisk0' for '--disk <DISK>': no block device is named nosuchdisk0",
    );
}
