//! The journal from Python: `PositionManager(..., journal=, account=, journal_sync=)` and the
//! read-only `_JournalReader` behind `position_manager_rs.Journal`.
//!
//! The storage and the manager hook are the `position-manager-journal` crate; this layer reads
//! the arguments (errors name them), supplies the bot's attributes (each position object's
//! JSON-serialisable `__dict__`, as `save_state` writes them) and makes the `Position` objects
//! of restored positions. Database work runs detached from the interpreter; Python runs only in
//! the attribute and object callbacks, with no lock held.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use position_manager_core::book::SharedPosition;
use position_manager_core::error::CoreError;
use position_manager_core::events::Event;
use position_manager_core::persist::Extra;
use position_manager_core::position::PositionState;
use position_manager_journal::book::{BookJournal, ExtraFn};
use position_manager_journal::reader::{EventFilter, EventRecord, KeptRecord, Reader};
use position_manager_journal::store::parse_unlisted;
use position_manager_journal::writer::Writer;
use position_manager_journal::{JournalError as CoreJournalError, SyncMode, Target};

use crate::convert::{describe, to_datetime};
use crate::event_dicts::event_dict;
use crate::logging::{
    attach_clean, defer_interrupt, detached, is_interrupt, refresh_for, run, run_plain, PyLoggers,
};
use crate::manager::{CoreManager, Handle};
use crate::persist::{bytes_path, extra_of, path_arg, Json};
use crate::position::{state_dict, PyPosition};

pyo3::create_exception!(
    position_manager_rs,
    JournalError,
    PyOSError,
    "A journal that cannot be opened, created, migrated or read (the database cannot be \
     reached, refuses the connection or the write, or holds a newer schema). A subclass of \
     OSError; the message names the database (without its password)."
);

/// The account a manager journals under when `account=` is not given.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The longest account name.
pub const MAX_ACCOUNT_LEN: usize = 200;

fn to_py(e: CoreJournalError) -> PyErr {
    match e {
        CoreJournalError::Config(m) => PyValueError::new_err(m),
        CoreJournalError::Database(m) | CoreJournalError::Fenced(m) => JournalError::new_err(m),
    }
}

/// [`to_py`] for an error of the journal `shown` (its [`Target::display`]): a database error
/// that does not name it yet is prefixed with it, so a fleet with several journals can tell
/// which one failed (a damaged file's "database disk image is malformed" named none; found by
/// an audit on 2026-12-06).
fn to_py_at(shown: &str) -> impl Fn(CoreJournalError) -> PyErr + '_ {
    let named = shown.strip_prefix("sqlite:///").unwrap_or(shown);
    move |e| match e {
        CoreJournalError::Database(m) if !m.contains(named) => {
            JournalError::new_err(format!("{shown}: {m}"))
        }
        other => to_py(other),
    }
}

/// The checked journal arguments of the constructor.
pub struct JournalArgs {
    target: Target,
    account: String,
    sync: SyncMode,
}

