//! The book on disk: a versioned JSON state file, written atomically and read all-or-nothing.
//!
//! ```json
//! {
//!   "format": "position-manager-rs/state",
//!   "version": 1,
//!   "saved_at": "2025-01-01T12:00:00.000000",
//!   "writer": "position-manager-rs 0.1.0",
//!   "positions": [
//!     {"symbol": "BTC/USDT:USDT", "state": {...PositionState...}, "extra": {"strategy": "breakout"}}
//!   ]
//! }
//! ```
//!
//! - Positions are in book order; tombstones are not saved. `state` is [`PositionState`] as serde
//!   writes it (timestamps are naive local microseconds); `extra` holds the caller's own
//!   attributes, each kept as the exact JSON text the caller produced ([`RawValue`]).
//! - Writing ([`save`]): the whole file is serialised in memory first, written to a temporary file
//!   in the target's directory (`.<name>.tmp-<pid>-<n>`), `fsync`ed, renamed over the target, and
//!   the directory is `fsync`ed (unix). A reader — or a process started after a crash at any
//!   moment — sees either the previous file or the new one, never a mixture. Temporary files left
//!   by a writer that died mid-save are removed by the next save to the same target.
//! - Reading ([`load`]): the file is parsed, its `format` and `version` checked, then every value
//!   validated before anything is returned; any defect is an error naming the file (and, for JSON
//!   defects, serde's line and column), so a caller never builds a partial book.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::position::PositionState;

/// The `format` every state file carries.
pub const FORMAT: &str = "position-manager-rs/state";

/// The state-file version this build writes, and the newest it reads.
pub const VERSION: u64 = 1;

/// A temporary file whose writer cannot be checked for life (no `/proc`) counts as left over once
/// it is this old.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Saves in this process are serialised: while it is held, no temporary file of this process is
/// in flight, so every one found is a leftover.
static SAVE_LOCK: Mutex<()> = Mutex::new(());

/// Distinguishes temporary files of successive saves of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

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
}

impl Clone for SavedPosition {
    fn clone(&self) -> Self {
        SavedPosition {
            symbol: self.symbol.clone(),
            state: self.state.clone(),
            extra: self
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), v.to_owned()))
                .collect(),
        }
    }
}

impl PartialEq for SavedPosition {
    fn eq(&self, other: &Self) -> bool {
        self.symbol == other.symbol
            && self.state == other.state
            && self.extra.len() == other.extra.len()
            && self
                .extra
                .iter()
                .zip(&other.extra)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
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
        }
    }

    /// Checks every value (finite prices, amount > 0, unique symbols, ...); the message names
    /// the position and the field.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.positions.iter().enumerate() {
            let at = || format!("position {i} ({:?})", p.symbol);
            if p.symbol.is_empty() {
                return Err(format!("position {i}: symbol must not be empty"));
            }
            if !seen.insert(p.symbol.as_str()) {
                return Err(format!("{}: symbol appears more than once", at()));
            }
            validate_state(&p.state).map_err(|m| format!("{}: {m}", at()))?;
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
        // of a future version is reported as such even if its shape changed.
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_eof() {
                bad(format!(
                    "the state file is truncated (its JSON ends early: {e})"
                ))
            } else {
                bad(format!("the state file is not valid JSON: {e}"))
            }
        })?;
        check_header(&value).map_err(bad)?;
        drop(value);
        let file: StateFile =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid state file: {e}")))?;
        file.validate().map_err(bad)?;
        Ok(file)
    }
}

