//! Exit rules as pure functions with typed results: the original's
//! `AdvancedExitStrategy.get_comprehensive_exit_signal` (spec §3.2, [`advanced`]) and
//! `SmartExitOptimizer.should_exit_early` (spec §3.3, [`smart`]).
//!
//! The original overloads the third value of the advanced exit's tuple (a full-exit marker, a
//! stop *price* or a partial-exit *fraction*), which let a stop price below 1 be read as a
//! fraction to sell (spec §6 item 7). Here the decision is an [`ExitDecision`] enum (DESIGN
//! §6.7); [`ExitDecision::to_original_tuple`] gives the original shape where compatibility
//! needs it. Reason texts are formatted exactly as the original's f-strings.

pub mod advanced;
pub mod smart;

pub use advanced::{breakeven_plus_stop, comprehensive_exit_signal, PROFIT_TARGETS};

/// The reason of the original's breakeven+ stop suggestion.
pub const BREAKEVEN_REASON: &str = "Breakeven+ stop update";
pub use smart::{should_exit_early, should_exit_early_for_side, SmartExitInputs, SmartExitSignal};

/// What the advanced exit decided.
#[derive(Clone, Debug, PartialEq)]
pub enum ExitDecision {
    /// Close the whole position.
    Exit {
        /// Which rule fired (the highest-priority one).
        kind: ExitKind,
        /// The original's reason text, e.g. `"Max hold time reached (1441 minutes)"`.
        reason: String,
    },
    /// Move the stop loss to `price` (breakeven+ protection); nothing is sold.
    MoveStop {
        /// The suggested stop price.
        price: f64,
        /// Always `"Breakeven+ stop update"`.
        reason: String,
    },
    /// Sell `fraction` of the position at a profit target.
    PartialExit {
        /// Share of the position to sell (0.25 or 0.5).
        fraction: f64,
        /// The original's reason text, e.g. `"First target reached (2.50%)"`.
        reason: String,
        /// Index of the target in [`PROFIT_TARGETS`] (bit to set in `targets_taken`); `None`
        /// for a partial exit of a user-supplied strategy that names none of those targets.
        target_index: Option<usize>,
    },
    /// Nothing to do.
    Hold,
}

/// The full-exit rules, in the original's priority order (earlier wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitKind {
    /// Held longer than `max_hold_minutes`.
    Time,
    /// Volatility more than doubled since entry.
    Volatility,
    /// Momentum turned against the position with RSI at an extreme.
    MomentumReversal,
    /// More than 30 % of a > 3 % (unleveraged) peak profit given back.
    ProfitLock,
    /// A full exit decided by a user-supplied strategy (its reason says why).
    Custom,
}

impl ExitKind {
    /// The original's signal type name (`"time"`, `"volatility"`, `"momentum_reversal"`,
    /// `"profit_lock"`), as in its log line `"Exit signal: {type} - {reason}"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitKind::Time => "time",
            ExitKind::Volatility => "volatility",
            ExitKind::MomentumReversal => "momentum_reversal",
            ExitKind::ProfitLock => "profit_lock",
            ExitKind::Custom => "custom",
        }
    }
}

impl ExitDecision {
    /// The original's return value `(should_exit, reason, action)`: `(True, reason, 1.0)`,
    /// `(False, "Breakeven+ stop update", stop_price)`, `(False, reason, fraction)` or
    /// `(False, "", None)`.
    pub fn to_original_tuple(&self) -> (bool, String, Option<f64>) {
        match self {
            ExitDecision::Exit { reason, .. } => (true, reason.clone(), Some(1.0)),
            ExitDecision::MoveStop { price, reason } => (false, reason.clone(), Some(*price)),
            ExitDecision::PartialExit {
                fraction, reason, ..
            } => (false, reason.clone(), Some(*fraction)),
            ExitDecision::Hold => (false, String::new(), None),
        }
    }

    /// Reads a user-supplied strategy's `(should_exit, reason, action)` answer, whose third value
    /// the original overloads, into a typed decision (DESIGN §6.7):
    ///
    /// - `should_exit` → [`ExitDecision::Exit`] (kind [`ExitKind::Custom`]);
    /// - no action → [`ExitDecision::Hold`];
    /// - the reason `"Breakeven+ stop update"` → [`ExitDecision::MoveStop`] whatever the price
    ///   (the original sold that fraction when the stop price was at most 1);
    /// - an action in (0, 1] → [`ExitDecision::PartialExit`], with the target index when the
    ///   reason names one of [`PROFIT_TARGETS`] (`"First target reached (...)"`);
    /// - an action above 1 → [`ExitDecision::MoveStop`];
    /// - an action that is not a finite number above 0 → an error describing it (the manager
    ///   warns and holds; the original would have set the stop to it).
    pub fn from_original_tuple(
        should_exit: bool,
        reason: String,
        action: Option<f64>,
    ) -> Result<ExitDecision, String> {
        if should_exit {
            return Ok(ExitDecision::Exit {
                kind: ExitKind::Custom,
                reason,
            });
        }
        let Some(action) = action else {
            return Ok(ExitDecision::Hold);
        };
        if !(action.is_finite() && action > 0.0) {
            return Err(format!(
                "action {} is neither a fraction to sell nor a stop price",
                crate::format::py_repr_float(action)
            ));
        }
        if reason == BREAKEVEN_REASON || action > 1.0 {
            return Ok(ExitDecision::MoveStop {
                price: action,
                reason,
            });
        }
        let target_index = PROFIT_TARGETS.iter().position(|(_, _, name)| {
            reason
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(" reached"))
        });
        Ok(ExitDecision::PartialExit {
            fraction: action,
            reason,
            target_index,
        })
    }

    /// The original's INFO log line for this decision, if it logs one:
    /// `"Exit signal: {type} - {reason}"` or
    /// `"Partial exit signal: profit_scaling - {reason} ({fraction*100:.0f}%)"`.
    pub fn log_message(&self) -> Option<String> {
        match self {
            ExitDecision::Exit {
                kind: ExitKind::Custom,
                ..
            } => None,
            ExitDecision::Exit { kind, reason } => {
                Some(format!("Exit signal: {} - {reason}", kind.as_str()))
            }
            ExitDecision::PartialExit {
                fraction, reason, ..
            } => Some(format!(
                "Partial exit signal: profit_scaling - {reason} ({}%)",
                crate::format::py_fixed(fraction * 100.0, 0)
            )),
            ExitDecision::MoveStop { .. } | ExitDecision::Hold => None,
        }
    }
}

