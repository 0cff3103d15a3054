//! Imports from the exchange: `sync_existing_positions()` and `reconcile_positions()`.
//!
//! Fixes over the original (§6.17, §6.18, §6.21): leverage is kept as a float and an invalid one
//! (non-numeric, zero, negative, NaN) falls back to 10 with a warning; a missing entry price is
//! estimated from the current price with a warning and the position is flagged; one malformed
//! entry is skipped with a warning and never aborts the rest; a tombstoned position reported
//! again unchanged is restored (same object, same state) instead of being imported fresh; an
//! import never overwrites a position that was opened meanwhile.

use log::Level;

use super::messages::{leverage_text, py_set_repr, Channel};
use super::Manager;
use crate::book::share;
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::exchange::{Field, RawEntry, RawPosition, TickerAnswer};
use crate::format::{format_price, py_fixed, py_percent, py_repr_float};
use crate::position::PositionState;
use crate::reconcile::{fingerprint_of, Snapshot};

/// Default leverage when the exchange gives none (or an invalid one), as the original.
pub const FALLBACK_LEVERAGE: f64 = 10.0;

/// Which import flavour: sync warns about leverage and adjusts extremes; reconcile is terser.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Sync,
    Reconcile,
}

/// How one entry's import ended.
pub(crate) enum Import {
    Imported,
    Restored,
    Skipped,
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// `sync_existing_positions()`: imports the exchange's positions the book does not track.
    /// Returns how many were imported or restored.
    pub fn sync_existing_positions(&self) -> usize {
        self.log(Channel::Main, Level::Info, || {
            "Syncing existing positions from exchange...".to_owned()
        });
        let mark = self.book().seq_mark();
        let entries = match self.exchange().get_open_positions() {
            Ok(entries) => entries,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error syncing existing positions: {e}")
                });
                return 0;
            }
        };
        if entries.is_empty() {
            self.log(Channel::Main, Level::Info, || {
                "No existing positions found on exchange".to_owned()
            });
            return 0;
        }
        let mut synced = 0;
        for (index, entry) in entries.iter().enumerate() {
            let raw = match entry {
                RawEntry::Position(raw) => raw,
                RawEntry::NotAMapping(type_name) => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Skipping malformed position entry #{index}: expected a dict, got {type_name}")
                    });
                    continue;
                }
            };
            let Some(symbol) = raw.symbol() else { continue };
            if self.book().contains(symbol) {
                self.log(Channel::Main, Level::Debug, || {
                    format!("Position {symbol} already tracked, skipping sync")
                });
                continue;
            }
            match self.import_entry(symbol, raw, Flavour::Sync, mark) {
                Ok(Import::Imported | Import::Restored) => synced += 1,
                Ok(Import::Skipped) => {}
                Err(e @ CoreError::Exchange { .. }) => self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Could not import {symbol}, skipping: {}: {e}",
                        e.kind_name()
                    )
                }),
                Err(e) => self.log(Channel::Main, Level::Warn, || {
                    format!("Skipping malformed position entry for {symbol}: {e}")
                }),
            }
        }
        if synced > 0 {
            self.log(Channel::Main, Level::Info, || {
                format!("Successfully synced {synced} existing position(s)")
            });
        }
        synced
    }

    /// `reconcile_positions()`: imports positions only the exchange has and removes those only
    /// the book has (under the same rules as the update cycle). Returns the number of changes.
    pub fn reconcile_positions(&self) -> usize {
        self.log(Channel::Main, Level::Info, || {
            "Starting position reconciliation with exchange...".to_owned()
        });
        let mark = self.book().seq_mark();
        let entries = match self.exchange().get_open_positions() {
            Ok(entries) => entries,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error during position reconciliation: {e}")
                });
                return 0;
            }
        };
        let snapshot = Snapshot::from_entries(&entries, mark);
        let local: Vec<String> = self.book().keys();
        let mut only_exchange: Vec<&str> = Vec::new();
        for e in &entries {
            if let RawEntry::Position(raw) = e {
                if let Some(s) = raw.symbol() {
                    if !local.iter().any(|l| l == s) && !only_exchange.contains(&s) {
                        only_exchange.push(s);
                    }
                }
            }
        }
        let only_local: Vec<&str> = local
            .iter()
            .map(String::as_str)
            .filter(|s| !snapshot.contains(s))
            .collect();
        let mut changes = 0;
        if !only_exchange.is_empty() {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Found {} positions on exchange not tracked locally: {}",
                    only_exchange.len(),
                    py_set_repr(&only_exchange)
                )
            });
            for symbol in &only_exchange {
                // The first entry of that symbol with a non-zero size, as the original scans.
                let candidates = entries.iter().filter_map(|e| match e {
                    RawEntry::Position(raw) if raw.symbol() == Some(symbol) => Some(raw),
                    _ => None,
                });
                for raw in candidates {
                    match self.import_entry(symbol, raw, Flavour::Reconcile, mark) {
                        Ok(Import::Imported | Import::Restored) => {
                            changes += 1;
                            break;
                        }
                        Ok(Import::Skipped) => {}
                        Err(e) => {
                            self.log(Channel::Main, Level::Error, || {
                                format!("Error reconciling position {symbol}: {e}")
                            });
                            break;
                        }
                    }
                }
            }
        }
        if !only_local.is_empty() {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Found {} positions tracked locally but not on exchange: {}",
                    only_local.len(),
                    py_set_repr(&only_local)
                )
            });
            for symbol in self.apply_snapshot(&entries, &snapshot, "orphaned") {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Removing orphaned position: {symbol}")
                });
                changes += 1;
            }
        }
        if changes == 0 {
            self.log(Channel::Main, Level::Info, || {
                "Position reconciliation complete: all positions in sync".to_owned()
            });
        } else {
            self.log(Channel::Main, Level::Info, || {
                format!("Position reconciliation complete: {changes} discrepancies resolved")
            });
        }
        changes
    }

    /// Imports (or restores) one exchange entry for an untracked `symbol`.
    pub(crate) fn import_entry(
        &self,
        symbol: &str,
        raw: &RawPosition,
        flavour: Flavour,
        requested_at: u64,
    ) -> CoreResult<Import> {
        let contracts = match &raw.contracts {
            Field::Absent => 0.0,
            f => f.to_float()?,
        };
        if contracts.is_nan() || contracts.is_infinite() {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Skipping position entry for {symbol}: contracts is {}",
                    py_repr_float(contracts)
                )
            });
            return Ok(Import::Skipped);
        }
        if contracts == 0.0 {
            return Ok(Import::Skipped);
        }
        let side = match &raw.side {
            Field::Absent => "long".to_owned(),
            Field::Text(s) if s == "long" || s == "short" => s.clone(),
            other => {
                // A side-less entry is a phantom (e.g. OKX/Phemex zero positions), and a side that
                // is neither 'long' nor 'short' cannot be managed: never import either.
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Skipping position entry for {symbol}: side is {}",
                        match other {
                            Field::Text(s) => super::messages::py_str_repr(s),
                            other => other.display(),
                        }
                    )
                });
                return Ok(Import::Skipped);
            }
        };
        let entry_field = match &raw.entry_price {
            Field::Absent | Field::Null => None,
            f => Some(f.to_float()?),
        };
        let leverage = self.entry_leverage(symbol, raw, contracts, &side, flavour);

        if let Some(fp) =
            fingerprint_of(&Field::Text(side.clone()), &raw.contracts, &raw.entry_price)
        {
            if let Some((position, _handle)) = self.book().restore_if_same(symbol, &fp) {
                self.log(Channel::Main, Level::Info, || {
                    format!("Restored position {symbol}: the exchange reports it again unchanged, keeping its state")
                });
                self.record(
                    symbol,
                    &position,
                    EventKind::Restored,
                    "reported_again",
                    None,
                );
                return Ok(Import::Restored);
            }
        }

        if self.book().closed_since(symbol, requested_at) {
            // The list was requested before our own close of it filled (E24): stale.
            self.log(Channel::Main, Level::Debug, || {
                format!(
                    "Position {symbol} was closed after this position list was requested, skipping"
                )
            });
            return Ok(Import::Skipped);
        }
        if self.is_opening(symbol) {
            // Our own open is in flight: it will track the position with its real targets.
            self.log(Channel::Main, Level::Debug, || {
                format!("Position {symbol} is being opened, skipping sync")
            });
            return Ok(Import::Skipped);
        }
        let ticker = self.exchange().get_ticker(symbol)?;
        let current_price = match &ticker {
            TickerAnswer::Missing => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Could not get ticker for {symbol}, skipping")
                });
                return Ok(Import::Skipped);
            }
            TickerAnswer::Ticker { last } => match ticker.valid_price() {
                Some(p) => p,
                None => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Invalid price for {symbol}: {}, skipping", last.display())
                    });
                    return Ok(Import::Skipped);
                }
            },
        };
        let entry_price = match entry_field {
            Some(e) if e > 0.0 && e.is_finite() => e,
            other => {
                let shown = other.map_or_else(|| "None".to_owned(), py_repr_float);
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Entry price missing or invalid for {symbol} ({shown}); estimating it from the current price {}",
                        format_price(current_price)
                    )
                });
                current_price
            }
        };
        let estimated = entry_field != Some(entry_price);
        let is_long = side == "long";
        // As the original: stop and target from the current price (5 % / 15 %).
        let (stop_loss, take_profit) = if is_long {
            (current_price * 0.95, current_price * 1.15)
        } else {
            (current_price * 1.05, current_price * 0.85)
        };
        let amount = contracts.abs();
        let mut state = PositionState::new(
            symbol,
            side.clone(),
            entry_price,
            amount,
            leverage,
            stop_loss,
            Some(take_profit),
            self.now(),
        );
        state.entry_price_estimated = estimated;
        if let Ok(size) = raw.contract_size.to_float() {
            if size.is_finite() && size > 0.0 {
                state.contract_size = size;
            }
        }
        if flavour == Flavour::Sync {
            if is_long && current_price > entry_price {
                state.highest_price = Some(current_price);
            } else if side == "short" && current_price < entry_price {
                state.lowest_price = Some(current_price);
            }
        }
        let r = state.leveraged_pnl(current_price, false);
        let position = share(state);
        let handle = self.handles.make(&position)?;
        match self
            .book()
            .insert_if_absent(symbol, position.clone(), handle)
        {
            Ok(buried) => drop(buried),
            Err(given_back) => {
                // Opened or assigned meanwhile: the live position wins over an import.
                drop(given_back);
                self.log(Channel::Main, Level::Debug, || {
                    format!("Position {symbol} already tracked, skipping sync")
                });
                return Ok(Import::Skipped);
            }
        }
        let reason = if flavour == Flavour::Sync {
            "sync"
        } else {
            "reconcile"
        };
        self.record(symbol, &position, EventKind::Imported, reason, None);
        let lev = leverage_text(leverage);
        match flavour {
            Flavour::Sync => {
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
        Ok(Import::Imported)
    }

    /// The entry's leverage: `leverage`, else `info.realLeverage` (sync only), else 10; an
    /// invalid value (not a number, zero, negative, NaN) falls back to 10 with a warning.
    fn entry_leverage(
        &self,
        symbol: &str,
        raw: &RawPosition,
        contracts: f64,
        side: &str,
        flavour: Flavour,
    ) -> f64 {
        let context = || {
            format!(
                "Position data: contracts={}, side={side}",
                py_repr_float(contracts)
            )
        };
        let (field, label) = match (&raw.leverage, flavour) {
            (Field::Absent | Field::Null, Flavour::Sync) => (&raw.real_leverage, "realLeverage"),
            (f, _) => (f, "leverage"),
        };
        if matches!(field, Field::Absent | Field::Null) {
            if flavour == Flavour::Sync {
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
