//! `Position`: the original class, backed by the core's shared state.
//!
//! The numeric state lives in Rust behind a mutex shared with the book, so `p.stop_loss = x` from
//! Python is what the manager sees and vice versa. Instances have a `__dict__`, so the bot's own
//! attributes (`strategy`, `rl_strategy`, ...) can be set and read back.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use position_manager_core::book::SharedPosition;
use position_manager_core::clock;
use position_manager_core::format::{format_price, py_repr_float};
use position_manager_core::manager::messages::{leverage_text, py_str_repr};
use position_manager_core::position::{PositionState, TakeProfitInputs};

use crate::convert::{
    finite, finite_or, from_datetime, int_if_whole, number, opt_number, positive_arg, price_arg,
    side_arg, text, to_datetime, truthy, unless_passing,
};
use crate::errors::PmError;
use crate::fork::Origin;

/// An open futures position: entry, size, leverage, stop loss, take profit and the adaptive
/// state the manager maintains (trailing extremes, maximum favourable excursion, profit velocity).
///
/// Same constructor, attributes and methods as the original bot's `Position`; arbitrary extra
/// attributes may be set on it.
///
/// >>> p = Position('BTC/USDT:USDT', 'long', 50000, 0.1, 10, 49000, 52000)
/// >>> p.get_leveraged_pnl(50500)
/// 0.1
#[pyclass(
    name = "Position",
    module = "position_manager_rs",
    frozen,
    dict,
    weakref,
    subclass
)]
pub struct PyPosition {
    pub(crate) inner: SharedPosition,
    /// Where the object was made (a forked child reads its fields without waiting for ever:
    /// [`PyPosition::fields`]).
    origin: Origin,
    /// Set when the object is put into a manager's book: its class (a subclass) overrides one
    /// of the methods the update cycle calls, so the cycle calls them through Python.
    pub(crate) overrides: AtomicBool,
    /// Where its fields come from: [`READY`], [`FRESH`] or [`UNSET`].
    init: AtomicU8,
}

/// The fields were set by the constructor's arguments (by `__init__`, or by `__new__` with no
/// `__init__` to follow), restored, or made by a manager.
const READY: u8 = 0;
/// `__new__` has just set the fields from its arguments: the `__init__` that `type.__call__`
/// runs next with the same arguments has nothing left to do, unless the class has an
/// `__init__` of its own.
const FRESH: u8 = 1;
/// Placeholders: the class has an `__init__` of its own, whose arguments are not a position's,
/// and that `__init__` has not called `super().__init__(...)` (yet).
const UNSET: u8 = 2;

/// How long a forked child tries the lock of a position made before the fork before it
/// refuses the read ([`PyPosition::inherited_fields`]).
const INHERITED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The constructor's parameters, in order; all but the last are required.
const PARAMETERS: [&str; 7] = [
    "symbol",
    "side",
    "entry_price",
    "amount",
    "leverage",
    "stop_loss",
    "take_profit",
];

/// How many of [`PARAMETERS`] are required.
const REQUIRED: usize = 6;

/// `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`: a list of parameter names as pyo3's messages
/// print it.
fn parameter_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

/// The required arguments of the constructor, in order, then `take_profit` if given.
type BoundArguments<'py> = ([Bound<'py, PyAny>; REQUIRED], Option<Bound<'py, PyAny>>);

/// The constructor's arguments bound to [`PARAMETERS`], as pyo3's own argument parsing binds
/// them and with its messages (`Position.__new__() missing 1 required positional argument:
/// 'stop_loss'`): `Position(...)` takes `*args, **kwargs` so that a subclass's `__init__` may
/// take arguments of its own, and its errors stay the ones pyo3 gave before. `function` names
/// the method in the messages.
fn bind_arguments<'py>(
    function: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<BoundArguments<'py>> {
    let mut bound: [Option<Bound<'py, PyAny>>; 7] = Default::default();
    if args.len() > PARAMETERS.len() {
        let given = args.len();
        let was = if given == 1 { "was" } else { "were" };
        return Err(PyTypeError::new_err(format!(
            "{function} takes from {REQUIRED} to {} positional arguments but {given} {was} given",
            PARAMETERS.len()
        )));
    }
    for (slot, arg) in bound.iter_mut().zip(args.iter()) {
        *slot = Some(arg);
    }
    for (name, value) in kwargs.into_iter().flat_map(|k| k.iter()) {
        let index = name
            .cast::<PyString>()
            .ok()
            .and_then(|n| PARAMETERS.iter().position(|p| *p == n.to_string_lossy()));
        match index.and_then(|i| bound.get_mut(i)) {
            Some(slot) => {
                if slot.replace(value).is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "{function} got multiple values for argument '{name}'"
                    )));
                }
            }
            None => {
                return Err(PyTypeError::new_err(format!(
                    "{function} got an unexpected keyword argument '{name}'"
                )))
            }
        }
    }
    let missing: Vec<&str> = PARAMETERS
        .iter()
        .zip(&bound)
        .take(REQUIRED)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    let [symbol, side, entry_price, amount, leverage, stop_loss, take_profit] = bound;
    match (symbol, side, entry_price, amount, leverage, stop_loss) {
        (Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)) => {
            Ok(([a, b, c, d, e, f], take_profit))
        }
        _ => {
            let arguments = if missing.len() == 1 {
                "argument"
            } else {
                "arguments"
            };
            Err(PyTypeError::new_err(format!(
                "{function} missing {} required positional {arguments}: {}",
                missing.len(),
                parameter_list(&missing)
            )))
        }
    }
}

