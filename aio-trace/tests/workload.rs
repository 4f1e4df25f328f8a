//! Root integration tests of the built-in workload: what it says it did is
//! checked against the tracer's records, and its refusals are checked on real
//! files and (loop) block devices.

mod common;

use std::process::Command;

use aio_trace::model::IocbView;
use common::{AIO_TRACE, LoopDevice, TempDir, Testee, of_type, trace};

/// (offset, length) of every byte range the records cover.
fn ranges(records: &[aio_trace_common::IocbRecord]) -> Vec<(i64, u64, bool)> {
    let mut r: Vec<_> = records
        .iter()
        .flat_map(|r| {
            let segs = u64::from(r.segs);
            let seg = r.bytes / segs;
            let read = matches!(r.op().name(), "PREAD" | "PREADV");
            (0..segs).map(move |k| (r.offset + (k * seg) as i64, seg, read))
        })
        .collect();
    r.sort_unstable();
    r
}

#[test]
fn vectored_and_scalar_runs_match_the_trace_and_cover_the_same_bytes() {
    let mut covered = Vec::new();
    for (scenario, ops, segs, bytes) in [
        ("workload-vectored", ["PREADV", "PWRITEV"], 8u32, 32768u64),
        ("workload-scalar", ["PREAD", "PWRITE"], 1, 4096),
    ] {
        let (truth, records, summaries, losses) = trace(Testee::spawn(scenario));
        let result = of_type(&truth, "workload")
            .next()
            .expect("the workload's result");
        assert_eq!(
            records.len() as u64,
            result["iocbs"].as_u64().unwrap(),
            "{scenario}: one record per iocb"
        );
        assert_eq!(
            records.iter().map(|r| r.bytes).sum::<u64>(),
            result["bytes"].as_u64().unwrap(),
            "{scenario}"
        );
        for r in &records {
            assert!(ops.contains(&r.op().name()), "{scenario}: {r:?}");
            assert_eq!(
                (r.segs, r.bytes, r.res),
                (segs, bytes, bytes as i64),
                "{scenario}: {r:?}"
            );
        }
        for op in ops {
            assert!(
                records.iter().any(|r| r.op().name() == op),
                "{scenario}: randrw has {op}"
            );
        }
        let summary = &summaries[0];
        assert_eq!(
            summary.io_submit_calls,
            result["io_submit_calls"].as_u64().unwrap(),
            "{scenario}"
        );
        assert_eq!(
            summary.io_getevents_calls,
            result["io_getevents_calls"].as_u64().unwrap(),
            "{scenario}"
        );
        assert_eq!(losses.total(), 0, "{scenario}: {losses:?}");
        // Everything began after the tracer: nothing was in flight at its start.
        assert_eq!(losses.inflight_at_start, 0, "{scenario}: {losses:?}");
        covered.push(ranges(&records));
    }
    assert_eq!(
        covered[0], covered[1],
        "same seed: the same file ranges, read or written alike, in both modes"
    );
}

