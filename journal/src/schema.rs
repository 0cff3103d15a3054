//! The journal's tables, created and upgraded by numbered migrations.
//!
//! `pmrs_migrations` lists the migrations applied (version, description, when). A writer
//! applies the missing ones in order, in one transaction, under a lock (SQLite's write lock;
//! PostgreSQL's advisory lock [`MIGRATION_LOCK`]) so that managers starting together migrate
//! once. A journal whose version is newer than [`VERSION`] is refused, never written.
//!
//! Version 1 (see docs/journal.md for the columns):
//! - `pmrs_accounts`: one row per account: the last event number written, the writer's
//!   fencing epoch and identity;
//! - `pmrs_events`: every event, `(account, seq)` unique, with query columns and the whole
//!   event as JSON;
//! - `pmrs_positions`: the book: one row per tracked position (every field as JSON, the bot's
//!   attributes as JSON, query columns);
//! - `pmrs_tombstones`: positions removed as closed outside the manager, restorable.
//!
//! Version 2:
//! - `pmrs_holds`: the re-open holds (`reopen_hold_seconds`): one row per held key with when
//!   its hold started, the whole set rewritten at each change.
//!
//! Version 3:
//! - `pmrs_closing`: positions the manager closed whose close no list has confirmed yet,
//!   restorable (a list that still shows one after a restart tracks it again as it was).
//!
//! Version 4:
//! - `pmrs_tombstones.listed`: what the exchange last listed for the position (side, size and
//!   entry price as JSON), which identifies it when the manager's own entry price differs from
//!   the exchange's (an entry estimated from the ticker when the order's answer had no average).
//!
//! Version 5:
//! - `pmrs_positions.listed`: the same for each tracked position, so a position restored at
//!   start and untracked before any list showed it again keeps what identifies it.
//!
//! Version 6:
//! - `pmrs_orders`: the orders the manager sent whose outcome it has not taken in yet, one row
//!   per key (written before the order goes out, deleted once its outcome is known), so a
//!   restart takes each back as an order with an unknown outcome instead of sending it again.
//!
//! Version 7:
//! - `pmrs_positions.unlisted_fills`: what the manager's own orders did to each tracked position
//!   that no list has shown yet (its open filled; its sizes before its scale orders filled), as
//!   JSON, so the first lists after a restart that lag those fills are counted against the
//!   outcome rules before they untrack or resize it, as they would have been before it;
//! - `pmrs_closing.order_id`: a close's order client id (when the client takes them), so a
//!   list that still shows the position after a restart has the order looked up before it is
//!   believed, as before the restart.
//!
//! Version 8:
//! - `pmrs_tombstones.own_end`: 1 for a tombstone of a position the manager's own order ended
//!   (a close, or an exit whose answer was lost, settled by lists), so that after a restart a
//!   list that shows it again — which may lag that order — is weighed by the outcome rules
//!   before the position is tracked again, as before the restart.
//!
//! Version 9:
//! - `pmrs_predecessors`: for a tracked position that replaced another in a side flip, the
//!   position it replaced (its state and attributes, when it was removed, what the exchange last
//!   listed for it), one row per key, so that after a restart lists that show it again
//!   unchanged restore it as before the restart (once `outcome_confirmations` of them in a row
//!   do) instead of importing it as a new position.
//!
//! Version 10:
//! - `pmrs_tombstones.doubtful`: 1 for a tombstone whose end is also what failed reads or
//!   lagging lists show (it left the book on empty answers only, or as a fill of the manager's
//!   own no list had shown, or a close settled by an empty answer), so that after a restart a
//!   list that shows it added to brings it back, as before the restart, instead of importing
//!   it as a new position.

use crate::sql::{transaction, Dialect, MigrationStep, Sql, Val};
use crate::{iso, JournalError, JournalResult};

/// The newest schema version this build knows (and writes).
pub const VERSION: i64 = 10;

/// The PostgreSQL advisory lock key held while migrating.
pub const MIGRATION_LOCK: i64 = 0x706d_7273_6a6e_6c31; // "pmrsjnl1"

