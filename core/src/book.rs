//! The thread-safe book of tracked positions.
//!
//! A map from symbol to entry, in insertion order (as a Python dict iterates), where each entry
//! carries the shared position state, an opaque handle `H` (the Python layer stores the
//! `Position` object there, so identity survives), a sequence number (rule 4: snapshots only reach
//! entries older than themselves) and its reconciliation counters. Removed-as-closed positions
//! become tombstones so the very same position can be restored.
//!
//! The lock is held only for plain data work: no method calls out, logs or runs user code. Values
//! leaving the book (removed entries, replaced handles) are returned to the caller, who drops them
//! after the lock is released.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::Timestamp;
use crate::position::PositionState;
use crate::reconcile::{self, Action, EntryView, Fingerprint, Policy, Reported, Snapshot};
use crate::symbol_map::SymbolMap;

/// A position's state, shared between the book, the Python object and the manager.
pub type SharedPosition = Arc<Mutex<PositionState>>;

/// Wraps a state for sharing.
pub fn share(state: PositionState) -> SharedPosition {
    Arc::new(Mutex::new(state))
}

/// One tracked position.
#[derive(Debug)]
pub struct Entry<H> {
    /// The shared state.
    pub position: SharedPosition,
    /// The caller's handle (the Python object in the binding).
    pub handle: H,
    /// Insertion sequence number (a replacement gets a new one).
    pub seq: u64,
    /// Consecutive successful snapshots that did not list it.
    pub missing: u32,
    /// What the exchange last reported for it.
    pub last_seen: Option<Fingerprint>,
    /// When the current run of misses started.
    pub missing_since: Option<Timestamp>,
    /// The exchange's last report for it (liquidation price, mark price, contract size).
    pub reported: Option<Reported>,
    /// Sequence mark of the manager's last change of its size (scale in/out): a snapshot
    /// requested before that must not resize it.
    pub touched: u64,
    order: u64,
}

/// A position removed as closed externally, kept so it can be restored.
#[derive(Debug)]
pub struct Tombstone<H> {
    /// The entry as it was.
    pub entry: Entry<H>,
    /// What must be reported again for a restore.
    pub fingerprint: Fingerprint,
    /// When it was removed.
    pub removed_at: Timestamp,
}

/// Everything `clear` took out: entries in order, and the tombstones.
pub type Cleared<H> = (Vec<(String, Entry<H>)>, Vec<Tombstone<H>>);

/// A position a reconciliation removed.
#[derive(Debug)]
pub struct Removed<H> {
    /// Book key.
    pub symbol: String,
    /// Its state.
    pub position: SharedPosition,
    /// Its handle.
    pub handle: H,
    /// Consecutive snapshots that did not list it.
    pub missing: u32,
    /// What the exchange last reported for it (liquidation price, ...), if anything.
    pub reported: Option<Reported>,
}

/// A tracked position a snapshot listed with a readable fingerprint (to compare sizes and sides).
#[derive(Debug)]
pub struct Confirmed {
    /// Book key.
    pub symbol: String,
    /// Its state.
    pub position: SharedPosition,
    /// What the exchange reported, when readable.
    pub fingerprint: Option<Fingerprint>,
    /// The later of the entry's insertion and its `touched` mark: a snapshot requested before
    /// it must not resize it.
    pub touched: u64,
}

/// What a reconciliation did (the manager logs these and records events, outside the lock).
#[derive(Debug)]
pub struct ReconcileOutcome<H> {
    /// Removed entries.
    pub removed: Vec<Removed<H>>,
    /// Listed entries with a readable fingerprint.
    pub confirmed: Vec<Confirmed>,
    /// Restored entries: (symbol, position, handle).
    pub restored: Vec<(String, SharedPosition, H)>,
    /// Positions still tracked though missing from this snapshot: (symbol, misses so far).
    pub pending: Vec<(String, u32)>,
}

