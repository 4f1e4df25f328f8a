//! Probe the kernel, load the eBPF object, attach what it allows, and hand
//! out typed handles on the maps the user half reads.
//!
//! Layer: loader, the only part of the user half that talks to aya and the
//! kernel's BPF syscalls. It may import `aio-trace-common`, `clock`, `btf`, `blockdev`,
//! `privileges`, `tracefs` and `model` (for the sums it returns); commands
//! and the session import it, not the other way round.
//!
//! - `probes`: the program table and what the machine must have;
//! - `config`: `TraceConfig` and the globals written before load;
//! - `attach`: attaching and detaching the programs;
//! - `maps`: the map handles;
//! - `inflight_table`: the in-flight table, shared with the kernel by mmap.

mod attach;
mod config;
pub mod inflight_table;
mod maps;
mod probes;

use aya::{Ebpf, EbpfError, maps::MapData, maps::MapError, maps::RingBuf, programs::ProgramError};
use thiserror::Error;

use self::{
    attach::{Links, Plan},
    maps::{BioOwnerTable, DeviceTable, KernelMaps},
};
pub use self::{
    config::TraceConfig,
    inflight_table::InflightTable,
    maps::{CounterTable, LossTable},
    probes::{Attach, PROBES, Probe, short_reason},
};
use aio_trace_common::{
    CtxCounters, CtxKey, DevCounters, TIER_DEEP, TIER_LIGHT, TIER_SETTLING, TIER_WINDOW,
};

use crate::{
    blockdev::Disk,
    model::{LossCounts, ProgramCost},
};

/// The eBPF object built by build.rs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/aio-trace"));

/// Why tracing could not start. Each variant's message is one sentence for the user.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("missing {0}, which loading eBPF programs needs: run as root (sudo aio-trace …)")]
    MissingCapabilities(String),
    #[error(transparent)]
    Tracefs(#[from] crate::tracefs::TracefsError),
    #[error(
        "this kernel has no tracepoint {0}, which aio-trace needs (is CONFIG_FTRACE_SYSCALLS set?)"
    )]
    MissingTracepoint(String),
    #[error("comm filter {0:?} is longer than the kernel's 15-byte task name")]
    CommTooLong(String),
    // The causes below are part of the message and deliberately not a
    // `#[source]`: the binary prints the whole chain, which would repeat them.
    #[error("the kernel refused to load aio-trace's eBPF object: {0}")]
    Load(EbpfError),
    #[error("could not attach to tracepoint {program}: {error}")]
    Attach {
        program: &'static str,
        error: ProgramError,
    },
    #[error("could not enable the kernel's BPF statistics: {0}")]
    Stats(aya::sys::SyscallError),
    #[error("eBPF map {0} is missing or of the wrong type: {1}")]
    Map(&'static str, MapError),
    #[error("too many --pid values: pid {0} found no room in the kernel's pid table")]
    TooManyPids(u32),
    #[error("too many --cgroup values: at most {0}")]
    TooManyCgroups(u32),
}

/// The loaded, attached kernel half and the maps the user half reads.
pub struct Tracer {
    /// Owns the programs and their links; dropping it detaches everything.
    ebpf: Option<Ebpf>,
    pub inflight: InflightTable,
    counters: CounterTable,
    /// Kernel id of the counters map, to open more handles on it.
    counters_id: Option<(u32, u32)>,
    loss: LossTable,
    /// Kernel id of the loss map, likewise.
    loss_id: Option<u32>,
    devices: DeviceTable,
    bio_owners: BioOwnerTable,
    /// Keeps kernel.bpf_stats_enabled on while open.
    bpf_stats: Option<std::os::fd::OwnedFd>,
    /// Kernel ids of the loaded programs, by name.
    program_ids: Vec<(String, u32)>,
    /// Every attachment, to detach them all at once (see `detach`).
    links: Links,
    /// The light tier's window probes, loaded, attached only around a
    /// sampling window (`open_window`), and their links while attached.
    sampled: Vec<Probe>,
    entry_links: Links,
    deep_links: Links,
    /// The kernel half's tier (`TIER_*` bits), as last written.
    tier: aya::maps::Array<MapData, u64>,
    tier_bits: u64,
    /// The programs' costs when they were detached.
    final_costs: Vec<ProgramCost>,
    /// Optional probes that could not be attached, with the reason.
    pub skipped: Vec<(Probe, String)>,
    /// Monotonic ns when every probe was attached.
    pub attached_ns: u64,
    /// The disk the session keeps records of (`TraceConfig::disk`).
    pub disk: Option<Disk>,
    /// `TraceConfig::sample_every`: the light tier's sampling period.
    pub sample_every: u64,
    /// `TraceConfig::budget`.
    pub budget: Option<f64>,
}

