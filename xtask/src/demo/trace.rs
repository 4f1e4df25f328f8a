//! aio-trace around the load: `record -p PID -o FILE` while it runs, then
//! `report FILE` over the recording.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use super::guard;

pub struct Recording {
    child: Child,
    /// The rest of record's stderr, drained so it never blocks on the pipe;
    /// its closing lines carry the loss counters.
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl Recording {
    /// Starts `record` filtered on `pid` and returns once its probes are attached.
    pub fn start(binary: &Path, pid: u32, output: &Path) -> Result<Self> {
        let mut child = guard::spawn(
            Command::new(binary)
                .args(["record", "--force", "-p", &pid.to_string(), "-o"])
                .arg(output)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            "aio-trace record",
        )?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let mut before = Vec::new();
        loop {
            match lines.next().transpose()? {
                // Its banner comes once every probe is attached.
                Some(line) if line.starts_with("Recording") => break,
                Some(line) => before.push(line),
                None => {
                    let _ = child.wait();
                    bail!("aio-trace record did not start:\n{}", before.join("\n"));
                }
            }
        }
        for line in &before {
            eprintln!("{line}");
        }
        let stderr = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        Ok(Self {
            child,
            stderr: Some(stderr),
        })
    }

    /// Stops the recording as Ctrl-C would, and returns its closing stderr lines.
    pub fn stop(mut self) -> Result<Vec<String>> {
        self.end()
    }

    fn end(&mut self) -> Result<Vec<String>> {
        let Some(stderr) = self.stderr.take() else {
            return Ok(Vec::new());
        };
        guard::signal(&self.child, libc::SIGINT);
        let status = guard::reap(&mut self.child, Duration::from_secs(60))?;
        let lines = stderr.join().unwrap_or_default();
        if !status.success() {
            bail!("aio-trace record failed ({status}):\n{}", lines.join("\n"));
        }
        Ok(lines)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            eprintln!("xtask demo: {e:#}");
        }
    }
}

/// `aio-trace report FILE`, then `--by api` when this build of report has it.
pub fn report(binary: &Path, recording: &Path) -> Result<()> {
    let mut runs: Vec<Vec<&str>> = vec![vec![]];
    if report_groups_by(binary, "api")? {
        runs.push(vec!["--by", "api"]);
    }
    for extra in runs {
        let mut cmd = Command::new(binary);
        cmd.arg("report").arg(recording).args(&extra);
        println!(
            "xtask demo: aio-trace report {}{}{}",
            recording.display(),
            if extra.is_empty() { "" } else { " " },
            extra.join(" ")
        );
        crate::check(&mut cmd, "aio-trace report")?;
    }
    Ok(())
}

/// Whether `report --by` accepts `key`, from its help's list of possible values.
fn report_groups_by(binary: &Path, key: &str) -> Result<bool> {
    let out = Command::new(binary)
        .args(["report", "--help"])
        .output()
        .context("while asking aio-trace report for its options")?;
    Ok(possible_values(&String::from_utf8_lossy(&out.stdout), "--by").contains(&key.to_owned()))
}

/// The `[possible values: a, b]` clap lists in `help` for `option`.
fn possible_values(help: &str, option: &str) -> Vec<String> {
    let mut in_option = false;
    for line in help.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            in_option = trimmed.split([' ', ',', '=', '<']).any(|w| w == option);
        }
        if in_option && let Some((_, values)) = line.split_once("[possible values: ") {
            return values
                .trim_end_matches(']')
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect();
        }
    }
    Vec::new()
}

/// Where a demo's recording is kept: under `target/demo`, past the temporary directory.
pub fn recording_path(root: &Path, name: &str) -> Result<PathBuf> {
    let dir = root.join("target/demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(format!("{name}.jsonl")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_possible_values_of_one_option() {
        let help = "\
Options:
      --by <BY>
          What the group table is keyed by

          [default: pid]
          [possible values: pid, ctx, op, file]

  -j, --json
          One JSON object instead of the tables
      --format <FORMAT>  [possible values: text, json]
";
        assert_eq!(possible_values(help, "--by"), ["pid", "ctx", "op", "file"]);
        assert_eq!(possible_values(help, "--format"), ["text", "json"]);
        assert!(possible_values(help, "--json").is_empty());
        let one_line = "Options:\n      --by <BY>   What the group table is keyed by [default: pid] [possible values: pid, ctx, op, file]\n  -j, --json      One JSON object instead of the tables\n";
        assert_eq!(
            possible_values(one_line, "--by"),
            ["pid", "ctx", "op", "file"]
        );
    }
}
