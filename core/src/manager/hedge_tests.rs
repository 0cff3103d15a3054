//! Hedge mode: both legs of a symbol tracked on their own; orders name their leg.

use std::sync::Arc;

use crate::events::EventKind;
use crate::exchange::RawEntry;
use crate::manager::close::CloseOutcome;
use crate::manager::testing::{events_of, listed, manager, open_request, priced, Fake};
use crate::manager::{ManagerConfig, OpenRequest};
use crate::reconcile::Mode;

fn fake(entries: Vec<RawEntry>, legs: bool) -> Fake {
    let fake = priced(100.0);
    {
        let mut s = fake.0.lock();
        s.positions = entries;
        s.legs = legs;
    }
    fake
}

fn hedge() -> ManagerConfig {
    ManagerConfig {
        position_mode: Mode::Hedge,
        ..ManagerConfig::default()
    }
}

fn keys(m: &crate::manager::Manager<u32>) -> Vec<String> {
    m.book()
        .keys()
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect()
}

fn both_legs() -> Vec<RawEntry> {
    vec![
        listed("A", "long", 5.0, 100.0),
        listed("A", "short", 3.0, 100.0),
    ]
}

#[test]
fn sync_imports_each_leg_under_its_own_key() {
    let f = fake(both_legs(), true);
    let m = manager(&f, hedge());
    assert_eq!(m.sync_existing_positions().unwrap(), 2);
    assert_eq!(keys(&m), ["A@long", "A@short"]);
    let (long, _) = m.book().get("A@long").unwrap();
    let long = long.lock().clone();
    assert_eq!(
        (long.symbol.as_str(), long.side.as_str(), long.amount),
        ("A", "long", 5.0)
    );
    let (short, _) = m.book().get("A@short").unwrap();
    let short = short.lock().clone();
    assert_eq!((short.side.as_str(), short.amount), ("short", 3.0));
    // The exchange is asked about the symbol, never the key.
    assert!(
        f.calls().iter().all(|c| !c.contains('@')),
        "{:?}",
        f.calls()
    );
}

#[test]
fn closing_one_leg_names_it_and_leaves_the_other() {
    let f = fake(both_legs(), true);
    let m = manager(&f, hedge());
    m.sync_existing_positions().unwrap();
    assert!(matches!(
        m.close_position("A@long", "manual").unwrap(),
        CloseOutcome::Closed(_)
    ));
    assert!(f.calls().contains(&"close_position A side=long".to_owned()));
    assert_eq!(keys(&m), ["A@short"]);
    // A plain symbol with one tracked leg names that leg.
    assert!(matches!(
        m.close_position("A", "manual").unwrap(),
        CloseOutcome::Closed(_)
    ));
    assert!(f
        .calls()
        .contains(&"close_position A side=short".to_owned()));
}

#[test]
fn a_plain_symbol_with_two_legs_is_refused() {
    let f = fake(both_legs(), true);
    let m = manager(&f, hedge());
    m.sync_existing_positions().unwrap();
    assert_eq!(
        m.close_position("A", "manual").unwrap(),
        CloseOutcome::NotTracked
    );
    assert!(!f.calls().iter().any(|c| c.starts_with("close_position")));
    assert!(m.resolve_key("A").is_err() && m.tracks("A") && m.lookup("A").is_none());
}

#[test]
fn one_leg_vanishing_removes_only_that_leg() {
    let f = fake(both_legs(), false);
    let m = manager(&f, hedge());
    m.sync_existing_positions().unwrap();
    f.0.lock().positions = vec![listed("A", "long", 5.0, 100.0)];
    m.update_all().unwrap();
    assert_eq!(keys(&m), ["A@long"]);
    let removed: Vec<_> = events_of(&m, EventKind::Removed)
        .into_iter()
        .map(|e| (e.symbol, e.reason))
        .collect();
    assert_eq!(
        removed,
        [("A@short".to_owned(), "closed_externally".to_owned())]
    );
    // The other leg listed again unchanged comes back as the same object.
    f.0.lock().positions = both_legs();
    m.update_all().unwrap();
    assert_eq!(keys(&m), ["A@long", "A@short"]);
}

