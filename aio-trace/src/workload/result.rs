//! What a workload run did, as the workload itself counted it.

use std::{fmt::Write as _, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::config::{Mode, Rw, WorkloadConfig};

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

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub mode: Mode,
    pub rw: Rw,
    pub segments: u32,
    pub segment_size: u64,
    pub iodepth: u32,
    pub batch: u32,
    pub reap_min: u32,
    /// The AIO context the run used (what the tracer keys its records by).
    pub ctx: u64,
    pub elapsed_s: f64,
    /// Ranges of segments × segment size completed.
    pub units: u64,
    pub iocbs: u64,
    pub bytes: u64,
    pub mb_per_s: f64,
    pub iops: f64,
    pub io_submit_calls: u64,
    pub io_getevents_calls: u64,
    pub events_per_getevents: f64,
    pub latency_us: LatencyUs,
    /// Submit → reap per iocb, in ns, for merging across rounds.
    #[serde(skip)]
    pub latency: Option<Histogram<u64>>,
}

impl WorkloadResult {
    pub fn new(config: &WorkloadConfig, ctx: u64) -> Self {
        Self {
            mode: config.mode,
            rw: config.rw,
            segments: config.segments,
            segment_size: config.segment_size,
            iodepth: config.iodepth,
            batch: config.batch,
            reap_min: config.reap_min,
            ctx,
            elapsed_s: 0.0,
            units: 0,
            iocbs: 0,
            bytes: 0,
            mb_per_s: 0.0,
            iops: 0.0,
            io_submit_calls: 0,
            io_getevents_calls: 0,
            events_per_getevents: 0.0,
            latency_us: LatencyUs::default(),
            latency: None,
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
        self.events_per_getevents = if self.io_getevents_calls == 0 {
            0.0
        } else {
            self.iocbs as f64 / self.io_getevents_calls as f64
        };
        self.latency_us = LatencyUs::from_histogram(latency);
        self.latency = Some(latency.clone());
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {:?}: {} × {} B per iocb{}, iodepth {}, batch {}, reap-min {}",
            self.mode.name(),
            self.rw,
            if self.mode == Mode::Vectored {
                self.segments
            } else {
                1
            },
            self.segment_size,
            if self.mode == Mode::Vectored {
                " (one PREADV/PWRITEV)"
            } else {
                ""
            },
            self.iodepth,
            self.batch,
            self.reap_min
        );
        let rows: [(&str, String); 9] = [
            ("elapsed", format!("{:.2} s", self.elapsed_s)),
            ("iocbs", self.iocbs.to_string()),
            ("bytes", self.bytes.to_string()),
            ("MB/s", format!("{:.1}", self.mb_per_s)),
            ("IOPS", format!("{:.0}", self.iops)),
            ("io_submit calls", self.io_submit_calls.to_string()),
            ("io_getevents calls", self.io_getevents_calls.to_string()),
            (
                "events per getevents",
                format!("{:.2}", self.events_per_getevents),
            ),
            (
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
            ),
        ];
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
        let mut r = WorkloadResult::new(&config, 7);
        r.iocbs = 800;
        r.bytes = 800 * 4096;
        r.io_getevents_calls = 200;
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).unwrap();
        }
        r.finish(Duration::from_secs(2), &h);
        assert_eq!(r.units, 100, "8 scalar iocbs per unit");
        assert!((r.iops - 400.0).abs() < 1e-9);
        assert!((r.mb_per_s - 800.0 * 4096.0 / 1e6 / 2.0).abs() < 1e-9);
        assert_eq!(r.events_per_getevents, 4.0);
        assert!((r.latency_us.p50 - 500.0).abs() < 1.0, "{:?}", r.latency_us);
        assert!((r.latency_us.max - 1000.0).abs() < 1.0);
        assert!(r.render().contains("IOPS"));
    }

    #[test]
    fn empty_run_has_zero_latency_not_garbage() {
        let h = Histogram::<u64>::new(3).unwrap();
        assert_eq!(LatencyUs::from_histogram(&h), LatencyUs::default());
    }
}
