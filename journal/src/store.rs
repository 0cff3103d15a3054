//! The journal's writes and its start-up read, over any [`Sql`] connection.
//!
//! - [`claim`]: makes an account this writer's (a new fencing epoch: a writer that claimed it
//!   earlier can no longer write it) and reads back its book, tombstones, closes awaiting
//!   confirmation, re-open holds, orders in flight and newest events, all in one transaction;
//! - [`write`](fn@write): one [`Batch`] (events, the rows of the book they change, the re-open
//!   holds, the orders in flight) in one transaction, only while this writer's epoch is the account's. Events are inserted once:
//!   writing the same event again (a retry after a commit whose answer was lost) changes nothing.

use std::collections::BTreeMap;

use position_manager_core::book::{Sighting, UnlistedFills};
use position_manager_core::clock::Timestamp;
use position_manager_core::events::Event;
use position_manager_core::manager::in_flight::{SentIntent, SentOrder};
use position_manager_core::persist::{validate_listing, validate_unlisted, Extra, SavedListing};
use position_manager_core::position::PositionState;
use position_manager_core::reconcile::Fingerprint;

use crate::sql::{bounded_write, transaction, Sql, Val};
use crate::{iso, JournalError, JournalResult};

/// One event as a row of `pmrs_events`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventWrite {
    /// The event's number in its account.
    pub seq: i64,
    /// When it happened (naive local microseconds).
    pub time_us: i64,
    /// The book key.
    pub symbol: String,
    /// Its kind (`closed`, `removed`, ...).
    pub kind: String,
    /// Its reason.
    pub reason: String,
    /// Realised P/L (closes).
    pub pnl: Option<f64>,
    /// The position's side then.
    pub side: String,
    /// Its entry price then.
    pub entry_price: Option<f64>,
    /// Its size then.
    pub amount: Option<f64>,
    /// Its leverage then.
    pub leverage: Option<f64>,
    /// The client order id behind it, if any.
    pub order_id: Option<String>,
    /// The whole event as JSON.
    pub event: String,
    /// The bot's attributes of the position then (a JSON object), when known.
    pub attributes: Option<String>,
}

impl EventWrite {
    /// The row of `event`; `order_id` when the event carries one.
    pub fn new(event: &Event, attributes: Option<String>, order_id: Option<String>) -> Self {
        let p = &event.position;
        EventWrite {
            seq: i64::try_from(event.seq).unwrap_or(i64::MAX),
            time_us: event.time.0,
            symbol: event.symbol.clone(),
            kind: event.kind.name().to_owned(),
            reason: event.reason.clone(),
            pnl: event.pnl,
            side: p.side.clone(),
            entry_price: Some(p.entry_price),
            amount: Some(p.amount),
            leverage: Some(p.leverage),
            order_id,
            event: serde_json::to_string(event).unwrap_or_default(),
            attributes,
        }
    }
}

/// One tracked position as a row of `pmrs_positions`.
#[derive(Clone, Debug, PartialEq)]
pub struct PositionWrite {
    /// Place in the book's order (the event number that put it there).
    pub book_order: i64,
    /// Its fields.
    pub state: PositionState,
    /// Its fields as JSON.
    pub state_json: String,
    /// The bot's attributes (a JSON object); `None` keeps what the row has.
    pub attributes: Option<String>,
    /// What the exchange last listed for it, as JSON (`None`: no list has shown its entry yet).
    pub listed: Option<String>,
    /// What the manager's own orders did to it that no list has shown yet, as JSON (`None`:
    /// nothing).
    pub unlisted_fills: Option<String>,
    /// The last event number written with it.
    pub updated_seq: i64,
}

impl PositionWrite {
    /// The row of `state` with `attributes`.
    pub fn new(state: PositionState, attributes: Option<String>, seq: i64) -> Self {
        PositionWrite {
            book_order: seq,
            state_json: serde_json::to_string(&state).unwrap_or_default(),
            state,
            attributes,
            listed: None,
            unlisted_fills: None,
            updated_seq: seq,
        }
    }

