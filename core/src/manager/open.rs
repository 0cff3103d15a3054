//! `open_position(...)`: the original's validation, log blocks, targets and client call shapes,
//! with the fixes of §6.20:
//!
//! - the position records the amount and average price the order reports as filled (the
//!   requested amount and the ticker price only when the answer does not say);
//! - a limit order that filled partially is topped up by the remainder only;
//! - when the cancel fails or the fill status is unknown, the exchange's position list is
//!   checked before any market order, so a second full order is never sent blind;
//! - a symbol being opened is reserved: a concurrent open of it fails validation and a sync does
//!   not import it meanwhile; the insert takes a fresh sequence number, so a cleanup whose
//!   snapshot predates it never removes it (rule 4);
//! - a signal other than `'BUY'`/`'SELL'` and a short whose take profit would be at or below
//!   zero are invalid parameters instead of opening a short.

use log::Level;

use super::messages::{leverage_text, Channel, RULE, THIN_RULE};
use super::Manager;
use crate::book::share;
use crate::error::CoreResult;
use crate::events::EventKind;
use crate::exchange::{
    LimitOrder, MarketOrder, OrderAnswer, OrderId, OrderReport, OrderSide, TickerAnswer,
};
use crate::format::{format_price, py_percent, py_repr_float};
use crate::position::PositionState;
use crate::reconcile::Snapshot;

