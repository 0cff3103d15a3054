//! Orchestration: the position manager as explicit steps over the book, the exchange and the clock.
//!
//! - [`update`]: the update cycle (`update_positions()`), driven one step at a time, with its
//!   adaptive steps (market inputs from candles, advanced and smart exits) and [`exit_rules`]
//!   (built-in or caller-supplied exit rules); [`fetch`] (its reads: batched prices, the
//!   ticker retries, candles) and `concurrent` (those reads made ahead on worker threads);
//! - [`lists`]: reading the exchange's position list and applying it to the book (the planner's
//!   actions, corroboration, imports, the events and logs of what changed);
//! - [`close`]: `close_position` with the original safeguard and log blocks;
//! - [`verify`]: orders whose outcome is unknown, resolved against the exchange;
//! - [`sync`]: `sync_existing_positions` and `reconcile_positions` (imports and orphan removal);
//! - [`open`]: `open_position` (market or limit, recording what was filled);
//! - [`scale`]: `scale_in_position` and `scale_out_position`;
//! - [`retarget`]: `modify_position_targets` and `safe_update_position_targets`;
//! - [`state`]: `save_state` and `load_state` (the book to and from a state file);
//! - [`messages`]: loggers and Python-style text.
//!
//! Rules kept throughout (DESIGN.md): no lock is held while the exchange is called or a record is
//! logged; a failed or malformed exchange answer never removes a position; every change of the
//! book is an event.

mod adaptive;
pub mod close;
mod concurrent;
pub mod config;
pub mod exit_rules;
mod exit_steps;
pub mod fetch;
pub mod hold;
mod ids;
mod imports;
pub mod in_flight;
pub mod lists;
pub mod messages;
pub mod methods;
pub mod open;
pub mod repeats;
pub mod retarget;
pub mod scale;
pub mod state;
pub mod sync;
pub mod update;
mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::book::{Book, SharedPosition};
use crate::clock::{Clock, Timestamp};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventKind, EventLog, Evidence};
use crate::exchange::Exchange;
use crate::journal_hook::EventJournal;
use crate::key::{Key, Side};
use crate::reconcile::{Mode, Policy};

pub use close::CloseOutcome;
pub use config::ManagerConfig;
pub use messages::{Channel, LevelGates, Loggers};
pub use open::OpenRequest;
pub use update::{Closed, UpdateCycle};

/// Makes the caller's handle for a position the manager creates (the binding makes a Python
/// `Position` object sharing the state), and tells the manager what a handle can do. Called
/// without any lock held.
pub trait HandleFactory<H>: Send + Sync {
    /// A handle for a new position.
    fn make(&self, position: &SharedPosition) -> CoreResult<H>;

    /// The handle's own versions of the original's overridable methods, when its class
    /// overrides any (see [`methods`]); `None` runs the built-in math.
    fn custom(&self, _handle: &H) -> Option<Arc<dyn methods::CustomMethods>> {
        None
    }
}

/// The position manager core. `H` is the handle type the caller stores per position.
pub struct Manager<H> {
    exchange: Arc<dyn Exchange>,
    book: Book<H>,
    events: EventLog,
    clock: Arc<dyn Clock>,
    handles: Arc<dyn HandleFactory<H>>,
    trailing_bits: AtomicU64,
    gates: LevelGates,
    config: ManagerConfig,
    /// The exit rules the update cycle asks (built-in unless the caller supplies its own).
    exit_rules: exit_rules::ExitRules,
    /// Told about every event as it is recorded (no lock held).
    event_sink: parking_lot::RwLock<Option<EventSink>>,
    /// Makes a unique client order id per order (for clients that take them).
    ids: ids::ClientIds,
    /// Writes every event and the book's state to a database (`journal=`), if set.
    journal: parking_lot::RwLock<Option<Arc<dyn EventJournal>>>,
    /// Keys not to open again yet (`reopen_hold_seconds`, [`hold`]).
    holds: hold::ReopenHolds,
    /// Held while symbols are told to the client ([`Exchange::watch_symbols`]): a list read on
    /// another thread waits until they are told, so no list misses a market being added.
    /// Reentrant: a client's `watch_symbols` may call back into the manager.
    telling: parking_lot::ReentrantMutex<()>,
    /// How long a list read waits for another thread's telling before it fails (the manager
    /// then keeps every position, as for any failed read).
    telling_wait: std::time::Duration,
    /// The last list read's warnings, said once and then every few minutes ([`repeats`]).
    repeats: parking_lot::Mutex<repeats::Repeats>,
}

