//! The state file on disk: where a save really writes, who may write at the same time, and how
//! a file is read without blocking.
//!
//! - **Target.** A symlink is followed (up to [`MAX_LINKS`] hops) and its final target is
//!   replaced, so the link stays a link. A target that exists but is not a regular file (a
//!   directory, a FIFO, a device, a socket) is refused before anything is written.
//! - **Ordering.** Saves of one target are serialised: in this process by a re-entrant lock per
//!   canonical target ([`lock_target`]; the binding holds it around the whole save, book snapshot
//!   included, so a save that completes later also read the book later), across processes by an
//!   exclusive `flock` on the target's directory for the write and the rename. That lock is
//!   waited for at most [`DIR_LOCK_WAIT`] (non-blocking attempts with short pauses); a directory
//!   locked longer (e.g. by `flock -n <dir> python bot.py`, which holds it for the bot's whole
//!   life) is saved into without it, with a warning. The caller can have the wait check for
//!   interruptions ([`with_lock_wait`]).
//! - **Permissions.** A replaced file keeps its mode (and, where the process may, its owner and
//!   group); a new file is created `0600` (owner only: it holds trading state).
//! - **Temporary names** always fit the file system's 255-byte limit: `.<name>.tmp-<pid>-<n>`, or
//!   for a long name its first bytes and a hash of the whole name (`.<prefix>~<hash>.tmp-...`).
//!   Names are handled as bytes, so any name the OS accepts (non-UTF-8 too) can be saved.
//!
//! Temporary names are made here rather than with a temp-file crate because the writer's pid in
//! the name is what lets the next save recognise a dead writer's leftover; `create_new` (O_EXCL)
//! with an explicit mode is all the creation needs. Locking is `flock` through `rustix`
//! (safe bindings).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use parking_lot::{ArcReentrantMutexGuard, Mutex, RawMutex, RawThreadId, ReentrantMutex};

use super::io_error;
use crate::error::{CoreError, CoreResult};

/// Symlink hops followed before a target is refused (as the kernel's ELOOP limit).
pub const MAX_LINKS: usize = 40;

/// The longest file name most file systems accept, in bytes.
const NAME_MAX: usize = 255;

/// A temporary file whose writer cannot be checked for life (no `/proc`) counts as left over
/// once it is this old.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// The longest a save waits for another process's lock on the target's directory before it
/// goes on without it (with a warning). A save holds that lock for milliseconds (write, `fsync`,
/// rename), so only a lock held for another purpose lasts this long.
pub const DIR_LOCK_WAIT: Duration = Duration::from_secs(3);

/// The first and the longest pause between two attempts to take the directory lock.
const DIR_LOCK_FIRST_PAUSE: Duration = Duration::from_millis(1);
const DIR_LOCK_MAX_PAUSE: Duration = Duration::from_millis(10);

/// The largest state file a load reads: 1 GiB. A saved position is well under 4 KiB, so this
/// holds hundreds of thousands of positions with all their extra attributes, far beyond any real
/// book; a larger file is refused (`StateFileError`) before anything is allocated for it, so a
/// corrupt, sparse or hostile file cannot exhaust memory.
pub const MAX_STATE_FILE_BYTES: u64 = 1 << 30;

/// Distinguishes temporary files of successive saves of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

type TargetMutex = ReentrantMutex<()>;

/// Held while a target is being saved by this process (see [`lock_target`]).
pub struct TargetLock {
    _guard: ArcReentrantMutexGuard<RawMutex, RawThreadId, ()>,
}

/// The per-target locks of one process, by canonical target path.
struct TargetLocks {
    /// The fork generation ([`crate::fork::generation`]) of the process they belong to.
    generation: u64,
    locks: Mutex<HashMap<PathBuf, Arc<TargetMutex>>>,
}

/// The current process's [`TargetLocks`]. A forked child finds its parent's table (whose locks,
/// and whose map lock, a parent thread may have held at the fork: held for ever in the child)
/// and puts a table of its own in its place, without taking any lock (`arc-swap`).
static TARGET_LOCKS: ArcSwapOption<TargetLocks> = ArcSwapOption::const_empty();