/// The position side of the advanced exit's inputs (`position_data` in the original).
///
/// All P/L values are fractions; `current_pnl_pct` is the leveraged ROI the manager computes and
/// `peak_pnl_pct` its maximum favourable excursion (which mixes leveraged and unleveraged
/// values, kept for parity).
#[derive(Clone, Debug, PartialEq)]
pub struct PositionData {
    /// `side == 'long'`; any other side is treated as a short, as the original does.
    pub side_is_long: bool,
    /// Entry price.
    pub entry_price: f64,
    /// Current price.
    pub current_price: f64,
    /// Current leveraged P/L fraction.
    pub current_pnl_pct: f64,
    /// Peak P/L fraction so far (the manager's MFE).
    pub peak_pnl_pct: f64,
    /// Leverage; 0 is an error (the original raises `ZeroDivisionError`).
    pub leverage: f64,
    /// Seconds since entry (`(now - entry_time).total_seconds()`).
    pub entry_age_seconds: f64,
    /// Maximum holding time in minutes (the original's default 1440; the manager never sets it).
    pub max_hold_minutes: f64,
    /// Volatility when the position was opened; the volatility-spike rule runs only with this
    /// and [`MarketData::current_volatility`] (the original manager passes neither).
    pub entry_volatility: Option<f64>,
    /// Stop loss (passed by the manager; no rule reads it).
    pub stop_loss: f64,
    /// Take profit (passed by the manager; no rule reads it).
    pub take_profit: Option<f64>,
    /// Bitmask of [`PROFIT_TARGETS`] already taken (bit `i` = target `i`), so that each target
    /// is taken once (DESIGN §6.8). 0 reproduces the original, which retakes the first target.
    pub targets_taken: u32,
}

impl Default for PositionData {
    /// A flat long with the original's defaults (leverage 10, 24 h maximum hold).
    fn default() -> Self {
        PositionData {
            side_is_long: true,
            entry_price: 0.0,
            current_price: 0.0,
            current_pnl_pct: 0.0,
            peak_pnl_pct: 0.0,
            leverage: 10.0,
            entry_age_seconds: 0.0,
            max_hold_minutes: 1440.0,
            entry_volatility: None,
            stop_loss: 0.0,
            take_profit: None,
            targets_taken: 0,
        }
    }
}

/// The market side of the advanced exit's inputs (`market_data` in the original).
#[derive(Clone, Debug, PartialEq)]
pub struct MarketData {
    /// Volatility (Bollinger width; passed by the manager, no rule reads it).
    pub volatility: f64,
    /// Price momentum (`pct_change(10)`).
    pub momentum: f64,
    /// RSI (0..100).
    pub rsi: f64,
    /// Trend strength 0..1 (passed by the manager, no rule reads it).
    pub trend_strength: f64,
    /// Current volatility for the volatility-spike rule (see [`PositionData::entry_volatility`]).
    pub current_volatility: Option<f64>,
}

impl Default for MarketData {
    /// The manager's fallbacks: volatility 0.03, momentum 0, RSI 50, trend strength 0.5.
    fn default() -> Self {
        MarketData {
            volatility: 0.03,
            momentum: 0.0,
            rsi: 50.0,
            trend_strength: 0.5,
            current_volatility: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_tuples_read_as_typed_decisions() {
        let read = |exit, reason: &str, action| {
            ExitDecision::from_original_tuple(exit, reason.to_owned(), action)
        };
        assert_eq!(
            read(true, "Max hold time reached (1441 minutes)", Some(1.0)),
            Ok(ExitDecision::Exit {
                kind: ExitKind::Custom,
                reason: "Max hold time reached (1441 minutes)".into()
            })
        );
        assert_eq!(read(false, "", None), Ok(ExitDecision::Hold));
        // A breakeven stop below 1 is a stop, not a fraction (§6.7).
        assert_eq!(
            read(false, BREAKEVEN_REASON, Some(0.5025)),
            Ok(ExitDecision::MoveStop {
                price: 0.5025,
                reason: BREAKEVEN_REASON.into()
            })
        );
        assert_eq!(
            read(false, "Second target reached (4.10%)", Some(0.25)),
            Ok(ExitDecision::PartialExit {
                fraction: 0.25,
                reason: "Second target reached (4.10%)".into(),
                target_index: Some(1)
            })
        );
        assert_eq!(
            read(false, "sell some", Some(1.0)),
            Ok(ExitDecision::PartialExit {
                fraction: 1.0,
                reason: "sell some".into(),
                target_index: None
            })
        );
        assert_eq!(
            read(false, "trail", Some(101.5)),
            Ok(ExitDecision::MoveStop {
                price: 101.5,
                reason: "trail".into()
            })
        );
        for bad in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert!(read(false, "x", Some(bad)).is_err(), "{bad}");
        }
        // Custom exits log nothing of their own (the strategy logs).
        assert_eq!(read(true, "x", None).unwrap().log_message(), None);
    }
}
