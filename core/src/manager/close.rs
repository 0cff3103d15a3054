//! `close_position(symbol, reason)`: the original safeguard (a position the exchange no longer
//! lists is untracked without an order), its log blocks, and these fixes:
//!
//! - a successful exchange close always returns its P/L, whatever another thread did to the book
//!   meanwhile (§6.4);
//! - one close (or other reducing order) per position at a time: never a second close order;
//! - a close the client reports is verified by the next list requested after it (rule 7): the
//!   position waits as "closed, awaiting confirmation"; a list that still shows it restores it
//!   (`close_unconfirmed`) — after looking the close order up when it carries a client id: a
//!   filled order means the list lags, and the position stays closed until
//!   `outcome_confirmations` lists in a row show it (lists showing exactly the position an order
//!   filled in full closed never do, within `tombstone_ttl_seconds`);
//! - a close whose outcome is unknown (the client raised, or answered falsy: the bot's client
//!   does both after a timeout that may have closed it) is resolved against the exchange before
//!   the call returns — by the order's client id where the client takes them, else by a list:
//!   gone means closed (the P/L is returned); still there means not closed only once
//!   `outcome_confirmations` lists in a row show it (a list can lag the fill), and until then
//!   the outcome stays unknown and nothing more is sent for the position.

use log::Level;

use super::in_flight::SentIntent;
use super::lists::ListRead;
use super::messages::{leverage_text, Channel, RULE, THIN_RULE};
use super::methods::Methods;
use super::verify::Lookup;
use super::Manager;
use crate::book::{Refusal, SharedPosition, Unknown};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::format::{format_pnl_usd, format_price, py_fixed, py_percent, py_repr_float};
use crate::key::{Key, Leg, Side};
use crate::reconcile::{Op, Resolution};
use crate::snapshot::Seen;

/// How a close ended.
#[derive(Clone, Debug, PartialEq)]
pub enum CloseOutcome {
    /// Not tracked: nothing to do.
    NotTracked,
    /// The close's own list read replaced the position under its key (a side flip taken or
    /// undone): nothing sent for the one it was asked about ([`Manager::close_position`]
    /// then closes the one the key holds).
    Replaced,
    /// The exchange no longer lists it: untracked without an order.
    AlreadyClosed,
    /// The exchange could not confirm it (failed or malformed answer): kept, nothing sent.
    Unverified,
    /// No usable price: kept, nothing sent.
    NoPrice,
    /// The client reported failure (verified: still open, or unknown): kept.
    Failed,
    /// Another order for this position is in flight: nothing sent (never two close orders).
    InProgress,
    /// Closed on the exchange; the leveraged P/L after fees.
    Closed(f64),
}

/// Why an order for a tracked position must not go out: what the list read for it showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlisted {
    /// The exchange no longer lists it: removed as closed externally.
    AlreadyClosed,
    /// It left the book meanwhile (or the key holds another position now, put there by
    /// another thread).
    NotTracked,
    /// The list read for the order replaced it under its key (a side flip taken, or one
    /// undone: the replaced position restored).
    Replaced,
    /// The list could not confirm it (unusable, uncorroborated, or an absence not yet
    /// confirmed under the removal rules): kept, nothing sent.
    Unverified,
}

