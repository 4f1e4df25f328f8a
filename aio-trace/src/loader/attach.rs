//! Attaching the loaded programs to their tracepoints, degrading past the
//! optional ones that fail, and detaching them all at once.
//!
//! Layer: loader (user half). Imports aya's program types, `tracefs` and the
//! probe table (`probes`).

use aya::{
    Ebpf,
    programs::{
        ProgramError, RawTracePoint, TracePoint, raw_trace_point::RawTracePointLinkId,
        trace_point::TracePointLinkId,
    },
};

use super::{
    LoadError,
    probes::{Attach, PROBES, Probe, Sampled},
};
use crate::tracefs;

/// One attachment of one program.
#[derive(Debug)]
pub(super) enum LinkId {
    TracePoint(TracePointLinkId),
    Raw(RawTracePointLinkId),
}

/// Every attachment, by program name.
pub(super) type Links = Vec<(&'static str, LinkId)>;

/// Optional probes that could not be attached, with the reason.
pub(super) type Skipped = Vec<(Probe, String)>;

/// Which probes to attach, and why some are left out.
pub(super) struct Plan<'a> {
    /// Attach the raw tracepoint programs (`TraceConfig::block`).
    pub block: bool,
    /// The exits read their arguments from the registers: the saved-args
    /// entry programs are not needed.
    pub args_from_regs: bool,
    /// Why the raw tracepoint programs cannot run, if they cannot (no
    /// kernel struct offsets).
    pub no_offsets: Option<&'a str>,
    /// The light tier: the sampled probes wait for a window.
    pub light: bool,
}

enum AttachError {
    Absent,
    Program(ProgramError),
}

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent => f.write_str("the tracepoint does not exist on this kernel"),
            Self::Program(e) => write!(f, "{e}"),
        }
    }
}

/// Attaches every probe the plan wants. A required probe that fails stops
/// everything; an optional one is skipped with its reason.
///
/// Syscall exits go before entries: an exit that needs its entry's state
/// only counts what the entry saw, so a call caught halfway through
/// attaching counts nowhere rather than as submitted-but-never-reaped
/// (otherwise `top`'s INFL drifts by every iocb reaped between the two
/// attaches). Exits that read their arguments from the registers count
/// calls already under way at attach.
///
/// In the light tier, the probes of its sampling windows (`Sampled::Entry`
/// and `Deep`) are loaded, so that a refusal shows now, and returned
/// unattached: the windows attach them (`attach_each`).
pub(super) fn attach_all(
    ebpf: &mut Ebpf,
    plan: &Plan,
) -> Result<(Links, Skipped, Vec<Probe>), LoadError> {
    let mut links = Vec::new();
    let mut skipped = Vec::new();
    let mut deferred = Vec::new();
    let (exits, rest): (Vec<&Probe>, Vec<&Probe>) = PROBES.iter().partition(|p| p.is_exit());
    for probe in exits.into_iter().chain(rest) {
        let raw = probe.attach == Attach::Raw;
        if raw && !plan.block || probe.saved_args && plan.args_from_regs {
            continue;
        }
        if let (true, Some(reason)) = (raw, plan.no_offsets) {
            skipped.push((*probe, reason.to_owned()));
            continue;
        }
        let defer = plan.light && probe.sampled != Sampled::No;
        let attached = if defer {
            load(ebpf, probe).map(|()| None)
        } else {
            attach(ebpf, probe).map(Some)
        };
        match attached {
            Ok(Some(link)) => links.push((probe.program, link)),
            Ok(None) => deferred.push(*probe),
            Err(reason) if !probe.required => skipped.push((*probe, reason.to_string())),
            Err(AttachError::Absent) => {
                return Err(LoadError::MissingTracepoint(probe.tracepoint()));
            }
            Err(AttachError::Program(error)) => {
                return Err(LoadError::Attach {
                    program: probe.program,
                    error,
                });
            }
        }
    }
    Ok((links, skipped, deferred))
}

/// Attaches `probes`, loaded before (`attach_all`), in order; one that
/// fails now is left out, with its reason.
pub(super) fn attach_each(ebpf: &mut Ebpf, probes: &[Probe], links: &mut Links) -> Skipped {
    let mut skipped = Vec::new();
    for probe in probes {
        match attach(ebpf, probe) {
            Ok(link) => links.push((probe.program, link)),
            Err(reason) => skipped.push((*probe, reason.to_string())),
        }
    }
    skipped
}

