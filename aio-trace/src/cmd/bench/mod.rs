//! `aio-trace bench`: the patch's experiment — scalar against vectored
//! requests over identical bytes (AIO or io_uring), or AIO against io_uring
//! in one mode, alternating, with the tracer checking every count.
//!
//! `run` drives the phases and collects what the tracer saw, `aggregate`
//! turns phases into comparisons, `render` prints them.

mod aggregate;
mod phases;
mod render;

use std::process::ExitCode;

use aio_trace::workload::{Engine, Mode, WorkloadConfig};
use anyhow::bail;
use phases::Arm;

use crate::{
    cli::{BenchArgs, BenchCompare},
    cmd::common::cancel_on_signal,
};

/// The two sides `args` compare, in the order their ratio divides
/// (second over first).
fn arms(args: &BenchArgs) -> anyhow::Result<[Arm; 2]> {
    match args.compare {
        BenchCompare::Modes => {
            if let Some(mode) = args.mode {
                bail!(
                    "--mode {} picks the mode of --compare engines; --compare modes runs both modes",
                    mode.name()
                );
            }
            let engine = args.engine.unwrap_or_default();
            Ok([Mode::Scalar, Mode::Vectored].map(|mode| Arm { engine, mode }))
        }
        BenchCompare::Engines => {
            if let Some(engine) = args.engine {
                bail!(
                    "--engine {} picks the engine of --compare modes; --compare engines runs both engines",
                    engine.name()
                );
            }
            let mode = args.mode.unwrap_or(Mode::Vectored);
            Ok([Engine::Aio, Engine::IoUring].map(|engine| Arm { engine, mode }))
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let arms = arms(&args)?;
    let mut base = WorkloadConfig {
        target: args.target.target(),
        keep: args.target.keep,
        allow_device_writes: args.target.allow_device_writes,
        allow_file_writes: args.target.allow_file_writes,
        engine: arms[0].engine,
        mode: arms[0].mode,
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
        arms,
        per_mode: args.duration,
        rounds: args.rounds,
    };
    let side = |arm: Arm| format!("{} {}", arm.engine.name(), arm.mode.name());
    eprintln!(
        "aio-trace bench: {} against {}, {:?}, segments {:?} × {} B, iodepth {}, {} rounds of {:.1} s per side",
        side(arms[0]),
        side(arms[1]),
        args.rw,
        args.segments,
        args.shape.segment_size,
        args.shape.iodepth,
        args.rounds,
        args.duration.as_secs_f64() / f64::from(args.rounds)
    );
    let segment_size = config.base.segment_size;
    let (phases, traced) = phases::run(config, cancel_on_signal()).await?;
    let comparisons = aggregate::aggregate(&phases, &traced, segment_size, arms);
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
    let unchecked = aggregate::unchecked(&comparisons);
    if unchecked.is_empty() {
        eprintln!(
            "tracer and workload agree: every request, byte, segment and system call accounted for"
        );
    } else {
        eprintln!(
            "tracer and workload agree: every request, byte and segment accounted for; not checked: {}",
            unchecked.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn bench(args: &[&str]) -> BenchArgs {
        let cli = Cli::try_parse_from(["aio-trace", "bench"].iter().chain(args)).unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("not bench")
        };
        args
    }

    #[test]
    fn the_arms_follow_compare_engine_and_mode() {
        let arm = |engine, mode| Arm { engine, mode };
        assert_eq!(
            arms(&bench(&[])).unwrap(),
            [
                arm(Engine::Aio, Mode::Scalar),
                arm(Engine::Aio, Mode::Vectored)
            ]
        );
        assert_eq!(
            arms(&bench(&["--engine", "io_uring"])).unwrap(),
            [
                arm(Engine::IoUring, Mode::Scalar),
                arm(Engine::IoUring, Mode::Vectored)
            ]
        );
        assert_eq!(
            arms(&bench(&["--compare", "engines"])).unwrap(),
            [
                arm(Engine::Aio, Mode::Vectored),
                arm(Engine::IoUring, Mode::Vectored)
            ]
        );
        assert_eq!(
            arms(&bench(&["--compare", "engines", "--mode", "scalar"])).unwrap(),
            [
                arm(Engine::Aio, Mode::Scalar),
                arm(Engine::IoUring, Mode::Scalar)
            ]
        );
    }

    #[test]
    fn an_option_of_the_other_comparison_is_refused() {
        let e = arms(&bench(&["--mode", "scalar"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--mode scalar picks the mode of --compare engines; --compare modes runs both modes"
        );
        let e = arms(&bench(&["--compare", "engines", "--engine", "aio"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--engine aio picks the engine of --compare modes; --compare engines runs both engines"
        );
    }
}
