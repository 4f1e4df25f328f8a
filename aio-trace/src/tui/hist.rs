//! Histograms the views draw: log2 buckets (the model's [`Log2Hist`]) and a
//! sliding window of HdrHistograms for percentiles over the last ticks.

use std::collections::VecDeque;

use hdrhistogram::Histogram;

pub use crate::model::Log2Hist;

/// A fresh latency histogram in ns: 2 significant digits, grows as needed.
/// One tick's counts fit u32, which halves the windows' memory.
pub fn latency_histogram<C: hdrhistogram::Counter>() -> Histogram<C> {
    let mut h = Histogram::new(2).expect("2 significant digits is valid");
    h.auto(true);
    h
}

/// Latency over the last `ticks` ticks: one histogram per tick, merged on
/// read, with each tick's count and sum for the mean.
#[derive(Clone, Debug)]
pub struct LatencyWindow {
    current: Histogram<u32>,
    current_sum: u64,
    /// Closed ticks: histogram and sum of its values.
    past: VecDeque<(Histogram<u32>, u64)>,
    ticks: usize,
}

impl LatencyWindow {
    pub fn new(ticks: usize) -> Self {
        Self {
            current: latency_histogram(),
            current_sum: 0,
            past: VecDeque::with_capacity(ticks),
            ticks,
        }
    }

    pub fn record(&mut self, latency_ns: u64) {
        // Auto-resizing: recording cannot fail for any u64 ≥ 1.
        let _ = self.current.record(latency_ns.max(1));
        self.current_sum = self.current_sum.saturating_add(latency_ns);
    }

    /// Closes the current tick; the oldest falls out of the window.
    pub fn tick(&mut self) {
        let closed = std::mem::replace(&mut self.current, latency_histogram());
        let sum = std::mem::take(&mut self.current_sum);
        if self.past.len() == self.ticks {
            self.past.pop_front();
        }
        self.past.push_back((closed, sum));
    }

    /// Values in the closed ticks of the window.
    pub fn len(&self) -> u64 {
        self.past.iter().map(|(h, _)| h.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exact mean of the closed ticks, None when they saw nothing.
    pub fn mean(&self) -> Option<f64> {
        let n = self.len();
        let sum: u64 = self.past.iter().map(|(_, s)| s).sum();
        (n > 0).then(|| sum as f64 / n as f64)
    }

    /// Every closed tick of the window merged (the open tick is not yet
    /// complete); u32 counts hold ten ticks of millions of iocbs.
    pub fn merged(&self) -> Histogram<u32> {
        let mut all = latency_histogram();
        for (h, _) in &self.past {
            if !h.is_empty() {
                let _ = all.add(h);
            }
        }
        all
    }

    /// Quantiles of the window, None when it saw nothing (without merging).
    pub fn quantiles(&self, qs: &[f64]) -> Option<Vec<u64>> {
        if self.is_empty() {
            return None;
        }
        let merged = self.merged();
        Some(qs.iter().map(|&q| merged.value_at_quantile(q)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_old_ticks() {
        let mut w = LatencyWindow::new(2);
        assert_eq!(w.quantiles(&[0.5]), None);
        for _ in 0..100 {
            w.record(1_000_000);
        }
        w.tick();
        for _ in 0..100 {
            w.record(10_000);
        }
        w.tick();
        let [p50, p99] = w.quantiles(&[0.5, 0.99]).unwrap()[..] else {
            panic!()
        };
        assert!((9_900..=10_100).contains(&p50), "{p50}");
        assert!((990_000..=1_010_000).contains(&p99), "{p99}");
        // A third tick pushes the slow one out.
        w.record(10_000);
        w.tick();
        let p99 = w.quantiles(&[0.99]).unwrap()[0];
        assert!(p99 < 11_000, "{p99}");
        assert_eq!(w.len(), 101);
        assert_eq!(w.mean(), Some(10_000.0));
        w.tick();
        w.tick();
        assert!(w.is_empty());
        assert_eq!((w.quantiles(&[0.5]), w.mean()), (None, None));
    }
}
