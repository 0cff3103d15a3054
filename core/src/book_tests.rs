//! The book's state machine: one state per key, changed under one lock.

use super::*;
use crate::exchange::{Field, RawEntry, RawPosition};
use crate::reconcile::{Policy, Purpose};

fn pos(symbol: &str, amount: f64) -> SharedPosition {
    share(PositionState::new(
        symbol,
        "long",
        100.0,
        amount,
        10.0,
        95.0,
        Some(110.0),
        Timestamp(0),
    ))
}

fn listed(symbol: &str, side: &str, contracts: f64, price: f64) -> RawEntry {
    let mut raw = RawPosition::with_symbol(symbol);
    raw.side = Field::Text(side.into());
    raw.contracts = Field::Number(contracts);
    raw.entry_price = Field::Number(price);
    RawEntry::Position(Box::new(raw))
}

/// Applies a list read at the book's current mark (a cycle's, unless said otherwise).
fn apply(book: &Book<u32>, entries: Vec<RawEntry>, purpose: Purpose) -> Vec<Applied<u32>> {
    apply_under(book, Policy::default(), entries, purpose)
}

/// Applies a cycle's list read at the book's current mark under `policy`.
fn apply_with(book: &Book<u32>, policy: Policy, entries: Vec<RawEntry>) -> Vec<Applied<u32>> {
    apply_under(book, policy, entries, Purpose::Cycle)
}

fn apply_under(
    book: &Book<u32>,
    policy: Policy,
    entries: Vec<RawEntry>,
    purpose: Purpose,
) -> Vec<Applied<u32>> {
    let snap = Snapshot::read(entries, book.mark());
    let cx = Context {
        snapshot: &snap,
        policy,
        timer: Timestamp(10),
        purpose,
        focus: None,
    };
    book.apply_list(&cx).0
}

fn keys(book: &Book<u32>) -> Vec<String> {
    book.keys().iter().map(|k| k.as_str().to_owned()).collect()
}

#[test]
fn the_generation_changes_with_every_change_of_what_is_tracked() {
    let book: Book<u32> = Book::new(10);
    let mut last = book.generation();
    let mut changed = |book: &Book<u32>, expected: bool| {
        let now = book.generation();
        assert_eq!(now != last, expected, "generation {last} -> {now}");
        let (at, handles) = book.handles();
        assert_eq!(at, now);
        assert_eq!(handles.len(), book.len());
        assert_eq!(book.len_now(), book.len());
        last = now;
    };
    book.insert("A", pos("A", 1.0), 1);
    changed(&book, true);
    book.insert("A", pos("A", 1.0), 2); // a replacement: another handle under the key
    changed(&book, true);
    assert_eq!(book.handles().1, [(Key::net("A"), 2)]);
    book.touch("A", &book.get("A").unwrap().0, 1.0);
    book.set_size("A", &book.get("A").unwrap().0, 2.0, None);
    changed(&book, false);
    apply(&book, vec![listed("A", "long", 2.0, 100.0)], Purpose::Cycle);
    changed(&book, false);
    apply(&book, vec![], Purpose::Cycle); // removed: a tombstone now
    changed(&book, true);
    apply(&book, vec![listed("A", "long", 2.0, 100.0)], Purpose::Cycle); // restored
    changed(&book, true);
    book.remove("A");
    changed(&book, true);
    book.insert("B", pos("B", 1.0), 3);
    changed(&book, true);
    book.clear();
    changed(&book, true);
}

#[test]
fn try_handles_answers_only_while_the_lock_is_free() {
    let book: Book<u32> = Book::new(10);
    book.insert("A", pos("A", 1.0), 1);
    book.insert("B", pos("B", 1.0), 2);
    let held = book.inner.lock();
    assert!(book.try_handles().is_none());
    drop(held);
    let (generation, handles) = book.try_handles().expect("the lock is free");
    assert_eq!(generation, book.generation());
    let got: Vec<(String, u32)> = handles
        .into_iter()
        .map(|(k, h)| (k.as_str().to_owned(), h))
        .collect();
    assert_eq!(got, [("A".to_owned(), 1), ("B".to_owned(), 2)]);
}

#[test]
fn occupied_means_tracked_or_opening_and_the_try_form_never_waits() {
    let book: Book<u32> = Book::new(10);
    let a = Key::net("A");
    assert!(!book.occupied("A"));
    assert_eq!(book.begin_open(&a, true), Ok(()));
    assert!(book.occupied("A"));
    book.end_open(&a);
    assert!(!book.occupied("A"));
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 1);
    assert!(book.occupied("A") && !book.occupied("B"));
    let held = book.inner.lock();
    assert_eq!(
        book.try_occupied("A"),
        None,
        "the lock is held: no answer, no wait"
    );
    drop(held);
    assert_eq!(book.try_occupied("A"), Some(true));
    assert_eq!(book.try_occupied("B"), Some(false));
    book.bury("A", &p, Timestamp(1)).unwrap();
    assert_eq!(
        book.try_occupied("A"),
        Some(false),
        "a tombstone is no position"
    );
}

