//! Clock control for tests and fixture replay (`position_manager_rs.testing`).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use position_manager_core::clock;

use crate::convert::{from_datetime, to_datetime};

/// Freezes the process-wide clock at the naive datetime `at`.
#[pyfunction]
fn _freeze_clock(at: &Bound<'_, PyAny>) -> PyResult<()> {
    clock::freeze(from_datetime("at", at)?);
    Ok(())
}

/// Moves the frozen clock by `seconds + 60 * minutes + 3600 * hours` (plus `delta`, a
/// `timedelta`) and returns the new time, as `ManualClock.advance` does: each argument is
/// checked first (TypeError/ValueError naming it and the value); RuntimeError if the clock is
/// not frozen; ValueError if the move would leave the range of `datetime`, the clock staying
/// where it was.
#[pyfunction]
#[pyo3(signature = (seconds = None, *, minutes = None, hours = None, delta = None))]
fn _advance_clock(
    seconds: Option<&Bound<'_, PyAny>>,
    minutes: Option<&Bound<'_, PyAny>>,
    hours: Option<&Bound<'_, PyAny>>,
    delta: Option<&Bound<'_, PyAny>>,
) -> PyResult<chrono::NaiveDateTime> {
    let total = crate::clock::advance_seconds(seconds, minutes, hours, delta)?;
    if !clock::is_frozen() {
        return Err(PyRuntimeError::new_err("the clock is not frozen"));
    }
    crate::clock::advanced(clock::now(), total)?;
    if !clock::advance_frozen(total) {
        return Err(PyRuntimeError::new_err("the clock is not frozen"));
    }
    to_datetime(clock::now())
}

/// Lets the clock follow the system clock again.
#[pyfunction]
fn _unfreeze_clock() {
    clock::unfreeze();
}

/// The process-wide clock's current time (naive datetime).
#[pyfunction]
fn _clock_now() -> PyResult<chrono::NaiveDateTime> {
    to_datetime(clock::now())
}

/// Whether the clock is frozen.
#[pyfunction]
fn _clock_is_frozen() -> bool {
    clock::is_frozen()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_freeze_clock, m)?)?;
    m.add_function(wrap_pyfunction!(_advance_clock, m)?)?;
    m.add_function(wrap_pyfunction!(_unfreeze_clock, m)?)?;
    m.add_function(wrap_pyfunction!(_clock_now, m)?)?;
    m.add_function(wrap_pyfunction!(_clock_is_frozen, m)?)?;
    Ok(())
}
