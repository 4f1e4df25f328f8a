//! What an `IocbRecord` means: its opcode's name and its derived fields.

use aio_trace_common::{
    IOCB_BYTES_UNKNOWN, IOCB_CMD_FDSYNC, IOCB_CMD_FSYNC, IOCB_CMD_NOOP, IOCB_CMD_POLL,
    IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV, IOCB_REJECTED,
    IOCB_RES_UNKNOWN, IocbRecord, RECORD_SYSCALL, SYSCALL_PREADV, SYSCALL_PREADV2, SYSCALL_PWRITEV,
    SYSCALL_PWRITEV2, SYSCALL_READV, SYSCALL_WRITEV,
};

/// An iocb opcode as the record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Pread,
    Pwrite,
    Fsync,
    Fdsync,
    Poll,
    Noop,
    Preadv,
    Pwritev,
    /// Synchronous vectored syscalls (`"type":"syscall"` records).
    Readv,
    Writev,
    SyscallPreadv,
    SyscallPwritev,
    Preadv2,
    Pwritev2,
    /// An opcode this version does not know (the kernel rejects it with -EINVAL).
    Other(u16),
}

impl Op {
    pub fn from_opcode(opcode: u16) -> Self {
        match opcode {
            IOCB_CMD_PREAD => Self::Pread,
            IOCB_CMD_PWRITE => Self::Pwrite,
            IOCB_CMD_FSYNC => Self::Fsync,
            IOCB_CMD_FDSYNC => Self::Fdsync,
            IOCB_CMD_POLL => Self::Poll,
            IOCB_CMD_NOOP => Self::Noop,
            IOCB_CMD_PREADV => Self::Preadv,
            IOCB_CMD_PWRITEV => Self::Pwritev,
            SYSCALL_READV => Self::Readv,
            SYSCALL_WRITEV => Self::Writev,
            SYSCALL_PREADV => Self::SyscallPreadv,
            SYSCALL_PWRITEV => Self::SyscallPwritev,
            SYSCALL_PREADV2 => Self::Preadv2,
            SYSCALL_PWRITEV2 => Self::Pwritev2,
            other => Self::Other(other),
        }
    }

    /// The opcode this op stands for (`IOCB_CMD_*` or `SYSCALL_*`).
    pub fn opcode(self) -> u16 {
        match self {
            Self::Pread => IOCB_CMD_PREAD,
            Self::Pwrite => IOCB_CMD_PWRITE,
            Self::Fsync => IOCB_CMD_FSYNC,
            Self::Fdsync => IOCB_CMD_FDSYNC,
            Self::Poll => IOCB_CMD_POLL,
            Self::Noop => IOCB_CMD_NOOP,
            Self::Preadv => IOCB_CMD_PREADV,
            Self::Pwritev => IOCB_CMD_PWRITEV,
            Self::Readv => SYSCALL_READV,
            Self::Writev => SYSCALL_WRITEV,
            Self::SyscallPreadv => SYSCALL_PREADV,
            Self::SyscallPwritev => SYSCALL_PWRITEV,
            Self::Preadv2 => SYSCALL_PREADV2,
            Self::Pwritev2 => SYSCALL_PWRITEV2,
            Self::Other(o) => o,
        }
    }

    /// The op a record's `op` name stands for: the inverse of [`Op::name`]
    /// (PREADV/PWRITEV are the syscalls in `"type":"syscall"` records). An
    /// unknown name is `Other(u16::MAX)`.
    pub fn from_name(name: &str, syscall: bool) -> Self {
        match (name, syscall) {
            ("PREAD", _) => Self::Pread,
            ("PWRITE", _) => Self::Pwrite,
            ("FSYNC", _) => Self::Fsync,
            ("FDSYNC", _) => Self::Fdsync,
            ("POLL", _) => Self::Poll,
            ("NOOP", _) => Self::Noop,
            ("PREADV", false) => Self::Preadv,
            ("PWRITEV", false) => Self::Pwritev,
            ("PREADV", true) => Self::SyscallPreadv,
            ("PWRITEV", true) => Self::SyscallPwritev,
            ("READV", _) => Self::Readv,
            ("WRITEV", _) => Self::Writev,
            ("PREADV2", _) => Self::Preadv2,
            ("PWRITEV2", _) => Self::Pwritev2,
            _ => Self::Other(u16::MAX),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pread => "PREAD",
            Self::Pwrite => "PWRITE",
            Self::Fsync => "FSYNC",
            Self::Fdsync => "FDSYNC",
            Self::Poll => "POLL",
            Self::Noop => "NOOP",
            Self::Preadv | Self::SyscallPreadv => "PREADV",
            Self::Pwritev | Self::SyscallPwritev => "PWRITEV",
            Self::Readv => "READV",
            Self::Writev => "WRITEV",
            Self::Preadv2 => "PREADV2",
            Self::Pwritev2 => "PWRITEV2",
            Self::Other(_) => "UNKNOWN",
        }
    }