fn check_header(value: &Value) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err(format!(
            "not a position-manager-rs state file (the top level is {}, expected an object)",
            json_kind(value)
        ));
    };
    match object.get("format") {
        Some(Value::String(f)) if f == FORMAT => {}
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
    match object.get("version") {
        Some(v) => match v.as_u64() {
            Some(n) if n == VERSION => Ok(()),
            Some(n) if n > VERSION => Err(format!(
                "state file version {n} is newer than this position-manager-rs supports \
                 (version {VERSION}); upgrade position-manager-rs to load it"
            )),
            _ => Err(format!(
                "unsupported state file version {v} (this position-manager-rs reads version {VERSION})"
            )),
        },
        None => Err("no \"version\" field".to_owned()),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks one position's values; the message names the field and the value.
pub fn validate_state(p: &PositionState) -> Result<(), String> {
    fn finite(name: &str, v: f64) -> Result<(), String> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(format!("{name} must be a finite number, got {v}"))
        }
    }
    fn positive(name: &str, v: f64) -> Result<(), String> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(format!("{name} must be a finite number > 0, got {v}"))
        }
    }
    fn price(name: &str, v: f64) -> Result<(), String> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(format!("{name} must be a finite price >= 0, got {v}"))
        }
    }
    fn opt_price(name: &str, v: Option<f64>) -> Result<(), String> {
        v.map_or(Ok(()), |x| price(name, x))
    }
    fn time(name: &str, t: Timestamp) -> Result<(), String> {
        // Python's datetime covers the years 1..=9999.
        const MIN: i64 = -62_135_596_800_000_000; // 0001-01-01 00:00:00
        const MAX: i64 = 253_402_300_799_999_999; // 9999-12-31 23:59:59.999999
        if (MIN..=MAX).contains(&t.0) {
            Ok(())
        } else {
            Err(format!("{name} is out of the datetime range, got {}", t.0))
        }
    }
    if p.symbol.is_empty() {
        return Err("state.symbol must not be empty".to_owned());
    }
    if p.side.is_empty() {
        return Err("side must not be empty".to_owned());
    }
    positive("entry_price", p.entry_price)?;
    positive("amount", p.amount)?;
    positive("leverage", p.leverage)?;
    price("stop_loss", p.stop_loss)?;
    opt_price("take_profit", p.take_profit)?;
    opt_price("highest_price", p.highest_price)?;
    opt_price("lowest_price", p.lowest_price)?;
    price("initial_stop_loss", p.initial_stop_loss)?;
    opt_price("initial_take_profit", p.initial_take_profit)?;
    finite("max_favorable_excursion", p.max_favorable_excursion)?;
    finite("last_pnl", p.last_pnl)?;
    finite("profit_velocity", p.profit_velocity)?;
    finite("profit_acceleration", p.profit_acceleration)?;
    if p.partial_exits_taken < 0 {
        return Err(format!(
            "partial_exits_taken must be >= 0, got {}",
            p.partial_exits_taken
        ));
    }
    time("entry_time", p.entry_time)?;
    time("last_pnl_time", p.last_pnl_time)?;
    Ok(())
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
    let bytes = fs::read(path).map_err(|e| io_error("cannot read the state file", path, &e))?;
    StateFile::from_bytes(&bytes, &path.display().to_string())
}

/// The directory and file name of `path`.
fn split(path: &Path) -> CoreResult<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            CoreError::Value(format!(
                "the state file path must name a file, got {}",
                path.display()
            ))
        })?
        .to_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// The prefix of the temporary files of target `name`.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Writes `bytes` to `path` through a temporary file in the same directory: write, fsync,
/// rename over `path`, fsync the directory. Leftover temporary files of earlier, interrupted
/// saves to the same target are removed first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CoreResult<()> {
    let (dir, name) = split(path)?;
    let _guard = SAVE_LOCK.lock();
    remove_leftovers(&dir, &name);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{}{}-{n}", temp_prefix(&name), std::process::id()));
    let written = (|| -> CoreResult<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| io_error("cannot create a temporary state file", &temp, &e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_error("cannot write the temporary state file", &temp, &e))?;
        drop(f);
        fs::rename(&temp, path).map_err(|e| io_error("cannot replace the state file", path, &e))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(&dir).map_err(|e| io_error("cannot sync the state file's directory", &dir, &e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Removes temporary files of target `name` in `dir` whose writer is gone: this process's own
/// (none is in flight while [`SAVE_LOCK`] is held), those of processes that no longer exist
/// (checked in `/proc`), and — where `/proc` is not available — those older than an hour. A
/// failure to list or remove is ignored (the save itself does not depend on it).
fn remove_leftovers(dir: &Path, name: &str) {
    let prefix = temp_prefix(name);
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id();
    let proc_fs = Path::new("/proc/self").exists();
    for item in listing.flatten() {
        let file_name = item.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let stale = match pid {
            Some(pid) if pid == own => true,
            Some(pid) if proc_fs => !Path::new("/proc").join(pid.to_string()).exists(),
            _ => item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE),
        };
        if stale {
            let _ = fs::remove_file(item.path());
        }
    }
}

/// Temporary files of target `path` currently in its directory (for tests and diagnostics).
pub fn leftover_temp_files(path: &Path) -> Vec<PathBuf> {
    let Ok((dir, name)) = split(path) else {
        return Vec::new();
    };
    let prefix = temp_prefix(&name);
    let Ok(listing) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    listing
        .flatten()
        .filter(|i| {
            i.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|i| i.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pmrs-persist-{tag}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
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
        SavedPosition {
            symbol: symbol.to_owned(),
            state,
            extra,
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
        let at = bytes.len() / 2;
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
                "invalid type: string \"0.5\", expected f64",
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
                |p| p.state.amount = 0.0,
                "amount must be a finite number > 0, got 0",
                true,
            ),
            (
                |p| p.state.amount = -1.0,
                "amount must be a finite number > 0, got -1",
                true,
            ),
            (
                |p| p.state.entry_price = f64::NAN,
                "entry_price must be a finite number > 0",
                false,
            ),
            (
                |p| p.state.stop_loss = f64::INFINITY,
                "stop_loss must be a finite price >= 0",
                false,
            ),
            (
                |p| p.state.take_profit = Some(-5.0),
                "take_profit must be a finite price >= 0",
                true,
            ),
            (
                |p| p.state.leverage = 0.0,
                "leverage must be a finite number > 0",
                true,
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
            (|p| p.state.side.clear(), "side must not be empty", true),
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
}
