//! `aio-trace bench`: the patch's experiment — scalar against vectored AIO over
//! identical bytes, alternating, with the tracer checking every count.
//!
//! `run` drives the phases and collects what the tracer saw, `aggregate`
//! turns phases into comparisons, `render` prints them.

mod aggregate;
mod phases;
mod render;

use std::process::ExitCode;

use aio_trace::workload::{Mode, WorkloadConfig};
use anyhow::bail;

use crate::{cli::BenchArgs, cmd::common::cancel_on_signal};

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let mut base = WorkloadConfig {
        target: args.target.target(),
        keep: args.target.keep,
        allow_device_writes: args.target.allow_device_writes,
        allow_file_writes: args.target.allow_file_writes,
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
    if let Some(warning) = base.batch_warning() {
        eprintln!("aio-trace: {warning}");
        base.batch = base.iodepth;
    }
    let config = phases::BenchConfig {
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
    let segment_size = config.base.segment_size;
    let (phases, traced) = phases::run(config, cancel_on_signal()).await?;
    let comparisons = aggregate::aggregate(&phases, &traced, segment_size);
    if args.json {
        println!("{}", render::to_json(&comparisons));
    } else if comparisons.len() == 1 {
        print!("{}", render::render_comparison(&comparisons[0]));
    } else {
        print!("{}", render::render_sweep(&comparisons));
    }
    let disagreements: Vec<String> = comparisons
        .iter()
        .flat_map(aggregate::disagreements)
        .collect();
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
