//! `aio-trace record -o FILE`: every iocb to a file, until Ctrl-C, SIGTERM,
//! SIGHUP, --duration or --max-records; then the closing lines.

use std::{fs::File, io, process::ExitCode, sync::Arc};

use aio_trace::{
    blockdev::DevNames,
    export::{
        Closing, Exporter, Filters, Format, Header,
        csv::CsvWriter,
        file::{self, LineFile},
        jsonl::JsonlWriter,
        perfetto::{ChromeJsonWriter, Clocks, TraceWriter},
    },
    loader::Tracer,
    reader::Record,
    session::{Session, Sink},
};
use anyhow::{Context as _, anyhow};
use tokio::sync::Notify;

use aio_trace::workload::background::{self, Background};

use crate::{
    cli::{RecordArgs, RecordFormat},
    cmd::common::{stop_signal, trace_config},
};

/// Passes records on until `max` iocb and syscall records, then asks to stop.
struct Limit<E> {
    inner: E,
    written: u64,
    max: u64,
    reached: Arc<Notify>,
}

impl<E: Sink> Sink for Limit<E> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        let counted = matches!(record, Record::Iocb(_) | Record::Syscall(_));
        if counted {
            if self.written == self.max {
                return Ok(());
            }
            self.written += 1;
        }
        self.inner.record(record)?;
        if counted && self.written == self.max {
            self.reached.notify_one();
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub async fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        Some(RecordFormat::Jsonl) => Format::Jsonl,
        Some(RecordFormat::Csv) => Format::Csv,
        Some(RecordFormat::Perfetto) => Format::Perfetto,
        Some(RecordFormat::ChromeJson) => Format::ChromeJson,
        None => Format::from_path(&args.output).ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {} from its name: add --format jsonl, csv, perfetto or chrome-json",
                args.output.display()
            )
        })?,
    };
    let config = trace_config(&args.filter)?;
    // What can be refused without opening is refused before the tracer loads.
    file::check_output(&args.output, args.force)?;
    // Load the tracer first: a user without privileges gets that error, and no empty file.
    let (tracer, ring) = Tracer::start(&config)?;
    tracer.warn_skipped();
    let file = file::create_output(&args.output, args.force)?;
    let file = match format {
        Format::Perfetto => LineFile::whole_writes(file),
        _ => LineFile::new(file),
    };
    let header = Header::here(
        Filters {
            pids: config.pids.clone(),
            comm: config.comm.clone(),
            cgroups: config.cgroups.iter().map(|c| c.path.clone()).collect(),
        },
        tracer.attached_ns,
    );
    let session = Session::new(tracer, ring, args.inflight_timeout)
        .context("while watching the ring buffer")?;
    // Started once the probes are attached, so its first iocb is recorded.
    let workload = if args.workload {
        Some(Background::spawn(
            background::alternating_default(),
            args.phase,
        )?)
    } else {
        None
    };
    eprintln!(
        "Recording AIO and io_uring to {}... Hit Ctrl-C to end.",
        args.output.display()
    );
    let what = format!("while writing {}", args.output.display());
    let (written, losses) = match format {
        Format::Jsonl => {
            let sink = JsonlWriter::new(file, &header).context(what.clone())?;
            record(session, sink, &args, &what).await?
        }
        Format::Csv => record(session, CsvWriter::new(file)?, &args, &what).await?,
        Format::Perfetto => {
            let sink = TraceWriter::new(file, Clocks::now(), DevNames::system());
            record(session, sink, &args, &what).await?
        }
        Format::ChromeJson => record(session, ChromeJsonWriter::new(file), &args, &what).await?,
    };
    if let Some(workload) = workload {
        workload.stop()?;
    }
    eprintln!(
        "aio-trace: recorded {written} records to {}",
        args.output.display()
    );
    eprintln!("{losses}");
    Ok(ExitCode::SUCCESS)
}

/// Runs the session into `exporter`, then writes the closing lines.
async fn record<E>(
    mut session: Session,
    exporter: E,
    args: &RecordArgs,
    what: &str,
) -> anyhow::Result<(u64, aio_trace::model::LossCounts)>
where
    E: Exporter + IntoFile,
{
    let reached = Arc::new(Notify::new());
    let mut sink = Limit {
        inner: exporter,
        written: 0,
        max: args.max_records.unwrap_or(u64::MAX),
        reached: reached.clone(),
    };
    let stop = async {
        tokio::select! {
            () = stop_signal(args.duration) => {}
            () = reached.notified() => {}
        }
    };
    session
        .run(&mut sink, stop)
        .await
        .with_context(|| what.to_owned())?;
    let (summaries, devices) = session.exit_summaries();
    let losses = session.losses();
    sink.inner
        .finish(&Closing {
            summaries: &summaries,
            devices: &devices,
            losses: &losses,
        })
        .with_context(|| what.to_owned())?;
    sink.inner
        .into_file()?
        .finish()
        .with_context(|| what.to_owned())?;
    Ok((sink.written, losses))
}

/// The file under an exporter, to write its last bytes.
trait IntoFile {
    fn into_file(self) -> io::Result<LineFile<File>>;
}

impl IntoFile for JsonlWriter<LineFile<File>> {
    fn into_file(self) -> io::Result<LineFile<File>> {
        Ok(self.into_inner())
    }
}

impl IntoFile for CsvWriter<LineFile<File>> {
    fn into_file(self) -> io::Result<LineFile<File>> {
        self.into_inner()
    }
}

impl IntoFile for TraceWriter<LineFile<File>> {
    fn into_file(self) -> io::Result<LineFile<File>> {
        Ok(self.into_inner())
    }
}

impl IntoFile for ChromeJsonWriter<LineFile<File>> {
    fn into_file(self) -> io::Result<LineFile<File>> {
        Ok(self.into_inner())
    }
}
