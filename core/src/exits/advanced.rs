//! `AdvancedExitStrategy.get_comprehensive_exit_signal` (spec §3.2) as a pure function.

use super::{ExitDecision, ExitKind, MarketData, PositionData};
use crate::error::{CoreError, CoreResult};
use crate::format::{py_fixed, py_percent};

/// The profit-scaling targets in order: (leveraged P/L threshold, fraction to sell, name).
/// The first target not yet taken whose threshold is reached fires.
pub const PROFIT_TARGETS: [(f64, f64, &str); 3] = [
    (0.02, 0.25, "First target"),
    (0.04, 0.25, "Second target"),
    (0.06, 0.50, "Third target"),
];

/// Breakeven+ activates at this unleveraged profit...
const BREAKEVEN_ACTIVATION: f64 = 0.015;
/// ...and moves the stop this far past the entry, in the position's favour.
const BREAKEVEN_LOCK: f64 = 0.005;

/// `current_pnl_pct / leverage` with the original's `ZeroDivisionError` as an error value.
fn per_leverage(value: f64, leverage: f64) -> CoreResult<f64> {
    if leverage == 0.0 {
        return Err(CoreError::ZeroDivision("float division by zero".into()));
    }
    Ok(value / leverage)
}

/// The breakeven+ stop (entry × 1.005 for a long, × 0.995 otherwise) when the unleveraged P/L
/// (`current_pnl_pct / leverage`) is at least 1.5 %; `None` below that.
///
/// The original logs `"Breakeven+ protection: Breakeven+0.5% stop activated -> new stop:
/// {stop:.2f}"` at DEBUG whenever this is `Some`, whatever the final decision. Leverage 0 is a
/// `ZeroDivision` error.
pub fn breakeven_plus_stop(pos: &PositionData) -> CoreResult<Option<f64>> {
    let spot = per_leverage(pos.current_pnl_pct, pos.leverage)?;
    if spot >= BREAKEVEN_ACTIVATION {
        let factor = if pos.side_is_long {
            1.0 + BREAKEVEN_LOCK
        } else {
            1.0 - BREAKEVEN_LOCK
        };
        Ok(Some(pos.entry_price * factor))
    } else {
        Ok(None)
    }
}

