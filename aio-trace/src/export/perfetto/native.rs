//! Perfetto's native trace: `TracePacket`s of TrackEvents, written as the
//! records arrive.
//!
//! A trace file is the `Trace` message, `repeated TracePacket packet = 1`:
//! each packet is that field, length-delimited, so the file is packets
//! concatenated, each written whole with its record, and a file cut after
//! any record is a trace of the records before. The trace processor sorts
//! events by time itself, which is what lets records be written in reap
//! order. All packets are on one sequence (`trusted_packet_sequence_id`), and
//! none needs incremental state: names and categories are inline.
//!
//! The first packet is a clock snapshot (CLOCK_MONOTONIC, the records'
//! clock, and CLOCK_BOOTTIME, Perfetto's default) that makes monotonic the
//! trace's clock; every event says its timestamp is monotonic.
//!
//! Tracks, each described once by a `TrackDescriptor` before its first
//! event, with a uuid of its own and the uuid of a parent described before:
//!
//! - a process track (`ProcessDescriptor`: pid and comm) per traced process;
//! - under it, a track per AIO context ("aio ctx 0xa"), io_uring ring
//!   ("io_uring ring 0xffff…") and, for its vectored syscalls, "vectored
//!   syscalls";
//! - under it too, counter tracks "in-flight iocbs" and "MB/s" (per 10 ms),
//!   computed in time order 100 ms behind the records as in the JSON
//!   writer (`counters.rs`);
//! - a track per block device ("vda 254:0"), at the top level.
//!
//! Iocbs of a context overlap, and slices on one track must nest, so each
//! context and device has lanes, child tracks ("lane 1", "lane 2"…): a lane
//! takes a slice only when the slice starts after everything already on it
//! has ended, as in the JSON writer. Past `MAX_LANES`, a slice gets a track
//! of its own ("overflow", the same name each time, which the UI merges),
//! described and forgotten.
//!
//! Each iocb or io_uring request is a slice ("iocb") on a lane of its
//! context from submit to reap (or to the kernel completion when nothing
//! reaped it), with every record field as a debug annotation and its stages
//! ("stage") nested in it. When its bios reached a device, a slice ("block")
//! on a lane of the device spans them, first bio queued to last request
//! completed, and a flow joins the iocb's slice to it: the iocb's begin
//! carries the flow id in `flow_ids`, the block slice's begin ends it in
//! `terminating_flow_ids`. A rejected iocb is an instant on its process's
//! track. The normal end adds the loss counters as an instant on a track of
//! its own ("aio-trace").
//!
//! Descriptors, counters and the clock snapshot are built as the messages
//! of `protos.rs`; the dozen slice packets of each record and its
//! annotations are encoded straight into the buffer with prost's encoding
//! functions and the same field numbers (`protos::field`, checked by a unit
//! test decoding them back through the messages), which about halves the
//! writer's time per record.

use std::{
    collections::HashMap,
    convert::Infallible,
    io::{self, Write},
};

use aio_trace_common::{CTX_DESTROY, CTX_EXIT, IocbRecord};
use prost::Message as _;

use super::{
    STAGES,
    counters::{Counters, Point},
    free_lane,
    protos::{
        CHILD_ORDERING_EXPLICIT, CLOCK_BOOTTIME, CLOCK_MONOTONIC, Clock, ClockSnapshot,
        CounterDescriptor, Data, EventType, ProcessDescriptor, SEQ_INCREMENTAL_STATE_CLEARED,
        TRACE_PACKET_FIELD, TracePacket, TrackDescriptor, TrackEvent, field,
    },
    slice_end, slice_name, stages,
};
use crate::{
    blockdev::DevNames,
    cgroup::CgroupNames,
    clock,
    export::{Closing, Exporter},
    model::{Api, IocbJson, IocbView, comm_str, dev_name},
    reader::Record,
    session::Sink,
};

/// The one packet sequence of the file.
const SEQUENCE: u32 = 1;

