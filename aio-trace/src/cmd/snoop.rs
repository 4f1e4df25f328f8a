//! `aio-trace snoop`: one line per iocb until Ctrl-C, SIGTERM or --duration.

use std::{
    io::{self, BufWriter, Write},
    process::ExitCode,
};

use aio_trace::{
    loader::Tracer,
    output::{JsonSnoop, TextSnoop, write_json_summary, write_text_summary},
    session::Session,
};
use anyhow::Context as _;

use crate::{
    cli::SnoopArgs,
    cmd::common::{ring_bytes, stop_signal, trace_config},
};

pub async fn run(args: SnoopArgs) -> anyhow::Result<ExitCode> {
    let mut config = trace_config(&args.filter)?;
    config.ring_bytes = ring_bytes(args.ring_size)?;
    let (tracer, ring) = Tracer::start(&config)?;
    tracer.warn_skipped();
    eprintln!("Tracing AIO and io_uring... Hit Ctrl-C to end.");
    let start_ns = tracer.attached_ns;
    let mut session = Session::new(tracer, ring, args.inflight_timeout)
        .context("while watching the ring buffer")?;
    let out = BufWriter::with_capacity(1 << 16, io::stdout());
    let stop = stop_signal(args.duration);

    let (result, mut out): (io::Result<()>, Box<dyn Write>) = if args.json {
        let mut sink = JsonSnoop::new(out);
        let r = session.run(&mut sink, stop).await;
        (r, Box::new(sink.into_inner()))
    } else {
        let mut sink = TextSnoop::new(out, start_ns)?;
        let r = session.run(&mut sink, stop).await;
        (r, Box::new(sink.into_inner()))
    };
    match result {
        // A closed pipe (snoop | head) is the reader saying it has seen enough.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other.context("while writing records")?,
    }

    let (summaries, devices) = session.exit_summaries();
    let losses = session.losses();
    let written = if args.json {
        write_json_summary(&mut out, &summaries, &devices, &losses)
    } else {
        write_text_summary(&mut out, &summaries, &devices, &losses)
    };
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("while writing the summary")?,
    }
    Ok(ExitCode::SUCCESS)
}
