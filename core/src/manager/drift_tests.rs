//! Reconciliation beyond presence: phantom entries, the grace period, sizes and sides that
//! change on the exchange, close reasons from the evidence, tombstone expiry, contract sizes and
//! the event sink.

use std::sync::Arc;

use parking_lot::Mutex;

use super::testing::{listed, manager, manager_with_clock, Fake};
use super::{Manager, ManagerConfig};
use crate::book::{share, SharedPosition};
use crate::clock::{ManualClock, Timestamp};
use crate::events::EventKind;
use crate::exchange::{Field, RawEntry};
use crate::position::PositionState;

const T0: Timestamp = Timestamp(1_735_689_600_000_000);

fn fake(entries: Vec<RawEntry>, price: f64) -> Fake {
    let fake = Fake::default();
    {
        let mut s = fake.0.lock();
        s.positions = entries;
        s.price = Some(price);
        s.close_ok = true;
    }
    fake
}

/// A manager that tracked BTC long 1 (stops 95 / 115) and took the short 3 at 100 the list now
/// shows in its place (a side flip): the fake, the manager, the long and the short.
fn flipped() -> (Fake, Manager<u32>, SharedPosition, SharedPosition) {
    let f = fake(vec![listed("BTC", "short", 3.0, 100.0)], 100.0);
    let m = manager(&f, ManagerConfig::default());
    let old = position("BTC", "long", 1.0, 95.0, 115.0);
    m.book().insert("BTC", old.clone(), 1);
    m.update_all().unwrap();
    let short = m.book().get("BTC").map(|(p, _)| p).unwrap_or_else(|| {
        panic!("not tracked: {:?}", kinds(&m));
    });
    (f, m, old, short)
}

/// The kinds and reasons of `m`'s events, oldest first.
fn kinds(m: &Manager<u32>) -> Vec<(EventKind, String)> {
    m.events()
        .all()
        .iter()
        .map(|e| (e.kind, e.reason.clone()))
        .collect()
}

fn position(symbol: &str, side: &str, amount: f64, stop: f64, tp: f64) -> SharedPosition {
    share(PositionState::new(
        symbol,
        side,
        100.0,
        amount,
        10.0,
        stop,
        Some(tp),
        T0,
    ))
}

fn edit(entry: RawEntry, f: impl FnOnce(&mut crate::exchange::RawPosition)) -> RawEntry {
    let RawEntry::Position(mut raw) = entry else {
        unreachable!()
    };
    f(&mut raw);
    RawEntry::Position(raw)
}

fn last_event(m: &super::Manager<u32>) -> crate::events::Event {
    m.events().all().pop().expect("an event")
}

#[test]
fn phantom_entries_neither_keep_nor_import_a_position() {
    let zero = edit(listed("TON", "long", 1.0, 100.0), |r| {
        r.contracts = Field::Number(0.0)
    });
    let sideless = edit(listed("XRP", "long", 2.0, 100.0), |r| r.side = Field::Null);
    let f = fake(vec![zero, sideless], 100.0);
    let m = manager(&f, ManagerConfig::default());
    m.book()
        .insert("TON", position("TON", "long", 1.0, 95.0, 115.0), 1);
    m.update_all().unwrap();
    assert!(
        m.book().is_empty(),
        "a zero-size entry confirms the absence"
    );
    assert_eq!(m.sync_existing_positions().unwrap(), 0);
    assert!(m.book().is_empty());
}

#[test]
fn a_grace_period_keeps_a_missing_position_until_it_has_passed() {
    let f = fake(vec![], 100.0);
    let clock = Arc::new(ManualClock::new(T0));
    let config = ManagerConfig {
        missing_confirmations: 2,
        missing_grace_seconds: 60.0,
        ..ManagerConfig::default()
    };
    let m = manager_with_clock(&f, config, clock.clone());
    m.book()
        .insert("BTC", position("BTC", "long", 1.0, 95.0, 115.0), 1);
    m.update_all().unwrap();
    clock.advance(30.0);
    m.update_all().unwrap();
    m.update_all().unwrap();
    assert!(m.book().contains("BTC"), "three misses, but only 30 s");
    clock.advance(30.0);
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC"));
    let removed = last_event(&m);
    assert_eq!(removed.kind, EventKind::Removed);
    assert_eq!(removed.evidence.unwrap().missing, Some(4));
}

