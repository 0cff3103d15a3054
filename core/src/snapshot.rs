//! One position-list answer, read once into typed entries.
//!
//! Every entry of `get_open_positions()` becomes exactly one of:
//! - a [`Listed`] position: a side (`'long'`/`'short'`) and a size that is a finite number > 0,
//!   with whatever else the entry reported that can be used (entry price, contract size,
//!   leverage, liquidation and mark price);
//! - presence only: the symbol is listed, but its size or side cannot be used (a garbage, NaN,
//!   infinite or negative size, an unknown side, or the original's minimal `{'symbol': s}`
//!   entries). Presence keeps a tracked position; it never resizes, flips or imports anything;
//! - a phantom: zero or null size, or a null/empty side (venues list flat symbols that way). It
//!   is not presence;
//! - a problem without a symbol: the list then cannot prove that anything is absent.
//!
//! Nothing here locks or calls out. [`crate::reconcile::plan`] decides what a snapshot does.

use std::collections::hash_map::Entry;

use crate::exchange::{Field, RawEntry, RawPosition};
use crate::key::{Key, Leg, Side};
use crate::symbol_map::SymbolMap;

/// A usable position entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The side; `side_assumed` when the entry had no `side` key (the original read it as long).
    pub side: Side,
    /// True when `side` was absent and taken as long: good enough to import, never evidence
    /// against a tracked position's side or size.
    pub side_assumed: bool,
    /// Size in contracts: finite and > 0.
    pub contracts: f64,
    /// `entryPrice`, when a finite number > 0.
    pub entry_price: Option<f64>,
    /// Why a present `entryPrice` could not be used (for the import's warning).
    pub entry_problem: Option<String>,
    /// `contractSize`, when a finite number > 0.
    pub contract_size: Option<f64>,
    /// `leverage` as reported (read at import, with the original's fallbacks and warnings).
    pub leverage: Field,
    /// `info['realLeverage']` as reported.
    pub real_leverage: Field,
    /// `liquidationPrice`, when a finite number > 0.
    pub liquidation_price: Option<f64>,
    /// `markPrice`, when a finite number > 0.
    pub mark_price: Option<f64>,
}

/// What one symbol's entries in a list amount to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Presence {
    /// The first usable long entry.
    pub long: Option<Listed>,
    /// The first usable short entry.
    pub short: Option<Listed>,
    /// Some entry for the symbol was listed but unusable, naming no usable side (or a minimal
    /// entry): presence of the symbol, whatever leg.
    pub unreadable_any: bool,
    /// An unusable entry (e.g. a garbage size) that names the long side.
    pub unreadable_long: bool,
    /// An unusable entry that names the short side.
    pub unreadable_short: bool,
    /// A second usable entry on a side that already had one (a glitch).
    pub duplicate: bool,
    /// An entry repeated exactly (the same side, size and prices twice): read once. A hedge
    /// venue never lists one leg twice, so a repeat may be the other leg's entry garbled into
    /// a copy: the list then proves nothing about a leg it does not show.
    pub repeated: bool,
    /// Position of the symbol's first entry in the list.
    pub first_index: usize,
}

/// What a list says about one book key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Seen<'a> {
    /// Not listed.
    Absent,
    /// Listed, but nothing about it can be used beyond "it is there".
    Present,
    /// Listed with a usable entry.
    Listed(&'a Listed),
    /// One-way key of a symbol listed with both legs (an account in hedge mode).
    BothLegs,
}

