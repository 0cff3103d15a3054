//! [`BookJournal`]: a manager's [`EventJournal`] over a [`Writer`].
//!
//! - **An event** ([`EventJournal::record`], called by the manager right after it stored the
//!   event, no lock held, on the thread that made the change): the event's row, and the row of
//!   its key in the book as the book is *at the moment of writing* — the position's current
//!   state if the book still holds it, a deletion if the key is gone — plus its tombstone for a
//!   `removed` event, all in one transaction. The membership check and the write happen under
//!   the writer's lock, so the last write for a key always reflects the book after its last
//!   change. The bot's attributes are read first (the caller's `extra` callback, with no lock
//!   held) from the position's handle: the book's, or, once it left the book (a close), the
//!   last handle seen for it, so attributes set after `open_position` returned reach the
//!   journal with the close at the latest.
//! - **The position a side flip replaced** (kept with the tracked position that replaced it, so
//!   a flip back restores it): its row is written, replaced or deleted with every event that
//!   begins or ends a life of its key (a flip's `removed` and `imported`, a flip back's
//!   `restored`, ...), as the book holds it when the writer's lock is taken; its attributes are
//!   read before, with no lock held.
//! - **A checkpoint** ([`EventJournal::checkpoint`], the end of every update cycle): the tracked
//!   positions whose state or attributes changed since last written (moved stops, new highs,
//!   new attributes), in one transaction.
//! - **A failure** is logged on the manager's main logger and recorded as one `journal_failed`
//!   event per outage (the event is journaled too once writes succeed again); what failed stays
//!   queued in the writer and is written first by the next write that succeeds. Nothing stops:
//!   the manager's call returns as usual. Losing the account to a newer writer (fencing) is
//!   permanent: it is logged and evented once, and nothing more is written or logged.
//! - **A close awaiting confirmation** (the manager's close the client reported done, which
//!   waits for a list to confirm it): its row is written with its `closed` event (the position's
//!   state and attributes then) and deleted with the event that ends it (`close_unconfirmed`,
//!   or a new position under its key) or, as a list confirming a close is no event, when the
//!   manager tells [`EventJournal::closes_settled`]. Each is decided by the book as it is when
//!   the writer's lock is taken.
//! - **The re-open holds** ([`EventJournal::holds_changed`], after every change of the held
//!   set): the manager's holds as they are when the writer's lock is taken, replacing the
//!   account's rows, so two changes racing each other always leave the newer set written.
//! - **A state file's remembered positions** ([`EventJournal::remembered`], after `load_state`
//!   put its tombstones and closes awaiting confirmation back): their rows, as the book holds
//!   them when the writer's lock is taken, in one transaction.
//! - **An order** ([`EventJournal::order_sent`], right before the client call): its row,
//!   replacing the key's (when it cannot be written, an order that adds exposure is not sent
//!   and its row leaves the queue, [`EventJournal::order_not_sent`]; one that reduces is sent
//!   and its row stays queued); [`EventJournal::orders_settled`] (the end of the call that sent
//!   it, a list that resolved an unknown outcome) and every checkpoint delete the rows of keys
//!   the book no longer has an order pending for — by the order's reference, so an older order's
//!   settle never deletes a newer one's row.
//! - **Start** ([`BookJournal::start`]): the account's history, tombstones, closes awaiting
//!   confirmation and book (each position with the one a side flip replaced with it, if any)
//!   are put into an empty manager, each position recorded as a `loaded`
//!   event (reason `journal`), its re-open holds that are not over are taken back, and its orders
//!   in flight are taken back as orders with unknown outcomes
//!   ([`Manager::restore_orders`]; rows whose result the book holds are deleted).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use log::Level;
use parking_lot::Mutex;

use position_manager_core::book::{share, KeptEntry, Remembered, Remembrance, SharedPosition};
use position_manager_core::clock::Timestamp;
use position_manager_core::error::{CoreError, CoreResult};
use position_manager_core::events::{Event, EventKind};
use position_manager_core::journal_hook::EventJournal;
use position_manager_core::key::Key;
use position_manager_core::manager::in_flight::SentOrder;
use position_manager_core::manager::state::remembered_summary;
use position_manager_core::manager::{Channel, Manager};
use position_manager_core::persist::Extra;
use position_manager_core::position::PositionState;

use crate::store::{
    listing_json, Batch, EventWrite, HoldWrite, OrderOp, OrderWrite, PositionWrite, Restored,
    RestoredTombstone, RowOp, TombWrite,
};
use crate::writer::{row_hash, Writer, WriterStatus, Written};
use crate::JournalError;

/// The reason on the `loaded` events of positions restored from the journal.
pub const JOURNAL_REASON: &str = "journal";

