//! `close_position(symbol, reason)`: the original safeguard (a position the exchange no longer
//! lists is untracked without an order), its log blocks, and the fix of §6.4 (a successful
//! exchange close always returns its P/L, whatever another thread did to the book meanwhile).

use log::Level;

use super::messages::{leverage_text, Channel, RULE, THIN_RULE};
use super::Manager;
use crate::book::{fingerprint_of_state, SharedPosition};
use crate::error::CoreError;
use crate::events::EventKind;
use crate::format::{format_pnl_usd, format_price, py_fixed, py_percent, py_repr_float};
use crate::reconcile::Snapshot;

/// How a close ended.
#[derive(Clone, Debug, PartialEq)]
pub enum CloseOutcome {
    /// Not tracked: nothing to do.
    NotTracked,
    /// The exchange no longer lists it: untracked without an order.
    AlreadyClosed,
    /// The exchange could not confirm it (failed or malformed answer): kept, nothing sent.
    Unverified,
    /// No usable price: kept, nothing sent.
    NoPrice,
    /// The client reported failure: kept.
    Failed,
    /// Another close of this symbol is in flight: nothing sent (never two close orders).
    InProgress,
    /// Closed on the exchange; the leveraged P/L after fees.
    Closed(f64),
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
    /// Reserves `symbol` for one order that closes or resizes it (a close, a scale in/out);
    /// `None` while another holds it. Released when the guard drops.
    pub(crate) fn order_slot<'m>(
        &'m self,
        symbol: &'m str,
    ) -> Option<super::reservations::Held<'m>> {
        self.in_flight.hold(symbol, || false)
    }

    /// Whether `symbol`'s last close ended with an unknown outcome (cleared by
    /// [`Manager::confirm_still_open`]).
    pub fn is_uncertain(&self, symbol: &str) -> bool {
        self.uncertain.contains(symbol)
    }

    /// For a position whose last close had an unknown outcome: asks the exchange whether it is
    /// still open before anything else is sent. `Ok(true)`: listed (the doubt is cleared);
    /// `Ok(false)`: not listed (it is untracked as closed); `Err`: cannot tell.
    pub(crate) fn confirm_still_open(
        &self,
        symbol: &str,
        position: &SharedPosition,
    ) -> Result<bool, CoreError> {
        let snapshot = Snapshot::from_entries(&self.exchange().get_open_positions()?, 0);
        if snapshot.contains(symbol) {
            self.uncertain.remove(symbol);
            return Ok(true);
        }
        if !snapshot.well_formed {
            return Err(CoreError::State(
                "malformed position list: cannot tell whether it is still open".to_owned(),
            ));
        }
        self.uncertain.remove(symbol);
        self.untrack_closed_externally(symbol, position);
        Ok(false)
    }

    /// `close_position(symbol, reason)`.
    pub fn close_position(&self, symbol: &str, reason: &str) -> CloseOutcome {
        self.close_with(symbol, reason, None)
    }

    /// The close, optionally trusting a fresh position list instead of fetching it again (§6.5).
    pub(crate) fn close_with(
        &self,
        symbol: &str,
        reason: &str,
        fresh: Option<&Snapshot>,
    ) -> CloseOutcome {
        let Some((position, _handle)) = self.book().get(symbol) else {
            self.log(Channel::Main, Level::Debug, || {
                format!("Position {symbol} not in local tracking, already closed")
            });
            return CloseOutcome::NotTracked;
        };
        // One close per symbol at a time: a second one (the bot's close racing the update
        // cycle's, two cycles, two threads) would send a second close order.
        let Some(slot) = self.order_slot(symbol) else {
            self.log(Channel::Main, Level::Info, || {
                format!("Close of {symbol} already in progress, not sending another")
            });
            return CloseOutcome::InProgress;
        };
        let outcome = self.close_tracked(symbol, reason, &position, fresh);
        drop(slot);
        match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                self.log(Channel::Main, Level::Error, || {
                    format!("Error closing position: {e}")
                });
                self.log(Channel::Position, Level::Error, || {
                    format!("✗ FAILED to close position: {e}")
                });
                self.log(Channel::Position, Level::Info, || format!("{RULE}\n"));
                CloseOutcome::Failed
            }
        }
    }

    fn close_tracked(
        &self,
        symbol: &str,
        reason: &str,
        position: &SharedPosition,
        fresh: Option<&Snapshot>,
    ) -> Result<CloseOutcome, CoreError> {
        // A fresh list from this cycle that lists the symbol is enough, otherwise ask again; but
        // only for an entry the list could see: one inserted after the list was requested (the
        // bot re-added it after a close, say) needs a list of its own (rule 4).
        let fetched;
        let fresh = fresh.filter(|s| {
            s.contains(symbol)
                && self
                    .book()
                    .seq_of(symbol)
                    .is_some_and(|seq| seq <= s.requested_at_seq)
        });
        let snapshot = match fresh {
            Some(snap) => snap,
            None => {
                fetched = Snapshot::from_entries(&self.exchange().get_open_positions()?, 0);
                &fetched
            }
        };
        if !snapshot.contains(symbol) {
            if !snapshot.well_formed {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Cannot verify {symbol} on exchange (malformed position list), keeping it and not closing this time"
                    )
                });
                return Ok(CloseOutcome::Unverified);
            }
            let policy = self.policy();
            if policy.missing_confirmations > 1 || policy.missing_grace_seconds > 0.0 {
                // One list is not enough evidence under this policy (a transient empty answer):
                // keep it, send nothing; the cleanup removes it once the absence is confirmed.
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Position {symbol} not reported by the exchange; keeping it until the absence is confirmed, not closing this time"
                    )
                });
                return Ok(CloseOutcome::Unverified);
            }
            self.untrack_closed_externally(symbol, position);
            return Ok(CloseOutcome::AlreadyClosed);
        }

        let (side, entry, entry_time) = {
            let p = position.lock();
            (p.side.clone(), p.entry_price, p.entry_time)
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

        let price = match self.exchange().get_ticker(symbol)? {
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

        let figures = CloseFigures::at(position, price, self.now());
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

        let closed = match self.exchange().close_position(symbol) {
            Ok(closed) => closed,
            Err(e) => {
                // The order may have gone through: until the exchange says, nothing else may
                // trade this position blind.
                self.uncertain.insert(symbol);
                return Err(e);
            }
        };
        if !closed {
            // Only a truthy answer is definitive: a client may answer falsy after the venue took
            // the close (a timed-out request). Until the exchange says, trade nothing blind.
            self.uncertain.insert(symbol);
            self.log(Channel::Position, Level::Error, || {
                "  ✗ Failed to close position on exchange".to_owned()
            });
            return Ok(CloseOutcome::Failed);
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
        // replaced the entry meanwhile (§6.4); only this very position is removed.
        let removed = self.book().remove_if_same(symbol, position);
        self.book().note_closed(symbol);
        self.uncertain.remove(symbol);
        self.record(
            symbol,
            position,
            EventKind::Closed,
            reason,
            Some(figures.rf),
        );
        drop(removed);
        Ok(CloseOutcome::Closed(figures.rf))
    }

    /// Untracks a position the exchange no longer lists, with the original's log block.
    fn untrack_closed_externally(&self, symbol: &str, position: &SharedPosition) {
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
        let fingerprint = fingerprint_of_state(&position.lock());
        if let Some((p, handle, evicted)) =
            self.book().bury(symbol, position, fingerprint, self.now())
        {
            self.record(symbol, &p, EventKind::Removed, "closed_externally", None);
            drop((handle, evicted));
        }
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
    pub(crate) fn at(position: &SharedPosition, price: f64, now: crate::clock::Timestamp) -> Self {
        let p = position.lock();
        let u = p.pnl(price, false);
        // Contract multiplier included (§6.23): USD figures are right for lot-based venues.
        let value = p.amount * p.entry_price * p.contract_size;
        let pnl_usd = u * value * p.leverage;
        let fees_usd = value * crate::position::ROUND_TRIP_FEE * p.leverage;
        CloseFigures {
            r: p.leveraged_pnl(price, false),
            rf: p.leveraged_pnl(price, true),
            pnl_usd,
            fees_usd,
            net: pnl_usd - fees_usd,
            duration_mins: now.minutes_since(p.entry_time),
            mfe: p.max_favorable_excursion,
        }
    }
}
