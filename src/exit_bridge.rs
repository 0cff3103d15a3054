//! The manager's `advanced_exit_strategy` and `smart_exit_optimizer`: which objects they are, and
//! the bridge that lets the core's update cycle call a user's own objects.
//!
//! An instance of the built-in class (exactly that class) makes the core use its Rust rules
//! directly; any other object is called through Python with the original's call shapes:
//! `get_comprehensive_exit_signal(position_data, market_data)` and
//! `should_exit_early(position_pnl=..., position_duration_minutes=..., current_momentum=...,
//! current_rsi=..., volatility=..., volume_ratio=..., trend_weakening=...)`. The call attaches to
//! the interpreter with no Rust lock held; its answer is read defensively, and an exception or an
//! unusable answer becomes an error text that the core reports as a warning before holding.

use std::sync::Arc;

use parking_lot::RwLock;
use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use position_manager_core::error::CoreError;
use pyo3::types::{PyBool, PyDict, PyString};

use position_manager_core::exits::SmartExitInputs;
use position_manager_core::manager::exit_rules::{
    AdvancedExitRequest, AdvancedExitRule, OriginalExitSignal, SmartExitAnswer, SmartExitRule,
};

use crate::convert::{
    describe_checked, get_key, int_if_whole, number, passes_through, to_datetime, unless_passing,
};
use crate::exits::{PyAdvancedExitStrategy, PySmartExitOptimizer};
use crate::manager::CoreManager;

/// `"TypeName: message"` of a Python exception. An interruption raised by its `str()` leaves as
/// it came (the only error this returns); any other failure leaves the message empty.
fn exception_text(py: Python<'_>, e: &PyErr) -> PyResult<String> {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_owned());
    let message = match e.value(py).str() {
        Ok(s) => s.to_string(),
        Err(failed) if crate::logging::is_interrupt(py, &failed) => return Err(failed),
        Err(_) => String::new(),
    };
    Ok(format!("{kind}: {message}"))
}

/// Why an exit object's answer could not be used.
enum Unread {
    /// It breaks the contract (docs/exit-objects.md): the warning's text.
    Bad(String),
    /// Reading it raised an exception that leaves as it came ([`passes_through`]): an
    /// interrupt, an exit (DESIGN rule 8) or a `MemoryError`.
    Passing(PyErr),
}

/// For `?` on what [`unless_passing`], [`describe_checked`] and [`exception_text`] return: the
/// only errors they give are ones that pass through.
impl From<PyErr> for Unread {
    fn from(e: PyErr) -> Self {
        Unread::Passing(e)
    }
}

impl Unread {
    /// The core's error: an interruption to raise as it came, or the text of the warning the
    /// core logs before holding.
    fn into_core(self, py: Python<'_>, method: &str) -> CoreError {
        match self {
            Unread::Bad(text) => CoreError::Value(text),
            Unread::Passing(e) => {
                raised_while(py, &e, &format!("{method}'s answer could not be read:"))
            }
        }
    }
}

/// The core's error for an exception `e` met `doing` something: an interruption as it came
/// ([`crate::logging::interrupted`]), anything else the warning's text `"{doing} TypeName:
/// message"`.
fn raised_while(py: Python<'_>, e: &PyErr, doing: &str) -> CoreError {
    if crate::logging::is_interrupt(py, e) {
        return crate::logging::interrupted(py, e);
    }
    match exception_text(py, e) {
        Ok(text) => CoreError::Value(format!("{doing} {text}")),
        Err(interruption) => crate::logging::interrupted(py, &interruption),
    }
}

/// A warning's text, unless building it met an exception that passes through.
fn bad(text: PyResult<String>) -> Unread {
    match text {
        Ok(text) => Unread::Bad(text),
        Err(e) => Unread::Passing(e),
    }
}

