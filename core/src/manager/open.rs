//! `open_position(...)`: the original's validation, log blocks, targets and client call shapes,
//! with the fixes of §6.20 and rule 7:
//!
//! - the position records the amount and average price the order reports as filled (the
//!   requested amount and the ticker price only when the answer does not say);
//! - a limit order that filled partially is topped up by the remainder only;
//! - when the cancel fails or the fill status is unknown, the exchange's position list is
//!   checked before any market order, so a second full order is never sent blind;
//! - a symbol being opened is reserved: a concurrent open of it fails validation and a sync does
//!   not import it meanwhile; the insert takes a fresh book mark, so a cleanup whose list
//!   predates it never removes it (rule 4);
//! - a symbol the book remembers (a tombstone, a close not yet confirmed, an open whose outcome
//!   is unknown) or that the last list showed untracked is checked against a fresh list first:
//!   the very same position is restored, a listed one imported, an unknown open resolved —
//!   instead of a second position opened on top of a live one;
//! - an order answer that is not definitive (the client raised, answered falsy or something
//!   unreadable) is resolved before the call returns — by client order id where the client
//!   takes them, else by the list; if neither tells, the symbol stays reserved ("outcome
//!   unknown") and no second order is sent for it until a list resolves it;
//! - the contract size is known from the moment the position is tracked (the last list, or one
//!   read right after the fill), so values and log lines are right before the first cycle;
//! - a signal other than `'BUY'`/`'SELL'` and a short whose take profit would be at or below
//!   zero are invalid parameters instead of opening a short.

use log::Level;

use super::hold::ListSight;
use super::in_flight::{SentIntent, SettleOnDrop};
use super::messages::{leverage_text, Channel, RULE, THIN_RULE};
use super::verify::Lookup;
use super::{caught, Manager};
use crate::book::{OpenIntent, OpenRefusal};
use crate::error::CoreResult;
use crate::events::EventKind;
use crate::exchange::{
    LimitOrder, MarketOrder, OrderAnswer, OrderId, OrderReport, OrderSide, StatusWait, TickerAnswer,
};
use crate::format::{format_price, py_percent, py_repr_float};
use crate::key::{Key, Side};
use crate::reconcile::Purpose;
use crate::snapshot::Seen;

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

/// What the exchange filled, and the client order id of the order that filled it.
#[derive(Clone, Debug, PartialEq)]
struct Fill {
    amount: f64,
    price: f64,
    order_id: Option<String>,
}

impl Fill {
    /// Two fills as one (volume-weighted price).
    fn plus(self, other: Fill) -> Fill {
        let amount = self.amount + other.amount;
        Fill {
            amount,
            price: (self.amount * self.price + other.amount * other.price) / amount,
            order_id: other.order_id.or(self.order_id),
        }
    }
}

/// How an opening order ended.
#[derive(Clone, Debug, PartialEq)]
enum Placed {
    /// Filled (as far as the answer says).
    Filled(Fill),
    /// Definitively not placed or not filled.
    Failed,
    /// Resolved against the exchange: the position it opened is tracked already.
    Tracked,
    /// Still unknown: the symbol stays reserved until a list tells.
    Unknown,
}

/// Releases an open's reservation unless the open tracked something or left it "unknown".
struct Reservation<'m, H: Clone> {
    book: &'m crate::book::Book<H>,
    key: &'m Key,
}

