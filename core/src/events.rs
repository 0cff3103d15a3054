//! What happened to the book: a bounded, ordered history of events.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::position::PositionState;

/// The kind of change an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Removed because the exchange no longer lists it.
    Removed,
    /// A removed position reported again unchanged, put back with its state and identity.
    Restored,
    /// Imported from the exchange (sync or reconcile).
    Imported,
    /// Opened by the manager.
    Opened,
    /// Closed by the manager (full close).
    Closed,
    /// Part of the position closed by the manager.
    PartialClose,
    /// Size increased by the manager.
    ScaledIn,
    /// Stop loss or take profit changed on request.
    TargetsChanged,
    /// Size changed on the exchange without the manager (partial external close, ADL): the
    /// book now has the exchange's size.
    Resized,
    /// Added to the book from Python (`positions[symbol] = position`).
    Added,
    /// Taken out of the book from Python (`del`, `pop`, `clear`, replacement).
    Untracked,
    /// Put into the book from a state file (`load_state`) or the journal at start.
    Loaded,
    /// A close the client reported is contradicted by a later list that still shows the very
    /// position: it is tracked again (same object) and its exit rules run again.
    CloseUnconfirmed,
    /// An order's outcome could not be determined before the call returned (the answer was
    /// lost and the exchange could not be read); nothing more is sent for the position until
    /// it is resolved.
    OutcomeUnknown,
    /// An order whose outcome was unknown turned out to have done nothing (`not_executed`);
    /// executed ones are recorded as what they did (`opened`, `closed`, `partial_close`, ...).
    OutcomeResolved,
    /// A one-way manager saw a symbol listed with a long and a short leg (an account in hedge
    /// mode): neither leg is tracked on its own (use `position_mode="hedge"`).
    TwoLegs,
    /// The journal could not write an event or the book's state: it is kept in memory and
    /// written with the next write that succeeds.
    JournalFailed,
}

impl EventKind {
    /// The snake_case name used in Python records.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Removed => "removed",
            EventKind::Restored => "restored",
            EventKind::Imported => "imported",
            EventKind::Opened => "opened",
            EventKind::Closed => "closed",
            EventKind::PartialClose => "partial_close",
            EventKind::ScaledIn => "scaled_in",
            EventKind::TargetsChanged => "targets_changed",
            EventKind::Resized => "resized",
            EventKind::Added => "added",
            EventKind::Untracked => "untracked",
            EventKind::Loaded => "loaded",
            EventKind::CloseUnconfirmed => "close_unconfirmed",
            EventKind::OutcomeUnknown => "outcome_unknown",
            EventKind::OutcomeResolved => "outcome_resolved",
            EventKind::TwoLegs => "two_legs",
            EventKind::JournalFailed => "journal_failed",
        }
    }
}

/// One change of the book, with the position's state at that moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history (1, 2, 3, ...), never reused.
    pub seq: u64,
    /// When it happened.
    pub time: Timestamp,
    /// Book key.
    pub symbol: String,
    /// What happened.
    pub kind: EventKind,
    /// Why (e.g. `closed_externally`, a close reason, `sync`).
    pub reason: String,
    /// Realised leveraged P/L after fees, for closes.
    pub pnl: Option<f64>,
    /// The position's state at that moment (its last state for removals and closes).
    pub position: PositionState,
    /// What the decision rested on (removals, resizes), when there is something to say.
    #[serde(default)]
    pub evidence: Option<Evidence>,
    /// The client order id of the order behind the change, when the client takes them.
    #[serde(default)]
    pub order_id: Option<String>,
}

/// What the exchange and the book showed when a change was decided without the manager's own
/// order: why a vanished position is thought liquidated or stopped out, or how its size changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The last price the manager saw for it (its last update cycle), else the last mark price.
    pub last_price: Option<f64>,
    /// The last liquidation price the exchange reported.
    pub liquidation_price: Option<f64>,
    /// The last mark price the exchange reported.
    pub mark_price: Option<f64>,
    /// The position's stop loss then.
    pub stop_loss: Option<f64>,
    /// The position's take profit then.
    pub take_profit: Option<f64>,
    /// Consecutive snapshots that did not list it (removals).
    pub missing: Option<u32>,
    /// The side the exchange reports (side flips).
    pub exchange_side: Option<String>,
    /// The size the exchange reports (resizes).
    pub exchange_contracts: Option<f64>,
    /// The size the book had before (resizes).
    pub previous_amount: Option<f64>,
    /// The entry price the book had before, when the exchange's average replaced it (resizes).
    #[serde(default)]
    pub previous_entry_price: Option<f64>,
    /// A price read when the removal was decided (the judge of a liquidation).
    #[serde(default)]
    pub price_at_removal: Option<f64>,
}

/// The bounded event history; the oldest events are dropped beyond `capacity`.
///
/// Events are kept behind `Arc`s, so a reader copies the history out under the lock in
/// microseconds ([`EventLog::snapshot`], [`EventLog::since`]) and converts it without holding
/// anything: recording never waits for a reader.
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug)]
struct LogInner {
    /// Oldest first; sequence numbers strictly increasing.
    events: VecDeque<Arc<Event>>,
    capacity: usize,
    next_seq: u64,
}

