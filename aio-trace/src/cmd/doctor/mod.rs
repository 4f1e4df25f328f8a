//! `aio-trace doctor`: the machine's tracing surface (`checks`) and, with
//! `--overhead`, what tracing costs here (`overhead`).

mod checks;
mod overhead;

use std::process::ExitCode;

use crate::cli::DoctorArgs;

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
        let cost = overhead::measure(args.seconds, !args.no_block).await?;
        print!("{}", overhead::render(&cost));
    }
    Ok(if checks::ready(&found) {
        ExitCode::SUCCESS
    } else {
        eprintln!("aio-trace: this machine lacks something aio-trace needs (✗ lines above)");
        ExitCode::FAILURE
    })
}
