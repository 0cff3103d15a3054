//! A client whose position lists cover only the markets it was told of (`watch_symbols`: a
//! ccxt venue whose default list holds one kind of market, such as Bybit's USDT-settled one):
//! the manager tells it every symbol that enters the book before it reads a list, once per
//! client, so a position in another kind of market is never taken for gone.

use std::collections::VecDeque;

use super::testing::{listed, manager, network_error, Fake};
use super::ManagerConfig;
use crate::book::{share, SharedPosition};
use crate::clock::Timestamp;
use crate::events::EventKind;
use crate::position::PositionState;

const T0: Timestamp = Timestamp(1_735_689_600_000_000);
/// A symbol of the kind of market the client's default list does not hold.
const USDC: &str = "BTC/USDC:USDC";
const USDT: &str = "ETH/USDT:USDT";

fn position(symbol: &str) -> SharedPosition {
    share(PositionState::new(
        symbol,
        "long",
        100.0,
        1.0,
        10.0,
        95.0,
        Some(115.0),
        T0,
    ))
}

/// A fake that lists a USDC and a USDT long, the USDC one only once told of it; `watches`:
/// whether it declares `watch_symbols`.
fn scoped_fake(watches: bool) -> Fake {
    let fake = Fake::default();
    {
        let mut s = fake.0.lock();
        s.positions = vec![
            listed(USDC, "long", 1.0, 100.0),
            listed(USDT, "long", 1.0, 100.0),
        ];
        s.price = Some(100.0);
        s.close_ok = true;
        s.scoped.insert(USDC.to_owned());
        s.watch = watches.then(VecDeque::new);
    }
    fake
}

fn removals(m: &super::Manager<u32>) -> Vec<String> {
    m.events()
        .all()
        .iter()
        .filter(|e| e.kind == EventKind::Removed)
        .map(|e| e.symbol.clone())
        .collect()
}

fn told(f: &Fake) -> Vec<String> {
    f.calls()
        .into_iter()
        .filter(|c| c.starts_with("watch_symbols"))
        .collect()
}

#[test]
fn a_position_the_default_list_does_not_hold_stays_tracked() {
    let f = scoped_fake(true);
    let m = manager(&f, ManagerConfig::default());
    m.book().insert(USDC, position(USDC), 1);
    m.book().insert(USDT, position(USDT), 2);
    for _ in 0..5 {
        m.update_all().unwrap();
    }
    assert!(m.book().contains(USDC), "{:?}", removals(&m));
    assert!(removals(&m).is_empty(), "{:?}", removals(&m));
    // Told once, before the first list, of both symbols (in the order they came).
    assert_eq!(told(&f), [format!("watch_symbols {USDC},{USDT}")]);
    let calls = f.calls();
    let first_list = calls.iter().position(|c| c == "get_open_positions");
    assert_eq!(first_list, Some(1), "{calls:?}");
}

#[test]
fn without_being_told_the_same_client_loses_it() {
    // The failure the telling prevents: the same lists, a client that is never told.
    let f = scoped_fake(false);
    let m = manager(&f, ManagerConfig::default());
    m.book().insert(USDC, position(USDC), 1);
    for _ in 0..5 {
        m.update_all().unwrap();
    }
    assert_eq!(removals(&m), [USDC.to_owned()]);
    assert!(told(&f).is_empty());
}

#[test]
fn a_symbol_that_enters_later_is_told_before_the_next_list() {
    let f = scoped_fake(true);
    let m = manager(&f, ManagerConfig::default());
    m.book().insert(USDT, position(USDT), 2);
    m.update_all().unwrap();
    m.book().insert(USDC, position(USDC), 1);
    for _ in 0..3 {
        m.update_all().unwrap();
    }
    assert!(removals(&m).is_empty(), "{:?}", removals(&m));
    assert_eq!(
        told(&f),
        [
            format!("watch_symbols {USDT}"),
            format!("watch_symbols {USDC}")
        ]
    );
}

#[test]
fn a_sync_imports_what_it_was_told_of_and_a_close_reads_after_telling() {
    let f = scoped_fake(true);
    let m = manager(&f, ManagerConfig::default());
    // Nothing tracked, nothing told: the sync sees the default list only.
    assert_eq!(m.sync_existing_positions().unwrap(), 1);
    assert!(!m.book().contains(USDC));
    // The bot assigns the USDC position; a close checks it against a list read after telling
    // (of it and of the USDT position the sync imported).
    m.book().insert(USDC, position(USDC), 1);
    let outcome = m.close_position(USDC, "manual").unwrap();
    assert!(outcome.pnl().is_some(), "{outcome:?}");
    let calls = f.calls();
    let told_at = calls
        .iter()
        .position(|c| c.starts_with("watch_symbols") && c.contains(USDC))
        .unwrap_or_else(|| panic!("{calls:?}"));
    let closed_at = calls
        .iter()
        .position(|c| c.starts_with("close_position"))
        .unwrap_or_else(|| panic!("{calls:?}"));
    assert!(told_at < closed_at, "{calls:?}");
}

