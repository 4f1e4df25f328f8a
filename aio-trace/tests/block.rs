//! Root integration tests of the block-layer attribution: a file with a known
//! layout (preallocated, written, one extent) read and written with O_DIRECT,
//! and a raw loop device, checked iocb by iocb.

mod common;

use std::{os::unix::fs::MetadataExt, time::Duration};

use aio_trace::{model::IocbView, reader::Record};
use aio_trace_common::IocbRecord;
use common::{
    LoopDevice, Testee, ZramDevice, max_io_bytes, of_type, trace_records, trace_records_with,
    trace_run,
};

fn by_tag(records: &[Record], tag: u64) -> IocbRecord {
    records
        .iter()
        .find_map(|r| match r {
            Record::Iocb(r) if r.aio_data == tag => Some(*r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no record for iocb {tag}"))
}

/// submit ≤ dispatch ≤ first bio ≤ last request ≤ kernel completion ≤ reap,
/// and the stages add up to the latency (within 1 %).
fn assert_stages(r: &IocbRecord) {
    let times = [
        r.submit_ns,
        r.dispatch_ts,
        r.first_bio_ts,
        r.last_rq_ts,
        r.complete_ts,
        r.reap_ns,
    ];
    assert!(times.iter().all(|&t| t != 0), "every stage seen: {r:?}");
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "stages in order: {times:?}"
    );
    let stages: u64 = [
        r.dispatch_ns(),
        r.queue_ns(),
        r.device_ns(),
        r.end_io_ns(),
        r.reap_lag_ns(),
    ]
    .iter()
    .map(|s| s.expect("stage"))
    .sum();
    let latency = r.latency_ns().unwrap();
    assert!(
        stages.abs_diff(latency) * 100 <= latency,
        "stages {stages} vs latency {latency}"
    );
}

#[test]
fn bios_and_dispatches_per_iocb_on_a_known_layout() {
    let max = max_io_bytes();
    let testee = Testee::spawn_with_env("block", &[("AIO_TRACE_TEST_BIG", max.to_string())]);
    let (truth, records, _summaries, losses) = trace_records(testee, Duration::from_secs(30));
    let layout = of_type(&truth, "layout").next().unwrap();
    assert_eq!(
        layout["extents"], 1,
        "the test file must be one extent for exact bio counts"
    );

    let vectored = by_tag(&records, 1);
    assert_eq!((vectored.op().name(), vectored.segs), ("PREADV", 8));
    assert_eq!(
        (vectored.dispatches, vectored.bios),
        (1, 1),
        "one PREADV of 8 × 4 KiB: one dispatch, one bio"
    );
    assert!(vectored.device().is_some() && vectored.ino != 0);
    assert_stages(&vectored);

    let scalar: Vec<_> = (2..=9).map(|tag| by_tag(&records, tag)).collect();
    assert!(
        scalar
            .iter()
            .all(|r| r.op().name() == "PREAD" && r.dispatches == 1 && r.bios == 1),
        "{scalar:#?}"
    );
    assert_eq!(
        scalar.iter().map(|r| r.bios).sum::<u32>(),
        8,
        "8 PREADs of 4 KiB: 8 bios"
    );
    // Plugged together, their bios merge into fewer requests: each still gets
    // its device time from the request its bio completed with.
    scalar.iter().for_each(assert_stages);

    let big = by_tag(&records, 10);
    assert_eq!(big.bytes as usize, 2 * max);
    assert_eq!(big.dispatches, 1);
    assert!(
        big.bios > 1,
        "more than max_sectors_kb: more than one bio: {big:?}"
    );
    // The pieces that reach the device: bios, plus one more per split. None
    // may exceed max_sectors_kb, so there are at least ceil(bytes / max).
    let pieces = (big.bios + big.splits) as usize;
    assert!(
        pieces >= (big.bytes as usize).div_ceil(max),
        "{pieces} pieces for {} bytes: {big:?}",
        big.bytes
    );

    let write = by_tag(&records, 11);
    assert_eq!(write.op().name(), "PWRITEV");
    assert!(write.dispatches == 1 && write.bios >= 1, "{write:?}");
    assert_stages(&write);

    let syscall = records
        .iter()
        .find_map(|r| match r {
            Record::Syscall(r) => Some(*r),
            _ => None,
        })
        .expect("the preadv(2) record");
    let expected = of_type(&truth, "syscall").next().unwrap();
    assert_eq!(syscall.op().name(), "PREADV");
    assert_eq!(syscall.res, expected["res"].as_i64().unwrap());
    assert_eq!(
        (syscall.segs, syscall.bytes, syscall.offset),
        (8, 32768, 65536)
    );
    assert_eq!((syscall.dispatches, syscall.bios), (1, 1));
    assert!(syscall.latency_ns().unwrap() > 0 && syscall.device_ns().is_some());

    assert_eq!(losses.unattributed_bios, 0, "{losses:?}");
    assert_eq!(losses.unmatched_dispatches, 0, "{losses:?}");
}

/// `--no-block`: the raw tracepoint programs stay unattached, so the same
/// iocbs come back whole, with latency, but without dispatch or block data.
#[test]
fn without_block_attribution_records_have_no_block_data() {
    let max = max_io_bytes();
    let testee = Testee::spawn_with_env("block", &[("AIO_TRACE_TEST_BIG", max.to_string())]);
    let config = aio_trace::loader::TraceConfig {
        block: false,
        ..Default::default()
    };
    let (_truth, records, _summaries, losses) =
        trace_records_with(testee, Duration::from_secs(30), config);
    let iocbs: Vec<_> = (1..=11).map(|tag| by_tag(&records, tag)).collect();
    assert_eq!((iocbs[0].op().name(), iocbs[0].segs), ("PREADV", 8));
    for r in &iocbs {
        assert!(r.latency_ns().is_some(), "{r:?}");
        assert_eq!(
            (r.dispatches, r.bios, r.dev, r.dispatch_ts, r.complete_ts),
            (0, 0, 0, 0, 0),
            "{r:?}"
        );
    }
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Syscall(s) if s.bios == 0))
    );
    assert_eq!(losses.total(), 0, "{losses:?}");
    // Everything began after the tracer: nothing was in flight at its start.
    assert_eq!(losses.inflight_at_start, 0, "{losses:?}");
}

