//! A position the manager's own close ended, shown again by a list that lags the close
//! (venues' position lists lag their fills by seconds to minutes): it is neither imported as a
//! new position nor tracked again until the outcome rules' lists show it — in one process and
//! after a restart from a state file. The crash runs killed after answers found each case as one
//! position end journaled twice (Bitget hedge seed 15 in one process, Bybit hedge seed 5 across
//! a restart).

use std::fs;
use std::sync::Arc;

use super::testing::{
    events_of, listed, manager_with_clock, open_request, priced, temp_path, Fake,
};
use super::{CloseOutcome, Manager, ManagerConfig};
use crate::book::Remembrance;
use crate::clock::{ManualClock, Timestamp};
use crate::events::EventKind;
use crate::exchange::RawEntry;
use crate::key::Key;

/// BTC long 1 at 100, as the venue lists it before the close.
fn btc() -> RawEntry {
    listed("BTC", "long", 1.0, 100.0)
}

/// Another position the venue lists throughout (so a list without BTC is not empty); the
/// manager tracks it.
fn eth() -> RawEntry {
    listed("ETH", "long", 1.0, 10.0)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)))
}

/// A venue (`named`: orders carry client ids, as `CcxtClient`'s; else the bot's own client)
/// and a manager that opened BTC and saw it listed, then closed it; the venue no longer lists
/// BTC.
fn closed_btc(named: bool, clock: &Arc<ManualClock>) -> (Fake, Manager<u32>) {
    let fake = priced(100.0);
    {
        let mut s = fake.0.lock();
        s.client_ids = named;
        s.prices.insert("ETH".into(), 10.0);
    }
    let m = manager_with_clock(&fake, ManagerConfig::default(), clock.clone());
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    fake.0.lock().positions = vec![btc(), eth()];
    assert_eq!(m.sync_existing_positions().unwrap(), 1, "ETH imported");
    m.update_all().unwrap();
    assert!(m.book().contains("BTC"));
    assert!(matches!(
        m.close_position("BTC", "manual").unwrap(),
        CloseOutcome::Closed(_)
    ));
    fake.0.lock().positions = vec![eth()];
    (fake, m)
}

/// The next `n` list reads answer `entries` (a list lagging the close, or empty answers).
fn answer(fake: &Fake, n: usize, entries: Vec<RawEntry>) {
    let mut s = fake.0.lock();
    for _ in 0..n {
        s.scripted.push_back(Ok(entries.clone()));
    }
}

/// BTC's events of `kind`.
fn count(m: &Manager<u32>, kind: EventKind) -> usize {
    events_of(m, kind)
        .iter()
        .filter(|e| e.symbol == "BTC")
        .count()
}

/// Whether `m` keeps BTC as the end of its own close.
fn kept_as_own_end(m: &Manager<u32>) -> bool {
    matches!(
        m.book().remembered_entry(&Key::net("BTC")),
        Some((Remembrance::Tombstone { own_end: true, .. }, _))
    )
}

/// One lagging list after the close was confirmed: the sync imports nothing, the cycle
/// restores nothing, and the next true list leaves one end in the events.
fn one_lagging_list_changes_nothing(fake: &Fake, m: &Manager<u32>) {
    answer(fake, 1, vec![btc(), eth()]);
    // (ETH, untracked by empty answers, is restored by it.)
    m.sync_existing_positions().unwrap();
    assert_eq!(count(m, EventKind::Imported), 0, "BTC not imported");
    assert!(!m.book().contains("BTC"));
    assert!(kept_as_own_end(m));
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC"));
    assert_eq!(count(m, EventKind::Imported), 0);
    assert_eq!(count(m, EventKind::Restored), 0);
    assert_eq!(count(m, EventKind::Removed), 0);
    assert_eq!(count(m, EventKind::Closed), 1, "one end");
}

#[test]
fn a_named_close_confirmed_by_empty_answers_is_not_imported_from_a_lagging_list() {
    let clock = clock();
    let (fake, m) = closed_btc(true, &clock);
    // Two empty answers (the list and its re-read) confirm the close.
    answer(&fake, 2, vec![]);
    m.update_all().unwrap();
    assert!(
        kept_as_own_end(&m),
        "kept as the end of the manager's own close"
    );
    one_lagging_list_changes_nothing(&fake, &m);
}

#[test]
fn a_close_confirmed_by_a_real_list_is_not_imported_from_a_lagging_list() {
    // Named or not: a list that shows other positions is a real read, so the close ended it.
    for named in [true, false] {
        let clock = clock();
        let (fake, m) = closed_btc(named, &clock);
        m.update_all().unwrap();
        assert!(kept_as_own_end(&m), "named: {named}");
        one_lagging_list_changes_nothing(&fake, &m);
    }
}