impl Presence {
    /// What this symbol's entries say about `key` (of this symbol).
    pub fn seen(&self, leg: Leg) -> Seen<'_> {
        match leg {
            Leg::Net => {
                if self.unreadable_any
                    || self.unreadable_long
                    || self.unreadable_short
                    || self.duplicate
                {
                    return Seen::Present;
                }
                match (&self.long, &self.short) {
                    (Some(_), Some(_)) => Seen::BothLegs,
                    (Some(l), None) | (None, Some(l)) => Seen::Listed(l),
                    (None, None) => Seen::Absent,
                }
            }
            Leg::Long | Leg::Short => {
                let (usable, unreadable) = if leg == Leg::Long {
                    (&self.long, self.unreadable_long)
                } else {
                    (&self.short, self.unreadable_short)
                };
                if unreadable || self.unreadable_any || self.duplicate {
                    return Seen::Present;
                }
                match usable {
                    Some(l) if !l.side_assumed => Seen::Listed(l),
                    Some(_) => Seen::Present,
                    // An entry without a side is kept as a long (the original's reading), but it
                    // may be this short leg: no evidence of its absence either (a tracked short
                    // was removed as closed outside, and a close of it sent nothing; found by an
                    // audit on 2026-12-06).
                    None if leg == Leg::Short
                        && self.long.as_ref().is_some_and(|l| l.side_assumed) =>
                    {
                        Seen::Present
                    }
                    // The other leg listed twice and this one not at all: this leg's entry
                    // may be the copy (found by an audit of malformed venue lists on
                    // 2026-12-07: the long was removed as closed outside).
                    None if self.repeated => Seen::Present,
                    None => Seen::Absent,
                }
            }
        }
    }

    /// Whether any entry lists the symbol (phantoms excluded).
    pub fn is_present(&self) -> bool {
        self.long.is_some()
            || self.short.is_some()
            || self.unreadable_any
            || self.unreadable_long
            || self.unreadable_short
    }
}

/// One successful `get_open_positions()` answer, read.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Per listed symbol (phantom-only symbols are not here).
    pub symbols: SymbolMap<Presence>,
    /// Symbols whose only entries were phantoms, with what made them one.
    pub phantoms: Vec<(String, String)>,
    /// False when some entry could not be attributed to a symbol: absence proves nothing then.
    pub well_formed: bool,
    /// The book's sequence mark taken just before the request: book changes with a higher mark
    /// happened after the request and are out of this snapshot's reach.
    pub requested_at: u64,
    /// Number of entries in the answer.
    pub entries: usize,
    /// Warnings about entries that could not be used (for the log).
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// Reads one answer; `requested_at` is the book's mark before the call.
    pub fn read(entries: Vec<RawEntry>, requested_at: u64) -> Snapshot {
        let total = entries.len();
        Snapshot::read_indexed(entries.into_iter().enumerate(), total, requested_at)
    }

    /// Reads some entries of an answer of `total` entries, each with its place in the answer (a
    /// list read for one symbol: [`crate::exchange::SymbolEntries`]). What it says about a
    /// symbol whose entries are all here is what the whole answer says.
    pub fn read_indexed(
        entries: impl IntoIterator<Item = (usize, RawEntry)>,
        total: usize,
        requested_at: u64,
    ) -> Snapshot {
        let mut snap = Snapshot {
            well_formed: true,
            requested_at,
            entries: total,
            ..Snapshot::default()
        };
        // Where each symbol still listed only by phantoms sits in `phantoms`: a lookup per entry
        // instead of a scan (a list of many flat symbols was read in quadratic time: 78 s for
        // 200 000 phantom entries, found by an audit on 2026-12-06). Entries a real listing
        // superseded are dropped at the end, keeping the list's order.
        let mut phantom_at = SymbolMap::default();
        let mut superseded = Vec::new();
        for (index, entry) in entries {
            match entry {
                RawEntry::NotAMapping(type_name) => {
                    snap.well_formed = false;
                    snap.warnings.push(format!(
                        "Skipping malformed position entry #{index}: expected a dict, got {type_name}"
                    ));
                }
                RawEntry::Position(raw) => {
                    snap.add(index, *raw, &mut phantom_at, &mut superseded);
                }
            }
        }
        if !superseded.is_empty() {
            superseded.sort_unstable();
            let mut at = 0;
            snap.phantoms.retain(|_| {
                let keep = superseded.binary_search(&at).is_err();
                at += 1;
                keep
            });
        }
        snap
    }

    fn add(
        &mut self,
        index: usize,
        raw: RawPosition,
        phantom_at: &mut SymbolMap<usize>,
        superseded: &mut Vec<usize>,
    ) {
        let Some(symbol) = raw.symbol().map(str::to_owned) else {
            self.well_formed = false;
            self.warnings.push(format!(
                "Skipping malformed position entry #{index}: symbol is {}",
                describe(&raw.symbol)
            ));
            return;
        };
        let reading = read_entry(raw);
        if let Reading::Phantom(why) = reading {
            if !self.symbols.contains_key(&symbol) && !phantom_at.contains_key(&symbol) {
                phantom_at.insert(symbol.clone(), self.phantoms.len());
                self.phantoms.push((symbol, why));
            }
            return;
        }
        if let Some(i) = phantom_at.remove(&symbol) {
            superseded.push(i);
        }
        let warning = match &reading {
            Reading::Unreadable { why: Some(why), .. } => {
                Some(format!("Position entry for {symbol} is unusable ({why}); treating it as listed, changing nothing"))
            }
            _ => None,
        };
        // The symbol moves into the map; an exact repeat (rare) keeps a copy of it for its
        // warning (a search of the map for it made a list of repeated entries quadratic).
        let mut repeat_of: Option<String> = None;
        let presence = match self.symbols.entry(symbol) {
            Entry::Occupied(o) => {
                if let Reading::Listed(l) = &reading {
                    let first = match l.side {
                        Side::Long => &o.get().long,
                        Side::Short => &o.get().short,
                    };
                    if first.as_ref() == Some(l) {
                        repeat_of = Some(o.key().clone());
                    }
                }
                o.into_mut()
            }
            Entry::Vacant(v) => v.insert(Presence {
                first_index: index,
                ..Presence::default()
            }),
        };
        let mut repeated = None;
        match reading {
            Reading::Listed(l) => {
                let slot = match l.side {
                    Side::Long => &mut presence.long,
                    Side::Short => &mut presence.short,
                };
                match slot {
                    // The same entry twice (a glitch that changes nothing in one-way mode;
                    // see `repeated` for hedge legs).
                    Some(first) if *first == l => {
                        presence.repeated = true;
                        repeated = Some(l.side);
                    }
                    Some(_) => presence.duplicate = true,
                    None => *slot = Some(l),
                }
            }
            Reading::Unreadable { side, .. } => match side {
                Some(Side::Long) => presence.unreadable_long = true,
                Some(Side::Short) => presence.unreadable_short = true,
                None => presence.unreadable_any = true,
            },
            Reading::Phantom(_) => {}
        }
        if let Some(w) = warning {
            self.warnings.push(w);
        }
        if let (Some(side), Some(symbol)) = (repeated, repeat_of) {
            self.warnings.push(format!(
                "Position entry #{index} repeats the {} entry for {symbol} exactly; reading it once",
                side.as_str()
            ));
        }
    }

    /// What this list says about `key`.
    pub fn seen(&self, key: &Key) -> Seen<'_> {
        match self.symbols.get(key.symbol()) {
            Some(p) => p.seen(key.leg()),
            None => Seen::Absent,
        }
    }

    /// Whether the list shows `symbol` at all (phantoms excluded).
    pub fn lists(&self, symbol: &str) -> bool {
        self.symbols.get(symbol).is_some_and(Presence::is_present)
    }

    /// Listed symbols in the order of their first entry.
    pub fn symbols_in_order(&self) -> Vec<(&str, &Presence)> {
        let mut out: Vec<(&str, &Presence)> =
            self.symbols.iter().map(|(s, p)| (s.as_str(), p)).collect();
        out.sort_by_key(|(_, p)| p.first_index);
        out
    }
}

