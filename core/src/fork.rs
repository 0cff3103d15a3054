//! `fork()`: what a forked child process must not inherit from its parent.
//!
//! A child created by `fork()` is a copy of the parent's memory with one thread, the one that
//! forked. Every lock another parent thread held at that moment stays held in the child for
//! ever (no thread is left to release it), and every descriptor, database connection and
//! `flock` the parent holds is shared with the child. The binding's after-fork hook (Python's
//! `os.register_at_fork(after_in_child=...)`) calls [`after_fork_in_child`] first thing in the
//! child, which makes this process's [`generation`] differ from every parent's.
//!
//! What the core keeps per process is then kept per generation: the per-target save locks
//! (`persist::files::lock_target`) start afresh in the child, so a save the child makes never
//! waits for a lock a parent thread held at the fork; the descriptors holding a save's
//! directory `flock` at the fork are handed to the hook to close
//! ([`crate::persist::take_inherited_lock_fds`]). The binding refuses, in the child, to use a
//! manager made in another generation.
//!
//! No lock is taken here, nor in anything the hook calls: only atomics.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many forks separate this process from the first one that loaded the library (0 there;
/// one more in each child, counted by [`after_fork_in_child`]).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// This process's fork generation: an atomic load (no system call). Two values differ exactly
/// when they were read in different processes of one fork lineage.
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Called once in a forked child, before any other code of the child uses the core (the
/// binding's after-fork hook): starts a new generation.
pub fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}
