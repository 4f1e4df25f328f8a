//! Typed handles on the kernel half's maps that the user half reads: the
//! ring buffer, the in-flight table, the counters, the loss counters, the
//! device counters and the bio owners; and the pid and cgroup filters it
//! writes before load.
//!
//! Layer: loader (user half). Imports aya's map types, the shared types and
//! map names of `aio-trace-common`, and `model` for the sums.

use std::collections::BTreeMap;

use aio_trace_common::{
    CGROUP_FILTER_ENTRIES, COUNTER_SLOTS, CTX_URING_FD, CounterSlot, CtxCounters, CtxKey,
    DEV_STATS_ENTRIES, DevCounters, LOSS_CAUSES, MAP_BIO_OWNER, MAP_CGROUP_FILTER,
    MAP_COUNTER_SLOTS, MAP_COUNTERS, MAP_DEV_STATS, MAP_EVENTS, MAP_INFLIGHT, MAP_LOSS,
    MAP_PID_FILTER, MAP_TIER, Owner, PID_FILTER_SETS, TABLE_WAYS, TableEntry, TableKey,
};
use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf},
};

use super::{LoadError, inflight_table::InflightTable};
use crate::{
    cgroup::Cgroup,
    model::{self, LossCounts},
};

/// The maps the user half keeps after load.
pub(super) struct KernelMaps {
    pub events: RingBuf<MapData>,
    pub inflight: InflightTable,
    pub counters: CounterTable,
    /// Kernel ids of the counters map and its slots, to open more handles on them.
    pub counters_id: Option<(u32, u32)>,
    pub loss: LossTable,
    /// Kernel id of the loss map, likewise.
    pub loss_id: Option<u32>,
    pub devices: DeviceTable,
    pub bio_owners: BioOwnerTable,
    pub tier: aya::maps::Array<MapData, u64>,
}

impl KernelMaps {
    /// Takes every map the user half reads out of the loaded object.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, LoadError> {
        let events = RingBuf::try_from(take_map(ebpf, MAP_EVENTS)?)
            .map_err(|e| LoadError::Map(MAP_EVENTS, e))?;
        let inflight = match take_map(ebpf, MAP_INFLIGHT)? {
            Map::Array(data) => InflightTable::new(data),
            _ => return Err(no_such_map(MAP_INFLIGHT)),
        };
        let counters = take_map(ebpf, MAP_COUNTERS)?;
        let slots = take_map(ebpf, MAP_COUNTER_SLOTS)?;
        let counters_id = map_id(&counters).zip(map_id(&slots));
        let loss = take_map(ebpf, MAP_LOSS)?;
        let loss_id = map_id(&loss);
        Ok(Self {
            events,
            inflight,
            counters: CounterTable::new(counters, slots)?,
            counters_id,
            loss: LossTable::try_from(loss)?,
            loss_id,
            devices: DeviceTable(typed(ebpf, MAP_DEV_STATS)?),
            bio_owners: BioOwnerTable(typed(ebpf, MAP_BIO_OWNER)?),
            tier: typed(ebpf, MAP_TIER)?,
        })
    }
}

