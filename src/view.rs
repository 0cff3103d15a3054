//! `manager.positions`: a live, thread-safe dict-like view of the book.
//!
//! Reads return the same `Position` objects the book holds, answered from the dict copy of the
//! book the view keeps ([`BookDict`]: rebuilt only after the book changed, so reads cost what a
//! dict read costs); writes go to the book (and are events, so nothing leaves the book
//! unrecorded). Iteration works on a snapshot, so another thread changing the book never raises
//! "changed size during iteration".

use std::sync::Arc;

use parking_lot::Mutex;

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::PyTraverseError;

use crate::book_dict::BookDict;

use position_manager_core::events::EventKind;

use position_manager_journal::book::BookJournal;

use crate::client::PyClient;
use crate::convert::{describe, is_mapping};
use crate::exit_bridge::ExitObjects;
use crate::gc::HandleCache;
use crate::logging::run_plain;
use crate::manager::{CoreManager, Handle};
use crate::position::PyPosition;

/// The tracked positions as a mutable mapping {symbol: Position}, always up to date and safe to
/// use from any thread.
#[pyclass(
    name = "PositionsView",
    module = "position_manager_rs",
    frozen,
    mapping
)]
pub struct PositionsView {
    core: Arc<CoreManager>,
    dict: BookDict,
    /// The other Python objects the core holds, which this view reports to the garbage
    /// collector (src/gc.rs).
    held: Held,
    /// The book's handles this view reports during the current collection.
    handles: Mutex<HandleCache>,
    /// The process (fork generation) its manager was made in (src/fork.rs).
    origin: crate::fork::Origin,
}

/// The `on_event` callbacks, shared by the manager, its view and the core's event sink.
pub type Callbacks = Arc<Mutex<Vec<Py<PyAny>>>>;

/// What the core holds besides the book, as the view reports it to the garbage collector.
pub struct Held {
    /// The bot's client (the core calls it).
    pub client: Arc<PyClient>,
    /// The `on_event` callbacks (the core's event sink calls them).
    pub callbacks: Callbacks,
    /// The exit rule objects (the core runs the user's own).
    pub exits: Arc<ExitObjects>,
    /// The journal (it keeps the handles of positions that left the book).
    pub journal: Option<Arc<BookJournal<Handle>>>,
}

/// Reads `(symbol, Position)` pairs from a mapping, an object with `keys()` and `[]` (as
/// `dict.update` reads it) or an iterable of pairs, checking types.
pub fn position_items(value: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Py<PyPosition>)>> {
    let py = value.py();
    let pairs: Vec<Bound<'_, PyAny>> = if is_mapping(value) {
        value
            .call_method0("items")?
            .try_iter()?
            .collect::<PyResult<_>>()?
    } else if value.hasattr(intern!(py, "keys"))? {
        value
            .call_method0(intern!(py, "keys"))?
            .try_iter()?
            .map(|k| {
                let k = k?;
                let v = value.get_item(&k)?;
                Ok(PyTuple::new(py, [k, v])?.into_any())
            })
            .collect::<PyResult<_>>()?
    } else {
        value
            .try_iter()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "expected a mapping of symbol -> Position, got {}",
                    describe(value)
                ))
            })?
            .collect::<PyResult<_>>()?
    };
    pairs
        .into_iter()
        .map(|pair| {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
            Ok((key_arg(&k)?, position_arg(py, &v)?))
        })
        .collect()
}

fn key_arg(key: &Bound<'_, PyAny>) -> PyResult<String> {
    key.cast::<PyString>()
        .map(|s| s.to_string_lossy().into_owned())
        .map_err(|_| {
            PyTypeError::new_err(format!("position keys must be str, got {}", describe(key)))
        })
}

