//! The monotonic clock in nanoseconds: the clock `bpf_ktime_get_ns` reads, so
//! times taken here and in the kernel programs compare directly; and the
//! boot-time clock, which a Perfetto trace maps it to.
//!
//! Layer: a leaf. It imports nothing of the crate.

/// CLOCK_MONOTONIC in ns.
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// CLOCK_BOOTTIME in ns: monotonic, plus the time suspended.
pub fn boottime_ns() -> u64 {
    read(libc::CLOCK_BOOTTIME)
}

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC and
    // CLOCK_BOOTTIME (the only clocks passed) always exist, so the call
    // cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
