//! tmux helpers shared by the terminal tests (`top.rs`, `replay.rs`).

use std::{
    path::Path,
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills the tmux session even when an assertion fails.
pub struct Session(pub String);

impl Drop for Session {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

/// The pane line that names `op` and shows `segs`.
pub fn row_with<'a>(pane: &'a str, op: &str, segs: &str) -> Option<&'a str> {
    pane.lines()
        .find(|l| l.split_whitespace().any(|w| w == op) && l.split_whitespace().any(|w| w == segs))
}

/// The line a pane's shell writes to `path` once the command under test
/// exits (`echo EXIT=$? > path`), trimmed; empty if none within 15 s. The
/// shell creates the file before it writes the line: wait for the line.
pub fn exit_line(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut line = String::new();
    while !line.ends_with('\n') && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
        line = std::fs::read_to_string(path).unwrap_or_default();
    }
    line.trim().to_owned()
}
