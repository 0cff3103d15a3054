//! Orders in flight and a journal: each order is written before it goes out and settled after
//! its call; a restart takes back what was left as an order with an unknown outcome.

use std::sync::Arc;

use parking_lot::Mutex;

use super::in_flight::{SentIntent, SentOrder};
use super::testing::*;
use super::{CloseOutcome, Manager, ManagerConfig};
use crate::book::{Activity, OpenIntent, SharedPosition};
use crate::events::EventKind;
use crate::key::{Key, Side};
use crate::reconcile::Op;

/// Runs inside the client's order call: what the journal held by then.
fn seen_at_call(fake: &Fake, journal: &Arc<OrdersJournal>, close: bool) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, j) = (seen.clone(), journal.clone());
    let hook: Box<dyn FnMut() + Send> = Box::new(move || *s.lock() = j.log());
    if close {
        fake.0.lock().during_close = Some(hook);
    } else {
        fake.0.lock().during_order = Some(hook);
    }
    seen
}

#[test]
fn an_open_is_written_before_its_order_goes_out_and_settled_once_tracked() {
    let f = priced(100.0);
    let (m, journal) = journaled(&f);
    let seen = seen_at_call(&f, &journal, false);
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(*seen.lock(), ["sent BTC open"], "written before the call");
    assert_eq!(journal.log(), ["sent BTC open", "settled BTC"]);
    let (key, order) = journal.sent.lock()[0].clone();
    assert_eq!(key.as_str(), "BTC");
    assert_eq!(
        order.intent,
        SentIntent::open(&OpenIntent {
            side: Side::Long,
            amount: 1.0,
            leverage: 10.0,
            stop_loss_percentage: 0.05,
            price: 100.0,
            client_order_id: None,
        })
    );
    assert_eq!(order.sent_at, m.now());
    assert!(order.reference.starts_with("pm"), "{}", order.reference);
    assert!(!m.book().order_pending("BTC"), "nothing left pending");

    // An open refused before any order writes nothing (a settle finds nothing to delete).
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(journal.sent.lock().len(), 1);
}

#[test]
fn closes_and_scale_orders_are_written_before_they_go_out() {
    let f = priced(100.0);
    let (m, journal) = journaled(&f);
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    f.0.lock().positions = vec![listed("BTC", "long", 1.0, 100.0)];
    let seen = seen_at_call(&f, &journal, false);
    assert!(m.scale_in_position("BTC", (1.0, "1.0"), 100.0).unwrap());
    assert_eq!(
        seen.lock().last().map(String::as_str),
        Some("sent BTC scale_in")
    );
    f.0.lock().positions = vec![listed("BTC", "long", 2.0, 100.0)];
    let seen = seen_at_call(&f, &journal, true);
    assert!(matches!(
        m.close_position("BTC", "manual").unwrap(),
        CloseOutcome::Closed(_)
    ));
    assert_eq!(
        seen.lock().last().map(String::as_str),
        Some("sent BTC close")
    );
    assert_eq!(
        journal.log()[2..],
        [
            "sent BTC scale_in",
            "settled BTC",
            "sent BTC close",
            "settled BTC"
        ]
    );
    let (_, close) = journal.sent.lock()[2].clone();
    assert!(matches!(
        close.intent,
        SentIntent::Change { op: Op::Close, before, ref reason, price: Some(p), .. }
            if before == 2.0 && reason == "manual" && p == 100.0
    ));
}

#[test]
fn an_order_whose_outcome_stays_unknown_is_still_pending_when_its_call_settles() {
    let f = priced(100.0);
    let (m, journal) = journaled(&f);
    {
        let mut s = f.0.lock();
        s.market_answers.push_back(Err(network_error()));
        // The list after the lost answer cannot be read either.
        s.scripted.push_back(Err(network_error()));
    }
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(journal.log(), ["sent BTC open", "settled BTC"]);
    assert!(
        m.book().order_pending("BTC"),
        "the settle leaves the row: the outcome is unknown"
    );
}

