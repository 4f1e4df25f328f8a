//! `aio-trace doctor`: the machine's tracing surface (`checks`) and, with
//! `--overhead`, what tracing costs here (`overhead`).

mod checks;
mod overhead;

use std::process::ExitCode;

use aio_trace::workload::Engine;

use crate::cli::{DEFAULT_SAMPLE, DoctorArgs};

pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let found = checks::run_checks();
    print!("{}", checks::render(&found));
    if args.overhead && checks::ready(&found) {
        println!();
        println!(
            "overhead: {:.0} s of 4 KiB random O_DIRECT reads, traced with BPF statistics on{}",
            args.seconds.as_secs_f64(),
            if args.no_block {
                ", without block attribution"
            } else {
                ""
            }
        );
        // The same reads through both interfaces, each in both tiers, one
        // after the other: what a request costs the tracer on each.
        let mut per_request = Vec::new();
        for (engine, sample_every) in [
            (Engine::Aio, 1),
            (Engine::Aio, DEFAULT_SAMPLE),
            (Engine::IoUring, 1),
            (Engine::IoUring, DEFAULT_SAMPLE),
        ] {
            let name = if sample_every > 1 {
                format!("{} sampled 1/{sample_every}", engine.name())
            } else {
                engine.name().to_owned()
            };
            println!();
            println!("{name}:");
            match overhead::measure(args.seconds, !args.no_block, engine, sample_every).await {
                Ok(cost) => {
                    print!("{}", overhead::render(&cost));
                    per_request.push((name, cost.bpf_ns_per_iocb));
                }
                // AIO is what aio-trace needs; io_uring may be switched off.
                Err(e) if engine == Engine::IoUring => {
                    println!("not measured: {e:#}");
                }
                Err(e) => return Err(e),
            }
        }
        let summary: Vec<String> = per_request
            .iter()
            .map(|(name, ns)| {
                format!(
                    "{name} {}",
                    ns.map_or("-".to_owned(), |ns| format!("{ns:.0} ns"))
                )
            })
            .collect();
        println!();
        println!("BPF time per request: {}", summary.join(", "));
    }
    Ok(if checks::ready(&found) {
        ExitCode::SUCCESS
    } else {
        eprintln!("aio-trace: this machine lacks something aio-trace needs (✗ lines above)");
        ExitCode::FAILURE
    })
}
