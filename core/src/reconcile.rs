//! The planner: one pure function from (the book's state, one read list, the policy, the time,
//! what the list was read for) to every change the list calls for.
//!
//! Nothing here locks, calls out or reads a clock: [`crate::book::Book::apply_list`] builds the
//! views under the book's lock, calls [`plan`] and applies its actions in the same critical
//! section; the manager then records events, logs, and does what needs the exchange or Python
//! (imports, the price behind a removal's reason).
//!
//! The rules (DESIGN.md, safety rules 3–7):
//! - only a well-formed list proves absence, and only for book entries older than the request
//!   (rule 4, by sequence marks);
//! - a position must be missing from `missing_confirmations` lists in a row, over at least
//!   `missing_grace_seconds`, to be removed; a side flip is decided the same way;
//! - an unusable entry (garbage size, unknown side, a minimal `{'symbol': s}`) is presence only: it
//!   keeps a position and changes nothing else;
//! - a removed position is restored — same object — when a later list shows the very same
//!   position (side, size and entry price) again, or it reduced; so is one a side flip
//!   replaced; one whose end failed reads or lagging lists also show (doubtful) is restored by
//!   a listing of its side with more contracts too (added to while it was not tracked);
//! - a close the manager made waits for a list requested after it: absent confirms it, the same
//!   position still listed restores it (`close_unconfirmed`, with the listed size) — unless the
//!   close order carries a client id: then it is looked up first, and once known filled the list
//!   is taken to lag it (at whatever size) until `outcome_confirmations` lists in a row show the
//!   position — and, when the order filled the whole position, whatever the count for listings of
//!   exactly that position, within `tombstone_ttl_seconds` of the close;
//! - an order whose outcome is unknown is resolved by the first list requested after it that
//!   shows its effect (executed, closed); that it did nothing (the exchange holds what it held
//!   before, an open's position is not listed) needs `outcome_confirmations` lists in a row over
//!   at least `outcome_grace_seconds`, because a venue's list can lag its fills; a position the
//!   manager's own open filled is removed only on as much absence until a list has shown it;
//! - a list that shows none of the positions the manager believes open, and would act on their
//!   absence, must be corroborated by a second read before it is acted on.

use crate::clock::Timestamp;
use crate::key::{Key, Leg, Side};
use crate::snapshot::{Listed, Seen, Snapshot};

/// Relative difference below which two sizes are the same size (float dust of subtraction).
pub const SIZE_TOLERANCE: f64 = 1e-9;
/// Relative difference below which two entry prices are the same price (an exchange's average
/// entry rounded to its tick against the manager's own average).
pub const PRICE_TOLERANCE: f64 = 1e-6;

/// Relative difference beyond which a listed entry price is not an entry the tracked position
/// could have on the exchange ([`replaced`]): far above the rounding of a venue's average entry
/// and of the manager's own weighted average against the venue's (a few 1e-5 at worst), so a
/// position reduced on the exchange is never taken for another one by it; a position replaced
/// at an entry this close to the old one's is taken for it resized, as before.
pub const REPLACED_PRICE_TOLERANCE: f64 = 1e-3;

/// Whether two positive quantities are equal within a relative tolerance.
pub fn close_enough(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs())
}

/// What identifies "the very same position" on the exchange: side, size and entry price.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// The side.
    pub side: Side,
    /// Size in contracts.
    pub contracts: f64,
    /// Entry price.
    pub entry_price: f64,
}

impl Fingerprint {
    /// Whether a listed entry is this position: same side, same size, and the same entry price
    /// when the list reports one.
    pub fn matches(&self, listed: &Listed) -> bool {
        self.side == listed.side
            && close_enough(self.contracts, listed.contracts, SIZE_TOLERANCE)
            && listed
                .entry_price
                .is_none_or(|p| close_enough(self.entry_price, p, PRICE_TOLERANCE))
    }

    /// Whether a listed entry is this position reduced: same side and the same entry price
    /// (which the list must report, and a reduction leaves as it was), fewer contracts. Not
    /// when the list's side is an assumption.
    pub fn reduced_to(&self, listed: &Listed) -> bool {
        !listed.side_assumed
            && self.side == listed.side
            && listed.contracts < self.contracts
            && !close_enough(self.contracts, listed.contracts, SIZE_TOLERANCE)
            && listed
                .entry_price
                .is_some_and(|p| close_enough(self.entry_price, p, PRICE_TOLERANCE))
    }
}

/// Whether one-way or hedge-mode keys are in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// One position per symbol (the original's).
    #[default]
    OneWay,
    /// A long and a short leg per symbol.
    Hedge,
}

/// How cautious removal is, and how long removed positions are remembered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Lists in a row that must omit a position before it is removed (>= 1).
    pub missing_confirmations: u32,
    /// And at least this many seconds between the first of those lists and the removing one.
    pub missing_grace_seconds: f64,
    /// Tombstones and unconfirmed closes older than this (seconds) are forgotten.
    pub tombstone_ttl_seconds: f64,
    /// The key scheme.
    pub mode: Mode,
    /// Lists in a row, requested after an order whose answer was lost, that must show it did
    /// nothing before it is taken as not executed; a position the manager's own open filled
    /// must be missing from at least as many before it is removed, until a list has shown it
    /// (>= 1). One list cannot tell a venue whose list lags its fills from an order that did
    /// not execute.
    pub outcome_confirmations: u32,
    /// And at least this many seconds between the first of those lists and the deciding one.
    pub outcome_grace_seconds: f64,
}

impl Policy {
    /// How many lists in a row must omit a tracked position, over at least how many seconds,
    /// before it is removed: the removal rules, and for a fill of the manager's own that no
    /// list has shown yet (`unlisted_fill`) the outcome rules too, whichever asks more.
    pub fn removal_needs(&self, unlisted_fill: bool) -> (u32, f64) {
        let (count, grace) = if unlisted_fill {
            (
                self.missing_confirmations.max(self.outcome_confirmations),
                self.missing_grace_seconds.max(self.outcome_grace_seconds),
            )
        } else {
            (self.missing_confirmations, self.missing_grace_seconds)
        };
        (count.max(1), grace)
    }
}

/// The plainest policy: one list decides everything (removals, outcomes), no grace, nothing
/// expires. The planner's own tests start from it; a manager builds its policy from
/// [`ManagerConfig`](crate::manager::ManagerConfig), whose defaults differ
/// (`outcome_confirmations` 2, `tombstone_ttl_seconds` a day).
impl Default for Policy {
    fn default() -> Self {
        Policy {
            missing_confirmations: 1,
            missing_grace_seconds: 0.0,
            tombstone_ttl_seconds: f64::INFINITY,
            mode: Mode::OneWay,
            outcome_confirmations: 1,
            outcome_grace_seconds: 0.0,
        }
    }
}

/// What a list was read for: which changes it may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The update cycle's list: removes, restores, resizes, flips; imports only a flip's new side.
    Cycle,
    /// `sync_existing_positions`: imports and restores; removes nothing.
    Sync,
    /// `reconcile_positions`: removes and imports.
    Reconcile,
    /// A read inside an operation (a close's check, an order's verification): removes,
    /// restores, resolves; imports nothing.
    Verify,
}

impl Purpose {
    fn removes(self) -> bool {
        !matches!(self, Purpose::Sync)
    }

    fn imports(self) -> bool {
        matches!(self, Purpose::Sync | Purpose::Reconcile)
    }
}

