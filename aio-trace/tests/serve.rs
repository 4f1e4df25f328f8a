//! Root tests of `serve` against hostile and careless HTTP clients, all on
//! 127.0.0.1 and bounded in connections and time.

mod common;

use std::{
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::AIO_TRACE;

/// A task name no process has: the tracer then sends no records, so the
/// server's CPU time is its own, whatever else runs on the machine.
const NO_TASK: &str = "no-such-task";

/// A running `aio-trace serve`, stopped with SIGTERM when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
    /// The stderr lines printed before the banner.
    preamble: Vec<String>,
    /// What it printed on stderr after the banner, so far.
    rest: Arc<Mutex<String>>,
}

impl Serve {
    fn start(listen: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(AIO_TRACE)
            .args(["serve", "--listen", listen, "-c", NO_TASK])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut preamble = Vec::new();
        let addr = loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "serve ended before its banner: {preamble:?}"
            );
            if let Some(rest) = line.strip_prefix("Serving AIO metrics on http://") {
                let addr = rest.split('/').next().unwrap();
                break addr.parse::<SocketAddr>().unwrap();
            }
            preamble.push(line);
        };
        // Keep draining stderr so the child never blocks on it.
        let rest = Arc::new(Mutex::new(String::new()));
        let into = rest.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut rest = into.lock().unwrap();
                rest.push_str(&line);
                rest.push('\n');
            }
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        Self {
            child,
            addr,
            preamble,
            rest,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Stops it and checks it exits 0.
    fn stop(mut self) {
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert!(self.child.wait().unwrap().success());
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Sends `request` and reads the whole response (the request asks for the
    /// connection to be closed), within `within`.
    fn exchange(&self, request: &str, within: Duration) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.addr, within)?;
        s.set_read_timeout(Some(within))?;
        s.set_write_timeout(Some(within))?;
        s.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        s.read_to_end(&mut response)?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A child already reaped by stop() has a status; its pid may be reused.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn request(method: &str, path: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// The user + system CPU time the process has used.
fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which may hold spaces, start at state (3).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

/// Opens up to `n` connections, every other one with half a request head
/// sent; connections the kernel's queue has no room for are left out.
fn hold_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|i| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
            if i % 2 == 1 {
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: loc");
            }
            Some(s)
        })
        .collect()
}