/// A journal target from a `str` (a path or a URL) or an `os.PathLike` (a path). A `str` that
/// is not valid UTF-8 text is a file name as Python carries one that is not UTF-8 (surrogate
/// escapes, as `os.listdir` and `os.fsdecode` return): see [`escaped_target`].
fn target_arg(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Target> {
    if let Ok(s) = value.cast::<PyString>() {
        return match s.extract::<String>() {
            Ok(text) => Target::parse_arg(name, &text).map_err(to_py),
            Err(_) => escaped_target(name, value),
        };
    }
    let path = path_arg(value).map_err(|e| {
        if e.is_instance_of::<PyTypeError>(value.py()) {
            PyTypeError::new_err(format!(
                "{name} must be a str (a file path, sqlite:///path or postgresql://...) or an \
                 os.PathLike, got {}",
                describe(value)
            ))
        } else {
            e
        }
    })?;
    Ok(Target::Sqlite(path))
}

/// A `str` with surrogate escapes (see [`target_arg`]): read as its text would be — a file
/// path, or an `sqlite:///` URL; a NUL, an unknown scheme or `sqlite:` without `///` refused
/// alike — with the path taken from its bytes (`os.fsencode`), as the same name given as
/// `bytes` or `pathlib.Path` is. A `postgresql://` URL must be text; a `str` that no file name
/// can be (a lone surrogate outside the escapes) is refused naming the argument and the value.
fn escaped_target(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Target> {
    let refused = |why: &str| {
        PyValueError::new_err(format!(
            "{name} must be a file path or a URL{why}, got {}",
            describe(value)
        ))
    };
    let path: PathBuf = value.extract().map_err(|_| refused(""))?;
    let bytes = path.as_os_str().as_encoded_bytes();
    match Target::parse_arg(name, &String::from_utf8_lossy(bytes)).map_err(to_py)? {
        Target::Sqlite(_) => Ok(Target::Sqlite(match bytes.strip_prefix(b"sqlite:///") {
            Some(rest) => bytes_path(rest),
            None => path,
        })),
        Target::Postgres(_) => Err(refused(" (a postgresql:// URL is UTF-8 text)")),
    }
}

/// `value` unless it is missing or None.
fn given<'a, 'py>(value: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    value.filter(|v| !v.is_none())
}

/// Reads `journal=`, `account=` and `journal_sync=`; `None` when there is no journal.
pub fn args(
    journal: Option<&Bound<'_, PyAny>>,
    account: Option<&Bound<'_, PyAny>>,
    journal_sync: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<JournalArgs>> {
    let Some(journal) = given(journal) else {
        for (name, value) in [("account", account), ("journal_sync", journal_sync)] {
            if let Some(v) = given(value) {
                return Err(PyValueError::new_err(format!(
                    "{name} needs journal= (a file path or a postgresql:// URL), got {name}={}",
                    describe(v)
                )));
            }
        }
        return Ok(None);
    };
    let target = target_arg("journal", journal)?;
    let account = match given(account) {
        None => DEFAULT_ACCOUNT.to_owned(),
        Some(v) => {
            let Ok(s) = v.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "account must be a str, got {}",
                    describe(v)
                )));
            };
            let text = s.extract::<String>().ok().filter(|t| {
                !t.is_empty()
                    && t.chars().count() <= MAX_ACCOUNT_LEN
                    && !t.chars().any(char::is_control)
            });
            match text {
                Some(t) => t,
                None => {
                    return Err(PyValueError::new_err(format!(
                        "account must be a non-empty name of at most {MAX_ACCOUNT_LEN} \
                         characters without control characters, got {}",
                        describe(v)
                    )))
                }
            }
        }
    };
    let sync = match given(journal_sync) {
        None => SyncMode::Full,
        Some(v) => match v
            .cast::<PyString>()
            .ok()
            .and_then(|s| s.extract::<String>().ok())
        {
            Some(t) => SyncMode::parse(&t).map_err(to_py)?,
            None => {
                return Err(PyTypeError::new_err(format!(
                    "journal_sync must be 'full', 'normal' or 'off', got {}",
                    describe(v)
                )))
            }
        },
    };
    Ok(Some(JournalArgs {
        target,
        account,
        sync,
    }))
}

/// A manager's journal, as the binding keeps it.
pub struct Attached {
    journal: Arc<BookJournal<Handle>>,
    account: String,
    target: String,
    sync: SyncMode,
}

/// Opens the journal, restores the account into `core` (empty) and makes the journal its hook.
/// Every failure is an exception: `JournalError` for the database, the Python exception a
/// restored attribute raised.
pub fn attach(
    py: Python<'_>,
    core: &Arc<CoreManager>,
    loggers: &PyLoggers,
    args: JournalArgs,
) -> PyResult<Attached> {
    refresh_for(py, core, loggers);
    let JournalArgs {
        target,
        account,
        sync,
    } = args;
    let shown = target.display();
    let history = core.config().event_capacity;
    let now = core.now().0;
    let (writer, restored) = detached(py, || Writer::open(target, sync, &account, history, now))
        .map_err(to_py_at(&shown))?;
    let json = Arc::new(Json::new(py)?);
    let reader = json.clone();
    let extra: ExtraFn<Handle> = Arc::new(move |handle: &Handle| {
        attach_clean(|py| match extra_of(py, &reader, handle) {
            Ok(e) => Some(e.values),
            Err(e) => {
                // An interruption (KeyboardInterrupt, ...) leaves the manager call that made
                // the event; the attributes stay as last journaled.
                if is_interrupt(py, &e) {
                    defer_interrupt(e);
                }
                None
            }
        })
    });
    let mut pending: Option<PyErr> = None;
    let result = run(py, || {
        BookJournal::start(core, writer, restored, extra, |symbol, saved, position| {
            attach_clean(|py| {
                restored_position(py, &json, symbol, saved, position).map_err(|e| {
                    pending = Some(e);
                    CoreError::Value("interrupted by a Python exception".to_owned())
                })
            })
        })
    });
    let journal = match (result, pending) {
        (Ok(j), _) => j,
        (Err(_), Some(e)) => return Err(e),
        (Err(e), None) => return Err(e),
    };
    Ok(Attached {
        journal,
        account,
        target: shown,
        sync,
    })
}

