//! Which programs the kernel half has, where each attaches, and whether this
//! machine has what tracing needs (privileges, tracefs, the required
//! tracepoints).
//!
//! Layer: loader (user half). Imports the shared names of
//! `aio-trace-common`, `privileges` and `tracefs`; no aya.

use aio_trace_common::names::*;

use super::LoadError;
use crate::{privileges, tracefs};

/// How a program attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// A tracepoint program, reading the event's record.
    TracePoint,
    /// A raw tracepoint program, reading the event's struct pointers at
    /// offsets resolved from kernel BTF (see `crate::btf`).
    Raw,
}

/// A program, its tracepoint, and whether tracing can go on without it.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub program: &'static str,
    pub group: &'static str,
    pub required: bool,
    pub attach: Attach,
    /// A saved-args entry program: it only keeps the syscall's arguments for
    /// its exit, and is attached only where the exit cannot read them from
    /// the caller's registers (a kernel without BTF, or
    /// `TraceConfig::saved_args`).
    pub saved_args: bool,
    /// In the light tier, attached only around its sampling windows (see
    /// `Sampled`); always attached in the full tier.
    pub sampled: Sampled,
}

/// When a probe runs in the light tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampled {
    /// Always: the light tier's counters, or a cost per call, not per I/O.
    No,
    /// While a window is open: the entries that decide which calls are
    /// traced in full.
    Entry,
    /// From a window's opening until its iocbs have completed: the deep
    /// programs that run per dispatch, bio, request or completion.
    Deep,
}

impl Probe {
    const fn required(group: &'static str, program: &'static str) -> Self {
        Self {
            program,
            group,
            required: true,
            attach: Attach::TracePoint,
            saved_args: false,
            sampled: Sampled::No,
        }
    }

    const fn optional(group: &'static str, program: &'static str) -> Self {
        Self {
            required: false,
            ..Self::required(group, program)
        }
    }

    const fn saved_args_entry(group: &'static str, program: &'static str) -> Self {
        Self {
            saved_args: true,
            ..Self::optional(group, program)
        }
    }

    const fn raw(group: &'static str, program: &'static str) -> Self {
        Self {
            attach: Attach::Raw,
            ..Self::optional(group, program)
        }
        .deep()
    }

    /// Attached in the light tier too: it decides for itself (`TIER`).
    const fn always(self) -> Self {
        Self {
            sampled: Sampled::No,
            ..self
        }
    }

    /// Attached only while a light tier's window is open.
    const fn window_entry(self) -> Self {
        Self {
            sampled: Sampled::Entry,
            ..self
        }
    }

    /// Attached only while a light tier's window's iocbs may be in flight.
    const fn deep(self) -> Self {
        Self {
            sampled: Sampled::Deep,
            ..self
        }
    }

    /// Whether this is a syscall exit program (attached before the entries:
    /// see `attach::attach_all`).
    pub fn is_exit(&self) -> bool {
        self.program.starts_with("sys_exit_")
    }

    /// `group:program`, as tracefs and the user see it.
    pub fn tracepoint(&self) -> String {
        format!("{}:{}", self.group, self.program)
    }
}

const SYSCALLS: &str = "syscalls";