/// A position's fields from the constructor's arguments (see `Position.__new__`).
fn state_from(
    function: &str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<PositionState> {
    let ([symbol, side, entry_price, amount, leverage, stop_loss], take_profit) =
        bind_arguments(function, args, kwargs)?;
    let symbol = text("symbol", &symbol)?;
    let side = side_arg("side", &side)?;
    let take_profit = match take_profit {
        Some(tp) if !tp.is_none() => Some(price_arg("take_profit", &tp)?),
        _ => None,
    };
    Ok(PositionState::new(
        symbol,
        side,
        positive_arg("entry_price", &entry_price)?,
        positive_arg("amount", &amount)?,
        positive_arg("leverage", &leverage)?,
        price_arg("stop_loss", &stop_loss)?,
        take_profit,
        clock::now(),
    ))
}

/// Whether `cls` (`Position` or a subclass) has an `__init__` other than `Position`'s.
fn init_overridden(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = cls.py();
    let base = py.get_type::<PyPosition>();
    if cls.is(&base) {
        return Ok(false);
    }
    let name = pyo3::intern!(py, "__init__");
    Ok(!cls.getattr(name)?.is(&base.getattr(name)?))
}

/// The original's methods a subclass may override, as the update cycle and a close call them.
pub const OVERRIDABLE: [&str; 5] = [
    "should_close",
    "update_trailing_stop",
    "update_take_profit",
    "get_pnl",
    "get_leveraged_pnl",
];

/// Whether `object`'s class overrides `method` of `Position` (false for `Position` itself).
pub fn overrides(object: &Bound<'_, PyAny>, method: &str) -> bool {
    let py = object.py();
    let cls = object.get_type();
    let base = py.get_type::<PyPosition>();
    if cls.is(&base) {
        return false;
    }
    match (cls.getattr(method), base.getattr(method)) {
        (Ok(mine), Ok(original)) => !mine.is(&original),
        _ => false,
    }
}

/// `self.get_leveraged_pnl(price)` through the subclass's override, when it overrides it or
/// `get_pnl` (as the original's methods read the P/L through `self`); `None` otherwise.
fn leveraged_override(slf: &Bound<'_, PyPosition>, price: f64) -> PyResult<Option<f64>> {
    if overrides(slf.as_any(), "get_leveraged_pnl") || overrides(slf.as_any(), "get_pnl") {
        let answer = slf.call_method1("get_leveraged_pnl", (price,))?;
        // A number, not a bool, as the manager reads an override's P/L.
        let r = number("get_leveraged_pnl()'s answer", &answer)?;
        return Ok(Some(r));
    }
    Ok(None)
}

impl PyPosition {
    /// Wraps existing shared state (used when the manager creates positions).
    pub fn from_shared(inner: SharedPosition) -> Self {
        Self::with_fields(inner, READY)
    }

    fn with_fields(inner: SharedPosition, init: u8) -> Self {
        PyPosition {
            inner,
            origin: Origin::here(),
            overrides: AtomicBool::new(false),
            init: AtomicU8::new(init),
        }
    }

    /// Whether the fields are placeholders: the object's class has an `__init__` of its own
    /// that never called `super().__init__(...)`.
    pub fn unset(&self) -> bool {
        self.init.load(Ordering::Acquire) == UNSET
    }

    /// Notes whether `object`'s class overrides any of [`OVERRIDABLE`] (when it enters a book).
    pub fn note_overrides(object: &Bound<'_, PyPosition>) {
        let any = OVERRIDABLE.iter().any(|m| overrides(object.as_any(), m));
        object.get().overrides.store(any, Ordering::Relaxed);
    }

    fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&PositionState) -> R) -> PyResult<R> {
        Ok(f(&*self.fields(py)?))
    }

    fn with_mut<R>(&self, py: Python<'_>, f: impl FnOnce(&mut PositionState) -> R) -> PyResult<R> {
        Ok(f(&mut *self.fields(py)?))
    }

    /// The fields, locked: waited for detached when another thread holds them. In a forked
    /// child, for an object made before the fork, see [`Self::inherited_fields`].
    #[inline]
    fn fields(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, PositionState>> {
        if self.origin.inherited() {
            return self.inherited_fields(py);
        }
        Ok(self.inner.lock_py_attached(py))
    }

    /// A forked child reading a position made before the fork: a parent thread (a cycle, the
    /// bot's own thread) may have held its lock at the fork, and no thread is left in the child
    /// to release it. The lock is tried for at most [`INHERITED_WAIT`] (the child's own
    /// threads hold it only to copy fields) and then refused with a `RuntimeError` that says
    /// why, never waited for for ever.
    #[cold]
    fn inherited_fields(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, PositionState>> {
        let deadline = std::time::Instant::now() + INHERITED_WAIT;
        loop {
            if let Some(fields) = self.inner.try_lock() {
                return Ok(fields);
            }
            if std::time::Instant::now() >= deadline {
                return Err(self.origin.held_at_fork("this Position"));
            }
            py.detach(|| std::thread::sleep(std::time::Duration::from_millis(1)));
        }
    }

    /// The position's side, read as every attribute is (the lock waited for detached when
    /// another thread holds it).
    pub(crate) fn side_text(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |p| p.side.clone())
    }
}

