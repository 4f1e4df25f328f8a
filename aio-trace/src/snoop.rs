//! `aio-trace snoop`: one line per iocb until Ctrl-C, SIGTERM or --duration.

use std::{
    io::{self, BufWriter, Write},
    path::Path,
    process::ExitCode,
    time::Duration,
};

use aio_trace::{
    loader::{TraceConfig, Tracer},
    output::{JsonSnoop, TextSnoop, write_json_summary, write_text_summary},
    session::Session,
};
use anyhow::{Context as _, bail};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{FilterArgs, SnoopArgs};

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

pub async fn run(args: SnoopArgs) -> anyhow::Result<ExitCode> {
    let mut config = trace_config(&args.filter)?;
    config.ring_bytes = ring_bytes(args.ring_size)?;
    let (tracer, ring) = Tracer::start(&config)?;
    tracer.warn_skipped();
    eprintln!("Tracing AIO... Hit Ctrl-C to end.");
    let start_ns = tracer.attached_ns;
    let mut session = Session::new(tracer, ring, args.inflight_timeout)
        .context("while watching the ring buffer")?;
    let out = BufWriter::with_capacity(1 << 16, io::stdout());
    let stop = stop_signal(args.duration);

    let (result, mut out): (io::Result<()>, Box<dyn Write>) = if args.json {
        let mut sink = JsonSnoop::new(out);
        let r = session.run(&mut sink, stop).await;
        (r, Box::new(sink.into_inner()))
    } else {
        let mut sink = TextSnoop::new(out, start_ns)?;
        let r = session.run(&mut sink, stop).await;
        (r, Box::new(sink.into_inner()))
    };
    match result {
        // A closed pipe (snoop | head) is the reader saying it has seen enough.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other.context("while writing records")?,
    }

    let (summaries, devices) = session.exit_summaries();
    let losses = session.losses();
    let written = if args.json {
        write_json_summary(&mut out, &summaries, &devices, &losses)
    } else {
        write_text_summary(&mut out, &summaries, &devices, &losses)
    };
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("while writing the summary")?,
    }
    Ok(ExitCode::SUCCESS)
}
