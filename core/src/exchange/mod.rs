//! The exchange as the manager sees it: the [`Exchange`] trait and the typed answers it returns.
//!
//! The bot's client returns loosely typed data (ccxt dicts, `None`, mocks, strings for numbers).
//! Implementations convert each answer defensively into these types: a value that cannot be read
//! is kept as a [`Field`] describing what was there, so the manager can skip it with a warning that
//! shows the value exactly as Python would print it.

mod orders;

pub use orders::{
    LimitOrder, MarketLimits, MarketOrder, OrderAnswer, OrderId, OrderLookup, OrderReport,
    OrderSide, StatusWait,
};

use crate::error::{CoreError, CoreResult};
use crate::format::py_repr_float;

/// One value read out of a client answer, with enough information to print it like Python's `str()`.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// The key was not there.
    Absent,
    /// `None`.
    Null,
    /// A `bool`.
    Bool(bool),
    /// An `int` that fits 64 bits.
    Int(i64),
    /// A `float` (or an int too large for [`Field::Int`]).
    Number(f64),
    /// A `str`.
    Text(String),
    /// Any other object, kept as its `str()` and its type name.
    Other {
        /// `str(value)`.
        text: String,
        /// `type(value).__name__`.
        type_name: String,
    },
}

impl Field {
    /// What Python's `str()` prints for this value (`None` for an absent key, as `.get()` gives).
    pub fn display(&self) -> String {
        match self {
            Field::Absent | Field::Null => "None".to_owned(),
            Field::Bool(true) => "True".to_owned(),
            Field::Bool(false) => "False".to_owned(),
            Field::Int(i) => i.to_string(),
            Field::Number(x) => py_repr_float(*x),
            Field::Text(s) => s.clone(),
            Field::Other { text, .. } => text.clone(),
        }
    }

    /// Python's truthiness of the value (absent counts as `None`).
    pub fn is_truthy(&self) -> bool {
        match self {
            Field::Absent | Field::Null => false,
            Field::Bool(b) => *b,
            Field::Int(i) => *i != 0,
            Field::Number(x) => *x != 0.0,
            Field::Text(s) => !s.is_empty(),
            Field::Other { .. } => true,
        }
    }

    /// The value as a number if it is one (`int`, `float`, `bool`), without parsing strings.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Field::Int(i) => Some(*i as f64),
            Field::Number(x) => Some(*x),
            Field::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }

    /// Python's `float(value)`: numbers, and strings in Python's float syntax.
    pub fn to_float(&self) -> CoreResult<f64> {
        match self {
            Field::Text(s) => parse_py_float(s).ok_or_else(|| {
                CoreError::Value(format!("could not convert string to float: '{s}'"))
            }),
            Field::Absent | Field::Null => Err(CoreError::Type(
                "float() argument must be a string or a real number, not 'NoneType'".to_owned(),
            )),
            Field::Other { type_name, .. } => Err(CoreError::Type(format!(
                "float() argument must be a string or a real number, not '{type_name}'"
            ))),
            other => Ok(other.as_number().unwrap_or(f64::NAN)),
        }
    }

    /// The value as text if it is a string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Field::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses a string with Python's `float()` syntax (surrounding blanks, `inf`, `nan`, underscores
