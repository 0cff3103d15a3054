//! Symbols an operation is busy with: one small locked set type and the guard that keeps a
//! symbol in it for the duration of an operation.
//!
//! The manager keeps three: symbols being opened (no second open, no import meanwhile), symbols
//! with a closing or resizing order in flight (one such order per symbol; no resize from a
//! snapshot meanwhile), and symbols whose last close had an unknown outcome.

use parking_lot::Mutex;

/// A set of symbols (few at a time, so a vector).
#[derive(Debug, Default)]
pub(crate) struct SymbolSet(Mutex<Vec<String>>);

/// Keeps a symbol in its [`SymbolSet`] until dropped.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    set: &'a SymbolSet,
    symbol: &'a str,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.set.remove(self.symbol);
    }
}

impl SymbolSet {
    /// Whether `symbol` is in the set.
    pub(crate) fn contains(&self, symbol: &str) -> bool {
        self.0.lock().iter().any(|s| s == symbol)
    }

    /// Adds `symbol` (once).
    pub(crate) fn insert(&self, symbol: &str) {
        let mut set = self.0.lock();
        if !set.iter().any(|s| s == symbol) {
            set.push(symbol.to_owned());
        }
    }

    /// Removes `symbol`.
    pub(crate) fn remove(&self, symbol: &str) {
        self.0.lock().retain(|s| s != symbol);
    }

    /// Adds `symbol` for as long as the returned guard lives, unless it is already in the set or
    /// `taken_elsewhere` (checked under the set's lock, so atomically with the insert) says so.
    pub(crate) fn hold<'a>(
        &'a self,
        symbol: &'a str,
        taken_elsewhere: impl FnOnce() -> bool,
    ) -> Option<Held<'a>> {
        let mut set = self.0.lock();
        if set.iter().any(|s| s == symbol) || taken_elsewhere() {
            return None;
        }
        set.push(symbol.to_owned());
        Some(Held { set: self, symbol })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_symbol_is_released_with_its_guard() {
        let set = SymbolSet::default();
        let held = set.hold("BTC", || false).expect("free");
        assert!(set.contains("BTC"));
        assert!(set.hold("BTC", || false).is_none());
        drop(held);
        assert!(!set.contains("BTC"));
        assert!(set.hold("BTC", || true).is_none(), "taken elsewhere");
        set.insert("ETH");
        set.insert("ETH");
        set.remove("ETH");
        assert!(!set.contains("ETH"));
    }
}
