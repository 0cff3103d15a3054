//! `PyClient`: the core's `Exchange` trait over the bot's Python client object.
//!
//! Each call attaches to the interpreter, calls the client with the original's call shape and
//! converts the answer defensively: anything unexpected becomes a typed value or an error, never
//! a panic. An exception the client raises becomes `CoreError::Exchange` with its type name and
//! message, which is how the original reports it.

use std::sync::Arc;

use parking_lot::RwLock;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use pyo3::PyTraverseError;

use position_manager_core::error::{CoreError, CoreResult};
use position_manager_core::exchange::{
    BatchTicker, Exchange, Field, LimitOrder, MarketLimits, MarketOrder, Ohlcv, OrderAnswer,
    OrderId, OrderLookup, OrderReport, RawEntry, RawPosition, StatusWait, SymbolEntries,
    TickerAnswer, WholeList, MAX_CANDLES, MAX_POSITION_ENTRIES,
};
use position_manager_core::key::Side;

use crate::convert::{field, get_key, int_if_whole, is_mapping, type_name};

/// The bot's client object and what it can do; replaceable (`manager.client = other`).
struct Current {
    client: Arc<Py<PyAny>>,
    /// `client_order_ids = True`: the client takes `client_order_id=` and looks orders up.
    client_order_ids: bool,
    /// `position_legs = True`: the client takes the leg an order is for (`side=`,
    /// `position_side=`).
    position_legs: bool,
    /// The client has a `get_tickers` method of its own (batched prices).
    batch_tickers: bool,
    /// `sized_closes = True`: `close_position` takes `contracts=` (the manager's size).
    sized_closes: bool,
    /// The client has a `watch_symbols` method of its own (its lists cover the markets it is
    /// told of).
    watches_symbols: bool,
}

/// The bot's client object; replaceable (`manager.client = other`).
pub struct PyClient {
    current: RwLock<Arc<Current>>,
}

/// Whether `client` declares a capability: the attribute is exactly `True` (a `Mock`'s
/// auto-created attributes are not).
fn declares(client: &Bound<'_, PyAny>, name: &str) -> bool {
    client
        .getattr(name)
        .is_ok_and(|v| v.is(pyo3::types::PyBool::new(client.py(), true).to_owned()))
}

/// Whether `client` has a method `name` of its own: found by `inspect.getattr_static` (on the
/// instance or its class, never through `__getattr__`, so a `Mock`'s automatic attributes and
/// a proxy's forwarded ones do not count) and callable.
fn has_own_method(client: &Bound<'_, PyAny>, name: &str) -> bool {
    let py = client.py();
    let found = py.import(intern!(py, "inspect")).and_then(|inspect| {
        inspect.call_method1(intern!(py, "getattr_static"), (client, name, py.None()))
    });
    match found {
        Ok(v) if !v.is_none() => client.getattr(name).is_ok_and(|m| m.is_callable()),
        _ => false,
    }
}

/// One requested symbol's entry of a `get_tickers` answer (a mapping).
fn batch_entry(answer: &Bound<'_, PyAny>, symbol: &str) -> PyResult<BatchTicker> {
    let py = answer.py();
    let key = pyo3::types::PyString::new(py, symbol);
    let Some(entry) = get_key(answer, &key)? else {
        return Ok(BatchTicker::Missing);
    };
    if entry.is_none() || !entry.is_truthy()? {
        return Ok(BatchTicker::Missing);
    }
    if !is_mapping(&entry) {
        return Ok(BatchTicker::NotAMapping(type_name(&entry)));
    }
    Ok(BatchTicker::Ticker {
        symbol: field(get_key(&entry, intern!(py, "symbol"))?)?,
        last: field(get_key(&entry, intern!(py, "last"))?)?,
    })
}

impl PyClient {
    /// Wraps the client.
    pub fn new(py: Python<'_>, client: Py<PyAny>) -> Self {
        PyClient {
            current: RwLock::new(Arc::new(Self::current(py, client))),
        }
    }

    fn current(py: Python<'_>, client: Py<PyAny>) -> Current {
        let client_order_ids = declares(client.bind(py), "client_order_ids");
        let position_legs = declares(client.bind(py), "position_legs");
        let batch_tickers = has_own_method(client.bind(py), "get_tickers");
        let sized_closes = declares(client.bind(py), "sized_closes");
        let watches_symbols = has_own_method(client.bind(py), "watch_symbols");
        Current {
            client: Arc::new(client),
            client_order_ids,
            position_legs,
            batch_tickers,
            sized_closes,
            watches_symbols,
        }
    }

