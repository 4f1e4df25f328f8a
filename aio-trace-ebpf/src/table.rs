//! Set-associative tables on array maps: the in-flight iocbs, and who owns a
//! kiocb, a bio or a request while it is in flight.
//!
//! Each iocb passes through these tables half a dozen times, often on another
//! CPU and in interrupt context. A hash-map lookup costs ~45 ns here, an insert
//! and delete ~150 ns a pair (an LRU one more); an array lookup is inlined by
//! the verifier into a few instructions.
//!
//! A key hashes to a set of `TABLE_WAYS` entries (`TableEntry`). Each entry
//! carries a sequence number that is odd while a writer holds it (a seqlock):
//! readers copy the entry and check that the number did not move, writers
//! claim it with a compare-and-swap. Nobody waits — a program can interrupt
//! another on the same CPU — so an entry held by someone else is a miss.
//!
//! Values are updated in place through `get_ptr` without the seqlock, as they
//! are through a hash map's lookup: the lock guards which key an entry holds.
//!
//! Ordering: the claim is a `BPF_CMPXCHG`, fully ordered everywhere; the
//! release and the readers' loads are plain, which is enough on x86-64
//! (stores are seen in order, loads are not reordered with loads), the only
//! architecture aio-trace is built and tested on. A weakly ordered one (arm64)
//! would need `BPF_STORE_REL` / `BPF_LOAD_ACQ` (kernel 6.15+) here.

use core::intrinsics::{AtomicOrdering, atomic_cxchg};

use aio_trace_common::{TABLE_WAYS, TableEntry, TableKey};
use aya_ebpf::maps::{Array, PerCpuArray};

/// A table of `sets * TABLE_WAYS` entries (`sets` a power of two).
pub type Table<K, V> = Array<TableEntry<K, V>>;

/// The same with a table per CPU, for counters each CPU adds to on its own.
pub type PerCpuTable<K, V> = PerCpuArray<TableEntry<K, V>>;

type Entry<K, V> = TableEntry<K, V>;

/// The array map under a table: entry `index`, if in range.
pub trait Entries<E> {
    fn entry(&self, index: u32) -> Option<*mut E>;
}

impl<E> Entries<E> for Array<E> {
    #[inline(always)]
    fn entry(&self, index: u32) -> Option<*mut E> {
        self.get_ptr_mut(index)
    }
}

impl<E> Entries<E> for PerCpuArray<E> {
    #[inline(always)]
    fn entry(&self, index: u32) -> Option<*mut E> {
        self.get_ptr_mut(index)
    }
}

#[inline(always)]
fn seq_of<K, V>(entry: *mut Entry<K, V>) -> u64 {
    // SAFETY: `entry` comes from `Entries::entry` (every caller in this module), a live map value;
    // `seq` is read whole and aligned (rule of the module doc).
    unsafe { core::ptr::read_volatile(&raw const (*entry).seq) }
}

#[inline(always)]
fn key_of<K: Copy, V>(entry: *mut Entry<K, V>) -> K {
    // SAFETY: as in `seq_of`; a torn key is still a valid K (integers), and callers re-check
    // `seq`.
    unsafe { core::ptr::read_volatile(&raw const (*entry).key) }
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
    // SAFETY: `entry` is a live map value from `Entries::entry`; `seq` is an aligned u64 that
    // every side accesses whole (atomically or by aligned word loads and stores); the intrinsic
    // lowers to BPF_CMPXCHG.
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
    // SAFETY: `entry` is a live map value from `Entries::entry`, claimed by the caller (odd
    // `seq`): this aligned store releases it.
    unsafe { core::ptr::write_volatile(&raw mut (*entry).seq, seen + 2) };
}

/// The entry holding `key`, and the sequence number it was seen at.
#[inline(always)]
fn find<K: TableKey, V>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
) -> Option<(*mut Entry<K, V>, u64)> {
    // A free entry's key is zero and its value is stale: the zero key (the
    // idle task's tid, a null pointer) must not find one.
    if key.is_free() {
        return None;
    }
    let first = key.first_entry(sets);
    for way in 0..TABLE_WAYS {
        let e = table.entry(first + way)?;
        let seen = seq_of(e);
        if seen & 1 == 0 && key_of(e) == *key && seq_of(e) == seen {
            return Some((e, seen));
        }
    }
    None
}

/// The value of `key`, to read or update in place.
#[inline(always)]
pub fn get_ptr<K: TableKey, V>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
) -> Option<*mut V> {
    // SAFETY: `e` is a live map value from `find`; the pointer to its value is for in-place
    // updates (module doc).
    find(table, sets, key).map(|(e, _)| unsafe { &raw mut (*e).value })
}

/// A copy of the value of `key` (small values: it is on the stack).
#[inline(always)]
pub fn get<K: TableKey, V: Copy>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
) -> Option<V> {
    let (e, seen) = find(table, sets, key)?;
    // SAFETY: `e` is a live map value from `find`; the copy is kept only if `seq` did not move,
    // and a torn V (integers) is still a valid value.
    let value = unsafe { (*e).value };
    (seq_of(e) == seen).then_some(value)
}

