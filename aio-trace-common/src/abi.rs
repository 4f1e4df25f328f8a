//! The Linux AIO user ABI (include/uapi/linux/aio_abi.h) as the tracer reads it
//! from user memory.

/// `IOCB_CMD_*` opcodes.
pub const IOCB_CMD_PREAD: u16 = 0;
pub const IOCB_CMD_PWRITE: u16 = 1;
pub const IOCB_CMD_FSYNC: u16 = 2;
pub const IOCB_CMD_FDSYNC: u16 = 3;
pub const IOCB_CMD_POLL: u16 = 5;
pub const IOCB_CMD_NOOP: u16 = 6;
pub const IOCB_CMD_PREADV: u16 = 7;
pub const IOCB_CMD_PWRITEV: u16 = 8;

/// `UIO_MAXIOV`: the kernel rejects a vectored iocb with more segments (-EINVAL).
pub const UIO_MAXIOV: u32 = 1024;

/// `struct iocb` (64 bytes, little-endian field order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Iocb {
    pub aio_data: u64,
    pub aio_key: u32,
    pub aio_rw_flags: i32,
    pub aio_lio_opcode: u16,
    pub aio_reqprio: i16,
    pub aio_fildes: u32,
    /// Buffer address; for PREADV/PWRITEV the address of the `iovec` array.
    pub aio_buf: u64,
    /// Byte count; for PREADV/PWRITEV the number of `iovec` segments.
    pub aio_nbytes: u64,
    pub aio_offset: i64,
    pub aio_reserved2: u64,
    pub aio_flags: u32,
    pub aio_resfd: u32,
}
const _: () = assert!(core::mem::size_of::<Iocb>() == 64);

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Iovec {
    pub iov_base: u64,
    pub iov_len: u64,
}
const _: () = assert!(core::mem::size_of::<Iovec>() == 16);

/// `struct io_event`: `obj` is the user address of the completed iocb.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoEvent {
    pub data: u64,
    pub obj: u64,
    pub res: i64,
    pub res2: i64,
}
const _: () = assert!(core::mem::size_of::<IoEvent>() == 32);

impl Iocb {
    /// True for the opcodes whose `aio_buf`/`aio_nbytes` describe an iovec array.
    pub const fn is_vectored(&self) -> bool {
        matches!(self.aio_lio_opcode, IOCB_CMD_PREADV | IOCB_CMD_PWRITEV)
    }

    /// Segments carried by this iocb: the iovec count for the vectored
    /// opcodes, one buffer for PREAD/PWRITE, none for the rest.
    pub const fn segments(&self) -> u64 {
        match self.aio_lio_opcode {
            IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => self.aio_nbytes,
            IOCB_CMD_PREAD | IOCB_CMD_PWRITE => 1,
            _ => 0,
        }
    }
}
