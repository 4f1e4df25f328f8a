//! Root integration tests of the light tier (`--sample N`): the kernel's
//! per-opcode counts are exact against the testee's ground truth and equal
//! to a full trace of the same run, the iocbs of its sampling windows each
//! get a whole record, and their latencies agree with a full trace's.

mod common;

use std::{collections::BTreeMap, time::Duration};

use aio_trace::{
    loader::TraceConfig,
    model::{Api, IocbView, Log2Hist, OpCounts},
};
use aio_trace_common::{IOCB_REJECTED, IocbRecord, SEGS_BUCKETS, segs_bucket};
use common::{Collect, Testee, TracedRun, of_type, trace_run};
use serde_json::Value;

const SAMPLE: u64 = 64;

/// Held by each test: they run one at a time, so that one's I/O does not
/// move the device latency another compares (cargo runs a file's tests on
/// threads at once).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one opcode's iocbs add up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Totals {
    iocbs: u64,
    bytes: u64,
    segments: u64,
    segs_log2: [u64; SEGS_BUCKETS],
}

impl Totals {
    fn add(&mut self, segs: u64, bytes: u64) {
        self.iocbs += 1;
        self.bytes += bytes;
        self.segments += segs;
        self.segs_log2[segs_bucket(segs.min(u64::from(u32::MAX)) as u32)] += 1;
    }
}

/// The kernel's counts of AIO iocbs by opcode name, over every context of the run.
fn kernel_totals(ops: &[OpCounts]) -> BTreeMap<String, Totals> {
    let mut by_op: BTreeMap<String, Totals> = BTreeMap::new();
    for c in ops.iter().filter(|c| c.api == Api::Aio) {
        let name = aio_trace::model::Op::new(c.api, c.opcode).name().to_owned();
        let t = by_op.entry(name).or_default();
        t.iocbs += c.iocbs;
        t.bytes += c.bytes;
        t.segments += c.segments;
        for (sum, n) in t.segs_log2.iter_mut().zip(c.segs_log2) {
            *sum += n;
        }
    }
    by_op.retain(|_, t| *t != Totals::default());
    by_op
}

/// The accepted iocbs of a full trace's records, by opcode name.
fn record_totals(records: &[IocbRecord]) -> BTreeMap<String, Totals> {
    let mut by_op: BTreeMap<String, Totals> = BTreeMap::new();
    for r in records.iter().filter(|r| r.flags & IOCB_REJECTED == 0) {
        by_op
            .entry(r.op().name().to_owned())
            .or_default()
            .add(u64::from(r.segs), r.bytes);
    }
    by_op
}

/// The iocbs the testee says the kernel accepted (it reaped them), by opcode name.
fn truth_totals(truth: &[Value]) -> BTreeMap<String, Totals> {
    let mut by_op: BTreeMap<String, Totals> = BTreeMap::new();
    for line in of_type(truth, "iocb").filter(|l| l["reaped"] == true) {
        by_op
            .entry(line["op"].as_str().unwrap().to_owned())
            .or_default()
            .add(
                line["segs"].as_u64().unwrap(),
                line["bytes"].as_u64().unwrap_or(0),
            );
    }
    by_op
}

fn traced(scenario: &str, sample_every: u64) -> TracedRun {
    trace_run(
        Testee::spawn(scenario),
        Duration::from_secs(30),
        TraceConfig {
            sample_every,
            ..TraceConfig::default()
        },
    )
}

