//! Short texts as numbers. A text of up to 16 bytes and its length compare and hash as two
//! integers, where comparing texts calls `memcmp` for every pair: on a shuffled export, whose
//! dates and codes change from row to row, those calls were 8% of ingest's time.

/// A text of up to 16 bytes as a number and its length, or `None` when it is longer. Equal
/// texts give equal pairs, and only they: for a given length the loads, which overlap rather
/// than copy a variable number of bytes, cover every byte.
pub fn pack(text: &[u8]) -> Option<(u128, u8)> {
    let n = text.len();
    let word = |i: usize| u64::from_le_bytes(text[i..i + 8].try_into().expect("8 bytes")) as u128;
    let half = |i: usize| u32::from_le_bytes(text[i..i + 4].try_into().expect("4 bytes")) as u128;
    let body = match n {
        8..=16 => word(0) | word(n - 8) << 64,
        4..=7 => half(0) | half(n - 4) << 32,
        1..=3 => text[0] as u128 | (text[n / 2] as u128) << 8 | (text[n - 1] as u128) << 16,
        0 => 0,
        _ => return None,
    };
    Some((body, n as u8))
}

/// Append an unambiguous encoding of `text` to `buf`, for hashing a sequence of texts: its
/// length and packed form (17 bytes, copies of a fixed size, which compile to a few moves)
/// when it is up to 16 bytes long, else a marker, its length and its bytes.
pub fn encode(buf: &mut Vec<u8>, text: &[u8]) {
    match pack(text) {
        Some((packed, len)) => {
            buf.push(len);
            buf.extend_from_slice(&packed.to_le_bytes());
        }
        None => {
            buf.push(u8::MAX);
            buf.extend_from_slice(&(text.len() as u64).to_le_bytes());
            buf.extend_from_slice(text);
        }
    }
}

/// A map from texts: those of up to 16 bytes by their packed form, looked up without comparing
/// texts, the others by `K` (a `&str` borrowed for the map's life, or an owned `Box<str>`).
pub struct TextMap<K, V> {
    short: hashbrown::HashMap<(u128, u8), V, foldhash::fast::FixedState>,
    long: hashbrown::HashMap<K, V, foldhash::fast::FixedState>,
}

impl<K, V> Default for TextMap<K, V> {
    fn default() -> Self {
        TextMap { short: Default::default(), long: Default::default() }
    }
}

impl<K: std::borrow::Borrow<str> + std::hash::Hash + Eq, V> TextMap<K, V> {
    pub fn get(&self, text: &str) -> Option<&V> {
        match pack(text.as_bytes()) {
            Some(packed) => self.short.get(&packed),
            None => self.long.get(text),
        }
    }

    /// The value of `text`, made by `value` if it has none yet.
    pub fn get_or_insert_with<'t>(&mut self, text: &'t str, value: impl FnOnce() -> V) -> &V
    where
        K: From<&'t str>,
    {
        match pack(text.as_bytes()) {
            Some(packed) => self.short.entry(packed).or_insert_with(value),
            None => self.long.entry(K::from(text)).or_insert_with(value),
        }
    }

    pub fn insert<'t>(&mut self, text: &'t str, value: V)
    where
        K: From<&'t str>,
    {
        match pack(text.as_bytes()) {
            Some(packed) => self.short.insert(packed, value),
            None => self.long.insert(K::from(text), value),
        };
    }

    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn texts_pack_to_the_same_pair_exactly_when_they_are_equal() {
        // Every text of up to 4 bytes over a small alphabet (zero bytes too, which the
        // number's unused bits also hold), and longer texts that differ in one byte only.
        let alphabet = [0u8, b'a', b'b', 0xff];
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=4 {
            let mut more = Vec::new();
            for t in texts.iter().filter(|t| t.len() == len - 1) {
                more.extend(alphabet.iter().map(|&c| [t.as_slice(), &[c]].concat()));
            }
            texts.extend(more);
        }
        for len in 5..=16 {
            for at in 0..len {
                for &c in &alphabet {
                    let mut t = vec![b'x'; len];
                    t[at] = c;
                    texts.push(t);
                }
            }
        }
        let mut seen: HashMap<(u128, u8), &[u8]> = HashMap::new();
        for t in &texts {
            let p = pack(t).unwrap();
            assert_eq!(pack(&t.clone()), Some(p));
            if let Some(other) = seen.insert(p, t) {
                assert_eq!(other, t.as_slice(), "two texts packed alike");
            }
        }
        assert_eq!(pack(&[b'x'; 17]), None);
        // Sequences of texts encode apart, whatever the lengths.
        let seq = |parts: &[&[u8]]| {
            let mut buf = Vec::new();
            parts.iter().for_each(|p| encode(&mut buf, p));
            buf
        };
        let long = [b'y'; 20];
        let cases: [&[&[u8]]; 6] =
            [&[b"ab", b"c"], &[b"a", b"bc"], &[b"abc"], &[&long, b""], &[&long[..19], b"y"], &[b"", &long]];
        for (i, a) in cases.iter().enumerate() {
            for b in &cases[i + 1..] {
                assert_ne!(seq(a), seq(b), "{a:?} {b:?}");
            }
        }
        assert_eq!(pack("2024年4月16日".as_bytes()).map(|p| p.1), Some(16));
    }

    #[test]
    fn a_text_map_holds_short_and_long_texts_apart_from_each_other() {
        let texts = ["", "a", "a\0", "2024-04-16", "EB0001-202404-01", "EB0001-202404-01x", "EB0001-202404-01y"];
        let mut map: TextMap<Box<str>, usize> = TextMap::default();
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(*map.get_or_insert_with(t, || i), i);
        }
        map.insert(texts[6], 60);
        assert_eq!(map.len(), texts.len());
        let want = |i: usize| if i == 6 { 60 } else { i };
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(map.get(t), Some(&want(i)), "{t:?}");
            assert_eq!(*map.get_or_insert_with(t, || 99), want(i));
        }
        assert_eq!(map.get("b"), None);
        assert_eq!(map.get("EB0001-202404-01z"), None);
    }
}