fn position_arg(_py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyPosition>> {
    let position = value.cast::<PyPosition>().map_err(|_| {
        PyTypeError::new_err(format!(
            "positions values must be Position objects, got {}",
            describe(value)
        ))
    })?;
    if position.get().unset() {
        // Its class's own __init__ never set the fields: placeholders are no position to track.
        return Err(PyTypeError::new_err(format!(
            "positions values must be initialized Position objects: {}'s __init__ did not \
             call super().__init__(symbol, side, entry_price, amount, leverage, stop_loss, \
             take_profit)",
            crate::convert::type_name(value)
        )));
    }
    Ok(position.clone().unbind())
}

impl PositionsView {
    /// A view of `core`'s book; `held` is what else the core holds.
    pub fn new(core: Arc<CoreManager>, held: Held, origin: crate::fork::Origin) -> Self {
        PositionsView {
            core,
            dict: BookDict::default(),
            held,
            handles: Mutex::new(HandleCache::default()),
            origin,
        }
    }

    /// `Ok` in the process the manager was made in; the `RuntimeError` of a forked child
    /// otherwise (src/fork.rs). Every entry of the view checks it before anything else (each
    /// goes through one of the helpers below, which check it).
    #[inline]
    fn usable(&self) -> PyResult<()> {
        self.origin.check("this PositionManager's positions view")
    }

    /// The book's tracked positions as a dict (shared: do not change it).
    pub fn dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.usable()?;
        self.dict.current(py, &self.core)
    }

    /// `key`'s Position, by a dict lookup (see [`BookDict::get`]).
    pub fn find<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.usable()?;
        self.dict.get(py, &self.core, key)
    }

    /// Number of tracked positions (one atomic load).
    pub fn count(&self) -> PyResult<usize> {
        self.usable()?;
        Ok(self.core.book().len_now())
    }

    /// Whether `key` is tracked, by a dict lookup.
    pub fn holds(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.usable()?;
        self.dict.contains(py, &self.core, key)
    }

    /// The book key `position` assigned under `symbol` takes
    /// ([`position_manager_core::manager::Manager::assigned_key`]); `ValueError` for a key of the
    /// other position mode or, in hedge mode, of the other leg.
    pub fn assigned_key(
        &self,
        py: Python<'_>,
        symbol: &str,
        position: &Py<PyPosition>,
    ) -> PyResult<String> {
        self.usable()?;
        let side = position.bind(py).get().side_text(py)?;
        self.core
            .assigned_key(symbol, &side)
            .map(|k| k.as_str().to_owned())
            .map_err(|m| PyValueError::new_err(format!("positions[{symbol:?}]: {m}")))
    }

    /// Inserts or replaces `symbol` (an `added` event; a replaced position gets `untracked`).
    /// In hedge mode a plain symbol is stored under the leg of the position's side; a key of the
    /// other mode or leg is refused (`ValueError`, nothing changed).
    pub fn insert(&self, py: Python<'_>, symbol: &str, position: Py<PyPosition>) -> PyResult<()> {
        let key = self.assigned_key(py, symbol, &position)?;
        self.insert_at(py, &key, position)
    }

    /// The book key of each pair ([`PositionsView::assigned_key`]), all checked before any is
    /// inserted.
    pub fn assigned_keys(
        &self,
        py: Python<'_>,
        items: Vec<(String, Py<PyPosition>)>,
    ) -> PyResult<Vec<(String, Py<PyPosition>)>> {
        items
            .into_iter()
            .map(|(symbol, position)| Ok((self.assigned_key(py, &symbol, &position)?, position)))
            .collect()
    }

    /// [`PositionsView::insert`] under a key [`PositionsView::assigned_key`] gave.
    pub fn insert_at(
        &self,
        py: Python<'_>,
        symbol: &str,
        position: Py<PyPosition>,
    ) -> PyResult<()> {
        self.usable()?;
        PyPosition::note_overrides(position.bind(py));
        let shared = position.get().inner.clone();
        let handle: Handle = Arc::new(position);
        let core = &self.core;
        let displaced = run_plain(py, || {
            let displaced = core.book().insert(symbol, shared.clone(), handle);
            if let Some(old) = displaced.replaced() {
                if !Arc::ptr_eq(&old.position, &shared) {
                    core.record(
                        symbol,
                        &old.position,
                        EventKind::Untracked,
                        "replaced",
                        None,
                    );
                }
            }
            core.record(symbol, &shared, EventKind::Added, "assigned", None);
            displaced
        })?;
        drop(displaced);
        Ok(())
    }

    /// Removes `symbol`, recording an `untracked` event; returns the Position if it was there.
    /// In hedge mode a plain symbol names its one tracked leg (none when both are tracked).
    fn take(&self, py: Python<'_>, symbol: &str, reason: &str) -> PyResult<Option<Py<PyPosition>>> {
        self.usable()?;
        let core = &self.core;
        let removed = run_plain(py, || {
            let key = core.resolve_key(symbol).ok()?;
            let symbol = key.as_str();
            let e = core.book().remove(symbol)?;
            core.record(symbol, &e.position, EventKind::Untracked, reason, None);
            Some(e)
        })?;
        Ok(removed.map(|r| r.handle.clone_ref(py)))
    }

    /// Removes everything, recording `untracked` events.
    pub fn clear_all(&self, py: Python<'_>) -> PyResult<()> {
        self.usable()?;
        let core = &self.core;
        let removed = run_plain(py, || {
            let (entries, rest) = core.book().clear();
            for (key, e) in &entries {
                core.record(
                    key.as_str(),
                    &e.position,
                    EventKind::Untracked,
                    "cleared",
                    None,
                );
            }
            (entries, rest)
        })?;
        drop(removed);
        Ok(())
    }
}

