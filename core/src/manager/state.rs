//! `save_state` and `load_state`: the book to and from a state file ([`crate::persist`]).
//!
//! Both take a callback for the caller's own per-position data (the binding: the Python object's
//! JSON-serialisable attributes), called with no lock held.

use std::path::Path;

use log::Level;

use super::in_flight::{OrdersFrom, SentOrder};
use super::{Channel, Manager};
use crate::book::{share, BookContents, KeptEntry, Remembered, SharedPosition, Sighting};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::key::Key;
use crate::persist::{
    self, validate_listing, Extra, SavedHold, SavedKept, SavedListing, SavedOrder, SavedPosition,
    StateFile,
};
use crate::reconcile::Fingerprint;

/// The reason on `loaded` events.
pub const LOADED_REASON: &str = "state_file";

/// The caller's own attributes of one position, as [`Manager::save_state`] asks for them.
#[derive(Debug, Default)]
pub struct SavedExtra {
    /// The attributes that could be saved: name → JSON text.
    pub values: Extra,
    /// The names of attributes that could not be (not JSON-serialisable); logged once per save.
    pub skipped: Vec<String>,
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Saves the book to `path` atomically: every tracked position in book order, the
    /// tombstones and the closes awaiting confirmation (oldest first), the re-open holds not
    /// over, and the orders whose outcome the book has not taken in
    /// (all read from the book under one lock, [`crate::book::Book::contents`]); returns how
    /// many tracked positions it saved.
    ///
    /// `extra(symbol, handle)` gives each position's own attributes; it is called with no lock
    /// held. Attributes it reports as skipped are named in one warning on the main logger. A
    /// state that would not load back (a non-finite price, amount <= 0, ...) is refused with
    /// [`CoreError::State`] and nothing is written; an I/O failure is [`CoreError::Io`] and leaves
    /// the previous file as it was.
    pub fn save_state<F>(&self, path: &Path, mut extra: F) -> CoreResult<usize>
    where
        F: FnMut(&str, &H) -> CoreResult<SavedExtra>,
    {
        let BookContents {
            tracked: entries,
            remembered,
            predecessors,
            pending,
        } = self.book.contents();
        let mut skipped = Vec::new();
        let mut attributes = |symbol: &Key, handle: &H| -> CoreResult<Extra> {
            let SavedExtra { values, skipped: s } = extra(symbol.as_str(), handle)?;
            if !s.is_empty() {
                skipped.push(format!("{symbol} ({})", s.join(", ")));
            }
            Ok(values)
        };
        // What the exchange last listed is only a hint for recognising a position: one a file
        // could not carry (an entry price of 0) is left out rather than failing the save.
        let listing = |f: Option<Fingerprint>| {
            f.map(SavedListing::of)
                .filter(|l| validate_listing(l).is_ok())
        };
        let mut positions = Vec::with_capacity(entries.len());
        for (key, position, handle, sighting) in entries {
            let values = attributes(&key, &handle)?;
            positions.push(SavedPosition {
                symbol: key.to_string(),
                state: position.lock().snapshot(),
                extra: values,
                listed: listing(sighting.listed),
                unlisted_fills: sighting.unlisted,
                predecessor: None,
            });
        }
        let mut kept = |list: Vec<KeptEntry<H>>| -> CoreResult<Vec<SavedKept>> {
            let mut out = Vec::with_capacity(list.len());
            for k in list {
                let values = attributes(&k.key, &k.handle)?;
                out.push(SavedKept {
                    symbol: k.key.to_string(),
                    state: k.position.lock().snapshot(),
                    extra: values,
                    at: k.at,
                    listed: listing(k.listed),
                    order_id: k.close_order_id,
                    own_end: k.own_end,
                    doubtful: k.doubtful,
                });
            }
            Ok(out)
        };
        let tombstones = kept(remembered.tombstones)?;
        let closing = kept(remembered.closing)?;
        // Each position a side flip replaced goes with the position that replaced it.
        let mut replaced: std::collections::HashMap<String, SavedKept> = kept(predecessors)?
            .into_iter()
            .map(|k| (k.symbol.clone(), k))
            .collect();
        for p in &mut positions {
            p.predecessor = replaced.remove(&p.symbol).map(Box::new);
        }
        if !skipped.is_empty() {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "save_state: skipped attributes that are not JSON-serialisable: {}",
                    skipped.join("; ")
                )
            });
        }
        let count = positions.len();
        let now = self.now();
        let mut file = StateFile::new(now, positions);
        file.tombstones = tombstones;
        file.closing = closing;
        file.holds = self
            .reopen_holds()
            .into_iter()
            .map(|(key, since)| SavedHold {
                symbol: key.to_string(),
                since,
            })
            .collect();
        let any_timer_time = file.timer_times().next().is_some();
        file.timer_frame = any_timer_time;
        file.orders = self
            .pending_sent_orders(pending, now)
            .into_iter()
            .map(|(key, order)| SavedOrder {
                symbol: key.to_string(),
                reference: order.reference,
                at: order.sent_at,
                intent: order.intent,
            })
            .collect();
        persist::save(path, &file)?;
        self.log(Channel::Main, Level::Debug, || {
            format!("Saved {count} positions to {}", path.display())
        });
        Ok(count)
    }

    /// Fills an empty book from the state file at `path`; returns how many tracked positions it
    /// loaded.
    ///
    /// All or nothing: the file is read, checked and validated completely, then
    /// `attach(symbol, extra, position)` makes each handle (called with no lock held; an error
    /// stops the load before anything is tracked), and only then are the positions put into the
    /// book, each recorded as a `loaded` event. The file's tombstones and closes awaiting
    /// confirmation are put back as they were (those older than `tombstone_ttl_seconds` are
    /// left out; a journal, if any, is told to write them), its re-open holds that are not
    /// over are taken back, and its orders whose outcome was unknown are taken back as such
    /// ([`Manager::restore_orders_from`]; a journal writes their rows). A book that is not empty is refused ([`CoreError::Value`]) before
    /// the file is read.
    pub fn load_state<F>(&self, path: &Path, mut attach: F) -> CoreResult<usize>
    where
        F: FnMut(&str, &Extra, &SharedPosition) -> CoreResult<H>,
    {
        self.ensure_empty_for_load()?;
        let mut file = persist::load(path)?;
        if !file.timer_frame {
            self.to_timer_frame(&mut file);
        }
        let keys = file
            .positions
            .iter()
            .map(|p| p.symbol.as_str())
            .chain(file.tombstones.iter().map(|k| k.symbol.as_str()))
            .chain(file.closing.iter().map(|k| k.symbol.as_str()))
            .chain(file.holds.iter().map(|h| h.symbol.as_str()))
            .chain(file.orders.iter().map(|o| o.symbol.as_str()));
        if let Some(why) = self.misfit_saved_key(keys) {
            return Err(CoreError::Value(format!(
                "load_state: {} was not loaded: {why}",
                path.display()
            )));
        }
        let mut staged = Vec::with_capacity(file.positions.len());
        for saved in &file.positions {
            let position = share(saved.state.clone());
            let handle = attach(&saved.symbol, &saved.extra, &position)?;
            let sighting = Sighting {
                listed: saved.listed.as_ref().and_then(SavedListing::fingerprint),
                unlisted: saved.unlisted_fills.clone(),
            };
            staged.push((saved.symbol.as_str(), position, handle, sighting));
        }
        let now = self.timer();
        let ttl = self.config().tombstone_ttl_seconds;
        let mut stage = |k: &SavedKept| -> CoreResult<KeptEntry<H>> {
            let position = share(k.state.clone());
            let handle = attach(&k.symbol, &k.extra, &position)?;
            Ok(KeptEntry {
                key: Key::parse(&k.symbol),
                position,
                handle,
                at: k.at,
                listed: k.listed.as_ref().and_then(SavedListing::fingerprint),
                close_order_id: k.order_id.clone(),
                own_end: k.own_end,
                doubtful: k.doubtful,
            })
        };
        // The positions side flips replaced, each kept with the position that replaced it (as
        // in a running manager, whatever their age).
        let mut predecessors = Vec::new();
        for (i, saved) in file.positions.iter().enumerate() {
            if let Some(k) = &saved.predecessor {
                predecessors.push((i, stage(k)?));
            }
        }
        let mut stage_kept = |list: &[SavedKept]| -> CoreResult<Vec<KeptEntry<H>>> {
            list.iter()
                .filter(|k| now.seconds_since(k.at) <= ttl)
                .map(&mut stage)
                .collect()
        };
        let remembered = Remembered {
            tombstones: stage_kept(&file.tombstones)?,
            closing: stage_kept(&file.closing)?,
        };
        self.ensure_empty_for_load()?;
        let mut inserted: Vec<(&str, SharedPosition)> = Vec::with_capacity(staged.len());
        for (symbol, position, handle, sighting) in staged {
            match self
                .book
                .insert_if_free(&Key::parse(symbol), position.clone(), handle)
            {
                Ok(buried) => {
                    drop(buried);
                    self.book.restore_sighting(symbol, &position, sighting);
                    inserted.push((symbol, position));
                }
                Err(given_back) => {
                    // Someone tracked this symbol meanwhile: take back what this load put in, so
                    // the book never holds part of a file.
                    drop(given_back);
                    let taken: Vec<_> = inserted
                        .iter()
                        .filter_map(|(s, p)| self.book.remove_closed(s, p))
                        .collect();
                    drop(taken);
                    return Err(CoreError::Value(format!(
                        "load_state: {symbol} was added to the manager while {} was being \
                         loaded; nothing was loaded",
                        path.display()
                    )));
                }
            }
        }
        for (i, kept) in predecessors {
            // Every position was inserted above (the load stops otherwise).
            if let Some((_, position)) = inserted.get(i) {
                drop(self.book.put_back_predecessor(kept, position));
            }
        }
        let remembered_keys: Vec<Key> = remembered
            .tombstones
            .iter()
            .chain(&remembered.closing)
            .map(|k| k.key.clone())
            .collect();
        let (tombstones, closes) = self.restore_remembered(remembered);
        if tombstones + closes > 0 {
            self.journal_remembered(&remembered_keys);
        }
        let held =
            self.restore_reopen_holds(file.holds.iter().map(|h| (Key::parse(&h.symbol), h.since)));
        if !held.is_empty() {
            self.journal_holds();
        }
        for (symbol, position) in &inserted {
            self.record(symbol, position, EventKind::Loaded, LOADED_REASON, None);
        }
        let orders = self.restore_saved_orders(&file.orders);
        let count = inserted.len();
        self.log(Channel::Main, Level::Info, || {
            format!(
                "Loaded {count} positions from {}{}{}",
                path.display(),
                remembered_summary(tombstones, closes, &held),
                orders_summary(orders)
            )
        });
        Ok(count)
    }

    /// Moves the times a state file of an earlier build kept in local time (tombstones',
    /// closes' and predecessors' `at`, holds' `since`) into the timer frame, by the clock's
    /// current difference between its two readings (see [`crate::persist`]).
    fn to_timer_frame(&self, file: &mut persist::StateFile) {
        let shift = self.timer().0 - self.now().0;
        for t in file.timer_times() {
            *t = Timestamp(t.0.saturating_add(shift));
        }
    }

    /// Puts back the tombstones and the closes awaiting confirmation a state file or a journal
    /// kept, each only where the book has nothing for its key (what it holds now is newer) and
    /// none older than `tombstone_ttl_seconds` (a time after the timer's now counts as now);
    /// tombstones beyond `tombstone_limit` evict the
    /// oldest, as in a running manager. Each close waits again for a list: one that no longer
    /// shows the position confirms it, one that still does tracks it again
    /// (`close_unconfirmed`). Returns how many tombstones the book keeps more than before, and
    /// how many closes were put back.
    pub fn restore_remembered(&self, remembered: Remembered<H>) -> (usize, usize) {
        let now = self.timer();
        let ttl = self.config().tombstone_ttl_seconds;
        let fresh = |k: &KeptEntry<H>| now.seconds_since(k.at) <= ttl;
        // A time later than now (the machine's clock was set back between the two processes)
        // is taken as now, as a hold's start is: each lives at most its TTL from here.
        let clamped = |mut k: KeptEntry<H>| {
            k.at = k.at.min(now);
            k
        };
        let Remembered {
            tombstones,
            closing,
        } = remembered;
        let mut tombstones: Vec<_> = tombstones.into_iter().map(clamped).collect();
        tombstones.sort_by_key(|k| k.at);
        let before = self.book.tombstone_count();
        for kept in tombstones.into_iter().filter(fresh) {
            // What the book's limit evicted, or an entry whose key is taken: dropped here, with
            // no lock held.
            drop(self.book.put_back_tombstone(kept));
        }
        let mut closes = 0;
        for kept in closing.into_iter().map(clamped).filter(fresh) {
            if self.book.put_back_close(kept).is_ok() {
                closes += 1;
            }
        }
        let buried = self.book.tombstone_count().saturating_sub(before);
        (buried, closes)
    }

    /// Takes back a state file's orders whose outcome was unknown (after its positions are
    /// tracked: a close's order holds its restored position), each with its warning and
    /// `outcome_unknown` event; a journal, if any, writes each as its order row. Returns how
    /// many were taken back (an open whose key is tracked, or a change of a position the file
    /// did not track, is over and left out).
    fn restore_saved_orders(&self, saved: &[SavedOrder]) -> usize {
        if saved.is_empty() {
            return 0;
        }
        let orders: Vec<(Key, SentOrder)> = saved
            .iter()
            .map(|o| {
                let order = SentOrder {
                    reference: o.reference.clone(),
                    sent_at: o.at,
                    intent: o.intent.clone(),
                };
                (Key::parse(&o.symbol), order)
            })
            .collect();
        let back = self.restore_orders_from(orders.clone(), OrdersFrom::StateFile);
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            for (key, order) in orders.iter().filter(|(k, _)| !back.stale.contains(k)) {
                // A failure is reported by the journal; the row stays queued.
                drop(journal.order_sent(key, order));
            }
        }
        back.opens + back.changes
    }

    /// Why a saved key cannot be taken back by this manager, or `None` when every key of `keys`
    /// fits its `position_mode`: a leg key (`SYMBOL@long`) in one-way mode, or a plain symbol in
    /// hedge mode. Such a key never matches what the lists show (its position would be tracked
    /// twice, once as saved and once imported, and closed twice), so a file or journal written in
    /// the other mode is refused whole; it says which option to pass.
    pub fn misfit_saved_key<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let hedge = self.config().position_mode == crate::reconcile::Mode::Hedge;
        let misfit = keys
            .into_iter()
            .find(|k| (Key::parse(k).leg() == crate::key::Leg::Net) == hedge)?;
        Some(if hedge {
            format!(
                "it holds the one-way key {misfit:?}, but this manager is in hedge mode \
                 (position_mode='hedge'); create the PositionManager with \
                 position_mode='oneway' (the default) to take it back"
            )
        } else {
            format!(
                "it holds the hedge-mode key {misfit:?}, but this manager is in one-way mode \
                 (position_mode='oneway'); create the PositionManager with \
                 position_mode='hedge' to take it back"
            )
        })
    }

    fn ensure_empty_for_load(&self) -> CoreResult<()> {
        let keys = self.book.keys();
        if keys.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = keys.iter().take(5).map(Key::as_str).collect();
        Err(CoreError::Value(format!(
            "load_state needs an empty manager, but it tracks {} position(s) ({}{}); load the \
             state into a new PositionManager before anything else",
            keys.len(),
            shown.join(", "),
            if keys.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        )))
    }
}

