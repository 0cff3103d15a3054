//! Orders whose outcome is unknown, resolved against the exchange before anything else is sent
//! (rule 7).
//!
//! An order's outcome is unknown when the client raised or timed out after the request may have
//! left, answered something unreadable, or answered falsy (the bot's own client answers `None`
//! for any failure, a timeout after the order went out included). Then, before the operation
//! returns:
//! 1. a client that takes client order ids is asked for the order by its id
//!    (`get_order_by_client_id`): a final status says what it did, "no such order" that it was
//!    never placed;
//! 2. otherwise the position is marked "outcome unknown" in the book and the exchange's list is
//!    read once: the planner compares the listed size with the size before the order and
//!    resolves it (executed, closed) — but a list showing the size from before the order
//!    proves "not executed" only when `outcome_confirmations` lists in a row (over at least
//!    `outcome_grace_seconds`) show it, because a venue's list can lag its fills.
//!
//! If neither tells (the list cannot be read, or does not show the order's effect yet), the
//! position stays "outcome unknown": an `outcome_unknown` event is recorded, no order is sent
//! for it, and later lists — the next update cycle's, a sync's, a retry's own check — resolve
//! it.

use log::Level;

use super::{caught, Manager};
use crate::book::{Activity, Applied, OpenIntent, SharedPosition, Unknown};
use crate::error::CoreResult;
use crate::events::{EventKind, Evidence};
use crate::exchange::{OrderId, OrderLookup, OrderReport, StatusWait};
use crate::key::Key;
use crate::manager::messages::Channel;
use crate::reconcile::{Op, Resolution};

/// What looking an order up by its client id said.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lookup {
    /// The venue reports the order in a final state: use it as the lost answer.
    Final(OrderReport),
    /// The venue never had the order.
    NotPlaced,
    /// The venue has the order, not final yet (a limit order resting on the book, a market
    /// order not yet processed), with the id it can be cancelled by.
    Pending(OrderReport),
    /// The venue could not be reached for it (a network error, a timeout, a 5xx, a rate
    /// limit): it may answer the next time.
    Unreachable,
    /// The lookup could not tell (no id, unreadable, not final without an id, a client that
    /// cannot tell).
    Unknown,
}

/// Exception types (ccxt's network family, Python's connection and timeout errors) that say
/// the venue was not reached: asking again later may tell.
const UNREACHABLE: &[&str] = &[
    "NetworkError",
    "DDoSProtection",
    "RateLimitExceeded",
    "ExchangeNotAvailable",
    "OnMaintenance",
    "RequestTimeout",
    "InvalidNonce",
    "TimeoutError",
    "ConnectionError",
    "ConnectionResetError",
    "ConnectionRefusedError",
    "ConnectionAbortedError",
    "BrokenPipeError",
];

impl Lookup {
    /// The venue reports the order final with something filled: a reducing order did reduce.
    pub(crate) fn filled(&self) -> bool {
        self.filled_contracts().is_some()
    }