#[pymethods]
impl PositionsView {
    /// Reports to the garbage collector every Python object the manager's core holds (see
    /// src/gc.rs): the dict copy of the book, the client, the exit rule objects, the `on_event`
    /// callbacks and the positions the book and the journal keep. Nothing here waits or calls
    /// into Python: a lock that is held is skipped (its objects are then kept this time).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.dict.traverse(&visit)?;
        self.held.client.traverse(&visit)?;
        self.held.exits.traverse(&visit)?;
        // Only ever held with the interpreter and no Python running (see `on_event`), so a
        // collection finds it free, or held in all its passes by a thread waiting for the
        // interpreter.
        if let Some(callbacks) = self.held.callbacks.try_lock() {
            for callback in callbacks.iter() {
                visit.call(callback)?;
            }
        }
        // Only collections use it, and they run one at a time.
        if let Some(mut cache) = self.handles.try_lock() {
            let core = &self.core;
            let journal = &self.held.journal;
            cache.visit(&visit, |f| {
                core.book().try_visit_handles(&mut *f)
                    && journal
                        .as_ref()
                        .is_none_or(|j| j.try_visit_handles(&mut *f))
            })?;
        }
        Ok(())
    }

    /// Called by the garbage collector on a view in a cycle: drops the `on_event` callbacks
    /// (the manager stays usable: later events reach no callback). The rest stays: the client,
    /// the exit objects and the positions are the bot's objects, whose own `__dict__`s the
    /// collector clears, and the book must keep its positions for as long as the manager may
    /// still be called (a finalizer may call it).
    fn __clear__(&self) {
        // Never waited for: a thread may hold it while it waits for the interpreter.
        let dropped = self
            .held
            .callbacks
            .try_lock()
            .map(|mut c| std::mem::take(&mut *c));
        drop(dropped);
    }

    fn __len__(&self) -> PyResult<usize> {
        self.count()
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.holds(py, key)
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.find(py, key)?
            .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let symbol = key_arg(key)?;
        let position = position_arg(py, value)?;
        self.insert(py, &symbol, position)?;
        Ok(())
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let missing = || PyKeyError::new_err(key.clone().unbind());
        let symbol = key
            .cast::<PyString>()
            .map_err(|_| missing())?
            .to_string_lossy()
            .into_owned();
        self.take(py, &symbol, "deleted")?
            .map(|_| ())
            .ok_or_else(missing)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // The dict is never changed once built: iterating it is iterating a snapshot.
        Ok(self.dict(py)?.into_any().try_iter()?.into_any())
    }

    fn __bool__(&self) -> PyResult<bool> {
        Ok(self.count()? > 0)
    }

    /// Tracked symbols: a `dict_keys` view of a snapshot of the book (it does not change
    /// afterwards), as the original's `positions.keys()`.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dict(py)?.call_method0(intern!(py, "keys"))
    }

    /// Tracked Position objects: a `dict_values` view of a snapshot of the book.
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dict(py)?.call_method0(intern!(py, "values"))
    }

    /// `(symbol, Position)` pairs: a `dict_items` view of a snapshot of the book.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dict(py)?.call_method0(intern!(py, "items"))
    }

    /// The Position for `key`, or `default`.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.find(py, key)? {
            Some(p) => p,
            None => default.unwrap_or_else(|| py.None().into_bound(py)),
        })
    }

    /// Removes `key` and returns its Position; `default` if given and missing, else KeyError.
    #[pyo3(signature = (key, *default))]
    fn pop(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        if default.len() > 1 {
            return Err(PyTypeError::new_err(format!(
                "pop expected at most 2 arguments, got {}",
                default.len() + 1
            )));
        }
        let taken = match key.cast::<PyString>() {
            Ok(s) => self.take(py, &s.to_string_lossy(), "popped")?,
            Err(_) => None,
        };
        match taken {
            Some(p) => Ok(p.into_any()),
            None if !default.is_empty() => Ok(default.get_item(0)?.unbind()),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    /// Removes and returns the last inserted `(symbol, Position)`; KeyError when empty.
    fn popitem(&self, py: Python<'_>) -> PyResult<(String, Py<PyPosition>)> {
        loop {
            let Some(last) = self.keys_vec(py)?.pop() else {
                return Err(PyKeyError::new_err("popitem(): positions is empty"));
            };
            if let Some(p) = self.take(py, &last, "popped")? {
                return Ok((last, p));
            }
        }
    }

    /// Untracks every position.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        self.clear_all(py)
    }

    /// Inserts from a mapping or iterable of pairs, and from keyword arguments.
    #[pyo3(signature = (other=None, **kwargs))]
    fn update(
        &self,
        py: Python<'_>,
        other: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let mut items = Vec::new();
        if let Some(o) = other {
            items.extend(position_items(o)?);
        }
        if let Some(k) = kwargs {
            items.extend(position_items(k.as_any())?);
        }
        let keyed = self.assigned_keys(py, items)?;
        for (key, position) in keyed {
            self.insert_at(py, &key, position)?;
        }
        Ok(())
    }

    /// The Position for `key`; inserts `default` (a Position) first when missing.
    #[pyo3(signature = (key, default=None))]
    fn setdefault(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if let Some(p) = self.find(py, key)? {
            return Ok(p.unbind());
        }
        let symbol = key_arg(key)?;
        let value = default.ok_or_else(|| {
            PyTypeError::new_err(
                "positions.setdefault needs a Position default (None is not a Position)",
            )
        })?;
        let position = position_arg(py, value)?;
        let symbol = self.assigned_key(py, &symbol, &position)?;
        PyPosition::note_overrides(position.bind(py));
        let core = &self.core;
        let shared = position.get().inner.clone();
        let handle: Handle = Arc::new(position.clone_ref(py));
        let outcome = run_plain(py, || {
            let key = position_manager_core::key::Key::parse(&symbol);
            let r = core.book().insert_if_free(&key, shared.clone(), handle);
            if r.is_ok() {
                core.record(&symbol, &shared, EventKind::Added, "assigned", None);
            }
            r.map(drop).map_err(drop)
        })?;
        match outcome {
            Ok(()) => Ok(position.into_any()),
            // Inserted by another thread meanwhile: return what is there, as dict.setdefault.
            Err(()) => self
                .find(py, key)?
                .map(Bound::unbind)
                .ok_or_else(|| PyKeyError::new_err(symbol)),
        }
    }

    /// A plain dict copy {symbol: Position}.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.dict(py)?.copy()
    }

    /// `copy.copy`, `copy.deepcopy` and pickle give a plain dict {symbol: Position} (the same
    /// Position objects for `copy.copy`, detached copies for `copy.deepcopy` and pickle).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let items = self.copy(py)?.items();
        let dict = py.get_type::<PyDict>().into_any();
        PyTuple::new(py, [dict, PyTuple::new(py, [items.into_any()])?.into_any()])
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if !is_mapping(other) {
            return Ok(false);
        }
        let mine = self.copy(py)?;
        let theirs = PyDict::new(py);
        for pair in other.call_method0("items")?.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
            theirs.set_item(k, v)?;
        }
        mine.eq(theirs)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        if let Some(unusable) = self.origin.unusable("PositionsView") {
            return Ok(unusable);
        }
        Ok(self.copy(py)?.repr()?.to_string())
    }
}

impl Drop for PositionsView {
    /// In a forked child, the core and the journal are leaked rather than freed: they belong to
    /// the parent (src/fork.rs).
    fn drop(&mut self) {
        self.origin.release(self.core.clone());
        self.origin.release(self.held.journal.clone());
    }
}

impl PositionsView {
    fn keys_vec(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.dict(py)?.keys().extract()
    }
}
