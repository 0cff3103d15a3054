//! The book on disk: a versioned JSON state file, written atomically and read all-or-nothing.
//!
//! ```json
//! {
//!   "format": "position-manager-rs/state",
//!   "version": 1,
//!   "saved_at": "2025-01-01T12:00:00.000000",
//!   "writer": "position-manager-rs 0.1.0",
//!   "positions": [
//!     {"symbol": "BTC/USDT:USDT", "state": {...PositionState...}, "extra": {"strategy": "breakout"}},
//!     {"symbol": "ETH/USDT:USDT", "state": {...}, "extra": {}, "unlisted_fills": {"open": true},
//!      "predecessor": {"symbol": "ETH/USDT:USDT", "state": ..., "extra": ..., "at": ..., "listed": {...}}}
//!   ],
//!   "tombstones": [{"symbol": ..., "state": ..., "extra": ..., "at": 1735732800000000, "listed": {...},
//!                   "own_end": true}, {"symbol": ..., ..., "doubtful": true}],
//!   "closing": [{"symbol": ..., "state": ..., "extra": ..., "at": 1735732800000000, "order_id": "pm..."}],
//!   "holds": [{"symbol": "ETH/USDT:USDT", "since": 1735732800000000}],
//!   "timer_frame": true,
//!   "orders": [{"symbol": "SOL/USDT:USDT", "reference": "pm...", "at": 1735732800000000,
//!               "intent": {"kind": "open", "side": "long", "amount": 2.0, ...}}]
//! }
//! ```
//!
//! - Positions are in book order. `state` is [`PositionState`] as serde writes it (timestamps
//!   are naive local microseconds); `extra` holds the caller's own attributes, each kept as the
//!   exact JSON text the caller produced ([`RawValue`]).
//! - What the manager remembers of positions it no longer tracks ([`SavedKept`]: tombstones and
//!   closes awaiting confirmation, oldest first), its re-open holds ([`SavedHold`]) and its
//!   orders whose outcome was unknown when it saved ([`SavedOrder`]) follow, each section only
//!   when not empty; a position carries `listed` (what the exchange last
//!   listed for it, [`SavedListing`]) only once a list showed it, and `unlisted_fills` (what
//!   the manager's own orders did to it that no list has shown yet, [`UnlistedFills`]) only
//!   while there is something, and `predecessor` (the position a side flip replaced with it,
//!   restored by a flip back) only when it has one. A file with none of these is
//!   byte for byte what earlier versions wrote, and those read them as unknown fields
//!   (ignored).
//! - The times of what the manager remembers and holds (`at` of tombstones, closes and
//!   predecessors, `since` of holds) are its clock's timer readings
//!   ([`crate::clock::Clock::timer`]: UTC microseconds for the system clock), not local time,
//!   and `"timer_frame": true` says so (written whenever the file has any). A file without it
//!   (written by an earlier build, which kept local times) has those times moved into the timer
//!   frame when loaded, by the loading clock's current difference between its two readings
//!   (the local UTC offset for the system clock; nothing for a manual or frozen clock): exact
//!   when the file is loaded under the time zone and DST period it was written in.
//! - Writing ([`save`]): the whole file is serialised in memory first, written to a temporary file
//!   in the target's directory (`.<name>.tmp-<pid>-<n>`), `fsync`ed, renamed over the target, and
//!   the directory is `fsync`ed (unix). A reader — or a process started after a crash at any
//!   moment — sees either the previous file or the new one, never a mixture. Temporary files left
//!   by a writer that died mid-save are removed by the next save to the same target. Symlinks,
//!   permissions, non-regular targets, concurrent writers and long names: see [`files`].
//! - Reading ([`load`]): the file is parsed, its `format` and `version` checked, then every value
//!   validated before anything is returned; any defect is an error naming the file (and, for JSON
//!   defects, serde's line and column), so a caller never builds a partial book. Only a regular
//!   file is read (a FIFO or a device is refused without blocking).
//! - The caller's attributes are never parsed into numbers or strings here: any JSON text
//!   (integers beyond the float range, escaped lone surrogates, deep nesting) is kept verbatim.

mod files;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::book::UnlistedFills;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::key::Side;
use crate::manager::in_flight::SentIntent;
use crate::position::PositionState;
use crate::reconcile::Fingerprint;

/// The `format` every state file carries.
pub const FORMAT: &str = "position-manager-rs/state";

/// The state-file version this build writes, and the newest it reads.
pub const VERSION: u64 = 1;

pub use files::{
    file_kind, leftover_temp_files, lock_target, read_bounded, resolve_target,
    take_inherited_lock_fds, with_lock_wait, BoundedReadError, TargetLock, DIR_LOCK_WAIT,
    MAX_LINKS,
};

/// The caller's own attributes of a position: name → JSON text, kept verbatim.
pub type Extra = BTreeMap<String, Box<RawValue>>;

/// `text` as one JSON value kept verbatim for [`Extra`]; an error when it is not exactly one
/// valid JSON value.
pub fn json_text(text: String) -> Result<Box<RawValue>, String> {
    RawValue::from_string(text).map_err(|e| e.to_string())
}

/// One saved position.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPosition {
    /// The book key.
    pub symbol: String,
    /// The position's fields (without the price history).
    pub state: PositionState,
    /// The caller's JSON-serialisable attributes (for the binding: the Python object's
    /// `__dict__`).
    #[serde(default)]
    pub extra: Extra,
    /// What the exchange last listed for it (absent when no list has shown its entry yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<SavedListing>,
    /// What the manager's own orders did to it that no list has shown yet (absent when
    /// nothing).
    #[serde(default, skip_serializing_if = "UnlistedFills::is_empty")]
    pub unlisted_fills: UnlistedFills,
    /// The position a side flip replaced with this one, kept so that a list showing it again
    /// unchanged (a flip back) restores it (its `symbol` is this position's; absent when none;
    /// older files have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predecessor: Option<Box<SavedKept>>,
}