/// RLIMIT_MEMLOCK only matters before kernel 5.11 (memcg accounting since):
/// raise it where allowed, ignore a refusal.
fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the rlimit it is given, a valid local.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

fn enable_bpf_stats() -> Result<std::os::fd::OwnedFd, LoadError> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(LoadError::Stats)
}

impl Tracer {
    /// Tells the user, on stderr, which optional probes are not attached and why.
    pub fn warn_skipped(&self) {
        for (probe, reason) in &self.skipped {
            eprintln!(
                "aio-trace: skipping {}: {}",
                probe.tracepoint(),
                short_reason(reason)
            );
        }
    }

    /// Checks privileges and tracepoints, loads the object and attaches every
    /// probe. Returns the tracer and the ring buffer its records arrive on.
    pub fn start(config: &TraceConfig) -> Result<(Self, RingBuf<MapData>), LoadError> {
        probes::check_prerequisites()?;
        raise_memlock();
        let globals = config::Globals::new(config)?;
        let mut ebpf = globals
            .loader()
            .load(EBPF_OBJECT)
            .map_err(LoadError::Load)?;
        maps::fill_pid_filter(&mut ebpf, &config.pids)?;
        maps::fill_cgroup_filter(&mut ebpf, &config.cgroups)?;
        let maps = KernelMaps::take(&mut ebpf)?;
        let light = config.light() && globals.args_from_regs != 0;
        if config.light() && !light {
            eprintln!(
                "aio-trace: the light tier reads io_submit's arguments from the caller's \
                 registers, which needs the kernel's BTF: tracing every iocb in full"
            );
        }
        let plan = Plan {
            block: config.block,
            args_from_regs: globals.args_from_regs != 0,
            no_offsets: globals.offsets_error.as_deref(),
            light,
        };
        let mut tier = maps.tier;
        let tier_bits = if light { TIER_LIGHT } else { 0 };
        // Before any attach: the first program to run sees its tier.
        tier.set(0, tier_bits, 0)
            .map_err(|e| LoadError::Map(aio_trace_common::MAP_TIER, e))?;
        let (links, skipped, sampled) = attach::attach_all(&mut ebpf, &plan)?;
        // Stats count from here: no program runs before its attach anyway.
        // A budget is kept by the programs' run time, which needs the statistics.
        let bpf_stats = (config.bpf_stats || config.budget.is_some())
            .then(enable_bpf_stats)
            .transpose()?;
        let program_ids = ebpf
            .programs()
            .filter_map(|(name, program)| Some((name.to_owned(), program.info().ok()?.id())))
            .collect();
        let tracer = Self {
            ebpf: Some(ebpf),
            bpf_stats,
            program_ids,
            links,
            sampled,
            entry_links: Vec::new(),
            deep_links: Vec::new(),
            tier,
            tier_bits,
            final_costs: Vec::new(),
            inflight: maps.inflight,
            counters: maps.counters,
            counters_id: maps.counters_id,
            loss: maps.loss,
            loss_id: maps.loss_id,
            devices: maps.devices,
            bio_owners: maps.bio_owners,
            skipped,
            attached_ns: crate::clock::monotonic_ns(),
            disk: config.disk.clone(),
            sample_every: config.sample_every,
            budget: config.budget,
        };
        Ok((tracer, maps.events))
    }

