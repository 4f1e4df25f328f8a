//! What an `IocbRecord` means: its opcode's name and its derived fields.

use aio_trace_common::{
    IOCB_BYTES_UNKNOWN, IOCB_CMD_FDSYNC, IOCB_CMD_FSYNC, IOCB_CMD_NOOP, IOCB_CMD_POLL,
    IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV, IOCB_REJECTED,
    IOCB_RES_UNKNOWN, IocbRecord,
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
            other => Self::Other(other),
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
            Self::Preadv => "PREADV",
            Self::Pwritev => "PWRITEV",
            Self::Other(_) => "UNKNOWN",
        }
    }

    pub fn is_vectored(self) -> bool {
        matches!(self, Self::Preadv | Self::Pwritev)
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
    fn unreadable_iovecs_mean_unknown_bytes() {
        let r = IocbRecord {
            flags: IOCB_BYTES_UNKNOWN,
            bytes: 0,
            ..Default::default()
        };
        assert_eq!(r.requested_bytes(), None);
    }
}
