//! Orders with an unknown outcome whose lists keep showing nothing of them (rule 7): before an
//! open's key is released, its order is asked for by its client id and cancelled if it still
//! rests; before a close or scale order is taken as not executed, it is asked for too.

use std::sync::Arc;

use super::in_flight::{SentIntent, SentOrder};
use super::testing::*;
use super::{CloseOutcome, Manager, ManagerConfig};
use crate::book::Activity;
use crate::clock::{ManualClock, Timestamp};
use crate::error::CoreError;
use crate::events::EventKind;
use crate::exchange::{OrderAnswer, OrderLookup};
use crate::key::Key;
use crate::reconcile::Op;

const ID: &str = "pmrs-1";

/// The venue's answer to a lookup: the order `v1` with `status` and `filled`.
fn found(status: &str, filled: f64, average: Option<f64>) -> OrderLookup {
    match report(Some("v1"), status, Some(filled), average) {
        OrderAnswer::Report(r) => OrderLookup::Found(r),
        _ => unreachable!("report() builds a report"),
    }
}

/// A venue that takes client order ids; its lists show ETH only (never BTC).
fn venue(lookups: Vec<OrderLookup>) -> Fake {
    let f = priced(100.0);
    {
        let mut s = f.0.lock();
        s.client_ids = true;
        s.lookup_answers = lookups.into_iter().map(Ok).collect();
        s.positions = vec![listed("ETH", "long", 1.0, 10.0)];
    }
    f
}

/// A manager that took back a limit open of BTC (long 2 at 100, 10 % stop) sent with `ID`,
/// whose process died with the order out.
fn restored(f: &Fake) -> Manager<u32> {
    let m = manager(f, ManagerConfig::default());
    let order = open_sent(ID, Some(ID));
    assert_eq!(m.restore_orders(vec![(Key::parse("BTC"), order)]).opens, 1);
    m
}

/// Runs the cycles the outcome rules need before a silent list may release an open.
fn cycles_until_release(m: &Manager<u32>) {
    for _ in 0..crate::manager::config::DEFAULT_OUTCOME_CONFIRMATIONS {
        m.update_all().unwrap();
    }
}

fn venue_calls(f: &Fake) -> Vec<String> {
    f.calls()
        .into_iter()
        .filter(|c| {
            ["get_order_by_client_id", "cancel_order", "create_"]
                .iter()
                .any(|p| c.starts_with(p))
        })
        .collect()
}

#[test]
fn a_resting_open_is_cancelled_before_its_key_is_released() {
    let f = venue(vec![found("open", 0.0, None), found("canceled", 0.0, None)]);
    let m = restored(&f);
    cycles_until_release(&m);
    assert_eq!(
        venue_calls(&f),
        [
            format!("get_order_by_client_id {ID} BTC"),
            "cancel_order v1 BTC".to_owned(),
            format!("get_order_by_client_id {ID} BTC"),
        ]
    );
    assert!(!m.book().order_pending("BTC"), "released once cancelled");
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
}

#[test]
fn a_resting_open_that_partly_filled_is_tracked_with_what_filled_and_its_stop() {
    let f = venue(vec![
        found("open", 0.5, Some(99.0)),
        found("canceled", 0.5, Some(99.0)),
    ]);
    f.0.lock().price = Some(99.0); // no exit rule trades it meanwhile
    let m = restored(&f);
    cycles_until_release(&m);
    let (p, _) = m.book().get("BTC").expect("tracked from the order");
    let p = p.lock();
    assert_eq!((p.amount, p.entry_price, p.leverage), (0.5, 99.0, 5.0));
    assert!((p.stop_loss - 99.0 * 0.9).abs() < 1e-9, "{}", p.stop_loss);
    drop(p);
    assert!(!m.book().order_pending("BTC"));
    assert!(
        !venue_calls(&f).iter().any(|c| c.starts_with("create_")),
        "nothing sent: {:?}",
        f.calls()
    );
}

#[test]
fn a_resting_open_that_cannot_be_cancelled_keeps_its_key_and_is_asked_again() {
    let resting = || found("open", 0.0, None);
    let f = venue(vec![
        resting(),
        resting(),
        resting(),
        resting(),
        resting(),
        found("canceled", 0.0, None),
    ]);
    {
        let mut s = f.0.lock();
        s.cancel_answers.push_back(Ok(false));
        s.cancel_answers.push_back(Ok(false));
    }
    let m = restored(&f);
    cycles_until_release(&m);
    assert!(m.book().order_pending("BTC"), "it may still fill");
    // The bot's open reads the list, asks again, cannot cancel it either: nothing is sent.
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert!(m.book().order_pending("BTC"));
    assert!(
        !venue_calls(&f).iter().any(|c| c.starts_with("create_")),
        "no second open while the first may rest: {:?}",
        f.calls()
    );
    // The next list asks again; this cancel goes through.
    m.update_all().unwrap();
    assert!(!m.book().order_pending("BTC"));
    assert_eq!(
        venue_calls(&f)
            .iter()
            .filter(|c| c.starts_with("cancel_order"))
            .count(),
        3
    );
}

