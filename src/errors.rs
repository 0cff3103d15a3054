//! The one place where core errors become Python exceptions.

use pyo3::exceptions::{
    PyKeyError, PyOSError, PyRuntimeError, PyTypeError, PyValueError, PyZeroDivisionError,
};
use pyo3::PyErr;

use position_manager_core::error::CoreError;

pyo3::create_exception!(
    position_manager_rs,
    StateFileError,
    PyValueError,
    "A state file that cannot be loaded (corrupt, truncated, another format, a newer version, \
     an invalid value), or a state that cannot be saved. A subclass of ValueError; the message \
     names the file and, for JSON defects, the line and column."
);

pyo3::create_exception!(
    position_manager_rs,
    StepAbandoned,
    pyo3::exceptions::PyBaseException,
    "Ends an update step its caller gave up on (the asyncio API, when the task awaiting the step \
     was cancelled) at the step's next client call, as a Ctrl+C would: nothing more is sent for \
     the step. A BaseException, so it passes through as an interruption; the asyncio API drops it."
);

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
            CoreError::State(m) => StateFileError::new_err(m),
            // OSError(errno, strerror, filename) becomes the errno's subclass
            // (FileNotFoundError, PermissionError, ...).
            CoreError::Io {
                errno: Some(errno),
                message,
                path,
            } => PyOSError::new_err((errno, message, path)),
            CoreError::Io {
                errno: None,
                message,
                path,
            } => PyOSError::new_err(format!("{message}: {path}")),
            CoreError::Exchange { kind, message } | CoreError::Unsent { kind, message } => {
                PyRuntimeError::new_err(format!("{kind}: {message}"))
            }
            CoreError::Interrupted(i) => {
                pyo3::Python::attach(|py| crate::logging::interrupt_error(py, &i))
            }
        }
    }
}
