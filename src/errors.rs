//! The one place where core errors become Python exceptions.

use pyo3::exceptions::{
    PyKeyError, PyRuntimeError, PyTypeError, PyValueError, PyZeroDivisionError,
};
use pyo3::PyErr;

use position_manager_core::error::CoreError;

/// Wraps a core error so `?` converts it (the orphan rule forbids `From<CoreError> for PyErr`).
pub struct PmError(pub CoreError);

impl From<CoreError> for PmError {
    fn from(e: CoreError) -> Self {
        PmError(e)
    }
}

impl From<PmError> for PyErr {
    fn from(e: PmError) -> PyErr {
        match e.0 {
            CoreError::Type(m) => PyTypeError::new_err(m),
            CoreError::Value(m) => PyValueError::new_err(m),
            CoreError::ZeroDivision(m) => PyZeroDivisionError::new_err(m),
            CoreError::Key(k) => PyKeyError::new_err(k),
            CoreError::State(m) => PyValueError::new_err(m),
            CoreError::Exchange { kind, message } => {
                PyRuntimeError::new_err(format!("{kind}: {message}"))
            }
        }
    }
}
