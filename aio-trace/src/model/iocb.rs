//! What an `IocbRecord` means: the interface it came through, its opcode's
//! name and its derived fields.

use aio_trace_common::{
    API_IO_URING, IOCB_BYTES_UNKNOWN, IOCB_CMD_FDSYNC, IOCB_CMD_FSYNC, IOCB_CMD_NOOP,
    IOCB_CMD_POLL, IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV,
    IOCB_REJECTED, IOCB_RES_UNKNOWN, IORING_OP_NAMES, IocbRecord, RECORD_SYSCALL, SYSCALL_PREADV,
    SYSCALL_PREADV2, SYSCALL_PWRITEV, SYSCALL_PWRITEV2, SYSCALL_READV, SYSCALL_WRITEV, UringData,
    uring_data, uring_op_name,
};

/// The interface a request came through: Linux AIO (io_submit), io_uring,
/// or a synchronous vectored syscall. Records name it `"aio"`, `"io_uring"`
/// and `"sync"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    #[default]
    Aio,
    IoUring,
    Sync,
}

impl Api {
    pub const ALL: [Self; 3] = [Self::Aio, Self::IoUring, Self::Sync];

    pub fn name(self) -> &'static str {
        match self {
            Self::Aio => "aio",
            Self::IoUring => "io_uring",
            Self::Sync => "sync",
        }
    }

    /// The inverse of [`Api::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|api| api.name() == name)
    }

    /// What a recording without an `api` field meant: it predates io_uring,
    /// so a `"syscall"` record is synchronous and the rest are AIO.
    pub fn of_kind(syscall: bool) -> Self {
        if syscall { Self::Sync } else { Self::Aio }
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Api {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Api {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Api;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#""aio", "io_uring" or "sync""#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Api, E> {
                Api::from_name(v)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(Name)
    }
}

/// An opcode as the record names it: the AIO and syscall ops by variant,
/// io_uring's by its `IORING_OP_*` value.
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
    /// An AIO opcode this version does not know (the kernel rejects it with -EINVAL).
    Other(u16),
    /// An io_uring opcode (`IORING_OP_*`), known to this version or not.
    Uring(u16),
}

impl Op {
    /// The op of a record's opcode: the same number means another op in
    /// each interface (1 is AIO's PWRITE and io_uring's READV).
    pub fn new(api: Api, opcode: u16) -> Self {
        match api {
            Api::IoUring => Self::Uring(opcode),
            Api::Aio | Api::Sync => Self::from_aio_opcode(opcode),
        }
    }