/// What an exception met while reading an answer makes of it: one that passes through leaves as
/// it came; any other makes the answer unusable, in the words of `text` (which gets the
/// exception's `"TypeName: message"`).
fn unread(py: Python<'_>, e: PyErr, text: impl FnOnce(String) -> PyResult<String>) -> Unread {
    if passes_through(py, &e) {
        return Unread::Passing(e);
    }
    bad(exception_text(py, &e).and_then(text))
}

/// A user's advanced exit strategy object.
struct PyAdvancedRule {
    object: Py<PyAny>,
}

/// The original's `position_data` dict (plus `partial_exits_taken`, the bitmask of profit
/// targets already taken, which the original kept unused on the position).
fn position_data<'py>(
    py: Python<'py>,
    r: &AdvancedExitRequest<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    let p = r.position;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "side"), r.side)?;
    d.set_item(intern!(py, "entry_price"), p.entry_price)?;
    d.set_item(intern!(py, "current_price"), p.current_price)?;
    d.set_item(intern!(py, "current_pnl_pct"), p.current_pnl_pct)?;
    d.set_item(intern!(py, "peak_pnl_pct"), p.peak_pnl_pct)?;
    d.set_item(intern!(py, "leverage"), int_if_whole(py, p.leverage)?)?;
    d.set_item(intern!(py, "entry_time"), to_datetime(r.entry_time)?)?;
    d.set_item(intern!(py, "stop_loss"), p.stop_loss)?;
    d.set_item(intern!(py, "take_profit"), p.take_profit)?;
    d.set_item(intern!(py, "partial_exits_taken"), p.targets_taken)?;
    Ok(d)
}

/// The original's `market_data` dict.
fn market_data<'py>(py: Python<'py>, r: &AdvancedExitRequest<'_>) -> PyResult<Bound<'py, PyDict>> {
    let m = r.market;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "volatility"), m.volatility)?;
    d.set_item(intern!(py, "momentum"), m.momentum)?;
    d.set_item(intern!(py, "rsi"), m.rsi)?;
    d.set_item(intern!(py, "trend_strength"), m.trend_strength)?;
    Ok(d)
}

/// The method name in the texts of a bad answer of an advanced exit strategy.
const ADVANCED_METHOD: &str = "get_comprehensive_exit_signal()";

/// The method name in the texts of a bad answer of a smart exit optimizer.
const SMART_METHOD: &str = "should_exit_early()";

/// The keys the manager reads from a `should_exit_early` answer.
const SMART_KEYS: &str = "should_exit, confidence, score and reason_text";

/// How many items of an advanced strategy's answer are read at most: one more than expected, so
/// that a longer answer (an endless iterator too) is told from a good one without reading it
/// all.
const SIGNAL_ITEMS_READ: usize = 4;

