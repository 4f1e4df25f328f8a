//! aio-trace's own cost: the run time of its BPF programs per traced iocb.

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
}
