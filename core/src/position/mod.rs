//! One position's state and its pure math, reproducing the original `Position` class exactly
//! (`spec/original-behavior.md` §1.4–§1.12). Every method takes the time it needs as an argument.
//!
//! Split by concern: P/L and construction here; [`trailing`] (adaptive trailing stop),
//! [`take_profit`] (dynamic take-profit), [`exit_check`] (`should_close`), [`targets`]
//! (breakeven move and support/resistance targets).

pub mod exit_check;
pub mod history;
pub mod json_float;
pub mod take_profit;
pub mod targets;
pub mod trailing;

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

pub use exit_check::CloseCheck;
pub use take_profit::TakeProfitInputs;

/// Round-trip taker fee the original charges (0.12 %), applied before leverage.
pub const ROUND_TRIP_FEE: f64 = 0.0012;

/// The state of one tracked position; field for field the original `Position`'s attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionState {
    /// Unified ccxt symbol, e.g. `BTC/USDT:USDT`.
    pub symbol: String,
    /// `'long'` or `'short'` by convention; anything but `'long'` behaves as a short.
    pub side: String,
    /// Average entry price.
    #[serde(with = "json_float")]
    pub entry_price: f64,
    /// Size in contracts (lots).
    #[serde(with = "json_float")]
    pub amount: f64,
    /// Leverage (a float: exchanges report fractional leverage).
    #[serde(with = "json_float")]
    pub leverage: f64,
    /// Stop-loss price.
    #[serde(with = "json_float")]
    pub stop_loss: f64,
    /// Take-profit price, if any.
    #[serde(with = "json_float::option")]
    pub take_profit: Option<f64>,
    /// Highest price seen (longs only).
    #[serde(with = "json_float::option")]
    pub highest_price: Option<f64>,
    /// Lowest price seen (shorts only).
    #[serde(with = "json_float::option")]
    pub lowest_price: Option<f64>,
    /// When the position was created (naive local time).
    pub entry_time: Timestamp,
    /// Whether the trailing stop has moved the stop at least once.
    pub trailing_stop_activated: bool,
    /// Maximum favourable excursion (mixes unleveraged and leveraged values, as the original).
    #[serde(with = "json_float")]
    pub max_favorable_excursion: f64,
    /// Stop loss given at creation.
    #[serde(with = "json_float")]
    pub initial_stop_loss: f64,
    /// Take profit given at creation.
    #[serde(with = "json_float::option")]
    pub initial_take_profit: Option<f64>,
    /// Leveraged P/L at the last take-profit update.
    #[serde(with = "json_float")]
    pub last_pnl: f64,
    /// Time of the last take-profit update.
    pub last_pnl_time: Timestamp,
    /// Change of leveraged P/L per hour.
    #[serde(with = "json_float")]
    pub profit_velocity: f64,
    /// Whether `move_to_breakeven` has moved the stop.
    pub breakeven_moved: bool,
    /// The original's "profit acceleration" (reproduced formula, see the spec).
    #[serde(with = "json_float")]
    pub profit_acceleration: f64,
    /// Profit targets already taken by partial exits.
    pub partial_exits_taken: i64,
    /// True when the exchange gave no usable entry price and it was estimated from the price at
    /// import (§6.18).
    #[serde(default)]
    pub entry_price_estimated: bool,
    /// Contract multiplier: value = amount × contract_size × price (1 unless the exchange
    /// reports `contractSize`).
    #[serde(default = "one")]
    pub contract_size: f64,
    /// What the update cycle saw (bounded; for inspection only, not serialised).
    #[serde(skip)]
    pub history: history::PriceHistory,
}

fn one() -> f64 {
    1.0
}

impl PositionState {
    /// A new position as the original constructor makes it, created at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        symbol: impl Into<String>,
        side: impl Into<String>,
        entry_price: f64,
        amount: f64,
        leverage: f64,
        stop_loss: f64,
        take_profit: Option<f64>,
        now: Timestamp,
    ) -> Self {
        let side = side.into();
        let highest_price = (side == "long").then_some(entry_price);
        let lowest_price = (side == "short").then_some(entry_price);
        PositionState {
            symbol: symbol.into(),
            side,
            entry_price,
            amount,
            leverage,
            stop_loss,
            take_profit,
            highest_price,
            lowest_price,
            entry_time: now,
            trailing_stop_activated: false,
            max_favorable_excursion: 0.0,
            initial_stop_loss: stop_loss,
            initial_take_profit: take_profit,
            last_pnl: 0.0,
            last_pnl_time: now,
            profit_velocity: 0.0,
            breakeven_moved: false,
            profit_acceleration: 0.0,
            partial_exits_taken: 0,
            entry_price_estimated: false,
            contract_size: 1.0,
            history: history::PriceHistory::default(),
        }
    }

    /// Appends the current price, stop and take profit to the history.
    pub fn record_tick(&mut self, time: Timestamp, price: f64) {
        self.history.push(history::PricePoint {
            time,
            price,
            stop_loss: self.stop_loss,
            take_profit: self.take_profit,
        });
    }

    /// A copy without the history (what events keep).
    pub fn snapshot(&mut self) -> PositionState {
        let history = std::mem::take(&mut self.history);
        let copy = self.clone();
        self.history = history;
        copy
    }

    /// Whether the position is a long (`side == 'long'`); every other side is treated as a short.
    pub fn is_long(&self) -> bool {
        self.side == "long"
    }

    /// Unleveraged P/L fraction at `current_price` (`get_pnl`); 0 for non-positive prices.
    pub fn pnl(&self, current_price: f64, include_fees: bool) -> f64 {
        if current_price <= 0.0 || self.entry_price <= 0.0 {
            return 0.0;
        }
        let raw = if self.is_long() {
            (current_price - self.entry_price) / self.entry_price
        } else {
            (self.entry_price - current_price) / self.entry_price
        };
        if include_fees {
            raw - ROUND_TRIP_FEE
        } else {
            raw
        }
    }

    /// Leveraged P/L (ROI) fraction at `current_price` (`get_leveraged_pnl`).
    pub fn leveraged_pnl(&self, current_price: f64, include_fees: bool) -> f64 {
        self.pnl(current_price, include_fees) * self.leverage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long() -> PositionState {
        PositionState::new(
            "BTC/USDT:USDT",
            "long",
            100.0,
            1.0,
            10.0,
            95.0,
            Some(115.0),
            Timestamp(0),
        )
    }

    #[test]
    fn constructor_sets_extremes_by_side() {
        let p = long();
        assert_eq!(p.highest_price, Some(100.0));
        assert_eq!(p.lowest_price, None);
        let s = PositionState::new("X", "short", 100.0, 1.0, 1.0, 105.0, None, Timestamp(0));
        assert_eq!((s.highest_price, s.lowest_price), (None, Some(100.0)));
        let odd = PositionState::new("X", "LONG", 100.0, 1.0, 1.0, 105.0, None, Timestamp(0));
        assert_eq!((odd.highest_price, odd.lowest_price), (None, None));
    }

    #[test]
    fn pnl_with_and_without_fees() {
        let p = long();
        assert_eq!(p.pnl(110.0, false), 0.1);
        assert!((p.pnl(110.0, true) - 0.0988).abs() < 1e-15);
        assert!((p.leveraged_pnl(110.0, true) - 0.988).abs() < 1e-12);
        assert_eq!(p.pnl(0.0, false), 0.0);
        assert_eq!(p.pnl(-1.0, true), 0.0);
    }
}