#[test]
fn keeps_dict_order_and_a_replacements_place() {
    let book: Book<u32> = Book::new(10);
    book.insert("A", pos("A", 1.0), 1);
    book.insert("B", pos("B", 1.0), 2);
    let displaced = book.insert("A", pos("A", 1.0), 3);
    assert!(displaced.replaced().is_some());
    assert_eq!(keys(&book), ["A", "B"]);
    assert_eq!(book.get("A").unwrap().1, 3);
    book.remove("A");
    book.insert("A", pos("A", 1.0), 4);
    assert_eq!(keys(&book), ["B", "A"]);
    assert_eq!(book.len(), 2);
    let (tracked, _) = book.clear();
    assert_eq!(tracked.len(), 2);
    assert!(book.is_empty() && book.tombstone_count() == 0);
}

#[test]
fn a_removed_position_is_restored_as_the_same_object() {
    let book: Book<u32> = Book::new(10);
    let eth = pos("ETH", 1.0);
    book.insert("BTC", pos("BTC", 1.0), 1);
    book.insert("ETH", eth.clone(), 2);
    let applied = apply(
        &book,
        vec![listed("BTC", "long", 1.0, 100.0)],
        Purpose::Cycle,
    );
    assert!(matches!(&applied[..], [Applied::Removed { at, .. }] if at.key == "ETH"));
    assert_eq!(keys(&book), ["BTC"]);
    assert_eq!(book.tombstone_count(), 1);
    let applied = apply(
        &book,
        vec![
            listed("BTC", "long", 1.0, 100.0),
            listed("ETH", "long", 1.0, 100.0),
        ],
        Purpose::Cycle,
    );
    assert!(
        matches!(&applied[..], [Applied::Restored { at, reduced: false, grown: false, own_end: false, flipped_back: false }] if at.key == "ETH")
    );
    let (p, h) = book.get("ETH").unwrap();
    assert!(Arc::ptr_eq(&p, &eth));
    assert_eq!(h, 2);
    assert_eq!(book.tombstone_count(), 0);
}

/// `A`, tracked with handle 1 and listed at 4 contracts @ 100.
fn a_listed(book: &Book<u32>) -> SharedPosition {
    let p = pos("A", 4.0);
    book.insert("A", p.clone(), 1);
    apply(book, vec![listed("A", "long", 4.0, 100.0)], Purpose::Cycle);
    p
}

/// A list that shows another position only: `A` is removed (a tombstone).
fn a_unlisted(book: &Book<u32>) {
    apply(book, vec![listed("Z", "long", 1.0, 1.0)], Purpose::Cycle);
    assert!(!book.contains("A"));
}

#[test]
fn the_tombstone_holds_the_managers_own_last_state() {
    let book: Book<u32> = Book::new(10);
    let p = a_listed(&book);
    p.lock().amount = 3.0; // a partial exit of the manager's
    a_unlisted(&book);
    let applied = apply(&book, vec![listed("A", "long", 3.0, 100.0)], Purpose::Cycle);
    assert!(matches!(&applied[..], [Applied::Restored { .. }]));
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &p));
}

#[test]
fn a_tombstone_reduced_while_untracked_is_restored_with_the_exchanges_size() {
    let book: Book<u32> = Book::new(10);
    let p = a_listed(&book);
    p.lock().partial_exits_taken = 3; // two targets taken
    a_unlisted(&book);
    // Reduced by hand to 1 contract meanwhile: the same side and entry.
    let applied = apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert!(
        matches!(
            &applied[..],
            [
                Applied::Restored { reduced: true, .. },
                Applied::Resized { previous, contracts, entry_change: None, .. }
            ] if *previous == 4.0 && *contracts == 1.0
        ),
        "{applied:?}"
    );
    let (back, handle) = book.get("A").unwrap();
    assert!(Arc::ptr_eq(&back, &p) && handle == 1);
    assert_eq!(p.lock().amount, 1.0);
    assert_eq!(
        p.lock().partial_exits_taken,
        3,
        "the targets taken stay taken"
    );
}

