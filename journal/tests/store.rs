//! The journal's storage against SQLite (always) and PostgreSQL (when `PMRS_TEST_POSTGRES_URL`
//! names a server; under `CI=true` a missing server fails instead of skipping).

use position_manager_core::book::{OpenIntent, UnlistedFills};
use position_manager_core::clock::Timestamp;
use position_manager_core::events::{Event, EventKind, EventLog};
use position_manager_core::key::Side;
use position_manager_core::manager::in_flight::{SentIntent, SentOrder};
use position_manager_core::position::PositionState;
use position_manager_core::reconcile::Fingerprint;
use position_manager_core::reconcile::Op;
use position_manager_journal::reader::{EventFilter, HoldRecord, Reader};
use position_manager_journal::schema::VERSION;
use position_manager_journal::store::{
    Batch, EventWrite, HoldWrite, OrderOp, OrderWrite, PositionWrite, RestoredHold, RowOp,
    TombWrite,
};
use position_manager_journal::writer::Writer;
use position_manager_journal::{JournalError, SyncMode, Target};

mod common;

use common::{postgres_db, unique};

fn sqlite_db() -> String {
    let dir = std::env::temp_dir().join(unique("pmrs-journal"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("journal.db").to_string_lossy().into_owned()
}

/// Every database a test runs on.
fn databases() -> Vec<String> {
    let mut out = vec![sqlite_db()];
    out.extend(postgres_db());
    out
}

fn state(symbol: &str, entry: f64) -> PositionState {
    PositionState::new(
        symbol,
        "long",
        entry,
        2.0,
        10.0,
        entry * 0.95,
        Some(entry * 1.2),
        Timestamp(1_700_000_000_000_000),
    )
}

fn events(n: usize, symbol: &str) -> Vec<Event> {
    let log = EventLog::new(0);
    (0..n)
        .map(|i| {
            log.record(
                Timestamp(1_700_000_000_000_000 + i as i64 * 1_000_000),
                symbol,
                if i % 2 == 0 {
                    EventKind::Added
                } else {
                    EventKind::Closed
                },
                "test",
                (i % 2 == 1).then_some(1.5),
                state(symbol, 100.0),
            )
        })
        .collect()
}

fn open(spec: &str, account: &str) -> (Writer, position_manager_journal::store::Restored) {
    Writer::open(
        Target::parse(spec).unwrap(),
        SyncMode::Full,
        account,
        100,
        1_700_000_000_000_000,
    )
    .unwrap()
}

fn batch_of(events: &[Event]) -> Batch {
    let mut b = Batch::default();
    for e in events {
        b.events.push(EventWrite::new(
            e,
            Some("{\"strategy\":\"x\"}".into()),
            None,
        ));
    }
    b
}

#[test]
fn a_new_writer_reads_back_book_tombstones_and_history() {
    for db in databases() {
        let (mut w, restored) = open(&db, "main");
        assert_eq!((restored.epoch, restored.last_seq), (1, 0), "{db}");
        let evs = events(3, "BTC/USDT:USDT");
        let mut b = batch_of(&evs);
        b.positions.insert(
            "BTC/USDT:USDT".into(),
            RowOp::Upsert(PositionWrite {
                listed: Some(
                    "{\"side\":\"long\",\"contracts\":1.0,\"entry_price\":50010.5}".into(),
                ),
                unlisted_fills: Some("{\"sizes_before\":[0.5,0.75]}".into()),
                ..PositionWrite::new(
                    state("BTC/USDT:USDT", 50_000.0),
                    Some("{\"strategy\":\"breakout\",\"big\":100000000000000000000000}".into()),
                    1,
                )
            }),
        );
        b.tombstones.insert(
            "ETH/USDT:USDT".into(),
            RowOp::Upsert(TombWrite {
                removed_seq: 2,
                removed_at_us: 1_700_000_001_000_000,
                state_json: serde_json::to_string(&state("ETH/USDT:USDT", 3000.0)).unwrap(),
                attributes: None,
                listed: Some(
                    "{\"side\":\"short\",\"contracts\":2.5,\"entry_price\":3001.25}".into(),
                ),
                order_id: None,
                own_end: true,
                doubtful: false,
            }),
        );
        w.write(b, 1_700_000_000_000_000).unwrap();
        drop(w);
        let (_w2, r) = open(&db, "main");
        assert_eq!((r.epoch, r.last_seq), (2, 3), "{db}");
        assert_eq!(r.events, evs, "{db}");
        assert_eq!(r.positions.len(), 1);
        assert_eq!(r.positions[0].state, state("BTC/USDT:USDT", 50_000.0));
        assert_eq!(
            r.positions[0].sighting.listed,
            Some(Fingerprint {
                side: Side::Long,
                contracts: 1.0,
                entry_price: 50_010.5
            }),
            "{db}: what the exchange last listed"
        );
        assert_eq!(
            r.positions[0].sighting.unlisted,
            UnlistedFills {
                open: false,
                sizes_before: vec![0.5, 0.75]
            },
            "{db}: what no list has shown yet"
        );
        assert_eq!(
            r.positions[0].extra["big"].get(),
            "100000000000000000000000",
            "attributes are kept as the exact JSON text"
        );
        assert_eq!(r.tombstones.len(), 1);
        assert_eq!(r.tombstones[0].removed_at, Timestamp(1_700_000_001_000_000));
        assert_eq!(
            r.tombstones[0].listed,
            Some(Fingerprint {
                side: Side::Short,
                contracts: 2.5,
                entry_price: 3001.25
            }),
            "{db}: what the exchange last listed"
        );
        assert!(
            r.tombstones[0].own_end,
            "{db}: ended by the manager's own order"
        );
        assert!(r.unreadable.is_empty());
        // Another account in the same database is empty.
        let (_w3, other) = open(&db, "other");
        assert_eq!(
            (other.epoch, other.last_seq, other.positions.len()),
            (1, 0, 0)
        );
    }
}

/// Runs `sql` on `db` through a connection of its own.
fn run_sql(db: &str, sql: &str) {
    if db.starts_with("postgresql://") {
        let mut client = postgres::Client::connect(db, postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap();
    } else {
        rusqlite::Connection::open(db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }
}

#[test]
fn a_newer_writer_fences_the_older_one_for_good() {
    for db in databases() {
        let (mut old, _) = open(&db, "acct");
        let (mut new, _) = open(&db, "acct");
        let evs = events(3, "X/USDT:USDT");
        assert!(!old.is_fenced());
        let err = old.write(batch_of(&evs[..1]), 0).unwrap_err();
        assert!(matches!(err, JournalError::Fenced(_)), "{db}: {err}");
        assert!(old.is_fenced());
        assert_eq!(
            old.queued_events(),
            0,
            "{db}: what a fenced writer queued can never be written by it"
        );
        new.write(batch_of(&evs[..2]), 0).unwrap();
        // From now on the old writer does not even ask the database: with its tables gone, a
        // write that asked would fail with a database error, not as fenced.
        run_sql(
            &db,
            "ALTER TABLE pmrs_accounts RENAME TO pmrs_accounts_away",
        );
        let err = old.write(batch_of(&evs[2..]), 0).unwrap_err();
        assert!(matches!(err, JournalError::Fenced(_)), "{db}: {err}");
        assert_eq!(old.queued_events(), 0, "{db}");
        run_sql(
            &db,
            "ALTER TABLE pmrs_accounts_away RENAME TO pmrs_accounts",
        );
        new.write(batch_of(&evs[2..]), 0).unwrap();
        let mut reader = Reader::open(&db).unwrap();
        let seqs: Vec<i64> = reader
            .events(&EventFilter::default())
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3], "{db}: only the newer writer's events");
    }
}

#[test]
fn a_snapshot_reads_one_committed_state() {
    for db in databases() {
        let (mut w, _) = open(&db, "a");
        let evs = events(3, "X/USDT:USDT");
        w.write(batch_of(&evs[..1]), 0).unwrap();
        let mut reader = Reader::open(&db).unwrap();
        let count = |r: &mut Reader| r.events(&EventFilter::default()).unwrap().len();
        reader.begin_snapshot().unwrap();
        assert_eq!(count(&mut reader), 1, "{db}");
        w.write(batch_of(&evs[1..2]), 0).unwrap();
        assert_eq!(
            count(&mut reader),
            1,
            "{db}: a commit after the snapshot is not seen"
        );
        assert_eq!(reader.accounts().unwrap()[0].last_seq, 1, "{db}");
        let err = reader.begin_snapshot().unwrap_err();
        assert!(matches!(err, JournalError::Config(_)), "{db}: {err}");
        reader.end_snapshot().unwrap();
        assert_eq!(count(&mut reader), 2, "{db}: seen once the snapshot ended");
        reader.end_snapshot().unwrap(); // none open: nothing to do
        w.write(batch_of(&evs[2..]), 0).unwrap();
        assert_eq!(count(&mut reader), 3, "{db}");
    }
}

#[test]
fn writing_the_same_event_twice_stores_it_once() {
    for db in databases() {
        let (mut w, _) = open(&db, "a");
        let evs = events(2, "X/USDT:USDT");
        w.write(batch_of(&evs), 0).unwrap();
        w.write(batch_of(&evs), 0).unwrap();
        let mut reader = Reader::open(&db).unwrap();
        let got = reader.events(&EventFilter::default()).unwrap();
        assert_eq!(
            got.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2],
            "{db}"
        );
    }
}

#[test]
fn the_reader_filters_events_and_lists_positions_and_accounts() {
    for db in databases() {
        let (mut a, _) = open(&db, "a");
        let (mut b, _) = open(&db, "b");
        a.write(batch_of(&events(4, "BTC/USDT:USDT")), 0).unwrap();
        let mut hedge = batch_of(&events(2, "ETH/USDT:USDT@long"));
        hedge.positions.insert(
            "ETH/USDT:USDT@long".into(),
            RowOp::Upsert(PositionWrite::new(state("ETH/USDT:USDT", 3000.0), None, 1)),
        );
        b.write(hedge, 0).unwrap();
        let mut r = Reader::open(&db).unwrap();
        assert_eq!(r.schema_version(), VERSION);
        let accounts = r.accounts().unwrap();
        assert_eq!(
            accounts
                .iter()
                .map(|x| (x.account.as_str(), x.last_seq, x.open_positions))
                .collect::<Vec<_>>(),
            vec![("a", 4, 0), ("b", 2, 1)],
            "{db}"
        );
        let f = |account: Option<&str>, symbol: Option<&str>, kinds: &[&str]| EventFilter {
            account: account.map(str::to_owned),
            symbol: symbol.map(str::to_owned),
            kinds: (!kinds.is_empty()).then(|| kinds.iter().map(|k| (*k).to_owned()).collect()),
            ..EventFilter::default()
        };
        assert_eq!(r.events(&f(None, None, &[])).unwrap().len(), 6);
        assert_eq!(r.events(&f(Some("a"), None, &[])).unwrap().len(), 4);
        assert_eq!(
            r.events(&f(None, Some("ETH/USDT:USDT"), &[]))
                .unwrap()
                .len(),
            2,
            "a symbol matches its hedge-mode legs"
        );
        assert_eq!(r.events(&f(None, Some("ETH"), &[])).unwrap().len(), 0);
        assert_eq!(r.events(&f(Some("a"), None, &["closed"])).unwrap().len(), 2);
        let no_kind = EventFilter {
            kinds: Some(Vec::new()),
            ..EventFilter::default()
        };
        assert!(
            r.events(&no_kind).unwrap().is_empty(),
            "no kind selects no event"
        );
        let closed = r.closed_positions(&f(Some("a"), None, &[])).unwrap();
        assert!(closed
            .iter()
            .all(|e| e.kind == "closed" && e.pnl == Some(1.5)));
        let ranged = r
            .events(&EventFilter {
                account: Some("a".into()),
                since_us: Some(1_700_000_001_000_000),
                until_us: Some(1_700_000_003_000_000),
                ..EventFilter::default()
            })
            .unwrap();
        assert_eq!(ranged.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        let newest = r
            .events(&EventFilter {
                account: Some("a".into()),
                limit: Some(2),
                ..EventFilter::default()
            })
            .unwrap();
        assert_eq!(newest.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
        let open = r.open_positions(None).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].symbol, "ETH/USDT:USDT@long");
        assert!(r.open_positions(Some("a")).unwrap().is_empty());
    }
}

/// Events of `symbol` recorded in this order at these times (seconds after 1_700_000_000).
fn events_at(symbol: &str, log: &EventLog, seconds: &[i64]) -> Vec<Event> {
    seconds
        .iter()
        .map(|s| {
            log.record(
                Timestamp((1_700_000_000 + s) * 1_000_000),
                symbol,
                EventKind::Closed,
                "test",
                Some(1.0),
                state(symbol, 100.0),
            )
        })
        .collect()
}

#[test]
fn events_come_in_the_order_recorded_after_a_clock_went_back() {
    // The audit's dst_journal_order.py: an hour's fall-back gives the later events earlier
    // times. An account's events keep their order; `limit` keeps the last recorded ones.
    for db in databases() {
        let (mut a, _) = open(&db, "a");
        let (mut b, _) = open(&db, "b");
        let log = EventLog::new(0);
        // Recorded 1, 2 at 3600 s and 3601 s; the clock falls back an hour: 3, 4 at 2 s, 3 s.
        a.write(
            batch_of(&events_at("BTC/USDT:USDT", &log, &[3600, 3601, 2, 3])),
            0,
        )
        .unwrap();
        // Another account, whose events fall between by time.
        let other = EventLog::new(0);
        b.write(
            batch_of(&events_at("ETH/USDT:USDT", &other, &[1000, 4000])),
            0,
        )
        .unwrap();
        let mut r = Reader::open(&db).unwrap();
        let seqs = |r: &mut Reader, account: Option<&str>, limit: Option<i64>| {
            r.events(&EventFilter {
                account: account.map(str::to_owned),
                limit,
                ..EventFilter::default()
            })
            .unwrap()
            .iter()
            .map(|e| (e.account.clone(), e.seq))
            .collect::<Vec<_>>()
        };
        let of_a = |seqs: &[i64]| -> Vec<(String, i64)> {
            seqs.iter().map(|s| ("a".to_owned(), *s)).collect()
        };
        assert_eq!(seqs(&mut r, Some("a"), None), of_a(&[1, 2, 3, 4]), "{db}");
        assert_eq!(seqs(&mut r, Some("a"), Some(1)), of_a(&[4]), "{db}");
        assert_eq!(seqs(&mut r, Some("a"), Some(3)), of_a(&[2, 3, 4]), "{db}");
        let closed = r
            .closed_positions(&EventFilter {
                account: Some("a".into()),
                limit: Some(1),
                ..EventFilter::default()
            })
            .unwrap();
        assert_eq!(closed.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4]);
        // Across accounts: merged by time, each account's order kept (a's 3 and 4 come after
        // its 2, at 3601 s: after b's 1 at 1000 s, before b's 2 at 4000 s).
        let b_ = |s: i64| ("b".to_owned(), s);
        let a_ = |s: i64| ("a".to_owned(), s);
        assert_eq!(
            seqs(&mut r, None, None),
            vec![b_(1), a_(1), a_(2), a_(3), a_(4), b_(2)],
            "{db}"
        );
        assert_eq!(seqs(&mut r, None, Some(2)), vec![a_(4), b_(2)], "{db}");
        // `since`/`until` select by each event's own time.
        let early = r
            .events(&EventFilter {
                account: Some("a".into()),
                until_us: Some(1_700_000_100_000_000),
                ..EventFilter::default()
            })
            .unwrap();
        assert_eq!(early.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    }
}

/// A batch setting the account's holds to `rows` (key, start).
/// `kinds` of `(symbol, kind, reason)` recorded one second apart in one event log.
fn events_of(kinds: &[(&str, EventKind, &str)]) -> Vec<Event> {
    let log = EventLog::new(0);
    kinds
        .iter()
        .enumerate()
        .map(|(i, (symbol, kind, reason))| {
            log.record(
                Timestamp(1_700_000_000_000_000 + i as i64 * 1_000_000),
                symbol,
                *kind,
                reason,
                (*kind == EventKind::Closed).then_some(-0.5),
                state(symbol, 100.0),
            )
        })
        .collect()
}

#[test]
fn an_end_a_later_list_took_back_is_not_a_closed_position() {
    use EventKind::{Added, CloseUnconfirmed, Closed, Imported, Loaded, Opened, Removed, Restored};
    for db in databases() {
        let (mut a, _) = open(&db, "a");
        let (mut b, _) = open(&db, "b");
        a.write(
            batch_of(&events_of(&[
                ("BTC", Added, "open"),
                ("BTC", Closed, "shutdown"), // taken back by the list after it
                ("ETH", Added, "open"),
                ("BTC", CloseUnconfirmed, "still_listed"),
                ("ETH", Closed, "manual"), // another key's close stands
                ("BTC", Closed, "take_profit"),
                ("SOL", Added, "open"),
                ("SOL", Removed, "closed_externally"),
                ("XRP", Added, "open"),
                ("XRP", Removed, "closed_externally"), // failed reads: restored next
                ("XRP", Restored, "reported_again"),
                ("DOT", Added, "open"),
                ("DOT", Removed, "side_flipped"), // a flip: the new side imported
                ("DOT", Imported, "side_flipped"),
                ("DOT", Loaded, "journal"),        // (a restart)
                ("DOT", Removed, "side_flipped"),  // and back: the old side restored, so the
                ("DOT", Restored, "side_flipped"), // first removal is taken back
                ("ADA", Added, "open"),
                ("ADA", Removed, "side_flipped"), // a list lagging a flip: flipped back
                ("ADA", Imported, "side_flipped"),
                ("ADA", Removed, "side_flipped"), // (taken back by the flip after it)
                ("ADA", Restored, "side_flipped"),
                ("ADA", Removed, "side_flipped"), // and again: the one end of the three
                ("ADA", Restored, "side_flipped"),
                ("LTC", Added, "open"),
                ("LTC", Removed, "side_flipped"), // a flip, and a flip to another position:
                ("LTC", Imported, "side_flipped"), // two ends
                ("LTC", Removed, "side_flipped"),
                ("LTC", Imported, "side_flipped"),
                ("AVAX", Added, "open"),
                ("AVAX", Removed, "side_flipped"), // its new side not imported, and then
                ("AVAX", Restored, "reported_again"), // the flipped-away position listed again
                ("XLM", Added, "open"),
                ("XLM", Removed, "side_flipped"), // a flip, then the new side's own life:
                ("XLM", Imported, "side_flipped"), // the flip back after it takes back
                ("XLM", Closed, "manual"),        // none of the ends before
                ("XLM", Opened, "open"),
                ("XLM", Removed, "side_flipped"),
                ("XLM", Restored, "side_flipped"),
            ])),
            0,
        )
        .unwrap();
        // Account b's close of BTC is not taken back by account a's list.
        b.write(
            batch_of(&events_of(&[
                ("BTC", Added, "open"),
                ("BTC", Closed, "stop_loss"),
            ])),
            0,
        )
        .unwrap();
        let mut r = Reader::open(&db).unwrap();
        let ends = |r: &mut Reader, filter: EventFilter| -> Vec<(String, String, String)> {
            r.closed_positions(&filter)
                .unwrap()
                .into_iter()
                .map(|e| (e.account, e.symbol, e.reason))
                .collect()
        };
        let end = |a: &str, s: &str, r: &str| (a.to_owned(), s.to_owned(), r.to_owned());
        assert_eq!(
            ends(&mut r, EventFilter::default()),
            vec![
                end("b", "BTC", "stop_loss"),
                end("a", "ETH", "manual"),
                end("a", "BTC", "take_profit"),
                end("a", "SOL", "closed_externally"),
                end("a", "DOT", "side_flipped"),
                end("a", "ADA", "side_flipped"),
                end("a", "LTC", "side_flipped"),
                end("a", "LTC", "side_flipped"),
                end("a", "XLM", "side_flipped"),
                end("a", "XLM", "manual"),
                end("a", "XLM", "side_flipped"),
            ],
            "{db}"
        );
        let btc_of_a = EventFilter {
            account: Some("a".into()),
            symbol: Some("BTC".into()),
            ..EventFilter::default()
        };
        assert_eq!(
            ends(&mut r, btc_of_a.clone()),
            vec![end("a", "BTC", "take_profit")],
            "{db}"
        );
        // The event log itself keeps the close that was taken back.
        let logged = r
            .events(&EventFilter {
                kinds: Some(vec!["closed".into()]),
                ..btc_of_a
            })
            .unwrap();
        assert_eq!(
            logged.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            ["shutdown", "take_profit"],
            "{db}"
        );
        let newest = EventFilter {
            limit: Some(2),
            ..EventFilter::default()
        };
        assert_eq!(
            ends(&mut r, newest),
            vec![end("a", "XLM", "manual"), end("a", "XLM", "side_flipped")],
            "{db}"
        );
    }
}

fn holds(rows: &[(&str, i64)]) -> Batch {
    Batch {
        holds: Some(
            rows.iter()
                .map(|(symbol, since)| HoldWrite {
                    symbol: (*symbol).to_owned(),
                    held_since_us: *since,
                })
                .collect(),
        ),
        ..Batch::default()
    }
}

fn restored_holds(rows: &[(&str, i64)]) -> Vec<RestoredHold> {
    rows.iter()
        .map(|(symbol, since)| RestoredHold {
            symbol: (*symbol).to_owned(),
            since: Timestamp(*since),
        })
        .collect()
}

#[test]
fn each_write_of_the_holds_replaces_the_accounts_set_and_a_restart_reads_it_back() {
    for db in databases() {
        let (mut w, r) = open(&db, "main");
        assert!(r.holds.is_empty(), "{db}");
        let b = holds(&[("BTC/USDT:USDT", 10), ("ETH/USDT:USDT@long", 20)]);
        w.write(b, 0).unwrap();
        // Another account's holds are its own.
        let (mut other, _) = open(&db, "other");
        let b = holds(&[("SOL/USDT:USDT", 5)]);
        other.write(b, 0).unwrap();
        // A batch without holds leaves them as they are.
        w.write(batch_of(&events(1, "BTC/USDT:USDT")), 0).unwrap();
        drop(w);
        let (mut w, r) = open(&db, "main");
        assert_eq!(
            r.holds,
            restored_holds(&[("BTC/USDT:USDT", 10), ("ETH/USDT:USDT@long", 20)]),
            "{db}"
        );
        // The next set replaces the whole of it; an empty set leaves no row.
        let b = holds(&[("ETH/USDT:USDT@long", 30)]);
        w.write(b, 0).unwrap();
        drop(w);
        let (mut w, r) = open(&db, "main");
        assert_eq!(
            r.holds,
            restored_holds(&[("ETH/USDT:USDT@long", 30)]),
            "{db}"
        );
        let b = holds(&[]);
        w.write(b, 0).unwrap();
        drop(w);
        assert!(open(&db, "main").1.holds.is_empty(), "{db}");
        assert_eq!(
            open(&db, "other").1.holds,
            restored_holds(&[("SOL/USDT:USDT", 5)]),
            "{db}"
        );
    }
}

#[test]
fn closes_awaiting_confirmation_are_kept_by_key_until_deleted() {
    for db in databases() {
        let (mut w, r) = open(&db, "main");
        assert!(r.closing.is_empty(), "{db}");
        let closing = |symbol: &str, seq: i64, at: i64| TombWrite {
            removed_seq: seq,
            removed_at_us: at,
            state_json: serde_json::to_string(&state(symbol, 100.0)).unwrap(),
            attributes: Some("{\"strategy\":\"grid\"}".into()),
            listed: None,
            // The close's order client id (one of them was sent without).
            order_id: (seq == 2).then(|| format!("pm-close-{seq}")),
            own_end: false,
            doubtful: false,
        };
        let mut b = batch_of(&events(2, "BTC/USDT:USDT"));
        for (symbol, seq, at) in [("BTC/USDT:USDT", 2, 20), ("ETH/USDT:USDT@short", 1, 10)] {
            b.closing
                .insert(symbol.into(), RowOp::Upsert(closing(symbol, seq, at)));
        }
        w.write(b, 0).unwrap();
        drop(w);
        let (mut w, r) = open(&db, "main");
        let read: Vec<(&str, Timestamp, &str, Option<&str>)> = r
            .closing
            .iter()
            .map(|c| {
                (
                    c.symbol.as_str(),
                    c.removed_at,
                    c.extra["strategy"].get(),
                    c.order_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![
                ("ETH/USDT:USDT@short", Timestamp(10), "\"grid\"", None),
                (
                    "BTC/USDT:USDT",
                    Timestamp(20),
                    "\"grid\"",
                    Some("pm-close-2")
                )
            ],
            "{db}: oldest close first"
        );
        assert_eq!(r.closing[1].state, state("BTC/USDT:USDT", 100.0));
        assert!(r.tombstones.is_empty() && r.positions.is_empty(), "{db}");
        let mut b = Batch::default();
        b.closing.insert("BTC/USDT:USDT".into(), RowOp::Delete);
        w.write(b, 0).unwrap();
        drop(w);
        let symbols: Vec<String> = open(&db, "main")
            .1
            .closing
            .into_iter()
            .map(|c| c.symbol)
            .collect();
        assert_eq!(symbols, vec!["ETH/USDT:USDT@short".to_owned()], "{db}");
    }
}

#[test]
fn queued_batches_keep_the_newest_set_of_holds() {
    let mut queued = holds(&[("A", 1), ("B", 2)]);
    queued.merge(batch_of(&events(1, "A")));
    assert_eq!(
        queued.holds,
        holds(&[("A", 1), ("B", 2)]).holds,
        "no holds: unchanged"
    );
    queued.merge(holds(&[]));
    assert_eq!(
        queued.holds,
        Some(vec![]),
        "the newer set wins, even an empty one"
    );
    assert!(Batch::default().is_empty());
    assert!(!holds(&[]).is_empty(), "clearing the holds is a write");
}

/// SQL that takes a current journal back to exactly what `version` created.
fn back_to_version(version: i64) -> String {
    let newer: &[(i64, &str)] = &[
        (2, "DROP TABLE pmrs_holds"),
        (3, "DROP TABLE pmrs_closing"),
        (4, "ALTER TABLE pmrs_tombstones DROP COLUMN listed"),
        (5, "ALTER TABLE pmrs_positions DROP COLUMN listed"),
        (6, "DROP TABLE pmrs_orders"),
        (
            7,
            "ALTER TABLE pmrs_positions DROP COLUMN unlisted_fills; \
             ALTER TABLE pmrs_closing DROP COLUMN order_id",
        ),
        (8, "ALTER TABLE pmrs_tombstones DROP COLUMN own_end"),
        (9, "DROP TABLE pmrs_predecessors"),
        (10, "ALTER TABLE pmrs_tombstones DROP COLUMN doubtful"),
    ];
    // Newest first, as a downgrade would undo them.
    let mut sql: Vec<String> = newer
        .iter()
        .rev()
        .filter(|(v, _)| *v > version)
        .map(|(_, undo)| (*undo).to_owned())
        .collect();
    sql.push(format!(
        "DELETE FROM pmrs_migrations WHERE version > {version}"
    ));
    sql.join("; ")
}

#[test]
fn older_journals_are_upgraded_with_their_data_kept() {
    assert_eq!(VERSION, 10, "a new version needs its own case here");
    // Two tombstones: the manager's own end (XRP), and one whose end failed reads also show
    // (LTC, removed later).
    let tombstone = |listed: Option<&str>| {
        let mut b = Batch::default();
        for (symbol, seq, own_end) in [("XRP/USDT:USDT", 1, true), ("LTC/USDT:USDT", 2, false)] {
            b.tombstones.insert(
                symbol.into(),
                RowOp::Upsert(TombWrite {
                    removed_seq: seq,
                    removed_at_us: 4 + seq,
                    state_json: serde_json::to_string(&state(symbol, 1.0)).unwrap(),
                    attributes: None,
                    listed: listed.map(str::to_owned),
                    order_id: None,
                    own_end,
                    doubtful: !own_end,
                }),
            );
        }
        b
    };
    let close = |symbol: &str, order_id: &str| {
        let mut b = Batch::default();
        b.closing.insert(
            symbol.into(),
            RowOp::Upsert(TombWrite {
                removed_seq: 2,
                removed_at_us: 9,
                state_json: serde_json::to_string(&state(symbol, 10.0)).unwrap(),
                attributes: None,
                listed: None,
                order_id: Some(order_id.to_owned()),
                own_end: false,
                doubtful: false,
            }),
        );
        b
    };
    let listing = "{\"side\":\"long\",\"contracts\":1.0,\"entry_price\":1.5}";
    let unlisted = "{\"open\":true}";
    // The position a side flip replaced with the tracked ADA.
    let predecessor = || {
        let mut b = Batch::default();
        b.predecessors.insert(
            "ADA/USDT:USDT".into(),
            RowOp::Upsert(TombWrite {
                removed_seq: 2,
                removed_at_us: 8,
                state_json: serde_json::to_string(&state("ADA/USDT:USDT", 2.0)).unwrap(),
                attributes: Some("{\"strategy\":\"breakout\"}".to_owned()),
                listed: Some(listing.to_owned()),
                order_id: None,
                own_end: false,
                doubtful: false,
            }),
        );
        b
    };
    let position = |listed: Option<&str>| {
        let mut b = Batch::default();
        b.positions.insert(
            "ADA/USDT:USDT".into(),
            RowOp::Upsert(PositionWrite {
                listed: listed.map(str::to_owned),
                unlisted_fills: Some(unlisted.to_owned()),
                ..PositionWrite::new(state("ADA/USDT:USDT", 1.0), None, 2)
            }),
        );
        b
    };
    let open_fill = UnlistedFills {
        open: true,
        sizes_before: vec![],
    };
    let fingerprint = Fingerprint {
        side: Side::Long,
        contracts: 1.0,
        entry_price: 1.5,
    };
    for db in databases() {
        for from in [1, 2, 3, 4, 5, 6, 7, 8, 9] {
            let account = format!("from-{from}");
            let (mut w, _) = open(&db, &account);
            let evs = events(2, "BTC/USDT:USDT");
            w.write(batch_of(&evs), 0).unwrap();
            w.write(tombstone(Some(listing)), 0).unwrap();
            w.write(position(Some(listing)), 0).unwrap();
            w.write(close("DOT/USDT:USDT", "pm-dot"), 0).unwrap();
            if from >= 2 {
                w.write(holds(&[("ETH/USDT:USDT", 3)]), 0).unwrap();
            }
            drop(w);
            run_sql(&db, &back_to_version(from));
            let mut reader = Reader::open(&db).unwrap();
            assert_eq!(reader.schema_version(), from, "{db}");
            let kept_holds = if from >= 2 {
                vec![HoldRecord {
                    account: account.clone(),
                    symbol: "ETH/USDT:USDT".to_owned(),
                    held_since_us: 3,
                }]
            } else {
                vec![]
            };
            assert_eq!(
                reader.reopen_holds(Some(&account)).unwrap(),
                kept_holds,
                "{db}"
            );
            let [old_tomb, old_doubt] = &reader.tombstones(Some(&account)).unwrap()[..] else {
                panic!("{db}: two tombstones");
            };
            let kept_listing = (from >= 4).then(|| listing.to_owned());
            assert_eq!(
                (old_tomb.symbol.as_str(), &old_tomb.listed, old_tomb.own_end),
                ("XRP/USDT:USDT", &kept_listing, from >= 8)
            );
            assert_eq!(
                (
                    old_doubt.symbol.as_str(),
                    old_doubt.own_end,
                    old_doubt.doubtful
                ),
                ("LTC/USDT:USDT", false, false),
                "{db}: not known before version 10"
            );
            assert!(!old_tomb.doubtful);
            drop(reader);
            let (mut w, r) = open(&db, &account);
            assert_eq!((r.last_seq, r.events.clone()), (2, evs), "{db} from {from}");
            assert_eq!(r.holds.len(), kept_holds.len());
            assert_eq!(r.tombstones.len(), 2, "{db}: kept");
            assert_eq!(
                r.tombstones[0].listed,
                (from >= 4).then_some(fingerprint),
                "{db}: not known before version 4"
            );
            assert_eq!(
                r.tombstones[0].own_end,
                from >= 8,
                "{db}: a plain tombstone before version 8"
            );
            assert!(
                !r.tombstones[1].doubtful && !r.tombstones[1].own_end,
                "{db}: a plain tombstone before version 10"
            );
            assert_eq!(r.positions.len(), 1, "{db}: kept");
            assert!(r.predecessors.is_empty(), "{db}: none before version 9");
            assert_eq!(
                r.positions[0].sighting.listed,
                (from >= 5).then_some(fingerprint),
                "{db}: not known before version 5"
            );
            let kept_unlisted = if from >= 7 {
                open_fill.clone()
            } else {
                UnlistedFills::default()
            };
            assert_eq!(
                r.positions[0].sighting.unlisted, kept_unlisted,
                "{db}: not known before version 7"
            );
            w.write(tombstone(Some(listing)), 0).unwrap();
            w.write(position(Some(listing)), 0).unwrap();
            w.write(holds(&[("BTC/USDT:USDT", 7)]), 0).unwrap();
            w.write(close("SOL/USDT:USDT", "pm-sol"), 0).unwrap();
            w.write(order_batch("SOL/USDT:USDT", &open_order("r1", 4)), 0)
                .unwrap();
            w.write(predecessor(), 0).unwrap();
            drop(w);
            let mut reader = Reader::open(&db).unwrap();
            assert_eq!(reader.schema_version(), VERSION, "{db}");
            let held = HoldRecord {
                account: account.clone(),
                symbol: "BTC/USDT:USDT".to_owned(),
                held_since_us: 7,
            };
            assert_eq!(reader.reopen_holds(Some(&account)).unwrap(), vec![held]);
            assert_eq!(reader.reopen_holds(Some("other")).unwrap(), vec![]);
            let tombs = reader.tombstones(Some(&account)).unwrap();
            assert_eq!(tombs[0].listed.as_deref(), Some(listing), "{db}");
            assert!(tombs[0].own_end, "{db}: written after the upgrade");
            assert!(
                tombs[1].doubtful && !tombs[0].doubtful,
                "{db}: written after the upgrade"
            );
            drop(reader);
            let r = open(&db, &account).1;
            assert!(r.tombstones[0].own_end, "{db}: written after the upgrade");
            assert!(
                r.tombstones[1].doubtful && !r.tombstones[1].own_end,
                "{db}: written after the upgrade"
            );
            assert_eq!(r.positions[0].sighting.listed, Some(fingerprint), "{db}");
            assert_eq!(r.positions[0].sighting.unlisted, open_fill, "{db}");
            assert_eq!(r.holds, restored_holds(&[("BTC/USDT:USDT", 7)]), "{db}");
            let mut closes: Vec<(&str, Option<&str>)> = r
                .closing
                .iter()
                .map(|c| (c.symbol.as_str(), c.order_id.as_deref()))
                .collect();
            // A close of an older journal comes back without its order's id (the list decides
            // then, as before version 7); one written since with it.
            let mut expected = vec![("SOL/USDT:USDT", Some("pm-sol"))];
            if from >= 3 {
                expected.insert(0, ("DOT/USDT:USDT", (from >= 7).then_some("pm-dot")));
            }
            expected.sort();
            closes.sort();
            assert_eq!(closes, expected, "{db} from {from}");
            assert_eq!(r.orders.len(), 1, "{db}: written after the upgrade");
            let [replaced] = &r.predecessors[..] else {
                panic!("{db}: one predecessor written after the upgrade");
            };
            assert_eq!(
                (
                    replaced.symbol.as_str(),
                    replaced.state.amount,
                    replaced.removed_at,
                    replaced.listed,
                    replaced.extra["strategy"].get()
                ),
                (
                    "ADA/USDT:USDT",
                    2.0,
                    Timestamp(8),
                    Some(fingerprint),
                    "\"breakout\""
                ),
                "{db}"
            );
        }
    }
}

fn open_order(reference: &str, sent_at: i64) -> SentOrder {
    SentOrder {
        reference: reference.to_owned(),
        sent_at: Timestamp(sent_at),
        intent: SentIntent::open(&OpenIntent {
            side: Side::Short,
            amount: 2.0,
            leverage: 5.0,
            stop_loss_percentage: 0.02,
            price: 100.0,
            client_order_id: Some(reference.to_owned()),
        }),
    }
}

fn close_order(reference: &str, sent_at: i64) -> SentOrder {
    SentOrder {
        reference: reference.to_owned(),
        sent_at: Timestamp(sent_at),
        intent: SentIntent::Change {
            op: Op::Close,
            before: 3.0,
            client_order_id: None,
            reason: "stop_loss".to_owned(),
            price: Some(95.0),
            target_bit: 0,
        },
    }
}

fn order_batch(symbol: &str, order: &SentOrder) -> Batch {
    let mut b = Batch::default();
    b.orders
        .insert(symbol.into(), OrderOp::Upsert(OrderWrite::new(order)));
    b
}

fn delete_order(symbol: &str, reference: &str) -> Batch {
    let mut b = Batch::default();
    b.orders
        .insert(symbol.into(), OrderOp::Delete(reference.to_owned()));
    b
}

#[test]
fn orders_in_flight_are_kept_by_key_and_deleted_only_by_their_own_reference() {
    for db in databases() {
        let (mut w, r) = open(&db, "main");
        assert!(r.orders.is_empty(), "{db}");
        w.write(order_batch("BTC/USDT:USDT", &open_order("a", 20)), 0)
            .unwrap();
        w.write(order_batch("ETH/USDT:USDT@long", &close_order("b", 10)), 0)
            .unwrap();
        assert_eq!(w.order_row("BTC/USDT:USDT"), Some("a"));
        drop(w);
        let (mut w, r) = open(&db, "main");
        let read: Vec<(&str, &SentOrder)> = r
            .orders
            .iter()
            .map(|o| (o.symbol.as_str(), &o.order))
            .collect();
        assert_eq!(
            read,
            vec![
                ("ETH/USDT:USDT@long", &close_order("b", 10)),
                ("BTC/USDT:USDT", &open_order("a", 20)),
            ],
            "{db}: every field back, oldest first"
        );
        assert_eq!(
            w.order_row("ETH/USDT:USDT@long"),
            Some("b"),
            "{db}: known at open"
        );
        // A newer order of the key replaces the row; the older order's delete leaves it.
        w.write(order_batch("BTC/USDT:USDT", &open_order("c", 30)), 0)
            .unwrap();
        w.write(delete_order("BTC/USDT:USDT", "a"), 0).unwrap();
        assert_eq!(w.order_row("BTC/USDT:USDT"), Some("c"), "{db}");
        w.write(delete_order("ETH/USDT:USDT@long", "b"), 0).unwrap();
        assert_eq!(w.order_row("ETH/USDT:USDT@long"), None, "{db}");
        drop(w);
        let r = open(&db, "main").1;
        let left: Vec<(&str, &str)> = r
            .orders
            .iter()
            .map(|o| (o.symbol.as_str(), o.order.reference.as_str()))
            .collect();
        assert_eq!(left, vec![("BTC/USDT:USDT", "c")], "{db}");
    }
}

#[test]
fn unlisted_fills_that_cannot_be_read_are_taken_as_none() {
    // Only a caution for the first lists after a restart: a damaged value leaves the position
    // weighed as one the lists have shown (as a build before version 7 weighs every position),
    // never unreadable.
    for db in databases() {
        let (mut w, _) = open(&db, "main");
        let mut b = Batch::default();
        for (symbol, unlisted) in [
            ("BTC/USDT:USDT", "{\"open\":true,\"sizes_before\":[2.0]}"),
            ("ETH/USDT:USDT", "{\"sizes_before\":[-1.0]}"),
            ("SOL/USDT:USDT", "not json"),
        ] {
            b.positions.insert(
                symbol.into(),
                RowOp::Upsert(PositionWrite {
                    unlisted_fills: Some(unlisted.to_owned()),
                    ..PositionWrite::new(state(symbol, 1.0), None, 1)
                }),
            );
        }
        w.write(b, 0).unwrap();
        drop(w);
        let r = open(&db, "main").1;
        let read: Vec<(&str, &UnlistedFills)> = r
            .positions
            .iter()
            .map(|p| (p.symbol.as_str(), &p.sighting.unlisted))
            .collect();
        let both = UnlistedFills {
            open: true,
            sizes_before: vec![2.0],
        };
        let none = UnlistedFills::default();
        assert_eq!(
            read,
            vec![
                ("BTC/USDT:USDT", &both),
                ("ETH/USDT:USDT", &none),
                ("SOL/USDT:USDT", &none)
            ],
            "{db}"
        );
        assert!(r.unreadable.is_empty(), "{db}: {:?}", r.unreadable);
    }
}

#[test]
fn an_order_row_that_cannot_be_trusted_is_left_unread_and_reported() {
    for db in databases() {
        let (mut w, _) = open(&db, "main");
        w.write(order_batch("BTC/USDT:USDT", &open_order("a", 1)), 0)
            .unwrap();
        w.write(order_batch("ETH/USDT:USDT", &open_order("b", 2)), 0)
            .unwrap();
        w.write(order_batch("SOL/USDT:USDT", &open_order("c", 3)), 0)
            .unwrap();
        drop(w);
        run_sql(
            &db,
            "UPDATE pmrs_orders SET intent = '{\"kind\":\"open\"}' WHERE symbol = 'BTC/USDT:USDT'; \
             UPDATE pmrs_orders SET intent = REPLACE(intent, '\"amount\":2.0', '\"amount\":-2.0') \
             WHERE symbol = 'ETH/USDT:USDT'",
        );
        let r = open(&db, "main").1;
        let read: Vec<&str> = r.orders.iter().map(|o| o.symbol.as_str()).collect();
        assert_eq!(read, vec!["SOL/USDT:USDT"], "{db}");
        assert_eq!(r.unreadable.len(), 2, "{db}: {:?}", r.unreadable);
        assert!(
            r.unreadable[1].contains("amount must be a finite number above 0, got -2"),
            "{db}: {:?}",
            r.unreadable
        );
    }
}

#[test]
fn a_queued_delete_of_an_older_order_never_drops_a_newer_orders_row() {
    let mut queued = order_batch("A", &open_order("new", 2));
    queued.merge(delete_order("A", "old"));
    assert_eq!(
        queued.orders.get("A"),
        Some(&OrderOp::Upsert(OrderWrite::new(&open_order("new", 2)))),
        "the newer row stays queued"
    );
    queued.merge(delete_order("A", "new"));
    assert_eq!(
        queued.orders.get("A"),
        Some(&OrderOp::Delete("new".to_owned()))
    );
    queued.merge(order_batch("A", &open_order("newer", 3)));
    assert!(matches!(queued.orders.get("A"), Some(OrderOp::Upsert(o)) if o.reference == "newer"));
    assert!(!delete_order("A", "x").is_empty());
}

#[test]
fn a_journal_from_a_newer_version_is_refused_and_a_plain_database_is_no_journal() {
    for db in databases() {
        drop(open(&db, "a"));
        let mut raw =
            position_manager_journal::writer::connect(&Target::parse(&db).unwrap(), SyncMode::Full)
                .unwrap();
        raw.execute(
            "INSERT INTO pmrs_migrations (version, description, applied_at) VALUES (99, 'x', 'y')",
            &[],
        )
        .unwrap();
        let err = Writer::open(Target::parse(&db).unwrap(), SyncMode::Full, "a", 1, 0)
            .err()
            .unwrap();
        assert!(err.to_string().contains("version 99, newer"), "{err}");
        let err = Reader::open(&db).err().unwrap();
        assert!(err.to_string().contains("newer"), "{err}");
    }
    let plain = sqlite_db();
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER)")
        .unwrap();
    let err = Reader::open(&plain).err().unwrap();
    assert!(
        err.to_string()
            .contains("not a position-manager-rs journal"),
        "{err}"
    );
    let missing = format!("{}.missing", sqlite_db());
    assert!(Reader::open(&missing).is_err());
}

#[test]
fn writers_of_many_accounts_write_concurrently_without_losing_or_doubling_an_event() {
    for db in databases() {
        let threads = 6;
        let per_thread = 40;
        std::thread::scope(|s| {
            for t in 0..threads {
                let db = db.clone();
                s.spawn(move || {
                    let account = format!("acct{t}");
                    let (mut w, _) = open(&db, &account);
                    for e in events(per_thread, "BTC/USDT:USDT") {
                        w.write(batch_of(std::slice::from_ref(&e)), 0).unwrap();
                    }
                });
            }
        });
        let mut r = Reader::open(&db).unwrap();
        for a in r.accounts().unwrap() {
            let evs = r
                .events(&EventFilter {
                    account: Some(a.account.clone()),
                    ..EventFilter::default()
                })
                .unwrap();
            let seqs: Vec<i64> = evs.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=per_thread as i64).collect::<Vec<_>>(), "{db}");
        }
        assert_eq!(r.accounts().unwrap().len(), threads);
    }
}