impl<H> Default for ReconcileOutcome<H> {
    fn default() -> Self {
        ReconcileOutcome {
            removed: Vec::new(),
            confirmed: Vec::new(),
            restored: Vec::new(),
            pending: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Inner<H> {
    entries: SymbolMap<Entry<H>>,
    order: BTreeMap<u64, String>,
    tombstones: SymbolMap<Tombstone<H>>,
    /// Sequence mark of the last close the manager made per symbol.
    closed: SymbolMap<u64>,
    next_seq: u64,
    next_order: u64,
}

/// The book. `H` is the caller's handle type; it is cloned out on reads.
#[derive(Debug)]
pub struct Book<H> {
    inner: Mutex<Inner<H>>,
    tombstone_limit: usize,
}

impl<H: Clone> Book<H> {
    /// An empty book keeping at most `tombstone_limit` tombstones.
    pub fn new(tombstone_limit: usize) -> Self {
        Book {
            inner: Mutex::new(Inner {
                entries: SymbolMap::default(),
                order: BTreeMap::new(),
                tombstones: SymbolMap::default(),
                closed: SymbolMap::default(),
                next_seq: 0,
                next_order: 0,
            }),
            tombstone_limit,
        }
    }

    /// The sequence mark: every entry inserted from now on gets a greater sequence number.
    pub fn seq_mark(&self) -> u64 {
        self.inner.lock().next_seq
    }

    /// Inserts or replaces `symbol`. A replaced entry keeps its place in the iteration order (as
    /// in a dict) but gets a new sequence number. Returns the replaced entry and a tombstone the
    /// insertion superseded, for the caller to drop outside the lock.
    pub fn insert(
        &self,
        symbol: &str,
        position: SharedPosition,
        handle: H,
    ) -> (Option<Entry<H>>, Option<Tombstone<H>>) {
        let mut inner = self.inner.lock();
        inner.next_seq += 1;
        let seq = inner.next_seq;
        let buried = inner.tombstones.remove(symbol);
        let order = match inner.entries.get(symbol) {
            Some(old) => old.order,
            None => {
                inner.next_order += 1;
                let order = inner.next_order;
                inner.order.insert(order, symbol.to_owned());
                order
            }
        };
        let entry = Entry {
            position,
            handle,
            seq,
            missing: 0,
            last_seen: None,
            missing_since: None,
            reported: None,
            touched: 0,
            order,
        };
        (inner.entries.insert(symbol.to_owned(), entry), buried)
    }

    /// Inserts `symbol` only if it is not tracked; gives the arguments back otherwise.
    pub fn insert_if_absent(
        &self,
        symbol: &str,
        position: SharedPosition,
        handle: H,
    ) -> Result<Option<Tombstone<H>>, (SharedPosition, H)> {
        let mut inner = self.inner.lock();
        if inner.entries.contains_key(symbol) {
            return Err((position, handle));
        }
        inner.next_seq += 1;
        inner.next_order += 1;
        let (seq, order) = (inner.next_seq, inner.next_order);
        inner.order.insert(order, symbol.to_owned());
        let buried = inner.tombstones.remove(symbol);
        inner.entries.insert(
            symbol.to_owned(),
            Entry {
                position,
                handle,
                seq,
                missing: 0,
                last_seen: None,
                missing_since: None,
                reported: None,
                touched: 0,
                order,
            },
        );
        Ok(buried)
    }

    /// The position and handle tracked under `symbol`.
    pub fn get(&self, symbol: &str) -> Option<(SharedPosition, H)> {
        let inner = self.inner.lock();
        inner
            .entries
            .get(symbol)
            .map(|e| (e.position.clone(), e.handle.clone()))
    }

    /// The insertion sequence number of `symbol`'s entry, if tracked.
    pub fn seq_of(&self, symbol: &str) -> Option<u64> {
        self.inner.lock().entries.get(symbol).map(|e| e.seq)
    }

    /// Whether `symbol` is tracked as this very `position` (not a replacement made meanwhile).
    pub fn holds(&self, symbol: &str, position: &SharedPosition) -> bool {
        Self::holds_in(&self.inner.lock(), symbol, position)
    }

    fn holds_in(inner: &Inner<H>, symbol: &str, position: &SharedPosition) -> bool {
        inner
            .entries
            .get(symbol)
            .is_some_and(|e| Arc::ptr_eq(&e.position, position))
    }

    /// Whether `symbol` is tracked.
    pub fn contains(&self, symbol: &str) -> bool {
        self.inner.lock().entries.contains_key(symbol)
    }

    /// Number of tracked positions.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tracked symbols in insertion order.
    pub fn keys(&self) -> Vec<String> {
        self.inner.lock().order.values().cloned().collect()
    }

    /// Every tracked (symbol, position, handle) in insertion order: a consistent snapshot.
    pub fn entries(&self) -> Vec<(String, SharedPosition, H)> {
        let inner = self.inner.lock();
        inner
            .order
            .values()
            .filter_map(|s| {
                inner
                    .entries
                    .get(s)
                    .map(|e| (s.clone(), e.position.clone(), e.handle.clone()))
            })
            .collect()
    }

    /// Removes `symbol`, returning its entry.
    pub fn remove(&self, symbol: &str) -> Option<Entry<H>> {
        let mut inner = self.inner.lock();
        Self::take(&mut inner, symbol)
    }

    /// Removes `symbol` only if it still holds `position` (not a replacement made meanwhile).
    pub fn remove_if_same(&self, symbol: &str, position: &SharedPosition) -> Option<Entry<H>> {
        let mut inner = self.inner.lock();
        if Self::holds_in(&inner, symbol, position) {
            Self::take(&mut inner, symbol)
        } else {
            None
        }
    }

    /// Removes everything (tombstones too), returning the entries in order.
    pub fn clear(&self) -> Cleared<H> {
        let mut inner = self.inner.lock();
        let order = std::mem::take(&mut inner.order);
        let mut out = Vec::with_capacity(order.len());
        for (_, symbol) in order {
            if let Some(e) = inner.entries.remove(&symbol) {
                out.push((symbol, e));
            }
        }
        let buried = inner.tombstones.drain().map(|(_, t)| t).collect();
        (out, buried)
    }

    /// Removes `symbol` as closed outside the manager and keeps it as a tombstone with
    /// `fingerprint` (what must be reported again to restore it). Returns the position and handle
    /// if it was tracked as `position`, and any tombstone evicted by the size limit.
    pub fn bury(
        &self,
        symbol: &str,
        position: &SharedPosition,
        fingerprint: Fingerprint,
        now: Timestamp,
    ) -> Option<(SharedPosition, H, Vec<Tombstone<H>>)> {
        let mut inner = self.inner.lock();
        if !Self::holds_in(&inner, symbol, position) {
            return None;
        }
        let entry = Self::take(&mut inner, symbol)?;
        let out = (entry.position.clone(), entry.handle.clone());
        let evicted = self.push_tombstone(&mut inner, symbol, entry, fingerprint, now);
        Some((out.0, out.1, evicted))
    }

    /// Restores a tombstoned `symbol` if `fingerprint` matches and the symbol is not tracked.
    pub fn restore_if_same(
        &self,
        symbol: &str,
        fingerprint: &Fingerprint,
    ) -> Option<(SharedPosition, H)> {
        let mut inner = self.inner.lock();
        if inner.entries.contains_key(symbol) {
            return None;
        }
        let matches = inner
            .tombstones
            .get(symbol)
            .is_some_and(|t| t.fingerprint.same_position(fingerprint));
        if !matches {
            return None;
        }
        let t = inner.tombstones.remove(symbol)?;
        Some(Self::reinsert(&mut inner, symbol, t))
    }

    /// Marks `symbol`'s size as just changed by the manager (see [`Entry::touched`]).
    pub fn touch(&self, symbol: &str, position: &SharedPosition) {
        let mut inner = self.inner.lock();
        if Self::holds_in(&inner, symbol, position) {
            inner.next_seq += 1;
            let mark = inner.next_seq;
            if let Some(e) = inner.entries.get_mut(symbol) {
                e.touched = mark;
            }
        }
    }

    /// Records that the manager just closed `symbol` on the exchange.
    pub fn note_closed(&self, symbol: &str) {
        let mut inner = self.inner.lock();
        inner.next_seq += 1;
        let mark = inner.next_seq;
        inner.closed.insert(symbol.to_owned(), mark);
    }

    /// Whether the manager closed `symbol` after the sequence mark `mark` (so a position list
    /// requested at `mark` may still show it, and must not re-import it).
    pub fn closed_since(&self, symbol: &str, mark: u64) -> bool {
        self.inner
            .lock()
            .closed
            .get(symbol)
            .is_some_and(|m| *m > mark)
    }

    /// Number of tombstones kept.
    pub fn tombstone_count(&self) -> usize {
        self.inner.lock().tombstones.len()
    }

    /// Drops tombstones removed before `cutoff`; returns them for dropping outside the lock.
    pub fn expire_tombstones(&self, cutoff: Timestamp) -> Vec<Tombstone<H>> {
        let mut inner = self.inner.lock();
        let old: Vec<String> = inner
            .tombstones
            .iter()
            .filter(|(_, t)| t.removed_at < cutoff)
            .map(|(s, _)| s.clone())
            .collect();
        old.iter()
            .filter_map(|s| inner.tombstones.remove(s))
            .collect()
    }

    /// Applies one successful exchange snapshot under `policy` at time `now`: plans with
    /// [`reconcile::plan`] and applies the plan in one critical section.
    pub fn reconcile(
        &self,
        snapshot: &Snapshot,
        policy: Policy,
        now: Timestamp,
    ) -> (ReconcileOutcome<H>, Vec<Tombstone<H>>) {
        let mut inner = self.inner.lock();
        let actions = {
            let views = inner.order.values().filter_map(|s| {
                inner.entries.get(s).map(|e| EntryView {
                    symbol: s.as_str(),
                    seq: e.seq,
                    missing: e.missing,
                    missing_since: e.missing_since,
                })
            });
            let buried = inner
                .tombstones
                .iter()
                .map(|(s, t)| (s.as_str(), &t.fingerprint));
            reconcile::plan(views, buried, snapshot, policy, now)
        };
        let mut outcome = ReconcileOutcome::default();
        let mut evicted = Vec::new();
        for action in actions {
            match action {
                Action::Confirm {
                    symbol,
                    fingerprint,
                } => {
                    if let Some(e) = inner.entries.get_mut(&symbol) {
                        e.missing = 0;
                        e.missing_since = None;
                        let reported = snapshot.reported.get(&symbol);
                        if let Some(reported) = reported {
                            e.reported = Some(reported.clone());
                        }
                        if fingerprint.is_some() || reported.is_some() {
                            outcome.confirmed.push(Confirmed {
                                symbol: symbol.clone(),
                                position: e.position.clone(),
                                fingerprint: fingerprint.clone(),
                                // An entry inserted after the request is as new as a resize.
                                touched: e.touched.max(e.seq),
                            });
                        }
                        if fingerprint.is_some() {
                            e.last_seen = fingerprint;
                        }
                    }
                }
                Action::CountMiss {
                    symbol,
                    missing,
                    since,
                } => {
                    if let Some(e) = inner.entries.get_mut(&symbol) {
                        e.missing = missing;
                        e.missing_since = Some(since);
                    }
                    outcome.pending.push((symbol, missing));
                }
                Action::Remove { symbol, missing } => {
                    if let Some(entry) = Self::take(&mut inner, &symbol) {
                        let fingerprint = match &entry.last_seen {
                            Some(fp) => fp.clone(),
                            None => fingerprint_of_state(&entry.position.lock()),
                        };
                        outcome.removed.push(Removed {
                            symbol: symbol.clone(),
                            position: entry.position.clone(),
                            handle: entry.handle.clone(),
                            missing,
                            reported: entry.reported.clone(),
                        });
                        evicted.extend(self.push_tombstone(
                            &mut inner,
                            &symbol,
                            entry,
                            fingerprint,
                            now,
                        ));
                    }
                }
                Action::Restore { symbol } => {
                    if let Some(t) = inner.tombstones.remove(&symbol) {
                        let (p, h) = Self::reinsert(&mut inner, &symbol, t);
                        outcome.restored.push((symbol, p, h));
                    }
                }
            }
        }
        (outcome, evicted)
    }

    fn take(inner: &mut Inner<H>, symbol: &str) -> Option<Entry<H>> {
        let entry = inner.entries.remove(symbol)?;
        inner.order.remove(&entry.order);
        Some(entry)
    }

    fn reinsert(inner: &mut Inner<H>, symbol: &str, t: Tombstone<H>) -> (SharedPosition, H) {
        inner.next_seq += 1;
        inner.next_order += 1;
        let (seq, order) = (inner.next_seq, inner.next_order);
        inner.order.insert(order, symbol.to_owned());
        let out = (t.entry.position.clone(), t.entry.handle.clone());
        inner.entries.insert(
            symbol.to_owned(),
            Entry {
                seq,
                order,
                missing: 0,
                missing_since: None,
                last_seen: Some(t.fingerprint),
                ..t.entry
            },
        );
        out
    }

    fn push_tombstone(
        &self,
        inner: &mut Inner<H>,
        symbol: &str,
        entry: Entry<H>,
        fingerprint: Fingerprint,
        now: Timestamp,
    ) -> Vec<Tombstone<H>> {
        let mut evicted = Vec::new();
        if self.tombstone_limit == 0 {
            return evicted;
        }
        while inner.tombstones.len() >= self.tombstone_limit {
            // Evict the oldest; ties broken by symbol for determinism.
            let oldest = inner
                .tombstones
                .iter()
                .min_by(|a, b| a.1.removed_at.cmp(&b.1.removed_at).then(a.0.cmp(b.0)))
                .map(|(s, _)| s.clone());
            match oldest.and_then(|s| inner.tombstones.remove(&s)) {
                Some(t) => evicted.push(t),
                None => break,
            }
        }
        inner.tombstones.insert(
            symbol.to_owned(),
            Tombstone {
                entry,
                fingerprint,
                removed_at: now,
            },
        );
        evicted
    }
}

/// The fingerprint of a position the exchange never reported: its own side, size and entry.
pub fn fingerprint_of_state(p: &PositionState) -> Fingerprint {
    Fingerprint {
        side: p.side.clone(),
        contracts: p.amount.abs(),
        entry_price: p.entry_price,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Field, RawEntry, RawPosition};

    fn pos(symbol: &str) -> SharedPosition {
        share(PositionState::new(
            symbol,
            "long",
            100.0,
            1.0,
            10.0,
            95.0,
            Some(110.0),
            Timestamp(0),
        ))
    }

    fn listed(symbol: &str, contracts: f64, price: f64) -> RawEntry {
        let mut raw = RawPosition::with_symbol(symbol);
        raw.side = Field::Text("long".into());
        raw.contracts = Field::Number(contracts);
        raw.entry_price = Field::Number(price);
        RawEntry::Position(Box::new(raw))
    }

    #[test]
    fn keeps_dict_order_and_replacement_place() {
        let book: Book<u32> = Book::new(10);
        book.insert("A", pos("A"), 1);
        book.insert("B", pos("B"), 2);
        book.insert("A", pos("A"), 3);
        assert_eq!(book.keys(), vec!["A", "B"]);
        assert_eq!(book.get("A").unwrap().1, 3);
        book.remove("A");
        book.insert("A", pos("A"), 4);
        assert_eq!(book.keys(), vec!["B", "A"]);
    }

    #[test]
    fn reconcile_removes_buries_and_restores_the_same_object() {
        let book: Book<u32> = Book::new(10);
        let eth = pos("ETH");
        book.insert("BTC", pos("BTC"), 1);
        book.insert("ETH", eth.clone(), 2);
        let mark = book.seq_mark();
        let snap = Snapshot::from_entries(&[listed("BTC", 1.0, 100.0)], mark);
        let (out, _) = book.reconcile(&snap, Policy::default(), Timestamp(5));
        assert_eq!(out.removed.len(), 1);
        assert_eq!(out.removed[0].symbol, "ETH");
        assert_eq!(book.keys(), vec!["BTC"]);
        assert_eq!(book.tombstone_count(), 1);
        // ETH is reported again with its own side/size/entry: restored, same Arc and handle.
        let snap = Snapshot::from_entries(
            &[listed("BTC", 1.0, 100.0), listed("ETH", 1.0, 100.0)],
            book.seq_mark(),
        );
        let (out, _) = book.reconcile(&snap, Policy::default(), Timestamp(6));
        assert_eq!(out.restored.len(), 1);
        let (p, h) = book.get("ETH").unwrap();
        assert!(Arc::ptr_eq(&p, &eth));
        assert_eq!(h, 2);
        assert_eq!(book.tombstone_count(), 0);
    }

    #[test]
    fn an_insert_after_the_request_survives_the_snapshot() {
        let book: Book<u32> = Book::new(10);
        book.insert("OLD", pos("OLD"), 1);
        let mark = book.seq_mark();
        book.insert("NEW", pos("NEW"), 2);
        let snap = Snapshot::from_entries(&[], mark);
        let (out, _) = book.reconcile(&snap, Policy::default(), Timestamp(1));
        assert_eq!(out.removed.len(), 1);
        assert_eq!(book.keys(), vec!["NEW"]);
    }

    #[test]
    fn tombstones_are_bounded_and_expire() {
        let book: Book<u32> = Book::new(2);
        for (i, s) in ["A", "B", "C"].iter().enumerate() {
            let p = pos(s);
            book.insert(s, p.clone(), 0);
            let fp = fingerprint_of_state(&p.lock());
            let (_, _, evicted) = book.bury(s, &p, fp, Timestamp(i as i64)).unwrap();
            assert_eq!(evicted.len(), usize::from(i == 2));
        }
        assert_eq!(book.tombstone_count(), 2);
        assert_eq!(book.expire_tombstones(Timestamp(2)).len(), 1);
        assert_eq!(book.tombstone_count(), 1);
    }

    #[test]
    fn remove_if_same_spares_a_replacement() {
        let book: Book<u32> = Book::new(10);
        let first = pos("A");
        book.insert("A", first.clone(), 1);
        book.insert("A", pos("A"), 2);
        assert!(book.remove_if_same("A", &first).is_none());
        assert!(book.contains("A"));
    }
}
