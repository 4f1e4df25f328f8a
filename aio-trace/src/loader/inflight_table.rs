//! The kernel half's in-flight table, read and reclaimed in place.
//!
//! Layer: loader (user half). Imports the shared table layout of
//! `aio-trace-common`, aya's `MapData` (for the map's fd) and libc's mmap.
//!
//! The table is an array map that the kernel half runs as a set-associative
//! hash table (`aio-trace-common/src/table.rs`), mmapped here: a sweep reads
//! memory instead of making a syscall per entry. Entries are claimed with the
//! kernel half's seqlock, so an iocb that io_getevents reaps while a sweep
//! reclaims it is delivered by exactly one of them.
//!
//! The 13 MB table is mapped a window at a time, and only while a sweep runs:
//! the kernel maps every page of a window at once, and whatever is mapped
//! counts in the tracer's RSS.
//!
//! # The seqlock protocol
//!
//! Every entry is a `TableEntry { seq: u64, key, value }` (`#[repr(C)]`, 200
//! bytes, 8-byte aligned: `seq` is its first field). Its writers are the
//! kernel half's programs (`aio-trace-ebpf/src/table.rs`: `put` at
//! io_submit, `take_into` at io_getevents and io_destroy) and this module's
//! `remove`, on any CPU at once. The rules, which every `unsafe` block below
//! relies on:
//!
//! 1. **Parity.** `seq` is even while nobody writes the entry's key and odd
//!    while one writer holds it. A writer claims an entry by a
//!    compare-and-swap of `seq` from the even value it saw to that value + 1
//!    (the kernel's `BPF_CMPXCHG`, fully ordered; here `compare_exchange`
//!    with `AcqRel`), so at most one writer holds an entry at a time and
//!    nobody waits: a lost race is a miss.
//! 2. **Publication.** The holder writes `key` (and at insertion `value`),
//!    then releases with a store of the claimed value + 2 (the kernel's
//!    plain store after plain stores, ordered on x86-64 by its total store
//!    order, the only architecture aio-trace is built for; here a `Release`
//!    store). `seq` only grows, so a changed value means a write happened.
//! 3. **Readers copy and check.** A reader loads `seq` (`Acquire`); odd, the
//!    entry is held and skipped. It copies `key` and `value` with volatile
//!    reads (the kernel writes them outside Rust's knowledge, so the reads
//!    must not be merged, elided or invented), fences (`Acquire`), and loads
//!    `seq` again: unchanged, the copy is of one key's entry; changed, the
//!    copy may be torn (bytes from before and after a write) and is dropped.
//!    A torn copy is still a valid value: `InflightKey` and `IocbRecord` are
//!    plain integers (`aya::Pod`), so every bit pattern is one.
//! 4. **Values change in place.** The kernel updates the value of an entry
//!    it found through a pointer, without claiming it (dispatch and bio counts),
//!    as it would through a hash map's lookup: the lock guards which key an
//!    entry holds, not every byte of its value. A record read here may mix
//!    two such updates, never two iocbs.
//! 5. **Only `seq` is accessed atomically, always as a whole aligned u64**,
//!    on both sides (BPF atomics and aligned 8-byte loads and stores, which
//!    are single-copy atomic on x86-64); `key` and `value` never are.

use std::{
    io,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering, fence},
};

use aio_trace_common::{
    INFLIGHT_ENTRIES, INFLIGHT_SETS, InflightEntry, InflightKey, IocbRecord, RECORD_ORDER,
    TABLE_WAYS, TableKey,
};
use aya::maps::MapData;

/// Blocks per window a sweep maps at once (~1 MB with 4 KiB pages).
const WINDOW_BLOCKS: usize = 10;

/// The kernel half's `INFLIGHT` array map (created `BPF_F_MMAPABLE`).
pub struct InflightTable {
    map: MapData,
}

impl InflightTable {
    pub fn new(map: MapData) -> Self {
        Self { map }
    }

    /// Calls `f` with every iocb in flight.
    pub fn scan(&self, mut f: impl FnMut(&InflightKey, &IocbRecord)) -> io::Result<()> {
        let step = block_entries() * WINDOW_BLOCKS;
        for first in (0..INFLIGHT_ENTRIES as usize).step_by(step) {
            let window = Window::map(
                &self.map,
                first,
                step.min(INFLIGHT_ENTRIES as usize - first),
            )?;
            window.scan(&mut f);
        }
        Ok(())
    }

