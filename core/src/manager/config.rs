//! The manager's settings ([`ManagerConfig`]) and their checks.

use super::messages::Loggers;
use crate::error::{CoreError, CoreResult};

/// Manager settings; [`Default`] reproduces the original.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagerConfig {
    /// Base trailing distance (fraction of price), the original's second constructor argument.
    pub trailing_stop_percentage: f64,
    /// Consecutive successful snapshots without a position before it is removed.
    pub missing_confirmations: u32,
    /// Pauses (seconds) after each failed ticker attempt; one more attempt than pauses.
    pub ticker_retry_delays: Vec<f64>,
    /// A close inside an update cycle reuses the cycle's position list when it is at most this
    /// old (seconds) instead of fetching it again; 0 always fetches (the original).
    pub snapshot_reuse_seconds: f64,
    /// Logger names.
    pub loggers: Loggers,
    /// Events kept in the history.
    pub event_capacity: usize,
    /// Removed positions kept for restoration.
    pub tombstone_limit: usize,
    /// And at least this many seconds between the first and the removing snapshot.
    pub missing_grace_seconds: f64,
    /// A tombstone older than this (seconds) is dropped; `f64::INFINITY` keeps them until the
    /// size limit evicts them.
    pub tombstone_ttl_seconds: f64,
    /// One position per symbol (one-way, the original's), or a long and a short leg per symbol
    /// tracked independently (hedge mode: book keys `SYMBOL@long`, `SYMBOL@short`).
    pub position_mode: crate::reconcile::Mode,
    /// How many of the cycle's candle (and un-batched ticker) requests may be in flight at
    /// once, each from its own worker thread; 1 (the original) makes them one after another.
    /// Their answers are applied in the book's order whatever the setting.
    pub max_concurrent_calls: usize,
    /// Price-history points each position keeps (`position.history`, for tables and plots):
    /// its last updates.
    pub history_points: usize,
    /// After a list that showed no live position at all untracked a position, `open_position`
    /// for its key is refused for this many seconds while the lists still show nothing (an
    /// empty answer cannot be told from a client that answers `[]` for a failed read); 0 (the
    /// original) opens at once. A list showing any live position ends every hold.
    pub reopen_hold_seconds: f64,
    /// Lists in a row, requested after an order whose answer was lost, that must show the
    /// order did nothing before it is taken as not executed (its profit target released, an
    /// open's symbol freed); a position the manager's own open filled is removed only after at
    /// least as many lists omitted it, until one has shown it. A venue's position list can lag
    /// its fills: one list that shows the position as it was cannot tell that lag from an order
    /// that did not execute.
    pub outcome_confirmations: u32,
    /// And at least this many seconds between the first of those lists and the deciding one.
    pub outcome_grace_seconds: f64,
}

/// The default `outcome_confirmations`.
pub const DEFAULT_OUTCOME_CONFIRMATIONS: u32 = 2;

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            trailing_stop_percentage: 0.02,
            missing_confirmations: 1,
            ticker_retry_delays: vec![0.5, 1.0],
            snapshot_reuse_seconds: 5.0,
            loggers: Loggers::default(),
            event_capacity: 10_000,
            tombstone_limit: 1_000,
            missing_grace_seconds: 0.0,
            tombstone_ttl_seconds: 86_400.0,
            position_mode: crate::reconcile::Mode::OneWay,
            max_concurrent_calls: 1,
            history_points: crate::position::history::DEFAULT_HISTORY_POINTS,
            reopen_hold_seconds: 0.0,
            outcome_confirmations: DEFAULT_OUTCOME_CONFIRMATIONS,
            outcome_grace_seconds: 0.0,
        }
    }
}

/// The largest `missing_confirmations`.
pub const MAX_CONFIRMATIONS: u32 = 1_000_000;
/// The most pauses `ticker_retry_delays` may hold.
pub const MAX_TICKER_RETRIES: usize = 100;
/// The longest pause between ticker attempts (seconds): an update cycle blocks while it waits.
pub const MAX_TICKER_RETRY_DELAY: f64 = 3_600.0;
/// The longest duration option (seconds, about 31 years): times stay far inside the range of
/// microsecond timestamps.
pub const MAX_SECONDS: f64 = 1e9;
/// The largest `max_concurrent_calls`: beyond a few dozen requests at once a venue's rate
/// limits, not the round trips, bound a cycle.
pub const MAX_CONCURRENT_CALLS: usize = 64;
/// The largest `event_capacity` and `tombstone_limit`.
pub const MAX_COUNT: usize = 1_000_000_000;
/// The largest `history_points`.
pub use crate::position::history::MAX_HISTORY_POINTS;

