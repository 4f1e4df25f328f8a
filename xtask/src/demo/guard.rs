//! What a demo changes on the machine, undone whatever happens: a temporary
//! directory, a sysctl, child processes. Ctrl-C, SIGTERM and SIGHUP only set
//! a flag, and every child runs in a process group of its own, so an
//! interrupt reaches xtask alone and the demo stops its children in the
//! order cleanup needs (the database after the tracer, the sysctl after the
//! database) before the guards' `Drop` runs.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From here on, Ctrl-C, SIGTERM and SIGHUP are seen by `interrupted`
/// instead of ending xtask.
pub fn catch_interrupts() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler as libc::sighandler_t) };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Starts `cmd` in its own process group, out of reach of the terminal's Ctrl-C.
pub fn spawn(cmd: &mut Command, what: &str) -> Result<Child> {
    use std::os::unix::process::CommandExt as _;
    cmd.process_group(0)
        .spawn()
        .with_context(|| format!("while starting {what}"))
}

pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// Waits for `child`; on an interrupt, sends it SIGTERM, reaps it and fails.
pub fn wait(child: &mut Child, what: &str) -> Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupted() {
            signal(child, libc::SIGTERM);
            let _ = child.wait();
            bail!("interrupted while {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `timeout` for `child` to exit, then kills it. Not
/// interruptible: this is the cleanup an interrupt leads to.
pub fn reap(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    Ok(child.wait()?)
}

/// Runs `cmd` with stdout and stderr in `log`, and returns what it wrote;
/// a failure names `what` and quotes the log's last lines.
pub fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<String> {
    let file = fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let status = wait(&mut spawn(cmd, what)?, what)?;
    let text = fs::read_to_string(log).unwrap_or_default();
    if !status.success() {
        bail!("{what} failed ({status}):\n{}", last_lines(&text, 10));
    }
    Ok(text)
}

pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn create(name: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("xtask demo: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// A sysctl set for the demo's run and given its previous value back on drop.
pub struct Sysctl {
    name: &'static str,
    path: PathBuf,
    previous: String,
}

impl Sysctl {
    /// Sets `name` (dotted, as `sysctl` spells it) to `value`; `None` when it
    /// already has that value, so there is nothing to restore.
    pub fn set(name: &'static str, value: &str) -> Result<Option<Self>> {
        let path = Path::new("/proc/sys").join(name.replace('.', "/"));
        let previous = fs::read_to_string(&path)
            .with_context(|| format!("cannot read {name}"))?
            .trim()
            .to_owned();
        if previous == value {
            return Ok(None);
        }
        fs::write(&path, value).with_context(|| format!("cannot set {name} to {value}"))?;
        println!("xtask demo: {name} {previous} -> {value} for the run (restored afterwards)");
        Ok(Some(Self {
            name,
            path,
            previous,
        }))
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        match fs::write(&self.path, &self.previous) {
            Ok(()) => println!("xtask demo: {} restored to {}", self.name, self.previous),
            Err(e) => eprintln!(
                "xtask demo: cannot restore {} to {}: {e}; do it by hand (sysctl -w {}={})",
                self.name, self.previous, self.name, self.previous
            ),
        }
    }
}
