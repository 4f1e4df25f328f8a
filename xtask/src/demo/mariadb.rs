//! A private MariaDB server: its own data directory, socket and error log in
//! the demo's temporary directory, no network, no grant tables, and none of
//! the machine's option files (`--no-defaults`), so nothing of an installed
//! server is read or touched. It is shut down (SIGTERM, a clean InnoDB
//! shutdown) when dropped.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::guard;

/// How long the server may take to start, and to shut down before it is killed.
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Server {
    child: Child,
    socket: PathBuf,
    error_log: PathBuf,
    stopped: bool,
}

/// InnoDB's data file I/O so far (`Innodb_data_reads`, `Innodb_data_writes`),
/// whatever interface carried it.
#[derive(Clone, Copy, Debug, Default)]
pub struct DataIo {
    pub reads: u64,
    pub writes: u64,
}

impl Server {
    /// Creates the system tables in `dir/data`, then starts the server on them.
    pub fn start(dir: &Path) -> Result<Self> {
        let data = dir.join("data");
        guard::run_logged(
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg("--user=root"),
            &dir.join("install.log"),
            "mariadb-install-db",
        )?;
        let socket = dir.join("sock");
        let error_log = dir.join("err.log");
        let child = guard::spawn(
            Command::new("mariadbd")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
                .arg(format!("--log-error={}", error_log.display()))
                .args([
                    "--user=root",
                    "--skip-networking",
                    "--skip-grant-tables",
                    "--innodb-buffer-pool-size=16M",
                    // Direct I/O so that InnoDB's reads and writes reach the
                    // device through the asynchronous interface, not the page cache.
                    "--innodb-flush-method=O_DIRECT",
                    "--innodb-use-native-aio=1",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "mariadbd",
        )?;
        let mut server = Self {
            child,
            socket,
            error_log,
            stopped: false,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            guard::check_interrupted()?;
            let log = self.error_log();
            if log.contains("ready for connections") && self.socket.exists() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                bail!(
                    "mariadbd exited at start-up ({status}):\n{}",
                    guard::last_lines(&log, 10)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "mariadbd was not ready after {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    guard::last_lines(&log, 10)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(&self.error_log).unwrap_or_default()
    }

    /// Runs `statement` with the client; its output, tab-separated, no headers.
    pub fn sql(&self, statement: &str) -> Result<String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["--user=root", "--batch", "--skip-column-names", "-e"])
            .arg(statement)
            .output()
            .context("while starting the mariadb client")?;
        if !out.status.success() {
            bail!(
                "`{statement}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn data_io(&self) -> Result<DataIo> {
        let rows = self.sql(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_data_reads', 'Innodb_data_writes')",
        )?;
        let mut io = DataIo::default();
        for row in rows.lines() {
            let (name, value) = row.split_once('\t').unwrap_or((row, ""));
            let value = value
                .trim()
                .parse()
                .with_context(|| format!("unexpected status row {row:?}"))?;
            match name {
                "Innodb_data_reads" => io.reads = value,
                "Innodb_data_writes" => io.writes = value,
                _ => {}
            }
        }
        Ok(io)
    }

    /// SIGTERM is mariadbd's normal shutdown: InnoDB flushes and closes its files.
    pub fn shutdown(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        guard::signal(&self.child, libc::SIGTERM);
        let status = guard::reap(&mut self.child, STOP_TIMEOUT)?;
        if !status.success() {
            bail!(
                "mariadbd did not shut down cleanly ({status}):\n{}",
                guard::last_lines(&self.error_log(), 10)
            );
        }
        println!("xtask demo: mariadbd shut down");
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("xtask demo: {e:#}");
        }
    }
}
