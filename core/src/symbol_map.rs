//! Maps keyed by symbol or book key, with a fast non-cryptographic hasher.
//!
//! Symbols are short strings named by the bot and its exchange, not by an adversary, so SipHash's
//! flooding resistance buys nothing here while costing a measurable share of an update cycle.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a, 64 bit.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A `HashMap` keyed by symbol.
pub type SymbolMap<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;

/// A `HashMap` keyed by book key (searchable by the key's text).
pub type KeyMap<V> = HashMap<crate::key::Key, V, BuildHasherDefault<Fnv>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut m: SymbolMap<u32> = SymbolMap::default();
        m.insert("BTC/USDT:USDT".into(), 1);
        m.insert("ETH/USDT:USDT".into(), 2);
        assert_eq!(m.get("BTC/USDT:USDT"), Some(&1));
        assert_eq!(m.len(), 2);
    }
}
