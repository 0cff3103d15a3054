//! `SmartExitOptimizer.should_exit_early` (spec §3.3): a score of early-exit reasons.

/// The inputs of `should_exit_early` (the original's keyword arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmartExitInputs {
    /// Leveraged P/L fraction (`position_pnl`).
    pub position_pnl: f64,
    /// Minutes since entry (`position_duration_minutes`).
    pub duration_minutes: f64,
    /// Price momentum (`current_momentum`).
    pub momentum: f64,
    /// RSI 0..100 (`current_rsi`).
    pub rsi: f64,
    /// Volatility (Bollinger width).
    pub volatility: f64,
    /// Last volume over its 20-candle mean.
    pub volume_ratio: f64,
    /// Whether the trend is weakening against the position.
    pub trend_weakening: bool,
}

/// The result of `should_exit_early` (the original's dict).
#[derive(Clone, Debug, PartialEq)]
pub struct SmartExitSignal {
    /// `score >= 50`.
    pub should_exit: bool,
    /// `min(score / 100, 1.0)`; the manager exits only above 0.7.
    pub confidence: f64,
    /// Sum of the rule weights (a multiple of 5).
    pub score: f64,
    /// The reasons that scored, in rule order.
    pub reasons: Vec<&'static str>,
    /// `", ".join(reasons)`, or `"no clear exit signal"` (borrowed when nothing scored: the
    /// common case costs no allocation).
    pub reason_text: std::borrow::Cow<'static, str>,
}

/// `should_exit_early(**inputs)`, side-agnostic exactly as the original (spec §6 item 13):
///
/// 1. profitable: momentum < −0.02 and RSI > 65 → +30 `momentum_reversal`, else momentum
///    < −0.015 and RSI > 70 → +40 `strong_momentum_reversal`;
/// 2. P/L > 3 %: momentum < 0 → +25 `protect_large_profit`; P/L > 7 % → +30 `exceptional_profit`;
/// 3. more than 480 minutes with |P/L| < 1 % → +20 `stalled_position`;
/// 4. profitable with volatility > 0.08 → +15 `volatility_spike`;
/// 5. profitable with volume ratio < 0.6 → +15 `low_volume`;
/// 6. trend weakening with P/L > 1.5 % → +20 `trend_weakening`;
/// 7. profitable with RSI > 80 → +25 `extreme_overbought`, else losing with RSI < 20 → +25
///    `extreme_oversold`.
///
/// These momentum/RSI rules only make sense for a long; see [`should_exit_early_for_side`].
pub fn should_exit_early(inputs: &SmartExitInputs) -> SmartExitSignal {
    let SmartExitInputs {
        position_pnl: pnl,
        duration_minutes,
        momentum,
        rsi,
        volatility,
        volume_ratio,
        trend_weakening,
    } = *inputs;
    let mut score = 0.0;
    let mut reasons = Vec::new();
    let mut add = |points: f64, reason: &'static str| {
        score += points;
        reasons.push(reason);
    };

    if pnl > 0.0 {
        if momentum < -0.02 && rsi > 65.0 {
            add(30.0, "momentum_reversal");
        } else if momentum < -0.015 && rsi > 70.0 {
            add(40.0, "strong_momentum_reversal");
        }
    }
    if pnl > 0.03 {
        if momentum < 0.0 {
            add(25.0, "protect_large_profit");
        }
        if pnl > 0.07 {
            add(30.0, "exceptional_profit");
        }
    }
    if duration_minutes > 480.0 && pnl.abs() < 0.01 {
        add(20.0, "stalled_position");
    }
    if volatility > 0.08 && pnl > 0.0 {
        add(15.0, "volatility_spike");
    }
    if volume_ratio < 0.6 && pnl > 0.0 {
        add(15.0, "low_volume");
    }
    if trend_weakening && pnl > 0.015 {
        add(20.0, "trend_weakening");
    }
    if rsi > 80.0 && pnl > 0.0 {
        add(25.0, "extreme_overbought");
    } else if rsi < 20.0 && pnl < 0.0 {
        add(25.0, "extreme_oversold");
    }

    let ratio = score / 100.0;
    // Python's min(ratio, 1.0): the first argument unless the second is smaller.
    let confidence = if 1.0 < ratio { 1.0 } else { ratio };
    let reason_text = if reasons.is_empty() {
        std::borrow::Cow::Borrowed("no clear exit signal")
    } else {
        std::borrow::Cow::Owned(reasons.join(", "))
    };
    SmartExitSignal {
        should_exit: score >= 50.0,
        confidence,
        score,
        reasons,
        reason_text,
    }
}

