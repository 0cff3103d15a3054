//! `ManualClock`: a clock of its own for one manager (or several), moved only when told.
//!
//! A manager reads "now" (entry times of the positions it creates, ages, profit velocity, the
//! 24 h rules, event times) from its clock. By default that is the process-wide clock (the
//! system clock, or the one `position_manager_rs.testing.frozen_clock` freezes). A
//! `ManualClock` passed as `PositionManager(client, clock=...)` replaces it for that manager:
//! `PaperExchange` moves its clock with simulated time, so paper runs age in paper time.
//!
//! The manager holds the core's [`ManualClock`] directly: a read is one atomic load, with no
//! call into Python.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use position_manager_core::clock::{self, Clock, ManualClock, Timestamp};

use crate::convert::{describe, finite, from_datetime, to_datetime};

/// A clock that shows a fixed time until it is set or advanced: simulated ("paper") time for a
/// `PositionManager` (`PositionManager(client, clock=clock)`).
///
/// ManualClock(start=None)
///
/// `start` is a naive `datetime` (default: the process-wide clock's current time). `now()`
/// reads it, `set(at)` moves it to a naive datetime, `advance(seconds=0, *, minutes=0,
/// hours=0, delta=None)` moves it by a duration (negative values move it back). Thread-safe;
/// one clock may serve several managers. A `PaperExchange` made with `clock=` (or its own
/// `paper.clock`) sets it to the simulated time on every tick.
#[pyclass(name = "ManualClock", module = "position_manager_rs", frozen)]
pub struct PyManualClock {
    inner: Arc<ManualClock>,
}

impl PyManualClock {
    /// The clock as the core reads it.
    pub fn core_clock(&self) -> Arc<dyn Clock> {
        self.inner.clone()
    }
}

#[pymethods]
impl PyManualClock {
    #[new]
    #[pyo3(signature = (start = None))]
    fn new(start: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let start = match start {
            Some(v) if !v.is_none() => from_datetime("start", v)?,
            _ => clock::now(),
        };
        Ok(PyManualClock {
            inner: Arc::new(ManualClock::new(start)),
        })
    }

    /// The clock's time (naive datetime).
    fn now(&self) -> PyResult<chrono::NaiveDateTime> {
        to_datetime(self.inner.now())
    }

    /// Moves the clock to `at` (a naive datetime).
    fn set(&self, at: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set(from_datetime("at", at)?);
        Ok(())
    }

    /// Moves the clock by `seconds + 60 * minutes + 3600 * hours` (plus `delta`, a
    /// `timedelta`); negative values move it back. Returns the new time.
    #[pyo3(signature = (seconds = None, *, minutes = None, hours = None, delta = None))]
    fn advance(
        &self,
        seconds: Option<&Bound<'_, PyAny>>,
        minutes: Option<&Bound<'_, PyAny>>,
        hours: Option<&Bound<'_, PyAny>>,
        delta: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<chrono::NaiveDateTime> {
        let total = advance_seconds(seconds, minutes, hours, delta)?;
        // Out of datetime's range: an error, and the clock stays where it was.
        advanced(self.inner.now(), total)?;
        self.inner.advance(total); // atomic: concurrent advances add up
        to_datetime(self.inner.now())
    }

    fn __repr__(&self) -> String {
        match to_datetime(self.inner.now()) {
            Ok(t) => format!("ManualClock({})", t.format("%Y-%m-%d %H:%M:%S%.6f")),
            Err(_) => format!("ManualClock(<{} us>)", self.inner.now().0),
        }
    }
}

/// The seconds `advance(seconds=None, *, minutes=None, hours=None, delta=None)` moves a clock
/// by: `seconds + 60 * minutes + 3600 * hours` plus `delta` (a `timedelta`). Each argument is
/// checked first (a TypeError or ValueError naming it and the value). What `ManualClock.advance`
/// and the frozen process-wide clock's `advance` (`position_manager_rs.testing`) both read.
pub fn advance_seconds(
    seconds: Option<&Bound<'_, PyAny>>,
    minutes: Option<&Bound<'_, PyAny>>,
    hours: Option<&Bound<'_, PyAny>>,
    delta: Option<&Bound<'_, PyAny>>,
) -> PyResult<f64> {
    let mut total = 0.0;
    for (name, value, scale) in [
        ("seconds", seconds, 1.0),
        ("minutes", minutes, 60.0),
        ("hours", hours, 3600.0),
    ] {
        if let Some(v) = value {
            total += finite(name, v)? * scale;
        }
    }
    if let Some(d) = delta.filter(|d| !d.is_none()) {
        let span: chrono::TimeDelta = d.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "delta must be a datetime.timedelta, got {}",
                describe(d)
            ))
        })?;
        total += span.as_seconds_f64();
    }
    Ok(total)
}

/// `now` moved by `total` seconds, or a ValueError when that leaves the range of Python's
/// `datetime` (or `total` is not finite): a clock checks this before it moves, so a refused
/// advance leaves it where it was.
pub fn advanced(now: Timestamp, total: f64) -> PyResult<Timestamp> {
    (total.abs() < 1e12)
        .then(|| now.0.checked_add((total * 1e6).round() as i64))
        .flatten()
        .map(Timestamp)
        .filter(|t| in_datetime_range(*t))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "advancing the clock by {total} s leaves the datetime range"
            ))
        })
}

/// Whether `t` is a time Python's `datetime` can hold (years 1 to 9999).
fn in_datetime_range(t: Timestamp) -> bool {
    use chrono::Datelike;
    to_datetime(t).is_ok_and(|d| (1..=9999).contains(&d.year()))
}

/// What a manager keeps of its `clock=` option: the clock the core reads, and the
/// `ManualClock` object (`manager.clock`) when one was given.
pub type ManagerClock = (Arc<dyn Clock>, Option<Py<PyManualClock>>);

/// The clock a new manager reads (`clock=` option): the process-wide clock for None, the
/// `ManualClock` given, a TypeError naming the option and the value for anything else.
pub fn manager_clock(value: Option<&Bound<'_, PyAny>>) -> PyResult<ManagerClock> {
    match value {
        None => Ok((clock::default_clock(), None)),
        Some(v) if v.is_none() => Ok((clock::default_clock(), None)),
        Some(v) => match v.cast::<PyManualClock>() {
            Ok(c) => Ok((c.get().core_clock(), Some(c.clone().unbind()))),
            Err(_) => Err(PyTypeError::new_err(format!(
                "clock must be a position_manager_rs.ManualClock or None, got {}",
                describe(v)
            ))),
        },
    }
}
