//! Orders: what the manager asks the client to place, and what the client's order answers say.
//!
//! The original trusted the *requested* amount and the ticker price whatever the order reported
//! (§6.20). These types keep what the answer did say (filled amount, average price, status) so
//! the manager can record what really happened and fall back only when the answer is silent.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::Field;

/// How long a `wait_for_order_fill` call may wait, as its `timeout` and `check_interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusWait {
    /// A limit open waiting for its fill: the original's `timeout=10, check_interval=2`.
    Fill,
    /// A check of an order a cancel was sent for, made again each time the lists ask while the
    /// cancel keeps failing: `timeout=1, check_interval=1`. A client that polls answers after
    /// one read or two, so the check never holds an update cycle (and the exit checks of every
    /// other position) for the fill's 10 s; an order that ended answers at once either way.
    Check,
}

impl StatusWait {
    /// The call's `timeout` (seconds).
    pub fn timeout(self) -> u32 {
        match self {
            StatusWait::Fill => 10,
            StatusWait::Check => 1,
        }
    }

    /// The call's `check_interval` (seconds).
    pub fn check_interval(self) -> u32 {
        match self {
            StatusWait::Fill => 2,
            StatusWait::Check => 1,
        }
    }
}

/// An order id exactly as the client returned it. It is opaque to the core and handed back
/// unchanged to `wait_for_order_fill` and `cancel_order`; `text` is its `str()` for log lines.
#[derive(Clone)]
pub struct OrderId {
    token: Arc<dyn Any + Send + Sync>,
    text: String,
}

impl OrderId {
    /// Wraps the client's own id object (`token`) and its printable text.
    pub fn new(token: Arc<dyn Any + Send + Sync>, text: impl Into<String>) -> Self {
        OrderId {
            token,
            text: text.into(),
        }
    }

    /// An id that is just its text (fakes and tests).
    pub fn from_text(text: impl Into<String>) -> Self {
        let text = text.into();
        OrderId::new(Arc::new(text.clone()), text)
    }

    /// The id as the client gave it.
    pub fn token(&self) -> &(dyn Any + Send + Sync) {
        self.token.as_ref()
    }

    /// The id as Python's `str()` prints it.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderId({})", self.text)
    }
}

impl PartialEq for OrderId {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// The side an order takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderSide {
    /// `'buy'`.
    Buy,
    /// `'sell'`.
    Sell,
}

impl OrderSide {
    /// The side that opens (or adds to) a position: buy for a long.
    pub fn opening(is_long: bool) -> Self {
        if is_long {
            OrderSide::Buy
        } else {
            OrderSide::Sell
        }
    }

    /// The side that reduces a position: sell for a long.
    pub fn closing(is_long: bool) -> Self {
        OrderSide::opening(!is_long)
    }

    /// `'buy'` or `'sell'`, as the client expects it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSide::Buy => "buy",
            OrderSide::Sell => "sell",
        }
    }
}

/// A market order. A reducing order is sent as
/// `create_market_order(symbol, side, amount, leverage, reduce_only=True, is_critical=True)`,
/// any other as `create_market_order(symbol, side, amount, leverage)` (the original's shapes).
#[derive(Clone, Debug, PartialEq)]
pub struct MarketOrder<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// Side.
    pub side: OrderSide,
    /// Contracts.
    pub amount: f64,
    /// Leverage (sent as an int when whole).
    pub leverage: f64,
    /// Reduce-only (and critical): scale-outs.
    pub reduce_only: bool,
    /// The client order id, for clients that take one (`client_order_id=` keyword).
    pub client_order_id: Option<&'a str>,
    /// The leg the order opens or reduces, for clients that take it (`position_side=`).
    pub position_side: Option<crate::key::Side>,
}

/// A post-only limit order:
/// `create_limit_order(symbol, side, amount, limit_price, leverage, post_only=True)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitOrder<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// Side.
    pub side: OrderSide,
    /// Contracts.
    pub amount: f64,
    /// Limit price.
    pub price: f64,
    /// Leverage (sent as an int when whole).
    pub leverage: f64,
    /// The client order id, for clients that take one (`client_order_id=` keyword).
    pub client_order_id: Option<&'a str>,
    /// The leg the order opens, for clients that take it (`position_side=`).
    pub position_side: Option<crate::key::Side>,
}

/// What `get_order_by_client_id(client_order_id, symbol)` answered.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderLookup {
    /// The venue has no order with that id: it was never placed.
    NotFound,
    /// The order as the venue reports it.
    Found(OrderReport),
    /// A truthy answer that is not an order dict (its type name): nothing can be read from it.
    Unreadable(String),
}