/// This process's per-target locks (made on first use, and again in a forked child).
fn target_locks() -> Arc<TargetLocks> {
    let generation = crate::fork::generation();
    loop {
        let current = TARGET_LOCKS.load_full();
        if let Some(table) = &current {
            if table.generation == generation {
                return table.clone();
            }
        }
        let fresh = Arc::new(TargetLocks {
            generation,
            locks: Mutex::new(HashMap::new()),
        });
        let previous = TARGET_LOCKS.compare_and_swap(&current, Some(fresh.clone()));
        let replaced = match (&*previous, &current) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if replaced {
            // The parent's table is only forgotten here: dropping it takes no lock, and the
            // parent's threads that held its locks do not exist in this process.
            return fresh;
        }
    }
}

/// Serialises saves of the file `path` designates within this process: every path naming the
/// same target (through symlinks, `..`, a relative path) gets the same lock. Re-entrant, so a
/// save started from inside another save of the same target on the same thread cannot
/// deadlock. Blocks while another thread holds it: call it with no other lock held (and, from
/// the binding, detached from the interpreter).
pub fn lock_target(path: &Path) -> TargetLock {
    let key = canonical_target(path);
    let table = target_locks();
    let mutex = {
        let mut locks = table.locks.lock();
        // Forget locks nobody holds or waits for, so the map does not grow with every path.
        locks.retain(|_, m| Arc::strong_count(m) > 1);
        locks.entry(key).or_default().clone()
    };
    TargetLock {
        _guard: mutex.lock_arc(),
    }
}

/// The target with its symlinks followed and its directory canonicalised (as far as it
/// exists); used as the key of [`lock_target`].
fn canonical_target(path: &Path) -> PathBuf {
    let target = resolve_target(path).unwrap_or_else(|_| path.to_path_buf());
    match (target.parent(), target.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            fs::canonicalize(dir)
                .map(|d| d.join(name))
                .unwrap_or(target)
        }
        _ => target,
    }
}

/// The file a save to `path` replaces: `path` itself, or the final target of the symlink chain
/// it starts (which need not exist yet).
pub fn resolve_target(path: &Path) -> CoreResult<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                #[cfg(unix)]
                if let Some(owner) = foreign_link_in_shared_dir(&current, &m) {
                    return Err(CoreError::Io {
                        errno: Some(13), // EACCES
                        message: format!(
                            "cannot save the state: the symlink {} belongs to another user \
                             (uid {owner}) in a shared directory (sticky, writable by all); it \
                             is not followed, as the kernel's fs.protected_symlinks does not",
                            current.display()
                        ),
                        path: path.display().to_string(),
                    });
                }
                let link = fs::read_link(&current).map_err(|e| {
                    let action = format!(
                        "cannot save the state (cannot read the symlink {})",
                        current.display()
                    );
                    io_error(&action, path, &e)
                })?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(CoreError::Io {
        errno: Some(40), // ELOOP
        message: format!("cannot save the state: more than {MAX_LINKS} levels of symlinks"),
        path: path.display().to_string(),
    })
}

/// The owner of the symlink `link` (its metadata `meta`) when the kernel's
/// `fs.protected_symlinks` rule would not follow it: it lies in a sticky, world-writable
/// directory (`/tmp`) and belongs neither to this process's user nor to the directory's owner.
/// A save follows links itself (it reads them and renames over their final target), so the
/// kernel never follows them and cannot apply that rule; without it another user's link
/// planted at the state path there aimed the save at any file this process may replace (found
/// by an audit on 2026-12-07).
#[cfg(unix)]
fn foreign_link_in_shared_dir(link: &Path, meta: &Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let dir = match link.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = fs::metadata(dir).ok()?;
    let shared = dir.mode() & 0o1002 == 0o1002;
    let owner = meta.uid();
    let ours = owner == rustix::process::geteuid().as_raw() || owner == dir.uid();
    (shared && !ours).then_some(owner)
}