impl Clone for SavedPosition {
    fn clone(&self) -> Self {
        SavedPosition {
            symbol: self.symbol.clone(),
            state: self.state.clone(),
            extra: clone_extra(&self.extra),
            listed: self.listed.clone(),
            unlisted_fills: self.unlisted_fills.clone(),
            predecessor: self.predecessor.clone(),
        }
    }
}

impl PartialEq for SavedPosition {
    fn eq(&self, other: &Self) -> bool {
        self.symbol == other.symbol
            && self.state == other.state
            && same_extra(&self.extra, &other.extra)
            && self.listed == other.listed
            && self.unlisted_fills == other.unlisted_fills
            && self.predecessor == other.predecessor
    }
}

// `Box<RawValue>` is neither `Clone` nor `PartialEq`: both go through its JSON text.
fn clone_extra(extra: &Extra) -> Extra {
    extra
        .iter()
        .map(|(k, v)| (k.clone(), v.to_owned()))
        .collect()
}

fn same_extra(a: &Extra, b: &Extra) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
}

/// What the exchange last listed for a removed position: the side, size and entry price that
/// identify it if it is listed again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedListing {
    /// `long` or `short`.
    pub side: String,
    /// Size in contracts (> 0).
    pub contracts: f64,
    /// Entry price (> 0).
    pub entry_price: f64,
}

impl SavedListing {
    /// What `f` identifies, as written.
    pub fn of(f: Fingerprint) -> Self {
        SavedListing {
            side: f.side.as_str().to_owned(),
            contracts: f.contracts,
            entry_price: f.entry_price,
        }
    }

    /// The fingerprint it describes (`None` for a side other than `long`/`short`).
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        Some(Fingerprint {
            side: Side::parse(&self.side)?,
            contracts: self.contracts,
            entry_price: self.entry_price,
        })
    }
}

/// A position the manager no longer tracks but still remembers: a tombstone (removed as closed
/// outside the manager, restored if the exchange lists the very same position again) or a close
/// of the manager's awaiting confirmation by a position list.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedKept {
    /// The book key.
    pub symbol: String,
    /// The position's fields as they were when it left the book.
    pub state: PositionState,
    /// The caller's JSON-serialisable attributes.
    #[serde(default)]
    pub extra: Extra,
    /// When it was removed (a tombstone) or closed (a close awaiting confirmation), naive local
    /// microseconds.
    pub at: Timestamp,
    /// What the exchange last listed for it (tombstones; absent when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<SavedListing>,
    /// The close order's client id (closes whose client takes them; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// For a tombstone: the manager's own order ended the position
    /// ([`crate::reconcile::OwnEnd`]), so a list that shows it again is weighed by the outcome
    /// rules before it is tracked again (absent when false; older files have none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_end: bool,
    /// For a tombstone: what ended it is also what failed reads or lagging lists show
    /// ([`crate::reconcile::TombView::doubtful`]), so a list that shows it added to brings it
    /// back (absent when false; older files have none; never with `own_end`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub doubtful: bool,
}

impl Clone for SavedKept {
    fn clone(&self) -> Self {
        SavedKept {
            symbol: self.symbol.clone(),
            state: self.state.clone(),
            extra: clone_extra(&self.extra),
            at: self.at,
            listed: self.listed.clone(),
            order_id: self.order_id.clone(),
            own_end: self.own_end,
            doubtful: self.doubtful,
        }
    }
}

impl PartialEq for SavedKept {
    fn eq(&self, other: &Self) -> bool {
        self.symbol == other.symbol
            && self.state == other.state
            && same_extra(&self.extra, &other.extra)
            && self.at == other.at
            && self.listed == other.listed
            && self.order_id == other.order_id
            && self.own_end == other.own_end
            && self.doubtful == other.doubtful
    }
}

/// A re-open hold (`reopen_hold_seconds`): the key, and when the hold started (naive local
/// microseconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedHold {
    /// The book key.
    pub symbol: String,
    /// When the hold started.
    pub since: Timestamp,
}

/// An order whose outcome the manager had not taken in when it saved (an open with an unknown
/// outcome, or a tracked position's close or scale order): a load takes it back as such, so
/// no second order goes out for it ([`crate::manager::Manager::restore_orders_from`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedOrder {
    /// The book key.
    pub symbol: String,
    /// Its identity (its client order id, or an id of that form), as a journal row's.
    pub reference: String,
    /// When the file was saved with the order's outcome unknown.
    pub at: Timestamp,
    /// What it was meant to do (as a journal's `pmrs_orders` row keeps it).
    pub intent: SentIntent,
}

/// A whole state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The version the file was written as ([`VERSION`] for files this build writes).
    pub version: u64,
    /// When it was saved, naive local time `YYYY-mm-ddTHH:MM:SS.ffffff` (informational).
    #[serde(default)]
    pub saved_at: String,
    /// What wrote it, e.g. `position-manager-rs 0.1.0` (informational).
    #[serde(default)]
    pub writer: String,
    /// The tracked positions, in book order.
    pub positions: Vec<SavedPosition>,
    /// The tombstones, oldest removal first (absent in files written before they were saved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<SavedKept>,
    /// The manager's closes awaiting confirmation, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closing: Vec<SavedKept>,
    /// The re-open holds that were not over when the file was saved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<SavedHold>,
    /// The orders whose outcome was unknown when the file was saved, by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<SavedOrder>,
    /// The times of tombstones, closes, predecessors and holds are timer readings (see the
    /// module docs); absent (false) in files of earlier builds, which kept local times, and
    /// when the file has none of them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timer_frame: bool,
}