/// A `Position` over a restored state, with the journaled attributes in its `__dict__`.
fn restored_position(
    py: Python<'_>,
    json: &Json,
    symbol: &str,
    extra: &Extra,
    position: &SharedPosition,
) -> PyResult<Handle> {
    let object = Py::new(py, PyPosition::from_shared(position.clone()))?;
    let attributes = object.bind(py).getattr(pyo3::intern!(py, "__dict__"))?;
    let attributes = attributes.cast::<PyDict>()?;
    for (name, text) in extra {
        let value = json.loads.bind(py).call1((text.get(),)).map_err(|e| {
            if crate::persist::attribute_failure(py, &e) {
                JournalError::new_err(format!(
                    "cannot restore attribute {name:?} of {symbol} from the journal: {e}"
                ))
            } else {
                e
            }
        })?;
        attributes.set_item(name, value)?;
    }
    Ok(Arc::new(object))
}

impl Attached {
    /// The journal itself (the view reports the handles it keeps to the garbage collector).
    pub fn book_journal(&self) -> Arc<BookJournal<Handle>> {
        self.journal.clone()
    }

    /// `manager.journal_position(symbol)`.
    pub fn write_position(&self, py: Python<'_>, symbol: &str) -> PyResult<bool> {
        let journal = &self.journal;
        run_plain(py, || journal.write_position(symbol).unwrap_or(false))
    }

    /// `manager.journal_checkpoint()`.
    pub fn checkpoint(&self, py: Python<'_>, core: &CoreManager) -> PyResult<bool> {
        let journal = &self.journal;
        run_plain(py, || {
            core.journal_checkpoint();
            journal.queued_events() == 0 && journal.flush().unwrap_or(false)
        })
    }

    /// `manager.journal_status`.
    pub fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let journal = &self.journal;
        // Read without the writer's lock: never waits behind a write waiting for the database.
        let (queued, fenced, failing) = detached(py, || {
            (
                journal.queued_events(),
                journal.is_fenced(),
                journal.is_failing(),
            )
        });
        let d = PyDict::new(py);
        d.set_item("journal", &self.target)?;
        d.set_item("account", &self.account)?;
        d.set_item("journal_sync", self.sync.name())?;
        d.set_item("queued_events", queued)?;
        d.set_item("fenced", fenced)?;
        d.set_item("failing", failing)?;
        Ok(d)
    }
}

// ------------------------------------------------------------------------------- the reader

/// The read-only journal reader behind `position_manager_rs.Journal` (use that class).
#[pyclass(name = "_JournalReader", module = "position_manager_rs._core", frozen)]
pub struct PyJournalReader {
    reader: parking_lot::Mutex<Option<Reader>>,
    url: String,
    version: i64,
    /// The process (fork generation) it was opened in (src/fork.rs).
    origin: crate::fork::Origin,
}

/// What a journal reader of the parent says in a forked child.
const READER: &str = "this Journal";

impl Drop for PyJournalReader {
    /// In a forked child, the connection is leaked rather than closed: it is the parent's (a
    /// PostgreSQL session would be ended by the terminate message a close sends; src/fork.rs).
    fn drop(&mut self) {
        let reader = self.reader.get_mut().take();
        self.origin.release(reader);
    }
}

