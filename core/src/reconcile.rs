//! Pure reconciliation: (book, exchange snapshot, policy) → the list of changes to make.
//!
//! Nothing here locks or calls out; [`crate::book::Book::reconcile`] runs [`plan`] under the book
//! lock and applies its actions, so that planning and applying see the same book.
//!
//! The safety rules (DESIGN.md) live here:
//! - only a successful, well-formed list can remove a position (rule 3);
//! - a position inserted after the snapshot was requested is never removed by it (rule 4);
//! - a position must be missing from `missing_confirmations` consecutive snapshots, over at least
//!   `missing_grace_seconds`, to be removed;
//! - zero-size or side-less "phantom" entries are not presence (and prove nothing malformed);
//! - a tombstoned position reported again with the same side, size and entry price is restored
//!   (rule 5).

use crate::clock::Timestamp;
use crate::exchange::{Field, RawEntry, RawPosition};
use crate::symbol_map::SymbolMap;

/// What identifies "the very same position" on the exchange: side, size and entry price.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// `'long'` / `'short'`.
    pub side: String,
    /// Size in contracts.
    pub contracts: f64,
    /// Entry price.
    pub entry_price: f64,
}

impl Fingerprint {
    /// Whether two fingerprints describe the same position (exact size and price).
    pub fn same_position(&self, other: &Fingerprint) -> bool {
        self.side == other.side
            && self.contracts == other.contracts
            && self.entry_price == other.entry_price
    }
}

/// What the exchange reported for a symbol beyond its fingerprint: the evidence that later
/// explains a disappearance (a crossed liquidation price) and the contract size.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reported {
    /// `liquidationPrice`, when a finite number > 0.
    pub liquidation_price: Option<f64>,
    /// `markPrice`, when a finite number > 0.
    pub mark_price: Option<f64>,
    /// `contractSize`, when a finite number > 0.
    pub contract_size: Option<f64>,
}

impl Reported {
    fn of(raw: &RawPosition) -> Reported {
        let positive = |f: &Field| f.to_float().ok().filter(|x| x.is_finite() && *x > 0.0);
        Reported {
            liquidation_price: positive(&raw.liquidation_price),
            mark_price: positive(&raw.mark_price),
            contract_size: positive(&raw.contract_size),
        }
    }

    fn is_empty(&self) -> bool {
        self.liquidation_price.is_none()
            && self.mark_price.is_none()
            && self.contract_size.is_none()
    }
}

/// Whether an entry is a "phantom": the venue lists the symbol with no position behind it
/// (`contracts` null or zero, or `side` null or empty). Absent keys are not phantoms: the
/// original's minimal entries (`{'symbol': ...}`) still mean "open".
pub fn is_phantom(raw: &RawPosition) -> bool {
    matches!(raw.contracts, Field::Null)
        || raw.contracts.to_float().is_ok_and(|c| c == 0.0)
        || matches!(raw.side, Field::Null)
        || raw.side.as_text() == Some("")
}

/// One successful `get_open_positions()` answer, digested.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Symbols the exchange listed, with their fingerprint when it could be read unambiguously.
    pub present: SymbolMap<Option<Fingerprint>>,
    /// Liquidation/mark price and contract size per listed symbol (only symbols that reported some).
    pub reported: SymbolMap<Reported>,
    /// Phantom entries skipped (zero size or no side).
    pub phantoms: Vec<String>,
    /// False when some entry could not be attributed to a symbol: absence then proves nothing.
    pub well_formed: bool,
    /// The book's sequence mark taken just before the request: entries with a higher sequence
    /// number were inserted after the request and are out of this snapshot's reach.
    pub requested_at_seq: u64,
    /// Warnings about entries that were skipped (for the log).
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// Digests the entries of one answer; `requested_at_seq` is the book's mark before the call.
    pub fn from_entries(entries: &[RawEntry], requested_at_seq: u64) -> Snapshot {
        let mut snap = Snapshot {
            well_formed: true,
            requested_at_seq,
            ..Snapshot::default()
        };
        for (index, entry) in entries.iter().enumerate() {
            match entry {
                RawEntry::NotAMapping(type_name) => {
                    snap.well_formed = false;
                    snap.warnings.push(format!(
                        "Skipping malformed position entry #{index}: expected a dict, got {type_name}"
                    ));
                }
                RawEntry::Position(raw) => match raw.symbol() {
                    None => {
                        snap.well_formed = false;
                        snap.warnings.push(format!(
                            "Skipping malformed position entry #{index}: symbol is {}",
                            describe(&raw.symbol)
                        ));
                    }
                    Some(symbol) if is_phantom(raw) => snap.phantoms.push(symbol.to_owned()),
                    Some(symbol) => {
                        let fp = fingerprint_of(&raw.side, &raw.contracts, &raw.entry_price);
                        match snap.present.get_mut(symbol) {
                            // Two entries for one symbol (hedge mode or a glitch): present, but no
                            // single fingerprint to restore from.
                            Some(existing) => *existing = None,
                            None => {
                                snap.present.insert(symbol.to_owned(), fp);
                                let reported = Reported::of(raw);
                                if !reported.is_empty() {
                                    snap.reported.insert(symbol.to_owned(), reported);
                                }
                            }
                        }
                    }
                },
            }
        }
        snap
    }

    /// Whether the exchange listed `symbol`.
    pub fn contains(&self, symbol: &str) -> bool {
        self.present.contains_key(symbol)
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

/// A fingerprint from an entry's side, contracts and entry price, when all three are readable.
pub fn fingerprint_of(side: &Field, contracts: &Field, entry_price: &Field) -> Option<Fingerprint> {
    let side = side.as_text()?.to_owned();
    let contracts = contracts.to_float().ok()?.abs();
    let entry_price = entry_price.to_float().ok()?;
    Some(Fingerprint {
        side,
        contracts,
        entry_price,
    })
}

/// How cautious removal is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Consecutive successful snapshots without a position before it is removed (>= 1).
    pub missing_confirmations: u32,
    /// And at least this many seconds between the first of those snapshots and the removing one.
    pub missing_grace_seconds: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            missing_confirmations: 1,
            missing_grace_seconds: 0.0,
        }
    }
}