impl StateFile {
    /// A current-version file of `positions` saved at `saved_at`.
    pub fn new(saved_at: Timestamp, positions: Vec<SavedPosition>) -> Self {
        StateFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            saved_at: iso_time(saved_at),
            writer: format!("position-manager-rs {}", env!("CARGO_PKG_VERSION")),
            positions,
            tombstones: Vec::new(),
            closing: Vec::new(),
            holds: Vec::new(),
            orders: Vec::new(),
            timer_frame: false,
        }
    }

    /// Every time the file keeps in the timer frame: tombstones', closes' and predecessors'
    /// `at`, holds' `since`. The one list of them, for marking a file ([`StateFile::timer_frame`])
    /// and for moving an earlier build's local times into the frame.
    pub fn timer_times(&mut self) -> impl Iterator<Item = &mut Timestamp> {
        let kept = self.tombstones.iter_mut().chain(self.closing.iter_mut());
        let predecessors = self
            .positions
            .iter_mut()
            .filter_map(|p| p.predecessor.as_deref_mut());
        kept.chain(predecessors)
            .map(|k| &mut k.at)
            .chain(self.holds.iter_mut().map(|h| &mut h.since))
    }

    /// Checks every value (finite prices, amount > 0, unique symbols, ...); the message names
    /// the position and the field.
    pub fn validate(&self) -> Result<(), String> {
        // One key, one entry: a tracked position, a tombstone and a close never share a key.
        let mut seen = std::collections::HashSet::new();
        let mut key = |what: &str, i: usize, symbol: &str| {
            if symbol.is_empty() {
                Err(format!("{what} {i}: symbol must not be empty"))
            } else if !seen.insert(symbol.to_owned()) {
                Err(format!(
                    "{what} {i} ({symbol:?}): symbol appears more than once"
                ))
            } else {
                Ok(())
            }
        };
        for (i, p) in self.positions.iter().enumerate() {
            key("position", i, &p.symbol)?;
            let at = || format!("position {i} ({:?})", p.symbol);
            validate_state(&p.state).map_err(|m| format!("{}: {m}", at()))?;
            if let Some(l) = &p.listed {
                validate_listing(l).map_err(|m| format!("{}: listed.{m}", at()))?;
            }
            validate_unlisted(&p.unlisted_fills)
                .map_err(|m| format!("{}: unlisted_fills.{m}", at()))?;
            if let Some(k) = &p.predecessor {
                let at = || format!("{}: predecessor", at());
                if k.symbol != p.symbol {
                    return Err(format!(
                        "{}: symbol must be the position's, got {:?}",
                        at(),
                        k.symbol
                    ));
                }
                validate_kept(k, "predecessor").map_err(|m| format!("{}: {m}", at()))?;
            }
        }
        for (what, kept) in [("tombstone", &self.tombstones), ("closing", &self.closing)] {
            for (i, k) in kept.iter().enumerate() {
                key(what, i, &k.symbol)?;
                validate_kept(k, what).map_err(|m| format!("{what} {i} ({:?}): {m}", k.symbol))?;
            }
        }
        let mut held = std::collections::HashSet::new();
        for (i, h) in self.holds.iter().enumerate() {
            if h.symbol.is_empty() {
                return Err(format!("hold {i}: symbol must not be empty"));
            }
            if !held.insert(h.symbol.as_str()) {
                return Err(format!(
                    "hold {i} ({:?}): symbol appears more than once",
                    h.symbol
                ));
            }
            check_time("since", h.since).map_err(|m| format!("hold {i} ({:?}): {m}", h.symbol))?;
        }
        // One order per key, as the manager sends them; a key may also be tracked (a close's
        // order) or remembered.
        let mut ordered = std::collections::HashSet::new();
        for (i, o) in self.orders.iter().enumerate() {
            let at = || format!("order {i} ({:?})", o.symbol);
            if o.symbol.is_empty() {
                return Err(format!("order {i}: symbol must not be empty"));
            }
            if !ordered.insert(o.symbol.as_str()) {
                return Err(format!("{}: symbol appears more than once", at()));
            }
            if o.reference.is_empty() {
                return Err(format!("{}: reference must not be empty", at()));
            }
            check_time("at", o.at).map_err(|m| format!("{}: {m}", at()))?;
            o.intent
                .validate()
                .map_err(|m| format!("{}: intent: {m}", at()))?;
        }
        Ok(())
    }

    /// The file's bytes: pretty-printed JSON ending with a newline.
    pub fn to_bytes(&self) -> CoreResult<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| CoreError::State(format!("cannot serialise the state: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses and validates the bytes of a state file; `origin` (the path) starts every message.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> CoreResult<StateFile> {
        let bad = |m: String| CoreError::State(format!("{origin}: {m}"));
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("the state file is empty".to_owned()));
        }
        // Syntax first (truncation, corruption), then the header, then the typed reading: a file
        // of a future version is reported as such even if its shape changed. Nothing is parsed
        // into `serde_json::Value`: the caller's attributes may hold numbers or strings that
        // only their own JSON text can carry.
        serde_json::from_slice::<IgnoredAny>(bytes).map_err(|e| {
            if e.is_eof() || at_the_end(bytes, &e) {
                bad(format!(
                    "the state file is truncated (its JSON ends early: {e})"
                ))
            } else {
                bad(format!("the state file is not valid JSON: {e}"))
            }
        })?;
        check_header(bytes).map_err(bad)?;
        let file: StateFile =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid state file: {e}")))?;
        file.validate().map_err(bad)?;
        Ok(file)
    }
}

