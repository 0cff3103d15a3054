//! Warnings about a position list's entries, said once and then at most every
//! [`REPEAT_EVERY_US`] while the lists keep showing them.
//!
//! A venue that keeps sending one entry the manager cannot use (an unreadable size, an unknown
//! market) made the same WARNING at every list read — with a bot cycling every few seconds,
//! thousands a day (noticed in stop 42's note). A warning is now said at WARNING when it
//! first appears, and again only when it has been shown by every list read since and
//! [`REPEAT_EVERY_US`] has passed, with how many times it was held back; in between it goes to
//! DEBUG. A warning missing from one list read is new again when it comes back, so an entry
//! that was mended and then broke again is said at once.
//! A warning is known by its text without the entries' places in the list (`#3`), which move
//! when the venue lists its positions in another order.
//!
//! [`Repeats::sort`] is pure (no lock, no logging): the manager sorts under its mutex, lets go,
//! and then logs.

use std::collections::HashMap;

/// How long a warning shown by every list read is held back before it is said again: 5 min.
pub const REPEAT_EVERY_US: i64 = 300_000_000;

/// What one warning of a list read comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Say {
    /// Said at WARNING (with how many times it was held back, when it was).
    Warn(String),
    /// Held back: said at DEBUG only.
    Quiet(String),
}

#[derive(Clone, Copy, Debug)]
struct Told {
    /// When it was last said at WARNING (the manager's timer, µs).
    said_at: i64,
    /// Times held back since.
    held: u64,
}

/// The warnings of the last list read, with when each was last said, by [`identity`].
#[derive(Debug, Default)]
pub struct Repeats {
    last: HashMap<String, Told>,
}

/// What makes two warnings the same one: their text without the entries' places in the list
/// (`#3`), which change whenever the venue lists its positions in another order.
fn identity(warning: &str) -> String {
    let mut out = String::with_capacity(warning.len());
    let mut chars = warning.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '#' {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
        }
    }
    out
}