/// Checks a trailing-stop distance (the option and later assignments): a finite fraction of
/// the price in [0, 1).
pub fn check_trailing_stop_percentage(t: f64) -> CoreResult<()> {
    if t.is_finite() && (0.0..1.0).contains(&t) {
        Ok(())
    } else {
        Err(CoreError::Value(format!(
            "trailing_stop_percentage must be a number >= 0 and < 1, got {}",
            py_float(t)
        )))
    }
}

/// A float as Python prints it in messages (`nan`, `inf`, `0.5`, `1e+20`).
fn py_float(x: f64) -> String {
    crate::format::py_repr_float(x)
}

fn seconds(name: &str, s: f64) -> CoreResult<()> {
    if s.is_finite() && (0.0..=MAX_SECONDS).contains(&s) {
        Ok(())
    } else {
        Err(CoreError::Value(format!(
            "{name} must be a number of seconds from 0 to 1e9, got {}",
            py_float(s)
        )))
    }
}

fn count(name: &str, n: usize) -> CoreResult<()> {
    if n <= MAX_COUNT {
        Ok(())
    } else {
        Err(CoreError::Value(format!(
            "{name} must be an int from 0 to {MAX_COUNT}, got {n}"
        )))
    }
}

impl ManagerConfig {
    /// Checks the settings; the error names the setting and the value. Every value that passes
    /// keeps the manager's arithmetic in range (no overflow, no sleep beyond an hour, no huge
    /// allocation).
    pub fn validate(&self) -> CoreResult<()> {
        check_trailing_stop_percentage(self.trailing_stop_percentage)?;
        let m = self.missing_confirmations;
        if !(1..=MAX_CONFIRMATIONS).contains(&m) {
            return Err(CoreError::Value(format!(
                "missing_confirmations must be an int from 1 to {MAX_CONFIRMATIONS}, got {m}"
            )));
        }
        let o = self.outcome_confirmations;
        if !(1..=MAX_CONFIRMATIONS).contains(&o) {
            return Err(CoreError::Value(format!(
                "outcome_confirmations must be an int from 1 to {MAX_CONFIRMATIONS}, got {o}"
            )));
        }
        let delays = &self.ticker_retry_delays;
        if delays.len() > MAX_TICKER_RETRIES {
            return Err(CoreError::Value(format!(
                "ticker_retry_delays may hold at most {MAX_TICKER_RETRIES} pauses, got {}",
                delays.len()
            )));
        }
        if let Some(d) = delays
            .iter()
            .find(|d| !(d.is_finite() && (0.0..=MAX_TICKER_RETRY_DELAY).contains(*d)))
        {
            return Err(CoreError::Value(format!(
                "ticker_retry_delays must be numbers of seconds from 0 to 3600, got {}",
                py_float(*d)
            )));
        }
        seconds("snapshot_reuse_seconds", self.snapshot_reuse_seconds)?;
        seconds("missing_grace_seconds", self.missing_grace_seconds)?;
        seconds("reopen_hold_seconds", self.reopen_hold_seconds)?;
        seconds("outcome_grace_seconds", self.outcome_grace_seconds)?;
        let t = self.tombstone_ttl_seconds;
        if t != f64::INFINITY {
            seconds("tombstone_ttl_seconds", t)?;
        }
        let n = self.max_concurrent_calls;
        if !(1..=MAX_CONCURRENT_CALLS).contains(&n) {
            return Err(CoreError::Value(format!(
                "max_concurrent_calls must be an int from 1 to {MAX_CONCURRENT_CALLS}, got {n}"
            )));
        }
        count("event_history", self.event_capacity)?;
        count("tombstone_limit", self.tombstone_limit)?;
        let h = self.history_points;
        if !(1..=MAX_HISTORY_POINTS).contains(&h) {
            return Err(CoreError::Value(format!(
                "history_points must be an int from 1 to {MAX_HISTORY_POINTS}, got {h}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&mut ManagerConfig)) -> Result<(), String> {
        let mut c = ManagerConfig::default();
        edit(&mut c);
        c.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_and_the_bounds_pass() {
        assert_eq!(with(|_| {}), Ok(()));
        assert_eq!(
            with(|c| {
                c.trailing_stop_percentage = 0.0;
                c.missing_confirmations = MAX_CONFIRMATIONS;
                c.ticker_retry_delays = vec![MAX_TICKER_RETRY_DELAY; MAX_TICKER_RETRIES];
                c.snapshot_reuse_seconds = MAX_SECONDS;
                c.missing_grace_seconds = 0.0;
                c.tombstone_ttl_seconds = f64::INFINITY;
                c.event_capacity = MAX_COUNT;
                c.tombstone_limit = 0;
                c.max_concurrent_calls = MAX_CONCURRENT_CALLS;
                c.history_points = MAX_HISTORY_POINTS;
                c.reopen_hold_seconds = MAX_SECONDS;
                c.outcome_confirmations = MAX_CONFIRMATIONS;
                c.outcome_grace_seconds = MAX_SECONDS;
            }),
            Ok(())
        );
    }

    #[test]
    fn every_value_out_of_range_is_named_with_its_value() {
        type Edit = fn(&mut ManagerConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |c| c.trailing_stop_percentage = 1.0,
                "trailing_stop_percentage must be a number >= 0 and < 1, got 1.0",
            ),
            (
                |c| c.trailing_stop_percentage = f64::NAN,
                "trailing_stop_percentage must be a number >= 0 and < 1, got nan",
            ),
            (
                |c| c.missing_confirmations = 0,
                "missing_confirmations must be an int from 1 to 1000000, got 0",
            ),
            (
                |c| c.outcome_confirmations = 0,
                "outcome_confirmations must be an int from 1 to 1000000, got 0",
            ),
            (
                |c| c.outcome_grace_seconds = -0.5,
                "outcome_grace_seconds must be a number of seconds from 0 to 1e9, got -0.5",
            ),
            (
                |c| c.ticker_retry_delays = vec![0.5, 1e20],
                "ticker_retry_delays must be numbers of seconds from 0 to 3600, got 1e+20",
            ),
            (
                |c| c.ticker_retry_delays = vec![-0.5],
                "ticker_retry_delays must be numbers of seconds from 0 to 3600, got -0.5",
            ),
            (
                |c| c.ticker_retry_delays = vec![0.0; 101],
                "ticker_retry_delays may hold at most 100 pauses, got 101",
            ),
            (
                |c| c.snapshot_reuse_seconds = f64::INFINITY,
                "snapshot_reuse_seconds must be a number of seconds from 0 to 1e9, got inf",
            ),
            (
                |c| c.missing_grace_seconds = -1.0,
                "missing_grace_seconds must be a number of seconds from 0 to 1e9, got -1.0",
            ),
            (
                |c| c.reopen_hold_seconds = f64::NAN,
                "reopen_hold_seconds must be a number of seconds from 0 to 1e9, got nan",
            ),
            (
                |c| c.tombstone_ttl_seconds = 1e300,
                "tombstone_ttl_seconds must be a number of seconds from 0 to 1e9, got 1e+300",
            ),
            (
                |c| c.max_concurrent_calls = 0,
                "max_concurrent_calls must be an int from 1 to 64, got 0",
            ),
            (
                |c| c.max_concurrent_calls = 65,
                "max_concurrent_calls must be an int from 1 to 64, got 65",
            ),
            (
                |c| c.history_points = 0,
                "history_points must be an int from 1 to 1000000, got 0",
            ),
            (
                |c| c.history_points = MAX_HISTORY_POINTS + 1,
                "history_points must be an int from 1 to 1000000, got 1000001",
            ),
            (
                |c| c.event_capacity = MAX_COUNT + 1,
                "event_history must be an int from 0 to 1000000000, got 1000000001",
            ),
            (
                |c| c.tombstone_limit = usize::MAX,
                "tombstone_limit must be an int from 0 to 1000000000",
            ),
        ];
        for (edit, message) in cases {
            let got = with(edit).unwrap_err();
            assert!(got.starts_with(message), "{got}");
        }
    }
}