/// The restored open (long 2 at 100) whose lists never show it and whose look-up answers
/// `lookup`, after the cycles that release a silent open: the book's BTC amount and entry.
fn tracked_after_release(lookup: OrderLookup) -> (Fake, Manager<u32>, (f64, f64)) {
    let f = venue(vec![lookup]);
    let m = restored(&f);
    cycles_until_release(&m);
    let (p, _) = m.book().get("BTC").expect("tracked from the order");
    let held = {
        let p = p.lock();
        (p.amount, p.entry_price)
    };
    (f, m, held)
}

#[test]
fn an_open_whose_order_filled_is_tracked_though_the_lists_lag_it() {
    let (f, m, held) = tracked_after_release(found("closed", 2.0, Some(100.5)));
    assert_eq!(held, (2.0, 100.5));
    assert!(!venue_calls(&f)
        .iter()
        .any(|c| c.starts_with("cancel_order")));
    // The lists still lag: the fill is not dropped before the outcome rules say so.
    m.update_all().unwrap();
    assert!(m.book().get("BTC").is_some());
}

#[test]
fn an_open_the_venue_never_had_is_released() {
    let f = venue(vec![]); // every lookup: not found
    let m = restored(&f);
    cycles_until_release(&m);
    assert!(!m.book().order_pending("BTC"));
    assert_eq!(
        venue_calls(&f),
        [format!("get_order_by_client_id {ID} BTC")]
    );
}

/// A limit open of BTC long.
fn limit_request() -> super::OpenRequest<'static> {
    super::OpenRequest {
        use_limit: true,
        ..open_request("BTC", "BUY")
    }
}

/// Ctrl+C while the limit open waits for its fill: the order rests on the book, the interrupt
/// propagates and the key stays reserved.
fn interrupted_limit_open(f: &Fake, m: &Manager<u32>) {
    f.0.lock().fill_answers.push_back(Err(interrupt()));
    assert!(
        m.open_position(&limit_request()).is_err(),
        "the interrupt propagates"
    );
    assert!(m.book().order_pending("BTC"));
}

#[test]
fn an_interrupted_limit_open_leaves_no_order_resting() {
    let f = venue(vec![]);
    let m = manager(&f, ManagerConfig::default());
    interrupted_limit_open(&f, &m);
    let sent = f
        .calls()
        .into_iter()
        .find(|c| c.starts_with("create_limit_order"))
        .expect("the limit order went out");
    assert!(sent.starts_with("create_limit_order BTC buy"), "{sent}");
    let id = m.book().open_intent("BTC").and_then(|i| i.client_order_id);
    let id = id.expect("the order carried a client id");
    {
        let mut s = f.0.lock();
        s.lookup_answers.push_back(Ok(found("open", 0.0, None)));
        s.lookup_answers.push_back(Ok(found("canceled", 0.0, None)));
    }
    cycles_until_release(&m);
    assert!(
        f.calls().contains(&"cancel_order v1 BTC".to_owned()),
        "cancelled: {:?}",
        f.calls()
    );
    assert!(f
        .calls()
        .contains(&format!("get_order_by_client_id {id} BTC")));
    assert!(!m.book().order_pending("BTC"));
}

/// The reasons of `m`'s `closed` events, in order.
fn closed_reasons(m: &Manager<u32>) -> Vec<String> {
    events_of(m, EventKind::Closed)
        .into_iter()
        .map(|e| e.reason)
        .collect()
}

/// BTC long `amount` at 100 (10x, stop 95, target 130).
fn btc_long(m: &Manager<u32>, amount: f64) -> crate::book::SharedPosition {
    crate::book::share(crate::position::PositionState::new(
        "BTC",
        "long",
        100.0,
        amount,
        10.0,
        95.0,
        Some(130.0),
        m.now(),
    ))
}

/// `m` takes back BTC's `op` sent with `ID` at a size of `before` (its process died with the
/// order out).
fn restore_change(m: &Manager<u32>, op: Op, before: f64, reason: &str, price: f64) {
    let order = SentOrder {
        reference: ID.to_owned(),
        sent_at: crate::clock::Timestamp(1_735_689_000_000_000),
        intent: SentIntent::Change {
            op,
            before,
            client_order_id: Some(ID.to_owned()),
            reason: reason.to_owned(),
            price: Some(price),
            target_bit: 0,
        },
    };
    assert_eq!(
        m.restore_orders(vec![(Key::parse("BTC"), order)]).changes,
        1
    );
}

