//! Orders in flight across a restart.
//!
//! With a journal, every order the manager sends is written *before* it goes out
//! ([`EventJournal::order_sent`]): what it was meant to do (an open's side, size, leverage and
//! stop distance; a close's or scale order's kind, the size before it, its reason and price)
//! and its client order id. The row goes once the order's outcome is known and the book has
//! taken it in ([`EventJournal::orders_settled`], at the end of the call that sent it, and at
//! every checkpoint for outcomes a later list resolved).
//!
//! A manager restarted over the journal while such a row is left — the process was killed
//! (or stopped) with the order out and its answer not in, or its outcome was still unknown —
//! takes the order back as an order with an unknown outcome ([`Manager::restore_orders`]):
//! an open keeps its key reserved (no second open is sent for it; a list that shows the
//! position tracks it with the open's stop and target, one that does not show it for
//! `outcome_confirmations` lists over `outcome_grace_seconds` releases it); a close or scale
//! order of a restored position holds that position (nothing more is sent for it) until a list
//! tells what the order did. Without the row, a restarted bot whose list lags the fill would
//! open the same position a second time, or close it twice.
//!
//! [`EventJournal::order_sent`]: crate::journal_hook::EventJournal::order_sent
//! [`EventJournal::orders_settled`]: crate::journal_hook::EventJournal::orders_settled

use log::Level;
use serde::{Deserialize, Serialize};

use super::messages::Channel;
use super::Manager;
use crate::book::{OpenIntent, PendingOrder, SharedPosition, Unknown};
use crate::clock::Timestamp;
use crate::events::{EventKind, Evidence};
use crate::exchange::OrderId;
use crate::format::py_repr_float;
use crate::key::Key;
use crate::reconcile::Op;

/// An order the manager sent, as the journal keeps it until its outcome is known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentOrder {
    /// The order's identity in the journal: its client order id when it carries one, else an
    /// id of the same form made for the journal only.
    pub reference: String,
    /// When the manager sent it (its clock).
    pub sent_at: Timestamp,
    /// What it was meant to do.
    pub intent: SentIntent,
}

/// What a sent order was meant to do (enough to finish it once its outcome is known).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SentIntent {
    /// An `open_position` order (market, limit, or a limit's market top-up): what the open
    /// asked for, as the book keeps it for an open whose outcome is unknown.
    Open {
        /// What the open asked for.
        #[serde(flatten)]
        intent: OpenIntent,
        /// The exchange's id of the open's limit order when it may still rest on the exchange's
        /// book and carries no client order id (the bot's own client, whose cancel failed): a
        /// restart cancels and reads it by this id before the key is free again
        /// ([`crate::book::Book::open_unknown_limit`]). Absent in rows of older versions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resting_order_id: Option<String>,
    },
    /// A close, scale-in, scale-out or partial exit of a tracked position.
    Change {
        /// The order (`close`, `scale_in` or `scale_out`).
        #[serde(with = "op_name")]
        op: Op,
        /// The position's size before it.
        before: f64,
        /// The client order id the order carried, if any.
        client_order_id: Option<String>,
        /// The reason it was sent with.
        reason: String,
        /// The price the manager saw when it sent it.
        price: Option<f64>,
        /// The profit target it claimed (bit of `partial_exits_taken`), 0 for none.
        target_bit: i64,
    },
}

impl SentIntent {
    /// An open's intent.
    pub fn open(intent: &OpenIntent) -> Self {
        SentIntent::Open {
            intent: intent.clone(),
            resting_order_id: None,
        }
    }

    /// An open's intent whose limit order `order_id` (the exchange's id) may still rest.
    pub fn resting_open(intent: &OpenIntent, order_id: &str) -> Self {
        SentIntent::Open {
            intent: intent.clone(),
            resting_order_id: Some(order_id.to_owned()),
        }
    }

    /// A close's or scale order's intent (what the book would keep if its outcome were unknown).
    pub fn change(unknown: &Unknown) -> Self {
        SentIntent::Change {
            op: unknown.op,
            before: unknown.before,
            client_order_id: unknown.client_order_id.clone(),
            reason: unknown.reason.clone(),
            price: unknown.price,
            target_bit: unknown.target_bit,
        }
    }

    /// Whether the order adds exposure (an open, a scale-in): such an order is not sent when
    /// its row cannot be written first. A close or scale-out only reduces: it is sent anyway
    /// (a stop never waits for a database), unless another manager claimed the account.
    pub fn adds_exposure(&self) -> bool {
        match self {
            SentIntent::Open { .. } => true,
            SentIntent::Change { op, .. } => *op == Op::ScaleIn,
        }
    }