/// What kind of order a tracked position is waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A full close.
    Close,
    /// An order that adds to the position.
    ScaleIn,
    /// A reduce-only order that takes part of it (a scale-out or a partial exit).
    ScaleOut,
}

impl Op {
    /// The name used in events and logs.
    pub fn name(self) -> &'static str {
        match self {
            Op::Close => "close",
            Op::ScaleIn => "scale_in",
            Op::ScaleOut => "scale_out",
        }
    }
}

/// What a list that still shows the position (same side) after one of the manager's closes
/// proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCheck {
    /// That the close did not happen: the client's answer is all there is (the bot's own client
    /// answers `True` for a close it never sent), so the position is tracked again at once.
    List,
    /// Nothing yet: the close order carries a client id, so it is looked up first (rule 7) — a
    /// filled order means the list lags the fill.
    Lookup,
    /// Nothing yet: the close order is known to have filled, so the list lags; it is believed
    /// only once `outcome_confirmations` lists in a row (over `outcome_grace_seconds`) show it.
    Filled,
    /// As [`CloseCheck::Filled`], and the order filled the whole position: a listing of
    /// exactly that position (side, size and a reported entry price) shows it as it was before
    /// the fill, so it lags the fill however many lists show it ([`Action::CloseLags`]), until
    /// `tombstone_ttl_seconds` after the close; any other listing counts as under `Filled`.
    FilledWhole,
}

/// Whether `listed` is exactly the position `own` describes, as a list can tell: the same side
/// (reported, not assumed), size and entry price (which the list must report).
pub fn exactly(own: Option<Fingerprint>, listed: &Listed) -> bool {
    !listed.side_assumed && listed.entry_price.is_some() && own.is_some_and(|o| o.matches(listed))
}

/// Whether a list still showing the position a close ended, under `check`, lags the close's
/// fill whatever the count: the order filled the whole position, the listing is
/// [`exactly`] it, and the close (at `closed_time`) is within `tombstone_ttl_seconds` at `now`.
pub fn lags_a_whole_fill(
    check: CloseCheck,
    exact: bool,
    closed_time: Timestamp,
    now: Timestamp,
    policy: &Policy,
) -> bool {
    check == CloseCheck::FilledWhole && exact && within_ttl(closed_time, now, policy)
}

/// Whether something that happened at `since` (a timer reading: a close, a removal) is still
/// within the policy's `tombstone_ttl_seconds` at `now` (what a tombstone's or a close's expiry
/// measures).
pub fn within_ttl(since: Timestamp, now: Timestamp, policy: &Policy) -> bool {
    let ttl = policy.tombstone_ttl_seconds;
    !(ttl.is_finite() && now.seconds_since(since) > ttl)
}

/// A run of lists in a row that did not show something: an order's effect (requested after
/// it), or — for the removal rules — a tracked position.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Unseen {
    /// How many.
    pub lists: u32,
    /// When the first of them was applied (the manager's timer reading, [`Context::timer`]).
    pub since: Option<Timestamp>,
}

impl Unseen {
    /// With one more such list applied at timer reading `now`, and whether that is enough under
    /// `policy` to take the order as having done nothing.
    pub fn next(self, policy: &Policy, now: Timestamp) -> (Unseen, bool) {
        self.one_more(
            (
                policy.outcome_confirmations.max(1),
                policy.outcome_grace_seconds,
            ),
            now,
        )
    }

    /// The run with one more list applied at timer reading `now`, and whether it now holds
    /// `needs.0` lists over at least `needs.1` seconds: the one rule of "an absence that lasts",
    /// for removals (a run of misses) and for unknown outcomes alike. A reading before the run
    /// began (only a clock moved back by hand goes back) counts as no time passed.
    fn one_more(self, needs: (u32, f64), now: Timestamp) -> (Unseen, bool) {
        let lists = self.lists.saturating_add(1);
        let since = self.since.unwrap_or(now);
        let enough = lists >= needs.0 && now.seconds_since(since).max(0.0) >= needs.1;
        (
            Unseen {
                lists,
                since: Some(since),
            },
            enough,
        )
    }
}

/// A tracked position's order activity, as the planner sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Busy {
    /// Nothing in flight.
    Idle,
    /// An order is in flight: a list may predate its effect, so it neither resizes nor removes.
    Order,
    /// The last order's outcome is unknown; `at` is the book mark after its answer, `before` the
    /// size before it.
    Unknown {
        /// The order.
        op: Op,
        /// Book mark after the answer: only a list requested later can tell.
        at: u64,
        /// The position's size before the order.
        before: f64,
        /// Lists so far that showed the size from before the order.
        unseen: Unseen,
    },
}

/// The size (and entry) a position takes when it is restored at another size than it had.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resized {
    /// The exchange's size.
    pub contracts: f64,
    /// The exchange's entry price, when it moved: an addition moves the average entry; a
    /// reduction leaves it as it was (`None`).
    pub entry_price: Option<f64>,
    /// Added to while it was not tracked ([`TombView::grown_to`]); else reduced.
    pub added: bool,
}

impl Resized {
    /// The listed size of a position reduced meanwhile (its entry as it was).
    pub fn reduced(contracts: f64) -> Self {
        Resized {
            contracts,
            entry_price: None,
            added: false,
        }
    }
}

/// A removed position that can be restored, as the planner sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TombView {
    /// The manager's own last state (after its partial exits and scale-ins).
    pub own: Option<Fingerprint>,
    /// What the exchange last listed for it.
    pub reported: Option<Fingerprint>,
    /// When it was removed (the manager's timer reading, [`Context::timer`]).
    pub removed_at: Timestamp,
    /// `Some` when the manager's own order ended it (a close, or an exit whose outcome was
    /// unknown, settled by lists), not an absence alone: see [`OwnEnd`].
    pub own_end: Option<OwnEnd>,
    /// What untracked it is also what a failed read or a lagging list shows (never with
    /// `own_end`): it left the book on empty answers only (the bot's own client answers `[]`
    /// for a failed read), or as a fill of the manager's own that no list had shown yet (lists
    /// lag fills). Not a close of the manager's settled by an empty answer
    /// ([`Action::CloseConfirmed::doubtful`]): the manager sent an order that ends it, so that
    /// one is a plain tombstone. It may never have ended, so a listing of its
    /// side that a tracked position would take for itself resized brings it back: the very
    /// position, it reduced, or it grown ([`TombView::grown_to`]: added to while it was not
    /// tracked). `Some(mark)`: the book mark from which a list can show its end real — a
    /// well-formed list with entries, requested from then on, that does not show it
    /// ([`Action::EndShown`]); then it is a plain tombstone.
    pub doubtful: Option<u64>,
}

/// What the book keeps of a position the manager's own order ended, once lists settled it
/// ([`TombView::own_end`]). A list that shows the very position again may lag that order's
/// fill (venues' position lists lag their fills by seconds to minutes), so it is neither
/// imported as a new position nor restored at once: it is tracked again only once
/// `outcome_confirmations` lists in a row (over `outcome_grace_seconds`) show it, the rule that
/// settles any order's outcome. A different position listed under the key is imported as
/// usual.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OwnEnd {
    /// Book mark of the order's settlement: only a list requested later can tell.
    pub at: u64,
    /// Lists so far, in a row, that showed the very position again.
    pub unseen: Unseen,
}

impl TombView {
    /// Whether `listed` is this very position again.
    pub fn matches(&self, listed: &Listed) -> bool {
        self.own.is_some_and(|f| f.matches(listed))
            || self.reported.is_some_and(|f| f.matches(listed))
    }