/// What an order call (`create_*_order`, `wait_for_order_fill`) answered.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderAnswer {
    /// A falsy answer (`None`, `{}`, `False`): the client's "failed" / "no status".
    Missing,
    /// A mapping: the fields the manager reads from it.
    Report(OrderReport),
    /// A truthy answer that is not a mapping (a `Mock`, a string, ...); carries its type name.
    Opaque(String),
}

/// The fields of a ccxt-style order (or order status) dict the manager reads.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderReport {
    /// `id`, when the key is there and not `None`.
    pub id: Option<OrderId>,
    /// `status` (`open`, `closed`, `canceled`, `expired`, `rejected`).
    pub status: Field,
    /// `filled`: contracts filled so far.
    pub filled: Field,
    /// `average`: average fill price.
    pub average: Field,
}

impl OrderReport {
    /// A report with only an id (everything else absent).
    pub fn with_id(id: &str) -> Self {
        OrderReport {
            id: Some(OrderId::from_text(id)),
            status: Field::Absent,
            filled: Field::Absent,
            average: Field::Absent,
        }
    }

    /// The filled amount when the answer states one: a finite number >= 0 (a bool is not one).
    pub fn filled(&self) -> Option<f64> {
        real_number(&self.filled).filter(|f| *f >= 0.0)
    }

    /// True when the answer has a `filled` value that is not a usable amount (negative, NaN,
    /// infinite, a string, a bool, ...). Such an answer does not say what the order did: it is
    /// verified against the exchange like a lost one, never read as "filled as requested".
    /// An absent or `None` `filled` is silence, read as the original did.
    pub fn filled_unreadable(&self) -> bool {
        !matches!(self.filled, Field::Absent | Field::Null) && self.filled().is_none()
    }

    /// True when the answer reports more filled than the `requested` contracts (beyond a
    /// rounding error): no order fills more than it asked for, so the answer is as unusable as
    /// an unreadable `filled` and is verified against the exchange like a lost one (believed,
    /// a partial exit reported as a whole close untracked a position the venue still held).
    pub fn overfilled(&self, requested: f64) -> bool {
        requested.is_finite()
            && requested > 0.0
            && self.filled().is_some_and(|f| f > requested * (1.0 + 1e-9))
    }

    /// The average fill price when the answer states a usable one (finite, > 0).
    pub fn average(&self) -> Option<f64> {
        real_number(&self.average).filter(|p| *p > 0.0)
    }

    /// The status text, if any.
    pub fn status(&self) -> Option<&str> {
        self.status.as_text()
    }

    /// `status == 'closed'`: the original's test for "filled".
    pub fn is_closed(&self) -> bool {
        self.status() == Some("closed")
    }

    /// The answer states a status, and it is not final (`open`, or a text ccxt does not
    /// unify, such as a venue's `NEW` or `PARTIALLY_FILLED` in some case): by the venue's word
    /// the order may still fill. An absent or `None` status says nothing.
    pub fn says_open(&self) -> bool {
        self.status().is_some_and(|s| !s.trim().is_empty()) && !self.is_final()
    }

    /// The order can no longer fill (`closed`, `canceled`, `cancelled`, `expired`, `rejected`):
    /// its `filled` is final.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status(),
            Some("closed" | "canceled" | "cancelled" | "expired" | "rejected")
        )
    }
}

/// A finite int or float (not a bool, not a string).
fn real_number(field: &Field) -> Option<f64> {
    match field {
        Field::Int(i) => Some(*i as f64),
        Field::Number(x) if x.is_finite() => Some(*x),
        _ => None,
    }
}

/// The part of `get_market_limits(symbol)` the manager uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MarketLimits {
    /// `limits['amount']['min']` when it is a number (`None`/absent/0 mean "no minimum").
    pub min_amount: Option<f64>,
    /// `limits['amount']['step']`: the lot size, when the client reports one (our adapters do).
    pub amount_step: Option<f64>,
    /// Why the answer could not be read, if it could not (the limits are then ignored).
    pub problem: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_status(status: Field) -> OrderReport {
        OrderReport {
            status,
            ..OrderReport::with_id("1")
        }
    }

    #[test]
    fn a_status_that_is_not_final_says_open() {
        for open in ["open", "new", "NEW", "PARTIALLY_FILLED", "partially_filled"] {
            assert!(with_status(Field::Text(open.into())).says_open(), "{open}");
        }
        for done in ["closed", "canceled", "cancelled", "expired", "rejected"] {
            assert!(!with_status(Field::Text(done.into())).says_open(), "{done}");
        }
        for silent in [
            Field::Absent,
            Field::Null,
            Field::Text(String::new()),
            Field::Int(1),
        ] {
            assert!(!with_status(silent.clone()).says_open(), "{silent:?}");
        }
    }
}
