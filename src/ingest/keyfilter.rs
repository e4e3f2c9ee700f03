//! Which natural keys of an ingest can meet another key at all: a count of incoming keys per
//! slot of their hash, two bits a slot, which the merge consults before it builds exact tables.
//!
//! A month's exports rarely share keys with each other or with the stored rows, yet an exact
//! deduplication looked up every row in tables larger than the caches (9.2 M rows: 150 MB of
//! tables and 8% of ingest's CPU). The filter holds 8 to 16 slots per incoming key in 2 to 4
//! bits a key (at least 4 MB), its slots are prefetched ahead of the scan, and only the keys
//! that share a slot with another key (a real repeat, or about one key in ten by chance) go on
//! to the exact check.

use anyhow::Result;
use rayon::prelude::*;

use super::keyspill::Keys;
use super::keytable::prefetch;

/// How far ahead of a scan a slot is prefetched.
pub const AHEAD: usize = 16;

/// Per slot: 0 (no incoming key), 1 (one), 2 (two or more), 3 (at least one, and a stored key
/// too). Four slots a byte.
pub struct KeyFilter {
    bits: u32,
    counts: Vec<u8>,
}

impl KeyFilter {
    /// Count the incoming `keys` (every batch's, in any order).
    pub fn count(keys: &[&Keys]) -> Result<KeyFilter> {
        let rows: usize = keys.iter().map(|k| k.len()).sum();
        // At least 8 slots a key, and at least 2^24 slots (4 MB): a month's ingest into a long
        // history checks many stored keys against few incoming ones.
        let bits = (rows * 8).next_power_of_two().trailing_zeros().max(24);
        let slot = move |key: u64| slot_of(bits, key);
        let mut counts = vec![0u8; 1 << (bits - 2)];
        // Two halves of the slots counted at once, each scanning all keys for its own.
        let (half, shift) = (counts.len() / 2, bits - 1);
        counts.par_chunks_mut(half).enumerate().try_for_each(|(part, counts)| {
            // The first slot of this half.
            let first = part * half * 4;
            keys.iter().try_for_each(|keys| {
                keys.for_each_slice(|_, keys| {
                    for (i, &key) in keys.iter().enumerate() {
                        if let Some(ahead) = keys.get(i + AHEAD).map(|k| slot(*k))
                            && ahead >> shift == part
                        {
                            prefetch(&counts[(ahead - first) >> 2]);
                        }
                        let s = slot(key);
                        if s >> shift != part {
                            continue;
                        }
                        let s = s - first;
                        let (byte, at) = (&mut counts[s >> 2], (s & 3) * 2);
                        if (*byte >> at) & 3 < 2 {
                            *byte += 1 << at;
                        }
                    }
                })
            })
        })?;
        Ok(KeyFilter { bits, counts })
    }

    fn slot(&self, key: u64) -> usize {
        slot_of(self.bits, key)
    }

    fn get(&self, slot: usize) -> u8 {
        (self.counts[slot >> 2] >> ((slot & 3) * 2)) & 3
    }

    /// Whether an incoming key may equal `key`.
    pub fn has_incoming(&self, key: u64) -> bool {
        self.get(self.slot(key)) > 0
    }

    /// Prefetch the slot of `key`, for a scan that will ask about it soon.
    pub fn prefetch(&self, key: u64) {
        prefetch(&self.counts[self.slot(key) >> 2]);
    }

    /// Note a stored key that may equal an incoming one: the incoming keys of its slot must
    /// be checked exactly.
    pub fn mark_stored(&mut self, key: u64) {
        let s = self.slot(key);
        self.counts[s >> 2] |= 3 << ((s & 3) * 2);
    }

    /// Whether an incoming key may equal another incoming key or a stored one (see
    /// [`KeyFilter::mark_stored`]); when not, it is certainly unique.
    pub fn may_repeat(&self, key: u64) -> bool {
        self.get(self.slot(key)) >= 2
    }
}

/// The slot of a key among 2^`bits`: the top bits of its short hash.
fn slot_of(bits: u32, key: u64) -> usize {
    (key >> (64 - bits)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_repeated_or_stored_key_is_caught_and_few_others() {
        // Keys 0..n in two batches that share every tenth key.
        let hash = |k: u64| xxhash_rust::xxh3::xxh3_64(&k.to_le_bytes());
        let a: Vec<u64> = (0..50_000u64).map(hash).collect();
        let b: Vec<u64> = (45_000..100_000u64).filter(|k| k % 10 == 0 || *k >= 50_000).map(hash).collect();
        // One batch's keys in memory, the other's on disk (a file read in blocks).
        let t = tempfile::tempdir().unwrap();
        let mut on_disk = super::super::keyspill::KeyFile::new(&t.path().join("b.keys"));
        on_disk.push(&b).unwrap();
        let mut f = KeyFilter::count(&[&Keys::Memory(a), &on_disk.finish()]).unwrap();
        let stored: Vec<u64> = (200_000..200_100u64).chain([7, 60_001]).map(hash).collect();
        for &k in &stored {
            if f.has_incoming(k) {
                f.mark_stored(k);
            }
        }
        for k in (45_000..50_000u64).filter(|k| k % 10 == 0).chain([7, 60_001]) {
            assert!(f.may_repeat(hash(k)), "key {k}");
        }
        let unique = (0..100_000u64).filter(|k| !(45_000..50_000).contains(k) && ![7, 60_001].contains(k));
        let false_repeats = unique.clone().filter(|k| f.may_repeat(hash(*k))).count();
        assert!(false_repeats * 5 < unique.count(), "{false_repeats} unique keys would be checked");
    }
}