/// The most lanes one context or device gets (as in the JSON writer): past
/// it, each slice gets a track of its own.
const MAX_LANES: usize = 1024;

/// The packet buffer is written out once it holds this much.
const SPILL: usize = 64 * 1024;

/// The most processes remembered: past it the map starts over, and a process
/// seen again gets a new track (its earlier one stays described).
const MAX_PROCESSES: usize = 1 << 16;

/// CLOCK_MONOTONIC and CLOCK_BOOTTIME read at one moment, which tells the
/// trace processor how the records' clock maps to its default one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clocks {
    pub monotonic_ns: u64,
    pub boottime_ns: u64,
}

impl Clocks {
    /// This machine's clocks, now.
    pub fn now() -> Self {
        Self {
            monotonic_ns: clock::monotonic_ns(),
            boottime_ns: clock::boottime_ns(),
        }
    }
}

/// A lane: its track, and when the last slice on it ends.
#[derive(Clone, Copy, Debug)]
struct Lane {
    uuid: u64,
    busy_until: u64,
}

/// A context's or a device's track and its lanes.
#[derive(Debug)]
struct Group {
    uuid: u64,
    lanes: Vec<Lane>,
}

/// A process's counter tracks, described at its first point.
#[derive(Clone, Copy, Debug)]
struct CounterTracks {
    inflight: u64,
    rate: u64,
}

/// (pid, ctx, api), as in the JSON writer.
type CtxKey = (u32, u64, Api);

pub struct TraceWriter<W: Write> {
    out: W,
    /// The packets of one record, encoded here and written at once.
    buf: Vec<u8>,
    clocks: Clocks,
    /// The clock snapshot written.
    started: bool,
    next_uuid: u64,
    next_flow: u64,
    /// pid → process track.
    processes: HashMap<u32, u64>,
    /// pid → track of a process that exited, until its counters are written.
    exited: HashMap<u32, u64>,
    contexts: HashMap<CtxKey, Group>,
    devices: HashMap<u32, Group>,
    dev_names: DevNames,
    /// Names the records' cgroups in their annotations.
    cgroups: CgroupNames,
    /// The encoded annotations of one record.
    fields: Vec<u8>,
    /// Scratch for the counter points of one record.
    points: Vec<Point>,
    /// Contexts destroyed in the current batch; their lanes go at its end,
    /// after the iocbs reclaimed from them are written.
    destroyed: Vec<(u32, u64)>,
    counters: Counters,
    /// pid → its counter tracks, while its counters hold anything.
    counter_tracks: HashMap<u32, CounterTracks>,
}

fn packet(ts: Option<u64>, data: Data) -> TracePacket {
    TracePacket {
        timestamp: ts,
        timestamp_clock_id: ts.map(|_| CLOCK_MONOTONIC),
        trusted_packet_sequence_id: Some(SEQUENCE),
        sequence_flags: None,
        data: Some(data),
    }
}

/// Appends varint `v`: in one extend, where prost's `encode_varint` writes
/// a byte at a time through `BufMut`, which led the writer's profile.
fn put_varint(mut v: u64, buf: &mut Vec<u8>) {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        bytes[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    buf.extend_from_slice(&bytes[..=n]);
}

/// Appends a field's key.
fn put_key(tag: u32, wire_type: prost::encoding::WireType, buf: &mut Vec<u8>) {
    put_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

/// A sink for the counter points released, to write once the counters are
/// done with them.
fn collect(points: &mut Vec<Point>) -> impl FnMut(Point) -> Result<(), Infallible> + '_ {
    |p| {
        points.push(p);
        Ok(())
    }
}

/// Whether `head`, a file's first bytes, begins a native Perfetto trace:
/// a `Trace.packet` field whose bytes decode as a packet of this writer's
/// sequence.
pub fn looks_like_trace(head: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(&[0x0a]) else {
        return false;
    };
    let mut body = rest;
    let Ok(len) = prost::encoding::decode_varint(&mut body) else {
        return false;
    };
    body.get(..len as usize)
        .and_then(|packet| TracePacket::decode(packet).ok())
        .is_some_and(|p| p.trusted_packet_sequence_id.is_some() && p.data.is_some())
}

/// A slice's begin or end, or an instant, as [`TraceWriter::slice_event`]
/// encodes it; an empty category or name is left out.
#[derive(Clone, Copy, Debug)]
struct Slice<'a> {
    kind: EventType,
    track: u64,
    category: &'a str,
    name: &'a str,
    flow: Option<u64>,
    terminating_flow: Option<u64>,
}

