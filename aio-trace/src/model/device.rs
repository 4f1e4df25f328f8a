//! Per block device summary: requests, merges, splits and D2C latency.

use aio_trace_common::{D2C_BUCKETS, DevCounters};
use serde::Serialize;

use super::{Log2Hist, iocb::dev_name};

/// Sums one device's per-CPU copies.
pub fn sum_devices<'a>(per_cpu: impl IntoIterator<Item = &'a DevCounters>) -> DevCounters {
    per_cpu
        .into_iter()
        .fold(DevCounters::default(), |mut acc, c| {
            acc.bios += c.bios;
            acc.requests += c.requests;
            acc.merges += c.merges;
            acc.splits += c.splits;
            acc.d2c_ns_sum += c.d2c_ns_sum;
            for (a, b) in acc.d2c_log2.iter_mut().zip(c.d2c_log2) {
                *a += b;
            }
            acc
        })
}

/// The `q` quantile of the kernel's D2C histogram, in µs.
pub fn log2_quantile_us(buckets: &[u64; D2C_BUCKETS], q: f64) -> Option<f64> {
    Log2Hist::from_kernel(buckets)
        .quantile(q)
        .map(|ns| ns / 1e3)
}

/// The `{"type":"device",…}` exit line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceSummary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub dev: String,
    /// The device's name (`vda`), null when sysfs has none.
    pub name: Option<String>,
    pub bios: u64,
    pub requests: u64,
    pub merges: u64,
    pub splits: u64,
    pub d2c_avg_us: Option<f64>,
    pub d2c_p50_us: Option<f64>,
    pub d2c_p90_us: Option<f64>,
    pub d2c_p99_us: Option<f64>,
}

impl DeviceSummary {
    pub fn new(dev: u32, name: Option<String>, c: &DevCounters) -> Self {
        Self {
            kind: "device",
            dev: dev_name(dev),
            name,
            bios: c.bios,
            requests: c.requests,
            merges: c.merges,
            splits: c.splits,
            d2c_avg_us: (c.requests != 0).then(|| c.d2c_ns_sum as f64 / c.requests as f64 / 1e3),
            d2c_p50_us: log2_quantile_us(&c.d2c_log2, 0.50),
            d2c_p90_us: log2_quantile_us(&c.d2c_log2, 0.90),
            d2c_p99_us: log2_quantile_us(&c.d2c_log2, 0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_log2_buckets() {
        let mut b = [0u64; D2C_BUCKETS];
        b[10] = 50; // [1024, 2048) ns
        b[16] = 50; // [65536, 131072) ns
        assert_eq!(
            log2_quantile_us(&b, 0.5),
            Some(2.048),
            "the 50th of 100 is the top of the first bucket"
        );
        let p99 = log2_quantile_us(&b, 0.99).unwrap();
        assert!(
            (p99 - (65_536.0 + 0.98 * 65_536.0) / 1e3).abs() < 1e-9,
            "{p99}"
        );
        assert_eq!(log2_quantile_us(&[0; D2C_BUCKETS], 0.5), None);
    }

    #[test]
    fn sums_cpus_and_names_the_device() {
        let mut a = DevCounters {
            bios: 3,
            requests: 2,
            d2c_ns_sum: 4_000,
            ..Default::default()
        };
        a.d2c_log2[11] = 2;
        let b = DevCounters {
            bios: 1,
            merges: 1,
            ..Default::default()
        };
        let total = sum_devices([&a, &b]);
        let s = DeviceSummary::new(254 << 20, Some("vda".into()), &total);
        assert_eq!(
            (s.dev.as_str(), s.bios, s.requests, s.merges),
            ("254:0", 4, 2, 1)
        );
        assert_eq!(s.d2c_avg_us, Some(2.0));
        assert!(s.d2c_p50_us.is_some());
    }
}