/// Reads a handle's attributes (the binding: the Python object's JSON-serialisable
/// `__dict__`); `None` when they cannot be read now. Called with no lock held.
pub type ExtraFn<H> = Arc<dyn Fn(&H) -> Option<Extra> + Send + Sync>;

/// The journal hook of one manager (see the module docs).
pub struct BookJournal<H> {
    manager: Weak<Manager<H>>,
    writer: Mutex<Writer>,
    /// What the writer reports, read without its lock (a status read never waits behind a
    /// write's wait for a database lock).
    status: Arc<WriterStatus>,
    extra: ExtraFn<H>,
    /// The last handle seen per key, to read the attributes of a position that left the book.
    handles: Mutex<HashMap<String, H>>,
    /// Whether the last write failed (an `ERROR` for the first failure of an outage, then
    /// `WARNING`s).
    failing: AtomicBool,
    /// Whether this outage's `journal_failed` event was recorded (one per outage).
    failure_evented: AtomicBool,
    /// Whether being fenced was reported (once: it ends the journal for this manager).
    fence_reported: AtomicBool,
}

fn attributes_json(extra: Option<Extra>) -> Option<String> {
    extra.and_then(|e| serde_json::to_string(&e).ok())
}

impl<H: Clone + Send + Sync + 'static> BookJournal<H> {
    /// Puts what `restored` holds into `manager` (which must be empty) and makes the journal
    /// its hook: the history first, then the tombstones, then the positions in book order, each
    /// a `loaded` event (journaled). `make(state, extra, position)` makes the handle of each
    /// restored position (called with no lock held). Returns the journal; an error from `make`
    /// leaves the manager without a journal and with an empty book.
    pub fn start(
        manager: &Arc<Manager<H>>,
        writer: Writer,
        restored: Restored,
        extra: ExtraFn<H>,
        mut make: impl FnMut(&str, &Extra, &SharedPosition) -> CoreResult<H>,
    ) -> CoreResult<Arc<BookJournal<H>>> {
        if !manager.book().is_empty() {
            return Err(CoreError::Value(
                "a journal can only be attached to an empty manager".to_owned(),
            ));
        }
        let Restored {
            last_seq,
            positions,
            tombstones,
            closing,
            predecessors,
            holds,
            orders,
            events,
            unreadable,
            ..
        } = restored;
        let keys = positions
            .iter()
            .map(|p| p.symbol.as_str())
            .chain(tombstones.iter().map(|t| t.symbol.as_str()))
            .chain(closing.iter().map(|c| c.symbol.as_str()))
            .chain(predecessors.iter().map(|p| p.symbol.as_str()))
            .chain(holds.iter().map(|h| h.symbol.as_str()))
            .chain(orders.iter().map(|o| o.symbol.as_str()));
        if let Some(why) = manager.misfit_saved_key(keys) {
            return Err(CoreError::Value(format!(
                "the journal was not taken back: {why}"
            )));
        }
        let config = manager.config();
        let now = manager.now();
        // Tombstones' and closes' times are timer readings, as their lifetime.
        let timer = manager.timer();
        let expired = |at: Timestamp| timer.seconds_since(at) > config.tombstone_ttl_seconds;
        let mut cleanup = Batch::default();
        // A key's newest state wins: a tracked position over a close awaiting confirmation,
        // that over a tombstone. Closes awaiting confirmation expire as tombstones do.
        let tracked: HashSet<&str> = positions.iter().map(|p| p.symbol.as_str()).collect();
        let mut awaiting = Vec::new();
        for c in closing {
            if tracked.contains(c.symbol.as_str()) || expired(c.removed_at) {
                cleanup.closing.insert(c.symbol, RowOp::Delete);
            } else {
                awaiting.push(c);
            }
        }
        let newer: HashSet<&str> = awaiting
            .iter()
            .map(|c| c.symbol.as_str())
            .chain(tracked.iter().copied())
            .collect();
        // Tombstones beyond the manager's limit or age are dropped from the journal too.
        let keep_from = tombstones.len().saturating_sub(config.tombstone_limit);
        let mut buried = Vec::new();
        for (i, t) in tombstones.into_iter().enumerate() {
            if i < keep_from || expired(t.removed_at) || newer.contains(t.symbol.as_str()) {
                cleanup.tombstones.insert(t.symbol, RowOp::Delete);
            } else {
                buried.push(t);
            }
        }
        let mut remembered = Remembered {
            tombstones: Vec::with_capacity(buried.len()),
            closing: Vec::with_capacity(awaiting.len()),
        };
        for (rows, into) in [
            (buried, &mut remembered.tombstones),
            (awaiting, &mut remembered.closing),
        ] {
            for row in rows {
                into.push(kept_entry(row, &mut make)?);
            }
        }
        // The positions side flips replaced go with the tracked positions that replaced them
        // (whatever their age, as in a running manager); one whose key is not tracked is over.
        let mut replaced = HashMap::with_capacity(predecessors.len());
        for row in predecessors {
            if !tracked.contains(row.symbol.as_str()) {
                cleanup.predecessors.insert(row.symbol, RowOp::Delete);
                continue;
            }
            let symbol = row.symbol.clone();
            replaced.insert(symbol, kept_entry(row, &mut make)?);
        }
        let mut staged = Vec::with_capacity(positions.len());
        for p in positions {
            let position = share(p.state);
            let handle = make(&p.symbol, &p.extra, &position)?;
            let predecessor = replaced.remove(&p.symbol);
            staged.push((p.symbol, position, handle, p.sighting, predecessor));
        }
        // Holds over by now, or all of them when the manager holds nothing, leave the journal.
        let found = holds.len();
        let held = manager
            .restore_reopen_holds(holds.into_iter().map(|h| (Key::parse(&h.symbol), h.since)));
        if held.len() != found {
            cleanup.holds = Some(hold_rows(&held));
        }
        let status = writer.status();
        let journal = Arc::new(BookJournal {
            manager: Arc::downgrade(manager),
            writer: Mutex::new(writer),
            status,
            extra,
            handles: Mutex::new(HashMap::new()),
            failing: AtomicBool::new(false),
            failure_evented: AtomicBool::new(false),
            fence_reported: AtomicBool::new(false),
        });
        manager.events().restore(events, last_seq.saturating_add(1));
        manager.set_journal(Some(journal.clone()));
        if !unreadable.is_empty() {
            manager.config().loggers.emit(
                manager.level_gates(),
                Channel::Main,
                Level::Error,
                || {
                    format!(
                        "Journal: {} row(s) could not be read back and were left in the journal: {}",
                        unreadable.len(),
                        unreadable.join("; ")
                    )
                },
            );
        }
        if !cleanup.is_empty() {
            let result = journal.writer.lock().write(cleanup, now.0);
            if let Err(e) = result {
                journal.log(manager, Level::Warn, || {
                    format!("Journal: could not drop expired or superseded rows: {e}")
                });
            }
        }
        // Each close awaiting confirmation waits again for a list: one that no longer shows the
        // position confirms it; one that still does tracks it again (`close_unconfirmed`).
        let (buried, closes) = manager.restore_remembered(remembered);
        let mut loaded = Vec::with_capacity(staged.len());
        for (symbol, position, handle, sighting, predecessor) in staged {
            let displaced = manager.book().insert(&symbol, position.clone(), handle);
            drop(displaced);
            manager
                .book()
                .restore_sighting(&symbol, &position, sighting);
            if let Some(kept) = predecessor {
                drop(manager.book().put_back_predecessor(kept, &position));
            }
            loaded.push((symbol, position));
        }
        for (symbol, position) in &loaded {
            manager.record(symbol, position, EventKind::Loaded, JOURNAL_REASON, None);
        }
        // Orders whose outcome the last manager had not taken in: each waits again for the
        // exchange to tell (rows whose result the book already holds are dropped).
        let references: HashMap<String, String> = orders
            .iter()
            .map(|o| (o.symbol.clone(), o.order.reference.clone()))
            .collect();
        let taken_back = manager.restore_orders(
            orders
                .into_iter()
                .map(|o| (Key::parse(&o.symbol), o.order))
                .collect(),
        );
        if !taken_back.stale.is_empty() {
            let mut stale = Batch::default();
            for key in &taken_back.stale {
                if let Some(reference) = references.get(key.as_str()) {
                    stale
                        .orders
                        .insert(key.as_str().to_owned(), OrderOp::Delete(reference.clone()));
                }
            }
            let result = journal.writer.lock().write(stale, now.0);
            if let Err(e) = result {
                journal.log(manager, Level::Warn, || {
                    format!("Journal: could not drop the rows of orders already settled: {e}")
                });
            }
        }
        let count = loaded.len();
        let account = journal.writer.lock().account().to_owned();
        journal.log(manager, Level::Info, || {
            format!(
                "Journal: restored {count} positions and {} events of account {account:?}{}",
                manager.events().len(),
                remembered_summary(buried, closes, &held)
            )
        });
        Ok(journal)
    }

    /// What the book remembers under `keys` (tombstones, closes awaiting confirmation), each
    /// with its attributes and its state as JSON, read with no lock held.
    fn kept_rows(&self, manager: &Manager<H>, keys: &[Key]) -> Vec<KeptRow<H>> {
        keys.iter()
            .filter_map(|key| manager.book().remembered_entry(key))
            .map(|(_, kept)| {
                let attributes = attributes_json((self.extra)(&kept.handle));
                let state_json =
                    serde_json::to_string(&kept.position.lock().snapshot()).unwrap_or_default();
                KeptRow {
                    kept,
                    attributes,
                    state_json,
                }
            })
            .collect()
    }

    /// The position a side flip replaced with `key`'s tracked one, as read now (none when the
    /// key tracks nothing or its position replaced none): its position, for the check under the
    /// writer's lock, and its row, numbered `seq`. Read with no lock held.
    fn predecessor_row(&self, manager: &Manager<H>, key: &str, seq: i64) -> PredecessorRead {
        manager.book().predecessor_of(key).map(|k| {
            let attributes = attributes_json((self.extra)(&k.handle));
            let state_json =
                serde_json::to_string(&k.position.lock().snapshot()).unwrap_or_default();
            let row = TombWrite {
                removed_seq: seq,
                removed_at_us: k.at.0,
                state_json,
                attributes,
                listed: listing_json(k.listed),
                order_id: None,
                own_end: false,
                doubtful: false,
            };
            (k.position, row)
        })
    }

    fn log(&self, manager: &Manager<H>, level: Level, message: impl FnOnce() -> String) {
        manager
            .config()
            .loggers
            .emit(manager.level_gates(), Channel::Main, level, message);
    }

    /// Writes what is queued (after failures) and nothing else; `Ok(true)` when the queue is
    /// empty afterwards.
    pub fn flush(&self) -> Result<bool, JournalError> {
        let Some(manager) = self.manager.upgrade() else {
            return Ok(false);
        };
        let result = self.writer.lock().write(Batch::default(), manager.now().0);
        self.tell_notice(&manager);
        self.report_for_the_book(&manager, result.clone());
        result.map(|_| true)
    }

    /// [`BookJournal::report`] for a write of no one position: a failure event goes on the
    /// book's first position (with an empty book the failure is logged, with no event). The
    /// book is only read on a failure: these writes (flushes, holds, confirmed closes) succeed
    /// far more often than not, and reading it copies every entry.
    fn report_for_the_book(&self, manager: &Manager<H>, result: Result<Written, JournalError>) {
        let first = if result.is_err() {
            manager.book().entries().into_iter().next()
        } else {
            None
        };
        let on = first
            .as_ref()
            .map(|(symbol, position, _)| (symbol.as_str(), position));
        self.report(manager, result, on, false);
    }

    /// One write about no position in particular: `batch_of` builds the batch with the writer's
    /// lock held (`None`: nothing to write, not even what failures left queued); the writer's
    /// notice is then logged and the result reported ([`BookJournal::report_for_the_book`])
    /// with the lock released.
    fn write_for_the_book(
        &self,
        manager: &Manager<H>,
        batch_of: impl FnOnce(&Writer) -> Option<Batch>,
    ) {
        let result = {
            let mut writer = self.writer.lock();
            let Some(batch) = batch_of(&writer) else {
                return;
            };
            writer.write(batch, manager.now().0)
        };
        self.tell_notice(manager);
        self.report_for_the_book(manager, result);
    }

    /// Calls `f` with the handle the journal keeps of each position that left the book (to
    /// read its attributes later). Only tries the lock, never waits for it: returns false,
    /// without calling `f`, when another thread holds it (see
    /// [`position_manager_core::book::Book::try_visit_handles`]).
    pub fn try_visit_handles(&self, mut f: impl FnMut(&H)) -> bool {
        let Some(handles) = self.handles.try_lock() else {
            return false;
        };
        handles.values().for_each(&mut f);
        true
    }

    /// How many events wait for the database (as of the last write: never waits behind one).
    pub fn queued_events(&self) -> usize {
        self.status.queued_events()
    }

    /// Whether a newer manager claimed the account (this one writes nothing more).
    pub fn is_fenced(&self) -> bool {
        self.status.is_fenced()
    }

    /// Whether the journal is failing: its last write failed (or it was fenced).
    pub fn is_failing(&self) -> bool {
        self.status.is_failing() || self.status.is_fenced()
    }

    /// Writes the bot's attributes and the current state of the tracked position `symbol` now
    /// (without waiting for its next event or the end of the cycle). False when not tracked.
    pub fn write_position(&self, symbol: &str) -> Result<bool, JournalError> {
        let Some(manager) = self.manager.upgrade() else {
            return Ok(false);
        };
        // In hedge mode a plain symbol names its one tracked leg, as in the manager's calls.
        let Ok(key) = manager.resolve_key(symbol) else {
            return Ok(false);
        };
        let symbol = key.as_str();
        let Some((position, handle)) = manager.book().get(symbol) else {
            return Ok(false);
        };
        let attributes = attributes_json((self.extra)(&handle));
        let state = position.lock().snapshot();
        let result = {
            let mut writer = self.writer.lock();
            let mut batch = Batch::default();
            if manager.book().holds(symbol, &position) {
                let seq = manager.events().next_seq().saturating_sub(1);
                let row =
                    PositionWrite::new(state, attributes, i64::try_from(seq).unwrap_or(i64::MAX))
                        .sighting(manager.book().sighting(symbol, &position));
                batch
                    .positions
                    .insert(symbol.to_owned(), RowOp::Upsert(row));
            }
            writer.write(batch, manager.now().0)
        };
        drop(handle);
        self.tell_notice(&manager);
        self.report(&manager, result.clone(), Some((symbol, &position)), false);
        result.map(|_| true)
    }

    /// Logs what the writer asked to (with the writer's lock released first): called once
    /// after each write.
    fn tell_notice(&self, manager: &Manager<H>) {
        let notice = self.writer.lock().take_notice();
        if let Some(notice) = notice {
            self.log(manager, Level::Error, || notice);
        }
    }

    fn report(
        &self,
        manager: &Manager<H>,
        result: Result<Written, JournalError>,
        on: Option<(&str, &SharedPosition)>,
        is_failure_event: bool,
    ) {
        match result {
            Ok(Written::Done { recovered: true }) => {
                self.failure_evented.store(false, Ordering::Relaxed);
                if self.failing.swap(false, Ordering::Relaxed) {
                    self.log(manager, Level::Warn, || {
                        "Journal writes resumed: every queued event is written".to_owned()
                    });
                }
            }
            Ok(_) => {
                self.failure_evented.store(false, Ordering::Relaxed);
                self.failing.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                let queued = self.status.queued_events();
                let fenced = matches!(e, JournalError::Fenced(_));
                // Being fenced is its own transition, logged and evented once whatever the
                // outage it ends: found while writes were already failing it went unsaid, and
                // the queued events were dropped without a word (found by an audit on
                // 2026-12-06).
                let fenced_now = fenced && !self.fence_reported.swap(true, Ordering::Relaxed);
                if fenced_now {
                    self.failure_evented.store(false, Ordering::Relaxed);
                }
                let first = !self.failing.swap(true, Ordering::Relaxed) || fenced_now;
                if first {
                    self.log(manager, Level::Error, || {
                        if fenced {
                            format!(
                                "Journal write failed: {e}. From now on this manager's events \
                                 stay in memory only (manager.events)"
                            )
                        } else {
                            format!(
                                "Journal write failed ({queued} event(s) queued in memory, \
                                 retried with the next write): {e}"
                            )
                        }
                    });
                } else if !fenced {
                    self.log(manager, Level::Warn, || {
                        format!("Journal write failed again ({queued} event(s) queued): {e}")
                    });
                }
                // The outage's one event goes on the first position a failed write was about
                // (a write about no position, such as the holds' with an empty book, has none).
                if let (false, Some((symbol, position))) = (is_failure_event, on) {
                    if !self.failure_evented.swap(true, Ordering::Relaxed) {
                        manager.record(
                            symbol,
                            position,
                            EventKind::JournalFailed,
                            &e.to_string(),
                            None,
                        );
                    }
                }
            }
        }
    }
}

