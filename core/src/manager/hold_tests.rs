//! `reopen_hold_seconds` against a client that answers `[]` for failed reads (the bot's own):
//! four empty answers in a row untrack a live position; with the hold, the open that follows is
//! refused instead of netting against it, and the next real list restores the position.

use std::sync::Arc;

use proptest::prelude::*;

use super::testing::{lie, listed, manager_with_clock, market_orders, open_request, priced, Fake};
use super::{Manager, ManagerConfig, OpenRequest};
use crate::clock::{ManualClock, Timestamp};
use crate::events::EventKind;

fn request(symbol: &str) -> OpenRequest<'_> {
    open_request(symbol, "BUY")
}

/// A manager holding re-opens for `hold` seconds (with `tombstones` kept), that opened BTC: the
/// venue lists it from then on.
fn holding_btc(hold: f64, tombstones: usize) -> (Fake, Manager<u32>, Arc<ManualClock>) {
    let fake = priced(100.0);
    let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
    let config = ManagerConfig {
        reopen_hold_seconds: hold,
        tombstone_limit: tombstones,
        ..ManagerConfig::default()
    };
    let m = manager_with_clock(&fake, config, clock.clone());
    assert!(m.open_position(&request("BTC")).unwrap());
    fake.0.lock().positions = vec![listed("BTC", "long", 1.0, 100.0)];
    // Listed once: a fill no list has shown yet is not removed by one list's absence.
    m.update_all().unwrap();
    (fake, m, clock)
}

/// Four failed reads in a row: the cycle's list and its re-read untrack BTC; the next two are
/// left for the open that follows.
fn four_failed_reads(fake: &Fake, m: &Manager<u32>) {
    lie(fake, 4);
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC"), "two empty answers untracked it");
}

fn count(m: &Manager<u32>, kind: EventKind) -> usize {
    m.events().all().iter().filter(|e| e.kind == kind).count()
}

#[test]
fn without_a_hold_four_empty_answers_open_a_second_position_on_top() {
    // The defect the option removes, as the original and the default behave.
    let (fake, m, _) = holding_btc(0.0, 1_000);
    four_failed_reads(&fake, &m);
    assert!(m.open_position(&request("BTC")).unwrap());
    assert_eq!(
        market_orders(&fake),
        2,
        "a second order went out for a live position"
    );
}

#[test]
fn four_empty_answers_do_not_open_on_top_while_held_and_the_truth_restores_it() {
    let (fake, m, _) = holding_btc(120.0, 1_000);
    four_failed_reads(&fake, &m);
    assert!(!m.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 1, "no second order");
    assert!(
        fake.0.lock().scripted.is_empty(),
        "the open read the list twice"
    );
    // The failures are over: the next list shows the position, which comes back as it was.
    m.update_all().unwrap();
    assert!(m.book().contains("BTC"));
    assert_eq!(count(&m, EventKind::Restored), 1);
    assert!(
        m.holds.is_empty(),
        "a list showing a live position ends every hold"
    );
}

#[test]
fn the_hold_holds_without_tombstones() {
    // With no tombstone the book remembers nothing: the hold alone makes the open look first.
    let (fake, m, _) = holding_btc(120.0, 0);
    four_failed_reads(&fake, &m);
    assert_eq!(m.book().tombstone_count(), 0);
    assert!(!m.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 1);
    // The truth lists it: the open imports it instead of ordering.
    assert!(!m.open_position(&request("BTC")).unwrap());
    assert!(m.book().contains("BTC"));
    assert_eq!(market_orders(&fake), 1);
}

#[test]
fn a_real_close_can_be_reopened_once_the_hold_is_over() {
    let (fake, m, clock) = holding_btc(120.0, 1_000);
    fake.0.lock().positions.clear(); // closed by hand on the venue
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC"));
    clock.advance(119.0);
    assert!(!m.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 1);
    clock.advance(1.0);
    assert!(m.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 2);
    assert!(m.book().contains("BTC"));
}

#[test]
fn a_list_showing_another_live_position_ends_the_hold() {
    let (fake, m, _) = holding_btc(120.0, 1_000);
    fake.0.lock().positions.clear();
    m.update_all().unwrap();
    // Another position is listed now: the client answers real lists, BTC's absence is believed.
    fake.0.lock().positions = vec![listed("ETH", "short", 2.0, 50.0)];
    assert!(m.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 2);
}

#[test]
fn only_the_keys_a_blind_list_untracked_are_held() {
    let (fake, m, _) = holding_btc(120.0, 1_000);
    fake.0.lock().positions.clear();
    m.update_all().unwrap();
    assert!(
        m.open_position(&request("ETH")).unwrap(),
        "ETH was never untracked"
    );
    assert_eq!(market_orders(&fake), 2);
}

