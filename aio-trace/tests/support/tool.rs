//! Tools the tests drive besides aio-trace (tmux, fio, …).

use std::process::{Command, Stdio};

/// Whether `tool` runs here. When it does not, the test must not pass
/// silently: under CI (`CI` set and not `false`/`0`) the project's own setup
/// (`cargo xtask test`) installs every such tool, so a missing one is a
/// failure; elsewhere the test says it is skipping and why.
pub fn available(tool: &str, package: &str) -> bool {
    let runs = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return true;
    }
    assert!(
        !under_ci(),
        "{tool} is missing under CI, but `cargo xtask test` installs it (Debian package {package})"
    );
    eprintln!(
        "skipping: {tool} is not installed (Debian package {package}; `cargo xtask test` installs it)"
    );
    false
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Imports `module` in python3, installing PyPI's `package` with pip first
/// when it is missing (the root tests' Python consumers: DuckDB, Perfetto's
/// protos).
pub fn ensure_python_module(module: &str, package: &str) {
    let have = |m: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {m}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if have(module) {
        return;
    }
    let installed = Command::new("pip")
        .args(["install", "--quiet", package])
        .status()
        .is_ok_and(|s| s.success())
        || Command::new("pip")
            .args(["install", "--quiet", "--break-system-packages", package])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        installed && have(module),
        "cannot install {package} with pip"
    );
}
