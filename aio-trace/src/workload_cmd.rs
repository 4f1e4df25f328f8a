//! `aio-trace workload` and `aio-trace bench`: run the built-in workload, stop
//! cleanly on Ctrl-C/SIGTERM with the numbers so far.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use aio_trace::{
    bench::{self, BenchConfig},
    workload::{self, Mode, WorkloadConfig, target},
};
use anyhow::{Context as _, bail};

use crate::{
    cli::{BenchArgs, WorkloadArgs},
    snoop::stop_signal,
};

/// Sets `cancel` on the first Ctrl-C, SIGTERM or SIGHUP.
fn cancel_on_signal() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        stop_signal(None).await;
        flag.store(true, Ordering::Relaxed);
    });
    cancel
}

pub async fn workload(args: WorkloadArgs) -> anyhow::Result<ExitCode> {
    // First: a signal during the (possibly long) file fill must stop, not kill.
    let cancel = cancel_on_signal();
    let config = args.config();
    config.validate()?;
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

pub async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let base = WorkloadConfig {
        target: args.target.target(),
        keep: args.target.keep,
        allow_device_writes: args.target.allow_device_writes,
        mode: Mode::Vectored,
        segments: 1,
        segment_size: args.shape.segment_size,
        rw: args.rw,
        read_pct: args.shape.read_pct,
        iodepth: args.shape.iodepth,
        batch: args.shape.batch,
        reap_min: args.shape.reap_min,
        size: args.target.size,
        seed: args.shape.seed,
        buffered: args.target.buffered,
        ..WorkloadConfig::default()
    };
    let config = BenchConfig {
        base,
        segments: args.segments.clone(),
        per_mode: args.duration,
        rounds: args.rounds,
    };
    eprintln!(
        "aio-trace bench: {:?}, segments {:?} × {} B, iodepth {}, {} rounds of {:.1} s per mode",
        args.rw,
        args.segments,
        args.shape.segment_size,
        args.shape.iodepth,
        args.rounds,
        args.duration.as_secs_f64() / f64::from(args.rounds)
    );
    let comparisons = bench::run(config, cancel_on_signal()).await?;
    if args.json {
        println!("{}", bench::to_json(&comparisons));
    } else if comparisons.len() == 1 {
        print!("{}", bench::render_comparison(&comparisons[0]));
    } else {
        print!("{}", bench::render_sweep(&comparisons));
    }
    let disagreements: Vec<String> = comparisons.iter().flat_map(bench::disagreements).collect();
    if !disagreements.is_empty() {
        for d in &disagreements {
            eprintln!("MISMATCH: {d}");
        }
        bail!(
            "the tracer and the workload disagree ({} mismatches above)",
            disagreements.len()
        );
    }
    eprintln!(
        "tracer and workload agree: every iocb, byte, io_submit and io_getevents call accounted for"
    );
    Ok(ExitCode::SUCCESS)
}
