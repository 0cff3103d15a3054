//! The writer a journaled manager holds: one connection, one account, one transaction per
//! write.
//!
//! A write that fails is not dropped: its events and row changes stay queued in order and are
//! written, first, in the transaction of the next write that succeeds (events are inserted
//! once, so a write whose commit did happen but whose answer was lost is harmless to repeat).
//! A PostgreSQL connection found broken is re-opened before the next write. Once another
//! manager has claimed the account ([`JournalError::Fenced`]), this writer writes nothing
//! more: what it had queued is dropped (it can never be written by this writer) and every later
//! write is refused at once, without a round trip to the database.
//!
//! An outage costs one bounded wait, not one per write: a write waits for another process's or
//! session's lock at most [`LOCK_WAIT`]; once a write has failed, every later write of the same
//! outage waits only [`OUTAGE_LOCK_WAIT`] (it succeeds as soon as the lock is free, and queues
//! otherwise), until one succeeds. What the owner reports (queued events, fenced, failing) is
//! published in a [`WriterStatus`] readable without the writer's lock, so a status read never
//! waits behind a write.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::postgres::Postgres;
use crate::schema;
use crate::sql::Sql;
use crate::sqlite::Sqlite;
use crate::store::{self, Batch, OrderOp, OrderWrite, PositionWrite, Restored, RowOp};
use crate::{JournalError, JournalResult, SyncMode, Target};

/// Events kept queued at most while the database cannot be written; beyond that the oldest
/// are dropped with an error log (a journal down for that long is a lost cause anyway).
pub const MAX_QUEUED_EVENTS: usize = 1_000_000;

/// How long a write waits for another process's (SQLite's busy timeout) or session's
/// (PostgreSQL's `lock_timeout`) lock while the journal works: 5 s on both. Several managers
/// sharing one database hold the lock for milliseconds per write; a lock held for longer is
/// someone else's (a backup, an open shell transaction), and a manager call must not wait on it
/// long. A failed write stays queued, and while the journal is failing the writer waits only
/// [`OUTAGE_LOCK_WAIT`] (one bounded wait per outage).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// How long a write waits for a lock once a write of the same outage has failed: long enough
/// for another manager's ordinary write on a shared database (milliseconds), short enough that
/// a cycle of many events during an outage is not held by it.
pub const OUTAGE_LOCK_WAIT: Duration = Duration::from_millis(100);

/// A reconnect that failed only after waiting at least this long (a server that accepts and
/// never answers, a network that drops packets) holds the next attempts off
/// ([`RECONNECT_HOLD_FACTOR`]); one that failed at once (refused, no such host) does not.
pub const SLOW_CONNECT: Duration = Duration::from_secs(1);

/// After a slow failed reconnect, the writer does not try again before this many times the
/// attempt's own wait has passed: writes meanwhile fail at once (their events stay queued), so
/// a silent server costs the manager calls at most one connect timeout in four (10 s in 40 s
/// with the default timeout), not one per write.
pub const RECONNECT_HOLD_FACTOR: u32 = 3;

/// What a writer's owner reports, published after every write and read without the writer's
/// lock ([`Writer::status`]).
#[derive(Debug, Default)]
pub struct WriterStatus {
    queued_events: AtomicUsize,
    fenced: AtomicBool,
    failing: AtomicBool,
}

impl WriterStatus {
    /// How many events wait in the queue (as of the last write).
    pub fn queued_events(&self) -> usize {
        self.queued_events.load(Ordering::Relaxed)
    }

    /// Whether another writer claimed the account.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Relaxed)
    }

    /// Whether the last write failed (the journal is failing until a write succeeds).
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

/// Connects to `target` for writing.
pub fn connect(target: &Target, sync: SyncMode) -> JournalResult<Box<dyn Sql>> {
    Ok(match target {
        Target::Sqlite(path) => Box::new(Sqlite::open(path, sync)?),
        Target::Postgres(url) => Box::new(Postgres::connect(url, sync, false)?),
    })
}

/// What a write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// Everything queued is in the database (`recovered`: earlier failed writes were among it).
    Done {
        /// Whether queued writes from earlier failures were written too.
        recovered: bool,
    },
    /// Nothing to write.
    Nothing,
}

