//! `PositionManager.save_state` / `load_state`: the Python side of persistence.
//!
//! The core reads, checks and writes the state file (`position_manager_core::persist`); this
//! layer converts the path, and each position's own attributes (its `__dict__`) to and from JSON
//! text with Python's `json` module. Python runs only inside the callbacks the core makes with
//! no lock held, attached with [`attach_clean`]; a Python exception there that is not a plain
//! serialisation failure (`KeyboardInterrupt`, `MemoryError`, ...) stops the operation and is
//! re-raised as it was.
//!
//! Saves of one target are serialised in this process around the whole operation (book
//! snapshot, attributes, write): a save that completes after another also read the book after
//! it, so concurrent saves never leave an older book on disk than one a completed save wrote.

use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyException, PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use position_manager_core::book::SharedPosition;
use position_manager_core::error::CoreError;
use position_manager_core::manager::state::SavedExtra;
use position_manager_core::persist::{json_text, lock_target, with_lock_wait, Extra};

use crate::convert::describe;
use crate::errors::PmError;
use crate::logging::{attach_clean, detached, refresh_for, take_deferred, PyLoggers};
use crate::manager::{CoreManager, Handle};
use crate::position::PyPosition;

/// `json.dumps` (strict: no NaN or infinity, which are not JSON) and `json.loads`.
pub(crate) struct Json {
    dumps: Py<PyAny>,
    pub(crate) loads: Py<PyAny>,
    strict: Py<PyDict>,
}

impl Json {
    /// Looks up `json.dumps` and `json.loads`.
    pub(crate) fn new(py: Python<'_>) -> PyResult<Self> {
        let json = py.import("json")?;
        let strict = PyDict::new(py);
        strict.set_item("allow_nan", false)?;
        Ok(Json {
            dumps: json.getattr("dumps")?.unbind(),
            loads: json.getattr("loads")?.unbind(),
            strict: strict.unbind(),
        })
    }
}

/// The path argument: a `str`, `bytes` or an `os.PathLike` of either (any name the OS accepts,
/// non-UTF-8 names included: a `str` from `os.fsdecode` carries them as surrogate escapes).
pub(crate) fn path_arg(path: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    let wrong = || {
        PyTypeError::new_err(format!(
            "path must be a str, bytes or os.PathLike, got {}",
            describe(path)
        ))
    };
    let py = path.py();
    let fspath = py
        .import("os")?
        .getattr("fspath")?
        .call1((path,))
        .map_err(|e| {
            if e.is_instance_of::<PyTypeError>(py) {
                wrong()
            } else {
                e
            }
        })?;
    let path = if let Ok(b) = fspath.cast::<PyBytes>() {
        bytes_path(b.as_bytes())
    } else if fspath.is_instance_of::<PyString>() {
        fspath.extract::<PathBuf>().map_err(|_| wrong())?
    } else {
        return Err(wrong());
    };
    // As Python's own open(): no file name holds a NUL.
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(PyValueError::new_err(format!(
            "path must not contain a NUL byte, got {}",
            describe(&fspath)
        )));
    }
    Ok(path)
}

/// The path whose name is `bytes` (on unix exactly; elsewhere read as UTF-8, lossily).
#[cfg(unix)]
pub(crate) fn bytes_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// The path whose name is `bytes` (on unix exactly; elsewhere read as UTF-8, lossily).
#[cfg(not(unix))]
pub(crate) fn bytes_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// Whether a Python exception from serialising or restoring an attribute is that attribute's
/// own failure (skip or report it) rather than one that must stop the operation as it came:
/// interrupts and exits are not `Exception`s, and a `MemoryError` is the process's problem.
pub(crate) fn attribute_failure(py: Python<'_>, e: &PyErr) -> bool {
    e.is_instance_of::<PyException>(py) && !e.is_instance_of::<PyMemoryError>(py)
}

/// Stands in for a Python exception kept aside to be re-raised as it was.
fn interrupted() -> CoreError {
    CoreError::Value("interrupted by a Python exception".to_owned())
}

/// The result of a core call whose callbacks may have kept a Python exception aside.
fn finish<T>(result: Result<T, CoreError>, pending: Option<PyErr>) -> PyResult<T> {
    // An interruption a logging handler or an event callback raised during the save or load
    // leaves with this call (DESIGN rule 8), not with some later one.
    let deferred = take_deferred();
    match (result, pending, deferred) {
        (Err(_), Some(e), _) => Err(e),
        (_, _, Some(e)) => Err(e),
        (result, _, None) => result.map_err(|e| PmError(e).into()),
    }
}