/// The advanced exit decision, rule for rule as the original (spec §3.2):
///
/// 1. breakeven+ stop suggestion ([`breakeven_plus_stop`]);
/// 2. full exits, the first by priority winning: time (held more than `max_hold_minutes`),
///    volatility spike (only with both volatilities given: current > 2 × entry), momentum
///    reversal (long: momentum < −0.02 and RSI > 70; otherwise momentum > 0.02 and RSI < 30),
///    profit lock (unleveraged peak > 3 % and current below 70 % of it);
/// 3. else the breakeven+ stop as [`ExitDecision::MoveStop`] (it beats partial exits);
/// 4. else profit scaling on the leveraged P/L: the first of [`PROFIT_TARGETS`] not in
///    `targets_taken` that is reached, as [`ExitDecision::PartialExit`];
/// 5. else [`ExitDecision::Hold`].
///
/// With `targets_taken == 0` this is exactly the original (which always answers the first
/// target for any P/L >= 2 %). Errors: `ZeroDivision` for leverage 0, or for an entry
/// volatility of 0 with a positive current volatility, where the original raises.
pub fn comprehensive_exit_signal(
    pos: &PositionData,
    market: &MarketData,
) -> CoreResult<ExitDecision> {
    let suggested_stop = breakeven_plus_stop(pos)?;
    let mut full_exit: Option<(ExitKind, String)> = None;
    // Rules are evaluated in priority order, so the first full exit found is the one taken;
    // later rules still run for their errors, as in the original.
    let mut take = |kind: ExitKind, reason: String| {
        if full_exit.is_none() {
            full_exit = Some((kind, reason));
        }
    };

    let minutes = pos.entry_age_seconds / 60.0;
    if minutes > pos.max_hold_minutes {
        take(
            ExitKind::Time,
            format!("Max hold time reached ({} minutes)", py_fixed(minutes, 0)),
        );
    }

    if let (Some(entry_vol), Some(current_vol)) = (pos.entry_volatility, market.current_volatility)
    {
        if current_vol > entry_vol * 2.0 {
            if entry_vol == 0.0 {
                return Err(CoreError::ZeroDivision("float division by zero".into()));
            }
            let increase = ((current_vol / entry_vol) - 1.0) * 100.0;
            take(
                ExitKind::Volatility,
                format!("Volatility spike detected (+{}%)", py_fixed(increase, 1)),
            );
        }
    }

    let (momentum, rsi) = (market.momentum, market.rsi);
    let reversal = if pos.side_is_long {
        momentum < -0.02 && rsi > 70.0
    } else {
        momentum > 0.02 && rsi < 30.0
    };
    if reversal {
        take(
            ExitKind::MomentumReversal,
            format!(
                "Momentum reversal (RSI: {}, momentum: {})",
                py_fixed(rsi, 1),
                py_fixed(momentum, 3)
            ),
        );
    }

    let spot_current = per_leverage(pos.current_pnl_pct, pos.leverage)?;
    let spot_peak = per_leverage(pos.peak_pnl_pct, pos.leverage)?;
    if spot_peak > 0.03 && spot_current < spot_peak - spot_peak * 0.3 {
        take(
            ExitKind::ProfitLock,
            format!(
                "Profit lock triggered (retraced from {} to {})",
                py_percent(spot_peak, 2, false),
                py_percent(spot_current, 2, false)
            ),
        );
    }

    if let Some((kind, reason)) = full_exit {
        return Ok(ExitDecision::Exit { kind, reason });
    }
    if let Some(price) = suggested_stop {
        return Ok(ExitDecision::MoveStop {
            price,
            reason: super::BREAKEVEN_REASON.to_string(),
        });
    }
    let r = pos.current_pnl_pct;
    let target = PROFIT_TARGETS
        .iter()
        .enumerate()
        .find(|(i, (threshold, _, _))| pos.targets_taken & (1 << i) == 0 && r >= *threshold);
    Ok(match target {
        Some((index, &(_, fraction, name))) => ExitDecision::PartialExit {
            fraction,
            reason: format!("{name} reached ({})", py_percent(r, 2, false)),
            target_index: Some(index),
        },
        None => ExitDecision::Hold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::load_fixture;
    use serde_json::Value;

    fn num(v: &Value, key: &str) -> f64 {
        v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is a number"))
    }

    fn inputs(case: &Value) -> (PositionData, MarketData) {
        let p = &case["position_data"];
        let m = &case["market_data"];
        let pos = PositionData {
            side_is_long: p["side"] == "long",
            entry_price: num(p, "entry_price"),
            current_price: num(p, "current_price"),
            current_pnl_pct: num(p, "current_pnl_pct"),
            peak_pnl_pct: num(p, "peak_pnl_pct"),
            leverage: num(p, "leverage"),
            entry_age_seconds: num(p, "entry_age_seconds"),
            stop_loss: num(p, "stop_loss"),
            take_profit: p["take_profit"].as_f64(),
            ..PositionData::default()
        };
        let market = MarketData {
            volatility: num(m, "volatility"),
            momentum: num(m, "momentum"),
            rsi: num(m, "rsi"),
            trend_strength: num(m, "trend_strength"),
            current_volatility: None,
        };
        (pos, market)
    }

    #[test]
    fn replays_exit_signals_fixture_advanced() {
        let fx = load_fixture("exit_signals.json");
        let cases = fx["advanced"].as_array().unwrap();
        assert_eq!(cases.len(), 600);
        for (i, case) in cases.iter().enumerate() {
            let (pos, market) = inputs(case);
            let decision = comprehensive_exit_signal(&pos, &market).unwrap();
            let (exit, reason, action) = decision.to_original_tuple();
            let want = case["result"].as_array().unwrap();
            assert_eq!(exit, want[0].as_bool().unwrap(), "case {i}: should_exit");
            assert_eq!(reason, want[1].as_str().unwrap(), "case {i}: reason");
            assert_eq!(action, want[2].as_f64(), "case {i}: action");
            // The typed decision agrees with the overloaded original value.
            match (&decision, want[1].as_str().unwrap()) {
                (ExitDecision::MoveStop { .. }, r) => assert_eq!(r, "Breakeven+ stop update"),
                (ExitDecision::PartialExit { target_index, .. }, r) => {
                    assert_eq!(*target_index, Some(0));
                    assert!(r.starts_with("First target reached ("), "case {i}");
                }
                (ExitDecision::Hold, r) => assert_eq!(r, ""),
                (ExitDecision::Exit { .. }, _) => assert!(exit),
            }
        }
    }

    fn long_at(pnl: f64, leverage: f64) -> PositionData {
        PositionData {
            entry_price: 100.0,
            current_price: 100.0 * (1.0 + pnl / leverage),
            current_pnl_pct: pnl,
            peak_pnl_pct: pnl,
            leverage,
            entry_age_seconds: 60.0,
            ..PositionData::default()
        }
    }

    #[test]
    fn zero_leverage_is_an_error_not_a_panic() {
        let err = comprehensive_exit_signal(&long_at(0.01, 0.0), &MarketData::default());
        assert_eq!(
            err,
            Err(CoreError::ZeroDivision("float division by zero".into()))
        );
        assert_eq!(err.unwrap_err().kind_name(), "ZeroDivisionError");
    }

    #[test]
    fn each_profit_target_is_taken_once() {
        let market = MarketData::default();
        // 10x, 5 % ROI: no breakeven (0.5 % unleveraged), first target reached.
        let mut pos = long_at(0.05, 10.0);
        let first = comprehensive_exit_signal(&pos, &market).unwrap();
        assert_eq!(
            first,
            ExitDecision::PartialExit {
                fraction: 0.25,
                reason: "First target reached (5.00%)".into(),
                target_index: Some(0)
            }
        );
        assert_eq!(
            first.log_message().unwrap(),
            "Partial exit signal: profit_scaling - First target reached (5.00%) (25%)"
        );
        pos.targets_taken = 0b001;
        let second = comprehensive_exit_signal(&pos, &market).unwrap();
        assert!(matches!(
            second,
            ExitDecision::PartialExit {
                target_index: Some(1),
                ..
            }
        ));
        pos.targets_taken = 0b011;
        assert_eq!(
            comprehensive_exit_signal(&pos, &market).unwrap(),
            ExitDecision::Hold
        );
        pos.current_pnl_pct = 0.07;
        pos.peak_pnl_pct = 0.07;
        let third = comprehensive_exit_signal(&pos, &market).unwrap();
        assert_eq!(
            third.to_original_tuple(),
            (false, "Third target reached (7.00%)".into(), Some(0.5))
        );
        pos.targets_taken = 0b111;
        assert_eq!(
            comprehensive_exit_signal(&pos, &market).unwrap(),
            ExitDecision::Hold
        );
    }

    #[test]
    fn volatility_spike_and_time_priority() {
        let mut pos = long_at(0.0, 10.0);
        pos.entry_volatility = Some(0.02);
        let market = MarketData {
            current_volatility: Some(0.05),
            ..MarketData::default()
        };
        let d = comprehensive_exit_signal(&pos, &market).unwrap();
        assert_eq!(
            d,
            ExitDecision::Exit {
                kind: ExitKind::Volatility,
                reason: "Volatility spike detected (+150.0%)".into()
            }
        );
        assert_eq!(
            d.log_message().unwrap(),
            "Exit signal: volatility - Volatility spike detected (+150.0%)"
        );
        pos.entry_age_seconds = 86430.0; // 1440.5 minutes, printed half-to-even
        let d = comprehensive_exit_signal(&pos, &market).unwrap();
        assert_eq!(
            d.to_original_tuple().1,
            "Max hold time reached (1440 minutes)"
        );
        pos.entry_volatility = Some(0.0);
        assert!(comprehensive_exit_signal(&pos, &market).is_err());
    }
}