#[pymethods]
impl PyPosition {
    /// Position(symbol, side, entry_price, amount, leverage, stop_loss, take_profit=None)
    ///
    /// `side` is 'long' or 'short' (anything else is a ValueError: the original treated it as a
    /// short); prices are in quote currency, `amount` in contracts. Numbers must be finite;
    /// `entry_price`, `amount` and `leverage` > 0, `stop_loss` and `take_profit` >= 0.
    ///
    /// A subclass may have an `__init__` of its own, with arguments of its own, that calls
    /// `super().__init__(symbol, side, entry_price, amount, leverage, stop_loss, take_profit)`
    /// as with the original class: that call sets the fields.
    #[new]
    #[classmethod]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(symbol, side, entry_price, amount, leverage, stop_loss, take_profit=None)"
    )]
    fn new(
        cls: &Bound<'_, PyType>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        const NEW: &str = "Position.__new__()";
        let fields = |state| Self::with_fields(Arc::new(Mutex::new(state)), FRESH);
        if !init_overridden(cls)? {
            return Ok(fields(state_from(NEW, args, kwargs)?));
        }
        // The arguments are the subclass's own __init__'s; it sets the fields with
        // super().__init__(...). They are still taken when they are a position's (a subclass
        // whose own __new__ passes them on); an interruption while they are read leaves.
        Ok(
            match unless_passing(cls.py(), state_from(NEW, args, kwargs))? {
                Some(state) => fields(state),
                None => {
                    let placeholder =
                        PositionState::new("", "long", 1.0, 1.0, 1.0, 0.0, None, clock::now());
                    Self::with_fields(Arc::new(Mutex::new(placeholder)), UNSET)
                }
            },
        )
    }

    /// Sets the fields from the constructor's arguments, checked as `Position(...)` checks
    /// them: what a subclass's own `__init__` calls as `super().__init__(symbol, side,
    /// entry_price, amount, leverage, stop_loss, take_profit)`.
    #[pyo3(signature = (*args, **kwargs))]
    fn __init__(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let me = slf.get();
        let fresh = me
            .init
            .compare_exchange(FRESH, READY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        // Run by type.__call__ right after __new__ with the same arguments (Position, or a
        // subclass without an __init__ of its own): the fields are set already.
        if fresh && !init_overridden(&slf.get_type())? {
            return Ok(());
        }
        let state = state_from("Position.__init__()", args, kwargs)?;
        me.with_mut(slf.py(), |p| *p = state)?;
        me.init.store(READY, Ordering::Release);
        Ok(())
    }

    /// Unified symbol, e.g. 'BTC/USDT:USDT'.
    #[getter]
    fn symbol(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |p| p.symbol.clone())
    }
    #[setter]
    fn set_symbol(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = text("symbol", value)?;
        self.with_mut(py, |p| p.symbol = v)?;
        Ok(())
    }

    /// 'long' or 'short' (assigning anything else is a ValueError).
    #[getter]
    fn side(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |p| p.side.clone())
    }
    #[setter]
    fn set_side(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = side_arg("side", value)?;
        self.with_mut(py, |p| p.side = v)?;
        Ok(())
    }

    /// Average entry price: a finite number > 0 (assigning anything else is a ValueError).
    #[getter]
    fn entry_price(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.entry_price)
    }
    #[setter]
    fn set_entry_price(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = positive_arg("entry_price", value)?;
        self.with_mut(py, |p| p.entry_price = v)?;
        Ok(())
    }
    /// Size in contracts: a finite number > 0 (assigning anything else is a ValueError).
    #[getter]
    fn amount(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.amount)
    }
    #[setter]
    fn set_amount(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = positive_arg("amount", value)?;
        self.with_mut(py, |p| p.amount = v)?;
        Ok(())
    }
    /// Contract multiplier (value = amount × contract_size × price); 1 unless the exchange
    /// reports `contractSize`, which the manager then keeps up to date.
    #[getter]
    fn contract_size(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.contract_size)
    }
    #[setter]
    fn set_contract_size(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number("contract_size", value)?;
        if !(v.is_finite() && v > 0.0) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "contract_size must be a finite number > 0, got {v}"
            )));
        }
        self.with_mut(py, |p| p.contract_size = v)?;
        Ok(())
    }
    /// Stop-loss price (any number may be assigned, as in the original: a NaN stop never acts).
    #[getter]
    fn stop_loss(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.stop_loss)
    }
    #[setter]
    fn set_stop_loss(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number("stop_loss", value)?;
        self.with_mut(py, |p| p.stop_loss = v)?;
        Ok(())
    }
    /// Stop loss given at creation.
    #[getter]
    fn initial_stop_loss(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.initial_stop_loss)
    }
    #[setter]
    fn set_initial_stop_loss(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number("initial_stop_loss", value)?;
        self.with_mut(py, |p| p.initial_stop_loss = v)?;
        Ok(())
    }
    /// Maximum favourable excursion (P/L fraction; mixes unleveraged and leveraged values, as the original).
    #[getter]
    fn max_favorable_excursion(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.max_favorable_excursion)
    }
    #[setter]
    fn set_max_favorable_excursion(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let v = number("max_favorable_excursion", value)?;
        self.with_mut(py, |p| p.max_favorable_excursion = v)?;
        Ok(())
    }
    /// Leveraged P/L at the last take-profit update.
    #[getter]
    fn last_pnl(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.last_pnl)
    }
    #[setter]
    fn set_last_pnl(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number("last_pnl", value)?;
        self.with_mut(py, |p| p.last_pnl = v)?;
        Ok(())
    }
    /// Change of leveraged P/L per hour.
    #[getter]
    fn profit_velocity(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.profit_velocity)
    }
    #[setter]
    fn set_profit_velocity(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number("profit_velocity", value)?;
        self.with_mut(py, |p| p.profit_velocity = v)?;
        Ok(())
    }
    /// The original's profit acceleration figure.
    #[getter]
    fn profit_acceleration(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |p| p.profit_acceleration)
    }
    #[setter]
    fn set_profit_acceleration(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number("profit_acceleration", value)?;
        self.with_mut(py, |p| p.profit_acceleration = v)?;
        Ok(())
    }
    /// Take-profit price, or None.
    #[getter]
    fn take_profit(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with(py, |p| p.take_profit)
    }
    #[setter]
    fn set_take_profit(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = opt_number("take_profit", value)?;
        self.with_mut(py, |p| p.take_profit = v)?;
        Ok(())
    }
    /// Take profit given at creation, or None.
    #[getter]
    fn initial_take_profit(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with(py, |p| p.initial_take_profit)
    }
    #[setter]
    fn set_initial_take_profit(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = opt_number("initial_take_profit", value)?;
        self.with_mut(py, |p| p.initial_take_profit = v)?;
        Ok(())
    }
    /// Highest price seen (longs), or None.
    #[getter]
    fn highest_price(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with(py, |p| p.highest_price)
    }
    #[setter]
    fn set_highest_price(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = opt_number("highest_price", value)?;
        self.with_mut(py, |p| p.highest_price = v)?;
        Ok(())
    }
    /// Lowest price seen (shorts), or None.
    #[getter]
    fn lowest_price(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with(py, |p| p.lowest_price)
    }
    #[setter]
    fn set_lowest_price(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = opt_number("lowest_price", value)?;
        self.with_mut(py, |p| p.lowest_price = v)?;
        Ok(())
    }
    /// Whether the trailing stop has moved the stop.
    #[getter]
    fn trailing_stop_activated(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |p| p.trailing_stop_activated)
    }
    #[setter]
    fn set_trailing_stop_activated(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let v = value.is_truthy()?;
        self.with_mut(py, |p| p.trailing_stop_activated = v)?;
        Ok(())
    }
    /// Whether move_to_breakeven moved the stop.
    #[getter]
    fn breakeven_moved(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |p| p.breakeven_moved)
    }
    #[setter]
    fn set_breakeven_moved(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = value.is_truthy()?;
        self.with_mut(py, |p| p.breakeven_moved = v)?;
        Ok(())
    }
    /// True when the exchange gave no entry price at import and it was estimated from the current price.
    #[getter]
    fn entry_price_estimated(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |p| p.entry_price_estimated)
    }
    #[setter]
    fn set_entry_price_estimated(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = value.is_truthy()?;
        self.with_mut(py, |p| p.entry_price_estimated = v)?;
        Ok(())
    }

    /// Leverage; an int when whole (as the original's), else a float. A finite number > 0
    /// (assigning anything else is a ValueError: 0 made every update divide by zero).
    #[getter]
    fn leverage(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let l = self.with(py, |p| p.leverage)?;
        int_if_whole(py, l)
    }
    #[setter]
    fn set_leverage(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = positive_arg("leverage", value)?;
        self.with_mut(py, |p| p.leverage = v)?;
        Ok(())
    }

    /// Profit targets already taken by partial exits (a bitmask: bit i = target i; an int >= 0).
    #[getter]
    fn partial_exits_taken(&self, py: Python<'_>) -> PyResult<i64> {
        self.with(py, |p| p.partial_exits_taken)
    }
    #[setter]
    fn set_partial_exits_taken(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = crate::options::int_arg("partial_exits_taken", value, 0, i64::MAX)?;
        self.with_mut(py, |p| p.partial_exits_taken = v)?;
        Ok(())
    }

    /// When the position was opened (naive local datetime).
    #[getter]
    fn entry_time(&self, py: Python<'_>) -> PyResult<chrono::NaiveDateTime> {
        to_datetime(self.with(py, |p| p.entry_time)?)
    }
    #[setter]
    fn set_entry_time(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = from_datetime("entry_time", value)?;
        self.with_mut(py, |p| p.entry_time = t)?;
        Ok(())
    }

    /// Time of the last take-profit update (naive local datetime).
    #[getter]
    fn last_pnl_time(&self, py: Python<'_>) -> PyResult<chrono::NaiveDateTime> {
        to_datetime(self.with(py, |p| p.last_pnl_time)?)
    }
    #[setter]
    fn set_last_pnl_time(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = from_datetime("last_pnl_time", value)?;
        self.with_mut(py, |p| p.last_pnl_time = t)?;
        Ok(())
    }

    /// Unleveraged P/L fraction at `current_price` (0.01 = 1 %); `include_fees` subtracts the
    /// 0.12 % round-trip fee.
    #[pyo3(signature = (current_price, include_fees=None), text_signature = "(self, current_price, include_fees=False)")]
    fn get_pnl(
        &self,
        py: Python<'_>,
        current_price: &Bound<'_, PyAny>,
        include_fees: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let price = finite("current_price", current_price)?;
        let fees = truthy(include_fees)?;
        self.with(py, |p| p.pnl(price, fees))
    }

    /// Leveraged P/L (ROI) fraction at `current_price`.
    #[pyo3(signature = (current_price, include_fees=None), text_signature = "(self, current_price, include_fees=False)")]
    fn get_leveraged_pnl(
        slf: &Bound<'_, Self>,
        current_price: &Bound<'_, PyAny>,
        include_fees: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let price = finite("current_price", current_price)?;
        let fees = truthy(include_fees)?;
        let me = slf.get();
        if overrides(slf.as_any(), "get_pnl") {
            // As the original: `self.get_pnl(...) * leverage`, through the subclass's override.
            let u: f64 = slf.call_method1("get_pnl", (price, fees))?.extract()?;
            return Ok(u * me.with(slf.py(), |p| p.leverage)?);
        }
        me.with(slf.py(), |p| p.leveraged_pnl(price, fees))
    }

    /// `(should_close, reason)` at `current_price`: emergency stops, ROI-based profit taking,
    /// stop loss and take profit, in the original's order. May raise the maximum favourable
    /// excursion.
    fn should_close(
        slf: &Bound<'_, Self>,
        current_price: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyTuple>> {
        let py = slf.py();
        let price = finite("current_price", current_price)?;
        let check = match leveraged_override(slf, price)? {
            Some(r) => slf.get().with_mut(py, |p| p.should_close_with(price, r))?,
            None => slf.get().with_mut(py, |p| p.should_close(price))?,
        };
        crate::convert::bool_str(py, check.close, check.reason)
    }

    /// Moves the stop with new price extremes; the distance adapts to volatility, profit and
    /// momentum and stays within 0.4 %..4 %. The stop never loosens.
    #[pyo3(
        signature = (current_price, trailing_percentage, volatility=None, momentum=None),
        text_signature = "(self, current_price, trailing_percentage, volatility=0.03, momentum=0.0)"
    )]
    fn update_trailing_stop(
        slf: &Bound<'_, Self>,
        current_price: &Bound<'_, PyAny>,
        trailing_percentage: &Bound<'_, PyAny>,
        volatility: Option<&Bound<'_, PyAny>>,
        momentum: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let price = finite("current_price", current_price)?;
        let t = finite("trailing_percentage", trailing_percentage)?;
        let volatility = finite_or("volatility", volatility, 0.03)?;
        let momentum = finite_or("momentum", momentum, 0.0)?;
        let py = slf.py();
        let result = if overrides(slf.as_any(), "get_pnl") {
            let u: f64 = slf.call_method1("get_pnl", (price,))?.extract()?;
            slf.get().with_mut(py, |p| {
                p.update_trailing_stop_with(price, u, t, volatility, momentum)
            })?
        } else {
            slf.get().with_mut(py, |p| {
                p.update_trailing_stop(price, t, volatility, momentum)
            })?
        };
        result.map_err(|e| PmError(e).into())
    }

    /// Extends the take profit from momentum, trend strength, volatility, RSI, profit velocity,
    /// age and nearby resistance/support; it only ever moves away from entry.
    #[pyo3(
        signature = (current_price, momentum=None, trend_strength=None, volatility=None, rsi=None, support_resistance=None),
        text_signature = "(self, current_price, momentum=0.0, trend_strength=0.5, volatility=0.03, rsi=50.0, support_resistance=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn update_take_profit(
        slf: &Bound<'_, Self>,
        current_price: &Bound<'_, PyAny>,
        momentum: Option<&Bound<'_, PyAny>>,
        trend_strength: Option<&Bound<'_, PyAny>>,
        volatility: Option<&Bound<'_, PyAny>>,
        rsi: Option<&Bound<'_, PyAny>>,
        support_resistance: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let price = finite("current_price", current_price)?;
        let momentum = finite_or("momentum", momentum, 0.0)?;
        let trend_strength = finite_or("trend_strength", trend_strength, 0.5)?;
        let volatility = finite_or("volatility", volatility, 0.03)?;
        let rsi = finite_or("rsi", rsi, 50.0)?;
        let py = slf.py();
        let sr = match support_resistance {
            Some(v) => crate::convert::support_resistance(v)?,
            None => None,
        };
        let inputs = TakeProfitInputs {
            momentum,
            trend_strength,
            volatility,
            rsi,
            support_resistance: sr.as_ref(),
        };
        let now = clock::now();
        let me = slf.get();
        // The original returns before reading the P/L when there is no take profit.
        let has_target = me.with(py, |p| p.take_profit.is_some_and(|tp| tp != 0.0))?;
        let result = match leveraged_override(slf, price)? {
            Some(r) if has_target => {
                me.with_mut(py, |p| p.update_take_profit_with(now, price, r, &inputs))?
            }
            _ => me.with_mut(py, |p| p.update_take_profit(now, price, &inputs))?,
        };
        result.map_err(|e| PmError(e).into())
    }

    /// Moves the stop to entry ± `buffer` once unleveraged profit exceeds 1.5 %; True if moved.
    #[pyo3(signature = (current_price, buffer=None), text_signature = "(self, current_price, buffer=0.001)")]
    fn move_to_breakeven(
        &self,
        py: Python<'_>,
        current_price: &Bound<'_, PyAny>,
        buffer: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let price = finite("current_price", current_price)?;
        let buffer = finite_or("buffer", buffer, 0.001)?;
        self.with_mut(py, |p| p.move_to_breakeven(price, buffer))
    }

    /// `(stop_loss, take_profit)` for `side` from the nearest support and resistance levels
    /// (defaults: 3 % stop, 5 % target). Does not change the position.
    fn calculate_intelligent_targets(
        &self,
        current_price: &Bound<'_, PyAny>,
        support_resistance: &Bound<'_, PyAny>,
        side: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, f64)> {
        let price = finite("current_price", current_price)?;
        let sr = crate::convert::support_resistance(support_resistance)?;
        let side = side_arg("side", side)?;
        Ok(PositionState::intelligent_targets(
            price,
            sr.as_ref(),
            side == "long",
        ))
    }

    /// The analyzer used by `adjust_take_profit_with_volume_profile` (stateless, so shared by
    /// every position; assigning one on an instance keeps it for that instance).
    #[classattr]
    fn volume_profile_analyzer(py: Python<'_>) -> PyResult<Py<crate::market::PyVolumeProfile>> {
        Py::new(py, crate::market::PyVolumeProfile)
    }

    /// Pulls the take profit toward a strong volume level ahead (resistance for a long,
    /// support for a short) from a DataFrame (or list) of at least 20 candles; True if changed.
    /// `df` may have at most 1 000 000 candles (ValueError beyond; an endless iterable is
    /// refused so).
    fn adjust_take_profit_with_volume_profile(
        &self,
        py: Python<'_>,
        current_price: &Bound<'_, PyAny>,
        df: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let price = finite("current_price", current_price)?;
        // The original answers False for any data it cannot use.
        // (More candles than it may read is refused, not answered False.)
        let candles = match crate::market::candles_arg(df) {
            Ok(Some(candles)) => candles,
            Err(crate::market::CandlesArgError::TooMany(e)) => return Err(e),
            Err(crate::market::CandlesArgError::Read(e))
                if crate::convert::passes_through(py, &e) =>
            {
                return Err(e)
            }
            _ => return Ok(false),
        };
        self.with_mut(py, |p| {
            position_manager_core::market::volume_profile::adjust_take_profit_with_volume_profile(
                p, price, &candles,
            )
        })
    }

    /// Pickling and `copy.copy` / `copy.deepcopy`: a detached position (tracked by no manager)
    /// with the same fields, price history and attributes (shared by `copy.copy`, copied by
    /// `copy.deepcopy`), of the same class.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let state = slf.get().with(py, |p| p.clone())?;
        let newobj = py.import("copyreg")?.getattr("__newobj__")?;
        // `cls.__new__(cls, ...)` gets valid placeholders; `__setstate__` then sets every field.
        let args = (
            slf.get_type(),
            state.symbol.clone(),
            state.side.clone(),
            1.0,
            1.0,
            1.0,
            0.0,
        );
        let attributes = slf
            .getattr(pyo3::intern!(py, "__dict__"))?
            .cast_into::<PyDict>()?
            .copy()?;
        let saved = (PICKLE_FORMAT, pickle_fields(py, &state)?, attributes);
        PyTuple::new(
            py,
            [
                newobj,
                args.into_pyobject(py)?.into_any(),
                saved.into_pyobject(py)?.into_any(),
            ],
        )
    }

    /// Restores what `__reduce__` saved (used by pickle and copy).
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (format, fields, attributes): (u32, Bound<'_, PyDict>, Bound<'_, PyDict>) = state
            .extract()
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("not a pickled Position state"))?;
        if format != PICKLE_FORMAT {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "pickled Position format {format} is not supported (this version reads {PICKLE_FORMAT})"
            )));
        }
        let restored = fields_from(&fields)?;
        // What the setters and load_state refuse is refused here too (one set of rules: the
        // state file's), before anything of the position changes.
        position_manager_core::persist::validate_state(&restored).map_err(|m| {
            pyo3::exceptions::PyValueError::new_err(format!("pickled Position state: {m}"))
        })?;
        slf.get().with_mut(py, |p| *p = restored)?;
        slf.get().init.store(READY, Ordering::Release);
        slf.getattr(pyo3::intern!(py, "__dict__"))?
            .call_method1(pyo3::intern!(py, "update"), (attributes,))?;
        Ok(())
    }

    /// The position's fields as a plain dict (extra attributes not included).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.with(py, |p| p.clone())?;
        state_dict(py, &p)
    }

    /// What the update cycles saw, oldest first: `(time, price, stop_loss, take_profit)` tuples,
    /// the last 500 updates at most. Empty for a position no cycle has priced yet.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let points: Vec<_> = self.with(py, |p| p.history.points().copied().collect())?;
        let items = points
            .into_iter()
            .map(|pt| {
                Ok((
                    crate::convert::to_datetime(pt.time)?,
                    pt.price,
                    pt.stop_loss,
                    pt.take_profit,
                ))
            })
            .collect::<PyResult<Vec<_>>>()?;
        pyo3::types::PyList::new(py, items)
    }

    /// Draws the history (price, stop loss, take profit, entry) with matplotlib, on `ax` when
    /// given; returns the Axes.
    #[pyo3(signature = (ax = None))]
    fn plot<'py>(
        slf: &Bound<'py, Self>,
        ax: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::presentation::call(slf.py(), "plot_position", (slf, ax))
    }

    /// HTML for Jupyter.
    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        crate::presentation::call(slf.py(), "position_html", (slf,))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.with(py, |p| {
            format!(
                "Position(symbol={}, side={}, entry_price={}, amount={}, leverage={}, stop_loss={}, take_profit={})",
                py_str_repr(&p.symbol),
                py_str_repr(&p.side),
                py_repr_float(p.entry_price),
                py_repr_float(p.amount),
                leverage_text(p.leverage),
                py_repr_float(p.stop_loss),
                p.take_profit.map_or_else(|| "None".to_owned(), py_repr_float),
            )
        })
        .unwrap_or_else(|_| self.origin.held_text("Position"))
    }

    fn __str__(&self, py: Python<'_>) -> String {
        self.with(py, |p| {
            format!(
                "{} {} {} @ {} x{} SL {} TP {}",
                p.symbol,
                p.side.to_uppercase(),
                py_repr_float(p.amount),
                format_price(p.entry_price),
                leverage_text(p.leverage),
                format_price(p.stop_loss),
                p.take_profit
                    .map_or_else(|| "None".to_owned(), format_price),
            )
        })
        .unwrap_or_else(|_| self.origin.held_text("Position"))
    }
}