/// What kind of file `t` is, for messages ("a FIFO", "a directory", ...).
pub fn file_kind(t: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// The error for a target that is not a regular file; a directory is `EISDIR`
/// (`IsADirectoryError` in Python), anything else a plain `OSError` naming the kind.
fn not_regular(action: &str, path: &Path, t: fs::FileType) -> CoreError {
    let kind = file_kind(t);
    CoreError::Io {
        errno: t.is_dir().then_some(21), // EISDIR
        message: if t.is_dir() {
            format!("{action}: Is a directory")
        } else {
            format!("{action}: it is {kind}, not a regular file")
        },
        path: path.display().to_string(),
    }
}

/// Why [`read_bounded`] read nothing.
#[derive(Debug)]
pub enum BoundedReadError {
    /// The file could not be looked at, opened or read.
    Io(io::Error),
    /// It is not a regular file (what it is).
    NotRegular(fs::FileType),
    /// It is larger than the limit: its size as seen (claimed or read).
    TooLarge(u64),
    /// There is not enough memory for its claimed size.
    NoMemory(u64),
}

/// Reads the regular file `path` whole, at most `limit` bytes. Anything but a regular file is
/// refused before it is opened and again on the open file, which is opened without blocking (it
/// may have been swapped for a FIFO since the check), so a FIFO or a device never holds the
/// caller. The claimed size is only a hint (the file may grow while it is read): memory is
/// reserved fallibly and at most one byte past the limit is read, so neither the claimed size
/// nor the real one can make an allocation abort. The state file, the journal's TLS files and
/// the PostgreSQL password file are all read through here; each names its own errors.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedReadError> {
    let regular = |meta: Metadata| {
        if !meta.is_file() {
            Err(BoundedReadError::NotRegular(meta.file_type()))
        } else if meta.len() > limit {
            Err(BoundedReadError::TooLarge(meta.len()))
        } else {
            Ok(meta.len())
        }
    };
    regular(fs::metadata(path).map_err(BoundedReadError::Io)?)?;
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let mut file = options.open(path).map_err(BoundedReadError::Io)?;
    let size = regular(file.metadata().map_err(BoundedReadError::Io)?)?;
    let mut bytes = Vec::new();
    let hint = usize::try_from(size).unwrap_or(0);
    bytes
        .try_reserve_exact(hint)
        .map_err(|_| BoundedReadError::NoMemory(size))?;
    let read = (&mut file)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(BoundedReadError::Io)?;
    if read as u64 > limit {
        return Err(BoundedReadError::TooLarge(read as u64));
    }
    Ok(bytes)
}

/// Reads the state file at `path` ([`read_bounded`], at most [`MAX_STATE_FILE_BYTES`]).
pub fn read_regular(path: &Path) -> CoreResult<Vec<u8>> {
    const ACTION: &str = "cannot read the state file";
    read_bounded(path, MAX_STATE_FILE_BYTES).map_err(|e| match e {
        BoundedReadError::Io(e) => io_error(ACTION, path, &e),
        BoundedReadError::NotRegular(kind) => not_regular(ACTION, path, kind),
        BoundedReadError::TooLarge(size) => CoreError::State(format!(
            "{}: the state file is {size} bytes, above the limit of {MAX_STATE_FILE_BYTES} \
             bytes (1 GiB); it was not read",
            path.display()
        )),
        BoundedReadError::NoMemory(size) => CoreError::State(format!(
            "{}: the state file is {size} bytes and there is not enough memory to read it",
            path.display()
        )),
    })
}