    /// `IOCB_CMD_*` and `SYSCALL_*` do not overlap: one table for both.
    fn from_aio_opcode(opcode: u16) -> Self {
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

    /// The opcode this op stands for (`IOCB_CMD_*`, `SYSCALL_*` or `IORING_OP_*`).
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
            Self::Other(o) | Self::Uring(o) => o,
        }
    }

    /// The op a record's `op` name stands for under its api: the inverse of
    /// [`Op::name`] (PREADV/PWRITEV are the syscalls of `sync` records,
    /// READV/WRITEV io_uring's ops of `io_uring` ones). An unknown name is
    /// `Other(u16::MAX)`, or `Uring(u16::MAX)` under io_uring.
    pub fn from_name(name: &str, api: Api) -> Self {
        let syscall = match api {
            Api::IoUring => {
                let opcode = IORING_OP_NAMES.iter().position(|&n| n == name);
                return Self::Uring(opcode.map_or(u16::MAX, |o| o as u16));
            }
            Api::Aio => false,
            Api::Sync => true,
        };
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
            Self::Uring(o) => uring_op_name(o).unwrap_or("UNKNOWN"),
        }
    }

    /// How an io_uring op's SQE describes its data; `None` for the other apis.
    fn uring_data(self) -> Option<UringData> {
        match self {
            Self::Uring(o) => Some(u8::try_from(o).map_or(UringData::None, uring_data)),
            _ => None,
        }
    }

    /// The asynchronous ops of an iovec array: AIO's PREADV/PWRITEV and
    /// io_uring's READV/WRITEV (and their _FIXED forms), the vectored side of
    /// the scalar-against-vectored comparison. Not the synchronous vectored
    /// syscalls.
    pub fn is_vectored(self) -> bool {
        matches!(self, Self::Preadv | Self::Pwritev) || self.uring_data() == Some(UringData::Iovec)
    }

    /// The asynchronous ops of one buffer: AIO's PREAD/PWRITE and io_uring's
    /// READ/WRITE (and READ_FIXED/WRITE_FIXED), the scalar side.
    pub fn is_scalar(self) -> bool {
        matches!(self, Self::Pread | Self::Pwrite) || self.uring_data() == Some(UringData::Buffer)
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
    fn api(&self) -> Api;
    fn op(&self) -> Op;
    /// Bytes requested, unless the iovec array could not be read.
    fn requested_bytes(&self) -> Option<u64>;
    /// The io_event result, unless io_submit swallowed the errno.
    fn result(&self) -> Option<i64>;
    fn rejected(&self) -> bool;
    fn reaped_ns(&self) -> Option<u64>;
    /// Submit → reap. For io_uring, submit → kernel completion (the CQE
    /// posted) when the application took the CQE from the ring in user
    /// memory instead of waiting for it in io_uring_enter: the request is
    /// done for the application once its CQE is there, and no later event
    /// marks the moment it looked.
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
    /// kernel completion → handed to the application (io_getevents or
    /// io_uring_enter return).
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
    fn api(&self) -> Api {
        if self.kind == RECORD_SYSCALL {
            Api::Sync
        } else if self.api == API_IO_URING {
            Api::IoUring
        } else {
            Api::Aio
        }
    }
    fn op(&self) -> Op {
        Op::new(self.api(), self.opcode)
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
        let end = match self.api() {
            Api::IoUring if !self.rejected() => self.reaped_ns().or(self.complete_ns()),
            _ => self.reaped_ns(),
        };
        end.map(|end| end.saturating_sub(self.submit_ns))
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
            .map(|o| Op::new(Api::Aio, o).name())
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
        assert_eq!(Op::new(Api::Sync, SYSCALL_READV).name(), "READV");
        assert_eq!(Op::new(Api::Sync, SYSCALL_PREADV).name(), "PREADV");
        assert_eq!(Op::new(Api::Sync, SYSCALL_PWRITEV2).name(), "PWRITEV2");
        assert!(Op::new(Api::Sync, SYSCALL_PREADV).is_syscall());
        assert!(!Op::new(Api::Sync, SYSCALL_PREADV).is_vectored());
    }

    #[test]
    fn io_uring_opcodes_have_their_names_under_their_api() {
        use aio_trace_common::{
            IORING_OP_FSYNC, IORING_OP_READ, IORING_OP_READ_FIXED, IORING_OP_READV,
            IORING_OP_READV_FIXED, IORING_OP_WRITE_FIXED, IORING_OP_WRITEV,
        };
        let uring = |o: u8| Op::new(Api::IoUring, o.into());
        // The same number is another op in each interface.
        assert_eq!(uring(IORING_OP_READV).name(), "READV");
        assert_eq!(Op::new(Api::Aio, IORING_OP_READV.into()).name(), "PWRITE");
        assert_eq!(uring(IORING_OP_READ_FIXED).name(), "READ_FIXED");
        assert_eq!(uring(IORING_OP_FSYNC).name(), "FSYNC");
        assert_eq!(Op::new(Api::IoUring, 200).name(), "UNKNOWN");
        for o in [IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_READV_FIXED] {
            assert!(uring(o).is_vectored() && !uring(o).is_scalar(), "{o}");
        }
        for o in [IORING_OP_READ, IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED] {
            assert!(uring(o).is_scalar() && !uring(o).is_vectored(), "{o}");
        }
        assert!(!uring(IORING_OP_FSYNC).is_vectored() && !uring(IORING_OP_FSYNC).is_scalar());
        assert!(!uring(IORING_OP_READV).is_syscall());
    }

    #[test]
    fn names_round_trip_under_each_api() {
        let ops = (0..=IORING_OP_NAMES.len() as u16)
            .map(|o| Op::new(Api::IoUring, o))
            .chain([0u16, 1, 2, 3, 5, 6, 7, 8].map(|o| Op::new(Api::Aio, o)))
            .chain(
                [
                    SYSCALL_READV,
                    SYSCALL_WRITEV,
                    SYSCALL_PREADV,
                    SYSCALL_PWRITEV,
                    SYSCALL_PREADV2,
                    SYSCALL_PWRITEV2,
                ]
                .map(|o| Op::new(Api::Sync, o)),
            );
        for op in ops {
            let api = match op {
                Op::Uring(_) => Api::IoUring,
                op if op.is_syscall() => Api::Sync,
                _ => Api::Aio,
            };
            let back = Op::from_name(op.name(), api);
            if op.name() == "UNKNOWN" {
                assert_eq!(back, Op::Uring(u16::MAX));
            } else {
                assert_eq!(back, op, "{} under {api}", op.name());
            }
        }
        assert_eq!(Op::from_name("PREADV", Api::Aio), Op::Preadv);
        assert_eq!(Op::from_name("PREADV", Api::Sync), Op::SyscallPreadv);
        assert_eq!(Op::from_name("READV", Api::Sync), Op::Readv);
        assert_eq!(Op::from_name("READV", Api::IoUring), Op::Uring(1));
        assert_eq!(Op::from_name("PREADV", Api::IoUring), Op::Uring(u16::MAX));
        assert_eq!(Op::from_name("NOP", Api::Aio), Op::Other(u16::MAX));
    }

    #[test]
    fn api_names_round_trip_and_syscall_records_are_sync() {
        for api in Api::ALL {
            assert_eq!(Api::from_name(api.name()), Some(api));
            let json = serde_json::to_string(&api).unwrap();
            assert_eq!(serde_json::from_str::<Api>(&json).unwrap(), api);
        }
        assert_eq!(Api::from_name("uring"), None);
        assert!(serde_json::from_str::<Api>(r#""posix""#).is_err());
        let uring = IocbRecord {
            api: aio_trace_common::API_IO_URING,
            ..Default::default()
        };
        assert_eq!(uring.api(), Api::IoUring);
        // A syscall record is synchronous whatever its api byte says.
        let syscall = IocbRecord {
            kind: RECORD_SYSCALL,
            ..uring
        };
        assert_eq!(syscall.api(), Api::Sync);
        assert_eq!(IocbRecord::default().api(), Api::Aio);
    }

    #[test]
    fn io_uring_latency_ends_at_the_cqe_unless_reaped_in_io_uring_enter() {
        let posted = IocbRecord {
            api: aio_trace_common::API_IO_URING,
            submit_ns: 1_000,
            complete_ts: 9_000,
            ..Default::default()
        };
        // Taken from the CQ ring in user memory: no reap, latency to the CQE.
        assert_eq!(posted.reaped_ns(), None);
        assert_eq!(posted.latency_ns(), Some(8_000));
        assert_eq!(posted.reap_lag_ns(), None);
        // Waited for in io_uring_enter: latency to its return, lag after the CQE.
        let waited = IocbRecord {
            reap_ns: 10_000,
            ..posted
        };
        assert_eq!(waited.latency_ns(), Some(9_000));
        assert_eq!(waited.reap_lag_ns(), Some(1_000));
        let refused = IocbRecord {
            flags: IOCB_REJECTED,
            complete_ts: 0,
            ..posted
        };
        assert_eq!(refused.latency_ns(), None);
        // AIO keeps submit → reap: a ring-reaped iocb has no latency.
        let aio = IocbRecord {
            api: aio_trace_common::API_AIO,
            ..posted
        };
        assert_eq!(aio.latency_ns(), None);
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
