//! Helpers for the core tests: locating and loading the golden fixtures.
//!
//! The fixtures are test data of this repository (`tests/fixtures/` at the workspace root), so a
//! lone clone replays them; `PM_FIXTURES_DIR` points the replays at another copy of the set. A
//! fixture that cannot be read fails the test that needs it: a replay never passes by skipping.

use std::path::PathBuf;

/// Directory of the golden fixtures: `$PM_FIXTURES_DIR`, else `tests/fixtures` in the repository.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("PM_FIXTURES_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"),
    }
}

/// Parses one fixture file (`name` like `"formatting.json"`), floats read exactly; panics (fails
/// the calling test) when the file is missing or is not JSON.
pub fn load_fixture(name: &str) -> serde_json::Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {}: {e}", path.display()))
}

/// One record the capture logger saw: target, level, message.
pub type Record = (String, log::Level, String);

thread_local! {
    static CAPTURED: std::cell::RefCell<Option<Vec<Record>>> =
        const { std::cell::RefCell::new(None) };
}

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        CAPTURED.with(|c| {
            if let Some(records) = c.borrow_mut().as_mut() {
                records.push((
                    record.target().to_owned(),
                    record.level(),
                    record.args().to_string(),
                ));
            }
        });
    }

    fn flush(&self) {}
}

/// Runs `f` and returns what it logged on this thread (every level), with `f`'s result. The
/// capture logger is installed for the whole test process on first use; records of other
/// threads, and of this one outside `capture_logs`, are dropped.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, Vec<Record>) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        static LOGGER: CaptureLogger = CaptureLogger;
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f();
    let records = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, records)
}

/// A proptest configuration for CI: `cases` cases from a fixed seed (a run replays exactly),
/// no regression files; `PMRS_LONG=1` runs 40 times as many cases from a random seed.
pub fn proptest_config(cases: u32, seed: u64) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let long = std::env::var("PMRS_LONG").is_ok_and(|v| v == "1");
    Config {
        cases: if long { cases * 40 } else { cases },
        rng_seed: if long {
            RngSeed::Random
        } else {
            RngSeed::Fixed(seed)
        },
        failure_persistence: None,
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_are_in_the_repository() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        for name in [
            "formatting.json",
            "indicators.json",
            "position_traces.json",
            "exit_signals.json",
        ] {
            assert!(
                dir.join(name).is_file(),
                "{name} missing from {}",
                dir.display()
            );
        }
    }

    #[test]
    #[should_panic(expected = "cannot read fixture")]
    fn a_missing_fixture_fails_the_test() {
        load_fixture("no_such_fixture.json");
    }
}