    /// The same row with what the exchange has and has not shown of the position.
    pub fn sighting(self, sighting: Sighting) -> Self {
        PositionWrite {
            listed: listing_json(sighting.listed),
            unlisted_fills: (!sighting.unlisted.is_empty())
                .then(|| serde_json::to_string(&sighting.unlisted).ok())
                .flatten(),
            ..self
        }
    }
}

/// One tombstone as a row of `pmrs_tombstones`, or one close awaiting confirmation as a row of
/// `pmrs_closing` (its `closed_seq` and `closed_at_us`).
#[derive(Clone, Debug, PartialEq)]
pub struct TombWrite {
    /// The `removed` event's number.
    pub removed_seq: i64,
    /// When it was removed.
    pub removed_at_us: i64,
    /// Its last state as JSON.
    pub state_json: String,
    /// The bot's attributes then.
    pub attributes: Option<String>,
    /// What the exchange last listed for it, as JSON (tombstones; a close has none).
    pub listed: Option<String>,
    /// The close order's client id (closes whose client takes them; a tombstone has none).
    pub order_id: Option<String>,
    /// A tombstone of a position the manager's own order ended
    /// ([`position_manager_core::reconcile::OwnEnd`]; a close has none).
    pub own_end: bool,
    /// A tombstone whose end failed reads or lagging lists also show
    /// ([`position_manager_core::reconcile::TombView::doubtful`]; a close has none).
    pub doubtful: bool,
}

/// One re-open hold as a row of `pmrs_holds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldWrite {
    /// The held book key.
    pub symbol: String,
    /// When its hold started (naive local microseconds).
    pub held_since_us: i64,
}

/// One order in flight as a row of `pmrs_orders` (the manager's [`SentOrder`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderWrite {
    /// The order's identity ([`SentOrder::reference`]): a delete names it, so the delete of an
    /// older order never removes a newer one's row.
    pub reference: String,
    /// `open`, `close`, `scale_in` or `scale_out`.
    pub kind: String,
    /// The client order id it carried, if any.
    pub client_order_id: Option<String>,
    /// When it was sent (naive local microseconds).
    pub sent_at_us: i64,
    /// What it was meant to do, as JSON ([`SentIntent`]).
    pub intent_json: String,
}

impl OrderWrite {
    /// The row of `order`.
    pub fn new(order: &SentOrder) -> Self {
        OrderWrite {
            reference: order.reference.clone(),
            kind: order.intent.kind().to_owned(),
            client_order_id: order.intent.client_order_id().map(str::to_owned),
            sent_at_us: order.sent_at.0,
            intent_json: serde_json::to_string(&order.intent).unwrap_or_default(),
        }
    }
}

/// A change of one key's order row.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderOp {
    /// Insert it, replacing the key's row.
    Upsert(OrderWrite),
    /// Delete the key's row if it is this order's (by [`OrderWrite::reference`]).
    Delete(String),
}

/// A change of one key's row.
#[derive(Clone, Debug, PartialEq)]
pub enum RowOp<T> {
    /// Insert or update it.
    Upsert(T),
    /// Delete it.
    Delete,
}

/// Everything written in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Events, in order.
    pub events: Vec<EventWrite>,
    /// The book's rows by key (the last change of a key wins).
    pub positions: BTreeMap<String, RowOp<PositionWrite>>,
    /// Tombstones by key.
    pub tombstones: BTreeMap<String, RowOp<TombWrite>>,
    /// Closes awaiting confirmation by key.
    pub closing: BTreeMap<String, RowOp<TombWrite>>,
    /// The positions side flips replaced, by the key of the tracked position that replaced
    /// each (schema version 9).
    pub predecessors: BTreeMap<String, RowOp<TombWrite>>,
    /// The account's re-open holds, replacing every row it has (`None`: unchanged).
    pub holds: Option<Vec<HoldWrite>>,
    /// Orders in flight by key.
    pub orders: BTreeMap<String, OrderOp>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.positions.is_empty()
            && self.tombstones.is_empty()
            && self.closing.is_empty()
            && self.predecessors.is_empty()
            && self.holds.is_none()
            && self.orders.is_empty()
    }

    /// Appends `later` (its row changes replace this batch's for the same keys).
    pub fn merge(&mut self, later: Batch) {
        self.events.extend(later.events);
        self.positions.extend(later.positions);
        self.tombstones.extend(later.tombstones);
        self.closing.extend(later.closing);
        self.predecessors.extend(later.predecessors);
        if later.holds.is_some() {
            self.holds = later.holds;
        }
        for (symbol, op) in later.orders {
            // The delete of an older order must not drop a newer order's queued row (the
            // newer row replaced the older one anyway).
            let superseded = matches!(
                (self.orders.get(&symbol), &op),
                (Some(OrderOp::Upsert(newer)), OrderOp::Delete(reference))
                    if newer.reference != *reference
            );
            if !superseded {
                self.orders.insert(symbol, op);
            }
        }
    }

    fn max_seq(&self) -> i64 {
        self.events.iter().map(|e| e.seq).max().unwrap_or(0)
    }
}

