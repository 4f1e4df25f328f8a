//! This process's resource usage (CPU time, resident memory) read from the
//! kernel, as an overhead sample for [`crate::model::Overhead`].
//!
//! Layer: system access that fills the model's types; imports only `model`.

use crate::model::OverheadSample;

/// This process's CPU time (user + system) and RSS now, with `bpf_run_ns`,
/// and the CPU time of the thread whose CPU-time clock is `workload_clock`
/// (from `pthread_getcpuclockid`).
pub fn sample(bpf_run_ns: Option<u64>, workload_clock: Option<libc::clockid_t>) -> OverheadSample {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage it is given (zeroed, so initialised
    // even if it failed); RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv_ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    // statm's second field: resident pages.
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    OverheadSample {
        bpf_run_ns,
        cpu_ns: tv_ns(usage.ru_utime) + tv_ns(usage.ru_stime),
        workload_cpu_ns: workload_clock.and_then(clock_ns),
        rss_bytes: pages * page,
    }
}

/// A clock's reading in nanoseconds; None if the clock is gone (its thread
/// ended).
fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and reports an
    // invalid clock as an error.
    (unsafe { libc::clock_gettime(clock, &mut ts) } == 0)
        .then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let sample = super::sample(None, None);
        assert!(sample.rss_bytes > 0 && sample.bpf_run_ns.is_none());
        assert_eq!(sample.workload_cpu_ns, None);
    }

    #[test]
    fn a_threads_cpu_time_is_part_of_the_process() {
        let sample = super::sample(None, Some(libc::CLOCK_THREAD_CPUTIME_ID));
        let thread = sample.workload_cpu_ns.unwrap();
        assert!(thread > 0 && thread <= super::sample(None, None).cpu_ns + 10_000_000);
    }
}
