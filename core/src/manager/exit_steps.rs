//! Steps 9 and 10 of the per-position update (spec §2.6): the advanced exit (breakeven+, time,
//! momentum reversal, profit lock, profit scaling) and the smart-exit score, with the original's
//! log lines and these fixes:
//!
//! - a breakeven+ stop only ever tightens the stop (§6.6);
//! - decisions are [`ExitDecision`]s: a stop price is never sold as a fraction (§6.7);
//! - each profit target is taken once per position, recorded in `partial_exits_taken` (bit `i`
//!   = target `i`; §6.8);
//! - partial exits go through `scale_out_position`, which records them as events; the cycle
//!   still hands over full closes only (§6.9);
//! - the smart exit sees the real volume ratio (§6.11) and mirrors its momentum/RSI conditions
//!   for shorts (§6.13).
//!
//! Caller-supplied rules (see [`super::exit_rules`]) are called without any lock held; an error
//! or an unusable answer is a warning and a hold.

use log::Level;

use super::exit_rules::{AdvancedExitRequest, SmartExitAnswer};
use super::messages::Channel;
use super::methods::Methods;
use super::scale::ScaleOut;
use super::update::Examine;
use super::Manager;
use crate::book::SharedPosition;
use crate::error::{CoreError, CoreResult};
use crate::exits::{
    breakeven_plus_stop, comprehensive_exit_signal, should_exit_early_for_side, ExitDecision,
    MarketData, PositionData,
};
use crate::format::{py_fixed, py_percent, py_repr_float};
use crate::market::MarketInputs;

/// How an exit step ended.
pub(super) enum StepEnd {
    /// Go on with the next step.
    Continue,
    /// This position is done for the cycle; `Some(pnl)` when it was closed here.
    Finished(Option<f64>),
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Step 9: the advanced exit decision and what it does.
    pub(super) fn advanced_exit_step(
        &self,
        symbol: &str,
        position: &SharedPosition,
        methods: &Methods<'_>,
        price: f64,
        market: &MarketInputs,
        at: Examine<'_>,
    ) -> CoreResult<StepEnd> {
        let now = at.now;
        let r = methods.leveraged_pnl(price, false)?;
        let (data, entry_time) = {
            let p = position.lock();
            let data = PositionData {
                side_is_long: p.is_long(),
                entry_price: p.entry_price,
                current_price: price,
                current_pnl_pct: r,
                peak_pnl_pct: p.max_favorable_excursion,
                leverage: p.leverage,
                entry_age_seconds: now.seconds_since(p.entry_time),
                max_hold_minutes: 1440.0,
                entry_volatility: None,
                stop_loss: p.stop_loss,
                take_profit: p.take_profit,
                targets_taken: targets_taken(p.partial_exits_taken),
            };
            (data, p.entry_time)
        };
        let market_data = market.market_data();

        let decision = match self.exit_rules().advanced() {
            None => self.builtin_advanced_exit(&data, &market_data)?,
            Some(rule) => {
                // The side text only for a caller-supplied rule (a copy per position otherwise).
                let side = position.lock().side.clone();
                let request = AdvancedExitRequest {
                    symbol,
                    side: &side,
                    entry_time,
                    position: &data,
                    market: &market_data,
                };
                let answer = rule.comprehensive_exit_signal(&request).and_then(|s| {
                    ExitDecision::from_original_tuple(s.should_exit, s.reason, s.action)
                        .map_err(CoreError::Value)
                });
                match answer {
                    Ok(decision) => decision,
                    Err(e) if e.is_interrupt() => return Err(e),
                    Err(why) => {
                        self.log(Channel::Main, Level::Warn, || {
                            format!("Advanced exit strategy failed for {symbol}, holding this cycle: {why}")
                        });
                        ExitDecision::Hold
                    }
                }
            }
        };

        match decision {
            ExitDecision::Hold => Ok(StepEnd::Continue),
            ExitDecision::Exit { reason, .. } => {
                self.log(Channel::Position, Level::Info, || {
                    format!("  🚨 Advanced exit signal: {reason}")
                });
                self.log(Channel::Position, Level::Info, || {
                    format!("  ✓ Closing position: {reason}")
                });
                Ok(StepEnd::Finished(self.close_in_cycle(symbol, &reason, at)?))
            }
            ExitDecision::MoveStop {
                price: stop,
                reason,
            } => {
                self.move_stop_if_tighter(symbol, position, stop, &reason);
                Ok(StepEnd::Continue)
            }
            ExitDecision::PartialExit {
                fraction,
                reason,
                target_index,
            } => self.partial_exit(symbol, position, fraction, &reason, target_index),
        }
    }

    /// The built-in `get_comprehensive_exit_signal`, with the strategy's own log lines.
    fn builtin_advanced_exit(
        &self,
        data: &PositionData,
        market: &MarketData,
    ) -> CoreResult<ExitDecision> {
        if let Some(stop) = breakeven_plus_stop(data)? {
            self.log(Channel::Main, Level::Debug, || {
                format!(
                    "Breakeven+ protection: Breakeven+0.5% stop activated -> new stop: {}",
                    py_fixed(stop, 2)
                )
            });
        }
        let decision = comprehensive_exit_signal(data, market)?;
        if let Some(line) = decision.log_message() {
            self.log(Channel::Main, Level::Info, || line);
        }
        Ok(decision)
    }