    /// Detaches and unloads every program. The maps stay readable, so what
    /// the ring buffer still holds can be drained afterwards.
    pub fn detach(&mut self) {
        if self.ebpf.is_some() {
            self.final_costs = self.program_costs();
        }
        let Some(mut ebpf) = self.ebpf.take() else {
            return;
        };
        let mut links = std::mem::take(&mut self.links);
        links.append(&mut self.entry_links);
        links.append(&mut self.deep_links);
        attach::detach_all(&mut ebpf, links);
        drop(ebpf);
    }

    /// Whether the kernel half runs the light tier.
    pub fn light(&self) -> bool {
        self.tier_bits & TIER_LIGHT != 0
    }

    /// Whether a light tier's sampling window is open.
    pub fn window_open(&self) -> bool {
        !self.entry_links.is_empty()
    }

    fn set_tier(&mut self, bits: u64) {
        // An array of one, index 0: the write cannot fail while the map is open.
        if self.tier.set(0, bits, 0).is_ok() {
            self.tier_bits = bits;
        }
    }

    /// Attaches a light tier's sampling window's probes, the window still
    /// shut (the entries return at once until `open_window`). All or
    /// nothing: a window without some of its probes would make records
    /// without their depth, so if one fails to attach (their programs loaded
    /// at start: it is the moment, as a process out of file descriptors) the
    /// others go again and the reason is returned.
    pub fn arm_window(&mut self) -> Result<(), String> {
        if !self.light() || self.window_open() {
            return Ok(());
        }
        let skipped = self.attach_window_probes();
        if let Some((probe, reason)) = skipped.first() {
            self.end_window_depth();
            if let Some(ebpf) = self.ebpf.as_mut() {
                attach::detach_later(ebpf, std::mem::take(&mut self.entry_links));
            }
            return Err(format!("{}: {}", probe.tracepoint(), short_reason(reason)));
        }
        // The deep programs look at what is in flight from now on.
        self.set_tier(TIER_LIGHT | TIER_DEEP);
        Ok(())
    }

    /// Opens an armed window: iocbs submitted from now until `close_window`
    /// are traced in full. Nothing if it could not be armed.
    pub fn open_window(&mut self) {
        if self.light() && self.window_open() {
            self.set_tier(TIER_LIGHT | TIER_DEEP | TIER_WINDOW);
        }
    }

    /// The deep programs first, then the entries, so that every call an
    /// entry sees has its dispatch, bios and completion seen too.
    fn attach_window_probes(&mut self) -> Vec<(Probe, String)> {
        let Some(ebpf) = self.ebpf.as_mut() else {
            return Vec::new();
        };
        let (entries, deep): (Vec<Probe>, Vec<Probe>) = self
            .sampled
            .iter()
            .partition(|p| p.sampled == probes::Sampled::Entry);
        let mut skipped = Vec::new();
        if self.deep_links.is_empty() {
            skipped.extend(attach::attach_each(ebpf, &deep, &mut self.deep_links));
        }
        if self.entry_links.is_empty() {
            skipped.extend(attach::attach_each(ebpf, &entries, &mut self.entry_links));
        }
        skipped
    }

    /// Closes the window: no call is traced in full from now on, while the
    /// deep programs stay for the window's iocbs still in flight.
    pub fn close_window(&mut self) {
        self.set_tier(TIER_LIGHT | TIER_DEEP);
        if let Some(ebpf) = self.ebpf.as_mut() {
            attach::detach_later(ebpf, std::mem::take(&mut self.entry_links));
        }
    }

    /// The window's iocbs have completed: the deep programs go.
    pub fn end_window_depth(&mut self) {
        if let Some(ebpf) = self.ebpf.as_mut() {
            attach::detach_later(ebpf, std::mem::take(&mut self.deep_links));
        }
    }

    /// The window's iocbs have been reaped (or are left to the sweep):
    /// io_getevents stops looking its events up.
    pub fn end_window_reaps(&mut self) {
        if self.light() && !self.window_open() {
            self.set_tier(TIER_LIGHT);
        }
    }

