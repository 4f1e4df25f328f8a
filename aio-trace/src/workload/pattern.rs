//! The `--verify` pattern: every 8-byte word is a function of its file offset
//! (and the seed), so any write of a range writes the same bytes and any read
//! can be checked, whatever the order of I/O.

use super::plan::SplitMix64;

fn word(offset: u64, seed: u64) -> u64 {
    SplitMix64::new(offset ^ seed.rotate_left(17)).next_u64()
}

/// Fills `buf` with the pattern of the file range starting at `offset` (8-aligned).
pub fn fill(buf: &mut [u8], offset: u64, seed: u64) {
    for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&word(offset + 8 * i as u64, seed).to_le_bytes());
    }
}

/// The file offset of the first byte that differs from the pattern, if any.
pub fn first_mismatch(buf: &[u8], offset: u64, seed: u64) -> Option<u64> {
    buf.chunks_exact(8).enumerate().find_map(|(i, chunk)| {
        let at = offset + 8 * i as u64;
        let expected = word(at, seed).to_le_bytes();
        chunk
            .iter()
            .zip(expected)
            .position(|(got, want)| *got != want)
            .map(|byte| at + byte as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_range_verifies_and_a_flipped_byte_is_found() {
        let mut buf = vec![0u8; 4096];
        fill(&mut buf, 8192, 5);
        assert_eq!(first_mismatch(&buf, 8192, 5), None);
        assert_eq!(
            first_mismatch(&buf, 8192, 6),
            Some(8192),
            "another seed is another pattern"
        );
        buf[1000] ^= 1;
        assert_eq!(first_mismatch(&buf, 8192, 5), Some(8192 + 1000));
    }

    #[test]
    fn the_pattern_depends_only_on_the_offset() {
        let mut whole = vec![0u8; 8192];
        fill(&mut whole, 0, 1);
        let mut half = vec![0u8; 4096];
        fill(&mut half, 4096, 1);
        assert_eq!(&whole[4096..], &half[..]);
    }
}