#[test]
fn lists_that_keep_showing_it_track_it_again_as_the_outcome_rules_say() {
    let clock = clock();
    let (fake, m) = closed_btc(true, &clock);
    m.update_all().unwrap();
    let (_, handle) = m.book().remembered_entry(&Key::net("BTC")).unwrap();
    let position = handle.position;
    // One list shows it, one does not: the count starts again.
    answer(&fake, 1, vec![btc(), eth()]);
    m.update_all().unwrap();
    m.update_all().unwrap();
    answer(&fake, 1, vec![btc(), eth()]);
    assert_eq!(m.sync_existing_positions().unwrap(), 0);
    assert!(!m.book().contains("BTC"), "one list in a row so far");
    // Two in a row (`outcome_confirmations`): the close did not end it after all; the very
    // same position is tracked again and its close taken back.
    fake.0.lock().positions = vec![btc(), eth()];
    m.update_all().unwrap();
    let (again, _) = m.book().get("BTC").expect("tracked again");
    assert!(
        Arc::ptr_eq(&again, &position),
        "the same position, not an import"
    );
    assert_eq!(count(&m, EventKind::Restored), 1);
    assert_eq!(count(&m, EventKind::Imported), 0);
}

#[test]
fn a_different_position_on_the_key_is_imported_at_once() {
    let clock = clock();
    let (fake, m) = closed_btc(true, &clock);
    m.update_all().unwrap();
    // Opened by hand at another entry: not the position the close ended.
    fake.0.lock().positions = vec![listed("BTC", "long", 3.0, 120.0), eth()];
    assert_eq!(m.sync_existing_positions().unwrap(), 1);
    assert_eq!(m.book().get("BTC").unwrap().0.lock().amount, 3.0);
    assert_eq!(count(&m, EventKind::Imported), 1);
}

#[test]
fn a_restart_from_a_state_file_weighs_a_lagging_list_as_before() {
    let path = temp_path("restart");
    let clock = clock();
    let (fake, m) = closed_btc(true, &clock);
    answer(&fake, 2, vec![]);
    m.update_all().unwrap();
    m.save_state(&path, |_, _| Ok(Default::default())).unwrap();
    drop(m);
    clock.advance(60.0);
    let fresh = manager_with_clock(&fake, ManagerConfig::default(), clock.clone());
    fresh.load_state(&path, |_, _, _| Ok(7)).unwrap();
    assert!(kept_as_own_end(&fresh), "the state file kept how it ended");
    answer(&fake, 1, vec![btc(), eth()]);
    fresh.sync_existing_positions().unwrap();
    assert_eq!(count(&fresh, EventKind::Imported), 0, "BTC not imported");
    fresh.update_all().unwrap();
    assert!(!fresh.book().contains("BTC"));
    assert_eq!(count(&fresh, EventKind::Imported), 0);
    assert_eq!(count(&fresh, EventKind::Restored), 0);
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn an_open_after_a_confirmed_close_reads_no_list_first() {
    // What is kept of the ended position is not a doubt about the key (as a tombstone of a
    // removal is): the open goes out as it did before the position was kept, and supersedes it.
    let clock = clock();
    let (fake, m) = closed_btc(true, &clock);
    m.update_all().unwrap();
    assert!(kept_as_own_end(&m));
    let before = fake.calls().len();
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    let calls = fake.calls().split_off(before);
    let order = calls
        .iter()
        .position(|c| c.starts_with("create_market_order"));
    let read = calls
        .iter()
        .position(|c| c.starts_with("get_open_positions"));
    assert!(
        order.is_some() && read.is_none_or(|r| r > order.unwrap_or(0)),
        "no list read before the order: {calls:?}"
    );
    assert!(m.book().contains("BTC") && !kept_as_own_end(&m));
}

#[test]
fn an_open_after_a_list_showed_the_ended_position_again_reads_the_list_and_imports_nothing() {
    // The list the open reads may lag the close too: it counts as the next list, so two in a
    // row track the very position again (no order sent); it is never imported as a new one.
    let clock = clock();
    let (fake, m) = closed_btc(true, &clock);
    m.update_all().unwrap();
    answer(&fake, 1, vec![btc(), eth()]);
    m.update_all().unwrap();
    assert!(kept_as_own_end(&m));
    answer(&fake, 1, vec![btc(), eth()]);
    let orders = |f: &Fake| {
        f.calls()
            .iter()
            .filter(|c| c.starts_with("create_"))
            .count()
    };
    let before = orders(&fake);
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(orders(&fake), before, "nothing sent");
    assert_eq!(count(&m, EventKind::Imported), 0);
    assert_eq!(count(&m, EventKind::Restored), 1);
}