/// Reads `(should_exit, reason, action)`: a sequence of three items (not a string); `action`
/// None or a finite number > 0. An unusable answer is described: which method, what came back,
/// what was expected. An interruption raised while it is read leaves as it came.
fn read_signal(answer: &Bound<'_, PyAny>) -> Result<OriginalExitSignal, Unread> {
    let py = answer.py();
    let not_a_tuple = || {
        bad(describe_checked(answer).map(|d| {
            format!(
                "{ADVANCED_METHOD} returned {d}, expected a tuple (should_exit, reason, action)"
            )
        }))
    };
    if answer.is_instance_of::<PyString>() || answer.is_instance_of::<PyDict>() || answer.is_none()
    {
        return Err(not_a_tuple());
    }
    let items_read = match answer.try_iter() {
        Ok(items) => items,
        Err(e) if passes_through(py, &e) => return Err(Unread::Passing(e)),
        Err(_) => return Err(not_a_tuple()),
    };
    let mut items = Vec::with_capacity(SIGNAL_ITEMS_READ);
    for item in items_read.take(SIGNAL_ITEMS_READ) {
        items.push(item.map_err(|e| {
            unread(py, e, |t| {
                describe_checked(answer).map(|d| {
                    format!("{ADVANCED_METHOD} returned {d}, whose items cannot be read: {t}")
                })
            })
        })?);
    }
    let count = items.len();
    let [exit, reason, action] = <[Bound<'_, PyAny>; 3]>::try_from(items).map_err(|_| {
        let count = if count < SIGNAL_ITEMS_READ {
            format!("{count} item(s)")
        } else {
            "more than 3 items".to_owned()
        };
        bad(describe_checked(answer).map(|d| {
            format!(
                "{ADVANCED_METHOD} returned {count}, {d}, expected 3: (should_exit, reason, action)"
            )
        }))
    })?;
    let should_exit = exit.is_truthy().map_err(|e| {
        unread(py, e, |t| {
            describe_checked(&exit).map(|d| {
                format!(
                    "{ADVANCED_METHOD} returned should_exit {d}, whose truth value cannot be \
                     read: {t}"
                )
            })
        })
    })?;
    let reason = reason.str().map(|s| s.to_string()).map_err(|e| {
        unread(py, e, |t| {
            Ok(format!(
                "{ADVANCED_METHOD} returned a reason that str() cannot print: {t}"
            ))
        })
    })?;
    let bad_action = || {
        bad(describe_checked(&action).map(|d| {
            format!(
                "{ADVANCED_METHOD} returned action {d}, expected None (hold) or a number > 0 (a \
                 fraction to sell, or a stop price)"
            )
        }))
    };
    let action = if action.is_none() {
        None
    } else if action.is_instance_of::<PyBool>() {
        return Err(bad_action());
    } else {
        match number("action", &action) {
            Ok(v) if v.is_finite() && v > 0.0 => Some(v),
            // A full exit ignores its action, as the original did.
            Ok(_) if should_exit => None,
            Err(e) if passes_through(py, &e) => return Err(Unread::Passing(e)),
            _ => return Err(bad_action()),
        }
    };
    Ok(OriginalExitSignal {
        should_exit,
        reason,
        action,
    })
}

impl AdvancedExitRule for PyAdvancedRule {
    fn comprehensive_exit_signal(
        &self,
        request: &AdvancedExitRequest<'_>,
    ) -> Result<OriginalExitSignal, CoreError> {
        crate::logging::attach_clean(|py| {
            crate::logging::interruption(py)?;
            let call = || -> PyResult<Bound<'_, PyAny>> {
                let args = (position_data(py, request)?, market_data(py, request)?);
                self.object
                    .bind(py)
                    .call_method1(intern!(py, "get_comprehensive_exit_signal"), args)
            };
            match call() {
                Ok(answer) => read_signal(&answer).map_err(|u| u.into_core(py, ADVANCED_METHOD)),
                Err(e) => Err(raised_while(py, &e, &format!("{ADVANCED_METHOD} raised"))),
            }
        })
    }
}

/// A user's smart exit optimizer object.
struct PySmartRule {
    object: Py<PyAny>,
}

