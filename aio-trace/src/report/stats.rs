//! Rows → the report: totals, groups, op mix (per api), latency percentiles
//! and log2 histograms, segments and bios per iocb, vectored vs scalar,
//! errors.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::parse::{BadLine, IocbRow, LossRow, ReadInfo, Row};
use crate::{
    blockdev::{DevNames, parse_maj_min},
    export::Header,
    model::{Api, Log2Hist},
};

/// What the group table is keyed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    #[default]
    Pid,
    Ctx,
    Op,
    File,
    Api,
    /// The device of the file (`-` without a dispatch), named at `report`.
    Dev,
    /// The submitter's cgroup v2 path (`cgroup ID` where the recording could
    /// not resolve it, `-` in recordings without cgroups).
    Cgroup,
}

impl By {
    fn key(self, r: &IocbRow) -> String {
        match self {
            By::Pid => format!("{} {}", r.pid, r.comm),
            By::Ctx => match r.api() {
                Api::Aio => format!("{} {:x}", r.pid, r.ctx),
                Api::IoUring => format!("{} ring {:x}", r.pid, r.ctx),
                Api::Sync => format!("{} sync", r.pid),
            },
            By::Op => r.op.clone(),
            By::Dev => r.dev.clone().unwrap_or_else(|| "-".into()),
            By::Api => r.api().name().to_owned(),
            By::Cgroup => match (&r.cgroup_path, r.cgroup) {
                (Some(path), _) => path.clone(),
                (None, Some(id)) => format!("cgroup {id}"),
                (None, None) => "-".into(),
            },
            By::File => match (&r.dev, r.ino) {
                (Some(dev), Some(ino)) => format!("{dev} ino {ino}"),
                _ => format!("pid {} fd {}", r.pid, r.fd),
            },
        }
    }
}

/// Submit → reap latency in ns, percentiles from an HdrHistogram (3 digits).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub min_ns: Option<u64>,
    pub mean_ns: Option<f64>,
    pub p50_ns: Option<u64>,
    pub p90_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub p999_ns: Option<u64>,
    pub max_ns: Option<u64>,
}

fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        min_ns: Some(h.min()),
        mean_ns: Some(h.mean()),
        p50_ns: Some(h.value_at_quantile(0.50)),
        p90_ns: Some(h.value_at_quantile(0.90)),
        p99_ns: Some(h.value_at_quantile(0.99)),
        p999_ns: Some(h.value_at_quantile(0.999)),
        max_ns: Some(h.max()),
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

/// One log2 bucket: values in [lo, hi).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    pub lo: u64,
    pub hi: u64,
    pub count: u64,
}

/// The report's rows of a log2 histogram, from the first to the last
/// non-empty bucket. The report's first row is [0, 2): the JSON report is
/// read by scripts that expect that row, so the histogram's buckets for 0
/// and for 1 are folded into it.
fn buckets(h: &Log2Hist) -> Vec<Bucket> {
    h.span()
        .into_iter()
        .fold(Vec::new(), |mut rows, (b, count)| {
            match rows.last_mut() {
                Some(first) if b == 1 => first.count += count,
                _ if b <= 1 => rows.push(Bucket {
                    lo: 0,
                    hi: 2,
                    count,
                }),
                _ => {
                    let (lo, hi) = Log2Hist::bounds(b);
                    rows.push(Bucket { lo, hi, count });
                }
            }
            rows
        })
}

#[derive(Clone, Debug)]
struct Acc {
    iocbs: u64,
    bytes_requested: u64,
    bytes_done: u64,
    errors: u64,
    segs: u64,
    bios: u64,
    dispatched: u64,
    latency: Histogram<u64>,
    latency_log2_us: Log2Hist,
}

impl Default for Acc {
    fn default() -> Self {
        Self {
            iocbs: 0,
            bytes_requested: 0,
            bytes_done: 0,
            errors: 0,
            segs: 0,
            bios: 0,
            dispatched: 0,
            latency: new_histogram(),
            latency_log2_us: Log2Hist::default(),
        }
    }
}

impl Acc {
    fn add(&mut self, r: &IocbRow) {
        self.iocbs += 1;
        self.bytes_requested += r.bytes.unwrap_or(0);
        self.bytes_done += r.res.filter(|&res| res > 0).unwrap_or(0) as u64;
        self.errors += u64::from(is_error(r));
        self.segs += u64::from(r.segs);
        if r.dispatches > 0 {
            self.dispatched += 1;
            self.bios += u64::from(r.bios);
        }
        if let Some(ns) = r.latency_ns {
            // Auto-resizing: only an absurd value (beyond u64 range halves) fails.
            let _ = self.latency.record(ns);
            self.latency_log2_us.record(ns / 1000);
        }
    }
}