    /// Iocbs in flight now (not the order entries of addresses submitted
    /// again while in flight, `SEQ_ORDER`).
    pub fn count(&self) -> io::Result<usize> {
        let mut n = 0;
        self.scan(|_, record| n += usize::from(record.kind != RECORD_ORDER))?;
        Ok(n)
    }

    /// Removes `key` if it still holds the submission made at `submit_ns`
    /// (what a scan saw): true if this call removed it, false if it was not
    /// there, the kernel half (or another sweep) got to it first, or the key
    /// now holds a later submission — the kernel hands a destroyed
    /// context's id out again, and an application reuses its iocb memory,
    /// so the key a scan doomed may be a new iocb's by the time it is removed.
    pub fn remove(&self, key: &InflightKey, submit_ns: u64) -> io::Result<bool> {
        // The block holding the key's set (sets never straddle blocks).
        let block = block_entries();
        let first = key.first_entry(INFLIGHT_SETS) as usize / block * block;
        Ok(Window::map(&self.map, first, block)?.remove(key, submit_ns))
    }
}

/// Entries per block: the fewest whole entries that fill whole pages, so
/// that windows start on a page (the kernel maps from a page offset).
fn block_entries() -> usize {
    let entry = size_of::<InflightEntry>();
    let page = page_size();
    let mut gcd = (page, entry);
    while gcd.1 != 0 {
        gcd = (gcd.1, gcd.0 % gcd.1);
    }
    page / gcd.0
}

/// Entries `first..first + len` of the table, mapped.
struct Window {
    entries: NonNull<InflightEntry>,
    first: usize,
    len: usize,
    /// Bytes mapped; 0 for the plain memory of unit tests.
    mapped_bytes: usize,
    #[cfg(test)]
    _heap: Option<Box<[InflightEntry]>>,
}