/// Why a key does not fit a manager's position mode ([`Manager::key_for_side`]).
enum Misfit {
    /// A hedge-mode leg key (the parsed key) in one-way mode.
    LegInOneWay(Key),
    /// In hedge mode, a leg key (the parsed key) of the other side (the leg's).
    OtherLeg(Key, Side),
}

/// A callback told about every event (see [`Manager::set_event_sink`]).
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

impl<H: Clone + Send + Sync> Manager<H> {
    /// A manager over `exchange` reading time from `clock`; `handles` makes handles for imported
    /// positions.
    pub fn new(
        exchange: Arc<dyn Exchange>,
        config: ManagerConfig,
        clock: Arc<dyn Clock>,
        handles: Arc<dyn HandleFactory<H>>,
    ) -> CoreResult<Self> {
        config.validate()?;
        let book = Book::new(config.tombstone_limit);
        book.set_history_points(config.history_points);
        if exchange.watches_symbols() {
            book.start_telling();
        }
        Ok(Manager {
            exchange,
            book,
            events: EventLog::new(config.event_capacity),
            clock,
            handles,
            trailing_bits: AtomicU64::new(config.trailing_stop_percentage.to_bits()),
            gates: LevelGates::default(),
            config,
            event_sink: parking_lot::RwLock::new(None),
            exit_rules: exit_rules::ExitRules::default(),
            ids: ids::ClientIds::new(),
            journal: parking_lot::RwLock::new(None),
            holds: hold::ReopenHolds::default(),
            telling: parking_lot::ReentrantMutex::new(()),
            telling_wait: std::time::Duration::from_secs(60),
            repeats: parking_lot::Mutex::new(repeats::Repeats::default()),
        })
    }

    /// The book.
    pub fn book(&self) -> &Book<H> {
        &self.book
    }

    /// The event history.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// The settings the manager was made with.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The exchange.
    pub fn exchange(&self) -> &Arc<dyn Exchange> {
        &self.exchange
    }

    /// The client behind [`Manager::exchange`] was replaced: a client that is told which
    /// symbols the book holds ([`Exchange::watches_symbols`]) is told all of them again before
    /// its first list.
    pub fn client_replaced(&self) {
        if self.exchange.watches_symbols() {
            self.book.start_telling();
        } else {
            self.book.stop_telling();
        }
    }

    /// The current time of the manager's clock (naive local time: entry times, ages, the 24 h
    /// rules, events' times).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The manager's clock's timer reading ([`crate::clock::Clock::timer`]): what every safety
    /// timer measures and keeps its times in (re-open holds, the removal and outcome graces,
    /// tombstone and unconfirmed-close lifetimes, `snapshot_reuse_seconds`).
    pub fn timer(&self) -> Timestamp {
        self.clock.timer()
    }

    /// The current base trailing distance.
    pub fn trailing_stop_percentage(&self) -> f64 {
        f64::from_bits(self.trailing_bits.load(Ordering::Relaxed))
    }

    /// Changes the base trailing distance (takes effect from the next position update).
    pub fn set_trailing_stop_percentage(&self, value: f64) -> CoreResult<()> {
        if !value.is_finite() || value < 0.0 {
            return Err(CoreError::Value(format!(
                "trailing_stop_percentage must be a finite number >= 0, got {value}"
            )));
        }
        self.trailing_bits.store(value.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn policy(&self) -> Policy {
        Policy {
            missing_confirmations: self.config.missing_confirmations,
            missing_grace_seconds: self.config.missing_grace_seconds,
            tombstone_ttl_seconds: self.config.tombstone_ttl_seconds,
            mode: self.config.position_mode,
            outcome_confirmations: self.config.outcome_confirmations,
            outcome_grace_seconds: self.config.outcome_grace_seconds,
        }
    }

    /// How to call `position`'s methods: the handle's overrides, or the built-in math.
    pub(crate) fn methods<'a>(
        &self,
        position: &'a SharedPosition,
        handle: &H,
    ) -> methods::Methods<'a> {
        match self.handles.custom(handle) {
            Some(custom) => methods::Methods::Custom(custom),
            None => methods::Methods::Builtin(position),
        }
    }

