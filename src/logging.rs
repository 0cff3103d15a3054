//! Records of the core go to Python's `logging` through pyo3-log.
//!
//! pyo3-log caches loggers and their levels; a logging configuration made after import (pytest's
//! `caplog`, a notebook) would not be seen. So the cache is reset at the start of every public
//! manager call ([`refresh`]), which costs one level lookup per logger per call.

use std::sync::OnceLock;

use log::LevelFilter;
use pyo3::prelude::*;

use position_manager_core::manager::Channel;

use crate::manager::CoreManager;

static RESET: OnceLock<pyo3_log::ResetHandle> = OnceLock::new();

/// Installs the bridge once per process (another extension may have installed a `log` logger
/// already; then our records go there and nothing is reset).
pub fn install(py: Python<'_>) -> PyResult<()> {
    if RESET.get().is_some() {
        return Ok(());
    }
    let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels)?
        .filter(log::LevelFilter::Debug);
    if let Ok(handle) = logger.install() {
        let _ = RESET.set(handle);
    }
    Ok(())
}

/// Forgets cached loggers and levels, so the current Python logging configuration applies.
pub fn refresh() {
    if let Some(handle) = RESET.get() {
        handle.reset();
    }
}

/// The manager's three Python loggers, looked up once at construction.
pub struct PyLoggers {
    /// `TradingBot` (or the configured name).
    pub main: Py<PyAny>,
    /// `TradingBot.Position`.
    pub position: Py<PyAny>,
    /// `TradingBot.Order`.
    pub order: Py<PyAny>,
}

impl PyLoggers {
    /// `logging.getLogger(name)` for each of the core's logger names.
    pub fn new(py: Python<'_>, core: &CoreManager) -> PyResult<Self> {
        let logging = py.import(pyo3::intern!(py, "logging"))?;
        let names = &core.config().loggers;
        let get = |name: &str| -> PyResult<Py<PyAny>> {
            Ok(logging
                .call_method1(pyo3::intern!(py, "getLogger"), (name,))?
                .unbind())
        };
        Ok(PyLoggers {
            main: get(&names.main)?,
            position: get(&names.position)?,
            order: get(&names.order)?,
        })
    }
}

/// [`refresh`], then reads which levels the manager's three loggers emit right now
/// (`Logger.isEnabledFor`, so `logging.disable` and handler-less parents count) into the core's
/// level gates. A record below its gate then costs one atomic load.
pub fn refresh_for(py: Python<'_>, core: &CoreManager, loggers: &PyLoggers) {
    refresh();
    for (channel, logger) in [
        (Channel::Main, &loggers.main),
        (Channel::Position, &loggers.position),
        (Channel::Order, &loggers.order),
    ] {
        let filter = most_verbose_enabled(logger.bind(py)).unwrap_or(LevelFilter::Trace);
        core.level_gates().set(channel, filter);
    }
}

fn most_verbose_enabled(logger: &Bound<'_, PyAny>) -> PyResult<LevelFilter> {
    for (python_level, filter) in [
        (10, LevelFilter::Debug),
        (20, LevelFilter::Info),
        (30, LevelFilter::Warn),
        (40, LevelFilter::Error),
    ] {
        if logger
            .call_method1(pyo3::intern!(logger.py(), "isEnabledFor"), (python_level,))?
            .is_truthy()?
        {
            return Ok(filter);
        }
    }
    Ok(LevelFilter::Off)
}

/// Re-reads Python's logging configuration (levels, handlers) for this package's records.
///
/// Every `PositionManager` call already does this; call it after changing logging levels if you
/// use `Position` methods or other objects without a manager call in between.
#[pyfunction]
pub fn refresh_logging() {
    refresh();
}

/// Attaches to the interpreter for a call from the core. A logging handler that raised earlier
/// in this detached run leaves its exception pending (pyo3-log restores it); it is reported as
/// unraisable first, so it cannot make the next Python call fail.
pub fn attach_clean<T>(f: impl for<'py> FnOnce(Python<'py>) -> T) -> T {
    Python::attach(|py| {
        if let Some(err) = PyErr::take(py) {
            err.write_unraisable(py, None);
        }
        f(py)
    })
}

/// Runs `f` detached from the interpreter, then clears any exception a logging handler left
/// behind (pyo3-log restores handler errors as the pending exception) by reporting it as
/// unraisable, so a faulty handler never breaks a manager call.
pub fn detached<T, F>(py: Python<'_>, f: F) -> T
where
    F: pyo3::marker::Ungil + FnOnce() -> T,
    T: pyo3::marker::Ungil,
{
    let out = py.detach(f);
    if let Some(err) = PyErr::take(py) {
        err.write_unraisable(py, None);
    }
    out
}