    /// A breakeven+ stop: applied only when it is tighter than the current stop (§6.6).
    fn move_stop_if_tighter(
        &self,
        symbol: &str,
        position: &SharedPosition,
        stop: f64,
        reason: &str,
    ) {
        let (old, applied) = {
            let mut p = position.lock();
            let old = p.stop_loss;
            let tighter = if p.is_long() { stop > old } else { stop < old };
            if tighter {
                p.stop_loss = stop;
            }
            (old, tighter)
        };
        let (old_text, new_text) = (py_fixed(old, 2), py_fixed(stop, 2));
        if applied {
            self.log(Channel::Main, Level::Info, || {
                format!("🔒 Updated {symbol} stop loss: {old_text} -> {new_text} ({reason})")
            });
            self.log(Channel::Position, Level::Info, || {
                format!("  🔒 Stop loss adjusted: {old_text} -> {new_text} ({reason})")
            });
        } else if stop != old {
            self.log(Channel::Position, Level::Debug, || {
                format!("  🔒 Stop loss kept at {old_text}: {new_text} would loosen it ({reason})")
            });
        }
    }

    /// A partial exit of `fraction` of the position through `scale_out_position`. A numbered
    /// profit target is claimed in `partial_exits_taken` first (so it is taken once, also with
    /// two cycles running at once) and released again when nothing was sold.
    fn partial_exit(
        &self,
        symbol: &str,
        position: &SharedPosition,
        fraction: f64,
        reason: &str,
        target_index: Option<usize>,
    ) -> CoreResult<StepEnd> {
        let bit = target_index.map_or(0, |i| 1_i64 << i);
        let (claimed, amount) = {
            let mut p = position.lock();
            let free = p.partial_exits_taken & bit == 0;
            if free {
                p.partial_exits_taken |= bit;
            }
            (free, p.amount)
        };
        if !claimed {
            self.log(Channel::Position, Level::Debug, || {
                format!("  📊 Profit target already taken, no partial exit: {reason}")
            });
            return Ok(StepEnd::Continue);
        }
        let percent = py_fixed(fraction * 100.0, 0);
        self.log(Channel::Position, Level::Info, || {
            format!("  📊 Partial exit signal: {reason} ({percent}%)")
        });
        let to_close = amount * fraction;
        let result = self.scale_out(symbol, (to_close, &py_repr_float(to_close)), reason, bit)?;
        match result {
            ScaleOut::Done(pnl) => self.log(Channel::Main, Level::Info, || {
                format!(
                    "Partial exit: {symbol}, closed {percent}%, P/L: {}, Reason: {reason}",
                    py_percent(pnl, 2, false)
                )
            }),
            ScaleOut::NotDone => {
                position.lock().partial_exits_taken &= !bit;
            }
            // The target stays taken until the exchange tells whether the order went through
            // (a resolution as "not executed" releases it): never sold twice.
            ScaleOut::Unknown => {}
        }
        Ok(if self.book().holds(symbol, position) {
            StepEnd::Continue
        } else {
            // Closed in full by the scale-out (recorded as a close event there, not handed
            // over as a cycle close, as the original) or by someone else meanwhile.
            self.log(Channel::Position, Level::Debug, || {
                format!("  Position {symbol} was closed during update cycle, skipping")
            });
            StepEnd::Finished(None)
        })
    }

    /// Step 10: the smart-exit score; closes at a confidence above 0.7.
    pub(super) fn smart_exit_step(
        &self,
        symbol: &str,
        position: &SharedPosition,
        methods: &Methods<'_>,
        price: f64,
        market: &MarketInputs,
        at: Examine<'_>,
    ) -> CoreResult<StepEnd> {
        let now = at.now;
        let pnl = methods.leveraged_pnl(price, false)?;
        let (inputs, is_long) = {
            let p = position.lock();
            let minutes = now.minutes_since(p.entry_time);
            (market.smart_exit_inputs(pnl, minutes, &p.side), p.is_long())
        };
        let answer = match self.exit_rules().smart() {
            None => {
                let s = should_exit_early_for_side(&inputs, is_long);
                SmartExitAnswer {
                    should_exit: s.should_exit,
                    confidence: s.confidence,
                    score: s.score,
                    score_text: None,
                    reason_text: s.reason_text,
                }
            }
            Some(rule) => match rule.should_exit_early(symbol, &inputs) {
                Ok(answer) => answer,
                Err(e) if e.is_interrupt() => return Err(e),
                Err(why) => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Smart exit optimizer error for {symbol}: {why}")
                    });
                    return Ok(StepEnd::Continue);
                }
            },
        };
        if answer.should_exit && answer.confidence > 0.7 {
            let text = format!(
                "Smart exit: {} (confidence: {})",
                answer.reason_text,
                py_fixed(answer.confidence, 2)
            );
            self.log(Channel::Position, Level::Info, || format!("  🧠 {text}"));
            return Ok(StepEnd::Finished(self.close_in_cycle(symbol, &text, at)?));
        }
        if answer.score > 30.0 {
            self.log(Channel::Position, Level::Debug, || {
                let score = answer
                    .score_text
                    .clone()
                    .unwrap_or_else(|| py_repr_float(answer.score));
                format!(
                    "  🧠 Smart exit score: {score} (watching: {})",
                    answer.reason_text
                )
            });
        }
        Ok(StepEnd::Continue)
    }
}

/// `partial_exits_taken` as the exit rules' bitmask (negative values count as none taken).
fn targets_taken(partial_exits_taken: i64) -> u32 {
    if partial_exits_taken < 0 {
        0
    } else {
        (partial_exits_taken & 0xFFFF_FFFF) as u32
    }
}