/// A position row as a dict: `account`, `symbol` (the book key) and every field of its state
/// (an unreadable state gives the two keys alone).
fn position_record<'py>(
    py: Python<'py>,
    account: &str,
    symbol: &str,
    state: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("account", account)?;
    d.set_item("symbol", symbol)?;
    if let Ok(state) = serde_json::from_str::<PositionState>(state) {
        for (k, v) in state_dict(py, &state)?.iter() {
            if k.extract::<String>().ok().as_deref() != Some("symbol") {
                d.set_item(k, v)?;
            }
        }
    }
    Ok(d)
}

/// Tombstone or closing rows as dicts, their sequence number and time named `{what}_seq` and
/// `{what}_at`, with `listed` (a dict or `None`), `own_end` and `doubtful` (bools) when
/// `with_listing`, the close order's `order_id` (a str or `None`) otherwise.
fn kept_records<'py>(
    py: Python<'py>,
    rows: &[KeptRecord],
    what: &str,
    with_listing: bool,
) -> PyResult<Bound<'py, PyList>> {
    let items = rows
        .iter()
        .map(|row| {
            let d = position_record(py, &row.account, &row.symbol, &row.state)?;
            d.set_item("attributes", loads(py, row.attributes.as_deref())?)?;
            if with_listing {
                d.set_item("listed", loads(py, row.listed.as_deref())?)?;
                d.set_item("own_end", row.own_end)?;
                d.set_item("doubtful", row.doubtful)?;
            } else {
                d.set_item("order_id", row.order_id.as_deref())?;
            }
            d.set_item(format!("{what}_seq"), row.seq)?;
            d.set_item(
                format!("{what}_at"),
                to_datetime(position_manager_core::clock::Timestamp(row.at_us))?,
            )?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn loads<'py>(py: Python<'py>, text: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    match text {
        None => Ok(py.None().into_bound(py)),
        Some(t) => py.import("json")?.getattr("loads")?.call1((t,)),
    }
}

/// An `unlisted_fills` column as a dict with both fields (`open`, `sizes_before`); `None` when
/// nothing is unlisted, or when the text cannot be read (as the manager then takes it).
fn unlisted_fills<'py>(py: Python<'py>, text: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    match Some(parse_unlisted(text)).filter(|u| !u.is_empty()) {
        None => Ok(py.None().into_bound(py)),
        Some(u) => {
            let d = PyDict::new(py);
            d.set_item("open", u.open)?;
            d.set_item("sizes_before", u.sizes_before)?;
            Ok(d.into_any())
        }
    }
}

fn event_record<'py>(py: Python<'py>, r: &EventRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("account", &r.account)?;
    match serde_json::from_str::<Event>(&r.event) {
        Ok(e) => {
            d.update(event_dict(py, &e)?.as_mapping())?;
        }
        Err(_) => {
            // A kind or field this version does not know: the event as JSON, as it was written.
            let raw = loads(py, Some(&r.event))?;
            if let Ok(raw) = raw.cast::<PyDict>() {
                d.update(raw.as_mapping())?;
            }
            d.set_item(
                "time",
                to_datetime(position_manager_core::clock::Timestamp(r.time_us))?,
            )?;
        }
    }
    d.set_item("attributes", loads(py, r.attributes.as_deref())?)?;
    Ok(d)
}

fn closed_record<'py>(py: Python<'py>, r: &EventRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("account", &r.account)?;
    d.set_item("seq", r.seq)?;
    d.set_item(
        "time",
        to_datetime(position_manager_core::clock::Timestamp(r.time_us))?,
    )?;
    d.set_item("symbol", &r.symbol)?;
    d.set_item("kind", &r.kind)?;
    d.set_item("reason", &r.reason)?;
    d.set_item("pnl", r.pnl)?;
    let state = serde_json::from_str::<serde_json::Value>(&r.event)
        .ok()
        .and_then(|v| v.get("position").cloned())
        .and_then(|p| serde_json::from_value::<PositionState>(p).ok());
    if let Some(p) = state {
        d.set_item("side", &p.side)?;
        d.set_item("entry_price", p.entry_price)?;
        d.set_item("amount", p.amount)?;
        d.set_item("leverage", p.leverage)?;
        d.set_item("stop_loss", p.stop_loss)?;
        d.set_item("take_profit", p.take_profit)?;
        d.set_item("entry_time", to_datetime(p.entry_time)?)?;
        d.set_item("partial_exits_taken", p.partial_exits_taken)?;
    }
    d.set_item("attributes", loads(py, r.attributes.as_deref())?)?;
    Ok(d)
}

