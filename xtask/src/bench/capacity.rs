//! The record rate aio-trace sustains to a JSONL file, and what is lost above it.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::json_of;

/// Records per second `record` writes to a JSONL file, on a workload of
/// cached 4 KiB buffered reads (no device in the way), and the loss counters.
pub fn run(binary: &Path, dir: &Path, seconds: u32) -> Result<()> {
    let data = dir.join("capacity-64m.dat");
    if !data.exists() {
        json_of(
            Command::new(binary)
                .args([
                    "workload", "--size", "64M", "--ops", "1", "--json", "--file",
                ])
                .arg(&data),
            "creating the capacity file",
        )?;
    }
    // Into the page cache first: a cold file made the first step read from
    // the disk (readahead bios inside io_submit, a fraction of the rate).
    std::fs::read(&data).with_context(|| format!("while reading {}", data.display()))?;
    println!(
        "xtask bench: capacity — cached buffered 4 KiB reads, batch 16, reap-min 16, traced to a JSONL file"
    );
    for iodepth in ["16", "64", "256"] {
        let out = dir.join("capacity.jsonl");
        let mut tracer = Command::new(binary)
            .args(["record", "--force", "-c", "aio-trace", "-o"])
            .arg(&out)
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stderr = BufReader::new(tracer.stderr.take().expect("piped"));
        let mut banner = String::new();
        stderr.read_line(&mut banner)?;
        let v = json_of(
            Command::new(binary)
                .args([
                    "workload",
                    "--buffered",
                    "--mode",
                    "scalar",
                    "--segments",
                    "1",
                    "--rw",
                    "randread",
                ])
                .args([
                    "--iodepth",
                    iodepth,
                    "--batch",
                    "16",
                    "--reap-min",
                    "16",
                    "-d",
                    &seconds.to_string(),
                    "--json",
                    "--file",
                ])
                .arg(&data),
            "the capacity workload",
        )?;
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
        tracer.wait()?;
        let text = std::fs::read_to_string(&out)?;
        let records = text
            .lines()
            .filter(|l| l.starts_with(r#"{"type":"iocb""#))
            .count();
        let lost: Value = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        // Causes that cost a record, apart from attribution misses (a bio
        // or dispatch not tied to an iocb: the record is still written).
        let causes = lost.as_object().cloned().unwrap_or_default();
        let (mut records_lost, mut misses) = (0, 0);
        let mut named = Vec::new();
        for (cause, n) in &causes {
            let n = n.as_u64().unwrap_or(0);
            if n == 0 {
                continue;
            }
            if cause.starts_with("unattributed") || cause.starts_with("unmatched_dispatch") {
                misses += n;
            } else {
                records_lost += n;
            }
            named.push(format!("{cause} {n}"));
        }
        let iocbs = v["iocbs"].as_u64().unwrap_or(0);
        println!(
            "  iodepth {iodepth:>3}: workload {:>8.0} iocbs/s, {records} records written for {iocbs} iocbs ({:.0}/s), records lost {records_lost}, attribution misses {misses}{}",
            v["iops"].as_f64().unwrap_or(0.0),
            records as f64 / v["elapsed_s"].as_f64().unwrap_or(1.0),
            if named.is_empty() {
                String::new()
            } else {
                format!(" ({})", named.join(", "))
            }
        );
    }
    Ok(())
}