/// The writer (see the module docs).
pub struct Writer {
    target: Target,
    sync: SyncMode,
    account: String,
    epoch: i64,
    db: Option<Box<dyn Sql>>,
    queued: Batch,
    queued_writes: usize,
    dropped: usize,
    /// The most events kept queued while the database fails ([`MAX_QUEUED_EVENTS`]).
    max_queued: usize,
    /// What the owner should log once it holds no lock (events dropped from the queue).
    notice: Option<String>,
    /// Why the account is no longer this writer's, once another writer claimed it.
    fenced: Option<String>,
    /// A hash of each tracked row as last written (state and attributes), to write only the
    /// rows that changed at a checkpoint.
    written: HashMap<String, u64>,
    /// The keys whose close awaiting confirmation has a row, written or queued (so that only
    /// those are ever deleted: most events cannot end a close, and need no statement for it).
    closing: HashSet<String>,
    /// The keys whose tracked position has a predecessor row (the position a side flip
    /// replaced), written or queued: only those are ever deleted.
    predecessors: HashSet<String>,
    /// The reference of each key's order in flight with a row, written or queued (so that a
    /// settle deletes only rows that exist, and only the order's own).
    orders: HashMap<String, String>,
    /// Per key, the order row whose write failed and that may not be sent
    /// ([`Writer::write_order`]): what the queue and [`Writer::orders`] held before it, to put
    /// back if the order is withdrawn ([`Writer::withdraw_order`]).
    unsent: HashMap<String, Unsent>,
    /// Whether the last write failed: later writes wait only [`OUTAGE_LOCK_WAIT`].
    failing: bool,
    /// When a reconnect that failed slowly ([`SLOW_CONNECT`]) ended, and until when no other
    /// is tried ([`RECONNECT_HOLD_FACTOR`]).
    /// (When it ended, until when, how long it waited.)
    reconnect_held: Option<(Instant, Instant, Duration)>,
    /// What the owner reports, readable without the writer's lock.
    status: Arc<WriterStatus>,
}

/// An order row whose write failed, with what it replaced ([`Writer::withdraw_order`]).
struct Unsent {
    reference: String,
    queued: Option<OrderOp>,
    row: Option<String>,
}

impl Writer {
    /// Connects, migrates the schema, claims `account` and reads it back (its newest `history`
    /// events). Every failure here is an error: a journal that cannot be written is refused
    /// before the manager starts.
    pub fn open(
        target: Target,
        sync: SyncMode,
        account: &str,
        history: usize,
        now_us: i64,
    ) -> JournalResult<(Writer, Restored)> {
        if account.is_empty() {
            return Err(JournalError::Config(
                "account must be a non-empty string, got ''".to_owned(),
            ));
        }
        let mut db = connect(&target, sync)?;
        schema::migrate(db.as_mut(), now_us)?;
        let restored = store::claim(
            db.as_mut(),
            account,
            &crate::writer_identity(),
            history,
            now_us,
        )
        .map_err(|e| db.explain_wait(e, &format!("claiming the account {account:?}")))?;
        let closing = restored.closing.iter().map(|c| c.symbol.clone()).collect();
        let predecessors = restored
            .predecessors
            .iter()
            .map(|c| c.symbol.clone())
            .collect();
        let orders = restored
            .orders
            .iter()
            .map(|o| (o.symbol.clone(), o.order.reference.clone()))
            .collect();
        let writer = Writer {
            target,
            sync,
            account: account.to_owned(),
            epoch: restored.epoch,
            db: Some(db),
            queued: Batch::default(),
            queued_writes: 0,
            dropped: 0,
            max_queued: MAX_QUEUED_EVENTS,
            notice: None,
            fenced: None,
            written: HashMap::new(),
            closing,
            predecessors,
            orders,
            unsent: HashMap::new(),
            failing: false,
            reconnect_held: None,
            status: Arc::new(WriterStatus::default()),
        };
        Ok((writer, restored))
    }

    /// Keeps at most `events` events queued while the database fails (the oldest are dropped
    /// first; [`MAX_QUEUED_EVENTS`] by default).
    pub fn with_queue_limit(mut self, events: usize) -> Writer {
        self.max_queued = events;
        self
    }

    /// What happened that the owner should log (events dropped from the queue), once: the
    /// writer logs nothing itself, since it runs under its owner's lock and a log record runs
    /// Python (DESIGN rule 1).
    pub fn take_notice(&mut self) -> Option<String> {
        self.notice.take()
    }

    /// The account written.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The database, for messages (no password).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// What the owner reports, published after every write and readable without the writer's
    /// lock.
    pub fn status(&self) -> Arc<WriterStatus> {
        self.status.clone()
    }

    /// How many events wait in the queue for a write that succeeds.
    pub fn queued_events(&self) -> usize {
        self.queued.events.len()
    }

    /// Whether another writer claimed the account (then this one writes nothing more).
    pub fn is_fenced(&self) -> bool {
        self.fenced.is_some()
    }

    /// Whether the row of `symbol` with this content hash was already written.
    pub fn unchanged(&self, symbol: &str, hash: u64) -> bool {
        self.written.get(symbol) == Some(&hash)
    }

