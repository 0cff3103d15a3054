//! The hook a durable journal implements (the `position-manager-journal` crate does, for
//! SQLite and PostgreSQL): the manager tells it about every event right after the event is
//! stored in memory, asks it to write the book's state at the end of every update cycle, and
//! tells it about every order right before it goes out (an order that adds exposure is not sent
//! when its row cannot be written) and when the call that sent it is over,
//! and tells it when the re-open holds (`reopen_hold_seconds`) changed, when closes awaiting
//! confirmation were confirmed, when a state file's remembered positions were put back, and when
//! the manager's own scale order changed a position's size (none of them is an event).
//!
//! The calls are made with no lock held, on the thread that made the change, before the
//! operation that made it returns; an implementation that cannot write reports the failure
//! itself (a log record and a `journal_failed` event) and never panics or blocks the manager
//! beyond its own write.

use crate::book::SharedPosition;
use crate::events::Event;
use crate::key::Key;
use crate::manager::in_flight::SentOrder;

/// A durable journal of a manager's events and book (see the module documentation).
pub trait EventJournal: Send + Sync {
    /// Writes `event`, just recorded for `position` (the book's shared state of it), and the
    /// book's resulting state for that key.
    fn record(&self, event: &Event, position: &SharedPosition);

    /// Writes the tracked positions whose state changed since they were last written.
    fn checkpoint(&self);

    /// The manager's closes of `keys` awaiting confirmation were settled (a list confirmed
    /// them): forgets those the book no longer holds as awaiting confirmation.
    fn closes_settled(&self, keys: &[Key]);

    /// Writes the manager's re-open holds ([`crate::manager::Manager::reopen_holds`]) as they
    /// are now, replacing those written before: called after every change of the held set.
    fn holds_changed(&self);

    /// The book took back remembered positions under `keys` (a state file's tombstones and
    /// closes awaiting confirmation, put back by `load_state`): writes the rows of those the book
    /// still remembers as it does now, so a restart from the journal remembers them too.
    fn remembered(&self, keys: &[Key]);

    /// Writes that `order` for `key` is about to go out (called right before the client call):
    /// a restart that finds it still written takes it back as an order with an unknown outcome
    /// ([`crate::manager::Manager::restore_orders`]). It replaces any earlier row of `key`.
    ///
    /// `Err(why)` when the row could not be written (the implementation has reported the
    /// failure itself). The manager then does not send an order that adds exposure
    /// ([`SentIntent::adds_exposure`](crate::manager::in_flight::SentIntent::adds_exposure)), and
    /// the implementation must not keep that row queued for a later write (the order never went
    /// out); an order that only reduces is sent anyway, and its row stays queued like any failed
    /// write — unless the journal is fenced ([`EventJournal::is_fenced`]): then no order goes
    /// out.
    fn order_sent(&self, key: &Key, order: &SentOrder) -> Result<(), String>;

    /// Whether a newer manager claimed this journal's account (this one is fenced: it can never
    /// write again). The manager then sends no order at all — not even one that only reduces —
    /// since the newer manager trades the account now. The default: never.
    fn is_fenced(&self) -> bool {
        false
    }

    /// `order`, whose row [`EventJournal::order_sent`] could not write, was not sent (it adds
    /// exposure): the row must not reach the journal later (a restart would wait for an order
    /// that never went out). The default does nothing.
    fn order_not_sent(&self, key: &Key, order: &SentOrder) {
        let _ = (key, order);
    }

    /// The call that sent orders for `keys` is over: deletes the row of each key whose order
    /// the book no longer has in flight or with an unknown outcome
    /// ([`crate::book::Book::order_pending`]).
    fn orders_settled(&self, keys: &[Key]);

    /// The manager's own order for `key` changed the tracked `position`'s size, and no list
    /// has shown the new size yet: writes its row as it is now (its state, and what no list has
    /// shown of it, [`crate::book::UnlistedFills`]) and settles `key`'s order row
    /// ([`EventJournal::orders_settled`]) in one write, so that a restart weighs a list lagging
    /// the fill as this manager would. The default only settles the order.
    fn filled(&self, key: &Key, position: &SharedPosition) {
        let _ = position;
        self.orders_settled(std::slice::from_ref(key));
    }
}