fn close_sent(before: f64) -> SentOrder {
    SentOrder {
        reference: "c1".to_owned(),
        sent_at: crate::clock::Timestamp(1_735_689_000_000_000),
        intent: SentIntent::Change {
            op: Op::Close,
            before,
            client_order_id: None,
            reason: "stop_loss".to_owned(),
            price: Some(90.0),
            target_bit: 0,
        },
    }
}

/// BTC long, `amount` contracts at 100, tracked.
fn tracked(m: &Manager<u32>, amount: f64) -> SharedPosition {
    let p = crate::book::share(crate::position::PositionState::new(
        "BTC",
        "long",
        100.0,
        amount,
        10.0,
        95.0,
        Some(130.0),
        m.now(),
    ));
    m.book().insert("BTC", p.clone(), 1);
    p
}

fn kinds(m: &Manager<u32>) -> Vec<(EventKind, String)> {
    m.events()
        .all()
        .into_iter()
        .map(|e| (e.kind, e.reason))
        .collect()
}

#[test]
fn a_restored_open_sends_no_second_order_and_tracks_what_the_list_shows_with_its_stop() {
    let f = priced(101.0);
    // Lists may lag a fill by up to a minute on this venue (the outcome rules' grace).
    let config = ManagerConfig {
        outcome_grace_seconds: 60.0,
        ..ManagerConfig::default()
    };
    let m = manager(&f, config);
    let back = m.restore_orders(vec![(Key::parse("BTC"), open_sent("r1", None))]);
    assert_eq!((back.opens, back.changes, back.stale.len()), (1, 0, 0));
    assert_eq!(kinds(&m), [(EventKind::OutcomeUnknown, "open".to_owned())]);
    // The list lags the fill: the bot's opens of the same symbol send nothing.
    for _ in 0..3 {
        assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
        m.update_all().unwrap();
    }
    assert_eq!(orders_sent(&f), 0, "{:?}", f.calls());
    assert!(m.book().order_pending("BTC"));
    // The list shows it: tracked with the open's stop and target, from the listed entry.
    f.0.lock().positions = vec![listed("BTC", "long", 2.0, 101.0)];
    m.update_all().unwrap();
    let (p, _) = m
        .book()
        .get("BTC")
        .unwrap_or_else(|| panic!("not tracked: {:?}", kinds(&m)));
    let p = p.lock();
    assert_eq!((p.amount, p.entry_price, p.leverage), (2.0, 101.0, 5.0));
    assert!((p.stop_loss - 101.0 * 0.9).abs() < 1e-9, "{}", p.stop_loss);
    assert_eq!(orders_sent(&f), 0);
}

#[test]
fn a_restored_open_the_lists_never_show_is_released_by_the_outcome_rules() {
    let f = priced(100.0);
    let m = manager(&f, ManagerConfig::default());
    m.restore_orders(vec![(Key::parse("BTC"), open_sent("r1", None))]);
    f.0.lock().positions = vec![listed("ETH", "long", 1.0, 10.0)];
    let needed = crate::manager::config::DEFAULT_OUTCOME_CONFIRMATIONS as usize;
    for _ in 0..needed {
        assert!(m.book().order_pending("BTC"));
        m.update_all().unwrap();
    }
    assert!(!m.book().order_pending("BTC"), "released");
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(orders_sent(&f), 1);
}

#[test]
fn a_restored_close_holds_its_position_until_a_list_tells() {
    let f = priced(90.0);
    let m = manager(&f, ManagerConfig::default());
    tracked(&m, 3.0);
    let back = m.restore_orders(vec![(Key::parse("BTC"), close_sent(3.0))]);
    assert_eq!((back.opens, back.changes), (0, 1));
    assert!(matches!(
        m.book().activity("BTC"),
        Some(Activity::Unknown(u)) if u.op == Op::Close && u.before == 3.0 && u.reason == "stop_loss"
    ));
    // The list cannot be read: the bot's close sends nothing.
    f.0.lock().scripted.push_back(Err(network_error()));
    assert_eq!(
        m.close_position("BTC", "manual").unwrap(),
        CloseOutcome::Unverified
    );
    assert_eq!(orders_sent(&f), 0, "{:?}", f.calls());
    // The list no longer shows it: the restored close went through.
    f.0.lock().positions = vec![listed("ETH", "long", 1.0, 10.0)];
    m.update_all().unwrap();
    assert!(m.book().get("BTC").is_none());
    assert!(
        kinds(&m).contains(&(EventKind::Closed, "stop_loss".to_owned())),
        "{:?}",
        kinds(&m)
    );
    assert_eq!(orders_sent(&f), 0);
}

