//! The iterator `update_positions()` returns: one core step per `__next__`.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use position_manager_core::error::CoreError;
use position_manager_core::manager::UpdateCycle;

use crate::logging::{defer_interrupt, interrupt_error, refresh_for, run, PyLoggers};
use crate::manager::CoreManager;
use crate::position::PyPosition;

/// One update cycle, run lazily: each `next()` advances until a position closes and yields
/// `(symbol, pnl, position)`. Like a generator: no work before iteration starts, and each item
/// reaches you before the next position is examined.
#[pyclass(name = "UpdateIterator", module = "position_manager_rs", frozen)]
pub struct UpdateIter {
    core: Arc<CoreManager>,
    loggers: Arc<PyLoggers>,
    cycle: Mutex<Option<UpdateCycle>>,
}

impl UpdateIter {
    /// A cycle over `core` that has not started.
    pub fn new(core: Arc<CoreManager>, loggers: Arc<PyLoggers>) -> Self {
        UpdateIter {
            core,
            loggers,
            cycle: Mutex::new(None),
        }
    }
}

#[pymethods]
impl UpdateIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<(String, f64, Py<PyPosition>)>> {
        // A re-entrant next() (e.g. from a logging handler) is refused, as for a generator.
        let Some(mut guard) = self.cycle.try_lock() else {
            return Err(PyValueError::new_err("generator already executing"));
        };
        let core = &self.core;
        if guard.is_none() {
            refresh_for(py, core, &self.loggers);
            *guard = Some(core.begin_update());
        }
        let Some(cycle) = guard.as_mut() else {
            return Ok(None);
        };
        if cycle.is_done() {
            return Ok(None);
        }
        let closed = run(py, || core.next_closed(cycle)).inspect_err(|_| {
            // The cycle ends with the interruption it raises: other reads made ahead are
            // dropped with it (one Ctrl+C is one KeyboardInterrupt).
            drop(cycle.finish_without_work());
        })?;
        Ok(closed.map(|c| (c.symbol, c.pnl, c.handle.clone_ref(py))))
    }

    /// Stops the cycle; positions not examined yet are left for the next cycle. Raises
    /// `ValueError` while a step runs (from another thread, or from a callback inside the
    /// cycle), as a generator does, and a `KeyboardInterrupt`/`SystemExit` that the client raised
    /// in a read made ahead (`max_concurrent_calls` > 1) for a position not examined yet.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(mut guard) = self.cycle.try_lock() else {
            return Err(PyValueError::new_err("generator already executing"));
        };
        let handed = guard
            .get_or_insert_with(|| self.core.begin_update())
            .finish_without_work();
        drop(guard);
        match handed {
            Some(CoreError::Interrupted(i)) => Err(interrupt_error(py, &i)),
            _ => Ok(()),
        }
    }
}

impl Drop for UpdateIter {
    /// An iterator dropped half-way (`for ...: break`) hands an interruption a read made ahead
    /// met to the next manager call on this thread, which raises it (an interruption is never
    /// lost, DESIGN rule 8).
    fn drop(&mut self) {
        let handed = self
            .cycle
            .get_mut()
            .as_mut()
            .and_then(UpdateCycle::finish_without_work);
        if let Some(CoreError::Interrupted(i)) = handed {
            Python::attach(|py| defer_interrupt(interrupt_error(py, &i)));
        }
    }
}