#[test]
fn a_close_waits_for_a_list_and_is_restored_when_contradicted() {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 7);
    assert!(book.closed("A", &p, Timestamp(1), None, None));
    assert!(!book.contains("A") && book.is_empty());
    // Still listed after the close: the very same object comes back.
    let applied = apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [Applied::CloseUnconfirmed {
            contracts: None,
            ..
        }]
    ));
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &p));
    // Closed again and confirmed by absence: kept as the manager's own end.
    assert!(book.closed("A", &p, Timestamp(2), None, None));
    let applied = apply(&book, vec![listed("Z", "long", 1.0, 1.0)], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [Applied::CloseConfirmed {
            kept: EndKept::OwnEnd,
            ..
        }]
    ));
    assert!(!book.contains("A"));
    // A list that shows the very position again may lag the close: counted, not restored (nor
    // imported by a sync); a list without it starts the count again.
    let two = Policy {
        outcome_confirmations: 2,
        ..Policy::default()
    };
    let again = || vec![listed("A", "long", 1.0, 100.0)];
    for purpose in [Purpose::Cycle, Purpose::Sync] {
        let applied = apply_under(&book, two, again(), purpose);
        assert!(
            matches!(&applied[..], [Applied::ListedAgain { lists: 1, .. }]),
            "{purpose:?}: {applied:?}"
        );
        assert!(apply_with(&book, two, vec![listed("Z", "long", 1.0, 1.0)]).is_empty());
    }
    // As many lists in a row as the outcome rules ask for: the close did not end it after all.
    apply_with(&book, two, again());
    let applied = apply_with(&book, two, again());
    assert!(
        matches!(
            &applied[..],
            [Applied::Restored {
                own_end: true,
                reduced: false,
                ..
            }]
        ),
        "{applied:?}"
    );
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &p));
}

/// A book whose position `A` (1 long at 100) was closed by order `c1`, awaiting
/// confirmation, with the policy counting two lists.
fn closed_under_c1() -> (Book<u32>, SharedPosition, Key, Policy) {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 7);
    assert!(book.closed("A", &p, Timestamp(1), Some("c1"), None));
    let two = Policy {
        outcome_confirmations: 2,
        ..Policy::default()
    };
    (book, p, Key::parse("A"), two)
}

#[test]
fn a_named_close_still_listed_waits_for_its_lookup() {
    let (book, p, key, two) = closed_under_c1();
    // Still listed: the order is to be looked up; nothing changes yet.
    let applied = apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert!(
        matches!(&applied[..], [Applied::VerifyClose { order_id, .. }] if order_id == "c1"),
        "{applied:?}"
    );
    assert!(!book.contains("A"));
    let exact = StillShown {
        contracts: None,
        exact: true,
    };
    // Another order's answer changes nothing.
    assert!(book
        .close_filled(&key, "other", 1.0, exact, &two, Timestamp(2))
        .is_none());
    assert!(book.unconfirm_close(&key, "other", None).is_none());
    // Filled in part: that list was the first of two (what is left may be what it shows).
    let first = book.close_filled(&key, "c1", 0.5, exact, &two, Timestamp(2));
    assert!(
        matches!(first, Some(Applied::StillListed { lists: 1, .. })),
        "{first:?}"
    );
    assert!(!book.contains("A"));
    let applied = apply_with(&book, two, vec![listed("A", "long", 1.0, 100.0)]);
    assert!(
        matches!(
            &applied[..],
            [Applied::CloseUnconfirmed {
                contracts: None,
                ..
            }]
        ),
        "{applied:?}"
    );
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &p));
    // Closed again, and the lookup finds the order did not fill: tracked again at once.
    assert!(book.closed("A", &p, Timestamp(3), Some("c2"), None));
    apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    let back = book.unconfirm_close(&key, "c2", None);
    assert!(
        matches!(
            back,
            Some(Applied::CloseUnconfirmed {
                contracts: None,
                ..
            })
        ),
        "{back:?}"
    );
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &p));
}

/// A close whose order the venue reports filled in full, still listed exactly as it was: the
/// lists lag the fill however many show it (the crash run's Gate one-way seed 55), within
/// `tombstone_ttl_seconds` of the close; a list that shows another size is counted as before,
/// and one without the position confirms the close.
#[test]
fn a_close_filled_in_full_stays_closed_over_lists_showing_the_position_as_it_was() {
    let (book, p, key, two) = closed_under_c1();
    let as_it_was = || vec![listed("A", "long", 1.0, 100.0)];
    let applied = apply_with(&book, two, as_it_was());
    let [Applied::VerifyClose { shown, .. }] = &applied[..] else {
        panic!("{applied:?}");
    };
    assert_eq!(
        *shown,
        StillShown {
            contracts: None,
            exact: true
        }
    );
    let lags = book.close_filled(&key, "c1", 1.0, *shown, &two, Timestamp(2));
    assert!(matches!(lags, Some(Applied::CloseLags { .. })), "{lags:?}");
    for _ in 0..4 {
        let applied = apply_with(&book, two, as_it_was());
        assert!(
            matches!(&applied[..], [Applied::CloseLags { .. }]),
            "{applied:?}"
        );
        assert!(!book.contains("A"));
    }
    // Another size is counted (what is left of it may be real), then believed.
    let smaller = || vec![listed("A", "long", 0.5, 100.0)];
    let applied = apply_with(&book, two, smaller());
    assert!(
        matches!(&applied[..], [Applied::StillListed { lists: 1, .. }]),
        "{applied:?}"
    );
    let applied = apply_with(&book, two, smaller());
    assert!(
        matches!(
            &applied[..],
            [Applied::CloseUnconfirmed {
                contracts: Some(c),
                ..
            }] if *c == 0.5
        ),
        "{applied:?}"
    );
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &p));
}