/// A raw block device has no filesystem dispatch: each bio is matched to the
/// iocb whose byte range holds its first sector.
#[test]
fn raw_device_bios_are_matched_by_sector() {
    let device = LoopDevice::new("raw");
    let testee = Testee::spawn_with_env("raw", &[("AIO_TRACE_TEST_DEVICE", device.device.clone())]);
    let (truth, records, _summaries, losses) = trace_records(testee, Duration::from_secs(30));
    assert_eq!(of_type(&truth, "iocb").count(), 5);
    for tag in 1..=5 {
        let r = by_tag(&records, tag);
        assert_eq!((r.dispatches, r.bios), (0, 1), "iocb {tag}: {r:?}");
        assert!(
            r.device().is_none(),
            "no filesystem dispatch on a raw device"
        );
        assert!(
            r.first_bio_ts >= r.submit_ns && r.last_rq_ts >= r.first_bio_ts,
            "{r:?}"
        );
        assert!(r.device_ns().is_some(), "{r:?}");
    }
    assert_eq!(by_tag(&records, 1).op().name(), "PREADV");
    assert_eq!(losses.unattributed_bios, 0, "{losses:?}");
}

/// The same where the iocbs, an iovec array and the pointer array are on
/// pages the process has not mapped at io_submit: each iocb is decoded at
/// its first bio instead, and gets its bio.
#[test]
fn raw_device_iocbs_in_memory_not_yet_mapped_get_their_bios() {
    let device = LoopDevice::new("raw-unmapped");
    let testee = Testee::spawn_with_env(
        "unmapped_iocbs_raw",
        &[("AIO_TRACE_TEST_DEVICE", device.device.clone())],
    );
    let (truth, records, _summaries, losses) = trace_records(testee, Duration::from_secs(30));
    for t in of_type(&truth, "iocb") {
        let r = by_tag(&records, t["tag"].as_u64().unwrap());
        assert_eq!(r.op().name(), t["op"], "{t} {r:?}");
        assert_eq!(r.requested_bytes(), t["bytes"].as_u64(), "{t} {r:?}");
        assert_eq!(r.result(), t["res"].as_i64(), "{t} {r:?}");
        assert_eq!((r.dispatches, r.bios), (0, 1), "{t} {r:?}");
    }
    assert_eq!(losses.total(), 0, "{losses:?}");
}

