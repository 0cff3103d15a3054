//! `should_close` (spec §1.12).

use super::PositionState;

/// The answer of `should_close`: whether to close and the original's reason string ("" if not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCheck {
    /// Close now?
    pub close: bool,
    /// The original reason string, `""` when `close` is false.
    pub reason: &'static str,
}

impl CloseCheck {
    /// Close for `reason`.
    const fn close(reason: &'static str) -> Self {
        CloseCheck {
            close: true,
            reason,
        }
    }

    /// Stay open (`(False, '')`).
    const KEEP: CloseCheck = CloseCheck {
        close: false,
        reason: "",
    };
}

impl PositionState {
    /// `should_close(current_price)` (spec §1.12): the checks in the original order, first hit wins.
    ///
    /// Side effect: once past the emergency stops, a higher *leveraged* P/L raises the maximum
    /// favourable excursion (which `update_trailing_stop` fills with unleveraged values).
    pub fn should_close(&mut self, current_price: f64) -> CloseCheck {
        let r = self.leveraged_pnl(current_price, false);
        self.should_close_with(current_price, r)
    }

    /// [`PositionState::should_close`] with the leveraged P/L `r` given (what an overridden
    /// `get_leveraged_pnl` returned: the original reads it through `self.get_leveraged_pnl`).
    pub fn should_close_with(&mut self, current_price: f64, r: f64) -> CloseCheck {
        if r <= -0.40 {
            return CloseCheck::close("emergency_stop_liquidation_risk");
        }
        if r <= -0.25 {
            return CloseCheck::close("emergency_stop_severe_loss");
        }
        if r <= -0.15 {
            return CloseCheck::close("emergency_stop_excessive_loss");
        }

        if r > self.max_favorable_excursion {
            self.max_favorable_excursion = r;
        }

        // Python truthiness of the take profit: None and 0.0 (either sign) are falsy, NaN is not.
        let take_profit = self.take_profit.filter(|tp| *tp != 0.0);
        let long = self.is_long();

        if let Some(tp) = take_profit {
            if r > 0.0 {
                // Relative distance still to go to the TP; negative once past it.
                let dist = if long {
                    (tp - current_price) / current_price
                } else {
                    (current_price - tp) / current_price
                };
                if r >= 0.20 {
                    return CloseCheck::close("take_profit_20pct_exceptional");
                }
                if r >= 0.15 && dist > 0.02 {
                    return CloseCheck::close("take_profit_15pct_far_tp");
                }
                let mfe = self.max_favorable_excursion;
                if mfe >= 0.10 {
                    let drawdown = (mfe - r) / mfe;
                    if drawdown >= 0.499 && r >= 0.01 {
                        return CloseCheck::close("take_profit_major_retracement");
                    }
                    if drawdown >= 0.299 && (0.03..0.15).contains(&r) {
                        return CloseCheck::close("take_profit_momentum_loss");
                    }
                }
                if r >= 0.10 && dist > 0.02 {
                    return CloseCheck::close("take_profit_10pct");
                }
                if r >= 0.08 && dist > 0.03 {
                    return CloseCheck::close("take_profit_8pct");
                }
                if r >= 0.05 && dist > 0.05 {
                    return CloseCheck::close("take_profit_5pct");
                }
            }
        }

        if long {
            if current_price <= self.stop_loss {
                return CloseCheck::close("stop_loss");
            }
            if take_profit.is_some_and(|tp| current_price >= tp * 0.99999) {
                return CloseCheck::close("take_profit");
            }
        } else {
            if current_price >= self.stop_loss {
                return CloseCheck::close("stop_loss");
            }
            if take_profit.is_some_and(|tp| current_price <= tp * 1.00001) {
                return CloseCheck::close("take_profit");
            }
        }

        // The original's "emergency profit protection" block that follows here is unreachable
        // (its TP test already returned above, and r >= 0.5 returned as exceptional), so it is
        // left out.
        CloseCheck::KEEP
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Timestamp;
    use crate::position::PositionState;

    fn pos(side: &str, leverage: f64, sl: f64, tp: Option<f64>) -> PositionState {
        PositionState::new("X", side, 100.0, 1.0, leverage, sl, tp, Timestamp(0))
    }

    fn reason(p: &mut PositionState, price: f64) -> &'static str {
        let c = p.should_close(price);
        assert_eq!(c.close, !c.reason.is_empty());
        c.reason
    }

    #[test]
    fn emergency_stops_in_order() {
        let mut p = pos("long", 10.0, 50.0, Some(130.0));
        assert_eq!(reason(&mut p, 95.0), "emergency_stop_liquidation_risk");
        assert_eq!(reason(&mut p, 97.0), "emergency_stop_severe_loss");
        assert_eq!(reason(&mut p, 98.2), "emergency_stop_excessive_loss");
        assert_eq!(p.max_favorable_excursion, 0.0);
    }

    #[test]
    fn roi_based_profit_taking_and_mfe() {
        let mut p = pos("long", 10.0, 95.0, Some(130.0));
        assert_eq!(reason(&mut p, 100.2), "");
        assert_eq!(p.max_favorable_excursion, (100.2 - 100.0) / 100.0 * 10.0);
        assert_eq!(reason(&mut p, 100.6), "take_profit_5pct");
        let mut s = pos("short", 10.0, 105.0, Some(70.0));
        assert_eq!(reason(&mut s, 98.4), "take_profit_15pct_far_tp");
        assert_eq!(reason(&mut s, 97.9), "take_profit_20pct_exceptional");
        // MFE is now 0.21 leveraged; r = 0.05 is a 76 % drawdown.
        assert_eq!(reason(&mut s, 99.5), "take_profit_major_retracement");
        // r = 0.12: drawdown 0.43 with 0.03 <= r < 0.15.
        assert_eq!(reason(&mut s, 98.8), "take_profit_momentum_loss");
    }

    #[test]
    fn standard_stop_and_tp_tests() {
        let mut p = pos("long", 1.0, 95.0, Some(104.0));
        assert_eq!(reason(&mut p, 95.0), "stop_loss");
        assert_eq!(reason(&mut p, 104.0 * 0.99999), "take_profit");
        let mut no_tp = pos("long", 1.0, 95.0, None);
        assert_eq!(reason(&mut no_tp, 200.0), "");
        // Non-positive prices give r = 0: a long then hits its stop, a short its TP.
        assert_eq!(reason(&mut no_tp, 0.0), "stop_loss");
        let mut s = pos("short", 1.0, 105.0, Some(96.0));
        assert_eq!(reason(&mut s, -1.0), "take_profit");
        assert_eq!(reason(&mut s, 105.0), "stop_loss");
    }
}
