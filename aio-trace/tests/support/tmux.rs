//! tmux helpers shared by the terminal tests (`top.rs`, `replay.rs`).

use std::process::Command;

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