/// Whether a syntax error lies at the very end of the input (a number cut short, `1.` or `1e`,
/// is reported as invalid rather than as an early end by the skipping parser).
fn at_the_end(bytes: &[u8], e: &serde_json::Error) -> bool {
    let end = bytes.trim_ascii_end().len();
    let mut line = 1;
    let mut offset = 0;
    for (i, b) in bytes.iter().enumerate() {
        if line == e.line() {
            offset = i;
            break;
        }
        if *b == b'\n' {
            line += 1;
        }
    }
    offset + e.column() >= end
}

/// The two header fields, kept as their JSON text; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format: Option<Box<RawValue>>,
    #[serde(default)]
    version: Option<Box<RawValue>>,
}

fn check_header(bytes: &[u8]) -> Result<(), String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'{') {
        return Err(format!(
            "not a position-manager-rs state file (the top level is {}, expected an object)",
            json_kind(first)
        ));
    }
    let header: Header = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a position-manager-rs state file ({e})"))?;
    match header.format.as_deref().map(RawValue::get) {
        Some(f) if serde_json::from_str::<String>(f).is_ok_and(|f| f == FORMAT) => {}
        Some(other) => {
            return Err(format!(
            "not a position-manager-rs state file (\"format\" is {other}, expected \"{FORMAT}\")"
        ))
        }
        None => {
            return Err(format!(
                "not a position-manager-rs state file (no \"format\" field; expected \"{FORMAT}\")"
            ))
        }
    }
    let Some(v) = header.version.as_deref().map(RawValue::get) else {
        return Err("no \"version\" field".to_owned());
    };
    match serde_json::from_str::<u64>(v) {
        Ok(n) if n == VERSION => Ok(()),
        Ok(n) if n > VERSION => Err(format!(
            "state file version {n} is newer than this position-manager-rs supports \
             (version {VERSION}); upgrade position-manager-rs to load it"
        )),
        _ => Err(format!(
            "unsupported state file version {v} (this position-manager-rs reads version {VERSION})"
        )),
    }
}

/// What a JSON text starting with `first` is, for messages.
fn json_kind(first: Option<u8>) -> &'static str {
    match first {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// Checks one position's values; the message names the field and the value.
///
/// It refuses what a running manager cannot hold — an empty symbol, a side other than `'long'`
/// or `'short'`, a contract size that is not a finite number > 0, a negative count of partial
/// exits, a time outside Python's `datetime` range — because the `Position` setters refuse it
/// too. The prices, sizes and figures are not range-checked: before 2026-12-06 the setters took
/// any number (as the original), so a state saved then may hold a NaN stop or a zero leverage,
/// and a state a manager held must come back as it was ([`crate::position::json_float`] writes
/// the non-finite ones). A short's target the original computes may be below 0.
pub fn validate_state(p: &PositionState) -> Result<(), String> {
    if p.symbol.is_empty() {
        return Err("state.symbol must not be empty".to_owned());
    }
    if p.side != "long" && p.side != "short" {
        return Err(format!("side must be 'long' or 'short', got {:?}", p.side));
    }
    if !(p.contract_size.is_finite() && p.contract_size > 0.0) {
        return Err(format!(
            "contract_size must be a finite number > 0, got {}",
            p.contract_size
        ));
    }
    if p.partial_exits_taken < 0 {
        return Err(format!(
            "partial_exits_taken must be >= 0, got {}",
            p.partial_exits_taken
        ));
    }
    check_time("entry_time", p.entry_time)?;
    check_time("last_pnl_time", p.last_pnl_time)?;
    Ok(())
}

/// Checks that `t` is a time Python's `datetime` can show (the years 1 to 9999); the message
/// names the field `name`.
pub fn check_time(name: &str, t: Timestamp) -> Result<(), String> {
    const MIN: i64 = -62_135_596_800_000_000; // 0001-01-01 00:00:00
    const MAX: i64 = 253_402_300_799_999_999; // 9999-12-31 23:59:59.999999
    if (MIN..=MAX).contains(&t.0) {
        Ok(())
    } else {
        Err(format!("{name} is out of the datetime range, got {}", t.0))
    }
}

/// Checks a remembered position (`what`: a `tombstone`, a `closing` entry, a `predecessor`);
/// the message names the field.
fn validate_kept(k: &SavedKept, what: &str) -> Result<(), String> {
    validate_state(&k.state)?;
    check_time("at", k.at)?;
    if let Some(l) = &k.listed {
        validate_listing(l).map_err(|m| format!("listed.{m}"))?;
    }
    if k.order_id.is_some() && what == "predecessor" {
        return Err("order_id is for closes awaiting confirmation only".to_owned());
    }
    if k.order_id.as_deref().is_some_and(str::is_empty) {
        return Err("order_id must not be empty".to_owned());
    }
    if k.own_end && what != "tombstone" {
        return Err("own_end is for tombstones only".to_owned());
    }
    if k.doubtful && what != "tombstone" {
        return Err("doubtful is for tombstones only".to_owned());
    }
    if k.doubtful && k.own_end {
        return Err("a tombstone is not both own_end and doubtful".to_owned());
    }
    Ok(())
}

/// Checks what the exchange last listed for a tombstone; the message names the field.
pub fn validate_listing(l: &SavedListing) -> Result<(), String> {
    if l.side != "long" && l.side != "short" {
        return Err(format!("side must be 'long' or 'short', got {:?}", l.side));
    }
    for (name, v) in [("contracts", l.contracts), ("entry_price", l.entry_price)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!("{name} must be a finite number > 0, got {v}"));
        }
    }
    Ok(())
}

/// Checks what the manager's own orders did to a tracked position that no list has shown;
/// the message names the field.
pub fn validate_unlisted(u: &UnlistedFills) -> Result<(), String> {
    match u
        .sizes_before
        .iter()
        .find(|v| !(v.is_finite() && **v > 0.0))
    {
        Some(v) => Err(format!(
            "sizes_before must hold finite numbers > 0, got {v}"
        )),
        None => Ok(()),
    }
}