    /// The current client object.
    pub fn get(&self) -> Arc<Py<PyAny>> {
        self.current.read().client.clone()
    }

    /// Reports the client object to the garbage collector (see src/gc.rs). The lock is only
    /// written with the interpreter held and no Python running, so a collection finds it free
    /// for reading.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(current) = self.current.try_read() {
            visit.call(&*current.client)?;
        }
        Ok(())
    }

    /// Replaces the client object.
    pub fn set(&self, py: Python<'_>, client: Py<PyAny>) {
        let new = Arc::new(Self::current(py, client));
        let old = std::mem::replace(&mut *self.current.write(), new);
        drop(old);
    }

    fn call<T>(&self, f: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T>) -> CoreResult<T> {
        // Copy the reference out first: the lock is never held while Python runs.
        let client = self.get();
        crate::logging::attach_clean(|py| {
            crate::logging::interruption(py)?;
            f(client.bind(py)).map_err(|e| exchange_error(py, &e))
        })
    }

    /// A call that places or cancels an order: a client without the method has sent nothing,
    /// which is a definitive failure ([`CoreError::Unsent`]), not an unknown outcome.
    fn call_order<T>(
        &self,
        method: &str,
        f: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T>,
    ) -> CoreResult<T> {
        let client = self.get();
        crate::logging::attach_clean(|py| {
            crate::logging::interruption(py)?;
            let c = client.bind(py);
            if let Err(e) = c.getattr(method) {
                return Err(match exchange_error(py, &e) {
                    CoreError::Exchange { kind, message } => CoreError::Unsent { kind, message },
                    other => other,
                });
            }
            f(c).map_err(|e| exchange_error(py, &e))
        })
    }
}

/// A Python exception as the core's error: an interruption (`KeyboardInterrupt`, `SystemExit`,
/// any `BaseException` that is not an `Exception`) as [`CoreError::Interrupted`], to be raised
/// again as it came; anything else as an exchange error (`type(e).__name__`, `str(e)` with
/// its credentials redacted: [`position_manager_core::redact`]).
pub fn exchange_error(py: Python<'_>, e: &PyErr) -> CoreError {
    if crate::logging::is_interrupt(py, e) {
        return crate::logging::interrupted(py, e);
    }
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_owned());
    let message = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    // Some venues sign in the query string, and error texts quote the request's URL.
    let message = position_manager_core::redact::redact_secrets(&message).into_owned();
    CoreError::Exchange { kind, message }
}

fn not_iterable(value: &Bound<'_, PyAny>) -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(format!("'{}' object is not iterable", type_name(value)))
}

fn raw_position(item: &Bound<'_, PyAny>) -> PyResult<RawEntry> {
    let py = item.py();
    if !is_mapping(item) {
        return Ok(RawEntry::NotAMapping(type_name(item)));
    }
    let info = get_key(item, intern!(py, "info"))?;
    let real_leverage = match info {
        Some(i) if is_mapping(&i) => field(get_key(&i, intern!(py, "realLeverage"))?)?,
        _ => position_manager_core::exchange::Field::Absent,
    };
    Ok(RawEntry::Position(Box::new(RawPosition {
        symbol: field(get_key(item, intern!(py, "symbol"))?)?,
        contracts: field(get_key(item, intern!(py, "contracts"))?)?,
        side: field(get_key(item, intern!(py, "side"))?)?,
        entry_price: field(get_key(item, intern!(py, "entryPrice"))?)?,
        leverage: field(get_key(item, intern!(py, "leverage"))?)?,
        real_leverage,
        contract_size: field(get_key(item, intern!(py, "contractSize"))?)?,
        liquidation_price: field(get_key(item, intern!(py, "liquidationPrice"))?)?,
        mark_price: field(get_key(item, intern!(py, "markPrice"))?)?,
        unreadable: field(get_key(item, intern!(py, "unreadable"))?)?,
    })))
}

