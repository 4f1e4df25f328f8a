//! Set-associative tables on array maps, as the kernel half keeps its
//! in-flight iocbs and owners: the entry layout and how a key picks its set,
//! shared so that the user half finds the same entries.

use crate::InflightKey;

/// Entries per set of the kernel half's set-associative tables (see `TableEntry`).
pub const TABLE_WAYS: u32 = 4;

/// Sets of the in-flight table (iocbs submitted but not yet reaped): a power
/// of two. 65,536 entries: at 1,024 iocbs in flight a set is full (an iocb
/// counted `inflight_full`) about once in two million submits.
pub const INFLIGHT_SETS: u32 = 16_384;
pub const INFLIGHT_ENTRIES: u32 = INFLIGHT_SETS * TABLE_WAYS;

/// Entries of the per-CPU device counter table (block devices seen).
pub const DEV_STATS_ENTRIES: u32 = 256;

/// Sets of the pid filter table (`--pid`), written by the loader before
/// load. 4,096 entries: more than 4 pids in one set is refused at start-up.
pub const PID_FILTER_SETS: u32 = 1024;

/// One entry of a set-associative table on an array map, shared with the
/// user half by mmap for the in-flight table.
///
/// `seq` is a seqlock word: odd while a writer (kernel or user half) holds the
/// entry, bumped by two per change, claimed with a compare-and-swap. The entry
/// is free when `key` is all zeros.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableEntry<K, V> {
    pub seq: u64,
    pub key: K,
    pub value: V,
}

/// A key of a table: never all zeros (zero marks a free entry).
pub trait TableKey: Copy + PartialEq {
    fn hash(&self) -> u64;
    fn is_free(&self) -> bool;

    /// The index of the first entry of this key's set in a table of `sets`
    /// sets (a power of two).
    #[inline(always)]
    fn first_entry(&self, sets: u32) -> u32 {
        ((self.hash() >> 32) as u32 & (sets - 1)) * TABLE_WAYS
    }
}

/// Fibonacci hashing: the multiply spreads nearby pointers, sectors and iocb
/// addresses over the high bits, which pick the set.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A kernel object by address.
impl TableKey for u64 {
    #[inline(always)]
    fn hash(&self) -> u64 {
        self.wrapping_mul(GOLDEN)
    }
    #[inline(always)]
    fn is_free(&self) -> bool {
        *self == 0
    }
}

impl TableKey for InflightKey {
    /// An address's order entry (`SEQ_ORDER`) hashes with its first
    /// submission (seq 0), so the lookup of one after the other finds the
    /// set in cache; later submissions of the address spread over the table.
    #[inline(always)]
    fn hash(&self) -> u64 {
        let seq = if self.seq == crate::SEQ_ORDER {
            0
        } else {
            u64::from(self.seq)
        };
        (self.iocb
            ^ self.ctx.rotate_left(17)
            ^ u64::from(self.pid)
            ^ seq.wrapping_mul(0xFF51_AFD7_ED55_8CCD))
        .wrapping_mul(GOLDEN)
    }
    #[inline(always)]
    fn is_free(&self) -> bool {
        self.pid == 0 && self.ctx == 0 && self.iocb == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_iocbs_spread_over_sets() {
        // An application's iocbs sit 64 bytes apart in one array.
        let mut used = [false; INFLIGHT_SETS as usize];
        for i in 0..1024u64 {
            let key = InflightKey {
                pid: 4242,
                seq: 0,
                ctx: 0x7f00_dead_0000,
                iocb: 0x5555_0000_1000 + 64 * i,
            };
            let first = key.first_entry(INFLIGHT_SETS);
            assert_eq!(first % TABLE_WAYS, 0);
            assert!(first < INFLIGHT_ENTRIES);
            used[(first / TABLE_WAYS) as usize] = true;
        }
        let sets = used.iter().filter(|u| **u).count();
        assert!(sets > 1000, "1024 iocbs landed in only {sets} sets");
    }

    #[test]
    fn an_order_entry_shares_its_first_submission_s_set_and_later_ones_spread() {
        let key = |seq| InflightKey {
            pid: 4242,
            seq,
            ctx: 0x7f00_dead_0000,
            iocb: 0x7ffc_0000_1000,
        };
        let first = key(0).first_entry(INFLIGHT_SETS);
        assert_eq!(key(crate::SEQ_ORDER).first_entry(INFLIGHT_SETS), first);
        let mut used = [false; INFLIGHT_SETS as usize];
        for seq in 1..=64 {
            used[(key(seq).first_entry(INFLIGHT_SETS) / TABLE_WAYS) as usize] = true;
        }
        let sets = used.iter().filter(|u| **u).count();
        assert!(sets > 60, "64 submissions of one address in {sets} sets");
    }

    #[test]
    fn zero_keys_are_free() {
        assert!(InflightKey::default().is_free());
        assert!(0u64.is_free());
        assert!(!1u64.is_free());
    }
}
