//! `top --replay FILE`: a recording (read with the report's parser) turned
//! back into records, and the clock that paces them. The feeder sends the
//! records that are due on the same channel the live collector uses.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aio_trace_common::IocbRecord;
use tokio::sync::mpsc;

use crate::{
    model::{IocbView, LossCounts},
    report::{LossRow, ReportError, Row, read_file},
};

/// Slowest and fastest replay speeds.
pub const MIN_SPEED: f64 = 1.0 / 64.0;
pub const MAX_SPEED: f64 = 1024.0;

/// The `lost` line's counters by name (unknown names are ignored).
pub fn losses_from_row(row: &LossRow) -> LossCounts {
    let get = |name: &str| row.get(name).copied().unwrap_or(0);
    LossCounts {
        ring_full: get("ring_full"),
        inflight_full: get("inflight_full"),
        user_read: get("user_read"),
        unmatched: get("unmatched"),
        batch_truncated: get("batch_truncated"),
        syscall_state_full: get("syscall_state_full"),
        unattributed_bios: get("unattributed_bios"),
        unmatched_dispatches: get("unmatched_dispatches"),
        device_table_full: get("device_table_full"),
        counter_table_full: get("counter_table_full"),
        aged_out: get("aged_out"),
        abandoned: get("abandoned"),
        inflight_at_start: get("inflight_at_start"),
        ..LossCounts::default()
    }
}

/// The kernel's syscall counters, summed over the `summary` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallTotals {
    pub io_submit_calls: u64,
    pub io_getevents_calls: u64,
    pub iocbs_submitted: u64,
    pub events_reaped: u64,
}

/// When a record is replayed: its reap time, or its submit time without one.
pub fn pace_ns(r: &IocbRecord) -> u64 {
    r.reaped_ns().unwrap_or(r.submit_ns)
}

/// A whole recording, its records in replay order.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    pub records: Vec<IocbRecord>,
    /// Each record's replay time relative to the first record (ns), ascending.
    pub offsets: Vec<u64>,
    pub syscalls: Option<SyscallTotals>,
    pub losses: Option<LossCounts>,
}

impl Recording {
    /// Reads and checks the whole file (before the terminal is touched): a
    /// bad line is the report's error naming the file and line.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let mut rows = Vec::new();
        read_file(path, false, &mut |row| rows.push(row))?;
        Ok(Self::from_rows(rows))
    }

    pub fn from_rows(rows: impl IntoIterator<Item = Row>) -> Self {
        let mut records = Vec::new();
        let mut syscalls: Option<SyscallTotals> = None;
        let mut losses = None;
        for row in rows {
            match row {
                Row::Iocb(r) => records.push(r.to_record()),
                Row::Summary(s) => {
                    let t = syscalls.get_or_insert_default();
                    t.io_submit_calls += s.io_submit_calls;
                    t.io_getevents_calls += s.io_getevents_calls;
                    t.iocbs_submitted += s.iocbs_submitted;
                    t.events_reaped += s.events_reaped;
                }
                Row::Lost(l) => losses = Some(losses_from_row(&l)),
                Row::Header(_) => {}
            }
        }
        Self::from_records(records, syscalls, losses)
    }

    /// Keeps the records `keep` admits (`-p`/`-c` on a replay), times
    /// relative to the first one kept.
    pub fn retain(&mut self, keep: impl Fn(&IocbRecord) -> bool) {
        let records = std::mem::take(&mut self.records);
        *self = Self::from_records(
            records.into_iter().filter(|r| keep(r)).collect(),
            self.syscalls,
            self.losses,
        );
    }

    fn from_records(
        mut records: Vec<IocbRecord>,
        syscalls: Option<SyscallTotals>,
        losses: Option<LossCounts>,
    ) -> Self {
        records.sort_by_key(pace_ns);
        let first = records.first().map_or(0, pace_ns);
        let offsets = records.iter().map(|r| pace_ns(r) - first).collect();
        Self {
            records,
            offsets,
            syscalls,
            losses,
        }
    }

    /// Replay time of the last record.
    pub fn duration_ns(&self) -> u64 {
        self.offsets.last().copied().unwrap_or(0)
    }
}

