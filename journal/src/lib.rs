//! The durable journal of `position-manager-rs`: every event a manager records and the book's
//! current state (every position field, the bot's JSON attributes, tombstones), in SQLite (WAL)
//! or PostgreSQL, one database for any number of managers (`account`s).
//!
//! - [`target`]: where a journal lives (`path`, `sqlite:///path`, `postgresql://...`) and how
//!   durable each write is ([`SyncMode`]);
//! - [`schema`]: the tables, created and upgraded by numbered migrations;
//! - [`sql`]: the few SQL operations both databases are driven through ([`sql::Sql`]), with
//!   [`sqlite`] and [`postgres`] implementing them ([`session`]: the PostgreSQL connection,
//!   its start-up bounded);
//! - [`store`]: the journal's own operations over any [`sql::Sql`]: migrate, claim an account
//!   and read it back, write a batch in one transaction, and the read-only queries;
//! - [`writer`]: the writer a manager holds: one transaction per event, failed writes kept and
//!   retried, a fencing epoch per account;
//! - [`book`]: [`book::BookJournal`], the manager's [`EventJournal`] hook over a writer (which
//!   rows an event changes, the book's state at the end of each cycle, restoring at start);
//! - [`reader`]: the read-only [`reader::Reader`] for dashboards and notebooks;
//! - [`tls`]: TLS for PostgreSQL with libpq's `sslmode` meanings (rustls).
//!
//! [`EventJournal`]: position_manager_core::journal_hook::EventJournal

// These crates' documentation is for the people who maintain them (`cargo doc
// --document-private-items`, checked by `make lint`): linking a private module or item is how it
// points a reader at the code.
#![allow(rustdoc::private_intra_doc_links)]

pub mod book;
pub mod environment;
pub mod passfile;
pub mod postgres;
pub mod reader;
pub mod schema;
pub mod service;
pub mod session;
pub mod sql;
pub mod sqlite;
pub mod store;
pub mod target;
pub mod tls;
pub mod writer;

use std::fmt;

pub use target::{SyncMode, Target};

/// What can go wrong with a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalError {
    /// An argument that cannot name a journal or an option (a `ValueError` in Python).
    Config(String),
    /// The database refused, failed or could not be reached (`JournalError`, an `OSError`).
    Database(String),
    /// Another manager claimed this account since this one did: this one no longer writes it.
    Fenced(String),
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Config(m) | JournalError::Database(m) | JournalError::Fenced(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for JournalError {}

/// Result type of the journal.
pub type JournalResult<T> = Result<T, JournalError>;

/// A naive local timestamp (microseconds) as ISO text, `YYYY-mm-ddTHH:MM:SS.ffffff`.
pub fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

/// What this build writes as the writer of an account: crate version, process id and host.
pub fn writer_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    format!(
        "position-manager-rs {} pid {} on {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        host.trim()
    )
}