    /// The book key a caller's text names: the symbol itself in one-way mode; in hedge mode a
    /// leg key (`SYMBOL@long`) or a plain symbol that has exactly one tracked leg. `Err` with a
    /// message for a plain symbol with two tracked legs (the caller must name one).
    pub fn resolve_key(&self, text: &str) -> Result<Key, String> {
        if self.config.position_mode == Mode::OneWay {
            return Ok(Key::net(text));
        }
        let key = Key::parse(text);
        if key.leg() != crate::key::Leg::Net {
            return Ok(key);
        }
        let mut legs = self.book.tracked_legs(text);
        match legs.len() {
            0 => Ok(key),
            1 => Ok(legs.remove(0)),
            _ => Err(format!(
                "Position {text} has two legs; name one: {} or {}",
                Key::hedge(text, Side::Long),
                Key::hedge(text, Side::Short)
            )),
        }
    }

    /// The book key a position of `side` named by `text` takes in this manager's mode: in
    /// one-way mode the symbol itself, and a leg key (`SYMBOL@long`) does not fit; in hedge mode
    /// the leg of `side` (a plain symbol names it), and a leg key of the other side does not
    /// fit. A key of the other mode would never match what the lists show: the position would
    /// be imported a second time and closed twice. One rule for assignments
    /// ([`Manager::assigned_key`]) and opens ([`Manager::open_key`]), each wording its refusal.
    fn key_for_side(&self, text: &str, side: Side) -> Result<Key, Misfit> {
        let parsed = Key::parse(text);
        match (self.config.position_mode, parsed.leg().side()) {
            (Mode::OneWay, None) => Ok(Key::net(text)),
            (Mode::OneWay, Some(_)) => Err(Misfit::LegInOneWay(parsed)),
            (Mode::Hedge, None) => Ok(Key::hedge(text, side)),
            (Mode::Hedge, Some(leg)) if leg == side => Ok(parsed),
            (Mode::Hedge, Some(leg)) => Err(Misfit::OtherLeg(parsed, leg)),
        }
    }

    /// The book key a position assigned under `text` (`manager.positions[text] = position`)
    /// takes, `side` being the position's side ([`Manager::key_for_side`]); the message of a
    /// key that does not fit says which to use.
    pub fn assigned_key(&self, text: &str, side: &str) -> Result<Key, String> {
        let Some(side) = Side::parse(side) else {
            return Err(format!("side must be 'long' or 'short', got {side:?}"));
        };
        self.key_for_side(text, side)
            .map_err(|misfit| match misfit {
                Misfit::LegInOneWay(parsed) => format!(
                    "{text:?} is a hedge-mode key, but this manager is in one-way mode \
                 (position_mode='oneway'): assign the position under {:?}",
                    parsed.symbol()
                ),
                Misfit::OtherLeg(parsed, leg) => format!(
                "{text:?} names the {leg} leg, but the position is a {side}: assign it under {:?}",
                Key::hedge(parsed.symbol(), side).as_str()
            ),
            })
    }

    /// The position and handle `text` names ([`Manager::resolve_key`]).
    pub fn lookup(&self, text: &str) -> Option<(SharedPosition, H)> {
        let key = self.resolve_key(text).ok()?;
        self.book.get(key.as_str())
    }

    /// Whether `text` names a tracked position (in hedge mode a plain symbol: either leg).
    pub fn tracks(&self, text: &str) -> bool {
        match self.resolve_key(text) {
            Ok(key) => self.book.contains(key.as_str()),
            Err(_) => true,
        }
    }

    /// The key an open of `symbol` for `side` takes: the symbol in one-way mode, its leg in
    /// hedge mode (`Err` when `symbol` names the other leg).
    pub(crate) fn open_key(&self, symbol: &str, side: Side) -> Result<Key, String> {
        self.key_for_side(symbol, side)
            .map_err(|misfit| match misfit {
                Misfit::LegInOneWay(_) => format!(
                    "Invalid symbol: {symbol} is a hedge-mode key, but this manager is in one-way \
                 mode (position_mode='oneway')"
                ),
                Misfit::OtherLeg(_, leg) => {
                    format!(
                        "Invalid symbol: {symbol} names the {leg} leg, the signal opens a {side}"
                    )
                }
            })
    }

