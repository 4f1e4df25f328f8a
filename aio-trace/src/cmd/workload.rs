//! `aio-trace workload`: run the built-in workload, stop cleanly on
//! Ctrl-C/SIGTERM with the numbers so far.

use std::process::ExitCode;

use aio_trace::workload::{self, target};
use anyhow::Context as _;

use crate::{cli::WorkloadArgs, cmd::common::cancel_on_signal};

pub async fn run(args: WorkloadArgs) -> anyhow::Result<ExitCode> {
    // First: a signal during the (possibly long) file fill must stop, not kill.
    let cancel = cancel_on_signal();
    let mut config = args.config();
    config.validate()?;
    if let Some(warning) = config.batch_warning() {
        eprintln!("aio-trace: {warning}");
        config.batch = config.iodepth;
    }
    let target = target::open(&config)?;
    config.validate_for_target(target.block, target.size)?;
    let result = tokio::task::spawn_blocking(move || workload::run(&config, &target, &cancel))
        .await
        .context("the workload thread panicked")??;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        print!("{}", result.render());
    }
    Ok(ExitCode::SUCCESS)
}