/// A remembered position's row, read for a write ([`BookJournal::kept_rows`]).
struct KeptRow<H> {
    kept: KeptEntry<H>,
    attributes: Option<String>,
    state_json: String,
}

/// Puts `rows` into `batch` as the book remembers them now (a tombstone row, or a closing one),
/// numbered with the last event's number; those the book no longer remembers as read are left
/// out (a change since, whose own write under the writer's lock is the newer one). Called with
/// the writer's lock held.
fn put_kept_rows<H: Clone + Send + Sync + 'static>(
    manager: &Manager<H>,
    rows: &[KeptRow<H>],
    batch: &mut Batch,
) {
    let seq = i64::try_from(manager.events().next_seq().saturating_sub(1)).unwrap_or(i64::MAX);
    for row in rows {
        let key = row.kept.key.as_str();
        let (table, at, listed, order_id, (own_end, doubtful)) =
            match manager.book().remembers(key, &row.kept.position) {
                Some(Remembrance::Tombstone {
                    removed_at,
                    listed,
                    own_end,
                    doubtful,
                }) => (
                    &mut batch.tombstones,
                    removed_at,
                    listing_json(listed),
                    None,
                    (own_end, doubtful),
                ),
                Some(Remembrance::Closing { closed_at }) => (
                    &mut batch.closing,
                    closed_at,
                    None,
                    row.kept.close_order_id.clone(),
                    (false, false),
                ),
                None => continue,
            };
        table.insert(
            key.to_owned(),
            RowOp::Upsert(TombWrite {
                removed_seq: seq,
                removed_at_us: at.0,
                state_json: row.state_json.clone(),
                attributes: row.attributes.clone(),
                listed,
                order_id,
                own_end,
                doubtful,
            }),
        );
    }
}

