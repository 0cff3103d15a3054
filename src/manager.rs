//! `PositionManager`: the original class over the core manager.
//!
//! Every method reads the Python logging configuration afresh, then runs the core detached from
//! the interpreter; the core re-attaches only to call the client or to log, and never while it
//! holds a lock.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList, PyString};
use pyo3::PyTraverseError;

use position_manager_core::book::SharedPosition;
use position_manager_core::error::CoreResult;
use position_manager_core::events::Event;
use position_manager_core::key::{Key, Leg, Side};
use position_manager_core::manager::methods::CustomMethods;
use position_manager_core::manager::{HandleFactory, Manager, OpenRequest};
use position_manager_core::reconcile::Mode;

use crate::client::PyClient;
use crate::clock::PyManualClock;
use crate::convert::{describe, describe_checked, number, number_or, truthy};
use crate::errors::PmError;
use crate::event_dicts::{event_dict, events_list};
use crate::exit_bridge::ExitObjects;
use crate::logging::{detached, refresh_for, run, run_plain, PyLoggers};
use crate::options::{Opt, PyManagerConfig, RawOptions};
use crate::position::PyPosition;
use crate::update_iter::UpdateIter;
use crate::view::{Callbacks, Held, PositionsView};

/// The handle the book keeps per position: the Python `Position` object. The `Arc` lets the core
/// copy handles around without touching reference counts of Python objects.
pub type Handle = Arc<Py<PyPosition>>;

/// The core manager as the binding uses it.
pub type CoreManager = Manager<Handle>;

/// Makes `Position` objects for positions the manager imports.
struct PositionFactory;

impl HandleFactory<Handle> for PositionFactory {
    fn make(&self, position: &SharedPosition) -> CoreResult<Handle> {
        crate::logging::attach_clean(|py| {
            Py::new(py, PyPosition::from_shared(position.clone()))
                .map(Arc::new)
                .map_err(|e| crate::client::exchange_error(py, &e))
        })
    }

    fn custom(&self, handle: &Handle) -> Option<Arc<dyn CustomMethods>> {
        // Read without the interpreter: set when the object entered the book.
        handle
            .get()
            .overrides
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| Arc::new(PyMethods(handle.clone())) as Arc<dyn CustomMethods>)
    }
}

/// A `Position` subclass's own methods, called on the object itself (so its overrides apply,
/// and the base methods it did not override read the P/L through its overrides).
struct PyMethods(Handle);

impl PyMethods {
    fn call<T>(
        &self,
        f: impl for<'py> FnOnce(&Bound<'py, PyPosition>) -> PyResult<T>,
    ) -> CoreResult<T> {
        crate::logging::attach_clean(|py| {
            crate::logging::interruption(py)?;
            f(self.0.bind(py)).map_err(|e| crate::client::exchange_error(py, &e))
        })
    }
}

/// How many items of an overridden `should_close`'s answer are read at most: one more than the
/// two of `(close, reason)`, so that a longer answer (an endless iterator too) is refused
/// without reading it all.
const SHOULD_CLOSE_ITEMS_READ: usize = 3;

/// An overridden `should_close`'s answer as the original unpacked it, `close, reason =
/// position.should_close(price)`: any sequence of exactly two items (a tuple, a list, ...), but
/// not a string, bytes or a dict, whose items are characters or keys. Anything else is a
/// `TypeError`, the position's error for this cycle.
fn close_answer(answer: &Bound<'_, PyAny>) -> PyResult<(bool, String)> {
    let refused = |what: String| {
        PyTypeError::new_err(format!(
            "should_close() returned {what}, expected a tuple (close, reason)"
        ))
    };
    if answer.is_instance_of::<PyString>()
        || answer.is_instance_of::<pyo3::types::PyBytes>()
        || answer.is_instance_of::<PyDict>()
    {
        return Err(refused(describe_checked(answer)?));
    }
    let items = match answer.try_iter() {
        Ok(items) => items,
        Err(e) if crate::convert::passes_through(answer.py(), &e) => return Err(e),
        Err(_) => return Err(refused(describe_checked(answer)?)),
    };
    let read = items
        .take(SHOULD_CLOSE_ITEMS_READ)
        .collect::<PyResult<Vec<_>>>()?;
    let count = read.len();
    let Ok([close, reason]) = <[Bound<'_, PyAny>; 2]>::try_from(read) else {
        let count = if count < SHOULD_CLOSE_ITEMS_READ {
            format!("{count} item(s)")
        } else {
            "more than 2 items".to_owned()
        };
        return Err(refused(format!("{count}, {}", describe_checked(answer)?)));
    };
    Ok((close.is_truthy()?, reason.str()?.to_string()))
}

impl CustomMethods for PyMethods {
    fn get_pnl(&self, current_price: f64, include_fees: bool) -> CoreResult<f64> {
        self.call(|p| {
            let answer = p.call_method1("get_pnl", (current_price, include_fees))?;
            // A number, not a `bool` (nor numpy's), as every number the manager reads.
            number("get_pnl()'s answer", &answer)
        })
    }

    fn get_leveraged_pnl(&self, current_price: f64, include_fees: bool) -> CoreResult<f64> {
        self.call(|p| {
            let answer = p.call_method1("get_leveraged_pnl", (current_price, include_fees))?;
            number("get_leveraged_pnl()'s answer", &answer)
        })
    }

    fn update_trailing_stop(
        &self,
        current_price: f64,
        trailing_percentage: f64,
        volatility: f64,
        momentum: f64,
    ) -> CoreResult<()> {
        self.call(|p| {
            let kwargs = PyDict::new(p.py());
            kwargs.set_item("volatility", volatility)?;
            kwargs.set_item("momentum", momentum)?;
            p.call_method(
                "update_trailing_stop",
                (current_price, trailing_percentage),
                Some(&kwargs),
            )?;
            Ok(())
        })
    }