    /// Whether `listed` is this position again, reduced while the manager did not track it (by
    /// hand, or a partial liquidation): see [`Fingerprint::reduced_to`].
    pub fn reduced_to(&self, listed: &Listed) -> bool {
        self.own.is_some_and(|f| f.reduced_to(listed))
            || self.reported.is_some_and(|f| f.reduced_to(listed))
    }

    /// Whether `listed` is this [`doubtful`](TombView::doubtful) position again, added to while
    /// it was not tracked (by hand): its side (not assumed) with more contracts than the
    /// manager last had, at whatever entry (an addition moves the average entry). A tracked
    /// position listed so is resized, never replaced; a tombstone whose end lists could not
    /// tell from failed reads is taken the same way. Any other tombstone's larger listing is a
    /// new position.
    pub fn grown_to(&self, listed: &Listed) -> bool {
        self.doubtful.is_some()
            && self.own_end.is_none()
            && !listed.side_assumed
            && self.own.is_some_and(|f| {
                f.side == listed.side
                    && listed.contracts > f.contracts
                    && !close_enough(f.contracts, listed.contracts, SIZE_TOLERANCE)
            })
    }
}

/// A tracked position, as the planner sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackedView<'a> {
    /// Book mark at which it entered the book (insert, import, restore).
    pub seq: u64,
    /// Book mark of the manager's last change of its size.
    pub touched: u64,
    /// Lists in a row that did not show it.
    pub missing: u32,
    /// When the first of those lists was applied (timer reading, [`Context::timer`]).
    pub missing_since: Option<Timestamp>,
    /// Every one of those lists was an empty answer (what a failed read of the bot's own
    /// client looks like): a removal on them alone is [`doubtful`](TombView::doubtful).
    pub missing_on_empty: bool,
    /// Its own side, size and entry (`None` when its side is neither long nor short).
    pub own: Option<Fingerprint>,
    /// Its order activity.
    pub busy: Busy,
    /// The position a side flip replaced, restorable.
    pub predecessor: Option<&'a TombView>,
    /// An order of the manager's for `predecessor` had an unknown outcome when the flip
    /// replaced it: what it did to that position is not known, so a list lagging the flip can
    /// show that side at any size and entry.
    pub predecessor_unsettled: bool,
    /// The manager's own open filled it and no list has shown it yet: its absence may be a list
    /// that lags the fill, so removing it takes `outcome_confirmations` and
    /// `outcome_grace_seconds` too.
    pub unlisted_fill: bool,
    /// Sizes it had before the manager's own filled scale orders, since a list last showed its
    /// size: a list showing one of them may lag those fills, so it resizes the position only
    /// once `outcome_confirmations` lists in a row (over `outcome_grace_seconds`) show it.
    pub lagged_sizes: &'a [f64],
    /// Lists so far (in a row) that showed one of `lagged_sizes`.
    pub lag_unseen: Unseen,
    /// Lists so far (in a row) that showed the side `predecessor` was on again: a list lagging
    /// the flip shows it, so that side is believed only once `outcome_confirmations` lists in a
    /// row (over `outcome_grace_seconds`) show it.
    pub flip_back: Unseen,
    /// What the exchange last listed for it (side, size and its own entry price), when a list
    /// showed it with an entry price since it was tracked.
    pub reported: Option<Fingerprint>,
    /// Its own entry price may not be the exchange's: one of the manager's own fills since a
    /// list last showed its size was priced by the bot's price (the order reported no average),
    /// added to an entry no list vouched for, or its outcome was settled by lists that showed
    /// another size. Until a list shows its size again, no listing is taken to replace it.
    pub entry_unsure: bool,
    /// The manager's own last scale-in on it, when the exchange priced its fill (the order's
    /// answer reported an average) and no list has shown the position's size since.
    pub own_fill: Option<OwnFill>,
}

/// A fill of the manager's own scale-in that no list has shown yet, as the order's answer
/// reported it ([`TrackedView::own_fill`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OwnFill {
    /// Contracts it added.
    pub added: f64,
    /// Its average fill price, as the exchange reported it.
    pub average: f64,
    /// The book's entry price before it.
    pub entry_before: f64,
    /// The position's size right after it (a later change of the size of the manager's own
    /// makes the fill no evidence any more).
    pub size_after: f64,
}

/// Whether `listed` cannot be the tracked position `t` as the exchange could hold it after a
/// reduction outside the manager (by hand, a partial liquidation), so that it is another
/// position that replaced it: the old one closed outside the manager and a new one opened on
/// the same side (by hand, or by the manager's own scale-in sent after a list that lagged the
/// close). A reduction leaves the entry price as it was (the field each supported venue's
/// entry price comes from is an average open price, which a partial close does not move), and
/// a new position's entry is its own fill price. So:
/// the same side (not assumed), fewer contracts than the book holds, and an entry price (the
/// list must report one) more than [`REPLACED_PRICE_TOLERANCE`] away from both the book's
/// entry and the one the exchange last listed for it. Only when those two are known to be the
/// exchange's: a list has shown the position with its entry (`reported`), its own fills since
/// were priced by the exchange (not `entry_unsure`), and it is not a fill of the manager's own
/// no list has shown yet. Nor a size from before one of the manager's own fills
/// (`lagged_sizes`): a list lagging those shows the position as it was, at an entry the book
/// no longer keeps (between two scale-ins, say). A larger size is never a replacement: a
/// scale-in outside the manager moves the entry to any average its price makes. In doubt, a
/// listing stays a resize.
///
/// Also (see [`opened_by_own_fill`]) when the listing is exactly what the manager's own last
/// scale-in opened on a flat exchange: that evidence holds whatever lags.
pub fn replaced(t: &TrackedView<'_>, listed: &Listed) -> bool {
    opened_by_own_fill(t, listed) || reduced_away(t, listed)
}

/// Whether `listed` is the position the manager's own last scale-in ([`TrackedView::own_fill`],
/// `a` contracts at the exchange's average `p`) opened on its own, the tracked one gone before
/// it filled: the same side (not assumed), exactly `a` contracts ([`SIZE_TOLERANCE`]) at entry
/// `p` ([`PRICE_TOLERANCE`]: the venue's entry of a position one order opened is that order's
/// average, the two rounded alike), fewer than the book holds (its size still the one right
/// after that fill), while the book's entry before the fill, its entry now and the one the
/// exchange last listed are all more than [`REPLACED_PRICE_TOLERANCE`] away from `p`, and the
/// book's entry is the exchange's (not `entry_unsure`). No list lagging the fill can show that
/// (it shows the size and entry from before), and no list after it can unless the tracked
/// position was gone when the fill landed: a reduction keeps the weighted entry, far from `p`.
pub fn opened_by_own_fill(t: &TrackedView<'_>, listed: &Listed) -> bool {
    let (Some(own), Some(fill), Some(entry)) = (t.own, t.own_fill, listed.entry_price) else {
        return false;
    };
    let far = |price: f64| !close_enough(price, fill.average, REPLACED_PRICE_TOLERANCE);
    !t.entry_unsure
        && !listed.side_assumed
        && listed.side == own.side
        && close_enough(own.contracts, fill.size_after, SIZE_TOLERANCE)
        && listed.contracts < own.contracts
        && !close_enough(own.contracts, listed.contracts, SIZE_TOLERANCE)
        && close_enough(listed.contracts, fill.added, SIZE_TOLERANCE)
        && close_enough(entry, fill.average, PRICE_TOLERANCE)
        && far(fill.entry_before)
        && far(own.entry_price)
        && t.reported.is_none_or(|r| far(r.entry_price))
}

