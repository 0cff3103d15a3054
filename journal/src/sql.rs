//! The few SQL operations the journal needs, over SQLite and PostgreSQL alike.
//!
//! Statements are written once with `?1`, `?2`, ... placeholders (PostgreSQL gets `$1`, `$2`,
//! ...) and typed values ([`Val`]), so NULLs carry their column's type as PostgreSQL requires.

use crate::JournalResult;

/// A parameter or a column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// A 64-bit integer (`INTEGER` / `BIGINT`), or NULL.
    Int(Option<i64>),
    /// A float (`REAL` / `DOUBLE PRECISION`), or NULL.
    Real(Option<f64>),
    /// Text, or NULL.
    Text(Option<String>),
}

impl Val {
    /// Text.
    pub fn text(s: impl Into<String>) -> Val {
        Val::Text(Some(s.into()))
    }

    /// An integer.
    pub fn int(i: i64) -> Val {
        Val::Int(Some(i))
    }

    /// The value as an integer (NULL, or another type: `None`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => *i,
            _ => None,
        }
    }

    /// The value as a float (an integer converts).
    pub fn as_real(&self) -> Option<f64> {
        match self {
            Val::Real(r) => *r,
            Val::Int(Some(i)) => Some(*i as f64),
            _ => None,
        }
    }

    /// The value as text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Val::Text(t) => t.as_deref(),
            _ => None,
        }
    }

    /// Owned text, or an empty string.
    pub fn into_text(self) -> String {
        match self {
            Val::Text(Some(t)) => t,
            _ => String::new(),
        }
    }
}

/// The database behind a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The integer column type.
    pub fn int(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER",
            Dialect::Postgres => "BIGINT",
        }
    }

    /// The float column type.
    pub fn real(self) -> &'static str {
        match self {
            Dialect::Sqlite => "REAL",
            Dialect::Postgres => "DOUBLE PRECISION",
        }
    }

    /// The two-argument maximum function.
    pub fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "GREATEST",
        }
    }

    /// `sql` with `?N` placeholders in this dialect's spelling.
    pub fn placeholders(self, sql: &str) -> String {
        match self {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => sql.replace('?', "$"),
        }
    }
}

/// The steps of a migration, each bounded apart ([`Sql::bound_migration`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationStep {
    /// Waiting for the migration lock, which a manager migrating at the same moment holds for
    /// its whole migration.
    Lock,
    /// Changing the tables, the migration lock held.
    Tables,
}

/// One connection, driven statement by statement.
pub trait Sql: Send {
    /// Which database it is.
    fn dialect(&self) -> Dialect;
    /// Runs statements without parameters (DDL, `BEGIN`, `COMMIT`, settings).
    fn batch(&mut self, sql: &str) -> JournalResult<()>;
    /// Runs one statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Val]) -> JournalResult<u64>;
    /// Runs one query; returns its rows.
    fn query(&mut self, sql: &str, params: &[Val]) -> JournalResult<Vec<Vec<Val>>>;
    /// Starts a transaction; `write` takes the write lock at once (SQLite `BEGIN IMMEDIATE`)
    /// or, when false, makes it read-only where the database can say so.
    fn begin(&mut self, write: bool) -> JournalResult<()>;
    /// Starts a write transaction that waits only so long for other sessions' locks and runs
    /// only so long (PostgreSQL: `lock_timeout`, `statement_timeout` for this transaction, set
    /// in the same round trip as its `BEGIN`); elsewhere [`Sql::begin`]`(true)`.
    fn begin_bounded_write(&mut self) -> JournalResult<()> {
        self.begin(true)
    }
    /// How long the next writes wait for another session's or process's lock before they fail
    /// (SQLite: the busy timeout; PostgreSQL: the write transaction's `lock_timeout`). The
    /// writer shortens it while the journal is failing, so that an outage costs one bounded
    /// wait, not one per write ([`crate::writer`]).
    fn set_lock_wait(&mut self, wait: std::time::Duration) -> JournalResult<()> {
        let _ = wait;
        Ok(())
    }
    /// Bounds the statements of the migration transaction that follow, for its `step`
    /// (PostgreSQL: `SET LOCAL lock_timeout` and `statement_timeout`, see
    /// [`crate::postgres::MIGRATION_LOCK_WAIT`]; the URL's own settings kept); elsewhere
    /// nothing (SQLite's migration takes the write lock with its `BEGIN IMMEDIATE`, within the
    /// busy timeout).
    fn bound_migration(&mut self, step: MigrationStep) -> JournalResult<()> {
        let _ = step;
        Ok(())
    }
    /// `e`, the error of a statement of `what` (for a message: "claiming the account
    /// \"main\""), told plainly when the statement was given up on a bound (PostgreSQL:
    /// `lock_timeout`, `statement_timeout`): what was waited for and how long, the sessions
    /// holding locks on the journal, and what to do. Any other error is returned as it is.
    /// Called once the failed transaction, if any, is over.
    fn explain_wait(&mut self, e: crate::JournalError, what: &str) -> crate::JournalError {
        let _ = what;
        e
    }
    /// Whether the connection is known to be broken (PostgreSQL: reconnect before the next
    /// use).
    fn is_broken(&self) -> bool {
        false
    }
}

/// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise.
pub fn transaction<T>(
    db: &mut dyn Sql,
    write: bool,
    f: impl FnOnce(&mut dyn Sql) -> JournalResult<T>,
) -> JournalResult<T> {
    db.begin(write)?;
    commit_or_roll_back(db, f)
}

/// [`transaction`] for a write bounded in time ([`Sql::begin_bounded_write`]).
pub fn bounded_write<T>(
    db: &mut dyn Sql,
    f: impl FnOnce(&mut dyn Sql) -> JournalResult<T>,
) -> JournalResult<T> {
    db.begin_bounded_write()?;
    commit_or_roll_back(db, f)
}

fn commit_or_roll_back<T>(
    db: &mut dyn Sql,
    f: impl FnOnce(&mut dyn Sql) -> JournalResult<T>,
) -> JournalResult<T> {
    match f(db) {
        Ok(v) => match db.batch("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                drop(db.batch("ROLLBACK"));
                Err(e)
            }
        },
        Err(e) => {
            drop(db.batch("ROLLBACK"));
            Err(e)
        }
    }
}
