//! Probe the kernel, load the eBPF object, attach what it allows.

use aio_trace_common::{
    CommFilter, CtxCounters, CtxKey, DEFAULT_RING_BYTES, DEV_STATS_ENTRIES, DevCounters,
    GLOBAL_ARGS_FROM_REGS, GLOBAL_FILTER_COMM, GLOBAL_FILTER_PIDS, GLOBAL_KERNEL_OFFSETS,
    GLOBAL_WAKEUP_BYTES, LOSS_CAUSES, Owner, PID_FILTER_SETS, TABLE_WAYS, TableEntry, TableKey,
};
use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        ProgramError, RawTracePoint, TracePoint, raw_trace_point::RawTracePointLinkId,
        trace_point::TracePointLinkId,
    },
};
use thiserror::Error;

use crate::{btf, inflight::InflightTable, model::LossCounts, privileges, tracefs};

/// The eBPF object built by build.rs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/aio-trace"));

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
    /// An entry program that only keeps the syscall's arguments for its
    /// exit: attached only where the exit cannot read them from the
    /// caller's registers (a kernel without BTF).
    pub saves_args: bool,
}

impl Probe {
    const fn required(group: &'static str, program: &'static str) -> Self {
        Self {
            program,
            group,
            required: true,
            attach: Attach::TracePoint,
            saves_args: false,
        }
    }

    const fn optional(group: &'static str, program: &'static str) -> Self {
        Self {
            required: false,
            ..Self::required(group, program)
        }
    }

    const fn saving_args(group: &'static str, program: &'static str) -> Self {
        Self {
            saves_args: true,
            ..Self::optional(group, program)
        }
    }

    const fn raw(group: &'static str, program: &'static str) -> Self {
        Self {
            attach: Attach::Raw,
            ..Self::optional(group, program)
        }
    }
}

/// Every attach point of the kernel half; the program is named after its tracepoint.
/// The syscall boundary is required; the rest (io_pgetevents, context
/// lifetimes, dispatch and block attribution, synchronous vectored calls)
/// degrade with a reason when absent.
pub const PROBES: &[Probe] = &[
    Probe::required("syscalls", "sys_enter_io_submit"),
    Probe::required("syscalls", "sys_exit_io_submit"),
    Probe::required("syscalls", "sys_exit_io_getevents"),
    Probe::optional("syscalls", "sys_exit_io_pgetevents"),
    Probe::optional("syscalls", "sys_exit_io_setup"),
    Probe::optional("syscalls", "sys_exit_io_destroy"),
    Probe::saving_args("syscalls", "sys_enter_io_getevents"),
    Probe::saving_args("syscalls", "sys_enter_io_pgetevents"),
    Probe::saving_args("syscalls", "sys_enter_io_setup"),
    Probe::saving_args("syscalls", "sys_enter_io_destroy"),
    Probe::optional("syscalls", "sys_enter_io_cancel"),
    Probe::optional("sched", "sched_process_exit"),
    Probe::raw("iomap", "iomap_dio_rw_begin"),
    Probe::raw("iomap", "iomap_dio_complete"),
    Probe::raw("block", "block_bio_queue"),
    Probe::raw("block", "block_split"),
    Probe::raw("block", "block_bio_backmerge"),
    Probe::raw("block", "block_bio_frontmerge"),
    Probe::raw("block", "block_rq_issue"),
    Probe::raw("block", "block_rq_complete"),
    Probe::raw("block", "block_bio_complete"),
    Probe::optional("syscalls", "sys_enter_readv"),
    Probe::optional("syscalls", "sys_exit_readv"),
    Probe::optional("syscalls", "sys_enter_writev"),
    Probe::optional("syscalls", "sys_exit_writev"),
    Probe::optional("syscalls", "sys_enter_preadv"),
    Probe::optional("syscalls", "sys_exit_preadv"),
    Probe::optional("syscalls", "sys_enter_pwritev"),
    Probe::optional("syscalls", "sys_exit_pwritev"),
    Probe::optional("syscalls", "sys_enter_preadv2"),
    Probe::optional("syscalls", "sys_exit_preadv2"),
    Probe::optional("syscalls", "sys_enter_pwritev2"),
    Probe::optional("syscalls", "sys_exit_pwritev2"),
];