/// One value of a candle: a float, or any other number (an int timestamp); never a string.
/// An interrupt raised while reading it (a number type's `__float__`) leaves as it came.
fn candle_value(v: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if let Ok(f) = v.cast::<pyo3::types::PyFloat>() {
        return Ok(Some(f.value()));
    }
    if v.is_instance_of::<pyo3::types::PyString>() {
        return Ok(None);
    }
    if let Ok(i) = v.cast::<pyo3::types::PyInt>() {
        // Millisecond timestamps: an exact i64 read is much cheaper than int -> float.
        if let Ok(i) = i.extract::<i64>() {
            return Ok(Some(i as f64));
        }
    }
    crate::convert::unless_passing(v.py(), v.extract::<f64>())
}

/// A candle row: a list or tuple of exactly six numbers (the original's six-column frame
/// rejects any other width), `None` otherwise. Lists and tuples are read by index without
/// iterator objects: this runs for 100 candles per position per cycle.
fn candle_row(row: &Bound<'_, PyAny>) -> PyResult<Option<[f64; 6]>> {
    let mut out = [0.0; 6];
    if let Ok(list) = row.cast::<PyList>() {
        if list.len() != 6 {
            return Ok(None);
        }
        for (i, slot) in out.iter_mut().enumerate() {
            let Ok(item) = list.get_item(i) else {
                return Ok(None);
            };
            let Some(x) = candle_value(&item)? else {
                return Ok(None);
            };
            *slot = x;
        }
    } else if let Ok(t) = row.cast::<PyTuple>() {
        if t.len() != 6 {
            return Ok(None);
        }
        for (i, slot) in out.iter_mut().enumerate() {
            let Ok(item) = t.get_item(i) else {
                return Ok(None);
            };
            let Some(x) = candle_value(&item)? else {
                return Ok(None);
            };
            *slot = x;
        }
    } else {
        return Ok(None);
    }
    Ok(Some(out))
}

/// An order answer: falsy → missing; a mapping → its fields; anything else → opaque.
fn order_answer(answer: &Bound<'_, PyAny>) -> PyResult<OrderAnswer> {
    if answer.is_none() || !answer.is_truthy()? {
        return Ok(OrderAnswer::Missing);
    }
    if !is_mapping(answer) {
        return Ok(OrderAnswer::Opaque(type_name(answer)));
    }
    let py = answer.py();
    let id = match get_key(answer, intern!(py, "id"))? {
        Some(id) if !id.is_none() => {
            let text = id.str()?.to_string();
            Some(OrderId::new(Arc::new(id.unbind()), text))
        }
        _ => None,
    };
    Ok(OrderAnswer::Report(OrderReport {
        id,
        status: field(get_key(answer, intern!(py, "status"))?)?,
        filled: field(get_key(answer, intern!(py, "filled"))?)?,
        average: field(get_key(answer, intern!(py, "average"))?)?,
    }))
}

/// The client's own id object back from an [`OrderId`] (made by [`order_answer`]).
fn order_id<'py>(py: Python<'py>, id: &OrderId) -> PyResult<Bound<'py, PyAny>> {
    match id.token().downcast_ref::<Py<PyAny>>() {
        Some(obj) => Ok(obj.bind(py).clone()),
        // An id made outside this client (tests of the core, or one a journal kept for a
        // restart): pass its text.
        None => Ok(pyo3::types::PyString::new(py, id.text()).into_any()),
    }
}

/// `get_market_limits` answer: `limits['amount']['min']` and the optional `['step']`.
fn market_limits(answer: &Bound<'_, PyAny>) -> PyResult<Option<MarketLimits>> {
    if answer.is_none() || !answer.is_truthy()? {
        return Ok(None);
    }
    let py = answer.py();
    let problem = |why: String| MarketLimits {
        problem: Some(why),
        ..MarketLimits::default()
    };
    if !is_mapping(answer) {
        return Ok(Some(problem(format!(
            "expected a dict, got {}",
            type_name(answer)
        ))));
    }
    let amount = match get_key(answer, intern!(py, "amount"))? {
        Some(a) if is_mapping(&a) => a,
        Some(a) if a.is_none() => return Ok(Some(MarketLimits::default())),
        Some(a) => {
            return Ok(Some(problem(format!(
                "'amount' is a {}, not a dict",
                type_name(&a)
            ))));
        }
        None => return Ok(Some(problem("no 'amount' limits".to_owned()))),
    };
    let number = |key: &Bound<'_, pyo3::types::PyString>| -> PyResult<Result<Option<f64>, String>> {
        Ok(match field(get_key(&amount, key)?)? {
            Field::Absent | Field::Null => Ok(None),
            Field::Int(i) => Ok(Some(i as f64)),
            Field::Number(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
            other => Err(format!("'{}' is {}", key, other.display())),
        })
    };
    let min_amount = match number(intern!(py, "min"))? {
        Ok(v) => v,
        Err(why) => return Ok(Some(problem(why))),
    };
    let amount_step = match number(intern!(py, "step"))? {
        Ok(v) => v,
        Err(why) => return Ok(Some(problem(why))),
    };
    Ok(Some(MarketLimits {
        min_amount,
        amount_step,
        problem: None,
    }))
}

