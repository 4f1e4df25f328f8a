//! The `aio-trace` command: argument parsing and dispatch only.

mod cli;
mod record;
mod report_cmd;
mod serve;
mod snoop;
mod top;
mod workload_cmd;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aio-trace: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Snoop(args) => snoop::run(args).await,
            Command::Doctor => doctor(),
            Command::Workload(args) => workload_cmd::workload(args).await,
            Command::Bench(args) => workload_cmd::bench(args).await,
            Command::Top(args) => top::run(args).await,
            Command::Record(args) => record::run(args).await,
            Command::Report(args) => report_cmd::run(args),
            Command::Serve(args) => serve::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line, the whole context chain, no backtrace.
            eprintln!("aio-trace: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn doctor() -> anyhow::Result<ExitCode> {
    let checks = aio_trace::doctor::run_checks();
    print!("{}", aio_trace::doctor::render(&checks));
    Ok(if aio_trace::doctor::ready(&checks) {
        ExitCode::SUCCESS
    } else {
        eprintln!("aio-trace: this machine lacks something aio-trace needs (✗ lines above)");
        ExitCode::FAILURE
    })
}
