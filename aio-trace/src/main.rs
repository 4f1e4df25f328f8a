//! The `aio-trace` command: argument parsing and dispatch only.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// This process's task name (what `-c` filters on), for its threads.
fn process_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map_or_else(|_| "aio-trace".into(), |c| c.trim_end().to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Blocking-pool threads (the workload's) keep the process's name, so
        // `-c aio-trace` finds their I/O.
        .thread_name(process_comm())
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
            Command::Snoop(args) => cmd::snoop::run(args).await,
            Command::Doctor(args) => cmd::doctor::run(args).await,
            Command::Workload(args) => cmd::workload::run(args).await,
            Command::Bench(args) => cmd::bench::run(args).await,
            Command::Top(args) => cmd::top::run(args).await,
            Command::Record(args) => cmd::record::run(args).await,
            Command::Report(args) => cmd::report::run(args),
            Command::Serve(args) => cmd::serve::run(args).await,
            Command::Completions(args) => cmd::completions::run(args),
            Command::Man(args) => cmd::man::run(args),
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
