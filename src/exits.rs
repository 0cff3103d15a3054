//! `AdvancedExitStrategy` and `SmartExitOptimizer`: the original's exit-rule objects, backed by
//! the core's rules (`position_manager_core::exits`), with the original methods and return shapes.
//!
//! A `PositionManager` uses these rules directly in Rust when its `advanced_exit_strategy` /
//! `smart_exit_optimizer` are instances of these exact classes; any other object (including a
//! subclass) is called through Python (see [`crate::exit_bridge`]).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use position_manager_core::clock;
use position_manager_core::exits::{
    breakeven_plus_stop, comprehensive_exit_signal, should_exit_early, should_exit_early_for_side,
    MarketData, PositionData, SmartExitInputs,
};
use position_manager_core::format::py_fixed;

use crate::convert::{from_datetime, get_key, number, text};
use crate::errors::PmError;

/// The logger the original strategy objects write to.
const MAIN_LOGGER: &str = "TradingBot";

/// `mapping[key]` (a `KeyError` when missing, as the original's subscript).
fn required<'py>(mapping: &Bound<'py, PyAny>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    mapping.get_item(key)
}

/// `mapping.get(key)` as a number, `default` when missing or None.
fn number_or_default(mapping: &Bound<'_, PyAny>, key: &str, default: f64) -> PyResult<f64> {
    match get_key(mapping, &PyString::new(mapping.py(), key))? {
        Some(v) if !v.is_none() => number(key, &v),
        _ => Ok(default),
    }
}

/// `mapping.get(key)` as an optional number.
fn optional_number(mapping: &Bound<'_, PyAny>, key: &str) -> PyResult<Option<f64>> {
    match get_key(mapping, &PyString::new(mapping.py(), key))? {
        Some(v) if !v.is_none() => number(key, &v).map(Some),
        _ => Ok(None),
    }
}

/// The core's inputs from the original's `position_data` and `market_data` dicts.
fn read_inputs(
    position_data: &Bound<'_, PyAny>,
    market_data: &Bound<'_, PyAny>,
) -> PyResult<(PositionData, MarketData)> {
    let side = required(position_data, "side")?;
    let side_is_long = side
        .cast::<PyString>()
        .is_ok_and(|s| s.to_string_lossy() == "long");
    let entry_age_seconds = match get_key(
        position_data,
        &PyString::new(position_data.py(), "entry_time"),
    )? {
        Some(t) if !t.is_none() => {
            clock::now().seconds_since(from_datetime("position_data['entry_time']", &t)?)
        }
        _ => 0.0,
    };
    let taken = number_or_default(position_data, "partial_exits_taken", 0.0)?;
    let position = PositionData {
        side_is_long,
        entry_price: number("entry_price", &required(position_data, "entry_price")?)?,
        current_price: number("current_price", &required(position_data, "current_price")?)?,
        current_pnl_pct: number(
            "current_pnl_pct",
            &required(position_data, "current_pnl_pct")?,
        )?,
        peak_pnl_pct: number_or_default(position_data, "peak_pnl_pct", 0.0)?,
        leverage: number_or_default(position_data, "leverage", 10.0)?,
        entry_age_seconds,
        max_hold_minutes: number_or_default(position_data, "max_hold_minutes", 1440.0)?,
        entry_volatility: optional_number(position_data, "entry_volatility")?,
        stop_loss: number_or_default(position_data, "stop_loss", 0.0)?,
        take_profit: optional_number(position_data, "take_profit")?,
        targets_taken: if taken.is_finite() && taken > 0.0 {
            (taken as u64 & 0xFFFF_FFFF) as u32
        } else {
            0
        },
    };
    let market = MarketData {
        volatility: number_or_default(market_data, "volatility", 0.03)?,
        momentum: number_or_default(market_data, "momentum", 0.0)?,
        rsi: number_or_default(market_data, "rsi", 50.0)?,
        trend_strength: number_or_default(market_data, "trend_strength", 0.5)?,
        current_volatility: optional_number(market_data, "current_volatility")?,
    };
    Ok((position, market))
}

/// The original's advanced exit strategy: breakeven+ stop, time limit, volatility spike,
/// momentum reversal, profit lock and profit scaling, combined into one decision.
///
/// AdvancedExitStrategy()
///
/// A `PositionManager` runs these rules in Rust when its `advanced_exit_strategy` is an instance
/// of this class; pass your own object (or a subclass) to the manager to change them.
#[pyclass(
    name = "AdvancedExitStrategy",
    module = "position_manager_rs",
    frozen,
    subclass,
    dict,
    weakref
)]
pub struct PyAdvancedExitStrategy;