impl<H: Clone> Drop for Reservation<'_, H> {
    fn drop(&mut self) {
        self.book.end_open(self.key);
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Whether an `open_position` for `symbol` is in flight (or its outcome is unknown).
    pub fn is_opening(&self, symbol: &str) -> bool {
        self.book().is_opening(symbol)
    }

    fn log_invalid(&self, message: &str) {
        self.log(Channel::Main, Level::Error, || {
            format!("Invalid position parameters: {message}")
        });
        self.log(Channel::Position, Level::Error, || {
            format!("  ✗ Invalid parameters: {message}")
        });
    }

    /// `open_position(symbol, signal, amount, leverage, stop_loss_percentage, use_limit,
    /// limit_offset)`: whether a position was opened and is now tracked. Only an interruption
    /// is an error.
    pub fn open_position(&self, request: &OpenRequest<'_>) -> CoreResult<bool> {
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
            self.log_invalid(&message);
            return Ok(false);
        }
        let side = if request.signal == "BUY" {
            Side::Long
        } else {
            Side::Short
        };
        let key = match self.open_key(symbol, side) {
            Ok(key) => key,
            Err(message) => {
                self.log_invalid(&message);
                return Ok(false);
            }
        };
        // A journal's row of an order sent for the key goes once the call is over and the book
        // took its outcome in (whichever way the call returns).
        let _settle = SettleOnDrop::new(self, &key);
        // Reserve, checking the exchange first when the book remembers something about the
        // symbol or its re-open is held (at most one check: a symbol still in doubt after it is
        // not opened).
        let mut checked = false;
        if !self.book().contains(key.as_str()) && self.reopen_hold_left(&key).is_some() {
            checked = true;
            if let Some(done) = self.check_before_open(&key)? {
                return Ok(done);
            }
        }
        // The position the manager's own close last ended under the key was confirmed gone by
        // a list, and none has shown it since: the open needs no check for it (as before it
        // was kept) and supersedes it.
        drop(self.book().forget_own_end(&key));
        loop {
            match self.book().begin_open(&key, true) {
                Ok(()) => break,
                Err(OpenRefusal::Tracked | OpenRefusal::Opening) => {
                    self.log_invalid(&format!("Position for {symbol} already exists"));
                    return Ok(false);
                }
                Err(OpenRefusal::Verify) if !checked => {
                    checked = true;
                    if let Some(done) = self.check_before_open(&key)? {
                        return Ok(done);
                    }
                }
                Err(OpenRefusal::Verify) => {
                    self.log_invalid(&format!(
                        "Position for {symbol} cannot be verified against the exchange; not opening"
                    ));
                    return Ok(false);
                }
            }
        }
        let reservation = Reservation {
            book: self.book(),
            key: &key,
        };
        let result = self.open_reserved(request, &key);
        drop(reservation);
        match result {
            Ok(opened) => Ok(opened),
            Err(e) if e.is_interrupt() => Err(e),
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error opening position: {e}")
                });
                self.log(Channel::Position, Level::Error, || {
                    format!("✗ FAILED to open position: {e}")
                });
                self.log(Channel::Position, Level::Info, || RULE.to_owned());
                Ok(false)
            }
        }
    }

    /// A fresh list before opening a symbol the book remembers: restores, imports or resolves.
    /// `Some(result)` ends the open (`true`: an earlier open of ours turned out to have gone
    /// through and is tracked now); `None`: nothing is held, go on.
    fn check_before_open(&self, key: &Key) -> CoreResult<Option<bool>> {
        let symbol = key.as_str();
        let ours = self.book().open_intent(symbol).is_some();
        // The last list showed the key held by a position the book does not track (a person's,
        // or one it has yet to import).
        let shown_held = !self.book().contains(symbol) && self.book().last_list_holds(key);
        let mut list = match self.read_list()? {
            Ok(list) => list,
            Err(e) => {
                self.log_invalid(&format!(
                    "Position for {symbol} cannot be verified against the exchange ({e}); not opening"
                ));
                return Ok(Some(false));
            }
        };
        let mut report =
            self.apply_list(&mut list, Purpose::Sync, Some(key), "closed_externally")?;
        if list.snapshot.entries == 0 && !self.book().contains(symbol) && !report.uncorroborated {
            // An empty list alone does not prove a remembered position gone (the bot's client
            // answers [] for any failure): read it once more.
            list = match self.read_list()? {
                Ok(again) => again,
                Err(e) => {
                    self.log_invalid(&format!(
                        "Position for {symbol} cannot be verified against the exchange ({e}); not opening"
                    ));
                    return Ok(Some(false));
                }
            };
            report = self.apply_list(&mut list, Purpose::Sync, Some(key), "closed_externally")?;
        }
        if self.book().contains(symbol) {
            if ours {
                self.log(Channel::Main, Level::Info, || {
                    format!("Open of {symbol} from an earlier call went through; it is tracked now, no second order sent")
                });
                return Ok(Some(true));
            }
            let how = if report.restored > 0 {
                "restored"
            } else {
                "imported"
            };
            self.log_invalid(&format!(
                "Position for {symbol} already exists on the exchange ({how}, no order sent)"
            ));
            return Ok(Some(false));
        }
        if report.uncorroborated || !list.snapshot.well_formed {
            self.log_invalid(&format!(
                "Position for {symbol} cannot be verified against the exchange; not opening"
            ));
            return Ok(Some(false));
        }
        if shown_held && list.snapshot.entries == 0 && self.config().reopen_hold_seconds > 0.0 {
            // The last list showed the key held and the check read only empty answers since:
            // they cannot be told from failed reads (nor from a venue answering an empty list
            // by mistake), so the position may still be there. Held like a position untracked
            // on such lists: an open now could go on top of it (the venue run's BingX hedge
            // seed 20).
            if self.holds.note(ListSight::Blind, [key], list.taken_at) {
                self.journal_holds();
            }
            let hold = py_repr_float(self.config().reopen_hold_seconds);
            self.log_invalid(&format!(
                "Position for {symbol} was listed held by a position the manager does not track, and the exchange now lists no position at all; not opening it for {hold} seconds (reopen_hold_seconds={hold}: an empty list cannot be told from a failed read)"
            ));
            return Ok(Some(false));
        }
        if let Some(left) = self.reopen_hold_left(key) {
            // Only lists that showed no live position were read since the hold began (one that
            // showed any ends it): they cannot be told from failed reads. The hold began when
            // such a list untracked the position (or confirmed the manager's own close), or when
            // the check above found a position by hand the last list showed hidden by empty
            // answers: the text fits each (a restarted manager's hold does not say which).
            let hold = self.config().reopen_hold_seconds;
            self.log_invalid(&format!(
                "Position for {symbol} may still be open: a list showed it held and every list since showed no position at all, and the exchange still lists none; not opening it again for {} more seconds (reopen_hold_seconds={}: an empty list cannot be told from a failed read)",
                py_repr_float((left * 10.0).ceil() / 10.0),
                py_repr_float(hold)
            ));
            return Ok(Some(false));
        }
        if list.snapshot.seen(key) == Seen::Absent {
            // Verified gone: a removed position the book remembers is superseded by the open.
            drop(self.book().forget_tombstone(key));
        }
        Ok(None)
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

    fn open_reserved(&self, request: &OpenRequest<'_>, key: &Key) -> CoreResult<bool> {
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

        let ticker = self.exchange().get_ticker(key.symbol())?;
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
        let intent = OpenIntent {
            side: if is_long { Side::Long } else { Side::Short },
            amount,
            leverage,
            stop_loss_percentage: s,
            price,
            client_order_id: None,
        };
        let placed = if request.use_limit {
            self.open_with_limit(request, key, &intent, side, price)?
        } else {
            self.log(Channel::Position, Level::Info, || {
                "  Placing MARKET order".to_owned()
            });
            self.market_fill(key, &intent, side, amount, price)?
        };
        let fill = match placed {
            Placed::Filled(fill) => fill,
            Placed::Tracked => return Ok(true),
            Placed::Failed | Placed::Unknown => {
                self.log(Channel::Position, Level::Error, || {
                    "  Order creation failed".to_owned()
                });
                return Ok(false);
            }
        };
        let amount_shown = if fill.amount == amount {
            amount_text.to_owned()
        } else {
            py_repr_float(fill.amount)
        };
        self.track_opened(request, key, &intent, fill, &amount_shown)
    }

    /// Computes the targets, logs the original blocks and inserts the position.
    fn track_opened(
        &self,
        request: &OpenRequest<'_>,
        key: &Key,
        intent: &OpenIntent,
        fill: Fill,
        amount_shown: &str,
    ) -> CoreResult<bool> {
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
        let contract_size = self.contract_size_after_open(key)?;
        let position = self.opened_state(key, intent, fill.amount, entry);
        if let Some(size) = contract_size {
            position.lock().contract_size = size;
        }
        let handle = match self.handles.make(&position) {
            Ok(handle) => handle,
            Err(e) if e.is_interrupt() => return Err(e),
            Err(e) => {
                // The exchange position exists but cannot be tracked without a handle; the
                // next sync imports it.
                self.log(Channel::Main, Level::Error, || {
                    format!("Error opening position: {e}")
                });
                return Ok(false);
            }
        };
        let displaced = self.book().finish_open(key, position.clone(), handle, true);
        // Events name the book's key (in hedge mode `SYMBOL@long`, not the symbol the bot
        // passed): the journal writes each event's position under its event's name.
        if let Some(old) = displaced.replaced() {
            // Only a direct assignment by the bot can get here while the symbol is reserved;
            // the replaced position leaves the book, so it is an event.
            self.record(
                key.as_str(),
                &old.position,
                EventKind::Untracked,
                "replaced_by_open",
                None,
            );
        }
        drop(displaced);
        self.record_full(
            key.as_str(),
            &position,
            EventKind::Opened,
            "open",
            None,
            None,
            fill.order_id.as_deref(),
        );

        let value = fill.amount * entry * contract_size.unwrap_or(1.0);
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
        Ok(true)
    }

    /// The contract size of `key`'s symbol: from the last list, else from one list read right
    /// after the fill (the position is then listed; a list that lags tells nothing). That list
    /// is the last list from then on: a later open of a key it shows untracked checks the
    /// exchange first, as after any list (G10) — unless it shows no position at all. Right
    /// after a fill of ours such a list lags the fill or is a failed read (the bot's client
    /// answers `[]`): it shows no key untracked, and taking it as the last list would only hide
    /// the keys the list before it showed held by positions the book does not track (the crash
    /// run's KuCoin one-way seed 52: a person's position, then an open of another symbol whose
    /// read here failed, and the next open of the person's symbol went on top unchecked).
    fn contract_size_after_open(&self, key: &Key) -> CoreResult<Option<f64>> {
        if let Some(size) = self.book().listed_contract_size(key) {
            return Ok(Some(size));
        }
        Ok(match self.read_list()? {
            Ok(list) => {
                let size = match list.snapshot.seen(key) {
                    Seen::Listed(l) => l.contract_size,
                    _ => None,
                };
                // What it shows of other keys holds too: doubtful ends it shows real.
                let shown = self.book().note_ends_shown(&list.snapshot);
                if !shown.is_empty() {
                    self.journal_remembered(&shown);
                }
                if !list.snapshot.symbols.is_empty() {
                    self.book().note_list(list.snapshot);
                }
                size
            }
            Err(_) => None,
        })
    }

    /// A market order that opens (or tops up) `key`, and how it ended. An answer that is not
    /// definitive is resolved against the exchange before this returns.
    fn market_fill(
        &self,
        key: &Key,
        intent: &OpenIntent,
        side: OrderSide,
        amount: f64,
        fallback_price: f64,
    ) -> CoreResult<Placed> {
        let symbol = key.symbol();
        let order_id = self.new_client_order_id();
        let intent = OpenIntent {
            client_order_id: order_id.clone(),
            ..intent.clone()
        };
        if self
            .journal_order_sent(key, || SentIntent::open(&intent))
            .is_err()
        {
            // Not sent: an order the journal has no row of must not add exposure.
            return Ok(Placed::Failed);
        }
        let answer = self.exchange().create_market_order(&MarketOrder {
            symbol,
            side,
            amount,
            leverage: intent.leverage,
            reduce_only: false,
            client_order_id: order_id.as_deref(),
            position_side: self.leg(intent.side),
        });
        let answer = match answer {
            Err(e) if e.is_interrupt() => {
                // The order may be out: the symbol stays reserved until the exchange tells.
                self.book().open_unknown(key, intent);
                return Err(e);
            }
            other => other,
        };
        match answer {
            Ok(answer) => {
                if let Some(placed) =
                    self.fill_of(symbol, &answer, amount, fallback_price, &order_id)
                {
                    return Ok(placed);
                }
                self.settle_open(key, &intent, amount, fallback_price)
            }
            // Never sent: nothing to check (the original's error lines).
            Err(e) if e.is_unsent() => Err(e),
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Order for {symbol} failed: {}: {e}; checking the exchange before anything else", e.kind_name())
                });
                match self.settle_open(key, &intent, amount, fallback_price)? {
                    // Nothing was opened: the client's error is the open's error (the
                    // original's log lines).
                    Placed::Failed => Err(e),
                    other => Ok(other),
                }
            }
        }
    }

    /// What an order answer says was filled (see the module notes); `None` when it is not
    /// definitive (falsy, not a dict, a `filled` that is not a usable amount): the exchange must
    /// be asked.
    fn fill_of(
        &self,
        symbol: &str,
        answer: &OrderAnswer,
        requested: f64,
        fallback_price: f64,
        order_id: &Option<String>,
    ) -> Option<Placed> {
        let OrderAnswer::Report(report) = answer else {
            return None;
        };
        if report.filled_unreadable() || report.overfilled(requested) {
            return None;
        }
        let filled = report.filled();
        if filled == Some(0.0) && report.is_final() {
            // Final with nothing filled: rejected or cancelled, nothing was opened.
            return Some(Placed::Failed);
        }
        let amount = match filled {
            Some(f) if f > 0.0 => {
                if f != requested {
                    self.log_partial_fill(symbol, f, requested);
                }
                f
            }
            _ => requested,
        };
        Some(Placed::Filled(Fill {
            amount,
            price: report.average().unwrap_or(fallback_price),
            order_id: order_id.clone(),
        }))
    }

    /// An opening order without a definitive answer: by its client id, else by one list. If
    /// neither tells, the symbol stays reserved with the open's intent ("outcome unknown").
    fn settle_open(
        &self,
        key: &Key,
        intent: &OpenIntent,
        amount: f64,
        fallback_price: f64,
    ) -> CoreResult<Placed> {
        let symbol = key.symbol();
        match self.lookup_order(intent.client_order_id.as_deref(), symbol, Some(amount))? {
            Lookup::NotPlaced => return Ok(Placed::Failed),
            Lookup::Final(report) => {
                // A report that does not tell (never one `lookup_order` passes on today) is
                // settled by the list, as a lost answer: never taken for "nothing opened".
                let answer = OrderAnswer::Report(report);
                if let Some(placed) = self.fill_of(
                    symbol,
                    &answer,
                    amount,
                    fallback_price,
                    &intent.client_order_id,
                ) {
                    return Ok(placed);
                }
            }
            Lookup::Pending(_) | Lookup::Unreachable | Lookup::Unknown => {}
        }
        self.book().open_unknown(key, intent.clone());
        let (_, report) = self.verify_read(key)?;
        if self.book().contains(key.as_str()) {
            return Ok(Placed::Tracked);
        }
        if self.book().open_intent(key.as_str()).is_none() {
            return Ok(Placed::Failed);
        }
        if !report.unseen.contains(key) {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "The outcome of the open order for {key} is unknown and the exchange cannot be read; no second order is sent for it until the exchange tells"
                )
            });
        }
        self.record_open_unknown(key, intent, amount, fallback_price);
        Ok(Placed::Unknown)
    }

    /// The `outcome_unknown` event (reason `open`) of an open whose outcome is unknown, on the
    /// position it would have made: `amount` contracts at `price`, the intent's stop and target.
    pub(crate) fn record_open_unknown(
        &self,
        key: &Key,
        intent: &OpenIntent,
        amount: f64,
        price: f64,
    ) {
        let provisional = self.opened_state(key, intent, amount, price);
        self.record_full(
            key.as_str(),
            &provisional,
            EventKind::OutcomeUnknown,
            "open",
            None,
            None,
            intent.client_order_id.as_deref(),
        );
    }

    /// The limit path: post-only order, wait, cancel, re-check, market fallback or top-up.
    fn open_with_limit(
        &self,
        request: &OpenRequest<'_>,
        key: &Key,
        intent: &OpenIntent,
        side: OrderSide,
        price: f64,
    ) -> CoreResult<Placed> {
        // The exchange is asked about the symbol (a hedge-mode key names a leg of it).
        let symbol = key.symbol();
        let (amount, _) = request.amount;
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
        let order_id = self.new_client_order_id();
        let limit_intent = OpenIntent {
            client_order_id: order_id.clone(),
            ..intent.clone()
        };
        if self
            .journal_order_sent(key, || SentIntent::open(&limit_intent))
            .is_err()
        {
            // Not sent: an order the journal has no row of must not add exposure.
            return Ok(Placed::Failed);
        }
        let placed = match self.exchange().create_limit_order(&LimitOrder {
            symbol,
            side,
            amount,
            price: limit_price,
            leverage: intent.leverage,
            client_order_id: order_id.as_deref(),
            position_side: self.leg(intent.side),
        }) {
            Ok(answer) => answer,
            Err(e) if e.is_interrupt() => {
                self.book().open_unknown(key, limit_intent);
                return Err(e);
            }
            Err(e) if e.is_unsent() => return Err(e),
            Err(e) => {
                // The order may rest on the book: find out before anything else is sent.
                self.log(Channel::Main, Level::Warn, || {
                    format!("Limit order for {symbol} failed: {e}; checking the exchange")
                });
                return self.settle_open(key, &limit_intent, amount, limit_price);
            }
        };
        let report = match placed {
            OrderAnswer::Missing => {
                // A falsy answer may hide a resting order: look at the exchange first.
                return self.without_order_id(key, intent, side, price, limit_price, true);
            }
            OrderAnswer::Opaque(_) => None,
            OrderAnswer::Report(report) => Some(report),
        };
        let Some((report, id)) = report.and_then(|r| r.id.clone().map(|id| (r, id))) else {
            // No id: the order cannot be followed or cancelled. Look at the exchange first.
            return self.without_order_id(key, intent, side, price, limit_price, false);
        };

        // From here the order may rest on the book: an interruption (Ctrl+C while it waits,
        // say) leaves the open's outcome unknown, never the key free with the order resting.
        // Without a client id (the bot's own client) the exchange's id is all that finds the
        // order again: the journal's row of the open takes it now, so a process killed while it
        // waits leaves a row a restart cancels and reads the order by.
        if limit_intent.known_by_exchange_id() {
            self.journal_order_out(key, || SentIntent::resting_open(&limit_intent, id.text()));
        }
        let follow = || -> CoreResult<Placed> {
            self.log(Channel::Position, Level::Info, || {
                format!(
                    "  Limit order placed, waiting for fill (Order ID: {})",
                    id.text()
                )
            });
            let status = self.order_status(symbol, &id, StatusWait::Fill)?;
            if let Some(st) = status
                .as_ref()
                .filter(|st| st.is_closed() && !st.filled_unreadable() && !st.overfilled(amount))
            {
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
                    self.log_partial_fill(symbol, filled, amount);
                }
                return Ok(Placed::Filled(Fill {
                    amount: filled,
                    price: fill_price,
                    order_id,
                }));
            }

            // Not filled (yet): cancel, then find out what did fill before any market order.
            let cancelled = match caught(self.exchange().cancel_order(&id, symbol))? {
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
            // After a successful cancel the order is final, so its status is too. The fill's
            // wait, not a check: a venue slow to show the cancel still gets its time, so a part
            // filled just before it is read, not topped up on top.
            let after_cancel = if cancelled {
                self.order_status(symbol, &id, StatusWait::Fill)?
            } else {
                None
            };
            // A cancel the client reported done whose order the venue still reports open (a
            // success answer for a cancel that did not take, or one ccxt made up from a
            // malformed answer): the order may still fill, so it is no cancel, and no market
            // order goes out beside it.
            let cancelled = if after_cancel.as_ref().is_some_and(OrderReport::says_open) {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order {} for {symbol}: the cancel was reported done, but the exchange still reports the order open; taking it as not cancelled",
                        id.text()
                    )
                });
                false
            } else {
                cancelled
            };
            let final_status = after_cancel
                .filter(OrderReport::is_final)
                .or(status.filter(OrderReport::is_final));
            let limit_fill = |filled: f64, st: &OrderReport| Fill {
                amount: filled,
                price: st.average().or(report.average()).unwrap_or(limit_price),
                order_id: order_id.clone(),
            };
            match final_status
                .as_ref()
                .filter(|st| !st.overfilled(amount))
                .and_then(|st| st.filled().map(|f| (f, st)))
            {
                Some((filled, st)) if cancelled || st.is_final() => {
                    if filled >= amount {
                        self.log(Channel::Position, Level::Info, || {
                            "  Limit order filled successfully".to_owned()
                        });
                        Ok(Placed::Filled(limit_fill(filled, st)))
                    } else if filled > 0.0 {
                        self.top_up(key, intent, side, amount, price, limit_fill(filled, st))
                    } else {
                        self.log_limit_unfilled();
                        self.market_fill(key, intent, side, amount, price)
                    }
                }
                _ => self.recheck_after_limit(
                    key,
                    intent,
                    &limit_intent,
                    &id,
                    cancelled,
                    price,
                    limit_price,
                ),
            }
        };
        let followed = follow();
        if matches!(&followed, Err(e) if e.is_interrupt())
            && self.book().open_intent(key.as_str()).is_none()
        {
            self.book()
                .open_unknown_limit(key, limit_intent.clone(), &id);
        }
        followed
    }

    /// `wait_for_order_fill` (waiting as `wait` says) as a report; a failure or a non-dict
    /// answer is "unknown".
    pub(super) fn order_status(
        &self,
        symbol: &str,
        id: &OrderId,
        wait: StatusWait,
    ) -> CoreResult<Option<OrderReport>> {
        Ok(
            match caught(self.exchange().wait_for_order_fill(id, symbol, wait))? {
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
            },
        )
    }

    /// The warning for an order that filled another amount than it asked for.
    fn log_partial_fill(&self, symbol: &str, filled: f64, requested: f64) {
        self.log(Channel::Main, Level::Warn, || {
            format!(
                "Order for {symbol} filled {} of {} contracts; tracking the filled amount",
                py_repr_float(filled),
                py_repr_float(requested)
            )
        });
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
        key: &Key,
        intent: &OpenIntent,
        side: OrderSide,
        amount: f64,
        price: f64,
        partial: Fill,
    ) -> CoreResult<Placed> {
        // To 12 significant digits: 0.009 − 0.008 is 0.0009999999999999992 in floating point,
        // which a client truncating to the amount step (ccxt) sends as 0 — refused — or a whole
        // step short.
        let remainder = significant(amount - partial.amount, 12);
        self.log(Channel::Position, Level::Warn, || {
            format!(
                "  Limit order partially filled ({} of {} contracts), cancelled; MARKET order for the remaining {}",
                py_repr_float(partial.amount),
                py_repr_float(amount),
                py_repr_float(remainder)
            )
        });
        let held = partial.amount;
        Ok(
            match self.market_fill(key, intent, side, remainder, price)? {
                Placed::Filled(rest) => Placed::Filled(partial.plus(rest)),
                Placed::Failed => {
                    self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Top-up order for {key} failed; tracking the {} contracts the limit order filled",
                        py_repr_float(held)
                    )
                });
                    Placed::Filled(partial)
                }
                other => other,
            },
        )
    }

    /// What the exchange holds for `key` (contracts, entry price) by a fresh position list;
    /// `Err` when the list could not be read or is malformed (then nothing is known).
    fn held_on_exchange(&self, key: &Key) -> CoreResult<Result<Option<Fill>, String>> {
        let list = match self.read_list()? {
            Ok(list) => list,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(match list.snapshot.seen(key) {
            Seen::Listed(l) if l.entry_price.is_some() => Ok(Some(Fill {
                amount: l.contracts,
                price: l.entry_price.unwrap_or_default(),
                order_id: None,
            })),
            Seen::Absent if list.snapshot.well_formed => Ok(None),
            Seen::Absent => Err("malformed position list".to_owned()),
            _ => Err(format!(
                "the exchange lists {key} without a readable size and entry price"
            )),
        })
    }

    /// The cancel failed or the fill is unknown: decide from the exchange's position list.
    #[allow(clippy::too_many_arguments)]
    fn recheck_after_limit(
        &self,
        key: &Key,
        intent: &OpenIntent,
        limit_intent: &OpenIntent,
        id: &OrderId,
        cancelled: bool,
        price: f64,
        limit_price: f64,
    ) -> CoreResult<Placed> {
        let amount = intent.amount;
        let side = OrderSide::opening(intent.side == crate::key::Side::Long);
        let id_text = id.text();
        // The limit order may still rest and fill, or have filled in part before a cancel whose
        // end cannot be read. Its key stays reserved as an open with an unknown outcome: the
        // lists, and a check of the order before their silence is believed (by its client id,
        // or by the exchange's id on the bot's own client; it is cancelled if it still rests),
        // settle it.
        let may_rest = || -> Placed {
            self.book()
                .open_unknown_limit(key, limit_intent.clone(), id);
            self.record_open_unknown(key, limit_intent, amount, limit_price);
            Placed::Unknown
        };
        match self.held_on_exchange(key)? {
            Ok(Some(held)) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order {id_text} for {key}: fill status unknown, the exchange holds {} contracts; tracking them",
                        py_repr_float(held.amount)
                    )
                });
                if cancelled && held.amount < amount {
                    self.top_up(key, intent, side, amount, price, held)
                } else {
                    Ok(Placed::Filled(held))
                }
            }
            Ok(None) if cancelled => {
                self.log_limit_unfilled();
                self.market_fill(key, intent, side, amount, price)
            }
            Ok(None) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order {id_text} for {key} at {} could not be cancelled and may still fill; not sending a market order",
                        format_price(limit_price)
                    )
                });
                self.log(Channel::Position, Level::Error, || {
                    "  ✗ Limit order could not be cancelled; no MARKET order sent".to_owned()
                });
                Ok(may_rest())
            }
            Err(why) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Cannot verify {key} on exchange after limit order {id_text} ({why}); not sending a market order"
                    )
                });
                Ok(may_rest())
            }
        }
    }

    /// A limit answer without an id (or a falsy one): the order cannot be followed or cancelled.
    /// If the exchange already holds the position it is tracked; if it surely holds nothing the
    /// original market fallback runs; if that cannot be known, nothing more is sent.
    fn without_order_id(
        &self,
        key: &Key,
        intent: &OpenIntent,
        side: OrderSide,
        price: f64,
        limit_price: f64,
        falsy: bool,
    ) -> CoreResult<Placed> {
        match self.held_on_exchange(key)? {
            Ok(Some(held)) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order for {key} has no usable answer but the exchange holds {} contracts; tracking them",
                        py_repr_float(held.amount)
                    )
                });
                Ok(Placed::Filled(held))
            }
            Ok(None) => {
                if falsy {
                    self.log(Channel::Main, Level::Warn, || {
                        "Limit order failed, falling back to market order".to_owned()
                    });
                    self.log(Channel::Position, Level::Warn, || {
                        "  Limit order failed, using MARKET order".to_owned()
                    });
                } else {
                    self.log(Channel::Main, Level::Warn, || {
                        "Limit order missing 'id', falling back to market order".to_owned()
                    });
                    self.log(Channel::Position, Level::Warn, || {
                        "  Limit order missing 'id', using MARKET order".to_owned()
                    });
                }
                self.market_fill(key, intent, side, intent.amount, price)
            }
            Err(why) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Limit order for {key} at {} has no usable answer and the exchange cannot be checked ({why}); not sending a market order",
                        format_price(limit_price)
                    )
                });
                Ok(Placed::Failed)
            }
        }
    }
}