/// A bio larger than the device takes is split on its way down: every piece
/// stays with the iocb that caused it, and completes it.
#[test]
fn split_bios_stay_with_their_iocb() {
    let device = LoopDevice::new("split");
    device.limit_requests(4);
    let testee = Testee::spawn_with_env("raw", &[("AIO_TRACE_TEST_DEVICE", device.device.clone())]);
    let traced = trace_run(testee, Duration::from_secs(30), Default::default());
    let (records, losses) = (traced.records, traced.losses);
    let vectored = by_tag(&records, 1);
    assert_eq!((vectored.op().name(), vectored.bytes), ("PREADV", 32768));
    assert_eq!(
        (vectored.bios, vectored.splits),
        (1, 7),
        "one 32 KiB bio cut into 8 requests of 4 KiB: {vectored:?}"
    );
    assert!(
        vectored.last_rq_ts >= vectored.first_bio_ts && vectored.device_ns().is_some(),
        "{vectored:?}"
    );
    for tag in 2..=5 {
        let r = by_tag(&records, tag);
        assert_eq!((r.bios, r.splits), (1, 0), "iocb {tag}: {r:?}");
        assert!(r.device_ns().is_some(), "{r:?}");
    }
    assert_eq!(losses.unattributed_bios, 0, "{losses:?}");
    assert_eq!(
        traced.bio_owners, 0,
        "every piece's owner entry taken at its request's completion"
    );

    // The device's own counters (kept per CPU, summed at the end) saw at
    // least the testee's I/O: udev may have read the new device too.
    let rdev = std::fs::metadata(&device.device).unwrap().rdev();
    let dev = (libc::major(rdev) << 20) | libc::minor(rdev);
    let (_, counters) = traced
        .devices
        .iter()
        .find(|(d, _)| *d == dev)
        .unwrap_or_else(|| panic!("no counters for {}: {:?}", device.device, traced.devices));
    assert!(
        counters.bios >= 5 && counters.splits >= 7 && counters.requests >= 12,
        "5 bios, 7 splits, 12 requests at least: {counters:?}"
    );
    assert_eq!(
        counters.d2c_log2.iter().sum::<u64>(),
        counters.requests,
        "every timed request in the D2C histogram"
    );
}

/// On a bio-based device (zram) bios never become requests: each iocb's bio
/// ends in `block_bio_complete`, which gives it its device time.
#[test]
fn bios_on_a_bio_based_device_complete_their_iocb() {
    let Some(device) = ZramDevice::new() else {
        return;
    };
    let testee = Testee::spawn_with_env("raw", &[("AIO_TRACE_TEST_DEVICE", device.device.clone())]);
    let traced = trace_run(testee, Duration::from_secs(30), Default::default());
    let (records, losses) = (traced.records, traced.losses);
    assert_eq!(traced.bio_owners, 0, "every bio's entry taken at its end");
    for tag in 1..=5 {
        let r = by_tag(&records, tag);
        assert_eq!((r.dispatches, r.bios), (0, 1), "iocb {tag}: {r:?}");
        assert!(
            r.last_rq_ts >= r.first_bio_ts && r.first_bio_ts >= r.submit_ns,
            "{r:?}"
        );
        assert!(
            r.device_ns().is_some(),
            "the bio's end is the device's: {r:?}"
        );
    }
    assert_eq!(losses.unattributed_bios, 0, "{losses:?}");
}

/// A device whose set of the kernel's per-device table is full goes
/// uncounted and says so (`device_table_full`): loop devices are attached
/// until five, each with a new `diskseq`, fall in the same set of the table
/// (64 sets of 4), and each is read once from CPU 0, whose copy of the
/// per-CPU table holds the counters of bios queued there.
#[test]
fn a_device_beyond_a_full_set_of_the_device_table_is_counted_as_lost() {
    use aio_trace::loader::{TraceConfig, Tracer};
    use aio_trace_common::{DEV_STATS_ENTRIES, TABLE_WAYS, TableKey};

    let sets = DEV_STATS_ENTRIES / TABLE_WAYS;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    // Filtered to this process: no records, the device counters are kept
    // for every device whatever the filter.
    let config = TraceConfig {
        pids: vec![std::process::id()],
        ..TraceConfig::default()
    };
    let (tracer, _ring) = Tracer::start(&config).expect("load and attach the tracer");
    common::assert_only_absent_skipped(&tracer);

    let mut target = None;
    let mut read = 0;
    for _ in 0..5_000 {
        let device = LoopDevice::new("devtable");
        let name = device.device.trim_start_matches("/dev/");
        let seq: u64 = std::fs::read_to_string(format!("/sys/block/{name}/diskseq"))
            .expect("diskseq of a loop device")
            .trim()
            .parse()
            .unwrap();
        let set = seq.first_entry(sets);
        if *target.get_or_insert(set) != set {
            continue;
        }
        // CPU 0's copy of the set holds the four devices read before: the
        // fifth read must be the one that finds no room.
        let before = tracer.losses().device_table_full;
        let dd = std::process::Command::new("taskset")
            .args(["-c", "0", "dd", "of=/dev/null", "bs=4096", "count=1"])
            .args(["iflag=direct", &format!("if={}", device.device)])
            .output()
            .unwrap();
        assert!(dd.status.success(), "{dd:?}");
        read += 1;
        if read == TABLE_WAYS + 1 {
            let losses = tracer.losses();
            assert!(
                losses.device_table_full > before,
                "the fifth device in a set of four went uncounted silently: {losses:?}"
            );
            return;
        }
    }
    panic!("found no five loop devices in one set of the device table");
}