impl<'a> Slice<'a> {
    fn new(kind: EventType, track: u64, category: &'a str, name: &'a str) -> Self {
        Self {
            kind,
            track,
            category,
            name,
            flow: None,
            terminating_flow: None,
        }
    }
}

/// The annotations of a block slice: which iocb, and its bios.
#[derive(serde::Serialize)]
struct BlockFields {
    pid: u32,
    ctx: u64,
    bios: u32,
    splits: u32,
    merges: u32,
}

/// Where a slice goes: a lane, or past the lanes a track described for it
/// alone.
enum Place {
    Lane(u64),
    Overflow(u64),
}

impl<W: Write> TraceWriter<W> {
    /// A writer whose trace maps monotonic time by `clocks`, naming devices
    /// by `dev_names`.
    pub fn new(out: W, clocks: Clocks, dev_names: DevNames) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(4096),
            clocks,
            started: false,
            next_uuid: 1,
            next_flow: 1,
            processes: HashMap::new(),
            exited: HashMap::new(),
            contexts: HashMap::new(),
            devices: HashMap::new(),
            dev_names,
            cgroups: CgroupNames::system(),
            destroyed: Vec::new(),
            fields: Vec::new(),
            points: Vec::new(),
            counters: Counters::default(),
            counter_tracks: HashMap::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Appends a packet as a `Trace.packet` field.
    fn emit(&mut self, packet: TracePacket) {
        put_key(
            TRACE_PACKET_FIELD,
            prost::encoding::WireType::LengthDelimited,
            &mut self.buf,
        );
        // Encoding into a Vec grows it and cannot fail.
        let _ = packet.encode_length_delimited(&mut self.buf);
    }

    /// Starts a record's packets, with the clock snapshot before the first.
    fn begin(&mut self) {
        self.buf.clear();
        if self.started {
            return;
        }
        self.started = true;
        let Clocks {
            monotonic_ns,
            boottime_ns,
        } = self.clocks;
        let clock = |id, ns| Clock {
            clock_id: Some(id),
            timestamp: Some(ns),
        };
        let mut first = packet(
            None,
            Data::ClockSnapshot(ClockSnapshot {
                clocks: vec![
                    clock(CLOCK_MONOTONIC, monotonic_ns),
                    clock(CLOCK_BOOTTIME, boottime_ns),
                ],
                primary_trace_clock: Some(CLOCK_MONOTONIC),
            }),
        );
        first.sequence_flags = Some(SEQ_INCREMENTAL_STATE_CLEARED);
        self.emit(first);
    }

    fn uuid(&mut self) -> u64 {
        let uuid = self.next_uuid;
        self.next_uuid += 1;
        uuid
    }

    fn describe(&mut self, track: TrackDescriptor) {
        self.emit(packet(None, Data::TrackDescriptor(track)));
    }

    fn event(&mut self, ts: u64, event: TrackEvent) {
        self.emit(packet(Some(ts), Data::TrackEvent(event)));
    }