/// A manager that tracks BTC long 3 at 100 and took back its close sent with `ID` (its process
/// died with the close out); the lists show BTC at 3 whatever happened (they lag).
fn restored_close(f: &Fake) -> Manager<u32> {
    restore_close(manager(f, ManagerConfig::default()), f)
}

/// `m` after taking back the close of [`restored_close`].
fn restore_close(m: Manager<u32>, f: &Fake) -> Manager<u32> {
    m.book().insert("BTC", btc_long(&m, 3.0), 1);
    restore_change(&m, Op::Close, 3.0, "stop_loss", 94.0);
    f.0.lock().positions = vec![listed("BTC", "long", 3.0, 100.0)];
    m
}

/// A manager whose outcome rules wait a minute (`outcome_grace_seconds=60`) on `clock`.
fn graced(f: &Fake, clock: &Arc<ManualClock>) -> Manager<u32> {
    let config = ManagerConfig {
        outcome_grace_seconds: 60.0,
        ..ManagerConfig::default()
    };
    manager_with_clock(f, config, clock.clone())
}

/// A manager with a minute's grace that took back BTC's close (`restore_close`), whose lists
/// lag it, after a first round of the outcome rules: the close was looked up, and the venue
/// said it filled.
fn a_filled_close_looked_up() -> (Fake, Arc<ManualClock>, Manager<u32>) {
    let f = venue(vec![found("closed", 3.0, Some(94.0))]);
    let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
    let m = restore_close(graced(&f, &clock), &f);
    first_round(&m, &clock);
    (f, clock, m)
}

/// Runs the lists of a first round of the outcome rules (a minute apart): the close is then
/// looked up, and the venue says it filled.
fn first_round(m: &Manager<u32>, clock: &ManualClock) {
    m.update_all().unwrap();
    clock.advance(61.0);
    m.update_all().unwrap();
    assert!(
        matches!(m.book().activity("BTC"), Some(Activity::Unknown(u)) if u.filled),
        "held: {:?}",
        m.book().activity("BTC")
    );
}

#[test]
fn a_close_that_filled_is_not_taken_as_not_executed_while_the_lists_lag_it() {
    let (f, _clock, m) = a_filled_close_looked_up();
    for _ in 0..3 {
        m.update_all().unwrap();
    }
    assert!(matches!(m.book().activity("BTC"), Some(Activity::Unknown(u)) if u.filled));
    assert_eq!(
        m.close_position("BTC", "manual").unwrap(),
        CloseOutcome::Unverified
    );
    assert_eq!(orders_sent(&f), 0, "no second close: {:?}", f.calls());
    let lookups = |f: &Fake| {
        f.calls()
            .iter()
            .filter(|c| c.starts_with("get_order_by_client_id"))
            .count()
    };
    assert_eq!(lookups(&f), 1, "asked once: the venue said it filled");
    // The list catches up: closed once, with the close's reason.
    f.0.lock().positions = vec![listed("ETH", "long", 1.0, 10.0)];
    m.update_all().unwrap();
    assert!(m.book().get("BTC").is_none());
    assert_eq!(closed_reasons(&m), ["stop_loss"]);
    assert_eq!(orders_sent(&f), 0);
}

#[test]
fn a_filled_change_the_lists_never_show_is_settled_at_the_listed_size_after_the_rules_wait_again() {
    // The venue says the close filled, yet the lists keep showing the position at its size
    // from before over a second round of the outcome rules: something changed the position
    // after the fill (opened again by hand, say). The list is believed then — the position is
    // managed at the listed size — and the key is not held forever.
    let (_f, clock, m) = a_filled_close_looked_up();
    m.update_all().unwrap();
    clock.advance(61.0);
    m.update_all().unwrap();
    assert!(matches!(m.book().activity("BTC"), Some(Activity::Idle)));
    let (p, _) = m.book().get("BTC").expect("still tracked");
    assert_eq!(p.lock().amount, 3.0);
}

#[test]
fn a_close_the_venue_never_had_is_not_executed_and_may_be_sent() {
    let f = venue(vec![]); // not found
    let m = restored_close(&f);
    cycles_until_release(&m);
    assert!(matches!(m.book().activity("BTC"), Some(Activity::Idle)));
    assert_eq!(
        f.calls()
            .iter()
            .filter(|c| c.starts_with("get_order_by_client_id"))
            .count(),
        1
    );
    assert!(matches!(
        m.close_position("BTC", "manual").unwrap(),
        CloseOutcome::Closed(_)
    ));
    assert_eq!(orders_sent(&f), 1);
}