/// between digits).
fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let negative = lower.starts_with('-');
    let special = match unsigned {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        if lower.len() - unsigned.len() > 1 {
            return None;
        }
        return Some(if negative { -v } else { v });
    }
    // Underscores are allowed only between digits.
    let bytes = t.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_' {
            let ok = i > 0
                && i + 1 < bytes.len()
                && bytes[i - 1].is_ascii_digit()
                && bytes[i + 1].is_ascii_digit();
            if !ok {
                return None;
            }
        }
    }
    let cleaned: String = t.chars().filter(|c| *c != '_').collect();
    if cleaned.contains(['x', 'X']) {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

/// One entry of the exchange's open-position list, as read from a ccxt position dict.
#[derive(Clone, Debug, PartialEq)]
pub struct RawPosition {
    /// `symbol`.
    pub symbol: Field,
    /// `contracts`.
    pub contracts: Field,
    /// `side`.
    pub side: Field,
    /// `entryPrice`.
    pub entry_price: Field,
    /// `leverage`.
    pub leverage: Field,
    /// `info['realLeverage']` ([`Field::Absent`] when `info` is missing or not a mapping).
    pub real_leverage: Field,
    /// `contractSize`.
    pub contract_size: Field,
    /// `liquidationPrice`.
    pub liquidation_price: Field,
    /// `markPrice`.
    pub mark_price: Field,
    /// `unreadable`: a client's own word that the entry is listed but cannot be read (a text
    /// saying what could not be; [`Field::Absent`] on ordinary entries). Any value but absent,
    /// `None`, `False`, `0` or `''` makes the entry presence only, whatever its other fields say.
    pub unreadable: Field,
}

impl RawPosition {
    /// An entry with only a symbol (every other key absent); convenient in tests.
    pub fn with_symbol(symbol: &str) -> Self {
        RawPosition {
            symbol: Field::Text(symbol.to_owned()),
            contracts: Field::Absent,
            side: Field::Absent,
            entry_price: Field::Absent,
            leverage: Field::Absent,
            real_leverage: Field::Absent,
            contract_size: Field::Absent,
            liquidation_price: Field::Absent,
            mark_price: Field::Absent,
            unreadable: Field::Absent,
        }
    }

    /// The symbol if it is a non-empty string.
    pub fn symbol(&self) -> Option<&str> {
        self.symbol.as_text().filter(|s| !s.is_empty())
    }
}

/// One item of the list `get_open_positions()` returned.
#[derive(Clone, Debug, PartialEq)]
pub enum RawEntry {
    /// A mapping, read field by field.
    Position(Box<RawPosition>),
    /// Something that is not a mapping; carries its type name.
    NotAMapping(String),
}

/// One `get_open_positions()` answer read for one symbol ([`Exchange::get_open_positions_for`]).
#[derive(Debug)]
pub struct SymbolEntries {
    /// The entries read in full, with their place in the answer: every entry for the symbol, and
    /// every entry that names no usable symbol (it may be the symbol's, and it keeps the list
    /// from proving anything absent). Other symbols' entries may be here too.
    pub entries: Vec<(usize, RawEntry)>,
    /// Number of entries in the answer.
    pub total: usize,
    /// Reads the whole answer in full — the same answer, no second request — for a decision
    /// that needs every entry. `None` when `entries` already is the whole answer.
    pub whole: Option<WholeList>,
}

impl SymbolEntries {
    /// A whole answer, every entry read.
    pub fn whole(entries: Vec<RawEntry>) -> Self {
        SymbolEntries {
            total: entries.len(),
            entries: entries.into_iter().enumerate().collect(),
            whole: None,
        }
    }
}

/// Reads the rest of an answer on demand (see [`SymbolEntries::whole`]).
pub struct WholeList(Box<dyn FnOnce() -> CoreResult<Vec<RawEntry>> + Send>);

impl WholeList {
    /// A reader of the whole answer.
    pub fn new(read: impl FnOnce() -> CoreResult<Vec<RawEntry>> + Send + 'static) -> Self {
        WholeList(Box::new(read))
    }

    /// Every entry of the answer, read in full.
    pub fn read(self) -> CoreResult<Vec<RawEntry>> {
        (self.0)()
    }
}

impl std::fmt::Debug for WholeList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WholeList(..)")
    }
}

/// What `get_ticker(symbol)` answered.
#[derive(Clone, Debug, PartialEq)]
pub enum TickerAnswer {
    /// A falsy answer (`None`, `{}`): the original's "API returned None".
    Missing,
    /// A ticker; `last` is its `'last'` value.
    Ticker {
        /// `ticker.get('last')`.
        last: Field,
    },
}

impl TickerAnswer {
    fn price_field(&self) -> Option<f64> {
        match self {
            TickerAnswer::Ticker { last } => last.as_number(),
            TickerAnswer::Missing => None,
        }
    }

    /// The usable price: a finite number greater than zero.
    pub fn valid_price(&self) -> Option<f64> {
        match self {
            // A bool is a number to Python but never a price.
            TickerAnswer::Ticker {
                last: Field::Int(_) | Field::Number(_),
            } => self.price_field().filter(|p| p.is_finite() && *p > 0.0),
            TickerAnswer::Ticker { .. } => None,
            TickerAnswer::Missing => None,
        }
    }
}

/// One requested symbol's entry in a `get_tickers(symbols)` answer (see
/// [`Exchange::get_tickers`]).
#[derive(Clone, Debug, PartialEq)]
pub enum BatchTicker {
    /// The answer has no entry for the symbol, or a falsy one (`None`, `{}`).
    Missing,
    /// A ticker mapping.
    Ticker {
        /// `ticker.get('symbol')`: the symbol the ticker says it is for ([`Field::Absent`] when
        /// it does not say).
        symbol: Field,
        /// `ticker.get('last')`.
        last: Field,
    },
    /// An entry that is not a mapping; carries its type name.
    NotAMapping(String),
}

/// The most candles of one `get_ohlcv` answer that are read: its last 10 000 rows. The manager
/// asks for `limit=100` and uses the most recent rows, so this is a hundred times what it can
/// use; the rows before them are skipped (counted in [`Ohlcv::skipped`], with a warning), so an
/// answer of millions of rows costs neither memory nor time.
pub const MAX_CANDLES: usize = 10_000;