    /// A slice's begin or end, or an instant, with debug annotations
    /// `fields` already encoded ([`annotations::write`]).
    fn slice_event(&mut self, ts: u64, event: Slice<'_>, fields: &[u8]) {
        use prost::encoding::{WireType, encoded_len_varint, key_len};
        let string_len = |tag, s: &str| {
            if s.is_empty() {
                0
            } else {
                key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
            }
        };
        let flow_len = |tag, flow: Option<u64>| flow.map_or(0, |_| key_len(tag) + 8);
        let event_len = string_len(field::EVENT_CATEGORIES, event.category)
            + string_len(field::EVENT_NAME, event.name)
            + key_len(field::EVENT_TYPE)
            + encoded_len_varint(event.kind as u64)
            + key_len(field::EVENT_TRACK_UUID)
            + encoded_len_varint(event.track)
            + flow_len(field::EVENT_FLOW_IDS, event.flow)
            + flow_len(field::EVENT_TERMINATING_FLOW_IDS, event.terminating_flow)
            + fields.len();
        let packet_len = key_len(field::PACKET_TIMESTAMP)
            + encoded_len_varint(ts)
            + key_len(field::PACKET_TIMESTAMP_CLOCK_ID)
            + encoded_len_varint(CLOCK_MONOTONIC.into())
            + key_len(field::PACKET_TRUSTED_PACKET_SEQUENCE_ID)
            + encoded_len_varint(SEQUENCE.into())
            + key_len(field::PACKET_TRACK_EVENT)
            + encoded_len_varint(event_len as u64)
            + event_len;
        let buf = &mut self.buf;
        let varint = |buf: &mut Vec<u8>, tag, value| {
            put_key(tag, WireType::Varint, buf);
            put_varint(value, buf);
        };
        let string = |buf: &mut Vec<u8>, tag, s: &str| {
            if !s.is_empty() {
                put_key(tag, WireType::LengthDelimited, buf);
                put_varint(s.len() as u64, buf);
                buf.extend_from_slice(s.as_bytes());
            }
        };
        let fixed = |buf: &mut Vec<u8>, tag, flow: Option<u64>| {
            if let Some(flow) = flow {
                put_key(tag, WireType::SixtyFourBit, buf);
                buf.extend_from_slice(&flow.to_le_bytes());
            }
        };
        put_key(TRACE_PACKET_FIELD, WireType::LengthDelimited, buf);
        put_varint(packet_len as u64, buf);
        varint(buf, field::PACKET_TIMESTAMP, ts);
        varint(
            buf,
            field::PACKET_TIMESTAMP_CLOCK_ID,
            CLOCK_MONOTONIC.into(),
        );
        varint(
            buf,
            field::PACKET_TRUSTED_PACKET_SEQUENCE_ID,
            SEQUENCE.into(),
        );
        put_key(field::PACKET_TRACK_EVENT, WireType::LengthDelimited, buf);
        put_varint(event_len as u64, buf);
        string(buf, field::EVENT_CATEGORIES, event.category);
        string(buf, field::EVENT_NAME, event.name);
        varint(buf, field::EVENT_TYPE, event.kind as u64);
        varint(buf, field::EVENT_TRACK_UUID, event.track);
        fixed(buf, field::EVENT_FLOW_IDS, event.flow);
        fixed(
            buf,
            field::EVENT_TERMINATING_FLOW_IDS,
            event.terminating_flow,
        );
        buf.extend_from_slice(fields);
    }

    fn slice_end(&mut self, ts: u64, track: u64) {
        self.slice_event(ts, Slice::new(EventType::SliceEnd, track, "", ""), &[]);
    }

    /// The process's track, described the first time.
    fn process(&mut self, r: &IocbRecord) -> u64 {
        if let Some(&uuid) = self.processes.get(&r.pid) {
            return uuid;
        }
        if self.processes.len() >= MAX_PROCESSES {
            self.processes.clear();
        }
        let uuid = self.uuid();
        self.processes.insert(r.pid, uuid);
        self.describe(TrackDescriptor {
            uuid: Some(uuid),
            name: Some(format!("{} ({})", comm_str(&r.comm), r.pid)),
            process: Some(ProcessDescriptor {
                pid: Some(r.pid as i32),
                process_name: Some(comm_str(&r.comm).into_owned()),
            }),
            ..Default::default()
        });
        uuid
    }