    /// The vectored AIO opcodes (not the synchronous vectored syscalls).
    pub fn is_vectored(self) -> bool {
        matches!(self, Self::Preadv | Self::Pwritev)
    }

    pub fn is_syscall(self) -> bool {
        matches!(
            self,
            Self::Readv
                | Self::Writev
                | Self::SyscallPreadv
                | Self::SyscallPwritev
                | Self::Preadv2
                | Self::Pwritev2
        )
    }
}

/// The NUL-padded task name as text (lossy: comm is bytes, not UTF-8).
pub fn comm_str(comm: &[u8; 16]) -> std::borrow::Cow<'_, str> {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..len])
}

/// Derived views of a record; `None` stands for "not known" (JSON null).
pub trait IocbView {
    fn op(&self) -> Op;
    /// Bytes requested, unless the iovec array could not be read.
    fn requested_bytes(&self) -> Option<u64>;
    /// The io_event result, unless io_submit swallowed the errno.
    fn result(&self) -> Option<i64>;
    fn rejected(&self) -> bool;
    fn reaped_ns(&self) -> Option<u64>;
    /// Submit → reap.
    fn latency_ns(&self) -> Option<u64>;
    /// A synchronous vectored syscall rather than an iocb.
    fn is_syscall_record(&self) -> bool;
    /// The file offset, unless the call used the file position (readv/writev).
    fn file_offset(&self) -> Option<i64>;
    /// "major:minor" of the dispatch's device.
    fn device(&self) -> Option<DevName>;
    /// Stages, each `None` where it does not exist (no dispatch, no bio…):
    /// submit → filesystem dispatch,
    fn dispatch_ns(&self) -> Option<u64>;
    /// dispatch → first bio queued,
    fn queue_ns(&self) -> Option<u64>;
    /// first bio queued → last request completed,
    fn device_ns(&self) -> Option<u64>;
    /// last request completed → kernel completion of the iocb,
    fn end_io_ns(&self) -> Option<u64>;
    /// kernel completion → handed to the application (io_getevents return).
    fn reap_lag_ns(&self) -> Option<u64>;
    /// Monotonic ns of the kernel-side completion.
    fn complete_ns(&self) -> Option<u64>;
}

fn nonzero(ts: u64) -> Option<u64> {
    (ts != 0).then_some(ts)
}

fn span(from: u64, to: u64) -> Option<u64> {
    (from != 0 && to != 0).then(|| to.saturating_sub(from))
}

/// A device as "major:minor", from the kernel's dev_t encoding in
/// tracepoints (major << 20 | minor). Formatted where it is written, so a
/// record costs no allocation for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevName(pub u32);

impl std::fmt::Display for DevName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0 >> 20, self.0 & 0xf_ffff)
    }
}

impl serde::Serialize for DevName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

pub fn dev_name(dev: u32) -> String {
    DevName(dev).to_string()
}