    fn update_take_profit(
        &self,
        current_price: f64,
        inputs: &position_manager_core::position::TakeProfitInputs<'_>,
    ) -> CoreResult<()> {
        self.call(|p| {
            let py = p.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item("momentum", inputs.momentum)?;
            kwargs.set_item("trend_strength", inputs.trend_strength)?;
            kwargs.set_item("volatility", inputs.volatility)?;
            kwargs.set_item("rsi", inputs.rsi)?;
            match inputs.support_resistance {
                Some(levels) => kwargs.set_item(
                    "support_resistance",
                    crate::convert::support_resistance_dict(py, levels)?,
                )?,
                None => kwargs.set_item("support_resistance", py.None())?,
            }
            p.call_method("update_take_profit", (current_price,), Some(&kwargs))?;
            Ok(())
        })
    }

    fn should_close(&self, current_price: f64) -> CoreResult<(bool, String)> {
        self.call(|p| close_answer(&p.call_method1("should_close", (current_price,))?))
    }
}

/// Manages a trading bot's open futures positions: keeps them in a thread-safe book, keeps the
/// book honest against the exchange, moves trailing stops and take profits, and closes positions
/// through the bot's own exchange client.
///
/// PositionManager(client, trailing_stop_percentage=0.02, *, missing_confirmations=1,
///                 ticker_retry_delays=(0.5, 1.0), snapshot_reuse_seconds=5.0,
///                 max_concurrent_calls=1,
///                 logger_name='TradingBot', position_logger_name='TradingBot.Position',
///                 order_logger_name='TradingBot.Order', event_history=10000,
///                 tombstone_limit=1000, advanced_exit_strategy=None,
///                 smart_exit_optimizer=None, missing_grace_seconds=0.0,
///                 tombstone_ttl_seconds=86400.0, reopen_hold_seconds=0.0,
///                 outcome_confirmations=2, outcome_grace_seconds=0.0,
///                 history_points=32, clock=None, position_mode='oneway', journal=None,
///                 account=None, journal_sync=None)
///
/// `client` is the bot's exchange client (see `position_manager_rs.ExchangeClient`). Options
/// after `*` go beyond the original; their defaults reproduce it (docs/configuration.md).
/// `advanced_exit_strategy` and `smart_exit_optimizer` replace the built-in exit rules
/// (`AdvancedExitStrategy`, `SmartExitOptimizer`) with your own objects, called with the
/// original's call shapes. `position_mode='hedge'` tracks a symbol's long and short legs on their
/// own, keyed `'SYMBOL@long'` / `'SYMBOL@short'`. `max_concurrent_calls` (1 to 64) lets an update
/// cycle make up to that many candle and ticker requests at once from worker threads (the
/// client must then take calls from several threads); a client with `get_tickers(symbols)`
/// gets every price of a cycle in one call. `clock` is a `ManualClock` the manager reads
/// time from instead of the process-wide clock (a `PaperExchange`'s `paper.clock`: paper time).
/// `history_points` is how many of its last updates each position keeps in `position.history`
/// (for tables and plots; 40 bytes each). `reopen_hold_seconds` refuses, for that long, to open
/// again a symbol that a position list showing no position at all untracked while the lists
/// still show none (a client answering `[]` for failed reads cannot then get a second position
/// opened on top of a live one); with a `journal` the holds survive a restart.
/// `outcome_confirmations` (lists in a row) and `outcome_grace_seconds` (seconds, at least)
/// decide when an order whose answer was lost is taken as not executed, because a venue's
/// position list can lag its fills; until then nothing more is sent for the position.
/// `journal` (a file path, `sqlite:///path` or a `postgresql://` URL, completed as `psql`
/// completes it: `PG*` variables, `~/.pgpass`, service files, `~/.postgresql/`) writes every
/// event and the book to a database under `account` and restores them at start
/// (docs/journal.md).
#[pyclass(
    name = "PositionManager",
    module = "position_manager_rs",
    frozen,
    dict,
    weakref,
    subclass
)]
pub struct PyPositionManager {
    pub(crate) core: Arc<CoreManager>,
    client: Arc<PyClient>,
    loggers: Arc<PyLoggers>,
    positions_lock: Py<PyAny>,
    exits: Arc<ExitObjects>,
    callbacks: Callbacks,
    clock: Option<Py<PyManualClock>>,
    journal: Option<crate::journal::Attached>,
    /// `manager.positions`: one view per manager, so its dict copy of the book is shared by
    /// every read.
    view: Py<PositionsView>,
    /// Always true once the object holds these fields. The collector can traverse the object
    /// before that: `object.__new__` makes the instance's `__dict__` (an allocation that may
    /// start a collection) after the object is tracked and before pyo3 writes the fields, so a
    /// traversal then sees zeroed memory (this reads false) and must read nothing else (it
    /// visited a null pointer: SIGSEGV; found by an audit on 2026-12-07).
    built: bool,
    /// The process (fork generation) the manager was made in (src/fork.rs).
    origin: crate::fork::Origin,
}

