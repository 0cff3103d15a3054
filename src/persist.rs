//! `PositionManager.save_state` / `load_state`: the Python side of persistence.
//!
//! The core reads, checks and writes the state file (`position_manager_core::persist`); this
//! layer converts the path, and each position's own attributes (its `__dict__`) to and from JSON
//! text with Python's `json` module. Python runs only inside the callbacks the core makes with
//! no lock held, attached with [`attach_clean`]; a Python exception there that is not a plain
//! serialisation failure (`KeyboardInterrupt`, `MemoryError`, ...) stops the operation and is
//! re-raised as it was.

use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use position_manager_core::book::SharedPosition;
use position_manager_core::error::CoreError;
use position_manager_core::manager::state::SavedExtra;
use position_manager_core::persist::{json_text, SavedPosition};

use crate::convert::describe;
use crate::errors::PmError;
use crate::logging::{attach_clean, detached, refresh_for, PyLoggers};
use crate::manager::{CoreManager, Handle};
use crate::position::PyPosition;

/// `json.dumps` (strict: no NaN or infinity, which are not JSON) and `json.loads`.
struct Json {
    dumps: Py<PyAny>,
    loads: Py<PyAny>,
    strict: Py<PyDict>,
}

impl Json {
    fn new(py: Python<'_>) -> PyResult<Self> {
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

/// The path argument: a `str` or an `os.PathLike`.
fn path_arg(path: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    path.extract::<PathBuf>().map_err(|_| {
        PyTypeError::new_err(format!(
            "path must be a str or os.PathLike, got {}",
            describe(path)
        ))
    })
}

/// Stands in for a Python exception kept aside to be re-raised as it was.
fn interrupted() -> CoreError {
    CoreError::Value("interrupted by a Python exception".to_owned())
}

/// The result of a core call whose callbacks may have kept a Python exception aside.
fn finish<T>(result: Result<T, CoreError>, pending: Option<PyErr>) -> PyResult<T> {
    match (result, pending) {
        (Err(_), Some(e)) => Err(e),
        (result, _) => result.map_err(|e| PmError(e).into()),
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
    let mut pending: Option<PyErr> = None;
    let result = detached(py, || {
        core.save_state(&path, |_, handle| {
            attach_clean(|py| {
                extra_of(py, &json, handle).map_err(|e| {
                    pending = Some(e);
                    interrupted()
                })
            })
        })
    });
    finish(result, pending)
}

/// The JSON-serialisable attributes of a position object; names of the others as skipped.
fn extra_of(py: Python<'_>, json: &Json, handle: &Handle) -> PyResult<SavedExtra> {
    let object = handle.bind(py);
    let attributes = object.getattr(pyo3::intern!(py, "__dict__"))?;
    let attributes = attributes.cast::<PyDict>()?;
    // A copy: json.dumps may run Python code that changes the object's attributes.
    let items = attributes.copy()?.items();
    let mut out = SavedExtra::default();
    let strict = json.strict.bind(py);
    for item in items.iter() {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let Ok(name) = name.cast::<PyString>() else {
            out.skipped.push(name.repr()?.to_string());
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let text = match json.dumps.bind(py).call((value,), Some(strict)) {
            Ok(text) => text.extract::<String>()?,
            Err(e) if e.is_instance_of::<PyException>(py) => {
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
        core.load_state(&path, |saved, position| {
            attach_clean(|py| {
                new_position(py, &json, &path, saved, position).map_err(|e| {
                    pending = Some(e);
                    interrupted()
                })
            })
        })
    });
    finish(result, pending)
}

/// A fresh `Position` over the loaded state, with the saved attributes in its `__dict__`.
fn new_position(
    py: Python<'_>,
    json: &Json,
    path: &Path,
    saved: &SavedPosition,
    position: &SharedPosition,
) -> PyResult<Handle> {
    let object = Py::new(py, PyPosition::from_shared(position.clone()))?;
    let bound = object.bind(py);
    let attributes = bound.getattr(pyo3::intern!(py, "__dict__"))?;
    let attributes = attributes.cast::<PyDict>()?;
    for (name, text) in &saved.extra {
        let value = json.loads.bind(py).call1((text.get(),)).map_err(|e| {
            crate::errors::StateFileError::new_err(format!(
                "{}: cannot restore attribute {name:?} of {}: {e}",
                path.display(),
                saved.symbol
            ))
        })?;
        attributes.set_item(name, value)?;
    }
    Ok(std::sync::Arc::new(object))
}