/// Every attach point of the kernel half; the program is named after its tracepoint.
/// The AIO syscall boundary is required; the rest (io_pgetevents, context
/// lifetimes, dispatch and block attribution, synchronous vectored calls,
/// io_uring) degrade with a reason when absent.
pub const PROBES: &[Probe] = &[
    Probe::required(SYSCALLS, PROG_SYS_ENTER_IO_SUBMIT).window_entry(),
    Probe::required(SYSCALLS, PROG_SYS_EXIT_IO_SUBMIT),
    Probe::required(SYSCALLS, PROG_SYS_EXIT_IO_GETEVENTS),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_IO_PGETEVENTS),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_IO_SETUP),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_IO_DESTROY),
    Probe::saved_args_entry(SYSCALLS, PROG_SYS_ENTER_IO_GETEVENTS),
    Probe::saved_args_entry(SYSCALLS, PROG_SYS_ENTER_IO_PGETEVENTS),
    Probe::saved_args_entry(SYSCALLS, PROG_SYS_ENTER_IO_SETUP),
    // Always: it keeps the call's entry time (see the program).
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_IO_DESTROY),
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_IO_CANCEL),
    Probe::optional("sched", PROG_SCHED_PROCESS_EXIT),
    Probe::raw("iomap", PROG_IOMAP_DIO_RW_BEGIN),
    Probe::raw("iomap", PROG_IOMAP_DIO_COMPLETE),
    Probe::raw("block", PROG_BLOCK_BIO_QUEUE),
    Probe::raw("block", PROG_BLOCK_SPLIT),
    Probe::raw("block", PROG_BLOCK_BIO_BACKMERGE),
    Probe::raw("block", PROG_BLOCK_BIO_FRONTMERGE),
    Probe::raw("block", PROG_BLOCK_RQ_ISSUE),
    Probe::raw("block", PROG_BLOCK_RQ_COMPLETE),
    Probe::raw("block", PROG_BLOCK_BIO_COMPLETE),
    Probe::raw("io_uring", PROG_IO_URING_SUBMIT_REQ).always(),
    Probe::raw("io_uring", PROG_IO_URING_REQ_FAILED).always(),
    Probe::raw("io_uring", PROG_IO_URING_COMPLETE),
    Probe::raw("io_uring", PROG_IO_URING_CQRING_WAIT).always(),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_IO_URING_ENTER),
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_READV).window_entry(),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_READV),
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_WRITEV).window_entry(),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_WRITEV),
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_PREADV).window_entry(),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_PREADV),
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_PWRITEV).window_entry(),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_PWRITEV),
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_PREADV2).window_entry(),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_PREADV2),
    Probe::optional(SYSCALLS, PROG_SYS_ENTER_PWRITEV2).window_entry(),
    Probe::optional(SYSCALLS, PROG_SYS_EXIT_PWRITEV2),
];

/// Fails with the user's next step if this process or kernel cannot trace
/// at all: missing capabilities, no tracefs, a required tracepoint absent.
pub fn check_prerequisites() -> Result<(), LoadError> {
    let missing = privileges::missing_caps(privileges::effective_caps());
    if !missing.is_empty() {
        return Err(LoadError::MissingCapabilities(missing.join(" and ")));
    }
    tracefs::ensure_mounted().map_err(LoadError::Tracefs)?;
    for probe in PROBES.iter().filter(|p| p.required) {
        if !tracefs::tracepoint_exists(probe.group, probe.program) {
            return Err(LoadError::MissingTracepoint(probe.tracepoint()));
        }
    }
    Ok(())
}

/// Why a probe was skipped, in one line. A program the verifier refused
/// carries the verifier's whole log (hundreds of lines); its last word, the
/// line saying what was wrong, is kept.
pub fn short_reason(reason: &str) -> String {
    const MARK: &str = "Verifier output:";
    let Some(at) = reason.find(MARK) else {
        return reason.lines().next().unwrap_or_default().to_owned();
    };
    let head = reason[..at].trim_end().trim_end_matches('.');
    // The log ends with statistics ("verification time …", "stack depth …",
    // "processed … insns …"); the refusal is the line before them.
    let verdict = reason[at + MARK.len()..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .rfind(|l| {
            !(l.starts_with("verification time")
                || l.starts_with("stack depth")
                || l.starts_with("processed ")
                || l.starts_with(';'))
        });
    match verdict {
        Some(verdict) => format!("{head}: the verifier said \"{verdict}\""),
        None => head.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::short_reason;

    #[test]
    fn a_verifier_refusal_is_cut_to_its_verdict() {
        let reason = "the BPF_PROG_LOAD syscall returned Invalid argument (os error 22). \
            Verifier output: 0: R1=ctx() R10=fp0\n; fn x() @ a.rs:1\n1: (85) call bpf_get_current_pid_tgid#14\n\
            1264: (7b) *(u64 *)(r4 +8) = r3\ncannot spill pointers to stack into stack frame of the caller\n\
            verification time 1866 usec\nstack depth 152+408+0\n\
            processed 295 insns (limit 1000000) max_states_per_insn 0\n";
        assert_eq!(
            short_reason(reason),
            "the BPF_PROG_LOAD syscall returned Invalid argument (os error 22): the verifier said \
             \"cannot spill pointers to stack into stack frame of the caller\""
        );
    }

    #[test]
    fn other_reasons_keep_their_first_line() {
        assert_eq!(
            short_reason("the tracepoint does not exist on this kernel"),
            "the tracepoint does not exist on this kernel"
        );
        assert_eq!(short_reason("first\nsecond"), "first");
    }
}
