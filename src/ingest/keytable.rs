//! A hash table of row numbers by natural key, for the repeated-key check of one file
//! (`validate`), whose probes would otherwise wait on memory row after row. It holds no keys,
//! only row numbers; callers compare keys through a closure.
//!
//! Tried and dropped for the merge's deduplication too: its shard tables are allocated at
//! once for all rows, and at half load the extra page faults cost more than the prefetch
//! saved (9.2 M rows: 0.26-0.39 s -> 0.78-1.03 s).

/// Rows by key: open addressing with linear probing, one `u64` per slot (the upper half of
/// the key's hash beside the row number plus one; 0 is an empty slot), at most half full.
/// Unlike `hashbrown`, its slot for a hash can be prefetched before the probe, and a probe
/// reads one slot, not a control byte and then an entry elsewhere.
pub struct KeyTable {
    slots: Vec<u64>,
    len: usize,
}

impl KeyTable {
    pub fn with_capacity(rows: usize) -> KeyTable {
        KeyTable { slots: vec![0; (rows * 2).next_power_of_two().max(16)], len: 0 }
    }

    fn home(&self, hash: u64) -> usize {
        hash as usize & (self.slots.len() - 1)
    }

    /// Ask for the slot of `hash` to be brought into the cache.
    pub fn prefetch(&self, hash: u64) {
        prefetch(&self.slots[self.home(hash)]);
    }

    /// The row already stored under an equal key (`same` compares a stored row's key), or
    /// `None` after storing `row`. `hash_of` gives a stored row's hash when the table grows.
    pub fn find_or_insert(
        &mut self,
        hash: u64,
        row: u32,
        same: impl Fn(u32) -> bool,
        hash_of: impl Fn(u32) -> u64,
    ) -> Option<u32> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow(&hash_of);
        }
        let mask = self.slots.len() - 1;
        let tag = hash >> 32;
        let mut i = self.home(hash);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                self.slots[i] = (tag << 32) | (row as u64 + 1);
                self.len += 1;
                return None;
            }
            let stored = (slot as u32).wrapping_sub(1);
            if slot >> 32 == tag && same(stored) {
                return Some(stored);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self, hash_of: &impl Fn(u32) -> u64) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| *s != 0) {
            let mut i = self.home(hash_of((slot as u32).wrapping_sub(1)));
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }
}

/// Ask for the cache line holding `item` to be brought into the cache, so that a later read of
/// it does not wait on memory. One of the crate's two `unsafe` uses (see Cargo.toml): a hint only, it reads
/// nothing the program sees, and a reference is a valid address.
pub fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_table_finds_every_key_through_growth_and_collisions() {
        // Few distinct hashes (many collisions, long probe runs) and a table that grows from
        // its smallest size.
        let keys: Vec<u64> = (0..5000u64).map(|i| i % 1700).collect();
        let hash = |k: u64| if k.is_multiple_of(3) { 7 } else { k.wrapping_mul(0x9E37_79B9_7F4A_7C15) };
        let mut t = KeyTable::with_capacity(1);
        let mut first: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
        for (row, k) in keys.iter().enumerate() {
            t.prefetch(hash(*k));
            let got = t.find_or_insert(hash(*k), row as u32, |r| keys[r as usize] == *k, |r| hash(keys[r as usize]));
            let want = first.get(k).copied();
            assert_eq!(got, want, "row {row}");
            first.entry(*k).or_insert(row as u32);
        }
        assert_eq!(t.len, 1700);
    }
}
