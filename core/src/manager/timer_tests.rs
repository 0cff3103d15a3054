//! The safety timers run on the clock's timer reading, not on its local wall-clock time: a DST
//! change (or another `TZ`, or a wall-clock step) moves the local time by an hour or more and
//! must neither end a re-open hold or a grace period early nor stretch one (found by an audit
//! on 2026-12-06, reproduced there with libfaketime over the system clock). [`WallClock`] parts
//! the two readings as the system clock does.

use std::sync::Arc;

use super::testing::{
    kinds, lie, listed, manager_with_clock, market_orders, open_request, open_sent, priced, Fake,
    WallClock,
};
use super::{Manager, ManagerConfig};
use crate::book::share;
use crate::clock::Timestamp;
use crate::key::Key;
use crate::position::PositionState;

const T0: Timestamp = Timestamp(1_735_689_600_000_000);

/// A manager on a [`WallClock`] with `config`, that opened BTC: the venue lists it from then on.
fn opened_btc(config: ManagerConfig) -> (Fake, Manager<u32>, Arc<WallClock>) {
    let fake = priced(100.0);
    let clock = Arc::new(WallClock::new(T0));
    let m = manager_with_clock(&fake, config, clock.clone());
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    fake.0.lock().positions = vec![listed("BTC", "long", 1.0, 100.0)];
    m.update_all().unwrap();
    (fake, m, clock)
}

fn holding(hold: f64) -> ManagerConfig {
    ManagerConfig {
        reopen_hold_seconds: hold,
        ..ManagerConfig::default()
    }
}

