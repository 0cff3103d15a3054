//! Which exit rules the update cycle asks: the built-in ones (the Rust functions of
//! [`crate::exits`], the fast path) or rules the caller supplies (the binding's bridge to the
//! user's own Python `advanced_exit_strategy` / `smart_exit_optimizer` objects).
//!
//! A supplied rule is called with the original's inputs, without any lock held; its answer is
//! read defensively. An error (an exception, an answer of the wrong shape) is described by the
//! rule and makes the manager warn and hold: it never ends the cycle or loses the position.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::clock::Timestamp;
use crate::error::CoreError;
use crate::exits::{MarketData, PositionData, SmartExitInputs};

/// The inputs of `get_comprehensive_exit_signal(position_data, market_data)` for one position.
#[derive(Clone, Copy, Debug)]
pub struct AdvancedExitRequest<'a> {
    /// Book key.
    pub symbol: &'a str,
    /// The position's side as stored (`position_data['side']`).
    pub side: &'a str,
    /// When the position was opened (`position_data['entry_time']`).
    pub entry_time: Timestamp,
    /// The position side of the inputs (prices, P/L, leverage, stop, target).
    pub position: &'a PositionData,
    /// The market side of the inputs.
    pub market: &'a MarketData,
}

/// The original's answer `(should_exit, reason, action)` of an advanced exit strategy.
#[derive(Clone, Debug, PartialEq)]
pub struct OriginalExitSignal {
    /// Truthiness of the first value.
    pub should_exit: bool,
    /// The reason text (`str()` of the second value).
    pub reason: String,
    /// The third value: `None`, or a number (a fraction to sell or a stop price).
    pub action: Option<f64>,
}

/// A caller-supplied `AdvancedExitStrategy`.
pub trait AdvancedExitRule: Send + Sync {
    /// `get_comprehensive_exit_signal(position_data, market_data)`; `Err` describes an
    /// exception or an unusable answer ([`CoreError::Interrupted`] for an interruption, which
    /// ends the cycle).
    fn comprehensive_exit_signal(
        &self,
        request: &AdvancedExitRequest<'_>,
    ) -> Result<OriginalExitSignal, CoreError>;
}

/// What the manager reads from a `should_exit_early` answer.
#[derive(Clone, Debug, PartialEq)]
pub struct SmartExitAnswer {
    /// `sig['should_exit']` (truthiness).
    pub should_exit: bool,
    /// `sig['confidence']`.
    pub confidence: f64,
    /// `sig['score']`.
    pub score: f64,
    /// `str(sig['score'])`, as the DEBUG line prints it; `None`: Python's `str()` of `score`
    /// as a float (the built-in rules' score, printed only when the line is logged).
    pub score_text: Option<String>,
    /// `sig['reason_text']`.
    pub reason_text: std::borrow::Cow<'static, str>,
}

/// A caller-supplied `SmartExitOptimizer`.
pub trait SmartExitRule: Send + Sync {
    /// `should_exit_early(position_pnl=..., ..., trend_weakening=...)` for `symbol`; `Err`
    /// describes an exception or an unusable answer.
    fn should_exit_early(
        &self,
        symbol: &str,
        inputs: &SmartExitInputs,
    ) -> Result<SmartExitAnswer, CoreError>;
}

/// The rules in use; `None` means the built-in rule.
#[derive(Default)]
pub struct ExitRules {
    advanced: RwLock<Option<Arc<dyn AdvancedExitRule>>>,
    smart: RwLock<Option<Arc<dyn SmartExitRule>>>,
}

impl std::fmt::Debug for ExitRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitRules")
            .field("advanced_custom", &self.advanced.read().is_some())
            .field("smart_custom", &self.smart.read().is_some())
            .finish()
    }
}

impl ExitRules {
    /// The supplied advanced rule, if any.
    pub fn advanced(&self) -> Option<Arc<dyn AdvancedExitRule>> {
        self.advanced.read().clone()
    }

    /// The supplied smart rule, if any.
    pub fn smart(&self) -> Option<Arc<dyn SmartExitRule>> {
        self.smart.read().clone()
    }

    /// Replaces the advanced rule (`None`: the built-in one) and returns the previous one, so
    /// the caller drops it after the lock is released (it may own a Python object).
    pub fn set_advanced(
        &self,
        rule: Option<Arc<dyn AdvancedExitRule>>,
    ) -> Option<Arc<dyn AdvancedExitRule>> {
        std::mem::replace(&mut *self.advanced.write(), rule)
    }

    /// Replaces the smart rule (`None`: the built-in one) and returns the previous one.
    pub fn set_smart(
        &self,
        rule: Option<Arc<dyn SmartExitRule>>,
    ) -> Option<Arc<dyn SmartExitRule>> {
        std::mem::replace(&mut *self.smart.write(), rule)
    }
}
