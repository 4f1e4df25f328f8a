//! This process's resource usage (CPU time, resident memory) read from the
//! kernel, as an overhead sample for [`crate::model::Overhead`].
//!
//! Layer: system access that fills the model's types; imports only `model`.

use crate::model::OverheadSample;

/// This process's CPU time (user + system) and RSS now, with `bpf_run_ns`.
pub fn sample(bpf_run_ns: Option<u64>) -> OverheadSample {
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
        rss_bytes: pages * page,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let sample = super::sample(None);
        assert!(sample.rss_bytes > 0 && sample.bpf_run_ns.is_none());
    }
}
