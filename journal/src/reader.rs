//! Read-only queries for dashboards and notebooks, across accounts: accounts, events (by
//! account, symbol, kind, time range), open positions, closed positions with their P/L and
//! reasons.
//!
//! SQLite files are opened read-only; PostgreSQL sessions are read-only
//! (`default_transaction_read_only`). A reader never migrates: a database without journal
//! tables, or with a newer schema than this build knows, is an error.

use position_manager_core::key::{Key, Side};

use crate::postgres::Postgres;
use crate::schema;
use crate::sql::{Dialect, Sql, Val};
use crate::sqlite::Sqlite;
use crate::{JournalError, JournalResult, SyncMode, Target};

/// The event kinds that end a position: closed by the manager, removed as closed outside it.
pub const CLOSING_KINDS: &[&str] = &["closed", "removed"];

/// Which events to read. A field left `None` selects everything.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Only this account.
    pub account: Option<String>,
    /// Only this symbol (a hedge-mode key `SYMBOL@leg` matches its symbol too).
    pub symbol: Option<String>,
    /// Only these kinds (`Some` of an empty list selects no event).
    pub kinds: Option<Vec<String>>,
    /// Only at or after this time (naive local microseconds).
    pub since_us: Option<i64>,
    /// Only before this time.
    pub until_us: Option<i64>,
    /// At most this many: the newest ones (still returned oldest first).
    pub limit: Option<i64>,
    /// Leave out the position ends a later event of the same key took back (see
    /// [`TAKEN_BACK`]).
    pub without_taken_back: bool,
}

/// The kinds that begin or end a tracked life of a key (what [`TAKEN_BACK`] looks between).
macro_rules! life_kinds {
    () => {
        "('closed', 'removed', 'close_unconfirmed', 'restored', 'opened', 'imported', 'added', \
         'loaded', 'untracked')"
    };
}

/// Whether the row in hand (of `pmrs_events`) is a position's end (`closed`, `removed`) that a
/// later event took back: the very position lived on, and its real end, if any, comes later.
/// The event log keeps both. Two ways:
/// - the key's next event of its life is `close_unconfirmed` (a list still showed the very
///   position after the client reported the close — the bot's client answers `True` for a
///   close it never sent) or a `restored` (a list showed the very position again after failed
///   reads, which the bot's client answers `[]`, untracked it or "confirmed" its close);
/// - a side flip's `removed` whose next flip on the key is a flip back to it: the side the flip
///   brought is itself removed as flipped, and a `restored` with reason `side_flipped` brings
///   this position back (the flip undone: `outcome_confirmations` lists showed it). In between, the
///   key's life events are the new side's arrival (`imported`, or a flip back's `restored`),
///   its removal, and any `loaded` of restarts. (That `restored` is the other side's position
///   coming back, not the new side's: it takes back no end of that one.)
pub const TAKEN_BACK: &str = concat!(
    "kind IN ('closed', 'removed') AND (EXISTS (",
    "SELECT 1 FROM pmrs_events u WHERE u.account = pmrs_events.account ",
    "AND u.symbol = pmrs_events.symbol ",
    "AND ((u.kind = 'restored' AND u.reason <> 'side_flipped') ",
    "OR (u.kind = 'close_unconfirmed' AND pmrs_events.kind = 'closed')) ",
    "AND u.seq > pmrs_events.seq AND NOT EXISTS (",
    "SELECT 1 FROM pmrs_events c WHERE c.account = u.account AND c.symbol = u.symbol ",
    "AND c.kind IN ",
    life_kinds!(),
    " AND c.seq > pmrs_events.seq AND c.seq < u.seq)) ",
    "OR (pmrs_events.kind = 'removed' AND pmrs_events.reason = 'side_flipped' AND EXISTS (",
    "SELECT 1 FROM pmrs_events u WHERE u.account = pmrs_events.account ",
    "AND u.symbol = pmrs_events.symbol ",
    "AND u.kind = 'restored' AND u.reason = 'side_flipped' AND u.seq > pmrs_events.seq ",
    "AND (SELECT COUNT(*) FROM pmrs_events c WHERE c.account = u.account ",
    "AND c.symbol = u.symbol AND c.kind = 'removed' ",
    "AND c.seq > pmrs_events.seq AND c.seq < u.seq) = 1 ",
    "AND (SELECT COUNT(*) FROM pmrs_events c WHERE c.account = u.account ",
    "AND c.symbol = u.symbol AND c.kind IN ('imported', 'restored') ",
    "AND c.seq > pmrs_events.seq AND c.seq < u.seq) = 1 ",
    "AND NOT EXISTS (SELECT 1 FROM pmrs_events c WHERE c.account = u.account ",
    "AND c.symbol = u.symbol AND c.kind IN ",
    life_kinds!(),
    " ",
    "AND c.seq > pmrs_events.seq AND c.seq < u.seq ",
    "AND NOT (c.kind IN ('imported', 'restored', 'loaded') ",
    "OR (c.kind = 'removed' AND c.reason = 'side_flipped'))))))"
);

