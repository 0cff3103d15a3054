//! Reads for one position (a close's check, an order's verification) read only that symbol's
//! entries in full: the outcome, the events, the book and the exchange calls are those of a read
//! of every entry, and the rest of the answer is read — never requested again — only when the
//! question whether the list is blind comes up.

use super::testing::{listed, manager, Fake};
use super::{CloseOutcome, Manager, ManagerConfig};
use crate::book::share;
use crate::clock::Timestamp;
use crate::error::CoreResult;
use crate::exchange::{Field, RawEntry, RawPosition};
use crate::position::PositionState;
use crate::reconcile::Mode;

const T0: Timestamp = Timestamp(1_735_689_600_000_000);

struct Scenario {
    name: &'static str,
    config: ManagerConfig,
    /// Book keys tracked before the close (longs, entry 100, 1 contract).
    tracked: &'static [&'static str],
    /// What `get_open_positions` answers, call after call (then the last one again).
    answers: Vec<CoreResult<Vec<RawEntry>>>,
    /// The key closed.
    close: &'static str,
    /// Whether the partial read has to read the rest of its answer.
    reads_whole: bool,
}

struct Seen {
    outcome: CloseOutcome,
    events: Vec<(String, &'static str, String)>,
    book: Vec<String>,
    calls: Vec<String>,
}

fn run(s: &Scenario, partial: bool) -> Seen {
    let fake = Fake::default();
    {
        let mut st = fake.0.lock();
        st.price = Some(101.0);
        st.close_ok = true;
        st.partial_reads = partial;
        let mut answers = s.answers.clone();
        st.positions = answers
            .last()
            .cloned()
            .and_then(Result::ok)
            .unwrap_or_default();
        answers.pop();
        st.scripted = answers.into();
    }
    let m: Manager<u32> = manager(&fake, s.config.clone());
    for (i, key) in s.tracked.iter().enumerate() {
        let side = if key.ends_with("@short") {
            "short"
        } else {
            "long"
        };
        let (stop, tp) = if side == "long" {
            (95.0, 110.0)
        } else {
            (105.0, 90.0)
        };
        let state = PositionState::new(*key, side, 100.0, 1.0, 10.0, stop, Some(tp), T0);
        m.book().insert(key, share(state), i as u32);
    }
    let outcome = m
        .close_position(s.close, "manual")
        .expect("no interruption");
    Seen {
        outcome,
        events: m
            .events()
            .all()
            .into_iter()
            .filter(|e| e.kind != crate::events::EventKind::Added)
            .map(|e| (e.symbol, e.kind.name(), e.reason))
            .collect(),
        book: m
            .book()
            .keys()
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect(),
        calls: fake.calls(),
    }
}

fn garbage(symbol: &str) -> RawEntry {
    let mut raw = RawPosition::with_symbol(symbol);
    raw.side = Field::Text("long".into());
    raw.contracts = Field::Text("junk".into());
    RawEntry::Position(Box::new(raw))
}

fn no_symbol() -> RawEntry {
    let mut raw = RawPosition::with_symbol("");
    raw.symbol = Field::Null;
    RawEntry::Position(Box::new(raw))
}

fn scenarios() -> Vec<Scenario> {
    let l = |s: &str| listed(s, "long", 1.0, 100.0);
    let two = || vec![l("A"), l("B")];
    vec![
        Scenario {
            name: "listed: closed, nothing else read",
            config: ManagerConfig::default(),
            tracked: &["A", "B"],
            answers: vec![Ok(two())],
            close: "A",
            reads_whole: false,
        },
        Scenario {
            name: "gone while others are listed: removed with one request",
            config: ManagerConfig::default(),
            tracked: &["A", "B"],
            answers: vec![Ok(vec![l("B"), l("C")])],
            close: "A",
            reads_whole: true,
        },
        Scenario {
            name: "blind list: the rest is read, then a second request",
            config: ManagerConfig::default(),
            tracked: &["A", "B"],
            answers: vec![Ok(vec![]), Ok(two())],
            close: "A",
            reads_whole: true,
        },
        Scenario {
            name: "blind twice: removed after the second request",
            config: ManagerConfig::default(),
            tracked: &["A"],
            answers: vec![Ok(vec![]), Ok(vec![])],
            close: "A",
            reads_whole: true,
        },
        Scenario {
            name: "other symbols' entries only: blind for A and B",
            config: ManagerConfig::default(),
            tracked: &["A", "B"],
            answers: vec![Ok(vec![l("C")]), Ok(two())],
            close: "A",
            reads_whole: true,
        },
        Scenario {
            name: "a failed read: nothing sent",
            config: ManagerConfig::default(),
            tracked: &["A"],
            answers: vec![Err(super::testing::network_error()), Ok(vec![l("A")])],
            close: "A",
            reads_whole: false,
        },
        Scenario {
            name: "an unusable entry for the symbol: presence, closed",
            config: ManagerConfig::default(),
            tracked: &["A", "B"],
            answers: vec![Ok(vec![garbage("A"), l("B")])],
            close: "A",
            reads_whole: false,
        },
        Scenario {
            name: "an entry without a symbol: no proof of absence, nothing sent",
            config: ManagerConfig::default(),
            tracked: &["A", "B"],
            answers: vec![Ok(vec![l("B"), no_symbol()])],
            close: "A",
            reads_whole: false,
        },
        Scenario {
            name: "not a mapping: no proof of absence, the listed symbol is not closed",
            config: ManagerConfig::default(),
            tracked: &["A"],
            answers: vec![Ok(vec![RawEntry::NotAMapping("str".into()), l("A")])],
            close: "A",
            reads_whole: false,
        },
        Scenario {
            name: "another symbol's garbage is not read",
            config: ManagerConfig::default(),
            tracked: &["A", "B"],
            answers: vec![Ok(vec![garbage("B"), l("A")])],
            close: "A",
            reads_whole: false,
        },
        Scenario {
            name: "one miss is not enough under missing_confirmations=2",
            config: ManagerConfig {
                missing_confirmations: 2,
                ..ManagerConfig::default()
            },
            tracked: &["A", "B"],
            answers: vec![Ok(vec![l("B")])],
            close: "A",
            reads_whole: false,
        },
        Scenario {
            name: "hedge mode: one leg closed, the other symbol's leg untouched",
            config: ManagerConfig {
                position_mode: Mode::Hedge,
                ..ManagerConfig::default()
            },
            tracked: &["A@long", "A@short", "B@long"],
            answers: vec![Ok(vec![
                l("B"),
                listed("A", "short", 1.0, 100.0),
                listed("A", "long", 1.0, 100.0),
            ])],
            close: "A@long",
            reads_whole: false,
        },
        Scenario {
            name: "hedge mode: the leg is gone, the other leg listed",
            config: ManagerConfig {
                position_mode: Mode::Hedge,
                ..ManagerConfig::default()
            },
            tracked: &["A@long", "A@short"],
            answers: vec![Ok(vec![listed("A", "short", 1.0, 100.0)])],
            close: "A@long",
            reads_whole: false,
        },
    ]
}

#[test]
fn a_close_reading_only_its_symbol_decides_as_a_close_reading_every_entry() {
    for s in scenarios() {
        let full = run(&s, false);
        let partial = run(&s, true);
        let name = s.name;
        assert_eq!(partial.outcome, full.outcome, "{name}");
        assert_eq!(partial.events, full.events, "{name}");
        assert_eq!(partial.book, full.book, "{name}");
        let requests = |c: &[String]| {
            c.iter()
                .filter(|c| *c != "whole")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(requests(&partial.calls), requests(&full.calls), "{name}");
        let wholes = partial.calls.iter().filter(|c| *c == "whole").count();
        assert_eq!(
            wholes,
            usize::from(s.reads_whole),
            "{name}: {:?}",
            partial.calls
        );
        assert!(!full.calls.iter().any(|c| c == "whole"), "{name}");
    }
}

#[test]
fn the_scenarios_cover_each_outcome() {
    let outcomes: Vec<CloseOutcome> = scenarios().iter().map(|s| run(s, true).outcome).collect();
    for expected in [
        CloseOutcome::AlreadyClosed,
        CloseOutcome::Unverified,
        CloseOutcome::Failed,
    ] {
        assert!(
            outcomes.contains(&expected),
            "{expected:?} not covered: {outcomes:?}"
        );
    }
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, CloseOutcome::Closed(_))));
}
