//! `os.fork()`: a forked child refuses the parent's managers, and never closes, unlocks or
//! writes anything the parent still uses.
//!
//! A child made by `fork()` has one thread. Every lock another parent thread held at the fork
//! (the book's, a journal writer's across its SQL write, a save's) stays held in the child for
//! ever, and the child shares the parent's descriptors: its database connections, its
//! directory `flock`s. Using a manager made before the fork could hang the child for ever
//! (Ctrl+C does not end a lock wait), or write the parent's journal account as the parent
//! itself (both processes then number events alike, and the journal drops one's as
//! duplicates); freeing one could send the PostgreSQL server the parent's session's
//! terminate message.
//!
//! So, at import, [`after_fork_in_child`] is registered with `os.register_at_fork`. In the child
//! it starts a new fork generation ([`position_manager_core::fork`]), forgets the parent's
//! count of threads inside manager calls (the exit waits for this process's calls only), and
//! closes the child's copies of the descriptors that held a save's directory lock at the fork.
//! Every object holding the core or a journal connection records its [`Origin`] when made;
//! each of its entry points checks it first (one atomic load and a comparison, no system call)
//! and raises `RuntimeError` in another generation, before any lock is touched. When such an
//! object is freed in the child, what it holds is leaked instead of dropped
//! ([`Origin::release`]): no connection is closed, no terminate message sent, no SQLite file
//! touched.

use std::sync::atomic::{AtomicU32, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Where an object was made: the fork generation and the process id.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    generation: u64,
    pid: u32,
}

/// This process's id, read once per process (set at import and again by the after-fork hook):
/// recording an [`Origin`] makes no system call.
static PID: AtomicU32 = AtomicU32::new(0);

fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

impl Origin {
    /// This process, now.
    pub fn here() -> Origin {
        Origin {
            generation: position_manager_core::fork::generation(),
            pid: pid(),
        }
    }

    /// Whether this process is a forked child of the one the object was made in.
    #[inline]
    pub fn inherited(&self) -> bool {
        position_manager_core::fork::generation() != self.generation
    }

    /// `Ok` in the process the object was made in; in a forked child, the `RuntimeError` that
    /// says so (`what` names the object: "this PositionManager").
    #[inline]
    pub fn check(&self, what: &str) -> PyResult<()> {
        if self.inherited() {
            Err(self.refused(what))
        } else {
            Ok(())
        }
    }

    #[cold]
    fn refused(&self, what: &str) -> PyErr {
        PyRuntimeError::new_err(format!(
            "{what} was created in process {} and cannot be used in the forked child process {} \
             (its locks, threads and journal connection belong to the parent); create a new \
             PositionManager in the child",
            self.pid,
            pid()
        ))
    }

    /// In a forked child, the `RuntimeError` for an object made before the fork whose lock is
    /// still held (`what` names it: "this Position"): most likely by a parent thread at the
    /// fork, which no thread is left to release.
    #[cold]
    pub fn held_at_fork(&self, what: &str) -> PyErr {
        PyRuntimeError::new_err(format!(
            "{what} was created in process {} and its lock is held in the forked child process \
             {} (most likely by a thread of the parent at the fork, which no thread of the child \
             can release); read positions in the child from a copy made before the fork or from \
             a PositionManager created in the child",
            self.pid,
            pid()
        ))
    }

    /// For `repr()` of an object [`Self::held_at_fork`] refuses (which must not raise).
    pub fn held_text(&self, what: &str) -> String {
        format!(
            "<{what} of process {}: locked at the fork, unreadable in the forked child process {}>",
            self.pid,
            pid()
        )
    }

    /// When the object is freed: in a forked child, `held` (a clone of what the object holds:
    /// the core, a journal) is leaked, so that what it keeps alive is never dropped in the
    /// child (no connection closed, no message sent on the parent's socket, no SQLite file
    /// touched); in its own process, `held` is simply dropped.
    pub fn release<T>(&self, held: T) {
        if self.inherited() {
            std::mem::forget(held);
        } else {
            drop(held);
        }
    }

    /// For `repr()` in a forked child (which must not raise): what the object is.
    pub fn unusable(&self, what: &str) -> Option<String> {
        self.inherited().then(|| {
            format!(
                "<{what} of process {}: unusable in the forked child process {}>",
                self.pid,
                pid()
            )
        })
    }
}

/// The after-fork hook (`os.register_at_fork(after_in_child=...)`, registered at import): runs
/// first in a forked child, in its only thread. It takes no lock: a new fork generation, the
/// exit's count of manager calls set to this process's (none), the process id read again, and
/// the inherited descriptors of the save directory locks other parent threads held closed with
/// `os.close` (an error closing one is reported as unraisable, as Python reports a fork hook's
/// exception, and the others are still closed).
#[pyfunction]
#[pyo3(name = "_after_fork_in_child")]
pub fn after_fork_in_child(py: Python<'_>) {
    position_manager_core::fork::after_fork_in_child();
    PID.store(std::process::id(), Ordering::Relaxed);
    crate::interpreter_exit::forked();
    let fds = position_manager_core::persist::take_inherited_lock_fds();
    if fds.is_empty() {
        return;
    }
    if let Ok(os) = py.import(pyo3::intern!(py, "os")) {
        for fd in fds {
            if let Err(e) = os.call_method1(pyo3::intern!(py, "close"), (fd,)) {
                // An interruption is not swallowed: reported as unraisable, as Python reports
                // any exception of a fork hook.
                e.write_unraisable(py, None);
            }
        }
    }
}

/// Registers [`after_fork_in_child`] with `os.register_at_fork` (where the platform has it).
pub fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let hook = wrap_pyfunction!(after_fork_in_child, m)?;
    m.add_function(hook.clone())?;
    pid();
    let os = py.import(pyo3::intern!(py, "os"))?;
    if os.hasattr(pyo3::intern!(py, "register_at_fork"))? {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("after_in_child", hook)?;
        os.call_method("register_at_fork", (), Some(&kwargs))?;
    }
    Ok(())
}
