//! Helpers every tracing subcommand shares: the tracer configuration from the
//! filter options, the ring buffer size, and when to stop.
//!
//! Layer: commands (`cmd/`). May import the library (`aio_trace::*`) and `cli`;
//! no command module imports another.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use aio_trace::loader::TraceConfig;
use anyhow::bail;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::FilterArgs;

/// Turns the filter options into a tracer configuration, refusing pids that do not exist.
pub fn trace_config(filter: &FilterArgs) -> anyhow::Result<TraceConfig> {
    for pid in &filter.pids {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            bail!("no process with pid {pid} is running");
        }
    }
    Ok(TraceConfig {
        pids: filter.pids.clone(),
        comm: filter.comm.clone(),
        block: !filter.no_block,
        disk: filter.disk.clone(),
        cgroups: filter.cgroups.clone(),
        ..TraceConfig::default()
    })
}

/// A ring buffer size the kernel takes: a power of two, a multiple of the page size.
pub fn ring_bytes(size: u64) -> anyhow::Result<u32> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    if !size.is_power_of_two() || size < page || size > 1 << 30 {
        bail!("--ring-size must be a power of two between {page} bytes and 1G, not {size}");
    }
    Ok(size as u32)
}

/// Resolves on Ctrl-C, SIGTERM, SIGHUP or after `duration`.
pub async fn stop_signal(duration: Option<Duration>) {
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        // Without signal handlers, Ctrl-C still kills the process; the duration still stops it.
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
        return;
    };
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
        () = timer => {}
    }
}

/// Sets `cancel` on the first Ctrl-C, SIGTERM or SIGHUP.
pub fn cancel_on_signal() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        stop_signal(None).await;
        flag.store(true, Ordering::Relaxed);
    });
    cancel
}