/// Reads the answer dict: `should_exit` (truthiness), `confidence`, `score` and `reason_text`
/// (a dict, or a mapping with `get`). An unusable answer is described: which method, which
/// key, what came back, what was expected. An interruption raised while it is read leaves as
/// it came.
fn read_smart_answer(answer: &Bound<'_, PyAny>) -> Result<SmartExitAnswer, Unread> {
    let py = answer.py();
    let is_mapping = answer.is_instance_of::<PyDict>()
        || unless_passing(py, answer.hasattr(intern!(py, "get")))?.unwrap_or(false);
    if !is_mapping || answer.is_instance_of::<PyString>() {
        return Err(bad(describe_checked(answer).map(|d| {
            format!("{SMART_METHOD} returned {d}, expected a dict with {SMART_KEYS}")
        })));
    }
    let key = |k: &str| -> Result<Bound<'_, PyAny>, Unread> {
        match get_key(answer, &PyString::new(py, k)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => {
                let keys = match answer.cast::<PyDict>() {
                    Ok(d) => unless_passing(py, d.keys().repr())?
                        .map(|r| format!(" (its keys: {r})"))
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                Err(Unread::Bad(format!(
                    "{SMART_METHOD} returned a dict without '{k}'{keys}, expected {SMART_KEYS}"
                )))
            }
            Err(e) => Err(unread(py, e, |t| {
                Ok(format!("{SMART_METHOD} answer's get('{k}') raised {t}"))
            })),
        }
    };
    let num = |k: &str, v: &Bound<'_, PyAny>| -> Result<f64, Unread> {
        match number(k, v) {
            Ok(x) if !v.is_instance_of::<PyBool>() => Ok(x),
            Err(e) if passes_through(py, &e) => Err(Unread::Passing(e)),
            _ => Err(bad(describe_checked(v).map(|d| {
                format!("{SMART_METHOD} returned {k} {d}, expected a number")
            }))),
        }
    };
    let printed = |k: &str, v: &Bound<'_, PyAny>| -> Result<String, Unread> {
        v.str().map(|s| s.to_string()).map_err(|e| {
            unread(py, e, |t| {
                Ok(format!(
                    "{SMART_METHOD} returned a {k} that str() cannot print: {t}"
                ))
            })
        })
    };
    let exit_value = key("should_exit")?;
    let should_exit = exit_value.is_truthy().map_err(|e| {
        unread(py, e, |t| {
            describe_checked(&exit_value).map(|d| {
                format!(
                    "{SMART_METHOD} returned should_exit {d}, whose truth value cannot be read: \
                     {t}"
                )
            })
        })
    })?;
    let confidence_value = key("confidence")?;
    let score_value = key("score")?;
    let reason_value = key("reason_text")?;
    Ok(SmartExitAnswer {
        should_exit,
        confidence: num("confidence", &confidence_value)?,
        score: num("score", &score_value)?,
        score_text: Some(printed("score", &score_value)?),
        reason_text: printed("reason_text", &reason_value)?.into(),
    })
}

impl SmartExitRule for PySmartRule {
    fn should_exit_early(
        &self,
        _symbol: &str,
        inputs: &SmartExitInputs,
    ) -> Result<SmartExitAnswer, CoreError> {
        crate::logging::attach_clean(|py| {
            crate::logging::interruption(py)?;
            let call = || -> PyResult<Bound<'_, PyAny>> {
                let kwargs = PyDict::new(py);
                kwargs.set_item(intern!(py, "position_pnl"), inputs.position_pnl)?;
                kwargs.set_item(
                    intern!(py, "position_duration_minutes"),
                    inputs.duration_minutes,
                )?;
                kwargs.set_item(intern!(py, "current_momentum"), inputs.momentum)?;
                kwargs.set_item(intern!(py, "current_rsi"), inputs.rsi)?;
                kwargs.set_item(intern!(py, "volatility"), inputs.volatility)?;
                kwargs.set_item(intern!(py, "volume_ratio"), inputs.volume_ratio)?;
                kwargs.set_item(intern!(py, "trend_weakening"), inputs.trend_weakening)?;
                self.object.bind(py).call_method(
                    intern!(py, "should_exit_early"),
                    (),
                    Some(&kwargs),
                )
            };
            match call() {
                Ok(answer) => read_smart_answer(&answer).map_err(|u| u.into_core(py, SMART_METHOD)),
                Err(e) => Err(raised_while(py, &e, &format!("{SMART_METHOD} raised"))),
            }
        })
    }
}

/// The manager's two exit-rule objects (what its attributes return), each with the rule the
/// core runs for it when it is the user's own (which holds the object too).
pub struct ExitObjects {
    advanced: RwLock<(Py<PyAny>, Option<Arc<PyAdvancedRule>>)>,
    smart: RwLock<(Py<PyAny>, Option<Arc<PySmartRule>>)>,
}