impl PyJournalReader {
    /// Runs the query `f`; once more on a new session when the server had ended this one
    /// ([`Reader::reconnect_if_ended`]).
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl Fn(&mut Reader) -> Result<T, CoreJournalError> + Send + Sync,
    ) -> PyResult<T> {
        self.origin.check(READER)?;
        detached(py, || {
            let mut guard = self.reader.lock();
            match guard.as_mut() {
                Some(r) => match f(r) {
                    Err(_) if r.reconnect_if_ended() => f(r),
                    other => other,
                }
                .map_err(Some),
                None => Err(None),
            }
        })
        .map_err(|e| match e {
            Some(e) => to_py_at(&self.url)(e),
            None => PyValueError::new_err("the journal is closed"),
        })
    }
}

#[pymethods]
impl PyJournalReader {
    /// Opens the journal at `url` (a file path, `sqlite:///path` or `postgresql://...`, a
    /// PostgreSQL URL completed as `psql` completes it) read-only.
    #[new]
    fn new(py: Python<'_>, url: &Bound<'_, PyAny>) -> PyResult<Self> {
        let target = target_arg("url", url)?;
        let shown = target.display();
        let reader = detached(py, || Reader::open_target(target)).map_err(to_py_at(&shown))?;
        let version = reader.schema_version();
        Ok(PyJournalReader {
            reader: parking_lot::Mutex::new(Some(reader)),
            url: shown,
            version,
            origin: crate::fork::Origin::here(),
        })
    }

    /// The database (without a password).
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// The journal's schema version.
    #[getter]
    fn schema_version(&self) -> i64 {
        self.version
    }

