//! Adaptive trailing stop (spec §1.8). Written by the position-math work.

use super::PositionState;
use crate::error::CoreResult;

impl PositionState {
    /// `update_trailing_stop(current_price, trailing_percentage, volatility, momentum)`.
    pub fn update_trailing_stop(
        &mut self,
        current_price: f64,
        trailing_percentage: f64,
        volatility: f64,
        momentum: f64,
    ) -> CoreResult<()> {
        let _ = (current_price, trailing_percentage, volatility, momentum);
        todo!("position math")
    }
}
