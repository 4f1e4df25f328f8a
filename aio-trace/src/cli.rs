//! Command-line definitions.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aio-trace",
    version,
    about = "Trace Linux AIO (io_submit/io_getevents) per iocb with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one line per completed iocb (biosnoop style), or JSON with --json.
    Snoop(SnoopArgs),
    /// Show what this machine allows and what aio-trace will use.
    Doctor,
}

/// Which processes to trace.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Trace only this process (repeatable).
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Trace only tasks with this exact name (at most 15 bytes).
    #[arg(short = 'c', long = "comm", value_name = "COMM")]
    pub comm: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnoopArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Stop after this many seconds.
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// One JSON object per line: iocb records, then summary and lost lines at exit.
    #[arg(long)]
    pub json: bool,
    /// Give up on an iocb not reaped after this many seconds (counted as aged_out).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_duration)]
    pub inflight_timeout: Duration,
}

/// A positive number of seconds (fractions allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("the duration must be more than 0 seconds, not {s}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_must_be_positive_numbers() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("inf").is_err());
    }

    #[test]
    fn snoop_takes_repeated_pids() {
        let cli = Cli::try_parse_from([
            "aio-trace",
            "snoop",
            "-p",
            "1",
            "-p",
            "2",
            "-c",
            "fio",
            "--json",
        ])
        .unwrap();
        let Command::Snoop(args) = cli.command else {
            panic!("not snoop")
        };
        assert_eq!(args.filter.pids, [1, 2]);
        assert_eq!(args.filter.comm.as_deref(), Some("fio"));
        assert!(args.json);
    }
}
