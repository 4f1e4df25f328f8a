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
            Command::Snoop(args) => snoop::run(args).await,
            Command::Doctor(args) => doctor(args).await,
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

async fn doctor(args: cli::DoctorArgs) -> anyhow::Result<ExitCode> {
    let checks = aio_trace::doctor::run_checks();
    print!("{}", aio_trace::doctor::render(&checks));
    if args.self_cost && aio_trace::doctor::ready(&checks) {
        println!();
        println!(
            "self-overhead: {:.0} s of 4 KiB random O_DIRECT reads, traced with BPF statistics on{}",
            args.seconds.as_secs_f64(),
            if args.no_block {
                ", without block attribution"
            } else {
                ""
            }
        );
        let cost = aio_trace::selfcost::measure(args.seconds, !args.no_block).await?;
        print!("{}", aio_trace::selfcost::render(&cost));
    }
    Ok(if aio_trace::doctor::ready(&checks) {
        ExitCode::SUCCESS
    } else {
        eprintln!("aio-trace: this machine lacks something aio-trace needs (✗ lines above)");
        ExitCode::FAILURE
    })
}