fn no_such_map(name: &'static str) -> LoadError {
    LoadError::Map(name, MapError::InvalidName { name: name.into() })
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, LoadError> {
    ebpf.take_map(name).ok_or_else(|| no_such_map(name))
}

/// The map `name`, taken out of the object as a `T`.
fn typed<T: TryFrom<Map, Error = MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T, LoadError> {
    T::try_from(take_map(ebpf, name)?).map_err(|e| LoadError::Map(name, e))
}

/// The kernel id of a per-CPU map, to open it again by id.
fn map_id(map: &Map) -> Option<u32> {
    match map {
        Map::PerCpuHashMap(data) | Map::PerCpuArray(data) => data.info().ok().map(|info| info.id()),
        _ => None,
    }
}

/// Puts every pid in the kernel's pid filter table (before load of the
/// programs, so none races the writes).
pub(super) fn fill_pid_filter(ebpf: &mut Ebpf, pids: &[u32]) -> Result<(), LoadError> {
    let map = ebpf
        .map_mut(MAP_PID_FILTER)
        .ok_or_else(|| no_such_map(MAP_PID_FILTER))?;
    let mut table: Array<_, TableEntry<u64, u64>> =
        Array::try_from(map).map_err(|e| LoadError::Map(MAP_PID_FILTER, e))?;
    for &pid in pids {
        add_to_pid_filter(&mut table, pid)?;
    }
    Ok(())
}

/// Puts every cgroup id in the kernel's cgroup filter (before load of the
/// programs, so none races the writes).
pub(super) fn fill_cgroup_filter(ebpf: &mut Ebpf, cgroups: &[Cgroup]) -> Result<(), LoadError> {
    if cgroups.len() > CGROUP_FILTER_ENTRIES as usize {
        return Err(LoadError::TooManyCgroups(CGROUP_FILTER_ENTRIES));
    }
    let map = ebpf
        .map_mut(MAP_CGROUP_FILTER)
        .ok_or_else(|| no_such_map(MAP_CGROUP_FILTER))?;
    let mut filter: HashMap<_, u64, u8> =
        HashMap::try_from(map).map_err(|e| LoadError::Map(MAP_CGROUP_FILTER, e))?;
    for cgroup in cgroups {
        filter
            .insert(cgroup.id, 1, 0)
            .map_err(|e| LoadError::Map(MAP_CGROUP_FILTER, e))?;
    }
    Ok(())
}

/// Puts `pid` in a free way of its set of the pid filter table.
fn add_to_pid_filter(
    table: &mut Array<&mut MapData, TableEntry<u64, u64>>,
    pid: u32,
) -> Result<(), LoadError> {
    let key = u64::from(pid);
    let first = key.first_entry(PID_FILTER_SETS);
    for index in first..first + TABLE_WAYS {
        let entry = table
            .get(&index, 0)
            .map_err(|e| LoadError::Map(MAP_PID_FILTER, e))?;
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
                .map_err(|e| LoadError::Map(MAP_PID_FILTER, e));
        }
    }
    Err(LoadError::TooManyPids(pid))
}

/// The kernel's per (pid, ctx) syscall counters and per (pid, ctx, opcode)
/// iocb counts, with each CPU's counts not yet in the table (`CounterSlot`).
pub struct CounterTable {
    table: PerCpuHashMap<MapData, CtxKey, CtxCounters>,
    slots: PerCpuArray<MapData, CounterSlot>,
}

/// Reads of the table between two equal reads of the slots' sequence
/// numbers, at most: the kernel moves a slot into the table when a CPU
/// changes key, rarely within one read.
const CONSISTENT_READS: usize = 4;

impl CounterTable {
    fn new(table: Map, slots: Map) -> Result<Self, LoadError> {
        Ok(Self {
            table: PerCpuHashMap::try_from(table).map_err(|e| LoadError::Map(MAP_COUNTERS, e))?,
            slots: PerCpuArray::try_from(slots)
                .map_err(|e| LoadError::Map(MAP_COUNTER_SLOTS, e))?,
        })
    }

    /// Other handles on the counters map and its slots, with kernel ids `ids`.
    pub(super) fn open(ids: Option<(u32, u32)>) -> Result<Self, MapError> {
        let (table, slots) = ids.ok_or(MapError::InvalidName {
            name: MAP_COUNTERS.into(),
        })?;
        Ok(Self {
            table: PerCpuHashMap::try_from(Map::PerCpuHashMap(MapData::from_id(table)?))?,
            slots: PerCpuArray::try_from(Map::PerCpuArray(MapData::from_id(slots)?))?,
        })
    }

    /// Every CPU's slots, as read now.
    fn read_slots(&self) -> Vec<CounterSlot> {
        (0..COUNTER_SLOTS)
            .filter_map(|i| self.slots.get(&i, 0).ok())
            .flat_map(|per_cpu| per_cpu.iter().copied().collect::<Vec<_>>())
            .collect()
    }