/// Loads a probe's program (once: a loaded one is left as it is).
fn load(ebpf: &mut Ebpf, probe: &Probe) -> Result<(), AttachError> {
    if !tracefs::tracepoint_exists(probe.group, probe.program) {
        return Err(AttachError::Absent);
    }
    let program = ebpf
        .program_mut(probe.program)
        .ok_or(AttachError::Program(ProgramError::UnexpectedProgramType))?;
    let loaded = match probe.attach {
        Attach::TracePoint => {
            let program: &mut TracePoint = program.try_into().map_err(AttachError::Program)?;
            load_retrying(|| program.load())
        }
        Attach::Raw => {
            let program: &mut RawTracePoint = program.try_into().map_err(AttachError::Program)?;
            load_retrying(|| program.load())
        }
    };
    match loaded {
        Err(AttachError::Program(ProgramError::AlreadyLoaded)) => Ok(()),
        other => other,
    }
}

fn attach(ebpf: &mut Ebpf, probe: &Probe) -> Result<LinkId, AttachError> {
    load(ebpf, probe)?;
    let program = ebpf
        .program_mut(probe.program)
        .ok_or(AttachError::Program(ProgramError::UnexpectedProgramType))?;
    match probe.attach {
        Attach::TracePoint => {
            let program: &mut TracePoint = program.try_into().map_err(AttachError::Program)?;
            program
                .attach(probe.group, probe.program)
                .map(LinkId::TracePoint)
        }
        Attach::Raw => {
            let program: &mut RawTracePoint = program.try_into().map_err(AttachError::Program)?;
            program.attach(probe.program).map(LinkId::Raw)
        }
    }
    .map_err(AttachError::Program)
}

/// Attempts at loading one program, as libbpf makes (`PROG_LOAD_ATTEMPTS`).
const LOAD_ATTEMPTS: u32 = 5;

/// Loads a program, again when the verifier gave up with EAGAIN: it does so
/// when a signal is pending for the loading thread (a child exiting, a
/// timer), which says nothing about the program. Signals are blocked in
/// the thread meanwhile, so that a process-wide one (the SIGCHLD of a
/// process that handles it and runs many children) goes to another thread
/// or waits for the load, instead of failing every attempt.
fn load_retrying(mut load: impl FnMut() -> Result<(), ProgramError>) -> Result<(), AttachError> {
    let _blocked = SignalsBlocked::new();
    let mut attempt = 1;
    loop {
        match load() {
            Err(e) if attempt < LOAD_ATTEMPTS && is_eagain(&e) => attempt += 1,
            other => return other.map_err(AttachError::Program),
        }
    }
}

/// Every signal that can be blocked is, in this thread, while this lives.
struct SignalsBlocked(libc::sigset_t);

impl SignalsBlocked {
    fn new() -> Self {
        let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        let mut before = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and writes the mask it
        // replaces to `before` (it cannot fail with a valid `how`); only this thread's mask
        // changes.
        unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), before.as_mut_ptr());
            Self(before.assume_init())
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask `new` saved; the guard lives within one function, so this
        // runs in the thread `new` ran in.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

fn is_eagain(e: &ProgramError) -> bool {
    match e {
        ProgramError::LoadError { io_error, .. } => io_error.raw_os_error() == Some(libc::EAGAIN),
        _ => false,
    }
}

/// Detaches every link. Closing a tracepoint link waits out an RCU grace
/// period (~70 ms here, 1.7 s for all of them one after another, which made
/// every Ctrl-C and `q` slow); closed from parallel threads they share one.
pub(super) fn detach_all(ebpf: &mut Ebpf, links: Links) {
    let owned: Vec<Box<dyn Send>> = links
        .into_iter()
        .filter_map(|(name, link)| take_link(ebpf, name, link))
        .collect();
    std::thread::scope(|scope| {
        for link in owned {
            // Out of threads, the failed spawn drops (closes) it here.
            let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(link));
        }
    });
}

/// Detaches `links` without waiting: a thread closes them (each close waits
/// out an RCU grace period, ~70 ms), so a sampling window's end does not
/// hold up the reader.
pub(super) fn detach_later(ebpf: &mut Ebpf, links: Links) {
    let owned: Vec<Box<dyn Send>> = links
        .into_iter()
        .filter_map(|(name, link)| take_link(ebpf, name, link))
        .collect();
    if owned.is_empty() {
        return;
    }
    // One thread each, as in `detach_all`: closed one after another, ten
    // raw tracepoint links took longer than the time between two windows.
    // Out of threads, the failed spawn drops (closes) the link here.
    for link in owned {
        let _ = std::thread::Builder::new()
            .name("aio-trace-detach".into())
            .spawn(move || drop(link));
    }
}

/// The owned link, which closes when dropped.
fn take_link(ebpf: &mut Ebpf, name: &str, link: LinkId) -> Option<Box<dyn Send>> {
    let program = ebpf.program_mut(name)?;
    match link {
        LinkId::TracePoint(id) => {
            let p = <&mut TracePoint>::try_from(program).ok()?;
            Some(Box::new(p.take_link(id).ok()?))
        }
        LinkId::Raw(id) => {
            let p = <&mut RawTracePoint>::try_from(program).ok()?;
            Some(Box::new(p.take_link(id).ok()?))
        }
    }
}