/// Why tracing could not start. Each variant's message is one sentence for the user.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("missing {0}, which loading eBPF programs needs: run as root (sudo aio-trace …)")]
    MissingCapabilities(String),
    #[error(transparent)]
    Tracefs(#[from] tracefs::TracefsError),
    #[error(
        "this kernel has no tracepoint {0}, which aio-trace needs (is CONFIG_FTRACE_SYSCALLS set?)"
    )]
    MissingTracepoint(String),
    #[error("comm filter {0:?} is longer than the kernel's 15-byte task name")]
    CommTooLong(String),
    #[error("the kernel refused to load aio-trace's eBPF object: {0}")]
    Load(#[source] EbpfError),
    #[error("could not attach to tracepoint {program}: {source}")]
    Attach {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("could not enable the kernel's BPF statistics: {0}")]
    Stats(#[source] aya::sys::SyscallError),
    #[error("eBPF map {0} is missing or of the wrong type: {1}")]
    Map(&'static str, #[source] MapError),
    #[error("too many --pid values: pid {0} found no room in the kernel's pid table")]
    TooManyPids(u32),
}

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
    /// Keep io_getevents', io_setup's and io_destroy's arguments with entry
    /// programs even where their exits could read them from the caller's
    /// registers: what a kernel without BTF gets (for the tests).
    pub saved_args: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            pids: Vec::new(),
            comm: None,
            ring_bytes: DEFAULT_RING_BYTES,
            bpf_stats: false,
            block: true,
            saved_args: false,
        }
    }
}