/// `YYYY-mm-ddTHH:MM:SS.ffffff` of a naive timestamp.
fn iso_time(t: Timestamp) -> String {
    match chrono::DateTime::from_timestamp_micros(t.0) {
        Some(dt) => dt.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        None => String::new(),
    }
}

/// An I/O error as the core error (`OSError` in Python), with what was being done.
pub fn io_error(action: &str, path: &Path, e: &io::Error) -> CoreError {
    let errno = e.raw_os_error();
    let mut text = e.to_string();
    if let Some(n) = errno {
        // "No such file or directory (os error 2)" -> "No such file or directory".
        if let Some(stripped) = text.strip_suffix(&format!(" (os error {n})")) {
            text = stripped.to_owned();
        }
    }
    CoreError::Io {
        errno,
        message: format!("{action}: {text}"),
        path: path.display().to_string(),
    }
}

/// Validates `file` and writes it to `path` atomically (see the module documentation). Nothing
/// is written when a value is invalid.
pub fn save(path: &Path, file: &StateFile) -> CoreResult<()> {
    file.validate().map_err(|m| {
        CoreError::State(format!("cannot save the state to {}: {m}", path.display()))
    })?;
    let bytes = file.to_bytes()?;
    // Whatever is written must load back (a field this check does not know, e.g. a NaN that
    // serde writes as null, would otherwise make a file that cannot be loaded).
    StateFile::from_bytes(&bytes, "the serialised state").map_err(|e| {
        CoreError::State(format!(
            "cannot save the state to {}: it would not load back: {e}",
            path.display()
        ))
    })?;
    write_atomic(path, &bytes)
}

/// Reads, parses and validates the state file at `path`.
pub fn load(path: &Path) -> CoreResult<StateFile> {
    let bytes = files::read_regular(path)?;
    StateFile::from_bytes(&bytes, &path.display().to_string())
}

