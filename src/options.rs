//! The `PositionManager` options: read from the constructor's arguments with errors that name the
//! option and the value, and shown back as `manager.config` (a read-only `ManagerConfig`).
//!
//! Types are checked here (an int option takes an `int` or an object with `__index__`, never a
//! `bool`; a number option takes an int or a float, never a `bool` or a `str`), ranges by the
//! core ([`ManagerConfig::validate`]), so the same bounds hold for Rust callers.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

use position_manager_core::manager::config::{MAX_CONCURRENT_CALLS, MAX_TICKER_RETRIES};
use position_manager_core::manager::{Loggers, ManagerConfig};
use position_manager_core::reconcile::Mode;

use crate::convert::{describe, number};
use crate::errors::PmError;

/// An int argument: an `int` (or an object with `__index__`, such as a numpy integer), never a
/// `bool`; `TypeError` naming `name` otherwise, `ValueError` when it is outside `min..=max`.
pub fn int_arg(name: &str, value: &Bound<'_, PyAny>, min: i64, max: i64) -> PyResult<i64> {
    let range = || {
        PyValueError::new_err(format!(
            "{name} must be an int from {min} to {max}, got {}",
            describe(value)
        ))
    };
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, not a bool, got {}",
            describe(value)
        )));
    }
    let index = if value.is_instance_of::<PyInt>() {
        value.clone()
    } else if !value.is_instance_of::<PyFloat>() && value.hasattr("__index__").unwrap_or(false) {
        value
            .py()
            .import("operator")?
            .call_method1("index", (value,))?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {}",
            describe(value)
        )));
    };
    match index.extract::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(range()),
    }
}

/// A count option (`event_history`, `tombstone_limit`): an int from 0 to the core's maximum.
fn count_arg(name: &str, value: Option<&Bound<'_, PyAny>>, default: usize) -> PyResult<usize> {
    let Some(v) = value else {
        return Ok(default);
    };
    let max = position_manager_core::manager::config::MAX_COUNT;
    let n = int_arg(name, v, 0, i64::try_from(max).unwrap_or(i64::MAX))?;
    usize::try_from(n).map_err(|_| PyValueError::new_err(format!("{name} is out of range")))
}

/// A real-number option (a `bool` is refused by [`number`]); the core checks its range.
fn number_arg(name: &str, value: Option<&Bound<'_, PyAny>>, default: f64) -> PyResult<f64> {
    match value {
        None => Ok(default),
        Some(v) => number(name, v),
    }
}

/// A logger-name option: a `str` the logging module can use as it is.
fn name_arg(name: &str, value: Option<&Bound<'_, PyAny>>, default: &str) -> PyResult<String> {
    let Some(v) = value else {
        return Ok(default.to_owned());
    };
    let s = v
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a str, got {}", describe(v))))?;
    s.extract::<String>().map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a str without lone surrogates, got {}",
            describe(v)
        ))
    })
}

/// `ticker_retry_delays`: an iterable (not a `str`) of at most [`MAX_TICKER_RETRIES`] numbers.
fn delays_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<f64>> {
    let Some(value) = value else {
        return Ok(vec![0.5, 1.0]);
    };
    let not_a_sequence = || {
        PyTypeError::new_err(format!(
            "ticker_retry_delays must be a sequence of numbers, got {}",
            describe(value)
        ))
    };
    if value.is_instance_of::<PyString>() || value.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(not_a_sequence());
    }
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| not_a_sequence())? {
        if out.len() == MAX_TICKER_RETRIES {
            return Err(PyValueError::new_err(format!(
                "ticker_retry_delays may hold at most {MAX_TICKER_RETRIES} pauses, got more"
            )));
        }
        out.push(number("ticker_retry_delays item", &item?)?);
    }
    Ok(out)
}

/// An option argument as the caller passed it; [`Opt::Default`] when it was not passed (so an
/// explicit `None` can be told apart from a missing argument).
pub enum Opt<'py> {
    /// Not passed.
    Default,
    /// Passed, `None` included.
    Given(Bound<'py, PyAny>),
}