/// The directory and file name of `path`.
pub fn split(path: &Path) -> CoreResult<(PathBuf, OsString)> {
    let name = path.file_name().ok_or_else(|| {
        CoreError::Value(format!(
            "the state file path must name a file, got {}",
            path.display()
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

fn bytes_of(name: &OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        name.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        name.to_string_lossy().into_owned().into_bytes()
    }
}

fn os_string(bytes: Vec<u8>) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(bytes)
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// 64-bit FNV-1a of `bytes` (stable across builds, unlike the standard library's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The longest `<pid>-<n>` suffix a temporary name gets: two u64s and a dash.
const SUFFIX_MAX: usize = 20 + 1 + 20;

/// The prefix of the temporary files of target `name`, as bytes: `.<name>.tmp-`, or
/// `.<first bytes>~<hash of the whole name>.tmp-` when that would not leave room for the
/// suffix within [`NAME_MAX`].
fn temp_prefix(name: &OsStr) -> Vec<u8> {
    let name = bytes_of(name);
    let fixed = 1 + ".tmp-".len() + SUFFIX_MAX;
    let mut out = Vec::with_capacity(NAME_MAX);
    out.push(b'.');
    if name.len() + fixed <= NAME_MAX {
        out.extend_from_slice(&name);
    } else {
        let hash = format!("~{:016x}", fnv1a(&name));
        let keep = NAME_MAX - fixed - hash.len();
        out.extend(name.iter().take(keep));
        out.extend_from_slice(hash.as_bytes());
    }
    out.extend_from_slice(b".tmp-");
    out
}

/// What a save on this thread does while it waits for the directory lock (see
/// [`with_lock_wait`]).
struct LockWait {
    check: Box<dyn FnMut() -> CoreResult<()>>,
    log_target: String,
}

thread_local! {
    static LOCK_WAIT: RefCell<Option<LockWait>> = const { RefCell::new(None) };
}

/// Puts back the [`LockWait`] a scope replaced or took, however the scope ends.
struct PutBack(Option<LockWait>);

impl Drop for PutBack {
    fn drop(&mut self) {
        let previous = self.0.take();
        LOCK_WAIT.with(|w| *w.borrow_mut() = previous);
    }
}

/// Runs `f` (a save on this thread) with `check` called between attempts to take the
/// cross-process lock of the target's directory: an error it returns (an interruption, e.g.
/// Ctrl+C) ends the wait and the save with that error, before anything is written. The warning
/// of a save that goes on without the lock is logged with `log_target` as its target (the
/// binding passes the manager's main logger). Without it, the wait checks nothing and logs
/// under this module's path.
pub fn with_lock_wait<T>(
    log_target: &str,
    check: impl FnMut() -> CoreResult<()> + 'static,
    f: impl FnOnce() -> T,
) -> T {
    let wait = LockWait {
        check: Box::new(check),
        log_target: log_target.to_owned(),
    };
    let _restore = PutBack(LOCK_WAIT.with(|w| w.replace(Some(wait))));
    f()
}

/// The cross-process lock: an exclusive `flock` on the target's directory, held for the write
/// and the rename (released when the descriptor closes). Best effort: where the directory
/// cannot be opened or locked (permissions, a file system without locks) the save goes on with
/// the in-process lock only, and so it does, with a warning, when another process holds the
/// lock for longer than [`DIR_LOCK_WAIT`].
///
/// Forks: a `flock` belongs to the open file description, which a child forked meanwhile
/// shares; the child's copy of the descriptor would keep the directory locked for as long as
/// the child lives, even after this process closed its own (a forked pool worker made every
/// later save wait [`DIR_LOCK_WAIT`] and go on without the lock; found by an audit). So the lock
/// is released explicitly (`LOCK_UN`, which releases it for every copy) before the descriptor
/// is closed, and while it is held its descriptor is listed in [`HELD_LOCK_FDS`], from which a
/// forked child's hook takes the copies it inherited to close them
/// ([`take_inherited_lock_fds`]): closing a copy never releases the parent's lock, and the
/// child never unlocks anything.
struct DirLock(#[allow(dead_code)] Option<HeldDirLock>);

/// A directory locked by this process: its descriptor, and its slot in [`HELD_LOCK_FDS`] (none
/// when every slot was taken: the lock is then only released explicitly).
struct HeldDirLock {
    file: File,
    slot: Option<usize>,
}

/// No descriptor in this slot of [`HELD_LOCK_FDS`].
const NO_FD: i32 = -1;

/// How many directory locks can be listed at once (saves of different directories running at
/// the same time on different threads; one per directory at a time).
const HELD_LOCK_SLOTS: usize = 64;

/// The descriptors of the directory locks this process holds now, one per slot ([`NO_FD`] for
/// none). Atomics only: a forked child's hook reads it without any lock, whichever thread of
/// the parent was using it at the fork.
static HELD_LOCK_FDS: [AtomicI32; HELD_LOCK_SLOTS] =
    [const { AtomicI32::new(NO_FD) }; HELD_LOCK_SLOTS];

thread_local! {
    /// The slots of [`HELD_LOCK_FDS`] this thread's saves hold (a save that forks from inside
    /// itself keeps its own lock in the child).
    static OWN_SLOTS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl HeldDirLock {
    /// Lists `file` (locked) in [`HELD_LOCK_FDS`].
    #[cfg(unix)]
    fn listed(file: File) -> HeldDirLock {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let slot = HELD_LOCK_FDS.iter().position(|s| {
            s.compare_exchange(NO_FD, fd, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        if let Some(i) = slot {
            let _ = OWN_SLOTS.try_with(|own| own.borrow_mut().push(i));
        }
        HeldDirLock { file, slot }
    }
}

impl Drop for HeldDirLock {
    /// Unlocks (for every copy of the descriptor a forked child may still have), then unlists,
    /// then closes: a listed descriptor is always open and locked or unlocked by this process,
    /// never a number reused for another file.
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
        }
        if let Some(i) = self.slot {
            // `try_with`: never a panic, even from a thread's last destructors.
            let _ = OWN_SLOTS.try_with(|own| own.borrow_mut().retain(|s| *s != i));
            if let Some(s) = HELD_LOCK_FDS.get(i) {
                s.store(NO_FD, Ordering::SeqCst);
            }
        }
        // The file closes when `self.file` drops, after this.
    }
}

/// In a forked child, once, before anything else runs in it: the descriptors of the directory
/// locks other parent threads' saves held at the fork (copies the child inherited), for the
/// caller to close (the binding's after-fork hook closes them with `os.close`; closing a copy
/// leaves the parent's lock as it is). The list is emptied: the child's own saves start from
/// none. The forking thread's own locks (a save that forked from inside itself) are kept.
pub fn take_inherited_lock_fds() -> Vec<i32> {
    let own = OWN_SLOTS
        .try_with(|own| own.borrow().clone())
        .unwrap_or_default();
    HELD_LOCK_FDS
        .iter()
        .enumerate()
        .filter(|(i, _)| !own.contains(i))
        .map(|(_, s)| s.swap(NO_FD, Ordering::SeqCst))
        .filter(|fd| *fd != NO_FD)
        .collect()
}

impl DirLock {
    /// Takes the lock of `dir` for a save of `target`; an error only from the caller's check
    /// (see [`with_lock_wait`]).
    #[cfg(unix)]
    fn acquire(dir: &Path, target: &Path) -> CoreResult<DirLock> {
        use rustix::fs::{flock, FlockOperation};
        use rustix::io::Errno;
        let Ok(f) = File::open(dir) else {
            return Ok(DirLock(None));
        };
        // The check may run Python code that saves again: it is taken out while it runs (a
        // nested save waits without it) and put back after.
        let mut wait = PutBack(LOCK_WAIT.with(|w| w.borrow_mut().take()));
        let deadline = Instant::now() + DIR_LOCK_WAIT;
        let mut pause = DIR_LOCK_FIRST_PAUSE;
        loop {
            match flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(DirLock(Some(HeldDirLock::listed(f)))),
                Err(e) if e == Errno::WOULDBLOCK || e == Errno::INTR => {}
                // No locks on this file system (ENOLCK, EOPNOTSUPP, ...): best effort.
                Err(_) => return Ok(DirLock(None)),
            }
            if let Some(w) = wait.0.as_mut() {
                (w.check)()?;
            }
            let now = Instant::now();
            if now >= deadline {
                let message = format!(
                    "save_state: the directory {} stays locked by another process (flock) after \
                     {} s: saving {} without the cross-process lock (a wrapper such as \
                     `flock -n <that directory>` holds it for the process's life: lock another \
                     file instead)",
                    dir.display(),
                    DIR_LOCK_WAIT.as_secs_f64(),
                    target.display()
                );
                match wait.0.as_ref() {
                    Some(w) => log::warn!(target: &w.log_target, "{message}"),
                    None => log::warn!("{message}"),
                }
                return Ok(DirLock(None));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(DIR_LOCK_MAX_PAUSE);
        }
    }

    #[cfg(not(unix))]
    fn acquire(_dir: &Path, _target: &Path) -> CoreResult<DirLock> {
        Ok(DirLock(None))
    }
}

/// Writes `bytes` to the file `path` designates (see the module documentation) through a
/// temporary file in the same directory: write, fsync, rename over the target, fsync the
/// directory. Leftover temporary files of earlier, interrupted saves to the same target are
/// removed first.
///
/// Every error names `path` as the caller gave it; the step that failed (the temporary file, a
/// symlink's target, the directory) is in the message.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CoreResult<()> {
    let _in_process = lock_target(path);
    let target = resolve_target(path)?;
    let (dir, name) = split(&target)?;
    let _cross_process = DirLock::acquire(&dir, &target)?;
    // "cannot save the state", with the symlink's target when the path is a link.
    let action = if target == path {
        "cannot save the state".to_owned()
    } else {
        format!("cannot save the state (its target {})", target.display())
    };
    let failed =
        |step: &str, e: &io::Error| io_error(&format!("cannot save the state ({step})"), path, e);
    let existing = match fs::symlink_metadata(&target) {
        Ok(m) if m.is_file() => Some(m),
        Ok(m) => return Err(not_regular(&action, path, m.file_type())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(&action, path, &e)),
    };
    let prefix = temp_prefix(&name);
    remove_leftovers(&dir, &prefix);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp_name = prefix;
    temp_name.extend_from_slice(format!("{}-{n}", std::process::id()).as_bytes());
    let temp = dir.join(os_string(temp_name));
    let written = (|| -> CoreResult<()> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let temp_step = |step: &str| format!("{step} the temporary file {}", temp.display());
        let mut f = options
            .open(&temp)
            .map_err(|e| failed(&temp_step("cannot create"), &e))?;
        if let Some(m) = &existing {
            keep_owner_and_mode(&f, m)
                .map_err(|e| failed(&temp_step("cannot set the mode of"), &e))?;
        }
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| failed(&temp_step("cannot write"), &e))?;
        drop(f);
        fs::rename(&temp, &target).map_err(|e| {
            failed(
                &format!(
                    "cannot rename the temporary file {} over {}",
                    temp.display(),
                    target.display()
                ),
                &e,
            )
        })
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(&dir).map_err(|e| failed(&format!("cannot sync the directory {}", dir.display()), &e))
}

/// Gives the new file the replaced file's owner and group (where the process may: a failure
/// is ignored) and then its mode (chown clears set-id bits, so the mode comes last).
#[cfg(unix)]
fn keep_owner_and_mode(f: &File, old: &Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let new = f.metadata()?;
    if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
        let _ = std::os::unix::fs::fchown(f, Some(old.uid()), Some(old.gid()));
    }
    f.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
}

#[cfg(not(unix))]
fn keep_owner_and_mode(f: &File, old: &Metadata) -> io::Result<()> {
    f.set_permissions(old.permissions())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Removes temporary files with `prefix` in `dir` whose writer is gone: this process's own
/// (none is in flight while the target's lock is held), those of processes that no longer
/// exist (checked in `/proc`), and — where `/proc` is not available — those older than an hour.
/// A failure to list or remove is ignored (the save itself does not depend on it).
fn remove_leftovers(dir: &Path, prefix: &[u8]) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id();
    let proc_fs = Path::new("/proc/self").exists();
    for item in listing.flatten() {
        let file_name = bytes_of(&item.file_name());
        let Some(rest) = file_name.strip_prefix(prefix) else {
            continue;
        };
        let pid = std::str::from_utf8(rest)
            .ok()
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let stale = match pid {
            Some(pid) if pid == own => true,
            Some(pid) if proc_fs => !Path::new("/proc").join(pid.to_string()).exists(),
            _ => item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE),
        };
        if stale {
            let _ = fs::remove_file(item.path());
        }
    }
}

/// Temporary files of the target `path` designates, currently in its directory (for tests and
/// diagnostics).
pub fn leftover_temp_files(path: &Path) -> Vec<PathBuf> {
    let target = resolve_target(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok((dir, name)) = split(&target) else {
        return Vec::new();
    };
    let prefix = temp_prefix(&name);
    let Ok(listing) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    listing
        .flatten()
        .filter(|i| bytes_of(&i.file_name()).starts_with(&prefix))
        .map(|i| i.path())
        .collect()
}

/// A fresh number for test directories and the like.
#[cfg(test)]
pub fn next_counter() -> u64 {
    TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pmrs-files-{tag}-{}-{}",
            std::process::id(),
            next_counter()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temporary_names_fit_255_bytes_for_any_name() {
        for len in [1usize, 100, 200, 214, 215, 230, 255] {
            let name = OsString::from("n".repeat(len));
            let mut full = temp_prefix(&name);
            full.extend_from_slice(format!("{}-{}", u64::MAX, u64::MAX).as_bytes());
            assert!(full.len() <= NAME_MAX, "{len}: {}", full.len());
            // Short names keep the readable form.
            if len <= 200 {
                assert_eq!(
                    temp_prefix(&name),
                    format!(".{}.tmp-", "n".repeat(len)).into_bytes()
                );
            }
        }
        // Two long names sharing their first bytes get different prefixes.
        let a = OsString::from(format!("{}a", "x".repeat(250)));
        let b = OsString::from(format!("{}b", "x".repeat(250)));
        assert_ne!(temp_prefix(&a), temp_prefix(&b));
    }

    #[test]
    fn a_255_byte_name_is_saved_and_leaves_no_temporary_file() {
        let d = dir("long");
        let path = d.join("s".repeat(255));
        write_atomic(&path, b"{}\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}\n");
        assert!(leftover_temp_files(&path).is_empty());
        fs::remove_dir_all(d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_keeps_pointing_at_the_replaced_target() {
        let d = dir("link");
        fs::create_dir(d.join("real")).unwrap();
        let target = d.join("real/state.json");
        fs::write(&target, b"old").unwrap();
        let link = d.join("state.json");
        std::os::unix::fs::symlink("real/state.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        // A dangling link creates its target.
        let dangling = d.join("dangling.json");
        std::os::unix::fs::symlink("real/new.json", &dangling).unwrap();
        write_atomic(&dangling, b"x").unwrap();
        assert_eq!(fs::read(d.join("real/new.json")).unwrap(), b"x");
        // A loop is an error, not a hang.
        let a = d.join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", d.join("b")).unwrap();
        assert!(matches!(
            write_atomic(&a, b"x"),
            Err(CoreError::Io {
                errno: Some(40),
                ..
            })
        ));
        fs::remove_dir_all(d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn modes_are_kept_and_new_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("mode");
        let fresh = d.join("fresh.json");
        write_atomic(&fresh, b"1").unwrap();
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let shared = d.join("shared.json");
        fs::write(&shared, b"0").unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&shared, b"1").unwrap();
        assert_eq!(
            fs::metadata(&shared).unwrap().permissions().mode() & 0o777,
            0o640
        );
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_directory_target_is_refused_before_anything_is_written() {
        let d = dir("isdir");
        let target = d.join("state.json");
        fs::create_dir(&target).unwrap();
        let err = write_atomic(&target, b"x").unwrap_err();
        assert!(
            matches!(
                &err,
                CoreError::Io {
                    errno: Some(21),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(leftover_temp_files(&target).is_empty());
        assert!(read_regular(&target).is_err());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn one_target_gets_one_lock_whatever_path_names_it() {
        let d = dir("key");
        let a = canonical_target(&d.join("state.json"));
        let b = canonical_target(&d.join("sub/../state.json"));
        fs::create_dir(d.join("sub")).unwrap();
        let c = canonical_target(&d.join("sub/../state.json"));
        assert_eq!(a, c);
        assert_ne!(a, b); // "sub" did not exist yet: not canonicalisable, kept as given
        let _held = lock_target(&d.join("state.json"));
        // Re-entrant on the same thread.
        let _again = lock_target(&d.join("sub/../state.json"));
        fs::remove_dir_all(d).unwrap();
    }

    /// Holds an exclusive `flock` on `dir` through a descriptor of its own, as another process
    /// would (flock locks belong to the open file, so this conflicts with a save's lock).
    #[cfg(unix)]
    fn hold_dir_lock(dir: &Path) -> File {
        use rustix::fs::{flock, FlockOperation};
        let f = File::open(dir).unwrap();
        flock(&f, FlockOperation::NonBlockingLockExclusive).unwrap();
        f
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_lock_is_released_for_every_copy_and_listed_for_a_forked_child() {
        use rustix::fs::{flock, FlockOperation};
        use std::os::fd::AsRawFd;
        let d = dir("fork-copies");
        let f = File::open(&d).unwrap();
        flock(&f, FlockOperation::NonBlockingLockExclusive).unwrap();
        // A forked child's copy shares the open file description, as a clone does.
        let copy = f.try_clone().unwrap();
        let fd = f.as_raw_fd();
        let held = HeldDirLock::listed(f);
        assert!(held.slot.is_some());
        // Another thread (as a forked child's hook, whose thread is not this one) is handed
        // the descriptor; this thread's own lock is never handed over.
        assert!(!take_inherited_lock_fds().contains(&fd));
        let handed = std::thread::spawn(take_inherited_lock_fds).join().unwrap();
        assert!(handed.contains(&fd), "{handed:?} lacks {fd}");
        drop(held);
        // Released although a copy of the descriptor is still open.
        let other = File::open(&d).unwrap();
        flock(&other, FlockOperation::NonBlockingLockExclusive)
            .expect("the lock outlived its save through a copy of the descriptor");
        drop(copy);
        let _ = fs::remove_dir_all(&d);
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_locked_by_someone_else_is_saved_into_after_a_bounded_wait() {
        let d = dir("flocked");
        let path = d.join("state.json");
        let held = hold_dir_lock(&d);
        let started = Instant::now();
        write_atomic(&path, b"saved").unwrap();
        let took = started.elapsed();
        assert!(took >= DIR_LOCK_WAIT, "{took:?}");
        assert!(took < DIR_LOCK_WAIT + Duration::from_secs(20), "{took:?}");
        assert_eq!(fs::read(&path).unwrap(), b"saved");
        assert!(leftover_temp_files(&path).is_empty());
        // Once released, a save takes the lock at once.
        drop(held);
        let started = Instant::now();
        write_atomic(&path, b"again").unwrap();
        assert!(started.elapsed() < DIR_LOCK_WAIT);
        fs::remove_dir_all(d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn an_interruption_while_waiting_ends_the_save_before_anything_is_written() {
        use std::cell::Cell;
        use std::rc::Rc;
        let d = dir("flock-check");
        let path = d.join("state.json");
        let checks = Rc::new(Cell::new(0u32));
        // Not contended: the check is never called.
        let counted = checks.clone();
        with_lock_wait(
            "test",
            move || {
                counted.set(counted.get() + 1);
                Ok(())
            },
            || write_atomic(&path, b"first"),
        )
        .unwrap();
        assert_eq!(checks.get(), 0);
        // Contended: the check's error ends the save at once, the file as it was.
        let _held = hold_dir_lock(&d);
        let counted = checks.clone();
        let started = Instant::now();
        let err = with_lock_wait(
            "test",
            move || {
                counted.set(counted.get() + 1);
                if counted.get() >= 3 {
                    Err(CoreError::Value("stop".to_owned()))
                } else {
                    Ok(())
                }
            },
            || write_atomic(&path, b"second"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, CoreError::Value(m) if m == "stop"),
            "{err:?}"
        );
        assert_eq!(checks.get(), 3);
        assert!(started.elapsed() < DIR_LOCK_WAIT, "{:?}", started.elapsed());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert!(leftover_temp_files(&path).is_empty());
        // The scope's check is gone after it.
        assert!(LOCK_WAIT.with(|w| w.borrow().is_none()));
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_failed_save_names_the_path_it_was_given() {
        let d = dir("names");
        // No such directory: the temporary file cannot be created.
        let path = d.join("nope/state.json");
        let err = write_atomic(&path, b"x").unwrap_err();
        match &err {
            CoreError::Io {
                errno: Some(2),
                message,
                path: named,
            } => {
                assert_eq!(named, &path.display().to_string());
                assert!(
                    message.starts_with("cannot save the state (cannot create the temporary file "),
                    "{message}"
                );
                assert!(message.contains(".state.json.tmp-"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Through a symlink: the link's path, with its target in the message.
        #[cfg(unix)]
        {
            let link = d.join("link.json");
            fs::create_dir(d.join("taken")).unwrap();
            std::os::unix::fs::symlink("taken", &link).unwrap();
            let err = write_atomic(&link, b"x").unwrap_err();
            match &err {
                CoreError::Io {
                    errno: Some(21),
                    message,
                    path: named,
                } => {
                    assert_eq!(named, &link.display().to_string());
                    let target = d.join("taken");
                    assert_eq!(
                        message,
                        &format!(
                            "cannot save the state (its target {}): Is a directory",
                            target.display()
                        )
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        fs::remove_dir_all(d).unwrap();
    }
}