/// How many records (a prefix of `offsets`) are due at replay time `pos_ns`.
pub fn due(offsets: &[u64], pos_ns: u64) -> usize {
    offsets.partition_point(|&o| o <= pos_ns)
}

/// Replay time: advances at `speed` × real time while playing, stops at the end.
#[derive(Clone, Copy, Debug)]
pub struct ReplayClock {
    /// Replay position (ns) at `anchor`.
    base_ns: u64,
    anchor: Instant,
    pub speed: f64,
    pub playing: bool,
    pub end_ns: u64,
}

impl ReplayClock {
    pub fn new(end_ns: u64, now: Instant) -> Self {
        Self {
            base_ns: 0,
            anchor: now,
            speed: 1.0,
            playing: true,
            end_ns,
        }
    }

    pub fn position(&self, now: Instant) -> u64 {
        if !self.playing {
            return self.base_ns;
        }
        let elapsed = now.saturating_duration_since(self.anchor).as_nanos() as f64;
        let pos = self.base_ns as f64 + elapsed * self.speed;
        (pos.min(self.end_ns as f64)) as u64
    }

    pub fn ended(&self, now: Instant) -> bool {
        self.position(now) >= self.end_ns
    }

    fn reanchor(&mut self, now: Instant) {
        self.base_ns = self.position(now);
        self.anchor = now;
    }

    pub fn toggle(&mut self, now: Instant) {
        self.reanchor(now);
        self.playing = !self.playing;
    }

    /// Multiplies the speed by `factor`, within [MIN_SPEED, MAX_SPEED].
    pub fn scale(&mut self, factor: f64, now: Instant) {
        self.reanchor(now);
        self.speed = (self.speed * factor).clamp(MIN_SPEED, MAX_SPEED);
    }
}

/// The shared clock: the UI changes it (keys), the feeder reads it.
pub type SharedClock = Arc<Mutex<ReplayClock>>;

/// How often the feeder looks for due records.
const FEED_PERIOD: Duration = Duration::from_millis(20);

/// Sends the records as they fall due, in batches, until all are sent or
/// the receiver is gone.
pub async fn feed(
    records: Vec<IocbRecord>,
    offsets: Vec<u64>,
    clock: SharedClock,
    tx: mpsc::UnboundedSender<Vec<IocbRecord>>,
) {
    let mut sent = 0;
    let mut period = tokio::time::interval(FEED_PERIOD);
    period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while sent < records.len() {
        period.tick().await;
        let pos = clock
            .lock()
            .map(|c| c.position(Instant::now()))
            .unwrap_or(u64::MAX);
        let until = due(&offsets, pos);
        if until > sent {
            if tx.send(records[sent..until].to_vec()).is_err() {
                return;
            }
            sent = until;
        }
    }
}

/// "2×", "0.5×".
pub fn fmt_speed(speed: f64) -> String {
    format!("{speed}×")
}

#[cfg(test)]
mod tests {
    use aio_trace_common::{
        API_IO_URING, IOCB_BYTES_UNKNOWN, IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_REJECTED,
        IOCB_RES_UNKNOWN, IORING_OP_READ, IORING_OP_READV, RECORD_IOCB, RECORD_SYSCALL,
        SYSCALL_READV,
    };

    use super::*;
    use crate::{output::IocbJson, report::read};

    fn roundtrip(r: &IocbRecord) -> IocbRecord {
        let mut text = serde_json::to_string(&IocbJson::new(r)).unwrap();
        text.push('\n');
        let mut rows = Vec::new();
        read(text.as_bytes(), "test", false, &mut |row| rows.push(row)).unwrap();
        let [Row::Iocb(row)] = rows.as_slice() else {
            panic!("one iocb row expected: {rows:?}");
        };
        row.to_record()
    }