/// Removes `key`, first copying its value to `out` if given. False if it was
/// not there, or another writer got to it first.
#[inline(always)]
pub fn take_into<K: TableKey, V: Copy>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
    out: Option<*mut V>,
) -> bool {
    let Some((e, seen)) = find(table, sets, key) else {
        return false;
    };
    if !claim(e, seen) {
        return false;
    }
    // SAFETY: the claim made `seq` odd: this program holds the entry; `out`, if given, is the
    // caller's writable V; the zero key is a valid K (free).
    unsafe {
        if let Some(out) = out {
            *out = (*e).value;
        }
        (*e).key = core::mem::zeroed();
    }
    release(e, seen);
    true
}

/// Removes the first entry of `key`'s set whose key and value `pred`
/// accepts, copying its value to `out`: room for `key` in a full set. False
/// if none does, or another writer held the one that did.
#[inline(always)]
pub fn take_from_set<K: TableKey, V: Copy>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
    pred: impl Fn(&K, *mut V) -> bool,
    out: *mut V,
) -> bool {
    let first = key.first_entry(sets);
    for way in 0..TABLE_WAYS {
        let Some(e) = table.entry(first + way) else {
            return false;
        };
        let seen = seq_of(e);
        let held = key_of(e);
        // SAFETY: `e` is a live map value; the predicate reads fields of its value in place, and
        // the claim below checks that the entry did not change since.
        if seen & 1 != 0 || held.is_free() || !pred(&held, unsafe { &raw mut (*e).value }) {
            continue;
        }
        if !claim(e, seen) {
            return false;
        }
        // SAFETY: the claim made `seq` odd: this program holds the entry; `out` is the caller's
        // writable V; the zero key is a valid K (free).
        unsafe {
            *out = (*e).value;
            (*e).key = core::mem::zeroed();
        }
        release(e, seen);
        return true;
    }
    false
}

/// Removes `key` and returns its value (small values: it is on the stack).
#[inline(always)]
pub fn take<K: TableKey, V: Copy>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
) -> Option<V> {
    let mut value = core::mem::MaybeUninit::<V>::uninit();
    // SAFETY: `take_into` returned true only after writing the value to `value`.
    take_into(table, sets, key, Some(value.as_mut_ptr())).then(|| unsafe { value.assume_init() })
}

/// When `put` finds `key`'s set full.
#[derive(Clone, Copy, PartialEq)]
pub enum WhenFull {
    /// Replace the set's first way: owners whose completion was never seen
    /// must not hold their set forever.
    Evict,
    /// Refuse: an in-flight iocb is never dropped for another.
    Refuse,
}

/// Sets `key` to `value`: in its own entry if present, else in a free way.
/// False when the set is full and `full` refuses, or another writer held
/// the entry. A table that refuses (the in-flight iocbs) tries twice: two
/// CPUs putting into one set at once (threads of one application
/// submitting together) must not make one of them a loss.
#[inline(always)]
pub fn put<K: TableKey, V: Copy>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
    value: &V,
    full: WhenFull,
) -> bool {
    match try_put(table, sets, key, value, full) {
        Put::Done => true,
        Put::Refused => false,
        Put::Raced if full == WhenFull::Refuse => {
            try_put(table, sets, key, value, full) == Put::Done
        }
        Put::Raced => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Put {
    Done,
    /// The set is full (or the key is the free key).
    Refused,
    /// Another writer held the entry chosen, or took the free way first.
    Raced,
}

#[inline(always)]
fn try_put<K: TableKey, V: Copy>(
    table: &impl Entries<Entry<K, V>>,
    sets: u32,
    key: &K,
    value: &V,
    full: WhenFull,
) -> Put {
    if key.is_free() {
        return Put::Refused;
    }
    let first = key.first_entry(sets);
    let mut free = u32::MAX;
    let mut own = u32::MAX;
    for way in 0..TABLE_WAYS {
        let Some(e) = table.entry(first + way) else {
            return Put::Refused;
        };
        let k = key_of(e);
        if k == *key {
            // Held by a writer that is removing it (the user half's
            // reclaim, which a preemption can stretch to milliseconds): an
            // in-flight iocb goes to a free way rather than be refused.
            if full == WhenFull::Refuse && seq_of(e) & 1 != 0 {
                continue;
            }
            own = first + way;
            break;
        }
        if free == u32::MAX && k.is_free() {
            free = first + way;
        }
    }
    let target = if own != u32::MAX {
        own
    } else if free != u32::MAX {
        free
    } else if full == WhenFull::Evict {
        first
    } else {
        return Put::Refused;
    };
    let Some(e) = table.entry(target) else {
        return Put::Refused;
    };
    let seen = seq_of(e);
    if !claim(e, seen) {
        return Put::Raced;
    }
    // Another CPU may have taken the free way between the scan and the claim.
    let held = key_of(e);
    if held != *key && !held.is_free() && full == WhenFull::Refuse {
        release(e, seen);
        return Put::Raced;
    }
    // SAFETY: the claim made `seq` odd: this program holds the entry until `release`.
    unsafe {
        (*e).key = *key;
        (*e).value = *value;
    }
    release(e, seen);
    Put::Done
}
