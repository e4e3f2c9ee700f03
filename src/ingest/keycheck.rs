//! The repeated-key check of one file: the first row of a key stays, the same row again is a
//! duplicate, and a key met again with other values is a conflict (every row of it is
//! quarantined). The validator runs it row by row. A large file read in blocks is not checked
//! here (it would keep about 45 bytes a row): the merge settles its repeats by the same rule
//! (`merge::own_repeats`).

use std::cmp::Ordering;
use std::collections::HashSet;

use super::keytable::KeyTable;
use super::validate::fold;

/// What the check says about a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// A key not seen before: the row stays.
    New,
    /// The same values as the key's first row: dropped, counted.
    Duplicate,
    /// Other values than the key's first row (at `first_line`); `newly` when this is the
    /// first conflict of that row, which then leaves the loaded rows too.
    Conflict { first_line: u64, newly: bool },
}

/// The rows kept so far, by key.
pub struct KeyCheck {
    keys: Vec<u128>,
    contents: Vec<u64>,
    lines: Vec<i64>,
    /// The first row of each key, built only once the rows leave key order.
    seen: KeyTable,
    /// While the rows come in key order (exports usually do, by event then member), a repeated
    /// key can only be the previous row's: it is compared with that one and the table is not
    /// needed. The first row out of order fills the table with the rows so far.
    in_order: bool,
    last_key: Vec<String>,
    /// The row count the table is sized for.
    capacity: usize,
    /// Rows kept that a later row turned into a conflict.
    conflicted: HashSet<usize>,
    duplicates: u64,
}

impl KeyCheck {
    pub fn with_capacity(capacity: usize) -> KeyCheck {
        KeyCheck {
            keys: Vec::with_capacity(capacity),
            contents: Vec::with_capacity(capacity),
            lines: Vec::with_capacity(capacity),
            seen: KeyTable::with_capacity(0),
            in_order: true,
            last_key: Vec::new(),
            capacity,
            conflicted: HashSet::new(),
            duplicates: 0,
        }
    }

    /// Whether the rows so far came in key order.
    pub fn in_order(&self) -> bool {
        self.in_order
    }

    /// Start bringing a key's slot of the table into the cache (only used out of order).
    pub fn prefetch(&self, key: u128) {
        if !self.in_order {
            self.seen.prefetch(fold(key));
        }
    }

    /// Check a row with key hash `key`, values hash `content`, at `line`; `texts` is the key's
    /// text, to follow the order.
    pub fn admit(&mut self, key: u128, content: u64, line: u64, texts: &[&str]) -> Admit {
        let row = self.keys.len();
        if self.in_order {
            match texts.iter().copied().cmp(self.last_key.iter().map(String::as_str)) {
                Ordering::Greater => self.set_last(texts),
                Ordering::Less if row > 0 => self.leave_key_order(),
                _ if row == 0 => self.set_last(texts),
                _ => {}
            }
        }
        let first = if self.in_order {
            (row > 0 && self.keys[row - 1] == key).then(|| row - 1)
        } else {
            let keys = &self.keys;
            self.seen
                .find_or_insert(fold(key), row as u32, |r| keys[r as usize] == key, |r| fold(keys[r as usize]))
                .map(|r| r as usize)
        };
        match first {
            None => {
                self.keys.push(key);
                self.contents.push(content);
                self.lines.push(line as i64);
                Admit::New
            }
            Some(first) if self.contents[first] == content && !self.conflicted.contains(&first) => {
                self.duplicates += 1;
                Admit::Duplicate
            }
            Some(first) => {
                let newly = self.conflicted.insert(first);
                Admit::Conflict { first_line: self.lines[first] as u64, newly }
            }
        }
    }

    fn set_last(&mut self, texts: &[&str]) {
        self.last_key.resize(texts.len(), String::new());
        for (last, t) in self.last_key.iter_mut().zip(texts) {
            last.clear();
            last.push_str(t);
        }
    }

    /// The rows left key order: the table takes every row so far (their keys are distinct)
    /// and answers from now on.
    fn leave_key_order(&mut self) {
        self.leave_order();
    }

    /// Answer from the table from now on, whatever order the rows come in.
    fn leave_order(&mut self) {
        if !self.in_order {
            return;
        }
        self.in_order = false;
        self.last_key = Vec::new();
        self.seen = KeyTable::with_capacity(self.capacity.max(self.keys.len()));
        let keys = &self.keys;
        for (row, key) in keys.iter().enumerate() {
            if let Some(ahead) = keys.get(row + 8) {
                self.seen.prefetch(fold(*ahead));
            }
            let stored = self.seen.find_or_insert(
                fold(*key),
                row as u32,
                |r| keys[r as usize] == *key,
                |r| fold(keys[r as usize]),
            );
            debug_assert!(stored.is_none(), "rows in key order have distinct keys");
        }
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The rows kept that a later row conflicted with.
    pub fn conflicted(&self) -> &HashSet<usize> {
        &self.conflicted
    }

    /// Every kept row's key hash, conflicted ones included.
    pub fn keys(&self) -> &[u128] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_row_stays_repeats_are_duplicates_and_other_values_conflict() {
        // Following the key order, and with the table from the first row.
        for follow_order in [true, false] {
            let mut c = KeyCheck::with_capacity(4);
            if !follow_order {
                c.leave_order();
            }
            let mut admit = |key: u128, content: u64, line: u64, t: &'static str| c.admit(key, content, line, &[t]);
            assert_eq!(admit(1, 10, 2, "a"), Admit::New);
            assert_eq!(admit(1, 10, 3, "a"), Admit::Duplicate);
            assert_eq!(admit(2, 20, 4, "b"), Admit::New);
            // Out of order from here: the table answers.
            assert_eq!(admit(0, 5, 5, "0"), Admit::New);
            assert_eq!(admit(1, 11, 6, "a"), Admit::Conflict { first_line: 2, newly: true });
            assert_eq!(admit(1, 12, 7, "a"), Admit::Conflict { first_line: 2, newly: false });
            // A conflicted row's key never counts as a plain duplicate again.
            assert_eq!(admit(1, 10, 8, "a"), Admit::Conflict { first_line: 2, newly: false });
        }
    }
}
