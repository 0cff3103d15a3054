//! Conversions between Python values and core types, and argument checking.

use chrono::{DateTime, NaiveDateTime};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

use position_manager_core::clock::Timestamp;
use position_manager_core::exchange::Field;
use position_manager_core::levels::{Level, SupportResistance};

/// A naive `datetime` for a timestamp.
pub fn to_datetime(t: Timestamp) -> PyResult<NaiveDateTime> {
    DateTime::from_timestamp_micros(t.0)
        .map(|d| d.naive_utc())
        .ok_or_else(|| PyValueError::new_err(format!("timestamp out of range: {}", t.0)))
}

/// A timestamp from a naive `datetime` argument named `name`.
pub fn from_datetime(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Timestamp> {
    let dt: NaiveDateTime = value.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a naive datetime (no tzinfo), got {}",
            describe(value)
        ))
    })?;
    Ok(Timestamp(dt.and_utc().timestamp_micros()))
}

/// The longest repr an error message shows (a longer one is cut, with `...`).
const REPR_MAX: usize = 200;

/// `repr(value)` (at most [`REPR_MAX`] characters) and its type, for error messages.
pub fn describe(value: &Bound<'_, PyAny>) -> String {
    described(value.repr().map(|r| r.to_string()).ok(), value)
}

/// [`describe`] for a value a user's code returned, where the text goes into a warning rather
/// than an exception: an interrupt, an exit or a `MemoryError` raised by its `repr()` leaves as
/// it came ([`passes_through`]) instead of printing as `<unprintable>`.
pub fn describe_checked(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let repr = unless_passing(value.py(), value.repr().map(|r| r.to_string()))?;
    Ok(described(repr, value))
}

/// [`describe`]'s text from a repr (`None`: it could not be read).
fn described(repr: Option<String>, value: &Bound<'_, PyAny>) -> String {
    let mut repr = repr.unwrap_or_else(|| "<unprintable>".to_owned());
    if let Some((cut, _)) = repr.char_indices().nth(REPR_MAX) {
        repr.truncate(cut);
        repr.push_str("...");
    }
    let ty = type_name(value);
    format!("{repr} ({ty})")
}

/// `type(value).__name__`.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// Whether a Python exception met while reading a value must leave as it came rather than mark
/// the value unreadable: an interrupt or an exit is no `Exception` (DESIGN rule 8), and a
/// `MemoryError` is the process's problem, not the value's.
pub fn passes_through(py: Python<'_>, e: &PyErr) -> bool {
    !e.is_instance_of::<pyo3::exceptions::PyException>(py)
        || e.is_instance_of::<pyo3::exceptions::PyMemoryError>(py)
}

/// `Ok(None)` for an exception that only makes a value unreadable, `Err` for one that must pass
/// through ([`passes_through`]).
pub fn unless_passing<T>(py: Python<'_>, r: PyResult<T>) -> PyResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if passes_through(py, &e) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Whether `value` is numpy's bool (`numpy.True_`): it has `__float__`, so it would pass for
/// the number 1 where a `bool` is refused (an order of one contract was sent for
/// `amount=numpy.True_`; found by an audit on 2026-12-06). Read by type name and module, so
/// numpy is not imported.
fn is_numpy_bool(value: &Bound<'_, PyAny>) -> bool {
    let kind = value.get_type();
    let named = kind
        .name()
        .is_ok_and(|n| matches!(n.to_string_lossy().as_ref(), "bool" | "bool_"));
    named && kind.module().is_ok_and(|m| m.to_string_lossy() == "numpy")
}

/// A real-number argument: int, float, or anything with `__float__` except strings and bools
/// (`True` is no number of contracts or seconds). An int too large for a float is a
/// `ValueError` naming the argument.
pub fn number(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(f.value());
    }
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number, not a bool, got {}",
            describe(value)
        )));
    }
    if value.is_instance_of::<PyInt>() {
        return value.extract::<f64>().map_err(|_| {
            PyValueError::new_err(format!(
                "{name} is too large to be a float, got {}",
                describe(value)
            ))
        });
    }
    if is_numpy_bool(value) {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number, not a bool, got {}",
            describe(value)
        )));
    }
    let py = value.py();
    if !value.is_instance_of::<PyString>()
        && unless_passing(py, value.hasattr("__float__"))?.unwrap_or(false)
    {
        // An interrupt (or MemoryError) inside __float__ leaves as it came.
        let read = value
            .call_method0("__float__")
            .and_then(|f| f.extract::<f64>());
        if let Some(x) = unless_passing(py, read)? {
            return Ok(x);
        }
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a number, got {}",
        describe(value)
    )))
}

