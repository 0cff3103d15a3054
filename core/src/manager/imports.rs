//! Positions the manager starts tracking from what the exchange lists: imports (sync, reconcile,
//! the new side of a flip) and the position an open with an unknown outcome turned out to have
//! opened.
//!
//! Fixes over the original (§6.17, §6.18, §6.21): leverage is kept as a float and an invalid one
//! (non-numeric, zero, negative, NaN) falls back to 10 with a warning; a missing entry price is
//! estimated from the current price with a warning and the position is flagged; a failed ticker
//! imports at the entry's mark (or entry) price instead of leaving a listed position unmanaged;
//! an import never overwrites a position that was opened or closed meanwhile.

use log::Level;

use super::lists::ListRead;
use super::messages::{leverage_text, Channel};
use super::Manager;
use crate::book::{share, OpenIntent};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::exchange::Field;
use crate::format::{format_price, py_fixed, py_percent, py_repr_float};
use crate::key::{Key, Side};
use crate::position::PositionState;
use crate::snapshot::{Listed, Seen};

/// Default leverage when the exchange gives none (or an invalid one), as the original.
pub const FALLBACK_LEVERAGE: f64 = 10.0;

/// Which import: sync warns about leverage and adjusts extremes; reconcile is terser; a flip's
/// new side is imported like a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    Sync,
    Reconcile,
    Flip,
    /// In place of a position replaced on its own side.
    Replacement,
}

