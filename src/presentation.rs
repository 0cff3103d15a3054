//! Presentation lives in Python (`position_manager_rs._views`): records, pandas frames, HTML for
//! Jupyter and matplotlib plots. The native classes only forward to it.

use pyo3::call::PyCallArgs;
use pyo3::prelude::*;

/// Calls `position_manager_rs._views.<function>(*args)`.
pub fn call<'py>(
    py: Python<'py>,
    function: &str,
    args: impl PyCallArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("position_manager_rs._views")?
        .getattr(function)?
        .call1(args)
}
