//! Dynamic take-profit (spec §1.9).

use super::trailing::{py_max, py_min};
use super::PositionState;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
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
    /// `update_take_profit(...)` at time `now` (spec §1.9).
    ///
    /// Updates the profit velocity (and moves `last_pnl_time`) whenever time has passed, then
    /// scales the initial TP distance by a market multiplier and moves the TP only ever away
    /// from entry. Does nothing at all without a (truthy) take profit.
    ///
    /// Errors as the original raises: `TypeError` when `initial_take_profit` is missing but a
    /// take profit is set, `ZeroDivisionError` when the entry price is zero.
    pub fn update_take_profit(
        &mut self,
        now: Timestamp,
        current_price: f64,
        inputs: &TakeProfitInputs<'_>,
    ) -> CoreResult<()> {
        let r = self.leveraged_pnl(current_price, false);
        self.update_take_profit_with(now, current_price, r, inputs)
    }

    /// [`PositionState::update_take_profit`] with the leveraged P/L `r` given (what an
    /// overridden `get_leveraged_pnl` returned).
    pub fn update_take_profit_with(
        &mut self,
        now: Timestamp,
        current_price: f64,
        r: f64,
        inputs: &TakeProfitInputs<'_>,
    ) -> CoreResult<()> {
        // Python truthiness: None and 0.0 return early, before the velocity update.
        let Some(take_profit) = self.take_profit.filter(|tp| *tp != 0.0) else {
            return Ok(());
        };
        let long = self.is_long();
        let entry = self.entry_price;
        let initial_tp = self.initial_take_profit.ok_or_else(|| {
            CoreError::Type("unsupported operand type(s) for -: 'NoneType' and 'float'".into())
        })?;
        if entry == 0.0 {
            return Err(CoreError::ZeroDivision("float division by zero".into()));
        }
        let d0 = (initial_tp - entry).abs() / entry;

        // Profit velocity in leveraged P/L per hour.
        let dt = now.hours_since(self.last_pnl_time);
        if dt > 0.0 {
            self.profit_velocity = (r - self.last_pnl) / dt;
            self.last_pnl = r;
            self.last_pnl_time = now;
        }

        // The multiplier, factors applied in the original order (float products are
        // order-sensitive).
        let TakeProfitInputs {
            momentum,
            trend_strength,
            volatility,
            rsi,
            support_resistance,
        } = *inputs;
        let mut m = 1.0;
        if (long && momentum > 0.03) || (!long && momentum < -0.03) {
            m = 1.2;
        } else if momentum.abs() > 0.02 {
            // Also fires for momentum against the position (as the original).
            m = 1.1;
        }
        if trend_strength > 0.7 {
            m *= 1.15;
        } else if trend_strength > 0.5 {
            m *= 1.08;
        }
        if volatility > 0.05 {
            m *= 1.1;
        }
        if (long && rsi > 75.0) || (!long && rsi < 25.0) {
            m *= 0.9;
        } else if (long && rsi < 40.0) || (!long && rsi > 60.0) {
            m *= 1.1;
        }
        if self.profit_velocity.abs() > 0.05 {
            m *= 1.1;
        } else if self.profit_velocity.abs() < 0.01 {
            m *= 0.96;
        }
        if dt > 0.1 {
            // Reproduced quirk: `last_pnl` already holds the current r here, so this is
            // -(previous last_pnl) / dt², not a real acceleration.
            let old_velocity = self.last_pnl / py_max(dt, 0.1);
            self.profit_acceleration = (self.profit_velocity - old_velocity) / dt;
            if self.profit_acceleration > 0.02 {
                m *= 1.08;
            }
        }
        let age_hours = now.hours_since(self.entry_time);
        if age_hours > 48.0 {
            m *= 0.80;
        } else if age_hours > 24.0 {
            m *= 0.85;
        } else if age_hours > 12.0 {
            m *= 0.92;
        }
        if r > 0.10 {
            m = py_min(m, 1.03);
        } else if r > 0.05 {
            m = py_min(m, 1.08);
        } else if r > 0.03 {
            m = py_min(m, 1.15);
        }

        // Caps by progress towards the *initial* TP, only while the price is on the right side.
        let progress = if long && current_price > entry {
            Some(if initial_tp > entry {
                (current_price - entry) / (initial_tp - entry)
            } else {
                0.0
            })
        } else if !long && current_price < entry {
            Some(if entry > initial_tp {
                (entry - current_price) / (entry - initial_tp)
            } else {
                0.0
            })
        } else {
            None
        };
        if let Some(p) = progress {
            if p >= 1.05 {
                m = py_min(m, 1.01);
            } else if p >= 1.0 {
                m = py_min(m, 1.03);
            } else if p >= 0.9 {
                m = py_min(m, 1.05);
            } else if p >= 0.8 {
                m = py_min(m, 1.08);
            } else if p >= 0.7 {
                m = py_min(m, 1.1);
            } else if p > 0.5 {
                m = py_min(m, 1.15);
            }
        }

        // Keep the TP short of the nearest level in the way (a non-empty dict is truthy even
        // with empty lists, which then change nothing).
        if let Some(sr) = support_resistance {
            if long && !sr.resistance.is_empty() {
                let nearest = sr
                    .resistance
                    .iter()
                    .map(|l| l.price)
                    .filter(|&p| p > current_price)
                    .reduce(|best, p| if p < best { p } else { best });
                if let Some(level) = nearest.filter(|p| *p != 0.0) {
                    let max_tp = current_price + (level - current_price) * 0.98;
                    let calculated = entry * (1.0 + d0 * m);
                    if calculated > max_tp && d0 > 0.0 {
                        m = (max_tp / entry - 1.0) / d0;
                    }
                }
            } else if !long && !sr.support.is_empty() {
                let nearest = sr
                    .support
                    .iter()
                    .map(|l| l.price)
                    .filter(|&p| p < current_price)
                    .reduce(|best, p| if p > best { p } else { best });
                if let Some(level) = nearest.filter(|p| *p != 0.0) {
                    let max_tp = current_price - (current_price - level) * 0.98;
                    let calculated = entry * (1.0 - d0 * m);
                    if calculated < max_tp && d0 > 0.0 {
                        m = (1.0 - max_tp / entry) / d0;
                    }
                }
            }
        }

        let distance = d0 * m;
        if long {
            let new_tp = entry * (1.0 + distance);
            if new_tp > take_profit {
                let accept = if current_price == take_profit {
                    true
                } else if current_price < take_profit {
                    let progress = if take_profit > entry {
                        (current_price - entry) / (take_profit - entry)
                    } else {
                        0.0
                    };
                    progress < 0.7
                } else {
                    (current_price - new_tp).abs() <= (current_price - take_profit).abs()
                };
                if accept {
                    self.take_profit = Some(new_tp);
                }
            }
        } else {
            let new_tp = entry * (1.0 - distance);
            if new_tp < take_profit {
                let accept = if current_price == take_profit {
                    true
                } else if current_price > take_profit {
                    let progress = if entry > take_profit {
                        (entry - current_price) / (entry - take_profit)
                    } else {
                        0.0
                    };
                    progress < 0.7
                } else {
                    (current_price - new_tp).abs() <= (current_price - take_profit).abs()
                };
                if accept {
                    self.take_profit = Some(new_tp);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::load_fixture;
    use serde_json::Value;

    /// 2025-01-01T00:00:00 as naive microseconds, the generator's T0 (only differences matter).
    const T0: Timestamp = Timestamp(1_735_689_600_000_000);

    fn f(v: &Value) -> f64 {
        v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
    }

    /// Bit-exact comparison of an optional float with a JSON number or `null`.
    fn same(actual: Option<f64>, expected: &Value) -> bool {
        match (actual, expected) {
            (None, Value::Null) => true,
            (Some(a), Value::Number(_)) => a.to_bits() == f(expected).to_bits(),
            _ => false,
        }
    }

    /// The original's falsy `support_resistance` (`None` or `{}`) is `None`; any other dict is
    /// `Some`, missing lists becoming empty ones (which behave the same in the original).
    fn sr_from_json(v: &Value) -> Option<SupportResistance> {
        match v {
            Value::Null => None,
            Value::Object(m) if m.is_empty() => None,
            other => Some(serde_json::from_value(other.clone()).expect("support_resistance")),
        }
    }

    /// The observable state after one step, in the fixture's `after` vocabulary.
    fn observed(
        p: &PositionState,
        check: super::super::CloseCheck,
        mfe_after_trailing: f64,
    ) -> Vec<(&'static str, Value)> {
        let num = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        let opt = |x: Option<f64>| x.map_or(Value::Null, num);
        vec![
            ("stop_loss", num(p.stop_loss)),
            ("take_profit", opt(p.take_profit)),
            ("highest_price", opt(p.highest_price)),
            ("lowest_price", opt(p.lowest_price)),
            (
                "trailing_stop_activated",
                Value::Bool(p.trailing_stop_activated),
            ),
            ("max_favorable_excursion", num(p.max_favorable_excursion)),
            ("profit_velocity", num(p.profit_velocity)),
            ("profit_acceleration", num(p.profit_acceleration)),
            ("last_pnl", num(p.last_pnl)),
            (
                "should_close",
                Value::Array(vec![
                    Value::Bool(check.close),
                    Value::String(check.reason.into()),
                ]),
            ),
            (
                "last_pnl_time_seconds",
                num(p.last_pnl_time.seconds_since(p.entry_time)),
            ),
            ("mfe_after_trailing", num(mfe_after_trailing)),
        ]
    }

    /// Compares one observed value with the expected one: floats bit for bit.
    fn matches(actual: &Value, expected: &Value) -> bool {
        match (actual, expected) {
            (Value::Number(_), Value::Number(_)) => same(actual.as_f64(), expected),
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| matches(x, y))
            }
            _ => actual == expected,
        }
    }

    #[test]
    fn position_traces_replay_exactly() {
        let fx = load_fixture("position_traces.json");
        let cases = fx["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 78);
        let mut steps_checked = 0;
        for case in cases {
            let name = case["name"].as_str().expect("name");
            let mut p = PositionState::new(
                case["symbol"].as_str().expect("symbol"),
                case["side"].as_str().expect("side"),
                f(&case["entry_price"]),
                f(&case["amount"]),
                f(&case["leverage"]),
                f(&case["stop_loss"]),
                case["take_profit"].as_f64(),
                T0,
            );
            let trailing = f(&case["trailing_percentage"]);
            for (i, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
                let dt = step["dt_seconds"].as_i64().expect("integer dt_seconds");
                let now = Timestamp(T0.0 + dt * 1_000_000);
                let price = f(&step["price"]);
                let sr = sr_from_json(&step["support_resistance"]);
                let inputs = TakeProfitInputs {
                    momentum: f(&step["momentum"]),
                    trend_strength: f(&step["trend_strength"]),
                    volatility: f(&step["volatility"]),
                    rsi: f(&step["rsi"]),
                    support_resistance: sr.as_ref(),
                };
                p.update_trailing_stop(price, trailing, inputs.volatility, inputs.momentum)
                    .unwrap_or_else(|e| panic!("{name} step {i}: {e}"));
                let mfe_after_trailing = p.max_favorable_excursion;
                p.update_take_profit(now, price, &inputs)
                    .unwrap_or_else(|e| panic!("{name} step {i}: {e}"));
                let check = p.should_close(price);
                let after = &step["after"];
                let got = observed(&p, check, mfe_after_trailing);
                assert_eq!(
                    after.as_object().expect("after").len(),
                    got.len(),
                    "{name}: keys"
                );
                for (key, actual) in &got {
                    let expected = &after[*key];
                    assert!(
                        matches(actual, expected),
                        "{name} step {i} (dt {dt} s, price {price:?}): {key} = {actual}, expected {expected}"
                    );
                }
                steps_checked += 1;
            }
        }
        assert_eq!(steps_checked, 3639);
    }

    fn long_position() -> PositionState {
        PositionState::new(
            "X",
            "long",
            100.0,
            1.0,
            5.0,
            95.0,
            Some(110.0),
            Timestamp(0),
        )
    }

    #[test]
    fn extends_tp_away_from_entry_with_velocity() {
        let mut p = long_position();
        let now = Timestamp(3_600_000_000); // one hour later
        let inputs = TakeProfitInputs {
            momentum: 0.05,
            trend_strength: 0.8,
            volatility: 0.06,
            ..TakeProfitInputs::default()
        };
        p.update_take_profit(now, 101.5, &inputs).unwrap();
        let r = (101.5 - 100.0) / 100.0 * 5.0; // 0.075
        assert_eq!(p.last_pnl, r);
        assert_eq!(p.profit_velocity, r / 1.0);
        assert_eq!(p.last_pnl_time, now);
        // dt = 1 h > 0.1 h: the reproduced "acceleration" is (v - r / 1) / 1 = 0.
        assert_eq!(p.profit_acceleration, 0.0);
        // m = 1.2 × 1.15 × 1.1 × 1.1 ≈ 1.67 is capped to 1.08 because r > 0.05; progress
        // towards the initial TP is only 15 %, so the extension is accepted.
        assert_eq!(p.take_profit, Some(100.0 * (1.0 + 0.1 * 1.08)));
    }

    #[test]
    fn no_take_profit_means_no_velocity_update() {
        let mut p = PositionState::new("X", "short", 100.0, 1.0, 5.0, 105.0, None, Timestamp(0));
        p.update_take_profit(Timestamp(1_000_000), 90.0, &TakeProfitInputs::default())
            .unwrap();
        assert_eq!(
            (p.last_pnl, p.profit_velocity, p.last_pnl_time),
            (0.0, 0.0, Timestamp(0))
        );
    }

    #[test]
    fn raises_like_the_original() {
        let mut p = long_position();
        p.initial_take_profit = None;
        assert_eq!(
            p.update_take_profit(Timestamp(1), 101.0, &TakeProfitInputs::default()),
            Err(CoreError::Type(
                "unsupported operand type(s) for -: 'NoneType' and 'float'".into()
            ))
        );
        let mut z = PositionState::new("X", "long", 0.0, 1.0, 5.0, 95.0, Some(110.0), Timestamp(0));
        assert_eq!(
            z.update_take_profit(Timestamp(1), 101.0, &TakeProfitInputs::default()),
            Err(CoreError::ZeroDivision("float division by zero".into()))
        );
    }
}