/// One migration: its version, what it does, and its statements in a dialect.
struct Migration {
    version: i64,
    description: &'static str,
    sql: fn(Dialect) -> String,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "accounts, events, positions, tombstones",
        sql: v1,
    },
    Migration {
        version: 2,
        description: "re-open holds",
        sql: v2,
    },
    Migration {
        version: 3,
        description: "closes awaiting confirmation",
        sql: v3,
    },
    Migration {
        version: 4,
        description: "what the exchange last listed for each tombstone",
        sql: v4,
    },
    Migration {
        version: 5,
        description: "what the exchange last listed for each tracked position",
        sql: v5,
    },
    Migration {
        version: 6,
        description: "orders in flight",
        sql: v6,
    },
    Migration {
        version: 7,
        description: "what no list has shown yet of the manager's own fills and closes",
        sql: v7,
    },
    Migration {
        version: 8,
        description: "tombstones of positions the manager's own orders ended",
        sql: v8,
    },
    Migration {
        version: 9,
        description: "the positions side flips replaced",
        sql: v9,
    },
    Migration {
        version: 10,
        description: "tombstones whose end failed reads or lagging lists also show",
        sql: v10,
    },
];

fn v10(d: Dialect) -> String {
    format!(
        "ALTER TABLE pmrs_tombstones ADD COLUMN doubtful {};",
        d.int()
    )
}

fn v9(d: Dialect) -> String {
    let int = d.int();
    format!(
        "
CREATE TABLE pmrs_predecessors (
    account       TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    removed_seq   {int} NOT NULL,
    removed_at_us {int} NOT NULL,
    state         TEXT NOT NULL,
    attributes    TEXT,
    listed        TEXT,
    PRIMARY KEY (account, symbol)
);
"
    )
}

fn v8(d: Dialect) -> String {
    format!(
        "ALTER TABLE pmrs_tombstones ADD COLUMN own_end {};",
        d.int()
    )
}

fn v7(_: Dialect) -> String {
    "ALTER TABLE pmrs_positions ADD COLUMN unlisted_fills TEXT; \
     ALTER TABLE pmrs_closing ADD COLUMN order_id TEXT;"
        .to_owned()
}

fn v6(d: Dialect) -> String {
    format!(
        "
CREATE TABLE pmrs_orders (
    account         TEXT NOT NULL,
    symbol          TEXT NOT NULL,
    reference       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    client_order_id TEXT,
    sent_at_us      {} NOT NULL,
    sent_at         TEXT NOT NULL,
    intent          TEXT NOT NULL,
    PRIMARY KEY (account, symbol)
);
",
        d.int()
    )
}

fn v4(_: Dialect) -> String {
    "ALTER TABLE pmrs_tombstones ADD COLUMN listed TEXT;".to_owned()
}

fn v5(_: Dialect) -> String {
    "ALTER TABLE pmrs_positions ADD COLUMN listed TEXT;".to_owned()
}

fn v2(d: Dialect) -> String {
    format!(
        "
CREATE TABLE pmrs_holds (
    account       TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    held_since_us {} NOT NULL,
    PRIMARY KEY (account, symbol)
);
",
        d.int()
    )
}

fn v3(d: Dialect) -> String {
    let int = d.int();
    format!(
        "
CREATE TABLE pmrs_closing (
    account      TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    closed_seq   {int} NOT NULL,
    closed_at_us {int} NOT NULL,
    state        TEXT NOT NULL,
    attributes   TEXT,
    PRIMARY KEY (account, symbol)
);
"
    )
}