    /// `open`, `close`, `scale_in` or `scale_out`.
    pub fn kind(&self) -> &'static str {
        match self {
            SentIntent::Open { .. } => "open",
            SentIntent::Change { op, .. } => op.name(),
        }
    }

    /// The client order id the order carried, if any.
    pub fn client_order_id(&self) -> Option<&str> {
        match self {
            SentIntent::Open {
                intent: OpenIntent {
                    client_order_id, ..
                },
                ..
            }
            | SentIntent::Change {
                client_order_id, ..
            } => client_order_id.as_deref(),
        }
    }

    /// The numbers a restored order will be trusted with: finite, sizes and prices above zero,
    /// a leverage of at least 1 and a stop distance in (0, 1). `Err` names the first that is
    /// not (a damaged or hand-edited row).
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number above 0, got {v}"))
            }
        };
        match self {
            SentIntent::Open {
                intent:
                    OpenIntent {
                        amount,
                        leverage,
                        stop_loss_percentage,
                        price,
                        ..
                    },
                ..
            } => {
                positive("amount", *amount)?;
                positive("price", *price)?;
                if !(leverage.is_finite() && *leverage >= 1.0) {
                    return Err(format!(
                        "leverage must be a finite number of at least 1, got {leverage}"
                    ));
                }
                if !(stop_loss_percentage.is_finite()
                    && *stop_loss_percentage > 0.0
                    && *stop_loss_percentage < 1.0)
                {
                    return Err(format!(
                        "stop_loss_percentage must be between 0 and 1, got {stop_loss_percentage}"
                    ));
                }
                Ok(())
            }
            SentIntent::Change { before, price, .. } => {
                positive("before", *before)?;
                match price {
                    Some(p) => positive("price", *p),
                    None => Ok(()),
                }
            }
        }
    }
}

/// [`Op`] by its name in events and logs (`close`, `scale_in`, `scale_out`).
mod op_name {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::reconcile::Op;

    pub(super) fn serialize<S: Serializer>(op: &Op, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(op.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
        let name = String::deserialize(d)?;
        [Op::Close, Op::ScaleIn, Op::ScaleOut]
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| D::Error::custom(format!("unknown order kind {name:?}")))
    }
}

/// What [`Manager::restore_orders`] did with the orders a journal kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredOrders {
    /// Opens whose key is reserved again with an unknown outcome.
    pub opens: usize,
    /// Closes and scale orders whose restored position now waits for their outcome.
    pub changes: usize,
    /// Keys whose row is stale (the book already holds the order's result: a tracked position
    /// for an open, no tracked position for a change): the journal deletes them.
    pub stale: Vec<Key>,
}

/// Where orders taken back after a restart were kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrdersFrom {
    /// The journal's `pmrs_orders` rows (the time is when the order was sent).
    Journal,
    /// A state file's `orders` (the time is when the file was saved).
    StateFile,
}