#[test]
fn a_close_confirmed_by_an_empty_answer_is_remembered_as_a_tombstone() {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 1);
    apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert!(book.closed("A", &p, Timestamp(1), None, None));
    // An empty answer (a failed read of the bot's client looks the same) confirms the close...
    let applied = apply(&book, vec![], Purpose::Cycle);
    assert!(
        matches!(
            &applied[..],
            [Applied::CloseConfirmed {
                kept: EndKept::Restorable,
                ..
            }]
        ),
        "{applied:?}"
    );
    assert!(!book.contains("A") && book.awaiting_close("A", None).is_none());
    assert_eq!(book.tombstone_count(), 1);
    assert!(matches!(
        book.remembered_entry(&Key::net("A")),
        Some((Remembrance::Tombstone { .. }, kept)) if kept.handle == 1
    ));
    // ... but the very same position listed again is that position, restored.
    let applied = apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [Applied::Restored { reduced: false, .. }]
    ));
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &p));

    // A book that keeps no tombstones forgets it.
    let none: Book<u32> = Book::new(0);
    none.insert("A", p.clone(), 1);
    assert!(none.closed("A", &p, Timestamp(1), None, None));
    let applied = apply(&none, vec![], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [Applied::CloseConfirmed {
            kept: EndKept::Forgotten,
            ..
        }]
    ));
    assert_eq!(none.tombstone_count(), 0);
}

#[test]
fn one_order_per_position_and_unknown_outcomes_block_the_next() {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 1);
    assert_eq!(book.begin_order("A", &p, Op::Close), Ok(()));
    assert_eq!(
        book.begin_order("A", &p, Op::ScaleOut),
        Err(Refusal::Busy(Op::Close))
    );
    book.end_order("A", &p);
    assert_eq!(book.begin_order("A", &p, Op::ScaleOut), Ok(()));
    let unknown = Unknown {
        op: Op::ScaleOut,
        at: 0,
        before: 1.0,
        client_order_id: None,
        reason: "scale_out".into(),
        price: Some(100.0),
        target_bit: 1,
        unseen: Default::default(),
        filled: false,
    };
    let at = book.set_unknown("A", &p, unknown);
    assert!(matches!(
        book.begin_order("A", &p, Op::Close),
        Err(Refusal::Unknown(u)) if u.at == at
    ));
    // A list requested before the answer cannot tell; one requested after resolves it.
    let snap = Snapshot::read(vec![listed("A", "long", 0.5, 100.0)], at - 1);
    let cx = Context {
        snapshot: &snap,
        policy: Policy::default(),
        timer: Timestamp(10),
        purpose: Purpose::Cycle,
        focus: None,
    };
    assert!(book.apply_list(&cx).0.is_empty());
    let applied = apply(&book, vec![listed("A", "long", 0.5, 100.0)], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [Applied::Resolved { resolution: Resolution::Executed { contracts, .. }, previous, .. }]
            if *contracts == 0.5 && *previous == 1.0
    ));
    assert_eq!(p.lock().amount, 0.5);
    assert_eq!(book.activity("A"), Some(Activity::Idle));
    let other = pos("A", 1.0);
    assert_eq!(
        book.begin_order("A", &other, Op::Close),
        Err(Refusal::NotTracked)
    );
}

