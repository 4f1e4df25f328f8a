//! `aio-trace top`: the live table (aio_trace::tui), optionally over the
//! built-in workload, or a recording replayed (`--replay`, no tracer).

use std::{
    fs::OpenOptions,
    io::{self, IsTerminal as _},
    process::ExitCode,
    time::Duration,
};

use aio_trace::{
    loader::TraceConfig,
    model::{IocbView, comm_str},
    tui::{
        app::{self, Batch, ReplayOptions, TopOptions},
        batch::BatchFormat,
        replay::Recording,
    },
};

use anyhow::bail;

use crate::{
    cli::{BatchFormatArg, TopArgs},
    cmd::common::trace_config,
};

/// The table is drawn on stdout and its keys read from stdin, or from the
/// controlling terminal when stdin is not one (as crossterm does): without
/// them the terminal library fails with a bare errno (ENOTTY, ENXIO).
fn ensure_terminal(instead: &str) -> anyhow::Result<()> {
    let keys = io::stdin().is_terminal()
        || OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok();
    if !io::stdout().is_terminal() {
        bail!("top draws a live table and needs a terminal, but its output is not one: {instead}");
    }
    if !keys {
        bail!(
            "top draws a live table and needs a terminal to read keys from, and this process has none: {instead}"
        );
    }
    Ok(())
}

pub async fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let interval = Duration::from_millis(args.interval);
    let batch = args.batch.then_some(Batch {
        format: match args.format {
            BatchFormatArg::Json => BatchFormat::Json,
            BatchFormatArg::Text => BatchFormat::Text,
        },
        count: args.count,
    });
    if let Some(path) = &args.replay {
        // Read and check it all before the terminal switches screens.
        let mut recording = match Recording::load(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("aio-trace: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        if batch.is_none() {
            ensure_terminal(&format!(
                "for its numbers as text, run aio-trace report {} (or top --batch)",
                path.display()
            ))?;
        }
        let filter = &args.filter;
        let mut described = Vec::new();
        if !filter.pids.is_empty() {
            described.push(format!("pid {:?}", filter.pids));
        }
        if let Some(comm) = &filter.comm {
            described.push(format!("comm {comm}"));
        }
        // The disk is resolved on this machine: its number is the recording's
        // only when the recording was taken here.
        if let Some(disk) = &filter.disk {
            described.push(format!("disk {}", disk.label()));
        }
        if !described.is_empty() {
            recording.retain(|r| {
                (filter.pids.is_empty() || filter.pids.contains(&r.pid))
                    && filter
                        .comm
                        .as_deref()
                        .is_none_or(|c| comm_str(&r.comm) == c)
                    && filter
                        .disk
                        .as_ref()
                        .is_none_or(|d| r.device().is_some_and(|dev| d.contains(dev.0)))
            });
        }
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        app::run_replay(ReplayOptions {
            recording,
            name,
            filter: (!described.is_empty()).then(|| described.join(", ")),
            interval,
            batch,
        })
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    if batch.is_none() {
        ensure_terminal(
            "for the table as JSON lines, run aio-trace top --batch; for one line per iocb, aio-trace snoop; to a file, aio-trace record -o FILE",
        )?;
    }
    let options = TopOptions {
        trace: TraceConfig {
            sample_every: args.sample.every(),
            budget: args.sample.budget,
            ..trace_config(&args.filter)?
        },
        interval,
        workload: args
            .workload
            .then(aio_trace::workload::background::alternating_default),
        phase: args.phase,
        batch,
    };
    app::run(options).await?;
    Ok(ExitCode::SUCCESS)
}
