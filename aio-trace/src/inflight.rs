//! The kernel half's in-flight table, read and reclaimed in place.
//!
//! The table is an array map that the kernel half runs as a set-associative
//! hash table (`aio-trace-common/src/table.rs`), mmapped here: a sweep reads
//! 13 MB of memory instead of making a syscall per entry. Entries are claimed
//! with the kernel half's seqlock, so an iocb that io_getevents reaps while a
//! sweep reclaims it is delivered by exactly one of them.
//!
//! The table is mapped only for the length of a sweep (a `View`): the kernel
//! maps every page of it at once, and 13 MB held mapped would count in the
//! tracer's RSS all the time.

use std::{
    io,
    marker::PhantomData,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering, fence},
};

use aio_trace_common::{
    INFLIGHT_ENTRIES, INFLIGHT_SETS, InflightEntry, InflightKey, IocbRecord, TABLE_WAYS, TableKey,
};
use aya::maps::MapData;

/// The kernel half's `INFLIGHT` array map (created `BPF_F_MMAPABLE`).
pub struct InflightTable {
    map: MapData,
}

impl InflightTable {
    pub fn new(map: MapData) -> Self {
        Self { map }
    }

    /// The table, mapped until the view is dropped.
    pub fn view(&self) -> io::Result<View<'_>> {
        View::map(&self.map)
    }
}

/// The in-flight table, mapped.
pub struct View<'a> {
    entries: NonNull<InflightEntry>,
    /// Bytes mapped; 0 for the plain memory of unit tests.
    mapped_bytes: usize,
    _map: PhantomData<&'a MapData>,
    #[cfg(test)]
    _heap: Option<Box<[InflightEntry]>>,
}

impl View<'_> {
    fn map(map: &MapData) -> io::Result<Self> {
        let bytes =
            (INFLIGHT_ENTRIES as usize * size_of::<InflightEntry>()).next_multiple_of(page_size());
        let fd = map.fd().as_fd().as_raw_fd();
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            entries: NonNull::new(at.cast()).ok_or_else(io::Error::last_os_error)?,
            mapped_bytes: bytes,
            _map: PhantomData,
            #[cfg(test)]
            _heap: None,
        })
    }

    #[cfg(test)]
    fn on_heap() -> Self {
        let mut entries =
            vec![InflightEntry::default(); INFLIGHT_ENTRIES as usize].into_boxed_slice();
        Self {
            entries: NonNull::new(entries.as_mut_ptr()).unwrap(),
            mapped_bytes: 0,
            _map: PhantomData,
            _heap: Some(entries),
        }
    }

    fn entry(&self, index: usize) -> *mut InflightEntry {
        debug_assert!(index < INFLIGHT_ENTRIES as usize);
        unsafe { self.entries.as_ptr().add(index) }
    }

    fn seq(&self, index: usize) -> &AtomicU64 {
        unsafe { AtomicU64::from_ptr(&raw mut (*self.entry(index)).seq) }
    }

    /// A consistent copy of entry `index` if it holds an iocb, with the
    /// sequence number it was read at.
    fn read(&self, index: usize) -> Option<(InflightKey, IocbRecord, u64)> {
        let seq = self.seq(index);
        let seen = seq.load(Ordering::Acquire);
        if seen & 1 != 0 {
            return None;
        }
        let e = self.entry(index);
        let key = unsafe { std::ptr::read_volatile(&raw const (*e).key) };
        if key.is_free() {
            return None;
        }
        let record = unsafe { std::ptr::read_volatile(&raw const (*e).value) };
        fence(Ordering::Acquire);
        (seq.load(Ordering::Relaxed) == seen).then_some((key, record, seen))
    }

    /// Every iocb in flight.
    pub fn iter(&self) -> impl Iterator<Item = (InflightKey, IocbRecord)> + '_ {
        (0..INFLIGHT_ENTRIES as usize)
            .filter_map(|i| self.read(i).map(|(key, record, _)| (key, record)))
    }

    /// Iocbs in flight now.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes `key`: true if this call removed it, false if it was not there
    /// or the kernel half (or another sweep) got to it first.
    pub fn remove(&self, key: &InflightKey) -> bool {
        let first = key.first_entry(INFLIGHT_SETS) as usize;
        for index in first..first + TABLE_WAYS as usize {
            let Some((held, _, seen)) = self.read(index) else {
                continue;
            };
            if held != *key {
                continue;
            }
            let seq = self.seq(index);
            if seq
                .compare_exchange(seen, seen + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return false;
            }
            unsafe {
                std::ptr::write_volatile(&raw mut (*self.entry(index)).key, InflightKey::default())
            };
            seq.store(seen + 2, Ordering::Release);
            return true;
        }
        false
    }

    /// Writes `record` under `key` as the kernel half's submit does (tests).
    #[cfg(test)]
    fn insert(&self, key: InflightKey, record: IocbRecord) -> usize {
        let first = key.first_entry(INFLIGHT_SETS) as usize;
        let index = (first..first + TABLE_WAYS as usize)
            .find(|&i| self.read(i).is_none())
            .expect("a free way");
        let seq = self.seq(index);
        let seen = seq.load(Ordering::Acquire);
        seq.store(seen + 1, Ordering::Release);
        unsafe {
            (*self.entry(index)).key = key;
            (*self.entry(index)).value = record;
        }
        seq.store(seen + 2, Ordering::Release);
        index
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        if self.mapped_bytes != 0 {
            unsafe { libc::munmap(self.entries.as_ptr().cast(), self.mapped_bytes) };
        }
    }
}

fn page_size() -> usize {
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(iocb: u64) -> InflightKey {
        InflightKey {
            pid: 77,
            _pad: 0,
            ctx: 0x7f00_0000_1000,
            iocb,
        }
    }

    fn record(offset: i64) -> IocbRecord {
        IocbRecord {
            offset,
            ..IocbRecord::default()
        }
    }

    #[test]
    fn iterates_what_was_inserted_and_removes_it_once() {
        let table = View::on_heap();
        assert!(table.is_empty());
        table.insert(key(0x1000), record(4096));
        table.insert(key(0x1040), record(8192));
        let mut seen: Vec<_> = table.iter().map(|(k, r)| (k.iocb, r.offset)).collect();
        seen.sort();
        assert_eq!(seen, [(0x1000, 4096), (0x1040, 8192)]);

        assert!(table.remove(&key(0x1000)));
        assert!(!table.remove(&key(0x1000)), "removed twice");
        assert!(!table.remove(&key(0x2000)), "never there");
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn an_entry_held_by_a_writer_is_neither_read_nor_removed() {
        let table = View::on_heap();
        let index = table.insert(key(0x1000), record(0));
        // The kernel half is in the middle of taking it (odd sequence).
        table.seq(index).fetch_add(1, Ordering::AcqRel);
        assert_eq!(table.len(), 0);
        assert!(!table.remove(&key(0x1000)));
        table.seq(index).fetch_add(1, Ordering::AcqRel);
        assert!(table.remove(&key(0x1000)));
    }

    #[test]
    fn keys_of_one_set_share_its_ways() {
        let table = View::on_heap();
        // Keys that land in one set, found by search.
        let first = key(0).first_entry(INFLIGHT_SETS);
        let same_set: Vec<_> = (1..)
            .map(|i| key(i * 64))
            .filter(|k| k.first_entry(INFLIGHT_SETS) == first)
            .take(TABLE_WAYS as usize)
            .collect();
        for (i, k) in same_set.iter().enumerate() {
            table.insert(*k, record(i as i64));
        }
        for k in &same_set {
            assert!(table.remove(k));
        }
        assert!(table.is_empty());
    }
}
