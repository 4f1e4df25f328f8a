//! Everything the tracer missed, by cause.

use aio_trace_common::{LOSS_CAUSES, LossCause};
use serde::Serialize;

/// The `{"type":"lost",…}` line: kernel-side causes plus what the user half
/// reclaimed from the in-flight table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LossCounts {
    #[serde(rename = "type")]
    pub kind: LostTag,
    /// Finished records dropped because the ring buffer was full.
    pub ring_full: u64,
    /// Submitted iocbs not tracked because the in-flight table was full.
    pub inflight_full: u64,
    /// Iocb pointers, iocbs, iovec arrays or io_events that were not readable.
    pub user_read: u64,
    /// Reaped events whose submission was not seen.
    pub unmatched: u64,
    /// Calls with more than MAX_IOCBS_PER_CALL iocbs or events, truncated.
    pub batch_truncated: u64,
    /// Syscalls whose entry state could not be kept for their exit.
    pub syscall_state_full: u64,
    /// Bios queued inside a traced AIO or vectored call that matched no iocb.
    pub unattributed_bios: u64,
    /// Filesystem dispatches inside io_submit that matched no iocb.
    pub unmatched_dispatches: u64,
    /// Lookups of a device (one per bio queued, split or merged and per
    /// request completed) that found no room in the kernel's per-device
    /// table: missing from the device counters. Not in `total`: the device
    /// counters cover every device whatever the filters, the total is about
    /// what was traced.
    pub device_table_full: u64,
    /// (process, context, opcode) counters the kernel's counter table had
    /// no room for: their counts are missing.
    pub counter_table_full: u64,
    /// In-flight iocbs never reaped within the timeout (e.g. reaped from the
    /// user-space ring without io_getevents).
    pub aged_out: u64,
    /// In-flight iocbs of processes that exited or contexts destroyed.
    pub abandoned: u64,
    /// Not a loss, so not in `total`: iocbs the application had in flight
    /// when the trace began (submitted before the programs were attached),
    /// whose io_events came back while the trace was younger than the
    /// in-flight timeout. Nonzero means the trace began mid-flight.
    pub inflight_at_start: u64,
}

/// Serializes as the constant `"lost"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LostTag;

impl Serialize for LostTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("lost")
    }
}

impl LossCounts {
    pub fn from_kernel(by_cause: [u64; LOSS_CAUSES as usize]) -> Self {
        let at = |cause: LossCause| by_cause[cause as usize];
        Self {
            kind: LostTag,
            ring_full: at(LossCause::RingFull),
            inflight_full: at(LossCause::InflightFull),
            user_read: at(LossCause::UserRead),
            unmatched: at(LossCause::Unmatched),
            batch_truncated: at(LossCause::BatchTruncated),
            syscall_state_full: at(LossCause::SyscallStateFull),
            unattributed_bios: at(LossCause::UnattributedBio),
            unmatched_dispatches: at(LossCause::UnmatchedDispatch),
            device_table_full: at(LossCause::DeviceTableFull),
            counter_table_full: at(LossCause::CounterTableFull),
            aged_out: 0,
            abandoned: 0,
            inflight_at_start: at(LossCause::InflightAtStart),
        }
    }

    pub fn total(&self) -> u64 {
        self.ring_full
            + self.inflight_full
            + self.user_read
            + self.unmatched
            + self.batch_truncated
            + self.syscall_state_full
            + self.unattributed_bios
            + self.unmatched_dispatches
            + self.counter_table_full
            + self.aged_out
            + self.abandoned
    }
}

/// The one-line form: `lost: N (ring_full …, …, abandoned …)`.
impl std::fmt::Display for LossCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost: {} (ring_full {}, inflight_full {}, user_read {}, unmatched {}, batch_truncated {}, syscall_state_full {}, unattributed_bios {}, unmatched_dispatches {}, device_table_full {}, counter_table_full {}, aged_out {}, abandoned {}); in flight at start: {}",
            self.total(),
            self.ring_full,
            self.inflight_full,
            self.user_read,
            self.unmatched,
            self.batch_truncated,
            self.syscall_state_full,
            self.unattributed_bios,
            self.unmatched_dispatches,
            self.device_table_full,
            self.counter_table_full,
            self.aged_out,
            self.abandoned,
            self.inflight_at_start
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_kernel_cause_to_its_field() {
        let l = LossCounts::from_kernel([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(
            (l.ring_full, l.inflight_full, l.user_read, l.unmatched),
            (1, 2, 3, 4)
        );
        assert_eq!((l.batch_truncated, l.syscall_state_full), (5, 6));
        assert_eq!((l.unattributed_bios, l.unmatched_dispatches), (7, 8));
        assert_eq!(l.device_table_full, 9);
        assert_eq!(l.inflight_at_start, 10);
        assert_eq!(l.counter_table_full, 11);
        assert_eq!(
            l.total(),
            47,
            "neither device_table_full nor inflight_at_start is in the total"
        );
        let json = serde_json::to_string(&l).unwrap();
        assert!(
            json.starts_with(r#"{"type":"lost","ring_full":1,"#),
            "{json}"
        );
    }
}
