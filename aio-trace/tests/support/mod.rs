//! Support shared by the terminal tests and the root tests: tools besides
//! aio-trace, and tmux (a real terminal).
#![allow(dead_code)]

pub mod tmux;
pub mod tool;

/// A successful `top --batch` run's stdout as its JSON lines.
pub fn batch_json_lines(out: std::process::Output) -> Vec<serde_json::Value> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