/// The loaded, attached kernel half and the maps the user half reads.
pub struct Tracer {
    /// Owns the programs and their links; dropping it detaches everything.
    ebpf: Option<Ebpf>,
    pub inflight: InflightTable,
    counters: CounterTable,
    /// Kernel id of the counters map, to open more handles on it.
    counters_id: Option<u32>,
    /// Kernel id of the loss map, likewise.
    loss_id: Option<u32>,
    loss: PerCpuArray<MapData, u64>,
    devices: PerCpuArray<MapData, TableEntry<u64, DevCounters>>,
    bio_owners: aya::maps::Array<MapData, TableEntry<u64, Owner>>,
    /// Keeps kernel.bpf_stats_enabled on while open.
    _bpf_stats: Option<std::os::fd::OwnedFd>,
    /// Kernel ids of the loaded programs, by name.
    program_ids: Vec<(String, u32)>,
    /// Every attachment, to detach them all at once (see `detach`).
    links: Vec<(&'static str, LinkId)>,
    /// The programs' costs when they were detached.
    final_costs: Vec<crate::model::ProgramCost>,
    /// Optional probes that could not be attached, with the reason.
    pub skipped: Vec<(Probe, String)>,
    /// Monotonic ns when every probe was attached.
    pub attached_ns: u64,
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

/// RLIMIT_MEMLOCK only matters before kernel 5.11 (memcg accounting since):
/// raise it where allowed, ignore a refusal.
fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

impl Tracer {
    /// Tells the user, on stderr, which optional probes are not attached and why.
    pub fn warn_skipped(&self) {
        for (probe, reason) in &self.skipped {
            eprintln!(
                "aio-trace: skipping {}:{}: {}",
                probe.group,
                probe.program,
                short_reason(reason)
            );
        }
    }

    /// Checks privileges and tracepoints, loads the object and attaches every
    /// probe. Returns the tracer and the ring buffer its records arrive on.
    pub fn start(config: &TraceConfig) -> Result<(Self, RingBuf<MapData>), LoadError> {
        let missing = privileges::missing_caps(privileges::effective_caps());
        if !missing.is_empty() {
            return Err(LoadError::MissingCapabilities(missing.join(" and ")));
        }
        tracefs::ensure_mounted().map_err(LoadError::Tracefs)?;
        for probe in PROBES.iter().filter(|p| p.required) {
            if !tracefs::tracepoint_exists(probe.group, probe.program) {
                return Err(LoadError::MissingTracepoint(format!(
                    "{}:{}",
                    probe.group, probe.program
                )));
            }
        }
        raise_memlock();

        let comm = comm_filter(config.comm.as_deref())?;
        let filter_pids: u8 = u8::from(!config.pids.is_empty());
        // Without the offsets the raw tracepoint programs are not attached
        // (each is skipped with this reason); AIO tracing goes on.
        let offsets = if config.block {
            btf::kernel_offsets()
        } else {
            Ok(Default::default())
        };
        // Reading the caller's registers takes helpers that need the kernel's BTF.
        let args_from_regs =
            u8::from(!config.saved_args && std::path::Path::new(btf::VMLINUX_BTF).exists());
        let mut ebpf = EbpfLoader::new()
            .override_global(GLOBAL_ARGS_FROM_REGS, &args_from_regs, true)
            .override_global(GLOBAL_FILTER_PIDS, &filter_pids, true)
            .override_global(GLOBAL_FILTER_COMM, &comm, true)
            .override_global(GLOBAL_WAKEUP_BYTES, &wakeup_bytes(config.ring_bytes), true)
            .override_global(
                GLOBAL_KERNEL_OFFSETS,
                offsets.as_ref().unwrap_or(&Default::default()),
                true,
            )
            .map_max_entries("EVENTS", config.ring_bytes)
            .load(EBPF_OBJECT)
            .map_err(LoadError::Load)?;

        {
            let map = ebpf.map_mut("PID_FILTER").ok_or(LoadError::Map(
                "PID_FILTER",
                MapError::InvalidName {
                    name: "PID_FILTER".into(),
                },
            ))?;
            let mut pid_filter: aya::maps::Array<_, TableEntry<u64, u64>> =
                aya::maps::Array::try_from(map).map_err(|e| LoadError::Map("PID_FILTER", e))?;
            for &pid in &config.pids {
                add_to_pid_filter(&mut pid_filter, pid)?;
            }
        }

        let events = RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?)
            .map_err(|e| LoadError::Map("EVENTS", e))?;
        let inflight = match take_map(&mut ebpf, "INFLIGHT")? {
            aya::maps::Map::Array(data) => InflightTable::new(data),
            _ => {
                return Err(LoadError::Map(
                    "INFLIGHT",
                    MapError::InvalidName {
                        name: "INFLIGHT".into(),
                    },
                ));
            }
        };
        let counters_map = take_map(&mut ebpf, "COUNTERS")?;
        let counters_id = match &counters_map {
            aya::maps::Map::PerCpuHashMap(data) => data.info().ok().map(|info| info.id()),
            _ => None,
        };
        let counters = CounterTable(
            PerCpuHashMap::try_from(counters_map).map_err(|e| LoadError::Map("COUNTERS", e))?,
        );
        let loss_map = take_map(&mut ebpf, "LOSS")?;
        let loss_id = match &loss_map {
            aya::maps::Map::PerCpuArray(data) => data.info().ok().map(|info| info.id()),
            _ => None,
        };
        let loss = PerCpuArray::try_from(loss_map).map_err(|e| LoadError::Map("LOSS", e))?;

        let devices = PerCpuArray::try_from(take_map(&mut ebpf, "DEV_STATS")?)
            .map_err(|e| LoadError::Map("DEV_STATS", e))?;
        let bio_owners = aya::maps::Array::try_from(take_map(&mut ebpf, "BIO_OWNER")?)
            .map_err(|e| LoadError::Map("BIO_OWNER", e))?;

        let mut skipped = Vec::new();
        let mut links = Vec::new();
        // Syscall exits before entries: an exit that needs its entry's state
        // only counts what the entry saw, so a call caught halfway through
        // attaching counts nowhere rather than as submitted-but-never-reaped
        // (top's INFL drifted by every iocb reaped between the two attaches).
        // Exits that read their arguments from the registers count calls
        // already under way at attach.
        let (exits, rest): (Vec<&Probe>, Vec<&Probe>) = PROBES
            .iter()
            .partition(|p| p.program.starts_with("sys_exit_"));
        for probe in exits.into_iter().chain(rest) {
            if probe.attach == Attach::Raw && !config.block
                || probe.saves_args && args_from_regs != 0
            {
                continue;
            }
            if let (Attach::Raw, Err(e)) = (probe.attach, &offsets) {
                skipped.push((*probe, e.to_string()));
                continue;
            }
            match attach(&mut ebpf, probe) {
                Ok(link) => links.push((probe.program, link)),
                Err(reason) if !probe.required => skipped.push((*probe, reason.to_string())),
                Err(source) => {
                    return Err(match source {
                        AttachError::Program(source) => LoadError::Attach {
                            program: probe.program,
                            source,
                        },
                        AttachError::Absent => LoadError::MissingTracepoint(format!(
                            "{}:{}",
                            probe.group, probe.program
                        )),
                    });
                }
            }
        }

        // Stats count from here: enabled only once everything is attached would
        // miss nothing, since no program runs before its attach anyway.
        let bpf_stats = if config.bpf_stats {
            Some(aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(LoadError::Stats)?)
        } else {
            None
        };
        let program_ids = ebpf
            .programs()
            .filter_map(|(name, program)| Some((name.to_owned(), program.info().ok()?.id())))
            .collect();
        let tracer = Self {
            ebpf: Some(ebpf),
            _bpf_stats: bpf_stats,
            program_ids,
            links,
            final_costs: Vec::new(),
            inflight,
            counters,
            counters_id,
            loss_id,
            loss,
            devices,
            bio_owners,
            skipped,
            attached_ns: crate::clock::monotonic_ns(),
        };
        Ok((tracer, events))
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
        // Closing a tracepoint link waits out an RCU grace period (~70 ms
        // here, 1.7 s for all of them one after another, which made every
        // Ctrl-C and `q` slow). Closed from parallel threads they share one.
        let mut owned: Vec<Box<dyn Send>> = Vec::new();
        for (name, link) in self.links.drain(..) {
            let Some(program) = ebpf.program_mut(name) else {
                continue;
            };
            match link {
                LinkId::TracePoint(id) => {
                    if let Ok(p) = <&mut TracePoint>::try_from(program)
                        && let Ok(link) = p.take_link(id)
                    {
                        owned.push(Box::new(link));
                    }
                }
                LinkId::Raw(id) => {
                    if let Ok(p) = <&mut RawTracePoint>::try_from(program)
                        && let Ok(link) = p.take_link(id)
                    {
                        owned.push(Box::new(link));
                    }
                }
            }
        }
        std::thread::scope(|scope| {
            for link in owned {
                // Out of threads, the failed spawn drops (closes) it here.
                let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(link));
            }
        });
        drop(ebpf);
    }

