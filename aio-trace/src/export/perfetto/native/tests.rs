//! The native writer's rules, read back through the same messages: tracks
//! described once before use, slices nested per track, one flow per iocb
//! to its block slice, a file readable when cut after any record, bounded
//! state. Its field numbers against Perfetto's published schema are the
//! root test's (`tests/perfetto.rs`, with Perfetto's own Python protos).

use std::collections::{HashMap, HashSet};

use aio_trace_common::{CTX_DESTROY, CtxRecord, IOCB_REJECTED, RECORD_CTX, RECORD_IOCB};

use super::*;
use crate::export::perfetto::protos::{self, DebugAnnotation};
use crate::{
    export::perfetto::counters::{MAX_PENDING, RATE_BIN_NS},
    model::LossCounts,
};

#[derive(Clone, PartialEq, prost::Message)]
struct Trace {
    #[prost(message, repeated, tag = "1")]
    packet: Vec<TracePacket>,
}

fn iocb(pid: u32, ctx: u64, submit: u64, reap: u64, tag: u64) -> IocbRecord {
    IocbRecord {
        kind: RECORD_IOCB,
        opcode: 7,
        pid,
        comm: *b"testee\0\0\0\0\0\0\0\0\0\0",
        ctx,
        segs: 8,
        bytes: 8 * 4096,
        res: 8 * 4096,
        aio_data: tag,
        submit_ns: submit,
        reap_ns: reap,
        ..Default::default()
    }
}

/// An iocb whose stages all exist and whose one bio reached device 254:0.
fn staged(pid: u32, ctx: u64, submit: u64, tag: u64) -> IocbRecord {
    let mut r = iocb(pid, ctx, submit, submit + 8_000, tag);
    r.dev = 254 << 20;
    r.dispatches = 1;
    r.bios = 1;
    r.dispatch_ts = submit + 1_000;
    r.first_bio_ts = submit + 1_500;
    r.last_rq_ts = submit + 6_000;
    r.complete_ts = submit + 6_500;
    r
}

fn writer<W: Write>(out: W) -> TraceWriter<W> {
    let clocks = Clocks {
        monotonic_ns: 1_000_000,
        boottime_ns: 2_000_000,
    };
    TraceWriter::new(out, clocks, DevNames::new("/nonexistent"))
}

fn finish<W: Write>(w: &mut TraceWriter<W>) {
    w.finish(&Closing {
        summaries: &[],
        devices: &[],
        losses: &LossCounts::default(),
    })
    .unwrap();
}

fn trace(records: &[IocbRecord]) -> Vec<u8> {
    let mut w = writer(Vec::new());
    for r in records {
        w.record(&Record::Iocb(*r)).unwrap();
    }
    finish(&mut w);
    w.into_inner()
}

/// What a trace holds, once its rules are checked.
#[derive(Debug, Default)]
struct Summary {
    /// Slices per category.
    slices: HashMap<String, usize>,
    instants: usize,
    /// (track name, ts, value) of every counter point, in file order.
    counters: Vec<(String, u64, f64)>,
    /// Track names, in the order described.
    tracks: Vec<String>,
    flows: usize,
}

