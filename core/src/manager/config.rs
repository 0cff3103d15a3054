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
}

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
        }
    }
}

impl ManagerConfig {
    /// Checks the settings; the error names the setting and the value.
    pub fn validate(&self) -> CoreResult<()> {
        let t = self.trailing_stop_percentage;
        if !t.is_finite() || t < 0.0 {
            return Err(CoreError::Value(format!(
                "trailing_stop_percentage must be a finite number >= 0, got {t}"
            )));
        }
        if self.missing_confirmations == 0 {
            return Err(CoreError::Value(
                "missing_confirmations must be at least 1, got 0".to_owned(),
            ));
        }
        if let Some(d) = self
            .ticker_retry_delays
            .iter()
            .find(|d| !d.is_finite() || **d < 0.0)
        {
            return Err(CoreError::Value(format!(
                "ticker_retry_delays must be finite numbers >= 0, got {d}"
            )));
        }
        let g = self.missing_grace_seconds;
        if !g.is_finite() || g < 0.0 {
            return Err(CoreError::Value(format!(
                "missing_grace_seconds must be a finite number >= 0, got {g}"
            )));
        }
        let t = self.tombstone_ttl_seconds;
        if t.is_nan() || t < 0.0 {
            return Err(CoreError::Value(format!(
                "tombstone_ttl_seconds must be a number >= 0, got {t}"
            )));
        }
        let s = self.snapshot_reuse_seconds;
        if !s.is_finite() || s < 0.0 {
            return Err(CoreError::Value(format!(
                "snapshot_reuse_seconds must be a finite number >= 0, got {s}"
            )));
        }
        Ok(())
    }
}
