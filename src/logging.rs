//! Records of the core go to Python's `logging` through pyo3-log.
//!
//! pyo3-log caches loggers and their levels; a logging configuration made after import (pytest's
//! `caplog`, a notebook) would not be seen. So the cache is reset at the start of every public
//! manager call ([`refresh`]), and the levels the manager's loggers would emit — logger levels
//! and the levels of the handlers the records would reach — are read again into the core's
//! level gates ([`refresh_for`]): a record no handler would emit is never built.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use log::LevelFilter;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use position_manager_core::error::{CoreError, CoreResult, Interrupt};
use position_manager_core::manager::Channel;

use crate::errors::PmError;

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

/// [`refresh`], then reads which levels the manager's three loggers emit right now into the
/// core's level gates: what `Logger.isEnabledFor` lets through (logger levels,
/// `logging.disable`), narrowed to what some handler on the logger's propagation chain would
/// take (handler levels). A record below its gate is never built: it costs one atomic load.
pub fn refresh_for(py: Python<'_>, core: &CoreManager, loggers: &PyLoggers) {
    refresh();
    // The manager's loggers share their parents (`TradingBot.Position` propagates to
    // `TradingBot`): each logger of the chains is read once per refresh.
    let mut chains = Chains::new(py);
    for (channel, logger) in [
        (Channel::Main, &loggers.main),
        (Channel::Position, &loggers.position),
        (Channel::Order, &loggers.order),
    ] {
        let logger = logger.bind(py);
        let enabled = most_verbose_enabled(logger).unwrap_or(LevelFilter::Trace);
        // When the handlers cannot be read for sure, every enabled record is built, as before.
        let filter = match chains.as_mut().map(|c| c.handled_levels(logger)) {
            Ok(Ok(Some(handled))) => enabled.min(handled),
            _ => enabled,
        };
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

/// What one refresh has read of Python's logging: the `logging` module, its `Logger` class, and
/// the lowest handler level of each logger's propagation chain read so far.
struct Chains<'py> {
    logging: Bound<'py, PyModule>,
    base: Bound<'py, PyAny>,
    /// (logger, the lowest handler level on it and its propagation chain; `None`: no handler)
    seen: Vec<(Bound<'py, PyAny>, Option<i64>)>,
}

impl<'py> Chains<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let logging = py.import(pyo3::intern!(py, "logging"))?;
        let base = logging.getattr(pyo3::intern!(py, "Logger"))?;
        Ok(Chains {
            logging,
            base,
            seen: Vec::new(),
        })
    }

    /// The most verbose level some handler would emit for a record of `logger`, as
    /// `Logger.callHandlers` decides: the lowest handler level on the logger and on its parents
    /// up to the first with `propagate` false; `logging.lastResort`'s level when there is no
    /// handler at all. `None` when that is not the whole story: the logger has filters (they
    /// see every enabled record and may change it), its class handles records its own way, or
    /// there is no handler and no `lastResort`.
    fn handled_levels(&mut self, logger: &Bound<'py, PyAny>) -> PyResult<Option<LevelFilter>> {
        let py = logger.py();
        let class = logger.get_type();
        if !class.is(&self.base) {
            for method in [
                pyo3::intern!(py, "handle"),
                pyo3::intern!(py, "callHandlers"),
            ] {
                if !class.getattr(method)?.is(&self.base.getattr(method)?) {
                    return Ok(None);
                }
            }
        }
        if logger.getattr(pyo3::intern!(py, "filters"))?.is_truthy()? {
            return Ok(None);
        }
        let lowest = match self.chain_lowest(logger)? {
            Some(level) => level,
            None => {
                let last_resort = self.logging.getattr(pyo3::intern!(py, "lastResort"))?;
                if last_resort.is_none() {
                    return Ok(None);
                }
                last_resort.getattr(pyo3::intern!(py, "level"))?.extract()?
            }
        };
        // A record at Python level `p` is emitted when `p >= lowest`.
        Ok(Some(match lowest {
            l if l <= 5 => LevelFilter::Trace,
            l if l <= 10 => LevelFilter::Debug,
            l if l <= 20 => LevelFilter::Info,
            l if l <= 30 => LevelFilter::Warn,
            l if l <= 40 => LevelFilter::Error,
            _ => LevelFilter::Off,
        }))
    }

    /// The lowest handler level on `logger` and, while `propagate` holds, its parents (`None`:
    /// no handler on the chain). Each logger is read once: a chain met again is remembered.
    fn chain_lowest(&mut self, logger: &Bound<'py, PyAny>) -> PyResult<Option<i64>> {
        let py = logger.py();
        let mut walked: Vec<(Bound<'py, PyAny>, Option<i64>)> = Vec::new();
        let mut current = logger.clone();
        let mut rest: Option<i64> = None;
        loop {
            if let Some((_, known)) = self.seen.iter().find(|(l, _)| l.is(&current)) {
                rest = *known;
                break;
            }
            let mut own: Option<i64> = None;
            for handler in current.getattr(pyo3::intern!(py, "handlers"))?.try_iter()? {
                let level: i64 = handler?.getattr(pyo3::intern!(py, "level"))?.extract()?;
                own = Some(own.map_or(level, |l| l.min(level)));
            }
            let parent = if current
                .getattr(pyo3::intern!(py, "propagate"))?
                .is_truthy()?
            {
                Some(current.getattr(pyo3::intern!(py, "parent"))?)
            } else {
                None
            };
            walked.push((current, own));
            match parent {
                Some(p) if !p.is_none() => current = p,
                _ => break,
            }
        }
        // Fold from the end of the chain back to `logger`, remembering each logger's answer.
        for (l, own) in walked.into_iter().rev() {
            rest = match (own, rest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.seen.push((l, rest));
        }
        Ok(rest)
    }
}

/// Re-reads Python's logging configuration (levels, handlers) for this package's records.
///
/// Every `PositionManager` call already does this; call it after changing logging levels if you
/// use `Position` methods or other objects without a manager call in between.
#[pyfunction]
pub fn refresh_logging() {
    refresh();
}

thread_local! {
    /// An interruption raised where it could not be passed up at once (a logging handler, an
    /// event callback): raised at this thread's next client call, and at the end of the manager
    /// call at the latest.
    static DEFERRED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
    /// The given-up flag of the update step this thread is running ([`serving_step`]).
    static STEP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` (an update step on this thread) with `abandoned` as its given-up flag: once set,
/// the step's next client call on this thread ends it ([`interruption`]).
pub fn serving_step<T>(abandoned: &Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    let before = STEP.with(|s| s.replace(Some(abandoned.clone())));
    let out = f();
    STEP.with(|s| *s.borrow_mut() = before);
    out
}

/// Whether the update step this thread runs was given up by its caller.
fn step_abandoned() -> bool {
    STEP.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire))
    })
}

/// Whether `e` must end the manager call (DESIGN rule 8): a `BaseException` that is not an
/// `Exception` — `KeyboardInterrupt`, `SystemExit`, `GeneratorExit`, or a user's own.
pub fn is_interrupt(py: Python<'_>, e: &PyErr) -> bool {
    !e.is_instance_of::<PyException>(py)
}

/// Keeps an interruption for the next client call or the end of the manager call (the first
/// one wins).
pub fn defer_interrupt(e: PyErr) {
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(e);
        }
    });
}

/// Takes the interruption deferred on this thread, if any (a manager call raises it before it
/// returns: [`run`] does, and so must every call that runs the core without it).
pub fn take_deferred() -> Option<PyErr> {
    DEFERRED.with(|d| d.borrow_mut().take())
}

/// The core's error for an interruption the user's code raised.
pub fn interrupted(py: Python<'_>, e: &PyErr) -> CoreError {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "BaseException".to_owned());
    CoreError::Interrupted(Interrupt::new(Arc::new(e.clone_ref(py)), kind))
}

/// The exception an interruption carries, as it was raised.
pub fn interrupt_error(py: Python<'_>, i: &Interrupt) -> PyErr {
    match i.token().downcast_ref::<PyErr>() {
        Some(e) => e.clone_ref(py),
        None => pyo3::exceptions::PyKeyboardInterrupt::new_err(i.kind.clone()),
    }
}

/// A logging handler that raised earlier in this detached run leaves its exception pending
/// (pyo3-log restores it): an interruption is deferred, anything else is reported as
/// unraisable, so a faulty handler never breaks a manager call.
fn settle_pending(py: Python<'_>) {
    if let Some(err) = PyErr::take(py) {
        if is_interrupt(py, &err) {
            defer_interrupt(err);
        } else {
            err.write_unraisable(py, None);
        }
    }
}

/// Attaches to the interpreter for a call from the core (see [`settle_pending`]).
pub fn attach_clean<T>(f: impl for<'py> FnOnce(Python<'py>) -> T) -> T {
    Python::attach(|py| {
        settle_pending(py);
        f(py)
    })
}

/// Before a client call: an interruption deferred earlier, or a signal (Ctrl+C) that arrived
/// while the core ran without the interpreter, ends the call here.
pub fn interruption(py: Python<'_>) -> CoreResult<()> {
    settle_pending(py);
    if crate::interpreter_exit::exiting_elsewhere() {
        return Err(interrupted(py, &crate::interpreter_exit::exit_error()));
    }
    if step_abandoned() {
        return Err(interrupted(
            py,
            &crate::errors::StepAbandoned::new_err(
                "the task awaiting this update step was cancelled",
            ),
        ));
    }
    if let Some(e) = take_deferred() {
        return Err(interrupted(py, &e));
    }
    py.check_signals().map_err(|e| {
        if is_interrupt(py, &e) {
            interrupted(py, &e)
        } else {
            crate::client::exchange_error(py, &e)
        }
    })
}

/// Waits `seconds`, waking every 50 ms for signals: an interrupt ends the wait at once.
pub fn interruptible_pause(seconds: f64) -> CoreResult<()> {
    if seconds.is_nan() || seconds <= 0.0 {
        return Ok(());
    }
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds.min(86_400.0));
    loop {
        attach_clean(interruption)?;
        let now = std::time::Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(50)));
    }
}

/// Runs `f` detached from the interpreter (reads that neither log nor call out; attached while
/// the interpreter exits: [`crate::interpreter_exit::detach_or_stay`]).
pub fn detached<T, F>(py: Python<'_>, f: F) -> T
where
    F: pyo3::marker::Ungil + FnOnce() -> T,
    T: pyo3::marker::Ungil,
{
    let out = crate::interpreter_exit::detach_or_stay(py, f);
    settle_pending(py);
    out
}

/// Runs a core operation detached from the interpreter and turns its result into Python's: an
/// interruption it met — in a client call, a logging handler, an event callback — is raised as
/// it came (after the operation left the book consistent); other errors are converted once.
/// While the interpreter exits, on a thread other than the exit's, `f` is not run and
/// `SystemExit` is raised ([`crate::interpreter_exit`]).
pub fn run<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> CoreResult<T>,
    T: Send,
{
    let out = crate::interpreter_exit::detach(py, f)?;
    settle_pending(py);
    let deferred = take_deferred();
    match out {
        Err(CoreError::Interrupted(i)) => Err(interrupt_error(py, &i)),
        Err(e) => Err(PmError(e).into()),
        Ok(v) => match deferred {
            Some(e) => Err(e),
            None => Ok(v),
        },
    }
}

/// [`run`] for an operation that cannot fail but may log or record events (whose handlers and
/// callbacks may raise an interruption).
pub fn run_plain<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    run(py, || Ok(f()))
}
