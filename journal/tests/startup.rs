//! A PostgreSQL journal's start-up is bounded once connected too: another session holding a
//! lock the start-up needs (a table locked in an open transaction, an uncommitted update of the
//! account's row, a migration that holds the migration lock and does not end) fails the
//! writer's open, the reader's open and the reader's queries after a bounded wait, with an
//! error that says what was waited for, how long, and which session holds it. Before, each
//! of them waited for ever (Ctrl+C did not reach Python meanwhile).
//!
//! Each open runs on a thread of its own, joined with a timeout, so that an open that hangs
//! fails the test instead of holding it.

use std::time::Duration;

use position_manager_journal::postgres::Postgres;
use position_manager_journal::reader::Reader;
use position_manager_journal::schema::MIGRATION_LOCK;
use position_manager_journal::sql::{MigrationStep, Sql};
use position_manager_journal::writer::Writer;
use position_manager_journal::{JournalError, SyncMode, Target};

#[allow(dead_code)] // the helpers other test files use
mod common;

use common::within;

/// The journal's own lock wait at start-up when the URL sets none.
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Opens a writer of `account` on `url`.
fn open_writer(url: &str, account: &str) -> Result<(), JournalError> {
    Writer::open(
        Target::parse(url).expect("a journal URL"),
        SyncMode::Full,
        account,
        10,
        1_700_000_000_000_000,
    )
    .map(|_| ())
}

/// A fresh database with the journal's tables and the account `main`, or `None` (skipped).
fn journal_db() -> Option<String> {
    let db = common::postgres_db()?;
    open_writer(&db, "main").expect("a fresh journal opens");
    Some(db)
}

/// Another session on `db` that ran `sql` (an open transaction holding its locks until it is
/// dropped), and its server process id.
fn holder(db: &str, sql: &str) -> (postgres::Client, i32) {
    let mut client = postgres::Client::connect(db, postgres::NoTls).expect("test server");
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("its pid")
        .get(0);
    client.batch_execute(sql).expect("the holder's statements");
    (client, pid)
}

/// The error text of `result`, which must be a database error that came after `bound` (less a
/// little), naming the holder's `pid` and what was waited for, without a password.
fn gave_up(result: Result<(), JournalError>, took: Duration, bound: Duration, pid: i32) -> String {
    let message = match result {
        Err(JournalError::Database(m)) => m,
        other => panic!("expected the start-up to give up, got {other:?}"),
    };
    assert!(
        took >= bound - Duration::from_millis(100),
        "gave up after {took:?}, before its bound {bound:?}: {message}"
    );
    assert!(
        message.contains(&format!("pid {pid}")),
        "no holder named: {message}"
    );
    assert!(message.contains("lock"), "{message}");
    message
}

#[test]
fn a_table_locked_by_another_session_fails_the_writers_open_after_the_lock_wait() {
    let Some(db) = journal_db() else {
        return;
    };
    let (_session, pid) = holder(
        &db,
        "BEGIN; LOCK TABLE pmrs_accounts IN ACCESS EXCLUSIVE MODE",
    );
    let url = db.clone();
    let (result, took) = within("the start-up", DEFAULT_LOCK_WAIT, move || {
        open_writer(&url, "main")
    });
    let message = gave_up(result, took, DEFAULT_LOCK_WAIT, pid);
    assert!(message.contains("claiming the account"), "{message}");
    assert!(message.contains("10 s"), "{message}");
    assert!(
        message.contains("AccessExclusiveLock on pmrs_accounts"),
        "{message}"
    );
    assert!(
        message.contains("lock_timeout"),
        "says how to wait longer: {message}"
    );
}

#[test]
fn an_uncommitted_update_of_the_account_row_fails_the_claim_after_the_users_lock_timeout() {
    // The URL's own lock_timeout (libpq's options) is the wait, as psql users expect.
    let Some(db) = journal_db() else {
        return;
    };
    let (_session, pid) = holder(
        &db,
        "BEGIN; UPDATE pmrs_accounts SET updated_at = 'now' WHERE account = 'main'",
    );
    let url = format!("{db}?options=-c%20lock_timeout%3D1500ms");
    let bound = Duration::from_millis(1500);
    let (result, took) = within("the start-up", bound, move || open_writer(&url, "main"));
    let message = gave_up(result, took, bound, pid);
    assert!(message.contains("claiming the account"), "{message}");
    assert!(
        message.contains("1500ms"),
        "names the URL's own wait: {message}"
    );
    assert!(message.contains("pmrs_accounts"), "{message}");
    // Another account's row is not held: its manager starts.
    let url = format!("{db}?options=-c%20lock_timeout%3D1500ms");
    let (result, _) = within("the start-up", bound, move || open_writer(&url, "other"));
    result.expect("another account opens beside the held row");
}

#[test]
fn a_migration_lock_held_by_a_stuck_session_fails_the_open_after_the_lock_wait() {
    // A manager migrating the same database holds the migration lock for its migration only;
    // one that never ends (here: a session that took it and stays in its transaction) is
    // given up.
    let Some(db) = common::postgres_db() else {
        return;
    };
    let (_session, pid) = holder(
        &db,
        &format!("BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"),
    );
    let url = format!("{db}?options=-c%20lock_timeout%3D2s");
    let bound = Duration::from_secs(2);
    let (result, took) = within("the start-up", bound, move || open_writer(&url, "main"));
    let message = gave_up(result, took, bound, pid);
    assert!(message.contains("migration lock"), "{message}");
    assert!(message.contains("2s"), "{message}");
}