#[test]
fn a_size_change_on_the_exchange_resizes_the_book() {
    let f = fake(vec![listed("BTC", "long", 0.6, 100.0)], 100.0);
    let m = manager(&f, ManagerConfig::default());
    let p = position("BTC", "long", 1.0, 95.0, 115.0);
    m.book().insert("BTC", p.clone(), 1);
    m.update_all().unwrap();
    assert_eq!(p.lock().amount, 0.6);
    let e = m
        .events()
        .all()
        .into_iter()
        .find(|e| e.kind == EventKind::Resized)
        .expect("a resized event");
    assert_eq!(e.reason, "size_changed_externally");
    let ev = e.evidence.unwrap();
    assert_eq!(
        (ev.previous_amount, ev.exchange_contracts),
        (Some(1.0), Some(0.6))
    );
}

#[test]
fn a_size_the_manager_is_changing_is_not_resized_from_an_older_snapshot() {
    // The snapshot is requested before a scale-out and applied after it: it shows the old size.
    let f = fake(vec![listed("BTC", "long", 2.0, 100.0)], 100.0);
    let m = Arc::new(manager(&f, ManagerConfig::default()));
    let p = position("BTC", "long", 2.0, 95.0, 115.0);
    m.book().insert("BTC", p.clone(), 1);
    let inner = Arc::downgrade(&m);
    f.0.lock().during_fetch = Some(Box::new(move || {
        let m = inner.upgrade().unwrap();
        assert!(m
            .scale_out_position("BTC", (0.5, "0.5"), "scale_out")
            .unwrap()
            .is_some());
    }));
    m.update_all().unwrap();
    assert_eq!(
        p.lock().amount,
        1.5,
        "the older snapshot's 2.0 is not applied"
    );
    assert!(!m
        .events()
        .all()
        .iter()
        .any(|e| e.kind == EventKind::Resized));
}

#[test]
fn a_side_flip_closes_the_old_position_and_imports_the_new_one() {
    let (_f, m, old, now) = flipped();
    let events = kinds(&m);
    assert!(!Arc::ptr_eq(&now, &old));
    assert_eq!(now.lock().side, "short");
    assert_eq!(now.lock().amount, 3.0);
    assert_eq!(
        events,
        [
            (EventKind::Removed, "side_flipped".to_owned()),
            (EventKind::Imported, "side_flipped".to_owned())
        ]
    );
}

#[test]
fn a_flip_back_takes_the_outcome_rules_lists_and_names_the_flip() {
    let (f, m, old, short) = flipped();
    let tracked = |m: &Manager<u32>| m.book().get("BTC").unwrap().0;
    // A list lagging the flip shows the long again: counted, nothing changes; the short listed
    // again starts the count over.
    let long = || vec![listed("BTC", "long", 1.0, 100.0)];
    f.0.lock().positions = long();
    m.update_all().unwrap();
    assert!(
        Arc::ptr_eq(&tracked(&m), &short),
        "one list may lag the flip"
    );
    f.0.lock().positions = vec![listed("BTC", "short", 3.0, 100.0)];
    m.update_all().unwrap();
    f.0.lock().positions = long();
    m.update_all().unwrap();
    assert!(Arc::ptr_eq(&tracked(&m), &short), "the count started over");
    // Two lists in a row (outcome_confirmations): the flip was undone; the very long is back.
    m.update_all().unwrap();
    assert!(Arc::ptr_eq(&tracked(&m), &old));
    let kinds: Vec<_> = m
        .events()
        .all()
        .iter()
        .map(|e| (e.kind, e.reason.clone(), e.position.side.clone()))
        .collect();
    let flip = |kind, side: &str| (kind, "side_flipped".to_owned(), side.to_owned());
    assert_eq!(
        kinds,
        [
            flip(EventKind::Removed, "long"),
            flip(EventKind::Imported, "short"),
            flip(EventKind::Removed, "short"),
            flip(EventKind::Restored, "long"),
        ]
    );
}

