//! The re-open hold (`reopen_hold_seconds`): after a list that showed no live position at all
//! untracked a position, its key is not opened again while the lists keep showing nothing, for
//! a while.
//!
//! Why time: the bot's own client answers `[]` for any failed read, so an empty list cannot be
//! told from a failure by looking at it. The manager reads a list that would untrack every
//! position it believes open twice before acting (rule 7), and reads it twice more before it
//! opens a symbol it remembers; a client that fails four times in a row around one symbol still
//! gets a live position untracked and a second one opened on top of it (docs/reliability.md,
//! "opened on top"). Failures come in runs that end; a real close stays closed. Holding the
//! re-open for a while lets the run end first: the next list that shows the position restores it
//! (its tombstone), and the open is refused instead of netting against a live position.
//!
//! The manager's own closes count too: a close the client reported done and that a list showing
//! nothing then confirmed is held like a removal (the bot's client answers `True` for closes it
//! never sent). So do positions the manager does not track (a person's, not imported yet: an
//! update cycle imports nothing) that the list before such a list showed: it may hide them
//! ([`crate::book::Book::untracked_in_last_list`]).
//!
//! The guarantee (`hold_tests.rs`, a property over random bot steps and failure runs): while a
//! position stays open on the venue and every run of failed reads lasts less than the hold, no
//! open order is sent for its key again.
//!
//! What ends a hold early: any list that shows a live position (a client that answers a real
//! list is not failing, so the absence it shows is believed). What it costs: after a real close
//! of the account's only position(s), re-entering the same symbol waits up to the hold.
//!
//! The holds live in memory and, when the manager has a journal, in the journal too: every
//! change of the held set is written as it happens (the journal takes the set as it is when it
//! writes, under its own lock, so two lists applied at once never leave an older set written
//! last), and a restarted manager takes back the holds that are not over yet. Without a journal a
//! restarted manager holds nothing.
//!
//! Every time here is the manager's timer reading ([`crate::clock::Clock::timer`]): for the
//! system clock UTC that never goes back, so neither a DST change nor a restart under another
//! `TZ` shortens or stretches a hold.

use std::collections::HashMap;

use super::lists::ListRead;
use super::Manager;
use crate::clock::Timestamp;
use crate::key::Key;

/// Keys untracked on lists that showed no live position, with when that list was read (timer
/// readings).
#[derive(Debug, Default)]
pub struct ReopenHolds {
    held: parking_lot::Mutex<HashMap<Key, Timestamp>>,
}

/// What one applied list says for the holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListSight {
    /// The answer showed at least one live position: the client answered for real.
    Live,
    /// The whole answer showed no live position (empty, or phantom entries only).
    Blind,
    /// Neither can be told (a partial read with no live entry of its own).
    Unknown,
}

/// Seconds left of a hold that started at `since`, at `now` (timer readings), for holds of
/// `hold` seconds (`None`: over). A reading before `since` counts as the hold having just
/// started (the whole `hold` is left): the hold runs `hold` seconds from when the timer passes
/// `since` again. Only a clock moved back by hand (a `ManualClock`) goes back inside a process;
/// a hold restored with a start after the restarted manager's reading is taken back as starting
/// then ([`Manager::restore_reopen_holds`]), so it never lasts more than `hold` from the restart.
pub fn hold_left(since: Timestamp, now: Timestamp, hold: f64) -> Option<f64> {
    let elapsed = now.seconds_since(since).max(0.0);
    (elapsed < hold).then_some(hold - elapsed)
}