/// How one import ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Import {
    Imported,
    Skipped,
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Imports the entry `list` shows for `key`. An interruption passes up; `Ok(Err(..))` is a
    /// failure to report (the entry is skipped).
    pub(crate) fn import_listed(
        &self,
        key: &Key,
        list: &ListRead,
        flavour: Flavour,
    ) -> CoreResult<CoreResult<Import>> {
        let Seen::Listed(listed) = list.snapshot.seen(key) else {
            return Ok(Ok(Import::Skipped));
        };
        let symbol = key.as_str();
        if self.book().contains(symbol) || self.book().is_opening(symbol) {
            self.log(Channel::Main, Level::Debug, || {
                format!("Position {symbol} already tracked, skipping sync")
            });
            return Ok(Ok(Import::Skipped));
        }
        let side = listed.side;
        let leverage = self.entry_leverage(symbol, listed, flavour);
        let Some((current_price, _)) =
            self.import_price(key, listed.mark_price, listed.entry_price)?
        else {
            return Ok(Ok(Import::Skipped));
        };
        let entry_price = match listed.entry_price {
            Some(e) => e,
            None => {
                let shown = listed
                    .entry_problem
                    .clone()
                    .unwrap_or_else(|| "entryPrice is None".to_owned());
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Entry price missing or invalid for {symbol} ({shown}); estimating it from the current price {}",
                        format_price(current_price)
                    )
                });
                current_price
            }
        };
        let is_long = side == Side::Long;
        // As the original: stop and target from the current price (5 % / 15 %).
        let (stop_loss, take_profit) = if is_long {
            (current_price * 0.95, current_price * 1.15)
        } else {
            (current_price * 1.05, current_price * 0.85)
        };
        let amount = listed.contracts;
        let mut state = PositionState::new(
            key.symbol(),
            side.as_str(),
            entry_price,
            amount,
            leverage,
            stop_loss,
            Some(take_profit),
            self.now(),
        );
        state.entry_price_estimated = listed.entry_price.is_none();
        if let Some(size) = listed.contract_size {
            state.contract_size = size;
        }
        if flavour != Flavour::Reconcile {
            if is_long && current_price > entry_price {
                state.highest_price = Some(current_price);
            } else if !is_long && current_price < entry_price {
                state.lowest_price = Some(current_price);
            }
        }
        let r = state.leveraged_pnl(current_price, false);
        let position = share(state);
        let handle = match self.handles.make(&position) {
            Ok(h) => h,
            Err(e) if e.is_interrupt() => return Err(e),
            Err(e) => return Ok(Err(e)),
        };
        let requested_at = list.snapshot.requested_at;
        match self
            .book()
            .insert_import(key, position.clone(), handle, requested_at)
        {
            Ok(displaced) => drop(displaced),
            Err(given_back) => {
                // Opened, assigned or closed by us meanwhile: the live state wins over an import.
                drop(given_back);
                self.log(Channel::Main, Level::Debug, || {
                    format!("Position {symbol} changed while it was being imported, skipping")
                });
                return Ok(Ok(Import::Skipped));
            }
        }
        let reason = match flavour {
            Flavour::Sync => "sync",
            Flavour::Reconcile => "reconcile",
            Flavour::Flip => "side_flipped",
            Flavour::Replacement => "replaced_externally",
        };
        self.record(symbol, &position, EventKind::Imported, reason, None);
        let lev = leverage_text(leverage);
        let side = side.as_str();
        match flavour {
            Flavour::Sync | Flavour::Flip | Flavour::Replacement => {
                self.log(Channel::Main, Level::Info, || {
                    format!(
                        "Synced position: {symbol} {side} @ {}, Contracts: {}, Leverage: {lev}x, SL: {}, TP: {}",
                        py_fixed(entry_price, 2),
                        py_fixed(amount, 4),
                        py_fixed(stop_loss, 2),
                        py_fixed(take_profit, 2)
                    )
                });
                self.log(Channel::Main, Level::Info, || {
                    format!(
                        "Synced {side} position: {symbol} @ {}, Current: {}, Amount: {}, Leverage: {lev}x, P/L: {}, Stop Loss: {}, Take Profit: {}",
                        format_price(entry_price),
                        format_price(current_price),
                        py_repr_float(amount),
                        py_percent(r, 2, false),
                        format_price(stop_loss),
                        format_price(take_profit)
                    )
                });
            }
            Flavour::Reconcile => {
                self.log(Channel::Main, Level::Info, || {
                    format!(
                        "Reconciled position: {symbol} {side} @ {}, Contracts: {}, Leverage: {lev}x",
                        py_fixed(entry_price, 2),
                        py_fixed(amount, 4)
                    )
                });
            }
        }
        Ok(Ok(Import::Imported))
    }

    /// The entry's leverage: `leverage`, else `info.realLeverage` (sync only), else 10; an
    /// invalid value (not a number, zero, negative, NaN) falls back to 10 with a warning.
    fn entry_leverage(&self, symbol: &str, listed: &Listed, flavour: Flavour) -> f64 {
        let context = || {
            format!(
                "Position data: contracts={}, side={}",
                py_repr_float(listed.contracts),
                listed.side
            )
        };
        let sync = flavour != Flavour::Reconcile;
        let (field, label) = match (&listed.leverage, sync) {
            (Field::Absent | Field::Null, true) => (&listed.real_leverage, "realLeverage"),
            (f, _) => (f, "leverage"),
        };
        if matches!(field, Field::Absent | Field::Null) {
            if sync {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Leverage not found for {symbol}, defaulting to 10x. {}",
                        context()
                    )
                });
            }
            return FALLBACK_LEVERAGE;
        }
        match valid_leverage(field) {
            Ok(l) => l,
            Err(_) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Invalid {label} value '{}' for {symbol}, defaulting to 10x. {}",
                        field.display(),
                        context()
                    )
                });
                FALLBACK_LEVERAGE
            }
        }
    }

    /// An open whose outcome was unknown turned out to have opened what `list` shows: track it
    /// with the targets the open asked for, at the exchange's size and entry.
    pub(crate) fn track_resolved_open(
        &self,
        key: &Key,
        intent: &OpenIntent,
        list: &ListRead,
    ) -> CoreResult<bool> {
        let Seen::Listed(listed) = list.snapshot.seen(key) else {
            return Ok(false);
        };
        let entry = listed.entry_price.unwrap_or(intent.price);
        self.track_open_outcome(
            key,
            intent,
            listed.contracts,
            entry,
            listed.contract_size,
            false,
        )
    }

    /// Tracks what an open with an unknown outcome turned out to have opened: `contracts` at
    /// `entry`, with the intent's stop and target (an `opened` event, reason `open`). `unlisted`:
    /// only the order says so, no list has shown it yet (its removal waits for the outcome
    /// rules). False when the key was resolved elsewhere meanwhile.
    pub(crate) fn track_open_outcome(
        &self,
        key: &Key,
        intent: &OpenIntent,
        contracts: f64,
        entry: f64,
        contract_size: Option<f64>,
        unlisted: bool,
    ) -> CoreResult<bool> {
        let position = self.opened_state(key, intent, contracts, entry);
        if let Some(size) = contract_size {
            position.lock().contract_size = size;
        }
        let handle = match self.handles.make(&position) {
            Ok(h) => h,
            Err(e) if e.is_interrupt() => return Err(e),
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error opening position: {e}")
                });
                return Ok(false);
            }
        };
        if self.book().open_intent(key.as_str()).is_none() {
            return Ok(false); // resolved elsewhere meanwhile
        }
        drop(
            self.book()
                .finish_open(key, position.clone(), handle, unlisted),
        );
        let symbol = key.as_str();
        self.log(Channel::Main, Level::Warn, || {
            format!(
                "Open of {symbol} whose answer was lost went through: tracking {} contracts @ {}",
                py_repr_float(contracts),
                format_price(entry)
            )
        });
        self.record_full(
            symbol,
            &position,
            EventKind::Opened,
            "open",
            None,
            None,
            intent.client_order_id.as_deref(),
        );
        Ok(true)
    }

    /// A new position for an open: stop and take profit from `entry` as the original sets them.
    pub(crate) fn opened_state(
        &self,
        key: &Key,
        intent: &OpenIntent,
        amount: f64,
        entry: f64,
    ) -> crate::book::SharedPosition {
        let s = intent.stop_loss_percentage;
        let (stop_loss, take_profit) = match intent.side {
            Side::Long => (entry * (1.0 - s), entry * (1.0 + s * 3.0)),
            Side::Short => (entry * (1.0 + s), entry * (1.0 - s * 3.0)),
        };
        share(PositionState::new(
            key.symbol(),
            intent.side.as_str(),
            entry,
            amount,
            intent.leverage,
            stop_loss,
            Some(take_profit),
            self.now(),
        ))
    }
}

/// A usable leverage: a finite number greater than zero (float, not truncated: §6.17).
fn valid_leverage(field: &Field) -> CoreResult<f64> {
    let l = field.to_float()?;
    if l.is_finite() && l > 0.0 {
        Ok(l)
    } else {
        Err(CoreError::Value(format!("invalid leverage {l}")))
    }
}
