//! Bad input refused by the `aio-trace` binary before anything needs root:
//! one sentence on stderr, a non-zero exit, nothing written, no hang.

use std::{
    io::Read as _,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

const AIO_TRACE: &str = env!("CARGO_BIN_EXE_aio-trace");
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/replay.jsonl");

/// Runs aio-trace in a session of its own (no controlling terminal), stdin
/// from /dev/null and stdout a pipe: no terminal anywhere. Fails the test
/// rather than hanging if it has not exited after 10 seconds.
fn run_detached(args: &[&str]) -> Output {
    let mut command = Command::new(AIO_TRACE);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aio-trace {args:?} did not exit within 10 s");
        }
        sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A directory of its own under the target's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("refusals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `top` without a terminal says it needs one and what to run instead, live
/// (refused before the tracer, so without root too) and replaying.
#[test]
fn top_without_a_terminal_says_so_and_suggests_another_command() {
    let out = run_detached(&["top"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "aio-trace: top draws a live table and needs a terminal, but its output is not one: for the table as JSON lines, run aio-trace top --batch; for one line per iocb, aio-trace snoop; to a file, aio-trace record -o FILE\n"
    );
    assert!(out.stdout.is_empty());

    let out = run_detached(&["top", "--replay", FIXTURE]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "aio-trace: top draws a live table and needs a terminal, but its output is not one: for its numbers as text, run aio-trace report {FIXTURE} (or top --batch)\n"
        )
    );
    assert!(out.stdout.is_empty());
}

/// `record --force` onto a symbolic link refuses it (before loading the
/// tracer) and leaves the file it points to as it was.
#[test]
fn record_refuses_a_symlink_even_with_force() {
    let dir = temp_dir("symlink");
    let target = dir.join("precious");
    std::fs::write(&target, "keep me\n").unwrap();
    let link = dir.join("out.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for force in [&["--force"][..], &[]] {
        let mut args = vec!["record", "-o", link.to_str().unwrap(), "-d", "1"];
        args.extend_from_slice(force);
        let out = run_detached(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "aio-trace: {} is a symbolic link, which aio-trace does not write through: give the file it points to\n",
                link.display()
            )
        );
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    let _ = std::fs::remove_dir_all(&dir);
}