#[test]
fn a_close_never_sent_and_confirmed_by_empty_answers_is_held_too() {
    // The bot's client answers True for a close it could not send; two empty answers then
    // "confirm" it. Without the hold the next open would go on top of the position still held.
    let (fake, m, _) = holding_btc(120.0, 1_000);
    m.close_position("BTC", "manual").unwrap();
    assert!(!m.book().contains("BTC"));
    lie(&fake, 4);
    m.update_all().unwrap();
    assert!(!m.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 1);
    // The failures are over: the next open finds it listed and imports it, sending nothing.
    assert!(!m.open_position(&request("BTC")).unwrap());
    assert!(m.book().contains("BTC"));
    assert_eq!(market_orders(&fake), 1);
}

/// What the bot does at one step of the property below (the clock then moves 10 s).
#[derive(Clone, Copy, Debug)]
enum Step {
    Cycle,
    Open,
    CycleThenOpen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Cycle),
        Just(Step::Open),
        Just(Step::CycleThenOpen)
    ]
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(128, 0x401D_0002))]

    /// The hold's guarantee: while BTC stays open on the venue and every run of failed reads
    /// (all `[]`, as the bot's client answers) lasts less than the hold, no open order is sent
    /// for it again, whatever the bot does when — and once the reads are answered again, one
    /// cycle tracks it. Runs of failures are windows of steps, 10 s apart, during which every
    /// read fails, with at least one answered step between two; the hold is 100 s, a window at
    /// most 90 s.
    #[test]
    fn failures_shorter_than_the_hold_never_open_on_top(
        steps in proptest::collection::vec(step(), 1..60),
        runs in proptest::collection::vec((1usize..8, 1usize..10), 0..6),
    ) {
        let (fake, m, clock) = holding_btc(100.0, 1_000);
        // (answered steps before it, failing steps) -> failing windows [start, end).
        let mut windows = Vec::new();
        let mut at = 0;
        for (gap, len) in runs {
            windows.push(at + gap..at + gap + len);
            at += gap + len;
        }
        let failing = |at: usize| windows.iter().any(|w| w.contains(&at));
        for (at, step) in steps.iter().enumerate() {
            {
                let mut s = fake.0.lock();
                s.scripted.clear();
                if failing(at) {
                    s.scripted.extend((0..16).map(|_| Ok(vec![])));
                }
            }
            if matches!(step, Step::Cycle | Step::CycleThenOpen) {
                m.update_all().unwrap();
            }
            if matches!(step, Step::Open | Step::CycleThenOpen) {
                m.open_position(&request("BTC")).unwrap();
            }
            prop_assert_eq!(market_orders(&fake), 1, "a second open at step {}: {:?}", at, step);
            clock.advance(10.0);
        }
        fake.0.lock().scripted.clear();
        m.update_all().unwrap();
        m.open_position(&request("BTC")).unwrap();
        prop_assert!(m.book().contains("BTC"));
        prop_assert_eq!(market_orders(&fake), 1);
    }
}

#[test]
fn in_hedge_mode_the_hold_is_per_leg() {
    let fake = priced(100.0);
    {
        let mut s = fake.0.lock();
        s.legs = true;
        s.positions = vec![listed("BTC", "long", 1.0, 100.0)];
    }
    let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
    let config = ManagerConfig {
        reopen_hold_seconds: 120.0,
        position_mode: crate::reconcile::Mode::Hedge,
        ..ManagerConfig::default()
    };
    let m = manager_with_clock(&fake, config, clock);
    assert_eq!(m.sync_existing_positions().unwrap(), 1);
    lie(&fake, 4);
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC@long"));
    // The long leg is held: no second long on top of the live one.
    assert!(!m.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 0);
    // The short leg was never untracked: it is not held, and opens.
    let short = OpenRequest {
        signal: "SELL",
        ..request("BTC")
    };
    assert!(m.open_position(&short).unwrap());
    assert_eq!(market_orders(&fake), 1);
    assert!(m.book().contains("BTC@short"));
}

#[test]
fn an_open_racing_the_removal_finds_the_hold() {
    // The exchange reported a liquidation price, so the removal's reason reads a ticker: the
    // bot's trader opens in that moment, after the book dropped the key and before the cycle
    // has logged a line about it.
    let (fake, m, _) = holding_btc(120.0, 1_000);
    let mut entry = listed("BTC", "long", 1.0, 100.0);
    if let crate::exchange::RawEntry::Position(raw) = &mut entry {
        raw.liquidation_price = crate::exchange::Field::Number(50.0);
    }
    fake.0.lock().positions = vec![entry];
    m.update_all().unwrap(); // the book learns the liquidation price
    let m = Arc::new(m);
    let opened = Arc::new(parking_lot::Mutex::new(None));
    {
        let (m, opened) = (m.clone(), opened.clone());
        fake.0.lock().during_ticker = Some(Box::new(move || {
            *opened.lock() = Some(m.open_position(&request("BTC")).unwrap());
        }));
    }
    lie(&fake, 6);
    m.update_all().unwrap();
    assert_eq!(*opened.lock(), Some(false), "the racing open was refused");
    assert_eq!(market_orders(&fake), 1);
}