/// A remembered row read back at start as the book keeps it, its handle made by `make` (with no
/// lock held).
fn kept_entry<H>(
    row: RestoredTombstone,
    make: &mut impl FnMut(&str, &Extra, &SharedPosition) -> CoreResult<H>,
) -> CoreResult<KeptEntry<H>> {
    let position = share(row.state);
    let handle = make(&row.symbol, &row.extra, &position)?;
    Ok(KeptEntry {
        key: Key::parse(&row.symbol),
        position,
        handle,
        at: row.removed_at,
        listed: row.listed,
        close_order_id: row.order_id,
        own_end: row.own_end,
        doubtful: row.doubtful,
    })
}

/// The position a side flip replaced with a key's tracked one, as read with no lock held: its
/// position and its row ([`BookJournal::predecessor_row`]).
type PredecessorRead = Option<(SharedPosition, TombWrite)>;

/// Whether `kind` begins or ends a tracked life of its key (what can change the position a side
/// flip replaced with the key's tracked one).
fn life_event(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Removed
            | EventKind::Restored
            | EventKind::Imported
            | EventKind::Opened
            | EventKind::Added
            | EventKind::Closed
            | EventKind::CloseUnconfirmed
            | EventKind::Untracked
            | EventKind::Loaded
    )
}

/// Puts `key`'s predecessor row into `batch` as read (`read`), if the book still holds that
/// very predecessor (or none, as read): a row, or the deletion of the key's row. When the book
/// changed since it was read, nothing: the change's own event writes it. Called with the
/// writer's lock held.
fn put_predecessor_row<H: Clone + Send + Sync + 'static>(
    manager: &Manager<H>,
    writer: &Writer,
    key: &str,
    read: PredecessorRead,
    batch: &mut Batch,
) {
    let now = manager.book().predecessor_position(key);
    match (read, now) {
        (Some((read, row)), Some(now)) if Arc::ptr_eq(&read, &now) => {
            batch
                .predecessors
                .insert(key.to_owned(), RowOp::Upsert(row));
        }
        (None, None) if writer.has_predecessor_row(key) => {
            batch.predecessors.insert(key.to_owned(), RowOp::Delete);
        }
        _ => {}
    }
}