    /// Switches tier while tracing. Into the full tier, every window probe is
    /// attached (deep before entries) before the tier says so; into the
    /// light tier, the tier says so first and the entries go, as at the end
    /// of a window (the caller ends its depth and reaps).
    pub fn switch_tier(&mut self, light: bool) -> Vec<(Probe, String)> {
        if light == self.light() {
            return Vec::new();
        }
        if light {
            self.set_tier(TIER_LIGHT | TIER_DEEP);
            self.close_window();
            return Vec::new();
        }
        let skipped = self.attach_window_probes();
        // Iocbs submitted before the switch are reaped after it: no loss
        // until `end_settling`.
        self.set_tier(TIER_SETTLING);
        skipped
    }

    /// The full tier has run long enough since a switch for the iocbs of
    /// the light tier before it to be reaped: from now on an unmatched
    /// event is a loss again.
    pub fn end_settling(&mut self) {
        if self.tier_bits == TIER_SETTLING {
            self.set_tier(0);
        }
    }

    /// Per (pid, AIO context) counters, summed over CPUs, in key order.
    pub fn counters(&self) -> Vec<(CtxKey, CtxCounters)> {
        self.counters.snapshot()
    }

    /// Per (pid, AIO context, opcode) iocb counts, summed over CPUs: exact
    /// whatever the sampling.
    pub fn op_counts(&self) -> Vec<crate::model::OpCounts> {
        self.counters.op_snapshot()
    }

    /// Run count and run time of each of our programs so far (run time only
    /// counts while BPF stats are enabled: see `TraceConfig::bpf_stats`).
    pub fn program_costs(&self) -> Vec<ProgramCost> {
        if self.ebpf.is_none() {
            return self.final_costs.clone();
        }
        self.program_table().costs()
    }

    /// Our programs' ids, to read their costs from another thread.
    pub fn program_table(&self) -> ProgramTable {
        ProgramTable(self.program_ids.clone())
    }

    /// Turns the kernel's BPF run-time statistics on from now until the
    /// tracer is dropped, if they are not on yet (`top`'s self-overhead).
    pub fn enable_stats(&mut self) -> Result<(), LoadError> {
        if self.bpf_stats.is_none() {
            self.bpf_stats = Some(enable_bpf_stats()?);
        }
        Ok(())
    }

    /// Iocbs in the in-flight table now.
    pub fn inflight_len(&self) -> std::io::Result<usize> {
        self.inflight.count()
    }

    /// Per block device counters, summed over CPUs, in device order.
    pub fn devices(&self) -> Vec<(u32, DevCounters)> {
        self.devices.snapshot()
    }

    /// Bios queued by traced tasks whose completion has not been seen (the
    /// bio owner table's entries): 0 once their I/O is done. Reads the whole
    /// table, one lookup per entry.
    pub fn bio_owners(&self) -> usize {
        self.bio_owners.in_use()
    }

    /// Another handle on the counters map, for a thread that does not own the tracer.
    pub fn counter_table(&self) -> Result<CounterTable, MapError> {
        CounterTable::open(self.counters_id)
    }

    /// The kernel half's loss counters, summed over CPUs.
    pub fn losses(&self) -> LossCounts {
        self.loss.snapshot()
    }

    /// Another handle on the loss map, for a thread that does not own the tracer.
    pub fn loss_table(&self) -> Result<LossTable, MapError> {
        LossTable::open(self.loss_id)
    }
}

/// aio-trace's programs by kernel id.
#[derive(Clone, Debug)]
pub struct ProgramTable(Vec<(String, u32)>);

impl ProgramTable {
    /// Run count and run time of each program, most expensive first.
    pub fn costs(&self) -> Vec<ProgramCost> {
        let mut costs: Vec<_> = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .filter_map(|info| {
                let (name, _) = self.0.iter().find(|(_, id)| *id == info.id())?;
                Some(ProgramCost {
                    program: name.clone(),
                    runs: info.run_count(),
                    run_ns: info.run_time().as_nanos() as u64,
                })
            })
            .collect();
        costs.sort_by_key(|c| std::cmp::Reverse(c.run_ns));
        costs
    }
}

#[cfg(test)]
mod tests;