    /// A track with lanes to come, in their order.
    fn group(&mut self, parent: Option<u64>, name: String) -> Group {
        let uuid = self.uuid();
        self.describe(TrackDescriptor {
            uuid: Some(uuid),
            parent_uuid: parent,
            name: Some(name),
            child_ordering: Some(CHILD_ORDERING_EXPLICIT),
            ..Default::default()
        });
        Group {
            uuid,
            lanes: Vec::new(),
        }
    }

    /// The place on `group`'s lanes for a slice from `start` to `end`: a free
    /// lane, else a new one, else an overflow track.
    fn place(&mut self, group: &mut Group, start: u64, end: u64) -> Place {
        if let Some(i) = free_lane(group.lanes.iter().map(|l| l.busy_until), start) {
            group.lanes[i].busy_until = end;
            return Place::Lane(group.lanes[i].uuid);
        }
        let uuid = self.uuid();
        let (name, rank) = if group.lanes.len() < MAX_LANES {
            group
                .lanes
                .reserve_exact(group.lanes.len().max(4).min(MAX_LANES - group.lanes.len()));
            group.lanes.push(Lane {
                uuid,
                busy_until: end,
            });
            (format!("lane {}", group.lanes.len()), group.lanes.len())
        } else {
            ("overflow".to_owned(), MAX_LANES + 1)
        };
        self.describe(TrackDescriptor {
            uuid: Some(uuid),
            parent_uuid: Some(group.uuid),
            name: Some(name),
            sibling_order_rank: Some(rank as i32),
            ..Default::default()
        });
        if group.lanes.last().is_some_and(|l| l.uuid == uuid) {
            Place::Lane(uuid)
        } else {
            Place::Overflow(uuid)
        }
    }

    /// The track for a slice of the context of `r`, from submit to `end`.
    fn context_track(&mut self, r: &IocbRecord, end: u64) -> u64 {
        let key = (r.pid, r.ctx, r.api());
        let mut group = match self.contexts.remove(&key) {
            Some(group) => group,
            None => {
                let process = self.process(r);
                let name = match r.api() {
                    Api::Aio => format!("aio ctx {:#x}", r.ctx),
                    Api::IoUring => format!("io_uring ring {:#x}", r.ctx),
                    Api::Sync => "vectored syscalls".to_owned(),
                };
                self.group(Some(process), name)
            }
        };
        let place = self.place(&mut group, r.submit_ns, end);
        self.contexts.insert(key, group);
        match place {
            Place::Lane(uuid) | Place::Overflow(uuid) => uuid,
        }
    }

    /// The track for a slice of device `dev` from `start` to `end`.
    fn device_track(&mut self, dev: u32, start: u64, end: u64) -> u64 {
        let mut group = match self.devices.remove(&dev) {
            Some(group) => group,
            None => {
                let name = match self.dev_names.name(dev) {
                    Some(name) => format!("{name} {}", dev_name(dev)),
                    None => format!("device {}", dev_name(dev)),
                };
                self.group(None, name)
            }
        };
        let place = self.place(&mut group, start, end);
        self.devices.insert(dev, group);
        match place {
            Place::Lane(uuid) | Place::Overflow(uuid) => uuid,
        }
    }

    fn iocb(&mut self, r: &IocbRecord) -> io::Result<()> {
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        let path = self.cgroups.path(r.cgroup).map(|p| &**p);
        annotations::write(&IocbJson::new(r).with_cgroup_path(path), &mut fields)
            .map_err(io::Error::other)?;
        let written = self.iocb_events(r, &fields);
        self.fields = fields;
        written
    }

