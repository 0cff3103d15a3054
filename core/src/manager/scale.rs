//! `scale_in_position` and `scale_out_position`, with the original messages and call shapes.
//!
//! Fixes: the amount and average price an order reports as filled are what the book records
//! (§6.20, as for opens); a market-limits answer that cannot be read (or raises) is ignored
//! with a warning instead of escaping to the bot; a reported lot step rounds the scale-out
//! amount down to whole lots (§6.22); a scale-out that leaves nothing closes the position in the
//! book; every scale-in and partial close is an event (§6.9); one order per position at a time;
//! an order whose answer is not definitive is resolved against the exchange before the call
//! returns (rule 7), and a position whose last order's outcome is unknown is traded only once
//! the exchange has told.

use log::Level;

use super::close::Unlisted;
use super::in_flight::SentIntent;
use super::messages::Channel;
use super::verify::Lookup;
use super::{caught, Manager};
use crate::book::{Refusal, SharedPosition, Unknown};
use crate::error::CoreResult;
use crate::events::EventKind;
use crate::exchange::{MarketOrder, OrderAnswer, OrderSide, TickerAnswer};
use crate::format::{format_price, py_fixed, py_percent, py_repr_float};
use crate::key::Key;
use crate::reconcile::{close_enough, Op, Resolution, SIZE_TOLERANCE};

/// Remaining sizes at or below this are "nothing left" (float dust from subtraction).
const DUST: f64 = 1e-12;

/// Whether `remaining` contracts after a scale-out of a position of `before` are nothing left:
/// at most [`DUST`], or what closed is the size before within [`SIZE_TOLERANCE`] (relative:
/// 50000.6 − 50000.6 computed from sums leaves 7e-12, above [`DUST`], and the manager's own
/// full exit was then recorded as a close by someone else).
fn is_dust(remaining: f64, before: f64) -> bool {
    remaining <= DUST || close_enough(before - remaining, before, SIZE_TOLERANCE)
}

/// How a scale-out ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ScaleOut {
    /// Done: the leveraged P/L after fees at the ticker price.
    Done(f64),
    /// Nothing was sold.
    NotDone,
    /// The reduce order's outcome is unknown: nothing more is sent until the exchange tells.
    Unknown,
}

/// What a reducing or adding order's answer says, when it says something definitive.
enum Answered {
    /// Filled this many contracts (at this average, when reported).
    Filled(f64, Option<f64>),
    /// Definitively nothing.
    Nothing,
}