    /// Starts a snapshot: the queries that follow read one committed state (use
    /// `Journal.snapshot()`).
    fn _begin_snapshot(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |r| r.begin_snapshot())
    }

    /// Ends the snapshot `_begin_snapshot` started (nothing when none is open, or when the
    /// journal was closed meanwhile: closing ended it, and an error here would hide the
    /// exception that is leaving the `with` block).
    fn _end_snapshot(&self, py: Python<'_>) -> PyResult<()> {
        self.origin.check(READER)?;
        detached(py, || match self.reader.lock().as_mut() {
            Some(r) => r.end_snapshot(),
            None => Ok(()),
        })
        .map_err(to_py_at(&self.url))
    }

    /// Closes the connection. In a forked child, a reader opened by the parent raises
    /// `RuntimeError`: the connection is the parent's.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.origin.check(READER)?;
        let old = detached(py, || self.reader.lock().take());
        drop(old);
        Ok(())
    }

    /// Every account: name, last event number, writer, created/updated, open positions.
    fn accounts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |r| r.accounts())?;
        let items = rows
            .iter()
            .map(|a| {
                let d = PyDict::new(py);
                d.set_item("account", &a.account)?;
                d.set_item("last_seq", a.last_seq)?;
                d.set_item("open_positions", a.open_positions)?;
                d.set_item("writer", &a.writer)?;
                d.set_item("created_at", &a.created_at)?;
                d.set_item("updated_at", &a.updated_at)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Events as dicts (the fields of `manager.events`, plus `account` and `attributes`).
    #[pyo3(signature = (account=None, symbol=None, kinds=None, since_us=None, until_us=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn events<'py>(
        &self,
        py: Python<'py>,
        account: Option<String>,
        symbol: Option<String>,
        kinds: Option<Vec<String>>,
        since_us: Option<i64>,
        until_us: Option<i64>,
        limit: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let filter = EventFilter {
            account,
            symbol,
            kinds,
            since_us,
            until_us,
            limit,
            without_taken_back: false,
        };
        let rows = self.with(py, |r| r.events(&filter))?;
        let items = rows
            .iter()
            .map(|r| event_record(py, r))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Positions that left the book (closed by the manager, removed as closed outside it); an end
    /// a later list took back (`close_unconfirmed`, `restored`) is not one of them.
    #[pyo3(signature = (account=None, symbol=None, since_us=None, until_us=None, limit=None))]
    fn closed_positions<'py>(
        &self,
        py: Python<'py>,
        account: Option<String>,
        symbol: Option<String>,
        since_us: Option<i64>,
        until_us: Option<i64>,
        limit: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let filter = EventFilter {
            account,
            symbol,
            since_us,
            until_us,
            limit,
            ..EventFilter::default()
        };
        let rows = self.with(py, |r| r.closed_positions(&filter))?;
        let items = rows
            .iter()
            .map(|r| closed_record(py, r))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The tracked positions as dicts: `account`, every position field, `attributes`, `listed`,
    /// `unlisted_fills`.
    #[pyo3(signature = (account=None))]
    fn open_positions<'py>(
        &self,
        py: Python<'py>,
        account: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |r| r.open_positions(account.as_deref()))?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let d = position_record(py, &row.account, &row.symbol, &row.state)?;
            d.set_item("attributes", loads(py, row.attributes.as_deref())?)?;
            d.set_item("listed", loads(py, row.listed.as_deref())?)?;
            d.set_item(
                "unlisted_fills",
                unlisted_fills(py, row.unlisted_fills.as_deref())?,
            )?;
            d.set_item("updated_seq", row.updated_seq)?;
            d.set_item("updated_at", &row.updated_at)?;
            items.push(d);
        }
        PyList::new(py, items)
    }

    /// The tombstones as dicts: `account`, `symbol`, every position field, `attributes`,
    /// `listed`, `own_end` (the manager's own order ended the position, rather than an
    /// absence: a list showing it again is weighed by the outcome rules), `doubtful` (what
    /// ended it failed reads or lagging lists also show: a list showing it added to brings it
    /// back), `removed_seq`, `removed_at`.
    #[pyo3(signature = (account=None))]
    fn tombstones<'py>(
        &self,
        py: Python<'py>,
        account: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |r| r.tombstones(account.as_deref()))?;
        kept_records(py, &rows, "removed", true)
    }

    /// The closes awaiting confirmation as dicts: `account`, `symbol`, every position field,
    /// `attributes`, `order_id`, `closed_seq`, `closed_at`.
    #[pyo3(signature = (account=None))]
    fn closing_positions<'py>(
        &self,
        py: Python<'py>,
        account: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |r| r.closing_positions(account.as_deref()))?;
        kept_records(py, &rows, "closed", false)
    }

    /// The re-open holds as dicts: `account`, `symbol`, `held_since`.
    #[pyo3(signature = (account=None))]
    fn reopen_holds<'py>(
        &self,
        py: Python<'py>,
        account: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |r| r.reopen_holds(account.as_deref()))?;
        let items = rows
            .iter()
            .map(|row| {
                let since =
                    to_datetime(position_manager_core::clock::Timestamp(row.held_since_us))?;
                let d = PyDict::new(py);
                d.set_item("account", &row.account)?;
                d.set_item("symbol", &row.symbol)?;
                d.set_item("held_since", since)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The orders in flight as dicts: `account`, `symbol`, `kind` (`open`, `close`,
    /// `scale_in`, `scale_out`), `client_order_id`, `sent_at`, `intent` (what the order was
    /// meant to do: a dict).
    #[pyo3(signature = (account=None))]
    fn orders_in_flight<'py>(
        &self,
        py: Python<'py>,
        account: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |r| r.orders_in_flight(account.as_deref()))?;
        let items = rows
            .iter()
            .map(|row| {
                let sent = to_datetime(position_manager_core::clock::Timestamp(row.sent_at_us))?;
                let d = PyDict::new(py);
                d.set_item("account", &row.account)?;
                d.set_item("symbol", &row.symbol)?;
                d.set_item("kind", &row.kind)?;
                d.set_item("client_order_id", &row.client_order_id)?;
                d.set_item("sent_at", sent)?;
                d.set_item("intent", loads(py, Some(&row.intent))?)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }
}
