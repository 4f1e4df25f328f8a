//! `aio-trace report FILE`: bad input is one line naming the file and line, exit 2.
//! Stdout holds only the report; warnings go to stderr.

use std::{
    io::{self, Write},
    process::ExitCode,
};

use aio_trace::{
    blockdev::DevNames,
    export::hostname,
    report::{By, ReportError, Stats, read_file, render_text},
};
use anyhow::Context as _;

use crate::cli::{ReportArgs, ReportBy};

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let by = match args.by {
        ReportBy::Pid => By::Pid,
        ReportBy::Ctx => By::Ctx,
        ReportBy::Op => By::Op,
        ReportBy::File => By::File,
        ReportBy::Api => By::Api,
        ReportBy::Dev => By::Dev,
        ReportBy::Cgroup => By::Cgroup,
    };
    let mut stats = Stats::new(by);
    stats.name_devices(DevNames::system(), &hostname());
    let info = match read_file(&args.file, args.skip_bad, &mut |row| stats.add(row)) {
        Ok(info) => info,
        Err(e @ ReportError::Torn { .. }) => {
            // Every line before the torn one was read: --skip-bad reports them.
            eprintln!("aio-trace: {e}: rerun with --skip-bad to read the rest");
            return Ok(ExitCode::from(2));
        }
        Err(e) => {
            eprintln!("aio-trace: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let name = args.file.display().to_string();
    for bad in &info.skipped {
        eprintln!("aio-trace: skipping {name}:{}: {}", bad.line, bad.message);
    }
    if !info.complete {
        let why = if info.format == "jsonl" {
            "no closing loss line"
        } else {
            "its last line is incomplete"
        };
        eprintln!("aio-trace: warning: {name}: {why}: the recording did not stop cleanly");
    }
    let report = stats.report(&name, info);
    let mut out = io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer(&mut out, &report)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
    } else {
        out.write_all(render_text(&report).as_bytes())
    };
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("while writing the report")?,
    }
    Ok(ExitCode::SUCCESS)
}
