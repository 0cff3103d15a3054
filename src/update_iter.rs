//! The iterator `update_positions()` returns: one core step per `__next__`.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use position_manager_core::manager::UpdateCycle;

use crate::logging::{detached, refresh_for};
use crate::manager::CoreManager;
use crate::position::PyPosition;

/// One update cycle, run lazily: each `next()` advances until a position closes and yields
/// `(symbol, pnl, position)`. Like a generator: no work before iteration starts, and each item
/// reaches you before the next position is examined.
#[pyclass(name = "UpdateIterator", module = "position_manager_rs", frozen)]
pub struct UpdateIter {
    core: Arc<CoreManager>,
    cycle: Mutex<Option<UpdateCycle>>,
}

impl UpdateIter {
    /// A cycle over `core` that has not started.
    pub fn new(core: Arc<CoreManager>) -> Self {
        UpdateIter {
            core,
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
            refresh_for(py, core);
            *guard = Some(core.begin_update());
        }
        let Some(cycle) = guard.as_mut() else {
            return Ok(None);
        };
        if cycle.is_done() {
            return Ok(None);
        }
        let closed = detached(py, || core.next_closed(cycle));
        Ok(closed.map(|c| (c.symbol, c.pnl, c.handle.clone_ref(py))))
    }

    /// Stops the cycle; positions not examined yet are left for the next cycle.
    fn close(&self) {
        if let Some(mut guard) = self.cycle.try_lock() {
            let mut finished = self.core.begin_update();
            // A cycle with nothing left: mark it done without doing any work.
            finished.finish_without_work();
            *guard = Some(finished);
        }
    }
}