/// One event row.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// Its account.
    pub account: String,
    /// Its number in the account.
    pub seq: i64,
    /// When (naive local microseconds).
    pub time_us: i64,
    /// Book key.
    pub symbol: String,
    /// Kind.
    pub kind: String,
    /// Reason.
    pub reason: String,
    /// P/L.
    pub pnl: Option<f64>,
    /// The whole event as JSON (the core's `Event`).
    pub event: String,
    /// The bot's attributes then (a JSON object), when known.
    pub attributes: Option<String>,
}

/// One tracked position.
#[derive(Clone, Debug, PartialEq)]
pub struct PositionRecord {
    /// Its account.
    pub account: String,
    /// Book key.
    pub symbol: String,
    /// Its fields as JSON (the core's `PositionState`).
    pub state: String,
    /// The bot's attributes (a JSON object), when known.
    pub attributes: Option<String>,
    /// The last event number written with it.
    pub updated_seq: i64,
    /// When it was last written (ISO text).
    pub updated_at: String,
    /// What the exchange last listed for it, as JSON (`side`, `contracts`, `entry_price`):
    /// rows written by schema version 5 on, once a list reported its entry.
    pub listed: Option<String>,
    /// What the manager's own orders did to it that no list has shown yet, as JSON (`open`,
    /// `sizes_before`): rows written by schema version 7 on, while there is something.
    pub unlisted_fills: Option<String>,
}

/// A position the manager remembers without tracking it, as last journaled: a tombstone
/// (removed as closed outside the manager, restored if listed again) or a close awaiting
/// confirmation by a position list.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptRecord {
    /// The manager's account.
    pub account: String,
    /// The book key.
    pub symbol: String,
    /// The position's state as JSON.
    pub state: String,
    /// The bot's attributes as a JSON object, if any.
    pub attributes: Option<String>,
    /// The event sequence number of its removal or close.
    pub seq: i64,
    /// When it was removed or closed (naive local microseconds).
    pub at_us: i64,
    /// What the exchange last listed for it, as JSON (`side`, `contracts`, `entry_price`):
    /// tombstones written by schema version 4 on, when the list reported it.
    pub listed: Option<String>,
    /// The close order's client id: closes written by schema version 7 on, when the client
    /// takes ids.
    pub order_id: Option<String>,
    /// A tombstone of a position the manager's own order ended (written by schema version 8
    /// on): a list that shows it again is weighed by the outcome rules before the manager
    /// tracks it again. False for a close awaiting confirmation.
    pub own_end: bool,
    /// A tombstone whose end failed reads or lagging lists also show (written by schema version
    /// 10 on): a list that shows it added to brings it back. False for a close awaiting
    /// confirmation.
    pub doubtful: bool,
}

/// One re-open hold (`reopen_hold_seconds`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRecord {
    /// Its account.
    pub account: String,
    /// The held book key.
    pub symbol: String,
    /// When its hold started (naive local microseconds).
    pub held_since_us: i64,
}

/// One order in flight: sent by the manager, its outcome not yet taken in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    /// Its account.
    pub account: String,
    /// The book key it is for.
    pub symbol: String,
    /// `open`, `close`, `scale_in` or `scale_out`.
    pub kind: String,
    /// The client order id it carried, if any.
    pub client_order_id: Option<String>,
    /// When it was sent (naive local microseconds).
    pub sent_at_us: i64,
    /// What it was meant to do, as JSON.
    pub intent: String,
}