/// A journal that only counts the calls telling it the holds changed.
#[derive(Default)]
struct HoldsJournal {
    told: std::sync::atomic::AtomicUsize,
}

impl HoldsJournal {
    fn told(&self) -> usize {
        self.told.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl crate::journal_hook::EventJournal for HoldsJournal {
    fn record(&self, _: &crate::events::Event, _: &crate::book::SharedPosition) {}
    fn checkpoint(&self) {}
    fn closes_settled(&self, _: &[crate::key::Key]) {}
    fn remembered(&self, _: &[crate::key::Key]) {}
    fn order_sent(
        &self,
        _: &crate::key::Key,
        _: &crate::manager::in_flight::SentOrder,
    ) -> Result<(), String> {
        Ok(())
    }
    fn orders_settled(&self, _: &[crate::key::Key]) {}
    fn holds_changed(&self) {
        self.told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn keys(m: &Manager<u32>) -> Vec<String> {
    m.reopen_holds()
        .into_iter()
        .map(|(key, _)| key.as_str().to_owned())
        .collect()
}

#[test]
fn the_journal_is_told_each_change_of_the_held_set_and_only_then() {
    let (fake, m, clock) = holding_btc(120.0, 1_000);
    let journal = Arc::new(HoldsJournal::default());
    m.set_journal(Some(journal.clone()));
    m.update_all().unwrap();
    assert_eq!(
        journal.told(),
        0,
        "a live list with nothing held changes nothing"
    );
    four_failed_reads(&fake, &m);
    assert_eq!((journal.told(), keys(&m)), (1, vec!["BTC".to_owned()]));
    assert!(
        !m.open_position(&request("BTC")).unwrap(),
        "its reads were blind too"
    );
    clock.advance(1.0);
    lie(&fake, 1);
    m.update_all().unwrap();
    assert_eq!(
        journal.told(),
        1,
        "a blind list that untracked nothing more"
    );
    m.update_all().unwrap(); // the truth: BTC is listed again
    assert_eq!(
        (journal.told(), keys(&m)),
        (2, vec![]),
        "a live list ended the hold"
    );
    m.update_all().unwrap();
    assert_eq!(journal.told(), 2);
}

#[test]
fn no_hold_setting_tells_the_journal_nothing() {
    let (fake, m, _) = holding_btc(0.0, 1_000);
    let journal = Arc::new(HoldsJournal::default());
    m.set_journal(Some(journal.clone()));
    four_failed_reads(&fake, &m);
    m.update_all().unwrap();
    assert_eq!(journal.told(), 0);
    assert!(m.reopen_holds().is_empty());
}

#[test]
fn a_restarted_manager_takes_back_the_holds_not_over_from_when_they_started() {
    let (fake, m, clock) = holding_btc(120.0, 0);
    four_failed_reads(&fake, &m);
    let held = m.reopen_holds();
    let started = held[0].1;
    drop(m);
    // The restarted bot, 100 s later, with the venue's answers still failing.
    clock.advance(100.0);
    let config = ManagerConfig {
        reopen_hold_seconds: 120.0,
        tombstone_limit: 0,
        ..ManagerConfig::default()
    };
    let again = manager_with_clock(&fake, config.clone(), clock.clone());
    let taken = again.restore_reopen_holds(held.clone());
    assert_eq!(taken, held);
    assert_eq!(
        again.reopen_hold_left(&crate::key::Key::net("BTC")),
        Some(20.0)
    );
    lie(&fake, 2);
    assert!(!again.open_position(&request("BTC")).unwrap());
    assert_eq!(market_orders(&fake), 1, "no second order after the restart");
    // A key held already keeps the later start.
    again.restore_reopen_holds([(crate::key::Key::net("BTC"), Timestamp(started.0 - 1))]);
    assert_eq!(again.reopen_holds()[0].1, started);
    // Restarted once the hold is over, or without holds: nothing is taken back.
    clock.advance(20.0);
    let late = manager_with_clock(&fake, config, clock.clone());
    assert!(late.restore_reopen_holds(held.clone()).is_empty());
    let unheld = manager_with_clock(&fake, ManagerConfig::default(), clock);
    assert!(unheld.restore_reopen_holds(held).is_empty());
    assert!(unheld.reopen_holds().is_empty());
}