/// The smart exit with the momentum and RSI conditions mirrored for shorts (DESIGN §6.13).
///
/// For a long this is [`should_exit_early`]. For a short the rules are evaluated in the short's
/// own frame: momentum with its sign flipped and RSI mirrored as `100 − rsi`, so that falling
/// prices (good for a short) no longer score as a reversal and an oversold market (RSI < 20)
/// is the short's "extreme_overbought". Reason names keep the original's (long-frame) labels.
pub fn should_exit_early_for_side(inputs: &SmartExitInputs, is_long: bool) -> SmartExitSignal {
    if is_long {
        return should_exit_early(inputs);
    }
    should_exit_early(&SmartExitInputs {
        momentum: -inputs.momentum,
        rsi: 100.0 - inputs.rsi,
        ..*inputs
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::load_fixture;

    #[test]
    fn replays_exit_signals_fixture_smart() {
        let fx = load_fixture("exit_signals.json");
        let cases = fx["smart"].as_array().unwrap();
        assert_eq!(cases.len(), 600);
        for (i, case) in cases.iter().enumerate() {
            let k = &case["kwargs"];
            let f = |key: &str| k[key].as_f64().unwrap();
            let inputs = SmartExitInputs {
                position_pnl: f("position_pnl"),
                duration_minutes: f("position_duration_minutes"),
                momentum: f("current_momentum"),
                rsi: f("current_rsi"),
                volatility: f("volatility"),
                volume_ratio: f("volume_ratio"),
                trend_weakening: k["trend_weakening"].as_bool().unwrap(),
            };
            let got = should_exit_early(&inputs);
            let want = &case["result"];
            assert_eq!(
                got.should_exit,
                want["should_exit"].as_bool().unwrap(),
                "case {i}"
            );
            assert_eq!(
                got.confidence,
                want["confidence"].as_f64().unwrap(),
                "case {i}"
            );
            assert_eq!(got.score, want["score"].as_f64().unwrap(), "case {i}");
            let reasons: Vec<&str> = want["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            assert_eq!(got.reasons, reasons, "case {i}");
            assert_eq!(
                got.reason_text,
                want["reason_text"].as_str().unwrap(),
                "case {i}"
            );
        }
    }

    fn profitable_short_in_a_falling_market() -> SmartExitInputs {
        SmartExitInputs {
            position_pnl: 0.08,
            duration_minutes: 120.0,
            momentum: -0.03,
            rsi: 82.0,
            volatility: 0.03,
            volume_ratio: 1.0,
            trend_weakening: false,
        }
    }

    #[test]
    fn original_scores_a_profitable_short_as_an_exit() {
        let s = should_exit_early(&profitable_short_in_a_falling_market());
        assert_eq!(s.score, 110.0);
        assert!(s.should_exit && s.confidence == 1.0);
        assert_eq!(
            s.reason_text,
            "momentum_reversal, protect_large_profit, exceptional_profit, extreme_overbought"
        );
    }

    #[test]
    fn mirrored_rules_do_not_exit_a_profitable_short() {
        let inputs = profitable_short_in_a_falling_market();
        let s = should_exit_early_for_side(&inputs, false);
        assert_eq!(s.reasons, vec!["exceptional_profit"]);
        assert_eq!(s.score, 30.0);
        assert!(!s.should_exit);
        // A long is unchanged, and a short facing a rising, oversold-turned-overbought market
        // (momentum +0.03, RSI 18) is scored like a long facing the mirror image.
        assert_eq!(
            should_exit_early_for_side(&inputs, true),
            should_exit_early(&inputs)
        );
        let against = SmartExitInputs {
            momentum: 0.03,
            rsi: 18.0,
            ..inputs
        };
        assert_eq!(
            should_exit_early_for_side(&against, false),
            should_exit_early(&inputs)
        );
    }
}