impl<'py> Opt<'py> {
    /// The value when one was passed.
    pub fn given(&self) -> Option<&Bound<'py, PyAny>> {
        match self {
            Opt::Default => None,
            Opt::Given(v) => Some(v),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Opt<'py> {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Opt::Given(obj.to_owned()))
    }
}

/// The constructor's options as passed (None: not given).
pub struct RawOptions<'a, 'py> {
    pub trailing_stop_percentage: Option<&'a Bound<'py, PyAny>>,
    pub missing_confirmations: Option<&'a Bound<'py, PyAny>>,
    pub ticker_retry_delays: Option<&'a Bound<'py, PyAny>>,
    pub snapshot_reuse_seconds: Option<&'a Bound<'py, PyAny>>,
    pub max_concurrent_calls: Option<&'a Bound<'py, PyAny>>,
    pub logger_name: Option<&'a Bound<'py, PyAny>>,
    pub position_logger_name: Option<&'a Bound<'py, PyAny>>,
    pub order_logger_name: Option<&'a Bound<'py, PyAny>>,
    pub event_history: Option<&'a Bound<'py, PyAny>>,
    pub tombstone_limit: Option<&'a Bound<'py, PyAny>>,
    pub missing_grace_seconds: Option<&'a Bound<'py, PyAny>>,
    pub tombstone_ttl_seconds: Option<&'a Bound<'py, PyAny>>,
    pub history_points: Option<&'a Bound<'py, PyAny>>,
    pub position_mode: Option<&'a Bound<'py, PyAny>>,
    pub reopen_hold_seconds: Option<&'a Bound<'py, PyAny>>,
    pub outcome_confirmations: Option<&'a Bound<'py, PyAny>>,
    pub outcome_grace_seconds: Option<&'a Bound<'py, PyAny>>,
}

/// `position_mode`: `'oneway'` (the default, the original's) or `'hedge'`.
fn mode_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Mode> {
    let Some(v) = value else {
        return Ok(Mode::OneWay);
    };
    let text: Option<String> = v.cast::<PyString>().ok().and_then(|s| s.extract().ok());
    match text.as_deref() {
        Some("oneway") => Ok(Mode::OneWay),
        Some("hedge") => Ok(Mode::Hedge),
        Some(_) => Err(PyValueError::new_err(format!(
            "position_mode must be 'oneway' or 'hedge', got {}",
            describe(v)
        ))),
        None => Err(PyTypeError::new_err(format!(
            "position_mode must be a str ('oneway' or 'hedge'), got {}",
            describe(v)
        ))),
    }
}

