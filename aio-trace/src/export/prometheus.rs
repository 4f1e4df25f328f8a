//! `/metrics` for `aio-trace serve`: Prometheus counters and histograms kept
//! by prometheus-client. Labels stay bounded: api (aio, io_uring, sync), op
//! and device name, and those of task name and cgroup the user picks
//! (`serve --labels`, task name alone by default); never pid, context, inode
//! or offset.

use std::{
    collections::HashMap,
    io,
    sync::{Arc, Mutex},
};

use aio_trace_common::{CtxCounters, CtxKey, IocbRecord};
use prometheus_client::{
    encoding::{EncodeLabelSet, LabelSetEncoder},
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{
    blockdev::DevNames,
    cgroup::CgroupNames,
    model::{Api, IocbView, LossCounts, Op, OpCounts, comm_str},
    reader::Record,
    session::Sink,
};

/// The labels of the per-op series; `comm` and `cgroup` only where the
/// user asked for them (absent, not empty, otherwise).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct OpLabels {
    pub comm: Option<String>,
    /// The cgroup v2 path of the submitter (`/system.slice/foo.scope`), its
    /// id where it could not be resolved.
    pub cgroup: Option<String>,
    /// The op's interface: one name is another op in each (READV is
    /// io_uring's or the syscall's).
    pub api: &'static str,
    pub op: &'static str,
    /// The device's name (`vda`), its maj:min when it has none, empty for an
    /// iocb without a dispatch. maj:min is in `device_info`, not here, so a
    /// device is one series per op, not two.
    pub dev: String,
}

impl EncodeLabelSet for OpLabels {
    fn encode(&self, encoder: LabelSetEncoder) -> std::fmt::Result {
        let chosen = [("comm", &self.comm), ("cgroup", &self.cgroup)];
        let mut labels: Vec<(&str, &str)> = chosen
            .iter()
            .filter_map(|(key, value)| Some((*key, value.as_deref()?)))
            .collect();
        labels.extend([("api", self.api), ("op", self.op), ("dev", &*self.dev)]);
        labels.encode(encoder)
    }
}

/// Which optional labels the per-op series carry (`serve --labels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesLabels {
    pub comm: bool,
    pub cgroup: bool,
}

