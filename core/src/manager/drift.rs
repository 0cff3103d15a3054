//! When the exchange and the book disagree without the manager having done anything: positions
//! that vanished (and why, from the evidence), sizes that changed (partial external closes,
//! auto-deleveraging), sides that flipped, and contract sizes the exchange reports.
//!
//! Everything here runs after a snapshot was applied to the book, outside the book lock.

use log::Level;

use super::messages::Channel;
use super::sync::Flavour;
use super::Manager;
use crate::book::{fingerprint_of_state, Confirmed, Removed};
use crate::events::{EventKind, Evidence};
use crate::exchange::RawEntry;
use crate::format::py_repr_float;
use crate::reconcile::{Reported, Snapshot};

/// Why a position vanished, judged from the evidence (§ failure modes B9–B13).
pub const LIQUIDATION: &str = "liquidation";
/// The price reached the position's own stop: the exchange-side stop filled.
pub const STOP_FILLED: &str = "stop_filled_on_exchange";
/// The price reached the position's own take profit: the exchange-side order filled.
pub const TAKE_PROFIT_FILLED: &str = "take_profit_filled_on_exchange";

/// Sizes closer than this (relative) are the same size.
const SIZE_TOLERANCE: f64 = 1e-9;

/// Releases a symbol's "size about to change" mark when dropped.
pub(crate) struct Resizing<'m, H: Clone + Send + Sync> {
    manager: &'m Manager<H>,
    symbol: &'m str,
}

