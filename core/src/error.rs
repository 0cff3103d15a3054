//! The one error type of the core. The Python layer converts it to exceptions in one place.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

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
    /// The client could not even make the call (it has no such method): nothing reached the
    /// exchange, so the outcome is known. The exception's type name and message.
    Unsent {
        /// Python type name of the exception (e.g. `AttributeError`).
        kind: String,
        /// The exception's message.
        message: String,
    },
    /// The caller's code raised something that must end the call at once (in the binding: a
    /// `KeyboardInterrupt`, `SystemExit` or any other `BaseException` that is not an
    /// `Exception`). Never caught, logged or turned into an answer by the core: every operation
    /// leaves the book consistent and passes it up. The token is the caller's own exception.
    Interrupted(Interrupt),
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

/// An interruption as the caller raised it (opaque to the core; see [`CoreError::Interrupted`]).
#[derive(Clone)]
pub struct Interrupt {
    token: Arc<dyn Any + Send + Sync>,
    /// The exception's type name, for messages.
    pub kind: String,
}

impl Interrupt {
    /// Wraps the caller's own exception object.
    pub fn new(token: Arc<dyn Any + Send + Sync>, kind: impl Into<String>) -> Self {
        Interrupt {
            token,
            kind: kind.into(),
        }
    }

    /// The caller's exception object.
    pub fn token(&self) -> &(dyn Any + Send + Sync) {
        self.token.as_ref()
    }
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Interrupt({})", self.kind)
    }
}

impl PartialEq for Interrupt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.token, &other.token)
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Type(m)
            | CoreError::Value(m)
            | CoreError::ZeroDivision(m)
            | CoreError::State(m) => f.write_str(m),
            CoreError::Key(k) => write!(f, "'{k}'"),
            CoreError::Exchange { message, .. } | CoreError::Unsent { message, .. } => {
                f.write_str(message)
            }
            CoreError::Interrupted(i) => f.write_str(&i.kind),
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
            CoreError::Exchange { kind, .. } | CoreError::Unsent { kind, .. } => kind,
            CoreError::State(_) => "StateFileError",
            CoreError::Io { .. } => "OSError",
            CoreError::Interrupted(i) => &i.kind,
        }
    }

    /// Whether the call never reached the exchange (a definitive failure: nothing to verify).
    pub fn is_unsent(&self) -> bool {
        matches!(self, CoreError::Unsent { .. })
    }

    /// Whether this is an interruption that must end the call (never caught by the core).
    pub fn is_interrupt(&self) -> bool {
        matches!(self, CoreError::Interrupted(_))
    }
}

/// Result type of the core.
pub type CoreResult<T> = Result<T, CoreError>;