    /// The leg to name in an order for a position of `side`, when the client takes it.
    pub(crate) fn leg(&self, side: crate::key::Side) -> Option<crate::key::Side> {
        self.exchange.position_legs().then_some(side)
    }

    /// Keeps a hedge-mode position on the side of its key: a leg's side is its key's
    /// (`SYMBOL@long` is a long). A `position.side` assigned the other side made the manager's
    /// close and scale orders act on the other leg, and untracked the real one (found by an audit
    /// on 2026-12-06): the side is put back, with an ERROR, before anything is decided or sent.
    /// Nothing to do in one-way mode, where the side is the position's own.
    pub(crate) fn bind_leg_side(&self, key: &Key, position: &SharedPosition) {
        let Some(side) = key.leg().side() else {
            return;
        };
        let was = {
            let mut p = position.lock();
            if crate::key::Side::parse(&p.side) == Some(side) {
                return;
            }
            std::mem::replace(&mut p.side, side.as_str().to_owned())
        };
        self.log(Channel::Main, log::Level::Error, || {
            format!(
                "Position {key}: its side was set to {was:?}, but {key} is the {side} leg; it \
                 stays a {side} (a leg's side is its key's: track another side under its own key)"
            )
        });
    }

    /// The leg to name in an order for `position` (its own side), when the client takes it.
    pub(crate) fn leg_of(&self, position: &SharedPosition) -> Option<crate::key::Side> {
        if !self.exchange.position_legs() {
            return None;
        }
        crate::key::Side::parse(&position.lock().side)
    }

    /// The size a close of `position` names (`contracts=`) when the client takes it, else
    /// `None` (the original call shape).
    pub(crate) fn close_size(&self, position: &SharedPosition) -> Option<f64> {
        self.exchange.sized_closes().then(|| position.lock().amount)
    }

    /// A new client order id when the client takes them, else `None` (the bot's own client
    /// keeps the original call shapes).
    pub(crate) fn new_client_order_id(&self) -> Option<String> {
        self.exchange.client_order_ids().then(|| self.ids.next())
    }

    fn log(&self, channel: Channel, level: log::Level, message: impl FnOnce() -> String) {
        self.config
            .loggers
            .emit(&self.gates, channel, level, message);
    }

    /// Whether a record at `level` on `channel` would be emitted.
    fn log_enabled(&self, channel: Channel, level: log::Level) -> bool {
        self.config.loggers.enabled(&self.gates, channel, level)
    }

    /// The level gates: set them from the logging backend's configuration (see [`LevelGates`]).
    pub fn level_gates(&self) -> &LevelGates {
        &self.gates
    }

    /// Records an event with the position's current state (locks the position briefly).
    pub fn record(
        &self,
        symbol: &str,
        position: &SharedPosition,
        kind: EventKind,
        reason: &str,
        pnl: Option<f64>,
    ) -> Event {
        self.record_full(symbol, position, kind, reason, pnl, None, None)
    }

    /// [`Manager::record`] with the evidence the change rested on.
    pub fn record_with(
        &self,
        symbol: &str,
        position: &SharedPosition,
        kind: EventKind,
        reason: &str,
        pnl: Option<f64>,
        evidence: Option<Evidence>,
    ) -> Event {
        self.record_full(symbol, position, kind, reason, pnl, evidence, None)
    }