impl RawOptions<'_, '_> {
    /// The core's settings: types checked here, ranges by [`ManagerConfig::validate`].
    pub fn config(&self) -> PyResult<ManagerConfig> {
        let defaults = ManagerConfig::default();
        let confirmations = |name: &str, value: Option<&Bound<'_, PyAny>>, default: u32| {
            let Some(v) = value else {
                return Ok(default);
            };
            let max = position_manager_core::manager::config::MAX_CONFIRMATIONS;
            let n = int_arg(name, v, 1, i64::from(max))?;
            PyResult::Ok(u32::try_from(n).unwrap_or(max))
        };
        let missing_confirmations = confirmations(
            "missing_confirmations",
            self.missing_confirmations,
            defaults.missing_confirmations,
        )?;
        // None (or inf, as before) keeps tombstones until the size limit evicts them.
        let ttl = match self.tombstone_ttl_seconds {
            Some(v) if v.is_none() => f64::INFINITY,
            other => number_arg(
                "tombstone_ttl_seconds",
                other,
                defaults.tombstone_ttl_seconds,
            )?,
        };
        let config = ManagerConfig {
            trailing_stop_percentage: number_arg(
                "trailing_stop_percentage",
                self.trailing_stop_percentage.filter(|v| !v.is_none()),
                defaults.trailing_stop_percentage,
            )?,
            missing_confirmations,
            ticker_retry_delays: delays_arg(self.ticker_retry_delays)?,
            snapshot_reuse_seconds: number_arg(
                "snapshot_reuse_seconds",
                self.snapshot_reuse_seconds,
                defaults.snapshot_reuse_seconds,
            )?,
            loggers: Loggers {
                main: name_arg("logger_name", self.logger_name, &defaults.loggers.main)?,
                position: name_arg(
                    "position_logger_name",
                    self.position_logger_name,
                    &defaults.loggers.position,
                )?,
                order: name_arg(
                    "order_logger_name",
                    self.order_logger_name,
                    &defaults.loggers.order,
                )?,
            },
            event_capacity: count_arg(
                "event_history",
                self.event_history,
                defaults.event_capacity,
            )?,
            tombstone_limit: count_arg(
                "tombstone_limit",
                self.tombstone_limit,
                defaults.tombstone_limit,
            )?,
            missing_grace_seconds: number_arg(
                "missing_grace_seconds",
                self.missing_grace_seconds,
                defaults.missing_grace_seconds,
            )?,
            tombstone_ttl_seconds: ttl,
            position_mode: mode_arg(self.position_mode)?,
            max_concurrent_calls: match self.max_concurrent_calls {
                None => defaults.max_concurrent_calls,
                Some(v) => {
                    let max = i64::try_from(MAX_CONCURRENT_CALLS).unwrap_or(i64::MAX);
                    let n = int_arg("max_concurrent_calls", v, 1, max)?;
                    usize::try_from(n).unwrap_or(1)
                }
            },
            history_points: match self.history_points {
                None => defaults.history_points,
                Some(v) => {
                    let max = position_manager_core::manager::config::MAX_HISTORY_POINTS;
                    let n = int_arg(
                        "history_points",
                        v,
                        1,
                        i64::try_from(max).unwrap_or(i64::MAX),
                    )?;
                    usize::try_from(n).unwrap_or(max)
                }
            },
            reopen_hold_seconds: number_arg(
                "reopen_hold_seconds",
                self.reopen_hold_seconds,
                defaults.reopen_hold_seconds,
            )?,
            outcome_confirmations: confirmations(
                "outcome_confirmations",
                self.outcome_confirmations,
                defaults.outcome_confirmations,
            )?,
            outcome_grace_seconds: number_arg(
                "outcome_grace_seconds",
                self.outcome_grace_seconds,
                defaults.outcome_grace_seconds,
            )?,
        };
        config.validate().map_err(PmError)?;
        Ok(config)
    }
}

/// The options a `PositionManager` was built with (`manager.config`), read-only.
///
/// Attributes: `trailing_stop_percentage` (as given; the manager's current value is
/// `manager.trailing_stop_percentage`), `missing_confirmations`, `ticker_retry_delays` (a
/// tuple), `snapshot_reuse_seconds`, `max_concurrent_calls`, `logger_name`, `position_logger_name`,
/// `order_logger_name`, `event_history`, `tombstone_limit`, `missing_grace_seconds`,
/// `tombstone_ttl_seconds` (None: no expiry), `history_points`, `position_mode`,
/// `reopen_hold_seconds`, `outcome_confirmations`, `outcome_grace_seconds`. `to_dict()`
/// gives them as a dict, so
/// `PositionManager(client, **manager.config.to_dict())` builds a manager with the same options.
/// The client and the exit-rule objects are the manager's own attributes.
#[pyclass(name = "ManagerConfig", module = "position_manager_rs", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyManagerConfig {
    config: ManagerConfig,
}

impl PyManagerConfig {
    /// The Python view of the core's settings.
    pub fn new(config: ManagerConfig) -> Self {
        PyManagerConfig { config }
    }
}