/// A position read back at start.
#[derive(Debug)]
pub struct RestoredPosition {
    /// Its book key.
    pub symbol: String,
    /// Its fields.
    pub state: PositionState,
    /// The bot's attributes.
    pub extra: Extra,
    /// What the exchange has and has not shown of it (`listed`: rows written from version 5
    /// on; `unlisted`: from version 7 on).
    pub sighting: Sighting,
}

/// A tombstone, or a close awaiting confirmation, read back at start.
#[derive(Debug)]
pub struct RestoredTombstone {
    /// Its book key.
    pub symbol: String,
    /// Its last state.
    pub state: PositionState,
    /// The bot's attributes.
    pub extra: Extra,
    /// When it was removed (closed, for a close awaiting confirmation).
    pub removed_at: Timestamp,
    /// What the exchange last listed for it (tombstones written from version 4 on).
    pub listed: Option<Fingerprint>,
    /// The close order's client id (closes written from version 7 on).
    pub order_id: Option<String>,
    /// The manager's own order ended it (tombstones written from version 8 on).
    pub own_end: bool,
    /// What ended it failed reads or lagging lists also show (tombstones written from version
    /// 10 on).
    pub doubtful: bool,
}

/// A re-open hold read back at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredHold {
    /// The held book key.
    pub symbol: String,
    /// When its hold started.
    pub since: Timestamp,
}

/// An order in flight read back at start.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredOrder {
    /// Its book key.
    pub symbol: String,
    /// The order.
    pub order: SentOrder,
}

/// What an account holds, read when a writer claims it.
#[derive(Debug, Default)]
pub struct Restored {
    /// This writer's fencing epoch.
    pub epoch: i64,
    /// The highest event number the account has.
    pub last_seq: u64,
    /// The book, in order.
    pub positions: Vec<RestoredPosition>,
    /// The tombstones, oldest removal first.
    pub tombstones: Vec<RestoredTombstone>,
    /// The closes awaiting confirmation, oldest first.
    pub closing: Vec<RestoredTombstone>,
    /// The positions side flips replaced, by the key of the tracked position that replaced
    /// each (none before version 9).
    pub predecessors: Vec<RestoredTombstone>,
    /// The re-open holds, by key (over or not: the manager decides with its setting).
    pub holds: Vec<RestoredHold>,
    /// The orders in flight, oldest first.
    pub orders: Vec<RestoredOrder>,
    /// The newest events (at most the history asked for), oldest first.
    pub events: Vec<Event>,
    /// Rows that could not be read back (a later version's data, a damaged value): what and
    /// why. They stay in the journal.
    pub unreadable: Vec<String>,
}

fn parse_extra(text: Option<&str>) -> Result<Extra, String> {
    match text {
        None | Some("") => Ok(Extra::new()),
        Some(t) => serde_json::from_str::<Extra>(t).map_err(|e| e.to_string()),
    }
}

fn parse_state(text: &str) -> Result<PositionState, String> {
    let state: PositionState = serde_json::from_str(text).map_err(|e| e.to_string())?;
    position_manager_core::persist::validate_state(&state)?;
    Ok(state)
}

