//! `aio-trace top`: the live table (aio_trace::tui), optionally over the
//! built-in workload, or a recording replayed (`--replay`, no tracer).

use std::{process::ExitCode, time::Duration};

use aio_trace::{
    model::comm_str,
    tui::{
        app::{self, ReplayOptions, TopOptions},
        replay::Recording,
    },
};

use crate::{cli::TopArgs, cmd::common::trace_config};

pub async fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let interval = Duration::from_millis(args.interval);
    if let Some(path) = &args.replay {
        // Read and check it all before the terminal switches screens.
        let mut recording = match Recording::load(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("aio-trace: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let filter = &args.filter;
        let mut described = Vec::new();
        if !filter.pids.is_empty() {
            described.push(format!("pid {:?}", filter.pids));
        }
        if let Some(comm) = &filter.comm {
            described.push(format!("comm {comm}"));
        }
        if !described.is_empty() {
            recording.retain(|r| {
                (filter.pids.is_empty() || filter.pids.contains(&r.pid))
                    && filter
                        .comm
                        .as_deref()
                        .is_none_or(|c| comm_str(&r.comm) == c)
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
        })
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    let options = TopOptions {
        trace: trace_config(&args.filter)?,
        interval,
        workload: args
            .workload
            .then(aio_trace::workload::background::alternating_default),
        phase: args.phase,
    };
    app::run(options).await?;
    Ok(ExitCode::SUCCESS)
}