#[test]
fn a_list_lagging_a_flip_with_the_replaced_position_reduced_is_counted_too() {
    // The venue crash run killed after answers (kucoinfutures one-way seed 7): a partial exit's
    // answer was lost, the position was reversed by hand, and the list lagging the reversal
    // showed the old side reduced by that exit. Taken for a new position, it was imported, and
    // the next true list flipped again: an end too many. A reduced listing of the replaced
    // position is weighed as the very one; believed, it comes back at the listed size.
    let (f, m, old, short) = flipped();
    f.0.lock().positions = vec![listed("BTC", "long", 0.5, 100.0)];
    m.update_all().unwrap();
    assert!(Arc::ptr_eq(&m.book().get("BTC").unwrap().0, &short));
    assert_eq!(
        kinds(&m).len(),
        2,
        "counted, nothing imported: {:?}",
        kinds(&m)
    );
    m.update_all().unwrap();
    let (back, _) = m.book().get("BTC").unwrap();
    assert!(Arc::ptr_eq(&back, &old));
    assert_eq!(back.lock().amount, 0.5);
    assert_eq!(
        kinds(&m)[2..],
        [
            (EventKind::Removed, "side_flipped".to_owned()),
            (EventKind::Restored, "side_flipped".to_owned()),
            (EventKind::Resized, "size_changed_externally".to_owned()),
        ]
    );
}

#[test]
fn another_position_on_the_replaced_side_is_a_new_reversal_at_once() {
    // The venue run's htx one-way seed 3 (long): reversed by hand twice within two ticks, the
    // second reversal's position was new on the replaced side. Counted like a list lagging the
    // flip, it was never tracked before the hand closed it: an end lost. The replaced
    // position's side is counted only when it is that very position (or it reduced), or when
    // an order of the manager's for it had an unknown outcome.
    let (f, m, _, _) = flipped();
    f.0.lock().positions = vec![listed("BTC", "long", 2.0, 100.4)];
    m.update_all().unwrap();
    let (now, _) = m.book().get("BTC").unwrap();
    let listed = {
        let state = now.lock();
        (state.side.clone(), state.amount)
    };
    assert_eq!(listed, ("long".to_owned(), 2.0));
    assert_eq!(
        kinds(&m)[2..],
        [
            (EventKind::Removed, "side_flipped".to_owned()),
            (EventKind::Imported, "side_flipped".to_owned())
        ]
    );
}