#[pymethods]
impl PyPositionManager {
    #[new]
    #[pyo3(signature = (
        client,
        trailing_stop_percentage = None,
        *,
        missing_confirmations = Opt::Default,
        ticker_retry_delays = Opt::Default,
        snapshot_reuse_seconds = Opt::Default,
        max_concurrent_calls = Opt::Default,
        logger_name = Opt::Default,
        position_logger_name = Opt::Default,
        order_logger_name = Opt::Default,
        event_history = Opt::Default,
        tombstone_limit = Opt::Default,
        advanced_exit_strategy = None,
        smart_exit_optimizer = None,
        missing_grace_seconds = Opt::Default,
        tombstone_ttl_seconds = Opt::Default,
        reopen_hold_seconds = Opt::Default,
        outcome_confirmations = Opt::Default,
        outcome_grace_seconds = Opt::Default,
        history_points = Opt::Default,
        clock = None,
        position_mode = Opt::Default,
        journal = None,
        account = None,
        journal_sync = None
    ),
    text_signature = "(client, trailing_stop_percentage=0.02, *, missing_confirmations=1, ticker_retry_delays=(0.5, 1.0), snapshot_reuse_seconds=5.0, max_concurrent_calls=1, logger_name='TradingBot', position_logger_name='TradingBot.Position', order_logger_name='TradingBot.Order', event_history=10000, tombstone_limit=1000, advanced_exit_strategy=None, smart_exit_optimizer=None, missing_grace_seconds=0.0, tombstone_ttl_seconds=86400.0, reopen_hold_seconds=0.0, outcome_confirmations=2, outcome_grace_seconds=0.0, history_points=32, clock=None, position_mode='oneway', journal=None, account=None, journal_sync=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        client: Py<PyAny>,
        trailing_stop_percentage: Option<&Bound<'_, PyAny>>,
        missing_confirmations: Opt<'_>,
        ticker_retry_delays: Opt<'_>,
        snapshot_reuse_seconds: Opt<'_>,
        max_concurrent_calls: Opt<'_>,
        logger_name: Opt<'_>,
        position_logger_name: Opt<'_>,
        order_logger_name: Opt<'_>,
        event_history: Opt<'_>,
        tombstone_limit: Opt<'_>,
        advanced_exit_strategy: Option<&Bound<'_, PyAny>>,
        smart_exit_optimizer: Option<&Bound<'_, PyAny>>,
        missing_grace_seconds: Opt<'_>,
        tombstone_ttl_seconds: Opt<'_>,
        reopen_hold_seconds: Opt<'_>,
        outcome_confirmations: Opt<'_>,
        outcome_grace_seconds: Opt<'_>,
        history_points: Opt<'_>,
        clock: Option<&Bound<'_, PyAny>>,
        position_mode: Opt<'_>,
        journal: Option<&Bound<'_, PyAny>>,
        account: Option<&Bound<'_, PyAny>>,
        journal_sync: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        crate::logging::install(py)?;
        // Types are checked and errors name the option and the value (src/options.rs); the
        // core checks the ranges.
        let config = RawOptions {
            trailing_stop_percentage,
            missing_confirmations: missing_confirmations.given(),
            ticker_retry_delays: ticker_retry_delays.given(),
            snapshot_reuse_seconds: snapshot_reuse_seconds.given(),
            max_concurrent_calls: max_concurrent_calls.given(),
            logger_name: logger_name.given(),
            position_logger_name: position_logger_name.given(),
            order_logger_name: order_logger_name.given(),
            event_history: event_history.given(),
            tombstone_limit: tombstone_limit.given(),
            missing_grace_seconds: missing_grace_seconds.given(),
            tombstone_ttl_seconds: tombstone_ttl_seconds.given(),
            history_points: history_points.given(),
            position_mode: position_mode.given(),
            reopen_hold_seconds: reopen_hold_seconds.given(),
            outcome_confirmations: outcome_confirmations.given(),
            outcome_grace_seconds: outcome_grace_seconds.given(),
        }
        .config()?;
        let (core_clock, clock) = crate::clock::manager_clock(clock)?;
        let journal = crate::journal::args(journal, account, journal_sync)?;
        let pyclient = Arc::new(PyClient::new(py, client));
        let core = Manager::new(
            pyclient.clone(),
            config,
            core_clock,
            Arc::new(PositionFactory),
        )
        .map_err(PmError)?;
        let loggers = Arc::new(PyLoggers::new(py, &core)?);
        let exits = Arc::new(ExitObjects::new(
            py,
            &core,
            advanced_exit_strategy,
            smart_exit_optimizer,
        )?);
        let threading = py.import("threading")?;
        let core = Arc::new(core);
        let journal = match journal {
            Some(args) => Some(crate::journal::attach(py, &core, &loggers, args)?),
            None => None,
        };
        let callbacks = Callbacks::default();
        let held = Held {
            client: pyclient.clone(),
            callbacks: callbacks.clone(),
            exits: exits.clone(),
            journal: journal.as_ref().map(crate::journal::Attached::book_journal),
        };
        let origin = crate::fork::Origin::here();
        let view = Py::new(py, PositionsView::new(core.clone(), held, origin))?;
        Ok(PyPositionManager {
            core,
            client: pyclient,
            loggers,
            positions_lock: threading.call_method0("Lock")?.unbind(),
            exits,
            callbacks,
            clock,
            journal,
            view,
            built: true,
            origin,
        })
    }

    /// Reports to the garbage collector the Python objects the manager holds itself: its view
    /// (which reports everything the core holds: the client, the callbacks, the exit objects,
    /// the positions; see src/gc.rs), its clock and its lock. Its `__dict__` is reported (and
    /// cleared) by pyo3. There is no `__clear__`: what could hold a cycle is cleared by the
    /// view's (the callbacks) or is the bot's own objects, whose `__dict__`s the collector
    /// clears; the manager stays usable until it is freed.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !self.built {
            return Ok(());
        }
        visit.call(&self.view)?;
        visit.call(&self.clock)?;
        visit.call(&self.positions_lock)?;
        Ok(())
    }

    /// The journal this manager writes (`journal=`): a dict with `journal` (the database,
    /// without a password), `account`, `journal_sync`, `queued_events` (events a failing
    /// database has not taken yet; written first by the next write that succeeds) and `fenced`
    /// (True once a newer manager claimed the account: this one writes nothing more), or None.
    #[getter]
    fn journal_status<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.usable()?;
        self.journal.as_ref().map(|j| j.status(py)).transpose()
    }

    /// Writes the tracked position's current fields and the bot's attributes to the journal
    /// now (they are also written with each of its events and at the end of every update
    /// cycle). True when written; False when not tracked, without a journal, or when the
    /// database failed (then logged, a `journal_failed` event, and retried).
    fn journal_position(&self, py: Python<'_>, symbol: &str) -> PyResult<bool> {
        self.usable()?;
        refresh_for(py, &self.core, &self.loggers);
        match &self.journal {
            Some(j) => j.write_position(py, symbol),
            None => Ok(false),
        }
    }

    /// Writes every tracked position whose fields or attributes changed since last written,
    /// and anything still queued after a failure. True when the journal holds everything;
    /// False without a journal or when the database failed (logged, evented, retried later).
    fn journal_checkpoint(&self, py: Python<'_>) -> PyResult<bool> {
        self.usable()?;
        refresh_for(py, &self.core, &self.loggers);
        match &self.journal {
            Some(j) => j.checkpoint(py, &self.core),
            None => Ok(false),
        }
    }

    /// The `ManualClock` this manager reads time from (`clock=`), or None when it reads the
    /// process-wide clock.
    #[getter]
    fn clock(&self, py: Python<'_>) -> PyResult<Option<Py<PyManualClock>>> {
        self.usable()?;
        Ok(self.clock.as_ref().map(|c| c.clone_ref(py)))
    }

    /// The advanced exit rules the update cycle asks: an `AdvancedExitStrategy` (run in Rust)
    /// unless you set your own object, whose `get_comprehensive_exit_signal(position_data,
    /// market_data)` is then called for every position (an exception or an unusable answer is
    /// a warning and a hold). Assigning None restores the built-in rules.
    #[getter]
    fn advanced_exit_strategy(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.usable()?;
        Ok(self.exits.advanced(py))
    }
    #[setter]
    fn set_advanced_exit_strategy(
        &self,
        py: Python<'_>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.usable()?;
        self.exits.set_advanced(py, &self.core, value)
    }

    /// The early-exit score the update cycle asks: a `SmartExitOptimizer` (run in Rust, with
    /// its conditions mirrored for shorts) unless you set your own object, whose
    /// `should_exit_early(...)` is then called with the original's keywords (an exception or an
    /// unusable answer is a warning and a hold). Assigning None restores the built-in score.
    #[getter]
    fn smart_exit_optimizer(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.usable()?;
        Ok(self.exits.smart(py))
    }
    #[setter]
    fn set_smart_exit_optimizer(
        &self,
        py: Python<'_>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.usable()?;
        self.exits.set_smart(py, &self.core, value)
    }

    /// The options the manager was built with (a read-only `ManagerConfig`; see
    /// docs/configuration.md).
    #[getter]
    fn config(&self) -> PyResult<PyManagerConfig> {
        self.usable()?;
        Ok(PyManagerConfig::new(self.core.config().clone()))
    }

    /// The bot's exchange client (may be replaced).
    #[getter]
    fn client(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.usable()?;
        Ok(self.client.get().clone_ref(py))
    }
    #[setter]
    fn set_client(&self, py: Python<'_>, client: Py<PyAny>) -> PyResult<()> {
        self.usable()?;
        self.client.set(py, client);
        // The book's lock is waited for detached (rule 2).
        crate::interpreter_exit::detach_or_stay(py, || self.core.client_replaced());
        Ok(())
    }

    /// Base trailing-stop distance (fraction of price).
    #[getter]
    fn trailing_stop_percentage(&self) -> PyResult<f64> {
        self.usable()?;
        Ok(self.core.trailing_stop_percentage())
    }
    #[setter]
    fn set_trailing_stop_percentage(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.usable()?;
        let v = number("trailing_stop_percentage", value)?;
        position_manager_core::manager::config::check_trailing_stop_percentage(v)
            .map_err(PmError)?;
        self.core
            .set_trailing_stop_percentage(v)
            .map_err(|e| PmError(e).into())
    }

    /// The tracked positions: a live, thread-safe dict-like view (`in`, `[]`, `[]=`, `del`,
    /// `get`, `keys`, `values`, `items`, `pop`, `clear`, `update`, `len`, iteration). Assigning
    /// a dict replaces every tracked position.
    #[getter]
    fn positions(&self, py: Python<'_>) -> PyResult<Py<PositionsView>> {
        self.usable()?;
        Ok(self.view.clone_ref(py))
    }
    #[setter]
    fn set_positions(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.usable()?;
        let view = self.view.get();
        let items = view.assigned_keys(py, crate::view::position_items(value)?)?;
        view.clear_all(py)?;
        for (key, position) in items {
            view.insert_at(py, &key, position)?;
        }
        Ok(())
    }

    /// The `TradingBot` logger.
    #[getter]
    fn logger(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.usable()?;
        Ok(self.loggers.main.clone_ref(py))
    }

    /// The `TradingBot.Position` logger.
    #[getter]
    fn position_logger(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.usable()?;
        Ok(self.loggers.position.clone_ref(py))
    }

    /// A `threading.Lock` kept for compatibility with code that references the original's
    /// private lock; the book has its own lock and every operation is already thread-safe.
    #[getter]
    fn _positions_lock(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.usable()?;
        Ok(self.positions_lock.clone_ref(py))
    }

    /// Number of tracked positions.
    fn get_open_positions_count(&self) -> PyResult<usize> {
        self.view.get().count()
    }

    /// The tracked `Position` for `symbol` (the live object, as the original), or None. In hedge
    /// mode name a leg (`'BTC/USDT:USDT@long'`); a plain symbol gives its only tracked leg
    /// (None when both are tracked).
    fn get_position<'py>(
        &self,
        py: Python<'py>,
        symbol: &Bound<'py, PyString>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.usable()?;
        Ok(match self.find(py, symbol)? {
            Named::Position(position) => Some(position),
            Named::Nothing => None,
            Named::BothLegs => {
                // Both legs of a plain symbol: None, with the warning the other calls give
                // that take a symbol (it was silent; found by an audit on 2026-12-06).
                let text = symbol.to_string_lossy().into_owned();
                refresh_for(py, &self.core, &self.loggers);
                let core = &self.core;
                run_plain(py, || {
                    if let Err(why) = core.resolve_key(&text) {
                        core.config().loggers.emit(
                            core.level_gates(),
                            position_manager_core::manager::Channel::Main,
                            log::Level::Warn,
                            || why,
                        );
                    }
                })?;
                None
            }
        })
    }

    /// A new dict {symbol: Position} of the tracked positions (same objects).
    fn get_all_positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.usable()?;
        self.view.get().dict(py)?.copy()
    }

    /// Whether `symbol` is tracked (in hedge mode: a leg key, or a plain symbol with any leg
    /// tracked).
    fn has_position(&self, py: Python<'_>, symbol: &Bound<'_, PyString>) -> PyResult<bool> {
        self.usable()?;
        Ok(!matches!(self.find(py, symbol)?, Named::Nothing))
    }

    /// `(ok, message)`: amount > 0, 1 <= leverage <= 125, 0 < stop_loss_percentage < 1, and
    /// no position for `symbol` yet (the original's checks and messages).
    fn validate_position_parameters(
        &self,
        py: Python<'_>,
        symbol: &str,
        amount: &Bound<'_, PyAny>,
        leverage: &Bound<'_, PyAny>,
        stop_loss_percentage: &Bound<'_, PyAny>,
    ) -> PyResult<(bool, String)> {
        self.usable()?;
        let text = |v: &Bound<'_, PyAny>| v.str().map(|s| s.to_string());
        let a = number("amount", amount)?;
        let l = number("leverage", leverage)?;
        let s = number("stop_loss_percentage", stop_loss_percentage)?;
        let (at, lt, st) = (text(amount)?, text(leverage)?, text(stop_loss_percentage)?);
        let core = &self.core;
        // The book's lock is taken attached when free, waited for detached only when another
        // thread holds it (see `events_after`).
        match core.try_validate_position_parameters(symbol, (a, &at), (l, &lt), (s, &st)) {
            Some(answer) => Ok(answer),
            None => run_plain(py, || {
                core.validate_position_parameters(symbol, (a, &at), (l, &lt), (s, &st))
            }),
        }
    }

    /// Runs one update cycle lazily, yielding `(symbol, pnl, position)` for each position it
    /// closes: first drops positions the exchange no longer lists, then per position fetches
    /// the price and 100 hourly candles, moves the trailing stop and take profit with the
    /// market's indicators, runs the advanced exit (partial exits at profit targets are events,
    /// not yielded) and the smart exit, checks the stop and target, and closes. Consume it with
    /// `for` or `list(...)`; nothing happens before iteration starts.
    fn update_positions(&self, py: Python<'_>) -> PyResult<UpdateIter> {
        self.usable()?;
        Ok(UpdateIter::new(
            self.core.clone(),
            self.loggers.clone(),
            self.view.clone_ref(py),
            self.origin,
        ))
    }

    /// Closes `symbol` on the exchange and stops tracking it; returns the leveraged P/L after
    /// fees, or None when it was not tracked, is no longer on the exchange (then it is only
    /// untracked), or the close failed (then it stays tracked).
    #[pyo3(signature = (symbol, reason = "manual"))]
    fn close_position(&self, py: Python<'_>, symbol: &str, reason: &str) -> PyResult<Option<f64>> {
        self.usable()?;
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run(py, || Ok(core.close_position(symbol, reason)?.pnl()))
    }

    /// Opens a position with a market order (or a post-only limit order first when
    /// `use_limit`), sets the stop at `stop_loss_percentage` from the fill and the take profit
    /// at three times that, and tracks it. `signal` is 'BUY' (long) or 'SELL' (short). Returns
    /// True when the position is open and tracked.
    ///
    /// The position records the amount and average price the order reports as filled (the
    /// requested amount and the ticker price only when the order does not say). A partly filled
    /// limit order is topped up by the remainder only; when the cancel fails or the fill is
    /// unknown, the exchange's position list is checked before any market order is sent.
    #[pyo3(
        signature = (symbol, signal, amount, leverage, stop_loss_percentage=None, use_limit=None, limit_offset=None),
        text_signature = "(self, symbol, signal, amount, leverage, stop_loss_percentage=0.05, use_limit=False, limit_offset=0.001)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn open_position(
        &self,
        py: Python<'_>,
        symbol: &str,
        signal: &str,
        amount: &Bound<'_, PyAny>,
        leverage: &Bound<'_, PyAny>,
        stop_loss_percentage: Option<&Bound<'_, PyAny>>,
        use_limit: Option<&Bound<'_, PyAny>>,
        limit_offset: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.usable()?;
        let a = number("amount", amount)?;
        let l = number("leverage", leverage)?;
        let s = number_or("stop_loss_percentage", stop_loss_percentage, 0.05)?;
        let offset = number_or("limit_offset", limit_offset, 0.001)?;
        if !(offset.is_finite() && (0.0..1.0).contains(&offset)) {
            return Err(PyValueError::new_err(format!(
                "limit_offset must be a number >= 0 and < 1, got {offset}"
            )));
        }
        let use_limit = truthy(use_limit)?;
        let at = arg_text(amount)?;
        let lt = arg_text(leverage)?;
        let st = match stop_loss_percentage {
            Some(v) => arg_text(v)?,
            None => "0.05".to_owned(),
        };
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run(py, || {
            core.open_position(&OpenRequest {
                symbol,
                signal,
                amount: (a, &at),
                leverage: (l, &lt),
                stop_loss_percentage: (s, &st),
                use_limit,
                limit_offset: offset,
            })
        })
    }

    /// Adds `additional_amount` contracts to a tracked position with a market order; the entry
    /// becomes the weighted average with `current_price` (or the fill the order reports).
    /// The exchange's list is read first: a position it no longer lists is untracked as closed
    /// externally and nothing is sent (an order would open a new position), and a list that
    /// cannot be read sends nothing either. Returns True when the book was updated.
    fn scale_in_position(
        &self,
        py: Python<'_>,
        symbol: &str,
        additional_amount: &Bound<'_, PyAny>,
        current_price: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.usable()?;
        let amount = positive("additional_amount", additional_amount)?;
        let price = positive("current_price", current_price)?;
        let text = arg_text(additional_amount)?;
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run(py, || {
            core.scale_in_position(symbol, (amount, &text), price)
        })
    }

    /// Closes `amount_to_close` contracts of a tracked position with a reduce-only market order
    /// (raised to the market minimum, rounded down to whole lots when the client reports a lot
    /// step; a request covering the whole position is a full `close_position`). Returns the
    /// leveraged P/L after fees at the ticker price, or None when nothing was closed. Partial
    /// closes are recorded in `events`.
    #[pyo3(signature = (symbol, amount_to_close, reason = "scale_out"))]
    fn scale_out_position(
        &self,
        py: Python<'_>,
        symbol: &str,
        amount_to_close: &Bound<'_, PyAny>,
        reason: &str,
    ) -> PyResult<Option<f64>> {
        self.usable()?;
        let amount = positive("amount_to_close", amount_to_close)?;
        let text = arg_text(amount_to_close)?;
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run(py, || {
            core.scale_out_position(symbol, (amount, &text), reason)
        })
    }

    /// Sets the stop loss and/or take profit of a tracked position without checks (None leaves
    /// a target as it is). False when the symbol is not tracked.
    #[pyo3(signature = (symbol, new_stop_loss = None, new_take_profit = None))]
    fn modify_position_targets(
        &self,
        py: Python<'_>,
        symbol: &str,
        new_stop_loss: Option<&Bound<'_, PyAny>>,
        new_take_profit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.usable()?;
        let sl = target("new_stop_loss", new_stop_loss)?;
        let tp = target("new_take_profit", new_take_profit)?;
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run_plain(py, || {
            core.modify_position_targets(symbol, sl.map(|t| t.0), tp.map(|t| t.0))
        })
    }

    /// Sets the stop loss and/or take profit of a tracked position after checking them against
    /// the entry (a stop on the losing side, a take profit on the winning side); nothing changes
    /// unless every given target passes. Returns True when applied.
    #[pyo3(signature = (symbol, new_stop_loss = None, new_take_profit = None, reason = "manual"))]
    fn safe_update_position_targets(
        &self,
        py: Python<'_>,
        symbol: &str,
        new_stop_loss: Option<&Bound<'_, PyAny>>,
        new_take_profit: Option<&Bound<'_, PyAny>>,
        reason: &str,
    ) -> PyResult<bool> {
        self.usable()?;
        let sl = target("new_stop_loss", new_stop_loss)?;
        let tp = target("new_take_profit", new_take_profit)?;
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run_plain(py, || {
            core.safe_update_position_targets(
                symbol,
                sl.as_ref().map(|(v, t)| (*v, t.as_str())),
                tp.as_ref().map(|(v, t)| (*v, t.as_str())),
                reason,
            )
        })
    }

    /// Imports the exchange's open positions that are not tracked yet (stop and take profit
    /// from the current price: 5 % / 15 %). Returns how many were imported or restored.
    fn sync_existing_positions(&self, py: Python<'_>) -> PyResult<usize> {
        self.usable()?;
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run(py, || core.sync_existing_positions())
    }

    /// Imports positions only the exchange has and drops those only the book has. Returns the
    /// number of discrepancies resolved.
    fn reconcile_positions(&self, py: Python<'_>) -> PyResult<usize> {
        self.usable()?;
        refresh_for(py, &self.core, &self.loggers);
        let core = &self.core;
        run(py, || core.reconcile_positions())
    }

    /// Saves every tracked position to `path` (a str or os.PathLike) as a versioned JSON state
    /// file, atomically: the previous file stays intact until the new one is complete on disk.
    /// Each position's fields and its own JSON-serialisable attributes (`strategy`, ...) are
    /// saved; others are skipped with one warning on the `TradingBot` logger naming them. What
    /// the manager remembers of positions it no longer tracks is saved too: tombstones, closes
    /// awaiting confirmation and re-open holds; and so are its orders whose outcome is unknown
    /// (an open, close or scale order whose answer was lost or whose limit order may still
    /// rest), which a load takes back as such. Returns the number of tracked positions saved. Raises `StateFileError` (a ValueError) for a
    /// position that could not be loaded back (e.g. a NaN price) and OSError when the file
    /// cannot be written. See docs/persistence.md.
    fn save_state(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.usable()?;
        crate::persist::save_state(py, &self.core, &self.loggers, path)
    }

    /// Fills this empty manager with the positions saved in the state file at `path` (fresh
    /// `Position` objects with every saved field and attribute, each a 'loaded' event); returns
    /// how many. All or nothing: a corrupt, truncated, newer-version or invalid file raises
    /// `StateFileError` (a ValueError) and loads nothing; a missing file raises
    /// FileNotFoundError; a manager that already tracks positions raises ValueError. The
    /// file's tombstones, closes awaiting confirmation and re-open holds come back as they were
    /// (those over by now are left out), so the first list restores or confirms them; its
    /// orders whose outcome was unknown come back as such (no second order goes out for them
    /// until the exchange tells, as in the manager that saved). With a
    /// journal (an empty account), all of it is journaled before this returns.
    ///
    /// Restart: `pm = PositionManager(client); pm.load_state(path); pm.reconcile_positions()`
    /// (or just run `update_positions()`): positions the exchange still lists keep their state,
    /// the others are removed as closed externally, with events.
    fn load_state(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.usable()?;
        crate::persist::load_state(py, &self.core, &self.loggers, path)
    }

    /// The history of changes to the book, oldest first: dicts with `seq`, `time`, `symbol`,
    /// `kind` ('removed', 'restored', 'imported', 'closed', 'added', 'untracked', ...),
    /// `reason`, `pnl` and `position` (the position's fields at that moment).
    ///
    /// Each read converts the whole history (up to `event_history` events; other Python threads
    /// keep running meanwhile). To follow it, read only what is new: `events_since(seq)`.
    #[getter]
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.usable()?;
        events_list(py, &self.events_after(py, 0))
    }

    /// How many events the history keeps now (`len(manager.events)` without converting them).
    #[getter]
    fn event_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.usable()?;
        let events = self.core.events();
        // Taken attached when free, waited for detached only when another thread holds it.
        Ok(events
            .try_len()
            .unwrap_or_else(|| detached(py, || events.len())))
    }

    /// The events recorded after event number `seq`, oldest first, as dicts like `events`: pass
    /// the `seq` of the last event you have (0 for the whole history) to read only what is new.
    /// Its cost is that of the events returned. The history keeps the newest `event_history`
    /// events: when the first event returned is not `seq + 1`, older ones were dropped
    /// meanwhile. `seq` is an int >= 0.
    fn events_since<'py>(
        &self,
        py: Python<'py>,
        seq: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.usable()?;
        let seq = crate::options::int_arg("seq", seq, 0, i64::MAX)?;
        let seq = u64::try_from(seq).unwrap_or(0);
        events_list(py, &self.events_after(py, seq))
    }

    /// Calls `callback(event)` for every event from now on, as it happens (after the change,
    /// with no lock held; `event` is a dict as in `events`). Returns `callback`, so it can be
    /// used as a decorator. An exception from the callback is logged and ignored. Each call
    /// registers once more (a callback registered twice is called twice); `off_event(callback)`
    /// removes one registration.
    fn on_event(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<Py<PyAny>> {
        self.usable()?;
        if !callback.bind(py).is_callable() {
            return Err(PyTypeError::new_err(format!(
                "callback must be callable, got {}",
                describe(callback.bind(py))
            )));
        }
        let first = {
            let mut callbacks = self.callbacks.lock_py_attached(py);
            callbacks.push(callback.clone_ref(py));
            callbacks.len() == 1
        };
        if first {
            // One sink serves every callback; without callbacks no event is converted at all.
            let callbacks = self.callbacks.clone();
            let loggers = self.loggers.clone();
            let sink: position_manager_core::manager::EventSink = Arc::new(move |event: &Event| {
                crate::logging::attach_clean(|py| {
                    let listeners: Vec<Py<PyAny>> = callbacks
                        .lock_py_attached(py)
                        .iter()
                        .map(|c| c.clone_ref(py))
                        .collect();
                    // Every callback removed (`off_event`): nothing to convert the event for.
                    if listeners.is_empty() {
                        return;
                    }
                    let Ok(record) = event_dict(py, event) else {
                        return;
                    };
                    for listener in listeners {
                        if let Err(e) = listener.call1(py, (record.clone(),)) {
                            if crate::logging::is_interrupt(py, &e) {
                                // Raised at the next client call or when the manager call
                                // ends, after the change the event records is complete.
                                crate::logging::defer_interrupt(e);
                                continue;
                            }
                            let e = crate::client::exchange_error(py, &e);
                            let message =
                                format!("on_event callback raised {}: {e}", e.kind_name());
                            // On the configured main logger; a failing log call must not break
                            // the manager either.
                            drop(loggers.main.call_method1(py, "warning", (message,)));
                        }
                    }
                });
            });
            self.core.set_event_sink(Some(sink));
        }
        Ok(callback)
    }

    /// Removes one registration of `callback` made by `on_event` (the oldest one equal to it:
    /// `==`, so `manager.off_event(self.handle)` removes `manager.on_event(self.handle)`'s
    /// bound method). Returns True when one was removed, False when none was registered.
    fn off_event(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.usable()?;
        // Compared outside the lock: `==` may run Python code (which may register or remove
        // callbacks itself); the lock is never held while Python runs.
        let registered: Vec<Py<PyAny>> = self
            .callbacks
            .lock_py_attached(py)
            .iter()
            .map(|c| c.clone_ref(py))
            .collect();
        let mut found = None;
        for c in registered {
            if c.bind(py).eq(callback)? {
                found = Some(c);
                break;
            }
        }
        let Some(found) = found else {
            return Ok(false);
        };
        let removed = {
            let mut callbacks = self.callbacks.lock_py_attached(py);
            callbacks
                .iter()
                .position(|c| c.is(&found))
                .map(|i| callbacks.remove(i))
        };
        // Dropped with no lock held.
        Ok(removed.is_some())
    }

    /// The tracked positions as a list of dicts (symbol, side, entry_price, amount, leverage,
    /// stop_loss, take_profit, last_price, pnl, age, updated), in book order.
    fn to_records<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().usable()?;
        crate::presentation::call(slf.py(), "manager_records", (slf,))
    }

    /// The records as a `pandas.DataFrame` indexed by symbol (needs pandas).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().usable()?;
        crate::presentation::call(slf.py(), "manager_frame", (slf,))
    }

    /// HTML for Jupyter: the table of open positions.
    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().usable()?;
        crate::presentation::call(slf.py(), "manager_html", (slf,))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        if let Some(unusable) = self.origin.unusable("PositionManager") {
            return Ok(unusable);
        }
        // The keys of the view's dict: the tracked positions in book order, read without
        // releasing the interpreter.
        let dict = self.view.get().dict(py)?;
        let mut names = Vec::with_capacity(dict.len());
        for key in dict.keys() {
            names.push(key.cast_into::<PyString>()?.to_string_lossy().into_owned());
        }
        Ok(format!(
            "PositionManager({} position(s): {})",
            names.len(),
            names.join(", ")
        ))
    }
}

