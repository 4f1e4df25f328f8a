//! `aio-trace top --replay FILE` without root: a committed recording
//! (tests/fixtures/replay.jsonl: `record -c aio-trace` over a vectored and a
//! scalar `aio-trace workload`) replayed in a real terminal (a detached tmux
//! session), and a bad file refused before the terminal is touched.

use std::{
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

const AIO_TRACE: &str = env!("CARGO_BIN_EXE_aio-trace");
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/replay.jsonl");

mod support;

use support::tmux::{Session, exit_line, row_with, tmux};

#[test]
fn replay_shows_the_recorded_rows_speeds_up_and_quits_cleanly() {
    if !support::tool::available("tmux", "tmux") {
        return;
    }
    let name = format!("aio-trace-replay-{}", std::process::id());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let exit_file = dir.join("exit");
    let _ = std::fs::remove_file(&exit_file);
    let script = format!(
        "{AIO_TRACE} top --replay {FIXTURE} --interval 100; echo EXIT=$? > {exit}; sleep 60",
        exit = exit_file.display()
    );
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "30",
            "sh",
            "-c",
            &script,
        ])
        .status()
        .expect("start tmux");
    assert!(status.success());
    let _session = Session(name.clone());

    sleep(Duration::from_millis(300));
    for _ in 0..3 {
        tmux(&["send-keys", "-t", &name, "+"]);
    }
    // The recording spans under half a second: at 8× it is over long before this.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pane = String::new();
    while Instant::now() < deadline {
        sleep(Duration::from_millis(300));
        pane = tmux(&["capture-pane", "-p", "-t", &name]);
        if pane.contains("END of recording") {
            break;
        }
    }
    eprintln!("{pane}");
    assert!(pane.contains("replay 8×"), "speed not shown:\n{pane}");
    assert!(pane.contains("END of recording"), "no end:\n{pane}");
    assert!(
        pane.contains("io_submit calls 120"),
        "summary totals:\n{pane}"
    );
    assert!(pane.contains("lost 0"), "losses:\n{pane}");
    assert!(
        row_with(&pane, "PREADV", "4.00").is_some(),
        "no PREADV row with 4.00 segments:\n{pane}"
    );
    assert!(
        row_with(&pane, "PREAD", "1.00").is_some(),
        "no PREAD row with 1.00 segments:\n{pane}"
    );

    tmux(&["send-keys", "-t", &name, "q"]);
    assert_eq!(exit_line(&exit_file), "EXIT=0", "top did not exit after q");
    let after = tmux(&["capture-pane", "-p", "-t", &name]);
    assert!(
        !after.contains("IOCB/s"),
        "alternate screen not left:\n{after}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_recording_is_one_error_naming_the_line_and_exit_2() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.jsonl");
    let good = std::fs::read_to_string(FIXTURE).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(&bad, format!("{first}\n{{\"type\":\"iocb\",\"pid\":\n")).unwrap();
    let out = Command::new(AIO_TRACE)
        .args(["top", "--replay"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.jsonl:2:"), "{stderr}");
    // Nothing was drawn: no alternate screen sequences on stdout.
    assert!(out.stdout.is_empty());
    let missing = Command::new(AIO_TRACE)
        .args(["top", "--replay"])
        .arg(dir.join("missing.jsonl"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

/// `top --replay --batch` without a terminal: one JSON object per interval,
/// with the recording's process and its op, then exit 0 after `--count`.
#[test]
fn replay_in_batch_mode_prints_one_json_line_per_interval() {
    let out = Command::new(AIO_TRACE)
        .args([
            "top",
            "--replay",
            FIXTURE,
            "--batch",
            "--count",
            "2",
            "--interval",
            "100",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run aio-trace");
    let lines = support::batch_json_lines(out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first = &lines[0];
    assert!(first["t"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["iocbs_per_s"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["losses"]["inflight_at_start"].is_u64(), "{first}");
    let row = &first["rows"][0];
    assert_eq!(row["comm"], "aio-trace", "{first}");
    assert!(row["ops"]["PREADV"].as_f64().unwrap() > 0.0, "{first}");
    assert!(row["p99_us"].as_f64().unwrap() > 0.0, "{first}");
    // The detail pane's device rows: the recording's one device, by maj:min
    // (its name is this machine's, whatever it is).
    let devices = row["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{first}");
    assert_eq!(devices[0]["dev"], "254:0", "{first}");
    assert!(devices[0]["name"].is_string(), "{first}");
    assert_eq!(devices[0]["iocbs"], row["iocbs"], "{first}");
    assert!(devices[0]["bios"].as_u64().unwrap() > 0, "{first}");
    assert!(
        devices[0]["avg_latency_us"].as_f64().unwrap() > 0.0,
        "{first}"
    );
    assert!(lines[1]["t"].as_f64().unwrap() > first["t"].as_f64().unwrap());
}

/// `--format text` runs the recording to its end and stops there.
#[test]
fn replay_in_batch_text_mode_stops_at_the_end() {
    let out = Command::new(AIO_TRACE)
        .args([
            "top",
            "--replay",
            FIXTURE,
            "--batch",
            "--format",
            "text",
            "--interval",
            "100",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run aio-trace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("t 0."), "{stdout}");
    assert!(stdout.contains("PREADV 100%"), "{stdout}");
    assert!(stdout.contains("PREAD 100%"), "{stdout}");
}