impl CloseOutcome {
    /// The original's return value: the P/L for a close, `None` otherwise.
    pub fn pnl(&self) -> Option<f64> {
        match self {
            CloseOutcome::Closed(p) => Some(*p),
            _ => None,
        }
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// `close_position(symbol, reason)`. Only an interruption is an error.
    ///
    /// The close reads the exchange's list for the key first, and that read may replace the
    /// tracked position (a side flip, or a flip undone: the replaced position restored). The
    /// bot asked to close the symbol, as the original's close did whatever it held: the position
    /// the key holds then is closed in the same call (once; a warning says so), instead of
    /// returning with nothing sent.
    pub fn close_position(&self, symbol: &str, reason: &str) -> CoreResult<CloseOutcome> {
        let key = match self.resolve_key(symbol) {
            Ok(key) => key,
            Err(message) => {
                self.log(Channel::Main, Level::Warn, || message);
                return Ok(CloseOutcome::NotTracked);
            }
        };
        let key = key.as_str();
        let outcome = self.close_with(key, reason, None)?;
        if outcome != CloseOutcome::Replaced {
            return Ok(outcome);
        }
        let Some((now, _)) = self.book().get(key) else {
            return Ok(CloseOutcome::NotTracked);
        };
        let side = now.lock().side.clone();
        self.log(Channel::Main, Level::Warn, || {
            format!(
                "Position {key} was replaced while its close read the exchange (the list now shows it {side}); closing the position now tracked"
            )
        });
        // Once: a second replacement in a row is reported as such (nothing sent).
        self.close_with(key, reason, None)
    }

    /// The close, optionally trusting a fresh position list instead of reading it again (§6.5).
    pub(crate) fn close_with(
        &self,
        symbol: &str,
        reason: &str,
        fresh: Option<&ListRead>,
    ) -> CoreResult<CloseOutcome> {
        let Some((position, handle)) = self.book().get(symbol) else {
            self.log(Channel::Main, Level::Debug, || {
                format!("Position {symbol} not in local tracking, already closed")
            });
            return Ok(CloseOutcome::NotTracked);
        };
        let key = Key::parse(symbol);
        if !self.resolve_before_trading(&key, &position)? {
            return Ok(if self.book().holds(symbol, &position) {
                CloseOutcome::Unverified
            } else {
                CloseOutcome::NotTracked
            });
        }
        // One close per position at a time: a second one (the bot's close racing the update
        // cycle's, two cycles, two threads) would send a second close order.
        match self.book().begin_order(symbol, &position, Op::Close) {
            Ok(()) => {}
            Err(Refusal::Busy(_)) => {
                self.log(Channel::Main, Level::Info, || {
                    format!("Close of {symbol} already in progress, not sending another")
                });
                return Ok(CloseOutcome::InProgress);
            }
            Err(Refusal::Unknown(_)) => return Ok(CloseOutcome::Unverified),
            Err(Refusal::NotTracked) => return Ok(CloseOutcome::NotTracked),
        }
        let methods = self.methods(&position, &handle);
        let outcome = self.close_tracked(&key, reason, &position, &methods, fresh);
        self.book().end_order(symbol, &position);
        self.journal_orders_settled(std::slice::from_ref(&key));
        match outcome {
            Ok(outcome) => Ok(outcome),
            Err(e) if e.is_interrupt() => Err(e),
            Err(e) => {
                self.log_close_error(&e);
                Ok(CloseOutcome::Failed)
            }
        }
    }

    fn log_close_error(&self, e: &CoreError) {
        self.log(Channel::Main, Level::Error, || {
            format!("Error closing position: {e}")
        });
        self.log(Channel::Position, Level::Error, || {
            format!("✗ FAILED to close position: {e}")
        });
        self.log(Channel::Position, Level::Info, || format!("{RULE}\n"));
    }

    /// Whether the exchange lists `key` right now, before an order for it goes out (a close, a
    /// scale-in), by the cycle's fresh list when it could see this entry, else by a list read
    /// for it (which also applies what it shows about the key: an absence removes it as closed
    /// externally, under the removal rules). `Ok(Some(_))`: the order must not go out, and why;
    /// `doing` names it in the log ("closing", "scaling in").
    pub(crate) fn listed_before_order(
        &self,
        key: &Key,
        position: &SharedPosition,
        fresh: Option<&ListRead>,
        doing: &str,
    ) -> CoreResult<Option<Unlisted>> {
        let symbol = key.as_str();
        // A fresh list from this cycle is enough, but only for an entry the list could see: one
        // inserted after it was requested (re-added after a close, say) needs a list of its own
        // (rule 4).
        let fresh = fresh.filter(|l| {
            self.book()
                .seq_of(symbol)
                .is_some_and(|seq| seq <= l.snapshot.requested_at)
        });
        if let Some(list) = fresh {
            let seen = list.snapshot.seen(key);
            if seen != Seen::Absent && listed_reversed(key, position, &seen).is_none() {
                return Ok(None);
            }
        }
        // As the original's close, a list that cannot be read ends the operation with its error
        // lines. Only this symbol's entries are read in full (the original scanned for its
        // symbol too).
        let mut list = self.read_list_for(key)??;
        let report = self.apply_list(
            &mut list,
            crate::reconcile::Purpose::Verify,
            Some(key),
            "closed_externally",
        )?;
        if report.removed.iter().any(|k| k == key) {
            return Ok(Some(Unlisted::AlreadyClosed));
        }
        if !self.book().holds(symbol, position) {
            let replaced_here =
                report.imported + report.restored > 0 && self.book().get(symbol).is_some();
            return Ok(Some(if replaced_here {
                Unlisted::Replaced
            } else {
                Unlisted::NotTracked
            }));
        }
        let list = (!report.uncorroborated && list.snapshot.well_formed).then_some(list);
        let Some(list) = list else {
            if !report.uncorroborated {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Cannot verify {symbol} on exchange (no usable position list), keeping it and not {doing} this time"
                    )
                });
            }
            return Ok(Some(Unlisted::Unverified));
        };
        let seen = list.snapshot.seen(key);
        if seen == Seen::Absent {
            // Missing, but one list is not enough evidence under this policy.
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Position {symbol} not reported by the exchange; keeping it until the absence is confirmed, not {doing} this time"
                )
            });
            return Ok(Some(Unlisted::Unverified));
        }
        if let Some(listed) = listed_reversed(key, position, &seen) {
            // A reversal by hand, not yet believed: an order for the tracked side would act on
            // the listed one (one way holds one side), and the bot's own client closes
            // whatever the symbol lists.
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Position {symbol} is listed {listed} by the exchange; keeping it until the reversal is confirmed, not {doing} this time"
                )
            });
            return Ok(Some(Unlisted::Unverified));
        }
        Ok(None)
    }

    fn close_tracked(
        &self,
        key: &Key,
        reason: &str,
        position: &SharedPosition,
        methods: &Methods<'_>,
        fresh: Option<&ListRead>,
    ) -> CoreResult<CloseOutcome> {
        let symbol = key.as_str();
        self.bind_leg_side(key, position);
        if let Some(unlisted) = self.listed_before_order(key, position, fresh, "closing")? {
            return Ok(match unlisted {
                Unlisted::AlreadyClosed => {
                    self.log_already_closed(symbol);
                    CloseOutcome::AlreadyClosed
                }
                Unlisted::NotTracked => CloseOutcome::NotTracked,
                Unlisted::Replaced => CloseOutcome::Replaced,
                Unlisted::Unverified => CloseOutcome::Unverified,
            });
        }

        let (side, entry, entry_time, amount) = {
            let p = position.lock();
            (p.side.clone(), p.entry_price, p.entry_time, p.amount)
        };
        let side_upper = side.to_uppercase();
        self.log(Channel::Position, Level::Info, || format!("\n{RULE}"));
        self.log(Channel::Position, Level::Info, || {
            format!("CLOSING POSITION: {symbol}")
        });
        self.log(Channel::Position, Level::Info, || {
            format!("  Reason: {reason}")
        });
        self.log(Channel::Position, Level::Info, || {
            format!("  Side: {side_upper}")
        });
        self.log(Channel::Position, Level::Info, || {
            format!("  Entry Price: {}", format_price(entry))
        });
        self.log(Channel::Position, Level::Info, || {
            format!("  Entry Time: {}", entry_time.format_seconds())
        });

        let price = match self.exchange().get_ticker(key.symbol())? {
            crate::exchange::TickerAnswer::Missing => {
                self.log(Channel::Position, Level::Error, || {
                    "  ✗ Failed to get ticker".to_owned()
                });
                return Ok(CloseOutcome::NoPrice);
            }
            answer => match answer.valid_price() {
                Some(p) => p,
                None => {
                    let shown = match &answer {
                        crate::exchange::TickerAnswer::Ticker { last } => last.display(),
                        crate::exchange::TickerAnswer::Missing => "None".to_owned(),
                    };
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Invalid price for {symbol}: {shown}")
                    });
                    self.log(Channel::Position, Level::Error, || {
                        format!("  ✗ Invalid price: {shown}")
                    });
                    return Ok(CloseOutcome::NoPrice);
                }
            },
        };
        self.log(Channel::Position, Level::Info, || {
            format!("  Exit Price: {}", format_price(price))
        });

        // A subclass's P/L override that fails must not keep the position open: the close goes
        // on with the built-in figures (an interruption still ends the call).
        let figures = match CloseFigures::at(position, methods, price, self.now()) {
            Ok(figures) => figures,
            Err(e) if !e.is_interrupt() => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "P/L of {symbol} from its own methods failed ({e}); closing with the built-in P/L"
                    )
                });
                CloseFigures::at(position, &Methods::Builtin(position), price, self.now())?
            }
            Err(e) => return Err(e),
        };
        self.log_pnl_lines(&figures, true);
        self.log(Channel::Position, Level::Info, || {
            format!(
                "  Max Favorable Excursion: {}",
                py_percent(figures.mfe, 2, false)
            )
        });
        self.log(Channel::Position, Level::Info, || {
            "  Closing position on exchange...".to_owned()
        });

        let order_id = self.new_client_order_id();
        let unknown = || Unknown {
            op: Op::Close,
            at: 0,
            before: amount,
            client_order_id: order_id.clone(),
            reason: reason.to_owned(),
            price: Some(price),
            target_bit: 0,
            unseen: Default::default(),
            filled: false,
        };
        let leg = self.leg_of(position);
        // A close only reduces: it goes out even when its row cannot be written (logged), but
        // not once another manager claimed the account (fenced: that one trades it now).
        if self
            .journal_order_sent(key, || SentIntent::change(&unknown()))
            .is_err()
        {
            self.log(Channel::Position, Level::Error, || {
                "  ✗ Close not sent: another manager claimed this account".to_owned()
            });
            return Ok(CloseOutcome::Failed);
        }
        let answer = self.exchange().close_position(
            key.symbol(),
            order_id.as_deref(),
            leg,
            self.close_size(position),
        );
        let answer = match answer {
            Err(e) if e.is_interrupt() => {
                // The order may be out: nothing more is sent until the exchange tells.
                self.book().set_unknown(symbol, position, unknown());
                return Err(e);
            }
            other => other,
        };
        let confirmed = match answer {
            Ok(true) => true,
            Ok(false) => {
                self.log(Channel::Position, Level::Error, || {
                    "  ✗ Failed to close position on exchange".to_owned()
                });
                false
            }
            Err(e) if e.is_unsent() => {
                self.log_close_error(&e);
                return Ok(CloseOutcome::Failed);
            }
            Err(e) => {
                self.log_close_error(&e);
                false
            }
        };
        if !confirmed {
            // Not a definitive answer: a client may answer falsy (or raise) after the venue took
            // the close. Ask the exchange before anything else is sent.
            return self.settle_close(key, position, unknown(), figures.rf);
        }
        self.log(Channel::Position, Level::Info, || {
            "  ✓ Position closed on exchange".to_owned()
        });
        if reason == "stop_loss" || reason == "take_profit" {
            self.log_trigger_block(symbol, reason, position, price, &figures);
        }
        self.log(Channel::Main, Level::Info, || {
            format!(
                "Closed {side} position: {symbol} @ {}, Entry: {}, P/L: {} (after fees), Reason: {reason}",
                format_price(price),
                format_price(entry),
                py_percent(figures.rf, 2, false)
            )
        });
        self.log(Channel::Position, Level::Info, || {
            format!(
                "✓ Position closed successfully at {}",
                self.now().format_seconds()
            )
        });
        self.log(Channel::Position, Level::Info, || format!("{RULE}\n"));
        // The exchange close succeeded: the P/L is returned even if another thread untracked or
        // replaced the entry meanwhile (§6.4); only this very position leaves the book, and waits
        // for a list requested after now to confirm it.
        self.book()
            .closed(symbol, position, self.timer(), order_id.as_deref(), None);
        self.record_full(
            symbol,
            position,
            EventKind::Closed,
            reason,
            Some(figures.rf),
            None,
            order_id.as_deref(),
        );
        Ok(CloseOutcome::Closed(figures.rf))
    }

    /// A close without a definitive answer: by the order's id, else by one list.
    fn settle_close(
        &self,
        key: &Key,
        position: &SharedPosition,
        unknown: Unknown,
        rf: f64,
    ) -> CoreResult<CloseOutcome> {
        let symbol = key.as_str();
        let lookup = self.lookup_order(unknown.client_order_id.as_deref(), key.symbol(), None)?;
        match lookup {
            Lookup::NotPlaced => return Ok(CloseOutcome::Failed),
            _ if lookup.filled() => {
                // Filled: closed as far as the order says; the next list confirms it (a list
                // that still shows it lags the fill).
                self.book().closed(
                    symbol,
                    position,
                    self.timer(),
                    unknown.client_order_id.as_deref(),
                    lookup.filled_contracts(),
                );
                self.record_full(
                    symbol,
                    position,
                    EventKind::Closed,
                    &unknown.reason,
                    Some(rf),
                    None,
                    unknown.client_order_id.as_deref(),
                );
                self.log(Channel::Main, Level::Warn, || {
                    format!("The close order for {symbol} went through though the client reported a failure")
                });
                return Ok(CloseOutcome::Closed(rf));
            }
            Lookup::Final(_) => return Ok(CloseOutcome::Failed),
            Lookup::Pending(_) | Lookup::Unreachable | Lookup::Unknown => {}
        }
        Ok(match self.settle_by_list(key, position, unknown)? {
            Some(Resolution::Closed) => CloseOutcome::Closed(rf),
            _ => CloseOutcome::Failed,
        })
    }

    /// The original's block for a position the exchange no longer lists.
    fn log_already_closed(&self, symbol: &str) {
        self.log(Channel::Main, Level::Info, || {
            format!("Position {symbol} not found on exchange (already closed externally), removing from tracking")
        });
        self.log(Channel::Position, Level::Info, || format!("\n{RULE}"));
        self.log(Channel::Position, Level::Info, || {
            format!("POSITION ALREADY CLOSED: {symbol}")
        });
        self.log(Channel::Position, Level::Info, || {
            "  Position was closed externally (manually or liquidation)".to_owned()
        });
        self.log(Channel::Position, Level::Info, || {
            "  Removing from local tracking without P/L calculation".to_owned()
        });
        self.log(Channel::Position, Level::Info, || format!("{RULE}\n"));
    }

    fn log_pnl_lines(&self, f: &CloseFigures, with_duration: bool) {
        self.log(Channel::Position, Level::Info, || {
            format!(
                "  P/L (before fees): {} ({})",
                py_percent(f.r, 2, true),
                format_pnl_usd(f.pnl_usd)
            )
        });
        self.log(Channel::Position, Level::Info, || {
            format!("  Trading fees: -0.12% ({})", format_pnl_usd(-f.fees_usd))
        });
        self.log(Channel::Position, Level::Info, || {
            format!(
                "  P/L (after fees): {} ({})",
                py_percent(f.rf, 2, true),
                format_pnl_usd(f.net)
            )
        });
        if with_duration {
            self.log(Channel::Position, Level::Info, || {
                format!("  Duration: {} minutes", py_fixed(f.duration_mins, 1))
            });
        }
    }

    fn log_trigger_block(
        &self,
        symbol: &str,
        reason: &str,
        position: &SharedPosition,
        price: f64,
        f: &CloseFigures,
    ) {
        if !self.log_enabled(Channel::Order, Level::Info) {
            return;
        }
        let p = position.lock().clone();
        let is_stop = reason == "stop_loss";
        let lines = [
            RULE.to_owned(),
            format!(
                "{} TRIGGERED: {symbol}",
                if is_stop { "STOP LOSS" } else { "TAKE PROFIT" }
            ),
            THIN_RULE.to_owned(),
            format!("  Symbol: {symbol}"),
            format!("  Position Side: {}", p.side.to_uppercase()),
            format!("  Entry Price: {}", format_price(p.entry_price)),
            format!("  Exit Price: {}", format_price(price)),
            format!("  Amount: {} contracts", py_repr_float(p.amount)),
            format!("  Leverage: {}x", leverage_text(p.leverage)),
        ];
        for line in lines {
            self.log(Channel::Order, Level::Info, || line);
        }
        let (target_line, trigger) = if is_stop {
            (
                format!("  Stop Loss Price: {}", format_price(p.stop_loss)),
                if p.is_long() {
                    "  Trigger: Price fell below stop loss"
                } else {
                    "  Trigger: Price rose above stop loss"
                },
            )
        } else {
            (
                format!(
                    "  Take Profit Price: {}",
                    p.take_profit
                        .map_or_else(|| "None".to_owned(), format_price)
                ),
                if p.is_long() {
                    "  Trigger: Price rose above take profit"
                } else {
                    "  Trigger: Price fell below take profit"
                },
            )
        };
        self.log(Channel::Order, Level::Info, || target_line);
        self.log(Channel::Order, Level::Info, || trigger.to_owned());
        let lines = [
            format!(
                "  P/L (before fees): {} ({})",
                py_percent(f.r, 2, true),
                format_pnl_usd(f.pnl_usd)
            ),
            format!("  Trading fees: -0.12% ({})", format_pnl_usd(-f.fees_usd)),
            format!(
                "  P/L (after fees): {} ({})",
                py_percent(f.rf, 2, true),
                format_pnl_usd(f.net)
            ),
            format!("  Duration: {} minutes", py_fixed(f.duration_mins, 1)),
            format!("  Timestamp: {}", self.now().format_seconds()),
            RULE.to_owned(),
            String::new(),
        ];
        for line in lines {
            self.log(Channel::Order, Level::Info, || line);
        }
    }
}