/// The most entries a `get_open_positions()` answer may have: 100 000. No account holds that
/// many positions; a longer answer is not a usable list (an error, as an answer that is not a
/// list: nothing is removed and a warning names it) and none of its entries is read.
pub const MAX_POSITION_ENTRIES: usize = 100_000;

/// Candles `[timestamp_ms, open, high, low, close, volume]` from `get_ohlcv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ohlcv {
    /// Rows that had six numbers.
    pub rows: Vec<[f64; 6]>,
    /// Why some rows could not be read, if any could not (the data is then not used).
    pub problem: Option<String>,
    /// Rows of the answer before its last [`MAX_CANDLES`] that were not read (0 for an answer
    /// of at most that many rows).
    pub skipped: usize,
}

/// The exchange operations the manager needs. Implemented over the bot's Python client by the
/// binding layer and by fakes in tests. A returned `Err` stands for an exception the client raised
/// (or an answer of the wrong shape); it is never taken as evidence that a position is gone.
pub trait Exchange: Send + Sync {
    /// `get_open_positions()`: the open positions, or an error when the answer is not a list.
    fn get_open_positions(&self) -> CoreResult<Vec<RawEntry>>;
    /// `get_open_positions()` read for one symbol (a close's or an order's check): an
    /// implementation may read only `symbol`'s entries in full, and the rest of the same answer
    /// when asked ([`SymbolEntries::whole`]). The default reads every entry.
    fn get_open_positions_for(&self, symbol: &str) -> CoreResult<SymbolEntries> {
        let _ = symbol;
        self.get_open_positions().map(SymbolEntries::whole)
    }
    /// `get_ticker(symbol)`.
    fn get_ticker(&self, symbol: &str) -> CoreResult<TickerAnswer>;
    /// `get_ohlcv(symbol, timeframe=..., limit=...)`.
    fn get_ohlcv(&self, symbol: &str, timeframe: &str, limit: u32) -> CoreResult<Ohlcv>;
    /// `close_position(symbol)` (with `client_order_id=`, `side=` and `contracts=` for clients
    /// that take them): whether the client reports the position closed. `contracts` is the
    /// manager's size of the position, given only to clients whose [`Exchange::sized_closes`]
    /// is true.
    fn close_position(
        &self,
        symbol: &str,
        client_order_id: Option<&str>,
        side: Option<crate::key::Side>,
        contracts: Option<f64>,
    ) -> CoreResult<bool>;
    /// `create_market_order(...)` in the shape [`MarketOrder`] describes.
    fn create_market_order(&self, order: &MarketOrder<'_>) -> CoreResult<OrderAnswer>;
    /// `create_limit_order(symbol, side, amount, price, leverage, post_only=True)`.
    fn create_limit_order(&self, order: &LimitOrder<'_>) -> CoreResult<OrderAnswer>;
    /// `wait_for_order_fill(order_id, symbol, timeout=..., check_interval=...)`, with the
    /// `timeout` and `check_interval` of `wait` (the original's 10 and 2 for [`StatusWait::Fill`]).
    fn wait_for_order_fill(
        &self,
        order_id: &OrderId,
        symbol: &str,
        wait: StatusWait,
    ) -> CoreResult<OrderAnswer>;
    /// `cancel_order(order_id, symbol)`: whether the client reports the order cancelled.
    fn cancel_order(&self, order_id: &OrderId, symbol: &str) -> CoreResult<bool>;
    /// `get_market_limits(symbol)`; `None` for a falsy answer (no limits known).
    fn get_market_limits(&self, symbol: &str) -> CoreResult<Option<MarketLimits>>;
    /// Whether the client takes client order ids (`client_order_id=` on its order methods) and
    /// can look orders up by them (`get_order_by_client_id`). The bot's own client does not:
    /// its calls keep the original shapes exactly.
    fn client_order_ids(&self) -> bool {
        false
    }
    /// Whether the client takes the leg an order is for (`close_position(symbol, side=...)`,
    /// `position_side=` on order methods): then the manager names the tracked position's leg in
    /// every order, so on an account in hedge mode a close reduces exactly that leg.
    fn position_legs(&self) -> bool {
        false
    }
    /// Whether the client's `close_position` takes `contracts=`, the manager's size of the
    /// position: then a close never asks for more than the manager knows is there, though the
    /// client's own position list lags a reduction the manager saw fill.
    fn sized_closes(&self) -> bool {
        false
    }
    /// `get_order_by_client_id(client_order_id, symbol)`: the order, or `NotFound` when the venue
    /// never had it. Only asked of clients whose [`Exchange::client_order_ids`] is true.
    fn get_order_by_client_id(
        &self,
        _client_order_id: &str,
        _symbol: &str,
    ) -> CoreResult<OrderLookup> {
        Err(CoreError::Type(
            "this client cannot look orders up by client order id".to_owned(),
        ))
    }
    /// `get_tickers(symbols)`: every price in one call, when the client has the method
    /// (`None`, the default: it has not, and the cycle asks `get_ticker` per symbol). The answer
    /// has one entry per requested symbol, in the order asked; an answer that is not a mapping
    /// is an error (like an exception the client raised), and the cycle then asks per symbol.
    fn get_tickers(&self, _symbols: &[&str]) -> Option<CoreResult<Vec<BatchTicker>>> {
        None
    }
    /// Whether the client wants to be told which symbols the manager holds positions in
    /// ([`Exchange::watch_symbols`]): a client whose position list covers only the markets it
    /// knows of (the binding: a client with a `watch_symbols` method of its own).
    fn watches_symbols(&self) -> bool {
        false
    }
    /// `watch_symbols(symbols)`: from now on the client's position lists must cover these
    /// symbols' markets. Asked, before a list is read, with every symbol that entered the book
    /// since the client was last told (each once per client), only of clients whose
    /// [`Exchange::watches_symbols`] is true. An error fails the list read it came before.
    fn watch_symbols(&self, _symbols: &[&str]) -> CoreResult<()> {
        Ok(())
    }
    /// Whether the caller has asked the manager to stop: an interruption that is waiting (the
    /// binding: a Ctrl+C, or one a logging handler raised), as the start of a client call would
    /// raise it. The update cycle asks while it waits for calls made on other threads and where
    /// a sequential cycle would have made a call, so it ends where a sequential one would.
    fn check_interrupt(&self) -> CoreResult<()> {
        Ok(())
    }
    /// Waits `seconds` between retries (the original's ticker back-off). The binding wakes up
    /// for signals meanwhile, so an interrupt ends the wait with [`CoreError::Interrupted`].
    fn pause(&self, seconds: f64) -> CoreResult<()> {
        if seconds > 0.0 && seconds.is_finite() {
            std::thread::sleep(std::time::Duration::from_secs_f64(seconds.min(86_400.0)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_syntax() {
        assert_eq!(Field::Text(" 1.5 ".into()).to_float(), Ok(1.5));
        assert_eq!(Field::Text("1_000".into()).to_float(), Ok(1000.0));
        assert!(Field::Text("-inf".into()).to_float().unwrap().is_infinite());
        assert!(Field::Text("nan".into()).to_float().unwrap().is_nan());
        assert!(Field::Text("abc".into()).to_float().is_err());
        assert!(Field::Text("1__0".into()).to_float().is_err());
        assert!(Field::Text("_1".into()).to_float().is_err());
        assert!(Field::Text("+-1".into()).to_float().is_err());
        assert!(matches!(Field::Null.to_float(), Err(CoreError::Type(_))));
        assert_eq!(Field::Int(3).to_float(), Ok(3.0));
        assert_eq!(Field::Bool(true).to_float(), Ok(1.0));
    }

    #[test]
    fn an_unusable_filled_is_unreadable_and_silence_is_not() {
        let report = |filled: Field| OrderReport {
            filled,
            ..OrderReport::with_id("o1")
        };
        for bad in [
            Field::Number(-1.0),
            Field::Number(f64::NAN),
            Field::Number(f64::INFINITY),
            Field::Text("5".into()),
            Field::Bool(true),
        ] {
            assert!(report(bad.clone()).filled_unreadable(), "{bad:?}");
            assert_eq!(report(bad).filled(), None);
        }
        for silent in [Field::Absent, Field::Null] {
            assert!(!report(silent).filled_unreadable());
        }
        assert!(!report(Field::Int(0)).filled_unreadable());
        assert_eq!(report(Field::Number(2.5)).filled(), Some(2.5));
    }

    #[test]
    fn ticker_price_must_be_positive_and_finite() {
        let t = |f: Field| TickerAnswer::Ticker { last: f }.valid_price();
        assert_eq!(t(Field::Number(1.5)), Some(1.5));
        assert_eq!(t(Field::Int(2)), Some(2.0));
        assert_eq!(t(Field::Number(0.0)), None);
        assert_eq!(t(Field::Number(f64::NAN)), None);
        assert_eq!(t(Field::Number(f64::INFINITY)), None);
        assert_eq!(t(Field::Text("5".into())), None);
        assert_eq!(t(Field::Bool(true)), None);
        assert_eq!(TickerAnswer::Missing.valid_price(), None);
    }

    #[test]
    fn display_like_python_str() {
        assert_eq!(Field::Absent.display(), "None");
        assert_eq!(Field::Bool(false).display(), "False");
        assert_eq!(Field::Int(-3).display(), "-3");
        assert_eq!(Field::Text("x".into()).display(), "x");
    }
}
