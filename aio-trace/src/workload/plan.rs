//! Which file ranges the workload touches, in which order: the same for the
//! vectored and the scalar mode, given the same seed.

use super::config::Rw;

/// splitmix64: a small, well-distributed, seedable generator (the same
/// sequence on every machine, which `--seed` promises).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..bound (bound > 0), without modulo bias worth caring about
    /// for offsets (Lemire's multiply-shift).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// One range of `segments × segment_size` bytes: a vectored iocb, or the
/// `segments` scalar iocbs that cover the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub offset: u64,
    pub read: bool,
}

/// The sequence of units over a target of `size` bytes.
#[derive(Clone, Debug)]
pub struct Plan {
    rw: Rw,
    read_pct: u8,
    unit_bytes: u64,
    units: u64,
    next_sequential: u64,
    offsets: SplitMix64,
    mix: SplitMix64,
}

impl Plan {
    /// `size` is rounded down to whole units; at least one unit must fit.
    pub fn new(rw: Rw, read_pct: u8, unit_bytes: u64, size: u64, seed: u64) -> Self {
        Self {
            rw,
            read_pct,
            unit_bytes,
            units: (size / unit_bytes).max(1),
            next_sequential: 0,
            offsets: SplitMix64::new(seed),
            // A separate stream, so the offsets do not depend on --read-pct.
            mix: SplitMix64::new(seed ^ 0x005e_ed0f_7265_6164),
        }
    }

    pub fn unit_bytes(&self) -> u64 {
        self.unit_bytes
    }

    pub fn next_unit(&mut self) -> Unit {
        let index = if self.rw.is_random() {
            self.offsets.below(self.units)
        } else {
            let i = self.next_sequential;
            self.next_sequential = (i + 1) % self.units;
            i
        };
        let read = match self.rw {
            Rw::Read | Rw::RandRead => true,
            Rw::Write | Rw::RandWrite => false,
            Rw::Rw | Rw::RandRw => self.mix.below(100) < u64::from(self.read_pct),
        };
        Unit {
            offset: index * self.unit_bytes,
            read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_wraps_at_the_end_of_the_target() {
        let mut plan = Plan::new(Rw::Read, 100, 32768, 3 * 32768 + 100, 1);
        let offsets: Vec<_> = (0..5).map(|_| plan.next_unit().offset).collect();
        assert_eq!(offsets, [0, 32768, 65536, 0, 32768]);
    }

    #[test]
    fn random_offsets_are_seeded_aligned_and_in_range() {
        let a: Vec<_> = {
            let mut p = Plan::new(Rw::RandRead, 100, 4096, 1 << 20, 42);
            (0..100).map(|_| p.next_unit()).collect()
        };
        let b: Vec<_> = {
            let mut p = Plan::new(Rw::RandRead, 100, 4096, 1 << 20, 42);
            (0..100).map(|_| p.next_unit()).collect()
        };
        assert_eq!(a, b, "same seed, same sequence");
        assert!(
            a.iter()
                .all(|u| u.offset % 4096 == 0 && u.offset < 1 << 20 && u.read)
        );
        let mut c = Plan::new(Rw::RandRead, 100, 4096, 1 << 20, 43);
        assert_ne!(
            a[..10],
            (0..10).map(|_| c.next_unit()).collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn mixed_workload_honours_read_pct() {
        let mut p = Plan::new(Rw::RandRw, 70, 4096, 1 << 30, 7);
        let reads = (0..10_000).filter(|_| p.next_unit().read).count();
        assert!(
            (6_700..7_300).contains(&reads),
            "{reads} reads of 10000 at 70%"
        );
        let mut w = Plan::new(Rw::Write, 70, 4096, 1 << 20, 7);
        assert!(!w.next_unit().read);
    }

    #[test]
    fn read_pct_does_not_move_the_offsets() {
        let mut a = Plan::new(Rw::RandRw, 10, 4096, 1 << 24, 9);
        let mut b = Plan::new(Rw::RandRw, 90, 4096, 1 << 24, 9);
        for _ in 0..50 {
            assert_eq!(a.next_unit().offset, b.next_unit().offset);
        }
    }
}
