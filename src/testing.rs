//! Clock control for tests and fixture replay (`position_manager_rs.testing`).

use pyo3::prelude::*;

use position_manager_core::clock;

use crate::convert::{from_datetime, to_datetime};

/// Freezes the process-wide clock at the naive datetime `at`.
#[pyfunction]
fn _freeze_clock(at: &Bound<'_, PyAny>) -> PyResult<()> {
    clock::freeze(from_datetime("at", at)?);
    Ok(())
}

/// Moves the frozen clock by `seconds` (a finite number, at most 1e11 either way); raises
/// RuntimeError if it is not frozen.
#[pyfunction]
fn _advance_clock(seconds: &Bound<'_, PyAny>) -> PyResult<()> {
    let seconds = crate::convert::finite("seconds", seconds)?;
    if seconds.abs() > 1e11 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "seconds must be at most 1e11 either way, got {seconds}"
        )));
    }
    if clock::advance_frozen(seconds) {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the clock is not frozen",
        ))
    }
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
