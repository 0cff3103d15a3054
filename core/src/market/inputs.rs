//! What the update cycle reads from a position's candles (spec §2.6 step 7): the market inputs of
//! the adaptive trailing stop, the dynamic take profit and the exit rules.

use super::{cycle_indicators, support_resistance, Candle, DEFAULT_LOOKBACK};
use crate::exits::{MarketData, SmartExitInputs};
use crate::levels::SupportResistance;

/// The market inputs of one position for one cycle, computed from its candles.
///
/// Built fresh for every position from that position's own candles; a position without usable
/// candles gets [`MarketInputs::default`] (the original's fallbacks), never another position's
/// values (DESIGN §6.10).
#[derive(Clone, Debug, PartialEq)]
pub struct MarketInputs {
    /// Bollinger width (`bb_width`): the "volatility" of the trailing stop and take profit.
    pub volatility: f64,
    /// `pct_change(10)` of the closes.
    pub momentum: f64,
    /// RSI of the last candle.
    pub rsi: f64,
    /// `min(|sma_20 − sma_50| / sma_50 × 10, 1)`, or 0.5 when it cannot be computed.
    pub trend_strength: f64,
    /// Last volume over the mean of the last 20 volumes (1.0 without candles).
    pub volume_ratio: f64,
    /// Support/resistance levels of the last 50 candles; `None` without candles.
    pub support_resistance: Option<SupportResistance>,
}

impl Default for MarketInputs {
    /// The original's fallbacks: volatility 0.03, momentum 0, RSI 50, trend strength 0.5,
    /// volume ratio 1.0, no support/resistance.
    fn default() -> Self {
        MarketInputs {
            volatility: 0.03,
            momentum: 0.0,
            rsi: 50.0,
            trend_strength: 0.5,
            volume_ratio: 1.0,
            support_resistance: None,
        }
    }
}

impl MarketInputs {
    /// The inputs from validated `candles` (oldest first); `None` below
    /// [`super::MIN_CANDLES`] candles (the original then uses its fallbacks).
    pub fn from_candles(candles: &[Candle]) -> Option<MarketInputs> {
        let ind = cycle_indicators(candles)?;
        Some(MarketInputs {
            volatility: ind.bb_width,
            momentum: ind.momentum,
            rsi: ind.rsi,
            trend_strength: trend_strength(ind.sma_20, ind.sma_50),
            volume_ratio: ind.volume_ratio,
            support_resistance: Some(support_resistance(candles, DEFAULT_LOOKBACK)),
        })
    }

    /// The advanced exit's `market_data` (`volatility`, `momentum`, `rsi`, `trend_strength`).
    pub fn market_data(&self) -> MarketData {
        MarketData {
            volatility: self.volatility,
            momentum: self.momentum,
            rsi: self.rsi,
            trend_strength: self.trend_strength,
            current_volatility: None,
        }
    }

    /// The smart exit's inputs for a position with leveraged P/L `position_pnl`, held for
    /// `duration_minutes`, on `side`: the trend is "weakening" for a long when momentum is
    /// below −1 % with a trend strength under 0.4, and for a short (`side == "short"`) when
    /// momentum is above +1 % with the same trend strength.
    pub fn smart_exit_inputs(
        &self,
        position_pnl: f64,
        duration_minutes: f64,
        side: &str,
    ) -> SmartExitInputs {
        let weak_trend = self.trend_strength < 0.4;
        let trend_weakening = (side == "long" && self.momentum < -0.01 && weak_trend)
            || (side == "short" && self.momentum > 0.01 && weak_trend);
        SmartExitInputs {
            position_pnl,
            duration_minutes,
            momentum: self.momentum,
            rsi: self.rsi,
            volatility: self.volatility,
            volume_ratio: self.volume_ratio,
            trend_weakening,
        }
    }
}

