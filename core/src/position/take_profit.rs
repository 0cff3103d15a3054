//! Dynamic take-profit (spec §1.9). Written by the position-math work.

use super::PositionState;
use crate::clock::Timestamp;
use crate::error::CoreResult;
use crate::levels::SupportResistance;

/// Market inputs of `update_take_profit`, with the original's defaults in [`Default`].
#[derive(Clone, Copy, Debug)]
pub struct TakeProfitInputs<'a> {
    /// Price momentum (default 0.0).
    pub momentum: f64,
    /// Trend strength 0..1 (default 0.5).
    pub trend_strength: f64,
    /// Volatility (default 0.03).
    pub volatility: f64,
    /// RSI (default 50.0).
    pub rsi: f64,
    /// Support/resistance; `None` stands for the original's falsy value (None or `{}`).
    pub support_resistance: Option<&'a SupportResistance>,
}

impl Default for TakeProfitInputs<'_> {
    fn default() -> Self {
        TakeProfitInputs {
            momentum: 0.0,
            trend_strength: 0.5,
            volatility: 0.03,
            rsi: 50.0,
            support_resistance: None,
        }
    }
}

impl PositionState {
    /// `update_take_profit(...)` at time `now`.
    pub fn update_take_profit(
        &mut self,
        now: Timestamp,
        current_price: f64,
        inputs: &TakeProfitInputs<'_>,
    ) -> CoreResult<()> {
        let _ = (now, current_price, inputs);
        todo!("position math")
    }
}
