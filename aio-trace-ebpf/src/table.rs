//! Set-associative tables on array maps: who owns a kiocb, a bio or a
//! request while it is in flight.
//!
//! These owners are written where the I/O starts and taken where it
//! completes, often on another CPU and in interrupt context, once or twice per
//! I/O. A hash-map insert and delete cost ~150 ns a pair here (an LRU one
//! more); an array lookup is inlined by the verifier into a few instructions.
//!
//! A key hashes to a set of `WAYS` entries. Each entry carries a sequence
//! number that is odd while a writer holds it (a seqlock): readers copy the
//! entry and check that the number did not move, writers claim it with a
//! compare-and-swap. Nobody waits — a program can interrupt another on the
//! same CPU — so an entry held by someone else is a miss. When a set is full
//! the oldest way by position is replaced: an owner whose completion was
//! never seen is evicted rather than kept forever.

use core::intrinsics::{AtomicOrdering, atomic_cxchg};

use aio_trace_common::SectorKey;
use aya_ebpf::maps::Array;

/// Entries per set.
pub const WAYS: u32 = 4;

/// A key of a table: never all zeros (zero marks a free entry).
pub trait TableKey: Copy + PartialEq {
    fn hash(&self) -> u64;
    fn is_free(&self) -> bool;
}

/// Fibonacci hashing: the multiply spreads nearby pointers and sectors over
/// the high bits, which pick the set.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A kernel object by address.
impl TableKey for u64 {
    fn hash(&self) -> u64 {
        self.wrapping_mul(GOLDEN)
    }
    fn is_free(&self) -> bool {
        *self == 0
    }
}

impl TableKey for SectorKey {
    fn hash(&self) -> u64 {
        (self.sector ^ (u64::from(self.dev) << 40)).wrapping_mul(GOLDEN)
    }
    fn is_free(&self) -> bool {
        self.dev == 0 && self.sector == 0
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Entry<K, V> {
    seq: u64,
    key: K,
    value: V,
}

/// A table of `SETS * WAYS` entries (`SETS` a power of two).
pub type Table<K, V> = Array<Entry<K, V>>;

/// The index of the first entry of `key`'s set.
#[inline(always)]
fn set_of<K: TableKey>(key: &K, sets: u32) -> u32 {
    ((key.hash() >> 32) as u32 & (sets - 1)) * WAYS
}

#[inline(always)]
fn entry<K, V>(table: &Table<K, V>, index: u32) -> Option<*mut Entry<K, V>> {
    table.get_ptr_mut(index)
}

#[inline(always)]
fn seq_of<K, V>(entry: *mut Entry<K, V>) -> u64 {
    unsafe { core::ptr::read_volatile(&raw const (*entry).seq) }
}

/// Takes the entry if its sequence number is still `seen` (even): true when
/// it is now ours to write.
#[inline(always)]
fn claim<K, V>(entry: *mut Entry<K, V>, seen: u64) -> bool {
    if seen & 1 != 0 {
        return false;
    }
    // The bpfel target has no compare-and-swap in `core::sync::atomic`, but
    // LLVM lowers the intrinsic to BPF_CMPXCHG (kernel 5.12+).
    let (_, won) = unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(
            &raw mut (*entry).seq,
            seen,
            seen + 1,
        )
    };
    won
}

/// Publishes a claimed entry.
#[inline(always)]
fn release<K, V>(entry: *mut Entry<K, V>, seen: u64) {
    unsafe { core::ptr::write_volatile(&raw mut (*entry).seq, seen + 2) };
}

/// A consistent copy of the entry at `index` if it holds `key`, with the
/// sequence number it was read at.
#[inline(always)]
fn find<K: TableKey, V: Copy>(
    table: &Table<K, V>,
    index: u32,
    key: &K,
) -> Option<(*mut Entry<K, V>, u64, V)> {
    let e = entry(table, index)?;
    let seen = seq_of(e);
    if seen & 1 != 0 {
        return None;
    }
    let (k, v) = unsafe { (core::ptr::read_volatile(&raw const (*e).key), (*e).value) };
    if k != *key || seq_of(e) != seen {
        return None;
    }
    Some((e, seen, v))
}

/// The value of `key`, if present.
#[inline(always)]
pub fn get<K: TableKey, V: Copy>(table: &Table<K, V>, sets: u32, key: &K) -> Option<V> {
    let first = set_of(key, sets);
    for way in 0..WAYS {
        if let Some((_, _, v)) = find(table, first + way, key) {
            return Some(v);
        }
    }
    None
}

/// Removes `key` and returns its value.
#[inline(always)]
pub fn take<K: TableKey, V: Copy>(table: &Table<K, V>, sets: u32, key: &K) -> Option<V> {
    let first = set_of(key, sets);
    for way in 0..WAYS {
        if let Some((e, seen, v)) = find(table, first + way, key) {
            if !claim(e, seen) {
                return None;
            }
            unsafe { (*e).key = core::mem::zeroed() };
            release(e, seen);
            return Some(v);
        }
    }
    None
}

/// Sets `key` to `value`: in its own entry if present, else a free way, else
/// the set's first way (evicting an owner whose completion was not seen).
/// False when the entry was held by another writer.
#[inline(always)]
pub fn put<K: TableKey, V: Copy>(table: &Table<K, V>, sets: u32, key: &K, value: &V) -> bool {
    if key.is_free() {
        return false;
    }
    let first = set_of(key, sets);
    let mut target = first;
    let mut free = u32::MAX;
    for way in 0..WAYS {
        let Some(e) = entry(table, first + way) else {
            return false;
        };
        let k = unsafe { core::ptr::read_volatile(&raw const (*e).key) };
        if k == *key {
            target = first + way;
            free = u32::MAX;
            break;
        }
        if free == u32::MAX && k.is_free() {
            free = first + way;
        }
    }
    if free != u32::MAX {
        target = free;
    }
    let Some(e) = entry(table, target) else {
        return false;
    };
    let seen = seq_of(e);
    if !claim(e, seen) {
        return false;
    }
    unsafe {
        (*e).key = *key;
        (*e).value = *value;
    }
    release(e, seen);
    true
}