/// One account.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountRecord {
    /// Its name.
    pub account: String,
    /// The highest event number written.
    pub last_seq: i64,
    /// The manager that writes it (version, process, host).
    pub writer: String,
    /// When it was first written.
    pub created_at: String,
    /// When it was last written.
    pub updated_at: String,
    /// How many positions it tracks.
    pub open_positions: i64,
}

/// A read-only connection to a journal.
pub struct Reader {
    db: Box<dyn Sql>,
    target: Target,
    version: i64,
    /// Whether a snapshot is open ([`Reader::begin_snapshot`]).
    in_snapshot: bool,
}

fn text(v: Option<&Val>) -> String {
    v.and_then(Val::as_text).unwrap_or("").to_owned()
}

impl Reader {
    /// Opens the journal at `spec` (a path, `sqlite:///path` or `postgresql://...`).
    pub fn open(spec: &str) -> JournalResult<Reader> {
        Reader::open_target(Target::parse(spec)?)
    }

    /// Opens the journal at `target`.
    pub fn open_target(target: Target) -> JournalResult<Reader> {
        let mut db: Box<dyn Sql> = match &target {
            Target::Sqlite(path) => Box::new(Sqlite::open_read_only(path)?),
            Target::Postgres(url) => Box::new(Postgres::connect(url, SyncMode::Full, true)?),
        };
        // Every statement of a reader is bounded ([`crate::postgres::READER_STATEMENT_TIME`],
        // [`crate::postgres::STARTUP_LOCK_WAIT`]): a table locked by another session held the
        // open, and the queries, for ever.
        let version = schema::version(db.as_mut())
            .map_err(|e| db.explain_wait(e, "reading the journal's schema version"))?;
        if version == 0 {
            return Err(JournalError::Database(format!(
                "{} is not a position-manager-rs journal (it has no pmrs_migrations table)",
                target.display()
            )));
        }
        schema::check_not_newer(version)?;
        Ok(Reader {
            db,
            target,
            version,
            in_snapshot: false,
        })
    }

    /// Makes the queries that follow, until [`Reader::end_snapshot`], read one committed state
    /// of the journal: what managers commit meanwhile is not seen (PostgreSQL: a
    /// `REPEATABLE READ` read-only transaction; SQLite: one read transaction, a WAL snapshot).
    /// A snapshot already open is a configuration error.
    pub fn begin_snapshot(&mut self) -> JournalResult<()> {
        if self.in_snapshot {
            return Err(JournalError::Config(
                "a snapshot of this journal is already open".to_owned(),
            ));
        }
        self.db.batch(match self.db.dialect() {
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Dialect::Sqlite => "BEGIN DEFERRED",
        })?;
        // Both take the snapshot at the first read, so take it now.
        if let Err(e) = self.db.query("SELECT COUNT(*) FROM pmrs_accounts", &[]) {
            drop(self.db.batch("ROLLBACK"));
            return Err(self.db.explain_wait(e, "opening a snapshot of the journal"));
        }
        self.in_snapshot = true;
        Ok(())
    }

    /// Ends the snapshot [`Reader::begin_snapshot`] opened (nothing when none is open).
    pub fn end_snapshot(&mut self) -> JournalResult<()> {
        if !std::mem::take(&mut self.in_snapshot) {
            return Ok(());
        }
        self.db.batch("COMMIT")
    }

    /// Re-opens the connection when the server ended it (a restart, a failover, an idle
    /// timeout) and no snapshot is open: `true` when it did, so a query that failed on it can
    /// be made again (a reader never recovered: every query failed until it was rebuilt; found
    /// by an audit on 2026-12-06). Inside a snapshot the error stands: a new session would not
    /// read the same committed state.
    pub fn reconnect_if_ended(&mut self) -> bool {
        if self.in_snapshot || !self.db.is_broken() {
            return false;
        }
        match Reader::open_target(self.target.clone()) {
            Ok(fresh) => {
                *self = fresh;
                true
            }
            Err(_) => false,
        }
    }

