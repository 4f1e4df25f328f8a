//! Root end-to-end test of `aio-trace top --workload` in a real terminal
//! (a detached tmux session): the table shows PREAD and PREADV rows with the
//! workload's segment counts, `t` switches tier and back, and `q` exits 0
//! leaving the alternate screen.

use std::{process::Command, thread::sleep, time::Duration};

const AIO_TRACE: &str = env!("CARGO_BIN_EXE_aio-trace");

mod support;

use support::tmux::{Session, exit_line, row_with, tmux};

#[test]
fn top_shows_vectored_and_scalar_rows_and_quits_cleanly() {
    if !support::tool::available("tmux", "tmux") {
        return;
    }
    let name = format!("aio-trace-top-{}", std::process::id());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let exit_file = dir.join("exit");
    let _ = std::fs::remove_file(&exit_file);
    // The workload's temp file goes next to the build (O_DIRECT-capable, unlike tmpfs).
    let script = format!(
        "TMPDIR={dir} {bin} top --workload --phase 2; echo EXIT=$? > {exit}; sleep 60",
        dir = dir.display(),
        bin = AIO_TRACE,
        exit = exit_file.display()
    );
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "160",
            "-y",
            "48",
            "sh",
            "-c",
            &script,
        ])
        .status()
        .expect("start tmux");
    assert!(status.success());
    let _session = Session(name.clone());

    // Scalar and vectored phases alternate every 2 s; after one of each, split the rows.
    sleep(Duration::from_secs(6));
    tmux(&["send-keys", "-t", &name, "v"]);
    sleep(Duration::from_secs(3));
    let pane = tmux(&["capture-pane", "-p", "-t", &name]);
    eprintln!("{pane}");
    assert!(pane.contains("aio-trace top"), "no header:\n{pane}");
    assert!(pane.contains("lost 0"), "losses:\n{pane}");
    let vectored = row_with(&pane, "PREADV", "8.00");
    let scalar = row_with(&pane, "PREAD", "1.00");
    assert!(
        vectored.is_some(),
        "no PREADV row with 8.00 segments:\n{pane}"
    );
    assert!(scalar.is_some(), "no PREAD row with 1.00 segments:\n{pane}");
    assert!(pane.contains("tier light 1/64"), "not light:\n{pane}");

    // `t`: the full tier, live, and back; the header prices each.
    // Two ticks of the full tier at least: the first after a switch starts
    // its cost's interval.
    tmux(&["send-keys", "-t", &name, "t"]);
    sleep(Duration::from_secs(4));
    let full = tmux(&["capture-pane", "-p", "-t", &name]);
    eprintln!("{full}");
    assert!(full.contains("tier full"), "t did not switch:\n{full}");
    assert!(!full.contains("sampled 1/64"), "still sampled:\n{full}");
    tmux(&["send-keys", "-t", &name, "t"]);
    sleep(Duration::from_secs(3));
    let light = tmux(&["capture-pane", "-p", "-t", &name]);
    eprintln!("{light}");
    assert!(
        light.contains("tier light 1/64"),
        "t did not switch back:\n{light}"
    );
    // "(µs/iocb light 0.36 full 3.45)": both tiers measured.
    let costs: Vec<f64> = light
        .split("(µs/iocb ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(|costs| {
            costs
                .split(' ')
                .filter_map(|word| word.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(costs.len(), 2, "each tier's cost:\n{light}");
    assert!(light.contains("lost 0"), "losses:\n{light}");

    tmux(&["send-keys", "-t", &name, "q"]);
    assert_eq!(exit_line(&exit_file), "EXIT=0", "top did not exit after q");
    // Back on the main screen: the table is gone.
    let after = tmux(&["capture-pane", "-p", "-t", &name]);
    assert!(
        !after.contains("IOCB/s"),
        "alternate screen not left:\n{after}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `top --batch` without a terminal: one JSON object per interval, whose
/// rows show the workload's PREADV (8 segments) and PREAD iocbs, then exit 0
/// after `--count`.
#[test]
fn top_batch_prints_json_lines_with_the_workload_rows() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("aio-trace-top-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(AIO_TRACE)
        .args([
            "top",
            "--batch",
            "--workload",
            "--phase",
            "300ms",
            "--count",
            "2",
            "--interval",
            "500",
        ])
        .env("TMPDIR", &dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run aio-trace");
    let lines = support::batch_json_lines(out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let last = &lines[1];
    assert!(last["io_submit_per_s"].as_f64().unwrap() > 0.0, "{last}");
    assert!(last["in_flight"].is_u64(), "{last}");
    let rows = last["rows"].as_array().unwrap();
    let has = |op: &str| {
        rows.iter()
            .any(|r| r["ops"][op].as_f64().unwrap_or(0.0) > 0.0)
    };
    assert!(has("PREADV") && has("PREAD"), "{last}");
    assert!(
        rows.iter()
            .any(|r| r["kinds"]["vectored"]["avg_segments"] == 8.0),
        "{last}"
    );
}
