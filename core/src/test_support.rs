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