    /// Per (pid, ctx) counters, summed over CPUs, in key order.
    pub fn counters(&self) -> Vec<(CtxKey, CtxCounters)> {
        self.counters.snapshot()
    }

    /// Run count and run time of each of our programs so far (run time only
    /// counts while BPF stats are enabled: see `TraceConfig::bpf_stats`).
    pub fn program_costs(&self) -> Vec<crate::model::ProgramCost> {
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
        if self._bpf_stats.is_none() {
            self._bpf_stats =
                Some(aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(LoadError::Stats)?);
        }
        Ok(())
    }

    /// Iocbs in the in-flight table now.
    pub fn inflight_len(&self) -> std::io::Result<usize> {
        self.inflight.count()
    }

    /// Per block device counters, summed over CPUs, in device order. Each
    /// CPU keeps its own table, so a device sits in a different entry on
    /// each and is summed by key.
    pub fn devices(&self) -> Vec<(u32, DevCounters)> {
        let mut per_dev: std::collections::BTreeMap<u32, Vec<DevCounters>> = Default::default();
        for index in 0..DEV_STATS_ENTRIES {
            let Ok(per_cpu) = self.devices.get(&index, 0) else {
                continue;
            };
            // Keyed by the kernel's gendisk; the dev_t is in the value.
            for entry in per_cpu.iter().filter(|e| !e.key.is_free()) {
                per_dev
                    .entry(entry.value.dev)
                    .or_default()
                    .push(entry.value);
            }
        }
        per_dev
            .into_iter()
            .map(|(dev, counters)| (dev, crate::model::sum_devices(counters.iter())))
            .collect()
    }

    /// Bios queued by traced tasks whose completion has not been seen (the
    /// bio owner table's entries): 0 once their I/O is done. Reads the whole
    /// table, one lookup per entry.
    pub fn bio_owners(&self) -> usize {
        (0..self.bio_owners.len())
            .filter(|i| self.bio_owners.get(i, 0).is_ok_and(|e| !e.key.is_free()))
            .count()
    }

    /// Another handle on the counters map, for a thread that does not own the tracer.
    pub fn counter_table(&self) -> Result<CounterTable, MapError> {
        let id = self.counters_id.ok_or(MapError::InvalidName {
            name: "COUNTERS".into(),
        })?;
        let data = MapData::from_id(id)?;
        Ok(CounterTable(PerCpuHashMap::try_from(
            aya::maps::Map::PerCpuHashMap(data),
        )?))
    }

    /// The kernel half's loss counters, summed over CPUs.
    pub fn losses(&self) -> LossCounts {
        kernel_losses(&self.loss)
    }

    /// Another handle on the loss map, for a thread that does not own the tracer.
    pub fn loss_table(&self) -> Result<LossTable, MapError> {
        let id = self.loss_id.ok_or(MapError::InvalidName {
            name: "LOSS".into(),
        })?;
        let data = MapData::from_id(id)?;
        Ok(LossTable(PerCpuArray::try_from(
            aya::maps::Map::PerCpuArray(data),
        )?))
    }
}