/// The tables of positions kept out of the book, restorable with their state and attributes.
#[derive(Clone, Copy, Debug)]
enum Kept {
    /// `pmrs_tombstones`: removed as closed outside the manager.
    Tombstones,
    /// `pmrs_closing`: closed by the manager, awaiting a list to confirm it.
    Closing,
    /// `pmrs_predecessors`: replaced by a side flip, kept with the position that replaced it.
    Predecessors,
}

impl Kept {
    /// The table, its event-number column and its time column.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kept::Tombstones => ("pmrs_tombstones", "removed_seq", "removed_at_us"),
            Kept::Closing => ("pmrs_closing", "closed_seq", "closed_at_us"),
            Kept::Predecessors => ("pmrs_predecessors", "removed_seq", "removed_at_us"),
        }
    }

    /// Its columns beyond the state: a tombstone's `listed` (what the exchange last listed,
    /// version 4), `own_end` (the manager's own order ended it, version 8) and `doubtful` (what
    /// ended it failed reads or lagging lists also show, version 10), a close's
    /// `order_id` (its order's client id, version 7), a predecessor's `listed` (version 9).
    fn extra_columns(self) -> &'static [&'static str] {
        match self {
            Kept::Tombstones => &["listed", "own_end", "doubtful"],
            Kept::Closing => &["order_id"],
            Kept::Predecessors => &["listed"],
        }
    }

    /// A row's values of [`Kept::extra_columns`].
    fn extra_values(self, row: &TombWrite) -> Vec<Val> {
        match self {
            Kept::Tombstones => vec![
                Val::Text(row.listed.clone()),
                Val::int(i64::from(row.own_end)),
                Val::int(i64::from(row.doubtful)),
            ],
            Kept::Closing => vec![Val::Text(row.order_id.clone())],
            Kept::Predecessors => vec![Val::Text(row.listed.clone())],
        }
    }

    /// What a row is, for messages.
    fn what(self) -> &'static str {
        match self {
            Kept::Tombstones => "tombstone",
            Kept::Closing => "close awaiting confirmation",
            Kept::Predecessors => "position a side flip replaced",
        }
    }
}

/// Reads a row's `symbol, state, attributes` columns: the symbol, and the position's fields and
/// attributes or why they cannot be read.
fn read_position(
    columns: &mut impl Iterator<Item = Val>,
) -> (String, Result<(PositionState, Extra), String>) {
    let symbol = columns.next().map(Val::into_text).unwrap_or_default();
    let state = columns.next().map(Val::into_text).unwrap_or_default();
    let attributes = columns.next();
    let read = parse_state(&state).and_then(|state| {
        Ok((
            state,
            parse_extra(attributes.as_ref().and_then(Val::as_text))?,
        ))
    });
    (symbol, read)
}

/// A `listed` column's value: only a hint for recognising a position, so one that cannot be
/// read is left out.
fn read_listing(column: Option<Val>) -> Option<Fingerprint> {
    column
        .as_ref()
        .and_then(Val::as_text)
        .and_then(|t| serde_json::from_str::<SavedListing>(t).ok())
        .filter(|l| validate_listing(l).is_ok())
        .and_then(|l| l.fingerprint())
}

/// What the exchange last listed for a position, as a `listed` column holds it.
pub fn listing_json(listed: Option<Fingerprint>) -> Option<String> {
    listed.and_then(|f| serde_json::to_string(&SavedListing::of(f)).ok())
}

/// An `unlisted_fills` column's text as the manager takes it back: nothing when absent or when
/// it cannot be read (the position is then weighed as one the lists have shown, as by a build
/// before version 7).
pub fn parse_unlisted(text: Option<&str>) -> UnlistedFills {
    text.and_then(|t| serde_json::from_str::<UnlistedFills>(t).ok())
        .filter(|u| validate_unlisted(u).is_ok())
        .unwrap_or_default()
}

fn read_unlisted(column: Option<Val>) -> UnlistedFills {
    parse_unlisted(column.as_ref().and_then(Val::as_text))
}

/// A flag column: set when an integer other than 0.
fn read_flag(column: Option<Val>) -> bool {
    column.and_then(|v| v.as_int()).is_some_and(|v| v != 0)
}

