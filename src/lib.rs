//! `position_manager_rs._core`: the thin pyo3 layer over `position-manager-core`.
//!
//! One file per Python-visible concern: [`position`] (`Position`), [`manager`]
//! (`PositionManager`), [`view`] (`manager.positions`), [`update_iter`] (`update_positions()`),
//! [`client`] (the core's `Exchange` over the bot's client), [`market`] (`VolumeProfile`),
//! [`exits`] (`AdvancedExitStrategy`, `SmartExitOptimizer`), [`exit_bridge`] (the manager's exit
//! rule objects, built-in or the user's own), [`persist`] (`save_state`/`load_state` and the
//! bot's attributes as JSON), [`options`] (the constructor's options and `manager.config`),
//! [`convert`] (values and argument checks), [`errors`] (the one conversion of core errors),
//! [`logging`] (records to Python's `logging`), [`testing`] (clock control for tests), [`clock`]
//! (`ManualClock`, a manager's own clock), [`interpreter_exit`] (other threads' manager calls
//! when the interpreter exits), [`fork`] (a forked child and the parent's managers), [`gc`] (what
//! the garbage collector sees of the Python objects held from Rust).

// These crates' documentation is for the people who maintain them (`cargo doc
// --document-private-items`, checked by `make lint`): linking a private module or item is how it
// points a reader at the code.
#![allow(rustdoc::private_intra_doc_links)]
// No panic reachable from Python (DESIGN rule 9): the binding neither unwraps nor indexes
// unchecked; every value from Python is converted with an error that names it.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

mod book_dict;
mod client;
mod clock;
mod convert;
mod errors;
mod event_dicts;
mod exit_bridge;
mod exits;
mod fork;
mod gc;
mod interpreter_exit;
mod journal;
mod logging;
mod manager;
mod market;
mod options;
mod persist;
mod position;
mod presentation;
mod testing;
mod update_iter;
mod view;

use pyo3::impl_::pyclass::doc::PyClassNewTextSignature;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyClass;

/// `_redact_secrets(text)`: `text` with every credential's value (an API key, a signature, a
/// secret, a passphrase, a token, ... in `name=value`, `"name": "value"` or `name: value`
/// form) replaced by `***`. The exchange's error texts go through it before they are logged,
/// kept in events or raised; `CcxtClient` uses it for its own log lines.
#[pyfunction]
#[pyo3(name = "_redact_secrets")]
fn redact_secrets(text: &str) -> String {
    position_manager_core::redact::redact_secrets(text).into_owned()
}

/// `format_price(price)`: the original's price text: 2 decimals from 0.1 up, 4 from 0.01, 5 from
/// 0.001, else 6 (decimals chosen before rounding); "0.00" for zero.
#[pyfunction]
fn format_price(price: &Bound<'_, PyAny>) -> PyResult<String> {
    let x = convert::number("price", price)?;
    Ok(position_manager_core::format::format_price(x))
}

/// `format_pnl_usd(pnl_usd)`: '$+1.23' / '$-0.00450' (sign, then `format_price` of the size).
#[pyfunction]
fn format_pnl_usd(pnl_usd: &Bound<'_, PyAny>) -> PyResult<String> {
    let x = convert::number("pnl_usd", pnl_usd)?;
    Ok(position_manager_core::format::format_pnl_usd(x))
}

/// Adds class `T`, whose constructor has a text signature, and records that signature in
/// `sigs` (`_core._TEXT_SIGNATURES`, name to text such as `"(start=None)"`).
///
/// The wheel targets the stable ABI of Python 3.9, and CPython 3.9 drops the text signature from
/// the docstring of a class made from a type spec: there `inspect.signature(Position)` raised
/// `ValueError` and `help(Position)` showed no constructor line. Python 3.10 and later keep it
/// (`Position.__text_signature__`); on 3.9 the package builds each class's `__signature__` from
/// this record (`position_manager_rs._signatures`). pyo3 has the text as
/// `PyClassNewTextSignature` (of its `impl_` module, which it exempts from semver: a pyo3
/// upgrade that moves it fails to compile, it cannot go wrong silently).
fn add_signed_class<T: PyClass + PyClassNewTextSignature>(
    m: &Bound<'_, PyModule>,
    sigs: &Bound<'_, PyDict>,
) -> PyResult<()> {
    m.add_class::<T>()?;
    sigs.set_item(
        <T as PyClass>::NAME,
        <T as PyClassNewTextSignature>::TEXT_SIGNATURE,
    )
}

/// The native module.
#[pymodule(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install(m.py())?;
    interpreter_exit::install(m)?;
    fork::install(m)?;
    gc::install(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let sigs = PyDict::new(m.py());
    add_signed_class::<position::PyPosition>(m, &sigs)?;
    add_signed_class::<manager::PyPositionManager>(m, &sigs)?;
    m.add_class::<view::PositionsView>()?;
    m.add_class::<update_iter::UpdateIter>()?;
    add_signed_class::<market::PyVolumeProfile>(m, &sigs)?;
    m.add_class::<options::PyManagerConfig>()?;
    m.add(
        "StateFileError",
        m.py().get_type::<errors::StateFileError>(),
    )?;
    m.add("_StepAbandoned", m.py().get_type::<errors::StepAbandoned>())?;
    add_signed_class::<exits::PyAdvancedExitStrategy>(m, &sigs)?;
    add_signed_class::<exits::PySmartExitOptimizer>(m, &sigs)?;
    add_signed_class::<clock::PyManualClock>(m, &sigs)?;
    add_signed_class::<journal::PyJournalReader>(m, &sigs)?;
    m.add("_TEXT_SIGNATURES", sigs)?;
    m.add("JournalError", m.py().get_type::<journal::JournalError>())?;
    m.add_function(wrap_pyfunction!(format_price, m)?)?;
    m.add_function(wrap_pyfunction!(format_pnl_usd, m)?)?;
    m.add_function(wrap_pyfunction!(logging::refresh_logging, m)?)?;
    m.add_function(wrap_pyfunction!(redact_secrets, m)?)?;
    testing::register(m)?;
    Ok(())
}
