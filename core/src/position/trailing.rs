//! Adaptive trailing stop (spec §1.8).

use super::PositionState;
use crate::error::{CoreError, CoreResult};

impl PositionState {
    /// `update_trailing_stop(current_price, trailing_percentage, volatility, momentum)` (spec §1.8).
    ///
    /// Records the *unleveraged* P/L as maximum favourable excursion, adapts the trailing
    /// distance to volatility, profit and momentum, and ratchets the stop behind a new extreme
    /// (even while the position is at a loss). The stop never loosens here.
    ///
    /// Errors with the original's `TypeError` when the extreme the side needs is missing
    /// (a position whose side is neither `'long'` nor `'short'`); the excursion update has
    /// already happened then, as in the original.
    pub fn update_trailing_stop(
        &mut self,
        current_price: f64,
        trailing_percentage: f64,
        volatility: f64,
        momentum: f64,
    ) -> CoreResult<()> {
        let u = self.pnl(current_price, false);
        self.update_trailing_stop_with(current_price, u, trailing_percentage, volatility, momentum)
    }

    /// [`PositionState::update_trailing_stop`] with the unleveraged P/L `u` given (what an
    /// overridden `get_pnl` returned: the original reads it through `self.get_pnl`).
    pub fn update_trailing_stop_with(
        &mut self,
        current_price: f64,
        u: f64,
        trailing_percentage: f64,
        volatility: f64,
        momentum: f64,
    ) -> CoreResult<()> {
        if u > self.max_favorable_excursion {
            self.max_favorable_excursion = u;
        }

        // Multipliers in the original order (float products are order-sensitive); each group is
        // first-match, and NaN inputs fail every comparison so contribute nothing.
        let mut t = trailing_percentage;
        if volatility > 0.05 {
            t *= 1.3;
        } else if volatility < 0.02 {
            t *= 0.7;
        }
        if u > 0.10 {
            t *= 0.5;
        } else if u > 0.05 {
            t *= 0.7;
        } else if u > 0.03 {
            t *= 0.85;
        }
        if momentum.abs() > 0.03 {
            t *= 1.1;
        } else if momentum.abs() < 0.01 {
            t *= 0.8;
        }
        // Python's `max(0.004, min(t, 0.04))`, NaN handling included.
        let t = py_max(0.004, py_min(t, 0.04));

        if self.is_long() {
            let highest = self.highest_price.ok_or_else(|| {
                CoreError::Type(
                    "'>' not supported between instances of 'float' and 'NoneType'".into(),
                )
            })?;
            if current_price > highest {
                self.highest_price = Some(current_price);
                let new_stop = current_price * (1.0 - t);
                if new_stop > self.stop_loss {
                    self.stop_loss = new_stop;
                    self.trailing_stop_activated = true;
                }
            }
        } else {
            let lowest = self.lowest_price.ok_or_else(|| {
                CoreError::Type(
                    "'<' not supported between instances of 'float' and 'NoneType'".into(),
                )
            })?;
            if current_price < lowest {
                self.lowest_price = Some(current_price);
                let new_stop = current_price * (1.0 + t);
                if new_stop < self.stop_loss {
                    self.stop_loss = new_stop;
                    self.trailing_stop_activated = true;
                }
            }
        }
        Ok(())
    }
}

/// Python's two-argument `min(a, b)`: `b` only if `b < a`, so a NaN first argument survives.
pub(super) fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// Python's two-argument `max(a, b)`: `b` only if `b > a`, so a NaN second argument is dropped.
pub(super) fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Timestamp;
    use crate::error::CoreError;
    use crate::position::PositionState;

    fn long() -> PositionState {
        PositionState::new(
            "X/USDT:USDT",
            "long",
            100.0,
            1.0,
            10.0,
            95.0,
            Some(110.0),
            Timestamp(0),
        )
    }

    #[test]
    fn trails_while_at_a_loss_spec_example() {
        // §1.8: t = 0.02 × 0.8 (default momentum 0 < 0.01) = 0.016; 100.5 × 0.984 = 98.892.
        let mut p = long();
        p.update_trailing_stop(100.5, 0.02, 0.03, 0.0).unwrap();
        assert!((p.stop_loss - 98.892).abs() < 1e-12, "{}", p.stop_loss);
        assert!(p.trailing_stop_activated);
        assert_eq!(p.highest_price, Some(100.5));
        assert_eq!(p.max_favorable_excursion, (100.5 - 100.0) / 100.0);
    }

    #[test]
    fn never_loosens_and_needs_a_new_extreme() {
        let mut p = long();
        p.update_trailing_stop(105.0, 0.02, 0.03, 0.0).unwrap();
        let stop = p.stop_loss;
        // Not a new high: nothing moves.
        p.update_trailing_stop(104.0, 0.02, 0.03, 0.0).unwrap();
        assert_eq!(p.stop_loss, stop);
        // New high but a wider distance (high volatility, strong momentum) would loosen: kept.
        p.update_trailing_stop(105.01, 0.05, 0.08, 0.05).unwrap();
        assert_eq!(p.stop_loss, stop);
        assert_eq!(p.highest_price, Some(105.01));
    }

    #[test]
    fn short_trails_down_and_clamps() {
        let mut s = PositionState::new("X", "short", 100.0, 1.0, 1.0, 105.0, None, Timestamp(0));
        // 0.001 × 0.8 = 0.0008 is clamped up to 0.004.
        s.update_trailing_stop(95.0, 0.001, 0.03, 0.0).unwrap();
        assert_eq!(s.stop_loss, 95.0 * (1.0 + 0.004));
        assert_eq!(s.lowest_price, Some(95.0));
        // NaN distance: Python's max(0.004, min(nan, 0.04)) is 0.004.
        s.update_trailing_stop(94.0, f64::NAN, 0.03, 0.0).unwrap();
        assert_eq!(s.stop_loss, 94.0 * (1.0 + 0.004));
    }

    #[test]
    fn side_mismatch_raises_type_error_after_mfe_update() {
        let mut odd = PositionState::new("X", "LONG", 100.0, 1.0, 1.0, 105.0, None, Timestamp(0));
        let err = odd.update_trailing_stop(90.0, 0.02, 0.03, 0.0).unwrap_err();
        assert_eq!(
            err,
            CoreError::Type("'<' not supported between instances of 'float' and 'NoneType'".into())
        );
        assert_eq!(odd.max_favorable_excursion, 0.1);
        let mut p = long();
        p.highest_price = None;
        let err = p.update_trailing_stop(101.0, 0.02, 0.03, 0.0).unwrap_err();
        assert_eq!(
            err,
            CoreError::Type("'>' not supported between instances of 'float' and 'NoneType'".into())
        );
    }
}