/// Decodes `bytes` and checks: one sequence, the clock snapshot first, every
/// track described once with a parent described before it, every event on a
/// described track with a monotonic timestamp, slices nested per track in
/// time order (ties in file order, as the trace processor sorts), and every
/// flow from one iocb slice to one block slice.
fn check(bytes: &[u8]) -> Summary {
    let trace = Trace::decode(bytes).expect("a Trace");
    let mut summary = Summary::default();
    let mut described = HashMap::new();
    // (track, ts, file order, begin category or None for an end)
    let mut events: Vec<(u64, u64, usize, Option<String>)> = Vec::new();
    let mut flow_starts: HashMap<u64, usize> = HashMap::new();
    let mut flow_ends: HashMap<u64, usize> = HashMap::new();
    for (i, p) in trace.packet.iter().enumerate() {
        assert_eq!(p.trusted_packet_sequence_id, Some(SEQUENCE));
        match p.data.as_ref().expect("data") {
            Data::ClockSnapshot(c) => {
                assert_eq!(i, 0, "the clock snapshot is first");
                assert_eq!(p.sequence_flags, Some(SEQ_INCREMENTAL_STATE_CLEARED));
                assert_eq!(c.primary_trace_clock, Some(CLOCK_MONOTONIC));
            }
            Data::TrackDescriptor(t) => {
                let uuid = t.uuid.expect("a uuid");
                assert!(uuid != 0);
                if let Some(parent) = t.parent_uuid {
                    assert!(described.contains_key(&parent), "parent of {t:?}");
                }
                assert!(
                    described.insert(uuid, t.clone()).is_none(),
                    "{uuid} described twice"
                );
                summary.tracks.push(t.name.clone().unwrap_or_default());
            }
            Data::TrackEvent(e) => {
                let track = e.track_uuid.expect("a track");
                assert!(described.contains_key(&track), "{e:?} before its track");
                assert_eq!(p.timestamp_clock_id, Some(CLOCK_MONOTONIC));
                let ts = p.timestamp.expect("a timestamp");
                let category = e.categories.first().cloned().unwrap_or_default();
                match e.r#type {
                    Some(t) if t == EventType::SliceBegin as i32 => {
                        for &f in &e.flow_ids {
                            assert_eq!(category, "iocb");
                            *flow_starts.entry(f).or_default() += 1;
                        }
                        for &f in &e.terminating_flow_ids {
                            assert_eq!(category, "block");
                            *flow_ends.entry(f).or_default() += 1;
                        }
                        *summary.slices.entry(category.clone()).or_default() += 1;
                        events.push((track, ts, i, Some(category)));
                    }
                    Some(t) if t == EventType::SliceEnd as i32 => {
                        events.push((track, ts, i, None));
                    }
                    Some(t) if t == EventType::Instant as i32 => summary.instants += 1,
                    Some(t) if t == EventType::Counter as i32 => {
                        let counter = &described[&track];
                        assert!(counter.counter.is_some(), "{counter:?} is no counter track");
                        let value = match (e.counter_value, e.double_counter_value) {
                            (Some(v), None) => v as f64,
                            (None, Some(v)) => v,
                            other => panic!("counter values {other:?}"),
                        };
                        assert!(value >= 0.0, "{e:?}");
                        let name = counter.name.clone().unwrap();
                        summary.counters.push((name, ts, value));
                    }
                    other => panic!("event type {other:?}"),
                }
            }
        }
    }
    events.sort_by_key(|&(track, ts, i, _)| (track, ts, i));
    let mut open: HashMap<u64, Vec<String>> = HashMap::new();
    for (track, _, _, begin) in events {
        let stack = open.entry(track).or_default();
        match begin {
            Some(category) => {
                if category == "stage" {
                    assert_eq!(stack.last().map(String::as_str), Some("iocb"));
                } else {
                    assert!(stack.is_empty(), "{category} inside {stack:?}");
                }
                stack.push(category);
            }
            None => {
                stack.pop().expect("an end without its begin");
            }
        }
    }
    assert!(open.values().all(Vec::is_empty), "unended: {open:?}");
    assert_eq!(
        flow_starts.keys().collect::<HashSet<_>>(),
        flow_ends.keys().collect::<HashSet<_>>()
    );
    assert!(
        flow_starts
            .values()
            .chain(flow_ends.values())
            .all(|&n| n == 1)
    );
    summary.flows = flow_starts.len();
    summary
}

/// Reap order, not submit order, over two contexts, with a rejected iocb
/// and one that was never reaped.
fn out_of_order() -> [IocbRecord; 6] {
    let mut rejected = iocb(1, 10, 4_000, 0, 9);
    rejected.flags = IOCB_REJECTED;
    let mut unreaped = iocb(2, 20, 3_000, 0, 5);
    unreaped.complete_ts = 3_800;
    [
        iocb(1, 10, 5_000, 6_000, 2),
        staged(1, 10, 1_000, 1),
        iocb(1, 11, 1_500, 8_000, 3),
        rejected,
        unreaped,
        staged(1, 10, 2_000, 4),
    ]
}

#[test]
fn slices_nest_and_flows_join_each_iocb_to_its_bios_out_of_reap_order() {
    let s = check(&trace(&out_of_order()));
    assert_eq!(s.slices["iocb"], 5, "{s:?}");
    assert_eq!(s.slices["block"], 2, "{s:?}");
    // Each staged iocb: dispatch, queue, device, end_io, reap lag.
    assert_eq!(s.slices["stage"], 10, "{s:?}");
    assert_eq!(s.flows, 2);
    assert_eq!(s.instants, 2, "the rejected iocb and the losses");
    assert_eq!(
        s.tracks,
        [
            "testee (1)",
            "aio ctx 0xa",
            "lane 1",
            "lane 2",
            "device 254:0",
            "lane 1",
            "aio ctx 0xb",
            "lane 1",
            "testee (2)",
            "aio ctx 0x14",
            "lane 1",
            "lane 3",
            "lane 2",
            // Written at the end: the counters run 100 ms behind the records.
            "in-flight iocbs",
            "MB/s",
            "in-flight iocbs",
            "MB/s",
            "aio-trace",
        ],
        "{s:?}"
    );
}

