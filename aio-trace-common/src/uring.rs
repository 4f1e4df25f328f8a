//! The io_uring user ABI (include/uapi/linux/io_uring.h) as the tracer
//! reads it: opcodes, their names, and the SQE and CQE fields it needs.

/// `IORING_OP_*` opcodes that carry data (the rest are named by
/// [`IORING_OP_NAMES`]).
pub const IORING_OP_NOP: u8 = 0;
pub const IORING_OP_READV: u8 = 1;
pub const IORING_OP_WRITEV: u8 = 2;
pub const IORING_OP_FSYNC: u8 = 3;
pub const IORING_OP_READ_FIXED: u8 = 4;
pub const IORING_OP_WRITE_FIXED: u8 = 5;
pub const IORING_OP_READ: u8 = 22;
pub const IORING_OP_WRITE: u8 = 23;
pub const IORING_OP_READ_MULTISHOT: u8 = 49;
pub const IORING_OP_READV_FIXED: u8 = 60;
pub const IORING_OP_WRITEV_FIXED: u8 = 61;

/// Every opcode's name, indexed by opcode (as the kernel's `op_str` prints
/// them, without the `IORING_OP_` prefix), up to kernel 6.18.
pub const IORING_OP_NAMES: [&str; 63] = [
    "NOP",
    "READV",
    "WRITEV",
    "FSYNC",
    "READ_FIXED",
    "WRITE_FIXED",
    "POLL_ADD",
    "POLL_REMOVE",
    "SYNC_FILE_RANGE",
    "SENDMSG",
    "RECVMSG",
    "TIMEOUT",
    "TIMEOUT_REMOVE",
    "ACCEPT",
    "ASYNC_CANCEL",
    "LINK_TIMEOUT",
    "CONNECT",
    "FALLOCATE",
    "OPENAT",
    "CLOSE",
    "FILES_UPDATE",
    "STATX",
    "READ",
    "WRITE",
    "FADVISE",
    "MADVISE",
    "SEND",
    "RECV",
    "OPENAT2",
    "EPOLL_CTL",
    "SPLICE",
    "PROVIDE_BUFFERS",
    "REMOVE_BUFFERS",
    "TEE",
    "SHUTDOWN",
    "RENAMEAT",
    "UNLINKAT",
    "MKDIRAT",
    "SYMLINKAT",
    "LINKAT",
    "MSG_RING",
    "FSETXATTR",
    "SETXATTR",
    "FGETXATTR",
    "GETXATTR",
    "SOCKET",
    "URING_CMD",
    "SEND_ZC",
    "SENDMSG_ZC",
    "READ_MULTISHOT",
    "WAITID",
    "FUTEX_WAIT",
    "FUTEX_WAKE",
    "FUTEX_WAITV",
    "FIXED_FD_INSTALL",
    "FTRUNCATE",
    "BIND",
    "LISTEN",
    "RECV_ZC",
    "EPOLL_WAIT",
    "READV_FIXED",
    "WRITEV_FIXED",
    "PIPE",
];

/// The name of an io_uring opcode, None for one newer than this table.
pub fn uring_op_name(opcode: u16) -> Option<&'static str> {
    IORING_OP_NAMES.get(usize::from(opcode)).copied()
}

/// How an opcode's `addr`/`len` describe its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UringData {
    /// `addr` is an iovec array of `len` segments.
    Iovec,
    /// `addr` is one buffer of `len` bytes.
    Buffer,
    /// No data buffer (fsync, poll, timeouts, …).
    None,
}

/// What an opcode's SQE carries.
pub const fn uring_data(opcode: u8) -> UringData {
    match opcode {
        IORING_OP_READV | IORING_OP_WRITEV | IORING_OP_READV_FIXED | IORING_OP_WRITEV_FIXED => {
            UringData::Iovec
        }
        IORING_OP_READ | IORING_OP_WRITE | IORING_OP_READ_FIXED | IORING_OP_WRITE_FIXED => {
            UringData::Buffer
        }
        _ => UringData::None,
    }
}

/// `io_uring_cqe.flags`: more completions of this request will follow
/// (multishot): the request is still in flight.
pub const IORING_CQE_F_MORE: u32 = 1 << 1;

/// `io_uring_ctx.flags`: the ring is served by a kernel SQ polling thread.
pub const IORING_SETUP_SQPOLL: u32 = 1 << 1;

/// `io_uring_enter` flags: the call waits for completions.
pub const IORING_ENTER_GETEVENTS: u32 = 1 << 0;

/// Byte offsets in `struct io_uring_sqe` (64 bytes, fixed by the uapi).
pub const SQE_OPCODE: u64 = 0;
pub const SQE_FD: u64 = 4;
pub const SQE_OFF: u64 = 8;
pub const SQE_ADDR: u64 = 16;
pub const SQE_LEN: u64 = 24;
pub const SQE_USER_DATA: u64 = 32;

/// Byte offsets in `struct io_uring_cqe` (uapi).
pub const CQE_RES: u64 = 8;
pub const CQE_FLAGS: u64 = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_opcodes() {
        assert_eq!(uring_op_name(IORING_OP_READV.into()), Some("READV"));
        assert_eq!(uring_op_name(IORING_OP_WRITEV.into()), Some("WRITEV"));
        assert_eq!(uring_op_name(IORING_OP_FSYNC.into()), Some("FSYNC"));
        assert_eq!(
            uring_op_name(IORING_OP_READ_FIXED.into()),
            Some("READ_FIXED")
        );
        assert_eq!(
            uring_op_name(IORING_OP_WRITE_FIXED.into()),
            Some("WRITE_FIXED")
        );
        assert_eq!(uring_op_name(IORING_OP_READ.into()), Some("READ"));
        assert_eq!(uring_op_name(IORING_OP_WRITE.into()), Some("WRITE"));
        assert_eq!(
            uring_op_name(IORING_OP_READ_MULTISHOT.into()),
            Some("READ_MULTISHOT")
        );
        assert_eq!(
            uring_op_name(IORING_OP_READV_FIXED.into()),
            Some("READV_FIXED")
        );
        assert_eq!(
            uring_op_name(IORING_OP_WRITEV_FIXED.into()),
            Some("WRITEV_FIXED")
        );
        assert_eq!(uring_op_name(63), None);
    }

    #[test]
    fn data_shape_by_opcode() {
        assert_eq!(uring_data(IORING_OP_READV), UringData::Iovec);
        assert_eq!(uring_data(IORING_OP_WRITE_FIXED), UringData::Buffer);
        assert_eq!(uring_data(IORING_OP_FSYNC), UringData::None);
        assert_eq!(uring_data(IORING_OP_NOP), UringData::None);
    }
}