#[test]
fn a_spring_forward_does_not_end_a_reopen_hold() {
    // The audit's dst_hold.py: four failed reads untrack a live BTC and hold its re-open for
    // 300 s; 5 s later the local clock springs forward an hour while the failures go on.
    let (fake, m, clock) = opened_btc(holding(300.0));
    lie(&fake, 2);
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC"), "two empty answers untracked it");
    clock.advance(5.0);
    clock.step(3600.0);
    lie(&fake, 2);
    assert!(!m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(
        market_orders(&fake),
        1,
        "no second order on top of the live one"
    );
    assert_eq!(m.reopen_hold_left(&Key::net("BTC")), Some(295.0));
}

#[test]
fn a_fall_back_neither_stretches_a_hold_nor_freezes_its_count_down() {
    // The audit's fallback hold: the local clock falls back an hour right after the hold began;
    // the hold still ends 300 timer seconds after it began, counting down all along.
    let (fake, m, clock) = opened_btc(holding(300.0));
    fake.0.lock().positions.clear(); // closed by hand on the venue
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC"));
    clock.step(-3600.0);
    clock.advance(10.0);
    let btc = Key::net("BTC");
    assert_eq!(m.reopen_hold_left(&btc), Some(290.0));
    clock.advance(100.0);
    assert_eq!(m.reopen_hold_left(&btc), Some(190.0));
    clock.advance(190.0);
    assert_eq!(m.reopen_hold_left(&btc), None);
    assert!(m.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(market_orders(&fake), 2, "the re-entry went out on time");
}

#[test]
fn a_spring_forward_does_not_cut_the_missing_grace_short() {
    // The audit's dst_grace.py: missing_confirmations=2 over missing_grace_seconds=600, two
    // failed lists 5 s apart across a spring-forward: the live position stays tracked.
    let config = ManagerConfig {
        missing_confirmations: 2,
        missing_grace_seconds: 600.0,
        ..ManagerConfig::default()
    };
    let (fake, m, clock) = opened_btc(config);
    m.update_all().unwrap();
    lie(&fake, 2);
    m.update_all().unwrap();
    assert!(m.book().contains("BTC"));
    clock.advance(5.0);
    clock.step(3600.0);
    lie(&fake, 2);
    m.update_all().unwrap();
    assert!(
        m.book().contains("BTC"),
        "only 5 s of absence: {:?}",
        kinds(&m)
    );
    // The absence lasts its 600 s (timer): now it is believed.
    clock.advance(600.0);
    lie(&fake, 2);
    m.update_all().unwrap();
    assert!(!m.book().contains("BTC"));
}

#[test]
fn a_fall_back_does_not_hold_the_outcome_grace_an_hour() {
    // The audit's dst_outcome.py: an order whose outcome is unknown (here an open taken back
    // from a journal) and lists that never show its effect; outcome_grace_seconds=60. The local
    // clock falls back an hour between the lists: the key is released 60 timer seconds on.
    let f = priced(100.0);
    let config = ManagerConfig {
        outcome_grace_seconds: 60.0,
        ..ManagerConfig::default()
    };
    let clock = Arc::new(WallClock::new(T0));
    let m = manager_with_clock(&f, config, clock.clone());
    m.restore_orders(vec![(Key::parse("BTC"), open_sent("r1", None))]);
    f.0.lock().positions = vec![listed("ETH", "long", 1.0, 10.0)];
    m.update_all().unwrap();
    assert!(m.book().order_pending("BTC"));
    clock.step(-3600.0);
    clock.advance(61.0);
    m.update_all().unwrap();
    assert!(
        !m.book().order_pending("BTC"),
        "released after 61 s: {:?}",
        kinds(&m)
    );
}

#[test]
fn tombstones_live_their_ttl_in_timer_seconds() {
    let f = priced(100.0);
    let config = ManagerConfig {
        tombstone_ttl_seconds: 3600.0,
        ..ManagerConfig::default()
    };
    let clock = Arc::new(WallClock::new(T0));
    let m = manager_with_clock(&f, config, clock.clone());
    let p = share(PositionState::new(
        "BTC",
        "long",
        100.0,
        1.0,
        10.0,
        95.0,
        Some(115.0),
        m.now(),
    ));
    m.book().insert("BTC", p, 1);
    f.0.lock().positions = vec![listed("ETH", "long", 1.0, 10.0)];
    m.update_all().unwrap();
    assert_eq!(m.book().tombstone_count(), 1);
    // Local time jumps two hours ahead: the tombstone is 10 s old.
    clock.step(7200.0);
    clock.advance(10.0);
    m.update_all().unwrap();
    assert_eq!(m.book().tombstone_count(), 1, "not expired by a DST jump");
    // Local time falls back three hours: it still expires after its hour.
    clock.step(-10_800.0);
    clock.advance(3591.0);
    m.update_all().unwrap();
    assert_eq!(m.book().tombstone_count(), 0, "expired on time");
}

#[test]
fn a_state_file_keeps_its_holds_across_a_restart_under_another_time_zone() {
    // The audit's state_tz.py: a hold saved by a manager whose local time is New York's (UTC-5)
    // and loaded by one in UTC a second later still holds.
    let (fake, m, clock) = opened_btc(holding(3600.0));
    clock.step(-5.0 * 3600.0);
    fake.0.lock().positions.clear();
    m.update_all().unwrap();
    let path = super::testing::temp_path("timer-tz");
    m.save_state(&path, |_, _| Ok(super::state::SavedExtra::default()))
        .unwrap();
    clock.advance(1.0);
    clock.step(5.0 * 3600.0);
    let fresh = manager_with_clock(&fake, holding(3600.0), clock.clone());
    fresh.load_state(&path, |_, _, _| Ok(1)).unwrap();
    assert_eq!(fresh.reopen_hold_left(&Key::net("BTC")), Some(3599.0));
    assert!(!fresh.open_position(&open_request("BTC", "BUY")).unwrap());
    assert_eq!(market_orders(&fake), 1);
}

#[test]
fn a_restored_hold_that_starts_after_now_lasts_at_most_its_setting() {
    // A hold kept by a process whose timer read later than this one's (the machine's clock was
    // set back between the two, or a file from a build that kept local times east of UTC): it
    // is taken back as starting now, never held longer than its setting from here.
    let f = priced(100.0);
    let clock = Arc::new(WallClock::new(T0));
    let m = manager_with_clock(&f, holding(300.0), clock.clone());
    let btc = Key::net("BTC");
    let kept = m.restore_reopen_holds([(btc.clone(), T0.plus_seconds(7200.0))]);
    assert_eq!(kept, vec![(btc.clone(), T0)]);
    assert_eq!(m.reopen_hold_left(&btc), Some(300.0));
    clock.advance(300.0);
    assert_eq!(m.reopen_hold_left(&btc), None);
}

#[test]
fn a_state_file_of_an_earlier_build_has_its_local_times_moved_to_the_timer() {
    // Earlier builds kept holds' and tombstones' times in local time (here UTC-5): loaded under
    // the same time zone, each keeps what was left of it.
    use crate::persist::{self, SavedHold, StateFile};
    let f = priced(100.0);
    let clock = Arc::new(WallClock::new(T0));
    clock.step(-5.0 * 3600.0);
    let m = manager_with_clock(&f, holding(3600.0), clock.clone());
    let mut file = StateFile::new(m.now(), Vec::new());
    file.holds = vec![SavedHold {
        symbol: "BTC".to_owned(),
        since: m.now().plus_seconds(-10.0),
    }];
    assert!(!file.timer_frame, "as an earlier build wrote it");
    let path = super::testing::temp_path("timer-old-file");
    persist::save(&path, &file).unwrap();
    m.load_state(&path, |_, _, _| Ok(1)).unwrap();
    assert_eq!(m.reopen_hold_left(&Key::net("BTC")), Some(3590.0));
    // What this build writes says its frame, and is read back as it is.
    m.save_state(&path, |_, _| Ok(super::state::SavedExtra::default()))
        .unwrap();
    let saved = persist::load(&path).unwrap();
    assert!(saved.timer_frame);
    assert_eq!(saved.holds[0].since, T0.plus_seconds(-10.0));
}
