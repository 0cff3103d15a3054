//! `scale_in_position` and `scale_out_position`, with the original messages and call shapes.
//!
//! Fixes: the amount and average price an order reports as filled are what the book records
//! (§6.20, as for opens); a market-limits answer that cannot be read (or raises) is ignored
//! with a warning instead of escaping to the bot; a reported lot step rounds the scale-out
//! amount down to whole lots (§6.22); a scale-out that leaves nothing closes the position in the
//! book; every scale-in and partial close is an event (§6.9).

use log::Level;

use super::messages::Channel;
use super::reservations::Held;
use super::Manager;
use crate::book::SharedPosition;
use crate::error::CoreResult;
use crate::events::EventKind;
use crate::exchange::{MarketOrder, OrderAnswer, OrderSide, TickerAnswer};
use crate::format::{format_price, py_fixed, py_percent, py_repr_float};

/// Remaining sizes at or below this are "nothing left" (float dust from subtraction).
const DUST: f64 = 1e-12;

impl<H: Clone + Send + Sync> Manager<H> {
    /// `scale_in_position(symbol, additional_amount, current_price)`: adds to a position at the
    /// weighted average entry. `additional` carries the argument's Python text for the log.
    pub fn scale_in_position(
        &self,
        symbol: &str,
        additional: (f64, &str),
        current_price: f64,
    ) -> bool {
        let Some((position, _handle)) = self.book().get(symbol) else {
            self.log(Channel::Main, Level::Error, || {
                format!("No position found for {symbol} to scale into")
            });
            return false;
        };
        if !self.still_open_if_uncertain(symbol, &position) {
            return false;
        }
        // No close of this symbol may run while our order is out (and no snapshot may resize it
        // before the book has the new size), nor may we trade a position a close already took.
        let Some(_slot) = self.scale_slot(symbol, &position) else {
            return false;
        };
        let outcome = self.scale_in_tracked(symbol, &position, additional, current_price);
        self.book().touch(symbol, &position);
        match outcome {
            Ok(done) => done,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error scaling into position {symbol}: {e}")
                });
                false
            }
        }
    }

    fn scale_in_tracked(
        &self,
        symbol: &str,
        position: &SharedPosition,
        (additional, additional_text): (f64, &str),
        current_price: f64,
    ) -> CoreResult<bool> {
        let (is_long, leverage) = {
            let p = position.lock();
            (p.is_long(), p.leverage)
        };
        let answer = self.exchange().create_market_order(&MarketOrder {
            symbol,
            side: OrderSide::opening(is_long),
            amount: additional,
            leverage,
            reduce_only: false,
        })?;
        let (added, price) = match &answer {
            OrderAnswer::Missing => return Ok(false),
            OrderAnswer::Opaque(_) => (additional, current_price),
            OrderAnswer::Report(report) => {
                if report.filled() == Some(0.0) && report.is_final() {
                    return Ok(false);
                }
                (
                    report.filled().filter(|f| *f > 0.0).unwrap_or(additional),
                    report.average().unwrap_or(current_price),
                )
            }
        };
        if !self.book().holds(symbol, position) {
            self.log(Channel::Main, Level::Warn, || {
                format!("Position {symbol} was closed during scale-in")
            });
            return Ok(false);
        }
        let (entry, total) = {
            let mut p = position.lock();
            // The original's arithmetic, operand for operand.
            p.entry_price = (p.amount * p.entry_price + added * price) / (p.amount + added);
            p.amount += added;
            (p.entry_price, p.amount)
        };
        let added_text = if added == additional {
            additional_text.to_owned()
        } else {
            py_repr_float(added)
        };
        self.log(Channel::Main, Level::Info, || {
            format!(
                "Scaled into {symbol}: added {added_text} contracts, new avg entry: {}, total: {}",
                format_price(entry),
                py_repr_float(total)
            )
        });
        self.record(symbol, position, EventKind::ScaledIn, "scale_in", None);
        Ok(true)
    }

    /// `scale_out_position(symbol, amount_to_close, reason)`: closes part of a position and
    /// returns the leveraged P/L after fees at the ticker price (`None` when nothing was done).
    /// A request covering the whole position (also after adjustment to the market minimum) is a
    /// full `close_position`.
    pub fn scale_out_position(
        &self,
        symbol: &str,
        amount_to_close: (f64, &str),
        reason: &str,
    ) -> Option<f64> {
        let Some((position, _handle)) = self.book().get(symbol) else {
            self.log_no_position_to_scale_out(symbol);
            return None;
        };
        if !self.still_open_if_uncertain(symbol, &position) {
            return None;
        }
        let (mut amount, amount_text) = amount_to_close;
        let mut amount_text = amount_text.to_owned();
        if amount >= position.lock().amount {
            return self.close_position(symbol, reason).pnl();
        }

        let limits = match self.exchange().get_market_limits(symbol) {
            Ok(limits) => limits,
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Could not read market limits for {symbol}: {e}; using the requested amount")
                });
                None
            }
        };
        let limits = limits.filter(|l| match &l.problem {
            Some(problem) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Market limits for {symbol} are unreadable ({problem}); using the requested amount")
                });
                false
            }
            None => true,
        });
        let mut position = position;
        if let Some(min) = limits
            .as_ref()
            .and_then(|l| l.min_amount)
            .filter(|m| *m != 0.0)
        {
            if amount < min {
                let original = amount;
                amount = min;
                amount_text = py_repr_float(min);
                // Re-read: the book may have changed while the client answered.
                let Some((current, _)) = self.book().get(symbol) else {
                    self.log_no_position_to_scale_out(symbol);
                    return None;
                };
                position = current;
                let size = position.lock().amount;
                if min >= size {
                    self.log(Channel::Main, Level::Info, || {
                        format!(
                            "Adjusted scale-out amount {} would close entire position for {symbol} (position size: {}). Closing full position.",
                            py_fixed(amount, 4),
                            py_fixed(size, 4)
                        )
                    });
                    return self.close_position(symbol, reason).pnl();
                }
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Scale-out amount {} below minimum {} for {symbol}. Adjusting to minimum {}. Reason: {reason}",
                        py_fixed(original, 4),
                        py_repr_float(min),
                        py_fixed(amount, 4)
                    )
                });
            }
        }
        if let Some(step) = limits
            .as_ref()
            .and_then(|l| l.amount_step)
            .filter(|s| s.is_finite() && *s > 0.0)
        {
            let lots = (amount / step + 1e-9).floor().max(1.0);
            // Round away float noise of the multiplication (0.1 * 3 = 0.30000000000000004).
            let rounded = ((lots * step) * 1e9).round() / 1e9;
            if rounded != amount {
                self.log(Channel::Main, Level::Info, || {
                    format!(
                        "Scale-out amount {amount_text} for {symbol} rounded to whole lots of {}: {}",
                        py_repr_float(step),
                        py_repr_float(rounded)
                    )
                });
                amount = rounded;
                amount_text = py_repr_float(rounded);
                if amount >= position.lock().amount {
                    return self.close_position(symbol, reason).pnl();
                }
            }
        }

        let _slot = self.scale_slot(symbol, &position)?;
        let outcome = self.scale_out_tracked(symbol, &position, (amount, &amount_text), reason);
        self.book().touch(symbol, &position);
        match outcome {
            Ok(pnl) => pnl,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error scaling out of position {symbol}: {e}")
                });
                None
            }
        }
    }

    /// After a close with an unknown outcome, trade the position only once the exchange lists
    /// it again (never an order blind).
    fn still_open_if_uncertain(&self, symbol: &str, position: &SharedPosition) -> bool {
        if !self.is_uncertain(symbol) {
            return true;
        }
        match self.confirm_still_open(symbol, position) {
            Ok(open) => open,
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Cannot verify {symbol} on exchange after a close with an unknown outcome ({e}); not sending an order")
                });
                false
            }
        }
    }

    /// Takes `symbol`'s order slot for the duration of a scale order (a close racing it then
    /// sends nothing, and no snapshot resizes it meanwhile), unless a close holds it or already
    /// removed this very position.
    fn scale_slot<'m>(&'m self, symbol: &'m str, position: &SharedPosition) -> Option<Held<'m>> {
        let Some(slot) = self.order_slot(symbol) else {
            self.log(Channel::Main, Level::Warn, || {
                format!("Close of {symbol} in progress; not sending another order for it")
            });
            return None;
        };
        if !self.book().holds(symbol, position) {
            self.log(Channel::Main, Level::Warn, || {
                format!("Position {symbol} was closed meanwhile; not sending an order for it")
            });
            return None;
        }
        Some(slot)
    }

    fn log_no_position_to_scale_out(&self, symbol: &str) {
        self.log(Channel::Main, Level::Error, || {
            format!("No position found for {symbol} to scale out of")
        });
    }

    fn scale_out_tracked(
        &self,
        symbol: &str,
        position: &SharedPosition,
        (amount, amount_text): (f64, &str),
        reason: &str,
    ) -> CoreResult<Option<f64>> {
        let ticker = self.exchange().get_ticker(symbol)?;
        let price = match (&ticker, ticker.valid_price()) {
            (TickerAnswer::Missing, _) => return Ok(None),
            (_, Some(p)) => p,
            (TickerAnswer::Ticker { last }, None) => {
                let shown = last.display();
                self.log(Channel::Main, Level::Warn, || {
                    format!("Invalid price for {symbol}: {shown}")
                });
                return Ok(None);
            }
        };
        let (is_long, leverage) = {
            let p = position.lock();
            (p.is_long(), p.leverage)
        };
        let answer = self.exchange().create_market_order(&MarketOrder {
            symbol,
            side: OrderSide::closing(is_long),
            amount,
            leverage,
            reduce_only: true,
        })?;
        let closed = match &answer {
            OrderAnswer::Missing => return Ok(None),
            OrderAnswer::Opaque(_) => amount,
            OrderAnswer::Report(report) => {
                if report.filled() == Some(0.0) && report.is_final() {
                    return Ok(None);
                }
                report.filled().filter(|f| *f > 0.0).unwrap_or(amount)
            }
        };
        let rf = position.lock().leveraged_pnl(price, true);
        if !self.book().holds(symbol, position) {
            self.log(Channel::Main, Level::Warn, || {
                format!("Position {symbol} was closed during scale-out")
            });
            return Ok(None);
        }
        let remaining = {
            let mut p = position.lock();
            p.amount -= closed;
            p.amount
        };
        let closed_text = if closed == amount {
            amount_text.to_owned()
        } else {
            py_repr_float(closed)
        };
        self.log(Channel::Main, Level::Info, || {
            format!(
                "Scaled out of {symbol}: closed {closed_text} contracts (P/L: {}), remaining: {}, Reason: {reason}",
                py_percent(rf, 2, false),
                py_repr_float(remaining)
            )
        });
        if remaining <= DUST {
            // The reduce-only order took everything: the position is closed.
            let removed = self.book().remove_if_same(symbol, position);
            self.record(symbol, position, EventKind::Closed, reason, Some(rf));
            drop(removed);
        } else {
            self.record(symbol, position, EventKind::PartialClose, reason, Some(rf));
        }
        Ok(Some(rf))
    }
}
