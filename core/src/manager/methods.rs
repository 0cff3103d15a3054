//! The original `Position` methods the update cycle and a close call, and a way for the caller's
//! handles to override them.
//!
//! The original called `position.update_trailing_stop(...)`, `update_take_profit(...)`,
//! `should_close(price)`, `get_pnl(price)` and `get_leveraged_pnl(price, include_fees)` on the
//! bot's objects, so a bot that subclasses `Position` and overrides one of them changes what the
//! cycle does. A handle whose class overrides any of them gives the manager its own
//! [`CustomMethods`] ([`super::HandleFactory::custom`]); every other position runs the built-in
//! math directly on its state.

use std::borrow::Cow;
use std::sync::Arc;

use crate::book::SharedPosition;
use crate::clock::Timestamp;
use crate::error::CoreResult;
use crate::position::TakeProfitInputs;

/// A position's own versions of the original's overridable methods (a Python subclass of
/// `Position`, in the binding). Called with no lock held.
pub trait CustomMethods: Send + Sync {
    /// `get_pnl(current_price, include_fees)`.
    fn get_pnl(&self, current_price: f64, include_fees: bool) -> CoreResult<f64>;
    /// `get_leveraged_pnl(current_price, include_fees)`.
    fn get_leveraged_pnl(&self, current_price: f64, include_fees: bool) -> CoreResult<f64>;
    /// `update_trailing_stop(current_price, trailing_percentage, volatility=, momentum=)`.
    fn update_trailing_stop(
        &self,
        current_price: f64,
        trailing_percentage: f64,
        volatility: f64,
        momentum: f64,
    ) -> CoreResult<()>;
    /// `update_take_profit(current_price, momentum=, trend_strength=, volatility=, rsi=,
    /// support_resistance=)`.
    fn update_take_profit(
        &self,
        current_price: f64,
        inputs: &TakeProfitInputs<'_>,
    ) -> CoreResult<()>;
    /// `should_close(current_price)` → `(close, reason)`.
    fn should_close(&self, current_price: f64) -> CoreResult<(bool, String)>;
}

/// How the manager calls one position's methods: the built-in math on its state, or the
/// handle's own overrides.
pub(crate) enum Methods<'a> {
    /// The built-in math.
    Builtin(&'a SharedPosition),
    /// The handle's class overrides some of them.
    Custom(Arc<dyn CustomMethods>),
}

impl Methods<'_> {
    /// `get_pnl(price)`.
    pub(crate) fn pnl(&self, price: f64, include_fees: bool) -> CoreResult<f64> {
        match self {
            Methods::Builtin(p) => Ok(p.lock().pnl(price, include_fees)),
            Methods::Custom(c) => c.get_pnl(price, include_fees),
        }
    }

    /// `get_leveraged_pnl(price, include_fees)`.
    pub(crate) fn leveraged_pnl(&self, price: f64, include_fees: bool) -> CoreResult<f64> {
        match self {
            Methods::Builtin(p) => Ok(p.lock().leveraged_pnl(price, include_fees)),
            Methods::Custom(c) => c.get_leveraged_pnl(price, include_fees),
        }
    }

    /// `update_trailing_stop(price, trailing, volatility, momentum)`.
    pub(crate) fn update_trailing_stop(
        &self,
        price: f64,
        trailing: f64,
        volatility: f64,
        momentum: f64,
    ) -> CoreResult<()> {
        match self {
            Methods::Builtin(p) => p
                .lock()
                .update_trailing_stop(price, trailing, volatility, momentum),
            Methods::Custom(c) => c.update_trailing_stop(price, trailing, volatility, momentum),
        }
    }

    /// `update_take_profit(price, ...)` at `now` (the built-in math's clock).
    pub(crate) fn update_take_profit(
        &self,
        now: Timestamp,
        price: f64,
        inputs: &TakeProfitInputs<'_>,
    ) -> CoreResult<()> {
        match self {
            Methods::Builtin(p) => p.lock().update_take_profit(now, price, inputs),
            Methods::Custom(c) => c.update_take_profit(price, inputs),
        }
    }

    /// `should_close(price)`.
    pub(crate) fn should_close(&self, price: f64) -> CoreResult<(bool, Cow<'static, str>)> {
        match self {
            Methods::Builtin(p) => {
                let check = p.lock().should_close(price);
                Ok((check.close, Cow::Borrowed(check.reason)))
            }
            Methods::Custom(c) => c
                .should_close(price)
                .map(|(close, r)| (close, Cow::Owned(r))),
        }
    }
}