/// The rows of `table` of `account`, oldest first; unreadable ones are named in `unreadable`.
fn read_kept(
    db: &mut dyn Sql,
    table: Kept,
    account: &str,
    unreadable: &mut Vec<String>,
) -> JournalResult<Vec<RestoredTombstone>> {
    let (name, seq, at) = table.columns();
    let more = table.extra_columns().join(", ");
    let mut out = Vec::new();
    for row in db.query(
        &format!(
            "SELECT symbol, state, attributes, {at}, {more} FROM {name} WHERE account = ?1 \
             ORDER BY {seq}"
        ),
        &[Val::text(account)],
    )? {
        let mut it = row.into_iter();
        let (symbol, read) = read_position(&mut it);
        let removed_at = it.next().and_then(|v| v.as_int()).unwrap_or(0);
        let (listed, order_id, own_end, doubtful) = match table {
            // A flag that is not an integer is taken as unset: a plain tombstone, as before
            // versions 8 and 10 (a row with both set is taken as the manager's own end).
            Kept::Tombstones => {
                let listed = read_listing(it.next());
                let own_end = read_flag(it.next());
                (listed, None, own_end, read_flag(it.next()))
            }
            // An id that is not text (or empty) is left out: the list then decides, as before
            // version 7.
            Kept::Closing => (
                None,
                it.next()
                    .as_ref()
                    .and_then(Val::as_text)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
                false,
                false,
            ),
            Kept::Predecessors => (read_listing(it.next()), None, false, false),
        };
        match read {
            Ok((state, extra)) => out.push(RestoredTombstone {
                symbol,
                state,
                extra,
                removed_at: Timestamp(removed_at),
                listed,
                order_id,
                own_end,
                doubtful,
            }),
            Err(e) => unreadable.push(format!("{} {symbol:?}: {e}", table.what())),
        }
    }
    Ok(out)
}

/// Applies the row changes `rows` to `table` for the account `acct`.
fn write_kept(
    db: &mut dyn Sql,
    table: Kept,
    acct: &Val,
    rows: &BTreeMap<String, RowOp<TombWrite>>,
) -> JournalResult<()> {
    let (name, seq, at) = table.columns();
    for (symbol, op) in rows {
        match op {
            RowOp::Upsert(t) => {
                let mut values = vec![
                    acct.clone(),
                    Val::text(symbol.as_str()),
                    Val::int(t.removed_seq),
                    Val::int(t.removed_at_us),
                    Val::text(t.state_json.as_str()),
                    Val::Text(t.attributes.clone()),
                ];
                values.extend(table.extra_values(t));
                let more = table.extra_columns();
                let placeholders: Vec<String> =
                    (1..=values.len()).map(|i| format!("?{i}")).collect();
                let updates: Vec<String> =
                    more.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                db.execute(
                    &format!(
                        "INSERT INTO {name} (account, symbol, {seq}, {at}, state, attributes, \
                         {}) VALUES ({}) \
                         ON CONFLICT (account, symbol) DO UPDATE \
                         SET {seq} = excluded.{seq}, {at} = excluded.{at}, \
                         state = excluded.state, attributes = excluded.attributes, {}",
                        more.join(", "),
                        placeholders.join(", "),
                        updates.join(", ")
                    ),
                    &values,
                )?;
            }
            RowOp::Delete => {
                db.execute(
                    &format!("DELETE FROM {name} WHERE account = ?1 AND symbol = ?2"),
                    &[acct.clone(), Val::text(symbol.as_str())],
                )?;
            }
        }
    }
    Ok(())
}

