//! `sync_existing_positions()` and `reconcile_positions()`: the book against the whole list.
//!
//! Both read one list and apply it through the planner ([`super::lists`]): sync imports and
//! restores and removes nothing (as the original); reconcile also removes what the exchange no
//! longer lists, under the same rules as the update cycle. Imports are [`super::imports`].

use log::Level;

use super::lists::ListRead;
use super::messages::{py_set_repr, Channel};
use super::Manager;
use crate::error::CoreResult;
use crate::key::Key;
use crate::reconcile::Purpose;

pub use super::imports::FALLBACK_LEVERAGE;

impl<H: Clone + Send + Sync> Manager<H> {
    /// `sync_existing_positions()`: imports the exchange's positions the book does not track
    /// (and restores the very positions it removed, if listed again). Returns how many were
    /// imported or restored. Only an interruption is an error.
    pub fn sync_existing_positions(&self) -> CoreResult<usize> {
        self.log(Channel::Main, Level::Info, || {
            "Syncing existing positions from exchange...".to_owned()
        });
        let mut list = match self.read_list()? {
            Ok(list) => list,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error syncing existing positions: {e}")
                });
                return Ok(0);
            }
        };
        if list.snapshot.entries == 0 {
            self.log(Channel::Main, Level::Info, || {
                "No existing positions found on exchange".to_owned()
            });
            // An empty list still confirms closes and resolves unknown orders.
            self.apply_list(&mut list, Purpose::Sync, None, "closed_externally")?;
            return Ok(0);
        }
        self.log_tracked_skips(&list);
        let report = self.apply_list(&mut list, Purpose::Sync, None, "closed_externally")?;
        let synced = report.imported + report.restored;
        if synced > 0 {
            self.log(Channel::Main, Level::Info, || {
                format!("Successfully synced {synced} existing position(s)")
            });
        }
        Ok(synced)
    }

    /// The original's debug line for every listed symbol already tracked, and a warning for
    /// every untracked symbol listed only as a placeholder (no size or no side).
    fn log_tracked_skips(&self, list: &ListRead) {
        for (symbol, why) in &list.snapshot.phantoms {
            if !self.book().contains(symbol) {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Skipping position entry for {symbol}: {why} (no open position)")
                });
            }
        }
        if !self.log_enabled(Channel::Main, Level::Debug) {
            return;
        }
        for (symbol, _) in list.snapshot.symbols_in_order() {
            if self.book().contains(symbol) {
                self.log(Channel::Main, Level::Debug, || {
                    format!("Position {symbol} already tracked, skipping sync")
                });
            }
        }
    }

    /// `reconcile_positions()`: imports positions only the exchange has and removes those only
    /// the book has (under the same rules as the update cycle). Returns the number of changes.
    /// Only an interruption is an error.
    pub fn reconcile_positions(&self) -> CoreResult<usize> {
        self.log(Channel::Main, Level::Info, || {
            "Starting position reconciliation with exchange...".to_owned()
        });
        let mut list = match self.read_list()? {
            Ok(list) => list,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error during position reconciliation: {e}")
                });
                return Ok(0);
            }
        };
        let local: Vec<Key> = self.book().keys();
        let only_exchange: Vec<&str> = list
            .snapshot
            .symbols_in_order()
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| !local.iter().any(|k| k.symbol() == *s))
            .collect();
        let only_local: Vec<&str> = local
            .iter()
            .filter(|k| !list.snapshot.lists(k.symbol()))
            .map(Key::as_str)
            .collect();
        if !only_exchange.is_empty() {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Found {} positions on exchange not tracked locally: {}",
                    only_exchange.len(),
                    py_set_repr(&only_exchange)
                )
            });
        }
        if !only_local.is_empty() {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Found {} positions tracked locally but not on exchange: {}",
                    only_local.len(),
                    py_set_repr(&only_local)
                )
            });
        }
        let report = self.apply_list(&mut list, Purpose::Reconcile, None, "orphaned")?;
        for key in &report.removed {
            self.log(Channel::Main, Level::Warn, || {
                format!("Removing orphaned position: {key}")
            });
        }
        let changes = report.imported + report.removed.len();
        if changes == 0 {
            self.log(Channel::Main, Level::Info, || {
                "Position reconciliation complete: all positions in sync".to_owned()
            });
        } else {
            self.log(Channel::Main, Level::Info, || {
                format!("Position reconciliation complete: {changes} discrepancies resolved")
            });
        }
        Ok(changes)
    }
}
