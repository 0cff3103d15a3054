//! The iterator `update_positions()` returns: one core step per `__next__`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use position_manager_core::error::CoreError;
use position_manager_core::manager::UpdateCycle;

use crate::errors::StepAbandoned;
use crate::logging::{defer_interrupt, interrupt_error, refresh_for, run, serving_step, PyLoggers};
use crate::manager::CoreManager;
use crate::position::PyPosition;
use crate::view::PositionsView;

/// One update cycle, run lazily: each `next()` advances until a position closes and yields
/// `(symbol, pnl, position)`. Like a generator: no work before iteration starts, and each item
/// reaches you before the next position is examined.
#[pyclass(name = "UpdateIterator", module = "position_manager_rs", frozen)]
pub struct UpdateIter {
    core: Arc<CoreManager>,
    loggers: Arc<PyLoggers>,
    cycle: Mutex<Option<UpdateCycle>>,
    /// Set by `_abandon()`: the running step stops at its next client call.
    abandoned: Arc<AtomicBool>,
    /// The manager's view: the core's Python objects stay reachable for the garbage collector
    /// while this iterator can still use the core (src/gc.rs).
    view: Py<PositionsView>,
    /// The process (fork generation) its manager was made in (src/fork.rs).
    origin: crate::fork::Origin,
}

impl UpdateIter {
    /// A cycle over `core` that has not started.
    pub fn new(
        core: Arc<CoreManager>,
        loggers: Arc<PyLoggers>,
        view: Py<PositionsView>,
        origin: crate::fork::Origin,
    ) -> Self {
        UpdateIter {
            core,
            loggers,
            cycle: Mutex::new(None),
            abandoned: Arc::new(AtomicBool::new(false)),
            view,
            origin,
        }
    }

    /// `Ok` in the process the manager was made in; the `RuntimeError` of a forked child
    /// otherwise (src/fork.rs).
    fn usable(&self) -> PyResult<()> {
        self.origin
            .check("this PositionManager's update_positions() iterator")
    }
}

#[pymethods]
impl UpdateIter {
    /// Reports the manager's view to the garbage collector (see src/gc.rs).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.view)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<(String, f64, Py<PyPosition>)>> {
        self.usable()?;
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
        let closed = match serving_step(&self.abandoned, || run(py, || core.next_closed(cycle))) {
            Ok(closed) => closed,
            Err(e) => {
                // The cycle ends with the interruption it raises: other reads made ahead are
                // dropped with it (one Ctrl+C is one KeyboardInterrupt) — unless the step was
                // given up (`_abandon`): then an interruption a read made ahead met is the one
                // raised, so that it is not lost with the step nobody waits for.
                let handed = cycle.finish_without_work();
                return Err(match handed {
                    Some(CoreError::Interrupted(i)) if e.is_instance_of::<StepAbandoned>(py) => {
                        interrupt_error(py, &i)
                    }
                    _ => e,
                });
            }
        };
        Ok(closed.map(|c| (c.symbol, c.pnl, c.handle.clone_ref(py))))
    }

    /// Gives up the step running now (or the next one) on behalf of its caller: it stops at its
    /// next client call on the stepping thread, as at a Ctrl+C, raising `_StepAbandoned` (the
    /// asyncio API calls this when the task awaiting a step is cancelled; what the step already
    /// did stands, and nothing more is sent for it).
    fn _abandon(&self) -> PyResult<()> {
        self.usable()?;
        self.abandoned.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops the cycle; positions not examined yet are left for the next cycle. Raises
    /// `ValueError` while a step runs (from another thread, or from a callback inside the
    /// cycle), as a generator does, and a `KeyboardInterrupt`/`SystemExit` that the client raised
    /// in a read made ahead (`max_concurrent_calls` > 1) for a position not examined yet.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.usable()?;
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
    ///
    /// In a forked child, the cycle and the core are leaked rather than finished and freed:
    /// they belong to the parent (src/fork.rs).
    fn drop(&mut self) {
        if self.origin.inherited() {
            self.origin.release(self.cycle.get_mut().take());
            self.origin.release(self.core.clone());
            return;
        }
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
