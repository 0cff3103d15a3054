//! What the book is keyed by: a symbol, and — for an account in hedge mode — one leg of it.
//!
//! In one-way mode (the default, and the original's) a symbol holds at most one position, long or
//! short, and the key is the symbol itself ([`Leg::Net`]). In hedge mode a symbol can hold a long
//! and a short at once; each is its own position with its own key ([`Leg::Long`] /
//! [`Leg::Short`]). The key's text is what `manager.positions` is indexed by.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// The side of a position on the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// A long position.
    Long,
    /// A short position.
    Short,
}

impl Side {
    /// `'long'` / `'short'` exactly (the ccxt spelling); anything else is not a side.
    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "long" => Some(Side::Long),
            "short" => Some(Side::Short),
            _ => None,
        }
    }

    /// `"long"` or `"short"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }

    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Long => Side::Short,
            Side::Short => Side::Long,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which position of a symbol a key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Leg {
    /// The symbol's one position, whichever its side (one-way mode).
    Net,
    /// The long leg (hedge mode).
    Long,
    /// The short leg (hedge mode).
    Short,
}

impl Leg {
    /// The side a leg is bound to (`None` for [`Leg::Net`]).
    pub fn side(self) -> Option<Side> {
        match self {
            Leg::Net => None,
            Leg::Long => Some(Side::Long),
            Leg::Short => Some(Side::Short),
        }
    }

    /// The leg of `side` in hedge mode.
    pub fn of(side: Side) -> Leg {
        match side {
            Side::Long => Leg::Long,
            Side::Short => Leg::Short,
        }
    }
}

/// Separates a symbol from its leg in a hedge-mode key's text (`BTC/USDT:USDT@long`). Unified
/// ccxt symbols never contain it.
pub const LEG_SEPARATOR: char = '@';

/// A book key. Hashes and compares by its text, so maps keyed by `Key` can be searched with a
/// plain `&str` (the text Python indexes `manager.positions` with).
#[derive(Clone, Debug)]
pub struct Key {
    text: Box<str>,
    symbol_len: usize,
    leg: Leg,
}

impl Key {
    /// The one-way key of `symbol`: its text is the symbol.
    pub fn net(symbol: &str) -> Key {
        Key {
            text: symbol.into(),
            symbol_len: symbol.len(),
            leg: Leg::Net,
        }
    }

    /// The hedge-mode key of one leg of `symbol` (`symbol@long`, `symbol@short`).
    pub fn hedge(symbol: &str, side: Side) -> Key {
        Key {
            text: format!("{symbol}{LEG_SEPARATOR}{}", side.as_str()).into(),
            symbol_len: symbol.len(),
            leg: Leg::of(side),
        }
    }

    /// The key `leg` of `symbol` names.
    pub fn new(symbol: &str, leg: Leg) -> Key {
        match leg.side() {
            None => Key::net(symbol),
            Some(side) => Key::hedge(symbol, side),
        }
    }

    /// Reads a key from its text: `symbol@long` / `symbol@short` name a hedge leg, anything else
    /// is a one-way key.
    pub fn parse(text: &str) -> Key {
        if let Some((symbol, side)) = text.rsplit_once(LEG_SEPARATOR) {
            if let Some(side) = Side::parse(side) {
                if !symbol.is_empty() {
                    return Key::hedge(symbol, side);
                }
            }
        }
        Key::net(text)
    }

    /// The symbol [`Key::parse`] reads from `text`, without building the key (the update
    /// cycle asks the exchange about this symbol for every key it examines).
    pub fn market_of(text: &str) -> &str {
        match text.rsplit_once(LEG_SEPARATOR) {
            Some((symbol, side)) if !symbol.is_empty() && Side::parse(side).is_some() => symbol,
            _ => text,
        }
    }

    /// The symbol.
    pub fn symbol(&self) -> &str {
        self.text.get(..self.symbol_len).unwrap_or(&self.text)
    }

    /// The leg.
    pub fn leg(&self) -> Leg {
        self.leg
    }

    /// The key's text (what `manager.positions` is indexed by).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Key {}

impl PartialEq<str> for Key {
    fn eq(&self, other: &str) -> bool {
        &*self.text == other
    }
}

impl PartialEq<&str> for Key {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl Hash for Key {
    fn hash<S: Hasher>(&self, state: &mut S) {
        // As `str` hashes, so that `Borrow<str>` lookups find the key.
        self.text.hash(state);
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbol_map::KeyMap;

    #[test]
    fn market_of_is_the_parsed_keys_symbol() {
        for text in [
            "BTC/USDT:USDT",
            "BTC/USDT:USDT@long",
            "BTC/USDT:USDT@short",
            "BTC@other",
            "@long",
            "A@long@short",
            "",
            "x@",
        ] {
            assert_eq!(Key::market_of(text), Key::parse(text).symbol(), "{text:?}");
        }
    }

    #[test]
    fn one_way_keys_are_the_symbol() {
        let k = Key::net("BTC/USDT:USDT");
        assert_eq!(k.as_str(), "BTC/USDT:USDT");
        assert_eq!(k.symbol(), "BTC/USDT:USDT");
        assert_eq!(k.leg(), Leg::Net);
        assert_eq!(Key::parse("BTC/USDT:USDT"), k);
    }

    #[test]
    fn hedge_keys_carry_their_leg() {
        let k = Key::hedge("BTC/USDT:USDT", Side::Short);
        assert_eq!(k.as_str(), "BTC/USDT:USDT@short");
        assert_eq!(k.symbol(), "BTC/USDT:USDT");
        assert_eq!(k.leg(), Leg::Short);
        let parsed = Key::parse("BTC/USDT:USDT@short");
        assert_eq!(parsed.leg(), Leg::Short);
        assert_eq!(parsed.symbol(), "BTC/USDT:USDT");
        assert_eq!(Key::parse("X@both").leg(), Leg::Net);
        assert_eq!(Key::parse("@long").leg(), Leg::Net);
    }

    #[test]
    fn maps_are_searched_by_text() {
        let mut m: KeyMap<u8> = KeyMap::default();
        m.insert(Key::net("A"), 1);
        m.insert(Key::hedge("A", Side::Long), 2);
        assert_eq!(m.get("A"), Some(&1));
        assert_eq!(m.get("A@long"), Some(&2));
        assert_eq!(m.get("A@short"), None);
    }
}