impl Repeats {
    /// Sorts the warnings of one list read made at `now_us` (the manager's timer); forgets
    /// every warning that read did not show — unless the read was `partial` (the entries of
    /// one symbol only: [`crate::exchange::SymbolEntries`]), which cannot tell about others.
    pub fn sort(&mut self, now_us: i64, warnings: &[String], partial: bool) -> Vec<Say> {
        let mut shown: HashMap<String, Told> = HashMap::with_capacity(warnings.len());
        let mut out = Vec::with_capacity(warnings.len());
        for warning in warnings {
            // The same warning twice in one read (two entries alike): one entry of the record.
            let id = identity(warning);
            let before = shown.get(&id).or_else(|| self.last.get(&id)).copied();
            let (told, say) = match before {
                Some(t) if now_us.saturating_sub(t.said_at) < REPEAT_EVERY_US => (
                    Told {
                        said_at: t.said_at,
                        held: t.held + 1,
                    },
                    Say::Quiet(warning.clone()),
                ),
                Some(t) if t.held > 0 => (
                    Told {
                        said_at: now_us,
                        held: 0,
                    },
                    Say::Warn(format!(
                        "{warning} (still so: held back {} time{} since it was last logged)",
                        t.held,
                        if t.held == 1 { "" } else { "s" }
                    )),
                ),
                _ => (
                    Told {
                        said_at: now_us,
                        held: 0,
                    },
                    Say::Warn(warning.clone()),
                ),
            };
            shown.insert(id, told);
            out.push(say);
        }
        if partial {
            self.last.extend(shown);
        } else {
            self.last = shown;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(s: &str) -> Vec<String> {
        vec![s.to_owned()]
    }

    const S: i64 = 1_000_000;

    #[test]
    fn a_warning_is_said_once_then_every_five_minutes_with_what_was_held_back() {
        let mut r = Repeats::default();
        assert_eq!(r.sort(0, &w("A"), false), [Say::Warn("A".into())]);
        assert_eq!(r.sort(10 * S, &w("A"), false), [Say::Quiet("A".into())]);
        assert_eq!(r.sort(299 * S, &w("A"), false), [Say::Quiet("A".into())]);
        assert_eq!(
            r.sort(300 * S, &w("A"), false),
            [Say::Warn(
                "A (still so: held back 2 times since it was last logged)".into()
            )]
        );
        assert_eq!(r.sort(301 * S, &w("A"), false), [Say::Quiet("A".into())]);
        assert_eq!(
            r.sort(600 * S, &w("A"), false),
            [Say::Warn(
                "A (still so: held back 1 time since it was last logged)".into()
            )]
        );
    }

    #[test]
    fn a_warning_a_read_did_not_show_is_new_when_it_comes_back() {
        let mut r = Repeats::default();
        r.sort(0, &w("A"), false);
        assert_eq!(r.sort(S, &w("B"), false), [Say::Warn("B".into())]);
        assert_eq!(r.sort(2 * S, &w("A"), false), [Say::Warn("A".into())]);
        r.sort(3 * S, &[], false);
        assert_eq!(r.sort(4 * S, &w("A"), false), [Say::Warn("A".into())]);
        // A read of one symbol's entries tells nothing about the others.
        r.sort(5 * S, &w("B"), true);
        assert_eq!(r.sort(6 * S, &w("A"), false), [Say::Quiet("A".into())]);
    }

    #[test]
    fn a_warning_is_the_same_one_at_another_place_in_the_list() {
        let mut r = Repeats::default();
        let at = |i: usize| vec![format!("Position entry #{i} repeats the short entry for A")];
        assert_eq!(r.sort(0, &at(2), false), [Say::Warn(at(2)[0].clone())]);
        assert_eq!(r.sort(S, &at(1), false), [Say::Quiet(at(1)[0].clone())]);
        assert_eq!(
            r.sort(2 * S, &at(12), false),
            [Say::Quiet(at(12)[0].clone())]
        );
        assert_eq!(identity("#12 a #3b # #x"), "# a #b # #x");
    }

    #[test]
    fn the_same_text_twice_in_one_read_is_said_once() {
        let mut r = Repeats::default();
        let twice = vec!["A".to_owned(), "A".to_owned()];
        assert_eq!(
            r.sort(0, &twice, false),
            [Say::Warn("A".into()), Say::Quiet("A".into())]
        );
        assert_eq!(
            r.sort(S, &twice, false),
            [Say::Quiet("A".into()), Say::Quiet("A".into())]
        );
    }

    proptest! {
        /// Over any run of reads, a warning is said at WARNING exactly when it is new (missing
        /// from the read before) or five minutes have passed since it was last said; nothing
        /// is ever dropped (every warning is said at one level or the other).
        #[test]
        fn said_exactly_when_new_or_due(
            reads in proptest::collection::vec(
                (0i64..400, proptest::collection::vec(0u8..3, 0..4)),
                1..60,
            )
        ) {
            let mut r = Repeats::default();
            let mut now = 0i64;
            let mut before: Vec<String> = Vec::new();
            let mut said_at: HashMap<String, i64> = HashMap::new();
            for (step, ids) in reads {
                now += step * S;
                let texts: Vec<String> = ids.iter().map(|i| format!("w{i}")).collect();
                let out = r.sort(now, &texts, false);
                prop_assert_eq!(out.len(), texts.len());
                let mut seen_here: Vec<&String> = Vec::new();
                for (text, say) in texts.iter().zip(&out) {
                    let first_here = !seen_here.contains(&text);
                    seen_here.push(text);
                    let new = !before.contains(text);
                    let due = said_at.get(text).is_none_or(|t| now - t >= REPEAT_EVERY_US);
                    match say {
                        Say::Warn(s) => {
                            prop_assert!(first_here && (new || due), "{} said again", text);
                            prop_assert!(s.starts_with(text.as_str()));
                            said_at.insert(text.clone(), now);
                        }
                        Say::Quiet(s) => {
                            prop_assert!(!first_here || (!new && !due), "{} held back", text);
                            prop_assert_eq!(s, text);
                        }
                    }
                }
                for text in &before {
                    if !texts.contains(text) {
                        said_at.remove(text);
                    }
                }
                before = texts;
            }
        }
    }
}