/// A number argument that must be finite (`ValueError` naming it otherwise).
pub fn finite(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let v = number(name, value)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a finite number, got {}",
            describe(value)
        )))
    }
}

/// [`finite`] for an optional keyword argument with the original's default.
pub fn finite_or(name: &str, value: Option<&Bound<'_, PyAny>>, default: f64) -> PyResult<f64> {
    match value {
        None => Ok(default),
        Some(v) => finite(name, v),
    }
}

/// A number argument that must be finite and > 0.
pub fn positive_arg(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let v = number(name, value)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a finite number > 0, got {}",
            describe(value)
        )))
    }
}

/// A price argument that must be finite and >= 0.
pub fn price_arg(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let v = number(name, value)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a finite number >= 0, got {}",
            describe(value)
        )))
    }
}

/// A side argument: exactly 'long' or 'short' (the original read anything else as a short,
/// which inverts the P/L of e.g. 'LONG').
pub fn side_arg(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = text(name, value)?;
    if s == "long" || s == "short" {
        Ok(s)
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be 'long' or 'short', got {}",
            describe(value)
        )))
    }
}

/// A `str` argument named `name`.
/// A lone surrogate (which Rust strings cannot hold) is a `ValueError`, never silently replaced.
pub fn text(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = value.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("{name} must be a str, got {}", describe(value)))
    })?;
    s.extract::<String>().map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a str without lone surrogates, got {}",
            describe(value)
        ))
    })
}

/// An optional keyword argument with the original's default: absent → `default`, else a number.
pub fn number_or(name: &str, value: Option<&Bound<'_, PyAny>>, default: f64) -> PyResult<f64> {
    match value {
        None => Ok(default),
        Some(v) => number(name, v),
    }
}

/// A flag argument read by truthiness, as the original's `if include_fees:`.
pub fn truthy(value: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    match value {
        None => Ok(false),
        Some(v) => v.is_truthy(),
    }
}

/// An optional real-number argument (`None` allowed).
pub fn opt_number(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if value.is_none() {
        Ok(None)
    } else {
        number(name, value).map(Some)
    }
}

/// A Python number for a float that prints like the original's int when it is whole and was
/// meant as an int (leverage).
pub fn int_if_whole(py: Python<'_>, x: f64) -> PyResult<Py<PyAny>> {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 {
        Ok((x as i64).into_pyobject(py)?.into_any().unbind())
    } else {
        Ok(PyFloat::new(py, x).into_any().unbind())
    }
}

/// One value of a client answer as a [`Field`]. A value that cannot be read is
/// [`Field::Other`]; an interrupt, an exit or a `MemoryError` raised while reading it (inside a
/// number type's `__float__`, say) leaves as it came ([`passes_through`]).
pub fn field(value: Option<Bound<'_, PyAny>>) -> PyResult<Field> {
    let Some(v) = value else {
        return Ok(Field::Absent);
    };
    if v.is_none() {
        return Ok(Field::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Field::Bool(b.is_true()));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Field::Number(f.value()));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(match v.extract::<i64>() {
            Ok(i) => Field::Int(i),
            Err(_) => Field::Number(v.extract::<f64>().unwrap_or(f64::NAN)),
        });
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Field::Text(s.to_string_lossy().into_owned()));
    }
    let py = v.py();
    // numpy scalars and the like.
    let has = |name: &str| -> PyResult<bool> {
        Ok(unless_passing(py, v.hasattr(name))?.unwrap_or(false))
    };
    if has("__float__")? && !has("__getitem__")? {
        let read = v.call_method0("__float__").and_then(|f| f.extract::<f64>());
        if let Some(x) = unless_passing(py, read)? {
            return Ok(Field::Number(x));
        }
    }
    let text = unless_passing(py, v.str().map(|s| s.to_string()))?;
    Ok(Field::Other {
        text: text.unwrap_or_else(|| "<unprintable>".to_owned()),
        type_name: type_name(&v),
    })
}