impl OrdersFrom {
    /// The warning's source, and what it says of the order's time `at`.
    fn told(self, at: Timestamp) -> (&'static str, String) {
        let at = at.format_seconds();
        match self {
            OrdersFrom::Journal => (
                "Journal",
                format!("sent at {at} had no known outcome when the last manager stopped"),
            ),
            OrdersFrom::StateFile => (
                "load_state",
                format!("had no known outcome when the state was saved at {at}"),
            ),
        }
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Tells the journal, if any, that an order for `key` is about to go out (called with no
    /// lock held, right before the client call). Without a journal this costs nothing.
    ///
    /// `Ok(())` when the order may go out: its row is written, or it only reduces exposure
    /// (it goes out anyway, with an `ERROR` that it is not journaled: a stop never waits for a
    /// database). `Err(why)` when it adds exposure (an open, a scale-in) and its row could not
    /// be written: the caller must not send it (an `ERROR` says so, naming the journal's
    /// failure), so that a process killed after sending never leaves an order the restart
    /// knows nothing of (DESIGN rule 7). `Err(why)` for every order once a newer manager
    /// claimed the account (this one is fenced): that manager trades the account now, and a
    /// reduction both sent would be taken twice (a bot started twice took the same partial
    /// exit twice; found by an audit on 2026-12-07).
    pub(crate) fn journal_order_sent(
        &self,
        key: &Key,
        intent: impl FnOnce() -> SentIntent,
    ) -> Result<(), String> {
        let Some((order, written, fenced)) = self.write_order_row(key, intent, true) else {
            return Ok(());
        };
        let kind = order.intent.kind();
        match written {
            Ok(()) => Ok(()),
            Err(why) if fenced => {
                self.log(Channel::Main, Level::Error, || {
                    format!(
                        "Journal: the {kind} order for {key} was not sent: another manager claimed this account and trades it now ({why})"
                    )
                });
                Err(why)
            }
            Err(why) if order.intent.adds_exposure() => {
                self.log(Channel::Main, Level::Error, || {
                    format!(
                        "Journal failed: the {kind} order for {key} could not be written before it goes out ({why}); nothing was sent"
                    )
                });
                Err(why)
            }
            Err(why) => {
                self.log(Channel::Main, Level::Error, || {
                    format!(
                        "Journal failed: the {kind} order for {key} is sent anyway but is not journaled ({why}); a restart before the journal recovers does not know of it"
                    )
                });
                Ok(())
            }
        }
    }

    /// [`Manager::journal_order_sent`] for an order that is already out (the row of an open's
    /// limit order, rewritten with the exchange's id): a failure can only be logged.
    pub(crate) fn journal_order_out(&self, key: &Key, intent: impl FnOnce() -> SentIntent) {
        let Some((order, Err(why), _)) = self.write_order_row(key, intent, false) else {
            return;
        };
        let kind = order.intent.kind();
        self.log(Channel::Main, Level::Error, || {
            format!(
                "Journal failed: the row of the {kind} order for {key}, already out, could not be updated ({why})"
            )
        });
    }

    /// Writes the row of the order `intent()` describes for `key` (its reference: the client
    /// order id, or a new one) and answers the order with the write's result; `None` without a
    /// journal, and whether the journal is fenced. With `before_sending`, a failed row of an
    /// order that is not sent (one that adds exposure, or any once fenced) is taken back out of
    /// the journal's queue ([`crate::journal_hook::EventJournal::order_not_sent`]). The journal
    /// is let go of before the caller logs.
    fn write_order_row(
        &self,
        key: &Key,
        intent: impl FnOnce() -> SentIntent,
        before_sending: bool,
    ) -> Option<(SentOrder, Result<(), String>, bool)> {
        let journal = self.journal.read().clone()?;
        let intent = intent();
        let reference = intent
            .client_order_id()
            .map(str::to_owned)
            .unwrap_or_else(|| self.ids.next());
        let order = SentOrder {
            reference,
            sent_at: self.now(),
            intent,
        };
        let written = journal.order_sent(key, &order);
        let fenced = written.is_err() && journal.is_fenced();
        if before_sending && written.is_err() && (order.intent.adds_exposure() || fenced) {
            journal.order_not_sent(key, &order);
        }
        Some((order, written, fenced))
    }

    /// The orders whose outcome the book had not taken in (`pending`, from
    /// [`crate::book::Book::contents`]) as a journal would keep them, each dated `at` (a state
    /// file's save time): what a restart must take back so that no second order goes out for
    /// them.
    pub(crate) fn pending_sent_orders(
        &self,
        pending: Vec<(Key, PendingOrder)>,
        at: Timestamp,
    ) -> Vec<(Key, SentOrder)> {
        pending
            .into_iter()
            .map(|(key, pending)| {
                let intent = match pending {
                    PendingOrder::Open {
                        intent,
                        resting: Some(id),
                    } => SentIntent::resting_open(&intent, &id),
                    PendingOrder::Open { intent, .. } => SentIntent::open(&intent),
                    PendingOrder::Change(unknown) => SentIntent::change(&unknown),
                };
                let reference = intent
                    .client_order_id()
                    .map(str::to_owned)
                    .unwrap_or_else(|| self.ids.next());
                let order = SentOrder {
                    reference,
                    sent_at: at,
                    intent,
                };
                (key, order)
            })
            .collect()
    }

    /// After a scale order's call for `key` (whose size was `before`): ends the order in the
    /// book, marks the position as just changed by the manager ([`crate::book::Book::touch`])
    /// and tells the journal, if any, that the call is over — with the position's row when the
    /// order changed its size, so a restart keeps what no list has shown of it yet (called with
    /// no lock held).
    pub(crate) fn end_scale_order(&self, key: &Key, position: &SharedPosition, before: f64) {
        self.book().end_order(key.as_str(), position);
        let filled = self.book().touch(key.as_str(), position, before);
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            if filled {
                journal.filled(key, position);
            } else {
                journal.orders_settled(std::slice::from_ref(key));
            }
        }
    }

    /// Tells the journal, if any, that the calls that sent orders for `keys` are over (or a list
    /// resolved their unknown outcomes): the rows of those whose outcome the book took in go
    /// (called with no lock held).
    pub(crate) fn journal_orders_settled(&self, keys: &[Key]) {
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            journal.orders_settled(keys);
        }
    }

