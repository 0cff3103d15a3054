//! Plain-Rust core of `position-manager-rs`.
//!
//! Nothing here knows about Python: the pyo3 layer (`src/` at the repository root) converts values,
//! takes care of the interpreter and implements [`exchange::Exchange`] on top of the bot's client.
//!
//! Layout (one concern per module):
//! - [`clock`]: timestamps as naive local microseconds and the clock the core reads them from;
//! - [`format`](mod@format): the original's `format_price` / `format_pnl_usd` and Python-style
//!   number text;
//! - [`levels`]: support/resistance levels shared by the position math and the market analysis;
//! - [`position`]: one position's state and its pure math (P/L, trailing stop, take-profit, exits);
//! - [`exchange`]: the `Exchange` trait the manager talks to and the typed answers it gets;
//! - [`key`]: book keys (a symbol, or one leg of it in hedge mode) and sides;
//! - [`snapshot`]: one position-list answer read once into typed entries;
//! - [`reconcile`]: the planner, a pure function from the book's state and a list to actions;
//! - [`book`]: one state per position key (opening, tracked, tombstoned, closed awaiting
//!   confirmation) under one lock;
//! - [`events`]: the bounded history of everything that changed the book;
//! - [`journal_hook`]: what a durable journal of the events and the book implements;
//! - [`manager`]: orchestration (update cycle, close, sync, reconcile);
//! - [`persist`]: the versioned JSON state file, written atomically (`save_state`/`load_state`);
//! - [`symbol_map`]: maps keyed by symbol;
//! - [`fork`]: what a forked child process must not inherit (per-process state kept per fork
//!   generation);
//! - [`error`]: the one error enum of the core.

// These crates' documentation is for the people who maintain them (`cargo doc
// --document-private-items`, checked by `make lint`): linking a private module or item is how it
// points a reader at the code.
#![allow(rustdoc::private_intra_doc_links)]

pub mod book;
pub mod clock;
pub mod error;
pub mod events;
pub mod exchange;
pub mod exits;
pub mod fork;
pub mod format;
pub mod journal_hook;
pub mod key;
pub mod levels;
pub mod manager;
pub mod market;
pub mod persist;
pub mod position;
pub mod reconcile;
pub mod redact;
pub mod snapshot;
pub mod symbol_map;

#[cfg(test)]
pub(crate) mod test_support;
