//! `move_to_breakeven` (§1.7) and `calculate_intelligent_targets` (§1.10).

use super::PositionState;
use crate::levels::{Level, SupportResistance};

/// Largest level price strictly below `price` (the original's "nearest support").
fn nearest_below(levels: &[Level], price: f64) -> Option<f64> {
    levels
        .iter()
        .map(|l| l.price)
        .filter(|&p| p < price)
        .reduce(|best, p| if p > best { p } else { best })
}

/// Smallest level price strictly above `price` (the original's "nearest resistance").
fn nearest_above(levels: &[Level], price: f64) -> Option<f64> {
    levels
        .iter()
        .map(|l| l.price)
        .filter(|&p| p > price)
        .reduce(|best, p| if p < best { p } else { best })
}

/// Python truthiness of an optional float: `None` and zero (either sign) are falsy, NaN is not.
fn truthy(x: Option<f64>) -> Option<f64> {
    x.filter(|v| *v != 0.0)
}

impl PositionState {
    /// `move_to_breakeven(current_price, buffer)` (spec §1.7): once the unleveraged P/L is
    /// strictly above 1.5 %, move the stop to entry ± `buffer` if that tightens it.
    ///
    /// Returns whether the stop moved; a refused move leaves the flag unset, so it is retried.
    pub fn move_to_breakeven(&mut self, current_price: f64, buffer: f64) -> bool {
        if self.breakeven_moved {
            return false;
        }
        if self.pnl(current_price, false) > 0.015 {
            if self.is_long() {
                let new_stop = self.entry_price * (1.0 + buffer);
                if new_stop > self.stop_loss {
                    self.stop_loss = new_stop;
                    self.breakeven_moved = true;
                    return true;
                }
            } else {
                let new_stop = self.entry_price * (1.0 - buffer);
                if new_stop < self.stop_loss {
                    self.stop_loss = new_stop;
                    self.breakeven_moved = true;
                    return true;
                }
            }
        }
        false
    }