/// The manager's trend strength: `min(abs(sma_20 − sma_50) / sma_50 × 10, 1.0)` when `sma_50 > 0`
/// and neither mean is NaN, else 0.5 (operation order and Python's `min` as the original).
pub fn trend_strength(sma_20: f64, sma_50: f64) -> f64 {
    if sma_50 > 0.0 && !sma_20.is_nan() && !sma_50.is_nan() {
        let t = (sma_20 - sma_50).abs() / sma_50 * 10.0;
        // Python's min(t, 1.0): t unless 1.0 is smaller.
        if 1.0 < t {
            1.0
        } else {
            t
        }
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::latest_indicators;
    use crate::market::test_util::fixture_candles;
    use crate::test_support::load_fixture;

    #[test]
    fn trend_strength_rules() {
        assert_eq!(trend_strength(105.0, 100.0), 0.5);
        assert_eq!(trend_strength(95.0, 100.0), 0.5);
        assert_eq!(trend_strength(100.0, 100.0), 0.0);
        assert_eq!(trend_strength(120.0, 100.0), 1.0);
        assert!((trend_strength(101.0, 100.0) - 0.1).abs() < 1e-12);
        assert_eq!(trend_strength(f64::NAN, 100.0), 0.5);
        assert_eq!(trend_strength(100.0, 0.0), 0.5);
    }

    #[test]
    fn inputs_come_from_the_fixture_indicators() {
        let fx = load_fixture("indicators.json");
        for case in fx["cases"].as_array().unwrap() {
            let candles = fixture_candles(&case["ohlcv"]);
            let Some(inputs) = MarketInputs::from_candles(&candles) else {
                assert!(candles.len() < 50, "{}", case["name"]);
                continue;
            };
            let ind = latest_indicators(&candles).unwrap();
            let cycle = crate::market::cycle_indicators(&candles).unwrap();
            let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            for (got, want) in [
                (cycle.close, ind.close),
                (cycle.sma_20, ind.sma_20),
                (cycle.sma_50, ind.sma_50),
                (cycle.rsi, ind.rsi),
                (cycle.bb_width, ind.bb_width),
                (cycle.volume_ratio, ind.volume_ratio),
                (cycle.momentum, ind.momentum),
            ] {
                assert!(same(got, want), "{}: {got} != {want}", case["name"]);
            }
            assert_eq!(inputs.volatility, ind.bb_width);
            assert_eq!(inputs.momentum, ind.momentum);
            assert_eq!(inputs.rsi, ind.rsi);
            assert_eq!(inputs.volume_ratio, ind.volume_ratio);
            assert_eq!(
                inputs.trend_strength,
                trend_strength(ind.sma_20, ind.sma_50)
            );
            let sr = inputs.support_resistance.as_ref().unwrap();
            assert_eq!(sr, &support_resistance(&candles, 50));
            assert_eq!(inputs.market_data().momentum, ind.momentum);
        }
    }

    #[test]
    fn trend_weakening_depends_on_the_side() {
        let m = MarketInputs {
            momentum: -0.02,
            trend_strength: 0.3,
            ..MarketInputs::default()
        };
        assert!(m.smart_exit_inputs(0.02, 10.0, "long").trend_weakening);
        assert!(!m.smart_exit_inputs(0.02, 10.0, "short").trend_weakening);
        let up = MarketInputs {
            momentum: 0.02,
            ..m.clone()
        };
        assert!(up.smart_exit_inputs(0.02, 10.0, "short").trend_weakening);
        assert!(!up.smart_exit_inputs(0.02, 10.0, "long").trend_weakening);
        assert!(!up.smart_exit_inputs(0.02, 10.0, "SHORT").trend_weakening);
        let strong = MarketInputs {
            trend_strength: 0.4,
            ..up
        };
        assert!(
            !strong
                .smart_exit_inputs(0.02, 10.0, "short")
                .trend_weakening
        );
        assert_eq!(MarketInputs::default().volume_ratio, 1.0);
    }
}
