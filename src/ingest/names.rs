//! Personal names (`member_name`, `assessor`) never reach the warehouse in clear text.
//!
//! With a key in the environment variable `DANGJIAN_NAME_KEY` (at least 16 bytes), a name is
//! stored as a keyed BLAKE3 hash (128 bits, hex), so analysts can still tell whether two rows
//! name the same person without anyone reading the name back. Without a key the column is kept
//! but every value is null: the documented default is "drop". The key itself is never written
//! anywhere, and never appears in a log line or an error message.

use std::fmt;

/// The environment variable holding the name key.
pub const KEY_VAR: &str = "DANGJIAN_NAME_KEY";

/// Hashes names with a secret key, or drops them when there is no key.
#[derive(Clone)]
pub struct NameHasher {
    key: Option<[u8; 32]>,
}

impl fmt::Debug for NameHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("NameHasher").field("keyed", &self.key.is_some()).finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{KEY_VAR} is set but shorter than 16 bytes; use a long random secret, or unset it to drop names")]
pub struct WeakKey;

impl NameHasher {
    /// Names are dropped.
    pub fn dropping() -> Self {
        NameHasher { key: None }
    }

    /// Names are hashed with a key derived from `secret`.
    pub fn keyed(secret: &[u8]) -> Result<Self, WeakKey> {
        if secret.len() < 16 {
            return Err(WeakKey);
        }
        Ok(NameHasher { key: Some(blake3::derive_key("dangjian 2026 personal name v1", secret)) })
    }

    /// From `DANGJIAN_NAME_KEY`, dropping names when it is unset or empty.
    pub fn from_env() -> Result<Self, WeakKey> {
        match std::env::var_os(KEY_VAR) {
            Some(v) if !v.is_empty() => Self::keyed(v.as_encoded_bytes()),
            _ => Ok(Self::dropping()),
        }
    }

    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The stored form of a name: `None` when names are dropped or the name is empty.
    pub fn hash(&self, name: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let name: String = name.split_whitespace().collect();
        if name.is_empty() {
            return None;
        }
        let h = blake3::keyed_hash(key, name.as_bytes());
        Some(h.to_hex()[..32].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_stores_nothing() {
        assert_eq!(NameHasher::dropping().hash("张三"), None);
    }

    #[test]
    fn keyed_hash_is_stable_and_hides_the_name() {
        let h = NameHasher::keyed(b"0123456789abcdef-secret").unwrap();
        let a = h.hash("张三").unwrap();
        assert_eq!(a, h.hash(" 张 三 ").unwrap(), "white space does not change the person");
        assert_ne!(a, h.hash("李四").unwrap());
        assert_eq!(a.len(), 32);
        assert!(!a.contains("张三"));
        let other = NameHasher::keyed(b"another-secret-of-16").unwrap();
        assert_ne!(a, other.hash("张三").unwrap(), "another key gives another hash");
    }

    #[test]
    fn short_keys_are_refused_and_debug_hides_the_key() {
        assert_eq!(NameHasher::keyed(b"short").unwrap_err(), WeakKey);
        let h = NameHasher::keyed(b"0123456789abcdef-secret").unwrap();
        assert_eq!(format!("{h:?}"), "NameHasher { keyed: true }");
    }
}