#[test]
fn a_restored_open_supersedes_a_tombstone_of_its_key() {
    // The crashed manager had removed BTC as closed outside it, then opened BTC again; the
    // journal still held the tombstone's row when it died.
    let f = priced(100.0);
    let m = manager(&f, ManagerConfig::default());
    let old = tracked(&m, 3.0);
    f.0.lock().positions = vec![listed("ETH", "long", 1.0, 10.0)];
    m.update_all().unwrap();
    assert!(m.book().remembers("BTC", &old).is_some(), "a tombstone");
    let back = m.restore_orders(vec![(Key::parse("BTC"), open_sent("r1", None))]);
    assert_eq!((back.opens, back.stale.len()), (1, 0));
    assert!(m.book().order_pending("BTC"));
    assert!(m.book().remembers("BTC", &old).is_none(), "superseded");
}

#[test]
fn rows_whose_result_the_book_holds_are_stale() {
    let f = priced(100.0);
    let m = manager(&f, ManagerConfig::default());
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    let back = m.restore_orders(vec![
        (Key::parse("BTC"), open_sent("r1", None)),
        (Key::parse("ETH"), close_sent(1.0)),
    ]);
    let stale: Vec<&str> = back.stale.iter().map(Key::as_str).collect();
    assert_eq!(
        (back.opens, back.changes, stale),
        (0, 0, vec!["BTC", "ETH"])
    );
    assert!(!m.book().order_pending("BTC"));
}

#[test]
fn restored_intents_are_validated() {
    assert!(open_sent("a", None).intent.validate().is_ok());
    assert!(close_sent(1.0).intent.validate().is_ok());
    let bad = |f: &dyn Fn(&mut SentIntent)| {
        let mut i = open_sent("a", None).intent;
        f(&mut i);
        i.validate().unwrap_err()
    };
    let e = bad(&|i| {
        if let SentIntent::Open { intent, .. } = i {
            intent.leverage = f64::NAN;
        }
    });
    assert!(e.contains("leverage"), "{e}");
    let e = bad(&|i| {
        if let SentIntent::Open { intent, .. } = i {
            intent.stop_loss_percentage = 1.5;
        }
    });
    assert!(e.contains("stop_loss_percentage"), "{e}");
    assert!(close_sent(0.0)
        .intent
        .validate()
        .unwrap_err()
        .contains("before"));
}

#[test]
fn an_order_that_adds_is_not_sent_without_its_row_one_that_reduces_is() {
    use std::sync::atomic::Ordering;
    let f = priced(100.0);
    let (m, journal) = journaled(&f);
    journal.failing.store(true, Ordering::Relaxed);
    // An open whose row cannot be written is refused as an invalid open is: no order.
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(orders_sent(&f), 0);
    assert!(!m.book().contains("BTC") && !m.book().is_opening("BTC"));
    assert_eq!(
        journal.log(),
        ["failed BTC open", "not sent BTC", "settled BTC"]
    );
    // Tracked: a scale-in is refused, a close goes out anyway.
    journal.failing.store(false, Ordering::Relaxed);
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(orders_sent(&f), 1);
    f.0.lock().positions = vec![listed("BTC", "long", 1.0, 100.0)];
    journal.failing.store(true, Ordering::Relaxed);
    assert!(!m.scale_in_position("BTC", (1.0, "1.0"), 100.0).unwrap());
    assert_eq!(orders_sent(&f), 1, "no scale-in order");
    assert_eq!(m.book().get("BTC").unwrap().0.lock().amount, 1.0);
    assert!(matches!(
        m.close_position("BTC", "stop_loss").unwrap(),
        CloseOutcome::Closed(_)
    ));
    assert_eq!(orders_sent(&f), 2, "the close went out");
}
