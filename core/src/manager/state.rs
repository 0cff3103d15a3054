//! `save_state` and `load_state`: the book to and from a state file ([`crate::persist`]).
//!
//! Both take a callback for the caller's own per-position data (the binding: the Python object's
//! JSON-serialisable attributes), called with no lock held.

use std::path::Path;

use log::Level;

use super::{Channel, Manager};
use crate::book::{share, SharedPosition};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::key::Key;
use crate::persist::{self, Extra, SavedPosition, StateFile};

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
    /// Saves every tracked position, in book order, to `path` atomically; returns how many.
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
        let entries = self.book.entries();
        let mut positions = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for (symbol, position, handle) in &entries {
            let SavedExtra { values, skipped: s } = extra(symbol.as_str(), handle)?;
            if !s.is_empty() {
                skipped.push(format!("{symbol} ({})", s.join(", ")));
            }
            let state = position.lock().snapshot();
            positions.push(SavedPosition {
                symbol: symbol.to_string(),
                state,
                extra: values,
            });
        }
        drop(entries);
        if !skipped.is_empty() {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "save_state: skipped attributes that are not JSON-serialisable: {}",
                    skipped.join("; ")
                )
            });
        }
        let count = positions.len();
        persist::save(path, &StateFile::new(self.now(), positions))?;
        self.log(Channel::Main, Level::Debug, || {
            format!("Saved {count} positions to {}", path.display())
        });
        Ok(count)
    }

    /// Fills an empty book from the state file at `path`; returns how many positions it loaded.
    ///
    /// All or nothing: the file is read, checked and validated completely, then
    /// `attach(saved, position)` makes each handle (called with no lock held; an error stops the
    /// load before anything is tracked), and only then are the positions put into the book, each
    /// recorded as a `loaded` event. A book that is not empty is refused
    /// ([`CoreError::Value`]) before the file is read.
    pub fn load_state<F>(&self, path: &Path, mut attach: F) -> CoreResult<usize>
    where
        F: FnMut(&SavedPosition, &SharedPosition) -> CoreResult<H>,
    {
        self.ensure_empty_for_load()?;
        let file = persist::load(path)?;
        let mut staged = Vec::with_capacity(file.positions.len());
        for saved in &file.positions {
            let position = share(saved.state.clone());
            let handle = attach(saved, &position)?;
            staged.push((saved.symbol.as_str(), position, handle));
        }
        self.ensure_empty_for_load()?;
        let mut inserted: Vec<(&str, SharedPosition)> = Vec::with_capacity(staged.len());
        for (symbol, position, handle) in staged {
            match self
                .book
                .insert_if_free(&Key::parse(symbol), position.clone(), handle)
            {
                Ok(buried) => {
                    drop(buried);
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
        for (symbol, position) in &inserted {
            self.record(symbol, position, EventKind::Loaded, LOADED_REASON, None);
        }
        let count = inserted.len();
        self.log(Channel::Main, Level::Info, || {
            format!("Loaded {count} positions from {}", path.display())
        });
        Ok(count)
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::sync::Arc;

    use serde_json::value::RawValue;

    use super::*;
    use crate::book::SharedPosition;
    use crate::clock::Timestamp;
    use crate::manager::testing::{listed, manager, Fake};
    use crate::manager::ManagerConfig;
    use crate::position::PositionState;

    fn temp_path(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pmrs-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d.join("state.json")
    }

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
            .load_state(&path, |saved, _| {
                seen.push(saved.extra["handle"].get().to_owned());
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
        fresh.load_state(&path, |_, _| Ok(7)).unwrap();
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

        let err = m.load_state(&path, |_, _| Ok(0)).unwrap_err();
        assert!(matches!(&err, CoreError::Value(msg) if msg.contains("needs an empty manager")));

        let fresh = manager(&fake, ManagerConfig::default());
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        let err = fresh.load_state(&path, |_, _| Ok(0)).unwrap_err();
        assert!(matches!(&err, CoreError::State(msg) if msg.contains("truncated")));
        assert!(fresh.book().is_empty() && fresh.events().is_empty());

        // A handle that cannot be made stops the load before anything is tracked.
        fs::write(&path, &text).unwrap();
        let err = fresh
            .load_state(&path, |_, _| Err(CoreError::Value("no handle".into())))
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
            .load_state(&path, |saved, _| {
                if saved.symbol == "B/USDT:USDT" {
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
}