/// The version of the pickled form ([`pickle_fields`]).
const PICKLE_FORMAT: u32 = 1;

/// Every field of a position (times as integer microseconds, the price history as tuples) for
/// pickling. The destructuring names every field: a field added to `PositionState` does not
/// compile here until it is pickled too.
fn pickle_fields<'py>(py: Python<'py>, p: &PositionState) -> PyResult<Bound<'py, PyDict>> {
    let PositionState {
        symbol,
        side,
        entry_price,
        amount,
        leverage,
        stop_loss,
        take_profit,
        highest_price,
        lowest_price,
        entry_time,
        trailing_stop_activated,
        max_favorable_excursion,
        initial_stop_loss,
        initial_take_profit,
        last_pnl,
        last_pnl_time,
        profit_velocity,
        breakeven_moved,
        profit_acceleration,
        partial_exits_taken,
        entry_price_estimated,
        contract_size,
        history,
    } = p;
    let d = PyDict::new(py);
    d.set_item("symbol", symbol)?;
    d.set_item("side", side)?;
    d.set_item("entry_price", entry_price)?;
    d.set_item("amount", amount)?;
    d.set_item("leverage", leverage)?;
    d.set_item("stop_loss", stop_loss)?;
    d.set_item("take_profit", take_profit)?;
    d.set_item("highest_price", highest_price)?;
    d.set_item("lowest_price", lowest_price)?;
    d.set_item("entry_time", entry_time.0)?;
    d.set_item("trailing_stop_activated", trailing_stop_activated)?;
    d.set_item("max_favorable_excursion", max_favorable_excursion)?;
    d.set_item("initial_stop_loss", initial_stop_loss)?;
    d.set_item("initial_take_profit", initial_take_profit)?;
    d.set_item("last_pnl", last_pnl)?;
    d.set_item("last_pnl_time", last_pnl_time.0)?;
    d.set_item("profit_velocity", profit_velocity)?;
    d.set_item("breakeven_moved", breakeven_moved)?;
    d.set_item("profit_acceleration", profit_acceleration)?;
    d.set_item("partial_exits_taken", partial_exits_taken)?;
    d.set_item("entry_price_estimated", entry_price_estimated)?;
    d.set_item("contract_size", contract_size)?;
    let points: Vec<_> = history
        .points()
        .map(|pt| (pt.time.0, pt.price, pt.stop_loss, pt.take_profit))
        .collect();
    d.set_item("history", points)?;
    Ok(d)
}