/// The load's log line part for `orders` taken back: `""` when none.
fn orders_summary(orders: usize) -> String {
    if orders == 0 {
        String::new()
    } else {
        format!("; {orders} order(s) with an unknown outcome taken back (nothing more is sent for them until the exchange tells)")
    }
}

/// What a start put back besides the tracked positions (tombstones, closes awaiting
/// confirmation, re-open holds), for its log line: `""` when nothing, else `"; ..."` parts.
pub fn remembered_summary(tombstones: usize, closes: usize, held: &[(Key, Timestamp)]) -> String {
    let mut out = String::new();
    if closes > 0 {
        out.push_str(&format!(
            "; {closes} close(s) awaiting confirmation by the next position list"
        ));
    }
    if tombstones > 0 {
        out.push_str(&format!(
            "; {tombstones} removed position(s) remembered (restored if listed again)"
        ));
    }
    if !held.is_empty() {
        let keys: Vec<&str> = held.iter().map(|(k, _)| k.as_str()).collect();
        out.push_str(&format!(
            "; not opening again yet (reopen_hold_seconds): {}",
            keys.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use serde_json::value::RawValue;

    use super::*;
    use crate::book::{PendingOrder, SharedPosition, Unknown};
    use crate::clock::Timestamp;
    use crate::clock::{Clock, ManualClock};
    use crate::manager::testing::{listed, manager, manager_with_clock, priced, temp_path, Fake};
    use crate::manager::ManagerConfig;
    use crate::position::PositionState;

    fn track(m: &Manager<u32>, symbol: &str, side: &str, handle: u32) -> SharedPosition {
        let mut state = PositionState::new(
            symbol,
            side,
            100.0,
            2.0,
            10.0,
            if side == "long" { 95.0 } else { 105.0 },
            Some(if side == "long" { 120.0 } else { 80.0 }),
            Timestamp(1_700_000_000_000_000),
        );
        state.highest_price = Some(111.5);
        state.trailing_stop_activated = true;
        state.partial_exits_taken = 1;
        state.max_favorable_excursion = 0.25;
        let p = share(state);
        m.book().insert(symbol, p.clone(), handle);
        p
    }

    fn extra_of(handle: u32) -> SavedExtra {
        let mut values = Extra::new();
        values.insert(
            "handle".into(),
            RawValue::from_string(handle.to_string()).unwrap(),
        );
        SavedExtra {
            values,
            skipped: if handle == 2 {
                vec!["callback".into()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn save_then_load_into_a_new_manager_keeps_state_order_and_extras() {
        let path = temp_path("roundtrip");
        let fake = Fake::default();
        let m = manager(&fake, ManagerConfig::default());
        let a = track(&m, "A/USDT:USDT", "long", 1);
        track(&m, "B/USDT:USDT", "short", 2);
        assert_eq!(m.save_state(&path, |_, h| Ok(extra_of(*h))).unwrap(), 2);

        let fresh = manager(&fake, ManagerConfig::default());
        let mut seen = Vec::new();
        let n = fresh
            .load_state(&path, |_, extra, _| {
                seen.push(extra["handle"].get().to_owned());
                Ok(100 + seen.len() as u32)
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, vec!["1", "2"]);
        assert_eq!(fresh.book().keys(), vec!["A/USDT:USDT", "B/USDT:USDT"]);
        let (p, h) = fresh.book().get("A/USDT:USDT").unwrap();
        assert_eq!(h, 101);
        assert_eq!(*p.lock(), a.lock().snapshot());
        let kinds: Vec<_> = fresh.events().all().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Loaded, EventKind::Loaded]);
        assert_eq!(fresh.events().all()[0].reason, LOADED_REASON);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn loaded_positions_the_exchange_lacks_are_removed_by_the_next_cycle() {
        let path = temp_path("cycle");
        let fake = Fake::default();
        let m = manager(&fake, ManagerConfig::default());
        track(&m, "A/USDT:USDT", "long", 1);
        track(&m, "B/USDT:USDT", "long", 2);
        m.save_state(&path, |_, h| Ok(extra_of(*h))).unwrap();

        fake.0.lock().positions = vec![listed("A/USDT:USDT", "long", 2.0, 100.0)];
        let fresh = manager(&fake, ManagerConfig::default());
        fresh.load_state(&path, |_, _, _| Ok(7)).unwrap();
        fresh.reconcile_positions().unwrap();
        assert_eq!(fresh.book().keys(), vec!["A/USDT:USDT"]);
        let (p, _) = fresh.book().get("A/USDT:USDT").unwrap();
        assert_eq!(p.lock().highest_price, Some(111.5));
        assert_eq!(p.lock().stop_loss, 95.0);
        let removed: Vec<_> = fresh
            .events()
            .all()
            .into_iter()
            .filter(|e| e.kind == EventKind::Removed)
            .map(|e| e.symbol)
            .collect();
        assert_eq!(removed, vec!["B/USDT:USDT"]);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn loading_needs_an_empty_book_and_a_bad_file_builds_nothing() {
        let path = temp_path("refused");
        let fake = Fake::default();
        let m = manager(&fake, ManagerConfig::default());
        track(&m, "A/USDT:USDT", "long", 1);
        m.save_state(&path, |_, _| Ok(SavedExtra::default()))
            .unwrap();

        let err = m.load_state(&path, |_, _, _| Ok(0)).unwrap_err();
        assert!(matches!(&err, CoreError::Value(msg) if msg.contains("needs an empty manager")));

        let fresh = manager(&fake, ManagerConfig::default());
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        let err = fresh.load_state(&path, |_, _, _| Ok(0)).unwrap_err();
        assert!(matches!(&err, CoreError::State(msg) if msg.contains("truncated")));
        assert!(fresh.book().is_empty() && fresh.events().is_empty());

        // A handle that cannot be made stops the load before anything is tracked.
        fs::write(&path, &text).unwrap();
        let err = fresh
            .load_state(&path, |_, _, _| Err(CoreError::Value("no handle".into())))
            .unwrap_err();
        assert_eq!(err, CoreError::Value("no handle".into()));
        assert!(fresh.book().is_empty() && fresh.events().is_empty());
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_position_tracked_while_handles_are_made_stops_the_load() {
        let path = temp_path("race");
        let fake = Fake::default();
        let m = Arc::new(manager(&fake, ManagerConfig::default()));
        track(&m, "A/USDT:USDT", "long", 1);
        track(&m, "B/USDT:USDT", "long", 2);
        m.save_state(&path, |_, _| Ok(SavedExtra::default()))
            .unwrap();

        let fresh = manager(&fake, ManagerConfig::default());
        let err = fresh
            .load_state(&path, |symbol, _, _| {
                if symbol == "B/USDT:USDT" {
                    // Another thread assigns B while the handles are being made.
                    track(&fresh, "B/USDT:USDT", "long", 9);
                }
                Ok(1)
            })
            .unwrap_err();
        assert!(err.to_string().contains("needs an empty manager"), "{err}");
        assert_eq!(fresh.book().keys(), vec!["B/USDT:USDT"]);
        assert!(fresh.events().is_empty());
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A manager that tracks `A` (listed by the fake), remembers `T` as a tombstone (the list
    /// showed it at 2.5 contracts before it went), awaits the confirmation of its close of `C`,
    /// and holds re-opens of `H` — all started at `T0` — with its handles 1, 2 and 3.
    fn remembering(fake: &Fake, clock: Arc<ManualClock>) -> Manager<u32> {
        let m = manager_with_clock(fake, holding(), clock.clone());
        track(&m, "A/USDT:USDT", "long", 1);
        let t = track(&m, "T/USDT:USDT", "long", 2);
        fake.0.lock().positions = vec![
            listed("A/USDT:USDT", "long", 2.0, 100.0),
            listed("T/USDT:USDT", "long", 2.0, 100.0),
        ];
        m.reconcile_positions().unwrap();
        let t0 = clock.now();
        assert!(m.book().bury("T/USDT:USDT", &t, t0).is_some());
        let c = track(&m, "C/USDT:USDT", "short", 3);
        assert!(m.book().closed("C/USDT:USDT", &c, t0, None, None));
        m.restore_reopen_holds([(Key::parse("H/USDT:USDT"), t0)]);
        m
    }

    fn holding() -> ManagerConfig {
        ManagerConfig {
            reopen_hold_seconds: 300.0,
            ..ManagerConfig::default()
        }
    }

    #[test]
    fn tombstones_closes_and_holds_survive_a_save_and_load() {
        let path = temp_path("remembered");
        let fake = priced(100.0);
        let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
        let t0 = clock.now();
        let m = remembering(&fake, clock.clone());
        let before = m.book().contents().remembered;
        let listing = before.tombstones[0].listed;
        assert!(
            listing.is_some(),
            "the list's fingerprint is kept with the tombstone"
        );
        assert_eq!(m.save_state(&path, |_, h| Ok(extra_of(*h))).unwrap(), 1);

        clock.advance(100.0);
        let fresh = manager_with_clock(&fake, holding(), clock.clone());
        let mut made = Vec::new();
        let n = fresh
            .load_state(&path, |symbol, extra, _| {
                made.push((symbol.to_owned(), extra["handle"].get().to_owned()));
                Ok(10 + made.len() as u32)
            })
            .unwrap();
        assert_eq!(n, 1, "the count is of tracked positions");
        assert_eq!(
            made,
            [
                ("A/USDT:USDT", "1"),
                ("T/USDT:USDT", "2"),
                ("C/USDT:USDT", "3")
            ]
            .map(|(s, h)| (s.to_owned(), h.to_owned()))
        );
        assert_eq!(fresh.book().keys(), vec!["A/USDT:USDT"]);
        let after = fresh.book().contents().remembered;
        let kept = |r: &[KeptEntry<u32>]| -> Vec<(String, u32, Timestamp)> {
            r.iter()
                .map(|k| (k.key.to_string(), k.handle, k.at))
                .collect()
        };
        assert_eq!(kept(&after.tombstones), [("T/USDT:USDT".into(), 12, t0)]);
        assert_eq!(after.tombstones[0].listed, listing);
        assert_eq!(kept(&after.closing), [("C/USDT:USDT".into(), 13, t0)]);
        assert_eq!(
            fresh.reopen_holds(),
            vec![(Key::parse("H/USDT:USDT"), t0)],
            "the hold keeps its start: 200 s are left, not 300"
        );
        let kinds: Vec<_> = fresh.events().all().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EventKind::Loaded],
            "only tracked positions are loaded"
        );

        // The next list: T is listed again as it was (restored, with its handle), C too (the
        // close did not happen: tracked again, its handle kept).
        fake.0.lock().positions = vec![
            listed("A/USDT:USDT", "long", 2.0, 100.0),
            listed("T/USDT:USDT", "long", 2.0, 100.0),
            listed("C/USDT:USDT", "short", 2.0, 100.0),
        ];
        fresh.reconcile_positions().unwrap();
        let kinds: Vec<_> = fresh.events().all().iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&EventKind::Restored), "{kinds:?}");
        assert!(kinds.contains(&EventKind::CloseUnconfirmed), "{kinds:?}");
        assert!(!kinds.contains(&EventKind::Imported), "{kinds:?}");
        assert_eq!(fresh.book().get("T/USDT:USDT").unwrap().1, 12);
        assert_eq!(fresh.book().get("C/USDT:USDT").unwrap().1, 13);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A journal that keeps what the manager told it of remembered positions put back.
    #[derive(Default)]
    struct RememberingJournal(parking_lot::Mutex<Vec<Vec<String>>>);

    impl crate::journal_hook::EventJournal for RememberingJournal {
        fn record(&self, _: &crate::events::Event, _: &SharedPosition) {}
        fn checkpoint(&self) {}
        fn closes_settled(&self, _: &[Key]) {}
        fn holds_changed(&self) {}
        fn order_sent(
            &self,
            _: &Key,
            _: &crate::manager::in_flight::SentOrder,
        ) -> Result<(), String> {
            Ok(())
        }
        fn orders_settled(&self, _: &[Key]) {}
        fn remembered(&self, keys: &[Key]) {
            let keys = keys.iter().map(|k| k.as_str().to_owned()).collect();
            self.0.lock().push(keys);
        }
    }

    #[test]
    fn a_journal_is_told_of_the_remembered_positions_a_load_put_back() {
        let path = temp_path("journaled");
        let fake = priced(100.0);
        let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
        remembering(&fake, clock.clone())
            .save_state(&path, |_, h| Ok(extra_of(*h)))
            .unwrap();
        let fresh = manager_with_clock(&fake, holding(), clock.clone());
        let journal = Arc::new(RememberingJournal::default());
        fresh.set_journal(Some(journal.clone()));
        fresh.load_state(&path, |_, _, _| Ok(0)).unwrap();
        assert_eq!(
            *journal.0.lock(),
            vec![vec!["T/USDT:USDT".to_owned(), "C/USDT:USDT".to_owned()]],
            "once, with the tombstone and the close"
        );

        // Nothing put back (all over by now): nothing to tell.
        clock.advance(2.0 * 86_400.0);
        let later = manager_with_clock(&fake, holding(), clock);
        let journal = Arc::new(RememberingJournal::default());
        later.set_journal(Some(journal.clone()));
        later.load_state(&path, |_, _, _| Ok(0)).unwrap();
        assert!(journal.0.lock().is_empty());
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn what_is_over_by_the_load_is_left_out() {
        let path = temp_path("over");
        let fake = priced(100.0);
        let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
        let m = remembering(&fake, clock.clone());
        m.save_state(&path, |_, h| Ok(extra_of(*h))).unwrap();

        // The hold (300 s) is over, the tombstone and the close are not (one day).
        clock.advance(301.0);
        let fresh = manager_with_clock(&fake, holding(), clock.clone());
        fresh.load_state(&path, |_, _, _| Ok(0)).unwrap();
        assert!(fresh.reopen_holds().is_empty());
        assert_eq!(fresh.book().tombstone_count(), 1);
        assert!(fresh.book().awaiting_close("C/USDT:USDT", None).is_some());

        // A day later, neither is kept.
        clock.advance(86_400.0);
        let later = manager_with_clock(&fake, holding(), clock.clone());
        later.load_state(&path, |_, _, _| Ok(0)).unwrap();
        let BookContents {
            tracked,
            remembered,
            ..
        } = later.book().contents();
        assert_eq!(tracked.len(), 1);
        assert!(remembered.tombstones.is_empty() && remembered.closing.is_empty());

        // A manager that keeps no tombstones and holds nothing takes neither.
        let none = manager_with_clock(
            &fake,
            ManagerConfig {
                tombstone_limit: 0,
                ..ManagerConfig::default()
            },
            clock,
        );
        none.load_state(&path, |_, _, _| Ok(0)).unwrap();
        assert_eq!(none.book().tombstone_count(), 0);
        assert!(none.reopen_holds().is_empty());
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn what_a_process_ahead_of_this_one_kept_lives_its_ttl_from_the_load() {
        // The saving process's timer read an hour later than this one's (the clock was set
        // back between the two): the kept times are taken as the load's now, so a TTL of
        // 600 s ends 600 s after the load, not an hour and 600 s after it.
        let path = temp_path("ahead");
        let fake = priced(100.0);
        let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
        remembering(&fake, clock.clone())
            .save_state(&path, |_, h| Ok(extra_of(*h)))
            .unwrap();
        clock.advance(-3_600.0);
        let config = ManagerConfig {
            tombstone_ttl_seconds: 600.0,
            ..holding()
        };
        let fresh = manager_with_clock(&fake, config, clock.clone());
        fresh.load_state(&path, |_, _, _| Ok(0)).unwrap();
        let remembered = fresh.book().contents().remembered;
        let at = |r: &[KeptEntry<u32>]| r.iter().map(|k| k.at).collect::<Vec<_>>();
        assert_eq!(at(&remembered.tombstones), [clock.now()]);
        assert_eq!(at(&remembered.closing), [clock.now()]);
        assert_eq!(fresh.reopen_holds()[0].1, clock.now());

        clock.advance(601.0);
        fake.0.lock().positions = vec![listed("A/USDT:USDT", "long", 2.0, 100.0)];
        fresh.reconcile_positions().unwrap();
        // T's tombstone is over; the list confirmed C's close, which leaves its own end, dated
        // now.
        let left = fresh.book().contents().remembered;
        let keys = |r: &[KeptEntry<u32>]| {
            r.iter()
                .map(|k| (k.key.to_string(), k.at))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&left.tombstones),
            [("C/USDT:USDT".to_owned(), clock.now())]
        );
        assert!(left.closing.is_empty());
        assert!(
            fresh.reopen_holds().is_empty(),
            "the hold (300 s) is over too"
        );
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_file_without_the_remembered_sections_is_the_same_file_as_before() {
        // Nothing remembered: the file has exactly the fields older versions wrote.
        let path = temp_path("plain");
        let fake = Fake::default();
        let m = manager(&fake, ManagerConfig::default());
        track(&m, "A/USDT:USDT", "long", 1);
        m.save_state(&path, |_, h| Ok(extra_of(*h))).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        for absent in ["tombstones", "closing", "holds", "orders"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A manager that tracks `C` (its close's outcome unknown) and holds two opens whose
    /// outcome is unknown: `O` (sent with a client id) and `R` (the bot's client's limit open
    /// whose order `l7` may still rest).
    fn with_orders_out(fake: &Fake) -> Manager<u32> {
        use super::super::in_flight::SentIntent;
        use crate::manager::testing::open_sent;
        let m = manager(fake, ManagerConfig::default());
        track(&m, "C/USDT:USDT", "long", 1);
        let mut resting = open_sent("r", None);
        if let SentIntent::Open { intent, .. } = &resting.intent {
            resting.intent = SentIntent::resting_open(intent, "l7");
        }
        let close = SentOrder {
            reference: "pmc1".to_owned(),
            sent_at: Timestamp(1_735_689_000_000_000),
            intent: SentIntent::Change {
                op: crate::reconcile::Op::Close,
                before: 2.0,
                client_order_id: Some("pmc1".to_owned()),
                reason: "stop_loss".to_owned(),
                price: Some(94.0),
                target_bit: 0,
            },
        };
        let back = m.restore_orders(vec![
            (Key::parse("O/USDT:USDT"), open_sent("pmo1", Some("pmo1"))),
            (Key::parse("R/USDT:USDT"), resting),
            (Key::parse("C/USDT:USDT"), close),
        ]);
        assert_eq!((back.opens, back.changes), (2, 1));
        m
    }

    #[test]
    fn orders_with_an_unknown_outcome_survive_a_save_and_load() {
        let path = temp_path("orders");
        let fake = priced(100.0);
        let m = with_orders_out(&fake);
        let pending = m.book().contents().pending;
        assert_eq!(pending.len(), 3);
        assert_eq!(m.save_state(&path, |_, h| Ok(extra_of(*h))).unwrap(), 1);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""resting_order_id": "l7""#), "{text}");

        // Lists may lag a fill by ten minutes on this venue (the outcome rules' grace).
        let config = ManagerConfig {
            outcome_grace_seconds: 600.0,
            ..ManagerConfig::default()
        };
        let fresh = manager(&fake, config);
        assert_eq!(fresh.load_state(&path, |_, _, _| Ok(9)).unwrap(), 1);
        // The same orders as they were (an order's book mark is the new book's).
        let unmarked = |orders: Vec<(Key, PendingOrder)>| -> Vec<(Key, PendingOrder)> {
            orders
                .into_iter()
                .map(|(k, o)| match o {
                    PendingOrder::Change(u) => (k, PendingOrder::Change(Unknown { at: 0, ..u })),
                    open => (k, open),
                })
                .collect()
        };
        assert_eq!(unmarked(fresh.book().contents().pending), unmarked(pending));
        let unknown: Vec<_> = fresh
            .events()
            .all()
            .iter()
            .filter(|e| e.kind == EventKind::OutcomeUnknown)
            .map(|e| (e.symbol.to_string(), e.reason.clone()))
            .collect();
        assert_eq!(
            unknown,
            [
                ("C/USDT:USDT", "close"),
                ("O/USDT:USDT", "open"),
                ("R/USDT:USDT", "open")
            ]
            .map(|(s, r)| (s.to_owned(), r.to_owned()))
        );
        // Nothing goes out for them: the bot's opens of O and R send nothing.
        for symbol in ["O/USDT:USDT", "R/USDT:USDT"] {
            let request = crate::manager::testing::open_request(symbol, "BUY");
            assert!(!fresh.open_position(&request).unwrap(), "{symbol}");
        }
        assert_eq!(crate::manager::testing::orders_sent(&fake), 0);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_saved_order_with_numbers_no_order_could_have_refuses_the_file() {
        let path = temp_path("bad-order");
        let fake = priced(100.0);
        let m = with_orders_out(&fake);
        m.save_state(&path, |_, h| Ok(extra_of(*h))).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(
            &path,
            text.replace(r#""leverage": 5.0"#, r#""leverage": 0.5"#),
        )
        .unwrap();
        let fresh = manager(&fake, ManagerConfig::default());
        let err = fresh.load_state(&path, |_, _, _| Ok(9)).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"order 1 ("O/USDT:USDT"): intent: leverage must be a finite number of at least 1, got 0.5"#),
            "{err}"
        );
        assert!(fresh.book().keys().is_empty(), "nothing loaded");
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
