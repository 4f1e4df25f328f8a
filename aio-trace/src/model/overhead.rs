//! aio-trace's own overhead, as arithmetic over samples: the run time of its
//! BPF programs per traced iocb, and its CPU share between two samples. The
//! samples are taken outside the model (the `usage` module); nothing here
//! reads the system.

use serde::Serialize;

/// One program's runs and total run time (kernel BPF statistics).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProgramCost {
    pub program: String,
    pub runs: u64,
    pub run_ns: u64,
}

impl ProgramCost {
    pub fn ns_per_run(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.run_ns as f64 / self.runs as f64
        }
    }
}

/// BPF time spent per traced iocb: every program's run time (including runs
/// for other processes' I/O, which a tracer pays for too) over the iocbs traced.
pub fn ns_per_iocb(costs: &[ProgramCost], iocbs: u64) -> Option<f64> {
    (iocbs != 0).then(|| costs.iter().map(|c| c.run_ns).sum::<u64>() as f64 / iocbs as f64)
}

/// Cumulative costs read at one instant: the BPF run time of aio-trace's
/// programs and this process's CPU time, and its resident memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverheadSample {
    /// None when the kernel's BPF statistics are off.
    pub bpf_run_ns: Option<u64>,
    /// Every thread's, the built-in workload's included.
    pub cpu_ns: u64,
    /// The built-in workload thread's CPU time; None without one.
    pub workload_cpu_ns: Option<u64>,
    pub rss_bytes: u64,
}

/// What tracing cost over one interval: the "self-overhead" line of `top`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overhead {
    /// BPF time per traced iocb; None without BPF statistics or iocbs.
    pub bpf_ns_per_iocb: Option<f64>,
    /// BPF time as a share of one CPU; None without BPF statistics.
    pub bpf_cpu_pct: Option<f64>,
    /// The user half's CPU time as a share of one CPU, without the
    /// built-in workload's.
    pub user_cpu_pct: f64,
    /// The built-in workload thread's CPU time as a share of one CPU; None
    /// without one.
    pub workload_cpu_pct: Option<f64>,
    pub rss_bytes: u64,
}

impl Overhead {
    /// The costs between two samples `secs` apart, during which `iocbs` were traced.
    pub fn between(prev: &OverheadSample, now: &OverheadSample, secs: f64, iocbs: u64) -> Self {
        let wall_ns = if secs > 0.0 { secs * 1e9 } else { 1e9 };
        let bpf = match (prev.bpf_run_ns, now.bpf_run_ns) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64),
            _ => None,
        };
        let workload = match (prev.workload_cpu_ns, now.workload_cpu_ns) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        // The workload runs in this process: its share is not the tracer's.
        let user = now
            .cpu_ns
            .saturating_sub(prev.cpu_ns)
            .saturating_sub(workload.unwrap_or(0));
        Self {
            bpf_ns_per_iocb: bpf.filter(|_| iocbs > 0).map(|ns| ns / iocbs as f64),
            bpf_cpu_pct: bpf.map(|ns| ns / wall_ns * 100.0),
            user_cpu_pct: user as f64 / wall_ns * 100.0,
            workload_cpu_pct: workload.map(|ns| ns as f64 / wall_ns * 100.0),
            rss_bytes: now.rss_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_per_iocb_sums_every_program() {
        let costs = [
            ProgramCost {
                program: "sys_enter_io_submit".into(),
                runs: 100,
                run_ns: 50_000,
            },
            ProgramCost {
                program: "block_bio_queue".into(),
                runs: 1_000,
                run_ns: 100_000,
            },
        ];
        assert_eq!(costs[0].ns_per_run(), 500.0);
        assert_eq!(ns_per_iocb(&costs, 1_000), Some(150.0));
        assert_eq!(ns_per_iocb(&costs, 0), None);
    }

    #[test]
    fn overhead_over_an_interval() {
        let prev = OverheadSample {
            bpf_run_ns: Some(1_000_000),
            cpu_ns: 10_000_000,
            workload_cpu_ns: None,
            rss_bytes: 1,
        };
        let now = OverheadSample {
            bpf_run_ns: Some(41_000_000),
            cpu_ns: 30_000_000,
            workload_cpu_ns: None,
            rss_bytes: 42 << 20,
        };
        let o = Overhead::between(&prev, &now, 2.0, 10_000);
        assert_eq!(o.bpf_ns_per_iocb, Some(4_000.0));
        assert_eq!(o.bpf_cpu_pct, Some(2.0));
        assert_eq!(o.user_cpu_pct, 1.0);
        assert_eq!(o.workload_cpu_pct, None);
        assert_eq!(o.rss_bytes, 42 << 20);
        let off = OverheadSample {
            bpf_run_ns: None,
            ..now
        };
        let o = Overhead::between(&prev, &off, 2.0, 0);
        assert_eq!((o.bpf_ns_per_iocb, o.bpf_cpu_pct), (None, None));
    }

    #[test]
    fn the_workload_thread_is_not_the_tracers_cost() {
        let prev = OverheadSample {
            cpu_ns: 1_000_000_000,
            workload_cpu_ns: Some(900_000_000),
            ..OverheadSample::default()
        };
        // Over 2 s the process used 2.1 s of CPU, 1.9 s of it the workload's.
        let now = OverheadSample {
            cpu_ns: 3_100_000_000,
            workload_cpu_ns: Some(2_800_000_000),
            ..OverheadSample::default()
        };
        let o = Overhead::between(&prev, &now, 2.0, 0);
        assert!((o.user_cpu_pct - 10.0).abs() < 1e-9, "{o:?}");
        assert!((o.workload_cpu_pct.unwrap() - 95.0).abs() < 1e-9, "{o:?}");
        // Samples read a moment apart never make the tracer's share negative.
        let racy = OverheadSample {
            cpu_ns: 2_000_000_000,
            ..now
        };
        assert_eq!(Overhead::between(&prev, &racy, 2.0, 0).user_cpu_pct, 0.0);
        // A workload figure in one sample only is no interval.
        let none = OverheadSample {
            workload_cpu_ns: None,
            ..now
        };
        assert_eq!(
            Overhead::between(&prev, &none, 2.0, 0).workload_cpu_pct,
            None
        );
    }
}