/// [`replaced`] by a reduction's evidence: the entry no reduction of the tracked one leaves.
fn reduced_away(t: &TrackedView<'_>, listed: &Listed) -> bool {
    let (Some(own), Some(reported), Some(entry)) = (t.own, t.reported, listed.entry_price) else {
        return false;
    };
    let far = |price: f64| !close_enough(price, entry, REPLACED_PRICE_TOLERANCE);
    let lagged = t
        .lagged_sizes
        .iter()
        .any(|size| close_enough(*size, listed.contracts, SIZE_TOLERANCE));
    !t.unlisted_fill
        && !lagged
        && !t.entry_unsure
        && !listed.side_assumed
        && listed.side == own.side
        && reported.side == own.side
        && listed.contracts < own.contracts
        && !close_enough(own.contracts, listed.contracts, SIZE_TOLERANCE)
        && far(own.entry_price)
        && far(reported.entry_price)
}

/// One book key's state, as the planner sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase<'a> {
    /// Tracked.
    Tracked(TrackedView<'a>),
    /// Removed as closed outside the manager, restorable.
    Tombstoned(&'a TombView),
    /// Closed by the manager (the client said so), waiting for a list to confirm it.
    Closed {
        /// Book mark of the close: only a list requested later can tell.
        at: u64,
        /// Its last own state.
        own: Option<Fingerprint>,
        /// When it was closed (timer reading, [`Context::timer`]).
        closed_time: Timestamp,
        /// What a list that still shows it proves.
        check: CloseCheck,
        /// Lists so far that still showed it after its order was known filled.
        unseen: Unseen,
    },
    /// An `open_position` is in flight (`unknown: None`), or its order's outcome is unknown.
    Opening {
        /// `(book mark after the answer, side)` once the outcome is unknown.
        unknown: Option<(u64, Side)>,
        /// Lists so far that did not show the position asked for.
        unseen: Unseen,
    },
}

/// One key of the book with its state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyView<'a> {
    /// The key.
    pub key: &'a Key,
    /// Its state.
    pub phase: Phase<'a>,
}

/// How an order with an unknown outcome turned out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resolution {
    /// It did nothing: the exchange holds what it held before.
    NotExecuted,
    /// It changed the size: the exchange now holds `contracts` (at `entry_price`, when listed).
    Executed {
        /// The size the exchange lists.
        contracts: f64,
        /// The entry price the exchange lists.
        entry_price: Option<f64>,
    },
    /// The position is gone: the order closed it.
    Closed,
}

/// One change a list calls for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Listed: reset its miss count, keep what the list reported (evidence, contract size).
    Confirm {
        /// The key.
        key: Key,
    },
    /// Listed with another size: take the exchange's size (and entry price, when reported).
    Resize {
        /// The key.
        key: Key,
        /// The exchange's size.
        contracts: f64,
        /// The exchange's entry price, when reported.
        entry_price: Option<f64>,
        /// The book's size before.
        previous: f64,
    },
    /// Missing (or listed on the other side only), not yet often or long enough.
    CountMiss {
        /// The key.
        key: Key,
        /// Misses so far.
        missing: u32,
        /// When the run of misses began (timer reading, [`Context::timer`]).
        since: Timestamp,
        /// Every list of the run so far was an empty answer ([`TrackedView::missing_on_empty`]).
        on_empty: bool,
        /// Lists in a row the run needs (`missing_confirmations`, or the outcome rules' when
        /// those apply too), for the caller's WARN line.
        needed: u32,
        /// The list shows another position on the tracked one's side ([`replaced`]): the run
        /// ends in [`Action::Replace`], not a removal.
        replaced: bool,
    },
    /// Missing often and long enough: removed; it becomes a tombstone.
    Remove {
        /// The key.
        key: Key,
        /// Misses in a row.
        missing: u32,
        /// The absence is also what failed reads or lagging lists show: every list of the run
        /// was an empty answer, or it is a fill of the manager's own no list has shown yet. It
        /// is kept as a [`doubtful`](TombView::doubtful) tombstone.
        doubtful: bool,
    },
    /// Listed on the other side only, often and long enough: the tracked position is removed
    /// (`side_flipped`) and the listed one takes its place — restored from the predecessor
    /// when it is the very position a flip replaced (or it reduced: then at the listed size),
    /// else imported.
    Flip {
        /// The key.
        key: Key,
        /// Misses in a row.
        missing: u32,
        /// The listed side is the position this one replaced: restore it.
        restore_predecessor: bool,
    },
    /// The side a flip replaced is listed again instead of the position that replaced it, not
    /// yet in enough lists to believe it (the list may lag the flip): counted, nothing changes;
    /// a list showing the tracked side (or not showing the key) starts the count again.
    FlipBack {
        /// The key.
        key: Key,
        /// The count, and when it began.
        unseen: Unseen,
    },
    /// Listed on its own side as another position ([`replaced`]), often and long enough (the
    /// removal rules and the outcome rules, whichever ask more: a list that lags can show an
    /// older position): the tracked position is removed as closed outside the manager and the
    /// listed one imported in its place (it keeps the removed one as its predecessor).
    Replace {
        /// The key.
        key: Key,
        /// Lists in a row that showed another position under the key.
        missing: u32,
    },
    /// A tombstoned position is listed again, unchanged or reduced meanwhile (or, for a
    /// [`doubtful`](TombView::doubtful) one, added to): put it back.
    Restore {
        /// The key.
        key: Key,
        /// The exchange's size (and entry) when the position was reduced (same side and entry,
        /// fewer contracts) or added to ([`TombView::grown_to`]) while it was not tracked: the
        /// restored position takes it.
        resized: Option<Resized>,
    },
    /// A listed position the book does not track: import it.
    Import {
        /// The key.
        key: Key,
    },
    /// A close of the manager's is confirmed by absence: the position is kept as a tombstone
    /// (see [`Action::CloseConfirmed::doubtful`]).
    CloseConfirmed {
        /// The key.
        key: Key,
        /// The answer had no entry at all and the close's order is unnamed. The bot's own client
        /// answers `[]` for a failed read, so an empty answer cannot tell a closed position from
        /// a failure, the same evidence that makes a tracked position a tombstone; and its
        /// `True` may cover a close it never sent. Such a close is kept as a plain tombstone,
        /// restored by the first list that shows the very same position again. Otherwise the
        /// position is kept as the manager's own end ([`OwnEnd`]): a list showing it again may
        /// lag the close, and is believed only as the outcome rules say.
        doubtful: bool,
    },
    /// A close of the manager's is contradicted (the position is still listed): restore it,
    /// with the exchange's size when it differs.
    CloseUnconfirmed {
        /// The key.
        key: Key,
        /// The exchange's size, when it differs from the book's last one.
        contracts: Option<f64>,
    },
    /// A close whose order carries a client id is contradicted by the position still listed
    /// ([`CloseCheck::Lookup`]): the caller looks the order up before believing the list
    /// (filled: the list lags; otherwise the close did not happen).
    VerifyClose {
        /// The key.
        key: Key,
        /// The exchange's size, when it differs from the book's last one.
        contracts: Option<f64>,
        /// The listing is exactly the closed position ([`exactly`]).
        exact: bool,
    },
    /// A list shows exactly the position a close whose order filled it whole ended
    /// ([`CloseCheck::FilledWhole`]): it lags the fill; the position stays closed, and the
    /// list counts toward nothing.
    CloseLags {
        /// The key.
        key: Key,
    },
    /// A list shows no effect of an order whose answer was lost (the size from before it; for
    /// an open, no position) — or still shows the position after a close whose order is
    /// known filled, or shows a tracked position at a size from before one of the manager's
    /// own filled scale orders — not yet in enough lists or over long enough to believe it:
    /// counted; for a lost answer nothing more is sent for the position meanwhile, and a
    /// lagging size does not resize it.
    Unseen {
        /// The key.
        key: Key,
        /// The count, and when it began.
        unseen: Unseen,
    },
    /// An order with an unknown outcome is resolved.
    Resolve {
        /// The key.
        key: Key,
        /// How it turned out.
        resolution: Resolution,
        /// For [`Resolution::Closed`]: the answer had no entry at all, which is also what a
        /// failed read of the bot's own client looks like; the position is kept as a plain
        /// tombstone (restored if the very same position, or it reduced, is listed again), as
        /// [`Action::CloseConfirmed::doubtful`]; but an order with a client id is looked up
        /// first (the book's `Applied::VerifyChange`): one that never went out leaves the
        /// absence to the removal rules, and a close the venue says filled is its own end.
        /// Otherwise it is kept as the manager's own end ([`OwnEnd`]).
        doubtful: bool,
    },
    /// An open with an unknown outcome is resolved: the position was found (track it) or not.
    ResolveOpen {
        /// The key.
        key: Key,
        /// Whether the exchange lists the position the open asked for.
        found: bool,
    },
    /// A [`doubtful`](TombView::doubtful) tombstone's key is absent from a well-formed list
    /// that shows other positions, requested after its removal: no failed read or lagging
    /// list accounts for that, so its end was real, and it is a plain tombstone from now on (a
    /// larger listing later is a new position).
    EndShown {
        /// The key.
        key: Key,
    },
    /// A tombstone or an unconfirmed close older than the time to live: forget it.
    Expire {
        /// The key.
        key: Key,
    },
}