/// `manager.save_state(path)`.
pub fn save_state(
    py: Python<'_>,
    core: &CoreManager,
    loggers: &PyLoggers,
    path: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let path = path_arg(path)?;
    let json = Json::new(py)?;
    refresh_for(py, core, loggers);
    let log_target = core.config().loggers.main.clone();
    let mut pending: Option<PyErr> = None;
    let result = detached(py, || {
        let _one_save_at_a_time = lock_target(&path);
        with_lock_wait(&log_target, signals_while_waiting, || {
            core.save_state(&path, |_, handle| {
                attach_clean(|py| {
                    extra_of(py, &json, handle).map_err(|e| {
                        pending = Some(e);
                        interrupted()
                    })
                })
            })
        })
    });
    finish(result, pending)
}

/// Between attempts to take another process's lock on the state file's directory: a signal
/// (Ctrl+C) that arrived meanwhile, or an interruption a logging handler raised earlier in the
/// save, ends the save there, before anything is written, and is raised as it came.
fn signals_while_waiting() -> Result<(), CoreError> {
    attach_clean(crate::logging::interruption)
}

/// The JSON-serialisable attributes of a position object; names of the others as skipped.
pub(crate) fn extra_of(py: Python<'_>, json: &Json, handle: &Handle) -> PyResult<SavedExtra> {
    let object = handle.bind(py);
    let attributes = object.getattr(pyo3::intern!(py, "__dict__"))?;
    let attributes = attributes.cast::<PyDict>()?;
    // A copy: json.dumps may run Python code that changes the object's attributes.
    let items = attributes.copy()?.items();
    let mut out = SavedExtra::default();
    let strict = json.strict.bind(py);
    for item in items.iter() {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        // A name that is not a str, or a str the file cannot carry exactly (a lone surrogate),
        // is skipped under its repr.
        let Some(name) = name
            .cast::<PyString>()
            .ok()
            .and_then(|n| n.extract::<String>().ok())
        else {
            out.skipped.push(name.repr()?.to_string());
            continue;
        };
        // ensure_ascii (json's default) keeps lone surrogates as escapes, so the text is UTF-8.
        let text = match json
            .dumps
            .bind(py)
            .call((value,), Some(strict))
            .and_then(|t| t.extract::<String>())
        {
            Ok(text) => text,
            Err(e) if attribute_failure(py, &e) => {
                out.skipped.push(name);
                continue;
            }
            Err(e) => return Err(e),
        };
        match json_text(text) {
            Ok(raw) => {
                out.values.insert(name, raw);
            }
            Err(_) => out.skipped.push(name),
        }
    }
    Ok(out)
}

/// `manager.load_state(path)`.
pub fn load_state(
    py: Python<'_>,
    core: &CoreManager,
    loggers: &PyLoggers,
    path: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let path = path_arg(path)?;
    let json = Json::new(py)?;
    refresh_for(py, core, loggers);
    let mut pending: Option<PyErr> = None;
    let result = detached(py, || {
        core.load_state(&path, |symbol, extra, position| {
            attach_clean(|py| {
                new_position(py, &json, &path, symbol, extra, position).map_err(|e| {
                    pending = Some(e);
                    interrupted()
                })
            })
        })
    });
    finish(result, pending)
}

/// A fresh `Position` over the loaded state of `symbol`, with its saved attributes in its
/// `__dict__`.
fn new_position(
    py: Python<'_>,
    json: &Json,
    path: &Path,
    symbol: &str,
    extra: &Extra,
    position: &SharedPosition,
) -> PyResult<Handle> {
    let object = Py::new(py, PyPosition::from_shared(position.clone()))?;
    let bound = object.bind(py);
    let attributes = bound.getattr(pyo3::intern!(py, "__dict__"))?;
    let attributes = attributes.cast::<PyDict>()?;
    for (name, text) in extra {
        let value = json.loads.bind(py).call1((text.get(),)).map_err(|e| {
            if attribute_failure(py, &e) {
                crate::errors::StateFileError::new_err(format!(
                    "{}: cannot restore attribute {name:?} of {}: {e}",
                    path.display(),
                    symbol
                ))
            } else {
                e
            }
        })?;
        attributes.set_item(name, value)?;
    }
    Ok(std::sync::Arc::new(object))
}
