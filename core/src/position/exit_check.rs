//! `should_close` (spec §1.12). Written by the position-math work.

use super::PositionState;

/// The answer of `should_close`: whether to close and the original's reason string ("" if not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCheck {
    /// Close now?
    pub close: bool,
    /// The original reason string, `""` when `close` is false.
    pub reason: &'static str,
}

impl PositionState {
    /// `should_close(current_price)`; may raise the maximum favourable excursion.
    pub fn should_close(&mut self, current_price: f64) -> CloseCheck {
        let _ = current_price;
        todo!("position math")
    }
}