#[test]
fn a_flip_back_after_a_restart_from_a_state_file_restores_the_replaced_position() {
    let path = super::testing::temp_path("flip");
    let (f, m, _, _) = flipped();
    m.save_state(&path, |_, _| Ok(Default::default())).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("\"predecessor\"").count(), 1, "{text}");
    drop(m);

    let fresh = manager(&f, ManagerConfig::default());
    // Handles by side: the short tracked, the long kept as its predecessor.
    let loaded = fresh
        .load_state(&path, |_, _, p| {
            Ok(if p.lock().side == "long" { 20 } else { 30 })
        })
        .unwrap();
    assert_eq!(loaded, 1);
    let (short, handle) = fresh.book().get("BTC").unwrap();
    assert_eq!(handle, 30);
    let kept = fresh
        .book()
        .predecessor_of("BTC")
        .expect("the predecessor is back");
    assert_eq!(
        (kept.position.lock().side.as_str(), kept.handle),
        ("long", 20)
    );
    // Lists show the long again (the flip undone): after as many as before the restart, the
    // very position comes back.
    f.0.lock().positions = vec![listed("BTC", "long", 1.0, 100.0)];
    fresh.update_all().unwrap();
    assert!(Arc::ptr_eq(&fresh.book().get("BTC").unwrap().0, &short));
    fresh.update_all().unwrap();
    let (long, handle) = fresh.book().get("BTC").unwrap();
    assert!(Arc::ptr_eq(&long, &kept.position));
    assert_eq!(handle, 20);
    assert_eq!(
        kinds(&fresh),
        [
            (EventKind::Loaded, "state_file".to_owned()),
            (EventKind::Removed, "side_flipped".to_owned()),
            (EventKind::Restored, "side_flipped".to_owned()),
        ]
    );
    // Saved again, the short is the long's predecessor now.
    fresh
        .save_state(&path, |_, _| Ok(Default::default()))
        .unwrap();
    let file = crate::persist::load(&path).unwrap();
    let saved = file.positions[0].predecessor.as_ref().unwrap();
    assert_eq!(
        (saved.state.side.as_str(), saved.state.amount),
        ("short", 3.0)
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn vanish_with(
    side: &str,
    last_price: f64,
    liquidation: Option<f64>,
) -> (String, crate::events::Evidence) {
    let entry = edit(listed("BTC", side, 1.0, 100.0), |r| {
        if let Some(l) = liquidation {
            r.liquidation_price = Field::Number(l);
        }
    });
    let f = fake(vec![entry], 100.0);
    let m = manager(&f, ManagerConfig::default());
    m.book().insert(
        "BTC",
        position(
            "BTC",
            side,
            1.0,
            if side == "long" { 95.0 } else { 105.0 },
            if side == "long" { 115.0 } else { 85.0 },
        ),
        1,
    );
    // Listed once (the exchange's liquidation price is remembered), last seen at `last_price`.
    m.update_all().unwrap();
    let p = m.book().get("BTC").unwrap().0;
    p.lock().record_tick(T0, last_price);
    f.0.lock().positions.clear();
    m.update_all().unwrap();
    let e = last_event(&m);
    assert_eq!(e.kind, EventKind::Removed);
    (e.reason, e.evidence.unwrap())
}

#[test]
fn a_vanished_position_is_classified_from_the_evidence() {
    let (reason, ev) = vanish_with("long", 90.0, Some(91.0));
    assert_eq!(reason, "liquidation");
    assert_eq!(ev.liquidation_price, Some(91.0));
    assert_eq!(ev.last_price, Some(90.0));
    assert_eq!(
        vanish_with("long", 94.0, Some(80.0)).0,
        "stop_filled_on_exchange"
    );
    assert_eq!(
        vanish_with("long", 116.0, None).0,
        "take_profit_filled_on_exchange"
    );
    assert_eq!(
        vanish_with("long", 100.5, Some(80.0)).0,
        "closed_externally"
    );
    assert_eq!(vanish_with("short", 112.0, Some(110.0)).0, "liquidation");
    assert_eq!(
        vanish_with("short", 106.0, None).0,
        "stop_filled_on_exchange"
    );
    assert_eq!(
        vanish_with("short", 84.0, None).0,
        "take_profit_filled_on_exchange"
    );
}

#[test]
fn tombstones_expire() {
    let f = fake(vec![], 100.0);
    let clock = Arc::new(ManualClock::new(T0));
    let config = ManagerConfig {
        tombstone_ttl_seconds: 3600.0,
        ..ManagerConfig::default()
    };
    let m = manager_with_clock(&f, config, clock.clone());
    m.book()
        .insert("BTC", position("BTC", "long", 1.0, 95.0, 115.0), 1);
    m.update_all().unwrap();
    assert_eq!(m.book().tombstone_count(), 1);
    clock.advance(3599.0);
    m.update_all().unwrap();
    assert_eq!(m.book().tombstone_count(), 1);
    clock.advance(2.0);
    m.update_all().unwrap();
    assert_eq!(m.book().tombstone_count(), 0);
}

#[test]
fn the_contract_size_is_carried_and_used_for_values() {
    let entry = edit(listed("BTC", "long", 1.0, 100.0), |r| {
        r.contract_size = Field::Number(0.001)
    });
    let f = fake(vec![entry], 100.0);
    let m = manager(&f, ManagerConfig::default());
    assert_eq!(m.sync_existing_positions().unwrap(), 1);
    let p = m.book().get("BTC").unwrap().0;
    assert_eq!(p.lock().contract_size, 0.001);
    p.lock().contract_size = 1.0;
    m.update_all().unwrap();
    assert_eq!(
        p.lock().contract_size,
        0.001,
        "kept up to date from the exchange"
    );
}

#[test]
fn the_event_sink_is_called_with_no_lock_held() {
    let f = fake(vec![], 100.0);
    let m = Arc::new(manager(&f, ManagerConfig::default()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (inner, log) = (Arc::downgrade(&m), seen.clone());
    m.set_event_sink(Some(Arc::new(move |e: &crate::events::Event| {
        let m = inner.upgrade().unwrap();
        // Would deadlock if the book, a position or the event log were locked here.
        let n = (m.book().len(), m.events().len());
        log.lock().push((e.kind, e.symbol.clone(), n));
    })));
    m.book()
        .insert("BTC", position("BTC", "long", 1.0, 95.0, 115.0), 1);
    m.update_all().unwrap();
    assert_eq!(
        *seen.lock(),
        [(EventKind::Removed, "BTC".to_owned(), (0, 1))]
    );
}

#[test]
fn a_position_tracked_after_the_request_is_not_resized_by_it() {
    // Found by the stress test: the bot replaced the position while the list was in flight; the
    // older list's size must not be forced on the newer position.
    let f = fake(vec![listed("BTC", "long", 1.0, 100.0)], 100.0);
    let m = Arc::new(manager(&f, ManagerConfig::default()));
    m.book()
        .insert("BTC", position("BTC", "long", 1.0, 95.0, 115.0), 1);
    let newer = position("BTC", "long", 0.5, 95.0, 115.0);
    let (inner, replacement) = (Arc::downgrade(&m), newer.clone());
    f.0.lock().during_fetch = Some(Box::new(move || {
        let m = inner.upgrade().unwrap();
        m.book().insert("BTC", replacement.clone(), 2);
    }));
    m.update_all().unwrap();
    assert_eq!(newer.lock().amount, 0.5);
    assert!(!m
        .events()
        .all()
        .iter()
        .any(|e| e.kind == EventKind::Resized));
}

#[test]
fn a_close_under_a_cautious_policy_does_not_untrack_on_one_absence() {
    let f = fake(vec![], 100.0);
    let config = ManagerConfig {
        missing_confirmations: 2,
        ..ManagerConfig::default()
    };
    let m = manager(&f, config);
    m.book()
        .insert("BTC", position("BTC", "long", 1.0, 95.0, 115.0), 1);
    assert_eq!(
        m.close_position("BTC", "stop_loss").unwrap(),
        super::CloseOutcome::Unverified
    );
    assert!(m.book().contains("BTC"));
    assert!(closes_sent(&f).is_empty());
}

#[test]
fn a_liquidation_records_its_pnl() {
    let entry = edit(listed("BTC", "long", 1.0, 100.0), |r| {
        r.liquidation_price = Field::Number(91.0)
    });
    let f = fake(vec![entry], 100.0);
    let m = manager(&f, ManagerConfig::default());
    let p = position("BTC", "long", 1.0, 80.0, 115.0);
    m.book().insert("BTC", p.clone(), 1);
    m.update_all().unwrap();
    p.lock().record_tick(T0, 90.0);
    f.0.lock().positions.clear();
    m.update_all().unwrap();
    let e = last_event(&m);
    assert_eq!(e.reason, "liquidation");
    assert_eq!(e.pnl, Some(p.lock().leveraged_pnl(91.0, true)));
}

#[test]
fn a_sync_whose_list_predates_a_close_does_not_reimport_it() {
    let f = fake(vec![listed("BTC", "long", 1.0, 100.0)], 100.0);
    let m = Arc::new(manager(&f, ManagerConfig::default()));
    m.book()
        .insert("BTC", position("BTC", "long", 1.0, 95.0, 115.0), 1);
    let inner = Arc::downgrade(&m);
    f.0.lock().during_fetch = Some(Box::new(move || {
        // The list is already taken (it shows BTC); the close fills now.
        let m = inner.upgrade().unwrap();
        assert!(m.close_position("BTC", "manual").unwrap().pnl().is_some());
    }));
    assert_eq!(m.sync_existing_positions().unwrap(), 0);
    assert!(!m.book().contains("BTC"));
}

#[test]
fn a_close_whose_own_read_undoes_a_flip_closes_the_restored_position() {
    // An audit on 2026-12-07 (a malformed OKX list showed a long as a short once): the bot's
    // close came right after the first true list; the close's own read was the second, which
    // undid the flip and restored the long, and the close then returned with nothing sent and
    // nothing said while the venue held the long.
    let (f, m, _old, short) = flipped();
    f.0.lock().positions = vec![listed("BTC", "long", 1.0, 100.0)];
    m.update_all().unwrap(); // the first list showing the long again: counted
    assert!(Arc::ptr_eq(&m.book().get("BTC").unwrap().0, &short));
    f.0.lock().calls.clear();
    let outcome = m.close_position("BTC", "manual").unwrap();
    assert!(
        matches!(outcome, super::CloseOutcome::Closed(_)),
        "{outcome:?} {:?}",
        f.0.lock().calls
    );
    let closes = closes_sent(&f);
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert!(m.book().get("BTC").is_none());
    let restored_then_closed: Vec<_> = kinds(&m).into_iter().rev().take(2).collect();
    assert_eq!(restored_then_closed[1].0, EventKind::Restored);
    assert_eq!(
        restored_then_closed[0].0,
        EventKind::Closed,
        "{:?}",
        kinds(&m)
    );
}

#[test]
fn a_close_whose_own_read_takes_a_flip_closes_the_position_the_symbol_holds() {
    // The other direction: the close's read shows the other side (a reversal by hand), takes
    // the flip, and the close then closes what the symbol holds, as the original's close did.
    let f = fake(vec![listed("BTC", "short", 3.0, 100.0)], 100.0);
    let m = manager(&f, ManagerConfig::default());
    let long = position("BTC", "long", 1.0, 95.0, 115.0);
    m.book().insert("BTC", long, 1);
    let outcome = m.close_position("BTC", "manual").unwrap();
    assert!(
        matches!(outcome, super::CloseOutcome::Closed(_)),
        "{outcome:?}"
    );
    let closes = closes_sent(&f);
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert!(m.book().get("BTC").is_none());
}

#[test]
fn a_close_does_not_close_a_position_another_thread_put_under_its_key() {
    // Another thread replaced the entry while the close read the list (which changed nothing):
    // the close of the one the bot asked about is not turned into a close of the new one.
    let f = fake(vec![listed("BTC", "long", 1.0, 100.0)], 100.0);
    let m = Arc::new(manager(&f, ManagerConfig::default()));
    let old = position("BTC", "long", 1.0, 95.0, 115.0);
    m.book().insert("BTC", old, 1);
    let inner = Arc::downgrade(&m);
    f.0.lock().during_fetch = Some(Box::new(move || {
        let m = inner.upgrade().unwrap();
        m.book()
            .insert("BTC", position("BTC", "long", 1.0, 90.0, 120.0), 2);
    }));
    let outcome = m.close_position("BTC", "manual").unwrap();
    assert_eq!(outcome, super::CloseOutcome::NotTracked);
    assert!(closes_sent(&f).is_empty());
    assert!(m.book().get("BTC").is_some());
}

/// The exchange closes `f` was sent.
fn closes_sent(f: &Fake) -> Vec<String> {
    f.calls()
        .into_iter()
        .filter(|c| c.starts_with("close_position"))
        .collect()
}

/// A manager tracking ETH `side` 0.02 or 0.03 (as `held` says: size, entry, leverage, stop,
/// take profit), shown so by a list, its bot's price `bot_price`, that scales in 0.02 at
/// `scale_price`; `answer`, when given, is the average the order's answer reports (else the
/// fake's own answer). The list its scale-in reads still shows the position.
fn scaled_in(
    side: &str,
    held: (f64, f64, f64, f64, f64),
    bot_price: f64,
    answer: Option<Option<f64>>,
    scale_price: f64,
) -> (Fake, Manager<u32>, SharedPosition) {
    let (size, entry, leverage, stop, take_profit) = held;
    let f = fake(vec![listed("ETH", side, size, entry)], bot_price);
    let m = manager(&f, ManagerConfig::default());
    let old = share(PositionState::new(
        "ETH",
        side,
        entry,
        size,
        leverage,
        stop,
        Some(take_profit),
        T0,
    ));
    m.book().insert("ETH", old.clone(), 1);
    m.update_all().unwrap();
    if let Some(average) = answer {
        f.0.lock()
            .market_answers
            .push_back(Ok(super::testing::report(
                Some("s1"),
                "closed",
                Some(0.02),
                average,
            )));
    }
    assert!(m
        .scale_in_position("ETH", (0.02, "0.02"), scale_price)
        .unwrap());
    assert_eq!(old.lock().amount, size + 0.02);
    (f, m, old)
}

/// A manager tracking ETH long 0.03 at 2968.77 (stops 2700 / 3300), shown so by a list, that
/// then scales in 0.02 at `price` (the order's answer reports its average when `priced`),
/// while the list its scale-in reads still shows the 0.03.
fn scaled_in_eth(price: f64, priced: bool) -> (Fake, Manager<u32>, SharedPosition) {
    let answer = (!priced).then_some(None);
    let held = (0.03, 2968.77496496, 10.0, 2700.0, 3300.0);
    scaled_in("long", held, price, answer, price)
}

/// Hyperliquid one-way, the venue crash run killed after answers, seed 31 (300 ticks): the
/// long was closed by hand; the bot's scale-in read a list that lagged the close, went out and
/// opened a new long of 0.02 at its fill price on the flat venue. The next lists show that
/// long: fewer contracts than the book's 0.05 at an entry no reduction of it can leave. It was
/// taken for the tracked position resized ("0.05 -> 0.02"), so the close by hand was never
/// recorded: the journal had one end fewer than the venue. Now, once the outcome rules' lists
/// show it, the tracked position ends (closed outside the manager) and the new one is imported.
#[test]
fn a_scale_in_sent_behind_a_list_lagging_a_close_by_hand_is_a_new_position() {
    let (f, m, old) = scaled_in_eth(2948.13899181, true);
    f.0.lock().positions = vec![listed("ETH", "long", 0.02, 2948.13899181)];
    let removed = replaced_by_the_second_list(&m, &old, (0.05, 0.02, 2948.13899181));
    let evidence = removed.evidence.unwrap();
    assert_eq!(evidence.exchange_contracts, Some(0.02));
    assert_eq!(evidence.missing, Some(2));
}

/// Two cycles over a list showing ETH replaced (`old` booked at `booked`, the listing
/// `contracts` at `entry`): the first may lag, so `old` is counted and kept as it is; the
/// second replaces it (removed as closed outside, the listing imported), never resized. The
/// removal's event.
fn replaced_by_the_second_list(
    m: &Manager<u32>,
    old: &SharedPosition,
    (booked, contracts, entry): (f64, f64, f64),
) -> crate::events::Event {
    m.update_all().unwrap();
    assert!(
        Arc::ptr_eq(&m.book().get("ETH").unwrap().0, old),
        "one list may lag: counted, kept"
    );
    assert_eq!(old.lock().amount, booked, "not resized meanwhile");
    m.update_all().unwrap();
    let (new, _) = m.book().get("ETH").expect("the new position is tracked");
    assert!(!Arc::ptr_eq(&new, old), "{:?}", kinds(m));
    {
        let p = new.lock();
        assert_eq!((p.amount, p.entry_price), (contracts, entry));
    }
    let events = m.events().all();
    let tail: Vec<(EventKind, &str)> = events
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|e| (e.kind, e.reason.as_str()))
        .collect();
    assert_eq!(
        tail,
        [
            (EventKind::Removed, "closed_externally"),
            (EventKind::Imported, "replaced_externally")
        ]
    );
    assert!(
        !kinds(m).iter().any(|(k, _)| *k == EventKind::Resized),
        "{:?}",
        kinds(m)
    );
    let removed = events[events.len() - 2].clone();
    assert_eq!(removed.position.amount, booked);
    removed
}

/// The same scale-in on the live position, then a reduction by hand: the exchange keeps the
/// weighted entry, so the smaller listing is the position resized, as before. And when the
/// scale-in's answer reported no average (the bot's price stood in), the book's entry may not
/// be the exchange's: a smaller listing at another entry is a resize too, until a list shows
/// the position's size.
#[test]
fn a_reduction_by_hand_after_the_managers_scale_in_stays_a_resize() {
    // 0.03 at 2968.77 and 0.02 at 2948.14 make 0.05 at 2960.52.
    let weighted = (0.03 * 2968.77496496 + 0.02 * 2948.13899181) / 0.05;
    for (priced, listed_entry) in [(true, weighted), (false, 2955.0)] {
        let (f, m, old) = scaled_in_eth(2948.13899181, priced);
        f.0.lock().positions = vec![listed("ETH", "long", 0.02, listed_entry)];
        m.update_all().unwrap();
        m.update_all().unwrap();
        let (now, _) = m.book().get("ETH").unwrap();
        assert!(Arc::ptr_eq(&now, &old), "priced {priced}: {:?}", kinds(&m));
        assert_eq!(old.lock().amount, 0.02);
        assert_eq!(kinds(&m).last().unwrap().0, EventKind::Resized);
    }
}

/// A scale-in whose answer was lost, settled as not executed by lists that show another size
/// than before it (reduced by hand meanwhile): whether the order added to the position, and at
/// what price, is not known, so neither is the exchange's entry. The smaller listing at
/// another entry is then the position resized, not another one.
#[test]
fn a_lost_scale_in_settled_by_lists_of_another_size_leaves_a_resize() {
    let f = fake(
        vec![listed("ETH", "long", 0.03, 2968.77496496)],
        2948.13899181,
    );
    let m = manager(&f, ManagerConfig::default());
    let old = share(PositionState::new(
        "ETH",
        "long",
        2968.77496496,
        0.03,
        10.0,
        2700.0,
        Some(3300.0),
        T0,
    ));
    m.book().insert("ETH", old.clone(), 1);
    m.update_all().unwrap();
    {
        let mut s = f.0.lock();
        s.market_answers
            .push_back(Err(super::testing::network_error()));
        // The scale-in's own read still shows the position as it was; then it is listed
        // reduced by hand, and the scale-in may have added to it: not the old entry.
        s.scripted
            .push_back(Ok(vec![listed("ETH", "long", 0.03, 2968.77496496)]));
        s.positions = vec![listed("ETH", "long", 0.02, 2955.0)];
    }
    assert!(!m
        .scale_in_position("ETH", (0.02, "0.02"), 2948.13899181)
        .unwrap());
    for _ in 0..3 {
        m.update_all().unwrap();
    }
    let (now, _) = m.book().get("ETH").expect("tracked");
    assert!(Arc::ptr_eq(&now, &old), "{:?}", kinds(&m));
    assert_eq!(old.lock().amount, 0.02);
    assert!(
        kinds(&m).contains(&(EventKind::Resized, "size_changed_externally".to_owned())),
        "{:?}",
        kinds(&m)
    );
}

/// A manager tracking ETH short 0.02 at 2913.14, shown so by a list, whose scale-in of 0.02
/// fills at 2893.53 (its answer reports `average`: that price, or none) while the exchange no
/// longer holds the short: the fill opened a new one, and the lists show it (0.02 at 2893.53;
/// 0.02 is also the size before the fill, so only the entry tells). The bot's price stays at
/// the entry: no exit target of its own fires meanwhile.
fn scaled_in_on_a_gone_short(average: Option<f64>) -> (Fake, Manager<u32>, SharedPosition) {
    let entry = 2913.1399252250003;
    let held = (0.02, entry, 5.0, 3000.0, 2645.0);
    scaled_in("short", held, entry, Some(average), 2893.52937459)
}

/// Binance USD-M one-way, the venue crash run killed after answers, seed 33 (300 ticks; the
/// journal listed 21 ends against the venue's 22): the manager's close of the short filled, a
/// list lagging it showed the short so the close was taken back, and the bot's scale-in on the
/// restored position opened a new short of 0.02 at its fill price on the flat venue. The lists
/// then showed 0.02 at that price: the size from before the fill, so taken for a lag and then
/// a resize ("0.04 -> 0.02"), and the end of the old short never recorded. Exactly the fill's
/// size at the fill's average, far from any entry the old one had: the old one ended, and the
/// new one is imported once the outcome rules' lists show it.
#[test]
fn a_scale_in_that_opened_a_new_position_on_a_flat_exchange_replaces_the_tracked_one() {
    let (f, m, old) = scaled_in_on_a_gone_short(Some(2893.52937459));
    f.0.lock().positions = vec![listed("ETH", "short", 0.02, 2893.52937459)];
    replaced_by_the_second_list(&m, &old, (0.04, 0.02, 2893.52937459));
}

/// The same scale-in on the live short: a list lagging it shows the short as it was (0.02 at
/// 2913.14), counted and then a resize as before; and when the answer reported no average,
/// the fill's price is not the exchange's, so a listing at the bot's price stays a resize.
#[test]
fn a_list_lagging_the_managers_scale_in_or_an_unpriced_fill_stays_a_resize() {
    let (f, m, old) = scaled_in_on_a_gone_short(Some(2893.52937459));
    f.0.lock().positions = vec![listed("ETH", "short", 0.02, 2913.1399252250003)];
    m.update_all().unwrap();
    m.update_all().unwrap();
    assert!(Arc::ptr_eq(&m.book().get("ETH").unwrap().0, &old));
    assert_eq!(old.lock().amount, 0.02);
    assert_eq!(kinds(&m).last().unwrap().0, EventKind::Resized);

    let (f, m, old) = scaled_in_on_a_gone_short(None);
    f.0.lock().positions = vec![listed("ETH", "short", 0.02, 2893.52937459)];
    m.update_all().unwrap();
    m.update_all().unwrap();
    assert!(Arc::ptr_eq(&m.book().get("ETH").unwrap().0, &old));
    assert_eq!(old.lock().amount, 0.02);
    assert_eq!(kinds(&m).last().unwrap().0, EventKind::Resized);
}