fn kernel_losses(loss: &PerCpuArray<MapData, u64>) -> LossCounts {
    let mut by_cause = [0u64; LOSS_CAUSES as usize];
    for (cause, total) in by_cause.iter_mut().enumerate() {
        if let Ok(per_cpu) = loss.get(&(cause as u32), 0) {
            *total = per_cpu.iter().sum();
        }
    }
    LossCounts::from_kernel(by_cause)
}

/// The kernel's loss counters, read from a thread that does not own the tracer.
pub struct LossTable(PerCpuArray<MapData, u64>);

impl LossTable {
    /// Kernel-side losses (aged_out and abandoned are the session's: see `Session::user_losses`).
    pub fn snapshot(&self) -> LossCounts {
        kernel_losses(&self.0)
    }
}

/// aio-trace's programs by kernel id.
#[derive(Clone, Debug)]
pub struct ProgramTable(Vec<(String, u32)>);

impl ProgramTable {
    /// Run count and run time of each program, most expensive first.
    pub fn costs(&self) -> Vec<crate::model::ProgramCost> {
        let mut costs: Vec<_> = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .filter_map(|info| {
                let (name, _) = self.0.iter().find(|(_, id)| *id == info.id())?;
                Some(crate::model::ProgramCost {
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

/// Puts `pid` in a free way of its set of the kernel's pid filter table
/// (before load, so no program races the write).
fn add_to_pid_filter(
    table: &mut aya::maps::Array<&mut MapData, TableEntry<u64, u64>>,
    pid: u32,
) -> Result<(), LoadError> {
    let key = u64::from(pid);
    let first = key.first_entry(PID_FILTER_SETS);
    for index in first..first + TABLE_WAYS {
        let entry = table
            .get(&index, 0)
            .map_err(|e| LoadError::Map("PID_FILTER", e))?;
        if entry.key == key {
            return Ok(());
        }
        if entry.key.is_free() {
            let entry = TableEntry {
                seq: 0,
                key,
                value: 1,
            };
            return table
                .set(index, entry, 0)
                .map_err(|e| LoadError::Map("PID_FILTER", e));
        }
    }
    Err(LoadError::TooManyPids(pid))
}

/// The kernel's per (pid, ctx) syscall counters.
pub struct CounterTable(PerCpuHashMap<MapData, CtxKey, CtxCounters>);

impl CounterTable {
    /// Every context's counters, summed over CPUs, in key order.
    pub fn snapshot(&self) -> Vec<(CtxKey, CtxCounters)> {
        let mut all: Vec<_> = self
            .0
            .iter()
            .filter_map(Result::ok)
            .map(|(key, per_cpu)| (key, crate::model::sum_counters(per_cpu.iter())))
            .collect();
        all.sort_by_key(|(key, _)| *key);
        all
    }

    /// Reads and deletes one context's counters: a context id the kernel hands
    /// out again (after io_destroy) then starts from zero.
    pub fn take(&mut self, key: &CtxKey) -> Option<CtxCounters> {
        let per_cpu = self.0.get(key, 0).ok()?;
        let total = crate::model::sum_counters(per_cpu.iter());
        let _ = self.0.remove(key);
        Some(total)
    }
}

enum AttachError {
    Absent,
    Program(ProgramError),
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

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent => f.write_str("the tracepoint does not exist on this kernel"),
            Self::Program(e) => write!(f, "{e}"),
        }
    }
}

/// One attachment of one program.
#[derive(Debug)]
enum LinkId {
    TracePoint(TracePointLinkId),
    Raw(RawTracePointLinkId),
}

fn attach(ebpf: &mut Ebpf, probe: &Probe) -> Result<LinkId, AttachError> {
    if !tracefs::tracepoint_exists(probe.group, probe.program) {
        return Err(AttachError::Absent);
    }
    let program = ebpf
        .program_mut(probe.program)
        .ok_or(AttachError::Program(ProgramError::UnexpectedProgramType))?;
    match probe.attach {
        Attach::TracePoint => {
            let program: &mut TracePoint = program.try_into().map_err(AttachError::Program)?;
            program.load().map_err(AttachError::Program)?;
            program
                .attach(probe.group, probe.program)
                .map(LinkId::TracePoint)
        }
        Attach::Raw => {
            let program: &mut RawTracePoint = program.try_into().map_err(AttachError::Program)?;
            program.load().map_err(AttachError::Program)?;
            program.attach(probe.program).map(LinkId::Raw)
        }
    }
    .map_err(AttachError::Program)
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::Map(
        name,
        MapError::InvalidName { name: name.into() },
    ))
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