impl Default for SeriesLabels {
    fn default() -> Self {
        Self {
            comm: true,
            cgroup: false,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    pub dev: String,
    pub maj_min: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommLabels {
    pub comm: String,
}

/// The labels of the kernel's exact per-op counts: AIO only, and no device
/// (an iocb's device is known only from its dispatch, which only a sampled
/// iocb's record carries).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommOpLabels {
    pub comm: String,
    pub api: &'static str,
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: &'static str,
}

#[derive(Clone)]
struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

fn latency_buckets() -> Histogram {
    // 1 µs … ~8.4 s, doubling.
    Histogram::new(exponential_buckets(1e-6, 2.0, 24))
}

fn count_buckets() -> Histogram {
    // 1 … 1024, doubling: segments and bios per iocb.
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// Cumulative kernel counters last seen, to turn snapshots into increments.
#[derive(Default)]
struct Seen {
    contexts: HashMap<CtxKey, (u64, u64, u64)>,
    /// (iocbs, bytes) by (pid, ctx, opcode).
    ops: HashMap<(u32, u64, u16), (u64, u64)>,
    losses: LossCounts,
}

pub struct Metrics {
    registry: Registry,
    iocbs: Family<OpLabels, Counter>,
    bytes: Family<OpLabels, Counter>,
    errors: Family<OpLabels, Counter>,
    bios: Family<OpLabels, Counter>,
    latency: Family<OpLabels, Histogram, Buckets>,
    segments: Family<OpLabels, Histogram, Buckets>,
    bios_per_iocb: Family<OpLabels, Histogram, Buckets>,
    io_submit_calls: Family<CommLabels, Counter>,
    io_getevents_calls: Family<CommLabels, Counter>,
    failed_events: Family<CommLabels, Counter>,
    submitted_iocbs: Family<CommOpLabels, Counter>,
    submitted_bytes: Family<CommOpLabels, Counter>,
    lost: Family<CauseLabels, Counter>,
    devices: Family<DeviceLabels, Gauge>,
    seen: Mutex<Seen>,
    /// The full tier: the `submitted` series count records, as the kernel's
    /// counters do in the light tier.
    submitted_from_records: bool,
    sample_every: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::sampled(1)
    }

    /// The metrics of a trace that records the I/O of 1/`sample_every` of the time:
    /// the per-record series are that sample's, the `submitted_*` series
    /// count every iocb.
    pub fn sampled(sample_every: u64) -> Self {
        let mut registry = Registry::with_prefix("aio_trace");
        let iocbs = Family::default();
        let bytes = Family::default();
        let errors = Family::default();
        let bios = Family::default();
        let latency = Family::new_with_constructor(Buckets(latency_buckets));
        let segments = Family::new_with_constructor(Buckets(count_buckets));
        let bios_per_iocb = Family::new_with_constructor(Buckets(count_buckets));
        let io_submit_calls = Family::default();
        let io_getevents_calls = Family::default();
        let lost = Family::default();
        let devices = Family::default();
        let failed_events = Family::default();
        let submitted_iocbs = Family::default();
        let submitted_bytes = Family::default();
        let sample: Gauge = Gauge::default();
        sample.set(i64::try_from(sample_every).unwrap_or(i64::MAX));
        registry.register(
            "iocbs",
            "Iocbs and io_uring requests reaped or refused, and vectored syscalls",
            iocbs.clone(),
        );
        registry.register("bytes", "Bytes transferred", bytes.clone());
        registry.register(
            "errors",
            "Iocbs with a negative result or refused at submission",
            errors.clone(),
        );
        registry.register("bios", "Bios issued for the iocbs", bios.clone());
        registry.register(
            "iocb_latency_seconds",
            "Submit to reap latency (io_uring: to the CQE when not reaped in io_uring_enter)",
            latency.clone(),
        );
        registry.register(
            "iocb_segments",
            "Segments (iovecs) per iocb",
            segments.clone(),
        );
        registry.register("iocb_bios", "Bios per iocb", bios_per_iocb.clone());
        registry.register(
            "io_submit_calls",
            "io_submit calls (kernel counters)",
            io_submit_calls.clone(),
        );
        registry.register(
            "io_getevents_calls",
            "io_getevents and io_pgetevents calls (kernel counters)",
            io_getevents_calls.clone(),
        );
        registry.register(
            "failed_events",
            "io_getevents events with a negative result (kernel counters)",
            failed_events.clone(),
        );
        registry.register(
            "submitted_iocbs",
            "AIO iocbs io_submit accepted, every one whatever the sample (kernel counters)",
            submitted_iocbs.clone(),
        );
        registry.register(
            "submitted_bytes",
            "Bytes the AIO iocbs io_submit accepted asked for, whatever the sample (kernel counters)",
            submitted_bytes.clone(),
        );
        registry.register(
            "sample_every",
            "The I/O of 1/N of the time feeds the per-record series (iocbs, bytes, errors, bios, \
             latency, segments, bios per iocb); 1: every iocb",
            sample.clone(),
        );
        registry.register("lost", "Records the tracer missed, by cause", lost.clone());
        registry.register(
            "device_info",
            "A device of the dev label, with its major:minor (always 1)",
            devices.clone(),
        );
        Self {
            registry,
            iocbs,
            bytes,
            errors,
            bios,
            latency,
            segments,
            bios_per_iocb,
            io_submit_calls,
            io_getevents_calls,
            failed_events,
            submitted_iocbs,
            submitted_bytes,
            lost,
            devices,
            seen: Mutex::default(),
            submitted_from_records: sample_every <= 1,
            sample_every: sample,
        }
    }

    fn handles(&self, labels: &OpLabels) -> Handles {
        Handles {
            iocbs: self.iocbs.get_or_create(labels).clone(),
            bytes: self.bytes.get_or_create(labels).clone(),
            errors: self.errors.get_or_create(labels).clone(),
            bios: self.bios.get_or_create(labels).clone(),
            latency: self.latency.get_or_create(labels).clone(),
            segments: self.segments.get_or_create(labels).clone(),
            bios_per_iocb: self.bios_per_iocb.get_or_create(labels).clone(),
        }
    }

    /// The light tier's sampling now (`--budget` changes it).
    pub fn set_sample_every(&self, every: u64) {
        self.sample_every
            .set(i64::try_from(every).unwrap_or(i64::MAX));
    }

    /// Adds what the kernel counted since the last call: syscall counters and
    /// iocb counts per task name (`comm_of` names a pid) and the loss counters.
    pub fn update_kernel(
        &self,
        counters: &[(CtxKey, CtxCounters)],
        ops: &[OpCounts],
        comm_of: impl Fn(u32) -> String,
        losses: &LossCounts,
    ) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let grew = |now: u64, then: u64| if now >= then { now - then } else { now };
        for (key, c) in counters {
            let last = seen.contexts.entry(*key).or_default();
            let submits = grew(c.io_submit_calls, last.0);
            let getevents = grew(c.io_getevents_calls, last.1);
            let failed = grew(c.events_failed, last.2);
            *last = (c.io_submit_calls, c.io_getevents_calls, c.events_failed);
            if submits + getevents + failed == 0 {
                continue;
            }
            let labels = CommLabels {
                comm: comm_of(key.pid),
            };
            self.io_submit_calls.get_or_create(&labels).inc_by(submits);
            self.io_getevents_calls
                .get_or_create(&labels)
                .inc_by(getevents);
            self.failed_events.get_or_create(&labels).inc_by(failed);
        }
        for c in ops {
            let last = seen.ops.entry((c.pid, c.ctx, c.opcode)).or_default();
            let iocbs = grew(c.iocbs, last.0);
            let bytes = grew(c.bytes, last.1);
            *last = (c.iocbs, c.bytes);
            if iocbs + bytes == 0 {
                continue;
            }
            let labels = CommOpLabels {
                comm: comm_of(c.pid),
                api: c.api.name(),
                op: Op::new(c.api, c.opcode).name(),
            };
            self.submitted_iocbs.get_or_create(&labels).inc_by(iocbs);
            self.submitted_bytes.get_or_create(&labels).inc_by(bytes);
        }
        let then = seen.losses;
        let causes = [
            ("ring_full", losses.ring_full, then.ring_full),
            ("inflight_full", losses.inflight_full, then.inflight_full),
            ("user_read", losses.user_read, then.user_read),
            ("unmatched", losses.unmatched, then.unmatched),
            (
                "batch_truncated",
                losses.batch_truncated,
                then.batch_truncated,
            ),
            (
                "syscall_state_full",
                losses.syscall_state_full,
                then.syscall_state_full,
            ),
            (
                "unattributed_bios",
                losses.unattributed_bios,
                then.unattributed_bios,
            ),
            (
                "unmatched_dispatches",
                losses.unmatched_dispatches,
                then.unmatched_dispatches,
            ),
            (
                "device_table_full",
                losses.device_table_full,
                then.device_table_full,
            ),
            (
                "counter_table_full",
                losses.counter_table_full,
                then.counter_table_full,
            ),
            ("aged_out", losses.aged_out, then.aged_out),
            ("abandoned", losses.abandoned, then.abandoned),
            (
                "inflight_at_start",
                losses.inflight_at_start,
                then.inflight_at_start,
            ),
        ];
        for (cause, now, then) in causes {
            // Every cause is shown, zero included: a dashboard can alert on it.
            self.lost
                .get_or_create(&CauseLabels { cause })
                .inc_by(now.saturating_sub(then));
        }
        seen.losses = *losses;
    }

    /// The Prometheus text exposition format (ending in `# EOF`, as OpenMetrics).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The classic Prometheus text format (0.0.4) from OpenMetrics text: counters
/// are described under their sample name (`x_total`) and there is no `# EOF`.
/// For scrapers and tools (promtool) that do not ask for OpenMetrics.
pub fn to_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(described.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The metrics of one (comm, cgroup, api, op, dev), cached so a record costs no label lookup.
#[derive(Clone)]
struct Handles {
    iocbs: Counter,
    bytes: Counter,
    errors: Counter,
    bios: Counter,
    latency: Histogram,
    segments: Histogram,
    bios_per_iocb: Histogram,
}

/// (comm, cgroup, api, op, device): what picks a record's series, without
/// allocating; a label not chosen is zero.
type SeriesKey = ([u8; 16], u64, Api, &'static str, Option<u32>);

/// Feeds each record into the metrics and remembers the task name of each pid.
pub struct MetricsSink {
    metrics: Arc<Metrics>,
    cache: HashMap<SeriesKey, Handles>,
    /// The `submitted` series by (task name, api, op), in the full tier.
    submitted: HashMap<([u8; 16], Api, &'static str), (Counter, Counter)>,
    comms: Arc<Mutex<HashMap<u32, String>>>,
    known_pids: std::collections::HashSet<u32>,
    names: DevNames,
    labels: SeriesLabels,
    cgroups: CgroupNames,
}

impl MetricsSink {
    pub fn new(
        metrics: Arc<Metrics>,
        comms: Arc<Mutex<HashMap<u32, String>>>,
        names: DevNames,
    ) -> Self {
        Self {
            metrics,
            names,
            cache: HashMap::new(),
            submitted: HashMap::new(),
            comms,
            known_pids: std::collections::HashSet::new(),
            labels: SeriesLabels::default(),
            cgroups: CgroupNames::new(None),
        }
    }

    /// Series labelled by `labels`, cgroups named by `cgroups`.
    pub fn with_labels(self, labels: SeriesLabels, cgroups: CgroupNames) -> Self {
        Self {
            labels,
            cgroups,
            ..self
        }
    }

    pub fn observe(&mut self, r: &IocbRecord) {
        if self.known_pids.insert(r.pid) {
            let mut comms = self.comms.lock().unwrap_or_else(|e| e.into_inner());
            comms.insert(r.pid, comm_str(&r.comm).into_owned());
        }
        let (api, op, dev) = (r.api(), r.op(), r.device());
        let (metrics, names, cgroups) = (&self.metrics, &mut self.names, &mut self.cgroups);
        let comm = if self.labels.comm { r.comm } else { [0; 16] };
        let cgroup = if self.labels.cgroup { r.cgroup } else { 0 };
        let handles = self
            .cache
            .entry((comm, cgroup, api, op.name(), dev.map(|d| d.0)))
            .or_insert_with(|| {
                let dev = dev.map_or_else(String::new, |d| {
                    let maj_min = d.to_string();
                    let dev = names
                        .name(d.0)
                        .map_or_else(|| maj_min.clone(), |n| n.to_string());
                    metrics
                        .devices
                        .get_or_create(&DeviceLabels {
                            dev: dev.clone(),
                            maj_min,
                        })
                        .set(1);
                    dev
                });
                let cgroup = (cgroup != 0).then(|| {
                    cgroups
                        .path(cgroup)
                        .map_or_else(|| cgroup.to_string(), |p| p.to_string())
                });
                metrics.handles(&OpLabels {
                    comm: (comm != [0; 16]).then(|| comm_str(&comm).into_owned()),
                    cgroup,
                    api: api.name(),
                    op: op.name(),
                    dev,
                })
            });
        handles.iocbs.inc();
        if self.metrics.submitted_from_records && !r.rejected() {
            let metrics = &self.metrics;
            let (iocbs, bytes) = self
                .submitted
                .entry((r.comm, api, op.name()))
                .or_insert_with(|| {
                    let labels = CommOpLabels {
                        comm: comm_str(&r.comm).into_owned(),
                        api: api.name(),
                        op: op.name(),
                    };
                    (
                        metrics.submitted_iocbs.get_or_create(&labels).clone(),
                        metrics.submitted_bytes.get_or_create(&labels).clone(),
                    )
                });
            iocbs.inc();
            bytes.inc_by(r.bytes);
        }
        if let Some(res) = r.result().filter(|&res| res > 0) {
            handles.bytes.inc_by(res as u64);
        }
        if r.rejected() || r.result().is_some_and(|res| res < 0) {
            handles.errors.inc();
        }
        handles.bios.inc_by(u64::from(r.bios));
        if let Some(latency) = r.latency_ns() {
            handles.latency.observe(latency as f64 / 1e9);
        }
        if op.is_vectored() || r.segs > 0 {
            handles.segments.observe(f64::from(r.segs));
        }
        if r.dispatches != 0 {
            handles.bios_per_iocb.observe(f64::from(r.bios));
        }
    }
}

impl Sink for MetricsSink {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Iocb(r) | Record::Syscall(r) => self.observe(r),
            Record::Ctx(c) => {
                let mut comms = self.comms.lock().unwrap_or_else(|e| e.into_inner());
                comms
                    .entry(c.pid)
                    .or_insert_with(|| proc_comm(c.pid).unwrap_or_else(|| c.pid.to_string()));
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A live process's task name.
pub fn proc_comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use aio_trace_common::{IOCB_REJECTED, RECORD_IOCB};

    use super::*;

    fn record(opcode: u16, segs: u32, res: i64, latency: u64) -> IocbRecord {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"fio");
        IocbRecord {
            kind: RECORD_IOCB,
            opcode,
            segs,
            comm,
            bytes: 4096 * u64::from(segs),
            res,
            submit_ns: 1_000,
            reap_ns: 1_000 + latency,
            ..Default::default()
        }
    }

    #[test]
    fn renders_counters_histograms_and_losses_with_bounded_labels() {
        // The light tier: the `submitted` series are the kernel's counts.
        let metrics = Arc::new(Metrics::sampled(64));
        let mut sink = MetricsSink::new(
            metrics.clone(),
            Arc::default(),
            DevNames::new("/nonexistent"),
        );
        sink.observe(&record(7, 8, 32768, 50_000));
        sink.observe(&record(7, 8, 32768, 150_000));
        sink.observe(&record(0, 1, -5, 10_000));
        let mut rejected = record(7, 1025, -22, 0);
        rejected.flags = IOCB_REJECTED;
        sink.observe(&rejected);
        let key = CtxKey {
            pid: 4,
            op: aio_trace_common::CTX_OP_CALLS,
            ctx: 9,
        };
        let counters = CtxCounters {
            io_submit_calls: 3,
            io_getevents_calls: 2,
            ..Default::default()
        };
        let losses = LossCounts {
            ring_full: 2,
            ..Default::default()
        };
        let mut ops = vec![OpCounts {
            pid: 4,
            ctx: 9,
            opcode: 7,
            iocbs: 64,
            bytes: 64 * 32768,
            ..Default::default()
        }];
        metrics.update_kernel(&[(key, counters)], &ops, |_| "fio".into(), &losses);
        // A second snapshot adds only the growth.
        let counters = CtxCounters {
            io_submit_calls: 5,
            io_getevents_calls: 2,
            ..Default::default()
        };
        ops[0].iocbs = 128;
        metrics.update_kernel(&[(key, counters)], &ops, |_| "fio".into(), &losses);
        let text = metrics.render().unwrap();
        for line in [
            r#"aio_trace_iocbs_total{comm="fio",api="aio",op="PREADV",dev=""} 3"#,
            r#"aio_trace_bytes_total{comm="fio",api="aio",op="PREADV",dev=""} 65536"#,
            r#"aio_trace_errors_total{comm="fio",api="aio",op="PREAD",dev=""} 1"#,
            r#"aio_trace_errors_total{comm="fio",api="aio",op="PREADV",dev=""} 1"#,
            r#"aio_trace_iocb_latency_seconds_count{comm="fio",api="aio",op="PREADV",dev=""} 2"#,
            r#"aio_trace_io_submit_calls_total{comm="fio"} 5"#,
            r#"aio_trace_io_getevents_calls_total{comm="fio"} 2"#,
            r#"aio_trace_submitted_iocbs_total{comm="fio",api="aio",op="PREADV"} 128"#,
            r#"aio_trace_submitted_bytes_total{comm="fio",api="aio",op="PREADV"} 2097152"#,
            "aio_trace_sample_every 64",
            r#"aio_trace_lost_total{cause="ring_full"} 2"#,
            r#"aio_trace_lost_total{cause="aged_out"} 0"#,
            "# TYPE aio_trace_iocb_segments histogram",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("pid="));
        let classic = to_classic_text(&text);
        assert!(classic.contains("# TYPE aio_trace_iocbs_total counter\n"));
        assert!(classic.contains("# HELP aio_trace_iocbs_total Iocbs"));
        assert!(classic.contains("# TYPE aio_trace_iocb_segments histogram\n"));
        assert!(!classic.contains("# EOF"));
    }

    /// io_uring's READV, the readv syscall and AIO's PWRITE (io_uring's
    /// READV by number) are three series: the api label keeps them apart,
    /// and an io_uring request taken from the CQ ring has its latency.
    #[test]
    fn the_api_label_keeps_each_interface_apart() {
        use aio_trace_common::{API_IO_URING, IORING_OP_READV, RECORD_SYSCALL, SYSCALL_READV};
        let metrics = Arc::new(Metrics::new());
        let mut sink = MetricsSink::new(
            metrics.clone(),
            Arc::default(),
            DevNames::new("/nonexistent"),
        );
        let uring = IocbRecord {
            api: API_IO_URING,
            reap_ns: 0,
            complete_ts: 31_000,
            ..record(IORING_OP_READV.into(), 8, 32768, 0)
        };
        sink.observe(&uring);
        sink.observe(&uring);
        sink.observe(&IocbRecord {
            kind: RECORD_SYSCALL,
            ..record(SYSCALL_READV, 8, 32768, 5_000)
        });
        sink.observe(&record(IORING_OP_READV.into(), 1, 4096, 5_000));
        let text = metrics.render().unwrap();
        for line in [
            r#"aio_trace_iocbs_total{comm="fio",api="io_uring",op="READV",dev=""} 2"#,
            r#"aio_trace_iocbs_total{comm="fio",api="sync",op="READV",dev=""} 1"#,
            r#"aio_trace_iocbs_total{comm="fio",api="aio",op="PWRITE",dev=""} 1"#,
            r#"aio_trace_iocb_latency_seconds_count{comm="fio",api="io_uring",op="READV",dev=""} 2"#,
            r#"aio_trace_iocb_latency_seconds_sum{comm="fio",api="io_uring",op="READV",dev=""} 0.00006"#,
            r#"aio_trace_iocb_segments_count{comm="fio",api="io_uring",op="READV",dev=""} 2"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    /// Each device is its own series under its name, maj:min is in
    /// device_info, and an iocb without a dispatch has an empty dev.
    #[test]
    fn the_dev_label_names_the_device() {
        use crate::blockdev::{encode, fake::FakeSysfs};
        let sysfs = FakeSysfs::new("prometheus");
        sysfs.disk("vda", "254:0");
        let metrics = Arc::new(Metrics::new());
        let mut sink =
            MetricsSink::new(metrics.clone(), Arc::default(), DevNames::new(&sysfs.root));
        let on = |dev: u32| IocbRecord {
            dev,
            dispatches: 1,
            bios: 1,
            ..record(7, 8, 32768, 50_000)
        };
        sink.observe(&on(encode(254, 0)));
        sink.observe(&on(encode(254, 0)));
        sink.observe(&on(encode(0, 45)));
        sink.observe(&record(7, 8, 32768, 50_000));
        let text = metrics.render().unwrap();
        for line in [
            r#"aio_trace_iocbs_total{comm="fio",api="aio",op="PREADV",dev="vda"} 2"#,
            r#"aio_trace_iocbs_total{comm="fio",api="aio",op="PREADV",dev="0:45"} 1"#,
            r#"aio_trace_iocbs_total{comm="fio",api="aio",op="PREADV",dev=""} 1"#,
            r#"aio_trace_iocb_bios_count{comm="fio",api="aio",op="PREADV",dev="vda"} 2"#,
            r#"aio_trace_device_info{dev="vda",maj_min="254:0"} 1"#,
            r#"aio_trace_device_info{dev="0:45",maj_min="0:45"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains(r#"aio_trace_device_info{dev="""#));
    }

    /// `--labels cgroup` puts each cgroup in its own series under its path
    /// (its id when it has none) and drops the comm label; records of one
    /// cgroup from two task names are one series.
    #[test]
    fn the_cgroup_label_is_opt_in_and_replaces_comm_when_chosen_alone() {
        use crate::cgroup::fake::FakeMount;
        let mount = FakeMount::new("prometheus");
        let db = mount.add("system.slice/db.scope");
        let metrics = Arc::new(Metrics::new());
        let labels = SeriesLabels {
            comm: false,
            cgroup: true,
        };
        let mut sink = MetricsSink::new(
            metrics.clone(),
            Arc::default(),
            DevNames::new("/nonexistent"),
        )
        .with_labels(labels, CgroupNames::new(Some(mount.root.clone())));
        let mut other_comm = record(7, 8, 32768, 5_000);
        other_comm.comm[..3].copy_from_slice(b"abc");
        for (r, cgroup) in [
            (record(7, 8, 32768, 5_000), db),
            (other_comm, db),
            (record(7, 8, 32768, 5_000), 987_654),
            (record(7, 8, 32768, 5_000), 0),
        ] {
            sink.observe(&IocbRecord { cgroup, ..r });
        }
        let text = metrics.render().unwrap();
        for line in [
            r#"aio_trace_iocbs_total{cgroup="/system.slice/db.scope",api="aio",op="PREADV",dev=""} 2"#,
            r#"aio_trace_iocbs_total{cgroup="987654",api="aio",op="PREADV",dev=""} 1"#,
            r#"aio_trace_iocbs_total{api="aio",op="PREADV",dev=""} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // The per-record series; the `submitted` ones always name the task.
        assert!(!text.contains("aio_trace_iocbs_total{comm="), "{text}");
    }

    #[test]
    fn the_full_tier_counts_submitted_iocbs_from_its_records() {
        let metrics = Arc::new(Metrics::new());
        let mut sink = MetricsSink::new(
            metrics.clone(),
            Arc::default(),
            DevNames::new("/nonexistent"),
        );
        sink.observe(&record(7, 8, 32768, 50_000));
        sink.observe(&record(7, 8, -5, 50_000));
        let mut rejected = record(7, 1025, -22, 0);
        rejected.flags = IOCB_REJECTED;
        sink.observe(&rejected);
        let text = metrics.render().unwrap();
        for line in [
            r#"aio_trace_submitted_iocbs_total{comm="fio",api="aio",op="PREADV"} 2"#,
            r#"aio_trace_submitted_bytes_total{comm="fio",api="aio",op="PREADV"} 65536"#,
            "aio_trace_sample_every 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
