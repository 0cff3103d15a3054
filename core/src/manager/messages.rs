//! Logging helpers: the three loggers of the original and Python-style text for log lines.
//!
//! Records go through the `log` crate with the Python logger name as the target (the binding
//! forwards them to Python's `logging`). Messages are only built when their level is enabled.

use std::sync::atomic::{AtomicU8, Ordering};

use log::{Level, LevelFilter};

use crate::format::py_repr_float;

/// The names of the original's three loggers (configurable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loggers {
    /// General messages (`TradingBot`).
    pub main: String,
    /// Per-position detail (`TradingBot.Position`).
    pub position: String,
    /// Order blocks (`TradingBot.Order`).
    pub order: String,
}

impl Default for Loggers {
    fn default() -> Self {
        Loggers {
            main: "TradingBot".to_owned(),
            position: "TradingBot.Position".to_owned(),
            order: "TradingBot.Order".to_owned(),
        }
    }
}

/// Which of the three loggers a record goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// `TradingBot`.
    Main,
    /// `TradingBot.Position`.
    Position,
    /// `TradingBot.Order`.
    Order,
}

impl Loggers {
    fn target(&self, channel: Channel) -> &str {
        match channel {
            Channel::Main => &self.main,
            Channel::Position => &self.position,
            Channel::Order => &self.order,
        }
    }

    /// Whether a record at `level` on `channel` would be emitted.
    pub fn enabled(&self, gates: &LevelGates, channel: Channel, level: Level) -> bool {
        gates
            .allows(channel, level)
            .unwrap_or_else(|| log::log_enabled!(target: self.target(channel), level))
    }

    /// Emits the message `message()` builds, if its level is enabled. Never call this while
    /// holding the book lock or a position lock: the record may run Python handlers.
    pub fn emit(
        &self,
        gates: &LevelGates,
        channel: Channel,
        level: Level,
        message: impl FnOnce() -> String,
    ) {
        if self.enabled(gates, channel, level) {
            let text = message();
            log::log!(target: self.target(channel), level, "{text}");
        }
    }
}

/// Which levels each channel emits, as last read from the logging backend.
///
/// The binding sets them from Python's logging configuration at the start of every public call,
/// so a record that would be dropped costs one atomic load, and a configuration made after import
/// (pytest's `caplog`, a notebook) applies from the next call. Until set, the `log` crate decides.
#[derive(Debug)]
pub struct LevelGates {
    gates: [AtomicU8; 3],
}

/// Gate value meaning "not set: ask the `log` crate".
const ASK_LOG: u8 = u8::MAX;

impl Default for LevelGates {
    fn default() -> Self {
        LevelGates {
            gates: [
                AtomicU8::new(ASK_LOG),
                AtomicU8::new(ASK_LOG),
                AtomicU8::new(ASK_LOG),
            ],
        }
    }
}

impl LevelGates {
    fn slot(channel: Channel) -> usize {
        match channel {
            Channel::Main => 0,
            Channel::Position => 1,
            Channel::Order => 2,
        }
    }

    /// Sets the most verbose level `channel` emits.
    pub fn set(&self, channel: Channel, filter: LevelFilter) {
        self.gates[Self::slot(channel)].store(filter as u8, Ordering::Relaxed);
    }

    /// `Some(enabled)` when known, `None` when the `log` crate must decide.
    fn allows(&self, channel: Channel, level: Level) -> Option<bool> {
        let gate = self.gates[Self::slot(channel)].load(Ordering::Relaxed);
        (gate != ASK_LOG).then_some((level as u8) <= gate)
    }
}

/// 80 `=` characters, the original's block separator.
pub const RULE: &str =
    "================================================================================";
/// 80 `-` characters.
pub const THIN_RULE: &str =
    "--------------------------------------------------------------------------------";

/// Python's `repr()` of a string.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a set of strings (`{'A', 'B'}`; `set()` when empty).
pub fn py_set_repr<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "set()".to_owned();
    }
    let parts: Vec<String> = items.iter().map(|s| py_str_repr(s.as_ref())).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Leverage as the original printed it: it was an int, so whole values print without a
/// fractional part (`10x`); fractional leverage (kept since we no longer truncate) prints as
/// Python prints the float.
pub fn leverage_text(leverage: f64) -> String {
    if leverage.is_finite() && leverage.fract() == 0.0 && leverage.abs() < 1e15 {
        format!("{leverage:.0}")
    } else {
        py_repr_float(leverage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(py_str_repr("BTC/USDT:USDT"), "'BTC/USDT:USDT'");
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_set_repr(&["A", "B"]), "{'A', 'B'}");
        assert_eq!(py_set_repr::<&str>(&[]), "set()");
        assert_eq!(leverage_text(10.0), "10");
        assert_eq!(leverage_text(2.5), "2.5");
        assert_eq!(RULE.len(), 80);
        assert_eq!(THIN_RULE.len(), 80);
    }
}
