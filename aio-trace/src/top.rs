//! `aio-trace top`: the live table (aio_trace::tui), optionally over the built-in workload.

use std::{process::ExitCode, time::Duration};

use aio_trace::tui::app::{self, TopOptions};

use crate::{cli::TopArgs, snoop::trace_config};

pub async fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let options = TopOptions {
        trace: trace_config(&args.filter)?,
        interval: Duration::from_millis(args.interval),
        workload: args.workload.then(app::default_workload),
        phase: args.phase,
    };
    app::run(options).await?;
    Ok(ExitCode::SUCCESS)
}