impl IocbView for IocbRecord {
    fn op(&self) -> Op {
        Op::from_opcode(self.opcode)
    }
    fn requested_bytes(&self) -> Option<u64> {
        (self.flags & IOCB_BYTES_UNKNOWN == 0).then_some(self.bytes)
    }
    fn result(&self) -> Option<i64> {
        (self.flags & IOCB_RES_UNKNOWN == 0).then_some(self.res)
    }
    fn rejected(&self) -> bool {
        self.flags & IOCB_REJECTED != 0
    }
    fn reaped_ns(&self) -> Option<u64> {
        (!self.rejected() && self.reap_ns != 0).then_some(self.reap_ns)
    }
    fn latency_ns(&self) -> Option<u64> {
        self.reaped_ns()
            .map(|reap| reap.saturating_sub(self.submit_ns))
    }
    fn is_syscall_record(&self) -> bool {
        self.kind == RECORD_SYSCALL
    }
    fn file_offset(&self) -> Option<i64> {
        (self.offset >= 0).then_some(self.offset)
    }
    fn device(&self) -> Option<DevName> {
        (self.dispatches != 0).then_some(DevName(self.dev))
    }
    fn dispatch_ns(&self) -> Option<u64> {
        span(self.submit_ns, self.dispatch_ts)
    }
    fn queue_ns(&self) -> Option<u64> {
        span(self.dispatch_ts, self.first_bio_ts)
    }
    fn device_ns(&self) -> Option<u64> {
        span(self.first_bio_ts, self.last_rq_ts)
    }
    fn end_io_ns(&self) -> Option<u64> {
        span(self.last_rq_ts, self.complete_ts)
    }
    fn reap_lag_ns(&self) -> Option<u64> {
        span(self.complete_ts, self.reaped_ns().unwrap_or(0))
    }
    fn complete_ns(&self) -> Option<u64> {
        nonzero(self.complete_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_opcode() {
        let names: Vec<_> = [0u16, 1, 2, 3, 5, 6, 7, 8, 4]
            .into_iter()
            .map(|o| Op::from_opcode(o).name())
            .collect();
        assert_eq!(
            names,
            [
                "PREAD", "PWRITE", "FSYNC", "FDSYNC", "POLL", "NOOP", "PREADV", "PWRITEV",
                "UNKNOWN"
            ]
        );
        assert!(Op::Preadv.is_vectored() && Op::Pwritev.is_vectored());
        assert!(!Op::Pread.is_vectored());
    }

    #[test]
    fn comm_stops_at_nul() {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"fio");
        assert_eq!(comm_str(&comm), "fio");
        assert_eq!(comm_str(b"exactly16bytes!!"), "exactly16bytes!!");
    }

    #[test]
    fn reaped_record_has_latency() {
        let r = IocbRecord {
            submit_ns: 1_000,
            reap_ns: 4_500,
            res: 4096,
            ..Default::default()
        };
        assert_eq!(r.latency_ns(), Some(3_500));
        assert_eq!(r.result(), Some(4096));
    }

    #[test]
    fn rejected_record_has_no_reap_time() {
        let r = IocbRecord {
            flags: IOCB_REJECTED,
            res: -22,
            submit_ns: 5,
            ..Default::default()
        };
        assert_eq!(r.reaped_ns(), None);
        assert_eq!(r.latency_ns(), None);
        assert_eq!(r.result(), Some(-22));
        let unknown = IocbRecord {
            flags: IOCB_REJECTED | IOCB_RES_UNKNOWN,
            ..r
        };
        assert_eq!(unknown.result(), None);
    }

    #[test]
    fn stages_partition_the_latency_and_are_null_where_absent() {
        let r = IocbRecord {
            submit_ns: 1_000,
            dispatch_ts: 1_200,
            first_bio_ts: 1_300,
            last_rq_ts: 5_300,
            complete_ts: 5_400,
            reap_ns: 6_000,
            dispatches: 1,
            dev: (254 << 20) | 3,
            ..Default::default()
        };
        let stages = [
            r.dispatch_ns(),
            r.queue_ns(),
            r.device_ns(),
            r.end_io_ns(),
            r.reap_lag_ns(),
        ];
        assert_eq!(
            stages,
            [Some(200), Some(100), Some(4_000), Some(100), Some(600)]
        );
        assert_eq!(
            stages.iter().flatten().sum::<u64>(),
            r.latency_ns().unwrap()
        );
        assert_eq!(r.device().map(|d| d.to_string()).as_deref(), Some("254:3"));
        // Buffered I/O: no dispatch, no bio, no kernel completion seen.
        let buffered = IocbRecord {
            submit_ns: 10,
            reap_ns: 50,
            ..Default::default()
        };
        assert_eq!(buffered.dispatch_ns(), None);
        assert_eq!(buffered.device_ns(), None);
        assert_eq!(buffered.reap_lag_ns(), None);
        assert_eq!(buffered.device(), None);
    }

    #[test]
    fn syscall_opcodes_have_their_names() {
        use aio_trace_common::{SYSCALL_PREADV, SYSCALL_PWRITEV2, SYSCALL_READV};
        assert_eq!(Op::from_opcode(SYSCALL_READV).name(), "READV");
        assert_eq!(Op::from_opcode(SYSCALL_PREADV).name(), "PREADV");
        assert_eq!(Op::from_opcode(SYSCALL_PWRITEV2).name(), "PWRITEV2");
        assert!(Op::from_opcode(SYSCALL_PREADV).is_syscall());
        assert!(!Op::from_opcode(SYSCALL_PREADV).is_vectored());
    }

    #[test]
    fn unreadable_iovecs_mean_unknown_bytes() {
        let r = IocbRecord {
            flags: IOCB_BYTES_UNKNOWN,
            bytes: 0,
            ..Default::default()
        };
        assert_eq!(r.requested_bytes(), None);
    }
}