    fn direct() -> IocbRecord {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"fio");
        IocbRecord {
            kind: RECORD_IOCB,
            opcode: IOCB_CMD_PREADV,
            pid: 100,
            tid: 101,
            fd: 5,
            segs: 8,
            comm,
            ctx: 0xa000,
            iocb: 0x7fff_0000,
            aio_data: 42,
            offset: 1 << 20,
            bytes: 32768,
            res: 32768,
            submit_ns: 1_000_000,
            reap_ns: 1_090_000,
            dev: (254 << 20) | 3,
            dispatches: 1,
            bios: 2,
            splits: 1,
            merges: 0,
            ino: 1234,
            dispatch_ts: 1_002_000,
            first_bio_ts: 1_003_000,
            last_rq_ts: 1_080_000,
            complete_ts: 1_085_000,
            ..IocbRecord::default()
        }
    }

    #[test]
    fn rows_round_trip_to_records() {
        let cases = [
            direct(),
            // Buffered: no dispatch, no stages.
            IocbRecord {
                opcode: IOCB_CMD_PREAD,
                segs: 1,
                dev: 0,
                dispatches: 0,
                bios: 0,
                splits: 0,
                ino: 0,
                dispatch_ts: 0,
                first_bio_ts: 0,
                last_rq_ts: 0,
                complete_ts: 0,
                ..direct()
            },
            // Refused by io_submit, errno swallowed, iovecs unreadable.
            IocbRecord {
                flags: IOCB_REJECTED | IOCB_RES_UNKNOWN | IOCB_BYTES_UNKNOWN,
                bytes: 0,
                res: 0,
                reap_ns: 0,
                dispatches: 0,
                dev: 0,
                ino: 0,
                bios: 0,
                splits: 0,
                dispatch_ts: 0,
                first_bio_ts: 0,
                last_rq_ts: 0,
                complete_ts: 0,
                ..direct()
            },
            // Reaped from the ring: completion, no reap.
            IocbRecord {
                reap_ns: 0,
                ..direct()
            },
            // A readv syscall (file position: no offset), "PREADV" syscall.
            IocbRecord {
                kind: RECORD_SYSCALL,
                opcode: SYSCALL_READV,
                offset: -1,
                ctx: 0,
                ..direct()
            },
            IocbRecord {
                kind: RECORD_SYSCALL,
                opcode: aio_trace_common::SYSCALL_PREADV,
                ..direct()
            },
            // io_uring's READV (AIO's PWRITE by number), waited for in
            // io_uring_enter, and a READ taken from the CQ ring.
            uring(IORING_OP_READV, 1_090_000),
            uring(IORING_OP_READ, 0),
        ];
        for r in cases {
            assert_eq!(roundtrip(&r), r);
        }
    }

    fn uring(opcode: u8, reap_ns: u64) -> IocbRecord {
        IocbRecord {
            api: API_IO_URING,
            opcode: opcode.into(),
            ctx: 0xffff_8881_0a2b_3000,
            iocb: 0xffff_8881_0c4d_5e00,
            reap_ns,
            ..direct()
        }
    }

    #[test]
    fn csv_rows_round_trip_too() {
        let records = [
            uring(IORING_OP_READV, 0),
            direct(),
            IocbRecord {
                flags: IOCB_REJECTED | IOCB_RES_UNKNOWN,
                res: 0,
                reap_ns: 0,
                dispatches: 0,
                dev: 0,
                ino: 0,
                bios: 0,
                splits: 0,
                dispatch_ts: 0,
                first_bio_ts: 0,
                last_rq_ts: 0,
                complete_ts: 0,
                ..direct()
            },
        ];
        let mut writer = csv::Writer::from_writer(Vec::new());
        for r in &records {
            writer.serialize(IocbJson::new(r)).unwrap();
        }
        let text = writer.into_inner().unwrap();
        let mut back = Vec::new();
        read(text.as_slice(), "t.csv", false, &mut |row| {
            if let Row::Iocb(row) = row {
                back.push(row.to_record());
            }
        })
        .unwrap();
        assert_eq!(back, records);
    }

    #[test]
    fn a_missing_bio_stage_keeps_the_last_request_from_the_completion() {
        let r = IocbRecord {
            first_bio_ts: 0,
            ..direct()
        };
        let back = roundtrip(&r);
        assert_eq!(back.end_io_ns(), r.end_io_ns());
        assert_eq!(back.dispatch_ns(), r.dispatch_ns());
    }

    #[test]
    fn recording_orders_by_reap_and_sums_summaries() {
        let text = concat!(
            r#"{"type":"iocb","pid":1,"tid":1,"comm":"a","ctx":1,"op":"PREAD","fd":3,"offset":0,"segs":1,"bytes":4096,"res":4096,"submit_ns":100,"reap_ns":900,"latency_ns":800}"#,
            "\n",
            r#"{"type":"iocb","pid":1,"tid":1,"comm":"a","ctx":1,"op":"PREAD","fd":3,"offset":0,"segs":1,"bytes":4096,"res":-11,"submit_ns":400,"reap_ns":null,"latency_ns":null}"#,
            "\n",
            r#"{"type":"iocb","pid":1,"tid":1,"comm":"a","ctx":1,"op":"PREADV","fd":3,"offset":0,"segs":2,"bytes":8192,"res":8192,"submit_ns":200,"reap_ns":300,"latency_ns":100}"#,
            "\n",
            r#"{"type":"summary","pid":1,"ctx":1,"io_submit_calls":3,"iocbs_submitted":3,"io_getevents_calls":2,"events_reaped":2}"#,
            "\n",
            r#"{"type":"lost","ring_full":4,"aged_out":1}"#,
            "\n",
        );
        let mut rows = Vec::new();
        read(text.as_bytes(), "t", false, &mut |r| rows.push(r)).unwrap();
        let rec = Recording::from_rows(rows);
        assert_eq!(rec.offsets, [0, 100, 600]);
        assert_eq!(rec.records[0].opcode, IOCB_CMD_PREADV);
        assert_eq!(rec.duration_ns(), 600);
        assert_eq!(
            rec.syscalls,
            Some(SyscallTotals {
                io_submit_calls: 3,
                io_getevents_calls: 2,
                iocbs_submitted: 3,
                events_reaped: 2
            })
        );
        let mut only_pread = rec.clone();
        only_pread.retain(|r| r.opcode == IOCB_CMD_PREAD);
        assert_eq!(only_pread.offsets, [0, 500]);
        let losses = rec.losses.unwrap();
        assert_eq!(
            (losses.ring_full, losses.aged_out, losses.total()),
            (4, 1, 5)
        );
    }

    #[test]
    fn records_fall_due_at_replay_time_times_speed() {
        let offsets = [0, 500_000_000, 1_000_000_000, 2_000_000_000, 4_000_000_000];
        let t0 = Instant::now();
        let mut clock = ReplayClock::new(4_000_000_000, t0);
        assert_eq!(due(&offsets, clock.position(t0)), 1);
        let one_s = t0 + Duration::from_secs(1);
        assert_eq!(clock.position(one_s), 1_000_000_000);
        assert_eq!(due(&offsets, clock.position(one_s)), 3);
        // Twice as fast from 1 s on: 1 s later the replay is at 3 s.
        clock.scale(2.0, one_s);
        let two_s = t0 + Duration::from_secs(2);
        assert_eq!(clock.position(two_s), 3_000_000_000);
        assert_eq!(due(&offsets, clock.position(two_s)), 4);
        // Paused: time stands still.
        clock.toggle(two_s);
        assert_eq!(clock.position(t0 + Duration::from_secs(10)), 3_000_000_000);
        clock.toggle(t0 + Duration::from_secs(10));
        // Half speed after resuming; the end caps the position.
        clock.scale(0.25, t0 + Duration::from_secs(10));
        assert_eq!(clock.speed, 0.5);
        assert_eq!(clock.position(t0 + Duration::from_secs(11)), 3_500_000_000);
        assert!(!clock.ended(t0 + Duration::from_secs(11)));
        assert_eq!(clock.position(t0 + Duration::from_secs(100)), 4_000_000_000);
        assert!(clock.ended(t0 + Duration::from_secs(100)));
        assert_eq!(due(&offsets, 4_000_000_000), 5);
        clock.scale(1e9, t0);
        assert_eq!(clock.speed, MAX_SPEED);
        assert_eq!(fmt_speed(2.0), "2×");
        assert_eq!(fmt_speed(0.5), "0.5×");
    }

    #[test]
    fn load_refuses_an_endless_line_like_report() {
        let dir = std::env::temp_dir().join(format!("aio-trace-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("endless");
        std::fs::write(&path, vec![b'{'; 3 << 20]).unwrap();
        let err = Recording::load(&path).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(err, ReportError::TooLong { line: 1, .. }), "{err}");
    }
}