/// `mapping.get(key)` for a dict (fast path) or any object with a `get` method; `None` when the
/// key is missing.
pub fn get_key<'py>(
    mapping: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = mapping.cast::<PyDict>() {
        return d.get_item(key);
    }
    let py = mapping.py();
    let get = mapping.getattr(pyo3::intern!(py, "get")).map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) {
            PyTypeError::new_err(format!(
                "expected a mapping (a dict) to read {:?} from, got {}",
                key.to_string_lossy(),
                describe(mapping)
            ))
        } else {
            e
        }
    })?;
    let missing = pyo3::types::PyTuple::empty(py);
    let v = get.call1((key, &missing))?;
    if v.is(&missing) {
        Ok(None)
    } else {
        Ok(Some(v))
    }
}

/// Whether the object is a dict or a `collections.abc.Mapping`.
pub fn is_mapping(value: &Bound<'_, PyAny>) -> bool {
    if value.is_instance_of::<PyDict>() {
        return true;
    }
    let py = value.py();
    py.import("collections.abc")
        .and_then(|m| m.getattr("Mapping"))
        .and_then(|m| value.is_instance(&m))
        .unwrap_or(false)
}

/// The original's `support_resistance` argument: a falsy value (None, `{}`) is `None`; levels are
/// dicts read with `level['price']` (a missing price raises `KeyError`, as the original).
/// A support/resistance analysis as the original's dict: `{'support': [{'price', 'strength'},
/// ...], 'resistance': [...], 'poc': float | None}`.
pub fn support_resistance_dict<'py>(
    py: Python<'py>,
    levels: &SupportResistance,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    let list = |levels: &[Level]| -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let out = pyo3::types::PyList::empty(py);
        for l in levels {
            let item = pyo3::types::PyDict::new(py);
            item.set_item("price", l.price)?;
            item.set_item("strength", l.strength)?;
            out.append(item)?;
        }
        Ok(out)
    };
    d.set_item("support", list(&levels.support)?)?;
    d.set_item("resistance", list(&levels.resistance)?)?;
    d.set_item("poc", levels.poc)?;
    Ok(d)
}

pub fn support_resistance(value: &Bound<'_, PyAny>) -> PyResult<Option<SupportResistance>> {
    if value.is_none() || !value.is_truthy()? {
        return Ok(None);
    }
    let py = value.py();
    let levels = |key: &Bound<'_, PyString>| -> PyResult<Vec<Level>> {
        let Some(list) = get_key(value, key)? else {
            return Ok(Vec::new());
        };
        if list.is_none() || !list.is_truthy()? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for item in list.try_iter()? {
            let item = item?;
            let price = match get_key(&item, pyo3::intern!(py, "price"))? {
                Some(p) => number("support_resistance level price", &p)?,
                None => return Err(PyKeyError::new_err("price")),
            };
            let strength = match get_key(&item, pyo3::intern!(py, "strength"))? {
                Some(s) if !s.is_none() => number("support_resistance level strength", &s)?,
                _ => 0.0,
            };
            out.push(Level { price, strength });
        }
        Ok(out)
    };
    let poc = match get_key(value, pyo3::intern!(py, "poc"))? {
        Some(p) if !p.is_none() => Some(number("support_resistance poc", &p)?),
        _ => None,
    };
    Ok(Some(SupportResistance {
        support: levels(pyo3::intern!(py, "support"))?,
        resistance: levels(pyo3::intern!(py, "resistance"))?,
        poc,
    }))
}

/// A tuple `(bool, str)`.
pub fn bool_str(py: Python<'_>, b: bool, s: &str) -> PyResult<Py<PyTuple>> {
    Ok(PyTuple::new(
        py,
        [
            b.into_pyobject(py)?.to_owned().into_any(),
            PyString::new(py, s).into_any(),
        ],
    )?
    .unbind())
}