impl Action {
    /// The key the action is about.
    pub fn key(&self) -> &Key {
        match self {
            Action::Confirm { key }
            | Action::Resize { key, .. }
            | Action::CountMiss { key, .. }
            | Action::Unseen { key, .. }
            | Action::Remove { key, .. }
            | Action::Flip { key, .. }
            | Action::FlipBack { key, .. }
            | Action::Replace { key, .. }
            | Action::Restore { key, .. }
            | Action::Import { key }
            | Action::CloseConfirmed { key, .. }
            | Action::CloseUnconfirmed { key, .. }
            | Action::VerifyClose { key, .. }
            | Action::CloseLags { key }
            | Action::Resolve { key, .. }
            | Action::ResolveOpen { key, .. }
            | Action::EndShown { key }
            | Action::Expire { key } => key,
        }
    }
}

/// What a list calls for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The changes, in book order (then imports in list order).
    pub actions: Vec<Action>,
    /// The list shows none of the positions the manager believes open, and some action rests on
    /// an absence: read the list once more before acting (rule 7).
    pub needs_corroboration: bool,
}

/// The inputs of [`plan`] besides the book's keys.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The list.
    pub snapshot: &'a Snapshot,
    /// The rules.
    pub policy: Policy,
    /// The manager's timer reading ([`crate::clock::Clock::timer`]) when the list is applied:
    /// every duration the plan weighs (the removal and outcome graces, tombstone lifetimes) and
    /// every time it keeps ([`Unseen::since`], [`Action::CountMiss::since`], a tombstone's
    /// removal) is in that frame, never in the local wall-clock time a DST change moves.
    pub timer: Timestamp,
    /// What the list was read for.
    pub purpose: Purpose,
    /// For a read inside an operation: the one key it is about; nothing else changes (and, for
    /// [`Purpose::Verify`], the operation's own order in flight does not hold the read back).
    pub focus: Option<&'a Key>,
}

/// Plans what a list does to the book. `views` are the book's keys in book order; `known` says
/// whether the book has any state for a key (untracked listed symbols are imported only when it
/// has none). Deterministic: the same inputs give the same plan.
pub fn plan(views: &[KeyView<'_>], known: &dyn Fn(&str) -> bool, cx: &Context<'_>) -> Plan {
    plan_with(views, || views.iter().copied(), known, cx)
}

/// [`plan`] for a book whose keys that can change are `views` (every key, or for a read with a
/// focus at least the focus), with `all` giving every key of the book in book order. `all` is
/// asked for only when a change rests on an absence: then whether the list is blind to every
/// position the manager believes open decides on corroboration. Its views need no `own`
/// fingerprint (only their phases' marks are read), so a focused plan over a large book reads
/// one position.
pub fn plan_with<'a, I>(
    views: &[KeyView<'_>],
    all: impl FnOnce() -> I,
    known: &dyn Fn(&str) -> bool,
    cx: &Context<'_>,
) -> Plan
where
    I: Iterator<Item = KeyView<'a>>,
{
    let mut out = Plan::default();
    let mut absence_based = false;
    for view in views {
        if cx.focus.is_some_and(|f| f != view.key) {
            continue;
        }
        absence_based |= plan_key(view, cx, &mut out.actions);
    }
    if cx.purpose.imports() {
        plan_imports(known, cx, &mut out.actions);
    }
    out.needs_corroboration = absence_based && is_blind(all(), cx.snapshot);
    out
}

/// What the list calls for on one key; true when a change rests on an absence.
fn plan_key(view: &KeyView<'_>, cx: &Context<'_>, actions: &mut Vec<Action>) -> bool {
    let snap = cx.snapshot;
    let seen = match (snap.seen(view.key), &view.phase) {
        // A one-way key of a symbol listed with both legs (a one-way manager on an account in
        // hedge mode): a position of a known side is judged by its own side's leg. Taken as
        // bare presence, a close the client answered True without sending was never found
        // unconfirmed while the list kept showing the very position, and a reduction by hand
        // was never seen (found by an audit on 2026-12-06).
        (Seen::BothLegs, Phase::Tracked(TrackedView { own: Some(own), .. }))
        | (Seen::BothLegs, Phase::Closed { own: Some(own), .. }) => {
            snap.seen(&Key::hedge(view.key.symbol(), own.side))
        }
        (seen, _) => seen,
    };
    let before = actions.len();
    match view.phase {
        Phase::Tracked(t) => plan_tracked(view.key, t, seen, cx, actions),
        Phase::Tombstoned(tomb) => plan_tombstone(view.key, tomb, seen, cx, actions),
        Phase::Closed {
            at,
            own,
            closed_time,
            check,
            unseen,
        } => plan_closed(
            view.key,
            ClosedView {
                at,
                own,
                closed_time,
                check,
                unseen,
            },
            seen,
            cx,
            actions,
        ),
        Phase::Opening { unknown, unseen } => {
            plan_opening(view.key, unknown, unseen, seen, cx, actions)
        }
    }
    actions[before..].iter().any(rests_on_absence)
}

/// Whether the list shows none of the keys believed open on the exchange within its reach, and
/// there is at least one.
fn is_blind<'a>(views: impl Iterator<Item = KeyView<'a>>, snap: &Snapshot) -> bool {
    let mut believed_open = false;
    for view in views {
        if believed_open_at(&view.phase).is_some_and(|reach| reach <= snap.requested_at) {
            believed_open = true;
            // Listed in any form, on any leg: the list is not blind to it.
            if snap.lists(view.key.symbol()) {
                return false;
            }
        }
    }
    believed_open
}

