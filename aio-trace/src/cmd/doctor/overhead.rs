//! `aio-trace doctor --overhead`: what tracing costs, measured on this machine.
//! The built-in workload runs with the tracer attached and the kernel's BPF
//! statistics on; the run time of every aio-trace program is divided by the
//! iocbs traced.

use std::{fmt::Write as _, sync::atomic::AtomicBool, time::Duration};

use anyhow::{Context as _, Result};
use serde::Serialize;

use aio_trace::{
    loader::{TraceConfig, Tracer},
    model::{ProgramCost, ns_per_iocb},
    reader::Record,
    session::{Session, Sink},
    workload::{self, Engine, Mode, Rw, Stop, WorkloadConfig, target},
};

#[derive(Debug, Serialize)]
pub struct OverheadRun {
    pub iocbs: u64,
    pub iocbs_per_s: f64,
    pub programs: Vec<ProgramCost>,
    pub bpf_ns_per_iocb: Option<f64>,
    /// Programs that were not attached: their cost is missing from the sum.
    pub skipped: Vec<&'static str>,
}

#[derive(Default)]
struct CountIocbs(u64);

impl Sink for CountIocbs {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        if let Record::Iocb(_) = record {
            self.0 += 1;
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs 4 KiB random O_DIRECT reads at iodepth 32 for `duration` on a
/// temporary file through `engine`, traced (with dispatch and block
/// attribution if `block`; the I/O of 1/`sample_every` of the time in full, the
/// others counted), and reports the BPF time per request.
pub async fn measure(
    duration: Duration,
    block: bool,
    engine: Engine,
    sample_every: u64,
) -> Result<OverheadRun> {
    let config = WorkloadConfig {
        engine,
        mode: Mode::Scalar,
        segments: 1,
        segment_size: 4096,
        rw: Rw::RandRead,
        iodepth: 32,
        size: Some(64 << 20),
        stop: Stop::After(duration),
        ..WorkloadConfig::default()
    };
    let file = target::open(&config)?;
    let trace = TraceConfig {
        pids: vec![std::process::id()],
        bpf_stats: true,
        block,
        sample_every,
        ..TraceConfig::default()
    };
    let (tracer, ring) = Tracer::start(&trace)?;
    tracer.warn_skipped();
    // Probes whose tracepoint this kernel lacks cost nothing; the others would.
    let skipped = tracer
        .skipped
        .iter()
        .filter(|(p, _)| aio_trace::tracefs::tracepoint_exists(p.group, p.program))
        .map(|(p, _)| p.program)
        .collect();
    let mut session = Session::new(tracer, ring, Duration::from_secs(30))
        .context("while watching the ring buffer")?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_blocking(move || {
        let result = workload::run(&config, &file, &AtomicBool::new(false));
        let _ = done_tx.send(());
        result
    });
    let mut count = CountIocbs::default();
    session
        .run(&mut count, async {
            let _ = done_rx.await;
        })
        .await
        .context("while reading the trace")?;
    let result = worker.await.context("the workload thread panicked")??;
    let programs = session.tracer.program_costs();
    // Sampling, the records are a window's: every request is the workload's count.
    let iocbs = if sample_every > 1 {
        result.iocbs
    } else {
        count.0
    };
    Ok(OverheadRun {
        iocbs,
        iocbs_per_s: result.iops,
        bpf_ns_per_iocb: ns_per_iocb(&programs, iocbs),
        programs,
        skipped,
    })
}

/// The table `doctor --overhead` prints.
pub fn render(cost: &OverheadRun) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<26} {:>10} {:>12} {:>12}",
        "PROGRAM", "RUNS", "NS/RUN", "TOTAL ms"
    );
    for p in cost.programs.iter().filter(|p| p.runs != 0) {
        let _ = writeln!(
            s,
            "{:<26} {:>10} {:>12.0} {:>12.2}",
            p.program,
            p.runs,
            p.ns_per_run(),
            p.run_ns as f64 / 1e6
        );
    }
    let _ = writeln!(
        s,
        "traced {} requests ({:.0}/s): BPF time per request {}",
        cost.iocbs,
        cost.iocbs_per_s,
        cost.bpf_ns_per_iocb
            .map_or("-".to_owned(), |ns| format!("{ns:.0} ns")),
    );
    if !cost.skipped.is_empty() {
        let _ = writeln!(
            s,
            "incomplete: not attached, so not counted: {}",
            cost.skipped.join(", ")
        );
    }
    s
}