/// `value`, or a new built-in instance when it is None; a non-None value must have `method`.
fn object_or_builtin<T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>>(
    py: Python<'_>,
    name: &str,
    method: &str,
    value: Option<&Bound<'_, PyAny>>,
    builtin: impl FnOnce() -> T,
) -> PyResult<Py<PyAny>> {
    match value {
        Some(v) if !v.is_none() => {
            // An interruption while the method is looked up (a `__getattr__` of its own)
            // leaves as it came; only a missing or unreadable method is the TypeError.
            let callable = unless_passing(py, v.getattr(method))?.is_some_and(|m| m.is_callable());
            if !callable {
                return Err(PyTypeError::new_err(format!(
                    "{name} must have a {method}() method, got {}",
                    describe_checked(v)?
                )));
            }
            Ok(v.clone().unbind())
        }
        _ => Ok(Py::new(py, builtin())?.into_any()),
    }
}

impl ExitObjects {
    /// The objects for a new manager (`None`: the built-in classes), installed into `core`.
    pub fn new(
        py: Python<'_>,
        core: &CoreManager,
        advanced: Option<&Bound<'_, PyAny>>,
        smart: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let objects = ExitObjects {
            advanced: RwLock::new((py.None(), None)),
            smart: RwLock::new((py.None(), None)),
        };
        objects.set_advanced(py, core, advanced)?;
        objects.set_smart(py, core, smart)?;
        Ok(objects)
    }

    /// The advanced exit strategy object.
    pub fn advanced(&self, py: Python<'_>) -> Py<PyAny> {
        self.advanced.read().0.clone_ref(py)
    }

    /// The smart exit optimizer object.
    pub fn smart(&self, py: Python<'_>) -> Py<PyAny> {
        self.smart.read().0.clone_ref(py)
    }

    /// Replaces the advanced exit strategy (None: a new built-in one) and tells `core` which
    /// rule to run.
    pub fn set_advanced(
        &self,
        py: Python<'_>,
        core: &CoreManager,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let object = object_or_builtin(
            py,
            "advanced_exit_strategy",
            "get_comprehensive_exit_signal",
            value,
            || PyAdvancedExitStrategy,
        )?;
        let builtin = object
            .bind(py)
            .get_type()
            .is(py.get_type::<PyAdvancedExitStrategy>());
        let rule = (!builtin).then(|| {
            Arc::new(PyAdvancedRule {
                object: object.clone_ref(py),
            })
        });
        let old_rule = core
            .exit_rules()
            .set_advanced(rule.clone().map(|r| r as Arc<dyn AdvancedExitRule>));
        let old = std::mem::replace(&mut *self.advanced.write(), (object, rule));
        // Dropped here, with no lock held (they may own Python objects).
        drop((old_rule, old));
        Ok(())
    }

    /// Replaces the smart exit optimizer (None: a new built-in one) and tells `core` which
    /// rule to run.
    pub fn set_smart(
        &self,
        py: Python<'_>,
        core: &CoreManager,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let object = object_or_builtin(
            py,
            "smart_exit_optimizer",
            "should_exit_early",
            value,
            || PySmartExitOptimizer,
        )?;
        let builtin = object
            .bind(py)
            .get_type()
            .is(py.get_type::<PySmartExitOptimizer>());
        let rule = (!builtin).then(|| {
            Arc::new(PySmartRule {
                object: object.clone_ref(py),
            })
        });
        let old_rule = core
            .exit_rules()
            .set_smart(rule.clone().map(|r| r as Arc<dyn SmartExitRule>));
        let old = std::mem::replace(&mut *self.smart.write(), (object, rule));
        drop((old_rule, old));
        Ok(())
    }

    /// Reports the objects to the garbage collector: each attribute's object and the rule's
    /// reference to it. The locks are only written with the interpreter held and no Python
    /// running, so a collection finds them free (or, when it runs on the thread that holds one,
    /// held in every pass: reported in none).
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(advanced) = self.advanced.try_read() {
            visit.call(&advanced.0)?;
            visit.call(advanced.1.as_ref().map(|r| &r.object))?;
        }
        if let Some(smart) = self.smart.try_read() {
            visit.call(&smart.0)?;
            visit.call(smart.1.as_ref().map(|r| &r.object))?;
        }
        Ok(())
    }
}