    /// [`Manager::record_with`] with the client order id of the order behind the change. The
    /// event sink, if any, is called after the event is stored, with no lock held.
    #[allow(clippy::too_many_arguments)]
    pub fn record_full(
        &self,
        symbol: &str,
        position: &SharedPosition,
        kind: EventKind,
        reason: &str,
        pnl: Option<f64>,
        evidence: Option<Evidence>,
        order_id: Option<&str>,
    ) -> Event {
        let state = position.lock().snapshot();
        let event = self.events.record_with_evidence(
            self.clock.now(),
            symbol,
            kind,
            reason,
            pnl,
            state,
            evidence,
            order_id.map(str::to_owned),
        );
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            journal.record(&event, position);
        }
        let sink = self.event_sink.read().clone();
        if let Some(sink) = sink {
            sink(&event);
        }
        event
    }

    /// Sets (or clears) the journal told about every event (before the event sink) and asked
    /// to write the book's state at the end of every update cycle.
    pub fn set_journal(&self, journal: Option<Arc<dyn EventJournal>>) {
        let old = std::mem::replace(&mut *self.journal.write(), journal);
        drop(old);
    }

    /// Asks the journal, if any, to write the positions whose state changed since it last
    /// wrote them (the end of every update cycle does).
    pub fn journal_checkpoint(&self) {
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            journal.checkpoint();
        }
    }

    /// Tells the journal, if any, that the closes of `keys` were confirmed (called with no
    /// lock held).
    pub(crate) fn journal_closes_settled(&self, keys: &[Key]) {
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            journal.closes_settled(keys);
        }
    }

    /// Tells the journal, if any, that the book took back remembered positions under `keys`
    /// (called with no lock held).
    pub(crate) fn journal_remembered(&self, keys: &[Key]) {
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            journal.remembered(keys);
        }
    }

    /// Sets (or clears) the callback told about every event as it is recorded.
    pub fn set_event_sink(&self, sink: Option<EventSink>) {
        let old = std::mem::replace(&mut *self.event_sink.write(), sink);
        drop(old);
    }

    /// `get_open_positions_count()`.
    pub fn open_positions_count(&self) -> usize {
        self.book.len()
    }

    /// `validate_position_parameters(symbol, amount, leverage, stop_loss_percentage)` with the
    /// original's order of checks and messages. Each number comes with its text as Python prints
    /// it. NaN and infinite values fail the check they belong to (the original let NaN through);
    /// a symbol with an open in flight counts as existing.
    pub fn validate_position_parameters(
        &self,
        symbol: &str,
        amount: (f64, &str),
        leverage: (f64, &str),
        stop_loss_percentage: (f64, &str),
    ) -> (bool, String) {
        match parameter_problem(amount, leverage, stop_loss_percentage) {
            Some(problem) => (false, problem),
            None => occupancy_answer(symbol, self.book.occupied(symbol)),
        }
    }

    /// [`Manager::validate_position_parameters`] without waiting for the book's lock: `None`
    /// when the numbers are valid and another thread holds the lock right now (then ask the
    /// blocking form from a thread that may wait).
    pub fn try_validate_position_parameters(
        &self,
        symbol: &str,
        amount: (f64, &str),
        leverage: (f64, &str),
        stop_loss_percentage: (f64, &str),
    ) -> Option<(bool, String)> {
        match parameter_problem(amount, leverage, stop_loss_percentage) {
            Some(problem) => Some((false, problem)),
            None => Some(occupancy_answer(symbol, self.book.try_occupied(symbol)?)),
        }
    }
}

/// The first of `validate_position_parameters`' number checks that fails, as its message.
fn parameter_problem(
    amount: (f64, &str),
    leverage: (f64, &str),
    stop_loss_percentage: (f64, &str),
) -> Option<String> {
    if !(amount.0 > 0.0 && amount.0.is_finite()) {
        return Some(format!("Invalid amount: {} (must be positive)", amount.1));
    }
    if !(1.0..=125.0).contains(&leverage.0) {
        return Some(format!(
            "Invalid leverage: {}x (must be between 1 and 125)",
            leverage.1
        ));
    }
    if !(stop_loss_percentage.0 > 0.0 && stop_loss_percentage.0 < 1.0) {
        return Some(format!(
            "Invalid stop loss percentage: {} (must be between 0 and 1)",
            stop_loss_percentage.1
        ));
    }
    None
}

/// `validate_position_parameters`' answer once the numbers passed.
fn occupancy_answer(symbol: &str, occupied: bool) -> (bool, String) {
    if occupied {
        (false, format!("Position for {symbol} already exists"))
    } else {
        (true, "Valid parameters".to_owned())
    }
}

/// Splits an interruption, passed up with `?`, from every other error, which the caller
/// handles: `let answer = caught(self.exchange().get_ticker(s))?;`.
pub(crate) fn caught<T>(result: CoreResult<T>) -> CoreResult<CoreResult<T>> {
    match result {
        Err(e) if e.is_interrupt() => Err(e),
        other => Ok(other),
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod trading_tests;

#[cfg(test)]
mod drift_tests;

#[cfg(test)]
mod hedge_tests;

#[cfg(test)]
mod focused_tests;

#[cfg(test)]
mod hold_tests;

#[cfg(test)]
mod in_flight_tests;

#[cfg(test)]
mod verify_tests;

#[cfg(test)]
mod own_end_tests;

#[cfg(test)]
mod watch_tests;

#[cfg(test)]
mod timer_tests;