/// One entry, read.
#[derive(Clone, Debug, PartialEq)]
enum Reading {
    Listed(Listed),
    /// Presence only; `why` is `None` for the original's minimal entries (no warning).
    Unreadable {
        side: Option<Side>,
        why: Option<String>,
    },
    /// Not a position (what made it a placeholder).
    Phantom(String),
}

/// A finite number > 0 from a field (numbers and numeric strings, as Python's `float()`; never a
/// bool).
pub fn positive(field: &Field) -> Option<f64> {
    match field {
        Field::Bool(_) => None,
        f => f.to_float().ok().filter(|x| x.is_finite() && *x > 0.0),
    }
}

fn read_entry(raw: RawPosition) -> Reading {
    // The client's own word comes first: it read the venue's entry and could not use it, so
    // whatever else the entry says (a made-up size, a defaulted side, a null ccxt gave) is not
    // evidence, and not a placeholder either.
    if let Some(why) = said_unreadable(&raw.unreadable) {
        return Reading::Unreadable {
            side: raw.side.as_text().and_then(Side::parse),
            why: Some(why),
        };
    }
    // Phantoms: the venue lists a flat symbol.
    let zero_size = matches!(raw.contracts, Field::Null)
        || matches!(raw.contracts, Field::Int(0))
        || matches!(raw.contracts, Field::Number(x) if x == 0.0)
        || matches!(&raw.contracts, Field::Text(_) if raw.contracts.to_float().is_ok_and(|c| c == 0.0));
    if zero_size {
        return Reading::Phantom(format!("contracts is {}", shown(&raw.contracts)));
    }
    if matches!(raw.side, Field::Null) || raw.side.as_text() == Some("") {
        return Reading::Phantom(format!("side is {}", shown(&raw.side)));
    }
    let side = match &raw.side {
        Field::Absent => None,
        Field::Text(s) => match Side::parse(s) {
            Some(side) => Some(side),
            None => {
                return Reading::Unreadable {
                    side: None,
                    why: Some(format!(
                        "side is {}",
                        crate::manager::messages::py_str_repr(s)
                    )),
                }
            }
        },
        other => {
            return Reading::Unreadable {
                side: None,
                why: Some(format!("side is {}", other.display())),
            }
        }
    };
    if matches!(raw.contracts, Field::Absent) {
        // The original's minimal entries: the symbol is listed, nothing more is known.
        return Reading::Unreadable { side, why: None };
    }
    let Some(contracts) = positive(&raw.contracts) else {
        return Reading::Unreadable {
            side,
            why: Some(format!("contracts is {}", shown(&raw.contracts))),
        };
    };
    let (entry_price, entry_problem) = match &raw.entry_price {
        Field::Absent | Field::Null => (None, None),
        f => match positive(f) {
            Some(p) => (Some(p), None),
            None => (None, Some(format!("entryPrice is {}", shown(f)))),
        },
    };
    Reading::Listed(Listed {
        side: side.unwrap_or(Side::Long),
        side_assumed: side.is_none(),
        contracts,
        entry_price,
        entry_problem,
        contract_size: positive(&raw.contract_size),
        leverage: raw.leverage,
        real_leverage: raw.real_leverage,
        liquidation_price: positive(&raw.liquidation_price),
        mark_price: positive(&raw.mark_price),
    })
}