impl EventLog {
    /// An empty history keeping at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventLog {
            inner: Mutex::new(LogInner {
                events: VecDeque::new(),
                capacity,
                next_seq: 1,
            }),
        }
    }

    /// Records an event and returns it (with its sequence number).
    pub fn record(
        &self,
        time: Timestamp,
        symbol: &str,
        kind: EventKind,
        reason: &str,
        pnl: Option<f64>,
        position: PositionState,
    ) -> Event {
        self.record_with_evidence(time, symbol, kind, reason, pnl, position, None, None)
    }

    /// [`EventLog::record`] with the evidence the decision rested on and the order behind it.
    #[allow(clippy::too_many_arguments)]
    pub fn record_with_evidence(
        &self,
        time: Timestamp,
        symbol: &str,
        kind: EventKind,
        reason: &str,
        pnl: Option<f64>,
        position: PositionState,
        evidence: Option<Evidence>,
        order_id: Option<String>,
    ) -> Event {
        let mut inner = self.inner.lock();
        let event = Event {
            seq: inner.next_seq,
            time,
            symbol: symbol.to_owned(),
            kind,
            reason: reason.to_owned(),
            pnl,
            position,
            evidence,
            order_id,
        };
        inner.next_seq += 1;
        if inner.capacity > 0 {
            let dropped = if inner.events.len() == inner.capacity {
                inner.events.pop_front()
            } else {
                None
            };
            inner.events.push_back(Arc::new(event.clone()));
            drop(inner);
            drop(dropped);
        }
        event
    }

    /// Puts back a history read from the journal (oldest first; the newest `capacity` are kept)
    /// and numbers the events recorded from now on from `next_seq` (never below the next
    /// number it would have used).
    pub fn restore(&self, events: Vec<Event>, next_seq: u64) {
        let mut inner = self.inner.lock();
        let capacity = inner.capacity;
        let skip = events.len().saturating_sub(capacity);
        let mut kept: VecDeque<Arc<Event>> = events.into_iter().skip(skip).map(Arc::new).collect();
        kept.extend(inner.events.drain(..));
        while kept.len() > capacity {
            kept.pop_front();
        }
        inner.events = kept;
        inner.next_seq = inner.next_seq.max(next_seq);
    }

    /// The number the next recorded event gets.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock().next_seq
    }

    /// All kept events, oldest first (copies).
    pub fn all(&self) -> Vec<Event> {
        self.snapshot().iter().map(|e| Event::clone(e)).collect()
    }

    /// All kept events, oldest first, shared: the lock is held only to copy the `Arc`s.
    pub fn snapshot(&self) -> Vec<Arc<Event>> {
        self.since(0)
    }

    /// Kept events with a sequence number greater than `seq`, oldest first, shared (found by
    /// binary search: the cost is that of the events returned).
    pub fn since(&self, seq: u64) -> Vec<Arc<Event>> {
        events_after(&self.inner.lock(), seq)
    }

    /// [`EventLog::since`] if the history's lock is free right now, `None` if another thread
    /// holds it (a caller that must not block, e.g. one attached to the Python interpreter,
    /// then waits for it its own way).
    pub fn try_since(&self, seq: u64) -> Option<Vec<Arc<Event>>> {
        self.inner.try_lock().map(|inner| events_after(&inner, seq))
    }

    /// Number of kept events.
    pub fn len(&self) -> usize {
        self.inner.lock().events.len()
    }

    /// [`EventLog::len`] if the history's lock is free right now, `None` if another thread
    /// holds it (see [`EventLog::try_since`]).
    pub fn try_len(&self) -> Option<usize> {
        self.inner.try_lock().map(|inner| inner.events.len())
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The events after `seq` (sequence numbers increase along the history).
fn events_after(inner: &LogInner, seq: u64) -> Vec<Arc<Event>> {
    let start = inner.events.partition_point(|e| e.seq <= seq);
    inner.events.range(start..).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_ordered() {
        let log = EventLog::new(2);
        let p = PositionState::new("X", "long", 1.0, 1.0, 1.0, 0.9, None, Timestamp(0));
        for i in 0..3 {
            log.record(Timestamp(i), "X", EventKind::Removed, "r", None, p.clone());
        }
        let all = log.all();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(log.since(2).len(), 1);
    }

    #[test]
    fn since_returns_the_events_after_a_sequence_number() {
        let log = EventLog::new(5);
        let p = PositionState::new("X", "long", 1.0, 1.0, 1.0, 0.9, None, Timestamp(0));
        for i in 0..8 {
            log.record(Timestamp(i), "X", EventKind::Added, "r", None, p.clone());
        }
        // Kept: 4..=8.
        let seqs = |v: Vec<Arc<Event>>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(log.since(0)), [4, 5, 6, 7, 8]);
        assert_eq!(seqs(log.since(5)), [6, 7, 8]);
        assert_eq!(seqs(log.since(8)), Vec::<u64>::new());
        assert_eq!(seqs(log.since(u64::MAX)), Vec::<u64>::new());
        assert_eq!(seqs(log.snapshot()), [4, 5, 6, 7, 8]);
        // Shared, not copied.
        assert!(Arc::ptr_eq(&log.snapshot()[0], &log.since(3)[0]));
    }

    #[test]
    fn try_since_answers_only_while_the_lock_is_free() {
        let log = EventLog::new(5);
        let p = PositionState::new("X", "long", 1.0, 1.0, 1.0, 0.9, None, Timestamp(0));
        for i in 0..3 {
            log.record(Timestamp(i), "X", EventKind::Added, "r", None, p.clone());
        }
        let held = log.inner.lock();
        assert!(log.try_since(0).is_none());
        drop(held);
        let seqs = |v: Vec<Arc<Event>>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(log.try_since(1).map(seqs), Some(vec![2, 3]));
    }
}