#[test]
fn a_list_repeating_one_leg_exactly_keeps_the_leg_it_does_not_show() {
    // The long's entry came garbled into an exact copy of the short's (an audit of malformed
    // venue lists, 2026-12-07): the long was removed as closed outside while the venue held it.
    let f = fake(both_legs(), false);
    let m = manager(&f, hedge());
    m.sync_existing_positions().unwrap();
    f.0.lock().positions = vec![
        listed("A", "short", 3.0, 100.0),
        listed("A", "short", 3.0, 100.0),
    ];
    m.update_all().unwrap();
    assert_eq!(keys(&m), ["A@long", "A@short"]);
    assert!(events_of(&m, EventKind::Removed).is_empty());
    // A list showing the short once proves the long gone.
    f.0.lock().positions = vec![listed("A", "short", 3.0, 100.0)];
    m.update_all().unwrap();
    assert_eq!(keys(&m), ["A@short"]);
}

#[test]
fn a_leg_never_flips_and_a_resize_is_per_leg() {
    let f = fake(both_legs(), false);
    let m = manager(&f, hedge());
    m.sync_existing_positions().unwrap();
    let (short, _) = m.book().get("A@short").unwrap();
    f.0.lock().positions = vec![
        listed("A", "long", 5.0, 100.0),
        listed("A", "short", 2.0, 100.0),
    ];
    m.update_all().unwrap();
    assert_eq!(short.lock().amount, 2.0);
    assert!(Arc::ptr_eq(&m.book().get("A@short").unwrap().0, &short));
    assert_eq!(m.book().get("A@long").unwrap().0.lock().amount, 5.0);
}

#[test]
fn opening_the_other_leg_opens_its_own_key_and_names_it() {
    let f = fake(vec![listed("A", "short", 3.0, 100.0)], true);
    let m = manager(&f, hedge());
    m.sync_existing_positions().unwrap();
    let request = OpenRequest {
        amount: (2.0, "2.0"),
        leverage: (5.0, "5"),
        ..open_request("A", "BUY")
    };
    assert!(m.open_position(&request).unwrap());
    assert_eq!(keys(&m), ["A@short", "A@long"]);
    // The event names the leg's key, as every other event of a leg does (the journal writes
    // the position's row under the event's name).
    let opened: Vec<_> = events_of(&m, EventKind::Opened)
        .into_iter()
        .map(|e| e.symbol)
        .collect();
    assert_eq!(opened, ["A@long"]);
    assert!(f.calls().iter().any(
        |c| c.starts_with("create_market_order A buy 2.0") && c.ends_with("position_side=long")
    ));
    // A second BUY is refused: that leg is tracked.
    assert!(!m.open_position(&request).unwrap());
    // A key naming the other leg than the signal is refused.
    let wrong = OpenRequest {
        symbol: "A@short",
        ..request
    };
    assert!(!m.open_position(&wrong).unwrap());
}

#[test]
fn a_one_way_manager_reports_two_legs_once_while_they_last() {
    let f = fake(both_legs(), true);
    let m = manager(&f, ManagerConfig::default());
    assert_eq!(
        m.sync_existing_positions().unwrap(),
        0,
        "neither leg is imported"
    );
    m.update_all().unwrap();
    let reports = |m: &crate::manager::Manager<u32>| events_of(m, EventKind::TwoLegs).len();
    assert_eq!(reports(&m), 1);
    f.0.lock().positions = vec![listed("A", "long", 5.0, 100.0)];
    m.sync_existing_positions().unwrap();
    f.0.lock().positions = both_legs();
    m.update_all().unwrap();
    assert_eq!(reports(&m), 2, "reported again once it came back");
}

#[test]
fn a_one_way_close_on_a_hedge_account_names_the_tracked_leg() {
    let f = fake(vec![listed("A", "long", 5.0, 100.0)], true);
    let m = manager(&f, ManagerConfig::default());
    m.sync_existing_positions().unwrap();
    f.0.lock().positions = both_legs();
    m.update_all().unwrap();
    assert!(
        m.book().contains("A"),
        "a second leg is presence, not a reason to drop it"
    );
    assert!(matches!(
        m.close_position("A", "manual").unwrap(),
        CloseOutcome::Closed(_)
    ));
    assert!(f.calls().contains(&"close_position A side=long".to_owned()));
}
