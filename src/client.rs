//! `PyClient`: the core's `Exchange` trait over the bot's Python client object.
//!
//! Each call attaches to the interpreter, calls the client with the original's call shape and
//! converts the answer defensively: anything unexpected becomes a typed value or an error, never
//! a panic. An exception the client raises becomes `CoreError::Exchange` with its type name and
//! message, which is how the original reports it.

use std::sync::Arc;

use parking_lot::RwLock;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use position_manager_core::error::{CoreError, CoreResult};
use position_manager_core::exchange::{Exchange, Ohlcv, RawEntry, RawPosition, TickerAnswer};

use crate::convert::{field, get_key, is_mapping, type_name};

/// The bot's client object; replaceable (`manager.client = other`).
pub struct PyClient {
    client: RwLock<Arc<Py<PyAny>>>,
}

impl PyClient {
    /// Wraps the client.
    pub fn new(client: Py<PyAny>) -> Self {
        PyClient {
            client: RwLock::new(Arc::new(client)),
        }
    }

    /// The current client object.
    pub fn get(&self) -> Arc<Py<PyAny>> {
        self.client.read().clone()
    }

    /// Replaces the client object.
    pub fn set(&self, client: Py<PyAny>) {
        let old = std::mem::replace(&mut *self.client.write(), Arc::new(client));
        drop(old);
    }

    fn call<T>(&self, f: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T>) -> CoreResult<T> {
        // Copy the reference out first: the lock is never held while Python runs.
        let client = self.get();
        crate::logging::attach_clean(|py| f(client.bind(py)).map_err(|e| exchange_error(py, &e)))
    }
}

/// A Python exception as the core's exchange error (`type(e).__name__`, `str(e)`).
pub fn exchange_error(py: Python<'_>, e: &PyErr) -> CoreError {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_owned());
    let message = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
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
        Some(i) if is_mapping(&i) => field(get_key(&i, intern!(py, "realLeverage"))?),
        _ => position_manager_core::exchange::Field::Absent,
    };
    Ok(RawEntry::Position(Box::new(RawPosition {
        symbol: field(get_key(item, intern!(py, "symbol"))?),
        contracts: field(get_key(item, intern!(py, "contracts"))?),
        side: field(get_key(item, intern!(py, "side"))?),
        entry_price: field(get_key(item, intern!(py, "entryPrice"))?),
        leverage: field(get_key(item, intern!(py, "leverage"))?),
        real_leverage,
        contract_size: field(get_key(item, intern!(py, "contractSize"))?),
        liquidation_price: field(get_key(item, intern!(py, "liquidationPrice"))?),
        mark_price: field(get_key(item, intern!(py, "markPrice"))?),
    })))
}

fn candle_row(row: &Bound<'_, PyAny>) -> Option<[f64; 6]> {
    let get = |seq: &Bound<'_, PyAny>, i: usize| -> Option<f64> {
        let v = seq.get_item(i).ok()?;
        if let Ok(f) = v.cast::<pyo3::types::PyFloat>() {
            return Some(f.value());
        }
        if v.is_instance_of::<pyo3::types::PyString>() {
            return None;
        }
        v.extract::<f64>().ok()
    };
    if let Ok(list) = row.cast::<PyList>() {
        if list.len() < 6 {
            return None;
        }
    } else if let Ok(t) = row.cast::<PyTuple>() {
        if t.len() < 6 {
            return None;
        }
    } else {
        return None;
    }
    let mut out = [0.0; 6];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = get(row, i)?;
    }
    Some(out)
}

impl Exchange for PyClient {
    fn get_open_positions(&self) -> CoreResult<Vec<RawEntry>> {
        self.call(|c| {
            let answer = c.call_method0(intern!(c.py(), "get_open_positions"))?;
            // Only a real list (or tuple) is an answer: a None, a Mock or a dict is not, and
            // must never be read as "no positions".
            let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = answer.cast::<PyList>() {
                l.iter().collect()
            } else if let Ok(t) = answer.cast::<PyTuple>() {
                t.iter().collect()
            } else {
                return Err(not_iterable(&answer));
            };
            items.iter().map(raw_position).collect()
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
            Ok(TickerAnswer::Ticker { last: field(last) })
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
            let rows: Vec<Bound<'_, PyAny>> = if let Ok(l) = answer.cast::<PyList>() {
                l.iter().collect()
            } else if let Ok(t) = answer.cast::<PyTuple>() {
                t.iter().collect()
            } else {
                out.problem = Some(format!("expected a list of candles, got {}", type_name(&answer)));
                return Ok(out);
            };
            out.rows.reserve(rows.len());
            for (i, row) in rows.iter().enumerate() {
                match candle_row(row) {
                    Some(r) => out.rows.push(r),
                    None => {
                        out.problem = Some(format!(
                            "candle #{i} is not [timestamp, open, high, low, close, volume] numbers: {}",
                            crate::convert::describe(row)
                        ));
                        out.rows.clear();
                        return Ok(out);
                    }
                }
            }
            Ok(out)
        })
    }

    fn close_position(&self, symbol: &str) -> CoreResult<bool> {
        self.call(|c| {
            c.call_method1(intern!(c.py(), "close_position"), (symbol,))?
                .is_truthy()
        })
    }
}