#[pymethods]
impl PyAdvancedExitStrategy {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyAdvancedExitStrategy
    }

    /// `(should_exit, reason, action)` for one position.
    ///
    /// `position_data`: `side`, `entry_price`, `current_price`, `current_pnl_pct` (leveraged P/L
    /// fraction) are required; `peak_pnl_pct`, `leverage` (10), `entry_time` (a naive datetime;
    /// without it the time limit does not apply), `max_hold_minutes` (1440), `entry_volatility`,
    /// `stop_loss`, `take_profit` and `partial_exits_taken` (bitmask of profit targets already
    /// taken; an extension, 0 reproduces the original) are optional. `market_data`: `momentum`,
    /// `rsi`, `volatility`, `trend_strength`, `current_volatility` (all optional).
    ///
    /// Answers `(True, reason, 1.0)` for a full exit, `(False, 'Breakeven+ stop update',
    /// stop_price)` to move the stop, `(False, reason, fraction)` for a partial exit at a profit
    /// target, or `(False, '', None)`. Raises `ZeroDivisionError` for leverage 0, as the original.
    fn get_comprehensive_exit_signal(
        &self,
        py: Python<'_>,
        position_data: &Bound<'_, PyAny>,
        market_data: &Bound<'_, PyAny>,
    ) -> PyResult<(bool, String, Option<f64>)> {
        let (position, market) = read_inputs(position_data, market_data)?;
        crate::logging::refresh();
        let (stop, decision) = crate::interpreter_exit::detach_or_stay(py, || {
            let stop = breakeven_plus_stop(&position);
            let decision = comprehensive_exit_signal(&position, &market);
            (stop, decision)
        });
        if let Ok(Some(stop)) = stop {
            log::debug!(
                target: MAIN_LOGGER,
                "Breakeven+ protection: Breakeven+0.5% stop activated -> new stop: {}",
                py_fixed(stop, 2)
            );
        }
        let decision = decision.map_err(PmError)?;
        if let Some(line) = decision.log_message() {
            log::info!(target: MAIN_LOGGER, "{line}");
        }
        Ok(decision.to_original_tuple())
    }

    fn __repr__(&self) -> &'static str {
        "AdvancedExitStrategy()"
    }
}

/// The original's early-exit scorer (`SmartExitOptimizer.should_exit_early`).
///
/// SmartExitOptimizer()
///
/// A `PositionManager` runs this score in Rust when its `smart_exit_optimizer` is an instance of
/// this class; pass your own object (or a subclass) to the manager to change it.
#[pyclass(
    name = "SmartExitOptimizer",
    module = "position_manager_rs",
    frozen,
    subclass,
    dict,
    weakref
)]
pub struct PySmartExitOptimizer;

/// The original's answer when its computation raised.
fn error_answer(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("should_exit", false)?;
    d.set_item("confidence", 0.0)?;
    d.set_item("score", 0.0)?;
    d.set_item("reasons", PyList::empty(py))?;
    d.set_item("reason_text", "error")?;
    Ok(d)
}

#[pymethods]
impl PySmartExitOptimizer {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PySmartExitOptimizer
    }

    /// Scores reasons to leave a position early and answers `{'should_exit': score >= 50,
    /// 'confidence': min(score / 100, 1), 'score', 'reasons', 'reason_text'}` (the original's
    /// rules and weights; `position_pnl` is the leveraged P/L fraction).
    ///
    /// The rules are written for a long. `side` (an extension) mirrors them for a short
    /// (`side='short'` or any side other than 'long'): momentum with its sign flipped and RSI as
    /// `100 - rsi`, which is what the manager does; without it the score is the original's for
    /// either side. Unusable arguments log "Error in exit optimization: ..." and answer the
    /// original's error shape (`reason_text` 'error').
    #[pyo3(signature = (
        position_pnl,
        position_duration_minutes,
        current_momentum,
        current_rsi,
        volatility,
        volume_ratio,
        trend_weakening,
        *,
        side = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn should_exit_early<'py>(
        &self,
        py: Python<'py>,
        position_pnl: &Bound<'py, PyAny>,
        position_duration_minutes: &Bound<'py, PyAny>,
        current_momentum: &Bound<'py, PyAny>,
        current_rsi: &Bound<'py, PyAny>,
        volatility: &Bound<'py, PyAny>,
        volume_ratio: &Bound<'py, PyAny>,
        trend_weakening: &Bound<'py, PyAny>,
        side: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let read = || -> PyResult<(SmartExitInputs, Option<bool>)> {
            let inputs = SmartExitInputs {
                position_pnl: number("position_pnl", position_pnl)?,
                duration_minutes: number("position_duration_minutes", position_duration_minutes)?,
                momentum: number("current_momentum", current_momentum)?,
                rsi: number("current_rsi", current_rsi)?,
                volatility: number("volatility", volatility)?,
                volume_ratio: number("volume_ratio", volume_ratio)?,
                trend_weakening: trend_weakening.is_truthy()?,
            };
            let is_long = match side {
                Some(s) if !s.is_none() => Some(text("side", s)? == "long"),
                _ => None,
            };
            Ok((inputs, is_long))
        };
        let (inputs, is_long) = match read() {
            Ok(v) => v,
            Err(e) => {
                crate::logging::refresh();
                log::error!(target: MAIN_LOGGER, "Error in exit optimization: {}", e.value(py));
                return error_answer(py);
            }
        };
        let s = crate::interpreter_exit::detach_or_stay(py, || match is_long {
            None => should_exit_early(&inputs),
            Some(long) => should_exit_early_for_side(&inputs, long),
        });
        let d = PyDict::new(py);
        d.set_item("should_exit", s.should_exit)?;
        d.set_item("confidence", s.confidence)?;
        d.set_item("score", s.score)?;
        d.set_item("reasons", PyList::new(py, &s.reasons)?)?;
        d.set_item("reason_text", s.reason_text.as_ref())?;
        Ok(d)
    }

    fn __repr__(&self) -> &'static str {
        "SmartExitOptimizer()"
    }
}