/// Reads an order answer: `None` when it is not definitive (falsy, not a dict, or a `filled`
/// that is not a usable amount).
fn answered(answer: &OrderAnswer, requested: f64) -> Option<Answered> {
    let OrderAnswer::Report(report) = answer else {
        return None;
    };
    if report.filled_unreadable() || report.overfilled(requested) {
        return None;
    }
    if report.filled() == Some(0.0) && report.is_final() {
        return Some(Answered::Nothing);
    }
    Some(Answered::Filled(
        report.filled().filter(|f| *f > 0.0).unwrap_or(requested),
        report.average(),
    ))
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Reserves `key`'s order slot for a scale order, logging why not when it cannot be.
    fn begin_scale(&self, symbol: &str, position: &SharedPosition, op: Op) -> bool {
        match self.book().begin_order(symbol, position, op) {
            Ok(()) => true,
            Err(Refusal::Busy(_)) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Close of {symbol} in progress; not sending another order for it")
                });
                false
            }
            Err(Refusal::Unknown(_)) => false,
            Err(Refusal::NotTracked) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Position {symbol} was closed meanwhile; not sending an order for it")
                });
                false
            }
        }
    }

    /// Sends a scale order and reads its answer: the fill when the answer says it
    /// (`Ok(Ok(_))`), else what checking the exchange found (`settle_scale`). An interruption
    /// marks the key's outcome unknown (nothing more is sent for it until it is settled) and
    /// ends the call; an order the client never sent is an error as it came.
    fn send_scale_order(
        &self,
        key: &Key,
        position: &SharedPosition,
        order: &MarketOrder<'_>,
        unknown: impl Fn() -> Unknown,
        label: &str,
    ) -> CoreResult<Result<Answered, Option<Resolution>>> {
        let symbol = key.as_str();
        if self
            .journal_order_sent(key, || SentIntent::change(&unknown()))
            .is_err()
        {
            // A scale-in whose row could not be written is not sent (a scale-out is, unless the
            // journal is fenced).
            return Ok(Ok(Answered::Nothing));
        }
        let answer = match self.exchange().create_market_order(order) {
            Err(e) if e.is_interrupt() => {
                self.book().set_unknown(symbol, position, unknown());
                return Err(e);
            }
            Err(e) if e.is_unsent() => return Err(e),
            Ok(a) => answered(&a, order.amount),
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("{label} order for {symbol} failed: {e}; checking the exchange")
                });
                None
            }
        };
        match answer {
            Some(a) => Ok(Ok(a)),
            None => self.settle_scale(key, position, unknown(), order.amount),
        }
    }

    /// Lost or unreadable answer of a scale order: by its client id, else by one list.
    fn settle_scale(
        &self,
        key: &Key,
        position: &SharedPosition,
        unknown: Unknown,
        requested: f64,
    ) -> CoreResult<Result<Answered, Option<Resolution>>> {
        match self.lookup_order(
            unknown.client_order_id.as_deref(),
            key.symbol(),
            Some(requested),
        )? {
            Lookup::NotPlaced => return Ok(Ok(Answered::Nothing)),
            Lookup::Final(report) => {
                if let Some(a) = answered(&OrderAnswer::Report(report), requested) {
                    return Ok(Ok(a));
                }
            }
            Lookup::Pending(_) | Lookup::Unreachable | Lookup::Unknown => {}
        }
        Ok(Err(self.settle_by_list(key, position, unknown)?))
    }

    /// `scale_in_position(symbol, additional_amount, current_price)`: adds to a position at the
    /// weighted average entry. `additional` carries the argument's Python text for the log.
    /// Only an interruption is an error.
    pub fn scale_in_position(
        &self,
        symbol: &str,
        additional: (f64, &str),
        current_price: f64,
    ) -> CoreResult<bool> {
        let key = match self.resolve_key(symbol) {
            Ok(key) => key,
            Err(message) => {
                self.log(Channel::Main, Level::Warn, || message);
                return Ok(false);
            }
        };
        let symbol = key.as_str();
        let Some((position, _handle)) = self.book().get(symbol) else {
            self.log(Channel::Main, Level::Error, || {
                format!("No position found for {symbol} to scale into")
            });
            return Ok(false);
        };
        let key = Key::parse(symbol);
        if !self.resolve_before_trading(&key, &position)? {
            return Ok(false);
        }
        // The exchange must still list it: adding to a position closed by hand or liquidated
        // since the last list would open a new one, which the book would then take for the
        // old one (its stops, targets and the bot's attributes).
        let listed = match self.listed_before_order(&key, &position, None, "scaling in") {
            Err(e) if e.is_interrupt() => return Err(e),
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error scaling into position {symbol}: {e}")
                });
                return Ok(false);
            }
            Ok(listed) => listed,
        };
        match listed {
            None => {}
            Some(Unlisted::AlreadyClosed) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Position {symbol} not found on exchange (already closed externally), removing from tracking; not scaling in")
                });
                return Ok(false);
            }
            Some(Unlisted::NotTracked | Unlisted::Replaced | Unlisted::Unverified) => {
                return Ok(false)
            }
        }
        // No close of this position may run while our order is out (and no list may resize it
        // before the book has the new size), nor may we trade a position a close already took.
        if !self.begin_scale(symbol, &position, Op::ScaleIn) {
            return Ok(false);
        }
        let before = position.lock().amount;
        let outcome = self.scale_in_tracked(&key, &position, additional, current_price);
        self.end_scale_order(&key, &position, before);
        match outcome {
            Ok(done) => Ok(done),
            Err(e) if e.is_interrupt() => Err(e),
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error scaling into position {symbol}: {e}")
                });
                Ok(false)
            }
        }
    }

    fn scale_in_tracked(
        &self,
        key: &Key,
        position: &SharedPosition,
        (additional, additional_text): (f64, &str),
        current_price: f64,
    ) -> CoreResult<bool> {
        let symbol = key.as_str();
        self.bind_leg_side(key, position);
        let (is_long, leverage, before) = {
            let p = position.lock();
            (p.is_long(), p.leverage, p.amount)
        };
        let order_id = self.new_client_order_id();
        let unknown = || Unknown {
            op: Op::ScaleIn,
            at: 0,
            before,
            client_order_id: order_id.clone(),
            reason: "scale_in".to_owned(),
            price: Some(current_price),
            target_bit: 0,
            unseen: Default::default(),
            filled: false,
        };
        let order = MarketOrder {
            symbol: key.symbol(),
            side: OrderSide::opening(is_long),
            amount: additional,
            leverage,
            reduce_only: false,
            client_order_id: order_id.as_deref(),
            position_side: self.leg_of(position),
        };
        let answer = match self.send_scale_order(key, position, &order, unknown, "Scale-in")? {
            Ok(a) => a,
            Err(resolution) => {
                return Ok(matches!(resolution, Some(Resolution::Executed { .. })));
            }
        };
        let (added, average) = match answer {
            Answered::Nothing => return Ok(false),
            Answered::Filled(filled, average) => (filled, average),
        };
        let price = average.unwrap_or(current_price);
        if !self.book().holds(symbol, position) {
            self.log(Channel::Main, Level::Warn, || {
                format!("Position {symbol} was closed during scale-in")
            });
            return Ok(false);
        }
        let (entry, total, before) = {
            let mut p = position.lock();
            let before = (p.amount, p.entry_price);
            // The original's arithmetic, operand for operand.
            p.entry_price = (p.amount * p.entry_price + added * price) / (p.amount + added);
            p.amount += added;
            (p.entry_price, p.amount, before)
        };
        self.book()
            .note_scale_in_price(symbol, position, average, before);
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
        self.record_full(
            symbol,
            position,
            EventKind::ScaledIn,
            "scale_in",
            None,
            None,
            order_id.as_deref(),
        );
        Ok(true)
    }

    /// `scale_out_position(symbol, amount_to_close, reason)`: closes part of a position and
    /// returns the leveraged P/L after fees at the ticker price (`None` when nothing was done).
    /// A request covering the whole position (also after adjustment to the market minimum) is a
    /// full `close_position`. Only an interruption is an error.
    pub fn scale_out_position(
        &self,
        symbol: &str,
        amount_to_close: (f64, &str),
        reason: &str,
    ) -> CoreResult<Option<f64>> {
        let key = match self.resolve_key(symbol) {
            Ok(key) => key,
            Err(message) => {
                self.log(Channel::Main, Level::Warn, || message);
                return Ok(None);
            }
        };
        Ok(
            match self.scale_out(key.as_str(), amount_to_close, reason, 0)? {
                ScaleOut::Done(pnl) => Some(pnl),
                ScaleOut::NotDone | ScaleOut::Unknown => None,
            },
        )
    }

    /// The scale-out; `target_bit` is a profit target the caller claimed for it (kept claimed
    /// while the order's outcome is unknown, released if it turns out not executed).
    pub(crate) fn scale_out(
        &self,
        symbol: &str,
        amount_to_close: (f64, &str),
        reason: &str,
        target_bit: i64,
    ) -> CoreResult<ScaleOut> {
        let closed = |o: super::CloseOutcome| match o.pnl() {
            Some(p) => ScaleOut::Done(p),
            None => ScaleOut::NotDone,
        };
        let Some((position, _handle)) = self.book().get(symbol) else {
            self.log_no_position_to_scale_out(symbol);
            return Ok(ScaleOut::NotDone);
        };
        let key = Key::parse(symbol);
        if !self.resolve_before_trading(&key, &position)? {
            return Ok(ScaleOut::NotDone);
        }
        let (mut amount, amount_text) = amount_to_close;
        let mut amount_text = amount_text.to_owned();
        if amount >= position.lock().amount {
            return Ok(closed(self.close_position(symbol, reason)?));
        }

        let limits = match caught(self.exchange().get_market_limits(key.symbol()))? {
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
                    return Ok(ScaleOut::NotDone);
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
                    return Ok(closed(self.close_position(symbol, reason)?));
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
                    return Ok(closed(self.close_position(symbol, reason)?));
                }
            }
        }

        if !self.begin_scale(symbol, &position, Op::ScaleOut) {
            return Ok(ScaleOut::NotDone);
        }
        let before = position.lock().amount;
        let outcome =
            self.scale_out_tracked(&key, &position, (amount, &amount_text), reason, target_bit);
        self.end_scale_order(&key, &position, before);
        match outcome {
            Ok(out) => Ok(out),
            Err(e) if e.is_interrupt() => Err(e),
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error scaling out of position {symbol}: {e}")
                });
                Ok(ScaleOut::NotDone)
            }
        }
    }

    fn log_no_position_to_scale_out(&self, symbol: &str) {
        self.log(Channel::Main, Level::Error, || {
            format!("No position found for {symbol} to scale out of")
        });
    }

    fn scale_out_tracked(
        &self,
        key: &Key,
        position: &SharedPosition,
        (amount, amount_text): (f64, &str),
        reason: &str,
        target_bit: i64,
    ) -> CoreResult<ScaleOut> {
        let symbol = key.as_str();
        self.bind_leg_side(key, position);
        let ticker = self.exchange().get_ticker(key.symbol())?;
        let price = match (&ticker, ticker.valid_price()) {
            (TickerAnswer::Missing, _) => return Ok(ScaleOut::NotDone),
            (_, Some(p)) => p,
            (TickerAnswer::Ticker { last }, None) => {
                let shown = last.display();
                self.log(Channel::Main, Level::Warn, || {
                    format!("Invalid price for {symbol}: {shown}")
                });
                return Ok(ScaleOut::NotDone);
            }
        };
        let (is_long, leverage, before) = {
            let p = position.lock();
            (p.is_long(), p.leverage, p.amount)
        };
        let order_id = self.new_client_order_id();
        let unknown = || Unknown {
            op: Op::ScaleOut,
            at: 0,
            before,
            client_order_id: order_id.clone(),
            reason: reason.to_owned(),
            price: Some(price),
            target_bit,
            unseen: Default::default(),
            filled: false,
        };
        let order = MarketOrder {
            symbol: key.symbol(),
            side: OrderSide::closing(is_long),
            amount,
            leverage,
            reduce_only: true,
            client_order_id: order_id.as_deref(),
            position_side: self.leg_of(position),
        };
        let answer = match self.send_scale_order(key, position, &order, unknown, "Scale-out")? {
            Ok(a) => a,
            Err(resolution) => {
                let rf = position.lock().leveraged_pnl(price, true);
                return Ok(match resolution {
                    Some(Resolution::Executed { .. } | Resolution::Closed) => ScaleOut::Done(rf),
                    Some(Resolution::NotExecuted) => ScaleOut::NotDone,
                    None => ScaleOut::Unknown,
                });
            }
        };
        let closed = match answer {
            Answered::Nothing => return Ok(ScaleOut::NotDone),
            Answered::Filled(filled, _) => filled,
        };
        let rf = position.lock().leveraged_pnl(price, true);
        if !self.book().holds(symbol, position) {
            self.log(Channel::Main, Level::Warn, || {
                format!("Position {symbol} was closed during scale-out")
            });
            return Ok(ScaleOut::NotDone);
        }
        let (remaining, before) = {
            let mut p = position.lock();
            let before = p.amount;
            p.amount -= closed;
            (p.amount, before)
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
        let kind = if is_dust(remaining, before) {
            // The reduce-only order took everything: the position is closed (and waits for a
            // list to confirm it).
            self.book()
                .closed(symbol, position, self.timer(), order_id.as_deref(), None);
            EventKind::Closed
        } else {
            EventKind::PartialClose
        };
        self.record_full(
            symbol,
            position,
            kind,
            reason,
            Some(rf),
            None,
            order_id.as_deref(),
        );
        Ok(ScaleOut::Done(rf))
    }
}

#[cfg(test)]
mod dust_tests {
    use super::is_dust;

    #[test]
    fn dust_is_relative_to_the_size_and_never_a_lot() {
        let before = 50000.3 + 0.3;
        assert!(is_dust(before - 50000.6, before));
        assert!(is_dust(1e-12, 0.001));
        assert!(!is_dust(0.001, 0.002));
        assert!(!is_dust(0.1, 50000.6));
        assert!(!is_dust(1e-8, 1.0));
    }
}