/// The book mark from which a key counts as believed open on the exchange (tracked, closed by
/// us awaiting confirmation, an open with an unknown outcome), or `None`.
fn believed_open_at(phase: &Phase<'_>) -> Option<u64> {
    match phase {
        Phase::Tracked(t) => Some(t.seq),
        Phase::Closed { at, .. } => Some(*at),
        Phase::Opening {
            unknown: Some((at, _)),
            ..
        } => Some(*at),
        _ => None,
    }
}

fn rests_on_absence(action: &Action) -> bool {
    matches!(
        action,
        Action::Remove { .. }
            | Action::CloseConfirmed { .. }
            | Action::Resolve {
                resolution: Resolution::Closed,
                ..
            }
            | Action::ResolveOpen { found: false, .. }
    )
}

/// One more miss of a tracked position, and whether the run is long enough for what it ends in.
struct Miss {
    /// Misses so far, this one included.
    missing: u32,
    /// When the run began.
    since: Timestamp,
    /// Long enough.
    enough: bool,
    /// Lists in a row the run needs.
    needed: u32,
}

impl Miss {
    /// [`Action::CountMiss`] for this miss of `key` (`replaced`: see its field).
    fn count(&self, key: &Key, t: &TrackedView<'_>, snap: &Snapshot, replaced: bool) -> Action {
        Action::CountMiss {
            key: key.clone(),
            missing: self.missing,
            since: self.since,
            on_empty: miss_on_empty(t, snap),
            needed: self.needed,
            replaced,
        }
    }
}

/// The next miss of a tracked position: a removal once often and long enough (for a fill of
/// the manager's own no list has shown yet, also by the outcome rules).
fn next_miss(t: &TrackedView<'_>, cx: &Context<'_>) -> Miss {
    next_miss_by(t, cx, cx.policy.removal_needs(t.unlisted_fill))
}

/// [`next_miss`] with a removal that needs `needs` (lists in a row, over seconds).
fn next_miss_by(t: &TrackedView<'_>, cx: &Context<'_>, needs: (u32, f64)) -> Miss {
    let misses = Unseen {
        lists: t.missing,
        since: t.missing_since,
    };
    let (misses, enough) = misses.one_more(needs, cx.timer);
    Miss {
        missing: misses.lists,
        since: misses.since.unwrap_or(cx.timer),
        enough,
        needed: needs.0,
    }
}

/// Whether the miss `snap` makes of `t` continues a run of misses on empty answers only
/// ([`TrackedView::missing_on_empty`]): it is one itself, and the first of its run or the run so
/// far was all such.
fn miss_on_empty(t: &TrackedView<'_>, snap: &Snapshot) -> bool {
    snap.entries == 0 && (t.missing == 0 || t.missing_on_empty)
}

/// The list was requested after the position was tracked (rule 4: only then can it remove it).
fn within_reach(t: &TrackedView<'_>, cx: &Context<'_>) -> bool {
    t.seq <= cx.snapshot.requested_at
}

/// Whether `l` lists the tracked position's symbol on the other side (a side flip, if it lasts).
fn listed_flipped(t: &TrackedView<'_>, l: &Listed) -> bool {
    !l.side_assumed && t.own.is_some_and(|own| own.side != l.side)
}

fn plan_tracked(
    key: &Key,
    t: TrackedView<'_>,
    seen: Seen<'_>,
    cx: &Context<'_>,
    actions: &mut Vec<Action>,
) {
    let snap = cx.snapshot;
    let busy = match t.busy {
        Busy::Order if cx.purpose == Purpose::Verify && cx.focus == Some(key) => Busy::Idle,
        other => other,
    };
    match busy {
        Busy::Idle => {}
        Busy::Order => {
            // The list may predate the order's effect: presence only.
            if seen != Seen::Absent {
                actions.push(Action::Confirm { key: key.clone() });
            }
            return;
        }
        Busy::Unknown { at, .. }
            if snap.well_formed
                && snap.requested_at >= at
                && matches!(seen, Seen::Listed(l) if listed_flipped(&t, l)) =>
        {
            // Listed on the other side only, after the answer was lost: whatever the order
            // did, the tracked side is gone (one way holds one side, and no order of the
            // manager's turns it). Decided as a side flip below, as for an idle position.
        }
        Busy::Unknown {
            op,
            at,
            before,
            unseen,
        } => {
            if snap.well_formed && snap.requested_at >= at {
                if seen != Seen::Absent && t.missing > 0 {
                    // Lists that omitted it before (counted below) no longer count.
                    actions.push(Action::Confirm { key: key.clone() });
                }
                match resolve(op, before, t.own, seen) {
                    Some(Resolution::Closed) => {
                        // The position gone after an exit: judged like a removal (the list may
                        // lag a fill no list has shown; a scale-out of part of it closes
                        // nothing), then settled as closed.
                        if !within_reach(&t, cx) || !cx.purpose.removes() {
                            return;
                        }
                        let miss = next_miss(&t, cx);
                        actions.push(if miss.enough {
                            Action::Resolve {
                                key: key.clone(),
                                resolution: Resolution::Closed,
                                doubtful: snap.entries == 0,
                            }
                        } else {
                            miss.count(key, &t, snap, false)
                        });
                    }
                    Some(Resolution::NotExecuted) => {
                        let counting = still_counting(key, unseen, cx, actions);
                        if !counting {
                            actions.push(Action::Resolve {
                                key: key.clone(),
                                resolution: Resolution::NotExecuted,
                                doubtful: false,
                            });
                        }
                    }
                    Some(resolution) => actions.push(Action::Resolve {
                        key: key.clone(),
                        resolution,
                        doubtful: false,
                    }),
                    None => {}
                }
            } else if seen != Seen::Absent {
                actions.push(Action::Confirm { key: key.clone() });
            }
            return;
        }
    }
    let in_reach = within_reach(&t, cx);
    match seen {
        Seen::Listed(l) if listed_flipped(&t, l) => {
            // The symbol is listed on the other side only: decided like a removal (so only a
            // well-formed list can make it) — by `missing_confirmations` alone, also for a fill
            // of the manager's own no list has shown yet: a list lagging that fill shows the
            // symbol as it was before the open, flat (the manager opens a symbol it finds
            // flat), never the other side. Waiting for the outcome rules there let a list
            // lagging a reversal by hand in between hide it (the crash run's OKX one-way seed
            // 44: reversed, and reversed again, taken for an addition).
            if !snap.well_formed || !in_reach || !cx.purpose.removes() || key.leg() != Leg::Net {
                return;
            }
            let miss = next_miss_by(&t, cx, cx.policy.removal_needs(false));
            // The tracked position replaced another in a flip, and the list shows that very
            // position again (or it reduced), or — when an order of the manager's for it had an
            // unknown outcome — that side at all: a list lagging the flip does, so the outcome
            // rules' lists must show it too. Believed, the very position (or it reduced) comes
            // back; another is imported. Any other listing is a new reversal: a flip at once.
            let back = t
                .predecessor
                .is_some_and(|p| p.matches(l) || p.reduced_to(l));
            let counted = back || (t.predecessor.is_some() && t.predecessor_unsettled);
            let believed = !counted || !still_flipping_back(key, t.flip_back, cx, actions);
            if miss.enough && believed {
                actions.push(Action::Flip {
                    key: key.clone(),
                    missing: miss.missing,
                    restore_predecessor: back,
                });
            } else if !miss.enough {
                actions.push(miss.count(key, &t, snap, false));
            }
        }
        Seen::Listed(l) if matches!(snap.seen(key), Seen::Listed(_)) && replaced(&t, l) => {
            // Another position on the tracked one's side (one no reduction of it can leave):
            // the tracked one is not listed. Nothing is confirmed (the list's entry would
            // become the one the exchange vouched for) and nothing resized; the tracked one is
            // replaced like a removal, and only once the outcome rules' lists show it too (a
            // list that lags can show an older position).
            if t.flip_back.lists > 0 {
                actions.push(Action::FlipBack {
                    key: key.clone(),
                    unseen: Unseen::default(),
                });
            }
            let fresh = in_reach && t.touched <= snap.requested_at;
            if !snap.well_formed || !fresh || !cx.purpose.removes() {
                return;
            }
            let miss = next_miss_by(&t, cx, cx.policy.removal_needs(true));
            actions.push(if miss.enough {
                Action::Replace {
                    key: key.clone(),
                    missing: miss.missing,
                }
            } else {
                miss.count(key, &t, snap, true)
            });
        }
        Seen::Listed(l) => {
            actions.push(Action::Confirm { key: key.clone() });
            if t.flip_back.lists > 0 {
                actions.push(Action::FlipBack {
                    key: key.clone(),
                    unseen: Unseen::default(),
                });
            }
            let Some(own) = t.own else { return };
            let fresh = in_reach && t.touched <= snap.requested_at;
            if fresh && !l.side_assumed && !close_enough(own.contracts, l.contracts, SIZE_TOLERANCE)
            {
                // The size from before one of the manager's own fills: the list may lag it.
                let lags = t
                    .lagged_sizes
                    .iter()
                    .any(|s| close_enough(*s, l.contracts, SIZE_TOLERANCE));
                if lags && still_counting(key, t.lag_unseen, cx, actions) {
                    return;
                }
                actions.push(Action::Resize {
                    key: key.clone(),
                    contracts: l.contracts,
                    entry_price: l.entry_price,
                    previous: own.contracts,
                });
            }
        }
        Seen::Present | Seen::BothLegs => actions.push(Action::Confirm { key: key.clone() }),
        Seen::Absent => {
            if snap.well_formed && t.flip_back.lists > 0 {
                actions.push(Action::FlipBack {
                    key: key.clone(),
                    unseen: Unseen::default(),
                });
            }
            if !snap.well_formed || !in_reach || !cx.purpose.removes() {
                return;
            }
            let miss = next_miss(&t, cx);
            if miss.enough {
                actions.push(Action::Remove {
                    key: key.clone(),
                    missing: miss.missing,
                    doubtful: t.unlisted_fill || miss_on_empty(&t, snap),
                });
            } else {
                actions.push(miss.count(key, &t, snap, false));
            }
        }
    }
}

