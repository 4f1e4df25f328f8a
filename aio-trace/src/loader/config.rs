//! What to trace (`TraceConfig`), and the globals it turns into: the values
//! the loader writes into the kernel half before load.
//!
//! Layer: loader (user half). Imports the shared config types and names of
//! `aio-trace-common`, `btf` for the kernel struct offsets, and aya's
//! `EbpfLoader`.

use std::{path::Path, time::Duration};

use aio_trace_common::{
    CommFilter, DEFAULT_RING_BYTES, GLOBAL_ARGS_FROM_REGS, GLOBAL_FILTER_CGROUP_LEVELS,
    GLOBAL_FILTER_COMM, GLOBAL_FILTER_PIDS, GLOBAL_KERNEL_OFFSETS, GLOBAL_MIDFLIGHT_UNTIL_NS,
    GLOBAL_WAKEUP_BYTES, KernelOffsets, MAP_EVENTS,
};
use aya::EbpfLoader;

use super::LoadError;
use crate::{blockdev::Disk, btf, cgroup::Cgroup};

/// What to trace and how much memory to give the kernel half.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    /// Only these processes (tgids); empty: every process.
    pub pids: Vec<u32>,
    /// Only tasks with this exact comm.
    pub comm: Option<String>,
    pub ring_bytes: u32,
    /// Turn on the kernel's BPF run-time statistics (kernel.bpf_stats_enabled)
    /// for as long as the tracer lives, to measure its own cost.
    pub bpf_stats: bool,
    /// Attribute dispatches and bios to iocbs (the raw tracepoint programs).
    /// Off, records have no dispatch, bio, device or stage data, and the
    /// kernel half costs about 40 % as much per iocb.
    pub block: bool,
    /// Saved args: the entry programs of io_getevents, io_setup and
    /// io_destroy keep the arguments for the exits (map `SAVED_ARGS`) even
    /// where the exits could read them from the caller's registers: what a
    /// kernel without BTF gets (for the tests).
    pub saved_args: bool,
    /// How long after load an io_event of an iocb never seen submitted counts
    /// as in flight at the start (`inflight_at_start`) rather than a miss
    /// (`unmatched`): the session's in-flight timeout, past which such an
    /// iocb would have aged out.
    pub start_window: Duration,
    /// Keep only the records whose file is on this disk. Applied by the
    /// session in user space, not in the kernel half: a record's device is
    /// known only from its dispatch, which comes after the submit the kernel
    /// filters on.
    pub disk: Option<Disk>,
    /// Only tasks in these cgroups (v2) or below them; empty: every cgroup.
    pub cgroups: Vec<Cgroup>,
    /// The light tier when above 1: iocbs are counted in the kernel, and the
    /// I/O of 1 in this many units of time (a sampling window) is traced in
    /// full (see `session::Sampler`).
    pub sample_every: u64,
    /// The light tier's share of one CPU (`--budget`): `sample_every`
    /// adapts to keep the BPF time under it.
    pub budget: Option<f64>,
}

impl TraceConfig {
    /// Whether this trace runs the light tier.
    pub fn light(&self) -> bool {
        self.sample_every > 1
    }
}

/// The default `start_window`: the default in-flight timeout.
pub const DEFAULT_START_WINDOW: Duration = Duration::from_secs(30);

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            pids: Vec::new(),
            comm: None,
            ring_bytes: DEFAULT_RING_BYTES,
            bpf_stats: false,
            block: true,
            saved_args: false,
            start_window: DEFAULT_START_WINDOW,
            disk: None,
            cgroups: Vec::new(),
            sample_every: 1,
            budget: None,
        }
    }
}

/// The kernel half's globals for one `TraceConfig`.
pub(super) struct Globals {
    pub filter_pids: u8,
    pub comm: CommFilter,
    /// Bit n: a filtered cgroup sits at level n; 0: no cgroup filter.
    pub cgroup_levels: u64,
    pub wakeup_bytes: u64,
    /// Zero when unknown (see `offsets_error`).
    pub offsets: KernelOffsets,
    /// Why the kernel struct offsets are unknown: the raw tracepoint
    /// programs are then skipped with this reason, and AIO tracing goes on.
    pub offsets_error: Option<String>,
    /// 1: exits read their arguments from the registers; 0: saved args.
    pub args_from_regs: u8,
    pub ring_bytes: u32,
    pub midflight_until_ns: u64,
}

impl Globals {
    pub fn new(config: &TraceConfig) -> Result<Self, LoadError> {
        let offsets = if config.block {
            btf::kernel_offsets()
        } else {
            Ok(KernelOffsets::default())
        };
        // Reading the caller's registers takes helpers that need the kernel's BTF.
        let args_from_regs = !config.saved_args && Path::new(btf::VMLINUX_BTF).exists();
        Ok(Self {
            filter_pids: u8::from(!config.pids.is_empty()),
            comm: comm_filter(config.comm.as_deref())?,
            cgroup_levels: config
                .cgroups
                .iter()
                .fold(0, |levels, c| levels | 1 << c.level),
            wakeup_bytes: wakeup_bytes(config.ring_bytes),
            offsets_error: offsets.as_ref().err().map(ToString::to_string),
            offsets: offsets.unwrap_or_default(),
            args_from_regs: u8::from(args_from_regs),
            ring_bytes: config.ring_bytes,
            midflight_until_ns: crate::clock::monotonic_ns()
                .saturating_add(u64::try_from(config.start_window.as_nanos()).unwrap_or(u64::MAX)),
        })
    }

    /// A loader that writes these globals (and sizes the ring buffer).
    pub fn loader(&self) -> EbpfLoader<'_> {
        let mut loader = EbpfLoader::new();
        loader
            .override_global(GLOBAL_ARGS_FROM_REGS, &self.args_from_regs, true)
            .override_global(GLOBAL_FILTER_PIDS, &self.filter_pids, true)
            .override_global(GLOBAL_FILTER_COMM, &self.comm, true)
            .override_global(GLOBAL_FILTER_CGROUP_LEVELS, &self.cgroup_levels, true)
            .override_global(GLOBAL_WAKEUP_BYTES, &self.wakeup_bytes, true)
            .override_global(GLOBAL_KERNEL_OFFSETS, &self.offsets, true)
            .override_global(GLOBAL_MIDFLIGHT_UNTIL_NS, &self.midflight_until_ns, true)
            .map_max_entries(MAP_EVENTS, self.ring_bytes);
        loader
    }
}

fn comm_filter(comm: Option<&str>) -> Result<CommFilter, LoadError> {
    let mut filter = CommFilter::default();
    if let Some(comm) = comm {
        if comm.len() > 15 {
            return Err(LoadError::CommTooLong(comm.to_owned()));
        }
        filter.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        filter.enabled = 1;
    }
    Ok(filter)
}

/// Wake the reader when 1/16 of the ring is pending (at most 256 KiB): enough
/// to batch hundreds of records per wake-up, far from overflowing.
fn wakeup_bytes(ring_bytes: u32) -> u64 {
    u64::from(ring_bytes / 16).min(256 << 10)
}