#[test]
fn a_table_locked_by_another_session_fails_the_readers_open_and_queries_after_the_lock_wait() {
    let Some(db) = journal_db() else {
        return;
    };
    // The reader's open reads the schema's version.
    let (session, pid) = holder(
        &db,
        "BEGIN; LOCK TABLE pmrs_migrations IN ACCESS EXCLUSIVE MODE",
    );
    let url = db.clone();
    let (result, took) = within("the start-up", DEFAULT_LOCK_WAIT, move || {
        Reader::open(&url).map(|_| ())
    });
    let message = gave_up(result, took, DEFAULT_LOCK_WAIT, pid);
    assert!(message.contains("pmrs_migrations"), "{message}");
    drop(session);
    // A reader already open: its queries.
    let mut reader = Reader::open(&db).expect("the reader opens once the lock is gone");
    let (_session, pid) = holder(
        &db,
        "BEGIN; LOCK TABLE pmrs_accounts IN ACCESS EXCLUSIVE MODE",
    );
    let (result, took) = within("the start-up", DEFAULT_LOCK_WAIT, move || {
        reader.accounts().map(|_| ())
    });
    let message = gave_up(result, took, DEFAULT_LOCK_WAIT, pid);
    assert!(
        message.contains("AccessExclusiveLock on pmrs_accounts"),
        "{message}"
    );
}

/// The session's `lock_timeout` and `statement_timeout`, as `SHOW` gives them.
fn shown(db: &mut Postgres) -> (String, String) {
    let mut one = |name: &str| {
        db.query(&format!("SHOW {name}"), &[])
            .expect("SHOW")
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(|v| v.as_text().map(str::to_owned))
            .expect("a value")
    };
    (one("lock_timeout"), one("statement_timeout"))
}

#[test]
fn the_start_up_sessions_wait_and_run_bounded_unless_the_url_bounds_them_itself() {
    let Some(db) = journal_db() else {
        return;
    };
    let writer = || Postgres::connect(&db, SyncMode::Full, false).expect("connects");
    let reader = |url: &str| Postgres::connect(url, SyncMode::Full, true).expect("connects");
    assert_eq!(shown(&mut writer()), ("10s".into(), "1min".into()));
    assert_eq!(shown(&mut reader(&db)), ("10s".into(), "5min".into()));
    // The URL's own values (libpq's options, as PGOPTIONS gives them too) are kept.
    let own = format!("{db}?options=-c%20lock_timeout%3D3s%20-c%20statement_timeout%3D7s");
    assert_eq!(shown(&mut reader(&own)), ("3s".into(), "7s".into()));
    let one = format!("{db}?options=--statement-timeout%3D7s");
    assert_eq!(shown(&mut reader(&one)), ("10s".into(), "7s".into()));
    // A write's own bounds are unchanged (5 s for a lock, 60 s a statement, this
    // transaction only), and the session's come back after it.
    let mut w = writer();
    w.begin_bounded_write().expect("BEGIN");
    assert_eq!(shown(&mut w), ("5s".into(), "1min".into()));
    w.batch("COMMIT").expect("COMMIT");
    assert_eq!(shown(&mut w), ("10s".into(), "1min".into()));
    // A migration waits longer for the migration lock, and its statements may run longer.
    w.begin(true).expect("BEGIN");
    w.bound_migration(MigrationStep::Lock).expect("bounds");
    assert_eq!(shown(&mut w), ("2min".into(), "10min".into()));
    w.bound_migration(MigrationStep::Tables).expect("bounds");
    assert_eq!(shown(&mut w), ("10s".into(), "10min".into()));
    w.batch("ROLLBACK").expect("ROLLBACK");
    assert_eq!(shown(&mut w), ("10s".into(), "1min".into()));
    // The URL's own are kept there too.
    let mut w = Postgres::connect(&own, SyncMode::Full, false).expect("connects");
    w.begin(true).expect("BEGIN");
    w.bound_migration(MigrationStep::Lock).expect("bounds");
    assert_eq!(shown(&mut w), ("3s".into(), "7s".into()));
}

#[test]
fn a_statement_run_longer_than_the_statement_time_is_cancelled_and_told() {
    // A lock wait longer than the statement time: the statement time ends the wait.
    let Some(db) = journal_db() else {
        return;
    };
    let (_session, pid) = holder(
        &db,
        "BEGIN; LOCK TABLE pmrs_accounts IN ACCESS EXCLUSIVE MODE",
    );
    let url = format!("{db}?options=-c%20lock_timeout%3D60s%20-c%20statement_timeout%3D1s");
    let bound = Duration::from_secs(1);
    let (result, took) = within("the start-up", bound, move || open_writer(&url, "main"));
    let message = gave_up(result, took, bound, pid);
    assert!(message.contains("ran longer than 1s"), "{message}");
    assert!(message.contains("statement_timeout"), "{message}");
}