impl ReopenHolds {
    /// Notes one applied list read at `at`: a [`ListSight::Live`] list ends every hold; a
    /// [`ListSight::Blind`] one holds the keys that left the book on it (`left`) from `at`.
    /// Returns whether the held set changed.
    pub fn note<'a>(
        &self,
        sight: ListSight,
        left: impl IntoIterator<Item = &'a Key>,
        at: Timestamp,
    ) -> bool {
        match sight {
            ListSight::Live => {
                let mut held = self.held.lock();
                let changed = !held.is_empty();
                held.clear();
                changed
            }
            ListSight::Blind => {
                let mut held = self.held.lock();
                let mut changed = false;
                for key in left {
                    changed |= held.insert(key.clone(), at) != Some(at);
                }
                changed
            }
            ListSight::Unknown => false,
        }
    }

    /// The held keys with when each hold started, by key (expired holds included until the
    /// next [`ReopenHolds::left`] drops them).
    pub fn snapshot(&self) -> Vec<(Key, Timestamp)> {
        let mut held: Vec<(Key, Timestamp)> = self
            .held
            .lock()
            .iter()
            .map(|(key, since)| (key.clone(), *since))
            .collect();
        held.sort_by(|a, b| a.0.cmp(&b.0));
        held
    }

    /// Takes back holds kept elsewhere (a journal), each from when it started; a key already
    /// held keeps the later start.
    pub fn restore(&self, holds: impl IntoIterator<Item = (Key, Timestamp)>) {
        let mut held = self.held.lock();
        for (key, since) in holds {
            let start = held.entry(key).or_insert(since);
            *start = (*start).max(since);
        }
    }

    /// Seconds left on `key`'s hold at `now` (`None`: not held). Holds that are over are
    /// dropped.
    pub fn left(&self, key: &Key, now: Timestamp, hold: f64) -> Option<f64> {
        let mut held = self.held.lock();
        held.retain(|_, since| hold_left(*since, now, hold).is_some());
        held.get(key).and_then(|since| hold_left(*since, now, hold))
    }

    /// Whether no key is held (expired holds count until the next [`ReopenHolds::left`]).
    pub fn is_empty(&self) -> bool {
        self.held.lock().is_empty()
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Notes an applied list for the holds: `left` are the keys that left the book on it
    /// (removed as closed outside the manager, or the manager's own closes it confirmed).
    /// Nothing when `reopen_hold_seconds` is 0. Returns whether the held set changed (the
    /// journal, if any, is then to be told: [`Manager::journal_holds`]).
    pub(crate) fn note_for_holds<'a>(
        &self,
        list: &ListRead,
        left: impl IntoIterator<Item = &'a Key>,
    ) -> bool {
        if self.config().reopen_hold_seconds <= 0.0 {
            return false;
        }
        let snapshot = &list.snapshot;
        let sight = if !snapshot.symbols.is_empty() {
            ListSight::Live
        } else if snapshot.entries == 0 || !list.is_partial() {
            ListSight::Blind
        } else {
            ListSight::Unknown
        };
        self.holds.note(sight, left, list.taken_at)
    }

    /// Seconds left before `key` may be opened again (`None`: it may).
    pub(crate) fn reopen_hold_left(&self, key: &Key) -> Option<f64> {
        let hold = self.config().reopen_hold_seconds;
        if hold <= 0.0 {
            return None;
        }
        self.holds.left(key, self.timer(), hold)
    }

    /// The re-open holds that are not over, with when each started (timer readings), by key
    /// (empty when `reopen_hold_seconds` is 0). What a journal writes.
    pub fn reopen_holds(&self) -> Vec<(Key, Timestamp)> {
        let hold = self.config().reopen_hold_seconds;
        if hold <= 0.0 {
            return Vec::new();
        }
        let now = self.timer();
        let mut held = self.holds.snapshot();
        held.retain(|(_, since)| hold_left(*since, now, hold).is_some());
        held
    }

    /// Takes back re-open holds kept by a journal or a state file (each key with when its hold
    /// started, a timer reading); those already over, and all of them when
    /// `reopen_hold_seconds` is 0, are left out. A start later than the manager's timer reading
    /// now (the machine's clock was set back between the two processes) is taken back as now,
    /// so the hold lasts at most its setting from here. Returns the holds taken.
    pub fn restore_reopen_holds(
        &self,
        holds: impl IntoIterator<Item = (Key, Timestamp)>,
    ) -> Vec<(Key, Timestamp)> {
        let hold = self.config().reopen_hold_seconds;
        if hold <= 0.0 {
            return Vec::new();
        }
        let now = self.timer();
        let kept: Vec<(Key, Timestamp)> = holds
            .into_iter()
            .map(|(key, since)| (key, since.min(now)))
            .filter(|(_, since)| hold_left(*since, now, hold).is_some())
            .collect();
        self.holds.restore(kept.iter().cloned());
        kept
    }

    /// Tells the journal, if any, that the held set changed (called with no lock held).
    pub(crate) fn journal_holds(&self) {
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            journal.holds_changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: f64) -> Timestamp {
        Timestamp(0).plus_seconds(seconds)
    }

    #[test]
    fn a_blind_list_holds_what_it_removed_and_a_live_one_ends_every_hold() {
        let holds = ReopenHolds::default();
        let (a, b) = (Key::net("A/USDT:USDT"), Key::net("B/USDT:USDT"));
        assert!(holds.note(ListSight::Blind, [&a], at(100.0)), "a change");
        assert!(!holds.note(ListSight::Unknown, [&b], at(100.0)));
        assert!(
            !holds.note(ListSight::Blind, [&a], at(100.0)),
            "the same hold again"
        );
        assert_eq!(holds.snapshot(), vec![(a.clone(), at(100.0))]);
        assert_eq!(holds.left(&a, at(130.0), 60.0), Some(30.0));
        assert_eq!(holds.left(&b, at(130.0), 60.0), None);
        assert!(!holds.note(ListSight::Blind, [], at(150.0)));
        assert_eq!(holds.left(&a, at(150.0), 60.0), Some(10.0));
        assert!(
            holds.note(ListSight::Live, [], at(151.0)),
            "every hold ended"
        );
        assert!(
            !holds.note(ListSight::Live, [], at(152.0)),
            "nothing left to end"
        );
        assert_eq!(holds.left(&a, at(151.0), 60.0), None);
        assert!(holds.is_empty());
    }

    #[test]
    fn a_hold_ends_after_its_seconds_and_is_dropped() {
        let holds = ReopenHolds::default();
        let a = Key::net("A/USDT:USDT");
        holds.note(ListSight::Blind, [&a], at(0.0));
        assert_eq!(holds.left(&a, at(59.5), 60.0), Some(0.5));
        assert_eq!(holds.left(&a, at(60.0), 60.0), None);
        assert!(holds.is_empty(), "the hold that is over was dropped");
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256, 0x401D_0001))]

        /// A hold is never longer than its setting, never negative, and counts down with the
        /// clock; a clock that went back holds for the whole setting.
        #[test]
        fn holds_count_down(since in 0.0f64..1e6, dt in -1e3f64..1e4, hold in 0.0f64..1e4) {
            let left = hold_left(at(since), at(since + dt), hold);
            match left {
                Some(l) => {
                    prop_assert!(l > 0.0 && l <= hold);
                    prop_assert!((l - (hold - dt.max(0.0))).abs() < 1e-3);
                }
                None => prop_assert!(dt.max(0.0) >= hold - 1e-3),
            }
        }
    }
}