fn workload(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(AIO_TRACE)
        .arg("workload")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unaligned_segment_size_is_refused() {
    let dir = TempDir::new("unaligned");
    let (code, stderr) = workload(&[
        "--dir",
        dir.path(),
        "--size",
        "1M",
        "--ops",
        "1",
        "--segment-size",
        "1000",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with("aio-trace: --segment-size 1000 is not a multiple of the target's ")
            && stderr.ends_with("-byte logical block size (O_DIRECT needs it)\n")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn bad_targets_get_one_sentence() {
    let (code, stderr) = workload(&["--device", "/etc/hostname", "--ops", "1"]);
    assert_eq!(
        (code, stderr.as_str()),
        (Some(1), "aio-trace: /etc/hostname is not a block device\n")
    );
    let (code, stderr) = workload(&["--segments", "1025", "--ops", "1"]);
    assert_eq!(
        (code, stderr.as_str()),
        (
            Some(1),
            "aio-trace: --segments must be between 1 and 1024 (the kernel's UIO_MAXIOV), not 1025\n"
        )
    );
}

#[test]
fn a_filesystem_without_o_direct_is_named() {
    // ramfs has no direct I/O (tmpfs has it since Linux 6.6).
    let dir = TempDir::new("ramfs");
    assert!(
        Command::new("mount")
            .args(["-t", "ramfs", "ramfs", dir.path()])
            .status()
            .unwrap()
            .success()
    );
    let (code, stderr) = workload(&["--dir", dir.path(), "--size", "1M", "--ops", "1"]);
    let _ = Command::new("umount").arg(dir.path()).status();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("refuses O_DIRECT: use --buffered"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn device_writes_need_the_flag_and_an_unmounted_device() {
    let mut device = LoopDevice::new("refuse");
    let (code, stderr) = workload(&["--device", &device.device, "--rw", "write", "--ops", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "aio-trace: refusing to write the block device {} without --allow-device-writes\n",
            device.device
        )
    );
    // Reading is fine without the flag.
    let (code, stderr) = workload(&[
        "--device",
        &device.device,
        "--rw",
        "randread",
        "--ops",
        "10",
    ]);
    assert_eq!(code, Some(0), "{stderr}");

    device.mount();
    let (code, stderr) = workload(&[
        "--device",
        &device.device,
        "--rw",
        "write",
        "--ops",
        "1",
        "--allow-device-writes",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "aio-trace: refusing to write {}: it is mounted\n",
            device.device
        )
    );
}

/// A file overwritten while `--verify` runs is a mismatch: one sentence and
/// exit status 1, with every iocb reaped before its buffer is freed (the
/// device would otherwise DMA into freed heap: a crash, exit by signal).
/// Several runs, as whether iocbs are in flight at the mismatch is timing.
#[test]
fn a_verify_mismatch_under_o_direct_is_an_error_not_a_crash() {
    let dir = TempDir::new("mismatch");
    for run in 0..6 {
        let file = format!("{}/v{run}.dat", dir.path());
        let child = Command::new(AIO_TRACE)
            .args(["workload", "--size", "8M", "--verify", "-d", "4"])
            .args(["--iodepth", "128", "--file", &file])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let dd = Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "count=8", "conv=notrunc"])
            .args(["oflag=direct", "status=none"])
            .arg(format!("of={file}"))
            .status()
            .unwrap();
        assert!(dd.success(), "dd: {dd}");
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "run {run}: {:?} {stderr}",
            out.status
        );
        assert!(
            stderr.starts_with("aio-trace: verify failed: the byte at offset ")
                && stderr.lines().count() == 1,
            "run {run}: {stderr}"
        );
    }
}

/// A file that existed before the run is the user's: neither the --verify
/// pattern nor a --rw that writes touches it without --allow-file-writes.
#[test]
fn an_existing_file_is_written_only_with_the_flag() {
    let dir = TempDir::new("existing");
    let file = format!("{}/mine.dat", dir.path());
    let mine: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &mine).unwrap();
    for (args, what) in [
        (
            &["--verify", "-d", "1"][..],
            "write the --verify pattern over",
        ),
        (&["--rw", "randwrite", "--ops", "1"][..], "write"),
        (&["--rw", "rw", "--verify", "--ops", "1"][..], "write"),
    ] {
        let mut all = vec!["--file", &file, "--buffered"];
        all.extend_from_slice(args);
        let (code, stderr) = workload(&all);
        assert_eq!(
            (code, stderr),
            (
                Some(1),
                format!(
                    "aio-trace: refusing to {what} the existing file {file} without --allow-file-writes\n"
                )
            ),
            "{args:?}"
        );
        assert!(
            std::fs::read(&file).unwrap() == mine,
            "{args:?}: the file changed"
        );
    }
    // Reading it is fine, and leaves it as it was.
    let (code, stderr) = workload(&["--file", &file, "--buffered", "--ops", "10"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        std::fs::read(&file).unwrap() == mine,
        "a read run changed the file"
    );
    let (code, stderr) = workload(&[
        "--file",
        &file,
        "--buffered",
        "--verify",
        "--ops",
        "10",
        "--allow-file-writes",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        std::fs::read(&file).unwrap() != mine,
        "the flag lets --verify fill it"
    );
}

/// Each bad input is one line naming its cause once (an error's source
/// repeated in its own message printed it twice).
#[test]
fn bad_inputs_name_their_cause_once() {
    let (code, stderr) = workload(&["--size", "0", "--ops", "1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: invalid value '0' for '--size <BYTES>': the size must be more than 0 bytes, not 0\n"
        ),
        "{stderr}"
    );
    for (args, cause) in [
        (
            &["--dir", "/nonexistent-aio-trace-dir", "--ops", "1"][..],
            "No such file or directory (os error 2)",
        ),
        (
            &["--device", "/dev/nonexistent-aio-trace", "--ops", "1"][..],
            "No such file or directory (os error 2)",
        ),
    ] {
        let (code, stderr) = workload(args);
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// A --batch above --iodepth cannot be honoured: one line says so.
#[test]
fn a_batch_above_the_iodepth_is_named() {
    let dir = TempDir::new("batch");
    let (code, stderr) = workload(&[
        "--dir",
        dir.path(),
        "--size",
        "1M",
        "--iodepth",
        "4",
        "--batch",
        "64",
        "--ops",
        "10",
        "--json",
    ]);
    assert_eq!(
        (code, stderr.as_str()),
        (
            Some(0),
            "aio-trace: --batch 64 is more than --iodepth 4: each io_submit carries at most 4 ranges\n"
        )
    );
}

/// A new --file the workload cannot fill (a full disk) is removed again: a
/// half-made file is nothing the user asked for.
#[test]
fn a_new_file_on_a_full_disk_is_one_sentence_and_removed() {
    let dir = TempDir::new("full");
    assert!(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1M", "tmpfs", dir.path()])
            .status()
            .unwrap()
            .success()
    );
    let file = format!("{}/new.dat", dir.path());
    let (code, stderr) = workload(&["--file", &file, "--size", "4M", "--buffered", "--ops", "1"]);
    let left = std::path::Path::new(&file).exists();
    let _ = Command::new("umount").arg(dir.path()).status();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!("aio-trace: while preallocating {file}: No space left on device (os error 28)\n")
    );
    assert!(!left, "the half-made file is removed");
}
