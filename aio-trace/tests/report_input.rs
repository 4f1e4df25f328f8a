//! `aio-trace report` on files that are not recordings, run as a user would:
//! one sentence on stderr, exit status 2, nothing on stdout, and no waiting
//! for memory to run out. Needs no root.

use std::{path::PathBuf, process::Command};

const AIO_TRACE: &str = env!("CARGO_BIN_EXE_aio-trace");

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("aio-trace-report-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn report(path: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(AIO_TRACE)
        .arg("report")
        .args(extra)
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn one_endless_line_is_refused_with_its_line_number() {
    // 3 MiB without a newline: the old reader held it all (and /dev/zero
    // grew without end).
    let path = temp_file("endless", &vec![b'a'; 3 << 20]);
    let (code, stdout, stderr) = report(&path, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "aio-trace: {}:1: a line longer than 1 MiB: not an aio-trace recording",
            path.display()
        )
    );
}

#[test]
fn dev_zero_is_binary_data() {
    let (code, stdout, stderr) = report(std::path::Path::new("/dev/zero"), &["--skip-bad"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.trim_end(),
        "aio-trace: /dev/zero is not an aio-trace recording (binary data at line 1)"
    );
}

#[test]
fn a_torn_recording_suggests_skip_bad_and_warns_on_stderr() {
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/replay.jsonl"
    ))
    .unwrap();
    let cut = &fixture[..fixture.len() - 30];
    let path = temp_file("torn.jsonl", cut);
    let (code, stdout, stderr) = report(&path, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.trim_end().ends_with(
            "the last line is incomplete (was the recording killed?): rerun with --skip-bad to read the rest"
        ),
        "{stderr}"
    );
    let (code, stdout, stderr) = report(&path, &["--skip-bad", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is only the JSON");
    assert_eq!(json["complete"], false);
    assert!(
        stderr.contains("warning: ") && stderr.contains("no closing loss line"),
        "{stderr}"
    );
    let (_, text, _) = report(&path, &["--skip-bad"]);
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn gzip_and_perfetto_files_say_what_they_are() {
    let gz = temp_file("t.jsonl.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03");
    let (code, _, stderr) = report(&gz, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("is gzip-compressed: decompress it first (zcat "),
        "{stderr}"
    );
    let trace = temp_file("t.json", b"{\"traceEvents\":[\n{\"ph\":\"X\"},\n");
    let (code, _, stderr) = report(&trace, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("is a Perfetto trace (record --format perfetto or chrome-json)"),
        "{stderr}"
    );
}