/// An order with an unknown outcome taken to have closed its position by an empty answer (what
/// a failed read of the bot's client looks like) keeps the position as a tombstone: the list
/// that shows it again, reduced by the order, restores the same position with the exchange's
/// size. By a list showing other positions it is kept as the manager's own end: restored only
/// once the outcome rules' lists show it.
#[test]
fn a_position_an_unknown_order_closed_by_an_empty_answer_is_remembered() {
    let two = Policy {
        outcome_confirmations: 2,
        ..Policy::default()
    };
    for (entries, doubtful) in [
        (vec![], true),
        (vec![listed("B", "long", 1.0, 100.0)], false),
    ] {
        let book: Book<u32> = Book::new(10);
        let p = pos("A", 4.0);
        book.insert("A", p.clone(), 1);
        book.begin_order("A", &p, Op::ScaleOut).unwrap();
        p.lock().partial_exits_taken = 1; // the manager claims the target before the order
        let unknown = Unknown {
            op: Op::ScaleOut,
            at: 0,
            before: 4.0,
            client_order_id: None,
            reason: "scale_out".into(),
            price: Some(100.0),
            target_bit: 1,
            unseen: Default::default(),
            filled: false,
        };
        book.set_unknown("A", &p, unknown);
        let applied = apply(&book, entries, Purpose::Cycle);
        let kept = if doubtful {
            EndKept::Restorable
        } else {
            EndKept::OwnEnd
        };
        assert!(matches!(
            &applied[..],
            [Applied::Resolved { resolution: Resolution::Closed, kept: k, .. }] if *k == kept
        ));
        assert!(!book.contains("A"));
        assert_eq!(book.tombstone_count(), 1);
        let reduced = || vec![listed("A", "long", 3.0, 100.0)];
        if !doubtful {
            let applied = apply_with(&book, two, reduced());
            assert!(
                matches!(&applied[..], [Applied::ListedAgain { lists: 1, .. }]),
                "{applied:?}"
            );
        }
        let applied = apply_with(&book, two, reduced());
        {
            assert!(matches!(
                &applied[..],
                [
                    Applied::Restored { reduced: true, .. },
                    Applied::Resized { .. }
                ]
            ));
            let (again, _) = book.get("A").unwrap();
            assert!(Arc::ptr_eq(&again, &p));
            assert_eq!(p.lock().amount, 3.0);
            assert_eq!(
                p.lock().partial_exits_taken,
                1,
                "the claimed target stays taken"
            );
        }
    }
}

#[test]
fn a_target_claimed_for_an_order_that_did_nothing_is_released() {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    p.lock().partial_exits_taken = 0b10;
    book.insert("A", p.clone(), 1);
    book.begin_order("A", &p, Op::ScaleOut).unwrap();
    let unknown = Unknown {
        op: Op::ScaleOut,
        at: 0,
        before: 1.0,
        client_order_id: None,
        reason: "target".into(),
        price: None,
        target_bit: 0b10,
        unseen: Default::default(),
        filled: false,
    };
    book.set_unknown("A", &p, unknown.clone());
    apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert_eq!(p.lock().partial_exits_taken, 0);

    // With a client id, the list leaves it to the caller to ask the venue first; taken as not
    // executed then, the target is released too.
    p.lock().partial_exits_taken = 0b10;
    book.begin_order("A", &p, Op::ScaleOut).unwrap();
    let unknown = Unknown {
        client_order_id: Some("pm2".into()),
        ..unknown
    };
    book.set_unknown("A", &p, unknown);
    let applied = apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert!(
        matches!(&applied[..], [Applied::VerifyChange { order_id, .. }] if order_id == "pm2"),
        "{applied:?}"
    );
    assert_eq!(
        p.lock().partial_exits_taken,
        0b10,
        "held while the venue is asked"
    );
    assert!(book.resolve_not_executed(&Key::net("A"), "other").is_none());
    let resolved = book.resolve_not_executed(&Key::net("A"), "pm2");
    assert!(matches!(resolved, Some(Applied::Resolved { .. })));
    assert_eq!(p.lock().partial_exits_taken, 0);
    assert!(matches!(book.activity("A"), Some(Activity::Idle)));
}

#[test]
fn opens_are_reserved_and_remembered_keys_are_checked_first() {
    let book: Book<u32> = Book::new(10);
    let a = Key::net("A");
    assert_eq!(book.begin_open(&a, true), Ok(()));
    assert!(book.open_in_flight("A") && !book.contains("A"));
    assert_eq!(book.begin_open(&a, true), Err(OpenRefusal::Opening));
    book.end_open(&a);
    assert!(!book.is_opening("A"));
    // A tombstone must be checked against the exchange before an open.
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 1);
    assert_eq!(book.begin_open(&a, true), Err(OpenRefusal::Tracked));
    book.bury("A", &p, Timestamp(1)).unwrap();
    assert_eq!(book.begin_open(&a, true), Err(OpenRefusal::Verify));
    assert!(book.forget_tombstone(&a).is_some());
    // So must a symbol the last list showed untracked.
    let snap = Arc::new(Snapshot::read(
        vec![listed("A", "long", 1.0, 100.0)],
        book.mark(),
    ));
    book.note_list(snap.clone());
    assert_eq!(book.begin_open(&a, true), Err(OpenRefusal::Verify));
    assert_eq!(book.begin_open(&a, false), Ok(()));
    book.end_open(&a);
    // A list requested before the one the book remembers (another thread's, noted late)
    // does not replace it; a later one does.
    let later = Arc::new(Snapshot::read(Vec::new(), snap.requested_at + 1));
    book.note_list(later.clone());
    book.note_list(snap);
    assert_eq!(book.begin_open(&a, true), Ok(()));
    book.end_open(&a);
    book.note_list(Arc::new(Snapshot::read(
        vec![listed("A", "long", 1.0, 100.0)],
        later.requested_at,
    )));
    assert_eq!(book.begin_open(&a, true), Err(OpenRefusal::Verify));
}

