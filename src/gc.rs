//! The garbage collector's view of the Python objects the Rust side holds.
//!
//! A manager holds Python objects from Rust (the client, the `on_event` callbacks, the exit rule
//! objects, the `Position` objects its core's book keeps); the bot's objects often point back to
//! the manager (`manager.on_event(self.handle)`, `position.bot = self`). For the collector to
//! free such a cycle, every pyclass that holds Python objects reports them in `__traverse__`.
//!
//! Ownership: everything the core holds (the book's handles, the journal's, the client, the
//! callbacks, the exit rule objects) is reported by the manager's `PositionsView` only, and
//! every Python object that holds the core (the manager, each `UpdateIterator`) holds and
//! reports that view: an object the core holds is then reachable for the collector as long as
//! anything that can still use the core is. Each reference is reported by one object only.
//!
//! Consistency: the collector traverses an object more than once per collection, and an object
//! reported in one pass must be reported in the next ones, or one that is still in use could be
//! taken for garbage. The book's handles sit behind locks that threads running detached take at
//! any time, so they are not read in every traversal: the first traversal of a collection reads
//! them (locks only tried; when one is held, none is reported that collection) into a list the
//! collection pins ([`PINNED`], let go at its end), and every traversal of that collection
//! reports that list.
//! A collection is told from the next by [`epoch`], which a `gc.callbacks` entry bumps at the
//! start and the end of each. Skipping is safe (a cycle is then freed by a later collection);
//! reporting a reference the object does not own never happens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use crate::manager::Handle;
use crate::position::PyPosition;

/// Bumped at the start and the end of every collection (see the module documentation).
static EPOCH: AtomicU64 = AtomicU64::new(1);

/// The current collection's number (changes between collections, never within one).
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// The handles read during the current collection, held strongly until it ends, so that every
/// pass of one collection reports the same objects, each through a reference someone really
/// holds (a thread running detached may drop the book's own reference meanwhile).
static PINNED: parking_lot::Mutex<Vec<Handle>> = parking_lot::Mutex::new(Vec::new());

/// The `gc.callbacks` entry: marks a collection's start or end, and lets go of the handles the
/// last collection pinned (dropped after the lock is released, with the interpreter held).
#[pyfunction]
fn gc_phase(_phase: &Bound<'_, PyAny>, _info: &Bound<'_, PyAny>) {
    EPOCH.fetch_add(1, Ordering::Relaxed);
    let pinned = std::mem::take(&mut *PINNED.lock());
    drop(pinned);
}

/// Adds the callback to `gc.callbacks` (once, at import). Without it (removed by the program)
/// the handle lists stay as first read: cycles through positions added later are then not
/// freed, but nothing in use is ever taken for garbage.
pub fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let phase = wrap_pyfunction!(gc_phase, m)?;
    m.py()
        .import("gc")?
        .getattr("callbacks")?
        .call_method1("append", (phase,))?;
    Ok(())
}

/// The handles a view reports during one collection (weak: the collection's strong references
/// are in [`PINNED`]).
#[derive(Default)]
pub struct HandleCache {
    epoch: u64,
    handles: Vec<Weak<Py<PyPosition>>>,
}

impl HandleCache {
    /// Reports the handles of this collection: read first with `read` (which calls its
    /// argument with each handle and returns false when a lock was busy) when this is the
    /// collection's first traversal, and pinned until the collection ends; a handle seen twice
    /// (the book and the journal share one) is reported once. When a lock was busy, nothing is
    /// reported this collection (a cycle through these positions is freed by a later one).
    pub fn visit(
        &mut self,
        visit: &PyVisit<'_>,
        read: impl FnOnce(&mut dyn FnMut(&Handle)) -> bool,
    ) -> Result<(), PyTraverseError> {
        let now = epoch();
        if self.epoch != now {
            self.epoch = now;
            // The old list's weak references are dropped: no Python object is touched.
            self.handles = Vec::new();
            let mut fresh: Vec<Handle> = Vec::new();
            if read(&mut |h: &Handle| fresh.push(h.clone())) {
                fresh.sort_by_key(Arc::as_ptr);
                fresh.dedup_by(|a, b| Arc::ptr_eq(a, b));
                // Only collections take it, one at a time: never busy here; if it were, the
                // handles would not be reported (and the clones dropped without the
                // interpreter: pyo3 defers it).
                if let Some(mut pinned) = PINNED.try_lock() {
                    self.handles = fresh.iter().map(Arc::downgrade).collect();
                    pinned.extend(fresh);
                }
            }
        }
        for weak in &self.handles {
            // Pinned for this collection: every upgrade succeeds.
            if let Some(handle) = weak.upgrade() {
                visit.call(&*handle)?;
            }
        }
        Ok(())
    }
}