/// Claims `account` for a writer named `writer` and reads it back (see the module docs).
pub fn claim(
    db: &mut dyn Sql,
    account: &str,
    writer: &str,
    history: usize,
    now_us: i64,
) -> JournalResult<Restored> {
    transaction(db, true, |db| {
        let now = Val::text(iso(now_us));
        db.execute(
            "INSERT INTO pmrs_accounts (account, created_at, updated_at) VALUES (?1, ?2, ?2) \
             ON CONFLICT (account) DO NOTHING",
            &[Val::text(account), now.clone()],
        )?;
        let rows = db.query(
            "UPDATE pmrs_accounts SET writer_epoch = writer_epoch + 1, writer = ?1, \
             updated_at = ?2 WHERE account = ?3 RETURNING writer_epoch, last_seq",
            &[Val::text(writer), now, Val::text(account)],
        )?;
        let row = rows.first().ok_or_else(|| {
            JournalError::Database(format!("account {account:?} vanished while claimed"))
        })?;
        let mut out = Restored {
            epoch: row.first().and_then(Val::as_int).unwrap_or(0),
            last_seq: row.get(1).and_then(Val::as_int).unwrap_or(0).max(0) as u64,
            ..Restored::default()
        };
        let max_seq = db.query(
            "SELECT MAX(seq) FROM pmrs_events WHERE account = ?1",
            &[Val::text(account)],
        )?;
        if let Some(m) = max_seq
            .first()
            .and_then(|r| r.first())
            .and_then(Val::as_int)
        {
            out.last_seq = out.last_seq.max(m.max(0) as u64);
        }
        for row in db.query(
            "SELECT symbol, state, attributes, listed, unlisted_fills FROM pmrs_positions \
             WHERE account = ?1 ORDER BY book_order, symbol",
            &[Val::text(account)],
        )? {
            let mut it = row.into_iter();
            let (symbol, read) = read_position(&mut it);
            let sighting = Sighting {
                listed: read_listing(it.next()),
                unlisted: read_unlisted(it.next()),
            };
            match read {
                Ok((state, extra)) => out.positions.push(RestoredPosition {
                    symbol,
                    state,
                    extra,
                    sighting,
                }),
                Err(e) => out.unreadable.push(format!("position {symbol:?}: {e}")),
            }
        }
        out.tombstones = read_kept(db, Kept::Tombstones, account, &mut out.unreadable)?;
        out.closing = read_kept(db, Kept::Closing, account, &mut out.unreadable)?;
        out.predecessors = read_kept(db, Kept::Predecessors, account, &mut out.unreadable)?;
        for row in db.query(
            "SELECT symbol, held_since_us FROM pmrs_holds WHERE account = ?1 ORDER BY symbol",
            &[Val::text(account)],
        )? {
            let mut it = row.into_iter();
            let symbol = it.next().map(Val::into_text).unwrap_or_default();
            let since = it.next().and_then(|v| v.as_int()).unwrap_or(0);
            out.holds.push(RestoredHold {
                symbol,
                since: Timestamp(since),
            });
        }
        out.orders = read_orders(db, account, &mut out.unreadable)?;
        if history > 0 {
            let limit = i64::try_from(history).unwrap_or(i64::MAX);
            let mut events = Vec::new();
            for row in db.query(
                "SELECT seq, event FROM pmrs_events WHERE account = ?1 ORDER BY seq DESC LIMIT ?2",
                &[Val::text(account), Val::int(limit)],
            )? {
                let seq = row.first().and_then(Val::as_int).unwrap_or(0);
                let text = row.get(1).and_then(Val::as_text).unwrap_or("");
                match serde_json::from_str::<Event>(text) {
                    Ok(e) => events.push(e),
                    Err(e) => out.unreadable.push(format!("event {seq}: {e}")),
                }
            }
            events.reverse();
            out.events = events;
        }
        Ok(out)
    })
}

/// The account's orders in flight, oldest first; a row whose intent cannot be read back, or
/// holds numbers no order could have, goes to `unreadable` (and stays in the journal).
fn read_orders(
    db: &mut dyn Sql,
    account: &str,
    unreadable: &mut Vec<String>,
) -> JournalResult<Vec<RestoredOrder>> {
    let mut out = Vec::new();
    for row in db.query(
        "SELECT symbol, reference, sent_at_us, intent FROM pmrs_orders WHERE account = ?1 \
         ORDER BY sent_at_us, symbol",
        &[Val::text(account)],
    )? {
        let mut it = row.into_iter();
        let symbol = it.next().map(Val::into_text).unwrap_or_default();
        let reference = it.next().map(Val::into_text).unwrap_or_default();
        let sent_at = it.next().and_then(|v| v.as_int()).unwrap_or(0);
        let text = it.next().map(Val::into_text).unwrap_or_default();
        let intent = serde_json::from_str::<SentIntent>(&text)
            .map_err(|e| e.to_string())
            .and_then(|intent| intent.validate().map(|()| intent));
        match intent {
            Ok(intent) => out.push(RestoredOrder {
                symbol,
                order: SentOrder {
                    reference,
                    sent_at: Timestamp(sent_at),
                    intent,
                },
            }),
            Err(e) => unreadable.push(format!("order in flight {symbol:?}: {e}")),
        }
    }
    Ok(out)
}