    /// `calculate_intelligent_targets(current_price, support_resistance, side)` → (stop, take profit).
    /// `support_resistance` is `None` for the original's falsy value; `side_is_long` is
    /// `side == 'long'` of the *argument*, not of the position.
    ///
    /// An empty list behaves like a missing key (both are falsy in the original), so this
    /// representation covers every input the original accepts without raising.
    pub fn intelligent_targets(
        current_price: f64,
        support_resistance: Option<&SupportResistance>,
        side_is_long: bool,
    ) -> (f64, f64) {
        let (default_stop, default_tp) = if side_is_long {
            (current_price * 0.97, current_price * 1.05)
        } else {
            (current_price * 1.03, current_price * 0.95)
        };
        let Some(sr) = support_resistance else {
            return (default_stop, default_tp);
        };
        if sr.support.is_empty() && sr.resistance.is_empty() {
            return (default_stop, default_tp);
        }
        let support = truthy(nearest_below(&sr.support, current_price));
        let resistance = truthy(nearest_above(&sr.resistance, current_price));
        if side_is_long {
            (
                support.map_or(default_stop, |s| s * 0.995),
                resistance.map_or(default_tp, |r| r * 0.995),
            )
        } else {
            (
                resistance.map_or(default_stop, |r| r * 1.005),
                support.map_or(default_tp, |s| s * 1.005),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::test_support::load_fixture;
    use serde_json::Value;

    fn f(v: &Value) -> f64 {
        v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
    }

    #[test]
    fn move_to_breakeven_fixture_replays_exactly() {
        let fx = load_fixture("position_traces.json");
        let cases = fx["move_to_breakeven"].as_array().expect("cases");
        assert!(!cases.is_empty());
        for (i, c) in cases.iter().enumerate() {
            let mut p = PositionState::new(
                "X/USDT:USDT",
                c["side"].as_str().expect("side"),
                f(&c["entry_price"]),
                f(&c["amount"]),
                f(&c["leverage"]),
                f(&c["stop_loss"]),
                c["take_profit"].as_f64(),
                Timestamp(0),
            );
            p.breakeven_moved = c["breakeven_moved_before"].as_bool().expect("bool");
            let result = p.move_to_breakeven(f(&c["price"]), f(&c["buffer"]));
            assert_eq!(
                result,
                c["result"].as_bool().expect("bool"),
                "case {i}: {c}"
            );
            assert_eq!(
                p.stop_loss.to_bits(),
                f(&c["stop_loss_after"]).to_bits(),
                "case {i}: {c}"
            );
            assert_eq!(
                p.breakeven_moved,
                c["breakeven_moved_after"].as_bool().expect("bool"),
                "case {i}: {c}"
            );
        }
    }

    /// The original's falsy `support_resistance` (`None` or `{}`) is `None`; any other dict is
    /// `Some`, missing lists becoming empty ones (equally falsy).
    fn sr_from_json(v: &Value) -> Option<SupportResistance> {
        match v {
            Value::Null => None,
            Value::Object(m) if m.is_empty() => None,
            other => Some(serde_json::from_value(other.clone()).expect("support_resistance")),
        }
    }

    #[test]
    fn intelligent_targets_fixture_replays_exactly() {
        let fx = load_fixture("position_traces.json");
        let cases = fx["calculate_intelligent_targets"]
            .as_array()
            .expect("cases");
        assert!(!cases.is_empty());
        for (i, c) in cases.iter().enumerate() {
            // The method ignores the position it is called on; only the `side` argument counts.
            assert_ne!(c["side"], c["position_side"]);
            let sr = sr_from_json(&c["support_resistance"]);
            let (stop, tp) = PositionState::intelligent_targets(
                f(&c["current_price"]),
                sr.as_ref(),
                c["side"].as_str() == Some("long"),
            );
            assert_eq!(
                stop.to_bits(),
                f(&c["result"][0]).to_bits(),
                "stop, case {i}: {c}"
            );
            assert_eq!(
                tp.to_bits(),
                f(&c["result"][1]).to_bits(),
                "tp, case {i}: {c}"
            );
        }
    }

    #[test]
    fn breakeven_is_strict_and_only_tightens() {
        let mut p = PositionState::new("X", "long", 100.0, 1.0, 10.0, 95.0, None, Timestamp(0));
        assert!(!p.move_to_breakeven(101.0, 0.001));
        assert!(p.move_to_breakeven(102.0, 0.001));
        assert_eq!(p.stop_loss, 100.0 * 1.001);
        assert!(!p.move_to_breakeven(110.0, 0.001));
        let mut s = PositionState::new("X", "short", 100.0, 1.0, 10.0, 99.0, None, Timestamp(0));
        // Entry × 0.999 would loosen a stop already below it: refused, flag stays unset.
        assert!(!s.move_to_breakeven(90.0, 0.001));
        assert!(!s.breakeven_moved);
    }

    #[test]
    fn intelligent_targets_use_nearest_levels() {
        let lv = |price| Level {
            price,
            strength: 0.1,
        };
        let sr = SupportResistance {
            support: vec![lv(90.0), lv(95.0), lv(101.0)],
            resistance: vec![lv(120.0), lv(110.0), lv(100.0)],
            poc: None,
        };
        assert_eq!(
            PositionState::intelligent_targets(100.0, Some(&sr), true),
            (95.0 * 0.995, 110.0 * 0.995)
        );
        assert_eq!(
            PositionState::intelligent_targets(100.0, Some(&sr), false),
            (110.0 * 1.005, 95.0 * 1.005)
        );
        assert_eq!(
            PositionState::intelligent_targets(100.0, None, true),
            (100.0 * 0.97, 100.0 * 1.05)
        );
        let only_far = SupportResistance {
            support: vec![lv(130.0)],
            ..SupportResistance::default()
        };
        assert_eq!(
            PositionState::intelligent_targets(100.0, Some(&only_far), false),
            (100.0 * 1.03, 100.0 * 0.95)
        );
    }
}
