//! Events as Python dicts: `manager.events`, `manager.events_since(seq)`, `on_event` callbacks
//! and the journal reader.
//!
//! The history is copied out of the core as shared events (a few microseconds under its lock),
//! then converted with no lock held. A full read at the 10 000-event default converts every
//! event, which takes tens of milliseconds: it lets other Python threads run every
//! [`HOLD`] (and takes Ctrl+C there), so a bot's other threads never wait on it for long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use position_manager_core::events::Event;

use crate::convert::to_datetime;
use crate::logging::detached;
use crate::position::state_dict;

/// How long a conversion keeps the interpreter before it lets other threads run.
pub const HOLD: Duration = Duration::from_millis(2);

/// How long a conversion leaves the interpreter free each time it lets other threads run.
const YIELD_PAUSE: Duration = Duration::from_micros(50);

/// Events as a list of dicts (oldest first), converted a few milliseconds at a time.
pub fn events_list<'py>(py: Python<'py>, events: &[Arc<Event>]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    let mut held_since = Instant::now();
    for (i, e) in events.iter().enumerate() {
        list.append(event_dict(py, e)?)?;
        if i % 16 == 15 && held_since.elapsed() >= HOLD {
            // Other threads waiting for the interpreter take it here: the pause lets one of
            // them wake and take it (released and retaken at once, CPython would hand it
            // straight back to this thread).
            detached(py, || std::thread::sleep(YIELD_PAUSE));
            py.check_signals()?;
            held_since = Instant::now();
        }
    }
    Ok(list)
}

/// One event as a dict.
pub fn event_dict<'py>(py: Python<'py>, e: &Event) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "seq"), e.seq)?;
    d.set_item(intern!(py, "time"), to_datetime(e.time)?)?;
    d.set_item(intern!(py, "symbol"), &e.symbol)?;
    d.set_item(intern!(py, "kind"), e.kind.name())?;
    d.set_item(intern!(py, "reason"), &e.reason)?;
    d.set_item(intern!(py, "pnl"), e.pnl)?;
    d.set_item(intern!(py, "position"), state_dict(py, &e.position)?)?;
    let evidence = match &e.evidence {
        None => None,
        Some(ev) => {
            let x = PyDict::new(py);
            x.set_item(intern!(py, "last_price"), ev.last_price)?;
            x.set_item(intern!(py, "liquidation_price"), ev.liquidation_price)?;
            x.set_item(intern!(py, "mark_price"), ev.mark_price)?;
            x.set_item(intern!(py, "stop_loss"), ev.stop_loss)?;
            x.set_item(intern!(py, "take_profit"), ev.take_profit)?;
            x.set_item(intern!(py, "missing"), ev.missing)?;
            x.set_item(intern!(py, "exchange_side"), ev.exchange_side.as_deref())?;
            x.set_item(intern!(py, "exchange_contracts"), ev.exchange_contracts)?;
            x.set_item(intern!(py, "previous_amount"), ev.previous_amount)?;
            x.set_item(intern!(py, "previous_entry_price"), ev.previous_entry_price)?;
            x.set_item(intern!(py, "price_at_removal"), ev.price_at_removal)?;
            Some(x)
        }
    };
    d.set_item(intern!(py, "evidence"), evidence)?;
    d.set_item(intern!(py, "order_id"), e.order_id.as_deref())?;
    Ok(d)
}