/// `x` rounded to `digits` significant decimal digits (a float's arithmetic residue left out);
/// `x` itself when it is not finite or is 0.
fn significant(x: f64, digits: usize) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.*e}", digits.saturating_sub(1))
        .parse()
        .unwrap_or(x)
}

#[cfg(test)]
mod significant_tests {
    use super::significant;
    use proptest::prelude::*;

    #[test]
    fn a_subtractions_residue_is_left_out() {
        assert_eq!(significant(0.009 - 0.008, 12), 0.001);
        assert_eq!(significant(0.009 - 0.002, 12), 0.007);
        assert_eq!(significant(50000.6 - 0.3, 12), 50000.3);
        assert_eq!(significant(0.0, 12), 0.0);
        assert!(significant(f64::NAN, 12).is_nan());
        assert_eq!(significant(f64::INFINITY, 12), f64::INFINITY);
    }

    proptest! {
        /// Whole lots of any step stay those lots, however the float arithmetic reached them.
        #[test]
        fn whole_lots_survive(lots in 1u64..10_000_000, exp in -8i32..3, filled in 0u64..10_000_000) {
            let step = 10f64.powi(exp);
            let filled = filled % lots;
            let exact = (lots - filled) as f64 * step;
            let computed = lots as f64 * step - filled as f64 * step;
            let snapped = significant(computed, 12);
            prop_assert!((snapped - exact).abs() <= exact * 1e-11, "{computed} -> {snapped}, want {exact}");
            prop_assert!(snapped > 0.0);
        }
    }
}