impl Drop for PyPositionManager {
    /// In a forked child, the core and the journal are leaked rather than freed: they belong to
    /// the parent (its connection, its files; src/fork.rs).
    fn drop(&mut self) {
        self.origin.release(self.core.clone());
        self.origin.release(
            self.journal
                .as_ref()
                .map(crate::journal::Attached::book_journal),
        );
    }
}

/// What a symbol names in the book (`PyPositionManager::find`).
enum Named<'py> {
    /// A tracked position: the key's, or in hedge mode a plain symbol's one tracked leg.
    Position(Bound<'py, PyAny>),
    /// Nothing tracked under it.
    Nothing,
    /// In hedge mode, a plain symbol with both legs tracked: the caller must name one.
    BothLegs,
}

impl PyPositionManager {
    /// `Ok` in the process the manager was made in; the `RuntimeError` of a forked child
    /// otherwise (src/fork.rs). Every method but `repr()` checks it first.
    #[inline]
    fn usable(&self) -> PyResult<()> {
        self.origin.check("this PositionManager")
    }

    /// What `symbol` names, read from the view's dict (no lock, the interpreter held). A
    /// one-way book answers by the key alone. In hedge mode a leg key (`SYMBOL@long`) names
    /// itself and a plain symbol its one tracked leg, else itself, as `Manager::resolve_key`
    /// decides; all of it is read from one snapshot of the book. A `str` subclass is read by its
    /// text, a key with a lone surrogate by the text the book keeps for it.
    fn find<'py>(&self, py: Python<'py>, symbol: &Bound<'py, PyString>) -> PyResult<Named<'py>> {
        let view = self.view.get();
        let named = |found: Option<Bound<'py, PyAny>>| match found {
            Some(position) => Named::Position(position),
            None => Named::Nothing,
        };
        if self.core.config().position_mode == Mode::OneWay {
            return view.find(py, symbol.as_any()).map(named);
        }
        // The text the book keeps for it (a lone surrogate becomes U+FFFD, as in every key).
        let text = symbol.to_string_lossy();
        let dict = view.dict(py)?;
        let key = Key::parse(&text);
        if key.leg() != Leg::Net {
            return dict.get_item(key.as_str()).map(named);
        }
        let long = dict.get_item(Key::hedge(&text, Side::Long).as_str())?;
        let short = dict.get_item(Key::hedge(&text, Side::Short).as_str())?;
        Ok(match (long, short) {
            (Some(_), Some(_)) => Named::BothLegs,
            (Some(leg), None) | (None, Some(leg)) => Named::Position(leg),
            (None, None) => named(dict.get_item(text.as_ref())?),
        })
    }

    /// The events after `seq`, copied out of the history as shared pointers. The history's lock
    /// is taken attached when it is free (no Python ever runs under it), and waited for
    /// detached only when another thread holds it (DESIGN rule 2): detaching for microseconds
    /// on every read would keep other threads from the interpreter, since CPython hands it
    /// straight back to a thread that releases it that briefly.
    fn events_after(&self, py: Python<'_>, seq: u64) -> Vec<Arc<Event>> {
        let events = self.core.events();
        events
            .try_since(seq)
            .unwrap_or_else(|| detached(py, || events.since(seq)))
    }
}

/// `str(value)`: how the original printed an argument in its messages.
fn arg_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(value.str()?.to_string())
}

/// A number argument that must be finite and > 0 (ValueError naming it otherwise).
fn positive(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let v = number(name, value)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a finite number > 0, got {}",
            describe(value)
        )))
    }
}

/// An optional price target: None, or a finite number > 0 with its text.
fn target(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<(f64, String)>> {
    match value {
        Some(v) if !v.is_none() => Ok(Some((positive(name, v)?, arg_text(v)?))),
        _ => Ok(None),
    }
}