    /// Every entry, summed over CPUs, the slots' counts added.
    fn entries(&self) -> Vec<(CtxKey, CtxCounters)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = self.read_slots();
            let mut table: BTreeMap<CtxKey, CtxCounters> = self
                .table
                .iter()
                .filter_map(Result::ok)
                .map(|(key, per_cpu)| (key, model::sum_counters(per_cpu.iter())))
                .collect();
            let after = self.read_slots();
            if model::slots_settled(&before, &after) || attempt == CONSISTENT_READS {
                model::add_slots(&mut table, &after);
                return table.into_iter().collect();
            }
        }
    }

    /// Every context's counters, summed over CPUs, in key order.
    pub fn snapshot(&self) -> Vec<(CtxKey, CtxCounters)> {
        model::calls_by_context(
            self.entries()
                .into_iter()
                // AIO contexts only: an io_uring ring's calls are read by its key.
                .filter(|(key, _)| key.ctx & CTX_URING_FD == 0),
        )
    }

    /// Every (pid, ctx, opcode)'s iocb counts, summed over CPUs, in key order.
    pub fn op_snapshot(&self) -> Vec<model::OpCounts> {
        let mut all: Vec<_> = self
            .entries()
            .iter()
            .filter_map(|(key, c)| model::OpCounts::new(key, c))
            .collect();
        all.sort_by_key(|c| (c.pid, c.ctx, c.opcode));
        all
    }

    /// Reads and deletes one context's counters: a context id the kernel hands
    /// out again (after io_destroy) then starts from zero.
    ///
    /// For the full tier, whose counters go straight to the table: the light
    /// tier's slots would keep counts of the context after its removal.
    pub fn take(&mut self, key: &CtxKey) -> Option<CtxCounters> {
        let per_cpu = self.table.get(key, 0).ok()?;
        let total = model::sum_counters(per_cpu.iter());
        let _ = self.table.remove(key);
        Some(total)
    }
}

/// The kernel's loss counters.
pub struct LossTable(PerCpuArray<MapData, u64>);

impl TryFrom<Map> for LossTable {
    type Error = LoadError;
    fn try_from(map: Map) -> Result<Self, LoadError> {
        PerCpuArray::try_from(map)
            .map(Self)
            .map_err(|e| LoadError::Map(MAP_LOSS, e))
    }
}

impl LossTable {
    /// Another handle on the loss map with kernel id `id`.
    pub(super) fn open(id: Option<u32>) -> Result<Self, MapError> {
        let id = id.ok_or(MapError::InvalidName {
            name: MAP_LOSS.into(),
        })?;
        let data = MapData::from_id(id)?;
        Ok(Self(PerCpuArray::try_from(Map::PerCpuArray(data))?))
    }

    /// Kernel-side losses, summed over CPUs (aged_out and abandoned are the
    /// session's: see `Session::user_losses`).
    pub fn snapshot(&self) -> LossCounts {
        let mut by_cause = [0u64; LOSS_CAUSES as usize];
        for (cause, total) in by_cause.iter_mut().enumerate() {
            if let Ok(per_cpu) = self.0.get(&(cause as u32), 0) {
                *total = per_cpu.iter().sum();
            }
        }
        LossCounts::from_kernel(by_cause)
    }
}

/// The kernel's per-CPU block device counter tables.
pub(super) struct DeviceTable(PerCpuArray<MapData, TableEntry<u64, DevCounters>>);

impl DeviceTable {
    /// Per block device counters, summed over CPUs, in device order. Each
    /// CPU keeps its own table, so a device sits in a different entry on
    /// each and is summed by key.
    pub fn snapshot(&self) -> Vec<(u32, DevCounters)> {
        let mut per_dev: BTreeMap<u32, Vec<DevCounters>> = BTreeMap::new();
        for index in 0..DEV_STATS_ENTRIES {
            let Ok(per_cpu) = self.0.get(&index, 0) else {
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
            .map(|(dev, counters)| (dev, model::sum_devices(counters.iter())))
            .collect()
    }
}

/// The kernel's table of bios in flight and who caused them.
pub(super) struct BioOwnerTable(Array<MapData, TableEntry<u64, Owner>>);

impl BioOwnerTable {
    /// Entries in use. Reads the whole table, one lookup per entry.
    pub fn in_use(&self) -> usize {
        (0..self.0.len())
            .filter(|i| self.0.get(i, 0).is_ok_and(|e| !e.key.is_free()))
            .count()
    }
}