/// The figures of a close, computed as the original does (at the ticker price).
pub(crate) struct CloseFigures {
    pub(crate) r: f64,
    pub(crate) rf: f64,
    pub(crate) pnl_usd: f64,
    pub(crate) fees_usd: f64,
    pub(crate) net: f64,
    pub(crate) duration_mins: f64,
    pub(crate) mfe: f64,
}

impl CloseFigures {
    /// The figures at `price`; the P/L through `methods` (a subclass's overrides, as the
    /// original called `get_pnl`/`get_leveraged_pnl` on the bot's object).
    pub(crate) fn at(
        position: &SharedPosition,
        methods: &Methods<'_>,
        price: f64,
        now: crate::clock::Timestamp,
    ) -> CoreResult<Self> {
        let (u, r, rf) = match methods {
            Methods::Builtin(p) => {
                let p = p.lock();
                (
                    p.pnl(price, false),
                    p.leveraged_pnl(price, false),
                    p.leveraged_pnl(price, true),
                )
            }
            custom => (
                custom.pnl(price, false)?,
                custom.leveraged_pnl(price, false)?,
                custom.leveraged_pnl(price, true)?,
            ),
        };
        let p = position.lock();
        // Contract multiplier included (§6.23); the leverage factor is the original's (so the
        // figures are the leverage times the quote-currency P/L; see differences.md 6.23).
        let value = p.amount * p.entry_price * p.contract_size;
        let pnl_usd = u * value * p.leverage;
        let fees_usd = value * crate::position::ROUND_TRIP_FEE * p.leverage;
        Ok(CloseFigures {
            r,
            rf,
            pnl_usd,
            fees_usd,
            net: pnl_usd - fees_usd,
            duration_mins: now.minutes_since(p.entry_time),
            mfe: p.max_favorable_excursion,
        })
    }
}

/// The side a one-way `key`'s list shows when that is the other side than `position`'s only (a
/// reversal by hand, believed only as a removal is: `reconcile`'s flip); `None` otherwise. An
/// entry whose side was assumed is no evidence against the tracked side.
fn listed_reversed(key: &Key, position: &SharedPosition, seen: &Seen<'_>) -> Option<Side> {
    let Seen::Listed(l) = seen else {
        return None;
    };
    let reversed = (l.side == Side::Long) != position.lock().is_long();
    (key.leg() == Leg::Net && !l.side_assumed && reversed).then_some(l.side)
}
