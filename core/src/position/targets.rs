//! `move_to_breakeven` (§1.7) and `calculate_intelligent_targets` (§1.10). Written by the
//! position-math work.

use super::PositionState;
use crate::levels::SupportResistance;

impl PositionState {
    /// `move_to_breakeven(current_price, buffer)`.
    pub fn move_to_breakeven(&mut self, current_price: f64, buffer: f64) -> bool {
        let _ = (current_price, buffer);
        todo!("position math")
    }

    /// `calculate_intelligent_targets(current_price, support_resistance, side)` → (stop, take profit).
    /// `support_resistance` is `None` for the original's falsy value; `side_is_long` is
    /// `side == 'long'` of the *argument*, not of the position.
    pub fn intelligent_targets(
        current_price: f64,
        support_resistance: Option<&SupportResistance>,
        side_is_long: bool,
    ) -> (f64, f64) {
        let _ = (current_price, support_resistance, side_is_long);
        todo!("position math")
    }
}