/// What an entry's `unreadable` says could not be read, when it says anything: any value but
/// absent, `None`, `False`, `0` and `''` (a text as it is, anything else as Python prints it).
fn said_unreadable(field: &Field) -> Option<String> {
    match field {
        Field::Absent | Field::Null | Field::Bool(false) | Field::Int(0) => None,
        Field::Number(x) if *x == 0.0 => None,
        Field::Text(s) if s.is_empty() => None,
        Field::Text(s) => Some(s.clone()),
        other => Some(format!("unreadable is {}", other.display())),
    }
}

/// A field as the warning shows it: strings quoted, numbers as Python prints them.
fn shown(field: &Field) -> String {
    match field {
        Field::Text(s) => crate::manager::messages::py_str_repr(s),
        other => other.display(),
    }
}

fn describe(field: &Field) -> String {
    match field {
        Field::Absent => "missing".to_owned(),
        Field::Text(s) if s.is_empty() => "empty".to_owned(),
        Field::Text(s) => format!("'{s}'"),
        Field::Other { type_name, .. } => format!("a {type_name}"),
        other => other.display(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(symbol: &str, side: Field, contracts: Field) -> RawEntry {
        let mut r = RawPosition::with_symbol(symbol);
        r.side = side;
        r.contracts = contracts;
        RawEntry::Position(Box::new(r))
    }

    fn text(s: &str) -> Field {
        Field::Text(s.into())
    }

    #[test]
    fn usable_entries_are_listed() {
        let snap = Snapshot::read(vec![raw("A", text("long"), Field::Number(2.0))], 7);
        assert!(snap.well_formed);
        assert_eq!(snap.requested_at, 7);
        match snap.seen(&Key::net("A")) {
            Seen::Listed(l) => {
                assert_eq!(l.side, Side::Long);
                assert_eq!(l.contracts, 2.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(snap.seen(&Key::net("B")), Seen::Absent);
    }

    #[test]
    fn an_entry_its_client_calls_unreadable_is_presence_only_whatever_else_it_says() {
        let marked = |side: Field, contracts: Field, unreadable: Field| {
            let mut r = RawPosition::with_symbol("A");
            r.side = side;
            r.contracts = contracts;
            r.entry_price = Field::Number(100.0);
            r.unreadable = unreadable;
            RawEntry::Position(Box::new(r))
        };
        // A usable-looking size and side (ccxt's estimate, a defaulted side): presence of
        // that leg only, named in the warning as the client said it.
        let snap = Snapshot::read(
            vec![marked(
                text("long"),
                Field::Number(5.0),
                text("okx 'pos' is None"),
            )],
            0,
        );
        assert_eq!(snap.seen(&Key::net("A")), Seen::Present);
        assert_eq!(snap.seen(&Key::hedge("A", Side::Long)), Seen::Present);
        assert_eq!(snap.seen(&Key::hedge("A", Side::Short)), Seen::Absent);
        assert_eq!(
            snap.warnings,
            ["Position entry for A is unusable (okx 'pos' is None); treating it as listed, changing nothing"]
        );
        // What would be a placeholder (no size, no side) is presence of every leg.
        let snap = Snapshot::read(vec![marked(Field::Null, Field::Null, text("why"))], 0);
        assert!(snap.phantoms.is_empty());
        assert_eq!(snap.seen(&Key::hedge("A", Side::Long)), Seen::Present);
        assert_eq!(snap.seen(&Key::hedge("A", Side::Short)), Seen::Present);
        // Another value than a text is shown as Python prints it.
        let snap = Snapshot::read(
            vec![marked(text("short"), Field::Int(2), Field::Bool(true))],
            0,
        );
        assert_eq!(snap.seen(&Key::net("A")), Seen::Present);
        assert!(
            snap.warnings[0].contains("(unreadable is True)"),
            "{:?}",
            snap.warnings
        );
        // Nothing said: the entry is read as ever.
        for silent in [
            Field::Absent,
            Field::Null,
            Field::Bool(false),
            Field::Int(0),
            Field::Number(0.0),
            text(""),
        ] {
            let snap = Snapshot::read(vec![marked(text("long"), Field::Number(5.0), silent)], 0);
            assert!(matches!(snap.seen(&Key::net("A")), Seen::Listed(l) if l.contracts == 5.0));
            assert!(snap.warnings.is_empty());
        }
    }

    #[test]
    fn an_entry_repeated_exactly_is_read_once_and_proves_no_other_leg_absent() {
        let short = || raw("A", text("short"), Field::Number(3.0));
        let snap = Snapshot::read(vec![short(), short()], 0);
        assert!(matches!(snap.seen(&Key::net("A")), Seen::Listed(l) if l.contracts == 3.0));
        assert!(matches!(
            snap.seen(&Key::hedge("A", Side::Short)),
            Seen::Listed(_)
        ));
        assert_eq!(snap.seen(&Key::hedge("A", Side::Long)), Seen::Present);
        assert_eq!(
            snap.warnings,
            ["Position entry #1 repeats the short entry for A exactly; reading it once"]
        );
        // Shown once, the other leg is absent.
        let snap = Snapshot::read(vec![short()], 0);
        assert_eq!(snap.seen(&Key::hedge("A", Side::Long)), Seen::Absent);
    }

    #[test]
    fn unusable_sizes_are_presence_only_with_a_warning() {
        for bad in [
            Field::Number(f64::NAN),
            Field::Number(f64::INFINITY),
            Field::Number(-1.0),
            text("1e400"),
            text("abc"),
            Field::Bool(true),
        ] {
            let snap = Snapshot::read(vec![raw("A", text("short"), bad.clone())], 1);
            assert_eq!(snap.seen(&Key::net("A")), Seen::Present, "{bad:?}");
            assert_eq!(snap.warnings.len(), 1, "{bad:?}");
            assert!(snap.well_formed);
        }
    }

    #[test]
    fn numeric_strings_are_sizes_as_python_reads_them() {
        let snap = Snapshot::read(vec![raw("A", text("long"), text(" 1.5 "))], 1);
        assert!(matches!(snap.seen(&Key::net("A")), Seen::Listed(l) if l.contracts == 1.5));
    }

    #[test]
    fn phantoms_are_not_presence() {
        let snap = Snapshot::read(
            vec![
                raw("A", text("long"), Field::Number(0.0)),
                raw("B", Field::Null, Field::Number(1.0)),
                raw("C", text(""), Field::Number(1.0)),
                raw("D", text("long"), Field::Null),
            ],
            1,
        );
        assert!(snap.well_formed);
        let names: Vec<&str> = snap.phantoms.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
        for s in ["A", "B", "C", "D"] {
            assert_eq!(snap.seen(&Key::net(s)), Seen::Absent);
        }
    }

    #[test]
    fn a_real_listing_supersedes_its_symbols_phantoms_and_the_rest_keep_their_order() {
        let flat = |s: &str| raw(s, text("long"), Field::Number(0.0));
        let snap = Snapshot::read(
            vec![
                flat("A"),
                flat("B"),
                flat("C"),
                raw("B", text("short"), Field::Number(2.0)),
                flat("D"),
                flat("B"), // after its real listing: not a phantom
                flat("A"), // listed twice as a phantom: once
                raw("D", text("long"), Field::Number(1.0)),
                flat("E"),
            ],
            1,
        );
        let names: Vec<&str> = snap.phantoms.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["A", "C", "E"]);
        assert!(snap.lists("B") && snap.lists("D") && !snap.lists("A"));
    }

    #[test]
    fn minimal_entries_are_presence_without_a_warning() {
        let snap = Snapshot::read(
            vec![RawEntry::Position(Box::new(RawPosition::with_symbol("A")))],
            1,
        );
        assert_eq!(snap.seen(&Key::net("A")), Seen::Present);
        assert!(snap.warnings.is_empty());
    }

    #[test]
    fn unknown_sides_are_presence_only() {
        let snap = Snapshot::read(vec![raw("A", text("LONG"), Field::Number(1.0))], 1);
        assert_eq!(snap.seen(&Key::net("A")), Seen::Present);
        assert_eq!(snap.seen(&Key::hedge("A", Side::Short)), Seen::Present);
    }

    #[test]
    fn entries_without_a_symbol_make_the_list_unable_to_prove_absence() {
        let mut no_symbol = RawPosition::with_symbol("");
        no_symbol.symbol = Field::Null;
        let snap = Snapshot::read(
            vec![
                RawEntry::NotAMapping("str".into()),
                RawEntry::Position(Box::new(no_symbol)),
            ],
            1,
        );
        assert!(!snap.well_formed);
        assert_eq!(snap.warnings.len(), 2);
    }

    #[test]
    fn two_legs_of_one_symbol() {
        let snap = Snapshot::read(
            vec![
                raw("A", text("long"), Field::Number(1.0)),
                raw("A", text("short"), Field::Number(2.0)),
            ],
            1,
        );
        assert_eq!(snap.seen(&Key::net("A")), Seen::BothLegs);
        assert!(matches!(
            snap.seen(&Key::hedge("A", Side::Short)),
            Seen::Listed(l) if l.contracts == 2.0
        ));
        let garbage_short = Snapshot::read(
            vec![
                raw("A", text("long"), Field::Number(1.0)),
                raw("A", text("short"), text("junk")),
            ],
            1,
        );
        assert!(matches!(
            garbage_short.seen(&Key::hedge("A", Side::Long)),
            Seen::Listed(_)
        ));
        assert_eq!(
            garbage_short.seen(&Key::hedge("A", Side::Short)),
            Seen::Present
        );
        assert_eq!(garbage_short.seen(&Key::net("A")), Seen::Present);
    }

    #[test]
    fn a_missing_side_is_taken_as_long_but_is_no_evidence_for_a_leg() {
        let snap = Snapshot::read(vec![raw("A", Field::Absent, Field::Number(1.0))], 1);
        match snap.seen(&Key::net("A")) {
            Seen::Listed(l) => assert!(l.side_assumed && l.side == Side::Long),
            other => panic!("{other:?}"),
        }
        assert_eq!(snap.seen(&Key::hedge("A", Side::Long)), Seen::Present);
        assert_eq!(snap.seen(&Key::hedge("A", Side::Short)), Seen::Present);
        // Beside an entry that names its side, the other leg is absent as ever.
        let named = Snapshot::read(vec![raw("A", text("long"), Field::Number(1.0))], 1);
        assert_eq!(named.seen(&Key::hedge("A", Side::Short)), Seen::Absent);
    }

    #[test]
    fn unusable_entry_prices_are_noted() {
        let mut r = RawPosition::with_symbol("A");
        r.side = text("long");
        r.contracts = Field::Number(1.0);
        r.entry_price = text("abc");
        let snap = Snapshot::read(vec![RawEntry::Position(Box::new(r))], 1);
        match snap.seen(&Key::net("A")) {
            Seen::Listed(l) => {
                assert_eq!(l.entry_price, None);
                assert!(l.entry_problem.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}