#[test]
fn a_failed_telling_fails_the_read_and_is_told_again() {
    let f = scoped_fake(true);
    f.0.lock().watch = Some(VecDeque::from([Err(network_error())]));
    let m = manager(&f, ManagerConfig::default());
    m.book().insert(USDC, position(USDC), 1);
    m.update_all().unwrap();
    // The list was not read: nothing decided on it.
    assert!(!f.calls().iter().any(|c| c == "get_open_positions"));
    assert!(m.book().contains(USDC));
    for _ in 0..3 {
        m.update_all().unwrap();
    }
    assert!(removals(&m).is_empty(), "{:?}", removals(&m));
    assert_eq!(told(&f).len(), 2, "told again after the failure");
}

#[test]
fn a_new_client_is_told_everything_again() {
    let f = scoped_fake(true);
    let m = manager(&f, ManagerConfig::default());
    m.book().insert(USDC, position(USDC), 1);
    m.update_all().unwrap();
    f.0.lock().told.clear(); // the replacing client knows nothing yet
    m.client_replaced();
    for _ in 0..3 {
        m.update_all().unwrap();
    }
    assert!(removals(&m).is_empty(), "{:?}", removals(&m));
    assert_eq!(told(&f).len(), 2);
}

#[test]
fn positions_loaded_from_a_state_file_are_told_before_the_first_list() {
    let path = super::testing::temp_path("watch");
    let f = scoped_fake(true);
    let m = manager(&f, ManagerConfig::default());
    m.book().insert(USDC, position(USDC), 1);
    m.update_all().unwrap();
    m.save_state(&path, |_, _| Ok(Default::default())).unwrap();
    drop(m);

    let restarted = scoped_fake(true);
    let fresh = manager(&restarted, ManagerConfig::default());
    assert_eq!(fresh.load_state(&path, |_, _, _| Ok(7)).unwrap(), 1);
    for _ in 0..3 {
        fresh.update_all().unwrap();
    }
    assert!(fresh.book().contains(USDC));
    assert!(removals(&fresh).is_empty(), "{:?}", removals(&fresh));
    assert_eq!(told(&restarted), [format!("watch_symbols {USDC}")]);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Makes the fake's next `watch_symbols` say it has begun (the receiver) and then wait for the
/// sender, at most `longest`: a telling another thread can be made to race.
fn hold_the_telling(
    f: &Fake,
    longest: std::time::Duration,
) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    f.0.lock().during_watch = Some(Box::new(move || {
        entered_tx.send(()).unwrap();
        let _ = go_rx.recv_timeout(longest);
    }));
    (entered_rx, go_tx)
}

#[test]
fn a_list_read_while_another_thread_tells_waits_for_the_telling() {
    let f = scoped_fake(true);
    let m = std::sync::Arc::new(manager(&f, ManagerConfig::default()));
    m.book().insert(USDC, position(USDC), 1);
    // Held until the other thread has started its list read.
    let (entered_rx, go_tx) = hold_the_telling(&f, std::time::Duration::from_millis(300));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<&str>();
    let run = |name: &'static str,
               work: fn(&super::Manager<u32>) -> crate::error::CoreResult<()>| {
        let (m, done) = (m.clone(), done_tx.clone());
        std::thread::spawn(move || {
            work(&m).unwrap();
            done.send(name).unwrap();
        });
    };
    run("teller", |m| m.update_all().map(|_| ()));
    entered_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the telling started");
    run("reader", |m| m.sync_existing_positions().map(|_| ()));
    std::thread::sleep(std::time::Duration::from_millis(50));
    go_tx.send(()).unwrap();
    // Both end (a deadlock fails the test instead of hanging it).
    for _ in 0..2 {
        done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("both threads end");
    }
    // Every list was read after the telling: each showed the USDC position.
    let calls = f.calls();
    let told_at = calls
        .iter()
        .position(|c| c.starts_with("watch_symbols"))
        .unwrap_or_else(|| panic!("{calls:?}"));
    let first_list = calls
        .iter()
        .position(|c| c == "get_open_positions")
        .unwrap_or_else(|| panic!("{calls:?}"));
    assert!(told_at < first_list, "{calls:?}");
    assert!(removals(&m).is_empty(), "{:?}", removals(&m));
}

#[test]
fn a_telling_that_never_ends_fails_the_other_threads_read_and_keeps_everything() {
    let f = scoped_fake(true);
    let mut m = manager(&f, ManagerConfig::default());
    m.telling_wait = std::time::Duration::from_millis(100);
    let m = std::sync::Arc::new(m);
    m.book().insert(USDC, position(USDC), 1);
    let (entered_rx, release_tx) = hold_the_telling(&f, std::time::Duration::from_secs(10));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    {
        let (m, done) = (m.clone(), done_tx.clone());
        std::thread::spawn(move || {
            m.update_all().unwrap();
            done.send(()).unwrap();
        });
    }
    entered_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the telling started");
    // The other thread's read gives up after the wait: nothing read, nothing removed.
    let lists_before = f
        .calls()
        .iter()
        .filter(|c| *c == "get_open_positions")
        .count();
    m.update_all().unwrap();
    assert_eq!(
        f.calls()
            .iter()
            .filter(|c| *c == "get_open_positions")
            .count(),
        lists_before
    );
    assert!(m.book().contains(USDC));
    release_tx.send(()).unwrap();
    done_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the telling thread ends");
    assert!(removals(&m).is_empty(), "{:?}", removals(&m));
}
