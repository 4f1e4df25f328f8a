//! What a workload run did, as the workload itself counted it.

use std::{fmt::Write as _, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::config::{Engine, Mode, Rw, WorkloadConfig};

/// Latency percentiles in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyUs {
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyUs {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1e3;
        Self {
            min: us(h.min()),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// The system calls a run made, by engine: each engine's JSON keeps the
/// kernel's own names for them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Calls {
    Aio {
        io_submit_calls: u64,
        io_getevents_calls: u64,
        events_per_getevents: f64,
    },
    IoUring {
        /// Every io_uring_enter: the submitting ones plus the waiting ones
        /// (the engine never does both in one call).
        io_uring_enter_calls: u64,
        /// io_uring_enter calls that submitted SQEs.
        enter_submit_calls: u64,
        /// io_uring_enter calls that waited for completions (GETEVENTS),
        /// made only when the CQ ring held fewer than --reap-min.
        enter_wait_calls: u64,
        /// Times completions were taken from the CQ ring, waited for or not.
        cq_reaps: u64,
        completions_per_reap: f64,
    },
}

impl Calls {
    fn new(engine: Engine) -> Self {
        match engine {
            Engine::Aio => Self::Aio {
                io_submit_calls: 0,
                io_getevents_calls: 0,
                events_per_getevents: 0.0,
            },
            Engine::IoUring => Self::IoUring {
                io_uring_enter_calls: 0,
                enter_submit_calls: 0,
                enter_wait_calls: 0,
                cq_reaps: 0,
                completions_per_reap: 0.0,
            },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub engine: Engine,
    pub mode: Mode,
    pub rw: Rw,
    pub segments: u32,
    pub segment_size: u64,
    pub iodepth: u32,
    pub batch: u32,
    pub reap_min: u32,
    /// The AIO context the run used (what the tracer keys its records by);
    /// none for io_uring, whose ring the tracer keys by a kernel address.
    pub ctx: Option<u64>,
    /// The key of the tracer's counters of the run's calls: the AIO
    /// context, or the ring's fd marked `CTX_URING_FD`.
    #[serde(skip)]
    pub counters_key: Option<u64>,
    pub elapsed_s: f64,
    /// Ranges of segments × segment size completed.
    pub units: u64,
    /// Requests completed: iocbs (AIO) or SQEs (io_uring).
    pub iocbs: u64,
    pub bytes: u64,
    pub mb_per_s: f64,
    pub iops: f64,
    #[serde(flatten)]
    pub calls: Calls,
    pub latency_us: LatencyUs,
    /// Submit → reap per request, in ns, for merging across rounds.
    #[serde(skip)]
    pub latency: Option<Histogram<u64>>,
}

impl WorkloadResult {
    pub fn new(config: &WorkloadConfig, ctx: Option<u64>, counters_key: Option<u64>) -> Self {
        Self {
            engine: config.engine,
            mode: config.mode,
            rw: config.rw,
            segments: config.segments,
            segment_size: config.segment_size,
            iodepth: config.iodepth,
            batch: config.batch,
            reap_min: config.reap_min,
            ctx,
            counters_key,
            elapsed_s: 0.0,
            units: 0,
            iocbs: 0,
            bytes: 0,
            mb_per_s: 0.0,
            iops: 0.0,
            calls: Calls::new(config.engine),
            latency_us: LatencyUs::default(),
            latency: None,
        }
    }

    /// System calls that submitted requests: io_submit, or io_uring_enter
    /// with SQEs to submit.
    pub fn submit_calls(&self) -> u64 {
        match self.calls {
            Calls::Aio {
                io_submit_calls, ..
            } => io_submit_calls,
            Calls::IoUring {
                enter_submit_calls, ..
            } => enter_submit_calls,
        }
    }

    /// System calls that reaped or waited: io_getevents, or io_uring_enter
    /// waiting for completions.
    pub fn reap_calls(&self) -> u64 {
        match self.calls {
            Calls::Aio {
                io_getevents_calls, ..
            } => io_getevents_calls,
            Calls::IoUring {
                enter_wait_calls, ..
            } => enter_wait_calls,
        }
    }

    /// Times completions were taken: io_getevents calls, or CQ reaps.
    pub fn reaps(&self) -> u64 {
        match self.calls {
            Calls::Aio {
                io_getevents_calls, ..
            } => io_getevents_calls,
            Calls::IoUring { cq_reaps, .. } => cq_reaps,
        }
    }

    /// Segments the completed requests carried.
    pub fn segments_moved(&self) -> u64 {
        match self.mode {
            Mode::Vectored => self.iocbs * u64::from(self.segments),
            Mode::Scalar => self.iocbs,
        }
    }

    pub(super) fn count_submit_call(&mut self) {
        match &mut self.calls {
            Calls::Aio {
                io_submit_calls, ..
            } => *io_submit_calls += 1,
            Calls::IoUring {
                io_uring_enter_calls,
                enter_submit_calls,
                ..
            } => {
                *io_uring_enter_calls += 1;
                *enter_submit_calls += 1;
            }
        }
    }

    /// One reap: `waited` when it made a system call (always, for AIO).
    pub(super) fn count_reap(&mut self, waited: bool) {
        match &mut self.calls {
            Calls::Aio {
                io_getevents_calls, ..
            } => *io_getevents_calls += 1,
            Calls::IoUring {
                io_uring_enter_calls,
                enter_wait_calls,
                cq_reaps,
                ..
            } => {
                *cq_reaps += 1;
                if waited {
                    *io_uring_enter_calls += 1;
                    *enter_wait_calls += 1;
                }
            }
        }
    }

    /// Derives the rates; `units` counts ranges started, trimmed to those completed.
    pub fn finish(&mut self, elapsed: Duration, latency: &Histogram<u64>) {
        let secs = elapsed.as_secs_f64().max(1e-9);
        self.elapsed_s = secs;
        let per_unit = match self.mode {
            Mode::Vectored => 1,
            Mode::Scalar => u64::from(self.segments),
        };
        self.units = self.iocbs / per_unit;
        self.mb_per_s = self.bytes as f64 / 1e6 / secs;
        self.iops = self.iocbs as f64 / secs;
        let per = |n: u64| {
            if n == 0 {
                0.0
            } else {
                self.iocbs as f64 / n as f64
            }
        };
        match &mut self.calls {
            Calls::Aio {
                io_getevents_calls,
                events_per_getevents,
                ..
            } => *events_per_getevents = per(*io_getevents_calls),
            Calls::IoUring {
                cq_reaps,
                completions_per_reap,
                ..
            } => *completions_per_reap = per(*cq_reaps),
        }
        self.latency_us = LatencyUs::from_histogram(latency);
        self.latency = Some(latency.clone());
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let (request, vectored_ops) = match self.engine {
            Engine::Aio => ("iocb", "PREADV/PWRITEV"),
            Engine::IoUring => ("request", "READV/WRITEV"),
        };
        let vectored = self.mode == Mode::Vectored;
        let _ = writeln!(
            s,
            "{} {} {:?}: {} × {} B per {request}{}, iodepth {}, batch {}, reap-min {}",
            self.engine.name(),
            self.mode.name(),
            self.rw,
            if vectored { self.segments } else { 1 },
            self.segment_size,
            if vectored {
                format!(" (one {vectored_ops})")
            } else {
                String::new()
            },
            self.iodepth,
            self.batch,
            self.reap_min
        );
        let mut rows: Vec<(&str, String)> = vec![
            ("elapsed", format!("{:.2} s", self.elapsed_s)),
            (
                if self.engine == Engine::Aio {
                    "iocbs"
                } else {
                    "requests"
                },
                self.iocbs.to_string(),
            ),
            ("bytes", self.bytes.to_string()),
            ("MB/s", format!("{:.1}", self.mb_per_s)),
            ("IOPS", format!("{:.0}", self.iops)),
        ];
        match self.calls {
            Calls::Aio {
                io_submit_calls,
                io_getevents_calls,
                events_per_getevents,
            } => rows.extend([
                ("io_submit calls", io_submit_calls.to_string()),
                ("io_getevents calls", io_getevents_calls.to_string()),
                ("events per getevents", format!("{events_per_getevents:.2}")),
            ]),
            Calls::IoUring {
                io_uring_enter_calls,
                enter_submit_calls,
                enter_wait_calls,
                cq_reaps,
                completions_per_reap,
            } => rows.extend([
                ("io_uring_enter calls", io_uring_enter_calls.to_string()),
                ("  submitting", enter_submit_calls.to_string()),
                ("  waiting", enter_wait_calls.to_string()),
                ("CQ reaps", cq_reaps.to_string()),
                ("completions per reap", format!("{completions_per_reap:.2}")),
            ]),
        }
        rows.push((
            "latency µs",
            format!(
                "min {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                self.latency_us.min,
                self.latency_us.p50,
                self.latency_us.p90,
                self.latency_us.p99,
                self.latency_us.p999,
                self.latency_us.max
            ),
        ));
        for (name, value) in rows {
            let _ = writeln!(s, "  {name:<22} {value}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_percentiles_follow_from_the_counts() {
        let config = WorkloadConfig {
            mode: Mode::Scalar,
            segments: 8,
            ..WorkloadConfig::default()
        };
        let mut r = WorkloadResult::new(&config, Some(7), Some(7));
        r.iocbs = 800;
        r.bytes = 800 * 4096;
        for _ in 0..200 {
            r.count_reap(true);
        }
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).unwrap();
        }
        r.finish(Duration::from_secs(2), &h);
        assert_eq!(r.units, 100, "8 scalar iocbs per unit");
        assert!((r.iops - 400.0).abs() < 1e-9);
        assert!((r.mb_per_s - 800.0 * 4096.0 / 1e6 / 2.0).abs() < 1e-9);
        assert_eq!(
            r.calls,
            Calls::Aio {
                io_submit_calls: 0,
                io_getevents_calls: 200,
                events_per_getevents: 4.0
            }
        );
        assert!((r.latency_us.p50 - 500.0).abs() < 1.0, "{:?}", r.latency_us);
        assert!((r.latency_us.max - 1000.0).abs() < 1.0);
        assert!(r.render().contains("IOPS"));
    }

    #[test]
    fn io_uring_counts_enter_calls_and_reaps_that_needed_none() {
        let config = WorkloadConfig {
            engine: Engine::IoUring,
            ..WorkloadConfig::default()
        };
        let mut r = WorkloadResult::new(&config, None, None);
        r.iocbs = 100;
        for _ in 0..10 {
            r.count_submit_call();
        }
        for waited in [true, false, false, true] {
            r.count_reap(waited);
        }
        r.finish(Duration::from_secs(1), &Histogram::new(3).unwrap());
        assert_eq!((r.submit_calls(), r.reap_calls(), r.reaps()), (10, 2, 4));
        assert_eq!(r.segments_moved(), 800, "8 segments per vectored request");
        assert_eq!(
            r.calls,
            Calls::IoUring {
                io_uring_enter_calls: 12,
                enter_submit_calls: 10,
                enter_wait_calls: 2,
                cq_reaps: 4,
                completions_per_reap: 25.0
            }
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["engine"], "io_uring");
        assert_eq!(json["io_uring_enter_calls"], 12);
        assert_eq!(json["ctx"], serde_json::Value::Null);
        assert!(json.get("io_submit_calls").is_none(), "{json}");
        let table = r.render();
        assert!(
            table.starts_with(
                "io_uring vectored RandRead: 8 × 4096 B per request (one READV/WRITEV)"
            ),
            "{table}"
        );
        assert!(table.contains("io_uring_enter calls   12\n"), "{table}");
    }

    #[test]
    fn aio_json_keeps_its_syscall_names() {
        let mut r = WorkloadResult::new(&WorkloadConfig::default(), Some(5), Some(5));
        r.count_submit_call();
        r.count_reap(true);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["engine"], "aio");
        assert_eq!(json["ctx"], 5);
        assert_eq!(json["io_submit_calls"], 1);
        assert_eq!(json["io_getevents_calls"], 1);
        assert!(json.get("events_per_getevents").is_some(), "{json}");
    }

    #[test]
    fn empty_run_has_zero_latency_not_garbage() {
        let h = Histogram::<u64>::new(3).unwrap();
        assert_eq!(LatencyUs::from_histogram(&h), LatencyUs::default());
    }
}