    /// Whether `symbol` has a close awaiting confirmation in the journal (written or queued).
    pub fn has_closing_row(&self, symbol: &str) -> bool {
        self.closing.contains(symbol)
    }

    /// Whether `symbol` has a predecessor row in the journal (written or queued).
    pub fn has_predecessor_row(&self, symbol: &str) -> bool {
        self.predecessors.contains(symbol)
    }

    /// The reference of the order in flight `symbol` has a row for (written or queued), if any.
    pub fn order_row(&self, symbol: &str) -> Option<&str> {
        self.orders.get(symbol).map(String::as_str)
    }

    /// The keys with an order in flight row (written or queued), each with its reference.
    pub fn order_rows(&self) -> Vec<(String, String)> {
        self.orders
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    }

    /// Writes `batch` after everything still queued, in one transaction. On failure the whole
    /// is kept queued for the next write and the error returned; once fenced, `batch` is
    /// dropped and [`JournalError::Fenced`] returned without touching the database.
    pub fn write(&mut self, batch: Batch, now_us: i64) -> JournalResult<Written> {
        let result = self.write_queue(batch, now_us);
        match &result {
            Ok(Written::Done { .. }) => self.failing = false,
            Ok(Written::Nothing) => {}
            Err(_) => self.failing = true,
        }
        self.publish();
        result
    }

    /// Publishes what the owner reports ([`Writer::status`]).
    fn publish(&self) {
        let status = &self.status;
        status
            .queued_events
            .store(self.queued.events.len(), Ordering::Relaxed);
        status
            .fenced
            .store(self.fenced.is_some(), Ordering::Relaxed);
        status.failing.store(self.failing, Ordering::Relaxed);
    }