/// The items of a `get_open_positions()` answer. Only a real list (or tuple) is an answer: a
/// None, a Mock or a dict is not, and must never be read as "no positions".
///
/// A list longer than [`MAX_POSITION_ENTRIES`] is not a usable answer either (a `ValueError`,
/// taken as an answer that is not a list: nothing is removed, a warning says why); its length
/// is checked before anything of it is copied or read.
fn listed_items<'py>(answer: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    let too_long = |n: usize| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "get_open_positions() answered {n} entries, more than the {MAX_POSITION_ENTRIES} \
             an answer may have; it is not used"
        ))
    };
    if let Ok(l) = answer.cast::<PyList>() {
        if l.len() > MAX_POSITION_ENTRIES {
            return Err(too_long(l.len()));
        }
        Ok(l.to_tuple())
    } else if let Ok(t) = answer.cast::<PyTuple>() {
        if t.len() > MAX_POSITION_ENTRIES {
            return Err(too_long(t.len()));
        }
        Ok(t.clone())
    } else {
        Err(not_iterable(answer))
    }
}

/// Whether a list item may be `symbol`'s entry, or names no usable symbol: then it is read in
/// full. A plain dict whose `'symbol'` is a plain, non-empty str other than `symbol` is not
/// read further (the full read would file it under that other symbol).
fn concerns(item: &Bound<'_, PyAny>, symbol: &Bound<'_, PyString>) -> PyResult<bool> {
    let Ok(d) = item.cast::<PyDict>() else {
        return Ok(true);
    };
    match d.get_item(intern!(item.py(), "symbol"))? {
        Some(s) if s.is_exact_instance_of::<PyString>() => Ok(s.eq(symbol)? || s.len()? == 0),
        _ => Ok(true),
    }
}

impl Exchange for PyClient {
    fn get_open_positions(&self) -> CoreResult<Vec<RawEntry>> {
        self.call(|c| {
            let answer = c.call_method0(intern!(c.py(), "get_open_positions"))?;
            listed_items(&answer)?
                .iter()
                .map(|i| raw_position(&i))
                .collect()
        })
    }

    fn get_open_positions_for(&self, symbol: &str) -> CoreResult<SymbolEntries> {
        // A book key holds U+FFFD where its symbol had a lone surrogate (the full read converts
        // symbols that way): such a key is looked up by a full read.
        if symbol.contains('\u{FFFD}') {
            return self.get_open_positions().map(SymbolEntries::whole);
        }
        self.call(|c| {
            let py = c.py();
            let answer = c.call_method0(intern!(py, "get_open_positions"))?;
            let items = listed_items(&answer)?;
            let wanted = PyString::new(py, symbol);
            let mut entries = Vec::new();
            for (index, item) in items.iter().enumerate() {
                if concerns(&item, &wanted)? {
                    entries.push((index, raw_position(&item)?));
                }
            }
            let total = items.len();
            let items = items.unbind();
            Ok(SymbolEntries {
                entries,
                total,
                whole: Some(WholeList::new(move || {
                    crate::logging::attach_clean(|py| {
                        items
                            .bind(py)
                            .iter()
                            .map(|i| raw_position(&i))
                            .collect::<PyResult<Vec<_>>>()
                            .map_err(|e| exchange_error(py, &e))
                    })
                })),
            })
        })
    }

