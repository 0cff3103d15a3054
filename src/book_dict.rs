//! The book as a Python dict, for reads as cheap as the original's plain dict.
//!
//! `get_all_positions()`, `len(manager.positions)`, `symbol in manager.positions`, lookups and
//! iteration are what a bot does all the time (the dashboard, risk checks, before every open).
//! Answering each from the book would cost a lock, a string conversion and a conversion of the
//! answer every time. Instead the binding keeps one Python dict `{key: Position}` built from the
//! book and tagged with the book's generation ([`Book::generation`], changed whenever a tracked
//! entry enters or leaves). A read checks the generation (one atomic load) and, while it has not
//! changed, answers from that dict at dict speed; a change makes the next read build a new dict.
//!
//! A built dict is never changed afterwards: a reader iterating it while another thread changes
//! the book goes on over the dict it started with (no "changed size during iteration"), and
//! `get_all_positions()` hands out a copy of it, never the dict itself. The latest dict is
//! published through an [`ArcSwapOption`] (arc-swap: a wait-free load, no lock on the read path).
//!
//! A dict that is no longer the book's keeps its Positions alive until the next read replaces it.
//!
//! [`Book::generation`]: position_manager_core::book::Book::generation

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::PyTraverseError;

use crate::logging::detached;
use crate::manager::CoreManager;

/// The dict built at one generation of the book.
struct Built {
    generation: u64,
    dict: Py<PyDict>,
    /// Some key holds U+FFFD, the character a lone surrogate becomes when a Python key is
    /// converted: then a key with a lone surrogate may still name a book key (see
    /// [`BookDict::get`]).
    replacement_char: bool,
}

/// The latest dict copy of a book (see the module documentation).
#[derive(Default)]
pub struct BookDict {
    built: ArcSwapOption<Built>,
}

impl BookDict {
    /// The dict of the book's current tracked positions (do not change it).
    pub fn current<'py>(
        &self,
        py: Python<'py>,
        core: &CoreManager,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.with_current(py, core, |b| b.dict.bind(py).clone())
    }

    /// `key`'s position by dict lookup. A key that is not a `str` names nothing. A `str`
    /// subclass is looked up by its text, and a key with a lone surrogate by the text the book
    /// keeps for it (U+FFFD in place of each byte), so every `str` is answered from the dict
    /// with the interpreter held, never by waiting for the book's lock.
    pub fn get<'py>(
        &self,
        py: Python<'py>,
        core: &CoreManager,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Ok(text) = key.cast::<PyString>() else {
            return Ok(None);
        };
        self.with_current(py, core, |b| {
            let dict = b.dict.bind(py);
            if key.is_exact_instance_of::<PyString>() {
                if let Some(position) = dict.get_item(key)? {
                    return Ok(Some(position));
                }
                // Only a key with a lone surrogate can still name a book key, and only one
                // holding U+FFFD.
                if !b.replacement_char || text.to_cow().is_ok() {
                    return Ok(None);
                }
            }
            dict.get_item(text.to_string_lossy().as_ref())
        })?
    }

    /// Whether `key` is tracked, by dict lookup (as [`BookDict::get`]).
    pub fn contains(
        &self,
        py: Python<'_>,
        core: &CoreManager,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        if key.is_exact_instance_of::<PyString>() {
            // The common case at a dict's cost: no position object is handed out.
            let known = self.with_current(py, core, |b| {
                Ok::<_, PyErr>(match b.dict.bind(py).contains(key)? {
                    true => Some(true),
                    false if b.replacement_char => None,
                    false => Some(false),
                })
            })??;
            if let Some(known) = known {
                return Ok(known);
            }
        }
        Ok(self.get(py, core, key)?.is_some())
    }

    fn with_current<'py, T>(
        &self,
        py: Python<'py>,
        core: &CoreManager,
        f: impl FnOnce(&Built) -> T,
    ) -> PyResult<T> {
        let generation = core.book().generation();
        if let Some(b) = self.built.load().as_ref() {
            if b.generation == generation {
                return Ok(f(b));
            }
        }
        // Taken attached when the book's lock is free, waited for detached otherwise (as
        // `PyPositionManager::events_after` explains).
        let (generation, handles) = match core.book().try_handles() {
            Some(read) => read,
            None => detached(py, || core.book().handles()),
        };
        let dict = PyDict::new(py);
        let mut replacement_char = false;
        for (key, handle) in handles {
            replacement_char |= key.as_str().contains('\u{FFFD}');
            dict.set_item(key.as_str(), handle.clone_ref(py))?;
        }
        let new = Arc::new(Built {
            generation,
            dict: dict.unbind(),
            replacement_char,
        });
        let out = f(&new);
        // Publish it unless another thread published a newer one meanwhile. The dict it
        // replaces is dropped here, with no lock held (it may free the last reference to a
        // Position).
        let replaced = self.built.rcu(|current| match current {
            Some(c) if c.generation > new.generation => Some(c.clone()),
            _ => Some(new.clone()),
        });
        drop(replaced);
        Ok(out)
    }
}

impl BookDict {
    /// Reports the published dict to the garbage collector (it holds the positions). It is
    /// only published with the interpreter held, so a collection sees the same dict in all its
    /// passes.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(built) = self.built.load().as_ref() {
            visit.call(&built.dict)?;
        }
        Ok(())
    }
}