    fn write_queue(&mut self, batch: Batch, now_us: i64) -> JournalResult<Written> {
        if let Some(why) = &self.fenced {
            return Err(JournalError::Fenced(why.clone()));
        }
        let recovering = !self.queued.is_empty();
        let queued_before = self.queued.events.len();
        for (rows, keys) in [
            (&batch.closing, &mut self.closing),
            (&batch.predecessors, &mut self.predecessors),
        ] {
            for (symbol, op) in rows {
                match op {
                    RowOp::Upsert(_) => keys.insert(symbol.clone()),
                    RowOp::Delete => keys.remove(symbol),
                };
            }
        }
        for (symbol, op) in &batch.orders {
            match op {
                OrderOp::Upsert(o) => {
                    self.orders.insert(symbol.clone(), o.reference.clone());
                }
                OrderOp::Delete(reference) => {
                    if self.orders.get(symbol) == Some(reference) {
                        self.orders.remove(symbol);
                    }
                }
            }
        }
        self.queued.merge(batch);
        if self.queued.is_empty() {
            return Ok(Written::Nothing);
        }
        self.queued_writes += 1;
        if self.queued.events.len() > self.max_queued {
            let over = self.queued.events.len() - self.max_queued;
            self.queued.events.drain(..over);
            self.dropped += over;
            self.notice = Some(format!(
                "Journal {}: {} queued events dropped after the database failed for {} writes",
                self.target.display(),
                self.dropped,
                self.queued_writes
            ));
        }
        let result = self.try_write(now_us);
        match result {
            Ok(()) => {
                for (symbol, op) in std::mem::take(&mut self.queued).positions {
                    match op {
                        RowOp::Upsert(p) => {
                            if p.attributes.is_some() {
                                self.written.insert(symbol, row_hash(&p));
                            } else {
                                self.written.remove(&symbol);
                            }
                        }
                        RowOp::Delete => {
                            self.written.remove(&symbol);
                        }
                    }
                }
                self.queued_writes = 0;
                Ok(Written::Done {
                    recovered: recovering,
                })
            }
            Err(JournalError::Fenced(why)) => {
                // Permanent: the newer writer owns the account's history from its claim on.
                // What earlier failed writes had queued (this write's own events are the
                // fenced write's, reported with it).
                let dropped = queued_before.min(self.queued.events.len());
                if dropped > 0 {
                    self.notice = Some(format!(
                        "Journal {}: {dropped} event(s) queued by earlier failed writes were \
                         not written (the account was taken over meanwhile); they stay in \
                         manager.events",
                        self.target.display()
                    ));
                }
                self.queued = Batch::default();
                self.queued_writes = 0;
                self.fenced = Some(why.clone());
                Err(JournalError::Fenced(why))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes `order`'s row for `symbol` (replacing the key's) after everything queued, as
    /// [`Writer::write`]. With `withdrawable` (an order that is not sent when its row cannot be
    /// written), a failure remembers what the row replaced, so that
    /// [`Writer::withdraw_order`] can take it back out.
    pub fn write_order(
        &mut self,
        symbol: &str,
        order: OrderWrite,
        withdrawable: bool,
        now_us: i64,
    ) -> JournalResult<Written> {
        let before = Unsent {
            reference: order.reference.clone(),
            queued: self.queued.orders.get(symbol).cloned(),
            row: self.orders.get(symbol).cloned(),
        };
        let mut batch = Batch::default();
        batch
            .orders
            .insert(symbol.to_owned(), OrderOp::Upsert(order));
        let result = self.write(batch, now_us);
        if withdrawable && result.is_err() && self.fenced.is_none() {
            self.unsent.insert(symbol.to_owned(), before);
        } else {
            self.unsent.remove(symbol);
        }
        result
    }

    /// The order `reference` of `symbol`, whose row [`Writer::write_order`] could not write,
    /// was not sent: its row leaves the queue, which holds again what it held before for the
    /// key (a journal never gets the row of an order that never went out). If a later write
    /// wrote it meanwhile, its deletion is written instead (`Some`: that write's result).
    pub fn withdraw_order(
        &mut self,
        symbol: &str,
        reference: &str,
        now_us: i64,
    ) -> Option<JournalResult<Written>> {
        let unsent = self.unsent.remove(symbol)?;
        if unsent.reference != reference {
            return None;
        }
        let queued_here = matches!(
            self.queued.orders.get(symbol),
            Some(OrderOp::Upsert(o)) if o.reference == reference
        );
        if queued_here {
            match unsent.queued {
                Some(op) => self.queued.orders.insert(symbol.to_owned(), op),
                None => self.queued.orders.remove(symbol),
            };
            match unsent.row {
                Some(r) => self.orders.insert(symbol.to_owned(), r),
                None => self.orders.remove(symbol),
            };
            return None;
        }
        if self.orders.get(symbol).map(String::as_str) != Some(reference) {
            return None;
        }
        let mut batch = Batch::default();
        batch
            .orders
            .insert(symbol.to_owned(), OrderOp::Delete(reference.to_owned()));
        Some(self.write(batch, now_us))
    }

    /// One write of the queue. A session the server ended meanwhile (a restart, a failover,
    /// `idle_session_timeout`, a pooler) shows only when a write fails on it: the write is then
    /// made once more at once on a new session (writes are idempotent), not left queued until
    /// the next call — an order's row would then reach the journal after the order went out,
    /// and a process killed meanwhile would leave nothing to stop a second order (found by an
    /// audit on 2026-12-06).
    fn try_write(&mut self, now_us: i64) -> JournalResult<()> {
        let mut fresh = false;
        loop {
            if self.db.as_ref().is_none_or(|db| db.is_broken()) {
                self.db = None;
                self.db = Some(self.reconnect()?);
                fresh = true;
            }
            let Some(db) = self.db.as_mut() else {
                return Err(JournalError::Database("no connection".to_owned()));
            };
            // One bounded wait per outage: once a write failed, the next ones barely wait.
            db.set_lock_wait(if self.failing {
                OUTAGE_LOCK_WAIT
            } else {
                LOCK_WAIT
            })?;
            let result = store::write(db.as_mut(), &self.account, self.epoch, &self.queued, now_us);
            if result.is_err() && db.is_broken() {
                self.db = None;
                if !fresh {
                    fresh = true;
                    continue;
                }
            }
            return result;
        }
    }
}

impl Writer {
    /// A new connection for a write, unless a reconnect failed slowly a short while ago
    /// ([`RECONNECT_HOLD_FACTOR`]): then an error at once, saying when the next attempt is.
    fn reconnect(&mut self) -> JournalResult<Box<dyn Sql>> {
        let now = Instant::now();
        if let Some((failed, until, waited)) = self.reconnect_held {
            if now < until {
                return Err(JournalError::Database(format!(
                    "not reconnecting to the journal yet: the last attempt failed {:.0} s ago after waiting {:.0} s; the next one in {:.0} s",
                    now.duration_since(failed).as_secs_f64(),
                    waited.as_secs_f64(),
                    until.duration_since(now).as_secs_f64().ceil()
                )));
            }
        }
        let result = connect(&self.target, self.sync);
        let waited = now.elapsed();
        self.reconnect_held = match &result {
            Err(_) if waited >= SLOW_CONNECT => {
                let ended = Instant::now();
                Some((ended, ended + waited * RECONNECT_HOLD_FACTOR, waited))
            }
            _ => None,
        };
        result
    }
}

/// The content hash of a tracked row (its state, attributes, listing and unlisted fills as
/// written).
pub fn row_hash(p: &PositionWrite) -> u64 {
    let mut h = DefaultHasher::new();
    p.state_json.hash(&mut h);
    p.attributes.hash(&mut h);
    p.listed.hash(&mut h);
    p.unlisted_fills.hash(&mut h);
    h.finish()
}