#[test]
fn an_open_with_an_unknown_outcome_is_resolved_by_a_later_list() {
    let book: Book<u32> = Book::new(10);
    let a = Key::net("A");
    book.begin_open(&a, false).unwrap();
    let intent = OpenIntent {
        side: Side::Long,
        amount: 2.0,
        leverage: 5.0,
        stop_loss_percentage: 0.05,
        price: 100.0,
        client_order_id: None,
    };
    book.open_unknown(&a, intent.clone());
    book.end_open(&a); // the reservation stays while the outcome is unknown
    assert!(book.is_opening("A") && !book.open_in_flight("A"));
    assert_eq!(book.open_intent("A"), Some(intent.clone()));
    let applied = apply(&book, vec![listed("A", "long", 2.0, 101.0)], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [Applied::OpenResolved { found: true, .. }]
    ));
    // Not found: the reservation goes.
    let b = Key::net("B");
    book.begin_open(&b, false).unwrap();
    book.open_unknown(&b, intent);
    let applied = apply(&book, vec![listed("Z", "long", 1.0, 1.0)], Purpose::Cycle);
    assert!(applied
        .iter()
        .any(|a| matches!(a, Applied::OpenResolved { key, found: false, .. } if key == "B")));
    assert!(!book.is_opening("B"));
}

#[test]
fn a_flip_keeps_the_replaced_position_restorable() {
    let book: Book<u32> = Book::new(10);
    let long = pos("A", 1.0);
    book.insert("A", long.clone(), 1);
    let applied = apply(&book, vec![listed("A", "short", 2.0, 90.0)], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [Applied::Removed { flipped_to: Some((Side::Short, c)), .. }, Applied::Import { after: Succession::Flip, .. }]
            if *c == 2.0
    ));
    // The caller imports the new side; the long stays behind it as its predecessor.
    let short = share(PositionState::new(
        "A",
        "short",
        90.0,
        2.0,
        10.0,
        95.0,
        None,
        Timestamp(0),
    ));
    let mark = book.mark();
    assert!(book
        .insert_import(&Key::net("A"), short.clone(), 2, mark)
        .is_ok());
    assert_eq!(
        book.tombstone_count(),
        0,
        "the predecessor is not a tombstone of its own"
    );
    // The long is listed again: the short goes, the long comes back, same object.
    let applied = apply(&book, vec![listed("A", "long", 1.0, 100.0)], Purpose::Cycle);
    assert!(matches!(
        &applied[..],
        [
            Applied::Removed {
                flipped_to: Some((Side::Long, _)),
                ..
            },
            Applied::Restored { .. }
        ]
    ));
    assert!(Arc::ptr_eq(&book.get("A").unwrap().0, &long));
}

#[test]
fn an_import_never_overwrites_what_the_manager_did_meanwhile() {
    let book: Book<u32> = Book::new(10);
    let a = Key::net("A");
    let mark = book.mark();
    book.begin_open(&a, false).unwrap();
    assert!(book.insert_import(&a, pos("A", 1.0), 1, mark).is_err());
    book.end_open(&a);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 2);
    let requested_before_close = book.mark();
    book.closed("A", &p, Timestamp(1), None, None);
    assert!(
        book.insert_import(&a, pos("A", 1.0), 3, requested_before_close)
            .is_err(),
        "a list requested before our close of it must not import it (E24)"
    );
}

#[test]
fn tombstones_are_bounded_and_expire() {
    let book: Book<u32> = Book::new(2);
    for (i, s) in ["A", "B", "C"].iter().enumerate() {
        let p = pos(s, 1.0);
        book.insert(s, p.clone(), 0);
        let (_, _, evicted) = book.bury(s, &p, Timestamp(i as i64)).unwrap();
        assert_eq!(evicted.slots.len(), usize::from(i == 2));
    }
    assert_eq!(book.tombstone_count(), 2);
    let snap = Snapshot::read(vec![], book.mark());
    let cx = Context {
        snapshot: &snap,
        policy: Policy {
            tombstone_ttl_seconds: 1.0,
            ..Policy::default()
        },
        timer: Timestamp(2_500_000),
        purpose: Purpose::Cycle,
        focus: None,
    };
    let (_, gone) = book.apply_list(&cx);
    assert_eq!(gone.slots.len(), 2);
    assert_eq!(book.tombstone_count(), 0);
}