/// How a list resolves an order with an unknown outcome (`None`: it cannot tell).
fn resolve(op: Op, before: f64, own: Option<Fingerprint>, seen: Seen<'_>) -> Option<Resolution> {
    match seen {
        Seen::Present | Seen::BothLegs => None,
        Seen::Absent => match op {
            Op::Close | Op::ScaleOut => Some(Resolution::Closed),
            // The position is gone, but not by a buy: the scale-in did nothing to it; the
            // absence is then judged by the removal rules.
            Op::ScaleIn => Some(Resolution::NotExecuted),
        },
        Seen::Listed(l) => {
            if l.side_assumed || own.is_some_and(|o| o.side != l.side) {
                return None;
            }
            let executed = match op {
                Op::Close | Op::ScaleOut => l.contracts < before * (1.0 - SIZE_TOLERANCE),
                Op::ScaleIn => l.contracts > before * (1.0 + SIZE_TOLERANCE),
            };
            Some(if executed {
                Resolution::Executed {
                    contracts: l.contracts,
                    entry_price: l.entry_price,
                }
            } else {
                Resolution::NotExecuted
            })
        }
    }
}

fn expired(since: Timestamp, cx: &Context<'_>) -> bool {
    !within_ttl(since, cx.timer, &cx.policy)
}

fn plan_tombstone(
    key: &Key,
    tomb: &TombView,
    seen: Seen<'_>,
    cx: &Context<'_>,
    actions: &mut Vec<Action>,
) {
    // A list requested before the manager's own order was settled shows what it ended.
    let tells = tomb
        .own_end
        .is_none_or(|end| cx.snapshot.requested_at >= end.at);
    match seen {
        Seen::Listed(l) if tells => {
            let resized = if tomb.matches(l) {
                Some(None)
            } else if tomb.reduced_to(l) {
                Some(Some(Resized::reduced(l.contracts)))
            } else if tomb.grown_to(l) {
                Some(Some(Resized {
                    contracts: l.contracts,
                    entry_price: l.entry_price,
                    added: true,
                }))
            } else {
                None
            };
            if let Some(resized) = resized {
                // The very position the manager's own order ended: the list may lag the order.
                if let Some(end) = tomb.own_end {
                    if still_counting(key, end.unseen, cx, actions) {
                        return;
                    }
                }
                actions.push(Action::Restore {
                    key: key.clone(),
                    resized,
                });
                return;
            }
            if cx.purpose.imports() {
                actions.push(Action::Import { key: key.clone() });
                return;
            }
        }
        // A list without it: those that showed it again no longer count.
        Seen::Absent
            if tells
                && cx.snapshot.well_formed
                && tomb.own_end.is_some_and(|end| end.unseen.lists > 0) =>
        {
            actions.push(Action::Unseen {
                key: key.clone(),
                unseen: Unseen::default(),
            });
        }
        Seen::Absent if end_shown(tomb, seen, cx.snapshot) => {
            actions.push(Action::EndShown { key: key.clone() });
        }
        _ => {}
    }
    if expired(tomb.removed_at, cx) {
        actions.push(Action::Expire { key: key.clone() });
    }
}

/// Whether a whole list (`seen`: what it shows of the tombstone's key) shows the end of a
/// [`doubtful`](TombView::doubtful) tombstone real ([`Action::EndShown`]): well-formed, with
/// entries (a failed read of the bot's client answers none), requested from the tombstone's
/// mark on, and without the key. No failed read or lagging list accounts for that.
pub fn end_shown(tomb: &TombView, seen: Seen<'_>, snapshot: &Snapshot) -> bool {
    seen == Seen::Absent
        && snapshot.well_formed
        && snapshot.entries > 0
        && tomb.doubtful.is_some_and(|at| snapshot.requested_at >= at)
}

/// [`Phase::Closed`]'s fields.
struct ClosedView {
    at: u64,
    own: Option<Fingerprint>,
    closed_time: Timestamp,
    check: CloseCheck,
    unseen: Unseen,
}