/// The arguments of `open_position`, each number with its text as Python prints it.
#[derive(Clone, Debug)]
pub struct OpenRequest<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// `'BUY'` (long) or `'SELL'` (short).
    pub signal: &'a str,
    /// Requested contracts and their text.
    pub amount: (f64, &'a str),
    /// Leverage and its text.
    pub leverage: (f64, &'a str),
    /// Stop distance (fraction) and its text.
    pub stop_loss_percentage: (f64, &'a str),
    /// Try a post-only limit order first.
    pub use_limit: bool,
    /// Limit price offset from the ticker price (fraction).
    pub limit_offset: f64,
}

/// What the exchange filled.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fill {
    amount: f64,
    price: f64,
}

impl Fill {
    /// Two fills as one (volume-weighted price).
    fn plus(self, other: Fill) -> Fill {
        let amount = self.amount + other.amount;
        Fill {
            amount,
            price: (self.amount * self.price + other.amount * other.price) / amount,
        }
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Whether an `open_position` for `symbol` is in flight.
    pub fn is_opening(&self, symbol: &str) -> bool {
        self.opening.contains(symbol)
    }

    /// `open_position(symbol, signal, amount, leverage, stop_loss_percentage, use_limit,
    /// limit_offset)`: whether a position was opened and is now tracked.
    pub fn open_position(&self, request: &OpenRequest<'_>) -> bool {
        let symbol = request.symbol;
        let (ok, message) = self.validate_position_parameters(
            symbol,
            request.amount,
            request.leverage,
            request.stop_loss_percentage,
        );
        let message = if ok {
            self.extra_open_checks(request)
        } else {
            Some(message)
        };
        if let Some(message) = message {
            self.log(Channel::Main, Level::Error, || {
                format!("Invalid position parameters: {message}")
            });
            self.log(Channel::Position, Level::Error, || {
                format!("  ✗ Invalid parameters: {message}")
            });
            return false;
        }
        // Reserved unless tracked or being opened, atomically (no second open, no import).
        let reservation = self.opening.hold(symbol, || self.book().contains(symbol));
        if reservation.is_none() {
            let message = format!("Position for {symbol} already exists");
            self.log(Channel::Main, Level::Error, || {
                format!("Invalid position parameters: {message}")
            });
            self.log(Channel::Position, Level::Error, || {
                format!("  ✗ Invalid parameters: {message}")
            });
            return false;
        }
        match self.open_reserved(request) {
            Ok(opened) => opened,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error opening position: {e}")
                });
                self.log(Channel::Position, Level::Error, || {
                    format!("✗ FAILED to open position: {e}")
                });
                self.log(Channel::Position, Level::Info, || RULE.to_owned());
                false
            }
        }
    }

    /// The checks the original lacked; `Some(message)` when the request is invalid.
    fn extra_open_checks(&self, request: &OpenRequest<'_>) -> Option<String> {
        let signal = request.signal;
        if signal != "BUY" && signal != "SELL" {
            return Some(format!(
                "Invalid signal: {} (must be 'BUY' or 'SELL')",
                super::messages::py_str_repr(signal)
            ));
        }
        let (s, s_text) = request.stop_loss_percentage;
        if signal == "SELL" && s * 3.0 >= 1.0 {
            return Some(format!(
                "Invalid stop loss percentage: {s_text} (a short's take profit at 3 times it would be at or below zero)"
            ));
        }
        let offset = request.limit_offset;
        if request.use_limit && !(offset.is_finite() && (0.0..1.0).contains(&offset)) {
            return Some(format!(
                "Invalid limit offset: {} (must be between 0 and 1)",
                py_repr_float(offset)
            ));
        }
        None
    }

    fn open_reserved(&self, request: &OpenRequest<'_>) -> CoreResult<bool> {
        let symbol = request.symbol;
        let signal = request.signal;
        let is_long = signal == "BUY";
        let direction = if is_long { "LONG" } else { "SHORT" };
        let (amount, amount_text) = request.amount;
        let (leverage, leverage_arg) = request.leverage;
        let (s, _) = request.stop_loss_percentage;
        let header = [
            RULE.to_owned(),
            format!("OPENING POSITION: {symbol}"),
            format!("  Signal: {signal} ({direction})"),
            format!("  Amount: {} contracts", crate::format::py_fixed(amount, 4)),
            format!("  Leverage: {leverage_arg}x"),
            format!("  Stop Loss %: {}", py_percent(s, 2, false)),
            format!(
                "  Order Type: {}",
                if request.use_limit { "LIMIT" } else { "MARKET" }
            ),
        ];
        for line in header {
            self.log(Channel::Position, Level::Info, || line);
        }

        let ticker = self.exchange().get_ticker(symbol)?;
        let price = match (&ticker, ticker.valid_price()) {
            (TickerAnswer::Missing, _) => {
                self.log(Channel::Position, Level::Error, || {
                    format!("  Failed to get ticker for {symbol}")
                });
                return Ok(false);
            }
            (_, Some(p)) => p,
            (TickerAnswer::Ticker { last }, None) => {
                let shown = last.display();
                self.log(Channel::Main, Level::Warn, || {
                    format!("Invalid price for {symbol}: {shown}")
                });
                self.log(Channel::Position, Level::Error, || {
                    format!("  Invalid price: {shown}")
                });
                return Ok(false);
            }
        };
        self.log(Channel::Position, Level::Info, || {
            format!("  Current Price: {}", format_price(price))
        });

        let side = OrderSide::opening(is_long);
        let fill = if request.use_limit {
            self.open_with_limit(request, side, price)?
        } else {
            self.log(Channel::Position, Level::Info, || {
                "  Placing MARKET order".to_owned()
            });
            self.market_fill(symbol, side, amount, leverage, price)?
        };
        let Some(fill) = fill else {
            self.log(Channel::Position, Level::Error, || {
                "  Order creation failed".to_owned()
            });
            return Ok(false);
        };
        let amount_shown = if fill.amount == amount {
            amount_text.to_owned()
        } else {
            py_repr_float(fill.amount)
        };
        Ok(self.track_opened(request, fill, &amount_shown))
    }

    /// Computes the targets, logs the original blocks and inserts the position.
    fn track_opened(&self, request: &OpenRequest<'_>, fill: Fill, amount_shown: &str) -> bool {
        let symbol = request.symbol;
        let signal = request.signal;
        let is_long = signal == "BUY";
        let direction = if is_long { "LONG" } else { "SHORT" };
        let (s, _) = request.stop_loss_percentage;
        let (leverage, leverage_arg) = request.leverage;
        let entry = fill.price;
        let (stop_loss, take_profit) = if is_long {
            (entry * (1.0 - s), entry * (1.0 + s * 3.0))
        } else {
            (entry * (1.0 + s), entry * (1.0 - s * 3.0))
        };
        let (sl_pct, tp_pct) = if is_long {
            (stop_loss / entry - 1.0, take_profit / entry - 1.0)
        } else {
            (1.0 - stop_loss / entry, 1.0 - take_profit / entry)
        };
        self.log(Channel::Position, Level::Info, || {
            format!("  Order filled at: {}", format_price(entry))
        });
        self.log(Channel::Position, Level::Info, || {
            format!(
                "  Stop Loss: {} ({})",
                format_price(stop_loss),
                py_percent(sl_pct, 2, false)
            )
        });
        self.log(Channel::Position, Level::Info, || {
            format!(
                "  Take Profit: {} ({})",
                format_price(take_profit),
                py_percent(tp_pct, 2, false)
            )
        });
        if self.log_enabled(Channel::Order, Level::Info) {
            let ratio = if sl_pct.abs() < 1e-8 {
                "  Risk/Reward Ratio: N/A (stop loss percent is zero)".to_owned()
            } else {
                format!(
                    "  Risk/Reward Ratio: 1:{}",
                    crate::format::py_fixed((tp_pct / sl_pct).abs(), 2)
                )
            };
            let lines = [
                RULE.to_owned(),
                format!("STOP LOSS & TAKE PROFIT SET: {symbol}"),
                THIN_RULE.to_owned(),
                format!("  Symbol: {symbol}"),
                format!("  Position Side: {signal} ({direction})"),
                format!("  Entry Price: {}", format_price(entry)),
                format!("  Amount: {amount_shown} contracts"),
                format!("  Leverage: {leverage_arg}x"),
                String::new(),
                format!("  Stop Loss Price: {}", format_price(stop_loss)),
                format!(
                    "  Stop Loss %: {} from entry",
                    py_percent(sl_pct.abs(), 2, false)
                ),
                "  Stop Loss Type: Monitored (closes position when price reaches SL)".to_owned(),
                String::new(),
                format!("  Take Profit Price: {}", format_price(take_profit)),
                format!(
                    "  Take Profit %: {} from entry",
                    py_percent(tp_pct.abs(), 2, false)
                ),
                "  Take Profit Type: Monitored (closes position when price reaches TP)".to_owned(),
                String::new(),
                ratio,
                format!("  Timestamp: {}", self.now().format_seconds()),
                RULE.to_owned(),
                String::new(),
            ];
            for line in lines {
                self.log(Channel::Order, Level::Info, || line);
            }
        }

        let side = if is_long { "long" } else { "short" };
        let state = PositionState::new(
            symbol,
            side,
            entry,
            fill.amount,
            leverage,
            stop_loss,
            Some(take_profit),
            self.now(),
        );
        let position = share(state);
        let handle = match self.handles.make(&position) {
            Ok(handle) => handle,
            Err(e) => {
                // The exchange position exists but cannot be tracked without a handle; the
                // next sync imports it.
                self.log(Channel::Main, Level::Error, || {
                    format!("Error opening position: {e}")
                });
                return false;
            }
        };
        let (replaced, buried) = self.book().insert(symbol, position.clone(), handle);
        if let Some(old) = replaced {
            // Only a direct assignment by the bot can get here while the symbol is reserved;
            // the replaced position leaves the book, so it is an event.
            self.record(
                symbol,
                &old.position,
                EventKind::Untracked,
                "replaced_by_open",
                None,
            );
        }
        drop(buried);
        self.record(symbol, &position, EventKind::Opened, "open", None);

        let value = fill.amount * entry;
        self.log(Channel::Position, Level::Info, || {
            format!("  Position Value: ${}", format_price(value))
        });
        self.log(Channel::Position, Level::Info, || {
            format!("  Leveraged Exposure: ${}", format_price(value * leverage))
        });
        self.log(Channel::Position, Level::Info, || {
            format!(
                "✓ Position opened successfully at {}",
                self.now().format_seconds()
            )
        });
        self.log(Channel::Position, Level::Info, || RULE.to_owned());
        self.log(Channel::Main, Level::Info, || {
            format!(
                "Opened {side} position: {symbol} @ {}, Amount: {amount_shown}, Leverage: {}x, Stop Loss: {}, Take Profit: {}",
                format_price(entry),
                leverage_text(leverage),
                format_price(stop_loss),
                format_price(take_profit)
            )
        });
        true
    }

    /// A market order and what it filled; `None` when the client reports failure.
    fn market_fill(
        &self,
        symbol: &str,
        side: OrderSide,
        amount: f64,
        leverage: f64,
        fallback_price: f64,
    ) -> CoreResult<Option<Fill>> {
        let answer = self.exchange().create_market_order(&MarketOrder {
            symbol,
            side,
            amount,
            leverage,
            reduce_only: false,
        })?;
        Ok(self.fill_of(symbol, &answer, amount, fallback_price))
    }

    /// What an order answer says was filled (see the module notes); `None` for a failure.
    fn fill_of(
        &self,
        symbol: &str,
        answer: &OrderAnswer,
        requested: f64,
        fallback_price: f64,
    ) -> Option<Fill> {
        match answer {
            OrderAnswer::Missing => None,
            OrderAnswer::Opaque(type_name) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Order answer for {symbol} is not a dict ({type_name}); assuming {} contracts at {}",
                        py_repr_float(requested),
                        format_price(fallback_price)
                    )
                });
                Some(Fill {
                    amount: requested,
                    price: fallback_price,
                })
            }
            OrderAnswer::Report(report) => {
                let filled = report.filled();
                if filled == Some(0.0) && report.is_final() {
                    // Final with nothing filled: rejected or cancelled, nothing was opened.
                    return None;
                }
                let amount = match filled {
                    Some(f) if f > 0.0 => {
                        if f != requested {
                            self.log(Channel::Main, Level::Warn, || {
                                format!(
                                    "Order for {symbol} filled {} of {} contracts; tracking the filled amount",
                                    py_repr_float(f),
                                    py_repr_float(requested)
                                )
                            });
                        }
                        f
                    }
                    _ => requested,
                };
                Some(Fill {
                    amount,
                    price: report.average().unwrap_or(fallback_price),
                })
            }
        }
    }

    /// The limit path: post-only order, wait, cancel, re-check, market fallback or top-up.
    fn open_with_limit(
        &self,
        request: &OpenRequest<'_>,
        side: OrderSide,
        price: f64,
    ) -> CoreResult<Option<Fill>> {
        let symbol = request.symbol;
        let (amount, _) = request.amount;
        let (leverage, _) = request.leverage;
        let offset = request.limit_offset;
        let limit_price = if side == OrderSide::Buy {
            price * (1.0 - offset)
        } else {
            price * (1.0 + offset)
        };
        self.log(Channel::Position, Level::Info, || {
            format!(
                "  Placing LIMIT order at {} (offset: {})",
                format_price(limit_price),
                py_percent(offset, 2, false)
            )
        });
        let placed = self.exchange().create_limit_order(&LimitOrder {
            symbol,
            side,
            amount,
            price: limit_price,
            leverage,
        })?;
        let report = match placed {
            OrderAnswer::Missing => {
                self.log(Channel::Main, Level::Warn, || {
                    "Limit order failed, falling back to market order".to_owned()
                });
                self.log(Channel::Position, Level::Warn, || {
                    "  Limit order failed, using MARKET order".to_owned()
                });
                return self.market_fill(symbol, side, amount, leverage, price);
            }
            OrderAnswer::Opaque(_) => None,
            OrderAnswer::Report(report) => Some(report),
        };
        let Some((report, id)) = report.and_then(|r| r.id.clone().map(|id| (r, id))) else {
            // No id: the order cannot be followed or cancelled. Look at the exchange first.
            return self.without_order_id(symbol, side, amount, leverage, price, limit_price);
        };

        self.log(Channel::Position, Level::Info, || {
            format!(
                "  Limit order placed, waiting for fill (Order ID: {})",
                id.text()
            )
        });
        let status = self.order_status(symbol, &id);
        if let Some(st) = status.as_ref().filter(|st| st.is_closed()) {
            self.log(Channel::Position, Level::Info, || {
                "  Limit order filled successfully".to_owned()
            });
            let filled = st
                .filled()
                .filter(|f| *f > 0.0)
                .or(report.filled().filter(|f| *f > 0.0))
                .unwrap_or(amount);
            let fill_price = st.average().or(report.average()).unwrap_or(limit_price);
            if filled != amount {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Order for {symbol} filled {} of {} contracts; tracking the filled amount",
                        py_repr_float(filled),
                        py_repr_float(amount)
                    )
                });
            }
            return Ok(Some(Fill {
                amount: filled,
                price: fill_price,
            }));
        }

        // Not filled (yet): cancel, then find out what did fill before any market order.
        let cancelled = match self.exchange().cancel_order(&id, symbol) {
            Ok(c) => c,
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Cancelling limit order {} for {symbol} failed: {e}",
                        id.text()
                    )
                });
                false
            }
        };
        let final_status = if cancelled {
            // After a successful cancel the order is final, so its status is too.
            self.order_status(symbol, &id).filter(OrderReport::is_final)
        } else {
            None
        }
        .or(status.filter(OrderReport::is_final));
        let limit_fill = |filled: f64, st: &OrderReport| Fill {
            amount: filled,
            price: st.average().or(report.average()).unwrap_or(limit_price),
        };
        match final_status
            .as_ref()
            .and_then(|st| st.filled().map(|f| (f, st)))
        {
            Some((filled, st)) if cancelled || st.is_final() => {
                if filled >= amount {
                    self.log(Channel::Position, Level::Info, || {
                        "  Limit order filled successfully".to_owned()
                    });
                    Ok(Some(limit_fill(filled, st)))
                } else if filled > 0.0 {
                    Ok(Some(self.top_up(
                        symbol,
                        side,
                        amount,
                        leverage,
                        price,
                        limit_fill(filled, st),
                    )))
                } else {
                    self.log_limit_unfilled();
                    self.market_fill(symbol, side, amount, leverage, price)
                }
            }
            _ => {
                self.recheck_after_limit(symbol, &id, cancelled, side, request, price, limit_price)
            }
        }
    }

    /// `wait_for_order_fill` as a report; a failure or a non-dict answer is "unknown".
    fn order_status(&self, symbol: &str, id: &OrderId) -> Option<OrderReport> {
        match self.exchange().wait_for_order_fill(id, symbol) {
            Ok(OrderAnswer::Report(report)) => Some(report),
            Ok(_) => None,
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Could not read the status of limit order {} for {symbol}: {e}",
                        id.text()
                    )
                });
                None
            }
        }
    }

    fn log_limit_unfilled(&self) {
        self.log(Channel::Main, Level::Info, || {
            "Limit order not filled, using market order instead".to_owned()
        });
        self.log(Channel::Position, Level::Warn, || {
            "  Limit order not filled, cancelled and using MARKET order".to_owned()
        });
    }

    /// A partial limit fill topped up by a market order for the remainder only.
    fn top_up(
        &self,
        symbol: &str,
        side: OrderSide,
        amount: f64,
        leverage: f64,
        price: f64,
        partial: Fill,
    ) -> Fill {
        let remainder = amount - partial.amount;
        self.log(Channel::Position, Level::Warn, || {
            format!(
                "  Limit order partially filled ({} of {} contracts), cancelled; MARKET order for the remaining {}",
                py_repr_float(partial.amount),
                py_repr_float(amount),
                py_repr_float(remainder)
            )
        });
        match self.market_fill(symbol, side, remainder, leverage, price) {
            Ok(Some(rest)) => partial.plus(rest),
            Ok(None) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Top-up order for {symbol} failed; tracking the {} contracts the limit order filled",
                        py_repr_float(partial.amount)
                    )
                });
                partial
            }
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Top-up order for {symbol} failed: {e}; tracking the {} contracts the limit order filled",
                        py_repr_float(partial.amount)
                    )
                });
                partial
            }
        }
    }

    /// What the exchange holds for `symbol` (contracts, entry price) by a fresh position list;
    /// `Err` when the list could not be read or is malformed (then nothing is known).
    fn held_on_exchange(&self, symbol: &str) -> Result<Option<Fill>, String> {
        let entries = self
            .exchange()
            .get_open_positions()
            .map_err(|e| e.to_string())?;
        let snapshot = Snapshot::from_entries(&entries, 0);
        match snapshot.present.get(symbol) {
            Some(Some(fp)) if fp.contracts > 0.0 && fp.entry_price > 0.0 => Ok(Some(Fill {
                amount: fp.contracts,
                price: fp.entry_price,
            })),
            Some(_) => Err(format!(
                "the exchange lists {symbol} without a readable size and entry price"
            )),
            None if snapshot.well_formed => Ok(None),
            None => Err("malformed position list".to_owned()),
        }
    }

    /// The cancel failed or the fill is unknown: decide from the exchange's position list.
    #[allow(clippy::too_many_arguments)]
    fn recheck_after_limit(
        &self,
        symbol: &str,
        id: &OrderId,
        cancelled: bool,
        side: OrderSide,
        request: &OpenRequest<'_>,
        price: f64,
        limit_price: f64,
    ) -> CoreResult<Option<Fill>> {
        let (amount, _) = request.amount;
        let (leverage, _) = request.leverage;
        let id_text = id.text();
        match self.held_on_exchange(symbol) {
            Ok(Some(held)) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order {id_text} for {symbol}: fill status unknown, the exchange holds {} contracts; tracking them",
                        py_repr_float(held.amount)
                    )
                });
                if cancelled && held.amount < amount {
                    Ok(Some(
                        self.top_up(symbol, side, amount, leverage, price, held),
                    ))
                } else {
                    Ok(Some(held))
                }
            }
            Ok(None) if cancelled => {
                self.log_limit_unfilled();
                self.market_fill(symbol, side, amount, leverage, price)
            }
            Ok(None) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order {id_text} for {symbol} at {} could not be cancelled and may still fill; not sending a market order",
                        format_price(limit_price)
                    )
                });
                self.log(Channel::Position, Level::Error, || {
                    "  ✗ Limit order could not be cancelled; no MARKET order sent".to_owned()
                });
                Ok(None)
            }
            Err(why) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Cannot verify {symbol} on exchange after limit order {id_text} ({why}); not sending a market order"
                    )
                });
                Ok(None)
            }
        }
    }

    /// A limit answer without an id: the order cannot be followed or cancelled. If the exchange
    /// already holds the position it is tracked; if it surely holds nothing the original market
    /// fallback runs; if that cannot be known, nothing more is sent.
    fn without_order_id(
        &self,
        symbol: &str,
        side: OrderSide,
        amount: f64,
        leverage: f64,
        price: f64,
        limit_price: f64,
    ) -> CoreResult<Option<Fill>> {
        match self.held_on_exchange(symbol) {
            Ok(Some(held)) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order for {symbol} has no 'id' but the exchange holds {} contracts; tracking them",
                        py_repr_float(held.amount)
                    )
                });
                Ok(Some(held))
            }
            Ok(None) => {
                self.log(Channel::Main, Level::Warn, || {
                    "Limit order missing 'id', falling back to market order".to_owned()
                });
                self.log(Channel::Position, Level::Warn, || {
                    "  Limit order missing 'id', using MARKET order".to_owned()
                });
                self.market_fill(symbol, side, amount, leverage, price)
            }
            Err(why) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order for {symbol} at {} has no 'id' and the exchange cannot be checked ({why}); not sending a market order",
                        format_price(limit_price)
                    )
                });
                Ok(None)
            }
        }
    }
}