    /// The events of `r`, whose fields are encoded in `fields`.
    fn iocb_events(&mut self, r: &IocbRecord, fields: &[u8]) -> io::Result<()> {
        let Some(end) = slice_end(r) else {
            // Rejected by io_submit: no time span, so no lane; an instant on
            // the process's own track.
            let process = self.process(r);
            let name = format!("{} (rejected)", slice_name(r));
            let event = Slice::new(EventType::Instant, process, "iocb", &name);
            self.slice_event(r.submit_ns, event, fields);
            return Ok(());
        };
        let block = (r.bios > 0 && r.first_bio_ts != 0 && r.last_rq_ts >= r.first_bio_ts)
            .then_some((r.first_bio_ts, r.last_rq_ts));
        let flow = block.map(|_| {
            let flow = self.next_flow;
            self.next_flow += 1;
            flow
        });
        let track = self.context_track(r, end);
        let name = slice_name(r);
        let begin = Slice {
            flow,
            ..Slice::new(EventType::SliceBegin, track, "iocb", &name)
        };
        self.slice_event(r.submit_ns, begin, fields);
        for (stage, span) in STAGES.iter().zip(stages(r, end)) {
            if let Some((from, to)) = span {
                let begin = Slice::new(EventType::SliceBegin, track, "stage", stage);
                self.slice_event(from, begin, &[]);
                self.slice_end(to, track);
            }
        }
        self.slice_end(end, track);
        if let (Some((from, to)), Some(flow)) = (block, flow) {
            let device = self.device_track(r.dev, from, to);
            let mut fields = std::mem::take(&mut self.fields);
            fields.clear();
            let block_fields = BlockFields {
                pid: r.pid,
                ctx: r.ctx,
                bios: r.bios,
                splits: r.splits,
                merges: r.merges,
            };
            annotations::write(&block_fields, &mut fields).map_err(io::Error::other)?;
            let begin = Slice {
                terminating_flow: Some(flow),
                ..Slice::new(EventType::SliceBegin, device, "block", &name)
            };
            self.slice_event(from, begin, &fields);
            self.fields = fields;
            self.slice_end(to, device);
        }
        let transferred = r.result().filter(|&res| res > 0).unwrap_or(0) as u64;
        let mut points = std::mem::take(&mut self.points);
        let Ok(()) = self.counters.iocb(
            r.pid,
            r.submit_ns,
            end,
            transferred,
            &mut collect(&mut points),
        );
        self.points_out(points)?;
        Ok(())
    }

    /// Writes counter points, described tracks first; the packets so far go
    /// out once they are many (a long run of points released at once).
    fn points_out(&mut self, mut points: Vec<Point>) -> io::Result<()> {
        for p in points.drain(..) {
            if self.buf.len() >= SPILL {
                self.out.write_all(&self.buf)?;
                self.buf.clear();
            }
            match p {
                Point::InFlight { ts, pid, iocbs } => {
                    let track = self.counter_tracks(pid).inflight;
                    self.counter(ts, track, Some(iocbs), None);
                }
                Point::Rate { ts, pid, mbps } => {
                    let track = self.counter_tracks(pid).rate;
                    self.counter(ts, track, None, Some(mbps));
                }
                Point::Idle { pid } => {
                    self.counter_tracks.remove(&pid);
                    self.exited.remove(&pid);
                }
            }
        }
        self.points = points;
        Ok(())
    }

    fn counter(&mut self, ts: u64, track: u64, value: Option<i64>, double: Option<f64>) {
        self.event(
            ts,
            TrackEvent {
                r#type: Some(EventType::Counter as i32),
                track_uuid: Some(track),
                counter_value: value,
                double_counter_value: double,
                ..Default::default()
            },
        );
    }

