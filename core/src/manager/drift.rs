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
use crate::reconcile::Snapshot;

/// Why a position vanished, judged from the evidence (§ failure modes B9–B13).
pub const LIQUIDATION: &str = "liquidation";
/// The price reached the position's own stop: the exchange-side stop filled.
pub const STOP_FILLED: &str = "stop_filled_on_exchange";
/// The price reached the position's own take profit: the exchange-side order filled.
pub const TAKE_PROFIT_FILLED: &str = "take_profit_filled_on_exchange";

/// What a confirmed position needs.
enum Drift {
    None,
    Flipped,
    /// (the exchange's size, the book's size)
    Resized(f64, f64),
}

/// Sizes closer than this (relative) are the same size.
const SIZE_TOLERANCE: f64 = 1e-9;

impl<H: Clone + Send + Sync> Manager<H> {
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
    /// changing (an order in flight), or changed after the snapshot was requested, are left alone.
    pub(crate) fn apply_drift(
        &self,
        entries: &[RawEntry],
        snapshot: &Snapshot,
        confirmed: Vec<Confirmed>,
    ) {
        for c in confirmed {
            let size = snapshot
                .reported
                .get(&c.symbol)
                .and_then(|r| r.contract_size);
            let stale = c.touched > snapshot.requested_at_seq || self.in_flight.contains(&c.symbol);
            // One look at the position decides; the change itself re-checks under its own lock.
            let drift = {
                let mut p = c.position.lock();
                if let Some(size) = size {
                    p.contract_size = size;
                }
                match &c.fingerprint {
                    _ if stale => Drift::None,
                    None => Drift::None,
                    Some(fp) if fp.side != p.side && (fp.side == "long" || fp.side == "short") => {
                        Drift::Flipped
                    }
                    Some(fp)
                        if fp.side == p.side
                            && fp.contracts > 0.0
                            && (fp.contracts - p.amount).abs()
                                > SIZE_TOLERANCE * p.amount.abs().max(1.0) =>
                    {
                        Drift::Resized(fp.contracts, p.amount)
                    }
                    Some(_) => Drift::None,
                }
            };
            match drift {
                Drift::None => {}
                Drift::Flipped => self.replace_flipped(entries, snapshot, &c),
                Drift::Resized(contracts, previous) => self.resize(&c, contracts, previous),
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

    fn replace_flipped(&self, entries: &[RawEntry], snapshot: &Snapshot, c: &Confirmed) {
        let symbol = &c.symbol;
        let new_side = c.fingerprint.as_ref().map_or("", |f| f.side.as_str());
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
        // Flips are rare: find the entry when one happens instead of indexing every list.
        let raw = entries.iter().find_map(|e| match e {
            RawEntry::Position(raw) if raw.symbol() == Some(symbol.as_str()) => Some(raw),
            _ => None,
        });
        if let Some(raw) = raw {
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
