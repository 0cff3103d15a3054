//! `modify_position_targets` (no validation) and `safe_update_position_targets` (validated
//! against the entry price), with the original messages.
//!
//! Fixes: an old take profit of `None` prints as `None` instead of raising after the stop was
//! already changed (the original applied half the change and returned False); all checks run
//! before anything changes, and the change is applied under the position's lock in one step.
//! The log lines are written after the lock is released; each change is an event.

use log::Level;

use super::messages::Channel;
use super::Manager;
use crate::events::EventKind;
use crate::format::{format_price, py_fixed, py_repr_float};

/// A new target from the caller: the value and its Python text (for messages).
pub type Target<'a> = Option<(f64, &'a str)>;

fn fixed2(x: Option<f64>) -> String {
    x.map_or_else(|| "None".to_owned(), |v| py_fixed(v, 2))
}

fn price_text(x: Option<f64>) -> String {
    x.map_or_else(|| "None".to_owned(), format_price)
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// `modify_position_targets(symbol, new_stop_loss, new_take_profit)`: sets either target
    /// without checks. False only when the symbol is not tracked.
    pub fn modify_position_targets(
        &self,
        symbol: &str,
        new_stop_loss: Option<f64>,
        new_take_profit: Option<f64>,
    ) -> bool {
        let Some((position, _handle)) = self.book().get(symbol) else {
            self.log(Channel::Main, Level::Error, || {
                format!("No position found for {symbol} to modify")
            });
            return false;
        };
        let (old_sl, old_tp) = {
            let mut p = position.lock();
            let old = (p.stop_loss, p.take_profit);
            if let Some(sl) = new_stop_loss {
                p.stop_loss = sl;
            }
            if let Some(tp) = new_take_profit {
                p.take_profit = Some(tp);
            }
            old
        };
        if let Some(sl) = new_stop_loss {
            self.log(Channel::Main, Level::Info, || {
                format!(
                    "Modified stop loss for {symbol}: {} -> {}",
                    py_fixed(old_sl, 2),
                    py_fixed(sl, 2)
                )
            });
        }
        if let Some(tp) = new_take_profit {
            self.log(Channel::Main, Level::Info, || {
                format!(
                    "Modified take profit for {symbol}: {} -> {}",
                    fixed2(old_tp),
                    py_fixed(tp, 2)
                )
            });
        }
        if new_stop_loss.is_some() || new_take_profit.is_some() {
            self.record(symbol, &position, EventKind::TargetsChanged, "modify", None);
        }
        true
    }

    /// `safe_update_position_targets(symbol, new_stop_loss, new_take_profit, reason)`: a stop
    /// must be on the losing side of the entry and a take profit on the winning side; nothing
    /// changes unless both given targets pass.
    pub fn safe_update_position_targets(
        &self,
        symbol: &str,
        new_stop_loss: Target<'_>,
        new_take_profit: Target<'_>,
        reason: &str,
    ) -> bool {
        let Some((position, _handle)) = self.book().get(symbol) else {
            self.log(Channel::Main, Level::Error, || {
                format!("Cannot update targets: position {symbol} not found")
            });
            return false;
        };
        let outcome = {
            let mut p = position.lock();
            let entry = p.entry_price;
            let long = p.is_long();
            let invalid = |what: &str, text: &str, cmp: &str| {
                format!(
                    "Invalid {what} for {} position {symbol}: {text} {cmp} entry {}",
                    if long { "long" } else { "short" },
                    py_repr_float(entry)
                )
            };
            let stop_problem = new_stop_loss.and_then(|(sl, text)| {
                if long && sl >= entry {
                    Some(invalid("stop loss", text, ">="))
                } else if !long && sl <= entry {
                    Some(invalid("stop loss", text, "<="))
                } else {
                    None
                }
            });
            let target_problem = new_take_profit.and_then(|(tp, text)| {
                if long && tp <= entry {
                    Some(invalid("take profit", text, "<="))
                } else if !long && tp >= entry {
                    Some(invalid("take profit", text, ">="))
                } else {
                    None
                }
            });
            match stop_problem.or(target_problem) {
                Some(problem) => Err(problem),
                None => {
                    let old = (p.stop_loss, p.take_profit);
                    if let Some((sl, _)) = new_stop_loss {
                        p.stop_loss = sl;
                    }
                    if let Some((tp, _)) = new_take_profit {
                        p.take_profit = Some(tp);
                    }
                    Ok(old)
                }
            }
        };
        let (old_sl, old_tp) = match outcome {
            Ok(old) => old,
            Err(problem) => {
                self.log(Channel::Main, Level::Warn, || problem);
                return false;
            }
        };
        if let Some((sl, _)) = new_stop_loss {
            self.log(Channel::Main, Level::Info, || {
                format!(
                    "Updated stop loss for {symbol}: {} -> {} (reason: {reason})",
                    format_price(old_sl),
                    format_price(sl)
                )
            });
        }
        if let Some((tp, _)) = new_take_profit {
            self.log(Channel::Main, Level::Info, || {
                format!(
                    "Updated take profit for {symbol}: {} -> {} (reason: {reason})",
                    price_text(old_tp),
                    format_price(tp)
                )
            });
        }
        if new_stop_loss.is_some() || new_take_profit.is_some() {
            self.record(symbol, &position, EventKind::TargetsChanged, reason, None);
        }
        true
    }
}