impl<H: Clone + Send + Sync> Drop for Resizing<'_, H> {
    fn drop(&mut self) {
        let mut busy = self.manager.resizing.lock();
        if let Some(i) = busy.iter().position(|s| s == self.symbol) {
            busy.swap_remove(i);
        }
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Marks `symbol`'s size as about to change by the manager's own order until the guard
    /// drops; a snapshot applied meanwhile does not resize it.
    pub(crate) fn resizing<'m>(&'m self, symbol: &'m str) -> Resizing<'m, H> {
        self.resizing.lock().push(symbol.to_owned());
        Resizing {
            manager: self,
            symbol,
        }
    }

    fn is_resizing(&self, symbol: &str) -> bool {
        self.resizing.lock().iter().any(|s| s == symbol)
    }

    /// The reason and evidence for a position the exchange stopped listing. `default` is the
    /// caller's word when nothing explains it (`closed_externally`, `orphaned`).
    /// Returns the reason, the evidence and, for a liquidation or a filled stop or take profit,
    /// the leveraged P/L after fees at that level (failure mode B10: not left null).
    pub(crate) fn removal_reason(
        &self,
        removed: &Removed<H>,
        default: &'static str,
    ) -> (&'static str, Evidence, Option<f64>) {
        let reported = removed.reported.clone().unwrap_or_default();
        let p = removed.position.lock();
        let last_price = p.history.last().map(|pt| pt.price).or(reported.mark_price);
        let evidence = Evidence {
            last_price,
            liquidation_price: reported.liquidation_price,
            mark_price: reported.mark_price,
            stop_loss: Some(p.stop_loss),
            take_profit: p.take_profit,
            missing: Some(removed.missing),
            ..Evidence::default()
        };
        let Some(price) = last_price else {
            return (default, evidence, None);
        };
        let long = p.is_long();
        // Beyond a level in the position's losing direction (stop, liquidation) or winning one.
        let beyond_against = |level: f64| if long { price <= level } else { price >= level };
        let beyond_for = |level: f64| if long { price >= level } else { price <= level };
        let (reason, level) = match (reported.liquidation_price, p.take_profit) {
            (Some(liq), _) if beyond_against(liq) => (LIQUIDATION, Some(liq)),
            _ if beyond_against(p.stop_loss) => (STOP_FILLED, Some(p.stop_loss)),
            (_, Some(tp)) if beyond_for(tp) => (TAKE_PROFIT_FILLED, Some(tp)),
            _ => (default, None),
        };
        let pnl = level.map(|l| p.leveraged_pnl(l, true));
        (reason, evidence, pnl)
    }

    /// Brings confirmed positions in line with what the exchange reports: the contract size,
    /// a size changed outside the manager (event `resized`), a flipped side (the old position is
    /// removed as `side_flipped`, the new one imported). Positions whose size the manager is
    /// changing, or changed after the snapshot was requested, are left alone.
    pub(crate) fn apply_drift(
        &self,
        entries: &[RawEntry],
        snapshot: &Snapshot,
        confirmed: Vec<Confirmed>,
    ) {
        for c in confirmed {
            if let Some(Reported {
                contract_size: Some(size),
                ..
            }) = snapshot.reported.get(&c.symbol)
            {
                let mut p = c.position.lock();
                if p.contract_size != *size {
                    p.contract_size = *size;
                }
            }
            let Some(fp) = c.fingerprint.clone() else {
                continue;
            };
            if c.touched > snapshot.requested_at_seq || self.is_resizing(&c.symbol) {
                continue;
            }
            let (side, amount) = {
                let p = c.position.lock();
                (p.side.clone(), p.amount)
            };
            if fp.side != side && (fp.side == "long" || fp.side == "short") {
                self.replace_flipped(entries, snapshot, &c, &fp.side);
            } else if fp.side == side
                && fp.contracts > 0.0
                && (fp.contracts - amount).abs() > SIZE_TOLERANCE * amount.abs().max(1.0)
            {
                self.resize(&c, fp.contracts, amount);
            }
        }
    }

    fn resize(&self, c: &Confirmed, contracts: f64, previous: f64) {
        {
            let mut p = c.position.lock();
            // Re-check under the lock: another thread may have changed it meanwhile.
            if p.amount != previous {
                return;
            }
            p.amount = contracts;
        }
        let symbol = &c.symbol;
        self.log(Channel::Main, Level::Warn, || {
            format!(
                "Position {symbol} size changed on the exchange: {} -> {} contracts; tracking the exchange's size",
                py_repr_float(previous),
                py_repr_float(contracts)
            )
        });
        let evidence = Evidence {
            exchange_contracts: Some(contracts),
            previous_amount: Some(previous),
            ..Evidence::default()
        };
        self.record_with(
            symbol,
            &c.position,
            EventKind::Resized,
            "size_changed_externally",
            None,
            Some(evidence),
        );
    }

    fn replace_flipped(
        &self,
        entries: &[RawEntry],
        snapshot: &Snapshot,
        c: &Confirmed,
        new_side: &str,
    ) {
        let symbol = &c.symbol;
        let fingerprint = fingerprint_of_state(&c.position.lock());
        let Some((position, handle, evicted)) =
            self.book()
                .bury(symbol, &c.position, fingerprint, self.now())
        else {
            return;
        };
        self.log(Channel::Main, Level::Warn, || {
            format!(
                "Position {symbol} flipped to {new_side} on the exchange; closing the tracked one and importing the new one"
            )
        });
        let evidence = Evidence {
            exchange_side: Some(new_side.to_owned()),
            exchange_contracts: Some(c.fingerprint.as_ref().map_or(0.0, |f| f.contracts)),
            ..Evidence::default()
        };
        self.record_with(
            symbol,
            &position,
            EventKind::Removed,
            "side_flipped",
            None,
            Some(evidence),
        );
        drop((handle, evicted));
        let raw = snapshot
            .index
            .get(symbol.as_str())
            .and_then(|i| entries.get(*i));
        if let Some(RawEntry::Position(raw)) = raw {
            if let Err(e) = self.import_entry(symbol, raw, Flavour::Sync, snapshot.requested_at_seq)
            {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error importing flipped position {symbol}: {e}")
                });
            }
        }
    }

    /// Drops tombstones older than the configured time to live.
    pub(crate) fn expire_tombstones(&self) {
        let ttl = self.config().tombstone_ttl_seconds;
        if ttl.is_finite() {
            let cutoff = self.now().plus_seconds(-ttl);
            drop(self.book().expire_tombstones(cutoff));
        }
    }
}