    /// `pid`'s counter tracks, under its process track, which an exited
    /// process keeps until then (or past `MAX_PROCESSES`, a track of the pid
    /// alone).
    fn counter_tracks(&mut self, pid: u32) -> CounterTracks {
        if let Some(&tracks) = self.counter_tracks.get(&pid) {
            return tracks;
        }
        let parent = match self.processes.get(&pid).or(self.exited.get(&pid)) {
            Some(&uuid) => uuid,
            None => {
                let uuid = self.uuid();
                self.describe(TrackDescriptor {
                    uuid: Some(uuid),
                    name: Some(format!("({pid})")),
                    process: Some(ProcessDescriptor {
                        pid: Some(pid as i32),
                        process_name: None,
                    }),
                    ..Default::default()
                });
                uuid
            }
        };
        let mut counter = |name: &str, unit: &str, rank| {
            let uuid = self.uuid();
            self.describe(TrackDescriptor {
                uuid: Some(uuid),
                parent_uuid: Some(parent),
                name: Some(name.to_owned()),
                counter: Some(CounterDescriptor {
                    unit_name: Some(unit.to_owned()),
                }),
                sibling_order_rank: Some(rank),
                ..Default::default()
            });
            uuid
        };
        let tracks = CounterTracks {
            inflight: counter("in-flight iocbs", "iocbs", 0),
            rate: counter("MB/s", "MB/s", 1),
        };
        self.counter_tracks.insert(pid, tracks);
        tracks
    }

    /// Drops the lanes of the contexts destroyed in this batch.
    fn drop_destroyed(&mut self) {
        for (pid, ctx) in self.destroyed.drain(..) {
            if ctx == 0 {
                // The process exited: all of its contexts, and its track; the
                // next process with this pid gets a track anew.
                self.contexts.retain(|k, _| k.0 != pid);
                if let Some(track) = self.processes.remove(&pid) {
                    if self.exited.len() >= MAX_PROCESSES {
                        self.exited.clear();
                    }
                    self.exited.insert(pid, track);
                }
            } else {
                // io_destroy: an AIO context's.
                self.contexts.remove(&(pid, ctx, Api::Aio));
            }
        }
    }

    /// What the writer holds: lanes of contexts and devices, processes (with
    /// tracks, and with counters), counter changes held back, and the packet
    /// buffer's capacity.
    #[cfg(test)]
    fn retained(&self) -> (usize, usize, usize, usize) {
        let lanes = |groups: &mut dyn Iterator<Item = &Group>| -> usize {
            groups.map(|g| g.lanes.len() + 1).sum()
        };
        let (pending, with_counters) = self.counters.held();
        (
            lanes(&mut self.contexts.values()) + lanes(&mut self.devices.values()),
            (self.processes.len() + self.exited.len())
                .max(with_counters)
                .max(self.counter_tracks.len()),
            pending,
            self.buf.capacity(),
        )
    }
}

impl<W: Write> Sink for TraceWriter<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        self.begin();
        match record {
            Record::Iocb(r) | Record::Syscall(r) => self.iocb(r)?,
            Record::Ctx(c) if c.event == CTX_DESTROY || c.event == CTX_EXIT => {
                self.destroyed.push((c.pid, c.ctx))
            }
            Record::Ctx(_) => {}
        }
        self.out.write_all(&self.buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.begin();
        self.drop_destroyed();
        let mut points = std::mem::take(&mut self.points);
        let Ok(()) = self.counters.close_idle(&mut collect(&mut points));
        self.points_out(points)?;
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }
}

impl<W: Write> Exporter for TraceWriter<W> {
    /// Writes the loss counters as an instant (annotations the JSONL `lost`
    /// line's fields) on a track of their own.
    fn finish(&mut self, closing: &Closing) -> io::Result<()> {
        self.begin();
        let mut points = std::mem::take(&mut self.points);
        let Ok(()) = self.counters.finish(&mut collect(&mut points));
        self.points_out(points)?;
        let track = self.uuid();
        self.describe(TrackDescriptor {
            uuid: Some(track),
            name: Some("aio-trace".to_owned()),
            ..Default::default()
        });
        let mut losses = Vec::new();
        annotations::write(closing.losses, &mut losses).map_err(io::Error::other)?;
        let lost = Slice::new(EventType::Instant, track, "aio-trace", "lost");
        self.slice_event(self.counters.newest(), lost, &losses);
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }
}

mod annotations;
#[cfg(test)]
mod tests;