    fn get_ticker(&self, symbol: &str) -> CoreResult<TickerAnswer> {
        self.call(|c| {
            let t = c.call_method1(intern!(c.py(), "get_ticker"), (symbol,))?;
            if t.is_none() || !t.is_truthy()? {
                return Ok(TickerAnswer::Missing);
            }
            let last = if t.is_instance_of::<PyDict>() || t.hasattr(intern!(c.py(), "get"))? {
                get_key(&t, intern!(c.py(), "last"))?
            } else {
                return Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                    "'{}' object has no attribute 'get'",
                    type_name(&t)
                )));
            };
            Ok(TickerAnswer::Ticker { last: field(last)? })
        })
    }

    fn get_ohlcv(&self, symbol: &str, timeframe: &str, limit: u32) -> CoreResult<Ohlcv> {
        self.call(|c| {
            let py = c.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "timeframe"), timeframe)?;
            kwargs.set_item(intern!(py, "limit"), limit)?;
            let answer = c.call_method(intern!(py, "get_ohlcv"), (symbol,), Some(&kwargs))?;
            let mut out = Ohlcv::default();
            if answer.is_none() {
                return Ok(out);
            }
            // Only the last MAX_CANDLES rows are read (the manager uses the most recent ones).
            let len = if let Ok(l) = answer.cast::<PyList>() {
                l.len()
            } else if let Ok(t) = answer.cast::<PyTuple>() {
                t.len()
            } else {
                0
            };
            let first = len.saturating_sub(MAX_CANDLES);
            out.skipped = first;
            out.rows.try_reserve_exact(len - first).map_err(|_| {
                pyo3::exceptions::PyMemoryError::new_err(format!(
                    "cannot allocate memory for {} candles",
                    len - first
                ))
            })?;
            let mut read = |i: usize, row: &Bound<'_, PyAny>| -> PyResult<bool> {
                Ok(match candle_row(row)? {
                Some(r) => {
                    out.rows.push(r);
                    true
                }
                None => {
                    out.problem = Some(format!(
                        "candle #{i} is not [timestamp, open, high, low, close, volume] numbers: {}",
                        crate::convert::describe(row)
                    ));
                    out.rows.clear();
                    false
                }
                })
            };
            if let Ok(l) = answer.cast::<PyList>() {
                for i in first..len {
                    // A list the client mutates meanwhile may shrink: stop at its end.
                    let Ok(row) = l.get_item(i) else { break };
                    if !read(i, &row)? {
                        break;
                    }
                }
            } else if let Ok(t) = answer.cast::<PyTuple>() {
                for i in first..len {
                    let Ok(row) = t.get_item(i) else { break };
                    if !read(i, &row)? {
                        break;
                    }
                }
            } else {
                out.problem = Some(format!("expected a list of candles, got {}", type_name(&answer)));
            }
            Ok(out)
        })
    }

    fn close_position(
        &self,
        symbol: &str,
        client_order_id: Option<&str>,
        side: Option<Side>,
        contracts: Option<f64>,
    ) -> CoreResult<bool> {
        self.call_order("close_position", |c| {
            let py = c.py();
            let answer = if client_order_id.is_some() || side.is_some() || contracts.is_some() {
                let kwargs = PyDict::new(py);
                if let Some(id) = client_order_id {
                    kwargs.set_item(intern!(py, "client_order_id"), id)?;
                }
                if let Some(side) = side {
                    kwargs.set_item(intern!(py, "side"), side.as_str())?;
                }
                if let Some(contracts) = contracts {
                    kwargs.set_item(intern!(py, "contracts"), contracts)?;
                }
                c.call_method(intern!(py, "close_position"), (symbol,), Some(&kwargs))?
            } else {
                c.call_method1(intern!(py, "close_position"), (symbol,))?
            };
            answer.is_truthy()
        })
    }

    fn create_market_order(&self, order: &MarketOrder<'_>) -> CoreResult<OrderAnswer> {
        self.call_order("create_market_order", |c| {
            let py = c.py();
            let args = (
                order.symbol,
                order.side.as_str(),
                order.amount,
                int_if_whole(py, order.leverage)?,
            );
            let keywords = order.reduce_only
                || order.client_order_id.is_some()
                || order.position_side.is_some();
            let answer = if keywords {
                let kwargs = PyDict::new(py);
                if order.reduce_only {
                    kwargs.set_item(intern!(py, "reduce_only"), true)?;
                    kwargs.set_item(intern!(py, "is_critical"), true)?;
                }
                if let Some(id) = order.client_order_id {
                    kwargs.set_item(intern!(py, "client_order_id"), id)?;
                }
                if let Some(side) = order.position_side {
                    kwargs.set_item(intern!(py, "position_side"), side.as_str())?;
                }
                c.call_method(intern!(py, "create_market_order"), args, Some(&kwargs))?
            } else {
                c.call_method1(intern!(py, "create_market_order"), args)?
            };
            order_answer(&answer)
        })
    }

    fn create_limit_order(&self, order: &LimitOrder<'_>) -> CoreResult<OrderAnswer> {
        self.call_order("create_limit_order", |c| {
            let py = c.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "post_only"), true)?;
            if let Some(id) = order.client_order_id {
                kwargs.set_item(intern!(py, "client_order_id"), id)?;
            }
            if let Some(side) = order.position_side {
                kwargs.set_item(intern!(py, "position_side"), side.as_str())?;
            }
            let args = (
                order.symbol,
                order.side.as_str(),
                order.amount,
                order.price,
                int_if_whole(py, order.leverage)?,
            );
            let answer = c.call_method(intern!(py, "create_limit_order"), args, Some(&kwargs))?;
            order_answer(&answer)
        })
    }

    fn wait_for_order_fill(
        &self,
        id: &OrderId,
        symbol: &str,
        wait: StatusWait,
    ) -> CoreResult<OrderAnswer> {
        self.call(|c| {
            let py = c.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "timeout"), wait.timeout())?;
            kwargs.set_item(intern!(py, "check_interval"), wait.check_interval())?;
            let answer = c.call_method(
                intern!(py, "wait_for_order_fill"),
                (order_id(py, id)?, symbol),
                Some(&kwargs),
            )?;
            order_answer(&answer)
        })
    }

    fn cancel_order(&self, id: &OrderId, symbol: &str) -> CoreResult<bool> {
        self.call_order("cancel_order", |c| {
            let py = c.py();
            c.call_method1(intern!(py, "cancel_order"), (order_id(py, id)?, symbol))?
                .is_truthy()
        })
    }

    fn get_market_limits(&self, symbol: &str) -> CoreResult<Option<MarketLimits>> {
        self.call(|c| {
            let answer = c.call_method1(intern!(c.py(), "get_market_limits"), (symbol,))?;
            market_limits(&answer)
        })
    }

    fn get_tickers(&self, symbols: &[&str]) -> Option<CoreResult<Vec<BatchTicker>>> {
        if !self.current.read().batch_tickers {
            return None;
        }
        Some(self.call(|c| {
            let py = c.py();
            let asked = PyList::new(py, symbols)?;
            let answer = c.call_method1(intern!(py, "get_tickers"), (asked,))?;
            if !is_mapping(&answer) {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "get_tickers answered {}, not a dict of tickers",
                    crate::convert::describe(&answer)
                )));
            }
            symbols.iter().map(|s| batch_entry(&answer, s)).collect()
        }))
    }

    fn watches_symbols(&self) -> bool {
        self.current.read().watches_symbols
    }

    fn watch_symbols(&self, symbols: &[&str]) -> CoreResult<()> {
        if !self.watches_symbols() {
            return Ok(());
        }
        self.call(|c| {
            let py = c.py();
            let told = PyList::new(py, symbols)?;
            c.call_method1(intern!(py, "watch_symbols"), (told,))?;
            Ok(())
        })
    }

    fn check_interrupt(&self) -> CoreResult<()> {
        crate::logging::attach_clean(crate::logging::interruption)
    }

    fn client_order_ids(&self) -> bool {
        self.current.read().client_order_ids
    }

    fn position_legs(&self) -> bool {
        self.current.read().position_legs
    }

    fn sized_closes(&self) -> bool {
        self.current.read().sized_closes
    }

    fn get_order_by_client_id(
        &self,
        client_order_id: &str,
        symbol: &str,
    ) -> CoreResult<OrderLookup> {
        self.call(|c| {
            let answer = c.call_method1(
                intern!(c.py(), "get_order_by_client_id"),
                (client_order_id, symbol),
            )?;
            if answer.is_none() {
                return Ok(OrderLookup::NotFound);
            }
            Ok(match order_answer(&answer)? {
                OrderAnswer::Report(report) => OrderLookup::Found(report),
                OrderAnswer::Missing => OrderLookup::Unreadable(type_name(&answer)),
                OrderAnswer::Opaque(kind) => OrderLookup::Unreadable(kind),
            })
        })
    }

    fn pause(&self, seconds: f64) -> CoreResult<()> {
        crate::logging::interruptible_pause(seconds)
    }
}