#[test]
fn a_close_not_final_yet_is_asked_again_at_the_next_list() {
    let f = venue(vec![found("open", 0.0, None), found("canceled", 0.0, None)]);
    let m = restored_close(&f);
    cycles_until_release(&m);
    assert!(matches!(
        m.book().activity("BTC"),
        Some(Activity::Unknown(_))
    ));
    m.update_all().unwrap();
    assert!(matches!(m.book().activity("BTC"), Some(Activity::Idle)));
    assert_eq!(orders_sent(&f), 0);
}

/// A limit open of BTC whose order (`l2`) rests unfilled through the wait and whose cancel
/// does not go through: the open fails, its key stays reserved and the bot's next open of BTC
/// sends nothing.
fn limit_open_left_resting(f: &Fake, m: &Manager<u32>) {
    {
        let mut s = f.0.lock();
        s.fill_answers
            .push_back(Ok(report(Some("l2"), "open", Some(0.0), None)));
        s.cancel_answers.push_back(Ok(false));
    }
    assert!(
        !m.open_position(&limit_request()).unwrap(),
        "nothing tracked"
    );
    assert!(m.book().order_pending("BTC"), "the order may still fill");
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(orders_sent(f), 0, "no order beside it: {:?}", f.calls());
}

#[test]
fn a_limit_open_whose_cancel_fails_keeps_its_key_until_the_order_is_gone() {
    let f = venue(vec![]);
    let m = manager(&f, ManagerConfig::default());
    limit_open_left_resting(&f, &m);
    // The lists keep showing nothing: the order is asked for and cancelled, then the key is free.
    {
        let mut s = f.0.lock();
        s.lookup_answers.push_back(Ok(found("open", 0.0, None)));
        s.lookup_answers.push_back(Ok(found("canceled", 0.0, None)));
    }
    cycles_until_release(&m);
    assert!(!m.book().order_pending("BTC"));
    let cancels = f
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("cancel_order"))
        .collect::<Vec<_>>();
    assert_eq!(cancels, ["cancel_order l2 BTC", "cancel_order v1 BTC"]);
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
}

#[test]
fn an_open_whose_lookup_cannot_reach_the_venue_keeps_its_key_and_is_asked_again() {
    let f = venue(vec![]);
    {
        let mut s = f.0.lock();
        s.lookup_answers.push_back(Err(network_error()));
        s.lookup_answers.push_back(Ok(found("canceled", 0.0, None)));
    }
    let m = restored(&f);
    cycles_until_release(&m);
    assert!(m.book().order_pending("BTC"), "it may still rest and fill");
    assert_eq!(orders_sent(&f), 0);
    // The bot's open reads the list, which asks again: this time the venue says the order
    // ended unfilled, so the key is free and this open goes out.
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(orders_sent(&f), 1);
    let lookups = f
        .calls()
        .iter()
        .filter(|c| c.starts_with("get_order_by_client_id"))
        .count();
    assert_eq!(lookups, 2);
}

#[test]
fn a_close_whose_lookup_cannot_reach_the_venue_stays_held() {
    let f = venue(vec![]);
    f.0.lock().lookup_answers.push_back(Err(network_error()));
    let m = restored_close(&f);
    cycles_until_release(&m);
    assert!(matches!(
        m.book().activity("BTC"),
        Some(Activity::Unknown(_))
    ));
    m.update_all().unwrap(); // asked again: not found, so not executed
    assert!(matches!(m.book().activity("BTC"), Some(Activity::Idle)));
    assert_eq!(orders_sent(&f), 0);
}

// --- The bot's own client: no client ids, so a limit order that may rest is known by the
// exchange's id (the limit answer's), cancelled and read by it before the key is free.

/// A venue without client order ids (the bot's client); its lists show ETH only.
fn bots_venue() -> Fake {
    let f = venue(vec![]);
    f.0.lock().client_ids = false;
    f
}

/// The calls that cancel or read the order `l2`.
fn order_calls(f: &Fake) -> Vec<String> {
    f.calls()
        .into_iter()
        .filter(|c| c.starts_with("cancel_order") || c.starts_with("wait_for_order_fill"))
        .collect()
}

#[test]
fn the_bots_client_limit_open_whose_cancel_fails_is_cancelled_before_its_key_is_free() {
    let f = bots_venue();
    let m = manager(&f, ManagerConfig::default());
    limit_open_left_resting(&f, &m);
    let intent = m.book().open_intent("BTC").unwrap();
    assert_eq!(
        intent.client_order_id, None,
        "no client id: known by the exchange's id"
    );
    // The lists keep showing nothing: the order is cancelled, then read (ended unfilled).
    f.0.lock()
        .fill_answers
        .push_back(Ok(report(Some("l2"), "canceled", Some(0.0), None)));
    cycles_until_release(&m);
    assert!(!m.book().order_pending("BTC"));
    assert_eq!(
        order_calls(&f),
        [
            // the open's wait for its fill: the original's 10 s
            "wait_for_order_fill l2 BTC",
            "cancel_order l2 BTC",
            "cancel_order l2 BTC",
            // the check before the key is free: 1 s at most, never the fill's 10 s
            "wait_for_order_fill l2 BTC check"
        ]
    );
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
}