/// Rejected by io_submit (no reap, no completion) or a negative result.
fn is_error(r: &IocbRow) -> bool {
    r.res.is_some_and(|res| res < 0) || (r.reap_ns.is_none() && r.complete_ns.is_none())
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

/// One row of a table: a group, an op, vectored or scalar.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// An op's interface (the same name is another op in each, READV is
    /// io_uring's or the syscall); absent from the other rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    pub key: String,
    pub iocbs: u64,
    /// Share of all records, 0..=1.
    pub share: f64,
    pub bytes_requested: u64,
    pub bytes_transferred: u64,
    pub errors: u64,
    pub segs_per_iocb: Option<f64>,
    /// Over the iocbs that reached a filesystem dispatch.
    pub bios_per_iocb: Option<f64>,
    pub latency: Latency,
    /// Log2 histogram of the latency in µs.
    pub latency_log2_us: Vec<Bucket>,
}

fn line(key: String, a: &Acc, total: u64) -> Line {
    Line {
        api: None,
        key,
        iocbs: a.iocbs,
        share: ratio(a.iocbs, total).unwrap_or(0.0),
        bytes_requested: a.bytes_requested,
        bytes_transferred: a.bytes_done,
        errors: a.errors,
        segs_per_iocb: ratio(a.segs, a.iocbs),
        bios_per_iocb: ratio(a.bios, a.dispatched),
        latency: latency(&a.latency),
        latency_log2_us: buckets(&a.latency_log2_us),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Calls {
    pub contexts: u64,
    pub io_submit_calls: u64,
    pub iocbs_submitted: u64,
    pub io_getevents_calls: u64,
    pub events_reaped: u64,
    pub iocbs_per_submit: Option<f64>,
    pub events_per_getevents: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorCount {
    pub api: Api,
    pub op: String,
    /// The result (-errno), null when io_submit swallowed it.
    pub res: Option<i64>,
    pub count: u64,
}

/// The whole report, as `--json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub file: String,
    pub format: &'static str,
    pub header: Option<Header>,
    /// The recording ended with its loss line (a JSONL recording that stopped cleanly).
    pub complete: bool,
    pub skipped: Vec<BadLine>,
    pub records: u64,
    pub iocbs: u64,
    pub syscalls: u64,
    pub processes: u64,
    pub contexts: u64,
    pub duration_s: Option<f64>,
    pub total: Line,
    pub by: By,
    pub groups: Vec<Line>,
    pub ops: Vec<Line>,
    pub vectored: Line,
    pub scalar: Line,
    pub segments_log2: Vec<Bucket>,
    pub bios_log2: Vec<Bucket>,
    pub errors: Vec<ErrorCount>,
    pub calls: Calls,
    pub lost: Option<LossRow>,
}

/// Accumulates rows; `report` finishes.
#[derive(Default)]
pub struct Stats {
    by: By,
    header: Option<Header>,
    total: Acc,
    iocbs: u64,
    syscalls: u64,
    groups: BTreeMap<String, Acc>,
    ops: BTreeMap<Api, BTreeMap<String, Acc>>,
    vectored: Acc,
    scalar: Acc,
    segments: Log2Hist,
    bios: Log2Hist,
    errors: BTreeMap<(Api, String, Option<i64>), u64>,
    processes: std::collections::HashSet<u32>,
    contexts: std::collections::HashSet<(u32, u64)>,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
    calls: Calls,
    lost: Option<LossRow>,
    /// Device names, and the host they are from.
    names: Option<(DevNames, String)>,
}

impl Stats {
    pub fn new(by: By) -> Self {
        Self {
            by,
            ..Self::default()
        }
    }

    /// Names the `--by dev` groups from `names`, read on `host`: only when
    /// the recording was taken there (or does not say where), since a
    /// device number names another device on another machine.
    pub fn name_devices(&mut self, names: DevNames, host: &str) {
        self.names = Some((names, host.to_owned()));
    }

    /// `vda 254:0` for `254:0`, when this host's names apply.
    fn dev_key(&mut self, key: &str) -> String {
        let header = self.header.as_ref();
        let name = self
            .names
            .as_mut()
            .filter(|(_, host)| header.is_none_or(|h| h.hostname == *host))
            .zip(parse_maj_min(key))
            .and_then(|((names, _), dev)| names.name(dev));
        match name {
            Some(name) => format!("{name} {key}"),
            None => key.to_owned(),
        }
    }

    pub fn add(&mut self, row: Row) {
        match row {
            Row::Header(h) => self.header = Some(h),
            Row::Iocb(r) => self.add_iocb(&r),
            Row::Summary(s) => {
                self.calls.contexts += 1;
                self.calls.io_submit_calls += s.io_submit_calls;
                self.calls.iocbs_submitted += s.iocbs_submitted;
                self.calls.io_getevents_calls += s.io_getevents_calls;
                self.calls.events_reaped += s.events_reaped;
            }
            Row::Lost(l) => self.lost = Some(l),
        }
    }

    fn add_iocb(&mut self, r: &IocbRow) {
        if r.kind == "syscall" {
            self.syscalls += 1;
        } else {
            self.iocbs += 1;
        }
        self.total.add(r);
        self.groups.entry(self.by.key(r)).or_default().add(r);
        let api = r.api();
        let ops = self.ops.entry(api).or_default();
        match ops.get_mut(&r.op) {
            Some(acc) => acc.add(r),
            None => ops.entry(r.op.clone()).or_default().add(r),
        }
        let op = r.op();
        if op.is_vectored() {
            self.vectored.add(r);
        } else if op.is_scalar() {
            self.scalar.add(r);
        }
        if r.segs > 0 {
            self.segments.record(u64::from(r.segs));
        }
        if r.dispatches > 0 {
            self.bios.record(u64::from(r.bios));
        }
        if is_error(r) {
            *self.errors.entry((api, r.op.clone(), r.res)).or_default() += 1;
        }
        self.processes.insert(r.pid);
        self.contexts.insert((r.pid, r.ctx));
        let end = r.reap_ns.or(r.complete_ns).unwrap_or(r.submit_ns);
        self.first_ns = Some(self.first_ns.map_or(r.submit_ns, |f| f.min(r.submit_ns)));
        self.last_ns = Some(self.last_ns.map_or(end, |l| l.max(end)));
    }

    pub fn report(mut self, file: &str, info: ReadInfo) -> Report {
        let n = self.total.iocbs;
        let groups = std::mem::take(&mut self.groups);
        let mut groups: Vec<_> = groups
            .iter()
            .map(|(k, a)| {
                let key = if self.by == By::Dev {
                    self.dev_key(k)
                } else {
                    k.clone()
                };
                line(key, a, n)
            })
            .collect();
        groups.sort_by(|a, b| b.iocbs.cmp(&a.iocbs).then_with(|| a.key.cmp(&b.key)));
        let mut calls = self.calls;
        calls.iocbs_per_submit = ratio(calls.iocbs_submitted, calls.io_submit_calls);
        calls.events_per_getevents = ratio(calls.events_reaped, calls.io_getevents_calls);
        let mut ops: Vec<_> = self
            .ops
            .iter()
            .flat_map(|(&api, ops)| {
                ops.iter().map(move |(k, a)| Line {
                    api: Some(api),
                    ..line(k.clone(), a, n)
                })
            })
            .collect();
        ops.sort_by(|a, b| {
            b.iocbs
                .cmp(&a.iocbs)
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.api.cmp(&b.api))
        });
        Report {
            file: file.to_owned(),
            format: info.format,
            header: self.header,
            complete: info.complete,
            skipped: info.skipped,
            records: n,
            iocbs: self.iocbs,
            syscalls: self.syscalls,
            processes: self.processes.len() as u64,
            contexts: self.contexts.len() as u64,
            duration_s: self
                .first_ns
                .zip(self.last_ns)
                .map(|(f, l)| l.saturating_sub(f) as f64 / 1e9),
            total: line("total".into(), &self.total, n),
            by: self.by,
            groups,
            ops,
            vectored: line("vectored".into(), &self.vectored, n),
            scalar: line("scalar".into(), &self.scalar, n),
            segments_log2: buckets(&self.segments),
            bios_log2: buckets(&self.bios),
            errors: self
                .errors
                .into_iter()
                .map(|((api, op, res), count)| ErrorCount {
                    api,
                    op,
                    res,
                    count,
                })
                .collect(),
            calls,
            lost: self.lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_start_at_zero_to_two_and_end_at_the_last_value() {
        let mut h = Log2Hist::default();
        for v in [0, 1, 2, 3, 5, u64::MAX] {
            h.record(v);
        }
        let rows: Vec<_> = buckets(&h).iter().map(|b| (b.lo, b.hi, b.count)).collect();
        assert_eq!(rows[..3], [(0, 2, 2), (2, 4, 2), (4, 8, 1)]);
        assert_eq!(rows.last(), Some(&(1 << 63, u64::MAX, 1)));
        assert_eq!(
            rows.len(),
            64,
            "as many rows as bits: [0, 2) and then one per bit"
        );
        let mut only_one = Log2Hist::default();
        only_one.record(1);
        assert_eq!(
            buckets(&only_one),
            [Bucket {
                lo: 0,
                hi: 2,
                count: 1
            }]
        );
        let mut only_zero = Log2Hist::default();
        only_zero.record(0);
        assert_eq!(
            buckets(&only_zero),
            [Bucket {
                lo: 0,
                hi: 2,
                count: 1
            }]
        );
        assert!(buckets(&Log2Hist::default()).is_empty());
    }
}
