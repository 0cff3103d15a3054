//! SQLite through `rusqlite` (SQLite compiled in): WAL mode, a busy timeout so that several
//! processes share one file, `BEGIN IMMEDIATE` for writes (no lock upgrades, so no deadlock
//! between two writers), `synchronous` from the [`SyncMode`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use position_manager_core::error::CoreError;
use position_manager_core::persist::{file_kind, resolve_target};
use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::sql::{Dialect, Sql, Val};
use crate::writer::LOCK_WAIT;
use crate::{JournalError, JournalResult, SyncMode};

/// Puts the file in WAL mode (it stays so) and answers the mode now in force.
///
/// Switching a new file's mode takes an exclusive lock, and SQLite answers "database is locked"
/// at once (without its busy handler) when another connection holds a lock meanwhile, as when
/// several bots open one new journal together. So the switch is retried, every 5 ms, for as
/// long as any statement would wait ([`LOCK_WAIT`]).
fn wal_mode(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Creates the journal file `path` names empty, readable and writable by its owner only
/// (`0600`), when nothing is there: it holds trading state, as a state file does, and SQLite
/// gives the `-wal` and `-shm` files the database file's permissions. A file already there
/// keeps its mode.
///
/// A symlink is followed to its final target ([`resolve_target`], as for state files), and that
/// is the file created: `create_new` (`O_EXCL`) does not follow a symlink, so a journal reached
/// through a link to a file not there yet failed here, the error was dropped, and SQLite
/// created the target with the umask's mode, `0644` (found by an audit on 2026-12-07). Any
/// failure but "already there" (a missing directory, no permission) is the journal's error.
fn create_owner_only(path: &Path) -> JournalResult<()> {
    let cannot = |why: &dyn std::fmt::Display| {
        JournalError::Database(format!("cannot open the journal {}: {why}", path.display()))
    };
    let target = resolve_target(path).map_err(|e| match e {
        CoreError::Io {
            errno: Some(errno), ..
        } => cannot(&format!(
            "cannot follow its symlinks ({})",
            std::io::Error::from_raw_os_error(errno)
        )),
        _ => cannot(&"cannot follow its symlinks"),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&target) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if target == path => Err(cannot(&e)),
        Err(e) => Err(cannot(&format!("cannot create {}: {e}", target.display()))),
    }
}

/// `path`, followed through its symlinks, must be a regular file: SQLite's open of a FIFO
/// waits for a writer for ever (Ctrl+C does not end it: the reader `Journal(fifo)` hung, found
/// by an audit on 2026-12-07), and a device or a directory is no journal either. `Ok(false)`
/// when nothing is there.
fn check_regular(path: &Path, action: &str) -> JournalResult<bool> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(meta) => Err(JournalError::Database(format!(
            "{action} {}: it is {}, not a regular file",
            path.display(),
            file_kind(meta.file_type())
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(JournalError::Database(format!(
            "{action} {}: {e}",
            path.display()
        ))),
    }
}

/// An SQLite connection.
pub struct Sqlite {
    conn: Connection,
    /// The file written, and which file it was when opened ([`FileId`]): a write first checks
    /// that the path still names it ([`Sqlite::check_file`]).
    path: PathBuf,
    opened: Option<FileId>,
}

/// Which file a path names (device and inode on Unix): a file deleted, replaced or moved while
/// a manager writes to it shows as a different or missing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    /// The file `path` names now (`Err` with the I/O error's kind when it cannot be read).
    fn of(path: &Path) -> Result<Option<FileId>, std::io::ErrorKind> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(path)
                .map(|m| Some(FileId(m.dev(), m.ino())))
                .map_err(|e| e.kind())
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(None)
        }
    }
}

fn err(e: rusqlite::Error) -> JournalError {
    JournalError::Database(format!("SQLite: {e}"))
}