/// The rows of `held` (keys with when their holds started).
fn hold_rows(held: &[(Key, Timestamp)]) -> Vec<HoldWrite> {
    held.iter()
        .map(|(key, since)| HoldWrite {
            symbol: key.as_str().to_owned(),
            held_since_us: since.0,
        })
        .collect()
}

/// Deletes, in `batch`, the order rows of `keys` (all the writer has, when `None`) whose order
/// the book no longer has in flight or with an unknown outcome. Called with the writer's lock
/// held: an order sent meanwhile writes its row after this, replacing whatever is left.
fn settle_orders<H: Clone + Send + Sync + 'static>(
    manager: &Manager<H>,
    writer: &Writer,
    keys: Option<&[Key]>,
    batch: &mut Batch,
) {
    let rows: Vec<(String, String)> = match keys {
        None => writer.order_rows(),
        Some(keys) => keys
            .iter()
            .filter_map(|k| {
                writer
                    .order_row(k.as_str())
                    .map(|r| (k.as_str().to_owned(), r.to_owned()))
            })
            .collect(),
    };
    for (key, reference) in rows {
        if !manager.book().order_pending(&key) {
            batch.orders.insert(key, OrderOp::Delete(reference));
        }
    }
}

impl<H: Clone + Send + Sync + 'static> EventJournal for BookJournal<H> {
    fn order_sent(&self, key: &Key, order: &SentOrder) -> Result<(), String> {
        let Some(manager) = self.manager.upgrade() else {
            return Ok(());
        };
        // An order that adds exposure is not sent when its row cannot be written: its row must
        // then leave the queue ([`BookJournal::order_not_sent`]).
        let result = self.writer.lock().write_order(
            key.as_str(),
            OrderWrite::new(order),
            order.intent.adds_exposure(),
            manager.now().0,
        );
        let outcome = result.as_ref().map(|_| ()).map_err(ToString::to_string);
        self.tell_notice(&manager);
        self.report_for_the_book(&manager, result);
        outcome
    }

    fn is_fenced(&self) -> bool {
        self.status.is_fenced()
    }

    fn order_not_sent(&self, key: &Key, order: &SentOrder) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        let result =
            self.writer
                .lock()
                .withdraw_order(key.as_str(), &order.reference, manager.now().0);
        if let Some(result) = result {
            self.tell_notice(&manager);
            self.report_for_the_book(&manager, result);
        }
    }

    fn orders_settled(&self, keys: &[Key]) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        // Most calls settle nothing (no row for the key): no write at all then.
        self.write_for_the_book(&manager, |writer| {
            let mut batch = Batch::default();
            settle_orders(&manager, writer, Some(keys), &mut batch);
            (!batch.is_empty()).then_some(batch)
        });
    }

    fn filled(&self, key: &Key, position: &SharedPosition) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        let symbol = key.as_str();
        let state = position.lock().snapshot();
        let sighting = manager.book().sighting(symbol, position);
        let seq = i64::try_from(manager.events().next_seq().saturating_sub(1)).unwrap_or(i64::MAX);
        // The row without attributes keeps the ones it has; the order row goes in the same
        // write, so a restart never finds the order settled without what its fill left.
        self.write_for_the_book(&manager, |writer| {
            let mut batch = Batch::default();
            if manager.book().holds(symbol, position) {
                let row = PositionWrite::new(state, None, seq).sighting(sighting);
                batch
                    .positions
                    .insert(symbol.to_owned(), RowOp::Upsert(row));
            }
            settle_orders(
                &manager,
                writer,
                Some(std::slice::from_ref(key)),
                &mut batch,
            );
            (!batch.is_empty()).then_some(batch)
        });
    }

    fn closes_settled(&self, keys: &[Key]) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        // A confirmed close keeps its position as a tombstone (an own end, or a plain one when
        // only an empty answer confirmed an unnamed close): its row goes with the deletion, in
        // one transaction.
        let rows = self.kept_rows(&manager, keys);
        self.write_for_the_book(&manager, |writer| {
            let mut batch = Batch::default();
            for key in keys {
                let key = key.as_str();
                if writer.has_closing_row(key) && manager.book().awaiting_close(key, None).is_none()
                {
                    batch.closing.insert(key.to_owned(), RowOp::Delete);
                }
            }
            put_kept_rows(&manager, &rows, &mut batch);
            Some(batch)
        });
        drop(rows);
    }

    fn holds_changed(&self) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        self.write_for_the_book(&manager, |_| {
            Some(Batch {
                holds: Some(hold_rows(&manager.reopen_holds())),
                ..Batch::default()
            })
        });
    }

    fn remembered(&self, keys: &[Key]) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        let rows = self.kept_rows(&manager, keys);
        if rows.is_empty() {
            return;
        }
        self.write_for_the_book(&manager, |_| {
            let mut batch = Batch::default();
            put_kept_rows(&manager, &rows, &mut batch);
            Some(batch)
        });
        drop(rows);
    }

    fn record(&self, event: &Event, position: &SharedPosition) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        let key = event.symbol.as_str();
        let in_book = manager
            .book()
            .get(key)
            .filter(|(p, _)| Arc::ptr_eq(p, position))
            .map(|(_, h)| h);
        let handle = match &in_book {
            Some(h) => Some(h.clone()),
            None => self.handles.lock().get(key).cloned(),
        };
        let attributes = attributes_json(handle.as_ref().and_then(|h| (self.extra)(h)));
        let state = position.lock().snapshot();
        let seq = i64::try_from(event.seq).unwrap_or(i64::MAX);
        let mut batch = Batch::default();
        batch.events.push(EventWrite::new(
            event,
            attributes.clone(),
            event.order_id.clone(),
        ));
        // A life event may have changed the position a side flip replaced with the key's
        // tracked one: read it (and its attributes) now, with no lock held.
        let predecessor = life_event(event.kind).then(|| self.predecessor_row(&manager, key, seq));
        // A tombstone or closing row: when, what the exchange last listed (a tombstone), the
        // close's order id (a close), and a tombstone's `(own_end, doubtful)`.
        let kept = |at: i64,
                    listed: Option<String>,
                    order_id: Option<String>,
                    (own_end, doubtful): (bool, bool)| {
            RowOp::Upsert(TombWrite {
                removed_seq: seq,
                removed_at_us: at,
                state_json: serde_json::to_string(&event.position).unwrap_or_default(),
                attributes: attributes.clone(),
                listed,
                order_id,
                own_end,
                doubtful,
            })
        };
        // Whether the event may start or end a close awaiting confirmation of its key.
        let closing = match event.kind {
            EventKind::Removed => {
                let (listed, doubtful) = match manager.book().remembers(key, position) {
                    Some(Remembrance::Tombstone {
                        listed, doubtful, ..
                    }) => (listed, doubtful),
                    _ => (None, false),
                };
                batch.tombstones.insert(
                    key.to_owned(),
                    kept(event.time.0, listing_json(listed), None, (false, doubtful)),
                );
                false
            }
            // At start, a restored position's key has no close awaiting confirmation left.
            EventKind::Loaded => {
                batch.tombstones.insert(key.to_owned(), RowOp::Delete);
                false
            }
            EventKind::Restored | EventKind::Opened | EventKind::Imported | EventKind::Added => {
                batch.tombstones.insert(key.to_owned(), RowOp::Delete);
                true
            }
            EventKind::Closed | EventKind::CloseUnconfirmed => {
                // A close settled by a list keeps the position as a tombstone.
                if let Some(Remembrance::Tombstone {
                    listed,
                    own_end,
                    doubtful,
                    ..
                }) = manager.book().remembers(key, position)
                {
                    batch.tombstones.insert(
                        key.to_owned(),
                        kept(
                            event.time.0,
                            listing_json(listed),
                            None,
                            (own_end, doubtful),
                        ),
                    );
                }
                true
            }
            _ => false,
        };
        let (result, present, absent) = {
            let mut writer = self.writer.lock();
            if closing {
                // As the book is now: awaiting confirmation with this position, or with none.
                let book = manager.book();
                if let Some(closed_at) = book.awaiting_close(key, Some(position)) {
                    let order_id = book.close_order_id(key, position);
                    batch.closing.insert(
                        key.to_owned(),
                        kept(closed_at.0, None, order_id, (false, false)),
                    );
                } else if writer.has_closing_row(key) && book.awaiting_close(key, None).is_none() {
                    batch.closing.insert(key.to_owned(), RowOp::Delete);
                }
            }
            if let Some(read) = predecessor {
                put_predecessor_row(&manager, &writer, key, read, &mut batch);
            }
            let present = manager.book().holds(key, position);
            let absent = !present && !manager.book().contains(key);
            if present {
                let row = PositionWrite::new(state, attributes, seq)
                    .sighting(manager.book().sighting(key, position));
                batch.positions.insert(key.to_owned(), RowOp::Upsert(row));
            } else if absent {
                batch.positions.insert(key.to_owned(), RowOp::Delete);
            }
            (writer.write(batch, event.time.0), present, absent)
        };
        let old = {
            let mut handles = self.handles.lock();
            if present {
                in_book.and_then(|h| handles.insert(key.to_owned(), h))
            } else if absent {
                handles.remove(key)
            } else {
                None
            }
        };
        drop(old);
        drop(handle);
        self.tell_notice(&manager);
        self.report(
            &manager,
            result,
            Some((key, position)),
            event.kind == EventKind::JournalFailed,
        );
    }

    fn checkpoint(&self) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        let entries = manager.book().entries();
        let mut rows: Vec<(String, SharedPosition, PositionState, Option<String>)> =
            Vec::with_capacity(entries.len());
        for (symbol, position, handle) in &entries {
            let attributes = attributes_json((self.extra)(handle));
            let state = position.lock().snapshot();
            rows.push((symbol.to_string(), position.clone(), state, attributes));
        }
        let seq = i64::try_from(manager.events().next_seq().saturating_sub(1)).unwrap_or(i64::MAX);
        let result = {
            let mut writer = self.writer.lock();
            let mut batch = Batch::default();
            for (symbol, position, state, attributes) in &rows {
                if !manager.book().holds(symbol, position) {
                    continue;
                }
                let write = PositionWrite::new(state.clone(), attributes.clone(), seq)
                    .sighting(manager.book().sighting(symbol, position));
                if writer.unchanged(symbol, row_hash(&write)) {
                    continue;
                }
                batch.positions.insert(symbol.clone(), RowOp::Upsert(write));
            }
            // Orders whose outcome a list resolved since their call ended.
            settle_orders(&manager, &writer, None, &mut batch);
            writer.write(batch, manager.now().0)
        };
        {
            let mut handles = self.handles.lock();
            let mut old = Vec::new();
            for (symbol, _, handle) in &entries {
                old.push(handles.insert(symbol.to_string(), handle.clone()));
            }
            drop(handles);
            drop(old);
        }
        drop(entries);
        self.tell_notice(&manager);
        let on = rows
            .first()
            .map(|(symbol, position, _, _)| (symbol.as_str(), position));
        self.report(&manager, result, on, false);
    }
}