/// Holds 150 idle and half-sent connections and checks that a scrape is
/// answered within 2 s and that the server does not spin meanwhile: once with
/// more connections than the server takes at once (64), once with a file
/// descriptor limit that runs out first (accept fails with EMFILE).
#[test]
fn held_connections_neither_lock_out_a_scrape_nor_spin_a_core() {
    for fd_limited in [false, true] {
        let serve = Serve::start("127.0.0.1:0", &[]);
        if fd_limited {
            let open = std::fs::read_dir(format!("/proc/{}/fd", serve.pid()))
                .unwrap()
                .count() as u64;
            let limit = libc::rlimit {
                rlim_cur: open + 20,
                rlim_max: open + 20,
            };
            // SAFETY: prlimit reads `limit` and writes nothing (null old-limit pointer).
            let rc = unsafe {
                libc::prlimit(
                    serve.pid(),
                    libc::RLIMIT_NOFILE,
                    &limit,
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
        }
        let held = hold_connections(serve.addr, 150);
        assert!(held.len() > 64, "only {} connections opened", held.len());
        let cpu_before = cpu_time(serve.pid());
        let since = Instant::now();
        let scrape = serve.exchange(&request("GET", "/metrics"), Duration::from_secs(2));
        let scrape_time = since.elapsed();
        let scrape = scrape.unwrap_or_else(|e| {
            panic!("fd limited: {fd_limited}: no scrape answered within 2 s: {e}")
        });
        assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
        assert!(scrape.contains("aio_trace_lost_total"), "{scrape}");
        assert!(scrape_time < Duration::from_secs(2));
        std::thread::sleep(Duration::from_secs(2).saturating_sub(since.elapsed()));
        let cpu = cpu_time(serve.pid()) - cpu_before;
        assert!(
            cpu < Duration::from_millis(500),
            "fd limited: {fd_limited}: serve used {cpu:?} of CPU in 2 s with {} connections held",
            held.len()
        );
        // One line for the connections; out of descriptors, the light tier's
        // sampling window cannot open either, and says so once.
        let stderr = serve.rest.lock().unwrap().clone();
        let (windows, others): (Vec<&str>, Vec<&str>) = stderr
            .lines()
            .partition(|l| l.starts_with("aio-trace: a sampling window could not open"));
        assert!(
            others.len() <= 1 && windows.len() <= 1,
            "fd limited: {fd_limited}: more than one line of a kind on stderr:\n{stderr}"
        );
        drop(held);
        serve.stop();
    }
}

/// Connections that stay silent, stop mid-head, or idle after a response are
/// closed after --header-timeout.
#[test]
fn silent_connections_are_closed_after_the_header_timeout() {
    let serve = Serve::start("127.0.0.1:0", &["--header-timeout", "1"]);
    let idle = serve.connect();
    let mut half = serve.connect();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: loc")
        .unwrap();
    let mut kept = serve.connect();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let since = Instant::now();
    for (what, mut s) in [("idle", idle), ("half-sent", half), ("kept-alive", kept)] {
        let mut response = Vec::new();
        let read = s.read_to_end(&mut response);
        assert!(
            read.is_ok(),
            "{what} connection still open after {:?}: {read:?}",
            since.elapsed()
        );
        if what == "kept-alive" {
            let response = String::from_utf8_lossy(&response);
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        }
    }
    let elapsed = since.elapsed();
    assert!(
        elapsed > Duration::from_millis(800) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}"
    );
    serve.stop();
}

/// A client that keeps sending requests on one connection, never idle long
/// enough for the header timeout, is closed after --connection-timeout.
#[test]
fn a_busy_connection_is_closed_after_the_connection_timeout() {
    let serve = Serve::start(
        "127.0.0.1:0",
        &["--header-timeout", "1", "--connection-timeout", "2"],
    );
    let mut s = serve.connect();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let since = Instant::now();
    let mut buf = [0u8; 4096];
    let mut responses = 0;
    let closed = loop {
        assert!(
            since.elapsed() < Duration::from_secs(6),
            "still open after {:?} and {responses} responses",
            since.elapsed()
        );
        if s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .is_err()
        {
            break since.elapsed();
        }
        match s.read(&mut buf) {
            Ok(0) => break since.elapsed(),
            Ok(_) => responses += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break since.elapsed(),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        closed > Duration::from_millis(1800) && responses >= 3,
        "closed after {closed:?} and {responses} responses"
    );
    serve.stop();
}

/// GET and HEAD are answered (HEAD without a body); anything else is 405
/// with an Allow header.
#[test]
fn only_get_and_head_are_answered() {
    let serve = Serve::start("127.0.0.1:0", &[]);
    let within = Duration::from_secs(5);
    for method in ["POST", "PUT", "DELETE"] {
        let response = serve
            .exchange(&request(method, "/metrics"), within)
            .unwrap();
        assert!(
            response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{method}: {response}"
        );
        assert!(
            response
                .to_ascii_lowercase()
                .contains("\r\nallow: get, head\r\n"),
            "{method}: {response}"
        );
    }
    let head = serve
        .exchange(&request("HEAD", "/metrics"), within)
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (headers, body) = head.split_once("\r\n\r\n").unwrap();
    assert!(body.is_empty(), "HEAD got a body: {body:?}");
    let length = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap();
    assert!(length.parse::<u64>().unwrap() > 0, "{headers}");
    let get = serve.exchange(&request("GET", "/metrics"), within).unwrap();
    assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{get}");
    assert!(get.contains("aio_trace_lost_total"), "{get}");
    serve.stop();
}

/// Listening beyond loopback prints one warning line; loopback prints none.
#[test]
fn a_non_loopback_listen_address_is_warned_about() {
    let open = Serve::start("0.0.0.0:0", &[]);
    let warning = open
        .preamble
        .iter()
        .filter(|l| l.contains("is not a loopback address"))
        .count();
    assert_eq!(warning, 1, "{:?}", open.preamble);
    open.stop();
    let local = Serve::start("127.0.0.1:0", &[]);
    assert!(
        !local.preamble.iter().any(|l| l.contains("loopback")),
        "{:?}",
        local.preamble
    );
    local.stop();
}