impl Sqlite {
    /// Opens (creating it when missing) the journal file at `path` for writing. A missing file
    /// is created owner-only first ([`create_owner_only`]); anything but a regular file is
    /// refused before SQLite opens it ([`check_regular`]).
    pub fn open(path: &Path, sync: SyncMode) -> JournalResult<Sqlite> {
        create_owner_only(path)?;
        check_regular(path, "cannot open the journal")?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            JournalError::Database(format!("cannot open the journal {}: {e}", path.display()))
        })?;
        conn.busy_timeout(LOCK_WAIT).map_err(err)?;
        let mode = wal_mode(&conn).map_err(|e| {
            JournalError::Database(format!("cannot use {} as a journal: {e}", path.display()))
        })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Database(format!(
                "cannot put the journal {} in WAL mode (journal_mode is {mode})",
                path.display()
            )));
        }
        let sync = match sync {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
            SyncMode::Off => "OFF",
        };
        conn.execute_batch(&format!("PRAGMA synchronous={sync};"))
            .map_err(err)?;
        // Absolute as of now: a relative path names the same file after the process changes
        // its working directory (SQLite keeps the file open), and so must the check.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        Ok(Sqlite {
            conn,
            opened: FileId::of(&path).ok().flatten(),
            path,
        })
    }

    /// Whether the journal's path still names the file this connection writes. A file deleted,
    /// replaced or moved while the manager runs takes every later write with it (they would be
    /// lost at a restart, which opens the path): each write fails instead, so the journal
    /// reports itself failing (and an order that adds exposure is not sent without its row).
    fn check_file(&self) -> JournalResult<()> {
        let Some(opened) = self.opened else {
            return Ok(());
        };
        let why = match FileId::of(&self.path) {
            Ok(Some(now)) if now == opened => return Ok(()),
            Ok(None) => return Ok(()),
            Err(std::io::ErrorKind::NotFound) => "was deleted or moved away",
            Ok(Some(_)) => "was replaced by another file",
            // Another failure to read the path (a permission changed): SQLite reports it.
            Err(_) => return Ok(()),
        };
        Err(JournalError::Database(format!(
            "the journal file {} {why} while this manager wrote to it: what it writes now would \
             not be found at a restart, so nothing more is written (restart the manager with \
             the journal at a path it can keep)",
            self.path.display()
        )))
    }

    /// Opens an existing journal file read-only: a regular file ([`check_regular`]).
    pub fn open_read_only(path: &Path) -> JournalResult<Sqlite> {
        if !check_regular(path, "no journal at")? {
            return Err(JournalError::Database(format!(
                "no journal at {}: the file does not exist",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            JournalError::Database(format!("cannot open the journal {}: {e}", path.display()))
        })?;
        conn.busy_timeout(LOCK_WAIT).map_err(err)?;
        Ok(Sqlite {
            conn,
            path: path.to_owned(),
            opened: None,
        })
    }
}

fn to_sql(v: &Val) -> ToSqlOutput<'_> {
    match v {
        Val::Int(Some(i)) => ToSqlOutput::Owned(SqliteValue::Integer(*i)),
        Val::Real(Some(r)) => ToSqlOutput::Owned(SqliteValue::Real(*r)),
        Val::Text(Some(t)) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        _ => ToSqlOutput::Owned(SqliteValue::Null),
    }
}

fn bind(params: &[Val]) -> Vec<ToSqlOutput<'_>> {
    params.iter().map(to_sql).collect()
}

impl Sql for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn batch(&mut self, sql: &str) -> JournalResult<()> {
        self.conn.execute_batch(sql).map_err(err)
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> JournalResult<u64> {
        let bound = bind(params);
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(bound.iter()))
            .map_err(err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> JournalResult<Vec<Vec<Val>>> {
        let bound = bind(params);
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bound.iter()))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => Val::Text(None),
                    ValueRef::Integer(i) => Val::Int(Some(i)),
                    ValueRef::Real(r) => Val::Real(Some(r)),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Val::Text(Some(String::from_utf8_lossy(t).into_owned()))
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    fn begin(&mut self, write: bool) -> JournalResult<()> {
        if write {
            self.check_file()?;
        }
        self.batch(if write { "BEGIN IMMEDIATE" } else { "BEGIN" })
    }

    fn set_lock_wait(&mut self, wait: Duration) -> JournalResult<()> {
        self.conn.busy_timeout(wait).map_err(err)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::mpsc;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn mkfifo(path: &Path) {
        let done = std::process::Command::new("mkfifo").arg(path).status();
        assert!(done.unwrap().success(), "mkfifo {}", path.display());
    }

    /// `open` run on a thread of its own: `None` when it has not returned within 10 s.
    fn within_seconds<T: Send + 'static>(open: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(open());
        });
        rx.recv_timeout(Duration::from_secs(10)).ok()
    }

    #[test]
    fn a_journal_reached_through_a_symlink_is_created_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // Two hops, the second relative: the journal kept on a data volume.
        std::os::unix::fs::symlink(data.join("j.db"), dir.path().join("mid.db")).unwrap();
        std::os::unix::fs::symlink("mid.db", dir.path().join("j.db")).unwrap();
        let journal = Sqlite::open(&dir.path().join("j.db"), SyncMode::Full).unwrap();
        assert_eq!(mode(&data.join("j.db")), 0o600);
        assert!(std::fs::symlink_metadata(dir.path().join("j.db"))
            .unwrap()
            .file_type()
            .is_symlink());
        drop(journal);
        // A link whose target's directory is missing is an error naming the target.
        std::os::unix::fs::symlink(dir.path().join("no/such/j.db"), dir.path().join("bad.db"))
            .unwrap();
        match Sqlite::open(&dir.path().join("bad.db"), SyncMode::Full) {
            Err(JournalError::Database(m)) => assert!(
                m.starts_with("cannot open the journal") && m.contains("cannot create"),
                "{m}"
            ),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_fifo_or_a_directory_is_refused_before_sqlite_opens_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("journal.db");
        mkfifo(&fifo);
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for path in [fifo, link] {
            let reader = path.clone();
            let read = within_seconds(move || Sqlite::open_read_only(&reader).err())
                .expect("the reader hung on a FIFO");
            let m = read.expect("a FIFO opened as a journal").to_string();
            assert_eq!(
                m,
                format!(
                    "no journal at {}: it is a FIFO, not a regular file",
                    path.display()
                )
            );
            let writer = path.clone();
            let written = within_seconds(move || Sqlite::open(&writer, SyncMode::Full).err())
                .expect("the writer hung on a FIFO");
            let m = written.expect("a FIFO opened as a journal").to_string();
            assert_eq!(
                m,
                format!(
                    "cannot open the journal {}: it is a FIFO, not a regular file",
                    path.display()
                )
            );
        }
        let m = Sqlite::open_read_only(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(m.ends_with("it is a directory, not a regular file"), "{m}");
    }
}