#[test]
fn every_record_field_is_an_annotation_of_its_slice() {
    let record = crate::model::sample_record();
    let bytes = trace(&[record]);
    let trace = Trace::decode(&bytes[..]).unwrap();
    let begin = trace
        .packet
        .iter()
        .find_map(|p| match &p.data {
            Some(Data::TrackEvent(e)) if e.categories == ["iocb"] => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    let names: HashSet<_> = begin
        .debug_annotations
        .iter()
        .map(|a| a.name.clone().unwrap())
        .collect();
    let mut cgroups = crate::cgroup::CgroupNames::system();
    let path = cgroups.path(record.cgroup).map(|p| &**p);
    let json = serde_json::to_value(IocbJson::new(&record).with_cgroup_path(path)).unwrap();
    for (field, value) in json.as_object().unwrap() {
        assert_eq!(names.contains(field), !value.is_null(), "{field}");
    }
}

/// Cut after any record, the file is a whole trace of the records before.
#[test]
fn a_trace_cut_after_any_record_is_whole() {
    let mut w = writer(Vec::new());
    let mut cuts = Vec::new();
    for r in out_of_order() {
        w.record(&Record::Iocb(r)).unwrap();
        cuts.push(w.out.len());
    }
    finish(&mut w);
    let bytes = w.into_inner();
    for cut in cuts {
        check(&bytes[..cut]);
    }
}

/// The slice packets, encoded without messages, decode through the
/// messages to what they say: the field numbers agree.
#[test]
fn slice_packets_decode_as_the_messages() {
    let mut w = writer(Vec::new());
    let mut fields = Vec::new();
    annotations::write(
        &BlockFields {
            pid: 7,
            ctx: 1 << 40,
            bios: 3,
            splits: 1,
            merges: 0,
        },
        &mut fields,
    )
    .unwrap();
    let event = Slice {
        flow: Some(5),
        terminating_flow: Some(u64::MAX),
        ..Slice::new(EventType::SliceBegin, 300, "block", "PREADV 8×4K")
    };
    w.slice_event(1 << 50, event, &fields);
    let trace = Trace::decode(&w.buf[..]).unwrap();
    let uint = |name: &str, v: u64| DebugAnnotation {
        name: Some(name.to_owned()),
        value: Some(protos::Value::Uint(v)),
    };
    assert_eq!(
        trace.packet,
        [packet(
            Some(1 << 50),
            Data::TrackEvent(TrackEvent {
                categories: vec!["block".to_owned()],
                name: Some("PREADV 8×4K".to_owned()),
                r#type: Some(EventType::SliceBegin as i32),
                track_uuid: Some(300),
                debug_annotations: vec![
                    uint("pid", 7),
                    uint("ctx", 1 << 40),
                    uint("bios", 3),
                    uint("splits", 1),
                    uint("merges", 0),
                ],
                flow_ids: vec![5],
                terminating_flow_ids: vec![u64::MAX],
                ..Default::default()
            })
        )]
    );
}

/// Perfetto's protos are proto2: repeated scalars unpacked, so each flow id
/// is its own field 47 of wire type 1 (fixed64): key 0xf9 0x02.
#[test]
fn flow_ids_are_unpacked_fixed64() {
    let bytes = trace(&[staged(1, 10, 1_000, 1)]);
    let key = [0xf9, 0x02];
    let at = bytes.windows(2).position(|w| w == key).expect("a flow id");
    assert_eq!(&bytes[at + 2..at + 10], &1u64.to_le_bytes());
    // Terminating: field 48, wire type 1: key 0x81 0x03.
    assert!(bytes.windows(2).any(|w| w == [0x81, 0x03]));
}

/// More in flight than a context has lanes: the rest get tracks of their
/// own, and every track still nests.
#[test]
fn a_context_with_more_in_flight_than_lanes_overflows_onto_tracks_of_their_own() {
    let records: Vec<_> = (0..MAX_LANES as u64 + 10)
        .map(|i| staged(1, 10, 1_000 + i, i))
        .collect();
    let mut w = writer(Vec::new());
    for r in &records {
        w.record(&Record::Iocb(*r)).unwrap();
    }
    let (lanes, _, _, _) = w.retained();
    assert!(lanes <= 2 * (MAX_LANES + 1), "{lanes}");
    finish(&mut w);
    let s = check(&w.into_inner());
    assert_eq!(s.slices["iocb"], records.len());
    assert_eq!(s.slices["block"], records.len());
    assert_eq!(s.flows, records.len());
    assert_eq!(s.tracks.iter().filter(|t| *t == "overflow").count(), 20);
}

#[test]
fn iocbs_in_turn_share_a_lane() {
    let records: Vec<_> = (0..100).map(|i| staged(1, 10, i * 10_000, i)).collect();
    let s = check(&trace(&records));
    assert_eq!(s.tracks.iter().filter(|t| t.starts_with("lane")).count(), 2);
}

/// 200k records at about 33 in flight per context, out of submit order,
/// with slow outliers: the writer holds lanes, not records.
#[test]
fn memory_stays_bounded_over_200k_records() {
    let mut w = writer(io::sink());
    let mut most = (0, 0, 0, 0);
    let mut deliver = |w: &mut TraceWriter<io::Sink>, end: u64, i: u64| {
        let mut r = staged(1000 + (i % 4) as u32, i % 4, i * 10_000, i);
        r.reap_ns = end;
        w.record(&Record::Iocb(r)).unwrap();
        if i.is_multiple_of(64) {
            w.flush().unwrap();
        }
        let (lanes, processes, pending, buf) = w.retained();
        most = (
            most.0.max(lanes),
            most.1.max(processes),
            most.2.max(pending),
            most.3.max(buf),
        );
    };
    crate::export::perfetto::in_reap_order(|end, i| deliver(&mut w, end, i));
    let (lanes, processes, pending, buf) = most;
    // 4 contexts at about 33 in flight each plus the outliers, one device.
    assert!(lanes <= 5 * 64, "{lanes} lanes");
    assert!(processes <= 4, "{processes} processes");
    assert!(pending <= MAX_PENDING, "{pending} counter changes held");
    assert!(buf <= 2 * SPILL, "a {buf}-byte packet buffer");
}

#[test]
fn destroyed_contexts_give_their_lanes_back() {
    let mut w = writer(Vec::new());
    w.record(&Record::Iocb(iocb(1, 10, 1_000, 2_000, 1)))
        .unwrap();
    w.record(&Record::Iocb(iocb(2, 20, 1_000, 2_000, 2)))
        .unwrap();
    let ctx = |pid, ctx, event| {
        Record::Ctx(CtxRecord {
            kind: RECORD_CTX,
            event,
            pid,
            ctx,
            ..Default::default()
        })
    };
    w.record(&ctx(1, 10, CTX_DESTROY)).unwrap();
    w.record(&ctx(2, 0, aio_trace_common::CTX_EXIT)).unwrap();
    w.flush().unwrap();
    assert!(w.contexts.is_empty());
    assert_eq!(w.processes.keys().collect::<Vec<_>>(), [&1]);
    // The pid comes back: a new process track, described anew.
    w.record(&Record::Iocb(iocb(2, 20, 3_000, 4_000, 3)))
        .unwrap();
    finish(&mut w);
    let s = check(&w.into_inner());
    assert_eq!(
        s.tracks.iter().filter(|t| *t == "testee (2)").count(),
        2,
        "{s:?}"
    );
}

#[test]
fn an_empty_trace_is_the_clock_and_the_losses() {
    let s = check(&trace(&[]));
    assert_eq!(s.instants, 1);
    assert_eq!(s.tracks, ["aio-trace"]);
}

/// The in-flight counter and the MB/s bins come out as if the records had
/// been sorted, whatever order they arrive in, on counter tracks.
#[test]
fn counters_follow_time_not_arrival() {
    let mut slow = staged(1, 10, 1_000, 1);
    slow.reap_ns = 9_000;
    let s = check(&trace(&[
        iocb(1, 10, 5_000, 6_000, 2),
        slow,
        iocb(1, 11, 1_500, 8_000, 3),
    ]));
    let points = |name: &str| -> Vec<(u64, f64)> {
        s.counters
            .iter()
            .filter(|c| c.0 == name)
            .map(|c| (c.1, c.2))
            .collect()
    };
    assert_eq!(
        points("in-flight iocbs"),
        [
            (1_000, 1.0),
            (1_500, 2.0),
            (5_000, 3.0),
            (6_000, 2.0),
            (8_000, 1.0),
            (9_000, 0.0)
        ]
    );
    // 3 × 32K transferred, all in the first 10 ms bin: 9.8304 MB/s.
    let rates = points("MB/s");
    assert_eq!(rates.len(), 2, "{rates:?}");
    assert!((rates[0].1 - 9.8304).abs() < 1e-9, "{rates:?}");
    assert_eq!(rates[1], (RATE_BIN_NS, 0.0));
}