fn iocbs(run: &TracedRun) -> Vec<IocbRecord> {
    run.records
        .iter()
        .filter_map(|r| match r {
            aio_trace::reader::Record::Iocb(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// Every opcode, segment count and size of the basic scenario, a refused
/// 1,025-segment PREADV among them: counted exactly when 1 in 64 is traced.
#[test]
fn light_counts_are_exact_and_match_a_full_trace() {
    let _serial = serial();
    let light = traced("basic", SAMPLE);
    let full = traced("basic", 1);
    let expected = truth_totals(&light.truth);
    assert!(expected.len() >= 5, "{expected:?}");
    assert_eq!(
        kernel_totals(&light.ops),
        expected,
        "light, against the truth"
    );
    assert_eq!(truth_totals(&full.truth), expected, "the two runs");
    assert!(
        full.ops.is_empty(),
        "the full tier counts from its records, not in the kernel: {:?}",
        full.ops
    );
    assert_eq!(
        record_totals(&iocbs(&full)),
        expected,
        "full, from its records"
    );
    let truth_calls = of_type(&light.truth, "calls").next().unwrap();
    let light_calls = &light.contexts[0];
    assert_eq!(
        light_calls.io_submit_calls,
        truth_calls["io_submit_calls"].as_u64().unwrap()
    );
    assert_eq!(
        light_calls.events_reaped,
        truth_calls["events_reaped"].as_u64().unwrap()
    );
    let failed = of_type(&light.truth, "iocb")
        .filter(|l| l["reaped"] == true && l["res"].as_i64().unwrap() < 0)
        .count() as u64;
    assert_eq!(light.contexts[0].events_failed, failed);
    assert_eq!(light.losses.total(), 0, "{:?}", light.losses);
}

/// The synchronous vectored syscall of the block scenario (a PREADV of 8
/// segments) is counted in the light tier, against the process.
#[test]
fn light_counts_synchronous_vectored_syscalls() {
    let _serial = serial();
    let light = traced("block", SAMPLE);
    let truth: Vec<_> = of_type(&light.truth, "syscall").collect();
    assert_eq!(truth.len(), 1, "{truth:?}");
    let sync: Vec<_> = light.ops.iter().filter(|c| c.api == Api::Sync).collect();
    assert_eq!(sync.len(), 1, "{:?}", light.ops);
    let c = sync[0];
    let mut segs_log2 = [0; SEGS_BUCKETS];
    segs_log2[segs_bucket(8)] = 1;
    assert_eq!(
        (
            aio_trace::model::Op::new(c.api, c.opcode).name(),
            c.ctx,
            c.iocbs,
            c.bytes,
            c.segments,
            c.segs_log2,
            c.failed
        ),
        (
            truth[0]["op"].as_str().unwrap(),
            0,
            1,
            truth[0]["bytes"].as_u64().unwrap(),
            8,
            segs_log2,
            0
        )
    );
    assert_eq!(light.losses.total(), 0, "{:?}", light.losses);
}

/// 16,384 iocbs of the built-in workload: exact counts, the iocbs of its
/// sampling windows each whole, the others only counted. The run lasts a
/// few hundred milliseconds: at 1 in 8 (a window every 80 ms) several
/// windows fall in it whenever it starts.
#[test]
fn light_samples_whole_records_of_its_windows() {
    let _serial = serial();
    let scenario = "workload-scalar-long";
    let light = traced(scenario, 8);
    let result = of_type(&light.truth, "workload").next().unwrap();
    let (total, bytes) = (
        result["iocbs"].as_u64().unwrap(),
        result["bytes"].as_u64().unwrap(),
    );
    let counted = kernel_totals(&light.ops);
    assert_eq!(counted.values().map(|t| t.iocbs).sum::<u64>(), total);
    assert_eq!(counted.values().map(|t| t.bytes).sum::<u64>(), bytes);
    let mut one_segment = [0u64; SEGS_BUCKETS];
    one_segment[Log2Hist::bucket_of(1)] = total;
    let mut segs = [0u64; SEGS_BUCKETS];
    for t in counted.values() {
        for (sum, n) in segs.iter_mut().zip(t.segs_log2) {
            *sum += n;
        }
    }
    assert_eq!(segs, one_segment);

    // The same seed makes the same reads and writes: a full trace's records
    // add up to the light trace's counts, opcode by opcode.
    let full = traced(scenario, 1);
    assert_eq!(record_totals(&iocbs(&full)), counted);

    let sampled = iocbs(&light);
    let n = sampled.len() as u64;
    assert!(
        n > 0 && n < total / 2,
        "{n} sampled records of {total} iocbs: a window's worth"
    );
    for r in &sampled {
        assert!(
            r.dispatches >= 1
                && r.bios >= 1
                && r.last_rq_ts != 0
                && r.reap_ns > r.submit_ns
                && r.res == r.bytes as i64,
            "a sampled record is whole: {r:?}"
        );
    }
    // The kernel now and then runs no tracing program for a completion
    // (`iomap_dio_complete` short of `iomap_dio_rw_begin` in `bpftool prog`,
    // ~1 in 10,000, bpftrace alike; docs/record.md): such a record has its
    // device time and reap but no kernel completion. Rare, not the rule.
    let unseen = sampled.iter().filter(|r| r.complete_ts == 0).count() as u64;
    assert!(
        unseen * 1_000 <= n,
        "{unseen} of {n} sampled records without their kernel completion"
    );
    assert_eq!(light.losses.total(), 0, "{:?}", light.losses);
    assert_eq!(full.losses.total(), 0, "{:?}", full.losses);
}

/// The median submit-to-completion latency of `records`, in ns.
fn median_latency(records: &[IocbRecord]) -> u64 {
    let mut ns: Vec<u64> = records
        .iter()
        .filter(|r| r.complete_ts > r.submit_ns)
        .map(|r| r.complete_ts - r.submit_ns)
        .collect();
    assert!(!ns.is_empty(), "no completed records");
    ns.sort_unstable();
    ns[ns.len() / 2]
}

/// A steady workload (3 s of 4 KiB random reads at iodepth 4): the median
/// latency of the light tier's sampled iocbs is the full tier's of runs of
/// the same workload, within 10 %. The light run sits between two full
/// runs and is held against their mean, so that the device's drift over
/// the three cancels; the device's own noise between runs can still exceed
/// 10 %, so a triple out of bounds is run again once, and both are
/// reported.
#[test]
fn sampled_latency_agrees_with_a_full_trace_at_p50() {
    let _serial = serial();
    let mut ratios = Vec::new();
    for _ in 0..2 {
        let before = median_latency(&iocbs(&traced("workload-steady", 1)));
        let light = traced("workload-steady", SAMPLE);
        let after = median_latency(&iocbs(&traced("workload-steady", 1)));
        let sampled = iocbs(&light);
        let total = of_type(&light.truth, "workload").next().unwrap()["iocbs"]
            .as_u64()
            .unwrap();
        assert!(
            (sampled.len() as u64) < total / 8 && sampled.len() >= 100,
            "{} sampled of {total}: a few windows' worth",
            sampled.len()
        );
        let p50 = median_latency(&sampled);
        let full = (before + after) as f64 / 2.0;
        let ratio = p50 as f64 / full;
        println!(
            "p50: light {p50} ns (n={}), full {before} and {after} ns: {ratio:.3}",
            sampled.len()
        );
        ratios.push(ratio);
        if (0.9..=1.1).contains(&ratio) {
            return;
        }
    }
    panic!("sampled p50 / full p50 out of 10 % twice: {ratios:?}");
}

/// `--budget`: a budget far below what counting alone costs doubles N about
/// once a second, from `--sample 2`, while the counts stay exact.
#[test]
fn a_budget_below_the_cost_raises_n_and_counts_stay_exact() {
    let _serial = serial();
    let testee = Testee::spawn("workload-steady");
    let config = TraceConfig {
        pids: vec![testee.pid()],
        sample_every: 2,
        budget: Some(0.000_01),
        ..TraceConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (truth, every, ops) = runtime.block_on(async move {
        let (tracer, ring) = aio_trace::loader::Tracer::start(&config).unwrap();
        let mut session =
            aio_trace::session::Session::new(tracer, ring, Duration::from_secs(30)).unwrap();
        let every = session.sample_every().expect("a light session");
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (truth_tx, truth_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            truth_tx.send(testee.go()).unwrap();
            let _ = done_tx.send(());
        });
        session
            .run(&mut Collect::default(), async {
                let _ = done_rx.await;
            })
            .await
            .unwrap();
        (
            truth_rx.recv().unwrap(),
            every.load(std::sync::atomic::Ordering::Relaxed),
            session.tracer.op_counts(),
        )
    });
    assert!(every >= 4, "N stayed at {every} over a 3 s run");
    let total = of_type(&truth, "workload").next().unwrap()["iocbs"]
        .as_u64()
        .unwrap();
    assert_eq!(
        kernel_totals(&ops).values().map(|t| t.iocbs).sum::<u64>(),
        total
    );
}