    /// What a final order filled, when it filled anything.
    pub(crate) fn filled_contracts(&self) -> Option<f64> {
        match self {
            Lookup::Final(report) => report.filled().filter(|f| *f > 0.0),
            _ => None,
        }
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Asks the client for the order `client_order_id` (when there is one). `requested`, when
    /// given, is the order's size: a report of more filled than that (no order fills more than
    /// it asked for) is as unusable as an unreadable one, so the lookup cannot tell.
    pub(crate) fn lookup_order(
        &self,
        client_order_id: Option<&str>,
        symbol: &str,
        requested: Option<f64>,
    ) -> CoreResult<Lookup> {
        let Some(id) = client_order_id else {
            return Ok(Lookup::Unknown);
        };
        Ok(
            match caught(self.exchange().get_order_by_client_id(id, symbol))? {
                Ok(OrderLookup::NotFound) => Lookup::NotPlaced,
                Ok(OrderLookup::Found(report))
                    if requested.is_some_and(|r| report.overfilled(r)) =>
                {
                    self.log(Channel::Main, Level::Warn, || {
                        format!(
                            "Order {id} for {symbol}: the exchange reports {} filled of {} ordered, which no order does; checking the position list",
                            report.filled.display(),
                            crate::format::py_repr_float(requested.unwrap_or_default())
                        )
                    });
                    Lookup::Unknown
                }
                Ok(OrderLookup::Found(report))
                    if report.is_final() && !report.filled_unreadable() =>
                {
                    Lookup::Final(report)
                }
                Ok(other) => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Order {id} for {symbol} is not final yet ({other:?}); checking the position list")
                    });
                    match other {
                        OrderLookup::Found(report)
                            if report.id.is_some() && !report.filled_unreadable() =>
                        {
                            Lookup::Pending(report)
                        }
                        _ => Lookup::Unknown,
                    }
                }
                Err(e) => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Could not look order {id} for {symbol} up: {e}")
                    });
                    if UNREACHABLE.contains(&e.kind_name()) {
                        Lookup::Unreachable
                    } else {
                        Lookup::Unknown
                    }
                }
            },
        )
    }

    /// Marks `key`'s order as having an unknown outcome and reads the exchange's list to resolve
    /// it. Returns how it turned out (the book and the events already reflect it), or `None`
    /// when it is still unknown (an `outcome_unknown` event is recorded; nothing more is sent
    /// for the position until a later list resolves it).
    pub(crate) fn settle_by_list(
        &self,
        key: &Key,
        position: &SharedPosition,
        unknown: Unknown,
    ) -> CoreResult<Option<Resolution>> {
        let op = unknown.op;
        let order_id = unknown.client_order_id.clone();
        self.book().set_unknown(key.as_str(), position, unknown);
        let (_, report) = self.verify_read(key)?;
        if let Some(resolution) = report
            .resolved
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| *r)
        {
            return Ok(Some(resolution));
        }
        if let Some(Activity::Unknown(_)) = self.book().activity(key.as_str()) {
            if !report.unseen.contains(key) {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The outcome of the {} order for {key} is unknown and the exchange cannot be read; sending nothing more for it until the exchange tells",
                        op.name()
                    )
                });
            }
            let amount = position.lock().amount;
            self.record_full(
                key.as_str(),
                position,
                EventKind::OutcomeUnknown,
                op.name(),
                None,
                Some(Evidence {
                    previous_amount: Some(amount),
                    ..Evidence::default()
                }),
                order_id.as_deref(),
            );
            return Ok(None);
        }
        // The key changed meanwhile (removed or replaced from Python): nothing is pending.
        Ok(Some(Resolution::NotExecuted))
    }

    /// Before an order for a position whose last order's outcome is unknown: read the list to
    /// resolve it. True when the position is tracked, idle and may be traded.
    pub(crate) fn resolve_before_trading(
        &self,
        key: &Key,
        position: &SharedPosition,
    ) -> CoreResult<bool> {
        if !matches!(
            self.book().activity(key.as_str()),
            Some(Activity::Unknown(_))
        ) {
            return Ok(true);
        }
        // An order the venue already said filled is not asked for again: only a list that
        // shows its effect settles it.
        let id = match self.book().activity(key.as_str()) {
            Some(Activity::Unknown(u)) if !u.filled => u.client_order_id,
            _ => None,
        };
        if let Lookup::NotPlaced = self.lookup_order(id.as_deref(), key.symbol(), None)? {
            self.book().clear_unknown(key.as_str(), position);
        } else {
            self.verify_read(key)?;
        }
        let idle = self.book().holds(key.as_str(), position)
            && matches!(self.book().activity(key.as_str()), Some(Activity::Idle));
        if !idle {
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Cannot verify {key} on exchange after an order with an unknown outcome; not sending an order"
                )
            });
        }
        Ok(idle)
    }

    /// Enough lists did not show the position an open with an unknown outcome asked for, and
    /// its order carries a client id: before the key is released, the venue is asked for the
    /// order (rule 7). One that still rests on the book — a limit open whose process was killed
    /// or whose wait was interrupted — is cancelled first, so it cannot fill once the key is
    /// free and the bot opens it again. Then:
    /// - nothing filled (or the venue never had it, or cannot tell): the key is released;
    /// - something filled: what filled is tracked, with the open's stop and target (the lists
    ///   lag it; the outcome rules guard its removal);
    /// - it rests and could not be cancelled (or its end cannot be read after a cancel), or the
    ///   venue could not be reached for it: the key stays reserved, nothing is sent for it,
    ///   and the next list asks again.
    ///
    /// A limit order without a client id (the bot's own client), whose cancel failed or whose
    /// end could not be read, is known by the exchange's id (`resting`): it is cancelled
    /// first, whatever its state (an order that filled or ended only refuses the cancel), then
    /// its status is read (`wait_for_order_fill`), with the same outcomes.
    pub(crate) fn verify_open(
        &self,
        key: &Key,
        intent: &OpenIntent,
        resting: Option<&OrderId>,
    ) -> CoreResult<()> {
        let symbol = key.symbol();
        let (id, lookup, rested) = match (intent.client_order_id.as_deref(), resting) {
            (None, Some(order_id)) => {
                let (lookup, rested) = self.cancel_and_read(key, order_id)?;
                (order_id.text().to_owned(), lookup, rested)
            }
            (id, _) => {
                let mut lookup = self.lookup_order(id, symbol, None)?;
                let id = id.unwrap_or_default();
                let mut rested = false;
                if let Lookup::Pending(report) = &lookup {
                    rested = true;
                    if let Some(order_id) = report.id.clone() {
                        let cancelled = self.cancel_open_order(key, id, &order_id)?;
                        self.log(Channel::Main, Level::Warn, || {
                            format!(
                                "Open order {id} for {key} still rests on the exchange and no position is listed; {}",
                                if cancelled { "cancelled it" } else { "the cancel did not go through" }
                            )
                        });
                        lookup = self.lookup_order(Some(id), symbol, None)?;
                    }
                }
                (id.to_owned(), lookup, rested)
            }
        };
        if self.book().open_intent(key.as_str()).as_ref() != Some(intent) {
            return Ok(()); // resolved elsewhere meanwhile
        }
        let filled = match &lookup {
            Lookup::Final(report) => match report.filled() {
                // More filled than ordered, which no order does: it did fill; the size is the
                // open's until a list shows the venue's.
                Some(filled) if report.overfilled(intent.amount) => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!(
                            "Open order {id} for {key}: the exchange reports {} filled of {} ordered, which no order does; tracking what was ordered until a list shows the position",
                            crate::format::py_repr_float(filled),
                            crate::format::py_repr_float(intent.amount)
                        )
                    });
                    intent.amount
                }
                Some(filled) => filled,
                None if report.is_closed() => intent.amount,
                None => 0.0,
            },
            _ => 0.0,
        };
        match lookup {
            Lookup::Final(report) if filled > 0.0 => {
                let entry = report.average().unwrap_or(intent.price);
                self.track_open_outcome(key, intent, filled, entry, None, true)?;
            }
            Lookup::Unreachable => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Open order {id} for {key} could not be looked up; no second order is sent for {key} until it can"
                    )
                });
            }
            Lookup::Pending(_) | Lookup::Unknown if rested => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Open order {id} for {key} may still rest on the exchange; no second order is sent for {key} until it is gone"
                    )
                });
            }
            other => {
                self.book().drop_unknown_open(key.as_str());
                let why = match other {
                    Lookup::NotPlaced => "the exchange has no such order",
                    Lookup::Final(_) => "its order ended with nothing filled",
                    _ => "the exchange lists no position",
                };
                self.log(Channel::Main, Level::Info, || {
                    format!("Open of {key} with an unknown outcome did not go through: {why}")
                });
            }
        }
        Ok(())
    }

    /// `cancel_order` for an open's order `id` that may rest; false when it did not go through.
    fn cancel_open_order(&self, key: &Key, id: &str, order_id: &OrderId) -> CoreResult<bool> {
        Ok(
            match caught(self.exchange().cancel_order(order_id, key.symbol()))? {
                Ok(cancelled) => cancelled,
                Err(e) => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Cancelling open order {id} for {key} failed: {e}")
                    });
                    false
                }
            },
        )
    }

    /// [`Manager::verify_open`] for a limit order known only by the exchange's id: cancels
    /// it, then reads its status. Returns what the status says and whether the order may
    /// still rest (its status says open, or cannot be read and the cancel did not go through).
    fn cancel_and_read(&self, key: &Key, order_id: &OrderId) -> CoreResult<(Lookup, bool)> {
        let id = order_id.text();
        let cancelled = self.cancel_open_order(key, id, order_id)?;
        // A check, not the fill's wait: while the cancel keeps failing this runs each time the
        // lists ask, and the 10 s the open waited would hold the cycle each time.
        let status = self.order_status(key.symbol(), order_id, StatusWait::Check)?;
        Ok(match status {
            Some(report) if report.is_final() && !report.filled_unreadable() => {
                if cancelled {
                    self.log(Channel::Main, Level::Warn, || {
                        format!(
                            "Open order {id} for {key} still rested on the exchange and no position is listed; cancelled it"
                        )
                    });
                }
                (Lookup::Final(report), false)
            }
            Some(report) if !report.filled_unreadable() => (Lookup::Pending(report), true),
            _ => (Lookup::Unknown, !cancelled),
        })
    }

    /// Enough lists showed a position as it was before its order with an unknown outcome, and
    /// the order carries a client id: before that silence is taken as "not executed", the
    /// venue is asked for the order (rule 7). A list can lag a fill by longer than the outcome
    /// rules wait — a restarted process's lists, say — and taking a close that went through as
    /// not executed sends a second one. Also (`absent`) when only empty answers omitted the
    /// position after a close or scale-out: they are what failed reads give too, and a close
    /// that never went out does not end a position (taken for its end, the position listed
    /// again later, added to meanwhile, would be imported as a new one: an end too many).
    /// - Filled: noted; the position stays held (nothing is sent for it) until a list shows
    ///   the order's effect (`absent`: the next list that omits it settles it as the order's
    ///   own end), or until the outcome rules have counted lists showing the size from before
    ///   once more (then the listed size is taken: the position changed again after the fill).
    /// - Not final yet, or the venue could not be reached: asked again at the next list.
    /// - Never placed, ended with nothing filled, or the venue cannot tell: not executed, as
    ///   the lists say (returned, for the caller to report like a list's resolution). For an
    ///   absence, never placed or nothing filled leaves it to the removal rules, as for a
    ///   position the manager sent nothing for; a venue that cannot tell leaves it settled as
    ///   the lists say, closed by the order and kept restorable
    ///   ([`crate::book::Book::resolve_closed_on_empty`]).
    pub(crate) fn verify_change(
        &self,
        key: &Key,
        op: Op,
        order_id: &str,
        absent: bool,
    ) -> CoreResult<Option<Applied<H>>> {
        let what = op.name();
        match self.lookup_order(Some(order_id), key.symbol(), None)? {
            lookup if lookup.filled() => {
                self.book().note_unknown_filled(key, order_id);
                self.log(Channel::Main, Level::Warn, || {
                    if absent {
                        format!(
                            "The {what} order {order_id} for {key} filled, the exchange says; the next list that omits {key} settles it as closed by that order"
                        )
                    } else {
                        format!(
                            "The {what} order {order_id} for {key} filled, the exchange says, though its lists still show the position as before; nothing more is sent for {key} until a list shows it"
                        )
                    }
                });
                Ok(None)
            }
            Lookup::Pending(_) | Lookup::Unreachable => Ok(None),
            Lookup::Unknown if absent => {
                // The venue cannot tell (an answer ccxt does not map, say): settled by the
                // lists as before the lookup, closed by the order and kept restorable.
                let resolved = self
                    .book()
                    .resolve_closed_on_empty(key, order_id, self.timer());
                Ok(resolved.map(|(change, evicted)| {
                    drop(evicted);
                    change
                }))
            }
            _ => {
                if absent {
                    self.log(Channel::Main, Level::Warn, || {
                        format!(
                            "The {what} order {order_id} for {key} did not go through, the exchange says; the empty answers that omit {key} are judged as for any position (they are also what failed reads give)"
                        )
                    });
                }
                Ok(self.book().resolve_not_executed(key, order_id))
            }
        }
    }
}