/// Writes `bytes` to `path` atomically (see [`files`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CoreResult<()> {
    files::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pmrs-persist-{tag}-{}-{}",
            std::process::id(),
            files::next_counter()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn position(symbol: &str, i: usize) -> SavedPosition {
        let mut state = PositionState::new(
            symbol,
            if i % 2 == 0 { "long" } else { "short" },
            100.0 + i as f64 * 0.1,
            0.5 + i as f64,
            7.5,
            95.0,
            Some(115.123_456_789_012_34),
            Timestamp(1_735_689_600_123_456 + i as i64),
        );
        state.trailing_stop_activated = true;
        state.max_favorable_excursion = 0.1 + 0.2;
        state.last_pnl_time = Timestamp(1_735_700_000_000_001);
        state.partial_exits_taken = 2;
        state.profit_velocity = -1e-300;
        let mut extra = Extra::new();
        extra.insert("strategy".into(), raw("\"breakout\""));
        extra.insert("n".into(), raw("123456789012345678901234567890"));
        extra.insert("nested".into(), raw("{\"a\": [1, 2.5, null, true]}"));
        // Odd positions were listed by the exchange (a short at its own entry price).
        let listed = (i % 2 == 1).then(|| SavedListing {
            side: "short".into(),
            contracts: 0.5 + i as f64,
            entry_price: 100.05 + i as f64 * 0.1,
        });
        // Every third carries what the manager's own orders did that no list has shown.
        let unlisted_fills = UnlistedFills {
            open: i % 3 == 0,
            sizes_before: if i % 3 == 2 { vec![0.5, 1.25] } else { vec![] },
        };
        SavedPosition {
            symbol: symbol.to_owned(),
            state,
            extra,
            listed,
            unlisted_fills,
            predecessor: None,
        }
    }

    fn sample(n: usize) -> StateFile {
        StateFile::new(
            Timestamp(1_735_689_600_000_000),
            (0..n)
                .map(|i| position(&format!("S{i}/USDT:USDT"), i))
                .collect(),
        )
    }

    #[test]
    fn round_trip_keeps_every_field_and_the_order() {
        let d = dir("round");
        let path = d.join("state.json");
        let file = sample(5);
        save(&path, &file).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back, file);
        assert_eq!(
            back.positions[0].extra["n"].get(),
            "123456789012345678901234567890"
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"format\": \"position-manager-rs/state\""));
        assert!(text.contains("\"version\": 1"));
        assert!(text.contains("\"saved_at\": \"2025-01-01T00:00:00.000000\""));
        // Only where there is something (positions 0, 2 and 3): the others are written as
        // earlier versions wrote them.
        assert_eq!(text.matches("\"unlisted_fills\"").count(), 3, "{text}");
        assert!(leftover_temp_files(&path).is_empty());
        // Saving again replaces the file.
        save(&path, &sample(2)).unwrap();
        assert_eq!(load(&path).unwrap().positions.len(), 2);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_truncation_is_a_clear_error() {
        let bytes = sample(2).to_bytes().unwrap();
        let trimmed = bytes.trim_ascii_end().len();
        for cut in 0..trimmed {
            let err = StateFile::from_bytes(&bytes[..cut], "/x/state.json").unwrap_err();
            let CoreError::State(m) = &err else {
                panic!("{err:?}")
            };
            assert!(m.starts_with("/x/state.json: "), "{m}");
            assert!(
                m.contains("truncated") || m.contains("empty"),
                "cut at {cut}: {m}"
            );
        }
        assert!(StateFile::from_bytes(&bytes[..trimmed], "p").is_ok());
    }

    #[test]
    fn corrupt_json_names_the_path_and_the_position() {
        let mut bytes = sample(2).to_bytes().unwrap();
        // The first comma of the second half (never inside one of the sample's strings).
        let half = bytes.len() / 2;
        let at = half + bytes[half..].iter().position(|b| *b == b',').unwrap();
        bytes[at] = b'#';
        let err = StateFile::from_bytes(&bytes, "/x/state.json").unwrap_err();
        let m = err.to_string();
        assert!(
            m.starts_with("/x/state.json: the state file is not valid JSON: "),
            "{m}"
        );
        assert!(m.contains(" at line ") && m.contains(" column "), "{m}");
    }

    #[test]
    fn future_and_unknown_versions_and_formats_are_refused() {
        let err = StateFile::from_bytes(
            br#"{"format": "position-manager-rs/state", "version": 2, "positions": "new shape"}"#,
            "f",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "f: state file version 2 is newer than this position-manager-rs supports \
             (version 1); upgrade position-manager-rs to load it"
        );
        for (text, part) in [
            (
                r#"{"format": "position-manager-rs/state", "version": 0, "positions": []}"#,
                "unsupported state file version 0",
            ),
            (
                r#"{"format": "position-manager-rs/state", "version": "1", "positions": []}"#,
                "unsupported state file version \"1\"",
            ),
            (
                r#"{"format": "position-manager-rs/state", "positions": []}"#,
                "no \"version\" field",
            ),
            (
                r#"{"format": "other", "version": 1, "positions": []}"#,
                "\"format\" is \"other\"",
            ),
            (r#"{"version": 1, "positions": []}"#, "no \"format\" field"),
            ("[1, 2]", "the top level is an array"),
        ] {
            let m = StateFile::from_bytes(text.as_bytes(), "f")
                .unwrap_err()
                .to_string();
            assert!(m.contains(part), "{text}: {m}");
        }
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_problem() {
        let good = String::from_utf8(sample(1).to_bytes().unwrap()).unwrap();
        for (from, to, part) in [
            (
                "\"amount\": 0.5",
                "\"amount\": \"0.5\"",
                "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got \"0.5\"",
            ),
            ("\"amount\": 0.5,", "", "missing field `amount`"),
            (
                "\"positions\": [",
                "\"positions\": {\"a\": 1}, \"x\": [",
                "invalid type: map",
            ),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good);
            let m = StateFile::from_bytes(bad.as_bytes(), "f")
                .unwrap_err()
                .to_string();
            assert!(
                m.starts_with("f: invalid state file: ") && m.contains(part),
                "{m}"
            );
            assert!(m.contains(" at line "), "{m}");
        }
    }

    #[test]
    fn invalid_values_are_refused_when_loading_and_when_saving() {
        // (edit, message part, whether JSON can carry the value at all: NaN and inf cannot).
        type Case = (fn(&mut SavedPosition), &'static str, bool);
        let cases: Vec<Case> = vec![
            (
                |p| p.state.contract_size = 0.0,
                "contract_size must be a finite number > 0, got 0",
                true,
            ),
            (
                |p| p.state.contract_size = -1.0,
                "contract_size must be a finite number > 0, got -1",
                true,
            ),
            (
                |p| p.state.contract_size = f64::INFINITY,
                "contract_size must be a finite number > 0, got inf",
                false,
            ),
            (
                |p| p.state.partial_exits_taken = -1,
                "partial_exits_taken must be >= 0",
                true,
            ),
            (
                |p| p.state.entry_time = Timestamp(i64::MAX),
                "entry_time is out of the datetime range",
                true,
            ),
            (|p| p.symbol.clear(), "symbol must not be empty", true),
            (
                |p| p.state.side.clear(),
                "side must be 'long' or 'short', got \"\"",
                true,
            ),
            (
                |p| p.state.side = "LONG".into(),
                "side must be 'long' or 'short', got \"LONG\"",
                true,
            ),
        ];
        let d = dir("invalid");
        let path = d.join("state.json");
        for (edit, part, representable) in cases {
            let mut file = sample(3);
            edit(&mut file.positions[1]);
            if representable {
                // Loading: the message names the file, the position and the field.
                let bytes = serde_json::to_vec(&file).unwrap();
                let m = StateFile::from_bytes(&bytes, "f").unwrap_err().to_string();
                assert!(m.starts_with("f: position 1"), "{m}");
                assert!(m.contains(part), "{m}");
            }
            // Saving: refused before anything is written.
            let m = save(&path, &file).unwrap_err().to_string();
            assert!(m.starts_with("cannot save the state to "), "{m}");
            assert!(m.contains(part), "{m}");
            assert!(!path.exists());
            assert!(leftover_temp_files(&path).is_empty());
        }
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_value_an_assignment_can_give_saves_and_loads_back() {
        // `Position` setters do not range-check prices, sizes and figures (as the original), so
        // a running manager can hold these; a state it held must come back as it was.
        let d = dir("assignable");
        let path = d.join("state.json");
        let mut file = sample(2);
        let s = &mut file.positions[1].state;
        s.stop_loss = f64::NAN;
        s.take_profit = Some(-5.0);
        s.highest_price = Some(f64::INFINITY);
        s.initial_take_profit = Some(f64::NEG_INFINITY);
        s.amount = 0.0;
        s.entry_price = -1.0;
        s.leverage = 0.0;
        s.max_favorable_excursion = f64::INFINITY;
        s.last_pnl = f64::NAN;
        s.profit_velocity = f64::NEG_INFINITY;
        file.tombstones.push(SavedKept {
            symbol: "N/USDT:USDT".into(),
            state: file.positions[1].state.clone(),
            extra: Extra::new(),
            at: file.positions[1].state.entry_time,
            listed: None,
            order_id: None,
            doubtful: false,
            own_end: false,
        });
        save(&path, &file).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"stop_loss\": \"NaN\""), "{text}");
        assert!(text.contains("\"highest_price\": \"Infinity\""), "{text}");
        let back = load(&path).unwrap();
        let bits = |s: &PositionState| {
            [
                s.stop_loss,
                s.take_profit.unwrap(),
                s.highest_price.unwrap(),
                s.initial_take_profit.unwrap(),
                s.amount,
                s.entry_price,
                s.leverage,
                s.max_favorable_excursion,
                s.last_pnl,
                s.profit_velocity,
            ]
            .map(f64::to_bits)
        };
        let saved = &file.positions[1].state;
        assert_eq!(bits(&back.positions[1].state), bits(saved));
        assert_eq!(bits(&back.tombstones[0].state), bits(saved));
        assert_eq!(back.positions[0], file.positions[0]);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_null_number_from_an_earlier_version_reads_as_nan() {
        // Earlier versions wrote a NaN or infinite stop as `null`, which could not be read.
        let good = String::from_utf8(sample(1).to_bytes().unwrap()).unwrap();
        let old = good.replacen("\"stop_loss\": 95.0", "\"stop_loss\": null", 1);
        assert_ne!(old, good);
        let file = StateFile::from_bytes(old.as_bytes(), "f").unwrap();
        assert!(file.positions[0].state.stop_loss.is_nan());
    }

    #[test]
    fn attributes_only_their_own_json_text_can_carry_are_kept_verbatim() {
        let d = dir("verbatim");
        let path = d.join("state.json");
        let mut file = sample(1);
        let deep = format!("{}1{}", "[".repeat(900), "]".repeat(900));
        let huge = "9".repeat(400);
        for (name, text) in [
            ("surrogate", "\"\\ud800 and \\udfff\""),
            ("huge", huge.as_str()),
            ("tiny", "1e-400"),
            ("deep", deep.as_str()),
        ] {
            file.positions[0].extra.insert(name.into(), raw(text));
        }
        save(&path, &file).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.positions[0].extra["huge"].get(), huge);
        assert_eq!(back.positions[0].extra["deep"].get(), deep);
        fs::remove_dir_all(d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = dir("fifo");
        let path = d.join("state.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let m = load(&path).unwrap_err().to_string();
        assert!(m.contains("it is a FIFO, not a regular file"), "{m}");
        let m = save(&path, &sample(1)).unwrap_err().to_string();
        assert!(m.contains("it is a FIFO, not a regular file"), "{m}");
        assert!(leftover_temp_files(&path).is_empty());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn duplicate_symbols_are_refused() {
        let mut file = sample(2);
        file.positions[1].symbol = file.positions[0].symbol.clone();
        let bytes = serde_json::to_vec(&file).unwrap();
        let m = StateFile::from_bytes(&bytes, "f").unwrap_err().to_string();
        assert!(m.contains("appears more than once"), "{m}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_with_its_errno_and_path() {
        let path = Path::new("/nonexistent-pmrs-dir/state.json");
        match load(path).unwrap_err() {
            CoreError::Io {
                errno,
                message,
                path: p,
            } => {
                assert_eq!(errno, Some(2));
                assert_eq!(
                    message,
                    "cannot read the state file: No such file or directory"
                );
                assert_eq!(p, "/nonexistent-pmrs-dir/state.json");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            save(path, &sample(1)).unwrap_err(),
            CoreError::Io { errno: Some(2), .. }
        ));
    }

    #[test]
    fn leftovers_of_dead_writers_are_removed_by_the_next_save() {
        let d = dir("leftovers");
        let path = d.join("state.json");
        // A dead writer (pid 0 never names a user process; without /proc only an hour-old
        // leftover counts as dead), this process, and an unrelated file.
        let dead = d.join(".state.json.tmp-0-7");
        let mine = d.join(format!(".state.json.tmp-{}-99", std::process::id()));
        let other = d.join(".other.json.tmp-0-1");
        for f in [&dead, &mine, &other] {
            fs::write(f, b"{\"partial").unwrap();
        }
        assert_eq!(leftover_temp_files(&path).len(), 2);
        save(&path, &sample(1)).unwrap();
        let expected = if Path::new("/proc/self").exists() {
            vec![]
        } else {
            vec![dead.clone()]
        };
        assert_eq!(leftover_temp_files(&path), expected);
        assert!(other.exists());
        fs::remove_dir_all(d).unwrap();
    }

    /// `sample(3)` with one tombstone, one close, two holds and a predecessor of position 1.
    fn remembering() -> StateFile {
        let mut file = sample(3);
        let kept = |symbol: &str, i: usize, listed: Option<SavedListing>| {
            let p = position(symbol, i);
            SavedKept {
                symbol: p.symbol,
                state: p.state,
                extra: p.extra,
                at: Timestamp(1_735_689_000_000_000 + i as i64),
                listed,
                order_id: None,
                own_end: false,
                doubtful: false,
            }
        };
        file.tombstones = vec![kept(
            "T/USDT:USDT",
            7,
            Some(SavedListing {
                side: "short".into(),
                contracts: 7.5,
                entry_price: 100.7,
            }),
        )];
        // A position the manager's own close ended, kept as such.
        file.tombstones.push(SavedKept {
            own_end: true,
            ..kept("E/USDT:USDT", 9, None)
        });
        // A position removed on empty answers only, kept as doubtful.
        file.tombstones.push(SavedKept {
            doubtful: true,
            ..kept("D/USDT:USDT", 10, None)
        });
        file.closing = vec![SavedKept {
            order_id: Some("pm1x2y3z".into()),
            ..kept("C/USDT:USDT", 8, None)
        }];
        // The long a side flip replaced with position 1 (a short).
        file.positions[1].predecessor = Some(Box::new(kept(
            "S1/USDT:USDT",
            4,
            Some(SavedListing {
                side: "long".into(),
                contracts: 4.5,
                entry_price: 100.4,
            }),
        )));
        file.holds = vec![
            SavedHold {
                symbol: "H/USDT:USDT".into(),
                since: Timestamp(1_735_689_500_000_000),
            },
            SavedHold {
                symbol: "S0/USDT:USDT".into(),
                since: Timestamp(1_735_689_500_000_001),
            },
        ];
        file
    }

    #[test]
    fn the_remembered_sections_round_trip_and_older_files_read_without_them() {
        let d = dir("kept");
        let path = d.join("state.json");
        let file = remembering();
        save(&path, &file).unwrap();
        assert_eq!(load(&path).unwrap(), file);
        // Empty sections are not written: such a file is what versions before them wrote, and
        // it reads with none.
        let mut plain = file.clone();
        plain.tombstones.clear();
        plain.closing.clear();
        plain.holds.clear();
        plain.positions[1].predecessor = None;
        let bytes = plain.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        for section in ["tombstones", "closing", "holds", "predecessor"] {
            assert!(!text.contains(section), "{section} in {text}");
        }
        assert_eq!(StateFile::from_bytes(&bytes, "f").unwrap(), plain);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn the_remembered_sections_are_validated() {
        type Case = (fn(&mut StateFile), &'static str);
        let cases: Vec<Case> = vec![
            (
                |f| f.tombstones[0].symbol = f.positions[1].symbol.clone(),
                "tombstone 0 (\"S1/USDT:USDT\"): symbol appears more than once",
            ),
            (
                |f| f.closing[0].symbol = f.tombstones[0].symbol.clone(),
                "closing 0 (\"T/USDT:USDT\"): symbol appears more than once",
            ),
            (|f| f.closing[0].symbol.clear(), "closing 0: symbol must not be empty"),
            (
                |f| f.closing[0].order_id = Some(String::new()),
                "closing 0 (\"C/USDT:USDT\"): order_id must not be empty",
            ),
            (
                |f| f.closing[0].own_end = true,
                "closing 0 (\"C/USDT:USDT\"): own_end is for tombstones only",
            ),
            (
                |f| f.closing[0].doubtful = true,
                "closing 0 (\"C/USDT:USDT\"): doubtful is for tombstones only",
            ),
            (
                |f| f.tombstones[1].doubtful = true,
                "tombstone 1 (\"E/USDT:USDT\"): a tombstone is not both own_end and doubtful",
            ),
            (
                |f| f.tombstones[0].state.contract_size = -2.0,
                "tombstone 0 (\"T/USDT:USDT\"): contract_size must be a finite number > 0, got -2",
            ),
            (
                |f| f.closing[0].at = Timestamp(i64::MIN),
                "closing 0 (\"C/USDT:USDT\"): at is out of the datetime range",
            ),
            (
                |f| {
                    if let Some(l) = f.tombstones[0].listed.as_mut() {
                        l.side = "both".into();
                    }
                },
                "tombstone 0 (\"T/USDT:USDT\"): listed.side must be 'long' or 'short', got \"both\"",
            ),
            (
                |f| {
                    if let Some(l) = f.tombstones[0].listed.as_mut() {
                        l.contracts = 0.0;
                    }
                },
                "listed.contracts must be a finite number > 0, got 0",
            ),
            (
                |f| f.holds[1].symbol = f.holds[0].symbol.clone(),
                "hold 1 (\"H/USDT:USDT\"): symbol appears more than once",
            ),
            (
                |f| {
                    if let Some(l) = f.positions[1].listed.as_mut() {
                        l.entry_price = 0.0;
                    }
                },
                "position 1 (\"S1/USDT:USDT\"): listed.entry_price must be a finite number > 0",
            ),
            (
                |f| f.positions[2].unlisted_fills.sizes_before[1] = -1.0,
                "position 2 (\"S2/USDT:USDT\"): unlisted_fills.sizes_before must hold finite \
                 numbers > 0, got -1",
            ),
            (
                |f| {
                    if let Some(k) = f.positions[1].predecessor.as_mut() {
                        k.symbol = "S0/USDT:USDT".into();
                    }
                },
                "position 1 (\"S1/USDT:USDT\"): predecessor: symbol must be the position's, \
                 got \"S0/USDT:USDT\"",
            ),
            (
                |f| {
                    if let Some(k) = f.positions[1].predecessor.as_mut() {
                        k.state.contract_size = -2.0;
                    }
                },
                "position 1 (\"S1/USDT:USDT\"): predecessor: contract_size must be a finite \
                 number > 0, got -2",
            ),
            (
                |f| {
                    if let Some(k) = f.positions[1].predecessor.as_mut() {
                        k.own_end = true;
                    }
                },
                "position 1 (\"S1/USDT:USDT\"): predecessor: own_end is for tombstones only",
            ),
            (
                |f| {
                    if let Some(k) = f.positions[1].predecessor.as_mut() {
                        k.order_id = Some("pm1".into());
                    }
                },
                "position 1 (\"S1/USDT:USDT\"): predecessor: order_id is for closes awaiting \
                 confirmation only",
            ),
            (
                |f| {
                    if let Some(k) = f.positions[1].predecessor.as_mut() {
                        k.at = Timestamp(i64::MAX);
                    }
                },
                "position 1 (\"S1/USDT:USDT\"): predecessor: at is out of the datetime range",
            ),
            (|f| f.holds[0].symbol.clear(), "hold 0: symbol must not be empty"),
            (
                |f| f.holds[0].since = Timestamp(i64::MAX),
                "hold 0 (\"H/USDT:USDT\"): since is out of the datetime range",
            ),
        ];
        for (edit, expected) in cases {
            let mut file = remembering();
            edit(&mut file);
            let bytes = serde_json::to_vec(&file).unwrap();
            let m = StateFile::from_bytes(&bytes, "f").unwrap_err().to_string();
            assert!(m.contains(expected), "{m} lacks {expected}");
        }
        // A hold may name a tracked key (it is about opening, not tracking).
        assert!(remembering().validate().is_ok());
    }
}