/// Applies the order row changes `rows` for the account `acct`.
fn write_orders(
    db: &mut dyn Sql,
    acct: &Val,
    rows: &BTreeMap<String, OrderOp>,
) -> JournalResult<()> {
    for (symbol, op) in rows {
        match op {
            OrderOp::Upsert(o) => {
                db.execute(
                    "INSERT INTO pmrs_orders (account, symbol, reference, kind, client_order_id, \
                     sent_at_us, sent_at, intent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (account, symbol) DO UPDATE SET reference = excluded.reference, \
                     kind = excluded.kind, client_order_id = excluded.client_order_id, \
                     sent_at_us = excluded.sent_at_us, sent_at = excluded.sent_at, \
                     intent = excluded.intent",
                    &[
                        acct.clone(),
                        Val::text(symbol.as_str()),
                        Val::text(o.reference.as_str()),
                        Val::text(o.kind.as_str()),
                        Val::Text(o.client_order_id.clone()),
                        Val::int(o.sent_at_us),
                        Val::text(iso(o.sent_at_us)),
                        Val::text(o.intent_json.as_str()),
                    ],
                )?;
            }
            OrderOp::Delete(reference) => {
                db.execute(
                    "DELETE FROM pmrs_orders WHERE account = ?1 AND symbol = ?2 AND reference = ?3",
                    &[
                        acct.clone(),
                        Val::text(symbol.as_str()),
                        Val::text(reference.as_str()),
                    ],
                )?;
            }
        }
    }
    Ok(())
}

fn opt_real(v: f64) -> Val {
    // NaN is no number to a query (SQLite stores it as NULL anyway).
    Val::Real(v.is_finite().then_some(v))
}

/// Rows per multi-row upsert of the book (one round trip each; 16 parameters a row stays far
/// below both databases' parameter limits).
const UPSERT_ROWS: usize = 200;

/// Inserts or updates the book rows of `rows` in one statement.
fn upsert_positions(
    db: &mut dyn Sql,
    acct: &Val,
    now: &Val,
    rows: &[(&String, &PositionWrite)],
) -> JournalResult<()> {
    const COLUMNS: usize = 16;
    let mut values = Vec::with_capacity(rows.len());
    let mut params = Vec::with_capacity(rows.len() * COLUMNS);
    for (i, (symbol, p)) in rows.iter().enumerate() {
        let base = i * COLUMNS;
        let marks: Vec<String> = (1..=COLUMNS).map(|c| format!("?{}", base + c)).collect();
        values.push(format!("({})", marks.join(", ")));
        let s = &p.state;
        params.extend([
            acct.clone(),
            Val::text(symbol.as_str()),
            Val::int(p.book_order),
            Val::text(s.side.as_str()),
            opt_real(s.entry_price),
            opt_real(s.amount),
            opt_real(s.leverage),
            opt_real(s.stop_loss),
            Val::Real(s.take_profit.filter(|v| v.is_finite())),
            Val::int(s.entry_time.0),
            Val::text(p.state_json.as_str()),
            Val::Text(p.attributes.clone()),
            Val::int(p.updated_seq),
            now.clone(),
            Val::Text(p.listed.clone()),
            Val::Text(p.unlisted_fills.clone()),
        ]);
    }
    db.execute(
        &format!(
            "INSERT INTO pmrs_positions (account, symbol, book_order, side, entry_price, amount, \
             leverage, stop_loss, take_profit, entry_time_us, state, attributes, updated_seq, \
             updated_at, listed, unlisted_fills) VALUES {} \
             ON CONFLICT (account, symbol) DO UPDATE SET side = excluded.side, \
             entry_price = excluded.entry_price, amount = excluded.amount, \
             leverage = excluded.leverage, stop_loss = excluded.stop_loss, \
             take_profit = excluded.take_profit, entry_time_us = excluded.entry_time_us, \
             state = excluded.state, \
             attributes = COALESCE(excluded.attributes, pmrs_positions.attributes), \
             updated_seq = excluded.updated_seq, updated_at = excluded.updated_at, \
             listed = excluded.listed, unlisted_fills = excluded.unlisted_fills",
            values.join(", ")
        ),
        &params,
    )?;
    Ok(())
}

