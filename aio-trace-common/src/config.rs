//! Settings the loader writes into the kernel half before load.

/// Names of the eBPF globals (`EbpfLoader::override_global`).
pub const GLOBAL_FILTER_PIDS: &str = "FILTER_PIDS";
pub const GLOBAL_FILTER_COMM: &str = "FILTER_COMM";
pub const GLOBAL_WAKEUP_BYTES: &str = "WAKEUP_BYTES";

/// The most iocbs one io_submit (or events one io_getevents) the kernel half
/// walks. Larger calls are truncated and counted as `LossCause::BatchTruncated`.
pub const MAX_IOCBS_PER_CALL: u32 = 4096;

/// Default size of the in-flight table (iocbs submitted but not yet reaped).
pub const DEFAULT_INFLIGHT_ENTRIES: u32 = 65_536;

/// Default ring buffer size in bytes (a power of two, a multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 16 << 20;

/// The comm filter: a NUL-padded task name, matched exactly when `enabled` is 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommFilter {
    pub comm: [u8; 16],
    pub enabled: u8,
    pub _pad: [u8; 7],
}
const _: () = assert!(core::mem::size_of::<CommFilter>() == 24);

#[cfg(feature = "user")]
unsafe impl aya::Pod for CommFilter {}
