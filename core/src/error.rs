//! The one error type of the core. The Python layer converts it to exceptions in one place.

use std::fmt;

/// Everything that can go wrong in the core, by the Python exception it corresponds to.
#[derive(Clone, Debug, PartialEq)]
pub enum CoreError {
    /// A value has the wrong type or is missing where the original raises `TypeError`.
    Type(String),
    /// A value is of the right type but impossible (`ValueError`).
    Value(String),
    /// A division by zero the original raises as `ZeroDivisionError`.
    ZeroDivision(String),
    /// A missing mapping key (`KeyError`); carries the key.
    Key(String),
    /// The exchange client failed: the exception's type name and message.
    Exchange {
        /// Python type name of the exception (e.g. `NetworkError`).
        kind: String,
        /// The exception's message (`str(e)`).
        message: String,
    },
    /// A state file that is not a valid state (corrupt, truncated, a future version, an
    /// invalid value), or a state that cannot be saved (`StateFileError`, a `ValueError`).
    State(String),
    /// An operating-system error on a file (`OSError`; Python picks the subclass from `errno`,
    /// e.g. `FileNotFoundError`).
    Io {
        /// The OS error number, when there is one.
        errno: Option<i32>,
        /// What was being done and what went wrong.
        message: String,
        /// The file concerned.
        path: String,
    },
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Type(m)
            | CoreError::Value(m)
            | CoreError::ZeroDivision(m)
            | CoreError::State(m) => f.write_str(m),
            CoreError::Key(k) => write!(f, "'{k}'"),
            CoreError::Exchange { message, .. } => f.write_str(message),
            CoreError::Io { message, path, .. } => write!(f, "{message}: {path}"),
        }
    }
}

impl std::error::Error for CoreError {}

impl CoreError {
    /// The Python type name of the exception this error stands for (`type(e).__name__`).
    pub fn kind_name(&self) -> &str {
        match self {
            CoreError::Type(_) => "TypeError",
            CoreError::Value(_) => "ValueError",
            CoreError::ZeroDivision(_) => "ZeroDivisionError",
            CoreError::Key(_) => "KeyError",
            CoreError::Exchange { kind, .. } => kind,
            CoreError::State(_) => "StateFileError",
            CoreError::Io { .. } => "OSError",
        }
    }
}

/// Result type of the core.
pub type CoreResult<T> = Result<T, CoreError>;