#[test]
fn sizes_changed_by_the_manager_are_not_undone_by_an_older_list() {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 1);
    let before = book.mark();
    p.lock().amount = 2.0;
    book.touch("A", &p, 1.0);
    let snap = Snapshot::read(vec![listed("A", "long", 1.0, 100.0)], before);
    let cx = Context {
        snapshot: &snap,
        policy: Policy::default(),
        timer: Timestamp(10),
        purpose: Purpose::Cycle,
        focus: None,
    };
    assert!(book.apply_list(&cx).0.is_empty());
    assert_eq!(p.lock().amount, 2.0);
}

#[test]
fn a_focused_plan_reads_only_its_key_and_plans_as_a_plan_over_every_key() {
    let book: Book<u32> = Book::new(10);
    for (i, s) in ["A", "B", "C", "D", "E"].iter().enumerate() {
        book.insert(s, pos(s, 1.0), i as u32);
    }
    // A tombstone (E removed by a list without it), a close awaiting its list (D).
    apply(
        &book,
        ["A", "B", "C", "D"]
            .iter()
            .map(|s| listed(s, "long", 1.0, 100.0))
            .collect(),
        Purpose::Cycle,
    );
    let d = book.get("D").unwrap().0;
    assert!(book.closed("D", &d, Timestamp(5), None, None));
    let mut no_symbol = RawPosition::with_symbol("");
    no_symbol.symbol = Field::Null;
    let lists: Vec<Vec<RawEntry>> = vec![
        vec![],
        vec![listed("B", "long", 1.0, 100.0)],
        vec![listed("X", "long", 1.0, 100.0)],
        vec![
            listed("A", "long", 2.0, 100.0),
            listed("E", "long", 1.0, 100.0),
        ],
        vec![listed("A", "short", 1.0, 100.0)],
        vec![RawEntry::Position(Box::new(no_symbol))],
    ];
    for entries in lists {
        let snap = Snapshot::read(entries, book.mark());
        for focus in ["A", "B", "D", "E", "Z"].map(Key::net) {
            for purpose in [Purpose::Verify, Purpose::Cycle, Purpose::Reconcile] {
                let cx = Context {
                    snapshot: &snap,
                    policy: Policy::default(),
                    timer: Timestamp(10),
                    purpose,
                    focus: Some(&focus),
                };
                let inner = book.inner.lock();
                let views: Vec<KeyView<'_>> = views_in(&inner, true).collect();
                let known = |k: &str| inner.slots.contains_key(k);
                let everything = reconcile::plan(&views, &known, &cx);
                assert_eq!(plan_in(&inner, &cx), everything, "{focus} {purpose:?}");
            }
        }
    }
}

/// The manager's default count: two lists settle an outcome.
fn two() -> Policy {
    Policy {
        outcome_confirmations: 2,
        ..Policy::default()
    }
}

/// The manager's own scale order filled (1 -> 2 contracts); a list requested later still shows
/// 1 contract. It may lag the fill, so it resizes the position only once the outcome rules'
/// `outcome_confirmations` lists in a row show it.
#[test]
fn a_later_list_showing_the_size_before_the_managers_fill_waits_for_the_outcome_rules() {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 1);
    p.lock().amount = 2.0;
    book.touch("A", &p, 1.0);
    let lagging = || vec![listed("A", "long", 1.0, 100.0)];
    let applied = apply_with(&book, two(), lagging());
    assert!(
        matches!(&applied[..], [Applied::SizeLags { listed, book: b, lists: 1, .. }] if *listed == 1.0 && *b == 2.0),
        "{applied:?}"
    );
    assert_eq!(p.lock().amount, 2.0);
    let applied = apply_with(&book, two(), lagging());
    assert!(
        matches!(&applied[..], [Applied::Resized { contracts, .. }] if *contracts == 1.0),
        "{applied:?}"
    );
    assert_eq!(p.lock().amount, 1.0);
}

/// Once a list shows the size the manager's fill left, an older size is news again: a later
/// list showing it resizes at once (a reduction by hand, say). So does a size that was never
/// the position's, and a wait ends with any list showing the book's size.
#[test]
fn a_list_showing_the_fills_size_ends_the_wait() {
    let book: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    book.insert("A", p.clone(), 1);
    p.lock().amount = 3.0;
    book.touch("A", &p, 1.0);
    assert!(apply_with(&book, two(), vec![listed("A", "long", 3.0, 100.0)]).is_empty());
    let applied = apply_with(&book, two(), vec![listed("A", "long", 1.0, 100.0)]);
    assert!(
        matches!(&applied[..], [Applied::Resized { contracts, .. }] if *contracts == 1.0),
        "{applied:?}"
    );

    p.lock().amount = 2.0;
    book.touch("A", &p, 1.0);
    let applied = apply_with(&book, two(), vec![listed("A", "long", 5.0, 100.0)]);
    assert!(
        matches!(&applied[..], [Applied::Resized { contracts, .. }] if *contracts == 5.0),
        "{applied:?}"
    );

    p.lock().amount = 4.0;
    book.touch("A", &p, 5.0);
    p.lock().amount = 3.0;
    book.touch("A", &p, 4.0);
    // A list lagging both fills shows 5; then one lagging only the last shows 4: both counted
    // in one run, so the second is believed.
    let applied = apply_with(&book, two(), vec![listed("A", "long", 5.0, 100.0)]);
    assert!(
        matches!(&applied[..], [Applied::SizeLags { lists: 1, .. }]),
        "{applied:?}"
    );
    let applied = apply_with(&book, two(), vec![listed("A", "long", 4.0, 100.0)]);
    assert!(
        matches!(&applied[..], [Applied::Resized { contracts, .. }] if *contracts == 4.0),
        "{applied:?}"
    );
}

