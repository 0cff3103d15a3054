//! Step 7 of the per-position update (spec §2.6): the market inputs from the position's candles,
//! the adaptive trailing stop and the dynamic take profit, with the original's log lines.
//!
//! With at least 50 valid candles the inputs are computed from them (indicators, trend strength,
//! support/resistance); otherwise the stop trails with the default inputs ("simple trailing
//! stop") and the later steps get the original's fallbacks — never the values of the position
//! examined before (the original leaked them through its generator frame, §6.10). Malformed
//! candles (rows that are not six numbers, NaN, prices <= 0, high < low, negative volume) are
//! rejected with a warning and take the simple path for this cycle.

use log::Level;

use super::exit_rules::ExitRules;
use super::messages::Channel;
use super::methods::Methods;
use super::Manager;
use crate::book::SharedPosition;
use crate::clock::Timestamp;
use crate::error::CoreResult;
use crate::exchange::{Ohlcv, MAX_CANDLES};
use crate::format::py_fixed;
use crate::market::{validate_candles, MarketInputs, MIN_CANDLES};
use crate::position::TakeProfitInputs;

/// Python's `f"{x:+.{decimals}f}"` (a `+` before non-negative values and NaN).
pub(super) fn py_fixed_signed(x: f64, decimals: usize) -> String {
    let body = py_fixed(x, decimals);
    if body.starts_with('-') {
        body
    } else {
        format!("+{body}")
    }
}

/// Why the simple trailing path was taken (the original's words in its DEBUG line).
enum Simple {
    NoMarketData,
    IndicatorsFailed,
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// The exit rules the update cycle asks (built-in unless replaced by the caller).
    pub fn exit_rules(&self) -> &ExitRules {
        &self.exit_rules
    }

    /// The market inputs from `ohlcv`, or why there are none (logging a warning for malformed
    /// candles). Pure computation: runs without touching the caller's interpreter.
    fn market_inputs(&self, symbol: &str, ohlcv: &Ohlcv) -> Result<MarketInputs, Simple> {
        let malformed = |problem: &dyn std::fmt::Display| {
            self.log(Channel::Main, Level::Warn, || {
                format!("Malformed OHLCV data for {symbol}, ignoring it: {problem}")
            });
            Simple::IndicatorsFailed
        };
        if let Some(problem) = &ohlcv.problem {
            return Err(malformed(problem));
        }
        if ohlcv.skipped > 0 {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "OHLCV data for {symbol} had {} candles, more than the {MAX_CANDLES} read: \
                     using its last {}",
                    ohlcv.skipped + ohlcv.rows.len(),
                    ohlcv.rows.len()
                )
            });
        }
        if ohlcv.rows.len() < MIN_CANDLES {
            return Err(Simple::NoMarketData);
        }
        let candles = validate_candles(&ohlcv.rows).map_err(|e| malformed(&e))?;
        MarketInputs::from_candles(&candles).ok_or(Simple::IndicatorsFailed)
    }

    /// Step 7: market inputs, trailing stop and take profit (at `now`, the examination's
    /// clock reading). Returns the inputs the exit steps use (the defaults on the simple path).
    pub(super) fn market_step(
        &self,
        symbol: &str,
        position: &SharedPosition,
        methods: &Methods<'_>,
        price: f64,
        ohlcv: &Ohlcv,
        now: Timestamp,
    ) -> CoreResult<MarketInputs> {
        let trailing = self.trailing_stop_percentage();
        let market = match self.market_inputs(symbol, ohlcv) {
            Ok(market) => market,
            Err(why) => {
                let why = match why {
                    Simple::NoMarketData => "no market data",
                    Simple::IndicatorsFailed => "indicators failed",
                };
                self.log(Channel::Position, Level::Debug, || {
                    format!("  Using simple trailing stop ({why})")
                });
                methods.update_trailing_stop(price, trailing, 0.03, 0.0)?;
                return Ok(MarketInputs::default());
            }
        };

        if self.log_enabled(Channel::Position, Level::Debug) {
            self.log(Channel::Position, Level::Debug, || {
                "  Market Indicators:".to_owned()
            });
            self.log(Channel::Position, Level::Debug, || {
                format!(
                    "    Volatility (BB Width): {}",
                    py_fixed(market.volatility, 4)
                )
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("    Momentum: {}", py_fixed_signed(market.momentum, 4))
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("    RSI: {}", py_fixed(market.rsi, 2))
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("    Trend Strength: {}", py_fixed(market.trend_strength, 2))
            });
        }

        let old_stop = position.lock().stop_loss;
        methods.update_trailing_stop(price, trailing, market.volatility, market.momentum)?;
        let new_stop = position.lock().stop_loss;
        if new_stop != old_stop {
            self.log(Channel::Position, Level::Info, || {
                format!(
                    "  🔄 Trailing stop updated: {} -> {}",
                    py_fixed(old_stop, 2),
                    py_fixed(new_stop, 2)
                )
            });
        }

        let inputs = TakeProfitInputs {
            momentum: market.momentum,
            trend_strength: market.trend_strength,
            volatility: market.volatility,
            rsi: market.rsi,
            support_resistance: market.support_resistance.as_ref(),
        };
        let old_tp = position.lock().take_profit;
        methods.update_take_profit(now, price, &inputs)?;
        let new_tp = position.lock().take_profit;
        if let (Some(old), Some(new)) = (old_tp, new_tp) {
            if new != old {
                self.log(Channel::Position, Level::Info, || {
                    format!(
                        "  🎯 Take profit adjusted: {} -> {}",
                        py_fixed(old, 2),
                        py_fixed(new, 2)
                    )
                });
            }
        }
        Ok(market)
    }
}

#[cfg(test)]
mod tests {
    use super::py_fixed_signed;

    #[test]
    fn signed_fixed_like_python() {
        assert_eq!(py_fixed_signed(0.01234, 4), "+0.0123");
        assert_eq!(py_fixed_signed(-0.01236, 4), "-0.0124");
        assert_eq!(py_fixed_signed(0.0, 4), "+0.0000");
        assert_eq!(py_fixed_signed(-0.0, 4), "-0.0000");
        assert_eq!(py_fixed_signed(f64::NAN, 4), "+nan");
    }
}

#[cfg(test)]
#[path = "adaptive_tests.rs"]
mod adaptive_tests;