/// The state [`pickle_fields`] wrote (a missing or mistyped field is a `ValueError` naming it).
fn fields_from(d: &Bound<'_, PyDict>) -> PyResult<PositionState> {
    fn get<'py, T: for<'a> pyo3::FromPyObject<'a, 'py>>(
        d: &Bound<'py, PyDict>,
        key: &str,
    ) -> PyResult<T> {
        let bad = || {
            pyo3::exceptions::PyValueError::new_err(format!(
                "pickled Position state: bad or missing {key:?}"
            ))
        };
        d.get_item(key)?
            .ok_or_else(bad)?
            .extract()
            .map_err(|_| bad())
    }
    let mut history = position_manager_core::position::history::PriceHistory::default();
    let points: Vec<(i64, f64, f64, Option<f64>)> = get(d, "history")?;
    // A copy keeps every point its original kept (a manager's `history_points` may be above the
    // default); a manager tracking the copy sets its own bound.
    history.set_limit(points.len().max(history.limit()));
    for (time, price, stop_loss, take_profit) in points {
        // A time the `history` attribute could not show as a datetime is refused by the rule
        // the state file's times follow.
        position_manager_core::persist::check_time("history time", clock::Timestamp(time))
            .map_err(|m| {
                pyo3::exceptions::PyValueError::new_err(format!("pickled Position state: {m}"))
            })?;
        history.push(position_manager_core::position::history::PricePoint {
            time: clock::Timestamp(time),
            price,
            stop_loss,
            take_profit,
        });
    }
    Ok(PositionState {
        symbol: get(d, "symbol")?,
        side: get(d, "side")?,
        entry_price: get(d, "entry_price")?,
        amount: get(d, "amount")?,
        leverage: get(d, "leverage")?,
        stop_loss: get(d, "stop_loss")?,
        take_profit: get(d, "take_profit")?,
        highest_price: get(d, "highest_price")?,
        lowest_price: get(d, "lowest_price")?,
        entry_time: clock::Timestamp(get(d, "entry_time")?),
        trailing_stop_activated: get(d, "trailing_stop_activated")?,
        max_favorable_excursion: get(d, "max_favorable_excursion")?,
        initial_stop_loss: get(d, "initial_stop_loss")?,
        initial_take_profit: get(d, "initial_take_profit")?,
        last_pnl: get(d, "last_pnl")?,
        last_pnl_time: clock::Timestamp(get(d, "last_pnl_time")?),
        profit_velocity: get(d, "profit_velocity")?,
        breakeven_moved: get(d, "breakeven_moved")?,
        profit_acceleration: get(d, "profit_acceleration")?,
        partial_exits_taken: get(d, "partial_exits_taken")?,
        entry_price_estimated: get(d, "entry_price_estimated")?,
        contract_size: get(d, "contract_size")?,
        history,
    })
}