#[pymethods]
impl PyManagerConfig {
    /// Base trailing-stop distance the manager was built with (fraction of price).
    #[getter]
    fn trailing_stop_percentage(&self) -> f64 {
        self.config.trailing_stop_percentage
    }
    /// Consecutive successful position lists without a position before it is removed.
    #[getter]
    fn missing_confirmations(&self) -> u32 {
        self.config.missing_confirmations
    }
    /// Pauses (seconds) between ticker attempts in the update cycle.
    #[getter]
    fn ticker_retry_delays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.config.ticker_retry_delays)
    }
    /// Age (seconds) up to which a close inside a cycle reuses the cycle's position list.
    #[getter]
    fn snapshot_reuse_seconds(&self) -> f64 {
        self.config.snapshot_reuse_seconds
    }
    /// Reads of an update cycle (candles, un-batched tickers) in flight at once.
    #[getter]
    fn max_concurrent_calls(&self) -> usize {
        self.config.max_concurrent_calls
    }
    /// The main logger's name.
    #[getter]
    fn logger_name(&self) -> &str {
        &self.config.loggers.main
    }
    /// The position logger's name.
    #[getter]
    fn position_logger_name(&self) -> &str {
        &self.config.loggers.position
    }
    /// The order logger's name.
    #[getter]
    fn order_logger_name(&self) -> &str {
        &self.config.loggers.order
    }
    /// Events kept in `manager.events`.
    #[getter]
    fn event_history(&self) -> usize {
        self.config.event_capacity
    }
    /// Removed positions kept for restoration.
    #[getter]
    fn tombstone_limit(&self) -> usize {
        self.config.tombstone_limit
    }
    /// Seconds a position must have been missing, at least, before it is removed.
    #[getter]
    fn missing_grace_seconds(&self) -> f64 {
        self.config.missing_grace_seconds
    }
    /// Seconds a removed position stays restorable; None: until `tombstone_limit` evicts it.
    #[getter]
    fn tombstone_ttl_seconds(&self) -> Option<f64> {
        let t = self.config.tombstone_ttl_seconds;
        t.is_finite().then_some(t)
    }
    /// Price-history points each position keeps (`position.history`): its last updates.
    #[getter]
    fn history_points(&self) -> usize {
        self.config.history_points
    }
    /// Seconds `open_position` refuses a key that a list showing no position untracked, while
    /// the lists still show none (0: never).
    #[getter]
    fn reopen_hold_seconds(&self) -> f64 {
        self.config.reopen_hold_seconds
    }
    /// Lists in a row that must show an order whose answer was lost did nothing before it is
    /// taken as not executed (and omit a position the manager's own open filled, until one
    /// shows it, before it is removed).
    #[getter]
    fn outcome_confirmations(&self) -> u32 {
        self.config.outcome_confirmations
    }
    /// Seconds, at least, between the first of those lists and the deciding one.
    #[getter]
    fn outcome_grace_seconds(&self) -> f64 {
        self.config.outcome_grace_seconds
    }
    /// `'oneway'` (one position per symbol) or `'hedge'` (a long and a short leg per symbol).
    #[getter]
    fn position_mode(&self) -> &'static str {
        match self.config.position_mode {
            Mode::OneWay => "oneway",
            Mode::Hedge => "hedge",
        }
    }

    /// The options as a dict of keyword arguments for `PositionManager`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("trailing_stop_percentage", self.trailing_stop_percentage())?;
        d.set_item("missing_confirmations", self.missing_confirmations())?;
        d.set_item("ticker_retry_delays", self.ticker_retry_delays(py)?)?;
        d.set_item("snapshot_reuse_seconds", self.snapshot_reuse_seconds())?;
        d.set_item("max_concurrent_calls", self.max_concurrent_calls())?;
        d.set_item("logger_name", self.logger_name())?;
        d.set_item("position_logger_name", self.position_logger_name())?;
        d.set_item("order_logger_name", self.order_logger_name())?;
        d.set_item("event_history", self.event_history())?;
        d.set_item("tombstone_limit", self.tombstone_limit())?;
        d.set_item("missing_grace_seconds", self.missing_grace_seconds())?;
        d.set_item("tombstone_ttl_seconds", self.tombstone_ttl_seconds())?;
        d.set_item("history_points", self.history_points())?;
        d.set_item("position_mode", self.position_mode())?;
        d.set_item("reopen_hold_seconds", self.reopen_hold_seconds())?;
        d.set_item("outcome_confirmations", self.outcome_confirmations())?;
        d.set_item("outcome_grace_seconds", self.outcome_grace_seconds())?;
        Ok(d)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let items = slf.get().to_dict(slf.py())?;
        let mut parts = Vec::new();
        for (k, v) in items.iter() {
            parts.push(format!("{}={}", k.str()?, v.repr()?));
        }
        Ok(format!("ManagerConfig({})", parts.join(", ")))
    }
}
