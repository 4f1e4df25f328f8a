//! The log2 histogram: counts per power of two, for latencies, segment and
//! bio counts. Model layer: pure, no kernel, no I/O.
//!
//! One bucket convention: bucket 0 holds 0 alone, bucket b ≥ 1 holds
//! [2^(b-1), 2^b), bucket 64 ends at u64::MAX. Zero gets a bucket of its own
//! because a sub-µs latency counted in µs is 0, and the TUI shows it apart
//! from 1. The kernel's D2C histogram has a coarser layout (see
//! [`Log2Hist::from_kernel`]); views that show a coarser layout fold these
//! buckets rather than keep a second histogram.

use aio_trace_common::D2C_BUCKETS;

/// Counts per log2 bucket; see the module doc for the bucket convention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log2Hist {
    pub buckets: [u64; 65],
}

impl Default for Log2Hist {
    fn default() -> Self {
        Self { buckets: [0; 65] }
    }
}

impl Log2Hist {
    pub fn bucket_of(value: u64) -> usize {
        (u64::BITS - value.leading_zeros()) as usize
    }

    /// The smallest value of bucket `b` and the smallest of the next one
    /// (u64::MAX for the last bucket, whose end does not fit).
    pub fn bounds(bucket: usize) -> (u64, u64) {
        match bucket {
            0 => (0, 1),
            64 => (1 << 63, u64::MAX),
            b => (1 << (b - 1), 1 << b),
        }
    }

    /// The kernel's D2C histogram (`DevCounters::d2c_log2`): its bucket i
    /// holds [2^i, 2^(i+1)) ns, with 0 ns counted in bucket 0 next to 1 ns,
    /// so it is this histogram's bucket i + 1. A 0 ns request is not a real
    /// device latency, so counting it as 1 ns loses nothing.
    pub fn from_kernel(d2c_log2: &[u64; D2C_BUCKETS]) -> Self {
        let mut h = Self::default();
        h.buckets[1..=D2C_BUCKETS].copy_from_slice(d2c_log2);
        h
    }

    /// Adds counts kept in the same buckets elsewhere (the kernel's
    /// segments histogram, `CtxCounters::segs_log2`): bucket i to bucket i.
    pub fn add_buckets(&mut self, counts: &[u64]) {
        for (bucket, n) in self.buckets.iter_mut().zip(counts) {
            *bucket += n;
        }
    }

    pub fn record(&mut self, value: u64) {
        self.buckets[Self::bucket_of(value)] += 1;
    }

    pub fn total(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// (bucket, count) from the first to the last non-empty bucket.
    pub fn span(&self) -> Vec<(usize, u64)> {
        let first = self.buckets.iter().position(|&c| c > 0);
        let last = self.buckets.iter().rposition(|&c| c > 0);
        match (first, last) {
            (Some(first), Some(last)) => (first..=last).map(|b| (b, self.buckets[b])).collect(),
            _ => Vec::new(),
        }
    }

    /// The `q` quantile, interpolated linearly inside its bucket; None when
    /// the histogram is empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).max(1.0);
        let mut seen = 0u64;
        for (b, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let (lo, next) = Self::bounds(b);
                let within = (rank - seen as f64) / n as f64;
                return Some(lo as f64 + within * (next - lo) as f64);
            }
            seen += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_buckets_hold_powers_of_two() {
        assert_eq!(Log2Hist::bucket_of(0), 0);
        assert_eq!(Log2Hist::bucket_of(1), 1);
        assert_eq!(Log2Hist::bucket_of(2), 2);
        assert_eq!(Log2Hist::bucket_of(3), 2);
        assert_eq!(Log2Hist::bucket_of(8), 4);
        assert_eq!(Log2Hist::bucket_of(15), 4);
        assert_eq!(Log2Hist::bucket_of(u64::MAX), 64);
        assert_eq!(Log2Hist::bounds(4), (8, 16));
        let mut h = Log2Hist::default();
        for v in [8, 9, 15, 1, 1024] {
            h.record(v);
        }
        assert_eq!(h.total(), 5);
        let span = h.span();
        assert_eq!(span.first(), Some(&(1, 1)));
        assert_eq!(span[3], (4, 3));
        assert_eq!(span.last(), Some(&(11, 1)));
    }

    /// Every value the kernel's bucket formula (`63 - lzcnt(v | 1)`) puts in
    /// bucket i lands in `from_kernel`'s bucket for that value, 0 aside.
    #[test]
    fn kernel_buckets_map_to_the_buckets_of_their_values() {
        for v in (0..40).flat_map(|i| [1u64 << i, (1u64 << i) + (1 << i) / 2, (2u64 << i) - 1]) {
            let mut kernel = [0u64; D2C_BUCKETS];
            kernel[(63 - (v | 1).leading_zeros()) as usize] = 1;
            let mut direct = Log2Hist::default();
            direct.record(v);
            assert_eq!(Log2Hist::from_kernel(&kernel), direct, "{v}");
        }
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let mut h = Log2Hist::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..4 {
            h.record(1024);
        }
        assert_eq!(h.quantile(0.5), Some(1536.0));
        assert_eq!(h.quantile(1.0), Some(2048.0));
        h.record(0);
        assert_eq!(
            h.quantile(0.0),
            Some(1.0),
            "the lowest rank is 1: all of bucket 0"
        );
    }
}