/// Several writers opening a new SQLite journal file at the same moment (bots started
/// together): each one opens it. Turning a new file to WAL takes an exclusive lock for which
/// SQLite does not wait on its busy handler, so an open that met another's switch used to fail
/// with "database is locked".
#[test]
fn writers_opening_a_new_sqlite_file_at_once_all_open_it() {
    const WRITERS: usize = 6;
    for round in 0..25 {
        let spec = sqlite_db();
        let barrier = std::sync::Barrier::new(WRITERS);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let (spec, barrier) = (&spec, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        Writer::open(
                            Target::parse(spec).unwrap(),
                            SyncMode::Full,
                            &format!("acct-{i}"),
                            100,
                            1_700_000_000_000_000,
                        )
                        .map(|_| ())
                    })
                })
                .collect();
            for h in handles {
                let got = h.join().expect("no panic");
                assert!(got.is_ok(), "round {round}: {got:?}");
            }
        });
    }
}

#[test]
fn events_dropped_from_a_full_queue_are_told_to_the_owner_not_logged_under_its_lock() {
    let db = sqlite_db();
    let (writer, _) = open(&db, "full");
    let mut writer = writer.with_queue_limit(3);
    // The database fails from now on: every write queues its events.
    run_sql(&db, "DROP TABLE pmrs_events");
    let now = 1_700_000_000_000_000;
    assert!(writer
        .write(batch_of(&events(2, "BTC/USDT:USDT")), now)
        .is_err());
    assert_eq!((writer.queued_events(), writer.take_notice()), (2, None));
    assert!(writer
        .write(batch_of(&events(2, "ETH/USDT:USDT")), now)
        .is_err());
    assert_eq!(writer.queued_events(), 3, "the oldest event dropped");
    let notice = writer.take_notice().expect("a notice");
    assert!(
        notice.contains("1 queued events dropped after the database failed for 2 writes"),
        "{notice}"
    );
    assert_eq!(writer.take_notice(), None, "told once");
}