impl Window {
    fn map(map: &MapData, first: usize, len: usize) -> io::Result<Self> {
        let size = size_of::<InflightEntry>();
        let bytes = (len * size).next_multiple_of(page_size());
        let fd = map.fd().as_fd().as_raw_fd();
        // SAFETY: a fresh shared mapping (no address hint, so nothing of ours
        // is replaced) of the open, BPF_F_MMAPABLE array map's fd; `first` is
        // a multiple of `block_entries()`, so the offset is page aligned, and
        // `bytes` is a whole number of pages. Failure is returned, not faulted.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                (first * size) as libc::off_t,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            entries: NonNull::new(at.cast()).ok_or_else(io::Error::last_os_error)?,
            first,
            len,
            mapped_bytes: bytes,
            #[cfg(test)]
            _heap: None,
        })
    }

    /// The whole table in plain memory (tests).
    #[cfg(test)]
    fn on_heap() -> Self {
        let mut entries =
            vec![InflightEntry::default(); INFLIGHT_ENTRIES as usize].into_boxed_slice();
        Self {
            entries: NonNull::new(entries.as_mut_ptr()).unwrap(),
            first: 0,
            len: INFLIGHT_ENTRIES as usize,
            mapped_bytes: 0,
            _heap: Some(entries),
        }
    }

    /// Entry `index` of the table (which this window holds).
    fn entry(&self, index: usize) -> *mut InflightEntry {
        assert!((self.first..self.first + self.len).contains(&index));
        // SAFETY: the assert keeps the offset within the `len` entries this
        // window maps (or allocates, in tests), so the pointer stays in bounds.
        unsafe { self.entries.as_ptr().add(index - self.first) }
    }

    fn seq(&self, index: usize) -> &AtomicU64 {
        // SAFETY: `entry` is in bounds and lives as long as `self` (unmapped
        // only in Drop); `seq` is the entry's first field, so 8-byte aligned
        // (entries start page aligned, 200 bytes apart); and it is only ever
        // accessed atomically, as a whole u64, by us and the kernel (rule 5).
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
        // SAFETY: in bounds (`entry`), aligned (repr(C) field); a volatile
        // copy of memory the kernel may be writing (rule 3): a torn key is
        // still a valid `InflightKey`, and is dropped by the `seq` re-check.
        let key = unsafe { std::ptr::read_volatile(&raw const (*e).key) };
        if key.is_free() {
            return None;
        }
        // SAFETY: as for the key: a volatile copy, every bit pattern valid,
        // kept only if `seq` did not move (rules 3 and 4).
        let record = unsafe { std::ptr::read_volatile(&raw const (*e).value) };
        fence(Ordering::Acquire);
        (seq.load(Ordering::Relaxed) == seen).then_some((key, record, seen))
    }

    fn scan(&self, f: &mut impl FnMut(&InflightKey, &IocbRecord)) {
        for index in self.first..self.first + self.len {
            if let Some((key, record, _)) = self.read(index) {
                f(&key, &record);
            }
        }
    }

    /// Removes `key`, whose set this window holds.
    fn remove(&self, key: &InflightKey, submit_ns: u64) -> bool {
        let first = key.first_entry(INFLIGHT_SETS) as usize;
        for index in first..first + TABLE_WAYS as usize {
            let Some((held, record, seen)) = self.read(index) else {
                continue;
            };
            if held != *key {
                continue;
            }
            // The claim below fails if the key changed since this read.
            if record.submit_ns != submit_ns {
                return false;
            }
            let seq = self.seq(index);
            if seq
                .compare_exchange(seen, seen + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return false;
            }
            // SAFETY: the compare-and-swap made `seq` odd: this call holds the
            // entry and no other writer touches its key until the release
            // below (rules 1 and 2); the pointer is in bounds and aligned.
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
        // SAFETY: heap memory of this single-threaded test, held (odd `seq`)
        // as the kernel's `put` holds it; `index` is in bounds.
        unsafe {
            (*self.entry(index)).key = key;
            (*self.entry(index)).value = record;
        }
        seq.store(seen + 2, Ordering::Release);
        index
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        let mut n = 0;
        self.scan(&mut |_, _| n += 1);
        n
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if self.mapped_bytes != 0 {
            // SAFETY: exactly the region `map` mapped, unmapped once; no
            // reference into it outlives `self`.
            unsafe { libc::munmap(self.entries.as_ptr().cast(), self.mapped_bytes) };
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
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
            seq: 0,
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
        let table = Window::on_heap();
        assert_eq!(table.count(), 0);
        table.insert(key(0x1000), record(4096));
        table.insert(key(0x1040), record(8192));
        let mut seen = Vec::new();
        table.scan(&mut |k, r| seen.push((k.iocb, r.offset)));
        seen.sort();
        assert_eq!(seen, [(0x1000, 4096), (0x1040, 8192)]);

        assert!(table.remove(&key(0x1000), 0));
        assert!(!table.remove(&key(0x1000), 0), "removed twice");
        assert!(!table.remove(&key(0x2000), 0), "never there");
        assert_eq!(table.count(), 1);
    }

    #[test]
    fn a_key_holding_a_later_submission_is_left() {
        let table = Window::on_heap();
        // A scan saw the submission at 1,000; the kernel has since put a
        // new iocb under the same key.
        let later = IocbRecord {
            submit_ns: 2_000,
            ..record(0)
        };
        table.insert(key(0x1000), later);
        assert!(!table.remove(&key(0x1000), 1_000));
        assert!(table.remove(&key(0x1000), 2_000));
    }

    #[test]
    fn an_entry_held_by_a_writer_is_neither_read_nor_removed() {
        let table = Window::on_heap();
        let index = table.insert(key(0x1000), record(0));
        // The kernel half is in the middle of taking it (odd sequence).
        table.seq(index).fetch_add(1, Ordering::AcqRel);
        assert_eq!(table.count(), 0);
        assert!(!table.remove(&key(0x1000), 0));
        table.seq(index).fetch_add(1, Ordering::AcqRel);
        assert!(table.remove(&key(0x1000), 0));
    }

    #[test]
    fn blocks_are_whole_pages_of_whole_entries_and_hold_whole_sets() {
        let block = block_entries();
        assert_eq!(block * size_of::<InflightEntry>() % page_size(), 0);
        assert_eq!(block % TABLE_WAYS as usize, 0);
        assert_eq!(INFLIGHT_ENTRIES as usize % block, 0);
    }

    #[test]
    fn keys_of_one_set_share_its_ways() {
        let table = Window::on_heap();
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
            assert!(table.remove(k, 0));
        }
        assert_eq!(table.count(), 0);
    }
}