/// A position state as a dict of its attributes.
pub fn state_dict<'py>(py: Python<'py>, p: &PositionState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(pyo3::intern!(py, "symbol"), &p.symbol)?;
    d.set_item(pyo3::intern!(py, "side"), &p.side)?;
    d.set_item(pyo3::intern!(py, "entry_price"), p.entry_price)?;
    d.set_item(pyo3::intern!(py, "amount"), p.amount)?;
    d.set_item(pyo3::intern!(py, "leverage"), int_if_whole(py, p.leverage)?)?;
    d.set_item(pyo3::intern!(py, "stop_loss"), p.stop_loss)?;
    d.set_item(pyo3::intern!(py, "take_profit"), p.take_profit)?;
    d.set_item(pyo3::intern!(py, "highest_price"), p.highest_price)?;
    d.set_item(pyo3::intern!(py, "lowest_price"), p.lowest_price)?;
    d.set_item(pyo3::intern!(py, "entry_time"), to_datetime(p.entry_time)?)?;
    d.set_item(
        pyo3::intern!(py, "trailing_stop_activated"),
        p.trailing_stop_activated,
    )?;
    d.set_item(
        pyo3::intern!(py, "max_favorable_excursion"),
        p.max_favorable_excursion,
    )?;
    d.set_item(pyo3::intern!(py, "initial_stop_loss"), p.initial_stop_loss)?;
    d.set_item(
        pyo3::intern!(py, "initial_take_profit"),
        p.initial_take_profit,
    )?;
    d.set_item(pyo3::intern!(py, "last_pnl"), p.last_pnl)?;
    d.set_item(
        pyo3::intern!(py, "last_pnl_time"),
        to_datetime(p.last_pnl_time)?,
    )?;
    d.set_item(pyo3::intern!(py, "profit_velocity"), p.profit_velocity)?;
    d.set_item(pyo3::intern!(py, "breakeven_moved"), p.breakeven_moved)?;
    d.set_item(
        pyo3::intern!(py, "profit_acceleration"),
        p.profit_acceleration,
    )?;
    d.set_item(
        pyo3::intern!(py, "partial_exits_taken"),
        p.partial_exits_taken,
    )?;
    d.set_item(
        pyo3::intern!(py, "entry_price_estimated"),
        p.entry_price_estimated,
    )?;
    d.set_item(pyo3::intern!(py, "contract_size"), p.contract_size)?;
    Ok(d)
}