/// The book as the planner sees one entry.
#[derive(Clone, Copy, Debug)]
pub struct EntryView<'a> {
    /// Key in the book.
    pub symbol: &'a str,
    /// Insertion sequence number.
    pub seq: u64,
    /// Consecutive snapshots that did not list it so far.
    pub missing: u32,
    /// When the first of those snapshots was applied.
    pub missing_since: Option<Timestamp>,
}

/// One change to make to the book.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The exchange lists it: reset its miss counter, remember the fingerprint.
    Confirm {
        /// Book key.
        symbol: String,
        /// What the exchange reported, if readable.
        fingerprint: Option<Fingerprint>,
    },
    /// Missing, but not yet confirmed often (or long) enough: record the miss.
    CountMiss {
        /// Book key.
        symbol: String,
        /// The new miss count.
        missing: u32,
        /// When the run of misses started.
        since: Timestamp,
    },
    /// Missing often enough: remove it (it becomes a tombstone).
    Remove {
        /// Book key.
        symbol: String,
        /// How many snapshots in a row did not list it.
        missing: u32,
    },
    /// A tombstoned position is reported again, unchanged: put it back.
    Restore {
        /// Book key.
        symbol: String,
    },
}

/// Plans what `snapshot` does to the book. Deterministic: book entries in the given order, then
/// restorations in the given tombstone order.
pub fn plan<'a>(
    entries: impl IntoIterator<Item = EntryView<'a>>,
    tombstones: impl IntoIterator<Item = (&'a str, &'a Fingerprint)>,
    snapshot: &Snapshot,
    policy: Policy,
    now: Timestamp,
) -> Vec<Action> {
    let needed = policy.missing_confirmations.max(1);
    let mut actions = Vec::new();
    for e in entries {
        if let Some(fp) = snapshot.present.get(e.symbol) {
            actions.push(Action::Confirm {
                symbol: e.symbol.to_owned(),
                fingerprint: fp.clone(),
            });
        } else if snapshot.well_formed && e.seq <= snapshot.requested_at_seq {
            let missing = e.missing.saturating_add(1);
            let since = e.missing_since.unwrap_or(now);
            let long_enough = now.seconds_since(since) >= policy.missing_grace_seconds;
            if missing >= needed && long_enough {
                actions.push(Action::Remove {
                    symbol: e.symbol.to_owned(),
                    missing,
                });
            } else {
                actions.push(Action::CountMiss {
                    symbol: e.symbol.to_owned(),
                    missing,
                    since,
                });
            }
        }
    }
    for (symbol, buried) in tombstones {
        if let Some(Some(fp)) = snapshot.present.get(symbol) {
            if fp.same_position(buried) {
                actions.push(Action::Restore {
                    symbol: symbol.to_owned(),
                });
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::RawPosition;

    fn entry(symbol: &str, side: &str, contracts: f64, price: f64) -> RawEntry {
        let mut raw = RawPosition::with_symbol(symbol);
        raw.side = Field::Text(side.into());
        raw.contracts = Field::Number(contracts);
        raw.entry_price = Field::Number(price);
        RawEntry::Position(Box::new(raw))
    }

    const NOW: Timestamp = Timestamp(1_000_000_000);

    fn view(symbol: &str, seq: u64, missing: u32) -> EntryView<'_> {
        EntryView {
            symbol,
            seq,
            missing,
            missing_since: (missing > 0).then_some(NOW),
        }
    }

    #[test]
    fn absent_positions_are_removed_at_once_by_default() {
        let snap = Snapshot::from_entries(&[entry("BTC", "long", 1.0, 10.0)], 10);
        let actions = plan(
            [view("BTC", 1, 0), view("ETH", 2, 0)],
            [],
            &snap,
            Policy::default(),
            NOW,
        );
        assert_eq!(actions.len(), 2);
        assert!(matches!(&actions[0], Action::Confirm { symbol, .. } if symbol == "BTC"));
        assert_eq!(
            actions[1],
            Action::Remove {
                symbol: "ETH".into(),
                missing: 1
            }
        );
    }

    #[test]
    fn positions_inserted_after_the_request_are_out_of_reach() {
        let snap = Snapshot::from_entries(&[], 5);
        let actions = plan(
            [view("NEW", 6, 0), view("OLD", 5, 0)],
            [],
            &snap,
            Policy::default(),
            NOW,
        );
        assert_eq!(
            actions,
            vec![Action::Remove {
                symbol: "OLD".into(),
                missing: 1
            }]
        );
    }

    #[test]
    fn a_malformed_entry_makes_absence_meaningless() {
        let snap = Snapshot::from_entries(&[RawEntry::NotAMapping("str".into())], 5);
        assert!(!snap.well_formed);
        assert_eq!(snap.warnings.len(), 1);
        assert!(plan([view("ETH", 1, 0)], [], &snap, Policy::default(), NOW).is_empty());
        let mut no_symbol = RawPosition::with_symbol("");
        no_symbol.symbol = Field::Null;
        let snap = Snapshot::from_entries(&[RawEntry::Position(Box::new(no_symbol))], 5);
        assert!(!snap.well_formed);
    }

    #[test]
    fn several_confirmations_can_be_required() {
        let snap = Snapshot::from_entries(&[], 5);
        let policy = Policy {
            missing_confirmations: 3,
            ..Policy::default()
        };
        assert_eq!(
            plan([view("ETH", 1, 0)], [], &snap, policy, NOW),
            vec![Action::CountMiss {
                symbol: "ETH".into(),
                missing: 1,
                since: NOW,
            }]
        );
        assert_eq!(
            plan([view("ETH", 1, 2)], [], &snap, policy, NOW),
            vec![Action::Remove {
                symbol: "ETH".into(),
                missing: 3
            }]
        );
    }

    #[test]
    fn only_the_very_same_position_is_restored() {
        let buried = Fingerprint {
            side: "long".into(),
            contracts: 1.0,
            entry_price: 10.0,
        };
        let same = Snapshot::from_entries(&[entry("BTC", "long", 1.0, 10.0)], 5);
        assert_eq!(
            plan([], [("BTC", &buried)], &same, Policy::default(), NOW),
            vec![Action::Restore {
                symbol: "BTC".into()
            }]
        );
        let resized = Snapshot::from_entries(&[entry("BTC", "long", 2.0, 10.0)], 5);
        assert!(plan([], [("BTC", &buried)], &resized, Policy::default(), NOW).is_empty());
        let flipped = Snapshot::from_entries(&[entry("BTC", "short", 1.0, 10.0)], 5);
        assert!(plan([], [("BTC", &buried)], &flipped, Policy::default(), NOW).is_empty());
    }

    #[test]
    fn a_grace_period_must_also_pass() {
        let snap = Snapshot::from_entries(&[], 5);
        let policy = Policy {
            missing_confirmations: 2,
            missing_grace_seconds: 60.0,
        };
        let later = |s: i64| Timestamp(NOW.0 + s * 1_000_000);
        let mut eth = view("ETH", 1, 1);
        // Two misses, but only 30 s apart: counted, kept.
        assert!(matches!(
            plan([eth], [], &snap, policy, later(30)).as_slice(),
            [Action::CountMiss { missing: 2, since, .. }] if *since == NOW
        ));
        eth.missing = 2;
        assert!(matches!(
            plan([eth], [], &snap, policy, later(60)).as_slice(),
            [Action::Remove { missing: 3, .. }]
        ));
    }

    #[test]
    fn phantom_entries_are_not_presence() {
        let mut zero = RawPosition::with_symbol("TON");
        zero.contracts = Field::Number(0.0);
        let mut no_side = RawPosition::with_symbol("XRP");
        no_side.contracts = Field::Number(3.0);
        no_side.side = Field::Null;
        let mut null_size = RawPosition::with_symbol("ADA");
        null_size.contracts = Field::Null;
        let minimal = RawPosition::with_symbol("BTC");
        let snap = Snapshot::from_entries(
            &[zero, no_side, null_size, minimal]
                .into_iter()
                .map(|r| RawEntry::Position(Box::new(r)))
                .collect::<Vec<_>>(),
            5,
        );
        assert!(snap.well_formed);
        assert_eq!(snap.phantoms, ["TON", "XRP", "ADA"]);
        assert!(snap.contains("BTC") && !snap.contains("TON"));
        let removed: Vec<_> = plan(
            [view("TON", 1, 0), view("BTC", 2, 0)],
            [],
            &snap,
            Policy::default(),
            NOW,
        );
        assert!(matches!(&removed[0], Action::Remove { symbol, .. } if symbol == "TON"));
        assert!(matches!(&removed[1], Action::Confirm { symbol, .. } if symbol == "BTC"));
    }

    #[test]
    fn duplicate_symbols_count_as_present_without_fingerprint() {
        let snap = Snapshot::from_entries(
            &[
                entry("BTC", "long", 1.0, 10.0),
                entry("BTC", "short", 1.0, 10.0),
            ],
            5,
        );
        assert_eq!(snap.present.get("BTC"), Some(&None));
    }
}