fn plan_closed(
    key: &Key,
    closed: ClosedView,
    seen: Seen<'_>,
    cx: &Context<'_>,
    actions: &mut Vec<Action>,
) {
    let ClosedView {
        at,
        own,
        closed_time,
        check,
        unseen,
    } = closed;
    let snap = cx.snapshot;
    let decided = snap.well_formed && snap.requested_at >= at;
    if decided {
        match seen {
            Seen::Absent => {
                // An empty answer may be a failed read of the bot's own client, whose `True`
                // may cover a close it never sent: that close is doubtful, restored by the
                // first list that shows the position again. A named close's order was accepted
                // under its id, and a non-empty answer is a real read: the position ended, and
                // a list that shows it again may lag the close (see `OwnEnd`).
                actions.push(Action::CloseConfirmed {
                    key: key.clone(),
                    doubtful: snap.entries == 0 && check == CloseCheck::List,
                });
                return;
            }
            Seen::Listed(l) if own.is_none_or(|o| l.side_assumed || o.side == l.side) => {
                let contracts = own
                    .filter(|o| !close_enough(o.contracts, l.contracts, SIZE_TOLERANCE))
                    .map(|_| l.contracts);
                // The position still listed: the close did nothing (or part of it), or the list
                // lags it — at the size it had then, which may be from before an earlier partial
                // exit, so another size proves nothing more than the same one.
                let exact = exactly(own, l);
                match check {
                    CloseCheck::List => {}
                    CloseCheck::Lookup => {
                        actions.push(Action::VerifyClose {
                            key: key.clone(),
                            contracts,
                            exact,
                        });
                        return;
                    }
                    CloseCheck::FilledWhole
                        if lags_a_whole_fill(check, exact, closed_time, cx.timer, &cx.policy) =>
                    {
                        // The venue says the order filled the whole position, and this list
                        // shows that position as it was before: a list older than the fill
                        // (the crash run's Gate one-way seed 55: two lists lagging a close the
                        // killed process's answer had, and the restarted bot's scale-out went to
                        // a flat venue). Only a new position at the very same size and entry
                        // would look the same.
                        actions.push(Action::CloseLags { key: key.clone() });
                        return;
                    }
                    CloseCheck::Filled | CloseCheck::FilledWhole => {
                        if still_counting(key, unseen, cx, actions) {
                            return;
                        }
                    }
                }
                actions.push(Action::CloseUnconfirmed {
                    key: key.clone(),
                    contracts,
                });
                return;
            }
            Seen::Listed(_) => {
                // Our position is gone; the symbol now holds another one.
                actions.push(Action::CloseConfirmed {
                    key: key.clone(),
                    doubtful: false,
                });
                if cx.purpose.imports() {
                    actions.push(Action::Import { key: key.clone() });
                }
                return;
            }
            Seen::Present | Seen::BothLegs => {}
        }
    }
    if expired(closed_time, cx) {
        actions.push(Action::Expire { key: key.clone() });
    }
}

/// One more list that shows the side a flip replaced with `key`'s tracked position:
/// counted ([`Action::FlipBack`], true) while the run is shorter than `outcome_confirmations`
/// lists over `outcome_grace_seconds`; false (nothing pushed) once it is long enough to believe.
fn still_flipping_back(
    key: &Key,
    unseen: Unseen,
    cx: &Context<'_>,
    actions: &mut Vec<Action>,
) -> bool {
    counting(unseen, cx, actions, |unseen| Action::FlipBack {
        key: key.clone(),
        unseen,
    })
}

/// One more list that does not settle `key`'s order as having done nothing: counted
/// ([`Action::Unseen`], true) while the run is shorter than `outcome_confirmations` lists over
/// `outcome_grace_seconds`; false (nothing pushed) once it is long enough to settle it.
fn still_counting(key: &Key, unseen: Unseen, cx: &Context<'_>, actions: &mut Vec<Action>) -> bool {
    counting(unseen, cx, actions, |unseen| Action::Unseen {
        key: key.clone(),
        unseen,
    })
}

/// One more list in the run `unseen` under the outcome rules: while the run is too short, the
/// action `count` makes of it is pushed and true returned.
fn counting(
    unseen: Unseen,
    cx: &Context<'_>,
    actions: &mut Vec<Action>,
    count: impl FnOnce(Unseen) -> Action,
) -> bool {
    let (unseen, enough) = unseen.next(&cx.policy, cx.timer);
    if !enough {
        actions.push(count(unseen));
    }
    !enough
}

fn plan_opening(
    key: &Key,
    unknown: Option<(u64, Side)>,
    unseen: Unseen,
    seen: Seen<'_>,
    cx: &Context<'_>,
    actions: &mut Vec<Action>,
) {
    let snap = cx.snapshot;
    let Some((at, side)) = unknown else { return };
    if !snap.well_formed || snap.requested_at < at {
        return;
    }
    let found = match seen {
        Seen::Absent => false,
        Seen::Listed(l) => l.side == side,
        Seen::Present | Seen::BothLegs => return,
    };
    if !found && still_counting(key, unseen, cx, actions) {
        return;
    }
    actions.push(Action::ResolveOpen {
        key: key.clone(),
        found,
    });
}

fn plan_imports(known: &dyn Fn(&str) -> bool, cx: &Context<'_>, actions: &mut Vec<Action>) {
    let listed: Vec<(&str, &crate::snapshot::Presence)> = match cx.focus {
        Some(focus) => cx
            .snapshot
            .symbols
            .get_key_value(focus.symbol())
            .map(|(s, p)| (s.as_str(), p))
            .into_iter()
            .collect(),
        None => cx.snapshot.symbols_in_order(),
    };
    for (symbol, presence) in listed {
        let keys: Vec<Key> = match cx.policy.mode {
            Mode::OneWay => vec![Key::net(symbol)],
            Mode::Hedge => [Side::Long, Side::Short]
                .into_iter()
                .map(|s| Key::hedge(symbol, s))
                .collect(),
        };
        for key in keys {
            if known(key.as_str()) || cx.focus.is_some_and(|f| *f != key) {
                continue;
            }
            if let Seen::Listed(_) = presence.seen(key.leg()) {
                actions.push(Action::Import { key });
            }
        }
    }
}

/// Why a position vanished, judged from the evidence: the prices seen around its disappearance
/// against its liquidation price (as the exchange last reported it), its stop and its take
/// profit. Returns the reason and the level that explains it (for the P/L at that level), or
/// `None` when nothing does.
pub fn judge_removal(
    is_long: bool,
    prices: &[f64],
    liquidation_price: Option<f64>,
    stop_loss: f64,
    take_profit: Option<f64>,
) -> Option<(&'static str, f64)> {
    let against = |level: f64| {
        prices
            .iter()
            .any(|&p| if is_long { p <= level } else { p >= level })
    };
    let beyond_target = |level: f64| {
        prices
            .iter()
            .any(|&p| if is_long { p >= level } else { p <= level })
    };
    if let Some(liq) = liquidation_price.filter(|l| l.is_finite() && *l > 0.0) {
        if against(liq) {
            return Some((LIQUIDATION, liq));
        }
    }
    if stop_loss.is_finite() && stop_loss > 0.0 && against(stop_loss) {
        return Some((STOP_FILLED, stop_loss));
    }
    if let Some(tp) = take_profit.filter(|t| t.is_finite() && *t > 0.0) {
        if beyond_target(tp) {
            return Some((TAKE_PROFIT_FILLED, tp));
        }
    }
    None
}

/// A vanished position the evidence says was liquidated.
pub const LIQUIDATION: &str = "liquidation";
/// A vanished position whose own stop the price reached: the exchange-side stop filled.
pub const STOP_FILLED: &str = "stop_filled_on_exchange";
/// A vanished position whose take profit the price reached.
pub const TAKE_PROFIT_FILLED: &str = "take_profit_filled_on_exchange";

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