/// Writes `batch` for `account` in one transaction, if `epoch` is still the account's.
pub fn write(
    db: &mut dyn Sql,
    account: &str,
    epoch: i64,
    batch: &Batch,
    now_us: i64,
) -> JournalResult<()> {
    let greatest = db.dialect().greatest();
    bounded_write(db, |db| {
        let now = Val::text(iso(now_us));
        let acct = Val::text(account);
        let n = db.execute(
            &format!(
                "UPDATE pmrs_accounts SET last_seq = {greatest}(last_seq, ?1), updated_at = ?2 \
                 WHERE account = ?3 AND writer_epoch = ?4"
            ),
            &[
                Val::int(batch.max_seq()),
                now.clone(),
                acct.clone(),
                Val::int(epoch),
            ],
        )?;
        if n == 0 {
            return Err(JournalError::Fenced(format!(
                "account {account:?} was claimed by another manager (a newer writer); this \
                 manager no longer writes it"
            )));
        }
        for e in &batch.events {
            db.execute(
                "INSERT INTO pmrs_events (account, seq, time_us, time, symbol, kind, reason, pnl, \
                 side, entry_price, amount, leverage, order_id, event, attributes, written_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
                 ON CONFLICT (account, seq) DO NOTHING",
                &[
                    acct.clone(),
                    Val::int(e.seq),
                    Val::int(e.time_us),
                    Val::text(iso(e.time_us)),
                    Val::text(e.symbol.as_str()),
                    Val::text(e.kind.as_str()),
                    Val::text(e.reason.as_str()),
                    Val::Real(e.pnl.filter(|v| v.is_finite())),
                    Val::text(e.side.as_str()),
                    Val::Real(e.entry_price.filter(|v| v.is_finite())),
                    Val::Real(e.amount.filter(|v| v.is_finite())),
                    Val::Real(e.leverage.filter(|v| v.is_finite())),
                    Val::Text(e.order_id.clone()),
                    Val::text(e.event.as_str()),
                    Val::Text(e.attributes.clone()),
                    now.clone(),
                ],
            )?;
        }
        let upserts: Vec<(&String, &PositionWrite)> = batch
            .positions
            .iter()
            .filter_map(|(symbol, op)| match op {
                RowOp::Upsert(p) => Some((symbol, p)),
                RowOp::Delete => None,
            })
            .collect();
        for chunk in upserts.chunks(UPSERT_ROWS) {
            upsert_positions(db, &acct, &now, chunk)?;
        }
        for (symbol, op) in &batch.positions {
            if let RowOp::Delete = op {
                db.execute(
                    "DELETE FROM pmrs_positions WHERE account = ?1 AND symbol = ?2",
                    &[acct.clone(), Val::text(symbol.as_str())],
                )?;
            }
        }
        write_kept(db, Kept::Tombstones, &acct, &batch.tombstones)?;
        write_kept(db, Kept::Closing, &acct, &batch.closing)?;
        write_kept(db, Kept::Predecessors, &acct, &batch.predecessors)?;
        write_orders(db, &acct, &batch.orders)?;
        if let Some(holds) = &batch.holds {
            db.execute(
                "DELETE FROM pmrs_holds WHERE account = ?1",
                std::slice::from_ref(&acct),
            )?;
            for h in holds {
                db.execute(
                    "INSERT INTO pmrs_holds (account, symbol, held_since_us) VALUES (?1, ?2, ?3)",
                    &[
                        acct.clone(),
                        Val::text(h.symbol.as_str()),
                        Val::int(h.held_since_us),
                    ],
                )?;
            }
        }
        Ok(())
    })
}