    /// Takes back the orders a journal kept for an empty-handed restart (see the module docs):
    /// each open reserves its key with an unknown outcome (an `outcome_unknown` event, reason
    /// `open`), each change of a tracked position holds that position until a list resolves it
    /// (an `outcome_unknown` event with the order's kind as reason), each logged as a warning.
    /// Rows whose result the book already holds are returned as stale.
    pub fn restore_orders(&self, orders: Vec<(Key, SentOrder)>) -> RestoredOrders {
        self.restore_orders_from(orders, OrdersFrom::Journal)
    }

    /// [`Manager::restore_orders`] for orders kept by `from` (their warnings say where from).
    pub fn restore_orders_from(
        &self,
        orders: Vec<(Key, SentOrder)>,
        from: OrdersFrom,
    ) -> RestoredOrders {
        let mut out = RestoredOrders::default();
        for (key, order) in orders {
            let symbol = key.as_str();
            let kind = order.intent.kind();
            let id = order
                .intent
                .client_order_id()
                .map(|id| format!(", client order id {id}"))
                .unwrap_or_default();
            match order.intent {
                SentIntent::Open {
                    intent,
                    resting_order_id,
                } => {
                    // The open went out after any tombstone of its key was found gone (the
                    // crashed manager's open superseded it; its journal row outlived it).
                    drop(self.book().forget_tombstone(&key));
                    if self.book().begin_open(&key, false).is_err() {
                        out.stale.push(key);
                        continue;
                    }
                    let (side, amount) = (intent.side.as_str(), py_repr_float(intent.amount));
                    let (source, when) = from.told(order.sent_at);
                    match resting_order_id {
                        Some(order_id) => {
                            self.book().open_unknown_limit(
                                &key,
                                intent.clone(),
                                &OrderId::from_text(order_id.as_str()),
                            );
                            self.log(Channel::Main, Level::Warn, || {
                                format!(
                                    "{source}: the limit order {order_id} opening {symbol} ({side} {amount} contracts) {when}, and may still rest on the exchange; no second order is sent for {symbol} until it is cancelled and read"
                                )
                            });
                        }
                        None => {
                            self.book().open_unknown(&key, intent.clone());
                            self.log(Channel::Main, Level::Warn, || {
                                format!(
                                    "{source}: the open order for {symbol} ({side} {amount} contracts{id}) {when}; no second order is sent for {symbol} until the exchange tells"
                                )
                            });
                        }
                    }
                    out.opens += 1;
                    self.record_open_unknown(&key, &intent, intent.amount, intent.price);
                }
                SentIntent::Change {
                    op,
                    before,
                    client_order_id,
                    reason,
                    price,
                    target_bit,
                } => {
                    let Some((position, _handle)) = self.book().get(symbol) else {
                        out.stale.push(key);
                        continue;
                    };
                    let unknown = Unknown {
                        op,
                        at: 0,
                        before,
                        client_order_id,
                        reason,
                        price,
                        target_bit,
                        unseen: Default::default(),
                        filled: false,
                    };
                    let order_id = unknown.client_order_id.clone();
                    self.book().set_unknown(symbol, &position, unknown);
                    out.changes += 1;
                    self.log(Channel::Main, Level::Warn, || {
                        let (source, when) = from.told(order.sent_at);
                        format!(
                            "{source}: the {kind} order for {symbol}{id} {when}; nothing more is sent for {symbol} until the exchange tells"
                        )
                    });
                    let amount = position.lock().amount;
                    self.record_full(
                        symbol,
                        &position,
                        EventKind::OutcomeUnknown,
                        kind,
                        None,
                        Some(Evidence {
                            previous_amount: Some(amount),
                            ..Evidence::default()
                        }),
                        order_id.as_deref(),
                    );
                }
            }
        }
        out
    }
}

/// Tells the journal, when dropped, that the call that sent orders for a key is over
/// ([`Manager::journal_orders_settled`]): held by `open_position` from the moment its key is
/// known, so every way out of it (a resolved earlier open, a failure, an interruption) settles.
pub(crate) struct SettleOnDrop<'m, H: Clone + Send + Sync> {
    manager: &'m Manager<H>,
    key: Key,
}

impl<'m, H: Clone + Send + Sync> SettleOnDrop<'m, H> {
    /// Settles `key` when dropped.
    pub(crate) fn new(manager: &'m Manager<H>, key: &Key) -> Self {
        SettleOnDrop {
            manager,
            key: key.clone(),
        }
    }
}

impl<H: Clone + Send + Sync> Drop for SettleOnDrop<'_, H> {
    fn drop(&mut self) {
        self.manager
            .journal_orders_settled(std::slice::from_ref(&self.key));
    }
}
