//! The interpreter's exit while other threads are inside manager calls.
//!
//! CPython up to 3.13 ends a thread that takes the interpreter back once finalization has begun
//! with `pthread_exit`. In a thread whose stack holds this extension's frames — a bot's daemon
//! monitor thread in `update_positions()` whose client is waiting on the network, or whose core
//! work runs detached — that forced unwinding cannot pass the binding's `extern "C"` entry
//! points, and the whole process aborts (SIGABRT, exit status 134: a supervisor sees a crash, and
//! restarts a bot that was meant to stop).
//!
//! So, at import, [`wait_for_manager_calls`] is registered with `atexit`. At exit it marks the
//! interpreter as exiting and waits, detached, until no other thread is inside a manager call
//! that detaches ([`Busy`] counts them), for at most [`EXIT_WAIT`]; Ctrl+C ends the wait. Once
//! exiting, a manager call on any other thread raises `SystemExit` at its next client call (the
//! operation ends as an interruption ends it: the book consistent, an order already sent
//! settled) or at once if it starts then; `SystemExit` ends a thread silently. Reads that only
//! detach to wait for a lock run attached instead ([`detach_or_stay`]). Since `atexit` callbacks
//! run before finalization begins, every thread is out of the extension's detached sections
//! (or ends without re-entering one) by the time a thread could be made to exit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;

/// The longest the interpreter's exit waits for other threads' manager calls to end.
pub const EXIT_WAIT: Duration = Duration::from_secs(30);

/// After this long, the wait is reported (a client call in flight on another thread).
const REPORT_AFTER: Duration = Duration::from_secs(1);

/// How often the wait looks again (and checks for Ctrl+C).
const POLL: Duration = Duration::from_millis(10);

/// The interpreter has started its exit (set by [`wait_for_manager_calls`]).
static EXITING: AtomicBool = AtomicBool::new(false);

/// The thread running the exit: its own manager calls (later `atexit` callbacks) go on as usual.
static EXIT_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Threads inside a manager call that detaches from the interpreter.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// The logger the exit's wait is reported on.
const LOGGER: &str = "position_manager_rs";

/// Whether the interpreter is exiting and this thread is not the one running the exit.
pub fn exiting_elsewhere() -> bool {
    EXITING.load(Ordering::SeqCst)
        && EXIT_THREAD
            .get()
            .is_some_and(|t| *t != std::thread::current().id())
}

/// The exception that ends another thread's manager call at exit.
pub fn exit_error() -> PyErr {
    PySystemExit::new_err(
        "the interpreter is exiting: position_manager_rs ends this thread's manager call",
    )
}

/// In a forked child (the after-fork hook, src/fork.rs): the parent's threads inside manager
/// calls do not exist here, so the count starts again from none (it waited, at the child's
/// exit, [`EXIT_WAIT`] for threads that are not there, and then logged an error; found by an
/// audit).
pub fn forked() {
    BUSY.store(0, Ordering::SeqCst);
}

/// One thread inside a detaching manager call (counted until dropped, which must happen after
/// the thread is attached again). It records the fork generation it was counted in: a call
/// that a forked child's only thread was inside at the fork (a client method that forked)
/// ends in the child without lowering the child's fresh count.
#[must_use]
pub struct Busy(u64);

impl Busy {
    /// Counts this thread in, unless the interpreter is exiting and this is another thread.
    ///
    /// The count is raised before the flag is read and the exit raises the flag before it reads
    /// the count (both sequentially consistent): either the exit waits for this call, or this
    /// call sees the exit.
    pub fn enter() -> Option<Busy> {
        let generation = position_manager_core::fork::generation();
        BUSY.fetch_add(1, Ordering::SeqCst);
        if exiting_elsewhere() {
            BUSY.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Busy(generation))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0 == position_manager_core::fork::generation() {
            BUSY.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Runs `f` detached, counted ([`Busy`]); at exit, on another thread, raises `SystemExit` instead.
pub fn detach<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: pyo3::marker::Ungil + FnOnce() -> T,
    T: pyo3::marker::Ungil,
{
    let busy = Busy::enter().ok_or_else(exit_error)?;
    let out = py.detach(f);
    drop(busy);
    Ok(out)
}

/// Runs `f` detached, counted; at exit, on another thread, attached (for work that calls no
/// Python and may only wait for a lock no thread holds while Python runs: DESIGN rule 1).
pub fn detach_or_stay<T, F>(py: Python<'_>, f: F) -> T
where
    F: pyo3::marker::Ungil + FnOnce() -> T,
    T: pyo3::marker::Ungil,
{
    match Busy::enter() {
        Some(busy) => {
            let out = py.detach(f);
            drop(busy);
            out
        }
        None => f(),
    }
}

/// `atexit` callback (registered at import): waits, detached, until no other thread is inside a
/// detaching manager call, at most [`EXIT_WAIT`]; a wait longer than a second is logged on the
/// `position_manager_rs` logger. Ctrl+C during the wait ends it (the `KeyboardInterrupt` is
/// raised, and `atexit` reports it).
#[pyfunction]
#[pyo3(name = "_wait_for_manager_calls")]
pub fn wait_for_manager_calls(py: Python<'_>) -> PyResult<()> {
    let _ = EXIT_THREAD.set(std::thread::current().id());
    EXITING.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let mut reported = false;
    loop {
        let busy = BUSY.load(Ordering::SeqCst);
        if busy == 0 {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= EXIT_WAIT {
            log(
                py,
                "error",
                format!(
                    "{busy} manager call(s) still running on other threads after waiting {} s \
                     at exit: the interpreter may abort the process if one of them takes it back",
                    EXIT_WAIT.as_secs()
                ),
            )?;
            return Ok(());
        }
        if waited >= REPORT_AFTER && !reported {
            reported = true;
            log(
                py,
                "warning",
                format!(
                    "waiting for {busy} manager call(s) on other threads to end before the \
                     interpreter exits (at most {} s; Ctrl+C ends the wait)",
                    EXIT_WAIT.as_secs()
                ),
            )?;
        }
        py.check_signals()?;
        py.detach(|| std::thread::sleep(POLL));
    }
}

/// Logs `message` at `level` on [`LOGGER`]. A handler's failure is reported as unraisable (the
/// exit goes on); an interruption it raised (Ctrl+C while the line is written) is returned.
fn log(py: Python<'_>, level: &str, message: String) -> PyResult<()> {
    let logged = py
        .import(pyo3::intern!(py, "logging"))
        .and_then(|logging| logging.call_method1(pyo3::intern!(py, "getLogger"), (LOGGER,)))
        .and_then(|logger| logger.call_method1(level, (message,)));
    match logged {
        Err(e) if crate::logging::is_interrupt(py, &e) => Err(e),
        Err(e) => {
            e.write_unraisable(py, None);
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

/// Registers [`wait_for_manager_calls`] with `atexit`.
pub fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let wait = wrap_pyfunction!(wait_for_manager_calls, m)?;
    m.add_function(wait.clone())?;
    py.import(pyo3::intern!(py, "atexit"))?
        .call_method1(pyo3::intern!(py, "register"), (wait,))?;
    Ok(())
}