fn v1(d: Dialect) -> String {
    let (int, real) = (d.int(), d.real());
    format!(
        "
CREATE TABLE pmrs_accounts (
    account      TEXT PRIMARY KEY,
    last_seq     {int} NOT NULL DEFAULT 0,
    writer_epoch {int} NOT NULL DEFAULT 0,
    writer       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE TABLE pmrs_events (
    account     TEXT NOT NULL,
    seq         {int} NOT NULL,
    time_us     {int} NOT NULL,
    time        TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    pnl         {real},
    side        TEXT NOT NULL,
    entry_price {real},
    amount      {real},
    leverage    {real},
    order_id    TEXT,
    event       TEXT NOT NULL,
    attributes  TEXT,
    written_at  TEXT NOT NULL,
    PRIMARY KEY (account, seq)
);
CREATE INDEX pmrs_events_by_symbol ON pmrs_events (account, symbol, seq);
CREATE INDEX pmrs_events_by_kind ON pmrs_events (account, kind, seq);
CREATE INDEX pmrs_events_by_time ON pmrs_events (time_us);
CREATE TABLE pmrs_positions (
    account       TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    book_order    {int} NOT NULL,
    side          TEXT NOT NULL,
    entry_price   {real},
    amount        {real},
    leverage      {real},
    stop_loss     {real},
    take_profit   {real},
    entry_time_us {int} NOT NULL,
    state         TEXT NOT NULL,
    attributes    TEXT,
    updated_seq   {int} NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (account, symbol)
);
CREATE TABLE pmrs_tombstones (
    account       TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    removed_seq   {int} NOT NULL,
    removed_at_us {int} NOT NULL,
    state         TEXT NOT NULL,
    attributes    TEXT,
    PRIMARY KEY (account, symbol)
);
"
    )
}

fn create_migrations_table(d: Dialect) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS pmrs_migrations (
            version     {} PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at  TEXT NOT NULL
        );",
        d.int()
    )
}

/// The version of the journal's schema (0: no journal tables at all).
pub fn version(db: &mut dyn Sql) -> JournalResult<i64> {
    let exists = match db.dialect() {
        Dialect::Sqlite => db.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pmrs_migrations'",
            &[],
        )?,
        Dialect::Postgres => db.query(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'pmrs_migrations' \
             AND table_schema = ANY (current_schemas(false))",
            &[],
        )?,
    };
    if exists.is_empty() {
        return Ok(0);
    }
    let rows = db.query("SELECT MAX(version) FROM pmrs_migrations", &[])?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(Val::as_int)
        .unwrap_or(0))
}

/// A schema newer than this build's is an error naming both versions.
pub fn check_not_newer(found: i64) -> JournalResult<()> {
    if found > VERSION {
        return Err(JournalError::Database(format!(
            "the journal's schema is version {found}, newer than this position-manager-rs \
             supports (version {VERSION}); upgrade position-manager-rs to use it"
        )));
    }
    Ok(())
}

/// Creates or upgrades the schema to [`VERSION`]; returns the version it was at before.
pub fn migrate(db: &mut dyn Sql, now_us: i64) -> JournalResult<i64> {
    let d = db.dialect();
    // A journal already at this build's version needs no DDL, nor the lock that orders it:
    // a role without the CREATE privilege (PostgreSQL 15's default on `public`) can then use
    // a journal an owner migrated (it was refused, since PostgreSQL checks the privilege of
    // `CREATE TABLE IF NOT EXISTS` before the table's existence; found by an audit on
    // 2026-12-06).
    //
    // Every statement here is bounded (PostgreSQL: [`crate::postgres`]'s lock waits and
    // statement times): a table locked by another session, or a migration lock held by one that
    // never ends, held the start-up for ever.
    let current = match version(db) {
        Ok(v) => v,
        Err(e) => return Err(db.explain_wait(e, "reading the journal's schema version")),
    };
    check_not_newer(current)?;
    if MIGRATIONS.iter().all(|m| m.version <= current) {
        return Ok(current);
    }
    let migrated = transaction(db, true, |db| {
        if d == Dialect::Postgres {
            db.bound_migration(MigrationStep::Lock)?;
            db.execute(
                "SELECT pg_advisory_xact_lock(?1)",
                &[Val::int(MIGRATION_LOCK)],
            )?;
            db.bound_migration(MigrationStep::Tables)?;
        }
        db.batch(&create_migrations_table(d))?;
        let found = version(db)?;
        check_not_newer(found)?;
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            db.batch(&(m.sql)(d))?;
            db.execute(
                "INSERT INTO pmrs_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
                &[Val::int(m.version), Val::text(m.description), Val::text(iso(now_us))],
            )?;
        }
        Ok(found)
    });
    migrated.map_err(|e| db.explain_wait(e, "migrating the journal's schema"))
}