    /// The rows of the query `sql`; a query given up on a bound ([`Sql::explain_wait`]) says
    /// so plainly.
    fn read(&mut self, sql: &str, params: &[Val]) -> JournalResult<Vec<Vec<Val>>> {
        match self.db.query(sql, params) {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.db.explain_wait(e, "reading the journal")),
        }
    }

    /// The database, for messages (no password).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The schema version.
    pub fn schema_version(&self) -> i64 {
        self.version
    }

    /// Every account, by name.
    pub fn accounts(&mut self) -> JournalResult<Vec<AccountRecord>> {
        let rows = self.read(
            &format!(
                "SELECT a.account, a.last_seq, a.writer, a.created_at, a.updated_at, \
             (SELECT COUNT(*) FROM pmrs_positions p WHERE p.account = a.account) \
             FROM pmrs_accounts a ORDER BY {}",
                self.ordered("a.account")
            ),
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| AccountRecord {
                account: text(r.first()),
                last_seq: r.get(1).and_then(Val::as_int).unwrap_or(0),
                writer: text(r.get(2)),
                created_at: text(r.get(3)),
                updated_at: text(r.get(4)),
                open_positions: r.get(5).and_then(Val::as_int).unwrap_or(0),
            })
            .collect())
    }

    /// The events `filter` selects, oldest first: an account's events in the order its manager
    /// recorded them (their `seq`), whatever their times say (a DST fall-back or a clock set
    /// back gives later events earlier times); several accounts' events are merged by time,
    /// each event's time taken as the latest of its account's selected events up to it (so
    /// each account's own order is kept), then by account and `seq`. `limit` keeps the last
    /// `limit` events of that order. `since_us`/`until_us` select by each event's own time.
    pub fn events(&mut self, filter: &EventFilter) -> JournalResult<Vec<EventRecord>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut params: Vec<Val> = Vec::new();
        let param = |v: Val, params: &mut Vec<Val>| {
            params.push(v);
            format!("?{}", params.len())
        };
        if let Some(a) = &filter.account {
            let p = param(Val::text(a.as_str()), &mut params);
            clauses.push(format!("account = {p}"));
        }
        if let Some(s) = &filter.symbol {
            // The symbol and its two hedge-mode keys, compared exactly: SQLite's LIKE ignores
            // ASCII case where PostgreSQL's does not, so `LIKE 'BTC/USDT:USDT@%'` also matched
            // `btc/usdt:usdt@long` on SQLite only (found by an audit on 2026-12-06).
            let keys: Vec<String> = [
                Key::net(s),
                Key::hedge(s, Side::Long),
                Key::hedge(s, Side::Short),
            ]
            .iter()
            .map(|k| param(Val::text(k.as_str()), &mut params))
            .collect();
            clauses.push(format!("symbol IN ({})", keys.join(", ")));
        }
        match &filter.kinds {
            None => {}
            // No kind asked for selects nothing (it selected everything: found by an audit).
            Some(kinds) if kinds.is_empty() => clauses.push("1 = 0".to_owned()),
            Some(kinds) => {
                let list: Vec<String> = kinds
                    .iter()
                    .map(|k| param(Val::text(k.as_str()), &mut params))
                    .collect();
                clauses.push(format!("kind IN ({})", list.join(", ")));
            }
        }
        if let Some(t) = filter.since_us {
            let p = param(Val::int(t), &mut params);
            clauses.push(format!("time_us >= {p}"));
        }
        if let Some(t) = filter.until_us {
            let p = param(Val::int(t), &mut params);
            clauses.push(format!("time_us < {p}"));
        }
        if filter.without_taken_back {
            clauses.push(format!("NOT ({TAKEN_BACK})"));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let columns = "account, seq, time_us, symbol, kind, reason, pnl, event, attributes";
        // `run_us`: the latest time among the account's selected events up to this one, which
        // never decreases along an account's `seq`.
        let selected = format!(
            "SELECT {columns}, MAX(time_us) OVER (PARTITION BY account ORDER BY seq \
             ROWS UNBOUNDED PRECEDING) AS run_us FROM pmrs_events {filter_sql}"
        );
        let sql = match filter.limit {
            Some(limit) => {
                let p = param(Val::int(limit.max(0)), &mut params);
                format!(
                    "SELECT {columns} FROM (SELECT {columns}, run_us FROM ({selected}) s \
                     ORDER BY {} LIMIT {p}) newest ORDER BY {}",
                    self.ordered("run_us DESC, account DESC, seq DESC"),
                    self.ordered("run_us, account, seq"),
                )
            }
            None => format!(
                "SELECT {columns} FROM ({selected}) s ORDER BY {}",
                self.ordered("run_us, account, seq")
            ),
        };
        let rows = self.read(&sql, &params)?;
        Ok(rows
            .into_iter()
            .map(|r| EventRecord {
                account: text(r.first()),
                seq: r.get(1).and_then(Val::as_int).unwrap_or(0),
                time_us: r.get(2).and_then(Val::as_int).unwrap_or(0),
                symbol: text(r.get(3)),
                kind: text(r.get(4)),
                reason: text(r.get(5)),
                pnl: r.get(6).and_then(Val::as_real),
                event: text(r.get(7)),
                attributes: r.get(8).and_then(Val::as_text).map(str::to_owned),
            })
            .collect())
    }

    /// The positions that left the book (`closed` by the manager with its P/L, `removed` as
    /// closed outside it) that `filter` selects (its kinds are ignored), oldest first. An end a
    /// later list took back (`close_unconfirmed`, `restored`: the very position was tracked
    /// again) is not one of them.
    pub fn closed_positions(&mut self, filter: &EventFilter) -> JournalResult<Vec<EventRecord>> {
        let mut f = filter.clone();
        f.kinds = Some(CLOSING_KINDS.iter().map(|k| (*k).to_owned()).collect());
        f.without_taken_back = true;
        self.events(&f)
    }

    /// The tracked positions of `account` (all accounts when `None`), by account, then in book
    /// order.
    pub fn open_positions(&mut self, account: Option<&str>) -> JournalResult<Vec<PositionRecord>> {
        let listed = if self.version >= 5 { "listed" } else { "NULL" };
        let unlisted = if self.version >= 7 {
            "unlisted_fills"
        } else {
            "NULL"
        };
        let rows = self.rows_of(
            &format!(
                "account, symbol, state, attributes, updated_seq, updated_at, {listed}, {unlisted}"
            ),
            "pmrs_positions",
            "account, book_order, symbol",
            account,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| PositionRecord {
                account: text(r.first()),
                symbol: text(r.get(1)),
                state: text(r.get(2)),
                attributes: r.get(3).and_then(Val::as_text).map(str::to_owned),
                updated_seq: r.get(4).and_then(Val::as_int).unwrap_or(0),
                updated_at: text(r.get(5)),
                listed: r.get(6).and_then(Val::as_text).map(str::to_owned),
                unlisted_fills: r.get(7).and_then(Val::as_text).map(str::to_owned),
            })
            .collect())
    }

    /// `order` (comma-separated terms) with its text columns (`account`, `symbol`) compared by
    /// their bytes on PostgreSQL, as SQLite compares them: by the database's collation the two
    /// databases listed accounts and symbols in different orders, and with a `limit` could keep
    /// different rows (found by an audit on 2026-12-06).
    fn ordered(&self, order: &str) -> String {
        if self.db.dialect() != Dialect::Postgres {
            return order.to_owned();
        }
        order
            .split(',')
            .map(|term| {
                let term = term.trim();
                let (column, rest) = term.split_once(' ').unwrap_or((term, ""));
                let text = matches!(column, "account" | "a.account" | "symbol");
                match (text, rest) {
                    (true, "") => format!("{column} COLLATE \"C\""),
                    (true, rest) => format!("{column} COLLATE \"C\" {rest}"),
                    (false, _) => term.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `columns` of `table`'s rows of `account` (every account's when `None`), in `order`.
    fn rows_of(
        &mut self,
        columns: &str,
        table: &str,
        order: &str,
        account: Option<&str>,
    ) -> JournalResult<Vec<Vec<Val>>> {
        let order = self.ordered(order);
        match account {
            Some(a) => self.read(
                &format!("SELECT {columns} FROM {table} WHERE account = ?1 ORDER BY {order}"),
                &[Val::text(a)],
            ),
            None => self.read(
                &format!("SELECT {columns} FROM {table} ORDER BY {order}"),
                &[],
            ),
        }
    }

    /// The tombstones of `account` (all accounts when `None`): positions removed as closed
    /// outside the manager that a restarted manager restores if the exchange lists them again;
    /// by account, oldest removal first. A manager drops those older than its
    /// `tombstone_ttl_seconds` or beyond its `tombstone_limit` when it starts.
    pub fn tombstones(&mut self, account: Option<&str>) -> JournalResult<Vec<KeptRecord>> {
        let listed = if self.version >= 4 { "listed" } else { "NULL" };
        let own_end = if self.version >= 8 { "own_end" } else { "NULL" };
        let doubtful = if self.version >= 10 {
            "doubtful"
        } else {
            "NULL"
        };
        self.kept(
            "pmrs_tombstones",
            ("removed_seq", "removed_at_us"),
            (listed, "NULL", own_end, doubtful),
            account,
        )
    }

    /// The closes awaiting confirmation of `account` (all accounts when `None`): positions the
    /// manager closed (the client said so) that no position list has confirmed closed yet; by
    /// account, oldest first. A version 1 or 2 journal has none.
    pub fn closing_positions(&mut self, account: Option<&str>) -> JournalResult<Vec<KeptRecord>> {
        if self.version < 3 {
            return Ok(Vec::new());
        }
        let order_id = if self.version >= 7 {
            "order_id"
        } else {
            "NULL"
        };
        self.kept(
            "pmrs_closing",
            ("closed_seq", "closed_at_us"),
            ("NULL", order_id, "NULL", "NULL"),
            account,
        )
    }

    /// `table`'s rows with its `(seq, at)` columns and the `(listed, order_id, own_end,
    /// doubtful)` column expressions (`NULL` where the table or its version has none).
    fn kept(
        &mut self,
        table: &str,
        (seq, at): (&str, &str),
        (listed, order_id, own_end, doubtful): (&str, &str, &str, &str),
        account: Option<&str>,
    ) -> JournalResult<Vec<KeptRecord>> {
        let rows = self.rows_of(
            &format!(
                "account, symbol, state, attributes, {seq}, {at}, {listed}, {order_id}, \
                 {own_end}, {doubtful}"
            ),
            table,
            &format!("account, {at}, symbol"),
            account,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| KeptRecord {
                account: text(r.first()),
                symbol: text(r.get(1)),
                state: text(r.get(2)),
                attributes: r.get(3).and_then(Val::as_text).map(str::to_owned),
                seq: r.get(4).and_then(Val::as_int).unwrap_or(0),
                at_us: r.get(5).and_then(Val::as_int).unwrap_or(0),
                listed: r.get(6).and_then(Val::as_text).map(str::to_owned),
                order_id: r.get(7).and_then(Val::as_text).map(str::to_owned),
                own_end: r.get(8).and_then(Val::as_int).is_some_and(|v| v != 0),
                doubtful: r.get(9).and_then(Val::as_int).is_some_and(|v| v != 0),
            })
            .collect())
    }

    /// The re-open holds of `account` (all accounts when `None`) as last written, by account
    /// and key. A hold is over `reopen_hold_seconds` after it started (the setting is the
    /// manager's, not in the journal); the manager drops those over when it next writes its
    /// holds or starts. A version 1 journal has none.
    pub fn reopen_holds(&mut self, account: Option<&str>) -> JournalResult<Vec<HoldRecord>> {
        if self.version < 2 {
            return Ok(Vec::new());
        }
        let rows = self.rows_of(
            "account, symbol, held_since_us",
            "pmrs_holds",
            "account, symbol",
            account,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| HoldRecord {
                account: text(r.first()),
                symbol: text(r.get(1)),
                held_since_us: r.get(2).and_then(Val::as_int).unwrap_or(0),
            })
            .collect())
    }

    /// The orders in flight (sent, their outcome not yet taken in: a restarted manager takes
    /// each back as an order with an unknown outcome), by account and key. A journal before
    /// version 6 has none.
    pub fn orders_in_flight(&mut self, account: Option<&str>) -> JournalResult<Vec<OrderRecord>> {
        if self.version < 6 {
            return Ok(Vec::new());
        }
        let rows = self.rows_of(
            "account, symbol, kind, client_order_id, sent_at_us, intent",
            "pmrs_orders",
            "account, symbol",
            account,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| OrderRecord {
                account: text(r.first()),
                symbol: text(r.get(1)),
                kind: text(r.get(2)),
                client_order_id: r.get(3).and_then(Val::as_text).map(str::to_owned),
                sent_at_us: r.get(4).and_then(Val::as_int).unwrap_or(0),
                intent: text(r.get(5)),
            })
            .collect())
    }
}