#[test]
fn the_bots_client_resting_limit_is_journaled_with_the_exchanges_id_and_cancelled_after_a_restart()
{
    // The journal's row of the open is written again with the exchange's id as soon as the
    // limit answer gives it (before the wait for the fill: a process killed there leaves it),
    // and kept once the order is left resting (the outcome is unknown).
    let f = bots_venue();
    let (m, journal) = journaled(&f);
    limit_open_left_resting(&f, &m);
    assert_eq!(
        journal.log()[..3],
        ["sent BTC open", "sent BTC open", "settled BTC"],
        "the first row before the limit order, the second after its answer"
    );
    let rows = journal.sent.lock().clone();
    let (key, row) = rows.last().expect("written").clone();
    assert_eq!(key.as_str(), "BTC");
    let SentIntent::Open {
        intent,
        resting_order_id,
    } = &row.intent
    else {
        panic!("an open's row: {row:?}")
    };
    assert_eq!(resting_order_id.as_deref(), Some("l2"));
    assert_eq!((intent.amount, intent.client_order_id.clone()), (1.0, None));
    assert_eq!(
        journal.log().last().map(String::as_str),
        Some("settled BTC")
    );
    assert!(
        m.book().order_pending("BTC"),
        "so the journal keeps the row"
    );
    let json = serde_json::to_string(&row.intent).unwrap();
    assert!(json.contains(r#""resting_order_id":"l2""#), "{json}");
    let back: SentIntent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, row.intent);
    drop(m);

    // The process died: a new manager takes the row back, and before the lists' silence frees
    // the key the order is cancelled and read by that id, as the first manager would have.
    let f = bots_venue();
    let m = manager(&f, ManagerConfig::default());
    assert_eq!(m.restore_orders(vec![(key, row)]).opens, 1);
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    f.0.lock()
        .fill_answers
        .push_back(Ok(report(Some("l2"), "canceled", Some(0.0), None)));
    cycles_until_release(&m);
    assert_eq!(
        order_calls(&f),
        ["cancel_order l2 BTC", "wait_for_order_fill l2 BTC check"]
    );
    assert!(!m.book().order_pending("BTC"));
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
}

#[test]
fn a_journal_row_of_an_older_version_has_no_resting_order() {
    let old = r#"{"kind":"open","side":"long","amount":2.0,"leverage":5.0,"stop_loss_percentage":0.1,"price":100.0,"client_order_id":null}"#;
    let intent: SentIntent = serde_json::from_str(old).unwrap();
    assert_eq!(intent, open_sent("r", None).intent);
    let json = serde_json::to_string(&intent).unwrap();
    assert!(!json.contains("resting_order_id"), "{json}");
}

#[test]
fn the_bots_client_limit_open_that_filled_after_its_failed_cancel_is_tracked() {
    let f = bots_venue();
    let m = manager(&f, ManagerConfig::default());
    limit_open_left_resting(&f, &m);
    // It filled meanwhile (the lists lag it): the cancel is refused, the status says filled.
    {
        let mut s = f.0.lock();
        s.cancel_answers.push_back(Ok(false));
        s.fill_answers
            .push_back(Ok(report(Some("l2"), "closed", Some(1.0), Some(99.9))));
    }
    cycles_until_release(&m);
    let (p, _) = m.book().get("BTC").expect("tracked from the order");
    let p = p.lock().clone();
    assert_eq!(
        (p.side.as_str(), p.amount, p.entry_price),
        ("long", 1.0, 99.9)
    );
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(orders_sent(&f), 0);
}

#[test]
fn the_bots_client_limit_open_still_resting_keeps_its_key_and_is_cancelled_again() {
    let f = bots_venue();
    let m = manager(&f, ManagerConfig::default());
    limit_open_left_resting(&f, &m);
    // Each list that would release the key cancels and reads the order again: while the
    // cancel fails and the order still rests, or its status cannot be read, the key stays.
    {
        let mut s = f.0.lock();
        for i in 0..8 {
            s.cancel_answers.push_back(Ok(false));
            s.fill_answers.push_back(Ok(if i % 2 == 0 {
                report(Some("l2"), "open", Some(0.0), None)
            } else {
                OrderAnswer::Missing
            }));
        }
    }
    cycles_until_release(&m);
    m.update_all().unwrap();
    m.update_all().unwrap();
    assert!(m.book().order_pending("BTC"), "it may still rest");
    let cancels = |f: &Fake| {
        order_calls(f)
            .iter()
            .filter(|c| c.starts_with("cancel"))
            .count()
    };
    assert!(
        cancels(&f) >= 4,
        "asked at every list: {:?}",
        order_calls(&f)
    );
    assert_eq!(orders_sent(&f), 0);
    // The cancel goes through and the order ended unfilled: the key is free.
    {
        let mut s = f.0.lock();
        s.cancel_answers.clear();
        s.fill_answers.clear();
        s.fill_answers
            .push_back(Ok(report(Some("l2"), "canceled", Some(0.0), None)));
    }
    m.update_all().unwrap();
    assert!(!m.book().order_pending("BTC"));
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
}

#[test]
fn the_bots_client_interrupted_limit_open_leaves_no_order_resting() {
    let f = bots_venue();
    let m = manager(&f, ManagerConfig::default());
    interrupted_limit_open(&f, &m);
    f.0.lock()
        .fill_answers
        .push_back(Ok(report(Some("l2"), "canceled", Some(0.0), None)));
    cycles_until_release(&m);
    assert!(
        f.calls().contains(&"cancel_order l2 BTC".to_owned()),
        "{:?}",
        f.calls()
    );
    assert!(!m.book().order_pending("BTC"));
}

/// A manager that took back a scale-out of 1 of BTC's 2 contracts (its process died with the
/// order out) on a fill of its own that no list has shown yet (the lists show ETH only).
fn restored_scale_out_of_an_unlisted_fill(f: &Fake) -> Manager<u32> {
    let m = manager(f, ManagerConfig::default());
    let _ = m
        .book()
        .finish_open(&Key::parse("BTC"), btc_long(&m, 2.0), 1, true);
    restore_change(&m, Op::ScaleOut, 2.0, "scale_out", 110.0);
    m
}

#[test]
fn a_list_that_lags_a_fill_does_not_settle_a_scale_out_of_it_as_a_close() {
    // The list that omits BTC may lag the open's fill, and a scale-out of half of it closes
    // nothing: the absence is judged by the removal rules (the outcome rules for an unlisted
    // fill), and the list that shows the scale-out's effect settles it.
    let f = venue(vec![]);
    let m = restored_scale_out_of_an_unlisted_fill(&f);
    m.update_all().unwrap();
    assert!(
        matches!(m.book().activity("BTC"), Some(Activity::Unknown(_))),
        "held: {:?}",
        m.book().activity("BTC")
    );
    assert!(closed_reasons(&m).is_empty());
    f.0.lock().positions = vec![
        listed("BTC", "long", 1.0, 100.0),
        listed("ETH", "long", 1.0, 10.0),
    ];
    m.update_all().unwrap();
    let (p, _) = m.book().get("BTC").expect("still tracked");
    assert_eq!(p.lock().amount, 1.0);
    assert!(closed_reasons(&m).is_empty());
    assert_eq!(events_of(&m, EventKind::PartialClose).len(), 1);
    assert_eq!(orders_sent(&f), 0);

    // The lists never show it: closed on the outcome rules' count of lists, once.
    let f = venue(vec![]);
    let m = restored_scale_out_of_an_unlisted_fill(&f);
    cycles_until_release(&m);
    assert!(m.book().get("BTC").is_none());
    assert_eq!(closed_reasons(&m), ["scale_out"]);
}

#[test]
fn a_side_flip_replaces_a_position_whose_order_has_an_unknown_outcome() {
    // The venue crash run killed after answers (bingx one-way seed 1, long): a scale-out's
    // answer was lost, and meanwhile the position was reversed by hand. Lists showing the
    // symbol on the other side only were left alone while the outcome was unknown (the
    // resolution compares sizes on the tracked side), so the flip was never seen; the next
    // reversal back brought the tracked side again, taken for the old position, and two ends
    // went unrecorded. Whatever the order did, the tracked side is gone: a side flip.
    for op in [Op::ScaleOut, Op::Close, Op::ScaleIn] {
        let f = venue(vec![]);
        let m = manager(&f, ManagerConfig::default());
        let old = btc_long(&m, 2.0);
        let _ = m
            .book()
            .finish_open(&Key::parse("BTC"), old.clone(), 1, false);
        restore_change(&m, op, 2.0, "exit", 110.0);
        f.0.lock().positions = vec![
            listed("BTC", "short", 3.0, 100.0),
            listed("ETH", "long", 1.0, 10.0),
        ];
        m.update_all().unwrap();
        let (p, _) = m
            .book()
            .get("BTC")
            .unwrap_or_else(|| panic!("{op:?}: BTC not tracked"));
        assert!(!Arc::ptr_eq(&p, &old), "{op:?}");
        let listed = {
            let state = p.lock();
            (state.side.clone(), state.amount)
        };
        assert_eq!(listed, ("short".to_owned(), 3.0), "{op:?}");
        assert!(matches!(m.book().activity("BTC"), Some(Activity::Idle)));
        let kinds: Vec<_> = m
            .events()
            .all()
            .iter()
            .filter(|e| e.symbol == "BTC")
            .map(|e| (e.kind, e.reason.clone()))
            .collect();
        assert_eq!(
            kinds[kinds.len() - 2..],
            [
                (EventKind::Removed, "side_flipped".to_owned()),
                (EventKind::Imported, "side_flipped".to_owned())
            ],
            "{op:?}: {kinds:?}"
        );
        assert_eq!(orders_sent(&f), 0, "{op:?}");
    }
}

#[test]
fn a_list_lagging_a_flip_with_the_replaced_side_changed_by_an_unknown_order_is_counted() {
    // The venue crash run killed after answers (mexc one-way seed 10): a scale-in's answer was
    // lost, the position was reversed by hand, and the list lagging the reversal showed the old
    // side grown by that scale-in (another size and entry). Taken for a new position, it was
    // imported, and the next true list flipped again: an end too many. When an order of the
    // manager's for the replaced position had an unknown outcome, any listing of its side is
    // counted first.
    let f = venue(vec![]);
    let m = manager(&f, ManagerConfig::default());
    let _ = m
        .book()
        .finish_open(&Key::parse("BTC"), btc_long(&m, 2.0), 1, false);
    restore_change(&m, Op::ScaleIn, 2.0, "scale_in", 100.0);
    let eth = listed("ETH", "long", 1.0, 10.0);
    f.0.lock().positions = vec![listed("BTC", "short", 3.0, 100.0), eth.clone()];
    m.update_all().unwrap();
    let short = m.book().get("BTC").unwrap().0;
    f.0.lock().positions = vec![listed("BTC", "long", 3.0, 100.5), eth.clone()];
    m.update_all().unwrap();
    f.0.lock().positions = vec![listed("BTC", "short", 3.0, 100.0), eth];
    m.update_all().unwrap();
    assert!(Arc::ptr_eq(&m.book().get("BTC").unwrap().0, &short));
    let imported = events_of(&m, EventKind::Imported);
    assert_eq!(imported.len(), 1, "only the flip's short: {imported:?}");
    assert_eq!(orders_sent(&f), 0);
}

#[test]
fn an_open_whose_lookup_reports_more_filled_than_ordered_is_settled_by_the_list() {
    // An audit on 2026-12-07 (a malformed look-up through ccxt: `executedQty` 999 for an order
    // of 3): the open's answer was lost, its look-up reported an impossible fill, and the open
    // was taken as not done ("FAILED to open"); the filled position was later imported as a
    // foreign one, with the default leverage and stop instead of the open's.
    let f = venue(vec![found("closed", 999.0, Some(100.0))]);
    let state = f.0.clone();
    {
        let mut s = f.0.lock();
        s.market_answers.push_back(Err(network_error()));
        s.during_order = Some(Box::new(move || {
            // The venue filled the order: its lists show it from now on.
            state
                .lock()
                .positions
                .push(listed("BTC", "long", 1.0, 100.0));
        }));
    }
    let m = manager(&f, ManagerConfig::default());
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    let (p, _) = m.book().get("BTC").expect("tracked by its own open");
    let p = p.lock();
    assert_eq!((p.amount, p.leverage), (1.0, 10.0));
    assert!(
        (p.stop_loss - 95.0).abs() < 1e-9,
        "the open's 5 % stop: {}",
        p.stop_loss
    );
    drop(p);
    let creates = venue_calls(&f)
        .into_iter()
        .filter(|c| c.starts_with("create_"))
        .count();
    assert_eq!(creates, 1);
}

#[test]
fn an_unknown_open_whose_late_lookup_reports_more_filled_than_ordered_is_tracked_as_ordered() {
    // The same impossible look-up (999 filled of 2), reached after the lists have lagged the
    // open for `outcome_confirmations` reads: the order did fill, so the open is tracked at
    // what was ordered, not dropped as "did not go through" (its key then free for a second
    // order) nor taken at 999.
    let (f, _m, held) = tracked_after_release(found("closed", 999.0, Some(100.5)));
    assert_eq!(held, (2.0, 100.5));
    assert!(!venue_calls(&f).iter().any(|c| c.starts_with("create_")));
}

/// [`restored_close`] on a venue whose lists are empty answers (what a failed read of the
/// bot's own client gives too) and whose lookups answer `lookups`.
fn a_close_only_empty_answers_omit(lookups: Vec<OrderLookup>) -> (Fake, Manager<u32>) {
    let f = venue(lookups);
    let m = restored_close(&f);
    f.0.lock().positions = vec![];
    (f, m)
}

fn lookups(f: &Fake) -> usize {
    f.calls()
        .iter()
        .filter(|c| c.starts_with("get_order_by_client_id"))
        .count()
}

#[test]
fn a_close_only_empty_answers_omit_is_looked_up_and_judged_as_a_removal_if_it_never_went_out() {
    // The venue run's Bitget hedge seed 26: a scale-out refused with a 503 before it was
    // placed, then empty answers, then the position listed added to by hand. Settled as closed
    // by its order on the empty answers, the larger listing was taken for a new position: an
    // end too many.
    let (f, m) = a_close_only_empty_answers_omit(vec![]); // not found
    for _ in 0..4 {
        m.update_all().unwrap();
    }
    assert_eq!(lookups(&f), 1, "asked once: {:?}", f.calls());
    assert!(closed_reasons(&m).is_empty(), "not closed by its order");
    assert!(
        m.book().get("BTC").is_none(),
        "removed on the empty answers"
    );
    assert_eq!(events_of(&m, EventKind::Removed).len(), 1);
    // The empty answers were failed reads: the position is listed again, added to by hand.
    f.0.lock().positions = vec![listed("BTC", "long", 4.0, 100.2)];
    m.update_all().unwrap();
    let (p, _) = m.book().get("BTC").expect("restored, added to");
    assert_eq!(p.lock().amount, 4.0);
    assert_eq!(events_of(&m, EventKind::Restored).len(), 1);
    assert!(closed_reasons(&m).is_empty());
    assert_eq!(orders_sent(&f), 0);
}

/// Runs lists of [`a_close_only_empty_answers_omit`] until its close is settled as closed by
/// its order (asked for once, closed with its reason), then a list showing the very position
/// again: whether that list put it back.
fn settled_closed_then_listed_again(f: &Fake, m: &Manager<u32>) -> bool {
    for _ in 0..4 {
        m.update_all().unwrap();
    }
    assert_eq!(lookups(f), 1, "asked once: {:?}", f.calls());
    assert_eq!(closed_reasons(m), ["stop_loss"]);
    assert!(m.book().get("BTC").is_none());
    f.0.lock().positions = vec![listed("BTC", "long", 3.0, 100.0)];
    m.update_all().unwrap();
    assert_eq!(orders_sent(f), 0);
    m.book().get("BTC").is_some()
}

#[test]
fn a_close_only_empty_answers_omit_that_the_venue_says_filled_is_the_orders_own_end() {
    let (f, m) = a_close_only_empty_answers_omit(vec![found("closed", 3.0, Some(94.0))]);
    // Kept as the order's own end: a list showing the very position again may lag the close,
    // and is believed only as the outcome rules say (a plain tombstone would be restored now).
    assert!(
        !settled_closed_then_listed_again(&f, &m),
        "a lagging list restores nothing"
    );
}

#[test]
fn a_close_only_empty_answers_omit_whose_lookup_cannot_reach_the_venue_stays_held() {
    let (f, m) = a_close_only_empty_answers_omit(vec![]);
    f.0.lock().lookup_answers.push_back(Err(network_error()));
    let mut cycles = 0;
    while lookups(&f) == 0 {
        m.update_all().unwrap();
        cycles += 1;
        assert!(cycles < 10, "never looked up: {:?}", f.calls());
    }
    assert!(
        matches!(m.book().activity("BTC"), Some(Activity::Unknown(_))),
        "held while the venue cannot be asked: {:?}",
        m.book().activity("BTC")
    );
    m.update_all().unwrap(); // asked again: not found, so not executed
    assert_eq!(lookups(&f), 2);
    assert!(closed_reasons(&m).is_empty());
    assert_eq!(orders_sent(&f), 0);
}

#[test]
fn a_close_only_empty_answers_omit_whose_lookup_cannot_tell_is_settled_as_the_lists_say() {
    // An answer ccxt does not map, say (HTX's system error): the lists settle it, closed by
    // its order and kept restorable, as before the lookup.
    let (f, m) = a_close_only_empty_answers_omit(vec![]);
    f.0.lock()
        .lookup_answers
        .push_back(Err(CoreError::Exchange {
            kind: "ExchangeError".into(),
            message: "System error, please try again later.".into(),
        }));
    // A plain tombstone: the very position listed again (the answers were failed reads) is
    // put back at once.
    assert!(settled_closed_then_listed_again(&f, &m), "restored");
}