/// What no list has shown yet of the manager's own fills comes back with a restored entry (a
/// restart from a journal or a state file): a fresh open's fill is untracked only after the
/// outcome rules' lists omit it, a size from before a scale fill waits for them too, and the
/// lists counted before the restart start again from none. At most [`FILL_LAG_SIZES`] sizes
/// are taken back, the newest.
#[test]
fn what_no_list_has_shown_comes_back_with_a_restored_entry() {
    let before: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    drop(before.finish_open(&Key::parse("A"), p.clone(), 1, true));
    p.lock().amount = 2.0;
    assert!(before.touch("A", &p, 1.0), "a fill");
    assert!(!before.touch("A", &p, 2.0), "no fill: nothing to note");
    let kept = before.sighting("A", &p);
    assert_eq!(
        kept.unlisted,
        UnlistedFills {
            open: true,
            sizes_before: vec![1.0]
        }
    );
    assert_eq!(before.sighting("A", &pos("A", 1.0)), Sighting::default());

    let restored = |book: &Book<u32>| {
        let q = pos("A", 2.0);
        drop(book.insert("A", q.clone(), 1));
        assert_eq!(
            book.sighting("A", &q),
            Sighting::default(),
            "not restored yet"
        );
        book.restore_sighting("A", &q, kept.clone());
        q
    };
    // Lists lagging the open: two omit it before it is untracked.
    let after: Book<u32> = Book::new(10);
    restored(&after);
    let applied = apply_with(&after, two(), vec![]);
    assert!(
        after.contains("A"),
        "one list cannot tell a lag from a close: {applied:?}"
    );
    apply_with(&after, two(), vec![]);
    assert!(!after.contains("A"), "the second list is believed");
    // A list lagging the scale fill: counted, not believed.
    let after: Book<u32> = Book::new(10);
    let q = restored(&after);
    let applied = apply_with(&after, two(), vec![listed("A", "long", 1.0, 100.0)]);
    assert!(
        matches!(&applied[..], [Applied::SizeLags { lists: 1, .. }]),
        "{applied:?}"
    );
    assert_eq!(q.lock().amount, 2.0);

    let many: Book<u32> = Book::new(10);
    let r = pos("B", 20.0);
    drop(many.insert("B", r.clone(), 1));
    let sizes: Vec<f64> = (1..=10).map(f64::from).collect();
    many.restore_sighting(
        "B",
        &r,
        Sighting {
            listed: None,
            unlisted: UnlistedFills {
                open: false,
                sizes_before: sizes.clone(),
            },
        },
    );
    assert_eq!(
        many.sighting("B", &r).unlisted.sizes_before,
        sizes[sizes.len() - FILL_LAG_SIZES..].to_vec()
    );
}

/// A close's order id comes back with a restored close awaiting confirmation: a list that
/// still shows the position has the order looked up first, as before the restart.
#[test]
fn a_restored_close_keeps_its_orders_id_for_the_lookup() {
    let before: Book<u32> = Book::new(10);
    let p = pos("A", 1.0);
    drop(before.insert("A", p.clone(), 7));
    assert!(before.closed("A", &p, Timestamp(1), Some("c1"), None));
    assert_eq!(before.close_order_id("A", &p).as_deref(), Some("c1"));
    let (_, kept) = before.remembered_entry(&Key::parse("A")).unwrap();
    assert_eq!(kept.close_order_id.as_deref(), Some("c1"));

    let after: Book<u32> = Book::new(10);
    let q = pos("A", 1.0);
    let restored = KeptEntry {
        position: q.clone(),
        ..kept
    };
    assert!(after.put_back_close(restored).is_ok());
    let applied = apply(
        &after,
        vec![listed("A", "long", 1.0, 100.0)],
        Purpose::Cycle,
    );
    assert!(
        matches!(&applied[..], [Applied::VerifyClose { order_id, .. }] if order_id == "c1"),
        "{applied:?}"
    );
    assert!(!after.contains("A"), "held for the lookup");
}
